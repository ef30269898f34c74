//! Retry of one export against one output: only when the output says the failure is retryable (OTLP's vocabulary,
//! [`SendError`]), with jittered exponential backoff, never sooner than the receiver asked, and never past the
//! budget that keeps the client's answer inside its own export timeout.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;

use crate::config::RetryConfig;
use crate::export::{Problem, ProblemKind, SendError};

/// The shortest `Retry-After` we send: HTTP speaks in whole seconds, and a refusal that clears as soon as load moves
/// on (memory busy, shutting down, a slow backend) is worth retrying after about one.
pub(crate) const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);

/// The shortest attempt the budget still allows: below this a gRPC round trip cannot complete, so a last attempt
/// that short would only turn into DEADLINE_EXCEEDED.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Stop; answer the client. `retry_after` is the hint to pass on when the failure was retryable.
    GiveUp {
        /// When the client may try again (for 429/503 answers).
        retry_after: Option<Duration>,
    },
}

/// Whether OTLP allows retrying a gRPC `code` (specification, "Failures"): RESOURCE_EXHAUSTED only when the server
/// sent `RetryInfo`, because without it the server may be out of something a retry cannot bring back. The gRPC
/// output reads its answers with it; the retry loop itself only asks [`SendError::is_retryable`].
pub(crate) fn is_retryable(code: Code, has_retry_info: bool) -> bool {
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => has_retry_info,
        _ => false,
    }
}

/// Jittered exponential backoff: each delay is uniformly random in [d/2, 3d/2), d doubling up to the maximum.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    current: Duration,
    max: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// Starts at `initial`.
    pub(crate) fn new(config: &RetryConfig) -> Backoff {
        Backoff { current: config.initial_interval, max: config.max_interval, rng: fastrand::Rng::new() }
    }

    /// Deterministic jitter for tests.
    #[cfg(test)]
    pub(crate) fn with_seed(config: &RetryConfig, seed: u64) -> Backoff {
        Backoff { rng: fastrand::Rng::with_seed(seed), ..Backoff::new(config) }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        base.mul_f64(0.5 + self.rng.f64())
    }
}

/// Decides after a failure, with `left` of the retry budget remaining.
pub(crate) fn decide(backoff: &mut Backoff, error: &SendError, left: Duration) -> Decision {
    let hint = error.retry_after();
    if !error.is_retryable() {
        return Decision::GiveUp { retry_after: hint };
    }
    let delay = backoff.next_delay().max(hint.unwrap_or_default());
    if delay > left {
        // Holding the client longer would outlast its own timeout: tell it when to come back instead.
        return Decision::GiveUp { retry_after: Some(hint.unwrap_or(delay)) };
    }
    Decision::RetryAfter(delay)
}

/// The final failure of [`export_with_retry`].
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The last attempt's failure.
    pub error: SendError,
    /// When the client may retry, for retryable failures.
    pub retry_after: Option<Duration>,
    /// Attempts made.
    pub attempts: u32,
}

/// Runs `attempt(timeout)` until it succeeds, fails for good, or `deadline` (the end of the retry budget, counted
/// from when the client's request arrived, so time spent queued for an export slot counts too) would pass.
/// Without a deadline, one attempt. `on_retry` is told about each retry (for metrics and logs).
pub(crate) async fn export_with_retry<T, F, Fut>(
    config: &RetryConfig,
    attempt_timeout: Duration,
    deadline: Option<Instant>,
    mut attempt: F,
    mut on_retry: impl FnMut(&SendError, Duration),
) -> Result<T, Failure>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, SendError>>,
{
    let mut backoff = Backoff::new(config);
    let left = |now: Instant| deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
    if deadline.is_some_and(|d| Instant::now() >= d) {
        // Queued behind a slow backend for the whole budget: answer now rather than hold the client longer.
        let error = SendError::retryable(
            Code::Unavailable,
            "the backend is too slow: this data waited for an export slot for the whole retry budget",
        );
        return Err(Failure { error, retry_after: Some(backoff.next_delay().max(RETRY_AFTER_MIN)), attempts: 0 });
    }
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        // Every attempt ends inside the budget, so the client hears back in time.
        let timeout = match deadline {
            None => attempt_timeout,
            Some(_) => attempt_timeout.min(left(Instant::now()).max(MIN_ATTEMPT)),
        };
        let error = match tokio::time::timeout(timeout, attempt(timeout)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => error,
            Err(_) => SendError::retryable(Code::DeadlineExceeded, format!("no answer within {timeout:?}"))
                .problem(Problem::new(ProblemKind::Timeout, format!("did not answer within {timeout:?}"))),
        };
        match decide(&mut backoff, &error, left(Instant::now())) {
            Decision::RetryAfter(delay) => {
                on_retry(&error, delay);
                tokio::time::sleep(delay).await;
            }
            Decision::GiveUp { retry_after } => return Err(Failure { error, retry_after, attempts }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn config() -> RetryConfig {
        RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
        }
    }

    fn with_retry_info(code: Code, delay: Duration) -> SendError {
        SendError::retryable(code, "slow down").after(Some(delay))
    }

    fn unavailable() -> SendError {
        SendError::retryable(Code::Unavailable, "down")
    }

    #[test]
    fn only_the_otlp_retryable_codes_are_retried() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(is_retryable(code, false), "{code:?}");
        }
        for code in
            [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Internal, Code::Unimplemented]
        {
            assert!(!is_retryable(code, true), "{code:?}");
        }
        assert!(!is_retryable(Code::ResourceExhausted, false));
        assert!(is_retryable(Code::ResourceExhausted, true));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum() {
        let mut b = Backoff::with_seed(&config(), 7);
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = Duration::from_millis(100 * (1 << i.min(4))).min(Duration::from_secs(1));
            assert!(*d >= base / 2 && *d < base * 3 / 2, "delay {i} = {d:?} around {base:?}");
        }
    }

    #[test]
    fn a_retry_info_hint_is_waited_at_least() {
        let mut b = Backoff::with_seed(&config(), 1);
        let d = decide(&mut b, &with_retry_info(Code::Unavailable, Duration::from_secs(2)), config().max_elapsed);
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(2)));
    }

    #[test]
    fn a_hint_beyond_the_budget_gives_up_at_once_with_that_hint() {
        let mut b = Backoff::with_seed(&config(), 1);
        let status = with_retry_info(Code::ResourceExhausted, Duration::from_secs(30));
        assert_eq!(
            decide(&mut b, &status, config().max_elapsed),
            Decision::GiveUp { retry_after: Some(Duration::from_secs(30)) }
        );
    }

    #[test]
    fn a_rejection_is_not_retried() {
        let mut b = Backoff::with_seed(&config(), 1);
        let d = decide(&mut b, &SendError::rejected(Code::ResourceExhausted, "full"), config().max_elapsed);
        assert_eq!(d, Decision::GiveUp { retry_after: None });
    }

    #[tokio::test(start_paused = true)]
    async fn fails_twice_then_succeeds_within_the_budget() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let result = export_with_retry(
            &config(),
            Duration::from_secs(1),
            Some(Instant::now() + config().max_elapsed),
            |_| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(unavailable())
                    } else {
                        Ok(n)
                    }
                }
            },
            |_, _| {},
        )
        .await;
        assert_eq!(result.unwrap(), 2);
        assert!(start.elapsed() < Duration::from_secs(1), "two short backoffs: {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn always_unavailable_gives_up_inside_the_budget_with_a_retry_after() {
        let start = Instant::now();
        let err = export_with_retry(
            &config(),
            Duration::from_secs(1),
            Some(Instant::now() + config().max_elapsed),
            |_| async { Err::<(), _>(unavailable()) },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert!(start.elapsed() <= Duration::from_secs(5), "{:?}", start.elapsed());
        assert!(err.attempts > 3);
        assert!(err.retry_after.is_some());
        assert_eq!(err.error.code, Code::Unavailable);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_backend_times_out_per_attempt_and_the_total_stays_in_budget() {
        let start = Instant::now();
        let err = export_with_retry(
            &config(),
            Duration::from_secs(2),
            Some(Instant::now() + config().max_elapsed),
            |_| std::future::pending::<Result<(), SendError>>(),
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!(err.error.code, Code::DeadlineExceeded);
        assert!(start.elapsed() <= Duration::from_millis(5200), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn data_that_queued_past_its_budget_is_answered_at_once_without_an_attempt() {
        let calls = AtomicU32::new(0);
        let deadline = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        let err = export_with_retry(
            &config(),
            Duration::from_secs(1),
            Some(deadline),
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), SendError>(()) }
            },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!((calls.load(Ordering::SeqCst), err.attempts), (0, 0));
        assert_eq!(err.error.code, Code::Unavailable);
        assert!(err.retry_after.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_there_is_one_attempt() {
        let calls = AtomicU32::new(0);
        let err = export_with_retry(
            &config(),
            Duration::from_secs(1),
            None,
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(unavailable()) }
            },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!(err.attempts, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_argument_is_not_retried() {
        let calls = AtomicU32::new(0);
        let err = export_with_retry(
            &config(),
            Duration::from_secs(1),
            Some(Instant::now() + config().max_elapsed),
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(SendError::rejected(Code::InvalidArgument, "bad")) }
            },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!((calls.load(Ordering::SeqCst), err.attempts), (1, 1));
    }
}
