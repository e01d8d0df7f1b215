//! Probes: read what the system under test shows through its own interfaces, a Modbus register
//! (type, word order, scale), an HTTP JSON value, an SNMP object. Every read is bounded by a
//! timeout; a failure is a value the report shows, never a panic.

use super::expect::Probe;
use super::judge::Seen;
use busbar_core::profile::{Register, Table};
use busbar_modbus::client::Client;
use busbar_modbus::codec::{Request, Response};
use std::collections::HashMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(1);

/// Connections kept between reads.
#[derive(Default)]
pub struct Prober {
    modbus: HashMap<String, Client>,
    http: Option<reqwest::Client>,
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
                    Response::Exception(e) => Err(format!("Modbus exception {e:?}")),
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

    async fn modbus_call(&mut self, addr: &str, unit: u8, request: &Request) -> Result<Response, String> {
        if !self.modbus.contains_key(addr) {
            let c = Client::connect_to(addr).await.map_err(|e| format!("{addr}: {e}"))?;
            self.modbus.insert(addr.to_string(), c);
        }
        let client = self.modbus.get_mut(addr).ok_or("no connection")?;
        client.call(unit, request).await.map_err(|e| e.to_string())
    }
}
