//! Scenario parameters: a scenario declares `parameters:` (a name, a default, what it is for) and
//! uses them anywhere as `${name}`; `--param name=value` overrides a default. Substitution is
//! textual and happens before the YAML is read, so a parameter can stand for a number, an
//! address or a whole flow mapping (a probe of the system under test). Values are one line, so
//! every later error keeps the line of the file. A value may name other parameters (a probe's
//! default built on `${busbar_http}`). Full-line comments are left alone.

use busbar_core::diag::Diagnostics;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// One declared parameter and the value a run uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub value: String,
    pub description: String,
    /// True when the value came from `--param`, not from the default.
    pub overridden: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParameterDoc {
    #[serde(default)]
    default: Option<serde_json::Value>,
    #[serde(default)]
    description: String,
}

/// Only the `parameters` section; everything else is read later, after substitution.
#[derive(Debug, Deserialize)]
struct ParametersOnly {
    #[serde(default)]
    parameters: BTreeMap<String, Spanned<ParameterDoc>>,
}

/// A `${name}` reference: its byte range in the line and the name, `None` for a `${` that is
/// never closed (its range is the `${` alone).
fn references(line: &str) -> Vec<(usize, usize, Option<&str>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = line[from..].find("${").map(|i| i + from) {
        match line[start + 2..].find('}') {
            Some(len) => {
                let end = start + 2 + len + 1;
                out.push((start, end, Some(&line[start + 2..end - 1])));
                from = end;
            }
            None => {
                out.push((start, start + 2, None));
                from = start + 2;
            }
        }
    }
    out
}

/// Stand-ins for `${` and `}` while only `parameters` is read: printable for YAML, inert in a
/// flow mapping, and turned back into a reference in a default.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Replace every reference with `f(line, name)` outside full-line comments.
fn substitute(text: &str, mut f: impl FnMut(usize, Option<&str>) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_comment(line) {
            out.push_str(line);
            continue;
        }
        let mut at = 0;
        for (start, end, name) in references(line) {
            out.push_str(&line[at..start]);
            out.push_str(&f(i + 1, name));
            at = end;
        }
        out.push_str(&line[at..]);
    }
    out
}

fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.replace(OPEN, "${").replace(CLOSE, "}")),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value of `name` with its references to other parameters replaced.
fn resolve(name: &str, raw: &BTreeMap<String, String>, stack: &mut Vec<String>) -> Result<String, String> {
    if stack.iter().any(|n| n == name) {
        stack.push(name.to_string());
        return Err(format!(
            "parameters refer to each other in a loop: {}",
            stack.join(" -> ")
        ));
    }
    let Some(value) = raw.get(name) else {
        return Err(format!("`${{{name}}}` names no parameter"));
    };
    stack.push(name.to_string());
    let mut out = String::new();
    let mut at = 0;
    for (start, end, inner) in references(value) {
        out.push_str(&value[at..start]);
        match inner {
            Some(inner) if valid_name(inner) => out.push_str(&resolve(inner, raw, stack)?),
            _ => return Err(format!("the value of `{name}` has a `${{` that is not `${{name}}`")),
        }
        at = end;
    }
    out.push_str(&value[at..]);
    stack.pop();
    Ok(out)
}

/// Parse `name=value` as given to `--param`.
pub fn parse_override(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--param `{text}`: write NAME=VALUE"))?;
    let name = name.trim();
    if !valid_name(name) {
        return Err(format!(
            "--param `{text}`: `{name}` is not a parameter name (letters, digits, _)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Resolve the scenario's parameters with the overrides and substitute them into the text.
/// Errors: an undeclared or malformed reference (with its line), a parameter without a default
/// and no override, an override of a parameter the scenario does not declare, a value that
/// spans lines, references that loop.
pub fn apply(file: &str, text: &str, overrides: &[(String, String)]) -> Result<(String, Vec<Parameter>), Diagnostics> {
    // Stand-ins keep the YAML readable (a reference inside `{ ... }` would not be) while only
    // `parameters` is read.
    let placeholder = substitute(text, |_, name| match name {
        Some(n) => format!("{OPEN}{n}{CLOSE}"),
        None => OPEN.to_string(),
    });
    let doc: ParametersOnly =
        serde_saphyr::from_str(&placeholder).map_err(|e| Diagnostics::from_yaml_error(file, &e))?;
    let mut d = Diagnostics::default();
    let mut params = Vec::new();
    for (name, p) in &doc.parameters {
        let line = p.referenced.line();
        let path = format!("parameters.{name}");
        if !valid_name(name) {
            d.push(file, line, &path, "a parameter name is letters, digits and `_`");
        }
        let given = overrides.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let default = match p.value.default.as_ref() {
            None => None,
            Some(v) => match scalar_text(v) {
                Some(t) => Some(t),
                None => {
                    d.push(
                        file,
                        line,
                        &path,
                        "`default` is one line of text or a number (write a mapping as `\"{ ... }\"`)",
                    );
                    None
                }
            },
        };
        let overridden = given.is_some();
        let value = match given.or(default) {
            Some(v) => v,
            None => {
                d.push(
                    file,
                    line,
                    &path,
                    format!("`{name}` has no default: give it with --param {name}=VALUE"),
                );
                continue;
            }
        };
        if value.contains('\n') || value.contains('\r') {
            d.push(
                file,
                line,
                &path,
                format!("the value of `{name}` spans lines; give one line"),
            );
        }
        params.push(Parameter {
            name: name.clone(),
            value,
            description: p.value.description.clone(),
            overridden,
        });
    }
    // A value may name other parameters (`${busbar_http}/api/points/...`): resolve them, in
    // any order, refusing cycles.
    let raw: BTreeMap<String, String> = params.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
    for p in &mut params {
        let line = doc.parameters.get(&p.name).map_or(0, |s| s.referenced.line());
        match resolve(&p.name, &raw, &mut Vec::new()) {
            Ok(v) => p.value = v,
            Err(e) => d.push(file, line, format!("parameters.{}", p.name), e),
        }
    }
    for (name, _) in overrides {
        if !doc.parameters.contains_key(name) {
            let known: Vec<&str> = doc.parameters.keys().map(String::as_str).collect();
            d.push(
                file,
                0,
                "parameters",
                format!(
                    "--param {name}: the scenario declares no such parameter (it has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }
    let out = substitute(text, |line, name| {
        let Some(name) = name else {
            d.push(file, line as u64, "", "`${` is not closed: write `${name}`");
            return String::new();
        };
        if let Some(p) = params.iter().find(|p| p.name == name) {
            return p.value.clone();
        }
        if !doc.parameters.contains_key(name) {
            let msg = if valid_name(name) {
                format!("`${{{name}}}` names no parameter; declare it under `parameters:`")
            } else {
                format!("`${{{name}}}` is not a parameter reference (write `${{name}}`)")
            };
            d.push(file, line as u64, "", msg);
        }
        String::new()
    });
    d.into_result((out, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "parameters:\n  host: { default: 127.0.0.1, description: the SUT }\n  probe: { default: \"{ modbus: { address: 1 } }\" }\n  limit: { default: 80 }\n  url: { default: \"http://${host}:8080\" }\n# a comment about ${anything}\nx: { a: ${host}, b: ${limit} }\np: ${probe}\n";

    #[test]
    fn defaults_and_overrides_are_substituted_keeping_lines() {
        let (out, params) = apply("s.yaml", TEXT, &[]).unwrap_or_else(|d| panic!("{d}"));
        assert!(out.contains("x: { a: 127.0.0.1, b: 80 }\n"), "{out}");
        assert!(out.contains("p: { modbus: { address: 1 } }\n"), "{out}");
        assert!(out.contains("# a comment about ${anything}"), "{out}");
        assert_eq!(out.lines().count(), TEXT.lines().count());
        assert_eq!(params.len(), 4);
        assert!(params
            .iter()
            .any(|p| p.name == "url" && p.value == "http://127.0.0.1:8080"));
        assert!(params.iter().all(|p| !p.overridden));
        let (out, params) = apply("s.yaml", TEXT, &[("limit".into(), "63".into())]).unwrap_or_else(|d| panic!("{d}"));
        assert!(out.contains("b: 63 }"), "{out}");
        assert!(params
            .iter()
            .any(|p| p.name == "limit" && p.overridden && p.value == "63"));
        let (_, params) =
            apply("s.yaml", TEXT, &[("host".into(), "10.0.0.9".into())]).unwrap_or_else(|d| panic!("{d}"));
        assert!(params
            .iter()
            .any(|p| p.name == "url" && p.value == "http://10.0.0.9:8080"));
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let text = "parameters:\n  needed: { description: no default }\n  two: { default: \"a\" }\nx: ${nope}\ny: ${bad name}\nz: ${unclosed\n";
        let looped = "parameters:\n  a: { default: \"${b}\" }\n  b: { default: \"x${a}\" }\n";
        let d = apply("l.yaml", looped, &[]).err().unwrap_or_default().to_string();
        assert!(d.contains("l.yaml:2") && d.contains("a -> b -> a"), "{d}");
        let d = apply(
            "s.yaml",
            text,
            &[("other".into(), "1".into()), ("two".into(), "a\nb".into())],
        )
        .err()
        .unwrap_or_default();
        let all = d.to_string();
        assert!(
            all.contains("s.yaml:2") && all.contains("--param needed=VALUE"),
            "{all}"
        );
        assert!(all.contains("s.yaml:3") && all.contains("spans lines"), "{all}");
        assert!(
            all.contains("s.yaml:4") && all.contains("`${nope}` names no parameter"),
            "{all}"
        );
        assert!(
            all.contains("s.yaml:5") && all.contains("not a parameter reference"),
            "{all}"
        );
        assert!(all.contains("s.yaml:6: `${` is not closed"), "{all}");
        assert!(
            all.contains("--param other: the scenario declares no such parameter (it has: needed, two)"),
            "{all}"
        );
        assert_eq!(d.len(), 6, "{all}");
    }

    #[test]
    fn overrides_parse() {
        assert_eq!(parse_override("a_1=x=y"), Ok(("a_1".into(), "x=y".into())));
        assert!(parse_override("novalue").is_err());
        assert!(parse_override("1a=2").is_err());
    }
}
