//! `wix-elevator serve`: load, bind, run until a signal, drain.

use std::path::Path;

use tokio::net::TcpListener;

use crate::{config::Config, gateway::Gateway, policy::PolicySet};

/// Anything that stops the gateway from starting, already printable.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Loads the config at `path` and its policies into a gateway.
pub fn load(path: &Path) -> Result<(Config, Gateway), StartError> {
    let config = Config::load(path)?;
    let policies = PolicySet::load(&config.policies).map_err(crate::diagnostic::Diagnostics)?;
    tracing::info!(
        rules = policies.rules().len(),
        policies = %config.policies.display(),
        "policies loaded"
    );
    let gateway = Gateway::new(config.clone(), policies);
    Ok((config, gateway))
}

/// Serves the gateway configured at `path` until SIGINT or SIGTERM, then
/// drains in-flight requests.
pub async fn serve(path: &Path) -> Result<(), StartError> {
    let (config, gateway) = load(path)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
    let server = gateway.start(listener);
    let _reloader = crate::reload::PolicyReloader::start(
        gateway.clone(),
        &config.policies,
        crate::reload::ReloadOptions::default(),
    );
    tracing::info!(listen = %server.local_addr(), upstream = %config.wix.base_url, "gateway ready");
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    server.shutdown().await;
    Ok(())
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
