//! Validation of the `storage.k8s.io/v1` kinds as kube-apiserver 1.32 does it
//! (`pkg/apis/storage/validation`): a CSINode's drivers (names, node IDs, topology keys,
//! allocatable counts, and no change to a registered driver) and a CSIDriver's spec (required
//! booleans, supported policies and modes, token audiences, immutable fields), with kube's field
//! paths and wording. Names are DNS subdomains, the default rule.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, FIELD_IMMUTABLE, arr, s};
use super::names::{dns1123_subdomain_errors, qualified_name_errors};
use crate::gostr::quote;

/// `csiNodeIDLongerMaxLength`: the CSINode strategy validates with `AllowLongNodeID`.
const NODE_ID_MAX: usize = 256;
/// `supportedFSGroupPolicy.List()`, sorted as a Go string set lists.
const FS_GROUP_POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];
/// `validateVolumeLifecycleModes`' list, in kube's order.
const LIFECYCLE_MODES: &[&str] = &["Persistent", "Ephemeral"];
/// `validateTokenRequests`: ten minutes.
const MIN_TOKEN_SECONDS: i64 = 600;

/// `ValidateCSIDriverName` of the core validation (a driver name inside a CSINode): required,
/// at most 63 bytes, a DNS subdomain once lower-cased.
fn csi_driver_name(e: &mut Errs, name: &str, path: &str) {
    if name.is_empty() {
        e.required(path, "");
    }
    if name.len() > 63 {
        e.too_long(path, 63);
    }
    e.invalid_each(
        path,
        name,
        dns1123_subdomain_errors(&name.to_ascii_lowercase()),
    );
}

/// `ValidateCSINode` and, with `old`, `ValidateCSINodeUpdate`.
pub(super) fn validate_csi_node(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let mut names = BTreeSet::new();
    for (i, driver) in arr(spec, "drivers").iter().enumerate() {
        let path = format!("spec.drivers[{i}]");
        let name = s(driver, "name");
        csi_driver_name(e, name, &format!("{path}.name"));
        let node_id = s(driver, "nodeID");
        let id_path = format!("{path}.nodeID");
        if node_id.is_empty() {
            e.required(&id_path, "");
        }
        if node_id.len() > NODE_ID_MAX {
            e.invalid(
                &id_path,
                Bad::Str(node_id),
                &format!("must be {NODE_ID_MAX} characters or less"),
            );
        }
        e.nonnegative(
            &format!("{path}.allocatable.count"),
            driver.pointer("/allocatable/count"),
        );
        if !names.insert(name) {
            e.duplicate(&format!("{path}.name"), Bad::Str(name));
        }
        let mut keys = BTreeSet::new();
        for key in arr(driver, "topologyKeys") {
            let key = key.as_str().unwrap_or("");
            if key.is_empty() {
                e.required(&path, "");
            }
            if !keys.insert(key) {
                e.duplicate(&path, Bad::Str(key));
            }
            e.invalid_each(&path, key, qualified_name_errors(key));
        }
    }
    let Some(old) = old else {
        return;
    };
    // A registered driver's entry never changes (kube compares with `Semantic.DeepEqual`).
    for old_driver in arr(old.get("spec").unwrap_or(&empty), "drivers") {
        for driver in arr(spec, "drivers") {
            if s(old_driver, "name") == s(driver, "name") && !same_driver(old_driver, driver) {
                e.invalid(
                    "CSINodeDriver",
                    Bad::Raw(go_driver(driver)),
                    FIELD_IMMUTABLE,
                );
            }
        }
    }
}

/// Whether two driver entries are equal as Go values: an absent list or pointer equals `null`.
fn same_driver(a: &Value, b: &Value) -> bool {
    let present = |v: &Value, key: &str| v.get(key).filter(|x| !x.is_null()).cloned();
    let list = |v: &Value| match present(v, "topologyKeys") {
        Some(Value::Array(items)) if items.is_empty() => None,
        other => other,
    };
    s(a, "name") == s(b, "name")
        && s(a, "nodeID") == s(b, "nodeID")
        && list(a) == list(b)
        && present(a, "allocatable") == present(b, "allocatable")
}

/// Go's `%#v` of a `storage.CSINodeDriver` (a set pointer prints as an address in kube; here as
/// a fixed one, as the address means nothing to a client).
fn go_driver(driver: &Value) -> String {
    let keys = match driver.get("topologyKeys").and_then(Value::as_array) {
        None => String::from("[]string(nil)"),
        Some(keys) => {
            let quoted: Vec<String> = keys
                .iter()
                .map(|k| quote(k.as_str().unwrap_or("")))
                .collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
    };
    let allocatable = if driver.get("allocatable").is_some_and(|a| !a.is_null()) {
        "(*storage.VolumeNodeResources)(0xc000000000)"
    } else {
        "(*storage.VolumeNodeResources)(nil)"
    };
    format!(
        "storage.CSINodeDriver{{Name:{}, NodeID:{}, TopologyKeys:{keys}, Allocatable:{allocatable}}}",
        quote(s(driver, "name")),
        quote(s(driver, "nodeID")),
    )
}

/// `ValidateCSIDriver` and, with `old`, `ValidateCSIDriverUpdate`.
pub(super) fn validate_csi_driver(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let set = |key: &str| spec.get(key).filter(|v| !v.is_null());
    // kube's path says `attachedRequired`, not the field's name.
    for (key, path) in [
        ("attachRequired", "spec.attachedRequired"),
        ("podInfoOnMount", "spec.podInfoOnMount"),
        ("storageCapacity", "spec.storageCapacity"),
    ] {
        if set(key).is_none() {
            e.required(path, "");
        }
    }
    if let Some(policy) = set("fsGroupPolicy").and_then(Value::as_str)
        && !FS_GROUP_POLICIES.contains(&policy)
    {
        e.not_supported("spec.fsGroupPolicy", policy, FS_GROUP_POLICIES);
    }
    let mut audiences = BTreeSet::new();
    for (i, request) in arr(spec, "tokenRequests").iter().enumerate() {
        let path = format!("spec.tokenRequests[{i}]");
        let audience = s(request, "audience");
        if !audiences.insert(audience) {
            e.duplicate(&format!("{path}.audience"), Bad::Str(audience));
            continue;
        }
        let Some(seconds) = request.get("expirationSeconds").and_then(Value::as_i64) else {
            continue;
        };
        let seconds_path = format!("{path}.expirationSeconds");
        if seconds < MIN_TOKEN_SECONDS {
            e.invalid(
                &seconds_path,
                Bad::Int(seconds),
                "may not specify a duration less than 10 minutes",
            );
        }
        if seconds > 1 << 32 {
            e.invalid(
                &seconds_path,
                Bad::Int(seconds),
                "may not specify a duration larger than 2^32 seconds",
            );
        }
    }
    for mode in arr(spec, "volumeLifecycleModes") {
        let mode = mode.as_str().unwrap_or("");
        if !LIFECYCLE_MODES.contains(&mode) {
            e.not_supported("spec.volumeLifecycleModes", mode, LIFECYCLE_MODES);
        }
    }
    // SELinuxMountReadWriteOncePod is on by default in 1.32, so the field is required.
    if set("seLinuxMount").is_none() {
        e.required("spec.seLinuxMount", "");
    }
    let Some(old) = old else {
        return;
    };
    let old_spec = old.get("spec").unwrap_or(&empty);
    let old_set = |key: &str| old_spec.get(key).filter(|v| !v.is_null());
    if set("attachRequired") != old_set("attachRequired") {
        let value =
            set("attachRequired").map_or_else(|| "null".into(), alloc::string::ToString::to_string);
        e.invalid("spec.attachedRequired", Bad::Raw(value), FIELD_IMMUTABLE);
    }
    let modes = |spec: &Value| -> Vec<String> {
        arr(spec, "volumeLifecycleModes")
            .iter()
            .map(|m| quote(m.as_str().unwrap_or("")))
            .collect()
    };
    let (new_modes, old_modes) = (modes(spec), modes(old_spec));
    if new_modes != old_modes {
        let value = if spec
            .get("volumeLifecycleModes")
            .and_then(Value::as_array)
            .is_none()
        {
            String::from("[]storage.VolumeLifecycleMode(nil)")
        } else {
            format!("[]storage.VolumeLifecycleMode{{{}}}", new_modes.join(", "))
        };
        e.invalid(
            "spec.volumeLifecycleModes",
            Bad::Raw(value),
            FIELD_IMMUTABLE,
        );
    }
}

/// `maxAttachedVolumeMetadataSize`: 256 kB.
const MAX_ATTACHMENT_METADATA: usize = 256 * 1024;
/// `maxVolumeErrorMessageSize`.
const MAX_VOLUME_ERROR_MESSAGE: usize = 1024;

/// `ValidateVolumeAttachment` + `ValidateVolumeAttachmentV1` and, with `old`,
/// `ValidateVolumeAttachmentUpdate` (an inline volume spec is checked for presence only, not as
/// a PersistentVolume spec).
pub(super) fn validate_volume_attachment(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let attacher = s(spec, "attacher");
    if attacher.is_empty() {
        e.required("spec.attacher", "");
    }
    let source = spec.get("source").unwrap_or(&empty);
    let pv = source.get("persistentVolumeName").and_then(Value::as_str);
    let inline = source.get("inlineVolumeSpec").filter(|v| !v.is_null());
    const ONE_OF: &str = "must specify exactly one of inlineVolumeSpec and persistentVolumeName";
    match (inline, pv) {
        (None, None) => e.required("spec.source", ONE_OF),
        (Some(_), Some(_)) => e.forbidden("spec.source", ONE_OF),
        (None, Some("")) => e.required(
            "spec.source.persistentVolumeName",
            "must specify non empty persistentVolumeName",
        ),
        _ => {}
    }
    let node = s(spec, "nodeName");
    e.invalid_each("spec.nodeName", node, dns1123_subdomain_errors(node));
    let metadata = obj
        .pointer("/status/attachmentMetadata")
        .and_then(Value::as_object)
        .map_or(0, |m| {
            m.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum::<usize>()
        });
    if metadata > MAX_ATTACHMENT_METADATA {
        e.too_long("status.attachmentMetadata", MAX_ATTACHMENT_METADATA);
    }
    for error in ["attachError", "detachError"] {
        let message = obj
            .pointer(&format!("/status/{error}/message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if message.len() > MAX_VOLUME_ERROR_MESSAGE {
            // kube reports the metadata limit here (its own slip), so this does too.
            e.too_long(&format!("status.{error}.message"), MAX_ATTACHMENT_METADATA);
        }
    }
    // `ValidateVolumeAttachmentV1`: the attacher is a CSI driver name, the volume a PV name.
    csi_driver_name(e, attacher, "spec.attacher");
    if let Some(pv) = pv {
        e.invalid_each(
            "spec.source.persistentVolumeName",
            pv,
            dns1123_subdomain_errors(pv),
        );
    }
    if let Some(old) = old
        && old.get("spec") != obj.get("spec")
    {
        e.invalid("spec", Bad::Raw(go_attachment_spec(spec)), FIELD_IMMUTABLE);
    }
}

/// Go's `%#v` of a `storage.VolumeAttachmentSpec` (set pointers print as a fixed address).
fn go_attachment_spec(spec: &Value) -> String {
    let source = spec.get("source").cloned().unwrap_or(Value::Null);
    let pv = if source.get("persistentVolumeName").is_some() {
        "(*string)(0xc000000000)"
    } else {
        "(*string)(nil)"
    };
    let inline = if source.get("inlineVolumeSpec").is_some_and(|v| !v.is_null()) {
        "(*core.PersistentVolumeSpec)(0xc000000000)"
    } else {
        "(*core.PersistentVolumeSpec)(nil)"
    };
    format!(
        "storage.VolumeAttachmentSpec{{Attacher:{}, Source:storage.VolumeAttachmentSource{{PersistentVolumeName:{pv}, InlineVolumeSpec:{inline}}}, NodeName:{}}}",
        quote(s(spec, "attacher")),
        quote(s(spec, "nodeName")),
    )
}
