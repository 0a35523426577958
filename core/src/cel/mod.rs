//! A bounded Common Expression Language evaluator for ValidatingAdmissionPolicies: the parser
//! of the whole expression grammar with the standard macros, and the evaluation of the subset
//! policies use (field selection, `has()`, comparisons, arithmetic, logic, `in`, list and map
//! literals, `size()`, the string library, conversions, `matches()`, `variables.NAME`) over
//! JSON objects, under a cost budget. No type checking: a type error is found when the
//! expression runs, as a runtime error.

mod eval;
mod parse;
mod regex;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

pub(crate) use eval::Val;
pub(crate) use parse::{Expr, parse};

/// The inputs of one policy evaluation.
pub(crate) struct Bindings<'a> {
    /// Top-level names (`object`, `oldObject`, `request`, `params`, `namespaceObject`).
    pub(crate) vars: BTreeMap<&'static str, &'a Value>,
    /// The policy's variables in order (`variables.NAME`), evaluated on first use.
    pub(crate) variables: &'a [(String, Expr)],
}

/// One evaluation session: variables are evaluated once and shared by every expression.
pub(crate) struct Session<'e, 'a> {
    eval: eval::Eval<'e, 'a>,
}

/// The environment a session reads.
pub(crate) struct Environment<'a> {
    env: eval::Env<'a>,
}

impl<'a> Environment<'a> {
    /// An environment over `bindings` (JSON `null` for an absent object, as kube binds it).
    pub(crate) fn new(bindings: &Bindings<'a>) -> Self {
        Self {
            env: eval::Env {
                vars: bindings
                    .vars
                    .iter()
                    .map(|(k, v)| (*k, Val::from_json(v)))
                    .collect(),
                composited: bindings.variables,
            },
        }
    }

    /// A session with `budget` cost units for every expression it evaluates together.
    pub(crate) fn session(&self, budget: u64) -> Session<'_, 'a> {
        Session {
            eval: eval::Eval::new(&self.env, budget),
        }
    }
}

impl<'a> Session<'_, 'a> {
    /// Evaluates `expr`; a runtime error (no such key, no such overload, out of budget) is
    /// the `Err`.
    pub(crate) fn eval(&mut self, expr: &Expr) -> Result<Val<'a>, String> {
        self.eval.eval(expr)
    }

    /// Evaluates `expr` expecting a boolean.
    pub(crate) fn eval_bool(&mut self, expr: &Expr) -> Result<bool, String> {
        match self.eval(expr)? {
            Val::Bool(b) => Ok(b),
            other => Err(alloc::format!(
                "expected a boolean, got {}",
                eval::display(&other)
            )),
        }
    }
}

/// The compiled variables of a policy (`spec.variables`), skipping those that do not parse
/// (validation refused them at write time).
pub(crate) fn compile_variables(variables: &[Value]) -> Vec<(String, Expr)> {
    variables
        .iter()
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?;
            let expr = parse(v.get("expression")?.as_str()?).ok()?;
            Some((String::from(name), expr))
        })
        .collect()
}

/// Parses and evaluates `src` against `object` (bound as `object`, `oldObject` as `old`) with
/// `variables` (`spec.variables` entries) and `budget` cost units, the way an admission policy
/// runs it; the value as CEL displays it, or the parse or runtime error. For the fuzz targets,
/// which need the parser and evaluator without a policy around them.
#[doc(hidden)]
pub fn evaluate_for_fuzzing(
    src: &str,
    object: &Value,
    old: &Value,
    variables: &[Value],
    budget: u64,
) -> Result<String, String> {
    let compiled = compile_variables(variables);
    let bindings = Bindings {
        vars: [("object", object), ("oldObject", old)]
            .into_iter()
            .collect(),
        variables: &compiled,
    };
    let env = Environment::new(&bindings);
    let mut session = env.session(budget);
    let expr = parse(src)?;
    session.eval(&expr).map(|v| eval::display(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, object: &Value) -> Result<String, String> {
        run_with(src, object, &[])
    }

    fn run_with(src: &str, object: &Value, variables: &[Value]) -> Result<String, String> {
        let vars = compile_variables(variables);
        let null = Value::Null;
        let bindings = Bindings {
            vars: [("object", object), ("oldObject", &null)]
                .into_iter()
                .collect(),
            variables: &vars,
        };
        let env = Environment::new(&bindings);
        let mut session = env.session(100_000);
        let expr = parse(src)?;
        session.eval(&expr).map(|v| eval::display(&v))
    }

    #[test]
    fn evaluates_what_policies_use() {
        let d = json!({"metadata": {"name": "web", "labels": {"app": "web", "tier-x": "1"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "a", "image": "registry.example.com/a:1"},
                {"name": "b", "image": "docker.io/b"}]}}}});
        for (src, want) in [
            ("object.spec.replicas > 1", "true"),
            ("object.spec.replicas % 2 == 1", "true"),
            (
                "object.spec.replicas <= 100 && object.metadata.name == 'web'",
                "true",
            ),
            ("has(object.spec.paused)", "false"),
            ("has(object.metadata.labels)", "true"),
            ("size(object.spec.template.spec.containers)", "2"),
            (
                "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
                "false",
            ),
            (
                "object.spec.template.spec.containers.exists(c, c.name == 'b')",
                "true",
            ),
            (
                "object.spec.template.spec.containers.exists_one(c, c.image.contains('/'))",
                "false",
            ),
            (
                "object.spec.template.spec.containers.map(c, c.name).join(',')",
                "a,b",
            ),
            (
                "object.spec.template.spec.containers.filter(c, c.name != 'a').size()",
                "1",
            ),
            ("'app' in object.metadata.labels", "true"),
            ("object.metadata.labels.tier__dash__x == '1'", "true"),
            ("object.metadata.name.matches('^w[a-z]+$')", "true"),
            ("object.spec.replicas > 1.5 ? 'big' : 'small'", "big"),
            ("[1, 2, 3].sum() + int('4')", "10"),
            (
                "'a,b'.split(',').size() == 2 && 'Ab'.lowerAscii() == 'ab'",
                "true",
            ),
            ("1 == 1.0 && 2u == 2", "true"),
            ("!(false || false)", "true"),
        ] {
            assert_eq!(run(src, &d).as_deref(), Ok(want), "{src}");
        }
    }

    #[test]
    fn errors_as_cel_reports_them() {
        let d = json!({"spec": {"replicas": 1}});
        assert!(
            run("object.spec.missing > 1", &d)
                .unwrap_err()
                .contains("no such key: missing")
        );
        assert!(
            run("'got ' + object.spec.replicas", &d)
                .unwrap_err()
                .contains("no such overload")
        );
        assert!(run("1 / 0", &d).unwrap_err().contains("division by zero"));
        assert!(
            run("9223372036854775807 + 1", &d)
                .unwrap_err()
                .contains("overflow")
        );
        // `||` and `&&` absorb an error when the other side decides.
        assert_eq!(
            run("object.spec.missing > 1 || true", &d).as_deref(),
            Ok("true")
        );
        assert_eq!(
            run("false && object.spec.missing", &d).as_deref(),
            Ok("false")
        );
        assert!(
            parse("object.spec.replicas >")
                .unwrap_err()
                .starts_with("ERROR: <input>:1:")
        );
        assert!(parse("a +* b").is_err());
        let deep = alloc::format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).is_err());
        // The budget stops a runaway expression.
        let big = "[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, [1,2,3,4,5,6,7,8,9,10].map(e, a+b+c+d+e)))))";
        assert!(run(big, &d).unwrap_err().contains("cost limit"));
        // Work on big operands is paid by their size: comparing or searching a 200,000
        // element list once is over a 100,000 budget, indexing it is not.
        let items: Vec<Value> = (0..200_000).map(Value::from).collect();
        let long = json!({"items": items});
        assert!(
            run("object.items == object.items", &long)
                .unwrap_err()
                .contains("cost limit")
        );
        assert!(
            run("-1 in object.items", &long)
                .unwrap_err()
                .contains("cost limit")
        );
        assert!(
            run("object.items.indexOf(7) == 7", &long)
                .unwrap_err()
                .contains("cost limit")
        );
        assert_eq!(run("object.items[199999]", &long).as_deref(), Ok("199999"));
    }

    #[test]
    fn variables_are_lazy_and_shared() {
        let d = json!({"spec": {"replicas": 3}});
        let vars = [
            json!({"name": "replicas", "expression": "object.spec.replicas"}),
            json!({"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}),
            json!({"name": "broken", "expression": "object.nothing"}),
        ];
        assert_eq!(
            run_with("variables.replicas > 1", &d, &vars).as_deref(),
            Ok("true")
        );
        assert_eq!(
            run_with("variables.oddReplicas", &d, &vars).as_deref(),
            Ok("true")
        );
        assert!(run_with("variables.broken", &d, &vars).is_err());
        let cyclic = [json!({"name": "a", "expression": "variables.a + 1"})];
        assert!(
            run_with("variables.a", &d, &cyclic)
                .unwrap_err()
                .contains("refers to itself")
        );
        // A chain of variables deeper than the bound stops there instead of growing the stack.
        let chain: Vec<Value> = (0..40)
            .map(|i| {
                let expression = if i == 0 {
                    String::from("1")
                } else {
                    alloc::format!("variables.v{} + 1", i - 1)
                };
                json!({"name": alloc::format!("v{i}"), "expression": expression})
            })
            .collect();
        assert_eq!(run_with("variables.v10", &d, &chain).as_deref(), Ok("11"));
        assert!(
            run_with("variables.v39", &d, &chain)
                .unwrap_err()
                .contains("nest more than 16")
        );
    }
}
