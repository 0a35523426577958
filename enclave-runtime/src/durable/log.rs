//! The durable log: [`DurableLog::open`] verifies what the host holds (the newest snapshot,
//! then every record after it, as one hash chain) and hands it back; afterwards one task owns
//! the chain's tail, seals appends in order, batches what is queued into one frame, and
//! resolves each append once the host says it is synced. For the replicas' raft log it also
//! cuts the tail in place (it keeps the tags of the last sealed records to chain on) and reads
//! records back from the host, verified again.
//!
//! Failure handling keeps the chain honest: when the host refuses an append (disk full, `EIO`
//! on sync), every append in flight fails (each was chained on the one before), the tail goes
//! back to the last durable record, and a `TruncateAfter` lifts the host's fence before any new
//! append is sent. When the connection breaks (the proxy restarted), the task reconnects,
//! truncates the host's log to the last acknowledged position and sends the in-flight records
//! again, byte for byte (no new encryption, so no nonce is ever reused for other bytes).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use nautilus_wire::storage::{Answer, ErrorKind, MAX_ITEM, MAX_RECORDS, Request};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, oneshot};

use super::channel::{self, Conn};
use super::seal::{self, GENESIS, Keys, Manifest, SealError, TAG};
use super::{
    DurableError, Recovered, RecoveredRecord, RecoveredSnapshot, Replay, SnapshotAt, Status,
};
use crate::log_sink::SinkAddr;

/// Append batches in flight (sent, not yet durable) before new appends wait.
const MAX_IN_FLIGHT: usize = 64;
/// Most payload bytes sealed into one append frame.
const BATCH_BYTES: usize = 4 << 20;
/// Queued commands (appends and snapshot steps) before callers wait.
const QUEUE: usize = 8192;
/// Largest payload of one record.
pub(crate) const MAX_RECORD: usize = MAX_ITEM - seal::OVERHEAD;
/// Snapshots kept on the host: the newest and the one before it.
const SNAPSHOTS_KEPT: usize = 2;
/// Tags of the last sealed positions a replica's log keeps, so that the tail can go back to
/// any of them in place (a raft follower's conflicting tail is cut there: raft cuts only
/// entries not yet committed, which are few). The single-replica log never cuts its tail and
/// keeps one (2.6 MB less).
pub(crate) const REPLICA_TAGS_KEPT: usize = if cfg!(test) { 8 } else { 65_536 };

type Reply = oneshot::Sender<Result<u64, DurableError>>;

enum Command {
    Append {
        revision: u64,
        record: Bytes,
        reply: Reply,
    },
    /// A request with a single answer (snapshot steps, truncation).
    Call {
        request: Request,
        reply: oneshot::Sender<Result<Answer, DurableError>>,
    },
    /// The last sealed position and its tag (where a snapshot taken now stands).
    Point {
        reply: oneshot::Sender<(u64, [u8; TAG])>,
    },
    /// Resolves once `position` is durable.
    WaitDurable { position: u64, reply: Reply },
    /// Reads records back from the host (see [`DurableLog::read`]).
    Read {
        from: u64,
        to: u64,
        reply: oneshot::Sender<Result<Vec<RecoveredRecord>, DurableError>>,
    },
    /// A snapshot now covers the log up to this point: reads verify from it.
    Anchor { position: u64, tag: [u8; TAG] },
    /// Cuts the log after `position` and continues the chain from there (see
    /// [`DurableLog::truncate_after`]).
    Rewind {
        position: u64,
        reply: oneshot::Sender<Result<Answer, DurableError>>,
    },
    /// Takes appends again after a refusal (see [`DurableLog::resume`]).
    Resume,
}

/// The durable log's handle (cheap to clone).
#[derive(Clone)]
pub(crate) struct DurableLog {
    tx: mpsc::Sender<Command>,
    keys: Arc<Keys>,
    status: Arc<Mutex<Status>>,
}

/// One sealed snapshot chunk, with its part of the manifest's root.
pub(crate) struct SealedChunk {
    bytes: Vec<u8>,
    digest: [u8; 32],
}

/// What a snapshot's encoder hands the writer: each chunk, then the end.
pub(crate) enum SnapshotPart {
    Chunk(SealedChunk),
    End,
}

/// Seals the chunks of one snapshot (see [`DurableLog::chunk_sealer`]).
pub(crate) struct ChunkSealer {
    keys: Arc<Keys>,
    snapshot: u64,
}

impl ChunkSealer {
    /// Seals chunk `index`; a chunk too large for the host's item bound is refused.
    pub(crate) fn seal(&self, index: usize, chunk: &[u8]) -> Result<SealedChunk, DurableError> {
        if chunk.len() > MAX_RECORD {
            return Err(DurableError::TooLarge(chunk.len()));
        }
        let index = u32::try_from(index).map_err(|_| DurableError::TooLarge(index))?;
        let bytes = self
            .keys
            .seal_chunk(self.snapshot, index, chunk, seal::nonce());
        let digest = seal::chunk_digest(&bytes);
        Ok(SealedChunk { bytes, digest })
    }
}

/// Where a snapshot taken now stands in the log (see [`DurableLog::snapshot_point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotPoint {
    /// The last record the snapshot's state includes.
    pub(crate) position: u64,
    tag: [u8; TAG],
}

impl DurableLog {
    /// Connects to the store at `addr`, verifies its snapshot and log under `keys`, and starts
    /// the log's task. A tampered or inconsistent copy is [`DurableError::Tampered`] (naming
    /// the file and position) unless `recover`, which cuts the log after the last valid record
    /// (and drops a bad snapshot) and says what it dropped.
    /// What verifies goes to `replay` as it is read.
    pub(crate) async fn open(
        addr: SinkAddr,
        keys: Keys,
        recover: bool,
        replay: &mut dyn Replay,
        tags_kept: usize,
    ) -> Result<(Self, Recovered), DurableError> {
        let tags_kept = tags_kept.max(1);
        let stream = channel::connect(&addr).await.map_err(|e| {
            DurableError::Unavailable(format!("cannot reach the store at {addr}: {e}"))
        })?;
        let mut conn = Conn::new(stream);
        let keys = Arc::new(keys);
        let recovered = verify(&mut conn, &keys, recover, replay, tags_kept).await?;
        let (position, tag) = recovered.tail;
        let tags = recovered.tags.clone();
        let anchor = recovered.anchor;
        let status = Arc::new(Mutex::new(Status {
            connected: true,
            durable: position,
            sealed: position,
            snapshot: recovered.snapshot.map(|s| (s.revision, s.position)),
            records_recovered: recovered.records,
            dropped: recovered.dropped.clone(),
            ..Status::default()
        }));
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = Task {
            addr,
            keys: keys.clone(),
            rx,
            sealed: (position, tag),
            durable: (position, tag),
            in_flight: VecDeque::new(),
            calls: HashMap::new(),
            waiters: Vec::new(),
            status: status.clone(),
            halted: None,
            tags,
            tags_kept,
            anchor,
            reads: HashMap::new(),
        };
        tokio::spawn(task.run(conn));
        Ok((Self { tx, keys, status }, recovered))
    }

    /// Appends `record` (with its `revision`) at the next position; resolves with that
    /// position once the host has synced it.
    /// One append on its own: a refusal before it does not hold it back (it resumes the log).
    pub(crate) async fn append(
        &self,
        revision: u64,
        record: impl Into<Bytes>,
    ) -> Result<u64, DurableError> {
        self.resume().await?;
        self.submit(revision, record.into())
            .await?
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?
    }

    /// After a refusal, takes appends again. Between a refusal and this call every append is
    /// refused with it, including those already queued: a caller that submits in order and
    /// sends its refused entries again, in order, after resuming, never sees a later entry
    /// appended before an earlier one.
    pub(crate) async fn resume(&self) -> Result<(), DurableError> {
        self.tx
            .send(Command::Resume)
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))
    }

    /// Queues `record` (with its `revision`) for the next position and hands back what
    /// resolves once it is durable: callers that submit in order are appended in that order,
    /// and may have many in flight (group commit) before awaiting the first. The bytes are
    /// shared, not copied: a caller keeps them to submit again after a refusal.
    pub(crate) async fn submit(
        &self,
        revision: u64,
        record: Bytes,
    ) -> Result<oneshot::Receiver<Result<u64, DurableError>>, DurableError> {
        if record.len() > MAX_RECORD {
            return Err(DurableError::TooLarge(record.len()));
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Append {
                revision,
                record,
                reply,
            })
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        Ok(answer)
    }

    /// Where a snapshot whose state is captured now stands: call it while the state cannot
    /// change (under the store lock), then [`DurableLog::write_snapshot`] outside it.
    pub(crate) async fn snapshot_point(&self) -> Result<SnapshotPoint, DurableError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Point { reply })
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        let (position, tag) = answer
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        Ok(SnapshotPoint { position, tag })
    }

    /// Sends `request` in turn with appends; its answer, a host's refusal included.
    async fn call_raw(&self, request: Request) -> Result<Answer, DurableError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Call { request, reply })
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        answer
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?
    }

    async fn call(&self, request: Request) -> Result<Answer, DurableError> {
        match self.call_raw(request).await? {
            Answer::Error { kind, message } => Err(DurableError::from_host(kind, message)),
            other => Ok(other),
        }
    }

    /// What seals the chunks of the snapshot at `point`, on whatever thread encodes them.
    pub(crate) fn chunk_sealer(&self, point: SnapshotPoint) -> ChunkSealer {
        ChunkSealer {
            keys: self.keys.clone(),
            snapshot: point.position,
        }
    }

    /// Writes a snapshot of the state at `point` (revision `revision`) from `chunks`: seals
    /// them here, then as [`DurableLog::write_sealed_snapshot`].
    pub(crate) async fn write_snapshot(
        &self,
        point: SnapshotPoint,
        revision: u64,
        chunks: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<(), DurableError> {
        let sealer = self.chunk_sealer(point);
        let sealed: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(index, chunk)| sealer.seal(index, &chunk))
            .collect();
        let (tx, rx) = mpsc::channel(sealed.len() + 1);
        for chunk in sealed {
            let _ = tx.try_send(chunk.map(SnapshotPart::Chunk));
        }
        let _ = tx.try_send(Ok(SnapshotPart::End));
        self.write_sealed_snapshot(point, revision, rx, super::SnapshotPace::Unpaced)
            .await
    }

    /// Writes the snapshot whose sealed chunks arrive on `parts` (in order, then
    /// [`SnapshotPart::End`]), one at a time while appends go on; commits its manifest once
    /// `point` is durable, then drops the log segments and older snapshots it makes
    /// unnecessary. A stream that stops before its end commits nothing.
    pub(crate) async fn write_sealed_snapshot(
        &self,
        point: SnapshotPoint,
        revision: u64,
        mut parts: mpsc::Receiver<Result<SnapshotPart, DurableError>>,
        pace: super::SnapshotPace,
    ) -> Result<(), DurableError> {
        let id = point.position;
        let started = tokio::time::Instant::now();
        let mut written: u64 = 0;
        self.call(Request::DeleteSnapshot { snapshot: id }).await?;
        let mut digests = Vec::new();
        let mut count: u32 = 0;
        loop {
            let chunk = match parts.recv().await {
                Some(Ok(SnapshotPart::Chunk(chunk))) => chunk,
                Some(Ok(SnapshotPart::End)) => break,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(DurableError::Unavailable(
                        "the snapshot's encoder stopped before its end".into(),
                    ));
                }
            };
            digests.push(chunk.digest);
            written = written.saturating_add(chunk.bytes.len() as u64);
            self.call(Request::PutChunk {
                snapshot: id,
                index: count,
                bytes: chunk.bytes,
            })
            .await?;
            count += 1;
            if let Some(due) = pace.due(written) {
                tokio::time::sleep_until(started + due).await;
            }
        }
        let manifest = Manifest {
            revision,
            position: point.position,
            tag: point.tag,
            chunks: count,
            root: seal::root_of(digests),
        };
        // The manifest may only name records that are on disk.
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::WaitDurable {
                position: point.position,
                reply,
            })
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        answer
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))??;
        let sealed = self.keys.seal_manifest(id, &manifest, seal::nonce());
        self.call(Request::CommitSnapshot {
            snapshot: id,
            manifest: sealed,
        })
        .await?;
        if let Ok(mut status) = self.status.lock() {
            status.snapshot = Some((revision, point.position));
        }
        let _ = self
            .tx
            .send(Command::Anchor {
                position: point.position,
                tag: point.tag,
            })
            .await;
        self.truncate_before(point.position + 1).await?;
        if let Answer::Snapshots(ids) = self.call(Request::ListSnapshots).await? {
            let old = ids.len().saturating_sub(SNAPSHOTS_KEPT);
            for snapshot in ids.into_iter().take(old) {
                self.call(Request::DeleteSnapshot { snapshot }).await?;
            }
        }
        Ok(())
    }

    /// Drops records after `position` (a raft follower's conflicting tail) and goes on
    /// appending from there, chained on the record at `position`. Refused while an append
    /// after `position` is in flight (wait for it first), and for a position older than the
    /// last [`REPLICA_TAGS_KEPT`] sealed ones or before the last snapshot.
    // The replicas' sealed raft log calls it; the single-replica path never truncates.
    pub(crate) async fn truncate_after(&self, position: u64) -> Result<(), DurableError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Rewind { position, reply })
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        match answer
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))??
        {
            Answer::Error { kind, message } => Err(DurableError::from_host(kind, message)),
            _ => Ok(()),
        }
    }

    /// Reads the records at positions `from..=to` back from the host, verified as at start
    /// (chained from the record before `from` when its tag is still kept, else from the newest
    /// snapshot), for what is no longer held in memory. They must be durable.
    pub(crate) async fn read(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<RecoveredRecord>, DurableError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Read { from, to, reply })
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?;
        answer
            .await
            .map_err(|_| DurableError::Unavailable("the durable log stopped".into()))?
    }

    /// Reads the named blob (`None`: the host has none).
    pub(crate) async fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, DurableError> {
        match self
            .call_raw(Request::GetBlob { name: name.into() })
            .await?
        {
            Answer::Bytes(bytes) => Ok(Some(bytes)),
            Answer::Error {
                kind: ErrorKind::NotFound,
                ..
            } => Ok(None),
            Answer::Error { kind, message } => Err(DurableError::from_host(kind, message)),
            other => Err(unexpected(&other)),
        }
    }

    /// Writes the named blob; returns once the host has it on disk (temporary file, sync,
    /// rename). It is not ordered after appends still in flight: wait for them first.
    pub(crate) async fn put_blob(&self, name: &str, bytes: Vec<u8>) -> Result<(), DurableError> {
        self.call(Request::PutBlob {
            name: name.into(),
            bytes,
        })
        .await
        .map(|_| ())
    }

    /// The keys the log seals with (for what is sealed beside it: the replica's vote).
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether the log's task has stopped (every later call fails).
    pub(crate) fn stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// Drops whole segments before `position` (a snapshot covers them).
    pub(crate) async fn truncate_before(&self, position: u64) -> Result<(), DurableError> {
        self.call(Request::TruncateBefore { position })
            .await
            .map(|_| ())
    }

    /// The log's state for `/readyz?verbose`.
    pub(crate) fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Reads and verifies the newest usable snapshot and the log after it.
async fn verify(
    conn: &mut Conn,
    keys: &Keys,
    recover: bool,
    replay: &mut dyn Replay,
    tags_kept: usize,
) -> Result<Recovered, DurableError> {
    let protocol = |e: nautilus_wire::storage::FrameError| DurableError::Unavailable(e.to_string());
    let mut dropped = Vec::new();
    let ids = match conn.call(&Request::ListSnapshots).await.map_err(protocol)? {
        Answer::Snapshots(ids) => ids,
        other => return Err(unexpected(&other)),
    };
    let mut snapshot = None;
    for id in ids.into_iter().rev() {
        match read_snapshot(conn, keys, id).await? {
            Ok(found) => {
                snapshot = Some(found);
                break;
            }
            Err(tampered) if recover => {
                tracing::error!(%tampered, "recover-to-last-valid: dropping snapshot {id}");
                dropped.push(format!("snapshot {id} ({tampered})"));
                conn.call(&Request::DeleteSnapshot { snapshot: id })
                    .await
                    .map_err(protocol)?;
            }
            Err(tampered) => return Err(tampered),
        }
    }
    let (from, mut previous) = snapshot
        .as_ref()
        .map_or((1, GENESIS), |s: &RecoveredSnapshot| {
            (s.position + 1, s.tag)
        });
    let snapshot_at = snapshot.as_ref().map(|s| SnapshotAt {
        id: s.id,
        revision: s.revision,
        position: s.position,
    });
    replay.snapshot(snapshot).map_err(DurableError::Replay)?;
    let anchor = (from - 1, previous);
    let mut tags = VecDeque::from([anchor]);
    let mut expected = from;
    let mut records = 0u64;
    let mut failure: Option<DurableError> = None;
    let id = conn
        .send(&Request::ReadLog { from })
        .await
        .map_err(|e| DurableError::Unavailable(e.to_string()))?;
    let (first, last, torn) = loop {
        let (got, answer) = conn.recv().await.map_err(protocol)?;
        if got != id {
            continue;
        }
        match answer {
            Answer::Records {
                segment,
                records: batch,
            } => {
                for (position, sealed) in batch {
                    if failure.is_some() {
                        continue;
                    }
                    let file = format!("wal/{segment}");
                    if position != expected {
                        let reason = if position < expected {
                            format!("record {position} appears again (duplicated or reordered)")
                        } else {
                            format!("records {expected}..{position} are missing (a gap)")
                        };
                        failure = Some(DurableError::tampered(&file, expected, reason));
                        continue;
                    }
                    match keys.open_record(position, &previous, &sealed) {
                        Ok((revision, payload, tag)) => {
                            replay
                                .record(RecoveredRecord {
                                    position,
                                    revision,
                                    payload,
                                })
                                .map_err(DurableError::Replay)?;
                            records += 1;
                            previous = tag;
                            expected += 1;
                            if tags.len() >= tags_kept {
                                tags.pop_front();
                            }
                            tags.push_back((position, tag));
                        }
                        Err(e) => {
                            let reason = match e {
                                SealError::Forged => format!(
                                    "the record does not open: {e}; it was changed, reordered, \
                                     spliced in, or sealed for another cluster or position"
                                ),
                                SealError::Malformed => e.to_string(),
                            };
                            failure = Some(DurableError::tampered(&file, position, reason));
                        }
                    }
                }
            }
            Answer::LogEnd { first, last, torn } => break (first, last, torn),
            Answer::Error { kind, message } => return Err(DurableError::from_host(kind, message)),
            other => return Err(unexpected(&other)),
        }
    };
    // A snapshot needs the records right after it; an empty log after a snapshot is fine.
    if failure.is_none() && records == 0 && last >= from && first > from {
        failure = Some(DurableError::tampered(
            "wal",
            from,
            format!(
                "the log starts at {first}, after the snapshot's end at {}",
                from - 1
            ),
        ));
    }
    let last_valid = expected - 1;
    if let Some(tampered) = failure {
        if !recover {
            return Err(tampered);
        }
        tracing::error!(
            %tampered,
            last_valid,
            "recover-to-last-valid: truncating the log after the last valid record"
        );
        dropped.push(format!(
            "log records {}..={last} ({tampered})",
            last_valid + 1
        ));
        conn.call(&Request::TruncateAfter {
            position: last_valid,
        })
        .await
        .map_err(protocol)?;
    } else if let Some(torn) = torn {
        // A crash in the middle of the last write: that append was never acknowledged.
        tracing::warn!(
            segment = %torn.segment,
            offset = torn.offset,
            bytes = torn.bytes,
            "the log ends in a torn write (an append the host never acknowledged); cut it"
        );
        conn.call(&Request::TruncateAfter {
            position: last_valid,
        })
        .await
        .map_err(protocol)?;
    }
    tags.retain(|(position, _)| *position <= last_valid);
    Ok(Recovered {
        snapshot: snapshot_at,
        records,
        tail: (last_valid, previous),
        tags,
        anchor,
        dropped: (!dropped.is_empty()).then(|| dropped.join("; ")),
    })
}

/// Reads snapshot `id`: `Ok(Err(_))` when it does not verify (the caller decides).
async fn read_snapshot(
    conn: &mut Conn,
    keys: &Keys,
    id: u64,
) -> Result<Result<RecoveredSnapshot, DurableError>, DurableError> {
    let protocol = |e: nautilus_wire::storage::FrameError| DurableError::Unavailable(e.to_string());
    let dir = format!("snapshots/{id:020}");
    let sealed = match conn
        .call(&Request::GetManifest { snapshot: id })
        .await
        .map_err(protocol)?
    {
        Answer::Bytes(bytes) => bytes,
        Answer::Error { kind, message } => return Err(DurableError::from_host(kind, message)),
        other => return Err(unexpected(&other)),
    };
    let manifest = match keys.open_manifest(id, &sealed) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Err(DurableError::tampered(
                &format!("{dir}/manifest"),
                id,
                format!("the manifest does not open: {e}"),
            )));
        }
    };
    let mut chunks = Vec::with_capacity(manifest.chunks as usize);
    let mut sealed_chunks = Vec::with_capacity(manifest.chunks as usize);
    for index in 0..manifest.chunks {
        let file = format!("{dir}/chunk-{index:08}");
        let sealed = match conn
            .call(&Request::GetChunk {
                snapshot: id,
                index,
            })
            .await
            .map_err(protocol)?
        {
            Answer::Bytes(bytes) => bytes,
            Answer::Error {
                kind: ErrorKind::NotFound,
                ..
            } => {
                return Ok(Err(DurableError::tampered(
                    &file,
                    id,
                    "the chunk is missing".into(),
                )));
            }
            Answer::Error { kind, message } => return Err(DurableError::from_host(kind, message)),
            other => return Err(unexpected(&other)),
        };
        match keys.open_chunk(id, index, &sealed) {
            Ok(chunk) => chunks.push(chunk),
            Err(e) => {
                return Ok(Err(DurableError::tampered(
                    &file,
                    id,
                    format!("the chunk does not open: {e}"),
                )));
            }
        }
        sealed_chunks.push(sealed);
    }
    if seal::chunk_root(sealed_chunks.iter().map(Vec::as_slice)) != manifest.root {
        return Ok(Err(DurableError::tampered(
            &dir,
            id,
            "the chunks' root hash differs from the manifest's".into(),
        )));
    }
    Ok(Ok(RecoveredSnapshot {
        id,
        revision: manifest.revision,
        position: manifest.position,
        tag: manifest.tag,
        chunks,
    }))
}

fn unexpected(answer: &Answer) -> DurableError {
    DurableError::Unavailable(format!("the store answered out of turn: {answer:?}"))
}

/// One append frame in flight.
struct Batch {
    id: u64,
    first: u64,
    last: u64,
    last_tag: [u8; TAG],
    /// The sealed records, kept to send again after a reconnect.
    sealed: Vec<Vec<u8>>,
    replies: Vec<(u64, Reply)>,
}

/// The task that owns the chain's tail and the connection.
struct Task {
    addr: SinkAddr,
    keys: Arc<Keys>,
    rx: mpsc::Receiver<Command>,
    /// Last sealed position and its tag.
    sealed: (u64, [u8; TAG]),
    /// Last durable position and its tag.
    durable: (u64, [u8; TAG]),
    in_flight: VecDeque<Batch>,
    calls: HashMap<u64, oneshot::Sender<Result<Answer, DurableError>>>,
    waiters: Vec<(u64, Reply)>,
    status: Arc<Mutex<Status>>,
    /// The refusal every append gets until [`Command::Resume`]: appends queued behind a failed
    /// one were chained on it and must not land before it is sent again.
    halted: Option<DurableError>,
    /// The last `tags_kept` sealed positions and their tags, oldest first.
    tags: VecDeque<(u64, [u8; TAG])>,
    tags_kept: usize,
    /// Where the log on the host verifies from: the newest snapshot's point, or genesis.
    anchor: (u64, [u8; TAG]),
    /// Reads in progress, by request id.
    reads: HashMap<u64, ReadBack>,
}

/// A read of records back from the host (see [`DurableLog::read`]).
struct ReadBack {
    /// The next position the host must send, and the tag it chains on.
    next: u64,
    previous: [u8; TAG],
    from: u64,
    to: u64,
    records: Vec<RecoveredRecord>,
    reply: oneshot::Sender<Result<Vec<RecoveredRecord>, DurableError>>,
}

impl ReadBack {
    /// Takes one batch of records the host sent; an error ends the read.
    fn take(&mut self, keys: &Keys, records: Vec<(u64, Vec<u8>)>) -> Result<(), DurableError> {
        for (position, sealed) in records {
            if position > self.to {
                break;
            }
            if position != self.next {
                return Err(DurableError::tampered(
                    "wal",
                    self.next,
                    format!(
                        "the host sent record {position} where {} belongs",
                        self.next
                    ),
                ));
            }
            let (revision, payload, tag) = keys
                .open_record(position, &self.previous, &sealed)
                .map_err(|e| {
                    DurableError::tampered(
                        "wal",
                        position,
                        format!("the record does not open: {e}"),
                    )
                })?;
            if position >= self.from {
                self.records.push(RecoveredRecord {
                    position,
                    revision,
                    payload,
                });
            }
            self.previous = tag;
            self.next += 1;
        }
        Ok(())
    }
}

impl Task {
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }

    async fn run(mut self, conn: Conn) {
        let mut conn = Some(conn);
        let mut backoff = Duration::from_millis(100);
        loop {
            let Some(current) = conn.take() else {
                match self.reconnect().await {
                    Some(new) => {
                        backoff = Duration::from_millis(100);
                        conn = Some(new);
                    }
                    None => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
                continue;
            };
            match self.serve(current).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "storage channel lost; reconnecting");
                    self.set_status(|s| s.connected = false);
                    for (_, reply) in self.calls.drain() {
                        let _ = reply.send(Err(DurableError::Unavailable(e.clone())));
                    }
                    for (_, read) in self.reads.drain() {
                        let _ = read.reply.send(Err(DurableError::Unavailable(e.clone())));
                    }
                }
            }
        }
    }

    /// Reconnects, cuts the host's log back to what was acknowledged and sends the in-flight
    /// records again.
    async fn reconnect(&mut self) -> Option<Conn> {
        let stream = channel::connect(&self.addr).await.ok()?;
        let mut conn = Conn::new(stream);
        match conn
            .call(&Request::TruncateAfter {
                position: self.durable.0,
            })
            .await
        {
            Ok(Answer::Done) => {}
            Ok(other) => {
                tracing::warn!(?other, "storage: truncate after reconnect refused");
                return None;
            }
            Err(_) => return None,
        }
        for batch in &mut self.in_flight {
            let id = conn.id();
            batch.id = id;
            let frame = Request::Append {
                first: batch.first,
                records: batch.sealed.clone(),
            }
            .encode(id);
            if conn.writer.write_all(&frame).await.is_err() {
                return None;
            }
        }
        let _ = conn.writer.flush().await;
        tracing::info!(durable = self.durable.0, "storage channel reconnected");
        self.set_status(|s| {
            s.connected = true;
            s.reconnects += 1;
        });
        Some(conn)
    }

    /// Runs one connection until it breaks (`Err`) or every handle is gone (`Ok`).
    async fn serve(&mut self, conn: Conn) -> Result<(), String> {
        let Conn {
            mut reader,
            mut writer,
            next_id,
        } = conn;
        let mut next_id = next_id;
        let (answers_tx, mut answers) = mpsc::channel(256);
        let reading = tokio::spawn(async move {
            loop {
                match nautilus_wire::storage::read_answer(&mut reader).await {
                    Ok(Some(answer)) => {
                        if answers_tx.send(answer).await.is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
        let _abort = AbortOnDrop(reading);
        loop {
            let room = self.in_flight.len() < MAX_IN_FLIGHT;
            tokio::select! {
                command = self.rx.recv(), if room => {
                    let Some(command) = command else { return Ok(()) };
                    let frames = self.command(command, &mut next_id);
                    for frame in frames {
                        writer.write_all(&frame).await.map_err(|e| e.to_string())?;
                    }
                    writer.flush().await.map_err(|e| e.to_string())?;
                }
                answer = answers.recv() => {
                    let Some((id, answer)) = answer else {
                        return Err("the store closed the channel".into());
                    };
                    if let Some(frame) = self.answer(id, answer, &mut next_id) {
                        writer.write_all(&frame).await.map_err(|e| e.to_string())?;
                        writer.flush().await.map_err(|e| e.to_string())?;
                    }
                }
            }
        }
    }

    /// Handles a command (with every append queued behind it); returns frames to send.
    fn command(&mut self, command: Command, next_id: &mut u64) -> Vec<Vec<u8>> {
        let mut id = || {
            let id = *next_id;
            *next_id += 1;
            id
        };
        match command {
            Command::Append {
                revision,
                record,
                reply,
            } => {
                let mut appends = vec![(revision, record, reply)];
                let mut bytes = appends[0].1.len();
                let mut held = None;
                while bytes < BATCH_BYTES && appends.len() < MAX_RECORDS {
                    match self.rx.try_recv() {
                        Ok(Command::Append {
                            revision,
                            record,
                            reply,
                        }) => {
                            bytes += record.len();
                            appends.push((revision, record, reply));
                        }
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if let Some(error) = &self.halted {
                    for (_, _, reply) in appends {
                        let _ = reply.send(Err(error.clone()));
                    }
                    return held.map_or_else(Vec::new, |held| self.command(held, next_id));
                }
                let first = self.sealed.0 + 1;
                let mut sealed = Vec::with_capacity(appends.len());
                let mut replies = Vec::with_capacity(appends.len());
                for (revision, record, reply) in appends {
                    let position = self.sealed.0 + 1;
                    let record = self.keys.seal_record(
                        position,
                        &self.sealed.1,
                        revision,
                        &record,
                        seal::nonce(),
                    );
                    self.sealed = (position, record.tag);
                    if self.tags.len() >= self.tags_kept {
                        self.tags.pop_front();
                    }
                    self.tags.push_back(self.sealed);
                    sealed.push(record.bytes);
                    replies.push((position, reply));
                }
                let frame_id = id();
                let frame = Request::Append {
                    first,
                    records: sealed.clone(),
                }
                .encode(frame_id);
                self.in_flight.push_back(Batch {
                    id: frame_id,
                    first,
                    last: self.sealed.0,
                    last_tag: self.sealed.1,
                    sealed,
                    replies,
                });
                let sealed_position = self.sealed.0;
                self.set_status(|s| s.sealed = sealed_position);
                let mut frames = vec![frame];
                if let Some(held) = held {
                    frames.extend(self.command(held, next_id));
                }
                frames
            }
            Command::Call { request, reply } => {
                let call_id = id();
                self.calls.insert(call_id, reply);
                vec![request.encode(call_id)]
            }
            Command::Resume => {
                self.halted = None;
                Vec::new()
            }
            Command::Read { from, to, reply } => {
                let start = self
                    .tags
                    .iter()
                    .rev()
                    .find(|(p, _)| p.checked_add(1) == Some(from))
                    .copied()
                    .unwrap_or(self.anchor);
                if from <= self.anchor.0 || to > self.durable.0 || from > to {
                    let _ = reply.send(Err(DurableError::Unavailable(format!(
                        "cannot read records {from}..={to}: the log holds {}..={} durably",
                        self.anchor.0 + 1,
                        self.durable.0
                    ))));
                    return Vec::new();
                }
                let read_id = id();
                self.reads.insert(
                    read_id,
                    ReadBack {
                        next: start.0 + 1,
                        previous: start.1,
                        from,
                        to,
                        records: Vec::new(),
                        reply,
                    },
                );
                vec![Request::ReadLog { from: start.0 + 1 }.encode(read_id)]
            }
            Command::Anchor { position, tag } => {
                self.anchor = (position, tag);
                Vec::new()
            }
            Command::Rewind { position, reply } => {
                let refuse = |reason: String| Err(DurableError::Unavailable(reason));
                if position > self.sealed.0 {
                    let _ = reply.send(refuse(format!(
                        "cannot cut the log after {position}: it ends at {}",
                        self.sealed.0
                    )));
                    return Vec::new();
                }
                if self.in_flight.iter().any(|b| b.last > position) {
                    let _ = reply.send(refuse(format!(
                        "cannot cut the log after {position} while appends after it are in flight"
                    )));
                    return Vec::new();
                }
                let Some(tag) = self
                    .tags
                    .iter()
                    .rev()
                    .find(|(p, _)| *p == position)
                    .map(|(_, tag)| *tag)
                else {
                    let _ = reply.send(refuse(format!(
                        "cannot cut the log after {position}: its chain tag is no longer kept"
                    )));
                    return Vec::new();
                };
                self.tags.retain(|(p, _)| *p <= position);
                self.sealed = (position, tag);
                if self.durable.0 > position {
                    self.durable = (position, tag);
                }
                let durable = self.durable.0;
                self.set_status(|s| {
                    s.sealed = position;
                    s.durable = durable;
                });
                let call_id = id();
                self.calls.insert(call_id, reply);
                vec![Request::TruncateAfter { position }.encode(call_id)]
            }
            Command::Point { reply } => {
                let _ = reply.send(self.sealed);
                Vec::new()
            }
            Command::WaitDurable { position, reply } => {
                if position <= self.durable.0 {
                    let _ = reply.send(Ok(position));
                } else if position > self.sealed.0 {
                    let _ = reply.send(Err(DurableError::Unavailable(format!(
                        "position {position} was never appended"
                    ))));
                } else {
                    self.waiters.push((position, reply));
                }
                Vec::new()
            }
        }
    }

    /// Handles an answer; returns a frame to send (the truncate after a failed append).
    fn answer(&mut self, id: u64, answer: Answer, next_id: &mut u64) -> Option<Vec<u8>> {
        match answer {
            Answer::Durable { through } => {
                while self.in_flight.front().is_some_and(|b| b.last <= through) {
                    let Some(batch) = self.in_flight.pop_front() else {
                        break;
                    };
                    self.durable = (batch.last, batch.last_tag);
                    for (position, reply) in batch.replies {
                        let _ = reply.send(Ok(position));
                    }
                }
                let durable = self.durable.0;
                let waiting = std::mem::take(&mut self.waiters);
                for (position, reply) in waiting {
                    if position <= durable {
                        let _ = reply.send(Ok(position));
                    } else {
                        self.waiters.push((position, reply));
                    }
                }
                self.set_status(|s| {
                    s.durable = durable;
                    s.last_error = None;
                });
                None
            }
            Answer::Error { kind, message } if self.in_flight.iter().any(|b| b.id == id) => {
                // Every append in flight was chained on the failed one: all fail, the tail goes
                // back to the last durable record, and the host is told where the log ends.
                let error = DurableError::from_host(kind, message);
                tracing::warn!(%error, durable = self.durable.0, "an append failed; the log goes back to its last durable record");
                for batch in self.in_flight.drain(..) {
                    for (_, reply) in batch.replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                for (_, reply) in self.waiters.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
                self.halted = Some(error.clone());
                self.sealed = self.durable;
                let durable = self.durable.0;
                self.tags.retain(|(p, _)| *p <= durable);
                let durable = self.durable.0;
                self.set_status(|s| {
                    s.sealed = durable;
                    s.failed_appends += 1;
                    s.last_error = Some(error.to_string());
                });
                let truncate_id = *next_id;
                *next_id += 1;
                Some(
                    Request::TruncateAfter {
                        position: self.durable.0,
                    }
                    .encode(truncate_id),
                )
            }
            Answer::Records { records, .. } if self.reads.contains_key(&id) => {
                // The host streams to the end of its log: a read ends once it has `to` (the
                // rest of the stream, under an id no longer known, is dropped below).
                let done = match self.reads.get_mut(&id) {
                    Some(read) => match read.take(&self.keys, records) {
                        Ok(()) if read.next > read.to => Some(Ok(())),
                        Ok(()) => None,
                        Err(e) => Some(Err(e)),
                    },
                    None => None,
                };
                if let Some(result) = done
                    && let Some(read) = self.reads.remove(&id)
                {
                    let _ = read.reply.send(result.map(|()| read.records));
                }
                None
            }
            Answer::LogEnd { .. } | Answer::Error { .. } if self.reads.contains_key(&id) => {
                if let Some(read) = self.reads.remove(&id) {
                    let result = match answer {
                        Answer::Error { kind, message } => {
                            Err(DurableError::from_host(kind, message))
                        }
                        _ if read.next <= read.to => Err(DurableError::tampered(
                            "wal",
                            read.next,
                            format!("the log ends before record {}", read.next),
                        )),
                        _ => Ok(read.records),
                    };
                    let _ = read.reply.send(result);
                }
                None
            }
            other => {
                if let Some(reply) = self.calls.remove(&id) {
                    let _ = reply.send(Ok(other));
                }
                // Anything else (a `Fenced` for an append already failed, the truncate's
                // `Done`) needs nothing.
                None
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    //! The log against the in-memory host of [`super::super::test_host`], which the tests play
    //! as a hostile host by changing what it holds between boots.

    use std::collections::BTreeMap;

    use super::super::Kept;
    use super::super::test_host::{Host, serve};
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&[9; 32], "test")
    }

    /// What a start found: what [`Kept`] was handed, and what was dropped.
    struct Booted {
        snapshot: Option<RecoveredSnapshot>,
        records: Vec<RecoveredRecord>,
        dropped: Option<String>,
    }

    async fn boot(
        host: &Arc<Mutex<Host>>,
        keys: Keys,
        recover: bool,
    ) -> Result<(DurableLog, Booted), DurableError> {
        let (addr, _task) = serve(host.clone());
        let mut kept = Kept::default();
        let (log, recovered) =
            DurableLog::open(addr, keys, recover, &mut kept, REPLICA_TAGS_KEPT).await?;
        assert_eq!(recovered.records, kept.records.len() as u64);
        assert_eq!(
            recovered.snapshot.map(|s| s.position),
            kept.snapshot.as_ref().map(|s| s.position)
        );
        Ok((
            log,
            Booted {
                snapshot: kept.snapshot,
                records: kept.records,
                dropped: recovered.dropped,
            },
        ))
    }

    fn payloads(recovered: &Booted) -> Vec<(u64, u64, Vec<u8>)> {
        recovered
            .records
            .iter()
            .map(|r| (r.position, r.revision, r.payload.clone()))
            .collect()
    }

    #[tokio::test]
    async fn acknowledged_records_come_back_after_a_restart_and_never_in_clear() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, recovered) = boot(&host, keys(), false).await.unwrap();
        assert!(recovered.records.is_empty() && recovered.snapshot.is_none());
        let appends = (1..=20u64).map(|i| {
            let log = log.clone();
            async move {
                log.append(100 + i, format!("SECRET-MARKER-{i}").into_bytes())
                    .await
            }
        });
        let mut positions: Vec<u64> = futures_join(appends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        positions.sort_unstable();
        assert_eq!(positions, (1..=20).collect::<Vec<_>>());
        assert_eq!(log.status().durable, 20);
        for record in host.lock().unwrap().log.values() {
            assert!(
                !record.windows(13).any(|w| w == b"SECRET-MARKER"),
                "a record reached the host in clear"
            );
        }
        drop(log);
        let (_log, recovered) = boot(&host, keys(), false).await.unwrap();
        let got = payloads(&recovered);
        assert_eq!(got.len(), 20);
        for (position, revision, payload) in got {
            assert_eq!(revision, 100 + payload_index(&payload));
            assert!(position >= 1);
        }
    }

    fn payload_index(payload: &[u8]) -> u64 {
        String::from_utf8_lossy(payload)
            .trim_start_matches("SECRET-MARKER-")
            .parse()
            .unwrap()
    }

    /// Every way the host can change the log is refused at start, naming the position.
    #[tokio::test]
    async fn every_tampering_of_the_log_is_refused_with_its_position() {
        type Tamper = fn(&mut BTreeMap<u64, Vec<u8>>);
        let cases: Vec<(&str, Tamper, u64)> = vec![
            (
                "flipped byte in record 3",
                |log| log.get_mut(&3).unwrap()[30] ^= 1,
                3,
            ),
            (
                "record 3 dropped (a gap)",
                |log| {
                    log.remove(&3);
                },
                3,
            ),
            (
                "records 2 and 3 swapped",
                |log| {
                    let two = log.remove(&2).unwrap();
                    let three = log.insert(3, two).unwrap();
                    log.insert(2, three);
                },
                2,
            ),
            (
                "record 2 repeated at 3",
                |log| {
                    let two = log[&2].clone();
                    log.insert(3, two);
                },
                3,
            ),
            (
                "record 4 cut short",
                |log| log.get_mut(&4).unwrap().truncate(20),
                4,
            ),
            (
                "a record of another cluster spliced in at 2",
                |log| {
                    let other = Keys::derive(&[9; 32], "other").seal_record(
                        2,
                        &GENESIS,
                        1,
                        b"x",
                        seal::nonce(),
                    );
                    log.insert(2, other.bytes);
                },
                2,
            ),
        ];
        for (name, tamper, position) in cases {
            let host = Arc::new(Mutex::new(Host::default()));
            let (log, _) = boot(&host, keys(), false).await.unwrap();
            for i in 1..=5u64 {
                log.append(i, vec![i as u8; 40]).await.unwrap();
            }
            drop(log);
            tamper(&mut host.lock().unwrap().log);
            match boot(&host, keys(), false).await {
                Err(DurableError::Tampered {
                    position: at, file, ..
                }) => {
                    assert_eq!(at, position, "{name}");
                    assert!(file.starts_with("wal/"), "{name}: {file}");
                }
                Err(other) => panic!("{name}: {other}"),
                Ok(_) => panic!("{name}: the tampered log opened"),
            }
            // --recover-to-last-valid keeps what verifies, drops the rest, and appends go on.
            let (log, recovered) = boot(&host, keys(), true).await.unwrap();
            assert_eq!(recovered.records.len() as u64, position - 1, "{name}");
            assert!(recovered.dropped.is_some(), "{name}");
            assert_eq!(
                log.append(9, b"after".to_vec()).await.unwrap(),
                position,
                "{name}"
            );
            drop(log);
            let (_, recovered) = boot(&host, keys(), false).await.unwrap();
            assert_eq!(recovered.records.len() as u64, position, "{name}");
        }
    }

    #[tokio::test]
    async fn another_data_key_does_not_open_the_log() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        log.append(1, b"one".to_vec()).await.unwrap();
        drop(log);
        let other = Keys::derive(&[10; 32], "test");
        assert!(matches!(
            boot(&host, other, false).await,
            Err(DurableError::Tampered { position: 1, .. })
        ));
    }

    #[tokio::test]
    async fn a_snapshot_whose_encoder_stops_before_its_end_is_not_committed() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        log.append(1, b"r1".to_vec()).await.unwrap();
        let point = log.snapshot_point().await.unwrap();
        let sealer = log.chunk_sealer(point);
        let (tx, rx) = mpsc::channel(4);
        tx.send(
            sealer
                .seal(0, b"half of the state")
                .map(SnapshotPart::Chunk),
        )
        .await
        .unwrap();
        drop(tx);
        assert!(matches!(
            log.write_sealed_snapshot(point, 1, rx, crate::durable::SnapshotPace::Unpaced)
                .await,
            Err(DurableError::Unavailable(_))
        ));
        drop(log);
        let (_, recovered) = boot(&host, keys(), false).await.unwrap();
        assert!(recovered.snapshot.is_none(), "no manifest was committed");
        assert_eq!(payloads(&recovered), vec![(1, 1, b"r1".to_vec())]);
    }

    #[tokio::test]
    async fn a_snapshot_and_the_records_after_it_are_what_a_restart_finds() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        for i in 1..=3u64 {
            log.append(i, format!("r{i}").into_bytes()).await.unwrap();
        }
        let point = log.snapshot_point().await.unwrap();
        log.write_snapshot(point, 3, [b"state-a".to_vec(), b"state-b".to_vec()])
            .await
            .unwrap();
        log.append(4, b"r4".to_vec()).await.unwrap();
        drop(log);
        assert!(
            !host.lock().unwrap().log.contains_key(&1),
            "the snapshot's records were dropped"
        );
        let (_, recovered) = boot(&host, keys(), false).await.unwrap();
        let snapshot = recovered.snapshot.as_ref().unwrap();
        assert_eq!((snapshot.revision, snapshot.position), (3, 3));
        assert_eq!(
            snapshot.chunks,
            vec![b"state-a".to_vec(), b"state-b".to_vec()]
        );
        assert_eq!(payloads(&recovered), vec![(4, 4, b"r4".to_vec())]);

        // A changed chunk, a missing chunk and a manifest from another snapshot are refused.
        let id = snapshot.id;
        type Breaks = fn(&mut Host, u64);
        let broken: Vec<(&str, Breaks)> = vec![
            ("flipped chunk byte", |h, id| {
                h.snapshots.get_mut(&id).unwrap().1.get_mut(&1).unwrap()[30] ^= 1
            }),
            ("missing chunk", |h, id| {
                h.snapshots.get_mut(&id).unwrap().1.remove(&0);
            }),
            ("manifest moved to another id", |h, id| {
                let s = h.snapshots.remove(&id).unwrap();
                h.snapshots.insert(id + 1, s);
            }),
        ];
        for (name, breaks) in broken {
            let copy = {
                let original = host.lock().unwrap();
                Arc::new(Mutex::new(Host {
                    log: original.log.clone(),
                    snapshots: original.snapshots.clone(),
                    ..Host::default()
                }))
            };
            breaks(&mut copy.lock().unwrap(), id);
            match boot(&copy, keys(), false).await {
                Err(DurableError::Tampered { file, .. }) => {
                    assert!(file.starts_with("snapshots/"), "{name}: {file}");
                }
                Err(other) => panic!("{name}: {other}"),
                Ok(_) => panic!("{name}: the broken snapshot opened"),
            }
        }
    }

    #[tokio::test]
    async fn a_refused_append_fails_then_the_log_goes_on_from_the_last_durable_record() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        log.append(1, b"one".to_vec()).await.unwrap();
        host.lock().unwrap().fail_appends = Some(ErrorKind::DiskFull);
        let error = log.append(2, b"two".to_vec()).await.unwrap_err();
        assert!(matches!(error, DurableError::DiskFull(_)), "{error}");
        assert_eq!(error.http_status(), 507);
        assert!(log.status().last_error.is_some());
        host.lock().unwrap().fail_appends = None;
        // The truncate the log sent lifted the fence; the chain resumes from record 1.
        let mut position = Err(DurableError::Io("never tried".into()));
        for _ in 0..50 {
            position = log.append(3, b"three".to_vec()).await;
            if position.is_ok() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(position.unwrap(), 2);
        drop(log);
        let (_, recovered) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(
            payloads(&recovered),
            vec![(1, 1, b"one".to_vec()), (2, 3, b"three".to_vec())]
        );
    }

    #[tokio::test]
    async fn after_a_refusal_queued_appends_wait_for_resume_so_order_holds() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        log.append(1, b"one".to_vec()).await.unwrap();
        host.lock().unwrap().fail_appends = Some(ErrorKind::Io);
        // Submitted in order before the submitter learns of the refusal.
        let two = log.submit(2, Bytes::from_static(b"two")).await.unwrap();
        assert!(two.await.unwrap().is_err());
        host.lock().unwrap().fail_appends = None;
        let three = log.submit(3, Bytes::from_static(b"three")).await.unwrap();
        assert!(
            three.await.unwrap().is_err(),
            "an entry chained behind a refused one must not be appended before it"
        );
        // Sent again in order after resuming: both land, two first.
        log.resume().await.unwrap();
        let two = log.submit(2, Bytes::from_static(b"two")).await.unwrap();
        let three = log.submit(3, Bytes::from_static(b"three")).await.unwrap();
        assert_eq!(two.await.unwrap().unwrap(), 2);
        assert_eq!(three.await.unwrap().unwrap(), 3);
        drop(log);
        let (_, recovered) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(
            payloads(&recovered),
            vec![
                (1, 1, b"one".to_vec()),
                (2, 2, b"two".to_vec()),
                (3, 3, b"three".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn truncate_after_rewrites_the_tail_with_a_new_chain() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        for i in 1..=3u64 {
            log.append(i, format!("r{i}").into_bytes()).await.unwrap();
        }
        log.truncate_after(1).await.unwrap();
        drop(log);
        let (log, recovered) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(payloads(&recovered), vec![(1, 1, b"r1".to_vec())]);
        assert_eq!(log.append(7, b"r2'".to_vec()).await.unwrap(), 2);
        drop(log);
        let (_, recovered) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(
            payloads(&recovered),
            vec![(1, 1, b"r1".to_vec()), (2, 7, b"r2'".to_vec())]
        );
    }

    #[tokio::test]
    async fn truncate_after_rewinds_the_running_chain_in_place() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        for i in 1..=4u64 {
            log.append(i, format!("r{i}").into_bytes()).await.unwrap();
        }
        log.truncate_after(2).await.unwrap();
        assert_eq!(log.status().sealed, 2);
        assert_eq!(log.append(8, b"r3'".to_vec()).await.unwrap(), 3);
        // Back to nothing at all, then a whole new chain from the genesis tag.
        log.truncate_after(0).await.unwrap();
        assert_eq!(log.append(9, b"s1".to_vec()).await.unwrap(), 1);
        assert_eq!(log.append(10, b"s2".to_vec()).await.unwrap(), 2);
        assert!(
            log.truncate_after(5).await.is_err(),
            "the log ends before 5"
        );
        drop(log);
        let (log, recovered) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(
            payloads(&recovered),
            vec![(1, 9, b"s1".to_vec()), (2, 10, b"s2".to_vec())]
        );
        // After a restart the tags of the verified records are known too.
        log.truncate_after(1).await.unwrap();
        assert_eq!(log.append(11, b"s2'".to_vec()).await.unwrap(), 2);
        drop(log);
        let (_, recovered) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(
            payloads(&recovered),
            vec![(1, 9, b"s1".to_vec()), (2, 11, b"s2'".to_vec())]
        );
    }

    #[tokio::test]
    async fn blobs_are_written_and_read_back_and_a_missing_one_is_none() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(log.get_blob("raft-vote").await.unwrap(), None);
        log.put_blob("raft-vote", b"v".to_vec()).await.unwrap();
        assert_eq!(
            log.get_blob("raft-vote").await.unwrap(),
            Some(b"v".to_vec())
        );
    }

    #[tokio::test]
    async fn records_are_read_back_verified_from_a_kept_tag_or_from_the_snapshot() {
        let host = Arc::new(Mutex::new(Host::default()));
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        for i in 1..=12u64 {
            log.append(i, format!("r{i}").into_bytes()).await.unwrap();
        }
        let read = |from, to| {
            let log = log.clone();
            async move {
                log.read(from, to).await.map(|records| {
                    records
                        .into_iter()
                        .map(|r| (r.position, r.revision, r.payload))
                        .collect::<Vec<_>>()
                })
            }
        };
        let want = |from: u64, to: u64| {
            (from..=to)
                .map(|i| (i, i, format!("r{i}").into_bytes()))
                .collect::<Vec<_>>()
        };
        assert_eq!(read(1, 12).await.unwrap(), want(1, 12));
        // The tag of 2 is no longer kept (tests keep 8): verified from the start.
        assert_eq!(read(3, 4).await.unwrap(), want(3, 4));
        assert_eq!(read(10, 11).await.unwrap(), want(10, 11));
        assert!(read(11, 13).await.is_err(), "13 was never appended");
        // A record the host changed is refused, not handed back, whichever read meets it.
        host.lock().unwrap().log.get_mut(&4).unwrap()[30] ^= 1;
        assert!(matches!(
            read(3, 5).await,
            Err(DurableError::Tampered { position: 4, .. })
        ));
        assert!(matches!(
            read(5, 6).await,
            Err(DurableError::Tampered { position: 4, .. })
        ));
        assert_eq!(read(6, 7).await.unwrap(), want(6, 7), "from the tag of 5");
        assert_eq!(
            read(10, 12).await.unwrap(),
            want(10, 12),
            "from the tag of 9"
        );
        host.lock().unwrap().log.get_mut(&4).unwrap()[30] ^= 1;
        // After a snapshot at 12 and a restart, reads verify from the snapshot.
        let point = log.snapshot_point().await.unwrap();
        log.write_snapshot(point, 12, [b"state".to_vec()])
            .await
            .unwrap();
        log.append(13, b"r13".to_vec()).await.unwrap();
        drop(log);
        let (log, _) = boot(&host, keys(), false).await.unwrap();
        assert_eq!(log.read(13, 13).await.unwrap()[0].payload, b"r13".to_vec());
        assert!(log.read(12, 13).await.is_err(), "12 is inside the snapshot");
    }

    async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
