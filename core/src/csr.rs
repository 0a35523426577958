//! The PKCS#10 certificate requests and PEM certificates a CertificateSigningRequest carries,
//! checked as kube-apiserver's validation checks them (`certificates.ParseCSR` then
//! `CheckSignature`; `validateCertificate` for `status.certificate`), with Go's error texts.
//! Signatures: ECDSA over P-256 or P-384 with SHA-256 or SHA-384 (what kubelets and most
//! tools make) and Ed25519; an RSA request is refused as `algorithm unimplemented`, which kube
//! would accept (no RSA implementation is linked into core).

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384};

use crate::attestation::x509::Der;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const ATTRIBUTES_TAG: u8 = 0xa0;

/// AlgorithmIdentifier contents (OID, no parameters).
const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_SHA384: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// SubjectPublicKeyInfo algorithm contents: id-ecPublicKey with its named curve.
const EC_P256: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07,
];
const EC_P384: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
];

/// Go's `x509.ParseCertificateRequest` failure for a request it cannot read.
const MALFORMED: &str = "x509: malformed certificate request";
const UNIMPLEMENTED: &str = "x509: cannot verify signature: algorithm unimplemented";

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
    verify(&der).map_err(String::from)
}

/// The signed request info, the signature algorithm and the signature of a DER request, and
/// the subject public key info's algorithm and key bits.
fn verify(der: &[u8]) -> Result<(), &'static str> {
    let mut outer = Der::new(der);
    let body = outer.expect(SEQUENCE, MALFORMED).map_err(|_| MALFORMED)?;
    outer.finish(MALFORMED).map_err(|_| MALFORMED)?;
    let mut req = Der::new(body);
    let info = req
        .expect_whole(SEQUENCE, MALFORMED)
        .map_err(|_| MALFORMED)?;
    let algorithm = req.expect(SEQUENCE, MALFORMED).map_err(|_| MALFORMED)?;
    let signature = match req.expect(BIT_STRING, MALFORMED).map_err(|_| MALFORMED)? {
        [0, rest @ ..] => rest,
        _ => return Err(MALFORMED),
    };
    req.finish(MALFORMED).map_err(|_| MALFORMED)?;

    let mut i = Der::new(info);
    let mut i = Der::new(i.expect(SEQUENCE, MALFORMED).map_err(|_| MALFORMED)?);
    i.expect(INTEGER, MALFORMED).map_err(|_| MALFORMED)?;
    i.expect(SEQUENCE, MALFORMED).map_err(|_| MALFORMED)?;
    let spki = i.expect(SEQUENCE, MALFORMED).map_err(|_| MALFORMED)?;
    if !i.is_empty() {
        i.expect(ATTRIBUTES_TAG, MALFORMED).map_err(|_| MALFORMED)?;
    }
    let mut s = Der::new(spki);
    let key_algorithm = s.expect(SEQUENCE, MALFORMED).map_err(|_| MALFORMED)?;
    let key = match s.expect(BIT_STRING, MALFORMED).map_err(|_| MALFORMED)? {
        [0, rest @ ..] => rest,
        _ => return Err(MALFORMED),
    };

    let ecdsa_digest = match algorithm {
        ECDSA_SHA256 => Some(Sha256::digest(info).to_vec()),
        ECDSA_SHA384 => Some(Sha384::digest(info).to_vec()),
        ED25519 => None,
        _ => return Err(UNIMPLEMENTED),
    };
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    match (key_algorithm, ecdsa_digest) {
        (EC_P256, Some(digest)) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| MALFORMED)?;
            let sig = p256::ecdsa::Signature::from_der(signature)
                .map_err(|_| "x509: ECDSA verification failure")?;
            key.verify_prehash(&digest, &sig)
                .map_err(|_| "x509: ECDSA verification failure")
        }
        (EC_P384, Some(digest)) => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| MALFORMED)?;
            let sig = p384::ecdsa::Signature::from_der(signature)
                .map_err(|_| "x509: ECDSA verification failure")?;
            key.verify_prehash(&digest, &sig)
                .map_err(|_| "x509: ECDSA verification failure")
        }
        (ED25519, None) => {
            use ed25519_dalek::Verifier as _;
            let key: &[u8; 32] = key.try_into().map_err(|_| MALFORMED)?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| MALFORMED)?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| "x509: Ed25519 verification failure")?;
            key.verify(info, &sig)
                .map_err(|_| "x509: Ed25519 verification failure")
        }
        // A key and a signature algorithm that do not belong together, or RSA.
        _ => Err(UNIMPLEMENTED),
    }
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
