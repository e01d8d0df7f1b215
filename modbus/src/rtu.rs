//! Modbus RTU: frames (unit, PDU, CRC-16 little-endian) on a serial line, delimited by
//! silence. Frame lengths are derived from the function code, as real masters and slaves do;
//! a frame whose CRC does not match is dropped (a slave stays silent, a master reports it).

use crate::codec::{self, Request, Response};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for b in data {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// An RTU ADU: unit, PDU, CRC (low byte first).
pub fn frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + 3);
    out.push(unit);
    out.extend_from_slice(pdu);
    let crc = crc16(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The CRC of a complete frame matches.
pub fn crc_ok(adu: &[u8]) -> bool {
    adu.len() >= 4 && crc16(&adu[..adu.len() - 2]).to_le_bytes() == [adu[adu.len() - 2], adu[adu.len() - 1]]
}

/// A function code whose frame length is unknown: resynchronise on the line's silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFunction(pub u8);

/// Length of a request ADU from its first bytes: `Ok(None)` = need more.
pub fn request_len(buf: &[u8]) -> Result<Option<usize>, UnknownFunction> {
    let Some(&fc) = buf.get(1) else { return Ok(None) };
    match fc {
        0x01..=0x06 => Ok(Some(8)),
        0x0F | 0x10 => Ok(buf.get(6).map(|n| 9 + usize::from(*n))),
        other => Err(UnknownFunction(other)),
    }
}

/// Length of a response ADU from its first bytes.
pub fn response_len(buf: &[u8]) -> Result<Option<usize>, UnknownFunction> {
    let Some(&fc) = buf.get(1) else { return Ok(None) };
    match fc {
        f if f & 0x80 != 0 => Ok(Some(5)),
        0x01..=0x04 => Ok(buf.get(2).map(|n| 5 + usize::from(*n))),
        0x05 | 0x06 | 0x0F | 0x10 => Ok(Some(8)),
        other => Err(UnknownFunction(other)),
    }
}

/// Time of one character on the line (11 bits per character).
pub fn char_time(baud: u32) -> Duration {
    Duration::from_secs_f64(11.0 / f64::from(baud.max(300)))
}

/// The silence that ends a frame: 3.5 characters, at least 1.75 ms (the standard's floor above
/// 19200 baud).
pub fn frame_gap(baud: u32) -> Duration {
    (char_time(baud) * 7 / 2).max(Duration::from_micros(1750))
}

/// A master on a serial line: one request at a time, a quiet time before each.
pub struct RtuMaster<S> {
    port: S,
    /// Quiet time kept between a reply and the next request.
    pub frame_interval: Duration,
    gap: Duration,
    last: tokio::time::Instant,
    pdu: Vec<u8>,
}

/// Why an RTU exchange failed.
#[derive(Debug)]
pub enum RtuError {
    Timeout,
    BadCrc,
    Malformed,
    Io(io::Error),
}

impl std::error::Error for RtuError {}

impl std::fmt::Display for RtuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RtuError::Timeout => f.write_str("no answer in time"),
            RtuError::BadCrc => f.write_str("answer with a bad CRC"),
            RtuError::Malformed => f.write_str("malformed answer"),
            RtuError::Io(e) => write!(f, "serial line: {e}"),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RtuMaster<S> {
    pub fn new(port: S, baud: u32, frame_interval: Duration) -> RtuMaster<S> {
        RtuMaster {
            port,
            frame_interval,
            gap: frame_gap(baud),
            last: tokio::time::Instant::now(),
            pdu: Vec::with_capacity(256),
        }
    }

    /// Send a request and wait for its answer.
    pub async fn call(&mut self, unit: u8, req: &Request, timeout: Duration) -> Result<Response, RtuError> {
        tokio::time::sleep_until(self.last + self.frame_interval).await;
        self.pdu.clear();
        codec::write_request(&mut self.pdu, codec::Header { transaction: 0, unit }, req);
        let adu = frame(unit, &self.pdu[codec::MBAP_LEN..]);
        self.port.write_all(&adu).await.map_err(RtuError::Io)?;
        let result = self.read_answer(unit, req, timeout).await;
        if result.is_err() {
            self.flush().await;
        }
        self.last = tokio::time::Instant::now();
        result
    }

    async fn read_answer(&mut self, unit: u8, req: &Request, timeout: Duration) -> Result<Response, RtuError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = Vec::with_capacity(260);
        let mut chunk = [0u8; 260];
        loop {
            if let Ok(Some(len)) = response_len(&buf) {
                if buf.len() >= len {
                    let adu = &buf[..len];
                    if !crc_ok(adu) {
                        return Err(RtuError::BadCrc);
                    }
                    if adu[0] != unit {
                        return Err(RtuError::Malformed);
                    }
                    return codec::decode_response(req, &adu[1..len - 2]).map_err(|_| RtuError::Malformed);
                }
            } else if response_len(&buf).is_err() {
                return Err(RtuError::Malformed);
            }
            let n = match tokio::time::timeout_at(deadline, self.port.read(&mut chunk)).await {
                Ok(Ok(0)) => {
                    return Err(RtuError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "line closed",
                    )))
                }
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(RtuError::Io(e)),
                Err(_) => return Err(RtuError::Timeout),
            };
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Drop whatever is still arriving (a late or broken answer) until the line is quiet.
    async fn flush(&mut self) {
        let mut sink = [0u8; 256];
        let quiet = (self.gap * 4).max(self.frame_interval);
        while let Ok(Ok(n)) = tokio::time::timeout(quiet, self.port.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// A serial line as scenarios and bridge configs write it (one definition for both).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialLineDoc {
    /// The port: `/dev/ttyUSB0`, or one end of a pty pair.
    pub device: String,
    #[serde(default = "d_baud")]
    pub baud: u32,
    /// none, even (default), odd.
    #[serde(default = "d_parity")]
    pub parity: String,
    #[serde(default = "d_stop")]
    pub stop_bits: u8,
    /// A master's quiet time between a reply and its next request (simulated slaves ignore it).
    #[serde(default = "d_frame_interval")]
    pub frame_interval_ms: u64,
}

fn d_baud() -> u32 {
    9600
}
fn d_parity() -> String {
    "even".into()
}
fn d_stop() -> u8 {
    1
}
fn d_frame_interval() -> u64 {
    50
}

/// A validated serial line, 8 data bits.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialLine {
    pub device: String,
    pub baud: u32,
    pub parity: Parity,
    pub stop_bits: u8,
    pub frame_interval: Duration,
}

impl SerialLineDoc {
    /// The line (with fallbacks where a setting is wrong) and every problem found.
    pub fn resolve(&self) -> (SerialLine, Vec<String>) {
        let mut problems = Vec::new();
        let parity = parse_parity(&self.parity).unwrap_or_else(|| {
            problems.push(format!("parity `{}` is not none, even or odd", self.parity));
            Parity::Even
        });
        if !matches!(self.stop_bits, 1 | 2) {
            problems.push("stop_bits must be 1 or 2".to_string());
        }
        if !(300..=921_600).contains(&self.baud) {
            problems.push(format!("baud {} is outside 300..=921600", self.baud));
        }
        let line = SerialLine {
            device: self.device.clone(),
            baud: self.baud.clamp(300, 921_600),
            parity,
            stop_bits: self.stop_bits,
            frame_interval: Duration::from_millis(self.frame_interval_ms),
        };
        (line, problems)
    }
}

/// Open a serial line (a real port or a pty) with its settings, 8 data bits.
pub fn open_serial(line: &SerialLine) -> io::Result<tokio_serial::SerialStream> {
    use tokio_serial::SerialPortBuilderExt;
    let stop = if line.stop_bits == 2 {
        tokio_serial::StopBits::Two
    } else {
        tokio_serial::StopBits::One
    };
    tokio_serial::new(line.device.as_str(), line.baud)
        .parity(line.parity)
        .stop_bits(stop)
        .data_bits(tokio_serial::DataBits::Eight)
        .open_native_async()
        .map_err(io::Error::other)
}

pub use tokio_serial::{Parity, SerialStream};

/// Parity as configs write it: `none`, `even`, `odd`.
pub fn parse_parity(text: &str) -> Option<Parity> {
    match text {
        "none" => Some(Parity::None),
        "even" => Some(Parity::Even),
        "odd" => Some(Parity::Odd),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_frame() {
        // Read holding registers 0..10 of unit 1: 01 03 00 00 00 0A C5 CD.
        assert_eq!(frame(1, &[3, 0, 0, 0, 10]), vec![1, 3, 0, 0, 0, 10, 0xC5, 0xCD]);
        assert!(crc_ok(&[1, 3, 0, 0, 0, 10, 0xC5, 0xCD]));
        assert!(!crc_ok(&[1, 3, 0, 0, 0, 10, 0xC5, 0xCE]));
    }

    #[test]
    fn lengths_from_function_codes() {
        assert_eq!(request_len(&[1, 3]), Ok(Some(8)));
        assert_eq!(request_len(&[1, 0x10, 0, 0, 0, 2]), Ok(None));
        assert_eq!(request_len(&[1, 0x10, 0, 0, 0, 2, 4]), Ok(Some(13)));
        assert_eq!(request_len(&[1, 0x2B]), Err(UnknownFunction(0x2B)));
        assert_eq!(response_len(&[1, 3, 4]), Ok(Some(9)));
        assert_eq!(response_len(&[1, 0x83]), Ok(Some(5)));
        assert_eq!(response_len(&[1, 6]), Ok(Some(8)));
    }

    #[tokio::test]
    async fn master_reads_through_a_duplex_pipe_and_reports_a_bad_crc() {
        let (a, mut b) = tokio::io::duplex(256);
        let mut m = RtuMaster::new(a, 115_200, Duration::from_millis(1));
        let slave = tokio::spawn(async move {
            let mut req = [0u8; 8];
            for corrupt in [false, true] {
                b.read_exact(&mut req).await.ok();
                let mut answer = frame(1, &[3, 4, 0x12, 0x34, 0x56, 0x78]);
                if corrupt {
                    let n = answer.len();
                    answer[n - 1] ^= 0xFF;
                }
                b.write_all(&answer).await.ok();
            }
            b
        });
        let req = Request::ReadHoldingRegisters { address: 0, count: 2 };
        let r = m.call(1, &req, Duration::from_secs(1)).await;
        assert!(
            matches!(r, Ok(Response::Registers(ref w)) if w == &vec![0x1234, 0x5678]),
            "{r:?}"
        );
        let r = m.call(1, &req, Duration::from_secs(1)).await;
        assert!(matches!(r, Err(RtuError::BadCrc)), "{r:?}");
        let _b = slave.await;
        let r = m.call(1, &req, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(RtuError::Timeout) | Err(RtuError::Io(_))), "{r:?}");
    }
}
