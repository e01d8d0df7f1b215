//! The services of a server device: request decoders (untrusted bytes in, typed request or
//! [`DecodeError`] out) and the encoders of the answers and notifications it sends. Encoders
//! append the service body only; the caller writes the APDU header.

use crate::tag::{
    put_closing, put_context_bool, put_context_object_id, put_context_unsigned, put_opening, DecodeError, Reader,
    Result,
};
use crate::value::{ObjectId, Value};

/// A property and, for arrays, an element (0 = the array's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertyRef {
    pub property: u32,
    pub index: Option<u32>,
}

/// Who-Is with an optional device instance range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoIs {
    pub range: Option<(u32, u32)>,
}

impl WhoIs {
    pub fn matches(&self, instance: u32) -> bool {
        self.range.is_none_or(|(lo, hi)| lo <= instance && instance <= hi)
    }
}

/// What a Who-Has looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhoHasObject {
    Id(ObjectId),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoHas {
    pub range: Option<(u32, u32)>,
    pub object: WhoHasObject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProperty {
    pub object: ObjectId,
    pub property: PropertyRef,
}

/// One object of a ReadPropertyMultiple and the properties asked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAccessSpec {
    pub object: ObjectId,
    pub properties: Vec<PropertyRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WriteProperty {
    pub object: ObjectId,
    pub property: PropertyRef,
    /// The value as application-tagged values; empty when it is a constructed value (a
    /// Recipient_List), which `encoded` holds.
    pub value: Vec<Value>,
    /// The bytes of the value as sent.
    pub encoded: Vec<u8>,
    /// 1 (highest) to 16.
    pub priority: Option<u8>,
}

impl WriteProperty {
    /// A write of application-tagged values.
    pub fn of_values(
        object: ObjectId,
        property: PropertyRef,
        value: Vec<Value>,
        priority: Option<u8>,
    ) -> WriteProperty {
        let mut encoded = Vec::new();
        put_values(&mut encoded, &value);
        WriteProperty {
            object,
            property,
            value,
            encoded,
            priority,
        }
    }
}

/// SubscribeCOV, or SubscribeCOVProperty when `property` is set. Without `confirmed` and
/// `lifetime` it is a cancellation.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeCov {
    pub process_id: u32,
    pub object: ObjectId,
    pub confirmed: Option<bool>,
    /// Seconds; 0 = indefinite.
    pub lifetime: Option<u32>,
    pub property: Option<PropertyRef>,
    pub cov_increment: Option<f32>,
}

impl SubscribeCov {
    pub fn is_cancellation(&self) -> bool {
        self.confirmed.is_none() && self.lifetime.is_none()
    }
}

fn finish<T>(r: &Reader<'_>, v: T) -> Result<T> {
    if r.at_end() {
        Ok(v)
    } else {
        Err(DecodeError::TooMany)
    }
}

fn opt_range(r: &mut Reader<'_>) -> Result<Option<(u32, u32)>> {
    let lo = r.opt_context_unsigned(0)?;
    let hi = r.opt_context_unsigned(1)?;
    match (lo, hi) {
        (None, None) => Ok(None),
        (Some(lo), Some(hi)) if lo <= ObjectId::MAX_INSTANCE && hi <= ObjectId::MAX_INSTANCE => Ok(Some((lo, hi))),
        (Some(_), Some(_)) => Err(DecodeError::OutOfRange),
        _ => Err(DecodeError::Missing),
    }
}

pub fn decode_who_is(body: &[u8]) -> Result<WhoIs> {
    let mut r = Reader::new(body);
    let range = opt_range(&mut r)?;
    finish(&r, WhoIs { range })
}

/// I-Am: the device identifier (the rest, max APDU, segmentation and vendor, is checked for
/// shape only).
pub fn decode_i_am(body: &[u8]) -> Result<ObjectId> {
    let mut r = Reader::new(body);
    let Value::ObjectId(device) = Value::decode(&mut r)? else {
        return Err(DecodeError::WrongType);
    };
    for _ in 0..3 {
        Value::decode(&mut r)?;
    }
    finish(&r, device)
}

pub fn decode_who_has(body: &[u8]) -> Result<WhoHas> {
    let mut r = Reader::new(body);
    let range = opt_range(&mut r)?;
    let object = if r.next_is_context(2) {
        WhoHasObject::Id(r.context_object_id(2)?)
    } else {
        WhoHasObject::Name(r.context_character_string(3)?)
    };
    finish(&r, WhoHas { range, object })
}

fn property_ref(r: &mut Reader<'_>, prop_tag: u8) -> Result<PropertyRef> {
    Ok(PropertyRef {
        property: r.context_unsigned(prop_tag)?,
        index: r.opt_context_unsigned(prop_tag + 1)?,
    })
}

pub fn decode_read_property(body: &[u8]) -> Result<ReadProperty> {
    let mut r = Reader::new(body);
    let object = r.context_object_id(0)?;
    let property = property_ref(&mut r, 1)?;
    finish(&r, ReadProperty { object, property })
}

pub fn decode_read_property_multiple(body: &[u8]) -> Result<Vec<ReadAccessSpec>> {
    let mut r = Reader::new(body);
    let mut specs = Vec::new();
    while !r.at_end() {
        let object = r.context_object_id(0)?;
        r.opening(1)?;
        let mut properties = Vec::new();
        while !r.next_is_closing(1) {
            if r.at_end() {
                return Err(DecodeError::Truncated);
            }
            properties.push(property_ref(&mut r, 0)?);
        }
        r.closing(1)?;
        if properties.is_empty() {
            return Err(DecodeError::Missing);
        }
        specs.push(ReadAccessSpec { object, properties });
    }
    if specs.is_empty() {
        return Err(DecodeError::Missing);
    }
    Ok(specs)
}

pub fn decode_write_property(body: &[u8]) -> Result<WriteProperty> {
    let mut r = Reader::new(body);
    let object = r.context_object_id(0)?;
    let property = property_ref(&mut r, 1)?;
    r.opening(3)?;
    let encoded = r.until_closing(3)?.to_vec();
    if encoded.is_empty() {
        return Err(DecodeError::Missing);
    }
    let value = {
        let mut inner = Reader::new(&encoded);
        let mut values = Vec::new();
        while !inner.at_end() {
            match Value::decode(&mut inner) {
                Ok(v) => values.push(v),
                Err(_) => {
                    values.clear();
                    break;
                }
            }
        }
        values
    };
    let priority = match r.opt_context_unsigned(4)? {
        None => None,
        Some(p @ 1..=16) => Some(p as u8),
        Some(_) => return Err(DecodeError::OutOfRange),
    };
    finish(
        &r,
        WriteProperty {
            object,
            property,
            value,
            encoded,
            priority,
        },
    )
}

fn subscribe_common(r: &mut Reader<'_>) -> Result<(u32, ObjectId, Option<bool>, Option<u32>)> {
    let process_id = r.context_unsigned(0)?;
    let object = r.context_object_id(1)?;
    let confirmed = if r.next_is_context(2) {
        Some(r.context_bool(2)?)
    } else {
        None
    };
    let lifetime = r.opt_context_unsigned(3)?;
    Ok((process_id, object, confirmed, lifetime))
}

pub fn decode_subscribe_cov(body: &[u8]) -> Result<SubscribeCov> {
    let mut r = Reader::new(body);
    let (process_id, object, confirmed, lifetime) = subscribe_common(&mut r)?;
    if confirmed.is_none() && lifetime.is_some() {
        return Err(DecodeError::Missing);
    }
    finish(
        &r,
        SubscribeCov {
            process_id,
            object,
            confirmed,
            lifetime,
            property: None,
            cov_increment: None,
        },
    )
}

pub fn decode_subscribe_cov_property(body: &[u8]) -> Result<SubscribeCov> {
    let mut r = Reader::new(body);
    let (process_id, object, confirmed, lifetime) = subscribe_common(&mut r)?;
    r.opening(4)?;
    let property = property_ref(&mut r, 0)?;
    r.closing(4)?;
    let cov_increment = if r.next_is_context(5) {
        Some(r.context_real(5)?)
    } else {
        None
    };
    if cov_increment.is_some_and(|c| !c.is_finite() || c < 0.0) {
        return Err(DecodeError::OutOfRange);
    }
    finish(
        &r,
        SubscribeCov {
            process_id,
            object,
            confirmed,
            lifetime,
            property: Some(property),
            cov_increment,
        },
    )
}

/// I-Am body.
pub fn encode_i_am(out: &mut Vec<u8>, device: ObjectId, max_apdu: u32, segmentation: u32, vendor_id: u16) {
    Value::ObjectId(device).encode(out);
    Value::Unsigned(u64::from(max_apdu)).encode(out);
    Value::Enumerated(segmentation).encode(out);
    Value::Unsigned(u64::from(vendor_id)).encode(out);
}

/// I-Have body.
pub fn encode_i_have(out: &mut Vec<u8>, device: ObjectId, object: ObjectId, name: &str) {
    Value::ObjectId(device).encode(out);
    Value::ObjectId(object).encode(out);
    Value::CharacterString(name.to_string()).encode(out);
}

fn put_values(out: &mut Vec<u8>, values: &[Value]) {
    for v in values {
        v.encode(out);
    }
}

/// ReadProperty-Ack body.
pub fn encode_read_property_ack(out: &mut Vec<u8>, object: ObjectId, property: PropertyRef, values: &[Value]) {
    put_context_object_id(out, 0, object);
    put_context_unsigned(out, 1, u64::from(property.property));
    if let Some(i) = property.index {
        put_context_unsigned(out, 2, u64::from(i));
    }
    put_opening(out, 3);
    put_values(out, values);
    put_closing(out, 3);
}

/// A property's value or the error reading it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResult {
    pub property: PropertyRef,
    /// Values, or (error class, error code).
    pub result: std::result::Result<Vec<Value>, (u32, u32)>,
}

/// One object's part of a ReadPropertyMultiple-Ack.
pub fn encode_read_access_result(out: &mut Vec<u8>, object: ObjectId, results: &[ReadResult]) {
    put_context_object_id(out, 0, object);
    put_opening(out, 1);
    for r in results {
        put_context_unsigned(out, 2, u64::from(r.property.property));
        if let Some(i) = r.property.index {
            put_context_unsigned(out, 3, u64::from(i));
        }
        match &r.result {
            Ok(values) => {
                put_opening(out, 4);
                put_values(out, values);
                put_closing(out, 4);
            }
            Err((class, code)) => {
                put_opening(out, 5);
                Value::Enumerated(*class).encode(out);
                Value::Enumerated(*code).encode(out);
                put_closing(out, 5);
            }
        }
    }
    put_closing(out, 1);
}

/// (Un)ConfirmedCOVNotification body: the subscriber's process id, this device, the monitored
/// object, seconds left, and the property values (Present_Value and Status_Flags, or the one
/// subscribed property).
pub fn encode_cov_notification(
    out: &mut Vec<u8>,
    process_id: u32,
    device: ObjectId,
    object: ObjectId,
    time_remaining: u32,
    values: &[(PropertyRef, Vec<Value>)],
) {
    put_context_unsigned(out, 0, u64::from(process_id));
    put_context_object_id(out, 1, device);
    put_context_object_id(out, 2, object);
    put_context_unsigned(out, 3, u64::from(time_remaining));
    put_opening(out, 4);
    for (p, v) in values {
        put_context_unsigned(out, 0, u64::from(p.property));
        if let Some(i) = p.index {
            put_context_unsigned(out, 1, u64::from(i));
        }
        put_opening(out, 2);
        put_values(out, v);
        put_closing(out, 2);
    }
    put_closing(out, 4);
}

/// Requests a client sends (for tests, benchmarks and the fuzz corpus).
pub mod client {
    use super::*;

    pub fn who_is(out: &mut Vec<u8>, range: Option<(u32, u32)>) {
        if let Some((lo, hi)) = range {
            put_context_unsigned(out, 0, u64::from(lo));
            put_context_unsigned(out, 1, u64::from(hi));
        }
    }

    pub fn read_property(out: &mut Vec<u8>, object: ObjectId, property: PropertyRef) {
        put_context_object_id(out, 0, object);
        put_context_unsigned(out, 1, u64::from(property.property));
        if let Some(i) = property.index {
            put_context_unsigned(out, 2, u64::from(i));
        }
    }

    pub fn read_property_multiple(out: &mut Vec<u8>, specs: &[ReadAccessSpec]) {
        for s in specs {
            put_context_object_id(out, 0, s.object);
            put_opening(out, 1);
            for p in &s.properties {
                put_context_unsigned(out, 0, u64::from(p.property));
                if let Some(i) = p.index {
                    put_context_unsigned(out, 1, u64::from(i));
                }
            }
            put_closing(out, 1);
        }
    }

    pub fn write_property(out: &mut Vec<u8>, w: &WriteProperty) {
        put_context_object_id(out, 0, w.object);
        put_context_unsigned(out, 1, u64::from(w.property.property));
        if let Some(i) = w.property.index {
            put_context_unsigned(out, 2, u64::from(i));
        }
        put_opening(out, 3);
        out.extend_from_slice(&w.encoded);
        put_closing(out, 3);
        if let Some(p) = w.priority {
            put_context_unsigned(out, 4, u64::from(p));
        }
    }

    pub fn subscribe_cov(out: &mut Vec<u8>, s: &SubscribeCov) {
        put_context_unsigned(out, 0, u64::from(s.process_id));
        put_context_object_id(out, 1, s.object);
        if let Some(c) = s.confirmed {
            put_context_bool(out, 2, c);
        }
        if let Some(l) = s.lifetime {
            put_context_unsigned(out, 3, u64::from(l));
        }
        if let Some(p) = s.property {
            put_opening(out, 4);
            put_context_unsigned(out, 0, u64::from(p.property));
            if let Some(i) = p.index {
                put_context_unsigned(out, 1, u64::from(i));
            }
            put_closing(out, 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::property;

    fn pv() -> PropertyRef {
        PropertyRef {
            property: property::PRESENT_VALUE,
            index: None,
        }
    }

    #[test]
    fn who_is_ranges() {
        assert_eq!(decode_who_is(&[]), Ok(WhoIs { range: None }));
        let mut b = Vec::new();
        client::who_is(&mut b, Some((100, 100)));
        let w = decode_who_is(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(w.matches(100) && !w.matches(101));
        assert_eq!(
            decode_who_is(&[0x09, 0x64]),
            Err(DecodeError::Missing),
            "low limit without high"
        );
    }

    #[test]
    fn read_property_multiple_round_trips() {
        let specs = vec![
            ReadAccessSpec {
                object: ObjectId::new(0, 1001),
                properties: vec![
                    pv(),
                    PropertyRef {
                        property: property::STATE_TEXT,
                        index: Some(2),
                    },
                ],
            },
            ReadAccessSpec {
                object: ObjectId::new(8, 100),
                properties: vec![PropertyRef {
                    property: property::ALL,
                    index: None,
                }],
            },
        ];
        let mut b = Vec::new();
        client::read_property_multiple(&mut b, &specs);
        assert_eq!(decode_read_property_multiple(&b), Ok(specs));
        assert!(decode_read_property_multiple(&b[..b.len() - 1]).is_err());
        assert!(decode_read_property_multiple(&[]).is_err());
    }

    #[test]
    fn write_property_with_priority_and_null() {
        let w = WriteProperty::of_values(ObjectId::new(2, 7), pv(), vec![Value::Null], Some(8));
        let mut b = Vec::new();
        client::write_property(&mut b, &w);
        assert_eq!(decode_write_property(&b), Ok(w.clone()));
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] = 17;
        assert_eq!(decode_write_property(&bad), Err(DecodeError::OutOfRange), "priority 17");
        b.push(0);
        assert_eq!(decode_write_property(&b), Err(DecodeError::TooMany));
    }

    #[test]
    fn subscriptions_and_cancellations() {
        let s = SubscribeCov {
            process_id: 18,
            object: ObjectId::new(0, 5),
            confirmed: Some(true),
            lifetime: Some(300),
            property: None,
            cov_increment: None,
        };
        let mut b = Vec::new();
        client::subscribe_cov(&mut b, &s);
        assert_eq!(decode_subscribe_cov(&b), Ok(s.clone()));
        let cancel = SubscribeCov {
            confirmed: None,
            lifetime: None,
            ..s.clone()
        };
        b.clear();
        client::subscribe_cov(&mut b, &cancel);
        assert!(decode_subscribe_cov(&b).is_ok_and(|c| c.is_cancellation()));
        let by_prop = SubscribeCov {
            property: Some(pv()),
            ..s
        };
        b.clear();
        client::subscribe_cov(&mut b, &by_prop);
        assert_eq!(decode_subscribe_cov_property(&b), Ok(by_prop));
    }

    #[test]
    fn read_property_ack_bytes() {
        // Clause F.3.5 style: analog-input 5 present-value 72.3.
        let mut out = Vec::new();
        encode_read_property_ack(&mut out, ObjectId::new(0, 5), pv(), &[Value::Real(72.3)]);
        assert_eq!(
            out,
            [0x0C, 0x00, 0x00, 0x00, 0x05, 0x19, 0x55, 0x3E, 0x44, 0x42, 0x90, 0x99, 0x9A, 0x3F]
        );
    }
}
