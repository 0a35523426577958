//! The policy kinds end to end with the real `kubectl` and the official Python client:
//! ResourceQuota usage and admission, PodDisruptionBudget status and `pods/eviction`,
//! RuntimeClass admission, the per-namespace defaults kube-controller-manager creates (the
//! `default` ServiceAccount, `kube-root-ca.crt`), API priority and fairness bootstrap objects
//! and the admissionregistration.k8s.io kinds.

use std::process::Command;
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use serde_json::{Value, json};

fn get_json(c: &DevCluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl -o json")
}

/// Polls `check` until it holds (20 s at most): controllers run on the server's timers.
#[track_caller]
fn wait_for(c: &DevCluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", c.logs());
}

fn apply(c: &DevCluster, manifest: &Value) {
    let out = c.kubectl_with_input(&["apply", "-f", "-"], Some(&manifest.to_string()));
    assert!(
        out.status.success(),
        "apply {manifest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pod(name: &str, requests: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": requests}}]}})
}

fn used(c: &DevCluster, ns: &str, quota: &str) -> Value {
    get_json(c, &["resourcequota", quota, "-n", ns])["status"]["used"].clone()
}

#[test]
fn namespaces_get_a_default_service_account_and_the_root_ca() {
    let c = DevCluster::start();
    c.kubectl_ok(&["create", "namespace", "team-a"]);
    wait_for(&c, "the default ServiceAccount", || {
        c.kubectl(&["get", "serviceaccount", "default", "-n", "team-a"])
            .status
            .success()
    });
    wait_for(&c, "kube-root-ca.crt", || {
        c.kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", "team-a"])
            .status
            .success()
    });
    let cm = get_json(&c, &["configmap", "kube-root-ca.crt", "-n", "team-a"]);
    // The certificate a pod needs to verify the API server: the CA dev's kubeconfig trusts.
    assert_eq!(
        cm["data"]["ca.crt"].as_str().unwrap().trim(),
        String::from_utf8_lossy(&c.ca_pem).trim()
    );
    assert!(
        cm["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .unwrap()
            .starts_with("Contains a CA bundle")
    );
    // Deleted or changed, both come back as kube-controller-manager puts them back.
    c.kubectl_ok(&["delete", "serviceaccount", "default", "-n", "team-a"]);
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team-a",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"forged"}}"#,
    ]);
    wait_for(&c, "the ServiceAccount recreated", || {
        c.kubectl(&["get", "serviceaccount", "default", "-n", "team-a"])
            .status
            .success()
    });
    wait_for(&c, "the CA restored", || {
        get_json(&c, &["configmap", "kube-root-ca.crt", "-n", "team-a"])["data"]["ca.crt"]
            != "forged"
    });
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        c.kubectl_ok(&["get", "serviceaccount", "default", "-n", ns]);
    }
}

#[test]
fn resource_quota_tracks_usage_and_refuses_what_exceeds_it() {
    let c = DevCluster::start();
    c.kubectl_ok(&["create", "namespace", "q"]);
    apply(
        &c,
        &json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": "q"},
            "spec": {"hard": {"pods": "2", "cpu": "1", "memory": "500Mi", "services.nodeports": "1",
                "count/replicasets.apps": "1", "configmaps": "10"}}}),
    );
    wait_for(&c, "usage calculated", || {
        let u = used(&c, "q", "compute");
        u["pods"] == "0" && u["cpu"] == "0" && u["count/replicasets.apps"] == "0"
    });
    // The namespace's own kube-root-ca.crt counts.
    assert_eq!(used(&c, "q", "compute")["configmaps"], "1");
    let first = pod("fits", json!({"cpu": "500m", "memory": "252Mi"}));
    c.kubectl_with_input(&["create", "-n", "q", "-f", "-"], Some(&first.to_string()));
    wait_for(&c, "the pod counted", || {
        let u = used(&c, "q", "compute");
        u["pods"] == "1" && u["cpu"] == "500m" && u["memory"] == "252Mi"
    });
    let too_big = pod("too-big", json!({"cpu": "600m", "memory": "100Mi"}));
    let out = c.kubectl_with_input(
        &["create", "-n", "q", "-f", "-"],
        Some(&too_big.to_string()),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            r#"pods "too-big" is forbidden: exceeded quota: compute, requested: cpu=600m, used: cpu=500m, limited: cpu=1"#
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unbounded = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unbounded"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let out = c.kubectl_with_input(
        &["create", "-n", "q", "-f", "-"],
        Some(&unbounded.to_string()),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("failed quota: compute: must specify cpu for: c; memory for: c"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kubectl_ok(&[
        "create",
        "service",
        "nodeport",
        "np1",
        "-n",
        "q",
        "--tcp=80:80",
    ]);
    let err = c.kubectl_err(&[
        "create",
        "service",
        "nodeport",
        "np2",
        "-n",
        "q",
        "--tcp=80:80",
    ]);
    assert!(err.contains("exceeded quota: compute, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1"), "{err}");
    // Nothing refused was stored.
    assert!(
        !c.kubectl(&["get", "pod", "too-big", "-n", "q"])
            .status
            .success()
    );
    assert!(
        !c.kubectl(&["get", "service", "np2", "-n", "q"])
            .status
            .success()
    );
    c.kubectl_ok(&[
        "delete",
        "pod",
        "fits",
        "-n",
        "q",
        "--grace-period=0",
        "--force",
    ]);
    wait_for(&c, "usage released", || {
        let u = used(&c, "q", "compute");
        u["pods"] == "0" && u["cpu"] == "0"
    });
    let table = c.kubectl_ok(&["get", "quota", "compute", "-n", "q"]);
    assert!(
        table.contains("cpu: 0/1, memory: 0/500Mi, pods: 0/2"),
        "{table}"
    );
}

#[test]
fn disruption_budgets_guard_evictions_from_the_python_client() {
    let c = DevCluster::start();
    c.kubectl_ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    c.kubectl_with_input(
        &["create", "-f", "-"],
        Some(
            &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-1", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
            .to_string(),
        ),
    );
    // Reported Running and Ready, as a kubelet would.
    c.kubectl_ok(&[
        "patch",
        "pod",
        "web-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    wait_for(&c, "the budget's status", || {
        let s = &get_json(&c, &["pdb", "web"])["status"];
        s["currentHealthy"] == 1
            && s["desiredHealthy"] == 1
            && s["expectedPods"] == 1
            && s["disruptionsAllowed"] == 0
            && s["observedGeneration"] == 1
    });
    let script = r#"
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(sys.argv[1])
core = client.CoreV1Api()
body = client.V1Eviction(metadata=client.V1ObjectMeta(name="web-1", namespace="default"))
try:
    core.create_namespaced_pod_eviction("web-1", "default", body)
    print("evicted")
except ApiException as e:
    print("refused", e.status, e.body)
"#;
    let run = || {
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&c.kubeconfig)
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let refused = run();
    assert!(refused.starts_with("refused 429"), "{refused}");
    assert!(
        refused.contains("Cannot evict pod as it would violate the pod's disruption budget.")
            && refused
                .contains("The disruption budget web needs 1 healthy pods and has 1 currently"),
        "{refused}"
    );
    c.kubectl_ok(&["get", "pod", "web-1"]);
    c.kubectl_ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":0}}"#,
    ]);
    wait_for(&c, "a disruption allowed", || {
        get_json(&c, &["pdb", "web"])["status"]["disruptionsAllowed"] == 1
    });
    assert_eq!(run().trim(), "evicted");
    assert!(!c.kubectl(&["get", "pod", "web-1"]).status.success());
}

/// `kubectl drain` evicts through `pods/eviction` (it looks the subresource up in discovery and
/// deletes pods outright when it is not policy/v1 Eviction): a budget that allows no disruption
/// holds the drained node's pod, and drain says why.
#[test]
fn kubectl_drain_respects_disruption_budgets() {
    let c = DevCluster::start();
    apply(
        &c,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}),
    );
    c.kubectl_ok(&[
        "create",
        "pdb",
        "db",
        "--selector=app=db",
        "--min-available=1",
    ]);
    apply(
        &c,
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db-1", "labels": {"app": "db"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "postgres"}]}}),
    );
    c.kubectl_ok(&[
        "patch",
        "pod",
        "db-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    wait_for(&c, "the budget's status", || {
        get_json(&c, &["pdb", "db"])["status"]["currentHealthy"] == 1
    });
    let out = c.kubectl(&[
        "drain",
        "node-a",
        "--force",
        "--ignore-daemonsets",
        "--timeout=6s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "drain got past the budget: {stderr}");
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{stderr}"
    );
    let pod = get_json(&c, &["pod", "db-1"]);
    assert!(pod["metadata"].get("deletionTimestamp").is_none(), "{pod}");
    assert_eq!(
        get_json(&c, &["node", "node-a"])["spec"]["unschedulable"],
        true,
        "drain cordons first"
    );
}

#[test]
fn runtime_classes_priority_levels_and_admission_configuration() {
    let c = DevCluster::start();
    let err = c.kubectl_err(&[
        "run",
        "p",
        "--image=nginx",
        r#"--overrides={"spec":{"runtimeClassName":"gvisor"}}"#,
    ]);
    assert!(
        err.contains(r#"pods "p" is forbidden: pod rejected: RuntimeClass "gvisor" not found"#),
        "{err}"
    );
    apply(
        &c,
        &json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "gvisor"}, "handler": "runsc",
            "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}},
            "scheduling": {"nodeSelector": {"sandbox": "gvisor"},
                "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}}),
    );
    c.kubectl_ok(&[
        "run",
        "p",
        "--image=nginx",
        r#"--overrides={"spec":{"runtimeClassName":"gvisor"}}"#,
    ]);
    let p = get_json(&c, &["pod", "p"]);
    assert_eq!(
        p["spec"]["overhead"],
        json!({"cpu": "250m", "memory": "64Mi"})
    );
    assert_eq!(p["spec"]["nodeSelector"], json!({"sandbox": "gvisor"}));
    assert!(
        p["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "sandbox")
    );
    let err = c.kubectl_err(&[
        "patch",
        "runtimeclass",
        "gvisor",
        "--type=merge",
        "-p",
        r#"{"handler":"runc"}"#,
    ]);
    assert!(
        err.contains("handler: Invalid value: \"runc\": field is immutable"),
        "{err}"
    );

    // kube-apiserver's priority and fairness configuration is there, and a FlowSchema's
    // condition says whether its priority level exists.
    let levels = c.kubectl_ok(&["get", "prioritylevelconfigurations"]);
    for name in ["catch-all", "exempt", "global-default", "workload-low"] {
        assert!(levels.contains(name), "{levels}");
    }
    let schemas = c.kubectl_ok(&["get", "flowschemas"]);
    assert!(
        schemas.contains("catch-all") && schemas.contains("system-nodes"),
        "{schemas}"
    );
    c.kubectl_ok(&["delete", "flowschema", "catch-all"]);
    wait_for(&c, "the mandatory FlowSchema recreated", || {
        c.kubectl(&["get", "flowschema", "catch-all"])
            .status
            .success()
    });
    apply(
        &c,
        &json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": "orphan"},
            "spec": {"priorityLevelConfiguration": {"name": "nowhere"},
                "rules": [{"subjects": [{"kind": "User", "user": {"name": "x"}}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
    );
    wait_for(&c, "the Dangling condition", || {
        get_json(&c, &["flowschema", "orphan"])["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Dangling" && c["status"] == "True")
            })
    });
    assert_eq!(
        get_json(&c, &["flowschema", "orphan"])["spec"]["matchingPrecedence"],
        1000
    );

    // admissionregistration.k8s.io: served, defaulted and validated (no webhook is called).
    apply(
        &c,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "hooks"},
            "webhooks": [{"name": "check.example.com", "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "default", "name": "svc"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                    "resources": ["pods"]}]}]}),
    );
    let hook = &get_json(&c, &["validatingwebhookconfiguration", "hooks"])["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["clientConfig"]["service"]["port"], 443);
    let bad = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "b"},
        "spec": {"policyName": "p", "validationActions": ["Deny", "Warn"]}});
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&bad.to_string()));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must not contain both Deny and Warn"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let groups = c.kubectl_ok(&["api-resources", "-o", "name"]);
    for resource in [
        "resourcequotas",
        "poddisruptionbudgets.policy",
        "runtimeclasses.node.k8s.io",
        "flowschemas.flowcontrol.apiserver.k8s.io",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "validatingadmissionpolicies.admissionregistration.k8s.io",
    ] {
        assert!(
            groups.lines().any(|l| l == resource),
            "{resource}: {groups}"
        );
    }
}

#[test]
fn validating_admission_policies_judge_writes_from_kubectl() {
    let c = DevCluster::start();
    c.kubectl_ok(&["create", "namespace", "vap"]);
    c.kubectl_ok(&["label", "namespace", "vap", "vap-test=true"]);
    apply(
        &c,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "replicas.example.com"},
            "spec": {
                "matchConstraints": {
                    "namespaceSelector": {"matchLabels": {"vap-test": "true"}},
                    "resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"],
                        "apiVersions": ["v1"], "resources": ["deployments", "deployments/scale"]}]},
                "variables": [{"name": "replicas", "expression": "object.spec.replicas"}],
                "validations": [{"expression": "variables.replicas > 1",
                    "messageExpression": "'wants replicas > 1, got ' + string(variables.replicas)"}]}}),
    );
    apply(
        &c,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "replicas-binding"},
            "spec": {"policyName": "replicas.example.com", "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"vap-test": "true"}}}}}),
    );
    let err = c.kubectl_err(&[
        "create",
        "deployment",
        "one",
        "--image=nginx",
        "--replicas=1",
        "-n",
        "vap",
    ]);
    assert!(
        err.contains(
            "deployments.apps \"one\" is forbidden: ValidatingAdmissionPolicy 'replicas.example.com' \
             with binding 'replicas-binding' denied request: wants replicas > 1, got 1"
        ),
        "{err}"
    );
    c.kubectl_ok(&[
        "create",
        "deployment",
        "three",
        "--image=nginx",
        "--replicas=3",
        "-n",
        "vap",
    ]);
    // Scaling down goes through the scale subresource, which the rule names too.
    let err = c.kubectl_err(&["scale", "deployment", "three", "--replicas=1", "-n", "vap"]);
    assert!(err.contains("wants replicas > 1, got 1"), "{err}");
    // Outside the selected namespaces nothing is judged.
    c.kubectl_ok(&[
        "create",
        "deployment",
        "one",
        "--image=nginx",
        "--replicas=1",
    ]);

    // The same policy under a Warn binding: the write goes through with kube's warning.
    c.kubectl_ok(&[
        "delete",
        "validatingadmissionpolicybinding",
        "replicas-binding",
    ]);
    apply(
        &c,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "replicas-warn"},
            "spec": {"policyName": "replicas.example.com", "validationActions": ["Warn"]}}),
    );
    let out = c.kubectl(&[
        "create",
        "deployment",
        "one",
        "--image=nginx",
        "--replicas=1",
        "-n",
        "vap",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'replicas.example.com' \
             with binding 'replicas-warn': wants replicas > 1, got 1"
        ),
        "{stderr}"
    );
}
