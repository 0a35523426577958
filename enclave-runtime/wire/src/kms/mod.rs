//! AWS KMS as the cluster data key's custodian: the JSON requests the enclave makes
//! (`GenerateDataKey` on first start, `Decrypt` on restarts, both with `Recipient` so KMS
//! answers `CiphertextForRecipient`, readable only with the enclave's RSA key), their signing
//! ([`sigv4`]) and the answer's envelope ([`cms`]). The simulated KMS of `nautilus-proxy dev`
//! and the tests' stand-in answer the same shapes.

pub use rsa;

pub mod cms;
pub mod sigv4;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The only key encryption algorithm KMS offers for `Recipient`.
pub const KEY_ENCRYPTION_ALGORITHM: &str = "RSAES_OAEP_SHA_256";
/// The encryption context key that binds a data key to one cluster.
pub const CONTEXT_KEY: &str = "nautilus:cluster";

/// `X-Amz-Target` of an operation.
pub fn target(operation: &str) -> String {
    format!("TrentService.{operation}")
}

fn context(cluster_id: &str) -> serde_json::Value {
    serde_json::json!({ CONTEXT_KEY: cluster_id })
}

fn recipient(attestation_document: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "AttestationDocument": B64.encode(attestation_document),
        "KeyEncryptionAlgorithm": KEY_ENCRYPTION_ALGORITHM,
    })
}

/// The body of `GenerateDataKey` for a 256-bit key bound to `cluster_id`.
pub fn generate_data_key_body(
    key_id: &str,
    cluster_id: &str,
    attestation_document: &[u8],
) -> Vec<u8> {
    serde_json::json!({
        "KeyId": key_id,
        "KeySpec": "AES_256",
        "EncryptionContext": context(cluster_id),
        "Recipient": recipient(attestation_document),
    })
    .to_string()
    .into_bytes()
}

/// The body of `Decrypt` for a `CiphertextBlob` bound to `cluster_id`.
pub fn decrypt_body(
    key_id: &str,
    cluster_id: &str,
    blob: &[u8],
    attestation_document: &[u8],
) -> Vec<u8> {
    serde_json::json!({
        "KeyId": key_id,
        "CiphertextBlob": B64.encode(blob),
        "EncryptionContext": context(cluster_id),
        "Recipient": recipient(attestation_document),
    })
    .to_string()
    .into_bytes()
}

/// What a `GenerateDataKey` or `Decrypt` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAnswer {
    /// `CiphertextForRecipient`, when the request carried `Recipient`.
    pub for_recipient: Option<Vec<u8>>,
    /// `Plaintext`, when it did not (or when KMS ignored `Recipient`, as moto does).
    pub plaintext: Option<Vec<u8>>,
    /// `CiphertextBlob` (GenerateDataKey only).
    pub blob: Option<Vec<u8>>,
}

/// Reads a KMS answer body; an error names KMS's `__type` and message.
pub fn parse_answer(status: u16, body: &[u8]) -> Result<KeyAnswer, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("KMS answered {status} with a body that is not JSON: {e}"))?;
    if !(200..300).contains(&status) {
        let kind = value
            .get("__type")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        let message = value
            .get("message")
            .or_else(|| value.get("Message"))
            .and_then(|v| v.as_str())
            .unwrap_or("");
        return Err(format!("KMS refused ({status} {kind}): {message}"));
    }
    let field = |name: &str| -> Result<Option<Vec<u8>>, String> {
        match value.get(name).and_then(|v| v.as_str()) {
            None => Ok(None),
            Some(text) => B64
                .decode(text)
                .map(Some)
                .map_err(|e| format!("KMS's {name} is not base64: {e}")),
        }
    };
    Ok(KeyAnswer {
        for_recipient: field("CiphertextForRecipient")?,
        plaintext: field("Plaintext")?,
        blob: field("CiphertextBlob")?,
    })
}

/// Reads the proxy's credentials answer (`{"AccessKeyId","SecretAccessKey","Token"}`).
pub fn parse_credentials(json: &[u8]) -> Result<sigv4::Credentials, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("credentials are not JSON: {e}"))?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
    Ok(sigv4::Credentials {
        access_key_id: text("AccessKeyId").ok_or("credentials without AccessKeyId")?,
        secret_access_key: text("SecretAccessKey").ok_or("credentials without SecretAccessKey")?,
        session_token: text("Token").filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_recipient_and_the_context() {
        let body = generate_data_key_body("alias/k", "c1", b"doc");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["KeySpec"], "AES_256");
        assert_eq!(v["EncryptionContext"]["nautilus:cluster"], "c1");
        assert_eq!(
            v["Recipient"]["KeyEncryptionAlgorithm"],
            "RSAES_OAEP_SHA_256"
        );
        assert_eq!(v["Recipient"]["AttestationDocument"], B64.encode(b"doc"));
        let body = decrypt_body("alias/k", "c1", b"blob", b"doc");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["CiphertextBlob"], B64.encode(b"blob"));
    }

    #[test]
    fn answers_and_errors_are_read() {
        let ok = br#"{"CiphertextBlob":"YmxvYg==","CiphertextForRecipient":"ZW52","KeyId":"k"}"#;
        let answer = parse_answer(200, ok).unwrap();
        assert_eq!(answer.blob.as_deref(), Some(&b"blob"[..]));
        assert_eq!(answer.for_recipient.as_deref(), Some(&b"env"[..]));
        assert_eq!(answer.plaintext, None);
        let refused = br#"{"__type":"AccessDeniedException","message":"PCR0 mismatch"}"#;
        let e = parse_answer(400, refused).unwrap_err();
        assert!(
            e.contains("AccessDeniedException") && e.contains("PCR0"),
            "{e}"
        );
        let creds =
            parse_credentials(br#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":""}"#).unwrap();
        assert_eq!(creds.session_token, None);
        assert!(!format!("{creds:?}").contains('S'));
    }
}
