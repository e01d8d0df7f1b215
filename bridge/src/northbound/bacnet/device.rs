//! The Device object: its required and optional properties, the object list, the services and
//! object types it declares, and what it answers for each property.

use super::objects::*;
use busbar_bacnet::consts::{
    device_status, error_class, error_code, object_type, property as prop, segmentation, services_supported,
};
use busbar_bacnet::service::PropertyRef;
use busbar_bacnet::{BitString, Value};
use busbar_core::time::civil;
use std::time::SystemTime;

pub(super) const DEVICE_REQUIRED: [u32; 19] = [
    prop::SYSTEM_STATUS,
    prop::VENDOR_NAME,
    prop::VENDOR_IDENTIFIER,
    prop::MODEL_NAME,
    prop::FIRMWARE_REVISION,
    prop::APPLICATION_SOFTWARE_VERSION,
    prop::PROTOCOL_VERSION,
    prop::PROTOCOL_REVISION,
    prop::PROTOCOL_SERVICES_SUPPORTED,
    prop::PROTOCOL_OBJECT_TYPES_SUPPORTED,
    prop::OBJECT_LIST,
    prop::MAX_APDU_LENGTH_ACCEPTED,
    prop::SEGMENTATION_SUPPORTED,
    // Required of a device that segments (clause 12.11.20, 12.11.21).
    prop::MAX_SEGMENTS_ACCEPTED,
    prop::APDU_SEGMENT_TIMEOUT,
    prop::APDU_TIMEOUT,
    prop::NUMBER_OF_APDU_RETRIES,
    prop::DEVICE_ADDRESS_BINDING,
    prop::DATABASE_REVISION,
];

pub(super) const DEVICE_OPTIONAL: [u32; 7] = [
    prop::DESCRIPTION,
    prop::LOCATION,
    prop::LOCAL_DATE,
    prop::LOCAL_TIME,
    prop::UTC_OFFSET,
    prop::LAST_RESTART_REASON,
    prop::TIME_OF_DEVICE_RESTART,
];

/// Why and when the device last (re)started: the process start, or a ReinitializeDevice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// BACnetRestartReason.
    pub reason: u32,
    pub at: SystemTime,
}

/// Properties of the Device object.
pub fn device_property_ids() -> Vec<u32> {
    let mut out = IDENTITY.to_vec();
    out.extend_from_slice(&DEVICE_REQUIRED);
    out.extend_from_slice(&DEVICE_OPTIONAL);
    out
}

impl ObjectTable {
    /// Read a property of the Device object.
    pub fn read_device(&self, p: PropertyRef, now: SystemTime, restart: Restart) -> Result<Vec<Value>, PropError> {
        let one = |v: Value| Ok(vec![v]);
        if !(IDENTITY.contains(&p.property)
            || DEVICE_REQUIRED.contains(&p.property)
            || DEVICE_OPTIONAL.contains(&p.property))
        {
            return Err(UNKNOWN_PROPERTY);
        }
        let is_array = matches!(p.property, prop::OBJECT_LIST | prop::PROPERTY_LIST);
        if p.index.is_some() && !is_array {
            return Err((error_class::PROPERTY, error_code::PROPERTY_IS_NOT_AN_ARRAY));
        }
        let d = &self.device;
        match p.property {
            prop::OBJECT_IDENTIFIER => one(Value::ObjectId(d.id)),
            prop::OBJECT_NAME => one(Value::CharacterString(d.name.clone())),
            prop::OBJECT_TYPE => one(Value::Enumerated(u32::from(object_type::DEVICE))),
            prop::SYSTEM_STATUS => one(Value::Enumerated(device_status::OPERATIONAL)),
            prop::VENDOR_NAME => one(Value::CharacterString("Busbar".into())),
            prop::VENDOR_IDENTIFIER => one(Value::Unsigned(u64::from(d.vendor_id))),
            prop::MODEL_NAME => one(Value::CharacterString("busbar bridge".into())),
            prop::FIRMWARE_REVISION | prop::APPLICATION_SOFTWARE_VERSION => {
                one(Value::CharacterString(env!("CARGO_PKG_VERSION").into()))
            }
            prop::PROTOCOL_VERSION => one(Value::Unsigned(1)),
            prop::PROTOCOL_REVISION => one(Value::Unsigned(PROTOCOL_REVISION)),
            prop::PROTOCOL_SERVICES_SUPPORTED => one(Value::BitString(services_bits(!self.classes.is_empty()))),
            prop::PROTOCOL_OBJECT_TYPES_SUPPORTED => one(Value::BitString(self.object_type_bits())),
            prop::OBJECT_LIST => {
                // Index-wise access without building the whole list.
                match p.index {
                    None => Ok(self.object_list()),
                    Some(0) => one(Value::Unsigned((self.objects.len() + self.classes.len()) as u64 + 1)),
                    Some(1) => one(Value::ObjectId(d.id)),
                    Some(i) => {
                        let i = i as usize - 2;
                        let id = match self.objects.get(i) {
                            Some(o) => Some(o.id),
                            None => self.classes.get(i - self.objects.len()).map(|c| c.id),
                        };
                        id.map(|id| vec![Value::ObjectId(id)])
                            .ok_or((error_class::PROPERTY, error_code::INVALID_ARRAY_INDEX))
                    }
                }
            }
            prop::MAX_APDU_LENGTH_ACCEPTED => one(Value::Unsigned(d.apdu.max_length as u64)),
            prop::SEGMENTATION_SUPPORTED => one(Value::Enumerated(segmentation::SEGMENTED_BOTH)),
            prop::MAX_SEGMENTS_ACCEPTED => one(Value::Unsigned(d.apdu.max_segments as u64)),
            prop::APDU_SEGMENT_TIMEOUT => one(Value::Unsigned(d.apdu.segment_timeout.as_millis() as u64)),
            prop::APDU_TIMEOUT => one(Value::Unsigned(d.apdu.timeout.as_millis() as u64)),
            prop::NUMBER_OF_APDU_RETRIES => one(Value::Unsigned(u64::from(d.apdu.retries))),
            prop::DEVICE_ADDRESS_BINDING => Ok(Vec::new()),
            prop::DATABASE_REVISION => one(Value::Unsigned(u64::from(self.database_revision))),
            prop::DESCRIPTION => one(Value::CharacterString(d.description.clone())),
            prop::LOCATION => one(Value::CharacterString(d.location.clone())),
            prop::LOCAL_DATE => {
                let c = civil(now);
                let year = u8::try_from(c.year - 1900).unwrap_or(255);
                one(Value::Date([year, c.month, c.day, c.weekday]))
            }
            prop::LOCAL_TIME => {
                let c = civil(now);
                one(Value::Time([c.hour, c.minute, c.second, (c.millis / 10) as u8]))
            }
            // The bridge keeps UTC: local time is UTC and the offset 0.
            prop::UTC_OFFSET => one(Value::Signed(0)),
            prop::LAST_RESTART_REASON => one(Value::Enumerated(restart.reason)),
            prop::TIME_OF_DEVICE_RESTART => {
                let mut out = Vec::with_capacity(12);
                super::events::stamp_of(Some(restart.at)).encode_choice(&mut out);
                one(Value::Encoded(out))
            }
            prop::PROPERTY_LIST => property_list(device_property_ids(), p.index),
            _ => Err(UNKNOWN_PROPERTY),
        }
    }

    pub fn object_list(&self) -> Vec<Value> {
        std::iter::once(Value::ObjectId(self.device.id))
            .chain(self.objects.iter().map(|o| Value::ObjectId(o.id)))
            .chain(self.classes.iter().map(|c| Value::ObjectId(c.id)))
            .collect()
    }

    fn object_type_bits(&self) -> BitString {
        let mut b = BitString::with_len(u32::from(object_type::COUNT));
        b.set(u32::from(object_type::DEVICE), true);
        for o in &self.objects {
            b.set(u32::from(o.id.object_type), true);
        }
        for c in &self.classes {
            b.set(u32::from(c.id.object_type), true);
        }
        b
    }
}

/// Protocol_Services_Supported: what [`super`] answers and sends (the event services when
/// alarms are configured).
fn services_bits(events: bool) -> BitString {
    use services_supported::*;
    let mut b = BitString::with_len(COUNT);
    for s in [
        CONFIRMED_COV_NOTIFICATION,
        SUBSCRIBE_COV,
        READ_PROPERTY,
        READ_PROPERTY_MULTIPLE,
        WRITE_PROPERTY,
        I_AM,
        I_HAVE,
        UNCONFIRMED_COV_NOTIFICATION,
        WHO_HAS,
        WHO_IS,
        SUBSCRIBE_COV_PROPERTY,
        DEVICE_COMMUNICATION_CONTROL,
        REINITIALIZE_DEVICE,
        TIME_SYNCHRONIZATION,
        UTC_TIME_SYNCHRONIZATION,
    ] {
        b.set(s, true);
    }
    if events {
        for s in [
            ACKNOWLEDGE_ALARM,
            CONFIRMED_EVENT_NOTIFICATION,
            UNCONFIRMED_EVENT_NOTIFICATION,
            GET_EVENT_INFORMATION,
        ] {
            b.set(s, true);
        }
    }
    b
}
