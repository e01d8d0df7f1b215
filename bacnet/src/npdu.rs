//! The network layer header (clause 6.2). A device reads who a routed request came from (SNET,
//! SADR) so its answer can go back through the router, and ignores network layer messages.

use crate::tag::{DecodeError, Result};

pub const VERSION: u8 = 1;
/// DNET of a global broadcast.
pub const GLOBAL_BROADCAST: u16 = 0xFFFF;

/// A network number and a MAC address on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetAddr {
    pub net: u16,
    /// Empty for a broadcast on that network.
    pub mac: Vec<u8>,
}

/// A decoded NPDU header and the APDU it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Npdu<'a> {
    pub expecting_reply: bool,
    pub priority: u8,
    pub destination: Option<NetAddr>,
    pub source: Option<NetAddr>,
    /// `Some(type)` for a network layer message (no APDU).
    pub network_message: Option<u8>,
    pub apdu: &'a [u8],
}

impl Npdu<'_> {
    /// Whether a device on the local network should process it: no destination network, or a
    /// global broadcast.
    pub fn for_local_device(&self) -> bool {
        self.network_message.is_none() && self.destination.as_ref().is_none_or(|d| d.net == GLOBAL_BROADCAST)
    }
}

fn net_addr(buf: &[u8], pos: &mut usize) -> Result<NetAddr> {
    let b = buf.get(*pos..*pos + 3).ok_or(DecodeError::Truncated)?;
    let net = u16::from_be_bytes([b[0], b[1]]);
    let len = usize::from(b[2]);
    *pos += 3;
    let mac = buf.get(*pos..*pos + len).ok_or(DecodeError::Truncated)?.to_vec();
    *pos += len;
    Ok(NetAddr { net, mac })
}

pub fn decode(buf: &[u8]) -> Result<Npdu<'_>> {
    let [version, control, ..] = *buf else {
        return Err(DecodeError::Truncated);
    };
    if version != VERSION {
        return Err(DecodeError::Unsupported("NPDU version"));
    }
    let mut pos = 2;
    let destination = if control & 0x20 != 0 {
        Some(net_addr(buf, &mut pos)?)
    } else {
        None
    };
    let source = if control & 0x08 != 0 {
        let s = net_addr(buf, &mut pos)?;
        if s.net == GLOBAL_BROADCAST || s.mac.is_empty() {
            return Err(DecodeError::InvalidTag);
        }
        Some(s)
    } else {
        None
    };
    if destination.is_some() {
        // Hop count.
        buf.get(pos).ok_or(DecodeError::Truncated)?;
        pos += 1;
    }
    let network_message = if control & 0x80 != 0 {
        let t = *buf.get(pos).ok_or(DecodeError::Truncated)?;
        pos += 1;
        Some(t)
    } else {
        None
    };
    Ok(Npdu {
        expecting_reply: control & 0x04 != 0,
        priority: control & 0x03,
        destination,
        source,
        network_message,
        apdu: buf.get(pos..).unwrap_or(&[]),
    })
}

/// Network layer message types (clause 6.2.4).
pub mod message {
    pub const WHO_IS_ROUTER_TO_NETWORK: u8 = 0x00;
    pub const I_AM_ROUTER_TO_NETWORK: u8 = 0x01;
}

/// Append an NPDU header for an APDU, routed to `destination` when the peer sits behind a router.
pub fn encode(out: &mut Vec<u8>, expecting_reply: bool, destination: Option<&NetAddr>) {
    encode_from(out, expecting_reply, destination, None);
}

fn put_net_addr(out: &mut Vec<u8>, a: &NetAddr) {
    out.extend_from_slice(&a.net.to_be_bytes());
    out.push(a.mac.len() as u8);
    out.extend_from_slice(&a.mac);
}

/// Append an NPDU header for an APDU from `source` (SNET, SADR: a device on a network behind
/// the router that sends it) to `destination`.
pub fn encode_from(out: &mut Vec<u8>, expecting_reply: bool, destination: Option<&NetAddr>, source: Option<&NetAddr>) {
    out.push(VERSION);
    let mut control = 0u8;
    if expecting_reply {
        control |= 0x04;
    }
    if destination.is_some() {
        control |= 0x20;
    }
    if source.is_some() {
        control |= 0x08;
    }
    out.push(control);
    if let Some(d) = destination {
        put_net_addr(out, d);
    }
    if let Some(s) = source {
        put_net_addr(out, s);
    }
    if destination.is_some() {
        out.push(255);
    }
}

/// A network layer message of a router: its type and payload, to `destination` if routed.
pub fn encode_network_message(out: &mut Vec<u8>, destination: Option<&NetAddr>, message_type: u8, payload: &[u8]) {
    out.push(VERSION);
    let mut control = 0x80u8;
    if destination.is_some() {
        control |= 0x20;
    }
    out.push(control);
    if let Some(d) = destination {
        put_net_addr(out, d);
        out.push(255);
    }
    out.push(message_type);
    out.extend_from_slice(payload);
}

/// The networks of a Who-Is-Router-To-Network (`None`: any) from its payload.
pub fn decode_who_is_router(payload: &[u8]) -> Result<Option<u16>> {
    match payload {
        [] => Ok(None),
        [a, b] => Ok(Some(u16::from_be_bytes([*a, *b]))),
        [_] => Err(DecodeError::Truncated),
        _ => Err(DecodeError::TooMany),
    }
}

/// The networks an I-Am-Router-To-Network announces.
pub fn decode_i_am_router(payload: &[u8]) -> Result<Vec<u16>> {
    if !payload.len().is_multiple_of(2) {
        return Err(DecodeError::Truncated);
    }
    Ok(payload
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routed_answers_carry_their_source_and_routers_announce_networks() {
        let dest = NetAddr {
            net: 7,
            mac: vec![0xC0, 0xA8, 0, 5, 0xBA, 0xC0],
        };
        let src = NetAddr {
            net: 1001,
            mac: vec![0x01, 0x93],
        };
        let mut out = Vec::new();
        encode_from(&mut out, true, Some(&dest), Some(&src));
        out.extend_from_slice(&[0x30, 0x01, 0x0C]);
        let n = decode(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((n.destination, n.source), (Some(dest), Some(src.clone())));
        assert!(n.expecting_reply && n.network_message.is_none());
        assert_eq!(n.apdu, &[0x30, 0x01, 0x0C]);

        let mut out = Vec::new();
        encode_network_message(&mut out, None, message::I_AM_ROUTER_TO_NETWORK, &1001u16.to_be_bytes());
        let n = decode(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.network_message, Some(message::I_AM_ROUTER_TO_NETWORK));
        assert_eq!(decode_i_am_router(n.apdu), Ok(vec![1001]));
        assert_eq!(decode_who_is_router(&[]), Ok(None));
        assert_eq!(decode_who_is_router(&[0x03, 0xE9]), Ok(Some(1001)));
        assert!(decode_who_is_router(&[0x03]).is_err());
        assert!(decode_i_am_router(&[0x03]).is_err());
    }

    #[test]
    fn routed_requests_keep_their_source() {
        // version, control (SNET present, expecting reply), SNET 5, SLEN 1, SADR 0x21, APDU.
        let buf = [1, 0x0C, 0, 5, 1, 0x21, 0x00, 0x05];
        let n = decode(&buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.source,
            Some(NetAddr {
                net: 5,
                mac: vec![0x21]
            })
        );
        assert!(n.expecting_reply && n.for_local_device());
        assert_eq!(n.apdu, &[0x00, 0x05]);
        let mut out = Vec::new();
        encode(&mut out, false, n.source.as_ref());
        assert_eq!(out, [1, 0x20, 0, 5, 1, 0x21, 255]);
    }

    #[test]
    fn remote_destinations_and_network_messages_are_not_for_us() {
        let remote = decode(&[1, 0x20, 0, 9, 0, 255, 0x10, 0x08]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!remote.for_local_device());
        let global = decode(&[1, 0x20, 0xFF, 0xFF, 0, 255, 0x10, 0x08]).unwrap_or_else(|e| panic!("{e}"));
        assert!(global.for_local_device());
        let msg = decode(&[1, 0x80, 0x00]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!msg.for_local_device());
        assert!(decode(&[1, 0x20, 0, 9]).is_err());
        assert!(decode(&[2, 0]).is_err());
    }
}
