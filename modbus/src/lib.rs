//! Modbus-TCP IO for Busbar: [`server`] (shared by the simulator and the bridge) and
//! [`client`].

pub mod client;
pub mod server;
