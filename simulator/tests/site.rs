//! The demo site run headless in simulated time: every profile point is fed by its model,
//! the physics hold at the published addresses, the same seed gives the same registers, and
//! snapshots of register images at fixed simulated times.

use busbar_core::profile::Table;
use busbar_sim::load::demo_scenario;
use busbar_sim::scenario::Scenario;
use busbar_sim::site::Site;
use std::collections::HashSet;

fn demo() -> Scenario {
    demo_scenario().unwrap_or_else(|e| panic!("{e}"))
}

fn site_at(scenario: &Scenario, seed: Option<u64>, sim_s: f64) -> Site {
    let mut site = Site::new(scenario, seed).unwrap_or_else(|e| panic!("{e}"));
    site.advance_to(sim_s);
    site.publish();
    site
}

fn regs(site: &Site, device: &str, address: u16, count: u16) -> Vec<u16> {
    let d = site
        .devices()
        .find(|d| d.name == device)
        .unwrap_or_else(|| panic!("no {device}"));
    let rt = d.lock();
    rt.image
        .read(Table::Holding, address, count)
        .map(|r| r.to_vec())
        .unwrap_or_else(|e| panic!("{device} {address}: {e}"))
}

fn u32_at(r: &[u16], i: usize) -> f64 {
    f64::from((u32::from(r[i]) << 16) | u32::from(r[i + 1]))
}

#[test]
fn every_profile_point_is_fed_by_its_model() {
    let scenario = demo();
    let site = site_at(&scenario, None, 60.0);
    for (i, d) in site.devices().enumerate() {
        let emitted: HashSet<String> = site.truth(i).into_iter().map(|(n, _, _)| n).collect();
        // A block instance is in use when its model sets more than its status (tank 9 of a
        // 5-tank gauge only says `not_configured`).
        let mut per_instance: std::collections::HashMap<(String, u16), usize> = Default::default();
        for (b, _) in emitted.iter().filter_map(|n| n.split_once('.')) {
            let name: String = b.chars().take_while(|c| !c.is_ascii_digit()).collect();
            let idx: u16 = b[name.len()..].parse().unwrap_or(0);
            *per_instance.entry((name, idx)).or_default() += 1;
        }
        let instances: HashSet<(String, u16)> = per_instance
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k)
            .collect();
        for p in &d.profile.points {
            if p.constant.is_some() {
                continue;
            }
            if let Some(b) = &p.block {
                if !instances.contains(&(b.name.clone(), b.index)) {
                    continue; // an instance the device does not use (tank 9 of 5)
                }
            }
            assert!(
                emitted.contains(&p.id),
                "{}: the {} model never sets `{}`",
                d.name,
                d.profile.family,
                p.id
            );
        }
    }
}

#[test]
fn same_seed_same_registers() {
    let scenario = demo();
    let a = site_at(&scenario, Some(7), 900.0);
    let b = site_at(&scenario, Some(7), 900.0);
    let c = site_at(&scenario, Some(8), 900.0);
    let block = |s: &Site| regs(s, "main_meter", 50512, 38);
    assert_eq!(block(&a), block(&b));
    assert_ne!(block(&a), block(&c), "another seed gives other noise");
}

#[test]
fn meter_physics_at_the_socomec_addresses() {
    let scenario = demo();
    let mut site = site_at(&scenario, None, 120.0);
    let r = regs(&site, "main_meter", 50512, 38);
    let v: Vec<f64> = (0..3).map(|k| u32_at(&r, 8 + 2 * k) / 100.0).collect();
    let i: Vec<f64> = (0..3).map(|k| u32_at(&r, 16 + 2 * k) / 1000.0).collect();
    let p = f64::from(((u32::from(r[24]) << 16) | u32::from(r[25])) as i32) * 10.0;
    let s = u32_at(&r, 28) * 10.0;
    let pf = f64::from(((u32::from(r[30]) << 16) | u32::from(r[31])) as i32) / 1000.0;
    for x in &v {
        assert!((207.0..253.0).contains(x), "V within EN 50160 +-10 %: {x}");
    }
    let s_sum: f64 = v.iter().zip(&i).map(|(v, i)| v * i).sum();
    assert!((s - s_sum).abs() / s_sum < 0.01, "S = sum V*I: {s} vs {s_sum}");
    assert!((pf - p / s).abs() < 0.01, "PF = P/S");
    assert!(p > 0.0 && p <= s);
    // Energy never goes backwards and grows by the integral of P.
    let e0 = u32_at(&regs(&site, "main_meter", 50780, 2), 0);
    site.advance_to(120.0 + 3600.0);
    site.publish();
    let e1 = u32_at(&regs(&site, "main_meter", 50780, 2), 0);
    assert!(e1 > e0, "Ea+ grows: {e0} -> {e1}");
    assert!(
        e1 - e0 > 5.0 && e1 - e0 < 120.0,
        "an hour of a 6..35 kW site plus chargers: {} kWh",
        e1 - e0
    );
}

#[test]
fn mains_failure_in_the_demo_drops_downstream_meter_then_genset_takes_over() {
    let scenario = demo();
    // Mains lost at 5 min: 1FT 3 s, genset 8 s, 2AT 5 s, dead band 3 s.
    let site = site_at(&scenario, None, 300.0 + 10.0);
    let ats = regs(&site, "ats", 20480, 10);
    assert_eq!(ats[6], 0, "source I under threshold");
    let meter_v1 = u32_at(&regs(&site, "main_meter", 50520, 2), 0);
    assert_eq!(meter_v1, 0.0, "no source: the meter downstream sees 0 V");
    let site = site_at(&scenario, None, 300.0 + 30.0);
    let ats = regs(&site, "ats", 20480, 10);
    assert_eq!(ats[2], 3, "on source II (genset)");
    assert_eq!(ats[4], 1, "genset start relay");
    let meter_v1 = u32_at(&regs(&site, "main_meter", 50520, 2), 0) / 100.0;
    assert!(meter_v1 > 200.0, "genset supplies the load: {meter_v1} V");
}

fn hex_dump(site: &Site, device: &str, address: u16, count: u16) -> String {
    regs(site, device, address, count)
        .chunks(8)
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{:5}: {}",
                address as usize + i * 8,
                c.iter().map(|w| format!("{w:04x}")).collect::<Vec<_>>().join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn register_image_snapshots() {
    let scenario = demo();
    for (label, t) in [("t0010m", 600.0), ("t0060m", 3600.0)] {
        let site = site_at(&scenario, Some(42), t);
        insta::assert_snapshot!(format!("diris_{label}"), hex_dump(&site, "main_meter", 50512, 38));
        insta::assert_snapshot!(format!("atys_{label}"), hex_dump(&site, "ats", 20480, 10));
        insta::assert_snapshot!(format!("sunspec_{label}"), hex_dump(&site, "canopy_meter", 40070, 56));
        insta::assert_snapshot!(format!("tank2_{label}"), hex_dump(&site, "tanks", 256 + 32, 30));
    }
}
