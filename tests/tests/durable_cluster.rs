//! The cluster survives its enclave (issue 16), end to end with the real binaries: `dev
//! --durable-log` routes every change core makes into the sealed durable log, and acknowledges
//! a write only once it is durable; `kill -9` of the enclave (dev restarts it) brings back every
//! object with the same uid, resourceVersion and bytes, every stake (workers keep heartbeating
//! with their Seal tokens), and revisions continue upward. A watch from a revision the log holds
//! continues; one from a revision no run made durable gets 410.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::Value;

fn cluster() -> DevCluster {
    DevCluster::start_opts(
        &["--durable-log"],
        &[
            &package_arg(&DEFAULT_PACKAGE),
            "--min-stake=1000000000",
            "--node-grace-secs=60",
        ],
    )
}

fn json(c: &DevCluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl prints JSON")
}

/// The objects a test compares across restarts, whole.
fn snapshot(c: &DevCluster) -> Vec<Value> {
    let mut items = Vec::new();
    for kind in [
        "configmaps",
        "secrets",
        "services",
        "deployments",
        "pods",
        "nodes",
    ] {
        let list = json(c, &[kind, "-A"]);
        items.extend(list["items"].as_array().cloned().unwrap_or_default());
    }
    items
}

fn list_revision(c: &DevCluster) -> u64 {
    let list: Value = serde_json::from_str(&c.kubectl_ok(&["get", "--raw", "/api/v1/configmaps"]))
        .expect("a list");
    list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("a list revision")
}

fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The events of a watch from `revision` that ends after a second.
fn watch_from(c: &DevCluster, revision: u64) -> Vec<Value> {
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={revision}&timeoutSeconds=1"
    );
    c.kubectl_ok(&["get", "--raw", &path])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a watch event"))
        .collect()
}

#[test]
fn objects_stakes_and_revisions_survive_kill_9_of_the_enclave() {
    let mut c = cluster();
    let sim = Simulator::start(
        &c,
        SimConfig {
            workers: 2,
            interval: Duration::from_millis(500),
            connections: 2,
            ..SimConfig::default()
        },
    )
    .expect("workers register");
    c.kubectl_ok(&[
        "create",
        "configmap",
        "kept",
        "--from-literal=k=DURABLE-PLAIN-MARKER",
    ]);
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "kept",
        "--from-literal=password=DURABLE-SECRET-MARKER",
    ]);
    c.kubectl_ok(&["create", "service", "nodeport", "kept", "--tcp=80:8080"]);
    c.kubectl_ok(&[
        "create",
        "deployment",
        "kept",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    wait_for(Duration::from_secs(30), "the deployment's pods", || {
        json(&c, &["pods", "-l", "app=kept"])["items"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    });
    let before = snapshot(&c);
    let revision = list_revision(&c);
    let heartbeats: Vec<u64> = sim.workers().iter().map(|w| w.ok_heartbeats()).collect();

    c.kill_enclave();

    // Every object is back, whole: same uid, same resourceVersion, same bytes.
    let after = snapshot(&c);
    for object in &before {
        let (kind, ns, name) = (
            object["kind"].as_str().unwrap_or(""),
            object["metadata"]["namespace"].as_str().unwrap_or(""),
            object["metadata"]["name"].as_str().unwrap_or(""),
        );
        let found = after.iter().find(|o| {
            o["kind"] == object["kind"]
                && o["metadata"]["namespace"] == object["metadata"]["namespace"]
                && o["metadata"]["name"] == object["metadata"]["name"]
        });
        let Some(found) = found else {
            panic!("{kind} {ns}/{name} is gone after the restart");
        };
        if kind == "Node" || kind == "Pod" {
            // Workers heartbeat meanwhile: their node and pods may have moved on, never back.
            assert_eq!(
                found["metadata"]["uid"], object["metadata"]["uid"],
                "{kind} {name}"
            );
            let rv = |o: &Value| {
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|r| r.parse::<u64>().ok())
            };
            assert!(rv(found) >= rv(object), "{kind} {name} went back");
        } else {
            assert_eq!(
                found, object,
                "{kind} {ns}/{name} changed across the restart"
            );
        }
    }
    // Revisions continue upward.
    let created = json(&c, &["configmap", "kept"]);
    assert_eq!(
        created["metadata"]["uid"],
        before_uid(&before, "ConfigMap", "kept")
    );
    c.kubectl_ok(&["create", "configmap", "after", "--from-literal=k=v"]);
    let after_rv: u64 = json(&c, &["configmap", "after"])["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("a revision");
    assert!(after_rv > revision, "{after_rv} is not above {revision}");
    // A watch from the revision before the crash continues: it sees the new ConfigMap, no 410.
    let events = watch_from(&c, revision);
    assert!(
        events.iter().all(|e| e["type"] != "ERROR")
            && events
                .iter()
                .any(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "after"),
        "{events:?}"
    );
    // A revision past what the log held was never durable: 410, so an informer re-lists. The
    // workers' heartbeats may have written a few revisions after `revision` before the kill;
    // the restart skipped `max_pending_changes` (100,000) past the last durable one, so one
    // 50,000 past `revision` lies in that gap.
    let phantom = watch_from(&c, revision + 50_000);
    assert!(
        phantom
            .first()
            .is_some_and(|e| e["type"] == "ERROR" && e["object"]["code"] == 410),
        "{phantom:?}"
    );
    // A new Service does not get the kept one's clusterIP or nodePort.
    c.kubectl_ok(&["create", "service", "nodeport", "fresh", "--tcp=80:8080"]);
    let kept = json(&c, &["service", "kept"]);
    let fresh = json(&c, &["service", "fresh"]);
    assert_ne!(kept["spec"]["clusterIP"], fresh["spec"]["clusterIP"]);
    assert_ne!(
        kept["spec"]["ports"][0]["nodePort"],
        fresh["spec"]["ports"][0]["nodePort"]
    );
    // A second restart replays the log across the first one's skipped revisions.
    c.kill_enclave();
    let second = json(&c, &["configmap", "after"]);
    assert_eq!(
        second["metadata"]["resourceVersion"].as_str(),
        Some(after_rv.to_string().as_str())
    );
    // The stakes came back: the workers' Seal tokens still admit their heartbeats.
    wait_for(
        Duration::from_secs(30),
        "heartbeats after the restart",
        || {
            sim.workers()
                .iter()
                .zip(&heartbeats)
                .all(|(w, before)| w.ok_heartbeats() > *before + 2 && w.last_status() == 200)
        },
    );
    // Nothing reached the host's disk in clear: not a value, not a Secret's (base64) data.
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::STANDARD.encode("DURABLE-SECRET-MARKER");
    for file in files(c.dir.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for marker in [b"DURABLE-PLAIN-MARKER".as_slice(), secret.as_bytes()] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{} holds {} in clear",
                file.display(),
                String::from_utf8_lossy(marker)
            );
        }
    }
}

fn before_uid(before: &[Value], kind: &str, name: &str) -> Value {
    before
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .map(|o| o["metadata"]["uid"].clone())
        .expect("kept object")
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_restart_starts_from_the_newest_snapshot_and_the_records_after_it() {
    let mut c = DevCluster::start_opts(&["--durable-log"], &["--snapshot-every=25"]);
    for i in 0..60 {
        c.kubectl_ok(&[
            "create",
            "configmap",
            &format!("cm-{i}"),
            &format!("--from-literal=i={i}"),
        ]);
    }
    wait_for(Duration::from_secs(30), "a snapshot", || {
        c.logs().contains("snapshot written")
    });
    let before = json(&c, &["configmaps"]);
    let revision = list_revision(&c);

    c.kill_enclave();

    let replayed = c
        .logs()
        .lines()
        .rev()
        .find(|l| l.contains("cluster state replayed"))
        .unwrap_or_default()
        .to_string();
    assert!(
        replayed
            .split("snapshot_revision=")
            .nth(1)
            .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit())),
        "the restart did not use the snapshot: {replayed}"
    );
    let records: usize = replayed
        .split("records=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the replay says how many records");
    assert!(
        records < 60,
        "{records} records replayed: the log was not cut at the snapshot"
    );
    let after = json(&c, &["configmaps"]);
    assert_eq!(
        after["items"], before["items"],
        "objects differ after the snapshot restore"
    );
    c.kubectl_ok(&["create", "configmap", "after-snapshot"]);
    assert!(list_revision(&c) > revision);
    // A watch from a revision before the snapshot's is no longer held: 410, and informers
    // re-list; one from the current revision continues.
    let events = watch_from(&c, revision);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "after-snapshot")
            || events.first().is_some_and(|e| e["object"]["code"] == 410),
        "{events:?}"
    );
}

/// Compaction as kube's: each tick is itself a durable write, so an idle cluster's revision
/// moves, a continue token expires within two intervals with 410 and a token that lists at a
/// newer revision, and after `kill -9` the revision continues past every tick's.
#[test]
fn compaction_moves_the_revision_durably_and_expires_continue_tokens() {
    let mut c = DevCluster::start_opts(&["--durable-log"], &["--compaction-interval=1s"]);
    for name in ["a", "b", "c"] {
        c.kubectl_ok(&["create", "configmap", name]);
    }
    let page: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?limit=1",
    ]))
    .expect("a page");
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    let first: u64 = page["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("the page's revision");
    let path = format!("/api/v1/namespaces/default/configmaps?limit=1&continue={token}");
    let mut expired = None;
    wait_for(Duration::from_secs(30), "the token's 410", || {
        let reply = c
            .request("GET", &path, None, &[])
            .expect("the server answers");
        if reply.status == 410 {
            expired = Some(reply.json());
            true
        } else {
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            false
        }
    });
    let status = expired.expect("a 410");
    assert_eq!(status["reason"], "Expired", "{status}");
    let latest = status["metadata"]["continue"]
        .as_str()
        .expect("the 410 carries a token");
    let rest: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?limit=5&continue={latest}"),
    ]))
    .expect("the rest");
    let names: Vec<&str> = rest["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["b", "c", "kube-root-ca.crt"]);
    let moved = rest["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse::<u64>().ok())
        .expect("a revision");
    assert!(
        moved > first,
        "nothing was written, yet compaction moved the revision: {first} -> {moved}"
    );
    let before = list_revision(&c);
    c.kill_enclave();
    assert!(
        list_revision(&c) > before,
        "the revision went backwards across kill -9"
    );
    c.kubectl_ok(&["create", "configmap", "after"]);
    assert_eq!(
        json(&c, &["configmaps"])["items"].as_array().map(Vec::len),
        Some(5)
    );
}

/// A GET of an object whose version is durable answers at once, though another object's write
/// still waits for its fsync (the host's disk stalls: `--storage-faults` with `fsync-stall`);
/// the write completes once the sync does.
#[test]
fn a_durable_object_is_read_while_another_write_waits_for_its_fsync() {
    let c = DevCluster::start_opts(&["--durable-log", "--storage-faults"], &[]);
    c.kubectl_ok(&["create", "configmap", "durable"]);
    let control = c.dir.path().join("storage-faults");
    let wal = c.dir.path().join("storage").join("wal");
    let before = stored_bytes(&wal);
    std::fs::write(&control, "fsync-stall\n").expect("write the fault file");
    let (port, ca, token) = (c.port, c.ca_pem.clone(), c.token.clone());
    let write = std::thread::spawn(move || {
        let headers = vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        let body: &[u8] = br#"{"metadata":{"name":"stalled"}}"#;
        nautilus_tests::client::blocking_request(
            port,
            &ca,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(body),
            &headers,
        )
        .map(|r| r.status)
    });
    // The write's record reaches the host's log (written; its sync stalls).
    wait_for(
        Duration::from_secs(30),
        "the write's record on the host",
        || stored_bytes(&wal) > before || write.is_finished(),
    );
    let started = std::time::Instant::now();
    let reply = c
        .request(
            "GET",
            "/api/v1/namespaces/default/configmaps/durable",
            None,
            &[],
        )
        .expect("the GET answers");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    if write.is_finished() {
        let outcome = write.join();
        panic!(
            "the write ended before its fsync: {outcome:?} (the GET took {:?})",
            started.elapsed()
        );
    }
    std::fs::remove_file(&control).expect("clear the fault");
    assert_eq!(write.join().expect("the write thread"), Ok(201));
}

/// The bytes of every file under `dir`.
fn stored_bytes(dir: &std::path::Path) -> u64 {
    files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}
