//! kube-controller-manager's CSR approver (`csrapproving`, sarapprove.go) and signer
//! (`csrsigning`) for the kubelet signers, with the cluster CA of [`crate::Config::cluster_ca`]:
//! a `kube-apiserver-client-kubelet` request is approved only when its requester is the node it
//! names (a node's Seal token, or its client certificate, authenticates as `system:node:NAME`
//! in `system:nodes`, so a bootstrap request and a renewal are the same case here); every other
//! request waits for an administrator. An approved request of either kubelet signer is checked
//! as kube's signer checks it (a failed check is a `Failed` condition) and signed.
//! Also kube-apiserver's `extension-apiserver-authentication` ConfigMap, which publishes the CA
//! client certificates are verified against.

use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::csr::authority::{self, Request};
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// kube-apiserver's ConfigMap of client authentication settings in `kube-system`.
pub(crate) const AUTHENTICATION_CONFIGMAP: &str = "extension-apiserver-authentication";

/// sarapprove's message for a node renewing (or, here, bootstrapping) its own certificate.
const SELF_APPROVAL: &str =
    "Auto approving self kubelet client certificate after SubjectAccessReview.";

fn has_true_condition(csr: &Value, kind: &str) -> bool {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn push_condition(csr: &mut Value, condition: Value) {
    let Some(map) = csr.as_object_mut() else {
        return;
    };
    let status = map.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    if let Some(status) = status.as_object_mut() {
        let list = status.entry("conditions").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(condition);
        }
    }
}

/// The request's PEM (`spec.request` is base64 in JSON).
fn request_pem(csr: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(j::str_at(csr, "/spec/request"))
        .ok()
}

fn usages(csr: &Value) -> Vec<&str> {
    csr.pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// sarapprove's `isSelfNodeClientCert`, with "the node itself" as the only requester allowed:
/// a kubelet client request whose common name is its requester's user name, a node.
fn is_self_node_client(csr: &Value, req: &Request) -> bool {
    let groups = csr
        .pointer("/spec/groups")
        .and_then(Value::as_array)
        .is_some_and(|g| g.iter().any(|g| g == "system:nodes"));
    j::str_at(csr, "/spec/signerName") == authority::KUBELET_CLIENT_SIGNER
        && groups
        && j::str_at(csr, "/spec/username") == req.common_name
        && authority::validate_kubelet_client(req, &usages(csr)).is_ok()
}

impl Cluster {
    /// Approves and signs the CertificateSigningRequest `name`, when it is this signer's.
    pub(crate) fn sync_csr(&mut self, now: UnixTime, name: &str) {
        let Some(ca) = self.config.cluster_ca.clone() else {
            return;
        };
        let key = ObjectKey::new(ResourceId::CertificateSigningRequests, "", name);
        let Some(mut csr) = self.load(&key) else {
            return;
        };
        if !j::str_at(&csr, "/status/certificate").is_empty() {
            return;
        }
        let signer = j::str_at(&csr, "/spec/signerName");
        if signer != authority::KUBELET_CLIENT_SIGNER && signer != authority::KUBELET_SERVING_SIGNER
        {
            return;
        }
        let Some(pem) = request_pem(&csr) else {
            return;
        };
        let Ok(req) = Request::parse(&pem) else {
            // Validation refuses such requests; one stored before is left alone.
            return;
        };
        let approved = has_true_condition(&csr, "Approved");
        let denied = has_true_condition(&csr, "Denied");
        if !approved && !denied {
            if is_self_node_client(&csr, &req) {
                push_condition(
                    &mut csr,
                    json!({"type": "Approved", "status": "True", "reason": "AutoApproved",
                        "message": SELF_APPROVAL, "lastUpdateTime": now.rfc3339(),
                        "lastTransitionTime": now.rfc3339()}),
                );
                // A refused write (store full) is retried with backoff; the next sync signs.
                let _ = self.controller_update(now, &key, &mut csr);
            }
            return;
        }
        if !approved || has_true_condition(&csr, "Failed") {
            return;
        }
        let list = usages(&csr);
        match authority::check_for_signer(&req, &list, signer) {
            Ok(false) => {}
            Err(message) => {
                push_condition(
                    &mut csr,
                    json!({"type": "Failed", "status": "True",
                        "reason": "SignerValidationFailure", "message": message,
                        "lastUpdateTime": now.rfc3339(), "lastTransitionTime": now.rfc3339()}),
                );
                let _ = self.controller_update(now, &key, &mut csr);
            }
            Ok(true) => {
                let requested = csr
                    .pointer("/spec/expirationSeconds")
                    .and_then(Value::as_u64);
                let ttl =
                    authority::duration_secs(requested, self.config.cluster_signing_duration_secs);
                let serial = self.ids.serial();
                let Ok(cert) = ca.sign(&req, &list, ttl, now, serial) else {
                    return;
                };
                let encoded = base64::engine::general_purpose::STANDARD.encode(cert);
                if let Some(status) = csr.get_mut("status").and_then(Value::as_object_mut) {
                    status.insert("certificate".into(), Value::from(encoded));
                }
                let _ = self.controller_update(now, &key, &mut csr);
            }
        }
    }

    /// kube-apiserver's `extension-apiserver-authentication` ConfigMap in `kube-system`, with the
    /// cluster CA as `client-ca-file`; put back when changed or deleted.
    pub(crate) fn sync_authentication_configmap(&mut self, now: UnixTime) {
        let Some(ca) = &self.config.cluster_ca else {
            return;
        };
        let data = json!({"client-ca-file": ca.certificate_pem()});
        let key = ObjectKey::new(
            ResourceId::ConfigMaps,
            "kube-system",
            AUTHENTICATION_CONFIGMAP,
        );
        match self.load(&key) {
            None => {
                let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": AUTHENTICATION_CONFIGMAP}, "data": data});
                let _ = self.controller_create(now, ResourceId::ConfigMaps, "kube-system", &mut cm);
            }
            Some(mut cm) => {
                if cm.get("data") == Some(&data) {
                    return;
                }
                if let Some(map) = cm.as_object_mut() {
                    map.insert("data".into(), data);
                }
                let _ = self.controller_update(now, &key, &mut cm);
            }
        }
    }
}
