//! `nautilus-verify` as a user runs it: the real AWS Nitro document offline (at its time, three
//! hours later, mutated), bad command-line values, and signed answers through a tampering relay.

use std::path::PathBuf;
use std::process::{Command, Output};

use nautilus_tests::{binary, workspace_dir};

/// The document's own timestamp (fixture README).
const REAL_AT: u64 = 1_731_627_989_450;
const PCR3: &str = "639a8b65f68b0223cbb14a0032487e5656d260434e3d1a10e7ec1407fb86143860717fc8afee90df7a1604111709af46";

fn fixture() -> PathBuf {
    workspace_dir().join("core/tests/fixtures/nitro/real-attestation-1.hex")
}

fn run(args: &[&str]) -> Output {
    Command::new(binary("nautilus-verify"))
        .args(args)
        .output()
        .expect("run nautilus-verify")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_real_document_verifies_at_its_time_and_prints_the_pcrs() {
    let at = REAL_AT.to_string();
    let out = run(&[
        "attestation",
        "--file",
        fixture().to_str().unwrap(),
        "--at",
        &at,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("PCR3 {PCR3}")), "{t}");
    assert!(
        t.contains("module_id i-0f73a4b4cb74cc9f2-enc0192e4188fef781d"),
        "{t}"
    );
    assert!(
        t.contains("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"),
        "{t}"
    );
    assert!(!t.contains('✗'), "{t}");

    // The same document as raw CBOR, with an expected PCR.
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("doc.cbor");
    let hex = std::fs::read_to_string(fixture()).unwrap();
    std::fs::write(&raw, hex_decode(hex.trim())).unwrap();
    let pcr = format!("3={PCR3}");
    let out = run(&[
        "attestation",
        "--file",
        raw.to_str().unwrap(),
        "--at",
        &at,
        "--pcr",
        &pcr,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("✓ PCR3 is the expected value"));
}

#[test]
fn three_hours_later_the_leaf_has_expired() {
    let at = (REAL_AT + 3 * 3600 * 1000).to_string();
    let out = run(&[
        "attestation",
        "--file",
        fixture().to_str().unwrap(),
        "--at",
        &at,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✗ certificate chain valid at"), "{t}");
    assert!(t.contains("expired"), "{t}");
}

#[test]
fn a_mutated_document_or_a_wrong_pcr_fails() {
    let dir = tempfile::tempdir().unwrap();
    let hex = std::fs::read_to_string(fixture()).unwrap();
    let mut bytes = hex_decode(hex.trim());
    // A byte inside the payload's PCR values.
    bytes[300] ^= 0x01;
    let path = dir.path().join("mutated.hex");
    std::fs::write(&path, encode(&bytes)).unwrap();
    let at = REAL_AT.to_string();
    let out = run(&["attestation", "--file", path.to_str().unwrap(), "--at", &at]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains('✗'));

    let wrong = format!("4={PCR3}");
    let out = run(&[
        "attestation",
        "--file",
        fixture().to_str().unwrap(),
        "--at",
        &at,
        "--pcr",
        &wrong,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✗ PCR4 is 9ab5a1ab"), "{t}");
}

#[test]
fn bad_command_line_values_are_refused_with_a_reason() {
    let at = REAL_AT.to_string();
    let f = fixture();
    let f = f.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["attestation", "--file", f, "--at", &at, "--pcr", "0=zz"],
            "not hex",
        ),
        (
            &["attestation", "--file", f, "--at", &at, "--pcr", "0=00"],
            "48 bytes",
        ),
        (
            &["attestation", "--file", f, "--at", &at, "--pcr", "40=00"],
            "0 to 31",
        ),
        (
            &["attestation", "--file", "/nonexistent/doc"],
            "/nonexistent/doc",
        ),
        (&["attestation", "--url", "ftp://x"], "https://"),
        (
            &["attestation", "--url", "https://127.0.0.1:1"],
            "--ca FILE",
        ),
    ];
    for (args, want) in cases {
        let out = run(args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {t}");
        assert!(t.contains(want), "{args:?}: {t}");
    }
    // A random file is not a document, and says why.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"\x84\x5b\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
    let out = run(&["attestation", "--file", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("length larger than the bytes left"),
        "{}",
        text(&out)
    );
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The relay itself, against a tiny HTTP server: faithful, body byte, header byte, replay.
#[test]
fn the_tampering_relay_changes_exactly_what_it_is_told() {
    use nautilus_tests::tamper::{Relay, Tamper, Upstream};
    use std::io::{Read as _, Write as _};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, conn) in server.incoming().enumerate() {
            let mut conn = conn.unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = format!("answer{n}");
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Nautilus-Revision: 17\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let relay = Relay::start(Upstream::Tcp(port));
    let get_path = |path: &str| {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    let get = || get_path("/x?n=1");
    let first = get();
    assert!(first.ends_with("\r\n\r\nanswer0"), "{first}");
    relay.set(Tamper::BodyByte);
    // '1' (0x31) with its low bit flipped is '0'.
    assert!(get().ends_with("\r\n\r\nanswer0"));
    relay.set(Tamper::HeaderByte("x-nautilus-revision"));
    let changed = get();
    assert!(changed.contains("X-Nautilus-Revision: 18\r\n"), "{changed}");
    assert!(changed.ends_with("answer2"));
    relay.set(Tamper::Replay);
    assert_eq!(get(), first);
    // Answers of /attestation are left alone by those three, and changed by DocumentByte.
    relay.set(Tamper::BodyByte);
    assert!(get_path("/attestation?nonce=00").ends_with("answer4"));
    relay.set(Tamper::DocumentByte);
    assert!(get_path("/x").ends_with("answer5"));
    // "answer6": its middle byte ('w') has its low bit flipped.
    assert!(get_path("/attestation?nonce=00").ends_with("ansver6"));
}

/// Starts the enclave alone on a Unix socket with the simulated NSM and a relay in front of it
/// (plaintext HTTP, as behind proxy-terminated TLS). Returns (enclave, relay, token).
fn enclave_behind_relay(
    dir: &std::path::Path,
) -> (Killed, nautilus_tests::tamper::Relay, &'static str) {
    use nautilus_tests::tamper::{Relay, Upstream};
    use sha2_free_hash::hex_sha256;
    let token = "verify-test-admin-token";
    let socket = dir.join("enclave.sock");
    let child = Command::new(binary("nautilus-enclave"))
        .arg(format!("--listen=unix:{}", socket.display()))
        .arg("--simulated-nsm")
        .arg(format!(
            "--admin-token-sha256={}",
            hex_sha256(token.as_bytes())
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nautilus-enclave");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (Killed(child), Relay::start(Upstream::Unix(socket)), token)
}

/// A child process killed when the test ends, even by a failed assertion.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SHA-256 through `sha256sum` (the test crate has no hash dependency).
mod sha2_free_hash {
    pub(super) fn hex_sha256(data: &[u8]) -> String {
        use std::io::Write as _;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }
}

#[test]
fn signed_get_passes_faithfully_and_fails_for_each_tampering() {
    use nautilus_tests::tamper::Tamper;
    let dir = tempfile::tempdir().unwrap();
    let (_enclave, relay, token) = enclave_behind_relay(dir.path());
    let url = format!("http://127.0.0.1:{}", relay.port);
    let get = || {
        run(&[
            "get",
            "/api/v1/namespaces/default",
            "--url",
            &url,
            "--allow-simulated",
            "--token",
            token,
        ])
    };
    let good = get();
    let t = text(&good);
    assert_eq!(good.status.code(), Some(0), "{t}");
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("\"name\":\"default\""),
        "{t}"
    );
    assert!(t.contains("✓ answer signature"), "{t}");
    assert!(t.contains("✓ nonce "), "{t}");
    assert!(
        t.contains("✓ /attestation/config hashes to the config digest"),
        "{t}"
    );
    assert!(t.contains("config simulated_nsm = true"), "{t}");
    assert!(t.contains("✓ user_data"), "{t}");
    assert!(t.contains("zero SPKI hash"), "{t}");
    assert!(t.contains("WARNING: simulated NSM"), "{t}");

    // Without --allow-simulated the simulated document is refused.
    let out = run(&[
        "get",
        "/api/v1/namespaces/default",
        "--url",
        &url,
        "--token",
        token,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("simulated NSM"), "{}", text(&out));

    for (tamper, want) in [
        (Tamper::BodyByte, "✗ answer signature"),
        (
            Tamper::HeaderByte("x-nautilus-revision"),
            "✗ answer signature",
        ),
        (
            Tamper::HeaderByte("x-nautilus-timestamp"),
            "✗ answer signature",
        ),
        (Tamper::Replay, "✗ nonce echoed"),
    ] {
        relay.set(tamper.clone());
        let out = get();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{tamper:?}: {t}");
        assert!(t.contains(want), "{tamper:?}: {t}");
    }
    // A changed attestation document fails too.
    relay.set(Tamper::DocumentByte);
    let out = run(&["attestation", "--url", &url, "--allow-simulated"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// A stand-in for the enclave's `/attestation` that answers every request with the real (old,
/// nonce-less) AWS document: the network path, TLS modes and the SPKI binding are exercised,
/// and the nonce, the clock and user_data must be reported as failures.
/// The DER certificates a test server presents: its own, then its CA's.
type ServedChain = (Vec<u8>, Vec<u8>);

/// Serves the fixture document on loopback; with `tls`, over TLS presenting a certificate for
/// 127.0.0.1 and then the CA that issued it (what enclave TLS presents). Returns the port and,
/// with `tls`, the served and CA certificates.
fn serve_real_document(tls: bool, config_header: bool) -> (u16, Option<ServedChain>) {
    use std::io::{Read as _, Write as _};
    let hex = std::fs::read_to_string(fixture()).unwrap();
    let doc = hex_decode(hex.trim());
    let config_digest = sha2_free_hash::hex_sha256(CONFIG_TEXT.as_bytes());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let identity = tls.then(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "verify test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "verify test server");
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        (leaf, ca, key)
    });
    let certs = identity
        .as_ref()
        .map(|(leaf, ca, _)| (leaf.der().to_vec(), ca.der().to_vec()));
    let config = identity.map(|(leaf, ca, key)| {
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
            .unwrap(),
        )
    });
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut stream: Box<dyn ReadWrite> = match &config {
                Some(cfg) => Box::new(rustls::StreamOwned::new(
                    rustls::ServerConnection::new(cfg.clone()).unwrap(),
                    conn,
                )),
                None => Box::new(conn),
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let (status, body): (&str, &[u8]) = if buf.starts_with(b"GET /attestation/config ") {
                if config_header {
                    ("200 OK", CONFIG_TEXT.as_bytes())
                } else {
                    ("404 Not Found", b"")
                }
            } else {
                ("200 OK", &doc)
            };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if config_header {
                head.push_str(&format!("X-Nautilus-Config-Digest: {config_digest}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            let _ = stream.flush();
        }
    });
    (port, certs)
}

const CONFIG_TEXT: &str = "listen = \"unix:/run/enclave.sock\"\nsimulated_nsm = false\n";

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

#[test]
fn url_mode_fetches_over_tls_binds_the_presented_spki_and_reports_each_failure() {
    let (port, cert) = serve_real_document(true, true);
    let url = format!("https://127.0.0.1:{port}");
    let out = run(&["attestation", "--url", &url, "--enclave-tls"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains(&format!("✓ GET {url}/attestation")), "{t}");
    assert!(t.contains("✓ /attestation answered 200"), "{t}");
    assert!(t.contains("✓ X-Nautilus-Config-Digest header"), "{t}");
    assert!(
        t.contains("✓ /attestation/config hashes to the config digest"),
        "{t}"
    );
    assert!(t.contains("config simulated_nsm = false"), "{t}");
    assert!(
        t.contains("✓ enclave TLS certificate presented, issued by the CA presented with it"),
        "{t}"
    );
    assert!(
        t.contains("✓ signature with the leaf key, chain to the pinned AWS root"),
        "{t}"
    );
    // The document is from 2024: expired now, no nonce, and bound to another configuration.
    assert!(t.contains("✗ certificate chain valid at"), "{t}");
    assert!(t.contains("✗ nonce"), "{t}");
    assert!(t.contains("✗ user_data 5a264748"), "{t}");
    // The SPKI hashes printed are the ones of the certificates the server presented.
    let (cert, ca_cert) = cert.unwrap();
    for (der, what) in [
        (&cert, "presented TLS SPKI"),
        (&ca_cert, "issuing CA's SPKI"),
    ] {
        let spki = nautilus_core::attestation::subject_public_key_info(der).unwrap();
        let spki_hash = sha2_free_hash::hex_sha256(spki);
        assert!(t.contains(&format!("{what} {spki_hash}")), "{t}");
    }

    // Proxy-terminated TLS with the operator's CA: the server certificate is checked, and the
    // binding uses the zero SPKI hash.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, to_pem(&ca_cert)).unwrap();
    let out = run(&["attestation", "--url", &url, "--ca", ca.to_str().unwrap()]);
    let t = text(&out);
    assert!(t.contains(&format!("✓ GET {url}/attestation")), "{t}");
    assert!(t.contains("zero SPKI hash"), "{t}");
    // A CA that did not issue the server certificate: the TLS handshake fails.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(&ca, other.cert.pem()).unwrap();
    let out = run(&["attestation", "--url", &url, "--ca", ca.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("✗ GET {url}/attestation: TLS handshake")),
        "{t}"
    );
}

#[test]
fn url_mode_needs_the_config_digest_header() {
    let (port, _) = serve_real_document(false, false);
    let url = format!("http://127.0.0.1:{port}");
    let out = run(&["attestation", "--url", &url]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("✗ X-Nautilus-Config-Digest header: missing"),
        "{t}"
    );
}

fn to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem + "-----END CERTIFICATE-----\n"
}
