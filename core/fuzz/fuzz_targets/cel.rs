//! The CEL parser and evaluator of ValidatingAdmissionPolicies, under a cost budget: an
//! expression (as `spec.validations[].expression` carries it) and variables over an object.
//!
//! Input: `expression FF object JSON FF variables JSON` (variables: the policy's
//! `spec.variables`, a list of `{"name", "expression"}`).
//!
//! Invariants: no panic, no unbounded allocation, and no run past libFuzzer's timeout: the
//! budget bounds the work of any expression.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The per-expression budget kube gives a policy's validation (`PerCallLimit`).
const BUDGET: u64 = 1_000_000;

fuzz_target!(|data: &[u8]| {
    let parts = common::fields(data, 3);
    let expression = common::text(&parts, 0);
    let object: Value = serde_json::from_slice(common::field(&parts, 1)).unwrap_or(Value::Null);
    let variables = match serde_json::from_slice(common::field(&parts, 2)) {
        Ok(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let _ = nautilus_core::fuzzing::cel_evaluate(
        &expression,
        &object,
        &Value::Null,
        &variables,
        BUDGET,
    );
});
