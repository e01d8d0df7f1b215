//! Seeded randomness: one independent, reproducible stream per device.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A device's random stream: the same seed and device index give the same numbers.
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    pub fn for_device(seed: u64, device_index: usize) -> SimRng {
        // Mix the index so that neighbouring devices get unrelated streams.
        let mixed = seed ^ (device_index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SimRng(ChaCha8Rng::seed_from_u64(mixed))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Raw 16-bit words (for the garbage fault).
    pub fn word(&mut self) -> u16 {
        self.0.random::<u16>()
    }
}

/// Mean-reverting noise (Ornstein-Uhlenbeck): wanders around 0 with standard deviation
/// `sigma` and correlation time `tau_s`, independent of the step size.
#[derive(Debug, Clone)]
pub struct Wander {
    pub value: f64,
    tau_s: f64,
    sigma: f64,
}

impl Wander {
    pub fn new(sigma: f64, tau_s: f64) -> Wander {
        Wander {
            value: 0.0,
            tau_s: tau_s.max(1e-3),
            sigma,
        }
    }

    pub fn step(&mut self, dt: f64, rng: &mut SimRng) -> f64 {
        let a = (-dt / self.tau_s).exp();
        self.value = self.value * a + self.sigma * (1.0 - a * a).sqrt() * rng.normal();
        self.value
    }
}
