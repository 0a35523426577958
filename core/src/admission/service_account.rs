//! kube's ServiceAccount admission plugin (v1.32, `plugin/pkg/admission/serviceaccount`) on pod
//! creation: the pod runs as `spec.serviceAccountName` (`default` when it names none), which
//! must exist in its namespace; unless the pod or its account turn `automountServiceAccountToken`
//! off, every container and init container mounts the projected `kube-api-access-<five random characters>` volume
//! (a bound token the kubelet asks TokenRequest for, the `kube-root-ca.crt` CA and the
//! namespace) at [`TOKEN_MOUNT_PATH`]; the account's image pull secrets are copied to a pod that
//! has none; an account annotated `kubernetes.io/enforce-mountable-secrets: "true"` limits the
//! Secrets the pod may name. Mirror pods are left as they are but may name no account, Secret or
//! token projection. The five random characters of the volume's name come from the caller.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value, json};

use crate::authz::references::{RefKind, references};
use crate::resource::ResourceId;
use crate::store::{ObjectKey, Store};
use crate::{Error, json as j};

/// `DefaultServiceAccountName`: the account of a pod that names none.
pub(crate) const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// `ServiceAccountVolumeName` and the dash `generateName` adds.
pub(crate) const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// `DefaultAPITokenMountPath`.
pub(crate) const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// `EnforceMountableSecretsAnnotation`.
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";
/// `api.MirrorPodAnnotationKey`.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// `corev1.ProjectedVolumeSourceDefaultMode` (0644), set explicitly as kube does (#104464).
const PROJECTED_DEFAULT_MODE: u32 = 0o644;

/// The projected volume source kube's `TokenVolumeSource` builds: a token the kubelet requests
/// for [`crate::serviceaccount::WARN_ONLY_EXPIRATION_SECS`], the cluster's CA bundle and the
/// pod's namespace.
pub(crate) fn token_volume_source() -> Value {
    json!({
        "defaultMode": PROJECTED_DEFAULT_MODE,
        "sources": [
            {"serviceAccountToken": {
                "path": "token",
                "expirationSeconds": crate::serviceaccount::WARN_ONLY_EXPIRATION_SECS}},
            {"configMap": {
                "name": crate::controllers::serviceaccount::ROOT_CA_CONFIGMAP,
                "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{
                "path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// A JSON string, or empty.
fn text(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or("")
}

/// `admission.NewForbidden` for a pod: kube names the pod by its `generateName` while its
/// name is still to be generated (`pods "web-7d4b9-" is forbidden`).
fn forbidden(name: &str, detail: &str) -> Error {
    Error::Forbidden {
        resource: "pods".into(),
        name: name.into(),
        message: format!("pods \"{name}\" is forbidden: {detail}"),
        causes: Vec::new(),
    }
}

/// Why a pod create was refused because its account is missing: the account's name, so the
/// caller can tell the `default` account (which the serviceaccount controller is about to
/// create in a new namespace, and kube's plugin waits for) from one the pod names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingAccount(pub(crate) String);

/// Admits and mutates a pod being created in `namespace` (`Admit`, then `Validate`). `name` is
/// what kube's errors call the pod (its name, or its `generateName` when the name is still to
/// be generated); `suffix` gives five random characters when a token volume needs a name.
/// `Err` carries the refusal and, for a missing account, which one.
pub(crate) fn admit_pod(
    store: &Store,
    namespace: &str,
    name: &str,
    pod: &mut Value,
    suffix: &mut dyn FnMut() -> String,
) -> Result<(), (Error, Option<MissingAccount>)> {
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if mirror {
        return validate_mirror_pod(name, pod).map_err(|e| (e, None));
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    // `serviceAccount` is the deprecated alias kube's conversion reads when the name is empty.
    let mut account_name = String::from(text(spec.get("serviceAccountName")));
    if account_name.is_empty() {
        account_name = String::from(text(spec.get("serviceAccount")));
    }
    if account_name.is_empty() {
        account_name = DEFAULT_SERVICE_ACCOUNT.into();
    }
    spec.insert(
        "serviceAccountName".into(),
        Value::from(account_name.as_str()),
    );
    spec.insert("serviceAccount".into(), Value::from(account_name.as_str()));
    let key = ObjectKey::new(ResourceId::ServiceAccounts, namespace, &account_name);
    let account: Value = store
        .get(&key)
        .and_then(|o| serde_json::from_slice(&o.json.bytes()).ok())
        .ok_or_else(|| {
            (
                forbidden(
                    name,
                    &format!(
                        "error looking up service account {namespace}/{account_name}: serviceaccount \"{account_name}\" not found"
                    ),
                ),
                Some(MissingAccount(account_name.clone())),
            )
        })?;
    if should_automount(&account, spec) {
        mount_token(spec, suffix);
    }
    let has_pull_secrets = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    let account_pull_secrets: Vec<Value> = j::array_at(&account, "/imagePullSecrets")
        .iter()
        .map(|s| json!({"name": text(s.get("name"))}))
        .collect();
    if !has_pull_secrets && !account_pull_secrets.is_empty() {
        spec.insert(
            "imagePullSecrets".into(),
            Value::Array(account_pull_secrets),
        );
    }
    if enforces_mountable_secrets(&account) {
        limit_secret_references(&account, pod).map_err(|e| (forbidden(name, &e), None))?;
    }
    Ok(())
}

/// `shouldAutomount`: the pod's choice, else the account's, else yes.
fn should_automount(account: &Value, spec: &Map<String, Value>) -> bool {
    spec.get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// `mountServiceAccountToken`: the first `kube-api-access-` volume the pod has, else a new one,
/// mounted read-only at [`TOKEN_MOUNT_PATH`] into every init and regular container that mounts
/// nothing there (ephemeral containers are added later, through their own subresource, and
/// are not given it: kube does the same).
fn mount_token(spec: &mut Map<String, Value>, suffix: &mut dyn FnMut() -> String) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| text(v.get("name")))
        .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
        .map(String::from);
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(|| format!("{TOKEN_VOLUME_PREFIX}{}", suffix()));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounted = container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|m| {
                    m.iter()
                        .any(|m| text(m.get("mountPath")) == TOKEN_MOUNT_PATH)
                });
            if mounted {
                continue;
            }
            let mounts = container
                .entry("volumeMounts")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !mounts.is_array() {
                *mounts = Value::Array(Vec::new());
            }
            if let Some(mounts) = mounts.as_array_mut() {
                mounts.push(mount.clone());
                needs_volume = true;
            }
        }
    }
    if has_volume || !needs_volume {
        return;
    }
    let volumes = spec
        .entry("volumes")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !volumes.is_array() {
        *volumes = Value::Array(Vec::new());
    }
    if let Some(volumes) = volumes.as_array_mut() {
        volumes.push(json!({"name": volume_name, "projected": token_volume_source()}));
    }
}

/// `enforceMountableSecrets`: the account's annotation, parsed as Go's `strconv.ParseBool`.
fn enforces_mountable_secrets(account: &Value) -> bool {
    account
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS))
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True"))
}

/// `limitSecretReferences`: every Secret volume, env and envFrom reference of the (init)
/// containers and every image pull secret must be one the account lists; `Err` is kube's
/// message for the first that is not.
fn limit_secret_references(account: &Value, pod: &Value) -> Result<(), String> {
    let account_name = j::str_at(account, "/metadata/name");
    let listed = |list: &str, name: &str| {
        j::array_at(account, list)
            .iter()
            .any(|s| text(s.get("name")) == name)
    };
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    for volume in j::array_at(&spec, "/volumes") {
        let Some(secret) = volume.get("secret").filter(|s| s.is_object()) else {
            continue;
        };
        let secret_name = text(secret.get("secretName"));
        if !listed("/secrets", secret_name) {
            return Err(format!(
                "volume with secret.secretName=\"{secret_name}\" is not allowed because service account {account_name} does not reference that secret"
            ));
        }
    }
    for (list, what) in [
        ("/initContainers", "init container"),
        ("/containers", "container"),
    ] {
        for container in j::array_at(&spec, list) {
            let container_name = text(container.get("name"));
            for env in j::array_at(container, "/env") {
                if let Some(secret) = env
                    .pointer("/valueFrom/secretKeyRef")
                    .filter(|s| s.is_object())
                {
                    let secret_name = text(secret.get("name"));
                    if !listed("/secrets", secret_name) {
                        return Err(format!(
                            "{what} {container_name} with envVar {} referencing secret.secretName=\"{secret_name}\" is not allowed because service account {account_name} does not reference that secret",
                            text(env.get("name"))
                        ));
                    }
                }
            }
            for from in j::array_at(container, "/envFrom") {
                if let Some(secret) = from.get("secretRef").filter(|s| s.is_object()) {
                    let secret_name = text(secret.get("name"));
                    if !listed("/secrets", secret_name) {
                        return Err(format!(
                            "{what} {container_name} with envFrom referencing secret.secretName=\"{secret_name}\" is not allowed because service account {account_name} does not reference that secret"
                        ));
                    }
                }
            }
        }
    }
    for (i, pull) in j::array_at(&spec, "/imagePullSecrets").iter().enumerate() {
        let secret_name = text(pull.get("name"));
        if !listed("/imagePullSecrets", secret_name) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{secret_name}\" is not allowed because service account {account_name} does not reference that imagePullSecret"
            ));
        }
    }
    Ok(())
}

/// `Validate` of a mirror pod (the kubelet's copy of a static pod): no account, no Secret, no
/// token projection.
fn validate_mirror_pod(name: &str, pod: &Value) -> Result<(), Error> {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let account = if j::str_at(&spec, "/serviceAccountName").is_empty() {
        j::str_at(&spec, "/serviceAccount")
    } else {
        j::str_at(&spec, "/serviceAccountName")
    };
    if !account.is_empty() {
        return Err(forbidden(
            name,
            "a mirror pod may not reference service accounts",
        ));
    }
    if references(pod)
        .iter()
        .any(|(kind, _)| *kind == RefKind::Secret)
    {
        return Err(forbidden(name, "a mirror pod may not reference secrets"));
    }
    let projects_token = j::array_at(&spec, "/volumes").iter().any(|v| {
        j::array_at(v, "/projected/sources")
            .iter()
            .any(|s| s.get("serviceAccountToken").is_some_and(|t| !t.is_null()))
    });
    if projects_token {
        return Err(forbidden(
            name,
            "a mirror pod may not use ServiceAccountToken volume projections",
        ));
    }
    Ok(())
}
