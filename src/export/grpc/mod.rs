//! The OTLP/gRPC output: channels per address (plain or TLS, balanced over every address of the host name), the
//! pass-through codec, metadata, compression, per-attempt deadline; what a gRPC answer means in OTLP's vocabulary,
//! and what a failed call says about the configuration (`probe`).

mod codec;
mod connect;
mod frame;
mod http_status;
mod probe;
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Status;

use super::balance::{Balancer, Connect, Replica};
use super::output::{
    Attempt, Build, Delivery, Memo, Output, OutputKind, ProbeFuture, Problem, ProblemKind, SendError, SendFuture,
};
use super::{ExportBuffers, Payload, SetupError};
use crate::config::{BackendTarget, TlsFiles};
use crate::retry::is_retryable;
use crate::signal::{PartialSuccess, SignalKind};
use codec::PassThroughCodec;
use settings::GrpcSettings;

/// The kind: `http://` and `https://` URLs.
pub(crate) static KIND: OutputKind = OutputKind {
    name: "otlp_grpc",
    usage: "http:// or https://",
    claims: |url| {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    },
    check_url: settings::check_url,
    settings: settings::read,
    needs_queue: None,
    build: |target, build| Ok(Arc::new(GrpcOutput::new(target, build)?)),
};

/// A backend that takes longer than this to accept a TCP (and TLS) connection is treated as down for this attempt;
/// the retry moves on instead of spending the whole budget on one dial.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on idle export channels, so a connection dropped silently (NAT or load balancer idle timeouts are
/// 60 s or more) is found before the next export needs it.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// A ping unanswered this long closes the connection, so the next export dials again.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The OTLP/gRPC output: one lazily connecting channel per address of its host name, balanced (see
/// [`super::balance`]).
#[derive(Debug)]
pub(crate) struct GrpcOutput {
    label: String,
    url: String,
    balancer: Arc<Balancer>,
    metadata: MetadataMap,
    gzip: bool,
    timeout: Duration,
    authority: (String, u16),
    /// What `--check` prints (header values and file contents are not in it).
    described: String,
    /// Each attempt's copy of its batch into the gRPC frame waits for room here.
    copies: Arc<ExportBuffers>,
}

impl GrpcOutput {
    /// Prepares the target's channels; connection errors surface as UNAVAILABLE on export, and a host name is
    /// resolved in the background (now, and every `--backend-resolve-interval`). A named output's own settings
    /// replace the global `--backend-*` ones that they name; the others apply as they are.
    fn new(target: &BackendTarget, build: &Build<'_>) -> Result<GrpcOutput, SetupError> {
        let config = build.config;
        let url = target.endpoint();
        let own = target.settings().and_then(|s| s.as_any().downcast_ref::<GrpcSettings>());
        let effective = GrpcSettings::effective(own, config);
        let bad = |reason: String| SetupError::Endpoint { url: url.to_string(), reason };
        let origin: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        let https = origin.scheme_str() == Some("https");
        let host = origin.host().unwrap_or("localhost").trim_matches(|c| c == '[' || c == ']').to_string();
        let port = origin.port_u16().unwrap_or(if https { 443 } else { 80 });
        // Each address gets its own connection, but TLS verifies (SNI) and HTTP/2 addresses (:authority) the host
        // name of the URL, exactly as one channel to the URL would.
        let tls = if https { Some(tls_config(&effective.tls)?.domain_name(host.clone())) } else { None };
        let scheme = if https { "https" } else { "http" };
        let endpoint_for = {
            let origin = origin.clone();
            move |addr: SocketAddr| -> Result<Endpoint, String> {
                let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
                    .map_err(|e| e.to_string())?
                    .origin(origin.clone())
                    .connect_timeout(CONNECT_TIMEOUT)
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
            // Our connector, for its TCP options (see `connect`); tonic adds TLS and the connect timeout.
            Ok(endpoint) => endpoint.connect_with_connector_lazy(connect::connector(addr)),
            // Checked above with the same settings; should it fail anyway, calls on this address fail UNAVAILABLE.
            Err(e) => {
                tracing::warn!(backend = %label, %addr, "cannot set up a channel: {e}");
                Endpoint::from_static("http://0.0.0.0:0").connect_lazy()
            }
        });
        let mut metadata = MetadataMap::new();
        for (k, v) in &effective.headers {
            // Config validated both; a failure here would be a bug, reported rather than panicking.
            let key = MetadataKey::<Ascii>::from_bytes(k.as_bytes()).map_err(|e| bad(format!("header {k}: {e}")))?;
            let value = MetadataValue::<Ascii>::try_from(v.as_str()).map_err(|e| bad(format!("header {k}: {e}")))?;
            metadata.append(key, value);
        }
        let label = target.label().to_string();
        let resolver = config.backend_resolver.clone();
        let balancer = Balancer::new(
            &label,
            &host,
            port,
            config.backend_resolve_interval,
            resolver,
            connect,
            Arc::clone(build.telemetry),
        );
        let described = effective.describe(url);
        Ok(GrpcOutput {
            label,
            url: url.to_string(),
            balancer,
            metadata,
            gzip: effective.gzip,
            timeout: effective.timeout,
            authority: (host, port),
            described,
            copies: Arc::clone(build.copies),
        })
    }

    /// The URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Host and port of the URL.
    pub(crate) fn authority(&self) -> (&str, u16) {
        (&self.authority.0, self.authority.1)
    }

    /// The same export to every address at once (not counted, no cooldown): the first success, or the last
    /// failure when none succeeds. What the readiness probe needs: at least one address takes exports.
    async fn export_everywhere(
        &self,
        kind: SignalKind,
        payload: Payload,
        timeout: Duration,
    ) -> Result<PartialSuccess, SendError> {
        let replicas = self.balancer.all(timeout).await.map_err(|s| self.no_address(s))?;
        let calls = replicas.iter().map(|r| Box::pin(self.call(r, kind, payload.clone(), timeout)));
        futures_util::future::select_ok(calls).await.map(|(ok, _)| ok)
    }

    async fn call(
        &self,
        replica: &Replica,
        kind: SignalKind,
        payload: Payload,
        timeout: Duration,
    ) -> Result<PartialSuccess, SendError> {
        // Responses are a few bytes: not advertising gzip for them spares both sides a compressor per call.
        let channel = frame::WriteParts(http_status::GrpcStatusFromHttp(replica.channel.clone()));
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(4 * 1024 * 1024)
            .max_encoding_message_size(usize::MAX);
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        if let Err(e) = grpc.ready().await {
            let message = format!("backend {} is not reachable", self.url);
            let problem = probe::classify_transport(&e, &self.url);
            return Err(SendError::retryable(tonic::Code::Unavailable, message).problem(problem).source(e));
        }
        let forwarded = std::sync::Arc::clone(&payload.metadata);
        // Uncompressed, the parts become the body as they are (see `frame`), and tonic encodes an empty message.
        let mut payload = payload;
        let parts = if self.gzip { None } else { frame::Parts::take(&mut payload) };
        let codec = PassThroughCodec { framed_outside: parts.is_some() };
        let mut request = tonic::Request::new(payload);
        if let Some(parts) = parts {
            request.extensions_mut().insert(parts);
        }
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
        let response = grpc.unary(request, PathAndQuery::from_static(kind.grpc_path()), codec).await;
        response.map(tonic::Response::into_inner).map_err(|status| self.failure(status, kind))
    }

    /// A gRPC status in OTLP's vocabulary. A connection lost mid-call reaches us as UNKNOWN "transport error" with
    /// the I/O error as its source, while a backend's own UNKNOWN comes from its `grpc-status` and has none. The
    /// former is the backend being unavailable: retryable (and 503 for the client), not a 500 the client would give
    /// up on.
    /// The balancer knows no address of the host name (yet): retryable, as a lookup may find one.
    fn no_address(&self, status: Status) -> SendError {
        let problem = Problem::new(
            ProblemKind::Unresolvable,
            format!("has a host name that does not resolve ({})", status.message()),
        );
        SendError::retryable(status.code(), status.message()).problem(problem).source(Answer(status))
    }

    fn failure(&self, status: Status, kind: SignalKind) -> SendError {
        let lost = status.code() == tonic::Code::Unknown && std::error::Error::source(&status).is_some();
        let code = if lost { tonic::Code::Unavailable } else { status.code() };
        // A lost connection's status message is its cause's first words: the cause chain says them.
        let message =
            if lost { format!("connection to backend {} failed", self.url) } else { status.message().to_string() };
        let delay = retry_info_delay(&status);
        let problem = probe::classify_status(&status, &self.url, kind);
        let error = if is_retryable(code, delay.is_some()) {
            SendError::retryable(code, message).after(delay)
        } else {
            SendError::rejected(code, message)
        };
        error.problem(problem).source(Answer(status))
    }
}

/// The delay a status asks for in its `google.rpc.RetryInfo` detail, if any.
fn retry_info_delay(status: &Status) -> Option<Duration> {
    use tonic_types::StatusExt;
    status.get_details_retry_info().and_then(|info| info.retry_delay)
}

/// A gRPC status as the cause of a [`SendError`] that already carries its code and message: it says the message,
/// and its source is the transport error under it, if any.
#[derive(Debug)]
struct Answer(Status);

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for Answer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Output for GrpcOutput {
    fn label(&self) -> &str {
        &self.label
    }

    /// One attempt on the next address other than the one this batch's previous attempt failed on (kept in
    /// `memo`), when there is another.
    fn send<'a>(&'a self, attempt: Attempt<'a>, memo: &'a mut Memo) -> SendFuture<'a> {
        Box::pin(async move {
            let avoid = memo.as_ref().and_then(|m| m.downcast_ref::<SocketAddr>()).copied();
            let replica = self.balancer.choose(avoid, attempt.timeout).await.map_err(|s| self.no_address(s))?;
            *memo = Some(Box::new(replica.addr));
            // The attempt copies the batch into its gRPC frame: that copy waits for room under the cap.
            let _copy = self.copies.hold(attempt.payload.len()).await;
            let accounting = self.balancer.attempt(&replica);
            let result = self.call(&replica, attempt.kind, attempt.payload.clone(), attempt.timeout).await;
            accounting.finish(result.as_ref().map(|_| ()).map_err(|e| e.code));
            result
        })
    }

    fn probe(&self, kind: SignalKind, timeout: Duration) -> ProbeFuture<'_> {
        Box::pin(probe::probe(self, kind, timeout))
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn delivery(&self) -> Delivery {
        Delivery { attempt_timeout: Some(self.timeout), batch: None }
    }
}

fn tls_config(files: &TlsFiles) -> Result<ClientTlsConfig, SetupError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| SetupError::File { path: path.display().to_string(), source })
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
