//! The SIMULATED NSM (development only). It makes attestation documents in the exact format of
//! the Nitro device — so the verifier's parser and checks run against real bytes — but signs
//! them through a throw-away chain generated at start, which nothing trusts:
//!
//! - root CA (P-384, self-signed, 30 years) → intermediate CA (30 days) → leaf (3 hours, renewed
//!   an hour before it ends, like the device's short-lived instance certificates); CAs carry
//!   basicConstraints CA:TRUE and keyUsage keyCertSign + cRLSign, the leaf CA:FALSE and
//!   digitalSignature; every signature is ECDSA P-384 with SHA-384.
//! - the document is an untagged COSE_Sign1 array `[protected = bstr({1: -35}), {}, payload,
//!   signature]`, the 96-byte `r || s` ES384 signature over the Sig_structure
//!   `["Signature1", protected, h'', payload]` made with the leaf key.
//! - the payload is a CBOR map with text keys in the device's order: `module_id`
//!   (`simulated-` + 16 random hex digits), `digest` ("SHA384"), `timestamp` (unix ms),
//!   `pcrs` (0..=15 → 48 zero bytes: nothing was measured), `certificate` (leaf DER),
//!   `cabundle` ([root DER, intermediate DER], root first as the device sends it),
//!   `public_key`, `user_data`, `nonce` (bstr, or null when empty).
//!
//! Keys and serial numbers come from the OS generator (`getrandom`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ciborium::value::Value;
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P384_SHA384, RemoteKeyPair, SerialNumber, SignatureAlgorithm,
};

use super::{MAX_FIELD_BYTES, Nsm, NsmError};

/// PCRs in a document (the device reports 0..=15 for an enclave).
pub(crate) const PCR_COUNT: u16 = 16;
/// Bytes of a SHA-384 PCR.
pub(crate) const PCR_BYTES: usize = 48;
/// COSE algorithm id of ES384 (RFC 9053).
const COSE_ES384: i64 = -35;
/// COSE header label `alg`.
const COSE_ALG: i64 = 1;

const ROOT_LIFETIME: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const LEAF_LIFETIME: Duration = Duration::from_secs(3 * 3600);
/// A leaf with less than this left is replaced before signing.
const LEAF_RENEW_BEFORE: Duration = Duration::from_secs(3600);
/// Certificates start this much before "now" so a verifier with a slightly slow clock accepts.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// A P-384 key that rcgen signs certificates with (ECDSA-SHA384, DER signatures).
struct P384Signer {
    key: SigningKey,
    public_sec1: Vec<u8>,
}

impl RemoteKeyPair for P384Signer {
    fn public_key(&self) -> &[u8] {
        &self.public_sec1
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: p384::ecdsa::Signature = self.key.sign(msg);
        Ok(signature.to_der().as_bytes().to_vec())
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P384_SHA384
    }
}

/// A fresh P-384 key from the OS generator, as an rcgen key pair and the p384 key itself.
fn new_key() -> Result<(KeyPair, SigningKey), NsmError> {
    for _ in 0..16 {
        let mut scalar = [0u8; 48];
        getrandom::fill(&mut scalar)
            .map_err(|e| NsmError::Unavailable(format!("no OS randomness: {e}")))?;
        if let Ok(key) = SigningKey::from_slice(&scalar) {
            let signer = P384Signer {
                public_sec1: key.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
                key: key.clone(),
            };
            let pair = KeyPair::from_remote(Box::new(signer)).map_err(cert_error)?;
            return Ok((pair, key));
        }
    }
    Err(NsmError::Device("no valid P-384 scalar in 16 draws".into()))
}

fn cert_error(e: rcgen::Error) -> NsmError {
    NsmError::Device(format!("making a simulated certificate failed: {e}"))
}

fn random_serial() -> Result<SerialNumber, NsmError> {
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial)
        .map_err(|e| NsmError::Unavailable(format!("no OS randomness: {e}")))?;
    // A positive INTEGER with no leading zero byte (RFC 5280 §4.1.2.2).
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&serial))
}

fn datetime(at: SystemTime) -> time::OffsetDateTime {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn params(
    common_name: &str,
    now: SystemTime,
    lifetime: Duration,
    ca: bool,
) -> Result<CertificateParams, NsmError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "US");
    name.push(
        DnType::OrganizationName,
        "Nautilus (SIMULATED NSM, development only)",
    );
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.serial_number = Some(random_serial()?);
    params.not_before = datetime(now - CLOCK_SKEW);
    params.not_after = datetime(now + lifetime);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    }
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The current leaf certificate and its key.
struct Leaf {
    key: SigningKey,
    der: Vec<u8>,
    renew_at: SystemTime,
}

/// A leaf certificate for `module_id` issued by the intermediate CA.
fn issue_leaf(
    module_id: &str,
    intermediate: &Certificate,
    intermediate_key: &KeyPair,
    now: SystemTime,
) -> Result<Leaf, NsmError> {
    let (pair, key) = new_key()?;
    let cert = params(module_id, now, LEAF_LIFETIME, false)?
        .signed_by(&pair, intermediate, intermediate_key)
        .map_err(cert_error)?;
    Ok(Leaf {
        key,
        der: cert.der().to_vec(),
        renew_at: now + LEAF_LIFETIME - LEAF_RENEW_BEFORE,
    })
}

/// The development NSM.
pub(crate) struct SimulatedNsm {
    module_id: String,
    root_der: Vec<u8>,
    intermediate: Certificate,
    intermediate_key: KeyPair,
    leaf: Mutex<Leaf>,
    /// PCR 0..[`PCR_COUNT`]: zeros (nothing was measured), unless a test measured something.
    pcrs: Vec<Vec<u8>>,
}

impl SimulatedNsm {
    /// Generates the throw-away chain and a module id.
    pub(crate) fn new() -> Result<Self, NsmError> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id)
            .map_err(|e| NsmError::Unavailable(format!("no OS randomness: {e}")))?;
        let module_id = format!("simulated-{}", hex::encode(id));
        let now = SystemTime::now();
        let (root_key, _) = new_key()?;
        let root = params(
            "nautilus simulated NSM root (development only)",
            now,
            ROOT_LIFETIME,
            true,
        )?
        .self_signed(&root_key)
        .map_err(cert_error)?;
        let (intermediate_key, _) = new_key()?;
        let intermediate = params(
            "nautilus simulated NSM intermediate (development only)",
            now,
            INTERMEDIATE_LIFETIME,
            true,
        )?
        .signed_by(&intermediate_key, &root, &root_key)
        .map_err(cert_error)?;
        let leaf = issue_leaf(&module_id, &intermediate, &intermediate_key, now)?;
        Ok(Self {
            module_id,
            root_der: root.der().to_vec(),
            intermediate,
            intermediate_key,
            leaf: Mutex::new(leaf),
            pcrs: vec![vec![0u8; PCR_BYTES]; usize::from(PCR_COUNT)],
        })
    }

    /// The same module, as if it had measured `value` into PCR `index` (tests of peers running
    /// another image).
    #[cfg(test)]
    pub(crate) fn measuring(mut self, index: u16, value: [u8; PCR_BYTES]) -> Self {
        if let Some(pcr) = self.pcrs.get_mut(usize::from(index)) {
            *pcr = value.to_vec();
        }
        self
    }

    /// The leaf key and certificate to sign with now, renewing a leaf close to its end.
    fn current_leaf(&self, now: SystemTime) -> Result<(SigningKey, Vec<u8>), NsmError> {
        let mut leaf = self
            .leaf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now >= leaf.renew_at {
            *leaf = issue_leaf(
                &self.module_id,
                &self.intermediate,
                &self.intermediate_key,
                now,
            )?;
        }
        Ok((leaf.key.clone(), leaf.der.clone()))
    }

    /// The document for the given fields at time `now`.
    fn document(
        &self,
        now: SystemTime,
        user_data: &[u8],
        nonce: &[u8],
        public_key: &[u8],
    ) -> Result<Vec<u8>, NsmError> {
        for (name, field) in [
            ("user_data", user_data),
            ("nonce", nonce),
            ("public_key", public_key),
        ] {
            if field.len() > MAX_FIELD_BYTES {
                return Err(NsmError::InvalidInput(format!(
                    "{name} of {} bytes is longer than {MAX_FIELD_BYTES}",
                    field.len()
                )));
            }
        }
        let (leaf_key, leaf_der) = self.current_leaf(now)?;
        let timestamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let text = |s: &str| Value::Text(s.to_string());
        let bytes_or_null = |b: &[u8]| {
            if b.is_empty() {
                Value::Null
            } else {
                Value::Bytes(b.to_vec())
            }
        };
        let pcrs = (0..PCR_COUNT)
            .zip(&self.pcrs)
            .map(|(i, pcr)| (Value::Integer(i.into()), Value::Bytes(pcr.clone())))
            .collect();
        let payload = Value::Map(vec![
            (text("module_id"), text(&self.module_id)),
            (text("digest"), text("SHA384")),
            (text("timestamp"), Value::Integer(timestamp.into())),
            (text("pcrs"), Value::Map(pcrs)),
            (text("certificate"), Value::Bytes(leaf_der)),
            (
                text("cabundle"),
                Value::Array(vec![
                    Value::Bytes(self.root_der.clone()),
                    Value::Bytes(self.intermediate.der().to_vec()),
                ]),
            ),
            (text("public_key"), bytes_or_null(public_key)),
            (text("user_data"), bytes_or_null(user_data)),
            (text("nonce"), bytes_or_null(nonce)),
        ]);
        let payload = encode(&payload)?;
        let protected = encode(&Value::Map(vec![(
            Value::Integer(COSE_ALG.into()),
            Value::Integer(COSE_ES384.into()),
        )]))?;
        let to_sign = sig_structure(&protected, &payload)?;
        let signature: p384::ecdsa::Signature = leaf_key.sign(&to_sign);
        encode(&Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ]))
    }
}

/// COSE_Sign1's Sig_structure (RFC 9052 §4.4) with no external data.
pub(crate) fn sig_structure(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, NsmError> {
    encode(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

fn encode(value: &Value) -> Result<Vec<u8>, NsmError> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .map_err(|e| NsmError::Device(format!("CBOR encoding failed: {e}")))?;
    Ok(out)
}

impl Nsm for SimulatedNsm {
    fn attest(
        &self,
        user_data: &[u8],
        nonce: &[u8],
        public_key: &[u8],
    ) -> Result<Vec<u8>, NsmError> {
        self.document(SystemTime::now(), user_data, nonce, public_key)
    }

    fn random(&self, out: &mut [u8]) -> Result<(), NsmError> {
        getrandom::fill(out).map_err(|e| NsmError::Unavailable(format!("no OS randomness: {e}")))
    }

    fn describe_pcr(&self, index: u16) -> Result<Vec<u8>, NsmError> {
        if let Some(pcr) = self.pcrs.get(usize::from(index)) {
            Ok(pcr.clone())
        } else {
            Err(NsmError::InvalidInput(format!(
                "PCR {index} does not exist (0..{PCR_COUNT})"
            )))
        }
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn module_id(&self) -> String {
        self.module_id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::Verifier as _;
    use x509_parser::prelude::{FromDer as _, X509Certificate};

    fn map_get<'a>(map: &'a Value, key: &str) -> &'a Value {
        map.as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {key}"))
    }

    /// The parts of a document: protected bytes, unprotected map, payload bytes, signature.
    fn parts(doc: &[u8]) -> (Vec<u8>, Value, Vec<u8>, Vec<u8>) {
        let value: Value = ciborium::from_reader(doc).unwrap();
        let items = value.into_array().expect("an untagged array");
        assert_eq!(items.len(), 4);
        let mut it = items.into_iter();
        let protected = it.next().unwrap().into_bytes().unwrap();
        let unprotected = it.next().unwrap();
        let payload = it.next().unwrap().into_bytes().unwrap();
        let signature = it.next().unwrap().into_bytes().unwrap();
        (protected, unprotected, payload, signature)
    }

    fn verifying_key(cert: &X509Certificate<'_>) -> p384::ecdsa::VerifyingKey {
        p384::ecdsa::VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data)
            .unwrap()
    }

    fn check_issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) {
        assert_eq!(child.issuer(), issuer.subject());
        // ecdsa-with-SHA384 (RFC 5758).
        assert_eq!(
            child.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.10045.4.3.3"
        );
        let signature = p384::ecdsa::DerSignature::from_bytes(&child.signature_value.data).unwrap();
        verifying_key(issuer)
            .verify(child.tbs_certificate.as_ref(), &signature)
            .unwrap();
    }

    #[test]
    fn the_document_is_an_aws_format_cose_sign1_signed_by_the_leaf() {
        let nsm = SimulatedNsm::new().unwrap();
        let identity = SigningKey::from_slice(&[9u8; 48]).unwrap();
        let public = identity.verifying_key().to_sec1_point(false);
        let doc = nsm
            .attest(&[7u8; 32], b"nonce-1", public.as_bytes())
            .unwrap();
        let (protected, unprotected, payload, signature) = parts(&doc);
        // {1: -35}: alg ES384, exactly as the device encodes it.
        assert_eq!(protected, [0xa1, 0x01, 0x38, 0x22]);
        assert_eq!(unprotected, Value::Map(Vec::new()));
        assert_eq!(signature.len(), 96);

        let body: Value = ciborium::from_reader(payload.as_slice()).unwrap();
        let keys: Vec<&str> = body
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_text().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "module_id",
                "digest",
                "timestamp",
                "pcrs",
                "certificate",
                "cabundle",
                "public_key",
                "user_data",
                "nonce"
            ]
        );
        let module_id = map_get(&body, "module_id").as_text().unwrap();
        assert!(module_id.starts_with("simulated-"), "{module_id}");
        assert_eq!(module_id, nsm.module_id());
        assert_eq!(map_get(&body, "digest").as_text(), Some("SHA384"));
        let timestamp = u64::try_from(map_get(&body, "timestamp").as_integer().unwrap()).unwrap();
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(timestamp <= now_ms && now_ms - timestamp < 60_000);
        let pcrs = map_get(&body, "pcrs").as_map().unwrap();
        assert_eq!(pcrs.len(), 16);
        for (i, (k, v)) in pcrs.iter().enumerate() {
            assert_eq!(k.as_integer(), Some((i as u64).into()));
            assert_eq!(v.as_bytes().unwrap(), &vec![0u8; 48]);
        }
        assert_eq!(
            map_get(&body, "public_key").as_bytes().unwrap(),
            public.as_bytes()
        );
        assert_eq!(
            map_get(&body, "user_data").as_bytes().unwrap(),
            &vec![7u8; 32]
        );
        assert_eq!(
            map_get(&body, "nonce").as_bytes().unwrap(),
            &b"nonce-1".to_vec()
        );

        // The COSE signature verifies with the leaf certificate's key, and with nothing else.
        let leaf_der = map_get(&body, "certificate").as_bytes().unwrap();
        let (_, leaf) = X509Certificate::from_der(leaf_der).unwrap();
        let signature = p384::ecdsa::Signature::from_slice(&signature).unwrap();
        let signed = sig_structure(&protected, &payload).unwrap();
        verifying_key(&leaf).verify(&signed, &signature).unwrap();
        let mut tampered = payload.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(
            verifying_key(&leaf)
                .verify(&sig_structure(&protected, &tampered).unwrap(), &signature)
                .is_err()
        );

        // The chain: root (self-signed CA) → intermediate (CA) → leaf (not a CA).
        let bundle = map_get(&body, "cabundle").as_array().unwrap();
        assert_eq!(bundle.len(), 2);
        let (_, root) = X509Certificate::from_der(bundle[0].as_bytes().unwrap()).unwrap();
        let (_, intermediate) = X509Certificate::from_der(bundle[1].as_bytes().unwrap()).unwrap();
        check_issued_by(&root, &root);
        check_issued_by(&intermediate, &root);
        check_issued_by(&leaf, &intermediate);
        for ca in [&root, &intermediate] {
            assert!(ca.basic_constraints().unwrap().unwrap().value.ca);
            let usage = ca.key_usage().unwrap().unwrap().value;
            assert!(usage.key_cert_sign() && usage.crl_sign());
            assert!(!usage.digital_signature());
        }
        assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
        let usage = leaf.key_usage().unwrap().unwrap().value;
        assert!(usage.digital_signature() && !usage.key_cert_sign());
        // The leaf lives hours, like the device's; the CAs much longer.
        let life = |c: &X509Certificate<'_>| {
            c.validity().not_after.timestamp() - c.validity().not_before.timestamp()
        };
        assert!(life(&leaf) <= 4 * 3600, "{}", life(&leaf));
        assert!(life(&intermediate) > 7 * 24 * 3600);
        assert!(life(&root) > life(&intermediate));
        let ts = (timestamp / 1000) as i64;
        assert!(leaf.validity().not_before.timestamp() <= ts);
        assert!(ts < leaf.validity().not_after.timestamp());
    }

    #[test]
    fn absent_fields_are_null_and_long_fields_are_refused() {
        let nsm = SimulatedNsm::new().unwrap();
        let first = nsm.attest(b"", b"", b"").unwrap();
        let (_, _, payload, _) = parts(&first);
        let body: Value = ciborium::from_reader(payload.as_slice()).unwrap();
        for key in ["public_key", "user_data", "nonce"] {
            assert!(map_get(&body, key).is_null(), "{key}");
        }
        let too_long = vec![0u8; MAX_FIELD_BYTES + 1];
        assert!(matches!(
            nsm.attest(b"", &too_long, b""),
            Err(NsmError::InvalidInput(_))
        ));
    }

    #[test]
    fn a_leaf_near_its_end_is_renewed_under_the_same_intermediate() {
        let nsm = SimulatedNsm::new().unwrap();
        let later = SystemTime::now() + LEAF_LIFETIME;
        let doc = nsm.document(later, b"", b"", b"").unwrap();
        let (_, _, payload, _) = parts(&doc);
        let body: Value = ciborium::from_reader(payload.as_slice()).unwrap();
        let (_, leaf) =
            X509Certificate::from_der(map_get(&body, "certificate").as_bytes().unwrap()).unwrap();
        let (_, intermediate) = X509Certificate::from_der(nsm.intermediate.der()).unwrap();
        check_issued_by(&leaf, &intermediate);
        let at = later
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(leaf.validity().not_after.timestamp() > at);
    }

    #[test]
    fn pcrs_and_randomness() {
        let nsm = SimulatedNsm::new().unwrap();
        assert_eq!(nsm.describe_pcr(0).unwrap(), vec![0u8; 48]);
        assert!(nsm.describe_pcr(16).is_err());
        let (mut a, mut b) = ([0u8; 48], [0u8; 48]);
        nsm.random(&mut a).unwrap();
        nsm.random(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(nsm.is_simulated());
        assert_ne!(SimulatedNsm::new().unwrap().module_id(), nsm.module_id());
    }
}
