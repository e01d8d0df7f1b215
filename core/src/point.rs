//! Point values and samples: what the bridge stores and every protocol serves.

use crate::quality::Quality;
use serde::Serialize;
use std::time::SystemTime;

/// A point's value in engineering units.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Float(f64),
    Int(i64),
    Bool(bool),
    Text(String),
}

impl Value {
    /// The value as a number when it has one (booleans are 0/1).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Text(_) => None,
        }
    }
}

/// The latest reading of a point.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub value: Value,
    pub quality: Quality,
    /// When the device was read (the acquisition time, not the time it was served).
    pub source_time: SystemTime,
}
