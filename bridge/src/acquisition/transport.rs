//! How a connection task talks to its devices: Modbus TCP (one connection per gateway, rebuilt
//! after a timeout) or Modbus RTU on a serial line (opened lazily, reopened after an IO error;
//! a bad CRC or a timeout flushes the line before the next request).

use crate::config::Link;
use busbar_modbus::client::Client;
use busbar_modbus::codec::{Request, Response};
use busbar_modbus::rtu::{open_serial, RtuError, RtuMaster, SerialLine, SerialStream};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no answer in time")]
    Timeout,
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("connection failed: {0}")]
    Io(String),
    #[error("answer with a bad CRC")]
    BadCrc,
}

pub enum Transport {
    Tcp {
        addr: String,
        connect_timeout: Duration,
        client: Option<Client>,
    },
    Rtu {
        line: SerialLine,
        master: Option<RtuMaster<SerialStream>>,
    },
}

impl Transport {
    /// The transport of a field link (None for an internal connection, which has none).
    pub fn new(link: &Link) -> Option<Transport> {
        Some(match link {
            Link::Tcp {
                host,
                port,
                connect_timeout,
            } => Transport::Tcp {
                addr: format!("{host}:{port}"),
                connect_timeout: *connect_timeout,
                client: None,
            },
            Link::Rtu(line) => Transport::Rtu {
                line: line.clone(),
                master: None,
            },
            Link::Internal => return None,
        })
    }

    pub async fn call(&mut self, unit: u8, req: &Request, timeout: Duration) -> Result<Response, TransportError> {
        match self {
            Transport::Tcp {
                addr,
                connect_timeout,
                client,
            } => {
                if client.is_none() {
                    let c = match tokio::time::timeout(*connect_timeout, Client::connect_to(addr)).await {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => return Err(TransportError::Connect(addr.clone(), e.to_string())),
                        Err(_) => return Err(TransportError::Connect(addr.clone(), "timed out".into())),
                    };
                    *client = Some(c);
                }
                let Some(c) = client.as_mut() else {
                    return Err(TransportError::Io("no connection".into()));
                };
                c.timeout = Some(timeout);
                match c.call(unit, req).await {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        // Rebuild the connection: a late reply must never meet the next request.
                        *client = None;
                        if e.kind() == std::io::ErrorKind::TimedOut {
                            Err(TransportError::Timeout)
                        } else {
                            Err(TransportError::Io(e.to_string()))
                        }
                    }
                }
            }
            Transport::Rtu { line, master } => {
                if master.is_none() {
                    let port =
                        open_serial(line).map_err(|e| TransportError::Connect(line.device.clone(), e.to_string()))?;
                    *master = Some(RtuMaster::new(port, line.baud, line.frame_interval));
                }
                let Some(m) = master.as_mut() else {
                    return Err(TransportError::Io("no serial line".into()));
                };
                match m.call(unit, req, timeout).await {
                    Ok(r) => Ok(r),
                    Err(RtuError::Timeout) => Err(TransportError::Timeout),
                    Err(RtuError::BadCrc) => Err(TransportError::BadCrc),
                    Err(RtuError::Malformed) => Err(TransportError::Io("malformed answer".into())),
                    Err(RtuError::Io(e)) => {
                        *master = None;
                        Err(TransportError::Io(e.to_string()))
                    }
                }
            }
        }
    }
}
