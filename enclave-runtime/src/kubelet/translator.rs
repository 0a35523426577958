//! kube-apiserver's stream translator (`TranslateStreamCloseWebsocketRequests`, on by default
//! since 1.30): an `exec` or `attach` whose client asks for WebSocket `v5.channel.k8s.io`
//! (kubectl 1.30+) is answered here and carried to the kubelet as SPDY with the streams the
//! request names, as kube's `StreamTranslatorHandler` does with client-go's SPDY executor.
//!
//! In kube's order: the WebSocket 101 first, then an empty message on the lowest writable
//! channel (stdout, else stderr, else the error channel) to say the connection is up; then the
//! SPDY upgrade to the kubelet (protocols v5 then v4: a kubelet's SPDY v5 is v4) and one stream
//! per channel asked for (error, stdin, stdout, stderr unless tty, resize with tty). The client's
//! stdin and resize messages go to their streams once the kubelet has answered every stream;
//! the kubelet's stdout and stderr come back on channels 1 and 2; v5's CLOSE of channel 0 ends
//! the stdin stream. When stdout, stderr and the error stream have ended, the error stream is
//! decoded as client-go's v4 decoder does and the outcome written on channel 3 as kube's
//! translator words it (success, `NonZeroExitCode` with the exit code, or an `InternalError`),
//! then the connection is closed (1000). A kubelet that cannot be reached is reported the same
//! way, as an `InternalError` on channel 3.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper_util::rt::TokioIo;
use nautilus_core::api::{KubeletCall, StreamOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Mutex, OwnedSemaphorePermit, watch};

use super::{CONNECT_TIMEOUT, Dialer, MAX_ERROR_BODY, spdy};
use crate::http::ResponseBody;
use crate::websocket as ws;

/// The remote command protocol with the CLOSE signal, the only one kube translates.
pub(super) const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
/// The header carrying SPDY's protocol negotiation (kube's `X-Stream-Protocol-Version`).
pub(super) const PROTOCOL_VERSION: &str = "x-stream-protocol-version";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5's CLOSE signal: a message `[255, channel]` half-closes the channel.
const STREAM_CLOSE: u8 = 255;
/// kube's idle timeout of the translator's WebSocket (the kubelet's too).
const IDLE: Duration = Duration::from_secs(4 * 3600);
/// kube's deadline for writing the final status.
const STATUS_DEADLINE: Duration = Duration::from_secs(10);
/// How often the kubelet is pinged, as kube's translator's SPDY round tripper pings it (an idle
/// terminal session stays alive through the kubelet's and any middlebox's idle timeouts).
const PING_PERIOD: Duration = Duration::from_secs(5);

/// kube's `IsWebSocketRequestWithStreamCloseProtocol`: a WebSocket request whose
/// `Sec-WebSocket-Protocol` names v5.
pub(super) fn wants(headers: &HeaderMap) -> bool {
    ws::is_websocket_request(headers)
        && headers
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == V5))
}

/// Answers the client's handshake (101, `v5.channel.k8s.io`) and runs the session in a task
/// that holds `permit` for its life.
pub(super) fn accept(
    dialer: Dialer,
    call: KubeletCall,
    options: StreamOptions,
    parts: &hyper::http::request::Parts,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    permit: OwnedSemaphorePermit,
) -> hyper::Response<ResponseBody> {
    let accept = match ws::handshake_accept(&parts.method, &parts.headers) {
        Ok(accept) => accept,
        Err(why) => return super::plain_error(hyper::StatusCode::BAD_REQUEST, why),
    };
    let Some(client_upgrade) = client_upgrade else {
        return super::plain_error(hyper::StatusCode::BAD_REQUEST, "Upgrade request required");
    };
    tokio::spawn(async move {
        let _permit = permit;
        match client_upgrade.await {
            Ok(client) => {
                let ended = run(TokioIo::new(client), &dialer, &call, options).await;
                tracing::debug!(node = %call.node, pod = %call.pod, ended, "translated kubelet stream ended");
            }
            Err(e) => tracing::debug!("a translated kubelet stream did not start: {e}"),
        }
    });
    ws::switching_protocols(&accept, Some(V5))
}

/// The SPDY streams of a session, numbered as client-go's executor opens them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Streams {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl Streams {
    /// client-go's v4 `createStreams`: error, stdin, stdout, stderr (not with a TTY), then
    /// resize (with a TTY); client stream ids are odd and increasing.
    fn new(options: StreamOptions) -> Self {
        let mut next = 1u32;
        let mut open = |wanted: bool| {
            wanted.then(|| {
                let id = next;
                next += 2;
                id
            })
        };
        Self {
            error: open(true).unwrap_or(1),
            stdin: open(options.stdin),
            stdout: open(options.stdout),
            stderr: open(options.stderr && !options.tty),
            resize: open(options.tty),
        }
    }

    /// Every stream with its `streamType`, in opening order.
    fn all(&self) -> Vec<(u32, &'static str)> {
        [
            (Some(self.error), "error"),
            (self.stdin, "stdin"),
            (self.stdout, "stdout"),
            (self.stderr, "stderr"),
            (self.resize, "resize"),
        ]
        .into_iter()
        .filter_map(|(id, kind)| id.map(|id| (id, kind)))
        .collect()
    }

    /// The streams whose end the session waits for (what client-go's `stream` waits for).
    fn outputs(&self) -> Vec<u32> {
        [Some(self.error), self.stdout, self.stderr]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The channel a kubelet stream's data goes to.
    fn channel_of(&self, stream: u32) -> Option<u8> {
        if Some(stream) == self.stdout {
            Some(STDOUT)
        } else if Some(stream) == self.stderr {
            Some(STDERR)
        } else {
            None
        }
    }

    /// The stream a client channel's data goes to.
    fn stream_of(&self, channel: u8) -> Option<u32> {
        match channel {
            STDIN => self.stdin,
            RESIZE => self.resize,
            _ => None,
        }
    }
}

type Shared<W> = Arc<Mutex<W>>;

/// The session: returns why it ended.
async fn run<S>(
    client: S,
    dialer: &Dialer,
    call: &KubeletCall,
    options: StreamOptions,
) -> &'static str
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (client_read, client_write) = tokio::io::split(client);
    let client_write = Arc::new(Mutex::new(ws::Writer::new(client_write)));
    let ready = if options.stdout {
        STDOUT
    } else if options.stderr {
        STDERR
    } else {
        ERROR
    };
    if send(&client_write, ready, &[]).await.is_err() {
        return "the client left before the kubelet was called";
    }
    let kubelet = match connect(dialer, call).await {
        Ok(kubelet) => kubelet,
        Err(status) => {
            tracing::info!(node = %call.node, pod = %call.pod, message = %status["message"], "kubelet unreachable");
            finish(&client_write, &status).await;
            return "the kubelet refused";
        }
    };
    let (kubelet_read, mut kubelet_write) = tokio::io::split(kubelet);
    let streams = Streams::new(options);
    let mut blocks = spdy::HeaderBlocks::default();
    let mut syn = Vec::new();
    for (id, kind) in streams.all() {
        syn.extend(spdy::syn_stream(id, &blocks.block(&[("streamType", kind)])));
    }
    if let Err(e) = kubelet_write.write_all(&syn).await {
        finish(
            &client_write,
            &internal(&format!("error creating streams: {e}")),
        )
        .await;
        return "the kubelet connection broke";
    }
    let kubelet_write = Arc::new(Mutex::new(kubelet_write));
    let pinger = tokio::spawn(ping(Arc::clone(&kubelet_write)));
    let (replied_tx, replied_rx) = watch::channel(false);
    let upstream = tokio::spawn(client_to_kubelet(
        client_read,
        Arc::clone(&client_write),
        Arc::clone(&kubelet_write),
        streams,
        replied_rx,
        dialer.buffer,
    ));
    let status = kubelet_to_client(
        kubelet_read,
        &client_write,
        &kubelet_write,
        streams,
        &replied_tx,
        dialer.buffer,
    )
    .await;
    upstream.abort();
    pinger.abort();
    finish(&client_write, &status).await;
    "ended"
}

/// Pings the kubelet every [`PING_PERIOD`] with odd ids (a client's), until its connection
/// breaks; the kubelet's echoes are read and dropped.
async fn ping<K: AsyncWrite + Unpin>(kubelet: Shared<K>) {
    let mut id = 1u32;
    let mut every = tokio::time::interval(PING_PERIOD);
    every.tick().await;
    loop {
        every.tick().await;
        if kubelet
            .lock()
            .await
            .write_all(&spdy::ping(id))
            .await
            .is_err()
        {
            return;
        }
        id = id.wrapping_add(2) | 1;
    }
}

/// client-go's SPDY executor's upgrade: the kubelet's upgraded connection, or kube's Status for
/// the client.
async fn connect(
    dialer: &Dialer,
    call: &KubeletCall,
) -> Result<TokioIo<hyper::upgrade::Upgraded>, Value> {
    let mut headers = HeaderMap::new();
    headers.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    for protocol in [V5, V4] {
        headers.append(PROTOCOL_VERSION, HeaderValue::from_static(protocol));
    }
    let response = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        dialer.start(call, hyper::Method::POST, headers),
    )
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(message)) => return Err(internal(&format!("error sending request: {message}"))),
        Err(_) => {
            return Err(internal(&format!(
                "error sending request: Post {:?}: dial tcp {}: i/o timeout",
                call.url(),
                super::address(call)
            )));
        }
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let upgraded = response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS
        && header("connection").contains("upgrade")
        && header("upgrade").contains("spdy/3.1");
    if !upgraded {
        // client-go's `NewConnection`: a Status body is passed on as is, other text is wrapped.
        let body = Limited::new(response.into_body(), MAX_ERROR_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if let Ok(status) = serde_json::from_slice::<Value>(&body)
            && status["kind"] == "Status"
        {
            return Err(status);
        }
        return Err(internal(&format!(
            "unable to upgrade connection: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let protocol = header(PROTOCOL_VERSION);
    if protocol != V5 && protocol != V4 {
        return Err(internal(&format!(
            "the kubelet chose the streaming protocol {protocol:?}; only {V5} and {V4} are translated"
        )));
    }
    hyper::upgrade::on(response)
        .await
        .map(TokioIo::new)
        .map_err(|e| internal(&format!("error upgrading the kubelet connection: {e}")))
}

/// Sends one message on `channel`.
async fn send<W: AsyncWrite + Unpin>(
    client: &Shared<ws::Writer<W>>,
    channel: u8,
    data: &[u8],
) -> std::io::Result<()> {
    client
        .lock()
        .await
        .send(ws::BINARY, &[&[channel], data])
        .await
}

/// Writes the session's Status on the error channel and closes the connection (1000).
async fn finish<W: AsyncWrite + Unpin>(client: &Shared<ws::Writer<W>>, status: &Value) {
    let body = serde_json::to_vec(status).unwrap_or_default();
    let _ = tokio::time::timeout(STATUS_DEADLINE, async {
        let mut writer = client.lock().await;
        if writer
            .send(ws::BINARY, &[&[ERROR], body.as_slice()])
            .await
            .is_ok()
        {
            let _ = writer.close(ws::NORMAL_CLOSURE).await;
        }
    })
    .await;
}

/// Reads the kubelet's frames: stdout and stderr data to the client, the error stream kept
/// (at most `buffer` bytes), replies counted, pings answered. Ends when the output streams
/// have ended or the connection does (spdystream then ends every stream), with the Status.
async fn kubelet_to_client<R, W, K>(
    mut kubelet: R,
    client: &Shared<ws::Writer<W>>,
    kubelet_write: &Shared<K>,
    streams: Streams,
    replied: &watch::Sender<bool>,
    buffer: usize,
) -> Value
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: AsyncWrite + Unpin,
{
    let mut awaiting: Vec<u32> = streams.all().into_iter().map(|(id, _)| id).collect();
    let mut open = streams.outputs();
    let mut error_stream = Vec::new();
    let mut error_overflow = false;
    let mut client_open = true;
    let mut chunk = vec![0u8; buffer.max(8)];
    'frames: while !open.is_empty() {
        let mut head = [0u8; 8];
        if kubelet.read_exact(&mut head).await.is_err() {
            break;
        }
        let Ok(head) = spdy::Head::parse(head) else {
            // spdystream stops reading at a frame it cannot parse and ends every stream.
            break;
        };
        match head {
            spdy::Head::Data { stream, flags, len } => {
                let mut left = usize::try_from(len).unwrap_or(usize::MAX);
                while left > 0 {
                    let n = left.min(chunk.len());
                    let Some(data) = chunk.get_mut(..n) else {
                        break 'frames;
                    };
                    if kubelet.read_exact(data).await.is_err() {
                        break 'frames;
                    }
                    left -= n;
                    if stream == streams.error {
                        if error_stream.len().saturating_add(n) <= buffer {
                            error_stream.extend_from_slice(data);
                        } else {
                            error_overflow = true;
                        }
                    } else if let Some(channel) = streams.channel_of(stream)
                        && client_open
                    {
                        // A client gone is drained as kube drains it: the kubelet's stream
                        // still runs to its end.
                        client_open = send(client, channel, data).await.is_ok();
                    }
                }
                if flags & spdy::FLAG_FIN != 0 {
                    open.retain(|s| *s != stream);
                }
            }
            spdy::Head::Control { kind, flags, len } => {
                let fixed_len = match kind {
                    spdy::SYN_REPLY | spdy::PING => 4,
                    spdy::RST_STREAM | spdy::GOAWAY => 8,
                    _ => 0,
                };
                let mut fixed = [0u8; 8];
                let Some(fixed_bytes) = fixed.get_mut(..fixed_len) else {
                    break;
                };
                if kubelet.read_exact(fixed_bytes).await.is_err() {
                    break;
                }
                // The rest (the kubelet's header blocks, settings) is not needed: skipped.
                let mut rest = u64::from(len).saturating_sub(fixed_len as u64);
                while rest > 0 {
                    let n = usize::try_from(rest).unwrap_or(usize::MAX).min(chunk.len());
                    let Some(skip) = chunk.get_mut(..n) else {
                        break 'frames;
                    };
                    if kubelet.read_exact(skip).await.is_err() {
                        break 'frames;
                    }
                    rest -= n as u64;
                }
                let [a, b, c, d, ..] = fixed;
                let id = u32::from_be_bytes([a, b, c, d]) & 0x7fff_ffff;
                match kind {
                    spdy::SYN_REPLY => {
                        awaiting.retain(|s| *s != id);
                        if awaiting.is_empty() {
                            replied.send_replace(true);
                        }
                        if flags & spdy::FLAG_FIN != 0 {
                            open.retain(|s| *s != id);
                        }
                    }
                    spdy::RST_STREAM => {
                        if awaiting.contains(&id) {
                            return internal("stream reset before it was answered");
                        }
                        open.retain(|s| *s != id);
                    }
                    // Our pings are odd (their echoes dropped); the kubelet's are echoed (if the
                    // writer is free: a skipped echo is harmless, a wait could stall this reader
                    // behind stdin).
                    spdy::PING if id % 2 == 0 => {
                        if let Ok(mut w) = kubelet_write.try_lock() {
                            let _ = w.write_all(&spdy::ping(id)).await;
                        }
                    }
                    // spdystream stops reading at GOAWAY and ends every stream.
                    spdy::GOAWAY => break,
                    _ => {}
                }
            }
        }
    }
    if error_overflow {
        return internal(&format!(
            "error reading from error stream: longer than {buffer} bytes"
        ));
    }
    decode_error_stream(&error_stream)
}

/// What is being read of the client's current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    /// Between messages.
    None,
    /// A message whose channel byte has not come yet.
    Start,
    /// Data for a channel.
    Channel(u8),
    /// v5's CLOSE: the channel named so far, and whether more than one byte came.
    Close(Option<u8>, bool),
}

/// Reads the client's frames: stdin and resize data to their streams (once every stream is
/// answered), pings answered, v5's CLOSE of stdin passed on as the stream's end. When the client
/// ends, stdin ends too (kube closes every channel then). Returns why it ended.
async fn client_to_kubelet<R, W, K>(
    mut client: R,
    client_write: Shared<ws::Writer<W>>,
    kubelet: Shared<K>,
    streams: Streams,
    mut replied: watch::Receiver<bool>,
    buffer: usize,
) -> &'static str
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: AsyncWrite + Unpin,
{
    let mut chunk = vec![0u8; buffer.max(ws::MAX_CONTROL_PAYLOAD)];
    let mut message = Message::None;
    let mut stdin_open = streams.stdin.is_some();
    let reason = 'frames: loop {
        let head = match ws::next_client_head(&mut client, &client_write, IDLE).await {
            Ok(head) => head,
            Err(ended) => break ended,
        };
        if head.is_control() {
            // Whole: a control payload is at most 125 bytes and `chunk` holds at least that.
            let Some(payload) = ws::read_payload(&mut client, &head, &mut 0, &mut chunk).await
            else {
                break "the client ended";
            };
            match head.opcode {
                ws::PING => {
                    let _ = client_write.lock().await.send(ws::PONG, &[payload]).await;
                }
                ws::CLOSE => {
                    let _ = client_write.lock().await.close(ws::NORMAL_CLOSURE).await;
                    break "closed by the client";
                }
                _ => {}
            }
            continue;
        }
        match (head.opcode, message) {
            (ws::CONTINUATION, Message::None)
            | (ws::TEXT | ws::BINARY, Message::Start | Message::Channel(_) | Message::Close(..)) => {
                let _ = client_write.lock().await.close(ws::PROTOCOL_ERROR).await;
                break "a protocol error";
            }
            (ws::CONTINUATION, _) => {}
            _ => message = Message::Start,
        }
        let mut offset = 0u64;
        while offset < head.len {
            let Some(data) = ws::read_payload(&mut client, &head, &mut offset, &mut chunk).await
            else {
                break 'frames "the client ended";
            };
            let mut data: &[u8] = data;
            if message == Message::Start
                && let Some((&channel, rest)) = data.split_first()
            {
                message = if channel == STREAM_CLOSE {
                    Message::Close(None, false)
                } else {
                    Message::Channel(channel)
                };
                data = rest;
            }
            match message {
                Message::Close(target, extra) => {
                    message = match (target, data) {
                        (_, []) => message,
                        (None, [one]) => Message::Close(Some(*one), extra),
                        (_, _) => Message::Close(target.or(data.first().copied()), true),
                    };
                }
                Message::Channel(channel) if !data.is_empty() => {
                    let Some(stream) = streams.stream_of(channel) else {
                        continue;
                    };
                    if channel == STDIN && !stdin_open {
                        continue;
                    }
                    if !until_replied(&mut replied).await {
                        break 'frames "the kubelet ended";
                    }
                    let mut frame = spdy::data_head(stream, false, data.len()).to_vec();
                    frame.extend_from_slice(data);
                    if kubelet.lock().await.write_all(&frame).await.is_err() {
                        break 'frames "the kubelet ended";
                    }
                }
                _ => {}
            }
        }
        if head.fin {
            if let Message::Close(target, extra) = message {
                match target {
                    Some(channel) if !extra && channel <= RESIZE => {
                        if channel == STDIN && stdin_open {
                            stdin_open = false;
                            if !end_stdin(&kubelet, streams, &mut replied).await {
                                break "the kubelet ended";
                            }
                        }
                    }
                    // kube's reader stops at a malformed CLOSE and closes the connection.
                    _ => {
                        let _ = client_write.lock().await.close(ws::NORMAL_CLOSURE).await;
                        break "a malformed close signal";
                    }
                }
            }
            message = Message::None;
        }
    };
    if stdin_open {
        end_stdin(&kubelet, streams, &mut replied).await;
    }
    reason
}

/// Waits until the kubelet has answered every stream; false when it never will.
async fn until_replied(replied: &mut watch::Receiver<bool>) -> bool {
    replied.wait_for(|all| *all).await.is_ok()
}

/// Ends the stdin stream (an empty data frame with FIN), as client-go closes `remoteStdin`.
async fn end_stdin<K: AsyncWrite + Unpin>(
    kubelet: &Shared<K>,
    streams: Streams,
    replied: &mut watch::Receiver<bool>,
) -> bool {
    let Some(stdin) = streams.stdin else {
        return true;
    };
    if !until_replied(replied).await {
        return false;
    }
    kubelet
        .lock()
        .await
        .write_all(&spdy::data_head(stdin, true, 0))
        .await
        .is_ok()
}

/// kube's `apierrors.NewInternalError` as JSON.
fn internal(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// The error stream's content as client-go's `errorDecoderV4` reads it, worded as kube's
/// translator writes the outcome back.
fn decode_error_stream(message: &[u8]) -> Value {
    if message.is_empty() {
        return json!({"metadata": {}, "status": "Success"});
    }
    let status: Value = match serde_json::from_slice(message) {
        Ok(status) => status,
        Err(e) => {
            return internal(&format!(
                "error stream protocol error: {e} in {:?}",
                String::from_utf8_lossy(message)
            ));
        }
    };
    match status["status"].as_str() {
        Some("Success") => json!({"metadata": {}, "status": "Success"}),
        Some("Failure") if status["reason"] == "NonZeroExitCode" => {
            if !status["details"].is_object() {
                return internal("error stream protocol error: details must be set");
            }
            let causes = &status["details"]["causes"];
            let code = causes
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["reason"] == "ExitCode")
                .map(|c| c["message"].as_str().unwrap_or(""));
            match code.map(|text| (text, text.parse::<u8>())) {
                Some((_, Ok(rc))) => json!({
                    "metadata": {},
                    "status": "Failure",
                    "message": format!("command terminated with non-zero exit code: command terminated with exit code {rc}"),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": rc.to_string()}]},
                }),
                Some((text, Err(_))) => internal(&format!(
                    "error stream protocol error: invalid exit code value {text:?}"
                )),
                None => internal("error stream protocol error: no ExitCode cause given"),
            }
        }
        Some("Failure") => internal(status["message"].as_str().unwrap_or("")),
        _ => internal("error stream protocol error: unknown error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::masked;

    #[test]
    fn streams_are_opened_as_client_go_opens_them() {
        let all = |stdin, stdout, stderr, tty| {
            Streams::new(StreamOptions {
                stdin,
                stdout,
                stderr,
                tty,
            })
            .all()
        };
        assert_eq!(
            all(true, true, true, false),
            [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")]
        );
        // A TTY has no stderr stream, and a resize stream.
        assert_eq!(
            all(true, true, true, true),
            [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")]
        );
        assert_eq!(
            all(false, false, true, false),
            [(1, "error"), (3, "stderr")]
        );
    }

    #[test]
    fn the_error_stream_is_worded_as_kubes_translator_words_it() {
        assert_eq!(
            decode_error_stream(b""),
            json!({"metadata": {}, "status": "Success"})
        );
        assert_eq!(
            decode_error_stream(br#"{"metadata":{},"status":"Success"}"#),
            json!({"metadata": {}, "status": "Success"})
        );
        let exit = decode_error_stream(
            br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
        );
        assert_eq!(exit["reason"], "NonZeroExitCode");
        assert_eq!(exit["details"]["causes"][0]["message"], "3");
        assert_eq!(
            exit["message"],
            "command terminated with non-zero exit code: command terminated with exit code 3"
        );
        let failed = decode_error_stream(
            br#"{"status":"Failure","message":"Internal error occurred: no such file","reason":"InternalError","code":500}"#,
        );
        assert_eq!(failed["code"], 500);
        assert_eq!(
            failed["message"],
            "Internal error occurred: Internal error occurred: no such file"
        );
        for (bad, says) in [
            (&br#"{"status":"Failure","reason":"NonZeroExitCode"}"#[..], "details must be set"),
            (
                br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}}"#,
                "invalid exit code value \"300\"",
            ),
            (
                br#"{"status":"Failure","reason":"NonZeroExitCode","details":{}}"#,
                "no ExitCode cause given",
            ),
            (br#"{"status":"Unknown"}"#, "unknown error"),
            (b"not json", "error stream protocol error: "),
        ] {
            let got = decode_error_stream(bad);
            assert_eq!(got["reason"], "InternalError");
            assert!(
                got["message"].as_str().unwrap().contains(says),
                "{got} should say {says}"
            );
        }
    }

    /// A kubelet frame for the tests.
    fn data(stream: u32, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = spdy::data_head(stream, fin, payload.len()).to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn syn_reply(stream: u32) -> Vec<u8> {
        // The kubelet's header block is skipped, whatever it holds.
        let mut out = vec![0x80, 3, 0, 2, 0, 0, 0, 9];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(&[0x78, 0x9c, 0x01, 0x02, 0x03]);
        out
    }

    /// The client's messages reach the kubelet's streams only after every reply; the
    /// kubelet's output reaches the client's channels; its exit status ends the session.
    #[tokio::test]
    async fn a_session_carries_both_ways_and_ends_with_the_exit_code() {
        let streams = Streams::new(StreamOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        });
        let (client_side, client_peer) = tokio::io::duplex(1 << 16);
        let (kubelet_side, mut kubelet_peer) = tokio::io::duplex(1 << 16);
        let (client_read, client_write) = tokio::io::split(client_side);
        let client_write = Arc::new(Mutex::new(ws::Writer::new(client_write)));
        let (kubelet_read, kubelet_write) = tokio::io::split(kubelet_side);
        let kubelet_write = Arc::new(Mutex::new(kubelet_write));
        let (replied_tx, replied_rx) = watch::channel(false);
        let upstream = tokio::spawn(client_to_kubelet(
            client_read,
            Arc::clone(&client_write),
            Arc::clone(&kubelet_write),
            streams,
            replied_rx,
            1024,
        ));
        let (mut peer_read, mut peer_write) = tokio::io::split(client_peer);
        // stdin split over two frames of one message, then v5's CLOSE of stdin, before the
        // kubelet answered: held until it has.
        peer_write
            .write_all(&masked(false, ws::BINARY, &[STDIN, b'h']))
            .await
            .unwrap();
        peer_write
            .write_all(&masked(true, ws::CONTINUATION, b"i\n"))
            .await
            .unwrap();
        peer_write
            .write_all(&masked(true, ws::BINARY, &[STREAM_CLOSE, STDIN]))
            .await
            .unwrap();
        peer_write
            .write_all(&masked(true, ws::PING, b"p"))
            .await
            .unwrap();
        let mut kubelet_script = Vec::new();
        for id in [1, 3, 5, 7] {
            kubelet_script.extend(syn_reply(id));
        }
        kubelet_script.extend(data(5, false, b"out"));
        kubelet_script.extend(data(7, true, b"err"));
        kubelet_script.extend(data(5, true, b""));
        kubelet_script.extend(data(
            1,
            true,
            br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#,
        ));
        let reader = tokio::spawn({
            let client_write = Arc::clone(&client_write);
            let kubelet_write = Arc::clone(&kubelet_write);
            async move {
                kubelet_to_client(
                    kubelet_read,
                    &client_write,
                    &kubelet_write,
                    streams,
                    &replied_tx,
                    1024,
                )
                .await
            }
        });
        // Nothing reaches the kubelet before its replies.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut early = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(50), kubelet_peer.read(&mut early))
                .await
                .is_err()
        );
        kubelet_peer.write_all(&kubelet_script).await.unwrap();
        let status = reader.await.unwrap();
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "7");
        finish(&client_write, &status).await;
        // The kubelet got stdin's bytes in order, then its end.
        let mut want = data(3, false, b"h");
        want.extend(data(3, false, b"i\n"));
        want.extend(data(3, true, b""));
        let mut got = vec![0u8; want.len()];
        kubelet_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, want);
        // The client got: a pong, stdout and stderr on their channels, the status, a close.
        let mut seen = Vec::new();
        peer_read.read_to_end(&mut seen).await.unwrap();
        let text = String::from_utf8_lossy(&seen);
        assert!(seen.windows(3).any(|w| w == [0x8a, 1, b'p']), "{seen:?}");
        assert!(
            seen.windows(6)
                .any(|w| w == [0x82, 4, STDOUT, b'o', b'u', b't']),
            "{seen:?}"
        );
        assert!(
            seen.windows(6)
                .any(|w| w == [0x82, 4, STDERR, b'e', b'r', b'r']),
            "{seen:?}"
        );
        assert!(
            text.contains("command terminated with exit code 7"),
            "{text}"
        );
        assert!(seen.ends_with(&[0x88, 2, 0x03, 0xe8]), "{seen:?}");
        upstream.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_kubelet_is_pinged_every_five_seconds_with_odd_ids() {
        let (writer, mut peer) = tokio::io::duplex(1024);
        let started = tokio::time::Instant::now();
        let pinger = tokio::spawn(ping(Arc::new(Mutex::new(writer))));
        let mut frame = [0u8; 12];
        peer.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame.to_vec(), spdy::ping(1));
        assert_eq!(started.elapsed(), PING_PERIOD);
        peer.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame.to_vec(), spdy::ping(3));
        assert_eq!(started.elapsed(), 2 * PING_PERIOD);
        pinger.abort();
    }

    #[tokio::test]
    async fn a_kubelet_that_ends_without_a_status_is_a_success_and_long_errors_are_refused() {
        let streams = Streams::new(StreamOptions {
            stdout: true,
            ..StreamOptions::default()
        });
        let (client_side, _client_peer) = tokio::io::duplex(1 << 16);
        let client_write = Arc::new(Mutex::new(ws::Writer::new(client_side)));
        let (kubelet_side, kubelet_peer) = tokio::io::duplex(1 << 16);
        let kubelet_write = Arc::new(Mutex::new(tokio::io::sink()));
        let (replied_tx, _rx) = watch::channel(false);
        drop(kubelet_peer);
        let status = kubelet_to_client(
            kubelet_side,
            &client_write,
            &kubelet_write,
            streams,
            &replied_tx,
            1024,
        )
        .await;
        assert_eq!(status["status"], "Success");
        let (kubelet_side, mut kubelet_peer) = tokio::io::duplex(1 << 16);
        kubelet_peer
            .write_all(&data(1, true, &[b'x'; 2000]))
            .await
            .unwrap();
        drop(kubelet_peer);
        let status = kubelet_to_client(
            kubelet_side,
            &client_write,
            &kubelet_write,
            streams,
            &replied_tx,
            1024,
        )
        .await;
        assert_eq!(status["reason"], "InternalError");
    }
}
