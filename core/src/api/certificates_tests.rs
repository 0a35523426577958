//! CertificateSigningRequests against the core alone: who asked is the server's to say, the
//! request is checked as kube checks it (PEM, PKCS#10, signature), approval and denial go
//! through `approval` under kube's rules, the certificate through `status`, printed with
//! kube's columns; nodes may ask and watch, not approve.

use alloc::string::String;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::api::Method;
use crate::cluster::test_harness::{Cluster, column_names, messages};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

// Made with openssl (`req -new` with a P-256, an Ed25519, a P-384 and an RSA-2048 key; `req -x509`).
const P256_CSR: &str = include_str!("../csr/fixtures/p256-sha256.pem");
const ED25519_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIGRMEUCAQAwEjEQMA4GA1UEAwwHZWQtdXNlcjAqMAUGAytlcAMhABm4CQFb8edy\nHJb0NV2BSZHrdvoUGEOZRnrIQHLJQhSqoAAwBQYDK2VwA0EAm85mJzrcjLQACw6Z\nhwqhJrI3QpEZM86sDbZECx5JLnUO2Czc6BAfs6/nh3WiTh/d47TTEJKFtglXPndj\n+qRACQ==\n-----END CERTIFICATE REQUEST-----\n";
const P384_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBCzCBkwIBADAUMRIwEAYDVQQDDAlwMzg0LXVzZXIwdjAQBgcqhkjOPQIBBgUr\ngQQAIgNiAATqMgHA80IyYt/UFV+9GLAGY9oHkhwaGJxpP3yFQMqenQWlwtvRxeHG\nyiW+aRFW2p2UzeRro7Zm//qI0o6uJa7nSqvuv+JhD0p1WYwl+mh5R3SSjU9rVpkK\n6dCuojm+zp6gADAKBggqhkjOPQQDAwNnADBkAjBP3+iiCHcFL65vnZiEb4P/KMId\nIUNZRwNPv30aouYh1DjiPdZ4KJVAzjLqxxP0RGsCMG3/V/Jk01qJ3dKI2iysO55I\nria1+FuQ1H+UYGvUJPBi7iZ5JsruoAmxmjLLahG5Ng==\n-----END CERTIFICATE REQUEST-----\n";
const RSA_CSR: &str = include_str!("../csr/fixtures/rsa2048-sha256.pem");
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUX3DHNWxfqLSAKtJEI8cRC/zYsgUwCgYIKoZIzj0EAwIw\nETEPMA0GA1UEAwwGaXNzdWVkMB4XDTI2MTIwNjE2NTM1NVoXDTI2MTIwNzE2NTM1\nNVowETEPMA0GA1UEAwwGaXNzdWVkMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nWQEim7bAcdsADx9HjKNTGbZC3HCTTY/FsQl6o4x1SIAwhNVfiYIDHk+zKscPWT2S\n5b59/x9xQaR4DRuWjp9ZtKNTMFEwHQYDVR0OBBYEFKTzVjWQ+OfQN8zdqwHqi26l\n2gKzMB8GA1UdIwQYMBaAFKTzVjWQ+OfQN8zdqwHqi26l2gKzMA8GA1UdEwEB/wQF\nMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAL1aXYqtn+V1OiXgAkUbb8t1qpW5whED\nKbJ2bpEz2WrCAiBNMHBnYzXjVG+0fDOUN65o2+beG5W48X60bgtt57Q5oQ==\n-----END CERTIFICATE-----\n";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn csr(name: &str, pem: &str) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": b64(pem), "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"], "expirationSeconds": 86400,
            "username": "someone-else", "groups": ["system:masters"]}})
}

fn approve(c: &mut Cluster, name: &str, kind: &str) -> (u16, Value) {
    let (code, mut current) = c.get(&alloc::format!("{CSRS}/{name}"));
    assert_eq!(code, 200);
    let list = current["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut list = list;
    list.push(
        json!({"type": kind, "status": "True", "reason": "KubectlApprove",
        "message": "This CSR was approved by kubectl certificate approve."}),
    );
    current["status"]["conditions"] = Value::Array(list);
    c.call(
        Method::Put,
        &alloc::format!("{CSRS}/{name}/approval"),
        current,
        "application/json",
    )
}

#[test]
fn a_request_is_checked_attributed_approved_and_issued() {
    let mut c = Cluster::new();
    for (name, pem) in [
        ("p256", P256_CSR),
        ("ed", ED25519_CSR),
        ("p384", P384_CSR),
        ("rsa", RSA_CSR),
    ] {
        let (code, created) = c.post(CSRS, csr(name, pem));
        assert_eq!(code, 201, "{name}: {created}");
        // The requester is the server's to say, never the body's.
        assert_eq!(created["spec"]["username"], "nautilus:admin");
        assert_eq!(
            created["spec"]["groups"],
            json!(["system:masters", "system:authenticated"])
        );
        assert_eq!(created["status"], json!({}));
    }
    let table = c.table(CSRS);
    assert_eq!(
        column_names(&table),
        [
            "Name",
            "Age",
            "SignerName",
            "Requestor",
            "RequestedDuration",
            "Condition"
        ]
    );
    assert_eq!(
        table["rows"][1]["cells"],
        json!([
            "p256",
            "0s",
            "kubernetes.io/kube-apiserver-client-kubelet",
            "nautilus:admin",
            "24h",
            "Pending"
        ])
    );

    // The main resource changes metadata only; status cannot approve.
    let (_, mut current) = c.get(&alloc::format!("{CSRS}/p256"));
    current["metadata"]["labels"] = json!({"a": "b"});
    current["spec"]["signerName"] = json!("example.com/other");
    current["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let (code, updated) = c.call(
        Method::Put,
        &alloc::format!("{CSRS}/p256"),
        current,
        "application/json",
    );
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["metadata"]["labels"], json!({"a": "b"}));
    assert_eq!(
        updated["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert_eq!(updated["status"], json!({}));
    let (code, status) = c.patch(
        &alloc::format!("{CSRS}/p256/status"),
        json!({"status": {"conditions": [{"type": "Approved", "status": "True"}]}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        messages(&status),
        ["status.conditions: Forbidden: updates may not add a condition of type \"Approved\""]
    );

    // Approval, with kube's timestamps; then Denied as well is refused, and so is removal.
    let (code, approved) = approve(&mut c, "p256", "Approved");
    assert_eq!(code, 200, "{approved}");
    let condition = &approved["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved");
    assert_eq!(condition["lastUpdateTime"], "2025-06-15T15:06:40Z");
    assert_eq!(condition["lastTransitionTime"], "2025-06-15T15:06:40Z");
    let (code, status) = approve(&mut c, "p256", "Denied");
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        messages(&status),
        [
            "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
        ]
    );
    let (_, mut current) = c.get(&alloc::format!("{CSRS}/p256"));
    current["status"]["conditions"] = json!([]);
    let (code, status) = c.call(
        Method::Put,
        &alloc::format!("{CSRS}/p256/approval"),
        current,
        "application/json",
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        messages(&status),
        ["status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""]
    );

    // A signer writes the certificate through status, once; approval cannot set it.
    let (code, issued) = c.patch(
        &alloc::format!("{CSRS}/p256/status"),
        json!({"status": {"certificate": b64(CERT)}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{issued}");
    assert_eq!(issued["status"]["conditions"][0]["type"], "Approved");
    let (code, status) = c.patch(
        &alloc::format!("{CSRS}/p256/status"),
        json!({"status": {"certificate": b64(&alloc::format!("{CERT}{CERT}"))}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        messages(&status),
        ["status.certificate: Forbidden: updates may not modify existing certificate content"]
    );
    let table = c.table(CSRS);
    assert_eq!(table["rows"][1]["cells"][5], "Approved,Issued");
}

#[test]
fn bad_requests_are_refused_in_kube_s_words() {
    let mut c = Cluster::new();
    // A request whose subject was changed after signing.
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            P256_CSR
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let at = der.windows(6).position(|w| w == b"node-a").unwrap();
    let mut forged = der.clone();
    forged[at + 5] = b'b';
    let pem = alloc::format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(&forged)
    );
    let (code, status) = c.post(CSRS, csr("forged", &pem));
    assert_eq!(code, 422, "{status}");
    let message = &messages(&status)[0];
    assert!(
        message.starts_with("spec.request: Invalid value: []byte{0x2d, 0x2d"),
        "{message}"
    );
    assert!(
        message.ends_with(": x509: ECDSA verification failure"),
        "{message}"
    );

    let mut body = csr("bad", CERT);
    body["spec"]["signerName"] = json!("kubelet");
    body["spec"]["usages"] = json!(["client auth", "client auth", "flying"]);
    body["spec"]["expirationSeconds"] = json!(60);
    let (code, status) = c.post(CSRS, body);
    assert_eq!(code, 422, "{status}");
    let got = messages(&status);
    assert!(
        got[0].ends_with(": PEM block type must be CERTIFICATE REQUEST"),
        "{got:?}"
    );
    assert_eq!(
        got[1..],
        [
            "spec.usages[2]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\", \"ipsec end system\", \"ipsec tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", \"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", \"server auth\", \"signing\", \"timestamping\"",
            "spec.usages[1]: Duplicate value: \"client auth\"",
            "spec.signerName: Invalid value: \"kubelet\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
        ]
    );
    let mut body = csr("nosigner", P256_CSR);
    body["spec"]["signerName"] = json!("");
    body["spec"]["usages"] = json!([]);
    let (code, status) = c.post(CSRS, body);
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        messages(&status),
        [
            "spec.usages: Required value",
            "spec.signerName: Required value"
        ]
    );
    assert_eq!(c.get(&alloc::format!("{CSRS}/nosigner")).0, 404);
}

/// A node (by its Seal token) asks for its client certificate and watches its requests, as
/// kube's system:node role lets a kubelet; approving is not a node's.
#[test]
fn a_node_asks_for_its_certificate_but_cannot_approve_it() {
    use super::workers_tests::{ADMIN, D1, NOW, PACKAGE, Staker, deposit, seed};
    use sha2::{Digest, Sha256};
    let config = crate::Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        ..crate::Config::default()
    };
    let mut s = super::Cluster::new(config, [3; 32], NOW);
    let staker = Staker::new(1);
    assert_eq!(deposit(&mut s, &staker, 1, D1).1["applied"], 1);
    let token = staker.token("node-a", NOW.secs(), NOW.secs() + 3600);
    assert_eq!(
        seed(&mut s, "register-worker", "node-a", &token, NOW.secs()).0,
        200
    );
    let mut call = |method: Method, path: &str, body: &Value, bearer: &str| -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let auth = alloc::format!("Bearer {bearer}");
        let mut req = super::ApiRequest::new(method, path);
        req.authorization = Some(&auth);
        req.content_type = Some("application/json");
        if !body.is_null() {
            req.body = &bytes;
        }
        let r = s.handle_request(NOW, &req).into_response().unwrap();
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    };
    let (code, created) = call(Method::Post, CSRS, &csr("node-csr", P256_CSR), &token);
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["username"], "system:node:node-a");
    assert_eq!(
        created["spec"]["groups"],
        json!(["system:nodes", "system:authenticated"])
    );
    let (code, list) = call(Method::Get, CSRS, &Value::Null, &token);
    assert_eq!(code, 200, "{list}");
    let (code, _) = call(
        Method::Get,
        &alloc::format!("{CSRS}/node-csr"),
        &Value::Null,
        &token,
    );
    assert_eq!(code, 200);
    let mut approval = created.clone();
    approval["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let (code, status) = call(
        Method::Put,
        &alloc::format!("{CSRS}/node-csr/approval"),
        &approval,
        &token,
    );
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "certificatesigningrequests.certificates.k8s.io \"node-csr\" is forbidden: User \"system:node:node-a\" cannot update resource \"certificatesigningrequests/approval\" in API group \"certificates.k8s.io\" at the cluster scope"
    );
    let (code, _) = call(
        Method::Delete,
        &alloc::format!("{CSRS}/node-csr"),
        &Value::Null,
        &token,
    );
    assert_eq!(code, 403);
    // The admin approves.
    let (code, approved) = call(
        Method::Put,
        &alloc::format!("{CSRS}/node-csr/approval"),
        &approval,
        ADMIN,
    );
    assert_eq!(code, 200, "{approved}");
}
