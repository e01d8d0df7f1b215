//! Alarms as BACnet events (clause 13, intrinsic reporting): one Notification Class object per
//! severity, the event properties of the objects that have alarm rules or device alarm states,
//! their Event_State derived from the alarm engine (the limits and states of its alarms) and
//! from Reliability (FAULT), EventNotifications to the recipients of each class, confirmed ones
//! retried like COV, AcknowledgeAlarm into the engine and its journal, and GetEventInformation.
//!
//! The engine owns the alarms: this module never decides that a value is in alarm, it shows
//! what the engine decided. Only FAULT is its own, since Reliability is a BACnet notion.

use super::objects::{array, fault_of, property_list, ObjectClass, IDENTITY, UNKNOWN_PROPERTY};
use super::*;
use crate::alarms::{Action, ActionError, AlarmError, AlarmView, Alarms, Level, Severity, Transition};
use busbar_bacnet::consts::{event_state, notify_type, object_type};
use busbar_bacnet::event::{
    self as ev, AcknowledgeAlarm, Destination, EventNotification, EventSummary, EventValues, PropertyState, Recipient,
    TimeStamp, Transition as Edge,
};
use busbar_core::profile::Kind;
use busbar_core::time::civil;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// Destinations one Notification Class keeps at most.
pub const MAX_RECIPIENTS: usize = 32;

/// Notifications waiting for their device recipients' I-Am, at most.
const MAX_UNBOUND: usize = 1024;

/// One Notification Class object: the class of every event object whose worst alarm has its
/// severity.
#[derive(Debug, Clone)]
pub struct NotificationClass {
    pub id: ObjectId,
    pub severity: Severity,
    pub name: String,
    /// Priorities of to-offnormal, to-fault, to-normal notifications (lower is more urgent).
    pub priority: [u8; 3],
    /// Which transitions need an acknowledgement.
    pub ack_required: [bool; 3],
}

impl NotificationClass {
    /// Instances 1 (info) to 5 (critical). Priorities follow the bands of the standard's
    /// priority table: critical alarms in "property safety", major and minor "supervisory",
    /// warnings and information "trouble" and below; faults are trouble; returns to normal low.
    pub fn all() -> Vec<NotificationClass> {
        Severity::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let offnormal = match s {
                    Severity::Critical => 40,
                    Severity::Major => 70,
                    Severity::Minor => 90,
                    Severity::Warning => 120,
                    Severity::Info => 200,
                };
                NotificationClass {
                    id: ObjectId::new(object_type::NOTIFICATION_CLASS, i as u32 + 1),
                    severity: *s,
                    name: format!("alarms.{}", s.as_str()),
                    priority: [offnormal, offnormal.max(100), 200],
                    ack_required: [*s >= Severity::Warning, true, false],
                }
            })
            .collect()
    }

    /// The class of a severity (index into [`NotificationClass::all`]).
    pub fn index_of(severity: Severity) -> usize {
        Severity::ALL.iter().position(|s| *s == severity).unwrap_or(0)
    }

    pub fn description(&self) -> String {
        format!("alarms of severity {} (busbar alarm engine)", self.severity.as_str())
    }

    pub fn property_ids() -> Vec<u32> {
        let mut ids = IDENTITY.to_vec();
        ids.extend_from_slice(&[
            prop::NOTIFICATION_CLASS,
            prop::PRIORITY,
            prop::ACK_REQUIRED,
            prop::RECIPIENT_LIST,
            prop::DESCRIPTION,
        ]);
        ids
    }
}

/// How an event object's alarms read in BACnet terms (the event algorithm).
#[derive(Debug, Clone, PartialEq)]
pub enum Algorithm {
    /// Threshold rules on an analog point: the first rule's limits.
    OutOfRange {
        high: Option<f64>,
        low: Option<f64>,
        deadband: f64,
    },
    /// Device states of a binary or multi-state point: the raw values in alarm.
    ChangeOfState { alarm_raw: Vec<i64> },
    /// Device states of an alarm word.
    ChangeOfBitstring,
}

/// What an event-initiating object reports, from the alarm settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDef {
    /// Index of its Notification Class.
    pub class: usize,
    pub algorithm: Algorithm,
    pub time_delay_s: u64,
    pub time_delay_normal_s: u64,
}

impl EventDef {
    /// The event definition of a point, if the alarm settings give it alarms.
    pub fn of(config: &Config, device: usize, point: usize) -> Option<EventDef> {
        let s = config.alarms.as_ref()?;
        let dev = config.devices.get(device)?;
        let p = dev.profile.points.get(point)?;
        let rules: Vec<_> = s
            .thresholds
            .iter()
            .filter(|r| r.device == device && r.point == point)
            .collect();
        let states = if s.device_alarms { &p.alarm } else { &BTreeMap::new() };
        let mut worst: Option<Severity> = states.values().max().copied();
        for r in &rules {
            let l = &r.limits;
            let sv = &r.severities;
            for (set, sev) in [
                (l.high_high.is_some(), sv.high_high),
                (l.high.is_some(), sv.high),
                (l.low.is_some(), sv.low),
                (l.low_low.is_some(), sv.low_low),
                (r.rate.is_some(), sv.rate_of_change),
            ] {
                if set {
                    worst = worst.max(Some(sev));
                }
            }
        }
        let worst = worst?;
        let algorithm = match (rules.first(), p.kind) {
            (Some(r), _) => Algorithm::OutOfRange {
                high: r.limits.high.or(r.limits.high_high),
                low: r.limits.low.or(r.limits.low_low),
                deadband: r.limits.deadband.max(0.0),
            },
            (None, Kind::Bitmask) => Algorithm::ChangeOfBitstring,
            (None, _) => Algorithm::ChangeOfState {
                alarm_raw: states.keys().copied().collect(),
            },
        };
        let first = rules.first();
        Some(EventDef {
            class: NotificationClass::index_of(worst),
            algorithm,
            time_delay_s: first.map_or(0, |r| r.on_delay.as_secs()),
            time_delay_normal_s: first.map_or(0, |r| r.off_delay.as_secs()),
        })
    }

    /// The intrinsic reporting properties this object has besides Event_State.
    pub fn property_ids(&self, class: ObjectClass) -> Vec<u32> {
        let mut ids = vec![
            prop::ACKED_TRANSITIONS,
            prop::EVENT_ENABLE,
            prop::EVENT_TIME_STAMPS,
            prop::NOTIFY_TYPE,
            prop::NOTIFICATION_CLASS,
            prop::TIME_DELAY,
            prop::TIME_DELAY_NORMAL,
            prop::EVENT_MESSAGE_TEXTS,
            prop::EVENT_DETECTION_ENABLE,
        ];
        match (&self.algorithm, class) {
            (Algorithm::OutOfRange { .. }, _) => {
                ids.extend([prop::HIGH_LIMIT, prop::LOW_LIMIT, prop::DEADBAND, prop::LIMIT_ENABLE]);
            }
            (Algorithm::ChangeOfState { .. }, ObjectClass::BinaryInput | ObjectClass::BinaryValue) => {
                ids.push(prop::ALARM_VALUE);
            }
            (Algorithm::ChangeOfState { .. }, ObjectClass::MultiStateInput | ObjectClass::MultiStateValue) => {
                ids.push(prop::ALARM_VALUES);
            }
            _ => {}
        }
        ids
    }
}

/// An active alarm of an event object, as the engine announced it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlarm {
    pub level: Option<Level>,
    pub message: String,
}

/// The event side of an object's state: what it reports, and the engine's alarms on it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventStatus {
    pub state: u32,
    pub acked: [bool; 3],
    pub stamps: [Option<SystemTime>; 3],
    pub texts: [String; 3],
    /// The Reliability the last FAULT was for (a change to another fault is told again).
    pub fault: Option<u32>,
    /// Active alarms by id.
    pub active: BTreeMap<String, ActiveAlarm>,
    /// Alarms not acknowledged (active or not).
    pub unacked: BTreeSet<String>,
}

impl Default for EventStatus {
    fn default() -> Self {
        EventStatus {
            state: event_state::NORMAL,
            acked: [true; 3],
            stamps: [None; 3],
            texts: Default::default(),
            fault: None,
            active: BTreeMap::new(),
            unacked: BTreeSet::new(),
        }
    }
}

impl EventStatus {
    /// Take in an alarm's state after a transition (or restored).
    fn take(&mut self, id: &str, active: bool, acknowledged: bool, level: Option<Level>, message: &str) {
        if active {
            self.active.insert(
                id.to_string(),
                ActiveAlarm {
                    level,
                    message: message.to_string(),
                },
            );
        } else {
            self.active.remove(id);
        }
        if acknowledged {
            self.unacked.remove(id);
        } else {
            self.unacked.insert(id.to_string());
        }
    }

    /// The event state the alarms and the sample give: FAULT while unreliable, else the limit
    /// or off-normal state of the active alarms (high before low before other), else NORMAL.
    pub fn derived(&self, faulty: bool) -> u32 {
        if faulty {
            return event_state::FAULT;
        }
        let levels: Vec<Option<Level>> = self.active.values().map(|a| a.level).collect();
        if levels.is_empty() {
            event_state::NORMAL
        } else if levels.iter().any(|l| matches!(l, Some(Level::High | Level::HighHigh))) {
            event_state::HIGH_LIMIT
        } else if levels.iter().any(|l| matches!(l, Some(Level::Low | Level::LowLow))) {
            event_state::LOW_LIMIT
        } else {
            event_state::OFFNORMAL
        }
    }

    /// The message of the alarm that leads the state (the first active one).
    fn message(&self) -> String {
        self.active
            .values()
            .next()
            .map(|a| a.message.clone())
            .unwrap_or_default()
    }
}

/// A BACnetTimeStamp (date and time, UTC as the Device object says) of a transition; never
/// happened: unspecified.
pub fn stamp_of(t: Option<SystemTime>) -> TimeStamp {
    match t {
        None => TimeStamp::UNSPECIFIED,
        Some(t) => {
            let c = civil(t);
            TimeStamp::DateTime(
                [u8::try_from(c.year - 1900).unwrap_or(255), c.month, c.day, c.weekday],
                [c.hour, c.minute, c.second, (c.millis / 10) as u8],
            )
        }
    }
}

fn encoded_stamp(t: Option<SystemTime>) -> Value {
    let mut out = Vec::with_capacity(12);
    stamp_of(t).encode_choice(&mut out);
    Value::Encoded(out)
}

/// Whether an acknowledgement's time stamp names the transition made at `at`.
fn stamp_matches(given: &TimeStamp, at: SystemTime) -> bool {
    match (given, stamp_of(Some(at))) {
        (TimeStamp::DateTime(d, t), TimeStamp::DateTime(d2, t2)) => {
            // Some clients leave the weekday unspecified.
            d[..3] == d2[..3] && *t == t2
        }
        (TimeStamp::Time(t), TimeStamp::DateTime(_, t2)) => *t == t2,
        _ => false,
    }
}

/// Whether a destination takes notifications now (its days and hours, in UTC).
fn destination_open(d: &Destination, now: SystemTime) -> bool {
    let c = civil(now);
    let day = usize::from(c.weekday.clamp(1, 7)) - 1;
    let time = [c.hour, c.minute, c.second, (c.millis / 10) as u8];
    let wild = |t: &[u8; 4]| t.iter().all(|b| *b == 0xFF);
    let after = wild(&d.from_time) || time >= d.from_time;
    let before = wild(&d.to_time) || time <= d.to_time;
    d.valid_days.get(day).copied().unwrap_or(false) && after && before
}

/// The B/IP address of a recipient given by address, on the local network.
fn address_of(r: &Recipient) -> Option<SocketAddrV4> {
    match r {
        Recipient::Address { network: 0, mac } if mac.len() == 6 => Some(SocketAddrV4::new(
            std::net::Ipv4Addr::new(mac[0], mac[1], mac[2], mac[3]),
            u16::from_be_bytes([mac[4], mac[5]]),
        )),
        _ => None,
    }
}

/// The key of a class's Recipient_List in the journal's database: per class for the site
/// device, per device and class on the virtual network.
fn recipients_key(device: &objects::DeviceInfo, class: &NotificationClass) -> String {
    match device.route {
        None => format!("bacnet.recipient_list.{}", class.id.instance),
        Some(_) => format!("bacnet.recipient_list.{}.{}", device.id.instance, class.id.instance),
    }
}

/// A notification waiting for a device recipient's address (its I-Am).
pub(super) struct Unbound {
    pub device: u32,
    pub apdu: Vec<u8>,
    pub confirmed: bool,
    pub until: Instant,
}

/// The event side of the server's state.
#[derive(Default)]
pub(super) struct EventState {
    /// Recipient_List of each Notification Class.
    pub recipients: Vec<Vec<Destination>>,
    /// Device instance -> where its I-Am came from.
    pub bindings: HashMap<u32, Peer>,
    pub unbound: Vec<Unbound>,
}

/// One transition of an event object, ready to be told.
struct Told {
    object: usize,
    notify: u32,
    edge: Edge,
    from: Option<u32>,
    to: u32,
    at: SystemTime,
    message: String,
}

impl Server {
    /// The event objects' state from the alarms the engine lists now (restored from the
    /// journal), and the Recipient_Lists from the journal's database. No notification.
    pub(super) fn init_events(&self, alarms: &Alarms) {
        let listed = alarms.listed_now();
        let classes = &self.table.classes;
        let mut lists = Vec::with_capacity(classes.len());
        for c in classes {
            let list = match alarms.protocol_state(&recipients_key(&self.table.device, c)) {
                Ok(Some(bytes)) => ev::decode_destinations(&bytes).unwrap_or_else(|e| {
                    tracing::warn!(
                        "bacnet: the stored Recipient_List of {} is unreadable ({e}); starting empty",
                        c.name
                    );
                    Vec::new()
                }),
                Ok(None) => Vec::new(),
                Err(e) => {
                    tracing::warn!("bacnet: cannot read the stored Recipient_List of {}: {e}", c.name);
                    Vec::new()
                }
            };
            if !list.is_empty() {
                tracing::info!("bacnet: {} recipients of {} restored", list.len(), c.name);
            }
            lists.push(list);
        }
        let mut st = self.state();
        st.events.recipients = lists;
        for view in listed.iter() {
            let Some(i) = self.event_object_of(&view.device, &view.point) else {
                continue;
            };
            if let Some(e) = st.objects.get_mut(i).and_then(|s| s.event.as_deref_mut()) {
                take_view(e, view);
                let o = &self.table.objects[i];
                let sample = self.store.sample(o.point).unwrap_or_default();
                let faulty =
                    sample.quality != busbar_core::quality::Quality::NoValue && fault_of(&sample, o.range).is_some();
                e.state = e.derived(faulty);
                if e.state != event_state::NORMAL {
                    e.stamps[Edge::into_state(e.state).index()] = view.changed;
                    e.texts[Edge::into_state(e.state).index()] = view.message.clone();
                }
                e.acked[Edge::ToOffnormal.index()] = e.unacked.is_empty();
            }
        }
    }

    /// The event object of an alarm's device and point.
    fn event_object_of(&self, device: &str, point: &str) -> Option<usize> {
        if point.is_empty() {
            return None;
        }
        let i = self.table.find_name(&format!("{device}.{point}"))?;
        self.table.objects[i].event.is_some().then_some(i)
    }

    /// Alarm transitions and point changes -> event state changes -> notifications, for every
    /// device of the bridge with events in one task (a point change goes to the device that
    /// serves the point).
    pub(super) async fn events(
        devices: Arc<Devices>,
        alarms: Arc<Alarms>,
        mut transitions: tokio::sync::broadcast::Receiver<Transition>,
        mut changes: crate::store::Subscription,
        mut shutdown: watch::Receiver<bool>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let reporting: Vec<Arc<Server>> = devices
            .all
            .iter()
            .filter(|d| !d.table.classes.is_empty())
            .cloned()
            .collect();
        loop {
            tokio::select! {
                t = transitions.recv() => match t {
                    Ok(t) => {
                        for d in &reporting {
                            d.on_transition(&t).await;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!("bacnet: {n} alarm transitions missed; re-reading the alarms");
                        let all = alarms.all().await;
                        for d in &reporting {
                            d.on_views(&all).await;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                n = changes.next() => match n {
                    Notice::Changed(p) => {
                        let Some(d) = devices.of_point(p) else { continue };
                        if let Some(i) = d.table.of_point(p).filter(|i| d.table.objects[*i].event.is_some()) {
                            d.evaluate(i, d.store.clock().wall(), None).await;
                        }
                    }
                    Notice::Resync => {
                        for d in &reporting {
                            for i in 0..d.table.objects.len() {
                                if d.table.objects[i].event.is_some() {
                                    d.evaluate(i, d.store.clock().wall(), None).await;
                                }
                            }
                        }
                    }
                    Notice::Closed => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn on_transition(&self, t: &Transition) {
        let Some(i) = self.event_object_of(&t.device, &t.point) else {
            return;
        };
        {
            let mut st = self.state();
            let Some(e) = st.objects.get_mut(i).and_then(|s| s.event.as_deref_mut()) else {
                return;
            };
            let active = t.state.active && !t.state.disabled;
            e.take(
                &t.alarm,
                active,
                t.state.acknowledged || t.state.disabled,
                t.level,
                &t.message,
            );
        }
        let by = (t.kind == crate::alarms::Kind::Acknowledged)
            .then(|| format!("acknowledged by {} over {}", display_user(&t.actor.user), t.actor.via));
        self.evaluate(i, t.time, by).await;
    }

    /// After missed transitions: the alarms' state as the engine has it.
    async fn on_views(&self, views: &[AlarmView]) {
        let mut touched = BTreeSet::new();
        {
            let mut st = self.state();
            for view in views {
                let Some(i) = self.event_object_of(&view.device, &view.point) else {
                    continue;
                };
                if let Some(e) = st.objects.get_mut(i).and_then(|s| s.event.as_deref_mut()) {
                    take_view(e, view);
                    touched.insert(i);
                }
            }
        }
        for i in touched {
            self.evaluate(i, self.store.clock().wall(), None).await;
        }
    }

    /// Derive object `i`'s event state again; tell the recipients of what changed: a
    /// transition, or the acknowledgement of the to-offnormal one (`ack_note` says by whom).
    async fn evaluate(&self, i: usize, at: SystemTime, ack_note: Option<String>) {
        let o = &self.table.objects[i];
        let Some(def) = &o.event else { return };
        let class = &self.table.classes[def.class];
        let sample = self.store.sample(o.point).unwrap_or_default();
        // Before the first answer a point is unknown, not faulty.
        let faulty = if sample.quality == busbar_core::quality::Quality::NoValue && sample.last_good.is_none() {
            None
        } else {
            Some(fault_of(&sample, o.range))
        };
        let mut told = Vec::new();
        {
            let mut st = self.state();
            let Some(e) = st.objects.get_mut(i).and_then(|s| s.event.as_deref_mut()) else {
                return;
            };
            let was = e.state;
            let now = faulty.map_or(was, |f| e.derived(f.is_some()));
            // One fault after another (stale, then no answer): a to-fault transition again.
            let refault = now == event_state::FAULT && was == now && faulty.flatten() != e.fault;
            if now == event_state::FAULT {
                e.fault = faulty.flatten();
            }
            if now != was || refault {
                let edge = Edge::into_state(now);
                let message = match (now, faulty.flatten()) {
                    (event_state::FAULT, Some(r)) => format!("{}: unreliable ({})", o.name, reliability_text(r)),
                    (event_state::NORMAL, _) => format!("{}: back to normal", o.name),
                    _ => e.message(),
                };
                e.state = now;
                e.stamps[edge.index()] = Some(at);
                e.texts[edge.index()] = message.clone();
                e.acked[edge.index()] = !class.ack_required[edge.index()];
                if edge == Edge::ToOffnormal {
                    e.acked[edge.index()] = !class.ack_required[edge.index()] || e.unacked.is_empty();
                }
                told.push(Told {
                    object: i,
                    notify: notify_type::ALARM,
                    edge,
                    from: Some(was),
                    to: now,
                    at,
                    message,
                });
            }
            // The engine's acknowledgement is the to-offnormal one's.
            let off = Edge::ToOffnormal.index();
            let acked_now = e.unacked.is_empty() || !class.ack_required[off];
            if acked_now != e.acked[off] && e.stamps[off].is_some() {
                e.acked[off] = acked_now;
                if acked_now {
                    told.push(Told {
                        object: i,
                        notify: notify_type::ACK_NOTIFICATION,
                        edge: Edge::ToOffnormal,
                        from: None,
                        to: e.state,
                        at,
                        message: ack_note.unwrap_or_else(|| format!("{}: acknowledged", o.name)),
                    });
                }
            }
        }
        if !told.is_empty() {
            self.stats
                .event_transitions
                .fetch_add(told.len() as u64, Ordering::Relaxed);
            // Status_Flags IN_ALARM may have changed: COV subscribers hear of it.
            let cov = self.due_notifications(|s| s.object == i, false);
            self.send_all(cov).await;
        }
        for t in told {
            self.tell(&t).await;
        }
    }

    /// The notification of one transition to every recipient of the object's class that takes
    /// it now.
    async fn tell(&self, t: &Told) {
        let o = &self.table.objects[t.object];
        let Some(def) = &o.event else { return };
        let class = &self.table.classes[def.class];
        let sample = self.store.sample(o.point).unwrap_or_default();
        let flags = match self.state().objects.get(t.object) {
            Some(s) => o.status_flags(s, &sample),
            None => status_flags(&sample, o.range),
        };
        let Value::BitString(flags) = flags else { return };
        let is_ack = t.notify == notify_type::ACK_NOTIFICATION;
        let values = (!is_ack).then(|| event_values(o, def, &sample, flags.clone(), t.from, t.to));
        let event_type = values
            .as_ref()
            .map_or_else(|| default_event_type(o, def), EventValues::event_type);
        tracing::info!(
            object = %o.name,
            "bacnet: event {} -> {} ({})",
            t.from.map_or("ack".to_string(), state_name),
            state_name(t.to),
            t.message
        );
        let recipients: Vec<Destination> = self
            .state()
            .events
            .recipients
            .get(def.class)
            .cloned()
            .unwrap_or_default();
        for d in recipients {
            if !d.transitions[t.edge.index()] || !destination_open(&d, t.at) {
                continue;
            }
            let n = EventNotification {
                process_id: d.process_id,
                device: self.table.device.id,
                object: o.id,
                time_stamp: stamp_of(Some(t.at)),
                notification_class: class.id.instance,
                priority: class.priority[t.edge.index()],
                event_type,
                message: Some(t.message.clone()),
                notify_type: t.notify,
                ack_required: (!is_ack).then_some(class.ack_required[t.edge.index()]),
                from_state: if is_ack { None } else { t.from },
                to_state: t.to,
                values: values.clone(),
            };
            let mut body = Vec::with_capacity(96);
            ev::encode_event_notification(&mut body, &n);
            self.send_event(&d.recipient, d.confirmed, &body).await;
        }
    }

    /// Send one notification body to a recipient: by address, or by device once its address is
    /// known (a Who-Is asks; the notification waits for the I-Am up to the APDU timeout times
    /// the retries).
    async fn send_event(&self, recipient: &Recipient, confirmed: bool, body: &[u8]) {
        let peer = match recipient {
            Recipient::Device(id) => self.state().events.bindings.get(&id.instance).cloned(),
            r => address_of(r).map(|addr| Peer { addr, route: None }),
        };
        let Some(peer) = peer else {
            if let Recipient::Device(id) = recipient {
                let now = self.store.clock().now();
                let until = now + self.settings.apdu.timeout * (self.settings.apdu.retries + 1);
                {
                    let mut st = self.state();
                    let waiting = &mut st.events.unbound;
                    let before = waiting.len();
                    waiting.retain(|u| u.until > now);
                    if waiting.len() >= MAX_UNBOUND {
                        waiting.remove(0);
                    }
                    if before > waiting.len() {
                        tracing::warn!(
                            "bacnet: {} event notifications dropped: their device recipients never answered Who-Is",
                            before - waiting.len()
                        );
                    }
                    waiting.push(Unbound {
                        device: id.instance,
                        apdu: body.to_vec(),
                        confirmed,
                        until,
                    });
                }
                tracing::debug!(
                    "bacnet: device {} not bound yet: Who-Is before notifying it",
                    id.instance
                );
                self.who_is(id.instance).await;
            }
            return;
        };
        self.send_event_to(&peer, confirmed, body).await;
    }

    async fn send_event_to(&self, peer: &Peer, confirmed: bool, body: &[u8]) {
        if !self.may_initiate() {
            tracing::info!(
                "bacnet: event notification to {} not sent: DeviceCommunicationControl disables initiation",
                peer.addr
            );
            return;
        }
        let mut a = Vec::with_capacity(body.len() + 4);
        let datagram = if confirmed {
            let mut st = self.state();
            let id = st.next_invoke;
            st.next_invoke = st.next_invoke.wrapping_add(1);
            apdu::confirmed_request_header(&mut a, id, confirmed::CONFIRMED_EVENT_NOTIFICATION);
            a.extend_from_slice(body);
            let datagram = self.unicast_datagram(peer, true, &a);
            st.pending.insert(
                id,
                Pending {
                    peer: peer.addr,
                    datagram: datagram.clone(),
                    sent: self.store.clock().now(),
                    tries: 1,
                },
            );
            datagram
        } else {
            apdu::unconfirmed_request_header(&mut a, unconfirmed::UNCONFIRMED_EVENT_NOTIFICATION);
            a.extend_from_slice(body);
            self.unicast_datagram(peer, false, &a)
        };
        self.stats.event_notifications.fetch_add(1, Ordering::Relaxed);
        self.send(peer.addr, &datagram).await;
    }

    /// Who-Is for one device instance, to learn a recipient's address.
    pub(super) async fn who_is(&self, instance: u32) {
        if !self.may_initiate() {
            return;
        }
        let mut a = Vec::with_capacity(12);
        apdu::unconfirmed_request_header(&mut a, unconfirmed::WHO_IS);
        service::client::who_is(&mut a, Some((instance, instance)));
        self.broadcast(&a).await;
    }

    /// An I-Am: remember where the device is, and send what waited for it.
    pub(super) async fn i_am_from(&self, peer: &Peer, device: ObjectId) {
        if device.object_type != object_type::DEVICE || device.instance == self.table.device.id.instance {
            return;
        }
        let now = self.store.clock().now();
        let ready: Vec<Unbound> = {
            let mut st = self.state();
            let wanted = st
                .events
                .recipients
                .iter()
                .flatten()
                .any(|d| d.recipient == Recipient::Device(device));
            if wanted {
                st.events.bindings.insert(device.instance, peer.clone());
            }
            let (ready, keep): (Vec<Unbound>, Vec<Unbound>) = std::mem::take(&mut st.events.unbound)
                .into_iter()
                .filter(|u| u.until > now)
                .partition(|u| u.device == device.instance);
            st.events.unbound = keep;
            ready
        };
        for u in ready {
            self.send_event_to(peer, u.confirmed, &u.apdu).await;
        }
    }

    /// A Notification Class object's property.
    pub(super) fn read_class(&self, c: usize, p: PropertyRef) -> Result<Vec<Value>, PropError> {
        let Some(class) = self.table.classes.get(c) else {
            return Err(UNKNOWN_OBJECT);
        };
        let one = |v: Value| Ok(vec![v]);
        let is_array = matches!(p.property, prop::PRIORITY | prop::PROPERTY_LIST);
        if p.index.is_some() && !is_array {
            return Err((error_class::PROPERTY, error_code::PROPERTY_IS_NOT_AN_ARRAY));
        }
        match p.property {
            prop::OBJECT_IDENTIFIER => one(Value::ObjectId(class.id)),
            prop::OBJECT_NAME => one(Value::CharacterString(class.name.clone())),
            prop::OBJECT_TYPE => one(Value::Enumerated(u32::from(object_type::NOTIFICATION_CLASS))),
            prop::DESCRIPTION => one(Value::CharacterString(class.description())),
            prop::NOTIFICATION_CLASS => one(Value::Unsigned(u64::from(class.id.instance))),
            prop::PRIORITY => array(
                class.priority.iter().map(|p| Value::Unsigned(u64::from(*p))).collect(),
                p.index,
            ),
            prop::ACK_REQUIRED => one(Value::BitString(ev::transition_bits(class.ack_required))),
            prop::RECIPIENT_LIST => Ok(self
                .state()
                .events
                .recipients
                .get(c)
                .map(|list| {
                    list.iter()
                        .map(|d| {
                            let mut out = Vec::with_capacity(32);
                            d.encode(&mut out);
                            Value::Encoded(out)
                        })
                        .collect()
                })
                .unwrap_or_default()),
            prop::PROPERTY_LIST => property_list(NotificationClass::property_ids(), p.index),
            _ => Err(UNKNOWN_PROPERTY),
        }
    }

    /// WriteProperty of a Notification Class: its Recipient_List, kept in the journal's
    /// database so it outlives a restart.
    pub(super) async fn write_class(&self, c: usize, w: &service::WriteProperty) -> Result<(), PropError> {
        let Some(class) = self.table.classes.get(c) else {
            return Err(UNKNOWN_OBJECT);
        };
        if w.property.property != prop::RECIPIENT_LIST {
            return Err(if NotificationClass::property_ids().contains(&w.property.property) {
                (error_class::PROPERTY, error_code::WRITE_ACCESS_DENIED)
            } else {
                UNKNOWN_PROPERTY
            });
        }
        if w.property.index.is_some() {
            return Err((error_class::PROPERTY, error_code::PROPERTY_IS_NOT_AN_ARRAY));
        }
        // An empty list is one NULL-free empty value: clearing writes no element.
        let list = if w.value == [Value::Null] {
            Vec::new()
        } else {
            ev::decode_destinations(&w.encoded).map_err(|_| (error_class::PROPERTY, error_code::INVALID_DATA_TYPE))?
        };
        if list.len() > MAX_RECIPIENTS {
            return Err((error_class::RESOURCES, error_code::NO_SPACE_TO_ADD_LIST_ELEMENT));
        }
        if list
            .iter()
            .any(|d| matches!(d.recipient, Recipient::Address { .. }) && address_of(&d.recipient).is_none())
        {
            // Only B/IP addresses on this network: a routed recipient has no router to go by.
            return Err((error_class::PROPERTY, error_code::VALUE_OUT_OF_RANGE));
        }
        let Some(alarms) = &self.alarms else {
            return Err((error_class::PROPERTY, error_code::WRITE_ACCESS_DENIED));
        };
        let mut bytes = Vec::new();
        for d in &list {
            d.encode(&mut bytes);
        }
        if let Err(e) = alarms
            .save_protocol_state(&recipients_key(&self.table.device, class), bytes)
            .await
        {
            tracing::error!("bacnet: Recipient_List of {} not stored: {e}", class.name);
            return Err((error_class::DEVICE, error_code::OPERATIONAL_PROBLEM));
        }
        let devices: Vec<u32> = list
            .iter()
            .filter_map(|d| match d.recipient {
                Recipient::Device(id) => Some(id.instance),
                Recipient::Address { .. } => None,
            })
            .collect();
        tracing::info!(
            "bacnet: Recipient_List of {} set: {} recipients",
            class.name,
            list.len()
        );
        if let Some(slot) = self.state().events.recipients.get_mut(c) {
            *slot = list;
        }
        // Learn the addresses of device recipients before the first event needs them.
        for d in devices {
            self.who_is(d).await;
        }
        Ok(())
    }

    /// AcknowledgeAlarm: the to-offnormal transition is the engine's alarms', acknowledged
    /// there (journaled with the acknowledging source, over BACnet); to-fault and to-normal are
    /// this server's own.
    pub(super) async fn acknowledge(&self, peer: &Peer, a: &AcknowledgeAlarm) -> Result<(), PropError> {
        let Some(i) = self.table.find(a.object) else {
            return Err(UNKNOWN_OBJECT);
        };
        let o = &self.table.objects[i];
        if o.event.is_none() {
            return Err((error_class::OBJECT, error_code::NO_ALARM_CONFIGURED));
        }
        let edge = Edge::into_state(a.state);
        let (stamp, unacked, state) = {
            let st = self.state();
            let Some(e) = st.objects.get(i).and_then(|s| s.event.as_deref()) else {
                return Err((error_class::OBJECT, error_code::NO_ALARM_CONFIGURED));
            };
            (e.stamps[edge.index()], e.unacked.clone(), e.state)
        };
        let invalid_state = (error_class::SERVICES, error_code::INVALID_EVENT_STATE);
        let Some(stamp) = stamp else { return Err(invalid_state) };
        if edge == Edge::ToOffnormal
            && !matches!(
                a.state,
                event_state::OFFNORMAL | event_state::HIGH_LIMIT | event_state::LOW_LIMIT
            )
        {
            return Err(invalid_state);
        }
        if !stamp_matches(&a.time_stamp, stamp) {
            return Err((error_class::SERVICES, error_code::INVALID_TIME_STAMP));
        }
        let source = if a.source.is_empty() {
            format!("{}", peer.addr)
        } else {
            a.source.clone()
        };
        tracing::info!(
            object = %o.name,
            "bacnet: AcknowledgeAlarm of {} by `{source}` (process {}) from {}",
            state_name(a.state),
            a.process_id,
            peer.addr
        );
        if edge == Edge::ToOffnormal {
            let Some(alarms) = &self.alarms else {
                return Err(invalid_state);
            };
            for id in unacked {
                let actor = crate::alarms::Actor {
                    user: source.clone(),
                    via: "bacnet".into(),
                    comment: format!("AcknowledgeAlarm from {} (process {})", peer.addr, a.process_id),
                };
                match alarms.act(&id, Action::Acknowledge, actor).await {
                    Ok(_) | Err(AlarmError::Action(ActionError::Already(..))) => {}
                    Err(AlarmError::Action(e)) => {
                        tracing::warn!("bacnet: acknowledging {id}: {e}");
                    }
                    Err(e @ AlarmError::Journal(_)) => {
                        tracing::error!("bacnet: acknowledging {id}: {e}");
                        return Err((error_class::DEVICE, error_code::OPERATIONAL_PROBLEM));
                    }
                }
            }
            // The engine's Acknowledged transitions come back through `events` and tell the
            // recipients.
            return Ok(());
        }
        let newly = {
            let mut st = self.state();
            match st.objects.get_mut(i).and_then(|s| s.event.as_deref_mut()) {
                Some(e) if !e.acked[edge.index()] => {
                    e.acked[edge.index()] = true;
                    true
                }
                _ => false,
            }
        };
        if newly {
            self.tell(&Told {
                object: i,
                notify: notify_type::ACK_NOTIFICATION,
                edge,
                from: None,
                to: state,
                at: self.store.clock().wall(),
                message: format!("{}: acknowledged by {source} over bacnet", o.name),
            })
            .await;
        }
        Ok(())
    }

    /// GetEventInformation: the objects not normal or not acknowledged after `last`, as many
    /// as fit `capacity`; the client asks again from the last one when `moreEvents`.
    pub(super) fn event_information(
        &self,
        last: Option<ObjectId>,
        capacity: usize,
    ) -> Result<(Vec<u8>, bool), PropError> {
        let start = match last {
            None => 0,
            Some(id) => self.table.find(id).ok_or(UNKNOWN_OBJECT)? + 1,
        };
        // Room for the APDU header, the list's tags and moreEvents.
        let room = capacity.saturating_sub(12);
        let mut out = Vec::new();
        let st = self.state();
        for (i, o) in self.table.objects.iter().enumerate().skip(start) {
            let (Some(def), Some(e)) = (&o.event, st.objects.get(i).and_then(|s| s.event.as_deref())) else {
                continue;
            };
            if e.state == event_state::NORMAL && e.acked.iter().all(|a| *a) {
                continue;
            }
            let s = EventSummary {
                object: o.id,
                state: e.state,
                acked: e.acked,
                time_stamps: [stamp_of(e.stamps[0]), stamp_of(e.stamps[1]), stamp_of(e.stamps[2])],
                notify_type: notify_type::ALARM,
                enable: [true; 3],
                priorities: self.table.classes[def.class].priority,
            };
            let before = out.len();
            s.encode(&mut out);
            if out.len() > room {
                out.truncate(before);
                return Ok((out, true));
            }
        }
        Ok((out, false))
    }
}

fn take_view(e: &mut EventStatus, view: &AlarmView) {
    let active = view.state.active && !view.state.disabled;
    e.take(
        &view.id,
        active,
        view.state.acknowledged || view.state.disabled,
        view.level,
        &view.message,
    );
}

fn display_user(user: &str) -> &str {
    if user.is_empty() {
        "someone"
    } else {
        user
    }
}

pub fn state_name(s: u32) -> String {
    match s {
        event_state::NORMAL => "normal".into(),
        event_state::FAULT => "fault".into(),
        event_state::OFFNORMAL => "offnormal".into(),
        event_state::HIGH_LIMIT => "high-limit".into(),
        event_state::LOW_LIMIT => "low-limit".into(),
        other => format!("event state {other}"),
    }
}

fn reliability_text(r: u32) -> &'static str {
    use busbar_bacnet::consts::reliability::*;
    match r {
        COMMUNICATION_FAILURE => "communication failure",
        OVER_RANGE => "over range",
        UNDER_RANGE => "under range",
        CONFIGURATION_ERROR => "configuration error",
        _ => "unreliable",
    }
}

/// The event type of an object's transitions other than faults.
fn default_event_type(o: &objects::PointObject, def: &EventDef) -> u32 {
    use busbar_bacnet::consts::event_type::*;
    match (&def.algorithm, o.class) {
        (Algorithm::OutOfRange { .. }, _) => OUT_OF_RANGE,
        (Algorithm::ChangeOfBitstring, _) => CHANGE_OF_BITSTRING,
        (Algorithm::ChangeOfState { .. }, _) => CHANGE_OF_STATE,
    }
}

/// The event values of a transition into `to`.
fn event_values(
    o: &objects::PointObject,
    def: &EventDef,
    sample: &crate::store::Sample,
    flags: busbar_bacnet::BitString,
    from: Option<u32>,
    to: u32,
) -> EventValues {
    if to == event_state::FAULT {
        return EventValues::ChangeOfReliability {
            reliability: fault_of(sample, o.range).unwrap_or(busbar_bacnet::consts::reliability::NO_FAULT_DETECTED),
            flags,
        };
    }
    let pv = o.present_value(sample);
    match &def.algorithm {
        Algorithm::OutOfRange { high, low, deadband } => {
            let value = sample
                .value
                .as_ref()
                .and_then(crate::store::PointValue::as_f64)
                .unwrap_or(0.0);
            // The limit exceeded; on the way back to normal, the one that was.
            let side = if to == event_state::NORMAL {
                from.unwrap_or(to)
            } else {
                to
            };
            let limit = match (side, high, low) {
                (event_state::LOW_LIMIT, _, Some(l)) => *l,
                (event_state::HIGH_LIMIT, Some(h), _) => *h,
                (_, Some(h), _) => *h,
                (_, None, Some(l)) => *l,
                (_, None, None) => value,
            };
            EventValues::OutOfRange {
                value: value as f32,
                flags,
                deadband: *deadband as f32,
                limit: limit as f32,
            }
        }
        Algorithm::ChangeOfBitstring => EventValues::ChangeOfBitstring {
            bits: match pv {
                Value::BitString(b) => b,
                _ => busbar_bacnet::BitString::with_len(0),
            },
            flags,
        },
        Algorithm::ChangeOfState { .. } => EventValues::ChangeOfState {
            state: match pv {
                Value::Enumerated(b) => PropertyState::Binary(b),
                Value::Unsigned(n) => PropertyState::Unsigned(n),
                other => PropertyState::Unsigned(other.as_f64().unwrap_or(0.0) as u64),
            },
            flags,
        },
    }
}

impl objects::PointObject {
    /// An intrinsic reporting property of an event object.
    pub(super) fn read_event(
        &self,
        state: &objects::ObjectState,
        p: PropertyRef,
    ) -> Option<Result<Vec<Value>, PropError>> {
        let def = self.event.as_ref()?;
        let e = state.event.as_deref()?;
        let one = |v: Value| Some(Ok(vec![v]));
        let real = |x: Option<f64>| one(Value::Real(x.unwrap_or(0.0) as f32));
        match (p.property, &def.algorithm) {
            (prop::EVENT_STATE, _) => one(Value::Enumerated(e.state)),
            (prop::ACKED_TRANSITIONS, _) => one(Value::BitString(ev::transition_bits(e.acked))),
            (prop::EVENT_ENABLE, _) => one(Value::BitString(ev::transition_bits([true; 3]))),
            (prop::EVENT_TIME_STAMPS, _) => Some(array(e.stamps.iter().map(|t| encoded_stamp(*t)).collect(), p.index)),
            (prop::EVENT_MESSAGE_TEXTS, _) => Some(array(
                e.texts.iter().map(|t| Value::CharacterString(t.clone())).collect(),
                p.index,
            )),
            (prop::NOTIFY_TYPE, _) => one(Value::Enumerated(notify_type::ALARM)),
            (prop::NOTIFICATION_CLASS, _) => one(Value::Unsigned(def.class as u64 + 1)),
            (prop::TIME_DELAY, _) => one(Value::Unsigned(def.time_delay_s)),
            (prop::TIME_DELAY_NORMAL, _) => one(Value::Unsigned(def.time_delay_normal_s)),
            (prop::EVENT_DETECTION_ENABLE, _) => one(Value::Boolean(true)),
            (prop::HIGH_LIMIT, Algorithm::OutOfRange { high, .. }) => real(*high),
            (prop::LOW_LIMIT, Algorithm::OutOfRange { low, .. }) => real(*low),
            (prop::DEADBAND, Algorithm::OutOfRange { deadband, .. }) => real(Some(*deadband)),
            (prop::LIMIT_ENABLE, Algorithm::OutOfRange { high, low, .. }) => {
                let mut b = busbar_bacnet::BitString::with_len(2);
                b.set(0, low.is_some());
                b.set(1, high.is_some());
                one(Value::BitString(b))
            }
            (prop::ALARM_VALUE, Algorithm::ChangeOfState { alarm_raw }) => {
                one(Value::Enumerated(u32::from(alarm_raw.first().is_some_and(|r| *r != 0))))
            }
            (prop::ALARM_VALUES, Algorithm::ChangeOfState { alarm_raw }) => Some(Ok(alarm_raw
                .iter()
                .map(|raw| self.value_of(Some(&crate::store::PointValue::Number(*raw as f64))))
                .collect())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busbar_core::profile::embedded;
    use std::time::{Duration, UNIX_EPOCH};

    fn config() -> Config {
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\n\
             devices:\n  - { name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1 }\n  \
             - { name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 2 }\n\
             servers: { bacnet: { listen: '127.0.0.1:0' } }\n\
             alarms:\n  journal: /nonexistent/alarms.db\n  rules:\n    \
             - { name: mains, family: meter, points: [v1], low: 207, high: 253, deadband: 2, on_delay_s: 3, off_delay_s: 5, severity: minor }\n";
        crate::config::parse_config("t.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"))
    }

    fn def(config: &Config, device: &str, point: &str) -> Option<EventDef> {
        let d = config.devices.iter().position(|d| d.name == device)?;
        let p = config.devices[d].profile.point_index(point)?;
        EventDef::of(config, d, p)
    }

    #[test]
    fn threshold_rules_read_as_out_of_range_in_the_class_of_their_severity() {
        let c = config();
        let Some(d) = def(&c, "m", "v1") else {
            panic!("v1 has a rule")
        };
        assert_eq!(
            d.algorithm,
            Algorithm::OutOfRange {
                high: Some(253.0),
                low: Some(207.0),
                deadband: 2.0
            }
        );
        assert_eq!(NotificationClass::all()[d.class].severity, Severity::Minor);
        assert_eq!((d.time_delay_s, d.time_delay_normal_s), (3, 5));
        assert!(def(&c, "m", "v2").is_none(), "no rule, no device state: no events");
    }

    #[test]
    fn device_alarm_states_read_as_change_of_state() {
        let c = config();
        let Some(d) = def(&c, "ats", "fail_start") else {
            panic!("fail_start has a device alarm state")
        };
        assert_eq!(d.algorithm, Algorithm::ChangeOfState { alarm_raw: vec![1] });
        assert_eq!(NotificationClass::all()[d.class].severity, Severity::Critical);
        let Some(s) = def(&c, "ats", "source1_state") else {
            panic!("source1_state has a device alarm state")
        };
        assert_eq!(s.algorithm, Algorithm::ChangeOfState { alarm_raw: vec![0] });
        assert!(s
            .property_ids(ObjectClass::MultiStateInput)
            .contains(&prop::ALARM_VALUES));
        assert!(d.property_ids(ObjectClass::BinaryInput).contains(&prop::ALARM_VALUE));
    }

    #[test]
    fn classes_have_rising_priorities_and_ack_required_from_warning_up() {
        let all = NotificationClass::all();
        assert_eq!(all.len(), Severity::ALL.len());
        for pair in all.windows(2) {
            assert!(pair[0].severity < pair[1].severity);
            assert!(pair[0].priority[0] > pair[1].priority[0], "more severe, more urgent");
        }
        let info = &all[NotificationClass::index_of(Severity::Info)];
        assert_eq!(info.ack_required, [false, true, false]);
        let critical = &all[NotificationClass::index_of(Severity::Critical)];
        assert_eq!(critical.ack_required, [true, true, false]);
        assert_eq!(critical.id.instance, 5);
    }

    #[test]
    fn state_follows_fault_then_the_levels_of_active_alarms() {
        let mut e = EventStatus::default();
        assert_eq!(e.derived(false), event_state::NORMAL);
        e.take("a", true, false, Some(Level::Low), "low");
        assert_eq!(e.derived(false), event_state::LOW_LIMIT);
        e.take("b", true, false, Some(Level::HighHigh), "high high");
        assert_eq!(e.derived(false), event_state::HIGH_LIMIT, "high wins over low");
        assert_eq!(e.derived(true), event_state::FAULT, "fault wins over alarms");
        e.take("a", false, true, Some(Level::Low), "");
        e.take("b", false, false, Some(Level::HighHigh), "");
        assert_eq!(e.derived(false), event_state::NORMAL);
        assert_eq!(
            e.unacked.len(),
            1,
            "an inactive alarm may still wait for its acknowledgement"
        );
        e.take("s", true, false, None, "state");
        assert_eq!(e.derived(false), event_state::OFFNORMAL);
    }

    #[test]
    fn an_acknowledgement_names_its_transition_by_time_stamp() {
        // 2026-12-06 18:38:07.25 UTC, a Sunday.
        let at = UNIX_EPOCH + Duration::from_millis(1_796_582_287_250);
        let TimeStamp::DateTime(d, t) = stamp_of(Some(at)) else {
            panic!("a date and time")
        };
        assert_eq!(d, [126, 12, 6, 7]);
        assert_eq!(t, [18, 38, 7, 25]);
        assert!(stamp_matches(&TimeStamp::DateTime(d, t), at));
        assert!(
            stamp_matches(&TimeStamp::DateTime([126, 12, 6, 0xFF], t), at),
            "weekday left out"
        );
        assert!(stamp_matches(&TimeStamp::Time(t), at));
        assert!(!stamp_matches(&TimeStamp::DateTime(d, [18, 38, 8, 25]), at));
        assert!(!stamp_matches(&TimeStamp::Sequence(3), at));
        assert_eq!(stamp_of(None), TimeStamp::UNSPECIFIED);
    }

    #[test]
    fn destinations_open_on_their_days_and_hours() {
        let sunday_evening = UNIX_EPOCH + Duration::from_millis(1_796_582_287_250);
        let mut d = Destination {
            valid_days: [true; 7],
            from_time: [0xFF; 4],
            to_time: [0xFF; 4],
            recipient: Recipient::Address {
                network: 0,
                mac: vec![127, 0, 0, 1, 0xBA, 0xC0],
            },
            process_id: 1,
            confirmed: false,
            transitions: [true; 3],
        };
        assert!(destination_open(&d, sunday_evening));
        d.valid_days[6] = false;
        assert!(!destination_open(&d, sunday_evening), "not on Sundays");
        d.valid_days[6] = true;
        d.from_time = [8, 0, 0, 0];
        d.to_time = [17, 0, 0, 0];
        assert!(!destination_open(&d, sunday_evening), "office hours only");
        d.to_time = [23, 59, 59, 99];
        assert!(destination_open(&d, sunday_evening));
        assert_eq!(
            address_of(&d.recipient),
            Some("127.0.0.1:47808".parse().unwrap_or_else(|e| panic!("{e}")))
        );
        let routed = Recipient::Address {
            network: 5,
            mac: vec![127, 0, 0, 1, 0xBA, 0xC0],
        };
        assert_eq!(address_of(&routed), None, "only the local network");
    }
}
