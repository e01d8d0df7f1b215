//! busbar-sim: the device-twin simulator as a library (the binary is a thin CLI around it), so
//! tests and benchmarks run sites in-process.

pub mod activity;
pub mod events;
pub mod models;
pub mod params;
pub mod qa;
pub mod rng;
pub mod scenario;
pub mod site;
pub mod trace;

/// `HH:MM:SS` of simulated time of day, with the day number after the first.
pub fn clock_text(sim_s: f64, start_hour: f64) -> String {
    let total = (start_hour * 3600.0 + sim_s).max(0.0) as u64;
    let day = total / 86400;
    let s = total % 86400;
    let hms = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if day > 0 {
        format!("day {} {hms}", day + 1)
    } else {
        hms
    }
}
pub mod control;
pub mod gateway;
pub mod load;
pub mod record;
pub mod rtu_line;
pub mod runner;
pub mod shutdown;
