//! Flags and environment -> a validated [`Config`]: the precedence of flags over `OTLP_BRIDGE_*` over the standard
//! `OTEL_EXPORTER_OTLP_*` variables over defaults, and every check that must fail before anything starts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::parse::{
    parse_attribute_flag, parse_attribute_list, parse_backend, parse_forward_headers, parse_header, percent_decode,
};
use super::{
    ArchiveDefaults, AttributeMode, BackendTarget, BatchConfig, Cli, Config, ConfigError, FileFlags, QueueConfig,
    ResourceAttribute, RetryConfig, ServerTlsFiles, TlsFiles, MAX_PARTITIONS,
};
use crate::signal::SignalKind;

impl Config {
    /// Builds a config from parsed flags (which already include `OTLP_BRIDGE_*` variables) and the standard
    /// `OTEL_EXPORTER_OTLP_*` variables in `env`.
    pub fn from_cli_and_env(cli: Cli, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let otel = |name: &str| env.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let explicit: Vec<BackendTarget> =
            cli.backends.iter().filter(|b| !b.trim().is_empty()).map(|b| parse_backend(b)).collect::<Result<_, _>>()?;
        let general = match (explicit.is_empty(), otel("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (false, _) => explicit.clone(),
            (true, Some(url)) => vec![parse_backend(&url)?],
            (true, None) => vec![BackendTarget::url("http://localhost:4317")],
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

        let archive = ArchiveDefaults::from_cli(&cli)?;
        let resource_attributes = resource_attributes(&cli, env)?;

        let files = FileFlags {
            include: cli.file_include.clone(),
            exclude: cli.file_exclude.clone(),
            parser: cli.file_parser,
            regex: cli.file_regex.clone(),
            multiline_start: cli.file_multiline_start.clone(),
            start_at: cli.file_start_at,
            encoding: cli.file_encoding,
            max_line_bytes: cli.file_max_line_bytes,
            time_format: cli.file_time_format.clone(),
            state_dir: cli.file_state_dir.clone(),
        }
        .validate(
            "file",
            queue.as_ref().map(|q| q.dir.as_path()),
            cli.memory_limit_mib.saturating_mul(1024 * 1024),
            cli.batch_max_bytes,
        )?;

        Ok(Config {
            resource_attributes,
            files: files.into_iter().collect(),
            queue,
            archive,
            listen: cli.listen,
            grpc_listen: cli.grpc_listen,
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
            backend_resolver: super::Resolver::system(),
            max_connection_age: (!cli.max_connection_age.is_zero()).then_some(cli.max_connection_age),
            inputs: Vec::new(),
            settings: Vec::new(),
            notices: Vec::new(),
        })
        .and_then(|config| {
            let otel_endpoint = env.keys().any(|k| k.starts_with("OTEL_EXPORTER_OTLP_") && k.ends_with("ENDPOINT"));
            config.check_outputs(explicit.is_empty() && otel_endpoint)?;
            Ok(config)
        })
    }

    /// The checks of the outputs as a whole: none is the bridge itself, and each that needs the queue has it.
    /// `from_otel_env`: the outputs came from `OTEL_EXPORTER_OTLP_*ENDPOINT` (said in the error).
    pub(super) fn check_outputs(&self, from_otel_env: bool) -> Result<(), ConfigError> {
        refuse_own_address(self, from_otel_env)?;
        require_queue(self)
    }
}

/// `--resource-attribute*`, each from its flags or else its variable (flag over variable, as for every repeatable
/// flag). A key repeated within one list: the last wins, as in the YAML file and in `OTEL_RESOURCE_ATTRIBUTES`
/// parsers. A key in both lists is refused: upsert and insert of one key contradict each other.
fn resource_attributes(cli: &Cli, env: &HashMap<String, String>) -> Result<Vec<ResourceAttribute>, ConfigError> {
    let lists = [
        (&cli.resource_attributes, "--resource-attribute", "OTLP_BRIDGE_RESOURCE_ATTRIBUTES", AttributeMode::Upsert),
        (
            &cli.resource_attributes_if_missing,
            "--resource-attribute-if-missing",
            "OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING",
            AttributeMode::Insert,
        ),
    ];
    let mut out: Vec<ResourceAttribute> = Vec::new();
    for (flags, flag, var, mode) in lists {
        let pairs = match env.get(var) {
            _ if !flags.is_empty() => {
                flags.iter().map(|raw| parse_attribute_flag(flag, raw)).collect::<Result<Vec<_>, _>>()?
            }
            Some(raw) => parse_attribute_list(var, raw)?,
            None => Vec::new(),
        };
        for (key, value) in pairs {
            if let Some(other) = out.iter().find(|a| a.key == key && a.mode != mode) {
                let other = if other.mode == AttributeMode::Upsert {
                    "--resource-attribute"
                } else {
                    "--resource-attribute-if-missing"
                };
                return Err(ConfigError::Invalid(format!(
                    "resource attribute {key:?} is given both to {other} and to {flag} (or their variables): \
                     choose upsert or insert"
                )));
            }
            out.retain(|a| a.key != key);
            out.push(ResourceAttribute { key, value, mode });
        }
    }
    Ok(out)
}

/// A backend that is the bridge's own receiver or admin port would feed the bridge its own exports (which it cannot
/// even decode: gRPC is not OTLP/HTTP). The classic cause is `OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`,
/// meant for applications, left in the bridge's environment. Only names on one of those ports are resolved.
fn refuse_own_address(config: &Config, from_otel_env: bool) -> Result<(), ConfigError> {
    let own: Vec<(&str, SocketAddr)> = [("--listen", config.listen), ("--metrics-listen", config.metrics_listen)]
        .into_iter()
        .chain(config.grpc_listen.map(|addr| ("--grpc-listen", addr)))
        .collect();
    for target in config.backends.iter().flatten() {
        let url = target.endpoint();
        let Ok(uri) = url.parse::<http::Uri>() else { continue };
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            continue;
        }
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let host = uri.host().unwrap_or_default().trim_matches(|c| c == '[' || c == ']');
        for &(flag, addr) in &own {
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

/// An output kind that delivers only from the durable queue (an archive, whose objects are written minutes after
/// the data arrived) is refused without `--queue-dir`, saying why.
fn require_queue(config: &Config) -> Result<(), ConfigError> {
    if config.queue.is_some() {
        return Ok(());
    }
    for target in config.backends.iter().flatten() {
        if let Some((kind, why)) =
            crate::export::kind_for(target.endpoint()).and_then(|k| Some((k.name, k.needs_queue?)))
        {
            return Err(ConfigError::Invalid(format!(
                "backend {} ({kind}) needs --queue-dir (OTLP_BRIDGE_QUEUE_DIR): {why}",
                target.label()
            )));
        }
    }
    Ok(())
}
