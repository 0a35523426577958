//! Compiled views of pods and nodes: parsed once per scheduling attempt (pods) or per node write
//! (nodes), so the filters and scores compare integers and short strings, never JSON.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use crate::controllers::node_lifecycle::{TolerationRule, UNREACHABLE};

/// Taint the node lifecycle controller puts on nodes whose Ready condition is False.
pub(crate) const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// kube-scheduler's defaults for containers that request nothing, used only by the scores
/// (`DefaultMilliCPURequest`, `DefaultMemoryRequest`): 100m and 200 MiB.
const NONZERO_CPU_MILLI: u64 = 100;
const NONZERO_MEMORY: u64 = 200 * 1024 * 1024;

/// CPU (millicores) and memory (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub(crate) cpu: u64,
    pub(crate) memory: u64,
}

impl Resources {
    pub(crate) fn add(&mut self, other: Resources) {
        self.cpu = self.cpu.saturating_add(other.cpu);
        self.memory = self.memory.saturating_add(other.memory);
    }

    pub(crate) fn sub(&mut self, other: Resources) {
        self.cpu = self.cpu.saturating_sub(other.cpu);
        self.memory = self.memory.saturating_sub(other.memory);
    }

    fn max(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.max(other.cpu),
            memory: self.memory.max(other.memory),
        }
    }
}

/// A resource quantity (`100m`, `1.5Gi`, `2e3`) in thousandths of its unit, rounded up as
/// apimachinery's `MilliValue` does; `None` when it is not a quantity or is negative. Values too
/// large for `u128` saturate.
pub(crate) fn milli_value(text: &str) -> Option<u128> {
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return None;
    }
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(split);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return None;
    }
    // Past 30 integer digits every request is "more than any node"; keep the arithmetic in u128.
    if int_part.len() > 30 {
        return Some(u128::MAX);
    }
    let kept = frac_part.get(..frac_part.len().min(18)).unwrap_or("");
    let dropped_nonzero = frac_part.bytes().skip(18).any(|b| b != b'0');
    let mut mantissa: u128 = 0;
    for b in int_part.bytes().chain(kept.bytes()) {
        mantissa = mantissa * 10 + u128::from(b - b'0');
    }
    let frac_digits = i32::try_from(kept.len()).ok()?;
    // The suffix: binary SI, decimal SI, or a decimal exponent.
    let (binary_pow, exp10): (u32, i32) = match suffix {
        "Ki" => (1, 0),
        "Mi" => (2, 0),
        "Gi" => (3, 0),
        "Ti" => (4, 0),
        "Pi" => (5, 0),
        "Ei" => (6, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "" => (0, 0),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s.get(1..)?.parse().ok()?;
            if !(-40..=40).contains(&e) {
                return if e > 0 { Some(u128::MAX) } else { Some(0) };
            }
            (0, e)
        }
        _ => return None,
    };
    let mut value = mantissa;
    for _ in 0..binary_pow {
        value = value.saturating_mul(1024);
    }
    // milli: × 10^3, then the decimal exponent, then undo the fraction digits; round up.
    let total = 3 + exp10 - frac_digits;
    let round_up = |v: u128, div: u128, extra: bool| -> u128 {
        let q = v / div;
        if !v.is_multiple_of(div) || extra {
            q.saturating_add(1)
        } else {
            q
        }
    };
    if total >= 0 {
        for _ in 0..total {
            value = value.saturating_mul(10);
        }
        Some(if dropped_nonzero {
            value.saturating_add(1)
        } else {
            value
        })
    } else {
        let mut div: u128 = 1;
        for _ in 0..(-total) {
            div = div.saturating_mul(10);
        }
        Some(round_up(value, div, dropped_nonzero))
    }
}

fn to_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Millicores of a CPU quantity (0 when absent or malformed).
pub(crate) fn cpu_milli(v: Option<&Value>) -> Option<u64> {
    let text = v?.as_str().map(String::from).or_else(|| number_text(v?))?;
    Some(to_u64(milli_value(&text).unwrap_or(0)))
}

/// Whole units of a quantity (bytes, pods), rounded up.
pub(crate) fn units(v: Option<&Value>) -> Option<u64> {
    let text = v?.as_str().map(String::from).or_else(|| number_text(v?))?;
    let milli = milli_value(&text).unwrap_or(0);
    Some(to_u64(milli.div_ceil(1000)))
}

fn number_text(v: &Value) -> Option<String> {
    v.is_number().then(|| v.to_string())
}

/// A host port a pod binds (kube's `ProtocolPort` under an IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPort {
    pub(crate) ip: String,
    pub(crate) protocol: String,
    pub(crate) port: u16,
}

const ALL_IPS: &str = "0.0.0.0";

impl HostPort {
    /// Whether two bindings collide (`HostPortInfo.CheckConflict`): same protocol and port, and
    /// the same IP or either side on 0.0.0.0.
    pub(crate) fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == ALL_IPS || other.ip == ALL_IPS)
    }
}

/// Node affinity operator, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// Admission rejects these; a stored one (written before validation existed) matches nothing.
    Never,
}

/// One `matchExpressions`/`matchFields` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub(crate) key: String,
    pub(crate) op: Op,
    pub(crate) values: Vec<String>,
}

/// One `nodeSelectorTerms` entry: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) expressions: Vec<Requirement>,
    pub(crate) fields: Vec<Requirement>,
}

fn requirement(v: &Value) -> Requirement {
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let values: Vec<String> = v
        .get("values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let single = || match values.as_slice() {
        [one] => one.parse::<i64>().ok(),
        _ => None,
    };
    let op = match v.get("operator").and_then(Value::as_str).unwrap_or("") {
        "In" => Op::In,
        "NotIn" => Op::NotIn,
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" => single().map_or(Op::Never, Op::Gt),
        "Lt" => single().map_or(Op::Never, Op::Lt),
        _ => Op::Never,
    };
    Requirement { key, op, values }
}

pub(crate) fn term(v: &Value) -> Term {
    let list = |name: &str| -> Vec<Requirement> {
        v.get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(requirement)
            .collect()
    };
    Term {
        expressions: list("matchExpressions"),
        fields: list("matchFields"),
    }
}

/// What the scheduler needs from a pod.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodInfo {
    pub(crate) uid: String,
    /// Effective requests (kube's `PodRequests`: containers summed, init containers by the max
    /// rule with sidecars, plus overhead).
    pub(crate) requests: Resources,
    /// The same with 100m / 200Mi for containers that request nothing (scores only).
    pub(crate) nonzero: Resources,
    pub(crate) tolerations: Vec<TolerationRule>,
    pub(crate) node_selector: Vec<(String, String)>,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`; `None` when absent.
    pub(crate) required: Option<Vec<Term>>,
    /// `preferredDuringSchedulingIgnoredDuringExecution` as (weight, term).
    pub(crate) preferred: Vec<(i64, Term)>,
    pub(crate) host_ports: Vec<HostPort>,
    /// The controller ownerReference's uid.
    pub(crate) owner: Option<String>,
}

fn container_requests(c: &Value) -> (Resources, Resources) {
    let req = c.pointer("/resources/requests");
    let lim = c.pointer("/resources/limits");
    // kube defaults a missing request to the limit.
    let get = |name: &str| {
        req.and_then(|r| r.get(name))
            .or_else(|| lim.and_then(|l| l.get(name)))
    };
    let cpu = cpu_milli(get("cpu"));
    let memory = units(get("memory"));
    let actual = Resources {
        cpu: cpu.unwrap_or(0),
        memory: memory.unwrap_or(0),
    };
    let nonzero = Resources {
        cpu: cpu.unwrap_or(NONZERO_CPU_MILLI),
        memory: memory.unwrap_or(NONZERO_MEMORY),
    };
    (actual, nonzero)
}

fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// Pod requests by kube's rule: max(sum(containers) + sidecars, each init container plus the
/// sidecars started before it) + overhead. Returns (actual, non-zero).
fn pod_requests(spec: &Value) -> (Resources, Resources) {
    let mut sum = (Resources::default(), Resources::default());
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (a, n) = container_requests(c);
        sum.0.add(a);
        sum.1.add(n);
    }
    let mut sidecars = (Resources::default(), Resources::default());
    let mut init_max = (Resources::default(), Resources::default());
    for c in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (a, n) = container_requests(c);
        if is_sidecar(c) {
            sidecars.0.add(a);
            sidecars.1.add(n);
            init_max.0 = init_max.0.max(sidecars.0);
            init_max.1 = init_max.1.max(sidecars.1);
        } else {
            let mut with_a = sidecars.0;
            with_a.add(a);
            let mut with_n = sidecars.1;
            with_n.add(n);
            init_max.0 = init_max.0.max(with_a);
            init_max.1 = init_max.1.max(with_n);
        }
    }
    sum.0.add(sidecars.0);
    sum.1.add(sidecars.1);
    let mut actual = sum.0.max(init_max.0);
    let mut nonzero = sum.1.max(init_max.1);
    let overhead = spec.get("overhead");
    let extra = Resources {
        cpu: cpu_milli(overhead.and_then(|o| o.get("cpu"))).unwrap_or(0),
        memory: units(overhead.and_then(|o| o.get("memory"))).unwrap_or(0),
    };
    actual.add(extra);
    nonzero.add(extra);
    (actual, nonzero)
}

fn host_ports(spec: &Value) -> Vec<HostPort> {
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let sidecars = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| is_sidecar(c));
    let mut out = Vec::new();
    for c in containers.chain(sidecars) {
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // With hostNetwork the container port is the host port (kube defaults it so).
            let port = p
                .get("hostPort")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0)
                .or_else(|| {
                    host_network
                        .then(|| p.get("containerPort").and_then(Value::as_i64))
                        .flatten()
                });
            let Some(port) = port.and_then(|n| u16::try_from(n).ok()).filter(|n| *n > 0) else {
                continue;
            };
            let ip = p.get("hostIP").and_then(Value::as_str).unwrap_or("");
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("");
            out.push(HostPort {
                ip: if ip.is_empty() { ALL_IPS } else { ip }.to_string(),
                protocol: if protocol.is_empty() { "TCP" } else { protocol }.to_string(),
                port,
            });
        }
    }
    out
}

/// The uid of the pod's controller ownerReference.
pub(crate) fn controller_uid(pod: &Value) -> Option<String> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .map(String::from)
}

impl PodInfo {
    /// Only what a bound pod uses on its node (requests, host ports, owner): the accounting
    /// of every bind and kubelet-reported pod needs no more.
    pub(crate) fn usage(pod: &Value) -> Self {
        let empty = Value::Null;
        let spec = pod.get("spec").unwrap_or(&empty);
        let (requests, nonzero) = pod_requests(spec);
        Self {
            requests,
            nonzero,
            host_ports: host_ports(spec),
            owner: controller_uid(pod),
            ..Self::default()
        }
    }

    /// Compiles `pod`.
    pub(crate) fn of(pod: &Value) -> Self {
        let empty = Value::Null;
        let spec = pod.get("spec").unwrap_or(&empty);
        let (requests, nonzero) = pod_requests(spec);
        let tolerations = spec
            .get("tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(TolerationRule::of)
            .collect();
        let node_selector = spec
            .get("nodeSelector")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        let affinity = spec.pointer("/affinity/nodeAffinity");
        let required = affinity
            .and_then(|a| a.get("requiredDuringSchedulingIgnoredDuringExecution"))
            .filter(|r| !r.is_null())
            .map(|r| {
                r.get("nodeSelectorTerms")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(term)
                    .collect()
            });
        let preferred = affinity
            .and_then(|a| a.get("preferredDuringSchedulingIgnoredDuringExecution"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let weight = p.get("weight").and_then(Value::as_i64).unwrap_or(0);
                (weight, p.get("preference").map(term).unwrap_or_default())
            })
            .collect();
        Self {
            uid: pod
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            requests,
            nonzero,
            tolerations,
            node_selector,
            required,
            preferred,
            host_ports: host_ports(spec),
            owner: controller_uid(pod),
        }
    }
}

/// A taint effect the filters and scores look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl Effect {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Effect::NoSchedule => "NoSchedule",
            Effect::PreferNoSchedule => "PreferNoSchedule",
            Effect::NoExecute => "NoExecute",
        }
    }
}

/// One node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taint {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) effect: Effect,
}

/// What the scheduler needs from a node; compared on every node write to decide whether
/// unschedulable pods deserve another try.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeInfo {
    pub(crate) name: String,
    pub(crate) unschedulable: bool,
    pub(crate) taints: Vec<Taint>,
    /// Sorted by key (they come from a JSON object).
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) allocatable: Resources,
    pub(crate) allocatable_pods: u64,
}

impl NodeInfo {
    /// Compiles `node`. A node that is not Ready carries the taint kube's node lifecycle
    /// controller would give it (`not-ready` for False or missing, `unreachable` for Unknown).
    pub(crate) fn of(node: &Value) -> Self {
        let mut taints: Vec<Taint> = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let effect = match t.get("effect").and_then(Value::as_str)? {
                    "NoSchedule" => Effect::NoSchedule,
                    "PreferNoSchedule" => Effect::PreferNoSchedule,
                    "NoExecute" => Effect::NoExecute,
                    _ => return None,
                };
                Some(Taint {
                    key: t.get("key").and_then(Value::as_str).unwrap_or("").into(),
                    value: t.get("value").and_then(Value::as_str).unwrap_or("").into(),
                    effect,
                })
            })
            .collect();
        let ready = node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str);
        let implied = match ready {
            Some("True") => None,
            Some("Unknown") => Some(UNREACHABLE),
            _ => Some(NOT_READY),
        };
        if let Some(key) = implied
            && !taints
                .iter()
                .any(|t| t.key == key && t.effect == Effect::NoSchedule)
        {
            taints.push(Taint {
                key: key.into(),
                value: String::new(),
                effect: Effect::NoSchedule,
            });
        }
        let labels = node
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        let status = node.get("status");
        let list = status
            .and_then(|s| s.get("allocatable"))
            .filter(|a| a.as_object().is_some_and(|m| !m.is_empty()))
            .or_else(|| status.and_then(|s| s.get("capacity")));
        let field = |name: &str| list.and_then(|l| l.get(name));
        Self {
            name: node
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            unschedulable: node.pointer("/spec/unschedulable").and_then(Value::as_bool)
                == Some(true),
            taints,
            labels,
            allocatable: Resources {
                cpu: cpu_milli(field("cpu")).unwrap_or(0),
                memory: units(field("memory")).unwrap_or(0),
            },
            allocatable_pods: units(field("pods")).unwrap_or(0),
        }
    }

    /// The value of label `key`.
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        // Nodes carry a handful of labels: a scan comparing lengths first beats a binary search
        // whose every step is a string comparison.
        self.labels
            .iter()
            .find(|(k, _)| k.len() == key.len() && k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_round_up_like_apimachinery() {
        // (text, MilliValue) pairs from resource.Quantity's documented forms.
        let cases: &[(&str, Option<u128>)] = &[
            ("100m", Some(100)),
            ("0.5", Some(500)),
            ("2", Some(2000)),
            ("1Ki", Some(1_024_000)),
            ("128Mi", Some(128 * 1024 * 1024 * 1000)),
            ("1G", Some(1_000_000_000_000)),
            ("1e3", Some(1_000_000)),
            ("1E3", Some(1_000_000)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("0.0001", Some(1)),
            ("1n", Some(1)),
            ("250u", Some(1)),
            (".5", Some(500)),
            ("+1", Some(1000)),
            ("-1", None),
            ("abc", None),
            ("1Qi", None),
            ("", None),
            ("1.2.3", None),
            ("1e999", Some(u128::MAX)),
        ];
        for (text, want) in cases {
            assert_eq!(milli_value(text), *want, "{text}");
        }
        assert_eq!(units(Some(&json!("1.5"))), Some(2), "Value() rounds up");
        assert_eq!(units(Some(&json!(110))), Some(110));
        assert_eq!(cpu_milli(Some(&json!(2))), Some(2000));
    }

    #[test]
    fn pod_requests_follow_the_init_container_max_rule() {
        // kube's PodRequests: max(sum(app) + sidecars, init_i + sidecars started before it).
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "200m"}}},
            ],
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }});
        let info = PodInfo::of(&pod);
        assert_eq!(info.requests.cpu, 1000 + 10, "init i1 dominates cpu");
        assert_eq!(
            info.requests.memory,
            1024 * 1024 * 1024,
            "i2 + sidecar (no memory) dominates memory"
        );
        // Non-zero: container b has no memory request: 200Mi; sidecar has none: 200Mi.
        assert_eq!(info.nonzero.memory, (1024 + 200) * 1024 * 1024);
    }

    #[test]
    fn node_readiness_becomes_a_taint() {
        let cases = [
            (Some("True"), None),
            (Some("False"), Some(NOT_READY)),
            (Some("Unknown"), Some(UNREACHABLE)),
            (None, Some(NOT_READY)),
        ];
        for (status, taint) in cases {
            let conditions = match status {
                Some(s) => json!([{"type": "Ready", "status": s}]),
                None => json!([]),
            };
            let node = json!({"metadata": {"name": "n"}, "status": {"conditions": conditions,
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
            let info = NodeInfo::of(&node);
            assert_eq!(info.taints.first().map(|t| t.key.as_str()), taint);
            assert_eq!(info.allocatable.cpu, 4000);
            assert_eq!(info.allocatable_pods, 110);
        }
    }
}
