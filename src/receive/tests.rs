//! The chain's order before the body, and what the rescue counts, in process (the answers themselves are tested
//! against the binary in `tests/`).

use super::*;
use crate::limit::{MemoryBudget, MemoryError, UPFRONT_RESERVATION};
use crate::sink::{Sink, SinkFuture, Submission};

/// A sink no test here reaches: every request is refused or stops before its body.
struct Unreached;

impl Sink for Unreached {
    fn submit(&self, _: Submission) -> SinkFuture<'_> {
        unreachable!("no request reaches the submit step in these tests")
    }
}

fn receiver(memory: usize, tokens: Option<&str>) -> Receiver {
    let telemetry = Telemetry::new();
    Receiver {
        ingest: Arc::new(Ingest::new(Arc::new(Unreached), MemoryBudget::new(memory), Arc::clone(&telemetry), 1 << 20)),
        telemetry,
        max_body_bytes: 1 << 20,
        read_timeout: Duration::from_secs(5),
        auth: tokens.map(|t| Arc::new(auth::Tokens::from_text(t))),
        body_idle_timeout: Duration::from_secs(5),
        forward_headers: vec![http::HeaderName::from_static("x-scope-orgid")],
        grpc_warned: std::sync::atomic::AtomicBool::new(false),
        grpc_listen: None,
    }
}

/// A request head; `good` adds what every check wants (POST, JSON, the token, a printable tenant).
fn head(
    path: &str,
    length: usize,
    good: bool,
    edit: impl FnOnce(http::request::Builder) -> http::request::Builder,
) -> RequestHead {
    let mut b = Request::builder().uri(path).header("content-length", length.to_string());
    if good {
        b = b
            .method("POST")
            .header("content-type", "application/json")
            .header("authorization", "Bearer s3cret")
            .header("x-scope-orgid", "tenant-a");
    }
    let (parts, ()) = edit(b).body(()).unwrap().into_parts();
    RequestHead::parse(&parts, &[http::HeaderName::from_static("x-scope-orgid")])
}

fn refusal(r: &Receiver, head: &RequestHead) -> ReceiveError {
    match admit(r, head) {
        Ok(_) => panic!("admitted: {head:?}"),
        Err(e) => e,
    }
}

#[test]
fn route_comes_before_auth_auth_before_memory_memory_before_forwarded_headers() {
    let r = receiver(1000, Some("s3cret\n"));
    let too_big = 1 << 30;
    let bad_tenant =
        |b: http::request::Builder| b.header("x-scope-orgid", http::HeaderValue::from_bytes(b"\xff").unwrap());
    let no_token = |b: http::request::Builder| b.header("authorization", "Bearer wrong");
    let json_post = |b: http::request::Builder| b.method("POST").header("content-type", "application/json");
    // Everything wrong at once: the path speaks first.
    let e = refusal(&r, &head("/v1/nowhere", too_big, false, bad_tenant));
    assert!(matches!(e, ReceiveError::NotFound(_)), "{e:?}");
    let e = refusal(&r, &head("/v1/traces", too_big, false, bad_tenant));
    assert!(matches!(e, ReceiveError::MethodNotAllowed(_)), "{e:?}");
    let e = refusal(&r, &head("/v1/traces", too_big, false, |b| b.method("POST")));
    assert!(matches!(e, ReceiveError::UnsupportedMediaType(_)), "{e:?}");
    let e = refusal(&r, &head("/v1/traces", too_big, false, |b| no_token(bad_tenant(json_post(b)))));
    assert!(matches!(e, ReceiveError::Unauthorized(auth::AuthFailure::UnknownToken)), "{e:?}");
    let e = refusal(&r, &head("/v1/traces", too_big, true, bad_tenant));
    assert!(matches!(e, ReceiveError::Memory(MemoryError::TooLarge { .. })), "{e:?}");
    let e = refusal(&r, &head("/v1/traces", 10, true, bad_tenant));
    assert!(matches!(e, ReceiveError::ForwardHeader(ref name) if name == "x-scope-orgid"), "{e:?}");
    assert_eq!(r.ingest.budget().held(), 0, "no refusal holds memory");
}

#[test]
fn an_admitted_request_holds_its_route_upfront_reservation_and_metadata() {
    let r = receiver(1 << 20, Some("s3cret\n"));
    let admitted = admit(&r, &head("/v1/logs", 500_000, true, |b| b)).unwrap();
    assert_eq!(
        admitted.route,
        Route { kind: SignalKind::Logs, format: Format::Json, encoding: ContentEncoding::Identity }
    );
    assert_eq!(admitted.reservation.bytes(), UPFRONT_RESERVATION, "only a read buffer's worth before the body");
    assert_eq!(admitted.forwarded, vec![("x-scope-orgid".to_string(), "tenant-a".to_string())]);
    let held = admit(&r, &head("/v1/logs", 0, true, |b| b)).unwrap();
    assert_eq!(held.reservation.bytes(), 0);
    let busy = receiver(10, None);
    let _full = busy.ingest.budget().reserve(10).unwrap();
    let e = refusal(&busy, &head("/v1/logs", 1, true, |b| b));
    assert!(matches!(e, ReceiveError::Memory(MemoryError::Exhausted { .. })), "{e:?}");
}

#[tokio::test]
async fn the_rescue_counts_memory_and_auth_refusals_and_hints_curl() {
    let r = receiver(1000, Some("s3cret\n"));
    auth::count_from_zero(&r.telemetry);
    let route = Route { kind: SignalKind::Traces, format: Format::Protobuf, encoding: ContentEncoding::Identity };
    let curl = head("/v1/traces", 10, true, |b| b.header("user-agent", "curl/8.0"));
    let exhausted = ReceiveError::Memory(MemoryError::Exhausted { held: 1, limit: 1 });
    let a = rescue(&r, &curl, exhausted, Refused::AfterRoute(route)).await;
    assert_eq!(a.status(), 503);
    assert_eq!(a.headers()[http::header::RETRY_AFTER], "1");
    let a = rescue(&r, &curl, ReceiveError::Unauthorized(auth::AuthFailure::Missing), Refused::AfterRoute(route)).await;
    assert_eq!(a.status(), 401);
    let metrics = r.telemetry.render();
    assert!(metrics.contains("otlp_bridge_memory_refused_requests_total 1"), "{metrics}");
    assert!(metrics.contains(r#"otlp_bridge_auth_refused_requests_total{reason="missing"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"otlp_bridge_auth_refused_requests_total{reason="unknown_token"} 0"#), "{metrics}");
    // A curl client whose protobuf does not decode is told about --data-binary; anyone else is not.
    let bad = || ReceiveError::Protobuf(crate::wire::scan(SignalKind::Traces.schema(), b"\xff").unwrap_err());
    let hinted = rescue(&r, &curl, bad(), Refused::AfterRoute(route)).await;
    let plain = rescue(&r, &head("/v1/traces", 10, true, |b| b), bad(), Refused::AfterRoute(route)).await;
    let message = |a: Response<Full<Bytes>>| {
        let mut body = a.into_body();
        let frame = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::frame(&mut body));
        frame.flatten().and_then(|f| f.ok()).and_then(|f| f.into_data().ok()).unwrap_or_default()
    };
    assert!(String::from_utf8_lossy(&message(hinted)).contains("--data-binary"));
    assert!(!String::from_utf8_lossy(&message(plain)).contains("--data-binary"));
}
