//! The northbound Modbus-TCP server (`servers.modbus`): SCADAs read the whole site from one
//! endpoint, one unit id per device. [`map`] lays the registers out, [`handler`] answers from
//! the store (and owns the quality mapping for Modbus); the accept loop, limits and counters
//! are busbar-modbus's server skeleton; [`section`] is its configuration and start.

pub mod handler;
pub mod map;
pub mod section;

pub use section::{Modbus, ModbusSettings};
