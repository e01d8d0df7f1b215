//! A simulated RS485 bus: the devices of an RTU listener answer Modbus RTU on a serial line (a
//! real port, or one end of a pty pair made with socat for tests). Like real slaves, a device
//! answers only its own unit id, stays silent on a frame with a bad CRC, and answers after the
//! line has been quiet for 3.5 characters. The `bad_crc` fault corrupts its answers' CRC.

use crate::events::Fault;
use crate::gateway::Gateway;
use crate::scenario::RtuLine;
use busbar_modbus::codec::Header;
use busbar_modbus::rtu::{self, crc_ok, frame, frame_gap, request_len};
use busbar_modbus::server::Answer;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Serve `gateway`'s devices on the serial line until shutdown.
pub async fn serve(line: RtuLine, gateway: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let mut port = match rtu::open_serial(&line) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(listener = %gateway.name, device = %line.device, "cannot open serial line: {e}");
            return;
        }
    };
    tracing::info!(listener = %gateway.name, device = %line.device, baud = line.baud, "RTU line open");
    let gap = frame_gap(line.baud);
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let mut out = Vec::with_capacity(512);
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(gap * 2, port.read(&mut chunk)) => r,
            _ = shutdown.changed() => break,
        };
        match read {
            Ok(Ok(0)) => {
                tokio::time::sleep(gap).await;
                continue;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => {
                tracing::warn!(listener = %gateway.name, "serial read failed: {e}");
                tokio::time::sleep(gap * 10).await;
                continue;
            }
            Err(_) => {
                // Silence: whatever is buffered is one complete (or broken) frame.
                if !buf.is_empty() {
                    let adu = std::mem::take(&mut buf);
                    answer(&gateway, &adu, &mut port, &mut out, gap).await;
                }
                continue;
            }
        }
        // Frames whose length the function code gives are handled as soon as they are whole.
        while let Ok(Some(len)) = request_len(&buf) {
            if buf.len() < len {
                break;
            }
            let adu: Vec<u8> = buf.drain(..len).collect();
            answer(&gateway, &adu, &mut port, &mut out, gap).await;
        }
    }
}

async fn answer(
    gateway: &Gateway,
    adu: &[u8],
    port: &mut rtu::SerialStream,
    out: &mut Vec<u8>,
    gap: std::time::Duration,
) {
    if !crc_ok(adu) {
        tracing::debug!(listener = %gateway.name, "frame with a bad CRC dropped");
        return;
    }
    let unit = adu[0];
    let Some(device) = gateway.device(unit) else { return };
    let bad_crc = device.lock().has(|f| matches!(f, Fault::BadCrc));
    out.clear();
    let pdu = &adu[1..adu.len() - 2];
    if gateway.respond(Header { transaction: 0, unit }, pdu, out).await != Answer::Sent
        || out.len() <= busbar_modbus::codec::MBAP_LEN
    {
        return;
    }
    let mut reply = frame(unit, &out[busbar_modbus::codec::MBAP_LEN..]);
    if bad_crc {
        let n = reply.len();
        reply[n - 1] ^= 0x5A;
    }
    // Turnaround: answer after the request's trailing silence.
    tokio::time::sleep(gap).await;
    if let Err(e) = port.write_all(&reply).await {
        tracing::warn!(listener = %gateway.name, "serial write failed: {e}");
    }
}
