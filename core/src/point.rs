//! A point's value and its latest sample: what the bridge's store holds and every protocol and
//! sink serves. One sample type for the whole project.

use crate::quality::Quality;
use serde::Serialize;
use std::time::{Instant, SystemTime};

/// A point's value in engineering units (enumerations and booleans are numbers; labels and
/// identification strings are text).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PointValue {
    Number(f64),
    Text(String),
}

impl PointValue {
    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PointValue::Number(n) => Some(*n),
            PointValue::Text(_) => None,
        }
    }
}

/// The latest sample of a point. A bad-quality sample keeps the last value it had.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub value: Option<PointValue>,
    pub quality: Quality,
    /// When the device was read (the acquisition time, not the time it was served).
    pub source_time: Option<SystemTime>,
    /// When the value was last read good (for staleness), on the bridge's clock.
    pub last_good: Option<Instant>,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            value: None,
            quality: Quality::NoValue,
            source_time: None,
            last_good: None,
        }
    }
}
