use super::*;

fn backend_error(code: Code, retry_after: Option<u64>) -> ExportError {
    let error = if crate::retry::is_retryable(code, true) {
        SendError::retryable(code, format!("{code:?}"))
    } else {
        SendError::rejected(code, format!("{code:?}"))
    };
    ExportError::Backend {
        backend: "b".into(),
        error: Box::new(error),
        retry_after: retry_after.map(Duration::from_secs),
        attempts: 1,
    }
}

#[test]
fn combining_successes_keeps_the_largest_rejection_and_all_messages() {
    let outcomes = || {
        [
            Ok(PartialSuccess { rejected: 2, message: "a".into() }),
            Ok(PartialSuccess::default()),
            Ok(PartialSuccess { rejected: 1, message: "b".into() }),
        ]
    };
    let fan_out = combine(outcomes(), Rejections::Overlap).unwrap();
    assert_eq!(fan_out, PartialSuccess { rejected: 2, message: "a; b".into() });
    let chunks = combine(outcomes(), Rejections::Disjoint).unwrap();
    assert_eq!(chunks, PartialSuccess { rejected: 3, message: "a; b".into() });
}

#[test]
fn client_messages_name_no_backend_address() {
    let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp connect error: 10.1.2.3:4317: refused");
    let error =
        SendError::retryable(Code::Unavailable, "backend http://otel-gw.internal:4317 is not reachable").source(cause);
    let m = client_message(&error, "http://otel-gw.internal:4317", 3);
    assert!(!m.contains("otel-gw") && !m.contains("10.1.2.3") && !m.contains("4317"), "{m}");
    assert!(m.contains("Unavailable") && m.contains("retry later") && m.contains("3 attempt(s)"), "{m}");
    let m = redact_addresses("connect to [::1]:4317 failed at 12:30", "http://localhost:4317");
    assert_eq!(m, "connect to (address) failed at 12:30");
}

#[test]
fn impossible_rejected_counts_are_clamped_to_what_was_sent_and_said_so() {
    for (claimed, counted) in [(1000, 2), (-5, 0), (i64::MAX, 2), (i64::MIN, 0)] {
        let p = sane_partial_success(PartialSuccess { rejected: claimed, message: "m".into() }, 2, "b");
        assert_eq!(p.rejected, counted, "{claimed}");
        assert!(p.message.starts_with("m (") && p.message.contains(&claimed.to_string()), "{}", p.message);
    }
    let honest = PartialSuccess { rejected: 1, message: "one bad span".into() };
    assert_eq!(sane_partial_success(honest.clone(), 2, "b"), honest, "a plausible count is kept as it is");
}

#[test]
fn a_retryable_failure_wins_so_no_backend_loses_data() {
    let e = combine(
        [
            Ok(PartialSuccess::default()),
            Err(backend_error(Code::InvalidArgument, None)),
            Err(backend_error(Code::Unavailable, Some(2))),
            Err(backend_error(Code::Unavailable, Some(5))),
        ],
        Rejections::Overlap,
    )
    .unwrap_err();
    assert_eq!((e.code(), e.retry_after()), (Code::Unavailable, Some(Duration::from_secs(5))));
}

#[test]
fn a_rejection_stays_one_and_its_cause_reaches_the_log() {
    let cause = std::io::Error::other("disk on fire");
    let e = ExportError::Backend {
        backend: "archive".into(),
        error: Box::new(SendError::rejected(Code::PermissionDenied, "upload refused").source(cause)),
        retry_after: None,
        attempts: 1,
    };
    assert!(!e.is_retryable());
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.detail().contains("upload refused: disk on fire"), "{}", e.detail());
    assert!(std::error::Error::source(&e).is_some(), "the output's error is the source");
}
