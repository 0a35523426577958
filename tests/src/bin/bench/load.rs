//! Load generators over `nautilus_tests::client::Connection`: closed-loop GET clients, bulk pod
//! creation, and the pod body the figures use (a realistic pod padded to about 2 KB).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nautilus_tests::client::{Connection, Reply};

/// Request headers carrying the admin token.
pub(crate) fn auth(token: &str) -> Vec<(String, String)> {
    vec![("authorization".to_string(), format!("Bearer {token}"))]
}

/// Latency percentiles and throughput of one closed-loop phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) requests: usize,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
    pub(crate) per_sec: f64,
}

impl Latency {
    /// Figures of `samples` gathered over `measured` of wall time.
    pub(crate) fn of(mut samples: Vec<Duration>, measured: Duration) -> Self {
        samples.sort_unstable();
        Self {
            requests: samples.len(),
            p50: quantile(&samples, 0.50),
            p99: quantile(&samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
            per_sec: samples.len() as f64 / measured.as_secs_f64(),
        }
    }
}

/// The `q` quantile (nearest rank) of sorted samples.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// `clients` connections each sending `GET path` back to back: `warmup` unmeasured, then
/// `measure`. Every answer must be 200 with `expect_len` body bytes (`usize::MAX`: any length). Returns the measured
/// request latencies.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn closed_loop_get(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    headers: Vec<(String, String)>,
    path: String,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    expect_len: usize,
) -> Result<Vec<Duration>, String> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(Connection::open(port, tls.clone()).await?);
    }
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let headers = Arc::new(headers);
    let path = Arc::new(path);
    let mut tasks = Vec::with_capacity(clients);
    for mut conn in conns {
        let headers = headers.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(65_536);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let reply = conn.send("GET", &path, None, &headers).await?;
                let took = t.elapsed();
                if reply.status != 200
                    || (expect_len != usize::MAX && reply.body.len() != expect_len)
                {
                    return Err(format!(
                        "GET {path}: {} with {} bytes (expected 200 with {expect_len})",
                        reply.status,
                        reply.body.len()
                    ));
                }
                if t >= measure_from {
                    samples.push(took);
                }
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// A request body template (a pod or a ConfigMap) with `__NAME__` and `__SEQ__` to fill in;
/// the namespace comes from the URL, so one template serves every namespace.
pub(crate) struct BodyTemplate {
    text: String,
}

impl BodyTemplate {
    /// A small pod shaped like a Deployment's (labels, an env var, a port, resources) with
    /// `padding` bytes in one annotation. Stored, it gains kube's defaults, `status` and
    /// `managedFields`, so its served size is larger than its body: see [`Self::calibrated`].
    pub(crate) fn new(padding: usize) -> Self {
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "__NAME__",
                "labels": {
                    "app": "checkout",
                    "bench-seq": "__SEQ__"
                },
                "annotations": {
                    "bench/pad": "x".repeat(padding)
                }
            },
            "spec": {
                "containers": [{
                    "name": "checkout",
                    "image": "registry.example.com/payments/checkout:2.14.3",
                    "env": [
                        {"name": "DATABASE_HOST", "value": "postgres.payments.svc.cluster.local"}
                    ],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "250m"}}
                }]
            }
        });
        Self {
            text: pod.to_string(),
        }
    }

    /// A template whose pods are served at about `target` bytes in a namespace named like
    /// `namespace`: creates one probe pod in namespace `probe_ns` (which must exist) through
    /// `conn`, reads it back and pads the difference. Returns the template, its body size and
    /// the served size of the unpadded pod.
    pub(crate) async fn calibrated(
        conn: &mut Connection,
        token: &str,
        probe_ns: &str,
        namespace: &str,
        target: usize,
    ) -> Result<(Self, usize, usize), String> {
        let probe = Self::new(0);
        let name = pod_name("probe", 0);
        let headers = auth(token);
        let created = conn
            .send(
                "POST",
                &format!("/api/v1/namespaces/{probe_ns}/pods"),
                Some(&probe.body(&name, 0)),
                &headers,
            )
            .await?;
        if created.status != 201 {
            return Err(format!(
                "probe pod: {} {}",
                created.status,
                String::from_utf8_lossy(&created.body)
            ));
        }
        let served = conn
            .send(
                "GET",
                &format!("/api/v1/namespaces/{probe_ns}/pods/{name}"),
                None,
                &headers,
            )
            .await?;
        // Typical names and sequence numbers below are 6 digits; the probe's seq is 1 digit.
        let base = (served.body.len() + namespace.len() + 5).saturating_sub(probe_ns.len());
        let template = Self::new(target.saturating_sub(base));
        let body_len = template.body(&name, 100_000).len();
        Ok((template, body_len, base))
    }
    /// The same pods with a `schedulerName` no scheduler serves: neither server's scheduler
    /// touches them, so one creation is one watch event on both (ours marks an unschedulable
    /// pod at once; kube-apiserver runs without a scheduler beside it).
    pub(crate) fn unscheduled(&self) -> Self {
        let mut pod: serde_json::Value =
            serde_json::from_str(&self.text).expect("templates are JSON");
        if let Some(spec) = pod.get_mut("spec").and_then(|s| s.as_object_mut()) {
            spec.insert(
                "schedulerName".to_string(),
                serde_json::Value::from("bench-unscheduled"),
            );
        }
        Self {
            text: pod.to_string(),
        }
    }

    /// A ConfigMap with `data_bytes` bytes of data (the create figure's "~1 KB ConfigMaps").
    pub(crate) fn config_map(data_bytes: usize) -> Self {
        let map = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "__NAME__", "labels": {"bench-seq": "__SEQ__"}},
            "data": {"payload": "x".repeat(data_bytes)}
        });
        Self {
            text: map.to_string(),
        }
    }

    /// The body for object `name` with label `bench-seq=seq`.
    pub(crate) fn body(&self, name: &str, seq: usize) -> Vec<u8> {
        self.text
            .replacen("__NAME__", name, 1)
            .replacen("__SEQ__", &seq.to_string(), 1)
            .into_bytes()
    }
}

/// The pod name for index `i`.
pub(crate) fn pod_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:06}")
}

/// How a bulk creation ended.
pub(crate) struct Created {
    /// Pods answered 201.
    pub(crate) ok: usize,
    /// Wall time from the first request to the last answer.
    pub(crate) elapsed: Duration,
    /// The first answer that was not 201, if any stopped the run.
    pub(crate) stopped_by: Option<Reply>,
}

/// The pods collection of `namespace`.
pub(crate) fn pods_of(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods")
}

/// Makes the request body of object `(name, seq)`.
pub(crate) trait MakeBody: Send + Sync {
    fn make(&self, name: &str, seq: usize) -> Vec<u8>;
}

impl MakeBody for BodyTemplate {
    fn make(&self, name: &str, seq: usize) -> Vec<u8> {
        self.body(name, seq)
    }
}

/// Ready-made bodies, one per sequence number (the name is already in each).
impl MakeBody for Vec<Vec<u8>> {
    fn make(&self, _name: &str, seq: usize) -> Vec<u8> {
        self.get(seq).cloned().unwrap_or_default()
    }
}

/// Creates objects `prefix-<first..first+count>` from `template` by POSTing to `collection`
/// over `conns` connections. With `until_refused`, a non-201 answer stops the run quietly (it
/// is returned in `stopped_by`); otherwise it is an error.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_objects(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: &str,
    collection: &str,
    template: Arc<dyn MakeBody>,
    prefix: &str,
    first: usize,
    count: usize,
    conns: usize,
    until_refused: bool,
) -> Result<Created, String> {
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Connection::open(port, tls.clone()).await?);
    }
    let next = Arc::new(AtomicUsize::new(first));
    let ok = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let headers = Arc::new(auth(token));
    let path = Arc::new(collection.to_string());
    let prefix = Arc::new(prefix.to_string());
    let end = first + count;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for mut conn in opened {
        let (next, ok, stop) = (next.clone(), ok.clone(), stop.clone());
        let (headers, path, prefix, template) = (
            headers.clone(),
            path.clone(),
            prefix.clone(),
            template.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let body = template.make(&pod_name(&prefix, i), i);
                let reply = conn.send("POST", &path, Some(&body), &headers).await?;
                if reply.status == 201 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    stop.store(true, Ordering::Relaxed);
                    return Ok::<_, String>(Some(reply));
                }
            }
            Ok(None)
        }));
    }
    let mut stopped_by = None;
    for task in tasks {
        if let Some(reply) = task.await.map_err(|e| e.to_string())?? {
            stopped_by.get_or_insert(reply);
        }
    }
    let elapsed = start.elapsed();
    if let (false, Some(reply)) = (until_refused, &stopped_by) {
        return Err(format!(
            "create answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    Ok(Created {
        ok: ok.load(Ordering::Relaxed),
        elapsed,
        stopped_by,
    })
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
