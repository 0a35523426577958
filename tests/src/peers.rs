//! The real Kubernetes peers (etcd, kube-apiserver, kube-scheduler, kube-controller-manager),
//! built from the Go modules pinned in `tests/peers/` by `tests/peers/build.sh`, started on
//! loopback for the side-by-side benchmarks and the conformance harness. Each process is stopped
//! when its handle drops.
//!
//! The binaries are looked up in `target/peers/` (or `$NAUTILUS_PEERS_DIR`); a missing one is a
//! [`PeerError::Missing`] that names the build script. [`build`] runs the script.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::capture::{Proc, kubeconfig};
use crate::{Kubectl, client, free_port, workspace_dir};

/// How long a peer may take to become ready (kube-apiserver runs its post-start hooks, RBAC
/// bootstrap among them, before `/readyz` answers 200; a loaded 2-core machine is slow).
const READY_LIMIT: Duration = Duration::from_secs(120);

/// Why a peer could not be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerError {
    /// The binary is not built.
    Missing {
        /// Peer name (`kube-apiserver`, `etcd`, ...).
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `tests/peers/build.sh` failed.
    Build(String),
    /// The process could not be started or never became ready.
    Start {
        /// Peer name.
        name: &'static str,
        /// What went wrong, with the process's output when there is some.
        detail: String,
    },
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { name, path } => write!(
                f,
                "peer binary {name} is not built (looked for {}): run `tests/peers/build.sh \
                 {name}` (Go and the Go module proxy needed; NAUTILUS_PEERS_DIR chooses \
                 another folder)",
                path.display()
            ),
            Self::Build(detail) => write!(f, "tests/peers/build.sh failed: {detail}"),
            Self::Start { name, detail } => write!(f, "{name} did not start: {detail}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// The folder holding the peer binaries: `$NAUTILUS_PEERS_DIR`, else `target/peers/` at the
/// workspace root (where `tests/peers/build.sh` puts them).
pub fn peers_dir() -> PathBuf {
    std::env::var_os("NAUTILUS_PEERS_DIR").map_or_else(
        || workspace_dir().join("target").join("peers"),
        PathBuf::from,
    )
}

/// Path of peer binary `name`, or [`PeerError::Missing`] naming the build script.
pub fn binary(name: &str) -> Result<PathBuf, PeerError> {
    let path = peers_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(PeerError::Missing {
            name: name.to_string(),
            path,
        })
    }
}

/// Runs `tests/peers/build.sh names...`: builds what is missing or stale, skips the rest. Its
/// progress (and the time each build took) goes to this process's stdout and stderr.
pub fn build(names: &[&str]) -> Result<(), PeerError> {
    let script = workspace_dir().join("tests").join("peers").join("build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .args(names)
        .status()
        .map_err(|e| PeerError::Build(format!("run {}: {e}", script.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(PeerError::Build(format!(
            "`{} {}` exited with {status}",
            script.display(),
            names.join(" ")
        )))
    }
}

/// Peer `name` for a test that needs it: built by [`build`] when Go is on the PATH (the build
/// skips an up-to-date binary and fails loudly), or the binary already there when Go is
/// missing; `None` when neither, and the caller skips, saying why.
pub fn built(name: &str) -> Result<Option<PathBuf>, PeerError> {
    let go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|out| out.status.success());
    if go {
        build(&[name])?;
        return binary(name).map(Some);
    }
    match binary(name) {
        Ok(path) => Ok(Some(path)),
        Err(PeerError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A tmpfs folder (`/dev/shm`) for an etcd that keeps everything in memory, removed on drop.
pub fn tmpfs_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("nautilus-peer-")
        .tempdir_in("/dev/shm")
}

/// One etcd member serving plain HTTP on a free loopback port.
pub struct Etcd {
    proc: Proc,
    /// The client URL (`http://127.0.0.1:PORT`), for `--etcd-servers`.
    pub url: String,
}

impl Etcd {
    /// Starts etcd with its data in `data_dir` (a tmpfs folder from [`tmpfs_dir`] for in-memory
    /// comparisons, a folder on the real disk for durable ones) and waits until `/health`
    /// answers healthy.
    pub fn start(data_dir: &Path) -> Result<Self, PeerError> {
        let program = binary("etcd")?;
        // `free_port` only finds ports free a moment ago: another test starting a peer at the
        // same time may take one first (etcd then exits at once, before writing any data), so
        // a bind refusal is retried with fresh ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = format!("http://127.0.0.1:{}", free_port());
            let peer = format!("http://127.0.0.1:{}", free_port());
            let data = data_dir.display().to_string();
            let cluster = format!("peer={peer}");
            let mut proc = Proc::spawn(
                &program,
                &[
                    "--name=peer",
                    &format!("--data-dir={data}"),
                    &format!("--listen-client-urls={client}"),
                    &format!("--advertise-client-urls={client}"),
                    &format!("--listen-peer-urls={peer}"),
                    &format!("--initial-advertise-peer-urls={peer}"),
                    &format!("--initial-cluster={cluster}"),
                    "--log-level=warn",
                ],
            );
            let port = port_of(&client);
            match wait_ready(&mut proc, "etcd", || {
                plain_get(port, "/health").is_some_and(|body| body.contains(r#""health":"true""#))
            }) {
                Ok(()) => return Ok(Self { proc, url: client }),
                Err(_) if attempt < 3 && proc.logs().contains("address already in use") => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Everything etcd printed so far.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The process id (for RSS and CPU figures).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// An etcd cluster of several members on loopback (plain HTTP), each with its own data folder
/// under the folder given to [`EtcdCluster::start`]: the replicated peer that Nautilus's enclave
/// replicas are measured against.
pub struct EtcdCluster {
    members: Vec<Proc>,
    /// Each member's client URL (`http://127.0.0.1:PORT`), in member order.
    pub urls: Vec<String>,
}

impl EtcdCluster {
    /// Starts `members` etcd members forming one cluster, their data in folders under
    /// `data_root` (on the real disk for durable comparisons), and waits until every member's
    /// `/health` answers healthy (which needs a leader).
    pub fn start(data_root: &Path, members: usize) -> Result<Self, PeerError> {
        let program = binary("etcd")?;
        // As in `Etcd::start`: a port taken between `free_port` and etcd's bind is retried
        // with fresh ports, in a fresh folder (a member's folder remembers its cluster).
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client: Vec<String> = (0..members)
                .map(|_| format!("http://127.0.0.1:{}", free_port()))
                .collect();
            let peer: Vec<String> = (0..members)
                .map(|_| format!("http://127.0.0.1:{}", free_port()))
                .collect();
            let cluster = peer
                .iter()
                .enumerate()
                .map(|(i, url)| format!("member-{i}={url}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut procs: Vec<Proc> = (0..members)
                .map(|i| {
                    let data = data_root.join(format!("attempt-{attempt}-member-{i}"));
                    Proc::spawn(
                        &program,
                        &[
                            &format!("--name=member-{i}"),
                            &format!("--data-dir={}", data.display()),
                            &format!("--listen-client-urls={}", client[i]),
                            &format!("--advertise-client-urls={}", client[i]),
                            &format!("--listen-peer-urls={}", peer[i]),
                            &format!("--initial-advertise-peer-urls={}", peer[i]),
                            &format!("--initial-cluster={cluster}"),
                            "--initial-cluster-state=new",
                            "--initial-cluster-token=nautilus-bench",
                            "--log-level=warn",
                        ],
                    )
                })
                .collect();
            let mut result = Ok(());
            for (proc, url) in procs.iter_mut().zip(&client) {
                let port = port_of(url);
                result = wait_ready(proc, "etcd", || {
                    plain_get(port, "/health")
                        .is_some_and(|body| body.contains(r#""health":"true""#))
                });
                if result.is_err() {
                    break;
                }
            }
            match result {
                Ok(()) => {
                    return Ok(Self {
                        members: procs,
                        urls: client,
                    });
                }
                Err(_)
                    if attempt < 3
                        && procs
                            .iter()
                            .any(|p| p.logs().contains("address already in use")) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The client URL of the member that leads now, from each member's
    /// `/v3/maintenance/status` (its own id and the leader's id); `None` while there is none.
    pub fn leader_url(&self) -> Option<String> {
        self.urls.iter().find_map(|url| {
            let body = plain_post(port_of(url), "/v3/maintenance/status", "{}")?;
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            let own = status.pointer("/header/member_id")?;
            (status.get("leader")? == own).then(|| url.clone())
        })
    }

    /// Everything the members printed so far, each line after its member's name.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.logs()
                    .lines()
                    .map(|l| format!("member-{i}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The members' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(Proc::pid).collect()
    }
}

/// One kube-apiserver on loopback over an [`Etcd`], set up like a small real cluster: its own
/// TLS serving certificate, a static token file giving the admin token to a user in
/// `system:masters`, `Node,RBAC` authorization, the default admission plugins, the watch cache
/// on, generated service-account signing keys, services from `10.43.0.0/16` (k3s's range).
///
/// Alone (without a [`KubeControllerManager`]) nothing creates a namespace's `default`
/// ServiceAccount (the ServiceAccount admission plugin refuses pods until one exists) or lifts
/// the `node.kubernetes.io/not-ready` taint that admission puts on every new Node.
pub struct KubeApiServer {
    proc: Proc,
    /// Certificates, keys, the token file and the kubeconfig; removed on drop.
    dir: tempfile::TempDir,
    /// Its HTTPS port on 127.0.0.1.
    pub port: u16,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that signed its serving certificate (PEM).
    pub ca_pem: Vec<u8>,
    /// The admin bearer token.
    pub token: String,
    /// A kubeconfig for the admin (CA data and token).
    pub kubeconfig: PathBuf,
    /// The real kubectl with that kubeconfig and a private cache dir.
    pub kubectl: Kubectl,
}

impl KubeApiServer {
    /// Starts kube-apiserver storing in `etcd`, with `admin_token` for a `system:masters`
    /// user, and waits until `/readyz` answers 200.
    pub fn start(etcd: &Etcd, admin_token: &str) -> Result<Self, PeerError> {
        let start_err = |detail: String| PeerError::Start {
            name: "kube-apiserver",
            detail,
        };
        // The token file is CSV: a token with a comma, quote or line break would split it.
        if admin_token.is_empty()
            || admin_token
                .chars()
                .any(|c| c == ',' || c == '"' || c.is_whitespace())
        {
            return Err(start_err(
                "the admin token must be non-empty, without commas, quotes or spaces".into(),
            ));
        }
        let program = binary("kube-apiserver")?;
        let dir = tempfile::tempdir().map_err(|e| start_err(format!("temp dir: {e}")))?;
        let pki = ServingPki::generate().map_err(|e| start_err(format!("certificates: {e}")))?;
        let sa_key = KeyPair::generate().map_err(|e| start_err(format!("SA key: {e}")))?;
        let path = |name: &str| dir.path().join(name);
        let write = |name: &str, contents: &[u8]| {
            std::fs::write(path(name), contents)
                .map_err(|e| start_err(format!("write {name}: {e}")))
        };
        write("ca.crt", pki.ca_pem.as_bytes())?;
        write("serving.crt", pki.chain_pem.as_bytes())?;
        write("serving.key", pki.key_pem.as_bytes())?;
        write(
            "tokens.csv",
            format!("{admin_token},admin,admin,\"system:masters\"\n").as_bytes(),
        )?;
        write("sa.key", sa_key.serialize_pem().as_bytes())?;
        write("sa.pub", sa_key.public_key_pem().as_bytes())?;
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        write(
            "kubeconfig",
            kubeconfig(&url, pki.ca_pem.as_bytes(), admin_token).as_bytes(),
        )?;
        let arg = |flag: &str, name: &str| format!("--{flag}={}", path(name).display());
        let mut proc = Proc::spawn(
            &program,
            &[
                &format!("--etcd-servers={}", etcd.url),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                &format!("--secure-port={port}"),
                &format!("--cert-dir={}", dir.path().display()),
                &arg("tls-cert-file", "serving.crt"),
                &arg("tls-private-key-file", "serving.key"),
                &arg("token-auth-file", "tokens.csv"),
                "--authorization-mode=Node,RBAC",
                "--service-cluster-ip-range=10.43.0.0/16",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                &arg("service-account-key-file", "sa.pub"),
                &arg("service-account-signing-key-file", "sa.key"),
                "--watch-cache=true",
            ],
        );
        let ca_pem = pki.ca_pem.into_bytes();
        let auth = vec![("authorization".to_string(), format!("Bearer {admin_token}"))];
        wait_ready(&mut proc, "kube-apiserver", || {
            client::blocking_request(port, &ca_pem, "GET", "/readyz", None, &auth)
                .is_ok_and(|r| r.status == 200)
        })?;
        let kubeconfig = path("kubeconfig");
        Ok(Self {
            proc,
            port,
            url,
            ca_pem,
            token: admin_token.to_string(),
            kubectl: Kubectl::new(&kubeconfig),
            kubeconfig,
            dir,
        })
    }

    /// One HTTPS request with the admin token (the same client the tests use for dev mode).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<client::Reply, String> {
        let mut all: Vec<(String, String)> =
            vec![("authorization".into(), format!("Bearer {}", self.token))];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        client::blocking_request(self.port, &self.ca_pem, method, path, body, &all)
    }

    /// The folder with its certificates, keys and kubeconfig.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything kube-apiserver printed so far.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The process id (for RSS and CPU figures).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// One kube-controller-manager (every default controller, no leader election) beside a
/// [`KubeApiServer`]: what makes a bare API server a cluster (namespaces' default
/// ServiceAccounts and `kube-root-ca.crt`, ReplicaSets, Deployments, garbage collection, node
/// lifecycle, ...). The conformance harness's reference cluster runs it.
pub struct KubeControllerManager {
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl KubeControllerManager {
    /// Starts kube-controller-manager as the admin of `api` (its CA published in every
    /// namespace, its service-account key for legacy token secrets) and waits until its
    /// `/healthz` answers 200.
    pub fn start(api: &KubeApiServer) -> Result<Self, PeerError> {
        let program = binary("kube-controller-manager")?;
        let dir = tempfile::tempdir().map_err(|e| PeerError::Start {
            name: "kube-controller-manager",
            detail: format!("temp dir: {e}"),
        })?;
        let port = free_port();
        let kubeconfig = api.kubeconfig.display().to_string();
        let in_api = |name: &str| api.dir().join(name).display().to_string();
        let mut proc = Proc::spawn(
            &program,
            &[
                &format!("--kubeconfig={kubeconfig}"),
                &format!("--authentication-kubeconfig={kubeconfig}"),
                &format!("--authorization-kubeconfig={kubeconfig}"),
                "--bind-address=127.0.0.1",
                &format!("--secure-port={port}"),
                &format!("--cert-dir={}", dir.path().display()),
                "--leader-elect=false",
                &format!("--root-ca-file={}", in_api("ca.crt")),
                &format!("--service-account-private-key-file={}", in_api("sa.key")),
            ],
        );
        let cert = dir.path().join("kube-controller-manager.crt");
        wait_ready(&mut proc, "kube-controller-manager", || {
            self_signed_ready(port, &cert, "/healthz")
        })?;
        Ok(Self { proc, _dir: dir })
    }

    /// Everything kube-controller-manager printed so far.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The process id (for CPU figures).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// One kube-scheduler (default profile, no leader election) driving the API server that
/// `kubeconfig` names.
pub struct KubeScheduler {
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl KubeScheduler {
    /// Starts kube-scheduler with `kubeconfig` (for its API calls and for delegated
    /// authentication of its own endpoints) and waits until its `/readyz` answers 200, which
    /// is after its informers have synced.
    pub fn start(kubeconfig: &Path) -> Result<Self, PeerError> {
        Self::start_with(kubeconfig, &[])
    }

    /// [`Self::start`] with more command-line flags (a benchmark raises `--kube-api-qps`).
    pub fn start_with(kubeconfig: &Path, extra: &[&str]) -> Result<Self, PeerError> {
        let start_err = |detail: String| PeerError::Start {
            name: "kube-scheduler",
            detail,
        };
        let program = binary("kube-scheduler")?;
        let dir = tempfile::tempdir().map_err(|e| start_err(format!("temp dir: {e}")))?;
        let port = free_port();
        let kubeconfig = kubeconfig.display().to_string();
        let mut args = vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.path().display()),
            "--leader-elect=false".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut proc = Proc::spawn(&program, &args);
        let cert = dir.path().join("kube-scheduler.crt");
        wait_ready(&mut proc, "kube-scheduler", || {
            self_signed_ready(port, &cert, "/readyz")
        })?;
        Ok(Self { proc, _dir: dir })
    }

    /// Everything kube-scheduler printed so far.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The process id (for CPU figures).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// Polls `ready` until it holds, or fails with the process's output when it exits or
/// [`READY_LIMIT`] passes.
fn wait_ready(
    proc: &mut Proc,
    name: &'static str,
    ready: impl Fn() -> bool,
) -> Result<(), PeerError> {
    let deadline = Instant::now() + READY_LIMIT;
    while !ready() {
        if let Some(status) = proc.try_wait() {
            return Err(PeerError::Start {
                name,
                detail: format!("exited ({status}):\n{}", proc.logs()),
            });
        }
        if Instant::now() >= deadline {
            return Err(PeerError::Start {
                name,
                detail: format!("not ready after {READY_LIMIT:?}:\n{}", proc.logs()),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether a component serving with the self-signed pair it wrote at start (`cert`: its
/// certificate for 127.0.0.1 and the CA that signed it) answers `path` with 200; health paths
/// need no credentials.
fn self_signed_ready(port: u16, cert: &Path, path: &str) -> bool {
    std::fs::read(cert).is_ok_and(|ca| {
        client::blocking_request(port, &ca, "GET", path, None, &[]).is_ok_and(|r| r.status == 200)
    })
}

/// The port of an `http://127.0.0.1:PORT` URL this module made.
fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_default()
}

/// The body of a plain-HTTP GET on loopback if it answered 200 (etcd's `/health`).
fn plain_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    // Go's server answers in the request's HTTP version.
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// The body of a plain-HTTP POST of JSON `body` on loopback if it answered 200 (etcd's gRPC
/// gateway).
fn plain_post(port: u16, path: &str, body: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// A fresh CA and a serving certificate for `127.0.0.1` and `localhost` signed by it.
struct ServingPki {
    ca_pem: String,
    /// The serving certificate then the CA.
    chain_pem: String,
    key_pem: String,
}

impl ServingPki {
    fn generate() -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "nautilus peer CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok(Self {
            chain_pem: format!("{}{}", cert.pem(), ca.pem()),
            ca_pem: ca.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
