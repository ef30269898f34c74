//! Wires one bridge together: backends, per-signal pipelines, the receiver and the admin server; runs them until
//! shutdown, then drains.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::batch::{FlushReason, Limits, Pipeline};
use crate::config::{BackendTarget, Config};
use crate::export::{build_outputs, probe_all, Export, ExportBuffers, Exporter, Output, ProbeError, SetupError};
use crate::ingest::Ingest;
use crate::input::file::FileInput;
use crate::input::grpc::{self, GrpcInput};
use crate::input::Inputs;
use crate::limit::MemoryBudget;
use crate::queue::{DeliveryConfig, OpenError, Queue, QueueBackend, QueueConfig, ReaderExport};
use crate::receive::pings::PingPolicy;
use crate::receive::{self, Receiver};
use crate::signal::SignalKind;
use crate::sink::{Direct, Queued, Sink};
use crate::telemetry::{self, Readiness, Telemetry};

/// Longest a request body may pause while it holds part of the memory budget (within `--read-timeout`): long
/// enough for a client on a congested link, short enough that stalled uploads cannot keep memory from others.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Each backend's answer to a `/ready` probe: inside the 2-5 s timeouts orchestrators give readiness probes.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The start-up check of each backend only logs, so it may wait longer than a readiness probe.
const STARTUP_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// At shutdown, what queue readers keep of the shutdown bound to end after their drain: cancel what is still in
/// flight, give open units up (an archive aborts their uploads), store their cursors.
const READER_FINISH: Duration = Duration::from_secs(2);
/// How long past the shutdown bound the bridge waits for its queue readers before it leaves them.
const READER_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a request's headers on the OTLP port, whatever `--read-timeout` says: idle connections that
/// never send a request must not hold connection slots for long.
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Exports accepted before shutdown get at least this long to finish, even when the drain used up the timeout.
const MIN_EXPORT_DRAIN: Duration = Duration::from_secs(1);
/// Scrapes and probes in flight at shutdown are short.
const ADMIN_DRAIN: Duration = Duration::from_secs(1);
/// The least a queue reader may hold however small the memory limit: enough for a batch of typical requests.
const MIN_READER_HOLD: usize = 64 * 1024;
/// gRPC clients may ping this often (keepalive): the shortest keepalive time grpc-go and grpc-java clients let a user
/// configure. More often than that, three times with no call in between, is a flood (grpc-go's enforcement
/// policy, whose own default, 5 minutes, refuses clients configured with common keepalive times).
const GRPC_PING_POLICY: PingPolicy = PingPolicy { min_interval: Duration::from_secs(10), max_strikes: 2 };
/// A gRPC connection with no call for this long gets GOAWAY: SDK exporters send at least every minute, so only
/// connections that are really unused (that keepalive pings would otherwise hold open for ever) end.
const GRPC_MAX_IDLE: Duration = Duration::from_secs(300);

/// The bound sockets a bridge serves (bound by the caller, so tests can use port 0).
#[derive(Debug)]
pub struct Listeners {
    /// OTLP/HTTP.
    pub http: TcpListener,
    /// Admin: /metrics /health /ready.
    pub admin: TcpListener,
    /// OTLP/gRPC, when it is on (`--grpc-listen`).
    pub grpc: Option<TcpListener>,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let http = TcpListener::bind(config.listen).await.map_err(|e| with_addr(e, "--listen", config.listen))?;
        let admin = TcpListener::bind(config.metrics_listen)
            .await
            .map_err(|e| with_addr(e, "--metrics-listen", config.metrics_listen))?;
        let grpc = match config.grpc_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| with_addr(e, "--grpc-listen", addr))?),
            None => None,
        };
        Ok(Listeners { http, admin, grpc })
    }
}

fn with_addr(e: std::io::Error, flag: &str, addr: std::net::SocketAddr) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({flag}): {e}"))
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A backend could not be set up.
    #[error(transparent)]
    Backend(#[from] SetupError),
    /// The durable queue could not be opened.
    #[error(transparent)]
    Queue(#[from] OpenError),
    /// The receiver's TLS files are unusable.
    #[error("receiver TLS (--tls-cert, --tls-key, --tls-client-ca): {0}")]
    Tls(#[from] receive::tls::TlsError),
    /// The token file is unreadable.
    #[error("--auth-token-file: {0}")]
    Auth(#[from] receive::auth::TokenFileError),
    /// A file input's state directory or positions file is unusable.
    #[error("file input positions (--file-state-dir): {0}")]
    FilePositions(#[from] crate::input::file::PositionsError),
}

/// Each output with the signal it is probed with (the first that it serves).
struct BackendsReady {
    outputs: Vec<(Arc<dyn Output>, SignalKind)>,
}

impl BackendsReady {
    fn new(config: &Config, outputs: &[(BackendTarget, Arc<dyn Output>)]) -> BackendsReady {
        let first_signal = |target: &BackendTarget| {
            SignalKind::ALL
                .into_iter()
                .find(|k| config.backends[k.index()].contains(target))
                .unwrap_or(SignalKind::Traces)
        };
        BackendsReady { outputs: outputs.iter().map(|(t, o)| (Arc::clone(o), first_signal(t))).collect() }
    }

    /// Probes every output at once (the gRPC output: see its `probe` for why an empty export).
    async fn probe_all(&self, timeout: Duration) -> Vec<(&str, Result<String, ProbeError>)> {
        probe_all(&self.outputs, timeout).await
    }
}

impl Readiness for BackendsReady {
    async fn ready(&self) -> Result<(), String> {
        let failures: Vec<String> = self
            .probe_all(READY_PROBE_TIMEOUT)
            .await
            .into_iter()
            .filter_map(|(_, r)| r.err().map(|e| e.to_string()))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

/// What `/ready` checks: in direct mode every backend is reachable; in queued mode the queue accepts data (a
/// backend outage is exactly when the queue is useful).
enum Ready {
    Backends(Arc<BackendsReady>),
    Queue(Arc<Queue>),
}

impl Readiness for Ready {
    async fn ready(&self) -> Result<(), String> {
        match self {
            Ready::Backends(b) => b.ready().await,
            Ready::Queue(q) => q.accepting(),
        }
    }
}

/// Queued mode's parts: the queue and its readers (one per backend).
struct QueueMode {
    queue: Arc<Queue>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl QueueMode {
    fn start(
        config: &Config,
        queue_config: &QueueConfig,
        backends: &[(BackendTarget, Arc<dyn Output>)],
        limits: Limits,
        budget: &Arc<MemoryBudget>,
        telemetry: &Arc<Telemetry>,
    ) -> Result<(QueueMode, crate::queue::Appender), OpenError> {
        let signals = |target| SignalKind::ALL.map(|k| config.backends[k.index()].contains(target));
        let described: Vec<QueueBackend> =
            backends.iter().map(|(t, _)| QueueBackend { label: t.label().to_string(), signals: signals(t) }).collect();
        let (queue, appender) = Queue::open(queue_config, &described, Arc::clone(telemetry))?;
        let exporters: Vec<(ReaderExport, _)> = backends
            .iter()
            .map(|(target, backend)| {
                let takes = signals(target);
                let exporters = SignalKind::ALL.map(|kind| {
                    takes[kind.index()].then(|| {
                        let mine = vec![Arc::clone(backend)];
                        let exporter: Arc<dyn Export> =
                            Arc::new(Exporter::new(kind, mine, config, Arc::clone(telemetry)));
                        exporter
                    })
                });
                (exporters, backend.delivery().batch)
            })
            .collect();
        let delivery = DeliveryConfig {
            limits,
            concurrency: config.export_concurrency,
            max_age: queue_config.max_age,
            // Readers together hold at most half the memory limit; requests keep the other half.
            hold_bytes: (config.memory_limit_bytes / 2 / backends.len().max(1)).max(MIN_READER_HOLD),
        };
        let (stop, stopped) = watch::channel(false);
        let readers = queue.start_readers(exporters, delivery, Arc::clone(budget), stopped);
        Ok((QueueMode { queue: Arc::new(queue), readers, stop }, appender))
    }

    /// Stops the readers: an archive's exports what it has read (its open objects are completed) for up to `drain`,
    /// the others at once; each then stores its cursor, and what is left stays queued for the next start.
    async fn stop(self, drain: Duration) {
        self.queue.close().await;
        self.queue.drain_until(tokio::time::Instant::now() + drain.saturating_sub(READER_FINISH));
        let _ = self.stop.send(true);
        let bound = drain + READER_STOP_TIMEOUT;
        if tokio::time::timeout(bound, futures_util::future::join_all(self.readers)).await.is_err() {
            tracing::warn!(
                "shutdown: queue readers did not stop within {bound:?}; queued data stays for the next start"
            );
        }
    }
}

/// Runs a bridge until `shutdown` resolves; then stops accepting, lets in-flight requests finish and exports what
/// was accepted, all within `config.shutdown_timeout`.
pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let telemetry = Telemetry::new();
    let buffers = ExportBuffers::new(config.memory_limit_bytes / 4);
    let budget = MemoryBudget::new(config.memory_limit_bytes);
    let backends = build_outputs(&config, &telemetry, &buffers, &budget)?;
    telemetry.register_known(&config.backends.clone().map(|b| b.iter().map(|t| t.label().to_string()).collect()));
    telemetry.register_flush_reasons(&FlushReason::ALL.map(FlushReason::as_str));
    let server_tls = config.server_tls.as_ref().map(receive::tls::ServerTls::load).transpose()?;
    // Ends by itself once the receiver (the last holder of the TLS configuration) is gone.
    let _tls_watch = server_tls.as_ref().map(|tls| tls.watch(Arc::clone(&telemetry)));
    let auth = config.auth_token_file.as_deref().map(receive::auth::Tokens::load).transpose()?;
    let _auth_watch = auth.as_ref().map(receive::auth::Tokens::watch);
    let limits = match config.batch {
        Some(b) => Limits { max_items: b.max_items, max_bytes: b.max_bytes, timeout: b.timeout },
        // Batching off: every entry fills a batch on its own.
        None => Limits { max_items: 1, max_bytes: config.batch_max_bytes, timeout: Duration::ZERO },
    };
    let mut workers = Vec::new();
    let (sink, queued): (Arc<dyn Sink>, Option<QueueMode>) = match &config.queue {
        None => {
            let pipelines = SignalKind::ALL.map(|kind| {
                let mine: Vec<Arc<dyn Output>> = config.backends[kind.index()]
                    .iter()
                    .filter_map(|t| backends.iter().find(|(bt, _)| bt == t).map(|(_, b)| Arc::clone(b)))
                    .collect();
                // One lane per output: a slow output holds its own slots and batches, not the others'.
                let exporters: Vec<Exporter> = mine
                    .into_iter()
                    .map(|output| Exporter::new(kind, vec![output], &config, Arc::clone(&telemetry)))
                    .collect();
                let retry_budget = (!config.retry.max_elapsed.is_zero()).then_some(config.retry.max_elapsed);
                let (pipeline, lanes) = Pipeline::start(
                    kind,
                    exporters,
                    limits.for_signal(kind),
                    config.export_concurrency,
                    config.max_partitions,
                    retry_budget,
                    Arc::clone(&telemetry),
                );
                workers.extend(lanes);
                pipeline
            });
            (Arc::new(Direct { pipelines }), None)
        }
        Some(queue_config) => {
            let (mode, appender) = QueueMode::start(&config, queue_config, &backends, limits, &budget, &telemetry)?;
            (Arc::new(Queued { appender }), Some(mode))
        }
    };
    let ingest = Arc::new(
        Ingest::new(sink, Arc::clone(&budget), Arc::clone(&telemetry), config.batch_max_bytes)
            .with_resource_attributes(&config.resource_attributes),
    );
    // File inputs read their positions now: an unusable state directory is a start-up error.
    let file_inputs = config
        .files
        .iter()
        .map(|f| FileInput::open(f, config.memory_limit_bytes, config.batch_max_bytes, &telemetry))
        .collect::<Result<Vec<_>, _>>()?;
    let receiver = Arc::new(Receiver {
        ingest: Arc::clone(&ingest),
        telemetry: Arc::clone(&telemetry),
        max_body_bytes: config.max_body_bytes,
        read_timeout: config.read_timeout,
        auth: auth.clone(),
        body_idle_timeout: config.read_timeout.min(BODY_IDLE_TIMEOUT),
        forward_headers: config.forward_headers.clone(),
        grpc_warned: std::sync::atomic::AtomicBool::new(false),
        grpc_listen: listeners.grpc.as_ref().and_then(|l| l.local_addr().ok()),
    });
    let grpc_input = listeners.grpc.as_ref().map(|_| {
        Arc::new(GrpcInput {
            ingest: Arc::clone(&ingest),
            telemetry: Arc::clone(&telemetry),
            max_body_bytes: config.max_body_bytes,
            read_timeout: config.read_timeout,
            body_idle_timeout: config.read_timeout.min(BODY_IDLE_TIMEOUT),
            auth,
            forward_headers: config.forward_headers.clone(),
        })
    });
    let open_connections = Arc::new(AtomicUsize::new(0));
    {
        // Read at each scrape by the registry; the budget and the counter know nothing of metrics.
        let (budget, open) = (Arc::clone(&budget), Arc::clone(&open_connections));
        let limit = budget.limit() as f64;
        telemetry.gauge_on_scrape("otlp_bridge_memory_held_bytes", move || budget.held() as f64);
        telemetry.gauge_on_scrape("otlp_bridge_memory_limit_bytes", move || limit);
        telemetry.gauge_on_scrape("otlp_bridge_connections_open", move || open.load(Ordering::Relaxed) as f64);
    }

    let readiness = Arc::new(BackendsReady::new(&config, &backends));
    let admin_addr = listeners.admin.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let (stop_admin, admin_stopped) = watch::channel(false);
    let admin = tokio::spawn(serve_admin(
        listeners.admin,
        Arc::clone(&telemetry),
        Arc::new(match &queued {
            None => Ready::Backends(Arc::clone(&readiness)),
            Some(mode) => Ready::Queue(Arc::clone(&mode.queue)),
        }),
        admin_stopped,
    ));

    let started = Started {
        listen: listeners.http.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        grpc_listen: listeners.grpc.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()),
        admin: admin_addr,
        mode: if queued.is_some() {
            "queued: 200 once fsynced to --queue-dir, then delivered to every backend"
        } else {
            "direct: 200 once every backend acknowledged"
        },
        backends: backends.iter().map(|(t, _)| t.label().to_string()).collect(),
        memory_limit_mib: config.memory_limit_bytes >> 20,
        batching: config.batch.is_some(),
        queue: config.queue.as_ref().map(|q| q.dir.display().to_string()),
        tls: server_tls.is_some(),
    };
    tokio::spawn(announce(started, readiness, queued.is_some()));
    let limits = receive::server::ServeLimits {
        max_connections: config.max_connections,
        header_timeout: config.read_timeout.min(MAX_HEADER_TIMEOUT),
        drain: config.shutdown_timeout,
        max_connection_age: config.max_connection_age,
        listener: "otlp",
        pings: None,
        max_idle: None,
    };
    let service = receive::stack(receiver, &config.cors_allowed_origins);
    let mut inputs = Inputs::new();
    if let (Some(listener), Some(input)) = (listeners.grpc, grpc_input) {
        // The same accept loop, TLS files and connection cap as HTTP; pings bounded and idle connections ended.
        let limits = receive::server::ServeLimits {
            listener: "grpc",
            pings: Some(GRPC_PING_POLICY),
            max_idle: Some(GRPC_MAX_IDLE),
            ..limits
        };
        inputs.spawn(
            "grpc",
            receive::serve(
                listener,
                server_tls.clone(),
                grpc::service(input),
                limits,
                Arc::clone(&telemetry),
                Arc::clone(&open_connections),
                inputs.stopping(),
            ),
        );
    }
    inputs.spawn(
        "http",
        receive::serve(
            listeners.http,
            server_tls,
            service,
            limits,
            Arc::clone(&telemetry),
            open_connections,
            inputs.stopping(),
        ),
    );
    // File inputs stop like every input: the batch in flight gets the drain bound, then positions are saved.
    for input in file_inputs {
        let stopping = inputs.stopping();
        inputs.spawn("file", input.run(Arc::clone(&ingest), stopping, config.shutdown_timeout));
    }
    shutdown.await;
    let started_drain = tokio::time::Instant::now();
    tracing::info!("shutting down: no new requests; exporting what was accepted");
    // Every input stops accepting and answers what it accepted, each within the drain bound.
    inputs.stop().await;

    // With the inputs gone, the pipelines' senders drop and each worker flushes, exports and ends.
    drop(ingest);
    if let Some(mode) = queued {
        // Every append in flight has been answered (the server waited for its requests); what the readers have read
        // is exported within what is left of the shutdown bound, and what is queued beyond it stays.
        mode.stop(config.shutdown_timeout.saturating_sub(started_drain.elapsed())).await;
    }
    let left = config.shutdown_timeout.saturating_sub(started_drain.elapsed()).max(MIN_EXPORT_DRAIN);
    if tokio::time::timeout(left, futures_util::future::join_all(workers)).await.is_err() {
        tracing::warn!(
            "shutdown: exports still running after {:?}; their data was not acknowledged",
            config.shutdown_timeout
        );
    }
    let _ = stop_admin.send(true);
    let _ = admin.await;
    tracing::info!("stopped");
    Ok(())
}

/// What the start-up line says: the bound addresses (tests and scripts read them from it), the delivery mode and
/// the settings a person checks first.
struct Started {
    listen: String,
    grpc_listen: Option<String>,
    admin: String,
    mode: &'static str,
    backends: Vec<String>,
    memory_limit_mib: usize,
    batching: bool,
    queue: Option<String>,
    tls: bool,
}

/// The start-up line, once each backend answered the start-up check or did not, without holding the listeners back
/// (they serve from the start): a backend that is down now may be up by the first export, and exports retry.
///
/// In direct mode `/ready` needs every backend, so the line says "ready" only when each answered, and otherwise
/// "listening; backend not reachable yet" (a "ready" beside a `/ready` answering 503 misleads). In queued mode the
/// queue takes data whatever the backends do: the line comes at once and says "ready"; the check only logs.
async fn announce(started: Started, readiness: Arc<BackendsReady>, queued: bool) {
    macro_rules! line {
        ($level:ident, $message:literal $(, $extra:ident = $value:expr)?) => {
            tracing::$level!(
                listen = %started.listen,
                grpc_listen = %started.grpc_listen.as_deref().unwrap_or("off"),
                admin = %started.admin,
                mode = started.mode,
                backends = ?started.backends,
                memory_limit_mib = started.memory_limit_mib,
                batching = started.batching,
                queue = ?started.queue,
                tls = started.tls,
                $($extra = ?$value,)?
                $message
            )
        };
    }
    if queued {
        line!(info, "otlp-bridge ready");
    }
    let mut unreachable = Vec::new();
    for (url, outcome) in readiness.probe_all(STARTUP_PROBE_TIMEOUT).await {
        match outcome {
            Ok(what) => tracing::info!(backend = url, "backend {what}"),
            Err(e) => {
                tracing::warn!(backend = url, "backend check failed: {e}");
                unreachable.push(url.to_string());
            }
        }
    }
    if queued {
        return;
    }
    if unreachable.is_empty() {
        line!(info, "otlp-bridge ready");
    } else {
        // The listeners take requests already; each waits for (and retries) the backend.
        line!(
            warn,
            "otlp-bridge listening; backend not reachable yet (/ready answers 503 until it is)",
            unreachable = unreachable
        );
    }
}

/// Connections the admin server keeps open at most: Prometheus, a kubelet's probes and a person with curl need a
/// handful; a cap keeps a flood of the admin port from taking the file descriptors OTLP clients need.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// Time an admin client has to send its request headers: scrapes and probes send them at once.
const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the admin port with the receiver's bounded accept loop (connection cap, header timeout) until `stop`.
async fn serve_admin(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    readiness: Arc<Ready>,
    mut stop: watch::Receiver<bool>,
) {
    let service = {
        let telemetry = Arc::clone(&telemetry);
        tower::service_fn(move |req| {
            let telemetry = Arc::clone(&telemetry);
            let readiness = Arc::clone(&readiness);
            async move { Ok::<_, std::convert::Infallible>(telemetry::admin(&telemetry, readiness.as_ref(), req).await) }
        })
    };
    let limits = receive::server::ServeLimits {
        max_connections: ADMIN_MAX_CONNECTIONS,
        header_timeout: ADMIN_HEADER_TIMEOUT,
        drain: ADMIN_DRAIN,
        // Scrapes and probes are short; rebalancing does not apply to the admin port.
        max_connection_age: None,
        listener: "admin",
        pings: None,
        max_idle: None,
    };
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let admin_open = Arc::new(AtomicUsize::new(0));
    receive::serve(listener, None, service, limits, telemetry, admin_open, stopped).await;
}
