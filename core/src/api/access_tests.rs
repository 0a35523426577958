//! Access reviews against the core alone: each verdict is checked against what the same caller
//! then gets when it makes the request for real.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method};
use crate::auth::CertUser;
use crate::token::{SealClaims, ed25519_address, hex32, mint_ed25519};
use crate::{Config, UnixTime};

pub(super) const ADMIN: &str = "admin";
const PACKAGE: [u8; 32] = [0xab; 32];
pub(super) const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);
pub(super) const SAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
pub(super) const SRR: &str = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
pub(super) const WHOAMI: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

pub(super) fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        service_account_key: crate::serviceaccount::ServiceAccountKey::from_secret(&[9; 32]),
        ..Config::default()
    };
    Cluster::new(config, [3; 32], NOW)
}

pub(super) fn call_as(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
    cert: Option<&CertUser>,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let auth = bearer.map(|b| alloc::format!("Bearer {b}"));
    let mut req = ApiRequest::new(method, path);
    req.authorization = auth.as_deref();
    req.client_cert = cert;
    req.content_type = Some(if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    });
    if !body.is_null() {
        req.body = &bytes;
    }
    let r = crate::cluster::test_harness::answer(s, NOW, &req)
        .into_response()
        .unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

pub(super) fn call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
) -> (u16, Value) {
    call_as(s, method, path, body, bearer, None)
}

/// A cluster with node `node-a` registered (its Seal token returned) and two pods, one bound to
/// it and one bound elsewhere.
pub(super) fn cluster() -> (Cluster, String) {
    let mut s = server();
    let secret = [1u8; 32];
    let stake = [101u8; 32];
    let pkg = hex32(&PACKAGE);
    let deposit = json!({"checkpoint": 1, "events": [{
        "id": {"txDigest": "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", "eventSeq": "0"},
        "packageId": pkg, "transactionModule": "staking", "sender": "0x00",
        "type": alloc::format!("{pkg}::staking::StakeDeposited"),
        "parsedJson": {"stake_id": hex32(&stake), "owner": ed25519_address(&secret).to_hex(),
            "amount": "2000000000"},
        "timestampMs": "1"}]});
    let (code, body) = call(
        &mut s,
        Method::Post,
        "/api/v1/sui-events",
        &deposit,
        Some(ADMIN),
    );
    assert_eq!(code, 200, "{body}");
    let token = mint_ed25519(
        &secret,
        &SealClaims {
            node_id: "node-a".into(),
            stake_id: stake,
            iat: NOW.secs(),
            exp: NOW.secs() + 3600,
        },
    );
    let body = serde_json::to_vec(
        &json!({"node_id": "node-a", "seal_token": token, "timestamp": NOW.secs()}),
    )
    .unwrap();
    let mut req = ApiRequest::new(Method::Post, "/api/v1/register-worker");
    req.seal_token = Some(&token);
    req.content_type = Some("application/json");
    req.body = &body;
    let r = crate::cluster::test_harness::answer(&mut s, NOW, &req)
        .into_response()
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    for (name, node) in [("mine", "node-a"), ("theirs", "node-b")] {
        let pod = json!({"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}});
        let (code, body) = call(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/default/pods",
            &pod,
            Some(ADMIN),
        );
        assert_eq!(code, 201, "{body}");
    }
    (s, token)
}

fn access(
    s: &mut Cluster,
    bearer: Option<&str>,
    attributes: &Value,
    non_resource: bool,
) -> (bool, Value) {
    let key = if non_resource {
        "nonResourceAttributes"
    } else {
        "resourceAttributes"
    };
    let review = json!({"kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {key: attributes}});
    let (code, body) = call(s, Method::Post, SAR, &review, bearer);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "SelfSubjectAccessReview");
    assert_eq!(body["spec"][key], *attributes);
    (body["status"]["allowed"].as_bool().unwrap(), body)
}

#[test]
fn whoami_names_each_kind_of_caller_as_kube_would() {
    let (mut s, token) = cluster();
    let alice = CertUser {
        name: "alice".into(),
        groups: alloc::vec!["dev".into()],
        cluster_ca: false,
    };
    let review = json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"});
    let cases: [(Option<&str>, Option<&CertUser>, &str, Value); 4] = [
        (
            Some(ADMIN),
            None,
            "nautilus:admin",
            json!(["system:masters", "system:authenticated"]),
        ),
        (
            Some(&token),
            None,
            "system:node:node-a",
            json!(["system:nodes", "system:authenticated"]),
        ),
        (
            None,
            Some(&alice),
            "alice",
            json!(["dev", "system:authenticated"]),
        ),
        (
            None,
            None,
            "system:anonymous",
            json!(["system:unauthenticated"]),
        ),
    ];
    for (bearer, cert, user, groups) in cases {
        let (code, body) = call_as(&mut s, Method::Post, WHOAMI, &review, bearer, cert);
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(body["metadata"]["creationTimestamp"], NOW.rfc3339());
        assert_eq!(body["status"]["userInfo"]["username"], user);
        assert_eq!(body["status"]["userInfo"]["groups"], groups);
    }
    let (code, _) = call(&mut s, Method::Get, WHOAMI, &Value::Null, Some(ADMIN));
    assert_eq!(code, 405);
}

/// A node's review verdict is exactly what the real request gets: 403 or not.
#[test]
fn a_nodes_access_reviews_agree_with_what_its_requests_get() {
    let (mut s, token) = cluster();
    let cases: &[(&str, &str, &str, Value)] = &[
        (
            "get",
            "/api/v1/nodes/node-a",
            "",
            json!({"verb": "get", "resource": "nodes", "name": "node-a"}),
        ),
        (
            "get",
            "/api/v1/nodes/node-b",
            "",
            json!({"verb": "get", "resource": "nodes", "name": "node-b"}),
        ),
        (
            "list",
            "/api/v1/nodes",
            "",
            json!({"verb": "list", "resource": "nodes"}),
        ),
        (
            "get",
            "/api/v1/namespaces/default/pods/mine",
            "",
            json!({"verb": "get", "resource": "pods", "namespace": "default", "name": "mine"}),
        ),
        (
            "get",
            "/api/v1/namespaces/default/pods/theirs",
            "",
            json!({"verb": "get", "resource": "pods", "namespace": "default", "name": "theirs"}),
        ),
        (
            "list",
            "/api/v1/pods",
            "",
            json!({"verb": "list", "resource": "pods"}),
        ),
        (
            "list",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a",
            "",
            json!({"verb": "list", "resource": "pods", "fieldSelector": {"rawSelector": "spec.nodeName=node-a"}}),
        ),
        (
            "list",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a",
            "",
            json!({"verb": "list", "resource": "pods", "fieldSelector": {"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["node-a"]}]}}),
        ),
        (
            "list",
            "/api/v1/secrets",
            "",
            json!({"verb": "list", "resource": "secrets", "version": "v1"}),
        ),
        (
            "get",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a",
            "",
            json!({"verb": "get", "group": "coordination.k8s.io", "resource": "leases", "namespace": "kube-node-lease", "name": "node-a"}),
        ),
        (
            "get",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-b",
            "",
            json!({"verb": "get", "group": "coordination.k8s.io", "resource": "leases", "namespace": "kube-node-lease", "name": "node-b"}),
        ),
        (
            "patch",
            "/api/v1/namespaces/default/pods/mine/status",
            "{\"status\":{\"phase\":\"Running\"}}",
            json!({"verb": "patch", "resource": "pods", "subresource": "status", "namespace": "default", "name": "mine"}),
        ),
        (
            "patch",
            "/api/v1/namespaces/default/pods/mine",
            "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}",
            json!({"verb": "patch", "resource": "pods", "namespace": "default", "name": "mine"}),
        ),
        (
            "create",
            "/api/v1/namespaces/default/configmaps",
            "{\"metadata\":{\"name\":\"c\"}}",
            json!({"verb": "create", "resource": "configmaps", "namespace": "default"}),
        ),
        (
            "delete",
            "/api/v1/namespaces/default/pods/theirs",
            "",
            json!({"verb": "delete", "resource": "pods", "namespace": "default", "name": "theirs"}),
        ),
    ];
    let mut allowed = 0;
    for (verb, path, body, attributes) in cases {
        let (verdict, review) = access(&mut s, Some(&token), attributes, false);
        let method = match *verb {
            "patch" => Method::Patch,
            "create" => Method::Post,
            "delete" => Method::Delete,
            _ => Method::Get,
        };
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap()
        };
        let (code, answer) = call(&mut s, method, path, &body, Some(&token));
        // A review answers for the authorizer, as kube's does; admission (NodeRestriction) may
        // still refuse an authorized request, with its own wording.
        let authorized = code != 403
            || !answer["message"]
                .as_str()
                .unwrap_or("")
                .contains("User \"system:node:");
        assert_eq!(
            verdict, authorized,
            "{attributes}: review {review}, request {code} {answer}"
        );
        if verdict {
            allowed += 1;
            assert!(review["status"].get("reason").is_none());
        } else {
            assert_eq!(
                review["status"]["reason"], answer["message"],
                "{attributes}"
            );
        }
    }
    assert_eq!(allowed, 7, "both verdicts are exercised");
    let (verdict, review) = access(
        &mut s,
        Some(&token),
        &json!({"verb": "escalate", "resource": "pods", "namespace": "default"}),
        false,
    );
    assert!(!verdict);
    assert!(
        review["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("escalate")
    );
}

#[test]
fn the_admin_and_certificate_users_may_do_everything_anonymous_callers_the_public_paths() {
    let (mut s, token) = cluster();
    let anything = json!({"verb": "*", "group": "*", "resource": "*"});
    assert!(access(&mut s, Some(ADMIN), &anything, false).0);
    let alice = CertUser {
        name: "alice".into(),
        groups: Vec::new(),
        cluster_ca: false,
    };
    let review = json!({"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}});
    let (code, body) = call_as(&mut s, Method::Post, SAR, &review, None, Some(&alice));
    assert_eq!((code, &body["status"]["allowed"]), (201, &json!(true)));
    for (path, public) in [
        ("/healthz", true),
        ("/readyz/ping", true),
        ("/livez", true),
        ("/version", true),
        ("/api", false),
        ("/apis/apps/v1", false),
        ("/openapi/v3", false),
        ("/metrics", false),
    ] {
        let attributes = json!({"verb": "get", "path": path});
        let (anonymous, _) = access(&mut s, None, &attributes, true);
        let (node, _) = access(&mut s, Some(&token), &attributes, true);
        assert_eq!(anonymous, public, "{path}");
        let (code, _) = call(&mut s, Method::Get, path, &Value::Null, None);
        if path != "/metrics" {
            // /metrics is the runtime's (admin only), not core's.
            assert_eq!(code != 401, public, "{path}: anonymous GET answered {code}");
            let (code, _) = call(&mut s, Method::Get, path, &Value::Null, Some(&token));
            assert_eq!(node, code == 200, "{path}: node GET answered {code}");
        }
    }
    assert!(
        access(
            &mut s,
            None,
            &json!({"verb": "get", "path": "/attestation"}),
            true
        )
        .0
    );
    assert!(
        !access(
            &mut s,
            None,
            &json!({"verb": "post", "path": "/healthz"}),
            true
        )
        .0
    );
    assert!(
        !access(
            &mut s,
            None,
            &json!({"verb": "get", "resource": "pods"}),
            false
        )
        .0
    );
}

#[test]
fn malformed_reviews_get_kubes_errors() {
    let mut s = server();
    let (code, body) = call(&mut s, Method::Post, SAR, &json!({"spec": {}}), Some(ADMIN));
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );
    assert_eq!(body["details"]["group"], "authorization.k8s.io");
    let both = json!({"spec": {"resourceAttributes": {"verb": "get"},
        "nonResourceAttributes": {"verb": "get", "path": "/api"}}});
    let (code, body) = call(&mut s, Method::Post, SAR, &both, Some(ADMIN));
    assert_eq!(code, 422);
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.nonResourceAttributes"
    );
    let named = json!({"metadata": {"name": "x"}, "spec": {"resourceAttributes": {"verb": "get"}}});
    let (code, body) = call(&mut s, Method::Post, SAR, &named, Some(ADMIN));
    assert_eq!(
        (code, &body["details"]["causes"][0]["field"]),
        (422, &json!("metadata"))
    );
    let wrong = json!({"kind": "SelfSubjectRulesReview", "spec": {}});
    assert_eq!(call(&mut s, Method::Post, SAR, &wrong, Some(ADMIN)).0, 400);
    let (code, body) = call(&mut s, Method::Post, SRR, &json!({"spec": {}}), Some(ADMIN));
    assert_eq!(
        (code, &body["message"]),
        (400, &json!("no namespace on request"))
    );
}

#[test]
fn a_rules_review_lists_what_the_authorizer_allows() {
    let (mut s, token) = cluster();
    let review = json!({"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"namespace": "default"}});
    let (code, admin) = call(&mut s, Method::Post, SRR, &review, Some(ADMIN));
    assert_eq!(code, 201, "{admin}");
    assert_eq!(
        admin["status"]["resourceRules"],
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
    );
    assert_eq!(admin["status"]["incomplete"], false);

    let (code, node) = call(&mut s, Method::Post, SRR, &review, Some(&token));
    assert_eq!(code, 201, "{node}");
    let rules = node["status"]["resourceRules"].as_array().unwrap();
    let rule = |resource: &str, name: Option<&str>| {
        rules
            .iter()
            .find(|r| {
                r["resources"][0] == resource
                    && r.get("resourceNames").map(|n| &n[0]) == name.map(|n| json!(n)).as_ref()
            })
            .map(|r| r["verbs"].clone())
    };
    assert_eq!(
        rule("nodes", Some("node-a")),
        Some(json!(["get", "patch", "update", "watch"]))
    );
    assert_eq!(rule("events", None), Some(json!(["create"])));
    assert_eq!(
        rule("pods", Some("mine")),
        Some(json!(["delete", "get", "watch"]))
    );
    let status = rule("pods/status", Some("mine")).unwrap();
    for verb in ["patch", "update"] {
        assert!(
            status.as_array().unwrap().contains(&json!(verb)),
            "{status}"
        );
    }
    assert_eq!(rule("pods", Some("theirs")), None);
    assert_eq!(rule("secrets", None), None);
    // Leases live in kube-node-lease: not in this namespace's rules.
    assert_eq!(rule("leases", Some("node-a")), None);
    assert_eq!(
        node["status"]["incomplete"], true,
        "pod lists need a field selector"
    );
    let urls = &node["status"]["nonResourceRules"][0]["nonResourceURLs"];
    assert!(urls.as_array().unwrap().contains(&json!("/apis/*")));

    let (_, anonymous) = call(&mut s, Method::Post, SRR, &review, None);
    assert_eq!(anonymous["status"]["resourceRules"], json!([]));
    let urls = anonymous["status"]["nonResourceRules"][0]["nonResourceURLs"].clone();
    assert!(urls.as_array().unwrap().contains(&json!("/healthz")));
    assert!(!urls.as_array().unwrap().contains(&json!("/api")));
}

/// kubectl sends its reviews as protobuf.
#[test]
fn protobuf_reviews_are_answered() {
    let (mut s, token) = cluster();
    let review = json!({"metadata": {}, "spec": {"resourceAttributes":
        {"namespace": "default", "verb": "get", "resource": "nodes", "name": "node-a"}}});
    let body = crate::protobuf::encode::object(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &review,
    )
    .unwrap();
    let auth = alloc::format!("Bearer {token}");
    let mut req = ApiRequest::new(Method::Post, SAR);
    req.authorization = Some(&auth);
    req.content_type = Some("application/vnd.kubernetes.protobuf");
    req.body = &body;
    let r = crate::cluster::test_harness::answer(&mut s, NOW, &req)
        .into_response()
        .unwrap();
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (r.status, &answer["status"]["allowed"]),
        (201, &json!(true)),
        "{answer}"
    );
    assert_eq!(answer["spec"]["resourceAttributes"]["name"], "node-a");

    let whoami = crate::protobuf::encode::object(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &json!({"metadata": {}}),
    )
    .unwrap();
    let mut req = ApiRequest::new(Method::Post, WHOAMI);
    req.authorization = Some(&auth);
    req.content_type = Some("application/vnd.kubernetes.protobuf");
    req.body = &whoami;
    let r = crate::cluster::test_harness::answer(&mut s, NOW, &req)
        .into_response()
        .unwrap();
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        answer["status"]["userInfo"]["username"], "system:node:node-a",
        "{answer}"
    );
}

/// The conformance suite's "return a 406 for a backend which does not implement metadata": a
/// review asked for as a Table is kube's 406, and with JSON the same review is answered.
#[test]
fn review_asked_for_as_a_table_is_406() {
    let mut s = server();
    let auth = alloc::format!("Bearer {ADMIN}");
    let body = serde_json::to_vec(&json!({
        "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}
    }))
    .unwrap();
    let ask = |s: &mut Cluster, accept: &str| {
        let mut req = ApiRequest::new(Method::Post, SAR);
        req.authorization = Some(&auth);
        req.content_type = Some("application/json");
        req.accept = Some(accept);
        req.body = &body;
        let r = crate::cluster::test_harness::answer(s, NOW, &req)
            .into_response()
            .unwrap();
        (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
    };
    let (status, answer) = ask(&mut s, "application/json;as=Table;v=v1;g=meta.k8s.io");
    assert_eq!(status, 406, "{answer}");
    assert_eq!(answer["reason"], "NotAcceptable", "{answer}");
    assert_eq!(answer["code"], 406, "{answer}");
    let (status, answer) = ask(&mut s, "application/json");
    assert_eq!(
        (status, &answer["status"]["allowed"]),
        (201, &json!(true)),
        "{answer}"
    );
}

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

pub(super) fn token_review(s: &mut Cluster, token: &str, audiences: Value) -> Value {
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences}});
    let (code, body) = call(s, Method::Post, TOKEN_REVIEWS, &review, Some(ADMIN));
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "TokenReview");
    body["status"].clone()
}

fn seal(secret: u8, stake: u8, node: &str, iat: u64, exp: u64) -> String {
    mint_ed25519(
        &[secret; 32],
        &SealClaims {
            node_id: node.into(),
            stake_id: [stake; 32],
            iat,
            exp,
        },
    )
}

/// TokenReview answers with the authenticator every request goes through: the tokens this
/// server accepts are authenticated as who they are, for its own audience; a token it would
/// refuse is `authenticated: false` with the reason, not a 401.
#[test]
fn token_reviews_authenticate_as_requests_do() {
    let (mut s, node_token) = cluster();
    let status = token_review(&mut s, ADMIN, Value::Null);
    assert_eq!(
        status,
        json!({"authenticated": true, "user": {"username": "nautilus:admin",
            "groups": ["system:masters", "system:authenticated"]},
            "audiences": ["https://kubernetes.default.svc.cluster.local"]})
    );
    let status = token_review(&mut s, &node_token, json!([]));
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["user"]["username"], "system:node:node-a");
    assert_eq!(
        status["user"]["groups"],
        json!(["system:nodes", "system:authenticated"])
    );
    // Another audience: these tokens are for this server only.
    let status = token_review(&mut s, &node_token, json!(["vault"]));
    assert_eq!(status, json!({"user": {}, "error": "invalid bearer token"}));
    let status = token_review(
        &mut s,
        ADMIN,
        json!(["vault", "https://kubernetes.default.svc.cluster.local"]),
    );
    assert_eq!(status["authenticated"], true);
    assert_eq!(
        status["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );

    // Refused tokens, each with its reason (the cluster's staker is secret 1, stake 101).
    let (iat, exp) = (NOW.secs(), NOW.secs() + 3600);
    let genuine_b = seal(1, 101, "node-b", iat, exp);
    let (claims_b, _) = genuine_b.rsplit_once('.').unwrap();
    let (_, signature_a) = node_token.rsplit_once('.').unwrap();
    let forged = alloc::format!("{claims_b}.{signature_a}");
    let cases = [
        (
            "unknown",
            String::from("not-a-token"),
            "invalid bearer token",
        ),
        (
            "forged",
            forged,
            "invalid Seal token: signature does not verify",
        ),
        (
            "expired",
            seal(1, 101, "node-a", iat - 7200, iat - 3600),
            "invalid Seal token: token has expired",
        ),
        (
            "signed by another key",
            seal(2, 101, "node-a", iat, exp),
            "invalid Seal token: signer does not own the stake",
        ),
        (
            "unknown stake",
            seal(1, 77, "node-a", iat, exp),
            "invalid Seal token: stake is unknown",
        ),
    ];
    for (what, token, error) in cases {
        let status = token_review(&mut s, &token, Value::Null);
        assert_eq!(status, json!({"user": {}, "error": error}), "{what}");
        // And the same token on a real request is a 401.
        let (code, _) = call(
            &mut s,
            Method::Get,
            "/api/v1/namespaces",
            &Value::Null,
            Some(&token),
        );
        assert_eq!(code, 401, "{what}");
    }

    // A review needs a token.
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {}});
    let (code, body) = call(&mut s, Method::Post, TOKEN_REVIEWS, &review, Some(ADMIN));
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "token is required for TokenReview in authentication"
    );

    // Only the administrator may review tokens: a node and an anonymous caller get kube's 403.
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": ADMIN}});
    for (bearer, user) in [
        (Some(node_token.as_str()), "system:node:node-a"),
        (None, "system:anonymous"),
    ] {
        // Refused on the head, before any byte of the body is read.
        let auth = bearer.map(|b| alloc::format!("Bearer {b}"));
        let mut head = ApiRequest::new(Method::Post, TOKEN_REVIEWS);
        head.authorization = auth.as_deref();
        assert_eq!(s.admit_head(NOW, &head).map_err(|r| r.status), Err(403));
        let (code, body) = call(&mut s, Method::Post, TOKEN_REVIEWS, &review, bearer);
        assert_eq!(code, 403, "{body}");
        assert_eq!(
            body["message"],
            alloc::format!(
                "tokenreviews.authentication.k8s.io is forbidden: User \"{user}\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
            )
        );
    }
}
