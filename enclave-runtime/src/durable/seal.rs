//! Sealing: what the host stores is XChaCha20-Poly1305 ciphertext under keys derived
//! (HKDF-SHA256, salt = the cluster id) from the cluster data key.
//!
//! Why XChaCha20-Poly1305: its 192-bit nonces can be drawn at random for every record, so no
//! nonce state has to survive restarts, truncations (`--recover-to-last-valid`, a raft leader
//! overwriting a follower's tail) or replicas: a position written twice gets two unrelated
//! nonces. AES-256-GCM's 96-bit random nonces would cap one key at about 2^32 records (the
//! birthday bound NIST sets), which a long-lived cluster log can reach; a position-derived GCM
//! nonce would repeat exactly when positions are rewritten.
//!
//! A record is `version (1) | nonce (24) | ciphertext of (revision: u64 | payload) | tag (16)`,
//! its associated data `"nautilus/log/v1" | cluster id | position | previous record's tag`, so
//! the log is a hash chain: a flipped byte, a record moved, dropped from the middle, repeated,
//! or taken from another cluster or another position fails to open. Snapshot chunks bind the
//! cluster, the snapshot id and their index; the manifest binds the cluster and the snapshot id
//! and holds the revision, the log position the snapshot covers, that record's tag (where the
//! log's chain resumes), the chunk count and a root hash over the sealed chunks.

use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::{Digest as _, Sha256};

/// Bytes of a Poly1305 tag (the chain link).
pub(crate) const TAG: usize = 16;
/// Bytes of an XChaCha20 nonce.
const NONCE: usize = 24;
/// Format version of sealed items.
const VERSION: u8 = 1;
/// Bytes a sealed record adds to its payload (version, nonce, revision, tag).
pub(crate) const OVERHEAD: usize = 1 + NONCE + 8 + TAG;

/// The tag before the first record.
pub(crate) const GENESIS: [u8; TAG] = [0; TAG];

/// Why a sealed item did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SealError {
    /// Shorter than the format allows, or an unknown version.
    Malformed,
    /// Authentication failed: changed bytes, another key (another cluster), or another
    /// position, chain or snapshot than the one bound.
    Forged,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed sealed bytes",
            Self::Forged => {
                "authentication failed (changed bytes, or sealed for another cluster, position or chain)"
            }
        })
    }
}

/// The keys of one cluster.
pub(crate) struct Keys {
    cluster_id: Vec<u8>,
    log: XChaCha20Poly1305,
    snapshot: XChaCha20Poly1305,
}

/// A sealed log record and its tag (the next record's chain link).
pub(crate) struct SealedRecord {
    pub(crate) bytes: Vec<u8>,
    pub(crate) tag: [u8; TAG],
}

/// What a snapshot's manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The state's revision.
    pub(crate) revision: u64,
    /// The last log position the snapshot covers.
    pub(crate) position: u64,
    /// That record's tag: the log after the snapshot chains from it.
    pub(crate) tag: [u8; TAG],
    /// Number of chunks.
    pub(crate) chunks: u32,
    /// SHA-256 over the SHA-256 of each sealed chunk, in order.
    pub(crate) root: [u8; 32],
}

const MANIFEST_BYTES: usize = 8 + 8 + TAG + 4 + 32;

impl Keys {
    /// Derives the log and snapshot keys from the cluster data key.
    pub(crate) fn derive(data_key: &[u8; 32], cluster_id: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(cluster_id.as_bytes()), data_key);
        let mut log = [0u8; 32];
        let mut snapshot = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: expand cannot fail.
        let _ = hk.expand(b"nautilus log key v1", &mut log);
        let _ = hk.expand(b"nautilus snapshot key v1", &mut snapshot);
        Self {
            cluster_id: cluster_id.as_bytes().to_vec(),
            log: XChaCha20Poly1305::new(&log.into()),
            snapshot: XChaCha20Poly1305::new(&snapshot.into()),
        }
    }

    fn context(&self, label: &[u8], numbers: &[u64], link: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(64 + self.cluster_id.len());
        ad.extend_from_slice(label);
        ad.push(0);
        ad.extend_from_slice(
            &u32::try_from(self.cluster_id.len())
                .unwrap_or(0)
                .to_be_bytes(),
        );
        ad.extend_from_slice(&self.cluster_id);
        for n in numbers {
            ad.extend_from_slice(&n.to_be_bytes());
        }
        ad.extend_from_slice(link);
        ad
    }

    /// Seals `payload` (with its `revision`) as the record at `position` after the record
    /// whose tag is `previous`; `nonce` must be fresh random bytes.
    pub(crate) fn seal_record(
        &self,
        position: u64,
        previous: &[u8; TAG],
        revision: u64,
        payload: &[u8],
        nonce: [u8; NONCE],
    ) -> SealedRecord {
        let ad = self.context(b"nautilus/log/v1", &[position], previous);
        let mut plain = Vec::with_capacity(8 + payload.len());
        plain.extend_from_slice(&revision.to_be_bytes());
        plain.extend_from_slice(payload);
        let bytes = seal(&self.log, &ad, &plain, nonce);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(bytes.get(bytes.len() - TAG..).unwrap_or(&GENESIS));
        SealedRecord { bytes, tag }
    }

    /// Opens the record at `position` after `previous`: `(revision, payload, tag)`.
    pub(crate) fn open_record(
        &self,
        position: u64,
        previous: &[u8; TAG],
        sealed: &[u8],
    ) -> Result<(u64, Vec<u8>, [u8; TAG]), SealError> {
        let ad = self.context(b"nautilus/log/v1", &[position], previous);
        let mut plain = open(&self.log, &ad, sealed)?;
        if plain.len() < 8 {
            return Err(SealError::Malformed);
        }
        let payload = plain.split_off(8);
        let mut revision = [0u8; 8];
        revision.copy_from_slice(&plain);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(
            sealed
                .get(sealed.len() - TAG..)
                .ok_or(SealError::Malformed)?,
        );
        Ok((u64::from_be_bytes(revision), payload, tag))
    }

    /// Seals a raft vote (its encoding) for replica `node`: the associated data binds the
    /// cluster, the node id and the label `vote`, so the blob opens only for that replica
    /// (a restarted replica has a new id and starts without a vote, design §2.3).
    // The replicas' sealed raft log calls it; the single-replica path has no vote.
    pub(crate) fn seal_vote(&self, node: u64, vote: &[u8], nonce: [u8; NONCE]) -> Vec<u8> {
        let ad = self.context(b"nautilus/raft-vote/v1", &[node], b"vote");
        seal(&self.log, &ad, vote, nonce)
    }

    /// Opens a vote sealed for replica `node`.
    pub(crate) fn open_vote(&self, node: u64, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let ad = self.context(b"nautilus/raft-vote/v1", &[node], b"vote");
        open(&self.log, &ad, sealed)
    }

    /// Seals the id replica slot `slot` serves under (a voter's, for a cold start of the
    /// whole cluster, when no leader can take a new id in).
    pub(crate) fn seal_replica_id(&self, slot: u8, id: u64, nonce: [u8; NONCE]) -> Vec<u8> {
        let ad = self.context(b"nautilus/replica-id/v1", &[u64::from(slot)], b"id");
        seal(&self.log, &ad, &id.to_be_bytes(), nonce)
    }

    /// Opens the id sealed for slot `slot`.
    pub(crate) fn open_replica_id(&self, slot: u8, sealed: &[u8]) -> Result<u64, SealError> {
        let ad = self.context(b"nautilus/replica-id/v1", &[u64::from(slot)], b"id");
        let bytes = open(&self.log, &ad, sealed)?;
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| SealError::Malformed)?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Seals chunk `index` of snapshot `snapshot`.
    pub(crate) fn seal_chunk(
        &self,
        snapshot: u64,
        index: u32,
        chunk: &[u8],
        nonce: [u8; NONCE],
    ) -> Vec<u8> {
        let ad = self.context(
            b"nautilus/snapshot-chunk/v1",
            &[snapshot, u64::from(index)],
            &[],
        );
        seal(&self.snapshot, &ad, chunk, nonce)
    }

    /// Opens chunk `index` of snapshot `snapshot`.
    pub(crate) fn open_chunk(
        &self,
        snapshot: u64,
        index: u32,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let ad = self.context(
            b"nautilus/snapshot-chunk/v1",
            &[snapshot, u64::from(index)],
            &[],
        );
        open(&self.snapshot, &ad, sealed)
    }

    /// Seals the manifest of snapshot `snapshot`.
    pub(crate) fn seal_manifest(
        &self,
        snapshot: u64,
        manifest: &Manifest,
        nonce: [u8; NONCE],
    ) -> Vec<u8> {
        let ad = self.context(b"nautilus/snapshot-manifest/v1", &[snapshot], &[]);
        let mut plain = Vec::with_capacity(MANIFEST_BYTES);
        plain.extend_from_slice(&manifest.revision.to_be_bytes());
        plain.extend_from_slice(&manifest.position.to_be_bytes());
        plain.extend_from_slice(&manifest.tag);
        plain.extend_from_slice(&manifest.chunks.to_be_bytes());
        plain.extend_from_slice(&manifest.root);
        seal(&self.snapshot, &ad, &plain, nonce)
    }

    /// Opens the manifest of snapshot `snapshot`.
    pub(crate) fn open_manifest(
        &self,
        snapshot: u64,
        sealed: &[u8],
    ) -> Result<Manifest, SealError> {
        let ad = self.context(b"nautilus/snapshot-manifest/v1", &[snapshot], &[]);
        let plain = open(&self.snapshot, &ad, sealed)?;
        if plain.len() != MANIFEST_BYTES {
            return Err(SealError::Malformed);
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&plain[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&plain[16..16 + TAG]);
        let mut chunks = [0u8; 4];
        chunks.copy_from_slice(&plain[16 + TAG..20 + TAG]);
        let mut root = [0u8; 32];
        root.copy_from_slice(&plain[20 + TAG..]);
        Ok(Manifest {
            revision: u64_at(0),
            position: u64_at(8),
            tag,
            chunks: u32::from_be_bytes(chunks),
            root,
        })
    }
}

/// The root hash over sealed chunks.
pub(crate) fn chunk_root<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    root_of(chunks.into_iter().map(chunk_digest))
}

/// One sealed chunk's part of the root.
pub(crate) fn chunk_digest(sealed: &[u8]) -> [u8; 32] {
    Sha256::digest(sealed).into()
}

/// The root over the sealed chunks' digests, in order (what [`chunk_root`] computes).
pub(crate) fn root_of(digests: impl IntoIterator<Item = [u8; 32]>) -> [u8; 32] {
    let mut root = Sha256::new();
    for digest in digests {
        root.update(digest);
    }
    root.finalize().into()
}

fn seal(cipher: &XChaCha20Poly1305, ad: &[u8], plain: &[u8], nonce: [u8; NONCE]) -> Vec<u8> {
    let sealed = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plain,
                aad: ad,
            },
        )
        // Encryption fails only for inputs over 2^38 bytes; ours are bounded far below.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open(cipher: &XChaCha20Poly1305, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < 1 + NONCE + TAG || sealed.first() != Some(&VERSION) {
        return Err(SealError::Malformed);
    }
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&sealed[1..1 + NONCE]);
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed[1 + NONCE..],
                aad: ad,
            },
        )
        .map_err(|_| SealError::Forged)
}

/// Fresh random nonce bytes from the OS (inside the enclave: the Nitro RNG the kernel feeds).
pub(crate) fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    // getrandom fails only without any OS generator; then a zero nonce would be reused, so
    // stop instead of sealing.
    if let Err(e) = getrandom::fill(&mut n) {
        tracing::error!("no randomness for a nonce: {e}");
        std::process::abort();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cluster: &str) -> Keys {
        Keys::derive(&[7; 32], cluster)
    }

    /// Every way to forge a record, table-driven: each must fail to open.
    #[test]
    fn every_forgery_of_a_record_is_refused() {
        let k = keys("c1");
        let first = k.seal_record(1, &GENESIS, 10, b"one", nonce());
        let second = k.seal_record(2, &first.tag, 11, b"two", nonce());
        assert_eq!(
            k.open_record(2, &first.tag, &second.bytes).unwrap(),
            (11, b"two".to_vec(), second.tag)
        );
        let flip = |at: usize| {
            let mut b = second.bytes.clone();
            b[at] ^= 1;
            b
        };
        let other_cluster = keys("c2").seal_record(2, &first.tag, 11, b"two", nonce());
        let other_key =
            Keys::derive(&[8; 32], "c1").seal_record(2, &first.tag, 11, b"two", nonce());
        type Case = (&'static str, u64, [u8; TAG], Vec<u8>, SealError);
        let cases: Vec<Case> = vec![
            (
                "flipped nonce byte",
                2,
                first.tag,
                flip(3),
                SealError::Forged,
            ),
            (
                "flipped ciphertext byte",
                2,
                first.tag,
                flip(30),
                SealError::Forged,
            ),
            (
                "flipped tag byte",
                2,
                first.tag,
                flip(second.bytes.len() - 1),
                SealError::Forged,
            ),
            (
                "unknown version",
                2,
                first.tag,
                flip(0),
                SealError::Malformed,
            ),
            (
                "truncated",
                2,
                first.tag,
                second.bytes[..20].to_vec(),
                SealError::Malformed,
            ),
            (
                "another position",
                3,
                first.tag,
                second.bytes.clone(),
                SealError::Forged,
            ),
            (
                "reordered (first at 2)",
                2,
                first.tag,
                first.bytes.clone(),
                SealError::Forged,
            ),
            (
                "a gap (after genesis)",
                2,
                GENESIS,
                second.bytes.clone(),
                SealError::Forged,
            ),
            (
                "duplicated (second again at 3)",
                3,
                second.tag,
                second.bytes.clone(),
                SealError::Forged,
            ),
            (
                "another cluster",
                2,
                first.tag,
                other_cluster.bytes,
                SealError::Forged,
            ),
            (
                "another data key",
                2,
                first.tag,
                other_key.bytes,
                SealError::Forged,
            ),
        ];
        for (name, position, previous, bytes, want) in cases {
            assert_eq!(
                k.open_record(position, &previous, &bytes).unwrap_err(),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn a_vote_opens_only_for_its_node_and_cluster() {
        let k = keys("c1");
        let sealed = k.seal_vote(7, b"term 3 for 7", nonce());
        assert_eq!(k.open_vote(7, &sealed).unwrap(), b"term 3 for 7");
        assert_eq!(k.open_vote(8, &sealed).unwrap_err(), SealError::Forged);
        assert_eq!(
            keys("c2").open_vote(7, &sealed).unwrap_err(),
            SealError::Forged
        );
        let record = k.seal_record(7, &GENESIS, 0, b"term 3 for 7", nonce());
        assert!(
            k.open_vote(7, &record.bytes).is_err(),
            "a record is not a vote"
        );
    }

    #[test]
    fn the_same_position_sealed_twice_uses_unrelated_nonces() {
        let k = keys("c1");
        let a = k.seal_record(5, &GENESIS, 1, b"same", nonce());
        let b = k.seal_record(5, &GENESIS, 1, b"same", nonce());
        assert_ne!(a.bytes[1..25], b.bytes[1..25]);
        assert_ne!(a.tag, b.tag);
    }

    #[test]
    fn manifests_and_chunks_bind_their_snapshot_and_index() {
        let k = keys("c1");
        let chunks: Vec<Vec<u8>> = (0..3u32)
            .map(|i| k.seal_chunk(9, i, &[i as u8; 5], nonce()))
            .collect();
        let manifest = Manifest {
            revision: 77,
            position: 40,
            tag: [3; TAG],
            chunks: 3,
            root: chunk_root(chunks.iter().map(Vec::as_slice)),
        };
        let sealed = k.seal_manifest(9, &manifest, nonce());
        assert_eq!(k.open_manifest(9, &sealed).unwrap(), manifest);
        assert_eq!(k.open_manifest(8, &sealed).unwrap_err(), SealError::Forged);
        assert_eq!(
            keys("c2").open_manifest(9, &sealed).unwrap_err(),
            SealError::Forged
        );
        assert_eq!(k.open_chunk(9, 1, &chunks[1]).unwrap(), vec![1; 5]);
        assert_eq!(
            k.open_chunk(9, 2, &chunks[1]).unwrap_err(),
            SealError::Forged
        );
        assert_eq!(
            k.open_chunk(10, 1, &chunks[1]).unwrap_err(),
            SealError::Forged
        );
        let swapped = [
            chunks[1].as_slice(),
            chunks[0].as_slice(),
            chunks[2].as_slice(),
        ];
        assert_ne!(chunk_root(swapped), manifest.root);
    }
}
