//! Drives one watch stream: polls the core watcher against the shared ring whenever the store's
//! revision moves, and hands hyper chunks that hold their bytes in the stream's own buffer and
//! in the in-flight budget until written. Nothing piles up for a client that stops reading: the
//! ring moves on without it, its buffer is bounded (`--watch-buffer-bytes`), and once that buffer
//! has stayed full for the grace period the connection is closed, as kube-apiserver closes
//! unresponsive watchers; the client re-lists.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use nautilus_core::api::{WatchPoll, Watcher};
use tokio::sync::mpsc;

use crate::budget::{Chunk, Held, SLOW_WATCHER_GRACE, StreamBuffer};
use crate::server::{Abort, Shared, now};

/// Chunks queued between the watch task and the connection (their bytes are bounded by the
/// stream buffer; this bounds their count).
const CHANNEL_DEPTH: usize = 8;
/// Events written per poll, so one busy watcher yields to others.
const EVENTS_PER_POLL: usize = 256;
/// The most bytes one chunk is filled to (one event past it at most), as a share of the stream
/// buffer, so a reading client always has room for the next chunk while hyper writes this one.
const CHUNK_SHARE: usize = 4;

/// Why the stream ends.
enum End {
    /// Over (ERROR event, deadline, shutdown) or the client went away.
    Done,
    /// The client left its buffer full: close the connection.
    Unresponsive,
}

/// Starts the task for `watcher` (holding `queued`, its share of the budget for the state it
/// queued); the receiver becomes the response body. `abort` closes the connection.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    watcher: Box<Watcher>,
    queued: Held,
    abort: Abort,
) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel::<Chunk>(CHANNEL_DEPTH);
    tokio::spawn(async move {
        let resource = watcher.resource_name();
        if let End::Unresponsive = run(&shared, watcher, &tx).await {
            crate::metrics::watcher_terminated(&resource);
            tracing::info!(
                resource,
                buffer_bytes = shared.watch_buffer,
                "closing a watch whose client stopped reading"
            );
            abort.connection();
        }
        drop(queued);
        shared.watches.fetch_sub(1, Ordering::Relaxed);
    });
    rx
}

async fn run(shared: &Shared, mut watcher: Box<Watcher>, tx: &mpsc::Sender<Chunk>) -> End {
    let ring = shared.ring.clone();
    let buffer = StreamBuffer::new(shared.watch_buffer);
    let chunk_bytes = (buffer.size() / CHUNK_SHARE).max(1);
    let mut revision = shared.revision.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let bookmark_every = Duration::from_secs(shared.bookmark_secs);
    let mut next_bookmark = tokio::time::Instant::now() + bookmark_every;
    let deadline = watcher.deadline().map(|d| {
        let wait = d.nanos.saturating_sub(now().nanos);
        tokio::time::Instant::now() + Duration::from_nanos(wait)
    });
    let mut buf = Vec::new();
    loop {
        // Room for a chunk first: a client that leaves its buffer full is not reading.
        let Some(mut room) = buffer.room(chunk_bytes).await else {
            return End::Unresponsive;
        };
        buf.clear();
        let poll = watcher.poll_limited(&ring, now(), &mut buf, EVENTS_PER_POLL, chunk_bytes);
        crate::metrics::watch_polled(&poll, buf.len());
        if !buf.is_empty() {
            // One event larger than a chunk needs the room it takes.
            if !buffer.grow(&mut room, buf.len()).await {
                return End::Unresponsive;
            }
            if let Some(unused) = room.split(room.num_permits().saturating_sub(buf.len())) {
                drop(unused);
            }
            let held = tokio::select! {
                held = shared.budget.take(buf.len()) => held,
                () = tx.closed() => return End::Done,
                _ = shutdown.changed() => return End::Done,
            };
            let chunk = Chunk::new(
                Bytes::from(std::mem::take(&mut buf)),
                held.with_stream(room),
            );
            // Most sends find room; only a full channel arms the grace timer.
            match tx.try_send(chunk) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => return End::Done,
                Err(mpsc::error::TrySendError::Full(chunk)) => {
                    match tokio::time::timeout(SLOW_WATCHER_GRACE, tx.send(chunk)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return End::Done,
                        // Many small chunks unread: as unresponsive as a full buffer.
                        Err(_) => return End::Unresponsive,
                    }
                }
            }
        } else {
            drop(room);
        }
        match poll {
            WatchPoll::Closed => return End::Done,
            WatchPoll::Wrote(_) if !watcher.caught_up(&ring) => {
                tokio::task::yield_now().await;
                continue;
            }
            WatchPoll::Wrote(_) | WatchPoll::Idle => {}
        }
        let deadline_sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = revision.changed() => if changed.is_err() { return End::Done },
            () = tokio::time::sleep_until(next_bookmark), if watcher.wants_bookmarks() => {
                next_bookmark = tokio::time::Instant::now() + bookmark_every;
                if !send_bookmark(&mut watcher, &buffer, tx).await {
                    return End::Unresponsive;
                }
            }
            () = deadline_sleep => return End::Done,
            () = tx.closed() => return End::Done,
            _ = shutdown.changed() => {
                // Draining: tell bookmark-aware clients where they are, then end cleanly.
                if watcher.wants_bookmarks() {
                    let mut out = Vec::new();
                    watcher.write_bookmark(&mut out);
                    let _ = tx.try_send(Chunk::from(Bytes::from(out)));
                }
                return End::Done;
            }
        }
    }
}

/// Sends a BOOKMARK within the stream's buffer; `false` when the client left no room for it.
async fn send_bookmark(
    watcher: &mut Watcher,
    buffer: &StreamBuffer,
    tx: &mpsc::Sender<Chunk>,
) -> bool {
    let mut out = Vec::new();
    watcher.write_bookmark(&mut out);
    let Some(room) = buffer.room(out.len()).await else {
        return false;
    };
    let chunk = Chunk::new(Bytes::from(out), Held::default().with_stream(room));
    // A closed receiver means the client went away; the loop notices on its next turn.
    tokio::time::timeout(SLOW_WATCHER_GRACE, tx.send(chunk))
        .await
        .is_ok()
}
