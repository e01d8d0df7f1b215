//! The BACnet/IP server: the site as one BACnet device ([`objects`]) on a UDP
//! socket, with the busbar-bacnet codec. It answers Who-Is/Who-Has, ReadProperty,
//! ReadPropertyMultiple, WriteProperty (commands travel to the field device and the answer waits
//! for it), SubscribeCOV and SubscribeCOVProperty, pushes COV notifications from the store's
//! change notices, and accepts foreign-device registrations so a BMS on another subnet reaches
//! it (a BBMD without peer BBMDs). Answers longer than the client's APDU leave in segments and
//! segmented requests are put together ([`segments`]). docs/bacnet.md.

mod cov;
mod device;
pub mod ede;
pub mod events;
mod management;
pub mod objects;
pub mod section;
mod segments;
pub mod units;

pub use section::{ApduLimits, Bacnet, BacnetSettings};

use crate::acquisition::{Acquisition, WriteOutcome};
use crate::alarms::Alarms;
use crate::config::Config;
use crate::store::{Notice, Store};
use anyhow::Context;
use busbar_bacnet::apdu::{self, Apdu};
use busbar_bacnet::bvll::{self, Bvll, FdtEntry};
use busbar_bacnet::consts::{
    abort_reason, confirmed, error_class, error_code, property as prop, reject_reason, segmentation, unconfirmed,
};
use busbar_bacnet::npdu::{self, NetAddr};
use busbar_bacnet::request::{self, Request};
use busbar_bacnet::service::{self, PropertyRef, ReadResult, SubscribeCov, WhoHasObject};
use busbar_bacnet::{ObjectId, Value};
use device::device_property_ids;
use objects::{cov_due, expand_special, optional_of, status_flags, ObjectState, ObjectTable, PropError};
use segments::{Answer, SegmentTransactions};
use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Seconds a foreign device registration outlives its TTL (Annex J.5.2.3).
const FDT_GRACE_S: u64 = 30;

/// Where an answer goes: the UDP peer, and the remote network address when a router relayed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Peer {
    addr: SocketAddrV4,
    route: Option<NetAddr>,
}

/// How a request reached us, which decides how a broadcast answer (I-Am, I-Have) is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Unicast,
    Broadcast,
}

#[derive(Debug, Clone)]
struct CovSubscription {
    peer: Peer,
    process_id: u32,
    object: usize,
    property: Option<PropertyRef>,
    increment: Option<f32>,
    confirmed: bool,
    /// `None` = indefinite.
    expires: Option<Instant>,
    /// Last notified (Present_Value, Status_Flags).
    last: Option<(Value, Value)>,
}

/// The object a read is about, with what it is read from.
// One lives on the stack for the duration of a read, never in a collection: no need to box.
#[allow(clippy::large_enum_variant)]
enum Target<'a> {
    Device,
    Point(&'a objects::PointObject, ObjectState, crate::store::Sample),
    /// A Notification Class object (its index).
    Class(usize),
}

/// A confirmed notification waiting for its SimpleAck.
struct Pending {
    peer: SocketAddrV4,
    datagram: Vec<u8>,
    sent: Instant,
    tries: u64,
}

#[derive(Default)]
struct State {
    objects: Vec<ObjectState>,
    subscriptions: Vec<CovSubscription>,
    pending: HashMap<u8, Pending>,
    next_invoke: u8,
    segments: SegmentTransactions,
    events: events::EventState,
    management: management::ManagementState,
}

/// Counters for /metrics and the benchmark.
#[derive(Debug, Default)]
pub struct BacnetStats {
    pub requests: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped: AtomicU64,
    pub notifications: AtomicU64,
    pub subscriptions: AtomicU64,
    pub foreign_devices: AtomicU64,
    pub segmented_answers: AtomicU64,
    pub segmented_requests: AtomicU64,
    pub segment_retries: AtomicU64,
    pub segmented_failures: AtomicU64,
    pub event_transitions: AtomicU64,
    pub event_notifications: AtomicU64,
    pub alarm_acknowledgements: AtomicU64,
    pub communication_controls: AtomicU64,
    pub reinitializations: AtomicU64,
    pub time_synchronizations: AtomicU64,
}

/// The B/IP port every BACnet device of the bridge shares, and the foreign devices registered
/// on it (the BBMD is the bridge's, not one device's).
struct Link {
    socket: UdpSocket,
    fdt: Mutex<HashMap<SocketAddrV4, (u16, Instant)>>,
    /// When the next paced answer of a virtual device may go.
    next_answer: Mutex<Instant>,
}

/// The gap between two paced answers (I-Am, I-Have) of the virtual network's devices.
const ANSWER_PACE: Duration = Duration::from_micros(500);
/// Paced answers wait at most this long; beyond (a flood of Who-Is), answers are dropped.
const ANSWER_BACKLOG: Duration = Duration::from_secs(3);

impl Link {
    /// How long to wait before the next paced answer (zero when none is waiting); `None` when
    /// the backlog is full.
    fn pace(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut next = self.next_answer.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (*next).max(now);
        if slot - now > ANSWER_BACKLOG {
            return None;
        }
        *next = slot + ANSWER_PACE;
        Some(slot - now)
    }
}

/// The virtual network behind the site device: one BACnet device per field device.
struct Router {
    network: u16,
    devices: Vec<Arc<Server>>,
    by_mac: HashMap<Vec<u8>, usize>,
}

/// Every BACnet device of the bridge, and which one serves each point (the one-task-for-all
/// loops route the store's change notices with it).
struct Devices {
    all: Vec<Arc<Server>>,
    by_point: HashMap<crate::store::PointIdx, usize>,
}

impl Devices {
    fn new(all: Vec<Arc<Server>>) -> Devices {
        let by_point = all
            .iter()
            .enumerate()
            .flat_map(|(i, d)| d.table.objects.iter().map(move |o| (o.point, i)))
            .collect();
        Devices { all, by_point }
    }

    fn of_point(&self, p: crate::store::PointIdx) -> Option<&Arc<Server>> {
        self.by_point.get(&p).and_then(|i| self.all.get(*i))
    }
}

/// Which requests of a datagram a device takes: all, or (a local datagram reaching the devices
/// on the virtual network) only I-Am, which binds their event recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    IAmOnly,
}

struct Server {
    table: ObjectTable,
    settings: BacnetSettings,
    store: Arc<Store>,
    acq: Acquisition,
    /// The alarm service, whose alarms the event objects report.
    alarms: Option<Arc<Alarms>>,
    link: Arc<Link>,
    state: Mutex<State>,
    stats: Arc<BacnetStats>,
    /// The site device's: the devices on the virtual network, if the layout has one.
    router: std::sync::OnceLock<Router>,
}

/// A running BACnet server's address and counters.
pub struct BacnetHandle {
    pub local: SocketAddr,
    pub device_instance: u32,
    /// BACnet devices served: 1, or the router's own and one per field device.
    pub devices: usize,
    pub stats: Arc<BacnetStats>,
}

/// Bind the socket and start serving, notifying and expiring; with the alarm service, report
/// its alarms as events.
pub async fn start(
    config: &Config,
    settings: &BacnetSettings,
    store: Arc<Store>,
    acq: Acquisition,
    alarms: Option<Arc<Alarms>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(BacnetHandle, Vec<JoinHandle<()>>)> {
    let std_socket = std::net::UdpSocket::bind(settings.listen)
        .with_context(|| format!("bacnet server: cannot bind UDP {}", settings.listen))?;
    std_socket.set_broadcast(true)?;
    std_socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(std_socket)?;
    let local = socket.local_addr()?;
    let link = Arc::new(Link {
        socket,
        fdt: Mutex::new(HashMap::new()),
        next_answer: Mutex::new(Instant::now()),
    });
    let stats = Arc::new(BacnetStats::default());
    let mut servers: Vec<Arc<Server>> = ObjectTable::layout(config, settings, &store)
        .into_iter()
        .map(|table| {
            let state = State {
                objects: table.objects.iter().map(ObjectState::new).collect(),
                management: management::ManagementState::new(store.clock().wall()),
                ..State::default()
            };
            Arc::new(Server {
                table,
                settings: settings.clone(),
                store: store.clone(),
                acq: acq.clone(),
                alarms: alarms.clone(),
                link: link.clone(),
                state: Mutex::new(state),
                stats: stats.clone(),
                router: std::sync::OnceLock::new(),
            })
        })
        .collect();
    if servers.is_empty() {
        anyhow::bail!("bacnet server: no device to serve");
    }
    let server = servers.remove(0);
    if let Some(network) = settings.virtual_network {
        let by_mac = servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.table.device.route.as_ref().map(|r| (r.mac.clone(), i)))
            .collect();
        let _ = server.router.set(Router {
            network,
            devices: servers.clone(),
            by_mac,
        });
    }
    let all: Vec<Arc<Server>> = std::iter::once(server.clone()).chain(servers.iter().cloned()).collect();
    // Subscribed before any task runs, so no transition made after start is missed.
    let event_feed = match &alarms {
        Some(a) if all.iter().any(|s| !s.table.classes.is_empty()) => {
            for s in all.iter().filter(|s| !s.table.classes.is_empty()) {
                s.init_events(a);
            }
            Some((a.clone(), a.subscribe(), store.subscribe()))
        }
        _ => None,
    };
    let objects: usize = all.iter().map(|s| s.table.objects.len() + s.table.classes.len()).sum();
    let reporting: usize = all
        .iter()
        .map(|s| s.table.objects.iter().filter(|o| o.event.is_some()).count())
        .sum();
    match settings.virtual_network {
        None => tracing::info!(
            "bacnet: device {} `{}` with {objects} objects ({reporting} reporting alarms as events) on udp {local}",
            server.table.device.id.instance,
            server.table.device.name,
        ),
        Some(network) => tracing::info!(
            "bacnet: router device {} `{}` on udp {local}, {} devices on virtual network {network} with {objects} \
             objects ({reporting} reporting alarms as events)",
            server.table.device.id.instance,
            server.table.device.name,
            servers.len(),
        ),
    }
    server.announce_router().await;
    for s in &all {
        s.announce().await;
    }
    let devices = Arc::new(Devices::new(all.clone()));
    let mut tasks = vec![
        tokio::spawn(server.clone().receive(shutdown.clone())),
        tokio::spawn(Server::notify(devices.clone(), shutdown.clone())),
        tokio::spawn(Server::segment_timers(all.clone(), shutdown.clone())),
        tokio::spawn(Server::housekeeping(devices.clone(), shutdown.clone())),
    ];
    if let Some((alarms, transitions, changes)) = event_feed {
        tasks.push(tokio::spawn(Server::events(
            devices,
            alarms,
            transitions,
            changes,
            shutdown,
        )));
    }
    Ok((
        BacnetHandle {
            local,
            device_instance: settings.device_instance,
            devices: all.len(),
            stats,
        },
        tasks,
    ))
}

/// The BACnet error for a write the field device did not take: the one mapping of write
/// outcomes for BACnet.
fn write_error(outcome: &WriteOutcome) -> Option<PropError> {
    match outcome {
        WriteOutcome::Done { .. } => None,
        WriteOutcome::Timeout => Some((error_class::COMMUNICATION, error_code::TIMEOUT)),
        WriteOutcome::CommFailure { .. } => Some((error_class::DEVICE, error_code::OPERATIONAL_PROBLEM)),
        WriteOutcome::Refused { .. } | WriteOutcome::NotWritable => {
            Some((error_class::PROPERTY, error_code::WRITE_ACCESS_DENIED))
        }
        WriteOutcome::InvalidValue { .. } => Some((error_class::PROPERTY, error_code::VALUE_OUT_OF_RANGE)),
    }
}

impl Server {
    /// An APDU wrapped in NPDU and BVLL for a unicast to `peer`, from this device (with its
    /// address on the virtual network, if it is there).
    fn unicast_datagram(&self, peer: &Peer, expecting_reply: bool, apdu: &[u8]) -> Vec<u8> {
        let mut npdu = Vec::with_capacity(apdu.len() + 16);
        npdu::encode_from(
            &mut npdu,
            expecting_reply,
            peer.route.as_ref(),
            self.table.device.route.as_ref(),
        );
        npdu.extend_from_slice(apdu);
        bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &npdu)
    }

    fn fdt(&self) -> MutexGuard<'_, HashMap<SocketAddrV4, (u16, Instant)>> {
        self.link.fdt.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that
        // matters more than stopping the server would; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, to: SocketAddrV4, datagram: &[u8]) {
        if let Err(e) = self.link.socket.send_to(datagram, SocketAddr::V4(to)).await {
            tracing::debug!("bacnet: send to {to} failed: {e}");
        }
    }

    /// Send an unconfirmed APDU to everyone: the local broadcast address and, as
    /// Forwarded-NPDUs, every registered foreign device.
    async fn broadcast(&self, apdu: &[u8]) {
        let mut npdu = Vec::with_capacity(apdu.len() + 8);
        npdu::encode_from(&mut npdu, false, None, self.table.device.route.as_ref());
        npdu.extend_from_slice(apdu);
        self.broadcast_npdu(&npdu).await;
    }

    /// Send an NPDU to the local broadcast address and to every foreign device.
    async fn broadcast_npdu(&self, npdu: &[u8]) {
        self.send(
            self.settings.broadcast,
            &bvll::frame(bvll::function::ORIGINAL_BROADCAST_NPDU, npdu),
        )
        .await;
        let fds: Vec<SocketAddrV4> = self.fdt().keys().copied().collect();
        for fd in fds {
            // The origin a foreign device answers to: our address as it reaches us.
            let forwarded = bvll::forwarded(self.own_toward(fd), npdu);
            self.send(fd, &forwarded).await;
        }
    }

    /// Answer an unconfirmed "who" request the way it came: unicast back, or broadcast.
    async fn answer_unconfirmed(self: &Arc<Self>, peer: &Peer, reach: Reach, apdu: &[u8]) {
        if self.table.device.route.is_some() {
            // The devices of the virtual network answer one Who-Is all at once: paced, so that a
            // BMS's receive buffer takes a thousand I-Ams, without holding up the receive loop.
            let Some(delay) = self.link.pace() else {
                tracing::debug!(
                    "bacnet: answer of {} to {} dropped: too many Who-Is at once",
                    self.table.device.name,
                    peer.addr
                );
                return;
            };
            if !delay.is_zero() {
                let me = self.clone();
                let peer = peer.clone();
                let apdu = apdu.to_vec();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    me.answer_now(&peer, reach, &apdu).await;
                });
                return;
            }
        }
        self.answer_now(peer, reach, apdu).await;
    }

    async fn answer_now(&self, peer: &Peer, reach: Reach, apdu: &[u8]) {
        match reach {
            Reach::Unicast => self.send(peer.addr, &self.unicast_datagram(peer, false, apdu)).await,
            Reach::Broadcast => self.broadcast(apdu).await,
        }
    }

    fn i_am(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(24);
        apdu::unconfirmed_request_header(&mut a, unconfirmed::I_AM);
        service::encode_i_am(
            &mut a,
            self.table.device.id,
            self.settings.apdu.max_length as u32,
            segmentation::SEGMENTED_BOTH,
            self.table.device.vendor_id,
        );
        a
    }

    /// I-Am at start-up, as devices do.
    async fn announce(&self) {
        if !self.may_initiate() {
            return;
        }
        let a = self.i_am();
        self.broadcast(&a).await;
    }

    async fn receive(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, from) = tokio::select! {
                r = self.link.socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!("bacnet: receive failed: {e}");
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let SocketAddr::V4(from) = from else { continue };
            let datagram = buf.get(..n).unwrap_or(&[]).to_vec();
            self.datagram(from, &datagram).await;
        }
    }

    /// One datagram: the BVLL decides where the NPDU came from and who else must see it.
    async fn datagram(self: &Arc<Self>, from: SocketAddrV4, datagram: &[u8]) {
        let msg = match bvll::decode(datagram) {
            Ok(m) => m,
            Err(e) => return self.dropped(from, "BVLL", &e),
        };
        match msg {
            Bvll::OriginalUnicast(n) => self.npdu(from, n, Reach::Unicast).await,
            Bvll::OriginalBroadcast(n) => {
                // Relay a local broadcast to the foreign devices, then handle it.
                if !self.is_own(from) {
                    let fwd = bvll::forwarded(from, n);
                    let fds: Vec<SocketAddrV4> = self.fdt().keys().copied().collect();
                    for fd in fds {
                        self.send(fd, &fwd).await;
                    }
                }
                self.npdu(from, n, Reach::Broadcast).await;
            }
            Bvll::ForwardedNpdu { origin, npdu } => self.npdu(origin, npdu, Reach::Broadcast).await,
            Bvll::DistributeBroadcastToNetwork(n) => {
                let registered = self.fdt().contains_key(&from);
                if !registered {
                    let nak = bvll::result(bvll::result::DISTRIBUTE_BROADCAST_TO_NETWORK_NAK);
                    self.send(from, &nak).await;
                    return;
                }
                let fwd = bvll::forwarded(from, n);
                self.send(self.settings.broadcast, &fwd).await;
                let others: Vec<SocketAddrV4> = self.fdt().keys().copied().filter(|a| *a != from).collect();
                for fd in others {
                    self.send(fd, &fwd).await;
                }
                self.npdu(from, n, Reach::Broadcast).await;
            }
            Bvll::RegisterForeignDevice { ttl } => {
                let code = {
                    let mut fdt = self.fdt();
                    let known = fdt.contains_key(&from);
                    if self.settings.max_foreign_devices == 0
                        || (!known && fdt.len() >= self.settings.max_foreign_devices)
                    {
                        bvll::result::REGISTER_FOREIGN_DEVICE_NAK
                    } else {
                        let lapse = self.store.clock().now() + Duration::from_secs(u64::from(ttl) + FDT_GRACE_S);
                        fdt.insert(from, (ttl, lapse));
                        bvll::result::SUCCESSFUL_COMPLETION
                    }
                };
                if code == bvll::result::SUCCESSFUL_COMPLETION {
                    tracing::info!("bacnet: foreign device {from} registered for {ttl} s");
                } else {
                    tracing::warn!("bacnet: foreign device registration from {from} refused (table full or disabled)");
                }
                self.send(from, &bvll::result(code)).await;
            }
            Bvll::ReadFdt => {
                let now = self.store.clock().now();
                let entries: Vec<FdtEntry> = self
                    .fdt()
                    .iter()
                    .map(|(a, (ttl, lapse))| FdtEntry {
                        address: *a,
                        ttl: *ttl,
                        remaining: lapse.saturating_duration_since(now).as_secs().min(65535) as u16,
                    })
                    .collect();
                self.send(from, &bvll::read_fdt_ack(&entries)).await;
            }
            Bvll::DeleteFdtEntry(a) => {
                let removed = self.fdt().remove(&a).is_some();
                let code = if removed {
                    bvll::result::SUCCESSFUL_COMPLETION
                } else {
                    bvll::result::DELETE_FDT_ENTRY_NAK
                };
                self.send(from, &bvll::result(code)).await;
            }
            Bvll::WriteBdt => self.send(from, &bvll::result(bvll::result::WRITE_BDT_NAK)).await,
            Bvll::ReadBdt => self.send(from, &bvll::read_bdt_ack_empty()).await,
            Bvll::Result(_) | Bvll::Other(_) => {}
        }
    }

    /// Count and log a datagram that could not be decoded (never answered: the sender may not
    /// even be a BACnet device).
    fn dropped(&self, from: SocketAddrV4, layer: &str, e: &busbar_bacnet::tag::DecodeError) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("bacnet: dropped a datagram from {from}: bad {layer}: {e}");
    }

    fn own_v4(&self) -> SocketAddrV4 {
        match self.link.socket.local_addr() {
            Ok(SocketAddr::V4(a)) => a,
            _ => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, self.settings.listen.port()),
        }
    }

    /// Whether a datagram is our own broadcast coming back.
    fn is_own(&self, from: SocketAddrV4) -> bool {
        let own = self.own_v4();
        from.port() == own.port() && (own.ip().is_unspecified() || from.ip() == own.ip())
    }

    /// Our B/IP address as `peer` sees it: the bound address, or with a wildcard bind the local
    /// address the kernel routes toward `peer`.
    fn own_toward(&self, peer: SocketAddrV4) -> SocketAddrV4 {
        let own = self.own_v4();
        if !own.ip().is_unspecified() {
            return own;
        }
        let routed = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|probe| probe.connect(peer).and_then(|()| probe.local_addr()));
        match routed {
            Ok(SocketAddr::V4(a)) => SocketAddrV4::new(*a.ip(), own.port()),
            _ => own,
        }
    }

    async fn npdu(self: &Arc<Self>, from: SocketAddrV4, bytes: &[u8], reach: Reach) {
        let n = match npdu::decode(bytes) {
            Ok(n) => n,
            Err(e) => return self.dropped(from, "NPDU", &e),
        };
        if let Some(t) = n.network_message {
            return self.network_message(from, t, &n).await;
        }
        let router = self.router.get();
        match (&n.destination, router) {
            (None, None) => self.apdu(from, &n, reach, Scope::All).await,
            (None, Some(r)) => {
                self.apdu(from, &n, reach, Scope::All).await;
                for d in &r.devices {
                    d.apdu(from, &n, reach, Scope::IAmOnly).await;
                }
            }
            // A global broadcast, or one on the virtual network, reaches every device there; a
            // client that unicasts it to the router is answered by unicast (as a device answers
            // a unicast Who-Is), one that broadcast it by broadcast.
            (Some(d), _) if d.net == npdu::GLOBAL_BROADCAST => {
                self.apdu(from, &n, reach, Scope::All).await;
                for d in router.map(|r| r.devices.as_slice()).unwrap_or_default() {
                    d.apdu(from, &n, reach, Scope::All).await;
                }
            }
            (Some(d), Some(r)) if d.net == r.network => {
                if d.mac.is_empty() {
                    for v in &r.devices {
                        v.apdu(from, &n, reach, Scope::All).await;
                    }
                } else if let Some(v) = r.by_mac.get(&d.mac).and_then(|i| r.devices.get(*i)) {
                    v.apdu(from, &n, reach, Scope::All).await;
                } else {
                    tracing::debug!("bacnet: no device at {:02x?} on network {} (from {from})", d.mac, d.net);
                }
            }
            // For a network this router does not reach.
            (Some(_), _) => {}
        }
    }

    /// A network layer message: a router answers Who-Is-Router-To-Network for its virtual
    /// network.
    async fn network_message(&self, from: SocketAddrV4, message_type: u8, n: &npdu::Npdu<'_>) {
        let Some(r) = self.router.get() else { return };
        if message_type != npdu::message::WHO_IS_ROUTER_TO_NETWORK || n.destination.is_some() {
            return;
        }
        match npdu::decode_who_is_router(n.apdu) {
            Ok(None) => self.announce_router().await,
            Ok(Some(net)) if net == r.network => self.announce_router().await,
            Ok(Some(_)) => {}
            Err(e) => self.dropped(from, "network message", &e),
        }
    }

    /// I-Am-Router-To-Network for the virtual network, broadcast (at start and when asked).
    async fn announce_router(&self) {
        let Some(r) = self.router.get() else { return };
        let mut npdu = Vec::with_capacity(8);
        npdu::encode_network_message(
            &mut npdu,
            None,
            npdu::message::I_AM_ROUTER_TO_NETWORK,
            &r.network.to_be_bytes(),
        );
        self.broadcast_npdu(&npdu).await;
    }

    /// The application layer of one device: the APDU of a datagram meant for it.
    async fn apdu(self: &Arc<Self>, from: SocketAddrV4, n: &npdu::Npdu<'_>, reach: Reach, scope: Scope) {
        let peer = Peer {
            addr: from,
            route: n.source.clone(),
        };
        let a = match apdu::decode(n.apdu) {
            Ok(a) => a,
            Err(e) => return self.dropped(from, "APDU", &e),
        };
        if scope == Scope::IAmOnly
            && !matches!(
                a,
                Apdu::UnconfirmedRequest {
                    service: unconfirmed::I_AM,
                    ..
                }
            )
        {
            return;
        }
        if self.communication() == busbar_bacnet::management::Communication::Disable
            && !matches!(
                a,
                Apdu::ConfirmedRequest {
                    segmented: false,
                    service: confirmed::DEVICE_COMMUNICATION_CONTROL | confirmed::REINITIALIZE_DEVICE,
                    ..
                }
            )
        {
            // DeviceCommunicationControl DISABLE: silent to everything but the two services
            // that can end it.
            return;
        }
        match a {
            Apdu::UnconfirmedRequest { service, body } => {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.unconfirmed(&peer, reach, service, body).await;
            }
            Apdu::ConfirmedRequest {
                segmented,
                more_follows,
                segmented_response_accepted,
                max_segments,
                max_apdu,
                invoke_id,
                sequence,
                window,
                service,
                body,
            } => {
                if reach == Reach::Broadcast {
                    // Confirmed requests are unicast; a broadcast one is ignored (clause 5.4).
                    return;
                }
                let limits = &self.settings.apdu;
                let to = Answer {
                    peer,
                    invoke_id,
                    max_apdu: max_apdu.min(limits.max_length),
                    max_segments: if segmented_response_accepted {
                        max_segments.unwrap_or(limits.max_segments).min(limits.max_segments)
                    } else {
                        1
                    },
                };
                if segmented {
                    let segment = segments::Segment {
                        sequence,
                        window,
                        more_follows,
                        service,
                        data: body,
                    };
                    if let Some(message) = self.request_segment(&to, segment).await {
                        self.stats.requests.fetch_add(1, Ordering::Relaxed);
                        self.request(to, service, &message).await;
                    }
                    return;
                }
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.request(to, service, body).await;
            }
            Apdu::SegmentAck {
                nak,
                from_server: false,
                invoke_id,
                sequence,
                window,
            } => {
                let peer = peer.clone();
                self.answer_segment_ack(&peer, invoke_id, sequence, window, nak).await;
            }
            Apdu::Abort {
                invoke_id,
                from_server: false,
                ..
            } => {
                // The client gives up a transaction of ours (a segmented answer or request).
                self.state().segments.forget(&peer, invoke_id);
            }
            Apdu::SimpleAck { invoke_id, .. }
            | Apdu::Error { invoke_id, .. }
            | Apdu::Reject { invoke_id, .. }
            | Apdu::Abort { invoke_id, .. } => {
                let mut st = self.state();
                if st.pending.get(&invoke_id).is_some_and(|p| p.peer == from) {
                    st.pending.remove(&invoke_id);
                }
            }
            Apdu::ComplexAck { .. } | Apdu::SegmentAck { .. } => {}
        }
    }

    /// A whole confirmed request (one APDU, or its segments put together).
    async fn request(self: &Arc<Self>, to: Answer, service: u8, body: &[u8]) {
        let invoke_id = to.invoke_id;
        let request = match request::decode_confirmed(service, body) {
            Ok(r) => r,
            Err(e) => {
                let mut out = Vec::new();
                apdu::reject(&mut out, invoke_id, e.reject_reason());
                self.reply(&to, out).await;
                return;
            }
        };
        if let Request::WriteProperty(w) = request {
            // Writes wait for the field device: never hold up the other requests.
            let me = self.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                match me.write(&w).await {
                    Ok(()) => apdu::simple_ack(&mut out, invoke_id, service),
                    Err((class, code)) => apdu::error(&mut out, invoke_id, service, class, code),
                }
                me.reply(&to, out).await;
            });
            return;
        }
        if let Request::AcknowledgeAlarm(a) = request {
            // The acknowledgement waits for the journal: never hold up the other requests.
            let me = self.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                match me.acknowledge(&to.peer, &a).await {
                    Ok(()) => {
                        me.stats.alarm_acknowledgements.fetch_add(1, Ordering::Relaxed);
                        apdu::simple_ack(&mut out, invoke_id, service)
                    }
                    Err((class, code)) => apdu::error(&mut out, invoke_id, service, class, code),
                }
                me.reply(&to, out).await;
            });
            return;
        }
        if let Request::ReinitializeDevice(r) = &request {
            let mut out = Vec::new();
            let restart = match self.reinitialize_check(&to.peer, r) {
                Ok(restart) => {
                    apdu::simple_ack(&mut out, invoke_id, service);
                    restart
                }
                Err((class, code)) => {
                    apdu::error(&mut out, invoke_id, service, class, code);
                    false
                }
            };
            // The acknowledgement goes first, then the device starts over (clause 16.4.1.1.1).
            self.reply(&to, out).await;
            if restart {
                self.reinitialize(&to.peer, r).await;
            }
            return;
        }
        let subscribing = matches!(request, Request::SubscribeCov(_));
        let out = self.confirmed(&to.peer, invoke_id, service, request, to.capacity());
        let acked = out.first().is_some_and(|b| *b >> 4 == 2);
        self.reply(&to, out).await;
        if subscribing && acked {
            // The initial notification follows the acknowledgement (clause 13.14.1.1).
            self.notify_peer_now(&to.peer).await;
        }
    }

    async fn unconfirmed(self: &Arc<Self>, peer: &Peer, reach: Reach, service: u8, body: &[u8]) {
        let me = self.table.device.id.instance;
        if service == unconfirmed::I_AM {
            // Where a device recipient of event notifications is.
            if let Ok(device) = service::decode_i_am(body) {
                self.i_am_from(peer, device).await;
            }
            return;
        }
        match request::decode_unconfirmed(service, body) {
            Ok(Request::WhoIs(w)) if w.matches(me) => {
                let a = self.i_am();
                self.answer_unconfirmed(peer, reach, &a).await;
            }
            Ok(Request::TimeSync(t)) => self.time_sync(peer, &t),
            Ok(Request::WhoHas(w)) => {
                if w.range.is_some_and(|(lo, hi)| me < lo || me > hi) {
                    return;
                }
                let found = match &w.object {
                    WhoHasObject::Id(id) => self.table.named_by_id(*id).map(|(id, n)| (id, n.to_string())),
                    WhoHasObject::Name(n) => self.table.id_by_name(n).map(|id| (id, n.clone())),
                };
                if let Some((id, name)) = found {
                    let mut a = Vec::new();
                    apdu::unconfirmed_request_header(&mut a, unconfirmed::I_HAVE);
                    service::encode_i_have(&mut a, self.table.device.id, id, &name);
                    self.answer_unconfirmed(peer, reach, &a).await;
                }
            }
            // I-Am, I-Have and notifications from others, or malformed: nothing to answer.
            _ => {}
        }
    }

    /// A confirmed request that does not wait for a field device: the complete answer APDU.
    /// `capacity`: the longest answer the client takes, segmented or not.
    fn confirmed(&self, peer: &Peer, invoke_id: u8, service: u8, request: Request, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match request {
            Request::ReadProperty(rp) => match self.read(rp.object, rp.property) {
                Ok(values) => {
                    let id = if self.table.is_device(rp.object) {
                        self.table.device.id
                    } else {
                        rp.object
                    };
                    apdu::complex_ack_header(&mut out, invoke_id, service);
                    service::encode_read_property_ack(&mut out, id, rp.property, &values);
                }
                Err((class, code)) => apdu::error(&mut out, invoke_id, service, class, code),
            },
            Request::ReadPropertyMultiple(specs) => {
                let mut answers: Vec<(ObjectId, Vec<ReadResult>)> = specs
                    .iter()
                    .map(|spec| self.read_multiple(spec.object, &spec.properties))
                    .collect();
                let encode = |out: &mut Vec<u8>, answers: &[(ObjectId, Vec<ReadResult>)]| {
                    out.clear();
                    apdu::complex_ack_header(out, invoke_id, service);
                    for (id, results) in answers {
                        service::encode_read_access_result(out, *id, results);
                    }
                };
                encode(&mut out, &answers);
                if out.len() > capacity {
                    // Too long for the client: the whole Object_List (the usual culprit of an
                    // ALL on the device) becomes an error the client can follow by reading it
                    // element by element; if that is not enough the reply aborts.
                    for (_, results) in &mut answers {
                        for r in results.iter_mut() {
                            if r.property.property == prop::OBJECT_LIST && r.property.index.is_none() {
                                r.result = Err((error_class::SERVICES, error_code::ABORT_SEGMENTATION_NOT_SUPPORTED));
                            }
                        }
                    }
                    encode(&mut out, &answers);
                }
            }
            Request::SubscribeCov(s) => match self.subscribe(peer, s) {
                Ok(()) => apdu::simple_ack(&mut out, invoke_id, service),
                Err((class, code)) => apdu::error(&mut out, invoke_id, service, class, code),
            },
            Request::DeviceCommunicationControl(c) => match self.communication_control(peer, &c) {
                Ok(()) => apdu::simple_ack(&mut out, invoke_id, service),
                Err((class, code)) => apdu::error(&mut out, invoke_id, service, class, code),
            },
            Request::GetEventInformation(last) if !self.table.classes.is_empty() => {
                match self.event_information(last, capacity) {
                    Ok((summaries, more)) => {
                        apdu::complex_ack_header(&mut out, invoke_id, service);
                        busbar_bacnet::event::encode_get_event_information_ack(&mut out, &summaries, more);
                    }
                    Err((class, code)) => apdu::error(&mut out, invoke_id, service, class, code),
                }
            }
            _ => apdu::reject(&mut out, invoke_id, reject_reason::UNRECOGNIZED_SERVICE),
        }
        out
    }

    /// What properties of `object` are read from: the Device object, or a point object with its
    /// sample and state taken once (a ReadPropertyMultiple reads many properties of it).
    fn target(&self, object: ObjectId) -> Result<Target<'_>, PropError> {
        if self.table.is_device(object) {
            return Ok(Target::Device);
        }
        if let Some(c) = self.table.find_class(object) {
            return Ok(Target::Class(c));
        }
        let i = self.table.find(object).ok_or(UNKNOWN_OBJECT)?;
        let o = &self.table.objects[i];
        let sample = self.store.sample(o.point).unwrap_or_default();
        let state = self.state().objects.get(i).cloned().ok_or(UNKNOWN_OBJECT)?;
        Ok(Target::Point(o, state, sample))
    }

    fn read_from(&self, t: &Target<'_>, p: PropertyRef) -> Result<Vec<Value>, PropError> {
        match t {
            Target::Device => {
                let restart = self.state().management.restart;
                self.table.read_device(p, self.store.clock().wall(), restart)
            }
            Target::Point(o, state, sample) => o.read(state, sample, p),
            Target::Class(c) => self.read_class(*c, p),
        }
    }

    /// One property of one object.
    fn read(&self, object: ObjectId, p: PropertyRef) -> Result<Vec<Value>, PropError> {
        self.read_from(&self.target(object)?, p)
    }

    /// The results of one ReadPropertyMultiple access spec, ALL / REQUIRED / OPTIONAL expanded.
    fn read_multiple(&self, object: ObjectId, props: &[PropertyRef]) -> (ObjectId, Vec<ReadResult>) {
        let t = match self.target(object) {
            Ok(t) => t,
            Err(e) => {
                let results = props
                    .iter()
                    .map(|p| ReadResult {
                        property: *p,
                        result: Err(e),
                    })
                    .collect();
                return (object, results);
            }
        };
        let (id, all, optional) = match &t {
            Target::Device => (self.table.device.id, device_property_ids(), optional_of(None)),
            Target::Point(o, _, _) => (o.id, o.property_ids(), optional_of(Some(o))),
            Target::Class(c) => (
                self.table.classes[*c].id,
                events::NotificationClass::property_ids(),
                &objects::CLASS_OPTIONAL[..],
            ),
        };
        let mut results = Vec::with_capacity(props.len());
        for p in props {
            match expand_special(p.property, &all, optional) {
                Some(list) => results.extend(list.into_iter().map(|property| {
                    let pr = PropertyRef { property, index: None };
                    ReadResult {
                        property: pr,
                        result: self.read_from(&t, pr),
                    }
                })),
                None => results.push(ReadResult {
                    property: *p,
                    result: self.read_from(&t, *p),
                }),
            }
        }
        (id, results)
    }

    /// WriteProperty: Present_Value of a commandable object (through the priority array, to
    /// the field device) or COV_Increment.
    async fn write(&self, w: &service::WriteProperty) -> Result<(), PropError> {
        let denied = (error_class::PROPERTY, error_code::WRITE_ACCESS_DENIED);
        if self.table.is_device(w.object) {
            return Err(denied);
        }
        if let Some(c) = self.table.find_class(w.object) {
            return self.write_class(c, w).await;
        }
        let i = self.table.find(w.object).ok_or(UNKNOWN_OBJECT)?;
        let o = &self.table.objects[i];
        if !o.has_property(w.property.property) {
            return Err((error_class::PROPERTY, error_code::UNKNOWN_PROPERTY));
        }
        let [value] = w.value.as_slice() else {
            return Err((error_class::PROPERTY, error_code::INVALID_DATA_TYPE));
        };
        match w.property.property {
            prop::COV_INCREMENT => {
                let Value::Real(c) = value else {
                    return Err((error_class::PROPERTY, error_code::INVALID_DATA_TYPE));
                };
                if !c.is_finite() || *c < 0.0 {
                    return Err((error_class::PROPERTY, error_code::VALUE_OUT_OF_RANGE));
                }
                if let Some(s) = self.state().objects.get_mut(i) {
                    s.cov_increment = *c;
                }
                Ok(())
            }
            prop::PRESENT_VALUE if o.class.commandable() => {
                if w.property.index.is_some() {
                    return Err((error_class::PROPERTY, error_code::PROPERTY_IS_NOT_AN_ARRAY));
                }
                let priority = usize::from(w.priority.unwrap_or(16));
                if priority == 6 {
                    // Reserved for minimum on/off time (clause 19.2.1.1).
                    return Err(denied);
                }
                let command = match value {
                    Value::Null => None,
                    v => Some(o.device_value(v)?),
                };
                let (before, after) = {
                    let st = self.state();
                    let s = st.objects.get(i).ok_or(UNKNOWN_OBJECT)?;
                    let mut next = s.clone();
                    next.priority[priority - 1] = command;
                    (s.active(), next.active())
                };
                // The device is written when the winning command changes to a value; when the
                // last command is relinquished the device keeps what it has.
                if let Some((_, v)) = after.filter(|a| Some(a.1) != before.map(|b| b.1)) {
                    let outcome = self.acq.write(o.point, v).await;
                    if let Some(err) = write_error(&outcome) {
                        tracing::warn!(
                            "bacnet: write of {v} to {} (priority {priority}) failed: {outcome:?}",
                            o.name
                        );
                        return Err(err);
                    }
                    tracing::info!("bacnet: {} commanded to {v} at priority {priority}", o.name);
                }
                if let Some(s) = self.state().objects.get_mut(i) {
                    s.priority[priority - 1] = command;
                }
                Ok(())
            }
            _ => Err(denied),
        }
    }
}

const UNKNOWN_OBJECT: PropError = (error_class::OBJECT, error_code::UNKNOWN_OBJECT);
