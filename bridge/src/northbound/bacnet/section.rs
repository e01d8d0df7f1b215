//! `servers.bacnet`: the section, the uniqueness of every object instance it will serve, the
//! start and the counters.

use super::BacnetStats;
use crate::component::{Component, Context, Endpoint, Resolve, Started};
use crate::config::BACNET_POINTS_PER_BASE;
use crate::metrics::{self, MetricSource};
use busbar_bacnet::ObjectId;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The component.
pub struct Bacnet;

/// `servers.bacnet`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacnetDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    /// UDP address. Broadcast Who-Is only reaches a socket bound to 0.0.0.0.
    #[serde(default = "d_listen")]
    listen: String,
    /// Where I-Am broadcasts go (default: 255.255.255.255, or 127.255.255.255 on loopback).
    #[serde(default)]
    broadcast: Option<String>,
    #[serde(default = "d_instance")]
    device_instance: i64,
    /// Object_Name of the device (default: the site name).
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    vendor_id: u16,
    #[serde(default)]
    location: String,
    #[serde(default)]
    description: String,
    /// Foreign devices (BMS on other subnets) that may register at once; 0 refuses them.
    #[serde(default = "d_foreign")]
    max_foreign_devices: usize,
    /// COV subscriptions held at once, all clients together.
    #[serde(default = "d_cov_subs")]
    max_cov_subscriptions: usize,
    /// The application layer's limits and timers (segmentation, retries).
    #[serde(default)]
    apdu: ApduDoc,
    /// The password of DeviceCommunicationControl and ReinitializeDevice (1 to 20 characters);
    /// without it both services are refused.
    #[serde(default)]
    password: Option<String>,
    /// One BACnet device per field device, on this network number behind the bridge as a
    /// router (1..=65534); the site device stays the router's own. Absent: one device for the
    /// whole site.
    #[serde(default)]
    virtual_network: Option<u32>,
}

/// `servers.bacnet.apdu`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApduDoc {
    /// Largest APDU accepted and sent, 50..=1476 octets (BACnet/IP carries 1476).
    #[serde(default = "d_max_length")]
    max_length: usize,
    /// Segments accepted in one request, and sent in one answer to a client that accepts
    /// more than 64 or leaves it unspecified; 2..=65535 (a 1000-device Object_List takes ~150).
    #[serde(default = "d_max_segments")]
    max_segments: usize,
    /// The window proposed to clients (segments sent before an acknowledgement), 1..=127.
    #[serde(default = "d_window")]
    window_size: u8,
    /// How long a sent window waits for its SegmentACK before it is sent again.
    #[serde(default = "d_segment_timeout")]
    segment_timeout_ms: u64,
    /// How long a confirmed notification waits for its acknowledgement.
    #[serde(default = "d_apdu_timeout")]
    timeout_ms: u64,
    /// Retries of a window or a confirmed notification before giving up.
    #[serde(default = "d_retries")]
    retries: u32,
    /// Segmented transactions (requests arriving and answers leaving) in progress at once.
    #[serde(default = "d_transactions")]
    max_transactions: usize,
}

impl Default for ApduDoc {
    fn default() -> ApduDoc {
        ApduDoc {
            max_length: d_max_length(),
            max_segments: d_max_segments(),
            window_size: d_window(),
            segment_timeout_ms: d_segment_timeout(),
            timeout_ms: d_apdu_timeout(),
            retries: d_retries(),
            max_transactions: d_transactions(),
        }
    }
}

fn d_max_length() -> usize {
    1476
}
fn d_max_segments() -> usize {
    256
}
fn d_window() -> u8 {
    16
}
fn d_segment_timeout() -> u64 {
    2000
}
fn d_apdu_timeout() -> u64 {
    3000
}
fn d_retries() -> u32 {
    3
}
fn d_transactions() -> usize {
    256
}

/// The application layer's limits and timers, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApduLimits {
    pub max_length: usize,
    pub max_segments: usize,
    pub window_size: u8,
    pub segment_timeout: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub max_transactions: usize,
}

impl Default for ApduLimits {
    fn default() -> ApduLimits {
        ApduLimits::of(&ApduDoc::default())
    }
}

impl ApduLimits {
    fn of(d: &ApduDoc) -> ApduLimits {
        ApduLimits {
            max_length: d.max_length,
            max_segments: d.max_segments,
            window_size: d.window_size,
            segment_timeout: Duration::from_millis(d.segment_timeout_ms),
            timeout: Duration::from_millis(d.timeout_ms),
            retries: d.retries,
            max_transactions: d.max_transactions,
        }
    }

    fn resolve(d: &ApduDoc, cx: &mut Resolve<'_>) -> Option<ApduLimits> {
        let mut ok = true;
        let mut check = |key: &str, good: bool, message: String| {
            if !good {
                cx.error(key, message);
                ok = false;
            }
        };
        check(
            "apdu.max_length",
            (50..=1476).contains(&d.max_length),
            format!("{} is outside 50..=1476 octets", d.max_length),
        );
        check(
            "apdu.max_segments",
            (2..=65535).contains(&d.max_segments),
            format!("{} is outside 2..=65535", d.max_segments),
        );
        check(
            "apdu.window_size",
            (1..=127).contains(&d.window_size),
            format!("{} is outside 1..=127", d.window_size),
        );
        check(
            "apdu.segment_timeout_ms",
            (100..=60_000).contains(&d.segment_timeout_ms),
            format!("{} is outside 100..=60000 ms", d.segment_timeout_ms),
        );
        check(
            "apdu.timeout_ms",
            (100..=60_000).contains(&d.timeout_ms),
            format!("{} is outside 100..=60000 ms", d.timeout_ms),
        );
        check(
            "apdu.retries",
            d.retries <= 10,
            format!("{} is more than 10", d.retries),
        );
        check(
            "apdu.max_transactions",
            (1..=65536).contains(&d.max_transactions),
            format!("{} is outside 1..=65536", d.max_transactions),
        );
        ok.then(|| ApduLimits::of(d))
    }
}

fn d_listen() -> String {
    "0.0.0.0:47808".into()
}
fn d_instance() -> i64 {
    100
}
fn d_foreign() -> usize {
    64
}
fn d_cov_subs() -> usize {
    10_000
}

/// BACnet/IP server settings.
#[derive(Debug, Clone)]
pub struct BacnetSettings {
    pub listen: SocketAddr,
    pub broadcast: SocketAddrV4,
    pub device_instance: u32,
    pub device_name: String,
    pub vendor_id: u16,
    pub location: String,
    pub description: String,
    pub max_foreign_devices: usize,
    pub max_cov_subscriptions: usize,
    pub apdu: ApduLimits,
    /// DeviceCommunicationControl and ReinitializeDevice need it; `None` refuses them.
    pub password: Option<String>,
    /// The network of the per-device layout; `None`: the site layout.
    pub virtual_network: Option<u16>,
}

impl Component for Bacnet {
    type Doc = BacnetDoc;
    type Settings = BacnetSettings;

    fn enabled(doc: &BacnetDoc) -> bool {
        doc.enabled
    }

    fn resolve(b: &BacnetDoc, cx: &mut Resolve<'_>) -> Option<BacnetSettings> {
        let listen = match b.listen.parse::<SocketAddr>() {
            Ok(a @ SocketAddr::V4(_)) => a,
            _ => {
                cx.error(
                    "listen",
                    format!("`{}` is not an IPv4 address like 0.0.0.0:47808", b.listen),
                );
                return None;
            }
        };
        let broadcast_ip = match &b.broadcast {
            Some(text) => match text.parse::<Ipv4Addr>() {
                Ok(ip) => ip,
                Err(_) => {
                    cx.error(
                        "broadcast",
                        format!("`{text}` is not an IPv4 address like 192.168.1.255"),
                    );
                    return None;
                }
            },
            None if listen.ip().is_loopback() => Ipv4Addr::new(127, 255, 255, 255),
            None => Ipv4Addr::BROADCAST,
        };
        let device_instance = match u32::try_from(b.device_instance) {
            Ok(i) if i < ObjectId::MAX_INSTANCE => i,
            _ => {
                cx.error(
                    "device_instance",
                    format!("{} is outside 0..{}", b.device_instance, ObjectId::MAX_INSTANCE),
                );
                return None;
            }
        };
        let apdu = ApduLimits::resolve(&b.apdu, cx)?;
        if let Some(p) = &b.password {
            let n = p.chars().count();
            if n == 0 || n > busbar_bacnet::management::MAX_PASSWORD {
                cx.error(
                    "password",
                    format!(
                        "{n} characters: BACnet passwords have 1 to {}",
                        busbar_bacnet::management::MAX_PASSWORD
                    ),
                );
                return None;
            }
        }
        let virtual_network = match b.virtual_network {
            None => None,
            Some(n) => match u16::try_from(n) {
                Ok(n) if (1..=65534).contains(&n) => Some(n),
                _ => {
                    cx.error(
                        "virtual_network",
                        format!("{n} is not a network number: 1..=65534 (65535 means all networks)"),
                    );
                    return None;
                }
            },
        };
        if virtual_network.is_some() {
            for dev in cx.devices.iter() {
                if super::objects::virtual_device_instance(dev.bacnet_base) == device_instance {
                    cx.error(
                        "device_instance",
                        format!(
                            "{device_instance} is also the instance of `{}` on the virtual network (bacnet_base {} x 1000)",
                            dev.name, dev.bacnet_base
                        ),
                    );
                    return None;
                }
            }
        }
        check_instances(cx);
        Some(BacnetSettings {
            broadcast: SocketAddrV4::new(broadcast_ip, listen.port()),
            listen,
            device_instance,
            device_name: b.device_name.clone().unwrap_or_else(|| cx.site_name.to_string()),
            vendor_id: b.vendor_id,
            location: b.location.clone(),
            description: b.description.clone(),
            max_foreign_devices: b.max_foreign_devices.min(1024),
            max_cov_subscriptions: b.max_cov_subscriptions.clamp(1, 1_000_000),
            apdu,
            password: b.password.clone(),
            virtual_network,
        })
    }

    async fn start(s: &BacnetSettings, cx: &Context) -> anyhow::Result<Started> {
        let (handle, tasks) = super::start(
            &cx.config,
            s,
            cx.store.clone(),
            cx.acq.clone(),
            cx.alarms.clone(),
            cx.shutdown.clone(),
        )
        .await?;
        cx.metrics.register(handle.stats.clone());
        Ok(Started {
            endpoint: Endpoint {
                name: "bacnet",
                local: Some(handle.local),
                what: "bacnet/ip device",
                detail: match s.virtual_network {
                    None => format!(
                        "udp {}  device instance {}  (objects: `busbar export ede`)",
                        handle.local, handle.device_instance
                    ),
                    Some(n) => format!(
                        "udp {}  router device instance {}, {} devices on network {n}  (`busbar export ede`)",
                        handle.local,
                        handle.device_instance,
                        handle.devices.saturating_sub(1)
                    ),
                },
            },
            tasks,
        })
    }
}

/// Every served instance once: device bases apart, overrides clear of everything.
fn check_instances(cx: &mut Resolve<'_>) {
    let mut owner: HashMap<u32, String> = HashMap::new();
    let mut problems = Vec::new();
    for (i, dev) in cx.devices.iter().enumerate() {
        if dev.profile.points.len() > BACNET_POINTS_PER_BASE as usize {
            problems.push((
                i,
                format!(
                    "profile `{}` has more than 1000 points: give each a bacnet_instance",
                    dev.profile.name
                ),
            ));
        }
        for &k in &dev.acquired {
            let instance = dev.bacnet_instance(k);
            let id = format!("{}/{}", dev.name, dev.profile.points[k].id);
            if let Some(other) = owner.insert(instance, id.clone()) {
                problems.push((
                    i,
                    format!(
                        "BACnet instance {instance} of `{id}` is also `{other}`'s: set `bacnet_base` on one device \
                         or `bacnet_instance` on the point"
                    ),
                ));
            }
        }
    }
    for (i, message) in problems {
        cx.device_error(i, message);
    }
}

impl MetricSource for BacnetStats {
    fn write(&self, out: &mut String) {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        metrics::plain(
            out,
            &[
                (
                    "busbar_bacnet_requests_total",
                    "counter",
                    "BACnet requests received.",
                    load(&self.requests),
                ),
                (
                    "busbar_bacnet_rejected_total",
                    "counter",
                    "BACnet requests rejected (malformed or unknown service).",
                    load(&self.rejected),
                ),
                (
                    "busbar_bacnet_dropped_total",
                    "counter",
                    "Datagrams dropped (bad BVLL, NPDU or APDU).",
                    load(&self.dropped),
                ),
                (
                    "busbar_bacnet_notifications_total",
                    "counter",
                    "COV notifications sent (retries excluded).",
                    load(&self.notifications),
                ),
                (
                    "busbar_bacnet_segmented_answers_total",
                    "counter",
                    "Answers sent in segments.",
                    load(&self.segmented_answers),
                ),
                (
                    "busbar_bacnet_segmented_requests_total",
                    "counter",
                    "Segmented requests received whole.",
                    load(&self.segmented_requests),
                ),
                (
                    "busbar_bacnet_segment_retries_total",
                    "counter",
                    "Windows of segments sent again after a timeout.",
                    load(&self.segment_retries),
                ),
                (
                    "busbar_bacnet_segmented_failures_total",
                    "counter",
                    "Segmented transactions given up (retries spent, silent peer, too long, aborted).",
                    load(&self.segmented_failures),
                ),
                (
                    "busbar_bacnet_event_transitions_total",
                    "counter",
                    "Event state changes and acknowledgements of event objects (each told to the recipients).",
                    load(&self.event_transitions),
                ),
                (
                    "busbar_bacnet_event_notifications_total",
                    "counter",
                    "EventNotifications sent (confirmed and unconfirmed, first tries).",
                    load(&self.event_notifications),
                ),
                (
                    "busbar_bacnet_alarm_acknowledgements_total",
                    "counter",
                    "AcknowledgeAlarm requests accepted.",
                    load(&self.alarm_acknowledgements),
                ),
                (
                    "busbar_bacnet_communication_controls_total",
                    "counter",
                    "DeviceCommunicationControl requests accepted.",
                    load(&self.communication_controls),
                ),
                (
                    "busbar_bacnet_reinitializations_total",
                    "counter",
                    "ReinitializeDevice coldstarts and warmstarts done.",
                    load(&self.reinitializations),
                ),
                (
                    "busbar_bacnet_time_synchronizations_total",
                    "counter",
                    "TimeSynchronization and UTCTimeSynchronization received (logged, not applied).",
                    load(&self.time_synchronizations),
                ),
                (
                    "busbar_bacnet_cov_subscriptions",
                    "gauge",
                    "COV subscriptions held.",
                    load(&self.subscriptions),
                ),
                (
                    "busbar_bacnet_foreign_devices",
                    "gauge",
                    "Foreign devices registered.",
                    load(&self.foreign_devices),
                ),
            ],
        );
    }
}
