//! The storage channel between the enclave and the host proxy (its own vsock port in
//! production, a Unix socket in development). The enclave asks, the host stores: appends of
//! sealed log records at positions the enclave chose, acknowledged only after `fdatasync`
//! (many appends, one sync, one acknowledgement: group commit); reads of the log from a
//! position, streamed; truncation after a position (a raft leader's overwrite) and before one
//! (after a snapshot); snapshot chunks and their manifest; small named blobs (the KMS
//! `CiphertextBlob`); and the instance's AWS credentials. Everything the host holds is sealed by
//! the enclave: the host makes no decision about state and reads nothing in clear.
//!
//! A frame is `len: u32` (big-endian, the bytes after it) `| kind: u8 | id: u64 | body`; every
//! integer is big-endian, byte strings are `u32` length + bytes, lists `u32` count + items. A
//! frame longer than [`MAX_FRAME`], or a list or string past its bound, is refused before it is
//! read into memory. An answer carries the id of its request, except [`Answer::Durable`], which
//! covers every append up to a position (so one sync answers many appends).
//!
//! Ordering: the host handles requests in the order they arrive. After an append fails (disk
//! full, `EIO` on sync), the host is *fenced*: it refuses every later append with
//! [`ErrorKind::Fenced`] until a [`Request::TruncateAfter`] says where the enclave's log ends,
//! so appends the enclave sent before it learned of the failure can never land after a gap.

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Largest frame after its length prefix: a batch of appends or a snapshot chunk fits.
pub const MAX_FRAME: usize = 8 << 20;
/// Largest single record, chunk, manifest or named blob.
pub const MAX_ITEM: usize = 4 << 20;
/// Most records in one append batch or one read answer.
pub const MAX_RECORDS: usize = 8192;
/// Most snapshot ids in one listing.
pub const MAX_SNAPSHOTS: usize = 1024;
/// Longest name (a blob's, a segment file's).
pub const MAX_NAME: usize = 128;

/// What the enclave asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Appends `records` at positions `first`, `first + 1`, ...; `first` must be the host's
    /// next position. Answered by [`Answer::Durable`] once synced.
    Append {
        /// Position of the first record.
        first: u64,
        /// Sealed records.
        records: Vec<Vec<u8>>,
    },
    /// Streams the log from `from` (inclusive): [`Answer::Records`] frames, then
    /// [`Answer::LogEnd`].
    ReadLog {
        /// First position wanted.
        from: u64,
    },
    /// Drops every record after `position` (0: all of them) and lifts a fence.
    TruncateAfter {
        /// Last position kept.
        position: u64,
    },
    /// Drops whole segments that end before `position` (a snapshot covers them).
    TruncateBefore {
        /// First position that must stay readable.
        position: u64,
    },
    /// Writes chunk `index` of snapshot `snapshot` (durably: temp file, sync, rename).
    PutChunk {
        /// Snapshot id.
        snapshot: u64,
        /// Chunk number, from 0.
        index: u32,
        /// Sealed chunk.
        bytes: Vec<u8>,
    },
    /// Writes the manifest, which makes the snapshot complete.
    CommitSnapshot {
        /// Snapshot id.
        snapshot: u64,
        /// Sealed manifest.
        manifest: Vec<u8>,
    },
    /// Lists complete snapshots (those with a manifest), oldest first.
    ListSnapshots,
    /// Reads a snapshot's manifest.
    GetManifest {
        /// Snapshot id.
        snapshot: u64,
    },
    /// Reads one chunk.
    GetChunk {
        /// Snapshot id.
        snapshot: u64,
        /// Chunk number.
        index: u32,
    },
    /// Deletes a snapshot (complete or not).
    DeleteSnapshot {
        /// Snapshot id.
        snapshot: u64,
    },
    /// Reads a named blob ([`ErrorKind::NotFound`] if absent).
    GetBlob {
        /// `[a-z0-9-]` name.
        name: String,
    },
    /// Writes a named blob durably.
    PutBlob {
        /// `[a-z0-9-]` name.
        name: String,
        /// Contents (never a secret in clear).
        bytes: Vec<u8>,
    },
    /// The instance role's AWS credentials (not secret from the host, which holds them), as
    /// JSON `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`.
    AwsCredentials,
}

/// Why the host refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No space left on the device (`ENOSPC`, `EDQUOT`).
    DiskFull,
    /// Any other I/O failure (`EIO` on sync, a short write).
    Io,
    /// An append did not start at the host's next position.
    OutOfOrder,
    /// An earlier append failed; nothing is appended until a `TruncateAfter`.
    Fenced,
    /// No such snapshot, chunk or blob.
    NotFound,
    /// The request broke a bound or named something malformed.
    BadRequest,
    /// The host cannot answer this request (no credentials configured).
    Unavailable,
}

impl ErrorKind {
    fn code(self) -> u8 {
        match self {
            Self::DiskFull => 1,
            Self::Io => 2,
            Self::OutOfOrder => 3,
            Self::Fenced => 4,
            Self::NotFound => 5,
            Self::BadRequest => 6,
            Self::Unavailable => 7,
        }
    }

    fn from_code(code: u8) -> Result<Self, FrameError> {
        Ok(match code {
            1 => Self::DiskFull,
            2 => Self::Io,
            3 => Self::OutOfOrder,
            4 => Self::Fenced,
            5 => Self::NotFound,
            6 => Self::BadRequest,
            7 => Self::Unavailable,
            _ => return Err(FrameError::Malformed("unknown error kind")),
        })
    }

    /// The I/O error kind this stands for, for callers that classify I/O errors.
    pub fn of_io(error: &io::Error) -> Self {
        // ENOSPC (28) and EDQUOT (122) on Linux.
        match error.raw_os_error() {
            Some(28 | 122) => Self::DiskFull,
            _ if error.kind() == io::ErrorKind::StorageFull => Self::DiskFull,
            _ => Self::Io,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DiskFull => "disk full",
            Self::Io => "I/O error",
            Self::OutOfOrder => "out of order",
            Self::Fenced => "fenced after a failed append",
            Self::NotFound => "not found",
            Self::BadRequest => "bad request",
            Self::Unavailable => "unavailable",
        })
    }
}

/// A log that ends inside a record: the last write was torn (a crash mid-append), or bytes
/// were cut. The enclave decides what that means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// Segment file name.
    pub segment: String,
    /// Byte offset of the incomplete record in it.
    pub offset: u64,
    /// Bytes present from that offset to the end of the file.
    pub bytes: u64,
}

/// What the host answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every append up to `through` is on disk (synced).
    Durable {
        /// Highest durable position.
        through: u64,
    },
    /// The request was carried out (and synced where it writes).
    Done,
    /// A manifest, chunk, blob or credentials.
    Bytes(Vec<u8>),
    /// Records read from one segment file, in position order.
    Records {
        /// The segment file they come from (for error messages).
        segment: String,
        /// `(position, sealed record)` pairs.
        records: Vec<(u64, Vec<u8>)>,
    },
    /// The end of a log read: the positions the host holds, and a torn tail if the last
    /// segment ends inside a record.
    LogEnd {
        /// First position held (0 when the log is empty).
        first: u64,
        /// Last complete position held (0 when empty).
        last: u64,
        /// An incomplete record at the end of the last segment.
        torn: Option<Torn>,
    },
    /// Complete snapshots, oldest first.
    Snapshots(Vec<u64>),
    /// The request failed and changed nothing the enclave relies on.
    Error {
        /// Category.
        kind: ErrorKind,
        /// The host's words (for logs; never trusted for decisions).
        message: String,
    },
}

/// A frame that cannot be read.
#[derive(Debug)]
pub enum FrameError {
    /// The stream failed or ended inside a frame.
    Io(io::Error),
    /// The frame's length prefix is over [`MAX_FRAME`].
    TooLarge(usize),
    /// The bytes do not decode.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "storage channel: {e}"),
            Self::TooLarge(n) => write!(f, "storage frame of {n} bytes is over {MAX_FRAME}"),
            Self::Malformed(why) => write!(f, "malformed storage frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

mod kind {
    pub(super) const APPEND: u8 = 1;
    pub(super) const READ_LOG: u8 = 2;
    pub(super) const TRUNCATE_AFTER: u8 = 3;
    pub(super) const TRUNCATE_BEFORE: u8 = 4;
    pub(super) const PUT_CHUNK: u8 = 5;
    pub(super) const COMMIT_SNAPSHOT: u8 = 6;
    pub(super) const LIST_SNAPSHOTS: u8 = 7;
    pub(super) const GET_MANIFEST: u8 = 8;
    pub(super) const GET_CHUNK: u8 = 9;
    pub(super) const DELETE_SNAPSHOT: u8 = 10;
    pub(super) const GET_BLOB: u8 = 11;
    pub(super) const PUT_BLOB: u8 = 12;
    pub(super) const AWS_CREDENTIALS: u8 = 13;

    pub(super) const DURABLE: u8 = 128;
    pub(super) const DONE: u8 = 129;
    pub(super) const BYTES: u8 = 130;
    pub(super) const RECORDS: u8 = 131;
    pub(super) const LOG_END: u8 = 132;
    pub(super) const SNAPSHOTS: u8 = 133;
    pub(super) const ERROR: u8 = 134;
}

/// Builds one frame.
struct Out(Vec<u8>);

impl Out {
    fn new(kind: u8, id: u64) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 4]);
        buf.push(kind);
        buf.extend_from_slice(&id.to_be_bytes());
        Out(buf)
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn finish(mut self) -> Vec<u8> {
        let body = self.0.len().saturating_sub(4);
        let prefix = u32::try_from(body).unwrap_or(u32::MAX).to_be_bytes();
        if let Some(head) = self.0.get_mut(..4) {
            head.copy_from_slice(&prefix);
        }
        self.0
    }
}

/// Reads one frame's body.
struct In<'a>(&'a [u8]);

impl In<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
    fn count(&mut self, max: usize) -> Result<usize, FrameError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(FrameError::Malformed("list over its bound"));
        }
        Ok(n)
    }
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, FrameError> {
        let n = self.count(max)?;
        Ok(self.take(n)?.to_vec())
    }
    fn name(&mut self) -> Result<String, FrameError> {
        String::from_utf8(self.bytes(MAX_NAME)?).map_err(|_| FrameError::Malformed("name"))
    }
    fn end(&self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed("trailing bytes"))
        }
    }
}

impl Request {
    /// The frame for this request with id `id`.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let mut out;
        match self {
            Self::Append { first, records } => {
                out = Out::new(kind::APPEND, id);
                out.u64(*first);
                out.len(records.len());
                for r in records {
                    out.bytes(r);
                }
            }
            Self::ReadLog { from } => {
                out = Out::new(kind::READ_LOG, id);
                out.u64(*from);
            }
            Self::TruncateAfter { position } => {
                out = Out::new(kind::TRUNCATE_AFTER, id);
                out.u64(*position);
            }
            Self::TruncateBefore { position } => {
                out = Out::new(kind::TRUNCATE_BEFORE, id);
                out.u64(*position);
            }
            Self::PutChunk {
                snapshot,
                index,
                bytes,
            } => {
                out = Out::new(kind::PUT_CHUNK, id);
                out.u64(*snapshot);
                out.u32(*index);
                out.bytes(bytes);
            }
            Self::CommitSnapshot { snapshot, manifest } => {
                out = Out::new(kind::COMMIT_SNAPSHOT, id);
                out.u64(*snapshot);
                out.bytes(manifest);
            }
            Self::ListSnapshots => out = Out::new(kind::LIST_SNAPSHOTS, id),
            Self::GetManifest { snapshot } => {
                out = Out::new(kind::GET_MANIFEST, id);
                out.u64(*snapshot);
            }
            Self::GetChunk { snapshot, index } => {
                out = Out::new(kind::GET_CHUNK, id);
                out.u64(*snapshot);
                out.u32(*index);
            }
            Self::DeleteSnapshot { snapshot } => {
                out = Out::new(kind::DELETE_SNAPSHOT, id);
                out.u64(*snapshot);
            }
            Self::GetBlob { name } => {
                out = Out::new(kind::GET_BLOB, id);
                out.bytes(name.as_bytes());
            }
            Self::PutBlob { name, bytes } => {
                out = Out::new(kind::PUT_BLOB, id);
                out.bytes(name.as_bytes());
                out.bytes(bytes);
            }
            Self::AwsCredentials => out = Out::new(kind::AWS_CREDENTIALS, id),
        }
        out.finish()
    }

    fn decode(kind: u8, body: &[u8]) -> Result<Self, FrameError> {
        let mut r = In(body);
        let request = match kind {
            kind::APPEND => {
                let first = r.u64()?;
                let n = r.count(MAX_RECORDS)?;
                let mut records = Vec::with_capacity(n);
                for _ in 0..n {
                    records.push(r.bytes(MAX_ITEM)?);
                }
                Self::Append { first, records }
            }
            kind::READ_LOG => Self::ReadLog { from: r.u64()? },
            kind::TRUNCATE_AFTER => Self::TruncateAfter { position: r.u64()? },
            kind::TRUNCATE_BEFORE => Self::TruncateBefore { position: r.u64()? },
            kind::PUT_CHUNK => Self::PutChunk {
                snapshot: r.u64()?,
                index: r.u32()?,
                bytes: r.bytes(MAX_ITEM)?,
            },
            kind::COMMIT_SNAPSHOT => Self::CommitSnapshot {
                snapshot: r.u64()?,
                manifest: r.bytes(MAX_ITEM)?,
            },
            kind::LIST_SNAPSHOTS => Self::ListSnapshots,
            kind::GET_MANIFEST => Self::GetManifest { snapshot: r.u64()? },
            kind::GET_CHUNK => Self::GetChunk {
                snapshot: r.u64()?,
                index: r.u32()?,
            },
            kind::DELETE_SNAPSHOT => Self::DeleteSnapshot { snapshot: r.u64()? },
            kind::GET_BLOB => Self::GetBlob { name: r.name()? },
            kind::PUT_BLOB => Self::PutBlob {
                name: r.name()?,
                bytes: r.bytes(MAX_ITEM)?,
            },
            kind::AWS_CREDENTIALS => Self::AwsCredentials,
            _ => return Err(FrameError::Malformed("unknown request kind")),
        };
        r.end()?;
        Ok(request)
    }
}

impl Answer {
    /// The frame for this answer to request `id`.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let mut out;
        match self {
            Self::Durable { through } => {
                out = Out::new(kind::DURABLE, id);
                out.u64(*through);
            }
            Self::Done => out = Out::new(kind::DONE, id),
            Self::Bytes(bytes) => {
                out = Out::new(kind::BYTES, id);
                out.bytes(bytes);
            }
            Self::Records { segment, records } => {
                out = Out::new(kind::RECORDS, id);
                out.bytes(segment.as_bytes());
                out.len(records.len());
                for (position, record) in records {
                    out.u64(*position);
                    out.bytes(record);
                }
            }
            Self::LogEnd { first, last, torn } => {
                out = Out::new(kind::LOG_END, id);
                out.u64(*first);
                out.u64(*last);
                match torn {
                    None => out.0.push(0),
                    Some(t) => {
                        out.0.push(1);
                        out.bytes(t.segment.as_bytes());
                        out.u64(t.offset);
                        out.u64(t.bytes);
                    }
                }
            }
            Self::Snapshots(ids) => {
                out = Out::new(kind::SNAPSHOTS, id);
                out.len(ids.len());
                for s in ids {
                    out.u64(*s);
                }
            }
            Self::Error { kind: k, message } => {
                out = Out::new(kind::ERROR, id);
                out.0.push(k.code());
                let message = message.as_bytes();
                out.bytes(message.get(..message.len().min(1024)).unwrap_or_default());
            }
        }
        out.finish()
    }

    fn decode(kind: u8, body: &[u8]) -> Result<Self, FrameError> {
        let mut r = In(body);
        let answer = match kind {
            kind::DURABLE => Self::Durable { through: r.u64()? },
            kind::DONE => Self::Done,
            kind::BYTES => Self::Bytes(r.bytes(MAX_ITEM)?),
            kind::RECORDS => {
                let segment = r.name()?;
                let n = r.count(MAX_RECORDS)?;
                let mut records = Vec::with_capacity(n);
                for _ in 0..n {
                    let position = r.u64()?;
                    records.push((position, r.bytes(MAX_ITEM)?));
                }
                Self::Records { segment, records }
            }
            kind::LOG_END => {
                let first = r.u64()?;
                let last = r.u64()?;
                let torn = match r.u8()? {
                    0 => None,
                    1 => Some(Torn {
                        segment: r.name()?,
                        offset: r.u64()?,
                        bytes: r.u64()?,
                    }),
                    _ => return Err(FrameError::Malformed("torn flag")),
                };
                Self::LogEnd { first, last, torn }
            }
            kind::SNAPSHOTS => {
                let n = r.count(MAX_SNAPSHOTS)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(r.u64()?);
                }
                Self::Snapshots(ids)
            }
            kind::ERROR => Self::Error {
                kind: ErrorKind::from_code(r.u8()?)?,
                message: String::from_utf8_lossy(&r.bytes(1024)?).into_owned(),
            },
            _ => return Err(FrameError::Malformed("unknown answer kind")),
        };
        r.end()?;
        Ok(answer)
    }
}

/// Reads one frame: `None` at a clean end of stream (between frames).
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<(u8, u64, Vec<u8>)>, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if len < 9 {
        return Err(FrameError::Malformed("frame shorter than its header"));
    }
    let mut frame = vec![0u8; len];
    reader.read_exact(&mut frame).await?;
    let mut r = In(&frame);
    let kind = r.u8()?;
    let id = r.u64()?;
    let body = frame.get(9..).unwrap_or_default().to_vec();
    Ok(Some((kind, id, body)))
}

/// Reads the next request and its id (`None` when the enclave closed the stream).
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<(u64, Request)>, FrameError> {
    match read_frame(reader).await? {
        None => Ok(None),
        Some((kind, id, body)) => Ok(Some((id, Request::decode(kind, &body)?))),
    }
}

/// Reads the next answer and the id of its request (`None` when the host closed the stream).
pub async fn read_answer<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<(u64, Answer)>, FrameError> {
    match read_frame(reader).await? {
        None => Ok(None),
        Some((kind, id, body)) => Ok(Some((id, Answer::decode(kind, &body)?))),
    }
}

/// Writes an encoded frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, frame: &[u8]) -> io::Result<()> {
    writer.write_all(frame).await
}

/// Whether `name` is a blob name the host accepts (`[a-z0-9-]`, 1..=64 bytes): it becomes a
/// file name, so nothing else may pass.
pub fn valid_blob_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<Request> {
        vec![
            Request::Append {
                first: 7,
                records: vec![vec![1, 2, 3], vec![], vec![9; 100]],
            },
            Request::ReadLog { from: 1 },
            Request::TruncateAfter { position: 0 },
            Request::TruncateBefore { position: u64::MAX },
            Request::PutChunk {
                snapshot: 3,
                index: 2,
                bytes: vec![5; 10],
            },
            Request::CommitSnapshot {
                snapshot: 3,
                manifest: vec![6; 3],
            },
            Request::ListSnapshots,
            Request::GetManifest { snapshot: 3 },
            Request::GetChunk {
                snapshot: 3,
                index: 9,
            },
            Request::DeleteSnapshot { snapshot: 4 },
            Request::GetBlob {
                name: "cluster-key".into(),
            },
            Request::PutBlob {
                name: "cluster-key".into(),
                bytes: vec![1],
            },
            Request::AwsCredentials,
        ]
    }

    fn answers() -> Vec<Answer> {
        vec![
            Answer::Durable { through: 42 },
            Answer::Done,
            Answer::Bytes(vec![1, 2]),
            Answer::Records {
                segment: "00000000000000000001.wal".into(),
                records: vec![(1, vec![1]), (2, vec![2, 2])],
            },
            Answer::LogEnd {
                first: 1,
                last: 2,
                torn: Some(Torn {
                    segment: "s".into(),
                    offset: 10,
                    bytes: 3,
                }),
            },
            Answer::LogEnd {
                first: 0,
                last: 0,
                torn: None,
            },
            Answer::Snapshots(vec![1, 5]),
            Answer::Error {
                kind: ErrorKind::DiskFull,
                message: "no space".into(),
            },
        ]
    }

    #[tokio::test]
    async fn every_message_round_trips() {
        for (id, request) in requests().into_iter().enumerate() {
            let frame = request.encode(id as u64);
            let mut reader = frame.as_slice();
            let (got_id, got) = read_request(&mut reader).await.unwrap().unwrap();
            assert_eq!((got_id, &got), (id as u64, &request));
            assert!(read_request(&mut reader).await.unwrap().is_none());
        }
        for (id, answer) in answers().into_iter().enumerate() {
            let frame = answer.encode(id as u64);
            let (got_id, got) = read_answer(&mut frame.as_slice()).await.unwrap().unwrap();
            assert_eq!((got_id, got), (id as u64, answer));
        }
    }

    #[tokio::test]
    async fn bounds_are_checked_before_reading() {
        // A length prefix over the bound is refused without allocating it.
        let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(&[kind::APPEND; 16]);
        assert!(matches!(
            read_request(&mut huge.as_slice()).await,
            Err(FrameError::TooLarge(_))
        ));
        // A record count over MAX_RECORDS, a byte string over MAX_ITEM.
        let mut out = Out::new(kind::APPEND, 1);
        out.u64(1);
        out.u32(MAX_RECORDS as u32 + 1);
        let frame = out.finish();
        assert!(matches!(
            read_request(&mut frame.as_slice()).await,
            Err(FrameError::Malformed(_))
        ));
        let mut out = Out::new(kind::PUT_BLOB, 1);
        out.bytes(b"x");
        out.u32(MAX_ITEM as u32 + 1);
        let frame = out.finish();
        assert!(matches!(
            read_request(&mut frame.as_slice()).await,
            Err(FrameError::Malformed(_))
        ));
        // Truncated inside a frame, trailing bytes, unknown kinds.
        let frame = Request::ReadLog { from: 1 }.encode(1);
        let cut = frame.get(..frame.len() - 1).unwrap();
        assert!(matches!(
            read_request(&mut &cut[..]).await,
            Err(FrameError::Io(_))
        ));
        let mut out = Out::new(kind::LIST_SNAPSHOTS, 1);
        out.u32(0);
        assert!(matches!(
            read_request(&mut out.finish().as_slice()).await,
            Err(FrameError::Malformed("trailing bytes"))
        ));
        let frame = Out::new(99, 1).finish();
        assert!(read_request(&mut frame.as_slice()).await.is_err());
        assert!(read_answer(&mut frame.as_slice()).await.is_err());
    }

    #[test]
    fn blob_names_are_plain_file_names() {
        for good in ["cluster-key", "a", "x9"] {
            assert!(valid_blob_name(good), "{good}");
        }
        for bad in ["", "../x", "A", "a/b", "a.b", &"a".repeat(65)] {
            assert!(!valid_blob_name(bad), "{bad}");
        }
    }
}
