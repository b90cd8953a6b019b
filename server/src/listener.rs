//! How both listeners (the API and the embedded store) take connections: at most
//! `max_connections` at once (more wait in the kernel's backlog), request headers within
//! `header_timeout`, and a connection on which no byte moves for `idle_timeout` closed, whether
//! it waits for a request, sends a body too slowly, or stopped reading the answer.

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// What every connection is held to. `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once (default 1024).
    pub max_connections: usize,
    /// Time to send a request's headers (default 30 s, hyper's own default).
    pub header_timeout: Duration,
    /// Time without a byte read or written before the connection is closed (default 60 s:
    /// above any pause of a working client, below what an idle-connection flood can hold).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Takes connections from a listener within the limits.
pub struct Acceptor {
    limits: ConnectionLimits,
    permits: Arc<Semaphore>,
}

/// An accepted connection, holding its place among `max_connections` until it is dropped.
pub struct Connection {
    socket: TcpStream,
    limits: ConnectionLimits,
    _permit: OwnedSemaphorePermit,
}

impl Acceptor {
    /// An acceptor for `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        Acceptor { limits, permits: Arc::new(Semaphore::new(limits.max_connections)) }
    }

    /// The next connection, once fewer than `max_connections` are open.
    pub async fn accept(&self, listener: &TcpListener) -> io::Result<Connection> {
        let permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (socket, _) = listener.accept().await?;
        Ok(Connection { socket, limits: self.limits, _permit: permit })
    }
}

impl Connection {
    /// Serves HTTP/1.1 requests on the connection with `service` until it closes.
    pub async fn serve<S, B>(self, service: S)
    where
        S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let _ = self.socket.set_nodelay(true);
        let io = TokioIo::new(IdleTimeout::new(self.socket, self.limits.idle_timeout));
        let mut builder = ConnBuilder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.limits.header_timeout);
        let _ = builder.serve_connection(io, service).await;
    }
}

/// A socket that fails with `TimedOut` once no byte has moved either way for `idle`.
struct IdleTimeout {
    socket: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(socket: TcpStream, idle: Duration) -> Self {
        IdleTimeout { socket, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }

    /// After an I/O poll: progress moves the deadline; waiting checks it.
    fn after<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.deadline.as_mut().reset(Instant::now() + self.idle);
                Poll::Ready(result)
            }
            Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.socket).poll_read(cx, buf);
        this.after(polled, cx)
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.socket).poll_write(cx, buf);
        this.after(polled, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}
