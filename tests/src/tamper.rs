//! A test-only tampering relay: plaintext HTTP/1.1 from a TCP port to an upstream (the
//! enclave's Unix socket, where traffic is plaintext behind proxy-terminated TLS, or any TCP
//! server). One request per connection; the answer can have one body byte changed, one header
//! byte changed, or be replaced by an older answer to the same path (a replay). These three
//! leave `/attestation` answers alone, so what fails is the signed answer itself;
//! [`Tamper::DocumentByte`] changes the attestation document instead.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What the relay does to answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// Relay faithfully (and remember answers for a later replay).
    Nothing,
    /// Flip one bit of the body's last byte.
    BodyByte,
    /// Change the last character of this header's value (digit +1 mod 10, else a bit flip).
    HeaderByte(&'static str),
    /// Answer with the first answer recorded for the same path.
    Replay,
    /// Flip one bit in the middle of an attestation document (`GET /attestation?...`).
    DocumentByte,
}

/// Where the relay connects.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP port on 127.0.0.1.
    Tcp(u16),
}

/// A running relay; its threads end with the test process.
pub struct Relay {
    /// The port clients connect to.
    pub port: u16,
    mode: Arc<Mutex<Tamper>>,
}

type Recorded = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

impl Relay {
    /// Starts relaying from a fresh 127.0.0.1 port to `upstream`.
    pub fn start(upstream: Upstream) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        let mode = Arc::new(Mutex::new(Tamper::Nothing));
        let recorded: Recorded = Arc::default();
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (m, r, u) = (m.clone(), recorded.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &u, &m, &r);
                });
            }
        });
        Self { port, mode }
    }

    /// Sets what happens to the next answers.
    pub fn set(&self, tamper: Tamper) {
        *self.mode.lock().expect("relay mode") = tamper;
    }
}

fn read_message(stream: &mut dyn std::io::Read, until_eof: bool) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if !until_eof && let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(buf);
            }
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(
    mut client: TcpStream,
    upstream: &Upstream,
    mode: &Mutex<Tamper>,
    recorded: &Recorded,
) -> std::io::Result<()> {
    let request = read_message(&mut client, false)?;
    let Some(head_end) = find(&request, b"\r\n\r\n") else {
        return Ok(());
    };
    let request_line =
        String::from_utf8_lossy(&request[..find(&request, b"\r\n").unwrap_or(0)]).into_owned();
    // One exchange per upstream connection: ask it to close so the answer ends at EOF.
    let mut forwarded = request[..head_end].to_vec();
    forwarded.extend_from_slice(b"\r\nConnection: close");
    forwarded.extend_from_slice(&request[head_end..]);
    let mut answer = match upstream {
        Upstream::Unix(path) => {
            let mut s = std::os::unix::net::UnixStream::connect(path)?;
            s.write_all(&forwarded)?;
            read_message(&mut s, true)?
        }
        Upstream::Tcp(port) => {
            let mut s = TcpStream::connect(("127.0.0.1", *port))?;
            s.write_all(&forwarded)?;
            read_message(&mut s, true)?
        }
    };
    let tamper = mode.lock().expect("relay mode").clone();
    let attestation = request_line.starts_with("GET /attestation");
    let document = request_line.starts_with("GET /attestation?");
    match tamper {
        Tamper::DocumentByte if document => {
            let body_at = find(&answer, b"\r\n\r\n").map_or(0, |e| e + 4);
            let middle = body_at + (answer.len() - body_at) / 2;
            if let Some(b) = answer.get_mut(middle) {
                *b ^= 0x01;
            }
        }
        Tamper::DocumentByte => {}
        _ if attestation => {}
        Tamper::Nothing => recorded
            .lock()
            .expect("recorded")
            .push((request_line, answer.clone())),
        Tamper::BodyByte => {
            if let Some(last) = answer.last_mut() {
                *last ^= 0x01;
            }
        }
        Tamper::HeaderByte(name) => {
            let head_end = find(&answer, b"\r\n\r\n").unwrap_or(0);
            let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
            let prefix = format!("\r\n{}:", name.to_ascii_lowercase());
            if let Some(at) = head.find(&prefix) {
                let line_end = head[at + 2..].find("\r\n").map_or(head_end, |e| at + 2 + e);
                let b = &mut answer[line_end - 1];
                *b = if b.is_ascii_digit() {
                    b'0' + (*b - b'0' + 1) % 10
                } else {
                    *b ^ 0x01
                };
            }
        }
        Tamper::Replay => {
            let recorded = recorded.lock().expect("recorded");
            if let Some((_, old)) = recorded.iter().find(|(line, _)| {
                // The same path (nonces in the query differ only for /attestation).
                line.split('?').next() == request_line.split('?').next()
            }) {
                answer = old.clone();
            }
        }
    }
    client.write_all(&answer)?;
    client.flush()
}
