//! ValidatingAdmissionPolicy enforcement through the API: matching (namespace selector,
//! resource rules, the binding's own match), `Deny` and `Warn` bindings, variables,
//! `messageExpression`, params, failure policy, kube's wording, and expressions checked when
//! the policy is written.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiRequest, Cluster, Method};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin-secret";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);
const JSON: &str = "application/json";
const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/vap/deployments";

fn server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..Config::default()
    };
    let mut s = Cluster::new(config, [7; 32], T0);
    for (ns, labels) in [("vap", json!({"vap-test": "true"})), ("other", json!({}))] {
        let (code, body) = send(
            &mut s,
            Method::Post,
            "/api/v1/namespaces",
            &json!({"metadata": {"name": ns, "labels": labels}}),
        );
        assert_eq!(code, 201, "{body}");
    }
    s
}

/// Status, body and warnings of one request.
fn call(s: &mut Cluster, method: Method, path: &str, body: &Value) -> (u16, Value, Vec<String>) {
    let bytes = serde_json::to_vec(body).unwrap();
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    if !body.is_null() {
        req.body = &bytes;
    }
    req.content_type = Some(JSON);
    let r = s
        .handle_request(T0, &req)
        .into_response()
        .expect("no watch");
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        r.warnings,
    )
}

fn send(s: &mut Cluster, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let (code, body, _) = call(s, method, path, body);
    (code, body)
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

/// The conformance test's policy shape: deployments in namespaces labelled `vap-test`.
fn policy(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["matchConstraints"] = json!({
        "namespaceSelector": {"matchLabels": {"vap-test": "true"}},
        "resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"],
            "apiVersions": ["v1"], "resources": ["deployments"]}]});
    json!({"metadata": {"name": name}, "spec": spec})
}

fn bind(s: &mut Cluster, policy: &str, actions: &[&str], extra: Value) {
    let mut spec = json!({"policyName": policy, "validationActions": actions,
        "matchResources": {"namespaceSelector": {"matchLabels": {"vap-test": "true"}}}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let binding = json!({"metadata": {"name": alloc::format!("{policy}-binding")}, "spec": spec});
    let (code, body) = send(s, Method::Post, BINDINGS, &binding);
    assert_eq!(code, 201, "{body}");
}

fn create_policy(s: &mut Cluster, policy: &Value) {
    let (code, body) = send(s, Method::Post, POLICIES, policy);
    assert_eq!(code, 201, "{body}");
}

#[test]
fn deny_binding_refuses_matching_writes_with_kubes_wording() {
    let mut s = server();
    create_policy(
        &mut s,
        &policy(
            "replicas",
            json!({"validations": [
                {"expression": "object.spec.replicas > 1",
                 "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas"},
                {"expression": "namespaceObject.metadata.name == 'vap'",
                 "message": "Other namespace should not be allowed."}]}),
        ),
    );
    bind(&mut s, "replicas", &["Deny"], json!({}));

    let (code, status) = send(&mut s, Method::Post, DEPLOYMENTS, &deployment("one", 1));
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["reason"], "Invalid");
    // The messageExpression adds a string to an int (no such overload): kube falls back to
    // the default message.
    let inner = "ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: failed expression: object.spec.replicas > 1";
    assert_eq!(
        status["message"],
        alloc::format!("deployments.apps \"one\" is forbidden: {inner}")
    );
    assert_eq!(status["details"]["causes"], json!([{"message": inner}]));
    assert_eq!(status["details"]["kind"], "deployments");
    assert_eq!(
        send(
            &mut s,
            Method::Get,
            &alloc::format!("{DEPLOYMENTS}/one"),
            &Value::Null
        )
        .0,
        404
    );

    // Two replicas pass; an update back to one is refused too.
    let (code, body) = send(&mut s, Method::Post, DEPLOYMENTS, &deployment("two", 2));
    assert_eq!(code, 201, "{body}");
    let mut down = body.clone();
    down["spec"]["replicas"] = json!(1);
    let (code, _) = send(
        &mut s,
        Method::Put,
        &alloc::format!("{DEPLOYMENTS}/two"),
        &down,
    );
    assert_eq!(code, 422);

    // Not matched: another namespace, another resource.
    let other = "/apis/apps/v1/namespaces/other/deployments";
    assert_eq!(
        send(&mut s, Method::Post, other, &deployment("one", 1)).0,
        201
    );
    let mut rs = deployment("rs", 1);
    rs["kind"] = json!("ReplicaSet");
    let (code, body) = send(
        &mut s,
        Method::Post,
        "/apis/apps/v1/namespaces/vap/replicasets",
        &rs,
    );
    assert_eq!(code, 201, "{body}");

    // A dry run is judged the same; deleting the binding lifts the policy.
    let (code, _) = send(
        &mut s,
        Method::Post,
        &alloc::format!("{DEPLOYMENTS}?dryRun=All"),
        &deployment("one", 1),
    );
    assert_eq!(code, 422);
    let (code, _) = send(
        &mut s,
        Method::Delete,
        &alloc::format!("{BINDINGS}/replicas-binding"),
        &Value::Null,
    );
    assert_eq!(code, 200);
    assert_eq!(
        send(&mut s, Method::Post, DEPLOYMENTS, &deployment("one", 1)).0,
        201
    );
}

#[test]
fn variables_reasons_and_warn_bindings() {
    let mut s = server();
    create_policy(
        &mut s,
        &policy(
            "odd",
            json!({
                "variables": [
                    {"name": "replicas", "expression": "object.spec.replicas"},
                    {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}],
                "validations": [
                    {"expression": "variables.replicas > 1"},
                    {"expression": "variables.oddReplicas", "reason": "Forbidden",
                     "messageExpression": "'replicas must be odd, not ' + string(variables.replicas)"}]}),
        ),
    );
    bind(&mut s, "odd", &["Deny"], json!({}));
    let (code, status) = send(&mut s, Method::Post, DEPLOYMENTS, &deployment("four", 4));
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("denied request: replicas must be odd, not 4"),
        "{status}"
    );
    assert_eq!(
        send(&mut s, Method::Post, DEPLOYMENTS, &deployment("three", 3)).0,
        201
    );

    // Under Warn the write goes through and every failure is a warning.
    let (code, _) = send(
        &mut s,
        Method::Delete,
        &alloc::format!("{BINDINGS}/odd-binding"),
        &Value::Null,
    );
    assert_eq!(code, 200);
    bind(&mut s, "odd", &["Warn"], json!({}));
    let (code, body, warnings) = call(&mut s, Method::Post, DEPLOYMENTS, &deployment("zero", 0));
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        warnings,
        [
            "Validation failed for ValidatingAdmissionPolicy 'odd' with binding 'odd-binding': failed expression: variables.replicas > 1",
            "Validation failed for ValidatingAdmissionPolicy 'odd' with binding 'odd-binding': replicas must be odd, not 0",
        ]
    );
}

#[test]
fn params_and_failure_policy() {
    let mut s = server();
    let mut limited = policy(
        "limit",
        json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "validations": [{"expression": "object.spec.replicas <= int(params.data.max)"}]}),
    );
    create_policy(&mut s, &limited);
    bind(
        &mut s,
        "limit",
        &["Deny"],
        json!({"paramRef": {"name": "limits", "parameterNotFoundAction": "Deny"}}),
    );
    let (code, status) = send(&mut s, Method::Post, DEPLOYMENTS, &deployment("a", 2));
    assert_eq!(code, 422);
    assert!(
        status["message"].as_str().unwrap().ends_with(
            "denied request: no params found for policy binding with `Deny` parameterNotFoundAction"
        ),
        "{status}"
    );
    let cm = json!({"metadata": {"name": "limits"}, "data": {"max": "3"}});
    assert_eq!(
        send(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/vap/configmaps",
            &cm
        )
        .0,
        201
    );
    assert_eq!(
        send(&mut s, Method::Post, DEPLOYMENTS, &deployment("a", 2)).0,
        201
    );
    let (code, status) = send(&mut s, Method::Post, DEPLOYMENTS, &deployment("b", 5));
    assert_eq!(code, 422, "{status}");

    // An expression that fails to evaluate: refused under Fail (the default), ignored under
    // Ignore.
    limited["spec"]["validations"] = json!([{"expression": "object.spec.missing > 1"}]);
    limited["spec"].as_object_mut().unwrap().remove("paramKind");
    let path = alloc::format!("{POLICIES}/limit");
    let (_, current) = send(&mut s, Method::Get, &path, &Value::Null);
    limited["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    let (code, body) = send(&mut s, Method::Put, &path, &limited);
    assert_eq!(code, 200, "{body}");
    let (code, status) = send(&mut s, Method::Post, DEPLOYMENTS, &deployment("c", 1));
    assert_eq!(code, 422);
    assert!(
        status["message"].as_str().unwrap().ends_with(
            "denied request: expression 'object.spec.missing > 1' resulted in error: no such key: missing"
        ),
        "{status}"
    );
    limited["spec"]["failurePolicy"] = json!("Ignore");
    limited["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"].clone();
    let (code, body) = send(&mut s, Method::Put, &path, &limited);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        send(&mut s, Method::Post, DEPLOYMENTS, &deployment("c", 1)).0,
        201
    );
}

#[test]
fn expressions_must_parse_and_policies_cannot_lock_themselves_in() {
    let mut s = server();
    let bad = policy(
        "bad",
        json!({"validations": [{"expression": "object.spec.replicas >"}]}),
    );
    let (code, status) = send(&mut s, Method::Post, POLICIES, &bad);
    assert_eq!(code, 422, "{status}");
    let cause = &status["details"]["causes"][0];
    assert_eq!(cause["field"], "spec.validations[0].expression");
    assert!(
        cause["message"]
            .as_str()
            .unwrap()
            .contains("compilation failed: ERROR: <input>:1:"),
        "{status}"
    );

    // A policy refusing every write of every resource still lets its binding be deleted.
    let all = json!({"metadata": {"name": "all"}, "spec": {
        "matchConstraints": {"resourceRules": [{"operations": ["*"], "apiGroups": ["*"],
            "apiVersions": ["*"], "resources": ["*"]}]},
        "validations": [{"expression": "false"}]}});
    create_policy(&mut s, &all);
    let binding = json!({"metadata": {"name": "all"}, "spec": {"policyName": "all", "validationActions": ["Deny"]}});
    assert_eq!(send(&mut s, Method::Post, BINDINGS, &binding).0, 201);
    let cm = json!({"metadata": {"name": "x"}});
    let (code, status) = send(
        &mut s,
        Method::Post,
        "/api/v1/namespaces/other/configmaps",
        &cm,
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        "configmaps \"x\" is forbidden: ValidatingAdmissionPolicy 'all' with binding 'all' denied request: failed expression: false"
    );
    let (code, _) = send(
        &mut s,
        Method::Delete,
        &alloc::format!("{BINDINGS}/all"),
        &Value::Null,
    );
    assert_eq!(code, 200);
    assert_eq!(
        send(
            &mut s,
            Method::Post,
            "/api/v1/namespaces/other/configmaps",
            &cm
        )
        .0,
        201
    );
}
