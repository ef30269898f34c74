//! Does a backend speak OTLP/gRPC? One empty `Export` call answers it, and [`classify_status`] turns what went wrong
//! into a [`Problem`]: a class read from types (the HTTP status of a non-gRPC answer, the I/O or TLS error under a
//! failed call, the gRPC code), and words that say how to fix it.
//!
//! Why an empty `Export` and not a TCP connect or the gRPC health service: a TCP connect succeeds against an
//! OTLP/HTTP port, a UI or the bridge itself; the health service is not served by the Collector's OTLP receiver nor
//! by most backends. An `Export*ServiceRequest` with no data is valid OTLP, which every OTLP/gRPC receiver answers OK
//! without storing anything (the bridge never sends one otherwise), and it goes through the same channel, TLS,
//! credentials and service path as real exports: what it proves is what delivery needs. It costs one HTTP/2 round
//! trip of a few bytes on a connection that is usually open already.

use std::error::Error;
use std::time::Duration;

use tonic::{Code, Status};

use super::GrpcOutput;
use crate::export::output::{error_chain, with_cause, Problem, ProblemKind};
use crate::export::Payload;
use crate::signal::SignalKind;

/// Sends one empty export of `kind` and waits up to `timeout` for the answer.
pub(super) async fn probe(output: &GrpcOutput, kind: SignalKind, timeout: Duration) -> Result<String, Problem> {
    let outcome = tokio::time::timeout(timeout, output.export_everywhere(kind, Payload::default(), timeout)).await;
    let problem = match outcome {
        Ok(Ok(_)) => return Ok("answered an empty OTLP/gRPC export: it speaks OTLP/gRPC".to_string()),
        Ok(Err(e)) => e
            .problem
            .unwrap_or_else(|| Problem::new(ProblemKind::Refused, format!("answered {:?}: {}", e.code, e.message))),
        Err(_) => Problem::new(ProblemKind::Timeout, format!("did not answer a gRPC call within {timeout:?}")),
    };
    // A connection dropped mid-handshake says little, and what tonic reports depends on timing; the first bytes the
    // server sends to an HTTP/2 preface say what it is.
    // (A TLS server's alert also reads as a bad HTTP/2 frame, like an HTTP/1.1 status line.)
    if output.url().starts_with("http://") && matches!(problem.kind, ProblemKind::WrongProtocol | ProblemKind::Refused)
    {
        let (host, port) = output.authority();
        match sniff(host, port).await {
            Some(Sniffed::Http1) => return Err(Problem::new(ProblemKind::WrongProtocol, HTTP1)),
            Some(Sniffed::Tls) => return Err(Problem::new(ProblemKind::WrongProtocol, TLS_ON_PLAIN)),
            None => {}
        }
    }
    Err(problem)
}

const HTTP1: &str =
    "answered in HTTP/1.1, not HTTP/2: it is not a gRPC server (an OTLP/HTTP port or a web server? OTLP/gRPC is \
     usually 4317)";
const TLS_ON_PLAIN: &str = "speaks TLS, but the URL says http://: use https:// for a TLS port";

enum Sniffed {
    Http1,
    Tls,
}

/// Sends the HTTP/2 connection preface on a fresh connection and looks at the first bytes of the answer: an
/// HTTP/1.x status line, or a TLS record (alert 0x15, handshake 0x16) from a TLS server.
async fn sniff(host: &str, port: u16) -> Option<Sniffed> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.ok()?;
        let mut head = [0u8; 8];
        let n = stream.read(&mut head).await.ok()?;
        match &head[..n] {
            [b'H', b'T', b'T', b'P', b'/', ..] => Some(Sniffed::Http1),
            [0x15 | 0x16, 0x03, ..] => Some(Sniffed::Tls),
            _ => None,
        }
    };
    tokio::time::timeout(Duration::from_secs(2), exchange).await.ok().flatten()
}

/// The header the HTTP-status mapping ([`super::http_status`]) adds to the gRPC answer it makes of a plain HTTP
/// one, so that the status is read as a number, not out of a message.
pub(super) const HTTP_STATUS_METADATA: &str = "otlp-bridge-http-status";

/// What a gRPC status says about the backend, as a sentence that continues "the backend at URL ...": by the HTTP
/// status of a non-gRPC answer, the transport error under it (by type), or the gRPC code.
pub(super) fn classify_status(status: &Status, url: &str, kind: SignalKind) -> Problem {
    let chain = status.source().map(error_chain).unwrap_or_default();
    let detail = with_cause(status.message(), &chain);
    let http =
        status.metadata().get(HTTP_STATUS_METADATA).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u16>().ok());
    if let Some(http) = http {
        let (kind, hint) = match http {
            404 | 405 | 415 => (ProblemKind::WrongProtocol, "is it an OTLP/HTTP port? OTLP/gRPC is usually 4317"),
            401 | 403 => (ProblemKind::Credentials, "it wants credentials: see --backend-header"),
            502..=504 => (ProblemKind::Unreachable, "a proxy in front of it could not reach it"),
            _ => (ProblemKind::WrongProtocol, "is it a gRPC server? OTLP/gRPC is usually 4317"),
        };
        return Problem::new(kind, format!("answered HTTP {http} to a gRPC call: {hint} ({detail})"));
    }
    if let Some(source) = status.source() {
        if let Some(problem) = classify_chain(source, url, &detail) {
            return problem;
        }
    }
    match status.code() {
        // Another otlp-bridge's OTLP/HTTP port answers gRPC calls so (its receiver's hint for this mistake).
        Code::Unimplemented if detail.starts_with("this port speaks OTLP/HTTP") => Problem::new(
            ProblemKind::WrongProtocol,
            "answered that it speaks OTLP/HTTP, not OTLP/gRPC: is it an OTLP/HTTP port? OTLP/gRPC is usually 4317",
        ),
        Code::Unimplemented => Problem::new(
            ProblemKind::Missing,
            format!(
                "answers gRPC but not {}: is it an OTLP receiver for {}? ({detail})",
                kind.grpc_path(),
                kind.name()
            ),
        ),
        Code::Unauthenticated | Code::PermissionDenied => Problem::new(
            ProblemKind::Credentials,
            format!("refused the credentials: check --backend-header ({:?}: {detail})", status.code()),
        ),
        Code::DeadlineExceeded => Problem::new(ProblemKind::Timeout, format!("did not answer in time ({detail})")),
        code => Problem::new(ProblemKind::Refused, format!("answered {code:?}: {detail}")),
    }
}

/// What a failure to reach the backend at all says, by the errors under it.
pub(super) fn classify_transport(error: &(dyn Error + 'static), url: &str) -> Problem {
    let detail = error_chain(error);
    classify_chain(error, url, &detail)
        .unwrap_or_else(|| Problem::new(ProblemKind::Unreachable, format!("could not be reached ({detail})")))
}

/// The first error in `error`'s chain whose type says what happened: an I/O error's kind, a TLS error, a failed
/// name lookup.
fn classify_chain(error: &(dyn Error + 'static), url: &str, detail: &str) -> Option<Problem> {
    let https = url.starts_with("https://");
    let mut next = Some(error);
    while let Some(e) = next {
        // An I/O error that wraps another (rustls reports through one) hides it from `source()`: look inside.
        let inner = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|i| i as &(dyn Error + 'static));
        for candidate in [Some(e), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return Some(classify_tls(tls, detail));
            }
            if let Some(io) = candidate.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind as K;
                match io.kind() {
                    K::ConnectionRefused => {
                        return Some(Problem::new(
                            ProblemKind::Unreachable,
                            format!("refused the connection: nothing listens there ({detail})"),
                        ))
                    }
                    K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof if !https => {
                        return Some(Problem::new(ProblemKind::WrongProtocol, format!("{CLOSED} ({detail})")))
                    }
                    K::TimedOut => {
                        return Some(Problem::new(ProblemKind::Timeout, format!("did not answer in time ({detail})")))
                    }
                    _ => {}
                }
            }
        }
        next = e.source();
    }
    None
}

fn classify_tls(error: &rustls::Error, detail: &str) -> Problem {
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => Problem::new(
            ProblemKind::Tls,
            format!(
                "presented a TLS certificate this bridge does not trust: pass its CA with --backend-ca-file ({detail})"
            ),
        ),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => Problem::new(
            ProblemKind::WrongProtocol,
            format!("does not speak TLS, but the URL says https://: use http:// for a plaintext port ({detail})"),
        ),
        _ => Problem::new(ProblemKind::Tls, format!("refused the TLS handshake ({detail})")),
    }
}

const CLOSED: &str = "closed the connection without answering in HTTP/2: it is not a plaintext gRPC server (a TLS \
                      port? use https://; an HTTP/1.1 server? OTLP/gRPC is usually 4317)";

#[cfg(test)]
mod tests {
    use super::*;

    fn http_answer(code: u16) -> Status {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(HTTP_STATUS_METADATA, code.to_string().parse().unwrap());
        Status::with_metadata(Code::Unimplemented, "the backend answered plain HTTP", metadata)
    }

    #[test]
    fn http_answers_are_named_with_the_fix() {
        let p = classify_status(&http_answer(404), "http://h:4318", SignalKind::Traces);
        assert_eq!(p.kind, ProblemKind::WrongProtocol);
        assert!(p
            .what
            .starts_with("answered HTTP 404 to a gRPC call: is it an OTLP/HTTP port? OTLP/gRPC is usually 4317"));
        assert_eq!(classify_status(&http_answer(401), "http://h:1", SignalKind::Traces).kind, ProblemKind::Credentials);
        assert_eq!(classify_status(&http_answer(502), "http://h:1", SignalKind::Traces).kind, ProblemKind::Unreachable);
    }

    #[test]
    fn a_message_that_merely_mentions_a_status_is_not_read_as_one() {
        let s = Status::internal("the span name says HTTP status code 404");
        assert_eq!(classify_status(&s, "http://h:1", SignalKind::Traces).kind, ProblemKind::Refused);
    }

    #[test]
    fn a_grpc_server_without_the_otlp_service_is_told_apart() {
        let p = classify_status(&Status::unimplemented(""), "http://h:1", SignalKind::Logs);
        assert_eq!(p.kind, ProblemKind::Missing);
        assert!(p.what.contains("LogsService/Export"));
        let s = Status::unimplemented("this port speaks OTLP/HTTP (POST /v1/traces...), not OTLP/gRPC: ...");
        let p = classify_status(&s, "http://h:4318", SignalKind::Logs);
        assert!(p.what.ends_with("is it an OTLP/HTTP port? OTLP/gRPC is usually 4317"), "{}", p.what);
    }

    #[test]
    fn transport_errors_are_classified_by_type_not_by_text() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "whatever the OS says");
        let p = classify_transport(&refused, "http://h:1");
        assert_eq!(p.kind, ProblemKind::Unreachable);
        assert!(p.what.starts_with("refused the connection: nothing listens there"));
        let untrusted = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify_transport(&untrusted, "https://h:1").kind, ProblemKind::Tls);
        let plain = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        let p = classify_transport(&plain, "https://h:1");
        assert_eq!(p.kind, ProblemKind::WrongProtocol);
        assert!(p.what.starts_with("does not speak TLS"));
        // A text that reads like a refusal is not one.
        let odd = std::io::Error::other("connection refused");
        assert_eq!(classify_transport(&odd, "http://h:1").kind, ProblemKind::Unreachable);
        assert!(classify_transport(&odd, "http://h:1").what.starts_with("could not be reached"));
    }
}
