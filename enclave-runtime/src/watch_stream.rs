//! Drives one watch stream: polls the core watcher against the shared ring whenever the store's
//! revision moves, and feeds chunks to hyper through a small bounded channel. A client that stops
//! reading fills the channel and stalls only its own task; the ring moves on without it and the
//! stream ends with 410 Expired when it resumes too late.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use nautilus_core::api::{WatchPoll, Watcher};
use tokio::sync::mpsc;

use crate::server::{Shared, now};

/// Chunks buffered between the watch task and the connection.
const CHANNEL_DEPTH: usize = 8;
/// Events written per poll, so one busy watcher yields to others.
const EVENTS_PER_POLL: usize = 256;

/// Starts the task for `watcher`; the receiver becomes the response body.
pub(crate) fn spawn(shared: Arc<Shared>, mut watcher: Box<Watcher>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let ring = shared.ring.clone();
    tokio::spawn(async move {
        let mut revision = shared.revision.subscribe();
        let mut shutdown = shared.shutdown.subscribe();
        let bookmark_every = Duration::from_secs(shared.bookmark_secs);
        let mut next_bookmark = tokio::time::Instant::now() + bookmark_every;
        let deadline = watcher.deadline().map(|d| {
            let wait = d.nanos.saturating_sub(now().nanos);
            tokio::time::Instant::now() + Duration::from_nanos(wait)
        });
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            let poll = watcher.poll(&ring, now(), &mut buf, EVENTS_PER_POLL);
            crate::metrics::watch_polled(&poll, buf.len());
            if !buf.is_empty()
                && tx
                    .send(Bytes::from(std::mem::take(&mut buf)))
                    .await
                    .is_err()
            {
                break;
            }
            match poll {
                WatchPoll::Closed => break,
                WatchPoll::Wrote(_) => {
                    tokio::task::yield_now().await;
                    continue;
                }
                WatchPoll::Idle => {}
            }
            let deadline_sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = revision.changed() => if changed.is_err() { break },
                () = tokio::time::sleep_until(next_bookmark), if watcher.wants_bookmarks() => {
                    next_bookmark = tokio::time::Instant::now() + bookmark_every;
                    watcher.write_bookmark(&mut buf);
                    if tx.send(Bytes::from(std::mem::take(&mut buf))).await.is_err() {
                        break;
                    }
                }
                () = deadline_sleep => break,
                () = tx.closed() => break,
                _ = shutdown.changed() => {
                    // Draining: tell bookmark-aware clients where they are, then end cleanly.
                    if watcher.wants_bookmarks() {
                        watcher.write_bookmark(&mut buf);
                        let _ = tx.send(Bytes::from(std::mem::take(&mut buf))).await;
                    }
                    break;
                }
            }
        }
        shared.watches.fetch_sub(1, Ordering::Relaxed);
    });
    rx
}
