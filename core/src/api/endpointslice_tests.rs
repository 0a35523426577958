//! `discovery.k8s.io/v1` EndpointSlices written by hand against the core alone: defaulted,
//! validated with kube's messages, generation as kube's strategy counts it, printed with kube's
//! columns, and in discovery.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::Method;
use crate::cluster::test_harness::{call, causes, column_names, server};

const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

#[test]
fn hand_made_slices_are_defaulted_counted_and_printed() {
    let mut s = server();
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "ext-1", "labels": {"kubernetes.io/service-name": "ext"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.10"]}, {"addresses": ["192.0.2.11"]},
            {"addresses": ["192.0.2.12"]}, {"addresses": ["192.0.2.13"]}],
        "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]});
    let (status, created) = call(&mut s, Method::Post, SLICES, None, &slice);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(
        created["ports"],
        json!([{"name": "", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"}])
    );
    let (_, table) = call(
        &mut s,
        Method::Get,
        SLICES,
        Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
        &Value::Null,
    );
    let columns = column_names(&table);
    assert_eq!(
        columns,
        ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    );
    assert_eq!(
        table["rows"][0]["cells"],
        json!([
            "ext-1",
            "IPv4",
            "80,53",
            "192.0.2.10,192.0.2.11,192.0.2.12 + 1 more...",
            "0s"
        ])
    );

    // A label change counts as a change of the slice; an annotation does not.
    let path = alloc::format!("{SLICES}/ext-1");
    let (_, patched) = call(
        &mut s,
        Method::Patch,
        &path,
        None,
        &json!({"metadata": {"annotations": {"a": "b"}}}),
    );
    assert_eq!(patched["metadata"]["generation"], 1, "{patched}");
    let (_, patched) = call(
        &mut s,
        Method::Patch,
        &path,
        None,
        &json!({"metadata": {"labels": {"x": "y"}}}),
    );
    assert_eq!(patched["metadata"]["generation"], 2, "{patched}");
    let (_, patched) = call(
        &mut s,
        Method::Patch,
        &path,
        None,
        &json!({"endpoints": []}),
    );
    assert_eq!(patched["metadata"]["generation"], 3, "{patched}");
    let (status, answer) = call(
        &mut s,
        Method::Patch,
        &path,
        None,
        &json!({"addressType": "IPv6"}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["message"],
        "EndpointSlice.discovery.k8s.io \"ext-1\" is invalid: addressType: Invalid value: \"IPv6\": field is immutable"
    );

    let (status, list) = call(
        &mut s,
        Method::Get,
        "/apis/discovery.k8s.io/v1",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["resources"][0]["name"], "endpointslices");
    assert_eq!(list["resources"][0]["namespaced"], true);
}

#[test]
fn bad_slices_are_refused_with_kubes_wording() {
    let mut s = server();
    let bad = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "bad"},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": []},
            {"addresses": ["10.0.0.300", "127.0.0.1", "0.0.0.0", "169.254.1.1", "224.0.0.5"],
                "nodeName": "Bad_Node", "hostname": "a.b",
                "hints": {"forZones": [{"name": "z"}, {"name": "z"}]}}],
        "ports": [{"name": "Web", "port": 80}, {"name": "Web", "port": 81, "protocol": "ICMP",
            "appProtocol": "a/b/c"}]});
    let (status, answer) = call(&mut s, Method::Post, SLICES, None, &bad);
    assert_eq!(status, 422, "{answer}");
    let want: Vec<(&str, &str)> = alloc::vec![
        (
            "endpoints[0].addresses",
            "Required value: must contain at least 1 address"
        ),
        (
            "endpoints[1].addresses[0]",
            "Invalid value: \"10.0.0.300\": must be a valid IPv4 address"
        ),
        (
            "endpoints[1].addresses[0]",
            "Invalid value: \"10.0.0.300\": must be a valid IP address"
        ),
        (
            "endpoints[1].addresses[1]",
            "Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        ),
        (
            "endpoints[1].addresses[2]",
            "Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"
        ),
        (
            "endpoints[1].addresses[3]",
            "Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        ),
        (
            "endpoints[1].addresses[4]",
            "Invalid value: \"224.0.0.5\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        ),
        (
            "endpoints[1].nodeName",
            "Invalid value: \"Bad_Node\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
        (
            "endpoints[1].hostname",
            "Invalid value: \"a.b\": must not contain dots"
        ),
        (
            "endpoints[1].hints.forZones[1].name",
            "Duplicate value: \"z\""
        ),
        (
            "ports[0].name",
            "Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ),
        (
            "ports[1].name",
            "Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ),
        ("ports[1].name", "Duplicate value: \"Web\""),
        (
            "ports[1].protocol",
            "Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        ),
        (
            "ports[1].appProtocol",
            "Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ),
    ];
    let want: Vec<(String, String)> = want
        .into_iter()
        .map(|(f, m)| (String::from(f), String::from(m)))
        .collect();
    assert_eq!(causes(&answer), want);
    let (status, answer) = call(
        &mut s,
        Method::Post,
        SLICES,
        None,
        &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "x"}, "addressType": "IPX", "endpoints": []}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        causes(&answer),
        [(
            String::from("addressType"),
            String::from(
                "Unsupported value: \"IPX\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            )
        )]
    );
}
