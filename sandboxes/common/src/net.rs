//! A TCP stream, and an axum listener handing them out, whose connections can be killed from a
//! request handler: once killed, every read and write fails, hyper drops the connection, and
//! `SO_LINGER 0` turns the close into a reset. That is how a sandbox answers a request with no
//! HTTP response at all (a connection reset, or a response that never comes after a committed
//! write).
//!
//! The sandboxes serving with axum use [`KillableListener`] and extract [`Conn`] in handlers
//! (feature `axum`); the GP sandbox runs its own hyper accept loop and wraps each accepted socket
//! with [`KillableStream::new`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[cfg(feature = "axum")]
pub use listener::{Conn, KillableListener, serve};

/// A TCP stream that fails every operation once killed (and resets on close).
pub struct KillableStream {
    /// The socket.
    inner: TcpStream,
    /// Shared with the connection's handler.
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    /// Wraps a stream; storing `true` in the returned flag kills it.
    pub fn new(inner: TcpStream) -> (KillableStream, Arc<AtomicBool>) {
        let kill = Arc::new(AtomicBool::new(false));
        (KillableStream { inner, kill: kill.clone() }, kill)
    }

    fn killed(&self) -> bool {
        if self.kill.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
            true
        } else {
            false
        }
    }
}

fn reset() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionReset)
}

impl AsyncRead for KillableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The axum side: a listener whose connection info carries the kill switch.
#[cfg(feature = "axum")]
mod listener {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::extract::connect_info::Connected;
    use axum::serve::IncomingStream;
    use tokio::net::TcpListener;

    use super::KillableStream;

    /// The handler's view of its connection (extracted with `ConnectInfo<Conn>`).
    #[derive(Clone, Debug)]
    pub struct Conn {
        /// The client's address.
        pub remote: SocketAddr,
        /// Set to kill the connection.
        kill: Arc<AtomicBool>,
    }

    impl Conn {
        /// Makes the connection fail instead of sending anything more.
        pub fn kill(&self) {
            self.kill.store(true, Ordering::SeqCst);
        }
    }

    /// Accepts connections that carry a kill switch.
    pub struct KillableListener(pub TcpListener);

    impl axum::serve::Listener for KillableListener {
        type Io = KillableStream;
        type Addr = Conn;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                match self.0.accept().await {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        let (stream, kill) = KillableStream::new(stream);
                        return (stream, Conn { remote, kill });
                    }
                    // Out of file descriptors and the like: wait a little, as axum's listener does.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        }

        fn local_addr(&self) -> io::Result<Self::Addr> {
            Ok(Conn { remote: self.0.local_addr()?, kill: Arc::new(AtomicBool::new(false)) })
        }
    }

    impl Connected<IncomingStream<'_, KillableListener>> for Conn {
        fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
            stream.remote_addr().clone()
        }
    }

    /// Serves `app` on `listener` (with killable connections) in a background task until
    /// `stopped` turns true. `name` says which sandbox failed, when one does.
    pub fn serve(
        listener: TcpListener,
        app: axum::Router,
        mut stopped: tokio::sync::watch::Receiver<bool>,
        name: &'static str,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let make = app.into_make_service_with_connect_info::<Conn>();
            let shutdown = async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            if let Err(error) = axum::serve(KillableListener(listener), make).with_graceful_shutdown(shutdown).await {
                tracing::error!(%error, "{name} sandbox server failed");
            }
        })
    }
}
