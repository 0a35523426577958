//! Handing the writer's role between replicas: followers replay a writer's records and refuse
//! writes; the one that takes over writes above a gap no earlier writer's pending revision can
//! reach, and the others follow that gap by replay.

use alloc::string::String;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use super::record::Record;
use super::{Cluster, Recovery, start_revision};
use crate::api::{ApiRequest, Method};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);

fn config() -> Config {
    Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..Config::default()
    }
}

/// One admin request at `now`: status and body.
fn call(
    server: &mut Cluster,
    now: UnixTime,
    method: Method,
    path: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/json");
    req.body = body;
    let response = server.handle_request(now, &req).into_response().unwrap();
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null),
    )
}

/// Creates ConfigMaps `{prefix}-0..count` in `default`, each answered 201.
fn create_config_maps(server: &mut Cluster, now: UnixTime, prefix: &str, count: usize) {
    for i in 0..count {
        let body =
            alloc::format!(r#"{{"metadata":{{"name":"{prefix}-{i}"}},"data":{{"i":"{i}"}}}}"#);
        let (status, answer) = call(
            server,
            now,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            body.as_bytes(),
        );
        assert_eq!(status, 201, "{answer}");
    }
}

/// The records a writer journaled since the last call, encoded as they travel.
fn take(server: &mut Cluster) -> Vec<Vec<u8>> {
    server.take_records().iter().map(Record::encode).collect()
}

fn replay(server: &mut Cluster, records: &[Vec<u8>]) {
    for record in records {
        server
            .replay_record(&Record::decode(record).unwrap())
            .unwrap();
    }
}

/// Every stored object: key, revision, bytes.
fn objects(server: &Cluster) -> Vec<(String, u64, Vec<u8>)> {
    server
        .store()
        .iter()
        .map(|(k, o)| {
            (
                alloc::format!("{:?}/{}/{}", k.resource, k.namespace, k.name),
                o.revision,
                o.json.bytes().into_owned(),
            )
        })
        .collect()
}

#[test]
fn a_follower_takes_over_above_the_gap_and_the_others_follow_it() {
    // The first writer of a new replicated cluster starts where a new cluster starts.
    let mut first = Cluster::follower(config(), [1; 32], T0);
    assert_eq!(first.store().revision(), 0);
    first.take_over(T0);
    create_config_maps(&mut first, T0, "first", 20);
    let from_first = take(&mut first);
    assert!(
        from_first.len() > 20,
        "the bootstrap and the creates were journaled"
    );
    assert_eq!(
        Record::decode(&from_first[0]).unwrap().revision(),
        Some(start_revision(T0) + 1)
    );

    // Followers created at their own (later) times replay from the writer's first record.
    let later = T0.plus_secs(5);
    let mut second = Cluster::follower(config(), [2; 32], later);
    let mut third = Cluster::follower(config(), [3; 32], later);
    for follower in [&mut second, &mut third] {
        replay(follower, &from_first);
        assert_eq!(objects(follower), objects(&first));
        assert_eq!(follower.store().revision(), first.store().revision());
        // A follower's replays are not journaled, and its writes are refused as not the leader.
        assert!(follower.take_records().is_empty());
        assert_eq!(follower.journaled(), 0);
        let (status, answer) = call(
            follower,
            later,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            br#"{"metadata":{"name":"refused"}}"#,
        );
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["reason"], "ServiceUnavailable");
        assert_eq!(
            follower.store().revision(),
            first.store().revision(),
            "the refusal changed nothing"
        );
        // Reads go on.
        assert_eq!(
            call(
                follower,
                later,
                Method::Get,
                "/api/v1/namespaces/default/configmaps/first-3",
                b""
            )
            .0,
            200
        );
    }

    // The first writer steps down; the second takes over and writes above the gap.
    first.step_down();
    let last = second.store().revision();
    let skip = config().max_pending_changes as u64;
    let takeover = T0.plus_secs(10);
    second.take_over(takeover);
    assert_eq!(second.store().revision(), last + skip + 1);
    create_config_maps(&mut second, takeover, "second", 20);
    let from_second = take(&mut second);
    assert_eq!(
        from_second.len(),
        20,
        "the bootstrap objects were there already"
    );
    assert_eq!(
        Record::decode(&from_second[0]).unwrap().revision(),
        Some(last + skip + 2)
    );
    let (status, answer) = call(
        &mut first,
        takeover,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        br#"{"metadata":{"name":"refused"}}"#,
    );
    assert_eq!(
        (status, answer["reason"].as_str()),
        (503, Some("ServiceUnavailable"))
    );

    // The others, the former writer among them, follow the gap and agree.
    for follower in [&mut third, &mut first] {
        replay(follower, &from_second);
        assert_eq!(objects(follower), objects(&second));
        assert_eq!(follower.store().revision(), second.store().revision());
        let ring = follower.watch_ring();
        ring.set_visible(u64::MAX);
        let mut events = Vec::new();
        assert_eq!(
            ring.read_visible_after(last, 100, &mut events),
            Ok(20),
            "a watch from before the gap continues"
        );
        assert!(
            ring.read_visible_after(last + 1, 100, &mut events).is_err(),
            "a watch inside the gap gets 410"
        );
    }
}

#[test]
fn a_recovery_finished_as_a_follower_holds_the_log_and_refuses_writes() {
    let mut writer = Cluster::follower(config(), [1; 32], T0);
    writer.take_over(T0);
    create_config_maps(&mut writer, T0, "cm", 10);
    let records = take(&mut writer);
    let mut recovery = Recovery::new(config(), [4; 32], T0.plus_secs(60));
    for record in &records {
        recovery.replay(record).unwrap();
    }
    let mut follower = recovery.finish_following().unwrap();
    assert_eq!(objects(&follower), objects(&writer));
    assert_eq!(
        follower.store().revision(),
        writer.store().revision(),
        "no gap skipped"
    );
    let (status, _) = call(
        &mut follower,
        T0,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        br#"{"metadata":{"name":"refused"}}"#,
    );
    assert_eq!(status, 503);
    assert!(follower.take_records().is_empty(), "nothing bootstrapped");
    create_config_maps(&mut writer, T0, "more", 3);
    replay(&mut follower, &take(&mut writer));
    assert_eq!(objects(&follower), objects(&writer));
}

/// The writer's compaction ticks reach replicas as marks: their snapshots (continue tokens)
/// expire when the writer's do, and with the cluster's shared continue key a token the writer
/// issued continues on a replica; with a per-run key it does not.
#[test]
fn replicas_follow_the_writers_compaction_and_share_its_continue_tokens() {
    let shared = Config {
        continue_key: Some([42; 32]),
        ..config()
    };
    let mut writer = Cluster::follower(shared.clone(), [1; 32], T0);
    writer.take_over(T0);
    create_config_maps(&mut writer, T0, "cm", 12);
    let mut follower = Cluster::follower(shared, [2; 32], T0);
    let mut stranger = Cluster::follower(config(), [3; 32], T0);
    let records = take(&mut writer);
    replay(&mut follower, &records);
    replay(&mut stranger, &records);

    let page = "/api/v1/namespaces/default/configmaps?limit=5";
    let (status, first) = call(&mut writer, T0, Method::Get, page, b"");
    assert_eq!(status, 200, "{first}");
    let token = String::from(first["metadata"]["continue"].as_str().unwrap());
    let next = alloc::format!("{page}&continue={token}");
    let on_writer = call(&mut writer, T0, Method::Get, &next, b"");
    assert_eq!(on_writer.0, 200, "{}", on_writer.1);
    assert_eq!(
        call(&mut follower, T0, Method::Get, &next, b""),
        on_writer,
        "the next page, as the writer gives it"
    );
    assert_ne!(
        call(&mut stranger, T0, Method::Get, &next, b"").0,
        200,
        "another run's key refuses the token"
    );

    // Two compaction ticks on the writer (the first marks, the second compacts below it).
    for minutes in [5, 10] {
        let at = T0.plus_secs(minutes * 60 + 1);
        writer.handle_timeout(at);
        replay(&mut follower, &take(&mut writer));
    }
    assert!(writer.compactor.compacted() > 0);
    assert_eq!(follower.compactor.compacted(), writer.compactor.compacted());
    assert_eq!(
        follower.compactor.poll_timeout(),
        writer.compactor.poll_timeout()
    );
    assert_eq!(follower.store().revision(), writer.store().revision());
    let expired = call(&mut writer, T0.plus_secs(601), Method::Get, &next, b"");
    assert_eq!(expired.0, 410, "{}", expired.1);
    assert_eq!(
        call(&mut follower, T0.plus_secs(601), Method::Get, &next, b"").0,
        410,
        "the token expired on the replica too"
    );
}
