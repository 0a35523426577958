//! Strategic merge patch as kube-apiserver applies it (apimachinery `strategicpatch`, with
//! `MergeParallelList` and `IgnoreUnmatchedNulls`): lists merge by `patchMergeKey`, and the
//! directives `$patch`, `$setElementOrder/`, `$retainKeys` and `$deleteFromPrimitiveList/`.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::schema::{Ctx, MergeKind};
use super::unprocessable;
use crate::Error;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

fn bad_type(directive: &Value) -> Error {
    Error::BadRequest(alloc::format!("unknown patch type: {directive}"))
}

/// Merges `patch` into `original` (an object) for an object of context `ctx`.
pub(super) fn merge_map(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    ctx: Ctx,
) -> Result<Map<String, Value>, Error> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            // `$patch: replace` takes the patch as the whole map.
            Some("replace") => {
                let mut out = Map::new();
                let empty = Map::new();
                let mut rest = patch.clone();
                rest.remove(PATCH);
                // Merging into nothing still strips nulls and nested directives.
                out.extend(merge_map(&empty, &rest, ctx)?);
                Ok(out)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_type(directive)),
        };
    }
    let mut out = original.clone();
    if let Some(keys) = patch.get(RETAIN_KEYS) {
        let keys = keys
            .as_array()
            .ok_or_else(|| Error::BadRequest("invalid patch format of retainKeys".into()))?;
        for (k, v) in patch {
            if v.is_null() || k.starts_with('$') {
                continue;
            }
            if !keys.iter().any(|key| key.as_str() == Some(k)) {
                return Err(unprocessable(String::from(
                    "patch content doesn't match retainKeys list",
                )));
            }
        }
        out.retain(|k, _| keys.iter().any(|key| key.as_str() == Some(k)));
    }
    // Deletions first, so a value both deleted and added (a re-ordered apply) ends up present.
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let doomed = v.as_array().ok_or_else(|| {
                Error::BadRequest("invalid patch format of primitive list".into())
            })?;
            let doomed: BTreeSet<String> = doomed.iter().map(Value::to_string).collect();
            if let Some(Value::Array(items)) = out.get_mut(field) {
                items.retain(|item| !doomed.contains(&item.to_string()));
            }
        }
    }
    for (k, v) in patch {
        if k == RETAIN_KEYS || k.starts_with(DELETE_PRIMITIVE) {
            continue;
        }
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let order = v.as_array().ok_or_else(|| {
                Error::BadRequest("invalid patch format of setElementOrder list".into())
            })?;
            let (kind, item_ctx) = ctx.merge_list(field);
            let current = match out.get(field) {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            let merged = match patch.get(field) {
                Some(Value::Array(p)) => {
                    check_order(p, order, kind)?;
                    merge_list(&current, p, kind, item_ctx)?
                }
                _ if out.contains_key(field) => current.clone(),
                _ => continue,
            };
            let sorted = apply_order(merged, order, &current, kind);
            out.insert(field.into(), Value::Array(sorted));
            continue;
        }
        if k.starts_with('$') {
            return Err(Error::BadRequest(alloc::format!(
                "unknown strategic merge patch directive: {k}"
            )));
        }
        if patch.contains_key(&alloc::format!("{SET_ORDER}{k}")) {
            // Merged together with its order list above.
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), v) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                Value::Object(merge_map(o, p, ctx.child(k))?)
            }
            (None, Value::Object(p)) => Value::Object(merge_map(&Map::new(), p, ctx.child(k))?),
            (Some(Value::Array(o)), Value::Array(p)) => {
                let (kind, item_ctx) = ctx.merge_list(k);
                Value::Array(merge_list(o, p, kind, item_ctx)?)
            }
            (None, Value::Array(p)) => {
                let (kind, item_ctx) = ctx.merge_list(k);
                Value::Array(merge_list(&[], p, kind, item_ctx)?)
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Ok(out)
}

fn merge_key_of<'a>(item: &'a Value, key: &str) -> Result<&'a Value, Error> {
    item.get(key).ok_or_else(|| {
        Error::BadRequest(alloc::format!(
            "map: {item} does not contain declared merge key: {key}"
        ))
    })
}

fn merge_list(
    original: &[Value],
    patch: &[Value],
    kind: MergeKind,
    item_ctx: Ctx,
) -> Result<Vec<Value>, Error> {
    if kind == MergeKind::Replace {
        return Ok(patch.to_vec());
    }
    if patch.iter().chain(original).any(Value::is_array) {
        return Err(unprocessable("lists of lists are not supported".into()));
    }
    let key = match kind {
        MergeKind::Replace => return Ok(patch.to_vec()),
        MergeKind::Set => {
            let mut out: Vec<Value> = original.to_vec();
            let mut seen: BTreeSet<String> = out.iter().map(Value::to_string).collect();
            for item in patch {
                if seen.insert(item.to_string()) {
                    out.push(item.clone());
                }
            }
            return Ok(order_like_patch(out, patch, original, None));
        }
        MergeKind::ByKey(smp) => smp,
    };
    let mut base: Vec<Value> = original.to_vec();
    let mut plain: Vec<&Value> = Vec::new();
    let mut doomed: BTreeSet<String> = BTreeSet::new();
    let mut replace = false;
    for item in patch {
        let Some(obj) = item.as_object() else {
            return Err(Error::BadRequest(alloc::format!(
                "expected a map in a list merged by {key}, got {item}"
            )));
        };
        match obj.get(PATCH) {
            None => plain.push(item),
            Some(directive) => match directive.as_str() {
                Some("delete") => {
                    doomed.insert(merge_key_of(item, key)?.to_string());
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(Error::BadRequest(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => return Err(bad_type(directive)),
            },
        }
    }
    if replace {
        base.clear();
    } else if !doomed.is_empty() {
        base.retain(|o| !o.get(key).is_some_and(|v| doomed.contains(&v.to_string())));
    }
    let mut index = index_by(&base, Some(key));
    for item in &plain {
        let wanted = merge_key_of(item, key)?.to_string();
        let patch_obj = item.as_object();
        let found = index.get(&wanted).and_then(|&i| base.get_mut(i));
        match (found, patch_obj) {
            (Some(Value::Object(existing)), Some(p)) => {
                *existing = merge_map(existing, p, item_ctx)?;
            }
            (_, Some(p)) => {
                index.entry(wanted).or_insert(base.len());
                base.push(Value::Object(merge_map(&Map::new(), p, item_ctx)?));
            }
            (_, None) => {}
        }
    }
    let patch_items: Vec<Value> = plain.into_iter().cloned().collect();
    Ok(order_like_patch(base, &patch_items, original, Some(key)))
}

fn identity(item: &Value, key: Option<&str>) -> Option<String> {
    match key {
        Some(k) => item.get(k).map(Value::to_string),
        None => Some(item.to_string()),
    }
}

/// First position of each item identity in `list`.
fn index_by(list: &[Value], key: Option<&str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (i, item) in list.iter().enumerate() {
        if let Some(id) = identity(item, key) {
            out.entry(id).or_insert(i);
        }
    }
    out
}

/// kube's `normalizeElementOrder`: items named in `patch_order` come in that order, the others
/// keep their server order, and the two runs are interleaved by server position.
fn order_like_patch(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let in_patch = index_by(patch_order, key);
    let in_server = index_by(server_order, key);
    let pos = |index: &BTreeMap<String, usize>, item: &Value| {
        identity(item, key).and_then(|id| index.get(&id).copied())
    };
    let (mut from_patch, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| pos(&in_patch, item).is_some());
    from_patch.sort_by_cached_key(|item| pos(&in_patch, item));
    server_only.sort_by_cached_key(|item| pos(&in_server, item).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => match (pos(&in_server, l), pos(&in_server, r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

/// Items of the patch list (other than directives) must appear in the `$setElementOrder` list.
fn check_order(patch: &[Value], order: &[Value], kind: MergeKind) -> Result<(), Error> {
    let key = match kind {
        MergeKind::ByKey(smp) => Some(smp),
        _ => None,
    };
    let allowed = index_by(order, key);
    for item in patch {
        if item.get(PATCH).is_some() {
            continue;
        }
        if !identity(item, key).is_some_and(|id| allowed.contains_key(&id)) {
            return Err(Error::BadRequest(
                "invalid patch format of setElementOrder list".into(),
            ));
        }
    }
    Ok(())
}

fn apply_order(
    merged: Vec<Value>,
    order: &[Value],
    server: &[Value],
    kind: MergeKind,
) -> Vec<Value> {
    let key = match kind {
        MergeKind::ByKey(smp) => Some(smp),
        _ => None,
    };
    order_like_patch(merged, order, server, key)
}
