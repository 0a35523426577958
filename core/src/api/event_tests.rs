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

fn at(
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
