//! Northbound servers: each serves the point store in its protocol, reads from the store and
//! sends writes through [`crate::acquisition::Acquisition`]. Each lives in its own folder and
//! implements [`crate::component::Component`] (its `servers.<name>` section, its start, its
//! metrics). Quality is mapped to each protocol in exactly one place, in that protocol's folder.
//!
//! To add a server: a folder beside these, and one line in the list below.

pub mod bacnet;
pub mod http;
pub mod modbus;
pub mod opcua;
pub mod snmp;

crate::sections! {
    /// The northbound servers of the `servers:` section, each when configured and enabled.
    ServersDoc => Servers, "servers" {
        modbus: modbus::Modbus,
        opcua: opcua::OpcUa,
        bacnet: bacnet::Bacnet,
        snmp: snmp::Snmp,
        http: http::Http,
    }
}
