//! Static list semantics of the served types: which lists merge by key, which are sets and which
//! are atomic, taken from the `patchStrategy`/`patchMergeKey` and `listType`/`listMapKey` tags in
//! k8s.io/api (core/v1, apps/v1, coordination/v1).

use crate::resource::ResourceId;

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Replaced as a whole (no strategy; `listType=atomic`).
    Atomic,
    /// A list of scalars merged as a set (`patchStrategy:"merge"` on `[]string`; `listType=set`).
    Set,
    /// A list of objects merged by key. `smp` is the strategic-merge `patchMergeKey`; `keys` are
    /// the server-side-apply `listMapKey`s (a superset, e.g. `containerPort` + `protocol`).
    Map {
        smp: &'static str,
        keys: &'static [&'static str],
    },
}

/// The Go type a JSON object stands for, as far as list semantics need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    Root(ResourceId),
    Meta,
    PodSpec,
    Container,
    PodStatus,
    NodeSpec,
    NodeStatus,
    ServiceSpec,
    /// A status whose only keyed list is `conditions` (by `type`).
    Conditions,
    WorkloadSpec,
    Template,
    Other,
}

const NAME: &[&str] = &["name"];
const BY_NAME: ListKind = ListKind::Map {
    smp: "name",
    keys: NAME,
};
const BY_TYPE: ListKind = ListKind::Map {
    smp: "type",
    keys: &["type"],
};
const BY_IP: ListKind = ListKind::Map {
    smp: "ip",
    keys: &["ip"],
};

impl Ctx {
    /// The context of the object stored under `key` in an object of this context.
    pub(crate) fn child(self, key: &str) -> Ctx {
        use ResourceId as R;
        match (self, key) {
            (Ctx::Root(_) | Ctx::Template, "metadata") => Ctx::Meta,
            (Ctx::Root(R::Pods) | Ctx::Template, "spec") => Ctx::PodSpec,
            (Ctx::Root(R::Pods), "status") => Ctx::PodStatus,
            (Ctx::Root(R::Nodes), "spec") => Ctx::NodeSpec,
            (Ctx::Root(R::Nodes), "status") => Ctx::NodeStatus,
            (Ctx::Root(R::Services), "spec") => Ctx::ServiceSpec,
            (Ctx::Root(R::Deployments | R::ReplicaSets), "spec") => Ctx::WorkloadSpec,
            (
                Ctx::Root(R::Services | R::Namespaces | R::Deployments | R::ReplicaSets),
                "status",
            ) => Ctx::Conditions,
            (Ctx::WorkloadSpec, "template") => Ctx::Template,
            _ => Ctx::Other,
        }
    }

    /// How the list stored under `key` merges, and the context of its items.
    pub(crate) fn list(self, key: &str) -> (ListKind, Ctx) {
        let kind = match (self, key) {
            (Ctx::Meta, "finalizers") => ListKind::Set,
            (Ctx::Meta, "ownerReferences") => ListKind::Map {
                smp: "uid",
                keys: &["uid"],
            },
            (Ctx::Root(ResourceId::ServiceAccounts), "secrets") => BY_NAME,
            (Ctx::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
                return (BY_NAME, Ctx::Container);
            }
            (
                Ctx::PodSpec,
                "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims",
            ) => BY_NAME,
            (Ctx::PodSpec, "hostAliases") => BY_IP,
            (Ctx::PodSpec, "topologySpreadConstraints") => ListKind::Map {
                smp: "topologyKey",
                keys: &["topologyKey", "whenUnsatisfiable"],
            },
            (Ctx::Container, "ports") => ListKind::Map {
                smp: "containerPort",
                keys: &["containerPort", "protocol"],
            },
            (Ctx::Container, "env") => BY_NAME,
            (Ctx::Container, "volumeMounts") => ListKind::Map {
                smp: "mountPath",
                keys: &["mountPath"],
            },
            (Ctx::Container, "volumeDevices") => ListKind::Map {
                smp: "devicePath",
                keys: &["devicePath"],
            },
            (Ctx::PodStatus, "conditions") => BY_TYPE,
            (Ctx::PodStatus, "podIPs" | "hostIPs") => BY_IP,
            (Ctx::PodStatus, "resourceClaimStatuses") => BY_NAME,
            (Ctx::NodeSpec, "podCIDRs") => ListKind::Set,
            (Ctx::NodeStatus | Ctx::Conditions, "conditions") => BY_TYPE,
            (Ctx::NodeStatus, "addresses") => BY_TYPE,
            (Ctx::ServiceSpec, "ports") => ListKind::Map {
                smp: "port",
                keys: &["port", "protocol"],
            },
            _ => ListKind::Atomic,
        };
        (kind, Ctx::Other)
    }
}

/// Whether `resource` has a `status` subresource, so that writes to the main resource neither
/// change nor own `status` (kube-apiserver's reset fields).
pub(crate) fn has_status_subresource(resource: ResourceId) -> bool {
    resource.info().has_subresource("status")
}

/// The SSA default of a missing key field, as the OpenAPI defaults give it (`protocol: TCP`).
pub(crate) fn key_default(key: &str) -> Option<&'static str> {
    match key {
        "protocol" => Some("TCP"),
        _ => None,
    }
}
