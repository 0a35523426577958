//! PriorityClass and Priority admission end to end with the real `kubectl`: the system classes
//! kube creates at start, `kubectl create priorityclass` (kubectl's generator) with kube's Table
//! columns, the reserved `system-` prefix, one global default, and pods given their class's
//! priority (or refused a class that does not exist) in kube's words.

use nautilus_tests::DevCluster;

#[test]
fn kubectl_sees_system_classes_and_pods_get_their_priority() {
    let c = DevCluster::start();
    let table = c.kubectl_ok(&["get", "priorityclasses"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| (r[0], r[1], r[2], r[4]))
            .collect::<Vec<_>>(),
        [
            (
                "system-cluster-critical",
                "2000000000",
                "false",
                "PreemptLowerPriority"
            ),
            (
                "system-node-critical",
                "2000001000",
                "false",
                "PreemptLowerPriority"
            ),
        ],
        "{table}"
    );

    c.kubectl_ok(&[
        "create",
        "priorityclass",
        "batch-low",
        "--value=100",
        "--global-default=true",
        "--preemption-policy=Never",
        "--description=batch work",
    ]);
    let err = c.kubectl_err(&[
        "create",
        "priorityclass",
        "other-default",
        "--value=5",
        "--global-default=true",
    ]);
    assert!(
        err.contains(
            "PriorityClass batch-low is already marked as default. Only one default can exist"
        ),
        "{err}"
    );
    let err = c.kubectl_err(&["create", "priorityclass", "system-mine", "--value=5"]);
    assert!(
        err.contains("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only"),
        "{err}"
    );

    c.kubectl_ok(&["run", "plain", "--image=nginx"]);
    let spec = c.kubectl_ok(&[
        "get",
        "pod",
        "plain",
        "-o",
        "jsonpath={.spec.priorityClassName} {.spec.priority} {.spec.preemptionPolicy}",
    ]);
    assert_eq!(spec, "batch-low 100 Never");
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: critical\nspec:\n  priorityClassName: system-node-critical\n  containers:\n  - name: c\n    image: nginx\n";
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let priority = c.kubectl_ok(&["get", "pod", "critical", "-o", "jsonpath={.spec.priority}"]);
    assert_eq!(priority, "2000001000");
    let missing = manifest
        .replace("critical", "lost")
        .replace("system-node-lost", "nope");
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&missing));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pods \"lost\" is forbidden: no PriorityClass with name nope was found"),
        "{stderr}"
    );
}
