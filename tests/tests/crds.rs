//! CustomResourceDefinitions end to end with the real `kubectl` and the official Python client:
//! a CRD applied, established and discovered; its custom resources created, listed, printed with
//! the definition's columns, explained from the published OpenAPI, defaulted, pruned and validated
//! against the schema, scaled, applied server-side, read in every served version; deleting the
//! CRD deletes them.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, workspace_dir};
use serde_json::Value;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            description: What to run and when.
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: The schedule, in cron format.
                pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'
              image:
                type: string
                description: The image to run.
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
          status:
            type: object
            properties:
              replicas:
                type: integer
              labelSelector:
                type: string
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.labelSelector
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Image
      type: string
      jsonPath: .spec.image
      priority: 1
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

fn get_json(c: &DevCluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&all)).expect("kubectl -o json")
}

/// Runs kubectl with `input` on stdin and asserts it succeeded; returns the whole output.
#[track_caller]
fn kubectl_input_ok(c: &DevCluster, args: &[&str], input: &str) -> Output {
    let out = c.kubectl_with_input(args, Some(input));
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    out
}

/// Runs kubectl with `input` expecting failure; returns stderr.
#[track_caller]
fn kubectl_input_err(c: &DevCluster, args: &[&str], input: &str) -> String {
    let out = c.kubectl_with_input(args, Some(input));
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `check` until it holds, for at most ten seconds.
#[track_caller]
fn wait_for(c: &DevCluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}\n{}", c.logs());
}

fn install_crd(c: &DevCluster) {
    kubectl_input_ok(c, &["apply", "-f", "-"], CRD);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=10s",
        "crd/crontabs.stable.example.com",
    ]);
}

#[test]
fn crd_and_custom_resources_with_kubectl() {
    let c = DevCluster::start();
    install_crd(&c);
    let crd = get_json(&c, &["crd", "crontabs.stable.example.com"]);
    let conditions = crd["status"]["conditions"].as_array().unwrap();
    for kind in ["NamesAccepted", "Established"] {
        assert!(
            conditions
                .iter()
                .any(|x| x["type"] == kind && x["status"] == "True"),
            "{kind}: {conditions:?}"
        );
    }
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "CronTab");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    // Discovery: the group, its versions (storage first), the resource and its short name.
    let resources = c.kubectl_ok(&["api-resources", "--api-group=stable.example.com"]);
    assert!(
        resources.contains("crontabs") && resources.contains("ct") && resources.contains("CronTab"),
        "{resources}"
    );
    let versions = c.kubectl_ok(&["api-versions"]);
    assert!(
        versions.contains("stable.example.com/v1\n")
            && versions.contains("stable.example.com/v1beta1\n"),
        "{versions}"
    );

    // Create: defaulting fills replicas; the table has the definition's columns.
    kubectl_input_ok(
        &c,
        &["apply", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: nightly\n  labels: {tier: batch}\nspec:\n  cronSpec: '0 3 * * *'\n  image: backup:1\n",
    );
    let nightly = get_json(&c, &["crontab", "nightly"]);
    assert_eq!(nightly["spec"]["replicas"], 1, "{nightly}");
    assert_eq!(nightly["metadata"]["generation"], 1);
    let table = c.kubectl_ok(&["get", "ct"]);
    assert!(
        table.contains("SPEC") && table.contains("REPLICAS") && table.contains("0 3 * * *"),
        "{table}"
    );
    assert!(
        !table.contains("IMAGE"),
        "priority 1 column in the short table: {table}"
    );
    let wide = c.kubectl_ok(&["get", "crontabs", "-o", "wide"]);
    assert!(
        wide.contains("IMAGE") && wide.contains("backup:1"),
        "{wide}"
    );
    // The `all` category lists it.
    let all = c.kubectl_ok(&["get", "all"]);
    assert!(all.contains("crontab.stable.example.com/nightly"), "{all}");

    // Schema validation, with kube-openapi's wording.
    let err = kubectl_input_err(
        &c,
        &["create", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: bad}\nspec: {cronSpec: 'every day', replicas: 20}\n",
    );
    assert!(
        err.contains("spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.cronSpec: Invalid value: \"every day\": spec.cronSpec in body should match"
        ),
        "{err}"
    );
    let err = kubectl_input_err(
        &c,
        &["create", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: bad}\nspec: {image: x}\n",
    );
    assert!(err.contains("spec.cronSpec: Required value"), "{err}");

    // Unknown fields: Strict (kubectl's default) refuses them, Warn prunes them with a warning.
    let extra = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: loose}\nspec: {cronSpec: '* * * * *', extra: 1}\n";
    let err = kubectl_input_err(&c, &["create", "-f", "-"], extra);
    assert!(err.contains("unknown field \"spec.extra\""), "{err}");
    let out = kubectl_input_ok(&c, &["create", "--validate=warn", "-f", "-"], extra);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("unknown field \"spec.extra\""), "{warned}");
    let loose = get_json(&c, &["ct", "loose"]);
    assert!(loose["spec"].get("extra").is_none(), "not pruned: {loose}");

    // The published OpenAPI explains the kind.
    let explain = c.kubectl_ok(&["explain", "crontabs.spec"]);
    assert!(
        explain.contains("What to run and when.")
            && explain.contains("cronSpec")
            && explain.contains("The schedule, in cron format."),
        "{explain}"
    );

    // Scale subresource.
    c.kubectl_ok(&["scale", "crontab/nightly", "--replicas=3"]);
    let nightly = get_json(&c, &["ct", "nightly"]);
    assert_eq!(nightly["spec"]["replicas"], 3);
    assert_eq!(nightly["metadata"]["generation"], 2);

    // Status subresource: the main resource ignores status, /status writes only status.
    c.kubectl_ok(&[
        "patch",
        "ct",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"status": {"replicas": 9}}"#,
    ]);
    assert!(get_json(&c, &["ct", "nightly"])["status"].is_null());
    c.kubectl_ok(&[
        "patch",
        "ct",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"replicas": 3, "labelSelector": "tier=batch"}, "spec": {"replicas": 5}}"#,
    ]);
    let nightly = get_json(&c, &["ct", "nightly"]);
    assert_eq!(nightly["status"]["replicas"], 3);
    assert_eq!(nightly["spec"]["replicas"], 3);
    let scale: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1/namespaces/default/crontabs/nightly/scale",
    ]))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["status"]["selector"], "tier=batch");

    // Strategic merge patch is not served for custom resources (kube's 415).
    let err = c.kubectl_err(&[
        "patch",
        "ct",
        "nightly",
        "--type=strategic",
        "-p",
        r#"{"spec": {"image": "backup:2"}}"#,
    ]);
    assert!(
        err.contains("UnsupportedMediaType") || err.contains("unknown format"),
        "{err}"
    );

    // Server-side apply: a second manager conflicts on a field the first owns.
    let applied = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: applied}\nspec: {cronSpec: '*/5 * * * *', image: web:1}\n";
    kubectl_input_ok(
        &c,
        &["apply", "--server-side", "--field-manager=one", "-f", "-"],
        applied,
    );
    let err = kubectl_input_err(
        &c,
        &["apply", "--server-side", "--field-manager=two", "-f", "-"],
        &applied.replace("web:1", "web:2"),
    );
    assert!(
        err.contains("conflict") && err.contains(".spec.image"),
        "{err}"
    );
    kubectl_input_ok(
        &c,
        &[
            "apply",
            "--server-side",
            "--field-manager=two",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &applied.replace("web:1", "web:2"),
    );
    assert_eq!(get_json(&c, &["ct", "applied"])["spec"]["image"], "web:2");

    // Every served version reads the same objects, in its own apiVersion.
    let beta: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1beta1/namespaces/default/crontabs/nightly",
    ]))
    .unwrap();
    assert_eq!(beta["apiVersion"], "stable.example.com/v1beta1");
    assert_eq!(beta["spec"]["cronSpec"], "0 3 * * *");

    // Label selectors on lists.
    let selected = get_json(&c, &["ct", "-l", "tier=batch"]);
    let names: Vec<&str> = selected["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nightly"]);

    // Deleting the CRD deletes its custom resources, then the definition and its routes.
    c.kubectl_ok(&["delete", "crd", "crontabs.stable.example.com"]);
    wait_for(&c, "the CRD gone", || {
        c.kubectl(&["get", "crd", "crontabs.stable.example.com"])
            .status
            .code()
            .is_some_and(|code| code != 0)
    });
    let gone = c
        .request(
            "GET",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
            None,
            &[],
        )
        .unwrap();
    assert_eq!(gone.status, 404);
    // Recreated, it starts empty: the old objects did not survive.
    install_crd(&c);
    let listed = get_json(&c, &["crontabs"]);
    assert_eq!(listed["items"], serde_json::json!([]), "{listed}");
}

#[test]
fn python_custom_objects_api() {
    let c = DevCluster::start();
    let script = workspace_dir().join("tests/python/crds.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&c.kubeconfig)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "crds.py failed ({}):\nstdout:\n{}\nstderr:\n{}\ncluster logs:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
}
