//! Issue 16's crash test, the way etcd tests itself: a write load from a few client threads
//! (creates, PUTs with resourceVersion, merge and JSON patches, deletes across ConfigMaps,
//! Secrets, Services, namespaces and a Deployment whose controller writes ReplicaSets) runs
//! against `nautilus-proxy dev --durable-log` while the test `kill -9`s the enclave, the proxy,
//! or both, at seeded random moments (and, in longer runs, stops the proxy with SIGTERM), and
//! starts the proxy again on the same data directory.
//!
//! An acknowledged-write oracle records every 2xx answer (uid, resourceVersion, the fields the
//! write set). A request that failed or whose connection broke is "unknown": after the restart
//! its object must be whole either before or after it, never in between. After each restart the
//! test checks every object against the oracle, that revisions never go backwards and new writes
//! get revisions above every revision a client saw, that Services' clusterIPs and nodePorts are
//! unique, and that `/readyz?verbose` shows the durable log. An informer (the Python client's
//! watch, `tests/python/informer.py`) runs across every restart and must end equal to a LIST.
//! A second test injects host store faults (`dev --storage-faults`).
//!
//! `NAUTILUS_CRASH_SEED` replays a run's kill schedule and write choices (the seed is printed;
//! thread timing is not replayed), `NAUTILUS_CRASH_KILLS` sets the number of kills (default 6:
//! 4 of the enclave, 2 of the proxy, one of them with its enclave). A failing run keeps its
//! data directory and logs and prints where they are.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nautilus_tests::client::{Connection, Reply, tls_config};
use nautilus_tests::{Kubectl, binary, free_port, signal, workspace_dir};
use serde_json::{Value, json};

/// The namespace every namespaced object of the load lives in.
const NAMESPACE: &str = "crash";
/// Client threads writing at once.
const WRITERS: usize = 3;
/// Journal entries between two snapshots: small, so that kills land before, during and after
/// snapshots and restarts replay a snapshot plus the log after it.
const SNAPSHOT_EVERY: &str = "--enclave-arg=--snapshot-every=1500";

/// A small deterministic generator (splitmix64): the seed replays the kill schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Where and how to reach the cluster now: dev rewrites the kubeconfig (CA, token) when it
/// starts again, so clients take the current one for every new connection.
struct Endpoint {
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

impl Endpoint {
    /// Reads `kubeconfig` (`None` while dev has not written it yet).
    fn read(kubeconfig: &Path, port: u16) -> Option<Self> {
        let text = std::fs::read_to_string(kubeconfig).ok()?;
        let field = |name: &str| {
            text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
        };
        let ca = base64::engine::general_purpose::STANDARD
            .decode(field("certificate-authority-data:")?)
            .ok()?;
        let token = field("token:")?;
        // A half-written file has no parsable certificate: rustls refuses it, so try again.
        let tls = std::panic::catch_unwind(|| tls_config(&ca)).ok()?;
        Some(Self { port, tls, token })
    }
}

/// What the load threads and the test share.
struct Shared {
    /// The current endpoint and its generation (bumped after every restart).
    endpoint: RwLock<(u64, Arc<Endpoint>)>,
    /// The test asks the writers to stop between requests (to check, or at the end).
    paused: AtomicBool,
    /// Set by each writer while it has a request of its own in flight.
    busy: Vec<AtomicBool>,
    /// The end of the run.
    stop: AtomicBool,
    /// The highest resourceVersion any 2xx answer carried so far.
    max_seen: AtomicU64,
    /// What the writers found wrong in answers (checked with the rest after each restart).
    violations: Mutex<Vec<String>>,
}

impl Shared {
    fn violation(&self, what: String) {
        self.violations.lock().expect("violations").push(what);
    }

    fn saw(&self, reply: &Reply) {
        if (200..300).contains(&reply.status)
            && let Some(rv) = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| revision(&v["metadata"]))
        {
            self.max_seen.fetch_max(rv, Ordering::SeqCst);
        }
    }
}

/// `metadata.resourceVersion` as a number.
fn revision(metadata: &Value) -> Option<u64> {
    metadata["resourceVersion"].as_str()?.parse().ok()
}

/// A keep-alive HTTPS client on its own runtime that reconnects to the current endpoint.
struct Client {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    connection: Option<(u64, Connection)>,
}

impl Client {
    fn new(shared: Arc<Shared>) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            runtime,
            shared,
            connection: None,
        }
    }

    /// One request; `Err` when no HTTP answer came back (refused, broken, timed out).
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        content_type: &str,
    ) -> Result<Reply, String> {
        let (generation, endpoint) = {
            let now = self.shared.endpoint.read().expect("endpoint lock");
            (now.0, now.1.clone())
        };
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON"));
        let headers = vec![
            (
                "authorization".to_string(),
                format!("Bearer {}", endpoint.token),
            ),
            ("content-type".to_string(), content_type.to_string()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let reused = self.connection.take().filter(|(g, _)| *g == generation);
        let answer = self.runtime.block_on(async {
            let mut connection = match reused {
                Some((_, c)) => c,
                None => tokio::time::timeout(
                    Duration::from_secs(10),
                    Connection::open(endpoint.port, endpoint.tls.clone()),
                )
                .await
                .map_err(|_| "connect timed out".to_string())??,
            };
            let reply = tokio::time::timeout(
                Duration::from_secs(30),
                connection.send(method, path, bytes.as_deref(), &headers),
            )
            .await
            .map_err(|_| "timed out".to_string())??;
            Ok::<_, String>((connection, reply))
        });
        match answer {
            Ok((connection, reply)) => {
                self.connection = Some((generation, connection));
                self.shared.saw(&reply);
                Ok(reply)
            }
            Err(e) => Err(e),
        }
    }

    /// A request that must answer 2xx (set-up and checks, with the load paused).
    #[track_caller]
    fn must(&mut self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match self.call(method, path, body, "application/json") {
                Ok(reply) if (200..300).contains(&reply.status) => return reply.json(),
                Ok(reply) => format!(
                    "HTTP {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ),
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "{method} {path} kept failing: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The kinds the load writes. `surface` is the string map each write sets whole or in part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    ConfigMap,
    Secret,
    Service,
    Namespace,
    Deployment,
}

impl Kind {
    fn collection(self) -> String {
        match self {
            Kind::ConfigMap => format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
            Kind::Secret => format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
            Kind::Service => format!("/api/v1/namespaces/{NAMESPACE}/services"),
            Kind::Namespace => "/api/v1/namespaces".to_string(),
            Kind::Deployment => format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
            Kind::Service => "service",
            Kind::Namespace => "namespace",
            Kind::Deployment => "deployment",
        }
    }

    /// ConfigMaps and Secrets: `data`; the others: `metadata.annotations`.
    fn in_data(self) -> bool {
        matches!(self, Kind::ConfigMap | Kind::Secret)
    }

    /// A key of the surface (`crash.x` in data, `crash/x` in annotations).
    fn key(self, k: &str) -> String {
        if self.in_data() {
            format!("crash.{k}")
        } else {
            format!("crash/{k}")
        }
    }

    /// The JSON pointer of a surface key (for JSON patches).
    fn pointer(self, k: &str) -> String {
        if self.in_data() {
            format!("/data/crash.{k}")
        } else {
            format!("/metadata/annotations/crash~1{k}")
        }
    }

    /// A controller also writes this kind (the Deployment's status): its resourceVersion may
    /// move past the last acknowledged write's.
    fn controller_writes(self) -> bool {
        self == Kind::Deployment
    }

    /// The surface of `object`: the `crash` keys of its data or annotations.
    fn surface(self, object: &Value) -> Surface {
        let map = if self.in_data() {
            &object["data"]
        } else {
            &object["metadata"]["annotations"]
        };
        map.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("crash"))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// A new object named `name` with `surface`.
    fn object(self, name: &str, surface: &Surface) -> Value {
        let mut object = match self {
            Kind::ConfigMap => json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            Kind::Secret => json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque"}),
            Kind::Namespace => json!({"apiVersion": "v1", "kind": "Namespace"}),
            // Every other Service allocates a nodePort as well as its clusterIP.
            Kind::Service => json!({"apiVersion": "v1", "kind": "Service", "spec": {
                "type": if name.ends_with(['0', '2', '4']) { "NodePort" } else { "ClusterIP" },
                "selector": {"app": name},
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            }}),
            Kind::Deployment => json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            }}),
        };
        object["metadata"] = json!({"name": name});
        set_surface(self, &mut object, surface);
        object
    }
}

type Surface = BTreeMap<String, String>;

fn set_surface(kind: Kind, object: &mut Value, surface: &Surface) {
    let target = if kind.in_data() {
        &mut object["data"]
    } else {
        &mut object["metadata"]["annotations"]
    };
    let mut map = target.as_object().cloned().unwrap_or_default();
    map.retain(|k, _| !k.starts_with("crash"));
    for (k, v) in surface {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    *target = Value::Object(map);
}

/// An object as the server last acknowledged it.
#[derive(Debug, Clone)]
struct Present {
    uid: String,
    rv: u64,
    surface: Surface,
    /// The whole answer (the base of the next PUT).
    object: Value,
}

impl Present {
    fn from(kind: Kind, object: &Value) -> Self {
        Self {
            uid: object["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            rv: revision(&object["metadata"]).unwrap_or(0),
            surface: kind.surface(object),
            object: object.clone(),
        }
    }
}

/// A write whose outcome is unknown (no answer, or a 5xx): what its object looks like if it
/// was applied (`None`: deleted).
#[derive(Debug, Clone)]
struct Doubt {
    what: String,
    if_applied: Option<Surface>,
}

/// One object of the load, owned by one writer.
#[derive(Debug)]
struct Tracked {
    kind: Kind,
    name: String,
    /// The last acknowledged state (`None`: never created, or deleted).
    acked: Option<Present>,
    /// A write since then whose outcome is unknown; the object is left alone until a check
    /// after the next restart settles it.
    doubt: Option<Doubt>,
    /// A Service's clusterIP and nodePorts as allocated by its create (for the acked uid).
    allocation: Option<(String, String)>,
    step: u64,
}

/// The operations the load sends.
#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    Put,
    MergePatch,
    JsonPatch,
    Delete,
}

/// What the oracle counted.
#[derive(Default, Debug)]
struct Counts {
    acked: u64,
    rejected: u64,
    unknown: u64,
    unknown_applied: u64,
    unknown_not_applied: u64,
    /// The first refusals, for the summary (401s right after a restart are expected).
    rejections: Vec<String>,
    by_op: BTreeMap<&'static str, u64>,
}

/// One write chosen by a writer, with what the oracle expects of it.
struct Planned {
    /// The object, in its writer's list.
    index: usize,
    op: Op,
    method: &'static str,
    path: String,
    body: Option<Value>,
    content_type: &'static str,
    /// The object's surface if the write applies (`None`: deleted).
    if_applied: Option<Surface>,
    /// The acknowledged uid and revision the write starts from.
    base: Option<(String, u64)>,
}

/// A writer thread: owns its objects and writes to them while not paused.
struct Writer {
    index: usize,
    objects: Mutex<Vec<Tracked>>,
    counts: Mutex<Counts>,
}

impl Writer {
    fn new(index: usize) -> Self {
        let mut objects = Vec::new();
        let mut add = |kind: Kind, n: usize| {
            for i in 0..n {
                objects.push(Tracked {
                    kind,
                    name: format!("w{index}-{}-{i}", kind.label()),
                    acked: None,
                    doubt: None,
                    allocation: None,
                    step: 0,
                });
            }
        };
        add(Kind::ConfigMap, 4);
        add(Kind::Secret, 3);
        add(Kind::Service, 3);
        add(Kind::Namespace, 1);
        if index == 0 {
            add(Kind::Deployment, 1);
        }
        Self {
            index,
            objects: Mutex::new(objects),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn run(&self, shared: &Arc<Shared>, seed: u64) {
        let mut rng = Rng(seed ^ (self.index as u64 + 1).wrapping_mul(0x1234_5678_9abc));
        let mut client = Client::new(shared.clone());
        let busy = &shared.busy[self.index];
        while !shared.stop.load(Ordering::SeqCst) {
            busy.store(true, Ordering::SeqCst);
            if shared.paused.load(Ordering::SeqCst) {
                busy.store(false, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let generation = shared.endpoint.read().expect("endpoint lock").0;
            let wrote = self.one_write(&mut client, &mut rng);
            busy.store(false, Ordering::SeqCst);
            if !wrote {
                // The cluster is down, or every object is in doubt: wait until the test saw it
                // come back, so that one kill leaves a few writes in doubt, not every object.
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline
                    && !shared.stop.load(Ordering::SeqCst)
                    && shared.endpoint.read().expect("endpoint lock").0 == generation
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Picks an object that is not in doubt, writes it and records the outcome; `false` when
    /// the write got no acknowledgement.
    fn one_write(&self, client: &mut Client, rng: &mut Rng) -> bool {
        let Some(write) = self.plan(rng) else {
            return false;
        };
        let answer = client.call(
            write.method,
            &write.path,
            write.body.as_ref(),
            write.content_type,
        );
        self.record(&write, answer, &client.shared)
    }

    /// The next write: its object, request and expected outcome.
    fn plan(&self, rng: &mut Rng) -> Option<Planned> {
        let mut objects = self.objects.lock().expect("objects");
        let free: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i].doubt.is_none())
            .collect();
        if free.is_empty() {
            return None;
        }
        let index = free[rng.below(free.len() as u64) as usize];
        let object = &mut objects[index];
        object.step += 1;
        let step = object.step;
        let kind = object.kind;
        let value = |k: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!("{}-{step}-{k}", object.name))
        };
        let op = match (&object.acked, kind, rng.below(10)) {
            (None, _, _) => Op::Create,
            // Namespaces and the Deployment stay (a controller handles their deletion).
            (Some(_), Kind::Deployment, _) => Op::MergePatch,
            (Some(_), Kind::Namespace, 0..=4) => Op::MergePatch,
            (Some(_), Kind::Namespace, _) => Op::Put,
            (Some(_), _, 0..=2) => Op::Put,
            (Some(_), _, 3..=5) => Op::MergePatch,
            (Some(_), _, 6..=8) => Op::JsonPatch,
            (Some(_), _, _) => Op::Delete,
        };
        let collection = kind.collection();
        let item = format!("{collection}/{}", object.name);
        let previous = object
            .acked
            .as_ref()
            .map(|p| p.surface.clone())
            .unwrap_or_default();
        let mut surface = previous.clone();
        let (method, path, body, content_type, if_applied) = match op {
            Op::Create => {
                let surface = Surface::from([
                    (kind.key("step"), value("step")),
                    (kind.key("a"), value("a")),
                ]);
                let body = kind.object(&object.name, &surface);
                let json = "application/json";
                ("POST", collection, Some(body), json, Some(surface))
            }
            Op::Put => {
                // The last acknowledged object with a new surface: its resourceVersion makes
                // the write conditional, as kubectl replace does.
                let surface = Surface::from([
                    (kind.key("step"), value("step")),
                    (kind.key("b"), value("b")),
                ]);
                let mut body = object
                    .acked
                    .as_ref()
                    .map(|p| p.object.clone())
                    .unwrap_or_default();
                set_surface(kind, &mut body, &surface);
                ("PUT", item, Some(body), "application/json", Some(surface))
            }
            Op::MergePatch => {
                surface.insert(kind.key("step"), value("step"));
                surface.insert(kind.key("c"), value("c"));
                let set = json!({kind.key("step"): value("step"), kind.key("c"): value("c")});
                let body = if kind.in_data() {
                    json!({"data": set})
                } else if kind == Kind::Deployment {
                    // The replica count and the annotation saying it go in one write.
                    let replicas = 1 + step % 3;
                    surface.insert(kind.key("replicas"), replicas.to_string());
                    let mut set = set;
                    set[kind.key("replicas")] = json!(replicas.to_string());
                    json!({"metadata": {"annotations": set}, "spec": {"replicas": replicas}})
                } else {
                    json!({"metadata": {"annotations": set}})
                };
                let merge = "application/merge-patch+json";
                ("PATCH", item, Some(body), merge, Some(surface))
            }
            Op::JsonPatch => {
                surface.insert(kind.key("step"), value("step"));
                surface.insert(kind.key("d"), value("d"));
                // `test` first: the patch applies only to the state the oracle knows.
                let body = json!([
                    {"op": "test", "path": kind.pointer("step"), "value": previous.get(&kind.key("step"))},
                    {"op": "replace", "path": kind.pointer("step"), "value": value("step")},
                    {"op": "add", "path": kind.pointer("d"), "value": value("d")},
                ]);
                let patch = "application/json-patch+json";
                ("PATCH", item, Some(body), patch, Some(surface))
            }
            Op::Delete => ("DELETE", item, None, "application/json", None),
        };
        Some(Planned {
            index,
            op,
            method,
            path,
            body,
            content_type,
            if_applied,
            base: object.acked.as_ref().map(|p| (p.uid.clone(), p.rv)),
        })
    }

    /// Records the outcome of `write`: acknowledged, refused, or unknown (the object is then
    /// in doubt until the next check); `true` when acknowledged.
    fn record(&self, write: &Planned, answer: Result<Reply, String>, shared: &Shared) -> bool {
        let mut objects = self.objects.lock().expect("objects");
        let object = &mut objects[write.index];
        let (kind, method, name) = (object.kind, write.method, object.name.clone());
        let mut counts = self.counts.lock().expect("counts");
        *counts.by_op.entry(op_name(write.op)).or_default() += 1;
        match answer {
            Ok(reply) if (200..300).contains(&reply.status) => {
                counts.acked += 1;
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                if write.if_applied.is_none() {
                    object.acked = None;
                    object.allocation = None;
                    return true;
                }
                let present = Present::from(kind, &answer);
                // The answer itself must hold exactly what was written, on the same object.
                if Some(&present.surface) != write.if_applied.as_ref() {
                    shared.violation(format!(
                        "{method} {name} was acknowledged with other contents: {answer}"
                    ));
                }
                if let Some((uid, rv)) = &write.base
                    && (&present.uid != uid || present.rv <= *rv)
                {
                    shared.violation(format!(
                        "{method} {name} was acknowledged as uid {} rv {} on uid {uid} rv {rv}",
                        present.uid, present.rv
                    ));
                }
                if kind == Kind::Service && matches!(write.op, Op::Create) {
                    object.allocation = Some(allocation(&answer));
                }
                object.acked = Some(present);
                true
            }
            // Refused before anything was written (bad request, conflict, credentials of a
            // previous start): nothing changes; a check finds it if the refusal was a lie.
            Ok(reply) if (400..500).contains(&reply.status) && reply.status != 429 => {
                counts.rejected += 1;
                if counts.rejections.len() < 20 {
                    counts.rejections.push(format!(
                        "{method} {}: {} {}",
                        write.path,
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                }
                false
            }
            other => {
                counts.unknown += 1;
                let why = match &other {
                    Ok(reply) => format!("HTTP {}", reply.status),
                    Err(e) => e.clone(),
                };
                object.doubt = Some(Doubt {
                    what: format!("{method} {} ({why})", write.path),
                    if_applied: write.if_applied.clone(),
                });
                false
            }
        }
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Create => "create",
        Op::Put => "put",
        Op::MergePatch => "merge-patch",
        Op::JsonPatch => "json-patch",
        Op::Delete => "delete",
    }
}

/// A Service's `(clusterIP, nodePorts)`.
fn allocation(service: &Value) -> (String, String) {
    let ip = service["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ports = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_u64())
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (ip, ports)
}

/// One `nautilus-proxy dev --durable-log` process on the kept data directory and a fixed port.
struct Dev {
    child: Child,
    data: PathBuf,
}

impl Dev {
    fn start(base: &Path, run: u32, port: u16, extra: &[&str]) -> Self {
        let data = base.join("data");
        let log = base.join(format!("dev-{run}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary("nautilus-proxy"))
            .arg("dev")
            .arg("--exit-with-parent")
            .arg("--durable-log")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start nautilus-proxy dev");
        Self { child, data }
    }

    /// Pids of this data directory's enclaves (the proxy's child, or an orphan of a killed one).
    fn enclaves(&self) -> Vec<u32> {
        enclaves_of(&self.data)
    }
}

fn enclaves_of(data: &Path) -> Vec<u32> {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(format!("__enclave.*{}", data.display()))
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Waits until no enclave of `data` runs; how long that took.
#[track_caller]
fn wait_no_enclave(data: &Path, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left = enclaves_of(data);
        if left.is_empty() {
            return start.elapsed();
        }
        if start.elapsed() > within {
            for pid in &left {
                signal(*pid, 9);
            }
            panic!(
                "enclave(s) {left:?} of {} still ran after {within:?}",
                data.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A failed assertion must not leave a cluster running.
impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.enclaves() {
            signal(pid, 9);
        }
    }
}

/// The Python informer, killed with the test.
struct Informer {
    child: Child,
    out: PathBuf,
}

impl Informer {
    fn start(base: &Path, kubeconfig: &Path) -> Self {
        let probe = Command::new("python3")
            .args(["-c", "import kubernetes"])
            .output()
            .expect("python3 on PATH");
        assert!(
            probe.status.success(),
            "the Python `kubernetes` module is not importable; run `pip install kubernetes`"
        );
        let out = base.join("informer.json");
        let log = std::fs::File::create(base.join("informer.log")).expect("informer log");
        let child = Command::new("python3")
            .arg(workspace_dir().join("tests/python/informer.py"))
            .arg(kubeconfig)
            .arg(NAMESPACE)
            .arg(&out)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("informer log"))
            .stderr(log)
            .spawn()
            .expect("start the informer");
        Self { child, out }
    }

    fn state(&self) -> Value {
        std::fs::read(&self.out)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Informer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `/readyz` answers 200 with the kubeconfig as it is now; returns the endpoint
/// it worked with.
fn wait_ready(kubeconfig: &Path, port: u16, deadline: Duration) -> Result<Endpoint, String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < deadline {
        if let Some(endpoint) = Endpoint::read(kubeconfig, port) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let headers = [(
                "authorization".to_string(),
                format!("Bearer {}", endpoint.token),
            )];
            let answer = runtime.block_on(async {
                let mut c = tokio::time::timeout(
                    Duration::from_secs(5),
                    Connection::open(port, endpoint.tls.clone()),
                )
                .await
                .map_err(|_| "connect timed out".to_string())??;
                tokio::time::timeout(
                    Duration::from_secs(10),
                    c.send("GET", "/readyz", None, &headers),
                )
                .await
                .map_err(|_| "timed out".to_string())?
            });
            match answer {
                Ok(reply) if reply.status == 200 => {
                    return Ok(endpoint);
                }
                Ok(reply) => {
                    last = format!("{} {}", reply.status, String::from_utf8_lossy(&reply.body));
                }
                Err(e) => last = e,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

/// `kubectl get --raw /readyz?verbose` (the real kubectl reads the kubeconfig dev rewrote);
/// what it printed, or why it failed.
fn kubectl_readyz(kubectl: &Kubectl) -> String {
    let out = kubectl.run(&["get", "--raw", "/readyz?verbose"], None);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The checks after a restart, with the writers paused.
struct Checker {
    /// The highest LIST revision so far (never goes backwards).
    list_rv: u64,
    /// The load's namespace as its create was acknowledged.
    namespace: Present,
    /// Probe objects written after each restart: they must stay as acknowledged.
    probes: Vec<(String, Present)>,
}

impl Checker {
    /// The items of a LIST of `kind` by name, and the LIST's revision.
    fn list(client: &mut Client, path: &str) -> (HashMap<String, Value>, u64) {
        let list = client.must("GET", path, None);
        let rv = revision(&list["metadata"]).unwrap_or(0);
        let items = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    i.clone(),
                )
            })
            .collect();
        (items, rv)
    }

    /// Every check; returns what is wrong.
    fn check(
        &mut self,
        client: &mut Client,
        writers: &[Writer],
        readyz: &str,
        label: &str,
    ) -> Vec<String> {
        let mut wrong: Vec<String> =
            std::mem::take(&mut *client.shared.violations.lock().expect("violations"));
        if !readyz.contains("[+]durable-log ok") {
            wrong.push(format!(
                "kubectl get --raw /readyz?verbose has no durable-log line:\n{readyz}"
            ));
        }
        let max_seen = client.shared.max_seen.load(Ordering::SeqCst);
        let mut max_acked = 0;
        let kinds = [
            Kind::ConfigMap,
            Kind::Secret,
            Kind::Service,
            Kind::Namespace,
            Kind::Deployment,
        ];
        let mut lists = HashMap::new();
        for kind in kinds {
            let (items, rv) = Self::list(client, &kind.collection());
            if rv < self.list_rv {
                wrong.push(format!(
                    "the {} LIST is at revision {rv}, below {} seen before",
                    kind.label(),
                    self.list_rv
                ));
            }
            self.list_rv = self.list_rv.max(rv);
            lists.insert(kind, items);
        }
        let namespace = lists[&Kind::Namespace]
            .get(NAMESPACE)
            .map(|o| Present::from(Kind::Namespace, o));
        if namespace
            .as_ref()
            .is_none_or(|n| n.uid != self.namespace.uid)
        {
            wrong.push(format!(
                "namespace {NAMESPACE}: acknowledged {} but found {}",
                describe(&Some(self.namespace.clone())),
                describe(&namespace)
            ));
        }
        for writer in writers {
            let mut objects = writer.objects.lock().expect("objects");
            let mut counts = writer.counts.lock().expect("counts");
            for object in objects.iter_mut() {
                let found = lists[&object.kind].get(&object.name);
                let actual = found.map(|o| Present::from(object.kind, o));
                if let Some(p) = &object.acked {
                    max_acked = max_acked.max(p.rv);
                }
                let controller = object.kind.controller_writes();
                let same = |a: &Option<Present>, b: &Option<Present>| match (a, b) {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        a.uid == b.uid
                            && a.surface == b.surface
                            && (a.rv == b.rv || (controller && b.rv >= a.rv))
                    }
                    _ => false,
                };
                match object.doubt.take() {
                    None if same(&object.acked, &actual) => {}
                    None => wrong.push(format!(
                        "{} {}: acknowledged {} but found {}",
                        object.kind.label(),
                        object.name,
                        describe(&object.acked),
                        describe(&actual)
                    )),
                    Some(_) if same(&object.acked, &actual) => counts.unknown_not_applied += 1,
                    Some(doubt) => {
                        let applied = match (&doubt.if_applied, &actual, &object.acked) {
                            (None, None, _) => true,
                            (Some(surface), Some(a), before) => {
                                &a.surface == surface
                                    && before
                                        .as_ref()
                                        .is_none_or(|b| b.uid == a.uid && a.rv > b.rv)
                            }
                            _ => false,
                        };
                        if applied {
                            counts.unknown_applied += 1;
                            if object.kind == Kind::Service && object.acked.is_none() {
                                object.allocation = found.map(allocation);
                            }
                            if actual.is_none() {
                                object.allocation = None;
                            }
                            object.acked = actual;
                        } else {
                            wrong.push(format!(
                                "{} {}: after the unknown {}, found {} (neither the acknowledged {} \
                                 nor the write applied whole)",
                                object.kind.label(),
                                object.name,
                                doubt.what,
                                describe(&actual),
                                describe(&object.acked)
                            ));
                            object.acked = actual;
                        }
                    }
                }
                if object.kind == Kind::Deployment
                    && let Some(found) = found
                {
                    let said = object
                        .acked
                        .as_ref()
                        .and_then(|p| p.surface.get("crash/replicas").cloned());
                    let replicas = found["spec"]["replicas"].as_u64().map(|r| r.to_string());
                    if said.is_some() && said != replicas {
                        wrong.push(format!("deployment {}: half-applied: annotation says {said:?} replicas, spec has {replicas:?}", object.name));
                    }
                }
                if object.kind == Kind::Service
                    && let (Some(found), Some(allocated)) = (found, &object.allocation)
                    && &allocation(found) != allocated
                {
                    wrong.push(format!(
                        "service {}: allocated {allocated:?} at create, now {:?}",
                        object.name,
                        allocation(found)
                    ));
                }
            }
        }
        // The Deployment controller's ReplicaSets came back owned by the acknowledged
        // Deployment (a lost or replaced uid would orphan them).
        let deployments: Vec<(String, String)> = writers
            .iter()
            .flat_map(|w| {
                w.objects
                    .lock()
                    .expect("objects")
                    .iter()
                    .filter(|o| o.kind == Kind::Deployment)
                    .filter_map(|o| o.acked.as_ref().map(|p| (o.name.clone(), p.uid.clone())))
                    .collect::<Vec<_>>()
            })
            .collect();
        let replicasets = client.must(
            "GET",
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"),
            None,
        );
        for rs in replicasets["items"].as_array().into_iter().flatten() {
            for owner in rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let name = owner["name"].as_str().unwrap_or_default();
                let uid = owner["uid"].as_str().unwrap_or_default();
                if let Some((_, want)) = deployments.iter().find(|(n, _)| n == name)
                    && want != uid
                {
                    wrong.push(format!(
                        "replicaset {} is owned by deployment {name} uid {uid}, not {want}",
                        rs["metadata"]["name"]
                    ));
                }
            }
        }
        // Nothing the load did not write (a write refused with a 4xx that was applied anyway).
        for kind in kinds {
            for name in lists[&kind]
                .keys()
                .filter(|n| n.starts_with('w') && n.contains('-'))
            {
                let known = writers.iter().any(|w| {
                    w.objects
                        .lock()
                        .expect("objects")
                        .iter()
                        .any(|o| o.kind == kind && &o.name == name)
                });
                if !known {
                    wrong.push(format!(
                        "{} {name} exists but was never written",
                        kind.label()
                    ));
                }
            }
        }
        if self.list_rv < max_acked {
            wrong.push(format!(
                "the LISTs are at revision {}, below the acknowledged revision {max_acked}",
                self.list_rv
            ));
        }
        // Allocations are unique across every Service of the cluster.
        let services = client.must("GET", "/api/v1/services", None);
        let mut ips: HashMap<String, String> = HashMap::new();
        let mut ports: HashMap<String, String> = HashMap::new();
        for service in services["items"].as_array().into_iter().flatten() {
            let namespaced = format!(
                "{}/{}",
                service["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default(),
                service["metadata"]["name"].as_str().unwrap_or_default()
            );
            let (ip, node_ports) = allocation(service);
            if !ip.is_empty()
                && ip != "None"
                && let Some(other) = ips.insert(ip.clone(), namespaced.clone())
            {
                wrong.push(format!(
                    "clusterIP {ip} is held by {other} and {namespaced}"
                ));
            }
            for port in node_ports.split(',').filter(|p| !p.is_empty()) {
                if let Some(other) = ports.insert(port.to_string(), namespaced.clone()) {
                    wrong.push(format!(
                        "nodePort {port} is held by {other} and {namespaced}"
                    ));
                }
            }
        }
        // Earlier probes are intact; a new write gets a revision above all seen before.
        let (configmaps, _) = Self::list(client, &Kind::ConfigMap.collection());
        for (name, probe) in &self.probes {
            let found = configmaps
                .get(name)
                .map(|o| Present::from(Kind::ConfigMap, o));
            if found
                .as_ref()
                .is_none_or(|f| f.uid != probe.uid || f.rv != probe.rv)
            {
                wrong.push(format!(
                    "probe {name}: acknowledged {} but found {}",
                    describe(&Some(probe.clone())),
                    describe(&found)
                ));
            }
        }
        let name = format!("probe-{label}");
        let body = json!({"metadata": {"name": name}, "data": {"after": label}});
        match client.call(
            "POST",
            &Kind::ConfigMap.collection(),
            Some(&body),
            "application/json",
        ) {
            Ok(reply) if reply.status == 201 => {
                let probe = Present::from(Kind::ConfigMap, &reply.json());
                if probe.rv <= max_seen {
                    wrong.push(format!(
                        "the first write after restart {label} got revision {}, not above {max_seen} \
                         that a client saw before",
                        probe.rv
                    ));
                }
                self.probes.push((name, probe));
            }
            Ok(reply) => wrong.push(format!(
                "the probe write after restart {label} answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )),
            Err(e) => wrong.push(format!("the probe write after restart {label} failed: {e}")),
        }
        wrong
    }
}

fn describe(state: &Option<Present>) -> String {
    match state {
        None => "absent".to_string(),
        Some(p) => format!("uid {} rv {} {:?}", p.uid, p.rv, p.surface),
    }
}

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Enclave,
    /// The proxy alone: its enclave is orphaned (and should stop: SIGTERM on parent death).
    Proxy,
    /// The proxy and the enclave together.
    Both,
    /// Not a kill: SIGTERM to the proxy, which stops its enclave in order (longer runs only).
    Stop,
}

/// How to replay a run, and where it keeps its data directory and logs.
struct Replay {
    /// The environment that replays it (empty when there is nothing random to replay).
    how: String,
    base: PathBuf,
}

impl Replay {
    /// Fails the run, saying how to replay it and where its data directory and logs are kept.
    fn fail(&self, what: String) -> ! {
        panic!(
            "{what}\n{}data directory and logs kept in {}",
            self.how,
            self.base.display()
        )
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn median(sorted: &[Duration]) -> Duration {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

#[test]
fn acknowledged_writes_survive_random_kill_9s_of_enclave_and_proxy() {
    let seed = env_u64("NAUTILUS_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let kills = env_u64("NAUTILUS_CRASH_KILLS").unwrap_or(6) as usize;
    println!("durable crash test: NAUTILUS_CRASH_SEED={seed} NAUTILUS_CRASH_KILLS={kills}");
    let mut rng = Rng(seed);
    // A third of the kills hit the proxy (alone, with the enclave, or a SIGTERM from the
    // seventh on), the rest the enclave.
    let mut targets: Vec<Target> = (0..kills)
        .map(|i| match (i % 3, i / 3 % 3) {
            (2, 0) => Target::Proxy,
            (2, 1) => Target::Both,
            (2, _) => Target::Stop,
            _ => Target::Enclave,
        })
        .collect();
    for i in (1..targets.len()).rev() {
        targets.swap(i, rng.below(i as u64 + 1) as usize);
    }

    // Kept on failure (the path is printed), removed when the run passes.
    let base = std::env::temp_dir().join(format!("nautilus-crash-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(base.join("data")).expect("data dir");
    let kubeconfig = base.join("data/kubeconfig");
    let port = free_port();
    let mut run = 1;
    let mut dev = Dev::start(&base, run, port, &[SNAPSHOT_EVERY]);
    let this = Replay {
        how: format!("replay with NAUTILUS_CRASH_SEED={seed} NAUTILUS_CRASH_KILLS={kills}\n"),
        base: base.clone(),
    };
    let endpoint = wait_ready(&kubeconfig, port, Duration::from_secs(120))
        .unwrap_or_else(|e| this.fail(format!("dev never became ready: {e}")));
    let shared = Arc::new(Shared {
        endpoint: RwLock::new((0, Arc::new(endpoint))),
        paused: AtomicBool::new(true),
        busy: (0..WRITERS).map(|_| AtomicBool::new(false)).collect(),
        stop: AtomicBool::new(false),
        max_seen: AtomicU64::new(0),
        violations: Mutex::new(Vec::new()),
    });
    let mut control = Client::new(shared.clone());
    let namespace = control.must(
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"metadata": {"name": NAMESPACE}})),
    );
    let informer = Informer::start(&base, &kubeconfig);
    let deadline = Instant::now() + Duration::from_secs(60);
    while informer.state()["lists"].as_u64().unwrap_or(0) == 0 {
        if Instant::now() > deadline {
            this.fail("the informer never listed".to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let writers: Vec<Writer> = (0..WRITERS).map(Writer::new).collect();
    let mut checker = Checker {
        list_rv: 0,
        namespace: Present::from(Kind::Namespace, &namespace),
        probes: Vec::new(),
    };
    let mut ready_times = Vec::new();
    let mut replay_times = Vec::new();
    let mut durable_line = String::new();
    let kubectl = Kubectl::new(&kubeconfig);
    let mut orphan_stops = Vec::new();

    std::thread::scope(|s| {
        for writer in &writers {
            let shared = &shared;
            s.spawn(move || writer.run(shared, seed));
        }
        let pause = |shared: &Shared| {
            shared.paused.store(true, Ordering::SeqCst);
            while shared.busy.iter().any(|b| b.load(Ordering::SeqCst)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A check before any kill: the oracle finds nothing wrong with a cluster that did
            // not restart (no false alarms), and the informer has something to follow.
            shared.paused.store(false, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
            pause(&shared);
            wait_ready(&kubeconfig, port, Duration::from_secs(60))
                .unwrap_or_else(|e| this.fail(format!("not ready before any kill: {e}")));
            let readyz = kubectl_readyz(&kubectl);
            let wrong = checker.check(&mut control, &writers, &readyz, "baseline");
            if !wrong.is_empty() {
                this.fail(format!("before any kill:\n{}", wrong.join("\n")));
            }
            for (kill, target) in targets.iter().enumerate() {
                shared.paused.store(false, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200 + rng.below(2300)));
                let killed_at = Instant::now();
                match target {
                    Target::Enclave => {
                        let pids = dev.enclaves();
                        for pid in &pids {
                            signal(*pid, 9);
                        }
                        // dev restarts it (with backoff); wait for a new one.
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while dev.enclaves().iter().all(|p| pids.contains(p)) {
                            if Instant::now() > deadline {
                                this.fail(format!(
                                    "dev never restarted the enclave after kill {kill}"
                                ));
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    Target::Proxy | Target::Both | Target::Stop => {
                        let pids = dev.enclaves();
                        if *target == Target::Both {
                            for pid in &pids {
                                signal(*pid, 9);
                            }
                        }
                        if *target == Target::Stop {
                            signal(dev.child.id(), 15);
                            let deadline = Instant::now() + Duration::from_secs(30);
                            while dev.child.try_wait().ok().flatten().is_none() {
                                if Instant::now() > deadline {
                                    this.fail(format!("dev ignored SIGTERM (kill {kill})"));
                                }
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        } else {
                            let _ = dev.child.kill();
                            let _ = dev.child.wait();
                        }
                        // An orphaned enclave gets SIGTERM from the kernel (parent death).
                        orphan_stops.push(wait_no_enclave(&dev.data, Duration::from_secs(30)));
                        run += 1;
                        dev = Dev::start(&base, run, port, &[SNAPSHOT_EVERY]);
                    }
                }
                // From the new enclave's start: the cost of replaying the log, without dev's
                // restart backoff.
                let respawned_at = Instant::now();
                let endpoint = wait_ready(&kubeconfig, port, Duration::from_secs(120))
                    .unwrap_or_else(|e| {
                        this.fail(format!("not ready after kill {kill} ({target:?}): {e}"))
                    });
                ready_times.push(killed_at.elapsed());
                replay_times.push(respawned_at.elapsed());
                let readyz = kubectl_readyz(&kubectl);
                durable_line = readyz
                    .lines()
                    .find(|l| l.contains("durable-log"))
                    .unwrap_or_default()
                    .to_string();
                {
                    let mut now = shared.endpoint.write().expect("endpoint lock");
                    *now = (now.0 + 1, Arc::new(endpoint));
                }
                pause(&shared);
                let wrong = checker.check(&mut control, &writers, &readyz, &kill.to_string());
                println!(
                    "kill {kill} ({target:?}): ready in {:.1}s, LIST revision {}, {} violation(s)",
                    killed_at.elapsed().as_secs_f64(),
                    checker.list_rv,
                    wrong.len()
                );
                if !wrong.is_empty() {
                    this.fail(format!(
                        "after kill {kill} ({target:?}) of {kills}:\n{}",
                        wrong
                            .iter()
                            .take(40)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
            pause(&shared);
        }));
        shared.stop.store(true, Ordering::SeqCst);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });

    // The informer ran across every restart: its cache ends equal to a fresh LIST.
    let (configmaps, list_rv) = Checker::list(&mut control, &Kind::ConfigMap.collection());
    let want: BTreeMap<String, (String, String)> = configmaps
        .iter()
        .map(|(name, o)| {
            let p = &o["metadata"];
            (
                name.clone(),
                (
                    p["uid"].as_str().unwrap_or_default().to_string(),
                    p["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let informed = loop {
        let state = informer.state();
        let have: BTreeMap<String, (String, String)> = state["items"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, v)| {
                (
                    name.clone(),
                    (
                        v[0].as_str().unwrap_or_default().to_string(),
                        v[1].as_str().unwrap_or_default().to_string(),
                    ),
                )
            })
            .collect();
        if have == want {
            break state;
        }
        if Instant::now() > deadline {
            this.fail(format!(
                "the informer's cache never matched the LIST at revision {list_rv}:\ninformer: {have:?}\nLIST: {want:?}\nstate: {state}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if informed["backwards"]
        .as_array()
        .is_some_and(|b| !b.is_empty())
    {
        this.fail(format!(
            "the informer saw revisions go backwards: {}",
            informed["backwards"]
        ));
    }

    // The summary.
    let mut totals = Counts::default();
    for writer in &writers {
        let counts = writer.counts.lock().expect("counts");
        totals.acked += counts.acked;
        totals.rejected += counts.rejected;
        totals.unknown += counts.unknown;
        totals.unknown_applied += counts.unknown_applied;
        totals.unknown_not_applied += counts.unknown_not_applied;
        totals
            .rejections
            .extend(counts.rejections.iter().take(3).cloned());
        for (op, n) in &counts.by_op {
            *totals.by_op.entry(op).or_default() += n;
        }
    }
    ready_times.sort();
    replay_times.sort();
    orphan_stops.sort();
    let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
    println!(
        "durable crash summary (seed {seed}): {kills} kills ({} enclave, {} proxy, {} both, {} \
         SIGTERM of the proxy); \
         {} writes acknowledged, {} refused, {} unknown ({} found applied, {} not applied); \
         writes by op {:?}; kill to ready (with dev's restart backoff) min {} median {} max {}; \
         new enclave process to ready min {} median {} max {}; orphaned enclave stopped within \
         max {}; informer: {} lists, {} resumes, {} expired (410), {} events; \
         final LIST revision {list_rv}; last restart's {durable_line}; snapshots kept: {}",
        targets.iter().filter(|t| **t == Target::Enclave).count(),
        targets.iter().filter(|t| **t == Target::Proxy).count(),
        targets.iter().filter(|t| **t == Target::Both).count(),
        targets.iter().filter(|t| **t == Target::Stop).count(),
        totals.acked,
        totals.rejected,
        totals.unknown,
        totals.unknown_applied,
        totals.unknown_not_applied,
        totals.by_op,
        secs(ready_times.first().copied().unwrap_or_default()),
        secs(median(&ready_times)),
        secs(ready_times.last().copied().unwrap_or_default()),
        secs(replay_times.first().copied().unwrap_or_default()),
        secs(median(&replay_times)),
        secs(replay_times.last().copied().unwrap_or_default()),
        secs(orphan_stops.last().copied().unwrap_or_default()),
        informed["lists"],
        informed["resumes"],
        informed["expired"],
        informed["events"],
        std::fs::read_dir(base.join("data/storage/snapshots")).map_or(0, |d| d.count()),
    );
    if !totals.rejections.is_empty() {
        println!("first refusals: {:#?}", totals.rejections);
    }
    drop(informer);
    drop(dev);
    let _ = std::fs::remove_dir_all(&base);
}

/// Host store faults (`dev --storage-faults`: the store reads `DATA_DIR/storage-faults` before
/// every write and sync): while fsync fails with EIO, the disk is full or writes stop halfway,
/// writes get a 503/507 `Status`, reads keep working; once the fault clears writes resume; after
/// a `kill -9` of the enclave every acknowledged write is back and each refused one is whole or
/// absent.
#[test]
fn storage_faults_refuse_writes_keep_reads_and_lose_nothing() {
    let base = std::env::temp_dir().join(format!("nautilus-faults-{}", std::process::id()));
    std::fs::create_dir_all(base.join("data")).expect("data dir");
    let this = Replay {
        how: String::new(),
        base: base.clone(),
    };
    let kubeconfig = base.join("data/kubeconfig");
    let control_file = base.join("data/storage-faults");
    let port = free_port();
    let dev = Dev::start(&base, 1, port, &["--storage-faults"]);
    let endpoint = wait_ready(&kubeconfig, port, Duration::from_secs(120))
        .unwrap_or_else(|e| this.fail(format!("dev never became ready: {e}")));
    let shared = Arc::new(Shared {
        endpoint: RwLock::new((0, Arc::new(endpoint))),
        paused: AtomicBool::new(true),
        busy: Vec::new(),
        stop: AtomicBool::new(false),
        max_seen: AtomicU64::new(0),
        violations: Mutex::new(Vec::new()),
    });
    let mut client = Client::new(shared.clone());
    client.must(
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"metadata": {"name": NAMESPACE}})),
    );
    let configmaps = Kind::ConfigMap.collection();
    let configmap = |name: &str| json!({"metadata": {"name": name}, "data": {"v": name}});
    let mut acked = vec![Present::from(
        Kind::ConfigMap,
        &client.must("POST", &configmaps, Some(&configmap("before"))),
    )];
    let mut refused = Vec::new();
    let mut refusals = Vec::new();
    for fault in ["fsync-eio", "disk-full", "short-write"] {
        std::fs::write(&control_file, format!("{fault}\n")).expect("write the fault file");
        let name = format!("during-{fault}");
        let reply = client
            .call(
                "POST",
                &configmaps,
                Some(&configmap(&name)),
                "application/json",
            )
            .unwrap_or_else(|e| this.fail(format!("no answer to a write during {fault}: {e}")));
        let status: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        refusals.push(format!(
            "{fault}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
        let said = status["message"].as_str().unwrap_or_default().to_string();
        if !matches!(reply.status, 503 | 507)
            || status["kind"] != "Status"
            || status["code"] != reply.status
        {
            this.fail(format!(
                "a write during {fault} answered {}: {status}",
                reply.status
            ));
        }
        refused.push((name, said));
        // Reads keep working: a GET and a LIST.
        for path in [format!("{configmaps}/before"), configmaps.clone()] {
            let reply = client
                .call("GET", &path, None, "application/json")
                .unwrap_or_else(|e| this.fail(format!("GET {path} during {fault}: {e}")));
            if reply.status != 200 {
                this.fail(format!(
                    "GET {path} during {fault} answered {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ));
            }
        }
        std::fs::remove_file(&control_file).expect("clear the fault");
        // Writes resume (each attempt under its own name: a refused one may still be applied).
        let deadline = Instant::now() + Duration::from_secs(60);
        for attempt in 0.. {
            let name = format!("after-{fault}-{attempt}");
            match client.call(
                "POST",
                &configmaps,
                Some(&configmap(&name)),
                "application/json",
            ) {
                Ok(reply) if reply.status == 201 => {
                    acked.push(Present::from(Kind::ConfigMap, &reply.json()));
                    break;
                }
                other => {
                    let mut said = String::new();
                    if let Ok(reply) = &other {
                        refusals.push(format!(
                            "after {fault}: {} {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.body)
                        ));
                        said = serde_json::from_slice::<Value>(&reply.body).unwrap_or_default()
                            ["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                    }
                    refused.push((name, said));
                    if Instant::now() > deadline {
                        this.fail(format!("writes did not resume after {fault}: {other:?}"));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // kill -9 the enclave: what was acknowledged comes back, what was refused is whole or gone.
    let before = dev.enclaves();
    for pid in &before {
        signal(*pid, 9);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while dev.enclaves().iter().all(|p| before.contains(p)) {
        if Instant::now() > deadline {
            this.fail("dev never restarted the enclave".to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let endpoint = wait_ready(&kubeconfig, port, Duration::from_secs(120))
        .unwrap_or_else(|e| this.fail(format!("not ready after the kill: {e}")));
    *shared.endpoint.write().expect("endpoint lock") = (1, Arc::new(endpoint));
    let (items, _) = Checker::list(&mut client, &configmaps);
    let mut wrong = Vec::new();
    for want in &acked {
        let name = want.object["metadata"]["name"].as_str().unwrap_or_default();
        let found = items.get(name).map(|o| Present::from(Kind::ConfigMap, o));
        if found
            .as_ref()
            .is_none_or(|f| f.uid != want.uid || f.rv != want.rv)
        {
            wrong.push(format!(
                "{name}: acknowledged uid {} rv {} but found {}",
                want.uid,
                want.rv,
                describe(&found)
            ));
        }
    }
    // A refusal that says the write was applied and is persisted once the host recovers must
    // hold that promise (a later write was acknowledged, and the log is in order); any other
    // refusal changed nothing.
    for (name, said) in &refused {
        let promised = said.contains("was applied");
        match items.get(name) {
            Some(found) if found["data"] != json!({"v": name}) => {
                wrong.push(format!(
                    "{name} was refused and came back half-applied: {found}"
                ));
            }
            Some(_) if !promised => {
                wrong.push(format!(
                    "{name} was refused ({said}) but came back after the restart"
                ));
            }
            None if promised => {
                wrong.push(format!(
                    "{name} was answered \"{said}\" but is gone after the restart"
                ));
            }
            _ => {}
        }
    }
    if !wrong.is_empty() {
        this.fail(wrong.join("\n"));
    }
    println!(
        "storage faults: {} writes acknowledged around the faults, {} refused; applied after \
         all (found after the restart): {:?}; the refusals: {:#?}",
        acked.len(),
        refused.len(),
        refused
            .iter()
            .filter(|(n, _)| items.contains_key(n))
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        refusals
    );
    drop(dev);
    let _ = std::fs::remove_dir_all(&base);
}
