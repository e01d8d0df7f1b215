//! What an alarm is: its identity, severity, the states users know from ISA-18.2 and OPC UA
//! Alarms & Conditions (active, acknowledged, shelved, out of service), and the transitions
//! that move it, each with its time, the value that caused it and who did it over what.

pub use busbar_core::severity::Severity;
use serde::Serialize;
use std::time::SystemTime;

/// Which side of its limits a measured value is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    LowLow,
    Low,
    High,
    HighHigh,
    /// A value that moves faster than its rule allows.
    RateOfChange,
    /// A device state the profile calls abnormal, a device that stopped answering, a point
    /// stale or out of range.
    Abnormal,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::LowLow => "low_low",
            Level::Low => "low",
            Level::High => "high",
            Level::HighHigh => "high_high",
            Level::RateOfChange => "rate_of_change",
            Level::Abnormal => "abnormal",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        [
            Level::LowLow,
            Level::Low,
            Level::High,
            Level::HighHigh,
            Level::RateOfChange,
            Level::Abnormal,
        ]
        .into_iter()
        .find(|l| l.as_str() == text)
    }
}

/// Where an alarm comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A threshold rule of the configuration.
    Threshold,
    /// A state the device itself reports as abnormal (declared in its profile).
    Device,
    /// The device stopped answering.
    Communication,
    /// A point's value is stale or out of its range while its device answers.
    Quality,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Threshold,
        Source::Device,
        Source::Communication,
        Source::Quality,
    ];

    pub fn parse(text: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Threshold => "threshold",
            Source::Device => "device",
            Source::Communication => "communication",
            Source::Quality => "quality",
        }
    }
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The condition became active (or changed level while active).
    Raised,
    /// The condition is normal again.
    Cleared,
    Acknowledged,
    Shelved,
    Unshelved,
    /// Taken out of service: not evaluated until enabled.
    Disabled,
    Enabled,
    /// Raises held back by the flapping limit, counted in `value`.
    Suppressed,
    /// An operator's comment (in the actor's `comment`), the state unchanged.
    Commented,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Raised,
        Kind::Cleared,
        Kind::Acknowledged,
        Kind::Shelved,
        Kind::Unshelved,
        Kind::Disabled,
        Kind::Enabled,
        Kind::Suppressed,
        Kind::Commented,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Raised => "raised",
            Kind::Cleared => "cleared",
            Kind::Acknowledged => "acknowledged",
            Kind::Shelved => "shelved",
            Kind::Unshelved => "unshelved",
            Kind::Disabled => "disabled",
            Kind::Enabled => "enabled",
            Kind::Suppressed => "suppressed",
            Kind::Commented => "commented",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Who asked for an operator action, and over which protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub user: String,
    /// `http`, `snmp`, `opcua`, `bacnet`, or `engine` for what the engine does itself.
    pub via: String,
    pub comment: String,
}

impl Actor {
    pub fn engine() -> Actor {
        Actor {
            user: String::new(),
            via: "engine".into(),
            comment: String::new(),
        }
    }
}

/// One transition, as journaled and announced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// Journal sequence number: unique, increasing, the order of commits.
    pub seq: i64,
    pub alarm: String,
    pub kind: Kind,
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub source: Source,
    pub severity: Severity,
    pub level: Option<Level>,
    pub device: String,
    pub point: String,
    /// The value that caused it (for `suppressed`: how many raises were held back).
    pub value: Option<f64>,
    pub message: String,
    pub actor: Actor,
    /// The state after this transition.
    pub state: AlarmState,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&busbar_core::time::rfc3339(*t))
}

/// An alarm's state, readable at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct AlarmState {
    /// The condition is active (for a latching alarm: was active and is not acknowledged yet).
    pub active: bool,
    pub acknowledged: bool,
    /// Shelved until this time (Unix ms).
    pub shelved_until_ms: Option<i64>,
    /// Out of service.
    pub disabled: bool,
}

impl AlarmState {
    /// Normal and acknowledged: nothing to show.
    pub fn is_quiet(&self) -> bool {
        !self.active && self.acknowledged
    }

    /// Listed for operators: active, unacknowledged, shelved or out of service.
    pub fn needs_attention(&self) -> bool {
        !self.is_quiet() || self.shelved_until_ms.is_some() || self.disabled
    }
}
