//! What the system under test did to the simulated devices, on the simulated clock: every read
//! request (a poll, answered or not) and every write with the point, the value and whether the
//! device took it. Recorded only when a scenario is run as a test (`busbar-sim test`), for its
//! expectations (`polled`, `wrote`, `never_wrote`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The simulated time, readable without the site's lock (the Modbus front end reads it for
/// every request it records).
#[derive(Debug, Default)]
pub struct SimClock(AtomicU64);

impl SimClock {
    pub fn set(&self, sim_s: f64) {
        self.0.store(sim_s.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// What a read request asked for: the function code and the first address. A poll cycle
/// reads each of its blocks once, so the same block read again is the next cycle.
pub type Block = (u8, u16);

/// A write of one point, as the device decoded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub at_s: f64,
    pub device: usize,
    pub point: String,
    pub value: f64,
    /// The device took it (a refused write is still a write the SUT made).
    pub accepted: bool,
}

#[derive(Debug, Default)]
struct Log {
    /// Per device, its read requests: (simulated time, block read), ascending in time.
    reads: Vec<Vec<(f64, Block)>>,
    writes: Vec<Write>,
}

/// The record of a test run.
#[derive(Debug)]
pub struct Activity {
    pub clock: Arc<SimClock>,
    log: Mutex<Log>,
}

impl Activity {
    pub fn new(devices: usize, clock: Arc<SimClock>) -> Activity {
        Activity {
            clock,
            log: Mutex::new(Log {
                reads: vec![Vec::new(); devices],
                writes: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read request for device `d` now.
    pub fn read(&self, d: usize, block: Block) {
        let now = self.clock.get();
        if let Some(r) = self.lock().reads.get_mut(d) {
            r.push((now, block));
        }
    }

    pub fn write(&self, w: Write) {
        self.lock().writes.push(w);
    }

    /// The read requests of device `d` within `[from, to]`.
    pub fn reads(&self, d: usize, from: f64, to: f64) -> Vec<(f64, Block)> {
        self.lock()
            .reads
            .get(d)
            .map(|r| r.iter().copied().filter(|(t, _)| *t >= from && *t <= to).collect())
            .unwrap_or_default()
    }

    /// The writes within `[from, to]`, in order.
    pub fn writes(&self, from: f64, to: f64) -> Vec<Write> {
        self.lock()
            .writes
            .iter()
            .filter(|w| w.at_s >= from && w.at_s <= to)
            .cloned()
            .collect()
    }
}
