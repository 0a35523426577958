//! Field paths and sets of them, after structured-merge-diff's `fieldpath`: path elements in
//! kube's order, the set algebra server-side apply is built on, the FieldsV1 wire encoding of a
//! set and the `.spec.containers[name="web"].image` rendering conflicts are reported with.

use crate::gostr::go_quote;
pub(crate) use crate::gostr::{go_json, go_json_string};
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry as MapEntry;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt::Write as _;
use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathElement {
    /// A field of an object (`f:name`).
    Field(String),
    /// The item of an associative list with these key fields, sorted by name (`k:{...}`).
    Key(Vec<(String, Value)>),
    /// The item of a set, a list of scalars (`v:"x"`).
    Value(Value),
    /// The item of a list at this index (`i:0`), for lists whose items have no identity.
    Index(usize),
}

impl PathElement {
    pub(crate) fn field(name: &str) -> Self {
        Self::Field(name.into())
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Field(_) => 0,
            Self::Key(_) => 1,
            Self::Value(_) => 2,
            Self::Index(_) => 3,
        }
    }

    /// The FieldsV1 key: `f:name`, `k:{"name":"x"}`, `v:"x"`, `i:0`, with Go's JSON encoding.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            Self::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go_json_string(name, &mut out);
                    out.push(':');
                    go_json(value, &mut out);
                }
                out.push('}');
            }
            Self::Value(value) => {
                out.push_str("v:");
                go_json(value, &mut out);
            }
            Self::Index(i) => {
                let _ = write!(out, "i:{i}");
            }
        }
        out
    }

    /// Parses a FieldsV1 key; `Ok(None)` for a kind of element this version does not know
    /// (kube drops those), `Err` for a malformed one.
    pub(crate) fn decode(text: &str) -> Result<Option<Self>, ()> {
        let (kind, body) = match (text.get(..1), text.get(1..2), text.get(2..)) {
            (Some(kind), Some(":"), Some(body)) => (kind, body),
            _ => return Err(()),
        };
        Ok(Some(match kind {
            "f" => Self::Field(body.into()),
            "v" => Self::Value(serde_json::from_str(body).map_err(drop)?),
            "k" => {
                let Value::Object(map) = serde_json::from_str(body).map_err(drop)? else {
                    return Err(());
                };
                // serde_json's map iterates sorted by name, which is the order kube keeps keys in.
                Self::Key(map.into_iter().collect())
            }
            "i" => Self::Index(body.parse().map_err(drop)?),
            _ => return Ok(None),
        }))
    }

    /// How kube prints the element in a path (`PathElement.String`).
    pub(crate) fn describe(&self, out: &mut String) {
        match self {
            Self::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Self::Key(fields) => {
                out.push('[');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(name);
                    out.push('=');
                    describe_value(value, out);
                }
                out.push(']');
            }
            Self::Value(value) => {
                out.push_str("[=");
                describe_value(value, out);
                out.push(']');
            }
            Self::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

impl Ord for PathElement {
    /// Fields, then keys, then values, then indices (structured-merge-diff's `Compare`).
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Field(a), Self::Field(b)) => a.cmp(b),
            (Self::Key(a), Self::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Self::Value(a), Self::Value(b)) => compare_values(a, b),
            (Self::Index(a), Self::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// structured-merge-diff's total order of values: numbers (ints and floats numerically), then
/// strings, booleans, lists, maps, and null last.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((pk, pv), (qk, qv)) in x.iter().zip(y) {
                let c = pk.cmp(qk).then_with(|| compare_values(pv, qv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `value.ToString`: strings Go-quoted, numbers and booleans as they are.
fn describe_value(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => go_quote(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                describe_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            for (k, item) in map {
                out.push_str(k);
                out.push('=');
                describe_value(item, out);
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A path from the object's root.
pub(crate) type Path = Vec<PathElement>;

/// Renders a path as kube does in conflict messages (`.spec.containers[name="web"].image`).
pub(crate) fn describe_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for pe in path {
        pe.describe(&mut out);
    }
    out
}

/// A set of field paths, stored as a tree: `member` marks the path leading to the node as in the
/// set; children continue the paths. The root's own flag is never set (no one owns the object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    member: bool,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// Adds `path` (the empty path is ignored, as kube ignores it).
    pub(crate) fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let mut node = self.children.entry(first.clone()).or_default();
        for pe in rest {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }

    /// Adds the single element `pe` below this node.
    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.children.entry(pe).or_default().member = true;
    }

    /// Adds `child`'s paths below `pe`; an empty child adds nothing.
    pub(crate) fn insert_child(&mut self, pe: PathElement, child: FieldSet) {
        if child.is_empty() {
            return;
        }
        match self.children.entry(pe) {
            MapEntry::Vacant(slot) => {
                slot.insert(child);
            }
            MapEntry::Occupied(mut slot) => slot.get_mut().union_with(&child),
        }
    }

    /// The node of the field `name` directly below this one.
    pub(crate) fn field_mut(&mut self, name: &str) -> Option<&mut FieldSet> {
        self.children.iter_mut().find_map(|(pe, node)| match pe {
            PathElement::Field(field) if field == name => Some(node),
            _ => None,
        })
    }

    /// Takes this node itself out of the set; the paths below it stay.
    pub(crate) fn unmark(&mut self) {
        self.member = false;
    }

    /// Drops every node with no member at or below it (what [`Self::difference`] leaves out);
    /// answers whether a node is left.
    pub(crate) fn prune(&mut self) -> bool {
        self.children
            .retain(|_, child| child.prune() || child.member);
        !self.children.is_empty()
    }

    /// Keeps the children directly below this node whose element passes `keep`.
    pub(crate) fn retain(&mut self, keep: impl Fn(&PathElement) -> bool) {
        self.children.retain(|pe, _| keep(pe));
    }

    /// Whether `path` itself is in the set.
    pub(crate) fn has(&self, path: &[PathElement]) -> bool {
        !path.is_empty() && self.node(path).is_some_and(|n| n.member)
    }

    /// Whether the element `pe` just below this node is in the set.
    pub(crate) fn has_member(&self, pe: &PathElement) -> bool {
        self.children.get(pe).is_some_and(|n| n.member)
    }

    /// The paths below `pe`, relative to it (`WithPrefix`).
    pub(crate) fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe).filter(|c| !c.children.is_empty())
    }

    fn node(&self, path: &[PathElement]) -> Option<&FieldSet> {
        let mut node = self;
        for pe in path {
            node = node.children.get(pe)?;
        }
        Some(node)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.children.values().all(|c| !c.member && c.is_empty())
    }

    pub(crate) fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (pe, theirs) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(theirs),
                None => {
                    self.children.insert(pe.clone(), theirs.clone());
                }
            }
        }
    }

    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Removes `other`'s members; paths below a removed member stay (kube's `Difference`).
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (pe, mine) in &self.children {
            let child = match other.children.get(pe) {
                Some(theirs) => mine.difference(theirs),
                None => mine.clone(),
            };
            if child.member || !child.is_empty() {
                out.children.insert(pe.clone(), child);
            }
        }
        out
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (pe, mine) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = mine.intersection(theirs);
                if both.member || !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Every named field on the way to a member becomes a member itself
    /// (`EnsureNamedFieldsAreMembers`). Every object of the served types is a struct or a map of
    /// scalars, so every field element with paths below it is a named field.
    pub(crate) fn with_named_fields(&self) -> FieldSet {
        let mut out = FieldSet {
            member: self.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let mut child = child.with_named_fields();
            if matches!(pe, PathElement::Field(_)) && !child.children.is_empty() {
                child.member = true;
            }
            out.children.insert(pe.clone(), child);
        }
        out
    }

    /// Every member path in kube's iteration order: a node's members first, then the paths
    /// below each child, both sorted by element.
    pub(crate) fn paths(&self) -> Vec<Path> {
        fn walk(set: &FieldSet, prefix: &mut Path, out: &mut Vec<Path>) {
            for (pe, child) in &set.children {
                if child.member {
                    let mut p = prefix.clone();
                    p.push(pe.clone());
                    out.push(p);
                }
            }
            for (pe, child) in &set.children {
                prefix.push(pe.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// Decodes a FieldsV1 object; `Err` when a key is malformed or a value is not an object.
    pub(crate) fn from_v1(v: &Value) -> Result<FieldSet, ()> {
        let Value::Object(map) = v else {
            return Err(());
        };
        let mut set = FieldSet::default();
        for (key, child) in map {
            if key == "." {
                if !child.is_object() {
                    return Err(());
                }
                continue;
            }
            let Some(pe) = PathElement::decode(key)? else {
                continue;
            };
            let mut node = FieldSet::from_v1(child)?;
            // kube's readIterV1: `.` marks a member, and so does a node with nothing below it.
            let marked = child.as_object().is_some_and(|m| m.contains_key("."));
            node.member = marked || node.children.is_empty();
            set.children.insert(pe, node);
        }
        Ok(set)
    }

    /// Encodes as FieldsV1: `{}` for a member leaf, `".": {}` for a member with paths below.
    pub(crate) fn to_v1(&self) -> Value {
        let mut map = Map::new();
        for (pe, child) in &self.children {
            if !child.member && child.is_empty() {
                continue;
            }
            let mut inner = child.to_v1();
            if child.member
                && !child.children.is_empty()
                && let Some(m) = inner.as_object_mut()
            {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            map.insert(pe.encode(), inner);
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::field(name)
    }

    #[test]
    fn elements_order_encode_and_print_as_kube() {
        let key = |port: i64| {
            PathElement::Key(alloc::vec![
                ("containerPort".into(), json!(port)),
                ("protocol".into(), json!("TCP")),
            ])
        };
        // Numbers order numerically, not as text; fields before keys before values before indices.
        let mut pes = alloc::vec![
            PathElement::Index(0),
            PathElement::Value(json!("a")),
            key(10),
            key(9),
            f("z"),
        ];
        pes.sort();
        assert_eq!(
            pes,
            alloc::vec![
                f("z"),
                key(9),
                key(10),
                PathElement::Value(json!("a")),
                PathElement::Index(0)
            ]
        );
        assert_eq!(
            key(80).encode(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        assert_eq!(PathElement::Value(json!("a<b")).encode(), r#"v:"a\u003cb""#);
        assert_eq!(PathElement::decode("x:y"), Ok(None));
        assert_eq!(PathElement::decode("k:[1]"), Err(()));
        assert_eq!(PathElement::decode("f"), Err(()));
        let path = alloc::vec![
            f("spec"),
            f("containers"),
            PathElement::Key(alloc::vec![("name".into(), json!("web"))]),
            f("ports"),
            key(80),
        ];
        assert_eq!(
            describe_path(&path),
            r#".spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#
        );
        assert_eq!(
            describe_path(&[f("finalizers"), PathElement::Value(json!("a\tb"))]),
            r#".finalizers[="a\tb"]"#
        );
    }

    #[test]
    fn fields_v1_round_trips_and_iterates_members_first() {
        let v1 = json!({"f:data": {".": {}, "f:a": {}}, "f:b": {}, "f:metadata": {"f:labels": {"f:x": {}}}});
        let set = FieldSet::from_v1(&v1).unwrap();
        assert_eq!(set.to_v1(), v1);
        let printed: Vec<String> = set.paths().iter().map(|p| describe_path(p)).collect();
        assert_eq!(
            printed,
            alloc::vec![".b", ".data", ".data.a", ".metadata.labels.x"]
        );
        assert!(set.has(&[f("data")]));
        assert!(!set.has(&[f("metadata")]));
        // A difference keeps what lies below a removed member.
        let mut data = FieldSet::default();
        data.insert(&[f("data")]);
        assert_eq!(
            set.difference(&data).to_v1(),
            json!({"f:data": {"f:a": {}}, "f:b": {}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
        assert_eq!(
            set.with_named_fields().to_v1(),
            json!({"f:data": {".": {}, "f:a": {}}, "f:b": {},
                   "f:metadata": {".": {}, "f:labels": {".": {}, "f:x": {}}}})
        );
        assert!(FieldSet::from_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_v1(&json!({"k:{": {}})).is_err());
    }
}
