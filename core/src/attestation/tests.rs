//! Verification of the real Nitro document, every-byte mutations, crafted bad chains and bad
//! CBOR. Crafted certificates are built here with a tiny DER writer and p384 keys.

use super::*;
use alloc::string::ToString;
use alloc::vec;

const REAL_HEX: &str = include_str!("../../tests/fixtures/nitro/real-attestation-1.hex");
/// The document's own timestamp (fixture README).
const REAL_AT: u64 = 1_731_627_989_450;
/// The leaf is valid for about three hours (2024-11-14 21:24:26 to 2024-11-15 00:24:29 UTC).
const THREE_HOURS_MS: u64 = 3 * 3600 * 1000;

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn real() -> Vec<u8> {
    unhex(REAL_HEX)
}

fn root() -> Vec<u8> {
    pinned_root_der(AWS_NITRO_ROOT_G1_PEM).unwrap()
}

/// Bytes between mutated positions: every byte. The P-384 crates are optimised even in dev
/// builds (workspace Cargo.toml), so the full sweep costs seconds, not minutes;
/// NAUTILUS_ATTESTATION_STRIDE=N samples every Nth byte for quick local runs.
fn stride() -> usize {
    std::env::var("NAUTILUS_ATTESTATION_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Where a sub-slice of `whole` starts.
fn offset_of(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

#[test]
fn real_document_verifies_at_its_time_with_the_published_fields() {
    let v = verify(&real(), &root(), REAL_AT, &Policy::default()).unwrap();
    assert_eq!(v.module_id, "i-0f73a4b4cb74cc9f2-enc0192e4188fef781d");
    assert_eq!(v.timestamp_ms, REAL_AT);
    assert!(!v.simulated);
    assert_eq!(v.pcrs.len(), 16);
    for i in 0..3 {
        assert_eq!(
            v.pcrs[&i],
            vec![0u8; 48],
            "debug-mode enclave: PCR{i} is zero"
        );
    }
    assert_eq!(
        v.pcrs[&3],
        unhex(
            "639a8b65f68b0223cbb14a0032487e5656d260434e3d1a10e7ec1407fb86143860717fc8afee90df7a1604111709af46"
        )
    );
    assert_eq!(
        v.pcrs[&4],
        unhex(
            "9ab5a1aba055ee41ee254b9b251a58259b29fa1096859762744e9ac73b5869b25e51223854d9f86adbb37fe69f3e5d1c"
        )
    );
    assert_eq!(v.public_key, None);
    assert_eq!(v.nonce, None);
    assert_eq!(
        v.user_data,
        Some(unhex(
            "5a264748a62368075d34b9494634a3e096e0e48f6647f965b81d2a653de684f2"
        ))
    );
    // Near the leaf's notBefore (the fixture README's suggested clock) it still verifies.
    verify(&real(), &root(), 1_731_627_987_382, &Policy::default()).unwrap();
}

#[test]
fn real_document_fails_three_hours_later_and_before_the_leaf() {
    let later = verify(
        &real(),
        &root(),
        REAL_AT + THREE_HOURS_MS,
        &Policy::default(),
    );
    assert_eq!(
        later,
        Err(AttestationError::Certificate {
            index: 0,
            reason: "expired at the time checked"
        })
    );
    let before = verify(
        &real(),
        &root(),
        REAL_AT - THREE_HOURS_MS,
        &Policy::default(),
    );
    assert_eq!(
        before,
        Err(AttestationError::Certificate {
            index: 0,
            reason: "not yet valid at the time checked"
        })
    );
}

#[test]
fn spki_is_found_in_any_certificate() {
    let doc = real();
    let leaf = parse(&doc).unwrap().certificate;
    let spki = subject_public_key_info(leaf).unwrap();
    // id-ecPublicKey + secp384r1 and a 97-byte point: 120 bytes.
    assert_eq!(spki.len(), 120);
    assert_eq!(&spki[..2], &[0x30, 0x76]);
    assert_eq!(subject_public_key_info(&leaf[..100]), None);
}

#[test]
fn pinned_root_fingerprint_is_checked() {
    assert_eq!(Sha256::digest(root()).as_slice(), AWS_NITRO_ROOT_G1_SHA256);
    // Another certificate (the document's leaf) is not the root.
    use base64::Engine as _;
    let doc = real();
    let leaf = parse(&doc).unwrap().certificate;
    let pem = alloc::format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(leaf)
    );
    assert!(matches!(
        pinned_root_der(&pem),
        Err(AttestationError::BadRoot(_))
    ));
    assert!(matches!(
        pinned_root_der("junk"),
        Err(AttestationError::BadRoot(_))
    ));
    // The right document against a wrong pinned root.
    assert_eq!(
        verify(&doc, leaf, REAL_AT, &Policy::default()),
        Err(AttestationError::UntrustedRoot)
    );
}

#[test]
fn policy_checks_pcrs_and_nonce() {
    let doc = real();
    let mut policy = Policy::default();
    policy.expected_pcrs.insert(0, vec![0u8; 48]);
    policy.expected_pcrs.insert(
        3,
        unhex("639a8b65f68b0223cbb14a0032487e5656d260434e3d1a10e7ec1407fb86143860717fc8afee90df7a1604111709af46"),
    );
    verify(&doc, &root(), REAL_AT, &policy).unwrap();
    policy.expected_pcrs.insert(4, vec![0u8; 48]);
    assert_eq!(
        verify(&doc, &root(), REAL_AT, &policy),
        Err(AttestationError::PcrMismatch(4))
    );
    policy.expected_pcrs.remove(&4);
    policy.expected_pcrs.insert(20, vec![0u8; 48]);
    assert_eq!(
        verify(&doc, &root(), REAL_AT, &policy),
        Err(AttestationError::PcrMissing(20))
    );
    let nonce = Policy {
        expected_nonce: Some(vec![1, 2, 3]),
        ..Policy::default()
    };
    assert_eq!(
        verify(&doc, &root(), REAL_AT, &nonce),
        Err(AttestationError::NonceMismatch)
    );
}

/// Every byte of the COSE signature; the payload (which holds the leaf and the cabundle) and
/// the envelope at [`stride`].
#[test]
fn every_single_byte_change_of_the_document_fails() {
    let doc = real();
    let root = root();
    let parsed = parse(&doc).unwrap();
    let sig_at = offset_of(&doc, parsed.signature);
    let payload_at = offset_of(&doc, parsed.payload);
    let payload_len = parsed.payload.len();
    let step = stride();
    let positions = (sig_at..sig_at + 96)
        .chain((0..payload_at).step_by(1))
        .chain((payload_at..payload_at + payload_len).step_by(step))
        .chain(sig_at - 3..sig_at);
    let mut checked = 0;
    for i in positions {
        let mut m = doc.clone();
        m[i] ^= 1 << (i % 8);
        assert!(
            verify(&m, &root, REAL_AT, &Policy::default()).is_err(),
            "byte {i} changed and the document still verifies"
        );
        checked += 1;
    }
    assert!(checked > 96 + payload_len / step.max(1) - 1);
}

/// The chain check alone (no document signature to mask it) rejects a change in any byte of
/// any certificate: leaf, each intermediate and the root's own self-signature.
#[test]
fn every_single_byte_change_of_each_certificate_fails_the_chain() {
    let doc = real();
    let parsed = parse(&doc).unwrap();
    verify_chain(parsed.certificate, &parsed.cabundle, REAL_AT).unwrap();
    let step = stride();
    let certs: Vec<&[u8]> = core::iter::once(parsed.certificate)
        .chain(parsed.cabundle.iter().copied())
        .collect();
    for (which, cert) in certs.iter().enumerate() {
        // Offset the sampled positions per certificate so strides land on different fields.
        for i in (which % step..cert.len()).step_by(step) {
            let mut m = cert.to_vec();
            m[i] ^= 1 << (i % 8);
            let mut bundle = parsed.cabundle.clone();
            let result = if which == 0 {
                verify_chain(&m, &bundle, REAL_AT)
            } else {
                bundle[which - 1] = &m;
                verify_chain(parsed.certificate, &bundle, REAL_AT)
            };
            assert!(
                result.is_err(),
                "certificate {which} byte {i} changed, chain accepted"
            );
        }
    }
}

#[test]
fn a_dropped_intermediate_fails() {
    let doc = real();
    let parsed = parse(&doc).unwrap();
    for drop in 1..parsed.cabundle.len() {
        let mut bundle = parsed.cabundle.clone();
        bundle.remove(drop);
        let err = verify_chain(parsed.certificate, &bundle, REAL_AT).unwrap_err();
        assert!(
            matches!(err, AttestationError::Certificate { reason, .. } if reason.contains("issuer name")),
            "{err}"
        );
    }
    // The same inside a re-encoded document: refused (the payload no longer matches either).
    let rebuilt = Builder::real_parts(&parsed)
        .with(
            "cabundle",
            cbor_array(&[parsed.cabundle[0], parsed.cabundle[1], parsed.cabundle[3]]),
        )
        .encode_with_signature(parsed.protected, parsed.signature);
    assert!(verify(&rebuilt, &root(), REAL_AT, &Policy::default()).is_err());
    // The builder itself is faithful: unchanged parts give back the exact document.
    let same =
        Builder::real_parts(&parsed).encode_with_signature(parsed.protected, parsed.signature);
    assert_eq!(same, doc);
}

#[test]
fn a_cose_tag_18_is_accepted_and_other_tags_refused() {
    let doc = real();
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&doc);
    verify(&tagged, &root(), REAL_AT, &Policy::default()).unwrap();
    let mut wrong = vec![0xd1];
    wrong.extend_from_slice(&doc);
    assert_eq!(
        parse(&wrong),
        Err(AttestationError::Format("tag is not COSE_Sign1 (18)"))
    );
}

#[test]
fn every_truncation_is_refused() {
    let doc = real();
    for len in 0..doc.len() {
        assert!(parse(&doc[..len]).is_err(), "prefix of {len} bytes parsed");
    }
    let mut longer = doc.clone();
    longer.push(0);
    assert_eq!(
        parse(&longer),
        Err(AttestationError::Cbor("trailing bytes"))
    );
}

#[test]
fn malformed_cbor_is_refused_with_a_reason() {
    let mut deep = vec![0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa1, 0x01];
    deep.extend(core::iter::repeat_n(0x81, 1000));
    deep.push(0x00);
    let mut big = vec![0x84];
    big.resize(MAX_DOCUMENT_BYTES + 1, 0);
    let cases: &[(&[u8], AttestationError)] = &[
        (b"", AttestationError::Cbor("truncated")),
        (&[0xa0], AttestationError::Cbor("expected an array")),
        (
            &[0x83, 0x40, 0xa0, 0x40],
            AttestationError::Format("COSE_Sign1 is not an array of 4"),
        ),
        (&[0x9f], AttestationError::Cbor("indefinite length")),
        (
            &[0x1c],
            AttestationError::Cbor("reserved additional information"),
        ),
        // A byte string claiming 2^64-1 bytes: refused before allocating.
        (
            &[0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            AttestationError::Cbor("length larger than the bytes left"),
        ),
        (
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            AttestationError::Cbor("count larger than the bytes left"),
        ),
        (
            &[0x9a, 0x00, 0x01, 0x00, 0x00],
            AttestationError::Cbor("count larger than the bytes left"),
        ),
        // Protected header a map instead of a byte string.
        (
            &[0x84, 0xa0, 0xa0, 0x40, 0x40],
            AttestationError::Cbor("expected a byte string"),
        ),
        // Protected header holding an empty map: no alg.
        (
            &[0x84, 0x41, 0xa0, 0xa0, 0x40, 0x40],
            AttestationError::Format("protected header has no alg"),
        ),
        (&deep, AttestationError::Cbor("nesting too deep")),
        (&big, AttestationError::TooLarge(MAX_DOCUMENT_BYTES + 1)),
    ];
    for (input, want) in cases {
        assert_eq!(
            parse(input).as_ref().err(),
            Some(want),
            "{:02x?}",
            &input[..input.len().min(12)]
        );
    }
}

#[test]
fn unknown_algorithms_and_critical_headers_are_refused() {
    let doc = real();
    let parsed = parse(&doc).unwrap();
    let cases: &[(&[u8], AttestationError)] = &[
        // {1: -7} ES256
        (
            &[0xa1, 0x01, 0x26],
            AttestationError::UnsupportedAlgorithm(Some(-7)),
        ),
        // {1: -36} ES512
        (
            &[0xa1, 0x01, 0x38, 0x23],
            AttestationError::UnsupportedAlgorithm(Some(-36)),
        ),
        // {1: "ES384"}
        (
            &[0xa1, 0x01, 0x65, b'E', b'S', b'3', b'8', b'4'],
            AttestationError::UnsupportedAlgorithm(None),
        ),
        // {1: -35, 2: [1]} critical headers
        (
            &[0xa2, 0x01, 0x38, 0x22, 0x02, 0x81, 0x01],
            AttestationError::Format("critical headers are not supported"),
        ),
        // {1: -35, 1: -35}
        (
            &[0xa2, 0x01, 0x38, 0x22, 0x01, 0x38, 0x22],
            AttestationError::Format("alg appears twice"),
        ),
        // {"x": 1}
        (
            &[0xa1, 0x61, b'x', 0x01],
            AttestationError::Format("protected header label is not an integer"),
        ),
    ];
    for (protected, want) in cases {
        let m = Builder::real_parts(&parsed).encode_with_signature(protected, parsed.signature);
        assert_eq!(parse(&m).as_ref().err(), Some(want), "{protected:02x?}");
    }
    // Another known label beside alg (content type 3) is harmless to parsing; the signature
    // then fails because the protected bytes are signed.
    let m = Builder::real_parts(&parsed)
        .encode_with_signature(&[0xa2, 0x01, 0x38, 0x22, 0x03, 0x00], parsed.signature);
    assert!(parse(&m).is_ok());
    assert_eq!(
        verify(&m, &root(), REAL_AT, &Policy::default()),
        Err(AttestationError::BadSignature)
    );
}

#[test]
fn missing_fields_wrong_types_and_bounds_are_refused() {
    let doc = real();
    let parsed = parse(&doc).unwrap();
    for field in [
        "module_id",
        "digest",
        "timestamp",
        "pcrs",
        "certificate",
        "cabundle",
    ] {
        let m = Builder::real_parts(&parsed)
            .without(field)
            .encode_with_signature(parsed.protected, parsed.signature);
        let want = alloc::format!("missing {field}");
        match parse(&m) {
            Err(AttestationError::Format(r)) => assert_eq!(r, want),
            other => panic!("{field}: {other:?}"),
        }
    }
    let pcr32 = {
        let mut v = vec![0xa1, 0x00, 0x58, 32];
        v.extend_from_slice(&[0; 32]);
        v
    };
    let big_user_data = {
        let mut v = vec![0x59, 0x02, 0x01];
        v.extend_from_slice(&[0; 513]);
        v
    };
    let cases: &[(&str, Vec<u8>, AttestationError)] = &[
        (
            "pcrs",
            pcr32,
            AttestationError::Format("PCR value is not 48 bytes (SHA-384)"),
        ),
        (
            "pcrs",
            vec![0xa0],
            AttestationError::Format("pcrs must hold 1 to 32 entries"),
        ),
        (
            "digest",
            cbor_text("SHA256"),
            AttestationError::Format("digest is not SHA384"),
        ),
        (
            "timestamp",
            cbor_text("now"),
            AttestationError::Cbor("expected an unsigned integer"),
        ),
        (
            "module_id",
            vec![0x01],
            AttestationError::Cbor("expected a text string"),
        ),
        (
            "certificate",
            cbor_text("x"),
            AttestationError::Cbor("expected a byte string"),
        ),
        (
            "cabundle",
            vec![0x80],
            AttestationError::Format("cabundle must hold 1 to 8 certificates"),
        ),
        (
            "user_data",
            big_user_data,
            AttestationError::Format("user_data longer than 512 bytes"),
        ),
        (
            "nonce",
            vec![0x01],
            AttestationError::Cbor("expected a byte string"),
        ),
    ];
    for (field, value, want) in cases {
        let m = Builder::real_parts(&parsed)
            .with(field, value.clone())
            .encode_with_signature(parsed.protected, parsed.signature);
        assert_eq!(parse(&m).as_ref().err(), Some(want), "{field}");
    }
}

/// Random inputs and random mutations of the real document never panic (a cheap, always-run
/// stand-in for the fuzz target in core/fuzz).
#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let doc = real();
    let root = root();
    for _ in 0..3000 {
        let len = (next() % 600) as usize;
        let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = verify(&input, &root, REAL_AT, &Policy::default());
    }
    // Mutations of the real document mostly parse, so keep them few (each costs a
    // verification when it does).
    for _ in 0..60 {
        let mut m = doc.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % m.len();
            m[at] = next() as u8;
        }
        if next() % 3 == 0 {
            m.truncate((next() as usize) % m.len());
        }
        assert!(verify(&m, &root, REAL_AT, &Policy::default()).is_err() || m == doc);
    }
}

fn cbor_text(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    cbor::write_head(&mut out, cbor::TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    out
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor::write_head(&mut out, cbor::BYTES, b.len() as u64);
    out.extend_from_slice(b);
    out
}

fn cbor_array(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor::write_head(&mut out, cbor::ARRAY, items.len() as u64);
    for i in items {
        out.extend(cbor_bytes(i));
    }
    out
}

/// Re-encodes a payload field by field (in the NSM's order), so tests can drop or replace one.
struct Builder {
    fields: Vec<(String, Vec<u8>)>,
}

impl Builder {
    fn real_parts(p: &Document<'_>) -> Self {
        let mut r = cbor::Reader::new(p.payload);
        let n = r.map().unwrap();
        let mut fields = Vec::new();
        for _ in 0..n {
            let key = r.text().unwrap().to_string();
            let rest = &p.payload[p.payload.len() - r.remaining()..];
            r.skip(0).unwrap();
            let used = rest.len() - r.remaining();
            fields.push((key, rest[..used].to_vec()));
        }
        Self { fields }
    }

    fn with(mut self, key: &str, value: Vec<u8>) -> Self {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.fields.push((key.to_string(), value)),
        }
        self
    }

    fn without(mut self, key: &str) -> Self {
        self.fields.retain(|(k, _)| k != key);
        self
    }

    fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        cbor::write_head(&mut out, cbor::MAP, self.fields.len() as u64);
        for (k, v) in &self.fields {
            out.extend(cbor_text(k));
            out.extend_from_slice(v);
        }
        out
    }

    fn encode_with_signature(&self, protected: &[u8], signature: &[u8]) -> Vec<u8> {
        let mut out = vec![0x84];
        out.extend(cbor_bytes(protected));
        out.push(0xa0);
        out.extend(cbor_bytes(&self.payload()));
        out.extend(cbor_bytes(signature));
        out
    }

    fn sign(&self, key: &p384::ecdsa::SigningKey) -> Vec<u8> {
        use p384::ecdsa::signature::Signer as _;
        let protected = [0xa1, 0x01, 0x38, 0x22];
        let sig: p384::ecdsa::Signature = key.sign(&sig_structure(&protected, &self.payload()));
        self.encode_with_signature(&protected, &sig.to_bytes())
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn name(cn: &str) -> Vec<u8> {
    let atv = seq(&[&der(0x06, &[0x55, 0x04, 0x03]), &der(0x0c, cn.as_bytes())]);
    seq(&[&der(0x31, &atv)])
}

const SHA384_ALG: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const SHA256_ALG: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// What a crafted certificate says.
#[derive(Clone, Copy)]
struct Spec {
    /// basicConstraints (cA, pathLen); `None` leaves the extension out.
    ca: Option<(bool, Option<u8>)>,
    /// First keyUsage byte; `None` leaves the extension out.
    ku: Option<u8>,
    /// An unknown extension (1.2.3.4), critical or not.
    unknown: Option<bool>,
    alg: &'static [u8],
    /// GeneralizedTime instead of UTCTime.
    generalized: bool,
}

const LEAF: Spec = Spec {
    ca: Some((false, None)),
    ku: Some(0x80),
    unknown: None,
    alg: SHA384_ALG,
    generalized: false,
};
const CA: Spec = Spec {
    ca: Some((true, None)),
    ku: Some(0x06),
    ..LEAF
};

fn key(n: u8) -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[n; 48]).unwrap()
}

fn cert(subject: &str, issuer: &str, subject_key: u8, issuer_key: u8, spec: Spec) -> Vec<u8> {
    use p384::ecdsa::signature::Signer as _;
    let point = key(subject_key).verifying_key().to_sec1_point(false);
    let mut bits = vec![0u8];
    bits.extend_from_slice(point.as_bytes());
    let spki = seq(&[
        &seq(&[
            &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            &der(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x22]),
        ]),
        &der(0x03, &bits),
    ]);
    let validity = if spec.generalized {
        seq(&[
            &der(0x18, b"20240101000000Z"),
            &der(0x18, b"20341231000000Z"),
        ])
    } else {
        seq(&[&der(0x17, b"240101000000Z"), &der(0x17, b"341231000000Z")])
    };
    let mut exts = Vec::new();
    if let Some((ca, path_len)) = spec.ca {
        let mut bc = Vec::new();
        if ca {
            bc.extend(der(0x01, &[0xff]));
        }
        if let Some(p) = path_len {
            bc.extend(der(0x02, &[p]));
        }
        exts.extend(seq(&[
            &der(0x06, &[0x55, 0x1d, 0x13]),
            &der(0x01, &[0xff]),
            &der(0x04, &der(0x30, &bc)),
        ]));
    }
    if let Some(ku) = spec.ku {
        exts.extend(seq(&[
            &der(0x06, &[0x55, 0x1d, 0x0f]),
            &der(0x01, &[0xff]),
            &der(0x04, &der(0x03, &[0x01, ku])),
        ]));
    }
    if let Some(critical) = spec.unknown {
        exts.extend(seq(&[
            &der(0x06, &[0x2a, 0x03, 0x04]),
            &der(0x01, &[if critical { 0xff } else { 0x00 }]),
            &der(0x04, &[0x05, 0x00]),
        ]));
    }
    let tbs = seq(&[
        &der(0xa0, &der(0x02, &[2])),
        &der(0x02, &[subject_key]),
        spec.alg,
        &name(issuer),
        &validity,
        &name(subject),
        &spki,
        &der(0xa3, &der(0x30, &exts)),
    ]);
    let sig: p384::ecdsa::Signature = key(issuer_key).sign(&tbs);
    let mut sig_bits = vec![0u8];
    sig_bits.extend_from_slice(sig.to_der().as_bytes());
    seq(&[&tbs, spec.alg, &der(0x03, &sig_bits)])
}

/// 2025-01-01, inside every crafted certificate's validity.
const CRAFTED_AT: u64 = 1_735_689_600_000;

/// A simulated-style document: root (key 1) → intermediate (key 2) → leaf (key 3).
fn crafted(module_id: &str, root: Spec, inter: Spec, leaf: Spec) -> Vec<u8> {
    let root_der = cert("test root", "test root", 1, 1, root);
    let inter_der = cert("test intermediate", "test root", 2, 1, inter);
    let leaf_der = cert("test leaf", "test intermediate", 3, 2, leaf);
    let mut pcrs = vec![0xa1, 0x00, 0x58, 48];
    pcrs.extend_from_slice(&[0u8; 48]);
    Builder { fields: Vec::new() }
        .with("module_id", cbor_text(module_id))
        .with("digest", cbor_text("SHA384"))
        .with(
            "timestamp",
            vec![0x1b, 0, 0, 0x01, 0x94, 0x20, 0x6b, 0x2c, 0x00],
        )
        .with("pcrs", pcrs)
        .with("certificate", cbor_bytes(&leaf_der))
        .with("cabundle", cbor_array(&[&root_der, &inter_der]))
        .with("public_key", cbor_bytes(&[4; 97]))
        .with("user_data", vec![0xf6])
        .with("nonce", cbor_bytes(b"abc"))
        .sign(&key(3))
}

fn allow() -> Policy {
    Policy {
        allow_simulated: true,
        ..Policy::default()
    }
}

#[test]
fn simulated_documents_need_the_policy_and_their_own_root() {
    let doc = crafted("simulated-enclave", CA, CA, LEAF);
    assert_eq!(
        verify(&doc, &root(), CRAFTED_AT, &Policy::default()),
        Err(AttestationError::Simulated)
    );
    let v = verify(&doc, &root(), CRAFTED_AT, &allow()).unwrap();
    assert!(v.simulated);
    assert_eq!(v.nonce.as_deref(), Some(&b"abc"[..]));
    assert_eq!(v.public_key, Some(vec![4; 97]));
    assert_eq!(v.user_data, None);
    let nonce = Policy {
        expected_nonce: Some(b"abd".to_vec()),
        ..allow()
    };
    assert_eq!(
        verify(&doc, &root(), CRAFTED_AT, &nonce),
        Err(AttestationError::NonceMismatch)
    );
    // A document that does not say it is simulated must chain to the pinned root.
    let posing = crafted("i-0123-enc0123", CA, CA, LEAF);
    assert_eq!(
        verify(&posing, &root(), CRAFTED_AT, &allow()),
        Err(AttestationError::UntrustedRoot)
    );
    // Generalized times read as well as UTC times.
    let generalized = Spec {
        generalized: true,
        ..LEAF
    };
    verify(
        &crafted("simulated-g", CA, CA, generalized),
        &root(),
        CRAFTED_AT,
        &allow(),
    )
    .unwrap();
}

#[test]
fn crafted_chains_with_bad_constraints_are_refused() {
    let ca_path0 = Spec {
        ca: Some((true, Some(0))),
        ..CA
    };
    let ca_path1 = Spec {
        ca: Some((true, Some(1))),
        ..CA
    };
    type Case = (
        &'static str,
        Spec,
        Spec,
        Spec,
        Option<(usize, &'static str)>,
    );
    let cases: &[Case] = &[
        ("good", CA, CA, LEAF, None),
        (
            "pathLen 1 on the root allows one intermediate",
            ca_path1,
            ca_path0,
            LEAF,
            None,
        ),
        (
            "leaf with CA flag",
            CA,
            CA,
            Spec {
                ca: Some((true, None)),
                ..LEAF
            },
            Some((0, "leaf has basicConstraints CA true")),
        ),
        (
            "leaf keyCertSign only",
            CA,
            CA,
            Spec {
                ku: Some(0x04),
                ..LEAF
            },
            Some((0, "leaf keyUsage lacks digitalSignature")),
        ),
        (
            "leaf without keyUsage",
            CA,
            CA,
            Spec { ku: None, ..LEAF },
            Some((0, "leaf keyUsage lacks digitalSignature")),
        ),
        (
            "intermediate digitalSignature only",
            CA,
            Spec {
                ku: Some(0x80),
                ..CA
            },
            LEAF,
            Some((1, "issuer keyUsage lacks keyCertSign")),
        ),
        (
            "intermediate not a CA",
            CA,
            Spec {
                ca: Some((false, None)),
                ..CA
            },
            LEAF,
            Some((1, "issuer is not a CA (basicConstraints)")),
        ),
        (
            "intermediate without basicConstraints",
            CA,
            Spec { ca: None, ..CA },
            LEAF,
            Some((1, "issuer is not a CA (basicConstraints)")),
        ),
        (
            "root pathLen 0 above an intermediate",
            ca_path0,
            CA,
            LEAF,
            Some((2, "pathLenConstraint exceeded")),
        ),
        (
            "unknown critical extension",
            CA,
            CA,
            Spec {
                unknown: Some(true),
                ..LEAF
            },
            Some((0, "unknown critical extension")),
        ),
        (
            "unknown non-critical extension",
            CA,
            CA,
            Spec {
                unknown: Some(false),
                ..LEAF
            },
            None,
        ),
        (
            "ecdsa-with-SHA256",
            CA,
            Spec {
                alg: SHA256_ALG,
                ..CA
            },
            LEAF,
            Some((1, "signature algorithm is not ecdsa-with-SHA384")),
        ),
    ];
    for (what, root_spec, inter, leaf, want) in cases {
        let doc = crafted("simulated-x", *root_spec, *inter, *leaf);
        let got = verify(&doc, &root(), CRAFTED_AT, &allow());
        match want {
            None => assert!(got.is_ok(), "{what}: {got:?}"),
            Some((index, reason)) => assert_eq!(
                got,
                Err(AttestationError::Certificate {
                    index: *index,
                    reason
                }),
                "{what}"
            ),
        }
    }
}
