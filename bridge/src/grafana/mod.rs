//! Grafana dashboards over the history schema (docs/grafana.md). The dashboards are built
//! here from the profiles, so that every field a query names is a point of its family, every
//! panel's unit is the unit the history stores, and every state panel's texts are the
//! profile's labels; `busbar export dashboards` writes them to dashboards/, and a test keeps
//! those files equal to what this module builds.
//!
//! Queries are InfluxQL (InfluxDB 1.x, or 2.x/3.x through the v1 compatibility API) and use
//! the template variables `$site` and `$device` (regex-matched, so "All" works) and Grafana's
//! `$timeFilter` and `$__interval`.

mod dashboards;
mod model;

pub use dashboards::{all, dashboard_of};
pub use model::{Dashboard, FieldInfo, Schema};

/// The uid of the datasource the provisioning file creates (dashboards/provisioning).
pub const DATASOURCE_UID: &str = "busbar-influxdb";
