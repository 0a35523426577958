//! Validation of the `networking.k8s.io/v1` kinds as kube-apiserver 1.32 does it
//! (`pkg/apis/networking/validation`): an Ingress's default backend or rules (hosts, HTTP paths
//! and path types, service or resource backends), TLS hosts and secret names, class name and the
//! legacy class annotation; an IngressClass's controller (immutable) and parameters reference,
//! with kube's field paths and wording.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, arr, s};
use super::names::{
    dns1035_label_errors, dns1123_label_errors, dns1123_subdomain_errors, port_name_errors,
};
use super::rbac::path_segment_errors;

/// `annotationIngressClass`.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const MAX_CONTROLLER_LEN: usize = 250;
const SCOPES: &[&str] = &["Cluster", "Namespace"];

/// `IsWildcardDNS1123Subdomain`.
fn wildcard_errors(host: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if host.len() > 253 {
        errs.push(String::from("must be no more than 253 characters"));
    }
    let valid = host
        .strip_prefix("*.")
        .is_some_and(|rest| dns1123_subdomain_errors(rest).is_empty());
    if !valid {
        errs.push(String::from(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    errs
}

/// A host is checked as a wildcard name when it has a `*`, else as a DNS subdomain.
fn host_errors(host: &str) -> Vec<String> {
    if host.contains('*') {
        wildcard_errors(host)
    } else {
        dns1123_subdomain_errors(host)
    }
}

/// `ValidateIngressCreate` / `ValidateIngressUpdate` (the spec rules are the same).
pub(super) fn validate_ingress(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let rules = arr(spec, "rules");
    let default_backend = spec.get("defaultBackend").filter(|v| !v.is_null());
    if rules.is_empty() && default_backend.is_none() {
        let shown = if spec.get("rules").and_then(Value::as_array).is_some() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        e.invalid(
            "spec",
            Bad::Raw(shown.into()),
            "either `defaultBackend` or `rules` must be specified",
        );
    }
    if let Some(backend) = default_backend {
        validate_backend(e, backend, "spec.defaultBackend");
    }
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        let host = s(rule, "host");
        if !host.is_empty() {
            if crate::net::is_ip(host) {
                e.invalid(
                    &format!("{path}.host"),
                    Bad::Str(host),
                    "must be a DNS name, not an IP address",
                );
            }
            e.invalid_each(&format!("{path}.host"), host, host_errors(host));
        }
        if let Some(http) = rule.get("http").filter(|v| !v.is_null()) {
            let paths = arr(http, "paths");
            if paths.is_empty() {
                e.required(&format!("{path}.http.paths"), "");
            }
            for (j, p) in paths.iter().enumerate() {
                validate_path(e, p, &format!("{path}.http.paths[{j}]"));
            }
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        for (j, host) in arr(tls, "hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            e.invalid_each(
                &format!("spec.tls[{i}].hosts[{j}]"),
                host,
                host_errors(host),
            );
        }
        let secret = s(tls, "secretName");
        if !secret.is_empty() {
            e.invalid_each(
                &format!("spec.tls[{i}].secretName"),
                secret,
                dns1123_subdomain_errors(secret),
            );
        }
    }
    let class = spec.get("ingressClassName").and_then(Value::as_str);
    if let Some(class) = class {
        e.invalid_each(
            "spec.ingressClassName",
            class,
            dns1123_subdomain_errors(class),
        );
    }
    let annotation = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLASS_ANNOTATION))
        .and_then(Value::as_str);
    if let (Some(annotation), Some(class)) = (annotation, class)
        && annotation != class
    {
        e.invalid(
            &format!("annotations.{CLASS_ANNOTATION}"),
            Bad::Str(annotation),
            "must match `ingressClassName` when both are specified",
        );
    }
}

/// `validateHTTPIngressPath`.
fn validate_path(e: &mut Errs, p: &Value, at: &str) {
    let Some(path_type) = p.get("pathType").and_then(Value::as_str) else {
        e.required(&format!("{at}.pathType"), "pathType must be specified");
        return;
    };
    let path = s(p, "path");
    let path_at = format!("{at}.path");
    match path_type {
        "Exact" | "Prefix" => {
            if !path.starts_with('/') {
                e.invalid(&path_at, Bad::Str(path), "must be an absolute path");
            }
            for seq in INVALID_PATH_SEQUENCES {
                if path.contains(seq) {
                    e.invalid(
                        &path_at,
                        Bad::Str(path),
                        &format!("must not contain '{seq}'"),
                    );
                }
            }
            for suffix in INVALID_PATH_SUFFIXES {
                if path.ends_with(suffix) {
                    e.invalid(
                        &path_at,
                        Bad::Str(path),
                        &format!("cannot end with '{suffix}'"),
                    );
                }
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                e.invalid(&path_at, Bad::Str(path), "must be an absolute path");
            }
        }
        other => e.not_supported(&format!("{at}.pathType"), other, PATH_TYPES),
    }
    let empty = Value::Null;
    validate_backend(
        e,
        p.get("backend").unwrap_or(&empty),
        &format!("{at}.backend"),
    );
}

/// `validateIngressBackend`.
fn validate_backend(e: &mut Errs, backend: &Value, at: &str) {
    let resource = backend.get("resource").filter(|v| !v.is_null());
    let service = backend.get("service").filter(|v| !v.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => {
            e.invalid(
                at,
                Bad::Str(""),
                "cannot set both resource and service backends",
            );
        }
        (Some(resource), None) => typed_reference(e, resource, &format!("{at}.resource")),
        (None, Some(service)) => {
            let name = s(service, "name");
            if name.is_empty() {
                e.required(&format!("{at}.service.name"), "");
            } else {
                e.invalid_each(
                    &format!("{at}.service.name"),
                    name,
                    dns1035_label_errors(name),
                );
            }
            let port_name = service
                .pointer("/port/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let number = service
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match (port_name.is_empty(), number == 0) {
                (false, false) => {
                    e.invalid(at, Bad::Str(""), "cannot set both port name & port number");
                }
                (false, true) => e.invalid_each(
                    &format!("{at}.service.port.name"),
                    port_name,
                    port_name_errors(port_name),
                ),
                (true, false) => e.port_num(&format!("{at}.service.port.number"), number),
                (true, true) => e.required(at, "port name or number is required"),
            }
        }
        (None, None) => e.invalid(at, Bad::Str(""), "resource or service backend is required"),
    }
}

/// `validateIngressTypedLocalObjectReference`.
fn typed_reference(e: &mut Errs, reference: &Value, at: &str) {
    if let Some(group) = reference.get("apiGroup").and_then(Value::as_str) {
        e.invalid_each(
            &format!("{at}.apiGroup"),
            group,
            dns1123_subdomain_errors(group),
        );
    }
    for (field, what) in [("kind", "kind is required"), ("name", "name is required")] {
        let value = s(reference, field);
        if value.is_empty() {
            e.required(&format!("{at}.{field}"), what);
        } else {
            e.invalid_each(&format!("{at}.{field}"), value, path_segment_errors(value));
        }
    }
}

/// `ValidateIngressClass` and, with `old`, `ValidateIngressClassUpdate`.
pub(super) fn validate_ingress_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let controller = s(spec, "controller");
    if let Some(old) = old {
        let before = old
            .pointer("/spec/controller")
            .and_then(Value::as_str)
            .unwrap_or("");
        if controller != before {
            e.invalid("spec.controller", Bad::Str(controller), FIELD_IMMUTABLE);
        }
    }
    if controller.len() > MAX_CONTROLLER_LEN {
        e.too_long("spec.controller", MAX_CONTROLLER_LEN);
    }
    domain_prefixed_path(e, controller, "spec.controller");
    let Some(parameters) = spec.get("parameters").filter(|v| !v.is_null()) else {
        return;
    };
    typed_reference(e, parameters, "spec.parameters");
    let Some(scope) = parameters.get("scope").and_then(Value::as_str) else {
        e.required("spec.parameters.scope", "");
        return;
    };
    let namespace = parameters.get("namespace").and_then(Value::as_str);
    match scope {
        "Namespace" => match namespace {
            None => e.required(
                "spec.parameters.namespace",
                "`parameters.scope` is set to 'Namespace'",
            ),
            Some(ns) => {
                e.invalid_each("spec.parameters.namespace", ns, dns1123_label_errors(ns));
            }
        },
        "Cluster" => {
            if namespace.is_some() {
                e.forbidden(
                    "spec.parameters.namespace",
                    "`parameters.scope` is set to 'Cluster'",
                );
            }
        }
        other => e.not_supported("spec.parameters.scope", other, SCOPES),
    }
}

/// `IsDomainPrefixedPath`.
fn domain_prefixed_path(e: &mut Errs, value: &str, at: &str) {
    if value.is_empty() {
        e.required(at, "");
        return;
    }
    let Some((host, path)) = value
        .split_once('/')
        .filter(|(h, p)| !h.is_empty() && !p.is_empty())
    else {
        e.invalid(
            at,
            Bad::Str(value),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        );
        return;
    };
    e.invalid_each(at, host, dns1123_subdomain_errors(host));
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c);
    if !path.chars().all(path_char) {
        e.invalid(
            at,
            Bad::Str(path),
            "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        );
    }
}
