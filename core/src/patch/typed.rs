//! Walks over objects that follow the list and map semantics of `schema`, after
//! structured-merge-diff's `typed` package: the set of fields an object specifies
//! (`ToFieldSet`), what changed between two versions (`Compare`), apply's merge (`Merge`), the
//! removal of a set of fields (`RemoveItems`) and the checks an applied configuration must pass.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, PathElement, compare_values};
use super::schema::{Ctx, ListKind, key_default};
use crate::gostr::go_quote;

/// How a field is treated, from the schema and the shape of its values.
#[derive(Clone, Copy)]
enum Kind {
    /// An object merged field by field (`granular`), or replaced whole (`atomic`).
    Map {
        ctx: Ctx,
        atomic: bool,
    },
    List {
        kind: ListKind,
        items: Ctx,
    },
    Scalar,
}

fn kind_of(ctx: Ctx, key: &str, l: Option<&Value>, r: Option<&Value>) -> Kind {
    let any = |f: fn(&Value) -> bool| l.is_some_and(f) || r.is_some_and(f);
    if any(Value::is_object) {
        let child = ctx.child(key);
        Kind::Map {
            ctx: child,
            atomic: ctx.is_atomic(key) || child.is_atomic_object(),
        }
    } else if any(Value::is_array) {
        let (kind, items) = ctx.list(key);
        Kind::List { kind, items }
    } else {
        Kind::Scalar
    }
}

fn empty_map(v: Option<&Map<String, Value>>) -> bool {
    v.is_none_or(Map::is_empty)
}

fn empty_list(v: Option<&Vec<Value>>) -> bool {
    v.is_none_or(Vec::is_empty)
}

/// The identity of a list item: its key fields (defaults filled in) or, in a set, its value.
pub(crate) fn item_element(item: &Value, kind: ListKind) -> Result<PathElement, String> {
    match kind {
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListKind::Map { keys, .. } => {
            let obj = match item {
                Value::Object(obj) => obj,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                _ => {
                    return Err("associative list with keys may not have non-map elements".into());
                }
            };
            let mut fields: Vec<(String, Value)> = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match (obj.get(*key), key_default(key)) {
                    (Some(v), _) => v.clone(),
                    (None, Some(default)) => Value::String(default.into()),
                    (None, None) => {
                        let mut msg = String::from(
                            "associative list with keys has an element that omits key field ",
                        );
                        go_quote(key, &mut msg);
                        msg.push_str(" (and doesn't have default value)");
                        return Err(msg);
                    }
                };
                fields.push(((*key).into(), value));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListKind::Atomic => Err("invalid indexing of non-associative list".into()),
    }
}

/// Item identities of a keyed list or set, skipping items without one (the checks report them).
fn elements(items: &[Value], kind: ListKind) -> Vec<Option<PathElement>> {
    items.iter().map(|i| item_element(i, kind).ok()).collect()
}

/// One step of the path to a value being checked, borrowed where it can be.
enum Step<'a> {
    Field(&'a str),
    Item(PathElement),
}

fn describe_steps(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Item(pe) => pe.describe(&mut out),
        }
    }
    out
}

/// The checks kube makes when it reads an object against its schema: every item of a keyed
/// list or set has an identity, and (for an applied configuration) no identity repeats.
/// Returns the errors as kube words them (`.spec.ports: element 0: ...`).
pub(crate) fn check(obj: &Map<String, Value>, ctx: Ctx, allow_duplicates: bool) -> Vec<String> {
    fn walk_map<'a>(
        obj: &'a Map<String, Value>,
        ctx: Ctx,
        dups: bool,
        path: &mut Vec<Step<'a>>,
        out: &mut Vec<String>,
    ) {
        if ctx.is_atomic_object() {
            return;
        }
        for (k, v) in obj {
            let descend = match (v, kind_of(ctx, k, Some(v), None)) {
                (Value::Object(m), Kind::Map { ctx, .. }) => Some((Ok(m), ctx, ListKind::Atomic)),
                (
                    Value::Array(items),
                    Kind::List {
                        kind,
                        items: item_ctx,
                    },
                ) if kind != ListKind::Atomic => Some((Err(items), item_ctx, kind)),
                _ => None,
            };
            let Some((inner, ctx, kind)) = descend else {
                continue;
            };
            path.push(Step::Field(k));
            match inner {
                Ok(m) => walk_map(m, ctx, dups, path, out),
                Err(items) => walk_list(items, kind, ctx, dups, path, out),
            }
            path.pop();
        }
    }
    fn walk_list<'a>(
        items: &'a [Value],
        kind: ListKind,
        item_ctx: Ctx,
        dups: bool,
        path: &mut Vec<Step<'a>>,
        out: &mut Vec<String>,
    ) {
        let mut seen: BTreeMap<PathElement, ()> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let pe = match item_element(item, kind) {
                Ok(pe) => pe,
                Err(e) => {
                    out.push(alloc::format!("{}: element {i}: {e}", describe_steps(path)));
                    continue;
                }
            };
            if !dups && seen.contains_key(&pe) {
                let mut key = String::new();
                pe.describe(&mut key);
                out.push(alloc::format!(
                    "{}: duplicate entries for key {key}",
                    describe_steps(path)
                ));
            }
            if let (Value::Object(m), ListKind::Map { .. }) = (item, kind) {
                path.push(Step::Item(pe.clone()));
                walk_map(m, item_ctx, dups, path, out);
                path.pop();
            }
            if !dups {
                seen.insert(pe, ());
            }
        }
    }
    let mut out = Vec::new();
    walk_map(obj, ctx, allow_duplicates, &mut Vec::new(), &mut out);
    out
}

/// The fields an object specifies (`ToFieldSet`): its leaves, the items of its keyed lists and
/// sets, empty and null values, and whole atomic lists and objects; a named field holding a
/// non-empty object or list is not itself a member.
pub(crate) fn field_set(obj: &Map<String, Value>, ctx: Ctx) -> FieldSet {
    let mut set = FieldSet::default();
    if ctx.is_atomic_object() {
        return set;
    }
    for (k, v) in obj {
        let pe = PathElement::field(k);
        match (v, kind_of(ctx, k, Some(v), None)) {
            (Value::Object(m), Kind::Map { ctx, atomic }) => {
                if atomic || m.is_empty() {
                    set.insert_member(pe);
                } else {
                    set.insert_child(pe, field_set(m, ctx));
                }
            }
            (
                Value::Array(items),
                Kind::List {
                    kind,
                    items: item_ctx,
                },
            ) => {
                if kind == ListKind::Atomic {
                    set.insert_member(pe);
                } else {
                    set.insert_child(pe, list_field_set(items, kind, item_ctx));
                }
            }
            _ => set.insert_member(pe),
        }
    }
    set
}

fn list_field_set(items: &[Value], kind: ListKind, item_ctx: Ctx) -> FieldSet {
    let mut set = FieldSet::default();
    let pes = elements(items, kind);
    let mut count: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for pe in pes.iter().flatten() {
        *count.entry(pe).or_default() += 1;
    }
    for (pe, item) in pes.iter().zip(items) {
        let Some(pe) = pe else { continue };
        // A repeated identity is owned as a whole: kube cannot tell the items apart.
        if count.get(pe).copied().unwrap_or(0) == 1
            && let (Value::Object(m), ListKind::Map { .. }) = (item, kind)
        {
            set.insert_child(pe.clone(), field_set(m, item_ctx));
        }
        set.insert_member(pe.clone());
    }
    set
}

/// What changed from one version of an object to the next.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    pub(crate) fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Files the changes inside a child and the child's own change under its element, which is
    /// only built when there is something to file.
    fn nest(&mut self, pe: impl FnOnce() -> PathElement, mark: Mark, below: Comparison) {
        if mark == Mark::Same && below.is_same() {
            return;
        }
        let pe = pe();
        self.added.insert_child(pe.clone(), below.added);
        self.modified.insert_child(pe.clone(), below.modified);
        self.removed.insert_child(pe.clone(), below.removed);
        match mark {
            Mark::Same => {}
            Mark::Added => self.added.insert_member(pe),
            Mark::Removed => self.removed.insert_member(pe),
            Mark::Modified => self.modified.insert_member(pe),
        }
    }
}

/// How a value itself changed, apart from what changed inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Same,
    Added,
    Removed,
    Modified,
}

/// Compares two versions of an object (`Compare`). Sets are built bottom-up, so only what
/// changed allocates.
pub(crate) fn compare(lhs: &Map<String, Value>, rhs: &Map<String, Value>, ctx: Ctx) -> Comparison {
    compare_maps(Some(lhs), Some(rhs), ctx, Level::default())
}

/// Which part of two object versions a comparison looks at, and what an absent field reads as,
/// so that the versions need not be copied to be narrowed.
pub(crate) struct View<'a> {
    /// The top-level fields compared.
    pub(crate) root: &'a dyn Fn(&str) -> bool,
    /// The `metadata` fields compared.
    pub(crate) meta: &'a dyn Fn(&str) -> bool,
    /// What an absent field reads as: the type's zero value, which a Go struct always has.
    pub(crate) zero: &'a Map<String, Value>,
}

/// [`compare`] of the part of the objects `view` selects.
pub(crate) fn compare_view(
    lhs: &Map<String, Value>,
    rhs: &Map<String, Value>,
    ctx: Ctx,
    view: &View<'_>,
) -> Comparison {
    let level = Level {
        keep: Some(view.root),
        zero: Some(view.zero),
        meta: Some(view.meta),
    };
    compare_maps(Some(lhs), Some(rhs), ctx, level)
}

/// What applies at one object level of a [`View`].
#[derive(Clone, Copy, Default)]
struct Level<'a> {
    keep: Option<&'a dyn Fn(&str) -> bool>,
    zero: Option<&'a Map<String, Value>>,
    /// The filter for this level's `metadata` (the root level only).
    meta: Option<&'a dyn Fn(&str) -> bool>,
}

impl<'a> Level<'a> {
    fn below(&self, key: &str) -> Level<'a> {
        Level {
            keep: if key == "metadata" { self.meta } else { None },
            zero: self
                .zero
                .and_then(|z| z.get(key))
                .and_then(Value::as_object),
            meta: None,
        }
    }
}

/// Value equality as structured-merge-diff sees it: `1` and `1.0` are the same number.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare_values(a, b).is_eq(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((pk, pv), (qk, qv))| pk == qk && equal(pv, qv))
        }
        _ => a == b,
    }
}

fn leaf(l: Option<&Value>, r: Option<&Value>) -> Mark {
    match (l, r) {
        (None, Some(_)) => Mark::Added,
        (Some(_), None) => Mark::Removed,
        (Some(a), Some(b)) if !equal(a, b) => Mark::Modified,
        _ => Mark::Same,
    }
}

/// A granular object or list present on one side only is itself added or removed.
fn presence(l: Option<&Value>, r: Option<&Value>) -> Mark {
    match (l, r) {
        (None, Some(_)) => Mark::Added,
        (Some(_), None) => Mark::Removed,
        _ => Mark::Same,
    }
}

fn compare_maps(
    l: Option<&Map<String, Value>>,
    r: Option<&Map<String, Value>>,
    ctx: Ctx,
    level: Level<'_>,
) -> Comparison {
    let mut out = Comparison::default();
    let kept = |k: &String| level.keep.is_none_or(|keep| keep(k));
    let zero = |k: &String| level.zero.and_then(|z| z.get(k));
    if let Some(l) = l {
        for (k, lv) in l.iter().filter(|(k, _)| kept(k)) {
            let rv = r.and_then(|r| r.get(k)).or_else(|| zero(k));
            let (mark, below) = compare_value(ctx, k, Some(lv), rv, level.below(k));
            out.nest(|| PathElement::field(k), mark, below);
        }
    }
    if let Some(r) = r {
        for (k, rv) in r.iter().filter(|(k, _)| kept(k)) {
            if l.is_none_or(|l| !l.contains_key(k)) {
                let lv = zero(k);
                let (mark, below) = compare_value(ctx, k, lv, Some(rv), level.below(k));
                out.nest(|| PathElement::field(k), mark, below);
            }
        }
    }
    out
}

fn compare_value(
    ctx: Ctx,
    key: &str,
    l: Option<&Value>,
    r: Option<&Value>,
    level: Level<'_>,
) -> (Mark, Comparison) {
    let shapes_differ = |f: fn(&Value) -> bool| {
        let off = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && !f(v));
        off(l) || off(r)
    };
    match kind_of(ctx, key, l, r) {
        Kind::Map { ctx, atomic } => {
            let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
            if atomic || (empty_map(lm) && empty_map(rm)) || shapes_differ(Value::is_object) {
                (leaf(l, r), Comparison::default())
            } else {
                (presence(l, r), compare_maps(lm, rm, ctx, level))
            }
        }
        Kind::List { kind, items } => {
            let (la, ra) = (l.and_then(Value::as_array), r.and_then(Value::as_array));
            if kind == ListKind::Atomic
                || (empty_list(la) && empty_list(ra))
                || shapes_differ(Value::is_array)
            {
                (leaf(l, r), Comparison::default())
            } else {
                (presence(l, r), compare_items(la, ra, kind, items))
            }
        }
        Kind::Scalar => (leaf(l, r), Comparison::default()),
    }
}

fn compare_items(
    l: Option<&Vec<Value>>,
    r: Option<&Vec<Value>>,
    kind: ListKind,
    item_ctx: Ctx,
) -> Comparison {
    // Items grouped by identity, in order of first appearance (left side first).
    let mut order: Vec<PathElement> = Vec::new();
    let mut groups: BTreeMap<PathElement, (Vec<&Value>, Vec<&Value>)> = BTreeMap::new();
    for (side, list) in [(0, l), (1, r)] {
        for item in list.into_iter().flatten() {
            let Ok(pe) = item_element(item, kind) else {
                continue;
            };
            let group = groups.entry(pe.clone()).or_insert_with(|| {
                order.push(pe);
                (Vec::new(), Vec::new())
            });
            if side == 0 {
                group.0.push(item);
            } else {
                group.1.push(item);
            }
        }
    }
    let mut out = Comparison::default();
    for pe in order {
        let Some((ls, rs)) = groups.get(&pe) else {
            continue;
        };
        match (ls.len(), rs.len()) {
            (0..=1, 0..=1) => {
                let (mark, below) =
                    compare_item(ls.first().copied(), rs.first().copied(), kind, item_ctx);
                out.nest(|| pe, mark, below);
            }
            (2.., 2..) => {
                let same = ls.len() == rs.len() && ls.iter().zip(rs).all(|(a, b)| equal(a, b));
                if !same {
                    out.modified.insert_member(pe);
                }
            }
            (2.., n) => {
                if n == 1 {
                    let (mark, below) = compare_item(None, rs.first().copied(), kind, item_ctx);
                    out.nest(|| pe.clone(), mark, below);
                }
                out.removed.insert_member(pe);
            }
            (n, _) => {
                if n == 1 {
                    let (mark, below) = compare_item(ls.first().copied(), None, kind, item_ctx);
                    out.nest(|| pe.clone(), mark, below);
                }
                out.added.insert_member(pe);
            }
        }
    }
    out
}

fn compare_item(
    l: Option<&Value>,
    r: Option<&Value>,
    kind: ListKind,
    item_ctx: Ctx,
) -> (Mark, Comparison) {
    let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
    let granular = matches!(kind, ListKind::Map { .. }) && !item_ctx.is_atomic_object();
    if !granular || (empty_map(lm) && empty_map(rm)) {
        (leaf(l, r), Comparison::default())
    } else {
        (
            presence(l, r),
            compare_maps(lm, rm, item_ctx, Level::default()),
        )
    }
}

/// Apply's merge (`Merge` with "keep the right side"): objects merge field by field, keyed
/// lists and sets item by item (see [`merge_items`] for the order), everything else, atomic
/// lists and objects included, is replaced by the configuration's value.
pub(crate) fn merge(
    live: &Map<String, Value>,
    config: &Map<String, Value>,
    ctx: Ctx,
) -> Map<String, Value> {
    merge_maps(Some(live), Some(config), ctx)
}

fn merge_maps(
    l: Option<&Map<String, Value>>,
    r: Option<&Map<String, Value>>,
    ctx: Ctx,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, lv) in l.into_iter().flatten() {
        let rv = r.and_then(|r| r.get(k));
        if let Some(v) = merge_value(ctx, k, Some(lv), rv) {
            out.insert(k.clone(), v);
        }
    }
    for (k, rv) in r.into_iter().flatten() {
        if l.is_none_or(|l| !l.contains_key(k))
            && let Some(v) = merge_value(ctx, k, None, Some(rv))
        {
            out.insert(k.clone(), v);
        }
    }
    out
}

fn keep_rhs(l: Option<&Value>, r: Option<&Value>) -> Option<Value> {
    r.or(l).cloned()
}

fn merge_value(ctx: Ctx, key: &str, l: Option<&Value>, r: Option<&Value>) -> Option<Value> {
    match kind_of(ctx, key, l, r) {
        Kind::Map { ctx, atomic } => {
            let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
            if atomic || (empty_map(lm) && empty_map(rm)) {
                keep_rhs(l, r)
            } else {
                Some(Value::Object(merge_maps(lm, rm, ctx)))
            }
        }
        Kind::List { kind, items } => {
            let (la, ra) = (l.and_then(Value::as_array), r.and_then(Value::as_array));
            if kind == ListKind::Atomic || (empty_list(la) && empty_list(ra)) {
                keep_rhs(l, r)
            } else {
                let la = la.map_or(&[][..], Vec::as_slice);
                let ra = ra.map_or(&[][..], Vec::as_slice);
                let merged = merge_items(la, ra, kind, items);
                (!merged.is_empty()).then_some(Value::Array(merged))
            }
        }
        Kind::Scalar => keep_rhs(l, r),
    }
}

fn merge_item(
    l: Option<&Value>,
    r: Option<&Value>,
    kind: ListKind,
    item_ctx: Ctx,
) -> Option<Value> {
    let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
    let granular = matches!(kind, ListKind::Map { .. }) && !item_ctx.is_atomic_object();
    if !granular || (empty_map(lm) && empty_map(rm)) {
        keep_rhs(l, r)
    } else {
        Some(Value::Object(merge_maps(lm, rm, item_ctx)))
    }
}

/// structured-merge-diff's list merge: items of both lists follow the configuration's order,
/// items only the live list has keep their places relative to them, new items come where the
/// configuration puts them. A live identity that repeats merges as if absent.
fn merge_items(live: &[Value], config: &[Value], kind: ListKind, item_ctx: Ctx) -> Vec<Value> {
    let lpes: Vec<PathElement> = elements(live, kind).into_iter().flatten().collect();
    let rpes: Vec<PathElement> = elements(config, kind).into_iter().flatten().collect();
    if lpes.len() != live.len() || rpes.len() != config.len() {
        // The checks refuse these before a merge; replace rather than guess.
        return config.to_vec();
    }
    let mut observed_l: BTreeMap<&PathElement, Option<&Value>> = BTreeMap::new();
    for (pe, item) in lpes.iter().zip(live) {
        observed_l
            .entry(pe)
            .and_modify(|seen| *seen = None)
            .or_insert(Some(item));
    }
    let mut observed_r: BTreeMap<&PathElement, &Value> = BTreeMap::new();
    for (pe, item) in rpes.iter().zip(config) {
        observed_r.entry(pe).or_insert(item);
    }
    let null = Value::Null;
    let live_item = |pe: &PathElement| -> Option<&Value> {
        observed_l.get(pe).map(|seen| seen.unwrap_or(&null))
    };
    let mut shared = rpes.iter().filter(|pe| observed_l.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged_r: BTreeMap<&PathElement, ()> = BTreeMap::new();
    let mut out = Vec::with_capacity(live.len().max(config.len()));
    let (mut li, mut ri) = (0usize, 0usize);
    // Every round moves at least one of the two cursors, so the bound never decides.
    for _ in 0..=(lpes.len() + rpes.len()) {
        if li >= lpes.len() && ri >= rpes.len() {
            break;
        }
        if let (Some(lpe), Some(rpe)) = (lpes.get(li), rpes.get(ri)) {
            if lpe == rpe {
                merged_r.insert(lpe, ());
                out.extend(merge_item(
                    live_item(lpe),
                    observed_r.get(lpe).copied(),
                    kind,
                    item_ctx,
                ));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if observed_r.contains_key(lpe) && next_shared.is_some_and(|n| n != lpe) {
                li += 1;
                continue;
            }
        }
        if let Some(lpe) = lpes.get(li) {
            if !observed_r.contains_key(lpe) {
                out.extend(merge_item(live.get(li), None, kind, item_ctx));
                li += 1;
                continue;
            } else if merged_r.contains_key(lpe) {
                li += 1;
            }
        }
        if let Some(rpe) = rpes.get(ri) {
            merged_r.insert(rpe, ());
            out.extend(merge_item(
                live_item(rpe),
                observed_r.get(rpe).copied(),
                kind,
                item_ctx,
            ));
            ri += 1;
            if next_shared == Some(rpe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// Removes the fields and items `set` names (`RemoveItems`). A map or list left empty becomes
/// `null` in its parent, as kube's walker leaves it.
pub(crate) fn remove(obj: &Map<String, Value>, set: &FieldSet, ctx: Ctx) -> Map<String, Value> {
    remove_in_map(obj, set, ctx).unwrap_or_default()
}

fn remove_in_map(obj: &Map<String, Value>, set: &FieldSet, ctx: Ctx) -> Option<Map<String, Value>> {
    if obj.is_empty() || ctx.is_atomic_object() {
        return None;
    }
    let mut out = Map::new();
    for (k, v) in obj {
        let pe = PathElement::field(k);
        if set.has_member(&pe) {
            continue;
        }
        let kept = match set.child(&pe).filter(|c| !c.is_empty()) {
            Some(below) => remove_in_value(ctx, k, v, below),
            None => Some(v.clone()),
        };
        out.insert(k.clone(), kept.unwrap_or(Value::Null));
    }
    (!out.is_empty()).then_some(out)
}

fn remove_in_value(ctx: Ctx, key: &str, v: &Value, set: &FieldSet) -> Option<Value> {
    match (v, kind_of(ctx, key, Some(v), None)) {
        (Value::Object(m), Kind::Map { ctx, .. }) => remove_in_map(m, set, ctx).map(Value::Object),
        (
            Value::Array(items),
            Kind::List {
                kind,
                items: item_ctx,
            },
        ) => {
            if kind == ListKind::Atomic || items.is_empty() {
                return None;
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_element(item, kind) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has_member(&pe) {
                    continue;
                }
                let kept = match (set.child(&pe).filter(|c| !c.is_empty()), item) {
                    (Some(below), Value::Object(m)) if matches!(kind, ListKind::Map { .. }) => {
                        remove_in_map(m, below, item_ctx).map(Value::Object)
                    }
                    _ => Some(item.clone()),
                };
                out.push(kept.unwrap_or(Value::Null));
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        (Value::Object(_) | Value::Array(_), _) => None,
        (scalar, _) => Some(scalar.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceId as R;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    const POD: Ctx = Ctx::Root(R::Pods);

    #[test]
    fn field_sets_follow_to_field_set() {
        let pod = obj(json!({
            "metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"], "annotations": {}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}],
                     "tolerations": [{"key": "k"}], "nodeSelector": {"disk": "ssd"},
                     "volumes": [], "hostname": null}}));
        assert_eq!(
            field_set(&pod, POD).to_v1(),
            json!({"f:metadata": {"f:annotations": {}, "f:finalizers": {"v:\"x\"": {}, "v:\"y\"": {}},
                                   "f:labels": {"f:a": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {},
                                  "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
                              "f:hostname": {}, "f:nodeSelector": {}, "f:tolerations": {}}})
        );
    }

    #[test]
    fn checks_word_errors_as_kube() {
        let pod = obj(
            json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}, {"image": "x"},
            {"name": "b", "ports": [{"protocol": "UDP"}]}]}}),
        );
        assert_eq!(
            check(&pod, POD, false),
            alloc::vec![
                String::from(".spec.containers: duplicate entries for key [name=\"a\"]"),
                ".spec.containers: element 2: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)".into(),
                ".spec.containers[name=\"b\"].ports: element 0: associative list with keys has an element that omits key field \"containerPort\" (and doesn't have default value)".into(),
            ]
        );
        assert_eq!(check(&pod, POD, true).len(), 2);
    }

    #[test]
    fn merge_orders_sets_like_structured_merge_diff() {
        // merge/set_test.go "apply_update_apply_no_overlap".
        let live = obj(json!({"metadata": {"finalizers": ["a", "b", "c", "d"]}}));
        let config = obj(json!({"metadata": {"finalizers": ["a", "aprime", "c", "cprime"]}}));
        assert_eq!(
            merge(&live, &config, POD)["metadata"]["finalizers"],
            json!(["a", "b", "aprime", "c", "d", "cprime"])
        );
        // A null object in the configuration keeps a non-empty live one; scalars take it.
        let live = obj(json!({"metadata": {"labels": {"a": "1"}}, "spec": {"hostname": "h"}}));
        let config = obj(json!({"metadata": {"labels": null}, "spec": {"hostname": null}}));
        assert_eq!(
            Value::Object(merge(&live, &config, POD)),
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"hostname": null}})
        );
    }

    #[test]
    fn compare_marks_granular_presence_and_atomic_leaves() {
        let old = obj(
            json!({"spec": {"nodeSelector": {"a": "1"}, "containers": [{"name": "c", "image": "x"}]}}),
        );
        let new = obj(json!({"metadata": {"labels": {"l": "v"}},
            "spec": {"nodeSelector": {"a": "2"}, "containers": [{"name": "c", "image": "y"}, {"name": "d"}]}}));
        let c = compare(&old, &new, POD);
        assert_eq!(
            c.added.to_v1(),
            json!({"f:metadata": {".": {}, "f:labels": {".": {}, "f:l": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"d\"}": {".": {}, "f:name": {}}}}})
        );
        assert_eq!(
            c.modified.to_v1(),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:image": {}}}, "f:nodeSelector": {}}})
        );
        assert!(c.removed.is_empty());
        assert!(compare(&old, &old, POD).is_same());
    }

    #[test]
    fn remove_leaves_null_where_a_container_empties() {
        let pod = obj(json!({"metadata": {"labels": {"a": "1"}, "name": "p"}}));
        let mut set = FieldSet::default();
        set.insert(&[
            PathElement::field("metadata"),
            PathElement::field("labels"),
            PathElement::field("a"),
        ]);
        assert_eq!(
            Value::Object(remove(&pod, &set, POD)),
            json!({"metadata": {"labels": null, "name": "p"}})
        );
    }
}
