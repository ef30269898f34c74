//! Command line, environment and defaults -> one validated [`Config`].
//!
//! Precedence is flag, then `OTLP_BRIDGE_*` variable, then the standard `OTEL_EXPORTER_OTLP_*` variable, then the
//! default. Each default says where it comes from: the flags and their defaults are in `cli`, the value parsers in
//! `parse`, precedence and validation (flags and environment -> [`Config`]) in `resolve`; this file holds the
//! validated types everything else reads.

mod archive;
mod cli;
mod file;
mod file_input;
mod load;
mod outputs;
mod parse;
mod resolve;
mod resolver;
mod section;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_resource;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use archive::ArchiveDefaults;
pub use cli::{explain_cli_error, Cli};
pub(crate) use file_input::FileFlags;
pub use file_input::{FileEncoding, FileInputConfig, FileParser, StartAt};
#[cfg(test)]
pub(crate) use load::load_with;
pub use load::{LoadError, Setting, Source};
pub use outputs::{InputSettings, NamedInput};
pub use resolver::Resolver;
pub(crate) use section::Section;

use crate::export::OutputSettings;

use crate::signal::SignalKind;

/// Most `--forward-header` partitions with an open batch, per signal. The Collector's batch processor bounds the
/// same thing with `metadata_cardinality_limit`, whose default is also 1000.
pub(crate) const MAX_PARTITIONS: usize = 1000;
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
    /// A `--resource-attribute*` entry (flag or variable) that is not `key=value` or does not decode.
    #[error("invalid resource attribute {entry:?} in {origin}: {reason}")]
    ResourceAttribute {
        /// The flag or variable it came from.
        origin: &'static str,
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key of the configuration file that is unknown, of the wrong type or with a bad value.
    #[error("{file}, line {line}: {key}: {reason}")]
    At {
        /// The file.
        file: String,
        /// The line (1-based).
        line: usize,
        /// The dotted key (`outputs.tempo.headers`).
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a configured resource attribute does when the resource already has its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeMode {
    /// `--resource-attribute`: replace the value already there (every occurrence of the key goes; one remains).
    Upsert,
    /// `--resource-attribute-if-missing`: set only where the resource lacks the key.
    Insert,
}

/// One attribute stamped on the resource of every item (`--resource-attribute*`); values are strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAttribute {
    /// The attribute key (non-empty).
    pub key: String,
    /// Its string value (may be empty).
    pub value: String,
    /// Upsert or insert.
    pub mode: AttributeMode,
}

/// One output of the bridge: where a signal's exports go. Which kind of output it is follows from its URL (see
/// `export::KINDS`); the kind reads its own settings, from its section of `--config` or, for an output given by
/// `--backend`, from the global `--backend-*` flags.
#[derive(Debug, Clone)]
pub struct BackendTarget {
    /// The label of logs and metrics: the URL for `--backend` outputs, the section name for named ones.
    name: String,
    /// Where it sends, in the kind's normal form.
    url: String,
    /// What its kind read from its section; `None`: an output given by `--backend`.
    settings: Option<Arc<dyn OutputSettings>>,
}

impl PartialEq for BackendTarget {
    fn eq(&self, other: &Self) -> bool {
        // Names are unique among outputs; two `--backend` outputs with one URL are one output.
        self.name == other.name && self.url == other.url
    }
}

impl Eq for BackendTarget {}

impl BackendTarget {
    /// An output at `url` with the global settings, as `--backend URL` gives it (`debug` for the debug output);
    /// checked when the bridge starts.
    pub fn url(url: impl Into<String>) -> BackendTarget {
        let url = url.into();
        BackendTarget { name: url.clone(), url, settings: None }
    }

    /// A named output with its kind's settings.
    pub(crate) fn named(name: String, url: String, settings: Arc<dyn OutputSettings>) -> BackendTarget {
        BackendTarget { name, url, settings: Some(settings) }
    }

    /// The label used in logs and metrics.
    pub fn label(&self) -> &str {
        &self.name
    }

    /// Where it sends.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Its section's settings, `None` for an output given by `--backend`.
    pub(crate) fn settings(&self) -> Option<&dyn OutputSettings> {
        self.settings.as_deref()
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
    /// OTLP/gRPC receiver address; `None`: off.
    pub grpc_listen: Option<SocketAddr>,
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
    /// How backend host names are resolved (not a flag: the system resolver in the binary).
    pub backend_resolver: Resolver,
    /// Age after which client connections are closed gracefully (jittered); `None`: never.
    pub max_connection_age: Option<Duration>,
    /// The durable queue; `None` is direct mode.
    pub queue: Option<QueueConfig>,
    /// The `--archive-*` defaults of archive outputs.
    pub archive: ArchiveDefaults,
    /// Attributes stamped on every resource, in order; each key at most once. Empty: requests are not touched.
    pub resource_attributes: Vec<ResourceAttribute>,
    /// The file's named inputs (`inputs:`), each read by its kind.
    pub inputs: Vec<NamedInput>,
    /// Every flag's value and where it came from, secrets masked (what `--check` prints); empty when the
    /// configuration was not loaded from a command line.
    pub settings: Vec<Setting>,
    /// Decisions of the loader worth a log line at start (outputs of the file replaced by `--backend`).
    pub notices: Vec<String>,
    /// Log file inputs (`--file-*`); empty: none.
    pub files: Vec<FileInputConfig>,
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

impl Config {
    /// Sends every signal to `backends` (used by tests and embedders).
    pub fn with_backends(mut self, backends: Vec<BackendTarget>) -> Config {
        self.backends = std::array::from_fn(|_| backends.clone());
        self
    }
}
