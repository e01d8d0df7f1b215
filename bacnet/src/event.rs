//! Alarms and events (clause 13): the time stamps, transition bits and destinations of
//! intrinsic reporting, the EventNotification a device sends, and the two requests about events
//! it answers (AcknowledgeAlarm, GetEventInformation), with the client encoders tests use.

use crate::tag::{put_closing, put_context_bool, put_context_object_id, put_context_unsigned, put_opening, put_tag};
use crate::tag::{Body, Class, DecodeError, Reader, Result};
use crate::value::{BitString, ObjectId, Value};

/// A transition of an event-initiating object, in BACnetEventTransitionBits order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    ToOffnormal = 0,
    ToFault = 1,
    ToNormal = 2,
}

impl Transition {
    pub const ALL: [Transition; 3] = [Transition::ToOffnormal, Transition::ToFault, Transition::ToNormal];

    /// The transition that leads into event state `to`.
    pub fn into_state(to: u32) -> Transition {
        match to {
            crate::consts::event_state::NORMAL => Transition::ToNormal,
            crate::consts::event_state::FAULT => Transition::ToFault,
            _ => Transition::ToOffnormal,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Three flags as a BACnetEventTransitionBits bit string.
pub fn transition_bits(bits: [bool; 3]) -> BitString {
    let mut b = BitString::with_len(3);
    for (i, on) in bits.iter().enumerate() {
        b.set(i as u32, *on);
    }
    b
}

/// BACnetTimeStamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStamp {
    /// Hour, minute, second, hundredths.
    Time([u8; 4]),
    Sequence(u32),
    /// Date (year - 1900, month, day, weekday) and time.
    DateTime([u8; 4], [u8; 4]),
}

impl TimeStamp {
    /// The date and time "unspecified" (every octet X'FF'), for a transition that never happened.
    pub const UNSPECIFIED: TimeStamp = TimeStamp::DateTime([0xFF; 4], [0xFF; 4]);

    /// The choice alone (inside a constructed element).
    pub fn encode_choice(&self, out: &mut Vec<u8>) {
        match self {
            TimeStamp::Time(t) => {
                put_tag(out, 0, true, 4);
                out.extend_from_slice(t);
            }
            TimeStamp::Sequence(n) => put_context_unsigned(out, 1, u64::from(*n)),
            TimeStamp::DateTime(d, t) => {
                put_opening(out, 2);
                Value::Date(*d).encode(out);
                Value::Time(*t).encode(out);
                put_closing(out, 2);
            }
        }
    }

    /// Wrapped in context tag `n` (a parameter of a service).
    pub fn encode(&self, out: &mut Vec<u8>, n: u8) {
        put_opening(out, n);
        self.encode_choice(out);
        put_closing(out, n);
    }

    fn decode_choice(r: &mut Reader<'_>) -> Result<TimeStamp> {
        let four = |c: &[u8]| -> Result<[u8; 4]> { c.try_into().map_err(|_| DecodeError::WrongType) };
        let t = r.peek_tag()?.ok_or(DecodeError::Missing)?;
        match (t.class, t.number, t.body) {
            (Class::Context, 0, Body::Length(4)) => {
                r.tag()?;
                Ok(TimeStamp::Time(four(r.take(4)?)?))
            }
            (Class::Context, 1, Body::Length(_)) => Ok(TimeStamp::Sequence(r.context_unsigned(1)?)),
            (Class::Context, 2, Body::Opening) => {
                r.opening(2)?;
                let (Value::Date(d), Value::Time(t)) = (Value::decode(r)?, Value::decode(r)?) else {
                    return Err(DecodeError::WrongType);
                };
                r.closing(2)?;
                Ok(TimeStamp::DateTime(d, t))
            }
            _ => Err(DecodeError::InvalidTag),
        }
    }

    /// Wrapped in context tag `n`.
    pub fn decode(r: &mut Reader<'_>, n: u8) -> Result<TimeStamp> {
        r.opening(n)?;
        let ts = TimeStamp::decode_choice(r)?;
        r.closing(n)?;
        Ok(ts)
    }
}

/// Who a Notification Class sends to (BACnetRecipient).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    Device(ObjectId),
    /// Network number (0 = the local network) and MAC address (B/IP: 4 octets of IPv4, 2 of port).
    Address {
        network: u16,
        mac: Vec<u8>,
    },
}

/// One entry of a Recipient_List (BACnetDestination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Monday first.
    pub valid_days: [bool; 7],
    pub from_time: [u8; 4],
    pub to_time: [u8; 4],
    pub recipient: Recipient,
    pub process_id: u32,
    pub confirmed: bool,
    pub transitions: [bool; 3],
}

impl Destination {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut days = BitString::with_len(7);
        for (i, on) in self.valid_days.iter().enumerate() {
            days.set(i as u32, *on);
        }
        Value::BitString(days).encode(out);
        Value::Time(self.from_time).encode(out);
        Value::Time(self.to_time).encode(out);
        match &self.recipient {
            Recipient::Device(id) => put_context_object_id(out, 0, *id),
            Recipient::Address { network, mac } => {
                put_opening(out, 1);
                Value::Unsigned(u64::from(*network)).encode(out);
                Value::OctetString(mac.clone()).encode(out);
                put_closing(out, 1);
            }
        }
        Value::Unsigned(u64::from(self.process_id)).encode(out);
        Value::Boolean(self.confirmed).encode(out);
        Value::BitString(transition_bits(self.transitions)).encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Destination> {
        let bits = |v: Value, len: u32| -> Result<Vec<bool>> {
            match v {
                Value::BitString(b) if b.len >= len => Ok((0..len).map(|i| b.get(i)).collect()),
                _ => Err(DecodeError::WrongType),
            }
        };
        let days = bits(Value::decode(r)?, 7)?;
        let (Value::Time(from_time), Value::Time(to_time)) = (Value::decode(r)?, Value::decode(r)?) else {
            return Err(DecodeError::WrongType);
        };
        let recipient = if r.next_is_context(0) {
            Recipient::Device(r.context_object_id(0)?)
        } else {
            r.opening(1)?;
            let (Value::Unsigned(network), Value::OctetString(mac)) = (Value::decode(r)?, Value::decode(r)?) else {
                return Err(DecodeError::WrongType);
            };
            r.closing(1)?;
            Recipient::Address {
                network: u16::try_from(network).map_err(|_| DecodeError::OutOfRange)?,
                mac,
            }
        };
        let Value::Unsigned(process_id) = Value::decode(r)? else {
            return Err(DecodeError::WrongType);
        };
        let Value::Boolean(confirmed) = Value::decode(r)? else {
            return Err(DecodeError::WrongType);
        };
        let transitions = bits(Value::decode(r)?, 3)?;
        let mut valid_days = [false; 7];
        valid_days.copy_from_slice(&days);
        Ok(Destination {
            valid_days,
            from_time,
            to_time,
            recipient,
            process_id: u32::try_from(process_id).map_err(|_| DecodeError::OutOfRange)?,
            confirmed,
            transitions: [transitions[0], transitions[1], transitions[2]],
        })
    }
}

/// A written Recipient_List: the bytes of the property value, every destination in order.
pub fn decode_destinations(value: &[u8]) -> Result<Vec<Destination>> {
    let mut r = Reader::new(value);
    let mut out = Vec::new();
    while !r.at_end() {
        out.push(Destination::decode(&mut r)?);
    }
    Ok(out)
}

/// A property state in a change-of-state notification (BACnetPropertyStates).
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyState {
    /// BACnetBinaryPV.
    Binary(u32),
    /// A multi-state object's state number.
    Unsigned(u64),
}

/// The event values of a notification (BACnetNotificationParameters), by event type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventValues {
    OutOfRange {
        value: f32,
        flags: BitString,
        deadband: f32,
        limit: f32,
    },
    ChangeOfState {
        state: PropertyState,
        flags: BitString,
    },
    ChangeOfBitstring {
        bits: BitString,
        flags: BitString,
    },
    ChangeOfReliability {
        reliability: u32,
        flags: BitString,
    },
}

impl EventValues {
    /// The event type these values belong to.
    pub fn event_type(&self) -> u32 {
        use crate::consts::event_type::*;
        match self {
            EventValues::OutOfRange { .. } => OUT_OF_RANGE,
            EventValues::ChangeOfState { .. } => CHANGE_OF_STATE,
            EventValues::ChangeOfBitstring { .. } => CHANGE_OF_BITSTRING,
            EventValues::ChangeOfReliability { .. } => CHANGE_OF_RELIABILITY,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let choice = self.event_type() as u8;
        let context_bits = |out: &mut Vec<u8>, n: u8, b: &BitString| {
            let mut v = Vec::with_capacity(4);
            Value::BitString(b.clone()).encode(&mut v);
            // Same content as the application encoding, with a context tag.
            put_tag(out, n, true, v.len() - 1);
            out.extend_from_slice(v.get(1..).unwrap_or(&[]));
        };
        let context_real = |out: &mut Vec<u8>, n: u8, x: f32| {
            put_tag(out, n, true, 4);
            out.extend_from_slice(&x.to_be_bytes());
        };
        put_opening(out, 12);
        put_opening(out, choice);
        match self {
            EventValues::OutOfRange {
                value,
                flags,
                deadband,
                limit,
            } => {
                context_real(out, 0, *value);
                context_bits(out, 1, flags);
                context_real(out, 2, *deadband);
                context_real(out, 3, *limit);
            }
            EventValues::ChangeOfState { state, flags } => {
                put_opening(out, 0);
                match state {
                    PropertyState::Binary(b) => put_context_unsigned(out, 1, u64::from(*b)),
                    PropertyState::Unsigned(n) => put_context_unsigned(out, 11, *n),
                }
                put_closing(out, 0);
                context_bits(out, 1, flags);
            }
            EventValues::ChangeOfBitstring { bits, flags } => {
                context_bits(out, 0, bits);
                context_bits(out, 1, flags);
            }
            EventValues::ChangeOfReliability { reliability, flags } => {
                put_context_unsigned(out, 0, u64::from(*reliability));
                context_bits(out, 1, flags);
                put_opening(out, 2);
                put_closing(out, 2);
            }
        }
        put_closing(out, choice);
        put_closing(out, 12);
    }
}

/// (Un)ConfirmedEventNotification-Request.
#[derive(Debug, Clone, PartialEq)]
pub struct EventNotification {
    pub process_id: u32,
    pub device: ObjectId,
    pub object: ObjectId,
    pub time_stamp: TimeStamp,
    pub notification_class: u32,
    pub priority: u8,
    pub event_type: u32,
    pub message: Option<String>,
    pub notify_type: u32,
    /// Absent in an ack notification.
    pub ack_required: Option<bool>,
    /// Absent in an ack notification.
    pub from_state: Option<u32>,
    pub to_state: u32,
    /// Absent in an ack notification.
    pub values: Option<EventValues>,
}

pub fn encode_event_notification(out: &mut Vec<u8>, n: &EventNotification) {
    put_context_unsigned(out, 0, u64::from(n.process_id));
    put_context_object_id(out, 1, n.device);
    put_context_object_id(out, 2, n.object);
    n.time_stamp.encode(out, 3);
    put_context_unsigned(out, 4, u64::from(n.notification_class));
    put_context_unsigned(out, 5, u64::from(n.priority));
    put_context_unsigned(out, 6, u64::from(n.event_type));
    if let Some(m) = &n.message {
        put_tag(out, 7, true, m.len() + 1);
        out.push(0);
        out.extend_from_slice(m.as_bytes());
    }
    put_context_unsigned(out, 8, u64::from(n.notify_type));
    if let Some(a) = n.ack_required {
        put_context_bool(out, 9, a);
    }
    if let Some(f) = n.from_state {
        put_context_unsigned(out, 10, u64::from(f));
    }
    put_context_unsigned(out, 11, u64::from(n.to_state));
    if let Some(v) = &n.values {
        v.encode(out);
    }
}

/// The parts of an EventNotification a receiver acts on (tests and the fuzz target decode
/// what the server sends).
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationHead {
    pub process_id: u32,
    pub device: ObjectId,
    pub object: ObjectId,
    pub time_stamp: TimeStamp,
    pub notification_class: u32,
    pub priority: u32,
    pub event_type: u32,
    pub message: Option<String>,
    pub notify_type: u32,
    pub ack_required: Option<bool>,
    pub from_state: Option<u32>,
    pub to_state: u32,
}

pub fn decode_event_notification(body: &[u8]) -> Result<NotificationHead> {
    let mut r = Reader::new(body);
    let process_id = r.context_unsigned(0)?;
    let device = r.context_object_id(1)?;
    let object = r.context_object_id(2)?;
    let time_stamp = TimeStamp::decode(&mut r, 3)?;
    let notification_class = r.context_unsigned(4)?;
    let priority = r.context_unsigned(5)?;
    let event_type = r.context_unsigned(6)?;
    let message = if r.next_is_context(7) {
        Some(r.context_character_string(7)?)
    } else {
        None
    };
    let notify_type = r.context_unsigned(8)?;
    let ack_required = if r.next_is_context(9) {
        Some(r.context_bool(9)?)
    } else {
        None
    };
    let from_state = r.opt_context_unsigned(10)?;
    let to_state = r.context_unsigned(11)?;
    if r.next_is_opening(12) {
        r.opening(12)?;
        r.until_closing(12)?;
    }
    if !r.at_end() {
        return Err(DecodeError::TooMany);
    }
    Ok(NotificationHead {
        process_id,
        device,
        object,
        time_stamp,
        notification_class,
        priority,
        event_type,
        message,
        notify_type,
        ack_required,
        from_state,
        to_state,
    })
}

/// AcknowledgeAlarm-Request.
#[derive(Debug, Clone, PartialEq)]
pub struct AcknowledgeAlarm {
    pub process_id: u32,
    pub object: ObjectId,
    /// The event state whose transition is acknowledged.
    pub state: u32,
    /// The time stamp of that transition, as the acknowledger received it.
    pub time_stamp: TimeStamp,
    pub source: String,
    pub time_of_ack: TimeStamp,
}

pub fn decode_acknowledge_alarm(body: &[u8]) -> Result<AcknowledgeAlarm> {
    let mut r = Reader::new(body);
    let process_id = r.context_unsigned(0)?;
    let object = r.context_object_id(1)?;
    let state = r.context_unsigned(2)?;
    let time_stamp = TimeStamp::decode(&mut r, 3)?;
    let source = r.context_character_string(4)?;
    let time_of_ack = TimeStamp::decode(&mut r, 5)?;
    if !r.at_end() {
        return Err(DecodeError::TooMany);
    }
    Ok(AcknowledgeAlarm {
        process_id,
        object,
        state,
        time_stamp,
        source,
        time_of_ack,
    })
}

/// GetEventInformation-Request: the last object of the previous answer, if any.
pub fn decode_get_event_information(body: &[u8]) -> Result<Option<ObjectId>> {
    let mut r = Reader::new(body);
    let last = if r.next_is_context(0) {
        Some(r.context_object_id(0)?)
    } else {
        None
    };
    if !r.at_end() {
        return Err(DecodeError::TooMany);
    }
    Ok(last)
}

/// One object of a GetEventInformation-ACK.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    pub object: ObjectId,
    pub state: u32,
    pub acked: [bool; 3],
    pub time_stamps: [TimeStamp; 3],
    pub notify_type: u32,
    pub enable: [bool; 3],
    pub priorities: [u8; 3],
}

impl EventSummary {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let context_bits = |out: &mut Vec<u8>, n: u8, bits: [bool; 3]| {
            // Three bits: one octet of unused-bit count (5) and one of bits.
            let b = transition_bits(bits);
            put_tag(out, n, true, 2);
            out.push(5);
            out.push(b.bytes.first().copied().unwrap_or(0));
        };
        put_context_object_id(out, 0, self.object);
        put_context_unsigned(out, 1, u64::from(self.state));
        context_bits(out, 2, self.acked);
        put_opening(out, 3);
        for ts in &self.time_stamps {
            ts.encode_choice(out);
        }
        put_closing(out, 3);
        put_context_unsigned(out, 4, u64::from(self.notify_type));
        context_bits(out, 5, self.enable);
        put_opening(out, 6);
        for p in self.priorities {
            Value::Unsigned(u64::from(p)).encode(out);
        }
        put_closing(out, 6);
    }
}

/// GetEventInformation-ACK from summaries already encoded ([`EventSummary::encode`]).
pub fn encode_get_event_information_ack(out: &mut Vec<u8>, summaries: &[u8], more: bool) {
    put_opening(out, 0);
    out.extend_from_slice(summaries);
    put_closing(out, 0);
    put_context_bool(out, 1, more);
}

/// Requests a client sends (tests, benchmarks, the fuzz corpus).
pub mod client {
    use super::*;

    pub fn acknowledge_alarm(out: &mut Vec<u8>, a: &AcknowledgeAlarm) {
        put_context_unsigned(out, 0, u64::from(a.process_id));
        put_context_object_id(out, 1, a.object);
        put_context_unsigned(out, 2, u64::from(a.state));
        a.time_stamp.encode(out, 3);
        put_tag(out, 4, true, a.source.len() + 1);
        out.push(0);
        out.extend_from_slice(a.source.as_bytes());
        a.time_of_ack.encode(out, 5);
    }

    pub fn get_event_information(out: &mut Vec<u8>, last: Option<ObjectId>) {
        if let Some(id) = last {
            put_context_object_id(out, 0, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{event_state, notify_type};

    fn flags() -> BitString {
        let mut f = BitString::with_len(4);
        f.set(0, true);
        f
    }

    #[test]
    fn destinations_round_trip() {
        let list = vec![
            Destination {
                valid_days: [true; 7],
                from_time: [0, 0, 0, 0],
                to_time: [23, 59, 59, 99],
                recipient: Recipient::Address {
                    network: 0,
                    mac: vec![127, 0, 0, 1, 0xBA, 0xC0],
                },
                process_id: 7,
                confirmed: true,
                transitions: [true, true, false],
            },
            Destination {
                valid_days: [true, true, true, true, true, false, false],
                from_time: [8, 0, 0, 0],
                to_time: [18, 0, 0, 0],
                recipient: Recipient::Device(ObjectId::new(8, 4194)),
                process_id: 0,
                confirmed: false,
                transitions: [true, false, true],
            },
        ];
        let mut bytes = Vec::new();
        for d in &list {
            d.encode(&mut bytes);
        }
        assert_eq!(decode_destinations(&bytes), Ok(list));
        assert_eq!(decode_destinations(&[]), Ok(Vec::new()), "an empty list clears it");
        assert!(decode_destinations(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn notification_round_trips_through_its_decoder() {
        let n = EventNotification {
            process_id: 42,
            device: ObjectId::new(8, 100),
            object: ObjectId::new(0, 5),
            time_stamp: TimeStamp::DateTime([126, 12, 6, 7], [14, 30, 5, 50]),
            notification_class: 4,
            priority: 80,
            event_type: crate::consts::event_type::OUT_OF_RANGE,
            message: Some("tank 3 high".into()),
            notify_type: notify_type::ALARM,
            ack_required: Some(true),
            from_state: Some(event_state::NORMAL),
            to_state: event_state::HIGH_LIMIT,
            values: Some(EventValues::OutOfRange {
                value: 95.5,
                flags: flags(),
                deadband: 1.0,
                limit: 90.0,
            }),
        };
        let mut out = Vec::new();
        encode_event_notification(&mut out, &n);
        let head = decode_event_notification(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.object, n.object);
        assert_eq!(head.to_state, event_state::HIGH_LIMIT);
        assert_eq!(head.from_state, Some(event_state::NORMAL));
        assert_eq!(head.message.as_deref(), Some("tank 3 high"));
        assert_eq!(head.time_stamp, n.time_stamp);
        // The out-of-range values: [12] [5] REAL, status flags, REAL, REAL [/5] [/12].
        let expected = [
            0xCE, 0x5E, 0x0C, 0x42, 0xBF, 0x00, 0x00, 0x1A, 0x04, 0x80, 0x2C, 0x3F, 0x80, 0x00, 0x00, 0x3C, 0x42, 0xB4,
            0x00, 0x00, 0x5F, 0xCF,
        ];
        assert_eq!(&out[out.len() - expected.len()..], expected);
    }

    #[test]
    fn acknowledge_alarm_round_trips() {
        let a = AcknowledgeAlarm {
            process_id: 1,
            object: ObjectId::new(13, 77),
            state: event_state::OFFNORMAL,
            time_stamp: TimeStamp::DateTime([126, 12, 6, 7], [14, 30, 5, 50]),
            source: "BMS operator".into(),
            time_of_ack: TimeStamp::Time([14, 31, 0, 0]),
        };
        let mut out = Vec::new();
        client::acknowledge_alarm(&mut out, &a);
        assert_eq!(decode_acknowledge_alarm(&out), Ok(a));
        assert!(decode_acknowledge_alarm(&out[..out.len() - 2]).is_err());
        let mut seq = Vec::new();
        TimeStamp::Sequence(9).encode(&mut seq, 3);
        assert_eq!(TimeStamp::decode(&mut Reader::new(&seq), 3), Ok(TimeStamp::Sequence(9)));
    }

    #[test]
    fn get_event_information_request_and_summary() {
        let mut out = Vec::new();
        client::get_event_information(&mut out, Some(ObjectId::new(0, 3)));
        assert_eq!(decode_get_event_information(&out), Ok(Some(ObjectId::new(0, 3))));
        assert_eq!(decode_get_event_information(&[]), Ok(None));
        let s = EventSummary {
            object: ObjectId::new(0, 3),
            state: event_state::HIGH_LIMIT,
            acked: [false, true, true],
            time_stamps: [TimeStamp::Sequence(1), TimeStamp::UNSPECIFIED, TimeStamp::UNSPECIFIED],
            notify_type: notify_type::ALARM,
            enable: [true; 3],
            priorities: [80, 100, 200],
        };
        let mut summaries = Vec::new();
        s.encode(&mut summaries);
        let mut ack = Vec::new();
        encode_get_event_information_ack(&mut ack, &summaries, false);
        // [0] ... [1] FALSE; the acked bits: context 2, two octets, 5 unused, 011 -> 0x60.
        assert_eq!(ack.first(), Some(&0x0E));
        assert_eq!(&ack[ack.len() - 3..], [0x0F, 0x19, 0x00]);
        assert!(summaries.windows(4).any(|w| w == [0x2A, 0x05, 0x60, 0x3E]));
    }
}
