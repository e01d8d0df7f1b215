//! Parse, validate (collecting every error with file, line and path), expand blocks.

use super::schema::{ConstDoc, PointDoc, ProfileDoc};
use super::{
    Access, BlockRef, Constant, DataType, Family, Kind, Point, Profile, ProfileSet, Register, Table, WordOrder,
};
use crate::diag::Diagnostics;
use crate::severity::Severity;
use crate::units::Unit;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// Load every `*.yaml` profile of a directory. Every error of every file is reported.
pub fn load_dir(dir: &Path) -> Result<ProfileSet, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut set = ProfileSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(
                &dir.display().to_string(),
                0,
                "",
                format!("cannot read profile directory: {e}"),
            );
            return Err(diags);
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        match load_file(&path) {
            Ok(p) => {
                set.insert(p.name.clone(), Arc::new(p));
            }
            Err(d) => diags.extend(d),
        }
    }
    diags.into_result(set)
}

/// Where profiles come from: an explicit directory, else `profiles/` beside the given file's
/// directory (or its parent), else `profiles/` in the working directory, else the copies
/// compiled into the binary. Returns the set and where it came from.
pub fn resolve_profiles(explicit: Option<&Path>, near: Option<&Path>) -> Result<(ProfileSet, String), Diagnostics> {
    if let Some(dir) = explicit {
        return load_dir(dir).map(|s| (s, dir.display().to_string()));
    }
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Some(parent) = near.and_then(|s| s.parent()) {
        candidates.push(parent.join("../profiles"));
        candidates.push(parent.join("profiles"));
    }
    candidates.push(std::path::PathBuf::from("profiles"));
    for c in candidates {
        if c.is_dir() {
            return load_dir(&c).map(|s| (s, c.display().to_string()));
        }
    }
    super::embedded::profiles().map(|s| (s, "<embedded>".to_string()))
}

/// Load one profile file.
pub fn load_file(path: &Path) -> Result<Profile, Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(&file, 0, "", format!("cannot read profile: {e}"));
        d
    })?;
    let stem = path.file_stem().and_then(|s| s.to_str()).map(str::to_string);
    parse_profile(&file, &text, stem.as_deref())
}

/// Parse and validate a profile from text. `expected_name` is the file stem, which the
/// `profile:` key must equal.
pub fn parse_profile(file: &str, text: &str, expected_name: Option<&str>) -> Result<Profile, Diagnostics> {
    let doc: ProfileDoc = serde_saphyr::from_str(text).map_err(|e| Diagnostics::from_yaml_error(file, &e))?;
    let mut d = Diagnostics::default();

    let name = doc.profile.value.clone();
    if let Some(expected) = expected_name {
        if name != expected {
            d.push(
                file,
                doc.profile.referenced.line(),
                "profile",
                format!("profile `{name}` must be named like its file (`{expected}`)"),
            );
        }
    }
    let family = match Family::parse(&doc.family.value) {
        Some(f) => f,
        None => {
            let known: Vec<_> = Family::ALL.iter().map(|f| f.as_str()).collect();
            d.push(
                file,
                doc.family.referenced.line(),
                "family",
                format!("unknown family `{}` (known: {})", doc.family.value, known.join(", ")),
            );
            Family::Meter
        }
    };
    if doc.modbus.max_read_registers == 0 || doc.modbus.max_read_registers > 125 {
        d.push(file, 0, "modbus.max_read_registers", "must be within 1..=125");
    }

    let mut points: Vec<(Point, u64, String)> = Vec::new();
    for (i, sp) in doc.points.iter().enumerate() {
        let path = format!("points[{i}] ({})", sp.value.name);
        if let Some(p) = resolve_point(file, sp.referenced.line(), &path, &sp.value, None, 0, &doc, &mut d) {
            points.push((p, sp.referenced.line(), path));
        }
    }
    for (bi, block) in doc.blocks.iter().enumerate() {
        let b = &block.value;
        let bline = block.referenced.line();
        if b.count == 0 {
            d.push(
                file,
                bline,
                format!("blocks[{bi}] ({})", b.name),
                "count must be at least 1",
            );
        }
        if !is_identifier(&b.name) {
            d.push(
                file,
                bline,
                format!("blocks[{bi}]"),
                format!("block name `{}` must be lower_snake_case", b.name),
            );
        }
        let label = b.label.clone().unwrap_or_else(|| capitalise(&b.name));
        for index in 1..=b.count {
            for (pi, sp) in b.points.iter().enumerate() {
                let path = format!("blocks[{bi}] ({}).points[{pi}] ({}) #{index}", b.name, sp.value.name);
                let block_ref = BlockRef {
                    name: b.name.clone(),
                    label: label.clone(),
                    index,
                };
                let shift = u32::from(index - 1) * u32::from(b.stride);
                if let Some(p) = resolve_point(
                    file,
                    sp.referenced.line(),
                    &path,
                    &sp.value,
                    Some(block_ref),
                    shift,
                    &doc,
                    &mut d,
                ) {
                    points.push((p, sp.referenced.line(), path));
                }
            }
            // Report per-instance errors once: if the first instance failed, stop repeating.
            if !d.is_empty() && index == 1 && d.0.iter().any(|x| x.path.contains(&format!("({}).points", b.name))) {
                break;
            }
        }
    }

    // Unique ids.
    let mut index = HashMap::new();
    for (i, (p, line, path)) in points.iter().enumerate() {
        if let Some(prev) = index.insert(p.id.clone(), i) {
            let (_, pline, _) = &points[prev];
            d.push(
                file,
                *line,
                path.clone(),
                format!("duplicate point id `{}` (first at line {pline})", p.id),
            );
        }
    }
    check_overlaps(file, &points, &mut d);

    let profile = Profile {
        name,
        manufacturer: doc.manufacturer.clone(),
        model: doc.model.clone(),
        family,
        description: doc.description.trim().to_string(),
        even_alignment: doc.modbus.even_alignment,
        max_read_registers: doc.modbus.max_read_registers,
        readable_gap: doc.modbus.readable_gap,
        points: points.into_iter().map(|(p, _, _)| p).collect(),
        source: file.to_string(),
        index,
    };
    d.into_result(profile)
}

#[allow(clippy::too_many_arguments)]
fn resolve_point(
    file: &str,
    line: u64,
    path: &str,
    p: &PointDoc,
    block: Option<BlockRef>,
    shift: u32,
    doc: &ProfileDoc,
    d: &mut Diagnostics,
) -> Option<Point> {
    let mut err = |msg: String| d.push(file, line, path, msg);

    if !is_identifier(&p.name) {
        err(format!(
            "point name `{}` must be lower_snake_case (letters, digits, _)",
            p.name
        ));
    }
    let kind = Kind::parse(&p.kind).unwrap_or_else(|| {
        err(format!(
            "unknown kind `{}` (analog, counter, binary, enum, bitmask, string)",
            p.kind
        ));
        Kind::Analog
    });
    let unit = Unit::parse(&p.unit).unwrap_or_else(|| {
        err(format!(
            "unknown unit `{}` (see docs/profiles.md for the unit table)",
            p.unit
        ));
        Unit::None
    });
    let access = match p.access.as_deref() {
        None | Some("read") | Some("r") => Access::Read,
        Some("rw") | Some("read_write") => Access::ReadWrite,
        Some(other) => {
            err(format!("unknown access `{other}` (read, rw)"));
            Access::Read
        }
    };
    let table = match p.table.as_deref() {
        None => Table::Holding,
        Some(t) => Table::parse(t).unwrap_or_else(|| {
            err(format!("unknown table `{t}` (holding, input, coil, discrete)"));
            Table::Holding
        }),
    };
    let base = match p.address.resolve() {
        Ok(a) => a,
        Err(e) => {
            err(e);
            0
        }
    };
    let data_type = match (table.is_bits(), p.data_type.as_deref()) {
        (true, None) | (true, Some("bit")) => DataType::Bit(0),
        (true, Some(t)) => {
            err(format!(
                "type `{t}` is not allowed in the {} table (bits only)",
                table.as_str()
            ));
            DataType::Bit(0)
        }
        (false, t) => match parse_type(t.unwrap_or("u16"), p.bit, p.length) {
            Ok(t) => t,
            Err(e) => {
                err(e);
                DataType::U16
            }
        },
    };
    if p.bit.is_some() && !matches!(data_type, DataType::Bit(_)) {
        err("`bit` is only meaningful with `type: bit`".into());
    }
    if p.length.is_some() && !matches!(data_type, DataType::Ascii(_)) {
        err("`length` is only meaningful with `type: ascii`".into());
    }
    let order = match p.order.as_deref() {
        None => WordOrder::Abcd,
        Some(o) => WordOrder::parse(o).unwrap_or_else(|| {
            err(format!("unknown word order `{o}` (ABCD, CDAB, BADC, DCBA)"));
            WordOrder::Abcd
        }),
    };
    let scale = p.scale.unwrap_or(1.0);
    if !scale.is_finite() || scale == 0.0 {
        err("scale must be a finite, non-zero number".into());
    }
    let offset = p.offset.unwrap_or(0.0);
    let address32 = u32::from(base) + shift;
    let address = match u16::try_from(address32) {
        Ok(a) => a,
        Err(_) => {
            err(format!("address {address32} is beyond 65535"));
            0
        }
    };
    if u32::from(address) + u32::from(data_type.words()) > 65536 {
        err(format!("{} at {address} runs past register 65535", data_type.name()));
    }
    if doc.modbus.even_alignment
        && data_type.words() >= 2
        && !matches!(data_type, DataType::Ascii(_))
        && address % 2 == 1
    {
        err(format!(
            "{} at odd address {address}: this map requires 32/64-bit values at even addresses",
            data_type.name()
        ));
    }
    check_kind(kind, data_type, p, &mut err);
    let (range, constant) = range_and_constant(kind, data_type, access, p, &mut err);
    let alarm = device_alarms(kind, p, &mut err);
    if access == Access::ReadWrite && matches!(table, Table::Input | Table::Discrete) {
        err(format!(
            "the {} table is read-only: a writable point must be holding or coil",
            table.as_str()
        ));
    }
    // A point with errors is still returned (with fallbacks) so that overlaps involving it
    // are reported in the same pass; the profile as a whole is rejected anyway.
    let id = match &block {
        Some(b) => format!("{}{}.{}", b.name, b.index, p.name),
        None => p.name.clone(),
    };
    Some(Point {
        id,
        name: p.name.clone(),
        block,
        description: p.description.clone(),
        unit,
        kind,
        access,
        labels: p.labels.clone(),
        alarm,
        range,
        constant,
        register: Register {
            table,
            address,
            data_type,
            order,
            scale,
            offset,
        },
    })
}

/// The kind and the register type agree, and labels go with the kinds that have them.
fn check_kind(kind: Kind, data_type: DataType, p: &PointDoc, err: &mut dyn FnMut(String)) {
    match kind {
        Kind::Enum | Kind::Bitmask if p.labels.is_empty() => {
            err(format!("{} points need `labels`", kind.as_str()));
        }
        Kind::Bitmask => {
            let bits = i64::from(data_type.words()) * 16;
            if let Some((b, _)) = p.labels.iter().find(|(b, _)| **b < 0 || **b >= bits) {
                err(format!(
                    "bitmask label for bit {b} does not fit in {}",
                    data_type.name()
                ));
            }
        }
        Kind::String if !matches!(data_type, DataType::Ascii(_)) => {
            err("a string point needs `type: ascii` with a `length`".into());
        }
        Kind::Binary if !matches!(data_type, DataType::Bit(_) | DataType::U16 | DataType::I16) => {
            err("a binary point is a bit or a 16-bit register".into());
        }
        _ => {}
    }
    if matches!(data_type, DataType::Ascii(_)) && kind != Kind::String {
        err("`type: ascii` needs `kind: string`".into());
    }
    if !p.labels.is_empty() && !matches!(kind, Kind::Enum | Kind::Bitmask | Kind::Binary) {
        err("`labels` only apply to enum, bitmask and binary points".into());
    }
}

/// The states of an enum or binary point that are alarms in the device, with their severity;
/// each must be a state the point's labels name.
fn device_alarms(kind: Kind, p: &PointDoc, err: &mut dyn FnMut(String)) -> BTreeMap<i64, Severity> {
    let mut out = BTreeMap::new();
    if p.alarm.is_empty() {
        return out;
    }
    if !matches!(kind, Kind::Enum | Kind::Binary) {
        err("`alarm` applies to enum and binary points".into());
        return out;
    }
    for (state, severity) in &p.alarm {
        if !p.labels.is_empty() && !p.labels.contains_key(state) {
            err(format!("alarm state {state} is not one of the point's labels"));
        }
        match Severity::parse(severity) {
            Some(s) => {
                out.insert(*state, s);
            }
            None => err(format!(
                "alarm severity `{severity}` is not one of info, warning, minor, major, critical"
            )),
        }
    }
    out
}

/// The plausible range (required of an analog point that is not a constant) and the constant
/// (text for ASCII registers, a number otherwise; never writable).
fn range_and_constant(
    kind: Kind,
    data_type: DataType,
    access: Access,
    p: &PointDoc,
    err: &mut dyn FnMut(String),
) -> (Option<(f64, f64)>, Option<Constant>) {
    let range = match p.range {
        Some([lo, hi]) if lo.is_finite() && hi.is_finite() && lo <= hi => Some((lo, hi)),
        Some([lo, hi]) => {
            err(format!("range [{lo}, {hi}] must be two finite numbers, min <= max"));
            None
        }
        None if kind == Kind::Analog && p.value.is_none() => {
            err("an analog point needs a plausible `range: [min, max]`".into());
            None
        }
        None => None,
    };
    let constant = match &p.value {
        None => None,
        Some(ConstDoc::Text(t)) => {
            if let DataType::Ascii(n) = data_type {
                if t.len() > usize::from(n) * 2 || !t.is_ascii() {
                    err(format!("constant `{t}` does not fit {n} registers of ASCII"));
                }
            } else {
                err("a text constant needs `type: ascii`".into());
            }
            Some(Constant::Text(t.clone()))
        }
        Some(ConstDoc::Number(n)) => {
            if matches!(data_type, DataType::Ascii(_)) {
                err("an ascii point's constant must be text".into());
            }
            Some(Constant::Number(*n))
        }
    };
    if constant.is_some() && access == Access::ReadWrite {
        err("a constant cannot be writable".into());
    }
    (range, constant)
}

fn parse_type(t: &str, bit: Option<u8>, length: Option<u16>) -> Result<DataType, String> {
    if let Some(numeric) = DataType::parse_numeric(t) {
        return Ok(numeric);
    }
    Ok(match t {
        "ascii" | "string" => match length {
            Some(n) if n > 0 && n <= 64 => DataType::Ascii(n),
            _ => return Err("`type: ascii` needs `length` (registers, 1..=64)".into()),
        },
        "bit" => match bit {
            Some(b) if b < 16 => DataType::Bit(b),
            Some(b) => return Err(format!("bit {b} is outside a 16-bit register (0..=15)")),
            None => return Err("`type: bit` in a register needs `bit: N` (0..=15)".into()),
        },
        other => {
            return Err(format!(
                "unknown type `{other}` (u16 i16 u32 i32 u64 i64 f32 f64 ascii bit)"
            ))
        }
    })
}

fn check_overlaps(file: &str, points: &[(Point, u64, String)], d: &mut Diagnostics) {
    let mut spans: Vec<(Table, u32, u32, usize)> = points
        .iter()
        .enumerate()
        .map(|(i, (p, _, _))| {
            let s = p.register.span();
            (p.register.table, s.start, s.end, i)
        })
        .collect();
    spans.sort();
    for (k, &(table, start, end, i)) in spans.iter().enumerate() {
        for &(t2, s2, e2, j) in &spans[k + 1..] {
            if t2 != table || s2 >= end {
                break;
            }
            let (a, b) = (&points[i].0, &points[j].0);
            let both_bits_in_register = match (a.register.data_type, b.register.data_type) {
                (DataType::Bit(x), DataType::Bit(y)) if !table.is_bits() => x != y,
                _ => false,
            };
            if !both_bits_in_register {
                let (_, line, path) = &points[j];
                d.push(
                    file,
                    *line,
                    path.clone(),
                    format!(
                        "{} register {s2}..{} overlaps `{}` ({start}..{})",
                        table.as_str(),
                        e2 - 1,
                        a.id,
                        end - 1
                    ),
                );
            }
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
profile: test-meter
manufacturer: Test
model: T1
family: meter
modbus: { even_alignment: true }
points:
  - { name: v1, unit: V, kind: analog, address: 100, type: u32, scale: 0.01, range: [0, 500] }
  - { name: mode, kind: enum, address: 102, labels: { 0: manual, 16: auto } }
  - { name: flag_a, kind: binary, address: 103, type: bit, bit: 0 }
  - { name: flag_b, kind: binary, address: 103, type: bit, bit: 1 }
  - { name: ident, kind: string, address: "0x200", type: ascii, length: 2, value: SOCO }
blocks:
  - name: tank
    count: 3
    stride: 10
    points:
      - { name: volume, unit: L, kind: analog, address: 1000, type: f32, range: [0, 100000] }
"#;

    #[test]
    fn parses_and_expands_blocks() {
        let p = parse_profile("t.yaml", GOOD, Some("test-meter")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.points.len(), 8);
        let t3 = p.point("tank3.volume").map(|p| p.register.address);
        assert_eq!(t3, Some(1020));
        assert_eq!(p.point("ident").map(|p| p.register.address), Some(0x200));
        assert_eq!(p.family, Family::Meter);
    }

    #[test]
    fn reports_every_error_with_line_and_path() {
        let bad = r#"
profile: wrong-name
manufacturer: Test
model: T1
family: meter
modbus: { even_alignment: true }
points:
  - { name: v1, unit: V, kind: analog, address: 100, type: u32, range: [0, 500] }
  - { name: v2, unit: V, kind: analog, address: 101, type: u32, range: [0, 500] }
  - { name: p, unit: furlong, kind: analog, address: 300, range: [0, 1] }
  - { name: mode, kind: enum, address: 400 }
"#;
        let err = parse_profile("bad.yaml", bad, Some("test-meter"))
            .err()
            .unwrap_or_default();
        let text = err.to_string();
        assert!(
            text.contains("bad.yaml:2: profile: profile `wrong-name` must be named"),
            "{text}"
        );
        assert!(
            text.contains("bad.yaml:9: points[1] (v2): u32 at odd address 101"),
            "{text}"
        );
        assert!(
            text.contains("bad.yaml:9: points[1] (v2): holding register 101..102 overlaps `v1` (100..101)"),
            "{text}"
        );
        assert!(
            text.contains("bad.yaml:10: points[2] (p): unknown unit `furlong`"),
            "{text}"
        );
        assert!(
            text.contains("bad.yaml:11: points[3] (mode): enum points need `labels`"),
            "{text}"
        );
        assert_eq!(err.len(), 5, "{text}");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let bad = "profile: x\nmanufacturer: a\nmodel: b\nfamily: meter\npoints:\n  - { name: v1, kind: analog, address: 1, range: [0,1], colour: red }\n";
        let err = parse_profile("k.yaml", bad, None).err().unwrap_or_default();
        let text = err.to_string();
        assert!(text.contains("k.yaml:6") && text.contains("colour"), "{text}");
    }

    #[test]
    fn block_overlap_from_a_short_stride_is_caught() {
        let bad = "profile: x\nmanufacturer: a\nmodel: b\nfamily: tank_gauge\nblocks:\n  - name: tank\n    count: 2\n    stride: 1\n    points:\n      - { name: volume, unit: L, kind: analog, address: 10, type: f32, range: [0, 1] }\n";
        let err = parse_profile("s.yaml", bad, None).err().unwrap_or_default();
        assert!(err.to_string().contains("overlaps `tank1.volume`"), "{err}");
    }

    #[test]
    fn device_alarms_name_labelled_states_and_known_severities() {
        let head = "profile: x\nmanufacturer: a\nmodel: b\nfamily: breaker\npoints:\n";
        let good = format!(
            "{head}  - {{ name: state, kind: enum, address: 1, labels: {{ 0: open, 1: closed, 2: tripped }}, alarm: {{ 2: major }} }}\n"
        );
        let p = parse_profile("a.yaml", &good, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.point("state").map(|x| x.alarm.clone()),
            Some([(2, Severity::Major)].into_iter().collect())
        );
        let bad = format!(
            "{head}  - {{ name: state, kind: enum, address: 1, labels: {{ 0: open, 2: tripped }}, alarm: {{ 3: major, 2: dire }} }}\n  - {{ name: v, unit: V, kind: analog, address: 2, range: [0, 1], alarm: {{ 1: minor }} }}\n"
        );
        let text = parse_profile("a.yaml", &bad, None)
            .err()
            .unwrap_or_default()
            .to_string();
        assert!(
            text.contains("alarm state 3 is not one of the point's labels"),
            "{text}"
        );
        assert!(text.contains("alarm severity `dire`"), "{text}");
        assert!(text.contains("`alarm` applies to enum and binary points"), "{text}");
    }
}
