//! The Modbus decoders on a few hundred thousand random and mutated frames: they may reject,
//! never panic, and never claim more bytes than they were given. (The coverage-guided version
//! of this is fuzz/fuzz_targets/modbus_request.rs.)

use busbar_modbus::codec::{decode_request, decode_response, split_frame, write_request, Header, Request};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5EED);
    for _ in 0..200_000 {
        let len = (rng.next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        let mut rest = &bytes[..];
        while let Ok(Some((_, pdu, used))) = split_frame(rest) {
            assert!(used <= rest.len());
            let _ = decode_request(pdu);
            let _ = decode_response(&Request::ReadHoldingRegisters { address: 0, count: 3 }, pdu);
            rest = &rest[used..];
        }
        let _ = decode_request(&bytes);
    }
}

#[test]
fn mutated_valid_frames_never_panic() {
    let mut rng = Rng(42);
    let reqs = [
        Request::ReadHoldingRegisters {
            address: 50512,
            count: 38,
        },
        Request::WriteMultipleRegisters {
            address: 20784,
            values: vec![1, 2, 3],
        },
        Request::WriteMultipleCoils {
            address: 1,
            values: vec![true; 17],
        },
    ];
    for _ in 0..100_000 {
        let mut frame = Vec::new();
        let req = &reqs[(rng.next() % 3) as usize];
        write_request(
            &mut frame,
            Header {
                transaction: 1,
                unit: 2,
            },
            req,
        );
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() as usize) % frame.len();
            frame[i] = rng.byte();
        }
        if let Ok(Some((_, pdu, _))) = split_frame(&frame) {
            let _ = decode_request(pdu);
            let _ = decode_response(req, pdu);
        }
    }
}
