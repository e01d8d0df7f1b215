//! The loopback limit: a bare TCP server that answers every 12-byte Modbus read request with
//! an 85-byte reply (the size of a 38-register response), doing no other work. One thread per
//! connection, blocking IO: the cheapest server there is.

use std::io::{Read, Write};
use std::net::TcpListener;

pub const REQUEST_LEN: usize = 12;
pub const REPLY_LEN: usize = 85;

pub fn serve(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let _ = s.set_nodelay(true);
        std::thread::spawn(move || {
            let mut req = [0u8; REQUEST_LEN];
            let mut reply = [0u8; REPLY_LEN];
            // A well-formed MBAP header so the benchmark client accepts the reply.
            reply[5] = (REPLY_LEN - 6) as u8;
            reply[7] = 3;
            reply[8] = (REPLY_LEN - 9) as u8;
            while s.read_exact(&mut req).is_ok() {
                reply[0] = req[0];
                reply[1] = req[1];
                reply[6] = req[6];
                if s.write_all(&reply).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
