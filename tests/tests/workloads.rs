//! PodTemplates, ReplicationControllers, Jobs and CronJobs end to end with the real `kubectl` and
//! the official Python client. There is no kubelet here: the test reports pod phases through the
//! status subresource, as a kubelet would.

use std::process::Command;
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, workspace_dir};
use serde_json::{Value, json};

fn get_json(c: &DevCluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl -o json")
}

fn items(c: &DevCluster, args: &[&str]) -> Vec<Value> {
    get_json(c, args)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `check` until it holds, for at most `limit`.
#[track_caller]
fn wait_for(c: &DevCluster, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}\n{}", c.logs());
}

/// The pods whose controller is the `kind` named `name`.
fn pods_of(c: &DevCluster, kind: &str, name: &str) -> Vec<Value> {
    items(c, &["pods"])
        .into_iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["kind"] == kind && r["name"] == name))
        })
        .collect()
}

/// Reports pod `name` in `phase`, as its kubelet would.
fn set_phase(c: &DevCluster, name: &str, phase: &str) {
    let body = serde_json::to_vec(&json!({"status": {"phase": phase}})).unwrap();
    let reply = c
        .request(
            "PATCH",
            &format!("/api/v1/namespaces/default/pods/{name}/status"),
            Some(&body),
            &[("content-type", "application/merge-patch+json")],
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{name}: {}", reply.status);
}

const SHORT: Duration = Duration::from_secs(10);

#[test]
fn pod_templates_and_replication_controllers_with_kubectl() {
    let c = DevCluster::start();
    let template = r#"{"apiVersion": "v1", "kind": "PodTemplate",
        "metadata": {"name": "base", "labels": {"tier": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}"#;
    c.kubectl_with_input(&["create", "-f", "-"], Some(template));
    let table = c.kubectl_ok(&["get", "podtemplates"]);
    assert!(
        table.contains("CONTAINERS") && table.contains("POD LABELS"),
        "{table}"
    );
    assert!(
        table.contains("nginx") && table.contains("nginx:1.27") && table.contains("app=web"),
        "{table}"
    );
    c.kubectl_ok(&["annotate", "podtemplate", "base", "updated=true"]);
    let got = get_json(&c, &["podtemplate", "base"]);
    assert_eq!(got["metadata"]["annotations"]["updated"], "true");
    assert_eq!(got["template"]["spec"]["restartPolicy"], "Always");

    let rc = r#"{"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}"#;
    c.kubectl_with_input(&["apply", "-f", "-"], Some(rc));
    wait_for(&c, "2 RC pods", SHORT, || {
        pods_of(&c, "ReplicationController", "web").len() == 2
    });
    let got = get_json(&c, &["rc", "web"]);
    assert_eq!(got["spec"]["selector"], json!({"app": "web"}));
    c.kubectl_ok(&["scale", "rc", "web", "--replicas=3"]);
    wait_for(&c, "3 RC pods", SHORT, || {
        pods_of(&c, "ReplicationController", "web").len() == 3
    });
    wait_for(&c, "status.replicas 3", SHORT, || {
        get_json(&c, &["rc", "web"])["status"]["replicas"] == 3
    });
    let table = c.kubectl_ok(&["get", "rc", "web", "-o", "wide"]);
    let row = table.lines().nth(1).unwrap_or_default().to_string();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.get(..4), Some(&["web", "3", "3", "0"][..]), "{table}");
    assert!(row.contains("app=web"), "{table}");
    // kubectl get all lists replication controllers.
    let all = c.kubectl_ok(&["get", "all"]);
    assert!(all.contains("replicationcontroller/web"), "{all}");

    // --cascade=orphan keeps the pods, released from their owner.
    c.kubectl_ok(&["delete", "rc", "web", "--cascade=orphan"]);
    wait_for(&c, "the RC to go", SHORT, || {
        c.kubectl(&["get", "rc", "web"])
            .status
            .code()
            .is_some_and(|code| code != 0)
    });
    wait_for(&c, "the pods released", SHORT, || {
        let pods = items(&c, &["pods", "-l", "app=web"]);
        pods.len() == 3
            && pods.iter().all(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
            })
    });
    // A new RC adopts them; deleting it in the background takes them along.
    c.kubectl_with_input(&["apply", "-f", "-"], Some(rc));
    wait_for(&c, "adoption down to 2", SHORT, || {
        pods_of(&c, "ReplicationController", "web").len() == 2
            && items(&c, &["pods", "-l", "app=web"]).len() == 2
    });
    c.kubectl_ok(&["delete", "rc", "web"]);
    wait_for(&c, "the pods collected", SHORT, || {
        items(&c, &["pods", "-l", "app=web"]).is_empty()
    });
}

#[test]
fn jobs_and_cron_jobs_with_kubectl() {
    let c = DevCluster::start();
    c.kubectl_ok(&[
        "create",
        "job",
        "calc",
        "--image=busybox",
        "--",
        "/bin/sh",
        "-c",
        "true",
    ]);
    wait_for(&c, "the job's pod", SHORT, || {
        pods_of(&c, "Job", "calc").len() == 1
    });
    let pod = pods_of(&c, "Job", "calc").remove(0);
    assert_eq!(
        pod["metadata"]["finalizers"],
        json!(["batch.kubernetes.io/job-tracking"])
    );
    assert_eq!(pod["metadata"]["labels"]["job-name"], "calc");
    let table = c.kubectl_ok(&["get", "job", "calc"]);
    assert!(
        table.contains("Running") && table.contains("0/1"),
        "{table}"
    );
    set_phase(&c, pod["metadata"]["name"].as_str().unwrap(), "Succeeded");
    let out = c.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/calc",
        "--timeout=20s",
    ]);
    assert!(out.contains("condition met"), "{out}");
    let table = c.kubectl_ok(&["get", "job", "calc"]);
    assert!(
        table.contains("Complete") && table.contains("1/1"),
        "{table}"
    );
    let job = get_json(&c, &["job", "calc"]);
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["completionTime"].is_string());
    // Changing a Job's template is refused, with kube's field path.
    let err = c.kubectl_err(&["set", "image", "job/calc", "calc=busybox:1.36"]);
    assert!(err.contains("spec.template: Invalid value"), "{err}");

    c.kubectl_ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/1 * * * *",
        "--",
        "/bin/true",
    ]);
    let table = c.kubectl_ok(&["get", "cronjob", "tick"]);
    assert!(
        table.contains("SCHEDULE") && table.contains("*/1 * * * *") && table.contains("False"),
        "{table}"
    );
    // A Job made from the CronJob's template by hand.
    c.kubectl_ok(&["create", "job", "by-hand", "--from=cronjob/tick"]);
    let by_hand = get_json(&c, &["job", "by-hand"]);
    assert_eq!(
        by_hand["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    // The controller's timer fires at the next whole minute without any request.
    wait_for(&c, "a scheduled job", Duration::from_secs(75), || {
        get_json(&c, &["cronjob", "tick"])["status"]["active"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let cj = get_json(&c, &["cronjob", "tick"]);
    let active = cj["status"]["active"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(active.starts_with("tick-"), "{active}");
    let scheduled = get_json(&c, &["job", &active]);
    assert!(
        scheduled["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .is_string()
    );
    assert!(cj["status"]["lastScheduleTime"].is_string());
    // Deleting the CronJob in the background collects its Jobs and their pods.
    c.kubectl_ok(&["delete", "cronjob", "tick"]);
    wait_for(&c, "the scheduled job collected", SHORT, || {
        c.kubectl(&["get", "job", &active])
            .status
            .code()
            .is_some_and(|code| code != 0)
    });
    wait_for(&c, "its pods collected", SHORT, || {
        pods_of(&c, "Job", &active).is_empty()
    });
}

#[test]
fn python_client_pages_templates_scales_rcs_and_runs_jobs() {
    let c = DevCluster::start();
    let script = workspace_dir().join("tests/python/workloads.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&c.kubeconfig)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "workloads.py failed ({}):\nstdout:\n{}\nstderr:\n{}\ncluster logs:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
}

/// HorizontalPodAutoscalers (autoscaling/v2, and v1 as a view of the same objects) with the
/// real kubectl: `kubectl autoscale`, `kubectl get hpa` columns, both versions' shapes, and a
/// refusal in kube's words. No controller scales anything (no metrics server).
#[test]
fn horizontal_pod_autoscalers_with_kubectl() {
    let c = DevCluster::start();
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    let out = c.kubectl_ok(&[
        "autoscale",
        "deployment",
        "web",
        "--min=2",
        "--max=6",
        "--cpu-percent=70",
    ]);
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    let table = c.kubectl_ok(&["get", "hpa"]);
    let mut lines = table.lines();
    assert_eq!(
        lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        row[..7],
        [
            "web",
            "Deployment/web",
            "cpu:",
            "<unknown>/70%",
            "2",
            "6",
            "0"
        ],
        "{table}"
    );
    // The same object through both versions.
    let v2 = get_json(&c, &["horizontalpodautoscalers.v2.autoscaling", "web"]);
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 70}}}])
    );
    let v1 = get_json(&c, &["horizontalpodautoscalers.v1.autoscaling", "web"]);
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(v1["metadata"]["uid"], v2["metadata"]["uid"]);
    // A v1 edit (kubectl patch through v1) shows in v2.
    c.kubectl_ok(&[
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"targetCPUUtilizationPercentage":55}}"#,
    ]);
    let v2 = get_json(&c, &["horizontalpodautoscalers.v2.autoscaling", "web"]);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        55
    );
    // kube's words for a bad bound.
    let err = c.kubectl_err(&[
        "patch",
        "hpa",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"maxReplicas":1}}"#,
    ]);
    assert!(
        err.contains(
            "spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`"
        ),
        "{err}"
    );
    // `kubectl get all` lists it (category all).
    let all = c.kubectl_ok(&["get", "all"]);
    assert!(
        all.contains("horizontalpodautoscaler.autoscaling/web"),
        "{all}"
    );
}
