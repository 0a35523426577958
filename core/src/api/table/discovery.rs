//! Table columns of `discovery.k8s.io/v1` EndpointSlices, as kube-apiserver 1.32 prints them
//! (kube describes them with the v1beta1 type's documentation).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::Value;

use super::{AGE, Column, NAME, col, text};

pub(super) const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

/// kube's `listWithMoreString` over at most three items.
fn three_then_more(items: impl Iterator<Item = String>) -> String {
    const MAX: usize = 3;
    let mut shown = Vec::new();
    let mut count = 0usize;
    for item in items {
        if shown.len() < MAX {
            shown.push(item);
        }
        count += 1;
    }
    let joined = shown.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else if joined.is_empty() {
        "<unset>".into()
    } else {
        joined
    }
}

fn items<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// `printEndpointSlice`: name, address type, the first ports (a port without a number shows
/// its name, or `*`) and addresses, age.
pub(super) fn cells(obj: &Value, name: Value, created: String) -> Vec<Value> {
    let ports = three_then_more(items(obj, "ports").iter().map(|p| {
        match (p.get("port").and_then(Value::as_i64), p.get("name")) {
            (Some(n), _) => n.to_string(),
            (None, Some(Value::String(name))) => name.clone(),
            _ => "*".into(),
        }
    }));
    let addresses = three_then_more(
        items(obj, "endpoints")
            .iter()
            .flat_map(|e| items(e, "addresses"))
            .map(|a| a.as_str().unwrap_or("").to_string()),
    );
    vec![
        name,
        text(obj, "/addressType").into(),
        ports.into(),
        addresses.into(),
        created.into(),
    ]
}
