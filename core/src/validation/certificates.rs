//! Validation of CertificateSigningRequests as kube-apiserver 1.32 does it
//! (`pkg/apis/certificates/validation`): the request must be a PEM `CERTIFICATE REQUEST` whose
//! signature verifies ([`crate::csr`]), a signer name of the form `example.com/signer-name`,
//! known and distinct usages, at least ten minutes of requested validity, conditions without
//! duplicates, Approved and Denied exclusive and never removed, and a certificate made of
//! PEM `CERTIFICATE` blocks, set only through `status` and never changed once set.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::Value;

use super::causes::{Bad, Errs, arr, s};
use super::names::{dns1123_label_errors, dns1123_subdomain_errors};

/// `allValidUsages.List()` (sorted).
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];
/// `certificates.LegacyUnknownSignerName`.
const LEGACY_SIGNER: &str = "kubernetes.io/legacy-unknown";
/// DNS-1123 subdomain and label maxima, as `ValidateSignerName` combines them.
const DOMAIN_MAX: usize = 253;
const SIGNER_MAX: usize = DOMAIN_MAX + (253 + 63 + 1) + 1;

/// Go's `%#v` of a `[]byte`.
fn go_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

fn decoded(v: &Value, pointer: &str) -> Vec<u8> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .unwrap_or_default()
}

/// `ValidateSignerName`.
fn signer_name(e: &mut Errs, name: &str) {
    let path = "spec.signerName";
    if name.is_empty() {
        e.required(path, "");
        return;
    }
    let Some((domain, rest)) = name.split_once('/').filter(|(_, r)| !r.contains('/')) else {
        e.invalid(
            path,
            Bad::Str(name),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        );
        return;
    };
    if domain.len() > DOMAIN_MAX {
        e.too_long(path, DOMAIN_MAX);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        let errs = dns1123_label_errors(label);
        if !errs.is_empty() {
            for err in errs {
                e.invalid(
                    path,
                    Bad::Str(domain),
                    &format!("validating label {}: {err}", crate::gostr::quote(label)),
                );
            }
            break;
        }
    }
    if labels.len() < 2 {
        e.invalid(
            path,
            Bad::Str(domain),
            "should be a domain with at least two segments separated by dots",
        );
    }
    for label in rest.split('.') {
        let errs = dns1123_subdomain_errors(label);
        if !errs.is_empty() {
            for err in errs {
                e.invalid(
                    path,
                    Bad::Str(rest),
                    &format!("validating label {}: {err}", crate::gostr::quote(label)),
                );
            }
            break;
        }
    }
    if name.len() > SIGNER_MAX {
        e.too_long(path, SIGNER_MAX);
    }
}

fn conditions_of<'a>(obj: &'a Value, kind: &str) -> Vec<&'a Value> {
    arr(obj.get("status").unwrap_or(&Value::Null), "conditions")
        .iter()
        .filter(|c| s(c, "type") == kind)
        .collect()
}

/// `validateCertificateSigningRequest` and, with `old`, the update rules of the write's
/// subresource (`approval` may set Approved and Denied, `status` the certificate).
pub(super) fn validate_csr(e: &mut Errs, obj: &Value, old: Option<&Value>, sub: Option<&str>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let request = decoded(obj, "/spec/request");
    if let Err(err) = crate::csr::check_request(&request) {
        e.invalid("spec.request", Bad::Raw(go_bytes(&request)), &err);
    }
    let usages = arr(spec, "usages");
    if usages.is_empty() {
        e.required("spec.usages", "");
    }
    for (i, usage) in usages.iter().enumerate() {
        let usage = usage.as_str().unwrap_or("");
        if !USAGES.contains(&usage) {
            e.not_supported(&format!("spec.usages[{i}]"), usage, USAGES);
        }
    }
    for (i, usage) in usages.iter().enumerate() {
        if usages.get(..i).is_some_and(|before| before.contains(usage)) {
            e.duplicate(
                &format!("spec.usages[{i}]"),
                Bad::Str(usage.as_str().unwrap_or("")),
            );
        }
    }
    let signer = s(spec, "signerName");
    if signer == LEGACY_SIGNER {
        e.invalid(
            "spec.signerName",
            Bad::Str(signer),
            "the legacy signerName is not allowed via this API version",
        );
    } else {
        signer_name(e, signer);
    }
    if let Some(seconds) = spec.get("expirationSeconds").and_then(Value::as_i64)
        && seconds < 600
    {
        e.invalid(
            "spec.expirationSeconds",
            Bad::Int(seconds),
            "may not specify a duration less than 600 seconds (10 minutes)",
        );
    }
    let conditions = arr(obj.get("status").unwrap_or(&empty), "conditions");
    let (mut approved, mut denied) = (false, false);
    for (i, c) in conditions.iter().enumerate() {
        let at = format!("status.conditions[{i}]");
        let kind = s(c, "type");
        if kind.is_empty() {
            e.required(&format!("{at}.type"), "");
        }
        let status = s(c, "status");
        let allowed: &[&str] = if ["Approved", "Denied", "Failed"].contains(&kind) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            e.required(&format!("{at}.status"), "");
        } else if !allowed.contains(&status) {
            e.not_supported(&format!("{at}.status"), status, allowed);
        }
        match kind {
            "Approved" => {
                approved = true;
                if denied {
                    e.invalid(
                        &format!("{at}.type"),
                        Bad::Str(kind),
                        "Approved and Denied conditions are mutually exclusive",
                    );
                }
            }
            "Denied" => {
                denied = true;
                if approved {
                    e.invalid(
                        &format!("{at}.type"),
                        Bad::Str(kind),
                        "Approved and Denied conditions are mutually exclusive",
                    );
                }
            }
            _ => {}
        }
        if conditions
            .get(..i)
            .is_some_and(|before| before.iter().any(|b| s(b, "type") == kind))
        {
            e.duplicate(&format!("{at}.type"), Bad::Str(kind));
        }
    }
    let certificate = decoded(obj, "/status/certificate");
    if let Err(err) = crate::csr::check_certificates(&certificate) {
        e.invalid("status.certificate", Bad::Str("<certificate data>"), &err);
    }
    let Some(old) = old else {
        return;
    };
    for kind in ["Approved", "Denied", "Failed"] {
        if conditions_of(obj, kind).len() < conditions_of(old, kind).len() {
            e.forbidden(
                "status.conditions",
                &format!(
                    "updates may not remove a condition of type {}",
                    crate::gostr::quote(kind)
                ),
            );
        }
    }
    if sub != Some("approval") {
        for kind in ["Approved", "Denied"] {
            if conditions_of(obj, kind).len() > conditions_of(old, kind).len() {
                e.forbidden(
                    "status.conditions",
                    &format!(
                        "updates may not add a condition of type {}",
                        crate::gostr::quote(kind)
                    ),
                );
            }
        }
    }
    let old_certificate = decoded(old, "/status/certificate");
    if certificate != old_certificate {
        if sub != Some("status") {
            e.forbidden(
                "status.certificate",
                "updates may not set certificate content",
            );
        } else if !old_certificate.is_empty() {
            e.forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            );
        }
    }
}
