//! The acceptance library (scenarios/acceptance/*.yaml) is valid as shipped and with the
//! parameters a QA team gives for its own system under test: every parameter has a default and
//! a description, the probes built on `sut_http` follow it, and a whole probe given as a flow
//! mapping replaces the default one.

use busbar_sim::load::load_scenario;
use std::path::{Path, PathBuf};

fn library() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/acceptance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_acceptance_scenario_checks_with_its_defaults_and_with_overrides() {
    let files = library();
    assert_eq!(files.len(), 7, "{files:?}");
    for file in &files {
        let (s, _) = load_scenario(file, None, &[]).unwrap_or_else(|d| panic!("{}:\n{d}", file.display()));
        assert!(!s.expectations.is_empty(), "{}", file.display());
        assert_eq!(
            s.max_speed,
            1.0,
            "{}: a real SUT is played in real time",
            file.display()
        );
        for p in &s.parameters {
            assert!(
                !p.description.is_empty(),
                "{}: parameter {} says what it is for",
                file.display(),
                p.name
            );
            assert!(!p.value.contains("${"), "{}: {} = {}", file.display(), p.name, p.value);
        }
        assert_eq!(
            s.listeners[0].listen.to_string(),
            "127.0.0.1:15020",
            "{}",
            file.display()
        );
        let over = [
            ("gateway".to_string(), "127.0.0.1:35020".to_string()),
            ("sut_http".to_string(), "http://10.1.2.3:9000".to_string()),
        ];
        let (s2, _) = load_scenario(file, None, &over).unwrap_or_else(|d| panic!("{}:\n{d}", file.display()));
        assert_eq!(s2.listeners[0].listen.port(), 35020);
        let probes: Vec<_> = s2.parameters.iter().filter(|p| p.name.ends_with("_probe")).collect();
        assert!(!probes.is_empty(), "{}", file.display());
        for p in probes {
            assert!(
                p.value.contains("http://10.1.2.3:9000/"),
                "{}: {} = {}",
                file.display(),
                p.name,
                p.value
            );
        }
    }
}

#[test]
fn a_probe_parameter_takes_a_whole_probe_of_another_protocol() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/acceptance/breaker-trip.yaml");
    let bacnet = (
        "breaker_state_probe".to_string(),
        r#"{ bacnet: 192.168.1.20:47808, object: "multi-state-input:3", property: present-value }"#.to_string(),
    );
    let (s, _) =
        load_scenario(&file, None, &[bacnet, ("tripped".into(), "3".into())]).unwrap_or_else(|d| panic!("{d}"));
    let shown: Vec<String> = s.expectations.iter().map(|e| format!("{e:?}")).collect();
    assert!(shown.iter().any(|e| e.contains("192.168.1.20:47808")), "{shown:?}");
    let broken = (
        "breaker_state_probe".to_string(),
        "{ bacnet: 192.168.1.20:47808 }".to_string(),
    );
    let err = load_scenario(&file, None, &[broken])
        .err()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("breaker-trip.yaml:"),
        "a bad probe is located in the file: {err}"
    );
}
