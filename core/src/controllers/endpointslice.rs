//! The EndpointSlice controller, as kube-controller-manager's: for each Service with a selector
//! (not ExternalName), IPv4 EndpointSlices named `<service>-<suffix>`, owned by the Service and
//! labelled `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io` (plus the Service's own labels, and
//! `service.kubernetes.io/headless` for a headless one), list the selected pods that have an IP
//! and are not terminal, terminating ones included. Each endpoint carries kube's conditions
//! (`serving` = the pod is Ready, `terminating` = it is being deleted, `ready` = serving and
//! not terminating, or always with `publishNotReadyAddresses`), its node, zone and pod. Pods
//! whose service ports resolve alike share slices of at most 100 endpoints; a Service with no
//! endpoint keeps one empty placeholder slice. kube-proxy reads these, not Endpoints. The slices
//! of a deleted Service go with it through their owner reference (the garbage collector).
//!
//! It runs on the Endpoints controller's queue, so both follow the same changes.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::endpoints::Selected;
use super::endpoints::resolve_target_port;
use super::{controller_ref_to, meta_mut};
use crate::cluster::Cluster;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

/// `discovery.LabelServiceName`.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// `discovery.LabelManagedBy`.
pub(crate) const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The value kube's controller writes in [`MANAGED_BY_LABEL`].
pub(crate) const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// `v1.IsHeadlessService`.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// `--max-endpoints-per-slice`'s default.
const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Whether `key` is reserved to the controller on a slice (`isReservedLabelKey`).
fn reserved(key: &str) -> bool {
    matches!(key, SERVICE_NAME_LABEL | MANAGED_BY_LABEL | HEADLESS_LABEL)
}

/// The labels a slice of `service` carries (`setEndpointSliceLabels`).
fn slice_labels(service: &Value) -> Value {
    let mut labels: Map<String, Value> = service
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !reserved(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let cluster_ip = j::str_at(service, "/spec/clusterIP");
    if cluster_ip.is_empty() || cluster_ip == "None" {
        labels.insert(HEADLESS_LABEL.into(), Value::from(""));
    }
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        Value::from(j::str_at(service, "/metadata/name")),
    );
    labels.insert(MANAGED_BY_LABEL.into(), Value::from(CONTROLLER_NAME));
    Value::Object(labels)
}

/// The endpoint ports of one pod (`getEndpointPorts`): each service port it resolves, in the
/// Service's order; one it cannot resolve is left out.
fn endpoint_ports(service_ports: &[Value], named: &[(String, i64)]) -> Vec<Value> {
    service_ports
        .iter()
        .filter_map(|p| {
            let port = resolve_target_port(p, named)?;
            let protocol = match j::str_at(p, "/protocol") {
                "" => "TCP",
                other => other,
            };
            let mut out =
                json!({"name": j::str_at(p, "/name"), "port": port, "protocol": protocol});
            if let (Some(app), Some(map)) = (p.get("appProtocol"), out.as_object_mut()) {
                map.insert("appProtocol".into(), app.clone());
            }
            Some(out)
        })
        .collect()
}

impl Cluster {
    /// Writes the EndpointSlices of one Service.
    pub(crate) fn sync_endpoint_slices(&mut self, now: UnixTime, ns: &str, name: &str) {
        let Some(service) = self.load(&ObjectKey::new(ResourceId::Services, ns, name)) else {
            return;
        };
        // Services without a selector get slices made by hand, ExternalName ones none.
        if j::str_at(&service, "/spec/type") == "ExternalName" {
            return;
        }
        let Some(Selected {
            publish_not_ready,
            ports: service_ports,
            pods: keys,
        }) = self.selected_pods(&service, ns)
        else {
            return;
        };
        let headless_without_ports = j::str_at(&service, "/spec/clusterIP") == "None";
        let mut zones: BTreeMap<String, Option<String>> = BTreeMap::new();
        // Endpoints by the ports they resolve to, sorted by address.
        let mut by_ports: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for key in keys {
            let Some(pod) = self.pod_view(&key) else {
                continue;
            };
            // `ShouldPodBeInEndpoints(pod, includeTerminating=true)`, IPv4 addresses only.
            if pod.ip.is_empty() || pod.terminal || crate::net::parse_ipv4(&pod.ip).is_none() {
                continue;
            }
            let ports = if service_ports.is_empty() && headless_without_ports {
                Vec::new()
            } else {
                endpoint_ports(&service_ports, &pod.ports)
            };
            let serving = pod.facts.ready;
            let terminating = pod.deleting;
            let mut endpoint = json!({
                "addresses": [pod.ip],
                "conditions": {
                    "ready": publish_not_ready || (serving && !terminating),
                    "serving": serving,
                    "terminating": terminating,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pod.facts.name,
                    "uid": pod.uid,
                },
            });
            if let Some(map) = endpoint.as_object_mut()
                && !pod.node.is_empty()
            {
                map.insert("nodeName".into(), Value::from(pod.node.as_str()));
                let zone = zones
                    .entry(pod.node.clone())
                    .or_insert_with(|| {
                        let node =
                            self.store
                                .get(&ObjectKey::new(ResourceId::Nodes, "", &pod.node))?;
                        node.index
                            .label("topology.kubernetes.io/zone")
                            .map(String::from)
                            .filter(|v| !v.is_empty())
                    })
                    .clone();
                if let Some(zone) = zone {
                    map.insert("zone".into(), Value::from(zone));
                }
            }
            let group = by_ports
                .entry(Value::Array(ports.clone()).to_string())
                .or_insert_with(|| (ports, Vec::new()));
            group.1.push(endpoint);
        }
        // The desired slices: (ports, endpoints), at most 100 endpoints each.
        let mut desired: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
        for (_, (ports, mut endpoints)) in by_ports {
            endpoints
                .sort_by(|a, b| j::str_at(a, "/addresses/0").cmp(j::str_at(b, "/addresses/0")));
            let mut rest = endpoints.as_slice();
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rest.len().min(MAX_ENDPOINTS_PER_SLICE));
                desired.push((ports.clone(), chunk.to_vec()));
                rest = tail;
            }
        }
        if desired.is_empty() {
            // kube's placeholder: a Service with no endpoints still has one (empty) slice.
            desired.push((Vec::new(), Vec::new()));
        }
        self.reconcile_slices(now, &service, desired);
    }

    /// Makes the managed slices of `service` equal `desired`: a slice with the same ports is
    /// updated in place, others are created, and the ones left over are deleted.
    fn reconcile_slices(
        &mut self,
        now: UnixTime,
        service: &Value,
        desired: Vec<(Vec<Value>, Vec<Value>)>,
    ) {
        let ns = j::str_at(service, "/metadata/namespace");
        let name = j::str_at(service, "/metadata/name");
        let uid = j::str_at(service, "/metadata/uid");
        let mut existing: Vec<(ObjectKey, Value)> = self
            .store
            .range(ResourceId::EndpointSlices, Some(ns), None)
            .filter(|(_, o)| {
                let label = |key: &str| o.index.label(key);
                label(SERVICE_NAME_LABEL) == Some(name)
                    && label(MANAGED_BY_LABEL) == Some(CONTROLLER_NAME)
            })
            .filter_map(|(k, o)| Some((k.clone(), serde_json::from_slice(&o.json.bytes()).ok()?)))
            .collect();
        let labels = slice_labels(service);
        let owner = controller_ref_to(service, "v1", "Service");
        for (ports, endpoints) in desired {
            let ports = Value::Array(ports);
            let endpoints = Value::Array(endpoints);
            let reuse = existing
                .iter()
                .position(|(_, s)| s.get("ports").unwrap_or(&Value::Null) == &ports)
                .map(|i| existing.remove(i));
            match reuse {
                Some((key, old)) => {
                    let mut slice = old.clone();
                    if let Some(map) = slice.as_object_mut() {
                        map.insert("addressType".into(), Value::from("IPv4"));
                        map.insert("endpoints".into(), endpoints);
                        map.insert("ports".into(), ports);
                    }
                    if let Some(meta) = meta_mut(&mut slice) {
                        meta.insert("labels".into(), labels.clone());
                        let owned = meta
                            .get("ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|refs| refs.iter().any(|r| j::str_at(r, "/uid") == uid));
                        if !owned {
                            meta.insert("ownerReferences".into(), json!([owner.clone()]));
                        }
                    }
                    if slice == old {
                        continue;
                    }
                    let _ = self.controller_update(now, &key, &mut slice);
                }
                None => {
                    let _ = self.create_slice(now, ns, name, &labels, &owner, ports, endpoints);
                }
            }
        }
        for (key, mut old) in existing {
            let _ = self.controller_remove(now, &key, &mut old);
        }
    }

    /// Creates one slice named `<service>-<suffix>` (another suffix when the name is taken).
    #[allow(clippy::too_many_arguments)]
    fn create_slice(
        &mut self,
        now: UnixTime,
        ns: &str,
        service: &str,
        labels: &Value,
        owner: &Value,
        ports: Value,
        endpoints: Value,
    ) -> Result<(), Error> {
        let mut last = Error::Internal("no EndpointSlice name was free".into());
        for _ in 0..3 {
            let name = alloc::format!("{service}-{}", self.ids.name_suffix());
            let mut slice = json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": name,
                    "generateName": alloc::format!("{service}-"),
                    "labels": labels,
                    "ownerReferences": [owner],
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports,
            });
            match self.controller_create(now, ResourceId::EndpointSlices, ns, &mut slice) {
                Ok(()) => return Ok(()),
                Err(e @ Error::AlreadyExists { .. }) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_the_services_own_and_override_the_reserved_ones() {
        let service = json!({"metadata": {"name": "web", "labels": {"app": "web",
            "kubernetes.io/service-name": "other", "endpointslice.kubernetes.io/managed-by": "me"}},
            "spec": {"clusterIP": "None"}});
        assert_eq!(
            slice_labels(&service),
            json!({"app": "web", "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "service.kubernetes.io/headless": ""})
        );
    }

    #[test]
    fn ports_resolve_per_pod_and_unresolved_ones_are_left_out() {
        let named = [(String::from("http"), 8080)];
        let ports = [
            json!({"name": "web", "port": 80, "targetPort": "http", "appProtocol": "http"}),
            json!({"name": "grpc", "port": 90, "targetPort": "grpc", "protocol": "TCP"}),
            json!({"port": 53, "protocol": "UDP"}),
        ];
        assert_eq!(
            endpoint_ports(&ports, &named),
            [
                json!({"name": "web", "port": 8080, "protocol": "TCP", "appProtocol": "http"}),
                json!({"name": "", "port": 53, "protocol": "UDP"}),
            ]
        );
    }
}
