//! busbar, the bridge: acquires field devices over Modbus and serves one point model
//! northbound. The binary (`src/main.rs`) is a thin CLI around this library, so end-to-end tests
//! and benchmarks run it in-process.

pub mod acquisition;
pub mod app;
pub mod bench;
pub mod config;
pub mod config_env;
pub mod demo;
pub mod grafana;
pub mod history;
pub mod http;
pub mod northbound;
pub mod store;
