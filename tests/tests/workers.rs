//! Stakers join as workers, end to end with the real binaries: simulated stakers register with
//! Seal tokens for stakes the enclave learned from pushed Sui events, heartbeat (the seed's way
//! and by renewing their Lease), are seen by the real `kubectl`, run the pods bound to them, are
//! held to their own objects (NodeRestriction), turn Ready=Unknown when they stop, and lose their
//! node when their stake goes.

use std::time::{Duration, Instant};

use nautilus_core::token::{SealClaims, hex32, mint_ed25519};
use nautilus_tests::DevCluster;
use nautilus_tests::client::Reply;
use nautilus_tests::simulator::{
    DEFAULT_PACKAGE, HeartbeatMode, SimConfig, Simulator, deposit_event, fresh_digest,
    heartbeat_body, now_secs, package_arg, random32, register_body, slash_event, withdraw_event,
};
use serde_json::{Value, json};

const SUI: u64 = 1_000_000_000;

fn cluster(grace_secs: u64) -> DevCluster {
    DevCluster::start_with(&[
        &package_arg(&DEFAULT_PACKAGE),
        "--min-stake=1000000000",
        &format!("--node-grace-secs={grace_secs}"),
    ])
}

fn config(workers: usize, interval_ms: u64) -> SimConfig {
    SimConfig {
        workers,
        interval: Duration::from_millis(interval_ms),
        connections: 4,
        ..SimConfig::default()
    }
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn get_json(c: &DevCluster, path: &str) -> Value {
    let reply = c.request("GET", path, None, &[]).unwrap();
    assert_eq!(reply.status, 200, "GET {path}: {}", text(&reply));
    reply.json()
}

fn node(c: &DevCluster, name: &str) -> Value {
    get_json(c, &format!("/api/v1/nodes/{name}"))
}

fn ready(node: &Value) -> String {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("missing")
        .to_string()
}

fn taints(node: &Value) -> Vec<(String, String)> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or("").to_string(),
                t["effect"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Polls `check` every 100 ms until it is true or `limit` passes; returns when it became true.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seed's error JSON: `{"status":"error","code":<the HTTP status>,"reason","message"}`.
#[track_caller]
fn assert_seed_error(reply: &Reply, status: u16, reason: &str, message_has: &str) {
    assert_eq!(reply.status, status, "{}", text(reply));
    let body = reply.json();
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], status, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.to_lowercase().contains(&message_has.to_lowercase()),
        "message {message:?} should mention {message_has:?}"
    );
}

/// kube-apiserver's Forbidden Status: `<resource> "<name>" is forbidden: <why>`, `why` starting
/// starting with `User "system:node:...` from the authorizer, or naming the node (admission).
#[track_caller]
fn assert_forbidden(reply: &Reply, subject: &str) {
    assert_eq!(reply.status, 403, "{}", text(reply));
    let body = reply.json();
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["reason"], "Forbidden", "{body}");
    assert_eq!(body["code"], 403, "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(&format!("{subject} is forbidden: User \"system:node:"))
            || (message.starts_with(&format!("{subject} is forbidden: "))
                && message.contains("node \"sim-00000\"")),
        "message {message:?} should start with {subject} is forbidden"
    );
}

#[track_caller]
fn create(c: &DevCluster, manifest: &str) {
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "kubectl create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn seed_post(sim: &Simulator, endpoint: &str, header: Option<&str>, body: &[u8]) -> Reply {
    let headers: Vec<(String, String)> = header
        .map(|t| vec![("x-seal-token".to_string(), t.to_string())])
        .unwrap_or_default();
    sim.raw_request("POST", &format!("/api/v1/{endpoint}"), Some(body), &headers)
        .unwrap()
}

#[test]
fn three_workers_register_and_kubectl_shows_them_ready() {
    let c = cluster(40);
    let sim = Simulator::start(&c, config(3, 2_000)).unwrap();
    let out = c.kubectl_ok(&["get", "nodes"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS"),
        "{out}"
    );
    for w in sim.workers() {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(w.node.as_str()))
            .unwrap_or_else(|| panic!("{} missing from:\n{out}", w.node));
        assert_eq!(line.split_whitespace().nth(1), Some("Ready"), "{out}");
    }
    assert_eq!(lines.len(), 4, "{out}");
    for w in sim.workers() {
        let n: Value =
            serde_json::from_str(&c.kubectl_ok(&["get", "node", &w.node, "-o", "json"])).unwrap();
        let annotations = &n["metadata"]["annotations"];
        assert_eq!(
            annotations["nautilus.io/staker-address"],
            w.owner.as_str(),
            "{n}"
        );
        assert_eq!(
            annotations["nautilus.io/stake-id"],
            hex32(&w.stake_id).as_str(),
            "{n}"
        );
        assert!(
            annotations["nautilus.io/stake-trust-level"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{n}"
        );
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/hostname"],
            w.node.as_str()
        );
        assert_eq!(n["metadata"]["labels"]["nautilus.io/simulated"], "true");
        assert_eq!(n["status"]["capacity"]["cpu"], "4", "{n}");
        assert_eq!(n["status"]["allocatable"]["pods"], "110", "{n}");
        assert!(
            n["status"]["addresses"].as_array().is_some_and(|a| a
                .iter()
                .any(|x| x["type"] == "InternalIP" && x["address"] == w.ip.as_str())),
            "{n}"
        );
        let lease = c.kubectl_ok(&["get", "lease", "-n", "kube-node-lease", &w.node]);
        assert!(lease.contains(&w.node), "{lease}");
    }
    // `-o wide` shows the InternalIP column from the registered addresses.
    let wide = c.kubectl_ok(&["get", "nodes", "-o", "wide"]);
    assert!(wide.contains(&sim.worker(0).ip), "{wide}");
    assert_eq!(sim.stats().errors, 0, "{:?}", sim.error_samples());
}

#[test]
fn seed_heartbeats_and_lease_renewals_both_keep_a_node_ready() {
    let grace = 3;
    let c = cluster(grace);
    let sim = Simulator::new(c.port, &c.ca_pem, &c.token, config(2, 1_000)).unwrap();
    sim.stake_all().unwrap();
    sim.register_all().unwrap();
    sim.set_mode(1, HeartbeatMode::Lease);
    let mut sim = sim;
    sim.run();
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/sim-00001";
    let renew_before = get_json(&c, lease_path)["spec"]["renewTime"].clone();
    // Two grace periods: a node that was not heartbeating would have gone Unknown.
    let until = Instant::now() + Duration::from_secs(2 * grace);
    while Instant::now() < until {
        for w in sim.workers() {
            let n = node(&c, &w.node);
            assert_eq!(ready(&n), "True", "{} left Ready: {n}", w.node);
            assert!(taints(&n).is_empty(), "{n}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for w in sim.workers() {
        assert!(
            w.ok_heartbeats() >= 6,
            "{} beat {} times",
            w.node,
            w.ok_heartbeats()
        );
        assert_eq!(w.last_status(), 200);
    }
    let renew_after = get_json(&c, lease_path)["spec"]["renewTime"].clone();
    assert_ne!(
        renew_before, renew_after,
        "the worker renewed its own Lease"
    );
    assert_eq!(sim.stats().errors, 0, "{:?}", sim.error_samples());
}

#[test]
fn a_killed_worker_turns_unknown_within_grace_and_comes_back() {
    let grace = 3;
    let c = cluster(grace);
    let cfg = SimConfig {
        watch_pods: true,
        ..config(2, 500)
    };
    let sim = Simulator::start(&c, cfg).unwrap();
    wait_for(Duration::from_secs(5), "first heartbeats", || {
        sim.worker(0).ok_heartbeats() > 0 && sim.worker(1).ok_heartbeats() > 0
    });
    // Two pods on the worker: one tolerates unreachability for 1 s, one for the default 300 s
    // (DefaultTolerationSeconds adds that at admission).
    let quick = POD.replace("\"web\"", "\"quick\"").replace(
        "\"containers\"",
        r#""tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":1}],"containers""#,
    );
    create(&c, &quick);
    create(&c, POD);
    let web = get_json(&c, "/api/v1/namespaces/default/pods/web");
    assert!(
        web["spec"]["tolerations"].as_array().is_some_and(|ts| {
            ts.iter().any(|t| {
                t["key"] == "node.kubernetes.io/unreachable" && t["tolerationSeconds"] == 300
            })
        }),
        "{web}"
    );
    sim.pause(0);
    // A heartbeat already in flight may still land: wait for it before taking the last one.
    std::thread::sleep(Duration::from_millis(200));
    let last = sim.worker(0).last_ok_at().unwrap();
    let went = wait_for(
        Duration::from_secs(grace + 3),
        "sim-00000 to leave Ready",
        || ready(&node(&c, "sim-00000")) != "True",
    );
    let after = went - last;
    eprintln!("Ready left True {after:?} after the last heartbeat (grace {grace} s)");
    assert!(
        after <= Duration::from_secs(grace + 1),
        "Ready=Unknown {after:?} after the last heartbeat (grace {grace} s)"
    );
    assert!(
        after >= Duration::from_millis(grace * 1000 - 500),
        "Ready=Unknown too early: {after:?} after the last heartbeat"
    );
    let n = node(&c, "sim-00000");
    assert_eq!(ready(&n), "Unknown", "{n}");
    let t = taints(&n);
    for effect in ["NoSchedule", "NoExecute"] {
        assert!(
            t.contains(&("node.kubernetes.io/unreachable".into(), effect.into())),
            "{t:?}"
        );
    }
    // The pod tolerating 1 s is evicted a second later: deleted gracefully, it terminates and
    // stays, for no kubelet is there to confirm. The one tolerating 300 s is untouched.
    let evicted = wait_for(Duration::from_secs(4), "quick evicted", || {
        get_json(&c, "/api/v1/namespaces/default/pods/quick")["metadata"]["deletionTimestamp"]
            .is_string()
    });
    let quick = get_json(&c, "/api/v1/namespaces/default/pods/quick");
    assert_eq!(
        quick["metadata"]["deletionGracePeriodSeconds"], 30,
        "{quick}"
    );
    assert!(
        quick["status"]["conditions"].as_array().is_some_and(|cs| cs
            .iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "DeletionByTaintManager")),
        "{quick}"
    );
    assert!(
        evicted - went <= Duration::from_millis(2_500),
        "{:?}",
        evicted - went
    );
    let web = get_json(&c, "/api/v1/namespaces/default/pods/web");
    assert!(web["metadata"]["deletionTimestamp"].is_null(), "{web}");
    let listed = c.kubectl_ok(&["get", "pods", "--no-headers"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("quick ") && l.contains("Terminating")),
        "{listed}"
    );
    // The other worker is unaffected.
    assert_eq!(ready(&node(&c, "sim-00001")), "True");
    let described = c.kubectl_ok(&["describe", "node", "sim-00000"]);
    assert!(described.contains("NodeNotReady"), "{described}");
    assert!(
        described.contains("node.kubernetes.io/unreachable"),
        "{described}"
    );
    let out = c.kubectl_ok(&["get", "node", "sim-00000"]);
    assert!(out.contains("NotReady"), "{out}");

    let reply = sim.resume(0).unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));
    wait_for(Duration::from_secs(3), "sim-00000 back to Ready", || {
        let n = node(&c, "sim-00000");
        ready(&n) == "True" && taints(&n).is_empty()
    });
    // Back, its kubelet confirms the eviction: the terminating pod goes, the other stays.
    wait_for(Duration::from_secs(5), "quick gone", || {
        c.request("GET", "/api/v1/namespaces/default/pods/quick", None, &[])
            .unwrap()
            .status
            == 404
    });
    assert_eq!(
        get_json(&c, "/api/v1/namespaces/default/pods/web")["status"]["phase"],
        "Running"
    );
}

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},
"spec":{"nodeName":"sim-00000","containers":[{"name":"nginx","image":"nginx:1.27"}]}}"#;

#[test]
fn a_pod_bound_to_a_simulated_worker_runs() {
    let c = cluster(40);
    let cfg = SimConfig {
        watch_pods: true,
        ..config(2, 2_000)
    };
    let sim = Simulator::start(&c, cfg).unwrap();
    create(&c, POD);
    wait_for(Duration::from_secs(10), "web Running 1/1", || {
        let out = c.kubectl_ok(&["get", "pods"]);
        out.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&"web")
                && cells.get(1) == Some(&"1/1")
                && cells.get(2) == Some(&"Running")
        })
    });
    let pod = get_json(&c, "/api/v1/namespaces/default/pods/web");
    assert!(
        pod["status"]["podIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.")),
        "{pod}"
    );
    assert_eq!(pod["status"]["hostIP"], sim.worker(0).ip.as_str(), "{pod}");
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true, "{pod}");
    assert_eq!(cs["started"], true, "{pod}");
    assert!(cs["state"]["running"]["startedAt"].is_string(), "{pod}");
    let wide = c.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains("sim-00000"), "{wide}");
    // The other worker saw nothing of it.
    assert_eq!(sim.stats().pods_running, 1, "{:?}", sim.error_samples());
    c.kubectl_ok(&["delete", "pod", "web", "--wait=false"]);
    wait_for(Duration::from_secs(10), "web gone", || {
        c.request("GET", "/api/v1/namespaces/default/pods/web", None, &[])
            .unwrap()
            .status
            == 404
    });
    assert_eq!(sim.stats().watch_errors, 0, "{:?}", sim.error_samples());
}

#[test]
fn a_node_token_reaches_only_its_own_objects() {
    let c = cluster(40);
    let sim = Simulator::start(&c, config(2, 2_000)).unwrap();
    let a = |method: &str, path: &str, body: Option<&str>| {
        let ct = if method == "PATCH" {
            vec![("content-type", "application/merge-patch+json")]
        } else {
            vec![]
        };
        sim.request_as(0, method, path, body.map(str::as_bytes), &ct)
            .unwrap()
    };
    // A pod bound to B, so "B's pods" exist.
    let pod_b = POD.replace("sim-00000", "sim-00001");
    create(&c, &pod_b);
    let lease =
        |n: &str| format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{n}");
    let patch = r#"{"metadata":{"labels":{"x":"y"}}}"#;

    assert_forbidden(
        &a("GET", "/api/v1/nodes/sim-00001", None),
        r#"nodes "sim-00001""#,
    );
    assert_forbidden(
        &a("PATCH", "/api/v1/nodes/sim-00001", Some(patch)),
        r#"nodes "sim-00001""#,
    );
    assert_forbidden(
        &a(
            "PATCH",
            "/api/v1/nodes/sim-00001/status",
            Some(r#"{"status":{}}"#),
        ),
        r#"nodes "sim-00001""#,
    );
    assert_forbidden(
        &a("DELETE", "/api/v1/nodes/sim-00001", None),
        r#"nodes "sim-00001""#,
    );
    assert_forbidden(&a("GET", "/api/v1/nodes", None), "nodes");
    assert_forbidden(
        &a("GET", &lease("sim-00001"), None),
        r#"leases.coordination.k8s.io "sim-00001""#,
    );
    let their_lease = get_json(&c, &lease("sim-00001")).to_string();
    assert_forbidden(
        &a("PUT", &lease("sim-00001"), Some(&their_lease)),
        r#"leases.coordination.k8s.io "sim-00001""#,
    );
    assert_forbidden(&a("GET", "/api/v1/pods", None), "pods");
    assert_forbidden(&a("GET", "/api/v1/namespaces/default/pods", None), "pods");
    assert_forbidden(
        &a(
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dsim-00001",
            None,
        ),
        "pods",
    );
    assert_forbidden(
        &a("GET", "/api/v1/namespaces/default/pods/web", None),
        r#"pods "web""#,
    );
    assert_forbidden(
        &a(
            "PATCH",
            "/api/v1/namespaces/default/pods/web/status",
            Some(r#"{"status":{"phase":"Failed"}}"#),
        ),
        r#"pods "web""#,
    );
    let own_pod = POD.replace("\"web\"", "\"mine\"");
    assert_forbidden(
        &a("POST", "/api/v1/namespaces/default/pods", Some(&own_pod)),
        r#"pods "mine""#,
    );
    assert_forbidden(
        &a("GET", "/api/v1/namespaces/default/secrets", None),
        "secrets",
    );
    assert_forbidden(
        &a("GET", "/api/v1/namespaces/default/secrets/x", None),
        r#"secrets "x""#,
    );
    assert_forbidden(&a("GET", "/api/v1/namespaces", None), "namespaces");
    // B's pod is untouched.
    let web = get_json(&c, "/api/v1/namespaces/default/pods/web");
    assert!(web["status"]["phase"] != "Failed", "{web}");

    // kubectl, as the node, prints kube's Forbidden line.
    let token = sim.worker(0).token();
    let err = c.kubectl_err(&["--token", &token, "get", "node", "sim-00001"]);
    assert!(
        err.contains(r#"Error from server (Forbidden): nodes "sim-00001" is forbidden: User "system:node:sim-00000""#),
        "{err}"
    );

    // Its own objects.
    let own = a("GET", "/api/v1/nodes/sim-00000", None);
    assert_eq!(own.status, 200, "{}", text(&own));
    assert_eq!(own.json()["metadata"]["name"], "sim-00000");
    let patched = a(
        "PATCH",
        "/api/v1/nodes/sim-00000/status",
        Some(r#"{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}"#),
    );
    assert_eq!(patched.status, 200, "{}", text(&patched));
    assert_eq!(
        node(&c, "sim-00000")["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        10250
    );
    let own_lease = a("GET", &lease("sim-00000"), None);
    assert_eq!(own_lease.status, 200, "{}", text(&own_lease));
    let listed = a(
        "GET",
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dsim-00000",
        None,
    );
    assert_eq!(listed.status, 200, "{}", text(&listed));
    assert_eq!(listed.json()["items"].as_array().map(Vec::len), Some(0));
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "sim-00000.starting", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "sim-00000", "uid": "sim-00000"},
        "reason": "Starting", "message": "Starting kubelet.", "type": "Normal",
        "source": {"component": "kubelet", "host": "sim-00000"},
    })
    .to_string();
    let created = a("POST", "/api/v1/namespaces/default/events", Some(&event));
    assert_eq!(created.status, 201, "{}", text(&created));
}

#[test]
fn bad_seed_messages_are_refused_and_register_nothing() {
    let c = cluster(40);
    let sim = Simulator::new(c.port, &c.ca_pem, &c.token, config(1, 10_000)).unwrap();
    sim.stake_all().unwrap();
    let w = sim.worker(0);
    let now = now_secs();
    let good = w.mint_for(&w.node, now, now + 3600);
    let body = |token: &str, ts: u64| register_body(&w.node, token, ts, None);

    // Forged: the signature's bytes changed.
    let (head, sig) = good.rsplit_once('.').unwrap();
    let mut sig: Vec<u8> = sig.bytes().collect();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}.{}", String::from_utf8(sig).unwrap());
    let reply = seed_post(&sim, "register-worker", Some(&forged), &body(&forged, now));
    assert_seed_error(&reply, 401, "Unauthorized", "signature");

    // A key that does not own the stake signs a token for it.
    let thief = random32();
    let stolen = mint_ed25519(
        &thief,
        &SealClaims {
            node_id: w.node.clone(),
            stake_id: w.stake_id,
            iat: now,
            exp: now + 3600,
        },
    );
    let reply = seed_post(&sim, "register-worker", Some(&stolen), &body(&stolen, now));
    assert_seed_error(&reply, 401, "Unauthorized", "does not own");

    // A token for another node id.
    let other = w.mint_for("other-node", now, now + 3600);
    let reply = seed_post(&sim, "register-worker", Some(&other), &body(&other, now));
    assert_seed_error(&reply, 401, "Unauthorized", "another node");

    // Expired.
    let expired = w.mint_for(&w.node, now - 7200, now - 3600);
    let reply = seed_post(
        &sim,
        "register-worker",
        Some(&expired),
        &body(&expired, now),
    );
    assert_seed_error(&reply, 401, "Unauthorized", "expired");

    // Unknown stake.
    let unknown = mint_ed25519(
        &w.secret,
        &SealClaims {
            node_id: w.node.clone(),
            stake_id: random32(),
            iat: now,
            exp: now + 3600,
        },
    );
    let reply = seed_post(
        &sim,
        "register-worker",
        Some(&unknown),
        &body(&unknown, now),
    );
    assert_seed_error(&reply, 401, "Unauthorized", "unknown");

    // A registration replayed ten minutes later (skew is 5 min).
    let reply = seed_post(
        &sim,
        "register-worker",
        Some(&good),
        &body(&good, now - 600),
    );
    assert_seed_error(&reply, 401, "Unauthorized", "timestamp");

    // X-Seal-Token missing, or not the body's token.
    let reply = seed_post(&sim, "register-worker", None, &body(&good, now));
    assert_seed_error(&reply, 401, "Unauthorized", "X-Seal-Token");
    let second = w.mint_for(&w.node, now, now + 1800);
    let reply = seed_post(&sim, "register-worker", Some(&second), &body(&good, now));
    assert_seed_error(&reply, 401, "Unauthorized", "differ");

    // Malformed JSON, and a body without the fields.
    let reply = seed_post(
        &sim,
        "register-worker",
        Some(&good),
        b"{\"node_id\": \"sim-00000\",",
    );
    assert_seed_error(&reply, 400, "BadRequest", "");
    let reply = seed_post(&sim, "register-worker", Some(&good), b"{\"node\":1}");
    assert_seed_error(&reply, 400, "BadRequest", "");

    // A heartbeat for a node that never registered.
    let reply = seed_post(
        &sim,
        "heartbeat",
        Some(&good),
        &heartbeat_body(&w.node, &good, now),
    );
    assert!((400..500).contains(&reply.status), "{}", text(&reply));
    assert_eq!(reply.json()["status"], "error");

    // The forged token is no bearer token either.
    let reply = sim
        .raw_request(
            "GET",
            "/api/v1/nodes/sim-00000",
            None,
            &[("authorization".into(), format!("Bearer {forged}"))],
        )
        .unwrap();
    assert_eq!(reply.status, 401, "{}", text(&reply));

    // Nothing was registered.
    assert_eq!(get_json(&c, "/api/v1/nodes")["items"], json!([]));
    assert_eq!(
        get_json(
            &c,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        )["items"],
        json!([])
    );
    // And the good token still registers.
    let reply = seed_post(&sim, "register-worker", Some(&good), &body(&good, now));
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.json()["status"], "registered");
    assert_eq!(reply.json()["node_id"], "sim-00000");
}

#[test]
fn a_withdrawn_or_slashed_stake_loses_its_node() {
    let c = cluster(40);
    let sim = Simulator::start(&c, config(3, 1_000)).unwrap();
    // A pod on worker 0 without a toleration for the revocation taint.
    create(&c, POD);
    let answer = sim.withdraw(0).unwrap();
    assert_eq!(answer["applied"], 1, "{answer}");
    let reply = sim.heartbeat_once(0).unwrap();
    assert_eq!(reply.status, 401, "{}", text(&reply));
    let body = reply.json();
    assert!(
        body["message"].as_str().unwrap_or("").contains("withdrawn"),
        "{body}"
    );
    // Its token no longer opens the Kubernetes API either.
    let own = sim
        .request_as(0, "GET", "/api/v1/nodes/sim-00000", None, &[])
        .unwrap();
    assert_eq!(own.status, 401, "{}", text(&own));
    let n = node(&c, "sim-00000");
    assert!(
        taints(&n).contains(&("nautilus.io/stake-revoked".into(), "NoExecute".into())),
        "{n}"
    );
    assert_eq!(n["spec"]["unschedulable"], true, "{n}");
    // Evicted gracefully: it terminates, and with its node's token refused no kubelet of that
    // node can confirm; an operator's force delete (or the node's deletion) ends it.
    wait_for(
        Duration::from_secs(5),
        "the pod on the revoked node evicted",
        || {
            get_json(&c, "/api/v1/namespaces/default/pods/web")["metadata"]["deletionTimestamp"]
                .is_string()
        },
    );
    c.kubectl_ok(&["delete", "pod", "web", "--grace-period=0", "--force"]);
    assert_eq!(
        c.request("GET", "/api/v1/namespaces/default/pods/web", None, &[])
            .unwrap()
            .status,
        404
    );
    let out = c.kubectl_ok(&["get", "node", "sim-00000"]);
    assert!(out.contains("SchedulingDisabled"), "{out}");

    // Slashed from 2 SUI to 1.5: still above the minimum.
    sim.slash(2, SUI / 2).unwrap();
    assert_eq!(sim.heartbeat_once(2).unwrap().status, 200);
    // Slashed from 2 SUI to 0.5: below it.
    sim.slash(1, 3 * SUI / 2).unwrap();
    let reply = sim.heartbeat_once(1).unwrap();
    assert_eq!(reply.status, 401, "{}", text(&reply));
    assert!(text(&reply).contains("slashed"), "{}", text(&reply));
    let n = node(&c, "sim-00001");
    assert_eq!(n["spec"]["unschedulable"], true, "{n}");
    assert_eq!(ready(&node(&c, "sim-00002")), "True");
    assert!(node(&c, "sim-00002")["spec"]["unschedulable"] != true);
}

#[test]
fn duplicate_and_out_of_order_pushes_apply_once() {
    let c = cluster(40);
    let sim = Simulator::new(c.port, &c.ca_pem, &c.token, config(1, 10_000)).unwrap();
    let w = sim.worker(0);
    let pkg = DEFAULT_PACKAGE;
    let deposit = deposit_event(&pkg, &fresh_digest(), &w.stake_id, &w.owner, 2 * SUI);
    let foreign = deposit_event(&[0x77; 32], &fresh_digest(), &random32(), &w.owner, 5 * SUI);
    let first = sim.push_at(10, &[deposit.clone(), foreign]).unwrap();
    assert_eq!(first.status, 200, "{}", text(&first));
    assert_eq!(
        first.json(),
        json!({"status": "accepted", "applied": 1, "ignored": 1, "checkpoint": 10})
    );
    // The relay retries the same checkpoint.
    let again = sim
        .push_at(10, std::slice::from_ref(&deposit))
        .unwrap()
        .json();
    assert_eq!(again["applied"], 0, "{again}");
    assert_eq!(again["ignored"], 1, "{again}");

    // A slash of 0.6 SUI, pushed twice at its checkpoint: applied twice it would leave 0.8 SUI,
    // below the minimum; once, 1.4 SUI.
    let slash = slash_event(&pkg, &fresh_digest(), &w.stake_id, &w.owner, 6 * SUI / 10);
    let once = sim
        .push_at(11, std::slice::from_ref(&slash))
        .unwrap()
        .json();
    assert_eq!(once["applied"], 1, "{once}");
    let twice = sim
        .push_at(11, std::slice::from_ref(&slash))
        .unwrap()
        .json();
    assert_eq!(twice["applied"], 0, "{twice}");
    assert_eq!(twice["checkpoint"], 11, "{twice}");

    // An older checkpoint arriving late is ignored whole, withdrawal included.
    let late = withdraw_event(&pkg, &fresh_digest(), &w.stake_id, &w.owner);
    let stale = sim.push_at(9, &[late]).unwrap().json();
    assert_eq!(stale["applied"], 0, "{stale}");
    assert_eq!(stale["ignored"], 1, "{stale}");
    assert_eq!(stale["checkpoint"], 11, "{stale}");

    // The stake is live with 1.4 SUI: the worker registers and heartbeats.
    let reply = sim.register_one(0).unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(sim.heartbeat_once(0).unwrap().status, 200);
    let n = node(&c, "sim-00000");
    assert_eq!(
        n["metadata"]["annotations"]["nautilus.io/stake-id"],
        hex32(&w.stake_id).as_str()
    );

    // Only the credentialed may push.
    let anon = sim
        .raw_request(
            "POST",
            "/api/v1/sui-events",
            Some(br#"{"checkpoint":12,"events":[]}"#),
            &[],
        )
        .unwrap();
    assert!(matches!(anon.status, 401 | 403), "{}", text(&anon));
    let as_node = sim
        .request_as(
            0,
            "POST",
            "/api/v1/sui-events",
            Some(br#"{"checkpoint":12,"events":[]}"#),
            &[],
        )
        .unwrap();
    assert!(matches!(as_node.status, 401 | 403), "{}", text(&as_node));
}
