//! The binary on SIGTERM: stops accepting, finishes in-flight requests (their data delivered), exits 0.

use std::time::Duration;

use crate::common::process::BridgeProcess;
use crate::common::*;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let backend = MockBackend::start().await;
    backend.always(Action::Delay(Duration::from_millis(700), Box::new(Action::Ok(None))));
    let mut bridge = BridgeProcess::start(&["--backend", &backend.url()]).await;
    let url = bridge.url("/v1/traces");
    let in_flight =
        tokio::spawn(async move { post(&url, "application/x-protobuf", spans(1, 5).encode_to_vec()).await });
    backend.wait_calls(1).await;
    let status = bridge.terminate(Duration::from_secs(20)).await;

    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "the in-flight request finished: {}", answer.text());
    assert_eq!(backend.span_ids().len(), 5, "and its data was delivered");
    assert!(status.success(), "exit status {status}");
    assert!(tokio::net::TcpStream::connect(bridge.addr).await.is_err(), "no longer accepting");
}
