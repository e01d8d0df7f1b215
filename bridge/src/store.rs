//! The point store: the latest sample of every point (value, quality, source time), device
//! statuses, and change notifications.
//!
//! Samples sit in one `RwLock<Vec<_>>` (never held across an `.await`); a device's poll updates
//! all its points under one write lock. Changes go out on a bounded `broadcast` channel carrying
//! only point indexes: a subscriber that falls behind gets [`Notice::Resync`] and re-reads the
//! snapshot it needs, and acquisition never waits for anyone.

use crate::clock::Clock;
use crate::config::Config;
use busbar_core::profile::{Kind, Profile};
use busbar_core::quality::Quality;
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast;

/// Index of a point in the store.
pub type PointIdx = u32;

pub use busbar_core::point::{PointValue, Sample};

/// What the store knows of a point besides its sample.
#[derive(Debug, Clone)]
pub struct PointMeta {
    /// `device/point`, e.g. `tanks/tank3.volume`: the id every protocol and export uses.
    pub id: String,
    pub device: usize,
    /// Index into the device profile's points.
    pub profile_point: usize,
    pub writable: bool,
    /// The config acquires it (block points beyond the configured count are not).
    pub acquired: bool,
    /// A constant of the device (identification): read rarely, never stale.
    pub constant: bool,
}

/// Communication status of a device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceStatus {
    pub online: bool,
    #[serde(skip)]
    pub last_good_read: Option<SystemTime>,
    pub consecutive_failures: u32,
    /// Round-trip time of the last good request.
    #[serde(skip)]
    pub rtt: Option<Duration>,
    pub polls: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// Round-trip histogram: counts per bucket of [`RTT_BUCKETS_MS`], plus the sum in seconds.
    #[serde(skip)]
    pub rtt_counts: [u64; RTT_BUCKETS_MS.len()],
    #[serde(skip)]
    pub rtt_sum_s: f64,
    #[serde(skip)]
    pub rtt_total: u64,
    /// Poll start lateness against schedule (sum and max, seconds).
    #[serde(skip)]
    pub jitter_sum_s: f64,
    #[serde(skip)]
    pub jitter_max_s: f64,
}

/// Upper bounds (ms) of the round-trip histogram buckets.
pub const RTT_BUCKETS_MS: [f64; 8] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0];

impl DeviceStatus {
    pub fn record_rtt(&mut self, rtt: Duration) {
        let ms = rtt.as_secs_f64() * 1000.0;
        for (i, b) in RTT_BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.rtt_counts[i] += 1;
            }
        }
        self.rtt_sum_s += rtt.as_secs_f64();
        self.rtt_total += 1;
        self.rtt = Some(rtt);
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// This point's sample changed (value or quality).
    Changed(PointIdx),
    /// Notices were lost: re-read every point of interest.
    Resync,
    /// The store is gone (shutdown).
    Closed,
}

/// A change subscription.
pub struct Subscription {
    rx: broadcast::Receiver<PointIdx>,
}

impl Subscription {
    pub async fn next(&mut self) -> Notice {
        match self.rx.recv().await {
            Ok(p) => Notice::Changed(p),
            Err(broadcast::error::RecvError::Lagged(_)) => Notice::Resync,
            Err(broadcast::error::RecvError::Closed) => Notice::Closed,
        }
    }
}

/// One result of a poll, for [`Store::update`].
#[derive(Debug, Clone)]
pub enum Reading {
    /// Decoded value and its quality (good, out of range, decode error).
    Value(PointValue, Quality),
    /// No value this time (comm failure, exception): keep the last value, set the quality.
    Failed(Quality),
}

/// The store.
pub struct Store {
    pub site_name: String,
    pub site_id: String,
    pub started: SystemTime,
    meta: Vec<PointMeta>,
    by_id: HashMap<String, PointIdx>,
    /// Points of device d are `device_points[d]`.
    device_points: Vec<Range<PointIdx>>,
    profiles: Vec<Arc<Profile>>,
    device_names: Vec<String>,
    samples: RwLock<Vec<Sample>>,
    status: Vec<Mutex<DeviceStatus>>,
    changes: broadcast::Sender<PointIdx>,
    /// What "now" is for staleness.
    clock: Arc<dyn Clock>,
}

impl Store {
    /// A store with every point of every profile of the config (acquired or not, so that point
    /// indexes and northbound layouts do not depend on block counts), on the system clock.
    pub fn new(config: &Config, queue: usize) -> Arc<Store> {
        Store::with_clock(config, queue, crate::clock::system())
    }

    /// The same on `clock` (tests move a [`crate::clock::ManualClock`]).
    pub fn with_clock(config: &Config, queue: usize, clock: Arc<dyn Clock>) -> Arc<Store> {
        let mut meta = Vec::new();
        let mut device_points = Vec::new();
        for (d, dev) in config.devices.iter().enumerate() {
            let start = meta.len() as PointIdx;
            for (k, p) in dev.profile.points.iter().enumerate() {
                let writable =
                    config.writes_enabled && p.is_writable() && dev.settings.get(&k).is_some_and(|s| s.writable);
                meta.push(PointMeta {
                    id: format!("{}/{}", dev.name, p.id),
                    device: d,
                    profile_point: k,
                    writable,
                    acquired: dev.acquired.contains(&k),
                    constant: p.constant.is_some(),
                });
            }
            device_points.push(start..meta.len() as PointIdx);
        }
        let by_id = meta
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i as PointIdx))
            .collect();
        let (changes, _) = broadcast::channel(queue.max(16));
        Arc::new(Store {
            site_name: config.site_name.clone(),
            site_id: config.site_id.clone(),
            started: clock.wall(),
            clock,
            samples: RwLock::new(vec![Sample::default(); meta.len()]),
            status: config
                .devices
                .iter()
                .map(|_| Mutex::new(DeviceStatus::default()))
                .collect(),
            profiles: config.devices.iter().map(|d| d.profile.clone()).collect(),
            device_names: config.devices.iter().map(|d| d.name.clone()).collect(),
            meta,
            by_id,
            device_points,
            changes,
        })
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    pub fn meta(&self, p: PointIdx) -> Option<&PointMeta> {
        self.meta.get(p as usize)
    }

    pub fn find(&self, id: &str) -> Option<PointIdx> {
        self.by_id.get(id).copied()
    }

    pub fn device_count(&self) -> usize {
        self.device_points.len()
    }

    pub fn device_name(&self, d: usize) -> &str {
        self.device_names.get(d).map_or("", String::as_str)
    }

    pub fn device_index(&self, name: &str) -> Option<usize> {
        self.device_names.iter().position(|n| n == name)
    }

    pub fn device_profile(&self, d: usize) -> Option<&Arc<Profile>> {
        self.profiles.get(d)
    }

    /// The point index of profile point `k` of device `d`.
    pub fn point_of(&self, d: usize, k: usize) -> Option<PointIdx> {
        let r = self.device_points.get(d)?;
        let p = r.start + k as PointIdx;
        (p < r.end).then_some(p)
    }

    pub fn device_points(&self, d: usize) -> Range<PointIdx> {
        self.device_points.get(d).cloned().unwrap_or(0..0)
    }

    /// Read access to every sample at once (hold it briefly).
    pub fn samples(&self) -> RwLockReadGuard<'_, Vec<Sample>> {
        self.samples.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn sample(&self, p: PointIdx) -> Option<Sample> {
        self.samples().get(p as usize).cloned()
    }

    pub fn status(&self, d: usize) -> Option<MutexGuard<'_, DeviceStatus>> {
        self.status.get(d).map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The clock this store's times come from (servers' timers use it too).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.changes.subscribe(),
        }
    }

    /// Apply readings of device points (by profile point index) taken at `time`.
    pub fn update(&self, readings: &[(PointIdx, Reading)], time: SystemTime) {
        let now = self.clock.now();
        let mut changed = Vec::new();
        {
            let mut samples = self.samples.write().unwrap_or_else(|p| p.into_inner());
            for (p, r) in readings {
                let Some(s) = samples.get_mut(*p as usize) else {
                    continue;
                };
                let before = (s.value.clone(), s.quality);
                match r {
                    Reading::Value(v, q) => {
                        s.value = Some(v.clone());
                        s.quality = *q;
                        s.source_time = Some(time);
                        if q.is_good() {
                            s.last_good = Some(now);
                        }
                    }
                    Reading::Failed(q) => {
                        // Keep the last value; a point never read stays NoValue-but-failed.
                        s.quality = *q;
                    }
                }
                if (s.value.as_ref(), s.quality) != (before.0.as_ref(), before.1) {
                    changed.push(*p);
                }
            }
        }
        for p in changed {
            // No receiver is fine; a full queue drops the oldest for laggards.
            let _ = self.changes.send(p);
        }
    }

    /// Turn good points older than `after` into stale, per device (`after[d]`).
    pub fn mark_stale(&self, after: &[Duration]) {
        let now = self.clock.now();
        let mut changed = Vec::new();
        {
            let mut samples = self.samples.write().unwrap_or_else(|p| p.into_inner());
            for (d, range) in self.device_points.iter().enumerate() {
                let Some(limit) = after.get(d) else { continue };
                for p in range.clone() {
                    if self.meta[p as usize].constant {
                        continue;
                    }
                    let s = &mut samples[p as usize];
                    if s.quality == Quality::Good && s.last_good.is_some_and(|t| now.duration_since(t) > *limit) {
                        s.quality = Quality::Stale;
                        changed.push(p);
                    }
                }
            }
        }
        for p in changed {
            let _ = self.changes.send(p);
        }
    }

    /// The label of an enum value or the text of a point, for display.
    pub fn display_value(&self, p: PointIdx, v: &PointValue) -> Option<String> {
        let m = self.meta(p)?;
        let point = self.profiles.get(m.device)?.points.get(m.profile_point)?;
        match (point.kind, v) {
            (Kind::Enum | Kind::Binary, PointValue::Number(n)) => point.labels.get(&(n.round() as i64)).cloned(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busbar_core::profile::embedded;

    fn store(queue: usize) -> Arc<Store> {
        store_on(queue, crate::clock::system())
    }

    fn store_on(queue: usize, clock: Arc<dyn Clock>) -> Arc<Store> {
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\ndevices:\n  - { name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1 }\n";
        let config = crate::config::parse_config("t.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
        Store::with_clock(&config, queue, clock)
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_resync_and_never_blocks_updates() {
        let s = store(16);
        let mut fast = s.subscribe();
        let mut slow = s.subscribe();
        let p = s.find("m/v1").unwrap_or(0);
        // 100 changes into a queue of 16, with nobody reading: update never waits.
        for i in 0..100 {
            s.update(
                &[(
                    p,
                    Reading::Value(PointValue::Number(230.0 + f64::from(i)), Quality::Good),
                )],
                SystemTime::now(),
            );
        }
        assert_eq!(
            slow.next().await,
            Notice::Resync,
            "the slow subscriber is told to resynchronise"
        );
        // After a resync, it reads the latest value from the snapshot.
        assert_eq!(s.sample(p).and_then(|x| x.value), Some(PointValue::Number(329.0)));
        assert_eq!(fast.next().await, Notice::Resync);
        // Once caught up, it gets individual changes again.
        let mut fresh = s.subscribe();
        s.update(&[(p, Reading::Failed(Quality::CommFailure))], SystemTime::now());
        assert_eq!(fresh.next().await, Notice::Changed(p));
        // A failed reading keeps the last value with the new quality; no change = no notice.
        assert_eq!(
            s.sample(p).map(|x| (x.value, x.quality)),
            Some((Some(PointValue::Number(329.0)), Quality::CommFailure))
        );
        s.update(&[(p, Reading::Failed(Quality::CommFailure))], SystemTime::now());
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), fresh.next())
            .await
            .is_err());
    }

    #[test]
    fn good_values_turn_stale_but_constants_do_not() {
        let clock = crate::clock::ManualClock::new();
        let s = store_on(16, clock.clone());
        let v1 = s.find("m/v1").unwrap_or(0);
        let ident = s.find("m/ident").unwrap_or(0);
        s.update(
            &[
                (v1, Reading::Value(PointValue::Number(230.0), Quality::Good)),
                (ident, Reading::Value(PointValue::Text("SOCO".into()), Quality::Good)),
            ],
            clock.wall(),
        );
        let limit = [Duration::from_millis(10)];
        // At the limit, still good; one millisecond past it, stale.
        clock.advance(Duration::from_millis(10));
        s.mark_stale(&limit);
        assert_eq!(s.sample(v1).map(|x| x.quality), Some(Quality::Good));
        clock.advance(Duration::from_millis(20));
        s.mark_stale(&limit);
        assert_eq!(s.sample(v1).map(|x| x.quality), Some(Quality::Stale));
        assert_eq!(s.sample(ident).map(|x| x.quality), Some(Quality::Good));
    }
}
