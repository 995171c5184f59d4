//! The accept loop shared by the gateway, its admin listener and the
//! sandbox: HTTP/1.1 and HTTP/2 on one listener (cleartext, or TLS with ALPN),
//! hyper's timer set so that its header-read timeout is really on, a cap on
//! open connections, an idle timeout, and a graceful drain.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use prometheus_client::metrics::gauge::Gauge;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{watch, Semaphore},
    task::JoinHandle,
};
use tracing::Instrument;

use crate::{body::Body, tls::TlsTerminator};

/// Connection-level settings of a listener.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long a client may take to send a request's headers. For HTTP/1
    /// this also bounds how long a keep-alive connection waits for the next
    /// request.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// How long in-flight requests may take to finish once shutdown starts.
    pub drain_timeout: Duration,
    /// Most connections open at once; further clients wait in the accept
    /// backlog.
    pub max_connections: usize,
    /// TLS termination, if any.
    pub tls: Option<TlsTerminator>,
    /// How long a client may take for the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Kept equal to the number of open connections.
    pub connections: Option<Gauge>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            connections: None,
        }
    }
}

/// Handles one request; implemented for any suitable async closure.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`, which came from `peer`.
    fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// A running listener. [`Server::shutdown`] drains it; dropping it also
/// stops accepting and closes connections gracefully, without waiting.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts serving `handler` on `listener` in a background task.
    pub fn start<H: Handler>(listener: TcpListener, handler: H, options: ServerOptions) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, Arc::new(handler), options, stopped));
        Self { addr, stop, task }
    }

    /// The address the listener is bound to (with the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain
    /// timeout), then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    options: ServerOptions,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let max = options.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max));
    let options = Arc::new(options);

    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Running out of file descriptors is transient: back off
                    // instead of spinning or dying.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = serve_connection(
            stream,
            peer,
            handler.clone(),
            builder.clone(),
            options.clone(),
            stopped.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            connection
                .instrument(tracing::debug_span!("connection", %peer))
                .await;
        });
    }

    drop(listener);
    // Every connection holds a slot until it closes: having all of them back
    // means every connection has drained.
    let drained = tokio::time::timeout(options.drain_timeout, slots.acquire_many(max as u32));
    if drained.await.is_err() {
        tracing::warn!("drain deadline passed with connections still open");
    }
}

/// What the idle timer reads: requests in flight on this connection, and
/// when the last one ended.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    last_done_ms: AtomicU64,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        Some(self.started.elapsed().saturating_sub(last))
    }
}

/// Marks a connection busy for as long as it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.0.started.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(now, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is done.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for BusyBody {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// One accepted connection and what serving it needs.
struct Connection<H> {
    peer: SocketAddr,
    handler: Arc<H>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    options: Arc<ServerOptions>,
    stopped: watch::Receiver<bool>,
}

async fn serve_connection<H: Handler>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    options: Arc<ServerOptions>,
    stopped: watch::Receiver<bool>,
) {
    let _open = options.connections.as_ref().map(OpenConnection::new);
    let tls = options.tls.clone();
    let handshake_timeout = options.tls_handshake_timeout;
    let connection = Connection {
        peer,
        handler,
        builder,
        options,
        stopped,
    };
    let Some(tls) = tls else {
        return connection.drive(TokioIo::new(stream)).await;
    };
    let handshake = tls.acceptor().accept(stream);
    match tokio::time::timeout(handshake_timeout, handshake).await {
        Ok(Ok(stream)) => connection.drive(TokioIo::new(stream)).await,
        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

impl<H: Handler> Connection<H> {
    /// Serves HTTP on `io` until the peer leaves, the connection idles out,
    /// or shutdown drains it.
    async fn drive<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Self {
            peer,
            handler,
            builder,
            options,
            mut stopped,
        } = self;
        let activity = Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        });
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |request| {
            let handler = handler.clone();
            // Busy from the request's arrival until its response body is
            // sent or dropped, whichever way the exchange ends (a stream
            // reset drops this future, a client gone drops the body).
            let busy = Busy::new(tracked.clone());
            // Boxed per request: hyper keeps a slot for the in-flight future
            // for the connection's whole life, and the gateway's future is
            // several KiB; unboxed, every idle keep-alive connection would
            // hold that much (measured by bench/programs/scale.rs).
            Box::pin(async move {
                let response = handler.handle(request, peer).await;
                Ok::<_, Infallible>(response.map(|body| {
                    BodyExt::boxed(BusyBody {
                        inner: body,
                        _busy: busy,
                    })
                }))
            })
        });
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let tick = (options.idle_timeout / 4).max(Duration::from_millis(10));
        // A client that ignores a graceful close (an HTTP/2 peer that never
        // answers the GOAWAY's ping) is dropped after this long.
        let grace = options.idle_timeout.min(Duration::from_secs(5));
        let mut closing = None::<tokio::time::Instant>;
        if *stopped.borrow() {
            connection.as_mut().graceful_shutdown();
            closing = Some(tokio::time::Instant::now() + options.drain_timeout);
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                _ = stopped.changed(), if closing.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + options.drain_timeout);
                }
                _ = tokio::time::sleep(tick), if closing.is_none() => {
                    if activity.idle_for().is_some_and(|idle| idle >= options.idle_timeout) {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now() + grace);
                    }
                }
                _ = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {
                    tracing::debug!("connection did not close in time; dropping it");
                    return;
                }
            }
        }
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenConnection(Gauge);

impl OpenConnection {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
