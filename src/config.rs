//! Command line, environment and defaults -> one validated [`Config`].
//!
//! Precedence is flag, then `OTLP_BRIDGE_*` variable, then the standard `OTEL_EXPORTER_OTLP_*` variable, then the
//! default. Each default below says where it comes from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::signal::SignalKind;

/// Most `--forward-header` partitions with an open batch, per signal. The Collector's batch processor bounds the
/// same thing with `metadata_cardinality_limit`, whose default is also 1000.
pub const MAX_PARTITIONS: usize = 1000;

/// Flags of the `otlp-bridge` binary; every flag also reads the `OTLP_BRIDGE_*` variable of the same words.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "otlp-bridge",
    version,
    about = "Receives OTLP over HTTP (JSON and protobuf) and forwards it over OTLP/gRPC."
)]
pub struct Cli {
    /// OTLP/HTTP receiver address (HTTP/1.1 and h2c on one port), IP:PORT or HOST:PORT (a name is resolved once,
    /// IPv4 first). Use 0.0.0.0:4318 inside a container.
    #[arg(long, env = "OTLP_BRIDGE_LISTEN", default_value = "127.0.0.1:4318", value_parser = parse_listen_addr)]
    pub listen: SocketAddr,

    /// gRPC backend: http://host:port, https://host:port, or `debug` (prints each request as one OTLP/JSON line).
    /// Repeat (or comma-separate in the env var) to send every item to every backend. Falls back to
    /// OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT per signal), then
    /// http://localhost:4317.
    #[arg(long = "backend", env = "OTLP_BRIDGE_BACKEND", value_delimiter = ',', value_name = "URL")]
    pub backends: Vec<String>,

    /// Admin server: GET /metrics (Prometheus text), /health, /ready. IP:PORT or HOST:PORT, like --listen.
    #[arg(long, env = "OTLP_BRIDGE_METRICS_LISTEN", default_value = "127.0.0.1:8888", value_parser = parse_listen_addr)]
    pub metrics_listen: SocketAddr,

    /// Request body limit in bytes, applied to the bytes on the wire and again to the inflated bytes (over -> 413).
    /// Default 64 MiB, the OTLP specification's recommendation.
    #[arg(long, env = "OTLP_BRIDGE_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// gRPC metadata K=V sent with every export; repeatable (env: k=v,k2=v2). Added to OTEL_EXPORTER_OTLP_HEADERS.
    #[arg(long = "backend-header", env = "OTLP_BRIDGE_BACKEND_HEADER", value_delimiter = ',', value_name = "K=V")]
    pub backend_headers: Vec<String>,

    /// Comma-separated origins allowed to POST from a browser (`https://*.example.com` wildcards, or `*`).
    /// Empty: CORS off.
    #[arg(long, env = "OTLP_BRIDGE_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "LIST")]
    pub cors_allowed_origins: Vec<String>,

    /// PEM certificate chain: serve HTTPS (h2 and HTTP/1.1 by ALPN) on --listen. Needs --tls-key. Both files are
    /// re-read when they change (about every 2 s, symlink swaps included); a bad new pair keeps the old one.
    #[arg(long, env = "OTLP_BRIDGE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "OTLP_BRIDGE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle: require client certificates signed by it (mutual TLS); others are refused at the handshake.
    /// Needs --tls-cert; re-read when it changes.
    #[arg(long, env = "OTLP_BRIDGE_TLS_CLIENT_CA", value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// File of accepted bearer tokens, one per line (blank lines and `#` comments ignored); re-read when it changes.
    /// A request without `Authorization: Bearer <one of them>` gets 401. CORS preflights and the admin port need none.
    #[arg(long, env = "OTLP_BRIDGE_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Request header copied into each export's gRPC metadata (e.g. X-Scope-OrgID for Tempo, Mimir, Loki);
    /// repeatable (env: comma-separated); names match case-insensitively. Batches are partitioned by the values
    /// (requests without the header form their own), so one export never mixes two tenants. Direct mode: at most
    /// 1000 partitions per signal have open batches, a request opening one more gets 503 with Retry-After. With
    /// --queue-dir the values are stored with each record and delivery partitions the same way.
    #[arg(long = "forward-header", env = "OTLP_BRIDGE_FORWARD_HEADER", value_delimiter = ',', value_name = "NAME")]
    pub forward_headers: Vec<String>,

    /// MiB of request data the bridge may hold at once (being read, decoded, batched, in retry). Over -> 503 with
    /// Retry-After; a single request that needs more than all of it -> 413. Default 20: 32 clients posting 1.1 MiB
    /// requests to a backend that never answers peak at 42 MiB RSS (at 32: 69 MiB), so a sidecar fits a 64 MiB
    /// container; ordinary load holds a few MiB (16 connections x 100-span requests: 15 MiB RSS in all).
    #[arg(long, env = "OTLP_BRIDGE_MEMORY_LIMIT_MIB", default_value_t = 20)]
    pub memory_limit_mib: usize,

    /// Most items (spans, metric points, log records) in one export. Default 8192, the Collector's batch size.
    #[arg(long, env = "OTLP_BRIDGE_BATCH_MAX_ITEMS", default_value_t = 8192)]
    pub batch_max_items: u64,

    /// Most bytes in one export; larger requests are split at whole resource/scope/item entries. Default 4000000:
    /// under the 4 MiB gRPC message limit that most backends (the Collector, Jaeger, Tempo) keep by default.
    #[arg(long, env = "OTLP_BRIDGE_BATCH_MAX_BYTES", default_value_t = 4_000_000)]
    pub batch_max_bytes: usize,

    /// Longest data waits for more to join its batch while other exports are in flight. It usually goes sooner:
    /// at once when no export is in flight, and after about half the backend's recent export latency when an
    /// export slot is free. Default 200ms, the Collector's batch timeout.
    #[arg(long, env = "OTLP_BRIDGE_BATCH_TIMEOUT", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub batch_timeout: Duration,

    /// Export each request on its own, without batching (env: true/false, 1/0, yes/no, on/off).
    #[arg(long, env = "OTLP_BRIDGE_DISABLE_BATCHING", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub disable_batching: bool,

    /// Exports in flight at once per signal and backend.
    #[arg(long, env = "OTLP_BRIDGE_EXPORT_CONCURRENCY", default_value_t = 4)]
    pub export_concurrency: usize,

    /// Timeout of one export attempt. Falls back to OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds); default 5s, the
    /// Collector exporter's.
    #[arg(long, env = "OTLP_BRIDGE_EXPORT_TIMEOUT", value_parser = humantime::parse_duration)]
    pub export_timeout: Option<Duration>,

    /// First retry delay (then doubled, with jitter, up to --retry-max-interval).
    #[arg(long, env = "OTLP_BRIDGE_RETRY_INITIAL_INTERVAL", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub retry_initial_interval: Duration,

    /// Longest delay between two attempts.
    #[arg(long, env = "OTLP_BRIDGE_RETRY_MAX_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_max_interval: Duration,

    /// Total time spent retrying one batch before the client is answered 503/429 with Retry-After. Default 6s, so
    /// the answer arrives inside an SDK's usual 10 s export timeout; 0 disables retries.
    #[arg(long, env = "OTLP_BRIDGE_RETRY_MAX_ELAPSED", default_value = "6s", value_parser = humantime::parse_duration)]
    pub retry_max_elapsed: Duration,

    /// Compression of exports: gzip or none. Falls back to OTEL_EXPORTER_OTLP_COMPRESSION; default none (a bridge
    /// usually sits next to its backend, where gzip costs more CPU than it saves).
    #[arg(long, env = "OTLP_BRIDGE_BACKEND_COMPRESSION", value_parser = ["gzip", "none"])]
    pub backend_compression: Option<String>,

    /// PEM CA bundle to verify https backends (default: the Mozilla roots). Falls back to
    /// OTEL_EXPORTER_OTLP_CERTIFICATE.
    #[arg(long, env = "OTLP_BRIDGE_BACKEND_CA_FILE")]
    pub backend_ca_file: Option<PathBuf>,

    /// PEM client certificate for mutual TLS. Falls back to OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE.
    #[arg(long, env = "OTLP_BRIDGE_BACKEND_CLIENT_CERT")]
    pub backend_client_cert: Option<PathBuf>,

    /// PEM client key for mutual TLS. Falls back to OTEL_EXPORTER_OTLP_CLIENT_KEY.
    #[arg(long, env = "OTLP_BRIDGE_BACKEND_CLIENT_KEY")]
    pub backend_client_key: Option<PathBuf>,

    /// How often backend host names are resolved again (system resolver: /etc/hosts, then DNS); exports are spread
    /// round-robin over every address a name has. Default 5s: the TTL CoreDNS gives Kubernetes records and the
    /// Collector's loadbalancing exporter's DNS interval, so a new backend pod gets traffic within seconds for one
    /// lookup per backend every 5 s. A failing address also triggers a lookup (at most one a second).
    #[arg(long, env = "OTLP_BRIDGE_BACKEND_RESOLVE_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub backend_resolve_interval: Duration,

    /// Client connections are closed gracefully after about this age (+-10% jitter), so that clients reconnect and
    /// spread over new bridge replicas: HTTP/2 gets GOAWAY (requests in flight finish), HTTP/1.1 gets
    /// `Connection: close` on its next answer. Default 5m: after a scale-out the fleet evens out within about the
    /// HPA's own reaction time, for one reconnect per client connection every 5 minutes. 0 disables.
    #[arg(long, env = "OTLP_BRIDGE_MAX_CONNECTION_AGE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// Time a client has to send its request headers and body before 408.
    #[arg(long, env = "OTLP_BRIDGE_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub read_timeout: Duration,

    /// Open client connections at most; further connections are closed at once.
    #[arg(long, env = "OTLP_BRIDGE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Time allowed on SIGTERM/SIGINT for in-flight requests and accepted data to be delivered.
    #[arg(long, env = "OTLP_BRIDGE_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log lines: `text` (for people) or `json` (one JSON object per line with timestamp, level, message, target
    /// and the event's fields, for container log pipelines). The level comes from RUST_LOG (default info).
    #[arg(long, env = "OTLP_BRIDGE_LOG_FORMAT", default_value = "text", value_enum)]
    pub log_format: LogFormat,

    /// Check and exit: validate the configuration, send each backend one empty export (which OTLP/gRPC receivers
    /// answer OK), print the effective configuration with secrets masked; exit 0 when every backend answered, 1 when
    /// one did not, 2 when the configuration is invalid.
    #[arg(long)]
    pub check: bool,

    /// Durable queue directory. Set: a request is answered 200 once its data is fsynced here, then delivered to
    /// every backend from here, across backend outages and bridge restarts. Unset: direct mode (200 only after
    /// every backend acknowledged). One bridge per directory (a lock file enforces it).
    #[arg(long, env = "OTLP_BRIDGE_QUEUE_DIR", value_name = "DIR")]
    pub queue_dir: Option<PathBuf>,

    /// Disk the queue may use, in bytes; when full, requests get 503 with Retry-After and nothing queued is dropped.
    /// Default 268435456 (256 MiB): fits a sidecar's emptyDir next to its logs, and holds about 1.3 million typical
    /// spans (~200 bytes each), i.e. 40 minutes of a 500 spans/s service; give a gateway a volume and more.
    #[arg(long, env = "OTLP_BRIDGE_QUEUE_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub queue_max_bytes: u64,

    /// Queued data older than this is dropped (counted in otlp_bridge_queue_dropped_items_total and logged) instead of
    /// delivered. Default 24h: an outage over a night or a weekend day is bridged, while data older than a day is
    /// past what most backends still ingest (e.g. Prometheus-style TSDBs refuse samples that far out of order).
    #[arg(long, env = "OTLP_BRIDGE_QUEUE_MAX_AGE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub queue_max_age: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Errors in the configuration, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A backend URL that is neither http(s)://host:port nor `debug`.
    #[error("invalid backend {url:?}: {reason}")]
    Backend {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header that is not K=V with a valid gRPC metadata key and value.
    #[error("invalid backend header {0:?}: expected K=V with a lowercase ASCII key and a printable ASCII value")]
    Header(String),
    /// A value out of its range.
    #[error("{0}")]
    Invalid(String),
}

/// Where a signal's exports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTarget {
    /// A gRPC endpoint, `http://` or `https://`.
    Grpc(String),
    /// The built-in debug backend: prints each request as one OTLP/JSON line on stdout.
    Debug,
}

impl BackendTarget {
    /// The label used in logs and metrics.
    pub fn label(&self) -> &str {
        match self {
            BackendTarget::Grpc(url) => url,
            BackendTarget::Debug => "debug",
        }
    }
}

/// TLS material for https backends.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA bundle (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    pub client_key: Option<PathBuf>,
}

/// TLS material of the receiver (`--tls-*`).
#[derive(Debug, Clone)]
pub struct ServerTlsFiles {
    /// Certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Private key (PEM) of the leaf.
    pub key: PathBuf,
    /// CA bundle (PEM) client certificates must chain to; `None`: no client certificates asked for.
    pub client_ca: Option<PathBuf>,
}

/// The validated configuration of one bridge.
#[derive(Debug, Clone)]
pub struct Config {
    /// OTLP/HTTP receiver address.
    pub listen: SocketAddr,
    /// Admin server address.
    pub metrics_listen: SocketAddr,
    /// Backends per signal, indexed by [`SignalKind::index`]. Every item of a signal goes to each of its backends.
    pub backends: [Vec<BackendTarget>; SignalKind::COUNT],
    /// Body limit on wire and inflated bytes.
    pub max_body_bytes: usize,
    /// gRPC metadata sent with every export, in order.
    pub backend_headers: Vec<(String, String)>,
    /// Allowed CORS origins; empty means CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// HTTPS on the receiver; `None`: plain HTTP/1.1 and h2c.
    pub server_tls: Option<ServerTlsFiles>,
    /// Bearer tokens the receiver accepts; `None`: no authentication.
    pub auth_token_file: Option<PathBuf>,
    /// `--forward-header` names (lowercase, no duplicates), in order.
    pub forward_headers: Vec<http::HeaderName>,
    /// Most forwarded-header partitions with an open batch per signal in direct mode (not a flag: always
    /// [`MAX_PARTITIONS`] in the binary; tests lower it to reach the bound).
    pub max_partitions: usize,
    /// Bytes of request data held at once.
    pub memory_limit_bytes: usize,
    /// Batch limits; `None` when batching is disabled.
    pub batch: Option<BatchConfig>,
    /// Largest export in bytes (also used to split requests when batching is off).
    pub batch_max_bytes: usize,
    /// Exports in flight per signal and backend.
    pub export_concurrency: usize,
    /// Timeout of one export attempt.
    pub export_timeout: Duration,
    /// Retry policy of each backend.
    pub retry: RetryConfig,
    /// gzip on exports.
    pub backend_gzip: bool,
    /// TLS material for https backends.
    pub tls: TlsFiles,
    /// Header and body read timeout.
    pub read_timeout: Duration,
    /// Connection cap of the receiver.
    pub max_connections: usize,
    /// Drain time on shutdown.
    pub shutdown_timeout: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// Time between two resolutions of a backend host name; at least 100ms.
    pub backend_resolve_interval: Duration,
    /// Age after which client connections are closed gracefully (jittered); `None`: never.
    pub max_connection_age: Option<Duration>,
    /// The durable queue; `None` is direct mode.
    pub queue: Option<QueueConfig>,
}

/// How the queue is set up.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// Disk the segments may use.
    pub max_bytes: u64,
    /// Data older than this is dropped (counted, logged) instead of delivered.
    pub max_age: Duration,
}

/// When a batch is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Items that fill a batch.
    pub max_items: u64,
    /// Bytes that fill a batch.
    pub max_bytes: usize,
    /// Longest wait for more data while an export is in flight.
    pub timeout: Duration,
}

/// Retry policy of an exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// First delay.
    pub initial_interval: Duration,
    /// Longest delay.
    pub max_interval: Duration,
    /// Budget for all attempts of one batch; zero disables retries.
    pub max_elapsed: Duration,
}

impl Default for Config {
    fn default() -> Self {
        // The defaults of the flags, without reading the process environment.
        Cli::without_env(["otlp-bridge"])
            .map_err(|e| e.to_string())
            .and_then(|cli| Config::from_cli_and_env(cli, &HashMap::new()).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| unreachable!("the default configuration is valid: {e}"))
    }
}

impl Cli {
    /// Parses `args` as if no `OTLP_BRIDGE_*` variable were set (clap reads the process environment otherwise), so
    /// defaults and tests do not depend on the developer's shell.
    pub fn without_env<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| arg.env(None));
        Cli::from_arg_matches(&command.try_get_matches_from(args)?)
    }
}

impl Config {
    /// Reads flags and the process environment.
    pub fn from_args_and_env() -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::from_cli_and_env(Cli::parse(), &env)
    }

    /// Builds a config from parsed flags (which already include `OTLP_BRIDGE_*` variables) and the standard
    /// `OTEL_EXPORTER_OTLP_*` variables in `env`.
    pub fn from_cli_and_env(cli: Cli, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let otel = |name: &str| env.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let explicit: Vec<BackendTarget> =
            cli.backends.iter().filter(|b| !b.trim().is_empty()).map(|b| parse_backend(b)).collect::<Result<_, _>>()?;
        let general = match (explicit.is_empty(), otel("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (false, _) => explicit.clone(),
            (true, Some(url)) => vec![parse_backend(&url)?],
            (true, None) => vec![BackendTarget::Grpc("http://localhost:4317".into())],
        };
        let mut backends: [Vec<BackendTarget>; SignalKind::COUNT] = std::array::from_fn(|_| general.clone());
        if explicit.is_empty() {
            for kind in SignalKind::ALL {
                let var = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", kind.name().to_ascii_uppercase());
                if let Some(url) = otel(&var) {
                    backends[kind.index()] = vec![parse_backend(&url)?];
                }
            }
        }

        let mut backend_headers = Vec::new();
        if let Some(list) = otel("OTEL_EXPORTER_OTLP_HEADERS") {
            for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = parse_header(pair)?;
                backend_headers.push((k, percent_decode(&v)));
            }
        }
        for pair in cli.backend_headers.iter().filter(|p| !p.trim().is_empty()) {
            let (k, v) = parse_header(pair)?;
            // A flag replaces a header of the same key from the environment rather than sending it twice.
            backend_headers.retain(|(existing, _)| existing != &k);
            backend_headers.push((k, v));
        }

        let export_timeout =
            match (cli.export_timeout, otel("OTEL_EXPORTER_OTLP_TIMEOUT")) {
                (Some(t), _) => t,
                (None, Some(ms)) => Duration::from_millis(ms.parse().map_err(|_| {
                    ConfigError::Invalid(format!("OTEL_EXPORTER_OTLP_TIMEOUT={ms:?} is not milliseconds"))
                })?),
                (None, None) => Duration::from_secs(5),
            };
        let compression = cli.backend_compression.clone().or_else(|| otel("OTEL_EXPORTER_OTLP_COMPRESSION"));
        let backend_gzip = match compression.as_deref() {
            None | Some("none") | Some("") => false,
            Some("gzip") => true,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "unsupported backend compression {other:?}: use gzip or none"
                )))
            }
        };

        if cli.max_body_bytes == 0 {
            return Err(ConfigError::Invalid("--max-body-bytes must be at least 1".into()));
        }
        if cli.memory_limit_mib == 0 {
            return Err(ConfigError::Invalid("--memory-limit-mib must be at least 1".into()));
        }
        if cli.export_concurrency == 0 {
            return Err(ConfigError::Invalid("--export-concurrency must be at least 1".into()));
        }
        if cli.batch_max_bytes < 1024 {
            return Err(ConfigError::Invalid("--batch-max-bytes must be at least 1024".into()));
        }
        if cli.max_connections == 0 {
            return Err(ConfigError::Invalid("--max-connections must be at least 1".into()));
        }
        if cli.backend_resolve_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid("--backend-resolve-interval must be at least 100ms".into()));
        }
        let batch = (!cli.disable_batching).then_some(BatchConfig {
            max_items: cli.batch_max_items.max(1),
            max_bytes: cli.batch_max_bytes,
            timeout: cli.batch_timeout,
        });
        let tls = TlsFiles {
            ca_file: cli.backend_ca_file.clone().or_else(|| otel("OTEL_EXPORTER_OTLP_CERTIFICATE").map(PathBuf::from)),
            client_cert: cli
                .backend_client_cert
                .clone()
                .or_else(|| otel("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE").map(PathBuf::from)),
            client_key: cli
                .backend_client_key
                .clone()
                .or_else(|| otel("OTEL_EXPORTER_OTLP_CLIENT_KEY").map(PathBuf::from)),
        };
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            return Err(ConfigError::Invalid("mutual TLS needs both a client certificate and a client key".into()));
        }

        if cli.queue_max_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid("--queue-max-bytes must be at least 1048576 (1 MiB)".into()));
        }
        if cli.queue_max_age.is_zero() {
            return Err(ConfigError::Invalid("--queue-max-age must be more than 0".into()));
        }
        let queue = cli.queue_dir.clone().filter(|d| !d.as_os_str().is_empty()).map(|dir| QueueConfig {
            dir,
            max_bytes: cli.queue_max_bytes,
            max_age: cli.queue_max_age,
        });

        Ok(Config {
            queue,
            listen: cli.listen,
            metrics_listen: cli.metrics_listen,
            backends,
            max_body_bytes: cli.max_body_bytes,
            backend_headers,
            cors_allowed_origins: cli
                .cors_allowed_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            server_tls: match (cli.tls_cert, cli.tls_key) {
                (Some(cert), Some(key)) => Some(ServerTlsFiles { cert, key, client_ca: cli.tls_client_ca }),
                (None, None) if cli.tls_client_ca.is_some() => {
                    return Err(ConfigError::Invalid("--tls-client-ca needs --tls-cert and --tls-key".into()))
                }
                (None, None) => None,
                _ => return Err(ConfigError::Invalid("--tls-cert and --tls-key go together".into())),
            },
            auth_token_file: cli.auth_token_file,
            forward_headers: parse_forward_headers(&cli.forward_headers)?,
            max_partitions: MAX_PARTITIONS,
            memory_limit_bytes: cli.memory_limit_mib.saturating_mul(1024 * 1024),
            batch,
            batch_max_bytes: cli.batch_max_bytes,
            export_concurrency: cli.export_concurrency,
            export_timeout,
            retry: RetryConfig {
                initial_interval: cli.retry_initial_interval,
                max_interval: cli.retry_max_interval.max(cli.retry_initial_interval),
                max_elapsed: cli.retry_max_elapsed,
            },
            backend_gzip,
            tls,
            read_timeout: cli.read_timeout,
            max_connections: cli.max_connections,
            shutdown_timeout: cli.shutdown_timeout,
            log_format: cli.log_format,
            backend_resolve_interval: cli.backend_resolve_interval,
            max_connection_age: (!cli.max_connection_age.is_zero()).then_some(cli.max_connection_age),
        })
        .and_then(|config| {
            let otel_endpoint = env.keys().any(|k| k.starts_with("OTEL_EXPORTER_OTLP_") && k.ends_with("ENDPOINT"));
            refuse_own_address(&config, explicit.is_empty() && otel_endpoint)?;
            Ok(config)
        })
    }

    /// Sends every signal to `backends` (used by tests and embedders).
    pub fn with_backends(mut self, backends: Vec<BackendTarget>) -> Config {
        self.backends = std::array::from_fn(|_| backends.clone());
        self
    }
}

fn parse_backend(raw: &str) -> Result<BackendTarget, ConfigError> {
    let url = raw.trim();
    if url.eq_ignore_ascii_case("debug") {
        return Ok(BackendTarget::Debug);
    }
    let bad = |reason: &str| ConfigError::Backend { url: url.to_string(), reason: reason.to_string() };
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("the scheme must be http:// or https:// (or use `debug`)")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // The URL would end up in logs, metrics and /ready; credentials belong in metadata, which stays secret.
        let masked = match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?.1))) {
            Some((scheme, rest)) => format!("{scheme}://****@{rest}"),
            None => "****".to_string(),
        };
        return Err(ConfigError::Backend {
            url: masked,
            reason: "credentials in a backend URL are refused (they would appear in logs and metrics); send them \
                     as gRPC metadata instead, e.g. --backend-header authorization=Basic%20<base64>"
                .to_string(),
        });
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    // gRPC calls carry their own path; a trailing `/` (common in OTEL_EXPORTER_OTLP_ENDPOINT) is harmless.
    if !matches!(uri.path(), "" | "/") {
        return Err(bad("a gRPC backend takes no path (the exporter adds the service path)"));
    }
    Ok(BackendTarget::Grpc(url.trim_end_matches('/').to_string()))
}

/// IP:PORT as is; HOST:PORT resolved once, an IPv4 address first (a listener on `localhost` should be reachable as
/// 127.0.0.1, which is what most clients try).
fn parse_listen_addr(raw: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let usage = "use IP:PORT (127.0.0.1:4318, 0.0.0.0:4318 for every interface, [::1]:4318) or HOST:PORT";
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(raw)
        .map_err(|e| format!("{raw:?} is not an address to listen on ({e}): {usage}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{raw:?} resolves to no address: {usage}"))
}

/// A backend that is the bridge's own receiver or admin port would feed the bridge its own exports (which it cannot
/// even decode: gRPC is not OTLP/HTTP). The classic cause is `OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`,
/// meant for applications, left in the bridge's environment. Only names on one of those ports are resolved.
fn refuse_own_address(config: &Config, from_otel_env: bool) -> Result<(), ConfigError> {
    let own = [("--listen", config.listen), ("--metrics-listen", config.metrics_listen)];
    for target in config.backends.iter().flatten() {
        let BackendTarget::Grpc(url) = target else { continue };
        let Ok(uri) = url.parse::<http::Uri>() else { continue };
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let host = uri.host().unwrap_or_default().trim_matches(|c| c == '[' || c == ']');
        for (flag, addr) in own {
            if addr.port() != port {
                continue;
            }
            let resolved: Vec<SocketAddr> =
                std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect).unwrap_or_default();
            let same = resolved.iter().any(|r| {
                r.ip() == addr.ip() || (addr.ip().is_unspecified() && (r.ip().is_loopback() || r.ip().is_unspecified()))
            });
            if same {
                let origin = if from_otel_env {
                    " It came from OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal variant), which is meant for the \
                     applications that send to this bridge: set --backend (OTLP_BRIDGE_BACKEND) for the bridge."
                } else {
                    ""
                };
                return Err(ConfigError::Invalid(format!(
                    "backend {url} is this bridge's own {flag} address ({addr}): it would export to itself. The \
                     backend is an OTLP/gRPC receiver, usually on port 4317.{origin}"
                )));
            }
        }
    }
    Ok(())
}

/// Rewrites a flag-parsing error whose value came from an environment variable so that it names the variable the
/// user set, not the flag they never typed.
pub fn explain_cli_error(error: &clap::Error, args: &[std::ffi::OsString], env: &HashMap<String, String>) -> String {
    use clap::error::{ContextKind, ContextValue};
    let rendered = error.render().to_string();
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else { return rendered };
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    let typed = args.iter().filter_map(|a| a.to_str()).any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let command = <Cli as clap::CommandFactory>::command();
    let var = command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| flag.strip_prefix("--") == Some(l)))
        .and_then(|a| a.get_env())
        .and_then(|v| v.to_str())
        .map(str::to_string);
    match var {
        Some(var) if !typed && env.contains_key(&var) => {
            rendered.replace(&format!("'{arg}'"), &format!("{var} (the environment variable of {flag})"))
        }
        _ => rendered,
    }
}

/// Names that say how a request is framed, not what it is about: forwarding them would break the gRPC call.
const NOT_FORWARDABLE: [&str; 9] = [
    "content-type",
    "content-length",
    "content-encoding",
    "te",
    "host",
    "connection",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

fn parse_forward_headers(raw: &[String]) -> Result<Vec<http::HeaderName>, ConfigError> {
    let mut names: Vec<http::HeaderName> = Vec::new();
    for name in raw.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let bad = |why: &str| ConfigError::Invalid(format!("--forward-header {name:?}: {why}"));
        let parsed = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| bad("not a valid header name"))?;
        let text = parsed.as_str();
        if NOT_FORWARDABLE.contains(&text) || text.starts_with("grpc-") || text.ends_with("-bin") {
            return Err(bad("this header frames the gRPC call itself and cannot be forwarded"));
        }
        if !names.contains(&parsed) {
            names.push(parsed);
        }
    }
    Ok(names)
}

fn parse_header(pair: &str) -> Result<(String, String), ConfigError> {
    let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Header(pair.to_string()))?;
    let key = k.trim().to_ascii_lowercase();
    let value = v.trim().to_string();
    if tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(key.as_bytes()).is_err()
        || key.ends_with("-bin")
        || tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from(value.as_str()).is_err()
    {
        return Err(ConfigError::Header(pair.to_string()));
    }
    Ok((key, value))
}

/// OTEL_EXPORTER_OTLP_HEADERS values are percent-encoded (W3C baggage format).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut argv = vec!["otlp-bridge"];
        argv.extend_from_slice(args);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_cli_and_env(Cli::without_env(argv).expect("flags parse"), &env)
    }

    /// Run again as a child process with `OTLP_BRIDGE_*` variables set (setting them in this process would race
    /// with other tests): the defaults and this module's `config` helper must not see them.
    #[test]
    fn defaults_and_tests_never_read_the_process_environment() {
        const CHILD: &str = "OTLP_BRIDGE_TEST_CHILD_ENV";
        if std::env::var_os(CHILD).is_some() {
            for c in [Config::default(), config(&[], &[]).unwrap()] {
                assert_eq!((c.listen.to_string(), c.memory_limit_bytes), ("127.0.0.1:4318".into(), 20 << 20));
            }
            return;
        }
        let name = "config::tests::defaults_and_tests_never_read_the_process_environment";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env(CHILD, "1")
            .env("OTLP_BRIDGE_LISTEN", "127.0.0.1:1")
            .env("OTLP_BRIDGE_MEMORY_LIMIT_MIB", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn defaults_match_the_fixed_contract() {
        let c = config(&[], &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:4318");
        assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:8888");
        assert_eq!(c.max_body_bytes, 67_108_864);
        assert_eq!(c.backends[0], vec![BackendTarget::Grpc("http://localhost:4317".into())]);
        assert!(c.cors_allowed_origins.is_empty());
        assert_eq!(c.memory_limit_bytes, 20 << 20);
    }

    #[test]
    fn repeated_backend_flags_fan_out_and_win_over_otel_endpoint() {
        let c = config(
            &["--backend", "http://a:4317", "--backend", "debug"],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4317")],
        )
        .unwrap();
        assert_eq!(c.backends[2], vec![BackendTarget::Grpc("http://a:4317".into()), BackendTarget::Debug]);
    }

    #[test]
    fn otel_endpoints_apply_per_signal_when_no_backend_flag_is_given() {
        let c = config(
            &[],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://all:4317/"),
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4317"),
            ],
        )
        .unwrap();
        assert_eq!(c.backends[SignalKind::Traces.index()], vec![BackendTarget::Grpc("https://all:4317".into())]);
        assert_eq!(c.backends[SignalKind::Logs.index()], vec![BackendTarget::Grpc("http://logs:4317".into())]);
    }

    #[test]
    fn backend_urls_are_validated() {
        assert!(config(&["--backend", "localhost:4317"], &[]).is_err());
        assert!(config(&["--backend", "ftp://x:1"], &[]).is_err());
        assert!(config(&["--backend", "http://x:4317/v1/traces"], &[]).is_err());
    }

    #[test]
    fn credentials_in_backend_urls_are_refused_without_being_repeated() {
        for url in ["http://user:s3cret@collector:4317", "https://s3cret@collector:4317"] {
            let e = config(&["--backend", url], &[]).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("--backend-header") && e.contains("****@collector:4317"), "{e}");
        }
    }

    #[test]
    fn headers_merge_env_then_flags_with_percent_decoding() {
        let c = config(
            &["--backend-header", "X-Tenant=flag"],
            &[("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=env,authorization=Bearer%20abc")],
        )
        .unwrap();
        assert_eq!(
            c.backend_headers,
            vec![("authorization".to_string(), "Bearer abc".to_string()), ("x-tenant".to_string(), "flag".to_string())]
        );
        assert!(config(&["--backend-header", "novalue"], &[]).is_err());
    }

    #[test]
    fn otel_timeout_and_compression_are_honoured() {
        let c =
            config(&[], &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"), ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).unwrap();
        assert_eq!(c.export_timeout, Duration::from_millis(2500));
        assert!(c.backend_gzip);
        assert!(config(&[], &[("OTEL_EXPORTER_OTLP_COMPRESSION", "lz4")]).is_err());
    }

    #[test]
    fn receiver_tls_flags_come_from_flags_or_env_and_go_together() {
        let c = config(&[], &[]).unwrap();
        assert!(c.server_tls.is_none());
        let c = config(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-client-ca", "/ca.pem"], &[]).unwrap();
        let tls = c.server_tls.unwrap();
        assert_eq!((tls.cert, tls.key), (PathBuf::from("/c.pem"), PathBuf::from("/k.pem")));
        assert_eq!(tls.client_ca, Some(PathBuf::from("/ca.pem")));
        assert!(Cli::without_env(["otlp-bridge", "--tls-cert", "/c.pem"]).is_err(), "a certificate needs its key");
        assert!(Cli::without_env(["otlp-bridge", "--tls-client-ca", "/ca.pem"]).is_err());
    }

    #[test]
    fn the_resolve_interval_has_a_default_and_a_floor() {
        let c = config(&[], &[]).unwrap();
        assert_eq!(c.backend_resolve_interval, Duration::from_secs(5));
        assert_eq!(c.max_connection_age, Some(Duration::from_secs(300)));
        assert_eq!(config(&["--max-connection-age", "0s"], &[]).unwrap().max_connection_age, None);
        assert!(config(&["--backend-resolve-interval", "1ms"], &[]).is_err());
    }

    #[test]
    fn forward_headers_are_lowercased_deduplicated_and_validated() {
        let c =
            config(&["--forward-header", "X-Scope-OrgID", "--forward-header", "x-scope-orgid,X-Team"], &[]).unwrap();
        assert_eq!(
            c.forward_headers,
            vec![http::HeaderName::from_static("x-scope-orgid"), http::HeaderName::from_static("x-team")]
        );
        assert!(config(&["--forward-header", "content-type"], &[]).is_err());
        assert!(config(&["--forward-header", "grpc-timeout"], &[]).is_err());
        assert!(config(&["--forward-header", "bad header"], &[]).is_err());
    }

    #[test]
    fn batching_can_be_disabled() {
        assert!(config(&["--disable-batching"], &[]).unwrap().batch.is_none());
        let b = config(&["--batch-timeout", "50ms", "--batch-max-items", "10"], &[]).unwrap().batch.unwrap();
        assert_eq!((b.max_items, b.timeout), (10, Duration::from_millis(50)));
    }
}
