//! TESTS ONLY (hidden flag `--durable-test-listen unix:PATH`): a record stream that drives the
//! durable log end to end before core's change records are routed into it (issue 15). It
//! listens on a Unix socket of its own, outside the API port and the request path:
//!
//! - `POST /append?revision=N` with the record as the body: `200 {"position":P}` once durable,
//!   or the write's error status (507 disk full, 503 storage failing) with the reason.
//! - `POST /snapshot?revision=N` with the state as the body (cut into 64 KiB chunks): taken at
//!   the log's current end, `200 {"position":P}` once committed.
//! - `GET /recovered`: what the log verified at start, as JSON
//!   `{"snapshot":null|{"revision","position","state"},"records":[{"position","revision","record"}],"dropped"}`
//!   (record and state bytes as UTF-8 text, lossy; tests write text).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::{DurableLog, Kept};

/// Largest body accepted.
const MAX_BODY: usize = 8 << 20;
/// Snapshot chunk size.
const CHUNK: usize = 64 << 10;

/// Serves the test stream on `path` until the process ends.
pub(crate) fn spawn(
    path: PathBuf,
    log: DurableLog,
    kept: &Kept,
    dropped: Option<&str>,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot listen on unix:{}: {e}", path.display()))?;
    tracing::warn!(path = %path.display(), "TESTS ONLY: the durable log's test record stream is open");
    let recovered = Arc::new(recovered_json(kept, dropped));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            let recovered = recovered.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(log.clone(), recovered.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

fn recovered_json(recovered: &Kept, dropped: Option<&str>) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    serde_json::json!({
        "snapshot": recovered.snapshot.as_ref().map(|s| serde_json::json!({
            "revision": s.revision,
            "position": s.position,
            "state": text(&s.chunks.concat()),
        })),
        "records": recovered.records.iter().map(|r| serde_json::json!({
            "position": r.position,
            "revision": r.revision,
            "record": text(&r.payload),
        })).collect::<Vec<_>>(),
        "dropped": dropped,
    })
    .to_string()
}

fn answer(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

async fn handle(
    log: DurableLog,
    recovered: Arc<String>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let revision = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("revision="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let route = (req.method().clone(), req.uri().path().to_string());
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(e) => return Ok(answer(413, e.to_string())),
    };
    let response = match (route.0.as_str(), route.1.as_str()) {
        ("GET", "/recovered") => answer(200, recovered.to_string()),
        ("POST", "/append") => match log.append(revision, body).await {
            Ok(position) => answer(200, format!("{{\"position\":{position}}}")),
            Err(e) => answer(e.http_status(), e.to_string()),
        },
        ("POST", "/snapshot") => {
            let written = async {
                let point = log.snapshot_point().await?;
                let chunks = body.chunks(CHUNK).map(<[u8]>::to_vec).collect::<Vec<_>>();
                log.write_snapshot(point, revision, chunks).await?;
                Ok::<_, super::DurableError>(point.position)
            };
            match written.await {
                Ok(position) => answer(200, format!("{{\"position\":{position}}}")),
                Err(e) => answer(e.http_status(), e.to_string()),
            }
        }
        _ => answer(404, "not found".into()),
    };
    Ok(response)
}
