//! The bridge's configuration (one YAML file): the site, the connections (Modbus TCP gateways and
//! RTU buses), the devices behind them ([`devices`]), the northbound servers (`servers:`) and the
//! sinks (`history:`). Parse, validate without IO (every error with file, line and path), then
//! resolve into [`Config`]. Unknown keys are errors. Defaults are safe: servers bind 127.0.0.1,
//! writes are off until enabled both globally and per point. Each server's and sink's section
//! is owned by its component (`northbound::<protocol>::section`, `sinks::<name>::section`).
//! The key reference is docs/configuration.md.

pub mod devices;
pub mod env;

pub use devices::{
    default_bacnet_base, Connection, Device, Link, PointSettings, SerialLine, BACNET_MAX_BASE, BACNET_POINTS_PER_BASE,
};

use crate::component::Sections;
use crate::northbound::{Servers, ServersDoc};
use crate::sinks::{Sinks, SinksDoc};
use busbar_core::diag::Diagnostics;
use busbar_core::profile::ProfileSet;
use devices::{ConnectionDoc, DefaultsDoc, DeviceDoc};
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDoc {
    site: SiteDoc,
    /// Profile directory, relative to this file (default: profiles/ beside its folder, else
    /// built-in). Read by [`profiles_dir_of`] before the profiles are loaded.
    #[serde(default, rename = "profiles_dir")]
    _profiles_dir: Option<String>,
    #[serde(default)]
    writes: WritesDoc,
    #[serde(default)]
    defaults: DefaultsDoc,
    connections: Vec<Spanned<ConnectionDoc>>,
    devices: Vec<Spanned<DeviceDoc>>,
    #[serde(default)]
    servers: ServersDoc,
    #[serde(default)]
    history: SinksDoc,
    #[serde(default)]
    alarms: Option<Spanned<crate::alarms::AlarmsDoc>>,
    #[serde(default)]
    load_management: Option<Spanned<crate::dlm::section::LoadManagementDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteDoc {
    name: String,
    id: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WritesDoc {
    #[serde(default)]
    enabled: bool,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub site_name: String,
    pub site_id: String,
    pub writes_enabled: bool,
    pub connections: Vec<Connection>,
    pub devices: Vec<Device>,
    /// The northbound servers configured and enabled.
    pub servers: Servers,
    /// The sinks configured and enabled.
    pub sinks: Sinks,
    /// The alarm engine, when `alarms:` is configured and enabled.
    pub alarms: Option<crate::alarms::AlarmSettings>,
    /// The load manager, when `load_management:` is configured and enabled (its device is the
    /// last of `devices`).
    pub load_management: Option<crate::dlm::section::LoadManagement>,
    /// Where the profiles came from.
    pub profiles_from: String,
}

/// Which profile directory a config names (relative to the config file), if any.
pub fn profiles_dir_of(file: &str, text: &str) -> Option<std::path::PathBuf> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        profiles_dir: Option<String>,
    }
    // Parsing just this key ignores the rest; errors are reported by the full parse.
    let only: Only = serde_saphyr::from_str(text).ok()?;
    let dir = only.profiles_dir?;
    let base = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
    Some(base.join(dir))
}

/// Parse and validate a configuration against a profile set.
pub fn parse_config(file: &str, text: &str, profiles: &ProfileSet, profiles_from: &str) -> Result<Config, Diagnostics> {
    let text = env::expand(file, text, |name| std::env::var(name).ok())?;
    let doc: ConfigDoc = serde_saphyr::from_str(&text).map_err(|e| Diagnostics::from_yaml_error(file, &e))?;
    let mut d = Diagnostics::default();
    let (mut connections, conn_index) = devices::connections(file, &doc.connections, &mut d);
    let (mut devices, mut device_lines) = devices::devices(
        file,
        &doc.devices,
        &doc.defaults,
        &connections,
        &conn_index,
        profiles,
        &mut d,
    );
    // The load manager's device joins the devices before the servers see them.
    let load_management = doc
        .load_management
        .as_ref()
        .filter(|l| l.value.enabled())
        .and_then(|l| {
            l.value.resolve(
                file,
                l.referenced.line(),
                doc.writes.enabled,
                profiles,
                &mut connections,
                &mut devices,
                &mut device_lines,
                &mut d,
            )
        });
    let base_dir = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
    let mut sections = Sections {
        file,
        base_dir,
        site_name: &doc.site.name,
        devices: &devices,
        device_lines: &device_lines,
        diagnostics: &mut d,
        claims: Default::default(),
    };
    let servers = doc.servers.resolve(&mut sections);
    let sinks = doc.history.resolve(&mut sections);
    let alarms = doc.alarms.as_ref().filter(|a| a.value.enabled()).and_then(|a| {
        let at = crate::alarms::section::SectionAt {
            file,
            line: a.referenced.line(),
            base_dir,
            devices: &devices,
        };
        a.value.resolve(&at, &mut d)
    });
    let config = Config {
        site_name: doc.site.name,
        site_id: doc.site.id,
        writes_enabled: doc.writes.enabled,
        connections,
        devices,
        servers,
        sinks,
        alarms,
        load_management,
        profiles_from: profiles_from.to_string(),
    };
    d.into_result(config)
}

/// Read a config file and its profiles (its `profiles_dir`, else the usual places).
pub fn load_config(path: &std::path::Path, profiles_dir: Option<&std::path::Path>) -> Result<Config, Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(&file, 0, "", format!("cannot read config: {e}"));
        d
    })?;
    let named = profiles_dir_of(&file, &text);
    let explicit = profiles_dir.map(|p| p.to_path_buf()).or(named);
    let (profiles, from) = busbar_core::profile::resolve_profiles(explicit.as_deref(), Some(path))?;
    parse_config(&file, &text, &profiles, &from)
}
