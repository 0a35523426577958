//! The store's compaction clock, as kube-apiserver's etcd compactor keeps it: every interval
//! everything up to the revision seen at the previous tick is compacted (kube's compaction
//! transaction is itself a write, so the snapshot at that tick goes too), so a LIST snapshot
//! (a `continue` token) lives between one and two intervals. Nothing is freed here (the watch
//! ring bounds history); the clock only makes old snapshots expire on time, as clients expect.

use crate::UnixTime;

/// The compaction clock.
#[derive(Debug, Clone)]
pub struct Compactor {
    interval_secs: u64,
    /// Revisions at or above this are readable as snapshots.
    compacted: u64,
    /// The first revision after the last tick: what the next tick compacts below.
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

    /// When [`Compactor::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.next
    }

    /// Ticks at `now` with the store at `revision`.
    pub fn handle_timeout(&mut self, now: UnixTime, revision: u64) {
        let Some(next) = self.next else {
            return;
        };
        if now < next {
            return;
        }
        self.compacted = self.mark;
        self.mark = revision.saturating_add(1);
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
        c.handle_timeout(UnixTime::from_secs(1_200), 10);
        assert_eq!(c.compacted(), 0);
        c.handle_timeout(UnixTime::from_secs(1_300), 10);
        assert_eq!(c.compacted(), 0, "the first tick only marks");
        c.handle_timeout(UnixTime::from_secs(1_600), 25);
        assert_eq!(
            c.compacted(),
            11,
            "revision 10, seen at the last tick, is gone"
        );
        assert_eq!(c.poll_timeout(), Some(UnixTime::from_secs(1_900)));
        assert_eq!(Compactor::new(0, start).poll_timeout(), None);
    }
}
