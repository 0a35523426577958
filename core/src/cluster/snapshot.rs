//! Snapshots: the whole cluster at one revision, so that the durable log can drop the records
//! before it. Taking one ([`Cluster::begin_snapshot`], then [`Cluster::continue_snapshot`] a
//! slice of objects per call) clones handles, not bytes, and never holds the store long: writes
//! go on between the slices, each keeping the version a slice still needs. The runtime encodes
//! it ([`Snapshot::into_chunks`]) outside the lock.
//! Restoring ([`Cluster::recover`]) puts every object back at its own revision and feeds each
//! through the same derived-state feed as a write, so Service allocations, the node
//! authorizer's index, the scheduler's cache, stake registrations, terminating namespaces and
//! event expiry are rebuilt from the objects; the stake registry and the CustomResourceDefinition
//! ids (which stored custom objects and later records name) are carried in the header.
//!
//! # Encoding (format version 1)
//!
//! A snapshot is a list of chunks; a chunk is a run of items, each a `u32` length and the item;
//! an item never spans chunks. Integers little-endian; texts `u16` length + UTF-8.
//!
//! | item | fields |
//! |------|--------|
//! | header, first | `1`, format version `1`, revision `u64`, time `u64`, next CRD id `u32`, CRD count `u32` and each: name, id `u32`, definition revision `u64`; stake registry: last checkpoint (`u8` flag + `u64`), generation `u64`, last update (`u8` flag + `u64`), stake count `u32` and each: id (32), owner (32), amount, slashed `u64`, withdrawn `u8`, trust `u8`, generation, checkpoint `u64`; seen count `u32` and each: digest text, index `u64` |
//! | object | `2`, resource (as in a change record), namespace, name, revision `u64`, JSON (`u32` + bytes) |

use alloc::string::String;
use alloc::vec::Vec;

use super::Cluster;
use super::change::{Reader, malformed, put_resource, put_short, put_u32, read_resource};
use super::record::{read_trust, trust_tag};
use crate::stake::{EventId, Stake};
use crate::store::{ObjectKey, StoredObject};
use crate::token::SuiAddress;
use crate::{Error, UnixTime};

const HEADER: u8 = 1;
const OBJECT: u8 = 2;
const FORMAT: u8 = 1;

/// The cluster at one revision, sharing its objects' bytes with the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The store's revision.
    pub revision: u64,
    /// When it was taken.
    pub at: UnixTime,
    header: Vec<u8>,
    objects: Vec<(ObjectKey, StoredObject)>,
}

/// A snapshot being captured (see [`Cluster::begin_snapshot`]).
#[derive(Debug)]
pub struct SnapshotCapture {
    id: u64,
    snapshot: Snapshot,
}

impl SnapshotCapture {
    /// The revision the snapshot is of.
    pub fn revision(&self) -> u64 {
        self.snapshot.revision
    }
}

impl Cluster {
    /// The cluster as it stands, captured in one call (see [`Cluster::begin_snapshot`] for
    /// one that never holds the caller long).
    pub fn snapshot(&mut self, at: UnixTime) -> Result<Snapshot, Error> {
        let mut capture = self.begin_snapshot(at);
        self.continue_snapshot(&mut capture, usize::MAX)?
            .ok_or_else(|| Error::Internal("a capture with no limit did not end".into()))
    }

    /// Begins a snapshot of the cluster as it stands: the header now (registries, the
    /// revision), the objects by [`Cluster::continue_snapshot`] a slice at a time, each slice a
    /// short call between which writes go on; the snapshot is still of this moment (each
    /// write to an object not captured yet keeps its version first). The runtime begins it
    /// under the store lock at the exact point of the journal it covers.
    pub fn begin_snapshot(&mut self, at: UnixTime) -> SnapshotCapture {
        let revision = self.store.revision();
        let mut header = Vec::with_capacity(256);
        header.push(HEADER);
        header.push(FORMAT);
        header.extend_from_slice(&revision.to_le_bytes());
        header.extend_from_slice(&at.nanos.to_le_bytes());
        header.extend_from_slice(&self.crds.next_id().to_le_bytes());
        let definitions: Vec<_> = self.crds.iter().collect();
        put_u32(&mut header, definitions.len());
        for definition in definitions {
            put_short(&mut header, definition.name.as_bytes());
            header.extend_from_slice(&definition.id.to_le_bytes());
            header.extend_from_slice(&definition.revision.to_le_bytes());
        }
        let stakes = &self.stakes;
        put_option(&mut header, stakes.last_checkpoint);
        header.extend_from_slice(&stakes.generation.to_le_bytes());
        put_option(&mut header, stakes.last_update.map(|t| t.nanos));
        let mut all: Vec<_> = stakes.stakes.iter().collect();
        all.sort_by_key(|(id, _)| **id);
        put_u32(&mut header, all.len());
        for (id, stake) in all {
            header.extend_from_slice(id);
            header.extend_from_slice(&stake.owner.0);
            header.extend_from_slice(&stake.amount.to_le_bytes());
            header.extend_from_slice(&stake.slashed.to_le_bytes());
            header.push(u8::from(stake.withdrawn));
            header.push(trust_tag(stake.trust));
            header.extend_from_slice(&stake.generation.to_le_bytes());
            header.extend_from_slice(&stake.checkpoint.to_le_bytes());
        }
        let mut seen: Vec<_> = stakes.seen.iter().collect();
        seen.sort();
        put_u32(&mut header, seen.len());
        for id in seen {
            put_short(&mut header, id.tx_digest.as_bytes());
            header.extend_from_slice(&id.event_seq.to_le_bytes());
        }
        SnapshotCapture {
            id: self.store.begin_capture(),
            snapshot: Snapshot {
                revision,
                at,
                header,
                objects: Vec::with_capacity(self.store.len()),
            },
        }
    }

    /// Captures up to `max_objects` more objects of `capture`; the snapshot once all are.
    /// Fails when the capture was abandoned (another began, or writes during it outgrew its
    /// budget): begin a new one.
    pub fn continue_snapshot(
        &mut self,
        capture: &mut SnapshotCapture,
        max_objects: usize,
    ) -> Result<Option<Snapshot>, Error> {
        let done =
            self.store
                .capture_step(capture.id, max_objects, &mut capture.snapshot.objects)?;
        Ok(done.then(|| Snapshot {
            revision: capture.snapshot.revision,
            at: capture.snapshot.at,
            header: core::mem::take(&mut capture.snapshot.header),
            objects: core::mem::take(&mut capture.snapshot.objects),
        }))
    }
}

impl Snapshot {
    /// Objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The snapshot's bytes, in chunks of about `chunk_bytes` (one item may make a chunk
    /// larger).
    pub fn encode_chunks(&self, chunk_bytes: usize) -> Vec<Vec<u8>> {
        self.clone().into_chunks(chunk_bytes).collect()
    }

    /// The snapshot's chunks one at a time, as [`Snapshot::encode_chunks`] would make them: an
    /// encoder holds one chunk, not the whole state, and drops each object's handle once
    /// written.
    pub fn into_chunks(self, chunk_bytes: usize) -> SnapshotChunks {
        SnapshotChunks {
            header: Some(self.header),
            objects: self.objects.into_iter(),
            item: Vec::new(),
            carried: false,
            chunk_bytes,
        }
    }
}

/// A snapshot's chunks, in order (see [`Snapshot::into_chunks`]).
pub struct SnapshotChunks {
    header: Option<Vec<u8>>,
    objects: alloc::vec::IntoIter<(ObjectKey, StoredObject)>,
    /// The object being encoded, one buffer for all of them.
    item: Vec<u8>,
    /// `item` did not fit in the last chunk: the next one starts with it.
    carried: bool,
    chunk_bytes: usize,
}

impl Iterator for SnapshotChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.header.is_none() && !self.carried {
            // The chunk before ended with the last object.
            return None;
        }
        let mut chunk = Vec::with_capacity(self.chunk_bytes.min(1 << 20));
        match self.header.take() {
            Some(header) => put_item(&mut chunk, &header),
            None => {
                self.carried = false;
                put_item(&mut chunk, &self.item);
            }
        }
        for (key, object) in self.objects.by_ref() {
            let item = &mut self.item;
            item.clear();
            item.push(OBJECT);
            put_resource(item, key.resource);
            put_short(item, key.namespace.as_bytes());
            put_short(item, key.name.as_bytes());
            item.extend_from_slice(&object.revision.to_le_bytes());
            put_u32(item, object.json.len());
            object.json.append_to(item);
            if chunk.len().saturating_add(item.len() + 4) > self.chunk_bytes {
                self.carried = true;
                return Some(chunk);
            }
            put_item(&mut chunk, item);
        }
        Some(chunk)
    }
}

/// A snapshot's header read back.
pub(crate) struct Header {
    pub(crate) revision: u64,
    pub(crate) at: UnixTime,
    pub(crate) next_crd_id: u32,
    /// CRD name → (id, definition revision).
    pub(crate) crds: Vec<(String, u32, u64)>,
    pub(crate) stakes: crate::stake::StakeRegistry,
}

/// One item of a snapshot read back (see [`read_chunk`]).
pub(crate) enum Item {
    /// The first item of the first chunk.
    Header(Header),
    /// An object (its index left empty).
    Object(ObjectKey, StoredObject),
}

/// Reads the items of one chunk [`Snapshot::into_chunks`] wrote, in order, and hands each to
/// `each`: chunk by chunk, so a restore never holds a whole snapshot decoded. `revision` is
/// the header's, once read (`None` before the first chunk); `stakes` is taken (the empty
/// registry with the configured limits) to fill when the header comes.
pub(crate) fn read_chunk(
    chunk: &[u8],
    mut revision: Option<u64>,
    stakes: &mut Option<crate::stake::StakeRegistry>,
    mut each: impl FnMut(Item) -> Result<(), Error>,
) -> Result<(), Error> {
    for item in (Items {
        bytes: chunk,
        failed: false,
    }) {
        let item = item?;
        match revision {
            None => {
                let stakes = stakes
                    .take()
                    .ok_or_else(|| malformed("a second snapshot header"))?;
                let header = read_header(item, stakes)?;
                revision = Some(header.revision);
                each(Item::Header(header))?;
            }
            Some(revision) => {
                let (key, object) = read_object(item, revision)?;
                each(Item::Object(key, object))?;
            }
        }
    }
    if revision.is_none() {
        return Err(malformed("a snapshot without a header"));
    }
    Ok(())
}

fn read_header(item: &[u8], mut stakes: crate::stake::StakeRegistry) -> Result<Header, Error> {
    let mut r = Reader { bytes: item };
    if r.u8()? != HEADER || r.u8()? != FORMAT {
        return Err(malformed("not a snapshot header of format 1"));
    }
    let revision = r.u64()?;
    let at = UnixTime { nanos: r.u64()? };
    let next_crd_id = r.u32()?;
    let count = r.u32()? as usize;
    let mut crds = Vec::with_capacity(count.min(r.bytes.len() / 14));
    for _ in 0..count {
        crds.push((r.text()?, r.u32()?, r.u64()?));
    }
    stakes.last_checkpoint = read_option(&mut r)?;
    stakes.generation = r.u64()?;
    stakes.last_update = read_option(&mut r)?.map(|nanos| UnixTime { nanos });
    let count = r.u32()? as usize;
    for _ in 0..count {
        let id = r.array::<32>()?;
        let stake = Stake {
            owner: SuiAddress(r.array::<32>()?),
            amount: r.u64()?,
            slashed: r.u64()?,
            withdrawn: r.u8()? != 0,
            trust: read_trust(&mut r)?,
            generation: r.u64()?,
            checkpoint: r.u64()?,
        };
        stakes.stakes.insert(id, stake);
    }
    let count = r.u32()? as usize;
    for _ in 0..count {
        stakes.seen.insert(EventId {
            tx_digest: r.text()?,
            event_seq: r.u64()?,
        });
    }
    if !r.bytes.is_empty() {
        return Err(malformed("trailing bytes in the snapshot header"));
    }
    Ok(Header {
        revision,
        at,
        next_crd_id,
        crds,
        stakes,
    })
}

/// An object item of a snapshot at `revision`.
fn read_object(item: &[u8], revision: u64) -> Result<(ObjectKey, StoredObject), Error> {
    let mut r = Reader { bytes: item };
    if r.u8()? != OBJECT {
        return Err(malformed("not a snapshot object"));
    }
    let resource = read_resource(&mut r)?;
    let namespace = r.text()?;
    let name = r.text()?;
    let object_revision = r.u64()?;
    let len = r.u32()? as usize;
    let json = r.take(len)?;
    if !r.bytes.is_empty() || object_revision > revision {
        return Err(malformed("a snapshot object out of shape"));
    }
    Ok((
        ObjectKey::new(resource, &namespace, &name),
        StoredObject::whole(json.to_vec(), object_revision),
    ))
}

/// The items of one chunk; an item that runs past the chunk's end is an error.
struct Items<'a> {
    bytes: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<&'a [u8], Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() || self.failed {
            return None;
        }
        let mut r = Reader { bytes: self.bytes };
        let item = r.u32().and_then(|len| r.take(len as usize));
        self.bytes = r.bytes;
        self.failed = item.is_err();
        Some(item)
    }
}

fn put_item(out: &mut Vec<u8>, item: &[u8]) {
    put_u32(out, item.len());
    out.extend_from_slice(item);
}

fn put_option(out: &mut Vec<u8>, value: Option<u64>) {
    out.push(u8::from(value.is_some()));
    out.extend_from_slice(&value.unwrap_or(0).to_le_bytes());
}

fn read_option(r: &mut Reader<'_>) -> Result<Option<u64>, Error> {
    let present = r.u8()? != 0;
    let value = r.u64()?;
    Ok(present.then_some(value))
}
