//! Table columns of the `networking.k8s.io/v1` kinds, as kube-apiserver 1.32 prints them.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::Value;

use super::{AGE, Column, NAME, col, text};
use crate::resource::ResourceId;

pub(super) const INGRESS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

pub(super) const INGRESS_CLASS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn items<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// `formatHosts`: up to three hosts, `*` when none names one.
fn hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = rule.get("host").and_then(Value::as_str).unwrap_or("");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len().saturating_sub(MAX))
    } else {
        joined
    }
}

/// The cells of one object (`printIngress`, `printIngressClass`; server-side printing is wide,
/// so addresses are not cut).
pub(super) fn cells(resource: ResourceId, obj: &Value, name: Value, created: String) -> Vec<Value> {
    match resource {
        ResourceId::IngressClasses => {
            let parameters = match obj.pointer("/spec/parameters").filter(|p| !p.is_null()) {
                None => String::from("<none>"),
                Some(p) => {
                    let mut out = String::from(text(p, "/kind"));
                    if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                        out.push('.');
                        out.push_str(group);
                    }
                    format!("{out}/{}", text(p, "/name"))
                }
            };
            vec![
                name,
                text(obj, "/spec/controller").into(),
                parameters.into(),
                created.into(),
            ]
        }
        _ => {
            let class = obj
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let addresses: BTreeSet<&str> = items(obj, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| {
                    let ip = i.get("ip").and_then(Value::as_str).unwrap_or("");
                    let host = i.get("hostname").and_then(Value::as_str).unwrap_or("");
                    [ip, host].into_iter().find(|v| !v.is_empty())
                })
                .collect();
            let ports = if items(obj, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                class.into(),
                hosts(items(obj, "/spec/rules")).into(),
                addresses.into_iter().collect::<Vec<_>>().join(",").into(),
                ports.into(),
                created.into(),
            ]
        }
    }
}
