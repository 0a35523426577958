//! The store's compaction clock, as kube-apiserver's etcd compactor keeps it: every interval
//! the compactor writes a mark (kube's compaction transaction is itself an etcd write, so the
//! revision moves even on an idle cluster) and compacts everything below the mark of the tick
//! before, so a LIST snapshot (a `continue` token) lives between one and two intervals, and a
//! LIST after the compaction is at a newer revision than any token it expired. Nothing is freed
//! here (the watch ring bounds history); the clock only makes old snapshots expire on time, as
//! clients expect.

use crate::UnixTime;

/// The compaction clock.
#[derive(Debug, Clone)]
pub struct Compactor {
    interval_secs: u64,
    /// Revisions at or above this are readable as snapshots.
    compacted: u64,
    /// The revision of the last tick's mark: what the next tick compacts below.
    mark: u64,
    next: Option<UnixTime>,
}

impl Compactor {
    /// A clock ticking every `interval_secs` from `now`; 0 never compacts.
    pub fn new(interval_secs: u64, now: UnixTime) -> Self {
        Self {
            interval_secs,
            compacted: 0,
            mark: 0,
            next: (interval_secs > 0).then(|| now.plus_secs(interval_secs)),
        }
    }

    /// The oldest revision a snapshot may still be read at.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// When [`Compactor::tick`] is next due.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.next
    }

    /// Whether a tick is due at `now`: the caller then writes its mark and calls
    /// [`Compactor::tick`].
    pub fn due(&self, now: UnixTime) -> bool {
        self.next.is_some_and(|next| next <= now)
    }

    /// Follows a tick a writer recorded (its mark at revision `mark`, written at `at`), so a
    /// replica's or a restarted run's snapshots expire when the writer's do; the next tick is
    /// due an interval after it.
    pub fn follow(&mut self, at: UnixTime, mark: u64) {
        if self.interval_secs == 0 {
            return;
        }
        self.compacted = self.mark;
        self.mark = mark;
        self.next = Some(at.plus_secs(self.interval_secs));
    }

    /// Ticks at `now`, the store being at `mark` (the revision of the tick's own mark, or the
    /// latest one when no mark could be written): compacts below the previous tick's mark.
    pub fn tick(&mut self, now: UnixTime, mark: u64) {
        if !self.due(now) {
            return;
        }
        self.compacted = self.mark;
        self.mark = mark;
        self.next = Some(now.plus_secs(self.interval_secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_is_compacted_one_to_two_intervals_later() {
        let start = UnixTime::from_secs(1_000);
        let mut c = Compactor::new(300, start);
        assert_eq!(c.poll_timeout(), Some(UnixTime::from_secs(1_300)));
        assert!(!c.due(UnixTime::from_secs(1_200)));
        c.tick(UnixTime::from_secs(1_200), 10);
        assert_eq!(c.compacted(), 0, "not due yet");
        assert!(c.due(UnixTime::from_secs(1_300)));
        c.tick(UnixTime::from_secs(1_300), 11);
        assert_eq!(c.compacted(), 0, "the first tick only marks");
        c.tick(UnixTime::from_secs(1_600), 26);
        assert_eq!(
            c.compacted(),
            11,
            "revision 10, before the last tick's mark, is gone; the mark itself is readable"
        );
        assert_eq!(c.poll_timeout(), Some(UnixTime::from_secs(1_900)));
        assert_eq!(Compactor::new(0, start).poll_timeout(), None);
        // A replica follows the writer's ticks whenever they come.
        let mut replica = Compactor::new(300, UnixTime::from_secs(1_250));
        replica.follow(UnixTime::from_secs(1_300), 11);
        replica.follow(UnixTime::from_secs(1_600), 26);
        assert_eq!(replica.compacted(), c.compacted());
        assert_eq!(replica.poll_timeout(), c.poll_timeout());
        let mut never = Compactor::new(0, start);
        never.follow(UnixTime::from_secs(1_300), 11);
        assert_eq!((never.compacted(), never.poll_timeout()), (0, None));
        assert!(!Compactor::new(0, start).due(UnixTime::from_secs(u64::MAX / 1_000_000_000)));
    }
}
