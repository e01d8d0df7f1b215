//! The simulator's control API body decoding: any JSON value through the event/fault parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = busbar_sim::scenario::parse_action(&value);
    }
});
