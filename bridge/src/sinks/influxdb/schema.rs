//! The history schema (docs/influxdb.md): one measurement per device family, tags `site`,
//! `device`, `profile` (and the block, e.g. `tank=3`, for repeated blocks), one field per
//! point, timestamps from the device read (ms). A point whose quality is not good is not
//! written as a value: a string field `<point>_quality` says why. Device communication goes to
//! the `device_status` measurement. This module is the one place for that layout.

use crate::alarms::Transition;
use crate::store::{PointIdx, PointValue, Sample, Store};
use busbar_core::quality::Quality;
use busbar_core::units::Unit;
use influxdb_line_protocol::LineProtocolBuilder;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Measurement of device communication status.
pub const DEVICE_STATUS: &str = "device_status";

/// Measurement of alarm transitions (one line per transition, as journaled).
pub const ALARM: &str = "alarm";

/// One field of a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Float(f64),
    Text(String),
    Bool(bool),
    Int(i64),
}

/// The key of a line: which device (and block instance) at which time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LineKey {
    time_ms: u64,
    device: usize,
    block: Option<(String, u16)>,
}

fn ms(t: SystemTime) -> u64 {
    busbar_core::time::unix_ms(t)
}

/// Append one line; returns false (and writes nothing) without fields.
pub fn write_line(
    out: &mut Vec<u8>,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(String, Field)],
    time_ms: u64,
) -> bool {
    let Some(((k0, v0), rest)) = fields.split_first() else {
        return false;
    };
    let mut b = LineProtocolBuilder::new_with(std::mem::take(out)).measurement(measurement);
    for (k, v) in tags {
        if !v.is_empty() {
            b = b.tag(k, v);
        }
    }
    let mut b = match v0 {
        Field::Float(x) => b.field(k0, *x),
        Field::Text(t) => b.field(k0, t.as_str()),
        Field::Bool(x) => b.field(k0, *x),
        Field::Int(x) => b.field(k0, *x),
    };
    for (k, v) in rest {
        b = match v {
            Field::Float(x) => b.field(k, *x),
            Field::Text(t) => b.field(k, t.as_str()),
            Field::Bool(x) => b.field(k, *x),
            Field::Int(x) => b.field(k, *x),
        };
    }
    *out = b.timestamp(time_ms as i64).close_line().build();
    true
}

/// Lines for the samples of `points` (changed points); returns how many lines were written.
pub fn point_lines(store: &Store, points: &[PointIdx], out: &mut Vec<u8>) -> u64 {
    let samples = store.samples();
    let mut lines: BTreeMap<LineKey, Vec<(String, Field)>> = BTreeMap::new();
    for &p in points {
        let (Some(meta), Some(sample)) = (store.meta(p), samples.get(p as usize)) else {
            continue;
        };
        let Some(point) = store
            .device_profile(meta.device)
            .and_then(|pr| pr.points.get(meta.profile_point))
        else {
            continue;
        };
        let Some(time) = sample.source_time else { continue };
        let block = point.block.as_ref().map(|b| (b.name.clone(), b.index));
        let key = LineKey {
            time_ms: ms(time),
            device: meta.device,
            block,
        };
        lines
            .entry(key)
            .or_default()
            .push(field_of(&point.name, point.unit, sample));
    }
    drop(samples);
    let site = store.site_id.clone();
    let mut n = 0;
    for (key, fields) in lines {
        let (Some(profile), name) = (store.device_profile(key.device), store.device_name(key.device)) else {
            continue;
        };
        let index;
        let mut tags: Vec<(&str, &str)> = vec![("site", &site), ("device", name), ("profile", &profile.name)];
        if let Some((block, i)) = &key.block {
            index = i.to_string();
            tags.push((block.as_str(), index.as_str()));
        }
        if write_line(out, profile.family.as_str(), &tags, &fields, key.time_ms) {
            n += 1;
        }
    }
    n
}

/// The unit a value of `unit` is stored in: one per quantity, so that one field of one family
/// means the same in every profile (a meter giving Wh and one giving kWh both store kWh).
/// Units of no listed quantity (%, Hz, PF, degC, counts, ...) are stored as they are.
pub fn stored_unit(unit: Unit) -> Unit {
    const STORED: &[Unit] = &[
        Unit::Volt,
        Unit::Ampere,
        Unit::Watt,
        Unit::Var,
        Unit::VoltAmpere,
        Unit::KilowattHour,
        Unit::KilovarHour,
        Unit::Kiloohm,
        Unit::Litre,
        Unit::LitrePerMinute,
        Unit::Millimetre,
        Unit::Second,
    ];
    STORED
        .iter()
        .copied()
        .find(|s| unit.convert(1.0, *s).is_some())
        .unwrap_or(unit)
}

/// The field of a sample: its value (in its [`stored_unit`]) when good or stale, else its quality.
fn field_of(name: &str, unit: Unit, sample: &Sample) -> (String, Field) {
    match (&sample.value, sample.quality) {
        (Some(PointValue::Number(v)), Quality::Good | Quality::Stale) if v.is_finite() => {
            let stored = unit.convert(*v, stored_unit(unit)).unwrap_or(*v);
            (name.to_string(), Field::Float(stored))
        }
        (Some(PointValue::Text(t)), Quality::Good | Quality::Stale) => (name.to_string(), Field::Text(t.clone())),
        (_, q) => (format!("{name}_quality"), Field::Text(q.as_str().to_string())),
    }
}

/// A `device_status` line for device `d`.
pub fn status_line(store: &Store, d: usize, time: SystemTime, out: &mut Vec<u8>) -> u64 {
    let Some(st) = store.status(d).map(|s| s.clone()) else {
        return 0;
    };
    let Some(profile) = store.device_profile(d) else {
        return 0;
    };
    let tags = [
        ("site", store.site_id.as_str()),
        ("device", store.device_name(d)),
        ("profile", profile.name.as_str()),
    ];
    let fields = vec![
        ("online".to_string(), Field::Bool(st.online)),
        ("failures".to_string(), Field::Int(st.failures as i64)),
        (
            "consecutive_failures".to_string(),
            Field::Int(i64::from(st.consecutive_failures)),
        ),
    ];
    u64::from(write_line(out, DEVICE_STATUS, &tags, &fields, ms(time)))
}

/// The line of an alarm transition: tags `site`, `device`, `alarm` (its id), `source`,
/// `severity`, `kind`; fields `message`, `active`, `acknowledged`, `seq`, and `level`, `value`,
/// `user`, `via`, `comment` when they have one; the transition's time.
pub fn alarm_line(site: &str, t: &Transition, out: &mut Vec<u8>) -> u64 {
    let tags = [
        ("site", site),
        ("device", t.device.as_str()),
        ("alarm", t.alarm.as_str()),
        ("source", t.source.as_str()),
        ("severity", t.severity.as_str()),
        ("kind", t.kind.as_str()),
    ];
    let mut fields = vec![
        ("message".to_string(), Field::Text(t.message.clone())),
        ("active".to_string(), Field::Bool(t.state.active)),
        ("acknowledged".to_string(), Field::Bool(t.state.acknowledged)),
        ("seq".to_string(), Field::Int(t.seq)),
    ];
    if let Some(l) = t.level {
        fields.push(("level".into(), Field::Text(l.as_str().into())));
    }
    if let Some(v) = t.value.filter(|v| v.is_finite()) {
        fields.push(("value".into(), Field::Float(v)));
    }
    for (k, v) in [
        ("user", &t.actor.user),
        ("via", &t.actor.via),
        ("comment", &t.actor.comment),
    ] {
        if !v.is_empty() {
            fields.push((k.into(), Field::Text(v.clone())));
        }
    }
    u64::from(write_line(out, ALARM, &tags, &fields, ms(t.time)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reading;
    use busbar_core::profile::embedded;

    #[test]
    fn lines_follow_the_schema_and_escape_what_they_must() {
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text =
            "site: { name: S, id: 'site one' }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\ndevices:\n  \
                    - { name: tanks, profile: fafnir-visy-tanks, connection: gw, unit_id: 1 }\n";
        let config = crate::config::parse_config("t.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let vol = store.find("tanks/tank2.volume").unwrap_or(0);
        let temp = store.find("tanks/tank2.temperature").unwrap_or(0);
        let water = store.find("tanks/tank3.water_level").unwrap_or(0);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_314_495_123);
        store.update(
            &[
                (vol, Reading::Value(PointValue::Number(21000.5), Quality::Good)),
                (temp, Reading::Value(PointValue::Number(11.25), Quality::Good)),
                (water, Reading::Value(PointValue::Number(9.0), Quality::OutOfRange)),
            ],
            t,
        );
        let mut out = Vec::new();
        let n = point_lines(&store, &[vol, temp, water], &mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(n, 2, "{text}");
        assert_eq!(
            text,
            "tank_gauge,site=site\\ one,device=tanks,profile=fafnir-visy-tanks,tank=2 volume=21000.5,temperature=11.25 1795314495123\n\
             tank_gauge,site=site\\ one,device=tanks,profile=fafnir-visy-tanks,tank=3 water_level_quality=\"out_of_range\" 1795314495123\n"
        );
    }

    #[test]
    fn one_stored_unit_per_quantity() {
        assert_eq!(stored_unit(Unit::WattHour), Unit::KilowattHour);
        assert_eq!(stored_unit(Unit::MegawattHour), Unit::KilowattHour);
        assert_eq!(stored_unit(Unit::Kilowatt), Unit::Watt);
        assert_eq!(stored_unit(Unit::Milliampere), Unit::Ampere);
        assert_eq!(stored_unit(Unit::Hour), Unit::Second);
        assert_eq!(stored_unit(Unit::Megaohm), Unit::Kiloohm);
        assert_eq!(stored_unit(Unit::LitrePerHour), Unit::LitrePerMinute);
        assert_eq!(stored_unit(Unit::Percent), Unit::Percent);
        assert_eq!(stored_unit(Unit::None), Unit::None);
        let s = Sample {
            value: Some(PointValue::Number(1500.0)),
            quality: Quality::Good,
            ..Sample::default()
        };
        assert_eq!(
            field_of("ea_import", Unit::WattHour, &s),
            ("ea_import".to_string(), Field::Float(1.5))
        );
    }

    #[test]
    fn an_alarm_transition_is_one_line_with_its_tags() {
        use crate::alarms::{Actor, AlarmState, Kind, Level, Severity, Source, Transition};
        let t = Transition {
            seq: 7,
            alarm: "threshold/water/tanks/tank3.water_level".into(),
            kind: Kind::Acknowledged,
            time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123),
            source: Source::Threshold,
            severity: Severity::Major,
            level: Some(Level::High),
            device: "tanks".into(),
            point: "tank3.water_level".into(),
            value: Some(62.0),
            message: "tanks tank3.water_level: water 62 mm above 60 mm".into(),
            actor: Actor {
                user: "ann".into(),
                via: "http".into(),
                comment: String::new(),
            },
            state: AlarmState {
                active: true,
                acknowledged: true,
                shelved_until_ms: None,
                disabled: false,
            },
        };
        let mut out = Vec::new();
        assert_eq!(alarm_line("station-nord", &t, &mut out), 1);
        let line = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            line,
            "alarm,site=station-nord,device=tanks,alarm=threshold/water/tanks/tank3.water_level,source=threshold,\
             severity=major,kind=acknowledged message=\"tanks tank3.water_level: water 62 mm above 60 mm\",\
             active=true,acknowledged=true,seq=7i,level=\"high\",value=62,user=\"ann\",via=\"http\" 1795000000123\n"
        );
    }
}
