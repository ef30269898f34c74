//! Test bed: a real in-process OTLP/gRPC backend on 127.0.0.1:0 that records the raw bytes it receives and can be
//! scripted to fail, a bridge started through the library on port 0, and a small HTTP client.
// `pub` here means "for the test modules": the crate is a test binary, nothing is reachable from outside.
#![allow(unreachable_pub)]
// Test clients read whole (small, trusted) bodies.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use otlp_bridge::proto::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use otlp_bridge::SignalKind;
use otlp_bridge::{BackendTarget, Config};
use prost::Message;
use tokio::sync::{oneshot, Notify};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

pub mod load;
pub mod process;
pub mod raw;
pub mod tls;

// ---------------------------------------------------------------- the backend

/// What the backend does with the next call.
#[derive(Clone, Debug)]
pub enum Action {
    /// Acknowledge, optionally with a partial success (rejected, message).
    Ok(Option<(i64, String)>),
    /// Fail with this status.
    Fail(Status),
    /// Wait, then do the inner action.
    Delay(Duration, Box<Action>),
    /// Never answer.
    Hang,
}

impl Action {
    pub fn fail(code: Code, message: &str) -> Action {
        Action::Fail(Status::new(code, message))
    }

    pub fn fail_with_retry_info(code: Code, delay: Duration) -> Action {
        use tonic_types::{ErrorDetails, StatusExt};
        Action::Fail(Status::with_error_details(code, "slow down", ErrorDetails::with_retry_info(Some(delay))))
    }
}

/// One export the backend received.
#[derive(Clone, Debug)]
pub struct Received {
    pub kind: SignalKind,
    pub raw: Bytes,
    pub metadata: http::HeaderMap,
    /// Whether the backend acknowledged it.
    pub acked: bool,
}

#[derive(Default)]
struct BackendState {
    script: Mutex<VecDeque<Action>>,
    fallback: Mutex<Option<Action>>,
    received: Mutex<Vec<Received>>,
    probes: std::sync::atomic::AtomicUsize,
    notify: Notify,
}

/// A scriptable OTLP/gRPC backend.
#[derive(Clone)]
pub struct MockBackend {
    pub addr: SocketAddr,
    state: Arc<BackendState>,
    _shutdown: Arc<oneshot::Sender<()>>,
    kill_switch: Option<Arc<KillSwitch>>,
}

/// The tasks of a killable backend: its accept loop and one per connection.
struct KillSwitch {
    accept: tokio::task::AbortHandle,
    connections: Arc<Mutex<tokio::task::JoinSet<()>>>,
}

impl MockBackend {
    pub async fn start() -> MockBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener).await
    }

    pub async fn start_on(listener: tokio::net::TcpListener) -> MockBackend {
        Self::start_with(listener, None).await
    }

    /// A backend serving TLS (and asking for client certificates if `tls` says so).
    pub async fn start_tls(tls: tonic::transport::ServerTlsConfig) -> MockBackend {
        Self::start_with(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), Some(tls)).await
    }

    /// A TLS backend on `listener`.
    pub async fn start_tls_on(
        listener: tokio::net::TcpListener,
        tls: tonic::transport::ServerTlsConfig,
    ) -> MockBackend {
        Self::start_with(listener, Some(tls)).await
    }

    /// A backend on `listener` that [`MockBackend::kill`] can stop the way a crash does: listener and connections
    /// dropped at once, calls in flight left unanswered.
    pub async fn start_killable_on(listener: tokio::net::TcpListener) -> MockBackend {
        use hyper_util::server::conn::auto::Builder;
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(BackendState::default());
        let routes = tonic::service::Routes::new(RawService::<0> { state: Arc::clone(&state) })
            .add_service(RawService::<1> { state: Arc::clone(&state) })
            .add_service(RawService::<2> { state: Arc::clone(&state) })
            .add_service(RawService::<3> { state: Arc::clone(&state) });
        let connections = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let tasks = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper_util::service::TowerToHyperService::new(routes.clone());
                tasks.lock().unwrap().spawn(async move {
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let (tx, _) = oneshot::channel::<()>();
        let kill_switch = Some(Arc::new(KillSwitch { accept: accept.abort_handle(), connections }));
        MockBackend { addr, state, _shutdown: Arc::new(tx), kill_switch }
    }

    /// Kills a backend started with [`MockBackend::start_killable_on`].
    pub fn kill(&self) {
        let switch = self.kill_switch.as_ref().expect("a killable backend");
        switch.accept.abort();
        switch.connections.lock().unwrap().abort_all();
    }

    async fn start_with(
        listener: tokio::net::TcpListener,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> MockBackend {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(BackendState::default());
        let (tx, rx) = oneshot::channel::<()>();
        let incoming = tokio_stream_from(listener);
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).unwrap();
        }
        let server = builder
            .add_service(RawService::<0> { state: Arc::clone(&state) })
            .add_service(RawService::<1> { state: Arc::clone(&state) })
            .add_service(RawService::<2> { state: Arc::clone(&state) })
            .add_service(RawService::<3> { state: Arc::clone(&state) });
        tokio::spawn(async move {
            let _ = server
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        MockBackend { addr, state, _shutdown: Arc::new(tx), kill_switch: None }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Actions for the next calls, in order; afterwards the fallback (default: acknowledge).
    pub fn script(&self, actions: impl IntoIterator<Item = Action>) {
        self.state.script.lock().unwrap().extend(actions);
    }

    /// What every call does once the script is used up.
    pub fn always(&self, action: Action) {
        *self.state.fallback.lock().unwrap() = Some(action);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn acked(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.acked).collect()
    }

    /// Empty exports (the bridge's probes) answered so far.
    pub fn probes(&self) -> usize {
        self.state.probes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn calls(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }

    /// Waits until at least `n` calls arrived (bounded).
    pub async fn wait_calls(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.state.notify.notified();
            if self.calls() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("backend got {} calls, expected {n}", self.calls());
            }
        }
    }

    pub fn traces(&self) -> Vec<ExportTraceServiceRequest> {
        self.acked_of(SignalKind::Traces)
    }
    pub fn metrics(&self) -> Vec<ExportMetricsServiceRequest> {
        self.acked_of(SignalKind::Metrics)
    }
    pub fn logs(&self) -> Vec<ExportLogsServiceRequest> {
        self.acked_of(SignalKind::Logs)
    }

    fn acked_of<M: Message + Default>(&self, kind: SignalKind) -> Vec<M> {
        self.acked().into_iter().filter(|r| r.kind == kind).map(|r| M::decode(r.raw).unwrap()).collect()
    }

    /// Span ids of every acknowledged span, in arrival order.
    pub fn span_ids(&self) -> Vec<Vec<u8>> {
        self.traces()
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter())
            .map(|s| s.span_id.clone())
            .collect()
    }
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, _)| s);
        Some((next, l))
    })
}

const NAMES: [&str; SignalKind::COUNT] = [
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
    "opentelemetry.proto.collector.profiles.v1development.ProfilesService",
];

#[derive(Clone)]
struct RawService<const K: usize> {
    state: Arc<BackendState>,
}

impl<const K: usize> tonic::server::NamedService for RawService<K> {
    const NAME: &'static str = NAMES[K];
}

impl<const K: usize> tower::Service<http::Request<tonic::body::Body>> for RawService<K> {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let metadata = req.headers().clone();
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .max_decoding_message_size(64 << 20);
            Ok(grpc.unary(Handler { state, metadata, kind: SignalKind::ALL[K] }, req).await)
        })
    }
}

struct Handler {
    state: Arc<BackendState>,
    metadata: http::HeaderMap,
    kind: SignalKind,
}

impl tonic::server::UnaryService<Bytes> for Handler {
    type Response = Bytes;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<tonic::Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let state = Arc::clone(&self.state);
        let metadata = self.metadata.clone();
        let kind = self.kind;
        Box::pin(async move {
            let raw = request.into_inner();
            if raw.is_empty() {
                // The bridge's probe (start-up, /ready, --check): real backends answer an empty export OK, and it is
                // neither data nor a scripted call.
                state.probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(tonic::Response::new(Bytes::new()));
            }
            let action = {
                let next = state.script.lock().unwrap().pop_front();
                next.or_else(|| state.fallback.lock().unwrap().clone()).unwrap_or(Action::Ok(None))
            };
            let index = {
                let mut received = state.received.lock().unwrap();
                received.push(Received { kind, raw, metadata, acked: false });
                received.len() - 1
            };
            state.notify.notify_waiters();
            let mut action = action;
            loop {
                match action {
                    Action::Delay(d, inner) => {
                        tokio::time::sleep(d).await;
                        action = *inner;
                    }
                    Action::Hang => std::future::pending::<()>().await,
                    Action::Fail(status) => return Err(status),
                    Action::Ok(partial) => {
                        state.received.lock().unwrap()[index].acked = true;
                        state.notify.notify_waiters();
                        let response = match partial {
                            // The three responses share one layout; the trace one stands for all.
                            Some((rejected, message)) => {
                                otlp_bridge::proto::collector::trace::v1::ExportTraceServiceResponse {
                                    partial_success: Some(
                                        otlp_bridge::proto::collector::trace::v1::ExportTracePartialSuccess {
                                            rejected_spans: rejected,
                                            error_message: message,
                                        },
                                    ),
                                }
                            }
                            None => Default::default(),
                        };
                        return Ok(tonic::Response::new(Bytes::from(response.encode_to_vec())));
                    }
                }
            }
        })
    }
}

/// Bytes in, bytes out: the backend's codec, and a test client's that sends a message exactly as given.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

// ---------------------------------------------------------------- the bridge

/// A bridge running in this process.
pub struct Bridge {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The OTLP/gRPC input's address, when the config turned it on.
    pub grpc: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), otlp_bridge::RunError>>>,
}

/// A default config sending everything to `backends`, with short timeouts suited to tests.
pub fn config_for(backends: &[&MockBackend]) -> Config {
    let mut config = Config::default().with_backends(backends.iter().map(|b| BackendTarget::url(b.url())).collect());
    config.retry.initial_interval = Duration::from_millis(20);
    config.retry.max_interval = Duration::from_millis(200);
    config.retry.max_elapsed = Duration::from_secs(3);
    config.export_timeout = Duration::from_secs(2);
    config
}

impl Bridge {
    pub async fn start(config: Config) -> Bridge {
        // The gRPC input on port 0 when the config turns it on.
        let grpc = match config.grpc_listen {
            Some(_) => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            None => None,
        };
        let listeners = otlp_bridge::Listeners {
            http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            grpc,
        };
        let addr = listeners.http.local_addr().unwrap();
        let grpc = listeners.grpc.as_ref().map(|l| l.local_addr().unwrap());
        let admin = listeners.admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(otlp_bridge::run(config, listeners, async {
            let _ = stopped.await;
        }));
        Bridge { addr, admin, grpc, stop: Some(stop), task: Some(task) }
    }

    pub async fn with_backend(backend: &MockBackend) -> Bridge {
        Bridge::start(config_for(&[backend])).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Starts the graceful shutdown and waits for the bridge to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("bridge stopped in time")
                .unwrap()
                .unwrap();
        }
    }

    pub async fn metrics(&self) -> String {
        let r = get(&format!("http://{}/metrics", self.admin)).await;
        String::from_utf8(r.body.to_vec()).unwrap()
    }

    /// Sum of a metric's samples whose line contains every one of `label_parts`.
    pub async fn metric(&self, name: &str, label_parts: &[&str]) -> f64 {
        sum_metric(&self.metrics().await, name, label_parts)
    }
}

/// Waits (bounded by `limit`) until the metric served at `admin` satisfies `pred`, and returns its value; polls, as
/// a metric is only seen by asking, and fails with the last value and `what` was expected.
pub async fn wait_metric_at(
    admin: SocketAddr,
    name: &str,
    label_parts: &[&str],
    what: &str,
    limit: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    eventually(&format!("{name}{label_parts:?}: {what}"), limit, || async {
        let answer = get(&format!("http://{admin}/metrics")).await;
        let value = sum_metric(&String::from_utf8_lossy(&answer.body), name, label_parts);
        if pred(value) {
            Ok(value)
        } else {
            Err(value)
        }
    })
    .await
}

/// Waits until no request data is held against the memory limit any more (every reservation released).
pub async fn held_bytes_back_to_zero(admin: SocketAddr) {
    let what = "0 (every reservation released)";
    wait_metric_at(admin, "otlp_bridge_memory_held_bytes", &[], what, Duration::from_secs(30), |v| v == 0.0).await;
}

pub fn sum_metric(text: &str, name: &str, label_parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| label_parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------- the client

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `google.rpc.Status` of an error answer, decoded from either encoding.
    pub fn status_message(&self) -> (i32, String) {
        if self.header("content-type") == Some("application/x-protobuf") {
            let s = tonic_types::Status::decode(self.body.clone()).expect("error body is a google.rpc.Status");
            (s.code, s.message)
        } else {
            let v: serde_json::Value = serde_json::from_slice(&self.body).expect("error body is JSON");
            (v["code"].as_i64().unwrap_or(-1) as i32, v["message"].as_str().unwrap_or_default().to_string())
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response =
        tokio::time::timeout(Duration::from_secs(30), client.request(builder.body(Full::new(body.into())).unwrap()))
            .await
            .expect("answer within 30 s")
            .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body }
}

pub async fn post(url: &str, content_type: &str, body: impl Into<Bytes>) -> Answer {
    request("POST", url, &[("content-type", content_type)], body).await
}

pub async fn post_pb<M: Message>(bridge: &Bridge, path: &str, message: &M) -> Answer {
    post(&bridge.url(path), "application/x-protobuf", message.encode_to_vec()).await
}

pub async fn get(url: &str) -> Answer {
    request("GET", url, &[], Bytes::new()).await
}

// ---------------------------------------------------------------- payloads

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/otlp-examples/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("official example {name}: {e}"))
}

/// A trace request with `n` spans whose span ids are `first..first+n` (big-endian), with some attributes.
pub fn spans(first: u64, n: u64) -> ExportTraceServiceRequest {
    padded_spans(first, n, 0)
}

/// The number a span id of [`spans`] carries (its 8 bytes, big-endian); 0 for an id of another length.
pub fn span_number(id: &[u8]) -> u64 {
    u64::from_be_bytes(id.try_into().unwrap_or_default())
}

/// The one span builder of the suite: a trace request of `n` spans whose ids are `first..first + n` (big-endian, see
/// [`span_number`]), each with a `pad` attribute of `pad` bytes when `pad > 0` (to make requests of a given size).
pub fn padded_spans(first: u64, n: u64, pad: usize) -> ExportTraceServiceRequest {
    use otlp_bridge::proto::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
    use otlp_bridge::proto::resource::v1::Resource;
    use otlp_bridge::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }),
        ..Default::default()
    };
    let filler = "x".repeat(pad);
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", "test")], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "tests".into(), ..Default::default() }),
                spans: (first..first + n)
                    .map(|i| Span {
                        trace_id: [7u8; 16].to_vec(),
                        span_id: i.to_be_bytes().to_vec(),
                        name: format!("span {i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + i,
                        end_time_unix_nano: 1_700_000_000_000_001_000 + i,
                        attributes: if pad > 0 {
                            vec![kv("http.route", "/api/{id}"), kv("n", &i.to_string()), kv("pad", &filler)]
                        } else {
                            vec![kv("http.route", "/api/{id}"), kv("n", &i.to_string())]
                        },
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------- waiting

/// The one deadline loop of the suite: polls `probe` (every 50 ms) until it returns `Ok`, and fails after `limit`
/// naming `what` and the last `Err` it saw. For "eventually, within a generous bound": what a test waits for is seen
/// by asking, never by sleeping a fixed time.
pub async fn eventually<T, E, Fut>(what: &str, limit: Duration, mut probe: impl FnMut() -> Fut) -> T
where
    E: std::fmt::Debug,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(tokio::time::Instant::now() < deadline, "{what}: not within {limit:?}; last: {last:?}")
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- the binary, and servers that are not backends

/// Runs the `otlp-bridge` binary to completion (`--check`, a configuration error) with `env` added, killing it
/// after 30 s; never inherits OTLP_BRIDGE_* or OTEL_* variables from the test's own environment.
pub async fn run_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_otlp-bridge"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("OTLP_BRIDGE_") || key.starts_with("OTEL_") || key.starts_with("RUST_") {
            command.env_remove(key);
        }
    }
    command.args(args).envs(env.iter().copied()).kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), command.output()).await.expect("the binary finished").unwrap()
}

/// A plain HTTP/1.1 server (what a web server, a UI or an HTTP/1.1-only proxy looks like to a gRPC client): it
/// answers every request `400 Bad Request`, the way such servers answer the HTTP/2 preface.
pub async fn http1_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                // Read on until the client hangs up, so it hears the answer rather than a reset.
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}
