//! A socket-free BACnet/IP codec (ASHRAE 135): the BACnet Virtual Link Layer of Annex J
//! ([`bvll`]), the network layer header ([`npdu`]), the application layer header ([`apdu`]), the
//! tag encoding ([`tag`]), application values ([`value`]) and the services a server device
//! answers and sends ([`service`]), segmentation ([`segment`]), alarms and events ([`event`]) and device management
//! ([`management`]).
//!
//! Decoders take untrusted bytes and return errors, never panic; what an error becomes on the
//! wire (Reject, Abort, silence) is decided by the caller through [`tag::DecodeError::reject_reason`].

pub mod apdu;
pub mod bvll;
pub mod consts;
pub mod event;
pub mod management;
pub mod npdu;
pub mod request;
pub mod segment;
pub mod service;
pub mod tag;
pub mod value;

pub use value::{BitString, ObjectId, Value};
