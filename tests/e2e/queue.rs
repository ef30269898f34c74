//! Queued mode (`--queue-dir`): 200 once the data is on disk, delivery across outages and restarts, a full queue
//! or a full disk answered 503 with Retry-After, one bridge per directory.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::common::*;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_bridge::Config;
use otlp_bridge::QueueConfig;
use prost::Message;
use tonic::Code;

fn queued(backends: &[&MockBackend], dir: &Path) -> Config {
    let mut config = config_for(backends);
    config.queue =
        Some(QueueConfig { dir: dir.to_path_buf(), max_bytes: 64 << 20, max_age: Duration::from_secs(3600) });
    config
}

/// Span ids the backend acknowledged (each once per delivery).
fn acked_spans(backend: &MockBackend) -> Vec<Vec<u8>> {
    backend
        .acked()
        .iter()
        .filter_map(|r| ExportTraceServiceRequest::decode(r.raw.clone()).ok())
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|s| s.span_id)
        .collect()
}

async fn wait_for_spans(backend: &MockBackend, expected: usize, within: Duration) -> HashSet<Vec<u8>> {
    eventually(&format!("{expected} spans delivered"), within, || async {
        let seen: HashSet<Vec<u8>> = acked_spans(backend).into_iter().collect();
        if seen.len() >= expected {
            Ok(seen)
        } else {
            Err(seen.len())
        }
    })
    .await
}

async fn send(bridge: &Bridge, first: u64, n: u64) -> Answer {
    post_pb(bridge, "/v1/traces", &spans(first, n)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_200_while_the_backend_is_down_and_delivered_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let bridge = Bridge::start(queued(&[&backend], dir.path())).await;
    for i in 0..20 {
        let answer = send(&bridge, i * 10, 10).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(acked_spans(&backend).len(), 0, "nothing delivered while down");
    assert_eq!(get(&format!("http://{}/ready", bridge.admin)).await.status, 200, "the queue accepts data: ready");
    assert!(bridge.metric("otlp_bridge_queue_items", &[]).await >= 1.0);
    backend.always(Action::Ok(None));
    let seen = wait_for_spans(&backend, 200, Duration::from_secs(20)).await;
    assert_eq!(seen.len(), 200, "every span delivered after the outage");
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_backend_down_the_other_keeps_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (MockBackend::start().await, MockBackend::start().await);
    down.always(Action::fail(Code::Unavailable, "down"));
    let bridge = Bridge::start(queued(&[&up, &down], dir.path())).await;
    for i in 0..10 {
        assert_eq!(send(&bridge, i * 10, 10).await.status, 200);
        let seen = wait_for_spans(&up, (i as usize + 1) * 10, Duration::from_secs(10)).await;
        assert_eq!(seen.len(), (i as usize + 1) * 10, "the healthy backend is not held back");
    }
    assert_eq!(acked_spans(&down).len(), 0);
    down.always(Action::Ok(None));
    assert_eq!(wait_for_spans(&down, 100, Duration::from_secs(20)).await.len(), 100, "the other catches up");
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_data_survives_a_restart_and_is_delivered_by_the_next_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let bridge = Bridge::start(queued(&[&backend], dir.path())).await;
    for i in 0..5 {
        assert_eq!(send(&bridge, i * 10, 10).await.status, 200);
    }
    bridge.shutdown().await;
    backend.always(Action::Ok(None));
    let bridge = Bridge::start(queued(&[&backend], dir.path())).await;
    assert_eq!(wait_for_spans(&backend, 50, Duration::from_secs(20)).await.len(), 50);
    assert!(bridge.metric("otlp_bridge_queue_replayed_records_total", &[]).await >= 5.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_bridge_on_the_same_directory_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    let first = Bridge::start(queued(&[&backend], dir.path())).await;
    assert_eq!(send(&first, 0, 1).await.status, 200, "the first one runs");
    let listeners = otlp_bridge::Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        grpc: None,
    };
    let second = otlp_bridge::run(queued(&[&backend], dir.path()), listeners, std::future::pending());
    let error = tokio::time::timeout(Duration::from_secs(10), second).await.unwrap().unwrap_err();
    assert!(error.to_string().contains("in use by another otlp-bridge"), "{error}");
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_and_accepts_again_once_drained() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let mut config = queued(&[&backend], dir.path());
    config.queue.as_mut().unwrap().max_bytes = 1 << 20;
    let bridge = Bridge::start(config).await;
    let mut accepted = 0u64;
    let refused = loop {
        let answer = send(&bridge, accepted * 100, 100).await;
        if answer.status != 200 {
            break answer;
        }
        accepted += 1;
        assert!(accepted < 10_000, "the queue never filled");
    };
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    assert!(refused.text().contains("--queue-max-bytes"), "{}", refused.text());
    assert!(bridge.metric("otlp_bridge_queue_refused_requests_total", &["reason=\"full\""]).await >= 1.0);
    backend.always(Action::Ok(None));
    let seen = wait_for_spans(&backend, accepted as usize * 100, Duration::from_secs(30)).await;
    assert_eq!(seen.len() as u64, accepted * 100, "everything answered 200 was delivered");
    eventually("the drained queue accepts again", Duration::from_secs(30), || async {
        let answer = send(&bridge, 1_000_000, 100).await;
        if answer.status == 200 {
            Ok(())
        } else {
            Err(answer.text())
        }
    })
    .await;
    bridge.shutdown().await;
}

/// A tmpfs of 2 MiB fills before `--queue-max-bytes`: the disk itself is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_never_corrupts_and_recovers_when_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: skipped, mounting a tmpfs needs root");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let bridge = Bridge::start(queued(&[&backend], dir.path())).await;
    let mut accepted = Vec::new();
    let mut refusals = 0;
    for i in 0..400u64 {
        let answer = send(&bridge, i * 100, 100).await;
        match answer.status {
            200 => accepted.push(i),
            503 => {
                assert!(answer.header("retry-after").is_some());
                refusals += 1;
                if refusals > 3 {
                    break;
                }
            }
            other => panic!("a full disk must be 503, got {other}: {}", answer.text()),
        }
    }
    assert!(refusals > 0, "the 2 MiB disk filled");
    assert!(bridge.metric("otlp_bridge_queue_refused_requests_total", &["reason=\"no_space\""]).await >= 1.0);
    backend.always(Action::Ok(None));
    let expected = accepted.len() * 100;
    assert_eq!(wait_for_spans(&backend, expected, Duration::from_secs(30)).await.len(), expected);
    eventually("accepting again once delivered data freed the disk", Duration::from_secs(30), || async {
        let answer = send(&bridge, 10_000_000, 100).await;
        if answer.status == 200 {
            Ok(())
        } else {
            Err(answer.text())
        }
    })
    .await;
    bridge.shutdown().await;
    // Nothing corrupt: a restart on the same directory quarantines nothing.
    let bridge = Bridge::start(queued(&[&backend], dir.path())).await;
    assert_eq!(send(&bridge, 20_000_000, 1).await.status, 200);
    assert_eq!(bridge.metric("otlp_bridge_queue_quarantined_records_total", &[]).await, 0.0);
    bridge.shutdown().await;
}
