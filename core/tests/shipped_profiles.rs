//! Every profile the project ships loads and validates, and the public maps sit at the
//! addresses devices.md gives.

use busbar_core::image::RegisterImage;
use busbar_core::profile::{load_dir, DataType, Family, Table};
use std::path::Path;

fn profiles() -> busbar_core::profile::ProfileSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    load_dir(&dir).unwrap_or_else(|e| panic!("shipped profiles must load:\n{e}"))
}

#[test]
fn every_shipped_profile_loads() {
    let set = profiles();
    for name in [
        "socomec-diris-a40",
        "sunspec-meter-203",
        "legrand-emdx3",
        "socomec-atys-pm",
        "socomec-isom-l60",
        "socomec-isom-f60",
        "fafnir-visy-tanks",
        "fafnir-oil-separator",
        "fafnir-vaporix",
        "legrand-greenup",
        "legrand-dpx3",
        "legrand-pulse-concentrator",
    ] {
        assert!(set.contains_key(name), "missing profile {name}");
    }
}

#[test]
fn socomec_common_table_addresses() {
    let set = profiles();
    let p = &set["socomec-diris-a40"];
    let at = |id: &str| {
        p.point(id)
            .map(|x| (x.register.address, x.register.data_type, x.register.scale))
    };
    assert_eq!(at("hour_meter"), Some((50512, DataType::U32, 0.01)));
    assert_eq!(at("u12"), Some((50514, DataType::U32, 0.01)));
    assert_eq!(at("v1"), Some((50520, DataType::U32, 0.01)));
    assert_eq!(at("frequency"), Some((50526, DataType::U32, 0.01)));
    assert_eq!(at("i1"), Some((50528, DataType::U32, 0.001)));
    assert_eq!(at("i_n"), Some((50534, DataType::U32, 0.001)));
    assert_eq!(at("p"), Some((50536, DataType::I32, 10.0)));
    assert_eq!(at("pf"), Some((50542, DataType::I32, 0.001)));
    assert_eq!(at("p3"), Some((50548, DataType::I32, 10.0)));
    assert_eq!(at("ea_import"), Some((50780, DataType::U32, 1.0)));
    assert_eq!(at("ea_export"), Some((50786, DataType::U32, 1.0)));
    let img = RegisterImage::new(p);
    assert_eq!(img.read(Table::Holding, 50000, 2), Ok(&[0x534F, 0x434F][..]), "SOCO");
}

#[test]
fn sunspec_layout_is_exact() {
    let set = profiles();
    let p = &set["sunspec-meter-203"];
    assert_eq!(p.family, Family::Meter);
    let img = RegisterImage::new(p);
    // SunS, Common model header, model 203 header, end marker.
    assert_eq!(img.read(Table::Holding, 40000, 4), Ok(&[0x5375, 0x6E53, 1, 66][..]));
    assert_eq!(img.read(Table::Holding, 40070, 2), Ok(&[203, 105][..]));
    assert_eq!(img.read(Table::Holding, 40177, 2), Ok(&[0xFFFF, 0][..]));
    // The whole model 203 is readable in one request, as SunSpec clients do.
    assert!(img.read(Table::Holding, 40070, 107).is_ok());
    let sf = |id: &str| img.get(p, p.point_index(id).unwrap_or(usize::MAX)).ok();
    assert_eq!(sf("a_sf"), Some(-2.0));
    assert_eq!(sf("v_sf"), Some(-1.0));
    assert_eq!(sf("w_sf"), Some(1.0));
    let off = |id: &str| p.point(id).map(|x| x.register.address - 40070);
    assert_eq!(off("i_total"), Some(2));
    assert_eq!(off("v_sf"), Some(15));
    assert_eq!(off("frequency"), Some(16));
    assert_eq!(off("p"), Some(18));
    assert_eq!(off("w_sf"), Some(22));
    assert_eq!(off("pf"), Some(33));
    assert_eq!(off("pf_sf"), Some(37));
    assert_eq!(off("ea_export"), Some(38));
    assert_eq!(off("ea_import"), Some(46));
    assert_eq!(off("totwh_sf"), Some(54));
    assert_eq!(off("events"), Some(105));
}

#[test]
fn atys_public_block() {
    let set = profiles();
    let p = &set["socomec-atys-pm"];
    for (id, addr) in [
        ("network_type", 0x5000),
        ("mode", 0x5001),
        ("position", 0x5002),
        ("source1_state", 0x5006),
        ("source2_state", 0x5007),
        ("test_state", 0x5008),
        ("cycle_count", 0x5009),
    ] {
        assert_eq!(p.point(id).map(|x| x.register.address), Some(addr), "{id}");
    }
    assert_eq!(
        p.point("mode").map(|x| x.labels.get(&0x10).cloned()),
        Some(Some("auto".into()))
    );
    let img = RegisterImage::new(p);
    assert_eq!(img.read(Table::Holding, 50004, 1), Ok(&[300][..]), "family ATyS = 300");
}
