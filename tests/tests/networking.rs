//! `networking.k8s.io/v1` Ingress and IngressClass end to end with the real `kubectl`: kubectl's
//! own `create ingress` generator, kube's Table columns, `explain`, and kube's refusals. Stored
//! and validated only: no ingress controller runs, so no Ingress gets an address.

use nautilus_tests::DevCluster;

#[test]
fn kubectl_creates_lists_and_is_refused_like_kube() {
    let c = DevCluster::start();
    let class = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\nspec:\n  controller: k8s.io/ingress-nginx\n";
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(class));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kubectl_ok(&[
        "create",
        "ingress",
        "web",
        "--class=nginx",
        "--rule=foo.example.com/api*=api:8080,tls=foo-tls",
        "--rule=bar.example.com/=web:http",
    ]);
    let table = c.kubectl_ok(&["get", "ingress", "web"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..3],
        ["web", "nginx", "foo.example.com,bar.example.com"],
        "{table}"
    );
    assert!(table.contains("80, 443"), "{table}");
    let path_type = c.kubectl_ok(&[
        "get",
        "ingress",
        "web",
        "-o",
        "jsonpath={.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.port.number}",
    ]);
    assert_eq!(path_type, "Prefix 8080");
    let classes = c.kubectl_ok(&["get", "ingressclasses"]);
    assert!(
        classes.lines().nth(1).unwrap().starts_with("nginx")
            && classes.contains("k8s.io/ingress-nginx")
            && classes.contains("<none>"),
        "{classes}"
    );
    let explain = c.kubectl_ok(&["explain", "ingress.spec.rules.http.paths.pathType"]);
    assert!(
        explain.contains("pathType determines the interpretation of the path matching"),
        "{explain}"
    );

    let err = c.kubectl_err(&["create", "ingress", "bad", "--rule=10.0.0.1/=svc:80"]);
    assert!(
        err.contains(
            "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"
        ),
        "{err}"
    );
    let err = c.kubectl_err(&[
        "patch",
        "ingressclass",
        "nginx",
        "--type=merge",
        "-p",
        r#"{"spec":{"controller":"example.com/other"}}"#,
    ]);
    assert!(
        err.contains("spec.controller: Invalid value: \"example.com/other\": field is immutable"),
        "{err}"
    );
}
