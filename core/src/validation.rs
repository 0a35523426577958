//! Object validation as kube-apiserver 1.32 does it for the served types: names, required fields,
//! immutable fields on update. Every cause carries kube's field path and message wording; all
//! causes found are reported together, as kube does.
//!
//! This file dispatches an object to its kind's rules; each resource family's rules live in a
//! file below (pods, services, apps, rbac, ...), beside the shared pieces: the name rules
//! (`names`), object metadata and label selectors (`meta`), and the cause collector (`causes`).

mod apps;
mod autoscaling;
mod causes;
mod certificates;
mod config_data;
mod coordination;
mod discovery;
mod events;
mod meta;
mod names;
mod networking;
mod nodes;
mod pods;
mod policy;
mod rbac;
mod scheduling;
mod services;
mod storage;
mod workloads;
pub(crate) use discovery::endpoint_slice_changed;
pub use names::{
    config_map_key_errors, dns1035_label_errors, dns1123_label_errors, dns1123_subdomain_errors,
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, label_key_errors, label_value_errors,
    port_name_errors, qualified_name_errors, validate_name,
};
pub(crate) use workloads::{CONTROLLER_UID, JOB_NAME, LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME};

use alloc::string::ToString;
use alloc::vec::Vec;
use serde_json::Value;

use crate::Error;
use crate::error::Cause;
use crate::resource::ResourceId;
use apps::validate_workload;
use causes::{Errs, s};
use config_data::{validate_config_map, validate_secret};
use coordination::validate_lease;
use meta::{validate_meta, validate_meta_update};
use nodes::validate_node;
use pods::{validate_pod_spec, validate_pod_update};
use scheduling::validate_priority_class;
use services::{validate_endpoints, validate_service};

/// Validates a custom resource of kind `kind` (with `old` on update): its metadata as every
/// object's, then the causes its schema gave (`schema`); errors are 422 Invalid with causes.
pub fn validate_custom(
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
    schema: Vec<Cause>,
) -> Result<(), Error> {
    let mut e = Errs::default();
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    validate_meta(&mut e, ResourceId::Custom(0), meta);
    if let Some(old) = old {
        validate_meta_update(&mut e, meta, old.get("metadata").unwrap_or(&empty));
    }
    e.causes.extend(schema);
    if e.causes.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid {
        kind: kind.to_string(),
        name: s(meta, "name").to_string(),
        causes: e.causes,
    })
}

/// Validates `obj` (with `old` on update); errors are 422 Invalid with causes.
pub fn validate(resource: ResourceId, obj: &Value, old: Option<&Value>) -> Result<(), Error> {
    validate_as(resource.info(), None, obj, old)
}

/// Validates `obj`, in its stored shape, written through `rt` (a storage row or a view of one:
/// some kinds have rules that depend on the API a write came through, as kube's validation
/// takes the request's group-version) and subresource `sub` (a CertificateSigningRequest's
/// `approval` and `status` may change different things); errors are 422 Invalid naming `rt`'s
/// group kind.
pub fn validate_as(
    rt: &crate::resource::ResourceType<'_>,
    sub: Option<&str>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), Error> {
    let resource = rt.id;
    let mut e = Errs::default();
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    validate_meta(&mut e, resource, meta);
    if let Some(old) = old {
        validate_meta_update(&mut e, meta, old.get("metadata").unwrap_or(&empty));
    }
    match resource {
        ResourceId::Pods => {
            validate_pod_spec(&mut e, obj.get("spec").unwrap_or(&empty), "spec", true);
            if let Some(old) = old {
                validate_pod_update(&mut e, obj, old);
            }
        }
        ResourceId::Services => validate_service(&mut e, obj, old),
        ResourceId::ConfigMaps => validate_config_map(&mut e, obj, old),
        ResourceId::Secrets => validate_secret(&mut e, obj, old),
        ResourceId::Deployments | ResourceId::ReplicaSets => {
            validate_workload(&mut e, resource, obj, old);
        }
        ResourceId::Nodes => validate_node(&mut e, obj),
        ResourceId::Leases => validate_lease(&mut e, obj),
        ResourceId::Events => {
            events::validate_legacy(&mut e, obj);
            if rt.view == Some(crate::resource::View::EventsV1) {
                match old {
                    None => events::validate_v1_create(&mut e, obj),
                    Some(old) => events::validate_v1_update(&mut e, obj, old),
                }
            }
        }
        ResourceId::Endpoints => validate_endpoints(&mut e, obj),
        ResourceId::ResourceQuotas => policy::validate_resource_quota(&mut e, obj),
        ResourceId::PodDisruptionBudgets => policy::validate_pdb(&mut e, obj),
        ResourceId::RuntimeClasses => policy::validate_runtime_class(&mut e, obj, old),
        ResourceId::FlowSchemas => policy::validate_flow_schema(&mut e, obj),
        ResourceId::PriorityLevelConfigurations => policy::validate_priority_level(&mut e, obj),
        ResourceId::ValidatingWebhookConfigurations => {
            policy::validate_webhook_configuration(&mut e, obj, false);
        }
        ResourceId::MutatingWebhookConfigurations => {
            policy::validate_webhook_configuration(&mut e, obj, true);
        }
        ResourceId::ValidatingAdmissionPolicies => policy::validate_admission_policy(&mut e, obj),
        ResourceId::ValidatingAdmissionPolicyBindings => {
            policy::validate_admission_policy_binding(&mut e, obj);
        }
        ResourceId::CustomResourceDefinitions => {
            e.causes.extend(crate::crd::validation::validate(obj, old));
        }
        ResourceId::Namespaces | ResourceId::ServiceAccounts | ResourceId::Custom(_) => {}
        ResourceId::PodTemplates => workloads::validate_pod_template(&mut e, obj),
        ResourceId::ReplicationControllers => {
            workloads::validate_replication_controller(&mut e, obj);
        }
        ResourceId::Jobs => workloads::validate_job(&mut e, obj, old),
        ResourceId::CronJobs => workloads::validate_cron_job(&mut e, obj, old),
        ResourceId::Roles => rbac::validate_role(&mut e, obj, true),
        ResourceId::ClusterRoles => rbac::validate_role(&mut e, obj, false),
        ResourceId::RoleBindings => rbac::validate_binding(&mut e, obj, old, true),
        ResourceId::ClusterRoleBindings => rbac::validate_binding(&mut e, obj, old, false),
        ResourceId::CSINodes => storage::validate_csi_node(&mut e, obj, old),
        ResourceId::CSIDrivers => storage::validate_csi_driver(&mut e, obj, old),
        ResourceId::VolumeAttachments => storage::validate_volume_attachment(&mut e, obj, old),
        ResourceId::EndpointSlices => discovery::validate_endpoint_slice(&mut e, obj, old),
        ResourceId::PriorityClasses => validate_priority_class(&mut e, obj, old),
        ResourceId::Ingresses => networking::validate_ingress(&mut e, obj),
        ResourceId::IngressClasses => networking::validate_ingress_class(&mut e, obj, old),
        ResourceId::HorizontalPodAutoscalers => autoscaling::validate_hpa(&mut e, obj, old),
        ResourceId::CertificateSigningRequests => {
            certificates::validate_csr(&mut e, obj, old, sub);
        }
    }
    if e.causes.is_empty() {
        return Ok(());
    }
    // kube's `NewInvalid` names the group kind: `Deployment.apps "web" is invalid`.
    Err(Error::Invalid {
        kind: crate::resource::group_kind(rt),
        name: s(meta, "name").to_string(),
        causes: e.causes,
    })
}

#[cfg(test)]
mod tests {
    use super::config_data::MAX_SECRET_SIZE;
    use super::pods::POD_UPDATE_FORBIDDEN;
    use super::*;
    use alloc::string::String;
    use serde_json::json;

    fn causes(resource: ResourceId, obj: &Value, old: Option<&Value>) -> Vec<(String, String)> {
        match validate(resource, obj, old) {
            Ok(()) => Vec::new(),
            Err(Error::Invalid { causes, .. }) => {
                causes.into_iter().map(|c| (c.field, c.message)).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                         "creationTimestamp": "2024-01-02T03:04:05Z"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}],
                "restartPolicy": "Always",
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}})
    }

    #[test]
    fn name_rules() {
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(is_dns1123_label("abc-1"));
        assert!(!is_dns1123_label("a.b"));
        assert!(is_dns1035_label("a1"));
        assert!(!is_dns1035_label("1a"));
        assert_eq!(validate_name(ResourceId::Pods, "a.b"), None);
        assert_eq!(
            validate_name(ResourceId::Namespaces, "a.b").as_deref(),
            Some("must not contain dots")
        );
        // kube: `a lowercase RFC 1123 subdomain must consist of ... (e.g. 'example.com', regex ...)`.
        assert_eq!(
            validate_name(ResourceId::ConfigMaps, "Bad_Name").as_deref(),
            Some(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            )
        );
        assert!(validate_name(ResourceId::Services, "1web").is_some());
        assert_eq!(
            qualified_name_errors("/a"),
            alloc::vec!["prefix part must be non-empty".to_string()]
        );
    }

    #[test]
    fn valid_objects_pass() {
        assert_eq!(causes(ResourceId::Pods, &pod(), None), alloc::vec![]);
        let ns = json!({"metadata": {"name": "kube-node-lease"}});
        assert_eq!(causes(ResourceId::Namespaces, &ns, None), alloc::vec![]);
        let lease = json!({"metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}});
        assert_eq!(causes(ResourceId::Leases, &lease, None), alloc::vec![]);
    }

    #[test]
    fn pod_causes_are_all_reported_with_kube_wording() {
        let bad = json!({"metadata": {"name": "Web", "labels": {"a/b/c": "x", "ok": "-bad"}},
            "spec": {"restartPolicy": "Sometimes", "containers": [
                {"name": "c", "ports": [{"containerPort": 70000, "protocol": "HTTP"}],
                 "env": [{"name": "A=B"}], "volumeMounts": [{"name": "missing", "mountPath": "/x"}]},
                {"name": "c", "image": "x"}]}});
        let got = causes(ResourceId::Pods, &bad, None);
        let want: &[(&str, &str)] = &[
            (
                "metadata.name",
                "Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of",
            ),
            (
                "metadata.labels",
                "Invalid value: \"a/b/c\": a qualified name must consist of",
            ),
            (
                "metadata.labels",
                "Invalid value: \"-bad\": a valid label must be an empty string",
            ),
            ("spec.containers[0].image", "Required value"),
            (
                "spec.containers[0].ports[0].containerPort",
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                "spec.containers[0].ports[0].protocol",
                "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ),
            (
                "spec.containers[0].env[0].name",
                "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            ),
            (
                "spec.containers[0].volumeMounts[0].name",
                "Not found: \"missing\"",
            ),
            ("spec.containers[1].name", "Duplicate value: \"c\""),
            (
                "spec.restartPolicy",
                "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((field, msg), (wf, wm)) in got.iter().zip(want) {
            assert_eq!(field, wf);
            assert!(msg.starts_with(wm), "{field}: {msg}");
        }
        let err = validate(
            ResourceId::Pods,
            &json!({"metadata": {"name": "x"}, "spec": {}}),
            None,
        )
        .unwrap_err();
        // KUBE-WIRE.md: `Pod "x" is invalid: spec.containers: Required value`.
        assert_eq!(
            err.message(),
            "Pod \"x\" is invalid: spec.containers: Required value"
        );
        let err = validate(
            ResourceId::Pods,
            &json!({"metadata": {}, "spec": {"containers": [{"name": "a", "image": "b"}]}}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn pod_update_rules() {
        let old = pod();
        let mut new = pod();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "b", "operator": "Exists"}));
        new["metadata"]["labels"] = json!({"x": "y"});
        assert_eq!(causes(ResourceId::Pods, &new, Some(&old)), alloc::vec![]);

        let mut changed = pod();
        changed["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(81);
        let got = causes(ResourceId::Pods, &changed, Some(&old));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "spec");
        assert_eq!(
            got[0].1,
            alloc::format!("Forbidden: {POD_UPDATE_FORBIDDEN}")
        );

        let mut removed = pod();
        removed["spec"]["tolerations"] = json!([]);
        assert_eq!(causes(ResourceId::Pods, &removed, Some(&old))[0].0, "spec");

        let mut with_deadline = pod();
        with_deadline["spec"]["activeDeadlineSeconds"] = json!(10);
        let mut raised = with_deadline.clone();
        raised["spec"]["activeDeadlineSeconds"] = json!(20);
        assert_eq!(
            causes(ResourceId::Pods, &raised, Some(&with_deadline)),
            alloc::vec![(
                "spec.activeDeadlineSeconds".to_string(),
                "Invalid value: 20: must be less than or equal to previous value".to_string()
            )]
        );

        let mut renamed = pod();
        renamed["metadata"]["uid"] = json!("u2");
        renamed["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        let got = causes(ResourceId::Pods, &renamed, Some(&old));
        assert_eq!(
            got,
            alloc::vec![
                (
                    "metadata.uid".to_string(),
                    "Invalid value: \"u2\": field is immutable".to_string()
                ),
                (
                    "metadata.creationTimestamp".to_string(),
                    "Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable".to_string()
                ),
            ]
        );
    }

    #[test]
    fn service_rules() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
            "selector": {"app": "web"}, "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}]}});
        assert_eq!(causes(ResourceId::Services, &svc, None), alloc::vec![]);
        let headless = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        assert_eq!(causes(ResourceId::Services, &headless, None), alloc::vec![]);
        let bad = json!({"metadata": {"name": "1web"}, "spec": {"type": "Magic",
            "ports": [{"port": 0}, {"name": "a", "port": 80}, {"name": "a", "port": 81, "targetPort": 0}]}});
        let got = causes(ResourceId::Services, &bad, None);
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.type",
                "spec.ports[0].name",
                "spec.ports[0].port",
                "spec.ports[2].name"
            ]
        );
        assert!(got[0].1.contains("a DNS-1035 label must consist of"));
        assert_eq!(
            got[1].1,
            "Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
        assert_eq!(got[2].1, "Required value");
        assert_eq!(got[4].1, "Duplicate value: \"a\"");
        let no_ports = json!({"metadata": {"name": "web"}, "spec": {}});
        assert_eq!(
            causes(ResourceId::Services, &no_ports, None),
            alloc::vec![("spec.ports".to_string(), "Required value".to_string())]
        );
        let mut moved = svc.clone();
        moved["spec"]["clusterIP"] = json!("10.0.0.6");
        moved["spec"]["clusterIPs"] = json!(["10.0.0.6"]);
        assert_eq!(
            causes(ResourceId::Services, &moved, Some(&svc)),
            alloc::vec![(
                "spec.clusterIPs[0]".to_string(),
                "Invalid value: []string{\"10.0.0.6\"}: may not change once set".to_string()
            )]
        );
        let mut omitted = svc.clone();
        omitted["spec"].as_object_mut().unwrap().remove("clusterIP");
        omitted["spec"]
            .as_object_mut()
            .unwrap()
            .remove("clusterIPs");
        assert_eq!(
            causes(ResourceId::Services, &omitted, Some(&svc)),
            alloc::vec![]
        );
    }

    #[test]
    fn configmap_and_secret_rules() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a.conf": "x", "bad key": "y"}});
        let got = causes(ResourceId::ConfigMaps, &cm, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "data[bad key]");
        assert!(got[0].1.starts_with("Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
        let big =
            json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(MAX_SECRET_SIZE + 1)}});
        assert_eq!(
            causes(ResourceId::ConfigMaps, &big, None),
            alloc::vec![(
                String::new(),
                "Too long: may not be more than 1048576 bytes".to_string()
            )]
        );
        let frozen = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let mut thawed = frozen.clone();
        thawed["data"]["a"] = json!("2");
        thawed["immutable"] = json!(false);
        assert_eq!(
            causes(ResourceId::ConfigMaps, &thawed, Some(&frozen)),
            alloc::vec![
                (
                    "immutable".to_string(),
                    "Forbidden: field is immutable when `immutable` is set".to_string()
                ),
                (
                    "data".to_string(),
                    "Forbidden: field is immutable when `immutable` is set".to_string()
                ),
            ]
        );
        let secret =
            json!({"metadata": {"name": "s"}, "type": "Opaque", "stringData": {"password": "p"}});
        assert_eq!(causes(ResourceId::Secrets, &secret, None), alloc::vec![]);
        let tls = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            causes(ResourceId::Secrets, &tls, None),
            alloc::vec![("data[tls.key]".to_string(), "Required value".to_string())]
        );
        // A TLS or basic-auth key needs only to be there, as kube checks it (empty values
        // pass; an SSH key must have bytes).
        let empty = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(causes(ResourceId::Secrets, &empty, None), alloc::vec![]);
        let basic = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth",
            "data": {"username": ""}});
        assert_eq!(causes(ResourceId::Secrets, &basic, None), alloc::vec![]);
        let ssh = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/ssh-auth",
            "data": {"ssh-privatekey": ""}});
        assert_eq!(
            causes(ResourceId::Secrets, &ssh, None),
            alloc::vec![(
                "data[ssh-privatekey]".to_string(),
                "Required value".to_string()
            )]
        );
        let mut retyped = tls.clone();
        retyped["type"] = json!("Opaque");
        assert_eq!(
            causes(ResourceId::Secrets, &retyped, Some(&tls)),
            alloc::vec![(
                "type".to_string(),
                "Invalid value: \"Opaque\": field is immutable".to_string()
            )]
        );
    }

    #[test]
    fn deployment_rules() {
        let dep = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
        assert_eq!(causes(ResourceId::Deployments, &dep, None), alloc::vec![]);
        let mut mismatch = dep.clone();
        mismatch["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        mismatch["spec"]["replicas"] = json!(-1);
        mismatch["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image");
        assert_eq!(
            causes(ResourceId::Deployments, &mismatch, None),
            alloc::vec![
                ("spec.replicas".to_string(), "Invalid value: -1: must be greater than or equal to 0".to_string()),
                (
                    "spec.template.metadata.labels".to_string(),
                    "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`".to_string()
                ),
                ("spec.template.spec.containers[0].image".to_string(), "Required value".to_string()),
            ]
        );
        let no_selector = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}});
        assert_eq!(
            causes(ResourceId::ReplicaSets, &no_selector, None),
            alloc::vec![("spec.selector".to_string(), "Required value".to_string())]
        );
        let mut reselected = dep.clone();
        reselected["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
        reselected["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
        // The familiar kubectl apply error for a changed Deployment selector.
        assert_eq!(
            causes(ResourceId::Deployments, &reselected, Some(&dep)),
            alloc::vec![(
                "spec.selector".to_string(),
                "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".to_string()
            )]
        );
    }

    #[test]
    fn node_lease_event_rules() {
        let node = json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}});
        assert_eq!(
            causes(ResourceId::Nodes, &node, None),
            alloc::vec![(
                "spec.taints[0].effect".to_string(),
                "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string()
            )]
        );
        let lease = json!({"metadata": {"name": "n1"}, "spec": {"leaseDurationSeconds": 0}});
        assert_eq!(
            causes(ResourceId::Leases, &lease, None),
            alloc::vec![(
                "spec.leaseDurationSeconds".to_string(),
                "Invalid value: 0: must be greater than 0".to_string()
            )]
        );
        let event = json!({"metadata": {"name": "e.1", "namespace": "a"}, "involvedObject": {"namespace": "b"}});
        assert_eq!(
            causes(ResourceId::Events, &event, None),
            alloc::vec![(
                "involvedObject.namespace".to_string(),
                "Invalid value: \"b\": does not match event.namespace".to_string()
            )]
        );
    }
}
