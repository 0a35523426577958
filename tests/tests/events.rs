//! Events against hostile writers, end to end (issue 13, item 5): an event dated in the far future
//! no longer stops the expiry of the others, a timestamp such as `"tomorrow"` is refused the way
//! kube-apiserver refuses it (so typed clients keep reading), and one staked worker flooding
//! events is rate limited and held to its share of the store while the admin's creates go on.

use std::process::Command;
use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::{Connection, Reply, tls_config};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, package_arg};
use serde_json::{Value, json};

const EVENTS: &str = "/api/v1/namespaces/default/events";

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn event(name: &str, last: &str, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Test", "message": message, "type": "Normal", "count": 1,
        "firstTimestamp": last, "lastTimestamp": last})
}

fn post(c: &DevCluster, path: &str, body: &Value) -> Reply {
    c.request("POST", path, Some(body.to_string().as_bytes()), &[])
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn status_of(c: &DevCluster, path: &str) -> u16 {
    c.request("GET", path, None, &[]).expect("GET").status
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_event_dated_in_the_far_future_does_not_stop_expiry() {
    let c = DevCluster::start_with(&["--event-ttl=2s"]);
    let future = post(&c, EVENTS, &event("from-2100", "2100-01-01T00:00:00Z", "m"));
    assert_eq!(future.status, 201, "{}", text(&future));
    let after = post(&c, EVENTS, &event("after-it", "2024-01-01T00:00:00Z", "m"));
    assert_eq!(after.status, 201, "{}", text(&after));
    // Both expire two seconds after their write, whatever they say about themselves.
    wait_for(Duration::from_secs(30), "both events to expire", || {
        status_of(&c, &format!("{EVENTS}/from-2100")) == 404
            && status_of(&c, &format!("{EVENTS}/after-it")) == 404
    });
    // And events written later still expire.
    assert_eq!(
        post(&c, EVENTS, &event("later", "2100-01-01T00:00:00Z", "m")).status,
        201
    );
    wait_for(Duration::from_secs(30), "a later event to expire", || {
        status_of(&c, &format!("{EVENTS}/later")) == 404
    });
}

#[test]
fn a_timestamp_like_tomorrow_is_refused_and_typed_clients_keep_listing() {
    let c = DevCluster::start();
    let reply = post(&c, EVENTS, &event("bad", "tomorrow", "m"));
    assert_eq!(reply.status, 400, "{}", text(&reply));
    let status = reply.json();
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "Event in version \"v1\" cannot be handled as a Event: parsing time \"tomorrow\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"tomorrow\" as \"2006\""
    );
    // kubectl shows kube's words.
    let manifest = event("bad-too", "tomorrow", "m").to_string();
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&manifest));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot parse \"tomorrow\" as \"2006\""),
        "{stderr}"
    );
    // A good one in another offset is stored in UTC, and the official Python client (which
    // parses every timestamp of every listed event) lists the namespace.
    let good = post(&c, EVENTS, &event("good", "2024-01-01T01:00:00+01:00", "m"));
    assert_eq!(good.status, 201, "{}", text(&good));
    assert_eq!(good.json()["lastTimestamp"], "2024-01-01T00:00:00Z");
    let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
events = client.CoreV1Api().list_namespaced_event("default")
print("listed", sorted(e.metadata.name for e in events.items))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&c.kubeconfig)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("listed ['good']"), "{stdout}");
}

#[test]
fn a_worker_flooding_events_is_limited_and_the_admin_s_creates_succeed() {
    // The issue's setting: a 20 MB store, one staked worker sending 8 KB events flat out.
    let c = DevCluster::start_with(&[
        &package_arg(&DEFAULT_PACKAGE),
        "--max-store-bytes=20971520",
        "--event-qps=20",
        "--event-burst=40",
    ]);
    let sim = Simulator::start(
        &c,
        SimConfig {
            workers: 1,
            interval: Duration::from_secs(5),
            connections: 1,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let token = sim.worker(0).token();
    let padding = "x".repeat(8 << 10);
    let (port, ca) = (c.port, c.ca_pem.clone());
    let flood = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut conn = Connection::open(port, tls_config(&ca)).await.unwrap();
            let headers = [("authorization".to_string(), format!("Bearer {token}"))];
            let mut replies: Vec<(u16, String)> = Vec::new();
            for i in 0..2_000 {
                let body = event(&format!("flood-{i}"), "2024-01-01T00:00:00Z", &padding);
                let reply = conn
                    .send("POST", EVENTS, Some(body.to_string().as_bytes()), &headers)
                    .await
                    .unwrap();
                let message = if reply.status == 201 {
                    String::new()
                } else {
                    reply.json()["message"].as_str().unwrap_or("").to_string()
                };
                replies.push((reply.status, message));
            }
            replies
        })
    });
    // Meanwhile the admin keeps creating.
    let mut admin = Vec::new();
    for i in 0..100 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("admin-{i}")}, "data": {"k": "v"}});
        admin.push(post(&c, "/api/v1/namespaces/default/configmaps", &cm));
    }
    let replies = flood.join().unwrap();
    let accepted = replies.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<&(u16, String)> = replies.iter().filter(|(s, _)| *s != 201).collect();
    assert!(refused.iter().all(|(s, _)| *s == 429), "{refused:?}");
    assert!(
        accepted < 100,
        "1 % of the store is about 25 such events, not {accepted}"
    );
    assert!(
        refused.iter().any(|(_, m)| m.starts_with(
            "Too many requests: the events of node \"sim-00000\" hold their share of the store"
        )),
        "{:?}",
        refused.first()
    );
    assert!(
        refused.iter().any(|(_, m)| m
            == "Too many requests: limit reached on type User for key system:node:sim-00000"),
        "kube's EventRateLimit wording: {:?}",
        refused.last()
    );
    for (i, reply) in admin.iter().enumerate() {
        assert_eq!(reply.status, 201, "admin create {i}: {}", text(reply));
    }
    // More admin writes after the flood, too.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}});
    assert_eq!(
        post(&c, "/api/v1/namespaces/default/configmaps", &cm).status,
        201
    );
}

/// events.k8s.io/v1 is a second view of the same Events (issue 14's discovery list, issue 18's
/// node agents): written through one API, read through both by kubectl and the Python client,
/// refused in kube's words when a new event lacks what events.k8s.io/v1 requires.
#[test]
fn events_k8s_io_and_core_events_are_one_object_for_kubectl_and_python() {
    let c = DevCluster::start();
    let manifest = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "scheduled", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "example.com/scheduler", "reportingInstance": "scheduler-1",
        "action": "Binding", "reason": "Scheduled", "type": "Normal",
        "note": "assigned default/web to node-a",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web"}})
    .to_string();
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "event.events.k8s.io/scheduled created"
    );
    // The core API shows the same object with kube's field mapping.
    let message = c.kubectl_ok(&[
        "get",
        "events",
        "scheduled",
        "-o",
        "jsonpath={.message}/{.involvedObject.name}/{.reportingComponent}",
    ]);
    assert_eq!(
        message,
        "assigned default/web to node-a/web/example.com/scheduler"
    );
    let table = c.kubectl_ok(&["get", "events.v1.events.k8s.io"]);
    let header = table.lines().next().unwrap_or("");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{table}"
    );
    assert!(
        table.contains("Normal   Scheduled   pod/web   assigned default/web to node-a"),
        "{table}"
    );
    // A core event reads through events.k8s.io/v1 with the deprecated fields.
    let core = post(
        &c,
        EVENTS,
        &event("legacy", "2024-01-01T00:00:00Z", "old style"),
    );
    assert_eq!(core.status, 201, "{}", text(&core));
    let viewed = c.kubectl_ok(&[
        "get",
        "events.v1.events.k8s.io",
        "legacy",
        "-o",
        "jsonpath={.note}/{.deprecatedCount}/{.regarding.name}",
    ]);
    assert_eq!(viewed, "old style/1/p");

    // kube's strict rules for a new event through events.k8s.io/v1, in kube's words.
    let bare = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "bare", "namespace": "default"},
        "reason": "Scheduled", "type": "Normal", "note": "n"})
    .to_string();
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&bare));
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "The Event \"bare\" is invalid: eventTime: Required value"
    );

    // The Python client's EventsV1Api creates; its CoreV1Api reads the same object.
    let script = r#"
import sys, datetime
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
ev = client.EventsV1Event(
    metadata=client.V1ObjectMeta(name="from-python", namespace="default", labels={"by": "python"}),
    # A MicroTime needs its six fractional digits, in kube as here: isoformat() drops them
    # when the microseconds are zero.
    event_time=datetime.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=datetime.timezone.utc),
    reporting_controller="example.com/python", reporting_instance="py-1",
    action="Test", reason="Tested", type="Warning", note="hello from python",
    regarding=client.V1ObjectReference(kind="Node", name="node-a"))
made = client.EventsV1Api().create_namespaced_event("default", ev)
core = client.CoreV1Api().read_namespaced_event("from-python", "default")
# The legacy event has no eventTime, which this client's EventsV1Event requires (as against
# kube, whose conversion leaves it null): list only this one.
listed = client.EventsV1Api().list_namespaced_event("default", label_selector="by=python")
print("core", core.message, core.reporting_component, core.involved_object.name)
print("same rv", core.metadata.resource_version == made.metadata.resource_version)
print("listed", sorted(e.metadata.name for e in listed.items))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&c.kubeconfig)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("core hello from python example.com/python node-a"),
        "{stdout}"
    );
    assert!(stdout.contains("same rv True"), "{stdout}");
    assert!(stdout.contains("listed ['from-python']"), "{stdout}");
}
