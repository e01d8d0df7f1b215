//! The loopback limit: the leanest server we can write for the Modbus rows' load. One thread,
//! one epoll loop (mio), no runtime, no allocation per request: every 12-byte read request is
//! answered with an 85-byte reply (the size of a 38-register response) and nothing else is
//! done. The same clients as every Modbus row; what it reaches is what loopback TCP and the
//! kernel allow one core of server, so a server's share of it is a share of the possible.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};

pub const REQUEST_LEN: usize = 12;
pub const REPLY_LEN: usize = 85;

const LISTENER: Token = Token(0);

/// A connection: bytes of a request not complete yet, and reply bytes the socket did not take.
struct Conn {
    stream: TcpStream,
    input: [u8; REQUEST_LEN],
    have: usize,
    output: Vec<u8>,
    /// Registered for WRITABLE too (only while a reply waits: no wake-up per acknowledgement).
    writing: bool,
}

/// The reply to a request: a well-formed MBAP header so the benchmark client accepts it.
fn reply_to(req: &[u8; REQUEST_LEN], out: &mut Vec<u8>) {
    let mut reply = [0u8; REPLY_LEN];
    reply[0] = req[0];
    reply[1] = req[1];
    reply[5] = (REPLY_LEN - 6) as u8;
    reply[6] = req[6];
    reply[7] = 3;
    reply[8] = (REPLY_LEN - 9) as u8;
    out.extend_from_slice(&reply);
}

/// Read what is there, answer every complete request, write what the socket takes. `false`
/// when the connection is done.
fn serve(c: &mut Conn) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                for &b in &buf[..n] {
                    c.input[c.have] = b;
                    c.have += 1;
                    if c.have == REQUEST_LEN {
                        reply_to(&c.input, &mut c.output);
                        c.have = 0;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    while !c.output.is_empty() {
        match c.stream.write(&c.output) {
            Ok(n) => {
                c.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}

pub fn serve_forever(port: u16) -> anyhow::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(256);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let token = Token(next);
                    next += 1;
                    poll.registry().register(&mut stream, token, Interest::READABLE)?;
                    conns.insert(
                        token,
                        Conn {
                            stream,
                            input: [0; REQUEST_LEN],
                            have: 0,
                            output: Vec::with_capacity(REPLY_LEN * 4),
                            writing: false,
                        },
                    );
                }
                continue;
            }
            let token = event.token();
            let mut alive = false;
            if let Some(c) = conns.get_mut(&token) {
                alive = serve(c);
                let pending = !c.output.is_empty();
                if alive && pending != c.writing {
                    let interest = if pending {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    alive = poll.registry().reregister(&mut c.stream, token, interest).is_ok();
                    c.writing = pending;
                }
            }
            if !alive {
                if let Some(mut c) = conns.remove(&token) {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_answers_its_request() {
        let req = [0x12, 0x34, 0, 0, 0, 6, 7, 3, 0, 100, 0, 38];
        let mut out = Vec::new();
        reply_to(&req, &mut out);
        assert_eq!(out.len(), REPLY_LEN);
        assert_eq!(&out[..2], &[0x12, 0x34], "transaction id");
        assert_eq!(out[6], 7, "unit id");
        assert_eq!(usize::from(out[8]), 76, "byte count of 38 registers");
    }
}
