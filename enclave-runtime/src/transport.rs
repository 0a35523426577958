//! Where streams from the host proxy come from: one listener type over a Unix socket
//! (development, and every test here) or vsock (production; no loopback CID on dev machines).

use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::cli::ListenAddr;

/// A byte stream from the host proxy.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Accepts streams from the host proxy.
pub(crate) enum Listener {
    /// Development listener.
    Unix(tokio::net::UnixListener),
    /// Production listener.
    Vsock(tokio_vsock::VsockListener),
}

impl Listener {
    /// Binds `addr`, replacing a stale Unix socket file.
    pub(crate) fn bind(addr: &ListenAddr) -> anyhow::Result<Self> {
        match addr {
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
                    anyhow::anyhow!("cannot listen on unix:{}: {e}", path.display())
                })?;
                Ok(Self::Unix(listener))
            }
            ListenAddr::Vsock(port) => {
                let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, *port);
                let listener = tokio_vsock::VsockListener::bind(addr)
                    .map_err(|e| anyhow::anyhow!("cannot listen on vsock:{port}: {e}"))?;
                Ok(Self::Vsock(listener))
            }
        }
    }

    /// The next stream.
    pub(crate) async fn accept(&self) -> std::io::Result<Box<dyn Stream>> {
        match self {
            Self::Unix(l) => l
                .accept()
                .await
                .map(|(s, _)| Box::new(s) as Box<dyn Stream>),
            Self::Vsock(l) => l
                .accept()
                .await
                .map(|(s, _)| Box::new(s) as Box<dyn Stream>),
        }
    }
}

fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "unix:{} is in use by another running enclave",
                    path.display()
                );
            }
            std::fs::remove_file(path)?;
            Ok(())
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(_) => Ok(()),
    }
}
