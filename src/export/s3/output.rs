//! The archive as an output: its kind (`s3://BUCKET/PREFIX`, its config section), its batching (one batch = one
//! object, by `--archive-max-object-bytes` and `--archive-max-object-age`; an object larger than the queue reader's
//! memory share comes in pieces of a unit), and what its failures mean in OTLP's vocabulary.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::archive::{Archive, ArchiveError, ObjectFormat, ObjectMemory, ObjectWriter, Refused};
use super::client::{build as build_store, check as check_store, Failure, StoreSettings};
use super::key::{ArchiveCompression, ArchiveFormat, Location, Namer};
use crate::config::{BackendTarget, ConfigError, Section};
use crate::export::output::{
    AbortFuture, Attempt, BatchLimits, Build, Delivery, Memo, Output, OutputKind, OutputSettings, ProbeFuture, Problem,
    ProblemKind, SendError, SendFuture, SetupError, Unit,
};
use crate::export::Payload;
use crate::export::{Code, ExportBuffers};
use crate::signal::{PartialSuccess, SignalKind};

/// The kind: `s3://` URLs.
pub(crate) static KIND: OutputKind = OutputKind {
    name: "s3 archive",
    usage: "`s3://BUCKET/PREFIX`",
    claims: Location::is_s3,
    check_url: |url| Location::parse(url).map(|l| l.url()).map_err(|e| e.to_string()),
    settings: read_settings,
    needs_queue: Some(
        "the S3 archive needs --queue-dir: it writes objects minutes apart, so the client's 200 must come from \
         the queue's fsync, and the archive reads from its own cursor there",
    ),
    build,
};

/// An archive output's own settings (its `--config` section); what is unset comes from the `--archive-*` flags
/// and the `AWS_*` variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArchiveSettings {
    store: StoreSettings,
    format: Option<ArchiveFormat>,
    compression: Option<ArchiveCompression>,
    max_object_bytes: Option<u64>,
    max_object_age: Option<Duration>,
}

impl OutputSettings for ArchiveSettings {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

const KEYS: &[&str] = &[
    "url",
    "signals",
    "format",
    "compression",
    "max_object_bytes",
    "max_object_age",
    "endpoint",
    "region",
    "path_style",
    "access_key_id",
    "secret_access_key",
    "session_token",
];

fn read_settings(mut section: Section) -> Result<Arc<dyn OutputSettings>, ConfigError> {
    use clap::ValueEnum;
    let format =
        section.parse("format", |s| ArchiveFormat::from_str(s, true).map_err(|_| bad(s, "otlp_proto or otlp_json")))?;
    let compression = section
        .parse("compression", |s| ArchiveCompression::from_str(s, true).map_err(|_| bad(s, "zstd, gzip or none")))?;
    let max_object_bytes = section.parse("max_object_bytes", |s| {
        s.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| bad(s, "a positive number of bytes"))
    })?;
    let max_object_age = section.duration("max_object_age")?;
    let path_style = section.parse("path_style", |s| match s {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(bad(s, "true or false")),
    })?;
    let store = StoreSettings {
        endpoint: section.string("endpoint")?,
        region: section.string("region")?,
        path_style,
        access_key_id: section.string("access_key_id")?,
        secret_access_key: section.string("secret_access_key")?,
        session_token: section.string("session_token")?,
    };
    section.finish(KEYS)?;
    Ok(Arc::new(ArchiveSettings { store, format, compression, max_object_bytes, max_object_age }))
}

fn bad(value: &str, expected: &str) -> String {
    format!("{value:?}: expected {expected}")
}

fn build(target: &BackendTarget, b: &Build<'_>) -> Result<Arc<dyn Output>, SetupError> {
    let url = target.endpoint();
    let location =
        Location::parse(url).map_err(|e| SetupError::Endpoint { url: url.to_string(), reason: e.to_string() })?;
    let own = target.settings().and_then(|s| s.as_any().downcast_ref::<ArchiveSettings>()).cloned().unwrap_or_default();
    let flags = &b.config.archive;
    let env: HashMap<String, String> = std::env::vars().collect();
    let store_settings = own.store.clone().with_env(&env);
    let label = target.label().to_string();
    let store = build_store(&location, &store_settings, &env)
        .map_err(|e| SetupError::Other { output: label.clone(), source: Box::new(e) })?;
    let format = ObjectFormat {
        format: own.format.unwrap_or(flags.format),
        compression: own.compression.unwrap_or(flags.compression),
    };
    let memory = ObjectMemory {
        budget: Arc::clone(b.budget),
        // A quarter of the limit, like the gRPC outputs' frame copies, and apart from them.
        uploads: ExportBuffers::new(b.config.memory_limit_bytes / 4),
        spool_dir: b.config.queue.as_ref().map_or_else(std::env::temp_dir, |q| q.dir.clone()),
    };
    let archive =
        Arc::new(Archive::new(location, store, Namer::new(), format, memory, label.clone(), Arc::clone(b.telemetry)));
    Ok(Arc::new(ArchiveOutput {
        archive,
        label,
        settings: store_settings,
        format,
        max_object_bytes: own.max_object_bytes.unwrap_or(flags.max_object_bytes),
        max_object_age: own.max_object_age.unwrap_or(flags.max_object_age),
    }))
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ArchiveOutput {
    archive: Arc<Archive>,
    label: String,
    settings: StoreSettings,
    format: ObjectFormat,
    max_object_bytes: u64,
    max_object_age: Duration,
}

/// How long one attempt at an object may take: a multipart upload of a large object is many requests.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

impl Output for ArchiveOutput {
    fn label(&self) -> &str {
        &self.label
    }

    fn send<'a>(&'a self, attempt: Attempt<'a>, memo: &'a mut Memo) -> SendFuture<'a> {
        Box::pin(async move {
            // The batch keeps its key across attempts: a PUT whose answer was lost is overwritten, not doubled.
            let key = match memo.as_ref().and_then(|m| m.downcast_ref::<String>()) {
                Some(key) => key.clone(),
                None => {
                    let arrival = attempt
                        .payload
                        .arrived_ms
                        .map_or_else(SystemTime::now, |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
                    let key = self.archive.next_key(attempt.kind, arrival);
                    *memo = Some(Box::new(key.clone()));
                    key
                }
            };
            let payload = attempt.payload;
            match self.archive.store_batch(attempt.kind, &key, &payload.parts, &payload.metadata).await {
                Ok((stored, refused)) => {
                    if let Some(s) = stored {
                        tracing::debug!(output = %self.label, key = %s.key, bytes = s.bytes, "archive: object stored");
                    }
                    Ok(left_out(&refused, attempt.items))
                }
                Err(e) => Err(self.send_error(e)),
            }
        })
    }

    fn probe(&self, _kind: SignalKind, timeout: Duration) -> ProbeFuture<'_> {
        Box::pin(async move {
            check_store(self.archive.store(), &self.archive.location, &self.settings, timeout)
                .await
                .map_err(|(failure, what)| Problem::new(problem_kind(failure), what))
        })
    }

    fn describe(&self) -> String {
        let s = &self.settings;
        let path_style = s.path_style.unwrap_or(s.endpoint.is_some());
        format!(
            "archive {} at {} ({}), {} + {}, an object at {} uncompressed bytes or {} old; access key {}",
            self.archive.location.url(),
            s.endpoint_label(),
            if path_style { "path-style" } else { "virtual-hosted style" },
            match self.format.format {
                ArchiveFormat::OtlpProto => "otlp_proto",
                ArchiveFormat::OtlpJson => "otlp_json",
            },
            match self.format.compression {
                ArchiveCompression::Zstd => "zstd",
                ArchiveCompression::Gzip => "gzip",
                ArchiveCompression::None => "no compression",
            },
            self.max_object_bytes,
            humantime::format_duration(self.max_object_age),
            match (&s.access_key_id, &s.secret_access_key) {
                (Some(id), Some(_)) => format!("{id} with its secret (masked)"),
                (Some(id), None) => format!("{id} without a secret"),
                _ => "from the credential chain (web identity, container, instance metadata)".to_string(),
            }
        )
    }

    fn delivery(&self) -> Delivery {
        Delivery {
            attempt_timeout: Some(ATTEMPT_TIMEOUT),
            batch: Some(BatchLimits {
                max_items: u64::MAX,
                max_bytes: usize::try_from(self.max_object_bytes).unwrap_or(usize::MAX),
                linger: self.max_object_age,
                units: true,
            }),
        }
    }

    fn open_unit(
        &self,
        kind: SignalKind,
        metadata: &Arc<Vec<(String, String)>>,
        arrived_ms: Option<u64>,
    ) -> Option<Box<dyn Unit>> {
        let arrival = arrived_ms.map_or_else(SystemTime::now, |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        let key = self.archive.next_key(kind, arrival);
        let writer = ObjectWriter::new(&self.archive, kind, key, metadata);
        Some(Box::new(ObjectUnit {
            archive: Arc::clone(&self.archive),
            settings: self.settings.clone(),
            label: self.label.clone(),
            writer: Some(writer),
        }))
    }
}

/// An archive object larger than a queue reader's memory share, written piece by piece (see [`ObjectWriter`]).
struct ObjectUnit {
    archive: Arc<Archive>,
    settings: StoreSettings,
    label: String,
    /// `None` once aborted.
    writer: Option<ObjectWriter>,
}

impl ObjectUnit {
    /// A unit's failure: what a retry may mend is retryable; an upload the store lost, or an object that cannot be
    /// encoded, is rejected, so that the reader gives the object up and writes its data again.
    fn unit_error(&self, e: ArchiveError) -> SendError {
        match e {
            ArchiveError::UploadLost { .. } | ArchiveError::Spool { .. } => {
                SendError::rejected(Code::Aborted, e.to_string())
            }
            ArchiveError::Encode(message) => SendError::rejected(Code::Internal, message),
            e => send_error(e, &self.archive, &self.settings),
        }
    }
}

impl Unit for ObjectUnit {
    fn add<'a>(&'a mut self, seq: u64, payload: &'a Payload, items: u64, _timeout: Duration) -> SendFuture<'a> {
        Box::pin(async move {
            let result = match &mut self.writer {
                Some(writer) => writer.add(&self.archive, seq, &payload.parts).await,
                None => Err(ArchiveError::Encode("the object was given up".into())),
            };
            match result {
                Ok(refused) => Ok(left_out(&refused, items)),
                Err(e) => Err(self.unit_error(e)),
            }
        })
    }

    fn complete(&mut self, _timeout: Duration) -> SendFuture<'_> {
        Box::pin(async move {
            let result = match &mut self.writer {
                Some(writer) => writer.complete(&self.archive).await,
                None => Err(ArchiveError::Encode("the object was given up".into())),
            };
            match result {
                Ok(stored) => {
                    if let Some(s) = stored {
                        tracing::debug!(output = %self.label, key = %s.key, bytes = s.bytes, "archive: object stored");
                    }
                    Ok(PartialSuccess::default())
                }
                Err(e) => Err(self.unit_error(e)),
            }
        })
    }

    fn abort(mut self: Box<Self>) -> AbortFuture {
        Box::pin(async move {
            if let Some(writer) = self.writer.take() {
                tracing::debug!(output = %self.label, key = %writer.key(), "archive: object given up");
                writer.abort(&self.archive).await;
            }
        })
    }
}

impl ArchiveOutput {
    fn send_error(&self, e: ArchiveError) -> SendError {
        send_error(e, &self.archive, &self.settings)
    }
}

/// What a batch or piece of `items` items left out, in OTLP's vocabulary: its requests that did not decode, whose
/// items are all but those of the requests written.
fn left_out(refused: &Refused, items: u64) -> PartialSuccess {
    match refused.rejected(items) {
        0 => PartialSuccess::default(),
        rejected => PartialSuccess {
            rejected: i64::try_from(rejected).unwrap_or(i64::MAX),
            message: format!("{} requests did not decode and are not archived: {}", refused.requests, refused.why),
        },
    }
}

/// A batch's failure in OTLP's vocabulary.
fn send_error(e: ArchiveError, archive: &Archive, settings: &StoreSettings) -> SendError {
    match e {
        ArchiveError::Encode(message) => SendError::rejected(Code::InvalidArgument, message),
        // Each attempt at a batch writes its object from the start: a lost upload or a failed spool file is a
        // failure like any other.
        e @ (ArchiveError::UploadLost { .. } | ArchiveError::Spool { .. }) => {
            SendError::retryable(Code::Unavailable, e.to_string())
        }
        ArchiveError::Store { what, failure, detail } => {
            // Every store failure is retried until --queue-max-age: credentials get fixed, buckets created,
            // stores come back, and the data waits safely in the queue meanwhile.
            let code = match failure {
                Failure::Auth => Code::Unauthenticated,
                Failure::Denied => Code::PermissionDenied,
                Failure::MissingBucket => Code::NotFound,
                Failure::Server | Failure::Connect | Failure::UploadLost | Failure::Other => Code::Unavailable,
            };
            let fix = failure.fix(&archive.location, settings);
            SendError::retryable(code, format!("{what}: {detail}")).problem(Problem::new(problem_kind(failure), fix))
        }
    }
}

fn problem_kind(failure: Failure) -> ProblemKind {
    match failure {
        Failure::Auth | Failure::Denied => ProblemKind::Credentials,
        Failure::MissingBucket => ProblemKind::Missing,
        Failure::Connect => ProblemKind::Unreachable,
        Failure::Server => ProblemKind::Timeout,
        Failure::UploadLost | Failure::Other => ProblemKind::Refused,
    }
}
