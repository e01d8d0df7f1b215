//! dashboards/ holds exactly what `busbar export dashboards` builds from the built-in profiles,
//! and the builder refuses a dashboard that names a field no profile has.

use busbar_bridge::grafana::{all, dashboard_of, Schema};
use busbar_core::profile::{embedded, Family};
use std::path::Path;

#[test]
fn the_committed_dashboards_are_the_built_ones() {
    let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let schema = Schema::new(&profiles);
    let built = all(&schema);
    assert_eq!(schema.errors(), Vec::<String>::new());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
    let mut names = Vec::new();
    for d in &built {
        let path = dir.join(d.file_name());
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == d.to_json(),
            "{} differs from what the profiles give: run `cargo run -p busbar -- export dashboards`",
            path.display()
        );
        names.push(d.file_name());
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    names.sort();
    assert_eq!(on_disk, names, "a dashboard file that is not built here");
}

#[test]
fn a_field_no_profile_has_is_an_error() {
    let mut profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    profiles.retain(|_, p| p.family != Family::Meter);
    let schema = Schema::new(&profiles);
    let _ = all(&schema);
    let errors = schema.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("no profile of family meter has a point `ea_import`")),
        "{errors:?}"
    );
}

#[test]
fn every_dashboard_filters_by_site_and_has_unique_panel_ids() {
    let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    for d in all(&Schema::new(&profiles)) {
        let v: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap_or_default();
        let panels = v["panels"].as_array().cloned().unwrap_or_default();
        let mut ids: Vec<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "{}: duplicate panel ids", d.file_name());
        for p in panels.iter().filter(|p| p["type"] != "row") {
            for t in p["targets"].as_array().cloned().unwrap_or_default() {
                let q = t["query"].as_str().unwrap_or_default();
                assert!(q.contains("\"site\" =~ /^$site$/") && q.contains("$timeFilter"), "{q}");
            }
            let x = p["gridPos"]["x"].as_u64().unwrap_or(99) + p["gridPos"]["w"].as_u64().unwrap_or(99);
            assert!(x <= 24, "{}: panel {} overflows the grid", d.file_name(), p["title"]);
        }
    }
}

#[test]
fn every_family_is_read_by_its_dashboard() {
    let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let built = all(&Schema::new(&profiles));
    for family in Family::ALL {
        let uid = dashboard_of(*family);
        let d = built
            .iter()
            .find(|d| d.to_json().contains(&format!("\"uid\": \"{uid}\"")))
            .unwrap_or_else(|| panic!("{family}: no dashboard `{uid}`"));
        let from = format!("FROM \\\"{}\\\"", family.as_str());
        assert!(
            d.to_json().contains(&from),
            "{family}: dashboard `{uid}` has no query {from}"
        );
    }
}
