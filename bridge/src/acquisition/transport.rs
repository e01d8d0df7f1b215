//! How a connection task talks to its devices: Modbus TCP (one connection per gateway, rebuilt
//! after a timeout). RTU buses come with the serial driver.

use crate::config::Link;
use busbar_core::modbus::{Request, Response};
use busbar_modbus::client::Client;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no answer in time")]
    Timeout,
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("connection failed: {0}")]
    Io(String),
    #[error("{0}")]
    Unsupported(String),
}

pub enum Transport {
    Tcp {
        addr: String,
        connect_timeout: Duration,
        client: Option<Client>,
    },
    Rtu {
        device: String,
    },
}

impl Transport {
    pub fn new(link: &Link) -> Transport {
        match link {
            Link::Tcp {
                host,
                port,
                connect_timeout,
            } => Transport::Tcp {
                addr: format!("{host}:{port}"),
                connect_timeout: *connect_timeout,
                client: None,
            },
            Link::Rtu { device, .. } => Transport::Rtu { device: device.clone() },
        }
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
            Transport::Rtu { device } => Err(TransportError::Unsupported(format!(
                "RTU on {device} is not available in this build"
            ))),
        }
    }
}
