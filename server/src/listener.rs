//! How both listeners (the API and the embedded store) take connections: at most
//! `max_connections` at once (more wait in the kernel's backlog), request headers within
//! `header_timeout`, and a connection on which no byte moves for `idle_timeout` closed, whether
//! it waits for a request, sends a body too slowly, or stopped reading the answer. A request the
//! server is still working on (a completion assembling a large object) is not idleness.

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
        let working = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(IdleTimeout::new(self.socket, self.limits.idle_timeout, working.clone()));
        let mut builder = ConnBuilder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.limits.header_timeout);
        let _ = builder.serve_connection(io, Counted { service, working }).await;
    }
}

/// A service that counts, in `working`, the requests it has not answered yet.
struct Counted<S> {
    service: S,
    working: Arc<AtomicUsize>,
}

impl<S, Req> hyper::service::Service<Req> for Counted<S>
where
    S: hyper::service::Service<Req>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: Req) -> Self::Future {
        let answered = Answered::new(self.working.clone());
        let future = self.service.call(req);
        Box::pin(async move {
            let result = future.await;
            drop(answered);
            result
        })
    }
}

/// One request being worked on, until it is answered (or its connection closes).
struct Answered(Arc<AtomicUsize>);

impl Answered {
    fn new(working: Arc<AtomicUsize>) -> Self {
        working.fetch_add(1, Ordering::SeqCst);
        Answered(working)
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A socket that fails with `TimedOut` once no byte has moved either way for `idle` while no
/// request of its is being worked on (`working`).
struct IdleTimeout {
    socket: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    working: Arc<AtomicUsize>,
}

impl IdleTimeout {
    fn new(socket: TcpStream, idle: Duration, working: Arc<AtomicUsize>) -> Self {
        IdleTimeout { socket, idle, deadline: Box::pin(tokio::time::sleep(idle)), working }
    }

    /// After an I/O poll: progress, or the server's own work, moves the deadline; waiting
    /// checks it.
    fn after<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.deadline.as_mut().reset(Instant::now() + self.idle);
                Poll::Ready(result)
            }
            Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                if self.working.load(Ordering::SeqCst) == 0 {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")));
                }
                self.deadline.as_mut().reset(Instant::now() + self.idle);
                // Polled once more, so that the new deadline wakes this task.
                let _ = self.deadline.as_mut().poll(cx);
                Poll::Pending
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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::service::service_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one connection of `listener` with `limits`, answering every request after `work`.
    async fn serve_one(listener: TcpListener, limits: ConnectionLimits, work: Duration) {
        let connection = Acceptor::new(limits).accept(&listener).await.expect("a connection");
        let answer = move |_req| async move {
            tokio::time::sleep(work).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
                "done",
            ))))
        };
        connection.serve(service_fn(answer)).await;
    }

    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("its address");
        (listener, address)
    }

    fn limits(idle: Duration) -> ConnectionLimits {
        ConnectionLimits { idle_timeout: idle, ..ConnectionLimits::default() }
    }

    #[tokio::test]
    async fn a_request_worked_on_longer_than_the_idle_timeout_is_still_answered() {
        let (listener, address) = listener().await;
        let server = tokio::spawn(serve_one(listener, limits(Duration::from_millis(200)), Duration::from_millis(700)));
        let mut client = TcpStream::connect(address).await.expect("connects");
        client.write_all(b"POST /complete HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n").await.expect("sent");
        let mut answer = vec![0; 1024];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut answer)).await.expect("in time");
        let answer = String::from_utf8_lossy(&answer[..read.expect("read")]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"), "{answer}");
        server.abort();
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
        let (listener, address) = listener().await;
        let server = tokio::spawn(serve_one(listener, limits(Duration::from_millis(200)), Duration::ZERO));
        let mut client = TcpStream::connect(address).await.expect("connects");
        // Half a request line, then nothing: the connection is closed without an answer.
        client.write_all(b"POST /comp").await.expect("sent");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
            .await
            .expect("closed in time");
        assert!(read.is_err() || answer.is_empty() || !answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        tokio::time::timeout(Duration::from_secs(5), server).await.expect("the connection ended").expect("no panic");
    }
}
