//! TLS to the backend: `https://` with our own CA file, and mutual TLS with a client certificate and key.

use std::path::PathBuf;

use crate::common::tls::TempDir;
use crate::common::*;
use otlp_bridge::BackendTarget;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

struct Pki {
    /// Removed with the keys in it when the test ends, passed or not.
    dir: TempDir,
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |san: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![san.to_string()]).unwrap().signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        dir: TempDir::new(&format!("tls-{name}")),
        ca_pem: ca.pem(),
        server: leaf("localhost"),
        client: leaf("bridge-client"),
    }
}

impl Pki {
    fn write(&self, name: &str, content: &str) -> PathBuf {
        self.dir.write(name, content)
    }
}

#[tokio::test]
async fn https_backends_are_verified_against_the_configured_ca() {
    let pki = pki("ca");
    let backend =
        MockBackend::start_tls(ServerTlsConfig::new().identity(Identity::from_pem(&pki.server.0, &pki.server.1))).await;
    let mut config =
        config_for(&[]).with_backends(vec![BackendTarget::url(format!("https://localhost:{}", backend.addr.port()))]);
    config.tls.ca_file = Some(pki.write("ca.pem", &pki.ca_pem));
    let bridge = Bridge::start(config).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 3)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(backend.traces(), vec![spans(1, 3)]);
}

#[tokio::test]
async fn an_untrusted_backend_certificate_is_refused_not_delivered() {
    let pki = pki("untrusted");
    let backend =
        MockBackend::start_tls(ServerTlsConfig::new().identity(Identity::from_pem(&pki.server.0, &pki.server.1))).await;
    // No CA file: the Mozilla roots do not know our test CA.
    let mut config =
        config_for(&[]).with_backends(vec![BackendTarget::url(format!("https://localhost:{}", backend.addr.port()))]);
    config.retry.max_elapsed = std::time::Duration::ZERO;
    let bridge = Bridge::start(config).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 1)).await;
    assert_eq!(a.status, 503, "{}", a.text());
    assert_eq!(backend.calls(), 0);
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = pki("mtls");
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca_pem));
    let backend = MockBackend::start_tls(tls).await;
    let url = format!("https://localhost:{}", backend.addr.port());

    let mut without_cert = config_for(&[]).with_backends(vec![BackendTarget::url(url.clone())]);
    without_cert.tls.ca_file = Some(pki.write("ca.pem", &pki.ca_pem));
    without_cert.retry.max_elapsed = std::time::Duration::ZERO;
    let mut with_cert = without_cert.clone();
    with_cert.tls.client_cert = Some(pki.write("client.pem", &pki.client.0));
    with_cert.tls.client_key = Some(pki.write("client.key", &pki.client.1));

    let refused = Bridge::start(without_cert).await;
    assert_ne!(post_pb(&refused, "/v1/traces", &spans(1, 1)).await.status, 200, "the server demands a certificate");
    let bridge = Bridge::start(with_cert).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 2)).await.status, 200);
    assert_eq!(backend.traces(), vec![spans(1, 2)]);
}
