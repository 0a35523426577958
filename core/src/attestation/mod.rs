//! AWS Nitro attestation documents: a bounded parser and an offline verifier (COSE_Sign1 ES384
//! signature, certificate chain to a pinned root, policy) that never panics and never reads a
//! clock: the time to check validity at is passed in.
//!
//! The document format is AWS's "Nitro Enclaves attestation process" (aws-nitro-enclaves-nsm-api
//! `docs/attestation_process.md`): a COSE_Sign1 (RFC 9052) whose protected header selects ES384
//! and whose payload is a CBOR map with `module_id`, `digest`, `timestamp`, `pcrs`,
//! `certificate`, `cabundle` (root first) and the optional `public_key`, `user_data`, `nonce`.
//! A document of more than [`MAX_DOCUMENT_BYTES`] is refused before any parsing.

mod cbor;
#[cfg(test)]
mod tests;
pub(crate) mod x509;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use p384::ecdsa::signature::Verifier as _;
use sha2::{Digest as _, Sha256};

use cbor::Reader;

/// Largest document accepted; real ones are about 4.5 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Longest `public_key` the NSM accepts.
pub const MAX_PUBLIC_KEY_BYTES: usize = 1024;
/// Longest `user_data` the NSM accepts.
pub const MAX_USER_DATA_BYTES: usize = 512;
/// Longest `nonce` the NSM accepts.
pub const MAX_NONCE_BYTES: usize = 512;
/// Most PCRs a document may carry (the NSM has 32).
pub const MAX_PCRS: usize = 32;
/// Most certificates in `cabundle` (real documents carry 4).
pub const MAX_CABUNDLE: usize = 8;
/// Length of a SHA-384 PCR.
pub const PCR_LEN: usize = 48;
/// `module_id` prefix of documents made by the simulated NSM.
pub const SIMULATED_PREFIX: &str = "simulated-";
/// The AWS Nitro Enclaves root certificate G1 (CN=aws.nitro-enclaves), as AWS publishes it.
pub const AWS_NITRO_ROOT_G1_PEM: &str = include_str!("aws-nitro-root-g1.pem");
/// SHA-256 of [`AWS_NITRO_ROOT_G1_PEM`]'s DER, the fingerprint AWS publishes.
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// COSE algorithm ES384 (RFC 9053 §2.1).
const COSE_ES384: i128 = -35;
const COSE_LABEL_ALG: i128 = 1;
const COSE_LABEL_CRIT: i128 = 2;
const COSE_SIGN1_TAG: u64 = 18;

/// Why a document was refused. Every variant names the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationError {
    /// The document is larger than [`MAX_DOCUMENT_BYTES`].
    TooLarge(usize),
    /// The bytes are not well-formed (definite-length, bounded) CBOR.
    Cbor(&'static str),
    /// Well-formed CBOR, but not a Nitro COSE_Sign1 document (missing or mistyped field, ...).
    Format(&'static str),
    /// The protected header names an algorithm other than ES384 (the COSE value, if integer).
    UnsupportedAlgorithm(Option<i64>),
    /// The COSE_Sign1 signature does not verify with the leaf certificate's key.
    BadSignature,
    /// A certificate of the chain is refused; `index` 0 is the leaf, then the cabundle from
    /// the leaf's issuer up to the root.
    Certificate {
        /// Position in the chain, 0 = leaf.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The chain does not end at the pinned root.
    UntrustedRoot,
    /// A simulated-NSM document, and the policy does not allow those.
    Simulated,
    /// The document's nonce is not the one expected.
    NonceMismatch,
    /// A PCR the policy names is absent from the document.
    PcrMissing(u8),
    /// A PCR differs from the policy's value.
    PcrMismatch(u8),
    /// The pinned root PEM is unreadable or its fingerprint is not AWS's.
    BadRoot(&'static str),
}

impl core::fmt::Display for AttestationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge(n) => write!(
                f,
                "document of {n} bytes is larger than {MAX_DOCUMENT_BYTES}"
            ),
            Self::Cbor(r) => write!(f, "malformed CBOR: {r}"),
            Self::Format(r) => write!(f, "not a Nitro attestation document: {r}"),
            Self::UnsupportedAlgorithm(Some(a)) => {
                write!(f, "algorithm {a} is not ES384 (-35)")
            }
            Self::UnsupportedAlgorithm(None) => f.write_str("algorithm is not ES384 (-35)"),
            Self::BadSignature => {
                f.write_str("COSE_Sign1 signature does not verify with the leaf certificate")
            }
            Self::Certificate { index: 0, reason } => write!(f, "leaf certificate: {reason}"),
            Self::Certificate { index, reason } => {
                write!(f, "certificate {index} above the leaf: {reason}")
            }
            Self::UntrustedRoot => f.write_str("the chain does not end at the pinned root"),
            Self::Simulated => {
                f.write_str("document comes from a simulated NSM (not allowed by the policy)")
            }
            Self::NonceMismatch => f.write_str("nonce differs from the one sent"),
            Self::PcrMissing(i) => write!(f, "PCR{i} is absent from the document"),
            Self::PcrMismatch(i) => write!(f, "PCR{i} differs from the expected value"),
            Self::BadRoot(r) => write!(f, "pinned root: {r}"),
        }
    }
}

/// A parsed, not yet verified, document; slices borrow the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    /// The protected header bytes, as signed.
    pub protected: &'a [u8],
    /// The payload bytes, as signed.
    pub payload: &'a [u8],
    /// The 96-byte `r || s` signature.
    pub signature: &'a [u8],
    /// Enclave (module) id.
    pub module_id: &'a str,
    /// Unix milliseconds when the NSM made the document.
    pub timestamp_ms: u64,
    /// PCR index → value ([`PCR_LEN`] bytes each).
    pub pcrs: BTreeMap<u8, &'a [u8]>,
    /// The leaf certificate (DER).
    pub certificate: &'a [u8],
    /// Issuing chain, root first (DER each).
    pub cabundle: Vec<&'a [u8]>,
    /// Optional public key the enclave bound.
    pub public_key: Option<&'a [u8]>,
    /// Optional user data.
    pub user_data: Option<&'a [u8]>,
    /// Optional nonce.
    pub nonce: Option<&'a [u8]>,
}

/// What a verified document says, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDocument {
    /// Enclave (module) id.
    pub module_id: String,
    /// Unix milliseconds when the NSM made the document.
    pub timestamp_ms: u64,
    /// PCR index → value.
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    /// The public key the enclave bound (for Nautilus: its SEC1 P-384 identity key).
    pub public_key: Option<Vec<u8>>,
    /// The user data (for Nautilus: [`crate::signed_answer::user_data`]).
    pub user_data: Option<Vec<u8>>,
    /// The nonce the document answers.
    pub nonce: Option<Vec<u8>>,
    /// True for a simulated-NSM document (only returned when the policy allowed it).
    pub simulated: bool,
    /// Leaf validity, unix seconds (inclusive).
    pub leaf_not_after: u64,
}

/// What a verified document must also satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// PCR index → expected value; every one named must be present and equal.
    pub expected_pcrs: BTreeMap<u8, Vec<u8>>,
    /// The nonce the client sent; `None` skips the check (offline verification).
    pub expected_nonce: Option<Vec<u8>>,
    /// Accept simulated-NSM documents, chained to their own cabundle root instead of the
    /// pinned one.
    pub allow_simulated: bool,
}

impl Policy {
    /// Checks the nonce and PCRs of an already verified document.
    pub fn check(&self, doc: &VerifiedDocument) -> Result<(), AttestationError> {
        if let Some(want) = &self.expected_nonce
            && doc.nonce.as_deref() != Some(want.as_slice())
        {
            return Err(AttestationError::NonceMismatch);
        }
        for (index, want) in &self.expected_pcrs {
            match doc.pcrs.get(index) {
                None => return Err(AttestationError::PcrMissing(*index)),
                Some(got) if got != want => return Err(AttestationError::PcrMismatch(*index)),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Decodes a PEM certificate and checks its SHA-256 fingerprint against
/// [`AWS_NITRO_ROOT_G1_SHA256`]; returns the DER to pin.
pub fn pinned_root_der(pem: &str) -> Result<Vec<u8>, AttestationError> {
    let der = pem_to_der(pem).ok_or(AttestationError::BadRoot("not a PEM certificate"))?;
    if Sha256::digest(&der).as_slice() != AWS_NITRO_ROOT_G1_SHA256 {
        return Err(AttestationError::BadRoot(
            "SHA-256 fingerprint is not the AWS Nitro root G1's",
        ));
    }
    Ok(der)
}

/// The DER inside the first `CERTIFICATE` PEM block of `pem`.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let body = pem.get(start.saturating_add(27)..)?;
    let end = body.find("-----END CERTIFICATE-----")?;
    let text: String = body
        .get(..end)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The DER SubjectPublicKeyInfo of an X.509 certificate of any key type (`None` if the DER
/// does not hold one), as hashed into [`crate::signed_answer::user_data`].
pub fn subject_public_key_info(cert_der: &[u8]) -> Option<&[u8]> {
    x509::subject_public_key_info(cert_der)
}

/// Parses a document without verifying anything but its shape and the NSM's bounds.
pub fn parse(doc: &[u8]) -> Result<Document<'_>, AttestationError> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(AttestationError::TooLarge(doc.len()));
    }
    let mut r = Reader::new(doc);
    if r.peek().map(|b| b >> 5) == Some(cbor::TAG) {
        let (_, tag) = r.head()?;
        if tag != COSE_SIGN1_TAG {
            return Err(AttestationError::Format("tag is not COSE_Sign1 (18)"));
        }
    }
    if r.array()? != 4 {
        return Err(AttestationError::Format("COSE_Sign1 is not an array of 4"));
    }
    let protected = r.bytes()?;
    check_protected(protected)?;
    // Unprotected header: a map we need nothing from (Nitro's is empty).
    if r.peek().map(|b| b >> 5) != Some(cbor::MAP) {
        return Err(AttestationError::Format("unprotected header is not a map"));
    }
    r.skip(0)?;
    if r.peek() == Some(cbor::NULL) {
        return Err(AttestationError::Format("detached payload"));
    }
    let payload = r.bytes()?;
    let signature = r.bytes()?;
    r.finish()?;
    if signature.len() != 96 {
        return Err(AttestationError::Format("ES384 signature is not 96 bytes"));
    }
    parse_payload(protected, payload, signature)
}

fn check_protected(protected: &[u8]) -> Result<(), AttestationError> {
    let mut h = Reader::new(protected);
    let n = h.map()?;
    let mut alg = None;
    for _ in 0..n {
        match h.int() {
            Ok(COSE_LABEL_ALG) => {
                if alg.is_some() {
                    return Err(AttestationError::Format("alg appears twice"));
                }
                alg = Some(
                    h.int()
                        .map_err(|_| AttestationError::UnsupportedAlgorithm(None))?,
                );
            }
            // A critical-headers list means "refuse unless you understand these": we don't.
            Ok(COSE_LABEL_CRIT) => {
                return Err(AttestationError::Format(
                    "critical headers are not supported",
                ));
            }
            Ok(_) => h.skip(1)?,
            Err(AttestationError::Cbor("expected an integer")) => {
                return Err(AttestationError::Format(
                    "protected header label is not an integer",
                ));
            }
            Err(e) => return Err(e),
        }
    }
    h.finish()?;
    match alg {
        Some(COSE_ES384) => Ok(()),
        Some(other) => Err(AttestationError::UnsupportedAlgorithm(
            i64::try_from(other).ok(),
        )),
        None => Err(AttestationError::Format("protected header has no alg")),
    }
}

fn parse_payload<'a>(
    protected: &'a [u8],
    payload: &'a [u8],
    signature: &'a [u8],
) -> Result<Document<'a>, AttestationError> {
    let mut r = Reader::new(payload);
    let n = r.map()?;
    let mut module_id = None;
    let mut digest = None;
    let mut timestamp = None;
    let mut pcrs = None;
    let mut certificate = None;
    let mut cabundle = None;
    let mut public_key = None;
    let mut user_data = None;
    let mut nonce = None;
    for _ in 0..n {
        let key = r
            .text()
            .map_err(|_| AttestationError::Format("payload key is not a text string"))?;
        let dup = match key {
            "module_id" => module_id.replace(r.text()?).is_some(),
            "digest" => digest.replace(r.text()?).is_some(),
            "timestamp" => timestamp.replace(r.uint()?).is_some(),
            "pcrs" => pcrs.replace(read_pcrs(&mut r)?).is_some(),
            "certificate" => certificate.replace(r.bytes()?).is_some(),
            "cabundle" => cabundle.replace(read_cabundle(&mut r)?).is_some(),
            "public_key" => public_key
                .replace(bounded(
                    r.optional_bytes()?,
                    MAX_PUBLIC_KEY_BYTES,
                    "public_key",
                )?)
                .is_some(),
            "user_data" => user_data
                .replace(bounded(
                    r.optional_bytes()?,
                    MAX_USER_DATA_BYTES,
                    "user_data",
                )?)
                .is_some(),
            "nonce" => nonce
                .replace(bounded(r.optional_bytes()?, MAX_NONCE_BYTES, "nonce")?)
                .is_some(),
            // Fields a later NSM may add are skipped, bounded.
            _ => {
                r.skip(1)?;
                false
            }
        };
        if dup {
            return Err(AttestationError::Format("a payload field appears twice"));
        }
    }
    r.finish()?;
    let module_id = module_id.ok_or(AttestationError::Format("missing module_id"))?;
    if module_id.is_empty() {
        return Err(AttestationError::Format("module_id is empty"));
    }
    if digest.ok_or(AttestationError::Format("missing digest"))? != "SHA384" {
        return Err(AttestationError::Format("digest is not SHA384"));
    }
    let timestamp_ms = timestamp.ok_or(AttestationError::Format("missing timestamp"))?;
    if timestamp_ms == 0 {
        return Err(AttestationError::Format("timestamp is zero"));
    }
    let pcrs = pcrs.ok_or(AttestationError::Format("missing pcrs"))?;
    let certificate = certificate.ok_or(AttestationError::Format("missing certificate"))?;
    if certificate.is_empty() {
        return Err(AttestationError::Format("certificate is empty"));
    }
    let cabundle = cabundle.ok_or(AttestationError::Format("missing cabundle"))?;
    Ok(Document {
        protected,
        payload,
        signature,
        module_id,
        timestamp_ms,
        pcrs,
        certificate,
        cabundle,
        public_key: public_key.flatten(),
        user_data: user_data.flatten(),
        nonce: nonce.flatten(),
    })
}

fn bounded<'a>(
    value: Option<&'a [u8]>,
    max: usize,
    what: &'static str,
) -> Result<Option<&'a [u8]>, AttestationError> {
    match value {
        Some(v) if v.len() > max => Err(AttestationError::Format(match what {
            "public_key" => "public_key longer than 1024 bytes",
            "user_data" => "user_data longer than 512 bytes",
            _ => "nonce longer than 512 bytes",
        })),
        v => Ok(v),
    }
}

fn read_pcrs<'a>(r: &mut Reader<'a>) -> Result<BTreeMap<u8, &'a [u8]>, AttestationError> {
    let n = r.map()?;
    if n == 0 || n > MAX_PCRS {
        return Err(AttestationError::Format("pcrs must hold 1 to 32 entries"));
    }
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let index = r.uint()?;
        let index = u8::try_from(index)
            .ok()
            .filter(|i| usize::from(*i) < MAX_PCRS)
            .ok_or(AttestationError::Format("PCR index above 31"))?;
        let value = r.bytes()?;
        if value.len() != PCR_LEN {
            return Err(AttestationError::Format(
                "PCR value is not 48 bytes (SHA-384)",
            ));
        }
        if out.insert(index, value).is_some() {
            return Err(AttestationError::Format("a PCR appears twice"));
        }
    }
    Ok(out)
}

fn read_cabundle<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a [u8]>, AttestationError> {
    let n = r.array()?;
    if n == 0 || n > MAX_CABUNDLE {
        return Err(AttestationError::Format(
            "cabundle must hold 1 to 8 certificates",
        ));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let cert = r.bytes()?;
        if cert.is_empty() {
            return Err(AttestationError::Format("empty certificate in cabundle"));
        }
        out.push(cert);
    }
    Ok(out)
}

/// COSE Sig_structure for a COSE_Sign1 with empty external_aad (RFC 9052 §4.4).
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 24);
    cbor::write_head(&mut out, cbor::ARRAY, 4);
    cbor::write_head(&mut out, cbor::TEXT, 10);
    out.extend_from_slice(b"Signature1");
    cbor::write_head(&mut out, cbor::BYTES, protected.len() as u64);
    out.extend_from_slice(protected);
    cbor::write_head(&mut out, cbor::BYTES, 0);
    cbor::write_head(&mut out, cbor::BYTES, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// Verifies `doc` at `at_ms` (unix milliseconds) against the pinned root `root_der` and the
/// policy: the COSE_Sign1 ES384 signature with the leaf's key, the chain leaf → cabundle (in
/// reverse) → root, each certificate's validity at `at_ms`, basicConstraints and keyUsage, and
/// then [`Policy::check`].
pub fn verify(
    doc: &[u8],
    root_der: &[u8],
    at_ms: u64,
    policy: &Policy,
) -> Result<VerifiedDocument, AttestationError> {
    let parsed = parse(doc)?;
    let simulated = parsed.module_id.starts_with(SIMULATED_PREFIX);
    if simulated && !policy.allow_simulated {
        return Err(AttestationError::Simulated);
    }
    let root = parsed.cabundle.first().copied().unwrap_or_default();
    // A simulated NSM signs with a throw-away root it puts first in its cabundle; only such a
    // document, and only when allowed, may use it. Everything else chains to the pinned root.
    if !simulated && root != root_der {
        return Err(AttestationError::UntrustedRoot);
    }
    let chain = check_chain(parsed.certificate, &parsed.cabundle, at_ms)?;
    let leaf = chain
        .first()
        .ok_or(AttestationError::Format("empty chain"))?;
    // The document signature first: any payload change fails here, after one verification.
    let message = sig_structure(parsed.protected, parsed.payload);
    let signature = p384::ecdsa::Signature::from_slice(parsed.signature)
        .map_err(|_| AttestationError::BadSignature)?;
    leaf.key
        .verify(&message, &signature)
        .map_err(|_| AttestationError::BadSignature)?;
    check_chain_signatures(&chain)?;
    let verified = VerifiedDocument {
        module_id: parsed.module_id.into(),
        timestamp_ms: parsed.timestamp_ms,
        pcrs: parsed.pcrs.iter().map(|(i, v)| (*i, v.to_vec())).collect(),
        public_key: parsed.public_key.map(<[u8]>::to_vec),
        user_data: parsed.user_data.map(<[u8]>::to_vec),
        nonce: parsed.nonce.map(<[u8]>::to_vec),
        simulated,
        leaf_not_after: leaf.not_after,
    };
    policy.check(&verified)?;
    Ok(verified)
}

/// Parses the chain `leaf` → `cabundle` reversed (root first in `cabundle`, self-issued) and
/// checks everything but signatures at `at_ms`: names, validity, basicConstraints, keyUsage.
/// The caller decides whether the root is trusted.
fn check_chain<'a>(
    leaf: &'a [u8],
    cabundle: &[&'a [u8]],
    at_ms: u64,
) -> Result<Vec<x509::Certificate<'a>>, AttestationError> {
    let mut chain = Vec::with_capacity(cabundle.len().saturating_add(1));
    for (index, der) in core::iter::once(&leaf)
        .chain(cabundle.iter().rev())
        .enumerate()
    {
        chain.push(x509::parse(der).map_err(|r| x509::at(index, r))?);
    }
    let last = chain.len().saturating_sub(1);
    for (index, cert) in chain.iter().enumerate() {
        let (from, to) = (cert.not_before, cert.not_after);
        if at_ms < from.saturating_mul(1000) {
            return Err(x509::at(index, "not yet valid at the time checked"));
        }
        if at_ms > to.saturating_mul(1000).saturating_add(999) {
            return Err(x509::at(index, "expired at the time checked"));
        }
        if index == 0 {
            if cert.ca {
                return Err(x509::at(0, "leaf has basicConstraints CA true"));
            }
            if cert.key_usage.unwrap_or(0) & x509::KU_DIGITAL_SIGNATURE == 0 {
                return Err(x509::at(0, "leaf keyUsage lacks digitalSignature"));
            }
        } else {
            if !cert.ca {
                return Err(x509::at(index, "issuer is not a CA (basicConstraints)"));
            }
            if cert.key_usage.unwrap_or(0) & x509::KU_KEY_CERT_SIGN == 0 {
                return Err(x509::at(index, "issuer keyUsage lacks keyCertSign"));
            }
            // pathLenConstraint counts the CA certificates below this one, leaf excluded.
            if cert
                .path_len
                .is_some_and(|p| p < (index as u64).saturating_sub(1))
            {
                return Err(x509::at(index, "pathLenConstraint exceeded"));
            }
        }
        let issuer = chain.get(index.saturating_add(1).min(last)).unwrap_or(cert);
        if cert.issuer != issuer.subject {
            return Err(x509::at(
                index,
                if index == last {
                    "root is not self-issued"
                } else {
                    "issuer name differs from the next certificate's subject"
                },
            ));
        }
    }
    Ok(chain)
}

/// Checks each certificate's signature with the next one's key, the root's with its own.
fn check_chain_signatures(chain: &[x509::Certificate<'_>]) -> Result<(), AttestationError> {
    let last = chain.len().saturating_sub(1);
    for (index, cert) in chain.iter().enumerate() {
        let issuer = chain.get(index.saturating_add(1).min(last)).unwrap_or(cert);
        cert.signed_by(issuer).map_err(|r| x509::at(index, r))?;
    }
    Ok(())
}

/// The whole chain check (tests and callers that have no document signature to check).
#[cfg(test)]
fn verify_chain(leaf: &[u8], cabundle: &[&[u8]], at_ms: u64) -> Result<(), AttestationError> {
    check_chain_signatures(&check_chain(leaf, cabundle, at_ms)?)
}
