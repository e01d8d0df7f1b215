//! The segmentation state machines of a BACnet transaction on a channel the fuzzer controls.
//! The first bytes pick the message length, the APDU size and the windows; every further byte
//! is one event: deliver, drop, duplicate or reorder a segment or an acknowledgement, let the
//! segment timer run out, or hand the sender an acknowledgement made of arbitrary octets.
//! Whatever happens, nothing panics, every segment fits the APDU, and a message the receiver
//! declares complete is exactly the message sent.
#![no_main]

use std::collections::VecDeque;

use busbar_bacnet::apdu::{self, Apdu};
use busbar_bacnet::segment::{Incoming, Outgoing, Received, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, e, events @ ..] = data else { return };
    let len = usize::from(u16::from_le_bytes([*a, *b])) * 4;
    let max_apdu = 50 + usize::from(*c) * 5;
    let proposed = *d % 128;
    let our_window = *e % 128;
    let sent: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    let mut tx = Outgoing::new(3, 14, sent.clone(), max_apdu, proposed);
    let mut segments: VecDeque<Vec<u8>> = tx.start().into();
    let mut acks: VecDeque<Vec<u8>> = VecDeque::new();
    let mut rx: Option<Incoming> = None;
    // Past 256 segments, sequence numbers repeat: a duplicate held back for a whole lap is
    // indistinguishable from a fresh segment (the standard relies on windows of at most 127 to
    // make that unlikely, not impossible), so the content is checked on shorter messages.
    let exact = tx.segments() < 256;
    let mut events = events.iter();
    while let Some(&event) = events.next() {
        let arg = events.next().copied().unwrap_or(0);
        let step = match event % 8 {
            0 | 1 => {
                let Some(s) = segments.pop_front() else { continue };
                assert!(s.len() <= max_apdu, "a segment of {} octets over {max_apdu}", s.len());
                let Ok(Apdu::ComplexAck {
                    segmented: true,
                    more_follows,
                    sequence,
                    window,
                    body,
                    ..
                }) = apdu::decode(&s)
                else {
                    panic!("the sender made a segment that does not decode: {s:?}");
                };
                match &mut rx {
                    None if sequence == 0 => {
                        let (r, ack) = Incoming::first(3, 14, window, our_window, body, 1 << 20, false);
                        rx = Some(r);
                        acks.push_back(ack);
                    }
                    None => {}
                    Some(r) => match r.segment(sequence, more_follows, body) {
                        Received::Ack(ack) => acks.push_back(ack),
                        Received::Nothing => {}
                        Received::Complete { ack, message } => {
                            if exact {
                                assert_eq!(message, sent, "the message put together differs from the one sent");
                            }
                            acks.push_back(ack);
                            rx = None;
                        }
                        Received::TooLong => panic!("{len} octets is under the limit"),
                    },
                }
                continue;
            }
            2 => {
                let Some(ack) = acks.pop_front() else { continue };
                let Ok(Apdu::SegmentAck {
                    sequence, window, nak, ..
                }) = apdu::decode(&ack)
                else {
                    panic!("the receiver made an acknowledgement that does not decode: {ack:?}");
                };
                tx.ack(sequence, window, nak)
            }
            3 => {
                segments.pop_front();
                continue;
            }
            4 => {
                if let Some(s) = segments.front().cloned() {
                    segments.push_back(s);
                }
                continue;
            }
            5 => {
                let at = usize::from(arg) % segments.len().max(1);
                if at < segments.len() {
                    segments.swap(0, at);
                }
                continue;
            }
            6 => tx.timeout(u32::from(arg % 4)),
            _ => tx.ack(arg, arg.rotate_left(3), arg & 1 == 1),
        };
        match step {
            Step::Send(window) => {
                assert!(!window.is_empty(), "a window to send has segments");
                segments.extend(window);
            }
            Step::Done | Step::Wait | Step::GiveUp => {}
        }
    }
});
