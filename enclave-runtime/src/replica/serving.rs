//! Serving as one replica of several (issue 17, design §2.3, §4, §5): how a replica starts
//! (its mesh identity, the cluster key's blobs from a peer, its sealed log, then bootstrap or
//! join), and what it does for clients beyond what a lone enclave does: a write reaching a
//! follower is forwarded to the leader over the attested mesh and answered from there, a read
//! first waits for a read index from the leader (so it is linearizable), a write is answered
//! once a majority holds it, and `/readyz?verbose` names the role.
//!
//! Ids are never reused: every start draws a new one (its slot in the top byte), and a replica
//! that restarts joins again as a learner that replaces its slot's old voter once it has
//! caught up. Only the replica started with `--replica-bootstrap` on an empty log makes a new
//! cluster, and only once a majority of the slots say they hold none (a store that came back
//! empty must not make a second cluster beside the real one). When no peer leads, the voters
//! keep their sealed ids (a cold start). Not yet: sealed snapshots (the log is kept whole; a
//! restart replays it) and leader timers' monotonic clock across failovers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use anyhow::Context as _;
use nautilus_core::Error;
use openraft::ServerState;
use openraft::storage::RaftLogStorage as _;
use serde::{Deserialize, Serialize};

use super::Replica;
use super::log_store::{SealedLog, TAIL_BYTES};
use super::mesh::{Admission, FrameError, Kind, MeshEndpoint, PeerTls, decode, encode};
use super::network::{Mesh, PeerAnswer, PeerRequests};
use super::read_index::{Confirm, ReadRounds};
use super::state_machine::ReplicaCore;
use super::types::{Member, NodeId};
use crate::cli::Cli;
use crate::log_sink::SinkAddr;
use crate::nsm::Nsm;
use crate::server::Shared;
use crate::transport::Listener;

/// How long a joining replica waits for the leader to catch it up and promote it.
pub(super) const JOIN_WAIT: Duration = Duration::from_secs(120);
/// Pause between two rounds of asking the peers (for the key, to join).
pub(super) const ASK_AGAIN: Duration = Duration::from_millis(500);
/// How long a forwarded request may take on the leader (a write waits for its commit).
pub(super) const FORWARD_WAIT: Duration = Duration::from_secs(60);
/// How long a read waits for its read index.
pub(super) const READ_INDEX_WAIT: Duration = Duration::from_secs(5);
/// How long a write waits for its commit before the client is told it may or may not have
/// been applied.
pub(super) const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// The blob holding the id a voter serves under (sealed to its slot).
const REPLICA_ID_BLOB: &str = "replica-id";
/// How long a starting replica waits for each peer's summary.
const SUMMARY_WAIT: Duration = Duration::from_secs(2);

/// Every replica's address but slot `slot`'s.
fn other_addresses(peers: &[String], slot: u8) -> impl Iterator<Item = &str> {
    peers
        .iter()
        .enumerate()
        .filter(move |(i, _)| *i != usize::from(slot))
        .map(|(_, addr)| addr.as_str())
}

/// The top byte of a probe's id: no slot has it.
const PROBE_ID_TOP: u64 = 0xff << 56;

/// 56 random bits of a replica id (the top byte is its slot).
fn draw_id_bits(random: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>) -> anyhow::Result<u64> {
    let mut drawn = [0u8; 8];
    random(&mut drawn)?;
    Ok(u64::from_be_bytes(drawn) & ((1 << 56) - 1))
}

/// Finds which of `peers` is this replica, when every replica runs the same measured
/// configuration (the slot cannot be in it: three slots would be three images with different
/// PCRs): listens on `listen` as `probe` and dials each peer address in turn until the
/// replica that answers, attested, is the probe itself. The slot is a routing label: hosts
/// that route an address elsewhere can confuse it (as they can drop traffic), never make a
/// replica admit a peer its attestation does not admit.
pub(crate) async fn discover_slot(
    probe: Arc<MeshEndpoint>,
    listen: &crate::cli::ListenAddr,
    peers: &[String],
    relay: Option<crate::sui::RelayAddr>,
) -> anyhow::Result<u8> {
    let listener = crate::transport::Listener::bind(listen)?;
    let answering = probe.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok(stream) = listener.accept().await else {
                continue;
            };
            let answering = answering.clone();
            tokio::spawn(async move {
                // The greeting is all a probe needs.
                let _ = answering.accept(stream).await;
            });
        }
    });
    let mesh = Mesh::with_relay(probe.clone(), relay, Vec::new());
    for round in 0u64.. {
        for (slot, addr) in peers.iter().enumerate() {
            if let Ok(peer) = mesh.peer_at(addr, SUMMARY_WAIT).await
                && peer == probe.node_id()
            {
                server.abort();
                let _ = server.await;
                let slot = u8::try_from(slot)?;
                tracing::info!(
                    slot,
                    addr,
                    "this replica's slot: its own peer address answered"
                );
                return Ok(slot);
            }
        }
        if round % 20 == 19 {
            tracing::info!("still looking for this replica's own address among --replica-peer");
        }
        tokio::time::sleep(ASK_AGAIN).await;
    }
    anyhow::bail!("no slot found")
}

/// What a replica tells a starting peer about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PeerSummary {
    /// Its slot, when it leads. Only a leader speaks for a leader: a follower's idea of one
    /// may be its sealed vote's, from before the whole cluster stopped.
    leader: Option<u8>,
    /// Whether its store holds the cluster's key: it is a member of a cluster already made.
    holds_cluster: bool,
}

/// What the peers' summaries say a bootstrapping replica should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BootstrapDecision {
    /// A majority of the slots (this one included) hold no cluster, and none does: make it.
    Make,
    /// A peer holds the cluster (or leads): join it, whatever this replica's store says.
    Join,
    /// Not enough answers yet.
    Wait,
}

/// Decides from the summaries of the peers that answered, out of `slots` slots in all. A
/// store that came back empty (a lost disk, or a host that wiped it or served an older copy)
/// must never make a second cluster beside the real one, so one peer holding the cluster is
/// enough to join, and making one needs a majority that holds none.
fn bootstrap_decision(slots: usize, answers: &[PeerSummary]) -> BootstrapDecision {
    if answers
        .iter()
        .any(|a| a.holds_cluster || a.leader.is_some())
    {
        return BootstrapDecision::Join;
    }
    // This replica counts as one that holds none: it would not ask otherwise.
    if 1 + answers.len() > slots / 2 {
        BootstrapDecision::Make
    } else {
        BootstrapDecision::Wait
    }
}

/// Answers peers while this replica starts, before its raft runs, on the peer listener it
/// keeps for the whole start: whether it holds the cluster (so that a bootstrapping slot 0
/// whose store is empty can tell a new cluster from a lost one); any other request ends the
/// connection (the peer asks again later).
struct StartingServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Listener>,
}

impl StartingServer {
    fn start(endpoint: Arc<MeshEndpoint>, listener: Listener, holds: Arc<AtomicBool>) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return listener,
                    accepted = listener.accept() => accepted,
                };
                let Ok(stream) = accepted else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let endpoint = endpoint.clone();
                let holds = holds.clone();
                tokio::spawn(async move {
                    let Ok(mut link) = endpoint.accept(stream).await else {
                        return;
                    };
                    while let Ok(Some(frame)) = link.receive().await {
                        let summary = PeerSummary {
                            leader: None,
                            holds_cluster: holds.load(Ordering::Acquire),
                        };
                        let answer = match frame.kind {
                            Kind::Summary => encode(&summary),
                            _ => {
                                let why = encode(&"this replica is starting".to_string());
                                let _ = link
                                    .send(Kind::Error, frame.id, &why.unwrap_or_default())
                                    .await;
                                return;
                            }
                        };
                        let Ok(answer) = answer else { return };
                        if link.send(Kind::Answer, frame.id, &answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { stop, task }
    }

    /// Stops answering and hands the listener back, for the replica's own server.
    async fn listener(self) -> anyhow::Result<Listener> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("the starting peer server failed: {e}"))
    }
}

/// A replica's identity for this start, made before the cluster key is known: its id, its
/// slot, its peers' addresses and its side of the mesh.
pub(crate) struct Identity {
    id: NodeId,
    slot: u8,
    peers: Vec<String>,
    /// Whether this replica makes a new cluster ([`Identity::decide_bootstrap`]).
    bootstrap: bool,
    /// Its store holds the cluster key (what it tells starting peers).
    holds_cluster: Arc<AtomicBool>,
    /// The cluster key's blobs its store held at this start ([`Identity::answer_peers`]).
    own_blobs: Option<crate::kms::KeyBlobs>,
    /// Answers peers until the replica's own server takes its listener.
    starting: Option<StartingServer>,
    mesh: Mesh,
    /// What a mesh endpoint under another id is made of (a cold start keeps the old id).
    attestation: Arc<crate::attestation::Attestation>,
    admission: Admission,
    relay: Option<crate::sui::RelayAddr>,
    nsm: Arc<dyn Nsm>,
}

impl Identity {
    /// A new id and a new peer key, attested by `nsm` with the configuration every replica
    /// shares, in `--replica-slot`'s slot, or the slot found by [`discover_slot`] when none is
    /// given (production: every replica runs the same measured configuration).
    pub(crate) async fn new(cli: &Cli, nsm: Arc<dyn Nsm>) -> anyhow::Result<Self> {
        let mut random = |out: &mut [u8]| {
            nsm.random(out)
                .map_err(|e| anyhow::anyhow!("NSM random bytes for the replica: {e}"))
        };
        let attestation = Arc::new(
            crate::attestation::Attestation::new(nsm.clone(), cli.shared_toml(), None)
                .map_err(|e| anyhow::anyhow!("cannot make the replica's attestation: {e}"))?,
        );
        let admission = Admission::new(
            nsm.as_ref(),
            &cli.cluster_id,
            attestation.config_digest(),
            cli.allow_simulated_peers,
        )?;
        if cli.allow_simulated_peers {
            tracing::warn!(
                "--allow-simulated-peers: peers attested by the SIMULATED NSM are admitted (development only)"
            );
        }
        let relay = cli
            .replica_relay
            .as_deref()
            .or(cli.kms_relay())
            .map(str::parse::<crate::sui::RelayAddr>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--replica-relay: {e}"))?;
        let slot = match cli.replica_slot {
            Some(slot) => slot,
            None => {
                let listen = cli
                    .replica_listen
                    .clone()
                    .context("--replica-listen is not given")?;
                let probe = Arc::new(MeshEndpoint::new(
                    PROBE_ID_TOP | draw_id_bits(&mut random)?,
                    u8::MAX,
                    PeerTls::generate(&mut random)?,
                    attestation.clone(),
                    admission.clone(),
                ));
                discover_slot(probe, &listen, &cli.replica_peers, relay.clone()).await?
            }
        };
        anyhow::ensure!(
            cli.replica_peers.len() > usize::from(slot),
            "--replica-peer must name every replica's peer address in slot order; slot {slot} has none"
        );
        let id = (u64::from(slot) << 56) | draw_id_bits(&mut random)?;
        let tls = PeerTls::generate(&mut random)?;
        let endpoint = Arc::new(MeshEndpoint::new(
            id,
            slot,
            tls,
            attestation.clone(),
            admission.clone(),
        ));
        tracing::info!(slot, id = format_args!("{id:#x}"), "replica identity made");
        Ok(Self {
            id,
            slot,
            peers: cli.replica_peers.clone(),
            bootstrap: false,
            holds_cluster: Arc::new(AtomicBool::new(false)),
            own_blobs: None,
            starting: None,
            mesh: Mesh::with_relay(endpoint, relay.clone(), cli.replica_peers.clone()),
            attestation,
            admission,
            relay,
            nsm,
        })
    }

    /// Decides the id this start serves under. A replica restarts under a new id and rejoins
    /// through the leader (design §2.3: its sealed state is a cache, never a vote, so a host
    /// that serves an older copy cannot make it vote twice). When no peer leads
    /// (the whole cluster is starting again), a voter keeps the id sealed in its store, so
    /// that the last configuration can elect from the sealed logs and votes: a cold start,
    /// which trusts the hosts' copies to be the newest (see the README, "Replicas").
    pub(crate) async fn settle_id(
        &mut self,
        store: &SinkAddr,
        keys: &crate::durable::seal::Keys,
    ) -> anyhow::Result<()> {
        let sealed = crate::durable::connect_for_blobs(store)
            .await?
            .get_blob(REPLICA_ID_BLOB)
            .await?;
        let old = sealed
            .and_then(|sealed| keys.open_replica_id(self.slot, &sealed).ok())
            .filter(|id| id >> 56 == u64::from(self.slot));
        let Some(old) = old else {
            return Ok(());
        };
        if let Some(leader) = self.leader_among_peers().await {
            tracing::info!(
                leader_slot = leader,
                new = format_args!("{:#x}", self.id),
                "a peer leads: this replica rejoins under a new id"
            );
            return Ok(());
        }
        tracing::warn!(
            id = format_args!("{old:#x}"),
            "no peer leads: this replica keeps its sealed id and vote, so that the last configuration can elect (a cold start)"
        );
        let mut random = |out: &mut [u8]| {
            self.nsm
                .random(out)
                .map_err(|e| anyhow::anyhow!("NSM random bytes for the replica: {e}"))
        };
        let tls = PeerTls::generate(&mut random)?;
        let endpoint = Arc::new(MeshEndpoint::new(
            old,
            self.slot,
            tls,
            self.attestation.clone(),
            self.admission.clone(),
        ));
        self.id = old;
        self.mesh = Mesh::with_relay(endpoint, self.relay.clone(), self.peers.clone());
        Ok(())
    }

    /// The leader's slot, if a peer that answers leads.
    async fn leader_among_peers(&self) -> Option<u8> {
        self.summaries().await.iter().find_map(|s| s.leader)
    }

    /// The summaries of the other replicas that answer.
    async fn summaries(&self) -> Vec<PeerSummary> {
        let mut answers = Vec::new();
        for addr in self.others() {
            let answer = self
                .mesh
                .call_address(addr, Kind::Summary, &[], SUMMARY_WAIT)
                .await
                .map_err(|e| e.to_string())
                .and_then(|a| decode::<PeerSummary>(&a).map_err(|e| e.to_string()));
            match answer {
                Ok(summary) => answers.push(summary),
                Err(e) => tracing::debug!(peer = addr, error = %e, "no summary from the peer"),
            }
        }
        answers
    }

    /// Starts answering peers on `--replica-listen` while this replica starts: whether its
    /// `store` holds the cluster key, read (once, for [`Self::ensure_key_blobs`] too) before
    /// the first answer.
    pub(crate) async fn answer_peers(&mut self, cli: &Cli, store: &SinkAddr) -> anyhow::Result<()> {
        self.own_blobs = crate::kms::key_blobs(store).await?;
        self.holds_cluster
            .store(self.own_blobs.is_some(), Ordering::Release);
        let listen = cli
            .replica_listen
            .clone()
            .context("--replica-listen is not given")?;
        let listener = Listener::bind(&listen)?;
        self.starting = Some(StartingServer::start(
            self.mesh.endpoint().clone(),
            listener,
            self.holds_cluster.clone(),
        ));
        Ok(())
    }

    /// Decides whether this replica makes a new cluster (when its log turns out empty): only
    /// slot 0 with `--replica-bootstrap` (every replica may run the same configuration), and
    /// only once the peers' summaries say so ([`bootstrap_decision`]): a slot 0 whose store
    /// came back empty joins the cluster its peers hold instead. Waits while too few answer.
    pub(crate) async fn decide_bootstrap(&mut self, cli: &Cli) -> bool {
        if !(cli.replica_bootstrap && self.slot == 0) {
            return false;
        }
        for round in 0u64.. {
            let answers = self.summaries().await;
            match bootstrap_decision(self.peers.len(), &answers) {
                BootstrapDecision::Make => {
                    tracing::info!(
                        answered = answers.len(),
                        "a majority of the replicas hold no cluster: this replica may make it"
                    );
                    self.bootstrap = true;
                    return true;
                }
                BootstrapDecision::Join => {
                    if !self.holds_cluster.load(Ordering::Acquire) {
                        tracing::warn!(
                            "--replica-bootstrap: this replica's store holds no cluster, but a peer does: it joins that cluster instead of making a new one (was its disk lost, wiped or rolled back?)"
                        );
                    }
                    return false;
                }
                BootstrapDecision::Wait => {
                    if round % 20 == 0 {
                        tracing::info!(
                            answered = answers.len(),
                            slots = self.peers.len(),
                            "--replica-bootstrap: waiting for a majority of the replicas to say they hold no cluster"
                        );
                    }
                    tokio::time::sleep(ASK_AGAIN).await;
                }
            }
        }
        false
    }

    /// The other replicas' addresses.
    fn others(&self) -> impl Iterator<Item = &str> {
        other_addresses(&self.peers, self.slot)
    }

    /// Makes sure `store` holds the cluster key's blobs before the key is asked of KMS, and
    /// returns them: a replica joining a cluster copies them from a peer (they are not secret:
    /// only an attested enclave gets KMS to unwrap the key). `None`: a bootstrapping replica
    /// whose store has none yet lets KMS make them.
    pub(crate) async fn ensure_key_blobs(
        &mut self,
        store: &SinkAddr,
    ) -> anyhow::Result<Option<crate::kms::KeyBlobs>> {
        if self.bootstrap || self.own_blobs.is_some() {
            return Ok(self.own_blobs.take());
        }
        for round in 0u64.. {
            for addr in self.others() {
                let answer = self
                    .mesh
                    .call_address(addr, Kind::KeyBlobs, &[], READ_INDEX_WAIT)
                    .await;
                match answer.map_err(|e| e.to_string()).and_then(|a| {
                    decode::<Option<crate::kms::KeyBlobs>>(&a).map_err(|e| e.to_string())
                }) {
                    Ok(Some(blobs)) => {
                        crate::kms::put_key_blobs(store, blobs.clone()).await?;
                        self.holds_cluster.store(true, Ordering::Release);
                        tracing::info!(peer = addr, "the cluster key's blobs copied from a peer");
                        return Ok(Some(blobs));
                    }
                    Ok(None) => tracing::debug!(peer = addr, "the peer holds no cluster key yet"),
                    Err(e) => {
                        tracing::debug!(peer = addr, error = %e, "no cluster key from the peer")
                    }
                }
            }
            if round % 20 == 0 {
                tracing::info!("waiting for a peer that holds the cluster key");
            }
            tokio::time::sleep(ASK_AGAIN).await;
        }
        Ok(None)
    }
}

/// What a replica asks the leader to be made a voter as.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JoinRequest {
    id: NodeId,
    member: Member,
    /// The last log index its sealed log held when it started (none: empty).
    last_log: Option<u64>,
}

/// The voters once replica `id` of `slot` replaces its slot's earlier voter (from a joint
/// configuration too: every voter of either half).
pub(super) fn voters_with(
    membership: &openraft::Membership<NodeId, Member>,
    id: NodeId,
    slot: u8,
) -> BTreeSet<NodeId> {
    membership
        .voter_ids()
        .filter(|v| *v != id && membership.get_node(v).is_none_or(|m| m.slot != slot))
        .chain(std::iter::once(id))
        .collect()
}

/// How long the leader waits for a new learner to hold every entry the leader had when it was
/// added, before it refuses the join for now (the joining replica asks again).
pub(super) const CATCH_UP_WAIT: Duration = Duration::from_secs(60);

/// On the leader: adds replica `id` as a learner, waits until it holds every entry this leader
/// had once it was added, and makes it its slot's voter in place of the slot's earlier one.
/// openraft's `add_learner` returns once the learner is within `replication_lag_threshold`
/// (5,000 entries) of the leader; a voter that far behind would hold up every commit the
/// moment another voter failed, until it caught up.
pub(super) async fn promote(
    raft: &super::types::Raft,
    id: NodeId,
    member: Member,
    wait: Duration,
) -> Result<(), String> {
    let slot = member.slot;
    raft.add_learner(id, member, true)
        .await
        .map_err(|e| e.to_string())?;
    let last = raft.metrics().borrow().last_log_index;
    if let Some(target) = last {
        raft.wait(Some(wait))
            .metrics(
                move |m| {
                    m.replication
                        .as_ref()
                        .and_then(|replication| replication.get(&id))
                        .is_some_and(|matched| matched.is_some_and(|l| l.index >= target))
                },
                "the learner holds every entry the leader had",
            )
            .await
            .map_err(|e| format!("the learner is still catching up: {e}"))?;
    }
    let voters = voters_with(
        raft.metrics().borrow().membership_config.membership(),
        id,
        slot,
    );
    raft.change_membership(voters, false)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether a replica's host served it an older copy of its sealed log (or none): it started
/// holding `held` (its last log index) while its slot's earlier id had acknowledged
/// `acknowledged` as durable to this leader. Entries a follower acknowledged to the current
/// leader agree with that leader's log and are never cut while it leads, so holding fewer
/// means the copy lost them. Nothing to compare when this leader never heard from the slot.
fn rolled_back(acknowledged: Option<u64>, held: Option<u64>) -> bool {
    acknowledged.is_some_and(|acknowledged| held.is_none_or(|held| held < acknowledged))
}

/// The leader's answer to a join.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum JoinAnswer {
    /// The replica is a voter now, in place of its slot's earlier one.
    Joined,
    /// Not the leader: ask another replica.
    NotLeader,
    /// The leader could not add it now (another change in progress, ...): ask again.
    Refused(String),
}

/// A client request a follower passes on to the leader: its head as the follower read it
/// (the headers core reads), its body, and the client certificate's identity the follower
/// verified (peers are attested: the leader trusts it as its own).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Forwarded {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub(crate) body: Vec<u8>,
    /// The client certificate's user: name, groups, verified against the cluster CA.
    pub(crate) client_cert: Option<(String, Vec<String>, bool)>,
}

/// The leader's answer to a forwarded request, whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ForwardAnswer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub(crate) body: Vec<u8>,
    /// The leader's store revision after the request.
    pub(crate) revision: u64,
}

/// The headers core reads of a request (`server::api_request`), and with them what a
/// forwarded request carries.
pub(crate) const FORWARDED_HEADERS: [&str; 8] = [
    "accept",
    "content-type",
    "authorization",
    "user-agent",
    "x-seal-token",
    "k3s-node-name",
    "k3s-node-password",
    "k3s-node-ip",
];

/// Where a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Here, as it is (a watch, an upgrade, a write on the leader).
    Local,
    /// Here, once the read index from the leader is applied.
    AfterReadIndex,
    /// On the leader.
    Forward,
}

/// One replica of several, as the serving code sees it.
pub(crate) struct Replicated {
    replica: Replica,
    mesh: Mesh,
    slot: u8,
    id: NodeId,
    peers: Vec<String>,
    /// The cluster key's blobs, for peers that join (read before the log took the store's
    /// one connection).
    key_blobs: crate::kms::KeyBlobs,
    /// The durable log under the replica's log, for the id blob.
    durable: crate::durable::DurableLog,
    /// The serving state, for forwarded requests (set once it exists).
    shared: OnceLock<Weak<Shared>>,
    forwarded: AtomicU64,
    /// Times the leader this replica knows of changed (to another, or to none).
    leader_changes: AtomicU64,
    /// Reads waiting for a read index share its rounds.
    reads: Arc<ReadRounds>,
    /// The last log index its sealed log held when this start opened it (none: empty).
    started_with: Option<u64>,
    /// On the leader: joins whose log held less than their slot acknowledged before.
    rollbacks_detected: AtomicU64,
    /// The id of the last join counted there (a join asks again until it is a voter).
    last_rollback: AtomicU64,
}

/// A replica's state for `/readyz?verbose` and the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) slot: u8,
    pub(crate) id: NodeId,
    /// `leader`, `follower`, `learner`, `candidate` or `shutdown`.
    pub(crate) role: &'static str,
    pub(crate) term: u64,
    /// The leader's slot, if one is known.
    pub(crate) leader_slot: Option<u8>,
    /// The last log index this replica holds.
    pub(crate) last_log: u64,
    /// The last log index it applied.
    pub(crate) applied: u64,
    /// The store revision it applied.
    pub(crate) revision: u64,
    /// On the leader: each other member's slot and how many entries it is behind.
    pub(crate) lag: Vec<(u8, u64)>,
    pub(crate) forwarded: u64,
    pub(crate) leader_changes: u64,
    /// Peers whose attestation was refused.
    pub(crate) peer_refusals: u64,
    /// Read index rounds run (one serves every read that arrived before it began).
    pub(crate) read_rounds: u64,
    /// On the leader: replicas that joined on an older copy of their sealed log.
    pub(crate) rollbacks_detected: u64,
    /// Ready: it leads, or it follows a known leader.
    pub(crate) ready: bool,
}

impl Status {
    /// `/readyz?verbose`'s line.
    pub(crate) fn check_line(&self) -> String {
        let detail = format!(
            "slot={} id={:#x} role={} term={} leader={} last_log={} applied={} revision={} forwarded={}",
            self.slot,
            self.id,
            self.role,
            self.term,
            self.leader_slot
                .map_or_else(|| "none".to_string(), |s| format!("slot-{s}")),
            self.last_log,
            self.applied,
            self.revision,
            self.forwarded,
        );
        if self.ready {
            format!("[+]replica ok: {detail}")
        } else {
            format!("[-]replica failed: {detail}")
        }
    }
}

impl Replicated {
    /// Starts this replica over its sealed log in `store` under `keys`, serving `core`; its
    /// peers reach it on `--replica-listen`. Bootstraps a new cluster or joins one.
    pub(crate) async fn start(
        identity: Identity,
        cli: &Cli,
        core: Arc<ReplicaCore>,
        store: SinkAddr,
        keys: crate::durable::seal::Keys,
        key_blobs: crate::kms::KeyBlobs,
    ) -> anyhow::Result<Arc<Self>> {
        let mut identity = identity;
        let bootstrap = identity.bootstrap;
        let mut log = SealedLog::open(store, keys, identity.id, TAIL_BYTES).await?;
        let durable = log.durable();
        let started_with = log
            .get_log_state()
            .await
            .map_err(|e| anyhow::anyhow!("reading the replica log: {e}"))?
            .last_log_id
            .map(|l| l.index);
        let fresh = started_with.is_none();
        // Snapshots are not sealed yet: the log is kept whole, so a restart replays it.
        let config = openraft::Config {
            snapshot_policy: openraft::SnapshotPolicy::Never,
            ..super::types::raft_config()?
        }
        .validate()?;
        let replica =
            Replica::start_with(identity.id, config, log, identity.mesh.clone(), core).await?;
        let listener = match identity.starting.take() {
            Some(starting) => starting.listener().await?,
            None => Listener::bind(
                cli.replica_listen
                    .as_ref()
                    .context("--replica-listen is not given")?,
            )?,
        };
        let this = Arc::new_cyclic(|this: &Weak<Self>| Self {
            reads: ReadRounds::start(confirm_as(this.clone())),
            replica,
            mesh: identity.mesh,
            slot: identity.slot,
            id: identity.id,
            peers: identity.peers,
            key_blobs,
            durable,
            shared: OnceLock::new(),
            forwarded: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            started_with,
            rollbacks_detected: AtomicU64::new(0),
            last_rollback: AtomicU64::new(0),
        });
        tokio::spawn(super::network::serve(
            this.mesh.endpoint().clone(),
            listener,
            this.replica.raft.clone(),
            Some(this.clone() as Arc<dyn PeerRequests>),
        ));
        if fresh && bootstrap {
            let members = BTreeMap::from([(this.id, this.member())]);
            this.replica.raft.initialize(members).await?;
            this.save_id().await?;
            tracing::info!(
                slot = this.slot,
                "a new replicated cluster, with this replica as its only voter; the others join it"
            );
        } else {
            if bootstrap {
                tracing::info!(
                    "--replica-bootstrap ignored: this replica's log is not empty; it joins"
                );
            }
            tokio::spawn(this.clone().join());
        }
        Ok(this)
    }

    /// Lets forwarded requests reach the serving state, and publishes what the state machine
    /// applies to watch streams and waiting reads.
    pub(crate) fn serve(self: &Arc<Self>, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
        let this = Arc::downgrade(self);
        let mut metrics = self.replica.raft.metrics();
        tokio::spawn(async move {
            let mut leader = None;
            loop {
                let now = metrics.borrow_and_update().current_leader;
                let Some(this) = this.upgrade() else {
                    return;
                };
                if now != leader {
                    if leader.is_some() {
                        this.leader_changes.fetch_add(1, Ordering::Relaxed);
                    }
                    leader = now;
                }
                drop(this);
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        let mut progress = self.replica.core.progress();
        let shared = Arc::downgrade(shared);
        tokio::spawn(async move {
            loop {
                let revision = progress.borrow_and_update().revision;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.publish(revision);
                drop(shared);
                if progress.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// This replica as a member of the configuration.
    fn member(&self) -> Member {
        Member {
            slot: self.slot,
            peer_addr: self.peers[usize::from(self.slot)].clone(),
        }
    }

    /// Whether this replica's core writes (it leads and took over).
    pub(crate) fn writes(&self) -> bool {
        self.replica.core.lock().writer.is_some()
    }

    /// The leader and its address, if one is known and it is not this replica.
    fn leader(&self) -> Result<(NodeId, String), Error> {
        let metrics = self.replica.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader.ok_or(Error::NotLeader)?;
        let member = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .ok_or(Error::NotLeader)?;
        Ok((leader, self.mesh.address_of(member)))
    }

    /// Where a request with this head is served (see [`Route`]); `watch`: core says it asks
    /// for a watch stream.
    pub(crate) fn route(&self, parts: &hyper::http::request::Parts, watch: bool) -> Route {
        if parts.headers.contains_key(hyper::header::UPGRADE) || watch {
            return Route::Local;
        }
        if matches!(parts.method, hyper::Method::GET | hyper::Method::HEAD) {
            Route::AfterReadIndex
        } else if self.writes() {
            Route::Local
        } else {
            Route::Forward
        }
    }

    /// Waits until this replica applied everything committed when the read arrived: the
    /// leader confirms with a quorum that it still leads (openraft's read index, one round
    /// for every read that arrived before it began) and this replica applies up to that
    /// index.
    pub(crate) async fn read_barrier(&self) -> Result<(), Error> {
        self.reads
            .barrier(&self.replica.raft, READ_INDEX_WAIT)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Passes `request` on to the leader and returns its answer.
    pub(crate) async fn forward(&self, request: &Forwarded) -> Result<ForwardAnswer, Error> {
        let (leader, addr) = self.leader()?;
        if leader == self.id {
            // Leading but not writing yet (taking over): the client asks again.
            return Err(Error::NotLeader);
        }
        let body = encode(request).map_err(|e| Error::Internal(e.to_string()))?;
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .mesh
            .call(leader, &addr, Kind::Forward, &body, FORWARD_WAIT)
            .await
            .map_err(|e| {
                unavailable(&format!(
                    "the request was passed on to the leader, which did not answer ({e}); it may or may not have been applied"
                ))
            })?;
        decode(&answer).map_err(|e| Error::Internal(format!("the leader's answer: {e}")))
    }

    /// Before answering a call that journaled up to `journaled` (or showed what a write
    /// journaled): on the writer, waits until a majority holds it. A follower shows only
    /// applied, so committed, state.
    pub(crate) async fn wait_committed(&self, journaled: u64) -> Result<(), Error> {
        if !self.writes() {
            return Ok(());
        }
        match tokio::time::timeout(COMMIT_WAIT, self.replica.core.wait_committed(journaled)).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(unavailable(
                "the leader changed before this request's writes were committed; they may or may not have been applied",
            )),
        }
    }

    /// Before answering a call that journaled up to `journaled`: its writes (and what its
    /// answer shows) committed. A write that wrote nothing (refused on a precondition: 409,
    /// 404, ...) was answered from this replica's state, as a read is, so it also waits for a
    /// read index: a leader cut off or deposed would otherwise refuse from a state a newer
    /// leader has changed (a delete answered 404 after another leader's create of that object
    /// was acknowledged; the fault simulation found it).
    pub(crate) async fn before_answering(
        &self,
        method: &hyper::Method,
        wrote: bool,
        journaled: u64,
    ) -> Result<(), Error> {
        self.wait_committed(journaled).await?;
        if !wrote && !matches!(*method, hyper::Method::GET | hyper::Method::HEAD) {
            self.read_barrier().await?;
        }
        Ok(())
    }

    /// This replica's state now.
    pub(crate) fn status(&self) -> Status {
        let metrics = self.replica.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let voter = membership.voter_ids().any(|v| v == self.id);
        let role = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower if voter => "follower",
            ServerState::Learner | ServerState::Follower => "learner",
            ServerState::Candidate => "candidate",
            ServerState::Shutdown => "shutdown",
        };
        let last_log = metrics.last_log_index.unwrap_or(0);
        let lag = metrics
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, matched)| {
                let slot = membership.get_node(id).map_or((id >> 56) as u8, |m| m.slot);
                (
                    slot,
                    last_log.saturating_sub(matched.map_or(0, |l| l.index)),
                )
            })
            .collect();
        Status {
            slot: self.slot,
            id: self.id,
            role,
            term: metrics.current_term,
            leader_slot: metrics.current_leader.map(|l| (l >> 56) as u8),
            last_log,
            applied: metrics.last_applied.map_or(0, |l| l.index),
            revision: self.replica.core.progress().borrow().revision,
            lag,
            forwarded: self.forwarded.load(Ordering::Relaxed),
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            peer_refusals: self.mesh.endpoint().refused(),
            read_rounds: self.reads.rounds(),
            rollbacks_detected: self.rollbacks_detected.load(Ordering::Relaxed),
            ready: metrics.state == ServerState::Leader
                || (metrics.current_leader.is_some() && metrics.state != ServerState::Shutdown),
        }
    }

    /// Stops openraft (the process is stopping): peers elect another leader at once
    /// instead of after an election timeout.
    pub(crate) async fn stop(&self) {
        if let Err(e) = self.replica.shutdown().await {
            tracing::warn!(error = %e, "stopping the replica");
        }
    }

    /// Asks the peers until the leader has made this replica a voter.
    async fn join(self: Arc<Self>) {
        let Ok(body) = encode(&JoinRequest {
            id: self.id,
            member: self.member(),
            last_log: self.started_with,
        }) else {
            return;
        };
        for round in 0u64.. {
            if self.is_voter() {
                tracing::info!(slot = self.slot, "this replica is a voter of the cluster");
                if let Err(e) = self.save_id().await {
                    tracing::error!(error = %e, "cannot keep this replica's id for a cold start");
                }
                return;
            }
            // Elected while its change was cut short (a joint configuration, itself among
            // the new voters), it finishes the change itself: nobody else leads.
            if self.replica.raft.metrics().borrow().state == ServerState::Leader {
                if let Ok(request) = decode::<JoinRequest>(&body)
                    && let JoinAnswer::Refused(why) = self.admit(self.id, request).await
                {
                    tracing::info!(
                        why,
                        "finishing this replica's own join failed; trying again"
                    );
                }
                tokio::time::sleep(ASK_AGAIN).await;
                continue;
            }
            for addr in other_addresses(&self.peers, self.slot) {
                let answer = self
                    .mesh
                    .call_address(addr, Kind::Join, &body, JOIN_WAIT)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|a| decode::<JoinAnswer>(&a).map_err(|e| e.to_string()));
                match answer {
                    Ok(JoinAnswer::Joined) => {
                        // A voter from the committed configuration on: its id is kept at
                        // once, so a cold start right after finds it under this id.
                        if let Err(e) = self.save_id().await {
                            tracing::error!(error = %e, "cannot keep this replica's id for a cold start");
                        }
                        break;
                    }
                    Ok(JoinAnswer::NotLeader) => {}
                    Ok(JoinAnswer::Refused(why)) => {
                        tracing::info!(peer = %addr, why, "the leader did not add this replica yet");
                    }
                    Err(e) => tracing::debug!(peer = %addr, error = %e, "join: no answer"),
                }
            }
            if round % 20 == 19 {
                tracing::info!("still waiting to join the cluster (is a leader elected?)");
            }
            tokio::time::sleep(ASK_AGAIN).await;
        }
    }

    /// Keeps the id this voter serves under, sealed to its slot, for a cold start.
    async fn save_id(&self) -> anyhow::Result<()> {
        let sealed =
            self.durable
                .keys()
                .seal_replica_id(self.slot, self.id, crate::durable::seal::nonce());
        self.durable
            .put_blob(REPLICA_ID_BLOB, sealed)
            .await
            .map_err(|e| anyhow::anyhow!("storing the replica id: {e}"))
    }

    fn is_voter(&self) -> bool {
        self.replica.joined()
    }

    /// On the leader: adds the replica as a learner, waits for it to catch up, and makes it
    /// the voter of its slot (the slot's earlier voter, a former start of it, leaves).
    async fn admit(&self, peer: NodeId, request: JoinRequest) -> JoinAnswer {
        let raft = &self.replica.raft;
        if raft.metrics().borrow().state != ServerState::Leader {
            return JoinAnswer::NotLeader;
        }
        if request.id != peer || request.member.slot != (peer >> 56) as u8 {
            // A replica joins as itself: the id its attested greeting gave.
            return JoinAnswer::Refused("a replica may only ask to join as itself".into());
        }
        self.check_rollback(&request);
        match promote(raft, request.id, request.member.clone(), CATCH_UP_WAIT).await {
            Ok(()) => {
                tracing::info!(
                    slot = request.member.slot,
                    id = format_args!("{:#x}", request.id),
                    "a replica joined as its slot's voter"
                );
                JoinAnswer::Joined
            }
            Err(e) => JoinAnswer::Refused(e),
        }
    }

    /// Counts (once per joining id) a join whose sealed log holds less than its slot's earlier
    /// id acknowledged to this leader: its host served an older copy, or lost it. Nothing
    /// else needs doing: it joins as a learner (it never votes) and this leader replaces what
    /// its log lacks before it serves or becomes a voter.
    fn check_rollback(&self, request: &JoinRequest) {
        let acknowledged = {
            let metrics = self.replica.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            metrics.replication.as_ref().and_then(|replication| {
                replication
                    .iter()
                    .filter(|(id, _)| {
                        **id != request.id
                            && membership
                                .get_node(id)
                                .is_some_and(|m| m.slot == request.member.slot)
                    })
                    .filter_map(|(_, matched)| matched.map(|l| l.index))
                    .max()
            })
        };
        if !rolled_back(acknowledged, request.last_log)
            || self.last_rollback.swap(request.id, Ordering::Relaxed) == request.id
        {
            return;
        }
        self.rollbacks_detected.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            slot = request.member.slot,
            id = format_args!("{:#x}", request.id),
            held = ?request.last_log,
            acknowledged = ?acknowledged,
            "a replica's host served it an older copy of its sealed log (or none): it holds less than its slot acknowledged; it joins as a learner and is caught up from this leader"
        );
    }

    /// One read index round: on the leader, openraft confirms with a quorum that it still
    /// leads and gives its commit index; on a follower, the leader is asked for one.
    async fn confirm(&self) -> Result<u64, String> {
        let raft = &self.replica.raft;
        if raft.metrics().borrow().state == ServerState::Leader {
            return match tokio::time::timeout(READ_INDEX_WAIT, raft.get_read_log_id()).await {
                Ok(Ok((read, _applied))) => Ok(read.map_or(0, |l| l.index)),
                Ok(Err(e)) => Err(format!("this replica no longer leads: {e}")),
                Err(_) => Err("the leader could not confirm it still leads".into()),
            };
        }
        let (leader, addr) = self.leader().map_err(|e| e.message())?;
        let answer = self
            .mesh
            .call(leader, &addr, Kind::ReadIndex, &[], READ_INDEX_WAIT)
            .await
            .map_err(|e| format!("the leader gave no read index: {e}"))?;
        decode::<Option<u64>>(&answer)
            .map_err(|e| format!("the leader's read index: {e}"))?
            .ok_or_else(|| "the replica asked no longer leads".to_string())
    }

    /// On the leader: a read index for a follower's reads (shared with its own).
    async fn read_index(&self) -> Option<u64> {
        if self.replica.raft.metrics().borrow().state != ServerState::Leader {
            return None;
        }
        tokio::time::timeout(READ_INDEX_WAIT, self.reads.index())
            .await
            .ok()?
            .ok()
    }

    async fn answer_forwarded(&self, body: &[u8]) -> Result<Vec<u8>, FrameError> {
        let request: Forwarded = decode(body)?;
        let answer = match self.shared.get().and_then(Weak::upgrade) {
            Some(shared) if self.writes() => crate::server::serve_forwarded(&shared, request).await,
            _ => crate::server::forward_refused(&Error::NotLeader),
        };
        encode(&answer)
    }
}

/// A read index round of the replica `this` (while it lives).
fn confirm_as(this: Weak<Replicated>) -> Confirm {
    Box::new(move || {
        let this = this.clone();
        Box::pin(async move {
            match this.upgrade() {
                Some(this) => this.confirm().await,
                None => Err("the replica stopped".into()),
            }
        })
    })
}

fn unavailable(why: &str) -> Error {
    Error::Unavailable(why.to_string())
}

impl PeerRequests for Replicated {
    fn answer(&self, peer: NodeId, kind: Kind, body: Vec<u8>) -> PeerAnswer<'_> {
        Box::pin(async move {
            Some(match kind {
                Kind::Join => match decode::<JoinRequest>(&body) {
                    Ok(request) => encode(&self.admit(peer, request).await),
                    Err(e) => Err(e),
                },
                Kind::KeyBlobs => encode(&Some(&self.key_blobs)),
                Kind::ReadIndex => encode(&self.read_index().await),
                Kind::Summary => encode(&PeerSummary {
                    leader: self.writes().then_some(self.slot),
                    holds_cluster: true,
                }),
                Kind::Forward => self.answer_forwarded(&body).await,
                _ => return None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: PeerSummary = PeerSummary {
        leader: None,
        holds_cluster: false,
    };
    const HOLDS: PeerSummary = PeerSummary {
        leader: None,
        holds_cluster: true,
    };
    const LEADS: PeerSummary = PeerSummary {
        leader: Some(2),
        holds_cluster: true,
    };

    /// A new cluster needs a majority of empty slots; one peer that holds the cluster (or
    /// leads) makes slot 0 join it, however many others answered empty.
    #[test]
    fn slot_zero_makes_a_cluster_only_with_a_majority_that_holds_none() {
        use BootstrapDecision::{Join, Make, Wait};
        assert_eq!(bootstrap_decision(3, &[]), Wait, "alone of three");
        assert_eq!(bootstrap_decision(3, &[EMPTY]), Make, "two of three empty");
        assert_eq!(bootstrap_decision(3, &[EMPTY, EMPTY]), Make);
        assert_eq!(bootstrap_decision(3, &[HOLDS]), Join, "a lost disk joins");
        assert_eq!(bootstrap_decision(3, &[EMPTY, HOLDS]), Join);
        assert_eq!(bootstrap_decision(3, &[LEADS, EMPTY]), Join);
        assert_eq!(bootstrap_decision(5, &[EMPTY]), Wait, "two of five");
        assert_eq!(
            bootstrap_decision(5, &[EMPTY, EMPTY]),
            Make,
            "three of five"
        );
        assert_eq!(bootstrap_decision(5, &[EMPTY, EMPTY, EMPTY, HOLDS]), Join);
        assert_eq!(bootstrap_decision(1, &[]), Make, "a set of one");
    }

    /// A join holding fewer entries than its slot acknowledged to this leader was served an
    /// older copy (or none); holding as many or more, or a slot this leader never heard
    /// from, is not evidence of one.
    #[test]
    fn a_join_holding_less_than_its_slot_acknowledged_is_a_rollback() {
        assert!(rolled_back(Some(120), Some(80)));
        assert!(rolled_back(Some(120), None), "a lost disk");
        assert!(!rolled_back(Some(120), Some(120)));
        assert!(
            !rolled_back(Some(120), Some(150)),
            "it held more than it had acknowledged"
        );
        assert!(
            !rolled_back(None, Some(3)),
            "this leader never heard from the slot"
        );
        assert!(!rolled_back(None, None));
    }
}
