//! busbar-sim: the device-twin simulator as a library (the binary is a thin CLI around it), so
//! tests and benchmarks run sites in-process.

pub mod events;
pub mod models;
pub mod rng;
