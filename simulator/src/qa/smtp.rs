//! The SMTP sink of a test run: a small SMTP server (RFC 5321, plain, no TLS, no AUTH) that takes
//! every mail the system under test sends and keeps it as text: `From`, `To` and `Subject`
//! (RFC 2047 encoded words decoded), then the body (quoted-printable or base64 decoded; of a
//! multipart mail, its text parts). [`Session`] is the protocol without IO, so that it is unit
//! tested and fuzzed; [`serve`] runs it on a TCP connection.

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Longest command line accepted (RFC 5321 says 512 with CRLF).
const MAX_COMMAND: usize = 512;
/// Largest mail accepted, announced in EHLO.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// What the session asks its connection to do after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this reply (CRLF-terminated lines).
    Reply(String),
    /// Nothing to send (a line of the mail's data).
    Nothing,
    /// A mail was accepted: keep it, then send the reply.
    Mail { text: String, reply: String },
    /// Send the reply and close.
    Close(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum State {
    #[default]
    Greeted,
    Ready,
    Mail,
    Recipients,
    Data,
}

/// One SMTP session's state: the envelope and the data being received.
#[derive(Debug, Default)]
pub struct Session {
    state: State,
    data: Vec<u8>,
    too_big: bool,
}

fn reply(code: u16, text: &str) -> Step {
    Step::Reply(format!("{code} {text}\r\n"))
}

impl Session {
    /// The greeting sent when a client connects.
    pub fn greeting() -> &'static str {
        "220 busbar-sim SMTP test sink ready\r\n"
    }

    /// One line from the client, without its CRLF.
    pub fn line(&mut self, line: &[u8]) -> Step {
        if self.state == State::Data {
            return self.data_line(line);
        }
        if line.len() > MAX_COMMAND {
            return reply(500, "line too long");
        }
        let text = String::from_utf8_lossy(line);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.trim().to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" if !arg.is_empty() => {
                self.reset(State::Ready);
                Step::Reply(format!(
                    "250-busbar-sim greets {arg}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE}\r\n"
                ))
            }
            "HELO" if !arg.is_empty() => {
                self.reset(State::Ready);
                reply(250, "busbar-sim")
            }
            "EHLO" | "HELO" => reply(501, "a domain is needed"),
            "MAIL" => match (&self.state, path(arg, "FROM:")) {
                (State::Greeted, _) => reply(503, "EHLO first"),
                (State::Ready, Some(_)) => {
                    self.state = State::Mail;
                    reply(250, "sender ok")
                }
                (State::Ready, None) => reply(501, "MAIL FROM:<address> expected"),
                _ => reply(503, "a mail is already under way"),
            },
            "RCPT" => match (&self.state, path(arg, "TO:")) {
                (State::Mail | State::Recipients, Some(p)) if !p.is_empty() => {
                    self.state = State::Recipients;
                    reply(250, "recipient ok")
                }
                (State::Mail | State::Recipients, _) => reply(501, "RCPT TO:<address> expected"),
                _ => reply(503, "MAIL first"),
            },
            "DATA" => match self.state {
                State::Recipients => {
                    self.state = State::Data;
                    self.data.clear();
                    self.too_big = false;
                    reply(354, "end data with <CR><LF>.<CR><LF>")
                }
                _ => reply(503, "RCPT first"),
            },
            "RSET" => {
                if self.state != State::Greeted {
                    self.reset(State::Ready);
                }
                reply(250, "reset")
            }
            "NOOP" => reply(250, "ok"),
            "VRFY" => reply(252, "cannot verify, will accept"),
            "QUIT" => Step::Close("221 bye\r\n".into()),
            "STARTTLS" => reply(454, "TLS not available in the test sink"),
            "AUTH" => reply(502, "no authentication in the test sink"),
            _ => reply(500, "command not recognised"),
        }
    }

    fn reset(&mut self, state: State) {
        self.state = state;
        self.data.clear();
        self.too_big = false;
    }

    fn data_line(&mut self, line: &[u8]) -> Step {
        if line == b"." {
            let accepted = !self.too_big;
            let text = accepted.then(|| mail_text(&self.data));
            self.reset(State::Ready);
            return match text {
                Some(text) => Step::Mail {
                    text,
                    reply: "250 queued\r\n".into(),
                },
                None => Step::Reply(format!("552 the mail is larger than {MAX_MESSAGE} bytes\r\n")),
            };
        }
        // Dot-stuffing: a line starting with a dot was sent with one more.
        let line = line.strip_prefix(b".").unwrap_or(line);
        if self.data.len() + line.len() + 2 > MAX_MESSAGE {
            self.too_big = true;
        } else {
            self.data.extend_from_slice(line);
            self.data.extend_from_slice(b"\r\n");
        }
        Step::Nothing
    }
}

/// The address of `FROM:<a@b> PARAMS` (the empty reverse path `<>` too).
fn path<'a>(arg: &'a str, key: &str) -> Option<&'a str> {
    let head = arg.get(..key.len())?;
    if !head.eq_ignore_ascii_case(key) {
        return None;
    }
    let rest = arg.get(key.len()..)?.trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    inner.get(..end)
}

/// Headers (unfolded, names lower-cased) and body of a message.
fn split_message(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match raw.find("\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match raw.find("\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, ""),
        },
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `=?charset?B|Q?text?=` words decoded (as UTF-8; other charsets are shown as received).
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let word = rest[start + 2..].splitn(3, '?').collect::<Vec<_>>();
        let decoded = match word.as_slice() {
            [_charset, enc, tail] => tail.find("?=").and_then(|end| {
                let text = &tail[..end];
                let bytes = match enc.to_ascii_uppercase().as_str() {
                    "B" => base64::engine::general_purpose::STANDARD.decode(text).ok(),
                    "Q" => quoted_printable::decode(text.replace('_', " "), quoted_printable::ParseMode::Robust).ok(),
                    _ => None,
                }?;
                let consumed = start + 2 + word[0].len() + 1 + enc.len() + 1 + end + 2;
                Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
            }),
            _ => None,
        };
        match decoded {
            Some((text, consumed)) => {
                // Whitespace between two encoded words is not part of the text.
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[consumed..];
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A body decoded by its Content-Transfer-Encoding (as received when it does not decode).
fn decode_body(headers: &[(String, String)], body: &str) -> String {
    let encoding = header(headers, "content-transfer-encoding").map(str::to_ascii_lowercase);
    let bytes = match encoding.as_deref() {
        Some("quoted-printable") => quoted_printable::decode(body, quoted_printable::ParseMode::Robust).ok(),
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(compact).ok()
        }
        _ => None,
    };
    bytes.map_or_else(|| body.to_string(), |b| String::from_utf8_lossy(&b).into_owned())
}

/// The text parts of a body, decoded, one level of multipart deep.
fn body_text(headers: &[(String, String)], body: &str) -> String {
    let kind = header(headers, "content-type").unwrap_or("text/plain");
    let boundary = kind
        .to_ascii_lowercase()
        .starts_with("multipart/")
        .then(|| {
            kind.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                k.eq_ignore_ascii_case("boundary")
                    .then(|| v.trim_matches('"').to_string())
            })
        })
        .flatten();
    let Some(boundary) = boundary else {
        return decode_body(headers, body);
    };
    let marker = format!("--{boundary}");
    body.split(marker.as_str())
        .skip(1)
        .take_while(|part| !part.starts_with("--"))
        .filter_map(|part| {
            let (h, b) = split_message(part.trim_start_matches(['\r', '\n']));
            let kind = header(&h, "content-type").unwrap_or("text/plain").to_ascii_lowercase();
            kind.starts_with("text/").then(|| decode_body(&h, b))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A received mail as the text expectations match: From, To, Subject, a blank line, the body.
pub fn mail_text(raw: &[u8]) -> String {
    let raw = String::from_utf8_lossy(raw);
    let (headers, body) = split_message(&raw);
    let mut out = String::new();
    for (name, label) in [("from", "From"), ("to", "To"), ("subject", "Subject")] {
        if let Some(v) = header(&headers, name) {
            out.push_str(&format!("{label}: {}\n", decode_words(v)));
        }
    }
    out.push('\n');
    out.push_str(body_text(&headers, body).replace("\r\n", "\n").trim_end());
    out
}

/// Serve one client: each accepted mail goes to `keep`.
pub async fn serve(stream: tokio::net::TcpStream, mut keep: impl FnMut(String)) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut session = Session::default();
    write.write_all(Session::greeting().as_bytes()).await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line is read whole up to a bound: a client sending endless bytes without a newline is
        // cut off rather than growing the buffer.
        let n = (&mut read)
            .take((MAX_MESSAGE + 2) as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        match session.line(&line) {
            Step::Nothing => {}
            Step::Reply(r) => write.write_all(r.as_bytes()).await?,
            Step::Mail { text, reply } => {
                keep(text);
                write.write_all(reply.as_bytes()).await?;
            }
            Step::Close(r) => {
                write.write_all(r.as_bytes()).await?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(s: &mut Session, line: &str) -> Step {
        s.line(line.as_bytes())
    }

    fn code(step: &Step) -> &str {
        match step {
            Step::Reply(r) | Step::Close(r) => &r[..3],
            Step::Mail { reply, .. } => &reply[..3],
            Step::Nothing => "",
        }
    }

    #[test]
    fn a_mail_goes_through_the_whole_dialogue() {
        let mut s = Session::default();
        let ehlo = say(&mut s, "EHLO bridge.example");
        assert!(matches!(&ehlo, Step::Reply(r) if r.starts_with("250-") && r.contains("250 SIZE")));
        assert_eq!(
            code(&say(&mut s, "MAIL FROM:<busbar@site.example> BODY=8BITMIME")),
            "250"
        );
        assert_eq!(code(&say(&mut s, "RCPT TO:<ops@site.example>")), "250");
        assert_eq!(code(&say(&mut s, "RCPT TO:<oncall@site.example>")), "250");
        assert_eq!(code(&say(&mut s, "DATA")), "354");
        for l in [
            "From: Busbar <busbar@site.example>",
            "To: ops@site.example",
            "Subject: =?utf-8?b?w5xiZXJsYXN0?= on ats",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            "raised: device/ats/source1_state =3D under_threshold",
            "..a line that started with a dot",
        ] {
            assert_eq!(say(&mut s, l), Step::Nothing);
        }
        match say(&mut s, ".") {
            Step::Mail { text, reply } => {
                assert_eq!(reply, "250 queued\r\n");
                assert_eq!(
                    text,
                    "From: Busbar <busbar@site.example>\nTo: ops@site.example\nSubject: Überlast on ats\n\n\
                     raised: device/ats/source1_state = under_threshold\n.a line that started with a dot"
                );
            }
            other => panic!("no mail: {other:?}"),
        }
        assert_eq!(
            code(&say(&mut s, "MAIL FROM:<>")),
            "250",
            "a second mail on the same session"
        );
        assert!(matches!(say(&mut s, "QUIT"), Step::Close(r) if r.starts_with("221")));
    }

    #[test]
    fn commands_out_of_order_or_malformed_are_refused_with_their_codes() {
        let mut s = Session::default();
        assert_eq!(code(&say(&mut s, "MAIL FROM:<a@b>")), "503", "EHLO first");
        assert_eq!(code(&say(&mut s, "EHLO")), "501");
        assert_eq!(code(&say(&mut s, "HELO client")), "250");
        assert_eq!(code(&say(&mut s, "RCPT TO:<a@b>")), "503");
        assert_eq!(code(&say(&mut s, "DATA")), "503");
        assert_eq!(code(&say(&mut s, "MAIL TO:<a@b>")), "501");
        assert_eq!(code(&say(&mut s, "MAIL FROM:<a@b>")), "250");
        assert_eq!(code(&say(&mut s, "MAIL FROM:<a@b>")), "503");
        assert_eq!(code(&say(&mut s, "RCPT TO:<>")), "501");
        assert_eq!(code(&say(&mut s, "DATA")), "503", "no recipient yet");
        assert_eq!(code(&say(&mut s, "RSET")), "250");
        assert_eq!(
            code(&say(&mut s, "RCPT TO:<a@b>")),
            "503",
            "the reset dropped the sender"
        );
        assert_eq!(code(&say(&mut s, "STARTTLS")), "454");
        assert_eq!(code(&say(&mut s, "AUTH PLAIN AGFAYg==")), "502");
        assert_eq!(code(&say(&mut s, "XYZZY")), "500");
        assert_eq!(code(&s.line(&[b'A'; 600])), "500");
        assert_eq!(code(&s.line(&[0xff, 0xfe, b' ', 0x80])), "500");
    }

    #[test]
    fn a_mail_larger_than_the_limit_is_refused_and_the_session_goes_on() {
        let mut s = Session::default();
        for l in ["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"] {
            say(&mut s, l);
        }
        let line = vec![b'x'; 1000];
        for _ in 0..(MAX_MESSAGE / 1000 + 2) {
            assert_eq!(s.line(&line), Step::Nothing);
        }
        assert_eq!(code(&say(&mut s, ".")), "552");
        assert_eq!(code(&say(&mut s, "MAIL FROM:<a@b>")), "250");
    }

    #[test]
    fn base64_bodies_and_multipart_text_parts_are_decoded() {
        let b64 = "Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\nVGFuayAzOiB3YXRlciDDvGJlciAzMCBtbQ==\r\n";
        assert_eq!(mail_text(b64.as_bytes()), "Subject: x\n\nTank 3: water über 30 mm");
        let multi = "Subject: =?utf-8?q?Alarm_=C3=BCber?= =?utf-8?q?_tank?=\r\n\
            Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
            --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            water =C3=BCber limit\r\n--b1\r\nContent-Type: image/png\r\n\r\nxxxx\r\n--b1--\r\n";
        assert_eq!(
            mail_text(multi.as_bytes()),
            "Subject: Alarm über tank\n\nwater über limit"
        );
        assert_eq!(mail_text(b"no headers at all"), "\n");
        assert_eq!(
            decode_words("=?utf-8?x?broken?= and =?unterminated"),
            "=?utf-8?x?broken?= and =?unterminated"
        );
    }
}
