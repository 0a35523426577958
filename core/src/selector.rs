//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`), and the per-object label and
//! field index they are matched against. Parsing and error texts follow
//! `k8s.io/apimachinery/pkg/labels` and `pkg/fields` (v0.32); every structure is bounded.

use crate::gostr::quote;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use crate::Error;
use crate::resource::ResourceId;
use crate::validation::{label_key_errors, label_value_errors};

/// Most requirements one label selector may carry; more is a 400.
pub const MAX_LABEL_REQUIREMENTS: usize = 64;
/// Most values one `in`/`notin` requirement may list; more is a 400.
pub const MAX_REQUIREMENT_VALUES: usize = 128;
/// Most terms one field selector may carry; more is a 400.
pub const MAX_FIELD_TERMS: usize = 16;

/// A label requirement's operator (kube's `selection.Operator`, with `=`/`==` folded into `In`
/// and `!=` into `NotIn`, which match identically).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// The key exists and its value is one of the values.
    In,
    /// The key is absent, or its value is none of the values.
    NotIn,
    /// The key exists.
    Exists,
    /// The key is absent.
    DoesNotExist,
    /// The key's value, as an integer, is greater than the one value.
    Gt,
    /// The key's value, as an integer, is less than the one value.
    Lt,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: LabelOp,
    /// Values, sorted and de-duplicated as kube's `sets.String` keeps them.
    pub values: Vec<String>,
}

/// Something with labels a selector reads: owned pairs, or a stored object's index.
pub trait Labels {
    /// The value of label `key`, if the label is there.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for [(String, String)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Labels for Vec<(String, String)> {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_slice().label(key)
    }
}

/// Something with selectable fields a field selector reads; an absent field reads as `""`.
pub trait Fields {
    /// The value of field `name`, `""` when absent.
    fn field(&self, name: &str) -> &str;
}

impl<V: AsRef<str>> Fields for [(&'static str, V)] {
    fn field(&self, name: &str) -> &str {
        self.iter()
            .find(|(f, _)| *f == name)
            .map_or("", |(_, v)| v.as_ref())
    }
}

impl<V: AsRef<str>> Fields for Vec<(&'static str, V)> {
    fn field(&self, name: &str) -> &str {
        self.as_slice().field(name)
    }
}

impl LabelRequirement {
    fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let found = labels.label(&self.key);
        match self.op {
            LabelOp::In => found.is_some_and(|v| self.values.iter().any(|x| x == v)),
            LabelOp::NotIn => found.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            LabelOp::Exists => found.is_some(),
            LabelOp::DoesNotExist => found.is_none(),
            LabelOp::Gt | LabelOp::Lt => {
                let (Some(have), Some(want)) = (
                    found.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == LabelOp::Gt {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    /// Go's `Requirement.String()`, `In` and `NotIn` in their set form (`key in (a,b)`).
    fn go_string(&self) -> String {
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        let key = &self.key;
        match self.op {
            LabelOp::In => format!("{key} in ({values})"),
            LabelOp::NotIn => format!("{key} notin ({values})"),
            LabelOp::Exists => key.clone(),
            LabelOp::DoesNotExist => format!("!{key}"),
            LabelOp::Gt => format!("{key}>{values}"),
            LabelOp::Lt => format!("{key}<{values}"),
        }
    }
}

/// A parsed label selector: the AND of its requirements; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: heapless::Vec<LabelRequirement, MAX_LABEL_REQUIREMENTS>,
}

impl LabelSelector {
    /// Parses the query-string form (`a=b,c!=d,e in (f,g),!h`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let tokens = lex(text);
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
        };
        let mut requirements = parser.parse().map_err(Error::BadRequest)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        let mut out = Self::default();
        for r in requirements {
            out.push(r)?;
        }
        Ok(out)
    }

    fn push(&mut self, r: LabelRequirement) -> Result<(), Error> {
        self.requirements.push(r).map_err(|_| {
            Error::BadRequest(format!(
                "label selector has more than {MAX_LABEL_REQUIREMENTS} requirements"
            ))
        })
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`),
    /// as `metav1.LabelSelectorAsSelector` does. `{}` selects everything.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Some(obj) = value.as_object() else {
            return Err("label selector must be an object".into());
        };
        let mut out = Self::default();
        if let Some(labels) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let Some(labels) = labels.as_object() else {
                return Err("matchLabels must be an object".into());
            };
            for (k, v) in labels {
                let Some(v) = v.as_str() else {
                    return Err(format!("matchLabels[{k}] must be a string"));
                };
                let values = alloc::vec![v.to_string()];
                let r = new_requirement(k, LabelOp::In, values)?;
                out.push(r).map_err(|e| e.message())?;
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let Some(exprs) = exprs.as_array() else {
                return Err("matchExpressions must be an array".into());
            };
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
                let operator = expr.get("operator").and_then(Value::as_str).unwrap_or("");
                let Some(op) = selector_operator(operator) else {
                    return Err(format!(
                        "{} is not a valid label selector operator",
                        quote(operator)
                    ));
                };
                let mut values = Vec::new();
                if let Some(list) = expr.get("values").and_then(Value::as_array) {
                    if list.len() > MAX_REQUIREMENT_VALUES {
                        return Err(format!(
                            "a requirement may list at most {MAX_REQUIREMENT_VALUES} values"
                        ));
                    }
                    for v in list {
                        let Some(v) = v.as_str() else {
                            return Err("matchExpressions values must be strings".into());
                        };
                        values.push(v.to_string());
                    }
                }
                values.sort();
                values.dedup();
                let r = new_requirement(key, op, values)?;
                out.push(r).map_err(|e| e.message())?;
            }
        }
        out.requirements.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with `labels` is selected.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }
}

/// A `metav1.LabelSelectorOperator` (`matchExpressions[].operator`); `None` for any other.
fn selector_operator(name: &str) -> Option<LabelOp> {
    match name {
        "In" => Some(LabelOp::In),
        "NotIn" => Some(LabelOp::NotIn),
        "Exists" => Some(LabelOp::Exists),
        "DoesNotExist" => Some(LabelOp::DoesNotExist),
        _ => None,
    }
}

/// `metav1.LabelSelectorAsSelector(selector).String()`: a `metav1.LabelSelector` object in the
/// query-string form (`app=web,tier in (a,b)`), as kube shows it in a Scale's `status.selector`
/// and in wide Table columns. No selector (absent or `null`) and `{}` give the empty string, as
/// in Go; an invalid one (an unknown operator, a bad key or value, a missing or extra value, a
/// field of the wrong type) gives `None`, where Go returns an error.
///
/// Requirements are sorted by key (matchLabels' before matchExpressions' on a tie: Go's
/// insertion sort keeps that order for the small selectors objects carry); each requirement's
/// values are sorted and kept as given otherwise, duplicates included (v0.32's `safeSort` on
/// the `[]string` `NewRequirement` stores). Unlike [`LabelSelector::from_json`] this takes no
/// bound: a stored object's selector is already bounded by the object's size.
pub fn label_selector_string(selector: Option<&Value>) -> Option<String> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Some(String::new());
    };
    let selector = selector.as_object()?;
    let mut parts: Vec<(&str, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").filter(|v| !v.is_null()) {
        for (key, value) in labels.as_object()? {
            let value = value.as_str()?;
            // `selection.Equals`, which prints as `key=value`.
            new_requirement(key, LabelOp::In, alloc::vec![value.to_string()]).ok()?;
            parts.push((key, format!("{key}={value}")));
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").filter(|v| !v.is_null()) {
        for expr in exprs.as_array()? {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
            let operator = expr.get("operator").and_then(Value::as_str).unwrap_or("");
            let op = selector_operator(operator)?;
            let mut values = Vec::new();
            if let Some(list) = expr.get("values").filter(|v| !v.is_null()) {
                for value in list.as_array()? {
                    values.push(value.as_str()?.to_string());
                }
            }
            let requirement = new_requirement(key, op, values).ok()?;
            parts.push((key, requirement.go_string()));
        }
    }
    parts.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = parts.into_iter().map(|(_, text)| text).collect();
    Some(parts.join(","))
}

/// `labels.NewRequirement`'s checks, with its error wording (paths relative to a nil root).
fn new_requirement(
    key: &str,
    op: LabelOp,
    values: Vec<String>,
) -> Result<LabelRequirement, String> {
    let mut errs: Vec<String> = Vec::new();
    let key_errs = label_key_errors(key);
    if !key_errs.is_empty() {
        errs.push(format!(
            "key: Invalid value: {}: {}",
            quote(key),
            key_errs.join("; ")
        ));
    }
    let go_list = || {
        let inner: Vec<String> = values.iter().map(|v| quote(v)).collect();
        format!("[]string{{{}}}", inner.join(", "))
    };
    match op {
        LabelOp::In | LabelOp::NotIn if values.is_empty() => errs.push(format!(
            "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
            go_list()
        )),
        LabelOp::Exists | LabelOp::DoesNotExist if !values.is_empty() => errs.push(format!(
            "values: Invalid value: {}: values set must be empty for exists and does not exist",
            go_list()
        )),
        LabelOp::Gt | LabelOp::Lt => {
            if values.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                    go_list()
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        quote(v)
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = label_value_errors(v);
        if !msgs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                quote(v),
                msgs.join("; ")
            ));
        }
    }
    if !errs.is_empty() {
        return Err(aggregate(errs));
    }
    Ok(LabelRequirement {
        key: key.to_string(),
        op,
        values,
    })
}

/// `utilerrors.NewAggregate(...).Error()`: one message as is, several de-duplicated in `[..]`.
fn aggregate(mut errs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs.drain(..) {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        return seen.pop().unwrap_or_default();
    }
    format!("[{}]", seen.join(", "))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    End,
    CloseParen,
    Comma,
    Not,
    DoubleEq,
    Eq,
    Gt,
    Ident,
    In,
    Lt,
    NotEq,
    NotIn,
    OpenParen,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// The lexer of `labels.Lexer`: identifiers run until a special symbol or blank; operators are
/// matched longest-first. Returns at most `text.len() + 1` tokens.
fn lex(text: &str) -> Vec<(Tok, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while bytes.get(i).copied().is_some_and(is_space) {
            i = i.saturating_add(1);
        }
        let Some(&b) = bytes.get(i) else {
            out.push((Tok::End, ""));
            return out;
        };
        if is_special(b) {
            let two = bytes.get(i..i.saturating_add(2));
            let (tok, len) = match (two, b) {
                (Some(b"=="), _) => (Tok::DoubleEq, 2),
                (Some(b"!="), _) => (Tok::NotEq, 2),
                (_, b'=') => (Tok::Eq, 1),
                (_, b'!') => (Tok::Not, 1),
                (_, b'(') => (Tok::OpenParen, 1),
                (_, b')') => (Tok::CloseParen, 1),
                (_, b',') => (Tok::Comma, 1),
                (_, b'>') => (Tok::Gt, 1),
                _ => (Tok::Lt, 1),
            };
            let end = i.saturating_add(len);
            out.push((tok, text.get(i..end).unwrap_or("")));
            i = end;
        } else {
            let start = i;
            while bytes
                .get(i)
                .copied()
                .is_some_and(|c| !is_special(c) && !is_space(c))
            {
                i = i.saturating_add(1);
            }
            // Splits happen only at ASCII bytes, so `start..i` are char boundaries.
            let lit = text.get(start..i).unwrap_or("");
            let tok = match lit {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident,
            };
            out.push((tok, lit));
        }
    }
}

struct Parser<'a> {
    tokens: &'a [(Tok, &'a str)],
    pos: usize,
}

/// `in`/`notin` read as plain identifiers where a value is expected.
fn as_value(t: Tok) -> Tok {
    match t {
        Tok::In | Tok::NotIn => Tok::Ident,
        t => t,
    }
}

impl<'a> Parser<'a> {
    fn peek_raw(&self) -> (Tok, &'a str) {
        self.tokens.get(self.pos).copied().unwrap_or((Tok::End, ""))
    }

    fn lookahead(&self) -> (Tok, &'a str) {
        let (t, l) = self.peek_raw();
        (as_value(t), l)
    }

    fn consume_raw(&mut self) -> (Tok, &'a str) {
        let item = self.peek_raw();
        if self.pos < self.tokens.len() {
            self.pos = self.pos.saturating_add(1);
        }
        item
    }

    fn consume(&mut self) -> (Tok, &'a str) {
        let (t, l) = self.consume_raw();
        (as_value(t), l)
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, String> {
        let mut out = Vec::new();
        loop {
            let (tok, lit) = self.lookahead();
            match tok {
                Tok::Ident | Tok::Not => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    if out.len() >= MAX_LABEL_REQUIREMENTS {
                        return Err(format!(
                            "label selector has more than {MAX_LABEL_REQUIREMENTS} requirements"
                        ));
                    }
                    out.push(r);
                    let (t, l) = self.consume();
                    match t {
                        Tok::End => return Ok(out),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead();
                            if t2 != Tok::Ident && t2 != Tok::Not {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{l}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Tok::End => return Ok(out),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<LabelRequirement, String> {
        let mut negated = false;
        let (mut tok, mut lit) = self.consume();
        if tok == Tok::Not {
            negated = true;
            (tok, lit) = self.consume();
        }
        if tok != Tok::Ident {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let key_errs = label_key_errors(lit);
        if !key_errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                quote(lit),
                key_errs.join("; ")
            ));
        }
        let key = lit;
        // `!key` is complete on its own: kube returns DoesNotExist here and whatever follows
        // fails as "expected: ',' or 'end of string'".
        if negated {
            return new_requirement(key, LabelOp::DoesNotExist, Vec::new());
        }
        let (next, _) = self.lookahead();
        if next == Tok::End || next == Tok::Comma {
            return new_requirement(key, LabelOp::Exists, Vec::new());
        }
        let (tok, lit) = self.consume_raw();
        let (op, set) = match tok {
            Tok::In => (LabelOp::In, true),
            Tok::NotIn => (LabelOp::NotIn, true),
            Tok::Eq | Tok::DoubleEq => (LabelOp::In, false),
            Tok::NotEq => (LabelOp::NotIn, false),
            Tok::Gt => (LabelOp::Gt, false),
            Tok::Lt => (LabelOp::Lt, false),
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        };
        let mut values = if set {
            self.set_values()?
        } else {
            self.exact_value()?
        };
        values.sort();
        values.dedup();
        new_requirement(key, op, values)
    }

    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume();
        if tok != Tok::OpenParen {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead();
        match tok {
            Tok::Ident | Tok::Comma => {
                let values = self.identifier_list()?;
                let (tok, _) = self.consume();
                if tok != Tok::CloseParen {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Tok::CloseParen => {
                self.consume();
                Ok(alloc::vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifier_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        let too_many = || format!("a requirement may list at most {MAX_REQUIREMENT_VALUES} values");
        loop {
            if values.len() > MAX_REQUIREMENT_VALUES {
                return Err(too_many());
            }
            let (tok, lit) = self.consume();
            match tok {
                Tok::Ident => {
                    values.push(lit.to_string());
                    let (t2, l2) = self.lookahead();
                    match t2 {
                        Tok::Comma => continue,
                        Tok::CloseParen => return Ok(values),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (t2, _) = self.lookahead();
                    if t2 == Tok::CloseParen {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if t2 == Tok::Comma {
                        values.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        let (tok, _) = self.lookahead();
        if tok == Tok::End || tok == Tok::Comma {
            v.push(String::new());
            return Ok(v);
        }
        let (tok, lit) = self.consume();
        if tok == Tok::Ident {
            v.push(lit.to_string());
            return Ok(v);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Canonical field name (e.g. `spec.nodeName`; `spec.host` is folded into it).
    pub field: &'static str,
    /// Unescaped value.
    pub value: String,
    /// `!=` rather than `=`/`==`.
    pub negated: bool,
}

/// A parsed field selector for one resource type: the AND of its terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: heapless::Vec<FieldTerm, MAX_FIELD_TERMS>,
}

const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];
const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const NODE_FIELDS: &[&str] = &["metadata.name", "spec.unschedulable"];
const NAMESPACE_FIELDS: &[&str] = &["status.phase", "metadata.name"];
const SERVICE_FIELDS: &[&str] = &[
    "metadata.namespace",
    "metadata.name",
    "spec.clusterIP",
    "spec.type",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const SECRET_FIELDS: &[&str] = &["type", "metadata.namespace", "metadata.name"];
const REPLICASET_FIELDS: &[&str] = &["metadata.name", "metadata.namespace", "status.replicas"];
const JOB_FIELDS: &[&str] = &["metadata.name", "metadata.namespace", "status.successful"];

/// The field labels kube-apiserver accepts for `resource` (its registered field-label
/// conversion, or the default `metadata.name`/`metadata.namespace`).
pub fn supported_fields(resource: ResourceId) -> &'static [&'static str] {
    match resource {
        ResourceId::Pods => POD_FIELDS,
        ResourceId::Nodes => NODE_FIELDS,
        ResourceId::Namespaces => NAMESPACE_FIELDS,
        ResourceId::Services => SERVICE_FIELDS,
        ResourceId::Events => EVENT_FIELDS,
        ResourceId::Secrets => SECRET_FIELDS,
        ResourceId::ReplicaSets | ResourceId::ReplicationControllers => REPLICASET_FIELDS,
        ResourceId::Jobs => JOB_FIELDS,
        _ => META_FIELDS,
    }
}

/// Whether `resource` has its own conversion function (then unknown labels get
/// `field label not supported`); otherwise the scheme's default wording applies.
fn has_conversion_func(resource: ResourceId) -> bool {
    matches!(
        resource,
        ResourceId::Pods
            | ResourceId::Nodes
            | ResourceId::Namespaces
            | ResourceId::Services
            | ResourceId::Events
            | ResourceId::Secrets
            | ResourceId::ReplicaSets
            | ResourceId::ReplicationControllers
            | ResourceId::Jobs
    )
}

/// `events.k8s.io/v1`'s field labels and the stored Event's labels they select
/// (`AddFieldLabelConversionsForEvent`).
const EVENTS_V1_FIELD_LABELS: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

fn convert_field_label(
    resource: ResourceId,
    view: Option<crate::resource::View>,
    label: &str,
) -> Result<&'static str, String> {
    if view == Some(crate::resource::View::EventsV1) {
        return EVENTS_V1_FIELD_LABELS
            .iter()
            .find(|(from, _)| *from == label)
            .map(|(_, to)| *to)
            .ok_or_else(|| format!("field label not supported: {label}"));
    }
    if resource == ResourceId::Pods && label == "spec.host" {
        // Old v1 clients send `spec.host`; kube folds it into `spec.nodeName`.
        return Ok("spec.nodeName");
    }
    if let Some(f) = supported_fields(resource).iter().find(|f| **f == label) {
        return Ok(f);
    }
    if has_conversion_func(resource) {
        Err(format!("field label not supported: {label}"))
    } else {
        Err(format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            quote(label)
        ))
    }
}

/// `fields.splitTerms`: splits on commas not escaped by a backslash.
fn split_terms(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if text.is_empty() {
        return out;
    }
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(text.get(start..i).unwrap_or(""));
            start = i.saturating_add(1);
        }
    }
    out.push(text.get(start..).unwrap_or(""));
    out
}

/// `fields.splitTerm`: the first position holding `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..).unwrap_or("");
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                let lhs = term.get(..i).unwrap_or("");
                let rhs = rest.get(op.len()..).unwrap_or("");
                return Some((lhs, op, rhs));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // Go prints the rune with %v, i.e. as its code point number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            c => out.push(c),
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses `a=b,c!=d` for `resource`; unsupported fields are 400 as kube-apiserver says.
    pub fn parse(resource: ResourceId, text: &str) -> Result<Self, Error> {
        Self::parse_in(resource, None, text)
    }

    /// [`FieldSelector::parse`] for a request through `view` of `resource`: the labels are the
    /// view's, converted to the stored kind's.
    pub fn parse_in(
        resource: ResourceId,
        view: Option<crate::resource::View>,
        text: &str,
    ) -> Result<Self, Error> {
        let mut parts = split_terms(text);
        parts.sort_unstable();
        let mut parsed: Vec<(&str, String, bool)> = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(Error::BadRequest(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let value = unescape(rhs).map_err(Error::BadRequest)?;
            parsed.push((lhs, value, op == "!="));
        }
        let mut out = Self::default();
        for (lhs, value, negated) in parsed {
            let field = convert_field_label(resource, view, lhs).map_err(Error::BadRequest)?;
            out.terms
                .push(FieldTerm {
                    field,
                    value,
                    negated,
                })
                .map_err(|_| {
                    Error::BadRequest(format!(
                        "field selector has more than {MAX_FIELD_TERMS} terms"
                    ))
                })?;
        }
        Ok(out)
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object with these selectable `fields` is selected; an absent field reads as
    /// `""`, as kube's `fields.Set.Get` does.
    pub fn matches(&self, fields: &[(&'static str, String)]) -> bool {
        self.terms.iter().all(|t| {
            let have = fields
                .iter()
                .find(|(f, _)| *f == t.field)
                .map_or("", |(_, v)| v.as_str());
            (have == t.value) != t.negated
        })
    }

    /// Like [`FieldSelector::matches`], for an index that leaves out `metadata.name` and
    /// `metadata.namespace` (the store key already holds them).
    pub fn matches_object<F: Fields + ?Sized>(
        &self,
        namespace: &str,
        name: &str,
        fields: &F,
    ) -> bool {
        self.terms.iter().all(|t| {
            let have = match t.field {
                "metadata.name" => name,
                "metadata.namespace" => namespace,
                field => fields.field(field),
            };
            (have == t.value) != t.negated
        })
    }

    /// The value a plain `field=X` term requires, for index fast paths.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| !t.negated && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// The terms, in kube's (sorted) order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }
}

/// The object's `metadata.labels` as pairs (non-string values are skipped).
pub fn labels_of(obj: &Value) -> Vec<(String, String)> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn str_at(obj: &Value, pointer: &str) -> String {
    crate::json::str_at(obj, pointer).to_string()
}

fn bool_at(obj: &Value, pointer: &str) -> String {
    let b = crate::json::at(obj, pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    String::from(if b { "true" } else { "false" })
}

/// Every field name [`selectable_fields`] gives, in one table: a stored object's index keeps a
/// field as its place here.
pub const SELECTABLE_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
    "spec.unschedulable",
    "spec.clusterIP",
    "spec.type",
    "type",
    "status.successful",
    "status.replicas",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
];

/// The field-selector fields of `obj` for its resource type, e.g. `spec.nodeName` for pods,
/// formatted as kube's `ToSelectableFields` (booleans `true`/`false`, absent strings `""`).
pub fn selectable_fields(resource: ResourceId, obj: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(12);
    out.push(("metadata.name", str_at(obj, "/metadata/name")));
    if resource.info().namespaced {
        out.push(("metadata.namespace", str_at(obj, "/metadata/namespace")));
    }
    match resource {
        ResourceId::Pods => {
            out.push(("spec.nodeName", str_at(obj, "/spec/nodeName")));
            out.push(("spec.restartPolicy", str_at(obj, "/spec/restartPolicy")));
            out.push(("spec.schedulerName", str_at(obj, "/spec/schedulerName")));
            out.push((
                "spec.serviceAccountName",
                str_at(obj, "/spec/serviceAccountName"),
            ));
            out.push(("spec.hostNetwork", bool_at(obj, "/spec/hostNetwork")));
            out.push(("status.phase", str_at(obj, "/status/phase")));
            // kube reads the first of status.podIPs (v1 `podIP` converts into it).
            let mut ip = str_at(obj, "/status/podIPs/0/ip");
            if ip.is_empty() {
                ip = str_at(obj, "/status/podIP");
            }
            out.push(("status.podIP", ip));
            out.push((
                "status.nominatedNodeName",
                str_at(obj, "/status/nominatedNodeName"),
            ));
        }
        ResourceId::Nodes => {
            out.push(("spec.unschedulable", bool_at(obj, "/spec/unschedulable")));
        }
        ResourceId::Namespaces => {
            out.push(("status.phase", str_at(obj, "/status/phase")));
        }
        ResourceId::Services => {
            out.push(("spec.clusterIP", str_at(obj, "/spec/clusterIP")));
            out.push(("spec.type", str_at(obj, "/spec/type")));
        }
        ResourceId::Secrets => {
            out.push(("type", str_at(obj, "/type")));
        }
        ResourceId::Jobs => {
            let n = obj
                .pointer("/status/succeeded")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            out.push(("status.successful", n.to_string()));
        }
        ResourceId::ReplicaSets | ResourceId::ReplicationControllers => {
            let n = obj
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            out.push(("status.replicas", n.to_string()));
        }
        ResourceId::Events => {
            for (field, pointer) in [
                ("involvedObject.kind", "/involvedObject/kind"),
                ("involvedObject.namespace", "/involvedObject/namespace"),
                ("involvedObject.name", "/involvedObject/name"),
                ("involvedObject.uid", "/involvedObject/uid"),
                ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
                (
                    "involvedObject.resourceVersion",
                    "/involvedObject/resourceVersion",
                ),
                ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
                ("reason", "/reason"),
                ("reportingComponent", "/reportingComponent"),
                ("source", "/source/component"),
                ("type", "/type"),
            ] {
                out.push((field, str_at(obj, pointer)));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_matches_like_apimachinery() {
        // Cases from apimachinery's labels/selector_test.go (TestSelectorMatches et al.).
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case<'_>] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x==y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x in (y,z)", &[("x", "z")], true),
            ("x notin (y,z)", &[("x", "a")], true),
            ("x notin (y,z)", &[], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x>1", &[("x", "a")], false),
            ("x<1", &[("x", "2")], false),
            ("x in (y,z)", &[("x", "a")], false),
            ("x in (y,z)", &[], false),
            ("x notin (y,z)", &[("x", "y")], false),
            ("x in ()", &[("x", "")], true),
            ("x in (,a)", &[("x", "")], true),
            ("x=", &[("x", "")], true),
            (" x = y , z ", &[("x", "y"), ("z", "")], true),
            (
                "kubernetes.io/cluster-service=true",
                &[("kubernetes.io/cluster-service", "true")],
                true,
            ),
        ];
        for (text, have, want) in cases {
            let sel = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(sel.matches(&labels(have)), *want, "{text} on {have:?}");
        }
        assert!(LabelSelector::parse("").unwrap().is_empty());
        assert!(!LabelSelector::parse("a").unwrap().is_empty());
    }

    #[test]
    fn label_selector_errors_are_worded_as_kube() {
        let cases: &[(&str, &str)] = &[
            (
                "x=a||y=b",
                "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string",
            ),
            ("x==a==b", "found '==', expected: ',' or 'end of string'"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            ("x=a,", "found '', expected: identifier after ','"),
            (
                "x in (a",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "x in a",
                "unable to parse requirement: found 'a' expected: '('",
            ),
            (
                "x a",
                "unable to parse requirement: found 'a', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                ",x",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            (
                "x>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            (
                "a/b/c=d",
                "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of",
            ),
            (
                "x=a@b",
                "unable to parse requirement: values[0][x]: Invalid value: \"a@b\": a valid label must be an empty string",
            ),
        ];
        for (text, want) in cases {
            let err = LabelSelector::parse(text).unwrap_err();
            assert_eq!(err.code(), 400, "{text}");
            let msg = err.message();
            assert!(msg.starts_with(want), "{text}: {msg}");
        }
    }

    #[test]
    fn label_selector_is_bounded() {
        let many: Vec<String> = (0..=MAX_LABEL_REQUIREMENTS)
            .map(|i| format!("k{i}"))
            .collect();
        let err = LabelSelector::parse(&many.join(",")).unwrap_err();
        assert_eq!(err.code(), 400);
        let ok: Vec<String> = (0..MAX_LABEL_REQUIREMENTS)
            .map(|i| format!("k{i}"))
            .collect();
        assert!(LabelSelector::parse(&ok.join(",")).is_ok());
    }

    #[test]
    fn label_selector_from_json() {
        let sel = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "b")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "c")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "a"), ("canary", "")])));
        assert!(LabelSelector::from_json(&json!({})).unwrap().is_empty());
        let err = LabelSelector::from_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "Foo"}]
        }))
        .unwrap_err();
        assert_eq!(err, "\"Foo\" is not a valid label selector operator");
        let err = LabelSelector::from_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "In", "values": []}]
        }))
        .unwrap_err();
        assert_eq!(
            err,
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
    }

    #[test]
    fn label_selector_string_is_gos() {
        let render = |v: Value| label_selector_string(Some(&v));
        // Absent, null and empty selectors print as nothing (Go's Nothing and Everything).
        assert_eq!(label_selector_string(None).as_deref(), Some(""));
        assert_eq!(render(Value::Null).as_deref(), Some(""));
        assert_eq!(render(json!({})).as_deref(), Some(""));
        assert_eq!(
            render(json!({"matchLabels": {}, "matchExpressions": []})).as_deref(),
            Some("")
        );
        // Each operator; matchLabels print as `k=v`, a one-value `In` keeps its set form.
        let one = |op: &str, values: Value| {
            render(json!({"matchExpressions": [{"key": "k", "operator": op, "values": values}]}))
        };
        assert_eq!(
            render(json!({"matchLabels": {"k": "v"}})).as_deref(),
            Some("k=v")
        );
        assert_eq!(one("In", json!(["v"])).as_deref(), Some("k in (v)"));
        assert_eq!(
            one("NotIn", json!(["b", "a"])).as_deref(),
            Some("k notin (a,b)")
        );
        assert_eq!(one("Exists", Value::Null).as_deref(), Some("k"));
        assert_eq!(one("DoesNotExist", json!([])).as_deref(), Some("!k"));
        // Values are sorted; a repeated value stays (v0.32 sorts the slice, it keeps no set).
        assert_eq!(
            one("In", json!(["c", "a", "b"])).as_deref(),
            Some("k in (a,b,c)")
        );
        assert_eq!(
            one("In", json!(["b", "a", "b"])).as_deref(),
            Some("k in (a,b,b)")
        );
        // Requirements are sorted by key, matchLabels' first on a tie.
        let sel = json!({
            "matchLabels": {"tier": "web", "app": "x"},
            "matchExpressions": [
                {"key": "zone", "operator": "Exists"},
                {"key": "app", "operator": "NotIn", "values": ["y"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            render(sel).as_deref(),
            Some("app=x,app notin (y),!canary,tier=web,zone")
        );
        // Invalid selectors are Go's errors: no string.
        for bad in [
            json!({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}),
            json!({"matchExpressions": [{"key": "k", "operator": "Foo"}]}),
            json!({"matchExpressions": [{"key": "k", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]}),
            json!({"matchExpressions": [{"key": "a/b/c", "operator": "Exists"}]}),
            json!({"matchLabels": {"k": "not a label value"}}),
            json!({"matchLabels": {"k": 1}}),
            json!({"matchLabels": ["k"]}),
            json!("k=v"),
        ] {
            assert_eq!(render(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn field_selectors_from_kube_wire() {
        // kubectl describe node (KUBE-WIRE.md).
        let sel = FieldSelector::parse(
            ResourceId::Pods,
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed",
        )
        .unwrap();
        assert_eq!(sel.required_value("spec.nodeName"), Some("n1"));
        assert_eq!(sel.required_value("status.phase"), None);
        let pod = |node: &str, phase: &str| {
            json!({"metadata": {"name": "p", "namespace": "d"},
                   "spec": {"nodeName": node}, "status": {"phase": phase}})
        };
        let f = |v: &Value| selectable_fields(ResourceId::Pods, v);
        assert!(sel.matches(&f(&pod("n1", "Running"))));
        assert!(!sel.matches(&f(&pod("n1", "Failed"))));
        assert!(!sel.matches(&f(&pod("n2", "Running"))));
        // kubectl describe <obj> lists events (KUBE-WIRE.md).
        let sel = FieldSelector::parse(
            ResourceId::Events,
            "involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1",
        )
        .unwrap();
        let ev = json!({"metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"name": "web", "namespace": "default", "uid": "u1", "kind": "Pod"},
            "source": {"component": "kubelet"}, "type": "Normal"});
        assert!(sel.matches(&selectable_fields(ResourceId::Events, &ev)));
        let sel = FieldSelector::parse(ResourceId::Events, "source=kubelet,type==Normal").unwrap();
        assert!(sel.matches(&selectable_fields(ResourceId::Events, &ev)));
        // Watch on metadata.name=X (kubectl delete --wait).
        let sel = FieldSelector::parse(ResourceId::ConfigMaps, "metadata.name=x").unwrap();
        assert_eq!(sel.required_value("metadata.name"), Some("x"));
        // Booleans read "true"/"false"; spec.hostNetwork defaults to false.
        let sel = FieldSelector::parse(ResourceId::Pods, "spec.hostNetwork=false").unwrap();
        assert!(sel.matches(&f(&pod("n", "Running"))));
        let sel = FieldSelector::parse(ResourceId::Nodes, "spec.unschedulable=true").unwrap();
        assert!(sel.matches(&selectable_fields(
            ResourceId::Nodes,
            &json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}})
        )));
        // Old clients' spec.host is spec.nodeName.
        let sel = FieldSelector::parse(ResourceId::Pods, "spec.host=n1").unwrap();
        assert_eq!(sel.required_value("spec.nodeName"), Some("n1"));
        assert!(
            FieldSelector::parse(ResourceId::Pods, "")
                .unwrap()
                .is_empty()
        );
        assert!(
            FieldSelector::parse(ResourceId::Pods, ",")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn field_selector_escapes_and_errors() {
        let sel = FieldSelector::parse(ResourceId::Pods, r"metadata.name=a\,b\=c\\d").unwrap();
        assert_eq!(sel.required_value("metadata.name"), Some(r"a,b=c\d"));
        let cases: &[(ResourceId, &str, &str)] = &[
            (
                ResourceId::Pods,
                "foo=bar",
                "field label not supported: foo",
            ),
            (
                ResourceId::Nodes,
                "metadata.namespace=x",
                "field label not supported: metadata.namespace",
            ),
            (
                ResourceId::ConfigMaps,
                "data.x=y",
                "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
            (
                ResourceId::Pods,
                "spec.nodeName",
                "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'",
            ),
            (
                ResourceId::Pods,
                "spec.nodeName>1",
                "invalid selector: 'spec.nodeName>1'; can't understand 'spec.nodeName>1'",
            ),
            (
                ResourceId::Pods,
                r"metadata.name=a\x",
                r"invalid field selector: invalid escape sequence: \x",
            ),
            (
                ResourceId::Pods,
                "metadata.name=a=b",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (resource, text, want) in cases {
            let err = FieldSelector::parse(*resource, text).unwrap_err();
            assert_eq!(err.code(), 400);
            assert_eq!(err.message(), *want, "{text}");
        }
    }

    #[test]
    fn index_entries() {
        let obj = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"a": "1"}},
            "status": {"podIPs": [{"ip": "10.0.0.1"}]}});
        assert_eq!(labels_of(&obj), labels(&[("a", "1")]));
        let fields = selectable_fields(ResourceId::Pods, &obj);
        assert!(fields.contains(&("status.podIP", "10.0.0.1".to_string())));
        assert!(fields.contains(&("spec.nodeName", String::new())));
        let rs = selectable_fields(ResourceId::ReplicaSets, &json!({"status": {"replicas": 5}}));
        assert!(rs.contains(&("status.replicas", "5".to_string())));
    }
}
