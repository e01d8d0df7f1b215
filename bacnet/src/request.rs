//! What a server device is asked: one typed request from a confirmed or unconfirmed service
//! choice and its body. The server and the fuzz target both go through here.

use crate::consts::{confirmed, unconfirmed};
use crate::event::{self, AcknowledgeAlarm};
use crate::management;
use crate::service::{self, ReadAccessSpec, ReadProperty, SubscribeCov, WhoHas, WhoIs, WriteProperty};
use crate::tag::Result;

/// A request a server device handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    WhoIs(WhoIs),
    WhoHas(WhoHas),
    ReadProperty(ReadProperty),
    ReadPropertyMultiple(Vec<ReadAccessSpec>),
    WriteProperty(WriteProperty),
    /// SubscribeCOV, or SubscribeCOVProperty when the request names a property.
    SubscribeCov(SubscribeCov),
    AcknowledgeAlarm(AcknowledgeAlarm),
    /// GetEventInformation after this object (the last of the previous answer).
    GetEventInformation(Option<crate::ObjectId>),
    DeviceCommunicationControl(management::CommunicationControl),
    ReinitializeDevice(management::ReinitializeDevice),
    /// TimeSynchronization or UTCTimeSynchronization.
    TimeSync(management::TimeSync),
    /// A confirmed service this device does not implement (answered with a Reject).
    UnknownConfirmed(u8),
    /// An unconfirmed service a device ignores (I-Am, notifications, time sync, ...).
    OtherUnconfirmed(u8),
}

pub fn decode_confirmed(service: u8, body: &[u8]) -> Result<Request> {
    Ok(match service {
        confirmed::READ_PROPERTY => Request::ReadProperty(service::decode_read_property(body)?),
        confirmed::READ_PROPERTY_MULTIPLE => {
            Request::ReadPropertyMultiple(service::decode_read_property_multiple(body)?)
        }
        confirmed::WRITE_PROPERTY => Request::WriteProperty(service::decode_write_property(body)?),
        confirmed::SUBSCRIBE_COV => Request::SubscribeCov(service::decode_subscribe_cov(body)?),
        confirmed::SUBSCRIBE_COV_PROPERTY => Request::SubscribeCov(service::decode_subscribe_cov_property(body)?),
        confirmed::ACKNOWLEDGE_ALARM => Request::AcknowledgeAlarm(event::decode_acknowledge_alarm(body)?),
        confirmed::GET_EVENT_INFORMATION => Request::GetEventInformation(event::decode_get_event_information(body)?),
        confirmed::DEVICE_COMMUNICATION_CONTROL => {
            Request::DeviceCommunicationControl(management::decode_communication_control(body)?)
        }
        confirmed::REINITIALIZE_DEVICE => Request::ReinitializeDevice(management::decode_reinitialize_device(body)?),
        other => Request::UnknownConfirmed(other),
    })
}

pub fn decode_unconfirmed(service: u8, body: &[u8]) -> Result<Request> {
    Ok(match service {
        unconfirmed::WHO_IS => Request::WhoIs(service::decode_who_is(body)?),
        unconfirmed::WHO_HAS => Request::WhoHas(service::decode_who_has(body)?),
        unconfirmed::TIME_SYNCHRONIZATION => Request::TimeSync(management::decode_time_sync(body, false)?),
        unconfirmed::UTC_TIME_SYNCHRONIZATION => Request::TimeSync(management::decode_time_sync(body, true)?),
        other => Request::OtherUnconfirmed(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apdu, bvll, npdu};

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Xorshift(u64);
    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Every layer of the request path on `d`: must return, never panic.
    fn walk(d: &[u8]) -> Option<Request> {
        let n = match bvll::decode(d).ok()? {
            bvll::Bvll::OriginalUnicast(n)
            | bvll::Bvll::OriginalBroadcast(n)
            | bvll::Bvll::DistributeBroadcastToNetwork(n)
            | bvll::Bvll::ForwardedNpdu { npdu: n, .. } => n,
            _ => return None,
        };
        let n = npdu::decode(n).ok()?;
        match apdu::decode(n.apdu).ok()? {
            apdu::Apdu::ConfirmedRequest { service, body, .. } => decode_confirmed(service, body).ok(),
            apdu::Apdu::UnconfirmedRequest { service, body } => decode_unconfirmed(service, body).ok(),
            _ => None,
        }
    }

    #[test]
    fn random_and_mutated_datagrams_never_panic() {
        // Valid seeds: an RPM with ALL, a WriteProperty with priority, a SubscribeCOVProperty.
        let seeds: Vec<Vec<u8>> = [
            &[
                0x01, 0x04, 0x00, 0x05, 0x01, 0x0E, 0x0C, 0x02, 0x00, 0x00, 0x64, 0x1E, 0x09, 0x08, 0x1F,
            ][..],
            &[
                0x01, 0x04, 0x00, 0x05, 0x02, 0x0F, 0x0C, 0x00, 0x80, 0x00, 0x07, 0x19, 0x55, 0x3E, 0x44, 0x41, 0x60,
                0x00, 0x00, 0x3F, 0x49, 0x08,
            ],
            &[
                0x01, 0x04, 0x00, 0x05, 0x03, 0x1C, 0x09, 0x01, 0x1C, 0x00, 0x00, 0x00, 0x05, 0x29, 0x00, 0x39, 0x3C,
                0x4E, 0x09, 0x55, 0x4F,
            ],
        ]
        .iter()
        .map(|n| bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, n))
        .collect();
        for s in &seeds {
            assert!(
                matches!(
                    walk(s),
                    Some(Request::ReadPropertyMultiple(_) | Request::WriteProperty(_) | Request::SubscribeCov(_))
                ),
                "seed {s:02x?} decodes"
            );
        }
        let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
        for round in 0..200_000u32 {
            let mut d = if round % 2 == 0 {
                let len = (rng.next() % 64) as usize;
                let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if d.len() >= 4 {
                    d[0] = 0x81;
                    d[1] = (rng.next() % 12) as u8;
                    let l = d.len() as u16;
                    d[2..4].copy_from_slice(&l.to_be_bytes());
                }
                d
            } else {
                seeds[(rng.next() % seeds.len() as u64) as usize].clone()
            };
            for _ in 0..(rng.next() % 4) {
                if d.is_empty() {
                    break;
                }
                let i = (rng.next() as usize) % d.len();
                d[i] = rng.next() as u8;
            }
            if rng.next().is_multiple_of(3) && d.len() > 4 {
                let cut = 4 + (rng.next() as usize) % (d.len() - 4);
                d.truncate(cut);
                let l = d.len() as u16;
                d[2..4].copy_from_slice(&l.to_be_bytes());
            }
            walk(&d);
        }
    }
}
