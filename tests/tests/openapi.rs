//! The served OpenAPI documents read by real clients against `nautilus-proxy dev`: `kubectl
//! explain` through `/openapi/v3` (and its protobuf `/openapi/v2` path), the official Python
//! client reading `/openapi/v2`, and kube-openapi's caching rules on the wire.

use std::process::Command;

use nautilus_core::resource::RESOURCES;
use nautilus_tests::{DevCluster, workspace_dir};

/// `kubectl explain PATH` printed the field and these sub-fields.
#[track_caller]
fn explains(c: &DevCluster, args: &[&str], field: &str, children: &[&str]) {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    let out = c.kubectl_ok(&all);
    assert!(
        out.contains(&format!("FIELD: {field} <")) || out.contains(&format!("RESOURCE: {field} <")),
        "kubectl {} does not describe {field}:\n{out}",
        all.join(" ")
    );
    for child in children {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{child}\t"))),
            "kubectl {} lacks the field {child}:\n{out}",
            all.join(" ")
        );
    }
}

#[test]
fn kubectl_explain_walks_nested_fields_of_every_kind() {
    let c = DevCluster::start();
    explains(
        &c,
        &["pods.spec.containers"],
        "containers",
        &[
            "image",
            "livenessProbe",
            "ports",
            "resources",
            "volumeMounts",
        ],
    );
    explains(
        &c,
        &["deployments.spec.strategy.rollingUpdate"],
        "rollingUpdate",
        &["maxSurge", "maxUnavailable"],
    );
    // (resource, a field three or more levels down, fields it holds).
    let nested: &[(&str, &str, &[&str])] = &[
        (
            "namespaces",
            "namespaces.status.conditions",
            &["lastTransitionTime", "type"],
        ),
        (
            "pods",
            "pods.spec.affinity.nodeAffinity",
            &["requiredDuringSchedulingIgnoredDuringExecution"],
        ),
        (
            "nodes",
            "nodes.status.daemonEndpoints.kubeletEndpoint",
            &["Port"],
        ),
        (
            "services",
            "services.spec.sessionAffinityConfig.clientIP",
            &["timeoutSeconds"],
        ),
        (
            "endpoints",
            "endpoints.subsets.addresses.targetRef",
            &["fieldPath", "uid"],
        ),
        (
            "configmaps",
            "configmaps.metadata.managedFields",
            &["fieldsV1", "manager"],
        ),
        (
            "secrets",
            "secrets.metadata.ownerReferences",
            &["blockOwnerDeletion", "uid"],
        ),
        (
            "serviceaccounts",
            "serviceaccounts.imagePullSecrets",
            &["name"],
        ),
        ("events", "events.series", &["count", "lastObservedTime"]),
        ("leases", "leases.spec", &["holderIdentity", "renewTime"]),
        (
            "deployments",
            "deployments.spec.template.spec.containers.readinessProbe.httpGet",
            &["path", "port"],
        ),
        (
            "replicasets",
            "replicasets.spec.selector.matchExpressions",
            &["key", "operator", "values"],
        ),
        (
            "podtemplates",
            "podtemplates.template.spec.containers.resources",
            &["limits", "requests"],
        ),
        (
            "replicationcontrollers",
            "replicationcontrollers.spec.template.metadata",
            &["labels", "name"],
        ),
        (
            "jobs",
            "jobs.spec.podFailurePolicy.rules",
            &["action", "onExitCodes"],
        ),
        (
            "cronjobs",
            "cronjobs.spec.jobTemplate.spec.template",
            &["metadata", "spec"],
        ),
        (
            "customresourcedefinitions",
            "customresourcedefinitions.spec.versions.additionalPrinterColumns",
            &["jsonPath", "name", "type"],
        ),
        (
            "resourcequotas",
            "resourcequotas.spec.scopeSelector.matchExpressions",
            &["operator", "scopeName", "values"],
        ),
        (
            "poddisruptionbudgets",
            "poddisruptionbudgets.spec.selector.matchExpressions",
            &["key", "operator", "values"],
        ),
        (
            "runtimeclasses",
            "runtimeclasses.scheduling.tolerations",
            &["effect", "key", "tolerationSeconds"],
        ),
        (
            "flowschemas",
            "flowschemas.spec.rules.subjects.serviceAccount",
            &["name", "namespace"],
        ),
        (
            "prioritylevelconfigurations",
            "prioritylevelconfigurations.spec.limited.limitResponse.queuing",
            &["handSize", "queueLengthLimit", "queues"],
        ),
        (
            "validatingwebhookconfigurations",
            "validatingwebhookconfigurations.webhooks.clientConfig.service",
            &["name", "namespace", "path", "port"],
        ),
        (
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfigurations.webhooks.rules",
            &["apiGroups", "operations", "scope"],
        ),
        (
            "validatingadmissionpolicies",
            "validatingadmissionpolicies.spec.matchConstraints.resourceRules",
            &["operations", "resourceNames"],
        ),
        (
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicybindings.spec.paramRef",
            &["name", "parameterNotFoundAction", "selector"],
        ),
        ("roles", "roles.rules", &["apiGroups", "resources", "verbs"]),
        (
            "clusterroles",
            "clusterroles.aggregationRule",
            &["clusterRoleSelectors"],
        ),
        (
            "rolebindings",
            "rolebindings.roleRef",
            &["apiGroup", "kind", "name"],
        ),
        (
            "clusterrolebindings",
            "clusterrolebindings.subjects",
            &["apiGroup", "kind", "name", "namespace"],
        ),
        ("csinodes", "csinodes.spec.drivers.allocatable", &["count"]),
        (
            "csidrivers",
            "csidrivers.spec.tokenRequests",
            &["audience", "expirationSeconds"],
        ),
        (
            "endpointslices",
            "endpointslices.endpoints.conditions",
            &["ready", "serving", "terminating"],
        ),
        (
            "priorityclasses",
            "priorityclasses.metadata.ownerReferences",
            &["apiVersion", "kind", "name", "uid"],
        ),
        (
            "ingresses",
            "ingresses.spec.rules.http.paths.backend.service.port",
            &["name", "number"],
        ),
        (
            "volumeattachments",
            "volumeattachments.spec.source",
            &["inlineVolumeSpec", "persistentVolumeName"],
        ),
        (
            "ingressclasses",
            "ingressclasses.spec.parameters",
            &["apiGroup", "kind", "name", "namespace", "scope"],
        ),
        (
            "horizontalpodautoscalers",
            "horizontalpodautoscalers.spec.behavior.scaleUp.policies",
            &["periodSeconds", "type", "value"],
        ),
        (
            "certificatesigningrequests",
            "certificatesigningrequests.status.conditions",
            &[
                "lastTransitionTime",
                "lastUpdateTime",
                "reason",
                "status",
                "type",
            ],
        ),
    ];
    for r in RESOURCES {
        assert!(
            nested.iter().any(|(plural, ..)| *plural == r.plural),
            "add a nested field of {} to this test",
            r.plural
        );
    }
    for (_, path, children) in nested {
        let field = path.rsplit('.').next().unwrap_or(path);
        explains(&c, &[path], field, children);
    }
    // A view of a kind in a second group-version has its own schema.
    explains(
        &c,
        &[
            "--api-version=autoscaling/v1",
            "horizontalpodautoscalers.spec",
        ],
        "spec",
        &["targetCPUUtilizationPercentage"],
    );
    explains(
        &c,
        &["--api-version=events.k8s.io/v1", "events.series"],
        "series",
        &["count", "lastObservedTime"],
    );
    // `--recursive` walks the whole tree without a missing definition.
    let tree = c.kubectl_ok(&["explain", "pods.spec", "--recursive"]);
    assert!(tree.contains("tcpSocket"), "{tree}");
    // Again, from kubectl's cache (it keys documents by the index's ?hash=).
    explains(&c, &["pods.spec.containers"], "containers", &["image"]);
    // kubectl's OpenAPI v2 path: client-go's OpenAPISchema reads /openapi/v2 as protobuf.
    explains(
        &c,
        &[
            "--output=plaintext-openapiv2",
            "pods.spec.containers.livenessProbe",
        ],
        "livenessProbe",
        &["exec", "httpGet", "initialDelaySeconds"],
    );
    explains(
        &c,
        &[
            "--output=plaintext-openapiv2",
            "deployments.spec.strategy.rollingUpdate",
        ],
        "rollingUpdate",
        &["maxSurge", "maxUnavailable"],
    );
}

#[test]
fn python_client_reads_openapi_v2() {
    let c = DevCluster::start();
    let out = Command::new("python3")
        .arg(workspace_dir().join("tests/python/openapi_v2.py"))
        .arg(&c.kubeconfig)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("openapi v2: OK"));
}

#[test]
fn documents_are_cached_by_hash_and_etag() {
    let c = DevCluster::start();
    let index = c.request("GET", "/openapi/v3", None, &[]).unwrap();
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), Some("application/json"));
    let url = index.json()["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let hash = url.split("?hash=").nth(1).unwrap().to_string();
    // The hashed URL: immutable for a year, with the hash as ETag.
    let doc = c.request("GET", &url, None, &[]).unwrap();
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("cache-control"), Some("public, immutable"));
    assert!(doc.header("expires").is_some_and(|e| e.ends_with(" GMT")));
    assert_eq!(doc.header("vary"), Some("Accept"));
    let etag = format!("\"{hash}\"");
    assert_eq!(doc.header("etag"), Some(etag.as_str()));
    assert!(doc.json()["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    // Without the hash: revalidate; If-None-Match answers 304 with no body.
    let plain = c
        .request("GET", "/openapi/v3/apis/apps/v1", None, &[])
        .unwrap();
    assert_eq!(plain.header("cache-control"), Some("no-cache, private"));
    assert_eq!(plain.body, doc.body);
    let again = c
        .request(
            "GET",
            "/openapi/v3/apis/apps/v1",
            None,
            &[("if-none-match", &etag)],
        )
        .unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // A stale hash: 301 to the current URL.
    let stale = c
        .request("GET", "/openapi/v3/apis/apps/v1?hash=00", None, &[])
        .unwrap();
    assert_eq!(stale.status, 301);
    assert_eq!(stale.header("location"), Some(url.as_str()));
    // v2 in both media types, one ETag.
    let json = c.request("GET", "/openapi/v2", None, &[]).unwrap();
    assert_eq!(json.status, 200);
    assert_eq!(json.json()["swagger"], "2.0");
    let pb = c
        .request(
            "GET",
            "/openapi/v2",
            None,
            &[(
                "accept",
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            )],
        )
        .unwrap();
    assert_eq!(
        pb.header("content-type"),
        Some("application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    );
    assert_eq!(pb.header("etag"), json.header("etag"));
    assert!(pb.body.len() > 100_000);
    let refused = c
        .request("GET", "/openapi/v2", None, &[("accept", "text/html")])
        .unwrap();
    assert_eq!(refused.status, 406);
    let missing = c
        .request("GET", "/openapi/v3/apis/example.com/v1", None, &[])
        .unwrap();
    assert_eq!(missing.status, 404);
}
