//! The alarm engine's alarms as OPC UA Alarms & Conditions (Part 9): one condition per alarm,
//! placed under its device (HasCondition), its events sent to the device's and the Server's
//! event subscribers, and the condition methods (Acknowledge, AddComment, Enable, Disable,
//! ConditionRefresh, ConditionRefresh2) turned into engine actions journaled with the session's
//! user and `opcua`. An action made over HTTP, SNMP or BACnet reaches OPC UA clients the same
//! way: every committed transition becomes an event. docs/opcua.md, "Alarms & Conditions".

use crate::alarms::journal::Filter;
use crate::alarms::Actor;
use crate::alarms::{Action, ActionError, AlarmError, AlarmState, AlarmView, Alarms, Level, Source, Transition};
use opcua::nodes::ParsedEventFilter;
use opcua::nodes::{Event, ObjectBuilder};
use opcua::server::node_manager::{HistoryNode, MethodCall, RequestContext};
use opcua::server::{ContinuationPoint, SubscriptionCache};
use opcua::types::event_field::EventField;
use opcua::types::{
    AttributeId, ByteString, DateTime, HistoryEvent, HistoryEventFieldList, LocalizedText, MethodId, NodeId,
    NumericRange, ObjectId, ObjectTypeId, QualifiedName, ReadEventDetails, ReferenceTypeId, StatusCode, UAString,
    Variant,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The condition type of an alarm, by where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    /// A threshold rule: ExclusiveLevelAlarmType (LimitState HighHigh / High / Low / LowLow).
    Level,
    /// A state the device reports as abnormal: OffNormalAlarmType.
    OffNormal,
    /// The device stopped answering: SystemOffNormalAlarmType.
    CommLoss,
    /// A point stale or out of range: InstrumentDiagnosticAlarmType.
    Instrument,
}

impl ConditionKind {
    pub fn of(source: Source) -> ConditionKind {
        match source {
            Source::Threshold => ConditionKind::Level,
            Source::Device => ConditionKind::OffNormal,
            Source::Communication => ConditionKind::CommLoss,
            Source::Quality => ConditionKind::Instrument,
        }
    }

    /// The type and its supertypes, most derived first, down to BaseEventType.
    pub fn types(self) -> &'static [ObjectTypeId] {
        use ObjectTypeId::*;
        const TAIL: [ObjectTypeId; 4] = [
            AlarmConditionType,
            AcknowledgeableConditionType,
            ConditionType,
            BaseEventType,
        ];
        const LEVEL: [ObjectTypeId; 7] = [
            ExclusiveLevelAlarmType,
            ExclusiveLimitAlarmType,
            LimitAlarmType,
            TAIL[0],
            TAIL[1],
            TAIL[2],
            TAIL[3],
        ];
        const OFF_NORMAL: [ObjectTypeId; 6] = [
            OffNormalAlarmType,
            DiscreteAlarmType,
            TAIL[0],
            TAIL[1],
            TAIL[2],
            TAIL[3],
        ];
        const SYSTEM: [ObjectTypeId; 7] = [
            SystemOffNormalAlarmType,
            OffNormalAlarmType,
            DiscreteAlarmType,
            TAIL[0],
            TAIL[1],
            TAIL[2],
            TAIL[3],
        ];
        const INSTRUMENT: [ObjectTypeId; 7] = [
            InstrumentDiagnosticAlarmType,
            OffNormalAlarmType,
            DiscreteAlarmType,
            TAIL[0],
            TAIL[1],
            TAIL[2],
            TAIL[3],
        ];
        match self {
            ConditionKind::Level => &LEVEL,
            ConditionKind::OffNormal => &OFF_NORMAL,
            ConditionKind::CommLoss => &SYSTEM,
            ConditionKind::Instrument => &INSTRUMENT,
        }
    }

    /// The condition class (Part 9, 5.9): process alarms, or the system's own.
    pub fn class(self) -> (ObjectTypeId, &'static str) {
        match self {
            ConditionKind::Level | ConditionKind::OffNormal => {
                (ObjectTypeId::ProcessConditionClassType, "ProcessConditionClassType")
            }
            ConditionKind::CommLoss | ConditionKind::Instrument => {
                (ObjectTypeId::SystemConditionClassType, "SystemConditionClassType")
            }
        }
    }
}

/// The exclusive limit state of a level, with the state's NodeId.
fn limit_state(level: Option<Level>) -> Option<(&'static str, ObjectId)> {
    match level? {
        Level::HighHigh => Some(("HighHigh", ObjectId::ExclusiveLimitStateMachineType_HighHigh)),
        Level::High => Some(("High", ObjectId::ExclusiveLimitStateMachineType_High)),
        Level::Low => Some(("Low", ObjectId::ExclusiveLimitStateMachineType_Low)),
        Level::LowLow => Some(("LowLow", ObjectId::ExclusiveLimitStateMachineType_LowLow)),
        Level::RateOfChange | Level::Abnormal => None,
    }
}

/// Retained: worth showing to a client that refreshes (active or unacknowledged), and enabled.
pub fn retained(state: &AlarmState) -> bool {
    !state.disabled && (state.active || !state.acknowledged)
}

/// One condition event: the condition's state after a transition, or as it is now (refresh).
#[derive(Debug, Clone)]
pub struct ConditionEvent {
    pub event_id: ByteString,
    pub kind: ConditionKind,
    event_type: NodeId,
    pub condition_id: NodeId,
    pub source_node: NodeId,
    pub source_name: String,
    /// The device it belongs to (its notifier).
    pub device: String,
    pub condition_name: String,
    pub time: DateTime,
    pub receive_time: DateTime,
    pub message: String,
    pub severity: u16,
    pub state: AlarmState,
    pub level: Option<Level>,
    pub comment: String,
    pub client_user_id: String,
}

fn two_state(path: &[QualifiedName], on: bool, on_text: &str, off_text: &str) -> Variant {
    match path {
        [] => Variant::from(LocalizedText::new("en", if on { on_text } else { off_text })),
        [id] if id.namespace_index == 0 && id.name.as_ref() == "Id" => Variant::Boolean(on),
        _ => Variant::Empty,
    }
}

fn state_machine(path: &[QualifiedName], state: Option<(&str, NodeId)>) -> Variant {
    let Some((name, id)) = state else { return Variant::Empty };
    match path {
        [s] if s.name.as_ref() == "CurrentState" => Variant::from(LocalizedText::new("en", name)),
        [s, i] if s.name.as_ref() == "CurrentState" && i.name.as_ref() == "Id" => Variant::from(id),
        _ => Variant::Empty,
    }
}

impl EventField for ConditionEvent {
    fn get_value(&self, attribute_id: AttributeId, index_range: &NumericRange, path: &[QualifiedName]) -> Variant {
        if attribute_id == AttributeId::NodeId {
            // The ConditionId: the condition's NodeId, selected with an empty path.
            return if path.is_empty() {
                Variant::from(self.condition_id.clone())
            } else {
                Variant::Empty
            };
        }
        if attribute_id != AttributeId::Value {
            return Variant::Empty;
        }
        let Some((first, rest)) = path.split_first() else {
            return Variant::Empty;
        };
        if first.namespace_index != 0 {
            return Variant::Empty;
        }
        let text = |s: &str| Variant::from(LocalizedText::new("en", s));
        let leaf = |v: Variant| if rest.is_empty() { v } else { Variant::Empty };
        let (class_id, class_name) = self.kind.class();
        let shelving = Some(match self.state.shelved_until_ms {
            Some(_) => ("TimedShelved", ObjectId::ShelvedStateMachineType_TimedShelved.into()),
            None => ("Unshelved", ObjectId::ShelvedStateMachineType_Unshelved.into()),
        });
        let v = match first.name.as_ref() {
            "EventId" => leaf(Variant::from(self.event_id.clone())),
            "EventType" => leaf(Variant::from(self.event_type.clone())),
            "SourceNode" => leaf(Variant::from(self.source_node.clone())),
            "SourceName" => leaf(Variant::from(UAString::from(self.source_name.as_str()))),
            "Time" => leaf(Variant::from(self.time)),
            "ReceiveTime" => leaf(Variant::from(self.receive_time)),
            "Message" => leaf(text(&self.message)),
            "Severity" => leaf(Variant::UInt16(self.severity)),
            "ConditionClassId" => leaf(Variant::from(NodeId::from(class_id))),
            "ConditionClassName" => leaf(text(class_name)),
            "ConditionName" => leaf(Variant::from(UAString::from(self.condition_name.as_str()))),
            "BranchId" => leaf(Variant::from(NodeId::null())),
            "Retain" => leaf(Variant::Boolean(retained(&self.state))),
            "Quality" => leaf(Variant::from(StatusCode::Good)),
            "LastSeverity" => leaf(Variant::UInt16(self.severity)),
            "Comment" => leaf(text(&self.comment)),
            "ClientUserId" => leaf(Variant::from(UAString::from(self.client_user_id.as_str()))),
            "InputNode" => leaf(Variant::from(self.source_node.clone())),
            "EnabledState" => two_state(rest, !self.state.disabled, "Enabled", "Disabled"),
            "ActiveState" => two_state(rest, self.state.active, "Active", "Inactive"),
            "AckedState" => two_state(rest, self.state.acknowledged, "Acknowledged", "Unacknowledged"),
            "SuppressedOrShelved" => leaf(Variant::Boolean(self.state.shelved_until_ms.is_some())),
            "ShelvingState" => state_machine(rest, shelving),
            "LimitState" if self.kind == ConditionKind::Level => {
                state_machine(rest, limit_state(self.level).map(|(n, id)| (n, id.into())))
            }
            _ => Variant::Empty,
        };
        match v {
            Variant::Empty => v,
            v if index_range.has_range() => v.range_of(index_range).unwrap_or(Variant::Empty),
            v => v,
        }
    }
}

impl Event for ConditionEvent {
    fn get_field(
        &self,
        type_definition_id: &NodeId,
        attribute_id: AttributeId,
        index_range: &NumericRange,
        browse_path: &[QualifiedName],
    ) -> Variant {
        // A select clause names the type its path starts from: ours or one of its supertypes.
        if !self.kind.types().iter().any(|t| type_definition_id == t) {
            return Variant::Empty;
        }
        self.get_value(attribute_id, index_range, browse_path)
    }

    fn time(&self) -> &DateTime {
        &self.time
    }

    fn event_type_id(&self) -> &NodeId {
        &self.event_type
    }
}

/// RefreshStartEventType / RefreshEndEventType around a refresh (Part 9, 5.11.2), and
/// RefreshRequiredEventType when transitions were missed.
#[derive(Debug)]
struct RefreshEvent {
    event_id: ByteString,
    event_type: NodeId,
    time: DateTime,
}

impl EventField for RefreshEvent {
    fn get_value(&self, attribute_id: AttributeId, _range: &NumericRange, path: &[QualifiedName]) -> Variant {
        match (attribute_id, path) {
            (AttributeId::Value, [f]) if f.namespace_index == 0 => match f.name.as_ref() {
                "EventId" => Variant::from(self.event_id.clone()),
                "EventType" => Variant::from(self.event_type.clone()),
                "SourceNode" => Variant::from(NodeId::from(ObjectId::Server)),
                "SourceName" => Variant::from(UAString::from("Server")),
                "Time" | "ReceiveTime" => Variant::from(self.time),
                "Message" => Variant::from(LocalizedText::new("en", "")),
                "Severity" => Variant::UInt16(1),
                _ => Variant::Empty,
            },
            _ => Variant::Empty,
        }
    }
}

impl Event for RefreshEvent {
    fn get_field(
        &self,
        type_id: &NodeId,
        attribute_id: AttributeId,
        range: &NumericRange,
        path: &[QualifiedName],
    ) -> Variant {
        let ours = [
            NodeId::from(ObjectTypeId::BaseEventType),
            NodeId::from(ObjectTypeId::SystemEventType),
            self.event_type.clone(),
        ];
        if ours.contains(type_id) {
            self.get_value(attribute_id, range, path)
        } else {
            Variant::Empty
        }
    }

    fn time(&self) -> &DateTime {
        &self.time
    }

    fn event_type_id(&self) -> &NodeId {
        &self.event_type
    }
}

/// Let event filters select the ConditionId (Part 9, 5.5.2: the NodeId attribute of the
/// condition type itself, an empty browse path). async-opcua checks every select clause whose
/// type is not BaseEventType against the type tree's properties, where an empty path is not
/// registered, and drops what it cannot find; so it is registered here, for ConditionType and
/// every condition type this server sends.
pub fn register_condition_id(type_tree: &mut opcua::nodes::DefaultTypeTree) {
    let kinds = [
        ConditionKind::Level,
        ConditionKind::OffNormal,
        ConditionKind::CommLoss,
        ConditionKind::Instrument,
    ];
    let mut done: Vec<ObjectTypeId> = Vec::new();
    for t in kinds.iter().flat_map(|k| k.types()) {
        if *t == ObjectTypeId::BaseEventType || done.contains(t) {
            continue;
        }
        done.push(*t);
        let id = NodeId::from(*t);
        type_tree.add_type_property(&id, &id, &[], opcua::types::NodeClass::Object);
    }
}

/// Events one HistoryReadEvents answers at most (the rest through continuation points).
const HISTORY_EVENTS_MAX: usize = 10_000;

/// Where a HistoryReadEvents left off: the next row of the same journal query.
struct EventsCursor {
    offset: usize,
}

/// An OPC UA time as Unix ms; `None` when null.
pub(crate) fn unix_ms_of(t: &DateTime) -> Option<i64> {
    // Ticks are 100 ns since 1601-01-01; 11,644,473,600 s separate that from 1970.
    const UNIX_EPOCH_TICKS: i64 = 116_444_736_000_000_000;
    match t.ticks() {
        0 => None,
        ticks => Some((ticks - UNIX_EPOCH_TICKS).div_euclid(10_000)),
    }
}

/// EventIds remembered per condition: Acknowledge and AddComment name one of them.
const EVENT_IDS_KEPT: usize = 16;

/// Where each alarm's condition lives, and the EventIds it was last sent with.
pub struct Conditions {
    ns: u16,
    alarms: Arc<Alarms>,
    /// Device name -> its node.
    devices: HashMap<String, NodeId>,
    /// (device, point id) -> the point's variable.
    points: HashMap<(String, String), NodeId>,
    sent: Mutex<HashMap<String, VecDeque<ByteString>>>,
    counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn time_of(t: SystemTime) -> DateTime {
    DateTime::from(opcua::types::date_time::DateTimeUtc::from(t))
}

/// The condition NodeId of alarm `id`: `ns=<busbar>;s=alarm:<id>`.
pub fn condition_node(ns: u16, id: &str) -> NodeId {
    NodeId::new(ns, format!("alarm:{id}"))
}

impl Conditions {
    pub fn new(
        ns: u16,
        alarms: Arc<Alarms>,
        devices: HashMap<String, NodeId>,
        points: HashMap<(String, String), NodeId>,
    ) -> Conditions {
        Conditions {
            ns,
            alarms,
            devices,
            points,
            sent: Mutex::default(),
            counter: AtomicU64::new(0),
        }
    }

    /// The alarm id of a condition node of ours.
    fn alarm_of<'a>(&self, node: &'a NodeId) -> Option<&'a str> {
        if node.namespace != self.ns {
            return None;
        }
        match &node.identifier {
            opcua::types::Identifier::String(s) => s.as_ref().strip_prefix("alarm:"),
            _ => None,
        }
    }

    fn source_of(&self, device: &str, point: &str) -> NodeId {
        self.points
            .get(&(device.to_string(), point.to_string()))
            .or_else(|| self.devices.get(device))
            .cloned()
            .unwrap_or_else(|| ObjectId::Server.into())
    }

    fn remember(&self, alarm: &str, id: ByteString) {
        let mut sent = lock(&self.sent);
        let ids = sent.entry(alarm.to_string()).or_default();
        if ids.len() == EVENT_IDS_KEPT {
            ids.pop_front();
        }
        ids.push_back(id);
    }

    fn knows(&self, alarm: &str, id: &ByteString) -> bool {
        lock(&self.sent).get(alarm).is_some_and(|ids| ids.contains(id))
    }

    /// The last EventId sent for `alarm`, if any.
    fn last_sent(&self, alarm: &str) -> Option<ByteString> {
        lock(&self.sent).get(alarm).and_then(|ids| ids.back().cloned())
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        event_id: ByteString,
        alarm: &str,
        source: Source,
        device: &str,
        point: &str,
        time: SystemTime,
        message: &str,
        severity: u16,
        state: AlarmState,
        level: Option<Level>,
        actor: Option<&Actor>,
    ) -> ConditionEvent {
        let kind = ConditionKind::of(source);
        let source_node = self.source_of(device, point);
        let source_name = if point.is_empty() {
            device.to_string()
        } else {
            format!("{device}/{point}")
        };
        ConditionEvent {
            event_id,
            kind,
            event_type: kind.types()[0].into(),
            condition_id: condition_node(self.ns, alarm),
            source_node,
            source_name,
            device: device.to_string(),
            condition_name: alarm.to_string(),
            time: time_of(time),
            receive_time: DateTime::now(),
            message: message.to_string(),
            severity,
            state,
            level,
            comment: actor.map(|a| a.comment.clone()).unwrap_or_default(),
            client_user_id: actor
                .filter(|a| a.via != "engine")
                .map(|a| format!("{}@{}", a.user, a.via))
                .unwrap_or_default(),
        }
    }

    /// The event of a committed transition (its EventId is the journal's sequence number),
    /// remembered for Acknowledge and AddComment.
    pub fn of_transition(&self, t: &Transition) -> ConditionEvent {
        let e = self.of_journal(t);
        self.remember(&t.alarm, e.event_id.clone());
        e
    }

    /// The event of a journaled transition, as it was sent.
    fn of_journal(&self, t: &Transition) -> ConditionEvent {
        let id = ByteString::from(format!("busbar-t{}", t.seq).into_bytes());
        self.event(
            id,
            &t.alarm,
            t.source,
            &t.device,
            &t.point,
            t.time,
            &t.message,
            t.severity.number(),
            t.state,
            t.level,
            Some(&t.actor),
        )
    }

    /// The event of an alarm as it is now, for a refresh: the last EventId sent for it, or a
    /// new one when none was sent since the start.
    pub fn of_view(&self, v: &AlarmView) -> ConditionEvent {
        let id = self.last_sent(&v.id).unwrap_or_else(|| {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let id = ByteString::from(format!("busbar-s{}.{n}", v.number).into_bytes());
            self.remember(&v.id, id.clone());
            id
        });
        self.event(
            id,
            &v.id,
            v.source,
            &v.device,
            &v.point,
            v.changed.unwrap_or_else(SystemTime::now),
            &v.message,
            v.severity.number(),
            v.state,
            v.level,
            None,
        )
    }

    /// The device node an event is notified on (its subscribers and the Server's get it).
    pub fn notifier_of(&self, e: &ConditionEvent) -> NodeId {
        self.devices
            .get(&e.device)
            .cloned()
            .unwrap_or_else(|| ObjectId::Server.into())
    }

    /// Condition objects under their devices: `device -HasCondition-> condition`, typed by
    /// their kind. Their state travels in events (Part 9 lets a server keep conditions out of
    /// the browse tree; these are here so that a client can find them).
    pub fn place(&self, space: &mut opcua::server::address_space::AddressSpace, views: &[AlarmView]) {
        for v in views {
            let id = condition_node(self.ns, &v.id);
            let kind = ConditionKind::of(v.source);
            let Some(device) = self.devices.get(&v.device) else {
                continue;
            };
            ObjectBuilder::new(&id, QualifiedName::new(self.ns, v.id.as_str()), v.id.as_str())
                .has_type_definition(kind.types()[0])
                .description(v.message.as_str())
                .insert(space);
            space.insert_reference(device, &id, ReferenceTypeId::HasCondition);
        }
    }

    /// A RefreshStart / RefreshEnd / RefreshRequired event with a fresh EventId.
    fn marker(&self, event_type: ObjectTypeId) -> RefreshEvent {
        RefreshEvent {
            event_id: ByteString::from(
                format!("busbar-r{}", self.counter.fetch_add(1, Ordering::Relaxed)).into_bytes(),
            ),
            event_type: event_type.into(),
            time: DateTime::now(),
        }
    }

    /// The standard method ids handled here.
    pub fn handles(method: &NodeId) -> bool {
        matches!(
            method.as_method_id(),
            Ok(MethodId::AcknowledgeableConditionType_Acknowledge
                | MethodId::ConditionType_AddComment
                | MethodId::ConditionType_Enable
                | MethodId::ConditionType_Disable
                | MethodId::ConditionType_ConditionRefresh
                | MethodId::ConditionType_ConditionRefresh2)
        )
    }

    /// Run one condition method call.
    pub async fn call(&self, context: &RequestContext, call: &mut MethodCall) {
        let status = match self.run(context, call).await {
            Ok(()) => StatusCode::Good,
            Err(s) => s,
        };
        call.set_status(status);
    }

    async fn run(&self, context: &RequestContext, call: &MethodCall) -> Result<(), StatusCode> {
        let method = call
            .method_id()
            .as_method_id()
            .map_err(|_| StatusCode::BadMethodInvalid)?;
        let args = call.arguments();
        match method {
            MethodId::ConditionType_ConditionRefresh => {
                let [Variant::UInt32(sub)] = args else {
                    return Err(StatusCode::BadInvalidArgument);
                };
                return self.refresh(context, *sub, None).await;
            }
            MethodId::ConditionType_ConditionRefresh2 => {
                let [Variant::UInt32(sub), Variant::UInt32(item)] = args else {
                    return Err(StatusCode::BadInvalidArgument);
                };
                return self.refresh(context, *sub, Some(*item)).await;
            }
            _ => {}
        }
        let alarm = self.alarm_of(call.object_id()).ok_or(StatusCode::BadNodeIdUnknown)?;
        if !context
            .authenticator
            .is_user_executable(&context.token, call.method_id())
        {
            return Err(StatusCode::BadUserAccessDenied);
        }
        let user = match context.token.0.strip_prefix("user-") {
            Some(name) => name.to_string(),
            None => "anonymous".to_string(),
        };
        let mut actor = Actor {
            user,
            via: "opcua".into(),
            comment: String::new(),
        };
        let action = match method {
            MethodId::AcknowledgeableConditionType_Acknowledge | MethodId::ConditionType_AddComment => {
                let [Variant::ByteString(event_id), comment] = args else {
                    return Err(StatusCode::BadInvalidArgument);
                };
                actor.comment = match comment {
                    Variant::LocalizedText(t) => t.text.as_ref().to_string(),
                    Variant::Empty => String::new(),
                    _ => return Err(StatusCode::BadInvalidArgument),
                };
                if !self.knows(alarm, event_id) {
                    return Err(StatusCode::BadEventIdUnknown);
                }
                if method == MethodId::ConditionType_AddComment {
                    Action::Comment
                } else {
                    Action::Acknowledge
                }
            }
            MethodId::ConditionType_Enable => Action::Enable,
            MethodId::ConditionType_Disable => Action::Disable,
            _ => return Err(StatusCode::BadMethodInvalid),
        };
        match self.alarms.act(alarm, action, actor).await {
            Ok(_) => Ok(()),
            Err(AlarmError::Action(e)) => Err(status_of_action_error(action, &e)),
            Err(AlarmError::Journal(e)) => {
                tracing::warn!(alarm, "OPC UA: {e}");
                Err(StatusCode::BadInternalError)
            }
        }
    }

    /// ConditionRefresh(2): RefreshStart, the retained conditions, RefreshEnd, to the event
    /// items of one subscription of this session (or one of its items).
    async fn refresh(&self, context: &RequestContext, sub: u32, item: Option<u32>) -> Result<(), StatusCode> {
        let events: Vec<ConditionEvent> = self
            .alarms
            .all()
            .await
            .iter()
            .filter(|v| retained(&v.state))
            .map(|v| self.of_view(v))
            .collect();
        let subs = context
            .subscriptions
            .get_session_subscriptions(context.session_id)
            .ok_or(StatusCode::BadSubscriptionIdInvalid)?;
        let type_tree = context.type_tree.read();
        let mut subs = subs.lock();
        let sub = subs.get_mut(sub).ok_or(StatusCode::BadSubscriptionIdInvalid)?;
        let targets: Vec<(u32, NodeId)> = sub
            .items()
            .filter(|i| i.item_to_monitor().attribute_id == AttributeId::EventNotifier)
            .filter(|i| item.is_none_or(|n| i.id() == n))
            .map(|i| (i.id(), i.item_to_monitor().node_id.clone()))
            .collect();
        if item.is_some() && targets.is_empty() {
            return Err(StatusCode::BadMonitoredItemIdInvalid);
        }
        let server: NodeId = ObjectId::Server.into();
        for (id, node) in targets {
            let marker = |t: ObjectTypeId| self.marker(t);
            sub.notify_event(&id, &marker(ObjectTypeId::RefreshStartEventType), &*type_tree);
            for e in &events {
                if node == server || self.notifier_of(e) == node {
                    sub.notify_event(&id, e, &*type_tree);
                }
            }
            sub.notify_event(&id, &marker(ObjectTypeId::RefreshEndEventType), &*type_tree);
        }
        Ok(())
    }

    /// HistoryReadEvents on the Server object: the journal's transitions as the condition
    /// events they were, through the request's filter, with a continuation point when more
    /// than `numValuesPerNode` (10,000 when 0) are in the window.
    pub async fn history_events(&self, context: &RequestContext, details: &ReadEventDetails, node: &mut HistoryNode) {
        let status = match self.history_events_of(context, details, node).await {
            Ok(()) => StatusCode::Good,
            Err(s) => s,
        };
        node.set_status(status);
    }

    async fn history_events_of(
        &self,
        context: &RequestContext,
        details: &ReadEventDetails,
        node: &mut HistoryNode,
    ) -> Result<(), StatusCode> {
        let (start, end) = (unix_ms_of(&details.start_time), unix_ms_of(&details.end_time));
        // Part 11, 6.4.2: forward from start, backward when start is after end or only the end
        // is given; neither bound is an error.
        let (forward, from_ms, to_ms) = match (start, end) {
            (None, None) => return Err(StatusCode::BadInvalidTimestampArgument),
            (Some(s), Some(e)) if s <= e => (true, Some(s), Some(e)),
            (Some(s), Some(e)) => (false, Some(e), Some(s.saturating_add(1))),
            (Some(s), None) => (true, Some(s), None),
            (None, Some(e)) => (false, None, Some(e.saturating_add(1))),
        };
        let offset = match node.continuation_point() {
            Some(cp) => {
                cp.get::<EventsCursor>()
                    .ok_or(StatusCode::BadContinuationPointInvalid)?
                    .offset
            }
            None => 0,
        };
        let max = match details.num_values_per_node {
            0 => HISTORY_EVENTS_MAX,
            n => (n as usize).min(HISTORY_EVENTS_MAX),
        };
        let rows = self
            .alarms
            .history(Filter {
                from_ms,
                to_ms,
                limit: max + 1,
                offset,
                oldest_first: forward,
                ..Filter::default()
            })
            .await
            .map_err(|e| {
                tracing::warn!("OPC UA HistoryReadEvents: {e}");
                StatusCode::BadInternalError
            })?;
        let type_tree = context.get_type_tree_for_user();
        let (_, filter) = ParsedEventFilter::new(details.filter.clone(), type_tree.get());
        let filter = filter?;
        let events: Vec<HistoryEventFieldList> = rows
            .iter()
            .take(max)
            .filter_map(|t| {
                let e = self.of_journal(t);
                filter.evaluate(&e, 0, type_tree.get()).map(|l| HistoryEventFieldList {
                    event_fields: l.event_fields,
                })
            })
            .collect();
        node.set_result(HistoryEvent { events: Some(events) });
        if rows.len() > max {
            node.set_next_continuation_point(Some(ContinuationPoint::new(Box::new(EventsCursor {
                offset: offset + max,
            }))));
        }
        Ok(())
    }

    /// Committed transitions -> condition events, until the bridge stops.
    pub fn feed(
        self: Arc<Self>,
        subs: Arc<SubscriptionCache>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let mut rx = self.alarms.subscribe();
        tokio::spawn(async move {
            loop {
                let t = tokio::select! {
                    t = rx.recv() => t,
                    _ = shutdown.changed() => break,
                };
                match t {
                    Ok(t) => {
                        let e = self.of_transition(&t);
                        let node = self.notifier_of(&e);
                        subs.notify_events(std::iter::once((&e as &dyn Event, &node)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Part 9, 5.11.4: tell the clients to refresh.
                        tracing::warn!("OPC UA: {n} alarm transitions missed; RefreshRequired sent");
                        let e = self.marker(ObjectTypeId::RefreshRequiredEventType);
                        let server = NodeId::from(ObjectId::Server);
                        subs.notify_events(std::iter::once((&e as &dyn Event, &server)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}

/// An engine refusal -> the StatusCode Part 9 gives it.
fn status_of_action_error(action: Action, e: &ActionError) -> StatusCode {
    match (e, action) {
        (ActionError::Unknown(_), _) => StatusCode::BadNodeIdUnknown,
        (ActionError::Already(..), Action::Acknowledge) => StatusCode::BadConditionBranchAlreadyAcked,
        (ActionError::Already(..), Action::Enable) => StatusCode::BadConditionAlreadyEnabled,
        (ActionError::Already(..), Action::Disable) => StatusCode::BadConditionAlreadyDisabled,
        (ActionError::EmptyComment, _) => StatusCode::BadInvalidArgument,
        _ => StatusCode::BadInvalidState,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> QualifiedName {
        QualifiedName::new(0, name)
    }

    fn sample(kind: ConditionKind, state: AlarmState, level: Option<Level>) -> ConditionEvent {
        ConditionEvent {
            event_id: ByteString::from(b"busbar-t7".to_vec()),
            kind,
            event_type: kind.types()[0].into(),
            condition_id: condition_node(2, "threshold/tanks/water"),
            source_node: NodeId::new(2, "tanks/tank1.water"),
            source_name: "tanks/tank1.water".into(),
            device: "tanks".into(),
            condition_name: "threshold/tanks/water".into(),
            time: DateTime::now(),
            receive_time: DateTime::now(),
            message: "water high".into(),
            severity: 700,
            state,
            level,
            comment: String::new(),
            client_user_id: String::new(),
        }
    }

    fn field(e: &ConditionEvent, ty: ObjectTypeId, path: &[&str]) -> Variant {
        let path: Vec<QualifiedName> = path.iter().map(|p| q(p)).collect();
        e.get_field(&ty.into(), AttributeId::Value, &NumericRange::None, &path)
    }

    #[test]
    fn fields_follow_the_state() {
        let active = AlarmState {
            active: true,
            acknowledged: false,
            shelved_until_ms: None,
            disabled: false,
        };
        let e = sample(ConditionKind::Level, active, Some(Level::High));
        use ObjectTypeId::*;
        assert_eq!(field(&e, BaseEventType, &["Severity"]), Variant::UInt16(700));
        assert_eq!(
            field(&e, AlarmConditionType, &["ActiveState", "Id"]),
            Variant::Boolean(true)
        );
        assert_eq!(
            field(&e, AcknowledgeableConditionType, &["AckedState", "Id"]),
            Variant::Boolean(false)
        );
        assert_eq!(field(&e, ConditionType, &["Retain"]), Variant::Boolean(true));
        assert_eq!(
            field(&e, ExclusiveLimitAlarmType, &["LimitState", "CurrentState"]),
            Variant::from(LocalizedText::new("en", "High"))
        );
        assert_eq!(
            field(&e, BaseEventType, &["EventType"]),
            Variant::from(NodeId::from(ExclusiveLevelAlarmType))
        );
        // A type the event is not of: nothing.
        assert_eq!(field(&e, OffNormalAlarmType, &["Severity"]), Variant::Empty);
        // The ConditionId: the NodeId attribute with an empty path.
        assert_eq!(
            e.get_field(&ConditionType.into(), AttributeId::NodeId, &NumericRange::None, &[]),
            Variant::from(condition_node(2, "threshold/tanks/water"))
        );
        // Cleared and acknowledged: no longer retained.
        let quiet = sample(
            ConditionKind::OffNormal,
            AlarmState {
                acknowledged: true,
                ..Default::default()
            },
            None,
        );
        assert_eq!(field(&quiet, ConditionType, &["Retain"]), Variant::Boolean(false));
        assert_eq!(
            field(&quiet, ExclusiveLimitAlarmType, &["LimitState", "CurrentState"]),
            Variant::Empty
        );
        assert_eq!(
            field(&quiet, AlarmConditionType, &["ShelvingState", "CurrentState"]),
            Variant::from(LocalizedText::new("en", "Unshelved"))
        );
    }

    #[test]
    fn opc_ua_times_as_unix_ms() {
        let t = DateTime::from(opcua::types::date_time::DateTimeUtc::from(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_123),
        ));
        assert_eq!(unix_ms_of(&t), Some(1_765_000_000_123));
        assert_eq!(unix_ms_of(&DateTime::null()), None);
    }

    #[test]
    fn kinds_by_source() {
        assert_eq!(
            ConditionKind::of(Source::Threshold).types()[0],
            ObjectTypeId::ExclusiveLevelAlarmType
        );
        assert_eq!(
            ConditionKind::of(Source::Device).types()[0],
            ObjectTypeId::OffNormalAlarmType
        );
        assert_eq!(
            ConditionKind::of(Source::Communication).types()[0],
            ObjectTypeId::SystemOffNormalAlarmType
        );
        for s in Source::ALL {
            let t = ConditionKind::of(s).types();
            assert_eq!(t.last(), Some(&ObjectTypeId::BaseEventType));
            assert!(t.contains(&ObjectTypeId::AcknowledgeableConditionType));
        }
    }

    #[test]
    fn engine_refusals_map_to_part_9_codes() {
        let already = ActionError::Already("x".into(), "acknowledged");
        assert_eq!(
            status_of_action_error(Action::Acknowledge, &already),
            StatusCode::BadConditionBranchAlreadyAcked
        );
        assert_eq!(
            status_of_action_error(Action::Disable, &already),
            StatusCode::BadConditionAlreadyDisabled
        );
        assert_eq!(
            status_of_action_error(Action::Comment, &ActionError::EmptyComment),
            StatusCode::BadInvalidArgument
        );
    }
}
