//! YAML request bodies (`application/yaml`, and YAML apply patches) turned into the JSON tree the
//! JSON path takes, read the way kube-apiserver's `sigs.k8s.io/yaml` reads them: the first
//! document only, YAML 1.1 plain scalars (`yes`/`no`/`on`/`off` are booleans, `0777` is octal,
//! `~` is null), `<<` merge keys, non-string keys written as strings.
//!
//! Bounded like JSON: the body size, the nesting depth, and an expansion budget so anchors and
//! aliases cannot grow a small body into a large tree. Aliasing is refused with go-yaml's
//! `document contains excessive aliasing` by its own ratio rule, and whatever expands beyond the
//! body size limit is refused the same way. The parser (saphyr-parser, no_std) is iterative, and
//! the tree is built here with an explicit stack, so no input can exhaust the stack.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// Why a YAML body could not be read, worded as go-yaml words it (`yaml: line 3: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The message, starting `yaml: ` as go-yaml's do.
    pub message: String,
    /// The nesting limit was hit (the caller answers as it does for deep JSON).
    pub too_deep: bool,
}

impl YamlError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            too_deep: false,
        }
    }
}

/// Nodes and JSON bytes a value stands for, to charge alias expansions.
#[derive(Debug, Clone, Copy, Default)]
struct Weight {
    nodes: u64,
    bytes: u64,
}

/// go-yaml v2's `allowedAliasRatio`: small documents may be almost all aliases, huge ones not.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let decoded = decoded as f64;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) / (HIGH - LOW))
    }
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        weight: Weight,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        /// The line of `key` and whether it was a string (for go-yaml's duplicate message).
        key_at: (usize, bool),
        /// Mappings merged in with `<<`, applied at the end (explicit keys win).
        merges: Vec<Map<String, Value>>,
        /// The next value is the `<<` merge source.
        merging: bool,
        anchor: usize,
        weight: Weight,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, (Value, Weight)>,
    root: Option<Value>,
    decoded: u64,
    aliased: u64,
    bytes: u64,
    max_bytes: u64,
    max_depth: usize,
    /// The line of the event being added.
    line: usize,
    /// Keys set twice in one mapping, as go-yaml's strict decoder reports them.
    duplicates: Vec<String>,
}

/// Most duplicate keys reported for one body.
const MAX_DUPLICATES: usize = 100;

impl Builder {
    fn charge(&mut self, weight: Weight, aliased: bool) -> Result<(), YamlError> {
        self.decoded = self.decoded.saturating_add(weight.nodes);
        if aliased {
            self.aliased = self.aliased.saturating_add(weight.nodes);
        }
        self.bytes = self.bytes.saturating_add(weight.bytes);
        let ratio_exceeded = self.aliased > 100
            && self.decoded > 1000
            && (self.aliased as f64) / (self.decoded as f64) > allowed_alias_ratio(self.decoded);
        if ratio_exceeded || (aliased && self.bytes > self.max_bytes) {
            return Err(YamlError::new("yaml: document contains excessive aliasing"));
        }
        if self.bytes > self.max_bytes {
            return Err(YamlError::new(alloc::format!(
                "yaml: the document expands beyond the limit of {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame) -> Result<(), YamlError> {
        if self.stack.len() >= self.max_depth {
            return Err(YamlError {
                message: alloc::format!(
                    "the request body nests deeper than the limit of {} levels",
                    self.max_depth
                ),
                too_deep: true,
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Adds a finished value (of `weight`) to the open collection, or makes it the root.
    fn push(
        &mut self,
        value: Value,
        weight: Weight,
        key_text: Option<&str>,
    ) -> Result<(), YamlError> {
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        match top {
            Frame::Seq {
                items, weight: w, ..
            } => {
                items.push(value);
                add(w, weight);
            }
            Frame::Map {
                map,
                key,
                key_at,
                merges,
                merging,
                weight: w,
                ..
            } => {
                add(w, weight);
                if *merging {
                    *merging = false;
                    match value {
                        Value::Object(source) => merges.push(source),
                        Value::Array(sources) => {
                            for source in sources {
                                let Value::Object(source) = source else {
                                    return Err(YamlError::new(
                                        "yaml: map merge requires map or sequence of maps as the value",
                                    ));
                                };
                                merges.push(source);
                            }
                        }
                        _ => {
                            return Err(YamlError::new(
                                "yaml: map merge requires map or sequence of maps as the value",
                            ));
                        }
                    }
                } else if let Some(k) = key.take() {
                    if map.contains_key(&k) && self.duplicates.len() < MAX_DUPLICATES {
                        let (line, quoted) = *key_at;
                        let shown = if quoted {
                            serde_json::to_string(&k).unwrap_or_default()
                        } else {
                            k.clone()
                        };
                        self.duplicates.push(alloc::format!(
                            "line {line}: key {shown} already set in map"
                        ));
                    }
                    map.insert(k, value);
                } else if key_text == Some("<<") {
                    *merging = true;
                } else {
                    *key_at = (self.line, value.is_string());
                    *key = Some(key_string(&value)?);
                }
            }
        }
        Ok(())
    }
}

fn add(total: &mut Weight, more: Weight) {
    total.nodes = total.nodes.saturating_add(more.nodes);
    total.bytes = total.bytes.saturating_add(more.bytes);
}

/// A mapping key as `sigs.k8s.io/yaml` writes non-string keys into JSON.
fn key_string(key: &Value) -> Result<String, YamlError> {
    Ok(match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        _ => {
            return Err(YamlError::new(
                "yaml: a mapping key must be a scalar to become a JSON key",
            ));
        }
    })
}

/// Converts the first YAML document of `bytes` into JSON, within `max_bytes` of JSON and
/// `max_depth` levels of nesting.
pub fn to_json(bytes: &[u8], max_bytes: usize, max_depth: usize) -> Result<Value, YamlError> {
    to_json_strict(bytes, max_bytes, max_depth).map(|(value, _)| value)
}

/// [`to_json`], and the keys set twice in a mapping as go-yaml's strict decoder words them
/// (`line 9: key "foo" already set in map`; the later value wins in the tree, as in the
/// non-strict decoder). kube-apiserver's apply refuses them under `fieldValidation=Strict`.
pub fn to_json_strict(
    bytes: &[u8],
    max_bytes: usize,
    max_depth: usize,
) -> Result<(Value, Vec<String>), YamlError> {
    let text = core::str::from_utf8(bytes)
        .map_err(|_| YamlError::new("yaml: invalid UTF-8 in the document"))?;
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        root: None,
        decoded: 0,
        aliased: 0,
        bytes: 0,
        max_bytes: u64::try_from(max_bytes).unwrap_or(u64::MAX),
        max_depth,
        line: 0,
        duplicates: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            if e.info() == "recursion limit exceeded" {
                // The parser's own bound on flow nesting, below ours for JSON-like input.
                return YamlError {
                    message: alloc::format!(
                        "the request body nests deeper than the limit of {max_depth} levels"
                    ),
                    too_deep: true,
                };
            }
            YamlError::new(alloc::format!(
                "yaml: line {}: {}",
                e.marker().line(),
                e.info()
            ))
        })?;
        builder.line = span.start.line();
        match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {}
            Event::DocumentEnd | Event::StreamEnd => {
                if builder.stack.is_empty() {
                    break;
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let scalar = resolve(&value, style, tag.as_deref())?;
                let weight = Weight {
                    nodes: 1,
                    bytes: (value.len() as u64).saturating_add(4),
                };
                builder.charge(weight, false)?;
                if anchor != 0 {
                    builder.anchors.insert(anchor, (scalar.clone(), weight));
                }
                let plain_key = (style == ScalarStyle::Plain).then_some(&*value);
                builder.push(scalar, weight, plain_key)?;
            }
            Event::Alias(id) => {
                let Some((value, weight)) = builder.anchors.get(&id).cloned() else {
                    return Err(YamlError::new("yaml: unknown anchor referenced"));
                };
                builder.charge(weight, true)?;
                builder.push(value, weight, None)?;
            }
            Event::SequenceStart(anchor, _) => {
                builder.charge(Weight { nodes: 1, bytes: 2 }, false)?;
                builder.open(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    weight: Weight { nodes: 1, bytes: 2 },
                })?;
            }
            Event::MappingStart(anchor, _) => {
                builder.charge(Weight { nodes: 1, bytes: 2 }, false)?;
                builder.open(Frame::Map {
                    map: Map::new(),
                    key: None,
                    key_at: (0, false),
                    merges: Vec::new(),
                    merging: false,
                    anchor,
                    weight: Weight { nodes: 1, bytes: 2 },
                })?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor, weight) = match builder.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        anchor,
                        weight,
                    }) => (Value::Array(items), anchor, weight),
                    Some(Frame::Map {
                        mut map,
                        key,
                        merges,
                        anchor,
                        weight,
                        ..
                    }) => {
                        if let Some(k) = key {
                            // A key without a value (`a:` at the end) is null.
                            map.insert(k, Value::Null);
                        }
                        for source in merges {
                            for (k, v) in source {
                                map.entry(k).or_insert(v);
                            }
                        }
                        (Value::Object(map), anchor, weight)
                    }
                    None => return Err(YamlError::new("yaml: unbalanced collection end")),
                };
                if anchor != 0 {
                    builder.anchors.insert(anchor, (value.clone(), weight));
                }
                builder.push(value, weight, None)?;
            }
        }
        if builder.root.is_some() && builder.stack.is_empty() {
            break;
        }
    }
    Ok((builder.root.unwrap_or(Value::Null), builder.duplicates))
}

/// The JSON value of one scalar, by go-yaml v2's resolution for plain scalars and explicit
/// core-schema tags; quoted scalars are strings.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, YamlError> {
    if let Some(tag) = tag.filter(|t| t.is_yaml_core_schema()) {
        return match tag.suffix.as_str() {
            "str" => Ok(Value::from(text)),
            "null" => Ok(Value::Null),
            "bool" => plain(text)
                .filter(Value::is_boolean)
                .ok_or_else(|| cannot_decode(text, "!!bool")),
            "int" => plain(text)
                .filter(|v| v.is_i64() || v.is_u64())
                .ok_or_else(|| cannot_decode(text, "!!int")),
            "float" => plain(text)
                .and_then(|v| v.as_f64())
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| cannot_decode(text, "!!float")),
            _ => Ok(Value::from(text)),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::from(text));
    }
    Ok(plain(text).unwrap_or_else(|| Value::from(text)))
}

fn cannot_decode(text: &str, tag: &str) -> YamlError {
    YamlError::new(alloc::format!("yaml: cannot decode {text:?} as a {tag}"))
}

/// A plain scalar's non-string value, if it has one (YAML 1.1 as go-yaml v2 reads it).
fn plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let first = text.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(n) = integer(&plain) {
        return Some(n);
    }
    if is_float(&plain) {
        return plain
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`): sign, `0x`/`0o`/`0b` prefixes, and a
/// leading `0` for octal.
fn integer(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits.get(1..)?)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Value::from(value))
    } else {
        Some(Value::from(magnitude))
    }
}

/// go-yaml's float form: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Value {
        to_json(text.as_bytes(), 1 << 20, 64).unwrap()
    }

    #[test]
    fn duplicate_keys_are_reported_as_go_yaml_strict_words_them() {
        let body = b"\napiVersion: v1\nkind: X\nspec:\n  foo: foo1\n  foo: foo2\n  1: a\n  1: b\n";
        let (value, duplicates) = to_json_strict(body, 1 << 20, 64).unwrap();
        assert_eq!(value["spec"]["foo"], "foo2");
        assert_eq!(
            duplicates,
            [
                "line 6: key \"foo\" already set in map",
                "line 8: key 1 already set in map"
            ]
        );
        assert!(
            to_json_strict(b"a: 1\nb: 2\n", 1 << 20, 64)
                .unwrap()
                .1
                .is_empty()
        );
    }

    #[test]
    fn manifests_read_like_sigs_k8s_io_yaml() {
        let doc = "
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  labels: {app: web, 'tier': \"front\"}
  annotations:
    yes-key: yes
    quoted: 'yes'
    octal: 0777
    hex: 0x1F
    float: 1.5e3
    big: 18446744073709551615
    neg: -42
    tilde: ~
    empty:
    time: 2024-01-01T00:00:00Z
    version: 1.10
data:
  script: |
    echo hi
    exit 0
  folded: >
    a
    b
list:
- 1
- two
- {k: v}
1: one
true: yes
---
ignored: second document
";
        assert_eq!(
            read(doc),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                    "annotations": {"yes-key": true, "quoted": "yes", "octal": 511, "hex": 31,
                        "float": 1500.0, "big": 18446744073709551615u64, "neg": -42,
                        "tilde": null, "empty": null, "time": "2024-01-01T00:00:00Z",
                        "version": 1.1}},
                "data": {"script": "echo hi\nexit 0\n", "folded": "a b\n"},
                "list": [1, "two", {"k": "v"}],
                "1": "one", "true": true,
            })
        );
        // JSON is YAML.
        assert_eq!(
            read(r#"{"a": [1, 2.5, "x", null, true], "b": {"c": "\u00e9"}}"#),
            json!({"a": [1, 2.5, "x", null, true], "b": {"c": "é"}})
        );
        assert_eq!(read(""), Value::Null);
        assert_eq!(read("!!str 123"), json!("123"));
        assert_eq!(read("'08'"), json!("08"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let doc = "
base: &base {cpu: 1, memory: 2Gi}
a: *base
b:
  <<: *base
  cpu: 2
c:
  <<: [*base, {gpu: 1}]
";
        assert_eq!(
            read(doc),
            json!({"base": {"cpu": 1, "memory": "2Gi"}, "a": {"cpu": 1, "memory": "2Gi"},
                "b": {"cpu": 2, "memory": "2Gi"}, "c": {"cpu": 1, "memory": "2Gi", "gpu": 1}})
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        // The billion laughs: nine levels of nine aliases each.
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            doc.push_str(&alloc::format!(
                "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        let error = to_json(doc.as_bytes(), 3 << 20, 64).unwrap_err();
        assert_eq!(error.message, "yaml: document contains excessive aliasing");
        // A few aliases are fine.
        assert!(to_json(b"a: &a [1, 2]\nb: [*a, *a, *a]\n", 1 << 20, 64).is_ok());
        // An expansion past the size limit is refused even below go-yaml's ratio.
        let wide = alloc::format!("a: &a \"{}\"\nb: [*a, *a, *a, *a]\n", "x".repeat(1000));
        let error = to_json(wide.as_bytes(), 2048, 64).unwrap_err();
        assert_eq!(error.message, "yaml: document contains excessive aliasing");
    }

    #[test]
    fn depth_and_syntax_errors_are_bounded_and_worded() {
        let deep = "[".repeat(100_000);
        let error = to_json(deep.as_bytes(), 1 << 20, 64).unwrap_err();
        assert!(error.too_deep, "{error:?}");
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert!(to_json(block.as_bytes(), 1 << 20, 64).unwrap_err().too_deep);
        let error = to_json(b"a: b: c", 1 << 20, 64).unwrap_err();
        assert!(error.message.starts_with("yaml: line 1: "), "{error:?}");
        assert!(to_json(b"a: *nowhere", 1 << 20, 64).is_err());
        assert!(to_json(&[0xff, 0xfe], 1 << 20, 64).is_err());
        let error = to_json(b"a: !!int x", 1 << 20, 64).unwrap_err();
        assert!(error.message.contains("!!int"));
    }
}
