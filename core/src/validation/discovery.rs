//! Validation of `discovery.k8s.io/v1` EndpointSlices as kube-apiserver 1.32 does it
//! (`pkg/apis/discovery/validation`): the address type (immutable), each endpoint's addresses
//! for that type, node name and hostname, and the ports' names, protocols and app protocols,
//! with kube's limits, field paths and wording.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, arr, s};
use super::names::{
    dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, qualified_name_errors,
};
use crate::net::parse_ipv4;

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20_000;
const MAX_ENDPOINTS: usize = 1_000;
const MAX_ZONE_HINTS: usize = 8;

impl Errs {
    /// `field.TooMany`.
    fn too_many(&mut self, field: &str, actual: usize, max: usize) {
        self.push(
            "FieldValueTooMany",
            field,
            format!("Too many: {actual}: must have at most {max} items"),
        );
    }
}

/// `ValidateEndpointSlice` and, with `old`, `ValidateEndpointSliceUpdate`.
pub(super) fn validate_endpoint_slice(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let address_type = s(obj, "addressType");
    if address_type.is_empty() {
        e.required("addressType", "");
    } else if !ADDRESS_TYPES.contains(&address_type) {
        e.not_supported("addressType", address_type, ADDRESS_TYPES);
    }
    endpoints(e, arr(obj, "endpoints"), address_type);
    ports(e, arr(obj, "ports"));
    if let Some(old) = old {
        let before = s(old, "addressType");
        if address_type != before {
            e.invalid("addressType", Bad::Str(address_type), FIELD_IMMUTABLE);
        }
    }
}

fn endpoints(e: &mut Errs, endpoints: &[Value], address_type: &str) {
    if endpoints.len() > MAX_ENDPOINTS {
        e.too_many("endpoints", endpoints.len(), MAX_ENDPOINTS);
        return;
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        let path = format!("endpoints[{i}]");
        let addresses_path = format!("{path}.addresses");
        let addresses = arr(endpoint, "addresses");
        if addresses.is_empty() {
            e.required(&addresses_path, "must contain at least 1 address");
        } else if addresses.len() > MAX_ADDRESSES {
            e.too_many(&addresses_path, addresses.len(), MAX_ADDRESSES);
        }
        for (j, address) in addresses.iter().enumerate() {
            let address = address.as_str().unwrap_or("");
            let at = format!("{addresses_path}[{j}]");
            match address_type {
                "IPv4" => ip_address(e, &at, address, true),
                "IPv6" => ip_address(e, &at, address, false),
                "FQDN" => fqdn(e, &at, address),
                _ => {}
            }
        }
        if let Some(node) = endpoint.get("nodeName").and_then(Value::as_str) {
            e.invalid_each(
                &format!("{path}.nodeName"),
                node,
                dns1123_subdomain_errors(node),
            );
        }
        if let Some(host) = endpoint.get("hostname").and_then(Value::as_str) {
            e.invalid_each(
                &format!("{path}.hostname"),
                host,
                dns1123_label_errors(host),
            );
        }
        let zones = endpoint
            .pointer("/hints/forZones")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let zones_path = format!("{path}.hints.forZones");
        if zones.len() > MAX_ZONE_HINTS {
            e.too_many(&zones_path, zones.len(), MAX_ZONE_HINTS);
            continue;
        }
        let mut seen = BTreeSet::new();
        for (j, zone) in zones.iter().enumerate() {
            let name = s(zone, "name");
            let at = format!("{zones_path}[{j}].name");
            if !seen.insert(name) {
                e.duplicate(&at, Bad::Str(name));
            }
            e.invalid_each(&at, name, label_value_errors(name));
        }
    }
}

/// `IsValidIPv4Address`/`IsValidIPv6Address` then `ValidateNonSpecialIP`.
fn ip_address(e: &mut Errs, at: &str, address: &str, v4: bool) {
    let parsed_v4 = parse_ipv4(address);
    let parsed_v6 = address.parse::<core::net::Ipv6Addr>().ok();
    if v4 && parsed_v4.is_none() {
        e.invalid(at, Bad::Str(address), "must be a valid IPv4 address");
    }
    if !v4 && parsed_v6.is_none() {
        e.invalid(at, Bad::Str(address), "must be a valid IPv6 address");
    }
    let ip = match (parsed_v4, parsed_v6) {
        (Some(v4), _) => core::net::IpAddr::V4(core::net::Ipv4Addr::from(v4)),
        (None, Some(v6)) => core::net::IpAddr::V6(v6),
        (None, None) => {
            e.invalid(at, Bad::Str(address), "must be a valid IP address");
            return;
        }
    };
    if ip.is_unspecified() {
        e.invalid(
            at,
            Bad::Str(address),
            &format!("may not be unspecified ({address})"),
        );
    }
    if ip.is_loopback() {
        e.invalid(
            at,
            Bad::Str(address),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        );
    }
    let (link_local, link_local_multicast) = match ip {
        core::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            ((a, b) == (169, 254), (a, b, c) == (224, 0, 0))
        }
        core::net::IpAddr::V6(v6) => {
            let first = v6.segments().first().copied().unwrap_or(0);
            (first & 0xffc0 == 0xfe80, first & 0xff0f == 0xff02)
        }
    };
    if link_local {
        e.invalid(
            at,
            Bad::Str(address),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        );
    }
    if link_local_multicast {
        e.invalid(
            at,
            Bad::Str(address),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        );
    }
}

/// `IsFullyQualifiedDomainName`: the first failing rule only, its messages joined by `,`.
fn fqdn(e: &mut Errs, at: &str, name: &str) {
    if name.is_empty() {
        e.required(at, "");
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = dns1123_subdomain_errors(name);
    if !errs.is_empty() {
        e.invalid(at, Bad::Str(name), &errs.join(","));
        return;
    }
    if name.split('.').count() < 2 {
        e.invalid(
            at,
            Bad::Str(name),
            "should be a domain with at least two segments separated by dots",
        );
        return;
    }
    for label in name.split('.') {
        let errs = dns1123_label_errors(label);
        if !errs.is_empty() {
            e.invalid(at, Bad::Str(label), &errs.join(","));
            return;
        }
    }
}

fn ports(e: &mut Errs, ports: &[Value]) {
    if ports.len() > MAX_PORTS {
        e.too_many("ports", ports.len(), MAX_PORTS);
        return;
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("ports[{i}]");
        let name = s(port, "name");
        if !name.is_empty() {
            e.invalid_each(&format!("{path}.name"), name, dns1123_label_errors(name));
        }
        if !names.insert(name) {
            e.duplicate(&format!("{path}.name"), Bad::Str(name));
        }
        match port.get("protocol").and_then(Value::as_str) {
            None => e.required(&format!("{path}.protocol"), ""),
            Some(protocol) if !PROTOCOLS.contains(&protocol) => {
                e.not_supported(&format!("{path}.protocol"), protocol, PROTOCOLS);
            }
            Some(_) => {}
        }
        if let Some(app) = port.get("appProtocol").and_then(Value::as_str) {
            e.invalid_each(
                &format!("{path}.appProtocol"),
                app,
                qualified_name_errors(app),
            );
        }
    }
}

/// The EndpointSlice strategy's generation rule: anything but metadata changed, or the labels.
pub(crate) fn endpoint_slice_changed(old: &Value, new: &Value) -> bool {
    let body = |v: &Value| {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "apiVersion" | "kind"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<String, Value>>()
            })
            .unwrap_or_default()
    };
    body(old) != body(new) || old.pointer("/metadata/labels") != new.pointer("/metadata/labels")
}
