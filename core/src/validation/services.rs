//! Validation of Services and Endpoints as kube 1.32's `pkg/apis/core/validation` does it: types,
//! ports and protocols, external names and cluster IPs (single-stack IPv4), and what an update
//! may not change.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, arr, s};
use super::meta::validate_labels;
use super::names::{dns1123_label_errors, dns1123_subdomain_errors, port_name_errors};
use crate::gostr::quote;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub(super) fn validate_protocol(e: &mut Errs, port: &Value, path: &str) {
    match port.get("protocol").and_then(Value::as_str) {
        // Absent is defaulted to TCP before validation in kube.
        None => {}
        Some("") => e.required(&format!("{path}.protocol"), ""),
        Some(p) if !PROTOCOLS.contains(&p) => {
            e.not_supported(&format!("{path}.protocol"), p, PROTOCOLS);
        }
        Some(_) => {}
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

pub(super) fn validate_service(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let ty = spec.get("type").and_then(Value::as_str);
    if let Some(t) = ty
        && !SERVICE_TYPES.contains(&t)
    {
        e.not_supported("spec.type", t, SERVICE_TYPES);
    }
    let ty = ty.unwrap_or("ClusterIP");
    let headless = s(spec, "clusterIP") == "None";
    validate_cluster_ips(e, spec, ty);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        e.required("spec.ports", "");
    }
    if ty == "ExternalName" {
        let name = s(spec, "externalName");
        if name.is_empty() {
            e.required("spec.externalName", "");
        } else {
            let trimmed = name.strip_suffix('.').unwrap_or(name);
            let errs = dns1123_subdomain_errors(trimmed);
            if !errs.is_empty() {
                e.invalid("spec.externalName", Bad::Str(trimmed), &errs.join(","));
            } else if !trimmed.contains('.') {
                e.invalid(
                    "spec.externalName",
                    Bad::Str(trimmed),
                    "should be a domain with at least two segments separated by dots",
                );
            }
        }
    }
    let require_name = ports.len() > 1;
    let mut names: Vec<&str> = Vec::new();
    let mut node_ports: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = s(p, "name");
        if name.is_empty() {
            if require_name {
                e.required(&format!("{pp}.name"), "");
            }
        } else {
            e.invalid_each(&format!("{pp}.name"), name, dns1123_label_errors(name));
            if names.contains(&name) {
                e.duplicate(&format!("{pp}.name"), Bad::Str(name));
            } else {
                names.push(name);
            }
        }
        e.port_num(
            &format!("{pp}.port"),
            p.get("port").and_then(Value::as_i64).unwrap_or(0),
        );
        validate_protocol(e, p, &pp);
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                // 0 is defaulted to `port` in kube.
                if n != 0 {
                    e.port_num(&format!("{pp}.targetPort"), n);
                }
            }
            Some(Value::String(t)) if !t.is_empty() => {
                e.invalid_each(&format!("{pp}.targetPort"), t, port_name_errors(t));
            }
            _ => {}
        }
        if let Some(n) = p.get("nodePort").and_then(Value::as_i64)
            && n != 0
        {
            if ty == "ClusterIP" {
                e.forbidden(
                    &format!("{pp}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            } else {
                e.port_num(&format!("{pp}.nodePort"), n);
            }
            // One node port per protocol within a Service.
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if node_ports.contains(&(protocol, n)) {
                e.duplicate(&format!("{pp}.nodePort"), Bad::Int(n));
            } else {
                node_ports.push((protocol, n));
            }
        }
    }
    validate_labels(e, spec.get("selector"), "spec.selector");
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&empty);
        let old_ty = s(old_spec, "type");
        if ty == "ExternalName" || old_ty == "ExternalName" {
            return;
        }
        let old_ip = s(old_spec, "clusterIP");
        let new_ip = s(spec, "clusterIP");
        // An omitted clusterIP keeps the allocated one (kube copies it over before validating).
        if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip {
            let ips: Vec<String> = match spec.get("clusterIPs").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|v| quote(v.as_str().unwrap_or("")))
                    .collect(),
                None => alloc::vec![quote(new_ip)],
            };
            e.invalid(
                "spec.clusterIPs[0]",
                Bad::Raw(format!("[]string{{{}}}", ips.join(", "))),
                "may not change once set",
            );
        }
    }
}

/// kube's `ValidateServiceClusterIPsRelatedFields` for a single-stack IPv4 cluster: `clusterIP`
/// and `clusterIPs` agree, each is an IP (or `None` alone), and the type allows them.
fn validate_cluster_ips(e: &mut Errs, spec: &Value, ty: &str) {
    let ip = s(spec, "clusterIP");
    let ips: Vec<&str> = arr(spec, "clusterIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    let shown = || Bad::Raw(crate::gostr::go_strings(&ips));
    if ty == "ExternalName" {
        if !ip.is_empty() || !ips.is_empty() {
            e.forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            );
        }
        return;
    }
    if !ip.is_empty() {
        match ips.first() {
            None => e.required("spec.clusterIPs", ""),
            Some(first) if *first != ip => {
                e.invalid(
                    "spec.clusterIPs",
                    shown(),
                    "first value must match `clusterIP`",
                );
            }
            Some(_) => {}
        }
    } else if !ips.is_empty() {
        e.invalid(
            "spec.clusterIPs",
            shown(),
            "must be empty when `clusterIP` is not specified",
        );
    }
    for (i, value) in ips.iter().enumerate() {
        if i == 0 && *value == "None" {
            if ips.len() > 1 {
                e.invalid(
                    "spec.clusterIPs",
                    shown(),
                    "'None' must be the first and only value",
                );
            }
            continue;
        }
        if !crate::net::is_ip(value) {
            e.invalid(
                &format!("spec.clusterIPs[{i}]"),
                Bad::Str(value),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    if ip == "None" && matches!(ty, "NodePort" | "LoadBalancer") {
        e.invalid(
            "spec.clusterIPs[0]",
            Bad::Str("None"),
            &format!("may not be set to 'None' for {ty} services"),
        );
    }
}

pub(super) fn validate_endpoints(e: &mut Errs, obj: &Value) {
    for (i, subset) in arr(obj, "subsets").iter().enumerate() {
        for (j, p) in arr(subset, "ports").iter().enumerate() {
            let pp = format!("subsets[{i}].ports[{j}]");
            e.port_num(
                &format!("{pp}.port"),
                p.get("port").and_then(Value::as_i64).unwrap_or(0),
            );
            validate_protocol(e, p, &pp);
            let name = s(p, "name");
            if !name.is_empty() {
                e.invalid_each(&format!("{pp}.name"), name, dns1123_label_errors(name));
            }
        }
    }
}
