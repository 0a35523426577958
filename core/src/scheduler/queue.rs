//! The scheduling queue: an active FIFO of pods to try and the set of pods that fit nowhere,
//! together bounded by a budget. A pod refused by a full queue is not lost: the scheduler finds it
//! again by a periodic scan of the store (see `Scheduler::rescan`).

use alloc::collections::{BTreeMap, VecDeque};

use crate::UnixTime;
use crate::store::ObjectKey;

#[derive(Debug, Clone, Copy)]
struct Active {
    seq: u64,
    since: UnixTime,
}

#[derive(Debug, Clone, Copy)]
struct Parked {
    since: UnixTime,
    parked_at: UnixTime,
}

/// Active queue plus unschedulable set, at most `capacity` pods in both.
#[derive(Debug)]
pub(crate) struct Queue {
    capacity: usize,
    seq: u64,
    /// FIFO order; entries whose seq no longer matches `active` are stale and skipped.
    order: VecDeque<(u64, ObjectKey)>,
    active: BTreeMap<ObjectKey, Active>,
    unschedulable: BTreeMap<ObjectKey, Parked>,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seq: 0,
            order: VecDeque::new(),
            active: BTreeMap::new(),
            unschedulable: BTreeMap::new(),
        }
    }

    pub(crate) fn active_len(&self) -> usize {
        self.active.len()
    }

    pub(crate) fn unschedulable_len(&self) -> usize {
        self.unschedulable.len()
    }

    pub(crate) fn contains(&self, key: &ObjectKey) -> bool {
        self.active.contains_key(key) || self.unschedulable.contains_key(key)
    }

    pub(crate) fn is_unschedulable(&self, key: &ObjectKey) -> bool {
        self.unschedulable.contains_key(key)
    }

    fn full(&self) -> bool {
        self.active.len() + self.unschedulable.len() >= self.capacity
    }

    fn enqueue(&mut self, key: ObjectKey, since: UnixTime) {
        self.seq = self.seq.wrapping_add(1);
        self.order.push_back((self.seq, key.clone()));
        self.active.insert(
            key,
            Active {
                seq: self.seq,
                since,
            },
        );
        // Removals leave stale entries behind; compact before they outnumber live ones.
        if self.order.len() > 2 * self.active.len() + 64 {
            let active = &self.active;
            self.order
                .retain(|(seq, k)| active.get(k).is_some_and(|a| a.seq == *seq));
        }
    }

    /// Adds a pod to the active queue; false (and nothing changes) when the budget is full.
    pub(crate) fn push(&mut self, key: ObjectKey, since: UnixTime) -> bool {
        if self.contains(&key) {
            return true;
        }
        if self.full() {
            return false;
        }
        self.enqueue(key, since);
        true
    }

    /// The next pod to try, with when it first entered the queue.
    pub(crate) fn pop(&mut self) -> Option<(ObjectKey, UnixTime)> {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.active.get(&key).is_some_and(|a| a.seq == seq)
                && let Some(entry) = self.active.remove(&key)
            {
                return Some((key, entry.since));
            }
        }
        None
    }

    /// Forgets a pod wherever it is.
    pub(crate) fn remove(&mut self, key: &ObjectKey) {
        self.active.remove(key);
        self.unschedulable.remove(key);
    }

    /// Parks a pod that fits nowhere. It was just popped, so the budget holds it.
    pub(crate) fn park(&mut self, key: ObjectKey, since: UnixTime, now: UnixTime) {
        self.active.remove(&key);
        self.unschedulable.insert(
            key,
            Parked {
                since,
                parked_at: now,
            },
        );
    }

    /// Moves one parked pod back to the active queue (its spec changed).
    pub(crate) fn activate(&mut self, key: &ObjectKey) {
        if let Some(parked) = self.unschedulable.remove(key) {
            self.enqueue(key.clone(), parked.since);
        }
    }

    /// Moves every parked pod back (a node or a bound pod changed); returns how many.
    pub(crate) fn activate_all(&mut self) -> usize {
        let parked = core::mem::take(&mut self.unschedulable);
        let n = parked.len();
        for (key, p) in parked {
            self.enqueue(key, p.since);
        }
        n
    }

    /// Moves back the pods parked at or before `cutoff`; returns when the earliest remaining
    /// one was parked.
    pub(crate) fn activate_parked_before(&mut self, cutoff: UnixTime) -> Option<UnixTime> {
        let due: alloc::vec::Vec<ObjectKey> = self
            .unschedulable
            .iter()
            .filter(|(_, p)| p.parked_at <= cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.activate(&key);
        }
        self.unschedulable.values().map(|p| p.parked_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceId;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(ResourceId::Pods, "default", name)
    }

    #[test]
    fn budget_fifo_and_parking() {
        let t = UnixTime::from_secs(1);
        let mut q = Queue::new(3);
        assert!(q.push(key("a"), t));
        assert!(q.push(key("b"), t));
        assert!(q.push(key("a"), t), "already queued is not a refusal");
        assert!(q.push(key("c"), t));
        assert!(
            !q.push(key("d"), t),
            "a full queue refuses and changes nothing"
        );
        assert_eq!(q.active_len(), 3);
        q.remove(&key("b"));
        assert_eq!(q.pop().map(|(k, _)| k), Some(key("a")));
        q.park(key("a"), t, UnixTime::from_secs(5));
        assert_eq!(
            q.pop().map(|(k, _)| k),
            Some(key("c")),
            "stale b is skipped"
        );
        assert_eq!(q.pop(), None);
        assert!(q.is_unschedulable(&key("a")));
        assert!(q.push(key("d"), t));
        assert!(q.push(key("e"), t));
        assert!(!q.push(key("f"), t), "parked pods count against the budget");
        assert_eq!(
            q.activate_parked_before(UnixTime::from_secs(4)),
            Some(UnixTime::from_secs(5))
        );
        assert_eq!(q.activate_parked_before(UnixTime::from_secs(5)), None);
        assert_eq!(q.pop(), Some((key("d"), t)));
        assert_eq!(q.pop().map(|(k, _)| k), Some(key("e")));
        assert_eq!(q.pop().map(|(k, _)| k), Some(key("a")));
    }

    #[test]
    fn stale_entries_are_compacted() {
        let mut q = Queue::new(10);
        for i in 0..1000 {
            assert!(q.push(key("x"), UnixTime::from_secs(i)));
            q.remove(&key("x"));
        }
        assert!(q.order.len() <= 66, "{}", q.order.len());
    }
}
