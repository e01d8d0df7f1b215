//! Segmentation (clauses 5.2 and 5.4): a message too long for one APDU sent as numbered
//! segments, a window of them at a time, each window acknowledged by the receiver; and the
//! receiving side that puts the segments back together in order.
//!
//! No IO and no clock. The owner of a transaction sends what these return, calls
//! [`Outgoing::timeout`] when its segment timer runs out, and drops a transaction whose
//! [`Incoming`] side stayed silent for longer than the standard's 4 x segment timeout.
//!
//! Sequence numbers are modulo 256 (a message may have more segments than that); windows are
//! 1..=127 segments.

use crate::apdu;

/// The octets before a segment's data in a segmented ComplexACK: type and flags, invoke id,
/// sequence number, proposed window size, service choice.
pub const COMPLEX_ACK_SEGMENT_HEADER: usize = 5;
/// The same for a segmented Confirmed-Request (one more: the max segments / max APDU octet).
pub const CONFIRMED_REQUEST_SEGMENT_HEADER: usize = 6;
/// The largest window size the standard allows (clause 20.1.2.8).
pub const MAX_WINDOW: u8 = 127;

/// How many segments `body` makes with `payload` octets of data each (at least one).
pub fn segment_count(body: usize, payload: usize) -> usize {
    body.div_ceil(payload.max(1)).max(1)
}

/// What to do next with an outgoing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these APDUs (a window, or a window again), then start the segment timer.
    Send(Vec<Vec<u8>>),
    /// Nothing to send; restart the segment timer (a duplicate acknowledgement).
    Wait,
    /// The receiver has every segment: the transaction is over.
    Done,
    /// Retries are spent: the transaction is over, unfinished.
    GiveUp,
}

/// A segmented ComplexACK being sent by a server (the SEGMENTED_RESPONSE state, clause 5.4.5.3).
#[derive(Debug, Clone)]
pub struct Outgoing {
    invoke_id: u8,
    service: u8,
    body: Vec<u8>,
    payload: usize,
    count: usize,
    proposed_window: u8,
    /// The window the receiver took (1 until its first acknowledgement).
    window: u8,
    /// The index of the first segment not yet acknowledged.
    first: usize,
    retries: u32,
}

impl Outgoing {
    /// The ack `body` (what follows the service choice) of `service`, in segments of at most
    /// `max_apdu` octets, offering windows of `proposed_window` segments.
    pub fn new(invoke_id: u8, service: u8, body: Vec<u8>, max_apdu: usize, proposed_window: u8) -> Outgoing {
        let payload = max_apdu.saturating_sub(COMPLEX_ACK_SEGMENT_HEADER).max(1);
        Outgoing {
            invoke_id,
            service,
            count: segment_count(body.len(), payload),
            body,
            payload,
            proposed_window: proposed_window.clamp(1, MAX_WINDOW),
            window: 1,
            first: 0,
            retries: 0,
        }
    }

    pub fn invoke_id(&self) -> u8 {
        self.invoke_id
    }

    /// How many segments the answer takes.
    pub fn segments(&self) -> usize {
        self.count
    }

    fn segment(&self, i: usize) -> Vec<u8> {
        let from = (i * self.payload).min(self.body.len());
        let to = (from + self.payload).min(self.body.len());
        let more = i + 1 < self.count;
        let mut out = Vec::with_capacity(COMPLEX_ACK_SEGMENT_HEADER + to - from);
        out.extend_from_slice(&[
            0x38 | if more { 0x04 } else { 0 },
            self.invoke_id,
            (i % 256) as u8,
            self.proposed_window,
            self.service,
        ]);
        out.extend_from_slice(self.body.get(from..to).unwrap_or(&[]));
        out
    }

    fn fill_window(&self) -> Vec<Vec<u8>> {
        let end = (self.first + usize::from(self.window)).min(self.count);
        (self.first..end).map(|i| self.segment(i)).collect()
    }

    /// The first segment alone: the receiver's acknowledgement sets the window (clause 5.4.5.2).
    pub fn start(&mut self) -> Vec<Vec<u8>> {
        self.first = 0;
        self.window = 1;
        self.retries = 0;
        self.fill_window()
    }

    /// A SegmentACK from the receiver: `sequence` is the last segment it holds in order.
    pub fn ack(&mut self, sequence: u8, window: u8, nak: bool) -> Step {
        let in_flight = (self.first + usize::from(self.window)).min(self.count) - self.first;
        let distance = usize::from(sequence.wrapping_sub((self.first % 256) as u8));
        if distance >= in_flight {
            // Not in the window in flight. A NAK naming the segment just before it says the
            // whole window was lost: send it again now rather than on the timer.
            if nak && distance == 255 {
                self.window = window.clamp(1, self.proposed_window);
                return Step::Send(self.fill_window());
            }
            return Step::Wait;
        }
        let acked = self.first + distance;
        if acked + 1 >= self.count {
            return Step::Done;
        }
        self.first = acked + 1;
        self.window = window.clamp(1, self.proposed_window);
        self.retries = 0;
        Step::Send(self.fill_window())
    }

    /// The segment timer ran out: send the window again, up to `max_retries` times.
    pub fn timeout(&mut self, max_retries: u32) -> Step {
        if self.retries >= max_retries {
            return Step::GiveUp;
        }
        self.retries += 1;
        Step::Send(self.fill_window())
    }
}

/// What a received segment calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Send this SegmentACK; more segments are due.
    Ack(Vec<u8>),
    /// Nothing to send yet (inside a window).
    Nothing,
    /// The last segment: send this SegmentACK, then handle the message.
    Complete { ack: Vec<u8>, message: Vec<u8> },
    /// The message would exceed the size limit: send this Abort (buffer overflow) and drop it.
    TooLong,
}

/// A segmented message being received (SEGMENTED_REQUEST at a server, clause 5.4.5.1, or
/// SEGMENTED_CONF at a client, clause 5.4.4.4).
#[derive(Debug, Clone)]
pub struct Incoming {
    invoke_id: u8,
    service: u8,
    from_server: bool,
    window: u8,
    /// The last segment received in order.
    last: u8,
    /// The segment that opened the current window (the last one acknowledged).
    window_start: u8,
    data: Vec<u8>,
    limit: usize,
}

impl Incoming {
    /// The first segment (sequence number 0) of a message: it is acknowledged at once with the
    /// window taken, the smaller of the sender's proposal and `our_window`. `from_server` is set
    /// when we are the server of the transaction (receiving a request). `limit` caps the octets
    /// of the whole message.
    pub fn first(
        invoke_id: u8,
        service: u8,
        proposed_window: u8,
        our_window: u8,
        data: &[u8],
        limit: usize,
        from_server: bool,
    ) -> (Incoming, Vec<u8>) {
        let window = proposed_window.clamp(1, MAX_WINDOW).min(our_window.max(1));
        let rx = Incoming {
            invoke_id,
            service,
            from_server,
            window,
            last: 0,
            window_start: 0,
            data: data.to_vec(),
            limit,
        };
        let ack = rx.ack(false);
        (rx, ack)
    }

    pub fn service(&self) -> u8 {
        self.service
    }

    fn ack(&self, nak: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(4);
        apdu::segment_ack(&mut out, self.invoke_id, self.last, self.window, nak, self.from_server);
        out
    }

    /// A later segment with its sequence number, whether more follow, and its data.
    pub fn segment(&mut self, sequence: u8, more_follows: bool, data: &[u8]) -> Received {
        if sequence != self.last.wrapping_add(1) {
            // Lost, duplicated or reordered: say which one we hold last; the sender resumes
            // after it. The window restarts there.
            self.window_start = self.last;
            return Received::Ack(self.ack(true));
        }
        if self.data.len() + data.len() > self.limit {
            return Received::TooLong;
        }
        self.data.extend_from_slice(data);
        self.last = sequence;
        if !more_follows {
            return Received::Complete {
                ack: self.ack(false),
                message: std::mem::take(&mut self.data),
            };
        }
        if sequence == self.window_start.wrapping_add(self.window) {
            self.window_start = sequence;
            return Received::Ack(self.ack(false));
        }
        Received::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::{decode, Apdu};

    /// (sequence, more follows, data) of a ComplexACK segment.
    fn parts(s: &[u8]) -> (u8, bool, Vec<u8>) {
        match decode(s) {
            Ok(Apdu::ComplexAck {
                segmented: true,
                more_follows,
                sequence,
                body,
                ..
            }) => (sequence, more_follows, body.to_vec()),
            other => panic!("not a segment: {other:?}"),
        }
    }

    /// (sequence, window, nak) of a SegmentACK.
    fn ack_of(a: &[u8]) -> (u8, u8, bool) {
        match decode(a) {
            Ok(Apdu::SegmentAck {
                sequence, window, nak, ..
            }) => (sequence, window, nak),
            other => panic!("not a SegmentACK: {other:?}"),
        }
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Run a transfer through a lossy, reordering channel: `mangle` may drop, duplicate or
    /// reorder each window before the receiver sees it. Returns the message received and the
    /// number of timeouts it took.
    fn transfer(
        len: usize,
        max_apdu: usize,
        window: u8,
        mut mangle: impl FnMut(usize, Vec<Vec<u8>>) -> Vec<Vec<u8>>,
    ) -> (Vec<u8>, usize) {
        let sent = body(len);
        let mut tx = Outgoing::new(9, 14, sent.clone(), max_apdu, window);
        let mut flight = tx.start();
        let mut rx: Option<Incoming> = None;
        let mut timeouts = 0;
        for round in 0..10_000 {
            let mut acks = Vec::new();
            for s in mangle(round, std::mem::take(&mut flight)) {
                assert!(s.len() <= max_apdu, "a segment fits the APDU");
                let (seq, more, data) = parts(&s);
                match &mut rx {
                    None if seq == 0 => {
                        let (r, ack) = Incoming::first(9, 14, window, 4, &data, 1 << 20, false);
                        rx = Some(r);
                        acks.push(ack);
                    }
                    None => {}
                    Some(r) => match r.segment(seq, more, &data) {
                        Received::Ack(a) => acks.push(a),
                        Received::Nothing => {}
                        Received::Complete { ack, message } => {
                            let (_, _, nak) = ack_of(&ack);
                            assert!(!nak);
                            assert!(matches!(tx.ack(ack_of(&ack).0, ack_of(&ack).1, false), Step::Done));
                            return (message, timeouts);
                        }
                        Received::TooLong => panic!("under the limit"),
                    },
                }
            }
            let mut next = Vec::new();
            for a in acks {
                let (seq, win, nak) = ack_of(&a);
                assert!(win <= window.min(4));
                if let Step::Send(s) = tx.ack(seq, win, nak) {
                    next = s;
                }
            }
            if next.is_empty() {
                timeouts += 1;
                match tx.timeout(1000) {
                    Step::Send(s) => next = s,
                    other => panic!("{other:?}"),
                }
            }
            flight = next;
        }
        panic!("never finished");
    }

    #[test]
    fn a_long_answer_arrives_whole_in_order() {
        for (len, apdu, window) in [
            (100, 50, 4),
            (1471 * 3, 1476, 16),
            (45 * 30 + 1, 50, 2),
            (70_000, 206, 127),
        ] {
            let (got, timeouts) = transfer(len, apdu, window, |_, w| w);
            assert_eq!(got, body(len), "len {len}");
            assert_eq!(timeouts, 0);
        }
        // More than 256 segments: sequence numbers wrap.
        let tx = Outgoing::new(1, 14, body(300 * 45), 50, 8);
        assert_eq!(tx.segments(), 300);
    }

    #[test]
    fn lost_segments_are_sent_again() {
        // Drop the second segment of every window once: a NAK or the timer brings it back.
        let mut dropped = std::collections::HashSet::new();
        let (got, _) = transfer(5000, 206, 4, |_, mut w| {
            if w.len() > 1 {
                let seq = parts(&w[1]).0;
                if dropped.insert(seq) {
                    w.remove(1);
                }
            }
            w
        });
        assert_eq!(got, body(5000));
        // Drop every whole window once: only the timer can help.
        let mut lost = std::collections::HashSet::new();
        let (got, timeouts) = transfer(3000, 206, 3, |_, w| {
            let first = w.first().map(|s| parts(s).0);
            if first.is_some_and(|s| lost.insert(s)) {
                Vec::new()
            } else {
                w
            }
        });
        assert_eq!(got, body(3000));
        assert!(timeouts > 0);
    }

    #[test]
    fn duplicated_and_reordered_segments_never_corrupt_the_message() {
        let (got, _) = transfer(6000, 480, 4, |round, mut w| {
            if round % 2 == 0 {
                w.reverse();
            } else if let Some(s) = w.first().cloned() {
                w.push(s);
            }
            w
        });
        assert_eq!(got, body(6000));
    }

    #[test]
    fn the_receiver_caps_the_size_and_the_sender_gives_up() {
        let (mut rx, _) = Incoming::first(1, 14, 2, 2, &[0; 40], 100, true);
        assert!(matches!(rx.segment(1, true, &[0; 40]), Received::Nothing));
        assert_eq!(rx.segment(2, true, &[0; 40]), Received::TooLong);
        let mut tx = Outgoing::new(1, 14, body(500), 50, 2);
        tx.start();
        assert!(matches!(tx.timeout(2), Step::Send(_)));
        assert!(matches!(tx.timeout(2), Step::Send(_)));
        assert_eq!(tx.timeout(2), Step::GiveUp);
        // A stale acknowledgement (a window already acknowledged) only restarts the timer.
        let mut tx = Outgoing::new(1, 14, body(500), 50, 2);
        tx.start();
        assert!(matches!(tx.ack(0, 2, false), Step::Send(w) if w.len() == 2));
        assert_eq!(tx.ack(0, 2, false), Step::Wait);
        // An unsegmentable window size is taken as 1..=proposed.
        let mut tx = Outgoing::new(1, 14, body(500), 50, 3);
        tx.start();
        assert!(matches!(tx.ack(0, 0, false), Step::Send(w) if w.len() == 1));
    }
}
