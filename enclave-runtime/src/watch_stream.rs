//! One watch stream as a response body that hyper polls: each poll reads the core watcher
//! against the shared ring (events up to the visible revision), and a stream that has caught up
//! waits for the store's revision to move. No task and no channel sit between the ring and the
//! connection, so an event costs one wake per watcher, and nothing piles up for a client that
//! stops reading: hyper stops polling once its (bounded) buffer is full, and the ring moves on
//! without the stream. A watchdog closes the connection of a stream that has had something to
//! send but was not polled for the grace period, as kube-apiserver closes unresponsive
//! watchers; the client re-lists.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use nautilus_core::api::{WatchPoll, Watcher};
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_util::sync::ReusableBoxFuture;

use crate::budget::{Chunk, Held, SLOW_WATCHER_GRACE, StreamBytes};
use crate::server::{Abort, Shared, now};

/// Events written per poll, so one busy watcher yields to others.
const EVENTS_PER_POLL: usize = 256;
/// The most bytes one chunk is filled to (one event past it at most), as a share of the
/// stream's buffer size (`--watch-buffer-bytes`).
const CHUNK_SHARE: usize = 4;
/// How long a stream waits before trying again when the in-flight budget has no room.
const BUDGET_RETRY: Duration = Duration::from_millis(10);

/// What the stream's watchdog reads.
#[derive(Default)]
struct Progress {
    /// Polls so far: a stream whose count stands still while it has something to send is not
    /// being read.
    polls: AtomicU64,
    /// The last poll left something to send (more events, or its initial state).
    behind: AtomicBool,
    /// The body is gone (the response ended or the connection closed).
    gone: AtomicBool,
    /// The revision up to which the stream has read the ring.
    cursor: AtomicU64,
}

/// The receivers a waiting stream hands to its wait and gets back.
type Receivers = (watch::Receiver<u64>, watch::Receiver<bool>);

/// Waits for the next revision (or shutdown); `false` once the revision channel closed.
async fn next_change((mut revision, mut shutdown): Receivers) -> (Receivers, bool) {
    let open = tokio::select! {
        changed = revision.changed() => changed.is_ok(),
        _ = shutdown.changed() => true,
    };
    ((revision, shutdown), open)
}

/// A watch stream's response body.
pub(crate) struct WatchBody {
    shared: Arc<Shared>,
    /// The ring the stream reads: a replica that replaces its cluster ends the stream.
    ring: Arc<nautilus_core::watch::WatchRing>,
    watcher: Box<Watcher>,
    /// The budget share for the state the watch queued at start, held for its life.
    _queued: Held,
    chunk_bytes: usize,
    /// The receivers while idle; `None` while `wait` holds them.
    receivers: Option<Receivers>,
    wait: ReusableBoxFuture<'static, (Receivers, bool)>,
    deadline: Option<Pin<Box<Sleep>>>,
    bookmark: Option<Pin<Box<Sleep>>>,
    bookmark_every: Duration,
    retry: Option<Pin<Box<Sleep>>>,
    progress: Arc<Progress>,
    /// Bytes handed to hyper and not yet written, at most `--watch-buffer-bytes`.
    in_flight: Arc<StreamBytes>,
    done: bool,
    buf: Vec<u8>,
}

impl WatchBody {
    /// The body for `watcher` (holding `queued`, its share of the budget for the state it
    /// queued), and its watchdog, which closes the connection through `abort`.
    pub(crate) fn start(
        shared: Arc<Shared>,
        watcher: Box<Watcher>,
        queued: Held,
        abort: Abort,
    ) -> Self {
        let progress = Arc::new(Progress::default());
        let ring = shared.ring();
        progress.cursor.store(watcher.cursor(), Ordering::Relaxed);
        progress
            .behind
            .store(!watcher.caught_up(&ring), Ordering::Relaxed);
        tokio::spawn(watchdog(
            progress.clone(),
            ring.clone(),
            watcher.resource_name(),
            shared.watch_buffer,
            abort,
        ));
        let deadline = watcher.deadline().map(|d| {
            let wait = d.nanos.saturating_sub(now().nanos);
            Box::pin(tokio::time::sleep(Duration::from_nanos(wait)))
        });
        let bookmark_every = Duration::from_secs(shared.bookmark_secs);
        let bookmark = watcher
            .wants_bookmarks()
            .then(|| Box::pin(tokio::time::sleep(bookmark_every)));
        let receivers = (shared.revision.subscribe(), shared.shutdown.subscribe());
        Self {
            chunk_bytes: (shared.watch_buffer / CHUNK_SHARE).max(1),
            shared,
            ring,
            watcher,
            _queued: queued,
            receivers: Some(receivers),
            wait: ReusableBoxFuture::new(std::future::pending()),
            deadline,
            bookmark,
            bookmark_every,
            retry: None,
            progress,
            in_flight: Arc::default(),
            done: false,
            buf: Vec::new(),
        }
    }

    /// `bytes` as a frame holding its share of the in-flight budget (none when the budget
    /// is full: the bytes are already taken from the ring, and hyper's buffer bounds them).
    fn frame(
        &self,
        bytes: Vec<u8>,
    ) -> Poll<Option<Result<Frame<Chunk>, std::convert::Infallible>>> {
        let held = self
            .shared
            .budget
            .try_take(bytes.len())
            .unwrap_or_default()
            .with_stream(&self.in_flight, bytes.len());
        Poll::Ready(Some(Ok(Frame::data(Chunk::new(Bytes::from(bytes), held)))))
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, std::convert::Infallible>>> {
        self.progress.polls.fetch_add(1, Ordering::Relaxed);
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self
                .deadline
                .as_mut()
                .is_some_and(|d| d.as_mut().poll(cx).is_ready())
            {
                self.done = true;
                continue;
            }
            if *self.shared.shutdown.borrow() {
                // Draining: tell bookmark-aware clients where they are, then end cleanly.
                self.done = true;
                if self.watcher.wants_bookmarks() {
                    let mut out = Vec::new();
                    self.watcher.write_bookmark(&mut out);
                    return self.frame(out);
                }
                continue;
            }
            if let Some(timer) = self.bookmark.as_mut()
                && timer.as_mut().poll(cx).is_ready()
            {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.bookmark_every);
                let mut out = Vec::new();
                self.watcher.write_bookmark(&mut out);
                return self.frame(out);
            }
            if let Some(retry) = self.retry.as_mut() {
                if retry.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.retry = None;
            }
            if self.in_flight.full(self.shared.watch_buffer, cx.waker()) {
                // Hyper holds the stream's share: woken when it has written some.
                return Poll::Pending;
            }
            let budget = &self.shared.budget;
            if budget.in_use().saturating_add(self.chunk_bytes) > budget.limit() {
                self.retry = Some(Box::pin(tokio::time::sleep(BUDGET_RETRY)));
                continue;
            }
            if !self.shared.serves_ring(&self.ring) {
                // The replica replaced its cluster: the client watches again from its last
                // revision, which the new cluster holds.
                return Poll::Ready(None);
            }
            let ring = &self.ring;
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let poll =
                self.watcher
                    .poll_limited(ring, now(), &mut buf, EVENTS_PER_POLL, self.chunk_bytes);
            crate::metrics::watch_polled(&poll, buf.len());
            let caught_up = self.watcher.caught_up(ring);
            self.progress.behind.store(!caught_up, Ordering::Relaxed);
            self.progress
                .cursor
                .store(self.watcher.cursor(), Ordering::Relaxed);
            if matches!(poll, WatchPoll::Closed) {
                self.done = true;
            }
            if !buf.is_empty() {
                return self.frame(buf);
            }
            self.buf = buf;
            if self.done || !caught_up {
                continue;
            }
            // Caught up: wait for the next revision.
            if let Some(receivers) = self.receivers.take() {
                self.wait.set(next_change(receivers));
            }
            match self.wait.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready((receivers, open)) => {
                    self.receivers = Some(receivers);
                    if !open {
                        self.done = true;
                    }
                }
            }
        }
    }
}

impl Drop for WatchBody {
    fn drop(&mut self) {
        self.progress.gone.store(true, Ordering::Relaxed);
    }
}

/// Closes the connection of a stream that had something to send (more of its state, or ring
/// events past its cursor) but was not polled for [`SLOW_WATCHER_GRACE`]: its client stopped
/// reading and hyper's buffer is full.
async fn watchdog(
    progress: Arc<Progress>,
    ring: Arc<nautilus_core::watch::WatchRing>,
    resource: String,
    buffer_bytes: usize,
    abort: Abort,
) {
    let mut stalled: Option<(u64, tokio::time::Instant)> = None;
    loop {
        tokio::time::sleep(SLOW_WATCHER_GRACE / 4).await;
        if progress.gone.load(Ordering::Relaxed) {
            return;
        }
        let polls = progress.polls.load(Ordering::Relaxed);
        let behind = progress.behind.load(Ordering::Relaxed)
            || progress.cursor.load(Ordering::Relaxed) < ring.newest_visible();
        if !behind {
            stalled = None;
            continue;
        }
        match stalled {
            Some((at, since)) if at == polls => {
                if since.elapsed() >= SLOW_WATCHER_GRACE {
                    crate::metrics::watcher_terminated(&resource);
                    tracing::info!(
                        resource,
                        buffer_bytes,
                        "closing a watch whose client stopped reading"
                    );
                    abort.connection();
                    return;
                }
            }
            _ => stalled = Some((polls, tokio::time::Instant::now())),
        }
    }
}
