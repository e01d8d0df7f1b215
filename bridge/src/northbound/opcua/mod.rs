//! The OPC UA server (async-opcua): the site as an address space, values fed by the store's
//! change notifications, writes sent to the devices. Quality -> StatusCode and unit -> UNECE
//! code are mapped here, in one place each. Namespace URI: [`NAMESPACE_URI`]; NodeIds are
//! `ns=<busbar>;s=<point id>` (`s=tanks/tank3.volume`), devices `s=<device>`, block folders
//! `s=<device>/<block><n>`. docs/opcua.md.

pub mod aggregates;
pub mod conditions;
pub mod history;
pub mod influx_history;
mod intercept;
mod points;
pub mod section;
pub mod space;

pub use section::{OpcUa, OpcUaSettings, Role, User};

use crate::acquisition::{Acquisition, WriteOutcome};
use crate::alarms::Alarms;
use crate::config::Config;
use crate::store::{Notice, PointIdx, PointValue, Sample, Store};
use busbar_core::profile::Kind;
use busbar_core::quality::Quality;
use busbar_core::units::Unit;
use history::{History, PointHistory};
use opcua::crypto::SecurityPolicy;
use opcua::nodes::AccessLevel;
use opcua::nodes::MethodBuilder;
use opcua::server::authenticator::{AuthManager, CoreServerPermissions, DefaultAuthenticator, Password, UserToken};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{simple_node_manager, SimpleNodeManager};
use opcua::server::{ServerBuilder, ServerEndpoint, ServerUserToken, ANONYMOUS_USER_TOKEN_ID};
use opcua::types::UserTokenPolicy;
use opcua::types::{
    Argument, DataTypeId, DataValue, DateTime, EUInformation, LocalizedText, MessageSecurityMode, NodeId, ObjectId,
    QualifiedName, StatusCode, UAString, VariableTypeId, Variant,
};
use points::PointNodes;
use space::{describe_frame, Class, Parent};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The Busbar namespace.
pub const NAMESPACE_URI: &str = "urn:busbar:site";

/// Roles on top of async-opcua's user/password checks: a viewer's sessions see every variable
/// read-only and no method as executable; an operator may write and call.
struct RoleAuthenticator {
    inner: DefaultAuthenticator,
    /// Role by user token id (`user-<name>`).
    roles: HashMap<String, Role>,
    anonymous: Role,
}

impl RoleAuthenticator {
    fn role(&self, token: &UserToken) -> Role {
        if token.is_anonymous() {
            self.anonymous
        } else {
            self.roles.get(&token.0).copied().unwrap_or(Role::Viewer)
        }
    }
}

#[async_trait::async_trait]
impl AuthManager for RoleAuthenticator {
    async fn authenticate_anonymous_token(&self, endpoint: &ServerEndpoint) -> Result<(), opcua::types::Error> {
        self.inner.authenticate_anonymous_token(endpoint).await
    }

    async fn authenticate_username_identity_token(
        &self,
        endpoint: &ServerEndpoint,
        username: &str,
        password: &Password,
    ) -> Result<UserToken, opcua::types::Error> {
        self.inner
            .authenticate_username_identity_token(endpoint, username, password)
            .await
    }

    fn effective_user_access_level(&self, token: &UserToken, level: AccessLevel, _node: &NodeId) -> AccessLevel {
        match self.role(token) {
            Role::Operator => level,
            Role::Viewer => level & !AccessLevel::CURRENT_WRITE,
        }
    }

    fn is_user_executable(&self, token: &UserToken, _method: &NodeId) -> bool {
        self.role(token) == Role::Operator
    }

    fn user_token_policies(&self, endpoint: &ServerEndpoint) -> Vec<UserTokenPolicy> {
        self.inner.user_token_policies(endpoint)
    }

    fn core_permissions(&self, token: &UserToken) -> CoreServerPermissions {
        self.inner.core_permissions(token)
    }
}

/// Quality -> StatusCode, the one mapping for OPC UA.
pub fn status_of(sample: &Sample) -> StatusCode {
    match sample.quality {
        Quality::Good => StatusCode::Good,
        Quality::Stale => StatusCode::UncertainLastUsableValue,
        Quality::NoValue => StatusCode::BadNoCommunication,
        Quality::CommFailure if sample.value.is_none() => StatusCode::BadNoCommunication,
        Quality::CommFailure => StatusCode::BadCommunicationError,
        Quality::OutOfRange => StatusCode::BadOutOfRange,
        Quality::DecodeError | Quality::ConfigError => StatusCode::BadConfigurationError,
    }
}

/// Unit -> UNECE common code (Recommendation 20), the one mapping for OPC UA EngineeringUnits.
/// `None` for units without a code we are sure of (then the unit id is -1, "unknown").
pub fn unece_code(unit: Unit) -> Option<&'static str> {
    use Unit::*;
    Some(match unit {
        Volt => "VLT",
        Millivolt => "2Z",
        Ampere => "AMP",
        Milliampere => "4K",
        Watt => "WTT",
        Kilowatt => "KWT",
        Kilovar => "KVR",
        KilovoltAmpere => "KVA",
        WattHour => "WHR",
        KilowattHour => "KWH",
        MegawattHour => "MWH",
        AmpereHour => "AMH",
        Hertz => "HTZ",
        Percent => "P1",
        Ohm => "OHM",
        Kiloohm => "B49",
        Megaohm => "B75",
        Microfarad => "4O",
        DegreeCelsius => "CEL",
        Millimetre => "MMT",
        Metre => "MTR",
        Litre => "LTR",
        CubicMetre => "MTQ",
        LitrePerMinute => "L2",
        KilogramPerCubicMetre => "KMQ",
        Second => "SEC",
        Minute => "MIN",
        Hour => "HUR",
        _ => return Option::None,
    })
}

/// The OPC UA UnitId of a UNECE code: its characters as bytes, big-endian (Part 8, 5.6.3).
pub fn unece_unit_id(code: &str) -> i32 {
    code.bytes().fold(0i32, |acc, b| (acc << 8) | i32::from(b))
}

fn eu_information(unit: Unit) -> EUInformation {
    EUInformation {
        namespace_uri: UAString::from("http://www.opcfoundation.org/UA/units/un/cefact"),
        unit_id: unece_code(unit).map_or(-1, unece_unit_id),
        display_name: LocalizedText::new("en", unit.symbol()),
        description: LocalizedText::new("en", unit.name()),
    }
}

fn variant_of(v: &PointValue) -> Variant {
    match v {
        PointValue::Number(n) => Variant::Double(*n),
        PointValue::Text(t) => Variant::String(UAString::from(t.as_str())),
    }
}

fn data_value(sample: &Sample) -> DataValue {
    DataValue {
        value: sample.value.as_ref().map(variant_of),
        status: Some(status_of(sample)),
        source_timestamp: sample.source_time.map(|t| DateTime::from(chrono_free(t))),
        server_timestamp: Some(DateTime::now()),
        ..Default::default()
    }
}

/// SystemTime -> the UTC `DateTime` async-opcua expects.
fn chrono_free(t: std::time::SystemTime) -> opcua::types::date_time::DateTimeUtc {
    opcua::types::date_time::DateTimeUtc::from(t)
}

/// How often async-opcua checks whether a subscription's publishing interval has elapsed. It
/// restarts the interval at the tick that published, so a tick as long as the interval (25 ms)
/// published a 25 ms subscription every 25 to 50 ms, and a change waited up to 50 ms; at 1 ms
/// it is 25 to 26 ms. A tick that publishes nothing only looks at each subscription: against
/// 5 ms it cost 0.1 s more CPU in 13 s of 10,000 items at 1,000 changes/s (docs/benchmarks.md).
const SUBSCRIPTION_TICK_MS: u64 = 1;

/// Notifications in one publish response: async-opcua's clients decode arrays of up to 1,000
/// elements by default, and 1,000 number values (some 35 octets each: handle, value, status, two
/// times) fit the 327,675-octet messages most clients accept.
const MAX_NOTIFICATIONS_PER_PUBLISH: u64 = 1_000;

/// Start the server; returns the endpoint URL and the tasks.
pub async fn start(
    config: &Config,
    settings: &OpcUaSettings,
    store: Arc<Store>,
    acq: Acquisition,
    alarms: Option<Arc<Alarms>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(String, Vec<JoinHandle<()>>)> {
    // async-opcua binds by itself from host/port: pick the port first when 0 is asked.
    let port = match settings.listen.port() {
        0 => std::net::TcpListener::bind(settings.listen)?.local_addr()?.port(),
        p => p,
    };
    let host = settings.listen.ip().to_string();
    let history = History::new(settings.history_samples);
    let slot = intercept::ConditionsSlot::default();
    let influx = history::InfluxSlot::default();
    let points = PointNodes::builder(
        config.clone(),
        store.clone(),
        acq.clone(),
        PointHistory::new(history.clone(), influx.clone()),
    );
    let builder = server_builder(settings, &host, port, &slot, points);
    let (server, handle) = builder
        .subscription_poll_interval_ms(SUBSCRIPTION_TICK_MS)
        .build()
        .map_err(anyhow::Error::msg)?;
    let nm = handle
        .node_managers()
        .get_of_type::<SimpleNodeManager>()
        .ok_or_else(|| anyhow::anyhow!("OPC UA: the Busbar node manager is missing"))?;
    let point_nodes = handle
        .node_managers()
        .get_of_type::<PointNodes>()
        .ok_or_else(|| anyhow::anyhow!("OPC UA: the point node manager is missing"))?;
    let ns = handle
        .get_namespace_index(NAMESPACE_URI)
        .ok_or_else(|| anyhow::anyhow!("OPC UA: namespace not registered"))?;
    populate(config, &store, &nm, ns);
    attach_methods(config, &store, &acq, &nm, ns);
    let nodes = point_nodes.nodes();
    if let Some(sink) = &config.sinks.influxdb {
        match influx_history::InfluxHistory::new(sink, &store, &nodes)? {
            Some(h) => {
                tracing::info!(
                    "OPC UA: HistoryRead from InfluxDB at {} (database {})",
                    sink.url,
                    sink.database
                );
                let _ = influx.set(h);
            }
            None => tracing::info!(
                "OPC UA: HistoryRead from memory (the InfluxDB 2.x API is not read back; rings of {} samples)",
                settings.history_samples
            ),
        }
    }
    let mut tasks = Vec::new();
    if let Some(alarms) = alarms {
        let conditions = place_conditions(config, &store, &nm, &point_nodes, ns, alarms).await;
        tasks.push(
            conditions
                .clone()
                .feed(handle.subscriptions().clone(), shutdown.clone()),
        );
        let _ = slot.set(conditions);
    }
    let stop = handle.clone();
    let listener = tokio::net::TcpListener::bind((settings.listen.ip(), port)).await?;
    tasks.push(tokio::spawn(async move {
        if let Err(e) = server.run_with(listener).await {
            tracing::error!("OPC UA server stopped: {e}");
        }
    }));
    // Store changes -> subscriptions and history. Subscribed
    // before the first full push, so that no change falls between the two.
    let subs = handle.subscriptions().clone();
    let changes = store.subscribe();
    let feeder = Arc::new(Feeder {
        store: store.clone(),
        subs: subs.clone(),
        nodes,
        history: history.clone(),
    });
    feeder.push_all();
    tasks.push(device_properties(
        config,
        store.clone(),
        nm.clone(),
        subs.clone(),
        ns,
        shutdown.clone(),
    ));
    tasks.push(feed_changes(feeder, changes, stop, shutdown));
    Ok((format!("opc.tcp://{host}:{port}/"), tasks))
}

/// The server's identity, endpoints (None only when configured; Basic256Sha256 sign and
/// sign-and-encrypt), users and roles, and limits.
fn server_builder(
    settings: &OpcUaSettings,
    host: &str,
    port: u16,
    conditions: &intercept::ConditionsSlot,
    points: impl opcua::server::node_manager::NodeManagerBuilder + 'static,
) -> ServerBuilder {
    let mut token_ids: Vec<String> = Vec::new();
    let mut builder = ServerBuilder::new()
        // The default managers, but the core one wrapped so that condition methods reach us.
        .without_node_managers()
        .with_node_manager(intercept::core_with_conditions(conditions.clone()))
        .with_node_manager(opcua::server::diagnostics::DiagnosticsNodeManagerBuilder)
        .application_name("Busbar")
        .application_uri("urn:busbar:bridge")
        .product_uri("urn:busbar")
        .create_sample_keypair(true)
        .pki_dir(settings.pki_dir.clone())
        .certificate_path("own/cert.der")
        .private_key_path("private/private.pem")
        .trust_client_certs(settings.auto_trust)
        .host(host.to_string())
        .port(port)
        .discovery_urls(vec!["/".to_owned()])
        // The points first: they answer for their nodes, the in-memory space for the rest.
        .with_node_manager(points)
        .with_node_manager(simple_node_manager(
            NamespaceMetadata {
                namespace_uri: NAMESPACE_URI.to_owned(),
                ..Default::default()
            },
            "busbar",
        ));
    if settings.anonymous {
        token_ids.push(ANONYMOUS_USER_TOKEN_ID.to_owned());
    }
    let mut tokens = std::collections::BTreeMap::new();
    let mut roles = HashMap::new();
    for u in &settings.users {
        let id = format!("user-{}", u.name);
        let token = ServerUserToken {
            user: u.name.clone(),
            pass: Some(u.password.clone()),
            ..Default::default()
        };
        builder = builder.add_user_token(id.clone(), token.clone());
        tokens.insert(id.clone(), token);
        roles.insert(id.clone(), u.role);
        token_ids.push(id);
    }
    builder = builder.with_authenticator(Arc::new(RoleAuthenticator {
        inner: DefaultAuthenticator::new(tokens),
        roles,
        anonymous: settings.anonymous_role,
    }));
    let ids: Vec<&str> = token_ids.iter().map(String::as_str).collect();
    if settings.none_endpoint {
        builder = builder.add_endpoint(
            "none",
            ("/", SecurityPolicy::None, MessageSecurityMode::None, &ids as &[&str]),
        );
    }
    builder = builder
        .add_endpoint(
            "basic256sha256_sign",
            (
                "/",
                SecurityPolicy::Basic256Sha256,
                MessageSecurityMode::Sign,
                &ids as &[&str],
            ),
        )
        .add_endpoint(
            "basic256sha256_sign_encrypt",
            (
                "/",
                SecurityPolicy::Basic256Sha256,
                MessageSecurityMode::SignAndEncrypt,
                &ids as &[&str],
            ),
        );
    {
        let limits = builder.limits_mut();
        limits.subscriptions.max_monitored_items_per_sub = settings.max_monitored_items;
        // Values arrive pushed from the store: let clients ask for 25 ms publishing (async-opcua's
        // default minimum is 100 ms); subscriptions are checked every SUBSCRIPTION_TICK_MS.
        limits.subscriptions.min_publishing_interval_ms = 25.0;
        limits.subscriptions.min_sampling_interval_ms = 0.0;
        // async-opcua puts any number of notifications in one message by default: an async-opcua
        // client asking for no limit (0) on 10,000 items got a first publish of more than the
        // 1,000 array elements it decodes, and closed the connection (bridge/tests/opcua.rs).
        limits.subscriptions.max_notifications_per_publish = MAX_NOTIFICATIONS_PER_PUBLISH;
        // ...and with messages capped, the first round of values of a full subscription must fit
        // the queue of messages (async-opcua drops the oldest beyond 20).
        limits.subscriptions.max_queued_notifications = settings
            .max_monitored_items
            .div_ceil(MAX_NOTIFICATIONS_PER_PUBLISH as usize)
            + 20;
    }
    builder
}

/// The alarms as conditions: devices become event notifiers (Server -HasNotifier-> site
/// -HasNotifier-> device -HasEventSource-> the points with alarms), each alarm a condition
/// object under its device.
async fn place_conditions(
    config: &Config,
    store: &Store,
    nm: &SimpleNodeManager,
    point_nodes: &PointNodes,
    ns: u16,
    alarms: Arc<Alarms>,
) -> Arc<conditions::Conditions> {
    use opcua::nodes::{EventNotifier, NodeType};
    use opcua::types::ReferenceTypeId;
    let devices: HashMap<String, NodeId> = config
        .devices
        .iter()
        .map(|d| (d.name.clone(), NodeId::new(ns, d.name.as_str())))
        .collect();
    let mut points = HashMap::new();
    let mut indices = HashMap::new();
    for (d, dev) in config.devices.iter().enumerate() {
        for &k in &dev.acquired {
            let (Some(p), Some(point)) = (store.point_of(d, k), dev.profile.points.get(k)) else {
                continue;
            };
            if let Some(meta) = store.meta(p) {
                let key = (dev.name.clone(), point.id.clone());
                points.insert(key.clone(), NodeId::new(ns, meta.id.as_str()));
                indices.insert(key, p);
            }
        }
    }
    let views = alarms.all().await;
    let conditions = Arc::new(conditions::Conditions::new(ns, alarms, devices.clone(), points.clone()));
    let mut space = nm.address_space().write();
    let site = NodeId::new(ns, config.site_id.as_str());
    space.insert_reference(&ObjectId::Server.into(), &site, ReferenceTypeId::HasNotifier);
    for device in devices.values() {
        if let Some(NodeType::Object(o)) = space.find_mut(device) {
            o.set_event_notifier(EventNotifier::SUBSCRIBE_TO_EVENTS);
        }
        space.insert_reference(&site, device, ReferenceTypeId::HasNotifier);
    }
    // device -HasEventSource-> point: the points are the other node manager's to browse.
    let mut sources: HashMap<String, Vec<PointIdx>> = HashMap::new();
    for v in &views {
        if let Some(&p) = indices.get(&(v.device.clone(), v.point.clone())) {
            let list = sources.entry(v.device.clone()).or_default();
            if !list.contains(&p) {
                list.push(p);
            }
        }
    }
    point_nodes.set_event_sources(sources);
    conditions.place(&mut space, &views);
    tracing::info!("OPC UA: {} alarms as conditions", views.len());
    conditions
}

/// Device method calls go to the devices (point writes: `points::PointNodes`).
fn attach_methods(config: &Config, store: &Store, acq: &Acquisition, nm: &Arc<SimpleNodeManager>, ns: u16) {
    // Device commands: the method nodes exist (populate), attach their callbacks.
    for d in 0..config.devices.len() {
        for m in methods_of(config, store, d) {
            let id = NodeId::new(ns, format!("{}#{}", config.devices[d].name, m.name));
            let (acq, point, fixed) = (acq.clone(), m.point, m.fixed);
            nm.inner().add_method_callback(id, move |args: &[Variant]| {
                let value = match (fixed, args) {
                    (Some(v), []) => v,
                    (None, [a]) => as_f64(a).ok_or(StatusCode::BadInvalidArgument)?,
                    _ => return Err(StatusCode::BadArgumentsMissing),
                };
                match status_of_outcome(&write_blocking(&acq, point, value)) {
                    s if s.is_good() => Ok(Vec::new()),
                    s => Err(s),
                }
            });
        }
    }
}

/// Device properties that follow the acquisition, every second: CommStatus and LastUpdate.
fn device_properties(
    config: &Config,
    store: Arc<Store>,
    nm: Arc<SimpleNodeManager>,
    subs: Arc<opcua::server::SubscriptionCache>,
    ns: u16,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let names: Vec<String> = config.devices.iter().map(|d| d.name.clone()).collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            let mut values = Vec::new();
            for (d, name) in names.iter().enumerate() {
                let Some(st) = store.status(d).map(|s| s.clone()) else {
                    continue;
                };
                let comm = if st.online {
                    "online"
                } else if st.polls == 0 {
                    "unknown"
                } else {
                    "offline"
                };
                let last = st.last_good_read.map(busbar_core::time::rfc3339).unwrap_or_default();
                for (what, text) in [("CommStatus", comm.to_string()), ("LastUpdate", last)] {
                    let dv = DataValue {
                        value: Some(Variant::from(UAString::from(text))),
                        status: Some(StatusCode::Good),
                        ..Default::default()
                    };
                    values.push((NodeId::new(ns, format!("{name}#{what}")), dv));
                }
            }
            let _ = nm.set_values(&subs, values.iter().map(|(n, v)| (n, None, v.clone())));
        }
    })
}

/// Store changes -> subscriptions and history, in batches of what
/// is already queued; the server stops with the bridge.
fn feed_changes(
    feeder: Arc<Feeder>,
    mut changes: crate::store::Subscription,
    stop: opcua::server::ServerHandle,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch: Vec<PointIdx> = Vec::with_capacity(1024);
        loop {
            let notice = tokio::select! {
                n = changes.next() => n,
                _ = shutdown.changed() => break,
            };
            match notice {
                Notice::Closed => break,
                Notice::Resync => feeder.push_all(),
                Notice::Changed(p) => {
                    batch.clear();
                    batch.push(p);
                    // Take whatever else is already queued, then update under one lock.
                    while batch.len() < 4096 {
                        match tokio::time::timeout(std::time::Duration::ZERO, changes.next()).await {
                            Ok(Notice::Changed(q)) => batch.push(q),
                            Ok(Notice::Resync) => {
                                feeder.push_all();
                                batch.clear();
                                break;
                            }
                            _ => break,
                        }
                    }
                    feeder.push(batch.iter().copied());
                }
            }
        }
        stop.cancel();
    })
}

/// Pushes store samples to the subscriptions and the history.
struct Feeder {
    store: Arc<Store>,
    subs: Arc<opcua::server::SubscriptionCache>,
    nodes: HashMap<PointIdx, NodeId>,
    history: Arc<History>,
}

impl Feeder {
    fn push(&self, points: impl Iterator<Item = PointIdx>) {
        let values: Vec<(NodeId, DataValue)> = {
            let samples = self.store.samples();
            points
                .filter_map(|p| Some((self.nodes.get(&p)?.clone(), data_value(samples.get(p as usize)?))))
                .collect()
        };
        self.history.record(&values);
        self.subs.notify_data_change(
            values
                .iter()
                .map(|(n, v)| (v.clone(), n, opcua::types::AttributeId::Value)),
        );
    }

    fn push_all(&self) {
        self.push(self.nodes.keys().copied());
    }
}

/// A device write's outcome -> StatusCode, for writes and method calls alike.
pub fn status_of_outcome(outcome: &WriteOutcome) -> StatusCode {
    match outcome {
        WriteOutcome::Done { .. } => StatusCode::Good,
        WriteOutcome::NotWritable => StatusCode::BadUserAccessDenied,
        WriteOutcome::InvalidValue { .. } => StatusCode::BadOutOfRange,
        WriteOutcome::Timeout => StatusCode::BadTimeout,
        WriteOutcome::Refused { .. } => StatusCode::BadInvalidState,
        WriteOutcome::CommFailure { .. } => StatusCode::BadCommunicationError,
    }
}

/// Run a device write from a synchronous async-opcua callback (they run on runtime workers).
fn write_blocking(acq: &Acquisition, point: PointIdx, value: f64) -> WriteOutcome {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(acq.write(point, value)))
}

/// `transfer_to_source_1` -> `TransferToSource1`.
fn camel(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A device command as an OPC UA method.
pub(crate) struct MethodSpec {
    pub name: String,
    pub description: String,
    pub point: PointIdx,
    /// The value to write, or `None` when the caller gives it (one Double argument).
    pub fixed: Option<f64>,
}

/// Methods of a device, from its profile: one per label of a writable `command` point (but
/// `none`), and `Set<Point>(value)` for every other writable point.
pub(crate) fn methods_of(config: &Config, store: &Store, d: usize) -> Vec<MethodSpec> {
    let dev = &config.devices[d];
    let mut out = Vec::new();
    for &k in &dev.acquired {
        let Some(p) = store.point_of(d, k) else { continue };
        if !store.meta(p).is_some_and(|m| m.writable) {
            continue;
        }
        let point = &dev.profile.points[k];
        if point.name == "command" && point.kind == Kind::Enum {
            for (value, label) in point.labels.iter().filter(|(v, _)| **v != 0) {
                out.push(MethodSpec {
                    name: camel(label),
                    description: format!("Command {value} ({label}) to {}", dev.name),
                    point: p,
                    fixed: Some(*value as f64),
                });
            }
        } else {
            out.push(MethodSpec {
                name: format!("Set{}", camel(&point.id.replace('.', "_"))),
                description: format!("Write {} ({})", point.id, point.description),
                point: p,
                fixed: None,
            });
        }
    }
    out
}

fn as_f64(v: &Variant) -> Option<f64> {
    match v {
        Variant::Double(x) => Some(*x),
        Variant::Float(x) => Some(f64::from(*x)),
        Variant::Int16(x) => Some(f64::from(*x)),
        Variant::UInt16(x) => Some(f64::from(*x)),
        Variant::Int32(x) => Some(f64::from(*x)),
        Variant::UInt32(x) => Some(f64::from(*x)),
        Variant::Int64(x) => Some(*x as f64),
        Variant::UInt64(x) => Some(*x as f64),
        Variant::Boolean(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Build the in-memory address space from the frame of the description
/// (`space::describe_frame`): folders, device properties and method nodes. The points and
/// their properties are served by `points::PointNodes`.
fn populate(config: &Config, store: &Store, nm: &SimpleNodeManager, ns: u16) {
    let mut space = nm.address_space().write();
    let node = |s: &str| NodeId::new(ns, s);
    for n in describe_frame(config, store) {
        let id = node(&n.id);
        let parent: NodeId = match &n.parent {
            Parent::Objects => ObjectId::ObjectsFolder.into(),
            Parent::Node(p) => node(p),
        };
        match n.class {
            Class::Folder => {
                space.add_folder(&id, points::browse_name(&n, ns), n.display.as_str(), &parent);
            }
            Class::Property { .. } => {
                let Some(var) = points::variable(&n, ns) else {
                    tracing::warn!(node = %n.id, "OPC UA: property left out (invalid name)");
                    continue;
                };
                var.has_type_definition(VariableTypeId::PropertyType)
                    .property_of(parent)
                    .insert(&mut *space);
            }
            Class::Variable { .. } => {}
            Class::Method { argument } => {
                let mut b = MethodBuilder::new(&id, QualifiedName::new(ns, n.browse.as_str()), n.display.as_str())
                    .description(n.description.as_str())
                    .component_of(parent)
                    .executable(true)
                    .user_executable(true);
                if argument {
                    let arg = Argument {
                        name: UAString::from("value"),
                        data_type: DataTypeId::Double.into(),
                        value_rank: -1,
                        array_dimensions: None,
                        description: LocalizedText::new("en", "the value, in the point's engineering unit"),
                    };
                    b = b.input_args(&mut *space, &node(&format!("{}#InputArguments", n.id)), &[arg]);
                }
                b.insert(&mut *space);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn sample(q: Quality, value: Option<f64>) -> Sample {
        Sample {
            value: value.map(PointValue::Number),
            quality: q,
            source_time: Some(SystemTime::now()),
            last_good: None,
        }
    }

    #[test]
    fn quality_maps_to_status_codes() {
        assert_eq!(status_of(&sample(Quality::Good, Some(1.0))), StatusCode::Good);
        assert_eq!(
            status_of(&sample(Quality::Stale, Some(1.0))),
            StatusCode::UncertainLastUsableValue
        );
        assert_eq!(
            status_of(&sample(Quality::CommFailure, Some(1.0))),
            StatusCode::BadCommunicationError
        );
        assert_eq!(
            status_of(&sample(Quality::CommFailure, None)),
            StatusCode::BadNoCommunication
        );
        assert_eq!(
            status_of(&sample(Quality::NoValue, None)),
            StatusCode::BadNoCommunication
        );
        assert_eq!(
            status_of(&sample(Quality::OutOfRange, Some(1657.0))),
            StatusCode::BadOutOfRange
        );
        assert_eq!(
            status_of(&sample(Quality::DecodeError, None)),
            StatusCode::BadConfigurationError
        );
        assert_eq!(
            status_of(&sample(Quality::ConfigError, None)),
            StatusCode::BadConfigurationError
        );
    }

    #[test]
    fn method_names_from_labels() {
        assert_eq!(camel("transfer_to_source_1"), "TransferToSource1");
        assert_eq!(camel("back_to_auto"), "BackToAuto");
        assert_eq!(camel("current_limit"), "CurrentLimit");
    }

    #[test]
    fn write_outcomes_map_to_status_codes() {
        assert_eq!(
            status_of_outcome(&WriteOutcome::Done { read_back: 1.0 }),
            StatusCode::Good
        );
        assert_eq!(status_of_outcome(&WriteOutcome::Timeout), StatusCode::BadTimeout);
        assert_eq!(
            status_of_outcome(&WriteOutcome::NotWritable),
            StatusCode::BadUserAccessDenied
        );
        assert_eq!(
            status_of_outcome(&WriteOutcome::InvalidValue { reason: String::new() }),
            StatusCode::BadOutOfRange
        );
        assert_eq!(
            status_of_outcome(&WriteOutcome::Refused {
                exception: String::new()
            }),
            StatusCode::BadInvalidState
        );
        assert_eq!(
            status_of_outcome(&WriteOutcome::CommFailure { error: String::new() }),
            StatusCode::BadCommunicationError
        );
    }

    #[test]
    fn unece_codes_pack_like_the_spec() {
        // Part 8: UnitId = c1 << 16 | c2 << 8 | c3, e.g. "CEL" = 4408652, "KWH" = 4937544.
        assert_eq!(unece_unit_id("CEL"), 4_408_652);
        assert_eq!(unece_unit_id("KWH"), 4_937_544);
        assert_eq!(unece_unit_id("P1"), 20_529);
        assert_eq!(eu_information(Unit::Volt).unit_id, unece_unit_id("VLT"));
        assert_eq!(eu_information(Unit::None).unit_id, -1);
        // Every unit either has a code or is reported unknown; no two units share a code.
        let mut seen = std::collections::HashSet::new();
        for u in Unit::ALL {
            if let Some(c) = unece_code(*u) {
                assert!(seen.insert(c), "{c} twice");
            }
        }
    }
}
