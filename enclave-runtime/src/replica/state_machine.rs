//! Core's `Cluster` as openraft's state machine (design §1.3–1.6). Applying a [`Batch`]
//! replays its records through `Cluster::replay_record`, except on the replica whose core
//! wrote them (its current writer), which holds them already and only learns that they are
//! committed. Snapshots are core's snapshot chunks at the applied entry; installing one
//! rebuilds the cluster through `Recovery` as a follower.
//!
//! A former writer whose core holds records that never committed (raft dropped them when a
//! later leader's entries replaced its own) learns it when another writer's batch comes: it
//! rebuilds its cluster from its newest snapshot and its own log up to the last applied entry
//! (design §1.5), as a follower, then applies that batch. The rebuilt cluster's watch ring
//! replaces the old one, so watch streams end and clients watch again from their last
//! revision, which was applied and so is in the rebuilt state.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use nautilus_core::cluster::{Cluster, Record, Recovery};
use nautilus_core::csr::authority::ClusterCa;
use nautilus_core::watch::WatchRing;
use nautilus_core::{Config, UnixTime};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use tokio::sync::watch;

use super::entry::{Batch, WriterId};
use super::types::{Applied, Member, Nautilus, NodeId, SnapshotHandle};

/// Bytes of one snapshot chunk (as the durable log's snapshots).
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Objects one capture step takes under the core lock (as `durable::persist`).
const CAPTURE_STEP_OBJECTS: usize = 250;
/// Records (and entries) one step of `apply` replays under the core lock (design §1.4): a
/// follower catching up lets requests in between steps.
const APPLY_STEP_RECORDS: usize = 256;
/// How long a snapshot on the writer waits for its speculative records to commit before it
/// gives up (openraft retries later).
const SNAPSHOT_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How far this replica's state machine is: what the serving code and the driver wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The last applied log entry.
    pub(crate) applied: Option<LogId<NodeId>>,
    /// The store revision after it: what reads and watches may show.
    pub(crate) revision: u64,
    /// While this replica writes: its journal entries known committed (its core's
    /// `journaled()` count the last applied batch of its own reached).
    pub(crate) committed_journal: u64,
    /// Rebuilds after records of this replica's core were dropped: a journal count from
    /// before one no longer means anything.
    pub(crate) rebuilds: u64,
}

/// The cluster a replica serves and what it applied, under one lock.
#[derive(Debug)]
pub(crate) struct CoreState {
    /// The cluster: exactly the applied entries on a follower; on the writer, those and its
    /// records not committed yet.
    pub(crate) cluster: Cluster,
    /// The writer whose records `cluster` holds (beyond what is applied, possibly): batches
    /// of this writer are not replayed. `None` on a replica that replays everything.
    pub(crate) writer: Option<WriterId>,
    /// The raft term `writer` wrote in: an entry of a later term means another leadership
    /// began, after which none of its records not committed yet ever will be.
    pub(crate) writer_term: u64,
    /// The last applied log entry.
    pub(crate) applied: Option<LogId<NodeId>>,
    /// The membership the applied entries hold.
    pub(crate) membership: StoredMembership<NodeId, Member>,
    /// The writer's journal count its last applied batch reached.
    pub(crate) committed_journal: u64,
    /// The store revision after the last applied entry: what may be shown (the writer's
    /// store is ahead of it by its records not committed yet).
    pub(crate) visible: u64,
    /// The latest `Batch::at` applied: a new writer's clock never goes back past it.
    pub(crate) last_at: u64,
    /// Rebuilds since start (see the module documentation).
    pub(crate) rebuilds: u64,
}

impl CoreState {
    /// Makes this replica the writer from `now` as `writer` (design §1.5): core skips past
    /// every revision an earlier writer may have handed out and journals from here; returns
    /// the journal count and store revision before the take-over, where the writer's
    /// batches continue from.
    pub(crate) fn take_over(&mut self, now: UnixTime, writer: WriterId, term: u64) -> (u64, u64) {
        let before = (self.cluster.journaled(), self.cluster.store().revision());
        let now = UnixTime {
            nanos: now.nanos.max(self.last_at),
        };
        self.cluster.take_over(now);
        self.writer = Some(writer);
        self.writer_term = term;
        self.committed_journal = before.0;
        before
    }

    /// Applies one batch: replays it unless this replica's core wrote it; the revision after.
    fn apply_batch(&mut self, batch: &Batch) -> Result<u64, ApplyError> {
        self.last_at = self.last_at.max(batch.at);
        if self.writer == Some(batch.writer) {
            self.committed_journal = batch.journal_last;
            self.visible = batch.revision_last;
            return Ok(batch.revision_last);
        }
        if self.writer.is_some() {
            // Another writer follows: whatever this core wrote as a writer must have been
            // committed before it, or raft dropped it and the core holds writes nobody has.
            self.stop_writing()?;
        }
        for bytes in &batch.records {
            let record = Record::decode(bytes).map_err(ApplyError::Core)?;
            self.cluster
                .replay_record(&record)
                .map_err(ApplyError::Core)?;
        }
        let revision = self.cluster.store().revision();
        if revision != batch.revision_last {
            return Err(ApplyError::Revision {
                replayed: revision,
                batch: batch.revision_last,
            });
        }
        self.visible = revision;
        Ok(revision)
    }

    /// Whether this core holds what was never committed: records journaled as the writer, or
    /// the revision jump of a take-over no entry of its leadership committed (that jump is
    /// not a record; kept, a second take-over would jump from it, and the next writer's
    /// records would not follow this store).
    fn holds_uncommitted(&self) -> bool {
        self.cluster.journaled() > self.committed_journal
            || self.cluster.store().revision() > self.visible
    }

    /// This core no longer writes: a plain follower from here, or `Diverged` when it holds
    /// writes that were never committed (the cluster is rebuilt without them).
    fn stop_writing(&mut self) -> Result<(), ApplyError> {
        if self.holds_uncommitted() {
            return Err(ApplyError::Diverged {
                journaled: self.cluster.journaled(),
                committed: self.committed_journal,
            });
        }
        self.writer = None;
        self.cluster.step_down();
        Ok(())
    }

    /// Applies one log entry: a batch (see [`CoreState::apply_batch`]), a membership, or a
    /// blank entry.
    fn apply_entry(&mut self, entry: &openraft::Entry<Nautilus>) -> Result<Applied, ApplyError> {
        if self.writer.is_some() && entry.log_id.leader_id.term > self.writer_term {
            // A later leadership's first entry (its blank one) commits every entry of earlier
            // terms that will ever commit: records of this core's writer not committed by now
            // never will be, and the cluster is rebuilt without them.
            self.stop_writing()?;
        }
        let revision = match &entry.payload {
            EntryPayload::Blank => self.visible,
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                self.visible
            }
            EntryPayload::Normal(batch) => self.apply_batch(batch)?,
        };
        self.applied = Some(entry.log_id);
        Ok(Applied { revision })
    }

    fn progress(&self) -> Progress {
        Progress {
            applied: self.applied,
            revision: self.visible,
            committed_journal: self.committed_journal,
            rebuilds: self.rebuilds,
        }
    }
}

/// Why an entry could not be applied: the replica must stop (openraft treats a state
/// machine error as fatal) and be rebuilt.
#[derive(Debug)]
enum ApplyError {
    /// A record failed to decode or replay.
    Core(nautilus_core::Error),
    /// The replay reached another revision than the writer's.
    Revision { replayed: u64, batch: u64 },
    /// This replica wrote records as a writer that were never committed: it rebuilds from
    /// the applied state (design §1.5).
    Diverged { journaled: u64, committed: u64 },
    /// The rebuild after a divergence failed.
    Rebuild(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Core(e) => write!(f, "replaying a replicated record: {e}"),
            Self::Revision { replayed, batch } => write!(
                f,
                "the replay reached revision {replayed}, the writer's batch says {batch}"
            ),
            Self::Diverged {
                journaled,
                committed,
            } => write!(
                f,
                "this replica journaled {journaled} entries as the writer but only {committed} were committed before another writer's"
            ),
            Self::Rebuild(m) => write!(f, "rebuilding the applied state failed: {m}"),
        }
    }
}

impl std::error::Error for ApplyError {}

/// One replica's cluster and its applied state, shared by the state machine, its snapshot
/// builder, the driver and (later) the serving code.
#[derive(Debug)]
pub(crate) struct ReplicaCore {
    state: Mutex<CoreState>,
    /// What a snapshot install rebuilds the cluster with.
    config: Config,
    seed: [u8; 32],
    progress: watch::Sender<Progress>,
    /// The newest snapshot, built here or installed.
    snapshot: Mutex<Option<(SnapshotMeta<NodeId, Member>, SnapshotHandle)>>,
    /// Tells the driver that core's journal has new records.
    pub(crate) wake: tokio::sync::Notify,
    /// The watch ring of the cluster served now: a rebuild or an installed snapshot brings a
    /// new one, and watch streams on the old one end (clients watch again from their last
    /// revision).
    ring: RwLock<Arc<WatchRing>>,
    /// The cluster CA every cluster this replica serves gets (rebuilt ones included).
    cluster_ca: Mutex<Option<ClusterCa>>,
}

impl ReplicaCore {
    /// A replica that holds nothing yet (`Cluster::follower`), with `config` and the
    /// replica's own `seed`.
    pub(crate) fn new(config: Config, seed: [u8; 32], now: UnixTime) -> Arc<Self> {
        let cluster = Cluster::follower(config.clone(), seed, now);
        let ring = RwLock::new(cluster.watch_ring());
        Arc::new(Self {
            state: Mutex::new(CoreState {
                cluster,
                writer: None,
                writer_term: 0,
                applied: None,
                membership: StoredMembership::default(),
                committed_journal: 0,
                visible: 0,
                last_at: 0,
                rebuilds: 0,
            }),
            config,
            seed,
            progress: watch::channel(Progress::default()).0,
            snapshot: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            ring,
            cluster_ca: Mutex::new(None),
        })
    }

    /// The watch ring of the cluster served now.
    pub(crate) fn ring(&self) -> Arc<WatchRing> {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `ring` is still the served cluster's (see [`ReplicaCore::ring`]).
    pub(crate) fn serves_ring(&self, ring: &Arc<WatchRing>) -> bool {
        Arc::ptr_eq(
            &self
                .ring
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            ring,
        )
    }

    /// Gives the served cluster, and every cluster a rebuild makes later, the cluster CA.
    pub(crate) fn set_cluster_ca(&self, ca: ClusterCa) {
        self.lock().cluster.set_cluster_ca(Some(ca.clone()));
        *self
            .cluster_ca
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ca);
    }

    /// Serves `cluster` in place of the one in `state` (a rebuild, an installed snapshot).
    fn replace_cluster(&self, state: &mut CoreState, mut cluster: Cluster) {
        let ca = self
            .cluster_ca
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if ca.is_some() {
            cluster.set_cluster_ca(ca);
        }
        *self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cluster.watch_ring();
        state.cluster = cluster;
    }

    /// The cluster and its applied state.
    /// The take-over epoch this replica writes under: `Some` while it leads and its core took
    /// over and has not stepped down since (a replica that leads again gets a new epoch, so a
    /// task acting as the writer sees its leadership ended in between), `None` while it
    /// follows.
    pub(crate) fn writing_epoch(&self) -> Option<u64> {
        let state = self.lock();
        state
            .writer
            .filter(|_| !state.cluster.follows())
            .map(|writer| writer.epoch)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, CoreState> {
        // Core is panic-free and every write atomic: a poisoned lock holds a whole state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How far the state machine is.
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Publishes `state`'s progress (under its lock, so it never goes back) and lets watch
    /// streams see up to its visible revision.
    fn publish(&self, state: &CoreState) {
        state.cluster.watch_ring().set_visible(state.visible);
        let progress = state.progress();
        self.progress.send_if_modified(|p| {
            let changed = *p != progress;
            *p = progress;
            changed
        });
    }

    /// Before this replica writes again: if its cluster holds writes of an earlier writer
    /// of its own that were never committed (they were never submitted, or raft dropped
    /// them), rebuilds it from the applied state, so that they are gone and their waiters
    /// are told (see the module documentation). `Ok(false)`: nothing to drop.
    pub(crate) async fn drop_uncommitted(
        &self,
        log: &mut dyn AppliedEntries,
    ) -> Result<bool, String> {
        let ahead = {
            let state = self.lock();
            state.writer.is_some() && state.holds_uncommitted()
        };
        if !ahead {
            return Ok(false);
        }
        self.rebuild(log).await.map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Rebuilds the cluster as a follower from the newest snapshot and the log up to the last
    /// applied entry (see the module documentation), and swaps it in.
    async fn rebuild(&self, log: &mut dyn AppliedEntries) -> Result<(), ApplyError> {
        let started = std::time::Instant::now();
        let (applied, visible) = {
            let state = self.lock();
            (state.applied, state.visible)
        };
        let base = self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .filter(|(meta, _)| meta.last_log_id <= applied);
        let now = crate::server::now();
        let (mut cluster, mut next) = match base {
            Some((meta, handle)) => {
                let mut recovery = Recovery::new(self.config.clone(), self.seed, now);
                for chunk in &handle.chunks {
                    recovery.restore_chunk(chunk).map_err(ApplyError::Core)?;
                }
                let cluster = recovery.finish_following().map_err(ApplyError::Core)?;
                (cluster, meta.last_log_id.map_or(0, |l| l.index + 1))
            }
            None => (Cluster::follower(self.config.clone(), self.seed, now), 0),
        };
        let replayed_from = next;
        if let Some(last) = applied.map(|l| l.index) {
            while next <= last {
                let to = last.min(next.saturating_add(REBUILD_STEP_ENTRIES - 1));
                let entries = log
                    .read(next, to)
                    .await
                    .map_err(|e| ApplyError::Rebuild(e.to_string()))?;
                for entry in &entries {
                    if entry.log_id.index != next {
                        return Err(ApplyError::Rebuild(format!(
                            "the log gave entry {} where {next} belongs",
                            entry.log_id.index
                        )));
                    }
                    if let EntryPayload::Normal(batch) = &entry.payload {
                        for bytes in &batch.records {
                            let record = Record::decode(bytes).map_err(ApplyError::Core)?;
                            cluster.replay_record(&record).map_err(ApplyError::Core)?;
                        }
                    }
                    next += 1;
                }
                if next <= to {
                    return Err(ApplyError::Rebuild(format!(
                        "the log no longer holds applied entry {next}"
                    )));
                }
                tokio::task::yield_now().await;
            }
        }
        let revision = cluster.store().revision();
        if revision != visible {
            return Err(ApplyError::Revision {
                replayed: revision,
                batch: visible,
            });
        }
        let mut state = self.lock();
        if state.applied != applied {
            return Err(ApplyError::Rebuild(
                "entries were applied during the rebuild".into(),
            ));
        }
        // The old cluster's watch streams end with it (its ring is no longer written).
        self.replace_cluster(&mut state, cluster);
        state.writer = None;
        state.committed_journal = 0;
        state.rebuilds = state.rebuilds.saturating_add(1);
        self.publish(&state);
        tracing::warn!(
            revision,
            entries = next.saturating_sub(replayed_from),
            millis = started.elapsed().as_millis() as u64,
            "this replica's core held writes that were never committed; rebuilt from its snapshot and log"
        );
        Ok(())
    }

    /// Waits until the writer's first `journaled` journal entries are committed; `false`
    /// when the state machine stopped first, or rebuilt its cluster (they will never be).
    pub(crate) async fn wait_committed(&self, journaled: u64) -> bool {
        let mut progress = self.progress();
        let rebuilds = progress.borrow().rebuilds;
        progress
            .wait_for(|p| p.committed_journal >= journaled || p.rebuilds != rebuilds)
            .await
            .is_ok_and(|p| p.rebuilds == rebuilds)
    }
}

/// The future of one read of applied entries.
type EntriesRead<'a> = Pin<
    Box<
        dyn Future<Output = Result<Vec<openraft::Entry<Nautilus>>, StorageError<NodeId>>>
            + Send
            + 'a,
    >,
>;

/// Where a rebuild reads the entries applied after the snapshot: the replica's own log.
pub(crate) trait AppliedEntries: Send + Sync + 'static {
    /// Entries `from..=to`.
    fn read(&mut self, from: u64, to: u64) -> EntriesRead<'_>;
}

impl<R: RaftLogReader<Nautilus>> AppliedEntries for R {
    fn read(&mut self, from: u64, to: u64) -> EntriesRead<'_> {
        Box::pin(self.try_get_log_entries(from..=to))
    }
}

/// Entries one step of a rebuild reads and replays.
const REBUILD_STEP_ENTRIES: u64 = 256;

/// The state machine openraft drives: the replica's core, and the log a rebuild reads.
pub(crate) struct ClusterMachine {
    core: Arc<ReplicaCore>,
    log: Box<dyn AppliedEntries>,
}

impl ClusterMachine {
    pub(crate) fn new(core: Arc<ReplicaCore>, log: Box<dyn AppliedEntries>) -> Self {
        Self { core, log }
    }

    /// Rebuilds the cluster as a follower (see [`ReplicaCore::rebuild`]).
    async fn rebuild(&mut self) -> Result<(), ApplyError> {
        self.core.rebuild(&mut *self.log).await
    }
}

fn apply_error(log_id: LogId<NodeId>, e: &ApplyError) -> StorageError<NodeId> {
    StorageIOError::apply(log_id, AnyError::new(e)).into()
}

fn snapshot_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::error(e)).into()
}

impl RaftStateMachine<Nautilus> for ClusterMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>), StorageError<NodeId>>
    {
        let state = self.core.lock();
        Ok((state.applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<Nautilus>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut entries = entries.into_iter().peekable();
        // An entry to apply again once the cluster is rebuilt.
        let mut again: Option<openraft::Entry<Nautilus>> = None;
        while again.is_some() || entries.peek().is_some() {
            let mut diverged = None;
            {
                // A step of entries under the lock: requests get it between steps.
                let mut state = self.core.lock();
                let mut replayed = 0usize;
                while replayed < APPLY_STEP_RECORDS {
                    let Some(entry) = again.take().or_else(|| entries.next()) else {
                        break;
                    };
                    if let EntryPayload::Normal(batch) = &entry.payload {
                        replayed = replayed.saturating_add(batch.records.len());
                    }
                    replayed = replayed.saturating_add(1);
                    match state.apply_entry(&entry) {
                        Ok(applied) => out.push(applied),
                        Err(e @ ApplyError::Diverged { .. }) => {
                            tracing::warn!(error = %e, log_id = %entry.log_id, "rebuilding before applying another writer's entry");
                            diverged = Some(entry);
                            break;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, log_id = %entry.log_id, "a replicated entry cannot be applied; this replica stops");
                            // What was applied before it is published.
                            self.core.publish(&state);
                            return Err(apply_error(entry.log_id, &e));
                        }
                    }
                }
                self.core.publish(&state);
            }
            if let Some(entry) = diverged {
                if let Err(e) = self.rebuild().await {
                    tracing::error!(error = %e, log_id = %entry.log_id, "this replica stops");
                    return Err(apply_error(entry.log_id, &e));
                }
                again = Some(entry);
            } else if entries.peek().is_some() {
                tokio::task::yield_now().await;
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            core: self.core.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<SnapshotHandle>, StorageError<NodeId>> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<SnapshotHandle>,
    ) -> Result<(), StorageError<NodeId>> {
        let now = crate::server::now();
        let mut recovery = Recovery::new(self.core.config.clone(), self.core.seed, now);
        for chunk in &snapshot.chunks {
            recovery.restore_chunk(chunk).map_err(snapshot_error)?;
        }
        let cluster = recovery.finish_following().map_err(snapshot_error)?;
        let revision = cluster.store().revision();
        if revision != snapshot.revision {
            return Err(snapshot_error(format!(
                "a snapshot said to be of revision {} holds revision {revision}",
                snapshot.revision
            )));
        }
        let mut state = self.core.lock();
        // The old cluster's watch streams end with it (its ring is no longer written).
        self.core.replace_cluster(&mut state, cluster);
        state.writer = None;
        state.applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.committed_journal = 0;
        state.visible = revision;
        self.core.publish(&state);
        drop(state);
        *self
            .core
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((meta.clone(), *snapshot));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Nautilus>>, StorageError<NodeId>> {
        let current = self
            .core
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(current.map(|(meta, handle)| Snapshot {
            meta,
            snapshot: Box::new(handle),
        }))
    }
}

/// Builds a snapshot of the applied state (openraft runs it in a task of its own).
pub(crate) struct SnapshotBuilder {
    core: Arc<ReplicaCore>,
}

impl RaftSnapshotBuilder<Nautilus> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Nautilus>, StorageError<NodeId>> {
        let started = std::time::Instant::now();
        // Begun under the lock at an applied entry: on the writer only once its core holds
        // nothing beyond what is committed (its writes wait meanwhile, design §1.6).
        let (mut capture, applied, membership) = loop {
            {
                let mut state = self.core.lock();
                let ahead =
                    state.writer.is_some() && (state.cluster.journaled() > state.committed_journal);
                if !ahead {
                    let at = UnixTime {
                        nanos: crate::server::now().nanos.max(state.last_at),
                    };
                    let capture = state.cluster.begin_snapshot(at);
                    break (capture, state.applied, state.membership.clone());
                }
            }
            if started.elapsed() > SNAPSHOT_COMMIT_WAIT {
                return Err(snapshot_error(
                    "the writer's records did not commit in time for a snapshot",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        };
        let revision = capture.revision();
        let snapshot = loop {
            let step = self
                .core
                .lock()
                .cluster
                .continue_snapshot(&mut capture, CAPTURE_STEP_OBJECTS)
                .map_err(snapshot_error)?;
            match step {
                Some(snapshot) => break snapshot,
                None => tokio::task::yield_now().await,
            }
        };
        let chunks: Vec<Bytes> = snapshot
            .into_chunks(SNAPSHOT_CHUNK_BYTES)
            .map(Bytes::from)
            .collect();
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id: format!("{}-{revision}", applied.map_or(0, |l| l.index)),
        };
        let handle = SnapshotHandle { revision, chunks };
        *self
            .core
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((meta.clone(), handle.clone()));
        tracing::info!(
            revision,
            log_index = applied.map_or(0, |l| l.index),
            millis = started.elapsed().as_millis() as u64,
            "replica snapshot built"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(handle),
        })
    }
}
