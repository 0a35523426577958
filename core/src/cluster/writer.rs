//! The one write path. A write is stamped (its revision written into the object), prepared
//! (every budget that could refuse it is checked here, so a refused write changes nothing),
//! committed to the store, and turned into one [`Change`]; [`Cluster::apply`] then feeds that
//! change to every subsystem that keeps derived state. [`Cluster::replay`] runs the same
//! prepare, commit and apply for a recorded change, so derived state is a function of the
//! records: live and on replay alike.
//!
//! What learns from the feed: the node authorizer's reference index, the CRD registry, the
//! event-expiry ledger, the Service IP and port tables, the scheduler's queue and node cache,
//! node heartbeats, the nodes each stake registered, the terminating namespaces, and (through
//! the watch ring the store fills with the same change) the controllers' work queues and every
//! watcher.

use alloc::string::ToString;
use alloc::vec::Vec;
use serde_json::Value;

use super::Cluster;
use super::change::{Change, ChangeKind, Origin};
use super::object::{index_of, parse_json, set_meta};
use super::record::{Record, Recorded, StakeRecord};
use crate::resource::ResourceId;
use crate::store::{ObjectIndex, ObjectKey, StoredObject};
use crate::{Error, UnixTime, json as j};

/// Who writes and when: what a writer decides before the record and carries in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteContext {
    /// The time of the call that writes.
    pub(crate) at: UnixTime,
    /// Who decided the write.
    pub(crate) origin: Origin,
}

impl WriteContext {
    /// The server's own work (bootstrap, controllers, timers) at `at`.
    pub(crate) fn server(at: UnixTime) -> Self {
        Self {
            at,
            origin: Origin::Server,
        }
    }

    /// The scheduler's own write at `at`.
    pub(crate) fn scheduler(at: UnixTime) -> Self {
        Self {
            at,
            origin: Origin::Scheduler,
        }
    }

    /// A client's request at `at`, by node `node` when a node identity made it.
    pub(crate) fn request(at: UnixTime, node: Option<&str>) -> Self {
        Self {
            at,
            origin: node.map_or(Origin::Request, |n| Origin::Node(n.into())),
        }
    }

    /// A request by `identity` at `at`.
    pub(crate) fn for_identity(at: UnixTime, identity: &crate::auth::Identity) -> Self {
        match identity {
            crate::auth::Identity::Node(node) => Self::request(at, Some(&node.node_id)),
            _ => Self::request(at, None),
        }
    }

    /// The same call, on the server's behalf: what the server creates is nobody's share,
    /// whoever's request caused it.
    pub(crate) fn as_server_share(&self) -> Self {
        Self {
            at: self.at,
            origin: match self.origin {
                Origin::Node(_) => Origin::Request,
                ref other => other.clone(),
            },
        }
    }
}

/// Whether a write is decided here or replayed from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Live,
    Replay,
}

/// What a write does to derived state that could refuse it, decided before the store commits.
struct Prepared {
    /// What the object costs against the store's (and the event ledger's) byte budget.
    cost: usize,
    references: Option<crate::authz::references::PodChange>,
    definition: Option<crate::crd::Definition>,
}

/// The changes a run produced, kept for the runtime (the durable log) until it takes them.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// Whether changes are kept at all (off unless the runtime asks).
    pub(crate) on: bool,
    pub(crate) records: Vec<Record>,
    /// Entries journaled since start: what a caller waits to see persisted after its call.
    pub(crate) total: u64,
    /// Set by the runtime while it cannot persist entries: every write is refused with it.
    refusal: Option<Error>,
}

impl Journal {
    /// Whether a new entry may be taken: the runtime can persist it, and no more than
    /// `max_pending` wait for it.
    fn admits(&self, max_pending: usize) -> Result<(), Error> {
        if !self.on {
            return Ok(());
        }
        if let Some(refusal) = &self.refusal {
            return Err(refusal.clone());
        }
        if self.records.len() >= max_pending {
            return Err(Error::TooManyRequests(alloc::format!(
                "{} changes wait to be persisted; try again later",
                self.records.len()
            )));
        }
        Ok(())
    }

    fn push(&mut self, record: Record) {
        if self.on {
            self.records.push(record);
            self.total = self.total.saturating_add(1);
        }
    }
}

impl Cluster {
    /// Stores `obj` as a new object, writing the revision into it first.
    pub(crate) fn write_new(
        &mut self,
        ctx: &WriteContext,
        key: ObjectKey,
        obj: &mut Value,
    ) -> Result<Vec<u8>, Error> {
        let json = self.stamp(obj);
        let index = index_of(key.resource, obj);
        self.commit(
            ctx,
            ChangeKind::Created,
            key,
            json,
            index,
            obj,
            Source::Live,
        )
    }

    /// Replaces the stored object with `obj`, writing the revision into it first.
    pub(crate) fn write_existing(
        &mut self,
        ctx: &WriteContext,
        key: &ObjectKey,
        obj: &mut Value,
    ) -> Result<Vec<u8>, Error> {
        let json = self.stamp(obj);
        let index = index_of(key.resource, obj);
        self.commit(
            ctx,
            ChangeKind::Updated,
            key.clone(),
            json,
            index,
            obj,
            Source::Live,
        )
    }

    /// Removes the object, with `obj` (its last state) carrying the deletion's revision.
    pub(crate) fn write_delete(
        &mut self,
        ctx: &WriteContext,
        key: &ObjectKey,
        obj: &mut Value,
    ) -> Result<Vec<u8>, Error> {
        let json = self.stamp(obj);
        self.commit(
            ctx,
            ChangeKind::Deleted,
            key.clone(),
            json,
            ObjectIndex::default(),
            obj,
            Source::Live,
        )
    }

    /// Writes the revision of the coming write into `obj` and encodes it.
    fn stamp(&self, obj: &mut Value) -> Vec<u8> {
        set_meta(
            obj,
            "resourceVersion",
            Value::from(self.store.next_revision().to_string()),
        );
        j::to_vec(obj)
    }

    /// Applies a recorded change to this cluster: the store and every subsystem's derived
    /// state end as they were after the live write. Records must come in revision order,
    /// starting from the revision this cluster is at (or after a gap a recovery skipped).
    pub fn replay(&mut self, change: &Change) -> Result<(), Error> {
        self.follow_recovery_gap(change.revision());
        if change.revision() != self.store.next_revision() {
            return Err(Error::Internal(alloc::format!(
                "change record {} does not follow revision {}",
                change.revision(),
                self.store.revision()
            )));
        }
        let obj = parse_json(&change.json())?;
        let index = match change.kind {
            ChangeKind::Deleted => ObjectIndex::default(),
            _ => index_of(change.key.resource, &obj),
        };
        let ctx = WriteContext {
            at: change.at,
            origin: change.origin.clone(),
        };
        self.commit(
            &ctx,
            change.kind,
            change.key.clone(),
            change.json().to_vec(),
            index,
            &obj,
            Source::Replay,
        )
        .map(drop)
    }

    /// Applies a journal entry (see [`Cluster::replay`] for a change): a stake batch is applied
    /// to the registry at its recorded time and trust level, without the revocations' writes
    /// (they follow in the journal as changes of their own).
    pub fn replay_record(&mut self, record: &Record) -> Result<(), Error> {
        match record {
            Record::Change(change) => self.replay(change),
            Record::Stakes(stakes) => self
                .stakes
                .apply_batch(&stakes.batch, &mut Recorded(stakes.trust), stakes.at)
                .map(drop),
            Record::Compaction(mark) => {
                self.follow_recovery_gap(mark.revision);
                if mark.revision != self.store.next_revision() {
                    return Err(Error::Internal(alloc::format!(
                        "compaction mark {} does not follow revision {}",
                        mark.revision,
                        self.store.revision()
                    )));
                }
                self.store.advance();
                self.compactor.follow(mark.at, mark.revision);
                Ok(())
            }
        }
    }

    /// A record at `revision` after a gap a recovery skipped ([`Cluster::recover`]): the
    /// store continues after the gap. The log's hash chain already vouches for order and
    /// completeness, so a forward jump is that skip.
    fn follow_recovery_gap(&mut self, revision: u64) {
        if revision > self.store.next_revision() {
            self.store.skip_to(revision.saturating_sub(1));
        }
    }

    /// The compactor's tick writes its mark at `at` (see [`Record::Compaction`]), unless the
    /// journal refuses writes now (the disk fails): the tick then compacts without moving the
    /// revision. Returns the store's revision after it.
    pub(super) fn write_compaction_mark(&mut self, at: UnixTime) -> u64 {
        if self.journal_admits().is_ok() {
            let revision = self.store.advance();
            self.journal
                .push(Record::Compaction(super::record::CompactionMark {
                    revision,
                    at,
                }));
        }
        self.store.revision()
    }

    /// Puts back an object a snapshot held, at its own revision, and feeds it to every
    /// subsystem that keeps derived state as the server's own creation at `at`. A
    /// CustomResourceDefinition's definition gets `definition_revision`, the revision its
    /// storage form dates from (recorded in the snapshot).
    pub(super) fn restore_object(
        &mut self,
        at: UnixTime,
        key: ObjectKey,
        mut object: StoredObject,
        definition_revision: Option<u64>,
    ) -> Result<(), Error> {
        let obj = parse_json(&object.json.bytes())?;
        let index = index_of(key.resource, &obj);
        let ctx = WriteContext::server(at);
        let prepared = self.prepare(
            &ctx,
            ChangeKind::Created,
            &key,
            object.json.len(),
            &index,
            &obj,
            definition_revision.unwrap_or(object.revision),
        )?;
        object.index = alloc::sync::Arc::new(index);
        let object = self.store.restore(key.clone(), object)?;
        let change = Change {
            kind: ChangeKind::Created,
            at,
            origin: Origin::Server,
            key,
            object,
        };
        self.apply(&change, prepared, &obj, None);
        Ok(())
    }

    /// Keeps every journal entry from now on for [`Cluster::take_records`] (`false`: stops,
    /// and drops what was kept). The runtime that persists them takes them after each call;
    /// while on, a write is refused (429) once `Config::max_pending_changes` wait.
    pub fn record_changes(&mut self, on: bool) {
        self.journal.on = on;
        if !on {
            self.journal.records = Vec::new();
        }
    }

    /// The entries journaled since the last call, in the order they happened (empty unless
    /// [`Cluster::record_changes`] is on).
    pub fn take_records(&mut self) -> Vec<Record> {
        core::mem::take(&mut self.journal.records)
    }

    /// How many entries have been journaled since start: once that many are persisted,
    /// everything a caller's call changed is.
    pub fn journaled(&self) -> u64 {
        self.journal.total
    }

    /// Refuses every write with `refusal` while the runtime cannot persist journal entries
    /// (`None`: writes are taken again). Reads go on; what was journaled stays and is taken.
    pub fn refuse_writes(&mut self, refusal: Option<Error>) {
        self.journal.refusal = refusal;
    }

    /// Whether this cluster stepped down ([`Cluster::step_down`]): another replica writes,
    /// and its records are replayed here.
    pub fn follows(&self) -> bool {
        matches!(self.journal.refusal, Some(Error::NotLeader))
    }

    /// Whether the journal takes a write now (see [`Cluster::refuse_writes`]).
    pub(crate) fn journal_admits(&self) -> Result<(), Error> {
        self.journal.admits(self.config.max_pending_changes)
    }

    /// Journals a stake batch the registry applied, before the writes its revocations make.
    pub(crate) fn journal_stakes(
        &mut self,
        at: UnixTime,
        trust: crate::stake::TrustLevel,
        batch: &crate::stake::EventBatch,
    ) {
        self.journal.push(Record::Stakes(StakeRecord {
            at,
            trust,
            batch: batch.clone(),
        }));
    }

    /// The shared tail of a live write and a replay: prepare (refusals), commit, apply; a live
    /// write is admitted by the journal and journaled, a replayed one is neither (it is a
    /// record already, and a follower's journal refuses live writes).
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        ctx: &WriteContext,
        kind: ChangeKind,
        key: ObjectKey,
        json: Vec<u8>,
        index: ObjectIndex,
        obj: &Value,
        source: Source,
    ) -> Result<Vec<u8>, Error> {
        if source == Source::Live {
            self.journal_admits()?;
        }
        let definition_revision = self.store.next_revision();
        let prepared = self.prepare(
            ctx,
            kind,
            &key,
            json.len(),
            &index,
            obj,
            definition_revision,
        )?;
        let (object, previous) = match kind {
            ChangeKind::Created => {
                let object = self
                    .store
                    .create(key.clone(), json.clone(), index)
                    .map_err(|e| match e {
                        Error::AlreadyExists { name, .. } => {
                            Error::Internal(alloc::format!("{name} appeared during create"))
                        }
                        other => other,
                    })?;
                (object, None)
            }
            ChangeKind::Updated => {
                let (object, previous) = self.store.update(&key, json.clone(), index)?;
                (object, Some(previous))
            }
            ChangeKind::Deleted => (self.store.delete(&key, json.clone())?, None),
        };
        let change = Change {
            kind,
            at: ctx.at,
            origin: ctx.origin.clone(),
            key,
            object,
        };
        self.apply(&change, prepared, obj, previous.as_ref());
        if source == Source::Live {
            self.journal.push(Record::Change(change));
        }
        Ok(json)
    }

    /// Everything that could refuse the write besides the store's own budgets, checked before
    /// anything changes. A CustomResourceDefinition's storage form dates from `definition_revision` (the change's
    /// own revision, or the one a snapshot recorded).
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &mut self,
        ctx: &WriteContext,
        kind: ChangeKind,
        key: &ObjectKey,
        json_len: usize,
        index: &ObjectIndex,
        obj: &Value,
        definition_revision: u64,
    ) -> Result<Prepared, Error> {
        let deleted = kind == ChangeKind::Deleted;
        let cost = crate::store::entry_bytes(key, json_len, index);
        if !deleted && key.resource == ResourceId::Events {
            self.event_ttl.admit(
                &self.config,
                key,
                kind != ChangeKind::Created,
                cost,
                ctx.origin.node(),
            )?;
        }
        let references = match key.resource {
            ResourceId::Pods => Some(self.references.prepare(
                &key.namespace,
                &key.name,
                (!deleted).then_some(obj),
            )?),
            _ => None,
        };
        let definition = if deleted {
            None
        } else {
            self.prepare_crd(key, obj, definition_revision)?
        };
        Ok(Prepared {
            cost,
            references,
            definition,
        })
    }

    /// A namespace marked for deletion is finished by `handle_timeout`; a deleted one is done.
    fn observe_namespace(&mut self, name: &str, namespace: Option<&Value>) {
        let marked = namespace.is_some_and(|ns| {
            ns.pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
        });
        if marked {
            if self.terminating.insert(name.into()) {
                self.namespaces_due.insert(name.into());
            }
        } else {
            self.terminating.remove(name);
        }
    }

    /// The one feed: every subsystem that keeps derived state learns about a committed change
    /// here, from the change alone (`obj` is its object, already parsed; `previous` the version
    /// it replaced).
    fn apply(
        &mut self,
        change: &Change,
        prepared: Prepared,
        obj: &Value,
        previous: Option<&StoredObject>,
    ) {
        let key = &change.key;
        let deleted = change.kind == ChangeKind::Deleted;
        let current = (!deleted).then_some(obj);
        if let Some(references) = prepared.references {
            self.references.apply(references);
        }
        match (key.resource, prepared.definition) {
            (ResourceId::CustomResourceDefinitions, _) if deleted => {
                self.crds.remove(&key.name);
            }
            (_, Some(definition)) => self.crds.install(definition),
            _ => {}
        }
        if key.resource == ResourceId::Events {
            if deleted {
                self.event_ttl.removed(key);
            } else {
                self.event_written(
                    key,
                    change.revision(),
                    change.kind == ChangeKind::Created,
                    change.at,
                    prepared.cost,
                    change.origin.node(),
                );
            }
        }
        if key.resource == ResourceId::Namespaces {
            self.observe_namespace(&key.name, current);
        }
        if key.resource == ResourceId::Nodes && !deleted {
            self.registrations.observe(&key.name, current);
        }
        self.service_committed(key, current);
        if crate::scheduler::observes(key.resource) {
            self.scheduler_observe(key, current, change.at, &change.origin);
        }
        if deleted {
            if key.resource == ResourceId::Nodes {
                self.forget_node(&key.name);
            }
        } else if change.origin.is_request() {
            let old = match key.resource {
                ResourceId::Nodes | ResourceId::Leases => previous.and_then(|p| {
                    crate::controllers::node_lifecycle::lifecycle_fields(&p.json.bytes())
                }),
                _ => None,
            };
            self.observe_for_lifecycle(change.at, key.resource, obj, old.as_ref());
        }
    }
}
