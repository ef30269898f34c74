//! One call, in order: method, encoding, deadline, auth, forwarded metadata, then the message (memory admitted
//! from its length prefix before it is buffered), decompression, and the ingest step; every refusal answered once by
//! [`super::status`].

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prost::Message;
use tokio::time::Instant;

use super::body::GrpcBody;
use super::status::{self, CallError};
use super::GrpcInput;
use crate::ingest::{Format, Transport};
use crate::limit::Reservation;
use crate::receive::ContentEncoding;
use crate::signal::{Logs, Metrics, PartialSuccess, Profiles, Signal, SignalKind, Traces};
use crate::telemetry::GRPC_CODES;

/// Messages larger than this are decompressed and scanned on the blocking pool (as HTTP bodies are).
const BLOCKING_THRESHOLD: usize = 1 << 20;
/// Compressed messages larger than this, likewise: they may decompress up to `--max-body-bytes`.
const BLOCKING_THRESHOLD_COMPRESSED: usize = 16 << 10;

/// The signal an OTLP Export method's path names.
pub(super) fn route(path: &str) -> Option<SignalKind> {
    match path {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => Some(SignalKind::Traces),
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => Some(SignalKind::Metrics),
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => Some(SignalKind::Logs),
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export" => Some(SignalKind::Profiles),
        _ => None,
    }
}

/// Serves one call and answers it; counts it by signal and code.
pub(super) async fn handle(input: Arc<GrpcInput>, req: Request<Incoming>) -> Response<GrpcBody> {
    let started = Instant::now();
    let kind = route(req.uri().path());
    let grpc = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v == "application/grpc" || v.starts_with("application/grpc+proto") || v.starts_with("application/grpc;")
    });
    if !grpc {
        // Not a gRPC client (the gRPC spec: 415 for another Content-Type); most likely OTLP/HTTP sent to this port.
        input.telemetry.grpc_request(kind, GRPC_CODES - 1, "HTTP_415", started.elapsed());
        return status::not_grpc();
    }
    let (code, response) = match answer(&input, kind, req).await {
        Ok(message) => (tonic::Code::Ok, status::success(message)),
        Err(error) => {
            match &error {
                CallError::Ingest(crate::ingest::IngestError::Memory(_)) => input.ingest.memory_refused(),
                CallError::Unauthorized(failure) => input.telemetry.auth_refused(failure.reason(), 1),
                _ => {}
            }
            let (code, retry) = error.class();
            // The message never holds a token or a backend's address, so it may be logged and sent.
            tracing::debug!(signal = kind.map(|k| k.name()), code = status::code_name(code), "call refused: {error}");
            (code, status::refusal(code, retry, &error.to_string()))
        }
    };
    input.telemetry.grpc_request(kind, code as usize, status::code_name(code), started.elapsed());
    response
}

/// The steps; the encoded `Export*ServiceResponse` when the delivery promise holds.
async fn answer(input: &GrpcInput, kind: Option<SignalKind>, req: Request<Incoming>) -> Result<Vec<u8>, CallError> {
    let kind = kind.ok_or_else(|| CallError::UnknownMethod(req.uri().path().to_string()))?;
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let encoding = encoding(headers)?;
    // The client's deadline bounds everything; the body must also arrive within --read-timeout.
    let deadline = timeout(headers).map(|t| Instant::now() + t);
    if let Some(tokens) = input.auth.as_deref() {
        tokens.check(headers.get(http::header::AUTHORIZATION)).map_err(CallError::Unauthorized)?;
    }
    let forwarded = crate::receive::forwarded_headers(&input.forward_headers, headers)
        .map_err(|name| CallError::ForwardHeader(name.to_string()))?;
    let read_by = Instant::now() + input.read_timeout;
    let read_by = deadline.map_or(read_by, |d| d.min(read_by));
    let (compressed, wire, mut reservation) =
        tokio::time::timeout_at(read_by, read_message(input, body)).await.map_err(|_| {
            CallError::Slow(format!("within {:?} (--read-timeout) and the call's deadline", input.read_timeout))
        })??;

    let codec = match (compressed, encoding) {
        (false, _) => ContentEncoding::Identity,
        (true, ContentEncoding::Identity) => {
            return Err(CallError::Framing("the compressed flag is set but grpc-encoding is identity".into()))
        }
        (true, codec) => codec,
    };
    let blocking = wire.len() > BLOCKING_THRESHOLD
        || (codec != ContentEncoding::Identity && wire.len() > BLOCKING_THRESHOLD_COMPRESSED);
    let limit = input.max_body_bytes;
    let ingest = Arc::clone(&input.ingest);
    let work = move || -> Result<_, CallError> {
        let plain = crate::receive::body::inflate(codec, wire, limit, &mut reservation)?;
        let decoded = ingest.decode(kind, Format::Protobuf, plain, &mut reservation)?;
        Ok((decoded, reservation))
    };
    let (decoded, reservation) = if blocking {
        tokio::task::spawn_blocking(work).await.map_err(|e| CallError::Internal(format!("decoding failed: {e}")))??
    } else {
        work()?
    };
    let submit = input.ingest.submit(Transport::Grpc, kind, decoded, forwarded, reservation);
    let partial = match deadline {
        None => submit.await?,
        Some(deadline) => tokio::time::timeout_at(deadline, submit)
            .await
            .map_err(|_| CallError::Deadline(timeout(headers).unwrap_or_default()))??,
    };
    Ok(response(kind, partial))
}

/// The `Export*ServiceResponse` of `kind`, with `partial` when items were rejected.
fn response(kind: SignalKind, partial: PartialSuccess) -> Vec<u8> {
    fn encode<S: Signal>(partial: PartialSuccess) -> Vec<u8> {
        S::response(Some(partial).filter(|p| !p.is_empty())).encode_to_vec()
    }
    match kind {
        SignalKind::Traces => encode::<Traces>(partial),
        SignalKind::Metrics => encode::<Metrics>(partial),
        SignalKind::Logs => encode::<Logs>(partial),
        SignalKind::Profiles => encode::<Profiles>(partial),
    }
}

/// The message encoding the client names in `grpc-encoding` (absent: identity).
fn encoding(headers: &HeaderMap) -> Result<ContentEncoding, CallError> {
    let Some(value) = headers.get("grpc-encoding") else { return Ok(ContentEncoding::Identity) };
    match value.to_str().map(str::trim) {
        Ok("identity") => Ok(ContentEncoding::Identity),
        Ok("gzip") => Ok(ContentEncoding::Gzip),
        Ok("zstd") => Ok(ContentEncoding::Zstd),
        _ => Err(CallError::UnsupportedEncoding(String::from_utf8_lossy(value.as_bytes()).into_owned())),
    }
}

/// The client's deadline from `grpc-timeout` (up to 8 digits and a unit: H, M, S, m, u, n); a malformed one is
/// ignored, as gRPC servers do.
fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Reads the call's one length-prefixed message. The memory limit admits the message by the length its prefix
/// declares before a byte of it is kept (a refusal holds nothing, and the client hears it at once instead of
/// stalling on flow control); the reservation then grows with what arrives. Returns the compressed flag, the
/// message and its reservation.
async fn read_message(input: &GrpcInput, mut body: Incoming) -> Result<(bool, Bytes, Reservation), CallError> {
    let mut prefix = Vec::with_capacity(5);
    let mut message: Option<(bool, usize, BytesMut, Reservation)> = None;
    loop {
        let frame = tokio::time::timeout(input.body_idle_timeout, body.frame())
            .await
            .map_err(|_| CallError::Slow(format!("no byte for {:?}", input.body_idle_timeout)))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| CallError::Slow(format!("the stream failed: {e}")))?;
        let Ok(mut data) = frame.into_data() else { continue };
        if message.is_none() {
            let need = 5 - prefix.len();
            let take = need.min(data.len());
            prefix.extend_from_slice(&data[..take]);
            data.advance(take);
            if prefix.len() < 5 {
                continue;
            }
            let compressed = match prefix[0] {
                0 => false,
                1 => true,
                flag => return Err(CallError::Framing(format!("unknown compressed flag {flag}"))),
            };
            let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
            if len > input.max_body_bytes {
                return Err(CallError::TooLarge { limit: input.max_body_bytes, size: len, decompressed: false });
            }
            let reservation = input.ingest.admit(len).map_err(crate::ingest::IngestError::Memory)?;
            message = Some((compressed, len, BytesMut::new(), reservation));
        }
        let Some((_, len, buf, reservation)) = message.as_mut() else { continue };
        if buf.len() + data.len() > *len {
            return Err(CallError::Framing(format!(
                "more bytes than the {len} the message's prefix declares: a unary Export call sends one message"
            )));
        }
        if data.is_empty() {
            continue;
        }
        if buf.len() + data.len() > reservation.bytes() {
            // Grows to what is held (the first chunk's worth at least), never beyond the declared length.
            let want = (buf.len() + data.len()).max(reservation.bytes().saturating_mul(2)).min(*len);
            reservation.resize(want).map_err(crate::ingest::IngestError::Memory)?;
            buf.reserve(want - buf.len());
        }
        buf.extend_from_slice(&data);
    }
    match message {
        None => Err(CallError::Framing("the call carried no message".into())),
        Some((_, len, buf, _)) if buf.len() < len => {
            Err(CallError::Framing(format!("the message ended after {} of its {len} bytes", buf.len())))
        }
        Some((compressed, _, buf, reservation)) => Ok((compressed, buf.freeze(), reservation)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units_parse_and_malformed_ones_are_ignored() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("grpc-timeout", v.parse().unwrap());
            timeout(&h)
        };
        assert_eq!(with("5S"), Some(Duration::from_secs(5)));
        assert_eq!(with("250m"), Some(Duration::from_millis(250)));
        assert_eq!(with("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(with("10u"), Some(Duration::from_micros(10)));
        assert_eq!(with("123456789S"), None, "at most 8 digits");
        assert_eq!(with("S"), None);
        assert_eq!(with("5x"), None);
    }

    #[test]
    fn the_four_export_methods_route_and_nothing_else_does() {
        assert_eq!(route("/opentelemetry.proto.collector.logs.v1.LogsService/Export"), Some(SignalKind::Logs));
        let profiles = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export";
        assert_eq!(route(profiles), Some(SignalKind::Profiles));
        assert_eq!(route("/opentelemetry.proto.collector.trace.v1.TraceService/Other"), None);
        assert_eq!(route("/v1/traces"), None);
    }

    #[test]
    fn encodings_are_identity_gzip_and_zstd() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("grpc-encoding", v.parse().unwrap());
            encoding(&h)
        };
        assert_eq!(with("gzip").unwrap(), ContentEncoding::Gzip);
        assert_eq!(with("zstd").unwrap(), ContentEncoding::Zstd);
        assert!(matches!(with("snappy"), Err(CallError::UnsupportedEncoding(_))));
        assert_eq!(encoding(&HeaderMap::new()).unwrap(), ContentEncoding::Identity);
    }
}
