//! Table-driven tests; the patches are the ones kubectl 1.32 sends (`kubectl -v=8`).

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::*;
use crate::resource::ResourceId as R;

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

pub(super) fn deployment() -> Value {
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

#[test]
fn json_patch_test_treats_a_missing_key_as_null() {
    // evanphx/json-patch v4 as kube-apiserver runs it.
    let doc = json!({"metadata": {"name": "x", "labels": null, "finalizers": ["a"]},
                     "spec": {"list": [1, null]}});
    let passes = [
        json!({"op": "test", "path": "/metadata/annotations", "value": null}),
        json!({"op": "test", "path": "/metadata/annotations"}),
        json!({"op": "test", "path": "/metadata/labels", "value": null}),
        json!({"op": "test", "path": "/spec/list/1", "value": null}),
        json!({"op": "test", "path": "/spec/list/-1", "value": null}),
        json!({"op": "test", "path": "/spec/list/0", "value": 1}),
        json!({"op": "test", "path": "/metadata/finalizers", "value": ["a"]}),
        json!({"op": "test", "path": "", "value": doc.clone()}),
    ];
    for op in passes {
        let mut got = doc.clone();
        json_patch(&mut got, &json!([op])).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(got, doc);
    }
    let fails = [
        (
            json!({"op": "test", "path": "/metadata/annotations", "value": "x"}),
            "testing value /metadata/annotations failed: test failed",
        ),
        (
            json!({"op": "test", "path": "/metadata/name"}),
            "testing value /metadata/name failed: test failed",
        ),
        (
            json!({"op": "test", "path": "/metadata/name", "value": null}),
            "testing value /metadata/name failed: test failed",
        ),
        (
            json!({"op": "test", "path": "/nope/deeper", "value": null}),
            "test operation does not apply: is missing path: /nope/deeper: missing value",
        ),
        (
            json!({"op": "test", "path": "/metadata/labels/x", "value": null}),
            "test operation does not apply: is missing path: /metadata/labels/x: missing value",
        ),
        (
            json!({"op": "test", "path": "/metadata/name/x", "value": null}),
            "test operation does not apply: is missing path: /metadata/name/x: missing value",
        ),
        (
            json!({"op": "test", "path": "/spec/list/2", "value": null}),
            "error in test for path: '/spec/list/2': Unable to access invalid index: 2: invalid index referenced",
        ),
    ];
    for (op, cause) in fails {
        let mut got = doc.clone();
        let err = json_patch(&mut got, &json!([op])).unwrap_err();
        assert_eq!(err, Error::Unprocessable(cause.into()), "{op}");
        // On the wire kube keeps only its generic message, with empty details.
        let status = err.to_status();
        assert_eq!(
            (
                status["code"].clone(),
                status["reason"].clone(),
                status["details"].clone()
            ),
            (json!(422), json!("Invalid"), json!({}))
        );
        assert_eq!(
            status["message"],
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(got, doc);
    }
    // The finalizer helper of controller-runtime-style operators: add the list only if absent.
    let mut obj = json!({"metadata": {"name": "x"}});
    let add_first = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                           {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}]);
    json_patch(&mut obj, &add_first).unwrap();
    assert_eq!(obj["metadata"]["finalizers"], json!(["x"]));
    // Once present, the same patch is refused and changes nothing.
    assert_eq!(json_patch(&mut obj, &add_first).unwrap_err().code(), 422);
    assert_eq!(obj["metadata"]["finalizers"], json!(["x"]));
}
