//! The scheduler's cache of nodes and of the pods bound to them, kept incrementally from store
//! writes: requested resources, host ports and pods per owner per node are updated per pod, never
//! recomputed by scanning.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::info::{HostPort, NodeInfo, PodInfo, Resources};
use crate::store::ObjectKey;

/// One node and what its bound pods use.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) info: NodeInfo,
    pub(crate) requested: Resources,
    pub(crate) nonzero_requested: Resources,
    pub(crate) pod_count: u64,
    pub(crate) ports: Vec<HostPort>,
    pods: BTreeSet<ObjectKey>,
}

impl NodeState {
    pub(crate) fn new(info: NodeInfo) -> Self {
        Self {
            info,
            requested: Resources::default(),
            nonzero_requested: Resources::default(),
            pod_count: 0,
            ports: Vec::new(),
            pods: BTreeSet::new(),
        }
    }
}

/// A bound, non-terminal pod as accounted.
#[derive(Debug, Clone)]
struct BoundPod {
    node: Box<str>,
    /// The slot it is counted on; `None` while its node does not exist.
    slot: Option<usize>,
    requests: Resources,
    nonzero: Resources,
    ports: Vec<HostPort>,
    owner: Option<Box<str>>,
}

/// Nodes in stable slots (a deleted node's slot is reused), and the bound pods.
#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    slots: Vec<Option<NodeState>>,
    free: Vec<usize>,
    by_name: BTreeMap<Box<str>, usize>,
    pods: BTreeMap<ObjectKey, BoundPod>,
    /// Pods bound to a node name that has no node (yet, or any more).
    orphans: BTreeMap<Box<str>, BTreeSet<ObjectKey>>,
    /// Owner uid → slot → pods of that owner on that node.
    owners: BTreeMap<Box<str>, BTreeMap<usize, u32>>,
}

impl NodeCache {
    /// Slots, some empty; a slot index is stable while its node lives.
    pub(crate) fn slots(&self) -> &[Option<NodeState>] {
        &self.slots
    }

    /// Live nodes.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Pods of `owner` per slot (absent: none anywhere).
    pub(crate) fn owner_counts(&self, owner: Option<&str>) -> Option<&BTreeMap<usize, u32>> {
        owner.and_then(|o| self.owners.get(o))
    }

    /// Whether `key` is accounted as bound.
    pub(crate) fn is_bound(&self, key: &ObjectKey) -> bool {
        self.pods.contains_key(key)
    }

    /// Adds or updates a node; true when what the filters see changed (or it is new).
    pub(crate) fn upsert_node(&mut self, info: NodeInfo) -> bool {
        if let Some(&slot) = self.by_name.get(info.name.as_str()) {
            let Some(Some(state)) = self.slots.get_mut(slot) else {
                return false;
            };
            if state.info == info {
                return false;
            }
            state.info = info;
            return true;
        }
        let name: Box<str> = info.name.as_str().into();
        let state = NodeState::new(info);
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    *s = Some(state);
                }
                slot
            }
            None => {
                self.slots.push(Some(state));
                self.slots.len() - 1
            }
        };
        self.by_name.insert(name.clone(), slot);
        // Pods already bound to this name now count against it.
        for key in self.orphans.remove(&name).unwrap_or_default() {
            self.attach(&key, slot);
        }
        true
    }

    /// Forgets a node; its pods wait as orphans in case it comes back.
    pub(crate) fn remove_node(&mut self, name: &str) {
        let Some(slot) = self.by_name.remove(name) else {
            return;
        };
        let state = self.slots.get_mut(slot).and_then(Option::take);
        self.free.push(slot);
        let Some(state) = state else { return };
        for key in state.pods {
            if let Some(pod) = self.pods.get_mut(&key) {
                pod.slot = None;
                if let Some(owner) = &pod.owner {
                    decrement(&mut self.owners, owner, slot);
                }
            }
            self.orphans.entry(name.into()).or_default().insert(key);
        }
    }

    /// Accounts a pod bound to `node`. Bound pods keep their node (nodeName is immutable).
    pub(crate) fn bind_pod(&mut self, key: &ObjectKey, node: &str, info: &PodInfo) {
        if self.pods.contains_key(key) {
            return;
        }
        self.pods.insert(
            key.clone(),
            BoundPod {
                node: node.into(),
                slot: None,
                requests: info.requests,
                nonzero: info.nonzero,
                ports: info.host_ports.clone(),
                owner: info.owner.as_deref().map(Into::into),
            },
        );
        match self.by_name.get(node).copied() {
            Some(slot) => self.attach(key, slot),
            None => {
                self.orphans
                    .entry(node.into())
                    .or_default()
                    .insert(key.clone());
            }
        }
    }

    fn attach(&mut self, key: &ObjectKey, slot: usize) {
        let Some(pod) = self.pods.get_mut(key) else {
            return;
        };
        let Some(Some(state)) = self.slots.get_mut(slot) else {
            return;
        };
        pod.slot = Some(slot);
        state.requested.add(pod.requests);
        state.nonzero_requested.add(pod.nonzero);
        state.pod_count = state.pod_count.saturating_add(1);
        state.ports.extend(pod.ports.iter().cloned());
        state.pods.insert(key.clone());
        if let Some(owner) = &pod.owner {
            let count = self
                .owners
                .entry(owner.clone())
                .or_default()
                .entry(slot)
                .or_insert(0);
            *count = count.saturating_add(1);
        }
    }

    /// Stops accounting a pod (deleted or terminal); true when it was accounted.
    pub(crate) fn release_pod(&mut self, key: &ObjectKey) -> bool {
        let Some(pod) = self.pods.remove(key) else {
            return false;
        };
        match pod.slot {
            Some(slot) => {
                if let Some(Some(state)) = self.slots.get_mut(slot) {
                    state.requested.sub(pod.requests);
                    state.nonzero_requested.sub(pod.nonzero);
                    state.pod_count = state.pod_count.saturating_sub(1);
                    for port in &pod.ports {
                        if let Some(i) = state.ports.iter().position(|p| p == port) {
                            state.ports.swap_remove(i);
                        }
                    }
                    state.pods.remove(key);
                }
                if let Some(owner) = &pod.owner {
                    decrement(&mut self.owners, owner, slot);
                }
            }
            None => {
                if let Some(set) = self.orphans.get_mut(&pod.node) {
                    set.remove(key);
                    if set.is_empty() {
                        self.orphans.remove(&pod.node);
                    }
                }
            }
        }
        true
    }
}

fn decrement(owners: &mut BTreeMap<Box<str>, BTreeMap<usize, u32>>, owner: &str, slot: usize) {
    if let Some(map) = owners.get_mut(owner) {
        if let Some(count) = map.get_mut(&slot) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&slot);
            }
        }
        if map.is_empty() {
            owners.remove(owner);
        }
    }
}
