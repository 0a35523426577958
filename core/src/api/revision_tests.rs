//! Reads that name a revision, in virtual time: revisions from the future wait and then get
//! kube's 504, `Exact` is served from history or 410, garbage is 400, continue tokens cannot be
//! forged, and a restarted server never serves an earlier run's revisions as current.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::tests::{T0, TOKEN, call, cm, server};
use super::{ApiRequest, Cluster, Method, Outcome, WatchPoll};
use crate::{Config, UnixTime};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// One GET at `now`, optionally as a retry of a request first seen at `since`.
fn get_at(s: &mut Cluster, path: &str, now: UnixTime, since: Option<UnixTime>) -> Outcome {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(Method::Get, path);
    req.authorization = Some(&auth);
    req.waiting_since = since;
    s.handle_request(now, &req)
}

fn reply(outcome: Outcome) -> (u16, Value) {
    let r = outcome.into_response().expect("a complete answer");
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn rv(value: &Value) -> u64 {
    value["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[track_caller]
fn assert_too_large(status: &Value, requested: u64, current: u64, retry: Option<u64>) {
    assert_eq!(status["code"], 504, "{status}");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(
        status["message"],
        alloc::format!("Timeout: Too large resource version: {requested}, current: {current}")
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
    );
    assert_eq!(status["details"]["retryAfterSeconds"].as_u64(), retry);
}

#[test]
fn a_read_from_the_future_waits_three_seconds_then_gets_504() {
    let mut s = server(Config::default());
    let current = s.store().revision();
    let future = current + 1_000;
    for path in [
        alloc::format!("{CMS}?resourceVersion={future}"),
        alloc::format!("{CMS}?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
        alloc::format!("/api/v1/namespaces/default?resourceVersion={future}"),
    ] {
        match get_at(&mut s, &path, T0, None) {
            Outcome::Pending { revision, deadline } => {
                assert_eq!((revision, deadline), (future, T0.plus_secs(3)), "{path}");
            }
            other => panic!("{path}: {:?}", other.into_response()),
        }
        // Still waiting a moment before the deadline.
        let almost = UnixTime {
            nanos: T0.plus_secs(3).nanos - 1,
        };
        assert!(matches!(
            get_at(&mut s, &path, almost, Some(T0)),
            Outcome::Pending { .. }
        ));
        let (code, status) = reply(get_at(&mut s, &path, T0.plus_secs(3), Some(T0)));
        assert_eq!(code, 504);
        assert_too_large(&status, future, current, Some(1));
    }
    // Exact cannot wait for a future state: at once, and without retryAfterSeconds (etcd's
    // ErrFutureRev).
    let (code, status) = reply(get_at(
        &mut s,
        &alloc::format!("{CMS}?resourceVersion={future}&resourceVersionMatch=Exact"),
        T0,
        None,
    ));
    assert_eq!(code, 504);
    assert_too_large(&status, future, current, None);
}

#[test]
fn a_read_waiting_for_a_revision_is_served_once_the_store_reaches_it() {
    let mut s = server(Config::default());
    let next = s.store().revision() + 1;
    let path = alloc::format!("{CMS}?resourceVersion={next}");
    assert!(matches!(
        get_at(&mut s, &path, T0, None),
        Outcome::Pending { revision, .. } if revision == next
    ));
    assert_eq!(
        call(&mut s, Method::Post, CMS, Some(cm("a", json!({})))).status,
        201
    );
    let (code, list) = reply(get_at(&mut s, &path, T0.plus_secs(1), Some(T0)));
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
    assert_eq!(rv(&list), next);
}

#[test]
fn exact_lists_come_from_history_or_410() {
    let mut s = server(Config {
        watch_ring_capacity: 4,
        ..Config::default()
    });
    let created = call(&mut s, Method::Post, CMS, Some(cm("a", json!({"v": "1"})))).body;
    let first = rv(&created);
    call(
        &mut s,
        Method::Patch,
        &alloc::format!("{CMS}/a"),
        Some(json!({"metadata": {"labels": {"v": "2"}}})),
    );
    call(&mut s, Method::Post, CMS, Some(cm("b", json!({}))));
    let (code, then) = reply(get_at(
        &mut s,
        &alloc::format!("{CMS}?resourceVersion={first}&resourceVersionMatch=Exact"),
        T0,
        None,
    ));
    assert_eq!(code, 200, "{then}");
    assert_eq!(rv(&then), first);
    let names: Vec<&str> = then["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"], "b did not exist yet");
    assert_eq!(then["items"][0]["metadata"]["labels"]["v"], "1");
    // A legacy paged list at a revision is exact too.
    let (code, paged) = reply(get_at(
        &mut s,
        &alloc::format!("{CMS}?resourceVersion={first}&limit=10"),
        T0,
        None,
    ));
    assert_eq!((code, rv(&paged)), (200, first));
    // NotOlderThan is answered with the latest state.
    let (_, latest) = reply(get_at(
        &mut s,
        &alloc::format!("{CMS}?resourceVersion={first}"),
        T0,
        None,
    ));
    assert_eq!(latest["items"].as_array().unwrap().len(), 2);
    // Once the ring has moved past it: 410.
    for i in 0..6 {
        call(
            &mut s,
            Method::Post,
            CMS,
            Some(cm(&alloc::format!("c{i}"), json!({}))),
        );
    }
    let (code, status) = reply(get_at(
        &mut s,
        &alloc::format!("{CMS}?resourceVersion={first}&resourceVersionMatch=Exact"),
        T0,
        None,
    ));
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(
        status["message"],
        "The resourceVersion for the provided list is too old."
    );
}

#[test]
fn garbage_revisions_and_bad_matches_are_refused() {
    let mut s = server(Config::default());
    call(&mut s, Method::Post, CMS, Some(cm("a", json!({}))));
    for bad in ["abc", "-1"] {
        for path in [
            alloc::format!("{CMS}?resourceVersion={bad}"),
            alloc::format!("{CMS}/a?resourceVersion={bad}"),
            alloc::format!("{CMS}?watch=1&resourceVersion={bad}"),
        ] {
            let (code, status) = reply(get_at(&mut s, &path, T0, None));
            assert_eq!(code, 400, "{path}: {status}");
            assert_eq!(
                status["message"],
                alloc::format!(
                    "invalid resource version: resourceVersion: Invalid value: \"{bad}\": strconv.ParseUint: parsing \"{bad}\": invalid syntax"
                )
            );
        }
    }
    let cases: &[(&str, &str)] = &[
        (
            "resourceVersionMatch=Exact",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "resourceVersion=0&resourceVersionMatch=Exact",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ),
        (
            "resourceVersion=5&resourceVersionMatch=Newest",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        ),
    ];
    for (query, message) in cases {
        let (code, status) = reply(get_at(&mut s, &alloc::format!("{CMS}?{query}"), T0, None));
        assert_eq!(code, 422, "{query}: {status}");
        assert_eq!(status["message"], *message);
    }
}

fn watch_outcome(s: &mut Cluster, path: &str, now: UnixTime, since: Option<UnixTime>) -> Outcome {
    get_at(s, path, now, since)
}

fn drain(s: &Cluster, outcome: Outcome) -> Vec<Value> {
    let Outcome::Watch(mut watcher) = outcome else {
        panic!("not a watch: {:?}", outcome.into_response());
    };
    let ring = s.watch_ring();
    let mut out = Vec::new();
    while let WatchPoll::Wrote(_) = watcher.poll(&ring, T0, &mut out, 100) {}
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_watch_from_the_future_ends_with_504_instead_of_staying_silent() {
    let mut s = server(Config::default());
    let current = s.store().revision();
    let path = alloc::format!("{CMS}?watch=1&resourceVersion=99999999999999999");
    assert!(matches!(
        watch_outcome(&mut s, &path, T0, None),
        Outcome::Pending { .. }
    ));
    let outcome = watch_outcome(&mut s, &path, T0.plus_secs(3), Some(T0));
    let events = drain(&s, outcome);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_too_large(
        &events[0]["object"],
        99_999_999_999_999_999,
        current,
        Some(1),
    );
}

#[test]
fn a_restarted_server_answers_the_earlier_run_s_revisions_with_410() {
    let mut first = server(Config::default());
    let created = call(&mut first, Method::Post, CMS, Some(cm("a", json!({})))).body;
    for i in 0..3 {
        call(
            &mut first,
            Method::Post,
            CMS,
            Some(cm(&alloc::format!("p{i}"), json!({}))),
        );
    }
    let seen = first.store().revision();
    assert!(seen < 1 << 53, "revisions stay exact in JavaScript: {seen}");
    let (_, page) = reply(get_at(
        &mut first,
        &alloc::format!("{CMS}?limit=1"),
        T0,
        None,
    ));
    let token = String::from(page["metadata"]["continue"].as_str().unwrap());
    // A second run, a second later, with fresh randomness and an empty store.
    let restarted = T0.plus_secs(1);
    let mut second = Cluster::new(first.config().clone(), [9; 32], restarted);
    assert!(
        second.store().revision() > seen,
        "the new run starts above every revision the first one handed out"
    );
    let outcome = watch_outcome(
        &mut second,
        &alloc::format!("{CMS}?watch=1&resourceVersion={seen}"),
        restarted,
        None,
    );
    let watch = drain(&second, outcome);
    assert_eq!(watch[0]["type"], "ERROR", "{watch:?}");
    assert_eq!(watch[0]["object"]["code"], 410);
    let (code, _) = reply(get_at(
        &mut second,
        &alloc::format!(
            "{CMS}?resourceVersion={}&resourceVersionMatch=Exact",
            rv(&created)
        ),
        restarted,
        None,
    ));
    assert_eq!(code, 410);
    let (code, status) = reply(get_at(
        &mut second,
        &alloc::format!("{CMS}?continue={token}"),
        restarted,
        None,
    ));
    assert_eq!(code, 410, "{status}");
    // "Not older than" a revision the new run is past is simply its current state.
    let (code, _) = reply(get_at(
        &mut second,
        &alloc::format!("{CMS}?resourceVersion={seen}"),
        restarted,
        None,
    ));
    assert_eq!(code, 200);
}

#[test]
fn a_forged_continue_token_cannot_claim_a_revision() {
    let mut s = server(Config::default());
    for i in 0..3 {
        call(
            &mut s,
            Method::Post,
            CMS,
            Some(cm(&alloc::format!("c{i}"), json!({}))),
        );
    }
    let (_, page) = reply(get_at(&mut s, &alloc::format!("{CMS}?limit=1"), T0, None));
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (code, next) = reply(get_at(
        &mut s,
        &alloc::format!("{CMS}?limit=1&continue={token}"),
        T0,
        None,
    ));
    assert_eq!(code, 200);
    assert_eq!(next["items"][0]["metadata"]["name"], "c1");
    // The issue's forgery, and the genuine token with its revision raised.
    let mut tampered: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
    tampered["rv"] = json!(99_999_999_999_999u64);
    for forged in [
        URL_SAFE_NO_PAD.encode(
            br#"{"v":"nautilus.continue/v1","rv":99999999999999,"ns":"default","name":"c0"}"#,
        ),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap()),
    ] {
        let (code, status) = reply(get_at(
            &mut s,
            &alloc::format!("{CMS}?continue={forged}"),
            T0,
            None,
        ));
        assert!(matches!(code, 400 | 410), "{status}");
        assert_ne!(status["metadata"]["resourceVersion"], "99999999999999");
    }
}

/// Compaction takes the snapshots callers name, never the latest state: an idle cluster (no
/// write between two compaction ticks) still answers a LIST, its old continue token expires all
/// the same, and the token the 410 hands out goes on, at a newer revision than the expired one
/// (each tick writes a mark, as kube's compaction transaction moves etcd's revision); a watch
/// from before the ticks goes on across the marks.
#[test]
fn an_idle_cluster_s_latest_state_outlives_compaction() {
    let mut c = crate::cluster::test_harness::Cluster::new();
    for name in ["a", "b", "c"] {
        let cm = serde_json::json!({"metadata": {"name": name}});
        assert_eq!(c.post("/api/v1/namespaces/default/configmaps", cm).0, 201);
    }
    let (code, page) = c.get("/api/v1/namespaces/default/configmaps?limit=1");
    assert_eq!(code, 200, "{page}");
    let token = String::from(page["metadata"]["continue"].as_str().unwrap());
    let first = rv(&page);
    for step in 1..=4u64 {
        c.now = crate::cluster::test_harness::NOW.plus_secs(step * 301);
        c.server.handle_timeout(c.now);
    }
    let (code, body) = c.get("/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        rv(&body),
        first + 4,
        "each of the four ticks moved the revision by one"
    );
    let mut events = Vec::new();
    assert_eq!(
        c.server.watch_ring().read_after(first, 10, &mut events),
        Ok(0),
        "a watch from before the marks goes on, with nothing to see"
    );
    // The first page's snapshot is gone, though nothing was written since (kube's compaction
    // writes); the token the 410 carries continues at the latest.
    let (code, status) = c.get(&alloc::format!(
        "/api/v1/namespaces/default/configmaps?limit=1&continue={token}"
    ));
    assert_eq!(code, 410, "{status}");
    let latest = String::from(status["metadata"]["continue"].as_str().unwrap());
    let (code, rest) = c.get(&alloc::format!(
        "/api/v1/namespaces/default/configmaps?limit=5&continue={latest}"
    ));
    assert_eq!(code, 200, "{rest}");
    assert!(rv(&rest) > first, "{rest}");
    let names: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c"]);
}

/// A GET of one built-in object says which revision it shows (the runtime answers it once that
/// revision is durable, not behind other objects' writes); every other answer may show the
/// latest state and says nothing.
#[test]
fn a_get_names_the_revision_it_shows_and_nothing_else_does() {
    let mut c = crate::cluster::test_harness::Cluster::new();
    let cm = serde_json::json!({"metadata": {"name": "shown"}});
    let (code, created) = c.post("/api/v1/namespaces/default/configmaps", cm);
    assert_eq!(code, 201, "{created}");
    let other = serde_json::json!({"metadata": {"name": "later"}});
    assert_eq!(
        c.post("/api/v1/namespaces/default/configmaps", other).0,
        201
    );
    let revision = rv(&created);
    assert!(
        revision < c.server.store().revision(),
        "a later write exists"
    );
    let auth = alloc::format!("Bearer {}", crate::cluster::test_harness::ADMIN);
    let mut shows = |path: &str, accept: Option<&str>| {
        let mut req = ApiRequest::new(Method::Get, path);
        req.authorization = Some(&auth);
        req.accept = accept;
        let response = c
            .server
            .handle_request(c.now, &req)
            .into_response()
            .unwrap();
        (response.status, response.shows_revision)
    };
    let one = "/api/v1/namespaces/default/configmaps/shown";
    assert_eq!(shows(one, None), (200, Some(revision)));
    assert_eq!(
        shows(one, Some(crate::api::request::TABLE)),
        (200, Some(revision))
    );
    assert_eq!(
        shows(
            one,
            Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
        ),
        (200, Some(revision))
    );
    assert_eq!(
        shows("/api/v1/namespaces/default/configmaps", None),
        (200, None)
    );
    assert_eq!(
        shows("/api/v1/namespaces/default/configmaps/missing", None),
        (404, None),
        "an absence may be a deletion not yet durable"
    );
}

/// Core holds open watches to `Config::max_watches` before it builds a watcher: the one past
/// it gets kube's 429, and a watcher dropped (its stream ended) frees its slot at once.
#[test]
fn watches_past_the_budget_get_429_and_a_dropped_one_frees_its_slot() {
    let mut c = crate::cluster::test_harness::Cluster::with(Config {
        max_watches: 2,
        ..Config::default()
    });
    let auth = alloc::format!("Bearer {}", crate::cluster::test_harness::ADMIN);
    let watch = |c: &mut crate::cluster::test_harness::Cluster| {
        let mut req = ApiRequest::new(Method::Get, "/api/v1/namespaces/default/configmaps");
        req.query = "watch=true";
        req.authorization = Some(&auth);
        c.server.handle_request(c.now, &req)
    };
    let first = watch(&mut c);
    let second = watch(&mut c);
    assert!(matches!(first, Outcome::Watch(_)) && matches!(second, Outcome::Watch(_)));
    assert_eq!(c.server.watch_slots().open(), 2);
    let Outcome::Response(refused) = watch(&mut c) else {
        panic!("a third watch was built past the budget");
    };
    assert_eq!(refused.status, 429);
    let status: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(status["reason"], "TooManyRequests", "{status}");
    assert_eq!(status["message"], "too many open watches (limit 2)");
    drop(first);
    assert_eq!(c.server.watch_slots().open(), 1);
    assert!(matches!(watch(&mut c), Outcome::Watch(_)));
}
