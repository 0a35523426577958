//! Deciding a request on its head, before any body byte is read: `admit_head` refuses exactly
//! what the whole request would be refused for by authentication and authorization, in the same
//! shape (a `Status`, or the seed's JSON on the worker endpoints), and `admit_admin_path` keeps
//! the runtime's own `/metrics` to the administrator.

use alloc::string::{String, ToString};
use serde_json::Value;

use super::workers_tests::{ADMIN, D1, NOW, Staker, call, deposit, seed, server};
use super::{ApiRequest, ApiResponse, Cluster, Method};

fn head(
    s: &mut Cluster,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    seal: Option<&str>,
) -> Result<(), (u16, Value)> {
    let auth = bearer.map(|b| alloc::format!("Bearer {b}"));
    let mut req = ApiRequest::new(method, path);
    req.authorization = auth.as_deref();
    req.seal_token = seal;
    s.admit_head(NOW, &req).map_err(decode)
}

fn admin_path(s: &mut Cluster, bearer: Option<&str>) -> Result<(), (u16, Value)> {
    let auth = bearer.map(|b| alloc::format!("Bearer {b}"));
    let mut req = ApiRequest::new(Method::Get, "/metrics");
    req.authorization = auth.as_deref();
    s.admit_admin_path(NOW, &req).map_err(decode)
}

fn decode(r: ApiResponse) -> (u16, Value) {
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

/// A server with one funded staker and its token for `node-a`.
fn with_worker() -> (Cluster, String) {
    let mut s = server();
    let a = Staker::new(1);
    assert_eq!(deposit(&mut s, &a, 1, D1).1["applied"], 1);
    let token = a.token("node-a", NOW.secs(), NOW.secs() + 3600);
    (s, token)
}

#[test]
fn anonymous_and_bad_credentials_are_refused_on_the_head_as_a_status() {
    let (mut s, _) = with_worker();
    let configmaps = "/api/v1/namespaces/default/configmaps";
    let (code, body) = head(&mut s, Method::Post, configmaps, None, None).unwrap_err();
    assert_eq!((code, body["kind"].as_str()), (401, Some("Status")));
    assert_eq!(body["reason"], "Unauthorized");
    let (code, _) = head(&mut s, Method::Post, configmaps, Some("wrong"), None).unwrap_err();
    assert_eq!(code, 401);
    let (code, _) = head(&mut s, Method::Post, configmaps, Some("seal1.x.y"), None).unwrap_err();
    assert_eq!(code, 401);
    // Unknown paths are 401 before 404, as in the whole request.
    assert_eq!(
        head(&mut s, Method::Put, "/nowhere", None, None)
            .unwrap_err()
            .0,
        401
    );
    // Open paths stay open; a credential that is present must still be valid.
    assert!(head(&mut s, Method::Get, "/healthz", None, None).is_ok());
    assert!(head(&mut s, Method::Get, "/version", None, None).is_ok());
    assert_eq!(
        head(&mut s, Method::Get, "/healthz", Some("wrong"), None)
            .unwrap_err()
            .0,
        401
    );
    assert!(head(&mut s, Method::Post, configmaps, Some(ADMIN), None).is_ok());
    assert!(head(&mut s, Method::Put, "/nowhere", Some(ADMIN), None).is_ok());
}

#[test]
fn a_node_is_authorized_on_the_head_like_the_whole_request() {
    let (mut s, token) = with_worker();
    let (code, body) = head(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        Some(&token),
        None,
    )
    .unwrap_err();
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("User \"system:node:node-a\" cannot create resource \"configmaps\""),
        "{body}"
    );
    assert!(
        head(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/events",
            Some(&token),
            None
        )
        .is_ok()
    );
}

#[test]
fn seed_endpoints_check_the_header_token_on_the_head_in_the_seed_shape() {
    let (mut s, token) = with_worker();
    let (code, body) =
        head(&mut s, Method::Post, "/api/v1/register-worker", None, None).unwrap_err();
    assert_eq!((code, body["status"].as_str()), (401, Some("error")));
    assert_eq!(body["message"], "the X-Seal-Token header is missing");
    let (code, body) = head(
        &mut s,
        Method::Post,
        "/api/v1/heartbeat",
        None,
        Some("seal1.forged.token"),
    )
    .unwrap_err();
    assert_eq!((code, body["status"].as_str()), (401, Some("error")));
    assert!(
        head(
            &mut s,
            Method::Post,
            "/api/v1/register-worker",
            None,
            Some(&token)
        )
        .is_ok()
    );
    assert!(
        head(
            &mut s,
            Method::Post,
            "/api/v1/heartbeat",
            None,
            Some(&token)
        )
        .is_ok()
    );
    // Sui events take the relay's (or the admin's) bearer; a node's token is not one.
    let (code, body) = head(&mut s, Method::Post, "/api/v1/sui-events", None, None).unwrap_err();
    assert_eq!((code, body["status"].as_str()), (401, Some("error")));
    let (code, _) = head(
        &mut s,
        Method::Post,
        "/api/v1/sui-events",
        Some(&token),
        None,
    )
    .unwrap_err();
    assert_eq!(code, 403);
    assert!(
        head(
            &mut s,
            Method::Post,
            "/api/v1/sui-events",
            Some(ADMIN),
            None
        )
        .is_ok()
    );
    let (code, _) = head(
        &mut s,
        Method::Delete,
        "/api/v1/heartbeat",
        None,
        Some(&token),
    )
    .unwrap_err();
    assert_eq!(code, 405);
}

#[test]
fn only_the_admin_may_read_metrics() {
    let (mut s, token) = with_worker();
    assert!(admin_path(&mut s, Some(ADMIN)).is_ok());
    let (code, body) = admin_path(&mut s, None).unwrap_err();
    assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")));
    assert_eq!(admin_path(&mut s, Some("wrong")).unwrap_err().0, 401);
    let (code, body) = admin_path(&mut s, Some(&token)).unwrap_err();
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    assert_eq!(
        body["message"],
        "forbidden: User \"system:node:node-a\" cannot get path \"/metrics\""
    );
}

/// A watcher sized by bytes: each chunk stops at the limit (one event past it at most), a batch
/// of events all outside the watch's scope still says "poll again", and every event arrives once.
#[test]
fn a_watch_chunk_stops_at_its_byte_limit_and_loses_nothing() {
    use super::{Outcome, WatchPoll};
    let mut s = server();
    let auth = alloc::format!("Bearer {ADMIN}");
    let rv = s.store().revision().to_string();
    let path =
        alloc::format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}");
    let mut req = ApiRequest::new(Method::Get, &path);
    req.authorization = Some(&auth);
    let Outcome::Watch(mut watcher) = s.handle_request(NOW, &req) else {
        panic!("not a watch")
    };
    let create = |s: &mut Cluster, ns: &str, name: &str| {
        let body = serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name}, "data": {"k": "x".repeat(500)}}))
        .unwrap();
        let p = alloc::format!("/api/v1/namespaces/{ns}/configmaps");
        let mut req = ApiRequest::new(Method::Post, &p);
        req.authorization = Some(&auth);
        req.content_type = Some("application/json");
        req.body = &body;
        let r = s.handle_request(NOW, &req).into_response().unwrap();
        assert_eq!(r.status, 201);
    };
    // Out of scope first (another namespace), more than one batch of them, then ours.
    for i in 0..5 {
        create(&mut s, "kube-system", &alloc::format!("other-{i}"));
    }
    for i in 0..10 {
        create(&mut s, "default", &alloc::format!("cm-{i}"));
    }
    let ring = s.watch_ring();
    let mut chunks = alloc::vec::Vec::new();
    loop {
        let mut out = alloc::vec::Vec::new();
        match watcher.poll_limited(&ring, NOW, &mut out, 2, 1500) {
            WatchPoll::Wrote(_) => chunks.push(out),
            WatchPoll::Idle => break,
            WatchPoll::Closed => panic!("closed"),
        }
    }
    // The first polls see only kube-system events: empty chunks that still say "poll again".
    assert!(chunks.first().unwrap().is_empty());
    let names: alloc::vec::Vec<String> = chunks
        .iter()
        .flat_map(|c| {
            String::from_utf8(c.clone())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<alloc::vec::Vec<_>>()
        })
        .map(|l| {
            serde_json::from_str::<Value>(&l).unwrap()["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .into()
        })
        .collect();
    let expected: alloc::vec::Vec<String> = (0..10).map(|i| alloc::format!("cm-{i}")).collect();
    assert_eq!(names, expected);
    assert!(
        chunks.iter().all(|c| c.len() < 1500 + 1000),
        "one event past the limit at most"
    );
    // With a byte limit below one event, each chunk holds exactly one.
    create(&mut s, "default", "late-1");
    create(&mut s, "default", "late-2");
    let mut out = alloc::vec::Vec::new();
    assert!(!watcher.caught_up(&ring));
    assert_eq!(
        watcher.poll_limited(&ring, NOW, &mut out, 100, 10),
        WatchPoll::Wrote(1)
    );
    assert!(String::from_utf8(out).unwrap().contains("late-1"));
    // late-2 is still to come; once written, the stream has caught up with the ring, also when
    // the newest events are outside its scope.
    assert!(!watcher.caught_up(&ring));
    let mut out = alloc::vec::Vec::new();
    assert_eq!(
        watcher.poll_limited(&ring, NOW, &mut out, 100, 10),
        WatchPoll::Wrote(1)
    );
    assert!(watcher.caught_up(&ring));
    create(&mut s, "kube-system", "elsewhere");
    assert!(!watcher.caught_up(&ring));
    let mut out = alloc::vec::Vec::new();
    assert_eq!(
        watcher.poll_limited(&ring, NOW, &mut out, 100, 10),
        WatchPoll::Idle
    );
    assert!(watcher.caught_up(&ring));
}

/// The runtime asks `admit_head` and then `handle_request` for one request: only the second may
/// spend a node's EventRateLimit token, or every event write would count twice.
#[test]
fn the_head_check_spends_no_event_rate_token() {
    let (mut s, token) = with_worker();
    let (code, body) = seed(&mut s, "register-worker", "node-a", &token, NOW.secs());
    assert_eq!(code, 200, "{body}");
    let events = "/api/v1/namespaces/default/events";
    for _ in 0..150 {
        assert_eq!(
            head(&mut s, Method::Post, events, Some(&token), None),
            Ok(())
        );
    }
    let event = |i: usize| {
        serde_json::json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": alloc::format!("e-{i}"), "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "node-a"},
            "reason": "Test", "message": "m", "type": "Normal"})
    };
    let burst = s.config().event_burst as usize;
    for i in 0..burst {
        let (code, body) = call(&mut s, Method::Post, events, &event(i), Some(&token), None);
        assert_eq!(code, 201, "write {i} of the burst: {body}");
    }
    let (code, body) = call(
        &mut s,
        Method::Post,
        events,
        &event(burst),
        Some(&token),
        None,
    );
    assert_eq!(
        (code, body["reason"].as_str()),
        (429, Some("TooManyRequests"))
    );
}
