//! Test PKI (rcgen) in a temporary directory removed on drop, and an HTTPS client that says which ALPN protocol and
//! which server certificate it got.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::Answer;

/// A directory under the system temp dir, deleted (with the keys in it) when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        // tempfile picks an unused name (mode 0700) so keys are never readable by others or left behind on a clash.
        let dir = tempfile::Builder::new().prefix(&format!("otlp-bridge-{name}-")).tempdir().unwrap().keep();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA that signs leaf certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

/// A leaf certificate (PEM) and its key (PEM).
#[derive(Clone)]
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Leaf {
    pub fn der(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap().to_vec()
    }
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = issuer.pem();
        Ca { issuer, pem }
    }

    /// A leaf for `names` (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert: cert.pem(), key: key.serialize_pem() }
    }
}

/// What a TLS client offers.
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// Trusts `ca_pem`, offers `alpn`, and presents `identity` if given.
    pub fn new(ca_pem: &str, alpn: &[&[u8]], identity: Option<&Leaf>) -> ClientTls {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(leaf) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(leaf.cert.as_bytes()).map(Result::unwrap).collect(),
                    PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        ClientTls { config: Arc::new(config) }
    }
}

/// One HTTPS answer and what the connection negotiated.
pub struct HttpsAnswer {
    pub answer: Answer,
    pub alpn: Option<Vec<u8>>,
    pub version: http::Version,
    pub server_cert: Vec<u8>,
}

/// One request over a fresh TLS connection to `addr` for server name `localhost`; `Err` says why it failed.
pub async fn https(
    addr: SocketAddr,
    tls: &ClientTls,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpsAnswer, String> {
    let body = body.into();
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
        let stream = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (_, session) = stream.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let server_cert = session.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
        let mut builder =
            http::Request::builder().method("POST").uri(format!("https://localhost:{}{path}", addr.port()));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let h2 = alpn.as_deref() == Some(b"h2");
        if h2 {
            builder = builder.version(http::Version::HTTP_2);
        }
        let request = builder.body(Full::new(body)).unwrap();
        let io = TokioIo::new(stream);
        let response = if h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            send.send_request(request).await.map_err(|e| format!("request: {e}"))?
        } else {
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("http1 handshake: {e}"))?;
            tokio::spawn(conn);
            send.send_request(request).await.map_err(|e| format!("request: {e}"))?
        };
        let status = response.status().as_u16();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok(HttpsAnswer { answer: Answer { status, headers, body }, alpn, version, server_cert })
    };
    tokio::time::timeout(Duration::from_secs(20), attempt).await.map_err(|_| "timed out".to_string())?
}

/// Points `link` at `target` atomically (a new link renamed over the old), as the kubelet swaps `..data`.
pub fn swap_symlink(target: &Path, link: &Path) {
    let tmp = link.parent().unwrap().join(format!(".swap-{}", fastrand::u64(..)));
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}
