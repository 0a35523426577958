//! PodDisruptionBudget status and `pods/eviction` driven through the API in virtual time.

use alloc::vec::Vec;
use serde_json::{Value, json};

use super::workload_tests::Cluster;

const PODS: &str = "/api/v1/namespaces/default/pods";
const PDBS: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

fn eviction(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
}

fn budget(c: &mut Cluster) -> Value {
    let (code, pdb) = c.get(&alloc::format!("{PDBS}/web"));
    assert_eq!(code, 200, "{pdb}");
    pdb["status"].clone()
}

#[test]
fn evictions_honour_the_budget_and_dry_runs_change_nothing() {
    let mut c = Cluster::new();
    for name in ["a", "b"] {
        assert_eq!(c.post(PODS, pod(name)).0, 201);
    }
    let pdb = json!({"metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    assert_eq!(c.post(PDBS, pdb).0, 201);
    c.make_pods_ready();
    let status = budget(&mut c);
    assert_eq!(
        (
            status["currentHealthy"].clone(),
            status["disruptionsAllowed"].clone()
        ),
        (json!(2), json!(1)),
        "{status}"
    );

    // A dry run, by query or by the body's deleteOptions: allowed, nothing spent or deleted.
    let (code, body) = c.post(
        &alloc::format!("{PODS}/a/eviction?dryRun=All"),
        eviction("a"),
    );
    assert_eq!(code, 201, "{body}");
    let mut in_body = eviction("a");
    in_body["deleteOptions"] = json!({"dryRun": ["All"]});
    assert_eq!(c.post(&alloc::format!("{PODS}/a/eviction"), in_body).0, 201);
    assert_eq!(c.get(&alloc::format!("{PODS}/a")).0, 200);
    let status = budget(&mut c);
    assert_eq!(status["disruptionsAllowed"], 1, "{status}");
    assert!(status.get("disruptedPods").is_none(), "{status}");

    // The real eviction spends the one disruption; the next one is refused with kube's 429.
    assert_eq!(
        c.post(&alloc::format!("{PODS}/a/eviction"), eviction("a"))
            .0,
        201
    );
    assert_eq!(budget(&mut c)["disruptionsAllowed"], 0);
    let (code, status) = c.post(&alloc::format!("{PODS}/b/eviction"), eviction("b"));
    assert_eq!(code, 429, "{status}");
    assert_eq!(
        status["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(c.get(&alloc::format!("{PODS}/b")).0, 200);
}

/// Three ready pods under `minAvailable: 2`: one disruption allowed.
fn three_pods_one_disruption() -> Cluster {
    let mut c = Cluster::new();
    for name in ["a", "b", "c"] {
        assert_eq!(c.post(PODS, pod(name)).0, 201);
    }
    let pdb = json!({"metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
    assert_eq!(c.post(PDBS, pdb).0, 201);
    c.make_pods_ready();
    assert_eq!(budget(&mut c)["disruptionsAllowed"], 1);
    c
}

/// kube's `addConditionAndDeletePod`: the pod is marked `DisruptionTarget`
/// (`EvictionByEvictionAPI`) before its deletion, and spending the last disruption turns the
/// budget's `DisruptionAllowed` condition False at once (`UpdateDisruptionAllowedCondition`).
#[test]
fn an_eviction_marks_the_pod_and_the_last_disruption_closes_the_budget() {
    let mut c = three_pods_one_disruption();
    let mut watcher = c.watch(&alloc::format!("{PODS}?watch=1&resourceVersion=0"), None);
    let _ = c.drain(&mut watcher);

    let (code, body) = c.post(&alloc::format!("{PODS}/a/eviction"), eviction("a"));
    assert_eq!(code, 201, "{body}");
    let events = c.drain(&mut watcher);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds.first(), Some(&("MODIFIED", "a")), "{events:?}");
    assert_eq!(kinds.last(), Some(&("DELETED", "a")), "{events:?}");
    assert!(
        events[0]["object"]["metadata"]["deletionTimestamp"].is_null(),
        "marked before the deletion starts: {events:?}"
    );
    let marked = events[0]["object"]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&marked["status"], &marked["reason"], &marked["message"]),
        (
            &json!("True"),
            &json!("EvictionByEvictionAPI"),
            &json!("Eviction API: evicting")
        ),
        "{events:?}"
    );

    let status = budget(&mut c);
    assert_eq!(status["disruptionsAllowed"], 0, "{status}");
    let allowed = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionAllowed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(allowed["status"], "False", "{status}");
    assert_eq!(allowed["reason"], "InsufficientPods", "{status}");

    // A dry run marks nothing.
    let _ = c.drain(&mut watcher);
    c.settle();
    let _ = c.drain(&mut watcher);
    let (code, body) = c.post(
        &alloc::format!("{PODS}/b/eviction?dryRun=All"),
        eviction("b"),
    );
    assert_eq!(code, 429, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    assert!(c.drain(&mut watcher).is_empty());
}

/// A precondition that fails (409) spends nothing from the budget; the budget is checked
/// first, so a refused budget answers 429 even when the precondition would fail too.
#[test]
fn a_failed_precondition_spends_no_disruption() {
    let mut c = three_pods_one_disruption();
    let mut stale = eviction("a");
    stale["deleteOptions"] = json!({"preconditions": {"resourceVersion": "1"}});
    let (code, body) = c.post(&alloc::format!("{PODS}/a/eviction"), stale);
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the ResourceVersion in the precondition (1) does not match"),
        "{body}"
    );
    let status = budget(&mut c);
    assert_eq!(status["disruptionsAllowed"], 1, "{status}");
    assert!(status.get("disruptedPods").is_none(), "{status}");
    let (_, a) = c.get(&alloc::format!("{PODS}/a"));
    assert!(
        a["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "DisruptionTarget"),
        "{a}"
    );

    // With the right resourceVersion it goes through.
    let mut fresh = eviction("a");
    fresh["deleteOptions"] =
        json!({"preconditions": {"resourceVersion": a["metadata"]["resourceVersion"]}});
    assert_eq!(c.post(&alloc::format!("{PODS}/a/eviction"), fresh).0, 201);
    let mut stale = eviction("b");
    stale["deleteOptions"] = json!({"preconditions": {"resourceVersion": "1"}});
    let (code, body) = c.post(&alloc::format!("{PODS}/b/eviction"), stale);
    assert_eq!(code, 429, "{body}");
}

/// `countHealthyPods`: a pod recorded in `disruptedPods` (evicted, not yet deleted) does not
/// count as healthy until its record expires two minutes later.
#[test]
fn a_recorded_disruption_is_not_counted_healthy_until_it_expires() {
    let mut c = three_pods_one_disruption();
    let mut pdb = c.get(&alloc::format!("{PDBS}/web")).1;
    let now = pdb["status"]["conditions"][0]["lastTransitionTime"].clone();
    pdb["status"]["disruptedPods"] = json!({"a": now});
    let (code, body) = c.put(&alloc::format!("{PDBS}/web/status"), pdb);
    assert_eq!(code, 200, "{body}");
    c.settle();
    let status = budget(&mut c);
    assert_eq!(
        (&status["currentHealthy"], &status["disruptionsAllowed"]),
        (&json!(2), &json!(0)),
        "{status}"
    );
    c.advance(121);
    c.settle();
    let status = budget(&mut c);
    assert_eq!(
        (&status["currentHealthy"], &status["disruptionsAllowed"]),
        (&json!(3), &json!(1)),
        "{status}"
    );
    assert!(status.get("disruptedPods").is_none(), "{status}");
}
