//! An async Modbus-TCP client: one request in flight, transaction ids checked (a late answer to
//! an earlier request is skipped, never taken for the current one), optional timeout.

use crate::codec::{self, Header, Request, Response};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Client {
    stream: TcpStream,
    transaction: u16,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// `None` = wait for ever (benchmarks, where a timer per call would be measured too).
    pub timeout: Option<Duration>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> io::Result<Client> {
        Client::from_stream(TcpStream::connect(addr).await?)
    }

    /// Connect to `host:port` (names resolved).
    pub async fn connect_to(addr: &str) -> io::Result<Client> {
        Client::from_stream(TcpStream::connect(addr).await?)
    }

    fn from_stream(stream: TcpStream) -> io::Result<Client> {
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            transaction: 0,
            buf: Vec::with_capacity(512),
            out: Vec::with_capacity(512),
            timeout: Some(Duration::from_secs(2)),
        })
    }

    /// Send one request and wait for its response (or time out).
    pub async fn call(&mut self, unit: u8, req: &Request) -> io::Result<Response> {
        self.transaction = self.transaction.wrapping_add(1);
        let header = Header {
            transaction: self.transaction,
            unit,
        };
        self.out.clear();
        codec::write_request(&mut self.out, header, req);
        self.stream.write_all(&self.out).await?;
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            if let Some((h, pdu, used)) =
                codec::split_frame(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let resp = codec::decode_response(req, pdu).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                let same = h.transaction == self.transaction;
                self.buf.drain(..used);
                if same {
                    return resp;
                }
                // A late answer to an earlier request: skip it.
                continue;
            }
            let mut chunk = [0u8; 1024];
            let n = match deadline {
                Some(d) => tokio::time::timeout_at(d, self.stream.read(&mut chunk))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response"))??,
                None => self.stream.read(&mut chunk).await?,
            };
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Read holding registers; exceptions become errors.
    pub async fn read_holding(
        &mut self,
        unit: u8,
        address: u16,
        count: u16,
    ) -> io::Result<Result<Vec<u16>, codec::Exception>> {
        match self
            .call(unit, &Request::ReadHoldingRegisters { address, count })
            .await?
        {
            Response::Registers(r) => Ok(Ok(r)),
            Response::Exception(e) => Ok(Err(e)),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected {other:?}"),
            )),
        }
    }
}
