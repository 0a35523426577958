//! RFC 6902 JSON patch, all-or-nothing, with kube-apiserver's limits and error codes.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::{depth, unprocessable};
use crate::Error;

/// kube-apiserver's `maxJSONPatchOperations` (handlers/patch.go).
pub const MAX_OPERATIONS: usize = 10_000;
/// Total bytes `copy` operations may add to a document: `copy` is the one operation whose result
/// can grow faster than the patch body (each copy can double the document).
pub const MAX_COPIED_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting a patched document may reach, the same bound the request intake applies.
pub const MAX_DEPTH: usize = 64;

pub(super) fn apply(target: &mut Value, ops: &Value) -> Result<(), Error> {
    // jsonpatch.DecodePatch only checks the shape: an array of objects, else 400.
    let Some(list) = ops.as_array() else {
        return Err(Error::BadRequest(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        ));
    };
    if list.iter().any(|op| !op.is_object()) {
        return Err(Error::BadRequest(
            "json: cannot unmarshal into Go value of type jsonpatch.Operation".into(),
        ));
    }
    if list.len() > MAX_OPERATIONS {
        return Err(Error::TooLarge(alloc::format!(
            "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            list.len()
        )));
    }
    let mut doc = target.clone();
    let mut copy_budget = MAX_COPIED_BYTES;
    for op in list {
        apply_one(&mut doc, op, &mut copy_budget).map_err(unprocessable)?;
    }
    *target = doc;
    Ok(())
}

fn apply_one(doc: &mut Value, op: &Value, copy_budget: &mut usize) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
    let path = pointer(op, "path")?;
    match kind {
        "add" => {
            let value = value_of(op)?;
            check_depth(&path, value)?;
            add(doc, &path, value.clone())
        }
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            let value = value_of(op)?;
            check_depth(&path, value)?;
            // Go's json-patch (v4) requires the target to exist.
            remove(doc, &path)?;
            add(doc, &path, value.clone())
        }
        "move" => {
            let from = pointer(op, "from")?;
            if path.len() > from.len() && path.starts_with(&from) {
                return Err("move operation: path is a child of from".into());
            }
            let value = remove(doc, &from)?;
            check_depth(&path, &value)?;
            add(doc, &path, value)
        }
        "copy" => {
            let from = pointer(op, "from")?;
            let value =
                get(doc, &from).ok_or_else(|| String::from("copy operation: missing from path"))?;
            check_depth(&path, value)?;
            let size = bounded_size(value, *copy_budget)
                .ok_or_else(|| String::from("copy operation: accumulated copy size over limit"))?;
            *copy_budget -= size;
            let value = value.clone();
            add(doc, &path, value)
        }
        "test" => {
            let text = op.get("path").and_then(Value::as_str).unwrap_or_default();
            test(doc, &path, text, op.get("value"))
        }
        other => Err(alloc::format!("Unexpected kind: {other}")),
    }
}

/// `test` as evanphx/json-patch v4 (kube-apiserver's JSON patch library) runs it: a key that is
/// missing or `null` equals a `null` or absent value, so `{"op":"test","path":"/metadata/
/// finalizers","value":null}` passes on an object without finalizers; a missing parent fails.
/// An absent value at a missing key passes too, as v4.13 has it: v4.12, in kube-apiserver
/// 1.32, dereferences nil there and the server drops the connection without an answer.
fn test(doc: &Value, path: &[String], text: &str, expected: Option<&Value>) -> Result<(), String> {
    let failed = || alloc::format!("testing value {text} failed: test failed");
    let Some((last, parents)) = path.split_last() else {
        return match expected {
            Some(v) if v == doc => Ok(()),
            _ => Err(failed()),
        };
    };
    let mut parent = doc;
    for token in parents {
        let next = match parent {
            Value::Object(map) => map.get(token),
            Value::Array(items) => go_index(token, items.len()).ok().and_then(|i| items.get(i)),
            _ => None,
        };
        parent = match next {
            Some(v @ (Value::Object(_) | Value::Array(_))) => v,
            _ => {
                return Err(alloc::format!(
                    "test operation does not apply: is missing path: {text}: missing value"
                ));
            }
        };
    }
    let found = match parent {
        Value::Object(map) => map.get(last),
        Value::Array(items) => {
            let i = go_index(last, items.len())
                .map_err(|e| alloc::format!("error in test for path: '{text}': {e}"))?;
            items.get(i)
        }
        _ => None,
    };
    match (found.filter(|v| !v.is_null()), expected) {
        (None, None | Some(Value::Null)) => Ok(()),
        (Some(found), Some(expected)) if found == expected => Ok(()),
        _ => Err(failed()),
    }
}

/// An array index as the library reads one (`strconv.Atoi`, negative counting from the end).
fn go_index(token: &str, len: usize) -> Result<usize, String> {
    let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
    let parsed: Option<i64> = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        None
    } else {
        token.parse().ok()
    };
    let Some(idx) = parsed else {
        return Err(alloc::format!(
            "strconv.Atoi: parsing {token:?}: invalid syntax"
        ));
    };
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let resolved = if idx < 0 { idx + len_i } else { idx };
    if idx < -len_i || resolved >= len_i {
        return Err(alloc::format!(
            "Unable to access invalid index: {idx}: invalid index referenced"
        ));
    }
    usize::try_from(resolved).map_err(|_| alloc::format!("invalid index {idx}"))
}

fn value_of(op: &Value) -> Result<&Value, String> {
    op.get("value")
        .ok_or_else(|| String::from("operation missing value"))
}

/// Splits an RFC 6901 pointer into unescaped tokens (`~1` → `/`, `~0` → `~`).
fn pointer(op: &Value, field: &str) -> Result<Vec<String>, String> {
    let text = op
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| alloc::format!("operation missing {field} string"))?;
    parse_pointer(text)
}

pub(super) fn parse_pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(alloc::format!("invalid JSON pointer: {text:?}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn check_depth(path: &[String], value: &Value) -> Result<(), String> {
    if path.len().saturating_add(depth(value, MAX_DEPTH)) > MAX_DEPTH {
        return Err(alloc::format!(
            "the patched document would nest deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(())
}

/// Serialized size of `value`, or `None` once it passes `limit` (stops early, so the work done
/// is bounded by `limit`, not by the value).
fn bounded_size(value: &Value, limit: usize) -> Option<usize> {
    fn walk(v: &Value, left: &mut usize) -> Option<()> {
        let own = match v {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 24,
            Value::String(s) => s.len().saturating_add(2),
            Value::Array(items) => {
                for item in items {
                    walk(item, left)?;
                }
                items.len().saturating_add(2)
            }
            Value::Object(map) => {
                for (k, item) in map {
                    *left = left.checked_sub(k.len().saturating_add(3))?;
                    walk(item, left)?;
                }
                2
            }
        };
        *left = left.checked_sub(own)?;
        Some(())
    }
    let mut left = limit;
    walk(value, &mut left)?;
    Some(limit - left)
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if token == "-" && allow_end {
        return Ok(len);
    }
    // RFC 6901: decimal without leading zeros; no sign.
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let index: usize = if valid {
        token
            .parse()
            .map_err(|_| alloc::format!("invalid array index {token:?}"))?
    } else {
        return Err(alloc::format!("invalid array index {token:?}"));
    };
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if index > max || (!allow_end && len == 0) {
        return Err(alloc::format!("array index {index} out of bounds"));
    }
    Ok(index)
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for token in path {
        cur = match cur {
            Value::Object(map) => map.get(token)?,
            Value::Array(items) => items.get(array_index(token, items.len(), false).ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn parent_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<(&'a mut Value, String), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the document root has no parent".into());
    };
    let mut cur = doc;
    for token in parents {
        cur = match cur {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => {
                let i = array_index(token, items.len(), false)?;
                items.get_mut(i)
            }
            _ => None,
        }
        .ok_or_else(|| alloc::format!("doc is missing path: {token:?}"))?;
    }
    Ok((cur, last.clone()))
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, path)?;
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            let i = array_index(&last, items.len(), true)?;
            items.insert(i, value);
            Ok(())
        }
        _ => Err("add operation: parent is not a container".into()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    if path.is_empty() {
        return Ok(core::mem::take(doc));
    }
    let (parent, last) = parent_mut(doc, path)?;
    match parent {
        Value::Object(map) => map
            .remove(&last)
            .ok_or_else(|| alloc::format!("doc is missing key: {last}")),
        Value::Array(items) => {
            let i = array_index(&last, items.len(), false)?;
            Ok(items.remove(i))
        }
        _ => Err("remove operation: parent is not a container".into()),
    }
}
