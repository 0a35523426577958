//! Pod deletion as kube-apiserver does it, in virtual time: a bound pod terminates for its grace
//! period until its kubelet's grace-0 delete (or a force delete) removes it; a later delete may
//! only shorten the period; unbound and terminal pods go at once; finalizers hold a pod even at
//! grace 0; dry run, preconditions and bad options change nothing.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster as Core, Method};
use crate::watch::EventType;
use crate::{Config, UnixTime};

const TOKEN: &str = "admin";
const PODS: &str = "/api/v1/namespaces/default/pods";

struct Cluster {
    server: Core,
    now: UnixTime,
}

impl Cluster {
    /// A cluster with one Ready node, `n1`.
    fn new() -> Self {
        let now = UnixTime::from_secs(1_750_000_000);
        let config = Config {
            admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
            ..Config::default()
        };
        let mut c = Self {
            server: Core::new(config, [5; 32], now),
            now,
        };
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                "lastHeartbeatTime": now.rfc3339(), "lastTransitionTime": now.rfc3339()}]}});
        assert_eq!(c.call(Method::Post, "/api/v1/nodes", Some(&node)).0, 201);
        c
    }

    fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let auth = alloc::format!("Bearer {TOKEN}");
        let mut req = ApiRequest::new(method, path);
        req.authorization = Some(&auth);
        req.content_type = Some(if method == Method::Patch {
            "application/merge-patch+json"
        } else {
            "application/json"
        });
        req.body = &bytes;
        let r = crate::cluster::test_harness::answer(&mut self.server, self.now, &req)
            .into_response()
            .expect("not a watch");
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// Creates pod `name` with `spec` merged over one container (and `status`, if given).
    fn pod(&mut self, name: &str, spec: Value, status: Option<Value>) {
        let mut full = json!({"containers": [{"name": "c", "image": "nginx"}]});
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        let body =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": full});
        let (code, created) = self.call(Method::Post, PODS, Some(&body));
        assert_eq!(code, 201, "{created}");
        if let Some(status) = status {
            let path = alloc::format!("{PODS}/{name}/status");
            let (code, patched) = self.call(Method::Patch, &path, Some(&json!({"status": status})));
            assert_eq!(code, 200, "{patched}");
        }
    }

    fn get(&mut self, name: &str) -> (u16, Value) {
        self.call(Method::Get, &alloc::format!("{PODS}/{name}"), None)
    }

    fn delete(&mut self, path: &str, options: Option<Value>) -> (u16, Value) {
        self.call(Method::Delete, path, options.as_ref())
    }

    fn delete_pod(&mut self, name: &str, options: Option<Value>) -> (u16, Value) {
        self.delete(&alloc::format!("{PODS}/{name}"), options)
    }

    /// The kubelet's confirmation: grace 0 with the pod's uid as a precondition.
    fn kubelet_confirms(&mut self, name: &str) -> (u16, Value) {
        let (_, pod) = self.get(name);
        let options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
            "preconditions": {"uid": pod["metadata"]["uid"]}});
        self.delete_pod(name, Some(options))
    }

    /// Advances virtual time by `secs`, running every timer that falls due.
    fn advance(&mut self, secs: u64) {
        let end = self.now.plus_secs(secs);
        while let Some(t) = self.server.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            self.server.handle_timeout(self.now);
            if self.server.poll_timeout() == Some(t) {
                self.now = self.now.plus_secs(1).min(end);
            }
            if self.now >= end {
                break;
            }
        }
        self.now = end;
        self.server.handle_timeout(end);
    }

    fn revision(&self) -> u64 {
        self.server.store().revision()
    }

    /// The (kind, pod name) of every pod event after `revision`.
    fn pod_events(&self, revision: u64) -> Vec<(EventType, String)> {
        let mut events = Vec::new();
        self.server
            .watch_ring()
            .read_after(revision, usize::MAX, &mut events)
            .unwrap();
        events
            .iter()
            .filter(|e| e.key.resource == crate::resource::ResourceId::Pods)
            .map(|e| (e.kind, String::from(&*e.key.name)))
            .collect()
    }
}

fn bound() -> Value {
    json!({"nodeName": "n1"})
}

#[test]
fn a_bound_pod_terminates_for_its_grace_until_the_kubelet_confirms() {
    let mut c = Cluster::new();
    c.pod("web", bound(), None);
    let before = c.revision();
    let (code, pod) = c.delete_pod("web", Some(json!({"propagationPolicy": "Background"})));
    assert_eq!(code, 200, "{pod}");
    assert_eq!(
        pod["metadata"]["deletionTimestamp"],
        c.now.plus_secs(30).rfc3339(),
        "now + the default terminationGracePeriodSeconds"
    );
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, stored) = c.get("web");
    assert_eq!(code, 200, "the pod stays while it terminates");
    assert_eq!(
        stored["metadata"]["deletionTimestamp"],
        pod["metadata"]["deletionTimestamp"]
    );
    assert_eq!(c.pod_events(before), [(EventType::Modified, "web".into())]);
    let (_, table) = c.call(Method::Get, PODS, None);
    assert_eq!(table["items"].as_array().unwrap().len(), 1);

    // Past its grace nothing in the control plane removes it: that is the kubelet's word.
    c.advance(120);
    assert_eq!(c.get("web").0, 200);

    let marked = c.revision();
    let (code, last) = c.kubelet_confirms("web");
    assert_eq!(code, 200, "{last}");
    assert_eq!(last["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(c.get("web").0, 404);
    assert_eq!(
        c.pod_events(marked),
        [
            (EventType::Modified, "web".into()),
            (EventType::Deleted, "web".into())
        ],
        "the grace-0 marking, then the removal, as kube writes them"
    );
}

#[test]
fn the_grace_comes_from_the_options_then_the_pod() {
    let mut c = Cluster::new();
    let cases: [(&str, Value, Option<Value>, &str, i64); 5] = [
        (
            "spec45",
            json!({"nodeName": "n1", "terminationGracePeriodSeconds": 45}),
            None,
            "",
            45,
        ),
        (
            "body10",
            bound(),
            Some(json!({"gracePeriodSeconds": 10})),
            "",
            10,
        ),
        ("query5", bound(), None, "?gracePeriodSeconds=5", 5),
        (
            "negative",
            bound(),
            Some(json!({"gracePeriodSeconds": -3})),
            "",
            1,
        ),
        (
            "specneg",
            json!({"nodeName": "n1", "terminationGracePeriodSeconds": -7}),
            None,
            "",
            1,
        ),
    ];
    for (name, spec, options, query, want) in cases {
        c.pod(name, spec, None);
        let (code, pod) = c.delete(&alloc::format!("{PODS}/{name}{query}"), options);
        assert_eq!(code, 200, "{name}: {pod}");
        assert_eq!(
            pod["metadata"]["deletionGracePeriodSeconds"], want,
            "{name}"
        );
        assert_eq!(
            pod["metadata"]["deletionTimestamp"],
            c.now.plus_secs(u64::try_from(want).unwrap()).rfc3339(),
            "{name}"
        );
    }
    c.pod("bad", bound(), None);
    let before = c.revision();
    let (code, status) = c.delete_pod("bad", Some(json!({"gracePeriodSeconds": "soon"})));
    assert_eq!(code, 400, "{status}");
    let (code, status) = c.delete(&alloc::format!("{PODS}/bad?gracePeriodSeconds=soon"), None);
    assert_eq!(code, 400, "{status}");
    assert_eq!(c.revision(), before, "a refused delete changes nothing");
}

#[test]
fn a_second_delete_may_only_shorten_the_grace() {
    let mut c = Cluster::new();
    c.pod("web", bound(), None);
    let start = c.now;
    assert_eq!(c.delete_pod("web", None).0, 200);
    c.advance(10);
    let marked = c.revision();
    for options in [
        None,
        Some(json!({"gracePeriodSeconds": 30})),
        Some(json!({"gracePeriodSeconds": 60})),
    ] {
        let (code, pod) = c.delete_pod("web", options.clone());
        assert_eq!(code, 200, "{options:?}: {pod}");
        assert_eq!(
            pod["metadata"]["deletionGracePeriodSeconds"], 30,
            "{options:?}"
        );
        assert_eq!(
            pod["metadata"]["deletionTimestamp"],
            start.plus_secs(30).rfc3339()
        );
    }
    assert_eq!(
        c.revision(),
        marked,
        "a pending deletion is not written again"
    );
    // Shorter: measured from the same start.
    let (code, pod) = c.delete_pod("web", Some(json!({"gracePeriodSeconds": 15})));
    assert_eq!(code, 200, "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 15);
    assert_eq!(
        pod["metadata"]["deletionTimestamp"],
        start.plus_secs(15).rfc3339()
    );
    assert_eq!(c.get("web").0, 200);
    // A propagation policy cannot change the finalizers of a pending deletion either.
    let (_, pod) = c.delete_pod("web", Some(json!({"propagationPolicy": "Orphan"})));
    assert!(pod["metadata"]["finalizers"].is_null(), "{pod}");
}

#[test]
fn force_deletion_removes_a_bound_pod_at_once() {
    let mut c = Cluster::new();
    c.pod("web", bound(), None);
    let before = c.revision();
    // kubectl delete --grace-period=0 --force
    let (code, pod) = c.delete_pod(
        "web",
        Some(json!({"gracePeriodSeconds": 0, "propagationPolicy": "Background"})),
    );
    assert_eq!(code, 200, "{pod}");
    assert_eq!(c.get("web").0, 404);
    assert_eq!(
        c.pod_events(before),
        [
            (EventType::Modified, "web".into()),
            (EventType::Deleted, "web".into())
        ]
    );
}

#[test]
fn unbound_and_terminal_pods_go_at_once() {
    let mut c = Cluster::new();
    c.pod("pending", json!({"schedulerName": "elsewhere"}), None);
    c.pod("done", bound(), Some(json!({"phase": "Succeeded"})));
    c.pod("failed", bound(), Some(json!({"phase": "Failed"})));
    for name in ["pending", "done", "failed"] {
        let (code, pod) = c.delete_pod(name, Some(json!({"gracePeriodSeconds": 300})));
        assert_eq!(code, 200, "{name}: {pod}");
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 0, "{name}");
        assert_eq!(c.get(name).0, 404, "{name}");
    }
}

#[test]
fn finalizers_hold_a_pod_even_at_grace_zero() {
    let mut c = Cluster::new();
    let spec = json!({"nodeName": "n1"});
    c.pod("held", spec.clone(), None);
    let hold = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    let path = alloc::format!("{PODS}/held");
    assert_eq!(c.call(Method::Patch, &path, Some(&hold)).0, 200);
    let (code, pod) = c.delete_pod("held", Some(json!({"gracePeriodSeconds": 0})));
    assert_eq!(code, 200, "{pod}");
    let (code, pod) = c.get("held");
    assert_eq!(code, 200, "the finalizer holds it");
    assert_eq!(pod["metadata"]["deletionTimestamp"], c.now.rfc3339());
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 0);
    let release = json!({"metadata": {"finalizers": null}});
    assert_eq!(c.call(Method::Patch, &path, Some(&release)).0, 200);
    assert_eq!(
        c.get("held").0,
        404,
        "the last finalizer's removal completes it"
    );

    // A pod still in its grace period stays when its finalizers go: its kubelet finishes it.
    c.pod("graceful", spec, None);
    let path = alloc::format!("{PODS}/graceful");
    assert_eq!(c.call(Method::Patch, &path, Some(&hold)).0, 200);
    assert_eq!(c.delete_pod("graceful", None).0, 200);
    assert_eq!(c.call(Method::Patch, &path, Some(&release)).0, 200);
    assert_eq!(c.get("graceful").0, 200);
    assert_eq!(c.kubelet_confirms("graceful").0, 200);
    assert_eq!(c.get("graceful").0, 404);
}

#[test]
fn dry_run_preconditions_and_collections() {
    let mut c = Cluster::new();
    c.pod("web", bound(), None);
    let before = c.revision();
    let (code, pod) = c.delete(&alloc::format!("{PODS}/web?dryRun=All"), None);
    assert_eq!(code, 200, "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, pod) = c.delete_pod(
        "web",
        Some(json!({"dryRun": ["All"], "gracePeriodSeconds": 0})),
    );
    assert_eq!(code, 200, "{pod}");
    let (code, status) = c.delete_pod("web", Some(json!({"preconditions": {"uid": "0000"}})));
    assert_eq!(code, 409, "{status}");
    let uid = c.get("web").1["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        status["message"],
        alloc::format!(
            "Operation cannot be fulfilled on Pod \"web\": the UID in the precondition (0000) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        )
    );
    let (code, _) = c.delete_pod(
        "web",
        Some(json!({"preconditions": {"resourceVersion": "1"}})),
    );
    assert_eq!(code, 409);
    assert_eq!(c.revision(), before, "nothing was written");
    assert!(c.get("web").1["metadata"]["deletionTimestamp"].is_null());

    // A collection delete: the bound pod terminates, the unbound one goes.
    c.pod("loose", json!({"schedulerName": "elsewhere"}), None);
    let (code, list) = c.delete(PODS, None);
    assert_eq!(code, 200, "{list}");
    assert_eq!(c.get("loose").0, 404);
    let (code, web) = c.get("web");
    assert_eq!(code, 200);
    assert_eq!(web["metadata"]["deletionGracePeriodSeconds"], 30);
}

#[test]
fn a_jobs_orphan_default_yields_to_its_own_finalizers_and_to_the_options() {
    const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
    let mut c = Cluster::new();
    let job = |name: &str, finalizers: Value| {
        json!({"metadata": {"name": name, "finalizers": finalizers}, "spec": {
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}})
    };
    for (name, finalizers) in [
        ("plain", json!(["example.com/hold"])),
        ("fore", json!(["example.com/hold", "foregroundDeletion"])),
        ("asked", json!(["example.com/hold"])),
    ] {
        let (code, created) = c.call(Method::Post, JOBS, Some(&job(name, finalizers)));
        assert_eq!(code, 201, "{created}");
    }
    let finalizers_after = |c: &mut Cluster, name: &str, options: Option<Value>| {
        let (code, body) = c.delete(&alloc::format!("{JOBS}/{name}"), options);
        assert_eq!(code, 200, "{body}");
        body["metadata"]["finalizers"].clone()
    };
    // No options: kube's default for batch/v1 Jobs orphans the pods.
    assert_eq!(
        finalizers_after(&mut c, "plain", None),
        json!(["example.com/hold", "orphan"])
    );
    // The object's own foregroundDeletion finalizer comes before the default.
    assert_eq!(
        finalizers_after(&mut c, "fore", None),
        json!(["example.com/hold", "foregroundDeletion"])
    );
    // And explicit options before both.
    assert_eq!(
        finalizers_after(
            &mut c,
            "asked",
            Some(json!({"propagationPolicy": "Background"}))
        ),
        json!(["example.com/hold"])
    );
}
