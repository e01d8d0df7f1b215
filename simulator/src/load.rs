//! Finding and loading profiles and scenarios from disk (or the embedded copies).

use crate::scenario::{parse_scenario, Scenario};
use busbar_core::diag::Diagnostics;
use busbar_core::profile::{load_dir, ProfileSet};
use std::path::{Path, PathBuf};

/// Where profiles come from: an explicit directory, else `profiles/` beside the scenario's
/// directory or in the working directory, else the copies compiled into the binary.
pub fn resolve_profiles(explicit: Option<&Path>, scenario: Option<&Path>) -> Result<(ProfileSet, String), Diagnostics> {
    if let Some(dir) = explicit {
        return load_dir(dir).map(|s| (s, dir.display().to_string()));
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(parent) = scenario.and_then(|s| s.parent()) {
        candidates.push(parent.join("../profiles"));
        candidates.push(parent.join("profiles"));
    }
    candidates.push(PathBuf::from("profiles"));
    for c in candidates {
        if c.is_dir() {
            return load_dir(&c).map(|s| (s, c.display().to_string()));
        }
    }
    crate::embedded::profiles().map(|s| (s, "<embedded>".to_string()))
}

/// Load and validate a scenario file with its profiles.
pub fn load_scenario(path: &Path, profiles_dir: Option<&Path>) -> Result<(Scenario, String), Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(&file, 0, "", format!("cannot read scenario: {e}"));
        d
    })?;
    let (profiles, from) = resolve_profiles(profiles_dir, Some(path))?;
    parse_scenario(&file, &text, &profiles).map(|s| (s, from))
}

/// The embedded demo site with the embedded profiles.
pub fn demo_scenario() -> Result<Scenario, Diagnostics> {
    let profiles = crate::embedded::profiles()?;
    parse_scenario(
        "<embedded>/scenarios/demo.yaml",
        crate::embedded::DEMO_SCENARIO,
        &profiles,
    )
}
