//! Modbus for Busbar: the [`codec`] (MBAP framing and PDU, bytes in and bytes out, no IO), the
//! TCP [`server`] skeleton (shared by the simulator and the bridge), the TCP [`client`], and
//! [`rtu`] framing with a serial-line master.

pub mod client;
pub mod codec;
pub mod rtu;
pub mod server;
