//! `autoscaling/v1` HorizontalPodAutoscaler over the stored `autoscaling/v2` one, as kube's
//! `pkg/apis/autoscaling/v1` conversion does it: v1's `targetCPUUtilizationPercentage` is a v2
//! Resource metric on cpu with a Utilization target (80 when a v1 object names no metric at
//! all), and what v1 cannot express travels in annotations — the other metrics and the current
//! metrics as v1 (`v2beta1`-style) metric specs and statuses, the conditions, and the behavior
//! as kube writes its internal type (Go field names).

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

/// `autoscaling.MetricSpecsAnnotation`.
pub(super) const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub(super) const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub(super) const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub(super) const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `autoscaling.DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// An object with only the present (non-null) fields of `fields`.
fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    let mut map = Map::new();
    for (key, value) in fields {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            map.insert(key.into(), value);
        }
    }
    Value::Object(map)
}

fn field(v: &Value, key: &str) -> Option<Value> {
    v.get(key).filter(|v| !v.is_null()).cloned()
}

/// A Go `resource.Quantity` that is no pointer: its zero value prints as `"0"`.
fn quantity(v: &Value, key: &str) -> Option<Value> {
    Some(field(v, key).unwrap_or_else(|| Value::from("0")))
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric
            .pointer("/resource/target/averageUtilization")
            .is_some_and(|u| !u.is_null())
}

/// Which half of a metric a v2 → v1 conversion reads: a spec's `target` or a status's
/// `current`. v1 names the values after it (`targetValue`, `currentAverageValue`, ...), and
/// keeps some as pointers in a spec where a status has plain quantities.
struct Half {
    /// The v2 object holding the values, and v1's prefix of their names.
    side: &'static str,
    /// How v1 keeps a Resource or External source's value: a pointer (absent stays absent) in
    /// a spec, a quantity (absent prints "0") in a status.
    value: fn(&Value, &str) -> Option<Value>,
}

const SPEC: Half = Half {
    side: "target",
    value: field,
};
const STATUS: Half = Half {
    side: "current",
    value: quantity,
};

/// A v2 `MetricSpec` (`SPEC`) or `MetricStatus` (`STATUS`) as a v1 one, in the order of the
/// v1 Go types' fields.
fn metric_to_v1(m: &Value, half: &Half) -> Go {
    let empty = Value::Null;
    let source = |key: &str| m.get(key).filter(|s| !s.is_null());
    let values = |s: &Value| s.get(half.side).cloned().unwrap_or(Value::Null);
    let ident = |s: &Value| s.get("metric").cloned().unwrap_or(Value::Null);
    let selector_of = |id: &Value, key: &str| id.get(key).filter(|s| !s.is_null()).map(selector);
    let named = |name: &str| alloc::format!("{}{name}", half.side);
    let (value, average_value, average_utilization) = (
        named("Value"),
        named("AverageValue"),
        named("AverageUtilization"),
    );
    let object_v1 = source("object").map(|s| {
        let (v, id) = (values(s), ident(s));
        Go::fields([
            (
                "target",
                Some(reference_v1(s.get("describedObject").unwrap_or(&empty))),
            ),
            ("metricName", go(field(&id, "name"))),
            (&value, go(quantity(&v, "value"))),
            ("selector", selector_of(&id, "selector")),
            ("averageValue", go(field(&v, "averageValue"))),
        ])
    });
    let pods = source("pods").map(|s| {
        let (v, id) = (values(s), ident(s));
        Go::fields([
            ("metricName", go(field(&id, "name"))),
            (&average_value, go(quantity(&v, "averageValue"))),
            ("selector", selector_of(&id, "selector")),
        ])
    });
    let resource = |s: &Value, container: Option<Value>| {
        let v = values(s);
        Go::fields([
            ("name", go(field(s, "name"))),
            (&average_utilization, go(field(&v, "averageUtilization"))),
            (&average_value, go((half.value)(&v, "averageValue"))),
            ("container", go(container)),
        ])
    };
    let external = source("external").map(|s| {
        let (v, id) = (values(s), ident(s));
        Go::fields([
            ("metricName", go(field(&id, "name"))),
            ("metricSelector", selector_of(&id, "selector")),
            (&value, go((half.value)(&v, "value"))),
            (&average_value, go(field(&v, "averageValue"))),
        ])
    });
    Go::fields([
        ("type", go(field(m, "type"))),
        ("object", object_v1),
        ("pods", pods),
        ("resource", source("resource").map(|s| resource(s, None))),
        (
            "containerResource",
            source("containerResource").map(|s| resource(s, field(s, "container"))),
        ),
        ("external", external),
    ])
}

/// A v1 `MetricSpec` as a v2 one.
fn metric_to_v2(m: &Value) -> Value {
    let empty = Value::Null;
    let source = |key: &str| m.get(key).filter(|s| !s.is_null());
    let ident = |s: &Value, name: &str, selector: &str| {
        object([("name", field(s, name)), ("selector", field(s, selector))])
    };
    let object_v2 = source("object").map(|s| {
        let kind = if field(s, "averageValue").is_some() {
            "AverageValue"
        } else {
            "Value"
        };
        object([
            (
                "describedObject",
                Some(reference(s.get("target").unwrap_or(&empty))),
            ),
            (
                "target",
                Some(object([
                    ("type", Some(Value::from(kind))),
                    ("value", quantity(s, "targetValue")),
                    ("averageValue", field(s, "averageValue")),
                ])),
            ),
            ("metric", Some(ident(s, "metricName", "selector"))),
        ])
    });
    let pods = source("pods").map(|s| {
        object([
            ("metric", Some(ident(s, "metricName", "selector"))),
            (
                "target",
                Some(object([
                    ("type", Some(Value::from("AverageValue"))),
                    ("averageValue", quantity(s, "targetAverageValue")),
                ])),
            ),
        ])
    });
    let utilization_target = |s: &Value| {
        let kind = if field(s, "targetAverageUtilization").is_some() {
            "Utilization"
        } else {
            "AverageValue"
        };
        object([
            ("type", Some(Value::from(kind))),
            ("averageValue", field(s, "targetAverageValue")),
            ("averageUtilization", field(s, "targetAverageUtilization")),
        ])
    };
    let resource = source("resource").map(|s| {
        object([
            ("name", field(s, "name")),
            ("target", Some(utilization_target(s))),
        ])
    });
    let container = source("containerResource").map(|s| {
        object([
            ("name", field(s, "name")),
            ("target", Some(utilization_target(s))),
            ("container", field(s, "container")),
        ])
    });
    let external = source("external").map(|s| {
        let kind = if field(s, "targetValue").is_some() {
            "Value"
        } else {
            "AverageValue"
        };
        object([
            ("metric", Some(ident(s, "metricName", "metricSelector"))),
            (
                "target",
                Some(object([
                    ("type", Some(Value::from(kind))),
                    ("value", field(s, "targetValue")),
                    ("averageValue", field(s, "targetAverageValue")),
                ])),
            ),
        ])
    });
    object([
        ("type", field(m, "type")),
        ("object", object_v2),
        ("pods", pods),
        ("resource", resource),
        ("containerResource", container),
        ("external", external),
    ])
}

/// A v1 `MetricStatus` as a v2 one.
fn status_to_v2(m: &Value) -> Value {
    let empty = Value::Null;
    let source = |key: &str| m.get(key).filter(|s| !s.is_null());
    let ident = |s: &Value, name: &str, selector: &str| {
        object([("name", field(s, name)), ("selector", field(s, selector))])
    };
    let object_v2 = source("object").map(|s| {
        object([
            ("metric", Some(ident(s, "metricName", "selector"))),
            (
                "current",
                Some(object([
                    ("value", quantity(s, "currentValue")),
                    ("averageValue", field(s, "averageValue")),
                ])),
            ),
            (
                "describedObject",
                Some(reference(s.get("target").unwrap_or(&empty))),
            ),
        ])
    });
    let pods = source("pods").map(|s| {
        object([
            ("metric", Some(ident(s, "metricName", "selector"))),
            (
                "current",
                Some(object([(
                    "averageValue",
                    quantity(s, "currentAverageValue"),
                )])),
            ),
        ])
    });
    let utilization_current = |s: &Value| {
        object([
            ("averageValue", quantity(s, "currentAverageValue")),
            ("averageUtilization", field(s, "currentAverageUtilization")),
        ])
    };
    let resource = source("resource").map(|s| {
        object([
            ("name", field(s, "name")),
            ("current", Some(utilization_current(s))),
        ])
    });
    let container = source("containerResource").map(|s| {
        object([
            ("name", field(s, "name")),
            ("current", Some(utilization_current(s))),
            ("container", field(s, "container")),
        ])
    });
    let external = source("external").map(|s| {
        object([
            ("metric", Some(ident(s, "metricName", "metricSelector"))),
            (
                "current",
                Some(object([
                    ("value", quantity(s, "currentValue")),
                    ("averageValue", field(s, "currentAverageValue")),
                ])),
            ),
        ])
    });
    object([
        ("type", field(m, "type")),
        ("object", object_v2),
        ("pods", pods),
        ("resource", resource),
        ("containerResource", container),
        ("external", external),
    ])
}

/// A `CrossVersionObjectReference` (kind, name, apiVersion).
fn reference(r: &Value) -> Value {
    object([
        (
            "kind",
            Some(field(r, "kind").unwrap_or_else(|| Value::from(""))),
        ),
        (
            "name",
            Some(field(r, "name").unwrap_or_else(|| Value::from(""))),
        ),
        ("apiVersion", field(r, "apiVersion")),
    ])
}

/// A v1 `CrossVersionObjectReference` (kind, name, apiVersion).
fn reference_v1(r: &Value) -> Go {
    let text = |key: &str| Some(Go::Json(field(r, key).unwrap_or_else(|| Value::from(""))));
    Go::fields([
        ("kind", text("kind")),
        ("name", text("name")),
        ("apiVersion", go(field(r, "apiVersion"))),
    ])
}

/// A `metav1.LabelSelector` (matchLabels, then matchExpressions of key, operator, values),
/// leaving out what is empty as its `omitempty` tags do.
fn selector(s: &Value) -> Go {
    let non_empty = |v: Option<&Value>| {
        v.filter(|v| v.as_array().is_none_or(|l| !l.is_empty()))
            .filter(|v| v.as_object().is_none_or(|m| !m.is_empty()))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let requirements = non_empty(s.get("matchExpressions")).map(|list| {
        Go::List(
            list.as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let text = |key: &str| field(r, key).unwrap_or_else(|| Value::from(""));
                    Go::fields([
                        ("key", Some(Go::Json(text("key")))),
                        ("operator", Some(Go::Json(text("operator")))),
                        ("values", go(non_empty(r.get("values")))),
                    ])
                })
                .collect(),
        )
    });
    Go::fields([
        ("matchLabels", go(non_empty(s.get("matchLabels")))),
        ("matchExpressions", requirements),
    ])
}

/// A v2 condition as the v1 `HorizontalPodAutoscalerCondition` (type, status,
/// lastTransitionTime — null when unset, as Go writes a zero `metav1.Time` — reason, message).
fn condition_to_v1(c: &Value) -> Go {
    let text = |key: &str| field(c, key).filter(|v| v.as_str() != Some(""));
    Go::fields([
        (
            "type",
            Some(Go::Json(
                field(c, "type").unwrap_or_else(|| Value::from("")),
            )),
        ),
        (
            "status",
            Some(Go::Json(
                field(c, "status").unwrap_or_else(|| Value::from("")),
            )),
        ),
        (
            "lastTransitionTime",
            Some(Go::Json(
                field(c, "lastTransitionTime").unwrap_or(Value::Null),
            )),
        ),
        ("reason", go(text("reason"))),
        ("message", go(text("message"))),
    ])
}

/// The v2 behavior as kube writes its internal type into the annotation: Go field names in
/// declaration order, every field present (a nil pointer as null).
fn behavior_to_internal(b: &Value) -> Go {
    let or = |v: Option<&Value>, zero: Value| Some(Go::Json(v.cloned().unwrap_or(zero)));
    let rules = |r: Option<&Value>| match r.filter(|r| !r.is_null()) {
        None => Go::Json(Value::Null),
        Some(r) => {
            let policies = match r.get("policies").filter(|p| !p.is_null()) {
                None => Go::Json(Value::Null),
                Some(list) => Go::List(
                    list.as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            Go::fields([
                                ("Type", or(p.get("type"), Value::from(""))),
                                ("Value", or(p.get("value"), Value::from(0))),
                                ("PeriodSeconds", or(p.get("periodSeconds"), Value::from(0))),
                            ])
                        })
                        .collect(),
                ),
            };
            Go::fields([
                (
                    "StabilizationWindowSeconds",
                    or(r.get("stabilizationWindowSeconds"), Value::Null),
                ),
                ("SelectPolicy", or(r.get("selectPolicy"), Value::Null)),
                ("Policies", Some(policies)),
            ])
        }
    };
    Go::fields([
        ("ScaleUp", Some(rules(b.get("scaleUp")))),
        ("ScaleDown", Some(rules(b.get("scaleDown")))),
    ])
}

/// The annotation's internal behavior as the v2 field; `None` when it is empty or unreadable.
fn behavior_from_internal(b: &Value) -> Option<Value> {
    let rules = |r: Option<&Value>| {
        r.filter(|r| r.is_object()).map(|r| {
            let policies = r.get("Policies").and_then(Value::as_array).map(|list| {
                Value::Array(
                    list.iter()
                        .map(|p| {
                            object([
                                ("type", field(p, "Type")),
                                ("value", field(p, "Value")),
                                ("periodSeconds", field(p, "PeriodSeconds")),
                            ])
                        })
                        .collect(),
                )
            });
            object([
                (
                    "stabilizationWindowSeconds",
                    field(r, "StabilizationWindowSeconds"),
                ),
                ("selectPolicy", field(r, "SelectPolicy")),
                ("policies", policies),
            ])
        })
    };
    let (up, down) = (rules(b.get("ScaleUp")), rules(b.get("ScaleDown")));
    if up.is_none() && down.is_none() {
        return None;
    }
    Some(object([("scaleUp", up), ("scaleDown", down)]))
}

fn annotations(map: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    map.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .map(|m| {
            m.entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()))
        })
        .and_then(Value::as_object_mut)
}

/// Removes the round-trip annotations (`DropRoundTripHorizontalPodAutoscalerAnnotations`),
/// returning them, and the annotations map itself when nothing else is left in it.
fn take_round_trip(map: &mut Map<String, Value>) -> Map<String, Value> {
    let mut taken = Map::new();
    let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) else {
        return taken;
    };
    if let Some(list) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        for key in [METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR] {
            if let Some(v) = list.remove(key) {
                taken.insert(key.into(), v);
            }
        }
        if list.is_empty() && !taken.is_empty() {
            meta.remove("annotations");
        }
    }
    taken
}

/// A stored (v2) HorizontalPodAutoscaler as `autoscaling/v1` shows it.
pub(super) fn to_v1(map: &mut Map<String, Value>) {
    take_round_trip(map);
    let spec = map.remove("spec");
    let status = map.remove("status");
    let mut notes: Vec<(&str, String)> = Vec::new();
    if let Some(spec) = spec.filter(Value::is_object) {
        let metrics = spec
            .get("metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let cpu = metrics
            .iter()
            .find(|m| is_cpu_utilization(m))
            .and_then(|m| m.pointer("/resource/target/averageUtilization").cloned());
        let others: Vec<Go> = metrics
            .iter()
            .filter(|m| !is_cpu_utilization(m))
            .map(|m| metric_to_v1(m, &SPEC))
            .collect();
        if !others.is_empty() {
            notes.push((METRICS, Go::List(others).text()));
        }
        if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
            notes.push((BEHAVIOR, behavior_to_internal(behavior).text()));
        }
        map.insert(
            "spec".into(),
            object([
                ("scaleTargetRef", field(&spec, "scaleTargetRef")),
                ("minReplicas", field(&spec, "minReplicas")),
                (
                    "maxReplicas",
                    Some(field(&spec, "maxReplicas").unwrap_or(Value::from(0))),
                ),
                ("targetCPUUtilizationPercentage", cpu),
            ]),
        );
    }
    if let Some(status) = status.filter(Value::is_object) {
        let current: Vec<Value> = status
            .get("currentMetrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // kube's loop keeps the last cpu utilization it meets.
        let cpu = current
            .iter()
            .rev()
            .filter(|m| {
                m.get("type").and_then(Value::as_str) == Some("Resource")
                    && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
            })
            .filter_map(|m| m.pointer("/resource/current/averageUtilization").cloned())
            .find(|u| !u.is_null());
        if !current.is_empty() {
            let v1 = current.iter().map(|m| metric_to_v1(m, &STATUS)).collect();
            notes.push((CURRENT_METRICS, Go::List(v1).text()));
        }
        if let Some(conditions) = status
            .get("conditions")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
        {
            let v1 = conditions.iter().map(condition_to_v1).collect();
            notes.push((CONDITIONS, Go::List(v1).text()));
        }
        map.insert(
            "status".into(),
            object([
                ("observedGeneration", field(&status, "observedGeneration")),
                ("lastScaleTime", field(&status, "lastScaleTime")),
                (
                    "currentReplicas",
                    Some(field(&status, "currentReplicas").unwrap_or(Value::from(0))),
                ),
                (
                    "desiredReplicas",
                    Some(field(&status, "desiredReplicas").unwrap_or(Value::from(0))),
                ),
                ("currentCPUUtilizationPercentage", cpu),
            ]),
        );
    }
    if !notes.is_empty()
        && let Some(list) = annotations(map)
    {
        for (key, text) in notes {
            list.insert(key.into(), Value::from(text));
        }
    }
}

/// An `autoscaling/v1` body in the stored (v2) shape. A `spec` without any metric gets kube's
/// implicit v1 default (cpu at 80% utilization); annotations that do not parse are dropped, as
/// kube drops them.
pub(super) fn to_v2(map: &mut Map<String, Value>) {
    let notes = take_round_trip(map);
    let parsed = |key: &str| {
        notes
            .get(key)
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
    };
    if let Some(spec) = map.remove("spec").filter(Value::is_object) {
        let mut metrics: Vec<Value> = parsed(METRICS)
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(metric_to_v2)
            .collect();
        if let Some(cpu) = field(&spec, "targetCPUUtilizationPercentage") {
            metrics.push(json!({"type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}));
        }
        if metrics.is_empty() {
            metrics.push(json!({"type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}));
        }
        let behavior = parsed(BEHAVIOR).and_then(|b| behavior_from_internal(&b));
        map.insert(
            "spec".into(),
            object([
                ("scaleTargetRef", field(&spec, "scaleTargetRef")),
                ("minReplicas", field(&spec, "minReplicas")),
                ("maxReplicas", field(&spec, "maxReplicas")),
                ("metrics", Some(Value::Array(metrics))),
                ("behavior", behavior),
            ]),
        );
    }
    if let Some(status) = map.remove("status").filter(Value::is_object) {
        let current = match parsed(CURRENT_METRICS).and_then(|v| v.as_array().cloned()) {
            Some(list) => Some(Value::Array(list.iter().map(status_to_v2).collect())),
            None => field(&status, "currentCPUUtilizationPercentage").map(|cpu| {
                json!([{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": cpu}}}])
            }),
        };
        let conditions = parsed(CONDITIONS).filter(Value::is_array);
        map.insert(
            "status".into(),
            object([
                ("observedGeneration", field(&status, "observedGeneration")),
                ("lastScaleTime", field(&status, "lastScaleTime")),
                ("currentReplicas", field(&status, "currentReplicas")),
                ("desiredReplicas", field(&status, "desiredReplicas")),
                ("currentMetrics", current),
                ("conditions", conditions),
            ]),
        );
    }
}

/// An annotation's value as Go's `json.Marshal` writes the v1 (or internal) type it holds: a
/// struct's fields in declaration order — the order they are given here, without those its
/// `omitempty` tags leave out — and anything else as Go writes an unstructured value (map keys
/// sorted, strings escaped as Go escapes them).
enum Go {
    Struct(Vec<(String, Go)>),
    List(Vec<Go>),
    Json(Value),
}

impl Go {
    /// A struct of the fields present, in the order given.
    fn fields<const N: usize>(fields: [(&str, Option<Go>); N]) -> Go {
        Go::Struct(
            fields
                .into_iter()
                .filter_map(|(key, value)| value.map(|v| (String::from(key), v)))
                .collect(),
        )
    }

    fn write(&self, out: &mut String) {
        match self {
            Go::Struct(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    crate::gostr::go_json_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
            Go::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Go::Json(value) => crate::gostr::go_json(value, out),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

/// A present value as a [`Go`] one.
fn go(value: Option<Value>) -> Option<Go> {
    value.map(Go::Json)
}
