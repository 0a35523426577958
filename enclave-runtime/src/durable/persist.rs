//! Routes core's journal into the durable log: one task takes the entries each call left in
//! core's journal (in order, under the store lock), submits them to the log (which batches
//! them into one sealed frame and one fsync: group commit), and publishes how far they are
//! durable. What depends on that:
//!
//! - a request is answered only once every entry journaled up to the end of its call is
//!   durable (its own write, and any state its answer shows), so an acknowledged write
//!   survives `kill -9`;
//! - watch streams see events up to the durable revision only, so no client sees a change a
//!   crash could take back;
//! - while the host refuses appends (disk full, `EIO`), core refuses writes (507/503, through
//!   `Cluster::refuse_writes`), reads are served, and the entries taken are sent again, in
//!   order, until the host takes them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot, watch};

use nautilus_core::cluster::Record;

use super::log::SnapshotPart;
use super::{DurableError, DurableLog};
use crate::server::Shared;

/// Most entries taken from core and not yet durable. Beyond it, entries wait in core's
/// journal, whose own budget (`max_pending_changes`) then refuses writes with 429.
const MAX_UNACKED: usize = 16_384;
/// First and longest pause before entries the host refused are sent again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How far the journal is durable.
#[derive(Debug, Clone, Default)]
pub(crate) struct Persisted {
    /// Journal entries durable, counted since start as core's `journaled()` counts them.
    pub(crate) entries: u64,
    /// Set while the host refuses appends: what a write gets meanwhile.
    pub(crate) failure: Option<DurableError>,
}

/// The persistence handle the serving code holds.
pub(crate) struct Persistence {
    log: DurableLog,
    wake: Notify,
    state: watch::Sender<Persisted>,
    /// Journal entries between two snapshots (0: none).
    snapshot_every: u64,
    /// How fast a snapshot is written.
    snapshot_pace: super::SnapshotPace,
    /// Entries in the log after its newest snapshot at start (what a restart replayed): they
    /// count toward the next snapshot, so that frequent restarts do not postpone it forever.
    replayed: u64,
}

impl Persistence {
    /// A handle for `log`, which held `replayed` records after its newest snapshot at start.
    pub(crate) fn new(
        log: DurableLog,
        snapshot_every: u64,
        snapshot_pace: super::SnapshotPace,
        replayed: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            log,
            snapshot_every,
            snapshot_pace,
            replayed,
            wake: Notify::new(),
            state: watch::channel(Persisted::default()).0,
        })
    }

    /// Tells the task that core's journal has new entries.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until the first `entries` journal entries are durable; the host's refusal when
    /// appends fail before that.
    pub(crate) async fn wait(&self, entries: u64) -> Result<(), DurableError> {
        let mut state = self.state.subscribe();
        let reached = state
            .wait_for(|p| p.entries >= entries || p.failure.is_some())
            .await
            .map(|p| (p.entries >= entries, p.failure.clone()));
        match reached {
            Ok((true, _)) => Ok(()),
            Ok((false, Some(failure))) => Err(failure),
            _ => Err(DurableError::Unavailable(
                "the durable log stopped".to_string(),
            )),
        }
    }
}

/// One entry taken from core and not yet durable.
struct Unacked {
    /// Journal entries up to and including this one.
    entries: u64,
    /// The store revision after it.
    revision: u64,
    /// Its bytes, kept to send again after a refusal.
    bytes: Bytes,
    /// Resolves once it is durable (or refused).
    durable: Option<oneshot::Receiver<Result<u64, DurableError>>>,
}

/// Sets the host's refusal (`None`: cleared) where writers and core see it.
fn set_failure(shared: &Shared, persistence: &Persistence, failure: Option<DurableError>) {
    shared
        .lock()
        .refuse_writes(failure.as_ref().map(|f| f.refusal(false)));
    persistence.state.send_modify(|p| p.failure = failure);
}

/// Runs the persistence task until the log stops, starting with `initial`, the entries core
/// journaled before serving (the bootstrap's). What is durable at start is the revision the
/// serving code published.
pub(crate) async fn run(shared: Arc<Shared>, persistence: Arc<Persistence>, initial: Vec<Record>) {
    let ring = shared.ring();
    let mut taken = 0u64;
    let mut last_revision = *shared.revision.borrow();
    let mut failing = false;
    let mut initial = Some(initial);
    let mut since_snapshot: u64 = persistence.replayed;
    let snapshotting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut unacked: VecDeque<Unacked> = VecDeque::new();
    let mut retry = RETRY_FIRST;
    // Set by a refusal: everything in flight failed with it and is sent again, in order.
    let mut resend = false;
    loop {
        if resend {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
            // Everything submitted before this was refused with the first refusal.
            if let Err(e) = persistence.log.resume().await {
                tracing::error!(error = %e, "the durable log stopped");
                return;
            }
            for entry in &mut unacked {
                match persistence
                    .log
                    .submit(entry.revision, entry.bytes.clone())
                    .await
                {
                    Ok(durable) => entry.durable = Some(durable),
                    Err(e) => {
                        tracing::error!(error = %e, "a journal entry cannot be persisted");
                        set_failure(&shared, &persistence, Some(e));
                        return;
                    }
                }
            }
            resend = false;
        } else if unacked.len() < MAX_UNACKED && !failing {
            let due = persistence.snapshot_every > 0
                && since_snapshot >= persistence.snapshot_every
                && !snapshotting.load(std::sync::atomic::Ordering::Relaxed);
            let (records, snapshot) = match initial.take() {
                Some(records) => (records, None),
                None => {
                    let mut core = shared.lock();
                    let records = core.take_records();
                    // Begun with the entries, under the same lock: it is of exactly them.
                    let snapshot = due.then(|| core.begin_snapshot(crate::server::now()));
                    (records, snapshot)
                }
            };
            since_snapshot = since_snapshot.saturating_add(records.len() as u64);
            for record in records {
                taken = taken.saturating_add(1);
                last_revision = record.revision().unwrap_or(last_revision);
                let bytes = Bytes::from(record.encode());
                match persistence.log.submit(last_revision, bytes.clone()).await {
                    Ok(durable) => unacked.push_back(Unacked {
                        entries: taken,
                        revision: last_revision,
                        bytes,
                        durable: Some(durable),
                    }),
                    Err(e) => {
                        // Nothing after an entry that cannot be persisted can be, in order.
                        tracing::error!(error = %e, "a journal entry cannot be persisted");
                        set_failure(&shared, &persistence, Some(e));
                        return;
                    }
                }
            }
            if let Some(capture) = snapshot {
                // The log's tail now is the last entry the snapshot covers: this task is its
                // only writer.
                match persistence.log.snapshot_point().await {
                    Ok(point) => {
                        since_snapshot = 0;
                        snapshotting.store(true, std::sync::atomic::Ordering::Relaxed);
                        tokio::spawn(write_snapshot(
                            shared.clone(),
                            persistence.log.clone(),
                            persistence.snapshot_pace,
                            point,
                            capture,
                            snapshotting.clone(),
                        ));
                    }
                    Err(e) => tracing::warn!(error = %e, "no snapshot: the log's tail is unknown"),
                }
            }
        }
        // Wait for the oldest entry to be durable, or for new entries.
        let outcome = match unacked.front_mut().and_then(|e| e.durable.as_mut()) {
            Some(durable) => tokio::select! {
                outcome = durable => Some(outcome),
                () = persistence.wake.notified() => None,
            },
            None => {
                persistence.wake.notified().await;
                None
            }
        };
        let refused = match outcome {
            None => continue,
            Some(Err(_)) => Some(DurableError::Unavailable(
                "the durable log stopped".to_string(),
            )),
            Some(Ok(Err(refused))) => Some(refused),
            Some(Ok(Ok(_position))) => {
                // The oldest is durable; so is whatever after it resolved already.
                let mut reached = unacked.pop_front();
                let mut refused = None;
                while let Some(next) = unacked.front_mut() {
                    match next.durable.as_mut().map(oneshot::Receiver::try_recv) {
                        Some(Ok(Ok(_))) => reached = unacked.pop_front(),
                        Some(Ok(Err(e))) => {
                            refused = Some(e);
                            break;
                        }
                        _ => break,
                    }
                }
                if let Some(entry) = reached {
                    retry = RETRY_FIRST;
                    if failing {
                        tracing::info!("the host takes appends again; writes resume");
                        failing = false;
                        set_failure(&shared, &persistence, None);
                    }
                    persistence.state.send_modify(|p| p.entries = entry.entries);
                    ring.set_visible(entry.revision);
                    shared.publish(entry.revision);
                }
                refused
            }
        };
        if let Some(refused) = refused {
            tracing::error!(error = %refused, waiting = unacked.len(), "the host refused appends; writes are refused until it takes them again");
            for entry in &mut unacked {
                entry.durable = None;
            }
            failing = true;
            set_failure(&shared, &persistence, Some(refused));
            resend = true;
        }
    }
}

/// Chunks a snapshot may hold: well under the log's largest item.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Chunks sealed ahead of the host's writes: the encoder stays at most this far ahead.
const SNAPSHOT_CHUNKS_AHEAD: usize = 2;

/// Objects one capture step takes under the store lock: well under a tenth of a millisecond,
/// so a request waits at most that long for a snapshot.
const CAPTURE_STEP_OBJECTS: usize = 250;

/// The pause after each capture step: the capture holds the store lock a few percent of the
/// time instead of back to back (100,000 objects take about half a second).
const CAPTURE_STEP_PAUSE: Duration = Duration::from_millis(1);

/// Completes `capture` a step at a time, letting requests take the store lock between steps;
/// the snapshot, with the longest time one step held the lock, or `None` when the capture was
/// abandoned (logged).
async fn capture_snapshot(
    shared: &Shared,
    mut capture: nautilus_core::cluster::SnapshotCapture,
) -> Option<(nautilus_core::cluster::Snapshot, Duration)> {
    let mut longest = Duration::ZERO;
    loop {
        let started = std::time::Instant::now();
        let step = shared
            .lock()
            .continue_snapshot(&mut capture, CAPTURE_STEP_OBJECTS);
        longest = longest.max(started.elapsed());
        match step {
            Ok(Some(snapshot)) => return Some((snapshot, longest)),
            Ok(None) => tokio::time::sleep(CAPTURE_STEP_PAUSE).await,
            Err(e) => {
                tracing::warn!(error = %e, revision = capture.revision(), "the snapshot capture was abandoned; the log is kept whole");
                return None;
            }
        }
    }
}

/// Captures the snapshot `capture` began (a step at a time, see [`capture_snapshot`]), encodes
/// and seals it on a thread of its own at background priority (requests come first), a chunk
/// at a time, and writes it at `point` while appends go on; the log then drops the segments it
/// covers. One chunk or two are held at a time, not the whole state.
async fn write_snapshot(
    shared: Arc<Shared>,
    log: DurableLog,
    pace: super::SnapshotPace,
    point: super::log::SnapshotPoint,
    capture: nautilus_core::cluster::SnapshotCapture,
    snapshotting: Arc<std::sync::atomic::AtomicBool>,
) {
    let started = std::time::Instant::now();
    let Some((snapshot, captured_in)) = capture_snapshot(&shared, capture).await else {
        snapshotting.store(false, std::sync::atomic::Ordering::Relaxed);
        return;
    };
    let (revision, objects) = (snapshot.revision, snapshot.len());
    let sealer = log.chunk_sealer(point);
    let (sealed_tx, sealed) = tokio::sync::mpsc::channel(SNAPSHOT_CHUNKS_AHEAD);
    let encoder = std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || {
            crate::thread_priority::background();
            for (index, chunk) in snapshot.into_chunks(SNAPSHOT_CHUNK_BYTES).enumerate() {
                let chunk = sealer.seal(index, &chunk).map(SnapshotPart::Chunk);
                let failed = chunk.is_err();
                // A closed channel: the writer gave up (the host refused); so does the encoder.
                if sealed_tx.blocking_send(chunk).is_err() || failed {
                    return;
                }
            }
            let _ = sealed_tx.blocking_send(Ok(SnapshotPart::End));
        });
    let outcome = match encoder {
        Ok(_) => {
            log.write_sealed_snapshot(point, revision, sealed, pace)
                .await
        }
        Err(e) => Err(DurableError::Unavailable(format!(
            "starting the snapshot encoder: {e}"
        ))),
    };
    match outcome {
        Ok(()) => tracing::info!(
            revision,
            objects,
            millis = started.elapsed().as_millis() as u64,
            capture_step_micros = captured_in.as_micros() as u64,
            "snapshot written; the log before it is dropped"
        ),
        Err(e) => {
            tracing::warn!(error = %e, revision, "the snapshot failed; the log is kept whole")
        }
    }
    snapshotting.store(false, std::sync::atomic::Ordering::Relaxed);
}
