//! Alarm severity classes, named as operators know them, each with a number 1..1000 for the
//! protocols. Profiles declare the severity of a device's abnormal states with these names.

use serde::Serialize;

/// Severity classes, each with a number 1..1000 for the protocols (OPC UA severity, SNMP,
/// BACnet event priority derive from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ];

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    /// 1..1000, OPC UA's scale (Part 9: 801-1000 high, 601-800 medium high, ...).
    pub fn number(self) -> u16 {
        match self {
            Severity::Info => 100,
            Severity::Warning => 300,
            Severity::Minor => 500,
            Severity::Major => 700,
            Severity::Critical => 900,
        }
    }
}
