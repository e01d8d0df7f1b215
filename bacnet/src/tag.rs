//! BACnet tags (clause 20.2.1): application and context tags, opening and closing tags, with
//! extended tag numbers and lengths. [`Reader`] walks untrusted bytes; the `put_*` functions
//! append to a `Vec<u8>`.

use crate::consts::reject_reason;
use crate::value::ObjectId;
use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message ends early")]
    Truncated,
    #[error("unexpected or malformed tag")]
    InvalidTag,
    #[error("a required parameter is missing")]
    Missing,
    #[error("a parameter has the wrong data type")]
    WrongType,
    #[error("a value is out of range")]
    OutOfRange,
    #[error("bytes after the last parameter")]
    TooMany,
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

impl DecodeError {
    /// The Reject reason that tells a client about this error.
    pub fn reject_reason(&self) -> u8 {
        match self {
            DecodeError::Truncated | DecodeError::Missing => reject_reason::MISSING_REQUIRED_PARAMETER,
            DecodeError::InvalidTag => reject_reason::INVALID_TAG,
            DecodeError::WrongType => reject_reason::INVALID_PARAMETER_DATA_TYPE,
            DecodeError::OutOfRange => reject_reason::PARAMETER_OUT_OF_RANGE,
            DecodeError::TooMany => reject_reason::TOO_MANY_ARGUMENTS,
            DecodeError::Unsupported(_) => reject_reason::OTHER,
        }
    }
}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// The class of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Application,
    Context,
}

/// What follows a tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `len` content octets (for an application boolean, `len` is the value and no octet follows).
    Length(u32),
    Opening,
    Closing,
}

/// A decoded tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub number: u8,
    pub class: Class,
    pub body: Body,
}

impl Tag {
    pub fn is_opening(&self, n: u8) -> bool {
        self.class == Class::Context && self.number == n && self.body == Body::Opening
    }
    pub fn is_closing(&self, n: u8) -> bool {
        self.class == Class::Context && self.number == n && self.body == Body::Closing
    }
    pub fn is_context(&self, n: u8) -> bool {
        self.class == Class::Context && self.number == n && matches!(self.body, Body::Length(_))
    }
}

/// A cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// The next tag header, without consuming it.
    pub fn peek_tag(&self) -> Result<Option<Tag>> {
        if self.at_end() {
            return Ok(None);
        }
        let mut r = self.clone();
        r.tag().map(Some)
    }

    /// Read a tag header.
    pub fn tag(&mut self) -> Result<Tag> {
        let first = self.u8()?;
        let mut number = first >> 4;
        let class = if first & 0x08 != 0 {
            Class::Context
        } else {
            Class::Application
        };
        if number == 15 {
            number = self.u8()?;
            if number == 255 {
                return Err(DecodeError::InvalidTag);
            }
        }
        let lvt = first & 0x07;
        let body = match (class, lvt) {
            (Class::Context, 6) => Body::Opening,
            (Class::Context, 7) => Body::Closing,
            (Class::Application, 6 | 7) => return Err(DecodeError::InvalidTag),
            (_, 5) => {
                let l = self.u8()?;
                Body::Length(match l {
                    254 => u32::from(u16::from_be_bytes([self.u8()?, self.u8()?])),
                    255 => u32::from_be_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]),
                    n => u32::from(n),
                })
            }
            (_, n) => Body::Length(u32::from(n)),
        };
        Ok(Tag { number, class, body })
    }

    /// The content octets of a tag with a length.
    fn content(&mut self, tag: &Tag) -> Result<&'a [u8]> {
        match tag.body {
            Body::Length(n) => self.take(n as usize),
            _ => Err(DecodeError::InvalidTag),
        }
    }

    /// Whether the next tag is context tag `n` (primitive), opening `n` or closing `n`.
    pub fn next_is_context(&self, n: u8) -> bool {
        matches!(self.peek_tag(), Ok(Some(t)) if t.is_context(n))
    }
    pub fn next_is_opening(&self, n: u8) -> bool {
        matches!(self.peek_tag(), Ok(Some(t)) if t.is_opening(n))
    }
    pub fn next_is_closing(&self, n: u8) -> bool {
        matches!(self.peek_tag(), Ok(Some(t)) if t.is_closing(n))
    }

    pub fn opening(&mut self, n: u8) -> Result<()> {
        match self.peek_tag()? {
            Some(t) if t.is_opening(n) => self.tag().map(|_| ()),
            Some(_) => Err(DecodeError::InvalidTag),
            None => Err(DecodeError::Missing),
        }
    }

    pub fn closing(&mut self, n: u8) -> Result<()> {
        match self.peek_tag()? {
            Some(t) if t.is_closing(n) => self.tag().map(|_| ()),
            Some(_) => Err(DecodeError::InvalidTag),
            None => Err(DecodeError::Truncated),
        }
    }

    /// The content of context tag `n`, which must come next.
    fn context(&mut self, n: u8) -> Result<&'a [u8]> {
        match self.peek_tag()? {
            Some(t) if t.is_context(n) => {
                let t = self.tag()?;
                self.content(&t)
            }
            Some(_) => Err(DecodeError::InvalidTag),
            None => Err(DecodeError::Missing),
        }
    }

    pub fn context_unsigned(&mut self, n: u8) -> Result<u32> {
        let c = self.context(n)?;
        u32::try_from(unsigned(c)?).map_err(|_| DecodeError::OutOfRange)
    }

    pub fn opt_context_unsigned(&mut self, n: u8) -> Result<Option<u32>> {
        if self.next_is_context(n) {
            self.context_unsigned(n).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn context_bool(&mut self, n: u8) -> Result<bool> {
        match self.context(n)? {
            [b] => Ok(*b != 0),
            _ => Err(DecodeError::WrongType),
        }
    }

    pub fn context_real(&mut self, n: u8) -> Result<f32> {
        let c = self.context(n)?;
        let b: [u8; 4] = c.try_into().map_err(|_| DecodeError::WrongType)?;
        Ok(f32::from_be_bytes(b))
    }

    pub fn context_object_id(&mut self, n: u8) -> Result<ObjectId> {
        let c = self.context(n)?;
        let b: [u8; 4] = c.try_into().map_err(|_| DecodeError::WrongType)?;
        Ok(ObjectId::from_u32(u32::from_be_bytes(b)))
    }

    pub fn context_character_string(&mut self, n: u8) -> Result<String> {
        character_string(self.context(n)?)
    }

    /// Skip one complete element: a primitive tag and its content, or an opening tag up to its
    /// matching closing tag.
    pub fn skip_element(&mut self) -> Result<()> {
        let t = self.tag()?;
        match t.body {
            Body::Length(n) => {
                if !(t.class == Class::Application && t.number == 1) {
                    self.take(n as usize)?;
                }
                Ok(())
            }
            Body::Closing => Err(DecodeError::InvalidTag),
            Body::Opening => {
                let mut depth = 1u32;
                while depth > 0 {
                    let inner = self.tag()?;
                    match inner.body {
                        Body::Opening => depth += 1,
                        Body::Closing => depth -= 1,
                        Body::Length(n) => {
                            if !(inner.class == Class::Application && inner.number == 1) {
                                self.take(n as usize)?;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The raw bytes between opening tag `n` (already read) and its closing tag, which is
    /// consumed.
    pub fn until_closing(&mut self, n: u8) -> Result<&'a [u8]> {
        let start = self.pos;
        loop {
            if self.next_is_closing(n) {
                let inner = self.buf.get(start..self.pos).ok_or(DecodeError::Truncated)?;
                self.tag()?;
                return Ok(inner);
            }
            if self.at_end() {
                return Err(DecodeError::Truncated);
            }
            self.skip_element()?;
        }
    }
}

/// A big-endian unsigned integer of 1 to 8 octets.
pub fn unsigned(c: &[u8]) -> Result<u64> {
    if c.is_empty() || c.len() > 8 {
        return Err(DecodeError::WrongType);
    }
    Ok(c.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
}

/// A big-endian two's complement integer of 1 to 8 octets.
pub fn signed(c: &[u8]) -> Result<i64> {
    let u = unsigned(c)?;
    let bits = c.len() as u32 * 8;
    Ok(if bits == 64 {
        u as i64
    } else {
        ((u << (64 - bits)) as i64) >> (64 - bits)
    })
}

/// A character string (charset octet first). UTF-8 (0) is accepted; ISO 8859-1 (5) is converted.
pub fn character_string(c: &[u8]) -> Result<String> {
    let (&charset, text) = c.split_first().ok_or(DecodeError::WrongType)?;
    match charset {
        0 => String::from_utf8(text.to_vec()).map_err(|_| DecodeError::WrongType),
        5 => Ok(text.iter().map(|&b| char::from(b)).collect()),
        _ => Err(DecodeError::Unsupported("character set")),
    }
}

/// Append a tag header.
pub fn put_tag(out: &mut Vec<u8>, number: u8, context: bool, len: usize) {
    let class = if context { 0x08 } else { 0 };
    let (first_num, ext) = if number < 15 {
        (number, None)
    } else {
        (15, Some(number))
    };
    let lvt = if len < 5 { len as u8 } else { 5 };
    out.push((first_num << 4) | class | lvt);
    if let Some(n) = ext {
        out.push(n);
    }
    if len >= 5 {
        if len < 254 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(254);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(255);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

pub fn put_opening(out: &mut Vec<u8>, n: u8) {
    put_marker(out, n, 6);
}

pub fn put_closing(out: &mut Vec<u8>, n: u8) {
    put_marker(out, n, 7);
}

fn put_marker(out: &mut Vec<u8>, n: u8, lvt: u8) {
    if n < 15 {
        out.push((n << 4) | 0x08 | lvt);
    } else {
        out.push(0xF8 | lvt);
        out.push(n);
    }
}

/// The minimal big-endian octets of an unsigned value.
pub fn unsigned_octets(v: u64) -> ([u8; 8], usize) {
    let b = v.to_be_bytes();
    let skip = (v.leading_zeros() as usize / 8).min(7);
    let mut out = [0u8; 8];
    out[..8 - skip].copy_from_slice(&b[skip..]);
    (out, 8 - skip)
}

/// The minimal two's complement octets of a signed value.
pub fn signed_octets(v: i64) -> ([u8; 8], usize) {
    let b = v.to_be_bytes();
    let mut skip = 0;
    while skip < 7 {
        let redundant = (b[skip] == 0 && b[skip + 1] & 0x80 == 0) || (b[skip] == 0xFF && b[skip + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        skip += 1;
    }
    let mut out = [0u8; 8];
    out[..8 - skip].copy_from_slice(&b[skip..]);
    (out, 8 - skip)
}

pub fn put_context_unsigned(out: &mut Vec<u8>, n: u8, v: u64) {
    let (b, len) = unsigned_octets(v);
    put_tag(out, n, true, len);
    out.extend_from_slice(&b[..len]);
}

pub fn put_context_object_id(out: &mut Vec<u8>, n: u8, id: ObjectId) {
    put_tag(out, n, true, 4);
    out.extend_from_slice(&id.to_u32().to_be_bytes());
}

pub fn put_context_bool(out: &mut Vec<u8>, n: u8, v: bool) {
    put_tag(out, n, true, 1);
    out.push(u8::from(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_the_fewest_octets() {
        assert_eq!(unsigned_octets(0).1, 1);
        assert_eq!(unsigned_octets(255).1, 1);
        assert_eq!(unsigned_octets(256).1, 2);
        assert_eq!(unsigned_octets(u64::MAX).1, 8);
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            32767,
            -32768,
            1 << 40,
            i64::MIN,
            i64::MAX,
        ] {
            let (b, n) = signed_octets(v);
            assert_eq!(signed(&b[..n]), Ok(v), "{v}");
        }
        assert_eq!(signed_octets(127).1, 1);
        assert_eq!(signed_octets(128).1, 2);
        assert_eq!(signed_octets(-128).1, 1);
        assert_eq!(signed_octets(-129).1, 2);
    }

    #[test]
    fn tag_headers_round_trip_with_extended_numbers_and_lengths() {
        for (number, context, len) in [
            (0u8, true, 0usize),
            (3, false, 4),
            (14, true, 5),
            (15, true, 1),
            (200, true, 300),
            (2, false, 70_000),
        ] {
            let mut out = Vec::new();
            put_tag(&mut out, number, context, len);
            let t = Reader::new(&out).tag();
            let class = if context { Class::Context } else { Class::Application };
            assert_eq!(
                t,
                Ok(Tag {
                    number,
                    class,
                    body: Body::Length(len as u32)
                })
            );
        }
        let mut out = Vec::new();
        put_opening(&mut out, 3);
        put_context_unsigned(&mut out, 0, 1000);
        put_closing(&mut out, 3);
        let mut r = Reader::new(&out);
        r.opening(3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.context_unsigned(0), Ok(1000));
        r.closing(3).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.at_end());
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(Reader::new(&[]).tag(), Err(DecodeError::Truncated));
        assert_eq!(
            Reader::new(&[0x06]).tag(),
            Err(DecodeError::InvalidTag),
            "application opening tag"
        );
        assert_eq!(Reader::new(&[0x0D, 0xFF, 0xFF]).tag(), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0x0C, 1, 2]);
        assert_eq!(r.context_unsigned(0), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0x3E, 0x09, 0x01]);
        assert_eq!(r.opening(3), Ok(()));
        assert_eq!(r.until_closing(3), Err(DecodeError::Truncated));
    }
}
