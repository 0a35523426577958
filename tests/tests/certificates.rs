//! CertificateSigningRequests end to end with the real kubectl: requests made by a real X.509
//! library (rcgen, ECDSA) and by `openssl req` (RSA, its default), `kubectl get csr` columns,
//! `kubectl certificate approve` and `deny` through the approval subresource, and kube's
//! refusals. No signer runs yet (issue 18): an approved request stays unissued.

use base64::Engine as _;
use nautilus_tests::DevCluster;
use serde_json::json;

/// A PEM certificate request for `name` made by rcgen (ECDSA P-256, as a kubelet's).
fn request(name: &str) -> String {
    use rcgen::{CertificateParams, DnType, KeyPair};
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
}

/// A PEM certificate request for `name` made by `openssl req` with a new RSA-2048 key (PKCS#1
/// v1.5 with SHA-256), what most tools and how-tos submit.
fn openssl_rsa_request(name: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "/dev/null",
        ])
        .args(["-subj", &format!("/O=system:nodes/CN={name}")])
        .output()
        .expect("openssl (tests/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("PEM")
}

fn manifest(name: &str, pem: &str) -> String {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 3600,
            "usages": ["client auth"]}})
    .to_string()
}

#[test]
fn kubectl_approves_and_denies_certificate_signing_requests() {
    let c = DevCluster::start();
    for name in ["alice", "mallory"] {
        let out = c.kubectl_with_input(
            &["create", "-f", "-"],
            Some(&manifest(name, &request(name))),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let table = c.kubectl_ok(&["get", "csr"]);
    let mut lines = table.lines();
    assert_eq!(
        lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(row[0], "alice", "{table}");
    assert_eq!(
        row[2..],
        [
            "kubernetes.io/kube-apiserver-client",
            "nautilus:admin",
            "60m",
            "Pending"
        ],
        "{table}"
    );

    assert_eq!(
        c.kubectl_ok(&["certificate", "approve", "alice"]).trim(),
        "certificatesigningrequest.certificates.k8s.io/alice approved"
    );
    assert_eq!(
        c.kubectl_ok(&["certificate", "deny", "mallory"]).trim(),
        "certificatesigningrequest.certificates.k8s.io/mallory denied"
    );
    let conditions = c.kubectl_ok(&[
        "get",
        "csr",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[0].type}/{.status.conditions[0].reason} {end}",
    ]);
    assert_eq!(
        conditions.trim(),
        "alice=Approved/KubectlApprove mallory=Denied/KubectlDeny"
    );
    let table = c.kubectl_ok(&["get", "csr", "alice", "mallory", "--no-headers"]);
    assert!(table.contains("Approved"), "{table}");
    assert!(table.contains("Denied"), "{table}");
    // kubectl will not deny an approved request; the server refuses it too, in kube's words.
    let err = c.kubectl_err(&["certificate", "deny", "alice"]);
    assert!(err.contains("is already Approved"), "{err}");
    let mut alice: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "csr", "alice", "-o", "json"])).expect("json");
    alice["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .push(json!({"type": "Denied", "status": "True"}));
    let reply = c
        .request(
            "PUT",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/alice/approval",
            Some(alice.to_string().as_bytes()),
            &[],
        )
        .expect("PUT approval");
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json()["message"],
        "CertificateSigningRequest.certificates.k8s.io \"alice\" is invalid: status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
    );

    // A request that is no PEM certificate request is refused as kube refuses it.
    let out = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some(&manifest("junk", "not a request")),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.request: Invalid value: []byte{0x6e, 0x6f, 0x74")
            && stderr.contains("PEM block type must be CERTIFICATE REQUEST"),
        "{stderr}"
    );
}

#[test]
fn kubectl_creates_and_approves_an_openssl_rsa_request() {
    let c = DevCluster::start();
    let pem = openssl_rsa_request("bob");
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{pem}"
    );
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&manifest("bob", &pem)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.kubectl_ok(&["certificate", "approve", "bob"]).trim(),
        "certificatesigningrequest.certificates.k8s.io/bob approved"
    );
    let bob: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "csr", "bob", "-o", "json"])).expect("json");
    let request = base64::engine::general_purpose::STANDARD
        .decode(bob["spec"]["request"].as_str().expect("spec.request"))
        .expect("base64");
    assert_eq!(String::from_utf8_lossy(&request), pem);
    assert_eq!(bob["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(bob["status"]["conditions"][0]["reason"], "KubectlApprove");

    // The same request with its subject changed after signing is refused in Go's words.
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .expect("base64");
    let at = der.windows(3).position(|w| w == b"bob").expect("subject");
    let mut forged = der.clone();
    forged[at] = b'B';
    let forged = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(&forged)
    );
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&manifest("eve", &forged)));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.request: Invalid value: []byte{0x2d, 0x2d")
            && stderr.contains(": crypto/rsa: verification error"),
        "{stderr}"
    );
}
