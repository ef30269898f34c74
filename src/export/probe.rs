//! Does a backend speak OTLP/gRPC? One empty `Export` call answers it, and [`diagnose`] turns what went wrong into
//! words that say how to fix it.
//!
//! Why an empty `Export` and not a TCP connect or the gRPC health service: a TCP connect succeeds against an
//! OTLP/HTTP port, a UI or the bridge itself; the health service is not served by the Collector's OTLP receiver nor
//! by most backends. An `Export*ServiceRequest` with no data is valid OTLP, which every OTLP/gRPC receiver answers OK
//! without storing anything (the bridge never sends one otherwise), and it goes through the same channel, TLS,
//! credentials and service path as real exports: what it proves is what delivery needs. It costs one HTTP/2 round
//! trip of a few bytes on a connection that is usually open already.

use std::time::Duration;

use tonic::{Code, Status};

use super::codec::Payload;
use super::GrpcBackend;
use crate::signal::SignalKind;

/// Why a backend did not pass the probe.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the backend at {url} {problem}")]
pub(crate) struct ProbeError {
    /// The backend's URL (for logs, `/ready` and `--check`; never for client-facing bodies).
    pub url: String,
    /// What it did, and what to do about it.
    pub problem: String,
}

/// Sends one empty export of `kind` and waits up to `timeout` for the answer.
pub(crate) async fn probe(backend: &GrpcBackend, kind: SignalKind, timeout: Duration) -> Result<(), ProbeError> {
    let outcome = tokio::time::timeout(timeout, backend.export(kind, Payload::default(), timeout)).await;
    let mut problem = match outcome {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(status)) => diagnose(&status, backend.url(), kind),
        Err(_) => format!("did not answer a gRPC call within {timeout:?}"),
    };
    // A connection dropped mid-handshake says little, and what tonic reports depends on timing; the first bytes the
    // server sends to an HTTP/2 preface say what it is.
    // (A TLS server's alert also reads as a bad HTTP/2 frame, like an HTTP/1.1 status line.)
    let unclear = ["closed the connection", "answered Cancelled", HTTP1];
    if backend.url().starts_with("http://") && unclear.iter().any(|u| problem.starts_with(u)) {
        let (host, port) = backend.authority();
        match sniff(host, port).await {
            Some(Sniffed::Http1) => problem = HTTP1.to_string(),
            Some(Sniffed::Tls) => problem = TLS_ON_PLAIN.to_string(),
            None => {}
        }
    }
    Err(ProbeError { url: backend.url().to_string(), problem })
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

/// Every message of an error and of its sources, outermost first, without repeats (tonic nests "transport error"
/// in "transport error").
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        // tonic wraps the cause in a bare "transport error", which says nothing the cause does not.
        if text != "transport error" && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A status message and the chain of its causes, each said once: tonic often words a status with its cause's own
/// first message ("tcp connect error", whose cause reads "tcp connect error: Connection refused"), so plain joining
/// would print "tcp connect error: tcp connect error: ...".
pub(crate) fn with_cause(message: &str, cause: &str) -> String {
    if message.is_empty() || cause.starts_with(message) || cause.contains(&format!(": {message}")) {
        cause.to_string()
    } else if cause.is_empty() || message.contains(cause) {
        message.to_string()
    } else {
        format!("{message}: {cause}")
    }
}

/// What a failed gRPC call says about the backend, as a sentence that continues "the backend at URL ...".
pub(crate) fn diagnose(status: &Status, url: &str, kind: SignalKind) -> String {
    let chain = std::error::Error::source(status).map(error_chain).unwrap_or_default();
    let detail = with_cause(status.message(), &chain);
    let lower = detail.to_ascii_lowercase();
    let https = url.starts_with("https://");
    if let Some(http) = http_status(&lower) {
        let hint = match http {
            404 | 405 | 415 => "is it an OTLP/HTTP port? OTLP/gRPC is usually 4317",
            401 | 403 => "it wants credentials: see --backend-header",
            502..=504 => "a proxy in front of it could not reach it",
            _ => "is it a gRPC server? OTLP/gRPC is usually 4317",
        };
        return format!("answered HTTP {http} to a gRPC call: {hint} ({detail})");
    }
    if lower.contains("invalidcontenttype") || lower.contains("corrupt message") || lower.contains("wrong version") {
        return format!("does not speak TLS, but the URL says https://: use http:// for a plaintext port ({detail})");
    }
    if lower.contains("invalidcertificate") || lower.contains("unknownissuer") || lower.contains("certificate") {
        return format!(
            "presented a TLS certificate this bridge does not trust: pass its CA with --backend-ca-file ({detail})"
        );
    }
    if lower.contains("frame with invalid size") || lower.contains("invalid http version") || lower.contains("preface")
    {
        return format!("{HTTP1} ({detail})");
    }
    if !https && ["connection reset", "broken pipe", "eof", "connection closed"].iter().any(|w| lower.contains(w)) {
        return format!(
            "closed the connection without answering in HTTP/2: it is not a plaintext gRPC server (a TLS port? use \
             https://; an HTTP/1.1 server? OTLP/gRPC is usually 4317) ({detail})"
        );
    }
    if lower.contains("connection refused") {
        return format!("refused the connection: nothing listens there ({detail})");
    }
    if lower.contains("dns error") || lower.contains("failed to lookup") || lower.contains("name or service") {
        return format!("has a host name that does not resolve ({detail})");
    }
    match status.code() {
        // Another otlp-bridge's OTLP/HTTP port answers gRPC calls so (see receive::hint::GRPC_ON_HTTP_PORT).
        Code::Unimplemented if detail.starts_with("this port speaks OTLP/HTTP") => {
            "answered that it speaks OTLP/HTTP, not OTLP/gRPC: is it an OTLP/HTTP port? OTLP/gRPC is usually 4317"
                .to_string()
        }
        Code::Unimplemented => {
            format!("answers gRPC but not {}: is it an OTLP receiver for {}? ({detail})", kind.grpc_path(), kind.name())
        }
        Code::Unauthenticated | Code::PermissionDenied => {
            format!("refused the credentials: check --backend-header ({:?}: {detail})", status.code())
        }
        Code::DeadlineExceeded => format!("did not answer in time ({detail})"),
        code => format!("answered {code:?}: {detail}"),
    }
}

/// The HTTP status of a non-gRPC answer, as tonic words it ("mapped from HTTP status code 404", or "... while
/// receiving response with status: 404 Not Found" when the body was not gRPC framing).
fn http_status(lower: &str) -> Option<u16> {
    ["http status code ", "response with status: "].iter().find_map(|marker| {
        let at = lower.find(marker)? + marker.len();
        let digits: String = lower[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok().filter(|s| (100..600).contains(s) && *s != 200)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_are_named_with_the_fix() {
        let s = Status::unimplemented("grpc-status header missing, mapped from HTTP status code 404");
        let d = diagnose(&s, "http://h:4318", SignalKind::Traces);
        assert!(d.starts_with("answered HTTP 404 to a gRPC call: is it an OTLP/HTTP port? OTLP/gRPC is usually 4317"));
        let s = Status::internal(
            "protocol error: received message with invalid compression flag: 123 (valid flags are 0 and 1) while \
             receiving response with status: 404 Not Found",
        );
        assert!(diagnose(&s, "http://h:4318", SignalKind::Traces).starts_with("answered HTTP 404 to a gRPC call"));
    }

    #[test]
    fn a_message_and_its_cause_are_each_said_once() {
        let refused = "tcp connect error: Connection refused (os error 111)";
        assert_eq!(with_cause("tcp connect error", refused), refused);
        assert_eq!(with_cause("", refused), refused);
        assert_eq!(with_cause(refused, "Connection refused (os error 111)"), refused);
        assert_eq!(with_cause("transport error", "h2 protocol error"), "transport error: h2 protocol error");
        assert_eq!(with_cause("deadline", ""), "deadline");
        // As the export path words a lost connection: the status's message is its cause's first link.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let status = Status::from_error(Box::new(Wrapped("tcp connect error", io)));
        let d = diagnose(&status, "http://h:1", SignalKind::Traces);
        assert_eq!(d.matches("tcp connect error").count(), 1, "{d}");
        assert!(d.starts_with("refused the connection: nothing listens there"), "{d}");
    }

    /// An error whose message is a fixed phrase and whose source is `.1`, as hyper-util's connect error is.
    #[derive(Debug)]
    struct Wrapped(&'static str, std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn a_grpc_server_without_the_otlp_service_is_told_apart() {
        let s = Status::unimplemented("");
        assert!(diagnose(&s, "http://h:1", SignalKind::Logs).contains("LogsService/Export"));
        let s = Status::unimplemented("this port speaks OTLP/HTTP (POST /v1/traces...), not OTLP/gRPC: ...");
        let d = diagnose(&s, "http://h:4318", SignalKind::Logs);
        assert!(d.ends_with("is it an OTLP/HTTP port? OTLP/gRPC is usually 4317"), "{d}");
    }
}
