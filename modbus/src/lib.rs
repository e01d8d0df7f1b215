//! Modbus for Busbar: the [`codec`] (MBAP framing and PDU, bytes in and bytes out, no IO), the
//! TCP [`server`] skeleton (shared by the simulator and the bridge), the TCP [`client`], and
//! [`rtu`] framing with a serial-line master, and the read [`plan`] of a profile (the bridge
//! polls it, `busbar-sim record` records it).

pub mod client;
pub mod codec;
pub mod plan;
pub mod rtu;
pub mod server;
