//! The shipped profiles, compiled in, so that the demo and the tools need no files.

/// `(profile name, YAML text)` of every shipped profile.
pub const PROFILES: &[(&str, &str)] = &[
    ("busbar-dlm", include_str!("../../../profiles/busbar-dlm.yaml")),
    (
        "fafnir-oil-separator",
        include_str!("../../../profiles/fafnir-oil-separator.yaml"),
    ),
    ("fafnir-vaporix", include_str!("../../../profiles/fafnir-vaporix.yaml")),
    (
        "fafnir-visy-tanks",
        include_str!("../../../profiles/fafnir-visy-tanks.yaml"),
    ),
    ("legrand-dpx3", include_str!("../../../profiles/legrand-dpx3.yaml")),
    ("legrand-emdx3", include_str!("../../../profiles/legrand-emdx3.yaml")),
    (
        "legrand-greenup",
        include_str!("../../../profiles/legrand-greenup.yaml"),
    ),
    (
        "legrand-pulse-concentrator",
        include_str!("../../../profiles/legrand-pulse-concentrator.yaml"),
    ),
    (
        "socomec-atys-pm",
        include_str!("../../../profiles/socomec-atys-pm.yaml"),
    ),
    (
        "socomec-diris-a40",
        include_str!("../../../profiles/socomec-diris-a40.yaml"),
    ),
    (
        "socomec-isom-f60",
        include_str!("../../../profiles/socomec-isom-f60.yaml"),
    ),
    (
        "socomec-isom-l60",
        include_str!("../../../profiles/socomec-isom-l60.yaml"),
    ),
    (
        "sunspec-meter-203",
        include_str!("../../../profiles/sunspec-meter-203.yaml"),
    ),
];

/// Parse the embedded profiles (they are validated by the test suite, so this only fails if
/// the build itself is broken).
pub fn profiles() -> Result<crate::profile::ProfileSet, crate::diag::Diagnostics> {
    let mut set = crate::profile::ProfileSet::new();
    let mut diags = crate::diag::Diagnostics::default();
    for (name, text) in PROFILES {
        match crate::profile::parse_profile(&format!("<embedded>/profiles/{name}.yaml"), text, Some(name)) {
            Ok(p) => {
                set.insert(p.name.clone(), std::sync::Arc::new(p));
            }
            Err(d) => diags.extend(d),
        }
    }
    diags.into_result(set)
}
