//! The core's one error type, and the single place where it becomes a Kubernetes `Status`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

/// One `details.causes` entry of a 422 Invalid (or a strict-decoding 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Machine reason, e.g. `FieldValueRequired`, `FieldValueInvalid`.
    pub reason: &'static str,
    /// Human message, e.g. `Required value`.
    pub message: String,
    /// JSON path of the field, e.g. `spec.containers`.
    pub field: String,
}

impl Cause {
    /// `Required value` for `field`.
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueRequired",
            message: "Required value".to_string(),
            field: field.into(),
        }
    }

    /// `Invalid value: <value>: <detail>` for `field`.
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        let mut message = String::from("Invalid value: \"");
        message.push_str(value);
        message.push_str("\": ");
        message.push_str(detail);
        Self {
            reason: "FieldValueInvalid",
            message,
            field: field.into(),
        }
    }

    /// `Unsupported value` with `detail` for `field`.
    pub fn not_supported(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueNotSupported",
            message: detail.into(),
            field: field.into(),
        }
    }

    /// `Forbidden` with `detail`, e.g. an update of an immutable field.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueForbidden",
            message: detail.into(),
            field: field.into(),
        }
    }
}

/// What a request or an internal step could not do. Every variant maps to one HTTP code and one
/// Kubernetes `reason` in [`Error::to_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// 400: the request is malformed (bad JSON, bad selector, bad query).
    BadRequest(String),
    /// 401: no credential, or one that is not valid.
    Unauthorized(String),
    /// 403: the caller may not do this.
    Forbidden {
        /// Plural resource (group-qualified, e.g. `deployments.apps`), empty for non-resource paths.
        resource: String,
        /// Object name, may be empty.
        name: String,
        /// Full message as kube-apiserver words it.
        message: String,
        /// `details.causes` (e.g. admission's `NamespaceTerminating`).
        causes: Vec<Cause>,
    },
    /// 404: the object (or path) does not exist.
    NotFound {
        /// Group-qualified plural, e.g. `pods` or `deployments.apps`.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 404 for a path that names no served resource.
    PathNotFound(String),
    /// 405: the verb is not supported on this path.
    MethodNotAllowed(String),
    /// 406: none of the accepted media types can be produced.
    NotAcceptable(String),
    /// 409 AlreadyExists.
    AlreadyExists {
        /// Group-qualified plural.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 Conflict: stale `resourceVersion`, or an apply conflict.
    Conflict {
        /// Group-qualified plural.
        resource: String,
        /// Object name.
        name: String,
        /// Why, after "Operation cannot be fulfilled on ...: ".
        detail: String,
    },
    /// 409 Conflict from server-side apply: the message is kube's `Apply failed with N
    /// conflict(s): ...` text, without the "Operation cannot be fulfilled" prefix, and the
    /// details carry only one `FieldManagerConflict` cause per field (`NewApplyConflict`).
    ApplyConflict {
        /// The whole message.
        message: String,
        /// One cause per conflicting field.
        causes: Vec<Cause>,
    },
    /// 422 for a patch that cannot be applied: kube's `NewGenericServerResponse(422, ...)`,
    /// "the server rejected our request", whose `details` are empty. The detail (the JSON
    /// patch library's error) stays here for logs and tests; kube-apiserver does not send it.
    Unprocessable(String),
    /// 410 Expired: the requested revision left the watch ring, or a continue token expired.
    Expired(String),
    /// 410 Expired for a `continue` token whose snapshot is gone, carrying in the Status's
    /// `metadata.continue` a token that continues from the same key at the latest revision.
    ContinueExpired {
        /// The inconsistent-continuation token.
        continue_token: String,
    },
    /// 413: body above the configured limit.
    TooLarge(String),
    /// 415: the body's media type is not one this verb accepts.
    UnsupportedMediaType(String),
    /// 422 Invalid with field causes.
    Invalid {
        /// `kind` of the object, e.g. `Pod`.
        kind: String,
        /// Object name (may be empty).
        name: String,
        /// The field errors.
        causes: Vec<Cause>,
    },
    /// 429: a budget that frees itself over time (e.g. watch count) is full.
    TooManyRequests(String),
    /// 429 from the eviction subresource: the pod's disruption budget allows no disruption
    /// (or is not yet synced); `detail` becomes the `DisruptionBudget` cause and a nonzero
    /// `retry_after_secs` the `retryAfterSeconds` (kube gives 0, which sends no `Retry-After`,
    /// when the budget is spent, so clients such as `kubectl drain` see it and wait on their own).
    DisruptionBudget {
        /// The cause's message.
        detail: String,
        /// `details.retryAfterSeconds`; 0 leaves it out.
        retry_after_secs: u32,
    },
    /// An admission policy's denial: `{resource} "{name}" is forbidden: {message}` with the
    /// policy's reason (`Invalid` 422, `Forbidden` 403, ...), as kube words it; `message` is
    /// also the one cause.
    PolicyDenied {
        /// Group-qualified plural.
        resource: String,
        /// Object name.
        name: String,
        /// The policy's message (`ValidatingAdmissionPolicy '...' denied request: ...`).
        message: String,
        /// The `StatusReason`.
        reason: &'static str,
    },
    /// 504 Timeout: a read asked for a revision the store has not reached (kube's
    /// `NewTooLargeResourceVersionError`, with the `ResourceVersionTooLarge` cause).
    ResourceVersionTooLarge {
        /// The revision asked for.
        requested: u64,
        /// The store's revision.
        current: u64,
        /// `details.retryAfterSeconds`; 0 leaves it out.
        retry_after_secs: u32,
    },
    /// 507: the store's byte or object budget is full.
    InsufficientStorage(String),
    /// 503: a dependency (e.g. Sui) is unavailable.
    Unavailable(String),
    /// 503: this replica does not lead the replicated cluster, so its journal takes no write
    /// (a follower's [`crate::cluster::Cluster::step_down`]); the runtime forwards writes to
    /// the leader, so a client sees this only while no leader is known. Retry after a second.
    NotLeader,
    /// 500: an invariant failed; the request changed nothing.
    Internal(String),
    /// 500 without a reason: an error kube-apiserver passes through unclassified (its
    /// `ErrorToAPIStatus` default), e.g. an applied configuration that does not fit its type.
    Unclassified(String),
}

impl Error {
    /// HTTP status code for this error.
    pub fn code(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } | Self::PathNotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable(_) => 406,
            Self::AlreadyExists { .. } | Self::Conflict { .. } | Self::ApplyConflict { .. } => 409,
            Self::Expired(_) | Self::ContinueExpired { .. } => 410,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid { .. } | Self::Unprocessable(_) => 422,
            Self::TooManyRequests(_) | Self::DisruptionBudget { .. } => 429,
            Self::PolicyDenied { reason, .. } => match *reason {
                "Forbidden" => 403,
                "Unauthorized" => 401,
                "RequestEntityTooLarge" => 413,
                _ => 422,
            },
            Self::ResourceVersionTooLarge { .. } => 504,
            Self::Internal(_) | Self::Unclassified(_) => 500,
            Self::Unavailable(_) | Self::NotLeader => 503,
            Self::InsufficientStorage(_) => 507,
        }
    }

    /// Kubernetes `StatusReason` for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized(_) => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::NotFound { .. } | Self::PathNotFound(_) => "NotFound",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } | Self::ApplyConflict { .. } => "Conflict",
            Self::Expired(_) | Self::ContinueExpired { .. } => "Expired",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Invalid { .. } | Self::Unprocessable(_) => "Invalid",
            Self::TooManyRequests(_) | Self::DisruptionBudget { .. } => "TooManyRequests",
            Self::PolicyDenied { reason, .. } => reason,
            Self::ResourceVersionTooLarge { .. } => "Timeout",
            Self::InsufficientStorage(_) => "InsufficientStorage",
            Self::Unavailable(_) | Self::NotLeader => "ServiceUnavailable",
            Self::Internal(_) => "InternalError",
            Self::Unclassified(_) => "",
        }
    }

    /// The human message, worded as kube-apiserver words it.
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::MethodNotAllowed(m)
            | Self::NotAcceptable(m)
            | Self::Expired(m)
            | Self::TooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::TooManyRequests(m)
            | Self::InsufficientStorage(m)
            | Self::Unavailable(m)
            | Self::Internal(m)
            | Self::Unclassified(m) => m.clone(),
            Self::PathNotFound(_) => "the server could not find the requested resource".to_string(),
            Self::NotLeader => {
                "this replica is not the leader and no leader is known yet; try again".to_string()
            }
            Self::ContinueExpired { .. } => "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".to_string(),
            Self::Forbidden { message, .. }
            | Self::ApplyConflict { message, .. } => message.clone(),
            Self::PolicyDenied {
                resource,
                name,
                message,
                ..
            } if name.is_empty() => alloc::format!("{resource} is forbidden: {message}"),
            Self::PolicyDenied {
                resource,
                name,
                message,
                ..
            } => alloc::format!("{resource} \"{name}\" is forbidden: {message}"),
            Self::DisruptionBudget { .. } => {
                "Cannot evict pod as it would violate the pod's disruption budget.".to_string()
            }
            Self::Unprocessable(_) => {
                "the server rejected our request due to an error in our request".to_string()
            }
            Self::ResourceVersionTooLarge {
                requested, current, ..
            } => alloc::format!(
                "Timeout: Too large resource version: {requested}, current: {current}"
            ),
            Self::NotFound { resource, name } => alloc::format!("{resource} \"{name}\" not found"),
            Self::AlreadyExists { resource, name } => {
                alloc::format!("{resource} \"{name}\" already exists")
            }
            Self::Conflict {
                resource,
                name,
                detail,
            } => {
                alloc::format!("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")
            }
            Self::Invalid { kind, name, causes } => {
                let mut text = alloc::format!("{kind} \"{name}\" is invalid: ");
                if causes.len() > 1 {
                    text.push('[');
                }
                for (i, cause) in causes.iter().enumerate() {
                    if i > 0 {
                        text.push_str(", ");
                    }
                    if !cause.field.is_empty() {
                        text.push_str(&cause.field);
                        text.push_str(": ");
                    }
                    text.push_str(&cause.message);
                }
                if causes.len() > 1 {
                    text.push(']');
                }
                text
            }
        }
    }

    /// The Kubernetes `Status` object for this error (`kind: Status`, `status: Failure`).
    pub fn to_status(&self) -> Value {
        let mut details = Map::new();
        let (resource, name) = match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name, .. }
            | Self::Forbidden { resource, name, .. }
            | Self::PolicyDenied { resource, name, .. } => (resource.as_str(), name.as_str()),
            Self::Invalid { kind, name, .. } => (kind.as_str(), name.as_str()),
            _ => ("", ""),
        };
        if !name.is_empty() {
            details.insert("name".into(), Value::String(name.into()));
        }
        if !resource.is_empty() {
            let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
            if !group.is_empty() {
                details.insert("group".into(), Value::String(group.into()));
            }
            details.insert("kind".into(), Value::String(plural.into()));
        }
        if let Self::Invalid { causes, .. }
        | Self::Forbidden { causes, .. }
        | Self::ApplyConflict { causes, .. } = self
            && !causes.is_empty()
        {
            // kube's StatusCause fields are `omitempty`.
            let list = causes
                .iter()
                .map(|c| {
                    let mut cause = json!({"reason": c.reason, "message": c.message});
                    if !c.field.is_empty()
                        && let Some(map) = cause.as_object_mut()
                    {
                        map.insert("field".into(), Value::from(c.field.as_str()));
                    }
                    cause
                })
                .collect::<Vec<_>>();
            details.insert("causes".into(), Value::Array(list));
        }
        if let Self::DisruptionBudget {
            detail,
            retry_after_secs,
        } = self
        {
            details.insert(
                "causes".into(),
                json!([{"reason": "DisruptionBudget", "message": detail}]),
            );
            if *retry_after_secs > 0 {
                details.insert("retryAfterSeconds".into(), Value::from(*retry_after_secs));
            }
        }
        if let Self::PolicyDenied { message, .. } = self {
            details.insert("causes".into(), json!([{"message": message}]));
        }

        if let Self::TooManyRequests(_) | Self::NotLeader = self {
            details.insert("retryAfterSeconds".into(), Value::from(1));
        }
        if let Self::ResourceVersionTooLarge {
            retry_after_secs, ..
        } = self
        {
            details.insert(
                "causes".into(),
                json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]),
            );
            if *retry_after_secs > 0 {
                details.insert("retryAfterSeconds".into(), Value::from(*retry_after_secs));
            }
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if self.reason().is_empty()
            && let Some(obj) = status.as_object_mut()
        {
            obj.remove("reason");
        }
        // kube's generic 422 carries an empty (but present) `details`.
        if (!details.is_empty() || matches!(self, Self::Unprocessable(_)))
            && let Some(obj) = status.as_object_mut()
        {
            obj.insert("details".into(), Value::Object(details));
        }
        if self.reason().is_empty()
            && let Some(obj) = status.as_object_mut()
        {
            obj.remove("reason");
        }
        if let (Self::ContinueExpired { continue_token }, Some(obj)) =
            (self, status.as_object_mut())
        {
            obj.insert("metadata".into(), json!({ "continue": continue_token }));
        }
        status
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({}): {}", self.reason(), self.code(), self.message())
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shapes_match_kube_apiserver() {
        let e = Error::NotFound {
            resource: "pods".into(),
            name: "x".into(),
        };
        let s = e.to_status();
        assert_eq!(s["message"], "pods \"x\" not found");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "pods");
        let e = Error::NotFound {
            resource: "deployments.apps".into(),
            name: "web".into(),
        };
        assert_eq!(e.to_status()["details"]["group"], "apps");
        let e = Error::Invalid {
            kind: "Pod".into(),
            name: "x".into(),
            causes: alloc::vec![Cause::required("spec.containers")],
        };
        assert_eq!(
            e.message(),
            "Pod \"x\" is invalid: spec.containers: Required value"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["reason"],
            "FieldValueRequired"
        );
        let e = Error::Conflict {
            resource: "pods".into(),
            name: "x".into(),
            detail: "the object has been modified".into(),
        };
        assert_eq!(
            e.message(),
            "Operation cannot be fulfilled on pods \"x\": the object has been modified"
        );
    }

    /// A follower's refusal reaches a client as kube's 503 with a retry hint (client-go
    /// retries it after `Retry-After`).
    #[test]
    fn not_leader_is_a_503_to_retry() {
        let s = Error::NotLeader.to_status();
        assert_eq!(s["code"], 503);
        assert_eq!(s["reason"], "ServiceUnavailable");
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["details"]["retryAfterSeconds"], 1);
        assert!(s["message"].as_str().is_some_and(|m| m.contains("leader")));
    }
}
