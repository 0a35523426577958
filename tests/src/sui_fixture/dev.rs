//! `nautilus-proxy dev` started with the Sui relay (`--sui-node`) for the Sui end-to-end tests.

use std::time::{Duration, Instant};

use nautilus_core::token::{SealClaims, hex32, mint_ed25519};
use nautilus_tests::{DevCluster, client, free_port};
use serde_json::json;

/// `nautilus-proxy dev` with the relay to the fixture node(s): a [`DevCluster`] (its data dir,
/// port, CA and logs) with the proxy's metrics listener and the fixture CA's file.
pub struct SuiDev {
    cluster: DevCluster,
    /// The proxy's own metrics listener (loopback).
    pub metrics_port: u16,
    /// Holds the fixture CA file the enclave trusts for the full nodes.
    _ca_dir: tempfile::TempDir,
}

impl std::ops::Deref for SuiDev {
    type Target = DevCluster;

    fn deref(&self) -> &DevCluster {
        &self.cluster
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
        Self::start_with(package, nodes, ca_pem, &[], extra)
    }

    /// [`SuiDev::start`] with `dev` options too (e.g. `--replicas 3`).
    pub fn start_with(
        package: &[u8; 32],
        nodes: &[std::net::SocketAddr],
        ca_pem: &str,
        dev_args: &[&str],
        extra: &[&str],
    ) -> Self {
        let ca_dir = tempfile::tempdir().expect("temp dir");
        let ca_file = ca_dir.path().join("sui-ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA");
        let metrics_port = free_port();
        let mut proxy_args = vec![
            format!("--metrics-listen=127.0.0.1:{metrics_port}"),
            format!("--sui-package={}", hex32(package)),
            "--exit-with-parent".to_string(),
        ];
        proxy_args.extend(dev_args.iter().map(|a| a.to_string()));
        proxy_args.extend(nodes.iter().map(|node| format!("--sui-node={node}")));
        let mut enclave_args = vec![format!("--sui-ca-file={}", ca_file.display())];
        enclave_args.extend(extra.iter().map(|a| a.to_string()));
        let proxy_args: Vec<&str> = proxy_args.iter().map(String::as_str).collect();
        let enclave_args: Vec<&str> = enclave_args.iter().map(String::as_str).collect();
        SuiDev {
            cluster: DevCluster::start_opts(&proxy_args, &enclave_args),
            metrics_port,
            _ca_dir: ca_dir,
        }
    }

    /// The admin token from the kubeconfig (dev accepts it as the relay credential too).
    pub fn admin_token(&self) -> String {
        self.cluster.token.clone()
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
        self.try_seed(endpoint, secret, stake, node)
            .expect("seed request")
    }

    /// [`SuiDev::seed`], a transport failure returned (a connection the proxy had spliced to
    /// a replica that was just killed closes before its answer, as a client sees it).
    fn try_seed(
        &self,
        endpoint: &str,
        secret: &[u8; 32],
        stake: &[u8; 32],
        node: &str,
    ) -> Result<client::Reply, String> {
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

    /// With `--replicas`: the slot whose replica says it leads (its `/readyz?verbose` line
    /// about itself).
    pub fn leading_slot(&self, replicas: usize) -> Option<usize> {
        (0..replicas).find(|&slot| {
            self.replica_line(slot).is_some_and(|line| {
                line.starts_with("[+]replica")
                    && line.split_whitespace().any(|f| f == "role=leader")
            })
        })
    }

    /// With `--replicas`: `GET /api/v1/sui-events?stake=` on replica `slot`'s own socket: the
    /// registry's checkpoint and the stake's amount and trust level there.
    pub fn replica_stake(&self, slot: usize, stake: &[u8; 32]) -> Option<(u64, String, String)> {
        let (status, body) = self
            .replica_request_within(
                slot,
                "GET",
                &format!("/api/v1/sui-events?stake={}", hex32(stake)),
                None,
                Duration::from_secs(5),
            )
            .ok()?;
        if status != 200 {
            return None;
        }
        let view: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some((
            view["checkpoint"].as_u64()?,
            view["stake"]["amount"].as_str()?.to_string(),
            view["stake"]["trust"].as_str()?.to_string(),
        ))
    }

    /// Registers until the answer is `want` (the reader is asynchronous; a connection a killed
    /// replica closed is tried again), or panics.
    pub fn register_until(
        &self,
        secret: &[u8; 32],
        stake: &[u8; 32],
        node: &str,
        want: u16,
    ) -> client::Reply {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A connection closed by a replica being killed is tried again, as a client would.
            let answer = self.try_seed("register-worker", secret, stake, node);
            let last = match answer {
                Ok(reply) if reply.status == want => return reply,
                Ok(reply) => format!(
                    "{} ({})",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ),
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "register stayed {last}:\n{}",
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

/// An enclave and a `serve` proxy started separately, so the proxy (and its relay) can be
/// killed and restarted under a running enclave.
pub struct Split {
    dir: tempfile::TempDir,
    enclave: std::process::Child,
    proxy: Option<std::process::Child>,
    proxy_args: Vec<String>,
}

/// The admin token of [`Split`]'s enclave.
pub const ADMIN: &str = "sui-split-admin-token";

impl Split {
    /// Starts the enclave (reading `node`, trusting `ca_pem`, plus `extra` args) and a proxy.
    pub fn start(
        package: &[u8; 32],
        node: std::net::SocketAddr,
        ca_pem: &str,
        extra: &[&str],
    ) -> Self {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("ca.pem"), ca_pem).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        std::fs::write(path("tls.crt"), cert.cert.pem()).unwrap();
        std::fs::write(path("tls.key"), cert.key_pair.serialize_pem()).unwrap();
        let enclave = std::process::Command::new(nautilus_tests::binary("nautilus-enclave"))
            .args([
                format!("--listen=unix:{}", path("enclave.sock")),
                format!(
                    "--admin-token-sha256={}",
                    hex::encode(sha2::Sha256::digest(ADMIN.as_bytes()))
                ),
                "--simulated-nsm".into(),
                format!("--sui-package={}", hex32(package)),
                format!("--sui-relay=unix:{}", path("relay.sock")),
                format!("--sui-node={}", node),
                format!("--sui-ca-file={}", path("ca.pem")),
                "--log-level=warn".into(),
            ])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let proxy_args = vec![
            "serve".into(),
            format!("--listen=127.0.0.1:{}", nautilus_tests::free_port()),
            format!("--enclave=unix:{}", path("enclave.sock")),
            format!("--tls-cert={}", path("tls.crt")),
            format!("--tls-key={}", path("tls.key")),
            format!("--sui-node={}", node),
            format!("--sui-relay-listen=unix:{}", path("relay.sock")),
            "--log-level=warn".into(),
        ];
        let mut split = Split {
            dir,
            enclave,
            proxy: None,
            proxy_args,
        };
        split.start_proxy();
        split
    }

    /// Starts the proxy (again).
    pub fn start_proxy(&mut self) {
        let child = std::process::Command::new(nautilus_tests::binary("nautilus-proxy"))
            .args(&self.proxy_args)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.proxy = Some(child);
    }

    /// Kills the proxy and its relay.
    pub fn kill_proxy(&mut self) {
        if let Some(mut proxy) = self.proxy.take() {
            let _ = proxy.kill();
            let _ = proxy.wait();
        }
    }

    /// `GET /api/v1/sui-events?stake=` straight over the enclave's socket (plain HTTP).
    pub fn position(&self, stake: &[u8; 32]) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let mut s =
            std::os::unix::net::UnixStream::connect(self.dir.path().join("enclave.sock")).ok()?;
        write!(
            s,
            "GET /api/v1/sui-events?stake={} HTTP/1.1\r\nHost: e\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n",
            hex32(stake)
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        self.kill_proxy();
        let _ = self.enclave.kill();
        let _ = self.enclave.wait();
    }
}
