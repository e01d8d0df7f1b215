//! Engineering values <-> Modbus registers, following a point's [`Register`] description.
//!
//! `engineering = raw * scale + offset`. Unsigned counters wrap at the register's maximum
//! (as a real device's do); other integers saturate at their type's limits.

use crate::profile::{DataType, Kind, Register, WordOrder};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum EncodingError {
    #[error("expected {expected} registers, got {got}")]
    Length { expected: usize, got: usize },
    #[error("value is not a number (NaN or infinite)")]
    NotFinite,
    #[error("register holds a non-ASCII byte 0x{0:02x}")]
    NotAscii(u8),
    #[error("text `{0}` does not fit the registers")]
    TextTooLong(String),
}

/// Reorder words/bytes of a big-endian word sequence to/from the wire order. The operation is
/// its own inverse.
fn reorder(words: &mut [u16], order: WordOrder) {
    match order {
        WordOrder::Abcd => {}
        WordOrder::Cdab => words.reverse(),
        WordOrder::Badc => words.iter_mut().for_each(|w| *w = w.swap_bytes()),
        WordOrder::Dcba => {
            words.reverse();
            words.iter_mut().for_each(|w| *w = w.swap_bytes());
        }
    }
}

fn to_words(bits: u64, n: usize, order: WordOrder, out: &mut [u16]) {
    for (i, w) in out.iter_mut().enumerate().take(n) {
        *w = (bits >> (16 * (n - 1 - i))) as u16;
    }
    reorder(&mut out[..n], order);
}

fn from_words(regs: &[u16], order: WordOrder) -> u64 {
    let mut buf = [0u16; 4];
    let n = regs.len().min(4);
    buf[..n].copy_from_slice(&regs[..n]);
    reorder(&mut buf[..n], order);
    buf[..n].iter().fold(0u64, |acc, w| (acc << 16) | u64::from(*w))
}

/// Encode a numeric engineering value into `out` (exactly `words()` registers). For a bit in a
/// register, `out[0]` is read-modify-written so the other bits survive.
pub fn encode(reg: &Register, kind: Kind, value: f64, out: &mut [u16]) -> Result<(), EncodingError> {
    let n = usize::from(reg.data_type.words());
    if out.len() != n {
        return Err(EncodingError::Length {
            expected: n,
            got: out.len(),
        });
    }
    if !value.is_finite() {
        return Err(EncodingError::NotFinite);
    }
    let raw = (value - reg.offset) / reg.scale;
    let wraps = kind == Kind::Counter;
    match reg.data_type {
        DataType::U16 => out[0] = unsigned(raw, 16, wraps) as u16,
        DataType::I16 => out[0] = (raw.round().clamp(i16::MIN.into(), i16::MAX.into()) as i16) as u16,
        DataType::U32 => to_words(unsigned(raw, 32, wraps), 2, reg.order, out),
        DataType::I32 => {
            let v = raw.round().clamp(i32::MIN.into(), i32::MAX.into()) as i32;
            to_words(u64::from(v as u32), 2, reg.order, out)
        }
        DataType::U64 => to_words(unsigned(raw, 64, wraps), 4, reg.order, out),
        DataType::I64 => {
            let v = raw.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64;
            to_words(v as u64, 4, reg.order, out)
        }
        DataType::F32 => to_words(u64::from((raw as f32).to_bits()), 2, reg.order, out),
        DataType::F64 => to_words(raw.to_bits(), 4, reg.order, out),
        DataType::Bit(b) => {
            if raw.round() != 0.0 {
                out[0] |= 1 << b;
            } else {
                out[0] &= !(1 << b);
            }
        }
        DataType::Ascii(_) => return encode_text(&format!("{value}"), out),
    }
    Ok(())
}

fn unsigned(raw: f64, bits: u32, wraps: bool) -> u64 {
    let r = raw.round();
    if r <= 0.0 {
        return 0;
    }
    if bits == 64 {
        return if r >= u64::MAX as f64 { u64::MAX } else { r as u64 };
    }
    let modulus = 1u64 << bits;
    if wraps {
        (r % modulus as f64) as u64
    } else {
        (r.min((modulus - 1) as f64)) as u64
    }
}

/// Decode registers into an engineering value. Bits give 0/1.
pub fn decode(reg: &Register, regs: &[u16]) -> Result<f64, EncodingError> {
    let n = usize::from(reg.data_type.words());
    if regs.len() != n {
        return Err(EncodingError::Length {
            expected: n,
            got: regs.len(),
        });
    }
    let raw = match reg.data_type {
        DataType::U16 => f64::from(regs[0]),
        DataType::I16 => f64::from(regs[0] as i16),
        DataType::U32 => from_words(regs, reg.order) as f64,
        DataType::I32 => f64::from(from_words(regs, reg.order) as u32 as i32),
        DataType::U64 => from_words(regs, reg.order) as f64,
        DataType::I64 => from_words(regs, reg.order) as i64 as f64,
        DataType::F32 => f64::from(f32::from_bits(from_words(regs, reg.order) as u32)),
        DataType::F64 => f64::from_bits(from_words(regs, reg.order)),
        DataType::Bit(b) => f64::from((regs[0] >> b) & 1),
        DataType::Ascii(_) => return Err(EncodingError::NotFinite),
    };
    if !raw.is_finite() {
        return Err(EncodingError::NotFinite);
    }
    Ok(apply_scale(raw, reg.scale) + reg.offset)
}

/// `raw * scale`, computed as `raw / 10^n` when the scale is a decimal fraction so that
/// 23045 * 0.01 gives 230.45 and not 230.45000000000002.
fn apply_scale(raw: f64, scale: f64) -> f64 {
    let inverse = 1.0 / scale;
    if scale.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
        raw / inverse.round()
    } else {
        raw * scale
    }
}

/// Encode text into ASCII registers: two characters per register, high byte first, NUL padded.
pub fn encode_text(text: &str, out: &mut [u16]) -> Result<(), EncodingError> {
    let bytes = text.as_bytes();
    if !text.is_ascii() || bytes.len() > out.len() * 2 {
        return Err(EncodingError::TextTooLong(text.to_string()));
    }
    for (i, w) in out.iter_mut().enumerate() {
        let hi = bytes.get(2 * i).copied().unwrap_or(0);
        let lo = bytes.get(2 * i + 1).copied().unwrap_or(0);
        *w = u16::from_be_bytes([hi, lo]);
    }
    Ok(())
}

/// Decode ASCII registers, stopping at the first NUL and trimming trailing spaces.
pub fn decode_text(regs: &[u16]) -> Result<String, EncodingError> {
    let mut s = String::with_capacity(regs.len() * 2);
    for w in regs {
        for b in w.to_be_bytes() {
            if b == 0 {
                return Ok(s.trim_end().to_string());
            }
            if !b.is_ascii() {
                return Err(EncodingError::NotAscii(b));
            }
            s.push(char::from(b));
        }
    }
    Ok(s.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(data_type: DataType, order: WordOrder, scale: f64) -> Register {
        Register::plain(data_type, order, scale)
    }

    #[test]
    fn u32_scaled_high_word_first() {
        let r = reg(DataType::U32, WordOrder::Abcd, 0.01);
        let mut out = [0u16; 2];
        encode(&r, Kind::Analog, 230.45, &mut out).unwrap_or_default();
        assert_eq!(out, [0x0000, 23045]);
        assert_eq!(decode(&r, &out), Ok(230.45));
    }

    #[test]
    fn every_word_order_round_trips_and_differs() {
        let v = 0x1122_3344u32 as f64;
        let mut seen = Vec::new();
        for order in [WordOrder::Abcd, WordOrder::Cdab, WordOrder::Badc, WordOrder::Dcba] {
            let r = reg(DataType::U32, order, 1.0);
            let mut out = [0u16; 2];
            encode(&r, Kind::Analog, v, &mut out).unwrap_or_default();
            assert_eq!(decode(&r, &out), Ok(v), "{order:?}");
            seen.push(out);
        }
        assert_eq!(
            seen,
            vec![[0x1122, 0x3344], [0x3344, 0x1122], [0x2211, 0x4433], [0x4433, 0x2211]]
        );
    }

    #[test]
    fn signed_and_float_types() {
        let r = reg(DataType::I32, WordOrder::Abcd, 10.0);
        let mut out = [0u16; 2];
        encode(&r, Kind::Analog, -12340.0, &mut out).unwrap_or_default();
        assert_eq!(decode(&r, &out), Ok(-12340.0));
        let f = reg(DataType::F32, WordOrder::Cdab, 1.0);
        encode(&f, Kind::Analog, 1.5, &mut out).unwrap_or_default();
        assert_eq!(out, [0x0000, 0x3fc0]);
        let d = reg(DataType::F64, WordOrder::Abcd, 1.0);
        let mut out4 = [0u16; 4];
        encode(&d, Kind::Analog, -2.25, &mut out4).unwrap_or_default();
        assert_eq!(decode(&d, &out4), Ok(-2.25));
        let i16r = reg(DataType::I16, WordOrder::Abcd, 1.0);
        let mut one = [0u16; 1];
        encode(&i16r, Kind::Analog, -40000.0, &mut one).unwrap_or_default();
        assert_eq!(one[0] as i16, i16::MIN, "saturates");
    }

    #[test]
    fn counters_wrap_and_analogs_saturate() {
        let r = reg(DataType::U16, WordOrder::Abcd, 1.0);
        let mut out = [0u16; 1];
        encode(&r, Kind::Counter, 65536.0 + 5.0, &mut out).unwrap_or_default();
        assert_eq!(out[0], 5);
        encode(&r, Kind::Analog, 70000.0, &mut out).unwrap_or_default();
        assert_eq!(out[0], 65535);
    }

    #[test]
    fn bits_keep_their_neighbours() {
        let r = reg(DataType::Bit(3), WordOrder::Abcd, 1.0);
        let mut out = [0b1u16];
        encode(&r, Kind::Binary, 1.0, &mut out).unwrap_or_default();
        assert_eq!(out[0], 0b1001);
        assert_eq!(decode(&r, &out), Ok(1.0));
        encode(&r, Kind::Binary, 0.0, &mut out).unwrap_or_default();
        assert_eq!(out[0], 0b1);
    }

    #[test]
    fn ascii_round_trip() {
        let mut out = [0u16; 2];
        encode_text("SOCO", &mut out).unwrap_or_default();
        assert_eq!(out, [0x534f, 0x434f]);
        assert_eq!(decode_text(&out), Ok("SOCO".to_string()));
        assert!(encode_text("TOOLONG", &mut out).is_err());
        assert!(decode_text(&[0xff41]).is_err());
    }
}
