//! The kubelet signers end to end in core: a node (by its Seal token) asks for its client
//! certificate and gets it approved and signed by the cluster CA; requests for another node,
//! with wrong usages or names, or a key that did not sign them, are not; an expired token asks
//! nothing; the CA is published as kube-apiserver publishes its client CA.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::workers_tests::{ADMIN, D1, NOW, PACKAGE, Staker, deposit, seed};
use crate::api::Method;
use crate::csr::authority::{ClusterCa, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER};
use crate::csr::authority_tests::{csr, der_of, key, validity, verifies};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const CLIENT: [&str; 2] = ["digital signature", "client auth"];

fn body(name: &str, pem: &[u8], signer: &str, usages: &[&str], seconds: Option<u64>) -> Value {
    let mut spec = json!({"request": base64::engine::general_purpose::STANDARD.encode(pem),
        "signerName": signer, "usages": usages});
    if let Some(s) = seconds {
        spec["expirationSeconds"] = json!(s);
    }
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name}, "spec": spec})
}

struct Harness {
    core: super::Cluster,
    now: crate::UnixTime,
    token: String,
}

impl Harness {
    fn new() -> Self {
        let config = crate::Config {
            admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
            sui_package: Some(PACKAGE),
            cluster_ca: ClusterCa::from_secret(&[9; 32]),
            ..crate::Config::default()
        };
        let mut core = super::Cluster::new(config, [3; 32], NOW);
        let staker = Staker::new(1);
        assert_eq!(deposit(&mut core, &staker, 1, D1).1["applied"], 1);
        let token = staker.token("node-a", NOW.secs(), NOW.secs() + 3600);
        assert_eq!(
            seed(&mut core, "register-worker", "node-a", &token, NOW.secs()).0,
            200
        );
        Self {
            core,
            now: NOW,
            token,
        }
    }

    fn call(&mut self, method: Method, path: &str, body: &Value, bearer: &str) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let auth = alloc::format!("Bearer {bearer}");
        let mut req = super::ApiRequest::new(method, path);
        req.authorization = Some(&auth);
        req.content_type = Some("application/json");
        if !body.is_null() {
            req.body = &bytes;
        }
        let r = self
            .core
            .handle_request(self.now, &req)
            .into_response()
            .unwrap();
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// Lets the controllers run, then reads the request back as the administrator.
    fn settled(&mut self, name: &str) -> Value {
        for _ in 0..10 {
            self.core.handle_timeout(self.now);
        }
        let (code, obj) = self.call(
            Method::Get,
            &alloc::format!("{CSRS}/{name}"),
            &Value::Null,
            ADMIN,
        );
        assert_eq!(code, 200, "{obj}");
        obj
    }

    fn approve(&mut self, name: &str) {
        let (_, mut obj) = self.call(
            Method::Get,
            &alloc::format!("{CSRS}/{name}"),
            &Value::Null,
            ADMIN,
        );
        obj["status"] = json!({"conditions": [{"type": "Approved", "status": "True",
            "reason": "KubectlApprove", "message": "approved"}]});
        let (code, answer) = self.call(
            Method::Put,
            &alloc::format!("{CSRS}/{name}/approval"),
            &obj,
            ADMIN,
        );
        assert_eq!(code, 200, "{answer}");
    }
}

fn conditions(obj: &Value) -> Vec<(String, String)> {
    obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or("").into(),
                c["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

fn certificate(obj: &Value) -> alloc::vec::Vec<u8> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(obj["status"]["certificate"].as_str().unwrap())
        .unwrap();
    der_of(core::str::from_utf8(&pem).unwrap())
}

#[test]
fn a_node_gets_its_own_client_certificate_approved_and_signed() {
    let mut h = Harness::new();
    let pem = csr(
        &key(5),
        &key(5),
        "system:node:node-a",
        &["system:nodes"],
        &[],
    );
    let token = h.token.clone();
    let (code, created) = h.call(
        Method::Post,
        CSRS,
        &body("node-a-1", &pem, KUBELET_CLIENT_SIGNER, &CLIENT, Some(3600)),
        &token,
    );
    assert_eq!(code, 201, "{created}");
    let obj = h.settled("node-a-1");
    assert_eq!(
        conditions(&obj),
        [("Approved".into(), "AutoApproved".into())]
    );
    let der = certificate(&obj);
    let ca = h.core.config.cluster_ca.clone().unwrap();
    assert!(verifies(&ca, &der));
    // An hour (short: the end is not backdated), from five minutes ago.
    let (from, to) = validity(&der);
    let at = |secs: u64| {
        let t = crate::UnixTime::from_secs(secs).rfc3339();
        let d: String = t.chars().filter(char::is_ascii_digit).collect();
        alloc::format!("{}Z", &d[2..])
    };
    assert_eq!((from, to), (at(NOW.secs() - 300), at(NOW.secs() + 3600)));
    // kube-apiserver's client CA ConfigMap carries the CA.
    let (code, cm) = h.call(
        Method::Get,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
        &Value::Null,
        ADMIN,
    );
    assert_eq!(code, 200, "{cm}");
    assert_eq!(cm["data"]["client-ca-file"], ca.certificate_pem());
}

#[test]
fn requests_for_another_node_or_with_wrong_usages_wait_for_an_administrator() {
    let mut h = Harness::new();
    let token = h.token.clone();
    let other = csr(
        &key(5),
        &key(5),
        "system:node:node-b",
        &["system:nodes"],
        &[],
    );
    let mine = csr(
        &key(5),
        &key(5),
        "system:node:node-a",
        &["system:nodes"],
        &[],
    );
    let masters = csr(
        &key(5),
        &key(5),
        "system:node:node-a",
        &["system:masters"],
        &[],
    );
    let cases = [
        (
            "for-b",
            &other,
            KUBELET_CLIENT_SIGNER,
            &["digital signature", "client auth"][..],
        ),
        (
            "server-usage",
            &mine,
            KUBELET_CLIENT_SIGNER,
            &["digital signature", "client auth", "server auth"][..],
        ),
        ("masters", &masters, KUBELET_CLIENT_SIGNER, &CLIENT[..]),
        // Serving certificates are never approved automatically (as in kube).
        (
            "serving",
            &mine,
            KUBELET_SERVING_SIGNER,
            &["digital signature", "server auth"][..],
        ),
    ];
    for (name, pem, signer, usages) in cases {
        let (code, answer) = h.call(
            Method::Post,
            CSRS,
            &body(name, pem, signer, usages, None),
            &token,
        );
        assert_eq!(code, 201, "{name}: {answer}");
        let obj = h.settled(name);
        assert!(conditions(&obj).is_empty(), "{name}: {obj}");
        assert!(obj["status"].get("certificate").is_none(), "{name}");
    }
    // Approved by the administrator: the signer checks them as kube's does.
    for (name, want) in [
        (
            "server-usage",
            Some("usages did not match [client auth digital signature key encipherment]"),
        ),
        ("masters", Some("subject organization is not system:nodes")),
        ("serving", Some("DNS or IP subjectAltName is required")),
        ("for-b", None),
    ] {
        h.approve(name);
        let obj = h.settled(name);
        match want {
            Some(message) => {
                assert_eq!(
                    conditions(&obj),
                    [
                        ("Approved".into(), "KubectlApprove".into()),
                        ("Failed".into(), "SignerValidationFailure".into())
                    ],
                    "{name}"
                );
                assert_eq!(obj["status"]["conditions"][1]["message"], message);
                assert!(obj["status"].get("certificate").is_none(), "{name}");
            }
            None => {
                let ca = h.core.config.cluster_ca.clone().unwrap();
                assert!(verifies(&ca, &certificate(&obj)), "{name}");
            }
        }
    }
}

#[test]
fn forged_requests_and_expired_tokens_are_refused_at_the_door() {
    let mut h = Harness::new();
    let token = h.token.clone();
    // Its key did not sign it.
    let forged = csr(
        &key(5),
        &key(6),
        "system:node:node-a",
        &["system:nodes"],
        &[],
    );
    let (code, answer) = h.call(
        Method::Post,
        CSRS,
        &body("forged", &forged, KUBELET_CLIENT_SIGNER, &CLIENT, None),
        &token,
    );
    assert_eq!(code, 422, "{answer}");
    // An expired Seal token asks nothing.
    let mine = csr(
        &key(5),
        &key(5),
        "system:node:node-a",
        &["system:nodes"],
        &[],
    );
    h.now = NOW.plus_secs(3601);
    let (code, answer) = h.call(
        Method::Post,
        CSRS,
        &body("late", &mine, KUBELET_CLIENT_SIGNER, &CLIENT, None),
        &token,
    );
    assert_eq!(code, 401, "{answer}");
    // A request made by the administrator is not the node's own: it waits.
    h.now = NOW;
    let (code, _) = h.call(
        Method::Post,
        CSRS,
        &body("by-admin", &mine, KUBELET_CLIENT_SIGNER, &CLIENT, None),
        ADMIN,
    );
    assert_eq!(code, 201);
    assert!(conditions(&h.settled("by-admin")).is_empty());
}

#[test]
fn a_cluster_ca_certificate_authenticates_its_node_held_to_the_stake() {
    let mut h = Harness::new();
    let as_cert = |h: &mut Harness, name: &str, path: &str| -> (u16, Value) {
        let user = crate::auth::CertUser {
            name: name.into(),
            groups: alloc::vec!["system:nodes".into()],
            cluster_ca: true,
        };
        let mut req = super::ApiRequest::new(Method::Get, path);
        req.client_cert = Some(&user);
        let r = h.core.handle_request(h.now, &req).into_response().unwrap();
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    };
    // Registered node-a: its certificate acts as node-a (the node authorizer's rules).
    let (code, node) = as_cert(&mut h, "system:node:node-a", "/api/v1/nodes/node-a");
    assert_eq!(code, 200, "{node}");
    let (code, answer) = as_cert(&mut h, "system:node:node-a", "/api/v1/secrets");
    assert_eq!(code, 403, "{answer}");
    // A node without a stake (never registered, no issued request) is nobody.
    let (code, _) = as_cert(&mut h, "system:node:ghost", "/api/v1/nodes/ghost");
    assert_eq!(code, 401);
    // Not a node certificate.
    let (code, _) = as_cert(&mut h, "alice", "/api/v1/nodes/node-a");
    assert_eq!(code, 401);
    // A node that never registered, bootstrapping with its Seal token: once its request is
    // issued, its certificate authenticates it against the token's stake.
    let token_b = Staker::new(1).token("node-b", NOW.secs(), NOW.secs() + 3600);
    let (code, _) = as_cert(&mut h, "system:node:node-b", "/api/v1/nodes/node-b");
    assert_eq!(code, 401);
    let pem = csr(
        &key(5),
        &key(5),
        "system:node:node-b",
        &["system:nodes"],
        &[],
    );
    let (code, created) = h.call(
        Method::Post,
        CSRS,
        &body("node-b-1", &pem, KUBELET_CLIENT_SIGNER, &CLIENT, None),
        &token_b,
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["spec"]["extra"]["nautilus.io/stake-id"][0]
            .as_str()
            .map(str::len),
        Some(66)
    );
    assert!(h.settled("node-b-1")["status"]["certificate"].is_string());
    let (code, answer) = as_cert(&mut h, "system:node:node-b", "/api/v1/nodes/node-b");
    assert_eq!(code, 404, "authenticated, no Node yet: {answer}");
}

/// A kubelet registers its own Node (never registered through register-worker): the Node gets
/// the enclave's record of the stake and its Lease, as register-worker writes them;
/// NodeRestriction still refuses another node's name, forbidden labels and the node's own
/// `nautilus.io/` annotations.
#[test]
fn a_node_registers_its_own_node_held_to_its_stake() {
    let mut h = Harness::new();
    let token_c = Staker::new(1).token("node-c", NOW.secs(), NOW.secs() + 3600);
    let node = |name: &str, labels: Value, annotations: Value| {
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": annotations}})
    };
    let cases = [
        (
            node("node-d", json!({}), json!({})),
            "is not allowed to modify node \"node-d\"",
        ),
        (
            node(
                "node-c",
                json!({"node-role.kubernetes.io/master": ""}),
                json!({}),
            ),
            "is not allowed to set the following labels: node-role.kubernetes.io/master",
        ),
        (
            node("node-c", json!({}), json!({"nautilus.io/stake-id": "0x00"})),
            "nautilus.io/",
        ),
    ];
    for (body, want) in cases {
        let (code, answer) = h.call(Method::Post, "/api/v1/nodes", &body, &token_c);
        assert_eq!(code, 403, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(want),
            "{answer}"
        );
    }
    let (code, created) = h.call(
        Method::Post,
        "/api/v1/nodes",
        &node(
            "node-c",
            json!({"kubernetes.io/hostname": "node-c"}),
            json!({}),
        ),
        &token_c,
    );
    assert_eq!(code, 201, "{created}");
    let annotations = &created["metadata"]["annotations"];
    let (_, node_a) = h.call(Method::Get, "/api/v1/nodes/node-a", &Value::Null, ADMIN);
    for key in [
        "nautilus.io/staker-address",
        "nautilus.io/stake-id",
        "nautilus.io/stake-trust-level",
    ] {
        assert!(annotations[key].is_string(), "{key}: {created}");
        assert_eq!(
            annotations[key], node_a["metadata"]["annotations"][key],
            "{key}"
        );
    }
    let (code, lease) = h.call(
        Method::Get,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-c",
        &Value::Null,
        ADMIN,
    );
    assert_eq!(code, 200, "{lease}");
    // A second create is kube's 409, which a kubelet expects.
    let (code, _) = h.call(
        Method::Post,
        "/api/v1/nodes",
        &node("node-c", json!({}), json!({})),
        &token_c,
    );
    assert_eq!(code, 409);
}

/// kubelets name their requests `node-csr-` + base64url: kube accepts any name for a CSR.
#[test]
fn a_kubelets_request_name_is_accepted() {
    let mut h = Harness::new();
    let token = h.token.clone();
    let pem = csr(
        &key(5),
        &key(5),
        "system:node:node-a",
        &["system:nodes"],
        &[],
    );
    let name = "node-csr-BsrsuTpZVmRWX7DmYDxgPpv0H5Bf85eMD4zV3PsOFjg";
    let (code, answer) = h.call(
        Method::Post,
        CSRS,
        &body(name, &pem, KUBELET_CLIENT_SIGNER, &CLIENT, None),
        &token,
    );
    assert_eq!(code, 201, "{answer}");
    assert!(h.settled(name)["status"]["certificate"].is_string());
}

/// A kubelet renewing with its current certificate (no token): its own request is approved and
/// signed; one for another node waits.
#[test]
fn a_node_renews_with_its_certificate() {
    let mut h = Harness::new();
    let user = crate::auth::CertUser {
        name: "system:node:node-a".into(),
        groups: alloc::vec!["system:nodes".into()],
        cluster_ca: true,
    };
    for (name, cn, issued) in [
        ("renew", "system:node:node-a", true),
        ("other", "system:node:node-b", false),
    ] {
        let pem = csr(&key(7), &key(7), cn, &["system:nodes"], &[]);
        let bytes =
            serde_json::to_vec(&body(name, &pem, KUBELET_CLIENT_SIGNER, &CLIENT, None)).unwrap();
        let mut req = super::ApiRequest::new(Method::Post, CSRS);
        req.client_cert = Some(&user);
        req.content_type = Some("application/json");
        req.body = &bytes;
        let r = h.core.handle_request(h.now, &req).into_response().unwrap();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let obj = h.settled(name);
        assert_eq!(obj["spec"]["username"], "system:node:node-a");
        assert_eq!(
            obj["status"]["certificate"].is_string(),
            issued,
            "{name}: {obj}"
        );
    }
}
