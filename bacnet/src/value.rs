//! Application-tagged values (clause 20.2.2 to 20.2.14) and the object identifier.

use crate::tag::{self, put_tag, Body, Class, DecodeError, Reader, Result};

/// An object identifier: 10-bit type, 22-bit instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub object_type: u16,
    pub instance: u32,
}

impl ObjectId {
    pub const MAX_INSTANCE: u32 = 0x3F_FFFF;

    pub fn new(object_type: u16, instance: u32) -> ObjectId {
        ObjectId {
            object_type: object_type & 0x3FF,
            instance: instance & Self::MAX_INSTANCE,
        }
    }
    pub fn from_u32(v: u32) -> ObjectId {
        ObjectId {
            object_type: (v >> 22) as u16,
            instance: v & Self::MAX_INSTANCE,
        }
    }
    pub fn to_u32(self) -> u32 {
        (u32::from(self.object_type) << 22) | (self.instance & Self::MAX_INSTANCE)
    }
}

/// A bit string: bit 0 is the most significant bit of the first octet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitString {
    pub len: u32,
    pub bytes: Vec<u8>,
}

impl BitString {
    pub fn with_len(len: u32) -> BitString {
        BitString {
            len,
            bytes: vec![0; len.div_ceil(8) as usize],
        }
    }
    pub fn set(&mut self, bit: u32, on: bool) {
        if bit >= self.len {
            return;
        }
        if let Some(b) = self.bytes.get_mut((bit / 8) as usize) {
            let mask = 0x80u8 >> (bit % 8);
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
    pub fn get(&self, bit: u32) -> bool {
        bit < self.len
            && self
                .bytes
                .get((bit / 8) as usize)
                .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
    }
}

/// One application-tagged value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Unsigned(u64),
    Signed(i64),
    Real(f32),
    Double(f64),
    OctetString(Vec<u8>),
    CharacterString(String),
    BitString(BitString),
    Enumerated(u32),
    /// Year - 1900, month, day, day of week (1 = Monday); 255 = unspecified.
    Date([u8; 4]),
    /// Hour, minute, second, hundredths.
    Time([u8; 4]),
    ObjectId(ObjectId),
    /// Already encoded data (a constructed element such as a BACnetDestination or a
    /// BACnetTimeStamp), written as it is. [`Value::decode`] never returns it.
    Encoded(Vec<u8>),
}

impl Value {
    /// The value as a number, for writes of numeric properties.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Unsigned(v) => Some(*v as f64),
            Value::Signed(v) => Some(*v as f64),
            Value::Real(v) => Some(f64::from(*v)),
            Value::Double(v) => Some(*v),
            Value::Enumerated(v) => Some(f64::from(*v)),
            _ => None,
        }
    }

    /// Append this value with its application tag.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => put_tag(out, 0, false, 0),
            Value::Boolean(b) => put_tag(out, 1, false, usize::from(*b)),
            Value::Unsigned(v) => {
                let (b, n) = tag::unsigned_octets(*v);
                put_tag(out, 2, false, n);
                out.extend_from_slice(&b[..n]);
            }
            Value::Signed(v) => {
                let (b, n) = tag::signed_octets(*v);
                put_tag(out, 3, false, n);
                out.extend_from_slice(&b[..n]);
            }
            Value::Real(v) => {
                put_tag(out, 4, false, 4);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Double(v) => {
                put_tag(out, 5, false, 8);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::OctetString(b) => {
                put_tag(out, 6, false, b.len());
                out.extend_from_slice(b);
            }
            Value::CharacterString(s) => {
                put_tag(out, 7, false, s.len() + 1);
                out.push(0);
                out.extend_from_slice(s.as_bytes());
            }
            Value::BitString(b) => {
                let unused = (b.bytes.len() as u32 * 8).saturating_sub(b.len) as u8;
                put_tag(out, 8, false, b.bytes.len() + 1);
                out.push(unused);
                out.extend_from_slice(&b.bytes);
            }
            Value::Enumerated(v) => {
                let (b, n) = tag::unsigned_octets(u64::from(*v));
                put_tag(out, 9, false, n);
                out.extend_from_slice(&b[..n]);
            }
            Value::Date(d) => {
                put_tag(out, 10, false, 4);
                out.extend_from_slice(d);
            }
            Value::Time(t) => {
                put_tag(out, 11, false, 4);
                out.extend_from_slice(t);
            }
            Value::ObjectId(id) => {
                put_tag(out, 12, false, 4);
                out.extend_from_slice(&id.to_u32().to_be_bytes());
            }
            Value::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// Read one application-tagged value.
    pub fn decode(r: &mut Reader<'_>) -> Result<Value> {
        let t = r.tag()?;
        let len = match (t.class, t.body) {
            (Class::Application, Body::Length(n)) => n as usize,
            _ => return Err(DecodeError::InvalidTag),
        };
        if t.number == 1 {
            return match len {
                0 => Ok(Value::Boolean(false)),
                1 => Ok(Value::Boolean(true)),
                _ => Err(DecodeError::WrongType),
            };
        }
        let c = r.take(len)?;
        let four = |c: &[u8]| -> Result<[u8; 4]> { c.try_into().map_err(|_| DecodeError::WrongType) };
        Ok(match t.number {
            0 if len == 0 => Value::Null,
            2 => Value::Unsigned(tag::unsigned(c)?),
            3 => Value::Signed(tag::signed(c)?),
            4 => Value::Real(f32::from_be_bytes(four(c)?)),
            5 => Value::Double(f64::from_be_bytes(c.try_into().map_err(|_| DecodeError::WrongType)?)),
            6 => Value::OctetString(c.to_vec()),
            7 => Value::CharacterString(tag::character_string(c)?),
            8 => {
                let (&unused, bytes) = c.split_first().ok_or(DecodeError::WrongType)?;
                if unused > 7 || (bytes.is_empty() && unused != 0) {
                    return Err(DecodeError::WrongType);
                }
                Value::BitString(BitString {
                    len: bytes.len() as u32 * 8 - u32::from(unused),
                    bytes: bytes.to_vec(),
                })
            }
            9 => Value::Enumerated(u32::try_from(tag::unsigned(c)?).map_err(|_| DecodeError::OutOfRange)?),
            10 => Value::Date(four(c)?),
            11 => Value::Time(four(c)?),
            12 => Value::ObjectId(ObjectId::from_u32(u32::from_be_bytes(four(c)?))),
            _ => return Err(DecodeError::WrongType),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips() {
        let mut bits = BitString::with_len(4);
        bits.set(1, true);
        let values = [
            Value::Null,
            Value::Boolean(true),
            Value::Boolean(false),
            Value::Unsigned(70_000),
            Value::Signed(-300),
            Value::Real(230.5),
            Value::Double(-1e-9),
            Value::OctetString(vec![1, 2, 3, 4, 5, 6]),
            Value::CharacterString("tanks.tank3.volume — ü".into()),
            Value::BitString(bits),
            Value::Enumerated(95),
            Value::Date([126, 11, 22, 7]),
            Value::Time([4, 31, 0, 0]),
            Value::ObjectId(ObjectId::new(8, 100)),
        ];
        for v in values {
            let mut out = Vec::new();
            v.encode(&mut out);
            let mut r = Reader::new(&out);
            assert_eq!(Value::decode(&mut r), Ok(v.clone()));
            assert!(r.at_end(), "{v:?}");
        }
    }

    #[test]
    fn known_encodings() {
        // Examples of clause 20.2: REAL 72.0 = 44 42 90 00 00; ObjectId analog-input 5 = C4 00 00 00 05.
        let mut out = Vec::new();
        Value::Real(72.0).encode(&mut out);
        assert_eq!(out, [0x44, 0x42, 0x90, 0x00, 0x00]);
        out.clear();
        Value::ObjectId(ObjectId::new(0, 5)).encode(&mut out);
        assert_eq!(out, [0xC4, 0x00, 0x00, 0x00, 0x05]);
        out.clear();
        let mut flags = BitString::with_len(4);
        flags.set(1, true);
        Value::BitString(flags).encode(&mut out);
        assert_eq!(out, [0x82, 0x04, 0x40], "status flags with FAULT");
    }
}
