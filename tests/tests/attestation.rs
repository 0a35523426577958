//! The enclave's attestation endpoints and signed answers end to end through the dev proxy
//! (which forwards every path): the SIMULATED NSM's document parses, its COSE_Sign1 signature
//! verifies with the leaf certificate's key, and it binds the nonce, the identity key and
//! `user_data = SHA-256(SHA-256(/attestation/config) || 32 zero bytes)`; a signed answer
//! verifies with core's contract and the attested key. The full chain check against a pinned
//! root is `nautilus-verify`'s; these tests stand on their own.

use base64::Engine as _;
use ciborium::value::Value;
use nautilus_core::signed_answer::{self, SignedFields};
use nautilus_tests::DevCluster;
use nautilus_tests::client::Reply;
use p384::ecdsa::signature::Verifier as _;
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::{FromDer as _, X509Certificate};

fn field<'a>(map: &'a Value, key: &str) -> &'a Value {
    map.as_map()
        .expect("a map")
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("the payload has no {key}"))
}

/// A checked document: its payload map, after the COSE signature verified with the leaf key.
fn verified_payload(doc: &[u8]) -> Value {
    let cose: Value = ciborium::from_reader(doc).expect("the document is CBOR");
    let items = cose.into_array().expect("COSE_Sign1 is an untagged array");
    assert_eq!(items.len(), 4);
    let protected = items[0].as_bytes().unwrap();
    // {1: -35}: ES384.
    assert_eq!(protected, &[0xa1, 0x01, 0x38, 0x22]);
    let payload = items[2].as_bytes().unwrap();
    let signature = p384::ecdsa::Signature::from_slice(items[3].as_bytes().unwrap()).unwrap();
    let body: Value = ciborium::from_reader(payload.as_slice()).unwrap();
    let (_, leaf) =
        X509Certificate::from_der(field(&body, "certificate").as_bytes().unwrap()).unwrap();
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let leaf_key =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(&leaf.public_key().subject_public_key.data)
            .unwrap();
    // RFC 9052 §4.4 Sig_structure with empty external data.
    let mut signed = Vec::new();
    ciborium::into_writer(
        &Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.clone()),
            Value::Bytes(Vec::new()),
            Value::Bytes(payload.clone()),
        ]),
        &mut signed,
    )
    .unwrap();
    leaf_key
        .verify(&signed, &signature)
        .expect("the COSE signature verifies with the leaf certificate's key");
    let bundle = field(&body, "cabundle").as_array().unwrap();
    assert_eq!(bundle.len(), 2, "root and intermediate");
    for ca in bundle {
        let (_, cert) = X509Certificate::from_der(ca.as_bytes().unwrap()).unwrap();
        assert!(cert.basic_constraints().unwrap().unwrap().value.ca);
    }
    body
}

fn attestation(c: &DevCluster, query: &str) -> Reply {
    c.anonymous("GET", &format!("/attestation{query}")).unwrap()
}

fn assert_bad_request(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        400,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let status = reply.json();
    assert_eq!(status["kind"], "Status", "{what}");
    assert_eq!(status["reason"], "BadRequest", "{what}");
    assert_eq!(status["code"], 400, "{what}");
}

#[test]
fn the_document_binds_nonce_identity_and_configuration() {
    let c = DevCluster::start();
    let config = c.anonymous("GET", "/attestation/config").unwrap();
    assert_eq!(config.status, 200);
    let config_text = String::from_utf8(config.body.clone()).unwrap();
    let keys: Vec<&str> = config_text
        .lines()
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        keys, sorted,
        "the configuration text is canonical: sorted keys"
    );
    assert!(
        config_text.contains("simulated_nsm = true"),
        "{config_text}"
    );
    let digest: [u8; 32] = Sha256::digest(&config.body).into();

    let nonce = "00112233445566778899aabbccddeeff";
    let reply = attestation(&c, &format!("?nonce={nonce}"));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/cbor"));
    assert_eq!(
        reply.header("x-nautilus-config-digest"),
        Some(hex::encode(digest).as_str())
    );
    let body = verified_payload(&reply.body);
    let module_id = field(&body, "module_id").as_text().unwrap();
    assert!(module_id.starts_with("simulated-"), "{module_id}");
    assert_eq!(
        field(&body, "nonce").as_bytes().unwrap(),
        &hex::decode(nonce).unwrap()
    );
    assert_eq!(
        field(&body, "user_data").as_bytes().unwrap().as_slice(),
        signed_answer::user_data(&digest, None)
    );
    let public_key = field(&body, "public_key").as_bytes().unwrap();
    assert_eq!(public_key.len(), 97, "SEC1 uncompressed P-384");
    assert!(p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).is_ok());

    // Without a nonce the field is null; the identity is the same key in every document.
    let plain = attestation(&c, "");
    assert_eq!(plain.status, 200);
    let plain = verified_payload(&plain.body);
    assert!(field(&plain, "nonce").is_null());
    assert_eq!(field(&plain, "public_key").as_bytes().unwrap(), public_key);
    // The largest nonce (64 bytes) is accepted.
    let max = attestation(&c, &format!("?nonce={}", "ab".repeat(64)));
    assert_eq!(max.status, 200);
    assert_eq!(
        field(&verified_payload(&max.body), "nonce")
            .as_bytes()
            .unwrap()
            .len(),
        64
    );

    // Development says so: the WARN line, /readyz?verbose, the document (module_id above).
    assert!(c.logs().contains("SIMULATED NSM"), "{}", c.logs());
    let ready = c.anonymous("GET", "/readyz?verbose").unwrap();
    assert_eq!(ready.status, 200);
    let text = String::from_utf8_lossy(&ready.body);
    assert!(
        text.contains("[+]nsm SIMULATED (development only)"),
        "{text}"
    );
    assert!(text.ends_with("readyz check passed\n"), "{text}");
}

#[test]
fn bad_nonces_are_400_status() {
    let c = DevCluster::start();
    let too_long = format!("?nonce={}", "ab".repeat(65));
    for query in [
        "?nonce=zz",
        "?nonce=abc",
        "?nonce=0g",
        "?nonce=01&nonce=02",
        &too_long,
    ] {
        assert_bad_request(&attestation(&c, query), query);
    }
    let posted = c.request("POST", "/attestation", Some(b"{}"), &[]).unwrap();
    assert_eq!(posted.status, 405);
    assert_eq!(posted.json()["reason"], "MethodNotAllowed");
}

/// The signature headers of `reply` checked against `public_key` for the request made.
fn check_signed(
    reply: &Reply,
    public_key: &[u8],
    method: &str,
    path: &str,
    request_body: &[u8],
    nonce: &[u8],
) -> Result<(), signed_answer::SignatureError> {
    let signature = base64::engine::general_purpose::STANDARD
        .decode(reply.header("x-nautilus-signature").expect("signed"))
        .unwrap();
    assert_eq!(signature.len(), 96);
    let fields = SignedFields {
        method,
        path_and_query: path,
        request_body,
        status: reply.status,
        response_body: &reply.body,
        revision: reply
            .header("x-nautilus-revision")
            .unwrap()
            .parse()
            .unwrap(),
        timestamp_ms: reply
            .header("x-nautilus-timestamp")
            .unwrap()
            .parse()
            .unwrap(),
        freshness: signed_answer::Freshness::parse(
            reply.header("x-nautilus-freshness").expect("freshness"),
        )
        .expect("a known freshness"),
        nonce,
    };
    signed_answer::verify(public_key, &fields, &signature)
}

#[test]
fn signed_answers_verify_with_the_attested_key() {
    let c = DevCluster::start();
    let doc = attestation(&c, "?nonce=01");
    let payload = verified_payload(&doc.body);
    let public_key = field(&payload, "public_key").as_bytes().unwrap().clone();

    // A write with a body, then a GET, both signed with a nonce.
    let cm =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"signed"},"data":{"a":"b"}}"#;
    let nonce = [0xc0, 0xff, 0xee];
    let sign = [("x-nautilus-sign", "1"), ("x-nautilus-nonce", "C0FFEE")];
    let path = "/api/v1/namespaces/default/configmaps";
    let created = c.request("POST", path, Some(cm), &sign).unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(created.header("x-nautilus-nonce"), Some("c0ffee"));
    assert_eq!(
        check_signed(&created, &public_key, "POST", path, cm, &nonce),
        Ok(())
    );
    // dev keeps a durable log, so the state is `unverified` (one enclave cannot detect a host
    // serving an older copy); a host rewriting that to `in-memory` breaks the signature.
    assert_eq!(created.header("x-nautilus-freshness"), Some("unverified"));
    let mut claimed = created.clone();
    for (name, value) in &mut claimed.headers {
        if name == "x-nautilus-freshness" {
            *value = "in-memory".into();
        }
    }
    assert_eq!(
        check_signed(&claimed, &public_key, "POST", path, cm, &nonce),
        Err(signed_answer::SignatureError::Mismatch)
    );
    let rv: u64 = created.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let revision: u64 = created
        .header("x-nautilus-revision")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        revision >= rv,
        "the revision is the store's after the write"
    );

    let get_path = "/api/v1/namespaces/default/configmaps/signed?pretty=false";
    let got = c.request("GET", get_path, None, &sign).unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(
        check_signed(&got, &public_key, "GET", get_path, b"", &nonce),
        Ok(())
    );
    // One changed body byte, another nonce, another path: all fail.
    let mut tampered = got.clone();
    tampered.body[3] ^= 0x01;
    assert_eq!(
        check_signed(&tampered, &public_key, "GET", get_path, b"", &nonce),
        Err(signed_answer::SignatureError::Mismatch)
    );
    assert!(check_signed(&got, &public_key, "GET", get_path, b"", &[1]).is_err());
    assert!(check_signed(&got, &public_key, "GET", "/api/v1/namespaces", b"", &nonce).is_err());
    // Errors are signed too (the status is covered).
    let missing_path = "/api/v1/namespaces/default/configmaps/missing";
    let missing = c
        .request("GET", missing_path, None, &[("x-nautilus-sign", "1")])
        .unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-nautilus-nonce"), None);
    assert_eq!(
        check_signed(&missing, &public_key, "GET", missing_path, b"", b""),
        Ok(())
    );

    // Unasked: no signature. A bad nonce on a signed write: 400 and nothing written.
    let unsigned = c.request("GET", get_path, None, &[]).unwrap();
    assert_eq!(unsigned.header("x-nautilus-signature"), None);
    let other = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"never"}}"#;
    for bad in ["zz", "abc", &"00".repeat(65)] {
        let refused = c
            .request(
                "POST",
                path,
                Some(other),
                &[("x-nautilus-sign", "1"), ("x-nautilus-nonce", bad)],
            )
            .unwrap();
        assert_bad_request(&refused, bad);
    }
    assert_bad_request(
        &c.request("GET", get_path, None, &[("x-nautilus-sign", "yes")])
            .unwrap(),
        "X-Nautilus-Sign: yes",
    );
    let never = c
        .request(
            "GET",
            "/api/v1/namespaces/default/configmaps/never",
            None,
            &[],
        )
        .unwrap();
    assert_eq!(never.status, 404, "a refused signed write never runs");

    // A watch is answered normally, without signature headers (a stream has no whole body).
    let watched = c
        .request(
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
            None,
            &[("x-nautilus-sign", "1")],
        )
        .unwrap();
    assert_eq!(watched.status, 200);
    assert_eq!(watched.header("x-nautilus-signature"), None);
    assert!(String::from_utf8_lossy(&watched.body).contains("\"ADDED\""));
}
