//! Client-side balancing over every address of a backend's host name.
//!
//! A backend URL names a host; behind a Kubernetes headless Service (or any DNS name with several records) that
//! host is many replicas. One tonic channel per address, kept in a list that a resolver task replaces whenever the
//! [`Resolver`] (the system's `getaddrinfo` by default: /etc/hosts, then DNS, read afresh on every lookup; a table in
//! tests) answers differently; each export attempt picks the next address round-robin.
//!
//! Invariants:
//! - An address that leaves the list gets no new attempt; attempts in flight keep their clone of its channel and
//!   finish on it; its connection closes when the last clone drops.
//! - A failed lookup (or one with no address) keeps the previous list: a DNS hiccup never empties a working backend.
//! - An address whose attempt failed retryably (or timed out) is skipped for a cooldown that doubles with each
//!   consecutive failure (500 ms .. 30 s) and triggers an early lookup; if every address is cooling down, they are
//!   still tried (round-robin) rather than failing without an attempt.
//! - The retry of a failed attempt goes to another address whenever there is one.
//! - The readiness probe sends its empty export to every address at once: one answer suffices.
//!
//! Why by hand rather than `Channel::balance_channel`: tonic's balancer does not tell which address took a call, and
//! this module needs exactly that (the per-address metrics, the retry that avoids the address that just failed, the
//! readiness probe per address). Round-robin rather than power-of-two-choices: exports are batches of bounded,
//! similar size to replicas of one service, few are in flight at once (`--export-concurrency` per signal), so a
//! load signal would mostly read 0 or 1 and p2c would degrade to random picks; round-robin gives every replica its
//! exact share, which is what spreading a pool of Collectors or distributors needs. A slow or failing replica is
//! handled by the cooldown instead.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::config::Resolver;
use crate::retry::is_retryable;
use crate::telemetry::{AddressMetrics, BalancerMetrics, Telemetry};

/// Makes the (lazily connecting) channel of one address.
pub(super) type Connect = Box<dyn Fn(SocketAddr) -> Channel + Send + Sync>;

/// First cooldown of a failing address; doubled per consecutive failure up to [`MAX_COOLDOWN`].
const FIRST_COOLDOWN: Duration = Duration::from_millis(500);
const MAX_COOLDOWN: Duration = Duration::from_secs(30);
/// Early lookups (after a failure, or with no address) come at most this often.
const MIN_LOOKUP_GAP: Duration = Duration::from_secs(1);
/// A lookup that takes longer than this counts as failed (the previous list stays).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One address of a backend.
#[derive(Debug)]
pub(super) struct Replica {
    pub(super) addr: SocketAddr,
    pub(super) channel: Channel,
    health: Mutex<Health>,
    /// Its export counters, registered at 0 when the address appears.
    metrics: AddressMetrics,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
}

impl Replica {
    fn new(addr: SocketAddr, channel: Channel, metrics: AddressMetrics) -> Replica {
        Replica { addr, channel, health: Mutex::new(Health::default()), metrics }
    }

    fn cooling(&self, now: Instant) -> bool {
        self.health.lock().map(|h| h.cooling_until.is_some_and(|t| t > now)).unwrap_or(false)
    }
}

/// The addresses of one backend host name, kept current, and the choice among them.
pub(super) struct Balancer {
    /// The backend's label (logs and metrics).
    label: String,
    host: String,
    port: u16,
    interval: Duration,
    resolver: Resolver,
    connect: Connect,
    /// The current list; replaced whole, never edited in place, so a reader's snapshot stays consistent.
    replicas: watch::Sender<Arc<[Arc<Replica>]>>,
    next: AtomicUsize,
    lookup_now: Notify,
    metrics: BalancerMetrics,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<SocketAddr> = self.replicas.borrow().iter().map(|r| r.addr).collect();
        f.debug_struct("Balancer").field("label", &self.label).field("addresses", &addrs).finish()
    }
}

impl Balancer {
    /// A balancer over `host:port`. An IP literal is its one address for good; a name is looked up now and every
    /// `interval` by a task that ends when the balancer is dropped.
    pub(super) fn new(
        label: &str,
        host: &str,
        port: u16,
        interval: Duration,
        resolver: Resolver,
        connect: Connect,
        telemetry: Arc<Telemetry>,
    ) -> Arc<Balancer> {
        let (replicas, _) = watch::channel(Arc::from(Vec::new()));
        let balancer = Arc::new(Balancer {
            label: label.to_string(),
            host: host.to_string(),
            port,
            interval,
            resolver,
            connect,
            replicas,
            next: AtomicUsize::new(0),
            lookup_now: Notify::new(),
            metrics: BalancerMetrics::new(&telemetry, label),
        });
        match host.parse::<IpAddr>() {
            Ok(ip) => balancer.update(vec![SocketAddr::new(ip, port)]),
            Err(_) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(resolve_loop(Arc::downgrade(&balancer)));
                }
                Err(_) => tracing::warn!(backend = label, "no runtime: the backend's host name will not be resolved"),
            },
        }
        balancer
    }

    /// The addresses known now.
    #[cfg(test)]
    pub(super) fn addresses(&self) -> Vec<SocketAddr> {
        self.replicas.borrow().iter().map(|r| r.addr).collect()
    }

    /// Looks the name up once and applies the answer; `Err` says why the list was kept.
    async fn resolve_once(&self) -> Result<(), String> {
        let lookup = self.resolver.lookup(&self.host, self.port);
        let found: Vec<SocketAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        };
        if found.is_empty() {
            return Err("no address".into());
        }
        self.update(found);
        Ok(())
    }

    /// Makes `found` the list, keeping the replica (channel, connection, health) of every address that stays.
    fn update(&self, mut found: Vec<SocketAddr>) {
        let mut seen = Vec::with_capacity(found.len());
        found.retain(|a| {
            let new = !seen.contains(a);
            seen.push(*a);
            new
        });
        let current = self.replicas.borrow().clone();
        let unchanged = current.len() == found.len() && found.iter().all(|a| current.iter().any(|r| r.addr == *a));
        if unchanged {
            return;
        }
        let list: Vec<Arc<Replica>> = found
            .iter()
            .map(|addr| {
                current.iter().find(|r| r.addr == *addr).cloned().unwrap_or_else(|| {
                    let metrics = self.metrics.address(&addr.to_string());
                    Arc::new(Replica::new(*addr, (self.connect)(*addr), metrics))
                })
            })
            .collect();
        let added: Vec<String> =
            found.iter().filter(|a| !current.iter().any(|r| r.addr == **a)).map(ToString::to_string).collect();
        let removed: Vec<String> =
            current.iter().filter(|r| !found.contains(&r.addr)).map(|r| r.addr.to_string()).collect();
        self.metrics.addresses(list.len());
        tracing::info!(backend = %self.label, ?added, ?removed, addresses = list.len(), "backend addresses changed");
        self.replicas.send_replace(list.into());
    }

    /// The next address round-robin, skipping `avoid` (the address of the previous failed attempt) when there is
    /// another and cooling addresses when there is a healthy one. `None` with no address at all.
    fn pick(&self, avoid: Option<SocketAddr>) -> Option<Arc<Replica>> {
        let list = self.replicas.borrow().clone();
        let n = list.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let others: Vec<&Arc<Replica>> = list.iter().filter(|r| n == 1 || Some(r.addr) != avoid).collect();
        // Round-robin over the healthy ones (not "the next healthy after a skipped one", which would hand a cooling
        // address's turns to its neighbour and double that one's share).
        let healthy: Vec<&Arc<Replica>> = others.iter().copied().filter(|r| !r.cooling(now)).collect();
        let from = if healthy.is_empty() { &others } else { &healthy };
        from.get(start % from.len().max(1)).map(|r| Arc::clone(r))
    }

    /// Picks an address for one attempt; with none known yet, asks for a lookup and waits up to `wait` for one.
    pub(super) async fn choose(&self, avoid: Option<SocketAddr>, wait: Duration) -> Result<Arc<Replica>, Status> {
        if let Some(replica) = self.pick(avoid) {
            return Ok(replica);
        }
        self.lookup_now.notify_one();
        let mut changes = self.replicas.subscribe();
        let _ = tokio::time::timeout(wait, changes.wait_for(|list| !list.is_empty())).await;
        self.pick(avoid).ok_or_else(|| Status::unavailable("the backend's host name resolves to no address"))
    }

    /// Every address, waiting up to `wait` for a first lookup as [`Balancer::choose`] does.
    pub(super) async fn all(&self, wait: Duration) -> Result<Arc<[Arc<Replica>]>, Status> {
        self.choose(None, wait).await?;
        Ok(self.replicas.borrow().clone())
    }

    /// Starts accounting one attempt on `replica`; finish it with [`Attempt::finish`] (dropped unfinished, it counts
    /// as timed out).
    pub(super) fn attempt(self: &Arc<Self>, replica: &Arc<Replica>) -> Attempt {
        Attempt { balancer: Arc::clone(self), replica: Arc::clone(replica), finished: false }
    }

    fn record(&self, replica: &Replica, outcome: Result<(), Code>) {
        replica.metrics.export(outcome.is_ok());
        let Ok(mut health) = replica.health.lock() else { return };
        match outcome {
            Ok(()) => *health = Health::default(),
            // A retryable failure says the address is down, overloaded or restarting: let the others take the load.
            Err(code) if is_retryable(code, true) => {
                health.consecutive_failures = health.consecutive_failures.saturating_add(1);
                let doublings = health.consecutive_failures.saturating_sub(1).min(6);
                let cooldown = (FIRST_COOLDOWN * 2u32.pow(doublings)).min(MAX_COOLDOWN);
                health.cooling_until = Some(Instant::now() + cooldown);
                drop(health);
                tracing::debug!(backend = %self.label, address = %replica.addr, ?code, ?cooldown, "backend address failed, cooling down");
                // Perhaps it is gone (a pod deleted): look again rather than wait for the interval.
                self.lookup_now.notify_one();
            }
            // The data's fault (INVALID_ARGUMENT and the like), not the address's.
            Err(_) => {}
        }
    }
}

/// One attempt on one address, accounted for when finished or dropped.
pub(super) struct Attempt {
    balancer: Arc<Balancer>,
    replica: Arc<Replica>,
    finished: bool,
}

impl Attempt {
    /// Records the attempt's outcome.
    pub(super) fn finish(mut self, outcome: Result<(), Code>) {
        self.finished = true;
        self.balancer.record(&self.replica, outcome);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.finished {
            // Cancelled by the attempt timeout: the address did not answer in time.
            self.balancer.record(&self.replica, Err(Code::DeadlineExceeded));
        }
    }
}

async fn resolve_loop(balancer: Weak<Balancer>) {
    let mut last_error: Option<String> = None;
    loop {
        let Some(b) = balancer.upgrade() else { return };
        let started = Instant::now();
        match b.resolve_once().await {
            Ok(()) => {
                if last_error.take().is_some() {
                    tracing::info!(backend = %b.label, "backend host name resolves again");
                }
            }
            Err(e) => {
                // One line per change of error, not one per interval.
                if last_error.as_deref() != Some(e.as_str()) {
                    let kept = b.replicas.borrow().len();
                    tracing::warn!(backend = %b.label, host = %b.host, kept, "cannot resolve the backend's host name: {e}");
                    last_error = Some(e);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(b.interval) => {}
            () = b.lookup_now.notified() => {
                tokio::time::sleep_until(started + MIN_LOOKUP_GAP.min(b.interval)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
