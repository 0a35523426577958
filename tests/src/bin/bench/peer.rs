//! `bench --only peer`: the same client code, objects and TLS setup (TLS 1.3, keep-alive)
//! against Nautilus in dev mode and against kube-apiserver on etcd (built from the Go modules
//! into `target/peers/` by `tests/peers/build.sh`), in alternating rounds, with ratios.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nautilus_tests::client::{Connection, tls_config};

use crate::load::{Latency, MakeBody, auth, closed_loop_get, create_objects, pods_of};

/// One server under test, as the clients see it.
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) port: u16,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) token: String,
    /// The processes whose memory is the server's (the enclave; kube-apiserver and etcd).
    pub(crate) pids: Vec<u32>,
    /// The processes whose CPU serves the clients (the enclave and the proxy; kube-apiserver
    /// and etcd).
    pub(crate) cpu_pids: Vec<u32>,
}

impl Server {
    pub(crate) fn new(
        name: &'static str,
        port: u16,
        ca_pem: &[u8],
        token: &str,
        pids: Vec<u32>,
        cpu_pids: Vec<u32>,
    ) -> Self {
        Self {
            name,
            port,
            tls: tls_config(ca_pem),
            token: token.to_string(),
            pids,
            cpu_pids,
        }
    }

    /// A dev cluster's side: its port, CA and admin token; the enclave's pid for memory, and
    /// the proxy's too for CPU.
    pub(crate) fn nautilus(name: &'static str, cluster: &nautilus_tests::DevCluster) -> Self {
        let enclave: Vec<u32> = cluster.enclave_pid().into_iter().collect();
        let mut both = enclave.clone();
        both.push(cluster.pid());
        Self::new(
            name,
            cluster.port,
            &cluster.ca_pem,
            &cluster.token,
            enclave,
            both,
        )
    }

    /// kube-apiserver's side, on `etcd`: memory counts both processes.
    pub(crate) fn kube(
        kube: &nautilus_tests::peers::KubeApiServer,
        etcd: &nautilus_tests::peers::Etcd,
    ) -> Self {
        Self::new(
            "kube-apiserver",
            kube.port,
            &kube.ca_pem,
            &kube.token,
            vec![kube.pid(), etcd.pid()],
            vec![kube.pid(), etcd.pid()],
        )
    }

    /// Resident memory of all its processes together, in kB.
    pub(crate) fn rss_kb(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|&pid| crate::proc_status_kb(pid, "VmRSS:"))
            .sum()
    }

    /// One request with the admin token on a fresh connection; the answer's status must be one
    /// of `ok`.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        ok: &[u16],
    ) -> Result<nautilus_tests::client::Reply, String> {
        let mut conn = Connection::open(self.port, self.tls.clone()).await?;
        let reply = conn.send(method, path, body, &auth(&self.token)).await?;
        if !ok.contains(&reply.status) {
            return Err(format!(
                "{}: {method} {path}: {} {}",
                self.name,
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        Ok(reply)
    }

    /// A namespace and its `default` ServiceAccount (kube-apiserver alone has no controller to
    /// make one, and its ServiceAccount admission refuses pods without it).
    pub(crate) async fn prepare(&self, namespace: &str) -> Result<(), String> {
        let ns = format!(
            r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{namespace}"}}}}"#
        );
        self.call(
            "POST",
            "/api/v1/namespaces",
            Some(ns.as_bytes()),
            &[201, 409],
        )
        .await?;
        let sa = br#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}"#;
        self.call(
            "POST",
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            Some(sa),
            &[201, 409],
        )
        .await?;
        Ok(())
    }

    /// Closed-loop GETs of `path` by `clients` connections.
    pub(crate) async fn gets(
        &self,
        path: &str,
        clients: usize,
        warmup: Duration,
        phase: Duration,
    ) -> Result<Vec<Duration>, String> {
        closed_loop_get(
            self.port,
            self.tls.clone(),
            auth(&self.token),
            path.to_string(),
            clients,
            warmup,
            phase,
            usize::MAX,
        )
        .await
    }

    /// Creates `count` objects from `template` in `collection` over `conns` connections;
    /// returns objects per second.
    pub(crate) async fn creates(
        &self,
        collection: &str,
        template: Arc<dyn MakeBody>,
        prefix: &str,
        count: usize,
        conns: usize,
    ) -> Result<f64, String> {
        let created = create_objects(
            self.port,
            self.tls.clone(),
            &self.token,
            collection,
            template,
            prefix,
            0,
            count,
            conns,
            false,
        )
        .await?;
        Ok(created.ok as f64 / created.elapsed.as_secs_f64())
    }

    /// Median time and body size of `runs` LISTs of the `bench` pods with `accept`.
    pub(crate) async fn list(
        &self,
        accept: &str,
        runs: usize,
    ) -> Result<(Duration, usize), String> {
        let mut conn = Connection::open(self.port, self.tls.clone()).await?;
        crate::timed_get(&mut conn, &self.token, &pods_of("bench"), accept, runs).await
    }

    /// The pods' current list revision in `namespace`, for a watch that starts there.
    pub(crate) async fn list_revision(&self, namespace: &str) -> Result<String, String> {
        let reply = self
            .call(
                "GET",
                &format!("/api/v1/namespaces/{namespace}/pods?limit=1"),
                None,
                &[200],
            )
            .await?;
        reply
            .json()
            .pointer("/metadata/resourceVersion")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{}: LIST has no resourceVersion", self.name))
    }
}

/// Samples of both servers gathered over alternating rounds, so that a noisy moment of the
/// machine falls on both.
pub(crate) async fn alternating_gets(
    servers: &[&Server; 2],
    path: &str,
    clients: usize,
    rounds: usize,
    warmup: Duration,
    phase: Duration,
) -> Result<[Latency; 2], String> {
    let mut samples: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut measured = [Duration::ZERO; 2];
    for _ in 0..rounds {
        for (i, server) in servers.iter().enumerate() {
            let t = Instant::now();
            let got = server.gets(path, clients, warmup, phase).await?;
            let spent = t.elapsed().saturating_sub(warmup);
            if let (Some(all), Some(m)) = (samples.get_mut(i), measured.get_mut(i)) {
                all.extend(got);
                *m += spent;
            }
        }
    }
    let [a, b] = samples;
    let [ma, mb] = measured;
    Ok([Latency::of(a, ma), Latency::of(b, mb)])
}

/// `ours / theirs` as "N.NN×".
pub(crate) fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 {
        format!("{:.2}×", ours / theirs)
    } else {
        "n/a".into()
    }
}

/// Schedules `pods` pods onto `nodes` nodes (the `sched_bench` workload, same seed) on
/// `server`, whose scheduler must be running (kube-scheduler may start before the nodes exist;
/// it watches them arrive): creates the nodes (lifting the `not-ready` taint
/// kube's admission adds to a new Node), then the pods over 32 connections while a watcher
/// notes when each is first seen bound. Returns (bound pods, seconds from the first create to
/// the last binding).
pub(crate) async fn schedule(
    server: &Server,
    nodes: usize,
    pods: usize,
) -> Result<(usize, f64), String> {
    use nautilus_tests::workload::{Rng, node, pod};
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let node_bodies: Vec<serde_json::Value> = (0..nodes).map(|i| node(&mut rng, i)).collect();
    // Without owners: ours runs a garbage collector that would delete pods of ReplicaSets that
    // do not exist, kube-apiserver alone does not.
    let pod_bodies: Vec<Vec<u8>> = (0..pods)
        .map(|i| {
            let mut p = pod(&mut rng, i);
            if let Some(meta) = p.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("ownerReferences");
            }
            p.to_string().into_bytes()
        })
        .collect();
    let node_bytes: Vec<Vec<u8>> = node_bodies
        .iter()
        .map(|n| n.to_string().into_bytes())
        .collect();
    create_objects(
        server.port,
        server.tls.clone(),
        &server.token,
        "/api/v1/nodes",
        Arc::new(node_bytes),
        "node",
        0,
        nodes,
        8,
        false,
    )
    .await?;
    let mut conn = Connection::open(server.port, server.tls.clone()).await?;
    let mut headers = auth(&server.token);
    headers.push(("content-type".into(), "application/merge-patch+json".into()));
    for (i, n) in node_bodies.iter().enumerate() {
        let taints = serde_json::json!({"spec": {"taints": n["spec"]["taints"]}});
        let reply = conn
            .send(
                "PATCH",
                &format!("/api/v1/nodes/node-{i:04}"),
                Some(taints.to_string().as_bytes()),
                &headers,
            )
            .await?;
        if reply.status != 200 {
            return Err(format!(
                "{}: untaint node-{i:04}: {}",
                server.name, reply.status
            ));
        }
    }
    server.prepare("sched").await?;
    let revision = server.list_revision("sched").await?;
    let watch = crate::watch::open(
        server.port,
        server.tls.clone(),
        &server.token,
        &format!(
            "/api/v1/namespaces/sched/pods?watch=true&resourceVersion={}",
            crate::encode_query(&revision)
        ),
    )
    .await?;
    let watcher = tokio::spawn(watch.collect_bound(pods, Duration::from_secs(15)));
    let start = Instant::now();
    create_objects(
        server.port,
        server.tls.clone(),
        &server.token,
        &pods_of("sched"),
        Arc::new(pod_bodies),
        "pod",
        0,
        pods,
        32,
        false,
    )
    .await?;
    let bound = watcher.await.map_err(|e| e.to_string())?;
    let last = bound
        .iter()
        .map(|(_, at)| at.saturating_duration_since(start))
        .max()
        .unwrap_or_default();
    Ok((bound.len(), last.as_secs_f64()))
}
