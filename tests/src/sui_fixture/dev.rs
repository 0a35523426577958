//! `nautilus-proxy dev` started with the Sui relay (`--sui-node`) for the Sui end-to-end tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nautilus_core::token::{SealClaims, hex32, mint_ed25519};
use nautilus_tests::{binary, client, free_port};
use serde_json::json;

/// `nautilus-proxy dev` with the relay to the fixture node(s).
pub struct SuiDev {
    child: Child,
    /// The data directory.
    pub dir: tempfile::TempDir,
    /// The proxy's API port.
    pub port: u16,
    /// The dev CA (PEM).
    pub ca_pem: Vec<u8>,
    /// The proxy's own metrics listener (loopback).
    pub metrics_port: u16,
    output: Arc<Mutex<Vec<String>>>,
}

impl Drop for SuiDev {
    fn drop(&mut self) {
        nautilus_tests::signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }
}

impl SuiDev {
    /// Starts dev with the relay to `nodes`, trusting `ca_pem` for them, and `extra` enclave args.
    pub fn start(
        package: &[u8; 32],
        nodes: &[std::net::SocketAddr],
        ca_pem: &str,
        extra: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("sui-ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA");
        let port = free_port();
        let metrics_port = free_port();
        let mut cmd = Command::new(binary("nautilus-proxy"));
        cmd.arg("dev")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--metrics-listen=127.0.0.1:{metrics_port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg(format!("--sui-package={}", hex32(package)))
            .arg("--exit-with-parent")
            .arg(format!("--enclave-arg=--sui-ca-file={}", ca_file.display()));
        for node in nodes {
            cmd.arg(format!("--sui-node={node}"));
        }
        for arg in extra {
            cmd.arg(format!("--enclave-arg={arg}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start dev");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().expect("log lock").push(line);
                }
            });
        }
        let kubeconfig = dir.path().join("kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(kubeconfig.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            assert!(
                Instant::now() < deadline,
                "dev did not start:\n{}",
                output.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        let ca = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
            .expect("CA in kubeconfig")
            .trim()
            .trim_matches('"');
        use base64::Engine as _;
        let ca_pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .expect("base64");
        SuiDev {
            child,
            dir,
            port,
            ca_pem,
            metrics_port,
            output,
        }
    }

    /// The admin token from the kubeconfig (dev accepts it as the relay credential too).
    pub fn admin_token(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("kubeconfig")).expect("kubeconfig");
        text.lines()
            .find_map(|l| l.trim().strip_prefix("token:"))
            .expect("token in kubeconfig")
            .trim()
            .trim_matches('"')
            .to_string()
    }

    /// The last checkpoint the enclave applied (`GET /api/v1/sui-events`).
    pub fn checkpoint(&self, token: &str) -> Option<u64> {
        let reply = client::blocking_request(
            self.port,
            &self.ca_pem,
            "GET",
            "/api/v1/sui-events",
            None,
            &[("authorization".into(), format!("Bearer {token}"))],
        )
        .ok()?;
        reply.json().get("checkpoint")?.as_u64()
    }

    /// The proxy's own metrics (plain HTTP on its loopback metrics listener).
    pub fn proxy_metrics(&self) -> String {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .expect("connect to the proxy's metrics listener");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("send the scrape");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the scrape");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }

    /// Everything printed so far.
    pub fn logs(&self) -> String {
        self.output.lock().expect("log lock").join("\n")
    }

    /// One `register-worker` for `node` with a fresh token of (`secret`, `stake`).
    pub fn register(&self, secret: &[u8; 32], stake: &[u8; 32], node: &str) -> client::Reply {
        self.seed("register-worker", secret, stake, node)
    }

    /// One seed call (`register-worker` or `heartbeat`) with a fresh token.
    pub fn seed(
        &self,
        endpoint: &str,
        secret: &[u8; 32],
        stake: &[u8; 32],
        node: &str,
    ) -> client::Reply {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = mint_ed25519(
            secret,
            &SealClaims {
                node_id: node.into(),
                stake_id: *stake,
                iat: now,
                exp: now + 3600,
            },
        );
        let body = json!({"node_id": node, "seal_token": token, "timestamp": now}).to_string();
        client::blocking_request(
            self.port,
            &self.ca_pem,
            "POST",
            &format!("/api/v1/{endpoint}"),
            Some(body.as_bytes()),
            &[
                ("content-type".into(), "application/json".into()),
                ("x-seal-token".into(), token.clone()),
            ],
        )
        .expect("seed request")
    }

    /// `GET /readyz?verbose` (anonymous): status and text.
    pub fn readyz(&self) -> (u16, String) {
        let reply =
            client::blocking_request(self.port, &self.ca_pem, "GET", "/readyz?verbose", None, &[])
                .expect("readyz");
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    }

    /// Registers until the answer is `want` (the reader is asynchronous), or panics.
    pub fn register_until(
        &self,
        secret: &[u8; 32],
        stake: &[u8; 32],
        node: &str,
        want: u16,
    ) -> client::Reply {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.register(secret, stake, node);
            if reply.status == want {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "register stayed {} ({}):\n{}",
                reply.status,
                String::from_utf8_lossy(&reply.body),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A small multi-thread runtime for fixture nodes.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
