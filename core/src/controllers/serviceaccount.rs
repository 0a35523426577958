//! What kube-controller-manager puts in every namespace: the `default` ServiceAccount (the
//! serviceaccount controller) and the `kube-root-ca.crt` ConfigMap with the certificate a pod
//! needs to verify the API server (the root-CA publisher). Both are created when a namespace
//! appears and put back when deleted or changed.

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// The ConfigMap the root-CA publisher keeps in every namespace.
pub(crate) const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Its `kubernetes.io/description` annotation, as kube-controller-manager writes it.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

impl Cluster {
    /// Ensures namespace `ns` has its `default` ServiceAccount and root-CA ConfigMap. Nothing
    /// is created in a namespace that is gone or terminating.
    pub(crate) fn sync_namespace_defaults(&mut self, now: UnixTime, ns: &str) {
        let ns_key = ObjectKey::new(ResourceId::Namespaces, "", ns);
        let Some(namespace) = self.store.get(&ns_key) else {
            return;
        };
        if self.terminating.contains(ns) || namespace.index.field_is("status.phase", "Terminating")
        {
            return;
        }
        if ns == "kube-system" {
            self.sync_authentication_configmap(now);
        }
        let sa_key = ObjectKey::new(ResourceId::ServiceAccounts, ns, "default");
        if self.store.get(&sa_key).is_none() {
            let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default"}});
            // A refused create (store full) is retried with backoff.
            let _ = self.controller_create(now, ResourceId::ServiceAccounts, ns, &mut sa);
        }
        let Some(pem) = self.config.root_ca_pem.clone() else {
            return;
        };
        let data = json!({"ca.crt": pem});
        let cm_key = ObjectKey::new(ResourceId::ConfigMaps, ns, ROOT_CA_CONFIGMAP);
        match self.load(&cm_key) {
            None => {
                let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP,
                        "annotations": {"kubernetes.io/description": DESCRIPTION}},
                    "data": data});
                let _ = self.controller_create(now, ResourceId::ConfigMaps, ns, &mut cm);
            }
            Some(mut cm) => {
                let described =
                    !j::str_at(&cm, "/metadata/annotations/kubernetes.io~1description").is_empty();
                if cm.get("data") == Some(&data) && described {
                    return;
                }
                if let Some(map) = cm.as_object_mut() {
                    map.insert("data".into(), data);
                }
                if let Some(meta) = super::meta_mut(&mut cm) {
                    let annotations = meta
                        .entry("annotations")
                        .or_insert_with(|| Value::Object(serde_json::Map::new()));
                    if let Some(a) = annotations.as_object_mut() {
                        a.insert("kubernetes.io/description".into(), Value::from(DESCRIPTION));
                    }
                }
                let _ = self.controller_update(now, &cm_key, &mut cm);
            }
        }
    }
}
