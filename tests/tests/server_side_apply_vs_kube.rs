//! Field ownership side by side with the real kube-apiserver 1.32 (the peers of
//! `tests/peers/`): the same requests and the same kubectl commands go to both, and every
//! answer's code, `managedFields` (times compared as present or absent) and error `Status` must
//! be the same. Builds the peers first when they are missing or stale (slow the first time).

use nautilus_tests::DevCluster;
use nautilus_tests::peers::{self, Etcd, KubeApiServer, tmpfs_dir};
use serde_json::{Value, json};

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const JSON: &str = "application/json";
const CM: &str = "/api/v1/namespaces/default/configmaps";
const DEP: &str = "/apis/apps/v1/namespaces/default/deployments";

/// What must match: the code, and either the error Status (causes sorted: kube lists them in
/// Go map order) or the managed fields (sorted: entries written in the same second sort by
/// name, in different seconds by time, which the two servers need not share). The reference
/// runs no kube-controller-manager and no kube-scheduler, so the entries Nautilus's
/// controllers and scheduler record under those names (a Deployment's revision annotation and
/// status, a pod's `PodScheduled` condition) are left out.
fn comparable(status: u16, body: &Value) -> Value {
    if body["kind"] == "Status" {
        let mut body = body.clone();
        if let Some(causes) = body["details"]["causes"].as_array_mut() {
            causes.sort_by_key(|c| c.to_string());
        }
        return json!({"code": status, "status": body});
    }
    let mut entries: Vec<Value> = body["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    entries
        .retain(|e| e["manager"] != "kube-controller-manager" && e["manager"] != "kube-scheduler");
    for e in &mut entries {
        if let Some(t) = e.get_mut("time") {
            *t = json!("<time>");
        }
    }
    entries.sort_by_key(|e| e.to_string());
    json!({"code": status, "managedFields": entries})
}

fn start_kube() -> (tempfile::TempDir, Etcd, KubeApiServer) {
    if let Err(e) = peers::build(&["kube-apiserver", "etcd"]) {
        panic!("{e}");
    }
    let data = tmpfs_dir().expect("tmpfs dir");
    let etcd = Etcd::start(data.path()).unwrap_or_else(|e| panic!("{e}"));
    let api = KubeApiServer::start(&etcd, "ssa-admin-token").unwrap_or_else(|e| panic!("{e}"));
    (data, etcd, api)
}

fn cm(data: Value) -> Value {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}});
    if !data.is_null() {
        obj["data"] = data;
    }
    obj
}

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d1", "labels": {"app": "d"}}, "spec": spec})
}

fn pod_template(containers: Value) -> Value {
    json!({"selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers}}})
}

fn with(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

#[test]
fn requests_record_the_same_ownership_as_kube_apiserver() {
    let (_data, _etcd, kube) = start_kube();
    let dev = DevCluster::start();
    let finalizers = |list: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c2", "finalizers": list}})
    };
    let steps: Vec<(&str, String, Value, &str)> = vec![
        // Values their Go fields cannot hold: kube's decoder refuses the body (400), in its
        // words; stored, they would break every client that decodes the kind.
        (
            "POST",
            DEP.to_string(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
                "spec": {"replicas": "3", "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
            JSON,
        ),
        (
            "POST",
            CM.to_string(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "bad", "labels": {"a": true}}, "data": {"k": 1}}),
            JSON,
        ),
        (
            "POST",
            DEP.to_string(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                    "ports": [{"containerPort": 80.5}]}]}}}}),
            JSON,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods".to_string(),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
                "spec": {"containers": {"name": "c"}}}),
            JSON,
        ),
        // Two appliers: create, conflict, force, prune.
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-a"),
            cm(json!({"a": "1", "b": "1"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-b"),
            cm(json!({"a": "2", "c": "1"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-b&force=true"),
            cm(json!({"a": "2", "c": "1"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-a"),
            cm(Value::Null),
            APPLY,
        ),
        // Updates by the User-Agent's manager and a named one; conflicts across both kinds.
        (
            "PATCH",
            format!("{CM}/c1"),
            json!({"metadata": {"labels": {"x": "y"}}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=edit"),
            json!({"data": {"c": "9", "z": "1"}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-b"),
            cm(json!({"a": "2", "c": "1"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-c"),
            cm(json!({"a": "5", "c": "5", "z": "5"})),
            APPLY,
        ),
        // Sharing a value without a change: an entry without a time.
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=same"),
            cm(json!({"z": "1"})),
            APPLY,
        ),
        // Clearing ownership, then an untracked update, then before-first-apply.
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=edit"),
            json!({"metadata": {"managedFields": [{}]}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=edit2"),
            json!({"data": {"q": "1"}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-a"),
            cm(json!({"q": "2"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=mgr-a&force=true"),
            cm(json!({"q": "2"})),
            APPLY,
        ),
        // Options kube refuses.
        ("PATCH", format!("{CM}/c1"), cm(json!({"q": "3"})), APPLY),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager={}", "x".repeat(129)),
            cm(json!({"q": "3"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?force=true"),
            json!({"data": {"q": "3"}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=k"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1"}}),
            APPLY,
        ),
        // JSON patch test against a missing key, a present one, a missing parent.
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=f"),
            json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": ["x.io/y"]}]),
            JSON_PATCH,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=f"),
            json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]),
            JSON_PATCH,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=f"),
            json!([{"op": "test", "path": "/nope/x", "value": null}]),
            JSON_PATCH,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=f"),
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
            JSON_PATCH,
        ),
        // A client's own managedFields: `[]` resets on PUT, a readable list replaces, an
        // unreadable one is ignored, one sent on create is kept where the object lacks its fields.
        (
            "PUT",
            format!("{CM}/c1?fieldManager=putter"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "managedFields": []}, "data": {"only": "1"}}),
            JSON,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=after"),
            json!({"data": {"only": "2"}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=applier"),
            cm(json!({"only": "3"})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=bad"),
            json!({"metadata": {"managedFields": [{"manager": "z", "operation": "Bogus", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {}}]}, "data": {"n": "1"}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c1?fieldManager=bad"),
            json!({"metadata": {"managedFields": [{"manager": "z", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:n": {}}}}]}}),
            MERGE,
        ),
        (
            "POST",
            format!("{CM}?fieldManager=poster"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c3", "managedFields": [{"manager": "pre", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:other": {}}}}]}, "data": {"k": "v"}}),
            JSON,
        ),
        // Sets: kube's merge order, shared items, emptied by the applier.
        (
            "PATCH",
            format!("{CM}/c2?fieldManager=y"),
            finalizers(json!(["x.io/a", "x.io/c"])),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c2?fieldManager=ctl"),
            json!({"metadata": {"finalizers": ["x.io/a", "x.io/b", "x.io/c", "x.io/d"]}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{CM}/c2?fieldManager=y"),
            finalizers(json!(["x.io/a", "x.io/aprime", "x.io/c", "x.io/cprime"])),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c2?fieldManager=y"),
            finalizers(json!([])),
            APPLY,
        ),
        // A map the applier owns itself (null) survives another applier's pruning of its items.
        (
            "PATCH",
            format!("{CM}/c4?fieldManager=x"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c4", "labels": {"a": "1"}}, "data": {"k": "v"}}),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c4?fieldManager=y"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c4", "labels": {"a": "1"}}, "data": {"k": "v"}}),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c4?fieldManager=x"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c4"}, "data": null}),
            APPLY,
        ),
        (
            "PATCH",
            format!("{CM}/c4?fieldManager=y"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c4"}}),
            APPLY,
        ),
        // Deployments: keyed lists, key defaults, pruning a container and a struct, the scale
        // and status subresources, a configuration kube cannot type, a null.
        (
            "PATCH",
            format!("{DEP}/d1?fieldManager=kubectl"),
            deployment(with(
                json!({"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
                pod_template(
                    json!([{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}], "env": [{"name": "E", "value": "1"}]}, {"name": "b", "image": "busybox"}]),
                ),
            )),
            APPLY,
        ),
        (
            "PATCH",
            format!("{DEP}/d1?fieldManager=kubectl"),
            deployment(with(
                json!({"replicas": 2}),
                pod_template(json!([{"name": "a", "image": "nginx:2"}])),
            )),
            APPLY,
        ),
        (
            "PATCH",
            format!("{DEP}/d1/scale?fieldManager=scaler"),
            json!({"spec": {"replicas": 4}}),
            MERGE,
        ),
        // A status field the deployment controller keeps as it is: Nautilus runs that controller,
        // whose status writes own the fields it computes (observedGeneration, replicas, ...).
        (
            "PATCH",
            format!("{DEP}/d1/status?fieldManager=reporter"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"}, "spec": {"replicas": 9}, "status": {"collisionCount": 1}}),
            APPLY,
        ),
        (
            "PATCH",
            format!("{DEP}/d1?fieldManager=dup"),
            deployment(pod_template(
                json!([{"name": "a", "image": "x", "env": [{"name": "E"}, {"name": "E"}]}]),
            )),
            APPLY,
        ),
        (
            "PATCH",
            format!("{DEP}/d1?fieldManager=nullr"),
            deployment(json!({"replicas": null})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{DEP}/d1?fieldManager=nullr&force=true"),
            deployment(json!({"replicas": null})),
            APPLY,
        ),
    ];
    let headers = |ct| {
        [
            ("content-type", ct),
            (
                "user-agent",
                "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
            ),
        ]
    };
    for (i, (method, path, body, content_type)) in steps.iter().enumerate() {
        let bytes = serde_json::to_vec(body).unwrap();
        let h = headers(*content_type);
        let answer = |r: Result<nautilus_tests::client::Reply, String>| {
            let r = r.unwrap_or_else(|e| panic!("step {i} {method} {path}: {e}"));
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            comparable(r.status, &body)
        };
        let want = answer(kube.request(method, path, Some(&bytes), &h));
        let got = answer(dev.request(method, path, Some(&bytes), &h));
        assert_eq!(
            got, want,
            "step {i}: {method} {path}\nnautilus: {got}\nkube-apiserver: {want}"
        );
    }
    // The one deliberate difference: a `test` without `value` on a missing key dereferences nil
    // in json-patch v4.12 and kube-apiserver 1.32 drops the connection; dev mode answers as
    // v4.13 (newer kube) does, passing the test and changing nothing.
    let path = format!("{CM}/c1?fieldManager=f");
    let bytes =
        serde_json::to_vec(&json!([{"op": "test", "path": "/metadata/finalizers"}])).unwrap();
    let h = headers(JSON_PATCH);
    let crashed = kube.request("PATCH", &path, Some(&bytes), &h);
    assert!(
        crashed.is_err(),
        "kube-apiserver answered: {:?}",
        crashed.map(|r| r.status)
    );
    let before = dev.request("GET", &format!("{CM}/c1"), None, &h).unwrap();
    let passed = dev.request("PATCH", &path, Some(&bytes), &h).unwrap();
    assert_eq!(
        passed.status,
        200,
        "{}",
        String::from_utf8_lossy(&passed.body)
    );
    let rv = |body: &[u8]| {
        serde_json::from_slice::<Value>(body).unwrap()["metadata"]["resourceVersion"].clone()
    };
    assert_eq!(rv(&passed.body), rv(&before.body), "the passing test wrote");
}

#[test]
fn kubectl_commands_record_the_same_ownership_as_kube_apiserver() {
    let (_data, _etcd, kube) = start_kube();
    let dev = DevCluster::start();
    let dev_kubectl = nautilus_tests::Kubectl::new(&dev.kubeconfig);
    let cm = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n  namespace: default\ndata:\n{data}"
        )
    };
    let commands: Vec<(Vec<&str>, Option<String>)> = vec![
        (
            vec!["apply", "-f", "-"],
            Some(cm("  mode: blue\n  size: \"1\"\n")),
        ),
        (
            vec!["apply", "--server-side", "-f", "-"],
            Some(cm("  mode: green\n  size: \"1\"\n")),
        ),
        (
            vec!["apply", "--server-side", "--field-manager=other", "-f", "-"],
            Some(cm("  mode: red\n")),
        ),
        (
            vec![
                "apply",
                "--server-side",
                "--field-manager=other",
                "--force-conflicts",
                "-f",
                "-",
            ],
            Some(cm("  mode: red\n")),
        ),
        (
            vec!["apply", "--server-side", "-f", "-"],
            Some(cm("  size: \"2\"\n")),
        ),
        (vec!["label", "cm", "s", "x=y"], None),
        (vec!["annotate", "cm", "s", "a=b"], None),
        (vec!["create", "deployment", "web", "--image=nginx"], None),
        (vec!["scale", "deployment", "web", "--replicas=3"], None),
        (
            vec!["set", "image", "deployment/web", "nginx=nginx:2"],
            None,
        ),
    ];
    // What a create's manager owns is the object before mutating admission, the strategy and
    // allocation: not a pod's token volume, tolerations or priority, a Service's cluster IPs
    // or a Job's generated selector. (The reference runs no controllers: the ServiceAccount
    // admission needs is made there by hand.)
    let created = "apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec:\n  priorityClassName: system-node-critical\n  containers: [{name: c, image: nginx:1.25}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: svc1}\nspec:\n  selector: {app: a}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: job1}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj1}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: busybox}]\n";
    // A pod with probes, lifecycle hooks, env selectors and volumes of each defaulted kind:
    // its stored spec must be kube's (probe periods and thresholds, schemes, file modes, a
    // token's expiry, a host path's type, selectors' versions and divisors).
    let created = format!(
        "{created}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p2}}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.25\n    env:\n    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}\n    - {{name: MEM, valueFrom: {{resourceFieldRef: {{resource: limits.memory}}}}}}\n    readinessProbe: {{httpGet: {{port: 80}}}}\n    livenessProbe: {{tcpSocket: {{port: 80}}}}\n    startupProbe: {{exec: {{command: [\"true\"]}}}}\n    lifecycle: {{preStop: {{httpGet: {{path: /stop, port: 80}}}}}}\n  volumes:\n  - {{name: d, downwardAPI: {{items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]}}}}\n  - {{name: p, projected: {{sources: [{{serviceAccountToken: {{path: t}}}}]}}}}\n  - {{name: h, hostPath: {{path: /tmp}}}}\n  - {{name: s, secret: {{secretName: s1}}}}\n  - {{name: m, configMap: {{name: m1}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns1}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: lb1}}\nspec:\n  type: LoadBalancer\n  selector: {{app: a}}\n  ports: [{{port: 80, name: http}}]\n"
    );
    let made = kube
        .kubectl
        .run(&["create", "serviceaccount", "default"], None);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let commands: Vec<(Vec<&str>, Option<String>)> = commands
        .into_iter()
        .chain([(vec!["create", "-f", "-"], Some(created.to_string()))])
        .collect();
    for (args, input) in &commands {
        let kube_out = kube.kubectl.run(args, input.as_deref());
        let dev_out = dev_kubectl.run(args, input.as_deref());
        let text = |o: &std::process::Output| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).to_string(),
                String::from_utf8_lossy(&o.stderr).to_string(),
            )
        };
        assert_eq!(
            text(&dev_out),
            text(&kube_out),
            "kubectl {}",
            args.join(" ")
        );
    }
    for what in [
        ["cm", "s"],
        ["deployment", "web"],
        ["pod", "p1"],
        ["service", "svc1"],
        ["job", "job1"],
        ["cronjob", "cj1"],
        ["pod", "p2"],
        ["namespace", "ns1"],
        ["service", "lb1"],
    ] {
        let args = [
            "get",
            what[0],
            what[1],
            "-o",
            "json",
            "--show-managed-fields",
        ];
        let read = |out: std::process::Output| {
            let obj: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            comparable(200, &obj)
        };
        assert_eq!(
            read(dev_kubectl.run(&args, None)),
            read(kube.kubectl.run(&args, None)),
            "{} {}",
            what[0],
            what[1]
        );
    }
    let spec = |out: std::process::Output| {
        let obj: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        // The ServiceAccount admission's token volume has a random name.
        let text = obj["spec"].to_string();
        let mut normal = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("kube-api-access-") {
            normal.push_str(&rest[..at]);
            normal.push_str("kube-api-access-*");
            rest = rest[at + "kube-api-access-".len()..]
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric());
        }
        normal.push_str(rest);
        normal
    };
    let args = ["get", "pod", "p2", "-o", "json"];
    let want = spec(kube.kubectl.run(&args, None));
    assert!(want.contains("\"periodSeconds\":10"), "{want}");
    assert_eq!(
        spec(dev_kubectl.run(&args, None)),
        want,
        "pod p2's stored spec"
    );
    // A template's metadata reads back as kube stores it (`creationTimestamp: null`, which the
    // YAML did not have).
    let args = ["get", "cronjob", "cj1", "-o", "json"];
    let templates = |out: std::process::Output| {
        let obj: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        json!([
            obj.pointer("/spec/jobTemplate/metadata"),
            obj.pointer("/spec/jobTemplate/spec/template/metadata")
        ])
    };
    let want = templates(kube.kubectl.run(&args, None));
    assert_eq!(want[0]["creationTimestamp"], Value::Null);
    assert!(
        want[0]
            .as_object()
            .is_some_and(|m| m.contains_key("creationTimestamp")),
        "{want}"
    );
    assert_eq!(templates(dev_kubectl.run(&args, None)), want);
}

/// Writes through a view (`events.k8s.io/v1` Events over core `v1`, `autoscaling/v1` HPAs over
/// `autoscaling/v2`) record their managers as kube does: each entry in the version its manager
/// wrote with, field paths of that version, read back unchanged through the other version;
/// within one API group (autoscaling) the other version's managers lose, and conflict over,
/// what a write changes as seen in their version; across groups (events) kube cannot convert
/// and forgets them.
#[test]
fn writes_through_views_record_the_same_ownership_as_kube_apiserver() {
    let (_data, _etcd, kube) = start_kube();
    let dev = DevCluster::start();
    const EV1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
    const EV: &str = "/api/v1/namespaces/default/events";
    const HPA1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    const HPA2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
    let event = |name: &str| {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "eventTime": "2025-06-15T15:06:40.123456Z",
            "reportingController": "example.com/scheduler", "reportingInstance": "scheduler-1",
            "action": "Binding", "reason": "Scheduled", "note": "assigned", "type": "Normal",
            "regarding": {"kind": "Pod", "namespace": "default", "name": "web"}})
    };
    let series = |count: u32| json!({"series": {"count": count, "lastObservedTime": "2025-06-15T15:07:00.000000Z"}});
    let hpa1 = |name: &str, spec: Value| {
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name}, "spec": spec})
    };
    let hpa2 = |name: &str, spec: Value| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name}, "spec": spec})
    };
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    let cpu = |n: u32| {
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": n}}}])
    };
    let none = Value::Null;
    let steps: Vec<(&str, String, Value, &str)> = vec![
        // Events: updates through both versions.
        ("POST", format!("{EV1}?fieldManager=m1"), event("e1"), JSON),
        ("GET", format!("{EV}/e1"), none.clone(), JSON),
        (
            "PATCH",
            format!("{EV}/e1?fieldManager=m2"),
            json!({"message": "changed", "count": 3}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{EV1}/e1?fieldManager=m3"),
            series(2),
            MERGE,
        ),
        ("GET", format!("{EV}/e1"), none.clone(), JSON),
        // Events: applies through the view, a conflict, then a core write.
        (
            "PATCH",
            format!("{EV1}/e2?fieldManager=a1"),
            event("e2"),
            APPLY,
        ),
        (
            "PATCH",
            format!("{EV1}/e2?fieldManager=a1"),
            with(event("e2"), series(2)),
            APPLY,
        ),
        (
            "PATCH",
            format!("{EV1}/e2?fieldManager=a2"),
            with(
                json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "e2"}}),
                series(5),
            ),
            APPLY,
        ),
        (
            "PATCH",
            format!("{EV1}/e2?fieldManager=a2&force=true"),
            with(
                json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "e2"}}),
                series(5),
            ),
            APPLY,
        ),
        ("GET", format!("{EV}/e2"), none.clone(), JSON),
        (
            "PATCH",
            format!("{EV}/e2?fieldManager=a3"),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2"}, "count": 4}),
            APPLY,
        ),
        ("GET", format!("{EV1}/e2"), none.clone(), JSON),
        // HPAs: a v1 create, v2 updates taking its fields, a v1 status write.
        (
            "POST",
            format!("{HPA1}?fieldManager=m1"),
            hpa1(
                "h1",
                json!({"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 50}),
            ),
            JSON,
        ),
        ("GET", format!("{HPA2}/h1"), none.clone(), JSON),
        (
            "PATCH",
            format!("{HPA2}/h1?fieldManager=m2"),
            json!({"spec": {"maxReplicas": 7}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{HPA2}/h1?fieldManager=m3"),
            json!({"spec": {"metrics": cpu(60)}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{HPA1}/h1?fieldManager=m4"),
            json!({"spec": {"minReplicas": 2}}),
            MERGE,
        ),
        (
            "PATCH",
            format!("{HPA1}/h1/status?fieldManager=s1"),
            json!({"status": {"currentReplicas": 2, "desiredReplicas": 3}}),
            MERGE,
        ),
        ("GET", format!("{HPA2}/h1"), none.clone(), JSON),
        // HPAs: applies through both versions, conflicts across them, force, prune.
        (
            "PATCH",
            format!("{HPA1}/h2?fieldManager=a1"),
            hpa1(
                "h2",
                json!({"scaleTargetRef": target, "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 50}),
            ),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA2}/h2?fieldManager=a2"),
            hpa2("h2", json!({"metrics": cpu(70)})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA2}/h2?fieldManager=a2&force=true"),
            hpa2("h2", json!({"metrics": cpu(70)})),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA1}/h2?fieldManager=a1"),
            hpa1(
                "h2",
                json!({"scaleTargetRef": target, "maxReplicas": 6,
                "targetCPUUtilizationPercentage": 80}),
            ),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA1}/h2?fieldManager=a1&force=true"),
            hpa1(
                "h2",
                json!({"scaleTargetRef": target, "maxReplicas": 6,
                "targetCPUUtilizationPercentage": 80}),
            ),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA1}/h2?fieldManager=a1"),
            hpa1("h2", json!({"scaleTargetRef": target, "maxReplicas": 6})),
            APPLY,
        ),
        ("GET", format!("{HPA2}/h2"), none.clone(), JSON),
        ("GET", format!("{HPA1}/h2"), none.clone(), JSON),
        // A v1 applier stops applying the cpu target a v2 manager's metrics also hold: the
        // prune adds back what the v2 manager owns, as v2 sees it.
        (
            "PATCH",
            format!("{HPA2}/h3?fieldManager=a2"),
            hpa2(
                "h3",
                json!({"scaleTargetRef": target, "maxReplicas": 4,
                "metrics": cpu(60)}),
            ),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA1}/h3?fieldManager=a1"),
            hpa1(
                "h3",
                json!({"scaleTargetRef": target, "maxReplicas": 4,
                "targetCPUUtilizationPercentage": 60}),
            ),
            APPLY,
        ),
        (
            "PATCH",
            format!("{HPA1}/h3?fieldManager=a1"),
            hpa1("h3", json!({"scaleTargetRef": target, "maxReplicas": 4})),
            APPLY,
        ),
        ("GET", format!("{HPA2}/h3"), none.clone(), JSON),
        // And once the v2 manager lets go of them, the v1 applier's prune removes them.
        (
            "PATCH",
            format!("{HPA2}/h3?fieldManager=a2"),
            hpa2("h3", json!({"scaleTargetRef": target, "maxReplicas": 4})),
            APPLY,
        ),
        ("GET", format!("{HPA2}/h3"), none.clone(), JSON),
    ];
    let headers = |ct| [("content-type", ct)];
    for (i, (method, path, body, content_type)) in steps.iter().enumerate() {
        let bytes = serde_json::to_vec(body).unwrap();
        let body = (!body.is_null()).then_some(bytes.as_slice());
        let h = headers(*content_type);
        let answer = |r: Result<nautilus_tests::client::Reply, String>| {
            let r = r.unwrap_or_else(|e| panic!("step {i} {method} {path}: {e}"));
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (comparable(r.status, &body), body)
        };
        let (want, kube_body) = answer(kube.request(method, path, body, &h));
        let (got, dev_body) = answer(dev.request(method, path, body, &h));
        assert_eq!(
            got, want,
            "step {i}: {method} {path}\nnautilus: {got}\nkube-apiserver: {want}"
        );
        // The objects read agree too, apart from metadata and status, and from the Go zero
        // values kube writes for top-level fields nobody set (an Event's `source: {}` and null
        // timestamps), which dev mode stores only when they were written.
        if method == &"GET" {
            let spec = |b: &Value| {
                let mut b = b.as_object().cloned().unwrap_or_default();
                b.retain(|k, v| {
                    let zero = v.is_null() || v == &json!({}) || v == &json!("");
                    !zero && !matches!(k.as_str(), "metadata" | "status")
                });
                b
            };
            assert_eq!(spec(&dev_body), spec(&kube_body), "step {i}: {path}");
        }
    }
}
