//! The Endpoints controller, as kube-controller-manager's: for each Service with a selector, an
//! Endpoints object of the same name lists the selected pods that have an IP and are neither
//! terminal nor terminating — Ready ones under `addresses`, the others under
//! `notReadyAddresses`; with `publishNotReadyAddresses`, terminating and unready pods too, all
//! under `addresses` — with each service port resolved against the pod (`targetPort` a number,
//! or the name of a container port). Pods that resolve to the same ports share a subset. The
//! Endpoints of a deleted Service goes with it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::{deleting, map_matches, service_selector};
use crate::cluster::Cluster;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// The port `service_port` reaches on `pod`, or `None` when a named `targetPort` is not one of
/// its container ports.
pub(crate) fn resolve_target_port(service_port: &Value, named: &[(String, i64)]) -> Option<i64> {
    match service_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) if !name.is_empty() => {
            if let Ok(n) = name.parse::<i64>() {
                return Some(n);
            }
            named.iter().find(|(n, _)| n == name).map(|(_, port)| *port)
        }
        _ => service_port.get("port").and_then(Value::as_i64),
    }
}

/// What both endpoint controllers (Endpoints, EndpointSlices) read of a Service.
pub(super) struct Selected {
    /// `spec.publishNotReadyAddresses`.
    pub(super) publish_not_ready: bool,
    /// `spec.ports`.
    pub(super) ports: Vec<Value>,
    /// The pods its selector selects, in its namespace.
    pub(super) pods: Vec<ObjectKey>,
}

impl Cluster {
    /// The pods `service` (in `ns`) selects; `None` for a Service without a selector (its
    /// endpoints are made by hand) or one being deleted.
    pub(super) fn selected_pods(&self, service: &Value, ns: &str) -> Option<Selected> {
        let selector = service_selector(service);
        if selector.is_empty() || deleting(service) {
            return None;
        }
        Some(Selected {
            publish_not_ready: service
                .pointer("/spec/publishNotReadyAddresses")
                .and_then(Value::as_bool)
                == Some(true),
            ports: service
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            pods: self
                .store
                .range(ResourceId::Pods, Some(ns), None)
                .filter(|(_, o)| map_matches(&selector, &*o.index))
                .map(|(k, _)| k.clone())
                .collect(),
        })
    }
}

/// (name, port, protocol) of one endpoint port.
type ResolvedPort = (String, i64, String);

impl Cluster {
    /// Writes the Endpoints of one Service (or removes it with the Service).
    pub(crate) fn sync_endpoints(&mut self, now: UnixTime, ns: &str, name: &str) {
        let ep_key = ObjectKey::new(ResourceId::Endpoints, ns, name);
        let existing = self.load(&ep_key);
        let Some(service) = self.load(&ObjectKey::new(ResourceId::Services, ns, name)) else {
            // kube deletes the Endpoints of a deleted Service.
            if let Some(mut ep) = existing {
                let _ = self.controller_remove(now, &ep_key, &mut ep);
            }
            return;
        };
        // A Service without a selector has hand-made Endpoints, if any.
        let Some(Selected {
            publish_not_ready,
            ports,
            pods: keys,
        }) = self.selected_pods(&service, ns)
        else {
            return;
        };
        // Subsets keyed by their resolved port list.
        let mut subsets: BTreeMap<Vec<ResolvedPort>, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for key in keys {
            let Some(pod) = self.pod_view(&key) else {
                continue;
            };
            // kube's `ShouldPodBeInEndpoints`: terminal pods and pods without an IP never;
            // terminating pods only when the Service publishes not-ready addresses.
            if pod.ip.is_empty() || pod.terminal || (pod.deleting && !publish_not_ready) {
                continue;
            }
            let resolved: Option<Vec<ResolvedPort>> = ports
                .iter()
                .map(|p| {
                    let port = resolve_target_port(p, &pod.ports)?;
                    let protocol = match j::str_at(p, "/protocol") {
                        "" => "TCP",
                        other => other,
                    };
                    Some((j::string_at(p, "/name"), port, String::from(protocol)))
                })
                .collect();
            let Some(resolved) = resolved else {
                continue;
            };
            let mut address = json!({
                "ip": pod.ip,
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pod.facts.name,
                    "uid": pod.uid,
                },
            });
            if !pod.node.is_empty()
                && let Some(map) = address.as_object_mut()
            {
                map.insert("nodeName".into(), Value::from(pod.node.as_str()));
            }
            let entry = subsets.entry(resolved).or_default();
            if publish_not_ready || pod.facts.ready {
                entry.0.push(address);
            } else {
                entry.1.push(address);
            }
        }
        let subsets: Vec<Value> = subsets
            .into_iter()
            .map(|(ports, (mut ready, mut not_ready))| {
                let by_ip = |a: &Value, b: &Value| j::str_at(a, "/ip").cmp(j::str_at(b, "/ip"));
                ready.sort_by(by_ip);
                not_ready.sort_by(by_ip);
                let ports: Vec<Value> = ports
                    .into_iter()
                    .map(|(name, port, protocol)| {
                        let mut p = json!({"port": port, "protocol": protocol});
                        if !name.is_empty()
                            && let Some(map) = p.as_object_mut()
                        {
                            map.insert("name".into(), Value::from(name));
                        }
                        p
                    })
                    .collect();
                let mut subset = json!({"ports": ports});
                if let Some(map) = subset.as_object_mut() {
                    if !ready.is_empty() {
                        map.insert("addresses".into(), Value::Array(ready));
                    }
                    if !not_ready.is_empty() {
                        map.insert("notReadyAddresses".into(), Value::Array(not_ready));
                    }
                }
                subset
            })
            .collect();
        let labels = service
            .pointer("/metadata/labels")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        match existing {
            Some(mut ep) => {
                let unchanged = ep.get("subsets").cloned().unwrap_or(json!([]))
                    == Value::Array(subsets.clone())
                    && ep.pointer("/metadata/labels") == Some(&labels);
                if unchanged {
                    return;
                }
                if let Some(map) = ep.as_object_mut() {
                    map.insert("subsets".into(), Value::Array(subsets));
                }
                if let Some(meta) = super::meta_mut(&mut ep) {
                    meta.insert("labels".into(), labels);
                }
                let _ = self.controller_write(now, &ep_key, &mut ep);
            }
            None => {
                let mut ep = json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "subsets": subsets,
                });
                let _ = self.controller_create(now, ResourceId::Endpoints, ns, &mut ep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_ports_resolve_by_number_or_container_port_name() {
        let pod = super::super::replicaset::PodView::of(&json!({"spec": {"containers": [
            {"name": "a", "ports": [{"name": "http", "containerPort": 8080}]}]}}));
        let cases = [
            (json!({"port": 80, "targetPort": 9090}), Some(9090)),
            (json!({"port": 80, "targetPort": "http"}), Some(8080)),
            (json!({"port": 80, "targetPort": "grpc"}), None),
            (json!({"port": 80}), Some(80)),
        ];
        for (port, want) in cases {
            assert_eq!(resolve_target_port(&port, &pod.ports), want, "{port}");
        }
    }
}
