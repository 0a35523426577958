//! Resource quota evaluation as kube's quota evaluators do it: what one object uses (pods:
//! compute requests and limits, services: node ports and load balancers, everything else:
//! object counts), which quotas an object falls under (scopes and scope selectors), and the
//! arithmetic of `hard`/`used` resource lists. The quota controller and quota admission share it.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::quantity::Quantity;
use crate::resource::{ResourceId, ResourceType};
use crate::{UnixTime, json as j};

/// A `ResourceList`: resource name → quantity, in name order.
pub(crate) type ResourceList = BTreeMap<String, Quantity>;

/// Quota resource names the pod evaluator owns (`podResources`).
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// Quota resource names the service evaluator owns.
const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];

/// Quota resource names of the claim evaluator (claims are not served: always zero, as kube
/// reports them with no claims in the namespace).
fn is_claim_resource(name: &str) -> bool {
    matches!(
        name,
        "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage"
    ) || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
}

/// `count/<plural>[.<group>]`, the object-count name of a resource.
pub(crate) fn count_name(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        alloc::format!("count/{}", rt.plural)
    } else {
        alloc::format!("count/{}.{}", rt.plural, rt.group)
    }
}

/// The legacy object-count name of the kinds that had one before `count/`.
fn legacy_count_name(resource: ResourceId) -> Option<&'static str> {
    match resource {
        ResourceId::ConfigMaps => Some("configmaps"),
        ResourceId::Secrets => Some("secrets"),
        ResourceId::ResourceQuotas => Some("resourcequotas"),
        _ => {
            let plural = resource.info().plural;
            (plural == "replicationcontrollers").then_some("replicationcontrollers")
        }
    }
}

/// Whether `name` is tracked by the pod evaluator (its names, hugepages, extended requests).
fn is_pod_resource(name: &str) -> bool {
    POD_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || (name.starts_with("requests.") && name.contains('/') && !name.contains("kubernetes.io/"))
}

/// Of `hard`'s names, those the evaluator of `resource` tracks (`MatchingResources`).
pub(crate) fn matching_resources(resource: ResourceId, hard: &ResourceList) -> Vec<&str> {
    let rt = resource.info();
    let count = count_name(rt);
    hard.keys()
        .map(String::as_str)
        .filter(|name| match resource {
            ResourceId::Pods => is_pod_resource(name),
            ResourceId::Services => SERVICE_RESOURCES.contains(name),
            _ => *name == count || legacy_count_name(resource) == Some(*name),
        })
        .collect()
}

/// Whether some evaluator tracks quota resource `name` (the controller reports usage only for
/// those, as `CalculateUsage` does).
pub(crate) fn tracked(name: &str) -> bool {
    if is_pod_resource(name) || SERVICE_RESOURCES.contains(&name) || is_claim_resource(name) {
        return true;
    }
    crate::resource::RESOURCES.iter().any(|rt| {
        rt.namespaced && (count_name(rt) == name || legacy_count_name(rt.id) == Some(name))
    })
}

/// A resource list from JSON (`spec.hard`, `status.used`); entries that are not quantities are
/// left out (validation refused them).
pub(crate) fn list_from_json(value: Option<&Value>) -> ResourceList {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::from_json(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A resource list as JSON, each quantity in its canonical form.
pub(crate) fn list_to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), Value::from(q.canonical())))
            .collect::<Map<String, Value>>(),
    )
}

/// `quota.Add`: the sum of two lists, keeping `a`'s formats.
pub(crate) fn add(mut a: ResourceList, b: &ResourceList) -> ResourceList {
    for (k, q) in b {
        let sum = a.get(k).copied().unwrap_or_default().plus(*q);
        a.insert(k.clone(), sum);
    }
    a
}

fn max_into(a: &mut ResourceList, b: &ResourceList) {
    for (k, q) in b {
        match a.get(k) {
            Some(existing) if existing >= q => {}
            _ => {
                a.insert(k.clone(), *q);
            }
        }
    }
}

/// `requests` or `limits` of one container.
fn container_list(c: &Value, which: &str) -> ResourceList {
    list_from_json(c.pointer(&alloc::format!("/resources/{which}")))
}

/// `resourcehelper.PodRequests` / `PodLimits`: containers summed, the largest init step
/// (with the sidecars running before it), then the pod overhead.
fn pod_list(spec: &Value, which: &str) -> ResourceList {
    let mut total = ResourceList::new();
    for c in j::array_at(spec, "/containers") {
        total = add(total, &container_list(c, which));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in j::array_at(spec, "/initContainers") {
        let own = container_list(c, which);
        let step = if j::str_at(c, "/restartPolicy") == "Always" {
            total = add(total, &own);
            sidecars = add(sidecars, &own);
            sidecars.clone()
        } else {
            add(own, &sidecars)
        };
        max_into(&mut init_max, &step);
    }
    max_into(&mut total, &init_max);
    let overhead = list_from_json(spec.get("overhead"));
    if which == "requests" {
        total = add(total, &overhead);
    } else {
        for (k, q) in overhead {
            if let Some(limit) = total.get_mut(&k) {
                *limit = limit.plus(q);
            }
        }
    }
    total
}

/// Whether a pod still counts against compute quota (`QuotaV1Pod`): not terminal, and not
/// past the end of its deletion grace period.
fn pod_counts(pod: &Value, now: UnixTime) -> bool {
    if matches!(j::str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
        return false;
    }
    if let (Some(deleted), Some(grace)) = (
        pod.pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(UnixTime::parse_rfc3339),
        pod.pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_u64),
    ) {
        return now <= deleted.plus_secs(grace);
    }
    true
}

fn one() -> Quantity {
    Quantity::from_units(1)
}

/// What `obj` of `resource` uses, in every name its evaluator knows (`Usage`).
pub(crate) fn usage(resource: ResourceId, obj: &Value, now: UnixTime) -> ResourceList {
    let mut out = ResourceList::new();
    match resource {
        ResourceId::Pods => {
            out.insert("count/pods".into(), one());
            if !pod_counts(obj, now) {
                return out;
            }
            let spec = obj.get("spec").unwrap_or(&Value::Null);
            let requests = pod_list(spec, "requests");
            let limits = pod_list(spec, "limits");
            out.insert("pods".into(), one());
            for (name, q) in &requests {
                match name.as_str() {
                    "cpu" | "memory" | "ephemeral-storage" => {
                        out.insert(name.clone(), *q);
                        out.insert(alloc::format!("requests.{name}"), *q);
                    }
                    n if n.starts_with("hugepages-") => {
                        out.insert(name.clone(), *q);
                        out.insert(alloc::format!("requests.{name}"), *q);
                    }
                    n if n.contains('/') && !n.contains("kubernetes.io/") => {
                        out.insert(alloc::format!("requests.{name}"), *q);
                    }
                    _ => {}
                }
            }
            for (name, q) in &limits {
                if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                    out.insert(alloc::format!("limits.{name}"), *q);
                }
            }
        }
        ResourceId::Services => {
            out.insert("count/services".into(), one());
            out.insert("services".into(), one());
            let ports = i64::try_from(j::array_at(obj, "/spec/ports").len()).unwrap_or(i64::MAX);
            let (node_ports, balancers) = match j::str_at(obj, "/spec/type") {
                "NodePort" => (ports, 0),
                "LoadBalancer" => {
                    let explicit = obj.pointer("/spec/allocateLoadBalancerNodePorts")
                        == Some(&Value::Bool(false));
                    let counted = if explicit {
                        let with = j::array_at(obj, "/spec/ports")
                            .iter()
                            .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                            .count();
                        i64::try_from(with).unwrap_or(i64::MAX)
                    } else {
                        ports
                    };
                    (counted, 1)
                }
                _ => (0, 0),
            };
            out.insert(
                "services.nodeports".into(),
                Quantity::from_units(node_ports),
            );
            out.insert(
                "services.loadbalancers".into(),
                Quantity::from_units(balancers),
            );
        }
        _ => {
            out.insert(count_name(resource.info()), one());
            if let Some(legacy) = legacy_count_name(resource) {
                out.insert(legacy.into(), one());
            }
        }
    }
    out
}

/// One scope requirement of a quota: `spec.scopes` entries (operator `Exists`) and
/// `spec.scopeSelector.matchExpressions`.
struct Scope<'a> {
    name: &'a str,
    operator: &'a str,
    values: Vec<&'a str>,
}

fn scopes(quota: &Value) -> Vec<Scope<'_>> {
    let mut out: Vec<Scope<'_>> = j::array_at(quota, "/spec/scopes")
        .iter()
        .filter_map(Value::as_str)
        .map(|name| Scope {
            name,
            operator: "Exists",
            values: Vec::new(),
        })
        .collect();
    for req in j::array_at(quota, "/spec/scopeSelector/matchExpressions") {
        out.push(Scope {
            name: j::str_at(req, "/scopeName"),
            operator: j::str_at(req, "/operator"),
            values: j::array_at(req, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect(),
        });
    }
    out
}

/// Whether a pod uses cross-namespace pod affinity (a term with namespaces or a namespace
/// selector).
fn cross_namespace_affinity(pod: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let base = alloc::format!("/spec/affinity/{kind}");
        let required = j::array_at(
            pod,
            &alloc::format!("{base}/requiredDuringSchedulingIgnoredDuringExecution"),
        )
        .iter();
        let preferred = j::array_at(
            pod,
            &alloc::format!("{base}/preferredDuringSchedulingIgnoredDuringExecution"),
        )
        .iter()
        .filter_map(|w| w.get("podAffinityTerm"));
        required.chain(preferred).any(|term| {
            !j::array_at(term, "/namespaces").is_empty()
                || term.get("namespaceSelector").is_some_and(|s| !s.is_null())
        })
    })
}

/// `podMatchesScopeFunc`.
fn pod_matches(scope: &Scope<'_>, pod: &Value) -> bool {
    let terminating = pod
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|d| d >= 0);
    let best_effort = j::str_at(pod, "/status/qosClass") == "BestEffort";
    match scope.name {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        "PriorityClass" => {
            let class = j::str_at(pod, "/spec/priorityClassName");
            match scope.operator {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => scope.values.contains(&class),
                "NotIn" => !scope.values.contains(&class),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => cross_namespace_affinity(pod),
        _ => false,
    }
}

/// Whether `quota` (its `hard` given) covers `obj` of `resource` (`generic.Matches`): it
/// limits something the evaluator tracks and every scope matches (only pods match scopes).
pub(crate) fn matches(
    quota: &Value,
    hard: &ResourceList,
    resource: ResourceId,
    obj: &Value,
) -> bool {
    if matching_resources(resource, hard).is_empty() {
        return false;
    }
    scopes(quota)
        .iter()
        .all(|scope| resource == ResourceId::Pods && pod_matches(scope, obj))
}

/// `podEvaluator.Constraints`: with compute resources under quota, every container must name
/// them; the error lists what each container misses.
pub(crate) fn pod_constraints(hard_names: &[&str], pod: &Value) -> Result<(), String> {
    const VALIDATION: &[&str] = &[
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ];
    let required: BTreeSet<&str> = hard_names
        .iter()
        .copied()
        .filter(|n| VALIDATION.contains(n))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for list in ["/spec/containers", "/spec/initContainers"] {
        for c in j::array_at(pod, list) {
            let requests = container_list(c, "requests");
            let limits = container_list(c, "limits");
            let mut has: BTreeSet<String> = BTreeSet::new();
            for name in ["cpu", "memory"] {
                if requests.contains_key(name) {
                    has.insert(name.to_string());
                    has.insert(alloc::format!("requests.{name}"));
                }
                if limits.contains_key(name) {
                    has.insert(alloc::format!("limits.{name}"));
                }
            }
            for r in &required {
                if !has.contains(*r) {
                    missing.entry(r).or_default().insert(j::str_at(c, "/name"));
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            alloc::format!(
                "{r} for: {}",
                names.iter().copied().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(alloc::format!("must specify {}", parts.join("; ")))
}

/// `prettyPrint`: `name=quantity` pairs in name order.
pub(crate) fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, q)| alloc::format!("{k}={}", q.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap()
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_largest_init_step() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "252Mi",
                    "example.com/dongle": "2"}, "limits": {"example.com/dongle": "2", "cpu": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
            "overhead": {"cpu": "10m"}},
            "status": {"phase": "Pending"}});
        let u = usage(ResourceId::Pods, &pod, UnixTime::default());
        assert_eq!(u["pods"], q("1"));
        assert_eq!(u["count/pods"], q("1"));
        assert_eq!(u["cpu"], q("2010m"));
        assert_eq!(u["requests.memory"], q("252Mi"));
        assert_eq!(u["requests.example.com/dongle"], q("2"));
        assert_eq!(u["limits.cpu"], q("1010m"));
        assert!(!u.contains_key("example.com/dongle"));
        let done = json!({"spec": {"containers": []}, "status": {"phase": "Succeeded"}});
        let u = usage(ResourceId::Pods, &done, UnixTime::default());
        assert_eq!(u.keys().collect::<Vec<_>>(), ["count/pods"]);
    }

    #[test]
    fn services_count_node_ports_and_load_balancers() {
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}],
            "allocateLoadBalancerNodePorts": true}});
        let u = usage(ResourceId::Services, &lb, UnixTime::default());
        assert_eq!(u["services.nodeports"], q("1"));
        assert_eq!(u["services.loadbalancers"], q("1"));
        let cm = usage(ResourceId::ConfigMaps, &json!({}), UnixTime::default());
        assert_eq!(
            cm.keys().collect::<Vec<_>>(),
            ["configmaps", "count/configmaps"]
        );
        let rs = usage(ResourceId::ReplicaSets, &json!({}), UnixTime::default());
        assert_eq!(rs.keys().collect::<Vec<_>>(), ["count/replicasets.apps"]);
    }

    #[test]
    fn scopes_and_constraints() {
        let hard: ResourceList = [("pods".to_string(), q("5"))].into_iter().collect();
        let quota = json!({"spec": {"scopes": ["Terminating"]}});
        let long = json!({"spec": {}});
        let bounded = json!({"spec": {"activeDeadlineSeconds": 3600}});
        assert!(!matches(&quota, &hard, ResourceId::Pods, &long));
        assert!(matches(&quota, &hard, ResourceId::Pods, &bounded));
        assert!(!matches(&quota, &hard, ResourceId::ConfigMaps, &long));
        let pc = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["gold"]}]}}});
        assert!(matches(
            &pc,
            &hard,
            ResourceId::Pods,
            &json!({"spec": {"priorityClassName": "gold"}})
        ));
        assert!(!matches(&pc, &hard, ResourceId::Pods, &long));
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(
            pod_constraints(&["cpu", "memory", "pods"], &pod),
            Err("must specify memory for: c".into())
        );
        assert!(tracked("count/replicasets.apps"));
        assert!(tracked("requests.storage"));
        assert!(!tracked("count/widgets.example.com"));
    }
}
