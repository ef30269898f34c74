//! The S3 client: `object_store`'s `AmazonS3` (Apache Arrow project), built from the output's settings and the
//! standard `AWS_*` variables, and what its errors mean for a person.
//!
//! Why `object_store`: it signs with SigV4 and sends no `x-amz-checksum-*` / `x-amz-sdk-checksum-algorithm`
//! headers unless asked (the AWS SDKs send them by default since 2025, and MinIO, Backblaze B2, Cloudflare R2 and
//! older Ceph reject them: minio#20849, aws-sdk-rust#1240); it streams multipart uploads and listings; it reads the
//! credential chain a deployment expects (static keys, session tokens, web identity, ECS, IMDS); and with its
//! `aws-base` + `ring` features it reuses the ring, rustls and hyper this binary already has (no aws-lc build).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::key::Location;

/// Where and as whom an archive connects: the output's own settings; what is unset comes from `AWS_*`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`): an S3-compatible store; unset: AWS.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`); unset: us-east-1.
    pub region: Option<String>,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`); unset: on with an endpoint (what S3-compatible stores
    /// serve), virtual-hosted (`BUCKET.s3.REGION.amazonaws.com`) on AWS, which path-style is deprecated for.
    pub path_style: Option<bool>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("StoreSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &masked(&self.secret_access_key))
            .field("session_token", &masked(&self.session_token))
            .finish()
    }
}

impl StoreSettings {
    /// Fills what is unset from the standard variables in `env`.
    pub fn with_env(mut self, env: &HashMap<String, String>) -> StoreSettings {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        self.endpoint = self.endpoint.or_else(|| get("AWS_ENDPOINT_URL_S3")).or_else(|| get("AWS_ENDPOINT_URL"));
        self.region = self.region.or_else(|| get("AWS_REGION")).or_else(|| get("AWS_DEFAULT_REGION"));
        self.access_key_id = self.access_key_id.or_else(|| get("AWS_ACCESS_KEY_ID"));
        self.secret_access_key = self.secret_access_key.or_else(|| get("AWS_SECRET_ACCESS_KEY"));
        self.session_token = self.session_token.or_else(|| get("AWS_SESSION_TOKEN"));
        self
    }

    /// Where requests go, for messages: the endpoint, or AWS in the region.
    pub(crate) fn endpoint_label(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3 ({})", self.region.as_deref().unwrap_or("us-east-1")),
        }
    }
}

/// Why the client could not be built (a bad endpoint URL, say).
#[derive(Debug, thiserror::Error)]
#[error("archive {location}: cannot build the S3 client: {source}")]
pub(crate) struct ClientError {
    location: String,
    #[source]
    source: object_store::Error,
}

/// One attempt's timeout: a part is at most a few MiB, which even a slow link sends well within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The store of `location`. `env` supplies the credential chain's other variables (web identity, ECS, IMDS).
pub(crate) fn build(
    location: &Location,
    settings: &StoreSettings,
    env: &HashMap<String, String>,
) -> Result<Arc<object_store::aws::AmazonS3>, ClientError> {
    // reqwest is built without a default crypto provider: the process uses ring, as tonic and the receiver do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::new();
    // What a deployment sets for the SDKs (web identity token file, role, container credentials) applies here too.
    for (k, v) in env {
        if k.starts_with("AWS_") {
            if let Ok(key) = AmazonS3ConfigKey::from_str(&k.to_ascii_lowercase()) {
                builder = builder.with_config(key, v);
            }
        }
    }
    builder = builder.with_bucket_name(&location.bucket).with_region(settings.region.as_deref().unwrap_or("us-east-1"));
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder = builder.with_virtual_hosted_style_request(!settings.path_style.unwrap_or(settings.endpoint.is_some()));
    if let Some(v) = &settings.access_key_id {
        builder = builder.with_access_key_id(v);
    }
    if let Some(v) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(v);
    }
    if let Some(v) = &settings.session_token {
        builder = builder.with_token(v);
    }
    // The archive retries with its own backoff until --queue-max-age and counts each failure; the client only
    // smooths over a dropped connection.
    let retry = RetryConfig { max_retries: 1, retry_timeout: Duration::from_secs(10), ..RetryConfig::default() };
    // Plain http only when the endpoint says so (a local MinIO or s3s-fs); AWS is always https.
    let http =
        settings.endpoint.as_deref().is_some_and(|e| e.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")));
    let options =
        ClientOptions::new().with_timeout(REQUEST_TIMEOUT).with_connect_timeout(CONNECT_TIMEOUT).with_allow_http(http);
    let store = builder
        .with_retry(retry)
        .with_client_options(options)
        .build()
        .map_err(|source| ClientError { location: location.url(), source })?;
    Ok(Arc::new(store))
}

/// Why a request to the store failed, as a metric label (`otlp_bridge_archive_failures_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The store refused the credentials or the signature.
    Auth,
    /// Valid credentials that may not do this (`AccessDenied`).
    Denied,
    /// The bucket does not exist.
    MissingBucket,
    /// The endpoint could not be reached, or does not answer as S3 at this address.
    Connect,
    /// The store answered 5xx or timed out.
    Server,
    /// The store no longer has an open object's multipart upload (restarted without it, or a lifecycle rule or
    /// another client aborted it): the object is given up and written again.
    UploadLost,
    /// Anything else.
    Other,
}

impl Failure {
    /// Every reason, for metrics registered at 0.
    pub(crate) const ALL: [Failure; 7] = [
        Failure::Auth,
        Failure::Denied,
        Failure::MissingBucket,
        Failure::Connect,
        Failure::Server,
        Failure::UploadLost,
        Failure::Other,
    ];

    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::Auth => "auth",
            Failure::Denied => "denied",
            Failure::MissingBucket => "missing_bucket",
            Failure::Connect => "connect",
            Failure::Server => "server",
            Failure::UploadLost => "upload_lost",
            Failure::Other => "other",
        }
    }

    /// Classifies an error of the client.
    pub(crate) fn of(error: &object_store::Error) -> Failure {
        let text = error_chain(error);
        let has = |s: &str| text.contains(s);
        if has("NoSuchBucket") {
            return Failure::MissingBucket;
        }
        if has("InvalidAccessKeyId")
            || has("SignatureDoesNotMatch")
            || has("ExpiredToken")
            || has("InvalidToken")
            || matches!(error, object_store::Error::Unauthenticated { .. })
        {
            return Failure::Auth;
        }
        if matches!(error, object_store::Error::PermissionDenied { .. }) || has("AccessDenied") {
            return Failure::Denied;
        }
        if has("error sending request") || has("connect") || has("dns error") || has("Connection refused") {
            return Failure::Connect;
        }
        if has("Server returned non-2xx status code: 5")
            || has("status: 5")
            || has("timed out")
            || has("SlowDown")
            || has("InternalError")
            || has("ServiceUnavailable")
        {
            return Failure::Server;
        }
        if matches!(error, object_store::Error::NotFound { .. }) {
            // A LIST or a PUT answered 404 without naming a bucket: the address reaches something that is not this
            // bucket's S3 endpoint (virtual-hosted style against a path-style store, a wrong path on a gateway).
            return Failure::Connect;
        }
        Failure::Other
    }

    /// What to do about it, for `--check` and the log.
    pub(crate) fn fix(self, location: &Location, settings: &StoreSettings) -> String {
        let endpoint = settings.endpoint_label();
        match self {
            Failure::Auth => "authentication failed: the store refused the access key or the signature; check \
                AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), or the \
                output's access_key_id / secret_access_key, and that AWS_REGION is the bucket's region"
                .to_string(),
            Failure::Denied => format!(
                "access denied: the credentials are valid but may not use {}; grant s3:ListBucket and s3:PutObject \
                 (s3:GetObject for replay) on the bucket and prefix",
                location.url()
            ),
            Failure::MissingBucket => format!(
                "bucket {:?} does not exist at {endpoint}: create it (the bridge never creates buckets) or fix the \
                 bucket name in the s3:// URL",
                location.bucket
            ),
            Failure::Connect => format!(
                "addressing: {endpoint} could not be reached as an S3 endpoint for bucket {:?}; check AWS_ENDPOINT_URL \
                 (scheme, host and port) and path-style addressing (on by default with an endpoint; the output's \
                 path_style setting)",
                location.bucket
            ),
            Failure::Server => format!("{endpoint} failed or timed out; the store may be overloaded or down"),
            Failure::UploadLost => format!(
                "{endpoint} no longer has an open object's multipart upload (restarted without it, or a lifecycle \
                 rule aborted it): the object is written again; keep AbortIncompleteMultipartUpload rules at a day or \
                 more"
            ),
            Failure::Other => format!("{endpoint} refused the request"),
        }
    }
}

/// The error with its sources, on one line (object_store keeps the S3 error code in the sources).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// `--check`: lists the prefix (one LIST request, nothing written). `Ok` holds a line describing what is there.
pub(crate) async fn check(
    store: &dyn ObjectStore,
    location: &Location,
    settings: &StoreSettings,
    timeout: Duration,
) -> Result<String, (Failure, String)> {
    let prefix = (!location.prefix.is_empty()).then(|| Path::from(location.prefix.as_str()));
    match tokio::time::timeout(timeout, store.list_with_delimiter(prefix.as_ref())).await {
        Err(_) => Err((
            Failure::Connect,
            format!(
                "addressing: no answer from {} within {timeout:?}; check AWS_ENDPOINT_URL and the network",
                settings.endpoint_label()
            ),
        )),
        Ok(Err(e)) => {
            let failure = Failure::of(&e);
            Err((failure, format!("{} ({})", failure.fix(location, settings), error_chain(&e))))
        }
        Ok(Ok(listing)) => {
            let signals: Vec<String> =
                listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
            Ok(if signals.is_empty() {
                "listed the prefix: the bucket exists and the credentials may read it (empty so far)".to_string()
            } else {
                format!("listed the prefix: the bucket exists and holds {}", signals.join(", "))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_what_is_unset_from_the_standard_variables() {
        let env: HashMap<String, String> = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = StoreSettings { region: Some("ap-south-1".into()), ..Default::default() }.with_env(&env);
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.region.as_deref(), Some("ap-south-1"), "the output's own setting wins");
        assert_eq!(s.access_key_id.as_deref(), Some("AKID"));
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cr3t") && debug.contains("***"), "{debug}");
        let mut env2 = env.clone();
        env2.insert("AWS_ENDPOINT_URL_S3".into(), "http://s3.local:9000".into());
        env2.remove("AWS_REGION");
        let s = StoreSettings::default().with_env(&env2);
        assert_eq!(s.endpoint.as_deref(), Some("http://s3.local:9000"), "the S3-specific variable is preferred");
        assert_eq!(s.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn errors_are_classified_by_what_a_person_must_fix() {
        let generic = |msg: &str| object_store::Error::Generic { store: "S3", source: msg.to_string().into() };
        assert_eq!(
            Failure::of(&generic("Error performing list: NoSuchBucket: The specified bucket does not exist")),
            Failure::MissingBucket
        );
        assert_eq!(
            Failure::of(&generic("InvalidAccessKeyId: The AWS Access Key Id you provided does not exist")),
            Failure::Auth
        );
        assert_eq!(Failure::of(&generic("SignatureDoesNotMatch")), Failure::Auth);
        assert_eq!(
            Failure::of(&object_store::Error::PermissionDenied { path: "p".into(), source: "AccessDenied".into() }),
            Failure::Denied
        );
        assert_eq!(Failure::of(&generic("error sending request for url (http://127.0.0.1:1/b)")), Failure::Connect);
        assert_eq!(
            Failure::of(&generic("Server returned non-2xx status code: 503 Service Unavailable")),
            Failure::Server
        );
        assert_eq!(
            Failure::of(&object_store::Error::NotFound { path: "p".into(), source: "404".into() }),
            Failure::Connect
        );
        let location = Location::parse("s3://telemetry/otlp").unwrap();
        let settings = StoreSettings { endpoint: Some("http://127.0.0.1:9000".into()), ..Default::default() };
        assert!(Failure::MissingBucket.fix(&location, &settings).contains("create it"));
        assert!(Failure::Auth.fix(&location, &settings).contains("AWS_SECRET_ACCESS_KEY"));
        assert!(Failure::Connect.fix(&location, &settings).contains("AWS_ENDPOINT_URL"));
    }

    #[tokio::test]
    async fn check_lists_without_writing_and_names_an_unreachable_endpoint() {
        // A port nothing listens on: bind and drop a listener to get one.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let location = Location::parse("s3://telemetry/otlp").unwrap();
        let settings = StoreSettings {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            access_key_id: Some("a".into()),
            secret_access_key: Some("b".into()),
            ..Default::default()
        };
        let store = build(&location, &settings, &HashMap::new()).unwrap();
        let (failure, e) = check(store.as_ref(), &location, &settings, Duration::from_secs(20)).await.unwrap_err();
        assert_eq!(failure, Failure::Connect);
        assert!(e.starts_with("addressing"), "{e}");
    }
}
