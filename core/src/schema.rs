//! The object types of the served kinds (Kubernetes 1.32 OpenAPI), generated into
//! `schema/types.rs` by `tools/gen-kube-facts`: which fields exist, for
//! `fieldValidation=Strict|Warn`, and how lists and maps merge, for strategic merge patch and
//! server-side apply (`patch::schema` reads them).
//!
//! A field whose value is a scalar or free-form in JSON (`Quantity`, `IntOrString`, `Time`,
//! `FieldsV1`) is `Any`: nothing under it is checked, as kube's decoder accepts anything there.

// Generated, one field per line; rustfmt would spread long rows over several lines each.
#[rustfmt::skip]
mod types;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;

use crate::resource::ResourceId;

/// One object type: an OpenAPI definition with properties.
pub(crate) struct Type {
    /// The definition's name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub(crate) name: &'static str,
    /// Sorted by name.
    pub(crate) fields: &'static [Field],
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Type {
    /// The field named `name`, if the type has one.
    pub(crate) fn field(&self, name: &str) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .binary_search_by(|f| f.name.cmp(name))
            .ok()
            .and_then(|i| fields.get(i))
    }
}

/// One property of an object type.
#[derive(Debug)]
pub(crate) struct Field {
    /// JSON name.
    pub(crate) name: &'static str,
    /// What its value holds.
    pub(crate) shape: Shape,
    /// Replaced and owned as a whole by server-side apply: `x-kubernetes-map-type: atomic` on
    /// the property, or on the type it holds.
    pub(crate) atomic: bool,
}

/// The shape of one JSON value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// A value whose contents are free-form (`Quantity`, `IntOrString`, `Time`, `FieldsV1`).
    Any,
    /// A JSON scalar of one Go type.
    Scalar(Scalar),
    /// An object of a known type.
    Object(&'static Type),
    /// An object with free-form keys (`additionalProperties`) whose values are `Item`s.
    Map(Item),
    /// An array of `Item`s, with how server-side apply and strategic merge patch merge it.
    List(Item, ListKind, MergeKind),
}

/// The element of a list or the value of a map.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Item {
    /// A free-form value.
    Any,
    /// A JSON scalar of one Go type.
    Scalar(Scalar),
    /// An object of a known type.
    Of(&'static Type),
}

impl Item {
    /// The item as a value shape.
    pub(crate) fn shape(self) -> Shape {
        match self {
            Item::Any => Shape::Any,
            Item::Scalar(s) => Shape::Scalar(s),
            Item::Of(t) => Shape::Object(t),
        }
    }
}

/// The Go type a JSON scalar decodes into (what kube's decoder refuses other JSON for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    /// `string`.
    Str,
    /// `[]byte`: a base64 string.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `float64`.
    Float,
}

/// How server-side apply merges a list (`x-kubernetes-list-type`, falling back to the patch
/// strategy as kube-openapi's schemaconv does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// A list of scalars merged as a set.
    Set,
    /// A list of objects merged by these key fields (`x-kubernetes-list-map-keys`).
    Map {
        /// The key fields.
        keys: &'static [&'static str],
    },
}

/// How strategic merge patch merges a list (`x-kubernetes-patch-strategy` and
/// `x-kubernetes-patch-merge-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeKind {
    /// No merge strategy: the patch's list replaces the original.
    Replace,
    /// `merge` on a list of scalars: union.
    Set,
    /// `merge` on a list of objects: items match by this field.
    ByKey(&'static str),
}

const fn f(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        atomic: false,
    }
}

const fn atomic(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        atomic: true,
    }
}

/// The type of a served kind's objects.
pub(crate) fn root(resource: ResourceId) -> &'static Type {
    types::root(resource)
}

/// The type of a view's objects ([`crate::resource::VIEWS`]).
pub(crate) fn view_root(view: crate::resource::View) -> &'static Type {
    types::view_root(view)
}

/// The string default of a key field of an associative list, which server-side apply uses for
/// an item that omits it (`protocol: TCP`). Only defaults that are the same for that key name
/// in every served list are given (not `name`, whose ServiceAccount `secrets` has none, nor the
/// numeric `containerPort`/`port`).
pub(crate) fn key_default(key: &str) -> Option<&'static str> {
    types::KEY_DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// Most unknown-field paths reported for one object; kube's list is also finite in practice.
pub const MAX_UNKNOWN_FIELDS: usize = 100;

fn walk(shape: Shape, value: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_UNKNOWN_FIELDS {
        return;
    }
    match (shape, value) {
        (Shape::Object(t), Value::Object(map)) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match t.field(key) {
                    Some(field) => walk(field.shape, child, &child_path, out),
                    None => {
                        if out.len() < MAX_UNKNOWN_FIELDS {
                            out.push(child_path);
                        }
                    }
                }
            }
        }
        (Shape::List(item, _, _), Value::Array(items)) => {
            for (i, child) in items.iter().enumerate() {
                walk(item.shape(), child, &format!("{path}[{i}]"), out);
            }
        }
        (Shape::Map(item), Value::Object(map)) => {
            for (key, child) in map {
                walk(item.shape(), child, &format!("{path}.{key}"), out);
            }
        }
        // Scalars, free-form values and type mismatches (the decoder reports those) end here.
        _ => {}
    }
}

/// Paths (e.g. `spec.foo`, `spec.containers[0].foo`) of fields in `obj` that its type does not
/// define, in document order; kube words each as `unknown field "<path>"`. Recursion is bounded
/// by the JSON depth cap applied before this runs.
pub fn unknown_fields(resource: ResourceId, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(Shape::Object(root(resource)), obj, "", &mut out);
    out
}

/// [`unknown_fields`] of a body in a view's shape ([`crate::resource::VIEWS`]), checked against
/// the view's own type.
pub fn unknown_view_fields(view: crate::resource::View, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(Shape::Object(types::view_root(view)), obj, "", &mut out);
    out
}

/// What kube's JSON decoder (`sigs.k8s.io/json`, as `encoding/json`) says of the first value
/// in `obj` whose JSON type its Go field cannot hold: `json: cannot unmarshal <value> into Go
/// struct field <Struct>.<path> of type <type>`; `None` when every value fits. `null` fits
/// anything (the field keeps its zero value); free-form fields (`Quantity`, `Time`, ...) are
/// not looked into. Objects are walked in key order (kube reports the first in the body's
/// order: with several mismatches it may name another). Recursion is bounded by the JSON depth
/// cap applied before this runs.
pub fn type_error(resource: ResourceId, obj: &Value) -> Option<String> {
    mismatch_in(root(resource), obj, "")
}

/// [`type_error`] of a body in a view's shape.
pub fn view_type_error(view: crate::resource::View, obj: &Value) -> Option<String> {
    mismatch_in(types::view_root(view), obj, "")
}

/// The first mismatch among the fields of `value`, an object of type `t` at `path`.
fn mismatch_in(t: &'static Type, value: &Value, path: &str) -> Option<String> {
    let Value::Object(map) = value else {
        return None;
    };
    map.iter().find_map(|(key, child)| {
        let field = t.field(key)?;
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        mismatch(field.shape, child, struct_name(t), &child_path)
    })
}

/// The first mismatch in `value`, of shape `shape`, held by a field of Go struct `owner` at
/// `path` (list indices and map keys are not part of a Go error's path).
fn mismatch(shape: Shape, value: &Value, owner: &str, path: &str) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let refused = |go: String| {
        Some(format!(
            "json: cannot unmarshal {} into Go struct field {owner}.{path} of type {go}",
            json_kind(value, shape)
        ))
    };
    match shape {
        Shape::Any => None,
        Shape::Scalar(scalar) => {
            if fits(scalar, value) {
                None
            } else {
                refused(String::from(scalar_go(scalar)))
            }
        }
        Shape::Object(t) => match value {
            Value::Object(_) => mismatch_in(t, value, path),
            _ => refused(go_name(t)),
        },
        Shape::Map(item) => match value {
            Value::Object(map) => map
                .values()
                .find_map(|child| mismatch(item.shape(), child, owner, path)),
            _ => refused(format!("map[string]{}", item_go(item))),
        },
        Shape::List(item, _, _) => match value {
            Value::Array(items) => items
                .iter()
                .find_map(|child| mismatch(item.shape(), child, owner, path)),
            _ => refused(format!("[]{}", item_go(item))),
        },
    }
}

/// Whether a JSON scalar decodes into `scalar`'s Go type.
fn fits(scalar: Scalar, value: &Value) -> bool {
    match (scalar, value) {
        (Scalar::Str | Scalar::Bytes, Value::String(_)) | (Scalar::Bool, Value::Bool(_)) => true,
        (Scalar::Float, Value::Number(_)) => true,
        (Scalar::Int64, Value::Number(n)) => n.is_i64(),
        (Scalar::Int32, Value::Number(n)) => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
        _ => false,
    }
}

/// How `encoding/json` names the JSON value it could not store: its kind, and for a number
/// that an integer cannot hold, the number itself.
fn json_kind(value: &Value, shape: Shape) -> String {
    match value {
        Value::String(_) => String::from("string"),
        Value::Bool(_) => String::from("bool"),
        Value::Array(_) => String::from("array"),
        Value::Object(_) => String::from("object"),
        Value::Number(n) if matches!(shape, Shape::Scalar(Scalar::Int32 | Scalar::Int64)) => {
            format!("number {n}")
        }
        _ => String::from("number"),
    }
}

fn scalar_go(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Str => "string",
        Scalar::Bytes => "[]uint8",
        Scalar::Bool => "bool",
        Scalar::Int32 => "int32",
        Scalar::Int64 => "int64",
        Scalar::Float => "float64",
    }
}

fn item_go(item: Item) -> String {
    match item {
        Item::Any => String::from("interface {}"),
        Item::Scalar(scalar) => String::from(scalar_go(scalar)),
        Item::Of(t) => go_name(t),
    }
}

/// A definition's Go struct name: `io.k8s.api.apps.v1.DeploymentSpec` → `DeploymentSpec`.
fn struct_name(t: &Type) -> &'static str {
    let name: &'static str = t.name;
    name.rsplit('.').next().unwrap_or(name)
}

/// A definition's Go type as `encoding/json` prints it: `v1.DeploymentSpec`.
fn go_name(t: &Type) -> String {
    let name: &'static str = t.name;
    let mut parts = name.rsplit('.');
    match (parts.next(), parts.next()) {
        (Some(ty), Some(package)) => format!("{package}.{ty}"),
        _ => String::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nginx_deployment() -> Value {
        // A JSON literal (json! would exceed the macro recursion limit at this depth).
        serde_json::from_str(
            r#"{
          "apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
          "spec": {
            "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "nginx"},
              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
              "metadata": {"labels": {"app": "nginx", "tier": "web"}},
              "spec": {
                "serviceAccountName": "default",
                "securityContext": {"runAsNonRoot": true, "fsGroup": 101, "seccompProfile": {"type": "RuntimeDefault"}},
                "affinity": {
                  "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]},
                  "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                    "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "nginx"}}, "topologyKey": "kubernetes.io/hostname"}}]}
                },
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                  "labelSelector": {"matchLabels": {"app": "nginx"}}}],
                "nodeSelector": {"disktype": "ssd"},
                "imagePullSecrets": [{"name": "regcred"}],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
                "containers": [{
                  "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                  "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                  "env": [
                    {"name": "A", "value": "1"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "mode", "optional": true}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}
                  ],
                  "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "C_"}],
                  "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi", "nvidia.com/gpu": 1}},
                  "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "httpHeaders": [{"name": "X", "value": "y"}]},
                    "initialDelaySeconds": 5, "periodSeconds": 10},
                  "readinessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
                  "startupProbe": {"exec": {"command": ["true"]}},
                  "lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}},
                  "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true},
                  "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d", "readOnly": true},
                    {"name": "tls", "mountPath": "/tls"}, {"name": "cache", "mountPath": "/var/cache/nginx"}]
                }],
                "volumes": [
                  {"name": "conf", "configMap": {"name": "nginx-conf", "items": [{"key": "default.conf", "path": "default.conf"}]}},
                  {"name": "tls", "secret": {"secretName": "nginx-tls", "defaultMode": 256}},
                  {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
                  {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
                ]
              }
            }
          },
          "status": {"replicas": 3, "conditions": [{"type": "Available"}]}
        }"#,
        )
        .unwrap()
    }

    #[test]
    fn realistic_manifests_have_no_unknown_fields() {
        assert_eq!(
            unknown_fields(ResourceId::Deployments, &nginx_deployment()),
            Vec::<String>::new()
        );
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "externalTrafficPolicy": "Local",
              "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]}});
        assert_eq!(
            unknown_fields(ResourceId::Services, &svc),
            Vec::<String>::new()
        );
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "type": "Opaque", "stringData": {"password": "p"}, "data": {"user": "dXNlcg=="}});
        assert_eq!(
            unknown_fields(ResourceId::Secrets, &secret),
            Vec::<String>::new()
        );
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "n1", "namespace": "kube-node-lease",
              "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u"}]},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-01-01T00:00:00.000000Z"}});
        assert_eq!(
            unknown_fields(ResourceId::Leases, &lease),
            Vec::<String>::new()
        );
    }

    #[test]
    fn planted_typos_are_reported_by_path() {
        let mut d = nginx_deployment();
        d["spec"]["replica"] = json!(1);
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
        d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] =
            json!("/");
        d["spec"]["template"]["spec"]["volumes"][1]["secret"]["name"] = json!("x");
        d["metadata"]["label"] = json!({"a": "b"});
        // Unknown subtrees are reported once, not descended into.
        d["spec"]["template"]["spec"]["extra"] = json!({"deep": {"deeper": 1}});
        let mut got = unknown_fields(ResourceId::Deployments, &d);
        got.sort();
        assert_eq!(
            got,
            [
                "metadata.label",
                "spec.replica",
                "spec.template.spec.containers[0].imagePullPolicyy",
                "spec.template.spec.containers[0].livenessProbe.httpGet.paht",
                "spec.template.spec.extra",
                "spec.template.spec.volumes[1].secret.name",
            ]
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "b"}, {"name": "c", "image": "d", "foo": 1}]},
            "bogus": true});
        assert_eq!(
            unknown_fields(ResourceId::Pods, &pod),
            ["bogus", "spec.containers[1].foo"]
        );
        let cm = json!({"metadata": {"name": "c"}, "data": {"anything": "goes"}, "spec": {}});
        assert_eq!(unknown_fields(ResourceId::ConfigMaps, &cm), ["spec"]);
    }

    /// Values of the wrong JSON type are refused in the words of kube's decoder (each
    /// message as kube-apiserver 1.32 answers it); `null` and free-form values pass.
    #[test]
    fn values_a_go_field_cannot_hold_are_named_as_kubes_decoder_names_them() {
        let mut d = nginx_deployment();
        assert_eq!(type_error(ResourceId::Deployments, &d), None);
        d["spec"]["replicas"] = json!("3");
        assert_eq!(
            type_error(ResourceId::Deployments, &d).unwrap(),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        let cm = json!({"metadata": {"name": "c", "labels": {"a": true}}});
        assert_eq!(
            type_error(ResourceId::ConfigMaps, &cm).unwrap(),
            "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"
        );
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}],
            "volumes": [{"name": "s", "secret": {"secretName": true}}]}});
        assert_eq!(
            type_error(ResourceId::Pods, &pod).unwrap(),
            "json: cannot unmarshal bool into Go struct field SecretVolumeSource.spec.volumes.secret.secretName of type string"
        );
        let pod = json!({"spec": {"containers": {"name": "c"}}});
        assert_eq!(
            type_error(ResourceId::Pods, &pod).unwrap(),
            "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"
        );
        let pod = json!({"spec": "x"});
        assert_eq!(
            type_error(ResourceId::Pods, &pod).unwrap(),
            "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"
        );
        let pod = json!({"spec": {"terminationGracePeriodSeconds": 1.5}});
        assert_eq!(
            type_error(ResourceId::Pods, &pod).unwrap(),
            "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"
        );
        let d = json!({"spec": {"replicas": 3_000_000_000u64}});
        assert_eq!(
            type_error(ResourceId::Deployments, &d).unwrap(),
            "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        // Nulls, quantities, int-or-strings and times are what their Go types take.
        let pod = json!({"metadata": {"name": null, "creationTimestamp": null},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": "http"}}}]}});
        assert_eq!(type_error(ResourceId::Pods, &pod), None);
    }

    /// The generated schema reaches everywhere the hand-written one left open: `status`,
    /// ephemeral containers, rarely used volume sources, quantities' maps; and it is 1.32's.
    #[test]
    fn every_level_is_checked_against_kubernetes_1_32() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "a", "image": "b",
                    "resources": {"limits": {"cpu": "1"}, "claims": [{"name": "c", "bad": 1}]},
                    // `stopSignal` arrived in 1.33.
                    "lifecycle": {"stopSignal": "SIGTERM"}}],
                "ephemeralContainers": [{"name": "e", "image": "b", "targetContainerName": "a",
                    "typo": true}],
                "volumes": [{"name": "v", "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0,
                    "portals": ["p"], "wrong": 1}}],
                "overhead": {"cpu": "1"}
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                "extra": 1}], "bogus": 1}});
        let mut got = unknown_fields(ResourceId::Pods, &pod);
        got.sort();
        assert_eq!(
            got,
            [
                "spec.containers[0].lifecycle.stopSignal",
                "spec.containers[0].resources.claims[0].bad",
                "spec.ephemeralContainers[0].typo",
                "spec.volumes[0].iscsi.wrong",
                "status.bogus",
                "status.conditions[0].extra",
            ]
        );
        // Free-form values are never looked into: managedFields' fieldsV1.
        let cm = json!({"metadata": {"name": "c", "managedFields": [{"manager": "m",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:anything": {}}}}]}});
        assert!(unknown_fields(ResourceId::ConfigMaps, &cm).is_empty());
    }
}
