//! Segmented transactions of the server: answers too long for the client's APDU leave in
//! segments (busbar-bacnet's [`Outgoing`]) as far as the client's max segments allow, segmented
//! requests are put together ([`Incoming`]) up to our own limits, and a timer task sends lost
//! windows again and forgets silent peers. A transaction is keyed by the client and its invoke
//! id (clause 5.4); times come from the store's clock.

use super::*;
use busbar_bacnet::segment::{Incoming, Outgoing, Received, Step, COMPLEX_ACK_SEGMENT_HEADER};

/// Where an answer goes and how long it may be.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub peer: Peer,
    pub invoke_id: u8,
    /// The client's max APDU, capped by ours.
    pub max_apdu: usize,
    /// Segments the client takes in an answer (1: it takes no segmented answer).
    pub max_segments: usize,
}

impl Answer {
    /// The longest answer APDU (header included) the client can be sent.
    pub fn capacity(&self) -> usize {
        if self.max_segments <= 1 {
            return self.max_apdu;
        }
        // A ComplexACK's 3-octet header is sent once; every segment carries 5.
        self.max_segments * self.max_apdu.saturating_sub(COMPLEX_ACK_SEGMENT_HEADER) + 3
    }
}

/// One segment of a confirmed request.
pub(super) struct Segment<'a> {
    pub sequence: u8,
    pub window: u8,
    pub more_follows: bool,
    pub service: u8,
    pub data: &'a [u8],
}

struct Leaving {
    tx: Outgoing,
    deadline: Instant,
}

struct Arriving {
    rx: Incoming,
    deadline: Instant,
}

/// The segmented transactions in progress.
#[derive(Default)]
pub(super) struct SegmentTransactions {
    leaving: HashMap<(Peer, u8), Leaving>,
    arriving: HashMap<(Peer, u8), Arriving>,
}

impl SegmentTransactions {
    fn len(&self) -> usize {
        self.leaving.len() + self.arriving.len()
    }

    /// The client aborted its transaction `invoke_id`.
    pub fn forget(&mut self, peer: &Peer, invoke_id: u8) {
        let key = (peer.clone(), invoke_id);
        self.leaving.remove(&key);
        self.arriving.remove(&key);
    }
}

fn abort_of(invoke_id: u8, reason: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(3);
    apdu::abort(&mut out, invoke_id, reason);
    out
}

impl Server {
    /// Send an answer: whole, in segments, or as an Abort when the client cannot take it.
    pub(super) async fn reply(&self, to: &Answer, out: Vec<u8>) {
        if out.first().is_some_and(|b| *b >> 4 == 6) {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        }
        if out.len() <= to.max_apdu {
            self.send(to.peer.addr, &self.unicast_datagram(&to.peer, false, &out))
                .await;
            return;
        }
        let complex = out.first().is_some_and(|b| *b >> 4 == 3);
        let reason = if !complex || to.max_segments <= 1 {
            abort_reason::SEGMENTATION_NOT_SUPPORTED
        } else if out.len() > to.capacity() {
            abort_reason::APDU_TOO_LONG
        } else {
            let service = out.get(2).copied().unwrap_or(0);
            let body = out.get(3..).unwrap_or(&[]).to_vec();
            let mut tx = Outgoing::new(to.invoke_id, service, body, to.max_apdu, self.settings.apdu.window_size);
            let first = tx.start();
            let deadline = self.store.clock().now() + self.settings.apdu.segment_timeout;
            let taken = {
                let mut st = self.state();
                let key = (to.peer.clone(), to.invoke_id);
                // A repeated request replaces its own transaction, never takes a new place.
                let room =
                    st.segments.len() < self.settings.apdu.max_transactions || st.segments.leaving.contains_key(&key);
                if room {
                    st.segments.arriving.remove(&key);
                    st.segments.leaving.insert(key, Leaving { tx, deadline });
                }
                room
            };
            if taken {
                self.stats.segmented_answers.fetch_add(1, Ordering::Relaxed);
                self.send_segments(&to.peer, first).await;
                return;
            }
            tracing::warn!(
                "bacnet: {} segmented transactions in progress; answer to {} aborted",
                self.settings.apdu.max_transactions,
                to.peer.addr
            );
            abort_reason::OUT_OF_RESOURCES
        };
        self.stats.segmented_failures.fetch_add(1, Ordering::Relaxed);
        self.send(
            to.peer.addr,
            &self.unicast_datagram(&to.peer, false, &abort_of(to.invoke_id, reason)),
        )
        .await;
    }

    async fn send_segments(&self, peer: &Peer, segments: Vec<Vec<u8>>) {
        for s in segments {
            // A segment with more to follow asks for a SegmentACK (clause 6.2.2).
            let more = s.first().is_some_and(|b| b & 0x04 != 0);
            self.send(peer.addr, &self.unicast_datagram(peer, more, &s)).await;
        }
    }

    /// A segment of a request. Returns the whole request once its last segment is in.
    pub(super) async fn request_segment(&self, to: &Answer, s: Segment<'_>) -> Option<Vec<u8>> {
        let limits = &self.settings.apdu;
        let key = (to.peer.clone(), to.invoke_id);
        let now = self.store.clock().now();
        let quiet = limits.segment_timeout * 4;
        let (reply, message) = {
            let mut st = self.state();
            if s.sequence == 0 {
                if !s.more_follows {
                    // One segment is the whole request.
                    let mut ack = Vec::new();
                    apdu::segment_ack(&mut ack, to.invoke_id, 0, s.window.max(1), false, true);
                    (Some(ack), Some(s.data.to_vec()))
                } else if st.segments.len() >= limits.max_transactions && !st.segments.arriving.contains_key(&key) {
                    (Some(abort_of(to.invoke_id, abort_reason::OUT_OF_RESOURCES)), None)
                } else {
                    let limit = limits.max_segments * limits.max_length;
                    let (rx, ack) = Incoming::first(
                        to.invoke_id,
                        s.service,
                        s.window,
                        limits.window_size,
                        s.data,
                        limit,
                        true,
                    );
                    st.segments.leaving.remove(&key);
                    st.segments.arriving.insert(
                        key,
                        Arriving {
                            rx,
                            deadline: now + quiet,
                        },
                    );
                    (Some(ack), None)
                }
            } else {
                match st.segments.arriving.get_mut(&key) {
                    // A segment of nothing we are receiving.
                    None => (
                        Some(abort_of(to.invoke_id, abort_reason::INVALID_APDU_IN_THIS_STATE)),
                        None,
                    ),
                    Some(a) => {
                        a.deadline = now + quiet;
                        match a.rx.segment(s.sequence, s.more_follows, s.data) {
                            Received::Ack(ack) => (Some(ack), None),
                            Received::Nothing => (None, None),
                            Received::Complete { ack, message } => {
                                st.segments.arriving.remove(&key);
                                (Some(ack), Some(message))
                            }
                            Received::TooLong => {
                                st.segments.arriving.remove(&key);
                                (Some(abort_of(to.invoke_id, abort_reason::BUFFER_OVERFLOW)), None)
                            }
                        }
                    }
                }
            }
        };
        if let Some(r) = reply {
            if r.first().is_some_and(|b| *b >> 4 == 7) {
                self.stats.segmented_failures.fetch_add(1, Ordering::Relaxed);
            }
            self.send(to.peer.addr, &self.unicast_datagram(&to.peer, false, &r))
                .await;
        }
        if message.is_some() {
            self.stats.segmented_requests.fetch_add(1, Ordering::Relaxed);
        }
        message
    }

    /// The client acknowledged segments of an answer.
    pub(super) async fn answer_segment_ack(&self, peer: &Peer, invoke_id: u8, sequence: u8, window: u8, nak: bool) {
        let key = (peer.clone(), invoke_id);
        let now = self.store.clock().now();
        let send = {
            let mut st = self.state();
            let Some(l) = st.segments.leaving.get_mut(&key) else {
                return;
            };
            match l.tx.ack(sequence, window, nak) {
                Step::Send(s) => {
                    l.deadline = now + self.settings.apdu.segment_timeout;
                    s
                }
                Step::Wait => {
                    l.deadline = now + self.settings.apdu.segment_timeout;
                    return;
                }
                Step::Done | Step::GiveUp => {
                    st.segments.leaving.remove(&key);
                    return;
                }
            }
        };
        self.send_segments(peer, send).await;
    }

    /// Every 100 ms: windows whose acknowledgement is late go again (up to the retries), and
    /// transactions whose peer fell silent are forgotten.
    /// Ten times a second, for every device of the bridge in one task: windows sent again,
    /// transactions given up.
    pub(super) async fn segment_timers(devices: Vec<Arc<Server>>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for d in &devices {
                let resend = d.expire_segments();
                for (peer, segments) in resend {
                    d.send_segments(&peer, segments).await;
                }
            }
        }
    }

    /// The windows to send again now; drops what timed out for good.
    fn expire_segments(&self) -> Vec<(Peer, Vec<Vec<u8>>)> {
        let now = self.store.clock().now();
        let limits = &self.settings.apdu;
        let mut resend = Vec::new();
        let mut failed = 0u64;
        let mut retried = 0u64;
        {
            let mut st = self.state();
            st.segments.leaving.retain(|(peer, invoke), l| {
                if l.deadline > now {
                    return true;
                }
                match l.tx.timeout(limits.retries) {
                    Step::Send(s) => {
                        retried += 1;
                        l.deadline = now + limits.segment_timeout;
                        resend.push((peer.clone(), s));
                        true
                    }
                    _ => {
                        failed += 1;
                        tracing::warn!(
                            "bacnet: segmented answer to {} (invoke id {invoke}, {} segments) never acknowledged",
                            peer.addr,
                            l.tx.segments()
                        );
                        false
                    }
                }
            });
            st.segments.arriving.retain(|(peer, invoke), a| {
                let keep = a.deadline > now;
                if !keep {
                    failed += 1;
                    tracing::warn!(
                        "bacnet: segmented request from {} (invoke id {invoke}, service {}) stopped arriving",
                        peer.addr,
                        a.rx.service()
                    );
                }
                keep
            });
        }
        self.stats.segment_retries.fetch_add(retried, Ordering::Relaxed);
        self.stats.segmented_failures.fetch_add(failed, Ordering::Relaxed);
        resend
    }
}

/// How many segments an answer of `len` octets takes at `max_apdu`.
#[cfg(test)]
fn segments_of(len: usize, max_apdu: usize) -> usize {
    busbar_bacnet::segment::segment_count(len.saturating_sub(3), max_apdu - COMPLEX_ACK_SEGMENT_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(max_apdu: usize, max_segments: usize) -> Answer {
        Answer {
            peer: Peer {
                addr: SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 47808),
                route: None,
            },
            invoke_id: 1,
            max_apdu,
            max_segments,
        }
    }

    #[test]
    fn capacity_is_what_the_segments_carry() {
        assert_eq!(answer(480, 1).capacity(), 480);
        let a = answer(480, 16);
        assert_eq!(segments_of(a.capacity(), 480), 16);
        assert_eq!(segments_of(a.capacity() + 1, 480), 17);
    }
}
