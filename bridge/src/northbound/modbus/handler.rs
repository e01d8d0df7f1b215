//! The northbound Modbus-TCP server: SCADAs read the whole site from one endpoint, one unit id
//! per device (layout in [`super::map`]).
//!
//! Quality mapping for Modbus, in this one place: a read of point registers of an offline
//! device answers exception 0B (gateway target failed to respond) unless `serve_stale` is set;
//! a point whose quality is neither good nor stale is served as NaN (float32) or 0 (integers),
//! except the last value of an offline device under `serve_stale`; the status block (registers
//! 0..8) always answers and says comm status, points not good, age and failures.

use super::map::{DeviceMap, Encoding, ModbusMap, POINTS_START, STATUS_LEN};
use crate::acquisition::{Acquisition, WriteOutcome};
use crate::store::{PointValue, Sample, Store};
use busbar_core::encoding;
use busbar_core::profile::{DataType, Kind, Register, WordOrder};
use busbar_core::quality::Quality;
use busbar_modbus::codec::{self, Exception, Header, Request};
use busbar_modbus::server::{Answer, Handler};
use std::sync::Arc;
use std::time::SystemTime;

pub struct ModbusHandler {
    map: ModbusMap,
    store: Arc<Store>,
    acq: Acquisition,
    serve_stale: bool,
}

/// What a sample becomes on the wire.
fn served_value(sample: &Sample, offline_stale: bool) -> Option<&PointValue> {
    match sample.quality {
        Quality::Good | Quality::Stale => sample.value.as_ref(),
        Quality::CommFailure if offline_stale => sample.value.as_ref(),
        _ => None,
    }
}

fn register(data_type: DataType, order: WordOrder, scale: f64) -> Register {
    Register::plain(data_type, order, scale)
}

impl ModbusHandler {
    pub fn new(map: ModbusMap, store: Arc<Store>, acq: Acquisition, serve_stale: bool) -> ModbusHandler {
        ModbusHandler {
            map,
            store,
            acq,
            serve_stale,
        }
    }

    fn status_words(&self, dm: &DeviceMap) -> [u16; STATUS_LEN as usize] {
        let mut w = [0u16; STATUS_LEN as usize];
        // One pass over the device's acquired points: how many, and how many are not good.
        let (mut acquired, mut not_good) = (0usize, 0usize);
        {
            let samples = self.store.samples();
            for p in self.store.device_points(dm.device) {
                if self.store.meta(p).is_some_and(|m| m.acquired) {
                    acquired += 1;
                    not_good += usize::from(samples.get(p as usize).is_some_and(|s| s.quality != Quality::Good));
                }
            }
        }
        if let Some(st) = self.store.status(dm.device) {
            w[0] = u16::from(st.online);
            let age = st
                .last_good_read
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(u32::MAX, |d| d.as_secs().min(u64::from(u32::MAX - 1)) as u32);
            w[2] = (age >> 16) as u16;
            w[3] = age as u16;
            w[4] = (st.consecutive_failures >> 16) as u16;
            w[5] = st.consecutive_failures as u16;
        }
        w[1] = not_good.min(65535) as u16;
        w[6] = acquired.min(65535) as u16;
        w
    }

    /// Registers `address..address+count` of a device's point area.
    fn point_words(&self, dm: &DeviceMap, address: u16, count: u16, out: &mut Vec<u16>) -> Result<(), Exception> {
        let start = u32::from(address);
        let end = start + u32::from(count);
        if start < u32::from(POINTS_START) || end > dm.end {
            return Err(Exception::IllegalDataAddress);
        }
        let online = self.store.status(dm.device).is_some_and(|s| s.online);
        if !online && !self.serve_stale {
            return Err(Exception::GatewayTargetFailed);
        }
        let samples = self.store.samples();
        let order = self.map.word_order;
        out.clear();
        out.resize(count as usize, 0);
        let mut buf = [0u16; 64];
        for e in dm.overlapping(address, count) {
            let n = usize::from(e.encoding.words());
            let words = &mut buf[..n.min(64)];
            words.iter_mut().for_each(|w| *w = 0);
            let sample = samples.get(e.point as usize);
            let value = sample.and_then(|s| served_value(s, self.serve_stale));
            match (e.encoding, value) {
                (Encoding::Float32, v) => {
                    let x = v.and_then(PointValue::as_f64).unwrap_or(f64::NAN);
                    let bits = (x as f32).to_bits();
                    let r = register(DataType::U32, order, 1.0);
                    let _ = encoding::encode(&r, Kind::Analog, f64::from(bits), words);
                }
                (Encoding::Int32 { scale }, Some(PointValue::Number(x))) => {
                    let _ = encoding::encode(&register(DataType::I32, order, scale), Kind::Analog, *x, words);
                }
                (Encoding::Uint32 { resolution }, Some(PointValue::Number(x))) => {
                    let _ = encoding::encode(&register(DataType::U32, order, resolution), Kind::Counter, *x, words);
                }
                (Encoding::Uint64 { resolution }, Some(PointValue::Number(x))) => {
                    let _ = encoding::encode(&register(DataType::U64, order, resolution), Kind::Counter, *x, words);
                }
                (Encoding::Ascii { .. }, Some(PointValue::Text(t))) => {
                    let _ = encoding::encode_text(t, words);
                }
                _ => {}
            }
            // Copy the overlap of this entry with the request.
            for (i, w) in words.iter().enumerate() {
                let a = u32::from(e.address) + i as u32;
                if a >= start && a < end {
                    out[(a - start) as usize] = *w;
                }
            }
        }
        Ok(())
    }

    fn read(&self, dm: &DeviceMap, address: u16, count: u16) -> Result<Vec<u16>, Exception> {
        let end = u32::from(address) + u32::from(count);
        if end <= u32::from(STATUS_LEN) {
            let s = self.status_words(dm);
            return Ok(s[usize::from(address)..end as usize].to_vec());
        }
        let mut out = Vec::with_capacity(usize::from(count));
        self.point_words(dm, address, count, &mut out)?;
        Ok(out)
    }

    async fn write(&self, dm: &DeviceMap, address: u16, values: &[u16]) -> Result<(), Exception> {
        let start = u32::from(address);
        let end = start + values.len() as u32;
        let entries: Vec<_> = dm.overlapping(address, values.len() as u16).cloned().collect();
        if entries.is_empty() {
            return Err(Exception::IllegalDataAddress);
        }
        let order = self.map.word_order;
        let mut decoded = Vec::new();
        for e in &entries {
            let n = u32::from(e.encoding.words());
            if u32::from(e.address) < start || u32::from(e.address) + n > end {
                return Err(Exception::IllegalDataValue);
            }
            if !self.store.meta(e.point).is_some_and(|m| m.writable) {
                return Err(Exception::IllegalDataAddress);
            }
            let off = (u32::from(e.address) - start) as usize;
            let words = &values[off..off + n as usize];
            let value = match e.encoding {
                Encoding::Float32 => {
                    let bits = encoding::decode(&register(DataType::U32, order, 1.0), words)
                        .map_err(|_| Exception::IllegalDataValue)?;
                    f64::from(f32::from_bits(bits as u32))
                }
                Encoding::Int32 { scale } => encoding::decode(&register(DataType::I32, order, scale), words)
                    .map_err(|_| Exception::IllegalDataValue)?,
                _ => return Err(Exception::IllegalDataAddress),
            };
            decoded.push((e.point, value));
        }
        for (point, value) in decoded {
            match self.acq.write(point, value).await {
                WriteOutcome::Done { .. } => {}
                WriteOutcome::NotWritable => return Err(Exception::IllegalDataAddress),
                WriteOutcome::InvalidValue { .. } => return Err(Exception::IllegalDataValue),
                WriteOutcome::Refused { .. } | WriteOutcome::Timeout | WriteOutcome::CommFailure { .. } => {
                    return Err(Exception::ServerDeviceFailure)
                }
            }
        }
        Ok(())
    }

    async fn respond(&self, header: Header, pdu: &[u8], out: &mut Vec<u8>) -> Answer {
        let function = pdu.first().copied().unwrap_or(0);
        let Some(dm) = self
            .map
            .by_unit
            .get(usize::from(header.unit))
            .copied()
            .flatten()
            .and_then(|i| self.map.devices.get(i))
        else {
            codec::write_exception(out, header, function, Exception::GatewayPathUnavailable);
            return Answer::Sent;
        };
        let Some(req) = codec::decode_request_or_answer(out, header, pdu) else {
            return Answer::Sent;
        };
        let result = match &req {
            Request::ReadHoldingRegisters { address, count } | Request::ReadInputRegisters { address, count } => self
                .read(dm, *address, *count)
                .map(|w| codec::write_registers_response(out, header, function, &w)),
            Request::WriteSingleRegister { address, value } => self
                .write(dm, *address, &[*value])
                .await
                .map(|_| codec::write_write_response(out, header, &req)),
            Request::WriteMultipleRegisters { address, values } => self
                .write(dm, *address, values)
                .await
                .map(|_| codec::write_write_response(out, header, &req)),
            // No coils or discrete inputs on the northbound map.
            _ => Err(Exception::IllegalDataAddress),
        };
        if let Err(e) = result {
            codec::write_exception(out, header, function, e);
        }
        Answer::Sent
    }
}

impl Handler for ModbusHandler {
    fn answer(
        &self,
        header: Header,
        pdu: &[u8],
        out: &mut Vec<u8>,
    ) -> impl std::future::Future<Output = Answer> + Send {
        self.respond(header, pdu, out)
    }
}
