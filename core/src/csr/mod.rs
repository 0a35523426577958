//! The PKCS#10 certificate requests and PEM certificates a CertificateSigningRequest carries,
//! checked as kube-apiserver's validation checks them (`certificates.ParseCSR` then
//! `CheckSignature`; `validateCertificate` for `status.certificate`), with Go's error texts.
//! Signatures: RSA (PKCS#1 v1.5 with SHA-1, SHA-256, SHA-384 or SHA-512; PSS with SHA-256,
//! SHA-384 or SHA-512 and Go's parameters), ECDSA over P-256 or P-384 and Ed25519, as Go's
//! `x509` verifies them. SHA-1 is accepted, as Go accepts it on requests (not on
//! certificates); MD5 is refused as insecure. Go's texts are those of the `crypto/rsa` that
//! kube-apiserver 1.32 runs with (`GODEBUG` defaults of Go 1.23: keys under 1024 bits verify).
//! Two differences: RSA moduli above [`MAX_RSA_BITS`] are refused before any arithmetic (Go
//! has no bound), and ECDSA keys on P-224 and P-521, which Go verifies, are refused as
//! `algorithm unimplemented` (no implementation of those curves is linked into core).

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::attestation::x509::Der;

pub mod authority;
#[cfg(test)]
pub(crate) mod authority_tests;
#[cfg(test)]
mod tests;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OBJECT_IDENTIFIER: u8 = 0x06;
const ATTRIBUTES_TAG: u8 = 0xa0;
/// The DER encoding of an ASN.1 NULL (RSA keys' required algorithm parameters).
const NULL: &[u8] = &[0x05, 0x00];

/// The largest RSA modulus a request may carry, in bits. kube-apiserver has no bound; this
/// one keeps a hostile request from buying big-number work (the `rsa` crate's default bound
/// too, and the largest key any common tool makes).
pub const MAX_RSA_BITS: usize = 8192;

/// Object identifier contents (without tag and length).
mod oid {
    pub(super) const MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
    pub(super) const SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    /// ISO's sha1WithRSASignature, which Go takes as SHA1-RSA.
    pub(super) const ISO_SHA1_RSA: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1d];
    pub(super) const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub(super) const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    pub(super) const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub(super) const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub(super) const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
    pub(super) const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
    pub(super) const DSA_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02];
    pub(super) const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    pub(super) const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub(super) const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub(super) const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub(super) const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub(super) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub(super) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub(super) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub(super) const RSA_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub(super) const EC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub(super) const P224: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x21];
    pub(super) const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub(super) const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub(super) const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
}

/// Go's `x509.ParseCertificateRequest` failure for a request it cannot read.
const MALFORMED: &str = "x509: malformed certificate request";
const UNIMPLEMENTED: &str = "x509: cannot verify signature: algorithm unimplemented";
const RSA_FAILURE: &str = "crypto/rsa: verification error";
const ECDSA_FAILURE: &str = "x509: ECDSA verification failure";
const ED25519_FAILURE: &str = "x509: Ed25519 verification failure";

/// One PEM block: its type, whether it had headers, and its decoded bytes; and the text after it.
struct Block<'a> {
    kind: &'a str,
    headers: bool,
    der: Option<Vec<u8>>,
    rest: &'a str,
}

/// Go's `pem.Decode`: the first `-----BEGIN TYPE-----` ... `-----END TYPE-----` block.
fn pem_block(text: &str) -> Option<Block<'_>> {
    let start = text.find("-----BEGIN ")?;
    let after = text.get(start + 11..)?;
    let (kind, after) = after.split_once("-----")?;
    let end_marker = alloc::format!("-----END {kind}-----");
    let end = after.find(&end_marker)?;
    let body = after.get(..end)?;
    let rest = after.get(end + end_marker.len()..).unwrap_or("");
    let headers = body.lines().any(|l| l.contains(':'));
    let encoded: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok();
    Some(Block {
        kind,
        headers,
        der,
        rest,
    })
}

/// `certificates.ParseCSR` and `CheckSignature` of a request's PEM bytes; `Err` is Go's text.
pub fn check_request(pem: &[u8]) -> Result<(), String> {
    let text = core::str::from_utf8(pem).unwrap_or("");
    let block = pem_block(text)
        .filter(|b| b.kind == "CERTIFICATE REQUEST")
        .ok_or_else(|| String::from("PEM block type must be CERTIFICATE REQUEST"))?;
    let der = block
        .der
        .ok_or_else(|| String::from("PEM block type must be CERTIFICATE REQUEST"))?;
    verify(&der)
}

/// The hashes Go's `x509` signs requests with.
#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// Go's `PublicKeyAlgorithm`: which kind of key a signature algorithm names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyAlgorithm {
    Rsa,
    Dsa,
    Ecdsa,
    Ed25519,
}

impl KeyAlgorithm {
    /// Go's `PublicKeyAlgorithm.String()`.
    const fn name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Dsa => "DSA",
            Self::Ecdsa => "ECDSA",
            Self::Ed25519 => "Ed25519",
        }
    }
}

/// A request's signature algorithm as Go's `getSignatureAlgorithmFromAI` reads it.
enum SignatureAlgorithm {
    /// Signed by a `key` over the `hash` of the request info (over the info itself for
    /// Ed25519); RSA-PSS when `pss`.
    Known {
        hash: Option<Hash>,
        key: KeyAlgorithm,
        pss: bool,
    },
    /// MD5-RSA, which Go refuses as insecure.
    Md5,
    /// MD2-RSA, an identifier Go does not know, or RSA-PSS parameters it does not take.
    Unknown,
}

/// Go's `getSignatureAlgorithmFromAI` of an AlgorithmIdentifier's contents.
fn signature_algorithm(identifier: &[u8]) -> SignatureAlgorithm {
    use KeyAlgorithm::{Dsa, Ecdsa, Ed25519, Rsa};
    let Some((algorithm, parameters)) = algorithm_identifier(identifier) else {
        return SignatureAlgorithm::Unknown;
    };
    let known = |hash, key| SignatureAlgorithm::Known {
        hash: Some(hash),
        key,
        pss: false,
    };
    match algorithm {
        // RFC 8410: the parameters must be absent.
        oid::ED25519 if parameters.is_none() => SignatureAlgorithm::Known {
            hash: None,
            key: Ed25519,
            pss: false,
        },
        oid::RSA_PSS => match parameters.and_then(pss_hash) {
            Some(hash) => SignatureAlgorithm::Known {
                hash: Some(hash),
                key: Rsa,
                pss: true,
            },
            None => SignatureAlgorithm::Unknown,
        },
        oid::MD5_RSA => SignatureAlgorithm::Md5,
        oid::SHA1_RSA | oid::ISO_SHA1_RSA => known(Hash::Sha1, Rsa),
        oid::SHA256_RSA => known(Hash::Sha256, Rsa),
        oid::SHA384_RSA => known(Hash::Sha384, Rsa),
        oid::SHA512_RSA => known(Hash::Sha512, Rsa),
        oid::DSA_SHA1 => known(Hash::Sha1, Dsa),
        oid::DSA_SHA256 => known(Hash::Sha256, Dsa),
        oid::ECDSA_SHA1 => known(Hash::Sha1, Ecdsa),
        oid::ECDSA_SHA256 => known(Hash::Sha256, Ecdsa),
        oid::ECDSA_SHA384 => known(Hash::Sha384, Ecdsa),
        oid::ECDSA_SHA512 => known(Hash::Sha512, Ecdsa),
        // MD2-RSA too: Go knows it but has no hash for it.
        _ => SignatureAlgorithm::Unknown,
    }
}

/// An AlgorithmIdentifier's contents: its object identifier and its parameters' whole
/// encoding, if any (Go's `pkix.AlgorithmIdentifier`, which ignores what follows).
fn algorithm_identifier(contents: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut d = Der::new(contents);
    let algorithm = d.expect(OBJECT_IDENTIFIER, MALFORMED).ok()?;
    let parameters = if d.is_empty() {
        None
    } else {
        Some(d.tlv().ok()?.2)
    };
    Some((algorithm, parameters))
}

/// The hash of RSA-PSS parameters Go takes: the message and MGF1 hashes the same, the salt
/// as long as the hash, the trailer field 1 (RFC 4055's `RSASSA-PSS-params`).
fn pss_hash(parameters: &[u8]) -> Option<Hash> {
    let mut outer = Der::new(parameters);
    let mut p = Der::new(outer.expect(SEQUENCE, MALFORMED).ok()?);
    let hash = hash_algorithm(explicit(&mut p, 0xa0)?)?;
    let (tag, mgf) = explicit(&mut p, 0xa1)?;
    let (mgf_algorithm, mgf_parameters) = algorithm_identifier(mgf)?;
    if tag != SEQUENCE || mgf_algorithm != oid::MGF1 {
        return None;
    }
    let (tag, mgf_hash, _) = Der::new(mgf_parameters?).tlv().ok()?;
    if hash_algorithm((tag, mgf_hash))? != hash {
        return None;
    }
    let salt = explicit(&mut p, 0xa2)?;
    if p.peek() == Some(0xa3) && explicit(&mut p, 0xa3)? != (INTEGER, &[1][..]) {
        return None;
    }
    match (hash, salt) {
        (oid::SHA256, (INTEGER, [32])) => Some(Hash::Sha256),
        (oid::SHA384, (INTEGER, [48])) => Some(Hash::Sha384),
        (oid::SHA512, (INTEGER, [64])) => Some(Hash::Sha512),
        _ => None,
    }
}

/// The one element inside an explicit context `tag`: its tag and contents.
fn explicit<'a>(d: &mut Der<'a>, tag: u8) -> Option<(u8, &'a [u8])> {
    let mut inner = Der::new(d.expect(tag, MALFORMED).ok()?);
    let (t, contents, _) = inner.tlv().ok()?;
    inner.is_empty().then_some((t, contents))
}

/// The object identifier of a hash's AlgorithmIdentifier whose parameters are absent or NULL.
fn hash_algorithm((tag, contents): (u8, &[u8])) -> Option<&[u8]> {
    let (algorithm, parameters) = algorithm_identifier(contents)?;
    (tag == SEQUENCE && parameters.is_none_or(|p| p == NULL)).then_some(algorithm)
}

/// A request's public key as Go's `parsePublicKey` reads it.
enum PublicKey<'a> {
    /// The modulus (big-endian, no leading zero) and the public exponent.
    Rsa {
        n: &'a [u8],
        e: i64,
    },
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    /// P-224 or P-521, which Go verifies and core cannot.
    OtherCurve,
    Ed25519(&'a [u8; 32]),
    /// DSA, which Go parses but verifies nothing with, or an algorithm Go does not know.
    Unverifiable,
}

impl PublicKey<'_> {
    /// Go's `%T` of the parsed key, for the mismatch error.
    const fn go_type(&self) -> &'static str {
        match self {
            Self::Rsa { .. } => "*rsa.PublicKey",
            Self::P256(_) | Self::P384(_) | Self::OtherCurve => "*ecdsa.PublicKey",
            Self::Ed25519(_) => "ed25519.PublicKey",
            Self::Unverifiable => "<nil>",
        }
    }
}

/// Go's `parsePublicKey` of a SubjectPublicKeyInfo's algorithm contents and key bits.
fn public_key<'a>(algorithm: &'a [u8], key: &'a [u8]) -> Result<PublicKey<'a>, String> {
    let (algorithm, parameters) = algorithm_identifier(algorithm).ok_or(MALFORMED)?;
    match algorithm {
        oid::RSA_KEY => rsa_public_key(parameters, key),
        oid::EC_KEY => {
            let curve = parameters
                .and_then(|p| Der::new(p).expect(OBJECT_IDENTIFIER, MALFORMED).ok())
                .ok_or("x509: invalid ECDSA parameters")?;
            match curve {
                oid::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::P256)
                    .map_err(|_| MALFORMED.into()),
                oid::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::P384)
                    .map_err(|_| MALFORMED.into()),
                oid::P224 | oid::P521 => Ok(PublicKey::OtherCurve),
                _ => Err("x509: unsupported elliptic curve".into()),
            }
        }
        oid::ED25519 => {
            if parameters.is_some() {
                return Err("x509: Ed25519 key encoded with illegal parameters".into());
            }
            key.try_into()
                .map(PublicKey::Ed25519)
                .map_err(|_| "x509: wrong Ed25519 public key size".into())
        }
        // DSA (`oid::DSA_KEY`) too.
        _ => Ok(PublicKey::Unverifiable),
    }
}

/// Go's `parsePublicKey` of an RSA key (a PKCS#1 `RSAPublicKey`), then the size bound.
fn rsa_public_key<'a>(parameters: Option<&[u8]>, key: &'a [u8]) -> Result<PublicKey<'a>, String> {
    if parameters != Some(NULL) {
        return Err("x509: RSA key missing NULL parameters".into());
    }
    let mut key = Der::new(key);
    let mut fields = Der::new(
        key.expect(SEQUENCE, MALFORMED)
            .map_err(|_| "x509: invalid RSA public key")?,
    );
    let n = fields
        .expect(INTEGER, MALFORMED)
        .ok()
        .filter(|n| minimal_integer(n))
        .ok_or("x509: invalid RSA modulus")?;
    let e = fields
        .expect(INTEGER, MALFORMED)
        .ok()
        .filter(|e| minimal_integer(e) && e.len() <= 8)
        .ok_or("x509: invalid RSA public exponent")?;
    if n.first().is_some_and(|b| b & 0x80 != 0) || n == [0] {
        return Err("x509: RSA modulus is not a positive number".into());
    }
    let e = e.iter().fold(
        if e.first().is_some_and(|b| b & 0x80 != 0) {
            -1i64
        } else {
            0
        },
        |acc, &b| acc << 8 | i64::from(b),
    );
    if e <= 0 {
        return Err("x509: RSA public exponent is not a positive number".into());
    }
    // A positive minimal INTEGER has at most one leading zero, there to clear the sign bit.
    let n = n.strip_prefix(&[0]).unwrap_or(n);
    let bits = n
        .first()
        .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
    if bits > MAX_RSA_BITS {
        return Err(alloc::format!(
            "crypto/rsa: {bits}-bit keys are larger than the {MAX_RSA_BITS} bits verified here"
        ));
    }
    Ok(PublicKey::Rsa { n, e })
}

/// DER's rule (which Go's `cryptobyte` enforces) for an INTEGER's contents: not empty, and no
/// leading byte that only repeats the sign of the next.
fn minimal_integer(contents: &[u8]) -> bool {
    match contents {
        [] => false,
        [0, next, ..] => next & 0x80 != 0,
        [0xff, next, ..] => next & 0x80 == 0,
        _ => true,
    }
}

/// The signed request info, the signature algorithm and the signature of a DER request, and
/// the subject public key info's algorithm and key bits; then Go's `checkSignature`.
fn verify(der: &[u8]) -> Result<(), String> {
    let parts = Parts::of(der).ok_or(MALFORMED)?;
    let key = public_key(parts.key_algorithm, parts.key)?;
    check_signature(
        &signature_algorithm(parts.algorithm),
        parts.info,
        parts.signature,
        &key,
    )
}

/// The pieces of a DER request that the checks read.
struct Parts<'a> {
    /// The signed CertificationRequestInfo, whole.
    info: &'a [u8],
    /// The signature AlgorithmIdentifier's contents.
    algorithm: &'a [u8],
    signature: &'a [u8],
    /// The SubjectPublicKeyInfo's AlgorithmIdentifier contents and key bits.
    key_algorithm: &'a [u8],
    key: &'a [u8],
}

impl<'a> Parts<'a> {
    /// `None` when Go's `asn1.Unmarshal` of the request would fail.
    fn of(der: &'a [u8]) -> Option<Self> {
        let mut outer = Der::new(der);
        let body = outer.expect(SEQUENCE, MALFORMED).ok()?;
        outer.finish(MALFORMED).ok()?;
        let mut req = Der::new(body);
        let info = req.expect_whole(SEQUENCE, MALFORMED).ok()?;
        let algorithm = req.expect(SEQUENCE, MALFORMED).ok()?;
        let [0, signature @ ..] = req.expect(BIT_STRING, MALFORMED).ok()? else {
            return None;
        };
        req.finish(MALFORMED).ok()?;

        let mut i = Der::new(info);
        let mut i = Der::new(i.expect(SEQUENCE, MALFORMED).ok()?);
        i.expect(INTEGER, MALFORMED).ok()?;
        i.expect(SEQUENCE, MALFORMED).ok()?;
        let spki = i.expect(SEQUENCE, MALFORMED).ok()?;
        if !i.is_empty() {
            i.expect(ATTRIBUTES_TAG, MALFORMED).ok()?;
        }
        let mut s = Der::new(spki);
        let key_algorithm = s.expect(SEQUENCE, MALFORMED).ok()?;
        let [0, key @ ..] = s.expect(BIT_STRING, MALFORMED).ok()? else {
            return None;
        };
        Some(Self {
            info,
            algorithm,
            signature,
            key_algorithm,
            key,
        })
    }
}

/// Go's `checkSignature` with SHA-1 allowed, as `CertificateRequest.CheckSignature` calls it.
fn check_signature(
    algorithm: &SignatureAlgorithm,
    info: &[u8],
    signature: &[u8],
    key: &PublicKey<'_>,
) -> Result<(), String> {
    let (hash, expected, pss) = match *algorithm {
        SignatureAlgorithm::Known { hash, key, pss } => (hash, key, pss),
        SignatureAlgorithm::Md5 => {
            return Err("x509: cannot verify signature: insecure algorithm MD5-RSA".into());
        }
        SignatureAlgorithm::Unknown => return Err(UNIMPLEMENTED.into()),
    };
    let digest = hash.map(|h| h.digest(info));
    let actual = match key {
        PublicKey::Rsa { .. } => KeyAlgorithm::Rsa,
        PublicKey::P256(_) | PublicKey::P384(_) | PublicKey::OtherCurve => KeyAlgorithm::Ecdsa,
        PublicKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        PublicKey::Unverifiable => return Err(UNIMPLEMENTED.into()),
    };
    if actual != expected {
        return Err(alloc::format!(
            "x509: signature algorithm specifies an {} public key, but have public key of type {}",
            expected.name(),
            key.go_type()
        ));
    }
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let result = match (key, hash, digest) {
        (PublicKey::Rsa { n, e }, Some(hash), Some(digest)) => {
            return verify_rsa(n, *e, hash, pss, &digest, signature).map_err(String::from);
        }
        (PublicKey::P256(key), _, Some(digest)) => p256::ecdsa::Signature::from_der(signature)
            .ok()
            .and_then(|sig| key.verify_prehash(&field_sized(&digest, 32), &sig).ok()),
        (PublicKey::P384(key), _, Some(digest)) => p384::ecdsa::Signature::from_der(signature)
            .ok()
            .and_then(|sig| key.verify_prehash(&field_sized(&digest, 48), &sig).ok()),
        (PublicKey::Ed25519(key), None, None) => {
            use ed25519_dalek::Verifier as _;
            let verified = ed25519_dalek::VerifyingKey::from_bytes(key)
                .ok()
                .and_then(|key| {
                    let sig = ed25519_dalek::Signature::from_slice(signature).ok()?;
                    key.verify(info, &sig).ok()
                });
            return verified.ok_or_else(|| ED25519_FAILURE.into());
        }
        _ => return Err(UNIMPLEMENTED.into()),
    };
    result.ok_or_else(|| ECDSA_FAILURE.into())
}

/// A digest as Go's ECDSA reads it: as an integer, so one shorter than half the field (SHA-1
/// on P-384), which the `ecdsa` crate refuses, is left-padded with zeros to the same integer.
fn field_sized(digest: &[u8], field: usize) -> Vec<u8> {
    let mut out = alloc::vec![0; field.saturating_sub(digest.len())];
    out.extend_from_slice(digest);
    out
}

/// Go's `rsa.VerifyPKCS1v15` / `rsa.VerifyPSS` (salt as long as the hash) of a digest, with
/// the key checks of Go's `crypto/rsa` first and in its order.
fn verify_rsa(
    n: &[u8],
    e: i64,
    hash: Hash,
    pss: bool,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), &'static str> {
    use rsa::{BoxedUint, Pkcs1v15Sign, Pss};
    if n == [1] {
        return Err("modulus must be > 1");
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err("crypto/rsa: public modulus is even");
    }
    if e < 2 {
        return Err("crypto/rsa: public exponent too small or negative");
    }
    if e & 1 == 0 {
        return Err("crypto/rsa: public exponent is even");
    }
    if e > i64::from(i32::MAX) {
        return Err("crypto/rsa: public exponent too large");
    }
    if signature.len() != n.len() {
        return Err(RSA_FAILURE);
    }
    // `e` is in 2..2^31 here, `n` odd and within MAX_RSA_BITS: what the constructor still
    // refuses (e not below n) is a key too small to hold any signature, which Go reports as
    // a failed verification.
    let key = rsa::PublicKey::new_with_size_limits(
        BoxedUint::from_be_slice_vartime(n),
        BoxedUint::from(e.unsigned_abs()),
        1..=MAX_RSA_BITS,
    )
    .map_err(|_| RSA_FAILURE)?;
    let verified = match (pss, hash) {
        (false, Hash::Sha1) => key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), digest, signature),
        (false, Hash::Sha256) => key.verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature),
        (false, Hash::Sha384) => key.verify(Pkcs1v15Sign::new::<Sha384>(), digest, signature),
        (false, Hash::Sha512) => key.verify(Pkcs1v15Sign::new::<Sha512>(), digest, signature),
        (true, Hash::Sha256) => key.verify(Pss::<Sha256>::new(), digest, signature),
        (true, Hash::Sha384) => key.verify(Pss::<Sha384>::new(), digest, signature),
        (true, Hash::Sha512) => key.verify(Pss::<Sha512>::new(), digest, signature),
        // Go's parameters never name PSS with SHA-1.
        (true, Hash::Sha1) => return Err(UNIMPLEMENTED),
    };
    verified.map_err(|_| RSA_FAILURE)
}

/// `validateCertificate`: empty, or only `CERTIFICATE` PEM blocks without headers, each holding
/// a certificate; `Err` is kube's text.
pub fn check_certificates(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let mut text = core::str::from_utf8(pem).unwrap_or("");
    let mut blocks = 0usize;
    while let Some(block) = pem_block(text) {
        if block.kind != "CERTIFICATE" {
            return Err(alloc::format!(
                "only CERTIFICATE PEM blocks are allowed, found {}",
                crate::gostr::quote(block.kind)
            ));
        }
        if block.headers {
            return Err("no PEM block headers are permitted".into());
        }
        let der = block.der.unwrap_or_default();
        let mut d = Der::new(&der);
        let whole = d
            .expect(SEQUENCE, "x509: malformed certificate")
            .and_then(|body| {
                d.finish("x509: trailing data")?;
                let mut c = Der::new(body);
                c.expect(SEQUENCE, "x509: malformed tbs certificate")?;
                c.expect(SEQUENCE, "x509: malformed signature algorithm identifier")?;
                c.expect(BIT_STRING, "x509: malformed signature")?;
                c.finish("x509: malformed certificate")
            });
        whole.map_err(String::from)?;
        blocks += 1;
        text = block.rest;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}
