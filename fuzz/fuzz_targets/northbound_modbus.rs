//! The bridge's northbound Modbus-TCP request path: any bytes, framed, decoded and answered by
//! the server over the demo site's store (no device behind it: writes fail, reads answer).
#![no_main]

use busbar_bridge::acquisition::Acquisition;
use busbar_bridge::demo::{demo_config, DemoPorts};
use busbar_bridge::northbound::modbus::{handler::ModbusHandler, map as modbus_map};
use busbar_bridge::store::Store;
use busbar_modbus::codec::split_frame;
use busbar_modbus::server::Handler;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fixture {
    rt: tokio::runtime::Runtime,
    server: ModbusHandler,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let ports = DemoPorts::default();
        let config = demo_config(ports.sim_gateway, &ports).ok()?;
        let store = Store::new(&config, 16);
        let map = modbus_map::build(&config, &store, Default::default());
        let server = ModbusHandler::new(map, store.clone(), Acquisition::detached(store), true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()?;
        Some(Fixture { rt, server })
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(f) = fixture() else { return };
    let mut rest = data;
    let mut out = Vec::new();
    while let Ok(Some((header, pdu, used))) = split_frame(rest) {
        f.rt.block_on(f.server.answer(header, pdu, &mut out));
        rest = &rest[used..];
    }
});
