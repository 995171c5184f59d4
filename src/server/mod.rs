//! The accept loop shared by the gateway, its admin listener and the
//! sandbox: HTTP/1.1 and HTTP/2 on one listener (cleartext, or TLS with ALPN),
//! hyper's timer set so that its header-read timeout is really on, a cap on
//! open connections, an idle timeout, and a graceful drain.
//!
//! Cleartext HTTP/1 connections are served by the server's own HTTP/1
//! implementation (`cleartext`); TLS and HTTP/2 connections by hyper, for
//! their whole life (`held`).

mod activity;
mod cleartext;
mod held;
mod incoming;

pub use incoming::IncomingBody;

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use prometheus_client::metrics::gauge::Gauge;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinHandle,
};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

use hyper::body::Incoming;

use crate::{body::Body, tls::TlsTerminator};

use activity::{Activity, Busy};

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

impl ServerOptions {
    /// How long a connection asked to close gracefully (idle, or a client
    /// that stopped reading) may take before it is dropped.
    fn close_grace(&self) -> Duration {
        self.idle_timeout.min(Duration::from_secs(5))
    }
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

/// Handles one request: the gateway, the admin endpoints, the sandbox.
pub trait Handler: Send + Sync + 'static {
    /// What the handler keeps from one request of a connection to the
    /// next, for as long as requests keep coming on it (a cleartext
    /// HTTP/1.1 connection; elsewhere each request gets a fresh one).
    type Session: Default + Send;

    /// Answers `request`, which came from `peer` on a connection whose
    /// `session` this is.
    fn handle(
        &self,
        request: Request<IncomingBody>,
        peer: SocketAddr,
        session: &mut Self::Session,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// A running listener. [`Server::shutdown`] drains it; dropping it also
/// stops accepting and closes connections gracefully, without waiting.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    /// Cancelled on shutdown, or when the server is dropped.
    stop: DropGuard,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts serving `handler` on `listener` in a background task.
    pub fn start<H: Handler>(listener: TcpListener, handler: H, options: ServerOptions) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(handler),
            options,
            stop.clone(),
        ));
        let stop = stop.drop_guard();
        Self { addr, stop, task }
    }

    /// The address the listener is bound to (with the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain
    /// timeout), then returns.
    pub async fn shutdown(self) {
        self.stop.disarm().cancel();
        let _ = self.task.await;
    }
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    options: ServerOptions,
    stopped: CancellationToken,
) {
    let builders = Arc::new(Builders::new(&options));
    let max = options.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max));
    let options = Arc::new(options);

    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped.cancelled() => break,
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
            _ = stopped.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            handler: handler.clone(),
            builders: builders.clone(),
            options: options.clone(),
            stopped: stopped.clone(),
            _open: options.connections.as_ref().map(OpenConnection::new),
            _slot: slot,
        };
        let span = tracing::debug_span!("connection", %peer);
        // Spawned as they are, not wrapped: an idle connection's task is
        // sized by the future it runs, so nothing is kept twice.
        match options.tls.clone() {
            Some(tls) => tokio::spawn(Box::pin(connection.serve_tls(stream, tls)).instrument(span)),
            None => tokio::spawn(connection.serve_cleartext(stream).instrument(span)),
        };
    }

    drop(listener);
    // Every connection holds a slot until it closes: having all of them back
    // means every connection has drained.
    let drained = tokio::time::timeout(options.drain_timeout, slots.acquire_many(max as u32));
    if drained.await.is_err() {
        tracing::warn!("drain deadline passed with connections still open");
    }
}

/// hyper's connection settings, built once per listener: HTTP/1 or
/// HTTP/2, told apart by ALPN or by the HTTP/2 preface.
struct Builders {
    auto: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(options: &ServerOptions) -> Self {
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout);
        auto.http2().timer(TokioTimer::new());
        Self { auto }
    }
}

/// One accepted connection and what serving it needs.
struct Connection<H> {
    peer: SocketAddr,
    handler: Arc<H>,
    builders: Arc<Builders>,
    options: Arc<ServerOptions>,
    stopped: CancellationToken,
    /// Counted in the open-connections gauge while it lives.
    _open: Option<OpenConnection>,
    /// Its place under `max_connections`, given back when it closes.
    _slot: OwnedSemaphorePermit,
}

impl<H: Handler> Connection<H> {
    /// Serves a connection that starts with a TLS handshake.
    async fn serve_tls(self, stream: TcpStream, tls: TlsTerminator) {
        let handshake = tls.acceptor().accept(stream);
        match tokio::time::timeout(self.options.tls_handshake_timeout, handshake).await {
            Ok(Ok(stream)) => self.serve_held(TokioIo::new(stream)).await,
            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    }
}

/// A response body that keeps its connection [`Busy`] until the body is
/// done, sent or dropped: how a connection learns that its response ended.
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

/// The future hyper awaits for one request.
type Answering =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<H: Handler> Connection<H> {
    /// The connection's hyper service: each request goes to the handler,
    /// and `activity` counts the connection busy
    /// from the request's arrival until its response body is sent or
    /// dropped, whichever way the exchange ends (a stream reset drops the
    /// future, a client gone drops the body).
    fn service(
        &self,
        activity: &Arc<Activity>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<Body>,
        Error = Infallible,
        Future = Answering,
    > + Clone {
        let handler = self.handler.clone();
        let activity = activity.clone();
        let peer = self.peer;
        hyper::service::service_fn(move |request: Request<Incoming>| -> Answering {
            let handler = handler.clone();
            let request = request.map(IncomingBody::hyper);
            let busy = Busy::new(activity.clone());
            // Boxed per request: hyper keeps a slot for the in-flight future
            // for the connection's whole life, and the gateway's future is
            // several KiB; unboxed, every idle keep-alive connection would
            // hold that much (measured by bench/programs/scale.rs).
            Box::pin(async move {
                let mut session = H::Session::default();
                let response = handler.handle(request, peer, &mut session).await;
                Ok(response
                    .map(|inner| http_body_util::BodyExt::boxed(BusyBody { inner, _busy: busy })))
            })
        })
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
