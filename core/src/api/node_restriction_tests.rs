//! NodeRestriction and the Node authorizer, table-driven against the core alone: every change a
//! node may not make, on every write path that can express it, is refused in kube's words and
//! stores nothing; what kube lets a node do (read what its pods use, its own objects) works.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster as Core, Method, Outcome};
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::token::{SealClaims, ed25519_address, hex32, mint_ed25519};
use crate::{Config, UnixTime};

const ADMIN: &str = "admin";
const PACKAGE: [u8; 32] = [0xab; 32];
const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

struct Cluster {
    s: Core,
    /// Seal tokens of node-a and node-b.
    a: String,
    b: String,
}

fn token(seed: u8, node: &str) -> String {
    mint_ed25519(
        &[seed; 32],
        &SealClaims {
            node_id: node.into(),
            stake_id: [seed.wrapping_add(100); 32],
            iat: NOW.secs(),
            exp: NOW.secs() + 3600,
        },
    )
}

fn send(
    s: &mut Core,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<&Value>,
    bearer: &str,
) -> (u16, Value) {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let auth = alloc::format!("Bearer {bearer}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some(content_type);
    req.body = &bytes;
    match crate::cluster::test_harness::answer(s, NOW, &req) {
        Outcome::Watch(_) => (200, json!({"watch": true})),
        other => {
            let r = other.into_response().unwrap();
            (
                r.status,
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            )
        }
    }
}

fn admin(c: &mut Cluster, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let ct = if method == Method::Patch {
        MERGE
    } else {
        "application/json"
    };
    send(&mut c.s, method, path, ct, body, ADMIN)
}

fn register(s: &mut Core, seed: u8, node: &str, labels: Value) -> (u16, Value) {
    let token = token(seed, node);
    let body = serde_json::to_vec(&json!({"node_id": node, "seal_token": token,
        "timestamp": NOW.secs(), "labels": labels}))
    .unwrap();
    let mut req = ApiRequest::new(Method::Post, "/api/v1/register-worker");
    req.seal_token = Some(&token);
    req.body = &body;
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

/// Three stakes; node-a and node-b registered, node-a cordoned by the admin, with an admin taint
/// and label.
fn cluster(config: Config) -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        ..config
    };
    let mut s = Core::new(config, [3; 32], NOW);
    for (seed, digest) in [(1u8, 'A'), (2, 'B'), (3, 'C')] {
        let pkg = hex32(&PACKAGE);
        let event = json!({"id": {"txDigest": core::iter::repeat_n(digest, 44).collect::<String>(), "eventSeq": "0"},
            "packageId": pkg, "transactionModule": "staking", "sender": "0x00",
            "type": alloc::format!("{pkg}::staking::StakeDeposited"), "timestampMs": "1",
            "parsedJson": {"stake_id": hex32(&[seed.wrapping_add(100); 32]),
                "owner": ed25519_address(&[seed; 32]).to_hex(), "amount": "2000000000"}});
        let body = json!({"checkpoint": seed, "events": [event]});
        let (code, reply) = send(
            &mut s,
            Method::Post,
            "/api/v1/sui-events",
            "application/json",
            Some(&body),
            ADMIN,
        );
        assert_eq!(code, 200, "{reply}");
    }
    let simulated = json!({"nautilus.io/simulated": "true"});
    assert_eq!(register(&mut s, 1, "node-a", simulated.clone()).0, 200);
    assert_eq!(register(&mut s, 2, "node-b", simulated).0, 200);
    let mut c = Cluster {
        s,
        a: token(1, "node-a"),
        b: token(2, "node-b"),
    };
    let cordon = json!({"metadata": {"labels": {"node-role.kubernetes.io/worker": ""}},
        "spec": {"unschedulable": true, "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}});
    let (code, body) = admin(&mut c, Method::Patch, "/api/v1/nodes/node-a", Some(&cordon));
    assert_eq!(code, 200, "{body}");
    c
}

fn stored(c: &Cluster, resource: ResourceId, namespace: &str, name: &str) -> Option<Value> {
    c.s.store()
        .get(&ObjectKey::new(resource, namespace, name))
        .map(|o| serde_json::from_slice(&o.json.bytes()).unwrap())
}

fn node_a(c: &Cluster) -> Value {
    stored(c, ResourceId::Nodes, "", "node-a").unwrap()
}

/// RFC 7386: the merge patch that turns `old` into `new`.
fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Map::new();
            for (k, v) in b {
                match a.get(k) {
                    Some(o) if o == v => {}
                    Some(o) => {
                        out.insert(k.clone(), merge_diff(o, v));
                    }
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

/// The merge patch back from `now` to `old`, without the server's bookkeeping.
fn undo(now: &Value, old: &Value) -> Value {
    let mut diff = merge_diff(now, old);
    if let Some(meta) = diff.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    diff
}

/// RFC 6902 operations that turn `old` into `new`, one per changed leaf or key.
fn json_patch_ops(old: &Value, new: &Value, at: &str, ops: &mut Vec<Value>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                let path = alloc::format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match a.get(k) {
                    Some(o) if o == v => {}
                    Some(o) => json_patch_ops(o, v, &path, ops),
                    None => ops.push(json!({"op": "add", "path": path, "value": v})),
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                let path = alloc::format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                ops.push(json!({"op": "remove", "path": path}));
            }
        }
        _ => ops.push(json!({"op": "replace", "path": at, "value": new})),
    }
}

/// Whether a merge patch only adds or changes (apply cannot remove what another manager owns).
fn only_sets(patch: &Value) -> bool {
    match patch {
        Value::Null => false,
        Value::Object(m) => m.values().all(only_sets),
        _ => true,
    }
}

/// Every request that writes `new` over `old` on `base` (a Node or a pod's status): PUT, each
/// patch format, and server-side apply where it can say it. Each row: (what, method, path,
/// content type, body).
fn write_paths(
    base: &str,
    subresource: Option<&str>,
    old: &Value,
    new: &Value,
) -> Vec<(String, Method, String, &'static str, Value)> {
    let url = match subresource {
        Some(sub) => alloc::format!("{base}/{sub}"),
        None => base.to_string(),
    };
    let diff = merge_diff(old, new);
    let mut ops = Vec::new();
    json_patch_ops(old, new, "", &mut ops);
    let mut full = new.clone();
    full["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let mut rows = alloc::vec![
        (
            "update".into(),
            Method::Put,
            url.clone(),
            "application/json",
            full
        ),
        (
            "merge patch".into(),
            Method::Patch,
            url.clone(),
            MERGE,
            diff.clone()
        ),
        (
            "json patch".into(),
            Method::Patch,
            url.clone(),
            JSON_PATCH,
            Value::Array(ops)
        ),
        (
            "strategic merge patch".into(),
            Method::Patch,
            url.clone(),
            STRATEGIC,
            diff.clone()
        ),
    ];
    if only_sets(&diff) {
        let mut applied = diff;
        let map = applied.as_object_mut().unwrap();
        map.insert("apiVersion".into(), old["apiVersion"].clone());
        map.insert("kind".into(), old["kind"].clone());
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        meta["name"] = old["metadata"]["name"].clone();
        if let Some(ns) = old["metadata"].get("namespace") {
            meta["namespace"] = ns.clone();
        }
        rows.push((
            "server-side apply".into(),
            Method::Patch,
            alloc::format!("{url}?fieldManager=kubelet&force=true"),
            APPLY,
            applied,
        ));
    }
    for row in &mut rows {
        row.0 = alloc::format!("{} of {url}", row.0);
    }
    rows
}

type Edit = fn(&mut Value);

#[test]
fn a_node_changes_no_forbidden_field_of_its_node_on_any_write_path() {
    let mut c = cluster(Config::default());
    let forbidden: &[(&str, Edit, &str)] = &[
        (
            "adds node-role.kubernetes.io/control-plane",
            |n| n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = json!(""),
            "is not allowed to modify labels: node-role.kubernetes.io/control-plane",
        ),
        (
            "adds a node-restriction label",
            |n| n["metadata"]["labels"]["node-restriction.kubernetes.io/x"] = json!("y"),
            "is not allowed to modify labels: node-restriction.kubernetes.io/x",
        ),
        (
            "adds kubernetes.io/foo and k8s.io/bar",
            |n| {
                n["metadata"]["labels"]["kubernetes.io/foo"] = json!("1");
                n["metadata"]["labels"]["k8s.io/bar"] = json!("1");
            },
            "is not allowed to modify labels: k8s.io/bar, kubernetes.io/foo",
        ),
        (
            "changes the admin's role label",
            |n| n["metadata"]["labels"]["node-role.kubernetes.io/worker"] = json!("gpu"),
            "is not allowed to modify labels: node-role.kubernetes.io/worker",
        ),
        (
            "removes the admin's role label",
            |n| {
                n["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("node-role.kubernetes.io/worker");
            },
            "is not allowed to modify labels: node-role.kubernetes.io/worker",
        ),
        (
            "removes the admin's taint",
            |n| {
                n["spec"].as_object_mut().unwrap().remove("taints");
            },
            "node \"node-a\" is not allowed to modify taints",
        ),
        (
            "adds a taint",
            |n| {
                n["spec"]["taints"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"key": "mine", "effect": "NoSchedule"}))
            },
            "node \"node-a\" is not allowed to modify taints",
        ),
        (
            "uncordons itself",
            |n| n["spec"]["unschedulable"] = json!(false),
            "node \"node-a\" is not allowed to modify spec.unschedulable",
        ),
        (
            "removes its stake annotation",
            |n| {
                n["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("nautilus.io/stake-id");
            },
            "node \"node-a\" is not allowed to modify annotations: nautilus.io/stake-id",
        ),
        (
            "raises its trust level",
            |n| {
                n["metadata"]["annotations"]["nautilus.io/stake-trust-level"] =
                    json!("light-client")
            },
            "node \"node-a\" is not allowed to modify annotations: nautilus.io/stake-trust-level",
        ),
        (
            "sets ownerReferences",
            |n| {
                n["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Namespace",
                    "name": "gone", "uid": "6b1c4a2e-0000-4000-8000-000000000000"}])
            },
            "node \"node-a\" is not allowed to modify ownerReferences",
        ),
        (
            "sets a configSource",
            |n| n["spec"]["configSource"] = json!({"configMap": {"name": "kubelet", "namespace": "kube-system", "kubeletConfigKey": "kubelet"}}),
            "node \"node-a\" is not allowed to update configSource to a new non-nil configSource",
        ),
    ];
    let mut tried = 0;
    for (what, edit, reason) in forbidden {
        let old = node_a(&c);
        let mut new = old.clone();
        edit(&mut new);
        for sub in [None, Some("status")] {
            for (path, method, url, ct, body) in
                write_paths("/api/v1/nodes/node-a", sub, &old, &new)
            {
                let revision = c.s.store().revision();
                let (code, status) = send(&mut c.s, method, &url, ct, Some(&body), &c.a.clone());
                assert_eq!(code, 403, "{what} by {path}: {status}");
                assert_eq!(
                    status["message"],
                    alloc::format!("nodes \"node-a\" is forbidden: {reason}"),
                    "{what} by {path}"
                );
                assert_eq!(status["reason"], "Forbidden");
                assert_eq!(
                    status["details"],
                    json!({"name": "node-a", "kind": "nodes"})
                );
                assert_eq!(c.s.store().revision(), revision, "{what} by {path} stored");
                assert_eq!(node_a(&c), old, "{what} by {path} changed the node");
                tried += 1;
            }
        }
        // The admin makes the same change (the rule is the node's, not the field's).
        let (code, body) = send(
            &mut c.s,
            Method::Patch,
            "/api/v1/nodes/node-a",
            MERGE,
            Some(&merge_diff(&old, &new)),
            ADMIN,
        );
        assert!(code == 200 || code == 422, "admin: {what}: {body}");
        if code == 200 {
            let back = undo(&node_a(&c), &old);
            let (code, body) = send(
                &mut c.s,
                Method::Patch,
                "/api/v1/nodes/node-a",
                MERGE,
                Some(&back),
                ADMIN,
            );
            assert_eq!(code, 200, "admin undoes {what}: {body}");
        }
    }
    assert!(tried >= 12 * 9, "{tried} attempts");

    let allowed: &[(&str, Edit)] = &[
        ("adds its own label", |n| {
            n["metadata"]["labels"]["example.com/gpu"] = json!("a100")
        }),
        ("adds kubelet labels", |n| {
            let labels = &mut n["metadata"]["labels"];
            labels["node.kubernetes.io/instance-type"] = json!("m5.large");
            labels["topology.kubernetes.io/zone"] = json!("eu-1a");
            labels["kubernetes.io/arch"] = json!("arm64");
            labels["x.kubelet.kubernetes.io/y"] = json!("z");
        }),
        ("changes a kubelet label", |n| {
            n["metadata"]["labels"]["kubernetes.io/os"] = json!("windows")
        }),
        ("annotates itself", |n| {
            n["metadata"]["annotations"]["example.com/note"] = json!("hello")
        }),
        ("reports a condition", |n| {
            n["status"]["conditions"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"}))
        }),
    ];
    for (what, edit) in allowed {
        for sub in [None, Some("status")] {
            let old = node_a(&c);
            let mut new = old.clone();
            edit(&mut new);
            // (Server-side apply to `/status` is left out: core's apply does not write status.)
            for (path, method, url, ct, body) in
                write_paths("/api/v1/nodes/node-a", sub, &old, &new)
                    .into_iter()
                    .filter(|row| sub.is_none() || row.3 != APPLY)
            {
                let (code, reply) = send(&mut c.s, method, &url, ct, Some(&body), &c.a.clone());
                assert_eq!(code, 200, "{what} by {path}: {reply}");
                let now = node_a(&c);
                // Labels and annotations land through both; status only through /status.
                let lands = sub == Some("status") || !what.starts_with("reports");
                assert_eq!(
                    now["metadata"]["labels"], new["metadata"]["labels"],
                    "{what} by {path}"
                );
                assert_eq!(
                    now["metadata"]["annotations"], new["metadata"]["annotations"],
                    "{what} by {path}"
                );
                assert_eq!(
                    now["status"] == new["status"],
                    lands,
                    "{what} by {path}: {now}"
                );
                // Back to `old` for the next path (as the admin, so nothing stays owned).
                let back = undo(&now, &old);
                let undo_url = match sub {
                    Some(s) => alloc::format!("/api/v1/nodes/node-a/{s}"),
                    None => "/api/v1/nodes/node-a".into(),
                };
                let (code, reply) = send(
                    &mut c.s,
                    Method::Patch,
                    &undo_url,
                    MERGE,
                    Some(&back),
                    ADMIN,
                );
                assert_eq!(code, 200, "undo {what} by {path}: {reply}");
            }
        }
    }
}

#[test]
fn a_node_reaches_only_its_own_nodes_and_leases() {
    let mut c = cluster(Config::default());
    let a = c.a.clone();
    let revision = c.s.store().revision();
    let cases: &[(Method, &str, Option<Value>, &str)] = &[
        (
            Method::Patch,
            "/api/v1/nodes/node-b",
            Some(json!({"metadata": {"labels": {"x": "y"}}})),
            "nodes \"node-b\" is forbidden: node \"node-a\" is not allowed to modify node \"node-b\"",
        ),
        (
            Method::Patch,
            "/api/v1/nodes/node-b/status",
            Some(json!({"status": {"phase": "x"}})),
            "nodes \"node-b\" is forbidden: node \"node-a\" is not allowed to modify node \"node-b\"",
        ),
        (
            Method::Get,
            "/api/v1/nodes/node-b",
            None,
            "nodes \"node-b\" is forbidden: User \"system:node:node-a\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object",
        ),
        (
            Method::Get,
            "/api/v1/nodes",
            None,
            "nodes is forbidden: User \"system:node:node-a\" cannot list resource \"nodes\" in API group \"\" at the cluster scope: node 'node-a' cannot read all nodes, only its own Node object",
        ),
        (
            Method::Delete,
            "/api/v1/nodes/node-a",
            None,
            "nodes \"node-a\" is forbidden: User \"system:node:node-a\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope",
        ),
        (
            Method::Get,
            "/api/v1/nodes/node-a/status",
            None,
            "nodes \"node-a\" is forbidden: User \"system:node:node-a\" cannot get resource \"nodes/status\" in API group \"\" at the cluster scope",
        ),
        (
            Method::Post,
            "/api/v1/nodes",
            Some(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-c"}})),
            "nodes \"node-c\" is forbidden: node \"node-a\" is not allowed to modify node \"node-c\"",
        ),
        (
            Method::Post,
            "/api/v1/nodes",
            Some(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a",
                "labels": {"node-role.kubernetes.io/control-plane": ""}}}),
            ),
            "nodes \"node-a\" is forbidden: node \"node-a\" is not allowed to set the following labels: node-role.kubernetes.io/control-plane",
        ),
        (
            Method::Post,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            Some(
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-c"},
                "spec": {"holderIdentity": "node-c"}}),
            ),
            "leases.coordination.k8s.io \"node-c\" is forbidden: can only access node lease with the same name as the requesting node",
        ),
        (
            Method::Post,
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            Some(
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-a"}}),
            ),
            "leases.coordination.k8s.io is forbidden: User \"system:node:node-a\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\": can only access leases in the \"kube-node-lease\" system namespace",
        ),
        (
            Method::Put,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-b",
            Some(
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-b"}}),
            ),
            "leases.coordination.k8s.io \"node-b\" is forbidden: User \"system:node:node-a\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only access node lease with the same name as the requesting node",
        ),
        (
            Method::Get,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            None,
            "leases.coordination.k8s.io is forbidden: User \"system:node:node-a\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only get, create, update, patch, or delete a node lease",
        ),
        (
            Method::Get,
            "/api/v1/namespaces",
            None,
            "namespaces is forbidden: User \"system:node:node-a\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
        ),
        (
            Method::Get,
            "/api/v1/namespaces/default/events",
            None,
            "events is forbidden: User \"system:node:node-a\" cannot list resource \"events\" in API group \"\" in the namespace \"default\"",
        ),
        (
            Method::Get,
            "/api/v1/namespaces/default/endpoints",
            None,
            "endpoints is forbidden: User \"system:node:node-a\" cannot list resource \"endpoints\" in API group \"\" in the namespace \"default\"",
        ),
        (
            Method::Post,
            "/apis/node.k8s.io/v1/runtimeclasses",
            Some(
                json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "fast"},
                "handler": "fast"}),
            ),
            "runtimeclasses.node.k8s.io is forbidden: User \"system:node:node-a\" cannot create resource \"runtimeclasses\" in API group \"node.k8s.io\" at the cluster scope",
        ),
    ];
    for (method, path, body, message) in cases {
        let ct = if *method == Method::Patch {
            MERGE
        } else {
            "application/json"
        };
        let (code, status) = send(&mut c.s, *method, path, ct, body.as_ref(), &a);
        assert_eq!(code, 403, "{method:?} {path}: {status}");
        assert_eq!(status["message"], *message, "{method:?} {path}");
    }
    assert_eq!(c.s.store().revision(), revision, "nothing was stored");

    // What kube lets it do.
    let allowed: &[(Method, &str, Option<Value>, u16)] = &[
        (Method::Get, "/api/v1/nodes/node-a", None, 200),
        (
            Method::Get,
            "/api/v1/nodes?fieldSelector=metadata.name%3Dnode-a",
            None,
            200,
        ),
        (
            Method::Get,
            "/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Dnode-a",
            None,
            200,
        ),
        // Its Node exists: a kubelet's create is answered as kube answers it.
        (
            Method::Post,
            "/api/v1/nodes",
            Some(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a",
                "labels": {"kubernetes.io/hostname": "node-a"}}}),
            ),
            409,
        ),
        (
            Method::Get,
            "/api/v1/namespaces/default/services",
            None,
            200,
        ),
        (
            Method::Get,
            "/apis/node.k8s.io/v1/runtimeclasses?watch=1",
            None,
            200,
        ),
        // Authorized: the answer is that the object does not exist.
        (
            Method::Get,
            "/api/v1/namespaces/default/endpoints/kubernetes",
            None,
            404,
        ),
        (
            Method::Post,
            "/api/v1/namespaces/default/events",
            Some(
                json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "node-a.1"},
                "involvedObject": {"kind": "Node", "name": "node-a"}, "reason": "Starting",
                "message": "Starting kubelet.", "type": "Normal", "source": {"component": "kubelet"}}),
            ),
            201,
        ),
        (
            Method::Patch,
            "/api/v1/namespaces/default/events/node-a.1",
            Some(json!({"count": 2})),
            200,
        ),
        (
            Method::Get,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a",
            None,
            200,
        ),
        (
            Method::Delete,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a",
            None,
            200,
        ),
        (
            Method::Post,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            Some(
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-a"},
                "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}}),
            ),
            201,
        ),
    ];
    for (method, path, body, want) in allowed {
        let ct = if *method == Method::Patch {
            MERGE
        } else {
            "application/json"
        };
        let (code, reply) = send(&mut c.s, *method, path, ct, body.as_ref(), &a);
        assert_eq!(code, *want, "{method:?} {path}: {reply}");
    }
    let (_, list) = send(
        &mut c.s,
        Method::Get,
        "/api/v1/nodes?fieldSelector=metadata.name%3Dnode-a",
        "",
        None,
        &a,
    );
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

const CSINODES: &str = "/apis/storage.k8s.io/v1/csinodes";

fn csi_node(name: &str, node_uid: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
            "name": name, "uid": node_uid}]},
        "spec": {"drivers": null}})
}

/// kube's Node authorizer and NodeRestriction on CSINodes: a node creates, reads and changes
/// its own (with an ownerReference to its Node, as a kubelet writes it) and no other, by no
/// verb or patch type; it reads CSIDrivers and writes none.
#[test]
fn a_node_writes_only_its_own_csinode() {
    let mut c = cluster(Config::default());
    let (a, b) = (c.a.clone(), c.b.clone());
    let uid = |c: &Cluster, node: &str| {
        stored(c, ResourceId::Nodes, "", node).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (uid_a, uid_b) = (uid(&c, "node-a"), uid(&c, "node-b"));
    let (code, reply) = send(
        &mut c.s,
        Method::Post,
        CSINODES,
        "application/json",
        Some(&csi_node("node-b", &uid_b)),
        &b,
    );
    assert_eq!(code, 201, "{reply}");
    let revision = c.s.store().revision();
    let own = |verb: &str| {
        alloc::format!(
            "csinodes.storage.k8s.io \"node-b\" is forbidden: User \"system:node:node-a\" cannot {verb} resource \"csinodes\" in API group \"storage.k8s.io\" at the cluster scope: can only access CSINode with the same name as the requesting node"
        )
    };
    let verbs = |verb: &str| {
        alloc::format!(
            "csinodes.storage.k8s.io is forbidden: User \"system:node:node-a\" cannot {verb} resource \"csinodes\" in API group \"storage.k8s.io\" at the cluster scope: can only get, create, update, patch, or delete a CSINode"
        )
    };
    let admitted = "csinodes.storage.k8s.io \"node-b\" is forbidden: can only access CSINode with the same name as the requesting node";
    let other = alloc::format!("{CSINODES}/node-b");
    let drivers = json!({"spec": {"drivers": [{"name": "csi.example.com", "nodeID": "x"}]}});
    let cases: Vec<(Method, String, &str, Option<Value>, String)> = alloc::vec![
        (
            Method::Post,
            CSINODES.into(),
            "application/json",
            Some(csi_node("node-b", &uid_a)),
            admitted.into(),
        ),
        (Method::Get, other.clone(), "", None, own("get")),
        (
            Method::Put,
            other.clone(),
            "application/json",
            Some(csi_node("node-b", &uid_b)),
            own("update"),
        ),
        (Method::Patch, other.clone(), MERGE, Some(drivers.clone()), own("patch")),
        (Method::Patch, other.clone(), STRATEGIC, Some(drivers.clone()), own("patch")),
        (
            Method::Patch,
            other.clone(),
            JSON_PATCH,
            Some(json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}])),
            own("patch"),
        ),
        (
            Method::Patch,
            alloc::format!("{other}?fieldManager=kubelet"),
            APPLY,
            Some(csi_node("node-b", &uid_a)),
            own("patch"),
        ),
        // A create through apply or PUT of a name not yet taken is still another node's name.
        (
            Method::Patch,
            alloc::format!("{CSINODES}/node-c?fieldManager=kubelet"),
            APPLY,
            Some(csi_node("node-c", &uid_a)),
            own("patch").replace("node-b", "node-c"),
        ),
        (
            Method::Put,
            alloc::format!("{CSINODES}/node-c"),
            "application/json",
            Some(csi_node("node-c", &uid_a)),
            own("update").replace("node-b", "node-c"),
        ),
        (Method::Delete, other.clone(), "", None, own("delete")),
        (Method::Get, CSINODES.into(), "", None, verbs("list")),
        (Method::Get, alloc::format!("{CSINODES}?watch=1"), "", None, verbs("watch")),
        (Method::Delete, CSINODES.into(), "", None, verbs("deletecollection")),
        (
            Method::Get,
            alloc::format!("{other}/status"),
            "",
            None,
            own("get")
                .replace("resource \"csinodes\"", "resource \"csinodes/status\"")
                .replace(
                    "can only access CSINode with the same name as the requesting node",
                    "cannot authorize CSINode subresources",
                ),
        ),
        (
            Method::Post,
            "/apis/storage.k8s.io/v1/csidrivers".into(),
            "application/json",
            Some(json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "metadata": {"name": "csi.example.com"}, "spec": {}})),
            "csidrivers.storage.k8s.io is forbidden: User \"system:node:node-a\" cannot create resource \"csidrivers\" in API group \"storage.k8s.io\" at the cluster scope".into(),
        ),
    ];
    for (method, path, ct, body, message) in &cases {
        let (code, status) = send(&mut c.s, *method, path, ct, body.as_ref(), &a);
        assert_eq!(code, 403, "{method:?} {path}: {status}");
        assert_eq!(status["message"], message.as_str(), "{method:?} {path}");
    }
    assert_eq!(c.s.store().revision(), revision, "nothing was stored");

    // Its own, on every write path.
    let own_path = alloc::format!("{CSINODES}/node-a");
    let allowed: Vec<(Method, String, &str, Value, u16)> = alloc::vec![
        (
            Method::Post,
            CSINODES.into(),
            "application/json",
            csi_node("node-a", &uid_a),
            201,
        ),
        (Method::Get, own_path.clone(), "", Value::Null, 200),
        (
            Method::Patch,
            own_path.clone(),
            STRATEGIC,
            drivers.clone(),
            200
        ),
        (
            Method::Patch,
            own_path.clone(),
            JSON_PATCH,
            json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}]),
            200,
        ),
        (
            Method::Patch,
            own_path.clone(),
            MERGE,
            json!({"metadata": {"labels": {"x": "z"}}}),
            200,
        ),
        (Method::Delete, own_path.clone(), "", Value::Null, 200),
        (
            Method::Patch,
            alloc::format!("{own_path}?fieldManager=kubelet"),
            APPLY,
            csi_node("node-a", &uid_a),
            201,
        ),
        (
            Method::Get,
            "/apis/storage.k8s.io/v1/csidrivers".into(),
            "",
            Value::Null,
            200,
        ),
        (
            Method::Get,
            "/apis/storage.k8s.io/v1/csidrivers?watch=1".into(),
            "",
            Value::Null,
            200,
        ),
        (
            Method::Get,
            "/apis/storage.k8s.io/v1/csidrivers/csi.example.com".into(),
            "",
            Value::Null,
            404,
        ),
    ];
    for (method, path, ct, body, want) in &allowed {
        let body = (!body.is_null()).then_some(body);
        let (code, reply) = send(&mut c.s, *method, path, ct, body, &a);
        assert_eq!(code, *want, "{method:?} {path}: {reply}");
    }
    let mine = stored(&c, ResourceId::CSINodes, "", "node-a").unwrap();
    assert_eq!(
        mine["metadata"]["ownerReferences"][0]["uid"],
        uid_a.as_str()
    );
    // The full update a kubelet sends after registering its drivers.
    let mut update = mine.clone();
    update["spec"] = json!({"drivers": [{"name": "csi.example.com", "nodeID": "node-a",
        "topologyKeys": ["topology.example.com/zone"]}]});
    let (code, reply) = send(
        &mut c.s,
        Method::Put,
        &own_path,
        "application/json",
        Some(&update),
        &a,
    );
    assert_eq!(code, 200, "{reply}");
    let theirs = stored(&c, ResourceId::CSINodes, "", "node-b").unwrap();
    assert_eq!(
        theirs["spec"]["drivers"],
        Value::Null,
        "node-b's is untouched"
    );
}

/// kube's Node authorizer on VolumeAttachments: a node gets the ones attached to it, one by
/// one, and nothing else.
#[test]
fn a_node_gets_only_the_volume_attachments_of_its_node() {
    let mut c = cluster(Config::default());
    let a = c.a.clone();
    for (name, node) in [("va-a", "node-a"), ("va-b", "node-b")] {
        let va = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": name}, "spec": {"attacher": "csi.example.com", "nodeName": node,
                "source": {"persistentVolumeName": "pv"}}});
        let (code, body) = admin(
            &mut c,
            Method::Post,
            "/apis/storage.k8s.io/v1/volumeattachments",
            Some(&va),
        );
        assert_eq!(code, 201, "{body}");
    }
    let base = "/apis/storage.k8s.io/v1/volumeattachments";
    let (code, got) = send(
        &mut c.s,
        Method::Get,
        &alloc::format!("{base}/va-a"),
        "",
        None,
        &a,
    );
    assert_eq!(code, 200, "{got}");
    let forbidden = |verb: &str, name: Option<&str>, resource: &str, reason: &str| {
        let object = name.map_or_else(String::new, |n| alloc::format!(" \"{n}\""));
        alloc::format!(
            "volumeattachments.storage.k8s.io{object} is forbidden: User \"system:node:node-a\" cannot {verb} resource \"{resource}\" in API group \"storage.k8s.io\" at the cluster scope: {reason}"
        )
    };
    let none = "no relationship found between node 'node-a' and this object";
    let only_get = "can only get individual resources of this type";
    let cases = [
        (
            Method::Get,
            alloc::format!("{base}/va-b"),
            forbidden("get", Some("va-b"), "volumeattachments", none),
        ),
        (
            Method::Get,
            alloc::format!("{base}/va-c"),
            forbidden("get", Some("va-c"), "volumeattachments", none),
        ),
        (
            Method::Get,
            String::from(base),
            forbidden("list", None, "volumeattachments", only_get),
        ),
        (
            Method::Delete,
            alloc::format!("{base}/va-a"),
            forbidden("delete", Some("va-a"), "volumeattachments", only_get),
        ),
        (
            Method::Get,
            alloc::format!("{base}/va-a/status"),
            forbidden(
                "get",
                Some("va-a"),
                "volumeattachments/status",
                "cannot get subresource",
            ),
        ),
    ];
    for (method, path, message) in cases {
        let (code, status) = send(&mut c.s, method, &path, "", None, &a);
        assert_eq!(code, 403, "{method:?} {path}: {status}");
        assert_eq!(status["message"], message.as_str(), "{method:?} {path}");
    }
}

#[test]
fn register_worker_labels_meet_the_kubelet_allowlist() {
    let mut s = cluster(Config::default()).s;
    let revision = s.store().revision();
    let (code, body) = register(
        &mut s,
        1,
        "node-a",
        json!({"node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/x": "y"}),
    );
    assert_eq!(
        (code, &body["status"], &body["reason"]),
        (403, &json!("error"), &json!("Forbidden")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "nodes \"node-a\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/x, node-role.kubernetes.io/control-plane"
    );
    assert_eq!(s.store().revision(), revision, "nothing was stored");

    // A new node registering with them gets the create wording.
    let (code, body) = register(
        &mut s,
        3,
        "node-c",
        json!({"node-role.kubernetes.io/control-plane": "", "kubernetes.io/foo": "x", "example.com/ok": "1"}),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "nodes \"node-c\" is forbidden: node \"node-c\" is not allowed to set the following labels: kubernetes.io/foo, node-role.kubernetes.io/control-plane"
    );
    assert_eq!(s.store().revision(), revision, "nothing was stored");
    assert!(
        s.store()
            .get(&ObjectKey::new(ResourceId::Nodes, "", "node-c"))
            .is_none()
    );
    // Allowed labels register.
    let (code, body) = register(
        &mut s,
        3,
        "node-c",
        json!({"example.com/ok": "1", "topology.kubernetes.io/zone": "z", "node.kubernetes.io/instance-type": "m5"}),
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn pods_status_changes_no_labels_and_nodes_touch_only_their_pods() {
    let mut c = cluster(Config::default());
    let a = c.a.clone();
    for (name, node, app) in [("web", "node-a", "web"), ("other", "node-b", "other")] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}});
        let (code, body) = admin(
            &mut c,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(&pod),
        );
        assert_eq!(code, 201, "{body}");
    }
    let web = stored(&c, ResourceId::Pods, "default", "web").unwrap();

    // The traffic theft: web's labels rewritten to `other`'s through pods/status, every path.
    let mut stolen = web.clone();
    stolen["metadata"]["labels"]["app"] = json!("other");
    stolen["status"]["phase"] = json!("Running");
    let mut rows = write_paths(
        "/api/v1/namespaces/default/pods/web",
        Some("status"),
        &web,
        &stolen,
    );
    assert_eq!(rows.len(), 5);
    let mut added = web.clone();
    added["metadata"]["labels"]["tier"] = json!("backend");
    rows.extend(write_paths(
        "/api/v1/namespaces/default/pods/web",
        Some("status"),
        &web,
        &added,
    ));
    for (path, method, url, ct, body) in rows {
        let revision = c.s.store().revision();
        let (code, status) = send(&mut c.s, method, &url, ct, Some(&body), &a);
        assert_eq!(code, 403, "{path}: {status}");
        assert_eq!(
            status["message"],
            "pods \"web\" is forbidden: node \"node-a\" cannot update labels through pod status",
            "{path}"
        );
        assert_eq!(c.s.store().revision(), revision, "{path} stored");
    }

    let revision = c.s.store().revision();
    let cases: &[(Method, &str, Option<Value>, &str)] = &[
        (
            Method::Patch,
            "/api/v1/namespaces/default/pods/other/status",
            Some(json!({"status": {"phase": "Failed"}})),
            "pods \"other\" is forbidden: node \"node-a\" can only update pod status for pods with spec.nodeName set to itself",
        ),
        (
            Method::Patch,
            "/api/v1/namespaces/default/pods/web",
            Some(json!({"metadata": {"labels": {"app": "other"}}})),
            "pods \"web\" is forbidden: User \"system:node:node-a\" cannot patch resource \"pods\" in API group \"\" in the namespace \"default\"",
        ),
        (
            Method::Get,
            "/api/v1/namespaces/default/pods/other",
            None,
            "pods \"other\" is forbidden: User \"system:node:node-a\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\": no relationship found between node 'node-a' and this object",
        ),
        (
            Method::Get,
            "/api/v1/namespaces/default/pods/web/status",
            None,
            "pods \"web\" is forbidden: User \"system:node:node-a\" cannot get resource \"pods/status\" in API group \"\" in the namespace \"default\"",
        ),
        (
            Method::Get,
            "/api/v1/pods",
            None,
            "pods is forbidden: User \"system:node:node-a\" cannot list resource \"pods\" in API group \"\" at the cluster scope: can only list/watch pods with spec.nodeName field selector",
        ),
        (
            Method::Get,
            "/api/v1/pods?fieldSelector=spec.nodeName!%3Dnode-a",
            None,
            "pods is forbidden: User \"system:node:node-a\" cannot list resource \"pods\" in API group \"\" at the cluster scope: can only list/watch pods with spec.nodeName field selector",
        ),
        (
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mine"},
                "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]}}),
            ),
            "pods \"mine\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"node-a\" can only create mirror pods",
        ),
        (
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static-node-a",
                "labels": {"app": "other"}, "annotations": {"kubernetes.io/config.mirror": "abc"}},
                "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]}}),
            ),
            "pods \"static-node-a\" is forbidden: node \"node-a\" can not create mirror pods: this cluster does not run static pods",
        ),
        (
            Method::Delete,
            "/api/v1/namespaces/default/pods/other",
            None,
            "pods \"other\" is forbidden: node \"node-a\" can only delete pods with spec.nodeName set to itself",
        ),
        (
            Method::Delete,
            "/api/v1/namespaces/default/pods",
            None,
            "pods is forbidden: User \"system:node:node-a\" cannot deletecollection resource \"pods\" in API group \"\" in the namespace \"default\"",
        ),
        (
            Method::Post,
            "/api/v1/namespaces/default/pods/web/binding",
            Some(json!({"target": {"name": "node-a"}})),
            "pods \"web\" is forbidden: User \"system:node:node-a\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"default\"",
        ),
    ];
    for (method, path, body, message) in cases {
        let ct = if *method == Method::Patch {
            MERGE
        } else {
            "application/json"
        };
        let (code, status) = send(&mut c.s, *method, path, ct, body.as_ref(), &a);
        assert_eq!(code, 403, "{method:?} {path}: {status}");
        assert_eq!(status["message"], *message, "{method:?} {path}");
    }
    assert_eq!(c.s.store().revision(), revision, "nothing was stored");

    // Its own pod: status and annotations change; spec, ownerReferences and labels stay.
    let mut report = web.clone();
    report["status"]["phase"] = json!("Running");
    report["metadata"]["annotations"] = json!({"example.com/probe": "ok"});
    report["spec"]["containers"][0]["image"] = json!("evil");
    // (Server-side apply to `/status` is left out: core's apply does not write status yet.)
    for (path, method, url, ct, body) in write_paths(
        "/api/v1/namespaces/default/pods/web",
        Some("status"),
        &web,
        &report,
    )
    .into_iter()
    .filter(|row| row.3 != APPLY)
    {
        let (code, reply) = send(&mut c.s, method, &url, ct, Some(&body), &a);
        assert_eq!(code, 200, "{path}: {reply}");
        let now = stored(&c, ResourceId::Pods, "default", "web").unwrap();
        assert_eq!(now["status"]["phase"], "Running", "{path}");
        assert_eq!(now["spec"]["containers"][0]["image"], "nginx", "{path}");
        assert_eq!(now["metadata"]["labels"], json!({"app": "web"}), "{path}");
        send(
            &mut c.s,
            Method::Patch,
            "/api/v1/namespaces/default/pods/web/status",
            MERGE,
            Some(&json!({"metadata": {"annotations": null}, "status": {"phase": "Pending"}})),
            ADMIN,
        );
    }
    for path in [
        "/api/v1/namespaces/default/pods/web",
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a",
        "/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3D%3Dnode-a,status.phase!%3DFailed",
        "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb",
        "/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Dweb",
    ] {
        let (code, reply) = send(&mut c.s, Method::Get, path, "", None, &a);
        assert_eq!(code, 200, "{path}: {reply}");
    }
    let (code, reply) = send(
        &mut c.s,
        Method::Delete,
        "/api/v1/namespaces/default/pods/web",
        "",
        None,
        &a,
    );
    assert_eq!(code, 200, "its own pod: {reply}");
    let (code, _) = send(
        &mut c.s,
        Method::Delete,
        "/api/v1/namespaces/default/pods/gone",
        "",
        None,
        &a,
    );
    assert_eq!(code, 404);
}

#[test]
fn a_node_reads_exactly_the_secrets_and_configmaps_its_pods_use() {
    let mut c = cluster(Config::default());
    let (a, b) = (c.a.clone(), c.b.clone());
    for (kind, name) in [
        ("secrets", "db"),
        ("secrets", "unused"),
        ("configmaps", "settings"),
        ("configmaps", "unused"),
    ] {
        let body = json!({"apiVersion": "v1", "kind": if kind == "secrets" { "Secret" } else { "ConfigMap" },
            "metadata": {"name": name}, "data": {}});
        let (code, reply) = admin(
            &mut c,
            Method::Post,
            &alloc::format!("/api/v1/namespaces/default/{kind}"),
            Some(&body),
        );
        assert_eq!(code, 201, "{reply}");
    }
    let read = |c: &mut Cluster, token: &str, path: &str| {
        send(&mut c.s, Method::Get, path, "", None, token)
    };
    let db = "/api/v1/namespaces/default/secrets/db";
    let settings = "/api/v1/namespaces/default/configmaps/settings";
    assert_eq!(read(&mut c, &a, db).0, 403, "no pod uses it yet");

    // A pending pod using both grants nothing until it is bound.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {
        "containers": [{"name": "c", "image": "nginx",
            "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}});
    assert_eq!(
        admin(
            &mut c,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(&pod)
        )
        .0,
        201
    );
    assert_eq!(read(&mut c, &a, db).0, 403, "pending");
    let (code, body) = admin(
        &mut c,
        Method::Post,
        "/api/v1/namespaces/default/pods/web/binding",
        Some(&json!({"target": {"name": "node-a"}})),
    );
    assert_eq!(code, 201, "{body}");

    for path in [
        db,
        settings,
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ddb",
        "/api/v1/namespaces/default/secrets?watch=true&fieldSelector=metadata.name%3Ddb",
        "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dsettings&resourceVersion=0",
    ] {
        let (code, reply) = read(&mut c, &a, path);
        assert_eq!(code, 200, "{path}: {reply}");
    }
    let (_, secret) = read(&mut c, &a, db);
    assert_eq!(secret["metadata"]["name"], "db");
    let (_, list) = read(
        &mut c,
        &a,
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ddb",
    );
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    let no_relationship = |verb: &str, kind: &str, name: &str, node: &str| {
        alloc::format!(
            "{kind} \"{name}\" is forbidden: User \"system:node:{node}\" cannot {verb} resource \"{kind}\" in API group \"\" in the namespace \"default\": no relationship found between node '{node}' and this object"
        )
    };
    let cases: Vec<(String, Method, &str, String)> = alloc::vec![
        (a.clone(), Method::Get, "/api/v1/namespaces/default/secrets/unused", no_relationship("get", "secrets", "unused", "node-a")),
        (a.clone(), Method::Get, "/api/v1/namespaces/default/configmaps/unused", no_relationship("get", "configmaps", "unused", "node-a")),
        (a.clone(), Method::Get, "/api/v1/namespaces/kube-system/secrets/db",
            "secrets \"db\" is forbidden: User \"system:node:node-a\" cannot get resource \"secrets\" in API group \"\" in the namespace \"kube-system\": no relationship found between node 'node-a' and this object".into()),
        (a.clone(), Method::Get, "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dunused", no_relationship("list", "secrets", "unused", "node-a")),
        (b.clone(), Method::Get, db, no_relationship("get", "secrets", "db", "node-b")),
        (a.clone(), Method::Get, "/api/v1/namespaces/default/secrets",
            "secrets is forbidden: User \"system:node:node-a\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": No Object name found".into()),
        (a.clone(), Method::Get, "/api/v1/secrets",
            "secrets is forbidden: User \"system:node:node-a\" cannot list resource \"secrets\" in API group \"\" at the cluster scope: can only read namespaced object of this type".into()),
        (a.clone(), Method::Delete, db,
            "secrets \"db\" is forbidden: User \"system:node:node-a\" cannot delete resource \"secrets\" in API group \"\" in the namespace \"default\": can only read resources of this type".into()),
        (a.clone(), Method::Get, "/api/v1/namespaces/default/serviceaccounts/default",
            "serviceaccounts \"default\" is forbidden: User \"system:node:node-a\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"default\": can only create tokens for individual service accounts".into()),
    ];
    for (token, method, path, message) in &cases {
        let (code, status) = send(&mut c.s, *method, path, "application/json", None, token);
        assert_eq!(code, 403, "{path}: {status}");
        assert_eq!(status["message"], *message, "{path}");
    }

    // Moved to node-b (deleted and recreated there): the access moves with it. While the pod
    // terminates its kubelet still reads what it uses; the kubelet's own grace-0 delete ends it.
    let web = "/api/v1/namespaces/default/pods/web";
    let (code, terminating) = admin(&mut c, Method::Delete, web, None);
    assert_eq!(code, 200);
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(
        read(&mut c, &a, db).0,
        200,
        "the pod still terminates on node-a"
    );
    let confirm = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
        "preconditions": {"uid": terminating["metadata"]["uid"]}});
    let b = c.b.clone();
    let (code, status) = send(
        &mut c.s,
        Method::Delete,
        web,
        "application/json",
        Some(&confirm),
        &b,
    );
    assert_eq!(code, 403, "{status}");
    let a_token = c.a.clone();
    let (code, gone) = send(
        &mut c.s,
        Method::Delete,
        web,
        "application/json",
        Some(&confirm),
        &a_token,
    );
    assert_eq!(code, 200, "{gone}");
    assert_eq!(read(&mut c, &a, db).0, 403, "the pod is gone");
    let mut on_b = pod.clone();
    on_b["spec"]["nodeName"] = json!("node-b");
    assert_eq!(
        admin(
            &mut c,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(&on_b)
        )
        .0,
        201
    );
    assert_eq!(read(&mut c, &b, settings).0, 200);
    assert_eq!(read(&mut c, &a, settings).0, 403);
}

#[test]
fn a_full_reference_index_refuses_the_pod_and_stores_nothing() {
    let mut c = cluster(Config {
        max_pod_references: 4,
        ..Config::default()
    });
    let pod = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": "nginx",
                "envFrom": [{"secretRef": {"name": "s1"}}, {"configMapRef": {"name": "c1"}}]}]}})
    };
    // Three references each (the service account `default` is the third).
    assert_eq!(
        admin(
            &mut c,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(&pod("one"))
        )
        .0,
        201
    );
    let revision = c.s.store().revision();
    let (code, status) = admin(
        &mut c,
        Method::Post,
        "/api/v1/namespaces/default/pods",
        Some(&pod("two")),
    );
    assert_eq!(code, 507, "{status}");
    assert_eq!(status["reason"], "InsufficientStorage");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("max_pod_references"),
        "{status}"
    );
    assert_eq!(c.s.store().revision(), revision);
    assert!(stored(&c, ResourceId::Pods, "default", "two").is_none());
    // Binding the first (same references) still works, and deleting it makes room.
    let (code, body) = admin(
        &mut c,
        Method::Post,
        "/api/v1/namespaces/default/pods/one/binding",
        Some(&json!({"target": {"name": "node-a"}})),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        admin(
            &mut c,
            Method::Delete,
            "/api/v1/namespaces/default/pods/one",
            Some(&json!({"gracePeriodSeconds": 0}))
        )
        .0,
        200
    );
    assert_eq!(
        admin(
            &mut c,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            Some(&pod("two"))
        )
        .0,
        201
    );
}
