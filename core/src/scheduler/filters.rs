//! The filters of kube-scheduler's default profile that apply here, in its order: NodeUnschedulable,
//! TaintToleration, NodeAffinity (nodeSelector and required node affinity), NodePorts,
//! NodeResourcesFit. A node is rejected by the first filter that fails, as kube does.

use super::info::{Effect, HostPort, Op, PodInfo, Requirement, Term};
use super::node::NodeState;

/// Taint key kube puts on cordoned nodes; a pod tolerating it may land on one.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Why a node was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// `spec.unschedulable` (cordoned).
    Unschedulable,
    /// The index (in the node's taints) of the first untolerated NoSchedule/NoExecute taint.
    Taint(usize),
    /// nodeSelector or required node affinity.
    Affinity,
    /// A requested host port is taken.
    Ports,
    /// Resources: which ones are short.
    Resources { pods: bool, cpu: bool, memory: bool },
}

impl Rejection {
    /// Whether preemption could help (kube: `Unschedulable` as opposed to
    /// `UnschedulableAndUnresolvable`): only for ports and resources.
    pub(crate) fn resolvable(self) -> bool {
        matches!(self, Rejection::Ports | Rejection::Resources { .. })
    }
}

/// Runs every filter on `node`; `None` when the pod fits.
pub(crate) fn filter(pod: &PodInfo, node: &NodeState) -> Option<Rejection> {
    let info = &node.info;
    if info.unschedulable
        && !pod
            .tolerations
            .iter()
            .any(|t| t.tolerates(UNSCHEDULABLE_TAINT, "", "NoSchedule"))
    {
        return Some(Rejection::Unschedulable);
    }
    if let Some(i) = untolerated_taint(pod, node) {
        return Some(Rejection::Taint(i));
    }
    if !matches_affinity(pod, node) {
        return Some(Rejection::Affinity);
    }
    if ports_conflict(&pod.host_ports, &node.ports) {
        return Some(Rejection::Ports);
    }
    fits_resources(pod, node)
}

/// The first NoSchedule/NoExecute taint no toleration tolerates.
fn untolerated_taint(pod: &PodInfo, node: &NodeState) -> Option<usize> {
    node.info.taints.iter().position(|t| {
        t.effect != Effect::PreferNoSchedule
            && !pod
                .tolerations
                .iter()
                .any(|tol| tol.tolerates(&t.key, &t.value, t.effect.as_str()))
    })
}

/// nodeSelector (every pair) and required node affinity (any term).
pub(crate) fn matches_affinity(pod: &PodInfo, node: &NodeState) -> bool {
    let info = &node.info;
    if !pod
        .node_selector
        .iter()
        .all(|(k, v)| info.label(k) == Some(v.as_str()))
    {
        return false;
    }
    match &pod.required {
        None => true,
        Some(terms) => terms.iter().any(|t| term_matches(t, node)),
    }
}

/// One node selector term: all its requirements; an empty term matches nothing (kube).
pub(crate) fn term_matches(term: &Term, node: &NodeState) -> bool {
    if term.expressions.is_empty() && term.fields.is_empty() {
        return false;
    }
    term.expressions
        .iter()
        .all(|r| requirement_matches(r, node.info.label(&r.key)))
        && term.fields.iter().all(|r| {
            // Only metadata.name is a valid field (admission refuses others).
            r.key == "metadata.name" && requirement_matches(r, Some(node.info.name.as_str()))
        })
}

fn requirement_matches(r: &Requirement, value: Option<&str>) -> bool {
    let contains = |v: &str| r.values.iter().any(|x| x == v);
    match (&r.op, value) {
        (Op::In, Some(v)) => contains(v),
        (Op::NotIn, Some(v)) => !contains(v),
        (Op::NotIn, None) | (Op::DoesNotExist, None) | (Op::Exists, Some(_)) => true,
        (Op::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x > *n),
        (Op::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x < *n),
        _ => false,
    }
}

fn ports_conflict(wanted: &[HostPort], used: &[HostPort]) -> bool {
    wanted.iter().any(|w| used.iter().any(|u| u.conflicts(w)))
}

/// NodeResourcesFit: pod count, then cpu and memory against allocatable minus what bound pods
/// request. A pod that requests nothing only needs a pod slot.
fn fits_resources(pod: &PodInfo, node: &NodeState) -> Option<Rejection> {
    let pods = node.pod_count.saturating_add(1) > node.info.allocatable_pods;
    let req = pod.requests;
    let alloc = node.info.allocatable;
    let cpu = req.cpu > 0 && req.cpu > alloc.cpu.saturating_sub(node.requested.cpu);
    let memory = req.memory > 0 && req.memory > alloc.memory.saturating_sub(node.requested.memory);
    (pods || cpu || memory).then_some(Rejection::Resources { pods, cpu, memory })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::info::NodeInfo;
    use alloc::vec;
    use alloc::vec::Vec;
    use serde_json::{Value, json};

    fn node(extra: Value) -> NodeState {
        let mut n = json!({"metadata": {"name": "n1", "labels": {"zone": "a", "gen": "5"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"}}});
        crate::patch::merge_patch(&mut n, &extra);
        NodeState::new(NodeInfo::of(&n))
    }

    fn pod(spec: Value) -> PodInfo {
        let mut p = json!({"spec": {"containers": [{"name": "c", "image": "x"}]}});
        crate::patch::merge_patch(&mut p, &json!({ "spec": spec }));
        PodInfo::of(&p)
    }

    #[test]
    fn filters_table() {
        let affinity = |expr: Value| {
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}}})
        };
        let cases: Vec<(&str, Value, Value, Option<Rejection>)> = vec![
            ("plain pod fits", json!({}), json!({}), None),
            (
                "cordoned",
                json!({"spec": {"unschedulable": true}}),
                json!({}),
                Some(Rejection::Unschedulable),
            ),
            (
                "cordoned but tolerated",
                json!({"spec": {"unschedulable": true}}),
                json!({"tolerations": [{"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}),
                None,
            ),
            (
                "not ready is a not-ready taint",
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
                json!({}),
                Some(Rejection::Taint(0)),
            ),
            (
                "NoSchedule taint untolerated",
                json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
                json!({}),
                Some(Rejection::Taint(0)),
            ),
            (
                "Equal toleration with another value",
                json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
                json!({"tolerations": [{"key": "gpu", "value": "no"}]}),
                Some(Rejection::Taint(0)),
            ),
            (
                "Equal toleration",
                json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
                json!({"tolerations": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}),
                None,
            ),
            (
                "Exists with empty key tolerates everything",
                json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}, {"key": "b", "effect": "NoSchedule"}]}}),
                json!({"tolerations": [{"operator": "Exists"}]}),
                None,
            ),
            (
                "toleration for another effect",
                json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}}),
                json!({"tolerations": [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]}),
                Some(Rejection::Taint(0)),
            ),
            (
                "PreferNoSchedule does not filter",
                json!({"spec": {"taints": [{"key": "a", "effect": "PreferNoSchedule"}]}}),
                json!({}),
                None,
            ),
            (
                "nodeSelector matches",
                json!({}),
                json!({"nodeSelector": {"zone": "a"}}),
                None,
            ),
            (
                "nodeSelector differs",
                json!({}),
                json!({"nodeSelector": {"zone": "b"}}),
                Some(Rejection::Affinity),
            ),
            (
                "In",
                json!({}),
                json!({"affinity": affinity(json!({"key": "zone", "operator": "In", "values": ["a", "b"]}))}),
                None,
            ),
            (
                "In misses",
                json!({}),
                json!({"affinity": affinity(json!({"key": "zone", "operator": "In", "values": ["b"]}))}),
                Some(Rejection::Affinity),
            ),
            (
                "NotIn on absent label",
                json!({}),
                json!({"affinity": affinity(json!({"key": "rack", "operator": "NotIn", "values": ["x"]}))}),
                None,
            ),
            (
                "NotIn",
                json!({}),
                json!({"affinity": affinity(json!({"key": "zone", "operator": "NotIn", "values": ["a"]}))}),
                Some(Rejection::Affinity),
            ),
            (
                "Exists",
                json!({}),
                json!({"affinity": affinity(json!({"key": "zone", "operator": "Exists"}))}),
                None,
            ),
            (
                "DoesNotExist",
                json!({}),
                json!({"affinity": affinity(json!({"key": "zone", "operator": "DoesNotExist"}))}),
                Some(Rejection::Affinity),
            ),
            (
                "Gt",
                json!({}),
                json!({"affinity": affinity(json!({"key": "gen", "operator": "Gt", "values": ["4"]}))}),
                None,
            ),
            (
                "Gt equal fails",
                json!({}),
                json!({"affinity": affinity(json!({"key": "gen", "operator": "Gt", "values": ["5"]}))}),
                Some(Rejection::Affinity),
            ),
            (
                "Lt",
                json!({}),
                json!({"affinity": affinity(json!({"key": "gen", "operator": "Lt", "values": ["6"]}))}),
                None,
            ),
            (
                "Lt on a non-integer label",
                json!({}),
                json!({"affinity": affinity(json!({"key": "zone", "operator": "Lt", "values": ["6"]}))}),
                Some(Rejection::Affinity),
            ),
            (
                "matchFields metadata.name",
                json!({}),
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
                None,
            ),
            (
                "terms are ORed",
                json!({}),
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
                        {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}}}),
                None,
            ),
            (
                "too much cpu",
                json!({}),
                json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}]}),
                Some(Rejection::Resources {
                    pods: false,
                    cpu: true,
                    memory: false,
                }),
            ),
            (
                "too much cpu and memory",
                json!({}),
                json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "5Gi"}}}]}),
                Some(Rejection::Resources {
                    pods: false,
                    cpu: true,
                    memory: true,
                }),
            ),
            (
                "no pod slots",
                json!({"status": {"allocatable": {"pods": "0"}}}),
                json!({}),
                Some(Rejection::Resources {
                    pods: true,
                    cpu: false,
                    memory: false,
                }),
            ),
        ];
        for (name, node_patch, pod_spec, want) in cases {
            let n = node(node_patch);
            let p = pod(pod_spec);
            assert_eq!(filter(&p, &n), want, "{name}");
        }
    }

    #[test]
    fn used_resources_and_ports_count() {
        let mut n = node(json!({}));
        n.requested.cpu = 1500;
        let p =
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "600m"}}}]}));
        assert!(matches!(
            filter(&p, &n),
            Some(Rejection::Resources { cpu: true, .. })
        ));
        n.requested.cpu = 1400;
        assert_eq!(filter(&p, &n), None, "exactly what is left fits");
        n.pod_count = 3;
        assert!(matches!(
            filter(&p, &n),
            Some(Rejection::Resources { pods: true, .. })
        ));
        n.pod_count = 0;
        n.ports.push(HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 8080,
        });
        let cases = [
            (json!({"hostPort": 8080, "containerPort": 80}), true),
            (
                json!({"hostPort": 8080, "containerPort": 80, "protocol": "UDP"}),
                false,
            ),
            (
                json!({"hostPort": 8080, "containerPort": 80, "hostIP": "10.0.0.1"}),
                true,
            ),
            (json!({"hostPort": 8081, "containerPort": 80}), false),
            (json!({"containerPort": 8080}), false),
        ];
        for (port, conflict) in cases {
            let p = pod(json!({"containers": [{"name": "c", "ports": [port.clone()]}]}));
            assert_eq!(filter(&p, &n) == Some(Rejection::Ports), conflict, "{port}");
        }
        let host_net = pod(
            json!({"hostNetwork": true, "containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}),
        );
        assert_eq!(filter(&host_net, &n), Some(Rejection::Ports));
    }
}
