//! Loading scenarios from disk (or the embedded demo).

/// scenarios/demo.yaml, compiled in.
pub const DEMO_SCENARIO: &str = include_str!("../../scenarios/demo.yaml");

use crate::scenario::{load_traces, parse_scenario, parse_scenario_with, Scenario};
use busbar_core::diag::Diagnostics;
pub use busbar_core::profile::resolve_profiles;
use std::path::Path;

/// Load and validate a scenario file with its profiles, its parameters given `name=value`
/// overrides (`--param`).
pub fn load_scenario(
    path: &Path,
    profiles_dir: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<(Scenario, String), Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(&file, 0, "", format!("cannot read scenario: {e}"));
        d
    })?;
    let (profiles, from) = resolve_profiles(profiles_dir, Some(path))?;
    let mut scenario = parse_scenario_with(&file, &text, &profiles, overrides)?;
    load_traces(&mut scenario)?;
    Ok((scenario, from))
}

/// The embedded demo site with the embedded profiles.
pub fn demo_scenario() -> Result<Scenario, Diagnostics> {
    let profiles = busbar_core::profile::embedded::profiles()?;
    parse_scenario("<embedded>/scenarios/demo.yaml", DEMO_SCENARIO, &profiles)
}
