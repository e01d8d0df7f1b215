//! Probes: read what the system under test shows through its own interfaces, a Modbus register
//! (type, word order, scale), an HTTP JSON value, an SNMP object, a BACnet property, an OPC UA
//! node's value or StatusCode. Every read is bounded by a
//! timeout; a failure is a value the report shows, never a panic.

use super::expect::{OpcUaNode, OpcUaRead, Probe};
use super::judge::Seen;
use busbar_bacnet::apdu::{self, Apdu};
use busbar_bacnet::bvll::{self, Bvll};
use busbar_bacnet::consts::confirmed;
use busbar_bacnet::npdu;
use busbar_bacnet::service::{client, PropertyRef};
use busbar_bacnet::tag::Reader;
use busbar_bacnet::{ObjectId, Value};
use busbar_core::profile::{Register, Table};
use busbar_modbus::client::Client;
use busbar_modbus::codec::{Request, Response};
use opcua::client::{ClientBuilder, IdentityToken, Session};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    EndpointDescription, MessageSecurityMode, MonitoredItemCreateRequest, MonitoringMode, MonitoringParameters, NodeId,
    ReadValueId, StatusCode, TimestampsToReturn, UserTokenPolicy, Variant,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(1);

/// Connections kept between reads.
#[derive(Default)]
pub struct Prober {
    modbus: HashMap<String, Client>,
    http: Option<reqwest::Client>,
    opcua: HashMap<String, OpcUaSession>,
}

/// An OPC UA session and the task that runs its event loop.
struct OpcUaSession {
    session: Arc<Session>,
    event_loop: tokio::task::JoinHandle<StatusCode>,
    /// Namespace URIs resolved to their index on this server.
    namespaces: HashMap<String, u16>,
}

impl Drop for OpcUaSession {
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for (_, s) in self.opcua.drain() {
            let session = s.session.clone();
            // Close the session politely when a runtime is there to do it; the server times it
            // out otherwise.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = session.disconnect().await;
                });
            }
        }
    }
}

impl Prober {
    pub async fn read(&mut self, probe: &Probe) -> Result<Seen, String> {
        match tokio::time::timeout(TIMEOUT, self.read_now(probe)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
        }
    }

    async fn read_now(&mut self, probe: &Probe) -> Result<Seen, String> {
        match probe {
            Probe::Modbus {
                addr,
                unit,
                table,
                address,
                data_type,
                order,
                scale,
            } => {
                let register = Register {
                    table: *table,
                    address: *address,
                    data_type: *data_type,
                    order: *order,
                    scale: *scale,
                    offset: 0.0,
                };
                let count = data_type.words();
                let request = match table {
                    Table::Input => Request::ReadInputRegisters {
                        address: *address,
                        count,
                    },
                    _ => Request::ReadHoldingRegisters {
                        address: *address,
                        count,
                    },
                };
                let answer = self.modbus_call(addr, *unit, &request).await;
                if answer.is_err() {
                    // A broken connection is opened again at the next read.
                    self.modbus.remove(addr);
                }
                match answer? {
                    Response::Registers(words) => busbar_core::encoding::decode(&register, &words)
                        .map(Seen::Number)
                        .map_err(|e| e.to_string()),
                    // What a SCADA sees of a lost device on a gateway: a value to expect.
                    Response::Exception(e) => Ok(Seen::Text(format!("exception {:#04x}", e.code()))),
                    other => Err(format!("unexpected answer {other:?}")),
                }
            }
            Probe::Http { url, pointer } => {
                let client = self
                    .http
                    .get_or_insert_with(|| reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default());
                let answer = client.get(url).send().await.map_err(|e| e.to_string())?;
                let status = answer.status();
                let body = answer.text().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
                let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("not JSON: {e}"))?;
                let v = json
                    .pointer(pointer)
                    .ok_or_else(|| format!("no `{pointer}` in the answer"))?;
                Ok(match v {
                    serde_json::Value::Number(n) => Seen::Number(n.as_f64().unwrap_or(f64::NAN)),
                    serde_json::Value::String(s) => Seen::Text(s.clone()),
                    other => Seen::Text(other.to_string()),
                })
            }
            Probe::Bacnet {
                addr,
                object_type,
                instance,
                property,
            } => Prober::bacnet_read(addr, ObjectId::new(*object_type, *instance), *property).await,
            Probe::OpcUa { url, node, read } => {
                let answer = self.opcua_read(url, node, *read).await;
                if answer.is_err() {
                    self.opcua.remove(url);
                }
                answer
            }
            Probe::Snmp { addr, community, oid } => {
                let client = async_snmp::ClientBuilder::new(async_snmp::Auth::v2c(community.as_str()))
                    .target(addr.as_str())
                    .request_timeout(TIMEOUT)
                    .retry(async_snmp::Retry::none())
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                let answer = client
                    .get(&async_snmp::Oid::from_slice(oid))
                    .await
                    .map_err(|e| e.to_string())?;
                let vb = answer.varbinds.first().ok_or("an empty answer")?;
                if let Some(n) = vb.value.as_f64() {
                    return Ok(Seen::Number(n));
                }
                match &vb.value {
                    async_snmp::Value::OctetString(b) => Ok(Seen::Text(String::from_utf8_lossy(b).into_owned())),
                    other => Err(format!("{other:?}")),
                }
            }
        }
    }

    /// One ReadProperty over BACnet/IP (busbar-bacnet's encoders, a UDP socket of our own).
    async fn bacnet_read(addr: &str, object: ObjectId, property: u32) -> Result<Seen, String> {
        let target: std::net::SocketAddr = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr}: no address"))?;
        let sock = tokio::net::UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
            .await
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        client::read_property(&mut body, object, PropertyRef { property, index: None });
        let mut n = Vec::with_capacity(body.len() + 8);
        npdu::encode(&mut n, true, None);
        n.extend_from_slice(&[0x00, 0x05, 1, confirmed::READ_PROPERTY]);
        n.extend_from_slice(&body);
        let datagram = bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &n);
        sock.send_to(&datagram, target).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 1500];
        loop {
            let got = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
            let Some(apdu) = buf.get(..got).and_then(bacnet_apdu) else {
                continue;
            };
            return match apdu::decode(apdu) {
                Ok(Apdu::ComplexAck { invoke_id: 1, .. }) => bacnet_value(apdu),
                Ok(Apdu::Error { .. }) => Err("BACnet Error answer".into()),
                Ok(Apdu::Reject { reason, .. }) => Err(format!("BACnet Reject ({reason})")),
                Ok(Apdu::Abort { reason, .. }) => Err(format!("BACnet Abort ({reason})")),
                _ => continue,
            };
        }
    }

    /// One Read of a node's Value attribute over a session kept open (security None, anonymous).
    async fn opcua_read(&mut self, url: &str, node: &OpcUaNode, read: OpcUaRead) -> Result<Seen, String> {
        if !self.opcua.contains_key(url) {
            let s = opcua_connect(url).await?;
            self.opcua.insert(url.to_string(), s);
        }
        let s = self.opcua.get_mut(url).ok_or("no session")?;
        let node_id = match node {
            OpcUaNode::Id(text) => text.parse::<NodeId>().map_err(|_| format!("bad node `{text}`"))?,
            OpcUaNode::ByUri { uri, id } => {
                let ns = match s.namespaces.get(uri) {
                    Some(ns) => *ns,
                    None => {
                        let ns = opcua_namespace(&s.session, uri).await?;
                        s.namespaces.insert(uri.clone(), ns);
                        ns
                    }
                };
                format!("ns={ns};{id}")
                    .parse::<NodeId>()
                    .map_err(|_| format!("bad node `{id}`"))?
            }
        };
        let values = s
            .session
            .read(&[ReadValueId::from(node_id)], TimestampsToReturn::Both, 0.0)
            .await
            .map_err(|e| format!("Read: {e}"))?;
        let dv = values.into_iter().next().ok_or("an empty Read answer")?;
        let status = dv.status.unwrap_or(StatusCode::Good);
        Ok(match read {
            OpcUaRead::Status => Seen::Text(status.sub_code().to_string()),
            OpcUaRead::StatusClass => Seen::Text(
                if status.is_good() {
                    "good"
                } else if status.is_uncertain() {
                    "uncertain"
                } else {
                    "bad"
                }
                .into(),
            ),
            OpcUaRead::Value if status.is_bad() => return Err(format!("StatusCode {}", status.sub_code())),
            OpcUaRead::Value => match dv.value {
                Some(Variant::String(t)) => Seen::Text(t.to_string()),
                Some(Variant::LocalizedText(t)) => Seen::Text(t.text.to_string()),
                Some(Variant::Boolean(b)) => Seen::Number(if b { 1.0 } else { 0.0 }),
                Some(v) => Seen::Number(v.as_f64().ok_or_else(|| format!("not a number: {v:?}"))?),
                None => return Err("no value".into()),
            },
        })
    }

    async fn modbus_call(&mut self, addr: &str, unit: u8, request: &Request) -> Result<Response, String> {
        if !self.modbus.contains_key(addr) {
            let c = Client::connect_to(addr).await.map_err(|e| format!("{addr}: {e}"))?;
            self.modbus.insert(addr.to_string(), c);
        }
        let client = self.modbus.get_mut(addr).ok_or("no connection")?;
        client.call(unit, request).await.map_err(|e| e.to_string())
    }
}

/// Open a session to `url` with security None and an anonymous identity, its event loop in a
/// task; no reconnection of its own (a failed read drops it, the next read opens a new one).
async fn opcua_connect(url: &str) -> Result<OpcUaSession, String> {
    let (session, event_loop) = opcua_anonymous_session(url, "sim-probe", |b| b.request_timeout(TIMEOUT)).await?;
    Ok(OpcUaSession {
        session,
        event_loop,
        namespaces: HashMap::new(),
    })
}

/// An anonymous session on the unsecured endpoint of `url` with async-opcua's client, its event
/// loop running: the one way in of the probes, the benchmark's load client and the bridge's
/// tests. `app` names the client (`busbar <app>`, its own PKI directory); `tune` sets limits
/// and timeouts before the client is built.
pub async fn opcua_anonymous_session(
    url: &str,
    app: &str,
    tune: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<(Arc<Session>, tokio::task::JoinHandle<StatusCode>), String> {
    let pki = std::env::temp_dir().join(format!("busbar-{app}-pki-{}", std::process::id()));
    let builder = ClientBuilder::new()
        .application_name(format!("busbar {app}"))
        .application_uri(format!("urn:busbar:{app}"))
        .product_uri("urn:busbar")
        .create_sample_keypair(false)
        .trust_server_certs(true)
        .pki_dir(pki)
        .session_retry_limit(0);
    let mut client = tune(builder).client().map_err(|e| e.join("; "))?;
    let endpoint: EndpointDescription = (
        url,
        SecurityPolicy::None.to_str(),
        MessageSecurityMode::None,
        UserTokenPolicy::anonymous(),
    )
        .into();
    let (session, event_loop) = client
        .connect_to_matching_endpoint(endpoint, IdentityToken::Anonymous)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let event_loop = event_loop.spawn();
    if !session.wait_for_connection().await {
        event_loop.abort();
        return Err(format!("{url}: no session"));
    }
    Ok((session, event_loop))
}

/// A monitored item on the Value of `ns;s=id`: sampled on every change, the newest value kept.
pub fn opcua_value_item(ns: u16, id: &str) -> MonitoredItemCreateRequest {
    MonitoredItemCreateRequest::new(
        ReadValueId::from(NodeId::new(ns, id)),
        MonitoringMode::Reporting,
        MonitoringParameters {
            sampling_interval: 0.0,
            queue_size: 1,
            discard_oldest: true,
            ..Default::default()
        },
    )
}

/// The index of namespace `uri` in the server's NamespaceArray.
pub async fn opcua_namespace(session: &Session, uri: &str) -> Result<u16, String> {
    let array = NodeId::new(0, opcua::types::VariableId::Server_NamespaceArray as u32);
    let values = session
        .read(&[ReadValueId::from(array)], TimestampsToReturn::Neither, 0.0)
        .await
        .map_err(|e| format!("reading the namespace array: {e}"))?;
    let uris = match values.into_iter().next().and_then(|dv| dv.value) {
        Some(Variant::Array(a)) => a.values,
        _ => return Err("the server has no namespace array".into()),
    };
    uris.iter()
        .position(|v| matches!(v, Variant::String(s) if s.as_ref() == uri))
        .and_then(|i| u16::try_from(i).ok())
        .ok_or_else(|| format!("the server has no namespace `{uri}`"))
}

/// The APDU of a BACnet/IP datagram.
fn bacnet_apdu(d: &[u8]) -> Option<&[u8]> {
    let n = match bvll::decode(d).ok()? {
        Bvll::OriginalUnicast(n) | Bvll::ForwardedNpdu { npdu: n, .. } | Bvll::OriginalBroadcast(n) => n,
        _ => return None,
    };
    Some(npdu::decode(n).ok()?.apdu)
}

/// The value of a ReadProperty-Ack: numbers as numbers (a Boolean as 1 or 0), texts as texts, a
/// bit string as its bits (`0100`: Status_Flags with fault set).
fn bacnet_value(apdu: &[u8]) -> Result<Seen, String> {
    let bad = |e: busbar_bacnet::tag::DecodeError| format!("malformed ReadProperty-Ack: {e:?}");
    // ComplexAck header (3 octets), object, property, optional index, opening tag 3, value.
    let mut r = Reader::new(apdu.get(3..).ok_or("a truncated answer")?);
    r.context_object_id(0).map_err(bad)?;
    r.context_unsigned(1).map_err(bad)?;
    r.opt_context_unsigned(2).map_err(bad)?;
    r.opening(3).map_err(bad)?;
    Ok(match Value::decode(&mut r).map_err(bad)? {
        Value::Real(v) => Seen::Number(f64::from(v)),
        Value::Double(v) => Seen::Number(v),
        Value::Unsigned(v) => Seen::Number(v as f64),
        Value::Signed(v) => Seen::Number(v as f64),
        Value::Enumerated(v) => Seen::Number(f64::from(v)),
        Value::Boolean(b) => Seen::Number(if b { 1.0 } else { 0.0 }),
        Value::CharacterString(t) => Seen::Text(t),
        Value::BitString(b) => Seen::Text((0..b.len).map(|i| if b.get(i) { '1' } else { '0' }).collect()),
        other => Seen::Text(format!("{other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use busbar_bacnet::value::BitString;

    #[test]
    fn read_property_acks_become_probe_values() {
        let ack = |v: &[Value]| {
            let mut out = vec![0x30, 1, confirmed::READ_PROPERTY];
            busbar_bacnet::service::encode_read_property_ack(
                &mut out,
                ObjectId::new(0, 403_007),
                PropertyRef {
                    property: 85,
                    index: None,
                },
                v,
            );
            out
        };
        assert_eq!(bacnet_value(&ack(&[Value::Real(230.5)])), Ok(Seen::Number(230.5)));
        let mut flags = BitString::with_len(4);
        flags.set(1, true);
        assert_eq!(
            bacnet_value(&ack(&[Value::BitString(flags)])),
            Ok(Seen::Text("0100".into()))
        );
        assert!(
            bacnet_value(&[0x30, 1]).is_err(),
            "a truncated answer is an error, not a panic"
        );
    }
}
