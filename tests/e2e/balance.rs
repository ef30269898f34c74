//! Balancing over every address of a backend host name, end to end: the name resolves to several recording backends
//! on distinct loopback addresses through a resolver table injected in the configuration (`Config::backend_resolver`),
//! and `localhost` through the system resolver. The timing of re-resolution (the interval, the early lookup after a
//! failure) is asserted in paused time in `src/export/balance/tests.rs`; here only "eventually".

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use otlp_bridge::{BackendTarget, Config, Resolver};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A host name whose addresses the test sets: the bridge's resolver is a table ([`otlp_bridge::Resolver::from_fn`]),
/// so nothing outside the test changes and tests running side by side cannot see each other's names.
#[derive(Clone)]
struct HostsName {
    name: String,
    ips: Arc<Mutex<Vec<IpAddr>>>,
}

impl HostsName {
    fn new(test: &str, ips: &[IpAddr]) -> HostsName {
        HostsName { name: format!("{test}.otlp-bridge-test.invalid"), ips: Arc::new(Mutex::new(ips.to_vec())) }
    }

    fn add(&self, ip: IpAddr) {
        self.ips.lock().unwrap().push(ip);
    }

    fn remove(&self, ip: IpAddr) {
        self.ips.lock().unwrap().retain(|i| *i != ip);
    }

    /// The resolver that knows this name (and no other).
    fn resolver(&self) -> Resolver {
        let me = self.clone();
        Resolver::from_fn(move |host, port| {
            if host != me.name {
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: unknown name")));
            }
            Ok(me.ips.lock().unwrap().iter().map(|ip| SocketAddr::new(*ip, port)).collect())
        })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Listeners on one port shared by every address (a name's addresses share the URL's port).
async fn listeners(ips: &[IpAddr]) -> (u16, Vec<TcpListener>) {
    'again: for _ in 0..20 {
        let first = TcpListener::bind(SocketAddr::new(ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut all = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind(SocketAddr::new(*ip, port)).await {
                Ok(l) => all.push(l),
                Err(_) => continue 'again,
            }
        }
        return (port, all);
    }
    panic!("no port free on every address");
}

/// Killable recording backends on `ips`, all on one port.
async fn replicas(ips: &[IpAddr]) -> (u16, Vec<MockBackend>) {
    let (port, ls) = listeners(ips).await;
    let mut backends = Vec::new();
    for l in ls {
        backends.push(MockBackend::start_killable_on(l).await);
    }
    (port, backends)
}

fn config(name: &HostsName, url: String, resolve_interval: Duration) -> Config {
    let mut config = config_for(&[]).with_backends(vec![BackendTarget::url(url)]);
    config.backend_resolver = name.resolver();
    // One export per request, so that shares are counted in requests.
    config.batch = None;
    config.backend_resolve_interval = resolve_interval;
    config
}

fn span_counts(backends: &[MockBackend]) -> HashMap<Vec<u8>, usize> {
    let mut seen = HashMap::new();
    for b in backends {
        for id in b.span_ids() {
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    seen
}

/// Posts `requests` trace requests of `per` spans, `parallel` at a time; returns each answer's status and latency.
async fn load(bridge: &Bridge, requests: u64, per: u64, parallel: usize) -> Vec<(u16, Duration)> {
    let url = bridge.url("/v1/traces");
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (url, next) = (url.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return answers;
                }
                let started = Instant::now();
                let body = prost::Message::encode_to_vec(&spans(i * per, per));
                let a = post(&url, "application/x-protobuf", body).await;
                answers.push((a.status, started.elapsed()));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test]
async fn exports_spread_evenly_over_every_ipv4_and_ipv6_address_and_each_span_arrives_once() {
    let ips = [ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3"), ip("::1")];
    let (port, backends) = replicas(&ips).await;
    let name = HostsName::new("spread", &ips);
    let url = format!("http://{}:{port}", name.name);
    let bridge = Bridge::start(config(&name, url.clone(), Duration::from_millis(200))).await;

    let (requests, per) = (400u64, 5u64);
    let answers = load(&bridge, requests, per, 8).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "every request delivered");

    let seen = span_counts(&backends);
    assert_eq!(seen.len() as u64, requests * per, "every span arrived");
    assert!(seen.values().all(|n| *n == 1), "no span arrived twice");
    // Round-robin: every replica's share is within 10% of the fair one (it is exact unless an attempt failed).
    let fair = requests as f64 / ips.len() as f64;
    let shares: Vec<usize> = backends.iter().map(MockBackend::calls).collect();
    eprintln!("exports per replica {:?} (fair share {fair})", shares);
    for (b, calls) in backends.iter().zip(&shares) {
        assert!((*calls as f64 - fair).abs() <= fair * 0.1, "{} got {calls} of {requests} exports", b.addr);
    }

    let metrics = bridge.metrics().await;
    assert_eq!(sum_metric(&metrics, "otlp_bridge_backend_addresses", &[&url]), 4.0, "{metrics}");
    for b in &backends {
        let address = format!("address=\"{}\"", b.addr);
        let counted = sum_metric(&metrics, "otlp_bridge_backend_address_exports_total", &[&address, "outcome=\"ok\""]);
        assert_eq!(counted, b.calls() as f64, "exports to {} counted: {metrics}", b.addr);
    }
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_replica_killed_under_load_costs_no_client_an_error_and_loses_nothing_answered() {
    let ips = [ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3")];
    let (port, backends) = replicas(&ips).await;
    let name = HostsName::new("kill", &ips);
    let bridge = Bridge::start(config(&name, format!("http://{}:{port}", name.name), Duration::from_millis(200))).await;

    let (requests, per) = (600u64, 5u64);
    let victim = backends[1].clone();
    let killer = tokio::spawn(async move {
        // Mid-load: once the victim has taken its share of the first 150 exports.
        victim.wait_calls(50).await;
        victim.kill();
        Instant::now()
    });
    let started = Instant::now();
    let answers = load(&bridge, requests, per, 8).await;
    let killed_at = killer.await.unwrap();
    let failed: Vec<_> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "clients saw errors: {failed:?}");

    let seen = span_counts(&backends);
    let missing = (0..requests * per).filter(|i| !seen.contains_key(i.to_be_bytes().as_slice())).count();
    assert_eq!(missing, 0, "spans answered 200 but not delivered");
    let twice = seen.values().filter(|n| **n > 1).count();
    let slowest = answers.iter().map(|(_, d)| *d).max().unwrap();
    eprintln!(
        "killed {:?} after start; exports per replica {:?}; spans delivered twice (in flight at the kill, retried): \
         {twice}; slowest answer {slowest:?}",
        killed_at - started,
        backends.iter().map(MockBackend::calls).collect::<Vec<_>>()
    );
    let victim = format!("address=\"{}\"", backends[1].addr);
    let failed_attempts =
        bridge.metric("otlp_bridge_backend_address_exports_total", &[&victim, "outcome=\"failed\""]).await;
    eprintln!("failed attempts on the killed replica (each retried elsewhere): {failed_attempts}");
    // The survivors shared the rest of the load evenly (within 10% of each other).
    let (a, c) = (backends[0].calls() as f64, backends[2].calls() as f64);
    assert!(a > 150.0 && (a - c).abs() <= a.max(c) * 0.1, "survivors got {a} and {c}");
    // Still ready: two of three addresses accept.
    assert_eq!(get(&format!("http://{}/ready", bridge.admin)).await.status, 200);
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_replica_added_gets_exports_within_one_resolve_interval_and_a_removed_one_gets_none() {
    let ips = [ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.3")];
    let (port, backends) = replicas(&ips).await;
    let name = HostsName::new("churn", &ips[..2]);
    let url = format!("http://{}:{port}", name.name);
    let interval = Duration::from_millis(500);
    let bridge = Bridge::start(config(&name, url.clone(), interval)).await;
    let target = bridge.url("/v1/traces");

    // Steady load, one request at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (stop, target) = (Arc::clone(&stop), target.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let a = post(&target, "application/x-protobuf", prost::Message::encode_to_vec(&spans(i, 1))).await;
                assert_eq!(a.status, 200, "{}", a.text());
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            i
        })
    };
    backends[0].wait_calls(5).await;
    backends[1].wait_calls(5).await;
    assert_eq!(backends[2].calls(), 0, "not in the name yet");

    // Added: it gets exports, eventually (within one interval: the paused-time unit test says so).
    name.add(ips[2]);
    backends[2].wait_calls(1).await;

    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.unwrap();

    // Removed: once the bridge knows two addresses, the removed one gets no new export.
    name.remove(ips[0]);
    let known = "otlp_bridge_backend_addresses";
    wait_metric_at(bridge.admin, known, &[&url], "the removal seen", Duration::from_secs(30), |n| n == 2.0).await;
    let before = backends[0].calls();
    for i in 0..40 {
        assert_eq!(post_pb(&bridge, "/v1/traces", &spans(sent + i, 1)).await.status, 200);
    }
    assert_eq!(backends[0].calls(), before, "a removed address got new exports");
    assert!(backends[1].calls() >= 20 && backends[2].calls() >= 20);
    let seen = span_counts(&backends);
    assert_eq!(seen.len() as u64, sent + 40);
    bridge.shutdown().await;
}

#[tokio::test]
async fn ready_needs_one_accepting_address_of_the_name() {
    let ips = [ip("127.0.0.1"), ip("127.0.0.2")];
    let (port, backends) = replicas(&ips).await;
    let name = HostsName::new("ready", &ips);
    let bridge = Bridge::start(config(&name, format!("http://{}:{port}", name.name), Duration::from_millis(200))).await;
    let ready = || async { get(&format!("http://{}/ready", bridge.admin)).await };
    eventually("ready", Duration::from_secs(30), || async {
        let a = ready().await;
        if a.status == 200 {
            Ok(())
        } else {
            Err(a.text())
        }
    })
    .await;
    backends[0].kill();
    assert_eq!(ready().await.status, 200, "one address still accepts");
    backends[1].kill();
    let a = ready().await;
    assert_eq!(a.status, 503, "{}", a.text());
    bridge.shutdown().await;
}

#[tokio::test]
async fn https_backends_keep_the_host_name_for_tls_on_every_address() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tonic::transport::{Identity, ServerTlsConfig};

    let ips = [ip("127.0.0.1"), ip("127.0.0.2")];
    let name = HostsName::new("tls", &ips);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    // The certificate names the host only, no address: verification must use the name (SNI) on each address.
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.name.clone()]).unwrap().signed_by(&key, &ca).unwrap();
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    let (port, ls) = listeners(&ips).await;
    let mut backends = Vec::new();
    for l in ls {
        let tls = ServerTlsConfig::new().identity(Identity::from_pem(&cert_pem, &key_pem));
        backends.push(MockBackend::start_tls_on(l, tls).await);
    }
    let dir = crate::common::tls::TempDir::new("balance-tls");
    let mut config = config(&name, format!("https://{}:{port}", name.name), Duration::from_millis(200));
    config.tls.ca_file = Some(dir.write("ca.pem", ca.pem()));
    let bridge = Bridge::start(config).await;
    // The start-up probe (one empty export) takes a round-robin turn too: let it pass before counting turns.
    eventually("the start-up probe", Duration::from_secs(30), || async {
        let probes = backends.iter().map(MockBackend::probes).sum::<usize>();
        if probes > 0 {
            Ok(())
        } else {
            Err(probes)
        }
    })
    .await;
    for i in 0..10 {
        let a = post_pb(&bridge, "/v1/traces", &spans(i, 1)).await;
        assert_eq!(a.status, 200, "{}", a.text());
    }
    assert_eq!(backends.iter().map(MockBackend::calls).collect::<Vec<_>>(), [5, 5]);
    bridge.shutdown().await;
}

/// `localhost` through the system resolver, unedited: it names 127.0.0.1 and ::1 on most hosts, and exports go to
/// both. Skipped (with a message) where the host has no ::1 or `localhost` does not name it.
#[tokio::test]
async fn localhost_through_the_system_resolver_spreads_over_ipv4_and_ipv6() {
    let ips = [ip("127.0.0.1"), ip("::1")];
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED localhost_through_the_system_resolver_spreads_over_ipv4_and_ipv6: this host has no ::1");
        return;
    }
    let names: Vec<IpAddr> =
        tokio::net::lookup_host(("localhost", 1)).await.map(|a| a.map(|a| a.ip()).collect()).unwrap_or_default();
    if !ips.iter().all(|ip| names.contains(ip)) {
        eprintln!(
            "SKIPPED localhost_through_the_system_resolver_spreads_over_ipv4_and_ipv6: localhost is {names:?} here"
        );
        return;
    }
    let (port, backends) = replicas(&ips).await;
    let mut config = config_for(&[]).with_backends(vec![BackendTarget::url(format!("http://localhost:{port}"))]);
    config.batch = None;
    let bridge = Bridge::start(config).await;
    let answers = load(&bridge, 20, 1, 2).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let calls: Vec<usize> = backends.iter().map(MockBackend::calls).collect();
    assert!(calls.iter().all(|c| *c > 0), "both addresses of localhost got exports: {calls:?}");
    assert_eq!(calls.iter().sum::<usize>(), 20);
    bridge.shutdown().await;
}
