//! The client side of the Modbus-TCP codec: a response to each kind of request, on any bytes.
#![no_main]

use busbar_modbus::codec::{decode_response, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, pdu)) = data.split_first() else {
        return;
    };
    let count = u16::from(selector % 126).max(1);
    let req = match selector % 4 {
        0 => Request::ReadHoldingRegisters { address: 0, count },
        1 => Request::ReadCoils { address: 0, count },
        2 => Request::WriteSingleRegister { address: 0, value: 1 },
        _ => Request::WriteMultipleRegisters {
            address: 0,
            values: vec![0; usize::from(count.min(123))],
        },
    };
    let _ = decode_response(&req, pdu);
});
