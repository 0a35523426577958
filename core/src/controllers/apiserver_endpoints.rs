//! kube-apiserver's endpoint reconciler for the `kubernetes` Service (`default/kubernetes`):
//! its Endpoints and its EndpointSlice (named `kubernetes`, labelled
//! `kubernetes.io/service-name: kubernetes`, not managed by the EndpointSlice controller) list
//! the advertised address ([`crate::Config::advertise_address`]) on port `https`. Written at start
//! and put back whenever someone changes or deletes them, as kube's reconciler does on its
//! interval. Pods, kube-proxy and the k3s agent find the API through them.

use alloc::string::String;
use serde_json::{Value, json};

use super::endpointslice::SERVICE_NAME_LABEL;
use crate::UnixTime;
use crate::cluster::Cluster;
use crate::resource::ResourceId;
use crate::store::ObjectKey;

/// The Service, Endpoints and EndpointSlice name, in `default`.
pub(crate) const KUBERNETES: &str = "kubernetes";
const DEFAULT: &str = "default";

impl Cluster {
    /// Writes (or restores) the `kubernetes` Endpoints and EndpointSlice.
    pub(crate) fn reconcile_apiserver_endpoints(&mut self, now: UnixTime) {
        let Some(address) = self.config.advertise_address else {
            return;
        };
        let ip = alloc::format!("{}", address.ip());
        let port = address.port();
        let endpoints = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": KUBERNETES, "namespace": DEFAULT,
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": KUBERNETES, "namespace": DEFAULT,
                "labels": {SERVICE_NAME_LABEL: KUBERNETES}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        });
        for (resource, mut want, fields) in [
            (ResourceId::Endpoints, endpoints, &["subsets"][..]),
            (
                ResourceId::EndpointSlices,
                slice,
                &["addressType", "endpoints", "ports"][..],
            ),
        ] {
            let key = ObjectKey::new(resource, DEFAULT, KUBERNETES);
            let Some(mut current) = self.load(&key) else {
                let _ = self.create_internal(
                    &crate::cluster::WriteContext::server(now),
                    resource,
                    DEFAULT,
                    &mut want,
                    "kube-apiserver",
                );
                continue;
            };
            let labels = want.pointer("/metadata/labels").cloned();
            let same = fields.iter().all(|f| current.get(*f) == want.get(*f))
                && current.pointer("/metadata/labels") == labels.as_ref();
            if same {
                continue;
            }
            if let Some(map) = current.as_object_mut() {
                for f in fields {
                    map.insert(
                        String::from(*f),
                        want.get(*f).cloned().unwrap_or(Value::Null),
                    );
                }
            }
            if let (Some(meta), Some(labels)) = (super::meta_mut(&mut current), labels) {
                meta.insert("labels".into(), labels);
            }
            let _ = self.controller_update(now, &key, &mut current);
        }
    }
}
