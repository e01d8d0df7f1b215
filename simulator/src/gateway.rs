//! The Modbus-TCP front end: one listener per scenario listener, like a Modbus-TCP gateway in
//! front of an RS485 bus, with a unit id per device. Faults are applied here: a silent device
//! never answers, an exception fault answers its code, a delay fault answers late, a drop
//! fault closes the connection. An unknown unit id answers 0x0B (gateway target failed to
//! respond), as gateways do. A malformed MBAP header closes the connection (its framing is
//! lost); a malformed PDU answers the exception the standard gives. Nothing a peer sends can
//! stop the listener.

use crate::events::Fault;
use crate::site::{DeviceRuntime, DeviceShared, Site, WriteError};
use busbar_core::profile::Table;
use busbar_modbus::codec::{self, Exception, Header, Request};
use busbar_modbus::server::{Answer, Handler};
use std::sync::{Arc, Mutex};

pub use busbar_modbus::server::Limits as GatewayLimits;

/// Everything one listener serves.
pub struct Gateway {
    pub name: String,
    units: Vec<Option<(usize, Arc<DeviceShared>)>>,
    site: Arc<Mutex<Site>>,
    /// Where read requests are recorded (test runs).
    activity: Option<Arc<crate::activity::Activity>>,
}

impl Gateway {
    pub fn new(name: String, listener_index: usize, site: Arc<Mutex<Site>>) -> Gateway {
        let mut units = vec![None; 256];
        let mut activity = None;
        if let Ok(s) = site.lock() {
            for (i, d) in s.devices().enumerate() {
                if d.listener == listener_index {
                    units[usize::from(d.unit_id)] = Some((i, d.clone()));
                }
            }
            activity = s.activity();
        }
        Gateway {
            name,
            units,
            site,
            activity,
        }
    }

    pub(crate) async fn respond(&self, header: Header, pdu: &[u8], out: &mut Vec<u8>) -> Answer {
        let function = pdu.first().copied().unwrap_or(0);
        let Some((index, device)) = self.units.get(usize::from(header.unit)).cloned().flatten() else {
            codec::write_exception(out, header, function, Exception::GatewayTargetFailed);
            return Answer::Sent;
        };
        if let (Some(a), 1..=4) = (&self.activity, function) {
            let address = pdu.get(1..3).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            a.read(index, (function, address));
        }
        let (delay, exception, silent, drop_conn) = {
            let rt = device.lock();
            let quirk = replay_quirk(&rt, pdu);
            if rt.faults.is_empty() && quirk.is_none() {
                // The common case: no fault, answer under this same lock.
                if let Ok(req) = codec::decode_request(pdu) {
                    if answer_read(&rt, &req, header, out) {
                        return Answer::Sent;
                    }
                }
            }
            let mut delay = None;
            let mut exception = quirk.flatten().map(Exception::from_code);
            for f in &rt.faults {
                match &f.fault {
                    Fault::Delay { delay: d } => delay = Some(*d),
                    Fault::Exception { code } => exception = Some(Exception::from_code(*code)),
                    _ => {}
                }
            }
            (
                delay,
                exception,
                rt.has(|f| matches!(f, Fault::Silent)) || quirk == Some(None),
                rt.has(|f| matches!(f, Fault::DropConnection)),
            )
        };
        if drop_conn {
            return Answer::Drop;
        }
        if silent {
            return Answer::Silent;
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if let Some(e) = exception {
            codec::write_exception(out, header, function, e);
            return Answer::Sent;
        }
        let Some(req) = codec::decode_request_or_answer(out, header, pdu) else {
            return Answer::Sent;
        };
        if answer_read(&device.lock(), &req, header, out) {
            return Answer::Sent;
        }
        match &req {
            Request::ReadHoldingRegisters { .. }
            | Request::ReadInputRegisters { .. }
            | Request::ReadCoils { .. }
            | Request::ReadDiscreteInputs { .. } => {}
            Request::WriteSingleRegister { address, value } => {
                self.write(index, Table::Holding, *address, &[*value], header, &req, out)
            }
            Request::WriteMultipleRegisters { address, values } => {
                self.write(index, Table::Holding, *address, values, header, &req, out)
            }
            Request::WriteSingleCoil { address, value } => {
                self.write(index, Table::Coil, *address, &[u16::from(*value)], header, &req, out)
            }
            Request::WriteMultipleCoils { address, values } => {
                let words: Vec<u16> = values.iter().map(|b| u16::from(*b)).collect();
                self.write(index, Table::Coil, *address, &words, header, &req, out)
            }
        }
        Answer::Sent
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        index: usize,
        table: Table,
        address: u16,
        values: &[u16],
        header: Header,
        req: &Request,
        out: &mut Vec<u8>,
    ) {
        let result = match self.site.lock() {
            Ok(mut site) => site.write_registers(index, table, address, values),
            Err(_) => Err(WriteError::Exception(Exception::ServerDeviceFailure)),
        };
        match result {
            Ok(()) => codec::write_write_response(out, header, req),
            Err(WriteError::Exception(e)) => codec::write_exception(out, header, req.function(), e),
        }
    }
}

/// What a replayed device answers to this read instead of its words, if the trace says so:
/// `Some(Some(code))` an exception, `Some(None)` nothing.
fn replay_quirk(rt: &DeviceRuntime, pdu: &[u8]) -> Option<Option<u8>> {
    if rt.quirks.is_empty() {
        return None;
    }
    let (table, address, count, _) = read_target(&codec::decode_request(pdu).ok()?)?;
    rt.quirks
        .iter()
        .find(|q| q.touches(table, address, count))
        .map(|q| q.exception)
}

/// Answer a read request from the device's image; `false` if `req` is not a read.
fn answer_read(rt: &DeviceRuntime, req: &Request, header: Header, out: &mut Vec<u8>) -> bool {
    let Some((table, address, count, bits)) = read_target(req) else {
        return false;
    };
    let function = req.function();
    match rt.image.read(table, address, count) {
        Ok(words) if bits => codec::write_bits_response(out, header, function, words),
        Ok(words) => codec::write_registers_response(out, header, function, words),
        Err(_) => codec::write_exception(out, header, function, Exception::IllegalDataAddress),
    }
    true
}

/// The table and range of a read request (`bits` for coils and discrete inputs).
fn read_target(req: &Request) -> Option<(Table, u16, u16, bool)> {
    match *req {
        Request::ReadHoldingRegisters { address, count } => Some((Table::Holding, address, count, false)),
        Request::ReadInputRegisters { address, count } => Some((Table::Input, address, count, false)),
        Request::ReadCoils { address, count } => Some((Table::Coil, address, count, true)),
        Request::ReadDiscreteInputs { address, count } => Some((Table::Discrete, address, count, true)),
        _ => None,
    }
}

impl Gateway {
    /// The device behind `unit` on this listener, if any.
    pub fn device(&self, unit: u8) -> Option<&Arc<DeviceShared>> {
        self.units
            .get(usize::from(unit))
            .and_then(|u| u.as_ref())
            .map(|(_, d)| d)
    }
}

impl Handler for Gateway {
    fn answer(
        &self,
        header: Header,
        pdu: &[u8],
        out: &mut Vec<u8>,
    ) -> impl std::future::Future<Output = Answer> + Send {
        self.respond(header, pdu, out)
    }
}
