//! Device management a BMS uses (clause 16): DeviceCommunicationControl (what the device
//! answers and initiates, for a while, on the store's clock), ReinitializeDevice (the BACnet
//! server starts over: subscriptions, transactions and notifications in flight are dropped, the
//! device says I-Am again), both behind the configured password; TimeSynchronization and
//! UTCTimeSynchronization, logged with the difference to the host clock and never applied to
//! it (the host keeps its own time source).

use super::device::Restart;
use super::*;
use busbar_bacnet::consts::restart_reason;
use busbar_bacnet::management::{Communication, CommunicationControl, Reinitialize, ReinitializeDevice, TimeSync};
use busbar_core::time::civil;
use std::time::SystemTime;

/// What DeviceCommunicationControl set, and until when.
#[derive(Debug, Clone)]
pub struct ManagementState {
    communication: Communication,
    /// `None`: until told otherwise.
    until: Option<Instant>,
    pub restart: Restart,
}

impl ManagementState {
    pub fn new(started: SystemTime) -> ManagementState {
        ManagementState {
            communication: Communication::Enable,
            until: None,
            restart: Restart {
                reason: restart_reason::COLDSTART,
                at: started,
            },
        }
    }

    /// The communication state at `now`: a timed state ends by itself.
    pub fn communication(&mut self, now: Instant) -> Communication {
        if self.until.is_some_and(|u| now >= u) {
            tracing::info!("bacnet: DeviceCommunicationControl period over: communication enabled again");
            self.communication = Communication::Enable;
            self.until = None;
        }
        self.communication
    }

    fn set(&mut self, c: Communication, until: Option<Instant>) {
        self.communication = c;
        self.until = if c == Communication::Enable { None } else { until };
    }
}

impl Default for ManagementState {
    fn default() -> Self {
        ManagementState::new(SystemTime::UNIX_EPOCH)
    }
}

/// The state a date and time name, as text (`2026-12-06 19:05:30.50`), with unspecified fields
/// as `*`.
fn date_time_text(date: [u8; 4], time: [u8; 4]) -> String {
    let f = |v: u8, w: usize| {
        if v == 0xFF {
            "*".repeat(w.min(2))
        } else {
            format!("{v:0w$}")
        }
    };
    let year = if date[0] == 0xFF {
        "*".to_string()
    } else {
        (1900 + u32::from(date[0])).to_string()
    };
    format!(
        "{year}-{}-{} {}:{}:{}.{}",
        f(date[1], 2),
        f(date[2], 2),
        f(time[0], 2),
        f(time[1], 2),
        f(time[2], 2),
        f(time[3], 2)
    )
}

/// Seconds from the host clock to the time a client sent, if it names a full date and time.
fn offset_s(date: [u8; 4], time: [u8; 4], host: SystemTime) -> Option<f64> {
    if date[..3].contains(&0xFF) || time[..3].contains(&0xFF) {
        return None;
    }
    if !(1..=12).contains(&date[1]) || !(1..=31).contains(&date[2]) || time[0] > 23 || time[1] > 59 || time[2] > 60 {
        return None;
    }
    let days = busbar_core::time::days_from_civil(1900 + i64::from(date[0]), i64::from(date[1]), i64::from(date[2]));
    let hundredths = if time[3] == 0xFF { 0 } else { time[3] };
    let given = days as f64 * 86_400.0
        + f64::from(time[0]) * 3600.0
        + f64::from(time[1]) * 60.0
        + f64::from(time[2])
        + f64::from(hundredths) / 100.0;
    let host = host.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64();
    Some(given - host)
}

impl Server {
    /// The communication state now (DeviceCommunicationControl).
    pub(super) fn communication(&self) -> Communication {
        let now = self.store.clock().now();
        self.state().management.communication(now)
    }

    /// Whether the device may send what nobody asked for (notifications, Who-Is, I-Am at
    /// start): not while DeviceCommunicationControl disables it.
    pub(super) fn may_initiate(&self) -> bool {
        self.communication() == Communication::Enable
    }

    /// The password check of both services: refused without a configured password.
    fn authorize(&self, peer: &Peer, service: &str, given: Option<&str>) -> Result<(), PropError> {
        let Some(password) = &self.settings.password else {
            tracing::warn!(
                "bacnet: {service} from {} refused: no servers.bacnet.password is configured",
                peer.addr
            );
            return Err((error_class::SERVICES, error_code::SERVICE_REQUEST_DENIED));
        };
        if given != Some(password.as_str()) {
            tracing::warn!(
                "bacnet: {service} from {} refused: {} password",
                peer.addr,
                if given.is_some() { "wrong" } else { "no" }
            );
            return Err((error_class::SECURITY, error_code::PASSWORD_FAILURE));
        }
        Ok(())
    }

    pub(super) fn communication_control(&self, peer: &Peer, c: &CommunicationControl) -> Result<(), PropError> {
        self.authorize(peer, "DeviceCommunicationControl", c.password.as_deref())?;
        let now = self.store.clock().now();
        let until = c
            .duration_min
            .filter(|m| *m > 0)
            .map(|m| now + Duration::from_secs(u64::from(m) * 60));
        let what = match c.state {
            Communication::Enable => "enabled",
            Communication::Disable => "disabled (answering only DeviceCommunicationControl and ReinitializeDevice)",
            Communication::DisableInitiation => "initiation disabled (answering, not notifying)",
        };
        let how_long = match until {
            Some(_) if c.state != Communication::Enable => {
                format!(" for {} min", c.duration_min.unwrap_or(0))
            }
            _ => String::new(),
        };
        tracing::warn!(
            "bacnet: DeviceCommunicationControl from {}: communication {what}{how_long}",
            peer.addr
        );
        self.state().management.set(c.state, until);
        self.stats.communication_controls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// ReinitializeDevice: checks, then what to do once the SimpleAck is out (`true`: start
    /// over).
    pub(super) fn reinitialize_check(&self, peer: &Peer, r: &ReinitializeDevice) -> Result<bool, PropError> {
        self.authorize(peer, "ReinitializeDevice", r.password.as_deref())?;
        match r.state {
            Reinitialize::Coldstart | Reinitialize::Warmstart => Ok(true),
            // No changes wait for activation: every setting is the config's.
            Reinitialize::ActivateChanges => Ok(false),
            other => {
                tracing::warn!(
                    "bacnet: ReinitializeDevice {} from {} refused: backup and restore are the config file's",
                    other.as_str(),
                    peer.addr
                );
                Err((error_class::SERVICES, error_code::OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED))
            }
        }
    }

    /// Start the BACnet server over, as a device restarts: COV subscriptions, confirmed
    /// notifications in flight and segmented transactions are dropped, communication enabled,
    /// and the device says I-Am. Points, alarms, Recipient_Lists and registered foreign
    /// devices stay (they are the bridge's, not this server's, or renewed by the peer).
    pub(super) async fn reinitialize(&self, peer: &Peer, r: &ReinitializeDevice) {
        let reason = match r.state {
            Reinitialize::Coldstart => restart_reason::COLDSTART,
            _ => restart_reason::WARMSTART,
        };
        let dropped = {
            let mut st = self.state();
            let n = st.subscriptions.len();
            st.subscriptions.clear();
            st.pending.clear();
            st.segments = SegmentTransactions::default();
            st.management.set(Communication::Enable, None);
            st.management.restart = Restart {
                reason,
                at: self.store.clock().wall(),
            };
            n
        };
        self.count_subscriptions(dropped, 0);
        self.stats.reinitializations.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "bacnet: ReinitializeDevice {} from {}: started over ({dropped} COV subscriptions dropped)",
            r.state.as_str(),
            peer.addr
        );
        self.announce().await;
    }

    /// TimeSynchronization / UTCTimeSynchronization: logged, never applied.
    pub(super) fn time_sync(&self, peer: &Peer, t: &TimeSync) {
        self.stats.time_synchronizations.fetch_add(1, Ordering::Relaxed);
        let host = self.store.clock().wall();
        // The device keeps UTC (UTC_Offset 0): local time and UTC are the same to it.
        let offset = offset_s(t.date, t.time, host);
        let c = civil(host);
        let host_text = date_time_text(
            [u8::try_from(c.year - 1900).unwrap_or(0xFF), c.month, c.day, c.weekday],
            [c.hour, c.minute, c.second, (c.millis / 10) as u8],
        );
        let difference = match offset {
            Some(o) => format!("{o:+.2} s from the host clock ({host_text} UTC)"),
            None => "not a complete date and time".to_string(),
        };
        tracing::info!(
            "bacnet: {} from {}: {}, {difference}; not applied (the host clock keeps its own time source)",
            if t.utc {
                "UTCTimeSynchronization"
            } else {
                "TimeSynchronization"
            },
            peer.addr,
            date_time_text(t.date, t.time),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_state_ends_by_itself() {
        let t0 = Instant::now();
        let mut m = ManagementState::new(SystemTime::now());
        assert_eq!(m.communication(t0), Communication::Enable);
        m.set(Communication::Disable, Some(t0 + Duration::from_secs(60)));
        assert_eq!(m.communication(t0 + Duration::from_secs(59)), Communication::Disable);
        assert_eq!(m.communication(t0 + Duration::from_secs(60)), Communication::Enable);
        m.set(Communication::DisableInitiation, None);
        assert_eq!(
            m.communication(t0 + Duration::from_secs(86_400)),
            Communication::DisableInitiation,
            "no duration: until told otherwise"
        );
        m.set(Communication::Enable, Some(t0));
        assert_eq!(m.until, None, "enable has no period");
    }

    #[test]
    fn time_sync_text_and_offset() {
        assert_eq!(
            date_time_text([126, 12, 6, 7], [19, 5, 30, 50]),
            "2026-12-06 19:05:30.50"
        );
        assert_eq!(
            date_time_text([0xFF, 12, 0xFF, 0xFF], [19, 5, 0xFF, 0xFF]),
            "*-12-** 19:05:**.**"
        );
        // 2026-12-06 18:38:07.25 UTC.
        let host = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_582_287_250);
        let o = offset_s([126, 12, 6, 0xFF], [18, 38, 9, 25], host);
        assert!(o.is_some_and(|o| (o - 2.0).abs() < 1e-6), "{o:?}");
        let o = offset_s([126, 12, 6, 7], [18, 37, 7, 25], host);
        assert!(o.is_some_and(|o| (o + 60.0).abs() < 1e-6), "{o:?}");
        assert_eq!(offset_s([126, 12, 0xFF, 7], [18, 37, 7, 25], host), None);
    }
}
