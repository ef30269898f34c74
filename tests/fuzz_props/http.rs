//! `http_request`: whole requests (method, path, headers, body) through a bridge running in process.
//!
//! One bridge per process, started through the library on 127.0.0.1:0 in front of a tiny gRPC backend that
//! acknowledges every export. Each input becomes one raw HTTP/1.1 request on a fresh connection; the bridge must
//! answer it within [`ANSWER_TIMEOUT`], never with a 500 (nothing inside the bridge may fail with a backend that
//! acknowledges everything), no task of the bridge may panic, and a valid request sent afterwards must still
//! succeed.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_bridge::internals::ContentEncoding;
use otlp_bridge::{BackendTarget, Config};
use tokio::net::TcpListener;

/// How long the bridge may take to answer one request.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Body limit of the bridge under test, small enough for the fuzzer to reach it.
pub const MAX_BODY_BYTES: usize = 1 << 20;

const THREAD_NAME: &str = "fuzz-bridge";

const METHODS: [&str; 16] = [
    "POST", "POST", "POST", "POST", "POST", "POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD",
    "post", "TRACE",
];
const PATHS: [&str; 16] = [
    "/v1/traces",
    "/v1/metrics",
    "/v1/logs",
    "/v1/traces",
    "/v1/metrics",
    "/v1development/profiles",
    "/v1/traces/",
    "/",
    "/v1/logs?x=1&y",
    "/V1/TRACES",
    "/v1//traces",
    "/v1/traces%2F",
    "*",
    "http://bridge.example/v1/metrics",
    "/v1/metrics/../traces",
    "/v1/traces#frag",
];
const CONTENT_TYPES: [Option<&str>; 16] = [
    Some("application/x-protobuf"),
    Some("application/json"),
    Some("application/x-protobuf"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("Application/JSON"),
    Some("application/x-protobuf; proto=opentelemetry"),
    None,
    Some("text/plain"),
    Some("application/protobuf"),
    Some("application/grpc"),
    Some("multipart/form-data; boundary=x"),
    Some("application/json;charset=latin1"),
    Some(";"),
    Some(""),
    Some("application/json, application/x-protobuf"),
];
const ENCODINGS: [Option<&str>; 16] = [
    None,
    None,
    Some("gzip"),
    Some("deflate"),
    Some("zstd"),
    Some("identity"),
    Some("gzip"),
    Some("zstd"),
    Some("x-gzip"),
    Some("GZIP"),
    Some(" deflate "),
    Some("br"),
    Some("gzip, identity"),
    Some("lz4"),
    Some(""),
    Some("compress"),
];

// Flags byte.
const COMPRESS: u8 = 1; // compress the body with the chosen encoding (gzip, deflate, zstd)
const CHUNKED: u8 = 2; // send the body with Transfer-Encoding: chunked, in chunks of the chunk-size byte
const ORIGIN_OK: u8 = 4; // Origin of an allowed site (CORS)
const ORIGIN_BAD: u8 = 8; // Origin of another site
const EXPECT: u8 = 16; // Expect: 100-continue
const NO_LENGTH: u8 = 32; // neither Content-Length nor chunked: no body at all
const RAW_TYPE: u8 = 64; // Content-Type value taken from the input (length byte, then bytes)
const PREFLIGHT: u8 = 128; // Access-Control-Request-Method/Headers (a preflight when the method is OPTIONS)

/// One fuzz input as a request: `[method, path, content type, encoding, flags, chunk size, (raw type), body..]`.
#[derive(Debug)]
pub struct FuzzRequest {
    /// The whole request as it goes on the wire.
    pub raw: Vec<u8>,
    /// Whether it was a HEAD request (its answer has no body).
    pub head: bool,
}

impl FuzzRequest {
    /// Builds the request an input describes (`None` if the input is too short).
    pub fn from_input(data: &[u8]) -> Option<FuzzRequest> {
        let [m, p, t, e, flags, chunk, rest @ ..] = data else { return None };
        let method = METHODS[usize::from(m % 16)];
        let path = PATHS[usize::from(p % 16)];
        let mut rest = rest;
        let raw_type;
        let content_type = if flags & RAW_TYPE != 0 {
            let (&n, after) = rest.split_first()?;
            let n = usize::from(n).min(after.len());
            // Anything but the bytes that would end the header line (or the request) early.
            raw_type = after[..n].iter().copied().filter(|&b| b != b'\r' && b != b'\n' && b != 0).collect::<Vec<_>>();
            rest = &after[n..];
            Some(&raw_type[..])
        } else {
            CONTENT_TYPES[usize::from(t % 16)].map(str::as_bytes)
        };
        let encoding = ENCODINGS[usize::from(e % 16)];
        let body = match encoding.map(|v| ContentEncoding::parse(Some(v))) {
            Some(Ok(enc)) if flags & COMPRESS != 0 => super::compress_with(enc, m % 2 == 0, rest),
            _ => rest.to_vec(),
        };

        let mut raw = Vec::with_capacity(body.len() + 512);
        raw.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").as_bytes());
        if let Some(ct) = content_type {
            raw.extend_from_slice(b"Content-Type: ");
            raw.extend_from_slice(ct);
            raw.extend_from_slice(b"\r\n");
        }
        if let Some(enc) = encoding {
            raw.extend_from_slice(format!("Content-Encoding: {enc}\r\n").as_bytes());
        }
        if flags & ORIGIN_OK != 0 {
            raw.extend_from_slice(b"Origin: https://app.example.com\r\n");
        }
        if flags & ORIGIN_BAD != 0 {
            raw.extend_from_slice(b"Origin: https://evil.test\r\n");
        }
        if flags & PREFLIGHT != 0 {
            raw.extend_from_slice(b"Access-Control-Request-Method: POST\r\n");
            raw.extend_from_slice(b"Access-Control-Request-Headers: content-type, content-encoding\r\n");
        }
        if flags & EXPECT != 0 {
            raw.extend_from_slice(b"Expect: 100-continue\r\n");
        }
        if flags & NO_LENGTH != 0 {
            raw.extend_from_slice(b"\r\n");
        } else if flags & CHUNKED != 0 {
            raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for piece in body.chunks(usize::from(*chunk).max(1)) {
                raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                raw.extend_from_slice(piece);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
        } else {
            raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            raw.extend_from_slice(&body);
        }
        Some(FuzzRequest { raw, head: method == "HEAD" })
    }
}

/// The bridge under test and its backend, running on their own runtime.
pub struct Harness {
    /// The bridge's OTLP/HTTP address.
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The process's harness, started on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(start)
}

fn start() -> Harness {
    // Count panics on the bridge's threads (tokio catches them; under libFuzzer the previous hook aborts anyway).
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(THREAD_NAME) {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let addr = runtime.block_on(async {
        let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let backend_addr = backend.local_addr().expect("backend address");
        tokio::spawn(serve_acks(backend));
        let mut config = Config::default().with_backends(vec![BackendTarget::url(format!("http://{backend_addr}"))]);
        config.cors_allowed_origins = vec!["https://*.example.com".to_string()];
        config.max_body_bytes = MAX_BODY_BYTES;
        config.retry.max_elapsed = Duration::ZERO;
        config.read_timeout = Duration::from_secs(5);
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind bridge");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = http.local_addr().expect("bridge address");
        let listeners = otlp_bridge::Listeners { http, admin, grpc: None };
        tokio::spawn(async move {
            if let Err(e) = otlp_bridge::run(config, listeners, std::future::pending()).await {
                panic!("bridge failed: {e}");
            }
        });
        addr
    });
    Harness { addr, _runtime: runtime }
}

/// A gRPC backend that reads each export and acknowledges it with an empty response.
async fn serve_acks(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let mut body = req.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                let frames: Vec<Result<Frame<Bytes>, Infallible>> =
                    vec![Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))), Ok(Frame::trailers(trailers))];
                let mut response = Response::new(StreamBody::new(futures_util::stream::iter(frames)));
                response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
                Ok::<_, Infallible>(response)
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body (empty for HEAD).
    pub body: Vec<u8>,
}

/// Sends `raw` on a fresh connection and reads one final answer, within [`ANSWER_TIMEOUT`].
pub fn exchange(addr: SocketAddr, raw: &[u8], head: bool) -> Result<Answer, String> {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, ANSWER_TIMEOUT) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted && Instant::now() < deadline => continue,
            connected => break connected.map_err(|e| format!("connect: {e}"))?,
        }
    };
    stream.set_nodelay(true).ok();
    stream.set_write_timeout(Some(ANSWER_TIMEOUT)).ok();
    // A bridge may answer (and stop reading) before the whole body is sent: a write error is not yet a failure.
    let written = stream.write_all(raw);
    let mut buf = Vec::new();
    loop {
        let (status, header_len, length) = loop {
            if let Some(parsed) = parse_head(&buf)? {
                break parsed;
            }
            read_more(&mut stream, &mut buf, deadline).map_err(|e| format!("{e} (write: {written:?})"))?;
        };
        if (100..200).contains(&status) {
            buf.drain(..header_len);
            continue;
        }
        let no_body = head || status == 204 || status == 304;
        let body_len = if no_body { 0 } else { length.ok_or("answer without Content-Length")? };
        while buf.len() < header_len + body_len {
            read_more(&mut stream, &mut buf, deadline)?;
        }
        return Ok(Answer { status, body: buf[header_len..header_len + body_len].to_vec() });
    }
}

fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), String> {
    let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
    let left = left.ok_or_else(|| format!("no answer within {ANSWER_TIMEOUT:?}"))?;
    stream.set_read_timeout(Some(left)).ok();
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) => Err(format!("connection closed after {} bytes of answer", buf.len())),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        // libFuzzer's timers (SIGALRM) interrupt blocking reads.
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(format!("read: {e} after {} bytes of answer", buf.len())),
    }
}

/// Status, header length and Content-Length of a complete response head at the start of `buf`.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, Option<usize>)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Ok(Some((status, end + 4, length)))
}

const PROBE: &[u8] = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"probe"}]}]}]}"#;

/// `http_request`: the property for one input.
pub fn http_request(data: &[u8]) {
    let Some(request) = FuzzRequest::from_input(data) else { return };
    let h = harness();
    let answer = exchange(h.addr, &request.raw, request.head)
        .unwrap_or_else(|e| panic!("no HTTP answer: {e}\nrequest: {:?}", String::from_utf8_lossy(&request.raw)));
    assert!(
        (200..600).contains(&answer.status) && answer.status != 500,
        "answered {}: {:?}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a task of the bridge panicked");
    let probe = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        PROBE.len()
    );
    let probe = [probe.as_bytes(), PROBE].concat();
    let answer = exchange(h.addr, &probe, false).unwrap_or_else(|e| panic!("the bridge stopped serving: {e}"));
    assert_eq!(answer.status, 200, "the bridge stopped serving: {:?}", String::from_utf8_lossy(&answer.body));
}
