//! A gRPC backend: channels per address (plain or TLS), metadata, compression, per-attempt deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Status;

use super::balance::{Balancer, Connect, Replica};
use super::codec::{PassThroughCodec, Payload};
use crate::config::{Config, TlsFiles};
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::Telemetry;

/// A backend that takes longer than this to accept a TCP (and TLS) connection is treated as down for this attempt;
/// the retry moves on instead of spending the whole budget on one dial.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on idle export channels, so a connection dropped silently (NAT or load balancer idle timeouts are
/// 60 s or more) is found before the next export needs it.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// A ping unanswered this long closes the connection, so the next export dials again.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A gRPC backend: one lazily connecting channel per address of its host name, balanced (see [`super::balance`]).
#[derive(Debug, Clone)]
pub(crate) struct GrpcBackend {
    url: String,
    balancer: Arc<Balancer>,
    metadata: MetadataMap,
    gzip: bool,
    authority: (String, u16),
}

impl GrpcBackend {
    /// Prepares `url`'s channels; connection errors surface as UNAVAILABLE on export, and a host name is resolved
    /// in the background (now, and every `--backend-resolve-interval`).
    pub(crate) fn new(url: &str, config: &Config, telemetry: Arc<Telemetry>) -> Result<GrpcBackend, SetupError> {
        let bad = |reason: String| SetupError::Endpoint { url: url.to_string(), reason };
        let origin: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        let https = origin.scheme_str() == Some("https");
        let host = origin.host().unwrap_or("localhost").trim_matches(|c| c == '[' || c == ']').to_string();
        let port = origin.port_u16().unwrap_or(if https { 443 } else { 80 });
        // Each address gets its own connection, but TLS verifies (SNI) and HTTP/2 addresses (:authority) the host
        // name of the URL, exactly as one channel to the URL would.
        let tls = if https { Some(tls_config(&config.tls)?.domain_name(host.clone())) } else { None };
        let scheme = if https { "https" } else { "http" };
        let endpoint_for = {
            let origin = origin.clone();
            move |addr: SocketAddr| -> Result<Endpoint, String> {
                let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
                    .map_err(|e| e.to_string())?
                    .origin(origin.clone())
                    .connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                    .keep_alive_timeout(KEEPALIVE_TIMEOUT);
                if let Some(tls) = &tls {
                    endpoint = endpoint.tls_config(tls.clone()).map_err(|e| e.to_string())?;
                }
                Ok(endpoint)
            }
        };
        // Settings that cannot work fail now, not at the first export.
        endpoint_for(SocketAddr::from(([127, 0, 0, 1], port))).map_err(bad)?;
        let label = url.to_string();
        let connect: Connect = Box::new(move |addr| match endpoint_for(addr) {
            Ok(endpoint) => endpoint.connect_lazy(),
            // Checked above with the same settings; should it fail anyway, calls on this address fail UNAVAILABLE.
            Err(e) => {
                tracing::warn!(backend = %label, %addr, "cannot set up a channel: {e}");
                Endpoint::from_static("http://0.0.0.0:0").connect_lazy()
            }
        });
        let mut metadata = MetadataMap::new();
        for (k, v) in &config.backend_headers {
            // Config validated both; a failure here would be a bug, reported rather than panicking.
            let key = MetadataKey::<Ascii>::from_bytes(k.as_bytes()).map_err(|e| bad(format!("header {k}: {e}")))?;
            let value = MetadataValue::<Ascii>::try_from(v.as_str()).map_err(|e| bad(format!("header {k}: {e}")))?;
            metadata.append(key, value);
        }
        let resolver = config.backend_resolver.clone();
        let balancer = Balancer::new(url, &host, port, config.backend_resolve_interval, resolver, connect, telemetry);
        Ok(GrpcBackend { url: url.to_string(), balancer, metadata, gzip: config.backend_gzip, authority: (host, port) })
    }

    /// The URL, as a label.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Host and port of the URL.
    pub(crate) fn authority(&self) -> (&str, u16) {
        (&self.authority.0, self.authority.1)
    }

    /// One export attempt with deadline `timeout`, on the next address other than `previous` (the address of this
    /// batch's previous attempt, which failed) when there is another; `previous` is set to the address used.
    pub(crate) async fn export_balanced(
        &self,
        kind: SignalKind,
        payload: Payload,
        timeout: Duration,
        previous: &std::sync::Mutex<Option<SocketAddr>>,
    ) -> Result<PartialSuccess, Status> {
        let avoid = previous.lock().ok().and_then(|p| *p);
        let replica = self.balancer.choose(avoid, timeout).await?;
        if let Ok(mut p) = previous.lock() {
            *p = Some(replica.addr);
        }
        let attempt = self.balancer.attempt(&replica);
        let result = self.call(&replica, kind, payload, timeout).await;
        attempt.finish(result.as_ref().map(|_| ()).map_err(Status::code));
        result
    }

    /// The same export to every address at once (not counted, no cooldown): the first success, or the last
    /// failure when none succeeds. What the readiness probe needs: at least one address takes exports.
    pub(crate) async fn export(
        &self,
        kind: SignalKind,
        payload: Payload,
        timeout: Duration,
    ) -> Result<PartialSuccess, Status> {
        let replicas = self.balancer.all(timeout).await?;
        let calls = replicas.iter().map(|r| Box::pin(self.call(r, kind, payload.clone(), timeout)));
        futures_util::future::select_ok(calls).await.map(|(ok, _)| ok)
    }

    async fn call(
        &self,
        replica: &Replica,
        kind: SignalKind,
        payload: Payload,
        timeout: Duration,
    ) -> Result<PartialSuccess, Status> {
        // Responses are a few bytes: not advertising gzip for them spares both sides a compressor per call.
        let mut grpc = tonic::client::Grpc::new(super::http_status::GrpcStatusFromHttp(replica.channel.clone()))
            .max_decoding_message_size(4 * 1024 * 1024)
            .max_encoding_message_size(usize::MAX);
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        grpc.ready().await.map_err(|e| {
            Status::unavailable(format!("backend {} is not reachable: {}", self.url, super::probe::error_chain(&e)))
        })?;
        let forwarded = std::sync::Arc::clone(&payload.metadata);
        let mut request = tonic::Request::new(payload);
        *request.metadata_mut() = self.metadata.clone();
        for (name, value) in forwarded.iter() {
            // The receiver only forwards valid names and values; the request's own value replaces a static
            // --backend-header of the same name.
            if let (Ok(key), Ok(value)) =
                (MetadataKey::<Ascii>::from_bytes(name.as_bytes()), MetadataValue::<Ascii>::try_from(value.as_str()))
            {
                request.metadata_mut().insert(key, value);
            }
        }
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
        Status::unavailable(format!(
            "connection to backend {url} failed: {}",
            super::probe::with_cause(status.message(), &cause)
        ))
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
