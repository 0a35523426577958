//! Scoring of the feasible nodes, with kube-scheduler's default weights: TaintToleration (3,
//! untolerated PreferNoSchedule taints), NodeAffinity (2, preferred terms), NodeResourcesFit
//! LeastAllocated (1), NodeResourcesBalancedAllocation (1), and spreading of pods of the same
//! controller across nodes (2, in place of PodTopologySpread's system default constraints). Each
//! plugin scores 0..=100; ties go to the node with the smallest hash of (pod uid, node name), a
//! deterministic stand-in for kube's random pick among equals.

use alloc::vec::Vec;

use super::filters::term_matches;
use super::info::{Effect, PodInfo, Resources};
use super::node::{NodeCache, NodeState};

const MAX: u64 = 100;

/// `(alloc - requested) * 100 / alloc`, 0 when over or nothing allocatable.
fn least_allocated(requested: u64, alloc: u64) -> u64 {
    if alloc == 0 || requested > alloc {
        return 0;
    }
    (alloc - requested).saturating_mul(MAX) / alloc
}

/// LeastAllocated over cpu and memory (equal weights), with the pod's non-zero requests added.
pub(crate) fn least_allocated_score(pod: &PodInfo, node: &NodeState) -> u64 {
    let mut req = node.nonzero_requested;
    req.add(pod.nonzero);
    let a = node.info.allocatable;
    (least_allocated(req.cpu, a.cpu) + least_allocated(req.memory, a.memory)) / 2
}

fn fraction_ppm(requested: u64, alloc: u64) -> u64 {
    if alloc == 0 {
        return 1_000_000;
    }
    let ppm = match requested.checked_mul(1_000_000) {
        Some(scaled) => scaled / alloc,
        None => (u128::from(requested) * 1_000_000 / u128::from(alloc)) as u64,
    };
    ppm.min(1_000_000)
}

/// BalancedAllocation: `(1 - std(cpu fraction, memory fraction)) * 100`, fractions after adding
/// the pod's requests and capped at 1; for two resources the std is half their difference.
pub(crate) fn balanced_score(pod: &PodInfo, node: &NodeState) -> u64 {
    let mut req: Resources = node.requested;
    req.add(pod.requests);
    let a = node.info.allocatable;
    let cpu = fraction_ppm(req.cpu, a.cpu);
    let mem = fraction_ppm(req.memory, a.memory);
    let std = cpu.abs_diff(mem) / 2;
    (1_000_000 - std) * MAX / 1_000_000
}

fn prefer_no_schedule_count(pod: &PodInfo, node: &NodeState) -> u64 {
    node.info
        .taints
        .iter()
        .filter(|t| {
            t.effect == Effect::PreferNoSchedule
                && !pod
                    .tolerations
                    .iter()
                    .any(|tol| tol.tolerates(&t.key, &t.value, "PreferNoSchedule"))
        })
        .count() as u64
}

fn preferred_affinity(pod: &PodInfo, node: &NodeState) -> u64 {
    pod.preferred
        .iter()
        .filter(|(w, t)| *w > 0 && term_matches(t, node))
        .map(|(w, _)| u64::try_from(*w).unwrap_or(0))
        .sum()
}

/// FNV-1a of the pod uid then the node name.
fn tie_hash(uid: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes().chain([0u8]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Scales raw values to 0..=100 by the maximum; `reverse` makes the smallest raw value best.
fn normalize(raw: &[u64], reverse: bool) -> Vec<u64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|&r| match r.saturating_mul(MAX).checked_div(max) {
            None if reverse => MAX,
            None => 0,
            Some(s) if reverse => MAX - s.min(MAX),
            Some(s) => s,
        })
        .collect()
}

/// The best of the feasible `slots`, by the weighted sum of the scores.
pub(crate) fn pick(pod: &PodInfo, cache: &NodeCache, slots: &[usize]) -> Option<usize> {
    let nodes: Vec<(usize, &NodeState)> = slots
        .iter()
        .filter_map(|&s| cache.slots().get(s)?.as_ref().map(|n| (s, n)))
        .collect();
    let taints: Vec<u64> = nodes
        .iter()
        .map(|(_, n)| prefer_no_schedule_count(pod, n))
        .collect();
    let taints = normalize(&taints, true);
    let affinity: Vec<u64> = if pod.preferred.is_empty() {
        alloc::vec![0; nodes.len()]
    } else {
        let raw: Vec<u64> = nodes
            .iter()
            .map(|(_, n)| preferred_affinity(pod, n))
            .collect();
        normalize(&raw, false)
    };
    let spread: Vec<u64> = match cache.owner_counts(pod.owner.as_deref()) {
        None => alloc::vec![MAX; nodes.len()],
        Some(counts) => {
            let raw: Vec<u64> = nodes
                .iter()
                .map(|(s, _)| u64::from(counts.get(s).copied().unwrap_or(0)))
                .collect();
            normalize(&raw, true)
        }
    };
    // (score, tie hash computed only when a tie needs it, slot)
    let mut best: Option<(u64, Option<u64>, usize)> = None;
    for (i, (slot, node)) in nodes.iter().enumerate() {
        let total = 3 * taints.get(i).copied().unwrap_or(0)
            + 2 * affinity.get(i).copied().unwrap_or(0)
            + 2 * spread.get(i).copied().unwrap_or(0)
            + least_allocated_score(pod, node)
            + balanced_score(pod, node);
        let replace = match &mut best {
            None => Some(None),
            Some((score, _, _)) if total > *score => Some(None),
            Some((score, hash, best_slot)) if total == *score => {
                let theirs = *hash.get_or_insert_with(|| {
                    let name = cache
                        .slots()
                        .get(*best_slot)
                        .and_then(Option::as_ref)
                        .map_or("", |n| n.info.name.as_str());
                    tie_hash(&pod.uid, name)
                });
                let mine = tie_hash(&pod.uid, &node.info.name);
                (mine < theirs).then_some(Some(mine))
            }
            Some(_) => None,
        };
        if let Some(hash) = replace {
            best = Some((total, hash, *slot));
        }
    }
    best.map(|(_, _, slot)| slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::info::NodeInfo;
    use serde_json::json;

    fn state(cpu: &str, memory: &str) -> NodeState {
        NodeState::new(NodeInfo::of(&json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}})))
    }

    fn pod(cpu: &str, memory: &str) -> PodInfo {
        PodInfo::of(
            &json!({"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}),
        )
    }

    #[test]
    fn resource_scores_match_kube_formulas() {
        // LeastAllocated: cpu (4000-1000)/4000 = 75, memory (8Gi-2Gi)/8Gi = 75 → 75.
        // Balanced: fractions 0.25 and 0.25 → std 0 → 100.
        let n = state("4", "8Gi");
        let p = pod("1", "2Gi");
        assert_eq!(least_allocated_score(&p, &n), 75);
        assert_eq!(balanced_score(&p, &n), 100);
        // cpu 0.5, memory 0.125: std 0.1875 → 81.
        let p = pod("2", "1Gi");
        assert_eq!(balanced_score(&p, &n), 81);
        assert_eq!(least_allocated_score(&p, &n), (50 + 87) / 2);
        // Containers without requests count 100m / 200Mi for LeastAllocated.
        let empty = PodInfo::of(&json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(empty.nonzero.cpu, 100);
        assert_eq!(least_allocated_score(&empty, &n), (97 + 97) / 2);
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize(&[0, 1, 2], true), [100, 50, 0]);
        assert_eq!(normalize(&[0, 0], true), [100, 100]);
        assert_eq!(normalize(&[3, 6], false), [50, 100]);
    }

    #[test]
    fn ties_are_deterministic_and_differ_per_pod() {
        let a = (0..8).map(|i| tie_hash("pod-a", &alloc::format!("n{i}")));
        let b = (0..8).map(|i| tie_hash("pod-b", &alloc::format!("n{i}")));
        let argmin = |it: &mut dyn Iterator<Item = u64>| {
            it.enumerate().min_by_key(|(_, h)| *h).map(|(i, _)| i)
        };
        let first = argmin(&mut a.clone());
        assert_eq!(first, argmin(&mut a.clone()), "same pod, same choice");
        let picks: alloc::collections::BTreeSet<_> = (0..32)
            .map(|p| {
                let uid = alloc::format!("pod-{p}");
                argmin(&mut (0..8).map(|i| tie_hash(&uid, &alloc::format!("n{i}"))))
            })
            .collect();
        assert!(
            picks.len() > 3,
            "different pods spread over tied nodes: {picks:?}"
        );
        let _ = b;
    }
}
