//! What kube-apiserver's decoding refuses, end to end (issue 13, item 8, core parts): repeated JSON
//! keys under each `fieldValidation`, a field manager over 128 bytes, and a JSON patch that moves
//! an object to another namespace.

use nautilus_tests::DevCluster;
use nautilus_tests::client::Reply;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn post(c: &DevCluster, path: &str, body: &[u8]) -> Reply {
    c.request("POST", path, Some(body), &[]).expect("POST")
}

#[test]
fn repeated_keys_follow_field_validation() {
    let c = DevCluster::start();
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"k":"first","k":"second"}}"#;
    let strict = post(&c, &format!("{CMS}?fieldValidation=Strict"), body);
    assert_eq!(strict.status, 400, "{}", text(&strict));
    assert_eq!(
        strict.json()["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"data.k\""
    );
    assert_eq!(
        c.request("GET", &format!("{CMS}/dup"), None, &[])
            .unwrap()
            .status,
        404
    );
    let warn = post(&c, &format!("{CMS}?fieldValidation=Warn"), body);
    assert_eq!(warn.status, 201, "{}", text(&warn));
    assert_eq!(
        warn.header("warning"),
        Some("299 - \"duplicate field \\\"data.k\\\"\"")
    );
    assert_eq!(warn.json()["data"]["k"], "second");
    let ignored = String::from_utf8_lossy(body).replace("\"dup\"", "\"dup2\"");
    let ignore = post(
        &c,
        &format!("{CMS}?fieldValidation=Ignore"),
        ignored.as_bytes(),
    );
    assert_eq!(ignore.status, 201, "{}", text(&ignore));
    assert_eq!(ignore.header("warning"), None);
    assert_eq!(ignore.json()["data"]["k"], "second");
}

#[test]
fn a_field_manager_over_128_bytes_is_refused_not_truncated() {
    let c = DevCluster::start();
    let long = "m".repeat(129);
    let err = c.kubectl_err(&[
        "create",
        "configmap",
        "managed",
        "--from-literal=k=v",
        &format!("--field-manager={long}"),
    ]);
    assert!(
        err.contains("CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"),
        "{err}"
    );
    c.kubectl_ok(&[
        "create",
        "configmap",
        "managed",
        "--from-literal=k=v",
        &format!("--field-manager={}", "m".repeat(128)),
    ]);
    let reply = c
        .request(
            "PATCH",
            &format!("{CMS}/managed?fieldManager={long}"),
            Some(br#"{"data":{"k":"w"}}"#),
            &[("content-type", "application/merge-patch+json")],
        )
        .unwrap();
    assert_eq!(reply.status, 422, "{}", text(&reply));
    assert_eq!(reply.json()["details"]["kind"], "PatchOptions");
}

#[test]
fn a_json_patch_that_changes_the_namespace_is_refused() {
    let c = DevCluster::start();
    c.kubectl_ok(&["create", "namespace", "elsewhere"]);
    c.kubectl_ok(&["create", "configmap", "stays", "--from-literal=k=v"]);
    let err = c.kubectl_err(&[
        "patch",
        "configmap",
        "stays",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/metadata/namespace","value":"elsewhere"}]"#,
    ]);
    assert!(
        err.contains(
            "the namespace of the provided object does not match the namespace sent on the request"
        ),
        "{err}"
    );
    c.kubectl_ok(&["get", "configmap", "stays", "-n", "default"]);
    let err = c.kubectl_err(&["get", "configmap", "stays", "-n", "elsewhere"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}
