//! KWOK (`sigs.k8s.io/kwok`'s `kwok` controller, not `kwokctl`) as the kubelets of a scale run.
//! It manages the Nodes that carry its annotation: it fills in their status, renews their
//! Leases (40 s long, renewed every 10 s, as a kubelet), patches their status every 20–45 s
//! (its default `node-heartbeat` Stage), plays the pods bound to them Running and Ready
//! (`pod-ready`) and deletes them once they are terminating (`pod-delete`), all through
//! client-go with the admin kubeconfig. [`run`] is issue 18's scale scenario over it, shared by
//! `bench --only kwok` and `tests/tests/kwok_scale.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::DevCluster;
use crate::client::{Connection, tls_config};
use crate::logged::LoggedChild;
use crate::procfs;
use crate::scrape::{Histogram, Scrape};
use crate::simulator::WatchStream;

/// The annotation KWOK is told to manage Nodes by (`--manage-nodes-with-annotation-selector`),
/// with the value its documentation's fake nodes carry; the same key is their taint.
pub const NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// The label the scale pods' node affinity asks for (KWOK's documented `type: kwok`).
pub const NODE_LABEL: (&str, &str) = ("type", "kwok");

/// The KWOK binary ([`crate::peers::built`]): `None` when Go is missing and none was built.
pub fn binary() -> Result<Option<PathBuf>, crate::peers::PeerError> {
    crate::peers::built("kwok")
}

/// One `kwok` process; killed on drop.
pub struct Kwok {
    /// The process; its log is JSON lines.
    process: LoggedChild,
    _dir: tempfile::TempDir,
}

impl Kwok {
    /// Starts `kwok` against the cluster of `kubeconfig`, managing the Nodes annotated
    /// [`NODE_ANNOTATION`], with 40-second Leases (kwok's own default is none: only status
    /// updates every 10 minutes) and pod IPs from a /16 (its default /24 holds 254). Its
    /// configuration is a file of its own and its `HOME` an empty folder, so nothing of this
    /// machine's `~/.kwok` is read. `verbose` logs one line per request (INFO) instead of
    /// warnings and errors only.
    pub fn start(binary: &Path, kubeconfig: &Path, verbose: bool) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nautilus-kwok-")
            .tempdir()?;
        let config = dir.path().join("kwok.yaml");
        let (key, value) = NODE_ANNOTATION;
        std::fs::write(
            &config,
            format!(
                "apiVersion: config.kwok.x-k8s.io/v1alpha1\n\
                 kind: KwokConfiguration\n\
                 options:\n  \
                   manageNodesWithAnnotationSelector: '{key}={value}'\n  \
                   nodeLeaseDurationSeconds: 40\n  \
                   cidr: 10.0.0.1/16\n"
            ),
        )?;
        let log = dir.path().join("kwok.log");
        let process = LoggedChild::spawn(
            Command::new(binary)
                .arg(format!("--config={}", config.display()))
                .arg(format!("--kubeconfig={}", kubeconfig.display()))
                .arg(format!("--v={}", if verbose { "INFO" } else { "WARN" }))
                .env("HOME", dir.path()),
            log,
        )?;
        Ok(Self { process, _dir: dir })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether it has exited, and how.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Its `ERROR` lines, each as `msg: err` (with the pod or node it names).
    pub fn errors(&self) -> Vec<String> {
        self.logs()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["level"] == "ERROR")
            .map(|entry| {
                let field = |k: &str| entry[k].as_str().unwrap_or("").to_string();
                let object = [field("pod"), field("node")].join(" ");
                format!("{} [{}]: {}", field("msg"), object.trim(), field("err"))
            })
            .collect()
    }
}

/// A fake Node as KWOK's documentation writes one: its annotation, the `type: kwok` label, a
/// taint that keeps other pods off, and the capacity of a 32-core node with 110 pods.
pub fn node(name: &str) -> Value {
    let (key, value) = NODE_ANNOTATION;
    let resources = json!({"cpu": "32", "memory": "256Gi", "pods": "110"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                NODE_LABEL.0: NODE_LABEL.1,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "spec": {"taints": [{"key": key, "value": value, "effect": "NoSchedule"}]},
        "status": {"allocatable": resources, "capacity": resources},
    })
}

/// A Deployment of `replicas` pause pods that only fit on KWOK's nodes (node affinity on
/// [`NODE_LABEL`], a toleration of their taint), each asking for a little CPU and memory.
pub fn deployment(namespace: &str, name: &str, replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": NODE_LABEL.0, "operator": "In", "values": [NODE_LABEL.1]}
                        ]}]
                    }}},
                    "tolerations": [{"key": NODE_ANNOTATION.0, "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    }],
                },
            },
        },
    })
}

/// Whether `obj`'s condition `kind` is `True`.
fn condition_true(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

/// Every Node's Ready condition, followed by one watch (re-opened from its last revision, or
/// from scratch after a 410, if it ends): which nodes were ever Ready, and each time one that
/// was Ready stopped being so.
pub struct NodeWatch {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<NodeStates>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`NodeWatch`] saw.
#[derive(Clone, Debug, Default)]
pub struct NodeStates {
    ready: HashMap<String, bool>,
    ever_ready: HashSet<String>,
    /// Nodes that turned from Ready to not Ready (False or Unknown or no condition), with when
    /// (since the watch began).
    pub not_ready: Vec<(String, Duration)>,
    /// Watch events read.
    pub events: usize,
    /// Times the watch was opened again after it ended.
    pub reopened: usize,
    /// The last error opening or reading it.
    pub error: Option<String>,
}

impl NodeStates {
    /// Nodes Ready now.
    pub fn ready_now(&self) -> usize {
        self.ready.values().filter(|r| **r).count()
    }

    /// Nodes ever seen Ready.
    pub fn ever_ready(&self) -> usize {
        self.ever_ready.len()
    }

    fn apply(&mut self, node: &Value, since: Instant) {
        let Some(name) = node.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        let ready = condition_true(node, "Ready");
        let was = self.ready.insert(name.to_string(), ready);
        if ready {
            self.ever_ready.insert(name.to_string());
        } else if was == Some(true) {
            self.not_ready.push((name.to_string(), since.elapsed()));
        }
    }
}

impl NodeWatch {
    /// Starts watching `cluster`'s Nodes.
    pub fn start(cluster: &DevCluster) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(NodeStates::default()));
        let (port, tls) = (cluster.port, tls_config(&cluster.ca_pem));
        let auth = vec![(
            "authorization".to_string(),
            format!("Bearer {}", cluster.token),
        )];
        let thread = {
            let (stop, state) = (stop.clone(), state.clone());
            std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(watch_nodes(port, tls, auth, stop, state));
            })
        };
        Self {
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// What it saw so far.
    pub fn states(&self) -> NodeStates {
        self.state.lock().expect("watch lock").clone()
    }

    /// Stops it and says what it saw.
    pub fn finish(mut self) -> NodeStates {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.states()
    }
}

impl Drop for NodeWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn watch_nodes(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    auth: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<NodeStates>>,
) {
    let began = Instant::now();
    let mut revision = String::new();
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        if !first {
            state.lock().expect("watch lock").reopened += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        first = false;
        // Without a revision the server sends every Node as ADDED first.
        let mut path = "/api/v1/nodes?watch=true&allowWatchBookmarks=true".to_string();
        if !revision.is_empty() {
            path.push_str(&format!("&resourceVersion={revision}"));
        }
        let mut stream = match WatchStream::connect(port, tls.clone(), &path, &auth).await {
            Ok(s) => s,
            Err(e) => {
                state.lock().expect("watch lock").error = Some(e);
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let event =
                match tokio::time::timeout(Duration::from_millis(250), stream.next_event()).await {
                    Err(_) => continue,
                    Ok(Ok(Some(event))) => event,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => {
                        state.lock().expect("watch lock").error = Some(e);
                        break;
                    }
                };
            let object = &event["object"];
            if let Some(rv) = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                revision = rv.to_string();
            }
            let mut states = state.lock().expect("watch lock");
            states.events += 1;
            match event["type"].as_str() {
                Some("ADDED" | "MODIFIED") => states.apply(object, began),
                Some("DELETED") => {
                    if let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str) {
                        states.ready.remove(name);
                    }
                }
                Some("ERROR") => {
                    // 410 Expired: start again from the present state.
                    states.error = Some(object.to_string());
                    revision.clear();
                    break;
                }
                _ => {}
            }
        }
    }
}

/// The sizes of one scale run.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Fake Nodes.
    pub nodes: usize,
    /// Deployments, of `replicas` pods each.
    pub deployments: usize,
    /// Pods per Deployment.
    pub replicas: usize,
    /// How long the cluster runs on after every pod is Ready, nodes heartbeating, before the
    /// figures are read.
    pub hold: Duration,
    /// Longest wait for the Nodes to be Ready, and again for the pods.
    pub limit: Duration,
    /// KWOK logs every request (see [`Kwok::start`]).
    pub verbose: bool,
}

impl Sizes {
    /// Pods in all.
    pub fn pods(&self) -> usize {
        self.deployments * self.replicas
    }
}

/// The namespace of the scale run's Deployments.
pub const NAMESPACE: &str = "scale";

/// What a scale run measured.
#[derive(Debug)]
pub struct Outcome {
    /// From the first Node created to all Ready (KWOK took each over).
    pub nodes_ready: Duration,
    /// From the first Deployment created to all their pods existing (`status.replicas`).
    pub pods_created: Duration,
    /// From the first Deployment created to all their pods Ready (`status.readyReplicas`).
    pub pods_ready: Duration,
    /// The pods listed at the end, and those of them Running, Ready, with an IP, on a fake
    /// Node.
    pub pods_listed: usize,
    /// See [`Outcome::pods_listed`].
    pub pods_running: usize,
    /// Fewest and most pods on one Node.
    pub spread: (usize, usize),
    /// Lease renewals (`PUT leases`) from the first Node created to the end, in the enclave.
    pub lease_renewals: Histogram,
    /// Node status updates (`PATCH nodes/status`) over the same time.
    pub node_status: Histogram,
    /// Pod status updates (`PATCH pods/status`) over the same time.
    pub pod_status: Histogram,
    /// What the node watch saw over the whole run.
    pub nodes: NodeStates,
    /// The enclave's share of one core from the first Deployment created to all pods Ready.
    pub enclave_cpu_deploy: Option<f64>,
    /// The same over the hold (nodes heartbeating, pods running).
    pub enclave_cpu_hold: Option<f64>,
    /// KWOK's share of one core from the first Deployment created to all pods Ready.
    pub kwok_cpu_deploy: Option<f64>,
    /// The enclave's resident memory at the end, in kB.
    pub enclave_rss_kb: Option<u64>,
    /// Requests answered other than 2xx/3xx over the run, by verb, resource, subresource and
    /// code.
    pub refusals: BTreeMap<(String, String, String, u16), f64>,
    /// KWOK's `ERROR` log lines.
    pub kwok_errors: Vec<String>,
}

fn scrape(cluster: &DevCluster) -> Result<Scrape, String> {
    let reply = cluster.request("GET", "/metrics", None, &[])?;
    if reply.status != 200 {
        return Err(format!("/metrics answered {}", reply.status));
    }
    Ok(Scrape::new(String::from_utf8_lossy(&reply.body)))
}

/// Creates every body of `bodies` at `path`, over `connections` connections at once.
fn create_all(
    cluster: &DevCluster,
    path: &str,
    bodies: Vec<Vec<u8>>,
    connections: usize,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let headers = vec![(
        "authorization".to_string(),
        format!("Bearer {}", cluster.token),
    )];
    let tls = tls_config(&cluster.ca_pem);
    rt.block_on(async {
        let workers = (0..connections.max(1)).map(|_| {
            let (bodies, next, headers, tls) =
                (bodies.clone(), next.clone(), headers.clone(), tls.clone());
            async move {
                let mut conn = Connection::open(cluster.port, tls).await?;
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let reply = conn.send("POST", path, Some(body), &headers).await?;
                    if reply.status != 201 {
                        return Err(format!(
                            "POST {path}: {} {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.body)
                        ));
                    }
                }
                Ok::<(), String>(())
            }
        });
        for done in futures::future::join_all(workers).await {
            done?;
        }
        Ok(())
    })
}

/// `(pods existing, pods Ready)` of the Deployments in [`NAMESPACE`], from their status.
fn deployment_counts(cluster: &DevCluster) -> Result<(u64, u64), String> {
    let path = format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments");
    let reply = cluster.request("GET", &path, None, &[])?;
    if reply.status != 200 {
        return Err(format!("GET {path}: {}", reply.status));
    }
    let list = reply.json();
    let sum = |field: &str| {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d["status"][field].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    Ok((sum("replicas"), sum("readyReplicas")))
}

/// `(pods listed, pods Running and Ready with an IP on a fake node, (fewest, most) per node)`,
/// read a page of 1,000 at a time.
fn check_pods(
    cluster: &DevCluster,
    node_prefix: &str,
) -> Result<(usize, usize, (usize, usize)), String> {
    let mut listed = 0;
    let mut running = 0;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut token = String::new();
    loop {
        let mut path = format!("/api/v1/namespaces/{NAMESPACE}/pods?limit=1000");
        if !token.is_empty() {
            path.push_str(&format!("&continue={token}"));
        }
        let reply = cluster.request("GET", &path, None, &[])?;
        if reply.status != 200 {
            return Err(format!("GET {path}: {}", reply.status));
        }
        let page = reply.json();
        for pod in page["items"].as_array().into_iter().flatten() {
            listed += 1;
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            let ok = pod["status"]["phase"] == "Running"
                && condition_true(pod, "Ready")
                && pod["status"]["podIP"]
                    .as_str()
                    .is_some_and(|ip| !ip.is_empty())
                && node.starts_with(node_prefix)
                && pod.pointer("/metadata/deletionTimestamp").is_none();
            if ok {
                running += 1;
                *per_node.entry(node.to_string()).or_default() += 1;
            }
        }
        match page["metadata"]["continue"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_string(),
            _ => break,
        }
    }
    let fewest = per_node.values().copied().min().unwrap_or(0);
    let most = per_node.values().copied().max().unwrap_or(0);
    Ok((listed, running, (fewest, most)))
}

/// Polls `check` every 200 ms until it holds, KWOK exits, or `limit` passes.
fn wait_until(
    kwok: &Kwok,
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool, String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if let Some(status) = kwok.exited() {
            return Err(format!("kwok exited ({status}) while waiting for {what}"));
        }
        if start.elapsed() > limit {
            return Err(format!("{what}: not after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 18's scale scenario on `cluster`: starts KWOK (`binary`) with the admin kubeconfig,
/// creates `sizes.nodes` fake Nodes and waits until KWOK has made them Ready, creates
/// `sizes.deployments` Deployments and waits until all their pods are Ready, runs on for
/// `sizes.hold`, then reads the figures. A node watch runs throughout.
pub fn run(cluster: &DevCluster, binary: &Path, sizes: &Sizes) -> Result<(Outcome, Kwok), String> {
    let enclave = cluster.enclave_pid().ok_or("no enclave process")?;
    let kwok = Kwok::start(binary, &cluster.kubeconfig, sizes.verbose)
        .map_err(|e| format!("start kwok: {e}"))?;
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    create_all(
        cluster,
        "/api/v1/namespaces",
        vec![namespace.to_string().into_bytes()],
        1,
    )?;
    let watch = NodeWatch::start(cluster);
    let before = scrape(cluster)?;

    let prefix = "kwok-node-";
    let nodes: Vec<Vec<u8>> = (0..sizes.nodes)
        .map(|i| node(&format!("{prefix}{i:05}")).to_string().into_bytes())
        .collect();
    let started = Instant::now();
    create_all(cluster, "/api/v1/nodes", nodes, 8)?;
    wait_until(&kwok, sizes.limit, "every Node Ready", || {
        Ok(watch.states().ready_now() >= sizes.nodes)
    })?;
    let nodes_ready = started.elapsed();

    let deployments: Vec<Vec<u8>> = (0..sizes.deployments)
        .map(|i| {
            deployment(NAMESPACE, &format!("scale-{i:04}"), sizes.replicas)
                .to_string()
                .into_bytes()
        })
        .collect();
    let pods = sizes.pods() as u64;
    let cpu_start = (procfs::cpu_secs(enclave), procfs::cpu_secs(kwok.pid()));
    let started = Instant::now();
    create_all(
        cluster,
        &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
        deployments,
        4,
    )?;
    let mut pods_created = None;
    let pods_ready = wait_until(&kwok, sizes.limit, "every pod Ready", || {
        let (created, ready) = deployment_counts(cluster)?;
        if pods_created.is_none() && created >= pods {
            pods_created = Some(started.elapsed());
        }
        Ok(ready >= pods)
    })?;
    let deploy_wall = started.elapsed();
    let cpu_ready = (procfs::cpu_secs(enclave), procfs::cpu_secs(kwok.pid()));

    std::thread::sleep(sizes.hold);
    let cpu_end = procfs::cpu_secs(enclave);
    let after = scrape(cluster)?;
    let enclave_rss_kb = procfs::status_kb(enclave, "VmRSS:");
    let nodes = watch.finish();
    let (pods_listed, pods_running, spread) = check_pods(cluster, prefix)?;

    let histogram = |want: &[(&str, &str)]| after.durations(want).since(&before.durations(want));
    let mut refusals = after.refusals();
    for (key, count) in before.refusals() {
        if let Some(now) = refusals.get_mut(&key) {
            *now -= count;
        }
    }
    refusals.retain(|_, count| *count > 0.0);
    let outcome = Outcome {
        nodes_ready,
        pods_created: pods_created.unwrap_or(pods_ready),
        pods_ready,
        pods_listed,
        pods_running,
        spread,
        lease_renewals: histogram(&[("verb", "PUT"), ("resource", "leases")]),
        node_status: histogram(&[
            ("verb", "PATCH"),
            ("resource", "nodes"),
            ("subresource", "status"),
        ]),
        pod_status: histogram(&[
            ("verb", "PATCH"),
            ("resource", "pods"),
            ("subresource", "status"),
        ]),
        nodes,
        enclave_cpu_deploy: procfs::core_share(cpu_start.0, cpu_ready.0, deploy_wall),
        enclave_cpu_hold: procfs::core_share(cpu_ready.0, cpu_end, sizes.hold),
        kwok_cpu_deploy: procfs::core_share(cpu_start.1, cpu_ready.1, deploy_wall),
        enclave_rss_kb,
        refusals,
        kwok_errors: kwok.errors(),
    };
    Ok((outcome, kwok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_turning_not_ready_is_counted_only_after_it_was_ready() {
        let began = Instant::now();
        let mut states = NodeStates::default();
        let status = |ready: &str| {
            json!({"metadata": {"name": "n1"},
                   "status": {"conditions": [{"type": "Ready", "status": ready}]}})
        };
        // KWOK's first status: not Ready yet, then Ready.
        states.apply(&json!({"metadata": {"name": "n1"}}), began);
        states.apply(&status("Unknown"), began);
        states.apply(&status("True"), began);
        assert!(states.not_ready.is_empty());
        assert_eq!((states.ready_now(), states.ever_ready()), (1, 1));
        states.apply(&status("True"), began);
        states.apply(&status("Unknown"), began);
        states.apply(&status("False"), began);
        assert_eq!(states.not_ready.len(), 1);
        assert_eq!(states.not_ready[0].0, "n1");
        assert_eq!(states.ready_now(), 0);
    }

    #[test]
    fn the_fake_node_and_the_pods_meet_through_label_and_taint() {
        let node = node("kwok-node-1");
        let dep = deployment("ns", "d", 3);
        let taint = &node["spec"]["taints"][0];
        let toleration = &dep["spec"]["template"]["spec"]["tolerations"][0];
        assert_eq!(taint["key"], toleration["key"]);
        assert_eq!(taint["effect"], toleration["effect"]);
        let term = &dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"][0];
        assert_eq!(
            node["metadata"]["labels"][term["key"].as_str().unwrap()],
            term["values"][0]
        );
        assert_eq!(
            node["metadata"]["annotations"][NODE_ANNOTATION.0],
            NODE_ANNOTATION.1
        );
        assert_eq!(dep["spec"]["replicas"], 3);
    }
}
