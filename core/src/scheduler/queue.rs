//! The scheduling queue: an active FIFO of pods to try and the set of pods that fit nowhere,
//! together bounded by a budget. A pod refused by a full queue is not lost: the scheduler finds it
//! again by a periodic scan of the store (see `Scheduler::rescan`). A parked pod woken by a
//! cluster change waits out its backoff first, as kube's (1 s doubling per failed attempt, at
//! most 10 s), so a busy cluster does not retry every parked pod on every change.

use alloc::collections::{BTreeMap, VecDeque};

use crate::UnixTime;
use crate::store::ObjectKey;

/// kube-scheduler's `podInitialBackoffSeconds` and `podMaxBackoffSeconds`.
const INITIAL_BACKOFF_SECS: u64 = 1;
const MAX_BACKOFF_SECS: u64 = 10;

/// What travels with a pod through the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// When the pod first entered the queue (for the latency figure).
    pub(crate) since: UnixTime,
    /// Attempts that found no node so far.
    pub(crate) failures: u32,
}

impl Ticket {
    pub(crate) fn new(since: UnixTime) -> Self {
        Self { since, failures: 0 }
    }

    fn backoff_secs(self) -> u64 {
        let shift = self.failures.saturating_sub(1).min(8);
        (INITIAL_BACKOFF_SECS << shift).min(MAX_BACKOFF_SECS)
    }
}

#[derive(Debug, Clone, Copy)]
struct Active {
    seq: u64,
    ticket: Ticket,
}

#[derive(Debug, Clone, Copy)]
struct Parked {
    ticket: Ticket,
    parked_at: UnixTime,
    /// A cluster change happened since it was parked: it retries once its backoff is over.
    woken: bool,
}

impl Parked {
    fn backoff_until(&self) -> UnixTime {
        self.parked_at.plus_secs(self.ticket.backoff_secs())
    }
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
    /// Every pod waiting, active or parked.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> alloc::collections::BTreeSet<ObjectKey> {
        self.active
            .keys()
            .chain(self.unschedulable.keys())
            .cloned()
            .collect()
    }

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

    fn enqueue(&mut self, key: ObjectKey, ticket: Ticket) {
        self.seq = self.seq.wrapping_add(1);
        self.order.push_back((self.seq, key.clone()));
        self.active.insert(
            key,
            Active {
                seq: self.seq,
                ticket,
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
        self.enqueue(key, Ticket::new(since));
        true
    }

    /// The next pod to try, with its ticket.
    pub(crate) fn pop(&mut self) -> Option<(ObjectKey, Ticket)> {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.active.get(&key).is_some_and(|a| a.seq == seq)
                && let Some(entry) = self.active.remove(&key)
            {
                return Some((key, entry.ticket));
            }
        }
        None
    }

    /// Forgets a pod wherever it is.
    pub(crate) fn remove(&mut self, key: &ObjectKey) {
        self.active.remove(key);
        self.unschedulable.remove(key);
    }

    /// Parks a pod whose attempt failed. It was just popped, so the budget holds it.
    pub(crate) fn park(&mut self, key: ObjectKey, ticket: Ticket, now: UnixTime) {
        self.active.remove(&key);
        let ticket = Ticket {
            failures: ticket.failures.saturating_add(1),
            ..ticket
        };
        self.unschedulable.insert(
            key,
            Parked {
                ticket,
                parked_at: now,
                woken: false,
            },
        );
    }

    /// Moves one parked pod back to the active queue (its spec changed).
    pub(crate) fn activate(&mut self, key: &ObjectKey) {
        if let Some(parked) = self.unschedulable.remove(key) {
            self.enqueue(key.clone(), parked.ticket);
        }
    }

    /// Moves back the woken parked pods whose backoff is over (`changed`: a cluster change just
    /// woke every parked pod); returns when the next woken pod's backoff ends.
    pub(crate) fn wake(&mut self, now: UnixTime, changed: bool) -> Option<UnixTime> {
        if changed {
            for p in self.unschedulable.values_mut() {
                p.woken = true;
            }
        }
        let due: alloc::vec::Vec<ObjectKey> = self
            .unschedulable
            .iter()
            .filter(|(_, p)| p.woken && p.backoff_until() <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.activate(&key);
        }
        self.unschedulable
            .values()
            .filter(|p| p.woken)
            .map(Parked::backoff_until)
            .min()
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
        q.park(key("a"), Ticket::new(t), UnixTime::from_secs(5));
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
        assert_eq!(q.pop(), Some((key("d"), Ticket::new(t))));
        assert_eq!(q.pop().map(|(k, _)| k), Some(key("e")));
        assert_eq!(q.pop().map(|(k, _)| k), Some(key("a")));
    }

    #[test]
    fn woken_pods_wait_out_kube_backoff() {
        // kube: 1 s after the first failure, doubling, at most 10 s.
        let t = UnixTime::from_secs(100);
        let mut q = Queue::new(10);
        q.push(key("a"), t);
        let mut ticket = q.pop().unwrap().1;
        for (failures, backoff) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)] {
            ticket.failures = failures - 1;
            q.park(key("a"), ticket, t);
            assert_eq!(q.wake(t, false), None, "not woken: waits for a change");
            assert_eq!(
                q.wake(t, true),
                Some(t.plus_secs(backoff)),
                "after {failures} failures"
            );
            assert_eq!(q.wake(t.plus_secs(backoff), false), None);
            let (_, popped) = q.pop().unwrap();
            assert_eq!(popped.failures, failures);
        }
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
