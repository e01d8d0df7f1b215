//! The application layer header (clause 20.1): the PDU types a server receives and the answers
//! it sends. Segmentation is not supported: a segmented request is answered with an Abort.

use crate::tag::{put_tag, unsigned_octets, DecodeError, Result};

/// A decoded APDU header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apdu<'a> {
    ConfirmedRequest {
        /// A segment of a segmented request.
        segmented: bool,
        /// The largest APDU the requester accepts.
        max_apdu: usize,
        invoke_id: u8,
        service: u8,
        body: &'a [u8],
    },
    UnconfirmedRequest {
        service: u8,
        body: &'a [u8],
    },
    SimpleAck {
        invoke_id: u8,
        service: u8,
    },
    ComplexAck {
        invoke_id: u8,
        service: u8,
    },
    SegmentAck {
        invoke_id: u8,
    },
    Error {
        invoke_id: u8,
        service: u8,
    },
    Reject {
        invoke_id: u8,
        reason: u8,
    },
    Abort {
        invoke_id: u8,
        reason: u8,
    },
}

/// Max-APDU-length-accepted codes (clause 20.1.2.5).
pub fn max_apdu_of_code(code: u8) -> usize {
    match code {
        0 => 50,
        1 => 128,
        2 => 206,
        3 => 480,
        4 => 1024,
        _ => 1476,
    }
}

fn at(buf: &[u8], i: usize) -> Result<u8> {
    buf.get(i).copied().ok_or(DecodeError::Truncated)
}

pub fn decode(buf: &[u8]) -> Result<Apdu<'_>> {
    let first = at(buf, 0)?;
    Ok(match first >> 4 {
        0 => {
            let segmented = first & 0x08 != 0;
            let max_apdu = max_apdu_of_code(at(buf, 1)? & 0x0F);
            let invoke_id = at(buf, 2)?;
            // A segment carries its sequence number and window size before the service choice.
            let service_at = if segmented { 5 } else { 3 };
            let service = at(buf, service_at)?;
            Apdu::ConfirmedRequest {
                segmented,
                max_apdu,
                invoke_id,
                service,
                body: buf.get(service_at + 1..).unwrap_or(&[]),
            }
        }
        1 => Apdu::UnconfirmedRequest {
            service: at(buf, 1)?,
            body: buf.get(2..).unwrap_or(&[]),
        },
        2 => Apdu::SimpleAck {
            invoke_id: at(buf, 1)?,
            service: at(buf, 2)?,
        },
        3 => Apdu::ComplexAck {
            invoke_id: at(buf, 1)?,
            service: at(buf, if first & 0x08 != 0 { 4 } else { 2 })?,
        },
        4 => Apdu::SegmentAck { invoke_id: at(buf, 1)? },
        5 => Apdu::Error {
            invoke_id: at(buf, 1)?,
            service: at(buf, 2)?,
        },
        6 => Apdu::Reject {
            invoke_id: at(buf, 1)?,
            reason: at(buf, 2)?,
        },
        7 => Apdu::Abort {
            invoke_id: at(buf, 1)?,
            reason: at(buf, 2)?,
        },
        _ => return Err(DecodeError::Unsupported("PDU type")),
    })
}

pub fn simple_ack(out: &mut Vec<u8>, invoke_id: u8, service: u8) {
    out.extend_from_slice(&[0x20, invoke_id, service]);
}

/// The header of a ComplexAck; the service's ack body follows.
pub fn complex_ack_header(out: &mut Vec<u8>, invoke_id: u8, service: u8) {
    out.extend_from_slice(&[0x30, invoke_id, service]);
}

fn put_enumerated(out: &mut Vec<u8>, v: u32) {
    let (b, n) = unsigned_octets(u64::from(v));
    put_tag(out, 9, false, n);
    out.extend_from_slice(&b[..n]);
}

pub fn error(out: &mut Vec<u8>, invoke_id: u8, service: u8, class: u32, code: u32) {
    out.extend_from_slice(&[0x50, invoke_id, service]);
    put_enumerated(out, class);
    put_enumerated(out, code);
}

pub fn reject(out: &mut Vec<u8>, invoke_id: u8, reason: u8) {
    out.extend_from_slice(&[0x60, invoke_id, reason]);
}

/// An Abort sent by a server.
pub fn abort(out: &mut Vec<u8>, invoke_id: u8, reason: u8) {
    out.extend_from_slice(&[0x71, invoke_id, reason]);
}

/// The header of a confirmed request we send (a confirmed COV notification), unsegmented.
pub fn confirmed_request_header(out: &mut Vec<u8>, invoke_id: u8, service: u8) {
    out.extend_from_slice(&[0x00, 0x05, invoke_id, service]);
}

pub fn unconfirmed_request_header(out: &mut Vec<u8>, service: u8) {
    out.extend_from_slice(&[0x10, service]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmed_requests_say_what_the_client_accepts() {
        // ReadProperty from a client accepting 1476 octets, invoke id 7.
        let a = decode(&[0x00, 0x05, 0x07, 0x0C, 0x0C]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a,
            Apdu::ConfirmedRequest {
                segmented: false,
                max_apdu: 1476,
                invoke_id: 7,
                service: 12,
                body: &[0x0C]
            }
        );
        let seg = decode(&[0x0C, 0x05, 0x07, 0x00, 0x01, 0x0E]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            seg,
            Apdu::ConfirmedRequest {
                segmented: true,
                service: 14,
                ..
            }
        ));
        assert!(decode(&[0x00, 0x05]).is_err());
        assert!(decode(&[0x90]).is_err());
    }

    #[test]
    fn error_pdu_bytes() {
        let mut out = Vec::new();
        error(&mut out, 3, 12, 1, 31);
        assert_eq!(out, [0x50, 3, 12, 0x91, 1, 0x91, 31]);
    }
}
