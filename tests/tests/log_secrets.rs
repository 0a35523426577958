//! Logs under a representative full run, as the operator receives them: the enclave's lines
//! reach the proxy's output over the log sink (dev wires it as production does, and `serve
//! --enclave-logs` receives it), and no bearer token, Seal token or Secret value appears in any
//! line of either process, at debug level, in text and in JSON.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nautilus_tests::client::{Reply, blocking_request};
use nautilus_tests::simulator::{
    DEFAULT_PACKAGE, HeartbeatMode, SimConfig, Simulator, package_arg,
};
use nautilus_tests::{binary, free_port, signal};

/// A process whose stdout and stderr are collected line by line; SIGTERMed when dropped.
struct Proc {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for stream in streams {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().expect("log lock").push(line);
                }
            }));
        }
        Proc {
            child,
            output,
            readers,
        }
    }

    fn text(&self) -> String {
        self.output.lock().expect("log lock").join("\n")
    }

    fn wait_for(&self, what: &str, limit: Duration, found: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self
                .output
                .lock()
                .expect("log lock")
                .iter()
                .any(|l| found(l))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what} never appeared:\n{}", self.text());
    }

    /// SIGTERM, wait for the exit, and return every line the process printed.
    fn stop(mut self) -> Vec<String> {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.output.lock().expect("log lock"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(300));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A dev cluster started with proxy options of our choosing (the harness passes only enclave
/// options), and what its kubeconfig says.
struct Dev {
    proc: Proc,
    _dir: tempfile::TempDir,
    port: u16,
    token: String,
    ca_pem: Vec<u8>,
}

fn start_dev(log_format: &str) -> Dev {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut cmd = Command::new(binary("nautilus-proxy"));
    cmd.args(["dev", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--log-level", "debug", "--log-format", log_format])
        .arg("--exit-with-parent")
        .arg("--enclave-arg=--log-level=debug")
        .arg(format!("--enclave-arg={}", package_arg(&DEFAULT_PACKAGE)))
        .arg("--enclave-arg=--min-stake=1000000000");
    let proc = Proc::spawn(cmd);
    let kubeconfig = dir.path().join("kubeconfig");
    proc.wait_for("the dev banner", Duration::from_secs(60), |l| {
        l.contains("export KUBECONFIG")
    });
    let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
            .expect("kubeconfig field")
    };
    let token = field("token:");
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(field("certificate-authority-data:"))
        .expect("CA");
    let dev = Dev {
        proc,
        _dir: dir,
        port,
        token,
        ca_pem,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while dev.admin("GET", "/readyz", None).map(|r| r.status) != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            dev.proc.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    dev
}

impl Dev {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut all: Vec<(String, String)> =
            vec![("content-type".to_string(), "application/json".to_string())];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        blocking_request(self.port, &self.ca_pem, method, path, body, &all)
    }

    fn admin(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Reply, String> {
        let bearer = format!("Bearer {}", self.token);
        self.call(method, path, body, &[("authorization", &bearer)])
    }
}

/// Random-looking values no log line could contain by chance.
fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{tag}-{nanos:x}-{}", std::process::id())
}

/// Runs the whole scenario with `--log-format log_format` and asserts no secret leaked.
fn no_secret_in_any_log_line(log_format: &str) {
    let dev = start_dev(log_format);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    // Admin requests, including a write and a failed lookup.
    assert_eq!(
        dev.admin("GET", "/api/v1/namespaces", None).unwrap().status,
        200
    );
    assert_eq!(
        dev.admin("GET", "/api/v1/namespaces/default/pods/absent", None)
            .unwrap()
            .status,
        404
    );

    // Stakers register and heartbeat with Seal tokens: one the seed's way (token in the body),
    // one renewing its Lease with the token as its bearer credential.
    let sim = Simulator::new(
        dev.port,
        &dev.ca_pem,
        &dev.token,
        SimConfig {
            workers: 2,
            interval: Duration::from_millis(300),
            connections: 2,
            ..SimConfig::default()
        },
    )
    .unwrap();
    sim.stake_all().unwrap();
    sim.register_all().unwrap();
    sim.set_mode(1, HeartbeatMode::Lease);
    let mut sim = sim;
    sim.run();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.workers().iter().any(|w| w.ok_heartbeats() < 3) {
        assert!(
            Instant::now() < deadline,
            "heartbeats did not flow:\n{}",
            dev.proc.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seal_tokens: Vec<String> = sim.workers().iter().map(|w| w.token()).collect();

    // A Secret with known data, created, read and listed.
    let plain = marker("plain-secret-value");
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default"},
        "data": {"password": b64(&plain)},
    })
    .to_string();
    let created = dev
        .admin(
            "POST",
            "/api/v1/namespaces/default/secrets",
            Some(body.as_bytes()),
        )
        .unwrap();
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let got = dev
        .admin("GET", "/api/v1/namespaces/default/secrets/creds", None)
        .unwrap();
    assert_eq!(got.json()["data"]["password"], b64(&plain));
    assert_eq!(
        dev.admin("GET", "/api/v1/namespaces/default/secrets", None)
            .unwrap()
            .status,
        200
    );

    // Refused credentials: a wrong bearer token, a forged Seal token, and a Seal token used
    // for another node's object.
    let wrong_bearer = marker("wrong-bearer-token");
    let refused = dev
        .call(
            "GET",
            "/api/v1/namespaces",
            None,
            &[("authorization", &format!("Bearer {wrong_bearer}"))],
        )
        .unwrap();
    assert_eq!(refused.status, 401);
    let first = seal_tokens.first().expect("a worker").clone();
    let mut forged = first.clone();
    let last = forged.pop().expect("non-empty token");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let refused = dev
        .call(
            "GET",
            "/api/v1/nodes",
            None,
            &[("authorization", &format!("Bearer {forged}"))],
        )
        .unwrap();
    assert_eq!(
        refused.status,
        401,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let other_node = sim.workers().get(1).expect("two workers").node.clone();
    let refused = dev
        .call(
            "DELETE",
            &format!("/api/v1/nodes/{other_node}"),
            None,
            &[("authorization", &format!("Bearer {first}"))],
        )
        .unwrap();
    assert!(
        refused.status == 401 || refused.status == 403,
        "{}",
        refused.status
    );

    drop(sim);
    let lines = dev.proc.stop();
    let all = lines.join("\n");

    // The run did log: the enclave's request lines at debug came through the proxy, marked.
    let enclave_mark = if log_format == "json" {
        "\"source\":\"enclave\""
    } else {
        "enclave: "
    };
    let from_enclave: Vec<&String> = lines.iter().filter(|l| l.contains(enclave_mark)).collect();
    assert!(
        from_enclave.iter().any(
            |l| l.contains("/api/v1/namespaces/default/secrets/creds") && l.contains("request")
        ),
        "no enclave request line for the Secret:\n{all}"
    );
    assert!(
        from_enclave.iter().any(|l| l.contains("request refused")),
        "no security event for the refused tokens:\n{all}"
    );
    if log_format == "json" {
        for line in &from_enclave {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("enclave line is not JSON ({e}): {line}"));
            assert_eq!(value["source"], "enclave", "{line}");
        }
    }

    // And nothing secret, anywhere, in either process's output.
    let mut needles: Vec<(String, String)> = vec![
        ("admin token".into(), dev.token.clone()),
        ("secret data".into(), plain.clone()),
        ("secret data, base64".into(), b64(&plain)),
        ("wrong bearer token".into(), wrong_bearer),
        ("forged Seal token".into(), forged),
    ];
    for (i, token) in seal_tokens.iter().enumerate() {
        needles.push((format!("Seal token {i}"), token.clone()));
        // The signature part alone is as good as the token for a replay within its lifetime.
        if let Some(signature) = token.rsplit('.').next().filter(|s| s.len() >= 16) {
            needles.push((format!("Seal token {i} signature"), signature.to_string()));
        }
    }
    for (what, needle) in &needles {
        assert!(!needle.is_empty());
        for line in &lines {
            assert!(
                !line.contains(needle.as_str()),
                "the {what} appears in a log line ({log_format}):\n{line}"
            );
        }
    }
}

#[test]
fn no_secret_in_any_log_line_text() {
    no_secret_in_any_log_line("text");
}

#[test]
fn no_secret_in_any_log_line_json() {
    no_secret_in_any_log_line("json");
}

/// A CA and a server certificate for 127.0.0.1, written as PEM files; returns the CA PEM.
fn write_pki(dir: &Path) -> (Vec<u8>, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca.pem().into_bytes(), cert_path, key_path)
}

/// The production path without `dev`: the enclave started on its own with `--log-sink`, the
/// proxy with `serve --enclave-logs`. The enclave starts first, so its sink also has to retry
/// until the proxy listens.
#[test]
fn serve_prints_the_enclave_logs_it_receives() {
    let dir = tempfile::tempdir().unwrap();
    let enclave_sock = dir.path().join("enclave.sock");
    let log_sock = dir.path().join("logs.sock");
    let token = marker("admin-token");
    let sha = sha256_hex(token.as_bytes());
    let mut enclave = Command::new(binary("nautilus-proxy"));
    enclave
        .arg("__enclave")
        .arg(format!("--listen=unix:{}", enclave_sock.display()))
        .arg(format!("--log-sink=unix:{}", log_sock.display()))
        .arg(format!("--admin-token-sha256={sha}"))
        .args(["--simulated-nsm", "--log-level", "debug"]);
    let enclave = Proc::spawn(enclave);
    let (ca_pem, cert, key) = write_pki(dir.path());
    let port = free_port();
    let mut proxy = Command::new(binary("nautilus-proxy"));
    proxy
        .arg("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--enclave=unix:{}", enclave_sock.display()))
        .arg(format!("--enclave-logs=unix:{}", log_sock.display()))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    let proxy = Proc::spawn(proxy);
    let bearer = format!("Bearer {token}");
    let headers = [("authorization".to_string(), bearer)];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = blocking_request(
            port,
            &ca_pem,
            "GET",
            "/api/v1/namespaces/default/pods/web",
            None,
            &headers,
        );
        if reply.as_ref().map(|r| r.status) == Ok(404) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer through serve: {reply:?}\nproxy:\n{}\nenclave:\n{}",
            proxy.text(),
            enclave.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy.wait_for("the enclave's request line", Duration::from_secs(10), |l| {
        l.starts_with("enclave: ")
            && l.contains("DEBUG")
            && l.contains("path=\"/api/v1/namespaces/default/pods/web\"")
            && l.contains("code=404")
    });
    let enclave_lines = enclave.stop();
    // With a sink the enclave prints nothing of its tracing output itself.
    assert!(
        !enclave_lines
            .iter()
            .any(|l| l.contains("nautilus_enclave::server")),
        "{enclave_lines:?}"
    );
    let proxy_lines = proxy.stop();
    assert!(
        proxy_lines
            .iter()
            .any(|l| l.starts_with("enclave: ") && l.contains("stopped")),
        "the enclave's last lines are flushed before it exits:\n{}",
        proxy_lines.join("\n")
    );
    assert!(!proxy_lines.join("\n").contains(&token));
}

/// SHA-256 (hex) with coreutils' `sha256sum`: the tests crate carries no hash of its own.
fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}
