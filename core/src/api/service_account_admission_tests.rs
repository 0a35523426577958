//! kube's ServiceAccount admission against the core alone: the `default` account, the projected
//! `kube-api-access-<five random characters>` volume and its mounts exactly as kube-apiserver 1.32 writes them, the
//! opt-outs, kube's refusals (a missing account, mountable secrets, mirror pods), a new
//! namespace's pod waiting for its `default` account, and a controller's pods.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use crate::api::{ApiRequest, Method, Outcome};
use crate::cluster::test_harness::{ADMIN, Cluster};

const PODS: &str = "/api/v1/namespaces/default/pods";
const ACCOUNTS: &str = "/api/v1/namespaces/default/serviceaccounts";
const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "nginx"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

fn account(name: &str, extra: Value) -> Value {
    let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
    if let (Some(map), Some(extra)) = (sa.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    sa
}

/// The names of the pod's `kube-api-access-` volumes.
fn token_volumes(pod: &Value) -> Vec<String> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .filter(|n| n.starts_with("kube-api-access-"))
        .map(String::from)
        .collect()
}

#[test]
fn a_pod_runs_as_default_and_mounts_the_projected_token_volume_as_kube_writes_it() {
    let mut c = Cluster::new();
    let (code, created) = c.post(
        PODS,
        pod(
            "web",
            json!({
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "c", "image": "nginx",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}],
            }),
        ),
    );
    assert_eq!(code, 201, "{created}");
    let spec = &created["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default", "the deprecated alias");
    let names = token_volumes(&created);
    assert_eq!(names.len(), 1, "{spec}");
    let name = &names[0];
    let suffix = name.strip_prefix("kube-api-access-").unwrap();
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(
        suffix
            .chars()
            .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)),
        "kube's generateName alphabet: {name}"
    );
    // Appended after the pod's own volume, with kube's defaults (#104464: defaultMode set).
    assert_eq!(
        spec["volumes"],
        json!([
            {"name": "data", "emptyDir": {}},
            {"name": name, "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ]}},
        ])
    );
    let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
    assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data"}, mount])
    );
    // What is stored is what was answered.
    let (_, stored) = c.get(&alloc::format!("{PODS}/web"));
    assert_eq!(stored["spec"], created["spec"]);
    // Each pod gets its own name.
    let (code, other) = c.post(PODS, pod("other", json!({})));
    assert_eq!(code, 201, "{other}");
    assert_ne!(token_volumes(&other), names);
}

#[test]
fn the_pod_or_its_account_may_turn_the_token_off_and_the_pods_choice_wins() {
    let mut c = Cluster::new();
    let (code, _) = c.post(
        ACCOUNTS,
        account("quiet", json!({"automountServiceAccountToken": false})),
    );
    assert_eq!(code, 201);
    for (name, spec, mounted) in [
        (
            "pod-off",
            json!({"automountServiceAccountToken": false}),
            false,
        ),
        ("account-off", json!({"serviceAccountName": "quiet"}), false),
        (
            "pod-on-account-off",
            json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true}),
            true,
        ),
        // The deprecated alias names the account when the name is empty.
        ("alias", json!({"serviceAccount": "quiet"}), false),
    ] {
        let (code, created) = c.post(PODS, pod(name, spec));
        assert_eq!(code, 201, "{name}: {created}");
        assert_eq!(token_volumes(&created).is_empty(), !mounted, "{name}");
        let mounts = &created["spec"]["containers"][0]["volumeMounts"];
        assert_eq!(mounts.is_array(), mounted, "{name}: {mounts}");
    }
    let (_, alias) = c.get(&alloc::format!("{PODS}/alias"));
    assert_eq!(alias["spec"]["serviceAccountName"], "quiet");
    assert_eq!(alias["spec"]["serviceAccount"], "quiet");
}

#[test]
fn an_existing_token_volume_or_mount_is_kept() {
    let mut c = Cluster::new();
    // A pod that brings its own kube-api-access volume keeps it (no second one), and a
    // container that already mounts something at the token path is left alone.
    let own = json!({"name": "kube-api-access-mine", "emptyDir": {}});
    let (code, created) = c.post(
        PODS,
        pod(
            "own",
            json!({
                "containers": [
                    {"name": "a", "image": "nginx"},
                    {"name": "b", "image": "nginx",
                        "volumeMounts": [{"name": "custom", "mountPath": MOUNT_PATH}]},
                ],
                "volumes": [own.clone(), {"name": "custom", "emptyDir": {}}],
            }),
        ),
    );
    assert_eq!(code, 201, "{created}");
    let spec = &created["spec"];
    assert_eq!(
        spec["volumes"],
        json!([own, {"name": "custom", "emptyDir": {}}])
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": "kube-api-access-mine", "readOnly": true, "mountPath": MOUNT_PATH}])
    );
    assert_eq!(
        spec["containers"][1]["volumeMounts"],
        json!([{"name": "custom", "mountPath": MOUNT_PATH}])
    );
    // Every container mounting the path already: no volume is added.
    let (code, created) = c.post(
        PODS,
        pod(
            "covered",
            json!({
                "containers": [{"name": "a", "image": "nginx",
                    "volumeMounts": [{"name": "custom", "mountPath": MOUNT_PATH}]}],
                "volumes": [{"name": "custom", "emptyDir": {}}],
            }),
        ),
    );
    assert_eq!(code, 201, "{created}");
    assert!(token_volumes(&created).is_empty(), "{created}");
}

#[test]
fn a_missing_account_is_forbidden_in_kubes_words_and_nothing_is_stored() {
    let mut c = Cluster::new();
    let revision = c.server.store().revision();
    let (code, status) = c.post(PODS, pod("web", json!({"serviceAccountName": "builder"})));
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        "pods \"web\" is forbidden: error looking up service account default/builder: serviceaccount \"builder\" not found"
    );
    assert_eq!(status["details"], json!({"name": "web", "kind": "pods"}));
    assert_eq!(c.server.store().revision(), revision, "nothing written");
    // A generated name is still to come: kube names the pod by its generateName.
    let mut unnamed = pod("", json!({"serviceAccountName": "builder"}));
    unnamed["metadata"] = json!({"generateName": "web-"});
    let (code, status) = c.post(PODS, unnamed);
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"web-\" is forbidden: error looking up service account default/builder: serviceaccount \"builder\" not found"
    );
    // A namespace that does not exist is NamespaceLifecycle's 404, which kube checks first.
    let (code, status) = c.post("/api/v1/namespaces/nowhere/pods", pod("web", json!({})));
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["message"], "namespaces \"nowhere\" not found");
    // Once the account exists the same pod is admitted.
    assert_eq!(c.post(ACCOUNTS, account("builder", json!({}))).0, 201);
    let (code, created) = c.post(PODS, pod("web", json!({"serviceAccountName": "builder"})));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["serviceAccountName"], "builder");
}

/// One pod create as the administrator at `now`, waiting since `since`.
fn create_at(
    c: &mut Cluster,
    namespace: &str,
    body: &[u8],
    now: crate::UnixTime,
    since: Option<crate::UnixTime>,
) -> Outcome {
    let auth = alloc::format!("Bearer {ADMIN}");
    let path = alloc::format!("/api/v1/namespaces/{namespace}/pods");
    let mut req = ApiRequest::new(Method::Post, &path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/json");
    req.body = body;
    req.waiting_since = since;
    c.server.handle_request(now, &req)
}

#[test]
fn a_pod_in_a_new_namespace_waits_for_its_default_account_as_kube_retries_the_lookup() {
    let mut c = Cluster::new();
    let (code, _) = c.post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}),
    );
    assert_eq!(code, 201);
    let body = serde_json::to_vec(&pod("web", json!({}))).unwrap();
    // The serviceaccount controller has not run yet: the create waits for the next write, for
    // up to two seconds (kube looks `default` up ten times, 100-200 ms apart).
    let now = c.now;
    let revision = c.server.store().revision();
    let Outcome::Pending {
        revision: wanted,
        deadline,
    } = create_at(&mut c, "fresh", &body, now, None)
    else {
        panic!("the create waits");
    };
    assert_eq!(wanted, revision + 1);
    assert_eq!(deadline, now.plus_secs(2));
    assert_eq!(c.server.store().revision(), revision, "nothing written");
    // Still missing at the deadline: kube's refusal.
    let Outcome::Response(refused) = create_at(&mut c, "fresh", &body, deadline, Some(now)) else {
        panic!("answered at the deadline");
    };
    assert_eq!(refused.status, 403);
    let status: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(
        status["message"],
        "pods \"web\" is forbidden: error looking up service account fresh/default: serviceaccount \"default\" not found"
    );
    // Once the controller has made the account, the waiting create goes through.
    c.settle();
    let Outcome::Response(created) = create_at(&mut c, "fresh", &body, now, Some(now)) else {
        panic!("answered");
    };
    assert_eq!(created.status, 201);
    // Through the harness (which asks again as the runtime does) a pod right after its
    // namespace is simply created.
    let (code, _) = c.post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "second"}}),
    );
    assert_eq!(code, 201);
    let (code, created) = c.post("/api/v1/namespaces/second/pods", pod("web", json!({})));
    assert_eq!(code, 201, "{created}");
    assert_eq!(token_volumes(&created).len(), 1);
    // Another account that is missing is refused at once: only `default` is waited for.
    let body = serde_json::to_vec(&pod("other", json!({"serviceAccountName": "x"}))).unwrap();
    let now = c.now;
    let Outcome::Response(refused) = create_at(&mut c, "second", &body, now, None) else {
        panic!("refused at once");
    };
    assert_eq!(refused.status, 403);
}

#[test]
fn the_accounts_image_pull_secrets_go_to_a_pod_that_has_none() {
    let mut c = Cluster::new();
    let sa = account(
        "puller",
        json!({"imagePullSecrets": [{"name": "registry"}, {"name": "mirror"}]}),
    );
    assert_eq!(c.post(ACCOUNTS, sa).0, 201);
    let (code, created) = c.post(PODS, pod("a", json!({"serviceAccountName": "puller"})));
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["spec"]["imagePullSecrets"],
        json!([{"name": "registry"}, {"name": "mirror"}])
    );
    let (code, created) = c.post(
        PODS,
        pod(
            "b",
            json!({"serviceAccountName": "puller", "imagePullSecrets": [{"name": "own"}]}),
        ),
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["spec"]["imagePullSecrets"],
        json!([{"name": "own"}])
    );
}

#[test]
fn an_account_that_enforces_mountable_secrets_limits_the_pods_secrets() {
    let mut c = Cluster::new();
    let sa = account(
        "strict",
        json!({"metadata": {"name": "strict",
                "annotations": {"kubernetes.io/enforce-mountable-secrets": "true"}},
            "secrets": [{"name": "allowed"}], "imagePullSecrets": [{"name": "pull"}]}),
    );
    assert_eq!(c.post(ACCOUNTS, sa).0, 201);
    let cases = [
        (
            json!({"volumes": [{"name": "s", "secret": {"secretName": "other"}}]}),
            "volume with secret.secretName=\"other\" is not allowed because service account strict does not reference that secret",
        ),
        (
            json!({"containers": [{"name": "c", "image": "nginx", "env": [{"name": "PW",
                "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}]}]}),
            "container c with envVar PW referencing secret.secretName=\"other\" is not allowed because service account strict does not reference that secret",
        ),
        (
            json!({"initContainers": [{"name": "i", "image": "busybox",
                "envFrom": [{"secretRef": {"name": "other"}}]}]}),
            "init container i with envFrom referencing secret.secretName=\"other\" is not allowed because service account strict does not reference that secret",
        ),
        (
            json!({"imagePullSecrets": [{"name": "pull"}, {"name": "other"}]}),
            "imagePullSecrets[1].name=\"other\" is not allowed because service account strict does not reference that imagePullSecret",
        ),
    ];
    for (extra, detail) in cases {
        let mut spec = extra;
        spec["serviceAccountName"] = json!("strict");
        let (code, status) = c.post(PODS, pod("p", spec));
        assert_eq!(code, 403, "{status}");
        assert_eq!(
            status["message"],
            alloc::format!("pods \"p\" is forbidden: {detail}")
        );
    }
    let (code, created) = c.post(
        PODS,
        pod(
            "ok",
            json!({"serviceAccountName": "strict",
                "volumes": [{"name": "s", "secret": {"secretName": "allowed"}}]}),
        ),
    );
    assert_eq!(code, 201, "{created}");
}

#[test]
fn mirror_pods_are_left_alone_but_may_name_no_account_secret_or_token() {
    let mut c = Cluster::new();
    let mirror = |name: &str, spec: Value| {
        let mut p = pod(name, spec);
        p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
        p
    };
    let (code, created) = c.post(PODS, mirror("static", json!({})));
    assert_eq!(code, 201, "{created}");
    assert!(
        created["spec"].get("serviceAccountName").is_none(),
        "{created}"
    );
    assert!(created["spec"].get("volumes").is_none(), "{created}");
    for (spec, detail) in [
        (
            json!({"serviceAccountName": "default"}),
            "a mirror pod may not reference service accounts",
        ),
        (
            json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}),
            "a mirror pod may not reference secrets",
        ),
        (
            json!({"volumes": [{"name": "t", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}}]}}]}),
            "a mirror pod may not use ServiceAccountToken volume projections",
        ),
    ] {
        let (code, status) = c.post(PODS, mirror("m", spec));
        assert_eq!(code, 403, "{status}");
        assert_eq!(
            status["message"],
            alloc::format!("pods \"m\" is forbidden: {detail}")
        );
    }
}

#[test]
fn the_account_of_a_pod_cannot_change() {
    let mut c = Cluster::new();
    assert_eq!(c.post(ACCOUNTS, account("other", json!({}))).0, 201);
    let (code, created) = c.post(PODS, pod("web", json!({})));
    assert_eq!(code, 201, "{created}");
    let mut changed = created.clone();
    changed["spec"]["serviceAccountName"] = json!("other");
    changed["spec"]["serviceAccount"] = json!("other");
    let (code, status) = c.put(&alloc::format!("{PODS}/web"), changed);
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("pod updates may not change fields other than"),
        "{status}"
    );
    // Labels still change, and the admitted volume stays as it was.
    let (code, patched) = c.merge_patch(
        &alloc::format!("{PODS}/web"),
        json!({"metadata": {"labels": {"a": "b"}}}),
    );
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["spec"], created["spec"]);
}

#[test]
fn a_controllers_pods_are_admitted_too() {
    let mut c = Cluster::new();
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let (code, created) = c.post("/apis/apps/v1/namespaces/default/replicasets", rs);
    assert_eq!(code, 201, "{created}");
    c.settle();
    let pods = c.items(PODS);
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(token_volumes(p).len(), 1, "{p}");
    }
    // A template naming a missing account: kube's FailedCreate, the pod's generateName in it.
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "lost"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "lost"}},
            "template": {"metadata": {"labels": {"app": "lost"}},
                "spec": {"serviceAccountName": "ghost",
                    "containers": [{"name": "c", "image": "nginx"}]}}}});
    assert_eq!(
        c.post("/apis/apps/v1/namespaces/default/replicasets", rs).0,
        201
    );
    c.settle();
    let events = c.items("/api/v1/namespaces/default/events");
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e["reason"] == "FailedCreate")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        failed.contains(
            &"Error creating: pods \"lost-\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"
        ),
        "{failed:?}"
    );
    // The account appears; the ReplicaSet's retry creates the pod.
    assert_eq!(c.post(ACCOUNTS, account("ghost", json!({}))).0, 201);
    c.advance(60);
    let lost: Vec<Value> = c
        .items(PODS)
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "lost")
        .collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["spec"]["serviceAccountName"], "ghost");
}
