//! ServiceAccount tokens end to end against dev mode, with the real kubectl: `kubectl create
//! token`, then the token with `kubectl --token` (`auth whoami`, a refused `get pods`, the
//! issuer's JWKS), the JWT verified with that JWKS (P-256 in-process and by `openssl`, the key
//! id recomputed from the key), a pod-bound token that stops working when its pod is deleted,
//! TokenReview through kubectl, and the signing key surviving a restart of a durable cluster
//! (and not of an in-memory one).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nautilus_tests::DevCluster;
use p256::ecdsa::signature::Verifier as _;
use serde_json::{Value, json};
use sha2::Digest as _;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The PKIX DER of a P-256 key up to its point (id-ecPublicKey, prime256v1, BIT STRING).
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn decode(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

/// `kubectl create token` for `args` once the `default` account exists.
fn create_token(c: &DevCluster, args: &[&str]) -> String {
    wait_for(
        Duration::from_secs(20),
        "the default ServiceAccount",
        || {
            c.kubectl(&["get", "serviceaccount", "default"])
                .status
                .success()
        },
    );
    let mut all = vec!["create", "token"];
    all.extend_from_slice(args);
    let token = c.kubectl_ok(&all).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
    token
}

fn whoami(c: &DevCluster, token: &str) -> Value {
    let out = c.kubectl_ok(&["--token", token, "auth", "whoami", "-o", "json"]);
    serde_json::from_str(&out).expect("whoami prints JSON")
}

/// The JWT checked against the JWKS the server publishes: header, key id (kube's: SHA-256 of
/// the key's PKIX DER), signature. Its claims.
fn verify_with_jwks(token: &str, jwks: &Value, dir: &Path) -> Value {
    let keys = jwks["keys"].as_array().expect("a key set");
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    for (field, want) in [
        ("use", "sig"),
        ("kty", "EC"),
        ("crv", "P-256"),
        ("alg", "ES256"),
    ] {
        assert_eq!(key[field], want, "{key}");
    }
    let mut point = vec![4u8];
    point.extend(decode(key["x"].as_str().unwrap()));
    point.extend(decode(key["y"].as_str().unwrap()));
    assert_eq!(point.len(), 65, "{key}");
    let mut spki = hex::decode(P256_SPKI_PREFIX).unwrap();
    spki.extend(&point);
    assert_eq!(
        key["kid"],
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&spki)),
        "kube's key id"
    );
    let mut parts = token.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let header: Value = serde_json::from_slice(&decode(header)).unwrap();
    assert_eq!(header, json!({"alg": "ES256", "kid": key["kid"]}));
    let signed = token.rsplit_once('.').unwrap().0;
    let signature_bytes = decode(signature);
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("a P-256 point");
    let sig = p256::ecdsa::Signature::from_slice(&signature_bytes).expect("R || S");
    verifying
        .verify(signed.as_bytes(), &sig)
        .expect("the JWKS key verifies the token");
    openssl_verifies(&spki, signed.as_bytes(), &signature_bytes, dir);
    serde_json::from_slice(&decode(payload)).unwrap()
}

/// A second, independent verifier: OpenSSL, given the key as PEM and the signature as DER.
fn openssl_verifies(spki: &[u8], signed: &[u8], signature: &[u8], dir: &Path) {
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(spki)
    );
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        let mut out = if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            vec![0]
        } else {
            Vec::new()
        };
        out.extend(trimmed);
        let mut der = vec![0x02, u8::try_from(out.len()).unwrap()];
        der.extend(out);
        der
    };
    let (r, s) = signature.split_at(32);
    let body: Vec<u8> = [integer(r), integer(s)].concat();
    let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
    der.extend(body);
    std::fs::write(dir.join("key.pem"), pem).unwrap();
    std::fs::write(dir.join("sig.der"), der).unwrap();
    std::fs::write(dir.join("signed"), signed).unwrap();
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "key.pem",
            "-signature",
            "sig.der",
            "signed",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl on PATH");
    assert!(
        out.status.success(),
        "openssl does not verify the token: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // OpenSSL reads the key back to the same DER: the key id hashes canonical PKIX.
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-in", "key.pem", "-outform", "DER"])
        .current_dir(dir)
        .output()
        .expect("openssl on PATH");
    assert!(out.status.success());
    assert_eq!(out.stdout, spki);
}

#[test]
fn kubectl_create_token_authenticates_and_verifies_with_the_jwks() {
    let c = DevCluster::start();
    let token = create_token(&c, &["default"]);

    // The token is the account, as kube names it.
    let me = whoami(&c, &token);
    let user = &me["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:default:default");
    assert_eq!(
        user["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    let account: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "serviceaccount", "default", "-o", "json"]))
            .unwrap();
    assert_eq!(user["uid"], account["metadata"]["uid"]);

    // It may read the issuer's documents and nothing else until RBAC exists.
    let jwks: Value = serde_json::from_str(&c.kubectl_ok(&[
        "--token",
        &token,
        "get",
        "--raw",
        "/openid/v1/jwks",
    ]))
    .unwrap();
    let discovery: Value = serde_json::from_str(&c.kubectl_ok(&[
        "--token",
        &token,
        "get",
        "--raw",
        "/.well-known/openid-configuration",
    ]))
    .unwrap();
    assert_eq!(discovery["issuer"], ISSUER);
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(discovery["response_types_supported"], json!(["id_token"]));
    assert_eq!(discovery["subject_types_supported"], json!(["public"]));
    assert!(
        discovery["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with("/openid/v1/jwks")
    );
    let err = c.kubectl_err(&["--token", &token, "get", "pods"]);
    assert!(
        err.contains("pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );

    // The JWT, checked with the published key alone.
    let dir = tempfile::tempdir().unwrap();
    let claims = verify_with_jwks(&token, &jwks, dir.path());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["aud"], json!([ISSUER]));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "kubectl's default: the server's hour");
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["uid"],
        account["metadata"]["uid"]
    );

    // A changed claim, or a token signed for another audience, is kube's 401.
    let mut forged_claims = claims.clone();
    forged_claims["sub"] = json!("system:serviceaccount:kube-system:default");
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
    let forged = parts.join(".");
    let err = c.kubectl_err(&["--token", &forged, "auth", "whoami"]);
    assert!(err.contains("Unauthorized"), "{err}");
    let vault = create_token(&c, &["default", "--audience", "vault", "--duration", "15m"]);
    let err = c.kubectl_err(&["--token", &vault, "auth", "whoami"]);
    assert!(err.contains("Unauthorized"), "{err}");
    let vault_claims = verify_with_jwks(&vault, &jwks, dir.path());
    assert_eq!(vault_claims["aud"], json!(["vault"]));
    assert_eq!(
        vault_claims["exp"].as_i64().unwrap() - vault_claims["iat"].as_i64().unwrap(),
        900
    );
    let err = c.kubectl_err(&["create", "token", "default", "--duration", "5m"]);
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    // TokenReview says the same (and why the forged one fails).
    for (reviewed, audiences, authenticated, error) in [
        (&token, json!([]), true, ""),
        (&vault, json!(["vault"]), true, ""),
        (
            &forged,
            json!([]),
            false,
            "[invalid bearer token, square/go-jose: error in cryptographic primitive]",
        ),
    ] {
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": reviewed, "audiences": audiences}});
        let out = c.kubectl_with_input(
            &["create", "-f", "-", "-o", "json"],
            Some(&review.to_string()),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            answer["status"]["authenticated"].as_bool().unwrap_or(false),
            authenticated,
            "{answer}"
        );
        assert_eq!(
            answer["status"]["error"].as_str().unwrap_or(""),
            error,
            "{answer}"
        );
    }
}

#[test]
fn a_pod_bound_token_stops_working_with_its_pod() {
    let c = DevCluster::start();
    c.kubectl_ok(&["run", "web", "--image=nginx", "--restart=Never"]);
    let uid = c
        .kubectl_ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"])
        .trim()
        .to_string();
    let token = create_token(
        &c,
        &[
            "default",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "web",
            "--bound-object-uid",
            &uid,
        ],
    );
    let me = whoami(&c, &token);
    let extra = &me["status"]["userInfo"]["extra"];
    assert_eq!(
        extra["authentication.kubernetes.io/pod-name"],
        json!(["web"])
    );
    assert_eq!(extra["authentication.kubernetes.io/pod-uid"], json!([uid]));
    assert!(
        extra["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI="),
        "{extra}"
    );
    c.kubectl_ok(&["delete", "pod", "web", "--grace-period=0", "--force"]);
    wait_for(Duration::from_secs(20), "the pod to go", || {
        !c.kubectl(&["get", "pod", "web"]).status.success()
    });
    let err = c.kubectl_err(&["--token", &token, "auth", "whoami"]);
    assert!(err.contains("Unauthorized"), "{err}");
}

#[test]
fn tokens_outlive_a_restart_of_a_durable_cluster_only() {
    let c = DevCluster::start();
    let token = create_token(&c, &["default"]);
    let jwks = c.kubectl_ok(&["get", "--raw", "/openid/v1/jwks"]);
    let dir = c.stop();
    let c = DevCluster::start_in(dir, &[], &[]);
    assert_eq!(
        c.kubectl_ok(&["get", "--raw", "/openid/v1/jwks"]),
        jwks,
        "the key comes from the cluster data key"
    );
    assert_eq!(
        whoami(&c, &token)["status"]["userInfo"]["username"],
        "system:serviceaccount:default:default"
    );
    drop(c);

    let c = DevCluster::start_opts(&["--in-memory"], &[]);
    let token = create_token(&c, &["default"]);
    let jwks = c.kubectl_ok(&["get", "--raw", "/openid/v1/jwks"]);
    let dir = c.stop();
    let c = DevCluster::start_in(dir, &["--in-memory"], &[]);
    assert_ne!(
        c.kubectl_ok(&["get", "--raw", "/openid/v1/jwks"]),
        jwks,
        "a new random key per start"
    );
    let err = c.kubectl_err(&["--token", &token, "auth", "whoami"]);
    assert!(err.contains("Unauthorized"), "{err}");
}
