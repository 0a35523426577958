//! The workload controllers (ReplicaSet, Deployment, Endpoints, garbage collector) driven through
//! the API in virtual time, the way kube-controller-manager's would react to the same requests.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};

pub(crate) use crate::cluster::test_harness::Cluster;
use crate::{Config, UnixTime};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REPLICASETS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "nginx", "image": image}]}}}})
}

fn annotation(obj: &Value, name: &str) -> String {
    obj["metadata"]["annotations"][name]
        .as_str()
        .unwrap_or("")
        .into()
}

#[test]
fn a_deployment_gets_one_replicaset_and_its_pods() {
    let mut c = Cluster::new();
    let (code, body) = c.post(DEPLOYMENTS, deployment("web", 3, "nginx"));
    assert_eq!(code, 201, "{body}");
    assert!(
        c.server.poll_timeout().is_some_and(|t| t <= c.now),
        "a write leaves work for the controllers"
    );
    c.settle();
    assert!(c.server.poll_timeout().is_none_or(|t| t > c.now));
    let sets = c.items(REPLICASETS);
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs["metadata"]["name"], alloc::format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(annotation(rs, "deployment.kubernetes.io/revision"), "1");
    assert_eq!(
        annotation(rs, "deployment.kubernetes.io/desired-replicas"),
        "3"
    );
    assert_eq!(annotation(rs, "deployment.kubernetes.io/max-replicas"), "4");
    let owner = &rs["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["controller"].as_bool()),
        (Some("Deployment"), Some(true))
    );
    let pods = c.items(PODS);
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with(&alloc::format!("web-{hash}-"))
                && name.len() == 4 + hash.len() + 1 + 5
        );
        let r = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(r["kind"], "ReplicaSet");
        assert_eq!(r["uid"], rs["metadata"]["uid"]);
        assert_eq!(
            (r["controller"].as_bool(), r["blockOwnerDeletion"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], hash);
        assert!(
            pod["spec"]["nodeName"].is_null(),
            "the scheduler binds pods, not the controller"
        );
    }
    let d = c.deployment("web");
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "1");
    assert_eq!(d["status"]["replicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["unavailableReplicas"], 3);
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(
        Cluster::condition(&d, "Available").unwrap().1,
        "MinimumReplicasUnavailable"
    );
    // Created, then progressing as its pods appear (kube's DeploymentProgressing).
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "ReplicaSetUpdated"
    );
    let events = c.events();
    assert!(
        events.contains(&(
            "ScalingReplicaSet".into(),
            alloc::format!("Scaled up replica set web-{hash} from 0 to 3")
        )),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(r, _)| r == "SuccessfulCreate")
            .count(),
        3
    );

    c.make_pods_ready();
    let d = c.deployment("web");
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert!(d["status"]["unavailableReplicas"].is_null());
    assert_eq!(
        Cluster::condition(&d, "Available").unwrap().1,
        "MinimumReplicasAvailable"
    );
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap(),
        (
            "True".into(),
            "NewReplicaSetAvailable".into(),
            alloc::format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
        )
    );
    let rs = &c.items(REPLICASETS)[0];
    assert_eq!(
        (
            rs["status"]["readyReplicas"].as_i64(),
            rs["status"]["availableReplicas"].as_i64()
        ),
        (Some(3), Some(3))
    );
}

#[test]
fn scale_subresource_scales_and_surplus_goes_unscheduled_first() {
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("web", 2, "nginx"));
    c.settle();
    let (code, scale) = c.get(&alloc::format!("{DEPLOYMENTS}/web/scale"));
    assert_eq!(code, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    // kubectl scale: a merge patch of the Scale.
    let (code, scale) = c.patch(
        &alloc::format!("{DEPLOYMENTS}/web/scale"),
        json!({"spec": {"replicas": 5}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{scale}");
    assert_eq!(scale["spec"]["replicas"], 5);
    c.settle();
    assert_eq!(c.items(PODS).len(), 5);
    assert_eq!(c.deployment("web")["metadata"]["generation"], 2);
    // Bind two pods and mark them ready: a scale-down to 2 keeps exactly those.
    let pods = c.names(PODS);
    for name in pods.iter().take(2) {
        let (code, body) = c.post(&alloc::format!("{PODS}/{name}/binding"), json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": "n1"}}));
        assert_eq!(code, 201, "{body}");
        c.patch(&alloc::format!("{PODS}/{name}/status"), json!({"status": {"phase": "Running", "podIP": "10.1.1.1",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": c.now.rfc3339()}]}}), "application/merge-patch+json");
    }
    c.settle();
    // PUT with a stale resourceVersion is a conflict, as for any update.
    let (code, _) = c.put(&alloc::format!("{DEPLOYMENTS}/web/scale"),
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web", "resourceVersion": "1"}, "spec": {"replicas": 2}}));
    assert_eq!(code, 409);
    let (code, body) = c.put(&alloc::format!("{DEPLOYMENTS}/web/scale"),
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}, "spec": {"replicas": -1}}));
    assert_eq!(code, 422, "{body}");
    let (code, _) = c.put(&alloc::format!("{DEPLOYMENTS}/web/scale"),
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}, "spec": {"replicas": 2}}));
    assert_eq!(code, 200);
    c.settle();
    let mut left = c.names(PODS);
    left.sort();
    let mut kept: Vec<String> = pods.into_iter().take(2).collect();
    kept.sort();
    assert_eq!(left, kept, "kube deletes unscheduled, not-ready pods first");
    assert!(c.events().iter().any(|(r, _)| r == "SuccessfulDelete"));
}

#[test]
fn rolling_update_history_and_undo() {
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("web", 4, "nginx:1.26"));
    c.settle();
    c.make_pods_ready();
    let first = c.names(REPLICASETS)[0].clone();
    // kubectl set image: a strategic merge patch of the template.
    let (code, body) = c.patch(&alloc::format!("{DEPLOYMENTS}/web"),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}),
        "application/strategic-merge-patch+json");
    assert_eq!(code, 200, "{body}");
    c.settle();
    let sets = c.items(REPLICASETS);
    assert_eq!(sets.len(), 2);
    let new = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] != first.as_str())
        .unwrap()
        .clone();
    let old = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == first.as_str())
        .unwrap()
        .clone();
    assert_eq!(annotation(&new, "deployment.kubernetes.io/revision"), "2");
    // 4 replicas, 25%: maxSurge 1, maxUnavailable 1 → new 1 (5 pods), old 3 (one unavailable
    // allowed), then new 2 (5 pods again) until new pods become available.
    assert_eq!(
        (
            new["spec"]["replicas"].as_i64(),
            old["spec"]["replicas"].as_i64()
        ),
        (Some(2), Some(3))
    );
    let d = c.deployment("web");
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "2");
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "ReplicaSetUpdated"
    );
    // Pods come up step by step; never fewer than 3 available, never more than 5 pods.
    for _ in 0..10 {
        c.make_pods_ready();
        let pods = c.items(PODS);
        assert!(pods.len() <= 5, "maxSurge exceeded: {}", pods.len());
    }
    let sets = c.items(REPLICASETS);
    let replicas = |name: &str| {
        sets.iter()
            .find(|rs| rs["metadata"]["name"] == name)
            .unwrap()["spec"]["replicas"]
            .as_i64()
    };
    assert_eq!(replicas(&first), Some(0));
    assert_eq!(replicas(new["metadata"]["name"].as_str().unwrap()), Some(4));
    let d = c.deployment("web");
    assert_eq!(d["status"]["updatedReplicas"], 4);
    assert_eq!(d["status"]["replicas"], 4);
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "NewReplicaSetAvailable"
    );
    // kubectl rollout undo (client-side): JSON patch of the template from the old ReplicaSet,
    // without its pod-template-hash label.
    let mut template = old["spec"]["template"].clone();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    let (code, body) = c.patch(
        &alloc::format!("{DEPLOYMENTS}/web"),
        json!([{"op": "replace", "path": "/spec/template", "value": template}]),
        "application/json-patch+json",
    );
    assert_eq!(code, 200, "{body}");
    for _ in 0..10 {
        c.make_pods_ready();
    }
    let sets = c.items(REPLICASETS);
    assert_eq!(sets.len(), 2, "the old ReplicaSet is reused, not copied");
    let back = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == first.as_str())
        .unwrap();
    assert_eq!(annotation(back, "deployment.kubernetes.io/revision"), "3");
    assert_eq!(
        annotation(back, "deployment.kubernetes.io/revision-history"),
        "1"
    );
    assert_eq!(back["spec"]["replicas"], 4);
    assert_eq!(
        annotation(&c.deployment("web"), "deployment.kubernetes.io/revision"),
        "3"
    );
    assert!(
        c.events()
            .iter()
            .any(|(r, m)| r == "ScalingReplicaSet" && m.starts_with("Scaled down replica set"))
    );
}

#[test]
fn recreate_scales_old_to_zero_first_and_history_is_limited() {
    let mut c = Cluster::new();
    let mut d = deployment("web", 2, "nginx:1");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    d["spec"]["revisionHistoryLimit"] = json!(1);
    c.post(DEPLOYMENTS, d);
    c.settle();
    c.make_pods_ready();
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        c.patch(&alloc::format!("{DEPLOYMENTS}/web"),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": image}]}}}}),
            "application/strategic-merge-patch+json");
        c.settle();
        let pods = c.items(PODS);
        assert!(
            pods.iter()
                .all(|p| p["spec"]["containers"][0]["image"] == image),
            "old pods go before new ones come"
        );
        c.make_pods_ready();
    }
    // The new set plus one old (revisionHistoryLimit 1).
    assert_eq!(c.items(REPLICASETS).len(), 2);
    assert_eq!(c.items(PODS).len(), 2);
}

#[test]
fn paused_deployments_do_not_roll_but_scale() {
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("web", 2, "nginx:1"));
    c.settle();
    c.patch(
        &alloc::format!("{DEPLOYMENTS}/web"),
        json!({"spec": {"paused": true}}),
        "application/merge-patch+json",
    );
    c.patch(&alloc::format!("{DEPLOYMENTS}/web"),
        json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}}),
        "application/strategic-merge-patch+json");
    c.settle();
    assert_eq!(c.items(REPLICASETS).len(), 1, "no rollout while paused");
    let d = c.deployment("web");
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "DeploymentPaused"
    );
    c.patch(
        &alloc::format!("{DEPLOYMENTS}/web"),
        json!({"spec": {"paused": false}}),
        "application/merge-patch+json",
    );
    c.settle();
    assert_eq!(c.items(REPLICASETS).len(), 2);
    let d = c.deployment("web");
    // DeploymentResumed, then progressing again as the new set's pods appear.
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "ReplicaSetUpdated"
    );
    for _ in 0..10 {
        c.make_pods_ready();
    }
    let d = c.deployment("web");
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "NewReplicaSetAvailable"
    );
    assert_eq!(d["status"]["updatedReplicas"], 3);
}

#[test]
fn replicasets_adopt_matching_orphans_and_release_what_stops_matching() {
    let mut c = Cluster::new();
    let orphan = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "redis"}]}});
    assert_eq!(c.post(PODS, orphan).0, 201);
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "redis"}]}}}});
    assert_eq!(c.post(REPLICASETS, rs).0, 201);
    c.settle();
    let pods = c.items(PODS);
    assert_eq!(pods.len(), 2, "the orphan counts toward replicas");
    let stray = c.get(&alloc::format!("{PODS}/stray")).1;
    assert_eq!(stray["metadata"]["ownerReferences"][0]["name"], "db");
    // Relabel: the pod is released and replaced.
    c.patch(
        &alloc::format!("{PODS}/stray"),
        json!({"metadata": {"labels": {"app": "other"}}}),
        "application/merge-patch+json",
    );
    c.settle();
    let stray = c.get(&alloc::format!("{PODS}/stray")).1;
    assert!(stray["metadata"]["ownerReferences"].is_null(), "{stray}");
    assert_eq!(c.items(PODS).len(), 3);
    let status = c.get(&alloc::format!("{REPLICASETS}/db")).1["status"].clone();
    assert_eq!(
        (
            status["replicas"].as_i64(),
            status["fullyLabeledReplicas"].as_i64()
        ),
        (Some(2), Some(2))
    );
}

#[test]
fn a_replicaset_releases_its_relabelled_pod_among_many_neighbours() {
    // The sync finds its own pods by selector and, through the ownership graph, the one that
    // stopped matching; the other ReplicaSets' pods around it are neither claimed nor changed.
    let mut c = Cluster::new();
    let rs = |name: &str, replicas: usize| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "redis"}]}}}})
    };
    for (name, replicas) in [("a", 40), ("m", 3), ("z", 40)] {
        assert_eq!(c.post(REPLICASETS, rs(name, replicas)).0, 201);
    }
    c.settle();
    assert_eq!(c.items(PODS).len(), 83);
    let owner = |pod: &Value| pod["metadata"]["ownerReferences"][0]["name"].clone();
    let mine: Vec<String> = c
        .items(PODS)
        .iter()
        .filter(|p| owner(p) == "m")
        .map(|p| p["metadata"]["name"].as_str().unwrap().into())
        .collect();
    assert_eq!(mine.len(), 3);
    let before: Vec<Value> = c
        .items(PODS)
        .into_iter()
        .filter(|p| owner(p) != "m")
        .collect();
    c.patch(
        &alloc::format!("{PODS}/{}", mine[1]),
        json!({"metadata": {"labels": {"app": "gone"}}}),
        "application/merge-patch+json",
    );
    c.settle();
    let released = c.get(&alloc::format!("{PODS}/{}", mine[1])).1;
    assert!(
        released["metadata"]["ownerReferences"].is_null(),
        "{released}"
    );
    let pods = c.items(PODS);
    assert_eq!(pods.len(), 84, "the released pod is replaced");
    assert_eq!(pods.iter().filter(|p| owner(p) == "m").count(), 3);
    let after: Vec<Value> = pods
        .into_iter()
        .filter(|p| owner(p) != "m" && p["metadata"]["name"] != mine[1].as_str())
        .collect();
    assert_eq!(after, before, "the neighbours' pods are untouched");
    let status = c.get(&alloc::format!("{REPLICASETS}/m")).1["status"].clone();
    assert_eq!(status["replicas"], 3);
}

#[test]
fn min_ready_seconds_delays_availability() {
    let mut c = Cluster::new();
    let mut d = deployment("web", 1, "nginx");
    d["spec"]["minReadySeconds"] = json!(10);
    c.post(DEPLOYMENTS, d);
    c.settle();
    c.make_pods_ready();
    let rs = c.items(REPLICASETS)[0].clone();
    assert_eq!(
        (
            rs["status"]["readyReplicas"].as_i64(),
            rs["status"]["availableReplicas"].as_i64()
        ),
        (Some(1), None)
    );
    let due = c.server.poll_timeout().unwrap();
    assert_eq!(
        due,
        c.now.plus_secs(10),
        "a timer for when the pod becomes available"
    );
    c.now = due;
    c.server.handle_timeout(c.now);
    c.settle();
    assert_eq!(c.items(REPLICASETS)[0]["status"]["availableReplicas"], 1);
    assert_eq!(c.deployment("web")["status"]["availableReplicas"], 1);
}

#[test]
fn delete_propagation_background_orphan_foreground() {
    let mut c = Cluster::new();
    // Background (kubectl's default): the deployment goes at once, the rest after.
    c.post(DEPLOYMENTS, deployment("bg", 2, "nginx"));
    c.settle();
    let (code, _) = c.delete(
        &alloc::format!("{DEPLOYMENTS}/bg"),
        json!({"propagationPolicy": "Background"}),
    );
    assert_eq!(code, 200);
    assert_eq!(c.get(&alloc::format!("{DEPLOYMENTS}/bg")).0, 404);
    c.settle();
    assert!(c.items(REPLICASETS).is_empty());
    assert!(c.items(PODS).is_empty());

    // Orphan: dependents stay, without the reference.
    c.post(DEPLOYMENTS, deployment("or", 2, "nginx"));
    c.settle();
    let (code, body) = c.delete(
        &alloc::format!("{DEPLOYMENTS}/or"),
        json!({"propagationPolicy": "Orphan"}),
    );
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["finalizers"], json!(["orphan"]));
    c.settle();
    assert_eq!(c.get(&alloc::format!("{DEPLOYMENTS}/or")).0, 404);
    let sets = c.items(REPLICASETS);
    assert_eq!(sets.len(), 1);
    assert!(sets[0]["metadata"]["ownerReferences"].is_null());
    assert_eq!(c.items(PODS).len(), 2, "pods keep their ReplicaSet");
    let rs_name = sets[0]["metadata"]["name"].as_str().unwrap().to_string();
    // Deprecated orphanDependents=true means Orphan too.
    let (code, _) = c.delete(
        &alloc::format!("{REPLICASETS}/{rs_name}"),
        json!({"orphanDependents": true}),
    );
    assert_eq!(code, 200);
    c.settle();
    assert!(c.items(REPLICASETS).is_empty());
    let pods = c.items(PODS);
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["ownerReferences"].is_null())
    );
    for p in c.names(PODS) {
        c.delete(&alloc::format!("{PODS}/{p}"), Value::Null);
    }

    // Foreground: the owner lingers with the finalizer until its dependents are gone.
    c.post(DEPLOYMENTS, deployment("fg", 2, "nginx"));
    c.settle();
    let (code, body) = c.delete(
        &alloc::format!("{DEPLOYMENTS}/fg"),
        json!({"propagationPolicy": "Foreground"}),
    );
    assert_eq!(code, 200);
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(body["metadata"]["deletionTimestamp"].is_string());
    c.server.handle_timeout(c.now);
    c.settle();
    assert_eq!(c.get(&alloc::format!("{DEPLOYMENTS}/fg")).0, 404);
    assert!(c.items(REPLICASETS).is_empty());
    assert!(c.items(PODS).is_empty());

    // Bad options are refused.
    c.post(DEPLOYMENTS, deployment("x", 0, "nginx"));
    let (code, _) = c.delete(
        &alloc::format!("{DEPLOYMENTS}/x"),
        json!({"propagationPolicy": "Sideways"}),
    );
    assert_eq!(code, 422);
    let (code, _) = c.delete(
        &alloc::format!("{DEPLOYMENTS}/x"),
        json!({"propagationPolicy": "Orphan", "orphanDependents": true}),
    );
    assert_eq!(code, 422);
}

fn configmap(name: &str, owners: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": owners}})
}

fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "blockOwnerDeletion": true})
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[test]
fn ownership_cycles_end_in_both_modes() {
    for policy in ["Background", "Foreground"] {
        let mut c = Cluster::new();
        let (_, a) = c.post(CONFIGMAPS, configmap("a", json!([])));
        let a_uid = a["metadata"]["uid"].as_str().unwrap().to_string();
        let (_, b) = c.post(
            CONFIGMAPS,
            configmap("b", json!([owner("ConfigMap", "a", &a_uid)])),
        );
        let b_uid = b["metadata"]["uid"].as_str().unwrap().to_string();
        let (code, _) = c.patch(
            &alloc::format!("{CONFIGMAPS}/a"),
            json!({"metadata": {"ownerReferences": [owner("ConfigMap", "b", &b_uid)]}}),
            "application/merge-patch+json",
        );
        assert_eq!(code, 200);
        c.settle();
        let names = c.names(CONFIGMAPS);
        assert!(
            names.contains(&"a".into()) && names.contains(&"b".into()),
            "a cycle of live owners is left alone"
        );
        let (code, _) = c.delete(
            &alloc::format!("{CONFIGMAPS}/a"),
            json!({"propagationPolicy": policy}),
        );
        assert_eq!(code, 200);
        // The collector terminates: settle() would panic after 50 rounds otherwise.
        c.settle();
        let left: Vec<String> = c
            .names(CONFIGMAPS)
            .into_iter()
            .filter(|n| n == "a" || n == "b")
            .collect();
        assert!(left.is_empty(), "{policy}: {left:?}");
    }
}

#[test]
fn dependents_of_a_missing_owner_uid_are_collected_and_partial_ones_lose_the_reference() {
    let mut c = Cluster::new();
    let (_, live) = c.post(CONFIGMAPS, configmap("live", json!([])));
    let live_uid = live["metadata"]["uid"].as_str().unwrap().to_string();
    // An owner of that name exists, but under another uid: dangling.
    c.post(
        CONFIGMAPS,
        configmap(
            "dangling",
            json!([owner(
                "ConfigMap",
                "live",
                "00000000-0000-4000-8000-000000000000"
            )]),
        ),
    );
    c.post(
        CONFIGMAPS,
        configmap(
            "half",
            json!([
                owner("ConfigMap", "live", &live_uid),
                owner("ConfigMap", "gone", "11111111-0000-4000-8000-000000000000")
            ]),
        ),
    );
    c.post(
        CONFIGMAPS,
        configmap("kept", json!([owner("ConfigMap", "live", &live_uid)])),
    );
    c.settle();
    assert_eq!(c.get(&alloc::format!("{CONFIGMAPS}/dangling")).0, 404);
    let half = c.get(&alloc::format!("{CONFIGMAPS}/half")).1;
    assert_eq!(
        half["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(c.get(&alloc::format!("{CONFIGMAPS}/kept")).0, 200);
}

#[test]
fn the_object_budget_bounds_a_huge_deployment_and_says_why() {
    let mut c = Cluster::with(Config {
        max_objects: 60,
        ..Config::default()
    });
    let (code, body) = c.post(DEPLOYMENTS, deployment("huge", 100_000, "nginx"));
    assert_eq!(code, 201, "{body}");
    for _ in 0..5 {
        c.server.handle_timeout(c.now);
    }
    let store = c.server.store().len();
    assert!(store <= 60, "{store}");
    let pods = c.items(PODS).len();
    assert!(pods > 10 && pods < 60, "{pods}");
    let rs = c.items(REPLICASETS)[0].clone();
    let (status, reason, message) = Cluster::condition(&rs, "ReplicaFailure").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "FailedCreate"));
    assert!(message.contains("maximum of 60 objects"), "{message}");
    let d = c.deployment("huge");
    assert_eq!(
        Cluster::condition(&d, "ReplicaFailure").unwrap().1,
        "FailedCreate"
    );
    assert!(
        c.server.poll_timeout().is_none_or(|t| t > c.now),
        "a full store is not a busy loop"
    );
    assert_eq!(
        c.server.poll_timeout(),
        Some(UnixTime {
            nanos: c.now.nanos + 5_000_000
        }),
        "but it is retried, with backoff"
    );
    // Still usable: reads work, and deleting the deployment frees the budget.
    assert_eq!(c.get("/api/v1/namespaces").0, 200);
    assert_eq!(
        c.delete(&alloc::format!("{DEPLOYMENTS}/huge"), Value::Null)
            .0,
        200
    );
    for _ in 0..5 {
        c.server.handle_timeout(c.now);
    }
    assert!(c.items(PODS).is_empty());
    assert_eq!(c.post(DEPLOYMENTS, deployment("small", 1, "nginx")).0, 201);
    c.settle();
    assert_eq!(c.items(PODS).len(), 1);
}

#[test]
fn bad_deployments_are_refused_like_kube() {
    let mut c = Cluster::new();
    let mut d = deployment("web", 1, "nginx");
    d["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    let (code, body) = c.post(DEPLOYMENTS, d);
    assert_eq!(code, 422);
    assert!(body["message"].as_str().unwrap().contains("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"), "{body}");
    let (code, body) = c.post(DEPLOYMENTS, deployment("web", -1, "nginx"));
    assert_eq!(code, 422);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{body}"
    );
}

#[test]
fn endpoints_list_ready_and_not_ready_pod_ips_with_resolved_ports() {
    let mut c = Cluster::new();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    assert_eq!(c.post("/api/v1/namespaces/default/services", svc).0, 201);
    for (name, ready, ip) in [
        ("a", true, "10.1.0.1"),
        ("b", false, "10.1.0.2"),
        ("c", true, ""),
    ] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(c.post(PODS, pod).0, 201);
        if !ip.is_empty() {
            c.patch(
                &alloc::format!("{PODS}/{name}/status"),
                json!({"status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}),
                "application/merge-patch+json",
            );
        }
    }
    c.settle();
    let (code, ep) = c.get("/api/v1/namespaces/default/endpoints/web");
    assert_eq!(code, 200, "{ep}");
    let subset = &ep["subsets"][0];
    assert_eq!(
        subset["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(subset["addresses"][0]["ip"], "10.1.0.1");
    assert_eq!(subset["addresses"][0]["nodeName"], "n1");
    assert_eq!(subset["addresses"][0]["targetRef"]["name"], "a");
    assert_eq!(subset["notReadyAddresses"][0]["ip"], "10.1.0.2");
    // Ready later: moves over.
    c.patch(
        &alloc::format!("{PODS}/b/status"),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        "application/merge-patch+json",
    );
    c.settle();
    let ep = c.get("/api/v1/namespaces/default/endpoints/web").1;
    assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 2);
    assert!(ep["subsets"][0]["notReadyAddresses"].is_null());
    // Deleting the Service deletes its Endpoints.
    c.delete("/api/v1/namespaces/default/services/web", Value::Null);
    c.settle();
    assert_eq!(c.get("/api/v1/namespaces/default/endpoints/web").0, 404);
}

#[test]
fn an_overflowed_feed_resyncs_from_the_store() {
    let mut c = Cluster::with(Config {
        watch_ring_capacity: 4,
        ..Config::default()
    });
    c.post(DEPLOYMENTS, deployment("web", 1, "nginx"));
    // More writes than the ring holds before the controllers run.
    for i in 0..10 {
        c.post(CONFIGMAPS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": alloc::format!("cm{i}")}}));
    }
    c.settle();
    assert_eq!(c.items(REPLICASETS).len(), 1);
    assert_eq!(c.items(PODS).len(), 1);
}

#[test]
fn namespace_deletion_takes_workloads_and_nothing_comes_back() {
    let mut c = Cluster::new();
    c.post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    );
    let mut d = deployment("web", 2, "nginx");
    d["metadata"]["namespace"] = json!("team");
    assert_eq!(
        c.post("/apis/apps/v1/namespaces/team/deployments", d).0,
        201
    );
    c.settle();
    assert_eq!(c.items("/api/v1/namespaces/team/pods").len(), 2);
    c.delete("/api/v1/namespaces/team", Value::Null);
    c.settle();
    assert_eq!(c.get("/api/v1/namespaces/team").0, 404);
    assert!(c.items("/apis/apps/v1/replicasets").is_empty());
    assert!(c.items("/api/v1/pods").is_empty());
}

#[test]
fn pods_turning_ready_one_by_one_cost_linear_work() {
    // The runtime runs the controllers after every write; with cached pod views a ReplicaSet
    // sync does not re-parse its pods, so 300 status updates stay fast even in debug builds.
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("web", 300, "nginx"));
    c.settle();
    assert_eq!(c.items(PODS).len(), 300);
    let started = std::time::Instant::now();
    let names = c.names(PODS);
    for (i, name) in names.iter().enumerate() {
        let status = json!({"status": {"phase": "Running", "podIP": alloc::format!("10.1.{}.{}", i / 200, i % 200),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": c.now.rfc3339()}]}});
        c.patch(
            &alloc::format!("{PODS}/{name}/status"),
            status,
            "application/merge-patch+json",
        );
        if std::env::var("NO_CTRL").is_err() {
            c.server.handle_timeout(c.now);
        }
    }
    c.settle();
    std::eprintln!("300 pods ready one by one: {:?}", started.elapsed());
    assert_eq!(c.deployment("web")["status"]["availableReplicas"], 300);
}

#[test]
fn a_stalled_rollout_exceeds_its_progress_deadline() {
    let mut c = Cluster::new();
    let mut d = deployment("web", 2, "nginx");
    d["spec"]["progressDeadlineSeconds"] = json!(30);
    c.post(DEPLOYMENTS, d);
    c.settle();
    assert_eq!(c.server.poll_timeout(), Some(c.now.plus_secs(30)));
    c.now = c.now.plus_secs(30);
    c.server.handle_timeout(c.now);
    c.settle();
    let d = c.deployment("web");
    let (status, reason, message) = Cluster::condition(&d, "Progressing").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    assert!(message.ends_with("has timed out progressing."), "{message}");
    // Progress after the deadline makes it progressing again.
    c.make_pods_ready();
    let d = c.deployment("web");
    assert_eq!(
        Cluster::condition(&d, "Progressing").unwrap().1,
        "NewReplicaSetAvailable"
    );
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    // kube's proportional scaling: 10 replicas (maxSurge 3, maxUnavailable 2) mid-rollout,
    // scaled to 15: the 5 extra (plus surge) are shared by size between the two sets.
    let mut c = Cluster::new();
    c.post(DEPLOYMENTS, deployment("web", 10, "nginx:1"));
    c.settle();
    c.make_pods_ready();
    c.patch(
        &alloc::format!("{DEPLOYMENTS}/web"),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}}),
        "application/strategic-merge-patch+json",
    );
    c.settle();
    let sizes = |c: &mut Cluster| {
        let mut v: Vec<i64> = c
            .items(REPLICASETS)
            .iter()
            .map(|rs| rs["spec"]["replicas"].as_i64().unwrap())
            .collect();
        v.sort();
        v
    };
    // New 5 (13 pods allowed: 8 old kept available + 5 new).
    assert_eq!(sizes(&mut c), [5, 8]);
    c.patch(
        &alloc::format!("{DEPLOYMENTS}/web/scale"),
        json!({"spec": {"replicas": 15}}),
        "application/merge-patch+json",
    );
    c.settle();
    let after = sizes(&mut c);
    assert_eq!(
        after.iter().sum::<i64>(),
        15 + 4,
        "replicas + maxSurge (25% of 15, rounded up)"
    );
    assert!(after[0] > 5 && after[1] > 8, "both sets grew: {after:?}");
    for _ in 0..15 {
        c.make_pods_ready();
    }
    assert_eq!(sizes(&mut c), [0, 15]);
}

/// kube's pod garbage collector deletes pods bound to a node that no longer exists, so that
/// their ReplicaSet replaces them; a pod bound to a node that still exists is left alone.
#[test]
fn pods_of_a_deleted_node_are_collected_and_replaced() {
    let mut c = Cluster::new();
    for node in ["gone", "kept"] {
        let (code, body) = c.post(
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
        );
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = c.post(DEPLOYMENTS, deployment("web", 2, "nginx"));
    assert_eq!(code, 201, "{body}");
    c.settle();
    let pods = c.names(PODS);
    assert_eq!(pods.len(), 2, "{pods:?}");
    // Bind one pod to each node, as the scheduler or a kubelet would.
    for (pod, node) in pods.iter().zip(["gone", "kept"]) {
        let (code, body) = c.post(
            &alloc::format!("{PODS}/{pod}/binding"),
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}),
        );
        assert_eq!(code, 201, "{body}");
    }
    c.settle();
    let (code, body) = c.delete("/api/v1/nodes/gone", Value::Null);
    assert_eq!(code, 200, "{body}");
    c.settle();
    let after = c.names(PODS);
    assert_eq!(
        after.len(),
        2,
        "the ReplicaSet replaces the collected pod: {after:?}"
    );
    assert!(!after.contains(&pods[0]), "{after:?}");
    assert!(after.contains(&pods[1]), "{after:?}");
    let (_, kept) = c.get(&alloc::format!("{PODS}/{}", pods[1]));
    assert_eq!(kept["spec"]["nodeName"], "kept");
}

/// A controller's writes are recorded as kube's are: `kube-controller-manager` `Update` entries,
/// one for what it sets in metadata and one on the `status` subresource for the status.
#[test]
fn controller_writes_are_recorded_in_managed_fields() {
    let mut c = Cluster::new();
    let (code, body) = c.post(
        &alloc::format!("{DEPLOYMENTS}?fieldManager=creator"),
        deployment("web", 2, "nginx"),
    );
    assert_eq!(code, 201, "{body}");
    c.settle();
    c.make_pods_ready();
    let d = c.deployment("web");
    let entries = d["metadata"]["managedFields"].as_array().unwrap();
    let entry = |manager: &str, subresource: Option<&str>| {
        entries
            .iter()
            .find(|e| e["manager"] == manager && e["subresource"].as_str() == subresource)
            .unwrap_or_else(|| panic!("no {manager} {subresource:?} entry in {entries:?}"))
    };
    let creator = entry("creator", None);
    assert_eq!(creator["operation"], "Update");
    assert!(creator["fieldsV1"]["f:spec"].is_object(), "{creator}");
    let status = entry("kube-controller-manager", Some("status"));
    assert_eq!(status["operation"], "Update");
    assert!(
        status["fieldsV1"]["f:status"]["f:availableReplicas"].is_object(),
        "{status}"
    );
    assert!(status["fieldsV1"].get("f:spec").is_none(), "{status}");
    let meta = entry("kube-controller-manager", None);
    assert_eq!(meta["operation"], "Update");
    assert!(
        meta["fieldsV1"]["f:metadata"]["f:annotations"]["f:deployment.kubernetes.io/revision"]
            .is_object(),
        "{meta}"
    );
    assert_eq!(entries.len(), 3, "{entries:?}");
}

/// Quota admission judges the ReplicaSet controller's pod creates: the ReplicaSet stops at the
/// quota and says why in a `ReplicaFailure` condition, which goes once it fits again.
#[test]
fn a_replica_set_over_its_pod_quota_reports_replica_failure() {
    let mut c = Cluster::new();
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "two-pods"},
        "spec": {"hard": {"pods": "2"}}});
    let (code, body) = c.post("/api/v1/namespaces/default/resourcequotas", quota);
    assert_eq!(code, 201, "{body}");
    c.settle();
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
    let (code, body) = c.post(REPLICASETS, rs);
    assert_eq!(code, 201, "{body}");
    c.settle();
    assert_eq!(c.items(PODS).len(), 2);
    let (_, rs) = c.get(&alloc::format!("{REPLICASETS}/web"));
    let (status, reason, message) =
        Cluster::condition(&rs, "ReplicaFailure").expect("ReplicaFailure");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "FailedCreate"));
    assert!(
        message.contains(
            "pods \"web-\" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{message}"
    );
    let (code, body) = c.patch(
        &alloc::format!("{REPLICASETS}/web"),
        json!({"spec": {"replicas": 2}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{body}");
    c.settle();
    let (_, rs) = c.get(&alloc::format!("{REPLICASETS}/web"));
    assert!(Cluster::condition(&rs, "ReplicaFailure").is_none(), "{rs}");
}

/// client-go speaking protobuf sends a Scale in protobuf to the scale subresource.
#[test]
fn scale_subresource_takes_a_protobuf_scale() {
    let mut c = Cluster::new();
    let (code, body) = c.post(DEPLOYMENTS, deployment("web", 1, "nginx"));
    assert_eq!(code, 201, "{body}");
    let scale = crate::protobuf::encode::object(
        "autoscaling/v1",
        "Scale",
        &json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 4}}),
    )
    .unwrap();
    let (code, answer) = c.put_bytes(
        &alloc::format!("{DEPLOYMENTS}/web/scale"),
        "application/vnd.kubernetes.protobuf",
        &scale,
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["spec"]["replicas"], 4);
    assert_eq!(c.deployment("web")["spec"]["replicas"], 4);
}

/// A controller's write that the store refuses is not dropped: the sync runs again with
/// kube's per-item backoff (5 ms doubling) until the write lands, with no other change to
/// wake it.
#[test]
fn a_refused_controller_write_is_retried_until_it_lands() {
    let base = Cluster::new().server.store().len();
    // Room for a filler ConfigMap and a namespace, not for the namespace's ServiceAccount.
    let mut c = Cluster::with(Config {
        max_objects: base + 2,
        ..Config::default()
    });
    let filler = "/api/v1/namespaces/default/configmaps/filler";
    let (code, body) = c.post(
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "filler"}}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = c.post("/api/v1/namespaces", json!({"metadata": {"name": "late"}}));
    assert_eq!(code, 201, "{body}");
    let account = "/api/v1/namespaces/late/serviceaccounts/default";
    let mut retries = Vec::new();
    for _ in 0..6 {
        c.settle();
        assert_eq!(c.get(account).0, 404, "the store is full");
        let next = c.server.poll_timeout().expect("a retry is scheduled");
        assert!(next > c.now);
        retries.push(next.nanos - c.now.nanos);
        c.now = next;
        c.server.handle_timeout(c.now);
    }
    assert_eq!(
        retries,
        [5, 10, 20, 40, 80, 160].map(|ms| ms * 1_000_000),
        "each refusal doubles the wait"
    );
    let (code, body) = c.delete(filler, Value::Null);
    assert_eq!(code, 200, "{body}");
    c.settle();
    let next = c
        .server
        .poll_timeout()
        .expect("the retry is still scheduled");
    c.now = next;
    c.server.handle_timeout(c.now);
    c.settle();
    assert_eq!(c.get(account).0, 200, "the retried create landed");
    assert!(
        c.server
            .poll_timeout()
            .is_none_or(|t| t.nanos - c.now.nanos > 1_000_000_000),
        "no retry is left once the sync succeeded"
    );
}
