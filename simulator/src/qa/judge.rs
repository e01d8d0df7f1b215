//! Judging expectations on the simulated clock: pure functions of what was seen (the SUT's
//! reads and writes, probed values, notifications) and of the time now, so every kind is
//! unit-tested without a network.

use super::expect::{Compare, ValueMatch};
use crate::activity::{Block, Write};
use std::collections::HashMap;

/// Where an expectation stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pending,
    Met { at_s: f64, detail: String },
    Failed { at_s: f64, detail: String },
}

/// A value a probe read.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Number(f64),
    Text(String),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Number(n) => write!(f, "{n}"),
            Seen::Text(t) => write!(f, "\"{t}\""),
        }
    }
}

fn s(t: f64) -> String {
    format!("{t:.1} s")
}

/// `polled`: no gap longer than `every` between reads in `[start, end]` (the window's start
/// counts as a read), and, with `not_faster_than`, no block read again sooner than that (a poll
/// cycle reads each block once; its requests may be spread by other devices' answers).
pub fn polled(
    reads: &[(f64, Block)],
    start: f64,
    end: f64,
    now: f64,
    every: f64,
    not_faster_than: Option<f64>,
) -> Verdict {
    let upto = end.min(now);
    let mut prev = start;
    let mut largest: f64 = 0.0;
    // Per block: when it was last read, and how often.
    let mut blocks: HashMap<Block, (f64, usize)> = HashMap::new();
    let mut too_soon: Option<(f64, f64)> = None;
    for &(t, block) in reads.iter().filter(|r| r.0 >= start && r.0 <= upto) {
        if t - prev > every {
            return Verdict::Failed {
                at_s: prev + every,
                detail: format!(
                    "no read between {} and {} (a gap of {}, more than {})",
                    s(prev),
                    s(t),
                    s(t - prev),
                    s(every)
                ),
            };
        }
        largest = largest.max(t - prev);
        let seen = blocks.entry(block).or_insert((f64::NEG_INFINITY, 0));
        if not_faster_than.is_some_and(|m| t - seen.0 < m) {
            too_soon.get_or_insert((seen.0, t));
        }
        *seen = (t, seen.1 + 1);
        prev = t;
    }
    if upto - prev > every {
        return Verdict::Failed {
            at_s: prev + every,
            detail: format!("no read since {} (more than {})", s(prev), s(every)),
        };
    }
    if let (Some(min), Some((a, b))) = (not_faster_than, too_soon) {
        return Verdict::Failed {
            at_s: b,
            detail: format!(
                "the same registers read at {} and again at {} (less than {} apart)",
                s(a),
                s(b),
                s(min)
            ),
        };
    }
    if now >= end {
        // A cycle reads each block once: the most-read block counts the cycles.
        let polls = blocks.values().map(|b| b.1).max().unwrap_or(0);
        Verdict::Met {
            at_s: end,
            detail: format!("{polls} polls, largest gap {}", s(largest.max(upto - prev))),
        }
    } else {
        Verdict::Pending
    }
}

/// `wrote`: a write of `point` with a matching value between `start` and `deadline`.
pub fn wrote(
    writes: &[Write],
    device: usize,
    point: &str,
    value: ValueMatch,
    start: f64,
    deadline: f64,
    now: f64,
) -> Verdict {
    let relevant: Vec<&Write> = writes
        .iter()
        .filter(|w| w.device == device && w.point == point && w.at_s >= start && w.at_s <= deadline)
        .collect();
    if let Some(w) = relevant.iter().find(|w| value.accepts(w.value)) {
        return Verdict::Met {
            at_s: w.at_s,
            detail: format!(
                "{point} = {} at {}{}",
                w.value,
                s(w.at_s),
                if w.accepted { "" } else { " (the device refused it)" }
            ),
        };
    }
    if now > deadline {
        let seen: Vec<String> = relevant
            .iter()
            .take(5)
            .map(|w| format!("{} at {}", w.value, s(w.at_s)))
            .collect();
        return Verdict::Failed {
            at_s: deadline,
            detail: format!(
                "no write of {} to {point} between {} and {}; writes of it seen: {}",
                value.describe(),
                s(start),
                s(deadline),
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                }
            ),
        };
    }
    Verdict::Pending
}

/// `never_wrote`: no write to the device (or its `point`), or none outside `outside`.
pub fn never_wrote(
    writes: &[Write],
    device: usize,
    point: Option<&str>,
    outside: Option<(f64, f64)>,
    start: f64,
    end: f64,
    now: f64,
) -> Verdict {
    let bad = writes.iter().find(|w| {
        w.device == device
            && point.is_none_or(|p| p == w.point)
            && w.at_s >= start
            && w.at_s <= end
            && outside.is_none_or(|(lo, hi)| w.value < lo || w.value > hi)
    });
    if let Some(w) = bad {
        return Verdict::Failed {
            at_s: w.at_s,
            detail: format!("wrote {} = {} at {}", w.point, w.value, s(w.at_s)),
        };
    }
    if now >= end {
        Verdict::Met {
            at_s: end,
            detail: "no such write".into(),
        }
    } else {
        Verdict::Pending
    }
}

/// Whether a probed value satisfies `compare` (`truth` is the simulator's value, when the
/// comparison is with it), and the words for the report.
pub fn compare(seen: &Result<Seen, String>, compare: &Compare, truth: Option<f64>) -> (bool, String) {
    let seen = match seen {
        Ok(v) => v,
        Err(e) => return (false, format!("probe failed: {e}")),
    };
    let number = match seen {
        Seen::Number(n) => Some(*n),
        Seen::Text(t) => t.trim().parse::<f64>().ok(),
    };
    match compare {
        Compare::Text(want) => {
            let got = match seen {
                Seen::Text(t) => t.clone(),
                Seen::Number(n) => n.to_string(),
            };
            (got == *want, format!("{seen}, expected \"{want}\""))
        }
        Compare::Number { value, tolerance } => {
            let ok = number.is_some_and(|n| (n - value).abs() <= *tolerance + 1e-9);
            (ok, format!("{seen}, expected {value} +/- {tolerance}"))
        }
        Compare::Range(lo, hi) => {
            let ok = number.is_some_and(|n| n >= *lo && n <= *hi);
            (ok, format!("{seen}, expected within [{lo}, {hi}]"))
        }
        Compare::Truth {
            tolerance,
            tolerance_pct,
            point,
            ..
        } => match truth {
            None => (false, format!("{seen}; the simulator has no value for `{point}`")),
            Some(t) => {
                let allowed = tolerance + t.abs() * tolerance_pct / 100.0;
                let ok = number.is_some_and(|n| (n - t).abs() <= allowed + 1e-9);
                (ok, format!("{seen}, truth {t} +/- {allowed}"))
            }
        },
    }
}

/// A probe's verdict from its latest comparison at `now`: eventually (a deadline) or always
/// (until `end`).
pub fn probe(eventually: bool, ok: bool, words: &str, start: f64, end: f64, now: f64) -> Verdict {
    if eventually {
        if ok && now <= end {
            return Verdict::Met {
                at_s: now,
                detail: words.to_string(),
            };
        }
        if now > end {
            return Verdict::Failed {
                at_s: end,
                detail: format!("not by {}: last seen {words}", s(end)),
            };
        }
        return Verdict::Pending;
    }
    if !ok && now >= start {
        return Verdict::Failed {
            at_s: now,
            detail: words.to_string(),
        };
    }
    if now >= end {
        return Verdict::Met {
            at_s: end,
            detail: format!("held; last seen {words}"),
        };
    }
    Verdict::Pending
}

/// `notified` (eventually) or `not_notified` (`none`, always): notifications `(time, text)`.
pub fn notified(messages: &[(f64, String)], pattern: &str, none: bool, start: f64, end: f64, now: f64) -> Verdict {
    let hit = messages
        .iter()
        .find(|(t, m)| *t >= start && *t <= end && super::expect::pattern_matches(pattern, m));
    match (hit, none) {
        (Some((t, m)), false) => Verdict::Met {
            at_s: *t,
            detail: format!("at {}: {}", s(*t), m.chars().take(200).collect::<String>()),
        },
        (Some((t, m)), true) => Verdict::Failed {
            at_s: *t,
            detail: format!("at {}: {}", s(*t), m.chars().take(200).collect::<String>()),
        },
        (None, false) if now > end => Verdict::Failed {
            at_s: end,
            detail: format!(
                "nothing matching `{pattern}` by {} ({} notifications received)",
                s(end),
                messages.len()
            ),
        },
        (None, true) if now >= end => Verdict::Met {
            at_s: end,
            detail: format!("none matching `{pattern}`"),
        },
        _ => Verdict::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(at_s: f64, point: &str, value: f64) -> Write {
        Write {
            at_s,
            device: 1,
            point: point.into(),
            value,
            accepted: true,
        }
    }

    #[test]
    fn polling_gaps_and_cycles_are_judged_on_the_simulated_clock() {
        // Two blocks per cycle, the second delayed by other devices' answers in one cycle.
        let (a, b) = ((3u8, 100u16), (3u8, 200u16));
        let reads = [
            (0.5, a),
            (0.52, b),
            (1.5, a),
            (1.95, b),
            (2.5, a),
            (2.51, b),
            (3.5, a),
            (3.5, b),
        ];
        assert_eq!(polled(&reads, 0.0, 10.0, 3.6, 1.5, None), Verdict::Pending);
        // Nothing after 3.5 s: at 5.1 s the gap is over 1.5 s.
        assert!(
            matches!(polled(&reads, 0.0, 10.0, 5.1, 1.5, None), Verdict::Failed { at_s, .. } if (at_s - 5.0).abs() < 1e-9)
        );
        let steady: Vec<(f64, Block)> = (1..=10).map(|t| (f64::from(t), a)).collect();
        assert!(
            matches!(polled(&steady, 0.0, 10.0, 10.0, 1.5, None), Verdict::Met { detail, .. } if detail.starts_with("10 polls"))
        );
        // Each block read once a second: not faster than 0.5 s, but faster than 1.5 s.
        assert!(matches!(
            polled(&reads, 0.0, 4.0, 4.0, 1.5, Some(0.5)),
            Verdict::Met { .. }
        ));
        assert!(matches!(
            polled(&reads, 0.0, 4.0, 4.0, 1.5, Some(1.5)),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn a_write_is_met_by_its_first_match_before_the_deadline() {
        let writes = [
            w(31.0, "command", 1.0),
            w(33.0, "command", 2.0),
            w(50.0, "command", 2.0),
        ];
        let v = wrote(&writes, 1, "command", ValueMatch::Exact(2.0), 30.0, 40.0, 34.0);
        assert!(matches!(v, Verdict::Met { at_s, .. } if at_s == 33.0));
        // Too late: the write at 50 s is after the deadline.
        let v = wrote(&writes[2..], 1, "command", ValueMatch::Exact(2.0), 30.0, 40.0, 40.5);
        assert!(matches!(v, Verdict::Failed { detail, .. } if detail.contains("none")));
        assert_eq!(
            wrote(&[], 1, "command", ValueMatch::Any, 30.0, 40.0, 39.0),
            Verdict::Pending
        );
        let v = wrote(&writes, 1, "command", ValueMatch::Range(5.0, 9.0), 30.0, 40.0, 41.0);
        assert!(matches!(v, Verdict::Failed { detail, .. } if detail.contains("1 at 31.0 s, 2 at 33.0 s")));
    }

    #[test]
    fn forbidden_writes_fail_at_once_and_allowed_ones_pass() {
        let writes = [w(10.0, "current_limit", 16.0), w(20.0, "current_limit", 40.0)];
        let v = never_wrote(&writes, 1, Some("current_limit"), Some((6.0, 32.0)), 0.0, 60.0, 25.0);
        assert!(matches!(v, Verdict::Failed { at_s, .. } if at_s == 20.0));
        let v = never_wrote(
            &writes[..1],
            1,
            Some("current_limit"),
            Some((6.0, 32.0)),
            0.0,
            60.0,
            60.0,
        );
        assert!(matches!(v, Verdict::Met { .. }));
        assert!(matches!(
            never_wrote(&writes, 2, None, None, 0.0, 60.0, 60.0),
            Verdict::Met { .. }
        ));
        assert!(matches!(
            never_wrote(&writes, 1, None, None, 0.0, 60.0, 5.0),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn comparisons_with_constants_labels_ranges_and_the_truth() {
        let n = |v| Ok(Seen::Number(v));
        let num = Compare::Number {
            value: 2.0,
            tolerance: 0.1,
        };
        assert!(compare(&n(2.05), &num, None).0);
        assert!(!compare(&n(2.2), &num, None).0);
        assert!(
            compare(
                &Ok(Seen::Text("comm_failure".into())),
                &Compare::Text("comm_failure".into()),
                None
            )
            .0
        );
        assert!(compare(&Ok(Seen::Text("12.5".into())), &Compare::Range(10.0, 20.0), None).0);
        let truth = Compare::Truth {
            device: 0,
            point: "v1".into(),
            tolerance: 0.0,
            tolerance_pct: 0.5,
        };
        assert!(compare(&n(231.0), &truth, Some(230.0)).0, "within 0.5 % of 230");
        assert!(!compare(&n(232.0), &truth, Some(230.0)).0);
        assert!(!compare(&n(230.0), &truth, None).0);
        let (ok, words) = compare(&Err("connection refused".into()), &num, None);
        assert!(!ok && words.contains("connection refused"));
    }

    #[test]
    fn probes_are_met_once_or_must_hold_until_their_end() {
        assert!(matches!(probe(true, true, "2", 10.0, 15.0, 12.0), Verdict::Met { at_s, .. } if at_s == 12.0));
        assert_eq!(probe(true, false, "1", 10.0, 15.0, 14.0), Verdict::Pending);
        assert!(matches!(
            probe(true, false, "1", 10.0, 15.0, 15.2),
            Verdict::Failed { .. }
        ));
        assert_eq!(probe(false, true, "1", 10.0, 15.0, 14.0), Verdict::Pending);
        assert!(matches!(probe(false, false, "9", 10.0, 15.0, 14.0), Verdict::Failed { at_s, .. } if at_s == 14.0));
        assert!(matches!(probe(false, true, "1", 10.0, 15.0, 15.0), Verdict::Met { .. }));
    }

    #[test]
    fn notifications_match_their_pattern_inside_the_window() {
        let m = vec![
            (5.0, "coldStart".to_string()),
            (32.0, "busbarCommLost ev3 offline".to_string()),
        ];
        assert!(
            matches!(notified(&m, "CommLost*ev3", false, 30.0, 45.0, 33.0), Verdict::Met { at_s, .. } if at_s == 32.0)
        );
        assert!(matches!(
            notified(&m, "CommLost*ev4", false, 30.0, 45.0, 46.0),
            Verdict::Failed { .. }
        ));
        assert_eq!(notified(&m, "CommLost*ev4", false, 30.0, 45.0, 40.0), Verdict::Pending);
        assert!(matches!(
            notified(&m, "CommLost", true, 30.0, 45.0, 40.0),
            Verdict::Failed { .. }
        ));
        assert!(matches!(
            notified(&m, "coldStart", true, 30.0, 45.0, 45.0),
            Verdict::Met { .. }
        ));
    }
}
