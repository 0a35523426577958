//! Conversions between hyper's types and core's request/response shapes.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
use nautilus_core::api::render::ListChunks;
use nautilus_core::api::{ApiResponse, openapi};

use crate::budget::{Budget, Chunk, Held};

/// How much of a large JSON or Table LIST is encoded at a time: hyper sends each piece while the next
/// is encoded, and no more than a few pieces are held at once.
pub(crate) const LIST_PIECE: usize = 256 * 1024;

/// A response body: complete bytes, or a watch stream's chunks, each holding its share of the
/// in-flight budget until hyper has written it.
pub(crate) enum ResponseBody {
    /// The whole body.
    Full(Option<Chunk>),
    /// A watch stream, polled by hyper.
    Watch(Box<crate::watch_stream::WatchBody>),
    /// A kubelet's streamed answer (`kubectl logs`), polled by hyper.
    Kubelet(Box<crate::kubelet::KubeletBody>),
    /// A large JSON or Table LIST, encoded a piece at a time as hyper asks for more.
    List(Box<ListBody>),
}

/// A LIST's pieces, each holding its share of the in-flight budget until written.
pub(crate) struct ListBody {
    chunks: ListChunks,
    budget: Budget,
    len: Option<u64>,
}

impl ListBody {
    fn poll_frame(&mut self) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        let Some(piece) = self.chunks.next_chunk(LIST_PIECE) else {
            return Poll::Ready(None);
        };
        // Like a watch frame: when the budget is full the piece still goes (hyper's buffer
        // bounds what one connection holds; the refusal was at the start).
        let held = self.budget.try_take(piece.len()).unwrap_or_default();
        Poll::Ready(Some(Ok(Frame::data(Chunk::new(Bytes::from(piece), held)))))
    }
}

impl ResponseBody {
    /// A whole body that holds no budget (small answers the runtime makes itself).
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(Chunk::from(bytes.into())))
    }
}

impl Body for ResponseBody {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        match self.get_mut() {
            Self::Full(chunk) => Poll::Ready(chunk.take().map(|c| Ok(Frame::data(c)))),
            Self::Watch(body) => body.poll_frame(cx),
            Self::Kubelet(body) => body.poll_frame(cx),
            Self::List(body) => body.poll_frame(),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(c)) => SizeHint::with_exact(c.bytes().len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Watch(_) => SizeHint::default(),
            Self::Kubelet(body) => body.size_hint(),
            Self::List(body) => body
                .len
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// The answer to a LIST sent in pieces, with the headers the whole body would have had (its
/// `Content-Length` too when its length is known up front).
pub(crate) fn list_in_pieces(chunks: ListChunks, budget: Budget) -> hyper::Response<ResponseBody> {
    let len = chunks.body_len().map(|l| l as u64);
    let mut out = with_body(200, chunks.content_type(), &[], Chunk::from(Bytes::new()));
    *out.body_mut() = ResponseBody::List(Box::new(ListBody {
        chunks,
        budget,
        len,
    }));
    out
}

/// The hyper response for a core response.
pub(crate) fn to_hyper(response: ApiResponse) -> hyper::Response<ResponseBody> {
    to_hyper_held(response, Held::default())
}

/// The hyper response for a core response whose body holds `held` of the in-flight budget.
pub(crate) fn to_hyper_held(response: ApiResponse, held: Held) -> hyper::Response<ResponseBody> {
    let ApiResponse {
        status,
        content_type,
        body,
        warnings,
        cache_control,
        ..
    } = response;
    let retry = if matches!(status, 429 | 503 | 504) {
        retry_after(&body)
    } else {
        None
    };
    let mut out = with_body(
        status,
        content_type,
        &warnings,
        Chunk::new(Bytes::from(body), held),
    );
    // kube-apiserver sends `Retry-After` when the Status's `details.retryAfterSeconds` is
    // above 0 (`ErrorNegotiated`); a 429 without it (a spent disruption budget) is left for the
    // client to handle, as client-go retries on the header silently.
    if let Some(cache_control) = cache_control {
        out.headers_mut().insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
    }
    if let Some(secs) = retry {
        out.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    out
}

/// The answer to a request whose body is not read (refused on its head): the connection ends
/// after it (`Connection: close`).
pub(crate) fn to_hyper_closing(response: ApiResponse) -> hyper::Response<ResponseBody> {
    let mut out = to_hyper(response);
    out.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    out
}

fn with_body(
    status: u16,
    content_type: &'static str,
    warnings: &[String],
    body: Chunk,
) -> hyper::Response<ResponseBody> {
    let mut out = hyper::Response::new(ResponseBody::Full(Some(body)));
    *out.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    add_warnings(headers, warnings);
    out
}

/// The hyper response for an embedded OpenAPI document: its static bytes without a copy, with
/// kube-openapi's headers, or 304 Not Modified when `If-None-Match` names it.
pub(crate) fn openapi_to_hyper(
    served: openapi::Served,
    if_none_match: Option<&str>,
) -> hyper::Response<ResponseBody> {
    let not_modified = if_none_match.is_some_and(|tags| served.not_modified(tags));
    let extra = served.headers();
    let body = if not_modified {
        Bytes::new()
    } else {
        match served.body {
            Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            Cow::Owned(bytes) => Bytes::from(bytes),
        }
    };
    let mut out = hyper::Response::new(ResponseBody::full(body));
    let status = if not_modified { 304 } else { served.status };
    *out.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    if !not_modified {
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static(served.content_type),
        );
    }
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    out
}

/// A Status's `details.retryAfterSeconds`, which kube-apiserver also sends as `Retry-After`.
fn retry_after(body: &[u8]) -> Option<u64> {
    let status: serde_json::Value = serde_json::from_slice(body).ok()?;
    status
        .pointer("/details/retryAfterSeconds")
        .and_then(serde_json::Value::as_u64)
        .filter(|s| *s > 0)
}

fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for warning in warnings {
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            headers.append(hyper::header::WARNING, value);
        }
    }
}

/// The first value of `name` as text, if it is valid UTF-8.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nautilus_core::Error;

    fn retry_after_header(error: &Error) -> Option<String> {
        let out = to_hyper(ApiResponse::error(error));
        assert_eq!(out.status(), 429);
        out.headers()
            .get(hyper::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// As kube's `ErrorNegotiated`: `Retry-After` only when the Status suggests a delay, so a
    /// spent disruption budget reaches `kubectl drain` instead of client-go's silent retries.
    #[test]
    fn retry_after_follows_the_status() {
        assert_eq!(
            retry_after_header(&Error::TooManyRequests("full".into())).as_deref(),
            Some("1")
        );
        let spent = Error::DisruptionBudget {
            detail: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
            retry_after_secs: 0,
        };
        assert_eq!(retry_after_header(&spent), None);
        let syncing = Error::DisruptionBudget {
            detail: "The disruption budget web is still being processed by the server.".into(),
            retry_after_secs: 10,
        };
        assert_eq!(retry_after_header(&syncing).as_deref(), Some("10"));
    }

    /// A follower's refusal (no leader known) is a 503 that client-go retries after a second.
    #[test]
    fn not_leader_is_503_with_retry_after() {
        let out = to_hyper(ApiResponse::error(&Error::NotLeader));
        assert_eq!(out.status(), 503);
        assert_eq!(
            out.headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
}
