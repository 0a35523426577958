//! KWOK against dev mode, small (issue 18's scale scenario at 20 Nodes and 200 pods; `bench
//! --full --only kwok` runs it at 1,000 and 10,000): KWOK's controller, with the admin
//! kubeconfig, takes over 20 fake Nodes (status, Leases every 10 s, status patches), and plays
//! the pods of four 50-replica Deployments Running and Ready; every pod is listed Running and
//! Ready with an IP on a fake Node, no Node was ever NotReady, every request KWOK made was
//! answered 2xx/3xx and KWOK logged no error. Then one Deployment scales down to 10: its
//! terminating pods are deleted by KWOK (`pod-delete`, as a kubelet ends them) until 10 remain.
//!
//! Builds KWOK with `tests/peers/build.sh` when Go is there (cached after the first build);
//! skips, saying so, when Go is missing and no KWOK was built.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::kwok::{self, NAMESPACE, Sizes};

/// Pods of `deployment` in the scale namespace: `(not terminating, all)`.
fn pods_of(c: &DevCluster, deployment: &str) -> (usize, usize) {
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{deployment}");
    let reply = c.request("GET", &path, None, &[]).expect("GET pods");
    assert_eq!(reply.status, 200, "GET {path}");
    let items = reply.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let live = items
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .count();
    (live, items.len())
}

#[test]
fn kwok_runs_deployments_on_fake_nodes() {
    let binary = match kwok::binary() {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!(
                "kwok_scale: SKIPPED: kwok is not built and `go` is not on the PATH to build it \
                 (tests/peers/build.sh kwok)"
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let c = DevCluster::start();
    let sizes = Sizes {
        nodes: 20,
        deployments: 4,
        replicas: 50,
        // Long enough for every Lease to be renewed at least once after the pods are up.
        hold: Duration::from_secs(12),
        limit: Duration::from_secs(120),
        verbose: true,
    };
    let (outcome, kwok) = match kwok::run(&c, &binary, &sizes) {
        Ok(done) => done,
        Err(e) => panic!("{e}\n--- dev (last lines) ---\n{}", tail(&c.logs(), 40)),
    };
    println!(
        "kwok_scale: {} Nodes Ready after {:.1} s; {} pods created after {:.1} s, Ready after {:.1} s; \
         Lease renewals p99 {:.2} ms ({}), Node status p99 {:.2} ms ({}); enclave {:.1} % of a core \
         while deploying, RSS {} kB",
        sizes.nodes,
        outcome.nodes_ready.as_secs_f64(),
        sizes.pods(),
        outcome.pods_created.as_secs_f64(),
        outcome.pods_ready.as_secs_f64(),
        outcome.lease_renewals.quantile(0.99).unwrap_or(f64::NAN) * 1e3,
        outcome.lease_renewals.count(),
        outcome.node_status.quantile(0.99).unwrap_or(f64::NAN) * 1e3,
        outcome.node_status.count(),
        outcome.enclave_cpu_deploy.unwrap_or(f64::NAN) * 100.0,
        outcome.enclave_rss_kb.unwrap_or(0),
    );
    let kwok_log = || tail(&kwok.logs(), 30);
    assert_eq!(
        (outcome.pods_listed, outcome.pods_running),
        (sizes.pods(), sizes.pods()),
        "every pod listed Running and Ready on a fake Node\n{}",
        kwok_log()
    );
    assert_eq!(outcome.nodes.ever_ready(), sizes.nodes);
    assert!(
        outcome.nodes.not_ready.is_empty(),
        "Nodes went NotReady: {:?}",
        outcome.nodes.not_ready
    );
    // Every Node's Lease was created, then renewed during the run, and its status patched.
    assert!(
        outcome.lease_renewals.count() >= sizes.nodes as u64,
        "{} Lease renewals",
        outcome.lease_renewals.count()
    );
    assert!(
        outcome.node_status.count() >= sizes.nodes as u64,
        "{} Node status patches",
        outcome.node_status.count()
    );
    assert!(
        outcome.refusals.is_empty(),
        "requests refused during the run: {:?}\n{}",
        outcome.refusals,
        kwok_log()
    );
    assert!(
        outcome.kwok_errors.is_empty(),
        "KWOK logged errors: {:#?}",
        outcome.kwok_errors
    );

    // Scale one Deployment down: the ReplicaSet deletes 40 pods gracefully, KWOK deletes each
    // once it sees it terminating.
    let name = "scale-0000";
    let patch = br#"{"spec":{"replicas":10}}"#;
    let reply = c
        .request(
            "PATCH",
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"),
            Some(patch),
            &[("content-type", "application/merge-patch+json")],
        )
        .expect("scale down");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let deadline = Instant::now() + sizes.limit;
    loop {
        let (live, all) = pods_of(&c, name);
        if live == 10 && all == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after scaling down: {live} live of {all} pods\n{}",
            kwok_log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(kwok.exited().is_none(), "kwok exited\n{}", kwok_log());
    // KWOK's `pod-delete` may run twice for one pod (on the delete's MODIFIED event, with a
    // grace period of 0, and before the DELETED one), as it does against kube-apiserver: the
    // second delete finds nothing (404). Nothing else may be refused.
    let unexpected: Vec<String> = kwok
        .errors()
        .into_iter()
        .filter(|e| !(e.contains("stage") && e.contains("not found")))
        .collect();
    assert!(unexpected.is_empty(), "KWOK logged errors: {unexpected:#?}");
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
