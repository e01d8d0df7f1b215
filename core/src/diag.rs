//! Located diagnostics: every configuration error names its file, line and path.

use std::fmt;

/// One problem found while loading or validating a YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// Path inside the document, e.g. `points[3] (v2)` or `devices[1].params`.
    pub path: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.path.is_empty()) {
            (0, true) => write!(f, "{}: {}", self.file, self.message),
            (0, false) => write!(f, "{}: {}: {}", self.file, self.path, self.message),
            (l, true) => write!(f, "{}:{}: {}", self.file, l, self.message),
            (l, false) => write!(f, "{}:{}: {}: {}", self.file, l, self.path, self.message),
        }
    }
}

/// Every problem found in one pass; loading fails when it is not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, file: &str, line: u64, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic {
            file: file.to_string(),
            line,
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// `Ok(v)` when nothing was reported, the diagnostics otherwise.
    pub fn into_result<T>(self, v: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }

    /// A diagnostic built from a YAML parse error (serde-saphyr knows the line).
    pub fn from_yaml_error(file: &str, err: &serde_saphyr::Error) -> Diagnostics {
        let line = err.location().map(|l| l.line()).unwrap_or(0);
        let mut d = Diagnostics::default();
        // The rendered error carries a snippet; keep the first line, which names the problem.
        let text = err.to_string();
        let first = text.lines().next().unwrap_or("invalid YAML").trim();
        // serde-saphyr prefixes `error: line L column C: `; we print the line ourselves.
        let first = match first.find(": ") {
            Some(i) if first.starts_with("error: line ") => {
                let rest = &first[i + 2..];
                rest.find(": ").map_or(rest, |j| &rest[j + 2..])
            }
            _ => first,
        };
        let first = first.to_string();
        d.push(file, line, "", first);
        d
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
