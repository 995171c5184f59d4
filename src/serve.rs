//! `wix-elevator serve`: load, bind, run until a signal, drain.

use std::path::Path;

use tokio::net::TcpListener;

use crate::{
    admin::Admin,
    config::Config,
    gateway::Gateway,
    policy::PolicySet,
    server::{Server, ServerOptions},
};

/// Anything that stops the gateway from starting, already printable.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Loads the config at `path` and its policies into a gateway.
pub fn load(path: &Path) -> Result<(Config, Gateway), StartError> {
    let config = Config::load(path)?;
    // Warnings refuse a set as errors do: the gateway never serves a set
    // `check` would flag, at startup or on reload.
    let policies = PolicySet::load(&config.policies)
        .and_then(PolicySet::into_servable)
        .map_err(crate::diagnostic::Diagnostics)?;
    tracing::info!(
        rules = policies.rules().len(),
        policies = %config.policies.display(),
        "policies loaded"
    );
    let gateway = Gateway::new(config.clone(), policies)?;
    Ok((config, gateway))
}

/// A gateway serving, with its admin listener.
#[derive(Debug)]
pub struct Running {
    /// The gateway.
    pub gateway: Gateway,
    /// The proxy listener.
    pub proxy: Server,
    /// The admin listener, when configured.
    pub admin: Option<Server>,
}

impl Running {
    /// Binds the proxy and admin listeners of `gateway` and starts serving.
    pub async fn start(gateway: Gateway) -> Result<Self, StartError> {
        let config = gateway.config();
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
        let admin = match config.admin {
            None => None,
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|error| format!("cannot listen on {addr} (admin): {error}"))?;
                Some(Server::start(
                    listener,
                    Admin::new(gateway.clone()),
                    ServerOptions::default(),
                ))
            }
        };
        let proxy = gateway.start(listener);
        Ok(Self {
            gateway,
            proxy,
            admin,
        })
    }

    /// Drains: readiness fails at once, the proxy stops accepting, in-flight
    /// requests finish (up to `timeouts.drain`), then the admin listener
    /// stops.
    pub async fn shutdown(self) {
        self.gateway.begin_drain();
        self.proxy.shutdown().await;
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
    }
}

/// Serves the gateway configured at `path` until SIGINT or SIGTERM, then
/// drains in-flight requests. SIGHUP reloads the TLS certificate.
pub async fn serve(path: &Path) -> Result<(), StartError> {
    let (config, gateway) = load(path)?;
    let running = Running::start(gateway).await?;
    // Kept alive for as long as the gateway serves: dropping it stops the
    // watcher.
    let _reloader = crate::reload::PolicyReloader::start(
        running.gateway.clone(),
        &config.policies,
        crate::reload::ReloadOptions::default(),
    );
    tracing::info!(
        listen = %running.proxy.local_addr(),
        admin = ?running.admin.as_ref().map(Server::local_addr),
        upstream = %config.wix.base_url,
        "gateway ready"
    );
    spawn_sighup(running.gateway.clone());
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// Reloads what can be reloaded on each SIGHUP.
fn spawn_sighup(gateway: Gateway) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            gateway.reload_tls();
        }
    });
    #[cfg(not(unix))]
    let _ = gateway;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
