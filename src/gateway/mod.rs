//! The gateway: shared state, the listener, and the phases in `phases`
//! that every request goes through.

mod canonical;
mod cors;
mod headers;
mod inspect;
mod limits;
mod log;
mod phases;
mod upstream;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::server::IncomingBody;
use arc_swap::ArcSwap;
use http::{Request, Response};
use tokio::net::TcpListener;

pub use canonical::CanonicalRequest;
pub use headers::FORWARDED_REQUEST_HEADERS;
pub use inspect::parse_json;

use crate::{
    body::Body,
    config::Config,
    credentials::Credentials,
    decision_log::DecisionLog,
    identity::{IdentityService, LastToken},
    metrics::{LastSeries, Metrics},
    policy::PolicySet,
    serve::StartError,
    server::{Handler, Server, ServerOptions},
    tls::TlsTerminator,
    wix::WixOAuth,
};
use cors::Cors;
use limits::{InFlight, RateLimits};
use upstream::Upstream;

/// A configured gateway. Cheap to clone: clones share caches and policies.
#[derive(Clone)]
pub struct Gateway(Arc<State>);

/// What every request reads.
struct State {
    config: Config,
    policies: ArcSwap<PolicySet>,
    identity: IdentityService,
    credentials: Credentials,
    upstream: Upstream,
    cors: Cors,
    metrics: Arc<Metrics>,
    decision_log: DecisionLog,
    rate_limits: RateLimits,
    in_flight: InFlight,
    tls: Option<TlsTerminator>,
    draining: AtomicBool,
}

impl Gateway {
    /// A gateway for `config`, serving `policies`. Fails if the decision log
    /// or the TLS certificate cannot be opened.
    pub fn new(config: Config, policies: PolicySet) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new());
        let wix = WixOAuth::new(&config, metrics.clone());
        let tls = match &config.tls {
            None => None,
            Some(tls) => Some(TlsTerminator::load(&tls.cert, &tls.key)?),
        };
        let decision_log =
            DecisionLog::open(&config.decision_log, metrics.decision_log_dropped.clone())
                .map_err(|error| format!("decision log {:?}: {error}", config.decision_log))?;
        let rate_limits = RateLimits::new(&config.rate_limits);
        for limit in &config.rate_limits {
            for rule in limit.rules.iter().filter(|rule| *rule != "*") {
                if !policies.rules().iter().any(|r| r.id() == rule) {
                    tracing::warn!(rule, "a rate limit names a rule the policies do not have");
                }
            }
        }
        let gateway = Self(Arc::new(State {
            identity: IdentityService::new(&config, wix.clone(), metrics.clone()),
            credentials: Credentials::new(&config, wix, metrics.clone()),
            upstream: Upstream::new(&config),
            cors: Cors::new(&config.cors),
            in_flight: InFlight::new(config.max_in_flight),
            policies: ArcSwap::from_pointee(policies),
            metrics,
            decision_log,
            rate_limits,
            tls,
            draining: AtomicBool::new(false),
            config,
        }));
        gateway.loaded();
        gateway.spawn_housekeeping();
        Ok(gateway)
    }

    /// Starts serving on `listener` in the background.
    pub fn start(&self, listener: TcpListener) -> Server {
        let config = &self.0.config;
        let options = ServerOptions {
            header_read_timeout: config.timeouts.header_read,
            idle_timeout: config.timeouts.idle,
            drain_timeout: config.timeouts.drain,
            max_connections: config.max_connections,
            tls: self.0.tls.clone(),
            tls_handshake_timeout: config.timeouts.tls_handshake,
            connections: Some(self.0.metrics.open_connections.clone()),
        };
        Server::start(listener, self.clone(), options)
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The policy set new requests are matched against.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.0.policies.load_full()
    }

    /// Replaces the policy set atomically: requests already in flight finish
    /// under the set they started with.
    pub fn replace_policies(&self, policies: PolicySet) {
        self.0.policies.store(Arc::new(policies));
        self.loaded();
    }

    /// Records in the metrics that the current policy set was loaded now.
    fn loaded(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let version = self.0.policies.load().version().to_owned();
        self.0.metrics.policies_loaded(&version, now);
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// Whether the gateway should receive traffic: false once draining.
    pub fn is_ready(&self) -> bool {
        !self.0.draining.load(Ordering::Acquire)
    }

    /// Marks the gateway as draining, so readiness probes fail while
    /// in-flight requests finish.
    pub fn begin_drain(&self) {
        self.0.draining.store(true, Ordering::Release);
    }

    /// Re-reads the TLS certificate, if TLS is on; the new one serves new
    /// handshakes, established connections carry on.
    pub fn reload_tls(&self) {
        if let Some(tls) = &self.0.tls {
            tls.reload_and_log();
        }
    }

    /// Periodic upkeep that must not run on the request path: forgetting
    /// idle rate-limit keys and watching the certificate files. The task
    /// holds only a weak reference, so it ends with the gateway.
    fn spawn_housekeeping(&self) {
        let weak = Arc::downgrade(&self.0);
        let every = self
            .0
            .config
            .tls
            .as_ref()
            .map_or(Duration::from_secs(60), |tls| tls.reload_interval)
            .min(Duration::from_secs(60));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(state) = weak.upgrade() else { return };
                state.rate_limits.forget_idle();
                if let Some(tls) = &state.tls {
                    tls.reload_and_log();
                }
            }
        });
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.0.config.listen)
            .field("upstream", &self.0.config.wix.base_url)
            .finish_non_exhaustive()
    }
}

/// What a busy connection keeps from one request to the next: what its
/// next request most likely needs again.
#[derive(Debug, Default)]
pub struct Session {
    /// The token it presented last, with its hash.
    last_token: LastToken,
    /// The series its last request was counted in.
    last_series: LastSeries,
}

impl Handler for Gateway {
    type Session = Session;

    fn handle(
        &self,
        request: Request<IncomingBody>,
        peer: SocketAddr,
        session: &mut Session,
    ) -> impl std::future::Future<Output = Response<Body>> + Send {
        self.handle_request(request, peer, session)
    }
}
