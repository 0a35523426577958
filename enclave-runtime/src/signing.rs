//! Signed answers (`X-Nautilus-Sign: 1`): the runtime signs the complete answer with the
//! attested identity key, following `nautilus_core::signed_answer` byte for byte.
//!
//! - The request's `X-Nautilus-Sign` must be `1` (sign) or `0`/absent (don't); anything else, or
//!   a bad `X-Nautilus-Nonce` (not hex, over 64 bytes) on a signed request, is 400 before the
//!   request reaches core, so a refused request never writes.
//! - What is signed is the exact response body sent, its status, the request's method,
//!   path+query as on the request line and body, the store revision read under the core lock
//!   right after the request ran, the enclave clock (ms), the state's freshness (`unverified`
//!   with a durable log: one enclave cannot detect a rolled-back host copy) and the nonce.
//! - Watch requests are answered normally, without signature headers: a stream has no complete
//!   body to sign. Answers made before core runs (an unreadable body, too many watches) are not
//!   signed either; a client that asked treats a missing signature as a failure.

use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderValue};
use nautilus_core::Error;
use nautilus_core::api::ApiResponse;
use nautilus_core::signed_answer::{
    FRESHNESS_HEADER, Freshness, NONCE_HEADER, REVISION_HEADER, SIGN_REQUEST_HEADER,
    SIGNATURE_HEADER, SignedFields, TIMESTAMP_HEADER,
};

use crate::attestation::Attestation;
use crate::budget::Chunk;
use crate::http::{self, ResponseBody};

/// A request that asked for a signed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignRequest {
    /// The client's nonce (empty when none was sent).
    pub(crate) nonce: Vec<u8>,
}

/// Whether the request asks for a signed answer; a malformed ask is the 400 to send.
pub(crate) fn requested(
    headers: &HeaderMap,
) -> Result<Option<SignRequest>, Box<hyper::Response<ResponseBody>>> {
    let bad = |message: &str| {
        Box::new(http::to_hyper(ApiResponse::error(&Error::BadRequest(
            message.to_string(),
        ))))
    };
    match headers.get(SIGN_REQUEST_HEADER).map(HeaderValue::as_bytes) {
        None | Some(b"0") => return Ok(None),
        Some(b"1") => {}
        Some(_) => return Err(bad("X-Nautilus-Sign must be 1 (sign the answer) or 0")),
    }
    let nonce = match headers.get(NONCE_HEADER) {
        None => Vec::new(),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| bad("X-Nautilus-Nonce must be hex digits"))?;
            crate::attestation::parse_nonce(text).map_err(|e| match e {
                Error::BadRequest(m) => bad(&format!("X-Nautilus-Nonce: {m}")),
                _ => bad("X-Nautilus-Nonce is not valid"),
            })?
        }
    };
    Ok(Some(SignRequest { nonce }))
}

/// The enclave clock in unix milliseconds.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `response` with the signature headers when `sign` asks for them and the body is complete.
pub(crate) fn apply(
    attestation: &Attestation,
    sign: Option<&SignRequest>,
    parts: &hyper::http::request::Parts,
    request_body: &[u8],
    revision: u64,
    freshness: Freshness,
    mut response: hyper::Response<ResponseBody>,
) -> hyper::Response<ResponseBody> {
    let Some(sign) = sign else {
        return response;
    };
    let ResponseBody::Full(body) = response.body() else {
        return response;
    };
    let response_body: &[u8] = body.as_ref().map(Chunk::bytes).unwrap_or_default();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    let timestamp_ms = now_ms();
    let fields = SignedFields {
        method: parts.method.as_str(),
        path_and_query,
        request_body,
        status: response.status().as_u16(),
        response_body,
        revision,
        timestamp_ms,
        freshness,
        nonce: &sign.nonce,
    };
    let signature = nautilus_core::signed_answer::sign(attestation.identity(), &fields);
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature);
    let headers = response.headers_mut();
    for (name, value) in [
        (SIGNATURE_HEADER, encoded),
        (REVISION_HEADER, revision.to_string()),
        (TIMESTAMP_HEADER, timestamp_ms.to_string()),
        (FRESHNESS_HEADER, freshness.as_str().to_string()),
        (NONCE_HEADER, hex::encode(&sign.nonce)),
    ] {
        if name == NONCE_HEADER && sign.nonce.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use bytes::Bytes;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn asked(headers: &HeaderMap) -> Option<SignRequest> {
        requested(headers).unwrap_or_else(|r| panic!("refused: {}", r.status()))
    }

    #[test]
    fn what_asks_for_a_signature() {
        assert_eq!(asked(&headers(&[])), None);
        assert_eq!(asked(&headers(&[("x-nautilus-sign", "0")])), None);
        assert_eq!(
            asked(&headers(&[("x-nautilus-sign", "1")])),
            Some(SignRequest { nonce: vec![] })
        );
        assert_eq!(
            asked(&headers(&[
                ("x-nautilus-sign", "1"),
                ("x-nautilus-nonce", "A0b1")
            ])),
            Some(SignRequest {
                nonce: vec![0xa0, 0xb1]
            })
        );
        // A nonce without the ask is not looked at.
        assert_eq!(asked(&headers(&[("x-nautilus-nonce", "zz")])), None);
        let too_long = "00".repeat(65);
        for bad in [
            vec![("x-nautilus-sign", "yes")],
            vec![("x-nautilus-sign", "1"), ("x-nautilus-nonce", "zz")],
            vec![("x-nautilus-sign", "1"), ("x-nautilus-nonce", "abc")],
            vec![("x-nautilus-sign", "1"), ("x-nautilus-nonce", &too_long)],
        ] {
            let Err(response) = requested(&headers(&bad)) else {
                panic!("{bad:?} must be refused");
            };
            assert_eq!(response.status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn a_signed_answer_verifies_with_the_identity_key() {
        let nsm: Arc<dyn crate::nsm::Nsm> =
            Arc::new(crate::nsm::simulated::SimulatedNsm::new().unwrap());
        let attestation = Attestation::new(nsm, String::new(), None).unwrap();
        let (parts, ()) = hyper::Request::builder()
            .method("PUT")
            .uri("/api/v1/namespaces/default/pods/a?dryRun=All")
            .body(())
            .unwrap()
            .into_parts();
        let mut response =
            hyper::Response::new(ResponseBody::full(Bytes::from_static(b"{\"a\":1}")));
        *response.status_mut() = hyper::StatusCode::CREATED;
        let sign = SignRequest { nonce: vec![9, 9] };
        let signed = apply(
            &attestation,
            Some(&sign),
            &parts,
            b"req",
            17,
            Freshness::Unverified,
            response,
        );
        let header = |name: &str| signed.headers().get(name).unwrap().to_str().unwrap();
        assert_eq!(header("x-nautilus-revision"), "17");
        assert_eq!(header("x-nautilus-nonce"), "0909");
        assert_eq!(header("x-nautilus-freshness"), "unverified");
        let signature = base64::engine::general_purpose::STANDARD
            .decode(header("x-nautilus-signature"))
            .unwrap();
        let mut fields = SignedFields {
            method: "PUT",
            path_and_query: "/api/v1/namespaces/default/pods/a?dryRun=All",
            request_body: b"req",
            status: 201,
            response_body: b"{\"a\":1}",
            revision: 17,
            timestamp_ms: header("x-nautilus-timestamp").parse().unwrap(),
            freshness: Freshness::Unverified,
            nonce: &[9, 9],
        };
        let public = attestation.identity_public_sec1();
        assert_eq!(
            nautilus_core::signed_answer::verify(public, &fields, &signature),
            Ok(())
        );
        // A host that rewrites the freshness header to claim state never left the enclave:
        let claimed = SignedFields {
            freshness: Freshness::InMemory,
            ..fields
        };
        assert!(nautilus_core::signed_answer::verify(public, &claimed, &signature).is_err());
        fields.response_body = b"{\"a\":2}";
        assert!(nautilus_core::signed_answer::verify(public, &fields, &signature).is_err());

        // Unasked: untouched (a watch stream never is: only a whole body is signed).
        let plain = apply(
            &attestation,
            None,
            &parts,
            b"",
            1,
            Freshness::InMemory,
            hyper::Response::new(ResponseBody::Full(None)),
        );
        assert!(plain.headers().get("x-nautilus-signature").is_none());
    }
}
