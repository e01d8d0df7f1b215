//! The application layer header (clause 20.1): the PDU types a server receives and the answers
//! it sends. The segment fields (sequence number, window) are decoded here; putting segments
//! together and sending them is [`crate::segment`].

use crate::tag::{put_tag, unsigned_octets, DecodeError, Result};

/// A decoded APDU header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apdu<'a> {
    ConfirmedRequest {
        /// A segment of a segmented request.
        segmented: bool,
        /// More segments follow this one.
        more_follows: bool,
        /// The requester takes a segmented answer.
        segmented_response_accepted: bool,
        /// The most segments the requester takes in an answer (`None`: unspecified or over 64).
        max_segments: Option<usize>,
        /// The largest APDU the requester accepts.
        max_apdu: usize,
        invoke_id: u8,
        /// Sequence number and proposed window size of a segment (0 and 0 when unsegmented).
        sequence: u8,
        window: u8,
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
        segmented: bool,
        more_follows: bool,
        sequence: u8,
        window: u8,
        service: u8,
        body: &'a [u8],
    },
    SegmentAck {
        /// A negative acknowledgement: a segment came out of order.
        nak: bool,
        /// Sent by the server of the transaction (acknowledging a segmented request).
        from_server: bool,
        invoke_id: u8,
        sequence: u8,
        window: u8,
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
        /// Sent by the server of the transaction (else by its client).
        from_server: bool,
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

/// Max-segments-accepted codes (clause 20.1.2.4); `None` for unspecified (0) and more than 64 (7).
pub fn max_segments_of_code(code: u8) -> Option<usize> {
    match code & 0x07 {
        1 => Some(2),
        2 => Some(4),
        3 => Some(8),
        4 => Some(16),
        5 => Some(32),
        6 => Some(64),
        _ => None,
    }
}

/// The code of the largest max-segments-accepted not above `n` (more than 64: 7).
pub fn code_of_max_segments(n: usize) -> u8 {
    match n {
        0 | 1 => 0,
        2..=3 => 1,
        4..=7 => 2,
        8..=15 => 3,
        16..=31 => 4,
        32..=63 => 5,
        64 => 6,
        _ => 7,
    }
}

/// The code of the largest max-APDU-length-accepted not above `n` (clause 20.1.2.5).
pub fn code_of_max_apdu(n: usize) -> u8 {
    match n {
        0..=127 => 0,
        128..=205 => 1,
        206..=479 => 2,
        480..=1023 => 3,
        1024..=1475 => 4,
        _ => 5,
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
            let limits = at(buf, 1)?;
            let invoke_id = at(buf, 2)?;
            // A segment carries its sequence number and window size before the service choice.
            let (sequence, window, service_at) = if segmented {
                (at(buf, 3)?, at(buf, 4)?, 5)
            } else {
                (0, 0, 3)
            };
            let service = at(buf, service_at)?;
            Apdu::ConfirmedRequest {
                segmented,
                more_follows: segmented && first & 0x04 != 0,
                segmented_response_accepted: first & 0x02 != 0,
                max_segments: max_segments_of_code(limits >> 4),
                max_apdu: max_apdu_of_code(limits & 0x0F),
                invoke_id,
                sequence,
                window,
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
        3 => {
            let segmented = first & 0x08 != 0;
            let (sequence, window, service_at) = if segmented {
                (at(buf, 2)?, at(buf, 3)?, 4)
            } else {
                (0, 0, 2)
            };
            Apdu::ComplexAck {
                invoke_id: at(buf, 1)?,
                segmented,
                more_follows: segmented && first & 0x04 != 0,
                sequence,
                window,
                service: at(buf, service_at)?,
                body: buf.get(service_at + 1..).unwrap_or(&[]),
            }
        }
        4 => Apdu::SegmentAck {
            nak: first & 0x02 != 0,
            from_server: first & 0x01 != 0,
            invoke_id: at(buf, 1)?,
            sequence: at(buf, 2)?,
            window: at(buf, 3)?,
        },
        5 => Apdu::Error {
            invoke_id: at(buf, 1)?,
            service: at(buf, 2)?,
        },
        6 => Apdu::Reject {
            invoke_id: at(buf, 1)?,
            reason: at(buf, 2)?,
        },
        7 => Apdu::Abort {
            from_server: first & 0x01 != 0,
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

/// The header of a confirmed request we send (a confirmed notification), unsegmented.
pub fn confirmed_request_header(out: &mut Vec<u8>, invoke_id: u8, service: u8) {
    out.extend_from_slice(&[0x00, 0x05, invoke_id, service]);
}

/// A SegmentACK (clause 20.1.6): `sequence` is the last segment received in order.
pub fn segment_ack(out: &mut Vec<u8>, invoke_id: u8, sequence: u8, window: u8, nak: bool, from_server: bool) {
    let first = 0x40 | if nak { 0x02 } else { 0 } | u8::from(from_server);
    out.extend_from_slice(&[first, invoke_id, sequence, window]);
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
                more_follows: false,
                segmented_response_accepted: false,
                max_segments: None,
                max_apdu: 1476,
                invoke_id: 7,
                sequence: 0,
                window: 0,
                service: 12,
                body: &[0x0C]
            }
        );
        // The first of several segments, segmented answers accepted, up to 16 segments.
        let seg = decode(&[0x0E, 0x45, 0x07, 0x00, 0x04, 0x0E]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            seg,
            Apdu::ConfirmedRequest {
                segmented: true,
                more_follows: true,
                segmented_response_accepted: true,
                max_segments: Some(16),
                sequence: 0,
                window: 4,
                service: 14,
                ..
            }
        ));
        let ack = decode(&[0x43, 0x07, 0x03, 0x02]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ack,
            Apdu::SegmentAck {
                nak: true,
                from_server: true,
                invoke_id: 7,
                sequence: 3,
                window: 2
            }
        );
        let mut out = Vec::new();
        segment_ack(&mut out, 7, 3, 2, true, true);
        assert_eq!(out, [0x43, 0x07, 0x03, 0x02]);
        for n in [2, 4, 8, 16, 32, 64] {
            assert_eq!(max_segments_of_code(code_of_max_segments(n)), Some(n));
        }
        for n in [50, 128, 206, 480, 1024, 1476] {
            assert_eq!(max_apdu_of_code(code_of_max_apdu(n)), n);
        }
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
