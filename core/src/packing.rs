//! How the store keeps objects' JSON small: each version is LZ4-compressed against an exemplar,
//! an earlier object of the same resource kept whole.
//!
//! Objects of one resource share their keys and most of their values (the pods of one
//! ReplicaSet differ in a few names, uids, timestamps and addresses), so against an exemplar a
//! 2.3 KB pod packs into about 100 bytes and a 1 KB event into about 130; plain LZ4 gains less
//! than 2×. Unpacking runs at memory speed (it mostly copies from the exemplar), so every read
//! unpacks and nothing unpacked is kept.
//!
//! Each resource keeps a few exemplars, most recently useful first. A version that packs well
//! against none of them (a new shape, or random data) is stored whole and becomes an exemplar
//! itself, pushing out the least useful one; versions packed against an exemplar hold it, so it
//! lives as long as they do. Only objects up to [`MAX_EXEMPLAR_BYTES`] become exemplars, so the
//! exemplars a resource pins cost at most that many bytes each.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::resource::ResourceId;

/// Versions shorter than this are stored whole: packing gains little and costs a table.
const MIN_PACKED_BYTES: usize = 192;

/// Largest object that becomes an exemplar (larger ones are stored whole, or packed against an
/// exemplar when one fits them).
pub const MAX_EXEMPLAR_BYTES: usize = 16 << 10;

/// Scratch kept between writes, at most (a larger object's is freed after the next write).
const SCRATCH_KEPT_BYTES: usize = 64 << 10;

/// A version packing to at most this fraction of its length against an exemplar (1/N) takes
/// that exemplar without trying the others.
const GOOD_RATIO: usize = 4;

/// A version packing to more than this fraction (1/N) against every exemplar becomes one.
const USEFUL_RATIO: usize = 2;

/// One object version's JSON as the store keeps it. Cloning shares the bytes.
#[derive(Clone)]
pub struct PackedJson(Repr);

#[derive(Clone)]
enum Repr {
    /// The JSON itself.
    Whole(Arc<[u8]>),
    /// LZ4 block of the JSON with `exemplar` as its dictionary.
    Packed {
        bytes: Arc<[u8]>,
        exemplar: Arc<[u8]>,
        len: u32,
    },
}

impl core::fmt::Debug for PackedJson {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Repr::Whole(json) => write!(f, "PackedJson::Whole({} B)", json.len()),
            Repr::Packed { bytes, len, .. } => {
                write!(f, "PackedJson::Packed({len} B in {} B)", bytes.len())
            }
        }
    }
}

impl PackedJson {
    /// `json` stored whole.
    pub fn whole(json: Vec<u8>) -> Self {
        Self(Repr::Whole(json.into()))
    }

    /// The JSON's length.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Whole(json) => json.len(),
            Repr::Packed { len, .. } => *len as usize,
        }
    }

    /// Whether the JSON is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes this version holds of its own (an exemplar it shares is not counted).
    pub fn held_bytes(&self) -> usize {
        match &self.0 {
            Repr::Whole(json) => json.len(),
            Repr::Packed { bytes, .. } => bytes.len(),
        }
    }

    /// Whether the version is stored packed against an exemplar.
    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed { .. })
    }

    /// The JSON: borrowed when stored whole, unpacked otherwise.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.0 {
            Repr::Whole(json) => Cow::Borrowed(json),
            Repr::Packed { .. } => {
                let mut out = Vec::new();
                self.append_to(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Appends the JSON to `out` (unpacking straight into it).
    pub fn append_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Whole(json) => out.extend_from_slice(json),
            Repr::Packed {
                bytes,
                exemplar,
                len,
            } => {
                let start = out.len();
                out.resize(start.saturating_add(*len as usize), 0);
                let Some(target) = out.get_mut(start..) else {
                    return;
                };
                // Only this module packs, and keeps a packed version only once it unpacked to
                // its JSON, so this fails only on a defect: leave nothing half-written.
                if lz4_flex::block::decompress_into_with_dict(bytes, target, exemplar).ok()
                    != Some(*len as usize)
                {
                    out.truncate(start);
                }
            }
        }
    }
}

/// The exemplars of every resource, and the packing of new versions against them.
#[derive(Debug, Default)]
pub struct Packer {
    exemplars_per_resource: usize,
    by_resource: BTreeMap<ResourceId, Vec<Arc<[u8]>>>,
    /// Scratch output for packing attempts, kept between writes.
    scratch: Vec<u8>,
    /// Scratch for checking that a packed version unpacks to itself.
    check: Vec<u8>,
    /// Versions packed and stored whole since start (for tests and metrics).
    counts: PackCounts,
}

/// How many versions were packed, and how many stored whole, since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PackCounts {
    /// Versions stored packed against an exemplar.
    pub packed: u64,
    /// Versions stored whole (small, large, or new exemplars).
    pub whole: u64,
    /// Packing attempts (one per exemplar tried).
    pub attempts: u64,
}

impl Packer {
    /// A packer keeping up to `exemplars_per_resource` exemplars per resource; 0 stores every
    /// version whole.
    pub fn new(exemplars_per_resource: usize) -> Self {
        Self {
            exemplars_per_resource,
            ..Self::default()
        }
    }

    /// Counts since start.
    pub fn counts(&self) -> PackCounts {
        self.counts
    }

    /// Exemplars kept for `resource` (most recently useful first).
    pub fn exemplars(&self, resource: ResourceId) -> usize {
        self.by_resource.get(&resource).map_or(0, Vec::len)
    }

    /// Packs one version of a `resource` object.
    pub fn pack(&mut self, resource: ResourceId, json: Vec<u8>) -> PackedJson {
        if self.exemplars_per_resource == 0
            || json.len() < MIN_PACKED_BYTES
            || u32::try_from(json.len()).is_err()
        {
            self.counts.whole = self.counts.whole.saturating_add(1);
            return PackedJson::whole(json);
        }
        let Self {
            by_resource,
            scratch,
            check,
            counts,
            exemplars_per_resource,
        } = self;
        let exemplars = by_resource.entry(resource).or_default();
        let bound = lz4_flex::block::get_maximum_output_size(json.len());
        // A large object's scratch is not kept past the next ordinary one.
        if bound <= SCRATCH_KEPT_BYTES && scratch.capacity() > SCRATCH_KEPT_BYTES {
            *scratch = Vec::new();
            *check = Vec::new();
        }
        scratch.resize(bound, 0);
        // The best attempt so far: its exemplar's place and its bytes.
        let mut best: Option<(usize, Vec<u8>)> = None;
        for (i, exemplar) in exemplars.iter().enumerate() {
            counts.attempts = counts.attempts.saturating_add(1);
            let Ok(n) = lz4_flex::block::compress_into_with_dict(&json, scratch, exemplar) else {
                continue;
            };
            let Some(out) = scratch.get(..n) else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, b)| n < b.len()) {
                best = Some((i, out.to_vec()));
            }
            if n.saturating_mul(GOOD_RATIO) <= json.len() {
                break;
            }
        }
        if let Some((i, bytes)) = best
            && bytes.len().saturating_mul(USEFUL_RATIO) <= json.len()
            && let Some(exemplar) = exemplars.get(i).cloned()
            && unpacks_to(&bytes, &exemplar, &json, check)
        {
            exemplars.remove(i);
            exemplars.insert(0, exemplar.clone());
            counts.packed = counts.packed.saturating_add(1);
            return PackedJson(Repr::Packed {
                bytes: bytes.into(),
                exemplar,
                len: json.len() as u32,
            });
        }
        counts.whole = counts.whole.saturating_add(1);
        let whole: Arc<[u8]> = json.into();
        if whole.len() <= MAX_EXEMPLAR_BYTES {
            exemplars.truncate(exemplars_per_resource.saturating_sub(1));
            exemplars.insert(0, whole.clone());
        }
        PackedJson(Repr::Whole(whole))
    }
}

/// Whether `bytes` unpack against `exemplar` to exactly `json` (`check` is scratch): a packed
/// version is kept only after this, so a read never meets one that does not unpack.
fn unpacks_to(bytes: &[u8], exemplar: &[u8], json: &[u8], check: &mut Vec<u8>) -> bool {
    check.clear();
    check.resize(json.len(), 0);
    lz4_flex::block::decompress_into_with_dict(bytes, check, exemplar).ok() == Some(json.len())
        && check.as_slice() == json
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;

    fn pod(name: &str, ip: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default","uid":"{name}-0b1c-4d5e-8f90","labels":{{"app":"checkout"}}}},"spec":{{"containers":[{{"name":"checkout","image":"registry.example.com/payments/checkout:2.14.3","terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst","schedulerName":"default-scheduler"}},"status":{{"phase":"Running","podIP":"{ip}"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn similar_objects_pack_small_and_unpack_to_themselves() {
        let mut packer = Packer::new(4);
        let first = packer.pack(ResourceId::Pods, pod("web-0", "10.42.0.1"));
        assert!(
            !first.is_packed(),
            "the first of its resource becomes the exemplar"
        );
        for i in 1..50 {
            let json = pod(&format!("web-{i}"), &format!("10.42.0.{}", i + 1));
            let packed = packer.pack(ResourceId::Pods, json.clone());
            assert!(packed.is_packed());
            assert!(packed.held_bytes() * 5 < json.len(), "{packed:?}");
            assert_eq!(packed.len(), json.len());
            assert_eq!(&*packed.bytes(), &json[..]);
            let mut out = b"prefix".to_vec();
            packed.append_to(&mut out);
            assert_eq!(&out[6..], &json[..]);
        }
        assert_eq!(packer.exemplars(ResourceId::Pods), 1);
        assert_eq!(packer.counts().packed, 49);
        assert_eq!(packer.counts().whole, 1);
    }

    #[test]
    fn each_resource_has_its_own_exemplars() {
        let mut packer = Packer::new(4);
        packer.pack(ResourceId::Pods, pod("web-0", "10.42.0.1"));
        let other = packer.pack(ResourceId::ConfigMaps, pod("web-1", "10.42.0.2"));
        assert!(!other.is_packed());
        assert_eq!(packer.exemplars(ResourceId::ConfigMaps), 1);
    }

    /// Bytes that do not repeat: every byte a new one, so nothing packs.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut text = String::from("{\"data\":\"");
        while text.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push(char::from(b'a' + (x % 26) as u8));
        }
        text.push_str("\"}");
        text.into_bytes()
    }

    #[test]
    fn what_does_not_pack_is_stored_whole_and_exemplars_stay_within_their_budget() {
        let mut packer = Packer::new(3);
        for seed in 0..20 {
            let json = noise(seed, 1000);
            let stored = packer.pack(ResourceId::ConfigMaps, json.clone());
            assert!(!stored.is_packed());
            assert_eq!(&*stored.bytes(), &json[..]);
        }
        assert_eq!(packer.exemplars(ResourceId::ConfigMaps), 3);
        // Each version tries at most every exemplar once.
        assert!(packer.counts().attempts <= 3 * 20);
    }

    #[test]
    fn small_large_and_disabled_are_whole() {
        let mut packer = Packer::new(4);
        assert!(!packer.pack(ResourceId::Pods, b"{}".to_vec()).is_packed());
        let large = noise(7, MAX_EXEMPLAR_BYTES + 10);
        assert!(!packer.pack(ResourceId::Secrets, large).is_packed());
        assert_eq!(
            packer.exemplars(ResourceId::Secrets),
            0,
            "too large to be one"
        );
        let mut off = Packer::new(0);
        off.pack(ResourceId::Pods, pod("a", "1"));
        assert!(!off.pack(ResourceId::Pods, pod("b", "2")).is_packed());
        assert_eq!(off.exemplars(ResourceId::Pods), 0);
    }

    #[test]
    fn a_new_shape_becomes_the_first_exemplar_and_the_old_one_still_serves() {
        let mut packer = Packer::new(2);
        packer.pack(ResourceId::Pods, pod("web-0", "10.42.0.1"));
        let odd = noise(3, 800);
        packer.pack(ResourceId::Pods, odd.clone());
        assert_eq!(packer.exemplars(ResourceId::Pods), 2);
        let again = packer.pack(ResourceId::Pods, pod("web-9", "10.42.0.9"));
        assert!(again.is_packed(), "the pod exemplar is still kept");
        let near_odd = {
            let mut v = odd.clone();
            if let Some(b) = v.get_mut(100) {
                *b = b'Z';
            }
            v
        };
        let packed = packer.pack(ResourceId::Pods, near_odd.clone());
        assert!(packed.is_packed());
        assert_eq!(&*packed.bytes(), &near_odd[..]);
    }
}
