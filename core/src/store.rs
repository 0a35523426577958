//! The object store: compact JSON objects keyed by (resource, namespace, name), one global
//! revision that is every object's `resourceVersion`, and byte and object budgets.
//!
//! Every write bumps the revision by exactly one and appends exactly one event to the watch ring,
//! so the ring can be indexed by revision. A write that would exceed a budget changes nothing.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc as StdArc;
use alloc::vec::Vec;
use core::ops::Bound;

use crate::packing::{PackCounts, PackedJson, Packer};
use crate::resource::ResourceId;
use crate::selector;
use crate::sync::Arc;
use crate::watch::{EventType, WatchEvent, WatchRing};
use crate::{Config, Error};

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Resource type.
    pub resource: ResourceId,
    /// Namespace; empty for cluster-scoped objects. Shared, so that a key clones without
    /// allocating (a snapshot clones every key under the store lock).
    pub namespace: StdArc<str>,
    /// Object name.
    pub name: StdArc<str>,
}

impl ObjectKey {
    /// A key from borrowed parts.
    pub fn new(resource: ResourceId, namespace: &str, name: &str) -> Self {
        Self {
            resource,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// The labels and selectable fields of one object version, computed once at write time so that
/// LIST and every watcher match selectors without parsing JSON. Packed in one allocation (an
/// event's eleven fields as owned strings cost about 860 bytes, packed about 200): the number of
/// labels, each label's key and value, then each field as its place in
/// [`selector::SELECTABLE_FIELDS`] and its value; lengths are LEB128. Empty field values are
/// left out (they read as `""`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObjectIndex {
    packed: alloc::boxed::Box<[u8]>,
}

impl core::fmt::Debug for ObjectIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ObjectIndex")
            .field("labels", &self.labels().collect::<Vec<_>>())
            .field("fields", &self.fields().collect::<Vec<_>>())
            .finish()
    }
}

impl ObjectIndex {
    /// An index of `labels` and `fields` (a field that is not selectable, or empty, is left
    /// out).
    pub fn new<'a>(
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let labels: Vec<(&str, &str)> = labels.into_iter().collect();
        let mut packed = Vec::new();
        put_len(&mut packed, labels.len());
        for (key, value) in labels {
            put_text(&mut packed, key);
            put_text(&mut packed, value);
        }
        for (name, value) in fields {
            let Some(id) = selector::SELECTABLE_FIELDS.iter().position(|f| *f == name) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            packed.push(u8::try_from(id).unwrap_or(u8::MAX));
            put_text(&mut packed, value);
        }
        Self {
            packed: packed.into_boxed_slice(),
        }
    }

    /// `metadata.labels`, in the order they were given.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut r = IndexReader {
            bytes: &self.packed,
        };
        let count = r.len().unwrap_or(0);
        (0..count).map_while(move |_| Some((r.text()?, r.text()?)))
    }

    /// The value of label `key`, if the label is there.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The labels as owned pairs.
    pub fn label_pairs(&self) -> Vec<(String, String)> {
        self.labels()
            .map(|(k, v)| (String::from(k), String::from(v)))
            .collect()
    }

    /// The non-empty selectable fields (`spec.nodeName`, `status.phase`, ...).
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let mut r = IndexReader {
            bytes: &self.packed,
        };
        let count = r.len().unwrap_or(0);
        for _ in 0..count {
            if r.text().and_then(|_| r.text()).is_none() {
                break;
            }
        }
        core::iter::from_fn(move || {
            let (&id, rest) = r.bytes.split_first()?;
            r.bytes = rest;
            let value = r.text()?;
            Some((*selector::SELECTABLE_FIELDS.get(usize::from(id))?, value))
        })
    }

    /// The selectable field `name`'s value; `""` when empty or absent.
    pub fn field(&self, name: &str) -> &str {
        self.fields()
            .find(|(f, _)| *f == name)
            .map_or("", |(_, v)| v)
    }

    /// Whether the selectable field `name` has `value`.
    pub fn field_is(&self, name: &str, value: &str) -> bool {
        self.field(name) == value
    }

    fn heap_bytes(&self) -> usize {
        self.packed.len() + 48
    }
}

impl selector::Labels for ObjectIndex {
    fn label(&self, key: &str) -> Option<&str> {
        ObjectIndex::label(self, key)
    }
}

impl selector::Fields for ObjectIndex {
    fn field(&self, name: &str) -> &str {
        ObjectIndex::field(self, name)
    }
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Reads what [`ObjectIndex::new`] packed; `None` past the end (never, for its own bytes).
struct IndexReader<'a> {
    bytes: &'a [u8],
}

impl<'a> IndexReader<'a> {
    fn len(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        let bytes = self.bytes.get(..n)?;
        self.bytes = self.bytes.get(n..)?;
        core::str::from_utf8(bytes).ok()
    }
}

/// One stored object version. Cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// Compact JSON of the whole object, `metadata.resourceVersion` included, as the store
    /// keeps it (packed against an exemplar, or whole: see `packing.rs`).
    pub json: PackedJson,
    /// Revision of the write that produced this version.
    pub revision: u64,
    /// Labels and selectable fields.
    pub index: StdArc<ObjectIndex>,
}

impl StoredObject {
    /// A version holding `json` whole (what a record or snapshot decodes to before the store
    /// packs it).
    pub fn whole(json: Vec<u8>, revision: u64) -> Self {
        Self {
            json: PackedJson::whole(json),
            revision,
            index: StdArc::default(),
        }
    }
}

/// Fixed bookkeeping cost charged per object on top of its bytes (tree node, key, handles).
const ENTRY_OVERHEAD: usize = 160;

/// Bytes one stored version costs against the byte budget.
pub(crate) fn entry_bytes(key: &ObjectKey, json_len: usize, index: &ObjectIndex) -> usize {
    json_len
        .saturating_add(key.namespace.len())
        .saturating_add(key.name.len())
        .saturating_add(index.heap_bytes())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The store. Mutated by one writer at a time (the runtime serializes calls).
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<ObjectKey, StoredObject>,
    revision: u64,
    used_bytes: usize,
    max_objects: usize,
    max_bytes: usize,
    per_resource: [usize; crate::resource::RESOURCES.len()],
    /// Objects per custom resource (store id), entries dropped at zero.
    per_custom: BTreeMap<u32, usize>,
    ring: Arc<WatchRing>,
    /// Packs every version stored against an exemplar of its resource.
    packer: Packer,
    /// Objects looked up or visited by reads since start: a count of work (not time), so
    /// tests can show that a cost does not grow with the size of the cluster.
    reads: core::cell::Cell<u64>,
    /// The snapshot capture under way, if any.
    capture: Option<Capture>,
    /// Captures begun since start: each one's id.
    captures: u64,
}

/// A capture of the store at one revision, taken a slice of keys at a time while writes go
/// on (a copy-on-write snapshot that copies handles, not bytes): every write to a key not
/// captured yet keeps the key's version at the capture's revision first, once.
#[derive(Debug)]
struct Capture {
    id: u64,
    /// Keys up to and including this one are captured.
    cursor: Option<ObjectKey>,
    /// The versions at the capture's revision of keys written since and not captured yet
    /// (`None`: the key did not exist then).
    before: BTreeMap<ObjectKey, Option<StoredObject>>,
}

/// A capture the store no longer keeps: another began, or it outgrew its budget.
fn capture_abandoned() -> Error {
    Error::Unavailable("the snapshot capture was abandoned; take a new one".into())
}

impl Store {
    /// An empty store at revision 0 with the budgets of `config`.
    pub fn new(config: &Config) -> Self {
        Self::starting_at(config, 0)
    }

    /// An empty store at `revision`: its first write is `revision + 1`, and the watch ring
    /// answers revisions before `revision` with 410 Expired.
    pub fn starting_at(config: &Config, revision: u64) -> Self {
        Self {
            objects: BTreeMap::new(),
            revision,
            used_bytes: 0,
            max_objects: config.max_objects,
            max_bytes: config.max_store_bytes,
            per_resource: [0; crate::resource::RESOURCES.len()],
            per_custom: BTreeMap::new(),
            ring: Arc::new(
                WatchRing::starting_at(
                    config.watch_ring_capacity,
                    config.watch_ring_bytes,
                    revision,
                )
                .with_max_gaps(config.watch_ring_gaps),
            ),
            packer: Packer::new(config.exemplars_per_resource),
            reads: core::cell::Cell::new(0),
            capture: None,
            captures: 0,
        }
    }

    /// Begins a capture of the store at its current revision (abandoning any under way):
    /// [`Store::capture_step`] then takes it a slice at a time while writes go on. Returns the
    /// capture's id.
    pub(crate) fn begin_capture(&mut self) -> u64 {
        self.captures = self.captures.wrapping_add(1);
        self.capture = Some(Capture {
            id: self.captures,
            cursor: None,
            before: BTreeMap::new(),
        });
        self.captures
    }

    /// Appends the next (up to) `max` keys of capture `id` to `out`, in key order, each at its
    /// version at the capture's revision (keys absent then are skipped); `Ok(true)` once every
    /// key is captured (the capture then ends).
    pub(crate) fn capture_step(
        &mut self,
        id: u64,
        max: usize,
        out: &mut Vec<(ObjectKey, StoredObject)>,
    ) -> Result<bool, Error> {
        let Self {
            objects, capture, ..
        } = self;
        let Some(state) = capture.as_mut().filter(|c| c.id == id) else {
            return Err(capture_abandoned());
        };
        let start = state
            .cursor
            .clone()
            .map_or(Bound::Unbounded, Bound::Excluded);
        let mut live = objects.range((start.clone(), Bound::Unbounded)).peekable();
        let mut kept = state.before.range((start, Bound::Unbounded)).peekable();
        let mut last = None;
        for _ in 0..max {
            let from_kept = match (live.peek(), kept.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((l, _)), Some((k, _))) => k <= l,
            };
            let (key, version) = if from_kept {
                let Some((key, version)) = kept.next() else {
                    break;
                };
                if live.peek().is_some_and(|(l, _)| *l == key) {
                    live.next();
                }
                (key, version.as_ref())
            } else {
                let Some((key, version)) = live.next() else {
                    break;
                };
                (key, Some(version))
            };
            if let Some(version) = version {
                out.push((key.clone(), version.clone()));
            }
            last = Some(key.clone());
        }
        let done = live.peek().is_none() && kept.peek().is_none();
        if done {
            *capture = None;
        } else if let Some(cursor) = last {
            let mut rest = state.before.split_off(&cursor);
            rest.remove(&cursor);
            state.before = rest;
            state.cursor = Some(cursor);
        }
        Ok(done)
    }

    /// Keeps `key`'s version before a write (`previous`) for the capture under way, unless
    /// the key is captured already or kept. A capture that would keep more versions than
    /// the store may hold objects is abandoned (its next step fails; the runtime begins a new
    /// one later), so a capture nobody finishes cannot grow without bound.
    fn keep_for_capture(&mut self, key: &ObjectKey, previous: Option<&StoredObject>) {
        let Some(state) = self.capture.as_mut() else {
            return;
        };
        if state.cursor.as_ref().is_some_and(|cursor| key <= cursor)
            || state.before.contains_key(key)
        {
            return;
        }
        if state.before.len() >= self.max_objects {
            self.capture = None;
            return;
        }
        state.before.insert(key.clone(), previous.cloned());
    }

    /// Continues at `revision` when it is ahead: a recovered run skips the revisions an
    /// earlier run may have handed out without making them durable. Readers positioned in
    /// between get 410 Expired from the ring and re-list.
    pub(crate) fn skip_to(&mut self, revision: u64) {
        if revision > self.revision {
            self.ring.skip(self.revision, revision);
            self.revision = revision;
        }
    }

    /// Moves the revision by one with no object changed (a compaction mark): watchers lose
    /// nothing, and the next write gets the revision after it.
    pub(crate) fn advance(&mut self) -> u64 {
        self.revision = self.revision.saturating_add(1);
        self.ring.advance(self.revision);
        self.revision
    }

    /// Every stored object, in key order: what a snapshot holds.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &StoredObject)> {
        self.objects.iter()
    }

    /// Puts back an object a snapshot held, at its own revision, within the budgets: no watch
    /// event, and the store's revision stays the snapshot's. Returns the version as stored.
    pub(crate) fn restore(
        &mut self,
        key: ObjectKey,
        mut object: StoredObject,
    ) -> Result<StoredObject, Error> {
        if !object.json.is_packed() {
            object.json = self
                .packer
                .pack(key.resource, object.json.bytes().into_owned());
        }
        self.insert_new(key, object.clone())?;
        Ok(object)
    }

    /// How many versions were stored packed and whole since start.
    pub fn pack_counts(&self) -> PackCounts {
        self.packer.counts()
    }

    /// The revision of the latest write.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The revision the next write will get; callers write it into the object's JSON first.
    pub fn next_revision(&self) -> u64 {
        self.revision.saturating_add(1)
    }

    /// The shared watch ring every write appends to.
    pub fn ring(&self) -> &Arc<WatchRing> {
        &self.ring
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Bytes charged against the byte budget.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Objects stored of one resource type.
    pub fn count(&self, resource: ResourceId) -> usize {
        match resource {
            ResourceId::Custom(id) => self.per_custom.get(&id).copied().unwrap_or(0),
            builtin => builtin
                .index()
                .and_then(|i| self.per_resource.get(i))
                .copied()
                .unwrap_or(0),
        }
    }

    fn count_change(&mut self, resource: ResourceId, added: bool) {
        let slot = match resource {
            ResourceId::Custom(id) => Some(self.per_custom.entry(id).or_insert(0)),
            builtin => builtin.index().and_then(|i| self.per_resource.get_mut(i)),
        };
        if let Some(n) = slot {
            *n = if added {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
        }
        if let ResourceId::Custom(id) = resource
            && self.per_custom.get(&id) == Some(&0)
        {
            self.per_custom.remove(&id);
        }
    }

    /// The current version of `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&StoredObject> {
        self.count_reads(1);
        self.objects.get(key)
    }

    /// Objects looked up or visited by reads since start (a work count for tests and metrics).
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    fn count_reads(&self, n: u64) {
        self.reads.set(self.reads.get().saturating_add(n));
    }

    /// The pods bound to `node` (a scan of the pods' indexes, no JSON parsed).
    pub fn pods_on<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a StoredObject)> + 'a {
        self.range(ResourceId::Pods, None, None)
            .filter(move |(_, o)| o.index.field_is("spec.nodeName", node))
    }

    /// Objects of `resource` (in `namespace` if given) in key order, strictly after `after`
    /// (a `(namespace, name)` position) if given.
    pub fn range<'a>(
        &'a self,
        resource: ResourceId,
        namespace: Option<&'a str>,
        after: Option<(&str, &str)>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a StoredObject)> + 'a {
        let start = match after {
            Some((ns, name)) => Bound::Excluded(ObjectKey::new(resource, ns, name)),
            None => Bound::Included(ObjectKey::new(resource, namespace.unwrap_or(""), "")),
        };
        self.objects
            .range((start, Bound::Unbounded))
            .take_while(move |(k, _)| {
                k.resource == resource && namespace.is_none_or(|ns| &*k.namespace == ns)
            })
            .inspect(|_| self.count_reads(1))
    }

    /// Stores a new object at [`Store::next_revision`]. `json` must already carry that revision.
    /// Returns the stored version (sharing its bytes).
    pub(crate) fn create(
        &mut self,
        key: ObjectKey,
        json: Vec<u8>,
        index: ObjectIndex,
    ) -> Result<StoredObject, Error> {
        let object = StoredObject {
            json: self.packer.pack(key.resource, json),
            revision: self.next_revision(),
            index: StdArc::new(index),
        };
        self.insert_new(key.clone(), object.clone())?;
        self.commit(EventType::Added, key, object.clone(), None);
        Ok(object)
    }

    /// Stores an object under a key not yet used, within the object and byte budgets.
    fn insert_new(&mut self, key: ObjectKey, object: StoredObject) -> Result<(), Error> {
        if self.objects.contains_key(&key) {
            return Err(Error::AlreadyExists {
                resource: String::new(),
                name: String::from(&*key.name),
            });
        }
        if self.objects.len() >= self.max_objects {
            return Err(Error::InsufficientStorage(alloc::format!(
                "the store holds its configured maximum of {} objects; delete objects or raise the budget",
                self.max_objects
            )));
        }
        let cost = entry_bytes(&key, object.json.len(), &object.index);
        self.used_bytes = self.charge(cost, 0)?;
        self.count_change(key.resource, true);
        self.objects.insert(key, object);
        Ok(())
    }

    /// Replaces the current version of `key` at [`Store::next_revision`]. Returns the new
    /// version and the one it replaced (sharing their bytes).
    pub(crate) fn update(
        &mut self,
        key: &ObjectKey,
        json: Vec<u8>,
        index: ObjectIndex,
    ) -> Result<(StoredObject, StoredObject), Error> {
        let Some(old) = self.objects.get(key) else {
            return Err(Error::NotFound {
                resource: String::new(),
                name: key.name.to_string(),
            });
        };
        let old_cost = entry_bytes(key, old.json.len(), &old.index);
        let cost = entry_bytes(key, json.len(), &index);
        let used = self.charge(cost, old_cost)?;
        let revision = self.next_revision();
        let object = StoredObject {
            json: self.packer.pack(key.resource, json),
            revision,
            index: StdArc::new(index),
        };
        self.used_bytes = used;
        let Some(previous) = self.objects.insert(key.clone(), object.clone()) else {
            return Err(Error::Internal("the replaced version vanished".into()));
        };
        self.commit(
            EventType::Modified,
            key.clone(),
            object.clone(),
            Some(previous.clone()),
        );
        Ok((object, previous))
    }

    /// Removes `key` at [`Store::next_revision`]; `final_json` is the object as the DELETED event
    /// shows it (carrying the deletion's revision). Returns that last state.
    pub(crate) fn delete(
        &mut self,
        key: &ObjectKey,
        final_json: Vec<u8>,
    ) -> Result<StoredObject, Error> {
        let Some(old) = self.objects.remove(key) else {
            return Err(Error::NotFound {
                resource: String::new(),
                name: key.name.to_string(),
            });
        };
        self.used_bytes =
            self.used_bytes
                .saturating_sub(entry_bytes(key, old.json.len(), &old.index));
        self.count_change(key.resource, false);
        let revision = self.next_revision();
        let object = StoredObject {
            json: self.packer.pack(key.resource, final_json),
            revision,
            index: old.index.clone(),
        };
        self.commit(EventType::Deleted, key.clone(), object.clone(), Some(old));
        Ok(object)
    }

    /// The used-bytes total after replacing `freed` bytes by `cost`, or 507 when over budget.
    fn charge(&self, cost: usize, freed: usize) -> Result<usize, Error> {
        let used = self.used_bytes.saturating_sub(freed).checked_add(cost);
        match used {
            Some(used) if used <= self.max_bytes => Ok(used),
            _ => Err(Error::InsufficientStorage(alloc::format!(
                "the store's byte budget of {} bytes is full; delete objects or raise the budget",
                self.max_bytes
            ))),
        }
    }

    fn commit(
        &mut self,
        kind: EventType,
        key: ObjectKey,
        object: StoredObject,
        previous: Option<StoredObject>,
    ) {
        self.keep_for_capture(&key, previous.as_ref());
        self.revision = object.revision;
        self.ring.push(WatchEvent {
            kind,
            key,
            object,
            previous,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_gives_back_its_labels_and_fields() {
        let long = "v".repeat(300);
        let index = ObjectIndex::new(
            [("app", "web"), ("tier", long.as_str()), ("empty", "")],
            [
                ("spec.nodeName", "node-1"),
                ("status.phase", ""),
                ("not.a.field", "x"),
                ("involvedObject.uid", long.as_str()),
            ],
        );
        assert_eq!(
            index.labels().collect::<Vec<_>>(),
            [("app", "web"), ("tier", long.as_str()), ("empty", "")]
        );
        assert_eq!(index.label("empty"), Some(""));
        assert_eq!(index.label("missing"), None);
        assert_eq!(
            index.fields().collect::<Vec<_>>(),
            [
                ("spec.nodeName", "node-1"),
                ("involvedObject.uid", long.as_str())
            ]
        );
        assert!(index.field_is("spec.nodeName", "node-1"));
        assert!(
            index.field_is("status.phase", ""),
            "an empty field reads as \"\""
        );
        assert_eq!(index.field("not.a.field"), "");
        assert_eq!(ObjectIndex::default().labels().count(), 0);
        assert_eq!(ObjectIndex::default().fields().count(), 0);
    }

    #[test]
    fn every_selectable_field_has_a_place_in_the_index_table() {
        assert!(crate::selector::SELECTABLE_FIELDS.len() <= usize::from(u8::MAX));
        let everything = serde_json::json!({
            "metadata": {"name": "n", "namespace": "ns"},
            "spec": {"nodeName": "a", "restartPolicy": "b", "schedulerName": "c",
                "serviceAccountName": "d", "hostNetwork": true, "unschedulable": true,
                "clusterIP": "e", "type": "f"},
            "status": {"phase": "g", "podIP": "h", "nominatedNodeName": "i", "succeeded": 1,
                "replicas": 2},
            "type": "j", "reason": "k", "reportingComponent": "l", "source": {"component": "m"},
            "involvedObject": {"kind": "o", "namespace": "p", "name": "q", "uid": "r",
                "apiVersion": "s", "resourceVersion": "t", "fieldPath": "u"},
        });
        for info in crate::resource::RESOURCES {
            for (field, value) in crate::selector::selectable_fields(info.id, &everything) {
                assert!(
                    crate::selector::SELECTABLE_FIELDS.contains(&field),
                    "{field} of {:?}",
                    info.id
                );
                let index = ObjectIndex::new([], [(field, value.as_str())]);
                assert_eq!(index.field(field), value, "{field}");
            }
        }
    }

    fn config(max_objects: usize, max_bytes: usize) -> Config {
        Config {
            max_objects,
            max_store_bytes: max_bytes,
            watch_ring_capacity: 4,
            ..Config::default()
        }
    }

    #[test]
    fn writes_bump_the_revision_and_respect_budgets() {
        let mut store = Store::new(&config(2, 10_000));
        let a = ObjectKey::new(ResourceId::Pods, "default", "a");
        assert_eq!(
            store
                .create(a.clone(), b"{}".to_vec(), ObjectIndex::default())
                .map(|o| o.revision),
            Ok(1)
        );
        assert!(matches!(
            store.create(a.clone(), b"{}".to_vec(), ObjectIndex::default()),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(
            store
                .update(&a, b"{\"x\":1}".to_vec(), ObjectIndex::default())
                .map(|(new, old)| (new.revision, old.revision)),
            Ok((2, 1))
        );
        store
            .create(
                ObjectKey::new(ResourceId::Pods, "default", "b"),
                b"{}".to_vec(),
                ObjectIndex::default(),
            )
            .unwrap();
        let before = (store.revision(), store.used_bytes(), store.len());
        let full = store.create(
            ObjectKey::new(ResourceId::Pods, "default", "c"),
            b"{}".to_vec(),
            ObjectIndex::default(),
        );
        assert!(matches!(full, Err(Error::InsufficientStorage(_))));
        assert_eq!(
            (store.revision(), store.used_bytes(), store.len()),
            before,
            "a refused write changes nothing"
        );
        assert_eq!(store.delete(&a, b"{}".to_vec()).map(|o| o.revision), Ok(4));
        assert_eq!(store.count(ResourceId::Pods), 1);
    }

    #[test]
    fn byte_budget_is_all_or_nothing() {
        let mut store = Store::new(&config(100, 400));
        let a = ObjectKey::new(ResourceId::ConfigMaps, "default", "a");
        store
            .create(a.clone(), alloc::vec![b' '; 100], ObjectIndex::default())
            .unwrap();
        let big = store.update(&a, alloc::vec![b' '; 300], ObjectIndex::default());
        assert!(matches!(big, Err(Error::InsufficientStorage(_))));
        assert_eq!(store.get(&a).unwrap().json.len(), 100);
        assert_eq!(store.revision(), 1);
    }

    #[test]
    fn range_is_scoped_and_ordered() {
        let mut store = Store::new(&config(100, 1 << 20));
        for (ns, name) in [("b", "2"), ("a", "1"), ("b", "1"), ("c", "9")] {
            store
                .create(
                    ObjectKey::new(ResourceId::Pods, ns, name),
                    b"{}".to_vec(),
                    ObjectIndex::default(),
                )
                .unwrap();
        }
        store
            .create(
                ObjectKey::new(ResourceId::Nodes, "", "n"),
                b"{}".to_vec(),
                ObjectIndex::default(),
            )
            .unwrap();
        let names = |it: &mut dyn Iterator<Item = (&ObjectKey, &StoredObject)>| {
            it.map(|(k, _)| alloc::format!("{}/{}", k.namespace, k.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&mut store.range(ResourceId::Pods, None, None)),
            ["a/1", "b/1", "b/2", "c/9"]
        );
        assert_eq!(
            names(&mut store.range(ResourceId::Pods, Some("b"), None)),
            ["b/1", "b/2"]
        );
        assert_eq!(
            names(&mut store.range(ResourceId::Pods, None, Some(("b", "1")))),
            ["b/2", "c/9"]
        );
        assert_eq!(
            names(&mut store.range(ResourceId::Pods, Some("b"), Some(("b", "1")))),
            ["b/2"]
        );
    }
}

#[cfg(test)]
mod capture_tests {
    use super::*;
    use alloc::format;

    fn key(i: u32) -> ObjectKey {
        ObjectKey::new(ResourceId::ConfigMaps, "default", &format!("cm-{i:04}"))
    }

    fn store(max_objects: usize) -> Store {
        Store::new(&Config {
            max_objects,
            ..Config::default()
        })
    }

    fn versions(pairs: &[(ObjectKey, StoredObject)]) -> Vec<(ObjectKey, u64, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, o)| (k.clone(), o.revision, o.json.bytes().into_owned()))
            .collect()
    }

    /// xorshift64*: a deterministic workload.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Whatever is written between the steps (updates, deletes and creates of keys on both
    /// sides of the cursor, a key deleted and created again), the capture holds every object
    /// as it was when the capture began, and nothing created since.
    #[test]
    fn a_capture_taken_in_steps_is_the_store_at_its_beginning() {
        for seed in 1..=20u64 {
            let mut s = store(10_000);
            for i in (0..400).step_by(2) {
                s.create(
                    key(i),
                    format!("{{\"v\":{i}}}").into_bytes(),
                    ObjectIndex::default(),
                )
                .unwrap();
            }
            let at_begin: Vec<_> = s.iter().map(|(k, o)| (k.clone(), o.clone())).collect();
            let id = s.begin_capture();
            let mut out = Vec::new();
            let mut rng = seed;
            let mut steps = 0;
            while !s.capture_step(id, 7, &mut out).unwrap() {
                steps += 1;
                for _ in 0..5 {
                    let k = key(u32::try_from(next(&mut rng) % 400).unwrap());
                    let body = format!("{{\"step\":{steps}}}").into_bytes();
                    if s.get(&k).is_some() {
                        if next(&mut rng).is_multiple_of(3) {
                            s.delete(&k, body).unwrap();
                        } else {
                            s.update(&k, body, ObjectIndex::default()).unwrap();
                        }
                    } else {
                        s.create(k, body, ObjectIndex::default()).unwrap();
                    }
                }
            }
            assert!(steps > 20, "the capture took many steps");
            assert_eq!(versions(&out), versions(&at_begin), "seed {seed}");
            assert!(s.capture.is_none(), "a finished capture keeps nothing");
        }
    }

    /// Beginning a capture abandons the one under way; so does one whose kept versions would
    /// outgrow the object budget (a capture nobody finishes cannot grow without bound).
    #[test]
    fn an_abandoned_capture_refuses_its_next_step() {
        let mut s = store(4);
        for i in 0..3 {
            s.create(key(i), b"{}".to_vec(), ObjectIndex::default())
                .unwrap();
        }
        let first = s.begin_capture();
        let second = s.begin_capture();
        let mut out = Vec::new();
        assert!(matches!(
            s.capture_step(first, 10, &mut out),
            Err(Error::Unavailable(_))
        ));
        assert!(out.is_empty());
        // Four kept versions fill the budget of four; the fifth abandons the capture.
        for i in 0..3 {
            s.update(&key(i), b"{\"x\":1}".to_vec(), ObjectIndex::default())
                .unwrap();
        }
        s.delete(&key(0), b"{}".to_vec()).unwrap();
        s.create(key(9), b"{}".to_vec(), ObjectIndex::default())
            .unwrap();
        assert_eq!(s.capture.as_ref().map(|c| c.before.len()), Some(4));
        s.create(key(8), b"{}".to_vec(), ObjectIndex::default())
            .unwrap();
        assert!(s.capture.is_none());
        assert!(s.capture_step(second, 10, &mut out).is_err());
    }
}
