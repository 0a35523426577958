//! The change record: the one thing that changes cluster state. A live write decides everything
//! (uid, timestamps, generated name, revision, defaults, allocations, validation, admission),
//! commits, and yields one [`Change`]; a replay applies the same records and reaches the same
//! store and the same derived state. It is what the durable log persists and a replica applies.
//!
//! # Encoding (format version 2)
//!
//! All integers little-endian; lengths count bytes.
//!
//! | bytes | field |
//! |-------|-------|
//! | 1     | format version, `2` |
//! | 1     | kind: `0` created, `1` updated, `2` deleted (`3` is a stake batch: see [`super::record`]) |
//! | 8     | revision (`u64`): the store's revision after this change |
//! | 8     | `at`: nanoseconds since 1970 (`u64`), the time the writer decided the change |
//! | 1     | origin: `0` the server's own work, `1` the scheduler, `2` a request, `3` a node's request |
//! | 2 + n | origin `3` only: the node's name (`u16` length, UTF-8) |
//! | 1     | resource: `0` built-in, `1` custom |
//! | built-in: 2 + n, 2 + n | its API group and plural (`u16` length, UTF-8 each): names, not the resource table's order, so that a log outlives a release that adds a kind |
//! | custom: 4 | the registry id (`u32`) |
//! | 2 + n | namespace (`u16` length, UTF-8; empty for cluster-scoped) |
//! | 2 + n | name (`u16` length, UTF-8) |
//! | 4 + n | object: compact JSON (`u32` length), `metadata.resourceVersion` = revision; for a delete, its last state at the deletion's revision |
//!
//! Nothing else is needed to replay: whatever was random or read from a clock is already in
//! the object's bytes or in `at`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::resource::{RESOURCES, ResourceId};
use crate::store::{ObjectKey, StoredObject};
use crate::watch::EventType;
use crate::{Error, UnixTime};

/// The format version [`Change::encode`] writes.
pub const FORMAT_VERSION: u8 = 2;

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new object.
    Created,
    /// A new version of a stored object.
    Updated,
    /// The object's removal; the record carries its last state.
    Deleted,
}

impl ChangeKind {
    /// The watch event type this change appears as.
    pub fn event_type(self) -> EventType {
        match self {
            Self::Created => EventType::Added,
            Self::Updated => EventType::Modified,
            Self::Deleted => EventType::Deleted,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Updated => 1,
            Self::Deleted => 2,
        }
    }
}

/// Who decided a change: what the subsystems that learn from the feed treat differently
/// (a node's event is charged to that node; a request's node or lease write is a heartbeat;
/// the scheduler's own status write does not requeue the pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The server's own work: bootstrap, controllers, timers.
    Server,
    /// The pod scheduler writing a pod's scheduling status.
    Scheduler,
    /// A client's request (the administrator, a user, a worker's seed endpoint).
    Request,
    /// A request by a node identity, by its node's name.
    Node(Box<str>),
}

impl Origin {
    /// Whether a client's request made the change.
    pub fn is_request(&self) -> bool {
        matches!(self, Self::Request | Self::Node(_))
    }

    /// The node identity that requested the change, if one did.
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::Node(node) => Some(node),
            _ => None,
        }
    }
}

/// One committed change. The object's bytes are shared with the store and the watch ring.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The time the writer decided the change (derived state uses this, never a clock).
    pub at: UnixTime,
    /// Who decided it.
    pub origin: Origin,
    /// Which object.
    pub key: ObjectKey,
    /// The object as stored (for a delete: its last state), with the change's revision.
    pub object: StoredObject,
}

impl Change {
    /// The store's revision after this change.
    pub fn revision(&self) -> u64 {
        self.object.revision
    }

    /// The object's compact JSON.
    pub fn json(&self) -> alloc::borrow::Cow<'_, [u8]> {
        self.object.json.bytes()
    }

    /// The record's bytes (see the module documentation for the format).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            40 + self.key.namespace.len() + self.key.name.len() + self.object.json.len(),
        );
        out.push(FORMAT_VERSION);
        out.push(self.kind.tag());
        out.extend_from_slice(&self.object.revision.to_le_bytes());
        out.extend_from_slice(&self.at.nanos.to_le_bytes());
        match &self.origin {
            Origin::Server => out.push(0),
            Origin::Scheduler => out.push(1),
            Origin::Request => out.push(2),
            Origin::Node(node) => {
                out.push(3);
                put_short(&mut out, node.as_bytes());
            }
        }
        put_resource(&mut out, self.key.resource);
        put_short(&mut out, self.key.namespace.as_bytes());
        put_short(&mut out, self.key.name.as_bytes());
        put_u32(&mut out, self.object.json.len());
        self.object.json.append_to(&mut out);
        out
    }

    /// Reads a record [`Change::encode`] wrote. The object's index is left empty: replay
    /// computes it from the bytes, as the live write did.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader { bytes };
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        let kind = match r.u8()? {
            0 => ChangeKind::Created,
            1 => ChangeKind::Updated,
            2 => ChangeKind::Deleted,
            _ => return Err(malformed("unknown kind")),
        };
        let revision = r.u64()?;
        let at = UnixTime { nanos: r.u64()? };
        let origin = match r.u8()? {
            0 => Origin::Server,
            1 => Origin::Scheduler,
            2 => Origin::Request,
            3 => Origin::Node(r.text()?.into()),
            _ => return Err(malformed("unknown origin")),
        };
        let resource = read_resource(&mut r)?;
        let namespace = r.text()?;
        let name = r.text()?;
        let len = usize::try_from(r.u32()?).map_err(|_| malformed("object too long"))?;
        let json = r.take(len)?;
        if !r.bytes.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(Self {
            kind,
            at,
            origin,
            key: ObjectKey::new(resource, &namespace, &name),
            object: StoredObject::whole(json.to_vec(), revision),
        })
    }
}

/// A resource as records name it: a built-in by group and plural, a custom one by its id.
pub(super) fn put_resource(out: &mut Vec<u8>, resource: ResourceId) {
    match resource {
        ResourceId::Custom(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_le_bytes());
        }
        builtin => {
            let rt = RESOURCES.iter().find(|rt| rt.id == builtin);
            out.push(0);
            put_short(out, rt.map_or("", |rt| rt.group).as_bytes());
            put_short(out, rt.map_or("", |rt| rt.plural).as_bytes());
        }
    }
}

/// Reads what [`put_resource`] wrote.
pub(super) fn read_resource(r: &mut Reader<'_>) -> Result<ResourceId, Error> {
    match r.u8()? {
        0 => {
            let (group, plural) = (r.text()?, r.text()?);
            RESOURCES
                .iter()
                .find(|rt| rt.group == group && rt.plural == plural)
                .map(|rt| rt.id)
                .ok_or_else(|| malformed("unknown built-in resource"))
        }
        1 => Ok(ResourceId::Custom(r.u32()?)),
        _ => Err(malformed("unknown resource tag")),
    }
}

/// A length or count as a `u32` (saturating: no record holds 4 GiB or 4 billion items).
pub(super) fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

pub(super) fn put_short(out: &mut Vec<u8>, text: &[u8]) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.get(..usize::from(len)).unwrap_or(text));
}

pub(super) fn malformed(what: &str) -> Error {
    Error::Internal(alloc::format!("malformed change record: {what}"))
}

pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| malformed("truncated"))
    }

    pub(super) fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(super) fn text(&mut self) -> Result<String, Error> {
        let len = u16::from_le_bytes(self.array()?);
        let bytes = self.take(usize::from(len))?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| malformed("text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(origin: Origin, resource: ResourceId) -> Change {
        Change {
            kind: ChangeKind::Updated,
            at: UnixTime::from_secs(1_700_000_000),
            origin,
            key: ObjectKey::new(resource, "default", "web-1"),
            object: StoredObject::whole(
                br#"{"metadata":{"name":"web-1","resourceVersion":"42"}}"#.to_vec(),
                42,
            ),
        }
    }

    #[test]
    fn records_round_trip_through_their_encoding() {
        for origin in [
            Origin::Server,
            Origin::Scheduler,
            Origin::Request,
            Origin::Node("worker-1".into()),
        ] {
            for resource in [
                ResourceId::Pods,
                ResourceId::Deployments,
                ResourceId::Custom(7),
            ] {
                let c = change(origin.clone(), resource);
                let back = Change::decode(&c.encode()).unwrap();
                assert_eq!(back.kind, c.kind);
                assert_eq!(back.at, c.at);
                assert_eq!(back.origin, c.origin);
                assert_eq!(back.key, c.key);
                assert_eq!(back.revision(), 42);
                assert_eq!(back.json(), c.json());
            }
        }
    }

    #[test]
    fn damaged_records_are_refused() {
        let bytes = change(Origin::Request, ResourceId::Pods).encode();
        for cut in 0..bytes.len() {
            assert!(Change::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Change::decode(&longer).is_err());
        let mut version = bytes;
        version[0] = 9;
        assert!(Change::decode(&version).is_err());
    }

    /// A built-in resource is named by group and plural, not by its place in the table.
    #[test]
    fn built_in_resources_are_named() {
        let bytes = change(Origin::Server, ResourceId::Deployments).encode();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("apps") && text.contains("deployments"),
            "{text}"
        );
        let mut unknown = change(Origin::Server, ResourceId::Pods).encode();
        let at = unknown.windows(4).position(|w| w == b"pods").unwrap();
        unknown[at..at + 4].copy_from_slice(b"podz");
        assert!(Change::decode(&unknown).is_err());
    }
}
