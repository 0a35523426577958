//! The resources this API server serves: one static table that routing, discovery, OpenAPI,
//! Table printing, validation and the store all read, so they cannot disagree.

/// One served resource type (a group/version/plural with its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// Stable index into [`RESOURCES`]; also the store's key prefix.
    pub id: ResourceId,
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Lower-case plural used in paths, e.g. `pods`.
    pub plural: &'static str,
    /// Lower-case singular, e.g. `pod`.
    pub singular: &'static str,
    /// `kind` of one object, e.g. `Pod`.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `svc`, ...).
    pub short_names: &'static [&'static str],
    /// Discovery categories (`all` makes `kubectl get all` include it).
    pub categories: &'static [&'static str],
    /// Subresources served under `/{name}/{sub}`.
    pub subresources: &'static [&'static str],
}

/// Index of a resource type in [`RESOURCES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum ResourceId {
    Namespaces = 0,
    Pods,
    Nodes,
    Services,
    Endpoints,
    ConfigMaps,
    Secrets,
    ServiceAccounts,
    Events,
    Leases,
    Deployments,
    ReplicaSets,
    PodTemplates,
    ReplicationControllers,
    Jobs,
    CronJobs,
    ResourceQuotas,
    PodDisruptionBudgets,
    RuntimeClasses,
    FlowSchemas,
    PriorityLevelConfigurations,
    ValidatingWebhookConfigurations,
    MutatingWebhookConfigurations,
    ValidatingAdmissionPolicies,
    ValidatingAdmissionPolicyBindings,
}

/// Every verb a served resource supports, in discovery order.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

#[allow(clippy::too_many_arguments)]
const fn core_v1(
    id: ResourceId,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        id,
        group: "",
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        categories,
        subresources,
    }
}

const NAMESPACES: ResourceType = core_v1(
    ResourceId::Namespaces,
    "namespaces",
    "namespace",
    "Namespace",
    false,
    &["ns"],
    &[],
    &["status", "finalize"],
);

/// All served resource types; `RESOURCES[id as usize].id == id`.
pub const RESOURCES: &[ResourceType] = &[
    NAMESPACES,
    core_v1(
        ResourceId::Pods,
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["all"],
        &["status", "binding", "eviction"],
    ),
    core_v1(
        ResourceId::Nodes,
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        &[],
        &["status"],
    ),
    core_v1(
        ResourceId::Services,
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["all"],
        &["status"],
    ),
    core_v1(
        ResourceId::Endpoints,
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        &[],
        &[],
    ),
    core_v1(
        ResourceId::ConfigMaps,
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
        &[],
    ),
    core_v1(
        ResourceId::Secrets,
        "secrets",
        "secret",
        "Secret",
        true,
        &[],
        &[],
        &[],
    ),
    core_v1(
        ResourceId::ServiceAccounts,
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
        &[],
    ),
    core_v1(
        ResourceId::Events,
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        &[],
        &[],
    ),
    ResourceType {
        id: ResourceId::Leases,
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        id: ResourceId::Deployments,
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &["status", "scale"],
    },
    ResourceType {
        id: ResourceId::ReplicaSets,
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &["status", "scale"],
    },
    core_v1(
        ResourceId::PodTemplates,
        "podtemplates",
        "podtemplate",
        "PodTemplate",
        true,
        &[],
        &[],
        &[],
    ),
    core_v1(
        ResourceId::ReplicationControllers,
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
        &["rc"],
        &["all"],
        &["status", "scale"],
    ),
    ResourceType {
        id: ResourceId::Jobs,
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        subresources: &["status"],
    },
    ResourceType {
        id: ResourceId::CronJobs,
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        singular: "cronjob",
        kind: "CronJob",
        namespaced: true,
        short_names: &["cj"],
        categories: &["all"],
        subresources: &["status"],
    },
    core_v1(
        ResourceId::ResourceQuotas,
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        &[],
        &["status"],
    ),
    ResourceType {
        id: ResourceId::PodDisruptionBudgets,
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        subresources: &["status"],
    },
    ResourceType {
        id: ResourceId::RuntimeClasses,
        group: "node.k8s.io",
        version: "v1",
        plural: "runtimeclasses",
        singular: "runtimeclass",
        kind: "RuntimeClass",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        id: ResourceId::FlowSchemas,
        group: "flowcontrol.apiserver.k8s.io",
        version: "v1",
        plural: "flowschemas",
        singular: "flowschema",
        kind: "FlowSchema",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &["status"],
    },
    ResourceType {
        id: ResourceId::PriorityLevelConfigurations,
        group: "flowcontrol.apiserver.k8s.io",
        version: "v1",
        plural: "prioritylevelconfigurations",
        singular: "prioritylevelconfiguration",
        kind: "PriorityLevelConfiguration",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &["status"],
    },
    ResourceType {
        id: ResourceId::ValidatingWebhookConfigurations,
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "validatingwebhookconfigurations",
        singular: "validatingwebhookconfiguration",
        kind: "ValidatingWebhookConfiguration",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        subresources: &[],
    },
    ResourceType {
        id: ResourceId::MutatingWebhookConfigurations,
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "mutatingwebhookconfigurations",
        singular: "mutatingwebhookconfiguration",
        kind: "MutatingWebhookConfiguration",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        subresources: &[],
    },
    ResourceType {
        id: ResourceId::ValidatingAdmissionPolicies,
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "validatingadmissionpolicies",
        singular: "validatingadmissionpolicy",
        kind: "ValidatingAdmissionPolicy",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        subresources: &["status"],
    },
    ResourceType {
        id: ResourceId::ValidatingAdmissionPolicyBindings,
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "validatingadmissionpolicybindings",
        singular: "validatingadmissionpolicybinding",
        kind: "ValidatingAdmissionPolicyBinding",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        subresources: &[],
    },
];

/// The API groups served besides the core group, in discovery order, each with one version.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("batch", "v1"),
    ("coordination.k8s.io", "v1"),
    ("policy", "v1"),
    ("node.k8s.io", "v1"),
    ("flowcontrol.apiserver.k8s.io", "v1"),
    ("admissionregistration.k8s.io", "v1"),
];

impl ResourceId {
    /// The static description of this resource type.
    pub fn info(self) -> &'static ResourceType {
        // `RESOURCES` is ordered by `ResourceId` (a unit test checks it); `get` keeps this
        // panic-free regardless.
        match RESOURCES.get(self as usize) {
            Some(info) => info,
            None => &NAMESPACES,
        }
    }
}

impl ResourceType {
    /// `apiVersion` of objects of this type (`v1`, `apps/v1`).
    pub fn api_version(&self) -> &'static str {
        match self.group {
            "" => "v1",
            "apps" => "apps/v1",
            "batch" => "batch/v1",
            "coordination.k8s.io" => "coordination.k8s.io/v1",
            "policy" => "policy/v1",
            "node.k8s.io" => "node.k8s.io/v1",
            "flowcontrol.apiserver.k8s.io" => "flowcontrol.apiserver.k8s.io/v1",
            "admissionregistration.k8s.io" => "admissionregistration.k8s.io/v1",
            _ => self.version,
        }
    }

    /// Whether `sub` is a served subresource.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// Finds a resource by group, version and plural as it appears in a request path.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by its `apiVersion` and `kind`.
pub fn lookup_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_id() {
        for (index, r) in RESOURCES.iter().enumerate() {
            assert_eq!(r.id as usize, index, "{}", r.plural);
            assert_eq!(r.id.info().plural, r.plural);
        }
        assert_eq!(
            lookup("apps", "v1", "deployments").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(
            lookup_kind("coordination.k8s.io/v1", "Lease").map(|r| r.plural),
            Some("leases")
        );
        assert!(lookup("", "v1", "widgets").is_none());
    }
}
