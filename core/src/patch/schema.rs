//! List and map semantics of the served types, read from the generated type table
//! (`crate::schema`, from the `x-kubernetes-*` extensions of the Kubernetes 1.32 OpenAPI):
//! strategic merge patch merges lists by `patchStrategy`/`patchMergeKey`, server-side apply by
//! `listType`/`listMapKey` and replaces atomic maps and structs whole.

use crate::resource::ResourceId;
use crate::schema::{Shape, Type};

pub(crate) use crate::schema::{ListKind, MergeKind, key_default};

/// Where a JSON value sits in its object: the type the patch code merges it as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ctx {
    /// A whole object of a served kind.
    Root(ResourceId),
    /// A whole object of a view of a served kind ([`crate::resource::VIEWS`]).
    View(crate::resource::View),
    /// A value of this shape (`Shape::Any` for unknown fields and free-form values).
    Of(Shape),
}

impl Ctx {
    fn shape(self) -> Shape {
        match self {
            Ctx::Root(resource) => Shape::Object(crate::schema::root(resource)),
            Ctx::View(view) => Shape::Object(crate::schema::view_root(view)),
            Ctx::Of(shape) => shape,
        }
    }

    fn object(self) -> Option<&'static Type> {
        match self.shape() {
            Shape::Object(t) => Some(t),
            _ => None,
        }
    }

    /// The context of the value stored under `key` in an object of this context.
    pub(crate) fn child(self, key: &str) -> Ctx {
        Ctx::Of(match self.shape() {
            Shape::Object(t) => t.field(key).map_or(Shape::Any, |f| f.shape),
            Shape::Map(item) => item.shape(),
            _ => Shape::Any,
        })
    }

    /// How server-side apply merges the list stored under `key`, and the context of its items.
    pub(crate) fn list(self, key: &str) -> (ListKind, Ctx) {
        match self.child(key).shape() {
            Shape::List(item, kind, _) => (kind, Ctx::Of(item.shape())),
            _ => (ListKind::Atomic, Ctx::Of(Shape::Any)),
        }
    }

    /// How strategic merge patch merges the list stored under `key`, and the context of its
    /// items.
    pub(crate) fn merge_list(self, key: &str) -> (MergeKind, Ctx) {
        match self.child(key).shape() {
            Shape::List(item, _, kind) => (kind, Ctx::Of(item.shape())),
            _ => (MergeKind::Replace, Ctx::Of(Shape::Any)),
        }
    }

    /// Whether server-side apply replaces and owns the map or struct stored under `key` as a
    /// whole (`x-kubernetes-map-type: atomic`: label selectors, `nodeSelector`, object
    /// references).
    pub(crate) fn is_atomic(self, key: &str) -> bool {
        self.object()
            .and_then(|t| t.field(key))
            .is_some_and(|f| f.atomic)
    }

    /// Whether an object of this context is replaced and owned whole where nothing names it
    /// atomic but its type: the items of a keyed list whose type is `x-kubernetes-map-type:
    /// atomic`. The generated table records atomicity on properties; the atomic types that
    /// the served kinds hold in keyed lists are these references (`ownerReferences`,
    /// `imagePullSecrets`, a ServiceAccount's `secrets`).
    pub(crate) fn is_atomic_object(self) -> bool {
        self.object().is_some_and(|t| {
            matches!(
                t.name,
                "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"
                    | "io.k8s.api.core.v1.ObjectReference"
                    | "io.k8s.api.core.v1.LocalObjectReference"
            )
        })
    }
}

/// Whether `resource` has a `status` subresource, so that writes to the main resource neither
/// change nor own `status` (kube-apiserver's reset fields).
pub(crate) fn has_status_subresource(resource: ResourceId) -> bool {
    resource.info().has_subresource("status")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smp(ctx: Ctx, key: &str) -> MergeKind {
        ctx.merge_list(key).0
    }

    fn ssa(ctx: Ctx, key: &str) -> ListKind {
        ctx.list(key).0
    }

    /// Every list the hand-written table named, as it named it (the generated table must answer
    /// the same), plus where it was wrong or silent.
    #[test]
    fn lists_merge_as_the_upstream_tags_say() {
        let pod = Ctx::Root(ResourceId::Pods);
        let spec = pod.child("spec");
        let meta = pod.child("metadata");
        let container = spec.list("containers").1;
        assert_eq!(smp(meta, "finalizers"), MergeKind::Set);
        assert_eq!(ssa(meta, "finalizers"), ListKind::Set);
        assert_eq!(smp(meta, "ownerReferences"), MergeKind::ByKey("uid"));
        assert_eq!(
            ssa(meta, "ownerReferences"),
            ListKind::Map { keys: &["uid"] }
        );
        for key in [
            "containers",
            "initContainers",
            "ephemeralContainers",
            "volumes",
        ] {
            assert_eq!(smp(spec, key), MergeKind::ByKey("name"), "{key}");
            assert_eq!(ssa(spec, key), ListKind::Map { keys: &["name"] }, "{key}");
        }
        for key in ["imagePullSecrets", "schedulingGates", "resourceClaims"] {
            assert_eq!(smp(spec, key), MergeKind::ByKey("name"), "{key}");
        }
        assert_eq!(smp(spec, "hostAliases"), MergeKind::ByKey("ip"));
        assert_eq!(
            smp(spec, "topologySpreadConstraints"),
            MergeKind::ByKey("topologyKey")
        );
        assert_eq!(
            ssa(spec, "topologySpreadConstraints"),
            ListKind::Map {
                keys: &["topologyKey", "whenUnsatisfiable"]
            }
        );
        assert_eq!(smp(container, "ports"), MergeKind::ByKey("containerPort"));
        assert_eq!(
            ssa(container, "ports"),
            ListKind::Map {
                keys: &["containerPort", "protocol"]
            }
        );
        assert_eq!(smp(container, "env"), MergeKind::ByKey("name"));
        assert_eq!(
            smp(container, "volumeMounts"),
            MergeKind::ByKey("mountPath")
        );
        assert_eq!(
            smp(container, "volumeDevices"),
            MergeKind::ByKey("devicePath")
        );
        assert_eq!(smp(container, "command"), MergeKind::Replace);
        assert_eq!(ssa(container, "args"), ListKind::Atomic);
        // Ephemeral containers merge their lists like containers.
        let ephemeral = spec.list("ephemeralContainers").1;
        assert_eq!(smp(ephemeral, "env"), MergeKind::ByKey("name"));
        let status = pod.child("status");
        assert_eq!(smp(status, "conditions"), MergeKind::ByKey("type"));
        assert_eq!(smp(status, "podIPs"), MergeKind::ByKey("ip"));
        // hostIPs: merged by ip in a strategic patch, but `listType=atomic` for apply.
        assert_eq!(smp(status, "hostIPs"), MergeKind::ByKey("ip"));
        assert_eq!(ssa(status, "hostIPs"), ListKind::Atomic);
        assert_eq!(
            smp(status, "resourceClaimStatuses"),
            MergeKind::ByKey("name")
        );
        let node = Ctx::Root(ResourceId::Nodes);
        assert_eq!(smp(node.child("spec"), "podCIDRs"), MergeKind::Set);
        assert_eq!(smp(node.child("spec"), "taints"), MergeKind::Replace);
        assert_eq!(
            smp(node.child("status"), "conditions"),
            MergeKind::ByKey("type")
        );
        assert_eq!(
            smp(node.child("status"), "addresses"),
            MergeKind::ByKey("type")
        );
        let service = Ctx::Root(ResourceId::Services);
        assert_eq!(
            smp(service.child("spec"), "ports"),
            MergeKind::ByKey("port")
        );
        assert_eq!(
            ssa(service.child("spec"), "ports"),
            ListKind::Map {
                keys: &["port", "protocol"]
            }
        );
        assert_eq!(
            smp(Ctx::Root(ResourceId::ServiceAccounts), "secrets"),
            MergeKind::ByKey("name")
        );
        for resource in [
            ResourceId::Services,
            ResourceId::Namespaces,
            ResourceId::Deployments,
            ResourceId::ReplicaSets,
        ] {
            let status = Ctx::Root(resource).child("status");
            assert_eq!(smp(status, "conditions"), MergeKind::ByKey("type"));
        }
        // A Deployment's pod template is a pod spec.
        let template = Ctx::Root(ResourceId::Deployments)
            .child("spec")
            .child("template");
        assert_eq!(
            smp(template.child("spec"), "containers"),
            MergeKind::ByKey("name")
        );
        assert_eq!(
            smp(template.child("metadata"), "finalizers"),
            MergeKind::Set
        );
        // Unknown fields and free-form maps hold atomic lists.
        assert_eq!(smp(spec, "bogus"), MergeKind::Replace);
        assert_eq!(ssa(meta.child("labels"), "x"), ListKind::Atomic);
        assert_eq!(
            smp(Ctx::Root(ResourceId::ConfigMaps).child("data"), "k"),
            MergeKind::Replace
        );
    }

    #[test]
    fn atomic_maps_and_structs() {
        let deployment = Ctx::Root(ResourceId::Deployments).child("spec");
        assert!(deployment.is_atomic("selector"));
        assert!(!deployment.is_atomic("template"));
        assert!(
            Ctx::Root(ResourceId::ReplicaSets)
                .child("spec")
                .is_atomic("selector")
        );
        let service = Ctx::Root(ResourceId::Services).child("spec");
        assert!(service.is_atomic("selector"));
        assert!(!service.is_atomic("ports"));
        let pod = Ctx::Root(ResourceId::Pods).child("spec");
        assert!(pod.is_atomic("nodeSelector"));
        assert!(!pod.is_atomic("affinity"));
        assert!(Ctx::Root(ResourceId::Events).is_atomic("involvedObject"));
        assert!(!Ctx::Root(ResourceId::Pods).is_atomic("metadata"));
        assert!(!pod.child("bogus").is_atomic("x"));
    }

    #[test]
    fn items_of_atomic_reference_types_are_atomic() {
        let meta = Ctx::Root(ResourceId::Pods).child("metadata");
        assert!(meta.list("ownerReferences").1.is_atomic_object());
        let spec = Ctx::Root(ResourceId::Pods).child("spec");
        assert!(spec.list("imagePullSecrets").1.is_atomic_object());
        assert!(!spec.list("containers").1.is_atomic_object());
        assert!(
            Ctx::Root(ResourceId::ServiceAccounts)
                .list("secrets")
                .1
                .is_atomic_object()
        );
    }

    #[test]
    fn key_defaults_come_from_the_openapi_defaults() {
        assert_eq!(key_default("protocol"), Some("TCP"));
        // `type` keys conditions with a "" default in apps but none in metav1.Condition (the
        // admission policies' status): one table for every list cannot give it one.
        assert_eq!(key_default("type"), None);
        assert_eq!(key_default("name"), None);
        assert_eq!(key_default("containerPort"), None);
    }
}
