//! The resources this API server serves: one static table of the built-in kinds that routing,
//! discovery, OpenAPI, Table printing, validation and the store all read, so they cannot
//! disagree, and the custom resources CustomResourceDefinitions add at run time
//! ([`crate::crd`]), described by the same [`ResourceType`] borrowed from their definition.

/// One served resource type (a group/version/plural with its kind). Built-in kinds are
/// `ResourceType<'static>` rows of [`RESOURCES`]; a custom resource's borrows its names from
/// the installed definition it comes from ([`crate::crd::Served::resource_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType<'a> {
    /// Stable index into [`RESOURCES`] (or a custom resource's id); also the store's key
    /// prefix.
    pub id: ResourceId,
    /// API group; empty for the core group.
    pub group: &'a str,
    /// API version within the group.
    pub version: &'a str,
    /// Lower-case plural used in paths, e.g. `pods`.
    pub plural: &'a str,
    /// Lower-case singular, e.g. `pod`.
    pub singular: &'a str,
    /// `kind` of one object, e.g. `Pod`.
    pub kind: &'a str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `svc`, ...); a custom resource's are in its
    /// definition (discovery reads them there).
    pub short_names: &'a [&'a str],
    /// Discovery categories (`all` makes `kubectl get all` include it); a custom resource's
    /// are in its definition.
    pub categories: &'a [&'a str],
    /// Subresources served under `/{name}/{sub}`.
    pub subresources: &'a [&'a str],
    /// The definition serving a custom resource in this version; `None` for built-in kinds.
    pub custom: Option<&'a crate::crd::Served>,
    /// A second group-version of a built-in kind over the storage of the [`RESOURCES`] row
    /// with the same `id` ([`VIEWS`]); `None` for the storage rows and custom resources.
    pub view: Option<View>,
}

/// A built-in kind served in a group-version other than the one it is stored in, over the
/// same objects: one object, two shapes, converted field by field as kube's versioned types
/// convert through the internal one (`crate::view`). Resource versions, watches, TTLs and
/// every rule of the stored kind are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `events.k8s.io/v1` Event over core `v1` Events.
    EventsV1,
    /// `autoscaling/v1` HorizontalPodAutoscaler over `autoscaling/v2`'s.
    AutoscalingV1,
}

/// Index of a built-in resource type in [`RESOURCES`], or the id of a custom resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum ResourceId {
    Namespaces,
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
    CustomResourceDefinitions,
    ResourceQuotas,
    PodDisruptionBudgets,
    RuntimeClasses,
    FlowSchemas,
    PriorityLevelConfigurations,
    ValidatingWebhookConfigurations,
    MutatingWebhookConfigurations,
    ValidatingAdmissionPolicies,
    ValidatingAdmissionPolicyBindings,
    Roles,
    ClusterRoles,
    RoleBindings,
    ClusterRoleBindings,
    CSINodes,
    CSIDrivers,
    EndpointSlices,
    PriorityClasses,
    Ingresses,
    IngressClasses,
    VolumeAttachments,
    HorizontalPodAutoscalers,
    CertificateSigningRequests,
    /// The objects of one CustomResourceDefinition (all its versions share one storage), by
    /// the id the CRD registry gave the definition when it was installed; never reused.
    Custom(u32),
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
) -> ResourceType<'static> {
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
        custom: None,
        view: None,
    }
}

const NAMESPACES: ResourceType<'static> = core_v1(
    ResourceId::Namespaces,
    "namespaces",
    "namespace",
    "Namespace",
    false,
    &["ns"],
    &[],
    &["status", "finalize"],
);

/// The built-in resource types, in [`ResourceId`] order (`RESOURCES[i].id.index() == Some(i)`).
pub const RESOURCES: &[ResourceType<'static>] = &[
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
        &["token"],
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::CustomResourceDefinitions,
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        singular: "customresourcedefinition",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        subresources: &["status"],
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
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
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::Roles,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::ClusterRoles,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::RoleBindings,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::ClusterRoleBindings,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::CSINodes,
        group: "storage.k8s.io",
        version: "v1",
        plural: "csinodes",
        singular: "csinode",
        kind: "CSINode",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::CSIDrivers,
        group: "storage.k8s.io",
        version: "v1",
        plural: "csidrivers",
        singular: "csidriver",
        kind: "CSIDriver",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::EndpointSlices,
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::PriorityClasses,
        group: "scheduling.k8s.io",
        version: "v1",
        plural: "priorityclasses",
        singular: "priorityclass",
        kind: "PriorityClass",
        namespaced: false,
        short_names: &["pc"],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::Ingresses,
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        singular: "ingress",
        kind: "Ingress",
        namespaced: true,
        short_names: &["ing"],
        categories: &[],
        subresources: &["status"],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::IngressClasses,
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingressclasses",
        singular: "ingressclass",
        kind: "IngressClass",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::VolumeAttachments,
        group: "storage.k8s.io",
        version: "v1",
        plural: "volumeattachments",
        singular: "volumeattachment",
        kind: "VolumeAttachment",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &["status"],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::HorizontalPodAutoscalers,
        group: "autoscaling",
        version: "v2",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &["status"],
        custom: None,
        view: None,
    },
    ResourceType {
        id: ResourceId::CertificateSigningRequests,
        group: "certificates.k8s.io",
        version: "v1",
        plural: "certificatesigningrequests",
        singular: "certificatesigningrequest",
        kind: "CertificateSigningRequest",
        namespaced: false,
        short_names: &["csr"],
        categories: &[],
        subresources: &["approval", "status"],
        custom: None,
        view: None,
    },
];

/// The built-in kinds served a second time in another group-version over a [`RESOURCES`] row's
/// storage (the row whose `id` they share).
pub const VIEWS: &[ResourceType<'static>] = &[
    ResourceType {
        id: ResourceId::Events,
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        custom: None,
        view: Some(View::EventsV1),
    },
    ResourceType {
        id: ResourceId::HorizontalPodAutoscalers,
        group: "autoscaling",
        version: "v1",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &["status"],
        custom: None,
        view: Some(View::AutoscalingV1),
    },
];

impl View {
    /// The view's row of [`VIEWS`].
    pub fn info(self) -> &'static ResourceType<'static> {
        VIEWS
            .iter()
            .find(|r| r.view == Some(self))
            .unwrap_or(&UNNAMED_CUSTOM)
    }
}

/// Every served built-in resource type: the storage rows, then the views.
pub fn builtin() -> impl Iterator<Item = &'static ResourceType<'static>> {
    RESOURCES.iter().chain(VIEWS)
}

/// The API group versions served besides the core group, in discovery order; a group with
/// several versions lists its preferred one first.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("batch", "v1"),
    ("coordination.k8s.io", "v1"),
    ("apiextensions.k8s.io", "v1"),
    ("policy", "v1"),
    ("node.k8s.io", "v1"),
    ("flowcontrol.apiserver.k8s.io", "v1"),
    ("admissionregistration.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
    ("discovery.k8s.io", "v1"),
    ("scheduling.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
    // Two versions of one group: the preferred (storage) one first.
    ("autoscaling", "v2"),
    ("autoscaling", "v1"),
    ("certificates.k8s.io", "v1"),
];

/// What [`ResourceId::info`] answers for a custom resource, whose names live in its
/// definition: no names, no subresources. Callers that can meet custom resources take the type
/// from the routed request path instead.
const UNNAMED_CUSTOM: ResourceType<'static> = ResourceType {
    id: ResourceId::Custom(u32::MAX),
    group: "",
    version: "",
    plural: "",
    singular: "",
    kind: "",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    custom: None,
    view: None,
};

impl ResourceId {
    /// The position of a built-in type in [`RESOURCES`]; `None` for a custom resource.
    pub fn index(self) -> Option<usize> {
        if let ResourceId::Custom(_) = self {
            return None;
        }
        RESOURCES.iter().position(|r| r.id == self)
    }

    /// Whether this is a custom resource (a CustomResourceDefinition's).
    pub fn is_custom(self) -> bool {
        matches!(self, ResourceId::Custom(_))
    }

    /// The static description of a built-in resource type; for a custom resource, a
    /// placeholder without names ([`UNNAMED_CUSTOM`]).
    pub fn info(self) -> &'static ResourceType<'static> {
        match self.index().and_then(|i| RESOURCES.get(i)) {
            Some(info) => info,
            None => &UNNAMED_CUSTOM,
        }
    }
}

impl ResourceType<'_> {
    /// `apiVersion` of objects of this type (`v1`, `apps/v1`, `stable.example.com/v1`).
    pub fn api_version(&self) -> alloc::borrow::Cow<'static, str> {
        use alloc::borrow::Cow;
        match self.group {
            "" => Cow::Borrowed("v1"),
            "apps" => Cow::Borrowed("apps/v1"),
            "batch" => Cow::Borrowed("batch/v1"),
            "coordination.k8s.io" => Cow::Borrowed("coordination.k8s.io/v1"),
            "apiextensions.k8s.io" => Cow::Borrowed("apiextensions.k8s.io/v1"),
            "policy" => Cow::Borrowed("policy/v1"),
            "node.k8s.io" => Cow::Borrowed("node.k8s.io/v1"),
            "flowcontrol.apiserver.k8s.io" => Cow::Borrowed("flowcontrol.apiserver.k8s.io/v1"),
            "admissionregistration.k8s.io" => Cow::Borrowed("admissionregistration.k8s.io/v1"),
            "rbac.authorization.k8s.io" => Cow::Borrowed("rbac.authorization.k8s.io/v1"),
            "storage.k8s.io" => Cow::Borrowed("storage.k8s.io/v1"),
            "discovery.k8s.io" => Cow::Borrowed("discovery.k8s.io/v1"),
            "scheduling.k8s.io" => Cow::Borrowed("scheduling.k8s.io/v1"),
            "networking.k8s.io" => Cow::Borrowed("networking.k8s.io/v1"),
            "events.k8s.io" => Cow::Borrowed("events.k8s.io/v1"),
            "certificates.k8s.io" => Cow::Borrowed("certificates.k8s.io/v1"),
            group => Cow::Owned(alloc::format!("{group}/{}", self.version)),
        }
    }

    /// Whether `sub` is a served subresource.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// What a request path names: a built-in kind, or a custom resource in one served version.
#[derive(Debug, Clone)]
pub enum Resource {
    /// A row of [`RESOURCES`].
    Builtin(&'static ResourceType<'static>),
    /// A served version of an installed CustomResourceDefinition.
    Custom(crate::crd::Served),
}

impl Resource {
    /// The resource type (a custom one borrows its names from the definition held here).
    pub fn rt(&self) -> ResourceType<'_> {
        match self {
            Resource::Builtin(rt) => **rt,
            Resource::Custom(served) => served.resource_type(),
        }
    }
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.rt(), other.rt());
        a.id == b.id && a.version == b.version
    }
}

impl Eq for Resource {}

/// Finds a built-in resource by group, version and plural as it appears in a request path.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType<'static>> {
    builtin().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a built-in resource by its `apiVersion` and `kind`.
pub fn lookup_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType<'static>> {
    builtin().find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The kind as kube's errors name it (`GroupKind.String()`): `Deployment.apps`, `Pod` for the
/// core group.
pub fn group_kind(rt: &ResourceType<'_>) -> alloc::string::String {
    if rt.group.is_empty() {
        alloc::string::String::from(rt.kind)
    } else {
        alloc::format!("{}.{}", rt.kind, rt.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_id() {
        for (index, r) in RESOURCES.iter().enumerate() {
            assert_eq!(r.id.index(), Some(index), "{}", r.plural);
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
        assert_eq!(ResourceId::Custom(7).index(), None);
        assert_eq!(ResourceId::Custom(7).info().plural, "");
    }
}
