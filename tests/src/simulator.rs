//! A kwok-like worker simulator: N simulated stakers inside the test process, each with its own
//! Ed25519 key, stake (learned by the enclave from pushed Sui events) and Seal token. Each
//! registers through the seed's `POST /api/v1/register-worker`, heartbeats on an interval over a
//! bounded pool of keep-alive HTTPS connections (the seed way or by renewing its Lease), and
//! optionally watches the pods bound to it as a kubelet does: reports them Running and Ready
//! through the status subresource, and confirms the deletion of terminating ones (grace 0, uid
//! precondition) at once, as a kubelet whose containers stop promptly.
//!
//! The simulator owns its tokio runtime; its methods are synchronous so plain `#[test]`s and the
//! benchmark binary drive it alike.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use nautilus_core::UnixTime;
use nautilus_core::token::{SealClaims, ed25519_address, hex32, mint_ed25519};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::client::{Connection, Reply, tls_config};

/// The Move package the simulator's stake events come from, unless configured otherwise.
pub const DEFAULT_PACKAGE: [u8; 32] = [0x5e; 32];

/// Largest number of events in one `sui-events` push.
pub const MAX_EVENTS_PER_PUSH: usize = 10_000;

/// Pushes stay below this many body bytes (the enclave refuses bodies above 3 MiB).
pub const MAX_PUSH_BYTES: usize = 2 * 1024 * 1024;

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now as a core `UnixTime` (for RFC 3339 formatting).
pub fn now_unix() -> UnixTime {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    UnixTime { nanos }
}

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .expect("read /dev/urandom");
    out
}

/// 32 random bytes.
pub fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&random_bytes(32));
    out
}

/// The enclave option that makes it accept stake events of `package`.
pub fn package_arg(package: &[u8; 32]) -> String {
    format!("--sui-package={}", hex32(package))
}

/// A Sui event object as the Sui SDKs show it (`id{txDigest,eventSeq}`, `packageId`, ...).
pub fn sui_event(
    package: &[u8; 32],
    sender: &str,
    tx_digest: &str,
    event_seq: u64,
    kind: &str,
    parsed: Value,
) -> Value {
    let pkg = hex32(package);
    json!({
        "id": {"txDigest": tx_digest, "eventSeq": event_seq.to_string()},
        "packageId": pkg,
        "transactionModule": "staking",
        "sender": sender,
        "type": format!("{pkg}::staking::{kind}"),
        "parsedJson": parsed,
        "timestampMs": (now_secs() * 1000).to_string(),
    })
}

/// A `StakeDeposited` event: `owner` deposits `amount` MIST into `stake_id`.
pub fn deposit_event(
    package: &[u8; 32],
    tx_digest: &str,
    stake_id: &[u8; 32],
    owner: &str,
    amount: u64,
) -> Value {
    sui_event(
        package,
        owner,
        tx_digest,
        0,
        "StakeDeposited",
        json!({"stake_id": hex32(stake_id), "owner": owner, "amount": amount.to_string()}),
    )
}

/// A `StakeWithdrawn` event for `stake_id`.
pub fn withdraw_event(
    package: &[u8; 32],
    tx_digest: &str,
    stake_id: &[u8; 32],
    sender: &str,
) -> Value {
    sui_event(
        package,
        sender,
        tx_digest,
        0,
        "StakeWithdrawn",
        json!({"stake_id": hex32(stake_id)}),
    )
}

/// A `StakeSlashed` event taking `amount` MIST from `stake_id`.
pub fn slash_event(
    package: &[u8; 32],
    tx_digest: &str,
    stake_id: &[u8; 32],
    sender: &str,
    amount: u64,
) -> Value {
    sui_event(
        package,
        sender,
        tx_digest,
        0,
        "StakeSlashed",
        json!({"stake_id": hex32(stake_id), "amount": amount.to_string()}),
    )
}

/// A fresh, unique transaction digest (base58-looking; the enclave treats it as an opaque id).
pub fn fresh_digest() -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    random_bytes(32)
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The seed's registration body.
pub fn register_body(node: &str, token: &str, timestamp: u64, extra: Option<&Value>) -> Vec<u8> {
    let mut body = json!({"node_id": node, "seal_token": token, "timestamp": timestamp});
    if let (Some(Value::Object(extra)), Some(obj)) = (extra, body.as_object_mut()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    body.to_string().into_bytes()
}

/// The seed's heartbeat body.
pub fn heartbeat_body(node: &str, token: &str, timestamp: u64) -> Vec<u8> {
    json!({"node_id": node, "seal_token": token, "timestamp": timestamp})
        .to_string()
        .into_bytes()
}

/// The `p`-th percentile (0..=100) of `sorted` (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// How a worker proves it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatMode {
    /// `POST /api/v1/heartbeat` with the Seal token (the seed's endpoint).
    Seed,
    /// Renews `kube-node-lease/<node>` with `PUT`, as the kubelet's lease controller does.
    Lease,
}

impl HeartbeatMode {
    fn to_u8(self) -> u8 {
        match self {
            Self::Seed => 0,
            Self::Lease => 1,
        }
    }

    fn from_u8(v: u8) -> Self {
        if v == 1 { Self::Lease } else { Self::Seed }
    }
}

/// What the simulator runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of simulated stakers.
    pub workers: usize,
    /// Node name prefix: nodes are `<prefix>-<index>` (index zero-padded to 5 digits).
    pub prefix: String,
    /// The Move package of the stake events (must match the enclave's `--sui-package`).
    pub package: [u8; 32],
    /// Stake of each worker in MIST (default 2 SUI, above the default minimum of 1 SUI).
    pub stake_mist: u64,
    /// Time between two heartbeats of one worker (default 10 s, the kubelet's lease renewal).
    pub interval: Duration,
    /// Keep-alive connections shared by all heartbeats and registrations (default 32).
    pub connections: usize,
    /// Whether each worker watches its pods and reports them Running (one watch connection and
    /// one status connection per worker, so meant for small N).
    pub watch_pods: bool,
    /// Lifetime of each minted token in seconds (default 3600); tokens are re-minted a minute
    /// before they expire.
    pub token_lifetime_secs: u64,
    /// How workers heartbeat at first.
    pub mode: HeartbeatMode,
    /// Labels every node registers with.
    pub labels: BTreeMap<String, String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            workers: 3,
            prefix: "sim".into(),
            package: DEFAULT_PACKAGE,
            stake_mist: 2_000_000_000,
            interval: Duration::from_secs(10),
            connections: 32,
            watch_pods: false,
            token_lifetime_secs: 3600,
            mode: HeartbeatMode::Seed,
            labels: BTreeMap::from([("nautilus.io/simulated".into(), "true".into())]),
        }
    }
}

/// One simulated staker.
#[derive(Debug)]
pub struct Worker {
    /// Position in the simulator.
    pub index: usize,
    /// The node name (`node_id`).
    pub node: String,
    /// The Ed25519 secret key (seed) that owns the stake.
    pub secret: [u8; 32],
    /// The stake object id.
    pub stake_id: [u8; 32],
    /// The staker's Sui address (`0x` + 64 hex).
    pub owner: String,
    /// The node's InternalIP.
    pub ip: String,
    token: Mutex<(String, u64)>,
    paused: AtomicBool,
    mode: AtomicU8,
    last_status: AtomicU16,
    ok_heartbeats: AtomicU64,
    last_ok: Mutex<Option<Instant>>,
    lease: Mutex<Option<Value>>,
    pods_started: AtomicU32,
}

impl Worker {
    fn new(index: usize, prefix: &str, lifetime: u64, mode: HeartbeatMode) -> Self {
        let secret = random32();
        let stake_id = random32();
        let node = format!("{prefix}-{index:05}");
        let owner = ed25519_address(&secret).to_hex();
        let ip = format!(
            "10.{}.{}.{}",
            16 + (index >> 16) % 200,
            (index >> 8) & 255,
            index & 255
        );
        let (token, exp) = mint(&secret, &stake_id, &node, lifetime);
        Self {
            index,
            node,
            secret,
            stake_id,
            owner,
            ip,
            token: Mutex::new((token, exp)),
            paused: AtomicBool::new(false),
            mode: AtomicU8::new(mode.to_u8()),
            last_status: AtomicU16::new(0),
            ok_heartbeats: AtomicU64::new(0),
            last_ok: Mutex::new(None),
            lease: Mutex::new(None),
            pods_started: AtomicU32::new(0),
        }
    }

    /// The worker's current Seal token (re-minted shortly before it expires).
    pub fn token(&self) -> String {
        self.token.lock().expect("token lock").0.clone()
    }

    fn fresh_token(&self, lifetime: u64) -> String {
        let mut guard = self.token.lock().expect("token lock");
        if now_secs() + 60 >= guard.1 {
            *guard = mint(&self.secret, &self.stake_id, &self.node, lifetime);
        }
        guard.0.clone()
    }

    /// A token for `node` signed with this worker's key for its stake, valid `iat..exp`.
    pub fn mint_for(&self, node: &str, iat: u64, exp: u64) -> String {
        mint_ed25519(
            &self.secret,
            &SealClaims {
                node_id: node.into(),
                stake_id: self.stake_id,
                iat,
                exp,
            },
        )
    }

    /// HTTP status of the worker's last heartbeat (0 before the first).
    pub fn last_status(&self) -> u16 {
        self.last_status.load(Ordering::Relaxed)
    }

    /// Heartbeats answered 200 so far.
    pub fn ok_heartbeats(&self) -> u64 {
        self.ok_heartbeats.load(Ordering::Relaxed)
    }

    /// When the last heartbeat answered 200 arrived.
    pub fn last_ok_at(&self) -> Option<Instant> {
        *self.last_ok.lock().expect("last_ok lock")
    }

    /// Whether the simulator currently skips this worker's heartbeats.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// The registration extras: capacity, labels, addresses.
    fn registration_extra(&self, labels: &BTreeMap<String, String>) -> Value {
        json!({
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "labels": labels,
            "addresses": [
                {"type": "InternalIP", "address": self.ip},
                {"type": "Hostname", "address": self.node},
            ],
        })
    }

    fn next_pod_ip(&self) -> String {
        let n = self.pods_started.fetch_add(1, Ordering::Relaxed);
        format!(
            "10.{}.{}.{}",
            64 + (self.index >> 8) % 64,
            self.index & 255,
            2 + n % 250
        )
    }
}

fn mint(secret: &[u8; 32], stake_id: &[u8; 32], node: &str, lifetime: u64) -> (String, u64) {
    let iat = now_secs();
    let exp = iat + lifetime;
    let token = mint_ed25519(
        secret,
        &SealClaims {
            node_id: node.into(),
            stake_id: *stake_id,
            iat,
            exp,
        },
    );
    (token, exp)
}

/// Counters the simulator keeps.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Heartbeats sent (both modes).
    pub heartbeats: u64,
    /// Heartbeats that failed (non-200 or transport error).
    pub errors: u64,
    /// Pods reported Running through the status subresource.
    pub pods_running: u64,
    /// Pods removed after their deletion (DELETE with gracePeriodSeconds=0).
    pub pods_deleted: u64,
    /// Failed watch or status calls.
    pub watch_errors: u64,
}

struct Shared {
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    admin_token: String,
    config: SimConfig,
    workers: Vec<Arc<Worker>>,
    checkpoint: AtomicU64,
    shutdown: AtomicBool,
    latencies: Mutex<Vec<u32>>,
    lateness: Mutex<Vec<u32>>,
    heartbeats: AtomicU64,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
    pods_running: AtomicU64,
    pods_deleted: AtomicU64,
    watch_errors: AtomicU64,
}

impl Shared {
    fn note_error(&self, what: String) {
        let mut samples = self.error_samples.lock().expect("samples lock");
        if samples.len() < 50 {
            samples.push(what);
        }
    }
}

/// The simulator: build it, [`stake_all`](Self::stake_all), [`register_all`](Self::register_all),
/// then [`run`](Self::run) the heartbeat loops (and pod watchers); [`start`](Self::start) does
/// all four.
pub struct Simulator {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// A simulator for the cluster at 127.0.0.1:`port` (trusting `ca_pem`); `admin_token` pushes
    /// the stake events (dev mode accepts the admin token as the relay credential). Nothing is
    /// sent yet.
    pub fn new(
        port: u16,
        ca_pem: &[u8],
        admin_token: &str,
        config: SimConfig,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("worker-sim")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let workers = (0..config.workers)
            .map(|i| {
                Arc::new(Worker::new(
                    i,
                    &config.prefix,
                    config.token_lifetime_secs,
                    config.mode,
                ))
            })
            .collect();
        let shared = Arc::new(Shared {
            port,
            tls: tls_config(ca_pem),
            admin_token: admin_token.into(),
            config,
            workers,
            checkpoint: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            latencies: Mutex::new(Vec::new()),
            lateness: Mutex::new(Vec::new()),
            heartbeats: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
            pods_running: AtomicU64::new(0),
            pods_deleted: AtomicU64::new(0),
            watch_errors: AtomicU64::new(0),
        });
        Ok(Self {
            runtime,
            shared,
            tasks: Vec::new(),
        })
    }

    /// New, staked, registered and running, against `cluster`.
    pub fn start(cluster: &crate::DevCluster, config: SimConfig) -> Result<Self, String> {
        let mut sim = Self::new(cluster.port, &cluster.ca_pem, &cluster.token, config)?;
        sim.stake_all()?;
        sim.register_all()?;
        sim.run();
        Ok(sim)
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// All workers.
    pub fn workers(&self) -> &[Arc<Worker>] {
        &self.shared.workers
    }

    /// Worker `i`.
    pub fn worker(&self, i: usize) -> &Worker {
        &self.shared.workers[i]
    }

    /// Runs `future` on the simulator's runtime (for tests that want their own async calls).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The next checkpoint number (strictly increasing per simulator).
    pub fn next_checkpoint(&self) -> u64 {
        self.shared.checkpoint.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Pushes `events` at checkpoint `checkpoint` with the admin token; the raw answer.
    pub fn push_at(&self, checkpoint: u64, events: &[Value]) -> Result<Reply, String> {
        let body = json!({"checkpoint": checkpoint, "events": events}).to_string();
        self.admin_request("POST", "/api/v1/sui-events", Some(body.as_bytes()), &[])
    }

    /// Pushes `events` at the next checkpoint; fails unless the answer is 200.
    pub fn push(&self, events: &[Value]) -> Result<Value, String> {
        let reply = self.push_at(self.next_checkpoint(), events)?;
        if reply.status != 200 {
            return Err(format!(
                "sui-events push: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        serde_json::from_slice(&reply.body).map_err(|e| e.to_string())
    }

    /// Deposits every worker's stake: one push when it fits, else batches of at most
    /// [`MAX_EVENTS_PER_PUSH`] events and [`MAX_PUSH_BYTES`] bytes. Returns the events applied
    /// and the number of pushes.
    pub fn stake_all(&self) -> Result<(u64, usize), String> {
        let cfg = &self.shared.config;
        let mut applied = 0u64;
        let mut pushes = 0usize;
        let mut batch: Vec<Value> = Vec::new();
        let mut bytes = 0usize;
        let mut flush = |batch: &mut Vec<Value>| -> Result<(), String> {
            if batch.is_empty() {
                return Ok(());
            }
            let answer = self.push(batch)?;
            applied += answer.get("applied").and_then(Value::as_u64).unwrap_or(0);
            pushes += 1;
            batch.clear();
            Ok(())
        };
        for w in self.workers() {
            let event = deposit_event(
                &cfg.package,
                &fresh_digest(),
                &w.stake_id,
                &w.owner,
                cfg.stake_mist,
            );
            let size = event.to_string().len() + 1;
            if batch.len() >= MAX_EVENTS_PER_PUSH || bytes + size > MAX_PUSH_BYTES {
                flush(&mut batch)?;
                bytes = 0;
            }
            bytes += size;
            batch.push(event);
        }
        flush(&mut batch)?;
        Ok((applied, pushes))
    }

    /// Withdraws worker `i`'s stake (one push).
    pub fn withdraw(&self, i: usize) -> Result<Value, String> {
        let w = self.worker(i);
        let event = withdraw_event(
            &self.shared.config.package,
            &fresh_digest(),
            &w.stake_id,
            &w.owner,
        );
        self.push(&[event])
    }

    /// Slashes `amount` MIST from worker `i`'s stake (one push).
    pub fn slash(&self, i: usize, amount: u64) -> Result<Value, String> {
        let w = self.worker(i);
        let event = slash_event(
            &self.shared.config.package,
            &fresh_digest(),
            &w.stake_id,
            &w.owner,
            amount,
        );
        self.push(&[event])
    }

    /// Registers every worker concurrently over the connection pool; fails on the first
    /// refusal.
    pub fn register_all(&self) -> Result<(), String> {
        let shared = self.shared.clone();
        self.runtime.block_on(async move {
            let pool = shared
                .config
                .connections
                .max(1)
                .min(shared.workers.len().max(1));
            let mut handles = Vec::new();
            for c in 0..pool {
                let shared = shared.clone();
                handles.push(tokio::spawn(async move {
                    let mut conn = Connection::open(shared.port, shared.tls.clone()).await?;
                    for w in shared.workers.iter().skip(c).step_by(pool) {
                        let reply = register(&mut conn, &shared, w).await?;
                        if reply.status != 200 {
                            return Err(format!(
                                "register {}: {} {}",
                                w.node,
                                reply.status,
                                String::from_utf8_lossy(&reply.body)
                            ));
                        }
                    }
                    Ok::<(), String>(())
                }));
            }
            for h in handles {
                h.await.map_err(|e| e.to_string())??;
            }
            Ok(())
        })
    }

    /// Registers worker `i` once more (a restarted worker); the raw answer.
    pub fn register_one(&self, i: usize) -> Result<Reply, String> {
        let shared = self.shared.clone();
        let w = shared.workers[i].clone();
        self.runtime.block_on(async move {
            let mut conn = Connection::open(shared.port, shared.tls.clone()).await?;
            register(&mut conn, &shared, &w).await
        })
    }

    /// Starts the heartbeat loops (spread evenly over one interval) and, when configured, the pod
    /// watchers. Idempotent only in that a second call adds a second set of loops: call once.
    pub fn run(&mut self) {
        let shared = &self.shared;
        let n = shared.workers.len();
        if n == 0 {
            return;
        }
        let pool = shared.config.connections.max(1).min(n);
        let start = tokio::time::Instant::now();
        for c in 0..pool {
            let shared = shared.clone();
            self.tasks.push(
                self.runtime
                    .spawn(async move { heartbeat_loop(shared, c, pool, start).await }),
            );
        }
        if shared.config.watch_pods {
            for w in &shared.workers {
                let shared = shared.clone();
                let w = w.clone();
                self.tasks.push(
                    self.runtime
                        .spawn(async move { watch_loop(shared, w).await }),
                );
            }
        }
    }

    /// Stops worker `i` (a killed machine) until [`resume`](Self::resume): no heartbeats, and
    /// its kubelet neither reports pods nor confirms their deletion.
    pub fn pause(&self, i: usize) {
        self.worker(i).paused.store(true, Ordering::Relaxed);
    }

    /// Resumes worker `i`: a heartbeat at once, and its kubelet lists its pods again and acts
    /// on them (running the new ones, confirming the deletion of terminating ones).
    pub fn resume(&self, i: usize) -> Result<Reply, String> {
        self.worker(i).paused.store(false, Ordering::Relaxed);
        self.heartbeat_once(i)
    }

    /// Switches worker `i` between the seed's heartbeat and Lease renewal.
    pub fn set_mode(&self, i: usize, mode: HeartbeatMode) {
        self.worker(i).mode.store(mode.to_u8(), Ordering::Relaxed);
    }

    /// One heartbeat of worker `i` now in its current mode, on a fresh connection; recorded
    /// like the loop's.
    pub fn heartbeat_once(&self, i: usize) -> Result<Reply, String> {
        let shared = self.shared.clone();
        let w = shared.workers[i].clone();
        self.runtime.block_on(async move {
            let mut conn = Connection::open(shared.port, shared.tls.clone()).await?;
            beat(&mut conn, &shared, &w).await
        })
    }

    /// A request with worker `i`'s Seal token as bearer token.
    pub fn request_as(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let token = self.worker(i).token();
        let mut all = vec![("authorization".to_string(), format!("Bearer {token}"))];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.raw_request(method, path, body, &all)
    }

    /// A request with the admin token.
    pub fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut all = vec![(
            "authorization".to_string(),
            format!("Bearer {}", self.shared.admin_token),
        )];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.raw_request(method, path, body, &all)
    }

    /// A request with exactly `headers` (no credentials added), on a fresh connection.
    pub fn raw_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(String, String)],
    ) -> Result<Reply, String> {
        let shared = self.shared.clone();
        self.runtime.block_on(async move {
            let mut conn = Connection::open(shared.port, shared.tls.clone()).await?;
            tokio::time::timeout(
                Duration::from_secs(30),
                conn.send(method, path, body, headers),
            )
            .await
            .map_err(|_| "timed out".to_string())?
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        let s = &self.shared;
        SimStats {
            heartbeats: s.heartbeats.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            pods_running: s.pods_running.load(Ordering::Relaxed),
            pods_deleted: s.pods_deleted.load(Ordering::Relaxed),
            watch_errors: s.watch_errors.load(Ordering::Relaxed),
        }
    }

    /// The latencies of every heartbeat since the last call, sorted.
    pub fn take_latencies(&self) -> Vec<Duration> {
        let micros = std::mem::take(&mut *self.shared.latencies.lock().expect("latency lock"));
        let mut out: Vec<Duration> = micros
            .into_iter()
            .map(|m| Duration::from_micros(u64::from(m)))
            .collect();
        out.sort_unstable();
        out
    }

    /// How late each loop heartbeat since the last call was sent after its due time, sorted: a
    /// starved client (or machine) shows here, apart from the server's latency.
    pub fn take_lateness(&self) -> Vec<Duration> {
        let micros = std::mem::take(&mut *self.shared.lateness.lock().expect("lateness lock"));
        let mut out: Vec<Duration> = micros
            .into_iter()
            .map(|m| Duration::from_micros(u64::from(m)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Up to 50 descriptions of failed calls.
    pub fn error_samples(&self) -> Vec<String> {
        self.shared
            .error_samples
            .lock()
            .expect("samples lock")
            .clone()
    }

    /// Stops every loop and watcher.
    pub fn shutdown(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn register(conn: &mut Connection, shared: &Shared, w: &Worker) -> Result<Reply, String> {
    let token = w.fresh_token(shared.config.token_lifetime_secs);
    let extra = w.registration_extra(&shared.config.labels);
    let body = register_body(&w.node, &token, now_secs(), Some(&extra));
    let headers = [("x-seal-token".to_string(), token)];
    timed(conn.send("POST", "/api/v1/register-worker", Some(&body), &headers)).await
}

async fn timed(
    f: impl std::future::Future<Output = Result<Reply, String>>,
) -> Result<Reply, String> {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// One heartbeat of `w` in its mode, with its latency and outcome recorded.
async fn beat(conn: &mut Connection, shared: &Shared, w: &Worker) -> Result<Reply, String> {
    let mode = HeartbeatMode::from_u8(w.mode.load(Ordering::Relaxed));
    let token = w.fresh_token(shared.config.token_lifetime_secs);
    let started = Instant::now();
    let result = match mode {
        HeartbeatMode::Seed => {
            let body = heartbeat_body(&w.node, &token, now_secs());
            let headers = [("x-seal-token".to_string(), token)];
            timed(conn.send("POST", "/api/v1/heartbeat", Some(&body), &headers)).await
        }
        HeartbeatMode::Lease => renew_lease(conn, w, &token).await,
    };
    let elapsed = started.elapsed();
    shared.heartbeats.fetch_add(1, Ordering::Relaxed);
    match &result {
        Ok(reply) => {
            w.last_status.store(reply.status, Ordering::Relaxed);
            if reply.status == 200 {
                w.ok_heartbeats.fetch_add(1, Ordering::Relaxed);
                *w.last_ok.lock().expect("last_ok lock") = Some(Instant::now());
                let micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
                shared.latencies.lock().expect("latency lock").push(micros);
            } else {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format!(
                    "heartbeat {}: {} {}",
                    w.node,
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ));
            }
        }
        Err(e) => {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            shared.note_error(format!("heartbeat {}: {e}", w.node));
        }
    }
    result
}

/// The kubelet's lease renewal: update the last Lease it saw with a new `renewTime`
/// (`PUT`, optimistic concurrency); on a conflict or without a cached Lease, `GET` it first.
async fn renew_lease(conn: &mut Connection, w: &Worker, token: &str) -> Result<Reply, String> {
    let path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
        w.node
    );
    let headers = [("authorization".to_string(), format!("Bearer {token}"))];
    let cached = w.lease.lock().expect("lease lock").take();
    let mut lease = match cached {
        Some(lease) => lease,
        None => {
            let reply = timed(conn.send("GET", &path, None, &headers)).await?;
            if reply.status != 200 {
                return Ok(reply);
            }
            serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?
        }
    };
    if let Some(spec) = lease.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("renewTime".into(), now_unix().rfc3339_micros().into());
        spec.entry("holderIdentity")
            .or_insert(w.node.clone().into());
        spec.entry("leaseDurationSeconds").or_insert(40.into());
    }
    let body = lease.to_string();
    let reply = timed(conn.send("PUT", &path, Some(body.as_bytes()), &headers)).await?;
    if reply.status == 200
        && let Ok(updated) = serde_json::from_slice::<Value>(&reply.body)
    {
        *w.lease.lock().expect("lease lock") = Some(updated);
    }
    Ok(reply)
}

/// Connection `c` of `pool` heartbeats workers c, c+pool, ...: worker i is due at
/// `start + interval * (i/N + round)`, which spreads the load evenly over the interval.
async fn heartbeat_loop(shared: Arc<Shared>, c: usize, pool: usize, start: tokio::time::Instant) {
    let n = shared.workers.len();
    let interval = shared.config.interval;
    let mut conn: Option<Connection> = None;
    let mut round: u32 = 0;
    loop {
        for w in shared.workers.iter().skip(c).step_by(pool) {
            let offset = interval.mul_f64(w.index as f64 / n as f64);
            let due = start + interval * round + offset;
            tokio::time::sleep_until(due).await;
            if shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            if w.paused.load(Ordering::Relaxed) {
                continue;
            }
            let late = u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX);
            shared.lateness.lock().expect("lateness lock").push(late);
            if conn.is_none() {
                match Connection::open(shared.port, shared.tls.clone()).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        shared.heartbeats.fetch_add(1, Ordering::Relaxed);
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                        shared.note_error(format!("connect: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            if let Some(open) = conn.as_mut()
                && beat(open, &shared, w).await.is_err()
            {
                conn = None;
            }
        }
        round += 1;
    }
}

/// Watches the pods bound to `w` (list, then watch from the list's resourceVersion with
/// bookmarks; relist on 410 or a failed watch) and acts on each as a kubelet would.
async fn watch_loop(shared: Arc<Shared>, w: Arc<Worker>) {
    let selector = format!("fieldSelector=spec.nodeName%3D{}", w.node);
    let mut actions: Option<Connection> = None;
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut rv: Option<String> = None;
    while !shared.shutdown.load(Ordering::Relaxed) {
        if w.is_paused() {
            // A dead machine's kubelet does nothing; back, it lists its pods afresh.
            tokio::time::sleep(Duration::from_millis(100)).await;
            rv = None;
            done.clear();
            continue;
        }
        let token = w.fresh_token(shared.config.token_lifetime_secs);
        let auth = vec![("authorization".to_string(), format!("Bearer {token}"))];
        if actions.is_none() {
            match Connection::open(shared.port, shared.tls.clone()).await {
                Ok(c) => actions = Some(c),
                Err(e) => {
                    watch_failed(&shared, format!("watch {}: connect: {e}", w.node)).await;
                    continue;
                }
            }
        }
        let Some(conn) = actions.as_mut() else {
            continue;
        };
        if rv.is_none() {
            let path = format!("/api/v1/pods?{selector}");
            match timed(conn.send("GET", &path, None, &auth)).await {
                Ok(reply) if reply.status == 200 => {
                    let list: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                    rv = list
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let mut broken = false;
                    for pod in list
                        .get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if act_on_pod(conn, &shared, &w, &auth, pod, &mut done)
                            .await
                            .is_err()
                        {
                            broken = true;
                            break;
                        }
                    }
                    if broken {
                        actions = None;
                        continue;
                    }
                }
                Ok(reply) => {
                    watch_failed(
                        &shared,
                        format!(
                            "list pods of {}: {} {}",
                            w.node,
                            reply.status,
                            String::from_utf8_lossy(&reply.body)
                        ),
                    )
                    .await;
                    continue;
                }
                Err(e) => {
                    actions = None;
                    watch_failed(&shared, format!("list pods of {}: {e}", w.node)).await;
                    continue;
                }
            }
        }
        let path = format!(
            "/api/v1/pods?watch=true&{selector}&allowWatchBookmarks=true&resourceVersion={}",
            rv.clone().unwrap_or_default()
        );
        let mut stream = match WatchStream::open(&shared, &path, &auth).await {
            Ok(s) => s,
            Err(e) => {
                watch_failed(&shared, format!("watch pods of {}: {e}", w.node)).await;
                rv = None;
                continue;
            }
        };
        loop {
            // Wakes now and then to notice a pause (reading the next event is cancel-safe).
            let next = tokio::time::timeout(Duration::from_millis(250), stream.next_event()).await;
            if w.is_paused() {
                break;
            }
            let event = match next {
                Err(_) => continue,
                Ok(Ok(Some(e))) => e,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    watch_failed(&shared, format!("watch pods of {}: {e}", w.node)).await;
                    break;
                }
            };
            let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
            let object = event.get("object").cloned().unwrap_or_default();
            if let Some(v) = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                rv = Some(v.to_string());
            }
            match kind {
                "ADDED" | "MODIFIED" => {
                    let Some(conn) = actions.as_mut() else {
                        break;
                    };
                    if act_on_pod(conn, &shared, &w, &auth, &object, &mut done)
                        .await
                        .is_err()
                    {
                        actions = None;
                        break;
                    }
                }
                "DELETED" => {
                    if let Some(uid) = object.pointer("/metadata/uid").and_then(Value::as_str) {
                        done.remove(&format!("delete:{uid}"));
                    }
                }
                "ERROR" => {
                    // 410 Gone: the resourceVersion is too old; relist.
                    rv = None;
                    break;
                }
                _ => {}
            }
        }
    }
}

async fn watch_failed(shared: &Shared, what: String) {
    shared.watch_errors.fetch_add(1, Ordering::Relaxed);
    shared.note_error(what);
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn pod_is_running_ready(pod: &Value) -> bool {
    let running = pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        });
    running && ready
}

/// A pod bound to `w`: if it is being deleted, remove it with `gracePeriodSeconds=0` and a UID
/// precondition (the kubelet's status manager does this once the containers are gone); else
/// report it Running and Ready unless it already is. A transport error is returned so the
/// caller reopens its connection; refusals are counted.
async fn act_on_pod(
    conn: &mut Connection,
    shared: &Shared,
    w: &Worker,
    auth: &[(String, String)],
    pod: &Value,
    done: &mut BTreeSet<String>,
) -> Result<(), String> {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (ns, name, uid) = (
        s("/metadata/namespace"),
        s("/metadata/name"),
        s("/metadata/uid"),
    );
    if s("/spec/nodeName") != w.node || name.is_empty() {
        return Ok(());
    }
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        if !done.insert(format!("delete:{uid}")) {
            return Ok(());
        }
        let body = json!({
            "kind": "DeleteOptions", "apiVersion": "v1",
            "gracePeriodSeconds": 0, "preconditions": {"uid": uid},
        })
        .to_string();
        let reply = timed(conn.send("DELETE", &path, Some(body.as_bytes()), auth)).await?;
        if matches!(reply.status, 200 | 404) {
            shared.pods_deleted.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.watch_errors.fetch_add(1, Ordering::Relaxed);
            shared.note_error(format!(
                "delete pod {ns}/{name} as {}: {} {}",
                w.node,
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        return Ok(());
    }
    if pod_is_running_ready(pod) {
        return Ok(());
    }
    let now = now_unix().rfc3339();
    let pod_ip = w.next_pod_ip();
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
            json!({
                "name": cname,
                "image": c.get("image").cloned().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("sim://{uid}-{cname}"),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let condition = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let patch = json!({
        "status": {
            "phase": "Running",
            "hostIP": w.ip,
            "hostIPs": [{"ip": w.ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": now,
            "conditions": [
                condition("PodReadyToStartContainers"),
                condition("Initialized"),
                condition("Ready"),
                condition("ContainersReady"),
                condition("PodScheduled"),
            ],
            "containerStatuses": containers,
        }
    })
    .to_string();
    let mut headers = auth.to_vec();
    headers.push((
        "content-type".to_string(),
        "application/merge-patch+json".to_string(),
    ));
    let reply = timed(conn.send(
        "PATCH",
        &format!("{path}/status"),
        Some(patch.as_bytes()),
        &headers,
    ))
    .await?;
    if reply.status == 200 {
        shared.pods_running.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.watch_errors.fetch_add(1, Ordering::Relaxed);
        shared.note_error(format!(
            "patch pod {ns}/{name} status as {}: {} {}",
            w.node,
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    Ok(())
}

/// One streaming GET (a watch): newline-delimited JSON events read as they arrive.
pub struct WatchStream {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl WatchStream {
    /// Opens a watch at `path` with `headers` on its own connection; fails unless 200.
    async fn open(
        shared: &Shared,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<Self, String> {
        Self::connect(shared.port, shared.tls.clone(), path, headers).await
    }

    /// Opens a watch at 127.0.0.1:`port`, `path`, with `headers`; fails unless 200.
    pub async fn connect(
        port: u16,
        tls: Arc<rustls::ClientConfig>,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<Self, String> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut builder = hyper::Request::builder()
            .method("GET")
            .uri(path)
            .header("host", "127.0.0.1")
            .header("accept", "application/json");
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if status != 200 {
            let mut text = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    text.extend_from_slice(&data);
                }
            }
            return Err(format!("{status} {}", String::from_utf8_lossy(&text)));
        }
        Ok(Self {
            body,
            buffer: Vec::new(),
        })
    }

    /// The next event, `None` when the server ended the watch. Cancel-safe: a partly read
    /// event stays buffered for the next call.
    pub async fn next_event(&mut self) -> Result<Option<Value>, String> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                let line = &line[..line.len() - 1];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|e| format!("event is not JSON ({e})"));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(format!("body: {e}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
