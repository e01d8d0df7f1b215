//! The seam every northbound server and every sink plugs into.
//!
//! A component is one module that provides, through [`Component`]:
//! - its configuration section: a serde document (`Doc`, unknown keys denied, defaults and doc
//!   comments beside each key) and its validation without IO into `Settings`, every error
//!   located at the section's line ([`Resolve`]);
//! - its start: bind, spawn its tasks (which end when the shutdown signal changes), register
//!   its metrics with the one registry, and say where it can be reached ([`Started`]).
//!
//! Components are registered with one line each in a [`sections!`] list:
//! `northbound::Servers` (the `servers:` section) and `sinks::Sinks` (the `history:` section).
//! The list generates the section's document, its resolved settings, and the loops that
//! validate and start every enabled component; `app` and `/metrics` name no component.

use crate::acquisition::Acquisition;
use crate::clock::Clock;
use crate::config::{Config, Device};
use crate::metrics::Metrics;
use crate::store::Store;
use busbar_core::diag::Diagnostics;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A northbound server or a sink.
pub trait Component {
    /// The YAML section (serde; `#[serde(deny_unknown_fields)]`).
    type Doc: DeserializeOwned + Debug;
    /// The validated settings the component starts from.
    type Settings: Clone + Debug + Send + Sync + 'static;
    /// Whether the section is switched on (its `enabled` key, true by default).
    fn enabled(doc: &Self::Doc) -> bool;
    /// Validate the section without IO. Report every problem through `cx`; `None` when the
    /// settings cannot be made (the errors say why).
    fn resolve(doc: &Self::Doc, cx: &mut Resolve<'_>) -> Option<Self::Settings>;
    /// Start: bind, spawn, register metrics with `cx.metrics`.
    fn start(settings: &Self::Settings, cx: &Context) -> impl Future<Output = anyhow::Result<Started>>;
}

/// The default of every section's `enabled` key: a section that is written is on.
pub fn on() -> bool {
    true
}

/// What a section's validation sees: where it is, the devices it serves, and the addresses
/// other sections claimed.
pub struct Resolve<'a> {
    pub file: &'a str,
    /// Line of the section in the file.
    pub line: u64,
    /// `servers.modbus`, `history.influxdb`.
    pub path: String,
    /// The configuration file's folder: relative paths in a section are relative to it.
    pub base_dir: &'a Path,
    pub site_name: &'a str,
    pub devices: &'a [Device],
    /// Line and path (`devices[3] (meter)`) of each device, for errors about a device.
    pub device_lines: &'a [(u64, String)],
    diagnostics: &'a mut Diagnostics,
    claims: &'a mut HashMap<SocketAddr, String>,
}

impl Resolve<'_> {
    /// An error about `key` of this section (`""`: the section itself).
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = if key.is_empty() {
            self.path.clone()
        } else {
            format!("{}.{key}", self.path)
        };
        self.diagnostics.push(self.file, self.line, path, message);
    }

    /// An error about device `index`, found while validating this section.
    pub fn device_error(&mut self, index: usize, message: impl Into<String>) {
        let (line, path) = self.device_lines.get(index).cloned().unwrap_or_default();
        self.diagnostics.push(self.file, line, path, message);
    }

    /// The TCP address of `listen`, claimed for this section: two sections on one port fail
    /// validation, not at bind time. Port 0 (pick a free port) is never a clash.
    pub fn claim_tcp(&mut self, text: &str) -> Option<SocketAddr> {
        let Ok(a) = text.parse::<SocketAddr>() else {
            self.error("listen", format!("`{text}` is not an address like 127.0.0.1:5020"));
            return None;
        };
        if a.port() != 0 {
            let me = self.path.rsplit('.').next().unwrap_or_default().to_string();
            if let Some(other) = self.claims.insert(a, me) {
                self.error("listen", format!("{a} is already claimed by the {other} server"));
            }
        }
        Some(a)
    }
}

/// What the sections of one file share while they are validated.
pub struct Sections<'a> {
    pub file: &'a str,
    pub base_dir: &'a Path,
    pub site_name: &'a str,
    pub devices: &'a [Device],
    pub device_lines: &'a [(u64, String)],
    pub diagnostics: &'a mut Diagnostics,
    pub claims: HashMap<SocketAddr, String>,
}

impl Sections<'_> {
    /// Validate one enabled section of component `C` found at `line`.
    pub fn resolve<C: Component>(&mut self, path: String, line: u64, doc: &C::Doc) -> Option<C::Settings> {
        let mut cx = Resolve {
            file: self.file,
            line,
            path,
            base_dir: self.base_dir,
            site_name: self.site_name,
            devices: self.devices,
            device_lines: self.device_lines,
            diagnostics: self.diagnostics,
            claims: &mut self.claims,
        };
        C::resolve(doc, &mut cx)
    }
}

/// What a component is started with.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    /// The write path to the devices.
    pub acq: Acquisition,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// The alarm service, when alarms are configured: read its alarms, act on them, subscribe
    /// to its transitions.
    pub alarms: Option<Arc<crate::alarms::Alarms>>,
    /// Changes (to true) when the bridge stops; give each task its own clone.
    pub shutdown: watch::Receiver<bool>,
}

/// A started component.
pub struct Started {
    pub endpoint: Endpoint,
    /// Its tasks; each ends after the shutdown signal.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Where a started component can be reached, as `busbar run` and `busbar demo` print it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The section key (`modbus`, `influxdb`).
    pub name: &'static str,
    /// The bound socket, when there is one (port 0 in the config resolved).
    pub local: Option<SocketAddr>,
    /// What it is (`modbus-tcp server`), padded in the printed list.
    pub what: &'static str,
    /// Where and how (`127.0.0.1:5020  (unit id per device: ...)`).
    pub detail: String,
}

/// A list of components under one YAML section: generates the section's document (one
/// optional key per component), its resolved settings, and the loops that validate and start
/// them, in the order listed.
#[macro_export]
macro_rules! sections {
    (
        $(#[$meta:meta])*
        $doc:ident => $settings:ident, $parent:literal {
            $( $(#[$fmeta:meta])* $key:ident : $ty:ty ),* $(,)?
        }
    ) => {
        /// The section's document, as written in the file.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $doc {
            $(
                #[serde(default)]
                pub $key: Option<serde_saphyr::Spanned<<$ty as $crate::component::Component>::Doc>>,
            )*
        }

        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $settings {
            $( $(#[$fmeta])* pub $key: Option<<$ty as $crate::component::Component>::Settings>, )*
        }

        impl $doc {
            /// Validate every enabled section.
            pub(crate) fn resolve(&self, cx: &mut $crate::component::Sections<'_>) -> $settings {
                $settings {
                    $(
                        $key: self.$key.as_ref()
                            .filter(|s| <$ty as $crate::component::Component>::enabled(&s.value))
                            .and_then(|s| cx.resolve::<$ty>(
                                concat!($parent, ".", stringify!($key)).to_string(),
                                s.referenced.line(),
                                &s.value,
                            )),
                    )*
                }
            }
        }

        impl $settings {
            /// Start every configured component, in the order listed.
            pub(crate) async fn start(
                &self,
                cx: &$crate::component::Context,
            ) -> anyhow::Result<Vec<$crate::component::Started>> {
                let mut started = Vec::new();
                $(
                    if let Some(s) = &self.$key {
                        started.push(<$ty as $crate::component::Component>::start(s, cx).await?);
                    }
                )*
                Ok(started)
            }
        }
    };
}
