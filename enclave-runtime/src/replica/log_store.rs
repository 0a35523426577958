//! openraft's log and vote on the sealed durable log (design §2.1): [`SealedLog`] keeps one
//! raft entry per sealed record of `durable::DurableLog` (entry index `i` at log position
//! `i + 1`), so the host holds the replica's log as ciphertext in one hash chain that a
//! restart verifies.
//!
//! The storage contract openraft states, and how it is kept:
//! - an append is reported flushed (`LogFlushed::log_io_completed`) only once the host
//!   acknowledged the sync of its last record; while the host refuses appends (`EIO`, a full
//!   disk) the records are sent again, in order, until it takes them, and the report waits
//!   (openraft 0.9's core awaits that report before it replicates the entries, so a leader
//!   whose host refuses stops sending heartbeats too, and the others elect another leader);
//! - the vote is saved before `save_vote` returns: after every earlier append is durable, as a
//!   blob sealed for this node id (cluster id, node id, `vote` bound), written durably by the
//!   host; a blob sealed for another id (an earlier incarnation of this replica) does not open,
//!   so a restarted replica, which gets a new id (design §2.3), starts without a vote;
//! - the committed log id is kept in memory and sealed into the next record; at start it is the
//!   greatest one the verified records carry (a lower bound, enough to replay at start);
//! - a truncation cuts the host's log in place (the chain goes on from the record before).
//!
//! The newest entries are held in memory, up to a budget of sealed bytes ([`TAIL_BYTES`] in
//! production); older ones, once durable, are read back from the host and verified again
//! (`DurableLog::read`) when replication or a restart asks for them. A purge is in memory only
//! until snapshots are sealed for replicas (a later slice): the host keeps the records, which
//! a restart reads back again, and for the same reason the log cannot go on past its end after
//! a snapshot install (a new replica that catches up from a snapshot needs that slice).
//!
//! [`MemLog`] is the in-memory log for tests that need no disk.

// The serving code starts replicas on it in a later slice; today the tests do.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::types::{Nautilus, NodeId};
use crate::durable::seal::Keys;
use crate::durable::{
    DurableError, DurableLog, MAX_RECORD, RecoveredRecord, RecoveredSnapshot, Replay,
};
use crate::log_sink::SinkAddr;

/// Sealed bytes of the newest entries held in memory; older durable ones are read back from
/// the host. A replica serving followers reads its recent entries, which stay held.
pub(crate) const TAIL_BYTES: usize = 64 << 20;
/// Version byte in front of a sealed record's payload (see [`SealedEntry`]).
const RECORD_VERSION: u8 = 1;
/// The host's name for this replica's sealed vote.
const VOTE_BLOB: &str = "raft-vote";
/// Records appended and not yet durable before openraft's appends wait for the host.
const MAX_UNFLUSHED: usize = 16_384;
/// First and longest pause before records the host refused are sent again.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What one sealed record's payload holds (after [`RECORD_VERSION`], postcard): the entry, and
/// the committed log id this replica knew when it sealed it.
#[derive(Debug, Deserialize)]
struct SealedEntry {
    committed: Option<LogId<NodeId>>,
    entry: Entry<Nautilus>,
}

/// [`SealedEntry`] to encode, borrowing the entry (the same fields in the same order).
#[derive(Serialize)]
struct SealedEntryRef<'a> {
    committed: Option<LogId<NodeId>>,
    entry: &'a Entry<Nautilus>,
}

fn encode_record(
    committed: Option<LogId<NodeId>>,
    entry: &Entry<Nautilus>,
) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = vec![RECORD_VERSION];
    postcard::to_io(&SealedEntryRef { committed, entry }, &mut bytes)?;
    Ok(bytes)
}

fn decode_record(bytes: &[u8]) -> Result<SealedEntry, String> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, rest)) => postcard::from_bytes(rest)
            .map_err(|e| format!("a sealed raft entry does not decode: {e}")),
        Some((version, _)) => Err(format!("a sealed raft entry of unknown version {version}")),
        None => Err("an empty sealed raft entry".into()),
    }
}

/// The entries held in memory, shared with the readers openraft hands to replication.
#[derive(Debug)]
struct Tail {
    /// Entries held, each with its sealed size.
    entries: BTreeMap<u64, (Entry<Nautilus>, usize)>,
    /// Sum of the sizes held.
    held: usize,
    /// Most bytes held (entries not yet durable are held whatever their size).
    budget: usize,
    /// Entries up to this index (after `last_purged`) are on the host only.
    evicted: Option<u64>,
    last: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

impl Tail {
    fn insert(&mut self, entry: Entry<Nautilus>, size: usize) {
        self.last = Some(entry.log_id);
        self.held = self.held.saturating_add(size);
        if let Some((_, old)) = self.entries.insert(entry.log_id.index, (entry, size)) {
            self.held = self.held.saturating_sub(old);
        }
    }

    /// Drops the oldest held entries that are durable (index below `durable_end`) while
    /// over budget.
    fn evict(&mut self, durable_end: u64) {
        while self.held > self.budget {
            let Some(entry) = self.entries.first_entry() else {
                return;
            };
            if *entry.key() >= durable_end {
                return;
            }
            let (index, (_, size)) = entry.remove_entry();
            self.held = self.held.saturating_sub(size);
            self.evicted = Some(index);
        }
    }

    /// Drops entries from `index` on.
    fn cut(&mut self, index: u64) {
        for (_, (_, size)) in self.entries.split_off(&index) {
            self.held = self.held.saturating_sub(size);
        }
        self.evicted = match index.checked_sub(1) {
            Some(before) => self.evicted.map(|e| e.min(before)),
            None => None,
        };
    }

    /// Drops entries up to `log_id`, included.
    fn purge(&mut self, log_id: LogId<NodeId>) {
        let kept = self.entries.split_off(&log_id.index.saturating_add(1));
        for (_, (_, size)) in std::mem::replace(&mut self.entries, kept) {
            self.held = self.held.saturating_sub(size);
        }
        self.evicted = self.evicted.filter(|&e| e > log_id.index);
        self.last_purged = self.last_purged.max(Some(log_id));
        self.last = self.last.max(Some(log_id));
    }
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    // Every change to the tail is one map operation: a poisoned lock holds a whole state.
    tail.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a start verified: the entries (the newest within the budget), and the greatest
/// committed id they carry.
struct Found {
    tail: Tail,
    committed: Option<LogId<NodeId>>,
}

impl Replay for Found {
    fn snapshot(&mut self, snapshot: Option<RecoveredSnapshot>) -> Result<(), String> {
        match snapshot {
            None => Ok(()),
            Some(s) => Err(format!(
                "the replica's log has a sealed snapshot ({}), which replicas do not write yet",
                s.id
            )),
        }
    }

    fn record(&mut self, record: RecoveredRecord) -> Result<(), String> {
        let sealed = decode_record(&record.payload)?;
        let index = sealed.entry.log_id.index;
        if index.checked_add(1) != Some(record.position) {
            return Err(format!(
                "the record at position {} holds entry {index}",
                record.position
            ));
        }
        self.committed = self.committed.max(sealed.committed);
        self.tail.insert(sealed.entry, record.payload.len());
        // Everything verified is durable.
        self.tail.evict(u64::MAX);
        Ok(())
    }
}

/// A record sealed but not known durable yet.
struct Unflushed {
    position: u64,
    revision: u64,
    bytes: Bytes,
}

/// What the flusher answers once the records before it are durable.
enum Done {
    /// openraft's report for one `append`.
    Flushed(LogFlushed<Nautilus>),
    /// A wait for every earlier append (before a vote, a truncation).
    Barrier(oneshot::Sender<Result<(), DurableError>>),
}

impl Done {
    fn complete(self, result: Result<(), &DurableError>) {
        match self {
            Self::Flushed(callback) => {
                callback.log_io_completed(result.map_err(|e| std::io::Error::other(e.to_string())))
            }
            Self::Barrier(reply) => {
                let _ = reply.send(result.map_err(Clone::clone));
            }
        }
    }
}

enum Flush {
    Append {
        records: Vec<Unflushed>,
        callback: LogFlushed<Nautilus>,
    },
    Barrier(oneshot::Sender<Result<(), DurableError>>),
}

/// One record on its way: what resolves once it is durable (`None` before it is submitted
/// again after a refusal), and what waits on it.
struct Pending {
    record: Unflushed,
    durable: Option<oneshot::Receiver<Result<u64, DurableError>>>,
    done: Vec<Done>,
}

/// The next answer about the oldest pending record (never resolves without one).
async fn front_durable(pending: &mut VecDeque<Pending>) -> Result<u64, DurableError> {
    match pending.front_mut().and_then(|p| p.durable.as_mut()) {
        Some(durable) => durable
            .await
            .unwrap_or_else(|_| Err(DurableError::Unavailable("the durable log stopped".into()))),
        None => std::future::pending().await,
    }
}

/// The task that owns the records on their way to the host: submits them in order (the
/// durable log groups them into one frame and one sync), answers each `append` once its last
/// record is durable, and after a refusal resumes the log and submits every record not durable
/// again, in order, until the host takes them.
async fn flush(log: DurableLog, mut ops: mpsc::Receiver<Flush>, durable_end: Arc<AtomicU64>) {
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut retry = RETRY_FIRST;
    loop {
        tokio::select! {
            op = ops.recv(), if pending.len() < MAX_UNFLUSHED => {
                let Some(op) = op else { return };
                let done = match op {
                    Flush::Append { records, callback } => {
                        for record in records {
                            let durable = log.submit(record.revision, record.bytes.clone()).await;
                            let Ok(durable) = durable else {
                                return fail(pending, Done::Flushed(callback), &log_stopped());
                            };
                            pending.push_back(Pending { record, durable: Some(durable), done: Vec::new() });
                        }
                        Done::Flushed(callback)
                    }
                    Flush::Barrier(reply) => Done::Barrier(reply),
                };
                match pending.back_mut() {
                    Some(last) => last.done.push(done),
                    None => done.complete(Ok(())),
                }
            }
            durable = front_durable(&mut pending) => match durable {
                Ok(position) => {
                    retry = RETRY_FIRST;
                    let Some(front) = pending.pop_front() else { continue };
                    if position != front.record.position {
                        let error = DurableError::Unavailable(format!(
                            "the sealed raft log put position {} at {position}",
                            front.record.position
                        ));
                        pending.push_front(front);
                        return fail_all(pending, &error);
                    }
                    // Entries below `position` (entry `i` is at `i + 1`) are durable.
                    durable_end.store(position, Ordering::Release);
                    for done in front.done {
                        done.complete(Ok(()));
                    }
                }
                Err(_) if log.stopped() => return fail_all(pending, &log_stopped()),
                Err(error) => {
                    tracing::warn!(%error, pending = pending.len(), "the host refused raft log records; they are sent again once it takes them");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                    // Everything submitted before the resume is refused with the first refusal,
                    // so the records land in order.
                    if log.resume().await.is_err() {
                        return fail_all(pending, &log_stopped());
                    }
                    for p in &mut pending {
                        match log.submit(p.record.revision, p.record.bytes.clone()).await {
                            Ok(durable) => p.durable = Some(durable),
                            Err(_) => return fail_all(pending, &log_stopped()),
                        }
                    }
                }
            }
        }
    }
}

fn log_stopped() -> DurableError {
    DurableError::Unavailable("the durable log stopped".into())
}

fn fail(pending: VecDeque<Pending>, done: Done, error: &DurableError) {
    fail_all(pending, error);
    done.complete(Err(error));
}

fn fail_all(pending: VecDeque<Pending>, error: &DurableError) {
    tracing::error!(%error, "the sealed raft log stopped");
    for p in pending {
        for done in p.done {
            done.complete(Err(error));
        }
    }
}

fn write_error(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::error(e)).into()
}

/// openraft's log storage on the sealed durable log (see the module documentation).
pub(crate) struct SealedLog {
    node: NodeId,
    log: DurableLog,
    tail: Arc<Mutex<Tail>>,
    /// Entries below this index are durable (the flusher moves it).
    durable_end: Arc<AtomicU64>,
    /// The log position the next entry goes to.
    next_position: u64,
    committed: Option<LogId<NodeId>>,
    flusher: mpsc::Sender<Flush>,
}

/// Reads a [`SealedLog`]'s entries (replication tasks hold one each).
#[derive(Clone)]
pub(crate) struct SealedReader {
    tail: Arc<Mutex<Tail>>,
    log: DurableLog,
}

impl SealedLog {
    /// Opens the sealed log in the store at `store` for replica `node`: verifies the chain
    /// (a record that does not verify fails the start, naming its position) and holds its
    /// newest entries, up to `tail_bytes` of them ([`TAIL_BYTES`] outside tests).
    pub(crate) async fn open(
        store: SinkAddr,
        keys: Keys,
        node: NodeId,
        tail_bytes: usize,
    ) -> Result<Self, DurableError> {
        let mut found = Found {
            tail: Tail {
                entries: BTreeMap::new(),
                held: 0,
                budget: tail_bytes,
                evicted: None,
                last: None,
                last_purged: None,
            },
            committed: None,
        };
        let (log, _) = DurableLog::open(
            store,
            keys,
            false,
            &mut found,
            crate::durable::REPLICA_TAGS_KEPT,
        )
        .await?;
        let next_position = found
            .tail
            .last
            .map_or(1, |last| last.index.saturating_add(2));
        let durable_end = Arc::new(AtomicU64::new(next_position - 1));
        let (flusher, ops) = mpsc::channel(1024);
        tokio::spawn(flush(log.clone(), ops, durable_end.clone()));
        Ok(Self {
            node,
            log,
            tail: Arc::new(Mutex::new(found.tail)),
            durable_end,
            next_position,
            committed: found.committed,
            flusher,
        })
    }

    /// The vote this replica id sealed, if any (another incarnation's does not open).
    async fn read_sealed_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let read_error = |e: &dyn std::fmt::Display| -> StorageError<NodeId> {
            StorageIOError::read_vote(AnyError::error(e)).into()
        };
        let Some(sealed) = self
            .log
            .get_blob(VOTE_BLOB)
            .await
            .map_err(|e| read_error(&e))?
        else {
            return Ok(None);
        };
        match self.log.keys().open_vote(self.node, &sealed) {
            // Read back at a start, a vote is never a leadership: openraft would resume as
            // leader in its old term without an election, and its core take over before the
            // entries its former incarnation appended in that term are applied (that
            // uncommitted tail then applies as another writer's entry, and the core stops
            // writing while openraft still leads). Without `committed` the vote keeps its term
            // and whom it went to (this replica never votes twice in that term), and a leader
            // is elected in a new term.
            Ok(plain) => postcard::from_bytes::<Vote<NodeId>>(&plain)
                .map(|mut vote| {
                    vote.committed = false;
                    Some(vote)
                })
                .map_err(|e| read_error(&e)),
            Err(error) => {
                // Another incarnation's (or a changed) vote: this replica id never voted.
                tracing::info!(node = self.node, %error, "the sealed raft vote is not this replica's; it starts without one");
                Ok(None)
            }
        }
    }

    /// The durable log under it, for the blobs kept beside it.
    pub(crate) fn durable(&self) -> DurableLog {
        self.log.clone()
    }

    /// Waits until every record appended so far is durable.
    async fn barrier(&self) -> Result<(), DurableError> {
        let (reply, done) = oneshot::channel();
        self.flusher
            .send(Flush::Barrier(reply))
            .await
            .map_err(|_| log_stopped())?;
        done.await.map_err(|_| log_stopped())?
    }
}

/// Reads entries `range`: those evicted from the host, the rest from memory.
async fn read_entries<RB: RangeBounds<u64>>(
    tail: &Mutex<Tail>,
    log: &DurableLog,
    range: RB,
) -> Result<Vec<Entry<Nautilus>>, StorageError<NodeId>> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    let (from_host, held) = {
        let tail = lock(tail);
        // Purged entries are gone, even while the host still holds their records.
        let start = start.max(tail.last_purged.map_or(0, |p| p.index.saturating_add(1)));
        if start >= end {
            return Ok(Vec::new());
        }
        let from_host = tail
            .evicted
            .filter(|&evicted| start <= evicted)
            .map(|evicted| (start, evicted.min(end - 1)));
        let held: Vec<_> = tail
            .entries
            .range(start..end)
            .map(|(_, (e, _))| e.clone())
            .collect();
        (from_host, held)
    };
    let mut out = Vec::new();
    if let Some((first, last)) = from_host {
        let read_error = |e: &dyn std::fmt::Display| -> StorageError<NodeId> {
            StorageIOError::read_logs(AnyError::error(e)).into()
        };
        // Entry `i` is at position `i + 1`.
        let records = log
            .read(first.saturating_add(1), last.saturating_add(1))
            .await
            .map_err(|e| read_error(&e))?;
        for record in records {
            let sealed = decode_record(&record.payload).map_err(|e| read_error(&e))?;
            if sealed.entry.log_id.index.checked_add(1) != Some(record.position) {
                return Err(read_error(&format!(
                    "the record at position {} holds entry {}",
                    record.position, sealed.entry.log_id.index
                )));
            }
            out.push(sealed.entry);
        }
    }
    out.extend(held);
    Ok(out)
}

impl RaftLogReader<Nautilus> for SealedReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Nautilus>>, StorageError<NodeId>> {
        read_entries(&self.tail, &self.log, range).await
    }
}

impl RaftLogReader<Nautilus> for SealedLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Nautilus>>, StorageError<NodeId>> {
        read_entries(&self.tail, &self.log, range).await
    }
}

impl RaftLogStorage<Nautilus> for SealedLog {
    type LogReader = SealedReader;

    async fn get_log_state(&mut self) -> Result<LogState<Nautilus>, StorageError<NodeId>> {
        let tail = lock(&self.tail);
        Ok(LogState {
            last_purged_log_id: tail.last_purged,
            last_log_id: tail.last,
        })
    }

    async fn get_log_reader(&mut self) -> SealedReader {
        SealedReader {
            tail: self.tail.clone(),
            log: self.log.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote_error = |e: &dyn std::fmt::Display| -> StorageError<NodeId> {
            StorageIOError::write_vote(AnyError::error(e)).into()
        };
        let plain = postcard::to_allocvec(vote).map_err(|e| vote_error(&e))?;
        let sealed = self
            .log
            .keys()
            .seal_vote(self.node, &plain, crate::durable::seal::nonce());
        self.barrier().await.map_err(|e| vote_error(&e))?;
        // The vote must be on disk before openraft answers with it: a host that cannot write
        // holds the vote (and so the answer) until it can.
        let mut retry = RETRY_FIRST;
        loop {
            match self.log.put_blob(VOTE_BLOB, sealed.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if self.log.stopped() => return Err(vote_error(&e)),
                Err(error) => {
                    tracing::warn!(%error, "the host refused the raft vote; it is sent again");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let sealed = self.read_sealed_vote().await?;
        // A replica's term is never below its log's last entry's (raft's invariant, which a
        // start under a new id, without a vote of its own, would break): below it, it would
        // take AppendEntries from a stale leader of a lower term and put that leader's entries
        // after its own later-term ones. The floor is a vote for the leader that wrote that
        // entry, never committed: that leader (its term's only one) and every later one are
        // followed, earlier ones refused.
        let Some(last) = lock(&self.tail).last else {
            return Ok(sealed);
        };
        let floor = Vote::new(last.leader_id.term, last.leader_id.node_id);
        Ok(match sealed {
            Some(vote) if vote.leader_id.term >= floor.leader_id.term => Some(vote),
            _ => Some(floor),
        })
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.committed = self.committed.max(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Nautilus>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<Nautilus>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<Nautilus>> = entries.into_iter().collect();
        let mut records = Vec::with_capacity(entries.len());
        let mut sizes = Vec::with_capacity(entries.len());
        let mut position = self.next_position;
        for entry in &entries {
            if entry.log_id.index.checked_add(1) != Some(position) {
                return Err(StorageIOError::write_log_entry(
                    entry.log_id,
                    AnyError::error(format!(
                        "entry {} does not continue the sealed log, which goes on at position \
                         {position} (a log that restarts after a snapshot needs sealed snapshots)",
                        entry.log_id.index
                    )),
                )
                .into());
            }
            let bytes = encode_record(self.committed, entry).map_err(write_error)?;
            if bytes.len() > MAX_RECORD {
                return Err(write_error(DurableError::TooLarge(bytes.len())));
            }
            let revision = match &entry.payload {
                EntryPayload::Normal(batch) => batch.revision_last,
                EntryPayload::Blank | EntryPayload::Membership(_) => 0,
            };
            sizes.push(bytes.len());
            records.push(Unflushed {
                position,
                revision,
                bytes: Bytes::from(bytes),
            });
            position += 1;
        }
        // Readable once this returns, durable once the callback says so.
        {
            let mut tail = lock(&self.tail);
            for (entry, size) in entries.into_iter().zip(sizes) {
                tail.insert(entry, size);
            }
            tail.evict(self.durable_end.load(Ordering::Acquire));
        }
        self.next_position = position;
        self.flusher
            .send(Flush::Append { records, callback })
            .await
            .map_err(|_| write_error(log_stopped()))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Entries from `log_id.index` go: positions after `log_id.index` (entry `i` is at
        // position `i + 1`), once nothing is in flight after them.
        self.barrier().await.map_err(write_error)?;
        self.log
            .truncate_after(log_id.index)
            .await
            .map_err(write_error)?;
        // The entry before the cut is the last one: held, else read back from the host.
        let before = match log_id.index.checked_sub(1) {
            None => None,
            Some(previous) => read_entries(&self.tail, &self.log, previous..=previous)
                .await?
                .first()
                .map(|e| e.log_id),
        };
        {
            let mut tail = lock(&self.tail);
            tail.cut(log_id.index);
            tail.last = before.or(tail.last_purged);
        }
        self.next_position = log_id.index.saturating_add(1);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        lock(&self.tail).purge(log_id);
        Ok(())
    }
}

#[cfg(test)]
#[derive(Debug, Default)]
struct Log {
    entries: BTreeMap<u64, Entry<Nautilus>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

/// For tests: an in-memory raft log; clones share it (the reader openraft asks for is one).
/// Every append is "flushed" at once; the vote and committed index are kept beside it.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct MemLog(Arc<Mutex<Log>>);

#[cfg(test)]
impl MemLog {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
impl RaftLogReader<Nautilus> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Nautilus>>, StorageError<NodeId>> {
        Ok(self
            .log()
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

#[cfg(test)]
impl RaftLogStorage<Nautilus> for MemLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Nautilus>, StorageError<NodeId>> {
        let log = self.log();
        let last = log.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: log.last_purged,
            last_log_id: last.or(log.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.log().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Nautilus>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<Nautilus>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut log = self.log();
            for entry in entries {
                log.entries.insert(entry.log_id.index, entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().entries.retain(|&index, _| index < log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.log();
        log.entries.retain(|&index, _| index > log_id.index);
        log.last_purged = Some(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! [`SealedLog`] against the in-memory host speaking the real storage frames
    //! (`durable::test_host`), restarted by opening the same host again.

    use std::collections::BTreeMap;

    use bytes::Bytes;
    use nautilus_wire::storage::ErrorKind;
    use openraft::storage::RaftLogStorageExt as _;
    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::durable::test_host::{Host, serve};
    use crate::replica::entry::{Batch, WriterId};
    use crate::replica::types::Member;

    const WAIT: Duration = Duration::from_secs(10);

    fn keys() -> Keys {
        Keys::derive(&[5; 32], "replicas")
    }

    async fn open(host: &Arc<Mutex<Host>>, node: NodeId) -> SealedLog {
        let (addr, _task) = serve(host.clone());
        SealedLog::open(addr, keys(), node, TAIL_BYTES)
            .await
            .unwrap()
    }

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// Entry `index` of `term`: a membership first, then batches and a blank one.
    fn entry(term: u64, index: u64) -> Entry<Nautilus> {
        let payload = match index {
            0 => EntryPayload::Membership(Membership::new(
                vec![[1, 2, 3].into_iter().collect()],
                (1..=3u64)
                    .map(|id| {
                        (
                            id,
                            Member {
                                slot: id as u8,
                                peer_addr: format!("r{id}"),
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            )),
            5 => EntryPayload::Blank,
            _ => EntryPayload::Normal(Batch {
                writer: WriterId {
                    node: 1,
                    epoch: term,
                },
                journal_last: index,
                revision_last: 100 + index,
                at: 7,
                records: vec![Bytes::from(format!("record {index} of term {term}"))],
            }),
        };
        Entry {
            log_id: log_id(term, index),
            payload,
        }
    }

    fn entries(term: u64, indexes: std::ops::Range<u64>) -> Vec<Entry<Nautilus>> {
        indexes.map(|i| entry(term, i)).collect()
    }

    async fn read_all(log: &mut SealedLog) -> Vec<Entry<Nautilus>> {
        let mut reader = log.get_log_reader().await;
        reader.try_get_log_entries(..).await.unwrap()
    }

    #[tokio::test]
    async fn entries_vote_and_committed_come_back_after_a_restart_sealed() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        assert_eq!(log.read_vote().await.unwrap(), None);
        assert_eq!(log.get_log_state().await.unwrap().last_log_id, None);
        let vote = Vote::new_committed(2, 1);
        log.save_vote(&vote).await.unwrap();
        log.blocking_append(entries(2, 0..8)).await.unwrap();
        log.save_committed(Some(log_id(2, 6))).await.unwrap();
        // The committed id travels in the next record.
        log.blocking_append(entries(2, 8..9)).await.unwrap();
        let written = read_all(&mut log).await;
        assert_eq!(written, entries(2, 0..9));
        drop(log);
        for record in host.lock().unwrap().log.values() {
            assert!(
                !record.windows(6).any(|w| w == b"record"),
                "an entry reached the host in clear"
            );
        }

        let mut log = open(&host, 1).await;
        assert_eq!(read_all(&mut log).await, written);
        let state = log.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (None, Some(log_id(2, 8)))
        );
        assert_eq!(
            log.read_vote().await.unwrap(),
            Some(Vote::new(2, 1)),
            "the vote comes back, its leadership not: a leader is elected in a new term"
        );
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(2, 6)));
        // Appends go on after the verified tail.
        log.blocking_append(entries(2, 9..10)).await.unwrap();
        drop(log);
        let mut log = open(&host, 1).await;
        assert_eq!(read_all(&mut log).await, entries(2, 0..10));
    }

    #[tokio::test]
    async fn a_truncation_cuts_the_host_log_in_place_and_the_chain_goes_on_across_a_restart() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        log.blocking_append(entries(1, 0..6)).await.unwrap();
        log.truncate(log_id(1, 3)).await.unwrap();
        assert_eq!(read_all(&mut log).await, entries(1, 0..3));
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, 2))
        );
        assert_eq!(host.lock().unwrap().log.len(), 3, "the host cut its log");
        // A later term's entries replace the cut ones, without a restart.
        log.blocking_append(entries(2, 3..7)).await.unwrap();
        let expected: Vec<_> = entries(1, 0..3)
            .into_iter()
            .chain(entries(2, 3..7))
            .collect();
        assert_eq!(read_all(&mut log).await, expected);
        drop(log);
        let mut log = open(&host, 1).await;
        assert_eq!(read_all(&mut log).await, expected);
        // And once more after the restart.
        log.truncate(log_id(2, 5)).await.unwrap();
        log.blocking_append(entries(3, 5..6)).await.unwrap();
        drop(log);
        let mut log = open(&host, 1).await;
        let expected: Vec<_> = entries(1, 0..3)
            .into_iter()
            .chain(entries(2, 3..5))
            .chain(entries(3, 5..6))
            .collect();
        assert_eq!(read_all(&mut log).await, expected);
    }

    #[tokio::test]
    async fn entries_beyond_the_memory_budget_are_read_back_from_the_host() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (addr, _task) = serve(host.clone());
        // No budget: every durable entry is read back from the host.
        let mut log = SealedLog::open(addr, keys(), 1, 0).await.unwrap();
        log.blocking_append(entries(1, 0..10)).await.unwrap();
        log.blocking_append(entries(1, 10..12)).await.unwrap();
        assert!(
            lock(&log.tail).entries.len() <= 2,
            "only entries not yet known durable are held"
        );
        assert_eq!(read_all(&mut log).await, entries(1, 0..12));
        let mut reader = log.get_log_reader().await;
        assert_eq!(
            reader.try_get_log_entries(3..5).await.unwrap(),
            entries(1, 3..5)
        );
        // A cut inside what is on the host only, then a later term's entries.
        log.truncate(log_id(1, 5)).await.unwrap();
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, 4)),
            "the entry before the cut, read back"
        );
        log.blocking_append(entries(2, 5..8)).await.unwrap();
        let expected: Vec<_> = entries(1, 0..5)
            .into_iter()
            .chain(entries(2, 5..8))
            .collect();
        assert_eq!(read_all(&mut log).await, expected);
        drop(log);
        let (addr, _task) = serve(host.clone());
        let mut log = SealedLog::open(addr, keys(), 1, 0).await.unwrap();
        assert!(lock(&log.tail).entries.is_empty());
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(2, 7))
        );
        assert_eq!(read_all(&mut log).await, expected);
        // A host that changed a record it hands back is refused.
        host.lock().unwrap().log.get_mut(&3).unwrap()[30] ^= 1;
        assert!(log.try_get_log_entries(1..4).await.is_err());
    }

    #[tokio::test]
    async fn a_purge_drops_entries_up_to_it_and_appends_go_on() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        log.blocking_append(entries(1, 0..6)).await.unwrap();
        log.purge(log_id(1, 3)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(log_id(1, 3)), Some(log_id(1, 5)))
        );
        assert_eq!(read_all(&mut log).await, entries(1, 4..6));
        log.blocking_append(entries(1, 6..8)).await.unwrap();
        assert_eq!(read_all(&mut log).await, entries(1, 4..8));
        // Purging everything leaves the purged id as the last one.
        log.purge(log_id(1, 7)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 7)));
        assert!(read_all(&mut log).await.is_empty());
        // Nothing on the host is lost (it is dropped there once sealed snapshots cover it).
        drop(log);
        let mut log = open(&host, 1).await;
        assert_eq!(read_all(&mut log).await, entries(1, 0..8));
    }

    #[tokio::test]
    async fn a_vote_opens_only_for_the_node_id_that_saved_it() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        let vote = Vote::new(3, 1);
        log.save_vote(&vote).await.unwrap();
        drop(log);
        let mut restarted = open(&host, 4).await;
        assert_eq!(
            restarted.read_vote().await.unwrap(),
            None,
            "a new incarnation starts without the old one's vote"
        );
        drop(restarted);
        assert_eq!(open(&host, 1).await.read_vote().await.unwrap(), Some(vote));
        // A vote blob the host changed does not open either.
        host.lock()
            .unwrap()
            .blobs
            .get_mut(VOTE_BLOB)
            .unwrap()
            .last_mut()
            .map(|b| *b ^= 1)
            .unwrap();
        assert_eq!(open(&host, 1).await.read_vote().await.unwrap(), None);
    }

    /// A replica started under a new id on a log of later terms starts in its last entry's
    /// term (a vote for that entry's leader, never a leadership), so a stale leader of a lower
    /// term cannot append to it; a vote of its own above that floor is kept.
    #[tokio::test]
    async fn a_start_without_a_vote_is_in_its_last_entrys_term() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        log.blocking_append(entries(3, 0..4)).await.unwrap();
        log.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
        drop(log);
        assert_eq!(
            open(&host, 7).await.read_vote().await.unwrap(),
            Some(Vote::new(3, 1)),
            "a new id: no vote of its own, the floor of its log's last entry's leader"
        );
        let mut log = open(&host, 1).await;
        log.save_vote(&Vote::new(5, 2)).await.unwrap();
        drop(log);
        assert_eq!(
            open(&host, 1).await.read_vote().await.unwrap(),
            Some(Vote::new(5, 2)),
            "its own vote above the floor"
        );
        let empty = Arc::new(Mutex::new(Host::default()));
        assert_eq!(open(&empty, 7).await.read_vote().await.unwrap(), None);
    }

    /// Spawns a `blocking_append` of `entries`; hands the log back when openraft would have
    /// been told they are flushed.
    fn append_in_background(
        mut log: SealedLog,
        entries: Vec<Entry<Nautilus>>,
    ) -> tokio::task::JoinHandle<SealedLog> {
        tokio::spawn(async move {
            log.blocking_append(entries).await.unwrap();
            log
        })
    }

    #[tokio::test]
    async fn an_append_is_flushed_only_once_the_host_acknowledged_its_sync() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        log.blocking_append(entries(1, 0..2)).await.unwrap();

        // A sync that does not return: the records reach the host, the report waits.
        host.lock().unwrap().hold_syncs = true;
        let mut appending = append_in_background(log, entries(1, 2..5));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            host.lock().unwrap().log.len(),
            5,
            "the host has the records"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut appending)
                .await
                .is_err(),
            "not reported flushed before the host's sync returned"
        );
        host.lock().unwrap().hold_syncs = false;
        let log = tokio::time::timeout(WAIT, appending)
            .await
            .unwrap()
            .unwrap();

        // The host fails its syncs (EIO): the records are sent again until it takes them.
        host.lock().unwrap().fail_appends = Some(ErrorKind::Io);
        let mut appending = append_in_background(log, entries(1, 5..9));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut appending)
                .await
                .is_err(),
            "not reported flushed while the host refuses"
        );
        assert_eq!(host.lock().unwrap().log.len(), 5);
        host.lock().unwrap().fail_appends = None;
        let mut log = tokio::time::timeout(WAIT, appending)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_all(&mut log).await, entries(1, 0..9));

        // A vote waits for the appends before it, and for its own write.
        host.lock().unwrap().hold_syncs = true;
        let mut log = {
            let appending = append_in_background(log, entries(1, 9..10));
            tokio::time::sleep(Duration::from_millis(50)).await;
            host.lock().unwrap().hold_syncs = false;
            tokio::time::timeout(WAIT, appending)
                .await
                .unwrap()
                .unwrap()
        };
        log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
        drop(log);
        let mut log = open(&host, 1).await;
        assert_eq!(
            read_all(&mut log).await,
            entries(1, 0..10),
            "every record once, in order"
        );
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(1, 1)));
    }

    #[tokio::test]
    async fn a_vote_is_saved_only_after_the_appends_before_it_are_durable() {
        let host = Arc::new(Mutex::new(Host::default()));
        let mut log = open(&host, 1).await;
        log.blocking_append(entries(1, 0..2)).await.unwrap();
        host.lock().unwrap().hold_syncs = true;
        // An append whose report is not awaited, then a vote.
        let (tx, flushed) = oneshot::channel::<()>();
        let saving = tokio::spawn(async move {
            let appended = log.blocking_append(entries(1, 2..3));
            let _ = tokio::time::timeout(Duration::from_millis(50), appended).await;
            let _ = tx.send(());
            log.save_vote(&Vote::new(2, 1)).await.unwrap();
            log
        });
        flushed.await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !host.lock().unwrap().blobs.contains_key(VOTE_BLOB),
            "the vote waits for the append before it"
        );
        host.lock().unwrap().hold_syncs = false;
        let mut log = tokio::time::timeout(WAIT, saving).await.unwrap().unwrap();
        assert!(host.lock().unwrap().blobs.contains_key(VOTE_BLOB));
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
    }
}
