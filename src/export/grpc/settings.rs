//! The gRPC output's settings: its URL, and the keys of its section in `--config` (each replaces the global
//! `--backend-*` setting of the same meaning for that output only; what it does not set comes from the global
//! settings, as it does for outputs given by `--backend`).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataKey, MetadataValue};

use crate::config::{Config, ConfigError, Section, TlsFiles};
use crate::export::output::OutputSettings;

/// The keys a gRPC output's section takes besides `url` and `signals`.
const KEYS: [&str; 8] = ["url", "signals", "headers", "ca_file", "client_cert", "client_key", "compression", "timeout"];

/// What a named gRPC output sets for itself (`None`: the global setting).
#[derive(Debug, Default, Clone)]
pub(super) struct GrpcSettings {
    /// gRPC metadata of every export (`headers:`), replacing `--backend-header`.
    headers: Option<Vec<(String, String)>>,
    /// `ca_file:`, replacing `--backend-ca-file`.
    ca_file: Option<std::path::PathBuf>,
    /// `client_cert:` and `client_key:` (both or neither), replacing the global pair.
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `compression: gzip|none`.
    gzip: Option<bool>,
    /// `timeout:` of one attempt, replacing `--export-timeout`.
    timeout: Option<Duration>,
}

impl OutputSettings for GrpcSettings {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The settings an output runs with.
#[derive(Debug, Clone)]
pub(super) struct Effective {
    pub(super) headers: Vec<(String, String)>,
    pub(super) tls: TlsFiles,
    pub(super) gzip: bool,
    pub(super) timeout: Duration,
}

impl GrpcSettings {
    /// `own` over the global settings of `config`.
    pub(super) fn effective(own: Option<&GrpcSettings>, config: &Config) -> Effective {
        let own = own.cloned().unwrap_or_default();
        let mut tls = config.tls.clone();
        if let Some(ca) = own.ca_file {
            tls.ca_file = Some(ca);
        }
        if let Some((cert, key)) = own.client {
            tls.client_cert = Some(cert);
            tls.client_key = Some(key);
        }
        Effective {
            headers: own.headers.unwrap_or_else(|| config.backend_headers.clone()),
            tls,
            gzip: own.gzip.unwrap_or(config.backend_gzip),
            timeout: own.timeout.unwrap_or(config.export_timeout),
        }
    }
}

impl Effective {
    /// One line for `--check`: header names with their values masked (any of them may be a credential: an
    /// `authorization`, an API key under a vendor's own header name), file paths, compression, timeout.
    pub(super) fn describe(&self, url: &str) -> String {
        let mut line = format!("OTLP/gRPC {url}");
        if !self.headers.is_empty() {
            let names: Vec<String> = self.headers.iter().map(|(k, _)| format!("{k:?}=****")).collect();
            line.push_str(&format!(", headers {}", names.join(" ")));
        }
        if let Some(ca) = &self.tls.ca_file {
            line.push_str(&format!(", ca_file {}", ca.display()));
        }
        if let (Some(cert), Some(key)) = (&self.tls.client_cert, &self.tls.client_key) {
            line.push_str(&format!(", client_cert {}, client_key {}", cert.display(), key.display()));
        }
        line.push_str(if self.gzip { ", compression gzip" } else { ", compression none" });
        line.push_str(&format!(", timeout {}", humantime::format_duration(self.timeout)));
        line
    }
}

/// `http(s)://host[:port]` without credentials or path, in normal form (no trailing `/`).
pub(super) fn check_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("the scheme must be http:// or https:// (or use `debug`)".into()),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // The URL would end up in logs, metrics and /ready; credentials belong in metadata, which stays secret.
        return Err("credentials in a backend URL are refused (they would appear in logs and metrics); send them \
                    as gRPC metadata instead, e.g. --backend-header authorization=Basic%20<base64>"
            .into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    // gRPC calls carry their own path; a trailing `/` (common in OTEL_EXPORTER_OTLP_ENDPOINT) is harmless.
    if !matches!(uri.path(), "" | "/") {
        return Err("a gRPC backend takes no path (the exporter adds the service path)".into());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Reads a gRPC output's section.
pub(super) fn read(mut section: Section) -> Result<Arc<dyn OutputSettings>, ConfigError> {
    let mut settings = GrpcSettings::default();
    if let Some(map) = section.string_map("headers")? {
        let mut headers = Vec::with_capacity(map.len());
        for (k, v) in map {
            let key = k.trim().to_ascii_lowercase();
            let valid = MetadataKey::<Ascii>::from_bytes(key.as_bytes()).is_ok()
                && !key.ends_with("-bin")
                && MetadataValue::<Ascii>::try_from(v.as_str()).is_ok();
            if !valid {
                return Err(section.error(
                    "headers",
                    format!("{k:?}: expected a lowercase ASCII gRPC metadata name with a printable ASCII value"),
                ));
            }
            headers.push((key, v));
        }
        settings.headers = Some(headers);
    }
    settings.ca_file = section.path_buf("ca_file")?;
    let cert = section.path_buf("client_cert")?;
    let key = section.path_buf("client_key")?;
    settings.client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => return Err(section.error("client_cert", "mutual TLS needs client_key too")),
        (None, Some(_)) => return Err(section.error("client_key", "mutual TLS needs client_cert too")),
    };
    settings.gzip = section.parse("compression", |s| match s {
        "gzip" => Ok(true),
        "none" => Ok(false),
        other => Err(format!("{other:?}: use gzip or none")),
    })?;
    settings.timeout = section.duration("timeout")?;
    if settings.timeout.is_some_and(|t| t.is_zero()) {
        return Err(section.error("timeout", "must be more than 0"));
    }
    section.finish(&KEYS)?;
    Ok(Arc::new(settings))
}
