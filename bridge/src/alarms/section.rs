//! `alarms:`: the journal, retention, the flapping limit, device, communication and point
//! quality alarms, and threshold and rate-of-change rules by point, device or family. Validated without IO against the devices'
//! profiles: an unknown device, family or point, limits out of order, a rule on a text point,
//! an unknown severity are errors located at the rule's line.

use super::condition::{LevelSeverities, Limits};
use super::model::Severity;
use crate::config::Device;
use busbar_core::diag::Diagnostics;
use busbar_core::profile::{Family, Kind};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::PathBuf;
use std::time::Duration;

/// `alarms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    /// The SQLite journal (relative to the configuration file).
    #[serde(default = "d_journal")]
    journal: String,
    /// Transitions older than this are pruned (each alarm's last one is kept).
    #[serde(default = "d_retention")]
    retention_days: u32,
    /// The alarms the devices report themselves, as their profiles declare them.
    #[serde(default = "crate::component::on")]
    device_alarms: bool,
    #[serde(default)]
    communication: CommunicationDoc,
    /// One alarm per device whose points are stale or out of their range while it answers.
    #[serde(default)]
    quality: QualityDoc,
    #[serde(default)]
    flapping: FlappingDoc,
    #[serde(default)]
    rules: Vec<Spanned<RuleDoc>>,
    /// E-mail to recipients filtered by severity, device and kind (docs/alarms.md).
    #[serde(default)]
    email: Option<super::email::EmailDoc>,
    /// JSON, text or Telegram POSTs (docs/alarms.md).
    #[serde(default)]
    webhooks: Vec<super::webhook::WebhookDoc>,
}

fn d_journal() -> String {
    "alarms.db".into()
}
fn d_retention() -> u32 {
    365
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommunicationDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    #[serde(default = "d_major")]
    severity: String,
    /// A device must stay silent this long before its alarm is raised.
    #[serde(default = "d_comm_delay")]
    delay_s: f64,
}

impl Default for CommunicationDoc {
    fn default() -> Self {
        CommunicationDoc {
            enabled: true,
            severity: d_major(),
            delay_s: d_comm_delay(),
        }
    }
}

fn d_major() -> String {
    "major".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QualityDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    #[serde(default = "d_minor")]
    severity: String,
    /// A point must stay stale or out of range this long before the device's alarm is raised.
    #[serde(default = "d_quality_delay")]
    delay_s: f64,
}

impl Default for QualityDoc {
    fn default() -> Self {
        QualityDoc {
            enabled: true,
            severity: d_minor(),
            delay_s: d_quality_delay(),
        }
    }
}

fn d_minor() -> String {
    "minor".into()
}
fn d_quality_delay() -> f64 {
    60.0
}
fn d_comm_delay() -> f64 {
    10.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlappingDoc {
    /// Raises of one alarm announced within `window_s`; more are held back and counted.
    #[serde(default = "d_max_raises")]
    max_raises: usize,
    #[serde(default = "d_window")]
    window_s: f64,
}

impl Default for FlappingDoc {
    fn default() -> Self {
        FlappingDoc {
            max_raises: d_max_raises(),
            window_s: d_window(),
        }
    }
}

fn d_max_raises() -> usize {
    5
}
fn d_window() -> f64 {
    600.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: String,
    /// Point ids within each device (`v1`, `tank3.water`); `*` stands for a block number
    /// (`tank*.water`).
    points: Vec<String>,
    /// The devices it applies to (default: every device, or every device of `family`).
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    high_high: Option<f64>,
    #[serde(default)]
    high: Option<f64>,
    #[serde(default)]
    low: Option<f64>,
    #[serde(default)]
    low_low: Option<f64>,
    /// How far a value must come back past a limit before its level is left.
    #[serde(default)]
    deadband: f64,
    /// A value moving faster than this (units per second, either way) is an alarm.
    #[serde(default)]
    rate_of_change: Option<f64>,
    /// The window the rate is measured across.
    #[serde(default = "d_rate_window")]
    rate_window_s: f64,
    #[serde(default)]
    on_delay_s: f64,
    #[serde(default)]
    off_delay_s: f64,
    /// One severity for every level, or one per level (`{ high: minor, high_high: major }`).
    #[serde(default)]
    severity: Option<SeverityDoc>,
    /// Stays active until acknowledged, even when the value is back to normal.
    #[serde(default)]
    latching: bool,
    /// `{device} {point} {description} {value} {unit} {limit} {level}`.
    #[serde(default)]
    message: Option<String>,
    /// The only recipients (e-mail recipients and webhooks, by `name`) its alarms go to;
    /// default: every recipient whose filters admit them.
    #[serde(default)]
    notify: Vec<String>,
}

fn d_rate_window() -> f64 {
    60.0
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SeverityDoc {
    One(String),
    PerLevel(std::collections::BTreeMap<String, String>),
}

/// A threshold rule on one point of one device.
#[derive(Debug, Clone)]
pub struct ThresholdRule {
    pub rule: String,
    pub device: usize,
    /// Index of the point in the device's profile.
    pub point: usize,
    pub limits: Limits,
    /// Rate limit (units per second) and the window it is measured across.
    pub rate: Option<(f64, Duration)>,
    pub severities: LevelSeverities,
    pub on_delay: Duration,
    pub off_delay: Duration,
    pub latching: bool,
    pub message: Option<String>,
}

/// Alarm settings.
#[derive(Debug, Clone)]
pub struct AlarmSettings {
    pub journal: PathBuf,
    pub retention: Duration,
    pub device_alarms: bool,
    /// Severity and delay of a device's communication alarm, when on.
    pub communication: Option<(Severity, Duration)>,
    /// Severity and delay of a device's point quality alarm, when on.
    pub quality: Option<(Severity, Duration)>,
    pub flap_max: usize,
    pub flap_window: Duration,
    pub thresholds: Vec<ThresholdRule>,
    /// Rule -> the names of the only recipients its alarms go to.
    pub routes: std::collections::HashMap<String, Vec<String>>,
    pub email: Option<super::email::EmailSettings>,
    pub webhooks: Vec<super::webhook::WebhookSettings>,
}

/// Where the section is, and what it is checked against.
pub struct SectionAt<'a> {
    pub file: &'a str,
    pub line: u64,
    pub base_dir: &'a std::path::Path,
    pub devices: &'a [Device],
}

fn seconds(v: f64) -> Option<Duration> {
    (v.is_finite() && (0.0..=86_400.0 * 365.0).contains(&v)).then(|| Duration::from_secs_f64(v))
}

/// Whether point id `id` matches `pattern` (`*` = one block number).
fn matches(pattern: &str, id: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == id,
        Some((pre, post)) => id
            .strip_prefix(pre)
            .and_then(|rest| rest.strip_suffix(post))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// A severity class by name, or an error at `alarms<key>`.
fn severity_named(d: &mut Diagnostics, file: &str, line: u64, key: &str, text: &str) -> Option<Severity> {
    Severity::parse(text).or_else(|| {
        d.push(
            file,
            line,
            format!("alarms{key}"),
            format!("severity `{text}` is not one of info, warning, minor, major, critical"),
        );
        None
    })
}

/// A rule's severity per level: one name for all, or one per level (defaults for the others).
fn rule_severities(
    d: &mut Diagnostics,
    file: &str,
    line: u64,
    key: &str,
    severity: Option<&SeverityDoc>,
) -> LevelSeverities {
    let mut severities = LevelSeverities::default();
    match severity {
        None => {}
        Some(SeverityDoc::One(s)) => {
            if let Some(s) = severity_named(d, file, line, &format!("{key}.severity"), s) {
                severities = LevelSeverities {
                    high_high: s,
                    high: s,
                    low: s,
                    low_low: s,
                    rate_of_change: s,
                };
            }
        }
        Some(SeverityDoc::PerLevel(map)) => {
            for (level, s) in map {
                let Some(s) = severity_named(d, file, line, &format!("{key}.severity.{level}"), s) else {
                    continue;
                };
                match level.as_str() {
                    "high_high" => severities.high_high = s,
                    "high" => severities.high = s,
                    "low" => severities.low = s,
                    "low_low" => severities.low_low = s,
                    "rate_of_change" => severities.rate_of_change = s,
                    other => d.push(
                        file,
                        line,
                        format!("alarms{key}.severity"),
                        format!("severity for `{other}`: levels are high_high, high, low, low_low, rate_of_change"),
                    ),
                }
            }
        }
    }
    severities
}

impl AlarmSettings {
    /// Every notification target: e-mail recipients and webhooks.
    pub fn notification_targets(&self) -> Vec<super::notify::Target> {
        let mut out = Vec::new();
        if let Some(e) = &self.email {
            out.extend(e.clone().targets());
        }
        out.extend(self.webhooks.iter().map(|w| w.target()));
        let routes = std::sync::Arc::new(self.routes.clone());
        for t in &mut out {
            t.audience.routes = routes.clone();
        }
        out
    }
}

impl AlarmsDoc {
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn resolve(&self, at: &SectionAt<'_>, d: &mut Diagnostics) -> Option<AlarmSettings> {
        let err = |d: &mut Diagnostics, line: u64, key: String, msg: String| {
            d.push(at.file, line, format!("alarms{key}"), msg)
        };
        let severity =
            |d: &mut Diagnostics, line: u64, key: &str, text: &str| severity_named(d, at.file, line, key, text);
        let communication = if self.communication.enabled {
            let s = severity(d, at.line, ".communication.severity", &self.communication.severity);
            let delay = seconds(self.communication.delay_s);
            if delay.is_none() {
                err(
                    d,
                    at.line,
                    ".communication.delay_s".into(),
                    "must be a number of seconds >= 0".into(),
                );
            }
            s.zip(delay)
        } else {
            None
        };
        let quality = if self.quality.enabled {
            let s = severity(d, at.line, ".quality.severity", &self.quality.severity);
            let delay = seconds(self.quality.delay_s);
            if delay.is_none() {
                err(
                    d,
                    at.line,
                    ".quality.delay_s".into(),
                    "must be a number of seconds >= 0".into(),
                );
            }
            s.zip(delay)
        } else {
            None
        };
        let flap_window = seconds(self.flapping.window_s).unwrap_or_else(|| {
            err(
                d,
                at.line,
                ".flapping.window_s".into(),
                "must be a number of seconds >= 0".into(),
            );
            Duration::from_secs(600)
        });
        let mut names: Vec<&str> = self.email.iter().flat_map(|e| e.names()).collect();
        names.extend(self.webhooks.iter().filter_map(|w| w.name()));
        names.sort_unstable();
        for pair in names.windows(2) {
            if pair[0] == pair[1] {
                err(
                    d,
                    at.line,
                    String::new(),
                    format!(
                        "recipient name `{}` is given twice (e-mail recipients and webhooks share names)",
                        pair[0]
                    ),
                );
            }
        }
        let mut routes = std::collections::HashMap::new();
        let mut thresholds = Vec::new();
        for (i, sr) in self.rules.iter().enumerate() {
            let r = &sr.value;
            let line = sr.referenced.line();
            let key = format!(".rules[{i}] ({})", r.name);
            let e = |d: &mut Diagnostics, msg: String| err(d, line, key.clone(), msg);
            if r.name.is_empty() || r.name.contains('/') {
                e(d, "a rule needs a name without `/`".into());
            }
            let limits = Limits {
                high_high: r.high_high,
                high: r.high,
                low: r.low,
                low_low: r.low_low,
                deadband: r.deadband,
            };
            for p in limits.problems() {
                e(d, p);
            }
            let rate = match r.rate_of_change {
                None => None,
                Some(limit) => {
                    let window = seconds(r.rate_window_s).filter(|w| !w.is_zero());
                    if !(limit.is_finite() && limit > 0.0) {
                        e(d, "rate_of_change must be a number of units per second > 0".into());
                    }
                    if window.is_none() {
                        e(d, "rate_window_s must be a number of seconds > 0".into());
                    }
                    window.map(|w| (limit, w))
                }
            };
            if !limits.any() && r.rate_of_change.is_none() {
                e(
                    d,
                    "a threshold rule needs at least one of low_low, low, high, high_high, rate_of_change".into(),
                );
            }
            let (Some(on_delay), Some(off_delay)) = (seconds(r.on_delay_s), seconds(r.off_delay_s)) else {
                e(d, "on_delay_s and off_delay_s must be numbers of seconds >= 0".into());
                continue;
            };
            for n in &r.notify {
                if names.binary_search(&n.as_str()).is_err() {
                    e(
                        d,
                        format!("unknown recipient `{n}` (name e-mail recipients and webhooks with `name:`)"),
                    );
                }
            }
            if !r.notify.is_empty() {
                routes.insert(r.name.clone(), r.notify.clone());
            }
            let severities = rule_severities(d, at.file, line, &key, r.severity.as_ref());
            let family = match &r.family {
                None => None,
                Some(f) => match Family::parse(f) {
                    Some(f) => Some(f),
                    None => {
                        e(d, format!("unknown family `{f}`"));
                        continue;
                    }
                },
            };
            for name in &r.devices {
                if !at.devices.iter().any(|dv| &dv.name == name) {
                    e(d, format!("unknown device `{name}`"));
                }
            }
            let mut matched = vec![false; r.points.len()];
            for (di, dev) in at.devices.iter().enumerate() {
                if !r.devices.is_empty() && !r.devices.contains(&dev.name) {
                    continue;
                }
                if family.is_some_and(|f| f != dev.profile.family) {
                    continue;
                }
                for &k in &dev.acquired {
                    let p = &dev.profile.points[k];
                    let Some(which) = r.points.iter().position(|pat| matches(pat, &p.id)) else {
                        continue;
                    };
                    matched[which] = true;
                    if matches!(p.kind, Kind::String) {
                        e(
                            d,
                            format!("`{}/{}` is a text point: a threshold needs a number", dev.name, p.id),
                        );
                        continue;
                    }
                    thresholds.push(ThresholdRule {
                        rule: r.name.clone(),
                        device: di,
                        point: k,
                        limits: limits.clone(),
                        rate,
                        severities,
                        on_delay,
                        off_delay,
                        latching: r.latching,
                        message: r.message.clone(),
                    });
                }
            }
            for (pat, hit) in r.points.iter().zip(matched) {
                if !hit {
                    e(d, format!("no device it applies to has an acquired point `{pat}`"));
                }
            }
        }
        let names: Vec<String> = at.devices.iter().map(|dv| dv.name.clone()).collect();
        let email = match self.email.as_ref().map(|e| e.resolve(&names)) {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(wrong)) => {
                for (key, message) in wrong {
                    err(d, at.line, format!(".email.{key}"), message);
                }
                None
            }
        };
        let mut webhooks = Vec::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let mut wrong = Vec::new();
            match w.resolve(&format!("webhooks[{i}]"), &names, &mut wrong) {
                Some(w) => webhooks.push(w),
                None => {
                    for (key, message) in wrong {
                        err(d, at.line, format!(".{key}"), message);
                    }
                }
            }
        }
        Some(AlarmSettings {
            email,
            webhooks,
            journal: at.base_dir.join(&self.journal),
            retention: Duration::from_secs(u64::from(self.retention_days.max(1)) * 86_400),
            device_alarms: self.device_alarms,
            communication,
            quality,
            flap_max: self.flapping.max_raises.max(1),
            flap_window,
            thresholds,
            routes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn a_star_stands_for_a_block_number() {
        assert!(matches("v1", "v1"));
        assert!(!matches("v1", "v12"));
        assert!(matches("tank*.water", "tank3.water"));
        assert!(matches("tank*.water", "tank12.water"));
        assert!(!matches("tank*.water", "tank.water"));
        assert!(!matches("tank*.water", "tankx.water"));
        assert!(!matches("tank*.water", "tank3.water_alarm"));
    }
}
