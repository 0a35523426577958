//! Events against hostile writers, in virtual time: expiry by time of write whatever the
//! timestamps say, and a node identity's event writes held to a rate and to a share of the store
//! while the admin's writes go on.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::workers_tests::{ADMIN, D1, NOW, PACKAGE, Staker, deposit, seed};
use super::{ApiRequest, Cluster, Method};
use crate::{Config, UnixTime};

fn server(config: Config) -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        ..config
    };
    Cluster::new(config, [3; 32], NOW)
}

/// One request at `now` with `bearer`: its status and body.
pub(super) fn at(
    s: &mut Cluster,
    now: UnixTime,
    method: Method,
    path: &str,
    body: &Value,
    bearer: &str,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let auth = alloc::format!("Bearer {bearer}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some(if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    });
    if !body.is_null() {
        req.body = &bytes;
    }
    let r = s.handle_request(now, &req).into_response().unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn event(name: &str, last: &str, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "node-a"},
        "reason": "Test", "message": message, "type": "Normal", "count": 1,
        "firstTimestamp": last, "lastTimestamp": last})
}

const EVENTS: &str = "/api/v1/namespaces/default/events";

fn exists(s: &mut Cluster, name: &str) -> bool {
    at(
        s,
        NOW,
        Method::Get,
        &alloc::format!("{EVENTS}/{name}"),
        &Value::Null,
        ADMIN,
    )
    .0 == 200
}

#[test]
fn an_event_from_the_far_future_does_not_hold_back_expiry() {
    let mut s = server(Config {
        event_ttl_secs: 60,
        ..Config::default()
    });
    let future = event("future", "2100-01-01T00:00:00Z", "m");
    assert_eq!(at(&mut s, NOW, Method::Post, EVENTS, &future, ADMIN).0, 201);
    let later = NOW.plus_secs(10);
    let plain = event("plain", "2024-01-01T00:00:00Z", "m");
    assert_eq!(
        at(&mut s, later, Method::Post, EVENTS, &plain, ADMIN).0,
        201
    );
    let touched = event("touched", "2024-01-01T00:00:00Z", "m");
    assert_eq!(
        at(&mut s, NOW, Method::Post, EVENTS, &touched, ADMIN).0,
        201
    );
    // An update (a count bump) is a write: the event lives from it.
    let bump = json!({"count": 2});
    assert_eq!(
        at(
            &mut s,
            NOW.plus_secs(30),
            Method::Patch,
            &alloc::format!("{EVENTS}/touched"),
            &bump,
            ADMIN
        )
        .0,
        200
    );
    s.handle_timeout(NOW.plus_secs(59));
    assert!(exists(&mut s, "future") && exists(&mut s, "plain") && exists(&mut s, "touched"));
    s.handle_timeout(NOW.plus_secs(60));
    assert!(
        !exists(&mut s, "future"),
        "expired 60 s after its write, not in 2100"
    );
    assert!(exists(&mut s, "plain") && exists(&mut s, "touched"));
    assert_eq!(s.poll_timeout(), Some(NOW.plus_secs(70)));
    s.handle_timeout(NOW.plus_secs(70));
    assert!(!exists(&mut s, "plain"));
    assert!(exists(&mut s, "touched"));
    s.handle_timeout(NOW.plus_secs(90));
    assert!(!exists(&mut s, "touched"));
    assert_eq!(s.event_ttl.due(), None);
    // A deleted event leaves the index too: a new one of the same name gets a fresh life.
    assert_eq!(
        at(
            &mut s,
            NOW.plus_secs(100),
            Method::Post,
            EVENTS,
            &plain,
            ADMIN
        )
        .0,
        201
    );
    assert_eq!(
        at(
            &mut s,
            NOW.plus_secs(101),
            Method::Delete,
            &alloc::format!("{EVENTS}/plain"),
            &Value::Null,
            ADMIN
        )
        .0,
        200
    );
    assert_eq!(s.event_ttl.due(), None);
}

/// A server with node-a registered; returns its Seal token.
fn with_node(config: Config) -> (Cluster, alloc::string::String) {
    let mut s = server(config);
    let staker = Staker::new(1);
    assert_eq!(deposit(&mut s, &staker, 1, D1).1["applied"], 1);
    let token = staker.token("node-a", NOW.secs(), NOW.secs() + 3600);
    let (code, body) = seed(&mut s, "register-worker", "node-a", &token, NOW.secs());
    assert_eq!(code, 200, "{body}");
    (s, token)
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[test]
fn a_node_flooding_events_hits_its_rate_limit_and_the_admin_goes_on() {
    let (mut s, token) = with_node(Config {
        event_qps: 5,
        event_burst: 10,
        ..Config::default()
    });
    let body = |i: usize| event(&alloc::format!("flood-{i}"), "2024-01-01T00:00:00Z", "m");
    let codes: alloc::vec::Vec<u16> = (0..12)
        .map(|i| at(&mut s, NOW, Method::Post, EVENTS, &body(i), &token).0)
        .collect();
    assert_eq!(codes[..10], [201; 10], "the burst");
    let (code, status) = at(&mut s, NOW, Method::Post, EVENTS, &body(99), &token);
    assert_eq!(code, 429, "{status}");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "Too many requests: limit reached on type User for key system:node:node-a"
    );
    // 5 a second: one more token 200 ms later.
    let soon = UnixTime {
        nanos: NOW.nanos + 200_000_000,
    };
    assert_eq!(
        at(&mut s, soon, Method::Post, EVENTS, &body(100), &token).0,
        201
    );
    assert_eq!(
        at(&mut s, soon, Method::Post, EVENTS, &body(101), &token).0,
        429
    );
    // The admin is not a node: no bucket.
    for i in 0..20 {
        assert_eq!(
            at(&mut s, NOW, Method::Post, EVENTS, &body(200 + i), ADMIN).0,
            201
        );
    }
}

#[test]
fn a_node_s_events_cannot_fill_the_store() {
    // The numbers: a 20 MB store, 8 KB events.
    let (mut s, token) = with_node(Config {
        max_store_bytes: 20 << 20,
        event_qps: 1_000_000,
        event_burst: 1_000_000,
        ..Config::default()
    });
    let padding = "x".repeat(8 << 10);
    let mut accepted = 0;
    let mut refusal = Value::Null;
    for i in 0..2_000 {
        let e = event(&alloc::format!("big-{i}"), "2024-01-01T00:00:00Z", &padding);
        match at(&mut s, NOW, Method::Post, EVENTS, &e, &token) {
            (201, _) => accepted += 1,
            (code, status) => {
                assert_eq!(code, 429, "{status}");
                refusal = status;
                break;
            }
        }
    }
    // 1 % of 20 MiB is about 25 events of 8 KiB.
    assert!((20..=26).contains(&accepted), "{accepted} accepted");
    assert!(
        refusal["message"].as_str().unwrap().starts_with(
            "Too many requests: the events of node \"node-a\" hold their share of the store"
        ),
        "{refusal}"
    );
    let used = s.store().used_bytes();
    assert!(used < 1 << 20, "{used} bytes used");
    // The admin's writes go on.
    for i in 0..100 {
        let (code, body) = at(
            &mut s,
            NOW,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            &configmap(&alloc::format!("c{i}")),
            ADMIN,
        );
        assert_eq!(code, 201, "{body}");
    }
    // Once the node's events expire, its share is free again.
    s.handle_timeout(NOW.plus_secs(3600));
    let e = event("after", "2024-01-01T00:00:00Z", &padding);
    assert_eq!(
        at(
            &mut s,
            NOW.plus_secs(3600),
            Method::Post,
            EVENTS,
            &e,
            &token
        )
        .0,
        201
    );
}

// events.k8s.io/v1: a second view over the same stored Events.

const V1_EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn v1_event(name: &str) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "eventTime": "2025-06-15T15:06:40.123456Z",
        "reportingController": "example.com/scheduler", "reportingInstance": "scheduler-1",
        "action": "Binding", "reason": "Scheduled", "note": "assigned default/web to node-a",
        "type": "Normal", "regarding": {"kind": "Pod", "namespace": "default", "name": "web"},
        "related": {"kind": "Node", "name": "node-a"}})
}

fn get_at(s: &mut Cluster, path: &str) -> Value {
    let (code, body) = at(s, NOW, Method::Get, path, &Value::Null, ADMIN);
    assert_eq!(code, 200, "{path}: {body}");
    body
}

#[test]
fn an_event_is_one_object_in_two_apis() {
    let mut s = server(Config::default());
    let (code, created) = at(&mut s, NOW, Method::Post, V1_EVENTS, &v1_event("e1"), ADMIN);
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["apiVersion"], "events.k8s.io/v1");
    assert_eq!(created["note"], "assigned default/web to node-a");
    assert_eq!(created["regarding"]["name"], "web");
    assert!(created.get("message").is_none() && created.get("involvedObject").is_none());
    // Through core v1, the same object with kube's field mapping and the same resourceVersion.
    let core = get_at(&mut s, &alloc::format!("{EVENTS}/e1"));
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "assigned default/web to node-a");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["reportingComponent"], "example.com/scheduler");
    assert_eq!(core["related"]["name"], "node-a");
    assert_eq!(core["eventTime"], "2025-06-15T15:06:40.123456Z");
    assert!(core.get("note").is_none() && core.get("regarding").is_none());
    assert_eq!(
        core["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(core["metadata"]["uid"], created["metadata"]["uid"]);

    // A core v1 Event reads through events.k8s.io/v1 with the deprecated fields.
    let (code, _) = at(
        &mut s,
        NOW,
        Method::Post,
        EVENTS,
        &event("legacy", "2025-06-15T15:00:00Z", "old style"),
        ADMIN,
    );
    assert_eq!(code, 201);
    let viewed = get_at(&mut s, &alloc::format!("{V1_EVENTS}/legacy"));
    assert_eq!(viewed["apiVersion"], "events.k8s.io/v1");
    assert_eq!(viewed["note"], "old style");
    assert_eq!(
        viewed["regarding"],
        json!({"kind": "Node", "name": "node-a"})
    );
    assert_eq!(viewed["deprecatedCount"], 1);
    assert_eq!(viewed["deprecatedFirstTimestamp"], "2025-06-15T15:00:00Z");
    assert_eq!(viewed["deprecatedLastTimestamp"], "2025-06-15T15:00:00Z");
    assert_eq!(viewed["eventTime"], Value::Null);

    // Lists in both shapes hold both objects.
    let list = get_at(&mut s, V1_EVENTS);
    assert_eq!(list["kind"], "EventList");
    assert_eq!(list["apiVersion"], "events.k8s.io/v1");
    let notes: alloc::vec::Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["assigned default/web to node-a", "old style"]);
    let core_list = get_at(&mut s, EVENTS);
    assert_eq!(core_list["apiVersion"], "v1");
    assert_eq!(core_list["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        core_list["metadata"]["resourceVersion"],
        list["metadata"]["resourceVersion"]
    );

    // A merge patch through the view speaks the view's fields; a series update is kube's
    // way to count a repeated event.
    let (code, patched) = at(
        &mut s,
        NOW,
        Method::Patch,
        &alloc::format!("{V1_EVENTS}/e1"),
        &json!({"series": {"count": 2, "lastObservedTime": "2025-06-15T15:07:00.000000Z"}}),
        ADMIN,
    );
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["series"]["count"], 2);
    assert_eq!(patched["note"], "assigned default/web to node-a");
    let core = get_at(&mut s, &alloc::format!("{EVENTS}/e1"));
    assert_eq!(core["series"]["count"], 2);
    assert_eq!(core["message"], "assigned default/web to node-a");

    // A delete through the view answers in the view's shape and removes the one object.
    let (code, deleted) = at(
        &mut s,
        NOW,
        Method::Delete,
        &alloc::format!("{V1_EVENTS}/e1"),
        &Value::Null,
        ADMIN,
    );
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(deleted["note"], "assigned default/web to node-a");
    assert!(!exists(&mut s, "e1"));
}

#[test]
fn a_watch_through_events_k8s_io_sees_core_writes_in_its_shape() {
    let mut s = server(Config::default());
    let auth = alloc::format!("Bearer {ADMIN}");
    let path = alloc::format!("{V1_EVENTS}?watch=1&resourceVersion=0");
    let mut req = ApiRequest::new(Method::Get, &path);
    req.authorization = Some(&auth);
    let mut watcher = match s.handle_request(NOW, &req) {
        super::Outcome::Watch(w) => *w,
        other => panic!("{:?}", other.into_response()),
    };
    let (code, _) = at(
        &mut s,
        NOW,
        Method::Post,
        EVENTS,
        &event("from-core", "2025-06-15T15:00:00Z", "written as v1"),
        ADMIN,
    );
    assert_eq!(code, 201);
    let (code, _) = at(
        &mut s,
        NOW,
        Method::Post,
        V1_EVENTS,
        &v1_event("from-v1"),
        ADMIN,
    );
    assert_eq!(code, 201);
    let mut out = alloc::vec::Vec::new();
    let ring = s.watch_ring();
    while let super::WatchPoll::Wrote(_) = watcher.poll(&ring, NOW, &mut out, 100) {}
    let frames: alloc::vec::Vec<Value> = core::str::from_utf8(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 2, "{frames:?}");
    for (frame, note) in frames
        .iter()
        .zip(["written as v1", "assigned default/web to node-a"])
    {
        assert_eq!(frame["type"], "ADDED");
        assert_eq!(frame["object"]["apiVersion"], "events.k8s.io/v1");
        assert_eq!(frame["object"]["note"], note);
        assert!(frame["object"].get("message").is_none());
    }
}

/// kube's `asTable` converts an included object to the group-version asked for: a Table read
/// through events.k8s.io/v1 (GET, LIST and watch alike) embeds the Event in that shape.
#[test]
fn tables_through_events_k8s_io_embed_its_events() {
    use crate::cluster::test_harness::{Cluster as Harness, TABLE};
    let mut c = Harness::new();
    let mut watcher = c.watch(
        &alloc::format!("{V1_EVENTS}?watch=1&includeObject=Object"),
        Some(TABLE),
    );
    let (code, _) = c.post(EVENTS, event("from-core", "2025-06-15T15:00:00Z", "as v1"));
    assert_eq!(code, 201);
    let viewed = c.get(&alloc::format!("{V1_EVENTS}/from-core")).1;
    assert_eq!(viewed["apiVersion"], "events.k8s.io/v1");
    assert_eq!(viewed["note"], "as v1");

    let events = c.drain(&mut watcher);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["object"]["rows"][0]["object"], viewed);
    for path in [
        alloc::format!("{V1_EVENTS}/from-core?includeObject=Object"),
        alloc::format!("{V1_EVENTS}?includeObject=Object"),
    ] {
        let (code, table) = c.request(Method::Get, &path, Some(TABLE), &Value::Null, "");
        assert_eq!(code, 200, "{table}");
        assert_eq!(table["rows"][0]["object"], viewed, "{path}");
        assert_eq!(
            table["rows"][0]["cells"],
            events[0]["object"]["rows"][0]["cells"]
        );
    }
}

/// A write through events.k8s.io/v1 records its manager in that version with its field paths,
/// read back as recorded through core v1; kube cannot convert between the two groups, so a
/// write through either forgets the other's managers.
#[test]
fn writes_through_events_k8s_io_record_their_managers_in_its_version() {
    use crate::cluster::test_harness::Cluster as Harness;
    let mut c = Harness::new();
    let entries = |obj: &Value| {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let fields = e["fieldsV1"].as_object().unwrap().keys();
                let fields: alloc::vec::Vec<&str> =
                    fields.map(alloc::string::String::as_str).collect();
                alloc::format!(
                    "{} {} {}",
                    e["manager"].as_str().unwrap(),
                    e["apiVersion"].as_str().unwrap(),
                    fields.join(",")
                )
            })
            .collect::<alloc::vec::Vec<_>>()
    };
    let (code, created) = c.post(
        &alloc::format!("{V1_EVENTS}?fieldManager=m1"),
        v1_event("e1"),
    );
    assert_eq!(code, 201, "{created}");
    let m1 = [
        "m1 events.k8s.io/v1 f:action,f:eventTime,f:note,f:reason,f:regarding,f:related,f:reportingController,f:reportingInstance,f:type",
    ];
    assert_eq!(entries(&created), m1);
    assert_eq!(entries(&c.get(&alloc::format!("{EVENTS}/e1")).1), m1);
    let (code, patched) = c.patch(
        &alloc::format!("{EVENTS}/e1?fieldManager=m2"),
        json!({"message": "changed", "count": 3}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{patched}");
    assert_eq!(entries(&patched), ["m2 v1 f:count,f:message"]);
    let (code, applied) = c.patch(
        &alloc::format!("{V1_EVENTS}/e1?fieldManager=a1"),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
            "series": {"count": 2, "lastObservedTime": "2025-06-15T15:07:00.000000Z"}}),
        "application/apply-patch+yaml",
    );
    assert_eq!(code, 200, "{applied}");
    assert_eq!(entries(&applied), ["a1 events.k8s.io/v1 f:series"]);
}

#[test]
fn events_k8s_io_validates_new_events_strictly_in_kube_s_words() {
    let mut s = server(Config::default());
    let mut bare = v1_event("bare");
    for field in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
    ] {
        bare.as_object_mut().unwrap().remove(field);
    }
    bare["type"] = json!("Info");
    bare["deprecatedCount"] = json!(3);
    let (code, status) = at(&mut s, NOW, Method::Post, V1_EVENTS, &bare, ADMIN);
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        "Event.events.k8s.io \"bare\" is invalid: [eventTime: Required value, type: Invalid value: \"\": has invalid value: Info, count: Invalid value: \"\": needs to be unset]"
    );
    // The same body through core v1 (without eventTime) passes the legacy rules only.
    let mut legacy = event("bare", "2025-06-15T15:00:00Z", "m");
    legacy["type"] = json!("Info");
    assert_eq!(at(&mut s, NOW, Method::Post, EVENTS, &legacy, ADMIN).0, 201);

    // With an eventTime, the legacy rules require who reported it, and bound the note.
    let mut long = v1_event("long");
    long["note"] = json!("x".repeat(1025));
    long["reportingInstance"] = json!("");
    long["series"] = json!({"count": 1});
    let (code, status) = at(&mut s, NOW, Method::Post, V1_EVENTS, &long, ADMIN);
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        crate::cluster::test_harness::messages(&status),
        [
            "reportingInstance: Required value",
            "message: Invalid value: \"\": can have at most 1024 characters",
            "series.count: Invalid value: \"\": should be at least 2",
            "series.lastObservedTime: Required value",
        ]
    );
    assert!(!exists(&mut s, "long"));

    // What an event reports cannot change through events.k8s.io/v1.
    assert_eq!(
        at(&mut s, NOW, Method::Post, V1_EVENTS, &v1_event("e"), ADMIN).0,
        201
    );
    let (code, status) = at(
        &mut s,
        NOW,
        Method::Patch,
        &alloc::format!("{V1_EVENTS}/e"),
        &json!({"note": "changed", "regarding": {"name": "other"}}),
        ADMIN,
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        crate::cluster::test_harness::messages(&status),
        [
            "involvedObject: Invalid value: core.ObjectReference{Kind:\"Pod\", Namespace:\"default\", Name:\"other\", UID:\"\", APIVersion:\"\", ResourceVersion:\"\", FieldPath:\"\"}: field is immutable",
            "message: Invalid value: \"changed\": field is immutable",
        ]
    );
    // Through core v1 the legacy rules alone apply, as in kube.
    let (code, body) = at(
        &mut s,
        NOW,
        Method::Patch,
        &alloc::format!("{EVENTS}/e"),
        &json!({"message": "changed"}),
        ADMIN,
    );
    assert_eq!(code, 200, "{body}");

    // A core field name is no field of events.k8s.io/v1.
    let mut typo = v1_event("typo");
    typo["message"] = json!("m");
    let mut req = ApiRequest::new(
        Method::Post,
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldValidation=Strict",
    );
    let bytes = serde_json::to_vec(&typo).unwrap();
    let auth = alloc::format!("Bearer {ADMIN}");
    req.authorization = Some(&auth);
    req.content_type = Some("application/json");
    req.body = &bytes;
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    assert_eq!(r.status, 400);
    let status: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        status["message"],
        "Event in version \"v1\" cannot be handled as a Event: strict decoding error: unknown field \"message\""
    );
}

#[test]
fn a_node_s_events_through_events_k8s_io_share_its_rate_limit() {
    let (mut s, token) = with_node(Config {
        event_qps: 5,
        event_burst: 4,
        ..Config::default()
    });
    for i in 0..2 {
        let body = event(&alloc::format!("core-{i}"), "2024-01-01T00:00:00Z", "m");
        assert_eq!(at(&mut s, NOW, Method::Post, EVENTS, &body, &token).0, 201);
    }
    for i in 0..2 {
        let mut body = v1_event(&alloc::format!("v1-{i}"));
        body["regarding"] = json!({"kind": "Node", "name": "node-a"});
        body["reportingController"] = json!("kubelet");
        body["reportingInstance"] = json!("node-a");
        let (code, answer) = at(&mut s, NOW, Method::Post, V1_EVENTS, &body, &token);
        assert_eq!(code, 201, "{answer}");
    }
    let (code, status) = at(
        &mut s,
        NOW,
        Method::Post,
        V1_EVENTS,
        &v1_event("v1-9"),
        &token,
    );
    assert_eq!(code, 429, "{status}");
    assert_eq!(
        status["message"],
        "Too many requests: limit reached on type User for key system:node:node-a"
    );
}

#[test]
fn events_k8s_io_takes_protobuf_and_apply_and_is_discovered_and_printed() {
    let mut s = server(Config::default());
    let auth = alloc::format!("Bearer {ADMIN}");
    // kube-scheduler's event recorder posts events.k8s.io/v1 Events in protobuf.
    let body =
        crate::protobuf::encode::object("events.k8s.io/v1", "Event", &v1_event("pb")).unwrap();
    let mut req = ApiRequest::new(Method::Post, V1_EVENTS);
    req.authorization = Some(&auth);
    req.content_type = Some(crate::protobuf::MEDIA_TYPE);
    req.body = &body;
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    assert_eq!(
        r.status,
        201,
        "{}",
        alloc::string::String::from_utf8_lossy(&r.body)
    );
    let core = get_at(&mut s, &alloc::format!("{EVENTS}/pb"));
    assert_eq!(core["message"], "assigned default/web to node-a");
    assert_eq!(core["eventTime"], "2025-06-15T15:06:40.123456Z");

    // Server-side apply through the view creates, then changes the applied fields.
    let path = alloc::format!("{V1_EVENTS}/applied?fieldManager=recorder");
    let mut applied = v1_event("applied");
    let bytes = serde_json::to_vec(&applied).unwrap();
    let mut req = ApiRequest::new(Method::Patch, &path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/apply-patch+yaml");
    req.body = &bytes;
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    assert_eq!(
        r.status,
        201,
        "{}",
        alloc::string::String::from_utf8_lossy(&r.body)
    );
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(answer["apiVersion"], "events.k8s.io/v1");
    assert_eq!(answer["note"], "assigned default/web to node-a");
    applied["series"] = json!({"count": 2, "lastObservedTime": "2025-06-15T15:08:00.000000Z"});
    let bytes = serde_json::to_vec(&applied).unwrap();
    req.body = &bytes;
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    assert_eq!(
        r.status,
        200,
        "{}",
        alloc::string::String::from_utf8_lossy(&r.body)
    );
    let core = get_at(&mut s, &alloc::format!("{EVENTS}/applied"));
    assert_eq!(core["series"]["count"], 2);
    assert_eq!(core["involvedObject"]["name"], "web");

    // Discovery lists the group-version; a Table prints the stored kind's columns.
    let list = get_at(&mut s, "/apis/events.k8s.io/v1");
    assert_eq!(list["groupVersion"], "events.k8s.io/v1");
    assert_eq!(list["resources"][0]["name"], "events");
    assert_eq!(list["resources"][0]["kind"], "Event");
    assert_eq!(list["resources"][0]["shortNames"], json!(["ev"]));
    let mut req = ApiRequest::new(Method::Get, V1_EVENTS);
    req.authorization = Some(&auth);
    req.accept = Some(crate::cluster::test_harness::TABLE);
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    let table: Value = serde_json::from_slice(&r.body).unwrap();
    let mut req = ApiRequest::new(Method::Get, EVENTS);
    req.authorization = Some(&auth);
    req.accept = Some(crate::cluster::test_harness::TABLE);
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    let core_table: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(table["columnDefinitions"], core_table["columnDefinitions"]);
    assert_eq!(table["rows"][0]["cells"], core_table["rows"][0]["cells"]);
    assert_eq!(
        table["rows"][1]["cells"][6], "assigned default/web to node-a",
        "{table}"
    );
}

#[test]
fn events_k8s_io_selects_by_its_own_field_labels() {
    let mut s = server(Config::default());
    let mut other = v1_event("about-db");
    other["regarding"]["name"] = json!("db");
    for body in [v1_event("about-web"), other] {
        assert_eq!(
            at(&mut s, NOW, Method::Post, V1_EVENTS, &body, ADMIN).0,
            201
        );
    }
    let names = |list: &Value| -> alloc::vec::Vec<alloc::string::String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().into())
            .collect()
    };
    let list = get_at(
        &mut s,
        &alloc::format!(
            "{V1_EVENTS}?fieldSelector=regarding.name%3Dweb,reportingController%3Dexample.com/scheduler"
        ),
    );
    assert_eq!(names(&list), ["about-web"]);
    let core = get_at(
        &mut s,
        &alloc::format!("{EVENTS}?fieldSelector=involvedObject.name%3Ddb"),
    );
    assert_eq!(names(&core), ["about-db"]);
    // Each API knows only its own labels, in kube's words.
    let (code, status) = at(
        &mut s,
        NOW,
        Method::Get,
        &alloc::format!("{V1_EVENTS}?fieldSelector=involvedObject.name%3Dweb"),
        &Value::Null,
        ADMIN,
    );
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "field label not supported: involvedObject.name"
    );
}
