//! Test tools for the TLS modes: a capturing Unix-socket relay to put between the proxy and the
//! enclave (it records every byte of every connection, both ways, and passes them on
//! unchanged), a TLS record parser to check what it saw, and a supervised child process with
//! captured output for running `nautilus-enclave` and `nautilus-proxy serve` on their own.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Both directions of one relayed connection.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Bytes from the proxy to the enclave.
    pub to_enclave: Vec<u8>,
    /// Bytes from the enclave to the proxy.
    pub from_enclave: Vec<u8>,
}

/// A Unix-socket relay that records what it relays.
pub struct CaptureRelay {
    /// Every connection so far, in accept order.
    pub connections: Arc<Mutex<Vec<Arc<Mutex<Captured>>>>>,
    /// Where the relay listens.
    pub path: PathBuf,
}

impl CaptureRelay {
    /// Listens on `listen` and relays each connection to a fresh connection to `target`.
    pub fn start(listen: &Path, target: &Path) -> Self {
        let _ = std::fs::remove_file(listen);
        let listener = UnixListener::bind(listen).expect("bind the relay socket");
        let connections: Arc<Mutex<Vec<Arc<Mutex<Captured>>>>> = Arc::default();
        let all = connections.clone();
        let target = target.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = UnixStream::connect(&target) else {
                    continue;
                };
                let record = Arc::new(Mutex::new(Captured::default()));
                all.lock().expect("relay lock").push(record.clone());
                for (from, to, up) in [
                    (client.try_clone(), server.try_clone(), true),
                    (server.try_clone(), client.try_clone(), false),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    let record = record.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let chunk = buf.get(..n).unwrap_or_default();
                            {
                                let mut record = record.lock().expect("record lock");
                                let side = if up {
                                    &mut record.to_enclave
                                } else {
                                    &mut record.from_enclave
                                };
                                side.extend_from_slice(chunk);
                            }
                            if to.write_all(chunk).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Self {
            connections,
            path: listen.to_path_buf(),
        }
    }

    /// A copy of every connection's bytes so far.
    pub fn captured(&self) -> Vec<Captured> {
        self.connections
            .lock()
            .expect("relay lock")
            .iter()
            .map(|c| c.lock().expect("record lock").clone())
            .collect()
    }

    /// Forgets what was recorded so far.
    pub fn clear(&self) {
        self.connections.lock().expect("relay lock").clear();
    }
}

/// One TLS record header: content type, legacy version, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// 0x14 change_cipher_spec, 0x15 alert, 0x16 handshake, 0x17 application_data.
    pub content_type: u8,
    /// The record's legacy_record_version.
    pub version: u16,
    /// Length of the fragment.
    pub length: usize,
    /// First fragment byte (the handshake message type for handshake records).
    pub first_byte: Option<u8>,
}

/// Splits `bytes` into TLS records (RFC 8446 §5.1), checking that each header is well formed,
/// that no fragment is longer than 2^14 + 256 bytes, and that the stream ends on a record
/// boundary.
pub fn tls_records(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let (header, after) = rest
            .split_at_checked(5)
            .ok_or_else(|| format!("a partial record header at byte {offset}"))?;
        let content_type = header[0];
        let version = u16::from_be_bytes([header[1], header[2]]);
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if !matches!(content_type, 0x14..=0x17) {
            return Err(format!(
                "content type {content_type:#04x} at byte {offset} is not a TLS record"
            ));
        }
        if length > (1 << 14) + 256 {
            return Err(format!("record of {length} bytes at byte {offset}"));
        }
        let (fragment, after) = after
            .split_at_checked(length)
            .ok_or_else(|| format!("the record at byte {offset} runs past the stream's end"))?;
        records.push(Record {
            content_type,
            version,
            length,
            first_byte: fragment.first().copied(),
        });
        rest = after;
    }
    Ok(records)
}

/// A child process whose output is kept for assertions; SIGTERM then SIGKILL on drop.
pub struct Proc {
    child: Child,
    /// Everything it printed (stdout and stderr lines).
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `program` with `args`.
    pub fn spawn(program: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let output: Arc<Mutex<Vec<String>>> = Arc::default();
        let streams: [Option<Box<dyn std::io::Read + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as _),
            child.stderr.take().map(|s| Box::new(s) as _),
        ];
        for stream in streams.into_iter().flatten() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().expect("log lock").push(line);
                }
            });
        }
        Self { child, output }
    }

    /// Everything printed so far.
    pub fn logs(&self) -> String {
        self.output.lock().expect("log lock").join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until a printed line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until `ready` holds, failing with the output if the process exits or time runs out.
    pub fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what}: exited early ({status}):\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not ready:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        crate::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-cluster kubeconfig trusting `ca_pem` with a bearer `token`.
pub fn kubeconfig(server: &str, ca_pem: &[u8], token: &str) -> String {
    let names = nautilus_wire::kubeconfig::Names {
        cluster: "c",
        user: "u",
        context: "c",
    };
    nautilus_wire::kubeconfig::kubeconfig(&names, server, ca_pem, Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_bad_streams_do_not() {
        let good = [
            &[0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00][..],
            &[0x17, 0x03, 0x03, 0x00, 0x01, 0xAA],
        ]
        .concat();
        let records = tls_records(&good).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].first_byte, Some(0x01));
        assert_eq!(records[1].version, 0x0303);
        for bad in [
            &b"GET /api HTTP/1.1\r\n"[..],
            &[0x16, 0x03, 0x03, 0x00, 0x05, 0x01],
            &[0x17, 0x03],
            &[0x17, 0x03, 0x03, 0xFF, 0xFF],
        ] {
            assert!(tls_records(bad).is_err(), "{bad:?}");
        }
    }
}
