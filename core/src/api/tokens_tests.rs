//! ServiceAccount tokens through the API: TokenRequest as kube issues and refuses them, the
//! tokens authenticating requests (and failing them) as kube's authenticator does, reviews of
//! them, the issuer documents, and a node's requests under NodeRestriction.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::access_tests::{ADMIN, NOW, SAR, SRR, WHOAMI, call, cluster, server};
use super::event_tests::at;
use super::{ApiRequest, Cluster, Method};
use crate::UnixTime;

const ISSUER: &str = crate::serviceaccount::DEFAULT_ISSUER;
const REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

fn token_path(name: &str) -> String {
    alloc::format!("/api/v1/namespaces/default/serviceaccounts/{name}/token")
}

/// What kubectl 1.32 sends for `kubectl create token NAME` (with `spec` as given).
fn token_request(spec: Value) -> Value {
    json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null}, "spec": spec,
        "status": {"token": "", "expirationTimestamp": null}})
}

/// The administrator asks a token for `name` with `spec`: the whole answer.
fn issue(s: &mut Cluster, name: &str, spec: Value) -> Value {
    let (code, body) = call(
        s,
        Method::Post,
        &token_path(name),
        &token_request(spec),
        Some(ADMIN),
    );
    assert_eq!(code, 201, "{body}");
    body
}

fn token_of(answer: &Value) -> String {
    answer["status"]["token"].as_str().unwrap().to_string()
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Creates `kind` `name` in `default` (or cluster-wide for nodes) as the administrator: its uid.
fn create(s: &mut Cluster, plural: &str, object: Value) -> String {
    let path = if plural == "nodes" {
        String::from("/api/v1/nodes")
    } else {
        alloc::format!("/api/v1/namespaces/default/{plural}")
    };
    let (code, body) = call(s, Method::Post, &path, &object, Some(ADMIN));
    assert_eq!(code, 201, "{body}");
    body["metadata"]["uid"].as_str().unwrap().to_string()
}

fn account(s: &mut Cluster, name: &str) -> String {
    create(s, "serviceaccounts", json!({"metadata": {"name": name}}))
}

fn pod(s: &mut Cluster, name: &str, account: &str, node: &str) -> String {
    create(
        s,
        "pods",
        json!({"metadata": {"name": name}, "spec": {"serviceAccountName": account,
            "nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}),
    )
}

fn force_delete(s: &mut Cluster, path: &str) {
    let (code, body) = call(
        s,
        Method::Delete,
        &alloc::format!("{path}?gracePeriodSeconds=0"),
        &Value::Null,
        Some(ADMIN),
    );
    assert_eq!(code, 200, "{body}");
}

/// A TokenReview by the administrator at `now`: its status.
fn review_at(s: &mut Cluster, now: UnixTime, token: &str, audiences: Value) -> Value {
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences}});
    let (code, body) = at(s, now, Method::Post, REVIEWS, &review, ADMIN);
    assert_eq!(code, 201, "{body}");
    body["status"].clone()
}

/// kube's answer to a ServiceAccount token its authenticator refuses (the loopback token's
/// authenticator fails it first).
fn refused(error: &str) -> Value {
    json!({"user": {}, "error": alloc::format!("[invalid bearer token, {error}]")})
}

/// A token as a real request: the status of listing namespaces' discovery (`/api/v1`).
fn status_of(s: &mut Cluster, now: UnixTime, token: &str) -> u16 {
    at(s, now, Method::Get, "/api/v1", &Value::Null, token).0
}

#[test]
fn a_token_request_issues_kubes_token() {
    let mut s = server();
    let uid = account(&mut s, "builder");
    let answer = issue(
        &mut s,
        "builder",
        json!({"audiences": null, "boundObjectRef": null}),
    );
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(
        answer["metadata"],
        json!({"name": "builder", "namespace": "default", "creationTimestamp": NOW.rfc3339()})
    );
    assert_eq!(
        answer["spec"],
        json!({"audiences": [ISSUER], "expirationSeconds": 3600})
    );
    assert_eq!(
        answer["status"]["expirationTimestamp"],
        NOW.plus_secs(3600).rfc3339()
    );
    let token = token_of(&answer);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = s.config.service_account_key.as_ref().unwrap().key_id();
    assert_eq!(header, json!({"alg": "ES256", "kid": kid}));
    let claims = payload(&token);
    let now = NOW.secs();
    let jti = claims["jti"].as_str().unwrap().to_string();
    assert_eq!(jti.len(), 36, "a UUID: {jti}");
    assert_eq!(
        claims,
        json!({"iss": ISSUER, "sub": "system:serviceaccount:default:builder", "aud": [ISSUER],
            "iat": now, "nbf": now, "exp": now + 3600, "jti": jti,
            "kubernetes.io": {"namespace": "default",
                "serviceaccount": {"name": "builder", "uid": uid}}})
    );
    // Audiences and a lifetime of the client's; each token its own id.
    let answer = issue(
        &mut s,
        "builder",
        json!({"audiences": ["vault", "https://x"], "expirationSeconds": 7200}),
    );
    let other = payload(&token_of(&answer));
    assert_eq!(other["aud"], json!(["vault", "https://x"]));
    assert_eq!(other["exp"], json!(now + 7200));
    assert_ne!(other["jti"], claims["jti"]);
    assert_eq!(answer["spec"]["expirationSeconds"], 7200);
    // Discovery names the subresource as kube registers it.
    let (_, list) = call(&mut s, Method::Get, "/api/v1", &Value::Null, Some(ADMIN));
    let entry = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .cloned();
    assert_eq!(
        entry,
        Some(
            json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
            "verbs": ["create"]})
        )
    );
}

#[test]
fn token_requests_are_refused_in_kubes_words() {
    let mut s = server();
    account(&mut s, "builder");
    account(&mut s, "other");
    let web = pod(&mut s, "web", "builder", "");
    create(&mut s, "configmaps", json!({"metadata": {"name": "cm"}}));
    let post = |s: &mut Cluster, name: &str, body: Value| {
        call(s, Method::Post, &token_path(name), &body, Some(ADMIN))
    };
    let bound = |kind: &str, api_version: &str, name: &str, uid: &str| {
        token_request(json!({"boundObjectRef":
            {"kind": kind, "apiVersion": api_version, "name": name, "uid": uid}}))
    };
    let cases: Vec<(&str, &str, Value, u16, String)> = alloc::vec![
        ("too short", "builder", token_request(json!({"expirationSeconds": 599})), 422,
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes".into()),
        ("too long", "builder", token_request(json!({"expirationSeconds": 4_294_967_297_i64})), 422,
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds".into()),
        ("no account", "nope", token_request(json!({})), 404,
            "serviceaccounts \"nope\" not found".into()),
        ("another name", "builder", json!({"metadata": {"name": "other"}, "spec": {}}), 422,
            "TokenRequest.authentication.k8s.io \"builder\" is invalid: metadata.name: Invalid value: \"other\": must match the service account name if specified".into()),
        ("another namespace", "builder", json!({"metadata": {"namespace": "kube-system"}, "spec": {}}), 422,
            "TokenRequest.authentication.k8s.io \"builder\" is invalid: metadata.namespace: Invalid value: \"kube-system\": must match the service account namespace if specified".into()),
        ("another kind", "builder", json!({"kind": "Pod", "apiVersion": "authentication.k8s.io/v1"}), 400,
            "Pod in version \"v1\" cannot be handled as a TokenRequest: the kind in the data (Pod) does not match the expected kind (TokenRequest)".into()),
        ("a lifetime in words", "builder", token_request(json!({"expirationSeconds": "1h"})), 400,
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64".into()),
        ("a Deployment", "builder", bound("Deployment", "apps/v1", "d", ""), 400,
            "cannot bind token to object of type apps/v1, Kind=Deployment".into()),
        ("a ConfigMap", "builder", bound("ConfigMap", "v1", "cm", ""), 400,
            "cannot bind token to object of type /v1, Kind=ConfigMap".into()),
        ("a missing pod", "builder", bound("Pod", "v1", "ghost", ""), 404,
            "pods \"ghost\" not found".into()),
        ("another account's pod", "other", bound("Pod", "v1", "web", ""), 400,
            "cannot bind token for serviceaccount \"other\" to pod running with different serviceaccount name.".into()),
        ("a stale uid", "builder", bound("Pod", "v1", "web", "0000"), 409,
            "Operation cannot be fulfilled on Pod \"web\": the UID in the bound object reference (0000) does not match the UID in record. The object might have been deleted and then recreated".into()),
        ("a missing Node", "builder", bound("Node", "v1", "node-z", ""), 404,
            "nodes \"node-z\" not found".into()),
    ];
    for (what, name, body, code, message) in cases {
        let (got, answer) = post(&mut s, name, body);
        assert_eq!(
            (got, answer["message"].as_str().unwrap_or("")),
            (code, message.as_str()),
            "{what}: {answer}"
        );
    }
    // The pod's own uid binds; the shortest lifetime is allowed.
    let (code, answer) = post(&mut s, "builder", bound("Pod", "v1", "web", &web));
    assert_eq!(code, 201, "{answer}");
    let (code, answer) = post(
        &mut s,
        "builder",
        token_request(json!({"expirationSeconds": 600})),
    );
    assert_eq!(code, 201, "{answer}");
    // Only create is served.
    let (code, _) = call(
        &mut s,
        Method::Get,
        &token_path("builder"),
        &Value::Null,
        Some(ADMIN),
    );
    assert_eq!(code, 405);
}

#[test]
fn a_bound_token_names_its_pod_and_node_and_dies_with_the_pod() {
    let mut s = server();
    let sa_uid = account(&mut s, "builder");
    let node_uid = create(&mut s, "nodes", json!({"metadata": {"name": "node-x"}}));
    let pod_uid = pod(&mut s, "web", "builder", "node-x");
    let answer = issue(
        &mut s,
        "builder",
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod_uid}}),
    );
    assert_eq!(
        answer["spec"]["boundObjectRef"],
        json!({"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod_uid})
    );
    let token = token_of(&answer);
    let claims = payload(&token);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "builder", "uid": sa_uid},
            "pod": {"name": "web", "uid": pod_uid}, "node": {"name": "node-x", "uid": node_uid}})
    );
    // Who the token is, as `kubectl auth whoami` shows it.
    let whoami = json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"});
    let (code, body) = call(&mut s, Method::Post, WHOAMI, &whoami, Some(&token));
    assert_eq!(code, 201, "{body}");
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "system:serviceaccount:default:builder", "uid": sa_uid,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                "system:authenticated"],
            "extra": {
                "authentication.kubernetes.io/credential-id": [alloc::format!("JTI={jti}")],
                "authentication.kubernetes.io/node-name": ["node-x"],
                "authentication.kubernetes.io/node-uid": [node_uid],
                "authentication.kubernetes.io/pod-name": ["web"],
                "authentication.kubernetes.io/pod-uid": [pod_uid]}})
    );
    let review = review_at(&mut s, NOW, &token, Value::Null);
    assert_eq!(review["authenticated"], true);
    assert_eq!(review["user"], body["status"]["userInfo"]);
    assert_eq!(review["audiences"], json!([ISSUER]));

    // A graceful delete leaves the pod terminating: its tokens work until it is gone.
    let (code, _) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/pods/web",
        &Value::Null,
        Some(ADMIN),
    );
    assert_eq!(code, 200);
    assert_eq!(status_of(&mut s, NOW, &token), 200);
    force_delete(&mut s, "/api/v1/namespaces/default/pods/web");
    assert_eq!(status_of(&mut s, NOW, &token), 401);
    assert_eq!(
        review_at(&mut s, NOW, &token, Value::Null),
        refused("service account token has been invalidated")
    );
    // A new pod of the same name is another pod.
    let new_uid = pod(&mut s, "web", "builder", "node-x");
    assert_eq!(status_of(&mut s, NOW, &token), 401);
    assert_eq!(
        review_at(&mut s, NOW, &token, Value::Null),
        refused(&alloc::format!(
            "pod UID ({new_uid}) does not match service account pod ref claim ({pod_uid})"
        ))
    );
}

#[test]
fn a_kubelets_projected_token_is_extended_as_kube_extends_it() {
    let mut s = server();
    account(&mut s, "builder");
    let pod_uid = pod(&mut s, "web", "builder", "");
    let bound = json!({"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod_uid});
    let answer = issue(
        &mut s,
        "builder",
        json!({"expirationSeconds": 3607, "boundObjectRef": bound}),
    );
    let claims = payload(&token_of(&answer));
    let now = NOW.secs();
    assert_eq!(claims["exp"], json!(now + 365 * 24 * 3600));
    assert_eq!(claims["kubernetes.io"]["warnafter"], json!(now + 3607));
    assert_eq!(
        answer["status"]["expirationTimestamp"],
        NOW.plus_secs(3607).rfc3339()
    );
    assert_eq!(answer["spec"]["expirationSeconds"], 3607);
    // Not for another audience, nor without a pod.
    for spec in [
        json!({"expirationSeconds": 3607, "boundObjectRef": bound, "audiences": ["vault"]}),
        json!({"expirationSeconds": 3607}),
    ] {
        let claims = payload(&token_of(&issue(&mut s, "builder", spec)));
        assert_eq!(claims["exp"], json!(now + 3607));
        assert_eq!(claims["kubernetes.io"].get("warnafter"), None);
    }
}

#[test]
fn a_service_account_may_read_only_discovery_its_issuer_and_about_itself() {
    let mut s = server();
    account(&mut s, "builder");
    let token = token_of(&issue(&mut s, "builder", json!({})));
    let user = "system:serviceaccount:default:builder";
    let (code, _) = call(&mut s, Method::Get, "/api/v1", &Value::Null, Some(&token));
    assert_eq!(code, 200);
    let (code, _) = call(&mut s, Method::Get, "/apis", &Value::Null, Some(&token));
    assert_eq!(code, 200);
    for path in ["/openid/v1/jwks", "/.well-known/openid-configuration"] {
        let (code, _) = call(&mut s, Method::Get, path, &Value::Null, Some(&token));
        assert_eq!(code, 200, "{path}");
    }
    let (code, body) = call(
        &mut s,
        Method::Post,
        "/openid/v1/jwks",
        &json!({}),
        Some(&token),
    );
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        alloc::format!("forbidden: User \"{user}\" cannot post path \"/openid/v1/jwks\"")
    );
    let denied = [
        (
            Method::Get,
            "/api/v1/namespaces/default/pods",
            Value::Null,
            alloc::format!(
                "pods is forbidden: User \"{user}\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
            ),
        ),
        (
            Method::Get,
            "/api/v1/namespaces/default/serviceaccounts/builder",
            Value::Null,
            alloc::format!(
                "serviceaccounts \"builder\" is forbidden: User \"{user}\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""
            ),
        ),
        (
            Method::Post,
            "/api/v1/namespaces/default/serviceaccounts/builder/token",
            token_request(json!({})),
            alloc::format!(
                "serviceaccounts \"builder\" is forbidden: User \"{user}\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\""
            ),
        ),
        (
            Method::Get,
            "/api/v1/nodes",
            Value::Null,
            alloc::format!(
                "nodes is forbidden: User \"{user}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
            ),
        ),
        (
            Method::Post,
            REVIEWS,
            json!({"spec": {"token": "x"}}),
            alloc::format!(
                "tokenreviews.authentication.k8s.io is forbidden: User \"{user}\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
            ),
        ),
    ];
    for (method, path, body, message) in denied {
        let (code, answer) = call(&mut s, method, path, &body, Some(&token));
        assert_eq!(
            (code, answer["message"].as_str().unwrap_or("")),
            (403, message.as_str()),
            "{path}"
        );
    }
    // Its reviews agree: nothing on resources (RBAC gives no reason), kube's basic-user rules.
    let review = json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}});
    let (code, body) = call(&mut s, Method::Post, SAR, &review, Some(&token));
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], json!({"allowed": false}));
    let review = json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"nonResourceAttributes": {"verb": "get", "path": "/openid/v1/jwks"}}});
    let (_, body) = call(&mut s, Method::Post, SAR, &review, Some(&token));
    assert_eq!(body["status"], json!({"allowed": true}));
    let review = json!({"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"namespace": "default"}});
    let (code, body) = call(&mut s, Method::Post, SRR, &review, Some(&token));
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body["status"]["resourceRules"],
        json!([
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
            {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"]}])
    );
    let urls = &body["status"]["nonResourceRules"][0]["nonResourceURLs"];
    for url in [
        "/openid/v1/jwks",
        "/.well-known/openid-configuration",
        "/apis/*",
    ] {
        assert!(
            urls.as_array().unwrap().contains(&json!(url)),
            "{url}: {urls}"
        );
    }
}

#[test]
fn every_bad_token_is_401_and_its_review_says_why() {
    let mut s = server();
    let sa_uid = account(&mut s, "builder");
    let token = token_of(&issue(&mut s, "builder", json!({})));
    let vault = token_of(&issue(&mut s, "builder", json!({"audiences": ["vault"]})));
    let unauthorized = |s: &mut Cluster, now: UnixTime, token: &str| {
        let (code, body) = at(s, now, Method::Get, "/api/v1", &Value::Null, token);
        assert_eq!(code, 401, "{body}");
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    };
    // Expiry, with go-jose's minute of leeway.
    assert_eq!(status_of(&mut s, NOW.plus_secs(3660), &token), 200);
    let late = UnixTime {
        nanos: NOW.plus_secs(3660).nanos + 1,
    };
    unauthorized(&mut s, late, &token);
    assert_eq!(
        review_at(&mut s, late, &token, Value::Null),
        refused("service account token has expired")
    );
    // Another audience than the API's.
    unauthorized(&mut s, NOW, &vault);
    assert_eq!(
        review_at(&mut s, NOW, &vault, Value::Null),
        refused(
            "token audiences [\"vault\"] is invalid for the target audiences [\"https://kubernetes.default.svc.cluster.local\"]"
        )
    );
    let review = review_at(&mut s, NOW, &vault, json!(["vault", "other"]));
    assert_eq!(review["authenticated"], true);
    assert_eq!(review["audiences"], json!(["vault"]));
    // Forgeries: kube's authenticator words, then a 401 on a request.
    let (header, rest) = token.split_once('.').unwrap();
    let (claims, _) = rest.split_once('.').unwrap();
    let foreign = crate::serviceaccount::ServiceAccountKey::from_secret(&[10; 32]).unwrap();
    let mut forged_claims = crate::serviceaccount::Claims {
        issuer: ISSUER.into(),
        subject: "system:serviceaccount:default:builder".into(),
        namespace: "default".into(),
        service_account: crate::serviceaccount::ObjectRef {
            name: "builder".into(),
            uid: sa_uid.clone(),
        },
        expiry: Some(i64::try_from(NOW.secs()).unwrap() + 600),
        ..Default::default()
    };
    let other_key = foreign.sign(&forged_claims);
    let (_, other_rest) = other_key.split_once('.').unwrap();
    let (_, other_signature) = other_rest.split_once('.').unwrap();
    let under_our_kid = alloc::format!("{header}.{claims}.{other_signature}");
    let none = alloc::format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
    forged_claims.issuer = "https://evil.example".into();
    let other_issuer = foreign.sign(&forged_claims);
    let cases = [
        (
            "another key's kid",
            other_key,
            "invalid signature, no keys found",
        ),
        (
            "another key under our kid",
            under_our_kid,
            "square/go-jose: error in cryptographic primitive",
        ),
        (
            "alg none",
            none,
            "square/go-jose: error in cryptographic primitive",
        ),
    ];
    for (what, forged, error) in cases {
        unauthorized(&mut s, NOW, &forged);
        assert_eq!(
            review_at(&mut s, NOW, &forged, Value::Null),
            refused(error),
            "{what}"
        );
    }
    // Another issuer's token is not the ServiceAccount authenticator's: no one takes it.
    unauthorized(&mut s, NOW, &other_issuer);
    assert_eq!(
        review_at(&mut s, NOW, &other_issuer, Value::Null),
        json!({"user": {}, "error": "invalid bearer token"})
    );
    // The account deleted, then recreated under the same name.
    let (code, _) = call(
        &mut s,
        Method::Delete,
        "/api/v1/namespaces/default/serviceaccounts/builder",
        &Value::Null,
        Some(ADMIN),
    );
    assert_eq!(code, 200);
    unauthorized(&mut s, NOW, &token);
    assert_eq!(
        review_at(&mut s, NOW, &token, Value::Null),
        refused("serviceaccounts \"builder\" not found")
    );
    let new_uid = account(&mut s, "builder");
    unauthorized(&mut s, NOW, &token);
    assert_eq!(
        review_at(&mut s, NOW, &token, Value::Null),
        refused(&alloc::format!(
            "service account UID ({new_uid}) does not match claim ({sa_uid})"
        ))
    );
}

#[test]
fn node_and_secret_bound_tokens_die_with_their_object() {
    let mut s = server();
    account(&mut s, "builder");
    let node_uid = create(&mut s, "nodes", json!({"metadata": {"name": "node-x"}}));
    let secret_uid = create(&mut s, "secrets", json!({"metadata": {"name": "s"}}));
    let on_node = token_of(&issue(
        &mut s,
        "builder",
        json!({"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": "node-x"}}),
    ));
    let on_secret = token_of(&issue(
        &mut s,
        "builder",
        json!({"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": secret_uid}}),
    ));
    assert_eq!(
        payload(&on_node)["kubernetes.io"]["node"],
        json!({"name": "node-x", "uid": node_uid})
    );
    assert_eq!(
        payload(&on_secret)["kubernetes.io"]["secret"],
        json!({"name": "s", "uid": secret_uid})
    );
    let review = review_at(&mut s, NOW, &on_node, Value::Null);
    assert_eq!(
        review["user"]["extra"]["authentication.kubernetes.io/node-name"],
        json!(["node-x"])
    );
    assert_eq!(status_of(&mut s, NOW, &on_secret), 200);
    force_delete(&mut s, "/api/v1/namespaces/default/secrets/s");
    force_delete(&mut s, "/api/v1/nodes/node-x");
    for token in [&on_node, &on_secret] {
        assert_eq!(status_of(&mut s, NOW, token), 401);
        assert_eq!(
            review_at(&mut s, NOW, token, Value::Null),
            refused("service account token has been invalidated")
        );
    }
}

#[test]
fn the_issuer_documents_are_kubes() {
    let mut s = server();
    let get = |s: &mut Cluster, path: &str, bearer: Option<&str>| {
        let auth = bearer.map(|b| alloc::format!("Bearer {b}"));
        let mut req = ApiRequest::new(Method::Get, path);
        req.authorization = auth.as_deref();
        s.handle_request(NOW, &req).into_response().unwrap()
    };
    let key = s.config.service_account_key.clone().unwrap();
    let config = get(&mut s, "/.well-known/openid-configuration", Some(ADMIN));
    assert_eq!(config.status, 200);
    assert_eq!(config.content_type, "application/json");
    assert_eq!(config.cache_control, Some("public, max-age=3600"));
    assert_eq!(
        String::from_utf8(config.body).unwrap(),
        "{\"issuer\":\"https://kubernetes.default.svc.cluster.local\",\"jwks_uri\":\"https://kubernetes.default.svc.cluster.local/openid/v1/jwks\",\"response_types_supported\":[\"id_token\"],\"subject_types_supported\":[\"public\"],\"id_token_signing_alg_values_supported\":[\"ES256\"]}"
    );
    let jwks = get(&mut s, "/openid/v1/jwks/", Some(ADMIN));
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.content_type, "application/jwk-set+json");
    assert_eq!(String::from_utf8(jwks.body).unwrap(), key.jwks());
    // Anonymous callers: 401; a node: kube's 403 (the discovery binding is for
    // ServiceAccounts).
    assert_eq!(get(&mut s, "/openid/v1/jwks", None).status, 401);
    let (mut with_node, node_token) = cluster();
    let denied = get(&mut with_node, "/openid/v1/jwks", Some(&node_token));
    assert_eq!(denied.status, 403);
    let body: Value = serde_json::from_slice(&denied.body).unwrap();
    assert_eq!(
        body["message"],
        "forbidden: User \"system:node:node-a\" cannot get path \"/openid/v1/jwks\""
    );
    // With an advertised address, the JWKS is found there (kube's external address).
    let config = crate::Config {
        advertise_address: Some("10.0.0.1:6443".parse().unwrap()),
        ..crate::Config::default()
    };
    assert_eq!(config.jwks_uri(), "https://10.0.0.1:6443/openid/v1/jwks");
    // Without a key: no TokenRequest, no documents, and a JWT is no one's.
    let mut keyless = crate::cluster::test_harness::Cluster::new();
    assert_eq!(keyless.get("/openid/v1/jwks").0, 404);
    let (code, _) = keyless.post(&token_path("default"), token_request(json!({})));
    assert_eq!(code, 404);
}

#[test]
fn a_node_gets_tokens_only_for_its_own_pods() {
    let (mut s, node) = cluster();
    // The `default` account, unless its controller made it already.
    let (code, body) = call(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/default/serviceaccounts",
        &json!({"metadata": {"name": "default"}}),
        Some(ADMIN),
    );
    assert!(code == 201 || code == 409, "{body}");
    account(&mut s, "builder");
    let pod_uid = |s: &mut Cluster, name: &str| {
        let (_, pod) = call(
            s,
            Method::Get,
            &alloc::format!("/api/v1/namespaces/default/pods/{name}"),
            &Value::Null,
            Some(ADMIN),
        );
        pod["metadata"]["uid"].as_str().unwrap().to_string()
    };
    let (mine, theirs) = (pod_uid(&mut s, "mine"), pod_uid(&mut s, "theirs"));
    let bound = |name: &str, uid: &str| {
        token_request(
            json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name, "uid": uid}}),
        )
    };
    let forbidden =
        |reason: &str| alloc::format!("serviceaccounts \"default\" is forbidden: {reason}");
    let cases: Vec<(&str, Value, u16, String)> = alloc::vec![
        (
            "unbound",
            token_request(json!({})),
            403,
            forbidden("node requested token not bound to a pod")
        ),
        (
            "bound to a Node",
            token_request(
                json!({"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": "node-a"}})
            ),
            403,
            forbidden("node requested token not bound to a pod")
        ),
        (
            "no uid",
            bound("mine", ""),
            403,
            forbidden("node requested token with a pod binding without a uid")
        ),
        (
            "stale uid",
            bound("mine", "0000"),
            403,
            forbidden(
                "the UID in the bound object reference (0000) does not match the UID in record. The object might have been deleted and then recreated"
            )
        ),
        (
            "another node's pod",
            bound("theirs", &theirs),
            403,
            forbidden("node requested token bound to a pod scheduled on a different node")
        ),
        (
            "no such pod",
            bound("ghost", "1"),
            404,
            "pod \"ghost\" not found".into()
        ),
    ];
    for (what, body, code, message) in cases {
        let (got, answer) = call(
            &mut s,
            Method::Post,
            &token_path("default"),
            &body,
            Some(&node),
        );
        assert_eq!(
            (got, answer["message"].as_str().unwrap_or("")),
            (code, message.as_str()),
            "{what}: {answer}"
        );
    }
    // An account none of its pods runs as: the Node authorizer's refusal.
    let (code, answer) = call(
        &mut s,
        Method::Post,
        &token_path("builder"),
        &bound("mine", &mine),
        Some(&node),
    );
    assert_eq!(code, 403);
    assert_eq!(
        answer["message"],
        "serviceaccounts \"builder\" is forbidden: User \"system:node:node-a\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\": no relationship found between node 'node-a' and this object"
    );
    // Its own pod, by uid: a token bound to the pod and to the node.
    let (code, answer) = call(
        &mut s,
        Method::Post,
        &token_path("default"),
        &bound("mine", &mine),
        Some(&node),
    );
    assert_eq!(code, 201, "{answer}");
    let claims = payload(&token_of(&answer));
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "mine", "uid": mine})
    );
    assert_eq!(claims["kubernetes.io"]["node"]["name"], "node-a");
    assert!(
        !claims["kubernetes.io"]["node"]["uid"]
            .as_str()
            .unwrap()
            .is_empty()
    );
}

/// A length-delimited protobuf field.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![(number << 3) | 2];
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push(u8::try_from(len & 0x7f).unwrap() | 0x80);
        len >>= 7;
    }
    out.push(u8::try_from(len).unwrap());
    out.extend_from_slice(bytes);
    out
}

/// A kubelet speaks protobuf: its TokenRequest (audiences, lifetime, pod binding) is read as
/// the JSON one is.
#[test]
fn a_protobuf_token_request_is_read() {
    let mut s = server();
    account(&mut s, "builder");
    let uid = pod(&mut s, "web", "builder", "");
    let bound = [
        field(1, b"Pod"),
        field(2, b"v1"),
        field(3, b"web"),
        field(4, uid.as_bytes()),
    ]
    .concat();
    // expirationSeconds (field 4, varint) = 7200.
    let spec = [
        field(1, b"vault"),
        field(3, &bound),
        alloc::vec![4 << 3, 0xa0, 0x38],
    ]
    .concat();
    let type_meta = [
        field(1, b"authentication.k8s.io/v1"),
        field(2, b"TokenRequest"),
    ]
    .concat();
    let body = [
        b"k8s\0".to_vec(),
        field(1, &type_meta),
        field(2, &field(2, &spec)),
    ]
    .concat();
    let auth = alloc::format!("Bearer {ADMIN}");
    let path = token_path("builder");
    let mut req = ApiRequest::new(Method::Post, &path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/vnd.kubernetes.protobuf");
    req.body = &body;
    let r = s.handle_request(NOW, &req).into_response().unwrap();
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, 201, "{answer}");
    assert_eq!(answer["spec"]["audiences"], json!(["vault"]));
    assert_eq!(answer["spec"]["expirationSeconds"], 7200);
    let claims = payload(&token_of(&answer));
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "web", "uid": uid})
    );
    assert_eq!(claims["exp"], json!(NOW.secs() + 7200));
}

/// A token's signature is checked once however often it is used, within the cache's budget;
/// what the cache holds never outlives what it stands for (expiry and a deleted pod are
/// covered above: those tokens were cached when they died).
#[test]
fn a_tokens_signature_is_checked_once_and_the_cache_keeps_its_budget() {
    let mut s = server();
    s.service_account_tokens = crate::serviceaccount::VerifiedTokens::new(2);
    account(&mut s, "builder");
    let tokens: Vec<String> = (0..3)
        .map(|_| token_of(&issue(&mut s, "builder", json!({}))))
        .collect();
    let before = s.service_account_tokens.signatures_checked();
    for _ in 0..10 {
        assert_eq!(status_of(&mut s, NOW, &tokens[0]), 200);
    }
    assert_eq!(s.service_account_tokens.signatures_checked(), before + 1);
    // Three tokens, room for two: all still authenticate, the cache stays within its budget.
    for token in &tokens {
        assert_eq!(status_of(&mut s, NOW, token), 200);
        assert!(s.service_account_tokens.len() <= 2);
    }
    // A changed byte is another text: checked, and refused.
    let mut forged = tokens[0].clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let checked = s.service_account_tokens.signatures_checked();
    assert_eq!(status_of(&mut s, NOW, &forged), 401);
    assert_eq!(s.service_account_tokens.signatures_checked(), checked + 1);
    // A refused signature is not remembered: asked again, it is checked again.
    assert_eq!(status_of(&mut s, NOW, &forged), 401);
    assert_eq!(s.service_account_tokens.signatures_checked(), checked + 2);
    // With no budget every use is checked.
    s.service_account_tokens = crate::serviceaccount::VerifiedTokens::new(0);
    assert_eq!(status_of(&mut s, NOW, &tokens[1]), 200);
    assert_eq!(status_of(&mut s, NOW, &tokens[1]), 200);
    assert_eq!(s.service_account_tokens.signatures_checked(), 2);
    assert!(s.service_account_tokens.is_empty());
}
