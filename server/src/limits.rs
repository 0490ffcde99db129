//! Abuse limits per client: WebSocket upgrades and joins per client IP, signaling messages per
//! connection. Each is a token bucket (`governor`'s GCRA): `burst` at once, then `per_sec` on
//! average. Excess upgrades get HTTP 429 with `Retry-After`, excess joins
//! `join_error {code: "rate_limited"}`, excess messages `error {code: "rate_limited"}`; each is
//! counted in `videoroom_rate_limited_requests_total{kind}`.
//!
//! The client IP is the TCP peer's, unless that peer is a configured trusted proxy: then it is
//! taken from `X-Forwarded-For` (see [`Limits::client_ip`]). IPv6 clients are keyed by their /64,
//! the block one subscriber usually gets, so rotating addresses within it does not help.
//!
//! Pure decision logic over a `governor` clock (tests drive a [`FakeRelativeClock`]); the HTTP
//! handler and the signaling session apply the answers. The per-IP state forgets an address once
//! its bucket is full again: a purge runs on the next check after [`PURGE_INTERVAL`].
//!
//! [`FakeRelativeClock`]: governor::clock::FakeRelativeClock

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// How often the per-IP state drops addresses whose bucket is full again.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// A token bucket: `burst` at once, refilled at `per_sec`. `per_sec == 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained rate, per second.
    pub per_sec: u32,
    /// How many may come at once (at least 1 when the limit is on).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_sec: 0,
        burst: 0,
    };

    /// Whether this rate limits anything.
    pub fn is_on(self) -> bool {
        self.per_sec > 0
    }

    fn quota(self) -> Option<Quota> {
        let per_sec = NonZeroU32::new(self.per_sec)?;
        let burst = NonZeroU32::new(self.burst).unwrap_or(per_sec);
        Some(Quota::per_second(per_sec).allow_burst(burst))
    }
}

/// The abuse limits' settings (part of [`crate::Config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// WebSocket upgrades (`GET /ws`) per client IP.
    pub upgrades_per_ip: Rate,
    /// `join` messages per client IP, over all its connections.
    pub joins_per_ip: Rate,
    /// Signaling messages (text or binary frames) per connection.
    pub messages_per_connection: Rate,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for RateLimits {
    /// Generous for people: a whole office behind one NAT address joining at the same minute,
    /// a client's burst of ICE candidates and renegotiations. Tight for a script: thousands of
    /// connections, joins or messages a second.
    fn default() -> Self {
        Self {
            upgrades_per_ip: Rate {
                per_sec: 20,
                burst: 100,
            },
            joins_per_ip: Rate {
                per_sec: 20,
                burst: 100,
            },
            messages_per_connection: Rate {
                per_sec: 20,
                burst: 100,
            },
            trusted_proxies: Vec::new(),
        }
    }
}

impl RateLimits {
    /// Checks the values (called by `Config::check`).
    pub fn check(&self) -> Result<(), String> {
        for (rate, what) in [
            (self.upgrades_per_ip, "--upgrade-burst-per-ip"),
            (self.joins_per_ip, "--join-burst-per-ip"),
            (self.messages_per_connection, "--message-burst"),
        ] {
            if rate.is_on() && rate.burst == 0 {
                return Err(format!(
                    "{what} must be at least 1 while its limit is on (a rate of 0 turns it off)"
                ));
            }
        }
        Ok(())
    }
}

/// Which limit refused something (the `kind` label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// A WebSocket upgrade (HTTP 429).
    Upgrade,
    /// A `join`.
    Join,
    /// Any signaling message.
    Message,
}

impl LimitKind {
    /// Every kind, for exporting all series from the start.
    pub const ALL: [LimitKind; 3] = [LimitKind::Upgrade, LimitKind::Join, LimitKind::Message];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Upgrade => "upgrade",
            LimitKind::Join => "join",
            LimitKind::Message => "message",
        }
    }
}

/// A refusal: the next attempt can pass after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// How long until one more is allowed.
    pub retry_after: Duration,
}

impl Limited {
    /// `retry_after` in whole seconds, rounded up, at least 1 (for `Retry-After` and messages).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }

    /// The HTTP answer to a refused upgrade: 429 with `Retry-After`.
    pub fn into_response(self) -> Response {
        let secs = self.retry_after_secs();
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many connections from your address; try again in {secs} s\n"),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    }
}

type KeyedLimiter<C> =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type DirectLimiter<C> =
    RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The server-wide limits: per-IP buckets for upgrades and joins, and the quota each
/// connection's [`MessageLimiter`] gets.
pub struct Limits<C: Clock = DefaultClock> {
    clock: C,
    upgrades: Option<KeyedLimiter<C>>,
    joins: Option<KeyedLimiter<C>>,
    messages: Option<Quota>,
    trusted_proxies: Vec<IpAddr>,
    last_purge: Mutex<C::Instant>,
}

impl<C: Clock + Clone> std::fmt::Debug for Limits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("tracked_addresses", &self.tracked())
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// Limits on the real clock.
    pub fn new(config: &RateLimits) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limits<C> {
    /// Limits on `clock` (tests drive a fake one).
    pub fn with_clock(config: &RateLimits, clock: C) -> Self {
        let keyed = |rate: Rate| {
            rate.quota()
                .map(|q| RateLimiter::new(q, DefaultKeyedStateStore::default(), clock.clone()))
        };
        Self {
            upgrades: keyed(config.upgrades_per_ip),
            joins: keyed(config.joins_per_ip),
            messages: config.messages_per_connection.quota(),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .map(|ip| canonical(*ip))
                .collect(),
            last_purge: Mutex::new(clock.now()),
            clock,
        }
    }

    /// Counts a WebSocket upgrade from `ip`.
    pub fn check_upgrade(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check(self.upgrades.as_ref(), ip)
    }

    /// Counts a `join` from `ip`.
    pub fn check_join(&self, ip: IpAddr) -> Result<(), Limited> {
        self.check(self.joins.as_ref(), ip)
    }

    /// A fresh bucket for one connection's signaling messages.
    pub fn message_limiter(&self) -> MessageLimiter<C> {
        MessageLimiter {
            limiter: self
                .messages
                .map(|q| RateLimiter::direct_with_clock(q, self.clock.clone())),
            clock: self.clock.clone(),
        }
    }

    /// The client's address: `peer` (the TCP peer), or, when `peer` is a trusted proxy, the
    /// address its `X-Forwarded-For` names. The header is read from the right (each proxy
    /// appends the address it got the request from), skipping trusted proxies; an entry that
    /// is not an address stops the walk at the last trusted hop's word. Without trusted proxies
    /// the header is ignored: a client cannot choose its own key.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if self.trusted_proxies.is_empty() {
            return client;
        }
        let mut entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        while self.trusted_proxies.contains(&client) {
            let Some(entry) = entries.pop() else { break };
            match parse_forwarded(entry) {
                Some(ip) => client = canonical(ip),
                None => break,
            }
        }
        client
    }

    /// Addresses currently held in the per-IP state (upgrades and joins).
    pub fn tracked(&self) -> usize {
        [&self.upgrades, &self.joins]
            .into_iter()
            .flatten()
            .map(|l| l.len())
            .sum()
    }

    fn check(&self, limiter: Option<&KeyedLimiter<C>>, ip: IpAddr) -> Result<(), Limited> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        self.purge_if_due();
        limiter
            .check_key(&key(ip))
            .map_err(|not_until| limited(&not_until, &self.clock))
    }

    /// Forgets the addresses whose buckets are full again, at most every [`PURGE_INTERVAL`]:
    /// the state holds only the addresses seen in the last interval or still being limited.
    fn purge_if_due(&self) {
        let now = self.clock.now();
        // Another check is purging: that one is enough.
        let Ok(mut last) = self.last_purge.try_lock() else {
            return;
        };
        if Duration::from(now.duration_since(*last)) < PURGE_INTERVAL {
            return;
        }
        *last = now;
        drop(last);
        for limiter in [&self.upgrades, &self.joins].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// One connection's bucket for signaling messages.
pub struct MessageLimiter<C: Clock = DefaultClock> {
    limiter: Option<DirectLimiter<C>>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for MessageLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageLimiter")
            .field("on", &self.limiter.is_some())
            .finish_non_exhaustive()
    }
}

impl<C: Clock> MessageLimiter<C> {
    /// Counts one message.
    pub fn check(&self) -> Result<(), Limited> {
        match &self.limiter {
            Some(limiter) => limiter
                .check()
                .map_err(|not_until| limited(&not_until, &self.clock)),
            None => Ok(()),
        }
    }
}

fn limited<C: Clock>(not_until: &NotUntil<C::Instant>, clock: &C) -> Limited {
    Limited {
        retry_after: not_until.wait_time_from(clock.now()),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The bucket an address counts against: an IPv4 address, or an IPv6 address's /64.
fn key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn limits(clock: &FakeRelativeClock, rate: Rate) -> Limits<FakeRelativeClock> {
        let config = RateLimits {
            upgrades_per_ip: rate,
            joins_per_ip: rate,
            messages_per_connection: rate,
            trusted_proxies: Vec::new(),
        };
        Limits::with_clock(&config, clock.clone())
    }

    fn passes(check: impl Fn() -> Result<(), Limited>, n: usize) -> usize {
        (0..n).filter(|_| check().is_ok()).count()
    }

    #[test]
    fn a_burst_passes_then_the_rate_refills() {
        let clock = FakeRelativeClock::default();
        let l = limits(
            &clock,
            Rate {
                per_sec: 2,
                burst: 5,
            },
        );
        assert_eq!(passes(|| l.check_join(A), 5), 5, "the burst passes");
        let refused = l.check_join(A).expect_err("the sixth is refused");
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.retry_after_secs(), 1);
        clock.advance(Duration::from_millis(499));
        assert!(l.check_join(A).is_err(), "not before the refill");
        clock.advance(Duration::from_millis(1));
        assert!(l.check_join(A).is_ok(), "one refilled after 1/rate");
        assert!(l.check_join(A).is_err());
        clock.advance(Duration::from_secs(60));
        assert_eq!(passes(|| l.check_join(A), 10), 5, "full again, never more");
    }

    #[test]
    fn addresses_and_kinds_have_their_own_buckets() {
        let clock = FakeRelativeClock::default();
        let l = limits(
            &clock,
            Rate {
                per_sec: 1,
                burst: 3,
            },
        );
        assert_eq!(passes(|| l.check_upgrade(A), 10), 3);
        assert_eq!(passes(|| l.check_upgrade(B), 10), 3, "B is not A");
        assert_eq!(passes(|| l.check_join(A), 10), 3, "joins are not upgrades");
        let (one, two) = (l.message_limiter(), l.message_limiter());
        assert_eq!(passes(|| one.check(), 10), 3);
        assert_eq!(
            passes(|| two.check(), 10),
            3,
            "each connection has its bucket"
        );
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let clock = FakeRelativeClock::default();
        let l = limits(
            &clock,
            Rate {
                per_sec: 1,
                burst: 2,
            },
        );
        let in_64 = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        assert!(l.check_upgrade(in_64(1)).is_ok());
        assert!(l.check_upgrade(in_64(2)).is_ok());
        assert!(l.check_upgrade(in_64(3)).is_err(), "same /64");
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(l.check_upgrade(other_64).is_ok());
        let mapped = IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201));
        assert!(l.check_upgrade(A).is_ok());
        assert!(l.check_upgrade(mapped).is_ok());
        assert!(l.check_upgrade(A).is_err(), "::ffff:192.0.2.1 is 192.0.2.1");
    }

    #[test]
    fn a_rate_of_zero_turns_the_limit_off() {
        let clock = FakeRelativeClock::default();
        let l = limits(&clock, Rate::OFF);
        assert_eq!(passes(|| l.check_upgrade(A), 10_000), 10_000);
        assert_eq!(passes(|| l.check_join(A), 10_000), 10_000);
        let m = l.message_limiter();
        assert_eq!(passes(|| m.check(), 10_000), 10_000);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_defaults_let_a_busy_address_through() {
        // The existing tests and benchmarks join dozens of peers from 127.0.0.1 at once.
        let clock = FakeRelativeClock::default();
        let l = Limits::with_clock(&RateLimits::default(), clock.clone());
        assert_eq!(passes(|| l.check_upgrade(A), 100), 100);
        assert_eq!(passes(|| l.check_join(A), 100), 100);
        let m = l.message_limiter();
        assert_eq!(passes(|| m.check(), 100), 100);
        // A burst of 200 at once is not.
        assert_eq!(passes(|| l.check_upgrade(B), 200), 100);
        // 20 a second goes on for ever.
        for _ in 0..100 {
            clock.advance(Duration::from_millis(50));
            assert!(l.check_upgrade(A).is_ok());
            assert!(l.check_join(A).is_ok());
            assert!(m.check().is_ok());
        }
    }

    #[test]
    fn forgotten_addresses_are_purged() {
        let clock = FakeRelativeClock::default();
        let l = limits(
            &clock,
            Rate {
                per_sec: 10,
                burst: 10,
            },
        );
        for i in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(l.check_upgrade(ip).is_ok());
            assert!(l.check_join(ip).is_ok());
        }
        assert_eq!(l.tracked(), 2000);
        // Not purged before the interval, even though the buckets are full again.
        clock.advance(PURGE_INTERVAL - Duration::from_millis(1));
        assert!(l.check_upgrade(A).is_ok());
        assert_eq!(l.tracked(), 2001);
        // A busy address is kept across the purge, with its state.
        for _ in 0..10 {
            let _ = l.check_upgrade(B);
        }
        clock.advance(Duration::from_millis(1));
        assert!(l.check_upgrade(B).is_err(), "B is still limited");
        assert_eq!(l.tracked(), 2, "only A (used a moment ago) and B are left");
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn x_forwarded_for_counts_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let config = RateLimits {
            trusted_proxies: vec![proxy, "10.0.0.2".parse().expect("ip")],
            ..RateLimits::default()
        };
        let l = Limits::with_clock(&config, FakeRelativeClock::default());
        let spoofed = headers(&["198.51.100.7"]);
        assert_eq!(l.client_ip(A, &spoofed), A, "A is no proxy: ignored");
        assert_eq!(
            l.client_ip(proxy, &spoofed),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        // The rightmost untrusted entry: what the client put first is not believed.
        let chain = headers(&["203.0.113.9, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(
            l.client_ip(proxy, &chain),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        let with_port = headers(&["[2001:db8::1]:4711"]);
        assert_eq!(
            l.client_ip(proxy, &with_port),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(l.client_ip(proxy, &headers(&["unknown"])), proxy);
        assert_eq!(l.client_ip(proxy, &HeaderMap::new()), proxy);
        let mapped_proxy: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            l.client_ip(mapped_proxy, &spoofed),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        let untrusting = Limits::with_clock(&RateLimits::default(), FakeRelativeClock::default());
        assert_eq!(untrusting.client_ip(proxy, &spoofed), proxy);
    }

    #[test]
    fn a_refused_upgrade_is_a_429_with_retry_after() {
        let response = Limited {
            retry_after: Duration::from_millis(1200),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("2"))
        );
        let zero = Limited {
            retry_after: Duration::ZERO,
        };
        assert_eq!(zero.retry_after_secs(), 1);
    }

    #[test]
    fn settings_come_from_flags_environment_and_file() {
        use crate::config::{Cli, Config};
        use clap::Parser;
        let parse = |args: &[&str]| {
            Config::from_cli(
                Cli::try_parse_from(
                    std::iter::once("videoroom-server").chain(args.iter().copied()),
                )
                .expect("flags parse"),
            )
        };
        let d = parse(&[]).expect("valid");
        assert_eq!(d.rate_limits, RateLimits::default());
        let dir = std::env::temp_dir().join(format!("vr-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "max_joins_per_ip_per_sec = 3\njoin_burst_per_ip = 7\n\
             trusted_proxies = [\"10.0.0.1\"]\nmax_messages_per_sec = 0\n",
        )
        .expect("write");
        let c = parse(&[
            "--config",
            path.to_str().expect("utf8"),
            "--max-upgrades-per-ip-per-sec",
            "5",
            "--upgrade-burst-per-ip",
            "9",
            "--join-burst-per-ip",
            "8",
            "--message-burst",
            "50",
        ])
        .expect("valid");
        assert_eq!(
            c.rate_limits.upgrades_per_ip,
            Rate {
                per_sec: 5,
                burst: 9
            }
        );
        assert_eq!(
            c.rate_limits.joins_per_ip,
            Rate {
                per_sec: 3,
                burst: 8
            }
        );
        assert!(!c.rate_limits.messages_per_connection.is_on());
        assert_eq!(
            c.rate_limits.trusted_proxies,
            vec!["10.0.0.1".parse::<IpAddr>().expect("ip")]
        );
        assert!(parse(&["--join-burst-per-ip", "0"]).is_err());
        assert!(
            parse(&[
                "--max-joins-per-ip-per-sec",
                "0",
                "--join-burst-per-ip",
                "0"
            ])
            .is_ok()
        );
    }
}
