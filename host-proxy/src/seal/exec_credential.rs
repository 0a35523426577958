//! `nautilus-seal --exec-credential`: the answer of a client-go credential plugin
//! (`client.authentication.k8s.io/v1` `ExecCredential`), so a staker's kubelet authenticates
//! with Seal tokens it mints itself. client-go runs the plugin when it needs a token and again
//! once `status.expirationTimestamp` has passed; that time is set `refresh_before` ahead of the
//! token's `exp`, so the kubelet holds a fresh token before the enclave would refuse the old
//! one, and runs for weeks on 24-hour tokens.

use nautilus_core::UnixTime;
use serde_json::{Value, json};

/// The API version client-go speaks to plugins since Kubernetes 1.22, and the one it asks for
/// with a kubeconfig naming it.
pub(crate) const API_VERSION_V1: &str = "client.authentication.k8s.io/v1";
/// The beta version older kubeconfigs still name; the answer must carry the version asked for.
const API_VERSION_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
/// What the environment variable client-go sets is called.
pub(crate) const EXEC_INFO_ENV: &str = "KUBERNETES_EXEC_INFO";
/// The refresh margin when none is given: five minutes, or half the lifetime of a shorter token.
const DEFAULT_REFRESH_BEFORE_SECS: u64 = 300;

/// The margin to use for a token living `ttl` seconds: `given`, which must be shorter than the
/// lifetime, or the default.
pub(crate) fn refresh_before(ttl: u64, given: Option<u64>) -> Result<u64, String> {
    match given {
        Some(secs) if secs >= ttl => Err(format!(
            "--refresh-before ({secs}s) must be shorter than --ttl ({ttl}s): client-go would \
             run the plugin again at once"
        )),
        Some(secs) => Ok(secs),
        None => Ok(DEFAULT_REFRESH_BEFORE_SECS.min(ttl / 2)),
    }
}

/// The API version to answer in: the one `KUBERNETES_EXEC_INFO` carries (client-go refuses an
/// answer in another), or v1 when the plugin runs outside client-go.
pub(crate) fn api_version(exec_info: Option<&str>) -> Result<&'static str, String> {
    let Some(text) = exec_info.filter(|t| !t.trim().is_empty()) else {
        return Ok(API_VERSION_V1);
    };
    let info: Value =
        serde_json::from_str(text).map_err(|e| format!("{EXEC_INFO_ENV} is not JSON: {e}"))?;
    if info.get("kind").and_then(Value::as_str) != Some("ExecCredential") {
        return Err(format!("{EXEC_INFO_ENV} is not an ExecCredential"));
    }
    match info.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION_V1) => Ok(API_VERSION_V1),
        Some(API_VERSION_V1BETA1) => Ok(API_VERSION_V1BETA1),
        other => Err(format!(
            "{EXEC_INFO_ENV} asks for apiVersion {}: this plugin answers {API_VERSION_V1} \
             and {API_VERSION_V1BETA1}",
            other.map_or_else(|| "(none)".to_string(), |v| format!("{v:?}"))
        )),
    }
}

/// The `ExecCredential` JSON (one line) for `token`, which expires at `exp` (unix seconds), to
/// be minted again `refresh_before` seconds earlier.
pub(crate) fn answer(api_version: &str, token: &str, exp: u64, refresh_before: u64) -> String {
    let expiry = UnixTime::from_secs(exp.saturating_sub(refresh_before)).rfc3339();
    json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": expiry},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_client_gos_shape_and_expires_before_the_token() {
        // 2026-01-01T00:00:00Z + 24 h, refreshed five minutes early.
        let exp = 1_767_225_600 + 86_400;
        let text = answer(API_VERSION_V1, "seal1.a.b", exp, 300);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                   "status": {"token": "seal1.a.b",
                              "expirationTimestamp": "2026-01-01T23:55:00Z"}})
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn the_version_follows_what_client_go_asks() {
        assert_eq!(api_version(None), Ok(API_VERSION_V1));
        assert_eq!(api_version(Some("")), Ok(API_VERSION_V1));
        // What client-go 1.32 sets for a v1 plugin without a terminal.
        let v1 = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
        assert_eq!(api_version(Some(v1)), Ok(API_VERSION_V1));
        let beta = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}"#;
        assert_eq!(api_version(Some(beta)), Ok(API_VERSION_V1BETA1));
        for bad in [
            "{",
            r#"{"kind":"Pod","apiVersion":"client.authentication.k8s.io/v1"}"#,
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
            r#"{"kind":"ExecCredential"}"#,
        ] {
            let err = api_version(Some(bad)).unwrap_err();
            assert!(err.contains(EXEC_INFO_ENV), "{bad}: {err}");
        }
    }

    #[test]
    fn the_margin_is_shorter_than_the_lifetime() {
        assert_eq!(refresh_before(86_400, None), Ok(300));
        assert_eq!(refresh_before(120, None), Ok(60));
        assert_eq!(refresh_before(86_400, Some(3600)), Ok(3600));
        assert_eq!(refresh_before(60, Some(30)), Ok(30));
        let err = refresh_before(60, Some(60)).unwrap_err();
        assert!(err.contains("shorter than --ttl"), "{err}");
        assert!(refresh_before(60, Some(600)).is_err());
    }
}
