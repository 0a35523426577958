//! CEL evaluation over JSON objects: values, operators with CEL's error semantics (`&&`/`||`
//! absorb errors, integer overflow and division by zero are errors), the standard functions
//! and Kubernetes' string and list libraries that policies commonly use, and a cost budget
//! charged for every step so no expression runs unbounded.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;
use serde_json::{Map, Value};

use super::parse::{BinOp, Expr, Lit, Macro};

/// A CEL value. JSON objects and arrays are borrowed, not copied.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(Cow<'a, str>),
    Bytes(Vec<u8>),
    List(Vec<Val<'a>>),
    Map(Vec<(Val<'a>, Val<'a>)>),
    JList(&'a [Value]),
    JMap(&'a Map<String, Value>),
}

/// An evaluation error, worded as cel-go words it.
pub(crate) type Res<T> = Result<T, String>;

impl<'a> Val<'a> {
    /// A JSON value as CEL sees it (integers as `int`, other numbers as `double`).
    pub(crate) fn from_json(v: &'a Value) -> Self {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Val::Int(i),
                (None, Some(u)) => Val::Uint(u),
                _ => Val::Double(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(a) => Val::JList(a),
            Value::Object(m) => Val::JMap(m),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null_type",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Uint(_) => "uint",
            Val::Double(_) => "double",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::List(_) | Val::JList(_) => "list",
            Val::Map(_) | Val::JMap(_) => "map",
        }
    }

    fn list_items(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Val::List(l) => Some(l.clone()),
            Val::JList(l) => Some(l.iter().map(Val::from_json).collect()),
            _ => None,
        }
    }

    fn map_entries(&self) -> Option<Vec<(Val<'a>, Val<'a>)>> {
        match self {
            Val::Map(m) => Some(m.clone()),
            Val::JMap(m) => Some(
                m.iter()
                    .map(|(k, v)| (Val::Str(Cow::Borrowed(k.as_str())), Val::from_json(v)))
                    .collect(),
            ),
            _ => None,
        }
    }

    fn len(&self) -> Option<usize> {
        match self {
            Val::Str(s) => Some(s.chars().count()),
            Val::Bytes(b) => Some(b.len()),
            Val::List(l) => Some(l.len()),
            Val::JList(l) => Some(l.len()),
            Val::Map(m) => Some(m.len()),
            Val::JMap(m) => Some(m.len()),
            _ => None,
        }
    }

    /// The value at map key `key`, if present.
    fn get(&self, key: &Val<'a>) -> Option<Val<'a>> {
        match (self, key) {
            (Val::JMap(m), Val::Str(k)) => m.get(k.as_ref()).map(Val::from_json),
            (Val::Map(m), k) => m
                .iter()
                .find(|(mk, _)| equal(mk, k))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    /// The value as JSON text, for `string()` and messages.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn no_overload(op: &str, args: &[&Val<'_>]) -> String {
    let types: Vec<&str> = args.iter().map(|a| a.type_name()).collect();
    format!("no such overload: {op}({})", types.join(", "))
}

/// Heterogeneous numeric comparison, as cel-go does it for `int`, `uint` and `double`.
fn num_cmp(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Uint(x), Val::Uint(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Uint(y)) => Some(if *x < 0 {
            Ordering::Less
        } else {
            x.unsigned_abs().cmp(y)
        }),
        (Val::Uint(_), Val::Int(_)) => num_cmp(b, a).map(Ordering::reverse),
        (Val::Double(x), Val::Double(y)) => x.partial_cmp(y),
        (Val::Double(x), Val::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Val::Double(x), Val::Uint(y)) => x.partial_cmp(&(*y as f64)),
        (Val::Int(_) | Val::Uint(_), Val::Double(_)) => num_cmp(b, a).map(Ordering::reverse),
        _ => None,
    }
}

/// The cost of walking `v` once: its length (strings by 8 bytes), not its elements.
fn shallow_cost(v: &Val<'_>) -> u64 {
    let n = match v {
        Val::Str(s) => s.len() / 8,
        Val::Bytes(b) => b.len() / 8,
        Val::List(l) => l.len(),
        Val::JList(l) => l.len(),
        Val::Map(m) => m.len(),
        Val::JMap(m) => m.len(),
        _ => 0,
    };
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The cost of comparing `v` whole: every element, at every depth.
fn deep_cost(v: &Val<'_>) -> u64 {
    fn json(v: &Value) -> u64 {
        match v {
            Value::Array(a) => a.iter().fold(1, |sum, x| sum.saturating_add(json(x))),
            Value::Object(m) => m.iter().fold(1, |sum, (k, x)| {
                sum.saturating_add(json(x))
                    .saturating_add(u64::try_from(k.len() / 8).unwrap_or(u64::MAX))
            }),
            Value::String(s) => 1 + u64::try_from(s.len() / 8).unwrap_or(u64::MAX),
            _ => 1,
        }
    }
    match v {
        Val::List(l) => l.iter().fold(1, |sum, x| sum.saturating_add(deep_cost(x))),
        Val::Map(m) => m.iter().fold(1, |sum, (k, x)| {
            sum.saturating_add(deep_cost(k))
                .saturating_add(deep_cost(x))
        }),
        Val::JList(l) => l.iter().fold(1, |sum, x| sum.saturating_add(json(x))),
        Val::JMap(m) => m.iter().fold(1, |sum, (k, x)| {
            sum.saturating_add(json(x))
                .saturating_add(u64::try_from(k.len() / 8).unwrap_or(u64::MAX))
        }),
        other => 1u64.saturating_add(shallow_cost(other)),
    }
}

/// CEL equality (heterogeneous: values of different types are unequal, numbers compare by
/// value).
pub(crate) fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    if let Some(o) = num_cmp(a, b) {
        return o == Ordering::Equal;
    }
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bytes(x), Val::Bytes(y)) => x == y,
        (Val::List(_) | Val::JList(_), Val::List(_) | Val::JList(_)) => {
            match (a.list_items(), b.list_items()) {
                (Some(x), Some(y)) => {
                    x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
                }
                _ => false,
            }
        }
        (Val::Map(_) | Val::JMap(_), Val::Map(_) | Val::JMap(_)) => {
            match (a.map_entries(), b.map_entries()) {
                (Some(x), Some(y)) => {
                    x.len() == y.len()
                        && x.iter()
                            .all(|(k, v)| b.get(k).is_some_and(|w| equal(v, &w)))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

fn compare(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> Res<bool> {
    let ord = num_cmp(a, b).or(match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Bytes(x), Val::Bytes(y)) => Some(x.cmp(y)),
        _ => None,
    });
    let name = match op {
        BinOp::Lt => "_<_",
        BinOp::Le => "_<=_",
        BinOp::Gt => "_>_",
        _ => "_>=_",
    };
    let Some(ord) = ord else {
        return Err(no_overload(name, &[a, b]));
    };
    Ok(match op {
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

fn arith<'a>(op: BinOp, a: Val<'a>, b: Val<'a>) -> Res<Val<'a>> {
    let overflow = || "integer overflow".to_string();
    let name = match op {
        BinOp::Add => "_+_",
        BinOp::Sub => "_-_",
        BinOp::Mul => "_*_",
        BinOp::Div => "_/_",
        _ => "_%_",
    };
    match (&a, &b) {
        (Val::Int(x), Val::Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => {
                    if y == 0 {
                        return Err("division by zero".into());
                    }
                    x.checked_div(y)
                }
                _ => {
                    if y == 0 {
                        return Err("modulus by zero".into());
                    }
                    x.checked_rem(y)
                }
            };
            r.map(Val::Int).ok_or_else(overflow)
        }
        (Val::Uint(x), Val::Uint(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => {
                    if y == 0 {
                        return Err("division by zero".into());
                    }
                    x.checked_div(y)
                }
                _ => {
                    if y == 0 {
                        return Err("modulus by zero".into());
                    }
                    x.checked_rem(y)
                }
            };
            r.map(Val::Uint).ok_or_else(overflow)
        }
        (Val::Double(x), Val::Double(y)) if op != BinOp::Rem => Ok(Val::Double(match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            _ => x / y,
        })),
        (Val::Str(x), Val::Str(y)) if op == BinOp::Add => {
            Ok(Val::Str(Cow::Owned(format!("{x}{y}"))))
        }
        (Val::Bytes(x), Val::Bytes(y)) if op == BinOp::Add => {
            Ok(Val::Bytes(x.iter().chain(y.iter()).copied().collect()))
        }
        (Val::List(_) | Val::JList(_), Val::List(_) | Val::JList(_)) if op == BinOp::Add => {
            let mut items = a.list_items().unwrap_or_default();
            items.extend(b.list_items().unwrap_or_default());
            Ok(Val::List(items))
        }
        _ => Err(no_overload(name, &[&a, &b])),
    }
}

/// What an evaluation can read: the top-level names and the lazily evaluated `variables`.
pub(crate) struct Env<'a> {
    /// `object`, `oldObject`, `request`, `params`, `namespaceObject`, ...
    pub(crate) vars: BTreeMap<&'static str, Val<'a>>,
    /// Composited variables (`variables.NAME`), evaluated on first use.
    pub(crate) composited: &'a [(String, Expr)],
}

/// One evaluation: the environment, the memo of variables, and the cost left.
pub(crate) struct Eval<'e, 'a> {
    env: &'e Env<'a>,
    memo: BTreeMap<String, Res<Val<'a>>>,
    in_progress: Vec<String>,
    budget: u64,
    locals: Vec<(String, Val<'a>)>,
}

const OUT_OF_BUDGET: &str = "operation cancelled: actual cost limit exceeded";
/// Most variables being evaluated inside one another (each adds an expression's depth of
/// recursion, itself bounded by the parser).
const MAX_VARIABLE_NESTING: usize = 16;

impl<'e, 'a> Eval<'e, 'a> {
    pub(crate) fn new(env: &'e Env<'a>, budget: u64) -> Self {
        Self {
            env,
            memo: BTreeMap::new(),
            in_progress: Vec::new(),
            budget,
            locals: Vec::new(),
        }
    }

    fn charge(&mut self, n: u64) -> Res<()> {
        if self.budget < n {
            self.budget = 0;
            return Err(OUT_OF_BUDGET.into());
        }
        self.budget -= n;
        Ok(())
    }

    fn variable(&mut self, name: &str) -> Res<Val<'a>> {
        if let Some(v) = self.memo.get(name) {
            return v.clone();
        }
        let Some((_, expr)) = self.env.composited.iter().find(|(n, _)| n == name) else {
            return Err(format!("no such key: {name}"));
        };
        if self.in_progress.iter().any(|n| n == name) {
            return Err(format!("variable {name} refers to itself"));
        }
        if self.in_progress.len() >= MAX_VARIABLE_NESTING {
            // Each level may nest a whole expression: bounded so the stack is.
            return Err(format!(
                "variables nest more than {MAX_VARIABLE_NESTING} deep at {name}"
            ));
        }
        self.in_progress.push(name.into());
        let saved = core::mem::take(&mut self.locals);
        let v = self.eval(expr);
        self.locals = saved;
        self.in_progress.pop();
        self.memo.insert(name.into(), v.clone());
        v
    }

    /// Evaluates `e`.
    pub(crate) fn eval(&mut self, e: &Expr) -> Res<Val<'a>> {
        self.charge(1)?;
        match e {
            Expr::Lit(l) => Ok(match l {
                Lit::Null => Val::Null,
                Lit::Bool(b) => Val::Bool(*b),
                Lit::Int(i) => Val::Int(*i),
                Lit::Uint(u) => Val::Uint(*u),
                Lit::Double(d) => Val::Double(*d),
                Lit::Str(s) => Val::Str(Cow::Owned(s.clone())),
                Lit::Bytes(b) => Val::Bytes(b.clone()),
            }),
            Expr::Ident(name) => {
                if let Some((_, v)) = self.locals.iter().rev().find(|(n, _)| n == name) {
                    return Ok(v.clone());
                }
                if name == "variables" {
                    return Ok(Val::Map(Vec::new()));
                }
                self.env
                    .vars
                    .get(name.as_str())
                    .cloned()
                    .ok_or_else(|| format!("undeclared reference to '{name}'"))
            }
            Expr::Select(target, field) => {
                if matches!(&**target, Expr::Ident(v) if v == "variables" && !self.locals.iter().any(|(n, _)| n == "variables"))
                {
                    return self.variable(field);
                }
                let t = self.eval(target)?;
                let key = Val::Str(Cow::Owned(unescape(field)));
                match &t {
                    Val::Map(_) | Val::JMap(_) => t
                        .get(&key)
                        .filter(|v| !matches!(v, Val::Null) || matches!(t, Val::Map(_)))
                        .ok_or_else(|| format!("no such key: {field}")),
                    _ => Err(format!(
                        "type '{}' does not support field selection",
                        t.type_name()
                    )),
                }
            }
            Expr::Has(target, field) => {
                let t = self.eval(target)?;
                let key = Val::Str(Cow::Owned(unescape(field)));
                match &t {
                    Val::JMap(m) => Ok(Val::Bool(
                        m.get(key.as_str().unwrap_or(""))
                            .is_some_and(|v| !v.is_null()),
                    )),
                    Val::Map(_) => Ok(Val::Bool(t.get(&key).is_some())),
                    _ => Err("invalid type for field selection.".to_string()),
                }
            }
            Expr::Index(target, index) => {
                let t = self.eval(target)?;
                let i = self.eval(index)?;
                match (&t, &i) {
                    (Val::List(_) | Val::JList(_), Val::Int(_) | Val::Uint(_) | Val::Double(_)) => {
                        let n = match i {
                            Val::Int(n) => n,
                            Val::Uint(u) => i64::try_from(u).unwrap_or(i64::MAX),
                            // A double index must be integral (`d as i64` saturates; the round trip checks it).
                            #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
                            Val::Double(d) if (d as i64) as f64 == d => d as i64,
                            _ => return Err("unsupported index value".into()),
                        };
                        let item = usize::try_from(n).ok().and_then(|n| match &t {
                            Val::List(l) => l.get(n).cloned(),
                            Val::JList(l) => l.get(n).map(Val::from_json),
                            _ => None,
                        });
                        item.ok_or_else(|| format!("index out of bounds: {n}"))
                    }
                    (Val::Map(_) | Val::JMap(_), _) => t
                        .get(&i)
                        .ok_or_else(|| format!("no such key: {}", display(&i))),
                    _ => Err(no_overload("_[_]", &[&t, &i])),
                }
            }
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Val::List(out))
            }
            Expr::Map(entries) => {
                let mut out: Vec<(Val<'a>, Val<'a>)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = self.eval(k)?;
                    let v = self.eval(v)?;
                    if out.iter().any(|(e, _)| equal(e, &k)) {
                        return Err(format!("Failed with repeated key: {}", display(&k)));
                    }
                    out.push((k, v));
                }
                Ok(Val::Map(out))
            }
            Expr::Not(inner) => match self.eval(inner)? {
                Val::Bool(b) => Ok(Val::Bool(!b)),
                v => Err(no_overload("!_", &[&v])),
            },
            Expr::Neg(inner) => match self.eval(inner)? {
                Val::Int(i) => i
                    .checked_neg()
                    .map(Val::Int)
                    .ok_or_else(|| "integer overflow".into()),
                Val::Double(d) => Ok(Val::Double(-d)),
                v => Err(no_overload("-_", &[&v])),
            },
            Expr::And(a, b) => self.logic(a, b, false),
            Expr::Or(a, b) => self.logic(a, b, true),
            Expr::Cond(c, a, b) => match self.eval(c)? {
                Val::Bool(true) => self.eval(a),
                Val::Bool(false) => self.eval(b),
                v => Err(no_overload("_?_:_", &[&v])),
            },
            Expr::Binary(op, a, b) => {
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                // Work proportional to the operands (comparing, concatenating, searching) is
                // paid for: deeply for equality of containers, by length otherwise.
                let cost = match op {
                    BinOp::Eq | BinOp::Ne | BinOp::In => {
                        deep_cost(&x).saturating_add(deep_cost(&y))
                    }
                    _ => shallow_cost(&x).saturating_add(shallow_cost(&y)),
                };
                self.charge(cost)?;
                match op {
                    BinOp::Eq => Ok(Val::Bool(equal(&x, &y))),
                    BinOp::Ne => Ok(Val::Bool(!equal(&x, &y))),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        compare(*op, &x, &y).map(Val::Bool)
                    }
                    BinOp::In => match &y {
                        Val::List(_) | Val::JList(_) => {
                            let items = y.list_items().unwrap_or_default();
                            self.charge(items.len() as u64)?;
                            Ok(Val::Bool(items.iter().any(|i| equal(i, &x))))
                        }
                        Val::Map(_) | Val::JMap(_) => Ok(Val::Bool(y.get(&x).is_some())),
                        _ => Err(no_overload("@in", &[&x, &y])),
                    },
                    _ => arith(*op, x, y),
                }
            }
            Expr::Comprehension {
                kind,
                range,
                var,
                pred,
                transform,
            } => self.comprehension(*kind, range, var, pred, transform.as_deref()),
            Expr::Call { target, func, args } => {
                let target = match target {
                    Some(t) => Some(self.eval(t)?),
                    None => None,
                };
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.eval(a)?);
                }
                self.call(target, func, values)
            }
        }
    }

    /// `&&` (`or` false) and `||` (`or` true), commutative over errors as CEL defines them.
    fn logic(&mut self, a: &Expr, b: &Expr, or: bool) -> Res<Val<'a>> {
        let left = self.eval(a);
        if let Ok(Val::Bool(v)) = left
            && v == or
        {
            return Ok(Val::Bool(v));
        }
        let right = self.eval(b);
        if let Ok(Val::Bool(v)) = right
            && v == or
        {
            return Ok(Val::Bool(v));
        }
        let name = if or { "_||_" } else { "_&&_" };
        match (left?, right?) {
            (Val::Bool(_), Val::Bool(_)) => Ok(Val::Bool(!or)),
            (x, y) => Err(no_overload(name, &[&x, &y])),
        }
    }

    fn comprehension(
        &mut self,
        kind: Macro,
        range: &Expr,
        var: &str,
        pred: &Expr,
        transform: Option<&Expr>,
    ) -> Res<Val<'a>> {
        let r = self.eval(range)?;
        let items: Vec<Val<'a>> = match &r {
            Val::List(_) | Val::JList(_) => r.list_items().unwrap_or_default(),
            Val::Map(_) | Val::JMap(_) => r
                .map_entries()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
            _ => return Err(no_overload("comprehension", &[&r])),
        };
        let mut count = 0usize;
        let mut error: Option<String> = None;
        let mut out = Vec::new();
        for item in items {
            self.charge(1)?;
            self.locals.push((var.into(), item.clone()));
            let p = self.eval(pred);
            let result = match (kind, p) {
                (Macro::All, Ok(Val::Bool(false))) => Some(Ok(Val::Bool(false))),
                (Macro::Exists, Ok(Val::Bool(true))) => Some(Ok(Val::Bool(true))),
                (Macro::All | Macro::Exists, Ok(Val::Bool(_))) => None,
                (Macro::All | Macro::Exists, Err(e)) => {
                    error.get_or_insert(e);
                    None
                }
                (Macro::ExistsOne, Ok(Val::Bool(b))) => {
                    count += usize::from(b);
                    None
                }
                (Macro::Filter, Ok(Val::Bool(true))) => {
                    out.push(item);
                    None
                }
                (Macro::Filter, Ok(Val::Bool(false))) => None,
                (Macro::Map, Ok(Val::Bool(keep))) => match transform {
                    Some(t) if keep => match self.eval(t) {
                        Ok(v) => {
                            out.push(v);
                            None
                        }
                        Err(e) => Some(Err(e)),
                    },
                    _ => None,
                },
                (_, Err(e)) => Some(Err(e)),
                (_, Ok(v)) => Some(Err(no_overload("comprehension predicate", &[&v]))),
            };
            self.locals.pop();
            if let Some(r) = result {
                return r;
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        Ok(match kind {
            Macro::All => Val::Bool(true),
            Macro::Exists => Val::Bool(false),
            Macro::ExistsOne => Val::Bool(count == 1),
            Macro::Map | Macro::Filter => Val::List(out),
        })
    }

    fn call(&mut self, target: Option<Val<'a>>, func: &str, args: Vec<Val<'a>>) -> Res<Val<'a>> {
        let mut all: Vec<Val<'a>> = target.into_iter().collect();
        all.extend(args);
        // A function walks its list, map or string operands at most a few times.
        let walked = all
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(shallow_cost(v)));
        self.charge(walked)?;
        let refs: Vec<&Val<'a>> = all.iter().collect();
        let bad = || no_overload(func, &refs);
        match (func, all.as_slice()) {
            ("size", [v]) => v
                .len()
                .map(|n| Val::Int(i64::try_from(n).unwrap_or(i64::MAX)))
                .ok_or_else(bad),
            ("contains", [Val::Str(s), Val::Str(t)]) => Ok(Val::Bool(s.contains(t.as_ref()))),
            ("startsWith", [Val::Str(s), Val::Str(t)]) => Ok(Val::Bool(s.starts_with(t.as_ref()))),
            ("endsWith", [Val::Str(s), Val::Str(t)]) => Ok(Val::Bool(s.ends_with(t.as_ref()))),
            ("lowerAscii", [Val::Str(s)]) => Ok(Val::Str(Cow::Owned(s.to_ascii_lowercase()))),
            ("upperAscii", [Val::Str(s)]) => Ok(Val::Str(Cow::Owned(s.to_ascii_uppercase()))),
            ("trim", [Val::Str(s)]) => Ok(Val::Str(Cow::Owned(s.trim().into()))),
            ("split", [Val::Str(s), Val::Str(sep)]) => {
                self.charge(s.len() as u64 / 8)?;
                Ok(Val::List(
                    s.split(sep.as_ref())
                        .map(|p| Val::Str(Cow::Owned(p.into())))
                        .collect(),
                ))
            }
            ("join", [list]) | ("join", [list, _]) if list.list_items().is_some() => {
                let sep = all.get(1).and_then(Val::as_str).unwrap_or("");
                let mut parts = Vec::new();
                for item in list.list_items().unwrap_or_default() {
                    match item {
                        Val::Str(s) => parts.push(s.into_owned()),
                        _ => return Err(bad()),
                    }
                }
                Ok(Val::Str(Cow::Owned(parts.join(sep))))
            }
            ("indexOf", [Val::Str(s), Val::Str(t)]) => {
                Ok(Val::Int(s.find(t.as_ref()).map_or(-1, |b| {
                    i64::try_from(s.get(..b).map_or(0, |p| p.chars().count())).unwrap_or(-1)
                })))
            }
            ("lastIndexOf", [Val::Str(s), Val::Str(t)]) => {
                Ok(Val::Int(s.rfind(t.as_ref()).map_or(-1, |b| {
                    i64::try_from(s.get(..b).map_or(0, |p| p.chars().count())).unwrap_or(-1)
                })))
            }
            ("replace", [Val::Str(s), Val::Str(a), Val::Str(b)]) => {
                self.charge(s.len() as u64 / 8)?;
                Ok(Val::Str(Cow::Owned(s.replace(a.as_ref(), b))))
            }
            ("substring", [Val::Str(s), Val::Int(start)]) => {
                let chars: Vec<char> = s.chars().collect();
                usize::try_from(*start)
                    .ok()
                    .and_then(|st| chars.get(st..))
                    .map(|c| Val::Str(Cow::Owned(c.iter().collect())))
                    .ok_or_else(|| format!("index out of range: {start}"))
            }
            ("substring", [Val::Str(s), Val::Int(start), Val::Int(end)]) => {
                let chars: Vec<char> = s.chars().collect();
                match (usize::try_from(*start), usize::try_from(*end)) {
                    (Ok(a), Ok(b)) if a <= b => chars
                        .get(a..b)
                        .map(|c| Val::Str(Cow::Owned(c.iter().collect())))
                        .ok_or_else(|| format!("index out of range: {end}")),
                    _ => Err(format!(
                        "invalid substring range. start: {start}, end: {end}"
                    )),
                }
            }
            ("charAt", [Val::Str(s), Val::Int(i)]) => {
                let count = s.chars().count();
                match usize::try_from(*i) {
                    Ok(i) if i == count => Ok(Val::Str(Cow::Owned(String::new()))),
                    Ok(i) => s
                        .chars()
                        .nth(i)
                        .map(|c| Val::Str(Cow::Owned(c.to_string())))
                        .ok_or_else(|| format!("index out of range: {i}")),
                    Err(_) => Err(format!("index out of range: {i}")),
                }
            }
            ("matches", [Val::Str(s), Val::Str(re)]) => {
                self.charge(s.len() as u64)?;
                super::regex::is_match(re, s).map(Val::Bool)
            }
            ("int", [v]) => match v {
                Val::Int(i) => Ok(Val::Int(*i)),
                Val::Uint(u) => i64::try_from(*u)
                    .map(Val::Int)
                    .map_err(|_| "range error converting uint to int".into()),
                Val::Double(d) if d.is_finite() && *d > -9.2e18 && *d < 9.2e18 => {
                    Ok(Val::Int(*d as i64))
                }
                Val::Double(_) => Err("range error converting double to int".into()),
                Val::Str(s) => s
                    .parse()
                    .map(Val::Int)
                    .map_err(|_| format!("cannot convert '{s}' to int")),
                _ => Err(bad()),
            },
            ("uint", [v]) => match v {
                Val::Uint(u) => Ok(Val::Uint(*u)),
                Val::Int(i) => u64::try_from(*i)
                    .map(Val::Uint)
                    .map_err(|_| "range error converting int to uint".into()),
                Val::Double(d) if d.is_finite() && *d >= 0.0 && *d < 1.8e19 => {
                    Ok(Val::Uint(*d as u64))
                }
                Val::Str(s) => s
                    .parse()
                    .map(Val::Uint)
                    .map_err(|_| format!("cannot convert '{s}' to uint")),
                _ => Err(bad()),
            },
            ("double", [v]) => match v {
                Val::Double(d) => Ok(Val::Double(*d)),
                Val::Int(i) => Ok(Val::Double(*i as f64)),
                Val::Uint(u) => Ok(Val::Double(*u as f64)),
                Val::Str(s) => s
                    .parse()
                    .map(Val::Double)
                    .map_err(|_| format!("cannot convert '{s}' to double")),
                _ => Err(bad()),
            },
            ("string", [v]) => match v {
                Val::Str(s) => Ok(Val::Str(s.clone())),
                Val::Int(_) | Val::Uint(_) | Val::Double(_) | Val::Bool(_) => {
                    Ok(Val::Str(Cow::Owned(display(v))))
                }
                Val::Bytes(b) => core::str::from_utf8(b)
                    .map(|s| Val::Str(Cow::Owned(s.into())))
                    .map_err(|_| "invalid UTF-8".into()),
                _ => Err(bad()),
            },
            ("bool", [v]) => match v {
                Val::Bool(b) => Ok(Val::Bool(*b)),
                Val::Str(s) => match s.as_ref() {
                    "true" | "True" | "TRUE" | "t" | "1" => Ok(Val::Bool(true)),
                    "false" | "False" | "FALSE" | "f" | "0" => Ok(Val::Bool(false)),
                    _ => Err("type conversion error from 'string' to 'bool'".to_string()),
                },
                _ => Err(bad()),
            },
            ("dyn", [v]) => Ok(v.clone()),
            ("isSorted", [list]) if list.list_items().is_some() => {
                let items = list.list_items().unwrap_or_default();
                for w in items.windows(2) {
                    if let [a, b] = w
                        && compare(BinOp::Gt, a, b)?
                    {
                        return Ok(Val::Bool(false));
                    }
                }
                Ok(Val::Bool(true))
            }
            ("sum", [list]) if list.list_items().is_some() => {
                let mut total = Val::Int(0);
                for (i, item) in list
                    .list_items()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    total = if i == 0 {
                        item
                    } else {
                        arith(BinOp::Add, total, item)?
                    };
                }
                Ok(total)
            }
            ("min" | "max", [list]) if list.list_items().is_some() => {
                let items = list.list_items().unwrap_or_default();
                let mut best: Option<Val<'a>> = None;
                for item in items {
                    best = Some(match best {
                        None => item,
                        Some(b) => {
                            let take = if func == "min" {
                                compare(BinOp::Lt, &item, &b)?
                            } else {
                                compare(BinOp::Gt, &item, &b)?
                            };
                            if take { item } else { b }
                        }
                    });
                }
                best.ok_or_else(|| format!("{func} called on empty list"))
            }
            ("indexOf" | "lastIndexOf", [list, x]) if list.list_items().is_some() => {
                let items = list.list_items().unwrap_or_default();
                let pos = if func == "indexOf" {
                    items.iter().position(|i| equal(i, x))
                } else {
                    items.iter().rposition(|i| equal(i, x))
                };
                Ok(Val::Int(pos.map_or(-1, |p| i64::try_from(p).unwrap_or(-1))))
            }
            _ => Err(bad()),
        }
    }
}

/// Kubernetes' escaping of property names that are not CEL identifiers (`__dash__`, ...).
fn unescape(field: &str) -> String {
    if !field.contains("__") {
        return field.into();
    }
    if let Some(inner) = field.strip_prefix("__").and_then(|f| f.strip_suffix("__"))
        && super::parse::is_reserved(inner)
    {
        return inner.into();
    }
    field
        .replace("__underscores__", "\u{0}")
        .replace("__dash__", "-")
        .replace("__dot__", ".")
        .replace("__slash__", "/")
        .replace('\u{0}', "__")
}

/// A value as text (messages and `string()`).
pub(crate) fn display(v: &Val<'_>) -> String {
    match v {
        Val::Null => "null".into(),
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Uint(u) => u.to_string(),
        Val::Double(d) => format!("{d}"),
        Val::Str(s) => s.to_string(),
        Val::Bytes(b) => format!("{b:?}"),
        _ => v.type_name().to_string(),
    }
}
