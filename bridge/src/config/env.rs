//! Environment references in a configuration file, expanded before it is parsed:
//! `${NAME}` (an error when NAME is not set) and `${NAME:-default}` (the default when NAME is
//! unset or empty); `$$` is a literal `$`. Lines that are comments (`#` first) are left alone.
//! Values are inserted as text, as in Docker Compose: quote the reference when the value may
//! hold YAML syntax. A value with a line break is refused, so that line numbers stay true.

use busbar_core::diag::Diagnostics;

/// Expand the references in `text` with `lookup` (the process environment in production).
pub fn expand(file: &str, text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Diagnostics> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut d = Diagnostics::default();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let line_no = n as u64 + 1;
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                out.push('$');
                rest = after;
                continue;
            };
            let Some(end) = body.find('}') else {
                d.push(file, line_no, "", "`${` without its closing `}`");
                out.push_str(&rest[at..]);
                rest = "";
                break;
            };
            let reference = &body[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((n, def)) => (n, Some(def)),
                None => (reference, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                d.push(
                    file,
                    line_no,
                    "",
                    format!("`${{{reference}}}` does not name an environment variable"),
                );
            } else {
                match (lookup(name).filter(|v| !v.is_empty()), default) {
                    (Some(v), _) if v.contains(['\n', '\r']) => d.push(
                        file,
                        line_no,
                        "",
                        format!("environment variable {name} holds a line break; it cannot go into the config"),
                    ),
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(def)) => out.push_str(def),
                    (None, None) => d.push(
                        file,
                        line_no,
                        "",
                        format!("environment variable {name} is not set (give a default with `${{{name}:-value}}`)"),
                    ),
                }
            }
            rest = &body[end + 1..];
        }
        out.push_str(rest);
    }
    if d.0.is_empty() {
        Ok(out)
    } else {
        Err(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("sim".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn references_defaults_and_escapes() {
        let text =
            "host: ${HOST}\nport: ${PORT:-15020}\nx: ${EMPTY:-fallback}\npass: a$$b$c\n# ${NOT_SET} in a comment\n";
        assert_eq!(
            expand("c.yaml", text, env).unwrap_or_default(),
            "host: sim\nport: 15020\nx: fallback\npass: a$b$c\n# ${NOT_SET} in a comment\n"
        );
    }

    #[test]
    fn errors_name_the_line_and_the_variable() {
        let text = "a: 1\nhost: ${NOT_SET}\nb: ${MULTI}\nc: ${1BAD}\nd: ${OPEN\n";
        let e = expand("c.yaml", text, env)
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        assert!(e.contains("c.yaml:2") && e.contains("NOT_SET is not set"), "{e}");
        assert!(e.contains("c.yaml:3") && e.contains("MULTI holds a line break"), "{e}");
        assert!(e.contains("c.yaml:4") && e.contains("does not name"), "{e}");
        assert!(e.contains("c.yaml:5") && e.contains("closing"), "{e}");
    }

    #[test]
    fn text_without_references_is_unchanged() {
        let text = "price: 5 $ per kWh\n";
        assert_eq!(expand("c.yaml", text, env).unwrap_or_default(), text);
    }
}
