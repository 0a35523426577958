//! The cluster CA and the signer's checks: requests built here with P-256 keys, certificates
//! checked field by field and their signatures verified with the CA's public key; every forged
//! request (wrong names, usages, SANs, a key that did not sign it) refused.

use alloc::string::String;
use alloc::vec::Vec;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use super::authority::*;
pub(crate) use super::tests::der_of;
use super::{BIT_STRING, INTEGER, OBJECT_IDENTIFIER, SEQUENCE};
use crate::UnixTime;
use crate::attestation::x509::Der;
use crate::der::{pem, tlv};

const SET: u8 = 0x31;

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

/// The subject `cn`/`orgs`; both empty: the empty subject Go's `x509.CertificateRequest{}`
/// makes (a K3s agent's requests).
fn name(cn: &str, orgs: &[&str]) -> Vec<u8> {
    if cn.is_empty() && orgs.is_empty() {
        return tlv(SEQUENCE, &[]);
    }
    let atv = |oid: &[u8], v: &str| {
        tlv(
            SET,
            &tlv(
                SEQUENCE,
                &[tlv(OBJECT_IDENTIFIER, oid), tlv(0x0c, v.as_bytes())].concat(),
            ),
        )
    };
    let mut rdns: Vec<u8> = orgs
        .iter()
        .flat_map(|o| atv(&[0x55, 0x04, 0x0a], o))
        .collect();
    rdns.extend(atv(&[0x55, 0x04, 0x03], cn));
    tlv(SEQUENCE, &rdns)
}

/// A PKCS#10 request for `cn`/`orgs` with `sans` (tag, bytes) signed by `signer`, carrying
/// `subject_key`'s public key.
pub(crate) fn csr(
    subject_key: &SigningKey,
    signer: &SigningKey,
    cn: &str,
    orgs: &[&str],
    sans: &[(u8, &[u8])],
) -> Vec<u8> {
    let point = subject_key.verifying_key().to_sec1_point(false);
    let spki = ec_spki(point.as_bytes());
    let mut attributes = Vec::new();
    if !sans.is_empty() {
        let names: Vec<u8> = sans.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
        let ext = extension(&[0x55, 0x1d, 0x11], false, &tlv(SEQUENCE, &names));
        attributes = tlv(
            SEQUENCE,
            &[
                tlv(
                    OBJECT_IDENTIFIER,
                    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e],
                ),
                tlv(SET, &tlv(SEQUENCE, &ext)),
            ]
            .concat(),
        );
    }
    let info = tlv(
        SEQUENCE,
        &[
            tlv(INTEGER, &[0]),
            name(cn, orgs),
            spki,
            tlv(0xa0, &attributes),
        ]
        .concat(),
    );
    let sig: Signature = signer.sign(&info);
    let der_sig = sig.to_der();
    let mut bits = alloc::vec![0u8];
    bits.extend_from_slice(der_sig.as_bytes());
    let alg = tlv(
        SEQUENCE,
        &tlv(
            OBJECT_IDENTIFIER,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        ),
    );
    pem(
        "CERTIFICATE REQUEST",
        &tlv(SEQUENCE, &[info, alg, tlv(BIT_STRING, &bits)].concat()),
    )
    .into_bytes()
}

const CLIENT: &[&str] = &["digital signature", "client auth"];
const CLIENT_RSA: &[&str] = &["key encipherment", "digital signature", "client auth"];
const SERVING: &[&str] = &["digital signature", "key encipherment", "server auth"];

fn node_csr(cn: &str) -> Vec<u8> {
    csr(&key(3), &key(3), cn, &["system:nodes"], &[])
}

/// (tbs, signature algorithm, signature) of a certificate.
fn split(der: &[u8]) -> (&[u8], Vec<u8>) {
    let mut outer = Der::new(der);
    let mut cert = Der::new(outer.expect(SEQUENCE, "").unwrap());
    let tbs = cert.expect_whole(SEQUENCE, "").unwrap();
    cert.expect(SEQUENCE, "").unwrap();
    let bits = cert.expect(BIT_STRING, "").unwrap();
    (tbs, bits[1..].to_vec())
}

/// The certificate's (notBefore, notAfter) texts.
pub(crate) fn validity(der: &[u8]) -> (String, String) {
    let (tbs, _) = split(der);
    let mut t = Der::new(Der::new(tbs).expect(SEQUENCE, "").unwrap());
    for _ in 0..4 {
        t.tlv().unwrap();
    }
    let mut v = Der::new(t.expect(SEQUENCE, "").unwrap());
    let a = v.tlv().unwrap().1;
    let b = v.tlv().unwrap().1;
    (
        String::from_utf8(a.to_vec()).unwrap(),
        String::from_utf8(b.to_vec()).unwrap(),
    )
}

fn ca_key(ca: &ClusterCa) -> VerifyingKey {
    let spki = crate::attestation::x509::subject_public_key_info(ca.certificate_der()).unwrap();
    let mut d = Der::new(spki);
    let mut s = Der::new(d.expect(SEQUENCE, "").unwrap());
    s.expect(SEQUENCE, "").unwrap();
    let bits = s.expect(BIT_STRING, "").unwrap();
    VerifyingKey::from_sec1_bytes(&bits[1..]).unwrap()
}

pub(crate) fn verifies(ca: &ClusterCa, cert_der: &[u8]) -> bool {
    let (tbs, sig) = split(cert_der);
    let sig = Signature::from_der(&sig).unwrap();
    ca_key(ca).verify(tbs, &sig).is_ok()
}

#[test]
fn the_same_secret_makes_the_same_ca_and_another_secret_another() {
    let a = ClusterCa::from_secret(&[7; 32]).unwrap();
    let b = ClusterCa::from_secret(&[7; 32]).unwrap();
    let c = ClusterCa::from_secret(&[8; 32]).unwrap();
    assert_eq!(a.certificate_der(), b.certificate_der());
    assert_ne!(a.certificate_der(), c.certificate_der());
    // Zero is no scalar: rehashed, still deterministic.
    assert_eq!(
        ClusterCa::from_secret(&[0; 32]).unwrap().certificate_der(),
        ClusterCa::from_secret(&[0; 32]).unwrap().certificate_der()
    );
    assert!(verifies(&a, a.certificate_der()), "self-signed");
    assert!(!verifies(&c, a.certificate_der()));
    assert!(
        a.certificate_pem()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
}

#[test]
fn a_kubelet_client_request_is_signed_with_kubes_validity_and_usages() {
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    let req = Request::parse(&node_csr("system:node:n1")).unwrap();
    assert_eq!(req.common_name, "system:node:n1");
    assert_eq!(req.organizations, ["system:nodes"]);
    assert_eq!(
        check_for_signer(&req, CLIENT, KUBELET_CLIENT_SIGNER),
        Ok(true)
    );
    assert_eq!(
        check_for_signer(&req, CLIENT_RSA, KUBELET_CLIENT_SIGNER),
        Ok(true)
    );
    let now = UnixTime::from_secs(1_800_000_000);
    let pem = ca
        .sign(&req, CLIENT, DEFAULT_CERT_TTL_SECS, now, [0xff; 16])
        .unwrap();
    let der = der_of(&pem);
    assert!(verifies(&ca, &der));
    // 1_800_000_000 is 2027-01-15T08:00:00Z: backdated 5 minutes at both ends for a
    // year-long certificate.
    assert_eq!(
        validity(&der),
        ("270115075500Z".into(), "280115075500Z".into())
    );
    // The request's key, subject and the CA as issuer are in the certificate.
    let spki = crate::attestation::x509::subject_public_key_info(&der).unwrap();
    let point = key(3).verifying_key().to_sec1_point(false);
    assert!(spki.windows(65).any(|w| w == point.as_bytes()));
    assert!(der.windows(14).any(|w| w == b"system:node:n1"));
    assert!(der.windows(19).any(|w| w == CA_COMMON_NAME.as_bytes()));
    // clientAuth EKU, and a key usage of digitalSignature only (03 02 07 80).
    assert!(der.windows(8).any(|w| w == [0x2b, 6, 1, 5, 5, 7, 3, 2]));
    assert!(!der.windows(8).any(|w| w == [0x2b, 6, 1, 5, 5, 7, 3, 1]));
    assert!(der.windows(4).any(|w| w == [0x03, 0x02, 0x07, 0x80]));
}

#[test]
fn short_certificates_keep_their_end_and_requested_durations_are_bounded() {
    assert_eq!(
        duration_secs(None, DEFAULT_CERT_TTL_SECS),
        DEFAULT_CERT_TTL_SECS
    );
    assert_eq!(duration_secs(Some(3600), DEFAULT_CERT_TTL_SECS), 3600);
    assert_eq!(duration_secs(Some(60), DEFAULT_CERT_TTL_SECS), 600);
    assert_eq!(
        duration_secs(Some(10 * DEFAULT_CERT_TTL_SECS), DEFAULT_CERT_TTL_SECS),
        DEFAULT_CERT_TTL_SECS
    );
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    let req = Request::parse(&node_csr("system:node:n1")).unwrap();
    let now = UnixTime::from_secs(1_800_000_000);
    let der = der_of(&ca.sign(&req, CLIENT, 3600, now, [1; 16]).unwrap());
    // The start backdated, the end not (under 8 hours).
    assert_eq!(
        validity(&der),
        ("270115075500Z".into(), "270115090000Z".into())
    );
}

#[test]
fn serving_requests_need_a_san_and_server_usages() {
    let ip = [10u8, 0, 0, 7];
    let with_san = csr(
        &key(3),
        &key(3),
        "system:node:n1",
        &["system:nodes"],
        &[(0x82, b"n1.example"), (0x87, &ip)],
    );
    let req = Request::parse(&with_san).unwrap();
    assert_eq!(req.dns_names, ["n1.example"]);
    assert_eq!(req.ip_addresses, [ip.to_vec()]);
    assert_eq!(
        check_for_signer(&req, SERVING, KUBELET_SERVING_SIGNER),
        Ok(true)
    );
    // A serving request is no client request: SANs are refused there.
    assert_eq!(
        check_for_signer(&req, CLIENT, KUBELET_CLIENT_SIGNER),
        Err("DNS subjectAltNames are not allowed".into())
    );
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    let der = der_of(
        &ca.sign(
            &req,
            SERVING,
            DEFAULT_CERT_TTL_SECS,
            UnixTime::from_secs(1_800_000_000),
            [2; 16],
        )
        .unwrap(),
    );
    assert!(verifies(&ca, &der));
    assert!(der.windows(10).any(|w| w == b"n1.example"));
    let bare = Request::parse(&node_csr("system:node:n1")).unwrap();
    assert_eq!(
        check_for_signer(&bare, SERVING, KUBELET_SERVING_SIGNER),
        Err("DNS or IP subjectAltName is required".into())
    );
    let email = Request::parse(&csr(
        &key(3),
        &key(3),
        "system:node:n1",
        &["system:nodes"],
        &[(0x82, b"n1"), (0x81, b"a@b.c")],
    ))
    .unwrap();
    assert_eq!(
        check_for_signer(&email, SERVING, KUBELET_SERVING_SIGNER),
        Err("Email subjectAltNames are not allowed".into())
    );
    assert_eq!(
        check_for_signer(&req, CLIENT, KUBELET_SERVING_SIGNER),
        Err("usages did not match [digital signature key encipherment server auth]".into())
    );
}

#[test]
fn forged_requests_are_refused() {
    // Signed by a key other than the one it carries.
    let forged = csr(&key(3), &key(4), "system:node:n1", &["system:nodes"], &[]);
    assert_eq!(
        Request::parse(&forged),
        Err("x509: ECDSA verification failure".into())
    );
    let cases: [(&[u8], &[&str], &str); 5] = [
        (
            &node_csr("n1"),
            CLIENT,
            "subject common name does not begin with system:node:",
        ),
        (
            &csr(&key(3), &key(3), "system:node:n1", &["system:masters"], &[]),
            CLIENT,
            "subject organization is not system:nodes",
        ),
        (
            &csr(
                &key(3),
                &key(3),
                "system:node:n1",
                &["system:nodes", "system:masters"],
                &[],
            ),
            CLIENT,
            "subject organization is not system:nodes",
        ),
        (
            &node_csr("system:node:n1"),
            &["digital signature", "client auth", "server auth"],
            "usages did not match [client auth digital signature key encipherment]",
        ),
        (
            &node_csr("system:node:n1"),
            &["digital signature", "client auth", "cert sign"],
            "usages did not match [client auth digital signature key encipherment]",
        ),
    ];
    for (pem, usages, want) in cases {
        let req = Request::parse(pem).unwrap();
        assert_eq!(
            check_for_signer(&req, usages, KUBELET_CLIENT_SIGNER),
            Err(String::from(want)),
            "{}",
            req.common_name
        );
    }
    // Other signer names are not this signer's.
    let req = Request::parse(&node_csr("system:node:n1")).unwrap();
    assert_eq!(
        check_for_signer(&req, CLIENT, "example.com/other"),
        Ok(false)
    );
    // Usages Go does not know.
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    assert_eq!(
        ca.sign(
            &req,
            &["client auth", "bogus"],
            3600,
            UnixTime::from_secs(1),
            [0; 16]
        ),
        Err("unrecognized usage values: [\"bogus\"]".into())
    );
}

#[test]
fn a_certificates_subject_names_the_user() {
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    let req = Request::parse(&node_csr("system:node:n1")).unwrap();
    let der = der_of(
        &ca.sign(
            &req,
            CLIENT,
            3600,
            UnixTime::from_secs(1_800_000_000),
            [1; 16],
        )
        .unwrap(),
    );
    assert_eq!(
        certificate_subject(&der),
        Some(("system:node:n1".into(), alloc::vec!["system:nodes".into()]))
    );
    assert_eq!(
        certificate_subject(ca.certificate_der()),
        Some((CA_COMMON_NAME.into(), Vec::new()))
    );
    assert_eq!(certificate_subject(b"junk"), None);
}

#[test]
fn a_serving_certificate_names_only_its_own_node() {
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    let req = Request::parse(&node_csr("system:node:n1")).unwrap();
    let der = der_of(
        &ca.sign(
            &req,
            CLIENT,
            3600,
            UnixTime::from_secs(1_800_000_000),
            [1; 16],
        )
        .unwrap(),
    );
    assert_eq!(serving_certificate_names_node(&der, "n1"), Ok(()));
    assert_eq!(
        serving_certificate_names_node(&der, "n10"),
        Err(Some("system:node:n1".into()))
    );
    assert_eq!(
        serving_certificate_names_node(&der, ""),
        Err(Some("system:node:n1".into()))
    );
    // The CA's own certificate names no node; junk does not read.
    assert_eq!(
        serving_certificate_names_node(ca.certificate_der(), "n1"),
        Err(Some(CA_COMMON_NAME.into()))
    );
    assert_eq!(serving_certificate_names_node(b"junk", "n1"), Err(None));
}

#[test]
fn the_api_servers_serving_certificate_is_issued_for_a_key_and_its_names() {
    let ca = ClusterCa::from_secret(&[7; 32]).unwrap();
    let point = key(5).verifying_key().to_sec1_point(false);
    let spki = ec_spki(point.as_bytes());
    let now = UnixTime::from_secs(1_800_000_000);
    let der = ca
        .sign_server_certificate(
            &spki,
            &["localhost", "api.example.com"],
            &[alloc::vec![127, 0, 0, 1]],
            DEFAULT_CERT_TTL_SECS,
            now,
            [0x11; 16],
        )
        .unwrap();
    assert!(verifies(&ca, &der), "signed by the cluster CA");
    assert!(!verifies(&ClusterCa::from_secret(&[8; 32]).unwrap(), &der));
    assert_eq!(
        crate::attestation::x509::subject_public_key_info(&der).unwrap(),
        spki.as_slice(),
        "for the given key"
    );
    assert_eq!(
        validity(&der),
        ("270115075500Z".into(), "280115075500Z".into())
    );
    assert_eq!(
        certificate_subject(&der),
        Some((String::from(API_SERVER_COMMON_NAME), Vec::new()))
    );
    // serverAuth and no clientAuth; digitalSignature; the names as SANs.
    assert!(der.windows(8).any(|w| w == [0x2b, 6, 1, 5, 5, 7, 3, 1]));
    assert!(!der.windows(8).any(|w| w == [0x2b, 6, 1, 5, 5, 7, 3, 2]));
    assert!(der.windows(4).any(|w| w == [0x03, 0x02, 0x07, 0x80]));
    let san = [
        tlv(0x82, b"localhost"),
        tlv(0x82, b"api.example.com"),
        tlv(0x87, &[127, 0, 0, 1]),
    ]
    .concat();
    let san = tlv(SEQUENCE, &san);
    assert!(der.windows(san.len()).any(|w| w == san.as_slice()));
    // Not a key: refused.
    for junk in [&b""[..], &[0x30, 0x03, 0x02, 0x01][..], &[0x04, 0x00][..]] {
        assert!(
            ca.sign_server_certificate(junk, &[], &[], 3600, now, [1; 16])
                .is_err()
        );
    }
}
