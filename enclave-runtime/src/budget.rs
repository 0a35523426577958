//! One byte budget for what the enclave holds in flight for clients: request bodies being read,
//! responses being written and watch chunks not yet on the wire (`--inflight-bytes`). Bytes are
//! taken before they are held and given back when their last holder drops them: a [`Chunk`]
//! carries its share into hyper's write queue and returns it once written, so a client that
//! stops reading keeps only what it was granted. A request that finds the budget full gets 429
//! with `Retry-After` (kube's wording); a watch waits for room instead (it holds no bytes while
//! it waits: its events stay in the ring).
//!
//! A watch stream's chunks are a quarter of `--watch-buffer-bytes`, and hyper stops polling a
//! stream once its connection buffer is full; a stream that had something to send but was not
//! polled for [`SLOW_WATCHER_GRACE`] is a client that stopped reading, and is closed like
//! kube-apiserver closes unresponsive watchers, so that the client re-lists.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a watch stream may go unread with something to send before it is closed as
/// unresponsive.
pub(crate) const SLOW_WATCHER_GRACE: Duration = Duration::from_secs(5);

/// Bytes held in flight, all clients together (a clone shares them).
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The configured limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub(crate) fn in_use(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }

    /// Takes `bytes` now, or `None` when they do not fit (the caller answers 429).
    pub(crate) fn try_take(&self, bytes: usize) -> Option<Held> {
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(permits(bytes, self.limit))
            .ok()?;
        Some(Held {
            budget: Some(permit),
            stream: None,
        })
    }
}

/// The permits for `bytes`: at most the whole budget (one thing larger than the budget still
/// fits once the budget is empty), and at most what a semaphore call takes.
fn permits(bytes: usize, limit: usize) -> u32 {
    u32::try_from(bytes.min(limit)).unwrap_or(u32::MAX)
}

/// A share of the budget (and of a watch stream's bytes in hyper's hands), given back when
/// dropped.
#[derive(Debug, Default)]
pub(crate) struct Held {
    budget: Option<OwnedSemaphorePermit>,
    stream: Option<StreamShare>,
}

impl Held {
    /// Takes `more` bytes on top of this share now, or `false` when they do not fit.
    pub(crate) fn try_grow(&mut self, budget: &Budget, more: usize) -> bool {
        let Some(extra) = budget.try_take(more).and_then(|h| h.budget) else {
            return false;
        };
        match &mut self.budget {
            Some(permit) => permit.merge(extra),
            None => self.budget = Some(extra),
        }
        true
    }

    /// Adds `bytes` of a watch stream's bytes in flight, given back with this share.
    pub(crate) fn with_stream(mut self, stream: &Arc<StreamBytes>, bytes: usize) -> Self {
        stream.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.stream = Some(StreamShare {
            stream: stream.clone(),
            bytes,
        });
        self
    }

    /// Bytes of the budget this share holds.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.budget
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

/// A watch stream's bytes handed to hyper and not yet written (at most `--watch-buffer-bytes`,
/// one chunk past it): the stream stops producing at the limit and is woken when hyper has
/// written some, so a client that stops reading holds no more than that.
#[derive(Debug, Default)]
pub(crate) struct StreamBytes {
    bytes: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl StreamBytes {
    /// Whether the stream has `limit` bytes or more in flight; if so, `waker` is woken when
    /// some are written.
    pub(crate) fn full(&self, limit: usize, waker: &Waker) -> bool {
        if self.bytes.load(Ordering::Relaxed) < limit {
            return false;
        }
        if let Ok(mut slot) = self.waker.lock() {
            *slot = Some(waker.clone());
        }
        // Written meanwhile: go on.
        self.bytes.load(Ordering::Relaxed) >= limit
    }
}

/// A chunk's part of its stream's bytes in flight.
#[derive(Debug)]
struct StreamShare {
    stream: Arc<StreamBytes>,
    bytes: usize,
}

impl Drop for StreamShare {
    fn drop(&mut self) {
        self.stream.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        let waker = self.stream.waker.lock().ok().and_then(|mut w| w.take());
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Bytes on their way to a client with the budget share they hold; hyper keeps a chunk in its
/// write queue until the bytes are written, then drops it, which gives the share back.
#[derive(Debug)]
pub(crate) struct Chunk {
    bytes: Bytes,
    _held: Held,
}

impl Chunk {
    /// `bytes` holding `held`.
    pub(crate) fn new(bytes: Bytes, held: Held) -> Self {
        Self { bytes, _held: held }
    }

    /// The bytes not yet written.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Self {
        Self::new(bytes, Held::default())
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        self.bytes.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.bytes.chunk()
    }

    fn advance(&mut self, cnt: usize) {
        self.bytes.advance(cnt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_back_when_their_chunk_is_dropped() {
        let budget = Budget::new(100);
        let a = budget.try_take(60).unwrap();
        assert_eq!((a.bytes(), budget.in_use()), (60, 60));
        assert!(budget.try_take(41).is_none(), "over the limit");
        let mut b = budget.try_take(40).unwrap();
        assert!(!b.try_grow(&budget, 1));
        let chunk = Chunk::new(Bytes::from_static(b"abc"), a);
        assert_eq!(budget.in_use(), 100);
        drop(chunk);
        assert_eq!(budget.in_use(), 40);
        assert!(b.try_grow(&budget, 60));
        assert_eq!((b.bytes(), budget.in_use()), (100, 100));
        drop(b);
        assert_eq!(budget.in_use(), 0);
        // Something larger than the whole budget takes all of it, once.
        let all = budget.try_take(1_000).unwrap();
        assert_eq!(all.bytes(), 100);
        assert!(budget.try_take(1).is_none());
    }
}
