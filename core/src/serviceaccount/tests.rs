//! ServiceAccount tokens alone: kube's key id and JWK, the token's exact shape, and one
//! negative test for every way to forge or misuse a token.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};

use super::*;
use crate::UnixTime;

const ISSUER: &str = DEFAULT_ISSUER;
const NOW: i64 = 1_750_000_000;

fn key(byte: u8) -> ServiceAccountKey {
    ServiceAccountKey::from_secret(&[byte; 32]).unwrap()
}

fn claims() -> Claims {
    Claims {
        issuer: ISSUER.into(),
        subject: username("default", "builder"),
        audiences: alloc::vec![ISSUER.into()],
        issued_at: Some(NOW),
        not_before: Some(NOW),
        expiry: Some(NOW + 3600),
        id: "0b3b4b9e-6a51-4c1c-9a43-6f2c1d3a8e11".into(),
        namespace: "default".into(),
        service_account: ObjectRef {
            name: "builder".into(),
            uid: "sa-uid".into(),
        },
        pod: Some(ObjectRef {
            name: "web".into(),
            uid: "pod-uid".into(),
        }),
        secret: None,
        node: Some(ObjectRef {
            name: "node-a".into(),
            uid: String::new(),
        }),
        warn_after: None,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(ToString::to_string).collect()
}

fn decoded(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A token with `header` and `payload` signed by `signer`'s key over exactly those bytes.
fn forge(signer: &ServiceAccountKey, header: &Value, payload: &Value) -> String {
    let input = alloc::format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(payload).unwrap())
    );
    let signature: p256::ecdsa::Signature = signer.signing.sign(input.as_bytes());
    alloc::format!("{input}.{}", b64(&signature.to_bytes()))
}

#[test]
fn the_key_id_and_jwk_are_what_kube_and_go_jose_compute() {
    // Computed independently (Python `cryptography`: the PKIX DER of the public key of the
    // scalar 0x0707...07, SHA-256, base64url): kube's `keyIDFromPublicKey`.
    let key = key(7);
    assert_eq!(key.key_id(), "zpfsINQ2YaGbIVyy43ammNC0qiqltMeFTpFr0FCC_O4");
    assert_eq!(
        key.jwks(),
        "{\"keys\":[{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"zpfsINQ2YaGbIVyy43ammNC0qiqltMeFTpFr0FCC_O4\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"x\":\"HhhTL9R1TALzBB2cdc6zO4P_2BrHzk_ogsyxyYvFiW4\",\"y\":\"pGwxHE4v9A3ZajZT5uRURdMt_khuztdcepDGoYiBwKM\"}]}"
    );
    // The same secret is the same key (tokens outlive restarts); another is another.
    assert_eq!(key.key_id(), self::key(7).key_id());
    assert_ne!(key.key_id(), self::key(8).key_id());
    // A secret that is no scalar (zero) still gives a key, the same each time.
    let zero = ServiceAccountKey::from_secret(&[0; 32]).unwrap();
    assert_eq!(
        zero.key_id(),
        ServiceAccountKey::from_secret(&[0; 32]).unwrap().key_id()
    );
}

#[test]
fn the_secret_never_shows_in_debug() {
    let text = alloc::format!("{:?}", key(7));
    assert!(
        text.contains("zpfsINQ2YaGbIVyy43ammNC0qiqltMeFTpFr0FCC_O4"),
        "{text}"
    );
    assert!(!text.contains("07, 07") && !text.contains("0707"), "{text}");
    assert!(!text.to_lowercase().contains("signing"), "{text}");
}

#[test]
fn a_token_has_kubes_header_and_claims() {
    let key = key(7);
    let token = key.sign(&claims());
    let parts = parts(&token);
    assert_eq!(parts.len(), 3);
    let header = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
    assert_eq!(
        header,
        "{\"alg\":\"ES256\",\"kid\":\"zpfsINQ2YaGbIVyy43ammNC0qiqltMeFTpFr0FCC_O4\"}"
    );
    // go-jose merges the claims into one map: keys sorted, `aud` a list even of one, the
    // node of a pod-bound token without a uid when its Node was not found.
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    assert_eq!(
        payload,
        "{\"aud\":[\"https://kubernetes.default.svc.cluster.local\"],\"exp\":1750003600,\"iat\":1750000000,\"iss\":\"https://kubernetes.default.svc.cluster.local\",\"jti\":\"0b3b4b9e-6a51-4c1c-9a43-6f2c1d3a8e11\",\"kubernetes.io\":{\"namespace\":\"default\",\"node\":{\"name\":\"node-a\"},\"pod\":{\"name\":\"web\",\"uid\":\"pod-uid\"},\"serviceaccount\":{\"name\":\"builder\",\"uid\":\"sa-uid\"}},\"nbf\":1750000000,\"sub\":\"system:serviceaccount:default:builder\"}"
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&parts[2]).unwrap().len(),
        64,
        "R || S"
    );
    assert_eq!(key.verify(ISSUER, &token), Ok(claims()));
    // RFC 6979: the same claims sign to the same token (core has no randomness).
    assert_eq!(token, key.sign(&claims()));
}

#[test]
fn every_forgery_is_refused() {
    let key = key(7);
    let other = self::key(8);
    let token = key.sign(&claims());
    let p = parts(&token);
    let payload = decoded(&p[1]);
    let mut admin = payload.clone();
    admin["sub"] = json!("system:serviceaccount:kube-system:admin");
    admin["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
    let flipped = {
        let mut sig = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
        sig[10] ^= 1;
        b64(&sig)
    };
    let hmac_confusion = {
        // HS256 keyed with the public key: the classic algorithm confusion.
        use hmac::{KeyInit as _, Mac as _};
        let input = alloc::format!(
            "{}.{}",
            b64(br#"{"alg":"HS256","kid":"zpfsINQ2YaGbIVyy43ammNC0qiqltMeFTpFr0FCC_O4"}"#),
            p[1]
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.jwks().as_bytes()).unwrap();
        mac.update(input.as_bytes());
        alloc::format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let with_header = |h: Value| forge(&key, &h, &payload);
    let cases: Vec<(&str, String, Rejection)> = alloc::vec![
        (
            "payload changed after signing",
            alloc::format!(
                "{}.{}.{}",
                p[0],
                b64(&serde_json::to_vec(&admin).unwrap()),
                p[2]
            ),
            Rejection::Signature
        ),
        (
            "signature bit flipped",
            alloc::format!("{}.{}.{flipped}", p[0], p[1]),
            Rejection::Signature
        ),
        (
            "signature cut short",
            alloc::format!("{}.{}.{}", p[0], p[1], &p[2][..40]),
            Rejection::Signature
        ),
        (
            "no signature",
            alloc::format!("{}.{}.", p[0], p[1]),
            Rejection::Signature
        ),
        (
            "alg none",
            alloc::format!("{}.{}.", b64(br#"{"alg":"none"}"#), p[1]),
            Rejection::Signature
        ),
        (
            "alg none with our kid",
            alloc::format!(
                "{}.{}.",
                b64(format_header("none", key.key_id()).as_bytes()),
                p[1]
            ),
            Rejection::Signature
        ),
        (
            "HS256 keyed with the public key",
            hmac_confusion,
            Rejection::Signature
        ),
        (
            "ES384 claimed",
            with_header(json!({"alg": "ES384", "kid": key.key_id()})),
            Rejection::Signature
        ),
        (
            "no alg",
            with_header(json!({"kid": key.key_id()})),
            Rejection::Signature
        ),
        (
            "a critical header",
            with_header(json!({"alg": "ES256", "kid": key.key_id(), "crit": ["exp"]})),
            Rejection::Signature
        ),
        (
            "another key under our kid",
            forge(
                &other,
                &json!({"alg": "ES256", "kid": key.key_id()}),
                &payload
            ),
            Rejection::Signature
        ),
        (
            "another key without a kid",
            forge(&other, &json!({"alg": "ES256"}), &payload),
            Rejection::Signature
        ),
        (
            "another key's own kid",
            other.sign(&claims()),
            Rejection::NoKeys
        ),
        (
            "an unknown kid",
            with_header(json!({"alg": "ES256", "kid": "nope"})),
            Rejection::NoKeys
        ),
        (
            "another issuer",
            key.sign(&Claims {
                issuer: "https://evil.example".into(),
                ..claims()
            }),
            Rejection::NotOurs
        ),
        (
            "no issuer",
            key.sign(&Claims {
                issuer: String::new(),
                ..claims()
            }),
            Rejection::NotOurs
        ),
        (
            "a JSON token",
            String::from("{\"iss\":\"https://kubernetes.default.svc.cluster.local\"}"),
            Rejection::NotOurs
        ),
        (
            "two parts",
            alloc::format!("{}.{}", p[0], p[1]),
            Rejection::NotOurs
        ),
        (
            "four parts",
            alloc::format!("{token}.x"),
            Rejection::NotOurs
        ),
        (
            "a payload that is no JSON",
            alloc::format!("{}.{}.{}", p[0], b64(b"not json"), p[2]),
            Rejection::NotOurs
        ),
        (
            "a padded payload",
            alloc::format!("{}.{}==.{}", p[0], p[1], p[2]),
            Rejection::NotOurs
        ),
        (
            "a header that is no JSON",
            alloc::format!("{}.{}.{}", b64(b"{"), p[1], p[2]),
            Rejection::NotOurs
        ),
        (
            "a kid that is no string",
            with_header(json!({"alg": "ES256", "kid": 7})),
            Rejection::NotOurs
        ),
        (
            "an admin token",
            String::from("0123456789abcdef"),
            Rejection::NotOurs
        ),
        (
            "a Seal token",
            String::from("seal1.eyJub2RlX2lkIjoiYSJ9.AAAA"),
            Rejection::NotOurs
        ),
        (
            "an oversized token",
            alloc::format!("{token}{}", "A".repeat(MAX_JWT_BYTES)),
            Rejection::NotOurs
        ),
    ];
    for (what, forged, want) in cases {
        assert_eq!(key.verify(ISSUER, &forged), Err(want), "{what}: {forged}");
    }
    // What kube's authenticator reports for each (a TokenReview's `status.error`).
    assert_eq!(Rejection::NotOurs.message(), None);
    assert_eq!(
        Rejection::NoKeys.message(),
        Some("invalid signature, no keys found")
    );
    assert_eq!(
        Rejection::Signature.message(),
        Some("square/go-jose: error in cryptographic primitive")
    );
    // The untouched token still verifies, and only under its own issuer.
    assert!(key.verify(ISSUER, &token).is_ok());
    assert_eq!(
        key.verify("https://other.example", &token),
        Err(Rejection::NotOurs)
    );
}

fn format_header(alg: &str, kid: &str) -> String {
    alloc::format!("{{\"alg\":\"{alg}\",\"kid\":\"{kid}\"}}")
}

#[test]
fn claims_read_as_gos_decoder_reads_them() {
    let key = key(7);
    let header = json!({"alg": "ES256", "kid": key.key_id()});
    let base = json!({"iss": ISSUER, "sub": "system:serviceaccount:a:b", "exp": NOW + 10,
        "kubernetes.io": {"namespace": "a", "serviceaccount": {"name": "b", "uid": "u"}}});
    // A single audience may be a string; a date may be a fraction.
    let mut payload = base.clone();
    payload["aud"] = json!("x");
    payload["iat"] = json!(1_750_000_000.9);
    let read = key.verify(ISSUER, &forge(&key, &header, &payload)).unwrap();
    assert_eq!(read.audiences, alloc::vec![String::from("x")]);
    assert_eq!(read.issued_at, Some(1_750_000_000));
    assert_eq!(read.pod, None);
    // Claims of the wrong type are refused with go-jose's / encoding/json's words.
    for (field, value, message) in [
        ("aud", json!(7), AUDIENCE_ERROR),
        ("aud", json!(["x", 7]), AUDIENCE_ERROR),
        ("exp", json!("soon"), NUMERIC_DATE_ERROR),
    ] {
        let mut payload = base.clone();
        payload[field] = value;
        let got = key.verify(ISSUER, &forge(&key, &header, &payload));
        assert_eq!(got, Err(Rejection::Claims(message)), "{field}");
    }
}

#[test]
fn times_are_checked_with_go_joses_leeway_in_its_order() {
    let at = |secs: i64| UnixTime::from_secs(u64::try_from(secs).unwrap());
    let c = claims();
    assert_eq!(c.check_times(at(NOW)), Ok(()));
    // One minute of leeway past `exp`, then expired.
    assert_eq!(c.check_times(at(NOW + 3600 + 60)), Ok(()));
    assert_eq!(
        c.check_times(UnixTime {
            nanos: at(NOW + 3660).nanos + 1
        }),
        Err("service account token has expired")
    );
    // Not before `nbf` (less the leeway), not issued in the future.
    assert_eq!(c.check_times(at(NOW - 60)), Ok(()));
    assert_eq!(
        c.check_times(at(NOW - 61)),
        Err("service account token is not valid yet")
    );
    let future_iat = Claims {
        not_before: None,
        issued_at: Some(NOW + 120),
        ..claims()
    };
    assert_eq!(
        future_iat.check_times(at(NOW)),
        Err("service account token is issued in the future")
    );
    // No times at all: nothing to check (kube's go-jose does the same).
    let timeless = Claims {
        issued_at: None,
        not_before: None,
        expiry: None,
        ..claims()
    };
    assert_eq!(timeless.check_times(at(0)), Ok(()));
}

#[test]
fn the_discovery_document_is_kubes() {
    assert_eq!(
        openid_configuration(ISSUER, "https://10.0.0.1:6443/openid/v1/jwks"),
        "{\"issuer\":\"https://kubernetes.default.svc.cluster.local\",\"jwks_uri\":\"https://10.0.0.1:6443/openid/v1/jwks\",\"response_types_supported\":[\"id_token\"],\"subject_types_supported\":[\"public\"],\"id_token_signing_alg_values_supported\":[\"ES256\"]}"
    );
    assert!(discoverable(ISSUER));
    for not in [
        "kubernetes/serviceaccount",
        "http://x",
        "https://x?a=b",
        "https://x#f",
    ] {
        assert!(!discoverable(not), "{not}");
    }
}
