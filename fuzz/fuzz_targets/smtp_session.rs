//! The simulator's SMTP sink: any bytes, split into lines as the connection splits them, through
//! one session (commands in any order, data of any size, any encoding), and any bytes as a mail.
#![no_main]

use busbar_sim::qa::smtp::{mail_text, Session, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = Session::default();
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Step::Close(_) = session.line(line) {
            break;
        }
    }
    let _ = mail_text(data);
});
