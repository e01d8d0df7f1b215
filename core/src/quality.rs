//! Quality of a sample. Each northbound protocol maps this enum in exactly one place.

use serde::Serialize;

/// How far a sample can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read from the device in time, decoded, within its plausible range.
    Good,
    /// The last good value, older than the configured number of poll intervals.
    Stale,
    /// No value was ever read (start-up).
    NoValue,
    /// The device did not answer, or answered with an exception.
    CommFailure,
    /// Decoded, but outside the point's plausible range: not published as good.
    OutOfRange,
    /// The registers could not be decoded (bad ASCII, NaN, unknown enum value).
    DecodeError,
    /// The configuration or the profile does not allow a value here.
    ConfigError,
}

impl Quality {
    pub fn is_good(self) -> bool {
        self == Quality::Good
    }

    /// A stable lower-case name used in APIs and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Stale => "stale",
            Quality::NoValue => "no_value",
            Quality::CommFailure => "comm_failure",
            Quality::OutOfRange => "out_of_range",
            Quality::DecodeError => "decode_error",
            Quality::ConfigError => "config_error",
        }
    }
}
