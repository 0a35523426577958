//! Events expire `event_ttl_secs` after their last write, as kube-apiserver's etcd lease per
//! write does (`--event-ttl`): what an event's timestamps say plays no part, so no event can
//! hold back the expiry of others. The same ledger charges each node identity's events against
//! its share of the store (kube's EventRateLimit admission is the model for the rate; the share
//! is ours), so one worker's events cannot starve other writes.
//!
//! Every write and every expiry is O(log n) in the number of events: an index by expiry time
//! and one by key, both bounded by `max_events`.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use crate::cluster::Cluster;
use crate::cluster::WriteContext;
use crate::store::ObjectKey;
use crate::{Config, Error, UnixTime};

/// Most events deleted by one `handle_timeout` call; the rest follow on the next calls.
const EXPIRE_BATCH: usize = 1_000;

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

#[derive(Debug)]
struct Entry {
    /// Key in `by_due`.
    due: (UnixTime, u64),
    /// The node identity whose share the event is charged to (its creator), if a node made it.
    owner: Option<Arc<str>>,
    /// Bytes charged, in the store's units.
    bytes: usize,
}

/// The expiry and share ledger of stored events.
#[derive(Debug, Default)]
pub(crate) struct EventTtl {
    entries: BTreeMap<ObjectKey, Entry>,
    by_due: BTreeMap<(UnixTime, u64), ObjectKey>,
    owners: BTreeMap<Arc<str>, Usage>,
    /// All node identities' events together.
    nodes: Usage,
    seq: u64,
    /// Index entries inserted, removed or looked up: what a write or an expiry costs, counted so
    /// a test can hold it constant as the number of events grows.
    pub(crate) work: u64,
}

impl EventTtl {
    /// When the next event expires.
    pub(crate) fn due(&self) -> Option<UnixTime> {
        self.by_due.first_key_value().map(|((t, _), _)| *t)
    }

    /// Events tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ledger without its work counters, to compare two clusters.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> alloc::string::String {
        alloc::format!("{:?} {:?} {:?}", self.entries, self.owners, self.nodes)
    }

    /// What node identity `node`'s events hold.
    pub(crate) fn usage_of(&self, node: &str) -> Usage {
        self.owners.get(node).copied().unwrap_or_default()
    }

    /// Refuses a write of `bytes` to event `key` by `writer` (a node identity, if one acts) that
    /// would exceed the event budget or the writer's share; changes nothing.
    pub(crate) fn admit(
        &mut self,
        config: &Config,
        key: &ObjectKey,
        bytes: usize,
        writer: Option<&str>,
    ) -> Result<(), Error> {
        self.work = self.work.saturating_add(1);
        let existing = self.entries.get(key);
        if existing.is_none() && self.entries.len() >= config.max_events {
            return Err(Error::InsufficientStorage(alloc::format!(
                "the store holds its configured maximum of {} events; they expire {} s after their last write",
                config.max_events,
                config.event_ttl_secs
            )));
        }
        let owner = match existing {
            Some(entry) => entry.owner.as_deref(),
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

    /// Records a committed write of event `key` at `now`: it expires `ttl_secs` from now.
    pub(crate) fn written(
        &mut self,
        key: &ObjectKey,
        now: UnixTime,
        ttl_secs: u64,
        bytes: usize,
        writer: Option<&str>,
    ) {
        self.seq = self.seq.wrapping_add(1);
        let due = (now.plus_secs(ttl_secs), self.seq);
        let previous = self.entries.remove(key);
        let owner = match &previous {
            Some(entry) => entry.owner.clone(),
            None => writer.map(|w| match self.owners.get_key_value(w) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(w),
            }),
        };
        if let Some(entry) = &previous {
            self.by_due.remove(&entry.due);
            self.release(entry.owner.as_deref(), entry.bytes);
        }
        if let Some(node) = &owner {
            self.owners.entry(node.clone()).or_default().add(bytes);
            self.nodes.add(bytes);
        }
        self.by_due.insert(due, key.clone());
        self.entries
            .insert(key.clone(), Entry { due, owner, bytes });
        self.work = self.work.saturating_add(2);
    }

    /// Records the removal of event `key` (deleted, expired, or its namespace removed).
    pub(crate) fn removed(&mut self, key: &ObjectKey) {
        self.work = self.work.saturating_add(1);
        if let Some(entry) = self.entries.remove(key) {
            self.by_due.remove(&entry.due);
            self.release(entry.owner.as_deref(), entry.bytes);
        }
    }

    fn release(&mut self, owner: Option<&str>, bytes: usize) {
        let Some(node) = owner else {
            return;
        };
        self.nodes.remove(bytes);
        if let Some(usage) = self.owners.get_mut(node) {
            usage.remove(bytes);
            if usage.objects == 0 {
                self.owners.remove(node);
            }
        }
    }

    /// The next event due at or before `now`.
    fn next_due(&mut self, now: UnixTime) -> Option<ObjectKey> {
        let ((due, _), key) = self.by_due.first_key_value()?;
        (*due <= now).then(|| key.clone())
    }
}

impl Cluster {
    /// Deletes the events whose time has come, at most [`EXPIRE_BATCH`] per call (the rest
    /// stays due, so `poll_timeout` asks for the next call at once).
    pub(crate) fn expire_events(&mut self, now: UnixTime) {
        for _ in 0..EXPIRE_BATCH {
            let Some(key) = self.event_ttl.next_due(now) else {
                return;
            };
            self.event_ttl.work = self.event_ttl.work.saturating_add(1);
            let deleted = match self.store.get(&key) {
                Some(object) => serde_json::from_slice::<serde_json::Value>(&object.json.bytes())
                    .ok()
                    .and_then(|mut event| {
                        self.write_delete(&WriteContext::server(now), &key, &mut event)
                            .ok()
                    })
                    .is_some(),
                None => false,
            };
            if !deleted {
                // Gone already (or undecodable): drop the entry so expiry moves on.
                self.event_ttl.removed(&key);
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

    /// The index work one more write and one expiry cost, with `n` events already stored.
    fn work_per_event(n: usize) -> u64 {
        let config = Config {
            max_events: 1_000_000,
            ..Config::default()
        };
        let mut ttl = EventTtl::default();
        let t0 = UnixTime::from_secs(1_000);
        for i in 0..n {
            ttl.admit(&config, &key(i), 100, None).unwrap();
            ttl.written(&key(i), t0, 3600, 100, None);
        }
        let before = ttl.work;
        let k = key(n);
        ttl.admit(&config, &k, 100, Some("node-a")).unwrap();
        ttl.written(&k, t0.plus_secs(1), 3600, 100, Some("node-a"));
        ttl.written(&k, t0.plus_secs(2), 3600, 120, Some("node-a"));
        let first = ttl.next_due(t0.plus_secs(3600));
        assert_eq!(first, Some(key(0)));
        ttl.removed(&key(0));
        ttl.removed(&k);
        ttl.work - before
    }

    #[test]
    fn the_cost_of_a_write_does_not_grow_with_the_number_of_events() {
        assert_eq!(work_per_event(100), work_per_event(100_000));
    }

    #[test]
    fn expiry_follows_the_last_write_not_the_timestamps() {
        let mut ttl = EventTtl::default();
        let t0 = UnixTime::from_secs(1_000);
        ttl.written(&key(1), t0, 60, 10, None);
        ttl.written(&key(2), t0.plus_secs(10), 60, 10, None);
        // An update pushes key 1 behind key 2.
        ttl.written(&key(1), t0.plus_secs(20), 60, 10, None);
        assert_eq!(ttl.due(), Some(t0.plus_secs(70)));
        assert_eq!(ttl.next_due(t0.plus_secs(69)), None);
        assert_eq!(ttl.next_due(t0.plus_secs(70)), Some(key(2)));
        ttl.removed(&key(2));
        assert_eq!(ttl.next_due(t0.plus_secs(80)), Some(key(1)));
        ttl.removed(&key(1));
        assert_eq!((ttl.len(), ttl.due()), (0, None));
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
        let mut ttl = EventTtl::default();
        let t = UnixTime::from_secs(1);
        // 1 % of 100,000 bytes: 1,000 bytes, and 10 objects.
        for i in 0..3 {
            ttl.admit(&config, &key(i), 300, Some("a")).unwrap();
            ttl.written(&key(i), t, 60, 300, Some("a"));
        }
        let refused = ttl.admit(&config, &key(3), 300, Some("a"));
        assert!(
            matches!(refused, Err(Error::TooManyRequests(_))),
            "{refused:?}"
        );
        // Growing an event it owns counts the difference only.
        ttl.admit(&config, &key(2), 400, Some("a")).unwrap();
        assert!(ttl.admit(&config, &key(2), 500, Some("a")).is_err());
        // The admin and other nodes are not charged to a's share.
        ttl.admit(&config, &key(3), 300, None).unwrap();
        ttl.admit(&config, &key(3), 300, Some("b")).unwrap();
        ttl.written(&key(3), t, 60, 300, Some("b"));
        ttl.written(&key(4), t, 60, 600, Some("b"));
        // All nodes together: 2 % = 2,000 bytes; a holds 900, b 900.
        let all = ttl.admit(&config, &key(5), 300, Some("c"));
        assert!(
            matches!(all, Err(Error::TooManyRequests(ref m)) if m.contains("all nodes")),
            "{all:?}"
        );
        // Expiry gives the share back.
        ttl.removed(&key(0));
        assert_eq!(
            ttl.usage_of("a"),
            Usage {
                objects: 2,
                bytes: 600
            }
        );
        ttl.admit(&config, &key(6), 300, Some("a")).unwrap();
        for i in 1..3 {
            ttl.removed(&key(i));
        }
        assert_eq!(ttl.usage_of("a"), Usage::default());
        assert!(!ttl.owners.contains_key("a"));
    }
}
