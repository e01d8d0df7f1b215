//! Traces of real devices: what `busbar-sim record` saw when it polled a device, and how a
//! scenario device replays it instead of its model (docs/simulator.md, "Twins recorded from real
//! devices").
//!
//! A trace is JSON Lines: a header line, then one line per read request in the order they were
//! made, with the seconds since the first request and what the device answered: the words (one
//! per bit for coils and discrete inputs), a Modbus exception code, or nothing in time.
//!
//! ```text
//! {"busbar_trace":1,"source":"tcp 10.0.0.5:502","unit":2,"profile":"socomec-diris-a40","interval_ms":1000}
//! {"t":0.004,"table":"holding","address":120,"count":8,"words":[17254,26214,17254,26214,17254,26214,16968,0]}
//! {"t":1.003,"table":"holding","address":120,"count":8,"exception":11}
//! {"t":2.001,"table":"holding","address":120,"count":8,"silent":true}
//! ```
//!
//! Replay applies each line at its recorded time (the first at once): words go into the device's register image,
//! an exception or a silence becomes the block's answer until the block's next line. Looped, the
//! trace starts again one interval after its last line.

use busbar_core::diag::Diagnostics;
use busbar_core::profile::Table;
use serde::{Deserialize, Serialize};

/// The trace format's version, in every header.
pub const FORMAT: u32 = 1;

/// The first line of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The format version ([`FORMAT`]).
    pub busbar_trace: u32,
    /// Where it was recorded: `tcp HOST:PORT` or `rtu DEVICE`.
    pub source: String,
    pub unit: u8,
    /// The profile it was recorded through (none for raw ranges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The poll interval of the recording.
    pub interval_ms: u64,
}

/// What the device answered to one read.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Words(Vec<u16>),
    /// A Modbus exception code.
    Exception(u8),
    /// Nothing within the recorder's timeout.
    Silent,
}

/// One read request and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Seconds since the first request.
    pub t_s: f64,
    pub table: Table,
    pub address: u16,
    pub count: u16,
    pub answer: Answer,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameLine {
    t: f64,
    table: String,
    address: u16,
    count: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    words: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exception: Option<u8>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    silent: bool,
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub header: Header,
    pub frames: Vec<Frame>,
}

impl Trace {
    /// How long one pass lasts: from the first line to the last, plus one interval.
    pub fn period_s(&self) -> f64 {
        self.frames.last().map_or(0.0, |f| f.t_s) - self.first_s() + self.header.interval_ms as f64 / 1000.0
    }

    /// The time of the first line: a replay starts with it at once.
    pub fn first_s(&self) -> f64 {
        self.frames.first().map_or(0.0, |f| f.t_s)
    }

    /// Every block the trace reads, each once: `(table, address, count)`.
    pub fn blocks(&self) -> Vec<(Table, u16, u16)> {
        let mut out: Vec<(Table, u16, u16)> = Vec::new();
        for f in &self.frames {
            let b = (f.table, f.address, f.count);
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

/// The header line of a new trace.
pub fn header_line(h: &Header) -> String {
    serde_json::to_string(h).unwrap_or_default()
}

/// The line of one frame.
pub fn frame_line(f: &Frame) -> String {
    let mut line = FrameLine {
        t: (f.t_s * 1000.0).round() / 1000.0,
        table: f.table.as_str().to_string(),
        address: f.address,
        count: f.count,
        words: None,
        exception: None,
        silent: false,
    };
    match &f.answer {
        Answer::Words(w) => line.words = Some(w.clone()),
        Answer::Exception(c) => line.exception = Some(*c),
        Answer::Silent => line.silent = true,
    }
    serde_json::to_string(&line).unwrap_or_default()
}

/// Parse a trace, reporting every bad line with its number. A last line cut short (a recorder
/// killed mid-write) is an error like any other: the user decides whether to drop it.
pub fn parse(file: &str, text: &str) -> Result<Trace, Diagnostics> {
    let mut d = Diagnostics::default();
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        d.push(file, 1, "", "an empty trace (no header line)");
        return Err(d);
    };
    let header: Header = match serde_json::from_str(first) {
        Ok(h) => h,
        Err(e) => {
            d.push(file, 1, "header", format!("not a busbar trace header: {e}"));
            return Err(d);
        }
    };
    if header.busbar_trace != FORMAT {
        d.push(
            file,
            1,
            "header.busbar_trace",
            format!(
                "format {} is not the one this simulator reads ({FORMAT})",
                header.busbar_trace
            ),
        );
    }
    if header.interval_ms == 0 {
        d.push(file, 1, "header.interval_ms", "must be at least 1");
    }
    let mut frames = Vec::new();
    let mut last_t = 0.0;
    for (i, text) in lines {
        let line = i as u64 + 1;
        let f: FrameLine = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                d.push(file, line, "", format!("not a trace line: {e}"));
                continue;
            }
        };
        let Some(table) = Table::parse(&f.table) else {
            d.push(
                file,
                line,
                "table",
                format!("`{}` is not coil, discrete, input or holding", f.table),
            );
            continue;
        };
        if !(f.t.is_finite() && f.t >= last_t) {
            d.push(file, line, "t", format!("{} is before the line above ({last_t})", f.t));
            continue;
        }
        last_t = f.t;
        if f.count == 0 || u32::from(f.address) + u32::from(f.count) > 65_536 {
            d.push(
                file,
                line,
                "count",
                format!("{} registers from {} do not fit the table", f.count, f.address),
            );
            continue;
        }
        let answer = match (f.words, f.exception, f.silent) {
            (Some(w), None, false) if w.len() == usize::from(f.count) => Answer::Words(w),
            (Some(w), None, false) => {
                d.push(
                    file,
                    line,
                    "words",
                    format!("{} words for a read of {}", w.len(), f.count),
                );
                continue;
            }
            (None, Some(c), false) if c != 0 => Answer::Exception(c),
            (None, None, true) => Answer::Silent,
            _ => {
                d.push(
                    file,
                    line,
                    "",
                    "a line needs exactly one of `words`, `exception` (a code 1..255) or `silent: true`",
                );
                continue;
            }
        };
        frames.push(Frame {
            t_s: f.t,
            table,
            address: f.address,
            count: f.count,
            answer,
        });
    }
    if frames.is_empty() && d.is_empty() {
        d.push(file, 1, "", "the trace has a header but no reads");
    }
    d.into_result(Trace { header, frames })
}

/// A block's answer while it is not plain words: what the gateway serves for reads that touch it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quirk {
    pub table: Table,
    pub address: u16,
    pub count: u16,
    /// A Modbus exception code, or `None` for silence.
    pub exception: Option<u8>,
}

impl Quirk {
    /// Whether a read of `count` from `address` in `table` touches this block.
    pub fn touches(&self, table: Table, address: u16, count: u16) -> bool {
        let (a, b) = (u32::from(address), u32::from(address) + u32::from(count));
        let (s, e) = (u32::from(self.address), u32::from(self.address) + u32::from(self.count));
        self.table == table && a < e && b > s
    }
}

/// Plays a trace on the simulated clock.
#[derive(Debug, Clone)]
pub struct Replayer {
    trace: std::sync::Arc<Trace>,
    looped: bool,
    next: usize,
    /// Simulated second at which the current pass started.
    pass_start_s: f64,
    passes: u64,
}

/// What one call to [`Replayer::advance`] changes.
pub trait ReplayTarget {
    /// Words read from the device at this time (into the register image).
    fn words(&mut self, table: Table, address: u16, words: &[u16]);
    /// The block's answer from now on: words (`None`), an exception or a silence.
    fn quirk(&mut self, table: Table, address: u16, count: u16, quirk: Option<Option<u8>>);
}

impl Replayer {
    pub fn new(trace: std::sync::Arc<Trace>, looped: bool) -> Replayer {
        Replayer {
            trace,
            looped,
            next: 0,
            pass_start_s: 0.0,
            passes: 0,
        }
    }

    /// Give every block its first recorded answer, so the device is whole from the start
    /// (the first poll cycle of a recording is spread over a few milliseconds).
    pub fn prime(&self, target: &mut impl ReplayTarget) {
        for (table, address, count) in self.trace.blocks() {
            if let Some(f) = self
                .trace
                .frames
                .iter()
                .find(|f| (f.table, f.address, f.count) == (table, address, count))
            {
                apply(f, target);
            }
        }
    }

    /// Passes completed so far.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// Apply every line due at `now_s` (simulated seconds since the scenario started).
    pub fn advance(&mut self, now_s: f64, target: &mut impl ReplayTarget) {
        loop {
            let Some(f) = self.trace.frames.get(self.next) else {
                let period = self.trace.period_s();
                if !self.looped || period <= 0.0 || now_s + 1e-9 < self.pass_start_s + period {
                    if self.next > 0 && self.passes == 0 && !self.looped {
                        self.passes = 1;
                    }
                    return;
                }
                self.pass_start_s += period;
                self.passes += 1;
                self.next = 0;
                continue;
            };
            if self.pass_start_s + f.t_s - self.trace.first_s() > now_s + 1e-9 {
                return;
            }
            self.next += 1;
            apply(f, target);
        }
    }
}

fn apply(f: &Frame, target: &mut impl ReplayTarget) {
    match &f.answer {
        Answer::Words(w) => {
            target.words(f.table, f.address, w);
            target.quirk(f.table, f.address, f.count, None);
        }
        Answer::Exception(c) => target.quirk(f.table, f.address, f.count, Some(Some(*c))),
        Answer::Silent => target.quirk(f.table, f.address, f.count, Some(None)),
    }
}

/// The model of a replayed device: its registers come from the trace, so it has no physics,
/// emits nothing of its own and takes events for no one.
pub struct Replayed;

impl crate::models::DeviceModel for Replayed {
    fn step(&mut self, _dt: f64, _env: &crate::models::Env, _rng: &mut crate::rng::SimRng) {}
    fn emit(&self, _out: &mut crate::models::Emit<'_>) {}
    fn write(&mut self, _point: &str, _value: f64) -> Result<(), crate::models::Refusal> {
        Ok(())
    }
    fn event(
        &mut self,
        event: &crate::events::Event,
        _rng: &mut crate::rng::SimRng,
    ) -> Result<(), crate::models::Refusal> {
        Err(format!(
            "a replayed device plays its trace: event `{}` does not apply",
            event.name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const TRACE: &str = r#"{"busbar_trace":1,"source":"tcp 127.0.0.1:502","unit":2,"profile":"p","interval_ms":1000}
{"t":0.0,"table":"holding","address":10,"count":2,"words":[1,2]}
{"t":1.0,"table":"holding","address":10,"count":2,"exception":11}
{"t":2.0,"table":"holding","address":10,"count":2,"silent":true}
{"t":3.0,"table":"holding","address":10,"count":2,"words":[3,4]}
"#;

    #[derive(Default)]
    struct Seen {
        words: Vec<(f64, Vec<u16>)>,
        quirk: Option<Option<u8>>,
        now: f64,
    }

    impl ReplayTarget for Seen {
        fn words(&mut self, _: Table, _: u16, words: &[u16]) {
            self.words.push((self.now, words.to_vec()));
        }
        fn quirk(&mut self, _: Table, _: u16, _: u16, quirk: Option<Option<u8>>) {
            self.quirk = quirk;
        }
    }

    fn trace() -> Arc<Trace> {
        Arc::new(parse("t.jsonl", TRACE).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn frames_round_trip_through_their_lines() {
        let t = trace();
        let mut text = header_line(&t.header);
        for f in &t.frames {
            text.push('\n');
            text.push_str(&frame_line(f));
        }
        assert_eq!(parse("again", &text).ok().as_ref(), Some(&*t));
        assert_eq!(t.period_s(), 4.0);
        assert_eq!(t.blocks(), vec![(Table::Holding, 10, 2)]);
    }

    #[test]
    fn replay_applies_words_exceptions_and_silences_at_their_times() {
        let mut r = Replayer::new(trace(), false);
        let mut seen = Seen::default();
        for step in 0..=60 {
            seen.now = f64::from(step) * 0.1;
            r.advance(seen.now, &mut seen);
            match step {
                5 => assert_eq!(seen.quirk, None, "words at 0 s"),
                15 => assert_eq!(seen.quirk, Some(Some(11)), "exception 0x0B from 1 s"),
                25 => assert_eq!(seen.quirk, Some(None), "silent from 2 s"),
                35 => assert_eq!(seen.quirk, None, "words again from 3 s"),
                _ => {}
            }
        }
        assert_eq!(seen.words, vec![(0.0, vec![1, 2]), (3.0, vec![3, 4])]);
        assert_eq!(r.passes(), 1, "played once, then holds its last answer");
    }

    #[test]
    fn a_looped_replay_starts_again_one_interval_after_its_last_line() {
        let mut r = Replayer::new(trace(), true);
        let mut seen = Seen::default();
        for step in 0..=100 {
            seen.now = f64::from(step) * 0.1;
            r.advance(seen.now, &mut seen);
        }
        let times: Vec<f64> = seen.words.iter().map(|w| (w.0 * 10.0).round() / 10.0).collect();
        assert_eq!(times, vec![0.0, 3.0, 4.0, 7.0, 8.0]);
        assert_eq!(r.passes(), 2);
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let text = r#"{"busbar_trace":1,"source":"x","unit":1,"interval_ms":500}
{"t":1.0,"table":"holding","address":10,"count":2,"words":[1]}
{"t":0.5,"table":"holding","address":10,"count":2,"words":[1,2]}
{"t":2.0,"table":"register","address":10,"count":2,"words":[1,2]}
{"t":3.0,"table":"input","address":10,"count":2,"words":[1,2],"silent":true}
{"t":4.0,"table":"input","addr
"#;
        let e = parse("bad.jsonl", text)
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        for want in [
            "bad.jsonl:2: words: 1 words for a read of 2",
            "bad.jsonl:4: table: `register` is not",
            "bad.jsonl:5: a line needs exactly one of",
            "bad.jsonl:6: not a trace line",
        ] {
            assert!(e.contains(want), "missing `{want}` in:\n{e}");
        }
        assert!(parse("e", "").is_err());
        assert!(parse("h", r#"{"busbar_trace":2,"source":"x","unit":1,"interval_ms":5}"#).is_err());
    }
}
