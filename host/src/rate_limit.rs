//! Rate limits per client address on the endpoints anyone may call without
//! credentials (`/register`, `/authorize`, `/token`, `/revoke`, `/introspect`) and on
//! failed authentications at the gateway. Behind `server.trusted_proxies` the client
//! address is the forwarded one (see `forwarded.rs`). A refused request gets 429 with
//! `Retry-After` (`oauth/rate_limited.rs`, the gateway's errors).

use crate::audit::CLIENT_ADDR;
use crate::config::RateLimitConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Which limit a route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Authorize,
    Token,
    Revoke,
    Introspect,
}

type Limiter = DefaultKeyedRateLimiter<IpAddr>;

/// Past this many blocked addresses, expired blocks are swept; past twice as many,
/// all are dropped (a flood from many addresses cannot grow memory without bound).
const MAX_BLOCKED: usize = 10_000;

pub struct RateLimits {
    endpoints: Vec<(Endpoint, Limiter)>,
    auth_failures: Option<Limiter>,
    /// Addresses whose failed authentications ran past the limit, until when. Read on
    /// every gateway request, written rarely.
    blocked: RwLock<HashMap<IpAddr, Instant>>,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        let limiter = |per_minute: u32| {
            NonZeroU32::new(per_minute)
                .filter(|_| config.enabled)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        };
        let endpoints = [
            (Endpoint::Register, config.register_per_minute),
            (Endpoint::Authorize, config.authorize_per_minute),
            (Endpoint::Token, config.token_per_minute),
            (Endpoint::Revoke, config.revoke_per_minute),
            (Endpoint::Introspect, config.introspect_per_minute),
        ]
        .into_iter()
        .filter_map(|(endpoint, n)| limiter(n).map(|l| (endpoint, l)))
        .collect();
        RateLimits {
            endpoints,
            auth_failures: limiter(config.gateway_auth_failures_per_minute),
            blocked: RwLock::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when `addr` has used up its requests to `endpoint` for now.
    pub fn check(&self, endpoint: Endpoint, addr: IpAddr) -> Result<(), Duration> {
        let Some((_, limiter)) = self.endpoints.iter().find(|(e, _)| *e == endpoint) else {
            return Ok(());
        };
        limiter
            .check_key(&addr)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// `Err(wait)` while `addr` is blocked for failing to authenticate too often: the
    /// gateway then answers 429 without looking at its credentials.
    pub fn check_blocked(&self, addr: IpAddr) -> Result<(), Duration> {
        let blocked = self.blocked.read().unwrap_or_else(|p| p.into_inner());
        if blocked.is_empty() {
            return Ok(());
        }
        match blocked.get(&addr) {
            Some(until) if *until > Instant::now() => Err(*until - Instant::now()),
            _ => Ok(()),
        }
    }

    /// Count a failed authentication from `addr`; past the limit it is blocked.
    pub fn auth_failed(&self, addr: IpAddr) {
        let Some(limiter) = &self.auth_failures else {
            return;
        };
        if let Err(not_until) = limiter.check_key(&addr) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let now = Instant::now();
            let mut blocked = self.blocked.write().unwrap_or_else(|p| p.into_inner());
            if blocked.len() >= MAX_BLOCKED {
                blocked.retain(|_, until| *until > now);
                if blocked.len() >= 2 * MAX_BLOCKED {
                    blocked.clear();
                }
            }
            blocked.insert(addr, now + wait.max(Duration::from_secs(1)));
        }
    }

    /// Forget addresses that are back within their limits (run periodically).
    pub fn forget_idle(&self) {
        for (_, limiter) in &self.endpoints {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.auth_failures {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// The client address of the request being handled.
pub fn client_addr() -> IpAddr {
    CLIENT_ADDR
        .try_with(|addr| *addr)
        .ok()
        .flatten()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}
