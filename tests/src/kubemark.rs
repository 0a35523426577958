//! Real kubelets as stakers' nodes: kubemark's hollow kubelet (`kubemark --morph=kubelet`, the
//! kubelet's own code over a fake container runtime) joined with a kubeconfig whose credential
//! plugin is `nautilus-seal --exec-credential`, so each kubelet mints its own Seal tokens from its
//! staker's key, as a staker's machine would.
//!
//! Each hollow kubelet logs at `-v=6`, where client-go prints one line per request with the
//! answer's status; [`refused_requests`] reads the non-2xx ones back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::DevCluster;
use crate::logged::LoggedChild;
use crate::peers;
use crate::simulator::Worker;

/// The folder the hollow kubelets' keys, kubeconfigs and logs live in.
pub struct Workspace {
    /// Removes the folder on drop, unless it is kept.
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Workspace {
    /// A fresh folder, removed on drop; kept (and its path printed) when `NAUTILUS_KEEP_KUBEMARK`
    /// is set, to read the kubelets' logs after a run.
    pub fn new() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nautilus-kubemark-")
            .tempdir()?;
        if std::env::var_os("NAUTILUS_KEEP_KUBEMARK").is_some() {
            let path = dir.keep();
            println!("kubemark: keeping {}", path.display());
            return Ok(Self { _dir: None, path });
        }
        Ok(Self {
            path: dir.path().to_path_buf(),
            _dir: Some(dir),
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The kubemark binary ([`peers::built`]): `None` when Go is missing and none was built.
pub fn kubemark_binary() -> Result<Option<PathBuf>, peers::PeerError> {
    peers::built("kubemark")
}

/// The Kubernetes version `kubemark` was built as (`v1.32.13`): what its kubelet reports in
/// `status.nodeInfo.kubeletVersion`.
pub fn version(kubemark: &Path) -> Result<String, String> {
    let out = Command::new(kubemark)
        .arg("--version")
        .output()
        .map_err(|e| format!("run {}: {e}", kubemark.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix("Kubernetes ")
        .map(str::to_string)
        .ok_or_else(|| format!("kubemark --version printed {text:?}"))
}

/// How a node's kubelet mints its Seal tokens.
pub struct SealPlugin<'a> {
    /// The `nautilus-seal` binary.
    pub seal: &'a Path,
    /// The file holding the staker's `suiprivkey1...` key (mode 0600).
    pub key_file: &'a Path,
    /// The node name, the token's `node_id`.
    pub node: &'a str,
    /// The stake object id, `0x` + 64 hex digits.
    pub stake_id: &'a str,
    /// The token lifetime (`nautilus-seal --ttl`).
    pub ttl: &'a str,
    /// How long before expiry client-go mints again (`--refresh-before`).
    pub refresh_before: &'a str,
}

/// A kubeconfig for a staker's kubelet: the cluster at `server` trusting `ca_pem`, and a user
/// whose bearer tokens come from `nautilus-seal --exec-credential` (the key named by path, never
/// written into the file).
pub fn node_kubeconfig(server: &str, ca_pem: &[u8], plugin: &SealPlugin<'_>) -> String {
    let seal = plugin.seal.display().to_string();
    let key_file = plugin.key_file.display().to_string();
    let args = [
        "--exec-credential",
        "--key-file",
        key_file.as_str(),
        "--node-id",
        plugin.node,
        "--stake-id",
        plugin.stake_id,
        "--ttl",
        plugin.ttl,
        "--refresh-before",
        plugin.refresh_before,
    ];
    let names = nautilus_wire::kubeconfig::Names {
        cluster: "nautilus",
        user: plugin.node,
        context: "nautilus",
    };
    let exec = nautilus_wire::kubeconfig::ExecPlugin {
        command: &seal,
        args: &args,
        env: &[],
    };
    nautilus_wire::kubeconfig::exec_kubeconfig(&names, server, ca_pem, &exec)
}

/// Writes `secret` as `suiprivkey1...` to `path`, readable by its owner only.
pub fn write_key_file(path: &Path, secret: &[u8; 32]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{}", nautilus_wire::sui_key::encode_ed25519(secret))
}

/// One hollow kubelet process; killed (SIGKILL) on drop.
pub struct HollowKubelet {
    /// The process; its log is klog at `-v=6`.
    process: LoggedChild,
    /// The node it runs as.
    pub node: String,
}

impl HollowKubelet {
    /// Starts `kubemark --morph=kubelet` as `node` with `kubeconfig`, its log in `workspace`.
    /// Each kubelet gets its own API port (several share this host's network); the read-only
    /// port is off; images come from the fake runtime, not a host containerd.
    pub fn start(
        kubemark: &Path,
        workspace: &Workspace,
        node: &str,
        kubeconfig: &Path,
    ) -> std::io::Result<Self> {
        Self::start_with(kubemark, workspace, node, kubeconfig, &[])
    }

    /// Starts it with TLS bootstrap: `bootstrap` (a kubeconfig whose credential asks for a
    /// client certificate) and `kubeconfig`, which the kubelet writes with the certificate it
    /// got (key and certificate in `cert_dir`).
    pub fn start_bootstrapping(
        kubemark: &Path,
        workspace: &Workspace,
        node: &str,
        bootstrap: &Path,
        kubeconfig: &Path,
        cert_dir: &Path,
    ) -> std::io::Result<Self> {
        Self::start_with(
            kubemark,
            workspace,
            node,
            kubeconfig,
            &[
                format!("--bootstrap-kubeconfig={}", bootstrap.display()),
                format!("--cert-dir={}", cert_dir.display()),
            ],
        )
    }

    fn start_with(
        kubemark: &Path,
        workspace: &Workspace,
        node: &str,
        kubeconfig: &Path,
        extra: &[String],
    ) -> std::io::Result<Self> {
        let log = workspace.path().join(format!("{node}.log"));
        let port = crate::free_port();
        let process = LoggedChild::spawn(
            Command::new(kubemark)
                .args([
                    "--morph=kubelet",
                    &format!("--name={node}"),
                    &format!("--kubeconfig={}", kubeconfig.display()),
                    &format!("--kubelet-port={port}"),
                    "--kubelet-read-only-port=0",
                    "--use-host-image-service=false",
                    "--v=6",
                ])
                .args(extra),
            log,
        )?;
        Ok(Self {
            process,
            node: node.to_string(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether it has exited, and how.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// `kill -9`, as a machine losing power, and waits for it.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// The last `n` lines of its log.
    pub fn tail(&self, n: usize) -> String {
        let text = self.logs();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for HollowKubelet {
    fn drop(&mut self) {
        self.kill();
        remove_leftovers(&self.logs());
    }
}

/// Removes what a hollow kubelet leaves in `/tmp`, whatever `TMPDIR` says (kubemark's helpers
/// name `/tmp`): its root directory (pods, plugins, logs) and its fake runtime's socket, both
/// named in its log.
fn remove_leftovers(log: &str) {
    const ROOT_DIR: (&str, &str) = ("Using ", " as root dir for hollow-kubelet");
    const SOCKET: (&str, &str) = ("endpoint=\"unix://", "\"");
    for line in log.lines() {
        if let Some(dir) = between(line, ROOT_DIR).filter(|d| d.starts_with("/tmp/hollow-kubelet."))
        {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(socket) = between(line, SOCKET)
            .filter(|s| s.starts_with("/tmp/kubelet_remote_") && s.ends_with(".sock"))
        {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// The text of `line` between the first `start` and the next `end` after it.
fn between<'a>(line: &'a str, (start, end): (&str, &str)) -> Option<&'a str> {
    let (_, rest) = line.split_once(start)?;
    rest.split_once(end).map(|(found, _)| found)
}

/// One kind of refused request: verb, path (query left out) and status.
pub type Refusal = (String, String, u16);

/// The requests a kubelet's log shows answered with other than 2xx, counted by verb, path and
/// status. client-go at `-v=6` logs each as `<VERB> <URL> <code> <reason> in <n> milliseconds`;
/// requests that got no answer at all (a connection refused) are not among them.
pub fn refused_requests(log: &str) -> BTreeMap<Refusal, usize> {
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        let Some((_, message)) = line.split_once("] ") else {
            continue;
        };
        let mut words = message.split(' ');
        let (Some(verb), Some(url), Some(code)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if !matches!(verb, "GET" | "POST" | "PUT" | "PATCH" | "DELETE")
            || !url.starts_with("https://")
            || !message.ends_with(" milliseconds")
        {
            continue;
        }
        let Ok(code) = code.parse::<u16>() else {
            continue;
        };
        if (200..300).contains(&code) {
            continue;
        }
        let path = url
            .trim_start_matches("https://")
            .split_once('/')
            .map_or("/", |(_, p)| p);
        let path = format!("/{}", path.split('?').next().unwrap_or(""));
        *counts.entry((verb.to_string(), path, code)).or_insert(0) += 1;
    }
    counts
}

/// Polls `check` every 250 ms until it gives a value or `limit` passes; `what` and `context()`
/// name the failure.
#[track_caller]
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `GET path` as the administrator; fails the test unless it answers 200.
#[track_caller]
pub fn get(c: &DevCluster, path: &str) -> Value {
    let reply = c
        .request("GET", path, None, &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(
        reply.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The status (`True`, `False`, `Unknown`) of condition `kind` of `obj`; `""` when it has none.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> &'a str {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

/// Whether `node`'s kubelet renewed its Lease after `after` (Unix seconds) and its Node is Ready.
pub fn renews_since(c: &DevCluster, node: &str, after: u64) -> bool {
    let lease = get(
        c,
        &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"),
    );
    let renewed = lease["spec"]["renewTime"]
        .as_str()
        .and_then(nautilus_core::UnixTime::parse_rfc3339)
        .is_some_and(|t| t.secs() > after);
    renewed && condition(&get(c, &format!("/api/v1/nodes/{node}")), "Ready") == "True"
}

/// What a failed wait prints: the last `lines` lines of each kubelet's log and of `dev`'s.
pub fn context(c: &DevCluster, kubelets: &[HollowKubelet], lines: usize) -> String {
    let mut out = String::new();
    for k in kubelets {
        out.push_str(&format!(
            "--- {} (last lines) ---\n{}\n",
            k.node,
            k.tail(lines)
        ));
    }
    let logs = c.logs();
    let all: Vec<&str> = logs.lines().collect();
    out.push_str(&format!(
        "--- dev (last lines) ---\n{}",
        all[all.len().saturating_sub(lines * 2)..].join("\n")
    ));
    out
}

/// Waits until each of `kubelets` has its Node Ready with `version` in its `nodeInfo` (so the
/// kubelet, not a registration, wrote it); fails at once, with its log, when one exits.
#[track_caller]
pub fn wait_nodes_ready(
    c: &DevCluster,
    kubelets: &[HollowKubelet],
    version: &str,
    limit: Duration,
) {
    wait_for(
        limit,
        "the Nodes Ready, reported by their kubelets",
        || {
            for k in kubelets {
                if let Some(status) = k.exited() {
                    panic!("{} exited ({status}):\n{}", k.node, k.tail(60));
                }
            }
            kubelets
                .iter()
                .all(|k| {
                    let node = get(c, &format!("/api/v1/nodes/{}", k.node));
                    condition(&node, "Ready") == "True"
                        && node["status"]["nodeInfo"]["kubeletVersion"] == version
                })
                .then_some(())
        },
        || context(c, kubelets, 15),
    );
}

/// Writes `worker`'s key file and a kubeconfig at `path` whose credential plugin mints that
/// staker's Seal tokens (lifetime `ttl`, minted again `refresh_before` expiry); the key stays
/// in its own file.
pub fn write_seal_kubeconfig(
    c: &DevCluster,
    workspace: &Workspace,
    worker: &Worker,
    ttl: Duration,
    refresh_before: Duration,
    path: &Path,
) -> std::io::Result<()> {
    let key_file = workspace.path().join(format!("{}.key", worker.node));
    if !key_file.exists() {
        write_key_file(&key_file, &worker.secret)?;
    }
    let seal = crate::binary("nautilus-seal");
    let stake_id = nautilus_core::token::hex32(&worker.stake_id);
    let text = node_kubeconfig(
        &format!("https://127.0.0.1:{}", c.port),
        &c.ca_pem,
        &SealPlugin {
            seal: &seal,
            key_file: &key_file,
            node: &worker.node,
            stake_id: &stake_id,
            ttl: &format!("{}s", ttl.as_secs()),
            refresh_before: &format!("{}s", refresh_before.as_secs()),
        },
    );
    assert!(!text.contains("suiprivkey"), "the key stays in its file");
    std::fs::write(path, text)
}

/// The pods a label selector picks, followed event by event through the real `kubectl get pods
/// -w --output-watch-events -o json`: after each event, how many exist (not terminating) and
/// how many of those are Ready, with the extremes since [`PodWatch::restart_extremes`], so a
/// test can say a rollout or a drain never went past its bounds at any moment the API showed.
pub struct PodWatch {
    child: Mutex<Child>,
    state: std::sync::Arc<Mutex<PodWatchState>>,
}

#[derive(Default)]
struct PodWatchState {
    pods: BTreeMap<String, Value>,
    most_live: usize,
    fewest_ready: usize,
    /// The pods the eviction API marked (`DisruptionTarget`, reason `EvictionByEvictionAPI`).
    evicted: std::collections::BTreeSet<String>,
}

impl PodWatchState {
    /// `(live, ready)`: pods not terminating, and those of them Ready.
    fn counts(&self) -> (usize, usize) {
        let live: Vec<&Value> = self
            .pods
            .values()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .collect();
        let ready = live
            .iter()
            .filter(|p| condition(p, "Ready") == "True")
            .count();
        (live.len(), ready)
    }

    fn apply(&mut self, event: &Value) {
        let pod = &event["object"];
        let Some(name) = pod.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        let marked = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["type"] == "DisruptionTarget" && c["reason"] == "EvictionByEvictionAPI"
                })
            });
        if marked {
            self.evicted.insert(name.to_string());
        }
        if event["type"] == "DELETED" {
            self.pods.remove(name);
        } else {
            self.pods.insert(name.to_string(), pod.clone());
        }
        let (live, ready) = self.counts();
        self.most_live = self.most_live.max(live);
        self.fewest_ready = self.fewest_ready.min(ready);
    }
}

impl PodWatch {
    /// Starts the watch of `selector`'s pods in `namespace`.
    pub fn start(c: &DevCluster, namespace: &str, selector: &str) -> Self {
        let mut child = c
            .kubectl_command(&[
                "get",
                "pods",
                "-n",
                namespace,
                "-l",
                selector,
                "-w",
                "--output-watch-events",
                "-o",
                "json",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl get -w");
        let stdout = child.stdout.take().expect("piped stdout");
        let state = std::sync::Arc::new(Mutex::new(PodWatchState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let events = serde_json::Deserializer::from_reader(std::io::BufReader::new(stdout))
                .into_iter::<Value>();
            for event in events.map_while(Result::ok) {
                shared.lock().expect("watch lock").apply(&event);
            }
        });
        Self {
            child: Mutex::new(child),
            state,
        }
    }

    /// `(live, ready)` now.
    pub fn counts(&self) -> (usize, usize) {
        self.state.lock().expect("watch lock").counts()
    }

    /// Starts the extremes again from the present counts.
    pub fn restart_extremes(&self) {
        let mut state = self.state.lock().expect("watch lock");
        let (live, ready) = state.counts();
        state.most_live = live;
        state.fewest_ready = ready;
    }

    /// `(most live, fewest ready)` since the last restart.
    pub fn extremes(&self) -> (usize, usize) {
        let state = self.state.lock().expect("watch lock");
        (state.most_live, state.fewest_ready)
    }

    /// The pods seen marked by the eviction API.
    pub fn evicted(&self) -> std::collections::BTreeSet<String> {
        self.state.lock().expect("watch lock").evicted.clone()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let mut child = self.child.lock().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_client_go_request_lines() {
        let log = "\
I1207 03:10:00.100000   42 round_trippers.go:560] POST https://127.0.0.1:6443/api/v1/nodes?timeout=10s 409 Conflict in 3 milliseconds
I1207 03:10:00.200000   42 round_trippers.go:560] GET https://127.0.0.1:6443/api/v1/nodes/n1?resourceVersion=0&timeout=10s 200 OK in 1 milliseconds
I1207 03:10:00.300000   42 round_trippers.go:560] GET https://127.0.0.1:6443/apis/storage.k8s.io/v1/csinodes/n1 404 Not Found in 1 milliseconds
I1207 03:10:00.400000   42 round_trippers.go:560] GET https://127.0.0.1:6443/apis/storage.k8s.io/v1/csinodes/n1 404 Not Found in 2 milliseconds
I1207 03:10:00.500000   42 kubelet.go:100] GET https://example not a request line
I1207 03:10:00.600000   42 round_trippers.go:560] GET https://127.0.0.1:6443/api/v1/pods?watch=true  in 0 milliseconds
";
        let got = refused_requests(log);
        let want: BTreeMap<Refusal, usize> = BTreeMap::from([
            (("POST".into(), "/api/v1/nodes".into(), 409), 1),
            (
                (
                    "GET".into(),
                    "/apis/storage.k8s.io/v1/csinodes/n1".into(),
                    404,
                ),
                2,
            ),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn leftovers_are_found_in_the_log() {
        let line = r#"I1207 03:10:00.1 42 hollow_kubelet.go:173] Using /tmp/hollow-kubelet.123 as root dir for hollow-kubelet"#;
        assert_eq!(
            between(line, ("Using ", " as root dir for hollow-kubelet")),
            Some("/tmp/hollow-kubelet.123")
        );
        let line = r#"I1207 03:10:00.1 42 remote_runtime.go:1] "Connecting to runtime service" endpoint="unix:///tmp/kubelet_remote_7.sock""#;
        assert_eq!(
            between(line, ("endpoint=\"unix://", "\"")),
            Some("/tmp/kubelet_remote_7.sock")
        );
        assert_eq!(between("nothing", ("Using ", " as")), None);
    }

    #[test]
    fn the_node_kubeconfig_runs_nautilus_seal_for_its_node() {
        let plugin = SealPlugin {
            seal: Path::new("/bin/nautilus-seal"),
            key_file: Path::new("/keys/n1"),
            node: "n1",
            stake_id: "0x01",
            ttl: "24h",
            refresh_before: "5m",
        };
        let text = node_kubeconfig("https://127.0.0.1:6443", b"ca", &plugin);
        let doc = nautilus_core::yaml::to_json(text.as_bytes(), 1 << 20, 32).unwrap();
        let exec = &doc["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], "/bin/nautilus-seal");
        assert_eq!(
            exec["args"],
            serde_json::json!([
                "--exec-credential",
                "--key-file",
                "/keys/n1",
                "--node-id",
                "n1",
                "--stake-id",
                "0x01",
                "--ttl",
                "24h",
                "--refresh-before",
                "5m"
            ])
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
    }
}
