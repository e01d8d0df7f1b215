//! The SNMP agent's request path: async-snmp decodes the datagram, then every OID a request
//! names goes through our MIB's GET and GETNEXT over the demo site. GETNEXT must move forward.
#![no_main]

use async_snmp::message::Message;
use async_snmp::DecodeConfig;
use busbar_bridge::northbound::snmp::mib::{default_root, Mib};
use busbar_bridge::store::Store;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn mib() -> &'static Mib {
    static MIB: OnceLock<Mib> = OnceLock::new();
    MIB.get_or_init(|| {
        let ports = busbar_bridge::demo::DemoPorts::default();
        let config = busbar_bridge::demo::demo_config(ports.sim_gateway, &ports).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        Mib::build(&config, &default_root(), store, None)
    })
}

fn check(arcs: &[u32]) {
    let m = mib();
    let _ = m.get(arcs);
    if let Some((next, _)) = m.next(arcs) {
        assert!(next.as_slice() > arcs, "GETNEXT went back: {arcs:?} -> {next:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = Message::decode(bytes::Bytes::copy_from_slice(data), DecodeConfig::default()) {
        if let Some(pdu) = out.value.pdu() {
            for vb in pdu.varbinds() {
                check(vb.oid.arcs());
            }
        }
    }
    // The bytes as an OID under the root too, so the MIB's own paths are reached directly.
    let mut arcs = default_root();
    arcs.extend(data.iter().map(|b| u32::from(*b % 20)));
    check(&arcs);
});
