//! The watch log: a bounded ring of change events, one per revision. Writers append without
//! waiting for any reader; a reader whose position has left the ring gets [`Expired`] and must
//! re-list, exactly like a Kubernetes client after etcd compaction.
//!
//! The ring is the one structure in core shared across threads: the writer holds the store, each
//! watch stream holds a cursor and reads under the ring's short lock.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::store::{ObjectKey, StoredObject};
use crate::sync::Mutex;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was replaced.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, shared by every reader.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (for a delete: its last state at the delete's revision).
    pub object: StoredObject,
    /// The version before the change; `None` for a create. Lets readers see selector
    /// transitions and lets paginated LISTs rebuild older snapshots.
    pub previous: Option<StoredObject>,
}

impl WatchEvent {
    /// The revision of this change.
    pub fn revision(&self) -> u64 {
        self.object.revision
    }

    /// What the event counts against the ring's byte budget: the object versions it holds.
    fn bytes(&self) -> usize {
        self.object
            .json
            .len()
            .saturating_add(self.previous.as_ref().map_or(0, |p| p.json.len()))
    }
}

/// The open watches, within `Config::max_watches`: core takes a slot before it builds a
/// watcher (refusing with 429 when none is left), and the watcher gives it back when the
/// runtime drops it, whichever thread that is on.
#[derive(Debug, Clone)]
pub struct WatchSlots {
    open: crate::sync::Arc<crate::sync::AtomicUsize>,
    max: usize,
}

/// One open watch's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct WatchSlot {
    open: crate::sync::Arc<crate::sync::AtomicUsize>,
}

impl WatchSlots {
    /// At most `max` open watches.
    pub fn new(max: usize) -> Self {
        Self {
            open: crate::sync::Arc::new(crate::sync::AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot, or kube's 429 when every one is taken.
    pub fn take(&self) -> Result<WatchSlot, crate::Error> {
        let taken = self.open.fetch_update(
            core::sync::atomic::Ordering::AcqRel,
            core::sync::atomic::Ordering::Acquire,
            |open| (open < self.max).then_some(open + 1),
        );
        match taken {
            Ok(_) => Ok(WatchSlot {
                open: self.open.clone(),
            }),
            Err(_) => Err(crate::Error::TooManyRequests(alloc::format!(
                "too many open watches (limit {})",
                self.max
            ))),
        }
    }

    /// Watches open now.
    pub fn open(&self) -> usize {
        self.open.load(core::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, core::sync::atomic::Ordering::AcqRel);
    }
}

/// A reader asked for changes after a revision that has left the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The revision the reader asked to continue after.
    pub requested: u64,
    /// The oldest revision a reader may still continue after.
    pub oldest: u64,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<crate::sync::Arc<WatchEvent>>,
    capacity: usize,
    /// Object bytes the events hold, and the most they may.
    bytes: usize,
    max_bytes: usize,
    /// Readers positioned at or after this revision see every later change.
    oldest: u64,
    /// Revision of the newest event.
    newest: u64,
    /// Events pushed out by newer ones.
    evicted: u64,
    /// Watch streams see events up to this revision only: the durable revision when the runtime
    /// persists changes (a client never sees a change a crash could take back), else all.
    visible: u64,
    /// Ranges of revisions (strictly between each pair) that never existed here (recovered
    /// runs skipped them): a reader positioned inside one gets [`Expired`] and re-lists. One
    /// per restart whose gap the ring still spans; older ones are dropped as events leave.
    skipped: VecDeque<(u64, u64)>,
    /// Most ranges `skipped` holds (`Config::watch_ring_gaps`).
    max_skipped: usize,
}

/// Most skipped ranges a ring remembers unless told otherwise ([`WatchRing::with_max_gaps`]).
const DEFAULT_MAX_SKIPPED: usize = 64;

/// The bounded event ring.
#[derive(Debug)]
pub struct WatchRing {
    ring: Mutex<Ring>,
}

impl WatchRing {
    /// An empty ring holding at most `capacity` events (at least one), without a byte budget.
    pub fn new(capacity: usize) -> Self {
        Self::starting_at(capacity, usize::MAX, 0)
    }

    /// An empty ring holding at most `capacity` events and `max_bytes` of their objects (the
    /// newest event is kept whatever its size), whose first event will be revision
    /// `revision + 1`: readers positioned before `revision` (a previous run's revisions) get
    /// [`Expired`].
    pub fn starting_at(capacity: usize, max_bytes: usize, revision: u64) -> Self {
        let capacity = capacity.max(1);
        Self {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(1 << 16)),
                capacity,
                bytes: 0,
                max_bytes,
                oldest: revision,
                newest: revision,
                evicted: 0,
                visible: u64::MAX,
                skipped: VecDeque::new(),
                max_skipped: DEFAULT_MAX_SKIPPED,
            }),
        }
    }

    /// The same ring remembering at most `max_gaps` skipped ranges (at least one).
    #[must_use]
    pub fn with_max_gaps(self, max_gaps: usize) -> Self {
        self.ring.lock().max_skipped = max_gaps.max(1);
        self
    }

    /// Appends the event of the newest revision, evicting the oldest while the count or the
    /// bytes are over budget. Never waits on a reader: readers hold the lock only to clone
    /// handles.
    pub fn push(&self, event: WatchEvent) {
        let revision = event.revision();
        let size = event.bytes();
        let mut ring = self.ring.lock();
        while (ring.events.len() >= ring.capacity
            || ring.bytes.saturating_add(size) > ring.max_bytes)
            && let Some(front) = ring.events.pop_front()
        {
            ring.oldest = front.revision();
            ring.evicted = ring.evicted.saturating_add(1);
            ring.bytes = ring.bytes.saturating_sub(front.bytes());
        }
        ring.bytes = ring.bytes.saturating_add(size);
        if ring.events.is_empty() && ring.newest == 0 {
            ring.oldest = revision.saturating_sub(1);
        }
        ring.newest = revision;
        ring.events.push_back(crate::sync::Arc::new(event));
    }

    /// Copies handles of up to `max` events after revision `after` into `out`; returns the number
    /// copied, or [`Expired`] when some event after `after` has already been evicted (or `after`
    /// lies in a skipped range).
    pub fn read_after(
        &self,
        after: u64,
        max: usize,
        out: &mut Vec<crate::sync::Arc<WatchEvent>>,
    ) -> Result<usize, Expired> {
        self.read_through(after, Some(u64::MAX), max, out)
            .map(|(copied, _)| copied)
    }

    /// As [`WatchRing::read_after`], but only events a watch stream may see yet (see
    /// [`WatchRing::set_visible`]).
    pub fn read_visible_after(
        &self,
        after: u64,
        max: usize,
        out: &mut Vec<crate::sync::Arc<WatchEvent>>,
    ) -> Result<usize, Expired> {
        self.read_through(after, None, max, out)
            .map(|(copied, _)| copied)
    }

    /// As [`WatchRing::read_visible_after`], also saying where the reader stands after the read:
    /// the revision it has seen the ring through. A read that took everything there was up to
    /// the visible revision has seen through that revision (or the newest, if lower) even where
    /// no event carries it: a recovered run's skipped revisions and compaction marks move the
    /// newest revision without an event, and a reader left before them must still count as
    /// caught up, not look for events that will never come.
    pub fn read_visible_after_reaching(
        &self,
        after: u64,
        max: usize,
        out: &mut Vec<crate::sync::Arc<WatchEvent>>,
    ) -> Result<(usize, u64), Expired> {
        self.read_through(after, None, max, out)
    }

    /// Reads after `after`, up to `through` (`None`: the visible revision), under one lock: the
    /// events copied, and the revision the reader has seen the ring through (the last event
    /// copied when `max` stopped the read, else `through` or the newest revision, if lower).
    fn read_through(
        &self,
        after: u64,
        through: Option<u64>,
        max: usize,
        out: &mut Vec<crate::sync::Arc<WatchEvent>>,
    ) -> Result<(usize, u64), Expired> {
        let ring = self.ring.lock();
        let through = through.unwrap_or(ring.visible);
        if after < ring.oldest {
            return Err(Expired {
                requested: after,
                oldest: ring.oldest,
            });
        }
        if let Some(&(_, to)) = ring
            .skipped
            .iter()
            .find(|&&(from, to)| from < after && after < to)
        {
            return Err(Expired {
                requested: after,
                oldest: to,
            });
        }
        // Revisions increase along the ring (with gaps only where a recovered run skipped).
        let skip = ring.events.partition_point(|e| e.revision() <= after);
        let mut copied = 0;
        let mut reached = after;
        for event in ring
            .events
            .iter()
            .skip(skip)
            .take(max)
            .take_while(|e| e.revision() <= through)
        {
            out.push(event.clone());
            copied += 1;
            reached = event.revision();
        }
        if copied < max {
            reached = reached.max(ring.newest.min(through));
        }
        Ok((copied, reached))
    }

    /// Lets watch streams see events up to `revision` (the durable revision).
    pub fn set_visible(&self, revision: u64) {
        self.ring.lock().visible = revision;
    }

    /// Marks the revisions strictly between `from` and `to` as never having existed here.
    pub(crate) fn skip(&self, from: u64, to: u64) {
        let mut ring = self.ring.lock();
        let oldest = ring.oldest;
        ring.skipped.retain(|&(_, to)| to > oldest);
        ring.skipped.push_back((from, to));
        // Bounded: past the limit the oldest gaps are forgotten by moving `oldest` past them,
        // so a reader there gets Expired all the same.
        while ring.skipped.len() > ring.max_skipped {
            if let Some((_, to)) = ring.skipped.pop_front() {
                ring.oldest = ring.oldest.max(to);
            }
        }
        ring.newest = ring.newest.max(to);
    }

    /// The store moved to `revision` without a change (a compaction mark): a reader at any
    /// revision before it continues, and bookmarks may carry it.
    pub(crate) fn advance(&self, revision: u64) {
        let mut ring = self.ring.lock();
        ring.newest = ring.newest.max(revision);
    }

    /// Revision of the newest event a watch stream may see.
    pub fn newest_visible(&self) -> u64 {
        let ring = self.ring.lock();
        ring.newest.min(ring.visible)
    }

    /// Revision of the newest event (0 before the first write).
    pub fn newest(&self) -> u64 {
        self.ring.lock().newest
    }

    /// The oldest revision a reader may continue after.
    pub fn oldest(&self) -> u64 {
        self.ring.lock().oldest
    }

    /// (events held, capacity, events evicted so far).
    pub fn stats(&self) -> (usize, usize, u64) {
        let ring = self.ring.lock();
        (ring.events.len(), ring.capacity, ring.evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceId;

    fn event(revision: u64) -> WatchEvent {
        sized(revision, 2, 0)
    }

    /// A MODIFIED event whose object has `bytes` bytes and whose previous version `previous`.
    fn sized(revision: u64, bytes: usize, previous: usize) -> WatchEvent {
        let version = |len: usize, revision| StoredObject::whole(alloc::vec![b' '; len], revision);
        WatchEvent {
            kind: EventType::Modified,
            key: ObjectKey::new(ResourceId::Pods, "default", "p"),
            object: version(bytes, revision),
            previous: (previous > 0).then(|| version(previous, revision.saturating_sub(1))),
        }
    }

    #[test]
    fn the_byte_budget_evicts_the_oldest_and_keeps_the_newest() {
        let ring = WatchRing::starting_at(100, 1_000, 0);
        for rev in 1..=4 {
            ring.push(sized(rev, 100, 100));
        }
        assert_eq!(ring.stats(), (4, 100, 0));
        // Each holds 200 bytes: a sixth would exceed 1,000, so the first goes.
        ring.push(sized(5, 100, 100));
        ring.push(sized(6, 100, 100));
        assert_eq!(ring.stats(), (5, 100, 1));
        let mut out = Vec::new();
        assert!(ring.read_after(0, 10, &mut out).is_err());
        assert_eq!(ring.read_after(1, 10, &mut out), Ok(5));
        // One event over the whole budget evicts everything else but is kept itself.
        ring.push(sized(7, 5_000, 0));
        assert_eq!(ring.stats(), (1, 100, 6));
        out.clear();
        assert_eq!(ring.read_after(6, 10, &mut out), Ok(1));
        assert!(ring.read_after(5, 10, &mut out).is_err());
        // And the next small one pushes it out.
        ring.push(sized(8, 100, 0));
        assert_eq!(ring.stats(), (1, 100, 7));
    }

    #[test]
    fn readers_follow_and_expire() {
        let ring = WatchRing::new(3);
        let mut out = Vec::new();
        assert_eq!(ring.read_after(0, 10, &mut out), Ok(0));
        for rev in 1..=3 {
            ring.push(event(rev));
        }
        assert_eq!(ring.read_after(0, 10, &mut out), Ok(3));
        out.clear();
        assert_eq!(ring.read_after(2, 10, &mut out), Ok(1));
        assert_eq!(out[0].revision(), 3);
        ring.push(event(4));
        ring.push(event(5));
        assert_eq!(
            ring.read_after(1, 10, &mut out),
            Err(Expired {
                requested: 1,
                oldest: 2
            })
        );
        out.clear();
        assert_eq!(ring.read_after(2, 10, &mut out), Ok(3));
        assert_eq!(
            out.iter().map(|e| e.revision()).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        out.clear();
        assert_eq!(ring.read_after(5, 10, &mut out), Ok(0));
        assert_eq!(ring.read_after(4, 1, &mut out), Ok(1));
        assert_eq!(ring.stats(), (3, 3, 2));
    }

    #[test]
    fn a_ring_started_at_a_revision_expires_earlier_ones() {
        let ring = WatchRing::starting_at(4, usize::MAX, 1_000);
        let mut out = Vec::new();
        assert_eq!(ring.read_after(1_000, 10, &mut out), Ok(0));
        assert_eq!(
            ring.read_after(999, 10, &mut out),
            Err(Expired {
                requested: 999,
                oldest: 1_000
            })
        );
        ring.push(event(1_001));
        assert_eq!(ring.read_after(1_000, 10, &mut out), Ok(1));
        assert!(ring.read_after(5, 10, &mut out).is_err());
    }

    #[test]
    fn a_ring_that_starts_late_still_indexes_by_revision() {
        let ring = WatchRing::new(2);
        ring.push(event(7));
        let mut out = Vec::new();
        assert_eq!(ring.read_after(6, 10, &mut out), Ok(1));
        assert!(ring.read_after(5, 10, &mut out).is_err());
    }

    /// The ring remembers at most its budget of gaps: past it the oldest gap is forgotten by
    /// expiring everything before its end, so a reader inside it still gets 410, never a
    /// silent skip over revisions that never existed.
    #[test]
    fn gaps_past_the_budget_expire_instead_of_being_forgotten() {
        let ring = WatchRing::starting_at(100, usize::MAX, 0).with_max_gaps(2);
        ring.push(sized(1, 10, 0));
        ring.skip(1, 10);
        ring.push(sized(10, 10, 0));
        ring.skip(10, 20);
        ring.push(sized(20, 10, 0));
        let mut out = Vec::new();
        assert_eq!(
            ring.read_after(5, 10, &mut out),
            Err(Expired {
                requested: 5,
                oldest: 10
            })
        );
        assert_eq!(ring.read_after(1, 10, &mut out), Ok(2), "two gaps are kept");
        ring.skip(20, 30);
        ring.push(sized(30, 10, 0));
        out.clear();
        assert_eq!(
            ring.read_after(1, 10, &mut out),
            Err(Expired {
                requested: 1,
                oldest: 10
            }),
            "the third gap pushed the first out: what came before it expired"
        );
        assert_eq!(ring.read_after(10, 10, &mut out), Ok(2));
        assert!(
            ring.read_after(15, 10, &mut out).is_err(),
            "inside a kept gap"
        );
    }
}
