//! A randomized fault simulation (issue 17, "Test like etcd's robustness tests and Jepsen"):
//! three replicas on sealed logs in one process, on the channel network, in tokio's paused
//! clock (a current-thread runtime started paused: openraft's timers, the links' delays and
//! the clients' pauses cost no wall time). Each schedule, from its seed, runs 3-4 clients
//! issuing random ConfigMap operations on 2-4 keys against random replicas, doing what the
//! serving code does (`serving.rs`, `server.rs`), while faults strike: a leader or a follower
//! crashes and starts again from its sealed log under a new id (it rejoins as a learner and is
//! promoted in place of its old id, as `serving.rs`'s join and admit do), the leader is cut
//! off, one direction of a link is cut, a link loses its answers, links are slow or lossy, and
//! the network heals. Then everything heals, every replica must reach the same store, and the
//! client history must be linearizable (the checker of `tests/src/linearizability.rs`, the
//! same file the real-process test uses).
//!
//! The schedule and every client choice come from the seed (`NAUTILUS_SIM_SEED` replays one;
//! `NAUTILUS_SIM_SCHEDULES` sets how many run; `NAUTILUS_SIM_FAULTS` picks the fault kinds,
//! `all` or names; `NAUTILUS_SIM_LOG` takes a tracing filter). openraft draws its election
//! timeouts from its own random source and the writer epochs come from the OS, so a replayed
//! seed takes the same steps while nothing is elected differently, and a failure is
//! reproduced by running its seed a few times, not always at once. A fault kind off by default
//! says why ([`Fault::off_by_default`]).
//!
//! What the simulation knows and a client does not is used to make the history exact: a write
//! that never reached the leader, or that a replica refused before executing it, had no effect
//! and is left out; only an answer lost after the request was delivered, a crash, or a timeout
//! makes an operation unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use nautilus_core::api::{ApiRequest, Method};
use openraft::ServerState;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Replica;
use super::log_store::SealedLog;
use super::network::ChannelNetwork;
use super::read_index::{Confirm, ReadRounds};
use super::serving::{
    ASK_AGAIN, CATCH_UP_WAIT, COMMIT_WAIT, FORWARD_WAIT, JOIN_WAIT, READ_INDEX_WAIT, promote,
};
use super::state_machine::ReplicaCore;
use super::tests::{SERIAL, TestHost, agree, config, member};
use super::types::NodeId;

#[path = "../../../tests/src/linearizability.rs"]
#[allow(unreachable_pub, dead_code)]
mod linearizability;

use linearizability::{Call, Op, Outcome};

const TOKEN: &str = "admin";
const COLLECTION: &str = "/api/v1/namespaces/default/configmaps";
/// Schedules run by default: under a minute of a debug build on two shared cores (the CI
/// budget; about 235 ms of wall time a schedule with the crash kinds). With
/// `NAUTILUS_SIM_SCHEDULES=1000` the default kinds ran in 236 s: 37,894 operations, 729 of
/// them unknown, 1,138 leader changes, every schedule linearizable and agreeing.
const DEFAULT_SCHEDULES: u64 = 200;
/// The most virtual time one schedule may take, healing included.
const SCHEDULE_LIMIT: Duration = Duration::from_secs(900);
/// How long the healed cluster has to settle (every slot a voter, everything applied).
const SETTLE_WAIT: Duration = Duration::from_secs(120);

/// The fault kinds a schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    CrashLeader,
    CrashFollower,
    IsolateLeader,
    CutOneWay,
    MuteAnswers,
    Delay,
    Loss,
    Heal,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::CrashLeader,
        Fault::CrashFollower,
        Fault::IsolateLeader,
        Fault::CutOneWay,
        Fault::MuteAnswers,
        Fault::Delay,
        Fault::Loss,
        Fault::Heal,
    ];

    /// Off unless `NAUTILUS_SIM_FAULTS` names them (see [`fault_kinds`]), for the reason
    /// named here; `NAUTILUS_SIM_FAULTS=all` runs them.
    fn off_by_default(self) -> bool {
        match self {
            // The defects this simulation found are fixed (a restart under a new id took
            // appends from a stale leader of a lower term; a refused write was answered from a
            // stale state; a second take-over jumped from an uncommitted jump; a join cut short
            // stayed a joint configuration). An isolated leader keeps appending writes it
            // cannot commit, and the logs here keep the chain tags of only their last 8
            // records (production keeps 65,536), so cutting that tail in place is refused and
            // the replica stops: about 1 schedule in 300 of this kind alone, a limit of the
            // test's setting. `NAUTILUS_SIM_FAULTS=all` runs it (200 schedules of every kind
            // passed).
            Fault::IsolateLeader => true,
            _ => false,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fault::CrashLeader => "crash-leader",
            Fault::CrashFollower => "crash-follower",
            Fault::IsolateLeader => "isolate-leader",
            Fault::CutOneWay => "cut-one-way",
            Fault::MuteAnswers => "mute-answers",
            Fault::Delay => "delay",
            Fault::Loss => "loss",
            Fault::Heal => "heal",
        }
    }
}

/// splitmix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.between(low, high))
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// The replicas' sealing keys (as `tests::start_sealed`'s).
fn sealing_keys() -> crate::durable::seal::Keys {
    crate::durable::seal::Keys::derive(&[5; 32], "replicas")
}

/// One start of a replica slot.
struct Node {
    id: NodeId,
    slot: u8,
    replica: Replica,
    reads: Arc<ReadRounds>,
    /// Cancelled when it crashes: whatever a client waits for on it ends unknown.
    down: CancellationToken,
}

impl Node {
    /// Whether its core writes (it leads and took over): `Replicated::writes`.
    fn writes(&self) -> bool {
        self.replica.core.lock().writer.is_some()
    }

    fn leads(&self) -> bool {
        self.replica.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Its join is complete (`Replica::joined`).
    fn joined(&self) -> bool {
        self.replica.joined()
    }

    fn voters(&self) -> BTreeSet<NodeId> {
        self.replica
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }
}

/// What a client was answered, as far as the simulation knows.
#[derive(Debug)]
enum Answer {
    /// A definite answer: status and body.
    Done(u16, Value),
    /// Refused before anything was executed: no effect.
    Refused(String),
    /// It may or may not have taken effect.
    Unknown(String),
}

/// The fault schedule's and the history's shared state.
struct Sim {
    network: ChannelNetwork,
    hosts: Vec<TestHost>,
    /// Each slot's running start, `None` while it is down.
    slots: Mutex<Vec<Option<Arc<Node>>>>,
    /// Every start's socket (removed at the end).
    sockets: Mutex<Vec<std::path::PathBuf>>,
    next_id: AtomicU64,
    started: Instant,
    trace: Arc<Mutex<Vec<String>>>,
    /// Every (term, leader) seen.
    leaders: Mutex<BTreeSet<(u64, NodeId)>>,
    faults: Mutex<BTreeMap<Fault, usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sim {
    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn note(&self, line: String) {
        let at = self.started.elapsed().as_millis();
        lock(&self.trace).push(format!("{at:>7} ms  {line}"));
    }

    fn slot(&self, slot: usize) -> Option<Arc<Node>> {
        lock(&self.slots)[slot].clone()
    }

    fn node(&self, id: NodeId) -> Option<Arc<Node>> {
        lock(&self.slots)
            .iter()
            .flatten()
            .find(|n| n.id == id)
            .cloned()
    }

    fn running(&self) -> Vec<Arc<Node>> {
        lock(&self.slots).iter().flatten().cloned().collect()
    }

    /// The replica that leads (of the latest term, if two believe they do).
    fn leader(&self) -> Option<Arc<Node>> {
        self.running()
            .into_iter()
            .filter(|n| n.leads())
            .max_by_key(|n| n.replica.raft.metrics().borrow().current_term)
    }

    /// Every slot runs and is a voter under its running id, in the leader's view.
    fn settled(&self) -> bool {
        let slots = lock(&self.slots).clone();
        let Some(ids) = slots
            .iter()
            .map(|n| n.as_ref().map(|n| n.id))
            .collect::<Option<BTreeSet<NodeId>>>()
        else {
            return false;
        };
        self.leader().is_some_and(|l| l.voters() == ids)
    }

    /// Every running replica's view: id, slot, role, term, leader, voters, learners, whether
    /// its core writes, applied index and revisions (for a failure's report).
    fn describe(&self) -> String {
        self.running()
            .iter()
            .map(|n| {
                let m = n.replica.raft.metrics().borrow().clone();
                let membership = m.membership_config.membership();
                format!(
                    "[{} slot {}: {:?} ({:?}) term {} leader {:?} voters {:?} learners {:?} writes {} last log {:?} applied {:?} revision {} visible {} replication {:?}]",
                    n.id,
                    n.slot,
                    m.state,
                    m.running_state,
                    m.current_term,
                    m.current_leader,
                    membership.get_joint_config(),
                    membership.learner_ids().collect::<Vec<_>>(),
                    n.writes(),
                    m.last_log_index,
                    m.last_applied.map(|l| l.index),
                    n.replica.core.lock().cluster.store().revision(),
                    n.replica.core.progress().borrow().revision,
                    m.replication,
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// [`Sim::describe`], and whether each replica's openraft core still answers.
    async fn report(&self) -> String {
        let mut answering = Vec::new();
        for node in self.running() {
            let answers = tokio::time::timeout(
                Duration::from_secs(1),
                node.replica.raft.with_raft_state(|_| ()),
            )
            .await;
            answering.push(format!(
                "{} {:?}",
                node.id,
                answers.map_err(|_| "no answer")
            ));
        }
        format!("{} cores answering: {answering:?}", self.describe())
    }

    /// Starts slot `slot` from its sealed log under a new id.
    async fn start(self: &Arc<Self>, slot: u8) -> Arc<Node> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (store, _task) =
            crate::durable::test_host::serve(self.hosts[usize::from(slot)].clone());
        let crate::log_sink::SinkAddr::Unix(socket) = &store else {
            unreachable!("the test host listens on a Unix socket")
        };
        let socket = socket.clone();
        lock(&self.sockets).push(socket);
        let log = SealedLog::open(store, sealing_keys(), id, 4 << 10)
            .await
            .expect("the sealed log opens");
        let core = ReplicaCore::new(config(), [id as u8; 32], crate::server::now());
        // As `Replicated::start`: snapshots are not sealed yet, the log is kept whole.
        let raft_config = openraft::Config {
            snapshot_policy: openraft::SnapshotPolicy::Never,
            ..super::types::raft_config().expect("valid")
        }
        .validate()
        .expect("valid");
        let replica = Replica::start_with(id, raft_config, log, self.network.from(id), core)
            .await
            .expect("the replica starts");
        self.network.insert(id, replica.raft.clone());
        let node = Arc::new(Node {
            id,
            slot,
            reads: ReadRounds::start(confirm_as(Arc::downgrade(self), id)),
            replica,
            down: CancellationToken::new(),
        });
        let sim = Arc::downgrade(self);
        let mut metrics = node.replica.raft.metrics();
        tokio::spawn(async move {
            loop {
                let seen = {
                    let m = metrics.borrow_and_update();
                    (m.state == ServerState::Leader).then_some((m.current_term, m.id))
                };
                if let (Some(seen), Some(sim)) = (seen, sim.upgrade()) {
                    lock(&sim.leaders).insert(seen);
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        node
    }

    /// Crashes slot `slot`'s start: its clients' calls end unknown, nobody reaches it, its
    /// host keeps its sealed log.
    async fn crash(&self, slot: usize) -> Option<NodeId> {
        let node = lock(&self.slots)[slot].take()?;
        node.down.cancel();
        self.network.remove(node.id);
        let _ = node.replica.shutdown().await;
        Some(node.id)
    }

    /// Starts slot `slot` again under a new id; it joins as `serving.rs`'s replicas do.
    async fn restart(self: &Arc<Self>, slot: usize) {
        let node = self.start(slot as u8).await;
        self.note(format!("slot {slot} starts again as {}", node.id));
        lock(&self.slots)[slot] = Some(node.clone());
        tokio::spawn(join(self.clone(), node));
    }
}

/// A read index round of `id` (while it runs): `Replicated::confirm`.
fn confirm_as(sim: Weak<Sim>, id: NodeId) -> Confirm {
    Box::new(move || {
        let sim = sim.clone();
        Box::pin(async move {
            let sim = sim.upgrade().ok_or("the simulation ended")?;
            let node = sim.node(id).ok_or("the replica stopped")?;
            confirm(&sim, &node).await
        })
    })
}

async fn confirm(sim: &Sim, node: &Node) -> Result<u64, String> {
    let raft = &node.replica.raft;
    if node.leads() {
        return match tokio::time::timeout(READ_INDEX_WAIT, raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => Ok(read.map_or(0, |l| l.index)),
            Ok(Err(e)) => Err(format!("this replica no longer leads: {e}")),
            Err(_) => Err("the leader could not confirm it still leads".into()),
        };
    }
    let leader = known_leader(node).ok_or("no leader known")?;
    let asked = call_peer(sim, node, leader, READ_INDEX_WAIT, |target| async move {
        Ok(read_index(&target).await)
    })
    .await
    .map_err(|e| format!("the leader gave no read index: {e}"))?;
    asked.ok_or_else(|| "the replica asked no longer leads".to_string())
}

/// On the leader: a read index for a follower's reads (`Replicated::read_index`).
async fn read_index(node: &Node) -> Option<u64> {
    if !node.leads() {
        return None;
    }
    tokio::time::timeout(READ_INDEX_WAIT, node.reads.index())
        .await
        .ok()?
        .ok()
}

/// The leader `node` knows of, if it is a member (`Replicated::leader`).
fn known_leader(node: &Node) -> Option<NodeId> {
    let metrics = node.replica.raft.metrics();
    let metrics = metrics.borrow();
    let leader = metrics.current_leader?;
    metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|_| leader)
}

/// Why a call to a peer got no answer.
#[derive(Debug)]
enum PeerError {
    /// The request never reached the peer.
    NotDelivered(String),
    /// It reached the peer, whose answer never came back (lost, crashed, timed out).
    NoAnswer(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::NotDelivered(why) => write!(f, "not delivered: {why}"),
            PeerError::NoAnswer(why) => write!(f, "no answer: {why}"),
        }
    }
}

/// `from` asks peer `to` over the network (as the mesh's calls): the request travels, `serve`
/// runs on the peer unless it crashes, the answer travels back; all within `wait`.
async fn call_peer<T, F, Fut>(
    sim: &Sim,
    from: &Node,
    to: NodeId,
    wait: Duration,
    serve: F,
) -> Result<T, PeerError>
where
    F: FnOnce(Arc<Node>) -> Fut,
    Fut: std::future::Future<Output = Result<T, PeerError>>,
{
    let network = sim.network.from(from.id);
    let call = async {
        network
            .send(to)
            .await
            .map_err(|e| PeerError::NotDelivered(e.to_string()))?;
        let target = sim
            .node(to)
            .ok_or_else(|| PeerError::NotDelivered("the peer is down".into()))?;
        let down = target.down.clone();
        let answer = tokio::select! {
            answer = serve(target) => answer?,
            () = down.cancelled() => return Err(PeerError::NoAnswer("the peer crashed".into())),
        };
        network
            .reply(to)
            .await
            .map_err(|e| PeerError::NoAnswer(e.to_string()))?;
        Ok(answer)
    };
    let answer = tokio::time::timeout(wait, call)
        .await
        .map_err(|_| PeerError::NoAnswer("timed out".into()))?;
    // The caller crashing meanwhile loses the answer too.
    if from.down.is_cancelled() {
        return Err(PeerError::NoAnswer("the caller crashed".into()));
    }
    answer
}

/// What a replica answers the admin token's `method path body` (as `tests::call`), with what
/// `server::call_core` reports: the journal count after it, whether it wrote, and the revision
/// its answer shows.
fn execute_on_core(
    core: &ReplicaCore,
    method: Method,
    path: &str,
    body: &[u8],
) -> (u16, Value, u64, bool, Option<u64>) {
    let auth = format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/json");
    req.body = body;
    let mut state = core.lock();
    let before = state.cluster.journaled();
    let response = state
        .cluster
        .handle_request(crate::server::now(), &req)
        .into_response()
        .expect("a ConfigMap call is answered at once");
    let journaled = state.cluster.journaled();
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        journaled,
        journaled > before,
        response.shows_revision,
    )
}

/// A request served where it arrived (`server::handle` after routing): core executes it, the
/// driver is woken, and on the writer the answer waits until what it wrote, or shows, is
/// committed (`Replicated::wait_committed`), unless it shows only a visible revision.
async fn execute(node: &Node, method: Method, path: &str, body: &[u8]) -> Answer {
    let core = &node.replica.core;
    let (status, value, journaled, wrote, shows) = execute_on_core(core, method, path, body);
    if wrote {
        core.wake.notify_one();
    } else if status == 429 || status >= 500 {
        return Answer::Refused(format!("{status} {}", value["message"]));
    }
    let shown_durable = !wrote && shows.is_some_and(|shown| shown <= core.ring().newest_visible());
    if !shown_durable
        && node.writes()
        && !matches!(
            tokio::time::timeout(COMMIT_WAIT, core.wait_committed(journaled)).await,
            Ok(true)
        )
    {
        return Answer::Unknown(
            "the leader changed before this request's writes were committed".into(),
        );
    }
    // A write that wrote nothing was answered from this replica's state: it waits for a read
    // index as a read does (`Replicated::before_answering`); refused then, it had no effect.
    if !wrote
        && method != Method::Get
        && let Err(why) = read_barrier(node).await
    {
        return Answer::Refused(why);
    }
    Answer::Done(status, value)
}

/// What a replica does with a client's request (`server::handle`, `Replicated::route`): a
/// read waits for the read index, a write on the writer is served here, a write elsewhere is
/// forwarded to the leader.
async fn serve(sim: &Sim, node: &Node, method: Method, path: &str, body: &[u8]) -> Answer {
    let work = async {
        if method == Method::Get {
            if let Err(why) = read_barrier(node).await {
                return Answer::Refused(why);
            }
            return execute(node, method, path, body).await;
        }
        if node.writes() {
            return execute(node, method, path, body).await;
        }
        let Some(leader) = known_leader(node) else {
            return Answer::Refused("no leader known".into());
        };
        if leader == node.id {
            return Answer::Refused("leading, not writing yet".into());
        }
        let forwarded = call_peer(sim, node, leader, FORWARD_WAIT, |target| async move {
            // `Replicated::answer_forwarded`.
            Ok(if target.writes() {
                execute(&target, method, path, body).await
            } else {
                Answer::Refused("the peer asked does not write".into())
            })
        })
        .await;
        match forwarded {
            Ok(answer) => answer,
            Err(PeerError::NotDelivered(why)) => Answer::Refused(why),
            Err(PeerError::NoAnswer(why)) => {
                Answer::Unknown(format!("forwarded to the leader: {why}"))
            }
        }
    };
    let down = node.down.clone();
    let answer = tokio::select! {
        answer = work => answer,
        () = down.cancelled() => Answer::Unknown("the replica crashed".into()),
    };
    // The replica crashing before the answer left loses it.
    if node.down.is_cancelled() && !matches!(answer, Answer::Refused(_)) {
        return Answer::Unknown("the replica crashed".into());
    }
    answer
}

/// Waits until `node` applied everything committed when the read arrived (the serving
/// code's own barrier, `ReadRounds::barrier`).
async fn read_barrier(node: &Node) -> Result<(), String> {
    node.reads
        .barrier(&node.replica.raft, READ_INDEX_WAIT)
        .await
}

/// The leader's answer to a join (`serving::JoinAnswer`).
enum JoinAnswer {
    Joined,
    NotLeader,
    Refused,
}

/// A restarted slot asks its peers until the leader made it a voter (`Replicated::join`).
async fn join(sim: Arc<Sim>, node: Arc<Node>) {
    loop {
        if node.down.is_cancelled() {
            return;
        }
        if node.joined() {
            sim.note(format!("{} is slot {}'s voter", node.id, node.slot));
            return;
        }
        // Elected while its change was cut short, it finishes it itself (`Replicated::join`).
        if node.leads() {
            let _ = admit(&node, node.id, node.slot).await;
            tokio::time::sleep(ASK_AGAIN).await;
            continue;
        }
        for other in sim.running().into_iter().filter(|o| o.slot != node.slot) {
            let (id, slot) = (node.id, node.slot);
            let answer = call_peer(&sim, &node, other.id, JOIN_WAIT, |target| async move {
                Ok(admit(&target, id, slot).await)
            })
            .await;
            if let Ok(JoinAnswer::Joined) = answer {
                break;
            }
        }
        tokio::time::sleep(ASK_AGAIN).await;
    }
}

/// On the leader: adds the replica as a learner, waits for it to catch up, and makes it its
/// slot's voter in place of the slot's earlier one (`Replicated::admit`).
async fn admit(leader: &Node, id: NodeId, slot: u8) -> JoinAnswer {
    let raft = &leader.replica.raft;
    if !leader.leads() {
        return JoinAnswer::NotLeader;
    }
    match promote(raft, id, member(slot), CATCH_UP_WAIT).await {
        Ok(()) => JoinAnswer::Joined,
        Err(_) => JoinAnswer::Refused,
    }
}

fn rv_of(body: &Value) -> Option<u64> {
    body["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

/// What one client recorded.
#[derive(Default)]
struct ClientLog {
    ops: Vec<Op>,
    refused: usize,
    /// Answers that are neither the expected success nor 404/409.
    other: Vec<String>,
}

/// One client: `ops` random operations on `keys` ConfigMaps against random replicas.
async fn client(sim: Arc<Sim>, id: usize, seed: u64, ops: usize, keys: u64) -> ClientLog {
    let mut rng = Rng(seed);
    let mut log = ClientLog::default();
    let mut known_rv: BTreeMap<String, u64> = BTreeMap::new();
    for seq in 1..=ops {
        tokio::time::sleep(rng.millis(0, 250)).await;
        let key = format!("k{}", rng.below(keys));
        let value = format!("c{id}-{seq}");
        let object = |rv: Option<u64>| {
            let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": key}, "data": {"v": value}});
            if let Some(rv) = rv {
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
            }
            serde_json::to_vec(&o).expect("json")
        };
        let item = format!("{COLLECTION}/{key}");
        let (call, method, path, body) = match rng.below(100) {
            0..25 => (
                Call::Create {
                    value: value.clone(),
                },
                Method::Post,
                COLLECTION.to_string(),
                object(None),
            ),
            25..60 if known_rv.contains_key(&key) => {
                // Mostly the last resourceVersion this client saw, sometimes an older one.
                let precondition = known_rv[&key].saturating_sub(u64::from(rng.below(8) == 0));
                (
                    Call::Update {
                        value: value.clone(),
                        precondition,
                    },
                    Method::Put,
                    item,
                    object(Some(precondition)),
                )
            }
            60..75 => (Call::Delete, Method::Delete, item, Vec::new()),
            _ => (Call::Get, Method::Get, item, Vec::new()),
        };
        let slot = rng.below(3) as usize;
        let Some(node) = sim.slot(slot) else {
            // Connection refused: nothing happened.
            log.refused += 1;
            continue;
        };
        let invoked_at = sim.now();
        let answer = serve(&sim, &node, method, &path, &body).await;
        let returned_at = sim.now();
        let result = match (&call, &answer) {
            (_, Answer::Refused(why)) => {
                sim.note(format!(
                    "client {id} on {} (slot {slot}): {call:?} {key} refused ({why})",
                    node.id
                ));
                log.refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            (_, Answer::Unknown(_)) => None,
            (Call::Create { .. }, Answer::Done(201, body)) => {
                rv_of(body).map(|rv| Outcome::Created { rv })
            }
            (Call::Update { .. }, Answer::Done(200, body)) => {
                rv_of(body).map(|rv| Outcome::Updated { rv })
            }
            (Call::Delete, Answer::Done(200 | 202, _)) => Some(Outcome::Deleted),
            (Call::Get, Answer::Done(200, body)) => rv_of(body).map(|rv| Outcome::Found {
                value: body["data"]["v"].as_str().unwrap_or_default().to_string(),
                rv,
            }),
            (Call::Create { .. } | Call::Update { .. }, Answer::Done(409, _)) => {
                Some(Outcome::Conflict)
            }
            (Call::Update { .. } | Call::Delete | Call::Get, Answer::Done(404, _)) => {
                Some(Outcome::NotFound)
            }
            (_, Answer::Done(status, body)) => {
                log.other
                    .push(format!("{call:?} -> {status} {}", body["message"]));
                None
            }
        };
        sim.note(format!(
            "client {id} on {} (slot {slot}): {call:?} {key} -> {}",
            node.id,
            match (&answer, &result) {
                (Answer::Unknown(why), _) => format!("unknown ({why})"),
                (_, Some(result)) => format!("{result:?}"),
                (Answer::Done(status, _), None) => format!("status {status}"),
                _ => String::new(),
            }
        ));
        match &result {
            Some(Outcome::Created { rv } | Outcome::Updated { rv } | Outcome::Found { rv, .. }) => {
                known_rv.insert(key.clone(), *rv);
            }
            Some(Outcome::Deleted | Outcome::NotFound) => {
                known_rv.remove(&key);
            }
            _ => {}
        }
        let unknown = result.is_none();
        log.ops.push(Op {
            client: id,
            key,
            call,
            result: result.clone().unwrap_or(Outcome::Unknown),
            invoked_at,
            returned_at: result.map(|_| returned_at),
        });
        if unknown {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    log
}

/// Two distinct running replicas, or `None`.
fn two(rng: &mut Rng, running: &[Arc<Node>]) -> Option<(NodeId, NodeId)> {
    if running.len() < 2 {
        return None;
    }
    let a = rng.below(running.len() as u64) as usize;
    let b = (a + 1 + rng.below(running.len() as u64 - 1) as usize) % running.len();
    Some((running[a].id, running[b].id))
}

/// Strikes faults drawn from `rng` until `stop`; a crashed replica starts again within the
/// same step, and a crash waits until every slot is a voter again (the cluster survives one
/// failure at a time: two slots restarted under new ids before either joined would leave one
/// of three voters).
async fn nemesis(sim: Arc<Sim>, mut rng: Rng, kinds: Vec<Fault>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(rng.millis(50, 700)).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let kind = rng.pick(&kinds);
        let running = sim.running();
        let leader = sim.leader();
        let done = match kind {
            Fault::CrashLeader | Fault::CrashFollower if sim.settled() => {
                let Some(leader) = leader else { continue };
                let slot = if kind == Fault::CrashLeader {
                    usize::from(leader.slot)
                } else {
                    (usize::from(leader.slot) + 1 + rng.below(2) as usize) % 3
                };
                let down = rng.millis(50, 1500);
                let id = sim.crash(slot).await.unwrap_or_default();
                sim.note(format!(
                    "{}: slot {slot} ({id}) down for {} ms",
                    kind.name(),
                    down.as_millis()
                ));
                tokio::time::sleep(down).await;
                sim.restart(slot).await;
                true
            }
            Fault::IsolateLeader => match leader {
                Some(leader) => {
                    sim.network.isolate(leader.id);
                    sim.note(format!("{}: {}", kind.name(), leader.id));
                    true
                }
                None => false,
            },
            Fault::CutOneWay => match two(&mut rng, &running) {
                Some((a, b)) => {
                    sim.network.cut(a, b);
                    sim.note(format!("{}: {a} -> {b}", kind.name()));
                    true
                }
                None => false,
            },
            Fault::MuteAnswers => match two(&mut rng, &running) {
                Some((a, b)) => {
                    sim.network.lose_answers(a, b);
                    sim.note(format!("{}: {a} -> {b} answers lost", kind.name()));
                    true
                }
                None => false,
            },
            Fault::Delay => {
                let (low, high) = (rng.between(0, 20), rng.between(20, 150));
                let all = rng.below(2) == 0;
                for a in &running {
                    for b in &running {
                        if a.id != b.id && (all || rng.below(3) == 0) {
                            sim.network.slow(
                                a.id,
                                b.id,
                                Duration::from_millis(low),
                                Duration::from_millis(high),
                            );
                        }
                    }
                }
                sim.note(format!(
                    "{}: {low}-{high} ms on {} links",
                    kind.name(),
                    if all { "all" } else { "some" }
                ));
                true
            }
            Fault::Loss => match two(&mut rng, &running) {
                Some((a, b)) => {
                    let per_mille = rng.between(50, 400) as u32;
                    sim.network.lossy(a, b, per_mille);
                    sim.network.lossy(b, a, per_mille);
                    sim.note(format!("{}: {a} <-> {b} {per_mille}/1000", kind.name()));
                    true
                }
                None => false,
            },
            Fault::Heal => {
                sim.network.heal();
                sim.note("heal".into());
                true
            }
            Fault::CrashLeader | Fault::CrashFollower => false,
        };
        if done {
            *lock(&sim.faults).entry(kind).or_default() += 1;
        }
    }
}

/// What one schedule did.
#[derive(Default)]
struct Figures {
    ops: usize,
    unknown: usize,
    refused: usize,
    faults: BTreeMap<Fault, usize>,
    leader_changes: usize,
    virtual_ms: u128,
    other: Vec<String>,
}

/// Runs schedule `seed` in a paused current-thread runtime; the trace is left in `trace`.
fn run_schedule(
    seed: u64,
    kinds: &[Fault],
    trace: Arc<Mutex<Vec<String>>>,
) -> Result<Figures, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    let kinds = kinds.to_vec();
    runtime.block_on(async move {
        match tokio::time::timeout(SCHEDULE_LIMIT, schedule(seed, kinds, trace)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the schedule did not end within {} s of virtual time",
                SCHEDULE_LIMIT.as_secs()
            )),
        }
    })
}

async fn schedule(
    seed: u64,
    kinds: Vec<Fault>,
    trace: Arc<Mutex<Vec<String>>>,
) -> Result<Figures, String> {
    let mut rng = Rng(seed);
    let sim = Arc::new(Sim {
        network: ChannelNetwork::seeded(rng.next()),
        hosts: (0..3).map(|_| TestHost::default()).collect(),
        slots: Mutex::new(vec![None, None, None]),
        sockets: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(1),
        started: Instant::now(),
        trace,
        leaders: Mutex::new(BTreeSet::new()),
        faults: Mutex::new(BTreeMap::new()),
    });
    let result = run(&sim, &mut rng, kinds).await;
    for node in sim.running() {
        let _ = node.replica.shutdown().await;
    }
    for socket in lock(&sim.sockets).iter() {
        let _ = std::fs::remove_file(socket);
    }
    result
}

async fn run(sim: &Arc<Sim>, rng: &mut Rng, kinds: Vec<Fault>) -> Result<Figures, String> {
    for slot in 0..3u8 {
        let node = sim.start(slot).await;
        lock(&sim.slots)[usize::from(slot)] = Some(node);
    }
    let first = sim.slot(0).expect("started");
    let members = (0..3u8)
        .map(|slot| {
            (
                sim.slot(usize::from(slot)).expect("started").id,
                member(slot),
            )
        })
        .collect::<BTreeMap<_, _>>();
    first
        .replica
        .raft
        .initialize(members)
        .await
        .map_err(|e| format!("initialize: {e}"))?;
    wait_until("a first leader writes", || {
        sim.leader().is_some_and(|l| l.writes())
    })
    .await?;

    let clients = rng.between(3, 4) as usize;
    let keys = rng.between(2, 4);
    let stop = Arc::new(AtomicBool::new(false));
    let nemesis = tokio::spawn(nemesis(sim.clone(), Rng(rng.next()), kinds, stop.clone()));
    let mut tasks = Vec::new();
    for id in 0..clients {
        let ops = rng.between(8, 15) as usize;
        tasks.push(tokio::spawn(client(sim.clone(), id, rng.next(), ops, keys)));
    }
    let mut figures = Figures::default();
    let mut history = Vec::new();
    for task in tasks {
        let log = task.await.map_err(|e| format!("a client failed: {e}"))?;
        figures.refused += log.refused;
        figures.other.extend(log.other);
        history.extend(log.ops);
    }
    stop.store(true, Ordering::Relaxed);
    nemesis
        .await
        .map_err(|e| format!("the nemesis failed: {e}"))?;

    // Heal: every link mended, every slot a voter, everything applied everywhere.
    sim.network.heal();
    sim.note("the end: heal".into());
    settle(sim).await?;

    // What every replica holds at the end, read as one more client.
    for node in sim.running() {
        for key in 0..keys {
            let at = sim.now();
            let (status, value, ..) = execute_on_core(
                &node.replica.core,
                Method::Get,
                &format!("{COLLECTION}/k{key}"),
                b"",
            );
            let result = match (status, rv_of(&value)) {
                (200, Some(rv)) => Outcome::Found {
                    value: value["data"]["v"].as_str().unwrap_or_default().to_string(),
                    rv,
                },
                (404, _) => Outcome::NotFound,
                _ => {
                    return Err(format!(
                        "the final read of k{key} on {}: {status} {value}",
                        node.id
                    ));
                }
            };
            history.push(Op {
                client: 100 + usize::from(node.slot),
                key: format!("k{key}"),
                call: Call::Get,
                result,
                invoked_at: at,
                returned_at: Some(at),
            });
        }
    }

    figures.ops = history.len();
    figures.unknown = history.iter().filter(|op| op.is_unknown()).count();
    figures.faults = lock(&sim.faults).clone();
    figures.leader_changes = lock(&sim.leaders).len().saturating_sub(1);
    figures.virtual_ms = sim.started.elapsed().as_millis();
    if let Err(violation) = linearizability::check(&history) {
        return Err(format!("the history is not linearizable: {violation}"));
    }
    Ok(figures)
}

/// After healing: waits until every slot is a voter and one leader writes, has it write once
/// more, and waits until every replica applied that write and holds what the leader holds
/// (`tests::agree`). The healed cluster may still elect again (a replica cut off meanwhile
/// campaigned in a later term): the leader is then found again.
async fn settle(sim: &Arc<Sim>) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..20 {
        let ready = wait_until("every slot is a voter and the leader writes", || {
            sim.settled() && sim.leader().is_some_and(|l| l.writes())
        })
        .await;
        if let Err(e) = ready {
            return Err(format!("{e}: {}", sim.report().await));
        }
        let leader = sim.leader().ok_or("no leader")?;
        // A write of the last writer that every replica applies: a former writer holding
        // writes that never committed rebuilds when it comes, and the leader's store then
        // holds nothing uncommitted (its take-over's revision jump included).
        let body = format!(r#"{{"metadata":{{"name":"the-end-{attempt}"}}}}"#);
        match execute(&leader, Method::Post, COLLECTION, body.as_bytes()).await {
            Answer::Done(201, _) => {}
            other => {
                last = format!(
                    "the last write on {}: {other:?}; {}",
                    leader.id,
                    sim.report().await
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let others: Vec<Arc<Node>> = sim
            .running()
            .into_iter()
            .filter(|n| n.id != leader.id)
            .collect();
        let agreed = wait_for(Duration::from_secs(20), "", || {
            let core = &leader.replica.core;
            let revision = core.lock().cluster.store().revision();
            leader.writes()
                && core.progress().borrow().revision == revision
                && others.iter().all(|other| {
                    let core = &other.replica.core;
                    core.progress().borrow().revision == revision
                        && core.lock().cluster.store().revision() == revision
                })
        })
        .await;
        if agreed.is_err() {
            let revision = |n: &Node| {
                format!(
                    "{} holds {} (visible {})",
                    n.id,
                    n.replica.core.lock().cluster.store().revision(),
                    n.replica.core.progress().borrow().revision
                )
            };
            last = format!(
                "the replicas did not reach the leader's revision: leader {}, {}; {}",
                revision(&leader),
                others
                    .iter()
                    .map(|o| revision(o))
                    .collect::<Vec<_>>()
                    .join(", "),
                sim.report().await
            );
            continue;
        }
        // Everything holds at this instant, and `agree` checks it before anything can run.
        agree(
            &leader.replica,
            &others.iter().map(|n| &n.replica).collect::<Vec<_>>(),
        )
        .await;
        return Ok(());
    }
    Err(format!("the healed cluster did not settle: {last}"))
}

/// Waits (in virtual time) until `done`, or fails naming `what`.
async fn wait_until(what: &str, done: impl FnMut() -> bool) -> Result<(), String> {
    wait_for(SETTLE_WAIT, what, done).await
}

/// Waits (in virtual time) until `done`, at most `limit`.
async fn wait_for(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if PANICS.with(|p| !p.borrow().is_empty()) {
            return Err(format!("a task panicked while waiting: {what}"));
        }
        if Instant::now() > deadline {
            return Err(format!("not within {} s: {what}", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The fault kinds to draw from: `NAUTILUS_SIM_FAULTS` (`all`, or kind names separated by
/// commas), else every kind not [`Fault::off_by_default`].
fn fault_kinds() -> Vec<Fault> {
    match std::env::var("NAUTILUS_SIM_FAULTS") {
        Ok(list) if list == "all" => Fault::ALL.to_vec(),
        Ok(list) => list
            .split(',')
            .map(|name| {
                Fault::ALL
                    .into_iter()
                    .find(|k| k.name() == name.trim())
                    .unwrap_or_else(|| panic!("NAUTILUS_SIM_FAULTS: no fault kind {name:?}"))
            })
            .collect(),
        Err(_) => Fault::ALL
            .into_iter()
            .filter(|k| !k.off_by_default())
            .collect(),
    }
}

thread_local! {
    /// Panics on this thread since the last look: a schedule's tasks all run on its thread,
    /// and tokio catches a task's panic (openraft's core then just stops answering).
    static PANICS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records every panic's message and place in [`PANICS`], then reports it as before.
fn record_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| {
                    info.payload()
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                })
                .unwrap_or_default();
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANICS.with(|p| p.borrow_mut().push(format!("{message} (at {place})")));
            previous(info);
        }));
    });
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

#[test]
fn randomized_fault_schedules_stay_linearizable_and_agree() {
    if let Ok(filter) = std::env::var("NAUTILUS_SIM_LOG") {
        // Replaying a seed with openraft's and the replicas' logs (e.g. `openraft=debug`).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    // The other multi-replica tests run on the wall clock: this one's busy core would make
    // their elections spurious.
    let _serial = SERIAL.blocking_lock();
    record_panics();
    let kinds = fault_kinds();
    let seeds: Vec<u64> = match env_number("NAUTILUS_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("NAUTILUS_SIM_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES)).collect(),
    };
    let started = std::time::Instant::now();
    let mut total = Figures::default();
    let mut walls: Vec<Duration> = Vec::new();
    let mut failed = Vec::new();
    for &seed in &seeds {
        let trace = Arc::new(Mutex::new(Vec::new()));
        let began = std::time::Instant::now();
        PANICS.with(|p| p.borrow_mut().clear());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_schedule(seed, &kinds, trace.clone())
        }))
        .unwrap_or_else(|panic| {
            Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "a panic".into()))
        });
        walls.push(began.elapsed());
        // A task that panicked (a replica's RaftCore, its driver) fails the schedule even if
        // the checks passed.
        let panics = PANICS.with(|p| std::mem::take(&mut *p.borrow_mut()));
        let outcome = match outcome {
            Ok(_) if !panics.is_empty() => Err(format!("a task panicked: {panics:?}")),
            Err(why) if !panics.is_empty() => Err(format!("{why}; panics: {panics:?}")),
            outcome => outcome,
        };
        match outcome {
            Ok(figures) => {
                total.ops += figures.ops;
                total.unknown += figures.unknown;
                total.refused += figures.refused;
                total.leader_changes += figures.leader_changes;
                total.virtual_ms += figures.virtual_ms;
                for (kind, n) in figures.faults {
                    *total.faults.entry(kind).or_default() += n;
                }
                total.other.extend(figures.other);
            }
            Err(why) => {
                println!("sim: seed {seed} FAILED: {why}\n  trace:");
                for line in lock(&trace).iter() {
                    println!("    {line}");
                }
                failed.push(seed);
            }
        }
    }
    let wall = started.elapsed();
    walls.sort();
    let schedules = seeds.len();
    println!(
        "sim: {schedules} schedules (fault kinds: {}) in {:.1} s (per schedule: mean {} ms, median {} ms, max {} ms of wall time; mean {} ms of virtual time)",
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        wall.as_secs_f64(),
        wall.as_millis() / schedules.max(1) as u128,
        walls.get(walls.len() / 2).map_or(0, Duration::as_millis),
        walls.last().map_or(0, Duration::as_millis),
        total.virtual_ms / schedules.max(1) as u128,
    );
    println!(
        "sim: {} ops ({} unknown, {} more refused before taking effect and left out), {} leader changes, faults: {}",
        total.ops,
        total.unknown,
        total.refused,
        total.leader_changes,
        total
            .faults
            .iter()
            .map(|(kind, n)| format!("{} {n}", kind.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !total.other.is_empty() {
        println!("sim: other answers: {:?}", total.other);
    }
    assert!(failed.is_empty(), "schedules failed: seeds {failed:?}");
}
