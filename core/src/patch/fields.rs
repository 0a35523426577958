//! Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply, after
//! sigs.k8s.io/structured-merge-diff as kube-apiserver 1.32 runs it: sets of owned paths, the
//! comparison of two objects, apply's merge and prune, conflicts between managers.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use super::schema::{Ctx, ListKind, has_status_subresource, key_default};
use crate::resource::ResourceId;
use crate::{Error, UnixTime};

/// kube-apiserver keeps at most this many `Update` entries; older ones merge into
/// `ancient-changes` (fieldmanager's capmanagers).
const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT: &str = "ancient-changes";

/// A set of field paths, stored as the FieldsV1 tree: children keyed by encoded path elements
/// (`f:name`, `k:{"name":"x"}`, `v:"x"`), `member` marking the node's own path as in the set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// Decodes a FieldsV1 object (unknown shapes decode as empty).
    pub(crate) fn from_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Some(map) = v.as_object() {
            for (k, child) in map {
                if k == "." {
                    set.member = true;
                    continue;
                }
                let mut node = FieldSet::from_v1(child);
                if child.as_object().is_some_and(Map::is_empty) {
                    node.member = true;
                }
                set.children.insert(k.clone(), node);
            }
        }
        set
    }

    /// Encodes as FieldsV1 (`{}` for a leaf, `".": {}` for a member with children).
    pub(crate) fn to_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), json!({}));
        }
        for (k, child) in &self.children {
            map.insert(k.clone(), child.to_v1());
        }
        Value::Object(map)
    }

    fn node_mut(&mut self, path: &[String]) -> &mut FieldSet {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node
    }

    fn insert(&mut self, path: &[String]) {
        self.node_mut(path).member = true;
    }

    pub(crate) fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, child) in &other.children {
            self.children.entry(k.clone()).or_default().union(child);
        }
    }

    pub(crate) fn difference(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (k, child) in &other.children {
            if let Some(mine) = self.children.get_mut(k) {
                mine.difference(child);
            }
        }
        self.prune();
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, child) in &self.children {
            if let Some(theirs) = other.children.get(k) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(k.clone(), both);
                }
            }
        }
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    fn prune(&mut self) {
        self.children.retain(|_, c| {
            c.prune();
            !c.is_empty()
        });
    }

    fn get(&self, path: &[String]) -> Option<&FieldSet> {
        let mut node = self;
        for pe in path {
            node = node.children.get(pe)?;
        }
        Some(node)
    }

    /// Every member path, in FieldsV1 order.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        fn walk(set: &FieldSet, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            if set.member {
                out.push(prefix.clone());
            }
            for (k, child) in &set.children {
                prefix.push(k.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// Whether some member lies strictly below `path`.
    fn has_member_below(&self, path: &[String]) -> bool {
        self.get(path)
            .is_some_and(|n| n.children.values().any(|c| !c.is_empty()))
    }
}

fn field_pe(name: &str) -> String {
    let mut s = String::from("f:");
    s.push_str(name);
    s
}

fn value_pe(v: &Value) -> String {
    let mut s = String::from("v:");
    s.push_str(&v.to_string());
    s
}

/// `k:{...}` for an item of an associative list, or `None` if a key field is missing.
fn key_pe(item: &Value, keys: &[&str]) -> Option<String> {
    let obj = item.as_object()?;
    let mut key = Map::new();
    for k in keys {
        match obj.get(*k) {
            Some(v) if !v.is_null() => {
                key.insert((*k).into(), v.clone());
            }
            _ => {
                key.insert((*k).into(), Value::String(key_default(k)?.into()));
            }
        }
    }
    let mut s = String::from("k:");
    s.push_str(&Value::Object(key).to_string());
    Some(s)
}

/// Identities of a list's items, or `None` when the list cannot be treated as keyed.
fn item_ids(items: &[Value], kind: ListKind) -> Option<Vec<String>> {
    match kind {
        ListKind::Atomic => None,
        ListKind::Set => Some(items.iter().map(value_pe).collect()),
        ListKind::Map { keys, .. } => items.iter().map(|i| key_pe(i, keys)).collect(),
    }
}

fn first_positions(ids: &[String]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        out.entry(id.as_str()).or_insert(i);
    }
    out
}

/// Maps that apply replaces whole (`+mapType=atomic` / `+structType=atomic`).
fn atomic_map(ctx: Ctx, key: &str) -> bool {
    ctx.is_atomic(key)
}

/// The set of fields an applied configuration specifies (structured-merge-diff `ToFieldSet`).
fn config_set(obj: &Map<String, Value>, ctx: Ctx) -> Result<FieldSet, Error> {
    let mut set = FieldSet::default();
    for (k, v) in obj {
        let mut node = FieldSet::default();
        match v {
            Value::Object(m) if !m.is_empty() && !atomic_map(ctx, k) => {
                node = config_set(m, ctx.child(k))?;
            }
            Value::Array(items) if !items.is_empty() => {
                let (kind, item_ctx) = ctx.list(k);
                match kind {
                    ListKind::Atomic => node.member = true,
                    ListKind::Set => {
                        for item in items {
                            node.insert(&[value_pe(item)]);
                        }
                    }
                    ListKind::Map { keys, .. } => {
                        for item in items {
                            let (Some(pe), Some(fields)) = (key_pe(item, keys), item.as_object())
                            else {
                                return Err(Error::BadRequest(alloc::format!(
                                    "associative list {k} with keys {keys:?} has an element that omits a key field"
                                )));
                            };
                            let mut child = config_set(fields, item_ctx)?;
                            child.member = true;
                            node.children.insert(pe, child);
                        }
                    }
                }
            }
            _ => node.member = true,
        }
        set.children.insert(field_pe(k), node);
    }
    Ok(set)
}

/// What changed between two versions of an object (structured-merge-diff `Comparison`).
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

fn is_empty_ish(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn compare_leaf(l: Option<&Value>, r: Option<&Value>, path: &[String], out: &mut Changes) {
    match (l, r) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if a != b => out.modified.insert(path),
        _ => {}
    }
}

fn compare_field(
    ctx: Ctx,
    key: &str,
    l: Option<&Value>,
    r: Option<&Value>,
    path: &mut Vec<String>,
    out: &mut Changes,
) {
    if is_empty_ish(l) && is_empty_ish(r) {
        // Both empty: a leaf, so `{}` versus absent still counts (smd's emptyPromoteToLeaf).
        compare_leaf(l, r, path, out);
        return;
    }
    let as_obj = |v: Option<&Value>| matches!(v, None | Some(Value::Null | Value::Object(_)));
    let as_list = |v: Option<&Value>| matches!(v, None | Some(Value::Null | Value::Array(_)));
    if as_obj(l) && as_obj(r) && !atomic_map(ctx, key) {
        mark_presence(l, r, path, out);
        let empty = Map::new();
        let lm = l.and_then(Value::as_object).unwrap_or(&empty);
        let rm = r.and_then(Value::as_object).unwrap_or(&empty);
        compare_maps(
            ctx.child(key),
            Some(lm).filter(|_| l.is_some()),
            rm,
            r.is_some(),
            path,
            out,
        );
        return;
    }
    if as_list(l) && as_list(r) {
        let (kind, item_ctx) = ctx.list(key);
        let empty = Vec::new();
        let la = l.and_then(Value::as_array).unwrap_or(&empty);
        let ra = r.and_then(Value::as_array).unwrap_or(&empty);
        if let (Some(lids), Some(rids)) = (item_ids(la, kind), item_ids(ra, kind)) {
            mark_presence(l, r, path, out);
            let r_index = first_positions(&rids);
            let l_index = first_positions(&lids);
            for (id, item) in lids.iter().zip(la) {
                let other = r_index.get(id.as_str()).and_then(|&i| ra.get(i));
                compare_item(kind, item_ctx, id, Some(item), other, path, out);
            }
            for (id, item) in rids.iter().zip(ra) {
                if !l_index.contains_key(id.as_str()) {
                    compare_item(kind, item_ctx, id, None, Some(item), path, out);
                }
            }
            return;
        }
    }
    compare_leaf(l, r, path, out);
}

/// A granular map or list that is absent on one side is itself added or removed (the `.`
/// member in FieldsV1); `null` counts as present, like the zero values of Go structs.
fn mark_presence(l: Option<&Value>, r: Option<&Value>, path: &[String], out: &mut Changes) {
    match (l, r) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        _ => {}
    }
}

fn compare_item(
    kind: ListKind,
    item_ctx: Ctx,
    id: &str,
    l: Option<&Value>,
    r: Option<&Value>,
    path: &mut Vec<String>,
    out: &mut Changes,
) {
    path.push(id.into());
    match kind {
        ListKind::Map { .. } => {
            mark_presence(l, r, path, out);
            let empty = Map::new();
            let rm = r.and_then(Value::as_object).unwrap_or(&empty);
            let lm = l.and_then(Value::as_object);
            compare_maps(item_ctx, lm, rm, r.is_some(), path, out);
        }
        _ => compare_leaf(l.map(|_| &Value::Null), r.map(|_| &Value::Null), path, out),
    }
    path.pop();
}

fn compare_maps(
    ctx: Ctx,
    l: Option<&Map<String, Value>>,
    r: &Map<String, Value>,
    r_present: bool,
    path: &mut Vec<String>,
    out: &mut Changes,
) {
    let empty = Map::new();
    let lm = l.unwrap_or(&empty);
    for (k, lv) in lm {
        path.push(field_pe(k));
        compare_field(ctx, k, Some(lv), r.get(k).filter(|_| r_present), path, out);
        path.pop();
    }
    for (k, rv) in r {
        if !lm.contains_key(k) {
            path.push(field_pe(k));
            compare_field(ctx, k, None, Some(rv), path, out);
            path.pop();
        }
    }
}

/// Compares two whole objects.
pub(crate) fn compare(old: &Value, new: &Value, resource: ResourceId) -> Changes {
    let mut out = Changes::default();
    let empty = Map::new();
    let l = old.as_object().unwrap_or(&empty);
    let r = new.as_object().unwrap_or(&empty);
    compare_maps(
        Ctx::Root(resource),
        Some(l),
        r,
        true,
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// The object as the Go zero value of its type serializes: the fields without `omitempty`.
/// Comparing a created object against it gives kube's FieldsV1 (`f:spec` without `.`).
fn zero_object(resource: ResourceId) -> Value {
    use ResourceId as R;
    let meta = json!({"creationTimestamp": null});
    let pod_spec = json!({"containers": null});
    match resource {
        R::Pods => json!({"metadata": meta, "spec": pod_spec, "status": {}}),
        R::Nodes | R::Namespaces => json!({"metadata": meta, "spec": {}, "status": {}}),
        R::Services => json!({"metadata": meta, "spec": {}, "status": {"loadBalancer": {}}}),
        R::Leases => json!({"metadata": meta, "spec": {}}),
        R::Events => json!({"metadata": meta, "involvedObject": {}, "source": {}}),
        R::Deployments => json!({"metadata": meta, "spec": {"selector": null, "strategy": {},
            "template": {"metadata": meta, "spec": pod_spec}}, "status": {}}),
        R::ReplicaSets => json!({"metadata": meta, "spec": {"selector": null,
            "template": {"metadata": meta, "spec": pod_spec}}, "status": {}}),
        R::Endpoints | R::ConfigMaps | R::Secrets | R::ServiceAccounts => json!({"metadata": meta}),
        R::CustomResourceDefinitions => json!({"metadata": meta,
            "spec": {"group": "", "names": {"plural": "", "kind": ""}, "scope": "", "versions": null},
            "status": {"conditions": null, "acceptedNames": {"plural": "", "kind": ""},
                "storedVersions": null}}),
        R::PodTemplates => {
            json!({"metadata": meta, "template": {"metadata": meta, "spec": pod_spec}})
        }
        R::ReplicationControllers => {
            json!({"metadata": meta, "spec": {}, "status": {"replicas": 0}})
        }
        R::Jobs => json!({"metadata": meta, "spec": {"template": {"metadata": meta,
            "spec": pod_spec}}, "status": {}}),
        R::CronJobs => json!({"metadata": meta, "spec": {"schedule": "", "jobTemplate": {
            "metadata": meta, "spec": {"template": {"metadata": meta, "spec": pod_spec}}}},
            "status": {}}),
        // Unstructured: no Go zero value beyond an empty object.
        R::Custom(_) => json!({}),
    }
}

/// The `apiVersion` a managedFields entry records: the kind's, or for a custom resource (whose
/// versions share one store) the version the object is written in.
fn api_version_of(resource: ResourceId, obj: &Value) -> String {
    match resource {
        ResourceId::Custom(_) => text(obj, "apiVersion"),
        builtin => String::from(builtin.info().api_version()),
    }
}

/// Metadata the server sets; never owned, never taken from an applied configuration.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The part of an object whose fields are tracked for a write to `subresource`: without
/// `apiVersion`, `kind` and server metadata; the main resource without `status` when `status` is
/// a subresource; the `status` subresource only `status`.
fn tracked(obj: &Value, resource: ResourceId, subresource: Option<&str>) -> Value {
    let mut out = Map::new();
    let Some(map) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in map {
        let keep = match subresource {
            Some("status") => k == "status",
            _ => {
                let reset_status =
                    k == "status" && subresource.is_none() && has_status_subresource(resource);
                !(matches!(k.as_str(), "apiVersion" | "kind") || reset_status)
            }
        };
        if !keep {
            continue;
        }
        if k == "metadata"
            && let Some(meta) = v.as_object()
        {
            let mut meta = meta.clone();
            meta.retain(|mk, _| !SERVER_META.contains(&mk.as_str()));
            out.insert(k.clone(), Value::Object(meta));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: String,
    pub(crate) set: FieldSet,
}

impl Entry {
    fn same_manager(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager.clone()));
        map.insert("operation".into(), Value::String(self.operation.clone()));
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            map.insert("time".into(), Value::String(t.clone()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.set.to_v1());
        if !self.subresource.is_empty() {
            map.insert(
                "subresource".into(),
                Value::String(self.subresource.clone()),
            );
        }
        Value::Object(map)
    }

    /// How kube-apiserver names a manager in conflict messages (`printManager`).
    fn describe(&self) -> String {
        let mut s = alloc::format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&alloc::format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(" using ");
            s.push_str(&self.api_version);
        }
        s
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Decodes `metadata.managedFields`; `None` when absent or empty.
fn decode(obj: &Value) -> Option<Vec<Entry>> {
    let list = obj.pointer("/metadata/managedFields")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    Some(
        list.iter()
            .filter(|e| !text(e, "manager").is_empty() || !text(e, "operation").is_empty())
            .map(|e| Entry {
                manager: text(e, "manager"),
                operation: text(e, "operation"),
                api_version: text(e, "apiVersion"),
                time: e.get("time").and_then(Value::as_str).map(String::from),
                subresource: text(e, "subresource"),
                set: e.get("fieldsV1").map(FieldSet::from_v1).unwrap_or_default(),
            })
            .collect(),
    )
}

/// Sorts as kube-apiserver encodes: operation, time, manager, apiVersion, subresource. RFC 3339
/// UTC strings of one precision sort like the times they name.
fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|p, q| {
        (
            &p.operation,
            &p.time,
            &p.manager,
            &p.api_version,
            &p.subresource,
        )
            .cmp(&(
                &q.operation,
                &q.time,
                &q.manager,
                &q.api_version,
                &q.subresource,
            ))
    });
    let Some(meta) = obj.as_object_mut().and_then(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
    }) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Merges the oldest `Update` entries into `ancient-changes` beyond the cap.
fn cap_updates(entries: &mut Vec<Entry>) {
    let mut updates: Vec<usize> = (0..entries.len())
        .filter(|&i| entries.get(i).is_some_and(|e| e.operation == "Update"))
        .collect();
    if updates.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updates.sort_by(|&a, &b| {
        let t = |i: usize| entries.get(i).and_then(|e| e.time.clone());
        t(a).cmp(&t(b))
    });
    let excess = updates.len() - MAX_UPDATE_MANAGERS + 1;
    let mut doomed: Vec<usize> = updates.into_iter().take(excess).collect();
    doomed.sort_unstable();
    let mut ancient = Entry {
        manager: ANCIENT.into(),
        operation: "Update".into(),
        api_version: String::new(),
        time: None,
        subresource: String::new(),
        set: FieldSet::default(),
    };
    for i in doomed.into_iter().rev() {
        if i < entries.len() {
            let e = entries.remove(i);
            ancient.set.union(&e.set);
            ancient.api_version = e.api_version;
        }
    }
    if let Some(existing) = entries
        .iter_mut()
        .find(|e| e.same_manager(ANCIENT, "Update", ""))
    {
        existing.set.union(&ancient.set);
    } else {
        entries.push(ancient);
    }
}

/// Records a non-apply write (see [`super::record_update`]).
pub(crate) fn record_update(
    resource: ResourceId,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: UnixTime,
) {
    let reset = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|l| l.len() == 1 && l.first().is_some_and(|e| e == &json!({})));
    let mut entries = if reset {
        Vec::new()
    } else {
        // A client that sends no managedFields (or writes a subresource) keeps the stored ones.
        match (subresource, decode(new)) {
            (None, Some(mine)) => mine,
            _ => old.and_then(decode).unwrap_or_default(),
        }
    };
    let zero;
    let old = match old {
        Some(o) => o,
        None => {
            zero = zero_object(resource);
            &zero
        }
    };
    let changes = compare(
        &tracked(old, resource, subresource),
        &tracked(new, resource, subresource),
        resource,
    );
    let mut mine = changes.modified.clone();
    mine.union(&changes.added);
    for e in &mut entries {
        // The write wins every field it changed (an update is always forced).
        e.set.difference(&mine);
        e.set.difference(&changes.removed);
    }
    let sub = subresource.unwrap_or_default();
    if !mine.is_empty() {
        let api_version = api_version_of(resource, new);
        match entries
            .iter_mut()
            .find(|e| e.same_manager(manager, "Update", sub) && e.api_version == api_version)
        {
            Some(e) => {
                e.set.union(&mine);
                e.time = Some(now.rfc3339());
            }
            None => entries.push(Entry {
                manager: manager.into(),
                operation: "Update".into(),
                api_version: api_version.clone(),
                time: Some(now.rfc3339()),
                subresource: sub.into(),
                set: mine,
            }),
        }
    }
    entries.retain(|e| !e.set.is_empty());
    cap_updates(&mut entries);
    encode(new, entries);
}

/// structured-merge-diff's rendering of a path, e.g. `.spec.containers[name="web"].image`.
fn describe_path(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            s.push('[');
            if let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) {
                let parts: Vec<String> = keys
                    .iter()
                    .map(|(n, v)| alloc::format!("{n}={v}"))
                    .collect();
                s.push_str(&parts.join(","));
            }
            s.push(']');
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str("[=");
            s.push_str(v);
            s.push(']');
        }
    }
    s
}

fn conflict_detail(conflicts: &[(Entry, Vec<Vec<String>>)]) -> String {
    let count: usize = conflicts.iter().map(|(_, p)| p.len()).sum();
    if let [(entry, paths)] = conflicts
        && let [path] = paths.as_slice()
    {
        return alloc::format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entry.describe(),
            describe_path(path)
        );
    }
    let mut lines = Vec::new();
    for (entry, paths) in conflicts {
        lines.push(alloc::format!("conflicts with {}:", entry.describe()));
        for p in paths {
            lines.push(alloc::format!("- {}", describe_path(p)));
        }
    }
    alloc::format!("Apply failed with {count} conflicts: {}", lines.join("\n"))
}

/// Server-side apply (see [`super::server_side_apply`]).
pub(crate) fn apply(
    resource: ResourceId,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: UnixTime,
) -> Result<Value, Error> {
    let Some(config) = applied.as_object() else {
        return Err(Error::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    };
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(Error::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let mut config = config.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| {
            !matches!(
                k.as_str(),
                "managedFields"
                    | "creationTimestamp"
                    | "generation"
                    | "uid"
                    | "selfLink"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
            )
        });
    }
    let api_version = api_version_of(resource, applied);
    let tracked_config = tracked(&Value::Object(config.clone()), resource, None);
    let new_set = match tracked_config.as_object() {
        Some(m) => config_set(m, Ctx::Root(resource))?,
        None => FieldSet::default(),
    };
    let mine = |set: FieldSet| Entry {
        manager: manager.into(),
        operation: "Apply".into(),
        api_version: api_version.clone(),
        time: Some(now.rfc3339()),
        subresource: String::new(),
        set,
    };
    let Some(live) = live else {
        let mut created = Value::Object(config);
        encode(&mut created, alloc::vec![mine(new_set)]);
        return Ok(created);
    };
    let Some(live_map) = live.as_object() else {
        return Err(Error::Internal("stored object is not a JSON object".into()));
    };
    if has_status_subresource(resource) {
        // Status is written through its subresource; apply to the main resource keeps it.
        config.remove("status");
    }
    let mut entries = decode(live).unwrap_or_default();
    let mut live_clean = live_map.clone();
    if let Some(meta) = live_clean
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        meta.remove("managedFields");
    }
    let mut merged = Value::Object(merge_map(&live_clean, &config, Ctx::Root(resource))?);
    let position = entries
        .iter()
        .position(|e| e.same_manager(manager, "Apply", ""));
    let (last_set, previous_time) = match position {
        Some(i) if i < entries.len() => {
            let e = entries.remove(i);
            (e.set, e.time)
        }
        _ => (FieldSet::default(), None),
    };
    // Prune what this manager applied before, omits now, and nobody else owns.
    let mut owned = new_set.clone();
    for e in &entries {
        owned.union(&e.set);
    }
    let mut gone = last_set.clone();
    gone.difference(&owned);
    for path in gone.paths() {
        if !owned.has_member_below(&path) {
            remove_path(&mut merged, &path);
        }
    }
    let before = Value::Object(live_clean);
    let changes = compare(
        &tracked(&before, resource, None),
        &tracked(&merged, resource, None),
        resource,
    );
    let mut changed = changes.modified.clone();
    changed.union(&changes.added);
    let mut conflicts = Vec::new();
    for e in &entries {
        let clash = e.set.intersection(&changed);
        if !clash.is_empty() {
            conflicts.push((e.clone(), clash));
        }
    }
    if !conflicts.is_empty() && !force {
        let listed: Vec<(Entry, Vec<Vec<String>>)> = conflicts
            .into_iter()
            .map(|(e, set)| (e, set.paths()))
            .collect();
        let info = resource.info();
        let resource_name = if info.group.is_empty() {
            info.plural.to_string()
        } else {
            alloc::format!("{}.{}", info.plural, info.group)
        };
        return Err(Error::ApplyConflict {
            resource: resource_name,
            name: text(live.get("metadata").unwrap_or(&Value::Null), "name"),
            message: conflict_detail(&listed),
        });
    }
    for e in &mut entries {
        e.set.difference(&changed);
        e.set.difference(&changes.removed);
    }
    let mut me = mine(new_set);
    if merged == before && previous_time.is_some() {
        me.time = previous_time;
    }
    entries.push(me);
    entries.retain(|e| !e.set.is_empty());
    encode(&mut merged, entries);
    Ok(merged)
}

/// Apply's merge: granular maps merge, associative lists merge by key, sets union, everything
/// else (scalars, atomic lists and maps) is replaced; `null` removes.
fn merge_map(
    live: &Map<String, Value>,
    config: &Map<String, Value>,
    ctx: Ctx,
) -> Result<Map<String, Value>, Error> {
    let mut out = live.clone();
    for (k, cv) in config {
        let merged = match (out.get(k), cv) {
            (_, Value::Null) => {
                out.remove(k);
                continue;
            }
            (Some(Value::Object(lo)), Value::Object(co)) if !atomic_map(ctx, k) => {
                Value::Object(merge_map(lo, co, ctx.child(k))?)
            }
            (Some(Value::Array(la)), Value::Array(ca)) => {
                let (kind, item_ctx) = ctx.list(k);
                Value::Array(merge_list(la, ca, kind, item_ctx)?)
            }
            _ => cv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Ok(out)
}

/// structured-merge-diff's list merge: shared items follow the applied order, items only the
/// live list has keep their places, new items come where the configuration puts them.
fn merge_list(
    live: &[Value],
    config: &[Value],
    kind: ListKind,
    item_ctx: Ctx,
) -> Result<Vec<Value>, Error> {
    if kind == ListKind::Atomic {
        return Ok(config.to_vec());
    }
    let Some(rids) = item_ids(config, kind) else {
        return Err(Error::BadRequest(
            "an item of an associative list omits a key field".into(),
        ));
    };
    let Some(lids) = item_ids(live, kind) else {
        // A stored list without keys cannot be merged by key: the configuration replaces it.
        return Ok(config.to_vec());
    };
    let live_index = first_positions(&lids);
    let config_index = first_positions(&rids);
    let in_live = |id: &String| live_index.get(id.as_str()).copied();
    let in_config = |id: &String| config_index.get(id.as_str()).copied();
    let mut shared = rids.iter().filter(|id| in_live(id).is_some());
    let mut next_shared = shared.next();
    let mut done: BTreeSet<&String> = BTreeSet::new();
    let mut out = Vec::with_capacity(live.len() + config.len());
    let merge_item = |l: Option<&Value>, r: &Value| -> Result<Value, Error> {
        match (l, r, kind) {
            (Some(Value::Object(lo)), Value::Object(ro), ListKind::Map { .. }) => {
                Ok(Value::Object(merge_map(lo, ro, item_ctx)?))
            }
            _ => Ok(r.clone()),
        }
    };
    let (mut li, mut ri) = (0usize, 0usize);
    // Each round consumes at least one item, so this bound is never the reason to stop.
    for _ in 0..=(live.len() + config.len()) {
        let (l_id, r_id) = (lids.get(li), rids.get(ri));
        if l_id.is_none() && r_id.is_none() {
            break;
        }
        if let (Some(l), Some(r)) = (l_id, r_id) {
            if l == r {
                if let (Some(lv), Some(rv)) = (live.get(li), config.get(ri)) {
                    out.push(merge_item(Some(lv), rv)?);
                }
                done.insert(r);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_config(l).is_some() && next_shared.is_some_and(|n| n != l) {
                li += 1;
                continue;
            }
        }
        if let Some(l) = l_id {
            if in_config(l).is_none() {
                if let Some(lv) = live.get(li) {
                    out.push(lv.clone());
                }
                li += 1;
                continue;
            } else if done.contains(&l) {
                li += 1;
                continue;
            }
        }
        if let Some(r) = r_id {
            done.insert(r);
            let lv = in_live(r).and_then(|i| live.get(i));
            if let Some(rv) = config.get(ri) {
                out.push(merge_item(lv, rv)?);
            }
            ri += 1;
            if next_shared == Some(r) {
                next_shared = shared.next();
            }
        } else {
            li += 1;
        }
    }
    Ok(out)
}

/// Removes the field or item an encoded path names; emptied `labels`/`annotations` go too.
fn remove_path(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if let Some(f) = first.strip_prefix("f:") {
        let Some(map) = v.as_object_mut() else { return };
        if rest.is_empty() {
            map.remove(f);
        } else if let Some(child) = map.get_mut(f) {
            remove_path(child, rest);
            if matches!(f, "labels" | "annotations") && child.as_object().is_some_and(Map::is_empty)
            {
                map.remove(f);
            }
        }
        return;
    }
    let Some(items) = v.as_array_mut() else {
        return;
    };
    let matches_pe = |item: &Value| -> bool {
        if let Some(k) = first.strip_prefix("k:") {
            let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else {
                return false;
            };
            keys.iter().all(|(name, want)| match item.get(name) {
                Some(got) => got == want,
                None => key_default(name).is_some_and(|d| want.as_str() == Some(d)),
            })
        } else {
            first
                .strip_prefix("v:")
                .is_some_and(|t| serde_json::from_str::<Value>(t).is_ok_and(|want| &want == item))
        }
    };
    if rest.is_empty() {
        items.retain(|item| !matches_pe(item));
    } else if let Some(item) = items.iter_mut().find(|i| matches_pe(i)) {
        remove_path(item, rest);
    }
}
