//! The `debug` backend prints each request as one OTLP/JSON line on stdout, even when requests share a batch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use common::*;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_json_line_even_when_batched() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_otlp-bridge"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", "127.0.0.1:0", "--backend", "debug"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
        }
    }
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the bridge did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://127.0.0.1:{port}/v1/traces");
    let posts: Vec<_> = (0..20u64)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(
                async move { post(&url, "application/x-protobuf", spans(i * 10, 2).encode_to_vec()).await.status },
            )
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.unwrap(), 200);
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut guard = Kill(child);
    Command::new("kill").args(["-TERM", &guard.0.id().to_string()]).status().unwrap();
    let _ = guard.0.wait();
    let mut text = String::new();
    stdout.read_to_string(&mut text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "one line per request:\n{text}");
    for line in lines {
        let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            otlp_bridge::json::decode(line.as_bytes()).unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 2);
    }
}
