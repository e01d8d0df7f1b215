//! What the OPC UA server's HistoryRead reads back from InfluxDB (`/query` JSON, InfluxQL rows
//! of time, value and quality) on any bytes: an error or values, never a panic; every value has
//! a status and a source time.
#![no_main]

use busbar_bridge::northbound::opcua::influx_history::parse_answer;
use busbar_core::units::Unit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for (unit, text_point) in [(Unit::Volt, false), (Unit::Watt, false), (Unit::None, true)] {
        if let Ok(rows) = parse_answer(text, unit, text_point) {
            for (_, v) in rows {
                assert!(v.status.is_some() && v.source_timestamp.is_some());
            }
        }
    }
});
