//! One tonic channel per gRPC backend: plain or TLS, metadata, compression, per-attempt deadline.

use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Status;

use super::codec::{PassThroughCodec, Payload};
use crate::config::{Config, TlsFiles};
use crate::signal::{PartialSuccess, SignalKind};

/// Why a backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL is not a valid endpoint.
    #[error("backend {url}: {reason}")]
    Endpoint {
        /// The URL.
        url: String,
        /// What tonic said.
        reason: String,
    },
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    TlsFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A gRPC backend.
#[derive(Debug, Clone)]
pub struct GrpcBackend {
    url: String,
    channel: Channel,
    metadata: MetadataMap,
    gzip: bool,
    authority: (String, u16),
}

impl GrpcBackend {
    /// Prepares a lazily connecting channel to `url` (connection errors surface as UNAVAILABLE on export).
    pub fn new(url: &str, config: &Config) -> Result<GrpcBackend, SetupError> {
        let bad = |reason: String| SetupError::Endpoint { url: url.to_string(), reason };
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let uri = endpoint.uri().clone();
        let https = uri.scheme_str() == Some("https");
        if https {
            endpoint = endpoint.tls_config(tls_config(&config.tls)?).map_err(|e| bad(e.to_string()))?;
        }
        let host = uri.host().unwrap_or("localhost").trim_matches(|c| c == '[' || c == ']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut metadata = MetadataMap::new();
        for (k, v) in &config.backend_headers {
            // Config validated both; a failure here would be a bug, reported rather than panicking.
            let key = MetadataKey::<Ascii>::from_bytes(k.as_bytes()).map_err(|e| bad(format!("header {k}: {e}")))?;
            let value = MetadataValue::<Ascii>::try_from(v.as_str()).map_err(|e| bad(format!("header {k}: {e}")))?;
            metadata.append(key, value);
        }
        Ok(GrpcBackend {
            url: url.to_string(),
            channel: endpoint.connect_lazy(),
            metadata,
            gzip: config.backend_gzip,
            authority: (host, port),
        })
    }

    /// The URL, as a label.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Host and port, for the readiness probe.
    pub fn authority(&self) -> (&str, u16) {
        (&self.authority.0, self.authority.1)
    }

    /// One export attempt with deadline `timeout`.
    pub async fn export(
        &self,
        kind: SignalKind,
        payload: Payload,
        timeout: Duration,
    ) -> Result<PartialSuccess, Status> {
        // Responses are a few bytes: not advertising gzip for them spares both sides a compressor per call.
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(4 * 1024 * 1024)
            .max_encoding_message_size(usize::MAX);
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        grpc.ready().await.map_err(|e| {
            Status::unavailable(format!("backend {} is not reachable: {}", self.url, super::probe::error_chain(&e)))
        })?;
        let mut request = tonic::Request::new(payload);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(timeout);
        let response = grpc.unary(request, PathAndQuery::from_static(kind.grpc_path()), PassThroughCodec).await;
        response.map(tonic::Response::into_inner).map_err(|status| transport_failure_is_unavailable(status, &self.url))
    }
}

/// A connection lost mid-call reaches us as UNKNOWN "transport error" with the I/O error as its source, while a
/// backend's own UNKNOWN comes from its `grpc-status` and has none. The former is the backend being unavailable:
/// retryable (and 503 for the client), not a 500 the client would give up on.
fn transport_failure_is_unavailable(status: Status, url: &str) -> Status {
    if status.code() == tonic::Code::Unknown && std::error::Error::source(&status).is_some() {
        let cause = std::error::Error::source(&status).map(super::probe::error_chain).unwrap_or_default();
        Status::unavailable(format!("connection to backend {url} failed: {}: {cause}", status.message()))
    } else {
        status
    }
}

fn tls_config(files: &TlsFiles) -> Result<ClientTlsConfig, SetupError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| SetupError::TlsFile { path: path.display().to_string(), source })
    };
    let mut tls = ClientTlsConfig::new();
    tls = match &files.ca_file {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => tls.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&files.client_cert, &files.client_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}
