//! The site as BACnet objects: one Device object and one object per acquired point, their
//! identities (the instance rule lives in [`crate::config::Device::bacnet_instance`]) and every
//! property they answer. Quality -> Status_Flags and Reliability is mapped here, in
//! [`fault_of`], and nowhere else.

use super::device::DEVICE_OPTIONAL;
use super::events::{EventDef, EventStatus, NotificationClass};
use super::units::{bacnet_unit, NO_UNITS};
use super::BacnetSettings;
use crate::config::Config;
use crate::store::{PointIdx, PointValue, Sample, Store};
use busbar_bacnet::consts::{error_class, error_code, object_type, property as prop, reliability, status_flags};
use busbar_bacnet::npdu::NetAddr;
use busbar_bacnet::service::PropertyRef;
use busbar_bacnet::{BitString, ObjectId, Value};
use busbar_core::profile::Kind;
use busbar_core::quality::Quality;
use std::collections::HashMap;

/// A BACnet error: (error class, error code).
pub type PropError = (u32, u32);

pub(super) const UNKNOWN_PROPERTY: PropError = (error_class::PROPERTY, error_code::UNKNOWN_PROPERTY);

/// What kind of BACnet object a point becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    AnalogInput,
    BinaryInput,
    MultiStateInput,
    /// Commandable (writable points).
    AnalogValue,
    BinaryValue,
    MultiStateValue,
    /// A set of labelled bits (alarm words).
    BitStringValue,
    /// Text (identification).
    CharacterStringValue,
}

impl ObjectClass {
    /// The class of a point: measured values are inputs, writable points commandable values.
    pub fn of(kind: Kind, writable: bool) -> ObjectClass {
        match (kind, writable) {
            (Kind::Analog | Kind::Counter, false) => ObjectClass::AnalogInput,
            (Kind::Analog | Kind::Counter, true) => ObjectClass::AnalogValue,
            (Kind::Binary, false) => ObjectClass::BinaryInput,
            (Kind::Binary, true) => ObjectClass::BinaryValue,
            (Kind::Enum, false) => ObjectClass::MultiStateInput,
            (Kind::Enum, true) => ObjectClass::MultiStateValue,
            (Kind::Bitmask, _) => ObjectClass::BitStringValue,
            (Kind::String, _) => ObjectClass::CharacterStringValue,
        }
    }

    pub fn object_type(self) -> u16 {
        match self {
            ObjectClass::AnalogInput => object_type::ANALOG_INPUT,
            ObjectClass::BinaryInput => object_type::BINARY_INPUT,
            ObjectClass::MultiStateInput => object_type::MULTI_STATE_INPUT,
            ObjectClass::AnalogValue => object_type::ANALOG_VALUE,
            ObjectClass::BinaryValue => object_type::BINARY_VALUE,
            ObjectClass::MultiStateValue => object_type::MULTI_STATE_VALUE,
            ObjectClass::BitStringValue => object_type::BITSTRING_VALUE,
            ObjectClass::CharacterStringValue => object_type::CHARACTERSTRING_VALUE,
        }
    }

    pub fn commandable(self) -> bool {
        matches!(
            self,
            ObjectClass::AnalogValue | ObjectClass::BinaryValue | ObjectClass::MultiStateValue
        )
    }

    fn is_analog(self) -> bool {
        matches!(self, ObjectClass::AnalogInput | ObjectClass::AnalogValue)
    }

    /// Required and optional properties (clause 12), without Property_List's own four.
    pub fn properties(self) -> (&'static [u32], &'static [u32]) {
        use prop::*;
        match self {
            ObjectClass::AnalogInput => (
                &[PRESENT_VALUE, STATUS_FLAGS, EVENT_STATE, OUT_OF_SERVICE, UNITS],
                &[DESCRIPTION, RELIABILITY, COV_INCREMENT, MIN_PRES_VALUE, MAX_PRES_VALUE],
            ),
            ObjectClass::AnalogValue => (
                &[
                    PRESENT_VALUE,
                    STATUS_FLAGS,
                    EVENT_STATE,
                    OUT_OF_SERVICE,
                    UNITS,
                    PRIORITY_ARRAY,
                    RELINQUISH_DEFAULT,
                ],
                &[DESCRIPTION, RELIABILITY, COV_INCREMENT, MIN_PRES_VALUE, MAX_PRES_VALUE],
            ),
            ObjectClass::BinaryInput => (
                &[PRESENT_VALUE, STATUS_FLAGS, EVENT_STATE, OUT_OF_SERVICE, POLARITY],
                &[DESCRIPTION, RELIABILITY, INACTIVE_TEXT, ACTIVE_TEXT],
            ),
            ObjectClass::BinaryValue => (
                &[
                    PRESENT_VALUE,
                    STATUS_FLAGS,
                    EVENT_STATE,
                    OUT_OF_SERVICE,
                    PRIORITY_ARRAY,
                    RELINQUISH_DEFAULT,
                ],
                &[DESCRIPTION, RELIABILITY, INACTIVE_TEXT, ACTIVE_TEXT],
            ),
            ObjectClass::MultiStateInput => (
                &[
                    PRESENT_VALUE,
                    STATUS_FLAGS,
                    EVENT_STATE,
                    OUT_OF_SERVICE,
                    NUMBER_OF_STATES,
                ],
                &[DESCRIPTION, RELIABILITY, STATE_TEXT],
            ),
            ObjectClass::MultiStateValue => (
                &[
                    PRESENT_VALUE,
                    STATUS_FLAGS,
                    EVENT_STATE,
                    OUT_OF_SERVICE,
                    NUMBER_OF_STATES,
                    PRIORITY_ARRAY,
                    RELINQUISH_DEFAULT,
                ],
                &[DESCRIPTION, RELIABILITY, STATE_TEXT],
            ),
            ObjectClass::BitStringValue => (
                &[PRESENT_VALUE, STATUS_FLAGS],
                &[DESCRIPTION, BIT_TEXT, EVENT_STATE, OUT_OF_SERVICE, RELIABILITY],
            ),
            ObjectClass::CharacterStringValue => (
                &[PRESENT_VALUE, STATUS_FLAGS],
                &[DESCRIPTION, EVENT_STATE, OUT_OF_SERVICE, RELIABILITY],
            ),
        }
    }
}

/// Properties every object has besides its class's (clause 12.1.1): identity and the list.
pub(super) const IDENTITY: [u32; 4] = [
    prop::OBJECT_IDENTIFIER,
    prop::OBJECT_NAME,
    prop::OBJECT_TYPE,
    prop::PROPERTY_LIST,
];

/// The protocol revision this device claims.
pub const PROTOCOL_REVISION: u64 = 14;

/// One point served as an object.
#[derive(Debug, Clone)]
pub struct PointObject {
    pub id: ObjectId,
    pub point: PointIdx,
    pub class: ObjectClass,
    /// `<device>.<point>`.
    pub name: String,
    pub description: String,
    pub units: u32,
    /// Multi-state: the device's raw value of state n + 1 and its text.
    pub states: Vec<(i64, String)>,
    /// Binary: inactive and active texts.
    pub binary_text: Option<(String, String)>,
    /// Bit string: the text of each bit (empty for unlabelled bits).
    pub bits: Vec<String>,
    pub range: Option<(f64, f64)>,
    pub cov_increment: f32,
    /// Its intrinsic reporting, when the alarm settings give the point alarms.
    pub event: Option<EventDef>,
}

/// The Device object's settings.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub id: ObjectId,
    pub name: String,
    pub vendor_id: u16,
    pub location: String,
    pub description: String,
    /// The application layer's limits, which the Device object declares.
    pub apdu: super::ApduLimits,
    /// Where the device is on the virtual network behind the bridge (`None`: the site device,
    /// on the bridge's own B/IP address).
    pub route: Option<NetAddr>,
}

/// Every object of the device.
pub struct ObjectTable {
    pub device: DeviceInfo,
    pub objects: Vec<PointObject>,
    /// Notification Class objects, one per severity, when alarms are configured.
    pub classes: Vec<NotificationClass>,
    by_id: HashMap<ObjectId, usize>,
    by_name: HashMap<String, usize>,
    by_point: HashMap<PointIdx, usize>,
    /// Changes whenever the set of objects (identities, names, types) changes: it is derived
    /// from that set, so it is the same across restarts of the same configuration.
    pub database_revision: u32,
}

/// The default COV_Increment: 0.1 % of the point's plausible range, else any change.
fn default_cov_increment(range: Option<(f64, f64)>) -> f32 {
    range.map_or(0.0, |(lo, hi)| ((hi - lo) * 0.001) as f32)
}

/// The Device instance of a field device on the virtual network: its base x 1000, beside its
/// objects' `base * 1000 + point index` (another object type: no clash), so it follows the same
/// stable rule.
pub fn virtual_device_instance(bacnet_base: u32) -> u32 {
    bacnet_base * crate::config::BACNET_POINTS_PER_BASE
}

/// The MAC address of a field device's BACnet device on the virtual network: its base, two
/// octets (bases are unique and at most 4193).
pub fn virtual_mac(bacnet_base: u32) -> Vec<u8> {
    (bacnet_base as u16).to_be_bytes().to_vec()
}

impl ObjectTable {
    /// The site layout: one device with every object.
    pub fn build(config: &Config, settings: &BacnetSettings, store: &Store) -> ObjectTable {
        let device = DeviceInfo {
            id: ObjectId::new(object_type::DEVICE, settings.device_instance),
            name: settings.device_name.clone(),
            vendor_id: settings.vendor_id,
            location: settings.location.clone(),
            description: settings.description.clone(),
            apdu: settings.apdu.clone(),
            route: None,
        };
        ObjectTable::of_devices(config, store, device, |_| true, config.alarms.is_some())
    }

    /// The tables of the layout in use: the site device alone, or (with a virtual network) the
    /// site device as the router's own with no objects of its own, then one device per field
    /// device with its objects and its Notification Classes.
    pub fn layout(config: &Config, settings: &BacnetSettings, store: &Store) -> Vec<ObjectTable> {
        let Some(network) = settings.virtual_network else {
            return vec![ObjectTable::build(config, settings, store)];
        };
        let site = DeviceInfo {
            id: ObjectId::new(object_type::DEVICE, settings.device_instance),
            name: settings.device_name.clone(),
            vendor_id: settings.vendor_id,
            location: settings.location.clone(),
            description: settings.description.clone(),
            apdu: settings.apdu.clone(),
            route: None,
        };
        let mut tables = vec![ObjectTable::of_devices(config, store, site, |_| false, false)];
        for (d, dev) in config.devices.iter().enumerate() {
            let device = DeviceInfo {
                id: ObjectId::new(object_type::DEVICE, virtual_device_instance(dev.bacnet_base)),
                name: dev.name.clone(),
                vendor_id: settings.vendor_id,
                location: settings.location.clone(),
                description: format!("{} {}", dev.profile.manufacturer, dev.profile.model),
                apdu: settings.apdu.clone(),
                route: Some(NetAddr {
                    net: network,
                    mac: virtual_mac(dev.bacnet_base),
                }),
            };
            tables.push(ObjectTable::of_devices(
                config,
                store,
                device,
                |i| i == d,
                config.alarms.is_some(),
            ));
        }
        tables
    }

    /// A device with the objects of the field devices `serves` selects.
    fn of_devices(
        config: &Config,
        store: &Store,
        device: DeviceInfo,
        serves: impl Fn(usize) -> bool,
        classes: bool,
    ) -> ObjectTable {
        let mut objects = Vec::new();
        for (d, dev) in config.devices.iter().enumerate().filter(|(d, _)| serves(*d)) {
            for &k in &dev.acquired {
                let (Some(p), Some(point)) = (dev.profile.points.get(k), store.point_of(d, k)) else {
                    continue;
                };
                let writable = config.writes_enabled && store.meta(point).is_some_and(|m| m.writable);
                let class = ObjectClass::of(p.kind, writable);
                let units = bacnet_unit(p.unit);
                let mut description = p.description.clone();
                if units.is_none() {
                    description = format!("{description} [{}]", p.unit.symbol());
                }
                let states: Vec<(i64, String)> = if p.kind == Kind::Enum {
                    p.labels.iter().map(|(raw, text)| (*raw, text.clone())).collect()
                } else {
                    Vec::new()
                };
                let binary_text = (p.kind == Kind::Binary).then(|| {
                    let text = |v: i64, default: &str| p.labels.get(&v).cloned().unwrap_or_else(|| default.into());
                    (text(0, "inactive"), text(1, "active"))
                });
                let bits = if p.kind == Kind::Bitmask {
                    let len = p.labels.keys().copied().max().map_or(0, |m| m.clamp(0, 63) + 1);
                    (0..len)
                        .map(|b| p.labels.get(&b).cloned().unwrap_or_default())
                        .collect()
                } else {
                    Vec::new()
                };
                let range = dev.range(k);
                let cov_increment = dev
                    .settings
                    .get(&k)
                    .and_then(|s| s.cov_increment)
                    .map_or_else(|| default_cov_increment(range), |c| c as f32);
                objects.push(PointObject {
                    id: ObjectId::new(class.object_type(), dev.bacnet_instance(k)),
                    point,
                    class,
                    name: format!("{}.{}", dev.name, p.id),
                    description,
                    units: units.unwrap_or(NO_UNITS),
                    states,
                    binary_text,
                    bits,
                    range,
                    cov_increment,
                    event: EventDef::of(config, d, k),
                });
            }
        }
        let by_id = objects.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        let by_name = objects.iter().enumerate().map(|(i, o)| (o.name.clone(), i)).collect();
        let by_point = objects.iter().enumerate().map(|(i, o)| (o.point, i)).collect();
        let classes = if classes { NotificationClass::all() } else { Vec::new() };
        let database_revision = revision_of(&device, &objects, &classes);
        ObjectTable {
            device,
            objects,
            classes,
            by_id,
            by_name,
            by_point,
            database_revision,
        }
    }

    pub fn find(&self, id: ObjectId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// A Notification Class object.
    pub fn find_class(&self, id: ObjectId) -> Option<usize> {
        self.classes.iter().position(|c| c.id == id)
    }

    pub fn find_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn of_point(&self, p: PointIdx) -> Option<usize> {
        self.by_point.get(&p).copied()
    }

    /// The Device object's id for a request's id: the wildcard instance means this device.
    pub fn is_device(&self, id: ObjectId) -> bool {
        id.object_type == object_type::DEVICE
            && (id.instance == self.device.id.instance || id.instance == busbar_bacnet::consts::WILDCARD_INSTANCE)
    }

    /// Any object of this device (the Device, a point, a Notification Class) by its id: its
    /// identifier and name (what Who-Has asks).
    pub fn named_by_id(&self, id: ObjectId) -> Option<(ObjectId, &str)> {
        if self.is_device(id) {
            return Some((self.device.id, &self.device.name));
        }
        if let Some(i) = self.find(id) {
            return Some((self.objects[i].id, &self.objects[i].name));
        }
        let c = &self.classes[self.find_class(id)?];
        Some((c.id, &c.name))
    }

    /// Any object of this device by its name: its identifier.
    pub fn id_by_name(&self, name: &str) -> Option<ObjectId> {
        if name == self.device.name {
            return Some(self.device.id);
        }
        if let Some(i) = self.find_name(name) {
            return Some(self.objects[i].id);
        }
        self.classes.iter().find(|c| c.name == name).map(|c| c.id)
    }
}

/// FNV-1a over the identities, names and types of every object.
fn revision_of(device: &DeviceInfo, objects: &[PointObject], classes: &[NotificationClass]) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    eat(&device.id.to_u32().to_be_bytes());
    eat(device.name.as_bytes());
    for o in objects {
        eat(&o.id.to_u32().to_be_bytes());
        eat(o.name.as_bytes());
    }
    for c in classes {
        eat(&c.id.to_u32().to_be_bytes());
        eat(c.name.as_bytes());
    }
    h & 0x7FFF_FFFF
}

/// Status_Flags FAULT and Reliability of a sample: the one quality mapping for BACnet. A good
/// sample has no fault; anything else is a fault whose reason Reliability gives, while
/// Present_Value keeps the last value read.
pub fn fault_of(sample: &Sample, range: Option<(f64, f64)>) -> Option<u32> {
    match sample.quality {
        Quality::Good => None,
        Quality::CommFailure | Quality::NoValue => Some(reliability::COMMUNICATION_FAILURE),
        Quality::Stale => Some(reliability::UNRELIABLE_OTHER),
        Quality::OutOfRange => {
            let below = matches!((sample.value.as_ref().and_then(PointValue::as_f64), range), (Some(v), Some((lo, _))) if v < lo);
            Some(if below {
                reliability::UNDER_RANGE
            } else {
                reliability::OVER_RANGE
            })
        }
        Quality::DecodeError | Quality::ConfigError => Some(reliability::CONFIGURATION_ERROR),
    }
}

/// Status_Flags of a sample, for an object that reports no events.
pub fn status_flags(sample: &Sample, range: Option<(f64, f64)>) -> Value {
    flags_of(sample, range, false)
}

/// Status_Flags: FAULT from the sample's quality, IN_ALARM from the event state.
fn flags_of(sample: &Sample, range: Option<(f64, f64)>, in_alarm: bool) -> Value {
    let mut flags = BitString::with_len(4);
    flags.set(u32::from(status_flags::IN_ALARM), in_alarm);
    flags.set(u32::from(status_flags::FAULT), fault_of(sample, range).is_some());
    Value::BitString(flags)
}

/// The per-object state: what clients change (COV_Increment, the priority array) and the
/// event state of an event object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectState {
    pub cov_increment: f32,
    /// Commanded values in engineering units, priority 1 first.
    pub priority: [Option<f64>; 16],
    /// Boxed: only event objects have one, and states are cloned per read.
    pub event: Option<Box<EventStatus>>,
}

impl ObjectState {
    pub fn new(o: &PointObject) -> ObjectState {
        ObjectState {
            cov_increment: o.cov_increment,
            priority: [None; 16],
            event: o.event.as_ref().map(|_| Box::default()),
        }
    }

    /// Event_State is not NORMAL.
    pub fn in_alarm(&self) -> bool {
        self.event
            .as_ref()
            .is_some_and(|e| e.state != busbar_bacnet::consts::event_state::NORMAL)
    }

    /// The winning command: (priority, value).
    pub fn active(&self) -> Option<(usize, f64)> {
        self.priority
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.map(|v| (i + 1, v)))
    }
}

impl PointObject {
    /// Present_Value of a sample (the last value read, whatever its quality).
    pub fn present_value(&self, sample: &Sample) -> Value {
        self.value_of(sample.value.as_ref())
    }

    /// A device value as this object's Present_Value type.
    pub fn value_of(&self, v: Option<&PointValue>) -> Value {
        let n = v.and_then(PointValue::as_f64).unwrap_or(0.0);
        match self.class {
            ObjectClass::AnalogInput | ObjectClass::AnalogValue => Value::Real(n as f32),
            ObjectClass::BinaryInput | ObjectClass::BinaryValue => Value::Enumerated(u32::from(n != 0.0)),
            ObjectClass::MultiStateInput | ObjectClass::MultiStateValue => {
                Value::Unsigned(self.state_of(n).unwrap_or(1) as u64)
            }
            ObjectClass::BitStringValue => {
                let mut b = BitString::with_len(self.bits.len() as u32);
                let raw = n.max(0.0) as u64;
                for bit in 0..self.bits.len().min(64) as u32 {
                    b.set(bit, raw & (1 << bit) != 0);
                }
                Value::BitString(b)
            }
            ObjectClass::CharacterStringValue => Value::CharacterString(match v {
                Some(PointValue::Text(t)) => t.clone(),
                Some(PointValue::Number(n)) => n.to_string(),
                None => String::new(),
            }),
        }
    }

    /// The state number (1-based) of a raw device value.
    fn state_of(&self, raw: f64) -> Option<usize> {
        self.states
            .iter()
            .position(|(r, _)| *r as f64 == raw.round())
            .map(|i| i + 1)
    }

    /// A written Present_Value as the engineering value to send to the device.
    pub fn device_value(&self, v: &Value) -> Result<f64, PropError> {
        let wrong_type = (error_class::PROPERTY, error_code::INVALID_DATA_TYPE);
        let out_of_range = (error_class::PROPERTY, error_code::VALUE_OUT_OF_RANGE);
        match self.class {
            ObjectClass::AnalogValue => match v {
                Value::Real(_) | Value::Double(_) | Value::Unsigned(_) | Value::Signed(_) => {
                    let x = v.as_f64().filter(|x| x.is_finite()).ok_or(out_of_range)?;
                    match self.range {
                        Some((lo, hi)) if x < lo || x > hi => Err(out_of_range),
                        _ => Ok(x),
                    }
                }
                _ => Err(wrong_type),
            },
            ObjectClass::BinaryValue => match v {
                Value::Enumerated(b @ (0 | 1)) => Ok(f64::from(*b)),
                Value::Enumerated(_) => Err(out_of_range),
                _ => Err(wrong_type),
            },
            ObjectClass::MultiStateValue => match v {
                Value::Unsigned(n) => {
                    let i = usize::try_from(*n).ok().filter(|i| *i >= 1).ok_or(out_of_range)?;
                    self.states.get(i - 1).map(|(raw, _)| *raw as f64).ok_or(out_of_range)
                }
                _ => Err(wrong_type),
            },
            _ => Err((error_class::PROPERTY, error_code::WRITE_ACCESS_DENIED)),
        }
    }

    /// Every property this object has, for Property_List and ReadPropertyMultiple ALL.
    pub fn property_ids(&self) -> Vec<u32> {
        let (req, opt) = self.class.properties();
        let mut ids: Vec<u32> = IDENTITY
            .iter()
            .chain(req)
            .chain(opt.iter().filter(|p| self.optional_present(**p)))
            .copied()
            .collect();
        if let Some(def) = &self.event {
            ids.extend(def.property_ids(self.class));
        }
        ids
    }

    /// Status_Flags of this object now.
    pub fn status_flags(&self, state: &ObjectState, sample: &Sample) -> Value {
        flags_of(sample, self.range, state.in_alarm())
    }

    /// Whether an optional property of the class is there (the range ones need a range).
    fn optional_present(&self, p: u32) -> bool {
        !matches!(p, prop::MIN_PRES_VALUE | prop::MAX_PRES_VALUE) || self.range.is_some()
    }

    /// Whether the object has property `p` (without building the list: it is asked per read).
    pub fn has_property(&self, p: u32) -> bool {
        let (req, opt) = self.class.properties();
        IDENTITY.contains(&p)
            || req.contains(&p)
            || (opt.contains(&p) && self.optional_present(p))
            || self
                .event
                .as_ref()
                .is_some_and(|d| d.property_ids(self.class).contains(&p))
    }

    /// Read one property.
    pub fn read(&self, state: &ObjectState, sample: &Sample, p: PropertyRef) -> Result<Vec<Value>, PropError> {
        let one = |v: Value| Ok(vec![v]);
        if !self.has_property(p.property) {
            return Err(UNKNOWN_PROPERTY);
        }
        let is_array = matches!(
            p.property,
            prop::PRIORITY_ARRAY
                | prop::STATE_TEXT
                | prop::BIT_TEXT
                | prop::PROPERTY_LIST
                | prop::EVENT_TIME_STAMPS
                | prop::EVENT_MESSAGE_TEXTS
        );
        if p.index.is_some() && !is_array {
            return Err((error_class::PROPERTY, error_code::PROPERTY_IS_NOT_AN_ARRAY));
        }
        if let Some(r) = self.read_event(state, p) {
            return r;
        }
        match p.property {
            prop::OBJECT_IDENTIFIER => one(Value::ObjectId(self.id)),
            prop::OBJECT_NAME => one(Value::CharacterString(self.name.clone())),
            prop::OBJECT_TYPE => one(Value::Enumerated(u32::from(self.id.object_type))),
            prop::DESCRIPTION => one(Value::CharacterString(self.description.clone())),
            prop::PRESENT_VALUE => one(self.present_value(sample)),
            prop::STATUS_FLAGS => one(self.status_flags(state, sample)),
            prop::EVENT_STATE => one(Value::Enumerated(0)),
            prop::OUT_OF_SERVICE => one(Value::Boolean(false)),
            prop::RELIABILITY => one(Value::Enumerated(
                fault_of(sample, self.range).unwrap_or(reliability::NO_FAULT_DETECTED),
            )),
            prop::UNITS => one(Value::Enumerated(self.units)),
            prop::COV_INCREMENT => one(Value::Real(state.cov_increment)),
            prop::MIN_PRES_VALUE => one(Value::Real(self.range.map_or(0.0, |r| r.0 as f32))),
            prop::MAX_PRES_VALUE => one(Value::Real(self.range.map_or(0.0, |r| r.1 as f32))),
            prop::POLARITY => one(Value::Enumerated(0)),
            prop::INACTIVE_TEXT | prop::ACTIVE_TEXT => {
                let (inactive, active) = self.binary_text.clone().unwrap_or_default();
                one(Value::CharacterString(if p.property == prop::ACTIVE_TEXT {
                    active
                } else {
                    inactive
                }))
            }
            prop::NUMBER_OF_STATES => one(Value::Unsigned(self.states.len() as u64)),
            prop::STATE_TEXT => array(
                self.states
                    .iter()
                    .map(|(_, t)| Value::CharacterString(t.clone()))
                    .collect(),
                p.index,
            ),
            prop::BIT_TEXT => array(
                self.bits.iter().map(|t| Value::CharacterString(t.clone())).collect(),
                p.index,
            ),
            prop::PRIORITY_ARRAY => array(
                state
                    .priority
                    .iter()
                    .map(|v| v.map_or(Value::Null, |v| self.value_of(Some(&PointValue::Number(v)))))
                    .collect(),
                p.index,
            ),
            // Relinquishing every priority leaves the field device as it is: the default is
            // what it has now.
            prop::RELINQUISH_DEFAULT => one(self.present_value(sample)),
            prop::PROPERTY_LIST => property_list(self.property_ids(), p.index),
            _ => Err(UNKNOWN_PROPERTY),
        }
    }
}

/// An array property, whole or one element (index 0 = length).
pub(super) fn array(items: Vec<Value>, index: Option<u32>) -> Result<Vec<Value>, PropError> {
    match index {
        None => Ok(items),
        Some(0) => Ok(vec![Value::Unsigned(items.len() as u64)]),
        Some(i) => items
            .into_iter()
            .nth(i as usize - 1)
            .map(|v| vec![v])
            .ok_or((error_class::PROPERTY, error_code::INVALID_ARRAY_INDEX)),
    }
}

/// Property_List: every property but the four every object has (clause 12.1.1.4.1).
pub(super) fn property_list(ids: Vec<u32>, index: Option<u32>) -> Result<Vec<Value>, PropError> {
    array(
        ids.into_iter()
            .filter(|p| !IDENTITY.contains(p))
            .map(Value::Enumerated)
            .collect(),
        index,
    )
}

/// Which properties ALL, REQUIRED or OPTIONAL stand for (clause 15.7.3.1.2); `None` for an
/// ordinary property.
pub fn expand_special(property: u32, all: &[u32], optional: &[u32]) -> Option<Vec<u32>> {
    match property {
        prop::ALL => Some(all.iter().copied().filter(|p| *p != prop::PROPERTY_LIST).collect()),
        prop::REQUIRED => Some(
            all.iter()
                .copied()
                .filter(|p| !optional.contains(p) && *p != prop::PROPERTY_LIST)
                .collect(),
        ),
        prop::OPTIONAL => Some(optional.iter().copied().filter(|p| all.contains(p)).collect()),
        _ => None,
    }
}

/// The optional properties of an object (for REQUIRED / OPTIONAL).
pub fn optional_of(o: Option<&PointObject>) -> &'static [u32] {
    match o {
        Some(o) => o.class.properties().1,
        None => &DEVICE_OPTIONAL,
    }
}

/// The optional properties of a Notification Class object.
pub const CLASS_OPTIONAL: [u32; 1] = [prop::DESCRIPTION];

/// Whether a new value differs enough from the last notified one to notify (COV_Increment for
/// analog objects, any change for the others), or the status flags changed.
pub fn cov_due(o: &PointObject, increment: f32, last: &(Value, Value), now: &(Value, Value)) -> bool {
    if last.1 != now.1 {
        return true;
    }
    match (o.class.is_analog(), &last.0, &now.0) {
        (true, Value::Real(a), Value::Real(b)) => (a - b).abs() >= increment && a != b,
        _ => last.0 != now.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busbar_core::profile::embedded;
    use std::time::Instant;
    use std::time::SystemTime;

    fn table(writes: bool) -> (ObjectTable, std::sync::Arc<Store>) {
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "site: {{ name: S, id: s }}\nwrites: {{ enabled: {writes} }}\nconnections: [{{ name: gw, tcp: {{ host: h, port: 1 }} }}]\n\
             devices:\n  - {{ name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1 }}\n  \
             - {{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 2, bacnet_base: 7, points: {{ command: {{ writable: true }} }} }}\n\
             servers: {{ bacnet: {{ listen: '127.0.0.1:0' }} }}\n"
        );
        let config = crate::config::parse_config("t.yaml", &text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let Some(settings) = config.servers.bacnet.clone() else {
            panic!("no bacnet settings")
        };
        (ObjectTable::build(&config, &settings, &store), store)
    }

    #[test]
    fn any_object_is_found_by_id_and_by_name() {
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\n\
             devices:\n  - { name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1 }\n\
             servers: { bacnet: { listen: '127.0.0.1:0', device_instance: 5 } }\n\
             alarms: { journal: /nonexistent/a.db }\n";
        let config = crate::config::parse_config("t.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let Some(settings) = config.servers.bacnet.clone() else {
            panic!("no bacnet settings")
        };
        let t = ObjectTable::build(&config, &settings, &store);
        let device = t.device.id;
        assert_eq!(t.named_by_id(device), Some((device, t.device.name.as_str())));
        assert_eq!(t.id_by_name(&t.device.name), Some(device));
        let point = &t.objects[0];
        assert_eq!(t.named_by_id(point.id), Some((point.id, point.name.as_str())));
        assert_eq!(t.id_by_name(&point.name), Some(point.id));
        let Some(class) = t.classes.first() else {
            panic!("alarms configured: Notification Classes expected")
        };
        assert_eq!(t.named_by_id(class.id), Some((class.id, class.name.as_str())));
        assert_eq!(t.id_by_name(&class.name), Some(class.id));
        assert_eq!(t.id_by_name("no such object"), None);
        assert_eq!(t.named_by_id(ObjectId::new(object_type::ANALOG_INPUT, 4_000_000)), None);
    }

    #[test]
    fn a_virtual_network_gives_each_field_device_its_own_device() {
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\n\
             devices:\n  - { name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1, bacnet_base: 12 }\n  \
             - { name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 2 }\n\
             servers: { bacnet: { listen: '127.0.0.1:0', device_instance: 5, virtual_network: 1001 } }\n\
             alarms: { journal: /nonexistent/a.db }\n";
        let config = crate::config::parse_config("t.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let Some(settings) = config.servers.bacnet.clone() else {
            panic!("no bacnet settings")
        };
        let site = ObjectTable::build(&config, &settings, &store);
        let tables = ObjectTable::layout(&config, &settings, &store);
        assert_eq!(tables.len(), 3, "the router's device and one per field device");
        let router = &tables[0];
        assert_eq!(router.device.id.instance, 5);
        assert!(router.device.route.is_none() && router.objects.is_empty() && router.classes.is_empty());
        let m = &tables[1];
        assert_eq!(m.device.id.instance, 12_000, "base x 1000");
        assert_eq!(m.device.name, "m");
        assert_eq!(
            m.device.route,
            Some(NetAddr {
                net: 1001,
                mac: vec![0, 12]
            })
        );
        assert_eq!(m.classes.len(), 5, "each device has its Notification Classes");
        // The same objects, with the same instances, as in the site layout.
        let mut split: Vec<ObjectId> = tables.iter().flat_map(|t| t.objects.iter().map(|o| o.id)).collect();
        let mut whole: Vec<ObjectId> = site.objects.iter().map(|o| o.id).collect();
        split.sort_by_key(|id| (id.object_type, id.instance));
        whole.sort_by_key(|id| (id.object_type, id.instance));
        assert_eq!(split, whole);
        assert!(m.objects.iter().all(|o| o.name.starts_with("m.")));
        assert_ne!(m.database_revision, tables[2].database_revision);
        let mut macs: Vec<_> = tables[1..].iter().filter_map(|t| t.device.route.clone()).collect();
        macs.dedup();
        assert_eq!(macs.len(), 2, "one MAC per device");
    }

    fn obj<'a>(t: &'a ObjectTable, name: &str) -> &'a PointObject {
        let Some(i) = t.find_name(name) else {
            panic!("no object {name}")
        };
        &t.objects[i]
    }

    #[test]
    fn instances_follow_the_documented_rule() {
        let (t, _) = table(false);
        let v1 = obj(&t, "m.v1");
        assert_eq!(v1.class, ObjectClass::AnalogInput);
        let base = crate::config::default_bacnet_base("m");
        let profiles = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let k = profiles["socomec-diris-a40"].point_index("v1").unwrap_or(0) as u32;
        assert_eq!(
            v1.id.instance,
            base * 1000 + k,
            "base * 1000 + index of the point in its profile"
        );
        assert_eq!(v1.units, 5, "volts");
        let ats_first = t
            .objects
            .iter()
            .find(|o| o.name.starts_with("ats."))
            .map(|o| o.id.instance);
        assert_eq!(ats_first, Some(7000), "explicit bacnet_base");
        assert_eq!(
            t.database_revision,
            table(false).0.database_revision,
            "same config, same revision"
        );
    }

    #[test]
    fn writable_points_become_commandable_only_when_writes_are_enabled() {
        let (t, _) = table(false);
        assert!(!obj(&t, "ats.command").class.commandable());
        let (t, _) = table(true);
        let o = obj(&t, "ats.command");
        assert!(o.class.commandable(), "{:?}", o.class);
        assert!(o.property_ids().contains(&prop::PRIORITY_ARRAY));
    }

    #[test]
    fn quality_maps_to_fault_and_reliability() {
        let (t, _) = table(false);
        let o = obj(&t, "m.v1");
        let st = ObjectState::new(o);
        let mut s = Sample {
            value: Some(PointValue::Number(231.5)),
            quality: Quality::Good,
            source_time: None,
            last_good: Some(Instant::now()),
        };
        let read = |s: &Sample, p: u32| {
            o.read(
                &st,
                s,
                PropertyRef {
                    property: p,
                    index: None,
                },
            )
        };
        assert_eq!(read(&s, prop::PRESENT_VALUE), Ok(vec![Value::Real(231.5)]));
        assert_eq!(read(&s, prop::RELIABILITY), Ok(vec![Value::Enumerated(0)]));
        s.quality = Quality::CommFailure;
        assert_eq!(
            read(&s, prop::PRESENT_VALUE),
            Ok(vec![Value::Real(231.5)]),
            "the last value stays"
        );
        assert_eq!(read(&s, prop::RELIABILITY), Ok(vec![Value::Enumerated(12)]));
        let Ok(flags) = read(&s, prop::STATUS_FLAGS) else {
            panic!()
        };
        assert_eq!(flags, vec![status_flags(&s, None)]);
        assert!(matches!(&flags[0], Value::BitString(b) if b.get(1) && !b.get(0)));
        s.quality = Quality::OutOfRange;
        s.value = Some(PointValue::Number(-5.0));
        assert_eq!(fault_of(&s, Some((0.0, 500.0))), Some(reliability::UNDER_RANGE));
        s.value = Some(PointValue::Number(900.0));
        assert_eq!(fault_of(&s, Some((0.0, 500.0))), Some(reliability::OVER_RANGE));
    }

    fn restart() -> super::super::device::Restart {
        super::super::device::Restart {
            reason: busbar_bacnet::consts::restart_reason::COLDSTART,
            at: SystemTime::now(),
        }
    }

    #[test]
    fn arrays_read_whole_or_by_index() {
        let (t, _) = table(false);
        let n = t.objects.len() as u64 + 1;
        let list = |index| {
            t.read_device(
                PropertyRef {
                    property: prop::OBJECT_LIST,
                    index,
                },
                SystemTime::now(),
                restart(),
            )
        };
        assert_eq!(list(Some(0)), Ok(vec![Value::Unsigned(n)]));
        assert_eq!(list(Some(1)), Ok(vec![Value::ObjectId(t.device.id)]));
        assert_eq!(list(Some(2)), Ok(vec![Value::ObjectId(t.objects[0].id)]));
        assert_eq!(list(None).map(|v| v.len() as u64), Ok(n));
        assert_eq!(
            list(Some(n as u32 + 1)),
            Err((error_class::PROPERTY, error_code::INVALID_ARRAY_INDEX))
        );
        let name = t.read_device(
            PropertyRef {
                property: prop::OBJECT_NAME,
                index: Some(1),
            },
            SystemTime::now(),
            restart(),
        );
        assert_eq!(name, Err((error_class::PROPERTY, error_code::PROPERTY_IS_NOT_AN_ARRAY)));
    }

    #[test]
    fn multi_state_values_number_the_profile_labels() {
        let (t, _) = table(true);
        let o = obj(&t, "ats.command");
        assert_eq!(o.class, ObjectClass::MultiStateValue);
        let first_raw = o.states.first().map(|s| s.0 as f64);
        assert_eq!(o.device_value(&Value::Unsigned(1)).ok(), first_raw);
        assert_eq!(
            o.device_value(&Value::Unsigned(0)),
            Err((error_class::PROPERTY, error_code::VALUE_OUT_OF_RANGE))
        );
        assert_eq!(
            o.device_value(&Value::Real(1.0)),
            Err((error_class::PROPERTY, error_code::INVALID_DATA_TYPE))
        );
    }

    #[test]
    fn special_property_groups() {
        let (t, _) = table(false);
        let o = obj(&t, "m.v1");
        let all = o.property_ids();
        let req = expand_special(prop::REQUIRED, &all, optional_of(Some(o))).unwrap_or_default();
        assert!(req.contains(&prop::PRESENT_VALUE) && !req.contains(&prop::DESCRIPTION));
        let opt = expand_special(prop::OPTIONAL, &all, optional_of(Some(o))).unwrap_or_default();
        assert!(opt.contains(&prop::DESCRIPTION) && !opt.contains(&prop::UNITS));
        assert_eq!(expand_special(prop::PRESENT_VALUE, &all, &[]), None);
    }
}
