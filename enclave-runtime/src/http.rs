//! Conversions between hyper's types and core's request/response shapes.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
use nautilus_core::api::{ApiResponse, openapi};
use tokio::sync::mpsc;

/// A response body: complete bytes, or a watch stream's chunks.
pub(crate) enum ResponseBody {
    /// The whole body.
    Full(Option<Bytes>),
    /// Chunks as the watch task produces them; ends when the task drops its sender.
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

/// The hyper response for a core response.
pub(crate) fn to_hyper(response: ApiResponse) -> hyper::Response<ResponseBody> {
    let retry = if matches!(response.status, 429 | 503 | 504) {
        retry_after(&response.body)
    } else {
        None
    };
    let mut out = hyper::Response::new(ResponseBody::Full(Some(Bytes::from(response.body))));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    add_warnings(headers, &response.warnings);
    if let Some(secs) = retry {
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
    }
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
    let mut out = hyper::Response::new(ResponseBody::Full(Some(body)));
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
