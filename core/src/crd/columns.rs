//! The JSON paths of `additionalPrinterColumns` and of the `scale` subresource, and the Table
//! cells kube's CR table convertor makes from them (`tableconvertor.cellForJSONValue`).
//!
//! The subset of client-go's JSONPath that CRDs use: `.field`, `['field']`, `[N]` (negative
//! from the end), `[*]` / `.*`, and filters `[?(@.a.b == "x")]`, `!=`, and existence
//! `[?(@.a)]`. Paths are at most [`MAX_STEPS`] steps and evaluating one visits each value once
//! per step, so a column costs at most its steps times the object's size.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use crate::UnixTime;

/// Most steps one path may have.
pub const MAX_STEPS: usize = 32;

/// A filter's comparison.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Exists(Vec<String>),
    Equals(Vec<String>, Value, bool),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Where(Box<Filter>),
}

/// A compiled JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

fn field_chars(rest: &str) -> usize {
    rest.find(['.', '[']).unwrap_or(rest.len())
}

fn parse_literal(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if let Some(inner) = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
    {
        return Ok(Value::from(inner));
    }
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" | "nil" => return Ok(Value::Null),
        _ => {}
    }
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .map_err(|_| format!("unrecognized filter value {text:?}"))
}

fn parse_relative(text: &str) -> Result<Vec<String>, String> {
    let rest = text
        .trim()
        .strip_prefix('@')
        .ok_or_else(|| format!("unrecognized filter {text:?}"))?;
    let mut fields = Vec::new();
    for part in rest.split('.').skip(1) {
        if part.is_empty() {
            return Err(format!("unrecognized filter {text:?}"));
        }
        fields.push(part.to_string());
    }
    if rest.is_empty() || !rest.starts_with('.') {
        return Err(format!("unrecognized filter {text:?}"));
    }
    Ok(fields)
}

fn parse_filter(inner: &str) -> Result<Filter, String> {
    for (op, equal) in [("==", true), ("!=", false)] {
        if let Some((left, right)) = inner.split_once(op) {
            return Ok(Filter::Equals(
                parse_relative(left)?,
                parse_literal(right)?,
                equal,
            ));
        }
    }
    Ok(Filter::Exists(parse_relative(inner)?))
}

impl JsonPath {
    /// Parses `text` (`.status.conditions[?(@.type=="Ready")].status`); a path wrapped in
    /// `{...}` is accepted too, as kube takes both.
    pub fn parse(text: &str) -> Result<Self, String> {
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        let mut rest = inner.strip_prefix('$').unwrap_or(inner);
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if steps.len() >= MAX_STEPS {
                return Err(format!("a path has at most {MAX_STEPS} steps"));
            }
            if let Some(after) = rest.strip_prefix('.') {
                if after.starts_with('.') {
                    return Err("recursive descent (..) is not supported".into());
                }
                if let Some(after) = after.strip_prefix('*') {
                    steps.push(Step::All);
                    rest = after;
                    continue;
                }
                let n = field_chars(after);
                let name = after.get(..n).unwrap_or("");
                if name.is_empty() {
                    if after.starts_with('[') {
                        rest = after;
                        continue;
                    }
                    return Err(format!("invalid path {text:?}"));
                }
                steps.push(Step::Field(name.to_string()));
                rest = after.get(n..).unwrap_or("");
            } else if let Some(after) = rest.strip_prefix('[') {
                let close = if after.starts_with("?(") {
                    after.find(")]").map(|i| i + 1)
                } else {
                    after.find(']')
                };
                let Some(close) = close else {
                    return Err(format!("unterminated [ in {text:?}"));
                };
                let body = after.get(..close).unwrap_or("").trim();
                rest = after.get(close + 1..).unwrap_or("");
                if body == "*" {
                    steps.push(Step::All);
                } else if let Some(filter) =
                    body.strip_prefix("?(").and_then(|b| b.strip_suffix(')'))
                {
                    steps.push(Step::Where(Box::new(parse_filter(filter)?)));
                } else if let Ok(index) = body.parse::<i64>() {
                    steps.push(Step::Index(index));
                } else if let Value::String(name) = parse_literal(body)? {
                    steps.push(Step::Field(name));
                } else {
                    return Err(format!("invalid array index {body:?}"));
                }
            } else {
                return Err(format!("invalid path {text:?}: expected . or ["));
            }
        }
        Ok(Self {
            text: text.to_string(),
            steps,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The field names of a path made of `.field` steps only (`.spec.replicas`), or `None`.
    pub fn fields(&self) -> Option<Vec<&str>> {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Field(f) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every value the path selects in `obj`, in document order.
    pub fn find<'a>(&self, obj: &'a Value) -> Vec<&'a Value> {
        let mut current = alloc::vec![obj];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match step {
                    Step::Field(name) => next.extend(value.get(name.as_str())),
                    Step::Index(i) => {
                        if let Some(items) = value.as_array() {
                            let len = items.len() as i64;
                            let at = if *i < 0 { len + i } else { *i };
                            if let Ok(at) = usize::try_from(at) {
                                next.extend(items.get(at));
                            }
                        }
                    }
                    Step::All => match value {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(map) => next.extend(map.values()),
                        _ => {}
                    },
                    Step::Where(filter) => {
                        if let Some(items) = value.as_array() {
                            next.extend(items.iter().filter(|item| matches(filter, item)));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn lookup<'a>(value: &'a Value, fields: &[String]) -> Option<&'a Value> {
    fields.iter().try_fold(value, |v, f| v.get(f.as_str()))
}

fn matches(filter: &Filter, item: &Value) -> bool {
    match filter {
        Filter::Exists(fields) => lookup(item, fields).is_some(),
        Filter::Equals(fields, want, equal) => {
            let got = lookup(item, fields);
            let same = got.is_some_and(|g| {
                g == want || matches!((g.as_f64(), want.as_f64()), (Some(a), Some(b)) if a == b)
            });
            got.is_some() && same == *equal
        }
    }
}

/// A value printed as client-go's JSONPath prints a result: strings raw, everything else as
/// JSON.
pub fn print(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => String::from_utf8(crate::json::to_vec(other)).unwrap_or_default(),
    }
}

/// The Table cell of a printer column of type `type_` for the first value its path selects.
pub fn cell(type_: &str, path: &JsonPath, obj: &Value, now: UnixTime) -> Value {
    let Some(value) = path.find(obj).into_iter().next() else {
        return Value::Null;
    };
    if value.is_null() {
        return Value::Null;
    }
    match type_ {
        "string" => Value::from(print(value)),
        "integer" => match value {
            Value::Number(n) if n.is_f64() => {
                n.as_f64().map_or(Value::Null, |f| Value::from(f as i64))
            }
            Value::Number(n) => Value::Number(n.clone()),
            _ => Value::Null,
        },
        "number" => value.as_f64().map_or(Value::Null, Value::from),
        "boolean" => value.as_bool().map_or(Value::Null, Value::Bool),
        "date" => match value.as_str() {
            Some(text) => match UnixTime::parse_rfc3339(text) {
                Some(_) => Value::from(crate::metatime::age(Some(value), now)),
                None => Value::from("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_select_like_client_go() {
        let obj = json!({"spec": {"replicas": 3, "image": "nginx", "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
            "metadata": {"labels": {"a.b/c": "x"}}});
        let p = |t: &str| JsonPath::parse(t).unwrap();
        assert_eq!(p(".spec.replicas").find(&obj), [&json!(3)]);
        assert_eq!(p(".spec.ports[1].port").find(&obj), [&json!(443)]);
        assert_eq!(p(".spec.ports[-1].port").find(&obj), [&json!(443)]);
        assert_eq!(
            p(".spec.ports[*].port").find(&obj),
            [&json!(80), &json!(443)]
        );
        assert_eq!(
            p(r#".status.conditions[?(@.type=="Ready")].status"#).find(&obj),
            [&json!("True")]
        );
        assert_eq!(
            p(r#".status.conditions[?(@.type!="Ready")].type"#).find(&obj),
            [&json!("Synced")]
        );
        assert_eq!(p(".metadata.labels['a.b/c']").find(&obj), [&json!("x")]);
        assert_eq!(p("{.spec.image}").find(&obj), [&json!("nginx")]);
        assert!(p(".spec.missing").find(&obj).is_empty());
        assert_eq!(
            p(".spec.replicas").fields(),
            Some(alloc::vec!["spec", "replicas"])
        );
        assert_eq!(p(".spec.ports[0]").fields(), None);
        for bad in ["spec", ".spec[", "..spec", ".a[?(x)]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cells_follow_the_column_type() {
        let obj = json!({"spec": {"n": 2.0, "s": "x", "b": true, "o": {"k": 1}},
            "metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}});
        let now = UnixTime::parse_rfc3339("2024-01-01T00:05:00Z").unwrap();
        let c = |t: &str, path: &str| cell(t, &JsonPath::parse(path).unwrap(), &obj, now);
        assert_eq!(c("integer", ".spec.n"), json!(2));
        assert_eq!(c("number", ".spec.n"), json!(2.0));
        assert_eq!(c("string", ".spec.o"), json!("{\"k\":1}"));
        assert_eq!(c("string", ".spec.n"), json!("2.0"));
        assert_eq!(c("boolean", ".spec.b"), json!(true));
        assert_eq!(c("boolean", ".spec.s"), Value::Null);
        assert_eq!(c("date", ".metadata.creationTimestamp"), json!("5m"));
        assert_eq!(c("date", ".spec.s"), json!("<invalid>"));
        assert_eq!(c("string", ".spec.none"), Value::Null);
    }
}
