//! The answer when the enclave cannot be reached: the proxy is alive (`/healthz`, `/livez` →
//! 200) but not ready (`/readyz` → 503), and every other request gets a Kubernetes `Status`
//! 503 with `Retry-After`. One request per connection, so the client's next connection retries
//! the enclave. Only the path is looked at; no header or body is read or logged.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

/// Body of `/readyz` while the enclave is unreachable (kube-apiserver's check-list style).
pub(crate) const READYZ_BODY: &str = "[-]enclave failed: enclave unreachable\nreadyz check failed";

/// Body of every other request while the enclave is unreachable.
pub(crate) const UNAVAILABLE_STATUS: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the enclave is unreachable; retry shortly","reason":"ServiceUnavailable","code":503}"#;

/// Serves fallback answers on `io` until the client is done or `budget` elapses.
pub(crate) async fn serve<S>(io: S, budget: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(budget.min(Duration::from_secs(30)))
        .serve_connection(
            TokioIo::new(io),
            hyper::service::service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(req.method(), req.uri().path()))
            }),
        );
    match tokio::time::timeout(budget, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(error = %err, "fallback connection ended with an error"),
        Err(_) => tracing::debug!("fallback connection timed out"),
    }
}

/// The fallback answer for `method` and `path`.
pub(crate) fn answer(method: &Method, path: &str) -> Response<Full<Bytes>> {
    let probe = *method == Method::GET || *method == Method::HEAD;
    let (status, content_type, body, retry) = match path {
        "/healthz" | "/livez" if probe => (StatusCode::OK, TEXT, "ok", false),
        "/readyz" if probe => (StatusCode::SERVICE_UNAVAILABLE, TEXT, READYZ_BODY, true),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            UNAVAILABLE_STATUS,
            true,
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    if retry {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

const TEXT: &str = "text/plain; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(resp: Response<Full<Bytes>>) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn table() {
        let cases = [
            (Method::GET, "/healthz", 200, "ok"),
            (Method::GET, "/livez", 200, "ok"),
            (Method::GET, "/readyz", 503, READYZ_BODY),
            (Method::GET, "/api/v1/pods", 503, UNAVAILABLE_STATUS),
            (Method::POST, "/healthz", 503, UNAVAILABLE_STATUS),
            (Method::GET, "/healthz/etcd", 503, UNAVAILABLE_STATUS),
        ];
        for (method, path, code, want) in cases {
            let resp = answer(&method, path);
            assert_eq!(resp.status().as_u16(), code, "{method} {path}");
            let retry = resp.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap());
            assert_eq!(retry, (code == 503).then_some("1"), "{method} {path}");
            assert_eq!(body(resp).await, want, "{method} {path}");
        }
    }

    #[test]
    fn status_is_kubernetes_json() {
        // Shape of metav1.Status as kube-apiserver writes it for a 503.
        let v: serde_json::Value = serde_json::from_str(UNAVAILABLE_STATUS).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "ServiceUnavailable");
        assert_eq!(v["code"], 503);
    }
}
