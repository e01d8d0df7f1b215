//! Modbus IO for Busbar: the TCP [`server`] skeleton (shared by the simulator and the bridge),
//! the TCP [`client`], and [`rtu`] framing with a serial-line master.

pub mod client;
pub mod rtu;
pub mod server;
