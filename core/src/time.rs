//! Timestamps as text (RFC 3339, UTC, milliseconds) without a calendar dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
}

/// The UTC calendar fields of an instant.
pub fn civil(t: SystemTime) -> Civil {
    let ms = unix_ms(t);
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: if m <= 2 { y + 1 } else { y },
        month: m as u8,
        day: d as u8,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 3).rem_euclid(7) + 1) as u8,
        hour: (rem / 3600) as u8,
        minute: (rem / 60 % 60) as u8,
        second: (rem % 60) as u8,
        millis: (ms % 1000) as u16,
    }
}

/// `2026-11-22T02:28:15.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds of `2026-11-22T02:28:15Z` (fractions of a second allowed, UTC only) or of
/// a date `2026-11-22` (its midnight, UTC); `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (num(ymd.next()?)?, num(ymd.next()?)?, num(ymd.next()?)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(t) = time {
        let t = t.strip_suffix(['Z', 'z'])?;
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut it = hms.splitn(3, ':');
        let (h, mi, s) = (num(it.next()?)?, num(it.next()?)?, num(it.next()?)?);
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let millis = if frac.is_empty() {
            0
        } else {
            num(&format!("{frac:0<3}")[..3])?
        };
        ms += ((h * 60 + mi) * 60 + s) * 1000 + millis;
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_314_495)),
            "2026-11-22T02:28:15.000Z"
        );
        assert_eq!(
            civil(UNIX_EPOCH + Duration::from_secs(1_795_314_495)).weekday,
            7,
            "a Sunday"
        );
        assert_eq!(civil(UNIX_EPOCH).weekday, 4, "a Thursday");
    }

    #[test]
    fn rfc3339_reads_back_what_it_writes() {
        for ms in [0u64, 951_782_400_123, 1_795_314_495_000, 4_102_444_800_999] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(ms as i64), "{}", rfc3339(t));
        }
        assert_eq!(parse_rfc3339("2026-11-22"), Some(1_795_305_600_000));
        assert_eq!(parse_rfc3339("2026-11-22T02:28:15.5Z"), Some(1_795_314_495_500));
        for bad in [
            "",
            "2026-13-01",
            "2026-11-22T02:28:15",
            "2026-11-22T25:00:00Z",
            "yesterday",
            "2026-1x-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
