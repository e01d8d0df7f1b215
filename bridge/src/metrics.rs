//! One metrics registry for the whole bridge. Acquisition, each northbound server and each sink
//! registers what it counts when it starts; `/metrics` renders the registry in Prometheus' text
//! format and knows no component.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Something that writes its own metric families (HELP, TYPE and samples) in Prometheus' text
/// format.
pub trait MetricSource: Send + Sync {
    fn write(&self, out: &mut String);
}

/// The registered sources, rendered in registration order.
#[derive(Default)]
pub struct Metrics {
    sources: Mutex<Vec<Arc<dyn MetricSource>>>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn register(&self, source: Arc<dyn MetricSource>) {
        self.sources.lock().unwrap_or_else(|p| p.into_inner()).push(source);
    }

    /// Every source's families, in Prometheus' text format.
    pub fn render(&self) -> String {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        for s in sources {
            s.write(&mut out);
        }
        out
    }
}

/// A label value escaped for the text format.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The HELP and TYPE lines of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Unlabelled metrics: (name, type, help, value) each.
pub fn plain(out: &mut String, rows: &[(&str, &str, &str, f64)]) {
    for (metric, kind, help, value) in rows {
        family(out, metric, kind, help);
        let _ = writeln!(out, "{metric} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str);
    impl MetricSource for Fixed {
        fn write(&self, out: &mut String) {
            plain(out, &[(self.0, "gauge", "A test gauge.", 1.0)]);
        }
    }

    #[test]
    fn sources_render_in_registration_order() {
        let m = Metrics::new();
        m.register(Arc::new(Fixed("b_first")));
        m.register(Arc::new(Fixed("a_second")));
        let text = m.render();
        let first = text.find("b_first 1").unwrap_or(usize::MAX);
        let second = text.find("a_second 1").unwrap_or(0);
        assert!(first < second, "{text}");
        assert!(text.contains("# TYPE a_second gauge"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
