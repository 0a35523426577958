//! PodDisruptionBudget status and `pods/eviction` driven through the API in virtual time.

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
