//! `/openapi/v3`: enough for `kubectl create/apply` with default validation to hand field
//! validation to the server.
//!
//! What kubectl 1.32 reads from these documents, and why they look the way they do:
//! - Validation (`create`, `apply`, `replace`; `--validate=strict` is the default): kubectl's
//!   `QueryParamVerifierV3` looks, in the group-version document, for a PATCH operation whose
//!   `x-kubernetes-group-version-kind` is the object's kind and which takes a `fieldValidation`
//!   query parameter. Finding it, kubectl skips client-side schema validation and sends
//!   `fieldValidation=Strict`, leaving validation to the server. Every PATCH here has it.
//! - Client-side `apply` (`Patcher.gvkSupportsPatchOpenAPIV3`) builds its strategic merge patch
//!   from the OpenAPI v3 schema only when that PATCH operation's `requestBody` offers
//!   `application/strategic-merge-patch+json`. These operations deliberately declare no
//!   `requestBody`, so kubectl falls through (`/openapi/v2` is not served) to its compiled-in
//!   Go types, whose `patchMergeKey`/`patchStrategy` tags are exact for every built-in kind we
//!   serve. Publishing partial schemas with merge metadata would risk wrong patches for no gain.
//!   (Checked with kubectl 1.32.4 against these documents: a re-apply sends
//!   `application/strategic-merge-patch+json` with `$setElementOrder/containers` and
//!   `{"$patch":"delete","name":...}`, and `create` sends `fieldValidation=Strict` without
//!   rejecting unknown fields itself.)
//! - `explain` reads `components.schemas` entries tagged with `x-kubernetes-group-version-kind`;
//!   they list the top-level fields of each kind only.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::discovery::GIT_VERSION;
use crate::resource::{GROUPS, RESOURCES, ResourceId, ResourceType};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The `/openapi/v3/{path}` keys served: `api/v1` and `apis/{group}/{version}`.
pub fn v3_paths() -> Vec<String> {
    let mut out = Vec::with_capacity(GROUPS.len().saturating_add(1));
    out.push(String::from("api/v1"));
    for (g, v) in GROUPS {
        out.push(format!("apis/{g}/{v}"));
    }
    out
}

fn group_version_of(path: &str) -> Option<(&'static str, &'static str)> {
    if path == "api/v1" {
        return Some(("", "v1"));
    }
    let rest = path.strip_prefix("apis/")?;
    GROUPS
        .iter()
        .find(|(g, v)| {
            rest.strip_prefix(g)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|r| r == *v)
        })
        .copied()
}

/// `GET /openapi/v3`: the index of group-version documents.
///
/// Each `serverRelativeURL` carries `?hash=` of the document (upper-case hex SHA-512, as
/// kube-apiserver's ETag), so clients may cache it as immutable.
pub fn v3_index() -> Value {
    let mut paths = Map::new();
    for path in v3_paths() {
        let hash = v3_hash(&path).unwrap_or_default();
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// Upper-case hex SHA-512 of the serialized document for `group_version_path`.
pub fn v3_hash(group_version_path: &str) -> Option<String> {
    let doc = v3_document(group_version_path)?;
    let bytes = serde_json::to_vec(&doc).ok()?;
    let digest = Sha512::digest(&bytes);
    let mut hex = String::with_capacity(128);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02X}");
    }
    Some(hex)
}

/// Package of the kind's Go type, which kube uses to name schemas.
fn schema_name(r: &ResourceType) -> String {
    format!("io.k8s.api.{}.{}.{}", package(r), r.version, r.kind)
}

/// `core`, `apps`, `coordination`: the Go package of the group's types.
fn package(r: &ResourceType) -> &'static str {
    match r.group {
        "" => "core",
        group => group.split('.').next().unwrap_or(group),
    }
}

/// `core_v1`, `apps_v1`, `coordination_v1`: the operation tag.
fn tag(r: &ResourceType) -> String {
    format!("{}_{}", package(r), r.version)
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn gvk(r: &ResourceType) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

fn query_param(name: &str, description: &str, ty: &str) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), ty.into());
    if ty == "string" {
        schema.insert("uniqueItems".into(), true.into());
    }
    json!({"name": name, "in": "query", "description": description, "schema": schema})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true,
        "schema": {"type": "string", "uniqueItems": true}})
}

fn patch_path(r: &ResourceType) -> (String, Value) {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let path = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{prefix}/{}/{{name}}", r.plural)
    };
    let mut path_params = vec![path_param("name", &format!("name of the {}", r.kind))];
    if r.namespaced {
        path_params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    path_params.push(query_param(
        "pretty",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
        "string",
    ));
    let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
    let content = json!({
        "application/json": {"schema": schema_ref},
        "application/yaml": {"schema": schema_ref},
    });
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let op = json!({
        "tags": [tag(r)],
        "description": format!("partially update the specified {}", r.kind),
        "operationId": format!(
            "patch{}{}{scope}{}",
            upper_first(package(r)),
            upper_first(r.version),
            r.kind
        ),
        "parameters": [
            query_param("dryRun", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed", "string"),
            query_param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).", "string"),
            query_param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.", "string"),
            query_param("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", "boolean"),
        ],
        "responses": {
            "200": {"description": "OK", "content": content},
            "201": {"description": "Created", "content": content},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": gvk(r),
    });
    let item = json!({
        "description": format!("partially update the specified {}", r.kind),
        "parameters": path_params,
        "patch": op,
    });
    (path, item)
}

fn field(ty: &str, description: &str) -> Value {
    json!({"type": ty, "description": description})
}

fn string_map(description: &str) -> Value {
    json!({"type": "object", "description": description,
        "additionalProperties": {"type": "string", "default": ""}})
}

/// The top-level fields of each kind besides `apiVersion`, `kind` and `metadata`.
fn top_level_fields(r: &ResourceType) -> Vec<(&'static str, Value)> {
    let spec = || {
        field(
            "object",
            "Spec defines the behavior of the object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
        )
    };
    let status = || {
        field(
            "object",
            "Most recently observed status of the object. Populated by the system. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
        )
    };
    match r.id {
        ResourceId::Namespaces
        | ResourceId::Pods
        | ResourceId::Nodes
        | ResourceId::Services
        | ResourceId::Deployments
        | ResourceId::ReplicaSets => vec![("spec", spec()), ("status", status())],
        ResourceId::Leases => vec![("spec", spec())],
        ResourceId::Endpoints => vec![(
            "subsets",
            field(
                "array",
                "The set of all endpoints is the union of all subsets.",
            ),
        )],
        ResourceId::ConfigMaps => vec![
            ("data", string_map("Data contains the configuration data.")),
            (
                "binaryData",
                string_map("BinaryData contains the binary data, base64 encoded."),
            ),
            (
                "immutable",
                field(
                    "boolean",
                    "Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated.",
                ),
            ),
        ],
        ResourceId::Secrets => vec![
            (
                "data",
                string_map("Data contains the secret data, base64 encoded."),
            ),
            (
                "stringData",
                string_map("stringData allows specifying non-binary secret data in string form."),
            ),
            (
                "type",
                field(
                    "string",
                    "Used to facilitate programmatic handling of secret data.",
                ),
            ),
            (
                "immutable",
                field(
                    "boolean",
                    "Immutable, if set to true, ensures that data stored in the Secret cannot be updated.",
                ),
            ),
        ],
        ResourceId::ServiceAccounts => vec![
            (
                "secrets",
                field(
                    "array",
                    "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
                ),
            ),
            (
                "imagePullSecrets",
                field(
                    "array",
                    "ImagePullSecrets is a list of references to secrets in the same namespace to use for pulling any images in pods that reference this ServiceAccount.",
                ),
            ),
            (
                "automountServiceAccountToken",
                field(
                    "boolean",
                    "AutomountServiceAccountToken indicates whether pods running as this service account should have an API token automatically mounted.",
                ),
            ),
        ],
        ResourceId::Events => vec![
            (
                "involvedObject",
                field("object", "The object that this event is about."),
            ),
            (
                "reason",
                field(
                    "string",
                    "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                ),
            ),
            (
                "message",
                field(
                    "string",
                    "A human-readable description of the status of this operation.",
                ),
            ),
            (
                "source",
                field(
                    "object",
                    "The component reporting this event. Should be a short machine understandable string.",
                ),
            ),
            (
                "firstTimestamp",
                field(
                    "string",
                    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
                ),
            ),
            (
                "lastTimestamp",
                field(
                    "string",
                    "The time at which the most recent occurrence of this event was recorded.",
                ),
            ),
            (
                "count",
                field("integer", "The number of times this event has occurred."),
            ),
            (
                "type",
                field(
                    "string",
                    "Type of this event (Normal, Warning), new types could be added in the future",
                ),
            ),
            (
                "eventTime",
                field("string", "Time when this Event was first observed."),
            ),
            (
                "series",
                field(
                    "object",
                    "Data about the Event series this event represents or nil if it's a singleton Event.",
                ),
            ),
            (
                "action",
                field(
                    "string",
                    "What action was taken/failed regarding to the Regarding object.",
                ),
            ),
            (
                "related",
                field(
                    "object",
                    "Optional secondary object for more complex actions.",
                ),
            ),
            (
                "reportingComponent",
                field(
                    "string",
                    "Name of the controller that emitted this Event, e.g. `kubernetes.io/kubelet`.",
                ),
            ),
            (
                "reportingInstance",
                field(
                    "string",
                    "ID of the controller instance, e.g. `kubelet-xyzf`.",
                ),
            ),
        ],
    }
}

fn kind_schema(r: &ResourceType) -> Value {
    let mut props = Map::new();
    props.insert(
        "apiVersion".into(),
        field(
            "string",
            "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
        ),
    );
    props.insert(
        "kind".into(),
        field(
            "string",
            "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
        ),
    );
    props.insert(
        "metadata".into(),
        json!({"description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            "default": {},
            "allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}]}),
    );
    for (name, schema) in top_level_fields(r) {
        props.insert(name.into(), schema);
    }
    json!({
        "description": format!("{} as served by this API server.", r.kind),
        "type": "object",
        "properties": props,
        "x-kubernetes-group-version-kind": [gvk(r)],
    })
}

fn object_meta_schema() -> Value {
    json!({
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "type": "object",
        "properties": {
            "name": field("string", "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
            "generateName": field("string", "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
            "namespace": field("string", "Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Not all objects are required to be scoped to a namespace - the value of this field for those objects will be empty."),
            "labels": string_map("Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"),
            "annotations": string_map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"),
            "uid": field("string", "UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations."),
            "resourceVersion": field("string", "An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed."),
            "generation": field("integer", "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only."),
            "creationTimestamp": field("string", "CreationTimestamp is a timestamp representing the server time when this object was created."),
            "deletionTimestamp": field("string", "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted."),
            "deletionGracePeriodSeconds": field("integer", "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system."),
            "finalizers": {"type": "array", "description": "Must be empty before the object is deleted from the registry.", "items": {"type": "string", "default": ""}},
            "ownerReferences": field("array", "List of objects depended by this object."),
            "managedFields": field("array", "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow."),
        },
    })
}

/// `GET /openapi/v3/{path}` for `api/v1` or `apis/{group}/{version}`.
pub fn v3_document(group_version_path: &str) -> Option<Value> {
    let (group, version) = group_version_of(group_version_path)?;
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(OBJECT_META.into(), object_meta_schema());
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let (path, item) = patch_path(r);
        paths.insert(path, item);
        schemas.insert(schema_name(r), kind_schema(r));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_every_group_version_with_stable_hash() {
        let index = v3_index();
        let paths = index["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 3);
        for key in ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"] {
            let url = paths[key]["serverRelativeURL"].as_str().unwrap();
            let prefix = format!("/openapi/v3/{key}?hash=");
            let hash = url.strip_prefix(&prefix).unwrap();
            assert_eq!(hash.len(), 128);
            assert!(
                hash.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            );
        }
        assert_eq!(v3_index(), index);
        assert_ne!(v3_hash("api/v1"), v3_hash("apis/apps/v1"));
        assert!(v3_document("apis/apps/v2").is_none());
        assert!(v3_document("apis/batch/v1").is_none());
        assert!(v3_document("apis/apps").is_none());
        assert!(v3_document("api").is_none());
    }

    /// What kubectl's `hasGVKParameterV3` requires: a PATCH operation tagged with the GVK that
    /// takes the `fieldValidation` query parameter.
    fn supports_field_validation(doc: &Value, group: &str, version: &str, kind: &str) -> bool {
        doc["paths"].as_object().unwrap().values().any(|item| {
            let op = &item["patch"];
            op["x-kubernetes-group-version-kind"]
                == json!({"group": group, "version": version, "kind": kind})
                && op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        })
    }

    #[test]
    fn every_kind_has_a_patch_with_field_validation() {
        for r in RESOURCES {
            let path = if r.group.is_empty() {
                String::from("api/v1")
            } else {
                format!("apis/{}/{}", r.group, r.version)
            };
            let doc = v3_document(&path).unwrap();
            assert_eq!(doc["openapi"], "3.0.0");
            assert!(
                supports_field_validation(&doc, r.group, r.version, r.kind),
                "{}",
                r.kind
            );
            let schema = &doc["components"]["schemas"][schema_name(r)];
            assert_eq!(schema["x-kubernetes-group-version-kind"][0], gvk(r));
            // No requestBody: kubectl then builds client-side apply patches from its built-in
            // types instead of from these schemas.
            for item in doc["paths"].as_object().unwrap().values() {
                assert!(item["patch"].get("requestBody").is_none());
            }
        }
    }

    #[test]
    fn paths_and_names_follow_kube() {
        let core = v3_document("api/v1").unwrap();
        let pods = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(pods["operationId"], "patchCoreV1NamespacedPod");
        assert_eq!(pods["tags"], json!(["core_v1"]));
        assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
        assert_eq!(
            core["paths"]["/api/v1/nodes/{name}"]["patch"]["operationId"],
            "patchCoreV1Node"
        );
        assert!(
            core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["data"]
                .is_object()
        );
        let lease = v3_document("apis/coordination.k8s.io/v1").unwrap();
        assert!(
            lease["components"]["schemas"]
                .get("io.k8s.api.coordination.v1.Lease")
                .is_some()
        );
        let op = &lease["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]
            ["patch"];
        assert_eq!(op["operationId"], "patchCoordinationV1NamespacedLease");
        let apps = v3_document("apis/apps/v1").unwrap();
        assert_eq!(
            apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]["operationId"],
            "patchAppsV1NamespacedDeployment"
        );
    }
}
