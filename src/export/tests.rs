//! The exporter against fake outputs, in paused time: the retry path speaks OTLP's vocabulary (retryable with a
//! delay, rejected for good, partial success) whatever the output is, and keeps the output's own cause.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::output::{Attempt, Memo, ProbeFuture, SendFuture};
use super::*;

/// Answers each attempt with the next scripted outcome, and records when each came and what its memo held.
#[derive(Debug)]
struct Scripted {
    script: Mutex<Vec<Result<PartialSuccess, SendError>>>,
    attempts: AtomicU32,
    seen: Mutex<Vec<(Duration, Option<u32>)>>,
    start: Instant,
}

impl Scripted {
    fn new(mut script: Vec<Result<PartialSuccess, SendError>>) -> Arc<Scripted> {
        script.reverse();
        Arc::new(Scripted {
            script: Mutex::new(script),
            attempts: AtomicU32::new(0),
            seen: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }
}

impl Output for Scripted {
    fn label(&self) -> &str {
        "fake"
    }

    fn send<'a>(&'a self, _attempt: Attempt<'a>, memo: &'a mut Memo) -> SendFuture<'a> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        let previous = memo.as_ref().and_then(|m| m.downcast_ref::<u32>()).copied();
        *memo = Some(Box::new(n));
        self.seen.lock().unwrap().push((self.start.elapsed(), previous));
        let next = self.script.lock().unwrap().pop().unwrap_or(Ok(PartialSuccess::default()));
        Box::pin(std::future::ready(next))
    }

    fn probe(&self, _kind: SignalKind, _timeout: Duration) -> ProbeFuture<'_> {
        Box::pin(std::future::ready(Err(Problem::new(ProblemKind::Unreachable, "is a fake"))))
    }

    fn describe(&self) -> String {
        "a fake".into()
    }
}

fn exporter(outputs: Vec<Arc<dyn Output>>) -> Exporter {
    let config = Config {
        retry: RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(6),
        },
        ..Config::default()
    };
    Exporter::new(SignalKind::Traces, outputs, &config, Telemetry::new())
}

fn budget() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(6))
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_the_memo_kept_and_the_asked_delay_honoured() {
    let fake = Scripted::new(vec![
        Err(SendError::retryable(Code::Unavailable, "down")),
        Err(SendError::retryable(Code::ResourceExhausted, "slow down").after(Some(Duration::from_secs(2)))),
        Ok(PartialSuccess::default()),
    ]);
    let outcome = exporter(vec![fake.clone()]).export(Payload::default(), 3, budget()).await;
    assert_eq!(outcome.unwrap(), PartialSuccess::default());
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|(_, memo)| *memo).collect::<Vec<_>>(), [None, Some(0), Some(1)]);
    assert!(seen[2].0 - seen[1].0 >= Duration::from_secs(2), "the receiver's delay is waited: {seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_rejection_is_final_at_once_and_keeps_its_code_and_cause() {
    let cause = std::io::Error::other("bucket policy");
    let fake = Scripted::new(vec![Err(SendError::rejected(Code::PermissionDenied, "refused").source(cause))]);
    let e = exporter(vec![fake.clone()]).export(Payload::default(), 3, budget()).await.unwrap_err();
    assert_eq!(fake.attempts.load(Ordering::SeqCst), 1);
    assert!(!e.is_retryable() && e.code() == Code::PermissionDenied, "{e:?}");
    assert!(e.detail().contains("refused: bucket policy"), "{}", e.detail());
}

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_past_the_budget_tells_the_client_when_to_come_back() {
    let script = (0..100).map(|_| Err(SendError::retryable(Code::Unavailable, "down"))).collect();
    let fake = Scripted::new(script);
    let started = Instant::now();
    let e = exporter(vec![fake.clone()]).export(Payload::default(), 3, budget()).await.unwrap_err();
    assert!(e.is_retryable() && e.retry_after().is_some(), "{e:?}");
    assert!(started.elapsed() <= Duration::from_secs(6), "{:?}", started.elapsed());
    assert!(fake.attempts.load(Ordering::SeqCst) > 2);
}

#[tokio::test(start_paused = true)]
async fn fan_out_combines_a_partial_success_with_a_delivery() {
    let partial = PartialSuccess { rejected: 2, message: "two spans too old".into() };
    let a = Scripted::new(vec![Ok(partial.clone())]);
    let b = Scripted::new(vec![Ok(PartialSuccess::default())]);
    let outcome = exporter(vec![a, b]).export(Payload::default(), 3, budget()).await.unwrap();
    assert_eq!(outcome, partial);
}

#[tokio::test(start_paused = true)]
async fn an_impossible_partial_success_is_clamped_to_what_was_sent() {
    let fake = Scripted::new(vec![Ok(PartialSuccess { rejected: 99, message: String::new() })]);
    let outcome = exporter(vec![fake]).export(Payload::default(), 3, budget()).await.unwrap();
    assert_eq!(outcome.rejected, 3);
}

#[test]
fn every_url_is_claimed_by_exactly_the_kind_meant_for_it() {
    assert_eq!(kind_for("http://h:4317").map(|k| k.name), Some("otlp_grpc"));
    assert_eq!(kind_for("HTTPS://h:4317").map(|k| k.name), Some("otlp_grpc"));
    assert_eq!(kind_for("debug").map(|k| k.name), Some("debug"));
    assert!(kind_for("ftp://h").is_none());
    for kind in KINDS {
        assert!(!kind.name.is_empty() && !kind.usage.is_empty());
    }
}
