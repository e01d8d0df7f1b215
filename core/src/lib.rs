//! busbar-core: the facts the simulator and the bridge share.
//!
//! - [`units`]: the engineering units a point may carry (one table).
//! - [`quality`] and [`point`]: a point's value and its latest sample (quality, source time).
//! - [`profile`]: device profiles (YAML): parse, validate with file/line/path, expand blocks.
//! - [`encoding`]: engineering value <-> Modbus registers, per the profile's type/order/scale.
//! - [`image`]: a device's register image laid out from its profile.
//! - [`severity`]: alarm severity classes (profiles declare their devices' alarms with them).
//! - [`duration`]: human durations in config files (`2h30m`, `500ms`).
//! - [`diag`]: located diagnostics (`file:line: path: message`).
//!
//! Nothing here opens a socket or a file except the profile loader's `load_dir`
//! convenience, which only reads.

pub mod diag;
pub mod duration;
pub mod encoding;
pub mod image;
pub mod point;
pub mod profile;
pub mod quality;
pub mod severity;
pub mod time;
pub mod units;
