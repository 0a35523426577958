//! Signed answers and attestation `user_data`: the byte-exact contract between the enclave that
//! signs and `nautilus-verify`, which checks without any enclave secret (ARCHITECTURE.md §5).
//!
//! A client asks with `X-Nautilus-Sign: 1` and may send `X-Nautilus-Nonce: HEX` (≤ 64 bytes)
//! so that an older answer replayed by the host fails. The answer carries:
//! - `X-Nautilus-Signature`: base64 (standard, padded) of the 96-byte `r || s` ECDSA P-384
//!   signature, SHA-384 over [`canonical_message`], made with the enclave's identity key (the
//!   key the attestation document's `public_key` holds, SEC1 uncompressed).
//! - `X-Nautilus-Revision`: the store revision when the answer was made (decimal).
//! - `X-Nautilus-Timestamp`: the enclave's clock in unix milliseconds (decimal).
//! - `X-Nautilus-Freshness`: how far the answer's state is known to be the newest
//!   ([`Freshness`]): `in-memory` or `unverified`.
//! - `X-Nautilus-Nonce`: the request's nonce echoed, lower-case hex (absent if none was sent).
//!
//! The canonical message is UTF-8 lines joined by `\n` (no trailing newline):
//! ```text
//! nautilus-signed-answer/v2
//! METHOD                       upper case, e.g. GET
//! PATH_AND_QUERY               exactly as the request line had it
//! hex(SHA-256(request body))   lower case; the hash of zero bytes when there is no body
//! STATUS                       decimal, e.g. 200
//! hex(SHA-256(response body))
//! REVISION                     decimal
//! TIMESTAMP_MS                 decimal
//! FRESHNESS                    in-memory | unverified
//! NONCE_HEX                    lower case, empty when none was sent
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use p384::ecdsa::signature::{Signer as _, Verifier as _};
use sha2::{Digest as _, Sha256};

/// Header a client sets to `1` to ask for a signed answer.
pub const SIGN_REQUEST_HEADER: &str = "x-nautilus-sign";
/// Request header carrying the client's nonce (hex); echoed in the answer.
pub const NONCE_HEADER: &str = "x-nautilus-nonce";
/// Answer header with the signature.
pub const SIGNATURE_HEADER: &str = "x-nautilus-signature";
/// Answer header with the store revision.
pub const REVISION_HEADER: &str = "x-nautilus-revision";
/// Answer header with the enclave's time in unix milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-nautilus-timestamp";
/// Answer header with the state's [`Freshness`].
pub const FRESHNESS_HEADER: &str = "x-nautilus-freshness";
/// Longest nonce accepted, in bytes (as for the attestation nonce).
pub const MAX_NONCE_BYTES: usize = 64;

/// How far the state behind an answer is known to be the cluster's newest. Signed, so that the
/// host cannot present a restored cluster as one that never left the enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The state never left this enclave (no durable log): nothing the host keeps could have
    /// been rolled back, and a restart loses it all.
    InMemory,
    /// The state was restored from, and is kept in, the host's sealed log: every byte is
    /// authentic, but a host that served an older valid copy at start (a rollback) cannot be
    /// detected by one enclave alone; a quorum of replicas can.
    Unverified,
}

impl Freshness {
    /// The header value and the canonical message's line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InMemory => "in-memory",
            Self::Unverified => "unverified",
        }
    }

    /// The freshness a header value names.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::InMemory, Self::Unverified]
            .into_iter()
            .find(|f| f.as_str() == text)
    }
}

/// What a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedFields<'a> {
    /// Request method, upper case.
    pub method: &'a str,
    /// Path and query as sent on the request line.
    pub path_and_query: &'a str,
    /// The request body (empty when none).
    pub request_body: &'a [u8],
    /// HTTP status of the answer.
    pub status: u16,
    /// The answer's body.
    pub response_body: &'a [u8],
    /// Store revision when the answer was made.
    pub revision: u64,
    /// Enclave clock, unix milliseconds.
    pub timestamp_ms: u64,
    /// How far the state is known to be the newest.
    pub freshness: Freshness,
    /// The client's nonce bytes (empty when none).
    pub nonce: &'a [u8],
}

/// Why a signed answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The public key is not a valid SEC1 P-384 point.
    BadPublicKey,
    /// The signature is not 96 bytes of a valid `r || s`.
    Malformed,
    /// The signature does not match the fields.
    Mismatch,
}

impl core::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadPublicKey => "the public key is not a P-384 SEC1 point",
            Self::Malformed => "the signature is not a 96-byte P-384 r||s value",
            Self::Mismatch => "the signature does not match the answer",
        })
    }
}

/// The exact bytes that are signed (see the module documentation).
pub fn canonical_message(fields: &SignedFields<'_>) -> Vec<u8> {
    let mut text = String::with_capacity(256 + fields.path_and_query.len());
    let _ = write!(
        text,
        "nautilus-signed-answer/v2\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        fields.method,
        fields.path_and_query,
        hex(&Sha256::digest(fields.request_body)),
        fields.status,
        hex(&Sha256::digest(fields.response_body)),
        fields.revision,
        fields.timestamp_ms,
        fields.freshness.as_str(),
        hex(fields.nonce),
    );
    text.into_bytes()
}

/// Signs `fields` with the identity key: 96 bytes `r || s`.
pub fn sign(key: &p384::ecdsa::SigningKey, fields: &SignedFields<'_>) -> [u8; 96] {
    let signature: p384::ecdsa::Signature = key.sign(&canonical_message(fields));
    let mut out = [0u8; 96];
    out.copy_from_slice(&signature.to_bytes());
    out
}

/// Checks `signature` (96 bytes `r || s`) over `fields` against a SEC1 P-384 public key.
pub fn verify(
    public_key_sec1: &[u8],
    fields: &SignedFields<'_>,
    signature: &[u8],
) -> Result<(), SignatureError> {
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key_sec1)
        .map_err(|_| SignatureError::BadPublicKey)?;
    let signature =
        p384::ecdsa::Signature::from_slice(signature).map_err(|_| SignatureError::Malformed)?;
    key.verify(&canonical_message(fields), &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// What an attestation binds of the TLS the enclave terminates itself: this boot's serving key,
/// and the cluster CA that issued its certificate, which is what kubeconfigs and kubelets trust
/// (it outlives restarts of a durable cluster; the serving key does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsBinding {
    /// SHA-256 of the serving certificate's SubjectPublicKeyInfo (DER).
    pub serving_spki_sha256: [u8; 32],
    /// SHA-256 of the issuing CA certificate's SubjectPublicKeyInfo (DER).
    pub ca_spki_sha256: [u8; 32],
}

/// The attestation document's `user_data`: SHA-256 over the 32-byte digest of the enclave's
/// effective configuration followed, in enclave TLS mode, by the two hashes of [`TlsBinding`]
/// (serving key, then CA), or by 32 zero bytes when the enclave terminates no TLS.
pub fn user_data(config_digest: &[u8; 32], tls: Option<&TlsBinding>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(config_digest);
    match tls {
        Some(tls) => {
            hasher.update(tls.serving_spki_sha256);
            hasher.update(tls.ca_spki_sha256);
        }
        None => hasher.update([0u8; 32]),
    }
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(body: &'a [u8], nonce: &'a [u8]) -> SignedFields<'a> {
        SignedFields {
            method: "GET",
            path_and_query: "/api/v1/namespaces/default/pods/web?x=1",
            request_body: b"",
            status: 200,
            response_body: body,
            revision: 42,
            timestamp_ms: 1_700_000_000_123,
            freshness: Freshness::Unverified,
            nonce,
        }
    }

    #[test]
    fn canonical_message_is_the_documented_lines() {
        let msg = canonical_message(&fields(b"{}", &[0xab, 0x01]));
        let text = core::str::from_utf8(&msg).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[0], "nautilus-signed-answer/v2");
        assert_eq!(lines[1], "GET");
        assert_eq!(lines[2], "/api/v1/namespaces/default/pods/web?x=1");
        // SHA-256 of the empty string.
        assert_eq!(
            lines[3],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(lines[4], "200");
        // SHA-256 of "{}".
        assert_eq!(
            lines[5],
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(lines[6], "42");
        assert_eq!(lines[7], "1700000000123");
        assert_eq!(lines[8], "unverified");
        assert_eq!(lines[9], "ab01");
        for f in [Freshness::InMemory, Freshness::Unverified] {
            assert_eq!(Freshness::parse(f.as_str()), Some(f));
        }
        assert_eq!(Freshness::parse("fresh"), None);
    }

    #[test]
    fn a_signature_verifies_and_any_changed_field_fails() {
        let key = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
        let public = key.verifying_key().to_sec1_point(false);
        let good = fields(b"{\"kind\":\"Pod\"}", b"n");
        let sig = sign(&key, &good);
        assert_eq!(verify(public.as_bytes(), &good, &sig), Ok(()));

        let changed = [
            SignedFields {
                method: "PUT",
                ..good
            },
            SignedFields {
                path_and_query: "/api/v1/namespaces/default/pods/other",
                ..good
            },
            SignedFields {
                request_body: b"x",
                ..good
            },
            SignedFields {
                status: 201,
                ..good
            },
            SignedFields {
                response_body: b"{\"kind\":\"Pod \"}",
                ..good
            },
            SignedFields {
                revision: 41,
                ..good
            },
            SignedFields {
                timestamp_ms: 1,
                ..good
            },
            SignedFields {
                freshness: Freshness::InMemory,
                ..good
            },
            SignedFields {
                nonce: b"m",
                ..good
            },
        ];
        for f in &changed {
            assert_eq!(
                verify(public.as_bytes(), f, &sig),
                Err(SignatureError::Mismatch)
            );
        }
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(verify(public.as_bytes(), &good, &flipped).is_err());
        assert_eq!(
            verify(public.as_bytes(), &good, &sig[..95]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&[4u8; 97], &good, &sig),
            Err(SignatureError::BadPublicKey)
        );
    }

    #[test]
    fn user_data_binds_the_configuration_the_serving_key_and_the_ca() {
        let config = [1u8; 32];
        let tls = TlsBinding {
            serving_spki_sha256: [2u8; 32],
            ca_spki_sha256: [4u8; 32],
        };
        let with_tls = user_data(&config, Some(&tls));
        let without = user_data(&config, None);
        assert_ne!(with_tls, without);
        let mut zero = Sha256::new();
        zero.update(config);
        zero.update([0u8; 32]);
        assert_eq!(without, <[u8; 32]>::from(zero.finalize()));
        assert_ne!(with_tls, user_data(&[3u8; 32], Some(&tls)));
        let other_key = TlsBinding {
            serving_spki_sha256: [5u8; 32],
            ..tls
        };
        let other_ca = TlsBinding {
            ca_spki_sha256: [5u8; 32],
            ..tls
        };
        assert_ne!(with_tls, user_data(&config, Some(&other_key)));
        assert_ne!(with_tls, user_data(&config, Some(&other_ca)));
        // The two hashes are not interchangeable.
        let swapped = TlsBinding {
            serving_spki_sha256: tls.ca_spki_sha256,
            ca_spki_sha256: tls.serving_spki_sha256,
        };
        assert_ne!(with_tls, user_data(&config, Some(&swapped)));
    }
}
