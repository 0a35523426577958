//! What the targets share: the input format and a pre-populated server.
//!
//! Inputs are plain bytes split on `0xFF` (a byte that never occurs in UTF-8 text), so a seed is
//! a real request body or header written verbatim, and the fuzzer mutates the parts it finds.
#![allow(dead_code)]

use nautilus_core::api::{ApiRequest, Method};
use nautilus_core::cluster::Cluster;
use nautilus_core::{Config, UnixTime};
use sha2::{Digest, Sha256};

/// The separator between an input's fields.
pub const SEP: u8 = 0xFF;

/// The admin's bearer token in every fuzzed server.
pub const ADMIN: &str = "admin-secret";

/// The relay's bearer token for Sui event pushes.
pub const RELAY: &str = "relay-secret";

/// The fuzzed servers' clock.
pub const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

/// The Sui package whose staking events the seed follows.
pub const PACKAGE: [u8; 32] = [0xab; 32];

/// `data` split on [`SEP`] into at most `n` fields (the last keeps any further separators).
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == SEP).collect()
}

/// Field `i` of `parts`, empty when absent.
pub fn field<'a>(parts: &[&'a [u8]], i: usize) -> &'a [u8] {
    parts.get(i).copied().unwrap_or_default()
}

/// Field `i` as text (lossy: the runtime hands core `&str` headers and paths).
pub fn text(parts: &[&[u8]], i: usize) -> String {
    String::from_utf8_lossy(field(parts, i)).into_owned()
}

/// A server whose admin and relay tokens are known, following [`PACKAGE`].
pub fn bare_server() -> Cluster {
    let config = Config {
        admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
        relay_token_sha256: Some(Sha256::digest(RELAY.as_bytes()).into()),
        sui_package: Some(PACKAGE),
        ..Config::default()
    };
    Cluster::new(config, [7; 32], NOW)
}

/// Sends `body` to `path` as the admin; the status.
pub fn admin_call(
    s: &mut Cluster,
    method: Method,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> u16 {
    let auth = format!("Bearer {ADMIN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some(content_type);
    req.body = body;
    s.handle_request(NOW, &req)
        .into_response()
        .map_or(0, |r| r.status)
}

/// A server holding a few objects of the commonly served kinds, so reads, patches, deletes and
/// selectors find something.
pub fn populated_server() -> Cluster {
    let mut s = bare_server();
    let objects: &[(&str, &str)] = &[
        (
            "/api/v1/namespaces/default/configmaps",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-a","labels":{"app":"web","tier":"front"},"annotations":{"note":"x"}},"data":{"k":"v","list":"a,b"}}"#,
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-b","labels":{"app":"db"}},"data":{"k":"w"}}"#,
        ),
        (
            "/api/v1/namespaces/default/secrets",
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"sec"},"type":"Opaque","data":{"password":"aHVudGVyMg=="}}"#,
        ),
        (
            "/api/v1/namespaces/default/pods",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"1"}]}]}}"#,
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#,
        ),
        (
            "/api/v1/namespaces/default/services",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc"},"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}}"#,
        ),
        (
            "/api/v1/nodes",
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a","labels":{"kubernetes.io/hostname":"node-a"}},"spec":{"taints":[{"key":"k","value":"v","effect":"NoSchedule"}]}}"#,
        ),
    ];
    for (path, body) in objects {
        admin_call(
            &mut s,
            Method::Post,
            path,
            "application/json",
            body.as_bytes(),
        );
    }
    s
}
