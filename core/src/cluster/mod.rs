//! The cluster: one sans-I/O state machine ([`Cluster`]) whose every change of state is one
//! [`Change`] record produced by the [`writer`], applied by one function, live and on replay.
//!
//! # Driving it
//!
//! The runtime owns the clock, the randomness and every socket, and calls, under one lock:
//!
//! 1. [`Cluster::handle_request`] for each API request (with `now`): an answer, a watch, or a
//!    read to retry once the store reaches a revision;
//! 2. `Cluster::apply_sui_batch` for each checkpoint-ordered batch of stake events;
//! 3. [`Cluster::handle_timeout`] whenever [`Cluster::poll_timeout`] has come (asked after
//!    every call; a time not after `now` means at once);
//! 4. [`Cluster::take_records`] after any of these when it persists records, and the watch
//!    ring ([`Cluster::watch_ring`]) to stream watches outside the lock.
//!
//! A replica instead calls [`Cluster::replay_record`] for each record, in order, on
//! [`Cluster::empty`]; a restart from the durable log calls [`Cluster::recover`].

pub mod change;
pub(crate) mod deletion;
pub(crate) mod object;
pub mod record;
pub mod snapshot;
pub(crate) mod writer;

pub use change::{Change, ChangeKind, Origin};
pub use record::{CompactionMark, Record, StakeRecord};
pub use snapshot::{Snapshot, SnapshotCapture, SnapshotChunks};
pub(crate) use writer::WriteContext;

use alloc::collections::BTreeSet;
use alloc::string::String;
use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::sync::Arc;
use crate::watch::WatchRing;
use crate::{Config, UnixTime};

/// Unique ids and random names from a seed the runtime passes in (core has no RNG).
#[derive(Debug)]
pub(crate) struct IdSource {
    seed: [u8; 32],
    counter: u64,
}

impl IdSource {
    fn next_block(&mut self) -> [u8; 32] {
        self.counter = self.counter.wrapping_add(1);
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_le_bytes());
        hasher.finalize().into()
    }

    /// 16 fresh random bytes: a certificate's serial number (kube's signer draws 128 bits).
    pub(crate) fn serial(&mut self) -> [u8; 16] {
        let block = self.next_block();
        let mut out = [0u8; 16];
        out.copy_from_slice(block.get(..16).unwrap_or(&[0; 16]));
        out
    }

    /// An RFC 4122 version-4 UUID string.
    pub(crate) fn uuid(&mut self) -> String {
        let mut b = self.next_block();
        if let Some(x) = b.get_mut(6) {
            *x = (*x & 0x0f) | 0x40;
        }
        if let Some(x) = b.get_mut(8) {
            *x = (*x & 0x3f) | 0x80;
        }
        let mut out = String::with_capacity(36);
        for (i, byte) in b.iter().take(16).enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
        out
    }

    /// Five characters from kube's `generateName` alphabet.
    pub(crate) fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.next_block()
            .iter()
            .take(5)
            .map(|b| {
                char::from(
                    *ALPHABET
                        .get(usize::from(*b) % ALPHABET.len())
                        .unwrap_or(&b'x'),
                )
            })
            .collect()
    }
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// The cluster state machine: the store and everything derived from it, driven only through
/// its `handle_*` entry points (see the module documentation for the call order).
#[derive(Debug)]
pub struct Cluster {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) ids: IdSource,
    /// Namespaces being deleted, finished by `handle_timeout`.
    pub(crate) terminating: BTreeSet<String>,
    /// Terminating namespaces to look at again: new ones, and those where something changed
    /// since a pass found their contents held (by a grace period or a finalizer), so that a
    /// namespace waiting on kubelets costs nothing until one of its objects changes.
    pub(crate) namespaces_due: BTreeSet<String>,
    /// Terminating namespaces whose last pass had a write refused, looked at again at
    /// `namespaces_retry`.
    pub(crate) namespaces_later: BTreeSet<String>,
    pub(crate) namespaces_retry: Option<UnixTime>,
    /// Cluster IPs and node ports held by the stored Services.
    pub(crate) services: crate::admission::services::Allocations,
    /// Heartbeat tracking for the node lifecycle controller.
    pub(crate) lifecycle: crate::controllers::node_lifecycle::NodeLifecycle,
    /// Expiry and share ledger of events.
    pub(crate) event_ttl: crate::controllers::event_ttl::EventTtl,
    /// Event writes per node identity (kube's EventRateLimit, limit type `User`).
    pub(crate) event_rate: crate::ratelimit::RateLimiter,
    /// What the current request gathers below its handler (admission warnings).
    pub(crate) call: crate::api::Call,
    /// This run's key for continue tokens.
    pub(crate) continue_key: [u8; 32],
    /// Stakes learned from Sui events.
    pub(crate) stakes: crate::stake::StakeRegistry,
    /// Seal-token validation with its signature cache.
    pub(crate) tokens: crate::token::TokenValidator,
    /// ServiceAccount tokens whose signature verified.
    pub(crate) service_account_tokens: crate::serviceaccount::VerifiedTokens,
    /// Nodes registered per stake.
    pub(crate) registrations: crate::api::Registrations,
    /// The pod scheduler's queue and node cache.
    pub(crate) scheduler: crate::scheduler::Scheduler,
    /// Workload controllers' change feed, work queues and ownership graph.
    pub(crate) controllers: crate::controllers::Controllers,
    /// What the pods bound to each node use, for the node authorizer.
    pub(crate) references: crate::authz::references::ReferenceIndex,
    /// The installed CustomResourceDefinitions: the resource table's dynamic part.
    pub(crate) crds: crate::crd::Registry,
    /// The OpenAPI documents of custom resources, built when first asked for after a change.
    pub(crate) custom_openapi: crate::api::openapi::CustomCache,
    /// When LIST snapshots (continue tokens) expire.
    pub(crate) compactor: crate::compaction::Compactor,
    /// The open watches, within `Config::max_watches`.
    pub(crate) watch_slots: crate::watch::WatchSlots,
    /// Change records kept for the runtime.
    pub(crate) journal: crate::cluster::writer::Journal,
}

impl Cluster {
    /// A server with the bootstrap namespaces and the `kubernetes` service, created at `now`.
    /// `seed` is fresh secret randomness from the runtime (uids, generated names, the key of
    /// continue tokens).
    ///
    /// Until state is persisted, revisions start at `now` in microseconds: a run hands out one
    /// revision per write, and no run writes a million times a second for long, so every
    /// revision an earlier run handed out is below this run's start and is answered 410 Expired
    /// (clients re-list) instead of being served as if it were current. Microseconds since 1970
    /// stay below 2^53 (JavaScript's exact integers) until the year 2255.
    pub fn new(config: Config, seed: [u8; 32], now: UnixTime) -> Self {
        let mut server = Self::empty(config, seed, now);
        server.bootstrap(now);
        server
    }

    /// A cluster with nothing stored, at the revision a run starting at `now` starts from:
    /// what recorded changes are replayed into ([`Cluster::replay`]). `seed` as for
    /// [`Cluster::new`].
    pub fn empty(config: Config, seed: [u8; 32], now: UnixTime) -> Self {
        let store = Store::starting_at(&config, start_revision(now));
        let stakes = crate::stake::StakeRegistry::new(crate::stake::StakeLimits {
            max_stakes: config.max_stakes,
            min_stake: config.min_stake,
            max_events_per_push: config.max_stake_events_per_push,
            max_event_bytes: config.max_stake_event_bytes,
            max_seen_events: config.max_seen_stake_events,
        });
        let tokens = crate::token::TokenValidator::new(crate::token::TokenPolicy {
            max_lifetime_secs: config.token_max_lifetime_secs,
            cache_entries: config.token_cache_entries,
            ..Default::default()
        });
        let service_account_tokens =
            crate::serviceaccount::VerifiedTokens::new(config.service_account_token_cache_entries);
        let scheduler = crate::scheduler::Scheduler::new(&config);
        let references = crate::authz::references::ReferenceIndex::new(config.max_pod_references);
        let crds = crate::crd::Registry::new(&config);
        let event_rate = crate::ratelimit::RateLimiter::new(
            config.event_qps,
            config.event_burst,
            config.event_rate_identities,
        );
        let compactor = crate::compaction::Compactor::new(config.compaction_interval_secs, now);
        let watch_slots = crate::watch::WatchSlots::new(config.max_watches);
        let continue_key = config
            .continue_key
            .unwrap_or_else(|| Self::continue_key(&seed));
        Self {
            config,
            store,
            ids: IdSource { seed, counter: 0 },
            terminating: BTreeSet::new(),
            namespaces_due: BTreeSet::new(),
            namespaces_later: BTreeSet::new(),
            namespaces_retry: None,
            services: Default::default(),
            lifecycle: Default::default(),
            event_ttl: Default::default(),
            event_rate,
            call: crate::api::Call::default(),
            continue_key,
            stakes,
            tokens,
            service_account_tokens,
            registrations: Default::default(),
            scheduler,
            controllers: Default::default(),
            references,
            crds,
            custom_openapi: Default::default(),
            compactor,
            watch_slots,
            journal: Default::default(),
        }
    }

    /// The cluster a durable log describes: its newest snapshot's chunks (none: the log starts
    /// at the beginning) and the entries after it, replayed in order (as [`Record::encode`]
    /// wrote them), journaling every change from here on; with neither, a new cluster as
    /// [`Cluster::new`] makes. Afterwards revisions continue past the last one by more than a
    /// run can have pending ([`Config::max_pending_changes`]): whatever an earlier run handed
    /// out without making it durable is skipped, and a watch positioned there gets 410 Expired.
    /// Every node gets a fresh grace period, and the bootstrap objects are ensured. `seed` as
    /// for [`Cluster::new`]. ([`Recovery`] does the same one entry at a time.)
    pub fn recover<S: AsRef<[u8]>, R: AsRef<[u8]>>(
        config: Config,
        seed: [u8; 32],
        now: UnixTime,
        snapshot: &[S],
        records: impl IntoIterator<Item = R>,
    ) -> Result<Self, crate::Error> {
        let mut recovery = Recovery::from_snapshot(config, seed, now, snapshot)?;
        for bytes in records {
            recovery.replay(bytes.as_ref())?;
        }
        recovery.finish(now)
    }

    /// The open watches (a handle the runtime reads without the store lock, for metrics).
    pub fn watch_slots(&self) -> crate::watch::WatchSlots {
        self.watch_slots.clone()
    }

    /// The ring that watch streams read.
    pub fn watch_ring(&self) -> Arc<WatchRing> {
        self.store.ring().clone()
    }

    /// The store (read-only), for metrics and tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets the cluster CA ([`Config::cluster_ca`]), which the runtime can derive only once
    /// the durable log's data key is known (after the cluster was replayed).
    pub fn set_cluster_ca(&mut self, ca: Option<crate::csr::authority::ClusterCa>) {
        self.config.cluster_ca = ca;
        // kube-system's client CA ConfigMap follows.
        self.controllers.enqueue(
            crate::controllers::Queue::NamespaceDefaults,
            "",
            "kube-system",
        );
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The installed CustomResourceDefinitions.
    pub fn crds(&self) -> &crate::crd::Registry {
        &self.crds
    }

    /// When [`Cluster::handle_timeout`] next has work, if ever: the one question the runtime
    /// asks. A time at or before `now` means work due at once that shrinks with every call
    /// (pods beyond one scheduling batch, a ReplicaSet's next burst, the changes the last call
    /// wrote, events past their expiry): call again right away, letting requests in between. A
    /// later time is a deadline (heartbeats, expiries, retries, backoffs). O(1) apart from a few
    /// ordered-set minimums: asked after every request.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let namespaces = (!self.namespaces_due.is_empty())
            .then_some(UnixTime::default())
            .or(self.namespaces_retry);
        let nodes = self.lifecycle.due();
        let controllers = self
            .controllers_pending()
            .then_some(UnixTime::default())
            .or(self.controllers.next_delayed());
        [
            namespaces,
            nodes,
            self.event_ttl.due(),
            self.scheduler.due(),
            controllers,
            self.compactor.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advances background work due at `now`: the node lifecycle (unreachable nodes, evictions),
    /// the deletion of terminating namespaces, and the workload controllers (ReplicaSet,
    /// Deployment, Endpoints, garbage collection).
    pub fn handle_timeout(&mut self, now: UnixTime) {
        if self.compactor.due(now) {
            let mark = self.write_compaction_mark(now);
            self.compactor.tick(now, mark);
        }
        self.run_node_lifecycle(now);
        self.expire_events(now);
        if self.namespaces_retry.is_some_and(|at| at <= now) {
            self.namespaces_retry = None;
            let later = core::mem::take(&mut self.namespaces_later);
            self.namespaces_due.extend(later);
        }
        for namespace in core::mem::take(&mut self.namespaces_due) {
            match self.finish_namespace_deletion(now, &namespace) {
                crate::api::NamespacePass::Done => {
                    self.terminating.remove(&namespace);
                }
                crate::api::NamespacePass::Held => {}
                crate::api::NamespacePass::Retry => {
                    // A write was refused: look again shortly, not in a busy loop.
                    self.namespaces_later.insert(namespace);
                    let at = UnixTime {
                        nanos: now.nanos.saturating_add(NAMESPACE_RETRY_NANOS),
                    };
                    self.namespaces_retry = Some(self.namespaces_retry.map_or(at, |t| t.min(at)));
                }
            }
        }
        self.run_controllers(now);
        // Last, so that pods the controllers just made are bound in the same call.
        self.run_scheduler(now);
    }
}

/// [`Cluster::recover`] fed one snapshot chunk and one journal entry at a time, so that a
/// runtime replays a log as it reads it instead of holding every entry first, and frees each
/// snapshot chunk once restored (a log or snapshot of 100,000 objects is hundreds of
/// megabytes, and an enclave's memory is fixed). Chunks first ([`Recovery::restore_chunk`],
/// ended by [`Recovery::end_snapshot`]), then entries ([`Recovery::replay`]), then
/// [`Recovery::finish`].
#[derive(Debug)]
pub struct Recovery {
    cluster: Cluster,
    phase: Phase,
    /// The empty stake registry a snapshot's header fills (taken then).
    stakes: Option<crate::stake::StakeRegistry>,
    restored: bool,
    replayed: u64,
}

/// Where a [`Recovery`] is.
#[derive(Debug)]
enum Phase {
    /// Nothing yet: a snapshot chunk or a journal entry may come.
    Start,
    /// Inside a snapshot, after its header.
    Snapshot(Restoring),
    /// Journal entries (the snapshot, if any, ended).
    Records,
}

/// What a snapshot's header says that restoring its objects needs.
#[derive(Debug)]
struct Restoring {
    revision: u64,
    at: UnixTime,
    next_crd_id: u32,
    /// CRD name → (id, definition revision).
    crds: alloc::vec::Vec<(String, u32, u64)>,
}

impl Recovery {
    /// A recovery with nothing restored yet.
    pub fn new(config: Config, seed: [u8; 32], now: UnixTime) -> Self {
        let cluster = Cluster::empty(config, seed, now);
        let stakes = Some(crate::stake::StakeRegistry::new(
            cluster.stakes.limits().clone(),
        ));
        Self {
            cluster,
            phase: Phase::Start,
            stakes,
            restored: false,
            replayed: 0,
        }
    }

    /// Starts from the newest snapshot's chunks (none: the log starts at the beginning).
    pub fn from_snapshot<S: AsRef<[u8]>>(
        config: Config,
        seed: [u8; 32],
        now: UnixTime,
        snapshot: &[S],
    ) -> Result<Self, crate::Error> {
        let mut recovery = Self::new(config, seed, now);
        for chunk in snapshot {
            recovery.restore_chunk(chunk.as_ref())?;
        }
        recovery.end_snapshot()?;
        Ok(recovery)
    }

    /// Restores the next chunk of the newest snapshot, in order (the first carries its
    /// header); every object is put back at its own revision and fed to the derived state.
    pub fn restore_chunk(&mut self, chunk: &[u8]) -> Result<(), crate::Error> {
        let revision = match &self.phase {
            Phase::Start => None,
            Phase::Snapshot(restoring) => Some(restoring.revision),
            Phase::Records => {
                return Err(crate::Error::Internal(
                    "a snapshot chunk after the snapshot ended".into(),
                ));
            }
        };
        let Self {
            cluster,
            phase,
            stakes,
            ..
        } = self;
        snapshot::read_chunk(chunk, revision, stakes, |item| match item {
            snapshot::Item::Header(header) => {
                cluster.store = Store::starting_at(&cluster.config, header.revision);
                cluster.stakes = header.stakes;
                *phase = Phase::Snapshot(Restoring {
                    revision: header.revision,
                    at: header.at,
                    next_crd_id: header.next_crd_id,
                    crds: header.crds,
                });
                Ok(())
            }
            snapshot::Item::Object(key, object) => {
                let Phase::Snapshot(restoring) = &*phase else {
                    return Err(crate::Error::Internal(
                        "a snapshot object before its header".into(),
                    ));
                };
                restore_one(cluster, restoring, key, object)
            }
        })
    }

    /// The recovered cluster as a follower of a replicated cluster: exactly the restored and
    /// replayed state, no gap skipped, nothing bootstrapped, every write refused with
    /// [`crate::Error::NotLeader`] ([`Cluster::step_down`]); replicated records go on through
    /// [`Cluster::replay_record`] and [`Cluster::take_over`] makes it the writer.
    pub fn finish_following(mut self) -> Result<Cluster, crate::Error> {
        self.end_snapshot()?;
        let mut cluster = self.cluster;
        cluster.step_down();
        Ok(cluster)
    }

    /// Ends the snapshot (a no-op without one): the definitions' next id is the snapshot's.
    pub fn end_snapshot(&mut self) -> Result<(), crate::Error> {
        match core::mem::replace(&mut self.phase, Phase::Records) {
            Phase::Start | Phase::Records => Ok(()),
            Phase::Snapshot(restoring) => {
                self.cluster.crds.set_next_id(restoring.next_crd_id);
                self.restored = true;
                Ok(())
            }
        }
    }

    /// Replays the next journal entry (as [`Record::encode`] wrote it).
    pub fn replay(&mut self, bytes: &[u8]) -> Result<(), crate::Error> {
        self.end_snapshot()?;
        let record = Record::decode(bytes)?;
        if let Some(revision) = record.revision()
            && self.replayed == 0
            && !self.restored
        {
            // The log starts wherever its first run started.
            self.cluster.store =
                Store::starting_at(&self.cluster.config, revision.saturating_sub(1));
        }
        self.cluster.replay_record(&record)?;
        self.replayed = self
            .replayed
            .saturating_add(u64::from(record.revision().is_some()));
        Ok(())
    }

    /// The recovered cluster, ready to serve from `now` (see [`Cluster::recover`]).
    pub fn finish(mut self, now: UnixTime) -> Result<Cluster, crate::Error> {
        self.end_snapshot()?;
        let Self {
            mut cluster,
            restored,
            replayed,
            ..
        } = self;
        if replayed > 0 || restored {
            cluster.take_over(now);
        } else {
            cluster.start_writing(now);
        }
        Ok(cluster)
    }
}

impl Cluster {
    /// A replica of a replicated cluster before it learned anything: it holds nothing, its
    /// store continues from the first record it replays ([`Cluster::replay_record`]; the
    /// replicated log vouches for where that starts), and it refuses every write
    /// ([`Cluster::step_down`]) until it takes over ([`Cluster::take_over`]). `seed` as for
    /// [`Cluster::new`] (a replica's own, used once it writes).
    pub fn follower(config: Config, seed: [u8; 32], now: UnixTime) -> Self {
        let mut cluster = Self::empty(config, seed, now);
        cluster.store = Store::starting_at(&cluster.config, 0);
        cluster.step_down();
        cluster
    }

    /// Makes this cluster the writer from `now`, after it held what an earlier writer wrote
    /// (replayed or restored; a restart's [`Recovery::finish`], or a replica elected leader):
    /// revisions continue past the last one by more than a writer can have pending
    /// ([`Config::max_pending_changes`]), so nothing an earlier writer handed out without
    /// making it durable or committed is reused, and a watch positioned there gets 410
    /// Expired; every node gets a fresh grace period (their heartbeats went to the earlier
    /// writer); journaling is on and writes are taken; the bootstrap objects are ensured. A
    /// [`Cluster::follower`] that never replayed a record starts where a new cluster at `now`
    /// starts. Replicas that replay what it writes follow the gap.
    pub fn take_over(&mut self, now: UnixTime) {
        let last = self.store.revision();
        if last == 0 {
            self.store.skip_to(start_revision(now));
        } else {
            let skip = u64::try_from(self.config.max_pending_changes).unwrap_or(u64::MAX);
            self.store
                .skip_to(last.saturating_add(skip).saturating_add(1));
            let nodes: alloc::vec::Vec<String> = self
                .store
                .range(crate::resource::ResourceId::Nodes, None, None)
                .map(|(key, _)| String::from(&*key.name))
                .collect();
            self.lifecycle
                .restarted(now, self.config.node_grace_secs, nodes);
        }
        self.start_writing(now);
    }

    /// Stops writing: every write (requests, timers, stake batches) is refused with
    /// [`crate::Error::NotLeader`] while recorded changes are still replayed
    /// ([`Cluster::replay_record`]), and Sui staleness is no longer reported here (the
    /// writer reads Sui). What was journaled before stays for
    /// [`Cluster::take_records`]. The runtime stops calling [`Cluster::handle_timeout`] too:
    /// the writer runs the controllers, and their writes arrive here as records.
    pub fn step_down(&mut self) {
        // The refusal is the journal's: it applies while journaling is on.
        self.journal.on = true;
        self.refuse_writes(Some(crate::Error::NotLeader));
        self.sui_reader_stopped();
    }

    /// Journals every change from `now` on and takes writes; the bootstrap objects are
    /// ensured (written if missing).
    fn start_writing(&mut self, now: UnixTime) {
        self.refuse_writes(None);
        self.record_changes(true);
        self.bootstrap(now);
    }
}

/// Puts one snapshot object back; a CustomResourceDefinition gets the id and definition
/// revision the header recorded for it. (A custom object names its definition by that id, and
/// its restore does not need the definition installed: objects restore in any order.)
fn restore_one(
    cluster: &mut Cluster,
    restoring: &Restoring,
    key: crate::store::ObjectKey,
    object: crate::store::StoredObject,
) -> Result<(), crate::Error> {
    let mut definition_revision = None;
    if key.resource == crate::resource::ResourceId::CustomResourceDefinitions {
        let recorded = restoring
            .crds
            .iter()
            .find(|(name, _, _)| *name == *key.name);
        if let Some((_, id, revision)) = recorded {
            cluster.crds.set_next_id(*id);
            definition_revision = Some(*revision);
        }
    }
    cluster.restore_object(restoring.at, key, object, definition_revision)
}

/// How long a terminating namespace whose deletion had a write refused waits before the next
/// pass (what the runtime's timer used to wait for work that stays due).
const NAMESPACE_RETRY_NANOS: u64 = 200_000_000;

/// The revision a run starting at `now` starts from (see [`Cluster::new`]).
pub fn start_revision(now: UnixTime) -> u64 {
    now.nanos / 1_000
}

#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod takeover_tests;
#[cfg(test)]
pub(crate) mod test_harness;
