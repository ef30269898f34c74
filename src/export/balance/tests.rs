use super::*;

fn balancer(addrs: &[&str]) -> Arc<Balancer> {
    let connect: Connect =
        Box::new(|addr| tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy());
    let b = Balancer::new("b", "127.0.0.1", 1, Duration::from_secs(5), connect, Telemetry::new());
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
    let b = Balancer::new("b", "localhost", 4317, Duration::from_secs(5), connect, Telemetry::new());
    let r = b.choose(None, Duration::from_secs(5)).await.unwrap();
    assert!(r.addr.ip().is_loopback(), "{}", r.addr);
    assert_eq!(r.addr.port(), 4317);
}
