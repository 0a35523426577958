//! `networking.k8s.io/v1` Ingress and IngressClass against the core alone: stored and defaulted
//! as kube does, validated with kube's messages, printed with kube's columns. No ingress
//! controller runs: an Ingress's status is whatever a controller writes.

use alloc::string::String;
use serde_json::json;

use crate::cluster::test_harness::{Cluster, column_names, messages};

const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
const CLASSES: &str = "/apis/networking.k8s.io/v1/ingressclasses";

#[test]
fn ingresses_and_classes_are_stored_validated_and_printed() {
    let mut c = Cluster::new();
    let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "nginx"},
        "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    let (code, created) = c.post(CLASSES, class);
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["parameters"]["scope"], "Cluster");
    let t = c.table(CLASSES);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "nginx",
            "k8s.io/ingress-nginx",
            "IngressParameters.k8s.example.com/external-lb",
            "0s"
        ])
    );
    let (code, answer) = c.patch(
        &alloc::format!("{CLASSES}/nginx"),
        json!({"spec": {"controller": "example.com/other"}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        messages(&answer),
        ["spec.controller: Invalid value: \"example.com/other\": field is immutable"]
    );

    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx",
            "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
            "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                {"host": "*.example.com", "http": {"paths": [{"path": "/api", "pathType": "Exact",
                "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}});
    let (code, created) = c.post(INGRESSES, ingress);
    assert_eq!(code, 201, "{created}");
    assert!(
        created.get("status").is_none_or(|s| s
            .get("loadBalancer")
            .is_none_or(|l| l.get("ingress").is_none())),
        "status is the controller's: {created}"
    );
    let (code, status) = c.patch(
        &alloc::format!("{INGRESSES}/web/status"),
        json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]}}}),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{status}");
    let t = c.table(INGRESSES);
    let columns = column_names(&t);
    assert_eq!(
        columns,
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web",
            "nginx",
            "a.example.com,*.example.com",
            "192.0.2.1,lb.example.com",
            "80, 443",
            "0s"
        ])
    );

    let bad = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "bad", "annotations": {"kubernetes.io/ingress.class": "other"}},
        "spec": {"ingressClassName": "nginx",
            "tls": [{"hosts": ["*.*.bad"], "secretName": "Bad_Secret"}],
            "rules": [
                {"host": "10.0.0.1", "http": {"paths": []}},
                {"host": "a.example.com", "http": {"paths": [
                    {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "Web", "port": {"number": 70000}}}},
                    {"path": "/a//b/.", "pathType": "Exact", "backend": {}},
                    {"path": "/", "backend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}},
                    {"path": "/", "pathType": "Regex", "backend": {"resource": {"kind": "", "name": "x/y"},
                        "service": {"name": "web"}}}]}}]}});
    let (code, answer) = c.post(INGRESSES, bad);
    assert_eq!(code, 422, "{answer}");
    let wildcard = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    assert_eq!(
        messages(&answer),
        [
            String::from(
                "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"
            ),
            String::from("spec.rules[0].http.paths: Required value"),
            String::from(
                "spec.rules[1].http.paths[0].path: Invalid value: \"api\": must be an absolute path"
            ),
            String::from(
                "spec.rules[1].http.paths[0].backend.service.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ),
            String::from(
                "spec.rules[1].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"
            ),
            String::from(
                "spec.rules[1].http.paths[1].path: Invalid value: \"/a//b/.\": must not contain '//'"
            ),
            String::from(
                "spec.rules[1].http.paths[1].path: Invalid value: \"/a//b/.\": cannot end with '/.'"
            ),
            String::from(
                "spec.rules[1].http.paths[1].backend: Invalid value: \"\": resource or service backend is required"
            ),
            String::from(
                "spec.rules[1].http.paths[2].pathType: Required value: pathType must be specified"
            ),
            String::from(
                "spec.rules[1].http.paths[3].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
            ),
            String::from(
                "spec.rules[1].http.paths[3].backend: Invalid value: \"\": cannot set both resource and service backends"
            ),
            alloc::format!("spec.tls[0].hosts[0]: Invalid value: \"*.*.bad\": {wildcard}"),
            String::from(
                "spec.tls[0].secretName: Invalid value: \"Bad_Secret\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ),
            String::from(
                "annotations.kubernetes.io/ingress.class: Invalid value: \"other\": must match `ingressClassName` when both are specified"
            ),
        ]
    );
    let (code, answer) = c.post(
        INGRESSES,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "empty"}, "spec": {}}),
    );
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        messages(&answer),
        [
            "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
        ]
    );
    let (code, answer) = c.post(
        CLASSES,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "x"}, "spec": {"controller": "nginx",
            "parameters": {"kind": "P", "name": "p", "scope": "Namespace"}}}),
    );
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        messages(&answer),
        [
            "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")",
            "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'",
        ]
    );
}
