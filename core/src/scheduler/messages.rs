//! kube-scheduler 1.32's wording for pods that fit nowhere (`FitError.Error()` followed by the
//! DefaultPreemption PostFilter's message), and for successful binds.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::filters::Rejection;
use super::info::NodeInfo;

/// Message when the cluster has no node at all (`ErrNoNodesAvailable`).
pub(crate) const NO_NODES: &str = "no nodes available to schedule pods";

/// Tallies rejections into kube's "0/N nodes are available" message.
#[derive(Debug, Default)]
pub(crate) struct Diagnosis {
    reasons: BTreeMap<String, u32>,
    not_helpful: u32,
    no_victims: u32,
}

fn bump(map: &mut BTreeMap<String, u32>, reason: &str) {
    match map.get_mut(reason) {
        Some(n) => *n = n.saturating_add(1),
        None => {
            map.insert(reason.into(), 1);
        }
    }
}

impl Diagnosis {
    /// Notes why `node` was rejected.
    pub(crate) fn add(&mut self, node: &NodeInfo, rejection: Rejection) {
        match rejection {
            Rejection::Unschedulable => bump(&mut self.reasons, "node(s) were unschedulable"),
            Rejection::Taint(i) => {
                let (key, value) = node
                    .taints
                    .get(i)
                    .map_or(("", ""), |t| (t.key.as_str(), t.value.as_str()));
                let reason = alloc::format!("node(s) had untolerated taint {{{key}: {value}}}");
                bump(&mut self.reasons, &reason);
            }
            Rejection::Affinity => {
                bump(
                    &mut self.reasons,
                    "node(s) didn't match Pod's node affinity/selector",
                );
            }
            Rejection::Ports => bump(
                &mut self.reasons,
                "node(s) didn't have free ports for the requested pod ports",
            ),
            Rejection::Resources { pods, cpu, memory } => {
                if pods {
                    bump(&mut self.reasons, "Too many pods");
                }
                if cpu {
                    bump(&mut self.reasons, "Insufficient cpu");
                }
                if memory {
                    bump(&mut self.reasons, "Insufficient memory");
                }
            }
        }
        if rejection.resolvable() {
            self.no_victims = self.no_victims.saturating_add(1);
        } else {
            self.not_helpful = self.not_helpful.saturating_add(1);
        }
    }

    /// The full message for `nodes` nodes: the filter histogram, then preemption's verdict. Each
    /// part lists "<count> <reason>" strings sorted as strings, as Go's `sort.Strings` does.
    pub(crate) fn message(&self, nodes: usize) -> String {
        if nodes == 0 {
            return NO_NODES.into();
        }
        let sorted = |pairs: Vec<(u32, &str)>| {
            let mut list: Vec<String> = pairs
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, r)| alloc::format!("{n} {r}"))
                .collect();
            list.sort();
            list.join(", ")
        };
        let filters = sorted(self.reasons.iter().map(|(r, n)| (*n, r.as_str())).collect());
        let preemption = sorted(alloc::vec![
            (self.not_helpful, "Preemption is not helpful for scheduling"),
            (
                self.no_victims,
                "No preemption victims found for incoming pod"
            ),
        ]);
        let mut out = alloc::format!("0/{nodes} nodes are available:");
        if !filters.is_empty() {
            out.push(' ');
            out.push_str(&filters);
            out.push('.');
        }
        out.push_str(&alloc::format!(
            " preemption: 0/{nodes} nodes are available: {preemption}."
        ));
        out
    }
}

/// The `Scheduled` event's message.
pub(crate) fn scheduled(namespace: &str, name: &str, node: &str) -> String {
    alloc::format!("Successfully assigned {namespace}/{name} to {node}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::info::{Effect, Taint};

    fn node(taint: Option<(&str, &str)>) -> NodeInfo {
        NodeInfo {
            name: "n".into(),
            taints: taint
                .map(|(k, v)| Taint {
                    key: k.into(),
                    value: v.into(),
                    effect: Effect::NoSchedule,
                })
                .into_iter()
                .collect(),
            ..NodeInfo::default()
        }
    }

    #[test]
    fn messages_read_like_kube_scheduler() {
        // The example, and messages observed from kube-scheduler 1.32 clusters.
        let cpu = Rejection::Resources {
            pods: false,
            cpu: true,
            memory: false,
        };
        let mut d = Diagnosis::default();
        d.add(
            &node(Some(("node.kubernetes.io/unreachable", ""))),
            Rejection::Taint(0),
        );
        d.add(&node(None), cpu);
        d.add(&node(None), cpu);
        assert_eq!(
            d.message(3),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
        let mut d = Diagnosis::default();
        for _ in 0..3 {
            d.add(&node(None), Rejection::Affinity);
        }
        assert_eq!(
            d.message(3),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        let mut d = Diagnosis::default();
        d.add(
            &node(Some(("machine-check-exception", "memory"))),
            Rejection::Taint(0),
        );
        d.add(&node(None), Rejection::Unschedulable);
        d.add(
            &node(None),
            Rejection::Resources {
                pods: true,
                cpu: true,
                memory: true,
            },
        );
        assert_eq!(
            d.message(3),
            "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods, 1 node(s) had untolerated taint {machine-check-exception: memory}, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
        // Go sorts the strings, counts included: "10 ..." sorts before "2 ...".
        let mut d = Diagnosis::default();
        for _ in 0..10 {
            d.add(&node(None), Rejection::Ports);
        }
        d.add(&node(None), Rejection::Affinity);
        d.add(&node(None), Rejection::Affinity);
        assert!(d.message(12).starts_with(
            "0/12 nodes are available: 10 node(s) didn't have free ports for the requested pod ports, 2 node(s) didn't match"
        ));
        assert_eq!(Diagnosis::default().message(0), NO_NODES);
        assert_eq!(
            scheduled("default", "web", "w1"),
            "Successfully assigned default/web to w1"
        );
    }
}
