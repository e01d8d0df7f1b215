//! Device management services (clause 16) a BMS sends a device: DeviceCommunicationControl,
//! ReinitializeDevice, TimeSynchronization and UTCTimeSynchronization, with the client encoders
//! tests use.

use crate::tag::{put_context_unsigned, put_tag, DecodeError, Reader, Result};
use crate::value::Value;

/// The longest password the standard allows (clauses 16.1.1.1.3 and 16.4.1.1.2).
pub const MAX_PASSWORD: usize = 20;

/// BACnetDeviceCommunicationControl's enable-disable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Communication {
    Enable = 0,
    /// Answer DeviceCommunicationControl and ReinitializeDevice only (deprecated by revision 20,
    /// still sent by front-ends).
    Disable = 1,
    /// Answer everything, initiate nothing but I-Am in answer to Who-Is.
    DisableInitiation = 2,
}

/// DeviceCommunicationControl-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunicationControl {
    /// Minutes; `None` = until told otherwise.
    pub duration_min: Option<u16>,
    pub state: Communication,
    pub password: Option<String>,
}

/// BACnetReinitializedState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reinitialize {
    Coldstart = 0,
    Warmstart = 1,
    StartBackup = 2,
    EndBackup = 3,
    StartRestore = 4,
    EndRestore = 5,
    AbortRestore = 6,
    ActivateChanges = 7,
}

impl Reinitialize {
    fn of(v: u32) -> Option<Reinitialize> {
        use Reinitialize::*;
        Some(match v {
            0 => Coldstart,
            1 => Warmstart,
            2 => StartBackup,
            3 => EndBackup,
            4 => StartRestore,
            5 => EndRestore,
            6 => AbortRestore,
            7 => ActivateChanges,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use Reinitialize::*;
        match self {
            Coldstart => "coldstart",
            Warmstart => "warmstart",
            StartBackup => "start-backup",
            EndBackup => "end-backup",
            StartRestore => "start-restore",
            EndRestore => "end-restore",
            AbortRestore => "abort-restore",
            ActivateChanges => "activate-changes",
        }
    }
}

/// ReinitializeDevice-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReinitializeDevice {
    pub state: Reinitialize,
    pub password: Option<String>,
}

/// TimeSynchronization (local time) or UTCTimeSynchronization: a date and a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSync {
    pub utc: bool,
    /// Year - 1900, month, day, weekday (255 = unspecified).
    pub date: [u8; 4],
    /// Hour, minute, second, hundredths.
    pub time: [u8; 4],
}

fn password(r: &mut Reader<'_>, n: u8) -> Result<Option<String>> {
    if !r.next_is_context(n) {
        return Ok(None);
    }
    let p = r.context_character_string(n)?;
    if p.is_empty() || p.chars().count() > MAX_PASSWORD {
        return Err(DecodeError::OutOfRange);
    }
    Ok(Some(p))
}

pub fn decode_communication_control(body: &[u8]) -> Result<CommunicationControl> {
    let mut r = Reader::new(body);
    let duration_min = match r.opt_context_unsigned(0)? {
        None => None,
        Some(m) => Some(u16::try_from(m).map_err(|_| DecodeError::OutOfRange)?),
    };
    let state = match r.context_unsigned(1)? {
        0 => Communication::Enable,
        1 => Communication::Disable,
        2 => Communication::DisableInitiation,
        _ => return Err(DecodeError::OutOfRange),
    };
    let password = password(&mut r, 2)?;
    if !r.at_end() {
        return Err(DecodeError::TooMany);
    }
    Ok(CommunicationControl {
        duration_min,
        state,
        password,
    })
}

pub fn decode_reinitialize_device(body: &[u8]) -> Result<ReinitializeDevice> {
    let mut r = Reader::new(body);
    let state = Reinitialize::of(r.context_unsigned(0)?).ok_or(DecodeError::OutOfRange)?;
    let password = password(&mut r, 1)?;
    if !r.at_end() {
        return Err(DecodeError::TooMany);
    }
    Ok(ReinitializeDevice { state, password })
}

pub fn decode_time_sync(body: &[u8], utc: bool) -> Result<TimeSync> {
    let mut r = Reader::new(body);
    let Value::Date(date) = Value::decode(&mut r)? else {
        return Err(DecodeError::WrongType);
    };
    let Value::Time(time) = Value::decode(&mut r)? else {
        return Err(DecodeError::WrongType);
    };
    if !r.at_end() {
        return Err(DecodeError::TooMany);
    }
    Ok(TimeSync { utc, date, time })
}

fn put_password(out: &mut Vec<u8>, n: u8, p: &Option<String>) {
    if let Some(p) = p {
        put_tag(out, n, true, p.len() + 1);
        out.push(0);
        out.extend_from_slice(p.as_bytes());
    }
}

pub mod client {
    use super::*;

    pub fn communication_control(out: &mut Vec<u8>, c: &CommunicationControl) {
        if let Some(m) = c.duration_min {
            put_context_unsigned(out, 0, u64::from(m));
        }
        put_context_unsigned(out, 1, c.state as u64);
        put_password(out, 2, &c.password);
    }

    pub fn reinitialize_device(out: &mut Vec<u8>, r: &ReinitializeDevice) {
        put_context_unsigned(out, 0, r.state as u64);
        put_password(out, 1, &r.password);
    }

    pub fn time_sync(out: &mut Vec<u8>, t: &TimeSync) {
        Value::Date(t.date).encode(out);
        Value::Time(t.time).encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communication_control_round_trips_and_bounds_its_password() {
        let c = CommunicationControl {
            duration_min: Some(5),
            state: Communication::DisableInitiation,
            password: Some("s3cret".into()),
        };
        let mut out = Vec::new();
        client::communication_control(&mut out, &c);
        assert_eq!(decode_communication_control(&out), Ok(c));
        let bare = CommunicationControl {
            duration_min: None,
            state: Communication::Enable,
            password: None,
        };
        let mut out = Vec::new();
        client::communication_control(&mut out, &bare);
        assert_eq!(out, [0x19, 0x00], "enable-disable only");
        assert_eq!(decode_communication_control(&out), Ok(bare));
        let long = CommunicationControl {
            duration_min: None,
            state: Communication::Disable,
            password: Some("x".repeat(21)),
        };
        let mut out = Vec::new();
        client::communication_control(&mut out, &long);
        assert_eq!(decode_communication_control(&out), Err(DecodeError::OutOfRange));
        assert_eq!(
            decode_communication_control(&[0x19, 0x03]),
            Err(DecodeError::OutOfRange)
        );
        assert_eq!(
            decode_communication_control(&[0x0B, 0x01, 0x00, 0x00, 0x19, 0x00]),
            Err(DecodeError::OutOfRange)
        );
        assert!(decode_communication_control(&[]).is_err());
    }

    #[test]
    fn reinitialize_device_round_trips() {
        for state in [
            Reinitialize::Coldstart,
            Reinitialize::Warmstart,
            Reinitialize::ActivateChanges,
        ] {
            let r = ReinitializeDevice {
                state,
                password: Some("pw".into()),
            };
            let mut out = Vec::new();
            client::reinitialize_device(&mut out, &r);
            assert_eq!(decode_reinitialize_device(&out), Ok(r));
        }
        assert_eq!(decode_reinitialize_device(&[0x09, 0x08]), Err(DecodeError::OutOfRange));
        assert_eq!(
            decode_reinitialize_device(&[0x09, 0x01, 0x09, 0x01]),
            Err(DecodeError::TooMany)
        );
    }

    #[test]
    fn time_sync_is_a_date_and_a_time() {
        let t = TimeSync {
            utc: true,
            date: [126, 12, 6, 7],
            time: [19, 5, 30, 50],
        };
        let mut out = Vec::new();
        client::time_sync(&mut out, &t);
        assert_eq!(out, [0xA4, 126, 12, 6, 7, 0xB4, 19, 5, 30, 50]);
        assert_eq!(decode_time_sync(&out, true), Ok(t));
        assert!(decode_time_sync(&out[..5], true).is_err(), "no time");
        assert_eq!(decode_time_sync(&out[5..], true), Err(DecodeError::WrongType));
    }
}
