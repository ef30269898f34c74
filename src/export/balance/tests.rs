use super::*;

fn balancer(addrs: &[&str]) -> Arc<Balancer> {
    let connect: Connect =
        Box::new(|addr| tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy());
    let b = Balancer::new("b", "127.0.0.1", 1, Duration::from_secs(5), Resolver::system(), connect, Telemetry::new());
    b.update(addrs.iter().map(|a| a.parse().unwrap()).collect());
    b
}

fn picks(b: &Balancer, n: usize) -> Vec<String> {
    (0..n).map(|_| b.pick(None).unwrap().addr.to_string()).collect()
}

#[tokio::test]
async fn round_robin_gives_every_address_the_same_share() {
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1", "[::1]:1"]);
    let mut got = picks(&b, 300);
    got.sort();
    got.dedup_by(|a, b| a == b);
    assert_eq!(got.len(), 3);
    for addr in ["127.0.0.1:1", "127.0.0.2:1", "[::1]:1"] {
        assert_eq!(picks(&b, 300).iter().filter(|a| *a == addr).count(), 100);
    }
}

#[tokio::test]
async fn a_retry_avoids_the_address_that_just_failed() {
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1"]);
    let failed: SocketAddr = "127.0.0.1:1".parse().unwrap();
    for _ in 0..10 {
        assert_ne!(b.pick(Some(failed)).unwrap().addr, failed);
    }
    // With one address there is no other: it is retried.
    let one = balancer(&["127.0.0.1:1"]);
    assert_eq!(one.pick(Some(failed)).unwrap().addr, failed);
}

#[tokio::test(start_paused = true)]
async fn a_failing_address_cools_down_and_comes_back() {
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1"]);
    let bad = b.pick(None).unwrap();
    b.attempt(&bad).finish(Err(Code::Unavailable));
    assert!(picks(&b, 10).iter().all(|a| *a != bad.addr.to_string()));
    tokio::time::advance(FIRST_COOLDOWN + Duration::from_millis(1)).await;
    assert!(picks(&b, 10).contains(&bad.addr.to_string()));
    // A second failure in a row cools it for twice as long.
    b.attempt(&bad).finish(Err(Code::Unavailable));
    tokio::time::advance(FIRST_COOLDOWN + Duration::from_millis(1)).await;
    assert!(picks(&b, 10).iter().all(|a| *a != bad.addr.to_string()));
    tokio::time::advance(FIRST_COOLDOWN).await;
    assert!(picks(&b, 10).contains(&bad.addr.to_string()));
    // The data's fault does not cool the address; a timeout (attempt dropped unfinished) does.
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1"]);
    let r = b.pick(None).unwrap();
    b.attempt(&r).finish(Err(Code::InvalidArgument));
    assert!(picks(&b, 10).contains(&r.addr.to_string()));
    drop(b.attempt(&r));
    assert!(picks(&b, 10).iter().all(|a| *a != r.addr.to_string()));
}

#[tokio::test(start_paused = true)]
async fn when_every_address_cools_down_they_are_still_tried() {
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1"]);
    for r in [b.pick(None).unwrap(), b.pick(None).unwrap()] {
        b.attempt(&r).finish(Err(Code::Unavailable));
    }
    let mut got = picks(&b, 4);
    got.sort();
    assert_eq!(got, ["127.0.0.1:1", "127.0.0.1:1", "127.0.0.2:1", "127.0.0.2:1"]);
}

#[tokio::test]
async fn an_update_keeps_the_channels_of_staying_addresses_and_drops_the_others() {
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1"]);
    let kept = b.replicas.borrow().iter().find(|r| r.addr.to_string() == "127.0.0.2:1").cloned().unwrap();
    let gone = b.replicas.borrow().iter().find(|r| r.addr.to_string() == "127.0.0.1:1").cloned().unwrap();
    b.update(vec!["127.0.0.2:1".parse().unwrap(), "127.0.0.3:1".parse().unwrap(), "127.0.0.3:1".parse().unwrap()]);
    assert_eq!(b.addresses().len(), 2);
    assert!(b.replicas.borrow().iter().any(|r| Arc::ptr_eq(r, &kept)));
    assert!(!b.replicas.borrow().iter().any(|r| Arc::ptr_eq(r, &gone)));
    assert!(picks(&b, 10).iter().all(|a| a != "127.0.0.1:1"));
}

#[tokio::test(start_paused = true)]
async fn a_cooling_address_s_turns_are_shared_by_all_the_others() {
    let b = balancer(&["127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1"]);
    let bad = b.replicas.borrow()[1].clone();
    b.attempt(&bad).finish(Err(Code::Unavailable));
    let got = picks(&b, 100);
    let first = got.iter().filter(|a| *a == "127.0.0.1:1").count();
    let third = got.iter().filter(|a| *a == "127.0.0.3:1").count();
    assert_eq!((first, third), (50, 50));
}

#[tokio::test]
async fn a_name_is_resolved_through_the_system_resolver() {
    let connect: Connect =
        Box::new(|addr| tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy());
    let b =
        Balancer::new("b", "localhost", 4317, Duration::from_secs(5), Resolver::system(), connect, Telemetry::new());
    let r = b.choose(None, Duration::from_secs(5)).await.unwrap();
    assert!(r.addr.ip().is_loopback(), "{}", r.addr);
    assert_eq!(r.addr.port(), 4317);
}

/// A name's addresses as a table the test edits, and how often it was asked.
#[derive(Clone)]
struct Table {
    answer: Arc<Mutex<std::io::Result<Vec<SocketAddr>>>>,
    lookups: Arc<AtomicUsize>,
}

impl Table {
    fn new(addrs: &[&str]) -> Table {
        let t = Table { answer: Arc::new(Mutex::new(Ok(Vec::new()))), lookups: Arc::default() };
        t.set(addrs);
        t
    }

    fn set(&self, addrs: &[&str]) {
        *self.answer.lock().unwrap() = Ok(addrs.iter().map(|a| a.parse().unwrap()).collect());
    }

    fn fail(&self) {
        *self.answer.lock().unwrap() = Err(std::io::Error::other("SERVFAIL"));
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::Relaxed)
    }

    fn resolver(&self) -> Resolver {
        let t = self.clone();
        Resolver::from_fn(move |host, port| {
            assert_eq!((host, port), ("otel.test", 4317));
            t.lookups.fetch_add(1, Ordering::Relaxed);
            match &*t.answer.lock().unwrap() {
                Ok(addrs) => Ok(addrs.clone()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            }
        })
    }
}

const INTERVAL: Duration = Duration::from_secs(5);

fn named(table: &Table) -> Arc<Balancer> {
    let connect: Connect =
        Box::new(|addr| tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy());
    Balancer::new("b", "otel.test", 4317, INTERVAL, table.resolver(), connect, Telemetry::new())
}

/// The first attempt, made before the first answer, asked for an early lookup too: let it pass (a second later).
async fn first_answer(b: &Balancer) {
    b.choose(None, Duration::from_secs(1)).await.unwrap();
    tokio::time::advance(MIN_LOOKUP_GAP + Duration::from_millis(1)).await;
    settle().await;
}

/// Lets the resolver task run what is due at the current (paused) instant.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn sorted(b: &Balancer) -> Vec<String> {
    let mut a: Vec<String> = b.addresses().iter().map(ToString::to_string).collect();
    a.sort();
    a
}

#[tokio::test(start_paused = true)]
async fn a_name_is_looked_up_again_every_interval_and_its_changes_apply_then() {
    let table = Table::new(&["10.0.0.1:4317", "[fd00::1]:4317"]);
    let b = named(&table);
    first_answer(&b).await;
    assert_eq!(sorted(&b), ["10.0.0.1:4317", "[fd00::1]:4317"], "IPv4 and IPv6 addresses alike");
    // Spread over both, round-robin.
    let got = picks(&b, 10);
    assert_eq!(got.iter().filter(|a| *a == "10.0.0.1:4317").count(), 5);
    let first = table.lookups();

    table.set(&["10.0.0.2:4317", "[fd00::1]:4317"]);
    tokio::time::advance(INTERVAL - Duration::from_millis(10)).await;
    settle().await;
    assert_eq!(table.lookups(), first, "not before the interval");
    assert!(picks(&b, 10).contains(&"10.0.0.1:4317".to_string()));
    tokio::time::advance(Duration::from_millis(20)).await;
    settle().await;
    assert_eq!(table.lookups(), first + 1, "once per interval");
    assert_eq!(sorted(&b), ["10.0.0.2:4317", "[fd00::1]:4317"]);
    assert!(!picks(&b, 10).contains(&"10.0.0.1:4317".to_string()), "a removed address gets no new attempt");
}

#[tokio::test(start_paused = true)]
async fn a_failed_or_empty_lookup_keeps_the_known_addresses() {
    let table = Table::new(&["10.0.0.1:4317", "10.0.0.2:4317"]);
    let b = named(&table);
    b.choose(None, Duration::from_secs(1)).await.unwrap();
    table.fail();
    tokio::time::advance(INTERVAL + Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(sorted(&b), ["10.0.0.1:4317", "10.0.0.2:4317"]);
    table.set(&[]);
    tokio::time::advance(INTERVAL).await;
    settle().await;
    assert_eq!(sorted(&b), ["10.0.0.1:4317", "10.0.0.2:4317"]);
    table.set(&["10.0.0.3:4317"]);
    tokio::time::advance(INTERVAL).await;
    settle().await;
    assert_eq!(sorted(&b), ["10.0.0.3:4317"], "and the next good answer applies");
}

#[tokio::test(start_paused = true)]
async fn a_failing_address_brings_the_next_lookup_forward_but_at_most_one_a_second() {
    let table = Table::new(&["10.0.0.1:4317", "10.0.0.2:4317"]);
    let b = named(&table);
    first_answer(&b).await;
    let first = table.lookups();
    // Pod 1 is deleted: its address fails, and the name no longer has it.
    table.set(&["10.0.0.2:4317"]);
    let gone = b.replicas.borrow().iter().find(|r| r.addr.to_string() == "10.0.0.1:4317").cloned().unwrap();
    b.attempt(&gone).finish(Err(Code::Unavailable));
    settle().await;
    assert_eq!(table.lookups(), first, "not sooner than a second after the last lookup");
    tokio::time::advance(MIN_LOOKUP_GAP + Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(table.lookups(), first + 1, "a second after, not an interval after");
    assert_eq!(sorted(&b), ["10.0.0.2:4317"]);
    // Failures in a burst ask for one lookup, not one each.
    let left = b.pick(None).unwrap();
    for _ in 0..5 {
        b.attempt(&left).finish(Err(Code::Unavailable));
    }
    tokio::time::advance(MIN_LOOKUP_GAP + Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(table.lookups(), first + 2);
}

#[tokio::test(start_paused = true)]
async fn a_name_without_addresses_yet_makes_an_attempt_wait_for_the_first_answer() {
    let table = Table::new(&[]);
    let b = named(&table);
    let e = b.choose(None, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    table.set(&["10.0.0.9:4317"]);
    // The early lookup the failed choice asked for comes after the one-second gap.
    let r = b.choose(None, Duration::from_secs(2)).await.unwrap();
    assert_eq!(r.addr.to_string(), "10.0.0.9:4317");
}
