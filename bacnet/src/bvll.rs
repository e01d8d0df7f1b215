//! BACnet Virtual Link Layer for BACnet/IP (Annex J): the 4-octet header of every datagram and
//! the BBMD / foreign-device messages.

use crate::tag::{DecodeError, Result};
use std::net::{Ipv4Addr, SocketAddrV4};

/// BVLC type of BACnet/IP.
pub const TYPE_BIP: u8 = 0x81;

/// BVLC functions.
pub mod function {
    pub const RESULT: u8 = 0x00;
    pub const WRITE_BDT: u8 = 0x01;
    pub const READ_BDT: u8 = 0x02;
    pub const READ_BDT_ACK: u8 = 0x03;
    pub const FORWARDED_NPDU: u8 = 0x04;
    pub const REGISTER_FOREIGN_DEVICE: u8 = 0x05;
    pub const READ_FDT: u8 = 0x06;
    pub const READ_FDT_ACK: u8 = 0x07;
    pub const DELETE_FDT_ENTRY: u8 = 0x08;
    pub const DISTRIBUTE_BROADCAST_TO_NETWORK: u8 = 0x09;
    pub const ORIGINAL_UNICAST_NPDU: u8 = 0x0A;
    pub const ORIGINAL_BROADCAST_NPDU: u8 = 0x0B;
}

/// BVLC-Result codes.
pub mod result {
    pub const SUCCESSFUL_COMPLETION: u16 = 0x0000;
    pub const WRITE_BDT_NAK: u16 = 0x0010;
    pub const READ_BDT_NAK: u16 = 0x0020;
    pub const REGISTER_FOREIGN_DEVICE_NAK: u16 = 0x0030;
    pub const READ_FDT_NAK: u16 = 0x0040;
    pub const DELETE_FDT_ENTRY_NAK: u16 = 0x0050;
    pub const DISTRIBUTE_BROADCAST_TO_NETWORK_NAK: u16 = 0x0060;
}

/// A decoded BVLL message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bvll<'a> {
    Result(u16),
    WriteBdt,
    ReadBdt,
    ForwardedNpdu {
        origin: SocketAddrV4,
        npdu: &'a [u8],
    },
    RegisterForeignDevice {
        ttl: u16,
    },
    ReadFdt,
    DeleteFdtEntry(SocketAddrV4),
    DistributeBroadcastToNetwork(&'a [u8]),
    OriginalUnicast(&'a [u8]),
    OriginalBroadcast(&'a [u8]),
    /// A function a device has no use for (acks meant for BBMDs, unknown codes).
    Other(u8),
}

fn address(b: &[u8]) -> Result<SocketAddrV4> {
    match b {
        [a, b2, c, d, p1, p2] => Ok(SocketAddrV4::new(
            Ipv4Addr::new(*a, *b2, *c, *d),
            u16::from_be_bytes([*p1, *p2]),
        )),
        _ => Err(DecodeError::Truncated),
    }
}

fn put_address(out: &mut Vec<u8>, a: SocketAddrV4) {
    out.extend_from_slice(&a.ip().octets());
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// Decode a datagram's BVLL header.
pub fn decode(buf: &[u8]) -> Result<Bvll<'_>> {
    let [kind, func, l1, l2, ..] = *buf else {
        return Err(DecodeError::Truncated);
    };
    if kind != TYPE_BIP {
        return Err(DecodeError::Unsupported("BVLC type"));
    }
    let len = usize::from(u16::from_be_bytes([l1, l2]));
    if len != buf.len() || len < 4 {
        return Err(DecodeError::Truncated);
    }
    let body = &buf[4..];
    Ok(match func {
        function::RESULT => match body {
            [a, b] => Bvll::Result(u16::from_be_bytes([*a, *b])),
            _ => return Err(DecodeError::Truncated),
        },
        function::WRITE_BDT => Bvll::WriteBdt,
        function::READ_BDT => Bvll::ReadBdt,
        function::FORWARDED_NPDU => {
            if body.len() < 6 {
                return Err(DecodeError::Truncated);
            }
            Bvll::ForwardedNpdu {
                origin: address(&body[..6])?,
                npdu: &body[6..],
            }
        }
        function::REGISTER_FOREIGN_DEVICE => match body {
            [a, b] => Bvll::RegisterForeignDevice {
                ttl: u16::from_be_bytes([*a, *b]),
            },
            _ => return Err(DecodeError::Truncated),
        },
        function::READ_FDT => Bvll::ReadFdt,
        function::DELETE_FDT_ENTRY => Bvll::DeleteFdtEntry(address(body)?),
        function::DISTRIBUTE_BROADCAST_TO_NETWORK => Bvll::DistributeBroadcastToNetwork(body),
        function::ORIGINAL_UNICAST_NPDU => Bvll::OriginalUnicast(body),
        function::ORIGINAL_BROADCAST_NPDU => Bvll::OriginalBroadcast(body),
        other => Bvll::Other(other),
    })
}

/// A datagram: header for `function` and `body`.
pub fn frame(function: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(TYPE_BIP);
    out.push(function);
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A Forwarded-NPDU carrying `npdu` that came from `origin`.
pub fn forwarded(origin: SocketAddrV4, npdu: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(npdu.len() + 6);
    put_address(&mut body, origin);
    body.extend_from_slice(npdu);
    frame(function::FORWARDED_NPDU, &body)
}

pub fn result(code: u16) -> Vec<u8> {
    frame(function::RESULT, &code.to_be_bytes())
}

/// One row of a foreign device table as Read-FDT-Ack reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdtEntry {
    pub address: SocketAddrV4,
    pub ttl: u16,
    pub remaining: u16,
}

pub fn read_fdt_ack(entries: &[FdtEntry]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.len() * 10);
    for e in entries {
        put_address(&mut body, e.address);
        body.extend_from_slice(&e.ttl.to_be_bytes());
        body.extend_from_slice(&e.remaining.to_be_bytes());
    }
    frame(function::READ_FDT_ACK, &body)
}

/// Read-BDT-Ack with an empty table: this device forwards to foreign devices only, it has no
/// peer BBMDs.
pub fn read_bdt_ack_empty() -> Vec<u8> {
    frame(function::READ_BDT_ACK, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 7), 47809);
        let f = forwarded(a, &[1, 0, 0x10, 0x08]);
        assert_eq!(
            decode(&f),
            Ok(Bvll::ForwardedNpdu {
                origin: a,
                npdu: &[1, 0, 0x10, 0x08]
            })
        );
        assert_eq!(
            decode(&frame(function::REGISTER_FOREIGN_DEVICE, &[0, 60])),
            Ok(Bvll::RegisterForeignDevice { ttl: 60 })
        );
        assert_eq!(decode(&result(result::WRITE_BDT_NAK)), Ok(Bvll::Result(0x10)));
        assert_eq!(decode(&frame(0x0A, &[1, 4])), Ok(Bvll::OriginalUnicast(&[1, 4])));
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(decode(&[0x81, 0x0A, 0x00]).is_err());
        assert!(decode(&[0x82, 0x0A, 0x00, 0x04]).is_err(), "not BACnet/IP");
        assert!(decode(&[0x81, 0x0A, 0x00, 0x09, 1, 2]).is_err(), "length disagrees");
        assert!(
            decode(&[0x81, 0x04, 0x00, 0x06, 1, 2]).is_err(),
            "forwarded without origin"
        );
    }
}
