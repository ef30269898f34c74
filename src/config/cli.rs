//! The flags of the binary (each with its `OTLP_BRIDGE_*` variable and its default, which says where it comes from),
//! and the translation of clap's errors for values that came from the environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::parse::parse_listen_addr;
use super::LogFormat;

/// Flags of the `otlp-bridge` binary; every flag also reads the `OTLP_BRIDGE_*` variable of the same words.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "otlp-bridge",
    version,
    about = "Receives OTLP over HTTP (JSON and protobuf) and forwards it over OTLP/gRPC.",
    after_help = "Reading an archive back: otlp-bridge replay --help"
)]
pub struct Cli {
    /// YAML configuration file: every setting a flag has, under the flag's long name with `_` for `-`
    /// (`listen: 0.0.0.0:4318`, `forward_header: [x-scope-orgid]`), plus named `outputs:` with their own url,
    /// headers, TLS files, compression, timeout and signals. `${env:NAME}` is replaced by that variable. Flags and
    /// their variables override the file; outputs given by --backend replace the file's outputs.
    #[arg(long, env = "OTLP_BRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// OTLP/HTTP receiver address (HTTP/1.1 and h2c on one port), IP:PORT or HOST:PORT (a name is resolved once,
    /// IPv4 first). Use 0.0.0.0:4318 inside a container.
    #[arg(long, env = "OTLP_BRIDGE_LISTEN", default_value = "127.0.0.1:4318", value_parser = parse_listen_addr)]
    pub listen: SocketAddr,

    /// OTLP/gRPC receiver address: the Export services of traces, metrics, logs and profiles (v1development), with
    /// the same limits, TLS files, tokens, forwarded headers and answers as --listen. Off unless set: the default
    /// backend is localhost:4317, so a default here would loop. Use 0.0.0.0:4317 inside a container.
    #[arg(long, env = "OTLP_BRIDGE_GRPC_LISTEN", value_name = "ADDR", value_parser = parse_listen_addr)]
    pub grpc_listen: Option<SocketAddr>,

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

    /// What an archive object (--backend s3://BUCKET/PREFIX) holds: otlp_proto (one protobuf
    /// Export<Signal>ServiceRequest per object, the requests concatenated) or otlp_json (JSON lines, one OTLP/JSON
    /// request per line, as the Collector's file exporter writes them).
    #[arg(long, env = "OTLP_BRIDGE_ARCHIVE_FORMAT", default_value = "otlp_proto", value_enum)]
    pub archive_format: crate::export::s3::ArchiveFormat,

    /// Compression of archive objects: zstd (.zst), gzip (.gz) or none.
    #[arg(long, env = "OTLP_BRIDGE_ARCHIVE_COMPRESSION", default_value = "zstd", value_enum)]
    pub archive_compression: crate::export::s3::ArchiveCompression,

    /// An archive object is written once it holds this many uncompressed bytes (or at --archive-max-object-age; at
    /// shutdown what is open stays queued and is written after the next start). Default 8388608 (8 MiB, about 1 MiB
    /// stored with zstd): query engines' per-object overhead stays small, a crash repeats little, and it fits the
    /// archive reader's memory share with a modest --memory-limit-mib (an object is never larger than that share:
    /// half the limit over the outputs).
    #[arg(long, env = "OTLP_BRIDGE_ARCHIVE_MAX_OBJECT_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub archive_max_object_bytes: u64,

    /// An archive object is written at most this long after it was opened. Default 60s: data is in the archive
    /// within a minute, for at most 60 objects an hour per signal (and --forward-header value) when traffic is low,
    /// about $0.65 a month of PUTs for three signals on AWS S3.
    #[arg(long, env = "OTLP_BRIDGE_ARCHIVE_MAX_OBJECT_AGE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub archive_max_object_age: Duration,

    /// Resource attribute K=V (a string) set on every resource of every request, replacing a value already there
    /// (upsert); a request without a resource gets one. Repeatable; the value is taken as written. Without the flag:
    /// OTLP_BRIDGE_RESOURCE_ATTRIBUTES=k=v,k2=v2 (the OTEL_RESOURCE_ATTRIBUTES format: values percent-decoded).
    // The variable is read in `resolve`, not by clap: its list format and percent-decoding differ from the flag's.
    #[arg(long = "resource-attribute", value_name = "K=V")]
    pub resource_attributes: Vec<String>,

    /// Like --resource-attribute, but set only where the resource lacks the key (insert). Without the flag:
    /// OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING (same format as OTLP_BRIDGE_RESOURCE_ATTRIBUTES).
    #[arg(long = "resource-attribute-if-missing", value_name = "K=V")]
    pub resource_attributes_if_missing: Vec<String>,
    /// Log files to tail into OTLP logs (glob; `**` crosses directories; symlinks followed); repeatable (env:
    /// comma-separated). Rescanned every 500 ms, so a new file is picked up within a second; an empty match is fine
    /// (the files may appear later). Read positions are saved only once the sink acknowledged the lines.
    #[arg(long = "file-include", env = "OTLP_BRIDGE_FILE_INCLUDE", value_delimiter = ',', value_name = "GLOB")]
    pub file_include: Vec<String>,

    /// Files the include globs match but that are skipped: matched against the whole path, or against the file name
    /// when the glob has no `/` (`*.gz`); repeatable (env: comma-separated).
    #[arg(long = "file-exclude", env = "OTLP_BRIDGE_FILE_EXCLUDE", value_delimiter = ',', value_name = "GLOB")]
    pub file_exclude: Vec<String>,

    /// How a line becomes a log record: `plain` (the line is the body), `json` (message/msg/body, time/timestamp/
    /// ts/@timestamp, level/severity/lvl, trace_id/span_id, other fields as attributes) or `regex` (--file-regex).
    #[arg(long, env = "OTLP_BRIDGE_FILE_PARSER", default_value = "plain", value_enum)]
    pub file_parser: super::FileParser,

    /// For --file-parser regex: named groups `timestamp`, `severity` and `body`; other named groups become
    /// attributes. A line that does not match is delivered whole and counted as a parse failure.
    #[arg(long, env = "OTLP_BRIDGE_FILE_REGEX", value_name = "RE")]
    pub file_regex: Option<String>,

    /// A line that matches starts a record; other lines continue the previous one (stack traces). The last record
    /// is sent after 1 s without a continuation.
    #[arg(long, env = "OTLP_BRIDGE_FILE_MULTILINE_START", value_name = "RE")]
    pub file_multiline_start: Option<String>,

    /// Where a file present at the input's first start is read from (a file that appears later is always read
    /// from its beginning). Default beginning: nothing the application wrote before the bridge started is lost
    /// (a sidecar's log volume starts empty with its pod anyway); `end` skips a large backlog.
    #[arg(long, env = "OTLP_BRIDGE_FILE_START_AT", default_value = "beginning", value_enum)]
    pub file_start_at: super::StartAt,

    /// How the files' bytes are read: utf-8, utf-16le, utf-16be or latin1. Invalid bytes become U+FFFD; the line is
    /// kept.
    #[arg(long, env = "OTLP_BRIDGE_FILE_ENCODING", default_value = "utf-8", value_enum)]
    pub file_encoding: super::FileEncoding,

    /// Longest line kept whole, in bytes; a longer line is delivered in pieces of at most this size, in order, and
    /// counted in otlp_bridge_file_long_lines_total. Default 1048576 (1 MiB): stack traces and large JSON lines
    /// stay whole, while one record stays far below the 4 MiB gRPC message limit and the memory limit.
    #[arg(long, env = "OTLP_BRIDGE_FILE_MAX_LINE_BYTES", default_value_t = super::file_input::DEFAULT_MAX_LINE_BYTES)]
    pub file_max_line_bytes: usize,

    /// strftime layout (e.g. `%d/%b/%Y:%H:%M:%S %z`) of the timestamp group or field when it is neither RFC 3339
    /// nor epoch; a layout without an offset is read as UTC.
    #[arg(long, env = "OTLP_BRIDGE_FILE_TIME_FORMAT", value_name = "FMT")]
    pub file_time_format: Option<String>,

    /// Where the file input keeps its read positions. Default: DIR/files under --queue-dir; required with
    /// --file-include when there is no queue.
    #[arg(long, env = "OTLP_BRIDGE_FILE_STATE_DIR", value_name = "DIR")]
    pub file_state_dir: Option<PathBuf>,
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
