//! The SNMP agent (async-snmp): the system group and BUSBAR-MIB ([`mib`]) over the
//! store, v2c communities bound to source networks, v3 USM users (SHA-256, AES-128) with VACM
//! views, SETs that travel to the field device, the alarm table and acknowledgement by SET, a
//! persisted engine id and boot counter, and notifications: coldStart, device communication
//! lost / restored, alarm raised / cleared / acknowledged (v2c traps, v3 informs retried until
//! acknowledged). docs/snmp.md.

pub mod mib;
pub mod mib_text;
pub mod section;
pub mod tables;

pub use section::{Cidr, Snmp, SnmpAccess, SnmpCommunity, SnmpSettings, SnmpUser};

use crate::acquisition::{Acquisition, WriteOutcome};
use crate::alarms::{Action, ActionError, Actor, AlarmError, Alarms, Kind, Transition};
use crate::config::Config;
use crate::store::Store;
use anyhow::Context;
use async_snmp::agent::{Agent, SecurityModel, VacmBuilder};
use async_snmp::{
    AuthProtocol, AuthoritativeEngine, BoxFuture, ClientBuilder, GetNextResult, GetResult, HandlerResult, MibHandler,
    NotificationSinkId, Oid, PersistedAuthoritativeEngine, PreparedSet, PrivProtocol, RequestContext, SecurityLevel,
    SecurityName, SetCommitError, SetCommitResult, SetTestError, SetTestResult, SetUndoError, SetUndoResult, UsmConfig,
    Value, VarBind,
};
use bytes::Bytes;
use mib::{Cell, Mib, TRAP_COMM_LOST, TRAP_COMM_RESTORED};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];
const COLD_START: [u32; 10] = [1, 3, 6, 1, 6, 3, 1, 1, 5, 1];

/// A running agent.
pub struct SnmpHandle {
    pub local: SocketAddr,
    pub engine_id: Vec<u8>,
    pub engine_boots: u32,
}

fn oid(arcs: &[u32]) -> Oid {
    Oid::from_slice(arcs)
}

fn snmp_value(c: Cell) -> Value {
    match c {
        Cell::Text(t) => Value::OctetString(Bytes::from(t.into_bytes())),
        Cell::Int(i) => Value::Integer(i),
        Cell::Counter(c) => Value::Counter32(c),
    }
}

/// Whether a v2c request's community may be used from its source address.
fn community_allowed(communities: &[SnmpCommunity], ctx: &RequestContext) -> bool {
    match ctx.security_name() {
        SecurityName::Community(c) => communities
            .iter()
            .find(|x| x.name.as_bytes() == c.as_bytes())
            .is_some_and(|x| x.sources.iter().any(|n| n.contains(ctx.source().ip()))),
        _ => true,
    }
}

/// The system group (RFC 3418) from the config and the running process.
struct SystemGroup {
    descr: String,
    object_id: Vec<u32>,
    contact: String,
    name: String,
    location: String,
    started: Instant,
    communities: Vec<SnmpCommunity>,
}

impl SystemGroup {
    fn values(&self) -> Vec<(Vec<u32>, Value)> {
        let text = |s: &str| Value::OctetString(Bytes::from(s.as_bytes().to_vec()));
        let ticks = (self.started.elapsed().as_millis() / 10).min(u128::from(u32::MAX)) as u32;
        let at = |n: u32| {
            let mut o = SYSTEM.to_vec();
            o.extend_from_slice(&[n, 0]);
            o
        };
        vec![
            (at(1), text(&self.descr)),
            (at(2), Value::ObjectIdentifier(oid(&self.object_id))),
            (at(3), Value::TimeTicks(ticks)),
            (at(4), text(&self.contact)),
            (at(5), text(&self.name)),
            (at(6), text(&self.location)),
            (at(7), Value::Integer(72)),
        ]
    }
}

impl MibHandler for SystemGroup {
    fn get<'a>(&'a self, ctx: &'a RequestContext, o: &'a Oid) -> BoxFuture<'a, HandlerResult<GetResult>> {
        Box::pin(async move {
            if !community_allowed(&self.communities, ctx) {
                return Ok(GetResult::NoSuchObject);
            }
            let arcs = o.arcs();
            Ok(match self.values().into_iter().find(|(k, _)| k == arcs) {
                Some((_, v)) => GetResult::Value(v),
                None if arcs.len() == SYSTEM.len() + 2 && arcs[SYSTEM.len()] <= 7 => GetResult::NoSuchInstance,
                None => GetResult::NoSuchObject,
            })
        })
    }

    fn get_next<'a>(&'a self, ctx: &'a RequestContext, o: &'a Oid) -> BoxFuture<'a, HandlerResult<GetNextResult>> {
        Box::pin(async move {
            if !community_allowed(&self.communities, ctx) {
                return Ok(GetNextResult::EndOfMibView);
            }
            let arcs = o.arcs();
            Ok(match self.values().into_iter().find(|(k, _)| k.as_slice() > arcs) {
                Some((k, v)) => GetNextResult::Value(VarBind::new(oid(&k), v)),
                None => GetNextResult::EndOfMibView,
            })
        })
    }
}

/// BUSBAR-MIB over the store.
struct BusbarMib {
    mib: Mib,
    acq: Acquisition,
    writes_enabled: bool,
    communities: Vec<SnmpCommunity>,
}

impl MibHandler for BusbarMib {
    fn get<'a>(&'a self, ctx: &'a RequestContext, o: &'a Oid) -> BoxFuture<'a, HandlerResult<GetResult>> {
        Box::pin(async move {
            if !community_allowed(&self.communities, ctx) {
                return Ok(GetResult::NoSuchObject);
            }
            let arcs = o.arcs();
            Ok(match self.mib.get(arcs) {
                Some(c) => GetResult::Value(snmp_value(c)),
                None if Mib::column_syntax(arcs, &self.mib.root).is_some() => GetResult::NoSuchInstance,
                None => GetResult::NoSuchObject,
            })
        })
    }

    fn get_next<'a>(&'a self, ctx: &'a RequestContext, o: &'a Oid) -> BoxFuture<'a, HandlerResult<GetNextResult>> {
        Box::pin(async move {
            if !community_allowed(&self.communities, ctx) {
                return Ok(GetNextResult::EndOfMibView);
            }
            Ok(match self.mib.next(o.arcs()) {
                Some((k, c)) => GetNextResult::Value(VarBind::new(oid(&k), snmp_value(c))),
                None => GetNextResult::EndOfMibView,
            })
        })
    }

    fn test_set<'a>(&'a self, ctx: &'a RequestContext, o: &'a Oid, value: &'a Value) -> BoxFuture<'a, SetTestResult> {
        Box::pin(async move {
            if !community_allowed(&self.communities, ctx) {
                return Err(SetTestError::NoAccess);
            }
            if let Some(alarm) = self.mib.alarm_to_acknowledge(o.arcs()) {
                return acknowledge_test(&self.mib, ctx, alarm, value);
            }
            let Some((point, scale)) = self.mib.writable_point(o.arcs()) else {
                return Err(if self.mib.get(o.arcs()).is_some() {
                    SetTestError::NotWritable
                } else {
                    SetTestError::NoCreation
                });
            };
            let writable = self.writes_enabled && self.mib.store.meta(point).is_some_and(|m| m.writable);
            if !writable {
                return Err(SetTestError::NotWritable);
            }
            let Value::Integer(raw) = value else {
                return Err(SetTestError::WrongType);
            };
            let engineering = f64::from(*raw) * 10f64.powi(scale);
            if !self.acq.accepts(point, engineering) {
                return Err(SetTestError::WrongValue);
            }
            let previous = self
                .mib
                .store
                .sample(point)
                .and_then(|s| s.value)
                .and_then(|v| v.as_f64());
            Ok(Box::new(DeviceWrite {
                acq: self.acq.clone(),
                point,
                value: engineering,
                previous,
                id: self.mib.store.meta(point).map(|m| m.id.clone()).unwrap_or_default(),
                written: false,
            }) as Box<dyn PreparedSet>)
        })
    }
}

/// Who a request comes from, as the journal names them: the v3 user, or `community <name>`.
fn requester(ctx: &RequestContext) -> String {
    match ctx.security_name() {
        SecurityName::Community(c) => format!("community {}", String::from_utf8_lossy(c.as_bytes())),
        SecurityName::Usm(u) => String::from_utf8_lossy(u).into_owned(),
    }
}

/// A SET of busbarAlarmAckState: true(1) acknowledges; anything else is refused.
fn acknowledge_test(mib: &Mib, ctx: &RequestContext, alarm: crate::alarms::AlarmView, value: &Value) -> SetTestResult {
    let Value::Integer(v) = value else {
        return Err(SetTestError::WrongType);
    };
    if *v != 1 {
        // false(2) cannot be set: an acknowledgement is not taken back.
        return Err(SetTestError::WrongValue);
    }
    let Some(alarms) = mib.alarms.clone() else {
        return Err(SetTestError::NotWritable);
    };
    Ok(Box::new(AlarmAcknowledge {
        alarms,
        id: alarm.id,
        user: requester(ctx),
    }) as Box<dyn PreparedSet>)
}

/// An acknowledgement by SET, committed through the alarm service (journaled, then announced).
struct AlarmAcknowledge {
    alarms: Arc<Alarms>,
    id: String,
    user: String,
}

impl PreparedSet for AlarmAcknowledge {
    fn commit<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a Oid,
        _v: &'a Value,
    ) -> BoxFuture<'a, SetCommitResult> {
        Box::pin(async move {
            let actor = Actor {
                user: self.user.clone(),
                via: "snmp".into(),
                comment: String::new(),
            };
            match self.alarms.act(&self.id, Action::Acknowledge, actor).await {
                Ok(_) => {
                    tracing::info!(alarm = %self.id, user = %self.user, "snmp: alarm acknowledged");
                    Ok(())
                }
                // Acknowledged meanwhile: the manager's wish holds.
                Err(AlarmError::Action(ActionError::Already(..))) => Ok(()),
                Err(e) => {
                    tracing::warn!(alarm = %self.id, "snmp: acknowledging failed: {e}");
                    Err(SetCommitError::Failed)
                }
            }
        })
    }

    fn undo<'a>(&'a mut self, _ctx: &'a RequestContext, _oid: &'a Oid, _v: &'a Value) -> BoxFuture<'a, SetUndoResult> {
        // An acknowledgement is journaled and announced: it cannot be taken back.
        Box::pin(async { Err(SetUndoError::Failed) })
    }
}

/// A SET of one point, committed by writing the field device.
struct DeviceWrite {
    acq: Acquisition,
    point: u32,
    value: f64,
    previous: Option<f64>,
    id: String,
    /// The device took the value (so an undo has something to undo).
    written: bool,
}

impl PreparedSet for DeviceWrite {
    fn commit<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a Oid,
        _v: &'a Value,
    ) -> BoxFuture<'a, SetCommitResult> {
        Box::pin(async move {
            match self.acq.write(self.point, self.value).await {
                WriteOutcome::Done { .. } => {
                    tracing::info!(point = %self.id, value = self.value, "snmp: set done");
                    self.written = true;
                    Ok(())
                }
                other => {
                    tracing::warn!(point = %self.id, value = self.value, "snmp: set failed: {other:?}");
                    Err(SetCommitError::Failed)
                }
            }
        })
    }

    fn undo<'a>(&'a mut self, _ctx: &'a RequestContext, _oid: &'a Oid, _v: &'a Value) -> BoxFuture<'a, SetUndoResult> {
        Box::pin(async move {
            // Another varbind of the same SET failed: put the previous value back. A write the
            // device never took has nothing to undo.
            if !self.written {
                return Ok(());
            }
            match self.previous {
                Some(p) => match self.acq.write(self.point, p).await {
                    WriteOutcome::Done { .. } => Ok(()),
                    _ => Err(SetUndoError::Failed),
                },
                None => Err(SetUndoError::Failed),
            }
        })
    }
}

/// The engine id and boot counter, kept in `<state_dir>/snmp-engine` as `hex boots`.
fn engine(state_dir: &Path) -> anyhow::Result<AuthoritativeEngine> {
    std::fs::create_dir_all(state_dir).with_context(|| format!("snmp: cannot create {}", state_dir.display()))?;
    let file: PathBuf = state_dir.join("snmp-engine");
    let persist_to = file.clone();
    let persist = move |e: &PersistedAuthoritativeEngine| -> std::io::Result<()> {
        let hex: String = e.engine_id().iter().map(|b| format!("{b:02x}")).collect();
        let tmp = persist_to.with_extension("tmp");
        std::fs::write(&tmp, format!("{hex} {}\n", e.engine_boots()))?;
        std::fs::rename(&tmp, &persist_to)
    };
    let previous = std::fs::read_to_string(&file).ok().and_then(|t| {
        let (hex, boots) = t.trim().split_once(' ')?;
        let id: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect();
        PersistedAuthoritativeEngine::new(id?, boots.parse().ok()?).ok()
    });
    Ok(match previous {
        Some(p) => AuthoritativeEngine::restart(p, persist)?,
        None => AuthoritativeEngine::install(async_snmp::generate_engine_id()?, persist)?,
    })
}

fn usm(u: &SnmpUser) -> anyhow::Result<UsmConfig> {
    let c = UsmConfig::new(u.name.clone());
    Ok(match &u.priv_key {
        Some(p) => c.auth_priv(
            AuthProtocol::Sha256,
            u.auth_key.clone(),
            PrivProtocol::Aes128,
            p.clone(),
        )?,
        None => c.auth(AuthProtocol::Sha256, u.auth_key.clone())?,
    })
}

/// The views: default = the system group and the Busbar root; write = busbarPointValue and
/// busbarAlarmAckState only.
fn vacm(v: VacmBuilder, s: &SnmpSettings) -> VacmBuilder {
    let default_view = [SYSTEM.to_vec(), s.root.clone()];
    let mut point_value = s.root.clone();
    point_value.extend_from_slice(&[mib::OBJECTS, mib::POINT_TABLE, 1, 4]);
    let mut acknowledged = s.root.clone();
    acknowledged.extend_from_slice(&[mib::OBJECTS, mib::ALARM_TABLE, 1, mib::ALARM_ACKNOWLEDGED]);
    // Notifications we send (coldStart, ours) and their varbinds.
    let mut v = v
        .view("busbar-write", |w| {
            w.include(oid(&point_value)).include(oid(&acknowledged))
        })
        .view("busbar-notify", |w| w.include(oid(&[1, 3, 6, 1])));
    let add = |v: VacmBuilder,
               name: &str,
               model: SecurityModel,
               level: SecurityLevel,
               view: &[Vec<u32>],
               access: SnmpAccess| {
        let group = format!("g-{name}");
        let read = format!("r-{name}");
        let subtrees: Vec<Vec<u32>> = if view.is_empty() {
            default_view.to_vec()
        } else {
            view.to_vec()
        };
        v.group(name.as_bytes().to_vec(), model, group.as_bytes().to_vec())
            .view(read.as_bytes().to_vec(), |mut w| {
                for t in &subtrees {
                    w = w.include(oid(t));
                }
                w
            })
            .access(group.as_bytes().to_vec(), model, level, |a| {
                let a = a.read_view(read.as_bytes().to_vec()).notify_view("busbar-notify");
                if access == SnmpAccess::Write {
                    a.write_view("busbar-write")
                } else {
                    a
                }
            })
    };
    for c in &s.communities {
        v = add(
            v,
            &c.name,
            SecurityModel::V2c,
            SecurityLevel::NoAuthNoPriv,
            &c.view,
            c.access,
        );
    }
    // Trap communities that are not also request communities: notify access only.
    let mut notify_only: Vec<&str> = s
        .traps
        .iter()
        .map(|(_, c)| c.as_str())
        .filter(|c| !s.communities.iter().any(|x| x.name == *c))
        .collect();
    notify_only.sort_unstable();
    notify_only.dedup();
    for c in notify_only {
        let group = format!("n-{c}");
        v = v
            .group(c.as_bytes().to_vec(), SecurityModel::V2c, group.as_bytes().to_vec())
            .access(
                group.as_bytes().to_vec(),
                SecurityModel::V2c,
                SecurityLevel::NoAuthNoPriv,
                |a| a.notify_view("busbar-notify"),
            );
    }
    for u in &s.users {
        let level = if u.priv_key.is_some() {
            SecurityLevel::AuthPriv
        } else {
            SecurityLevel::AuthNoPriv
        };
        v = add(v, &u.name, SecurityModel::Usm, level, &u.view, u.access);
    }
    v
}

/// Bind the agent and start serving and notifying.
pub async fn start(
    config: &Config,
    s: &SnmpSettings,
    store: Arc<Store>,
    acq: Acquisition,
    alarms: Option<Arc<Alarms>>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SnmpHandle, Vec<JoinHandle<()>>)> {
    let engine = engine(&s.state_dir)?;
    let engine_id = engine.engine_id().to_vec();
    let engine_boots = engine.engine_boots();
    let mut object_id = s.root.clone();
    object_id.push(mib::OBJECTS);
    let system = Arc::new(SystemGroup {
        descr: format!(
            "Busbar {} protocol bridge, site {}",
            env!("CARGO_PKG_VERSION"),
            config.site_name
        ),
        object_id: s.root.clone(),
        contact: s.contact.clone(),
        name: config.site_name.clone(),
        location: s.location.clone(),
        started: Instant::now(),
        communities: s.communities.clone(),
    });
    let mib = Arc::new(BusbarMib {
        mib: Mib::build(config, &s.root, store.clone(), alarms.clone()),
        acq,
        writes_enabled: config.writes_enabled,
        communities: s.communities.clone(),
    });
    let mut b = Agent::builder()
        .bind(s.listen.to_string())
        .authoritative_engine(engine)
        .handler(oid(&SYSTEM), system.clone())
        .handler(oid(&s.root), mib.clone())
        .vacm(|v| vacm(v, s));
    for c in &s.communities {
        b = b.community(c.name.as_bytes().to_vec());
    }
    for u in &s.users {
        let (auth, privacy) = (u.auth_key.clone(), u.priv_key.clone());
        b = b.usm_user(u.name.as_bytes().to_vec(), move |x| match &privacy {
            Some(p) => x.auth_priv(
                AuthProtocol::Sha256,
                auth.as_bytes(),
                PrivProtocol::Aes128,
                p.as_bytes(),
            ),
            None => x.auth(AuthProtocol::Sha256, auth.as_bytes()),
        })?;
    }
    for (i, (target, community)) in s.traps.iter().enumerate() {
        let id = NotificationSinkId::new(format!("trap{i}")).map_err(|e| anyhow::anyhow!("{e}"))?;
        b = b.trap_sink(id, target.clone(), async_snmp::Auth::v2c(community.as_str()));
    }
    let agent = Arc::new(
        b.build()
            .await
            .map_err(|e| anyhow::anyhow!("snmp agent on {}: {e}", s.listen))?,
    );
    let local = agent.local_addr();
    let mut informers = Vec::new();
    for (target, user) in &s.informs {
        let client = ClientBuilder::new(usm(user)?)
            .target(target.as_str())
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("snmp inform target {target}: {e}"))?;
        informers.push((target.clone(), Arc::new(client)));
    }
    tracing::info!(
        "snmp: agent on udp {local}, root {}, engine boots {engine_boots}",
        s.root.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
    );
    let mut tasks = Vec::new();
    let runner = agent.clone();
    let mut stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        tokio::select! {
            r = runner.run() => if let Err(e) = r { tracing::error!("snmp agent stopped: {e}") },
            _ = stop.changed() => runner.cancel(),
        }
    }));
    // Notifications: coldStart now, then device communication changes.
    let notifier = Notifier {
        agent: agent.clone(),
        informers,
        started: Instant::now(),
        root: s.root.clone(),
    };
    let notifier = Arc::new(notifier);
    if let Some(a) = &alarms {
        tasks.push(tokio::spawn(notify_alarms(
            notifier.clone(),
            a.subscribe(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(async move {
        notifier.send(&COLD_START, Vec::new()).await;
        let mut online: Vec<Option<bool>> = vec![None; store.device_count()];
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for (d, last) in online.iter_mut().enumerate() {
                let now = store.status(d).map(|s| (s.online, s.polls > 0));
                let Some((is_online, polled)) = now else { continue };
                if !polled {
                    continue;
                }
                let changed = last.is_some_and(|l| l != is_online);
                // The first poll result is no change; a device that starts offline is reported.
                let first_offline = last.is_none() && !is_online;
                *last = Some(is_online);
                if changed || first_offline {
                    let trap = if is_online { TRAP_COMM_RESTORED } else { TRAP_COMM_LOST };
                    let mut t = notifier.root.clone();
                    t.extend_from_slice(&[mib::NOTIFICATIONS, trap]);
                    let column = |c: u32| {
                        let mut o = notifier.root.clone();
                        o.extend_from_slice(&[mib::OBJECTS, mib::DEVICE_TABLE, 1, c, d as u32 + 1]);
                        oid(&o)
                    };
                    let name = store.device_name(d).to_string();
                    tracing::info!(device = %name, online = is_online, "snmp: notifying communication change");
                    let varbinds = vec![
                        VarBind::new(column(2), Value::OctetString(Bytes::from(name.into_bytes()))),
                        VarBind::new(column(5), Value::Integer(if is_online { 1 } else { 2 })),
                    ];
                    notifier.send(&t, varbinds).await;
                }
            }
        }
    }));
    Ok((
        SnmpHandle {
            local,
            engine_id,
            engine_boots,
        },
        tasks,
    ))
}

/// Alarm transitions as busbarAlarmRaised / Cleared / Acknowledged (v2c traps and v3 informs,
/// like every notification of the agent).
async fn notify_alarms(
    notifier: Arc<Notifier>,
    mut rx: broadcast::Receiver<Transition>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let t = tokio::select! {
            t = rx.recv() => t,
            _ = shutdown.changed() => return,
        };
        let t = match t {
            Ok(t) => t,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("snmp: {n} alarm transitions came too fast to be notified (they are in the journal)");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let trap = match t.kind {
            Kind::Raised => mib::TRAP_ALARM_RAISED,
            Kind::Cleared => mib::TRAP_ALARM_CLEARED,
            Kind::Acknowledged => mib::TRAP_ALARM_ACKNOWLEDGED,
            _ => continue,
        };
        let mut trap_oid = notifier.root.clone();
        trap_oid.extend_from_slice(&[mib::NOTIFICATIONS, trap]);
        let object = |arc: u32| {
            let mut o = notifier.root.clone();
            o.extend_from_slice(&[mib::OBJECTS, mib::ALARM_EVENT, arc, 0]);
            oid(&o)
        };
        let text = |s: &str| Value::OctetString(Bytes::from(s.as_bytes().to_vec()));
        let varbinds = vec![
            VarBind::new(object(1), text(&t.alarm)),
            VarBind::new(object(2), text(&t.device)),
            VarBind::new(object(3), Value::Integer(i32::from(t.severity.number()))),
            VarBind::new(object(4), text(&t.message)),
            VarBind::new(object(5), text(&t.actor.user)),
            VarBind::new(object(6), text(&busbar_core::time::rfc3339(t.time))),
        ];
        tracing::info!(alarm = %t.alarm, kind = t.kind.as_str(), "snmp: notifying an alarm transition");
        notifier.send(&trap_oid, varbinds).await;
    }
}

struct Notifier {
    agent: Arc<Agent>,
    informers: Vec<(String, Arc<async_snmp::UdpClient>)>,
    started: Instant,
    root: Vec<u32>,
}

impl Notifier {
    /// A v2c trap to every trap target, and a v3 inform to every inform target, retried with
    /// backoff until acknowledged (for up to an hour).
    async fn send(&self, trap: &[u32], varbinds: Vec<VarBind>) {
        let uptime = (self.started.elapsed().as_millis() / 10).min(u128::from(u32::MAX)) as u32;
        let trap_oid = oid(trap);
        self.agent
            .send_trap_best_effort(&trap_oid, uptime, varbinds.clone())
            .await;
        for (target, client) in &self.informers {
            tracing::debug!("snmp: inform to {target}");
            let (target, client, trap_oid, varbinds) =
                (target.clone(), client.clone(), trap_oid.clone(), varbinds.clone());
            tokio::spawn(async move {
                let mut wait = Duration::from_secs(1);
                let give_up = Instant::now() + Duration::from_secs(3600);
                loop {
                    match client.send_inform(&trap_oid, uptime, varbinds.clone()).await {
                        Ok(()) => {
                            tracing::debug!("snmp: inform to {target} acknowledged");
                            return;
                        }
                        Err(e) if Instant::now() < give_up => {
                            tracing::warn!("snmp: inform to {target} not acknowledged ({e}); retrying in {wait:?}");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(60));
                        }
                        Err(e) => {
                            tracing::error!("snmp: inform to {target} given up after an hour: {e}");
                            return;
                        }
                    }
                }
            });
        }
    }
}
