//! Modbus TCP framing (MBAP header) and PDU codec, from bytes and to bytes, with no IO.
//!
//! Server side: [`split_frame`] cuts one ADU off a receive buffer, [`decode_request`] turns its
//! PDU into a [`Request`], and the `write_*` functions append a response ADU to an output
//! buffer without allocating. Client side: [`write_request`] and [`decode_response`].
//! Every decoder is total: malformed input gives an error, never a panic (see fuzz/).

use thiserror::Error;

/// Bytes in the MBAP header including the unit id.
pub const MBAP_LEN: usize = 7;
/// Largest PDU the standard allows (253 bytes), so the largest ADU is 260 bytes.
pub const MAX_PDU: usize = 253;
/// Largest register count of one read (FC03/04).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Largest bit count of one read (FC01/02).
pub const MAX_READ_BITS: u16 = 2000;
/// Largest register count of one FC16 write.
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Largest bit count of one FC15 write.
pub const MAX_WRITE_BITS: u16 = 1968;

/// A Modbus exception code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum Exception {
    #[error("illegal function (01)")]
    IllegalFunction,
    #[error("illegal data address (02)")]
    IllegalDataAddress,
    #[error("illegal data value (03)")]
    IllegalDataValue,
    #[error("server device failure (04)")]
    ServerDeviceFailure,
    #[error("acknowledge (05)")]
    Acknowledge,
    #[error("server device busy (06)")]
    ServerDeviceBusy,
    #[error("gateway path unavailable (0A)")]
    GatewayPathUnavailable,
    #[error("gateway target device failed to respond (0B)")]
    GatewayTargetFailed,
    #[error("exception code {0:#04x}")]
    Other(u8),
}

impl Exception {
    pub fn code(self) -> u8 {
        match self {
            Exception::IllegalFunction => 0x01,
            Exception::IllegalDataAddress => 0x02,
            Exception::IllegalDataValue => 0x03,
            Exception::ServerDeviceFailure => 0x04,
            Exception::Acknowledge => 0x05,
            Exception::ServerDeviceBusy => 0x06,
            Exception::GatewayPathUnavailable => 0x0A,
            Exception::GatewayTargetFailed => 0x0B,
            Exception::Other(c) => c,
        }
    }
    pub fn from_code(c: u8) -> Exception {
        match c {
            0x01 => Exception::IllegalFunction,
            0x02 => Exception::IllegalDataAddress,
            0x03 => Exception::IllegalDataValue,
            0x04 => Exception::ServerDeviceFailure,
            0x05 => Exception::Acknowledge,
            0x06 => Exception::ServerDeviceBusy,
            0x0A => Exception::GatewayPathUnavailable,
            0x0B => Exception::GatewayTargetFailed,
            c => Exception::Other(c),
        }
    }
}

/// The MBAP header of one ADU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub transaction: u16,
    pub unit: u8,
}

/// Why a byte stream cannot be framed. Both are fatal for the connection: a TCP stream whose
/// framing is lost cannot be resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("protocol id {0} is not Modbus (0)")]
    Protocol(u16),
    #[error("MBAP length {0} is outside 2..=254")]
    Length(u16),
}

/// One ADU cut off a buffer: its header, its PDU and the bytes it took.
pub type Frame<'a> = (Header, &'a [u8], usize);

/// Cut one ADU off the front of `buf`. `Ok(None)` = need more bytes. On success returns the
/// header, the PDU and the number of bytes consumed.
pub fn split_frame(buf: &[u8]) -> Result<Option<Frame<'_>>, FrameError> {
    if buf.len() < MBAP_LEN {
        return Ok(None);
    }
    let transaction = u16::from_be_bytes([buf[0], buf[1]]);
    let protocol = u16::from_be_bytes([buf[2], buf[3]]);
    let length = u16::from_be_bytes([buf[4], buf[5]]);
    if protocol != 0 {
        return Err(FrameError::Protocol(protocol));
    }
    if !(2..=254).contains(&length) {
        return Err(FrameError::Length(length));
    }
    let total = 6 + usize::from(length);
    if buf.len() < total {
        return Ok(None);
    }
    let header = Header {
        transaction,
        unit: buf[6],
    };
    Ok(Some((header, &buf[MBAP_LEN..total], total)))
}

/// A request PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ReadCoils { address: u16, count: u16 },
    ReadDiscreteInputs { address: u16, count: u16 },
    ReadHoldingRegisters { address: u16, count: u16 },
    ReadInputRegisters { address: u16, count: u16 },
    WriteSingleCoil { address: u16, value: bool },
    WriteSingleRegister { address: u16, value: u16 },
    WriteMultipleCoils { address: u16, values: Vec<bool> },
    WriteMultipleRegisters { address: u16, values: Vec<u16> },
}

impl Request {
    pub fn function(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => 0x01,
            Request::ReadDiscreteInputs { .. } => 0x02,
            Request::ReadHoldingRegisters { .. } => 0x03,
            Request::ReadInputRegisters { .. } => 0x04,
            Request::WriteSingleCoil { .. } => 0x05,
            Request::WriteSingleRegister { .. } => 0x06,
            Request::WriteMultipleCoils { .. } => 0x0F,
            Request::WriteMultipleRegisters { .. } => 0x10,
        }
    }
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Decode a request PDU. An unknown function answers 01, a malformed body 03.
pub fn decode_request(pdu: &[u8]) -> Result<Request, Exception> {
    let (&fc, body) = pdu.split_first().ok_or(Exception::IllegalFunction)?;
    let bad = Exception::IllegalDataValue;
    let a = be16(body, 0).ok_or(bad);
    let b = be16(body, 2).ok_or(bad);
    let req = match fc {
        0x01..=0x04 => {
            let (address, count) = (a?, b?);
            if body.len() != 4 {
                return Err(bad);
            }
            let max = if fc <= 2 { MAX_READ_BITS } else { MAX_READ_REGISTERS };
            if count == 0 || count > max {
                return Err(bad);
            }
            match fc {
                0x01 => Request::ReadCoils { address, count },
                0x02 => Request::ReadDiscreteInputs { address, count },
                0x03 => Request::ReadHoldingRegisters { address, count },
                _ => Request::ReadInputRegisters { address, count },
            }
        }
        0x05 => {
            if body.len() != 4 {
                return Err(bad);
            }
            let value = match b? {
                0xFF00 => true,
                0x0000 => false,
                _ => return Err(bad),
            };
            Request::WriteSingleCoil { address: a?, value }
        }
        0x06 => {
            if body.len() != 4 {
                return Err(bad);
            }
            Request::WriteSingleRegister { address: a?, value: b? }
        }
        0x0F => {
            let (address, count) = (a?, b?);
            let byte_count = usize::from(*body.get(4).ok_or(bad)?);
            if count == 0
                || count > MAX_WRITE_BITS
                || byte_count != usize::from(count).div_ceil(8)
                || body.len() != 5 + byte_count
            {
                return Err(bad);
            }
            let bytes = &body[5..];
            let values = (0..usize::from(count))
                .map(|i| bytes[i / 8] >> (i % 8) & 1 == 1)
                .collect();
            Request::WriteMultipleCoils { address, values }
        }
        0x10 => {
            let (address, count) = (a?, b?);
            let byte_count = usize::from(*body.get(4).ok_or(bad)?);
            if count == 0
                || count > MAX_WRITE_REGISTERS
                || byte_count != usize::from(count) * 2
                || body.len() != 5 + byte_count
            {
                return Err(bad);
            }
            let values = body[5..]
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Request::WriteMultipleRegisters { address, values }
        }
        _ => return Err(Exception::IllegalFunction),
    };
    if let Some((address, count)) = req_range(&req) {
        if u32::from(address) + u32::from(count) > 65536 {
            return Err(Exception::IllegalDataAddress);
        }
    }
    Ok(req)
}

/// Decode a request PDU, or append the exception that answers it and return `None`: what every
/// server does first with a frame.
pub fn decode_request_or_answer(out: &mut Vec<u8>, h: Header, pdu: &[u8]) -> Option<Request> {
    match decode_request(pdu) {
        Ok(r) => Some(r),
        Err(e) => {
            write_exception(out, h, pdu.first().copied().unwrap_or(0), e);
            None
        }
    }
}

fn req_range(r: &Request) -> Option<(u16, u16)> {
    match r {
        Request::ReadCoils { address, count }
        | Request::ReadDiscreteInputs { address, count }
        | Request::ReadHoldingRegisters { address, count }
        | Request::ReadInputRegisters { address, count } => Some((*address, *count)),
        Request::WriteMultipleCoils { address, values } => Some((*address, values.len() as u16)),
        Request::WriteMultipleRegisters { address, values } => Some((*address, values.len() as u16)),
        _ => None,
    }
}

fn begin(out: &mut Vec<u8>, h: Header) -> usize {
    let at = out.len();
    out.extend_from_slice(&h.transaction.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, h.unit]);
    at
}

fn finish(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 6) as u16;
    out[at + 4..at + 6].copy_from_slice(&len.to_be_bytes());
}

/// Append a register read response (FC03/04).
pub fn write_registers_response(out: &mut Vec<u8>, h: Header, function: u8, regs: &[u16]) {
    let at = begin(out, h);
    out.push(function);
    out.push((regs.len() * 2) as u8);
    for r in regs {
        out.extend_from_slice(&r.to_be_bytes());
    }
    finish(out, at);
}

/// Append a bit read response (FC01/02); `bits` holds one bit per element (0 or 1).
pub fn write_bits_response(out: &mut Vec<u8>, h: Header, function: u8, bits: &[u16]) {
    let at = begin(out, h);
    out.push(function);
    let n = bits.len().div_ceil(8);
    out.push(n as u8);
    let start = out.len();
    out.resize(start + n, 0);
    for (i, b) in bits.iter().enumerate() {
        if *b & 1 == 1 {
            out[start + i / 8] |= 1 << (i % 8);
        }
    }
    finish(out, at);
}

/// Append the normal response of a write: FC05/06 echo the request, FC15/16 echo address and
/// count.
pub fn write_write_response(out: &mut Vec<u8>, h: Header, req: &Request) {
    let at = begin(out, h);
    out.push(req.function());
    match req {
        Request::WriteSingleCoil { address, value } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&(if *value { 0xFF00u16 } else { 0 }).to_be_bytes());
        }
        Request::WriteSingleRegister { address, value } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
        Request::WriteMultipleCoils { address, values } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&(values.len() as u16).to_be_bytes());
        }
        Request::WriteMultipleRegisters { address, values } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&(values.len() as u16).to_be_bytes());
        }
        _ => {}
    }
    finish(out, at);
}

/// Append an exception response.
pub fn write_exception(out: &mut Vec<u8>, h: Header, function: u8, e: Exception) {
    let at = begin(out, h);
    out.push(function | 0x80);
    out.push(e.code());
    finish(out, at);
}

/// Append a request ADU (client side).
pub fn write_request(out: &mut Vec<u8>, h: Header, req: &Request) {
    let at = begin(out, h);
    out.push(req.function());
    match req {
        Request::ReadCoils { address, count }
        | Request::ReadDiscreteInputs { address, count }
        | Request::ReadHoldingRegisters { address, count }
        | Request::ReadInputRegisters { address, count } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
        }
        Request::WriteSingleCoil { .. } | Request::WriteSingleRegister { .. } => {
            // Same body as the response echo.
            let mut tmp = Vec::new();
            write_write_response(&mut tmp, h, req);
            out.extend_from_slice(&tmp[MBAP_LEN + 1..]);
        }
        Request::WriteMultipleCoils { address, values } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&(values.len() as u16).to_be_bytes());
            let n = values.len().div_ceil(8);
            out.push(n as u8);
            let start = out.len();
            out.resize(start + n, 0);
            for (i, v) in values.iter().enumerate() {
                if *v {
                    out[start + i / 8] |= 1 << (i % 8);
                }
            }
        }
        Request::WriteMultipleRegisters { address, values } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&(values.len() as u16).to_be_bytes());
            out.push((values.len() * 2) as u8);
            for v in values {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    finish(out, at);
}

/// A decoded response PDU (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
    /// A write was accepted.
    Written,
    Exception(Exception),
}

/// Why a response does not answer the request that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("empty response")]
    Empty,
    #[error("response to function {got:#04x}, expected {expected:#04x}")]
    WrongFunction { expected: u8, got: u8 },
    #[error("malformed response body")]
    Malformed,
}

/// Decode a response PDU to `req`.
pub fn decode_response(req: &Request, pdu: &[u8]) -> Result<Response, ResponseError> {
    let (&fc, body) = pdu.split_first().ok_or(ResponseError::Empty)?;
    let expected = req.function();
    if fc == expected | 0x80 {
        let code = *body.first().ok_or(ResponseError::Malformed)?;
        return Ok(Response::Exception(Exception::from_code(code)));
    }
    if fc != expected {
        return Err(ResponseError::WrongFunction { expected, got: fc });
    }
    match req {
        Request::ReadHoldingRegisters { count, .. } | Request::ReadInputRegisters { count, .. } => {
            let n = usize::from(*body.first().ok_or(ResponseError::Malformed)?);
            if n != usize::from(*count) * 2 || body.len() != 1 + n {
                return Err(ResponseError::Malformed);
            }
            Ok(Response::Registers(
                body[1..]
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            ))
        }
        Request::ReadCoils { count, .. } | Request::ReadDiscreteInputs { count, .. } => {
            let n = usize::from(*body.first().ok_or(ResponseError::Malformed)?);
            if n != usize::from(*count).div_ceil(8) || body.len() != 1 + n {
                return Err(ResponseError::Malformed);
            }
            Ok(Response::Bits(
                (0..usize::from(*count))
                    .map(|i| body[1 + i / 8] >> (i % 8) & 1 == 1)
                    .collect(),
            ))
        }
        _ => {
            if body.len() != 4 {
                return Err(ResponseError::Malformed);
            }
            Ok(Response::Written)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_wait_for_more() {
        let adu = [0x00, 0x01, 0, 0, 0, 6, 1, 3, 0x9C, 0x40, 0, 2];
        assert_eq!(split_frame(&adu[..5]), Ok(None));
        assert_eq!(split_frame(&adu[..11]), Ok(None));
        let (h, pdu, used) = split_frame(&adu).ok().flatten().unwrap_or((
            Header {
                transaction: 0,
                unit: 0,
            },
            &[],
            0,
        ));
        assert_eq!((h.transaction, h.unit, used), (1, 1, 12));
        assert_eq!(
            decode_request(pdu),
            Ok(Request::ReadHoldingRegisters {
                address: 40000,
                count: 2
            })
        );
        assert_eq!(split_frame(&[0, 1, 0, 9, 0, 6, 1, 3]), Err(FrameError::Protocol(9)));
        assert_eq!(split_frame(&[0, 1, 0, 0, 1, 0, 1, 3]), Err(FrameError::Length(256)));
    }

    #[test]
    fn malformed_requests_get_the_right_exception() {
        assert_eq!(decode_request(&[]), Err(Exception::IllegalFunction));
        assert_eq!(decode_request(&[0x2B, 0x0E, 1, 0]), Err(Exception::IllegalFunction));
        assert_eq!(
            decode_request(&[3, 0, 0, 0, 0]),
            Err(Exception::IllegalDataValue),
            "count 0"
        );
        assert_eq!(
            decode_request(&[3, 0, 0, 0, 126]),
            Err(Exception::IllegalDataValue),
            "count > 125"
        );
        assert_eq!(
            decode_request(&[3, 0xFF, 0xFF, 0, 2]),
            Err(Exception::IllegalDataAddress)
        );
        assert_eq!(decode_request(&[5, 0, 1, 0x12, 0x34]), Err(Exception::IllegalDataValue));
        assert_eq!(
            decode_request(&[0x10, 0, 1, 0, 2, 3, 0, 1, 0]),
            Err(Exception::IllegalDataValue)
        );
    }

    #[test]
    fn requests_round_trip_through_the_client_encoder() {
        let reqs = [
            Request::ReadCoils { address: 1, count: 10 },
            Request::ReadInputRegisters { address: 7, count: 125 },
            Request::WriteSingleCoil {
                address: 3,
                value: true,
            },
            Request::WriteSingleRegister {
                address: 0x5000,
                value: 0xBEEF,
            },
            Request::WriteMultipleCoils {
                address: 9,
                values: vec![true, false, true, true, false, false, false, false, true],
            },
            Request::WriteMultipleRegisters {
                address: 100,
                values: vec![1, 2, 3],
            },
        ];
        for r in reqs {
            let mut out = Vec::new();
            write_request(
                &mut out,
                Header {
                    transaction: 7,
                    unit: 2,
                },
                &r,
            );
            let (_, pdu, used) = split_frame(&out).ok().flatten().unwrap_or((
                Header {
                    transaction: 0,
                    unit: 0,
                },
                &[],
                0,
            ));
            assert_eq!(used, out.len());
            assert_eq!(decode_request(pdu), Ok(r));
        }
    }

    #[test]
    fn responses_decode() {
        let h = Header {
            transaction: 1,
            unit: 1,
        };
        let req = Request::ReadHoldingRegisters { address: 0, count: 2 };
        let mut out = Vec::new();
        write_registers_response(&mut out, h, 3, &[0x1234, 0x5678]);
        assert_eq!(
            decode_response(&req, &out[MBAP_LEN..]),
            Ok(Response::Registers(vec![0x1234, 0x5678]))
        );
        out.clear();
        write_exception(&mut out, h, 3, Exception::GatewayTargetFailed);
        assert_eq!(out[MBAP_LEN..], [0x83, 0x0B]);
        assert_eq!(
            decode_response(&req, &out[MBAP_LEN..]),
            Ok(Response::Exception(Exception::GatewayTargetFailed))
        );
        let bits_req = Request::ReadCoils { address: 0, count: 3 };
        out.clear();
        write_bits_response(&mut out, h, 1, &[1, 0, 1]);
        assert_eq!(
            decode_response(&bits_req, &out[MBAP_LEN..]),
            Ok(Response::Bits(vec![true, false, true]))
        );
    }
}
