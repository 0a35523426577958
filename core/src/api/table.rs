//! Server-side printing: `meta.k8s.io/v1` `Table` with the columns kube-apiserver prints for each
//! served type.
//!
//! Columns, cell values and their JSON types follow kube-apiserver 1.32
//! (`pkg/printers/internalversion/printers.go`). Like kube-apiserver (`pkg/printers/storage`
//! generates with `Wide: true`), every row carries all cells including the priority-1 ones;
//! kubectl hides those unless `-o wide`.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;
use serde_json::{Map, Value, json};

use crate::UnixTime;
use crate::crd;
pub(crate) use crate::metatime::{age, human_duration};
use crate::resource::ResourceId;
use crate::selector::label_selector_string;

/// Whose columns a Table has: a built-in kind's, or a custom resource version's
/// `additionalPrinterColumns` (kube's CR table convertor: `Name`, then those columns).
#[derive(Debug, Clone, Copy)]
pub enum Printer<'a> {
    /// A built-in kind.
    Builtin(ResourceId),
    /// A served version of a custom resource.
    Custom(&'a crd::Version),
}

impl From<ResourceId> for Printer<'_> {
    fn from(resource: ResourceId) -> Self {
        Printer::Builtin(resource)
    }
}

impl<'a> From<&'a crd::Version> for Printer<'a> {
    fn from(version: &'a crd::Version) -> Self {
        Printer::Custom(version)
    }
}

mod autoscaling;
mod certificates;
mod discovery;
mod networking;
mod policy;
mod rbac;
pub(crate) mod source;
mod storage;
mod workloads;

/// What each row's `object` carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const NODE_ADDRESSES_DESC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESC);

const POD: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

const NODE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", "string", NODE_ADDRESSES_DESC),
    wide("External-IP", "string", NODE_ADDRESSES_DESC),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

const NAMESPACE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const SERVICE: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
];

const ENDPOINTS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

const CONFIG_MAP: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

const SECRET: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

// 1.32 still prints SECRETS; it was dropped upstream only by kubernetes/kubernetes#117160 (2025).
const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    AGE,
];

const EVENT: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

const LEASE: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

const DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

const REPLICA_SET: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

/// The default table convertor's columns, which CustomResourceDefinitions get.
const DEFAULT: &[Column] = &[
    NAME,
    Column {
        name: "Created At",
        ty: "date",
        format: "",
        description: AGE_DESC,
        priority: 0,
    },
];

fn columns(resource: ResourceId) -> &'static [Column] {
    match resource {
        ResourceId::CustomResourceDefinitions
        | ResourceId::Roles
        | ResourceId::ClusterRoles
        | ResourceId::Custom(_) => DEFAULT,
        ResourceId::RoleBindings => rbac::ROLE_BINDING,
        ResourceId::ClusterRoleBindings => rbac::CLUSTER_ROLE_BINDING,
        ResourceId::CSINodes => storage::CSI_NODE,
        ResourceId::CSIDrivers => storage::CSI_DRIVER,
        ResourceId::VolumeAttachments => storage::VOLUME_ATTACHMENT,
        ResourceId::EndpointSlices => discovery::ENDPOINT_SLICE,
        ResourceId::Ingresses => networking::INGRESS,
        ResourceId::HorizontalPodAutoscalers => autoscaling::HORIZONTAL_POD_AUTOSCALER,
        ResourceId::CertificateSigningRequests => certificates::CERTIFICATE_SIGNING_REQUEST,
        ResourceId::IngressClasses => networking::INGRESS_CLASS,
        ResourceId::Namespaces => NAMESPACE,
        ResourceId::Pods => POD,
        ResourceId::Nodes => NODE,
        ResourceId::Services => SERVICE,
        ResourceId::Endpoints => ENDPOINTS,
        ResourceId::ConfigMaps => CONFIG_MAP,
        ResourceId::Secrets => SECRET,
        ResourceId::ServiceAccounts => SERVICE_ACCOUNT,
        ResourceId::Events => EVENT,
        ResourceId::Leases => LEASE,
        ResourceId::Deployments => DEPLOYMENT,
        ResourceId::ReplicaSets => REPLICA_SET,
        ResourceId::ResourceQuotas => policy::RESOURCE_QUOTA,
        ResourceId::PodDisruptionBudgets => policy::POD_DISRUPTION_BUDGET,
        ResourceId::RuntimeClasses => policy::RUNTIME_CLASS,
        ResourceId::PriorityClasses => policy::PRIORITY_CLASS,
        ResourceId::FlowSchemas => policy::FLOW_SCHEMA,
        ResourceId::PriorityLevelConfigurations => policy::PRIORITY_LEVEL,
        ResourceId::ValidatingWebhookConfigurations | ResourceId::MutatingWebhookConfigurations => {
            policy::WEBHOOK_CONFIGURATION
        }
        ResourceId::ValidatingAdmissionPolicies => policy::ADMISSION_POLICY,
        ResourceId::ValidatingAdmissionPolicyBindings => policy::ADMISSION_POLICY_BINDING,
        ResourceId::PodTemplates => workloads::POD_TEMPLATE,
        ResourceId::ReplicationControllers => workloads::REPLICATION_CONTROLLER,
        ResourceId::Jobs => workloads::JOB,
        ResourceId::CronJobs => workloads::CRON_JOB,
    }
}

/// The `columnDefinitions` array for `printer`.
pub fn column_definitions<'a>(printer: impl Into<Printer<'a>>) -> Value {
    let column = |name: &str, ty: &str, format: &str, description: &str, priority: i64| {
        json!({
            "name": name,
            "type": ty,
            "format": format,
            "description": description,
            "priority": priority,
        })
    };
    match printer.into() {
        Printer::Builtin(resource) => Value::Array(
            columns(resource)
                .iter()
                .map(|c| column(c.name, c.ty, c.format, c.description, i64::from(c.priority)))
                .collect(),
        ),
        Printer::Custom(version) => {
            let mut out = vec![column(NAME.name, NAME.ty, NAME.format, NAME.description, 0)];
            out.extend(
                version
                    .columns
                    .iter()
                    .map(|c| column(&c.name, &c.type_, &c.format, &c.description, c.priority)),
            );
            Value::Array(out)
        }
    }
}

/// One row for `obj`.
pub fn row<'a>(
    printer: impl Into<Printer<'a>>,
    obj: &Value,
    now: UnixTime,
    include: IncludeObject,
) -> Value {
    let (cells, conditions) = row_cells(printer.into(), obj, now);
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => obj.clone(),
    };
    let mut out = Map::new();
    out.insert("cells".into(), Value::Array(cells));
    if let Some(conditions) = conditions {
        out.insert("conditions".into(), conditions);
    }
    out.insert("object".into(), object);
    Value::Object(out)
}

/// [`row`] of a built-in kind's stored object read through `view`: the cells from the stored
/// shape (kube prints the internal type), an included object in the view's shape (kube's
/// `asTable` converts it to the group-version asked for, on GET and watch alike).
pub fn viewed_row(
    resource: ResourceId,
    view: Option<crate::resource::View>,
    obj: &Value,
    now: UnixTime,
    include: IncludeObject,
) -> Value {
    let mut out = row(resource, obj, now, include);
    if include == IncludeObject::Object
        && let Some(view) = view
        && let Some(object) = out.get_mut("object")
    {
        *object = view.to_view(obj.clone());
    }
    out
}

/// The stored bytes a row may copy instead of encoding `obj`'s tree again.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowBytes<'a> {
    /// The whole object, written as is for [`IncludeObject::Object`].
    pub object: Option<&'a [u8]>,
    /// Its metadata, written as is for [`IncludeObject::Metadata`] (required when the tree was
    /// read without managedFields, [`source::read`]).
    pub metadata: Option<&'a [u8]>,
}

/// Appends the encoding of [`row`] for `obj` to `out` without building the row: a LIST writes
/// 10,000 of them, and copying each object's metadata into a row value before encoding it was
/// a third of the work.
pub fn write_row<'a>(
    printer: impl Into<Printer<'a>>,
    obj: &Value,
    raw: RowBytes<'_>,
    now: UnixTime,
    include: IncludeObject,
    out: &mut Vec<u8>,
) {
    let (cells, conditions) = row_cells(printer.into(), obj, now);
    out.extend_from_slice(b"{\"cells\":");
    crate::json::write_to(&Value::Array(cells), out);
    if let Some(conditions) = conditions {
        out.extend_from_slice(b",\"conditions\":");
        crate::json::write_to(&conditions, out);
    }
    out.extend_from_slice(b",\"object\":");
    match include {
        IncludeObject::None => out.extend_from_slice(b"null"),
        IncludeObject::Metadata => {
            out.extend_from_slice(
                b"{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":",
            );
            match (raw.metadata, obj.get("metadata")) {
                (Some(bytes), _) => out.extend_from_slice(bytes),
                (None, Some(metadata)) => crate::json::write_to(metadata, out),
                (None, None) => out.extend_from_slice(b"{}"),
            }
            out.push(b'}');
        }
        IncludeObject::Object => match raw.object {
            Some(raw) => out.extend_from_slice(raw),
            None => crate::json::write_to(obj, out),
        },
    }
    out.push(b'}');
}

/// The cells of `obj`'s row, and its conditions when the printer has them.
fn row_cells(printer: Printer<'_>, obj: &Value, now: UnixTime) -> (Vec<Value>, Option<Value>) {
    match printer {
        Printer::Builtin(resource) => cells(resource, obj, now),
        Printer::Custom(version) => {
            let mut cells = vec![Value::from(text(obj, "/metadata/name"))];
            cells.extend(
                version
                    .columns
                    .iter()
                    .map(|c| crd::columns::cell(&c.type_, &c.path, obj, now)),
            );
            (cells, None)
        }
    }
}

/// A whole `Table`; `columns` false omits `columnDefinitions` (watch events after the first).
///
/// kube-apiserver sets `NoHeaders` after the first watch event; `Table.columnDefinitions` has no
/// `omitempty`, so it is then sent as `null`, which is what this writes.
pub fn table<'a>(
    printer: impl Into<Printer<'a>>,
    rows: Vec<Value>,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<u64>,
    columns: bool,
) -> Value {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), Value::from(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), Value::from(token));
    }
    if let Some(remaining) = remaining {
        metadata.insert("remainingItemCount".into(), Value::from(remaining));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if columns { column_definitions(printer) } else { Value::Null },
        "rows": rows,
    })
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    crate::json::str_at(v, pointer)
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    crate::json::array_at(v, pointer)
}

fn int(v: &Value, pointer: &str) -> i64 {
    crate::json::at(v, pointer)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn map_len(v: &Value, pointer: &str) -> i64 {
    crate::json::at(v, pointer)
        .and_then(Value::as_object)
        .map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
}

/// A present, non-null field (Go's non-nil pointer).
fn present(v: &Value, pointer: &str) -> bool {
    crate::json::at(v, pointer).is_some_and(|x| !x.is_null())
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s.to_owned()
    }
}

fn cells(resource: ResourceId, obj: &Value, now: UnixTime) -> (Vec<Value>, Option<Value>) {
    let name = Value::from(text(obj, "/metadata/name"));
    let created = age(crate::json::at(obj, "/metadata/creationTimestamp"), now);
    let cells = match resource {
        ResourceId::CustomResourceDefinitions
        | ResourceId::Roles
        | ResourceId::ClusterRoles
        | ResourceId::Custom(_) => vec![
            name,
            crate::json::at(obj, "/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null),
        ],
        ResourceId::Pods => return pod_cells(obj, now),
        ResourceId::Nodes => node_cells(obj, name, created),
        ResourceId::Namespaces => {
            vec![
                name,
                Value::from(text(obj, "/status/phase")),
                created.into(),
            ]
        }
        ResourceId::Services => service_cells(obj, name, created),
        ResourceId::Endpoints => vec![name, format_endpoints(obj).into(), created.into()],
        ResourceId::ConfigMaps => vec![
            name,
            (map_len(obj, "/data").saturating_add(map_len(obj, "/binaryData"))).into(),
            created.into(),
        ],
        ResourceId::Secrets => vec![
            name,
            Value::from(text(obj, "/type")),
            map_len(obj, "/data").into(),
            created.into(),
        ],
        ResourceId::ServiceAccounts => vec![
            name,
            i64::try_from(list(obj, "/secrets").len())
                .unwrap_or(i64::MAX)
                .into(),
            created.into(),
        ],
        ResourceId::Events => event_cells(obj, name, now),
        ResourceId::Leases => vec![
            name,
            Value::from(text(obj, "/spec/holderIdentity")),
            created.into(),
        ],
        ResourceId::Deployments => {
            let (names, images) = container_cells(obj);
            let selector = match label_selector_string(obj.pointer("/spec/selector")) {
                Some(s) => s,
                None => "<invalid>".to_owned(),
            };
            vec![
                name,
                format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    desired_replicas(obj)
                )
                .into(),
                int(obj, "/status/updatedReplicas").into(),
                int(obj, "/status/availableReplicas").into(),
                created.into(),
                names.into(),
                images.into(),
                selector.into(),
            ]
        }
        ResourceId::ReplicaSets => {
            let (names, images) = container_cells(obj);
            vec![
                name,
                desired_replicas(obj).into(),
                int(obj, "/status/replicas").into(),
                int(obj, "/status/readyReplicas").into(),
                created.into(),
                names.into(),
                images.into(),
                format_label_selector(obj.pointer("/spec/selector")).into(),
            ]
        }
        ResourceId::ResourceQuotas
        | ResourceId::PodDisruptionBudgets
        | ResourceId::RuntimeClasses
        | ResourceId::PriorityClasses
        | ResourceId::FlowSchemas
        | ResourceId::PriorityLevelConfigurations
        | ResourceId::ValidatingWebhookConfigurations
        | ResourceId::MutatingWebhookConfigurations
        | ResourceId::ValidatingAdmissionPolicies
        | ResourceId::ValidatingAdmissionPolicyBindings => {
            policy::cells(resource, obj, name, created)
        }
        ResourceId::RoleBindings | ResourceId::ClusterRoleBindings => {
            rbac::binding_cells(obj, name, created)
        }
        ResourceId::CSINodes | ResourceId::CSIDrivers | ResourceId::VolumeAttachments => {
            storage::cells(resource, obj, name, created)
        }
        ResourceId::EndpointSlices => discovery::cells(obj, name, created),
        ResourceId::HorizontalPodAutoscalers => autoscaling::cells(obj, name, created),
        ResourceId::CertificateSigningRequests => certificates::cells(obj, name, created),
        ResourceId::Ingresses | ResourceId::IngressClasses => {
            networking::cells(resource, obj, name, created)
        }
        ResourceId::PodTemplates => workloads::pod_template_cells(obj, name),
        ResourceId::ReplicationControllers => {
            workloads::replication_controller_cells(obj, name, created)
        }
        ResourceId::Jobs => workloads::job_cells(obj, name, created, now),
        ResourceId::CronJobs => workloads::cron_job_cells(obj, name, created, now),
    };
    (cells, None)
}

/// `spec.replicas`, which the server defaults to 1.
fn desired_replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn container_cells(obj: &Value) -> (String, String) {
    let containers = list(obj, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: `k=v` sorted by key, `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".to_owned();
    };
    // `Map` iterates in key order (no `preserve_order`), matching Go's sorted output; sort anyway
    // so this does not depend on serde_json features.
    let mut pairs: Vec<(&String, &str)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}={v}");
    }
    out
}

/// `metav1.FormatLabelSelector`: like [`label_selector_string`] but `<none>` when empty and
/// `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector_string(sel) {
        None => "<error>".to_owned(),
        Some(s) if s.is_empty() => "<none>".to_owned(),
        Some(s) => s,
    }
}

fn later(current: Option<UnixTime>, candidate: Option<UnixTime>) -> Option<UnixTime> {
    match (current, candidate) {
        (Some(a), Some(b)) if b > a => Some(b),
        (None, b) => b,
        (a, _) => a,
    }
}

fn finished_at(status: &Value) -> Option<UnixTime> {
    status
        .pointer("/lastState/terminated/finishedAt")
        .and_then(Value::as_str)
        .and_then(UnixTime::parse_rfc3339)
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    list(pod, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == ty && text(c, "/status") == "True")
}

/// `Signal:N`/`ExitCode:N` (with `prefix`) for a terminated state without a reason.
fn terminated_reason(state: &Value, prefix: &str) -> String {
    let reason = text(state, "/terminated/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(state, "/terminated/signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(state, "/terminated/exitCode"))
    }
}

fn pod_cells(pod: &Value, now: UnixTime) -> (Vec<Value>, Option<Value>) {
    let init_specs = list(pod, "/spec/initContainers");
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .count();
    let total = list(pod, "/spec/containers").len().saturating_add(sidecars);
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<UnixTime> = None;
    let mut last_sidecar_restart: Option<UnixTime> = None;

    let phase = text(pod, "/status/phase");
    let mut reason = match text(pod, "/status/reason") {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    if list(pod, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }
    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."}]),
        ),
        _ => None,
    };

    let mut initializing = false;
    for (i, status) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts = restarts.saturating_add(int(status, "/restartCount"));
        last_restart = later(last_restart, finished_at(status));
        let sidecar = is_sidecar(text(status, "/name"));
        if sidecar {
            sidecar_restarts = sidecar_restarts.saturating_add(int(status, "/restartCount"));
            last_sidecar_restart = later(last_sidecar_restart, finished_at(status));
        }
        let state = status.get("state").unwrap_or(&Value::Null);
        let terminated = present(state, "/terminated");
        let waiting_reason = text(state, "/waiting/reason");
        if terminated && int(state, "/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && status.get("started").and_then(Value::as_bool) == Some(true) {
            if status.get("ready").and_then(Value::as_bool) == Some(true) {
                ready = ready.saturating_add(1);
            }
            continue;
        }
        reason = if terminated {
            terminated_reason(state, "Init:")
        } else if present(state, "/waiting")
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts = restarts.saturating_add(int(status, "/restartCount"));
            last_restart = later(last_restart, finished_at(status));
            let state = status.get("state").unwrap_or(&Value::Null);
            let waiting_reason = text(state, "/waiting/reason");
            if present(state, "/waiting") && !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if present(state, "/terminated") {
                reason = terminated_reason(state, "");
            } else if status.get("ready").and_then(Value::as_bool) == Some(true)
                && present(state, "/running")
            {
                has_running = true;
                ready = ready.saturating_add(1);
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    if present(pod, "/metadata/deletionTimestamp") {
        if text(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(i128::from(now.nanos) - i128::from(t.nanos))
        ),
        _ => format!("{restarts}"),
    };

    let pod_ip = list(pod, "/status/podIPs")
        .first()
        .map(|ip| text(ip, "/ip"))
        .filter(|ip| !ip.is_empty())
        // v1 → internal conversion fills podIPs from podIP when only the latter is set.
        .unwrap_or_else(|| text(pod, "/status/podIP"));
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let conditions = list(pod, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|gate| {
                let ty = text(gate, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == ty)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    let cells = vec![
        Value::from(text(pod, "/metadata/name")),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        age(crate::json::at(pod, "/metadata/creationTimestamp"), now).into(),
        or_none(pod_ip).into(),
        or_none(text(pod, "/spec/nodeName")).into(),
        or_none(text(pod, "/status/nominatedNodeName")).into(),
        readiness_gates.into(),
    ];
    (cells, conditions)
}

fn node_cells(node: &Value, name: Value, created: String) -> Vec<Value> {
    // Only the Ready condition is shown (`NodeAllConditions` is `[NodeReady]` in the printer).
    let mut status: Vec<&str> = Vec::new();
    if let Some(cond) = list(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| text(c, "/type") == "Ready")
    {
        status.push(if text(cond, "/status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let role = match k.strip_prefix("node-role.kubernetes.io/") {
                Some(role) => role,
                None if k == "kubernetes.io/role" => v.as_str().unwrap_or(""),
                None => "",
            };
            if !role.is_empty() {
                roles.push(role);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();

    let address = |ty: &str| {
        list(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == ty)
            .map_or_else(|| "<none>".to_owned(), |a| text(a, "/address").to_owned())
    };
    let unknown = |pointer: &str| match text(node, pointer) {
        "" => "<unknown>".to_owned(),
        v => v.to_owned(),
    };
    vec![
        name,
        status.join(",").into(),
        or_none(&roles.join(",")).into(),
        created.into(),
        Value::from(text(node, "/status/nodeInfo/kubeletVersion")),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown("/status/nodeInfo/osImage").into(),
        unknown("/status/nodeInfo/kernelVersion").into(),
        unknown("/status/nodeInfo/containerRuntimeVersion").into(),
    ]
}

fn service_cells(svc: &Value, name: Value, created: String) -> Vec<Value> {
    let ty = text(svc, "/spec/type");
    // v1 → internal conversion fills clusterIPs from clusterIP when only the latter is set.
    let cluster_ip = list(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(svc, "/spec/clusterIP"));
    let external_ips: Vec<&str> = list(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match ty {
        "ClusterIP" | "NodePort" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            // A sorted set of ingress IPs (or hostnames); never clipped since the server prints wide.
            let mut lb: Vec<&str> = list(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match text(i, "/ip") {
                    "" => text(i, "/hostname"),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            lb.sort_unstable();
            lb.dedup();
            if !external_ips.is_empty() {
                lb.extend(external_ips.iter());
                lb.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_owned()
            }
        }
        "ExternalName" => text(svc, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    };
    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            // The server defaults `protocol` to TCP.
            let protocol = match text(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            let port = int(p, "/port");
            match int(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    vec![
        name,
        Value::from(ty),
        or_none(cluster_ip).into(),
        external.into(),
        or_none(&ports.join(",")).into(),
        created.into(),
        format_labels(svc.pointer("/spec/selector")).into(),
    ]
}

/// `formatEndpoints`: the first three `ip:port`, then ` + N more...`.
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list(subset, "/addresses");
        let ports = list(subset, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            for addr in addresses {
                if shown.len() < MAX {
                    shown.push(text(addr, "/ip").to_owned());
                }
                count = count.saturating_add(1);
            }
        } else {
            for port in ports {
                for addr in addresses {
                    if shown.len() < MAX {
                        let ip = text(addr, "/ip");
                        let port = int(port, "/port");
                        // net.JoinHostPort brackets IPv6 literals.
                        shown.push(if ip.contains(':') {
                            format!("[{ip}]:{port}")
                        } else {
                            format!("{ip}:{port}")
                        });
                    }
                    count = count.saturating_add(1);
                }
            }
        }
    }
    let joined = shown.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

fn event_cells(ev: &Value, name: Value, now: UnixTime) -> Vec<Value> {
    let set = |pointer: &str| {
        ev.pointer(pointer)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    };
    let first = match set("/firstTimestamp") {
        Some(t) => age(Some(t), now),
        None => age(set("/eventTime"), now),
    };
    let mut last = match set("/lastTimestamp") {
        Some(t) => age(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(ev, "/count");
    if present(ev, "/series") {
        last = age(set("/series/lastObservedTime"), now);
        count = int(ev, "/series/count");
    } else if count == 0 {
        // Singleton events of the events.k8s.io API have no count.
        count = 1;
    }
    let kind = text(ev, "/involvedObject/kind").to_lowercase();
    let object_name = text(ev, "/involvedObject/name");
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };
    let component = match text(ev, "/source/component") {
        "" => text(ev, "/reportingComponent"),
        c => c,
    };
    let instance = match text(ev, "/source/host") {
        "" => text(ev, "/reportingInstance"),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        Value::from(text(ev, "/type")),
        Value::from(text(ev, "/reason")),
        target.into(),
        Value::from(text(ev, "/involvedObject/fieldPath")),
        source.into(),
        Value::from(text(ev, "/message").trim()),
        first.into(),
        count.into(),
        name,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-11-14T23:46:29Z
    const NOW: u64 = 1_731_627_989;

    fn now() -> UnixTime {
        UnixTime::from_secs(NOW)
    }

    fn ago(secs: u64) -> String {
        UnixTime::from_secs(NOW - secs).rfc3339()
    }

    /// The cells of `obj`'s row, checked to be the same from the tree a LIST reads (which keeps
    /// only what the printer reads, for pods).
    fn cells_of(resource: ResourceId, obj: &Value) -> Vec<Value> {
        let full = row(resource, obj, now(), IncludeObject::None);
        let raw = crate::json::to_vec(obj);
        if let Some(source) = source::read_for(resource, &raw) {
            let read = row(resource, &source.object, now(), IncludeObject::None);
            assert_eq!(read, full, "{resource:?}: the pruned tree prints otherwise");
        }
        full["cells"].as_array().unwrap().clone()
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        let empty = json!({"metadata": {"name": "x"}});
        for r in crate::resource::RESOURCES {
            let defs = column_definitions(r.id);
            let cells = cells_of(r.id, &empty);
            assert_eq!(defs.as_array().unwrap().len(), cells.len(), "{}", r.plural);
        }
    }

    #[test]
    fn pod_rows() {
        let running_with_restarts = json!({
            "metadata": {"name": "web-7d4b9c", "namespace": "default",
                "creationTimestamp": ago(3 * 3600 + 20 * 60)},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web"}, {"name": "sidecar"}]},
            "status": {"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "web", "ready": true, "restartCount": 5,
                     "state": {"running": {"startedAt": ago(300)}},
                     "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                        "finishedAt": ago(301)}}},
                    {"name": "sidecar", "ready": true, "restartCount": 0,
                     "state": {"running": {"startedAt": ago(12000)}}}
                ]}
        });
        let pending = json!({
            "metadata": {"name": "pending", "creationTimestamp": ago(45)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        });
        let terminating = json!({
            "metadata": {"name": "old", "creationTimestamp": ago(2 * 86400 + 5 * 3600),
                "deletionTimestamp": ago(0)},
            "spec": {"nodeName": "node-2", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "fd00::5"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                    "state": {"running": {}}}]}
        });
        let crashloop = json!({
            "metadata": {"name": "crash", "creationTimestamp": ago(38 * 60)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": false,
                "restartCount": 12, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "finishedAt": ago(114)}}}]}
        });
        let completed = json!({
            "metadata": {"name": "job-x", "creationTimestamp": ago(23)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "c", "ready": false,
                "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        });
        let init = json!({
            "metadata": {"name": "init", "creationTimestamp": ago(10)},
            "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
                {"name": "b", "restartCount": 0, "state": {"running": {}}}]}
        });
        let init_failed = json!({
            "metadata": {"name": "initfail"},
            "spec": {"initContainers": [{"name": "a"}], "containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "restartCount": 3, "state": {"terminated": {"exitCode": 1}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}}]}
        });
        let cases: &[(&Value, Value)] = &[
            (
                &running_with_restarts,
                json!([
                    "web-7d4b9c",
                    "2/2",
                    "Running",
                    "5 (5m1s ago)",
                    "3h20m",
                    "10.244.1.7",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                &pending,
                json!([
                    "pending", "0/1", "Pending", "0", "45s", "<none>", "<none>", "<none>", "<none>"
                ]),
            ),
            (
                &terminating,
                json!([
                    "old",
                    "1/1",
                    "Terminating",
                    "0",
                    "2d5h",
                    "fd00::5",
                    "node-2",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                &crashloop,
                json!([
                    "crash",
                    "0/1",
                    "CrashLoopBackOff",
                    "12 (114s ago)",
                    "38m",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                &completed,
                json!([
                    "job-x",
                    "0/1",
                    "Completed",
                    "0",
                    "23s",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                &init,
                json!([
                    "init", "0/1", "Init:1/2", "0", "10s", "<none>", "<none>", "<none>", "<none>"
                ]),
            ),
            (
                &init_failed,
                json!([
                    "initfail",
                    "0/1",
                    "Init:ExitCode:1",
                    "3 (20s ago)",
                    "<unknown>",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
        ];
        for (pod, want) in cases {
            assert_eq!(
                Value::Array(cells_of(ResourceId::Pods, pod)),
                *want,
                "{}",
                pod["metadata"]["name"]
            );
        }
        let done = row(ResourceId::Pods, &completed, now(), IncludeObject::None);
        assert_eq!(done["conditions"][0]["reason"], "Succeeded");
        assert!(
            row(ResourceId::Pods, &pending, now(), IncludeObject::None)
                .get("conditions")
                .is_none()
        );
    }

    #[test]
    fn node_rows() {
        let node = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": ago(24 * 86400),
                "labels": {"node-role.kubernetes.io/control-plane": "",
                    "node-role.kubernetes.io/master": "true", "kubernetes.io/hostname": "cp-1"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "cp-1"},
                    {"type": "InternalIP", "address": "192.168.139.2"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Ubuntu 24.04 LTS",
                    "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://1.7.24"}}
        });
        assert_eq!(
            Value::Array(cells_of(ResourceId::Nodes, &node)),
            json!([
                "cp-1",
                "Ready,SchedulingDisabled",
                "control-plane,master",
                "24d",
                "v1.32.0",
                "192.168.139.2",
                "<none>",
                "Ubuntu 24.04 LTS",
                "6.8.0",
                "containerd://1.7.24"
            ])
        );
        let bare = json!({"metadata": {"name": "w", "labels": {"kubernetes.io/role": "worker"}},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::Nodes, &bare)),
            json!([
                "w",
                "NotReady",
                "worker",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
        let new = json!({"metadata": {"name": "n"}});
        assert_eq!(cells_of(ResourceId::Nodes, &new)[1], "Unknown");
        assert_eq!(cells_of(ResourceId::Nodes, &new)[2], "<none>");
    }

    #[test]
    fn service_rows() {
        let node_port = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(600)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
                "selector": {"tier": "front", "app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 0},
                    {"port": 443, "protocol": "TCP", "nodePort": 30443}]}
        });
        assert_eq!(
            Value::Array(cells_of(ResourceId::Services, &node_port)),
            json!([
                "web",
                "NodePort",
                "10.96.12.34",
                "<none>",
                "80/TCP,443:30443/TCP",
                "10m",
                "app=web,tier=front"
            ])
        );
        let kubernetes = json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(5)},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::Services, &kubernetes)),
            json!([
                "kubernetes",
                "ClusterIP",
                "10.96.0.1",
                "<none>",
                "443/TCP",
                "5s",
                "<none>"
            ])
        );
        let lb = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.9"], "ports": [
                {"port": 53, "protocol": "UDP", "nodePort": 31053}]},
            "status": {"loadBalancer": {}}});
        assert_eq!(cells_of(ResourceId::Services, &lb)[3], "<pending>");
        assert_eq!(cells_of(ResourceId::Services, &lb)[4], "53:31053/UDP");
        let ext = json!({"metadata": {"name": "db"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(cells_of(ResourceId::Services, &ext)[3], "db.example.com");
        assert_eq!(cells_of(ResourceId::Services, &ext)[4], "<none>");
    }

    #[test]
    fn event_rows() {
        let ev = json!({
            "metadata": {"name": "busy-pod.17a0c1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "busy-pod", "namespace": "default",
                "fieldPath": "spec.containers{busy}"},
            "reason": "BackOff", "type": "Warning",
            "message": "Back-off restarting failed container busy in pod busy-pod_default\n",
            "source": {"component": "kubelet", "host": "minikube"},
            "firstTimestamp": ago(52), "lastTimestamp": ago(8), "count": 5
        });
        assert_eq!(
            Value::Array(cells_of(ResourceId::Events, &ev)),
            json!([
                "8s",
                "Warning",
                "BackOff",
                "pod/busy-pod",
                "spec.containers{busy}",
                "kubelet, minikube",
                "Back-off restarting failed container busy in pod busy-pod_default",
                "52s",
                5,
                "busy-pod.17a0c1"
            ])
        );
        // An events.k8s.io-style event: eventTime, series, reporting controller, no count.
        let new_style = json!({
            "metadata": {"name": "e2"},
            "involvedObject": {"kind": "Node"},
            "eventTime": UnixTime::from_secs(NOW - 400).rfc3339_micros(),
            "reportingComponent": "scheduler", "reason": "R", "type": "Normal", "message": "m"
        });
        let cells = cells_of(ResourceId::Events, &new_style);
        assert_eq!(cells[0], "6m40s");
        assert_eq!(cells[3], "node");
        assert_eq!(cells[5], "scheduler");
        assert_eq!(cells[7], "6m40s");
        assert_eq!(cells[8], 1);
    }

    #[test]
    fn workload_and_config_rows() {
        let deploy = json!({
            "metadata": {"name": "nginx", "creationTimestamp": ago(90)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                    {"name": "log", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            Value::Array(cells_of(ResourceId::Deployments, &deploy)),
            json!([
                "nginx",
                "2/3",
                3,
                2,
                "90s",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=nginx,env in (dev,prod)"
            ])
        );
        let rs = json!({
            "metadata": {"name": "nginx-5d8f", "creationTimestamp": ago(90)},
            "spec": {"replicas": 3, "selector": {}},
            "status": {"replicas": 3, "readyReplicas": 1}
        });
        assert_eq!(
            Value::Array(cells_of(ResourceId::ReplicaSets, &rs)),
            json!(["nginx-5d8f", 3, 3, 1, "90s", "", "", "<none>"])
        );
        let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(7200)},
            "data": {"ca.crt": "..."}, "binaryData": {"b": "AA=="}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::ConfigMaps, &cm)),
            json!(["kube-root-ca.crt", 2, "120m"])
        );
        let secret = json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::Secrets, &secret)),
            json!(["tls", "kubernetes.io/tls", 2, "<unknown>"])
        );
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(3 * 86400)}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::ServiceAccounts, &sa)),
            json!(["default", 0, "3d"])
        );
        let lease = json!({"metadata": {"name": "node-1", "creationTimestamp": ago(60)},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::Leases, &lease)),
            json!(["node-1", "node-1", "60s"])
        );
        let ns = json!({"metadata": {"name": "default", "creationTimestamp": ago(1)},
            "status": {"phase": "Active"}});
        assert_eq!(
            Value::Array(cells_of(ResourceId::Namespaces, &ns)),
            json!(["default", "Active", "1s"])
        );
    }

    #[test]
    fn endpoints_show_three_then_more() {
        let ep = json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
             "ports": [{"port": 80}, {"port": 443}]},
            {"addresses": [{"ip": "fd00::1"}]}
        ]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
        );
        let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
        assert_eq!(format_endpoints(&v6), "[fd00::1]:53");
        assert_eq!(format_endpoints(&json!({"subsets": []})), "<none>");
    }

    #[test]
    fn row_objects_and_table_shape() {
        let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "7"}, "data": {}});
        let meta = row(ResourceId::ConfigMaps, &obj, now(), IncludeObject::Metadata);
        assert_eq!(
            meta["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "7"}})
        );
        let full = row(ResourceId::ConfigMaps, &obj, now(), IncludeObject::Object);
        assert_eq!(full["object"], obj);
        let none = row(ResourceId::ConfigMaps, &obj, now(), IncludeObject::None);
        assert_eq!(none["object"], Value::Null);

        let t = table(
            ResourceId::ConfigMaps,
            vec![meta],
            "42",
            Some("tok"),
            Some(3),
            true,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "continue": "tok", "remainingItemCount": 3})
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][1]["name"], "Data");
        let later = table(ResourceId::ConfigMaps, vec![], "43", None, None, false);
        assert!(later["columnDefinitions"].is_null());
        assert_eq!(later["rows"], json!([]));
        assert_eq!(later["metadata"], json!({"resourceVersion": "43"}));
    }

    /// The LIST's direct writer encodes exactly the row `row` builds, for every kind with its
    /// own printer (conditions included) and every `includeObject`, with and without the raw
    /// encoding.
    #[test]
    fn written_rows_are_the_built_rows() {
        let pod = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2024-01-01T00:00:00Z",
                "managedFields": [{"manager": "m", "operation": "Update"}]},
            "spec": {"containers": [{"name": "a"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 2}]}});
        let node = json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let no_metadata = json!({"kind": "ConfigMap", "apiVersion": "v1"});
        for (resource, obj) in [
            (ResourceId::Pods, &pod),
            (ResourceId::Nodes, &node),
            (ResourceId::ConfigMaps, &no_metadata),
        ] {
            let raw = crate::json::to_vec(obj);
            let source = source::read(&raw).unwrap();
            for include in [
                IncludeObject::None,
                IncludeObject::Metadata,
                IncludeObject::Object,
            ] {
                let built = row(resource, obj, now(), include);
                let ways = [
                    (obj, RowBytes::default()),
                    (
                        obj,
                        RowBytes {
                            object: Some(&raw),
                            metadata: None,
                        },
                    ),
                    // What a LIST does: the tree without managedFields, the bytes as stored.
                    (
                        &source.object,
                        RowBytes {
                            object: Some(&raw),
                            metadata: source.metadata,
                        },
                    ),
                ];
                for (i, (tree, bytes)) in ways.into_iter().enumerate() {
                    let mut out = Vec::new();
                    write_row(resource, tree, bytes, now(), include, &mut out);
                    let written: Value = serde_json::from_slice(&out).unwrap();
                    assert_eq!(written, built, "{resource:?} {include:?} way {i}");
                }
            }
        }
    }

    #[test]
    fn pod_columns_match_kube() {
        let defs = column_definitions(ResourceId::Pods);
        let names: Vec<(&str, u64)> = defs
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
        );
        assert_eq!(defs[3]["type"], "string");
    }
}
