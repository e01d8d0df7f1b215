//! Sinks: where the store's samples go besides the servers (history to InfluxDB today; MQTT and
//! alarm notifiers next). Each lives in its own folder and implements
//! [`crate::component::Component`] (its `history.<name>` section, its start, its metrics).
//!
//! To add a sink: a folder beside these, and one line in the list below.

pub mod influxdb;

crate::sections! {
    /// The sinks of the `history:` section, each when configured and enabled.
    SinksDoc => Sinks, "history" {
        influxdb: influxdb::InfluxDb,
    }
}
