//! Three replicas in one process (in-memory or sealed logs, the channel network): the leader's core
//! writes through the driver, the followers replay, and every replica ends with the same
//! store; a leader's loss hands the writer's role to a survivor above a revision gap; a new
//! learner catches up from a snapshot; a leader cut off from the others never shows or
//! acknowledges the writes it could not commit, and rebuilds once it learns they were dropped;
//! and three replicas over the attested mesh on Unix sockets elect, replicate and ship a
//! snapshot as they do over channels.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nautilus_core::Config;
use nautilus_core::api::{ApiRequest, Method};
use serde_json::Value;
use sha2::{Digest, Sha256};

use std::sync::{Arc, Mutex};

use super::Replica;
use super::log_store::{MemLog, SealedLog};
use super::mesh::tests::endpoint;
use super::mesh::{Kind, MeshEndpoint};
use super::network::{ChannelNetwork, Mesh, serve};
use super::state_machine::ReplicaCore;
use super::types::{Member, NodeId};
use crate::cli::ListenAddr;
use crate::transport::Listener;

const TOKEN: &str = "admin";
/// Generous for a debug build on two shared cores.
const WAIT: Duration = Duration::from_secs(30);

/// One multi-replica test at a time: nine replicas' timers on two shared cores would make
/// elections spurious.
pub(super) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(super) fn config() -> Config {
    Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..Config::default()
    }
}

pub(super) fn member(slot: u8) -> Member {
    Member {
        slot,
        peer_addr: format!("replica-{slot}"),
    }
}

/// A replica's core, answering one admin request: status and body.
fn call(core: &ReplicaCore, method: Method, path: &str, body: &[u8]) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/json");
    req.body = body;
    let response = core
        .lock()
        .cluster
        .handle_request(crate::server::now(), &req)
        .into_response()
        .expect("not a watch");
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

/// `count` ConfigMap creates on the leader's core, each handed to the driver as the serving
/// code would; returns once all are committed.
async fn create_config_maps(leader: &Replica, prefix: &str, count: usize) {
    for i in 0..count {
        let body = format!(r#"{{"metadata":{{"name":"{prefix}-{i}"}},"data":{{"i":"{i}"}}}}"#);
        let (status, answer) = call(
            &leader.core,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            body.as_bytes(),
        );
        assert_eq!(status, 201, "{answer}");
        leader.core.wake.notify_one();
    }
    let journaled = leader.core.lock().cluster.journaled();
    let committed = tokio::time::timeout(WAIT, leader.core.wait_committed(journaled)).await;
    assert_eq!(committed, Ok(true), "the creates were committed");
}

/// Every stored object: key, revision, bytes.
fn objects(core: &ReplicaCore) -> Vec<(String, u64, Vec<u8>)> {
    core.lock()
        .cluster
        .store()
        .iter()
        .map(|(k, o)| {
            (
                format!("{:?}/{}/{}", k.resource, k.namespace, k.name),
                o.revision,
                o.json.bytes().into_owned(),
            )
        })
        .collect()
}

/// Waits until `replica` applied up to `revision`.
async fn applied(replica: &Replica, revision: u64) {
    let mut progress = replica.core.progress();
    let reached = tokio::time::timeout(WAIT, progress.wait_for(|p| p.revision >= revision)).await;
    assert!(
        matches!(reached, Ok(Ok(_))),
        "replica {} applied up to {revision}",
        replica.raft.metrics().borrow().id
    );
}

/// Every replica holds the leader's store: the same objects (bytes and revisions), the same
/// revision, and the same LIST answers.
pub(super) async fn agree(leader: &Replica, others: &[&Replica]) {
    let revision = leader.core.lock().cluster.store().revision();
    assert_eq!(
        leader.core.progress().borrow().revision,
        revision,
        "all committed"
    );
    let expected = objects(&leader.core);
    let list = call(
        &leader.core,
        Method::Get,
        "/api/v1/namespaces/default/configmaps",
        b"",
    );
    let namespaces = call(&leader.core, Method::Get, "/api/v1/namespaces", b"");
    assert_eq!(list.0, 200);
    assert_eq!(
        list.1["metadata"]["resourceVersion"],
        revision.to_string(),
        "the LIST is at the store's revision"
    );
    for other in others {
        applied(other, revision).await;
        assert_eq!(other.core.lock().cluster.store().revision(), revision);
        assert!(
            objects(&other.core) == expected,
            "the stored objects differ"
        );
        assert_eq!(
            call(
                &other.core,
                Method::Get,
                "/api/v1/namespaces/default/configmaps",
                b""
            ),
            list
        );
        assert_eq!(
            call(&other.core, Method::Get, "/api/v1/namespaces", b""),
            namespaces
        );
    }
}

/// Waits until a replica among `replicas` leads and its core took over; its index.
async fn leader_of(replicas: &[&Replica]) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for (i, replica) in replicas.iter().enumerate() {
            if replica.core.lock().writer.is_some() {
                return i;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica took over"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start(network: &ChannelNetwork, id: NodeId) -> Replica {
    let core = ReplicaCore::new(config(), [id as u8; 32], crate::server::now());
    let replica = Replica::start(id, MemLog::default(), network.from(id), core)
        .await
        .unwrap();
    network.insert(id, replica.raft.clone());
    replica
}

/// Makes replicas 1..=n (in this order in `replicas`) one cluster of voters.
async fn initialize(replicas: &[Replica]) {
    let members: BTreeMap<NodeId, Member> = (1..=replicas.len() as NodeId)
        .map(|id| (id, member(id as u8 - 1)))
        .collect();
    replicas[0].raft.initialize(members).await.unwrap();
}

/// Three replicas 1..=3 on in-memory logs, one cluster.
async fn three_in_memory(network: &ChannelNetwork) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for id in 1..=3 {
        replicas.push(start(network, id).await);
    }
    initialize(&replicas).await;
    replicas
}

pub(super) type TestHost = Arc<Mutex<crate::durable::test_host::Host>>;

/// Three replicas 1..=3 on sealed logs, each in its own in-memory host, one cluster.
async fn three_on_sealed_logs(network: &ChannelNetwork) -> (Vec<TestHost>, Vec<Replica>) {
    let hosts: Vec<TestHost> = (0..3).map(|_| TestHost::default()).collect();
    let mut replicas = Vec::new();
    for id in 1..=3 {
        replicas.push(start_sealed(network, id, &hosts[id as usize - 1]).await);
    }
    initialize(&replicas).await;
    (hosts, replicas)
}

/// Replica `id` on a sealed log in `host` (the in-memory host speaking the storage frames).
async fn start_sealed(
    network: &ChannelNetwork,
    id: NodeId,
    host: &Arc<Mutex<crate::durable::test_host::Host>>,
) -> Replica {
    let (store, _task) = crate::durable::test_host::serve(host.clone());
    let keys = crate::durable::seal::Keys::derive(&[5; 32], "replicas");
    // A small tail: replication reads most entries back from the host.
    let log = SealedLog::open(store, keys, id, 4 << 10).await.unwrap();
    let core = ReplicaCore::new(config(), [id as u8; 32], crate::server::now());
    let replica = Replica::start(id, log, network.from(id), core)
        .await
        .unwrap();
    network.insert(id, replica.raft.clone());
    replica
}

/// Three replicas on sealed logs; a follower is stopped and started again from its sealed
/// log under a new id (ids are never reused, design §2.3): it replays what its log holds as
/// committed before anyone talks to it, rejoins as a learner whose log the leader only
/// extends (the sealed records it had stay as they were), is promoted in place of its old id,
/// and with it the cluster survives the loss of the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sealed_logs_a_restarted_replica_rejoins_under_a_new_id_and_catches_up() {
    let _serial = SERIAL.lock().await;
    let network = ChannelNetwork::default();
    let (hosts, mut replicas) = three_on_sealed_logs(&network).await;
    let first = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    create_config_maps(&replicas[first], "first", 200).await;
    let followers: Vec<&Replica> = (0..3)
        .filter(|&i| i != first)
        .map(|i| &replicas[i])
        .collect();
    agree(&replicas[first], &followers).await;
    // The followers applied the first creates, so they know them committed: the records of
    // the next ones carry that (a sealed record holds the committed id known when sealed).
    let first_round = replicas[first].core.lock().cluster.store().revision();
    create_config_maps(&replicas[first], "second", 5).await;
    agree(&replicas[first], &followers).await;
    drop(followers);

    // A follower stops; its host keeps its sealed log.
    let slot = (first + 1) % 3;
    let stopped = replicas.remove(slot);
    let old_id = stopped.raft.metrics().borrow().id;
    let revision_before = stopped.core.lock().cluster.store().revision();
    network.remove(old_id);
    stopped.shutdown().await.unwrap();
    let sealed_before = hosts[slot].lock().unwrap().log.clone();
    assert!(sealed_before.len() > 2, "the follower's log was sealed");
    let leader = first - usize::from(first > slot);
    create_config_maps(&replicas[leader], "while-away", 50).await;

    // It starts again from its sealed log, under a new id.
    let new_id = 10 + slot as NodeId;
    let restarted = start_sealed(&network, new_id, &hosts[slot]).await;
    let replayed = restarted.core.lock().cluster.store().revision();
    assert!(
        replayed >= first_round && replayed <= revision_before,
        "it replayed its sealed log up to what the log says was committed: {replayed} of \
         {revision_before} (at least {first_round})"
    );
    // Its vote is not the old incarnation's (sealed for the old id, it does not open): it is
    // the floor of its log's last entry, an uncommitted vote for the leader that wrote it.
    // (The metrics show it once openraft's core published them: waited for, not raced.)
    let leader_vote = replicas[leader].raft.metrics().borrow().vote;
    let vote = restarted
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.vote.leader_id.term > 0, "its vote is published")
        .await
        .unwrap()
        .vote;
    assert!(
        !vote.committed && vote.leader_id == leader_vote.leader_id,
        "it starts without the old incarnation's vote, at its log's floor: {vote:?} (leader {leader_vote:?})"
    );
    replicas[leader]
        .raft
        .add_learner(new_id, member(slot as u8), true)
        .await
        .unwrap();
    create_config_maps(&replicas[leader], "rejoined", 20).await;
    let other = 1 - leader;
    agree(&replicas[leader], &[&replicas[other], &restarted]).await;
    let sealed_after = hosts[slot].lock().unwrap().log.clone();
    assert!(sealed_after.len() > sealed_before.len());
    assert!(
        sealed_before
            .iter()
            .all(|(position, record)| sealed_after.get(position) == Some(record)),
        "only the tail travelled: the records it had sealed were kept, not rewritten"
    );

    // Promoted in place of its old id, it is one of the voters that survive the leader.
    let voters: BTreeSet<NodeId> = replicas
        .iter()
        .map(|r| r.raft.metrics().borrow().id)
        .chain([new_id])
        .collect();
    replicas[leader]
        .raft
        .change_membership(voters, false)
        .await
        .unwrap();
    let gone = replicas.remove(leader);
    let gone_id = gone.raft.metrics().borrow().id;
    network.remove(gone_id);
    gone.shutdown().await.unwrap();
    let survivors = [&replicas[0], &restarted];
    let next = leader_of(&survivors).await;
    create_config_maps(survivors[next], "after", 20).await;
    agree(survivors[next], &[survivors[1 - next]]).await;
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
    restarted.shutdown().await.unwrap();
}

/// A joining replica becomes its slot's voter only once it holds every entry the leader had
/// when it was added: openraft's `add_learner` returns within 5,000 entries of the leader,
/// and the other two voters alone commit the membership change, so without the wait a voter
/// far behind (here on a slow link) would hold up every commit the moment another failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_is_promoted_only_once_it_holds_every_entry_the_leader_had() {
    let _serial = SERIAL.lock().await;
    let network = ChannelNetwork::default();
    let replicas = three_in_memory(&network).await;
    let first = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    create_config_maps(&replicas[first], "before", 600).await;
    let raft = &replicas[first].raft;
    let leader_id = raft.metrics().borrow().id;
    let joining: NodeId = 10;
    let slot = ((first + 1) % 3) as u8;
    let replica = start(&network, joining).await;
    network.slow(
        leader_id,
        joining,
        Duration::from_millis(30),
        Duration::from_millis(60),
    );
    let had = raft.metrics().borrow().last_log_index.unwrap();
    super::serving::promote(raft, joining, member(slot), Duration::from_secs(60))
        .await
        .unwrap();
    let matched = raft
        .metrics()
        .borrow()
        .replication
        .as_ref()
        .and_then(|r| r.get(&joining).copied().flatten())
        .map(|l| l.index);
    assert!(
        matched.is_some_and(|m| m >= had),
        "promoted while holding {matched:?} of the {had} entries the leader had"
    );
    let voters: BTreeSet<NodeId> = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    assert!(voters.contains(&joining) && voters.len() == 3, "{voters:?}");
    network.heal();
    replica.shutdown().await.unwrap();
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
}

/// A write is acknowledged only once a majority's hosts synced it: with both followers'
/// syncs held (their records written, not acknowledged) nothing commits or shows, and one
/// follower's sync is enough. A leader whose own host refuses appends (EIO) stalls
/// (openraft 0.9 replicates an entry only once the leader's own log flushed it), so the
/// followers elect another; once its host takes appends again, the old leader's entry that
/// never left it is cut, its core rebuilt, and its sealed log ends up the new leader's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_commits_once_a_majority_of_hosts_synced_it_and_a_leader_whose_host_refuses_is_replaced()
 {
    let _serial = SERIAL.lock().await;
    let network = ChannelNetwork::default();
    let (hosts, replicas) = three_on_sealed_logs(&network).await;
    let first = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    let leader = &replicas[first];
    create_config_maps(leader, "first", 5).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    // Held syncs stall their answers, and so the leader's heartbeats to them: the followers
    // must not campaign meanwhile (the test is of the commit rule, not of elections).
    for &f in &followers {
        replicas[f].raft.runtime_config().elect(false);
    }

    let write = |prefix: &'static str| {
        for i in 0..5 {
            let body = format!(r#"{{"metadata":{{"name":"{prefix}-{i}"}}}}"#);
            let (status, answer) = call(
                &leader.core,
                Method::Post,
                "/api/v1/namespaces/default/configmaps",
                body.as_bytes(),
            );
            assert_eq!(status, 201, "{answer}");
            leader.core.wake.notify_one();
        }
        leader.core.lock().cluster.journaled()
    };
    for &f in &followers {
        hosts[f].lock().unwrap().hold_syncs = true;
    }
    let shown = *leader.core.progress().borrow();
    let journaled = write("held");
    assert!(
        tokio::time::timeout(
            Duration::from_millis(500),
            leader.core.wait_committed(journaled)
        )
        .await
        .is_err(),
        "nothing commits while only the leader's host synced it"
    );
    assert_eq!(
        leader.core.progress().borrow().revision,
        shown.revision,
        "nor shows"
    );
    for &f in &followers {
        let held = hosts[f].lock().unwrap().log.len() as u64;
        let last = replicas[f]
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .unwrap_or(0);
        assert!(held >= last, "the followers' hosts hold the records");
    }
    hosts[followers[0]].lock().unwrap().hold_syncs = false;
    assert_eq!(
        tokio::time::timeout(WAIT, leader.core.wait_committed(journaled)).await,
        Ok(true),
        "one follower's sync makes a majority"
    );
    hosts[followers[1]].lock().unwrap().hold_syncs = false;
    agree(leader, &[&replicas[followers[0]], &replicas[followers[1]]]).await;

    // The leader's own host refuses appends: its entry is never flushed, so never sent, and
    // the followers elect another leader, which commits without it.
    for &f in &followers {
        replicas[f].raft.runtime_config().elect(true);
    }
    let old_id = leader.raft.metrics().borrow().id;
    hosts[first].lock().unwrap().fail_appends = Some(nautilus_wire::storage::ErrorKind::Io);
    let journaled = write("leader-eio");
    let waiting = {
        let core = leader.core.clone();
        tokio::spawn(async move { core.wait_committed(journaled).await })
    };
    let others: Vec<&Replica> = followers.iter().map(|&f| &replicas[f]).collect();
    let next = followers[leader_of(&others).await];
    let other = followers
        .iter()
        .copied()
        .find(|&f| f != next)
        .unwrap_or(next);
    create_config_maps(&replicas[next], "failover", 5).await;
    agree(&replicas[next], &[&replicas[other]]).await;
    assert!(
        !waiting.is_finished(),
        "the stalled leader acknowledged nothing"
    );

    // Its host recovers: it learns of the new term, its entry is cut, its core rebuilt.
    hosts[first].lock().unwrap().fail_appends = None;
    assert!(
        !tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap(),
        "its writes are reported as never committed"
    );
    create_config_maps(&replicas[next], "later", 5).await;
    agree(&replicas[next], &[&replicas[other], leader]).await;
    assert_eq!(leader.core.progress().borrow().rebuilds, 1);
    assert!(
        !objects(&leader.core)
            .iter()
            .any(|o| o.0.contains("/leader-eio-")),
        "the writes that never left it are nowhere"
    );
    assert_ne!(replicas[next].raft.metrics().borrow().id, old_id);
    let applied = replicas[next]
        .raft
        .metrics()
        .borrow()
        .last_applied
        .map_or(0, |l| l.index);
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
    // Its sealed log, cut and sent again, holds what the new leader's holds.
    let sealed = |slot: usize| {
        let host = hosts[slot].clone();
        async move {
            let (store, _task) = crate::durable::test_host::serve(host);
            let keys = crate::durable::seal::Keys::derive(&[5; 32], "replicas");
            let mut log = SealedLog::open(store, keys, 99, 4 << 10).await.unwrap();
            openraft::RaftLogReader::try_get_log_entries(&mut log, ..=applied)
                .await
                .unwrap()
        }
    };
    let theirs = sealed(next).await;
    assert_eq!(theirs.len() as u64, applied + 1);
    assert!(
        sealed(first).await == theirs,
        "the old leader's sealed log agrees"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_agree_fail_over_above_a_gap_and_a_learner_catches_up() {
    let _serial = SERIAL.lock().await;
    let network = ChannelNetwork::default();
    let mut replicas = three_in_memory(&network).await;

    // 500 creates on the leader; the followers replay them and agree byte for byte.
    let first = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    let leader = &replicas[first];
    create_config_maps(leader, "first", 500).await;
    let followers: Vec<&Replica> = (0..3)
        .filter(|&i| i != first)
        .map(|i| &replicas[i])
        .collect();
    agree(leader, &followers).await;
    for follower in &followers {
        assert!(follower.core.lock().writer.is_none());
        let (status, answer) = call(
            &follower.core,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            br#"{"metadata":{"name":"refused"}}"#,
        );
        assert_eq!(
            (status, answer["reason"].as_str()),
            (503, Some("ServiceUnavailable")),
            "a follower refuses writes"
        );
    }
    assert_eq!(
        objects(&leader.core)
            .iter()
            .filter(|o| o.0.starts_with("ConfigMaps/default/first-"))
            .count(),
        500
    );

    // The leader goes away: a survivor is elected, takes over above the gap, and writes on.
    let old = replicas.remove(first);
    let old_id = old.raft.metrics().borrow().id;
    let last = old.core.lock().cluster.store().revision();
    network.remove(old_id);
    let lost_at = std::time::Instant::now();
    old.shutdown().await.unwrap();
    let next = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    let took_over_in = lost_at.elapsed();
    let leader = &replicas[next];
    let survivor = &replicas[1 - next];
    let skip = config().max_pending_changes as u64;
    assert_eq!(
        leader.core.lock().cluster.store().revision(),
        last + skip + 1,
        "the new writer's revisions continue past the gap"
    );
    create_config_maps(leader, "second", 500).await;
    agree(leader, &[survivor]).await;
    let revisions: BTreeSet<u64> = objects(&survivor.core)
        .iter()
        .filter(|o| o.0.starts_with("ConfigMaps/default/second-"))
        .map(|o| o.1)
        .collect();
    assert_eq!(revisions.len(), 500);
    assert_eq!(
        revisions.first(),
        Some(&(last + skip + 2)),
        "the first write after the gap"
    );
    assert!(
        took_over_in < Duration::from_secs(5),
        "took over in {took_over_in:?}"
    );

    // A new replica (a new id: ids are never reused) joins as a learner after the leader's
    // log was compacted into a snapshot, so it catches up from the snapshot, then the log.
    let leader_id = leader.raft.metrics().borrow().id;
    leader.raft.trigger().snapshot().await.unwrap();
    let snapshot = leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "snapshot built")
        .await
        .unwrap()
        .snapshot
        .unwrap();
    leader
        .raft
        .trigger()
        .purge_log(snapshot.index)
        .await
        .unwrap();
    leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.purged == Some(snapshot), "log purged")
        .await
        .unwrap();
    let learner = start(&network, 4).await;
    leader.raft.add_learner(4, member(3), true).await.unwrap();
    create_config_maps(leader, "third", 20).await;
    agree(leader, &[survivor, &learner]).await;
    let learner_metrics = learner.raft.metrics().borrow().clone();
    assert_eq!(
        learner_metrics.snapshot,
        Some(snapshot),
        "the learner installed the snapshot"
    );
    assert_eq!(learner_metrics.current_leader, Some(leader_id));
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
    learner.shutdown().await.unwrap();
}

/// A leader cut off from the others keeps executing writes that can never commit: it never
/// acknowledges or shows them. Back in touch, raft drops its uncommitted entries, and the new
/// writer's first entry finds its core holding writes nobody else has: it rebuilds its cluster
/// from its snapshot and its sealed log up to what was applied (design §1.5), then follows,
/// holding exactly what the others hold; the writes it could not commit are reported as never
/// committed and are nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_never_shows_its_uncommitted_writes_and_rebuilds_from_its_snapshot_and_log()
 {
    let _serial = SERIAL.lock().await;
    let network = ChannelNetwork::default();
    let (_hosts, mut replicas) = three_on_sealed_logs(&network).await;
    let first = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    let old = replicas.remove(first);
    create_config_maps(&old, "snapshotted", 10).await;
    // A snapshot on the leader, its log purged up to it, then writes after it: the rebuild
    // needs both the snapshot and the sealed log.
    old.raft.trigger().snapshot().await.unwrap();
    let snapshot = old
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "snapshot built")
        .await
        .unwrap()
        .snapshot
        .unwrap();
    old.raft.trigger().purge_log(snapshot.index).await.unwrap();
    old.raft
        .wait(Some(WAIT))
        .metrics(|m| m.purged == Some(snapshot), "log purged")
        .await
        .unwrap();
    create_config_maps(&old, "before", 10).await;
    let committed = *old.core.progress().borrow();

    // Cut off, the old leader's core still executes writes, but none commits.
    let old_id = old.raft.metrics().borrow().id;
    network.isolate(old_id);
    for i in 0..5 {
        let body = format!(r#"{{"metadata":{{"name":"lost-{i}"}}}}"#);
        let (status, answer) = call(
            &old.core,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            body.as_bytes(),
        );
        assert_eq!(status, 201, "{answer}");
        old.core.wake.notify_one();
    }
    let journaled = old.core.lock().cluster.journaled();
    let waiting = {
        let core = old.core.clone();
        tokio::spawn(async move { core.wait_committed(journaled).await })
    };

    // The others elect a leader, which takes over and writes.
    let next = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    create_config_maps(&replicas[next], "after", 10).await;
    agree(&replicas[next], &[&replicas[1 - next]]).await;
    assert!(
        !waiting.is_finished(),
        "the cut-off leader acknowledged nothing"
    );
    assert_eq!(
        *old.core.progress().borrow(),
        committed,
        "and showed nothing past what was committed"
    );
    let ring_before = old.core.lock().cluster.watch_ring();

    // Healed, it learns of the new term, rebuilds, and follows.
    network.heal();
    assert!(
        !tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap(),
        "its uncommitted writes are reported as never committed"
    );
    agree(&replicas[next], &[&replicas[1 - next], &old]).await;
    assert_eq!(old.core.progress().borrow().rebuilds, 1);
    assert!(old.raft.metrics().borrow().running_state.is_ok());
    assert!(
        !objects(&old.core).iter().any(|o| o.0.contains("/lost-")),
        "the rebuilt cluster holds none of the writes that never committed"
    );
    for prefix in ["snapshotted", "before", "after"] {
        assert_eq!(
            objects(&old.core)
                .iter()
                .filter(|o| o.0.starts_with(&format!("ConfigMaps/default/{prefix}-")))
                .count(),
            10,
            "{prefix}"
        );
    }
    assert!(
        !Arc::ptr_eq(&ring_before, &old.core.lock().cluster.watch_ring()),
        "its watch streams ended with the old cluster's ring"
    );
    let (status, _) = call(
        &old.core,
        Method::Post,
        "/api/v1/namespaces/default/configmaps",
        br#"{"metadata":{"name":"refused"}}"#,
    );
    assert_eq!(status, 503, "it follows: writes are refused");
    // Later writes reach it as they reach the others.
    create_config_maps(&replicas[next], "later", 10).await;
    agree(&replicas[next], &[&replicas[1 - next], &old]).await;
    let survivors = objects(&replicas[next].core);
    assert!(
        !survivors.iter().any(|o| o.0.contains("/lost-")),
        "the lost writes are nowhere else"
    );
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
    old.shutdown().await.unwrap();
}

/// The leader's entries reach one follower but its acknowledgements are lost, so the leader
/// cannot commit them; that follower is elected and commits them in its term. Back in touch,
/// the former leader applies its own entries without replaying them (its core holds them:
/// applying them twice would fail), then replays the new writer's, and its writes are
/// acknowledged after all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_leaders_entries_committed_in_a_later_term_are_applied_once() {
    let _serial = SERIAL.lock().await;
    let network = ChannelNetwork::default();
    let mut replicas = three_in_memory(&network).await;
    let first = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    let old = replicas.remove(first);
    create_config_maps(&old, "before", 10).await;
    let old_id = old.raft.metrics().borrow().id;
    let ids: Vec<NodeId> = replicas
        .iter()
        .map(|r| r.raft.metrics().borrow().id)
        .collect();
    let (carrier, other) = (ids[0], ids[1]);

    // The carrier gets the leader's entries but the leader never hears back; the other
    // follower hears nothing.
    network.lose_answers(old_id, carrier);
    network.isolate(other);
    // Without answers the leader's heartbeats still reach the carrier, but under load one may
    // come late: the carrier must not campaign before the leader's writes are carried.
    replicas[0].raft.runtime_config().elect(false);
    let before = old.raft.metrics().borrow().last_log_index;
    for i in 0..5 {
        let body = format!(r#"{{"metadata":{{"name":"late-{i}"}}}}"#);
        let (status, answer) = call(
            &old.core,
            Method::Post,
            "/api/v1/namespaces/default/configmaps",
            body.as_bytes(),
        );
        assert_eq!(status, 201, "{answer}");
        old.core.wake.notify_one();
    }
    let journaled = old.core.lock().cluster.journaled();
    let carried = tokio::time::timeout(WAIT, async {
        loop {
            let sent = old.raft.metrics().borrow().last_log_index;
            let got = replicas[0].raft.metrics().borrow().last_log_index;
            // Everything submitted (stable for a while) and carried.
            if sent > before && sent == got {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let again = old.raft.metrics().borrow().last_log_index;
                if again == sent && replicas[0].raft.metrics().borrow().last_log_index == sent {
                    return sent;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(
            Duration::from_millis(100),
            old.core.wait_committed(journaled)
        )
        .await
        .is_err(),
        "not committed while unacknowledged"
    );

    // The leader is cut off; the carrier (the longer log) is elected and commits them.
    network.heal();
    network.isolate(old_id);
    replicas[0].raft.runtime_config().elect(true);
    let next = leader_of(&replicas.iter().collect::<Vec<_>>()).await;
    assert_eq!(
        replicas[next].raft.metrics().borrow().id,
        carrier,
        "only the carrier's log is up to date"
    );
    assert!(
        replicas[next]
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index)
            > carried
    );
    create_config_maps(&replicas[next], "after", 10).await;
    let names: Vec<String> = objects(&replicas[next].core)
        .into_iter()
        .map(|o| o.0)
        .filter(|k| k.contains("/late-"))
        .collect();
    assert_eq!(
        names.len(),
        5,
        "the former leader's writes were committed: {names:?}"
    );

    // Back in touch: the former leader applies its own entries once and follows.
    network.heal();
    let acknowledged = tokio::time::timeout(WAIT, old.core.wait_committed(journaled)).await;
    assert_eq!(
        acknowledged,
        Ok(true),
        "its writes are acknowledged after all"
    );
    agree(&replicas[next], &[&replicas[1 - next], &old]).await;
    assert!(old.raft.metrics().borrow().running_state.is_ok());
    assert!(
        old.core.lock().writer.is_none(),
        "it follows the new writer"
    );
    for replica in replicas {
        replica.shutdown().await.unwrap();
    }
    old.shutdown().await.unwrap();
}

/// A socket directory of this test's own.
fn socket_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nautilus-mesh-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mesh_member(dir: &std::path::Path, id: NodeId) -> Member {
    Member {
        slot: id as u8 - 1,
        peer_addr: format!("unix:{}", dir.join(format!("replica-{id}.sock")).display()),
    }
}

/// A replica on the mesh: its listener on a Unix socket in `dir` serves its peers.
struct MeshReplica {
    replica: Replica,
    endpoint: Arc<MeshEndpoint>,
    serving: tokio::task::JoinHandle<()>,
}

async fn start_on_mesh(dir: &std::path::Path, id: NodeId) -> MeshReplica {
    let endpoint = endpoint(id);
    let path = dir.join(format!("replica-{id}.sock"));
    let listener = Listener::bind(&ListenAddr::Unix(path)).unwrap();
    let core = ReplicaCore::new(config(), [id as u8; 32], crate::server::now());
    let replica = Replica::start(id, MemLog::default(), Mesh::new(endpoint.clone()), core)
        .await
        .unwrap();
    let serving = tokio::spawn(serve(
        endpoint.clone(),
        listener,
        replica.raft.clone(),
        None,
    ));
    MeshReplica {
        replica,
        endpoint,
        serving,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_over_the_attested_mesh_elect_replicate_ship_a_snapshot_and_fail_over() {
    let _serial = SERIAL.lock().await;
    let dir = socket_dir("three");
    let mut replicas = Vec::new();
    for id in 1..=3 {
        replicas.push(start_on_mesh(&dir, id).await);
    }
    let members: BTreeMap<NodeId, Member> = (1..=3).map(|id| (id, mesh_member(&dir, id))).collect();
    replicas[0].replica.raft.initialize(members).await.unwrap();

    let all: Vec<&Replica> = replicas.iter().map(|r| &r.replica).collect();
    let first = leader_of(&all).await;
    let leader = all[first];
    create_config_maps(leader, "mesh", 300).await;
    let followers: Vec<&Replica> = (0..3).filter(|&i| i != first).map(|i| all[i]).collect();
    agree(leader, &followers).await;

    // A learner joins after the leader compacted its log: the snapshot crosses the mesh.
    leader.raft.trigger().snapshot().await.unwrap();
    let snapshot = leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "snapshot built")
        .await
        .unwrap()
        .snapshot
        .unwrap();
    leader
        .raft
        .trigger()
        .purge_log(snapshot.index)
        .await
        .unwrap();
    leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.purged == Some(snapshot), "log purged")
        .await
        .unwrap();
    let learner = start_on_mesh(&dir, 4).await;
    leader
        .raft
        .add_learner(4, mesh_member(&dir, 4), true)
        .await
        .unwrap();
    create_config_maps(leader, "after", 20).await;
    let mut others = followers.clone();
    others.push(&learner.replica);
    agree(leader, &others).await;
    assert_eq!(
        learner.replica.raft.metrics().borrow().snapshot,
        Some(snapshot),
        "the learner installed the snapshot"
    );

    // An admitted peer that sends garbage gets an Error frame and loses its connection; the
    // cluster carries on.
    let leader_id = leader.raft.metrics().borrow().id;
    let intruder = endpoint(9);
    let stream = tokio::net::UnixStream::connect(dir.join(format!("replica-{leader_id}.sock")))
        .await
        .unwrap();
    let mut link = intruder.connect(Box::new(stream), leader_id).await.unwrap();
    link.send(Kind::AppendEntries, 5, &[0xff; 16])
        .await
        .unwrap();
    let answer = link.receive().await.unwrap().unwrap();
    assert_eq!((answer.kind, answer.id), (Kind::Error, 5));
    assert!(matches!(link.receive().await, Ok(None) | Err(_)), "closed");
    create_config_maps(leader, "still", 5).await;
    agree(leader, &others).await;

    // The leader goes away (its links break): the survivors elect one of them over the mesh,
    // and it writes on.
    let old = replicas.remove(first);
    assert_eq!(old.endpoint.refused(), 0, "no honest peer was refused");
    old.serving.abort();
    old.replica.shutdown().await.unwrap();
    let survivors: Vec<&Replica> = replicas.iter().map(|r| &r.replica).collect();
    let next = leader_of(&survivors).await;
    let leader = survivors[next];
    create_config_maps(leader, "failover", 50).await;
    agree(leader, &[survivors[1 - next], &learner.replica]).await;

    replicas.push(learner);
    for replica in replicas {
        assert_eq!(replica.endpoint.refused(), 0, "no honest peer was refused");
        replica.serving.abort();
        replica.replica.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A replica started without a slot finds it: among the peer addresses, the one where its
/// own probe answers (another replica answering elsewhere, and an address nobody serves, are
/// passed over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_slot_finds_its_own_address_among_the_peers() {
    let dir = socket_dir("slot");
    let other = endpoint(0x0100_0000_0000_0001);
    let other_listener = Listener::bind(&ListenAddr::Unix(dir.join("other.sock"))).unwrap();
    let answering = other.clone();
    let other_task = tokio::spawn(async move {
        loop {
            let Ok(stream) = other_listener.accept().await else {
                continue;
            };
            let answering = answering.clone();
            tokio::spawn(async move {
                let _ = answering.accept(stream).await;
            });
        }
    });
    let peers = vec![
        format!("unix:{}", dir.join("nobody.sock").display()),
        format!("unix:{}", dir.join("other.sock").display()),
        format!("unix:{}", dir.join("mine.sock").display()),
    ];
    let probe = endpoint(0xff00_0000_0000_0007);
    let slot = tokio::time::timeout(
        Duration::from_secs(30),
        super::serving::discover_slot(
            probe,
            &ListenAddr::Unix(dir.join("mine.sock")),
            &peers,
            None,
        ),
    )
    .await
    .expect("found in time")
    .unwrap();
    assert_eq!(slot, 2);
    // The probe's listener is gone: the replica binds its address again.
    Listener::bind(&ListenAddr::Unix(dir.join("mine.sock"))).unwrap();
    other_task.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
