//! The server side of the Modbus-TCP codec: framing then request decoding, on any bytes.
#![no_main]

use busbar_modbus::codec::{decode_request, split_frame, write_exception, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut out = Vec::new();
    while let Ok(Some((header, pdu, used))) = split_frame(rest) {
        assert!(used <= rest.len() && used >= 8);
        if let Err(e) = decode_request(pdu) {
            write_exception(
                &mut out,
                Header {
                    transaction: header.transaction,
                    unit: header.unit,
                },
                pdu.first().copied().unwrap_or(0),
                e,
            );
        }
        rest = &rest[used..];
    }
});
