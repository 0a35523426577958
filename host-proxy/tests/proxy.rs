//! Drives the real `nautilus-proxy serve` binary over real sockets: a fake enclave (a tiny
//! HTTP/1.1 server on a Unix socket) behind it and TLS clients in front of it.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const READYZ_FALLBACK: &str = "[-]enclave failed: enclave unreachable\nreadyz check failed";
const STATUS_FALLBACK: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the enclave is unreachable; retry shortly","reason":"ServiceUnavailable","code":503}"#;

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "np-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA and a server certificate for localhost/127.0.0.1 written as PEM files.
struct TestPki {
    ca: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    TestPki {
        ca: ca.der().clone(),
        cert: cert_path,
        key: key_path,
    }
}

/// The proxy process; its stderr lines are collected for assertions.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(pki: &TestPki, enclave: &Path, extra: &[&str]) -> Proxy {
        let (child, logs) = spawn_proxy(pki, enclave, "127.0.0.1:0", extra);
        let mut proxy = Proxy {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            logs,
        };
        let line = proxy
            .wait_log(|l| l.contains(" listening ") || l.contains("listening addr="))
            .expect("proxy did not report its address");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .unwrap();
        proxy.addr = addr.parse().unwrap();
        proxy
    }

    /// Waits up to 4 s for a log line matching `pred`.
    fn wait_log(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count_logs(&self, needle: &str) -> usize {
        let logs = self.logs.lock().unwrap();
        logs.iter().filter(|l| l.contains(needle)).count()
    }

    fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_proxy(
    pki: &TestPki,
    enclave: &Path,
    listen: &str,
    extra: &[&str],
) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nautilus-proxy"))
        .arg("serve")
        .args(["--listen", listen])
        .arg("--enclave")
        .arg(format!("unix:{}", enclave.display()))
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .args(["--log-level", "nautilus_proxy=debug"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[proxy] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    (child, logs)
}

/// A tiny HTTP/1.1 server on a Unix socket standing in for the enclave. It records each raw
/// request and answers `/readyz` with `enclave ready`, `/echo` with the request body, and
/// anything else with `enclave saw <path>`.
struct FakeEnclave {
    accept: tokio::task::JoinHandle<()>,
    requests: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl FakeEnclave {
    fn start(path: &Path) -> FakeEnclave {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let (tx, requests) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            // Owning the handlers here means aborting `accept` also drops every connection.
            let mut conns = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                conns.spawn(fake_enclave_conn(stream, tx.clone()));
            }
        });
        FakeEnclave { accept, requests }
    }

    fn stop(self, path: &Path) {
        self.accept.abort();
        let _ = std::fs::remove_file(path);
    }
}

async fn fake_enclave_conn(mut stream: tokio::net::UnixStream, tx: mpsc::UnboundedSender<Vec<u8>>) {
    // The proxy's connection preamble comes first, before any client byte (no client
    // certificate here, so the identity is empty).
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        line.push(byte[0]);
        assert!(line.len() <= 4096, "preamble too long");
    }
    assert_eq!(line, b"NAUTILUS/1 client-cert-cn= groups=\n");
    loop {
        let Some((head, body)) = read_message(&mut stream).await else {
            return;
        };
        let head_text = String::from_utf8_lossy(&head).to_string();
        let path = head_text
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut raw = head;
        raw.extend_from_slice(&body);
        let _ = tx.send(raw);
        let answer = match path.as_str() {
            "/readyz" => b"enclave ready".to_vec(),
            "/echo" => body,
            other => format!("enclave saw {other}").into_bytes(),
        };
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-fake: enclave\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        response.extend_from_slice(&answer);
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 message (head including the blank line, then a content-length body).
async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
        assert!(head.len() < 64 * 1024, "head too large");
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

fn client_config(ca: &CertificateDer<'static>, tls12_only: bool) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let version: &'static rustls::SupportedProtocolVersion = if tls12_only {
        &rustls::version::TLS12
    } else {
        &rustls::version::TLS13
    };
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    // Like client-go: offer h2 first; the proxy must pick http/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// One GET on a fresh TLS connection: (status code, head, body).
async fn get(proxy: &Proxy, ca: &CertificateDer<'static>, path: &str) -> (u16, String, String) {
    let mut tls = tls_connect(proxy.addr, client_config(ca, false))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = read_message(&mut tls).await.expect("no response");
    let head = String::from_utf8(head).unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head, String::from_utf8(body).unwrap())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads until EOF or error; returns how long it took.
async fn time_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("connection was not closed within 5 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_client_bytes_pass_unchanged_both_ways() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let mut enclave = FakeEnclave::start(&socket);
    let proxy = Proxy::start(&pki, &socket, &[]);

    let mut tls = tls_connect(proxy.addr, client_config(&pki.ca, false))
        .await
        .unwrap();
    let (_, conn) = tls.get_ref();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));

    // Every byte value, an Authorization header: the proxy must neither alter nor log them.
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer s3cret-token\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    tls.write_all(&request).await.unwrap();

    let (head, answer) = read_message(&mut tls).await.unwrap();
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-fake: enclave\r\n\r\n",
            body.len()
        )
        .into_bytes()
    );
    assert_eq!(answer, body);
    assert_eq!(enclave.requests.recv().await.unwrap(), request);

    // Keep-alive: a second request on the same connection reaches the same enclave stream.
    tls.write_all(b"GET /readyz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (_, answer) = read_message(&mut tls).await.unwrap();
    assert_eq!(answer, b"enclave ready");
    drop(tls);

    proxy.wait_log(|l| l.contains("connection closed")).unwrap();
    let logs = proxy.log_text();
    assert!(!logs.contains("s3cret-token"), "token leaked into logs");
    assert!(!logs.contains("/echo"), "request path leaked into logs");
    enclave.stop(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_only_client_is_refused() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let enclave = FakeEnclave::start(&socket);
    let proxy = Proxy::start(&pki, &socket, &[]);

    let result = tls_connect(proxy.addr, client_config(&pki.ca, true)).await;
    assert!(result.is_err(), "TLS 1.2 handshake must fail");
    assert!(
        proxy
            .wait_log(|l| l.contains("INFO") && l.contains("TLS handshake failed"))
            .is_some()
    );
    enclave.stop(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_while_enclave_is_down_then_reconnects() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let proxy = Proxy::start(&pki, &socket, &[]);

    let (code, _, body) = get(&proxy, &pki.ca, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (code, _, body) = get(&proxy, &pki.ca, "/livez").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (code, head, body) = get(&proxy, &pki.ca, "/readyz").await;
    assert_eq!((code, body.as_str()), (503, READYZ_FALLBACK));
    assert!(
        header(&head, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let (code, head, body) = get(&proxy, &pki.ca, "/api/v1/namespaces/default/pods").await;
    assert_eq!((code, body.as_str()), (503, STATUS_FALLBACK));
    assert_eq!(header(&head, "retry-after"), Some("1"));
    assert_eq!(header(&head, "content-type"), Some("application/json"));

    // The enclave comes back: the next connection reaches it (the proxy does not intercept).
    let enclave = FakeEnclave::start(&socket);
    let (code, head, body) = get(&proxy, &pki.ca, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "enclave ready"));
    assert_eq!(header(&head, "x-fake"), Some("enclave"));
    let (_, _, body) = get(&proxy, &pki.ca, "/healthz").await;
    assert_eq!(body, "enclave saw /healthz");

    // Down again, then up again.
    enclave.stop(&socket);
    let (code, _, body) = get(&proxy, &pki.ca, "/readyz").await;
    assert_eq!((code, body.as_str()), (503, READYZ_FALLBACK));
    let enclave = FakeEnclave::start(&socket);
    let (code, _, body) = get(&proxy, &pki.ca, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "enclave ready"));
    enclave.stop(&socket);
    assert!(proxy.count_logs("enclave unreachable") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_handshake_is_closed_after_timeout() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let enclave = FakeEnclave::start(&socket);
    let proxy = Proxy::start(&pki, &socket, &["--handshake-timeout-secs", "1"]);

    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    let mut partial = TcpStream::connect(proxy.addr).await.unwrap();
    // The first bytes of a TLS record header, then nothing.
    partial.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let (a, b) = tokio::join!(
        time_until_closed(&mut silent),
        time_until_closed(&mut partial)
    );
    for took in [a, b] {
        assert!(
            took >= Duration::from_millis(800),
            "closed too early: {took:?}"
        );
        assert!(
            took < Duration::from_millis(2500),
            "closed too late: {took:?}"
        );
    }
    assert!(
        proxy
            .wait_log(|l| l.contains("TLS handshake timed out"))
            .is_some()
    );
    enclave.stop(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let enclave = FakeEnclave::start(&socket);
    let proxy = Proxy::start(&pki, &socket, &["--idle-timeout-secs", "1"]);

    let mut tls = tls_connect(proxy.addr, client_config(&pki.ca, false))
        .await
        .unwrap();
    let took = time_until_closed(&mut tls).await;
    assert!(
        took < Duration::from_millis(2500),
        "closed too late: {took:?}"
    );
    assert!(
        proxy
            .wait_log(|l| l.contains("connection closed") && l.contains("idle timeout"))
            .is_some()
    );
    enclave.stop(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_proxy_on_same_port_exits_2() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let first = Proxy::start(&pki, &socket, &[]);
    let listen = first.addr.to_string();

    let (mut second, logs) = spawn_proxy(&pki, &socket, &listen, &[]);
    let status = tokio::task::spawn_blocking(move || second.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    // Give the reader thread a moment to drain stderr.
    std::thread::sleep(Duration::from_millis(100));
    let text = logs.lock().unwrap().join("\n");
    assert_eq!(
        text,
        format!(
            "error: cannot listen on {listen}: address already in use (is another nautilus-proxy running?)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_and_abandoned_connections_do_not_accumulate() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let enclave = FakeEnclave::start(&socket);
    let proxy = Proxy::start(&pki, &socket, &[]);
    let config = client_config(&pki.ca, false);

    const EACH: usize = 10;
    let mut tasks = JoinSet::new();
    for i in 0..EACH * 4 {
        let config = Arc::clone(&config);
        let addr = proxy.addr;
        tasks.spawn(async move {
            match i % 4 {
                // TCP connect, then gone before the handshake.
                0 => drop(TcpStream::connect(addr).await.unwrap()),
                // Half-close: partial request, then close_notify + FIN, waiting for the end.
                1 => {
                    let mut tls = tls_connect(addr, config).await.unwrap();
                    tls.write_all(b"GET /partial HTT").await.unwrap();
                    tls.shutdown().await.unwrap();
                    time_until_closed(&mut tls).await;
                }
                // Full request, then gone without reading the answer.
                2 => {
                    let mut tls = tls_connect(addr, config).await.unwrap();
                    tls.write_all(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
                        .await
                        .unwrap();
                    drop(tls);
                }
                // Complete request/response, then a half-close by the client.
                _ => {
                    let mut tls = tls_connect(addr, config).await.unwrap();
                    tls.write_all(b"GET /y HTTP/1.1\r\nhost: a\r\n\r\n")
                        .await
                        .unwrap();
                    read_message(&mut tls).await.unwrap();
                    tls.shutdown().await.unwrap();
                    time_until_closed(&mut tls).await;
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let total = EACH * 4;
    let deadline = Instant::now() + Duration::from_secs(4);
    while proxy.count_logs("connection closed") < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} connections closed",
            proxy.count_logs("connection closed")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // With every earlier connection gone, one more connection is the only one open.
    let (code, _, _) = get(&proxy, &pki.ca, "/last").await;
    assert_eq!(code, 200);
    let deadline = Instant::now() + Duration::from_secs(4);
    while proxy.count_logs("connection closed") < total + 1 {
        assert!(Instant::now() < deadline, "last connection not closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = proxy.logs.lock().unwrap();
    let last_close = logs
        .iter()
        .rev()
        .find(|l| l.contains("connection closed"))
        .unwrap();
    assert!(last_close.contains("active=0"), "{last_close}");
    drop(logs);
    enclave.stop(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_holds_then_closes_excess_connections() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let enclave = FakeEnclave::start(&socket);
    let proxy = Proxy::start(&pki, &socket, &["--max-connections", "2"]);
    let config = client_config(&pki.ca, false);

    let _a = tls_connect(proxy.addr, Arc::clone(&config)).await.unwrap();
    let _b = tls_connect(proxy.addr, Arc::clone(&config)).await.unwrap();
    // The third is held unread (a flood must not be able to reconnect at once), then closed.
    let third = tokio::spawn(tls_connect(proxy.addr, Arc::clone(&config)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!third.is_finished(), "third connection answered within 2 s");
    let third = tokio::time::timeout(Duration::from_secs(15), third)
        .await
        .expect("third connection still held after 15 s")
        .unwrap();
    assert!(third.is_err(), "third connection must be refused");
    assert!(
        proxy
            .wait_log(|l| l.contains("WARN") && l.contains("connection limit reached"))
            .is_some()
    );
    enclave.stop(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_0() {
    let dir = TempDir::new();
    let pki = make_pki(&dir.0);
    let socket = dir.0.join("e.sock");
    let enclave = FakeEnclave::start(&socket);
    let mut proxy = Proxy::start(&pki, &socket, &["--shutdown-grace-secs", "1"]);

    // An open, quiet connection holds shutdown up to the grace period, not longer.
    let mut tls = tls_connect(proxy.addr, client_config(&pki.ca, false))
        .await
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(proxy.child.id()).unwrap());
    let started = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    time_until_closed(&mut tls).await;
    let status = loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "proxy did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Not accepting any more.
    assert!(TcpStream::connect(proxy.addr).await.is_err());
    enclave.stop(&socket);
}
