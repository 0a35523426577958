//! Issue 17: `nautilus-proxy dev --replicas 3` keeps one cluster on three enclave replicas
//! (openraft over the attested mesh, each replica on its own sealed log). The test drives the
//! real processes: clients through the proxy, and each replica directly on its own socket (as
//! a proxy would), so that a follower's forwarding and read index are exercised too.
//!
//! It `kill -9`s the leader, measures how long until a write through the proxy succeeds
//! again, checks that a watch on a surviving replica goes on without a gap, that the killed
//! replica comes back under a new id, catches up and serves what was written while it was
//! down, and then kills the new leader: the cluster only has a majority if the restarted
//! replica voted, so writes going on proves it rejoined as a voter. Every acknowledged write
//! must be on every replica at the end, and again after the whole cluster stopped and started
//! (a cold start from the sealed logs).

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, promtool_check, signal};
use serde_json::{Value, json};

const REPLICAS: usize = 3;
const NAMESPACE: &str = "default";

/// One request on the replica's own socket (as a proxy would send it), with the admin token;
/// the status and body.
fn on_replica(
    cluster: &DevCluster,
    slot: usize,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    let body = body.map(Value::to_string);
    cluster.replica_request_within(
        slot,
        method,
        path,
        body.as_deref().map(str::as_bytes),
        Duration::from_secs(30),
    )
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// The slot whose replica says it leads.
fn leader(cluster: &DevCluster) -> Option<usize> {
    (0..REPLICAS).find(|&slot| {
        cluster
            .replica_line(slot)
            .is_some_and(|l| l.starts_with("[+]") && field(&l, "role") == Some("leader"))
    })
}

/// Waits until every replica is a ready voter (one leader and followers: two leaders would
/// be two clusters) and returns the leader's slot.
fn wait_for_voters(cluster: &DevCluster, what: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let lines: Vec<Option<String>> = (0..REPLICAS).map(|s| cluster.replica_line(s)).collect();
        let voters = lines
            .iter()
            .flatten()
            .filter(|l| {
                l.starts_with("[+]") && matches!(field(l, "role"), Some("leader" | "follower"))
            })
            .count();
        let leaders = lines
            .iter()
            .flatten()
            .filter(|l| field(l, "role") == Some("leader"))
            .count();
        if voters == REPLICAS
            && leaders == 1
            && let Some(leader) = leader(cluster)
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the replicas did not all become voters: {lines:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the Deployment `web`'s ReplicaSet asks for `replicas` pods.
fn wait_for_replica_set(cluster: &DevCluster, replicas: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster.kubectl(&["get", "replicasets", "-l", "app=web", "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let asked: Vec<u64> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|rs| rs["spec"]["replicas"].as_u64())
            .collect();
        if asked == [replicas] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the Deployment's ReplicaSet never asked for {replicas} pods: {asked:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}})
}

/// Creates ConfigMap `name` through the proxy; true when acknowledged (201).
fn create(cluster: &DevCluster, name: &str) -> bool {
    let body = config_map(name).to_string();
    cluster
        .request(
            "POST",
            &format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
            Some(body.as_bytes()),
            &[("content-type", "application/json")],
        )
        .is_ok_and(|r| r.status == 201)
}

/// Creates `name` through the proxy, retrying until it is acknowledged; how long it took.
/// A retry after an unknown outcome may find it exists (409): then it was applied.
fn create_until_acknowledged(cluster: &DevCluster, name: &str) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    loop {
        let body = config_map(name).to_string();
        let status = cluster
            .request(
                "POST",
                &format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
                Some(body.as_bytes()),
                &[("content-type", "application/json")],
            )
            .map(|r| r.status);
        if matches!(status, Ok(201 | 409)) {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded within 60 s (last: {status:?})\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ConfigMap names a replica serves (a linearizable LIST on its own socket).
fn names_on(cluster: &DevCluster, slot: usize) -> Result<Vec<String>, String> {
    let (status, body) = on_replica(
        cluster,
        slot,
        "GET",
        &format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
        None,
    )?;
    if status != 200 {
        return Err(format!("LIST on slot {slot}: {status} {body}"));
    }
    let list: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .filter(|n| n.starts_with("rep-"))
        .collect();
    names.sort();
    Ok(names)
}

/// Kills the replica in `slot` with SIGKILL and returns its old pid.
fn kill(cluster: &DevCluster, slot: usize) -> u32 {
    let pid = cluster.replica_pid(slot).expect("the replica's pid file");
    signal(pid, libc::SIGKILL);
    pid
}

/// A watch on one replica's socket, its bytes collected by a thread.
fn watch_on(cluster: &DevCluster, slot: usize, from: &str) -> Arc<Mutex<Vec<u8>>> {
    let socket = cluster.replica_dir(slot).join("enclave.sock");
    let mut stream = UnixStream::connect(socket).expect("the replica's socket");
    let request = format!(
        "{}GET /api/v1/namespaces/{NAMESPACE}/configmaps?watch=true&resourceVersion={from} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        nautilus_wire::preamble::line("", &[]),
        cluster.token,
    );
    stream.write_all(request.as_bytes()).expect("watch request");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collected = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            collected
                .lock()
                .expect("watch bytes")
                .extend_from_slice(&buf[..n]);
        }
    });
    seen
}

/// The names the watch saw ADDED, in the order it saw them.
fn added(seen: &Mutex<Vec<u8>>) -> Vec<String> {
    let text = String::from_utf8_lossy(&seen.lock().expect("watch bytes")).to_string();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter(|event| event["type"] == "ADDED")
        .filter_map(|event| {
            event["object"]["metadata"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn three_replicas_keep_one_cluster_through_leader_kills_and_rejoins() {
    let cluster = DevCluster::start_opts(&["--replicas", "3"], &[]);
    let first_leader = wait_for_voters(&cluster, "start");
    let mut acknowledged: Vec<String> = Vec::new();
    for i in 0..20 {
        let name = format!("rep-a-{i:02}");
        assert!(create(&cluster, &name), "create {name}\n{}", cluster.logs());
        acknowledged.push(name);
    }

    // A follower serves linearizable reads (read index) and forwards writes to the leader.
    let follower = (0..REPLICAS).find(|&s| s != first_leader).unwrap();
    let (status, body) = on_replica(
        &cluster,
        follower,
        "GET",
        &format!("/api/v1/namespaces/{NAMESPACE}/configmaps/rep-a-19"),
        None,
    )
    .unwrap();
    assert_eq!(
        status, 200,
        "a follower reads what the leader just acknowledged: {body}"
    );
    let (status, body) = on_replica(
        &cluster,
        follower,
        "POST",
        &format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
        Some(&config_map("rep-b-forwarded")),
    )
    .unwrap();
    assert_eq!(status, 201, "a follower forwards a write: {body}");
    acknowledged.push("rep-b-forwarded".into());
    let created: Value = serde_json::from_str(&body).unwrap();
    let from = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let line = cluster.replica_line(follower).unwrap();
    assert!(
        field(&line, "forwarded").is_some_and(|n| n != "0"),
        "the follower counts what it forwarded: {line}"
    );

    // Each replica's metrics name its role; the leader's show each follower's lag.
    for slot in [first_leader, follower] {
        let (status, text) = on_replica(&cluster, slot, "GET", "/metrics", None).unwrap();
        assert_eq!(status, 200, "{text}");
        promtool_check("a replica's metrics", &text);
        let role = if slot == first_leader {
            "leader"
        } else {
            "follower"
        };
        assert!(
            text.contains(&format!("nautilus_replica_role{{role=\"{role}\"}} 1")),
            "slot {slot} says it is the {role}:\n{text}"
        );
        assert!(
            text.contains(&format!("nautilus_replica_slot {slot}")),
            "slot {slot}'s metrics name it"
        );
    }
    let (_, leader_metrics) = on_replica(&cluster, first_leader, "GET", "/metrics", None).unwrap();
    assert_eq!(
        leader_metrics
            .lines()
            .filter(|l| l.starts_with("nautilus_replica_lag_entries{"))
            .count(),
        REPLICAS - 1,
        "the leader reports each follower's lag:\n{leader_metrics}"
    );

    // The controllers run on the leader: a Deployment gets its ReplicaSet.
    cluster.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.k8s.io/pause:3.10",
    ]);
    wait_for_replica_set(&cluster, 1);

    // A watch on a replica that survives the first kill (the third slot).
    let survivor = (0..REPLICAS)
        .find(|&s| s != first_leader && s != follower)
        .unwrap();
    let watch = watch_on(&cluster, survivor, &from);

    // Kill the leader: a write succeeds again once a new leader is elected.
    let old_pid = kill(&cluster, first_leader);
    let failover = create_until_acknowledged(&cluster, "rep-c-after-kill");
    acknowledged.push("rep-c-after-kill".into());
    println!(
        "leader (slot {first_leader}) kill -9 -> first acknowledged write: {} ms",
        failover.as_millis()
    );
    // The new leader runs the controllers: scaling the Deployment reaches its ReplicaSet.
    cluster.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    wait_for_replica_set(&cluster, 3);
    for i in 0..20 {
        let name = format!("rep-d-{i:02}");
        create_until_acknowledged(&cluster, &name);
        acknowledged.push(name);
    }

    // The watch went on across the failover: each write after its start once, in order.
    let expected: Vec<String> = std::iter::once("rep-c-after-kill".to_string())
        .chain((0..20).map(|i| format!("rep-d-{i:02}")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = added(&watch);
        if seen == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watch on slot {survivor} saw {seen:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The killed replica is restarted by dev, joins under a new id, catches up, and serves
    // what was written while it was down.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster
        .replica_pid(first_leader)
        .is_none_or(|p| p == old_pid)
    {
        assert!(Instant::now() < deadline, "dev did not restart the replica");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second_leader = wait_for_voters(&cluster, "after the first kill");
    acknowledged.sort();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match names_on(&cluster, first_leader) {
            Ok(names) if names == acknowledged => break,
            other => assert!(
                Instant::now() < deadline,
                "the restarted replica does not serve every acknowledged write: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Kill the second leader: only the restarted replica's vote makes a majority now.
    assert_ne!(
        second_leader, first_leader,
        "a restarted replica is a follower first"
    );
    kill(&cluster, second_leader);
    let failover2 = create_until_acknowledged(&cluster, "rep-e-after-second-kill");
    acknowledged.push("rep-e-after-second-kill".into());
    println!(
        "second leader (slot {second_leader}) kill -9 -> first acknowledged write: {} ms",
        failover2.as_millis()
    );
    wait_for_voters(&cluster, "after the second kill");

    // Every acknowledged write is on every replica.
    acknowledged.sort();
    every_replica_serves(&cluster, &acknowledged, "after two leader kills");

    // The whole cluster stops and starts again (a cold start: no replica knows a leader):
    // the voters keep their sealed ids, elect from their sealed logs, and every acknowledged
    // write is there.
    let dir = cluster.stop();
    let cluster = DevCluster::start_in(dir, &["--replicas", "3"], &[]);
    wait_for_voters(&cluster, "after a cold start");
    create_until_acknowledged(&cluster, "rep-f-after-cold-start");
    acknowledged.push("rep-f-after-cold-start".into());
    acknowledged.sort();
    every_replica_serves(&cluster, &acknowledged, "after a cold start");

    // Slot 0's store comes back empty (a lost disk, or a host that wiped it) while it is
    // configured to bootstrap, as production's one configuration is: it must join the cluster
    // the others hold, not make a second, empty one beside it.
    let dir = cluster.stop();
    let store = dir.path().join("replica-0").join("storage");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::create_dir(&store).unwrap();
    std::fs::remove_file(dir.path().join("replicas-bootstrapped")).unwrap();
    let cluster = DevCluster::start_in(dir, &["--replicas", "3"], &[]);
    wait_for_voters(&cluster, "after slot 0's store was wiped");
    create_until_acknowledged(&cluster, "rep-g-after-wipe");
    acknowledged.push("rep-g-after-wipe".into());
    acknowledged.sort();
    every_replica_serves(&cluster, &acknowledged, "after slot 0's store was wiped");
    let logs = cluster.logs();
    assert!(
        logs.contains("it joins that cluster instead of making a new one"),
        "slot 0 says why it joined:\n{logs}"
    );
}

/// Waits until every replica's own LIST is exactly the `acknowledged` names (sorted).
fn every_replica_serves(cluster: &DevCluster, acknowledged: &[String], when: &str) {
    for slot in 0..REPLICAS {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match names_on(cluster, slot) {
                Ok(names) if names == acknowledged => break,
                other => assert!(
                    Instant::now() < deadline,
                    "{when}, slot {slot} does not serve every acknowledged write: {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
