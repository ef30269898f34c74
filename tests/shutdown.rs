//! The binary on SIGTERM: stops accepting, finishes in-flight requests (their data delivered), exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use common::*;
use prost::Message;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let backend = MockBackend::start().await;
    backend.always(Action::Delay(Duration::from_millis(700), Box::new(Action::Ok(None))));
    let (http, admin) = (free_port(), free_port());
    /// Kills the bridge if the test fails before it exits, so no process outlives the test.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_otlp-bridge"))
        .args(["--listen", &format!("127.0.0.1:{http}"), "--metrics-listen", &format!("127.0.0.1:{admin}")])
        .args(["--backend", &backend.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", http)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the bridge did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://127.0.0.1:{http}/v1/traces");
    let in_flight =
        tokio::spawn(async move { post(&url, "application/x-protobuf", spans(1, 5).encode_to_vec()).await });
    backend.wait_calls(1).await;
    let killed = Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    assert!(killed.success());

    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "the in-flight request finished: {}", answer.text());
    assert_eq!(backend.span_ids().len(), 5, "and its data was delivered");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the bridge did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", http)).await.is_err(), "no longer accepting");
}
