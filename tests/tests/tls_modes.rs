//! The two TLS modes end to end, with the real binaries: enclave TLS (the proxy splices
//! ciphertext it cannot read; `dev --enclave-tls` pins the cluster CA that certifies the
//! enclave's key for kubectl)
//! and proxy-terminated TLS with an operator's certificate (reloaded on SIGHUP) and optional
//! client certificates whose CN becomes the user, handed to the enclave in the connection
//! preamble that a client can never forge.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nautilus_tests::capture::{self, CaptureRelay, Proc};
use nautilus_tests::{DevCluster, binary, free_port};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The admin token of the standalone enclaves, and its SHA-256 (what the enclave is given).
const TOKEN: &str = "nautilus-tls-modes-admin-token";
const TOKEN_SHA256: &str = "ab2236d80b9f3092f317be61c85a5f42846f18d1272ff2dd23896e4589616770";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `nautilus-enclave` on `dir/enclave.sock` with a simulated NSM and `extra` options.
fn start_enclave(dir: &Path, extra: &[&str]) -> (Proc, std::path::PathBuf) {
    let socket = dir.join("enclave.sock");
    let listen = format!("unix:{}", socket.display());
    let mut args = vec![
        "--listen",
        &listen,
        "--simulated-nsm",
        "--admin-token-sha256",
        TOKEN_SHA256,
    ];
    args.extend_from_slice(extra);
    let mut enclave = Proc::spawn(&binary("nautilus-enclave"), &args);
    enclave.wait_until("enclave", || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    (enclave, socket)
}

/// `nautilus-proxy serve` on a free port towards `enclave`, with `extra` options.
fn start_proxy(enclave: &Path, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let target = format!("unix:{}", enclave.display());
    let mut args = vec!["serve", "--listen", &listen, "--enclave", &target];
    args.extend_from_slice(extra);
    let mut proxy = Proc::spawn(&binary("nautilus-proxy"), &args);
    proxy.wait_until("proxy", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proxy, port)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any server certificate (its handshake signature is still checked): for learning
/// which certificate a server shows.
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn any_server_config() -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_no_client_auth();
    Arc::new(config)
}

/// A client trusting `server_ca` (PEM), optionally showing `client` (certificate, key).
fn client_config(
    server_ca: &[u8],
    client: Option<(&CertificateDer<'static>, &KeyPair)>,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server_ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// The certificate a TLS server on `port` shows.
fn server_certificate(port: u16) -> CertificateDer<'static> {
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(any_server_config())
            .connect(name, tcp)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    })
}

fn pem(cert: &CertificateDer<'_>) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// Writes `request` on a fresh TLS connection and reads until the server closes. `Err`: the
/// handshake or the connection failed before any answer byte.
fn exchange(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    request: &[u8],
) -> Result<String, String> {
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tls.write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut answer))
            .await
            .map_err(|_| "timed out".to_string())?;
        match read {
            Ok(_) => {}
            // Some servers close without close_notify after `Connection: close`.
            Err(_) if !answer.is_empty() => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })
}

fn get(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}connection: close\r\n\r\n")
        .into_bytes()
}

fn status(answer: &str) -> Option<u16> {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[test]
fn passthrough_relays_only_tls_records() {
    let dir = tempfile::tempdir().unwrap();
    let (enclave, enclave_socket) = start_enclave(dir.path(), &["--tls", "enclave"]);
    let relay = CaptureRelay::start(&dir.path().join("relay.sock"), &enclave_socket);
    let (proxy, port) = start_proxy(&relay.path, &["--passthrough"]);

    // Learn the enclave's certificate through the proxy (what dev does on first use).
    let cert = server_certificate(port);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        capture::kubeconfig(&format!("https://127.0.0.1:{port}"), &pem(&cert), TOKEN),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("kubectl")
        .env("KUBECONFIG", &kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["get", "ns"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        proxy.logs(),
        enclave.logs()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kube-system"));
    // Let the relay see the connections end.
    std::thread::sleep(Duration::from_millis(500));

    let captured = relay.captured();
    assert!(
        captured.len() >= 2,
        "the handshake and kubectl's connections"
    );
    let mut application_bytes = 0;
    for (i, conn) in captured.iter().enumerate() {
        if conn.to_enclave.is_empty() && conn.from_enclave.is_empty() {
            continue; // a readiness probe: connected and closed without a byte
        }
        for (direction, bytes, hello) in [
            ("to the enclave", &conn.to_enclave, 0x01), // ClientHello
            ("from the enclave", &conn.from_enclave, 0x02), // ServerHello
        ] {
            let records = capture::tls_records(bytes)
                .unwrap_or_else(|e| panic!("connection {i} {direction}: {e}"));
            let first = records
                .first()
                .unwrap_or_else(|| panic!("connection {i} {direction}: no record"));
            assert_eq!(
                (first.content_type, first.first_byte),
                (0x16, Some(hello)),
                "connection {i} {direction}: the first record is the Hello"
            );
            for (n, record) in records.iter().enumerate() {
                // RFC 8446 §5.1: 0x0303 everywhere, except that the initial ClientHello's record
                // may say 0x0301 (Go's crypto/tls, i.e. kubectl, does).
                let allowed: &[u16] = if n == 0 && hello == 0x01 {
                    &[0x0301, 0x0303]
                } else {
                    &[0x0303]
                };
                assert!(
                    allowed.contains(&record.version),
                    "connection {i} {direction} record {n}: {record:?}"
                );
                if record.content_type == 0x17 {
                    application_bytes += record.length;
                }
            }
            for plaintext in [
                &b"GET /api"[..],
                b"\"kind\"",
                b"HTTP/1.1",
                b"Bearer",
                TOKEN.as_bytes(),
            ] {
                assert!(
                    !bytes.windows(plaintext.len()).any(|w| w == plaintext),
                    "connection {i} {direction} carries plaintext {:?}",
                    String::from_utf8_lossy(plaintext)
                );
            }
        }
    }
    assert!(
        application_bytes > 1000,
        "kubectl's requests and answers went through as application data records"
    );
}

#[test]
fn passthrough_closes_connections_while_the_enclave_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, port) = start_proxy(&dir.path().join("nobody.sock"), &["--passthrough"]);
    // No key on the proxy: no TLS answer, not even a plaintext /readyz; the connection closes.
    let handshake = exchange(port, any_server_config(), &get("/readyz", None));
    assert!(handshake.is_err(), "{handshake:?}");
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    use std::io::{Read as _, Write as _};
    let _ = raw.write_all(&get("/readyz", None));
    let mut answer = Vec::new();
    let read = raw.read_to_end(&mut answer);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed without an answer, got {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        proxy.wait_for_log("closing connections", Duration::from_secs(5)),
        "{}",
        proxy.logs()
    );
}

/// Waits (up to a minute) until dev's output has `text`, or fails with the output.
fn wait_for_log(cluster: &DevCluster, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cluster.logs().contains(text) {
        assert!(std::time::Instant::now() < deadline, "{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_enclave_tls_serves_kubectl_end_to_end() {
    let cluster = DevCluster::start_opts(&["--enclave-tls"], &[]);
    assert!(
        !cluster.dir.path().join("ca.crt").exists(),
        "no dev CA: the proxy holds no key in enclave TLS mode"
    );
    let logs = cluster.logs();
    assert!(logs.contains("TRUST ON FIRST USE"), "{logs}");
    // The serving key is the one the enclave made, and the pinned CA the one that certifies it
    // (their SPKI hashes, as the attestation binds them).
    let printed = |after: &str| {
        logs.split(after)
            .nth(1)
            .and_then(|rest| rest.get(..64))
            .unwrap_or_else(|| panic!("no {after:?} printed:\n{logs}"))
            .to_string()
    };
    let serving = printed("enclave serving key: SubjectPublicKeyInfo sha256 ");
    let ca = printed("CA SubjectPublicKeyInfo sha256 ");
    assert!(
        logs.contains(&format!(" spki_sha256={serving}"))
            && logs.contains(&format!("ca_spki_sha256={ca}")),
        "the enclave's key and CA:\n{logs}"
    );
    assert!(cluster.kubectl_ok(&["get", "ns"]).contains("default"));
    cluster.kubectl_ok(&["create", "namespace", "sealed"]);
    let names = cluster.kubectl_ok(&["get", "ns", "-o", "name"]);
    assert!(names.contains("namespace/sealed"), "{names}");
    let reply = cluster
        .request("GET", "/api/v1/namespaces/sealed", None, &[])
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(cluster.anonymous("GET", "/readyz").unwrap().status, 200);

    // A restarted enclave has a new key, certified by the same cluster CA (the cluster is
    // durable): the kubeconfig stays as it is and kubectl keeps working.
    let pinned = std::fs::read(&cluster.kubeconfig).unwrap();
    let pid = cluster.enclave_pid().expect("the enclave child runs");
    nautilus_tests::signal(pid, libc::SIGKILL);
    wait_for_log(&cluster, "kubeconfig unchanged");
    let logs = cluster.logs();
    assert!(!logs.contains("kubeconfig re-pinned"), "{logs}");
    let keys: Vec<&str> = logs
        .split(" spki_sha256=")
        .skip(1)
        .filter_map(|rest| rest.get(..64))
        .collect();
    assert_eq!(keys.len(), 2, "two boots:\n{logs}");
    assert_ne!(keys[0], keys[1], "a new serving key");
    assert_eq!(std::fs::read(&cluster.kubeconfig).unwrap(), pinned);
    assert!(cluster.kubectl_ok(&["get", "ns"]).contains("sealed"));
}

/// Issue 17: `dev --replicas 3 --enclave-tls`: each replica terminates TLS with its own key,
/// all certified by the one cluster CA (it comes from the cluster's data key), so one pinned
/// kubeconfig reaches whichever replica the proxy splices to. `kill -9` of the leader: the
/// proxy's poller (which probes the replicas over TLS) finds the new leader, writes go on,
/// and the restarted replica is pinned again under the same CA, the kubeconfig unchanged.
#[test]
fn dev_enclave_tls_with_replicas_keeps_one_pinned_ca_across_a_leader_kill() {
    let cluster = DevCluster::start_opts(&["--enclave-tls", "--replicas", "3"], &[]);
    let pinned = std::fs::read(&cluster.kubeconfig).unwrap();
    let hashes = |logs: &str, field: &str| -> std::collections::BTreeSet<String> {
        logs.split(field)
            .skip(1)
            .filter_map(|rest| rest.get(..64))
            .map(str::to_string)
            .collect()
    };
    // The leader as the proxy's poller last saw it (its TLS probes are what found it).
    let leader = |logs: &str| {
        logs.rsplit("enclave replica leader slot=")
            .next()
            .filter(|_| logs.contains("enclave replica leader slot="))
            .and_then(|rest| rest.get(..1))
            .and_then(|slot| slot.parse::<usize>().ok())
    };
    // Every replica up and both others promoted to voters (so the cluster outlives its
    // leader), as the leader logs it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let first = loop {
        let logs = cluster.logs();
        if let Some(slot) = leader(&logs)
            && hashes(&logs, " spki_sha256=").len() == 3
            && logs.matches("a replica joined as its slot's voter").count() >= 2
        {
            break slot;
        }
        assert!(std::time::Instant::now() < deadline, "{logs}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let logs = cluster.logs();
    assert_eq!(
        hashes(&logs, "ca_spki_sha256=").len(),
        1,
        "three serving keys, one cluster CA:\n{logs}"
    );
    cluster.kubectl_ok(&["create", "configmap", "before", "--from-literal=k=v"]);

    let pid = cluster.replica_pid(first).expect("the leader's pid");
    nautilus_tests::signal(pid, libc::SIGKILL);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster.kubectl(&["create", "configmap", "after", "--from-literal=k=v"]);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no write after the leader was killed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_log(&cluster, "kubeconfig unchanged");
    let logs = cluster.logs();
    assert!(!logs.contains("kubeconfig re-pinned"), "{logs}");
    assert_eq!(
        hashes(&logs, " spki_sha256=").len(),
        4,
        "a fourth serving key:\n{logs}"
    );
    assert_eq!(hashes(&logs, "ca_spki_sha256=").len(), 1, "{logs}");
    assert!(leader(&logs).is_some_and(|slot| slot != first), "{logs}");
    assert_eq!(std::fs::read(&cluster.kubeconfig).unwrap(), pinned);
    let names = cluster.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    assert!(
        names.contains("configmap/before") && names.contains("configmap/after"),
        "{names}"
    );
}

/// A self-signed server certificate for 127.0.0.1 (ECDSA P-256), as PEM files.
fn write_server_cert(dir: &Path, cn: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    cert.pem().into_bytes()
}

/// The same with an RSA key (made by openssl; ring cannot generate RSA keys), since operators
/// bring RSA certificates too. `None` when openssl is missing.
fn write_rsa_server_cert(dir: &Path) -> Option<Vec<u8>> {
    let key_path = dir.join("rsa.key");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key_path)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !made.success() {
        return None;
    }
    let key_pem = std::fs::read_to_string(&key_path).ok()?;
    let key = KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).ok()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key_pem).unwrap();
    Some(cert.pem().into_bytes())
}

#[test]
fn operator_certificate_reloads_on_sighup_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (_enclave, socket) = start_enclave(dir.path(), &[]);
    let first_pem = write_server_cert(dir.path(), "first");
    let cert = dir.path().join("tls.crt").display().to_string();
    let key = dir.path().join("tls.key").display().to_string();
    let (proxy, port) = start_proxy(&socket, &["--cert", &cert, "--key", &key]);
    let first = server_certificate(port);
    assert_eq!(pem(&first), first_pem);

    let rt = runtime();
    let mut open = rt
        .block_on(nautilus_tests::client::Connection::open(
            port,
            nautilus_tests::client::tls_config(&first_pem),
        ))
        .unwrap();
    let auth = vec![("authorization".to_string(), format!("Bearer {TOKEN}"))];
    let before = rt
        .block_on(open.send("GET", "/api/v1/namespaces", None, &auth))
        .unwrap();
    assert_eq!(before.status, 200);

    // An RSA certificate replaces the ECDSA one (or a second ECDSA one without openssl).
    let second_pem = write_rsa_server_cert(dir.path())
        .unwrap_or_else(|| write_server_cert(dir.path(), "second"));
    nautilus_tests::signal(proxy.pid(), libc::SIGHUP);
    assert!(
        proxy.wait_for_log("TLS certificate reloaded", Duration::from_secs(10)),
        "{}",
        proxy.logs()
    );
    assert_eq!(
        pem(&server_certificate(port)),
        second_pem,
        "a new connection sees the new certificate"
    );
    let answer = exchange(
        port,
        client_config(&second_pem, None),
        &get("/api/v1/namespaces", Some(TOKEN)),
    )
    .unwrap();
    assert_eq!(status(&answer), Some(200), "{answer}");
    // The connection opened before the reload keeps working.
    let after = rt
        .block_on(open.send("GET", "/api/v1/namespaces", None, &auth))
        .unwrap();
    assert_eq!(after.status, 200);

    // A broken file: the proxy says why and keeps serving the second certificate.
    std::fs::write(
        dir.path().join("tls.key"),
        "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    nautilus_tests::signal(proxy.pid(), libc::SIGHUP);
    assert!(
        proxy.wait_for_log("NOT reloaded", Duration::from_secs(10)),
        "{}",
        proxy.logs()
    );
    assert_eq!(pem(&server_certificate(port)), second_pem);
}

/// A client CA and a certificate it signed for `cn` in organizations `orgs`; `expired` dates it
/// in the past.
struct ClientPki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: KeyPair,
}

fn client_pki(cn: &str, orgs: &[&str], expired: bool) -> ClientPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "client CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    for org in orgs {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *org);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    ClientPki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key,
    }
}

/// An enclave trusting the proxy's preamble (or not) behind a proxy with `--client-ca`.
fn client_cert_stack(dir: &Path, trust: bool, ca_pem: &str) -> (Proc, Proc, u16, Vec<u8>) {
    let extra: &[&str] = if trust {
        &["--trust-proxy-client-cert"]
    } else {
        &[]
    };
    let (enclave, socket) = start_enclave(dir, extra);
    let server_pem = write_server_cert(dir, "apiserver");
    std::fs::write(dir.join("client-ca.crt"), ca_pem).unwrap();
    let cert = dir.join("tls.crt").display().to_string();
    let key = dir.join("tls.key").display().to_string();
    let ca = dir.join("client-ca.crt").display().to_string();
    let (proxy, port) = start_proxy(
        &socket,
        &["--cert", &cert, "--key", &key, "--client-ca", &ca],
    );
    (enclave, proxy, port, server_pem)
}

#[test]
fn client_certificates_name_the_user_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let alice = client_pki("alice", &["dev", "ops"], false);
    let (enclave, proxy, port, server_pem) = client_cert_stack(dir.path(), true, &alice.ca_pem);
    let with_cert = |pki: &ClientPki, request: &[u8]| {
        exchange(
            port,
            client_config(&server_pem, Some((&pki.cert, &pki.key))),
            request,
        )
    };

    // A certificate from the client CA is a user (no RBAC: authorised like the admin).
    let answer = with_cert(&alice, &get("/api/v1/namespaces", None)).unwrap();
    assert_eq!(
        status(&answer),
        Some(200),
        "{answer}\n{}\n{}",
        proxy.logs(),
        enclave.logs()
    );
    assert!(answer.contains("NamespaceList"));

    // No certificate: the bearer token still works, and nothing at all is 401.
    let plain = client_config(&server_pem, None);
    let answer = exchange(port, plain.clone(), &get("/api/v1/namespaces", Some(TOKEN))).unwrap();
    assert_eq!(status(&answer), Some(200), "{answer}");
    let answer = exchange(port, plain.clone(), &get("/api/v1/namespaces", None)).unwrap();
    assert_eq!(status(&answer), Some(401), "{answer}");

    // A certificate from another CA: no answer (rustls refuses it and ends the handshake with
    // an alert; in TLS 1.3 the client learns it on its first read).
    let stranger = client_pki("mallory", &["system:masters"], false);
    let result = with_cert(&stranger, &get("/api/v1/namespaces", None));
    assert!(
        result.as_ref().map_or(true, |a| status(a).is_none()),
        "unknown CA: {result:?}"
    );
    assert!(
        proxy.wait_for_log("TLS handshake failed", Duration::from_secs(5)),
        "{}",
        proxy.logs()
    );
}

#[test]
fn an_expired_certificate_from_the_trusted_ca_is_refused() {
    // The CA and an expired leaf it signed.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "client CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "alice");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let expired = params.signed_by(&key, &ca, &ca_key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (_enclave, proxy, port, server_pem) = client_cert_stack(dir.path(), true, &ca.pem());
    let result = exchange(
        port,
        client_config(&server_pem, Some((expired.der(), &key))),
        &get("/api/v1/namespaces", None),
    );
    assert!(
        result.as_ref().map_or(true, |a| status(a).is_none()),
        "{result:?}"
    );
    assert!(
        proxy.wait_for_log("TLS handshake failed", Duration::from_secs(5)),
        "{}",
        proxy.logs()
    );
}

#[test]
fn without_trust_the_enclave_ignores_the_certificate_identity() {
    let dir = tempfile::tempdir().unwrap();
    let alice = client_pki("alice", &[], false);
    let (_enclave, _proxy, port, server_pem) = client_cert_stack(dir.path(), false, &alice.ca_pem);
    let answer = exchange(
        port,
        client_config(&server_pem, Some((&alice.cert, &alice.key))),
        &get("/api/v1/namespaces", None),
    )
    .unwrap();
    assert_eq!(status(&answer), Some(401), "{answer}");
}

#[test]
fn a_client_cannot_forge_the_preamble() {
    let dir = tempfile::tempdir().unwrap();
    let alice = client_pki("alice", &[], false);
    let (_enclave, _proxy, port, server_pem) = client_cert_stack(dir.path(), true, &alice.ca_pem);
    // The proxy's own (empty) preamble goes first, so this line reaches hyper as a request line.
    let mut forged = b"NAUTILUS/1 client-cert-cn=admin groups=system%3Amasters\n".to_vec();
    forged.extend_from_slice(&get("/api/v1/namespaces", None));
    let answer = exchange(port, client_config(&server_pem, None), &forged).unwrap_or_default();
    assert_ne!(status(&answer), Some(200), "{answer}");
    assert!(!answer.contains("NamespaceList"), "{answer}");
    // Without a certificate the same request is simply anonymous.
    let answer = exchange(
        port,
        client_config(&server_pem, None),
        &get("/api/v1/namespaces", None),
    )
    .unwrap();
    assert_eq!(status(&answer), Some(401), "{answer}");

    // Straight onto the enclave socket (a local attacker bypassing the proxy): a trusting
    // enclave requires the preamble first, and a second line is HTTP garbage, not an identity.
    let socket = dir.path().join("enclave.sock");
    use std::io::{Read as _, Write as _};
    let mut direct = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    direct
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    direct.write_all(&get("/api/v1/namespaces", None)).unwrap();
    let mut answer = Vec::new();
    let _ = direct.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "no preamble, no answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
}
