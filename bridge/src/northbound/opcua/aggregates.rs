//! Processed HistoryRead (Part 13): Average, Minimum, Maximum, Count and Interpolative over
//! processing intervals, computed from the raw values whichever history holds them (InfluxDB or
//! the in-memory rings). No IO here: raw values in, one DataValue per interval out.

use opcua::types::{DataValue, DateTime, NodeId, ObjectId, StatusCode, Variant};

/// The aggregates served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Average,
    Minimum,
    Maximum,
    Count,
    Interpolative,
}

impl Aggregate {
    pub fn of(id: &NodeId) -> Option<Aggregate> {
        let n = |a: ObjectId| *id == a;
        if n(ObjectId::AggregateFunction_Average) {
            Some(Aggregate::Average)
        } else if n(ObjectId::AggregateFunction_Minimum) {
            Some(Aggregate::Minimum)
        } else if n(ObjectId::AggregateFunction_Maximum) {
            Some(Aggregate::Maximum)
        } else if n(ObjectId::AggregateFunction_Count) {
            Some(Aggregate::Count)
        } else if n(ObjectId::AggregateFunction_Interpolative) {
            Some(Aggregate::Interpolative)
        } else {
            None
        }
    }
}

/// A raw value: its source time (Unix ms), its number if it has one, and whether it is good.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Raw {
    pub ms: i64,
    pub value: Option<f64>,
    pub good: bool,
}

impl Raw {
    pub fn of(ms: i64, v: &DataValue) -> Raw {
        let value = match v.value {
            Some(Variant::Double(x)) => Some(x),
            _ => None,
        };
        Raw {
            ms,
            value,
            good: v.status.is_none_or(|s| s.is_good()),
        }
    }

    fn good_value(&self) -> Option<f64> {
        self.value.filter(|_| self.good)
    }
}

/// Most intervals one read computes.
pub const MAX_INTERVALS: usize = 100_000;

fn at(ms: i64, value: Option<Variant>, status: StatusCode) -> DataValue {
    let t = DateTime::from(opcua::types::date_time::DateTimeUtc::from(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
    ));
    DataValue {
        value,
        status: Some(status),
        source_timestamp: Some(t),
        server_timestamp: Some(t),
        ..Default::default()
    }
}

/// One value per interval [start + k * interval, start + (k + 1) * interval) up to `end`
/// (`interval` 0: one interval, the whole range). `raw` is sorted by time and holds the
/// window plus, for Interpolative, the good values bounding it. The status is Good when every
/// raw value used was good, UncertainDataSubNormal when bad ones were skipped or the value is
/// extrapolated, BadNoData when an interval has nothing to compute from (Count: 0, Good).
pub fn compute(
    aggregate: Aggregate,
    raw: &[Raw],
    start: i64,
    end: i64,
    interval: i64,
) -> Result<Vec<DataValue>, StatusCode> {
    if end <= start {
        return Err(StatusCode::BadInvalidArgument);
    }
    let step = if interval <= 0 { end - start } else { interval };
    let count = (end - start + step - 1) / step;
    if count as u64 > MAX_INTERVALS as u64 {
        return Err(StatusCode::BadTooManyOperations);
    }
    let mut out = Vec::with_capacity(count as usize);
    for k in 0..count {
        let lo = start + k * step;
        let hi = (lo + step).min(end);
        out.push(one(aggregate, raw, lo, hi));
    }
    Ok(out)
}

fn one(aggregate: Aggregate, raw: &[Raw], lo: i64, hi: i64) -> DataValue {
    let inside: Vec<&Raw> = raw.iter().filter(|r| r.ms >= lo && r.ms < hi).collect();
    let good: Vec<(i64, f64)> = inside.iter().filter_map(|r| Some((r.ms, r.good_value()?))).collect();
    let status = if good.len() == inside.len() {
        StatusCode::Good
    } else {
        StatusCode::UncertainDataSubNormal
    };
    match aggregate {
        Aggregate::Count => at(lo, Some(Variant::Int32(good.len() as i32)), status),
        Aggregate::Average if good.is_empty() => at(lo, None, StatusCode::BadNoData),
        Aggregate::Average => {
            let mean = good.iter().map(|(_, v)| v).sum::<f64>() / good.len() as f64;
            at(lo, Some(Variant::Double(mean)), status)
        }
        Aggregate::Minimum | Aggregate::Maximum => {
            let pick = good.iter().copied().reduce(|a, b| {
                let better = if aggregate == Aggregate::Minimum {
                    b.1 < a.1
                } else {
                    b.1 > a.1
                };
                if better {
                    b
                } else {
                    a
                }
            });
            match pick {
                Some((ms, v)) => at(ms, Some(Variant::Double(v)), status),
                None => at(lo, None, StatusCode::BadNoData),
            }
        }
        Aggregate::Interpolative => interpolate(raw, lo),
    }
}

/// The value at `t`: linear between the good values bounding it, the last one held when none
/// follows (UncertainDataSubNormal), BadNoData when none precedes.
fn interpolate(raw: &[Raw], t: i64) -> DataValue {
    let before = raw
        .iter()
        .rev()
        .find_map(|r| Some((r.ms, r.good_value()?)).filter(|(ms, _)| *ms <= t));
    let after = raw
        .iter()
        .find_map(|r| Some((r.ms, r.good_value()?)).filter(|(ms, _)| *ms > t));
    match (before, after) {
        (Some((t0, v0)), _) if t0 == t => at(t, Some(Variant::Double(v0)), StatusCode::Good),
        (Some((t0, v0)), Some((t1, v1))) => {
            let v = v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64;
            at(t, Some(Variant::Double(v)), StatusCode::Good)
        }
        (Some((_, v0)), None) => at(t, Some(Variant::Double(v0)), StatusCode::UncertainDataSubNormal),
        (None, _) => at(t, None, StatusCode::BadNoData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(points: &[(i64, f64)]) -> Vec<Raw> {
        points
            .iter()
            .map(|&(ms, v)| Raw {
                ms,
                value: Some(v),
                good: true,
            })
            .collect()
    }

    fn num(v: &DataValue) -> Option<f64> {
        match v.value {
            Some(Variant::Double(x)) => Some(x),
            Some(Variant::Int32(x)) => Some(f64::from(x)),
            _ => None,
        }
    }

    #[test]
    fn interval_aggregates() {
        let r = raw(&[(0, 1.0), (500, 3.0), (1000, 10.0), (1999, 20.0), (3500, 7.0)]);
        let avg = compute(Aggregate::Average, &r, 0, 3000, 1000).unwrap_or_default();
        assert_eq!(
            avg.iter().map(num).collect::<Vec<_>>(),
            vec![Some(2.0), Some(15.0), None]
        );
        assert_eq!(avg[2].status, Some(StatusCode::BadNoData));
        let count = compute(Aggregate::Count, &r, 0, 3000, 1000).unwrap_or_default();
        assert_eq!(
            count.iter().map(num).collect::<Vec<_>>(),
            vec![Some(2.0), Some(2.0), Some(0.0)]
        );
        let max = compute(Aggregate::Maximum, &r, 0, 3000, 1000).unwrap_or_default();
        assert_eq!(num(&max[1]), Some(20.0));
        let min = compute(Aggregate::Minimum, &r, 0, 4000, 0).unwrap_or_default();
        assert_eq!(min.len(), 1, "interval 0: the whole range");
        assert_eq!(num(&min[0]), Some(1.0));
        let interp = compute(Aggregate::Interpolative, &r, 250, 4250, 1000).unwrap_or_default();
        // 250: between 1 @0 and 3 @500; 1250: between 10 @1000 and 20 @1999; 2250: between
        // 20 @1999 and 7 @3500; 3250 likewise; past the last value it is held, uncertain.
        assert_eq!(num(&interp[0]), Some(2.0));
        assert!((num(&interp[1]).unwrap_or(0.0) - (10.0 + 10.0 * 250.0 / 999.0)).abs() < 1e-9);
        assert_eq!(interp[3].status, Some(StatusCode::Good));
        let held = compute(Aggregate::Interpolative, &r, 3600, 4600, 1000).unwrap_or_default();
        assert_eq!(num(&held[0]), Some(7.0));
        assert_eq!(held[0].status, Some(StatusCode::UncertainDataSubNormal));
        assert_eq!(
            compute(Aggregate::Interpolative, &r, -500, 0, 500).unwrap_or_default()[0].status,
            Some(StatusCode::BadNoData)
        );
    }

    #[test]
    fn bad_values_are_skipped_and_say_so() {
        let mut r = raw(&[(0, 1.0), (100, 99.0), (200, 3.0)]);
        r[1].good = false;
        let avg = compute(Aggregate::Average, &r, 0, 1000, 0).unwrap_or_default();
        assert_eq!(num(&avg[0]), Some(2.0));
        assert_eq!(avg[0].status, Some(StatusCode::UncertainDataSubNormal));
        assert_eq!(
            compute(Aggregate::Count, &r, 1000, 0, 10),
            Err(StatusCode::BadInvalidArgument)
        );
        assert_eq!(
            compute(Aggregate::Count, &r, 0, 1_000_000_000, 1),
            Err(StatusCode::BadTooManyOperations)
        );
    }

    #[test]
    fn aggregate_ids() {
        assert_eq!(
            Aggregate::of(&NodeId::from(ObjectId::AggregateFunction_Average)),
            Some(Aggregate::Average)
        );
        assert_eq!(
            Aggregate::of(&NodeId::from(ObjectId::AggregateFunction_TimeAverage)),
            None
        );
    }
}
