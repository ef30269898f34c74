//! HTTPS on the receiver: rustls (ring), h2 and http/1.1 by ALPN, optional client certificates (mutual TLS), and
//! certificate files that are re-read when they change.
//!
//! Rotation. cert-manager and the kubelet replace mounted Secrets by writing a new directory and swapping a `..data`
//! symlink; editors and scripts rewrite files in place or rename over them. A watcher on the path sees none of the
//! symlink swaps reliably (inotify watches the old inode), and mtimes can repeat within their granularity, so the
//! files are simply read again every [`POLL_INTERVAL`] and compared with what was last seen: a few KiB per poll,
//! exact, and the same on every file system. A changed set is parsed and checked (the key must match the leaf
//! certificate); only a good set replaces the live configuration, which new connections pick up while open ones
//! keep theirs. A bad set is logged once, with the reason, and the old one stays in service; a half-finished update
//! (new certificate, old key) is therefore harmless and is taken as soon as the key follows.

mod stream;

use std::io;
use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub(crate) use stream::{ClientStream, Rewind};

use crate::config::ServerTlsFiles;
use crate::telemetry::Telemetry;

/// How often the certificate files are read again.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A file's content is not usable.
    #[error("{path}: {reason}")]
    Content {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate and key do not make a server configuration (mismatched pair, unsupported key).
    #[error("{cert} and {key} do not make a usable pair: {reason}")]
    Pair {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What rustls said.
        reason: String,
    },
}

/// The bytes of the TLS files as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The receiver's TLS configuration, replaced as a whole when the files change.
#[derive(Debug)]
pub(crate) struct ServerTls {
    files: ServerTlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Loads the files once; an error here stops the start-up (there is no old configuration to keep).
    pub(crate) fn load(files: &ServerTlsFiles) -> Result<Arc<ServerTls>, TlsError> {
        let config = build(files, &read(files)?)?;
        Ok(Arc::new(ServerTls { files: files.clone(), current: RwLock::new(Arc::new(config)) }))
    }

    /// Re-reads the files every [`POLL_INTERVAL`] for as long as this `ServerTls` is alive, counting reloads.
    pub(crate) fn watch(self: &Arc<Self>, telemetry: Arc<Telemetry>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<ServerTls> = Arc::downgrade(self);
        let mut last = read(&self.files).ok();
        telemetry.tls_handshake_failed(0);
        telemetry.tls_reload("ok", 0);
        telemetry.tls_reload("rejected", 0);
        tokio::spawn(async move {
            // The last failure logged, so a lasting problem is reported once, not every poll.
            let mut last_problem: Option<String> = None;
            loop {
                tokio::time::sleep(POLL_INTERVAL).await;
                let Some(tls) = weak.upgrade() else { return };
                let snapshot = match read(&tls.files) {
                    Ok(s) => s,
                    Err(e) => {
                        let why = e.to_string();
                        if last_problem.as_ref() != Some(&why) {
                            tracing::warn!("TLS files unreadable, keeping the current certificate: {why}");
                            last_problem = Some(why);
                        }
                        continue;
                    }
                };
                if last.as_ref() == Some(&snapshot) {
                    continue;
                }
                match build(&tls.files, &snapshot) {
                    Ok(config) => {
                        if let Ok(mut current) = tls.current.write() {
                            *current = Arc::new(config);
                        }
                        telemetry.tls_reload("ok", 1);
                        tracing::info!(cert = %tls.files.cert.display(), "TLS certificate reloaded");
                        last_problem = None;
                    }
                    Err(e) => {
                        telemetry.tls_reload("rejected", 1);
                        tracing::warn!("new TLS files rejected, keeping the current certificate: {e}");
                        last_problem = Some(e.to_string());
                    }
                }
                last = Some(snapshot);
            }
        })
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        // A poisoned lock only means a writer panicked after the swap; the value inside is a whole config.
        let config = match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        tokio_rustls::TlsAcceptor::from(config)
    }
}

fn read(files: &ServerTlsFiles) -> Result<Snapshot, TlsError> {
    let read = |path: &Path| {
        // `fs::read` follows symlinks, so a swapped `..data` link is read through to its new target.
        std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })
    };
    Ok(Snapshot {
        cert: read(&files.cert)?,
        key: read(&files.key)?,
        client_ca: files.client_ca.as_deref().map(read).transpose()?,
    })
}

fn build(files: &ServerTlsFiles, snapshot: &Snapshot) -> Result<ServerConfig, TlsError> {
    let content = |path: &Path, reason: String| TlsError::Content { path: path.display().to_string(), reason };
    let certs = CertificateDer::pem_slice_iter(&snapshot.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(content(&files.cert, "no CERTIFICATE in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&snapshot.key)
        .map_err(|e| content(&files.key, format!("no usable PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| content(&files.cert, e.to_string()))?;
    let builder = match (&files.client_ca, &snapshot.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(pem) {
                let ca = ca.map_err(|e| content(path, format!("not a PEM CA bundle: {e}")))?;
                roots.add(ca).map_err(|e| content(path, format!("unusable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(content(path, "no CERTIFICATE in the file".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| content(path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    // Checks that the key is the leaf certificate's.
    let mut config = builder.with_single_cert(certs, key).map_err(|e| TlsError::Pair {
        cert: files.cert.display().to_string(),
        key: files.key.display().to_string(),
        reason: e.to_string(),
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Why a TLS connection did not get as far as its first request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    /// The handshake failed (no or untrusted client certificate, protocol mismatch, not TLS at all).
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The handshake, or the first request bytes after it, did not arrive in time.
    #[error("no TLS handshake and request within {0:?}")]
    Timeout(Duration),
    /// The client closed the connection after the handshake without sending a request.
    #[error("closed without a request")]
    Closed,
    /// The client sent plain HTTP to the TLS port; it was told so in plain HTTP.
    #[error("plain HTTP sent to the TLS port (answered 400)")]
    PlainHttp,
}

/// The answer to a plain HTTP/1 request on the TLS port. Without it the client reads the TLS alert as a reply
/// (curl: "Received HTTP/0.9 when not allowed"), which names nothing; Go's net/http answers the same way.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\nContent-Length: 82\r\n\r\n\
this port speaks HTTPS (TLS): use https:// in the URL (and the CA that signed it)\n";

/// How long the rest of a plain request is read (and discarded) after the 400, so that closing a socket with
/// unread data does not reset the connection before the client has read the answer.
const PLAIN_HTTP_LINGER: Duration = Duration::from_millis(500);
/// Bytes of the plain request discarded at most while lingering.
const PLAIN_HTTP_DISCARD_MAX: usize = 64 * 1024;

/// Completes the TLS handshake (when `tls` is set) and waits for the start of the first request, all within
/// `timeout`.
///
/// The wait matters for the same reason as the plain path's peek: hyper's header timeout starts only once its
/// HTTP/1-or-2 detection has bytes, so a client that shakes hands and then stays silent would hold its connection
/// slot forever. The bytes read here are replayed to hyper by [`Rewind`].
pub(crate) async fn accept(
    tls: Option<&ServerTls>,
    stream: TcpStream,
    timeout: Duration,
) -> Result<ClientStream, AcceptError> {
    let Some(tls) = tls else { return Ok(ClientStream::Plain(stream)) };
    if looks_like_plain_http(&stream).await {
        answer_plain_http(stream).await;
        return Err(AcceptError::PlainHttp);
    }
    let acceptor = tls.acceptor();
    let started = async {
        let mut stream = acceptor.accept(stream).await.map_err(AcceptError::Handshake)?;
        let prefix = read_request_start(&mut stream).await?;
        Ok(ClientStream::Tls(Box::new(Rewind::new(prefix, stream))))
    };
    tokio::time::timeout(timeout, started).await.map_err(|_| AcceptError::Timeout(timeout))?
}

/// Whether the first bytes (already known to have arrived) are an HTTP/1 request line rather than a TLS record. A TLS
/// handshake record starts with 0x16; an HTTP/1 method is upper-case ASCII followed by a space. An h2c preface
/// (`PRI * HTTP/2.0`) is not answered in HTTP/1: its client could not read it, so it just fails the handshake.
async fn looks_like_plain_http(stream: &TcpStream) -> bool {
    let mut first = [0u8; 8];
    let Ok(n) = stream.peek(&mut first).await else { return false };
    let head = &first[..n];
    let method_len = head.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method_len > 0 && head.get(method_len) == Some(&b' ') && !head.starts_with(b"PRI ")
}

async fn answer_plain_http(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let answered = async {
        stream.write_all(PLAIN_HTTP_ANSWER).await?;
        stream.shutdown().await?;
        let mut discarded = 0;
        let mut buf = [0u8; 4096];
        while discarded < PLAIN_HTTP_DISCARD_MAX {
            match stream.read(&mut buf).await? {
                0 => break,
                n => discarded += n,
            }
        }
        Ok::<(), io::Error>(())
    };
    // Best effort: the client may already be gone, and the connection closes either way.
    let _ = tokio::time::timeout(PLAIN_HTTP_LINGER, answered).await;
}

/// Reads until HTTP/1 can be told from HTTP/2: one byte that is not the start of the HTTP/2 preface, or all of it.
async fn read_request_start(stream: &mut TlsStream<TcpStream>) -> Result<Bytes, AcceptError> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = vec![0u8; PREFACE.len()];
    let mut filled = 0;
    while filled < PREFACE.len() {
        let n = stream.read(&mut buf[filled..]).await.map_err(AcceptError::Handshake)?;
        if n == 0 {
            return Err(AcceptError::Closed);
        }
        filled += n;
        if buf[..filled] != PREFACE[..filled] {
            break;
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}
