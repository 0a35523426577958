//! Requests made by openssl (`fixtures/`, `openssl req -new` with the key and digest each
//! name says) and hostile variants built from them, checked against the texts Go's `x509`
//! and `crypto/rsa` give kube-apiserver 1.32 for the same bytes.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;

use super::{BIT_STRING, INTEGER, MAX_RSA_BITS, SEQUENCE, check_request};
use crate::attestation::x509::Der;
use crate::der::tlv;

const RSA2048_SHA256: &str = include_str!("fixtures/rsa2048-sha256.pem");
const RSA_SHA1: &str = include_str!("fixtures/rsa-sha1.pem");
const RSA_SHA384: &str = include_str!("fixtures/rsa-sha384.pem");
const RSA_SHA512: &str = include_str!("fixtures/rsa-sha512.pem");
const RSA_MD5: &str = include_str!("fixtures/rsa-md5.pem");
const RSA_PSS_SHA256: &str = include_str!("fixtures/rsa-pss-sha256.pem");
const RSA_PSS_SHA512: &str = include_str!("fixtures/rsa-pss-sha512.pem");
/// PSS with the longest salt the key allows (openssl's `rsa_pss_saltlen:max`), not the hash's.
const RSA_PSS_MAX_SALT: &str = include_str!("fixtures/rsa-pss-maxsalt.pem");
/// A 512-bit key: Go 1.23's defaults (kube 1.32's) verify keys under 1024 bits.
const RSA512: &str = include_str!("fixtures/rsa512.pem");
const P384_SHA1: &str = include_str!("fixtures/p384-sha1.pem");
const P256_SHA512: &str = include_str!("fixtures/p256-sha512.pem");
const P256_SHA256: &str = include_str!("fixtures/p256-sha256.pem");

const VERIFICATION: &str = "crypto/rsa: verification error";

/// The DER of a PEM block (the test fixtures' base64 lines).
pub(crate) fn der_of(pem: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap()
}

fn pem_of(der: &[u8]) -> Vec<u8> {
    alloc::format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
    .into_bytes()
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A request taken apart: the info's fields and the outer algorithm and signature.
#[derive(Clone)]
struct Request {
    version: Vec<u8>,
    subject: Vec<u8>,
    key_algorithm: Vec<u8>,
    key: Vec<u8>,
    attributes: Vec<u8>,
    algorithm: Vec<u8>,
    signature: Vec<u8>,
}

impl Request {
    fn parse(pem: &str) -> Self {
        let der = der_of(pem);
        let mut outer = Der::new(&der);
        let mut req = Der::new(outer.expect(SEQUENCE, "").unwrap());
        let mut info = Der::new(req.expect(SEQUENCE, "").unwrap());
        let algorithm = req.tlv().unwrap().2.to_vec();
        let signature = req.expect(BIT_STRING, "").unwrap()[1..].to_vec();
        let version = info.tlv().unwrap().2.to_vec();
        let subject = info.tlv().unwrap().2.to_vec();
        let mut spki = Der::new(info.expect(SEQUENCE, "").unwrap());
        let key_algorithm = spki.tlv().unwrap().2.to_vec();
        let key = spki.expect(BIT_STRING, "").unwrap()[1..].to_vec();
        let attributes = info.tlv().unwrap().2.to_vec();
        Self {
            version,
            subject,
            key_algorithm,
            key,
            attributes,
            algorithm,
            signature,
        }
    }

    fn info(&self) -> Vec<u8> {
        let spki = tlv(
            SEQUENCE,
            &concat(&[
                &self.key_algorithm,
                &tlv(BIT_STRING, &concat(&[&[0], &self.key])),
            ]),
        );
        tlv(
            SEQUENCE,
            &concat(&[&self.version, &self.subject, &spki, &self.attributes]),
        )
    }

    fn pem(&self) -> Vec<u8> {
        let signature = tlv(BIT_STRING, &concat(&[&[0], &self.signature]));
        pem_of(&tlv(
            SEQUENCE,
            &concat(&[&self.info(), &self.algorithm, &signature]),
        ))
    }

    fn check(&self) -> Result<(), String> {
        check_request(&self.pem())
    }

    /// The same request with an RSA key of this modulus and exponent (big-endian contents).
    fn with_rsa_key(&self, n: &[u8], e: &[u8]) -> Self {
        let mut r = self.clone();
        r.key = tlv(SEQUENCE, &concat(&[&tlv(INTEGER, n), &tlv(INTEGER, e)]));
        r
    }

    /// The RSA key's modulus and exponent contents.
    fn rsa_key(&self) -> (Vec<u8>, Vec<u8>) {
        let mut key = Der::new(&self.key);
        let mut fields = Der::new(key.expect(SEQUENCE, "").unwrap());
        let n = fields.expect(INTEGER, "").unwrap().to_vec();
        let e = fields.expect(INTEGER, "").unwrap().to_vec();
        (n, e)
    }
}

#[test]
fn rsa_requests_verify_as_go_verifies_them() {
    for (name, pem) in [
        (
            "PKCS#1 v1.5 SHA-256, 2048 bits (openssl's default)",
            RSA2048_SHA256,
        ),
        ("PKCS#1 v1.5 SHA-384", RSA_SHA384),
        ("PKCS#1 v1.5 SHA-512", RSA_SHA512),
        ("PKCS#1 v1.5 SHA-1 (Go allows SHA-1 on requests)", RSA_SHA1),
        ("PSS SHA-256", RSA_PSS_SHA256),
        ("PSS SHA-512, 2048 bits", RSA_PSS_SHA512),
        ("a 512-bit key", RSA512),
        ("ECDSA P-384 with SHA-1", P384_SHA1),
        ("ECDSA P-256 with SHA-512", P256_SHA512),
    ] {
        assert_eq!(check_request(pem.as_bytes()), Ok(()), "{name}");
    }
}

#[test]
fn algorithms_go_refuses_are_refused_in_its_words() {
    assert_eq!(
        check_request(RSA_MD5.as_bytes()).unwrap_err(),
        "x509: cannot verify signature: insecure algorithm MD5-RSA"
    );
    // Go takes PSS parameters only with the salt as long as the hash.
    assert_eq!(
        check_request(RSA_PSS_MAX_SALT.as_bytes()).unwrap_err(),
        "x509: cannot verify signature: algorithm unimplemented"
    );
    // The signature algorithm names one kind of key, the request carries another.
    let rsa = Request::parse(RSA_SHA384);
    let ec = Request::parse(P256_SHA256);
    let mut r = rsa.clone();
    r.algorithm = ec.algorithm.clone();
    assert_eq!(
        r.check().unwrap_err(),
        "x509: signature algorithm specifies an ECDSA public key, but have public key of type *rsa.PublicKey"
    );
    let mut r = ec.clone();
    r.algorithm = rsa.algorithm.clone();
    assert_eq!(
        r.check().unwrap_err(),
        "x509: signature algorithm specifies an RSA public key, but have public key of type *ecdsa.PublicKey"
    );
}

#[test]
fn forged_rsa_signatures_and_wrong_keys_fail_verification() {
    let good = Request::parse(RSA_SHA384);
    assert_eq!(
        good.check(),
        Ok(()),
        "the variants start from a good request"
    );

    // The subject changed after signing.
    let mut r = good.clone();
    let at = r.subject.len() - 1;
    r.subject[at] ^= 1;
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
    // One bit of the signature flipped; the signature a byte short; all of it zero.
    let mut r = good.clone();
    r.signature[10] ^= 0x40;
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
    let mut r = good.clone();
    r.signature.pop();
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
    let mut r = good.clone();
    r.signature.fill(0);
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
    // Another key in the request than the one that signed it: a larger one, and for a PSS
    // signature one of the same size (its modulus changed in one bit).
    let mut r = good.clone();
    r.key = Request::parse(RSA2048_SHA256).key;
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
    let pss = Request::parse(RSA_PSS_SHA512);
    let (mut n, e) = pss.rsa_key();
    *n.last_mut().unwrap() ^= 2;
    assert_eq!(pss.with_rsa_key(&n, &e).check().unwrap_err(), VERIFICATION);
    // A signature numerically above the modulus.
    let (n, e) = good.rsa_key();
    let mut r = good.clone();
    r.signature = alloc::vec![0xff; n.len() - 1];
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
    // The modulus made smaller than any PKCS#1 SHA-384 signature fits (a 15-bit key).
    let r = good.with_rsa_key(&[0x7f, 0xff], &e);
    assert_eq!(r.check().unwrap_err(), VERIFICATION);
}

#[test]
fn malformed_and_oversized_rsa_keys_are_refused_before_verifying() {
    let good = Request::parse(RSA_SHA384);
    let (n, e) = good.rsa_key();
    let cases: &[(Request, &str)] = &[
        // The key's DER cut short.
        (
            {
                let mut r = good.clone();
                r.key.truncate(r.key.len() - 10);
                r
            },
            "x509: invalid RSA public key",
        ),
        (
            {
                let mut r = good.clone();
                r.key_algorithm = tlv(SEQUENCE, &tlv(0x06, super::oid::RSA_KEY));
                r
            },
            "x509: RSA key missing NULL parameters",
        ),
        (
            good.with_rsa_key(&[0, 0x05], &e),
            "x509: invalid RSA modulus",
        ),
        (
            good.with_rsa_key(&n[1..], &e),
            "x509: RSA modulus is not a positive number",
        ),
        (
            good.with_rsa_key(&[0], &e),
            "x509: RSA modulus is not a positive number",
        ),
        (
            good.with_rsa_key(&n, &[1, 0, 0, 0, 0, 0, 0, 0, 1]),
            "x509: invalid RSA public exponent",
        ),
        (
            good.with_rsa_key(&n, &[0xff]),
            "x509: RSA public exponent is not a positive number",
        ),
        (
            good.with_rsa_key(&n, &[1, 0, 0]),
            "crypto/rsa: public exponent is even",
        ),
        (
            good.with_rsa_key(&n, &[1]),
            "crypto/rsa: public exponent too small or negative",
        ),
        (
            good.with_rsa_key(&n, &[1, 0, 0, 0, 1]),
            "crypto/rsa: public exponent too large",
        ),
        (
            {
                let mut even = n.clone();
                *even.last_mut().unwrap() &= 0xfe;
                good.with_rsa_key(&even, &e)
            },
            "crypto/rsa: public modulus is even",
        ),
    ];
    for (request, want) in cases {
        assert_eq!(request.check().unwrap_err(), *want);
    }

    // A key one bit over the bound is refused by its size alone, with a signature of its
    // length (which verification would have to exponentiate to refuse); one at the bound is
    // verified (and fails: it did not sign).
    for (bits, want) in [
        (
            MAX_RSA_BITS + 1,
            alloc::format!(
                "crypto/rsa: {}-bit keys are larger than the 8192 bits verified here",
                MAX_RSA_BITS + 1
            ),
        ),
        (
            4 * MAX_RSA_BITS,
            String::from("crypto/rsa: 32768-bit keys are larger than the 8192 bits verified here"),
        ),
        (MAX_RSA_BITS, VERIFICATION.into()),
    ] {
        let bytes = bits.div_ceil(8);
        let mut modulus = alloc::vec![0xff; bytes];
        modulus[0] = 0xff >> (bytes * 8 - bits);
        if modulus[0] & 0x80 != 0 {
            modulus.insert(0, 0);
        }
        let mut r = good.with_rsa_key(&modulus, &e);
        r.signature = alloc::vec![1; bytes];
        assert_eq!(r.check().unwrap_err(), want, "{bits} bits");
    }
}

/// An RSA-PSS AlgorithmIdentifier: the hash (with NULL parameters or none), MGF1's hash, the
/// salt length and the trailer field if written.
fn pss_algorithm(
    hash: &[u8],
    null: bool,
    mgf_hash: &[u8],
    salt: u8,
    trailer: Option<u8>,
) -> Vec<u8> {
    let identifier = |oid: &[u8], null: bool| {
        let parameters: &[u8] = if null { &[0x05, 0x00] } else { &[] };
        tlv(SEQUENCE, &concat(&[&tlv(0x06, oid), parameters]))
    };
    let mgf = tlv(
        SEQUENCE,
        &concat(&[&tlv(0x06, super::oid::MGF1), &identifier(mgf_hash, false)]),
    );
    let trailer = trailer.map_or_else(Vec::new, |t| tlv(0xa3, &tlv(INTEGER, &[t])));
    let parameters = tlv(
        SEQUENCE,
        &concat(&[
            &tlv(0xa0, &identifier(hash, null)),
            &tlv(0xa1, &mgf),
            &tlv(0xa2, &tlv(INTEGER, &[salt])),
            &trailer,
        ]),
    );
    tlv(
        SEQUENCE,
        &concat(&[&tlv(0x06, super::oid::RSA_PSS), &parameters]),
    )
}

#[test]
fn pss_parameters_are_read_as_go_reads_them() {
    use super::oid::{SHA256, SHA384};
    let signed = Request::parse(RSA_PSS_SHA256);
    let with = |algorithm: Vec<u8>| {
        let mut r = signed.clone();
        r.algorithm = algorithm;
        r.check()
    };
    // The signature algorithm is outside the signed info: each variant keeps a good signature.
    let unknown = "x509: cannot verify signature: algorithm unimplemented";
    for (algorithm, want) in [
        (pss_algorithm(SHA256, false, SHA256, 32, None), Ok(())),
        // NULL hash parameters, and the default trailer field written out, are taken.
        (pss_algorithm(SHA256, true, SHA256, 32, Some(1)), Ok(())),
        (pss_algorithm(SHA256, false, SHA384, 32, None), Err(unknown)),
        (pss_algorithm(SHA256, false, SHA256, 20, None), Err(unknown)),
        (
            pss_algorithm(SHA256, false, SHA256, 32, Some(2)),
            Err(unknown),
        ),
        (tlv(SEQUENCE, &tlv(0x06, super::oid::RSA_PSS)), Err(unknown)),
        // Read as PSS with SHA-384, which did not sign it.
        (
            pss_algorithm(SHA384, false, SHA384, 48, None),
            Err(VERIFICATION),
        ),
    ] {
        assert_eq!(with(algorithm), want.map_err(String::from));
    }
}
