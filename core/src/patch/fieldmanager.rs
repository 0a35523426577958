//! kube-apiserver's field manager (k8s.io/apimachinery `managedfields` over
//! structured-merge-diff's `merge.Updater`): how a write changes `metadata.managedFields`.
//!
//! - Non-apply writes (create, update, every patch type, subresources) record an `Update` entry
//!   for their manager owning the fields they added or changed, and take those fields (and the
//!   ones they removed) from every other entry.
//! - Apply merges the configuration into the object; the applier's `Apply` entry owns exactly
//!   the configuration's fields; fields it applied before, no longer applies and nobody else
//!   owns are removed; changing a field another manager owns is a conflict unless forced.
//!
//! The steps keep kube's order (`NewDefaultFieldManager`): the version check, the
//! `kubectl.kubernetes.io/last-applied-configuration` bridge for the `kubectl` manager, the
//! `before-first-apply` manager for objects without ownership, the cap on `Update` entries,
//! manager identities, timestamps, and the server metadata no manager owns.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, Path, PathElement, describe_path, go_json};
use super::managed::{self, Entry, Operation};
use super::schema::{Ctx, has_status_subresource};
use super::typed;
use crate::error::Cause;
use crate::resource::{ResourceId, VIEWS, View};
use crate::{Error, UnixTime};

/// The manager kube records an object's existing fields under when it is first applied to.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// Client-side apply's annotation, bridged for the `kubectl` manager.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The one manager name kube bridges client-side apply for.
const KUBECTL: &str = "kubectl";

/// Metadata the server sets: never owned (kube's `stripMeta`, plus the deletion fields only the
/// delete path writes).
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The top-level fields a write to `subresource` may own: not `apiVersion` or `kind`; not
/// `status` on a main resource that has a `status` subresource; only `status` and metadata on
/// the `status` subresource (kube's reset fields, which the write's strategy puts back).
fn owns_root(resource: ResourceId, subresource: &str, key: &str) -> bool {
    match (subresource, key) {
        (_, "apiVersion" | "kind") => false,
        ("status", key) => matches!(key, "status" | "metadata"),
        ("", "status") => !has_status_subresource(resource),
        _ => true,
    }
}

/// The metadata fields any write may own: not what the server sets.
fn owns_meta(key: &str) -> bool {
    !SERVER_META.contains(&key)
}

/// What changed in the part of an object a write to `subresource` may own ([`owns_root`],
/// [`owns_meta`]), both seen in `kind`'s version. A field the type's Go zero value always has
/// reads as that value where absent.
fn compare_owned(
    live: &Map<String, Value>,
    next: &Map<String, Value>,
    kind: Kind,
    subresource: &str,
) -> typed::Comparison {
    let root = |key: &str| owns_root(kind.resource, subresource, key);
    let zero = kind.zero();
    let view = typed::View {
        root: &root,
        meta: &owns_meta,
        zero: &zero,
    };
    typed::compare_view(live, next, kind.ctx(), &view)
}

/// `set` without the fields a write to `subresource` resets (kube's ignore filter): status on a
/// main resource with a status subresource, all but status and metadata on the subresource.
/// `apiVersion`, `kind` and server metadata stay until `stripMeta`: while apply prunes, the
/// applier's `metadata.name` is what keeps `metadata` from being pruned whole.
fn owned_set(set: &FieldSet, resource: ResourceId, subresource: &str) -> FieldSet {
    let mut out = set.clone();
    out.retain(|pe| match pe {
        PathElement::Field(key) => match key.as_str() {
            "apiVersion" | "kind" | "metadata" => true,
            key => owns_root(resource, subresource, key),
        },
        _ => true,
    });
    out
}

/// `set` without the paths kube's `stripMeta` takes from the set of the manager that just
/// wrote (its `Difference` with them), in place: this runs on every write.
fn strip_meta(mut set: FieldSet) -> FieldSet {
    for field in ["apiVersion", "kind", "metadata"] {
        if let Some(node) = set.field_mut(field) {
            node.unmark();
        }
    }
    if let Some(meta) = set.field_mut("metadata") {
        for field in SERVER_META {
            if let Some(node) = meta.field_mut(field) {
                node.unmark();
            }
        }
    }
    set.prune();
    set
}

/// The `apiVersion` a managedFields entry records: the kind's, or for a custom resource (whose
/// versions share one store) the version the object is written in.
/// `written` is the object's own `apiVersion`.
fn api_version_of(resource: ResourceId, written: Option<&Value>) -> String {
    match resource {
        ResourceId::Custom(_) => written.and_then(Value::as_str).unwrap_or_default().into(),
        builtin => builtin.info().api_version().into_owned(),
    }
}

/// A version an object is seen in for field ownership: its kind's own (stored) version, or one
/// of the kind's views ([`VIEWS`]). kube records each manager's fields in the version it wrote
/// with, and compares an object in a manager's version to see what a write took from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kind {
    resource: ResourceId,
    view: Option<View>,
}

impl Kind {
    pub(crate) const fn new(resource: ResourceId, view: Option<View>) -> Self {
        Self { resource, view }
    }

    /// The `apiVersion` an entry written in this version records; `written` is the object's
    /// own `apiVersion` (a custom resource's versions share one kind).
    fn api_version(self, written: Option<&Value>) -> String {
        match self.view {
            Some(view) => view.info().api_version().into_owned(),
            None => api_version_of(self.resource, written),
        }
    }

    fn ctx(self) -> Ctx {
        match self.view {
            Some(view) => Ctx::View(view),
            None => Ctx::Root(self.resource),
        }
    }

    /// The Go zero value of the version's type (see [`zero_object`]).
    fn zero(self) -> Map<String, Value> {
        match self.view {
            Some(view) => zero_view(view),
            None => zero_object(self.resource),
        }
    }

    /// A stored object in this version's shape.
    fn shape(self, stored: &Map<String, Value>) -> Cow<'_, Map<String, Value>> {
        match self.view {
            Some(view) => Cow::Owned(match view.to_view(Value::Object(stored.clone())) {
                Value::Object(map) => map,
                _ => Map::new(),
            }),
            None => Cow::Borrowed(stored),
        }
    }

    /// An object in this version's shape in the stored shape.
    fn to_stored(self, obj: Map<String, Value>) -> Map<String, Value> {
        match self.view {
            Some(view) => match view.to_storage(Value::Object(obj)) {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            None => obj,
        }
    }

    /// `obj`, in `self`'s shape, in `to`'s.
    fn convert(self, obj: &Map<String, Value>, to: Kind) -> Map<String, Value> {
        if self == to {
            obj.clone()
        } else {
            to.shape(&self.to_stored(obj.clone())).into_owned()
        }
    }

    /// The version an entry recorded as `api_version` is compared in, when a write in `self`
    /// (recorded as `written`) can compare it: `self`, or another version of the kind in the
    /// same API group (kube converts through the group's internal type). kube cannot convert
    /// across groups (core `v1` and `events.k8s.io/v1` Events) nor to versions it does not
    /// serve, and forgets those entries; custom resources keep only the written version.
    fn version_of(self, written: &str, api_version: &str) -> Option<Kind> {
        if api_version == written {
            return Some(self);
        }
        if self.resource.is_custom() {
            return None;
        }
        fn group(api_version: &str) -> &str {
            api_version.rsplit_once('/').map_or("", |(g, _)| g)
        }
        if group(api_version) != group(written) {
            return None;
        }
        core::iter::once(None)
            .chain(
                VIEWS
                    .iter()
                    .filter(|r| r.id == self.resource)
                    .map(|r| r.view),
            )
            .map(|view| Kind::new(self.resource, view))
            .find(|k| k.api_version(None) == api_version)
    }
}

/// An object before a write (`None` for a create) and after it.
type BeforeAfter = (Option<Map<String, Value>>, Map<String, Value>);

/// What a write changed, as each version its entries are recorded in sees it: kube's
/// `Updater.update` converts the old and new object to every other manager's version and
/// compares them there.
struct Changes<'a> {
    written: Kind,
    written_api_version: &'a str,
    subresource: &'a str,
    /// The change in the written version.
    here: typed::Comparison,
    /// The object before (`None` for a create) and after, stored shape, for other versions.
    stored: &'a dyn Fn() -> BeforeAfter,
    /// Comparisons made in other versions, by `apiVersion`.
    others: Vec<(String, typed::Comparison)>,
}

impl Changes<'_> {
    /// The change in the version `api_version`, or `None` when kube cannot compare in it.
    fn seen_in(&mut self, api_version: &str) -> Option<&typed::Comparison> {
        let kind = self
            .written
            .version_of(self.written_api_version, api_version)?;
        if kind == self.written {
            return Some(&self.here);
        }
        let at = match self.others.iter().position(|(v, _)| v == api_version) {
            Some(at) => at,
            None => {
                let (before, after) = (self.stored)();
                let live = before.map_or_else(|| kind.zero(), |b| kind.shape(&b).into_owned());
                let next = kind.shape(&after);
                let changes = compare_owned(&live, &next, kind, self.subresource);
                self.others.push((api_version.into(), changes));
                self.others.len() - 1
            }
        };
        self.others.get(at).map(|(_, c)| c)
    }
}

/// The object as the Go zero value of its type serializes (the fields without `omitempty`):
/// what a create is compared against, so `f:spec` of a pod has no `.`.
fn zero_object(resource: ResourceId) -> Map<String, Value> {
    use ResourceId as R;
    let meta = serde_json::json!({"creationTimestamp": null});
    let pod_spec = serde_json::json!({"containers": null});
    let zero = match resource {
        R::Pods => serde_json::json!({"metadata": meta, "spec": pod_spec, "status": {}}),
        R::Nodes | R::Namespaces => serde_json::json!({"metadata": meta, "spec": {}, "status": {}}),
        R::Services => {
            serde_json::json!({"metadata": meta, "spec": {}, "status": {"loadBalancer": {}}})
        }
        R::Leases => serde_json::json!({"metadata": meta, "spec": {}}),
        R::Events => serde_json::json!({"metadata": meta, "involvedObject": {}, "source": {}}),
        R::Deployments => serde_json::json!({"metadata": meta, "spec": {"selector": null,
            "strategy": {}, "template": {"metadata": meta, "spec": pod_spec}}, "status": {}}),
        R::ReplicaSets => serde_json::json!({"metadata": meta, "spec": {"selector": null,
            "template": {"metadata": meta, "spec": pod_spec}}, "status": {}}),
        R::Endpoints | R::ConfigMaps | R::Secrets | R::ServiceAccounts => {
            serde_json::json!({"metadata": meta})
        }
        R::PodTemplates => {
            serde_json::json!({"metadata": meta, "template": {"metadata": meta, "spec": pod_spec}})
        }
        R::ReplicationControllers => {
            serde_json::json!({"metadata": meta, "spec": {}, "status": {"replicas": 0}})
        }
        R::Jobs => serde_json::json!({"metadata": meta, "spec": {"template": {"metadata": meta,
            "spec": pod_spec}}, "status": {}}),
        R::CronJobs => serde_json::json!({"metadata": meta, "spec": {"schedule": "",
            "jobTemplate": {"metadata": meta, "spec": {"template": {"metadata": meta,
            "spec": pod_spec}}}}, "status": {}}),
        R::ValidatingWebhookConfigurations | R::MutatingWebhookConfigurations => {
            serde_json::json!({"metadata": meta})
        }
        R::ResourceQuotas | R::ValidatingAdmissionPolicies => {
            serde_json::json!({"metadata": meta, "spec": {}, "status": {}})
        }
        R::ValidatingAdmissionPolicyBindings => serde_json::json!({"metadata": meta, "spec": {}}),
        R::PodDisruptionBudgets => serde_json::json!({"metadata": meta, "spec": {},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                "expectedPods": 0}}),
        R::RuntimeClasses => serde_json::json!({"metadata": meta, "handler": ""}),
        R::Roles | R::ClusterRoles => serde_json::json!({"metadata": meta, "rules": null}),
        R::RoleBindings | R::ClusterRoleBindings => serde_json::json!({"metadata": meta,
            "roleRef": {"apiGroup": "", "kind": "", "name": ""}}),
        R::CSINodes => serde_json::json!({"metadata": meta, "spec": {"drivers": null}}),
        R::CSIDrivers => serde_json::json!({"metadata": meta, "spec": {}}),
        R::VolumeAttachments => serde_json::json!({"metadata": meta,
            "spec": {"attacher": "", "source": {}, "nodeName": ""}, "status": {"attached": false}}),
        R::PriorityClasses => serde_json::json!({"metadata": meta, "value": 0}),
        R::CertificateSigningRequests => serde_json::json!({"metadata": meta,
            "spec": {"request": null, "signerName": ""}, "status": {}}),
        R::HorizontalPodAutoscalers => serde_json::json!({"metadata": meta,
            "spec": {"scaleTargetRef": {"kind": "", "name": ""}, "maxReplicas": 0},
            "status": {"desiredReplicas": 0}}),
        R::Ingresses => serde_json::json!({"metadata": meta, "spec": {},
            "status": {"loadBalancer": {}}}),
        R::IngressClasses => serde_json::json!({"metadata": meta, "spec": {}}),
        R::EndpointSlices => serde_json::json!({"metadata": meta, "addressType": "",
            "endpoints": null, "ports": null}),
        R::FlowSchemas => serde_json::json!({"metadata": meta,
            "spec": {"priorityLevelConfiguration": {"name": ""}}, "status": {}}),
        R::PriorityLevelConfigurations => {
            serde_json::json!({"metadata": meta, "spec": {"type": ""}, "status": {}})
        }
        R::CustomResourceDefinitions => serde_json::json!({"metadata": meta,
            "spec": {"group": "", "names": {"plural": "", "kind": ""}, "scope": "",
            "versions": null}, "status": {"conditions": null,
            "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": null}}),
        // Unstructured: no Go zero value beyond an empty object.
        R::Custom(_) => serde_json::json!({}),
    };
    zero.as_object().cloned().unwrap_or_default()
}

/// [`zero_object`] of a view's type, as [`View::to_view`] writes what Go always serializes.
fn zero_view(view: View) -> Map<String, Value> {
    let meta = serde_json::json!({"creationTimestamp": null});
    let zero = match view {
        View::EventsV1 => serde_json::json!({"metadata": meta, "eventTime": null,
            "regarding": {}, "deprecatedSource": {}}),
        View::AutoscalingV1 => serde_json::json!({"metadata": meta,
            "spec": {"scaleTargetRef": {"kind": "", "name": ""}, "maxReplicas": 0},
            "status": {"currentReplicas": 0, "desiredReplicas": 0}}),
    };
    zero.as_object().cloned().unwrap_or_default()
}

/// Adds what `zero` has and `obj` lacks, recursively through objects.
fn fill_zero(obj: &mut Map<String, Value>, zero: &Map<String, Value>) {
    for (k, z) in zero {
        match (obj.get_mut(k), z) {
            (None, _) => {
                obj.insert(k.clone(), z.clone());
            }
            (Some(Value::Object(o)), Value::Object(z)) => fill_zero(o, z),
            _ => {}
        }
    }
}

fn without_managed_fields(obj: &Value) -> Map<String, Value> {
    let mut map = obj.as_object().cloned().unwrap_or_default();
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    map
}

/// `namespace/name; group/version, Kind=kind`, as kube names an object in these errors.
fn describe_object(obj: &Value) -> String {
    let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let (group, version) = match text("/apiVersion").split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", text("/apiVersion")),
    };
    alloc::format!(
        "{}/{}; {group}/{version}, Kind={}",
        text("/metadata/namespace"),
        text("/metadata/name"),
        text("/kind")
    )
}

/// The other managers' sets lose the fields a write changed (an update always wins) and the
/// ones it removed, each as seen in its own version; `Err` with the clashes when the write is
/// an unforced apply. Entries of a version the write cannot be compared in go (kube forgets
/// them).
fn take_fields(
    entries: &mut Vec<Entry>,
    changes: &mut Changes<'_>,
    force: bool,
) -> Result<(), Vec<(Entry, FieldSet)>> {
    let mut conflicts = Vec::new();
    let mut kept = Vec::with_capacity(entries.len());
    for e in entries.iter() {
        let Some(seen) = changes.seen_in(&e.api_version) else {
            continue;
        };
        let changed = seen.modified.union(&seen.added);
        let clash = e.set.intersection(&changed);
        let mut left = e.clone();
        left.set = e.set.difference(&changed).difference(&seen.removed);
        if !clash.is_empty() {
            conflicts.push((e.clone(), clash));
        }
        kept.push(left);
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    kept.retain(|e| !e.set.is_empty());
    *entries = kept;
    Ok(())
}

/// Records a non-apply write (see [`super::record_update`]).
pub(crate) fn record_update(
    written: Kind,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: UnixTime,
) {
    if subresource == Some("scale") {
        record_scale(written.resource, old, new, manager);
        return;
    }
    let subresource = subresource.unwrap_or_default();
    let api_version = written.api_version(new.get("apiVersion"));
    let api_version = api_version.as_str();
    let stored = old.and_then(managed::raw);
    let live_entries = || managed::decode(stored).unwrap_or_default();
    // decodeLiveOrNew: a subresource never sets ownership; `[]` or `[{}]` clears it; a list
    // that is absent, empty or unreadable keeps the stored one.
    let sent = managed::raw(new);
    let mut entries = if !subresource.is_empty() || sent.is_none() || sent == stored {
        live_entries()
    } else if managed::is_reset(sent) {
        Vec::new()
    } else {
        match managed::decode(sent) {
            Ok(entries) if !entries.is_empty() => entries,
            _ => live_entries(),
        }
    };
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    // skipNonApplied: an object that has no ownership is tracked again only from its next
    // apply; a create starts tracking.
    if entries.is_empty() && old.is_some() {
        return;
    }
    let before = match old.map(Value::as_object) {
        Some(Some(before)) => Some(before),
        Some(None) => return,
        None => None,
    };
    let Some(after) = new.as_object() else {
        return;
    };
    let zero = written.zero();
    let live = before.map_or(Cow::Borrowed(&zero), |b| written.shape(b));
    let next = written.shape(after);
    let ctx = written.ctx();
    if !typed::check(&live, ctx, true).is_empty() || !typed::check(&next, ctx, true).is_empty() {
        // kube's UpdateNoErrors: the object is written without managedFields.
        return;
    }
    let stored = || (before.cloned(), after.clone());
    let mut changes = Changes {
        written,
        written_api_version: api_version,
        subresource,
        here: compare_owned(&live, &next, written, subresource),
        stored: &stored,
        others: Vec::new(),
    };
    let _ = take_fields(&mut entries, &mut changes, true);
    let mine = strip_meta(changes.here.modified.union(&changes.here.added));
    if !mine.is_empty() {
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let me = Entry::new(manager, Operation::Update, api_version, subresource, mine);
        match entries.iter_mut().find(|e| e.same_manager(&me)) {
            Some(e) => {
                e.set.union_with(&me.set);
                e.time = Some(now);
            }
            None => entries.push(Entry {
                time: Some(now),
                ..me
            }),
        }
    }
    managed::cap_updates(&mut entries);
    managed::encode(new, entries);
}

/// A write through the `scale` subresource (kube's `ScaleHandler`): when it changes
/// `spec.replicas`, the writer's `scale` entry owns them (kube writes it without a time) and
/// every other entry loses them; an object where nobody owns `spec.replicas` stays untracked.
fn record_scale(resource: ResourceId, old: Option<&Value>, new: &mut Value, manager: &str) {
    let api_version = api_version_of(resource, new.get("apiVersion"));
    let api_version = api_version.as_str();
    let replicas = [PathElement::field("spec"), PathElement::field("replicas")];
    let mut entries = managed::decode(old.and_then(managed::raw)).unwrap_or_default();
    let owned = entries.iter().any(|e| e.set.has(&replicas));
    let changed = old.and_then(|o| o.pointer("/spec/replicas")) != new.pointer("/spec/replicas");
    if owned && changed {
        managed::keep_version(&mut entries, api_version);
        let mut only = FieldSet::default();
        only.insert(&replicas);
        for e in &mut entries {
            e.set = e.set.difference(&only);
        }
        entries.retain(|e| !e.set.is_empty());
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let me = Entry::new(manager, Operation::Update, api_version, "scale", only);
        entries.retain(|e| !e.same_manager(&me));
        entries.push(me);
    }
    match old.and_then(managed::raw) {
        Some(_) if !entries.is_empty() => managed::encode(new, entries),
        _ => {
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

/// Server-side apply (see [`super::server_side_apply`]).
pub(crate) fn apply(
    written: Kind,
    subresource: Option<&str>,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: UnixTime,
) -> Result<Value, Error> {
    let resource = written.resource;
    let info = written.view.map_or_else(|| resource.info(), View::info);
    let subresource = subresource.unwrap_or_default();
    let Some(config) = applied.as_object() else {
        return Err(Error::BadRequest(
            "error decoding YAML: the applied configuration must be an object".into(),
        ));
    };
    let text = |key: &str| config.get(key).and_then(Value::as_str).unwrap_or_default();
    // A custom resource's path already matched its body's apiVersion and kind.
    if !resource.is_custom()
        && (text("apiVersion") != info.api_version() || text("kind") != info.kind)
    {
        let (group, version) = match text("apiVersion").split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", text("apiVersion")),
        };
        return Err(Error::BadRequest(alloc::format!(
            "invalid object type: {group}/{version}, Kind={}",
            text("kind")
        )));
    }
    if managed::raw(applied).is_some() {
        return Err(Error::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let ctx = written.ctx();
    let errors = typed::check(config, ctx, false);
    if !errors.is_empty() {
        return Err(Error::Unclassified(alloc::format!(
            "failed to create typed patch object ({}): {}",
            describe_object(applied),
            join_errors(&errors)
        )));
    }
    // The live object in the stored shape, and as the applier's version sees it.
    let live_stored = live.map(without_managed_fields);
    let live_obj = match &live_stored {
        Some(live) => written.shape(live),
        None => Cow::Owned(Map::new()),
    };
    if let Some(live) = live {
        let errors = typed::check(&live_obj, ctx, true);
        if !errors.is_empty() {
            return Err(Error::Unclassified(alloc::format!(
                "failed to create typed live object ({}): {}",
                describe_object(live),
                join_errors(&errors)
            )));
        }
    }
    let api_version = written.api_version(config.get("apiVersion"));
    let mut entries = managed::decode(live.and_then(managed::raw))
        .map_err(|e| Error::Unclassified(alloc::format!("failed to decode managed fields: {e}")))?;
    if entries.is_empty() && live.is_some() {
        // skipNonApplied: the fields that exist before the first apply get an owner.
        let changes = compare_owned(&written.zero(), &live_obj, written, subresource);
        let set = strip_meta(changes.modified.union(&changes.added));
        if !set.is_empty() {
            let mut first = Entry::new(
                BEFORE_FIRST_APPLY,
                Operation::Update,
                &api_version,
                subresource,
                set,
            );
            first.time = Some(now);
            entries.push(first);
        }
    }
    let target = Target {
        written,
        api_version: &api_version,
        subresource,
        live: live_stored.as_ref(),
    };
    let attempt = |force: bool| {
        merge_and_own(
            target,
            &live_obj,
            config,
            entries.clone(),
            manager,
            force,
            now,
        )
    };
    let outcome = match attempt(force) {
        Err(conflicts) if manager == KUBECTL => {
            // lastAppliedManager: fields client-side apply set, and still as it set them, may
            // move to kubectl's server-side apply without a conflict.
            match allowed_by_last_applied(written, &live_obj) {
                Some(allowed) => {
                    let left: Vec<(Entry, FieldSet)> = conflicts
                        .into_iter()
                        .map(|(e, set)| {
                            let kept = filter_paths(&set, |p| !allowed.has(p));
                            (e, kept)
                        })
                        .filter(|(_, set)| !set.is_empty())
                        .collect();
                    if left.is_empty() {
                        attempt(true)
                    } else {
                        Err(left)
                    }
                }
                None => Err(conflicts),
            }
        }
        other => other,
    };
    let Applied { object, entries } = outcome.map_err(|conflicts| conflict_error(&conflicts))?;
    // Back in the stored shape; an apply that changed nothing keeps the stored object as it is
    // (a round trip through a view's shape need not give back the same bytes).
    let mut object = match (object, live_stored) {
        (Some(changed), _) => written.to_stored(changed),
        (None, Some(live)) => live,
        (None, None) => Map::new(),
    };
    if manager == KUBECTL {
        sync_last_applied(&mut object, config);
    }
    let mut object = Value::Object(object);
    managed::encode(&mut object, entries);
    Ok(object)
}

fn join_errors(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => {
            let mut out = String::from("errors:");
            for e in many {
                out.push_str("\n  ");
                out.push_str(e);
            }
            out
        }
    }
}

/// The subset of `set` whose member paths pass `keep`.
fn filter_paths(set: &FieldSet, keep: impl Fn(&[PathElement]) -> bool) -> FieldSet {
    let mut out = FieldSet::default();
    for path in set.paths() {
        if keep(&path) {
            out.insert(&path);
        }
    }
    out
}

/// What an apply writes to: the version it was written in (its `apiVersion` as recorded), the
/// subresource (empty for the main resource), and the live object in the stored shape.
#[derive(Clone, Copy)]
struct Target<'a> {
    written: Kind,
    api_version: &'a str,
    subresource: &'a str,
    live: Option<&'a Map<String, Value>>,
}

/// What an apply produced: the object in the applier's shape when it changed, and the entries.
struct Applied {
    object: Option<Map<String, Value>>,
    entries: Vec<Entry>,
}

/// structured-merge-diff's `Updater.Apply` with the layers kube wraps around it: merge, own,
/// prune, take over or refuse, strip server metadata, stamp the time if the object changed.
/// `live` and `config` are in the applier's version's shape.
fn merge_and_own(
    target: Target<'_>,
    live: &Map<String, Value>,
    config: &Map<String, Value>,
    mut entries: Vec<Entry>,
    manager: &str,
    force: bool,
    now: UnixTime,
) -> Result<Applied, Vec<(Entry, FieldSet)>> {
    let Target {
        written,
        api_version,
        subresource,
        live: live_stored,
    } = target;
    let resource = written.resource;
    let ctx = written.ctx();
    let mut config = config.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        // Values the server decides; kube takes them from the live object.
        for field in [
            "creationTimestamp",
            "generation",
            "uid",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(field);
        }
    }
    // What the (sub)resource's writes reset is merged (admission sees it, the strategy then
    // puts it back) but never owned.
    let merged = typed::merge(live, &config, ctx);
    let me = Entry::new(
        manager,
        Operation::Apply,
        api_version,
        subresource,
        FieldSet::default(),
    );
    let previous = entries
        .iter()
        .position(|e| e.same_manager(&me))
        .map(|i| entries.remove(i));
    let applied_set = owned_set(&typed::field_set(&config, ctx), resource, subresource);
    let merged = match previous.as_ref() {
        // Nothing applied last time is missing now: pruning would keep everything.
        Some(last)
            if last.api_version != api_version || !last.set.difference(&applied_set).is_empty() =>
        {
            prune(&merged, &entries, &applied_set, last, target)
        }
        _ => merged,
    };
    let stored = || (live_stored.cloned(), written.to_stored(merged.clone()));
    let mut changes = Changes {
        written,
        written_api_version: api_version,
        subresource,
        here: compare_owned(live, &merged, written, subresource),
        stored: &stored,
        others: Vec::new(),
    };
    take_fields(&mut entries, &mut changes, force)?;
    let changed = !typed::equal(&Value::Object(live.clone()), &Value::Object(merged.clone()));
    let mine = strip_meta(applied_set);
    if !mine.is_empty() {
        let time = if changed {
            Some(now)
        } else {
            previous.and_then(|p| p.time)
        };
        entries.push(Entry {
            time,
            set: mine,
            ..me
        });
    }
    let object = changed.then(|| drop_new_nulls(merged, live));
    Ok(Applied { object, entries })
}

/// Removes what the applier applied last time, no longer applies, and no manager owns, keeping
/// everything else (`Updater.prune` with `addBackOwnedItems` and `addBackDanglingItems`). kube
/// prunes in the version the applier's last set was recorded in and adds back what each
/// version's managers own as seen in that version; `merged` and the result are in the
/// applier's version.
fn prune(
    merged: &Map<String, Value>,
    others: &[Entry],
    applied: &FieldSet,
    last: &Entry,
    target: Target<'_>,
) -> Map<String, Value> {
    let written = target.written;
    let Some(at) = written.version_of(target.api_version, &last.api_version) else {
        return merged.clone();
    };
    let merged_at = written.convert(merged, at);
    let last_set = last.set.with_named_fields();
    let mut pruned = typed::remove(&merged_at, &last_set, at.ctx());
    // What each version's managers own (the applier's new set included), the pruned version
    // first.
    let mut owned: Vec<(Kind, FieldSet)> = alloc::vec![(at, FieldSet::default())];
    let sets = core::iter::once((written, applied)).chain(others.iter().filter_map(|e| {
        written
            .version_of(target.api_version, &e.api_version)
            .map(|k| (k, &e.set))
    }));
    for (kind, set) in sets {
        match owned.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, all)) => all.union_with(set),
            None => owned.push((kind, set.clone())),
        }
    }
    let (mut merged_now, mut now_at) = (merged_at.clone(), at);
    for (kind, set) in owned {
        let merged_k = now_at.convert(&merged_now, kind);
        let pruned_k = now_at.convert(&pruned, kind);
        let ctx = kind.ctx();
        let merged_set = typed::field_set(&merged_k, ctx).with_named_fields();
        let pruned_set = typed::field_set(&pruned_k, ctx).with_named_fields();
        let unowned_removed = merged_set.difference(&pruned_set.union(&set.with_named_fields()));
        pruned = typed::remove(&merged_k, &unowned_removed, ctx);
        (merged_now, now_at) = (merged_k, kind);
    }
    // addBackDanglingItems: in the pruned version, what pruning dropped beyond the last set
    // comes back.
    let ctx = at.ctx();
    let pruned_at = now_at.convert(&pruned, at);
    let merged_set = typed::field_set(&merged_at, ctx).with_named_fields();
    let pruned_set = typed::field_set(&pruned_at, ctx).with_named_fields();
    let dangling = merged_set.difference(&pruned_set).intersection(&last_set);
    at.convert(&typed::remove(&merged_at, &dangling, ctx), written)
}

/// The object kube stores from the merged value: a `null` that apply produced (a null the
/// configuration applied, a map or list pruning emptied) leaves the field out, as decoding
/// into the Go type does; nulls the live object already had stay. The comparisons before this
/// see the nulls, as kube's do.
fn drop_new_nulls(merged: Map<String, Value>, live: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in merged {
        let before = live.get(&k);
        let kept = match v {
            Value::Null if before != Some(&Value::Null) => continue,
            Value::Object(m) => {
                let empty = Map::new();
                let inner = before.and_then(Value::as_object).unwrap_or(&empty);
                Value::Object(drop_new_nulls(m, inner))
            }
            Value::Array(items) if items.iter().any(Value::is_null) => {
                let had_nulls = before
                    .and_then(Value::as_array)
                    .is_some_and(|l| l.iter().any(Value::is_null));
                Value::Array(
                    items
                        .into_iter()
                        .filter(|i| had_nulls || !i.is_null())
                        .collect(),
                )
            }
            other => other,
        };
        out.insert(k, kept);
    }
    out
}

/// The fields the `kubectl.kubernetes.io/last-applied-configuration` annotation names and the
/// live object still has as it says (`allowedConflictsFromLastApplied`).
fn allowed_by_last_applied(written: Kind, live: &Map<String, Value>) -> Option<FieldSet> {
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED)?
        .as_str()
        .filter(|t| !t.is_empty())?;
    let last: Value = serde_json::from_str(text).ok()?;
    let last = last.as_object()?;
    if last.get("apiVersion").and_then(Value::as_str)
        != Some(written.api_version(live.get("apiVersion")).as_str())
    {
        return None;
    }
    let ctx = written.ctx();
    if !typed::check(last, ctx, false).is_empty() {
        return None;
    }
    let mut live = live.clone();
    fill_zero(&mut live, &written.zero());
    let changes = typed::compare(last, &live, ctx);
    Some(
        typed::field_set(last, ctx)
            .difference(&changes.modified)
            .difference(&changes.added)
            .difference(&changes.removed),
    )
}

/// lastAppliedUpdater: kubectl's server-side apply keeps an existing client-side apply
/// annotation equal to what it applied, so a later client-side apply starts from it.
fn sync_last_applied(object: &mut Map<String, Value>, config: &Map<String, Value>) {
    let Some(annotations) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if annotations
        .get(LAST_APPLIED)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return;
    }
    let mut config = config.clone();
    if let Some(own) = config
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        own.remove(LAST_APPLIED);
    }
    let mut text = String::new();
    go_json(&Value::Object(config), &mut text);
    text.push('\n');
    annotations.insert(LAST_APPLIED.into(), Value::String(text));
}

/// kube's 409 for apply conflicts (`NewConflictError`): the message groups the fields by
/// manager, sorted by manager identity; one `FieldManagerConflict` cause per field.
fn conflict_error(conflicts: &[(Entry, FieldSet)]) -> Error {
    let mut by_manager: BTreeMap<String, (&Entry, Vec<Path>)> = BTreeMap::new();
    for (entry, set) in conflicts {
        by_manager
            .entry(entry.identifier())
            .or_insert_with(|| (entry, Vec::new()))
            .1
            .extend(set.paths());
    }
    let mut causes = Vec::new();
    let mut lines = Vec::new();
    for (entry, paths) in by_manager.values() {
        let who = entry.describe();
        lines.push(alloc::format!("conflicts with {who}:"));
        for path in paths {
            let field = describe_path(path);
            lines.push(alloc::format!("- {field}"));
            causes.push(Cause {
                reason: "FieldManagerConflict",
                message: alloc::format!("conflict with {who}"),
                field,
            });
        }
    }
    let message = match (causes.as_slice(), by_manager.values().next()) {
        ([one], Some((entry, _))) => alloc::format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entry.describe(),
            one.field
        ),
        _ => alloc::format!(
            "Apply failed with {} conflicts: {}",
            causes.len(),
            lines.join("\n")
        ),
    };
    Error::ApplyConflict { message, causes }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `strip_meta` works in place on every write; it must leave exactly what kube's `Difference`
    /// with the stripped paths leaves, whatever the set holds around them.
    #[test]
    fn strip_meta_in_place_equals_the_difference_with_the_stripped_paths() {
        let f = PathElement::field;
        let mut strip = FieldSet::default();
        for top in ["apiVersion", "kind", "metadata"] {
            strip.insert(&[f(top)]);
        }
        for field in SERVER_META {
            strip.insert(&[f("metadata"), f(field)]);
        }
        // Every combination of members among paths at, below and beside the stripped ones.
        let candidates: Vec<Vec<PathElement>> = alloc::vec![
            alloc::vec![f("apiVersion")],
            alloc::vec![f("kind")],
            alloc::vec![f("metadata")],
            alloc::vec![f("metadata"), f("name")],
            alloc::vec![f("metadata"), f("managedFields")],
            alloc::vec![f("metadata"), f("labels")],
            alloc::vec![f("metadata"), f("labels"), f("app")],
            alloc::vec![f("metadata"), f("name"), f("below")],
            alloc::vec![f("data")],
            alloc::vec![f("data"), f("key")],
            alloc::vec![f("spec"), PathElement::Index(0), f("kind")],
        ];
        for mask in 0u32..(1 << candidates.len()) {
            let mut set = FieldSet::default();
            for (i, path) in candidates.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    set.insert(path);
                }
            }
            let expected = set.difference(&strip);
            assert_eq!(strip_meta(set.clone()), expected, "set {:?}", set.paths());
        }
    }
}
