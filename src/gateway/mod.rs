//! The gateway: shared state, the listener, and the phases in [`phases`]
//! that every request goes through.

mod canonical;
mod cors;
mod headers;
mod inspect;
mod log;
mod phases;
mod upstream;

use std::{net::SocketAddr, sync::Arc};

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;

pub use canonical::CanonicalRequest;
pub use headers::FORWARDED_REQUEST_HEADERS;
pub use inspect::parse_json;

use crate::{
    body::Body,
    config::Config,
    credentials::Credentials,
    identity::IdentityService,
    policy::PolicySet,
    server::{Handler, Server, ServerOptions},
    wix::WixOAuth,
};
use cors::Cors;
use upstream::Upstream;

/// A configured gateway. Cheap to clone: clones share caches and policies.
#[derive(Clone)]
pub struct Gateway(Arc<State>);

/// What every request reads.
struct State {
    config: Config,
    base_url: String,
    policies: ArcSwap<PolicySet>,
    identity: IdentityService,
    credentials: Credentials,
    upstream: Upstream,
    cors: Cors,
}

impl Gateway {
    /// A gateway for `config`, serving `policies`.
    pub fn new(config: Config, policies: PolicySet) -> Self {
        let wix = WixOAuth::new(
            &config.wix,
            config.timeouts.connect,
            config.timeouts.identity,
        );
        let base_url = config
            .wix
            .base_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        Self(Arc::new(State {
            identity: IdentityService::new(&config, wix.clone()),
            credentials: Credentials::new(&config, wix),
            upstream: Upstream::new(&config),
            cors: Cors::new(&config.cors),
            policies: ArcSwap::from_pointee(policies),
            base_url,
            config,
        }))
    }

    /// Starts serving on `listener` in the background.
    pub fn start(&self, listener: TcpListener) -> Server {
        let options = ServerOptions {
            header_read_timeout: self.0.config.timeouts.header_read,
            ..ServerOptions::default()
        };
        Server::start(listener, self.clone(), options)
    }

    /// The policy set new requests are matched against.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.0.policies.load_full()
    }

    /// Replaces the policy set atomically: requests already in flight finish
    /// under the set they started with.
    pub fn replace_policies(&self, policies: PolicySet) {
        self.0.policies.store(Arc::new(policies));
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.0.config.listen)
            .field("upstream", &self.0.base_url)
            .finish_non_exhaustive()
    }
}

impl Handler for Gateway {
    fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl std::future::Future<Output = Response<Body>> + Send {
        self.handle_request(request, peer)
    }
}
