//! Table-driven tests; the patches are the ones kubectl 1.32 sends (`kubectl -v=8`).

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::*;
use crate::resource::ResourceId as R;

const NOW: UnixTime = UnixTime::from_secs(1_731_627_989); // 2024-11-14T23:46:29Z
const LATER: UnixTime = UnixTime::from_secs(1_731_628_989); // 2024-11-15T00:03:09Z

#[test]
fn merge_patch_cases() {
    let cases: &[(Value, Value, Value)] = &[
        // kubectl label pods web app=web
        (
            json!({"metadata": {"name": "web"}}),
            json!({"metadata": {"labels": {"app": "web"}}}),
            json!({"metadata": {"name": "web", "labels": {"app": "web"}}}),
        ),
        // kubectl label pods web app-
        (
            json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
            json!({"metadata": {"labels": {"app": null}}}),
            json!({"metadata": {"labels": {"tier": "fe"}}}),
        ),
        // RFC 7386 appendix A.
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
    ];
    for (target, patch, want) in cases {
        let mut got = target.clone();
        merge_patch(&mut got, patch);
        assert_eq!(&got, want, "patch {patch}");
    }
}

#[test]
fn json_patch_success_cases() {
    let doc = json!({"metadata": {"labels": {"a/b": "1", "m~n": "2"}},
                     "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let cases: &[(Value, Value)] = &[
        // kubectl patch deploy web --type json -p '[{"op":"replace","path":"/spec/replicas","value":3}]'
        (
            json!([{"op": "add", "path": "/spec/replicas", "value": 3}]),
            json!({"metadata": {"labels": {"a/b": "1", "m~n": "2"}},
                   "spec": {"replicas": 3, "containers": [{"name": "a"}, {"name": "b"}]}}),
        ),
        (
            json!([{"op": "remove", "path": "/metadata/labels/a~1b"},
                   {"op": "replace", "path": "/metadata/labels/m~0n", "value": "3"}]),
            json!({"metadata": {"labels": {"m~n": "3"}},
                   "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        ),
        (
            json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "c"}},
                   {"op": "add", "path": "/spec/containers/0", "value": {"name": "z"}},
                   {"op": "test", "path": "/spec/containers/1/name", "value": "a"}]),
            json!({"metadata": {"labels": {"a/b": "1", "m~n": "2"}},
                   "spec": {"containers": [{"name": "z"}, {"name": "a"}, {"name": "b"}, {"name": "c"}]}}),
        ),
        (
            json!([{"op": "move", "from": "/spec/containers/1", "path": "/spec/first"},
                   {"op": "copy", "from": "/spec/first", "path": "/spec/containers/0"},
                   {"op": "remove", "path": "/metadata"}]),
            json!({"spec": {"first": {"name": "b"}, "containers": [{"name": "b"}, {"name": "a"}]}}),
        ),
        (json!([]), doc.clone()),
    ];
    for (ops, want) in cases {
        let mut got = doc.clone();
        json_patch(&mut got, ops).unwrap();
        assert_eq!(&got, want, "ops {ops}");
    }
}

#[test]
fn json_patch_failures_are_atomic_with_kube_codes() {
    let doc = json!({"spec": {"replicas": 1, "list": [1, 2]}});
    // (ops, HTTP code): handlers/patch.go gives 400 for an undecodable patch, 413 above
    // maxJSONPatchOperations and 422 for any operation that fails.
    let too_many: Vec<Value> = (0..=MAX_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/spec/replicas", "value": 1}))
        .collect();
    let cases: &[(Value, u16)] = &[
        (json!({"op": "add"}), 400),
        (json!([1]), 400),
        (Value::Array(too_many), 413),
        (
            json!([{"op": "replace", "path": "/spec/replicas", "value": 5},
                   {"op": "test", "path": "/spec/replicas", "value": 1}]),
            422,
        ),
        (
            json!([{"op": "add", "path": "/spec/replicas", "value": 5},
                   {"op": "remove", "path": "/spec/missing"}]),
            422,
        ),
        (
            json!([{"op": "replace", "path": "/spec/missing", "value": 1}]),
            422,
        ),
        (
            json!([{"op": "add", "path": "/nope/deeper", "value": 1}]),
            422,
        ),
        (
            json!([{"op": "add", "path": "/spec/list/3", "value": 1}]),
            422,
        ),
        (
            json!([{"op": "add", "path": "/spec/list/01", "value": 1}]),
            422,
        ),
        (json!([{"op": "remove", "path": "/spec/list/-"}]), 422),
        (json!([{"op": "frobnicate", "path": "/spec"}]), 422),
        (json!([{"op": "add", "path": "/spec/x"}]), 422),
        (json!([{"op": "add", "path": "spec", "value": 1}]), 422),
        (
            json!([{"op": "move", "from": "/spec", "path": "/spec/inner"}]),
            422,
        ),
    ];
    for (ops, code) in cases {
        let mut got = doc.clone();
        let err = json_patch(&mut got, ops).unwrap_err();
        assert_eq!(err.code(), *code, "ops {ops}: {err}");
        assert_eq!(got, doc, "target changed by failing {ops}");
    }
}

#[test]
fn json_patch_bounds_copy_growth_and_depth() {
    // Each copy doubles the list: 40 of them would need terabytes.
    let mut doc = json!({"a": [String::from_utf8(alloc::vec![b'x'; 1024]).unwrap()]});
    let ops: Vec<Value> = (0..40)
        .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
        .collect();
    let err = json_patch(&mut doc, &Value::Array(ops)).unwrap_err();
    assert_eq!(err.code(), 422);
    // Nesting a document inside itself stops at MAX_DEPTH.
    let mut doc = json!({"a": {"b": {}}});
    let ops: Vec<Value> = (0..100)
        .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/b/c"}))
        .collect();
    assert_eq!(
        json_patch(&mut doc, &Value::Array(ops)).unwrap_err().code(),
        422
    );
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.14",
                         "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "busybox"}
                    ],
                    "tolerations": [{"key": "k", "operator": "Exists"}]
                }
            }
        }
    })
}

#[test]
fn strategic_merge_cases() {
    let cases: &[(&str, Value, Value)] = &[
        (
            // kubectl apply after removing the sidecar and bumping the image (3-way patch).
            "/spec/template/spec/containers",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"image": "nginx:1.16", "name": "nginx"},
                               {"$patch": "delete", "name": "sidecar"}]}}}}),
            json!([{"name": "nginx", "image": "nginx:1.16",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
        ),
        (
            // kubectl apply that adds a container before the existing ones.
            "/spec/template/spec/containers",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "init"}, {"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{"image": "alpine", "name": "init"}]}}}}),
            json!([{"name": "init", "image": "alpine"},
                   {"name": "nginx", "image": "nginx:1.14",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                   {"name": "sidecar", "image": "busybox"}]),
        ),
        (
            // env merges by name; $setElementOrder reorders.
            "/spec/template/spec/containers/0/env",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{"name": "nginx",
                    "$setElementOrder/env": [{"name": "B"}, {"name": "A"}, {"name": "C"}],
                    "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}}}),
            json!([{"name": "B", "value": "20"}, {"name": "A", "value": "1"}, {"name": "C", "value": "3"}]),
        ),
        (
            // ports merge by containerPort. Without $setElementOrder a new item sorts before
            // the server's (mergeSortedSlice takes the patch item when either position is
            // unknown to the server order).
            "/spec/template/spec/containers/0/ports",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx",
                "ports": [{"containerPort": 443, "protocol": "TCP"}]}]}}}}),
            json!([{"containerPort": 443, "protocol": "TCP"}, {"containerPort": 80, "protocol": "TCP"}]),
        ),
        (
            // tolerations have no patch strategy: replaced.
            "/spec/template/spec/tolerations",
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}}}}),
            json!([{"key": "x", "operator": "Exists"}]),
        ),
        (
            // finalizers: merged primitive list with $deleteFromPrimitiveList (a new value sorts
            // first, as above).
            "/metadata/finalizers",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}),
            json!(["c", "b"]),
        ),
        (
            // kubectl apply switching to Recreate sends $retainKeys (strategy is retainKeys).
            "/spec/strategy",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            json!({"type": "Recreate"}),
        ),
        (
            "/spec/selector",
            json!({"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}}),
            json!({"matchLabels": {"x": "y"}}),
        ),
        (
            "/spec/template/spec/containers",
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only"}]}}}}),
            json!([{"name": "only"}]),
        ),
        (
            // kubectl label/annotate style nulls.
            "/metadata/labels",
            json!({"metadata": {"labels": {"app": null, "new": "1"}}}),
            json!({"new": "1"}),
        ),
    ];
    for (pointer, patch, want) in cases {
        let mut got = deployment();
        strategic_merge(R::Deployments, &mut got, patch).unwrap();
        assert_eq!(got.pointer(pointer), Some(want), "patch {patch}");
    }
}

#[test]
fn strategic_merge_other_types() {
    let mut node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
    let patch = json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                   "addresses": [{"type": "Hostname", "address": "n1"}]}});
    strategic_merge(R::Nodes, &mut node, &patch).unwrap();
    assert_eq!(
        node["spec"]["taints"],
        json!([{"key": "b", "effect": "NoExecute"}])
    );
    assert_eq!(
        node["status"]["conditions"],
        json!([{"type": "Ready", "status": "Unknown"}, {"type": "DiskPressure", "status": "False"}])
    );
    assert_eq!(node["status"]["addresses"].as_array().unwrap().len(), 2);

    let mut svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}});
    strategic_merge(R::Services, &mut svc, &patch).unwrap();
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );

    // A ConfigMap has no lists: maps merge, null deletes.
    let mut cm = json!({"data": {"a": "1", "b": "2"}});
    strategic_merge(
        R::ConfigMaps,
        &mut cm,
        &json!({"data": {"a": null, "c": "3"}}),
    )
    .unwrap();
    assert_eq!(cm, json!({"data": {"b": "2", "c": "3"}}));
}

#[test]
fn strategic_merge_errors_leave_target_unchanged() {
    let cases: &[(Value, u16)] = &[
        (json!([1]), 400),
        (json!({"spec": {"$patch": "frobnicate"}}), 400),
        (json!({"spec": {"$frob": 1}}), 400),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            400,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
            400,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge", "name": "x"}]}}}}),
            400,
        ),
        (
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"name": "other", "image": "x"}]}}}}),
            400,
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
            422,
        ),
        (json!({"metadata": {"finalizers": [["nested"]]}}), 422),
    ];
    for (patch, code) in cases {
        let mut got = deployment();
        let err = strategic_merge(R::Deployments, &mut got, patch).unwrap_err();
        assert_eq!(err.code(), *code, "patch {patch}: {err}");
        assert_eq!(got, deployment());
    }
}

fn managed(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .unwrap_or(&Value::Null)
}

#[test]
fn record_update_on_create_matches_kube_fieldsv1() {
    // kubectl create configmap cm --from-literal=key=v (fieldManager=kubectl-create).
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "x"}},
        "data": {"key": "v"}});
    record_update(R::ConfigMaps, None, &mut cm, "kubectl-create", None, NOW);
    assert_eq!(
        managed(&cm),
        alloc::vec![
            json!({"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
            "time": "2024-11-14T23:46:29Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:key": {}},
                         "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}})
        ]
    );
    // A pod: f:spec has no "." (a Go struct is never absent); containers items do.
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
        "status": {"phase": "Pending"}});
    record_update(R::Pods, None, &mut pod, "kubectl-run", None, NOW);
    assert_eq!(
        entry(&pod, "kubectl-run")["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
            ".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}}}})
    );
}

#[test]
fn record_update_moves_ownership_and_merges_entries() {
    let old = {
        let mut d = deployment();
        record_update(R::Deployments, None, &mut d, "kubectl-create", None, NOW);
        d
    };
    // kubectl edit changes the image: the field moves from kubectl-create to kubectl-edit.
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.16");
    record_update(
        R::Deployments,
        Some(&old),
        &mut new,
        "kubectl-edit",
        None,
        LATER,
    );
    let image = "k:{\"name\":\"nginx\"}";
    assert_eq!(
        entry(&new, "kubectl-edit")["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {image: {"f:image": {}}}}}}})
    );
    assert_eq!(entry(&new, "kubectl-edit")["time"], "2024-11-15T00:03:09Z");
    let create = &entry(&new, "kubectl-create")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        [image];
    assert!(create.get("f:image").is_none());
    assert!(create.get("f:name").is_some());

    // The same manager again: one entry, union of both writes.
    let old2 = new.clone();
    new["spec"]["replicas"] = json!(3);
    record_update(
        R::Deployments,
        Some(&old2),
        &mut new,
        "kubectl-edit",
        None,
        LATER,
    );
    let edits: Vec<_> = managed(&new)
        .into_iter()
        .filter(|e| e["manager"] == "kubectl-edit")
        .collect();
    assert_eq!(edits.len(), 1);
    assert!(edits[0]["fieldsV1"]["f:spec"]["f:replicas"].is_object());

    // A write that changes nothing adds no entry.
    let before = new.clone();
    record_update(R::Deployments, Some(&before), &mut new, "noop", None, LATER);
    assert_eq!(new, before);

    // Status subresource: only status counts, under its own entry.
    let old3 = new.clone();
    new["status"] = json!({"replicas": 3});
    new["spec"]["replicas"] = json!(9);
    record_update(
        R::Deployments,
        Some(&old3),
        &mut new,
        "kube-controller-manager",
        Some("status"),
        LATER,
    );
    let e = entry(&new, "kube-controller-manager");
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {".": {}, "f:replicas": {}}})
    );

    // Removing a field drops it from its owner.
    let old4 = new.clone();
    new["metadata"]["labels"] = json!(null);
    new["metadata"].as_object_mut().unwrap().remove("labels");
    record_update(
        R::Deployments,
        Some(&old4),
        &mut new,
        "kubectl-edit",
        None,
        LATER,
    );
    assert!(
        entry(&new, "kubectl-create")["fieldsV1"]["f:metadata"]
            .get("f:labels")
            .is_none()
    );
}

#[test]
fn record_update_caps_update_managers() {
    let mut obj = json!({"metadata": {"name": "cm"}, "data": {}});
    for i in 0..12u64 {
        let old = obj.clone();
        obj["data"][alloc::format!("k{i}")] = json!("v");
        record_update(
            R::ConfigMaps,
            Some(&old),
            &mut obj,
            &alloc::format!("m{i:02}"),
            None,
            NOW.plus_secs(i),
        );
    }
    let list = managed(&obj);
    assert_eq!(list.len(), 10);
    let ancient = entry(&obj, "ancient-changes");
    assert!(ancient["fieldsV1"]["f:data"]["f:k0"].is_object());
    assert!(ancient["fieldsV1"]["f:data"]["f:k2"].is_object());
}

fn applied_deployment(replicas: u64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]}}}})
}

#[test]
fn server_side_apply_create_sets_apply_entry() {
    // kubectl apply --server-side (fieldManager=kubectl) on a missing object.
    let created = server_side_apply(
        R::Deployments,
        None,
        &applied_deployment(2, "nginx"),
        "kubectl",
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(
        managed(&created),
        alloc::vec![
            json!({"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "2024-11-14T23:46:29Z", "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {}}}}}}}})
        ]
    );
    // managedFields in the body is refused.
    let mut bad = applied_deployment(2, "nginx");
    bad["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        server_side_apply(R::Deployments, None, &bad, "kubectl", false, NOW)
            .unwrap_err()
            .code(),
        400
    );
}

#[test]
fn server_side_apply_update_prunes_what_the_manager_dropped() {
    let mut config = applied_deployment(2, "nginx");
    config["metadata"]["labels"]["tier"] = json!("fe");
    config["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "nginx", "image": "nginx"}, {"name": "sidecar", "image": "busybox"}]);
    let live = server_side_apply(R::Deployments, None, &config, "kubectl", false, NOW).unwrap();
    // Re-apply without the tier label and the sidecar: both go.
    let next = server_side_apply(
        R::Deployments,
        Some(&live),
        &applied_deployment(2, "nginx:2"),
        "kubectl",
        false,
        LATER,
    )
    .unwrap();
    assert_eq!(next["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        next["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:2"}])
    );
    assert_eq!(managed(&next).len(), 1);
    assert_eq!(entry(&next, "kubectl")["time"], "2024-11-15T00:03:09Z");
}

#[test]
fn server_side_apply_conflicts_and_force() {
    // Created by client-side apply (kubectl-client-side-apply owns spec.replicas).
    let mut live = applied_deployment(1, "nginx");
    record_update(
        R::Deployments,
        None,
        &mut live,
        "kubectl-client-side-apply",
        None,
        NOW,
    );

    // Same value: no conflict, shared ownership.
    let shared = server_side_apply(
        R::Deployments,
        Some(&live),
        &applied_deployment(1, "nginx"),
        "kubectl",
        false,
        LATER,
    )
    .unwrap();
    assert!(
        entry(&shared, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]["f:replicas"].is_object()
    );
    assert!(entry(&shared, "kubectl")["fieldsV1"]["f:spec"]["f:replicas"].is_object());

    // Different value: 409 with kube's wording.
    let err = server_side_apply(
        R::Deployments,
        Some(&live),
        &applied_deployment(3, "nginx"),
        "kubectl",
        false,
        LATER,
    )
    .unwrap_err();
    assert_eq!(err.code(), 409);
    let Error::ApplyConflict {
        resource,
        name,
        message: detail,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (resource.as_str(), name.as_str()),
        ("deployments.apps", "web")
    );
    assert_eq!(
        detail,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );

    // Two conflicting fields are listed per manager.
    let err = server_side_apply(
        R::Deployments,
        Some(&live),
        &applied_deployment(3, "nginx:2"),
        "kubectl",
        false,
        LATER,
    )
    .unwrap_err();
    let Error::ApplyConflict {
        message: detail, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        detail,
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );

    // --force-conflicts: the value changes and ownership moves.
    let forced = server_side_apply(
        R::Deployments,
        Some(&live),
        &applied_deployment(3, "nginx"),
        "kubectl",
        true,
        LATER,
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(
        entry(&forced, "kubectl-client-side-apply")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert!(entry(&forced, "kubectl")["fieldsV1"]["f:spec"]["f:replicas"].is_object());
    // Apply entries sort before Update entries.
    assert_eq!(managed(&forced)[0]["operation"], "Apply");
}

#[test]
fn server_side_apply_two_appliers_share_and_keep_fields() {
    let cm = |labels: Value, data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": labels}, "data": data});
    let live = server_side_apply(
        R::ConfigMaps,
        None,
        &cm(json!({"a": "1"}), json!({"x": "1"})),
        "alice",
        false,
        NOW,
    )
    .unwrap();
    let live = server_side_apply(
        R::ConfigMaps,
        Some(&live),
        &cm(json!({"a": "1", "b": "2"}), json!({})),
        "bob",
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(live["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    // Alice drops label a: bob still owns it, so it stays; her data.x goes.
    let live = server_side_apply(
        R::ConfigMaps,
        Some(&live),
        &cm(json!({}), json!({"y": "2"})),
        "alice",
        false,
        LATER,
    )
    .unwrap();
    assert_eq!(live["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    assert_eq!(live["data"], json!({"y": "2"}));
    // Bob changing data.y (alice's) conflicts with an Apply manager: no "using".
    let err = server_side_apply(
        R::ConfigMaps,
        Some(&live),
        &cm(json!({}), json!({"y": "3"})),
        "bob",
        false,
        LATER,
    )
    .unwrap_err();
    let Error::ApplyConflict {
        message: detail, ..
    } = err
    else {
        panic!()
    };
    assert_eq!(
        detail,
        "Apply failed with 1 conflict: conflict with \"alice\": .data.y"
    );
}

#[test]
fn server_side_apply_merges_associative_lists_and_keeps_status() {
    let mut live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x"}], "tolerations": [{"key": "t"}]},
        "status": {"phase": "Running"}});
    record_update(R::Pods, None, &mut live, "kubectl-create", None, NOW);
    let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "b", "image": "y", "ports": [{"containerPort": 80}]}],
                 "tolerations": [{"key": "u"}]},
        "status": {"phase": "Failed"}});
    let out = server_side_apply(R::Pods, Some(&live), &applied, "mgr", true, LATER).unwrap();
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "x"},
        {"name": "b", "image": "y", "ports": [{"containerPort": 80}]}])
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "u"}]));
    assert_eq!(out["status"], json!({"phase": "Running"}));
    let fields = &entry(&out, "mgr")["fieldsV1"];
    assert!(fields["f:spec"]["f:containers"]["k:{\"name\":\"b\"}"]["f:ports"]
        ["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
    assert!(fields.get("f:status").is_none());
    assert!(fields["f:spec"]["f:tolerations"].is_object());
}

#[test]
fn large_keyed_lists_stay_fast() {
    // ~50k items fit in a 3 MiB body; lookups by key must not be quadratic.
    let env: Vec<Value> = (0..50_000)
        .map(|i| json!({"name": alloc::format!("V{i}"), "value": "x"}))
        .collect();
    let pod = |env: &[Value]| {
        json!({"metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "i", "env": env}]}})
    };
    let mut live = pod(&env);
    let mut patched_env = env.clone();
    patched_env.reverse();
    let patch = json!({"spec": {"containers": [{"name": "c", "env": patched_env}]}});
    strategic_merge(R::Pods, &mut live, &patch).unwrap();
    assert_eq!(
        live["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .len(),
        50_000
    );
    let mut created = pod(&env);
    record_update(R::Pods, None, &mut created, "kubectl-create", None, NOW);
    let applied = server_side_apply(
        R::Pods,
        Some(&created),
        &pod(&patched_env),
        "kubectl",
        true,
        LATER,
    )
    .unwrap();
    assert_eq!(
        applied["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .len(),
        50_000
    );
}
