//! Abuse limits: per-rule rate limits (GCRA, from `governor`) keyed by the
//! verified caller, their instance or the client IP, and the global cap on
//! requests in flight.
//!
//! Limits live in `proxy.yaml`, not in the policies: operators tune them,
//! and a policy reload does not reset anyone's budget.

use std::{collections::HashSet, net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultKeyedRateLimiter, Quota, RateLimiter,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    caller::Caller,
    config::{RateLimitConfig, RateLimitKey},
    error::GatewayError,
};

/// One configured limit.
struct Limit {
    /// `None` means every rule.
    rules: Option<HashSet<String>>,
    key: RateLimitKey,
    limiter: DefaultKeyedRateLimiter<String>,
}

/// Every configured rate limit.
pub struct RateLimits {
    limits: Vec<Limit>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("limits", &self.limits.len())
            .finish()
    }
}

impl RateLimits {
    /// Compiles the configured limits.
    pub fn new(configs: &[RateLimitConfig]) -> Self {
        let mut limits: Vec<Limit> = configs
            .iter()
            .map(|config| {
                let period = (config.per / config.requests).max(Duration::from_nanos(1));
                let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(period)
                    .expect("the period is above zero")
                    .allow_burst(burst);
                Limit {
                    rules: (!config.rules.iter().any(|rule| rule == "*"))
                        .then(|| config.rules.iter().cloned().collect()),
                    key: config.key,
                    limiter: RateLimiter::keyed(quota),
                }
            })
            .collect();
        // Narrowest first: `check` stops at the first refusal, so a caller
        // over their own budget does not also spend their site's.
        limits.sort_by_key(|limit| match limit.key {
            RateLimitKey::Caller => 0,
            RateLimitKey::Ip => 1,
            RateLimitKey::Instance => 2,
        });
        Self {
            limits,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from each limit on `rule` for this caller, the
    /// narrowest first, stopping at the first that is spent; the error says
    /// when to retry.
    pub fn check(&self, rule: &str, caller: &Caller, peer: IpAddr) -> Result<(), GatewayError> {
        for limit in &self.limits {
            if limit
                .rules
                .as_ref()
                .is_some_and(|rules| !rules.contains(rule))
            {
                continue;
            }
            let key = match limit.key {
                RateLimitKey::Caller => format!("{}:{}", caller.instance_id, caller.subject_id),
                RateLimitKey::Instance => caller.instance_id.to_string(),
                RateLimitKey::Ip => peer.to_string(),
            };
            if let Err(not_until) = limit.limiter.check_key(&key) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(GatewayError::RateLimited(wait));
            }
        }
        Ok(())
    }

    /// Forgets keys whose budget is full again, so that the state stays
    /// bounded by the callers active within one period.
    pub fn forget_idle(&self) {
        for limit in &self.limits {
            limit.limiter.retain_recent();
            limit.limiter.shrink_to_fit();
        }
    }
}

/// The cap on requests in flight across all connections.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    /// Allows at most `max` requests at once.
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }

    /// A slot for one request, or an immediate refusal when all are taken:
    /// queueing would only add latency to an overloaded gateway.
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, GatewayError> {
        self.0
            .clone()
            .try_acquire_owned()
            .map_err(|_| GatewayError::Overloaded)
    }
}
