//! busbar-bridge, the bridge's runtime: configuration, acquisition, the point store, the
//! northbound servers and the sinks. It knows no simulator: the `busbar` binary composes it
//! (and, for `busbar demo` only, the simulator), and tests and benchmarks run it in-process.
//! docs/ARCHITECTURE.md draws the whole.

pub mod acquisition;
pub mod alarms;
pub mod app;
pub mod clock;
pub mod component;
pub mod config;
pub mod demo;
pub mod dlm;
pub mod grafana;
pub mod metrics;
pub mod northbound;
pub mod sinks;
pub mod store;
