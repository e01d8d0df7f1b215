//! Configuration validation: every error with file, line and path, without the network.

use busbar_bridge::config::parse_config;
use busbar_core::profile::embedded;

fn check(text: &str) -> String {
    let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    match parse_config("c.yaml", text, &profiles, "<embedded>") {
        Ok(_) => String::new(),
        Err(d) => d.to_string(),
    }
}

#[test]
fn shipped_demo_config_is_valid() {
    assert_eq!(check(busbar_bridge::demo::DEMO_CONFIG), "");
}

#[test]
fn every_error_is_reported_with_its_line() {
    let text = r#"
site: { name: S, id: s }
connections:
  - { name: gw, tcp: { host: 127.0.0.1, port: 15020 } }
  - { name: gw2, tcp: { host: 127.0.0.1, port: 15020 } }
  - { name: bus, rtu: { device: /dev/ttyUSB0, parity: weird } }
devices:
  - { name: m1, profile: socomec-diris-a40, connection: gw, unit_id: 1 }
  - { name: m1, profile: socomec-diris-a40, connection: gw, unit_id: 2 }
  - { name: m2, profile: nope, connection: gw, unit_id: 3 }
  - { name: m3, profile: socomec-diris-a40, connection: gw, unit_id: 1 }
  - { name: m4, profile: socomec-diris-a40, connection: ghost, unit_id: 4 }
  - { name: m5, profile: socomec-diris-a40, connection: gw, unit_id: 5, points: { v1: { writable: true } } }
  - { name: m6, profile: fafnir-visy-tanks, connection: gw, unit_id: 6, blocks: { tank: 17, pipe: 2 } }
  - { name: m7, profile: socomec-diris-a40, connection: bus, unit_id: 0 }
servers:
  modbus: { listen: "127.0.0.1:8080" }
  http: { listen: "127.0.0.1:8080" }
"#;
    let t = check(text);
    for want in [
        "c.yaml:5: connections[1] (gw2): 127.0.0.1:15020 is already used by `gw`",
        "c.yaml:6: connections[2] (bus): rtu.parity `weird` is not none, even or odd",
        "c.yaml:9: devices[1] (m1): duplicate device name",
        "c.yaml:10: devices[2] (m2): unknown profile `nope`",
        "c.yaml:11: devices[3] (m3): unit id 1 is already used by `m1` on connection `gw`",
        "c.yaml:12: devices[4] (m4): unknown connection `ghost`",
        "c.yaml:13: devices[5] (m5).points.v1: `v1` is read-only in profile `socomec-diris-a40`",
        "c.yaml:14: devices[6] (m6).blocks.tank: 17 instances, the profile declares 16",
        "c.yaml:14: devices[6] (m6).blocks.pipe: profile `fafnir-visy-tanks` has no block `pipe`",
        "c.yaml:15: devices[7] (m7): unit_id 0 is outside 1..=247",
        "servers.http.listen: 127.0.0.1:8080 is already claimed by the modbus server",
    ] {
        assert!(t.contains(want), "missing `{want}` in:\n{t}");
    }
}

#[test]
fn unknown_keys_are_errors_and_defaults_are_safe() {
    let t = check("site: { name: S, id: s }\nconnections: []\ndevices: []\ncolour: red\n");
    assert!(t.contains("c.yaml:4") && t.contains("colour"), "{t}");
    let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let text = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\ndevices:\n  - { name: a, profile: socomec-atys-pm, connection: gw, unit_id: 1, points: { command: { writable: true } } }\nservers: { modbus: {}, http: {} }\n";
    let c = parse_config("d.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.writes_enabled, "writes are off unless enabled globally");
    assert_eq!(
        c.servers.modbus.as_ref().map(|m| m.listen.to_string()),
        Some("127.0.0.1:5020".into())
    );
    assert_eq!(
        c.servers.http.as_ref().map(|m| m.listen.to_string()),
        Some("127.0.0.1:8080".into())
    );
    let store = busbar_bridge::store::Store::new(&c, 16);
    let p = store.find("a/command").unwrap_or(u32::MAX);
    assert_eq!(
        store.meta(p).map(|m| m.writable),
        Some(false),
        "per-point writable alone is not enough"
    );
}

#[test]
fn bacnet_and_snmp_settings_are_checked() {
    let base = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\n";
    // Two devices forced onto one BACnet base: both point ids are named.
    let text = format!(
        "{base}devices:\n  - {{ name: a, profile: legrand-dpx3, connection: gw, unit_id: 1, bacnet_base: 9 }}\n  \
         - {{ name: b, profile: legrand-dpx3, connection: gw, unit_id: 2, bacnet_base: 9 }}\n\
         servers: {{ bacnet: {{ listen: '0.0.0.0:47808', device_instance: 5000000 }} }}\n"
    );
    let out = check(&text);
    assert!(out.contains("device_instance"), "{out}");
    let text = format!(
        "{base}devices:\n  - {{ name: a, profile: legrand-dpx3, connection: gw, unit_id: 1, bacnet_base: 9 }}\n  \
         - {{ name: b, profile: legrand-dpx3, connection: gw, unit_id: 2, bacnet_base: 9 }}\n\
         servers: {{ bacnet: {{ listen: '0.0.0.0:47808' }} }}\n"
    );
    let out = check(&text);
    assert!(out.contains("is also `a/"), "{out}");
    // The virtual network: its number, a site device instance that a field device's device
    // would have, and a BACnet password of more than 20 characters.
    for (bacnet, expected) in [
        ("virtual_network: 0", "not a network number"),
        ("virtual_network: 65535", "not a network number"),
        (
            "virtual_network: 9, device_instance: 9000",
            "instance of `a` on the virtual network",
        ),
        ("password: '123456789012345678901'", "1 to 20"),
    ] {
        let text = format!(
            "{base}devices:\n  - {{ name: a, profile: legrand-dpx3, connection: gw, unit_id: 1, bacnet_base: 9 }}\n\
             servers: {{ bacnet: {{ listen: '0.0.0.0:47808', {bacnet} }} }}\n"
        );
        let out = check(&text);
        assert!(out.contains(expected), "{bacnet}: {out}");
    }
    // SNMP: a root outside enterprises, a bad source network, short keys, an inform to an unknown user.
    let text = format!(
        "{base}devices: []\nservers:\n  snmp:\n    enterprise_oid: 1.3.6.1.2.1\n    communities: [{{ name: public, sources: [10.0.0.0/33] }}]\n    \
         users: [{{ name: u, auth_key: short }}]\n    informs: [{{ target: '127.0.0.1:162', user: nobody }}]\n"
    );
    let out = check(&text);
    assert!(out.contains("enterprise_oid"), "{out}");
    let text = format!(
        "{base}devices: []\nservers:\n  snmp:\n    communities: [{{ name: public, sources: [10.0.0.0/33] }}]\n    \
         users: [{{ name: u, auth_key: short }}]\n    informs: [{{ target: '127.0.0.1:162', user: nobody }}]\n"
    );
    let out = check(&text);
    assert!(out.contains("10.0.0.0/33"), "{out}");
    assert!(out.contains("at least 8 characters"), "{out}");
    assert!(out.contains("user `nobody`"), "{out}");
    let net = busbar_bridge::northbound::snmp::Cidr::parse("10.1.0.0/16").unwrap_or_else(|| panic!("cidr"));
    assert!(net.contains("10.1.200.3".parse().unwrap_or_else(|e| panic!("{e}"))));
    assert!(!net.contains("10.2.0.1".parse().unwrap_or_else(|e| panic!("{e}"))));
}

#[test]
fn history_settings_are_checked_and_the_demo_flags_share_the_rules() {
    let base = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\ndevices: []\n";
    let out = check(&format!(
        "{base}history:\n  influxdb: {{ url: 'ftp://x', api: v3, buffer_quota_mb: 0.01 }}\n"
    ));
    for key in [
        "history.influxdb.url",
        "history.influxdb.api",
        "history.influxdb.buffer_quota_mb",
    ] {
        assert!(out.contains(key), "{key}: {out}");
    }
    let out = check(&format!(
        "{base}history:\n  influxdb: {{ url: 'http://x:8086', api: v2, org: o }}\n"
    ));
    assert!(out.contains("needs org and bucket"), "{out}");
    let dir = std::path::PathBuf::from("buf");
    let e = busbar_bridge::demo::influx_from_url("http://x:8086?db=b", None, None, None, dir.clone(), 0.01)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("--history-quota-mb") && e.contains("not a quota"), "{e}");
    let s = busbar_bridge::demo::influx_from_url("http://x:8086?db=b", None, None, None, dir, 0.0625)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.database.as_str(), s.buffer_quota_bytes, s.segment_bytes),
        ("b", 65_536, 8192)
    );
}
