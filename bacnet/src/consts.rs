//! The numbers of the standard (ASHRAE 135 clause 21) that this crate and its users name.

/// Object types (BACnetObjectType).
pub mod object_type {
    pub const ANALOG_INPUT: u16 = 0;
    pub const ANALOG_VALUE: u16 = 2;
    pub const BINARY_INPUT: u16 = 3;
    pub const BINARY_VALUE: u16 = 5;
    pub const DEVICE: u16 = 8;
    pub const MULTI_STATE_INPUT: u16 = 13;
    pub const NOTIFICATION_CLASS: u16 = 15;
    pub const MULTI_STATE_VALUE: u16 = 19;
    pub const BITSTRING_VALUE: u16 = 39;
    pub const CHARACTERSTRING_VALUE: u16 = 40;
    /// Number of object types known to revision 14 (length of Protocol_Object_Types_Supported).
    pub const COUNT: u16 = 60;
}

/// Property identifiers (BACnetPropertyIdentifier).
pub mod property {
    pub const ACKED_TRANSITIONS: u32 = 0;
    pub const ACK_REQUIRED: u32 = 1;
    pub const ACTIVE_TEXT: u32 = 4;
    pub const ALARM_VALUE: u32 = 6;
    pub const ALARM_VALUES: u32 = 7;
    pub const ALL: u32 = 8;
    pub const APDU_SEGMENT_TIMEOUT: u32 = 10;
    pub const APDU_TIMEOUT: u32 = 11;
    pub const APPLICATION_SOFTWARE_VERSION: u32 = 12;
    pub const BIT_TEXT: u32 = 343;
    pub const COV_INCREMENT: u32 = 22;
    pub const DATABASE_REVISION: u32 = 155;
    pub const DEADBAND: u32 = 25;
    pub const DESCRIPTION: u32 = 28;
    pub const DEVICE_ADDRESS_BINDING: u32 = 30;
    pub const EVENT_ENABLE: u32 = 35;
    pub const EVENT_STATE: u32 = 36;
    pub const EVENT_TIME_STAMPS: u32 = 130;
    pub const EVENT_MESSAGE_TEXTS: u32 = 351;
    pub const EVENT_DETECTION_ENABLE: u32 = 353;
    pub const FIRMWARE_REVISION: u32 = 44;
    pub const HIGH_LIMIT: u32 = 45;
    pub const INACTIVE_TEXT: u32 = 46;
    pub const LIMIT_ENABLE: u32 = 52;
    pub const LOCAL_DATE: u32 = 56;
    pub const LOCAL_TIME: u32 = 57;
    pub const LOCATION: u32 = 58;
    pub const LOW_LIMIT: u32 = 59;
    pub const MAX_APDU_LENGTH_ACCEPTED: u32 = 62;
    pub const MAX_PRES_VALUE: u32 = 65;
    pub const MAX_SEGMENTS_ACCEPTED: u32 = 167;
    pub const MIN_PRES_VALUE: u32 = 69;
    pub const MODEL_NAME: u32 = 70;
    pub const NOTIFICATION_CLASS: u32 = 17;
    pub const NOTIFY_TYPE: u32 = 72;
    pub const NUMBER_OF_APDU_RETRIES: u32 = 73;
    pub const NUMBER_OF_STATES: u32 = 74;
    pub const OBJECT_IDENTIFIER: u32 = 75;
    pub const OBJECT_LIST: u32 = 76;
    pub const OBJECT_NAME: u32 = 77;
    pub const OBJECT_TYPE: u32 = 79;
    pub const OPTIONAL: u32 = 80;
    pub const OUT_OF_SERVICE: u32 = 81;
    pub const POLARITY: u32 = 84;
    pub const PRESENT_VALUE: u32 = 85;
    pub const PRIORITY: u32 = 86;
    pub const PRIORITY_ARRAY: u32 = 87;
    pub const PROTOCOL_OBJECT_TYPES_SUPPORTED: u32 = 96;
    pub const PROTOCOL_SERVICES_SUPPORTED: u32 = 97;
    pub const PROTOCOL_VERSION: u32 = 98;
    pub const PROTOCOL_REVISION: u32 = 139;
    pub const RECIPIENT_LIST: u32 = 102;
    pub const RELIABILITY: u32 = 103;
    pub const RELINQUISH_DEFAULT: u32 = 104;
    pub const REQUIRED: u32 = 105;
    pub const SEGMENTATION_SUPPORTED: u32 = 107;
    pub const STATE_TEXT: u32 = 110;
    pub const STATUS_FLAGS: u32 = 111;
    pub const SYSTEM_STATUS: u32 = 112;
    pub const TIME_DELAY: u32 = 113;
    pub const UNITS: u32 = 117;
    pub const UTC_OFFSET: u32 = 119;
    pub const VENDOR_IDENTIFIER: u32 = 120;
    pub const VENDOR_NAME: u32 = 121;
    pub const PROPERTY_LIST: u32 = 371;
    pub const LAST_RESTART_REASON: u32 = 196;
    pub const TIME_OF_DEVICE_RESTART: u32 = 203;
    pub const TIME_DELAY_NORMAL: u32 = 356;
    pub const CURRENT_COMMAND_PRIORITY: u32 = 431;
}

/// BACnetRestartReason.
pub mod restart_reason {
    pub const COLDSTART: u32 = 1;
    pub const WARMSTART: u32 = 2;
}

/// Confirmed service choices (BACnetConfirmedServiceChoice).
pub mod confirmed {
    pub const ACKNOWLEDGE_ALARM: u8 = 0;
    pub const CONFIRMED_COV_NOTIFICATION: u8 = 1;
    pub const CONFIRMED_EVENT_NOTIFICATION: u8 = 2;
    pub const SUBSCRIBE_COV: u8 = 5;
    pub const READ_PROPERTY: u8 = 12;
    pub const READ_PROPERTY_MULTIPLE: u8 = 14;
    pub const WRITE_PROPERTY: u8 = 15;
    pub const DEVICE_COMMUNICATION_CONTROL: u8 = 17;
    pub const REINITIALIZE_DEVICE: u8 = 20;
    pub const SUBSCRIBE_COV_PROPERTY: u8 = 28;
    pub const GET_EVENT_INFORMATION: u8 = 29;
}

/// Unconfirmed service choices (BACnetUnconfirmedServiceChoice).
pub mod unconfirmed {
    pub const I_AM: u8 = 0;
    pub const I_HAVE: u8 = 1;
    pub const UNCONFIRMED_COV_NOTIFICATION: u8 = 2;
    pub const UNCONFIRMED_EVENT_NOTIFICATION: u8 = 3;
    pub const TIME_SYNCHRONIZATION: u8 = 6;
    pub const WHO_HAS: u8 = 7;
    pub const WHO_IS: u8 = 8;
    pub const UTC_TIME_SYNCHRONIZATION: u8 = 9;
}

/// Bit positions in Protocol_Services_Supported (BACnetServicesSupported).
pub mod services_supported {
    pub const ACKNOWLEDGE_ALARM: u32 = 0;
    pub const CONFIRMED_COV_NOTIFICATION: u32 = 1;
    pub const CONFIRMED_EVENT_NOTIFICATION: u32 = 2;
    pub const SUBSCRIBE_COV: u32 = 5;
    pub const READ_PROPERTY: u32 = 12;
    pub const READ_PROPERTY_MULTIPLE: u32 = 14;
    pub const WRITE_PROPERTY: u32 = 15;
    pub const DEVICE_COMMUNICATION_CONTROL: u32 = 17;
    pub const REINITIALIZE_DEVICE: u32 = 20;
    pub const I_AM: u32 = 26;
    pub const I_HAVE: u32 = 27;
    pub const UNCONFIRMED_COV_NOTIFICATION: u32 = 28;
    pub const UNCONFIRMED_EVENT_NOTIFICATION: u32 = 29;
    pub const WHO_HAS: u32 = 33;
    pub const TIME_SYNCHRONIZATION: u32 = 32;
    pub const WHO_IS: u32 = 34;
    pub const UTC_TIME_SYNCHRONIZATION: u32 = 36;
    pub const SUBSCRIBE_COV_PROPERTY: u32 = 38;
    pub const GET_EVENT_INFORMATION: u32 = 39;
    /// Length of the bit string in revision 14.
    pub const COUNT: u32 = 44;
}

/// Error classes (BACnetErrorClass).
pub mod error_class {
    pub const DEVICE: u32 = 0;
    pub const OBJECT: u32 = 1;
    pub const PROPERTY: u32 = 2;
    pub const RESOURCES: u32 = 3;
    pub const SECURITY: u32 = 4;
    pub const SERVICES: u32 = 5;
    pub const COMMUNICATION: u32 = 7;
}

/// Error codes (BACnetErrorCode).
pub mod error_code {
    pub const OTHER: u32 = 0;
    pub const INVALID_TIME_STAMP: u32 = 14;
    pub const NO_SPACE_TO_ADD_LIST_ELEMENT: u32 = 19;
    pub const INVALID_DATA_TYPE: u32 = 9;
    pub const OPERATIONAL_PROBLEM: u32 = 25;
    pub const PASSWORD_FAILURE: u32 = 26;
    pub const SERVICE_REQUEST_DENIED: u32 = 29;
    pub const TIMEOUT: u32 = 30;
    pub const UNKNOWN_OBJECT: u32 = 31;
    pub const UNKNOWN_PROPERTY: u32 = 32;
    pub const VALUE_OUT_OF_RANGE: u32 = 37;
    pub const WRITE_ACCESS_DENIED: u32 = 40;
    pub const INVALID_ARRAY_INDEX: u32 = 42;
    pub const COV_SUBSCRIPTION_FAILED: u32 = 43;
    pub const NOT_COV_PROPERTY: u32 = 44;
    pub const OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED: u32 = 45;
    pub const PROPERTY_IS_NOT_AN_ARRAY: u32 = 50;
    pub const ABORT_SEGMENTATION_NOT_SUPPORTED: u32 = 54;
    pub const INVALID_EVENT_STATE: u32 = 73;
    pub const NO_ALARM_CONFIGURED: u32 = 74;
    pub const UNKNOWN_SUBSCRIPTION: u32 = 79;
}

/// Reject reasons (BACnetRejectReason).
pub mod reject_reason {
    pub const OTHER: u8 = 0;
    pub const INVALID_PARAMETER_DATA_TYPE: u8 = 3;
    pub const INVALID_TAG: u8 = 4;
    pub const MISSING_REQUIRED_PARAMETER: u8 = 5;
    pub const PARAMETER_OUT_OF_RANGE: u8 = 6;
    pub const TOO_MANY_ARGUMENTS: u8 = 7;
    pub const UNRECOGNIZED_SERVICE: u8 = 9;
}

/// Abort reasons (BACnetAbortReason).
pub mod abort_reason {
    pub const OTHER: u8 = 0;
    pub const BUFFER_OVERFLOW: u8 = 1;
    pub const INVALID_APDU_IN_THIS_STATE: u8 = 2;
    pub const SEGMENTATION_NOT_SUPPORTED: u8 = 4;
    pub const WINDOW_SIZE_OUT_OF_RANGE: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 9;
    pub const TSM_TIMEOUT: u8 = 10;
    pub const APDU_TOO_LONG: u8 = 11;
}

/// BACnetReliability.
pub mod reliability {
    pub const NO_FAULT_DETECTED: u32 = 0;
    pub const OVER_RANGE: u32 = 2;
    pub const UNDER_RANGE: u32 = 3;
    pub const UNRELIABLE_OTHER: u32 = 7;
    pub const MULTI_STATE_FAULT: u32 = 9;
    pub const CONFIGURATION_ERROR: u32 = 10;
    pub const COMMUNICATION_FAILURE: u32 = 12;
}

/// BACnetEventState.
pub mod event_state {
    pub const NORMAL: u32 = 0;
    pub const FAULT: u32 = 1;
    pub const OFFNORMAL: u32 = 2;
    pub const HIGH_LIMIT: u32 = 3;
    pub const LOW_LIMIT: u32 = 4;
}

/// BACnetEventType.
pub mod event_type {
    pub const CHANGE_OF_BITSTRING: u32 = 0;
    pub const CHANGE_OF_STATE: u32 = 1;
    pub const OUT_OF_RANGE: u32 = 5;
    pub const CHANGE_OF_RELIABILITY: u32 = 19;
}

/// BACnetNotifyType.
pub mod notify_type {
    pub const ALARM: u32 = 0;
    pub const EVENT: u32 = 1;
    pub const ACK_NOTIFICATION: u32 = 2;
}

/// BACnetSegmentation.
pub mod segmentation {
    pub const SEGMENTED_BOTH: u32 = 0;
    pub const NO_SEGMENTATION: u32 = 3;
}

/// BACnetDeviceStatus.
pub mod device_status {
    pub const OPERATIONAL: u32 = 0;
}

/// Bits of BACnetStatusFlags.
pub mod status_flags {
    pub const IN_ALARM: u8 = 0;
    pub const FAULT: u8 = 1;
    pub const OVERRIDDEN: u8 = 2;
    pub const OUT_OF_SERVICE: u8 = 3;
}

/// The instance that means "this device" in a Device object identifier (clause 15.5).
pub const WILDCARD_INSTANCE: u32 = 0x3F_FFFF;
/// The largest APDU BACnet/IP carries.
pub const MAX_APDU_IP: usize = 1476;
