//! Events expire `event_ttl_secs` after their last write, as kube-apiserver's etcd lease per
//! write does (`--event-ttl`): what an event's timestamps say plays no part, so no event can
//! hold back the expiry of others. The same ledger charges each node identity's events against
//! its share of the store (kube's EventRateLimit admission is the model for the rate; the share
//! is ours), so one worker's events cannot starve other writes.
//!
//! Every write is one push onto a queue in expiry order: the TTL is the same for every event,
//! so the order of writes is the order of expiry. A write that replaces an earlier one leaves
//! that one's entry behind; expiry skips an entry whose revision is no longer the event's
//! (the store says), and the queue is compacted once it holds more left-behind entries than
//! live ones, so it stays within twice `max_events` (plus a small slack). Per event that costs
//! one queue slot instead of two ordered-map entries; only events a node created keep a keyed
//! entry, for their share.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;

use crate::cluster::Cluster;
use crate::cluster::WriteContext;
use crate::store::ObjectKey;
use crate::{Config, Error, UnixTime};

/// Most events deleted by one `handle_timeout` call; the rest follow on the next calls.
const EXPIRE_BATCH: usize = 1_000;

/// Left-behind queue entries tolerated beyond the live ones before a compaction.
const COMPACTION_SLACK: usize = 1_024;

/// Objects and bytes held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) objects: usize,
    pub(crate) bytes: usize,
}

impl Usage {
    fn add(&mut self, bytes: usize) {
        self.objects = self.objects.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn remove(&mut self, bytes: usize) {
        self.objects = self.objects.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// One write of an event and when it expires, unless a later write replaced it.
#[derive(Debug)]
struct Due {
    at: UnixTime,
    /// The store revision the write made: the entry is live while the event still has it.
    revision: u64,
    key: ObjectKey,
}

/// An event a node created: the identity charged for it and how much.
#[derive(Debug)]
struct Owned {
    owner: Arc<str>,
    bytes: usize,
}

/// The expiry and share ledger of stored events.
#[derive(Debug, Default)]
pub(crate) struct EventTtl {
    /// Writes in expiry order (non-decreasing `at`).
    queue: VecDeque<Due>,
    /// Events stored.
    events: usize,
    /// The events node identities created.
    owned: BTreeMap<ObjectKey, Owned>,
    owners: BTreeMap<Arc<str>, Usage>,
    /// All node identities' events together.
    nodes: Usage,
    /// Index entries inserted, removed or looked up: what a write or an expiry costs, counted so
    /// a test can hold it constant as the number of events grows.
    pub(crate) work: u64,
}

impl EventTtl {
    /// When the next event expires (possibly earlier: the first queued write may have been
    /// replaced since, and expiry then skips it).
    pub(crate) fn due(&self) -> Option<UnixTime> {
        self.queue.front().map(|d| d.at)
    }

    /// Events tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.events
    }

    /// Queue entries, left-behind ones included.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The ledger without its work counters, to compare two clusters.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> alloc::string::String {
        alloc::format!(
            "{:?} {} {:?} {:?} {:?}",
            self.queue,
            self.events,
            self.owned,
            self.owners,
            self.nodes
        )
    }

    /// What node identity `node`'s events hold.
    pub(crate) fn usage_of(&self, node: &str) -> Usage {
        self.owners.get(node).copied().unwrap_or_default()
    }

    /// Refuses a write of `bytes` to event `key` (`exists`: an update, not a creation) by
    /// `writer` (a node identity, if one acts) that would exceed the event budget or the
    /// writer's share; changes nothing.
    pub(crate) fn admit(
        &mut self,
        config: &Config,
        key: &ObjectKey,
        exists: bool,
        bytes: usize,
        writer: Option<&str>,
    ) -> Result<(), Error> {
        self.work = self.work.saturating_add(1);
        if !exists && self.events >= config.max_events {
            return Err(Error::InsufficientStorage(alloc::format!(
                "the store holds its configured maximum of {} events; they expire {} s after their last write",
                config.max_events,
                config.event_ttl_secs
            )));
        }
        let existing = if exists { self.owned.get(key) } else { None };
        let owner = match existing {
            Some(entry) => Some(&*entry.owner),
            // An event the server or the admin created is nobody's share, whoever updates it.
            None if exists => None,
            None => writer,
        };
        let Some(node) = owner.filter(|o| writer == Some(*o)) else {
            return Ok(());
        };
        let freed = existing.map_or(Usage::default(), |e| Usage {
            objects: 1,
            bytes: e.bytes,
        });
        let after = |usage: Usage| Usage {
            objects: usage
                .objects
                .saturating_sub(freed.objects)
                .saturating_add(1),
            bytes: usage
                .bytes
                .saturating_sub(freed.bytes)
                .saturating_add(bytes),
        };
        let share = |percent: u8| Usage {
            objects: config.max_objects / 100 * usize::from(percent),
            bytes: config.max_store_bytes / 100 * usize::from(percent),
        };
        let within = |usage: Usage, limit: Usage| {
            usage.objects <= limit.objects.max(1) && usage.bytes <= limit.bytes
        };
        let mine = after(self.usage_of(node));
        let limit = share(config.node_event_share_percent);
        if !within(mine, limit) {
            return Err(Error::TooManyRequests(alloc::format!(
                "Too many requests: the events of node {node:?} hold their share of the store ({} events, {} bytes; the share is {} events, {} bytes); they expire {} s after their last write",
                mine.objects.saturating_sub(1),
                mine.bytes.saturating_sub(bytes),
                limit.objects.max(1),
                limit.bytes,
                config.event_ttl_secs
            )));
        }
        let all = after(self.nodes);
        let limit = share(config.node_events_total_percent);
        if !within(all, limit) {
            return Err(Error::TooManyRequests(alloc::format!(
                "Too many requests: the events of all nodes hold their share of the store ({} events, {} bytes); they expire {} s after their last write",
                limit.objects.max(1),
                limit.bytes,
                config.event_ttl_secs
            )));
        }
        Ok(())
    }

    /// Records a committed write of event `key` at `now` that made store revision `revision`
    /// (`created`: the event is new): it expires `ttl_secs` from now. A clock that stepped
    /// back does not reorder the queue: the write then expires with the one before it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn written(
        &mut self,
        key: &ObjectKey,
        revision: u64,
        created: bool,
        now: UnixTime,
        ttl_secs: u64,
        bytes: usize,
        writer: Option<&str>,
    ) {
        let latest = self.queue.back().map_or(UnixTime::default(), |d| d.at);
        self.queue.push_back(Due {
            at: now.plus_secs(ttl_secs).max(latest),
            revision,
            key: key.clone(),
        });
        self.work = self.work.saturating_add(1);
        if created {
            self.events = self.events.saturating_add(1);
            let Some(node) = writer else {
                return;
            };
            let owner = match self.owners.get_key_value(node) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(node),
            };
            self.owners.entry(owner.clone()).or_default().add(bytes);
            self.nodes.add(bytes);
            self.owned.insert(key.clone(), Owned { owner, bytes });
            self.work = self.work.saturating_add(1);
        } else if let Some(entry) = self.owned.get_mut(key) {
            // Charged to its creator, whoever writes it, by its new size.
            let (owner, before) = (entry.owner.clone(), entry.bytes);
            entry.bytes = bytes;
            self.release(&owner, before);
            self.owners.entry(owner).or_default().add(bytes);
            self.nodes.add(bytes);
            self.work = self.work.saturating_add(1);
        }
    }

    /// Records the removal of event `key` (deleted, expired, or its namespace removed).
    pub(crate) fn removed(&mut self, key: &ObjectKey) {
        self.work = self.work.saturating_add(1);
        self.events = self.events.saturating_sub(1);
        if let Some(entry) = self.owned.remove(key) {
            self.release(&entry.owner, entry.bytes);
        }
        if self.events == 0 {
            // Every queued write is left behind.
            self.queue.clear();
        }
    }

    fn release(&mut self, node: &str, bytes: usize) {
        self.nodes.remove(bytes);
        if let Some(usage) = self.owners.get_mut(node) {
            usage.remove(bytes);
            if usage.objects == 0 {
                self.owners.remove(node);
            }
        }
    }

    /// The next event due at or before `now` whose last write is still the queued one
    /// (`current(key, revision)`), taken off the queue; left-behind entries on the way go.
    fn next_due(
        &mut self,
        now: UnixTime,
        current: impl Fn(&ObjectKey, u64) -> bool,
    ) -> Option<ObjectKey> {
        while let Some(first) = self.queue.front() {
            if first.at > now {
                return None;
            }
            self.work = self.work.saturating_add(1);
            let due = self.queue.pop_front()?;
            if current(&due.key, due.revision) {
                return Some(due.key);
            }
        }
        None
    }

    /// More left-behind entries than live ones (past a slack): time to drop them.
    fn wants_compaction(&self) -> bool {
        self.queue.len().saturating_sub(self.events) > self.events.saturating_add(COMPACTION_SLACK)
    }

    /// Drops the queued writes that later writes replaced (`current` says which are not).
    fn compact(&mut self, current: impl Fn(&ObjectKey, u64) -> bool) {
        self.queue.retain(|d| current(&d.key, d.revision));
    }
}

/// Whether `store` still holds event `key` at the version `revision` wrote (a queued write no
/// later write replaced).
fn written_last(store: &crate::store::Store) -> impl Fn(&ObjectKey, u64) -> bool + '_ {
    |key, revision| store.get(key).is_some_and(|o| o.revision == revision)
}

impl Cluster {
    /// Records a committed write of an event in the ledger, and compacts its queue when due
    /// (amortised: a compaction walks a queue at least half of which it drops).
    pub(crate) fn event_written(
        &mut self,
        key: &ObjectKey,
        revision: u64,
        created: bool,
        now: UnixTime,
        bytes: usize,
        writer: Option<&str>,
    ) {
        let ttl = self.config.event_ttl_secs;
        self.event_ttl
            .written(key, revision, created, now, ttl, bytes, writer);
        if self.event_ttl.wants_compaction() {
            self.event_ttl.compact(written_last(&self.store));
        }
    }

    /// Deletes the events whose time has come, at most [`EXPIRE_BATCH`] per call (the rest
    /// stays due, so `poll_timeout` asks for the next call at once).
    pub(crate) fn expire_events(&mut self, now: UnixTime) {
        for _ in 0..EXPIRE_BATCH {
            let Some(key) = self.event_ttl.next_due(now, written_last(&self.store)) else {
                return;
            };
            let event = self.store.get(&key).and_then(|object| {
                serde_json::from_slice::<serde_json::Value>(&object.json.bytes()).ok()
            });
            if let Some(mut event) = event {
                // Refused (it cannot be): the event stays, counted, and expiry moves on.
                let _ = self.write_delete(&WriteContext::server(now), &key, &mut event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceId;

    fn key(i: usize) -> ObjectKey {
        ObjectKey::new(ResourceId::Events, "default", &alloc::format!("e{i}"))
    }

    /// The ledger beside the revisions a store would hold.
    #[derive(Default)]
    struct Ledger {
        ttl: EventTtl,
        revisions: BTreeMap<ObjectKey, u64>,
        revision: u64,
    }

    impl Ledger {
        fn admit(
            &mut self,
            config: &Config,
            k: &ObjectKey,
            bytes: usize,
            writer: Option<&str>,
        ) -> Result<(), Error> {
            let exists = self.revisions.contains_key(k);
            self.ttl.admit(config, k, exists, bytes, writer)
        }

        fn write(
            &mut self,
            k: &ObjectKey,
            at: UnixTime,
            ttl: u64,
            bytes: usize,
            writer: Option<&str>,
        ) {
            self.revision += 1;
            let created = self.revisions.insert(k.clone(), self.revision).is_none();
            self.ttl
                .written(k, self.revision, created, at, ttl, bytes, writer);
            if self.ttl.wants_compaction() {
                let revisions = &self.revisions;
                self.ttl.compact(|k, r| revisions.get(k) == Some(&r));
            }
        }

        fn remove(&mut self, k: &ObjectKey) {
            self.revisions.remove(k);
            self.ttl.removed(k);
        }

        fn next_due(&mut self, now: UnixTime) -> Option<ObjectKey> {
            let revisions = &self.revisions;
            self.ttl.next_due(now, |k, r| revisions.get(k) == Some(&r))
        }
    }

    /// The ledger work one more write, an update and one expiry cost, with `n` events stored.
    fn work_per_event(n: usize) -> u64 {
        let config = Config {
            max_events: 1_000_000,
            ..Config::default()
        };
        let mut l = Ledger::default();
        let t0 = UnixTime::from_secs(1_000);
        for i in 0..n {
            l.admit(&config, &key(i), 100, None).unwrap();
            l.write(&key(i), t0, 3600, 100, None);
        }
        let before = l.ttl.work;
        let k = key(n);
        l.admit(&config, &k, 100, Some("node-a")).unwrap();
        l.write(&k, t0.plus_secs(1), 3600, 100, Some("node-a"));
        l.write(&k, t0.plus_secs(2), 3600, 120, Some("node-a"));
        let first = l.next_due(t0.plus_secs(3600));
        assert_eq!(first, Some(key(0)));
        l.remove(&key(0));
        l.remove(&k);
        l.ttl.work - before
    }

    #[test]
    fn the_cost_of_a_write_does_not_grow_with_the_number_of_events() {
        assert_eq!(work_per_event(100), work_per_event(100_000));
    }

    #[test]
    fn expiry_follows_the_last_write_not_the_timestamps() {
        let mut l = Ledger::default();
        let t0 = UnixTime::from_secs(1_000);
        l.write(&key(1), t0, 60, 10, None);
        l.write(&key(2), t0.plus_secs(10), 60, 10, None);
        // An update pushes key 1 behind key 2; its first write is left behind, and may
        // still be what `due` names, so the timer wakes early, never late.
        l.write(&key(1), t0.plus_secs(20), 60, 10, None);
        assert_eq!(l.ttl.due(), Some(t0.plus_secs(60)));
        assert_eq!(
            l.next_due(t0.plus_secs(69)),
            None,
            "the left-behind write expires nothing"
        );
        assert_eq!(l.ttl.due(), Some(t0.plus_secs(70)));
        assert_eq!(l.next_due(t0.plus_secs(70)), Some(key(2)));
        l.remove(&key(2));
        assert_eq!(l.next_due(t0.plus_secs(79)), None);
        assert_eq!(l.next_due(t0.plus_secs(80)), Some(key(1)));
        l.remove(&key(1));
        assert_eq!((l.ttl.len(), l.ttl.due(), l.ttl.queued()), (0, None, 0));
    }

    #[test]
    fn a_clock_that_steps_back_does_not_reorder_expiry() {
        let mut l = Ledger::default();
        let t0 = UnixTime::from_secs(1_000);
        l.write(&key(1), t0.plus_secs(30), 60, 10, None);
        l.write(&key(2), t0, 60, 10, None);
        assert_eq!(l.next_due(t0.plus_secs(89)), None);
        assert_eq!(l.next_due(t0.plus_secs(90)), Some(key(1)));
        assert_eq!(l.next_due(t0.plus_secs(90)), Some(key(2)));
    }

    #[test]
    fn rewrites_of_one_event_keep_the_queue_within_its_bound() {
        let mut l = Ledger::default();
        let t0 = UnixTime::from_secs(1_000);
        for i in 0..10 {
            l.write(&key(i), t0, 3600, 10, None);
        }
        let mut most = 0;
        for n in 0..20_000u64 {
            l.write(&key(3), t0.plus_secs(n / 100), 3600, 10, None);
            most = most.max(l.ttl.queued());
        }
        assert_eq!(l.ttl.len(), 10);
        assert!(
            most <= 2 * 10 + COMPACTION_SLACK + 1,
            "the queue held {most} entries for 10 events"
        );
        // Only the last write of each event expires it.
        let mut expired = alloc::vec::Vec::new();
        while let Some(k) = l.next_due(t0.plus_secs(100_000)) {
            expired.push(k.clone());
            l.remove(&k);
        }
        assert_eq!(expired.len(), 10, "{expired:?}");
        assert_eq!(expired.last(), Some(&key(3)));
    }

    #[test]
    fn a_node_s_events_stay_within_its_share() {
        let config = Config {
            max_objects: 1000,
            max_store_bytes: 100_000,
            node_event_share_percent: 1,
            node_events_total_percent: 2,
            ..Config::default()
        };
        let mut l = Ledger::default();
        let t = UnixTime::from_secs(1);
        // 1 % of 100,000 bytes: 1,000 bytes, and 10 objects.
        for i in 0..3 {
            l.admit(&config, &key(i), 300, Some("a")).unwrap();
            l.write(&key(i), t, 60, 300, Some("a"));
        }
        let refused = l.admit(&config, &key(3), 300, Some("a"));
        assert!(
            matches!(refused, Err(Error::TooManyRequests(_))),
            "{refused:?}"
        );
        // Growing an event it owns counts the difference only.
        l.admit(&config, &key(2), 400, Some("a")).unwrap();
        assert!(l.admit(&config, &key(2), 500, Some("a")).is_err());
        // The admin and other nodes are not charged to a's share.
        l.admit(&config, &key(3), 300, None).unwrap();
        l.admit(&config, &key(3), 300, Some("b")).unwrap();
        l.write(&key(3), t, 60, 300, Some("b"));
        l.write(&key(4), t, 60, 600, Some("b"));
        // All nodes together: 2 % = 2,000 bytes; a holds 900, b 900.
        let all = l.admit(&config, &key(5), 300, Some("c"));
        assert!(
            matches!(all, Err(Error::TooManyRequests(ref m)) if m.contains("all nodes")),
            "{all:?}"
        );
        // An update is charged to the creator by its new size, whoever writes it.
        l.write(&key(4), t, 60, 500, None);
        assert_eq!(
            l.ttl.usage_of("b"),
            Usage {
                objects: 2,
                bytes: 800
            }
        );
        // An event the admin created stays nobody's share when a node updates it.
        l.write(&key(6), t, 60, 300, None);
        l.admit(&config, &key(6), 300, Some("a")).unwrap();
        l.write(&key(6), t, 60, 300, Some("a"));
        assert_eq!(l.ttl.usage_of("a").objects, 3);
        // Expiry gives the share back.
        l.remove(&key(0));
        assert_eq!(
            l.ttl.usage_of("a"),
            Usage {
                objects: 2,
                bytes: 600
            }
        );
        l.admit(&config, &key(7), 300, Some("a")).unwrap();
        for i in 1..3 {
            l.remove(&key(i));
        }
        assert_eq!(l.ttl.usage_of("a"), Usage::default());
        assert!(!l.ttl.owners.contains_key("a"));
    }
}
