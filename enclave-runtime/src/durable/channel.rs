//! The enclave's end of the storage channel: connects to the proxy's store (`unix:PATH` in
//! development, `vsock:CID:PORT` in production) and exchanges `nautilus_wire::storage` frames.

use std::io;

use nautilus_wire::storage::{self, Answer, ErrorKind, FrameError, Request};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadHalf, WriteHalf};

use crate::log_sink::SinkAddr;

/// A byte stream to the store.
pub(crate) trait StoreIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> StoreIo for T {}

/// Opens a stream to the store at `addr`.
pub(crate) async fn connect(addr: &SinkAddr) -> io::Result<Box<dyn StoreIo>> {
    Ok(match addr {
        SinkAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        SinkAddr::Vsock { cid, port } => Box::new(
            tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(*cid, *port)).await?,
        ),
    })
}

/// One connection, used request by request (start-up) before it is split for the log's task.
pub(crate) struct Conn {
    pub(crate) reader: ReadHalf<Box<dyn StoreIo>>,
    pub(crate) writer: WriteHalf<Box<dyn StoreIo>>,
    pub(crate) next_id: u64,
}

impl Conn {
    /// Wraps a connected stream.
    pub(crate) fn new(stream: Box<dyn StoreIo>) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            reader,
            writer,
            next_id: 1,
        }
    }

    /// A fresh request id.
    pub(crate) fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends `request`; returns its id.
    pub(crate) async fn send(&mut self, request: &Request) -> io::Result<u64> {
        let id = self.id();
        self.writer.write_all(&request.encode(id)).await?;
        self.writer.flush().await?;
        Ok(id)
    }

    /// The next answer (an error when the store closed the stream).
    pub(crate) async fn recv(&mut self) -> Result<(u64, Answer), FrameError> {
        storage::read_answer(&mut self.reader)
            .await?
            .ok_or_else(|| FrameError::Io(io::Error::from(io::ErrorKind::UnexpectedEof)))
    }

    /// Sends `request` and waits for its single answer.
    pub(crate) async fn call(&mut self, request: &Request) -> Result<Answer, FrameError> {
        let id = self.send(request).await?;
        loop {
            let (got, answer) = self.recv().await?;
            if got == id {
                return Ok(answer);
            }
        }
    }

    /// The named blob, `None` when the host has none.
    pub(crate) async fn get_blob(&mut self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.call(&Request::GetBlob { name: name.into() }).await? {
            Answer::Bytes(bytes) => Ok(Some(bytes)),
            Answer::Error {
                kind: ErrorKind::NotFound,
                ..
            } => Ok(None),
            other => anyhow::bail!("cannot read blob {name}: {other:?}"),
        }
    }

    /// Writes the named blob (the host syncs it before answering).
    pub(crate) async fn put_blob(&mut self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self
            .call(&Request::PutBlob {
                name: name.into(),
                bytes,
            })
            .await?
        {
            Answer::Done => Ok(()),
            other => anyhow::bail!("cannot store blob {name}: {other:?}"),
        }
    }
}
