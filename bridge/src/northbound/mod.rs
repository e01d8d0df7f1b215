//! Northbound servers: each serves the point store in its protocol, reads from the store and
//! sends writes through [`crate::acquisition::Acquisition`]. Quality is mapped to each protocol
//! in exactly one place, in that protocol's module.

pub mod bacnet;
pub mod bacnet_ede;
pub mod bacnet_objects;
pub mod bacnet_units;
pub mod modbus;
pub mod modbus_map;
pub mod opcua;
pub mod opcua_history;
pub mod opcua_space;
pub mod snmp;
pub mod snmp_mib;
