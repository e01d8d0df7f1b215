//! Registers of a read block -> readings with quality: decode per the profile, then check
//! labels and the plausible range. A value out of its range is kept but not good.

use crate::config::Device;
use crate::store::{PointValue, Reading};
use busbar_core::encoding;
use busbar_core::profile::Kind;
use busbar_core::quality::Quality;

/// Decode profile point `k` of `dev` from `words`, which start at register `base`.
pub fn decode_point(dev: &Device, k: usize, base: u16, words: &[u16]) -> Reading {
    let Some(p) = dev.profile.points.get(k) else {
        return Reading::Failed(Quality::ConfigError);
    };
    let off = usize::from(p.register.address.wrapping_sub(base));
    let n = usize::from(p.register.data_type.words());
    let Some(regs) = words.get(off..off + n) else {
        return Reading::Failed(Quality::DecodeError);
    };
    if p.kind == Kind::String {
        return match encoding::decode_text(regs) {
            Ok(t) => Reading::Value(PointValue::Text(t), Quality::Good),
            Err(_) => Reading::Failed(Quality::DecodeError),
        };
    }
    let value = if p.register.table.is_bits() {
        f64::from(regs[0] & 1)
    } else {
        match encoding::decode(&p.register, regs) {
            Ok(v) => v,
            Err(_) => return Reading::Failed(Quality::DecodeError),
        }
    };
    let quality = match p.kind {
        Kind::Enum if !p.labels.contains_key(&(value.round() as i64)) => Quality::DecodeError,
        Kind::Binary if value != 0.0 && value != 1.0 => Quality::DecodeError,
        _ => match dev.range(k) {
            Some((lo, hi)) if value < lo || value > hi => Quality::OutOfRange,
            _ => Quality::Good,
        },
    };
    Reading::Value(PointValue::Number(value), quality)
}
