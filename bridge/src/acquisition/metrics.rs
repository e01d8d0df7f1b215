//! The acquisition's metrics: per device (online, polls, failures, points, lateness, round-trip
//! histogram) and the points by quality, registered with the bridge's metrics registry.

use crate::metrics::{label, MetricSource};
use crate::store::{Store, RTT_BUCKETS_MS};
use std::fmt::Write as _;
use std::sync::Arc;

/// Reads the store's device statuses and samples when `/metrics` is rendered.
pub struct DeviceMetrics {
    pub store: Arc<Store>,
}

impl MetricSource for DeviceMetrics {
    fn write(&self, out: &mut String) {
        let n = self.store.device_count();
        let statuses: Vec<_> = (0..n)
            .map(|d| self.store.status(d).map(|g| g.clone()).unwrap_or_default())
            .collect();
        let names: Vec<String> = (0..n).map(|d| label(self.store.device_name(d))).collect();
        let acquired: Vec<usize> = (0..n)
            .map(|d| {
                self.store
                    .device_points(d)
                    .filter(|p| self.store.meta(*p).is_some_and(|m| m.acquired))
                    .count()
            })
            .collect();
        let o = out;
        let mut per_device = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> String| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (d, device) in names.iter().enumerate() {
                let _ = writeln!(o, "{name}{{device=\"{device}\"}} {}", value(d));
            }
        };
        per_device(
            "busbar_device_online",
            "gauge",
            "1 when the device answered its last poll.",
            &|d| u8::from(statuses[d].online).to_string(),
        );
        per_device("busbar_device_polls_total", "counter", "Polls of the device.", &|d| {
            statuses[d].polls.to_string()
        });
        per_device(
            "busbar_device_failures_total",
            "counter",
            "Failed polls (no answer or an exception).",
            &|d| statuses[d].failures.to_string(),
        );
        per_device(
            "busbar_device_points",
            "gauge",
            "Points the device's polls acquire.",
            &|d| acquired[d].to_string(),
        );
        per_device(
            "busbar_device_poll_lateness_seconds_max",
            "gauge",
            "Largest delay of a poll behind its schedule.",
            &|d| statuses[d].jitter_max_s.to_string(),
        );
        per_device(
            "busbar_device_poll_lateness_seconds_sum",
            "counter",
            "Sum of poll delays behind schedule (divide by polls).",
            &|d| statuses[d].jitter_sum_s.to_string(),
        );
        let _ = writeln!(o, "# HELP busbar_device_rtt_seconds Round-trip time of the device's requests.\n# TYPE busbar_device_rtt_seconds histogram");
        for d in 0..n {
            let st = &statuses[d];
            for (i, b) in RTT_BUCKETS_MS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "busbar_device_rtt_seconds_bucket{{device=\"{}\",le=\"{}\"}} {}",
                    names[d],
                    b / 1000.0,
                    st.rtt_counts[i]
                );
            }
            let _ = writeln!(
                o,
                "busbar_device_rtt_seconds_bucket{{device=\"{}\",le=\"+Inf\"}} {}",
                names[d], st.rtt_total
            );
            let _ = writeln!(
                o,
                "busbar_device_rtt_seconds_sum{{device=\"{}\"}} {}",
                names[d], st.rtt_sum_s
            );
            let _ = writeln!(
                o,
                "busbar_device_rtt_seconds_count{{device=\"{}\"}} {}",
                names[d], st.rtt_total
            );
        }
        let mut by_quality = std::collections::BTreeMap::new();
        for x in self.store.samples().iter() {
            *by_quality.entry(x.quality.as_str()).or_insert(0u64) += 1;
        }
        let _ = writeln!(o, "# HELP busbar_points Points by quality.\n# TYPE busbar_points gauge");
        for (q, c) in by_quality {
            let _ = writeln!(o, "busbar_points{{quality=\"{q}\"}} {c}");
        }
    }
}
