//! The real `kubectl` (v1.32 on the PATH) against `nautilus-proxy dev`: every command a user of
//! the spine needs, asserting on what kubectl prints.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nautilus_tests::{DevCluster, workspace_dir};

fn manifest(name: &str) -> String {
    workspace_dir()
        .join("tests/manifests")
        .join(name)
        .display()
        .to_string()
}

/// Lines kubectl printed, without the header.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Creates a namespace through `kubectl create -f -` (the dynamic client, JSON on the wire).
fn namespace(c: &DevCluster, name: &str) {
    let out = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        )),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates a configmap through `kubectl create -f -`.
fn configmap(c: &DevCluster, namespace: &str, name: &str) {
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  a: \"1\"\n"
    );
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&yaml));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn version_discovery_and_cluster_info() {
    let c = DevCluster::start();
    let version = c.kubectl_ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "32", "{version}");
    let resources = c.kubectl_ok(&["api-resources"]);
    for needle in [
        "pods",
        "po",
        "deployments",
        "apps/v1",
        "leases",
        "coordination.k8s.io/v1",
        "namespaces",
        "services",
        "svc",
    ] {
        assert!(
            resources.split_whitespace().any(|w| w == needle),
            "api-resources lacks {needle}:\n{resources}"
        );
    }
    let info = c.kubectl_ok(&["cluster-info"]);
    assert!(
        info.contains(&format!("https://127.0.0.1:{}", c.port)),
        "{info}"
    );
}

#[test]
fn get_with_server_side_columns_selectors_and_chunks() {
    let c = DevCluster::start();
    c.kubectl_ok(&["apply", "-f", &manifest("app.yaml")]);
    let all = c.kubectl_ok(&[
        "get",
        "namespaces,nodes,pods,services,configmaps,secrets,leases",
        "-A",
    ]);
    assert!(
        all.contains("namespace/shop") && all.contains("pod/web-0") && all.contains("service/web"),
        "{all}"
    );
    assert!(
        all.contains("configmap/settings") && all.contains("secret/creds"),
        "{all}"
    );

    let pods = c.kubectl_ok(&["get", "pods", "-n", "shop"]);
    assert_eq!(
        pods.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(rows(&pods)[0][..4], ["web-0", "0/1", "Pending", "0"]);
    let wide = c.kubectl_ok(&["get", "pods", "-n", "shop", "-o", "wide"]);
    assert!(
        wide.lines().next().unwrap().contains("NOMINATED NODE"),
        "{wide}"
    );
    let svc = c.kubectl_ok(&["get", "svc", "web", "-n", "shop"]);
    let row = &rows(&svc)[0];
    assert_eq!(
        (row[1].as_str(), row[4].as_str()),
        ("ClusterIP", "80/TCP"),
        "{svc}"
    );
    assert!(row[2].starts_with("10.43."), "cluster IP allocated: {svc}");
    let secrets = c.kubectl_ok(&["get", "secrets", "-n", "shop"]);
    assert_eq!(rows(&secrets)[0][..3], ["creds", "Opaque", "1"]);

    let yaml = c.kubectl_ok(&["get", "pod", "web-0", "-n", "shop", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "pod", "web-0", "-n", "shop", "-o", "json"]))
            .unwrap();
    assert_eq!(json["spec"]["restartPolicy"], "Always", "defaults applied");
    assert_eq!(json["status"]["phase"], "Pending");

    c.kubectl_ok(&[
        "run",
        "other",
        "-n",
        "shop",
        "--image=busybox",
        "--labels=app=other",
    ]);
    // The Deployment in app.yaml also runs pods labelled app=web; these carry pod-template-hash.
    let selected = c.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "shop",
        "-l",
        "app=web,!pod-template-hash",
        "-o",
        "name",
    ]);
    assert_eq!(selected.trim(), "pod/web-0");
    let not_selected = c.kubectl_ok(&["get", "pods", "-n", "shop", "-l", "app!=web", "-o", "name"]);
    assert_eq!(not_selected.trim(), "pod/other");
    c.kubectl_ok(&[
        "patch",
        "pod",
        "other",
        "-n",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running"}}"#,
    ]);
    let by_field = c.kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "pod/other");
    let by_node = c.kubectl_ok(&["get", "pods", "-A", "--field-selector", "spec.nodeName=n1"]);
    assert!(
        by_node.trim().is_empty() || by_node.contains("No resources"),
        "{by_node}"
    );
    let bad = c.kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(bad.contains("field label not supported"), "{bad}");

    // Pagination: 7 namespaces in pages of 2, each page continuing the same snapshot.
    for i in 0..3 {
        namespace(&c, &format!("page-{i}"));
    }
    let out = c.kubectl(&["get", "namespaces", "--chunk-size=2", "-v=6"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.matches("limit=2").count() >= 4,
        "kubectl paged with continue tokens:\n{stderr}"
    );
    assert!(stderr.contains("continue="), "{stderr}");
    let names: Vec<String> = rows(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        names,
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "page-0",
            "page-1",
            "page-2",
            "shop"
        ]
    );
}

#[test]
fn apply_is_idempotent_then_configures_changes() {
    let c = DevCluster::start();
    let first = c.kubectl_ok(&["apply", "-f", &manifest("app.yaml")]);
    for line in [
        "namespace/shop created",
        "configmap/settings created",
        "secret/creds created",
        "service/web created",
        "pod/web-0 created",
        "deployment.apps/web created",
    ] {
        assert!(first.contains(line), "{first}");
    }
    let second = c.kubectl_ok(&["apply", "-f", &manifest("app.yaml")]);
    assert_eq!(second.matches("unchanged").count(), 6, "{second}");
    let changed = std::fs::read_to_string(manifest("app.yaml"))
        .unwrap()
        .replace("mode: blue", "mode: green")
        .replace("replicas: 2", "replicas: 3");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changed.yaml");
    std::fs::write(&path, changed).unwrap();
    let third = c.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    assert!(
        third.contains("configmap/settings configured")
            && third.contains("deployment.apps/web configured"),
        "{third}"
    );
    assert!(third.contains("pod/web-0 unchanged"), "{third}");
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "green"
    );
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}"
        ]),
        "3 2"
    );
    // Server-side apply creates, then owns its fields.
    let ssa = c.kubectl_ok(&["apply", "--server-side", "-f", path.to_str().unwrap()]);
    assert!(ssa.contains("serverside-applied"), "{ssa}");
    let managers = c.kubectl_ok(&[
        "get",
        "cm",
        "settings",
        "-n",
        "shop",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(managers.contains("kubectl"), "{managers}");
}

#[test]
fn create_replace_edit_patch_label_annotate_delete() {
    let c = DevCluster::start();
    namespace(&c, "edit");
    configmap(&c, "edit", "cfg");
    let dup = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: edit\n"),
    );
    let dup = String::from_utf8_lossy(&dup.stderr);
    assert!(
        dup.contains("AlreadyExists") && dup.contains("configmaps \"cfg\" already exists"),
        "{dup}"
    );

    let yaml = c
        .kubectl_ok(&["get", "cm", "cfg", "-n", "edit", "-o", "yaml"])
        .replace("a: \"1\"", "a: \"2\"");
    let replaced = c.kubectl_with_input(&["replace", "-f", "-"], Some(&yaml));
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    let stale = c.kubectl_with_input(&["replace", "-f", "-"], Some(&yaml));
    let stale_err = String::from_utf8_lossy(&stale.stderr);
    assert!(
        stale_err.contains("the object has been modified"),
        "stale resourceVersion conflicts: {stale_err}"
    );

    let editor_dir = tempfile::tempdir().unwrap();
    let editor = editor_dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/^  a: .*/  a: \"3\"/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut edit = c.kubectl_command(&["edit", "cm", "cfg", "-n", "edit"]);
    edit.env("KUBE_EDITOR", &editor);
    let edited = edit.output().unwrap();
    assert!(
        String::from_utf8_lossy(&edited.stdout).contains("configmap/cfg edited"),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );

    c.kubectl_ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "edit",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"m":"merge"}}"#,
    ]);
    c.kubectl_ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "edit",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"json"}]"#,
    ]);
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "cfg", "-n", "edit", "-o", "jsonpath={.data}"]),
        r#"{"a":"3","j":"json","m":"merge"}"#
    );

    c.kubectl_ok(&["run", "p", "-n", "edit", "--image=nginx:1.25"]);
    c.kubectl_ok(&[
        "patch",
        "pod",
        "p",
        "-n",
        "edit",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"containers":[{"name":"p","image":"nginx:1.26"}]}}"#,
    ]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "pod",
            "p",
            "-n",
            "edit",
            "-o",
            "jsonpath={.spec.containers[*].image}"
        ]),
        "nginx:1.26"
    );
    let immutable = c.kubectl_err(&[
        "patch",
        "pod",
        "p",
        "-n",
        "edit",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"restartPolicy":"Never"}}"#,
    ]);
    assert!(
        immutable.contains("Forbidden") && immutable.contains("pod updates may not change fields"),
        "{immutable}"
    );

    assert!(
        c.kubectl_ok(&["label", "pod", "p", "-n", "edit", "tier=web"])
            .contains("pod/p labeled")
    );
    assert!(
        c.kubectl_ok(&["annotate", "pod", "p", "-n", "edit", "note=hi"])
            .contains("pod/p annotated")
    );
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "pod",
            "p",
            "-n",
            "edit",
            "-o",
            "jsonpath={.metadata.labels.tier} {.metadata.annotations.note}"
        ]),
        "web hi"
    );
    c.kubectl_ok(&["label", "pod", "p", "-n", "edit", "tier-"]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "pod",
            "p",
            "-n",
            "edit",
            "-o",
            "jsonpath={.metadata.labels}"
        ]),
        r#"{"run":"p"}"#
    );

    assert!(
        c.kubectl_ok(&["delete", "pod", "p", "-n", "edit"])
            .contains("pod \"p\" deleted")
    );
    let gone = c.kubectl_err(&["get", "pod", "p", "-n", "edit"]);
    assert!(gone.contains("pods \"p\" not found"), "{gone}");

    for i in 0..3 {
        configmap(&c, "edit", &format!("bulk-{i}"));
    }
    // `--all` takes the namespace's `kube-root-ca.crt` too, which its controller puts back.
    let deleted = c.kubectl_ok(&["delete", "configmaps", "--all", "-n", "edit"]);
    assert_eq!(deleted.matches("deleted").count(), 5, "{deleted}");
    assert!(
        deleted.contains("configmap \"kube-root-ca.crt\" deleted"),
        "{deleted}"
    );
    let left = c.kubectl_ok(&["get", "cm", "-n", "edit", "-o", "name"]);
    assert!(
        left.lines().all(|l| l == "configmap/kube-root-ca.crt"),
        "{left}"
    );

    configmap(&c, "edit", "left");
    c.kubectl_ok(&["apply", "-f", &manifest("app.yaml")]);
    c.kubectl_ok(&["delete", "namespace", "shop"]);
    assert!(
        c.kubectl_ok(&["delete", "namespace", "edit"])
            .contains("namespace \"edit\" deleted")
    );
    assert_eq!(
        c.kubectl_ok(&["get", "all,cm,secrets", "-n", "shop", "-o", "name"])
            .trim(),
        "",
        "namespace contents are gone"
    );
    let ns = c.kubectl_err(&["get", "namespace", "edit"]);
    assert!(ns.contains("not found"), "{ns}");
    assert_eq!(
        c.kubectl_ok(&["get", "cm,secrets", "-n", "edit", "-o", "name"])
            .trim(),
        "",
        "namespace contents are gone"
    );
}

#[test]
fn describe_pod_node_namespace() {
    let c = DevCluster::start();
    c.kubectl_ok(&["apply", "-f", &manifest("app.yaml")]);
    let pod = c.kubectl_ok(&["describe", "pod", "web-0", "-n", "shop"]);
    for needle in [
        "Name:",
        "web-0",
        "Namespace:",
        "shop",
        "Status:",
        "Pending",
        "nginx:1.25",
        "8080/TCP",
        "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s",
    ] {
        assert!(
            pod.contains(needle),
            "describe pod lacks {needle:?}:\n{pod}"
        );
    }
    let ns = c.kubectl_ok(&["describe", "namespace", "shop"]);
    assert!(ns.contains("Status:") && ns.contains("Active"), "{ns}");
    let node_json = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}},"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}],"capacity":{"cpu":"4","memory":"8Gi","pods":"110"},"allocatable":{"cpu":"4","memory":"8Gi","pods":"110"},"nodeInfo":{"kubeletVersion":"v1.32.0","osImage":"Debian","kernelVersion":"6.1","containerRuntimeVersion":"containerd://1.7","architecture":"amd64","operatingSystem":"linux","machineID":"","systemUUID":"","bootID":"","kubeProxyVersion":""}}}"#;
    let created = c.kubectl_with_input(&["create", "-f", "-"], Some(node_json));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let node = c.kubectl_ok(&["describe", "node", "n1"]);
    for needle in [
        "Name:",
        "n1",
        "Conditions:",
        "Ready",
        "Capacity:",
        "Allocatable:",
    ] {
        assert!(
            node.contains(needle),
            "describe node lacks {needle:?}:\n{node}"
        );
    }
    let nodes = c.kubectl_ok(&["get", "nodes"]);
    assert_eq!(rows(&nodes)[0][..2], ["n1", "Ready"], "{nodes}");
}

/// Starts `kubectl args` in the background and returns a receiver of its stdout lines.
fn background(c: &DevCluster, args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = c
        .kubectl_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Collects lines until `done` holds for the collected lines or 15 s pass.
fn collect_until(rx: &mpsc::Receiver<String>, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut lines = Vec::new();
    while !done(&lines) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    lines
}

#[test]
fn watches_show_changes_as_they_happen() {
    let c = DevCluster::start();
    namespace(&c, "w");
    c.kubectl_ok(&["run", "a", "-n", "w", "--image=nginx"]);
    let (mut plain, plain_rx) = background(&c, &["get", "pods", "-n", "w", "-w"]);
    let (mut events, events_rx) = background(
        &c,
        &["get", "pods", "-n", "w", "-w", "--output-watch-events"],
    );
    let (mut single, single_rx) = background(&c, &["get", "pod", "a", "-n", "w", "-w"]);
    // The initial listing arrives before we change anything.
    collect_until(&plain_rx, |l| l.iter().any(|x| x.starts_with("a ")));
    collect_until(&events_rx, |l| {
        l.iter()
            .any(|x| x.starts_with("ADDED") && x.contains(" a "))
    });
    collect_until(&single_rx, |l| l.iter().any(|x| x.starts_with("a ")));

    c.kubectl_ok(&["run", "b", "-n", "w", "--image=nginx"]);
    c.kubectl_ok(&["label", "pod", "a", "-n", "w", "x=y"]);
    c.kubectl_ok(&["delete", "pod", "b", "-n", "w"]);

    let ev = collect_until(&events_rx, |l| l.iter().any(|x| x.starts_with("DELETED")));
    let kinds: Vec<(&str, &str)> = ev
        .iter()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?))
        })
        // With no nodes, the scheduler marks b Unschedulable (a MODIFIED of its own), as
        // kube-scheduler would.
        .filter(|kind| *kind != ("MODIFIED", "b"))
        .collect();
    assert_eq!(
        kinds,
        [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")],
        "{ev:?}"
    );
    let pl = collect_until(&plain_rx, |l| {
        l.iter().filter(|x| x.starts_with("b ")).count() >= 2
            && l.iter().any(|x| x.starts_with("a "))
    });
    assert!(
        pl.iter().any(|l| l.starts_with("b ")) && pl.iter().any(|l| l.starts_with("a ")),
        "{pl:?}"
    );
    let one = collect_until(&single_rx, |l| !l.is_empty());
    assert!(
        one.iter().all(|l| l.starts_with("a ")),
        "get pod a -w shows only a: {one:?}"
    );
    for child in [&mut plain, &mut events, &mut single] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn raw_watch_replays_from_a_revision_and_expires_when_it_left_the_ring() {
    let c = DevCluster::start_with(&["--watch-ring=50"]);
    namespace(&c, "r");
    let rv = c.kubectl_ok(&[
        "get",
        "namespace",
        "r",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    configmap(&c, "r", "one");
    configmap(&c, "r", "two");
    let (mut watch, rx) = background(
        &c,
        &[
            "get",
            "--raw",
            // Not the `kube-root-ca.crt` the namespace gets from its controller.
            &format!(
                "/api/v1/namespaces/r/configmaps?watch=true&resourceVersion={rv}\
                 &fieldSelector=metadata.name!=kube-root-ca.crt"
            ),
        ],
    );
    let lines = collect_until(&rx, |l| l.len() >= 2);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("ADDED", "one"), ("ADDED", "two")]
    );
    let _ = watch.kill();
    let _ = watch.wait();

    for i in 0..60 {
        configmap(&c, "r", &format!("churn-{i}"));
    }
    let out = c.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/r/configmaps?watch=true&resourceVersion={rv}"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let event: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(event["type"], "ERROR", "{stdout}");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert!(
        event["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {rv} (")),
        "{event}"
    );
}

#[test]
fn health_answers_on_the_proxy_port_and_readyz_follows_the_enclave() {
    let c = DevCluster::start();
    for path in ["/healthz", "/readyz", "/livez", "/version"] {
        let reply = c.anonymous("GET", path).unwrap();
        assert_eq!(
            reply.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let pid = c.enclave_pid().expect("enclave child runs");
    nautilus_tests::signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut saw_unready = false;
    while Instant::now() < deadline && !saw_unready {
        saw_unready = c.anonymous("GET", "/readyz").map(|r| r.status) == Ok(503);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(saw_unready, "/readyz turns 503 while the enclave is down");
    let reply = c.request("GET", "/api/v1/pods", None, &[]).unwrap();
    assert!(reply.status == 503 || reply.status == 200, "{reply:?}");
    // dev restarts the enclave; the proxy reconnects on the next connection.
    c.wait_ready();
    assert_ne!(c.enclave_pid(), Some(pid), "a new enclave process serves");
    assert_eq!(
        c.request("GET", "/api/v1/namespaces/default", None, &[])
            .unwrap()
            .status,
        200
    );
}

#[test]
fn typed_create_commands_send_protobuf_and_work() {
    let c = DevCluster::start();
    assert!(
        c.kubectl_ok(&["create", "namespace", "typed"])
            .contains("namespace/typed created")
    );
    c.kubectl_ok(&[
        "create",
        "configmap",
        "c",
        "-n",
        "typed",
        "--from-literal=a=1",
    ]);
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "typed",
        "--from-literal=k=v",
    ]);
    c.kubectl_ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "-n",
        "typed",
        "--tcp=80:8080",
    ]);
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "typed",
        "--image=nginx",
        "--replicas=6",
        "--port=80",
    ]);
    c.kubectl_ok(&["create", "serviceaccount", "robot", "-n", "typed"]);
    assert_eq!(
        c.kubectl_ok(&["get", "cm", "c", "-n", "typed", "-o", "jsonpath={.data.a}"]),
        "1"
    );
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "secret",
            "s",
            "-n",
            "typed",
            "-o",
            "jsonpath={.data.k}"
        ]),
        "dg=="
    );
    let svc = c.kubectl_ok(&[
        "get",
        "svc",
        "np",
        "-n",
        "typed",
        "-o",
        "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort}",
    ]);
    assert_eq!(svc, "NodePort 80 8080");
    let deploy = c.kubectl_ok(&["get", "deploy", "web", "-n", "typed", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"]);
    assert_eq!(deploy, "6 nginx 80");
    let dup = c.kubectl_err(&["create", "configmap", "c", "-n", "typed"]);
    assert!(dup.contains("already exists"), "{dup}");
}
