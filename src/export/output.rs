//! The seam every output plugs into: send one batch of one signal and say what became of it in OTLP's vocabulary;
//! probe for readiness and `--check`; a label. Retry ([`crate::retry`]), metrics, `/ready` and `--check` work on
//! this vocabulary only, so an output kind is its own file, its config section and one line in [`super::KINDS`].
//!
//! OTLP's vocabulary (specification, "Failures"): a batch is delivered (possibly with a `partial_success` that
//! rejected some items), or it failed retryably (with an optional delay the receiver asked for), or it was rejected
//! for good. The status an OTLP client hears is a `google.rpc.Code` on both OTLP transports; tonic's [`Code`] is
//! exactly that list, so it is the type used, without anything else of tonic.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use tonic::Code;

use super::Payload;
use crate::config::{BackendTarget, Config, ConfigError, Section};

use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::Telemetry;

/// The future of one [`Output::send`].
pub(crate) type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<PartialSuccess, SendError>> + Send + 'a>>;
/// The future of one [`Output::probe`].
/// `Ok`: what the probe showed, as a sentence that continues "the backend ..." ("answered an empty OTLP/gRPC
/// export: it speaks OTLP/gRPC").
pub(crate) type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<String, Problem>> + Send + 'a>>;

/// What an output keeps across the attempts of one batch (the gRPC output: the address that just failed, so that
/// the retry goes to another); `None` before the first attempt. Opaque to the retry loop.
pub(crate) type Memo = Option<Box<dyn Any + Send + Sync>>;

/// One attempt at one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// The signal of every item in the batch.
    pub kind: SignalKind,
    /// The batch.
    pub payload: &'a Payload,
    /// Its items.
    pub items: u64,
    /// The attempt must end within this (the retry loop also enforces it, so an output need not).
    pub timeout: Duration,
}

/// An output: one destination of exports. Implementations are in their own files under `src/export/`.
pub(crate) trait Output: Debug + Send + Sync + 'static {
    /// The label of logs, metrics (`backend="..."`), queue cursor files and `/ready`: the URL of an output given by
    /// `--backend` (as before named outputs existed), the section name of a named one.
    fn label(&self) -> &str;

    /// One attempt to deliver `attempt.payload`; `memo` is this batch's own, kept across its attempts.
    fn send<'a>(&'a self, attempt: Attempt<'a>, memo: &'a mut Memo) -> SendFuture<'a>;

    /// Whether the output could take `kind`'s data now, without delivering any (for `/ready`, the start-up log and
    /// `--check`); the problem says what is wrong and how to fix it.
    fn probe(&self, kind: SignalKind, timeout: Duration) -> ProbeFuture<'_>;

    /// One line for `--check`: where it sends and with which settings, secrets masked.
    fn describe(&self) -> String;

    /// How this output wants its batches; the batch worker and the queue's readers honour it.
    fn delivery(&self) -> Delivery {
        Delivery::default()
    }

    /// A new [`Unit`] for `kind`'s data with `metadata` (forwarded header values), the oldest of it queued at
    /// `arrived_ms`. `None` (the default): the output takes whole batches only.
    fn open_unit(
        &self,
        _kind: SignalKind,
        _metadata: &Arc<Vec<(String, String)>>,
        _arrived_ms: Option<u64>,
    ) -> Option<Box<dyn Unit>> {
        None
    }
}

/// The future of [`Unit::abort`].
pub(crate) type AbortFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One batch of an output's own batching taken in pieces, for batches larger than what a queue reader may hold in
/// memory (an archive object of 16 MiB when the reader holds 5): the reader adds the pieces in order, frees each
/// one once it is added, and counts the data delivered (its cursor passes it) only once the unit is complete.
///
/// Invariants: pieces are added with `seq` 0, 1, 2, ..., each until one attempt succeeded, never two at once; after
/// a failed attempt the same piece comes again and the unit repeats only what did not finish. Nothing added is
/// delivered before [`Unit::complete`] succeeded. A rejection (of an add or the completion) means the unit cannot
/// go on (the store lost its upload): the caller aborts it and reads its data again. Requests the output refuses
/// for good (they do not decode) are left out of the unit and named by a partial success.
pub(crate) trait Unit: Send {
    /// One attempt to add the `seq`-th piece, of `items` items.
    fn add<'a>(&'a mut self, seq: u64, payload: &'a Payload, items: u64, timeout: Duration) -> SendFuture<'a>;
    /// One attempt to complete the unit: once it succeeded, every piece added is delivered; its partial success
    /// names every request left out of the unit.
    fn complete(&mut self, timeout: Duration) -> SendFuture<'_>;
    /// Gives the unit up, best effort and bounded in time: nothing added is delivered.
    fn abort(self: Box<Self>) -> AbortFuture;
}

/// What an output asks of the machinery that feeds it (everything `None`: the global settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Timeout of one attempt (default `--export-timeout`).
    pub attempt_timeout: Option<Duration>,
    /// Its own batch limits (default the `--batch-*` flags). Queued mode only: a direct-mode batch serves every
    /// output of its signal at once, so there the global limits apply.
    pub batch: Option<BatchLimits>,
}

/// An output's own batching, e.g. an archive object written at 64 MiB or after 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchLimits {
    /// Items that fill a batch.
    pub max_items: u64,
    /// Bytes that fill a batch. A queue reader holds at most its memory share (half of `--memory-limit-mib` over
    /// the outputs) at once, so a batch grows past that share only in pieces (`units`).
    pub max_bytes: usize,
    /// A batch waits this long for more data, whether or not other exports are in flight (the adaptive linger of
    /// gRPC batches would send an archive object as soon as the reader catches up).
    pub linger: Duration,
    /// The output takes a batch in pieces ([`Output::open_unit`]): a queue reader then lets a batch grow past its
    /// memory share, handing it over piece by piece, and moves its cursor past it once the unit is complete.
    pub units: bool,
}

/// Whether an attempt that failed may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Trying again may succeed; not sooner than `after` when the receiver said so (gRPC `RetryInfo`,
    /// HTTP `Retry-After`, S3 `SlowDown`).
    Retryable {
        /// The delay the receiver asked for.
        after: Option<Duration>,
    },
    /// The same data will never be accepted there (malformed, refused credentials, too large).
    Rejected,
}

/// One attempt did not deliver: what happened, in OTLP's vocabulary, with its cause kept.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct SendError {
    /// Whether and when to try again.
    pub disposition: Disposition,
    /// The status an OTLP client hears for it (mapped to HTTP as the Collector maps it).
    pub code: Code,
    /// What went wrong, for the log; may name addresses (the client hears it with every address taken out).
    pub message: String,
    /// What the failure says about the output's configuration, when the output can tell (a connection refused,
    /// an untrusted certificate): the log's hint and the probe's verdict.
    pub problem: Option<Problem>,
    /// The underlying error, kept for the log's cause chain.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl SendError {
    /// A failure that a later attempt may not repeat.
    pub fn retryable(code: Code, message: impl Into<String>) -> SendError {
        SendError {
            disposition: Disposition::Retryable { after: None },
            code,
            message: message.into(),
            problem: None,
            source: None,
        }
    }

    /// A refusal for good.
    pub fn rejected(code: Code, message: impl Into<String>) -> SendError {
        SendError { disposition: Disposition::Rejected, ..SendError::retryable(code, message) }
    }

    /// With the delay the receiver asked for (only meaningful for a retryable failure).
    pub fn after(mut self, delay: Option<Duration>) -> SendError {
        if let Disposition::Retryable { after } = &mut self.disposition {
            *after = delay;
        }
        self
    }

    /// With what it says about the configuration.
    pub fn problem(mut self, problem: Problem) -> SendError {
        self.problem = Some(problem);
        self
    }

    /// With its cause.
    pub fn source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> SendError {
        self.source = Some(Arc::new(source));
        self
    }

    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.disposition, Disposition::Retryable { .. })
    }

    /// The delay the receiver asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.disposition {
            Disposition::Retryable { after } => after,
            Disposition::Rejected => None,
        }
    }
}

/// What is wrong with an output, by class, so that `/ready`, `--check` and the log need not read error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Nothing answers there (connection refused, no address).
    Unreachable,
    /// Its host name does not resolve.
    Unresolvable,
    /// Something answers, but not in the output's protocol (an HTTP/1.1 server, an OTLP/HTTP port, TLS on a plain
    /// URL or the reverse).
    WrongProtocol,
    /// TLS failed: an untrusted or mismatched certificate, a handshake refused.
    Tls,
    /// The credentials were refused (or are missing).
    Credentials,
    /// What the output writes to is not there (an OTLP service the server lacks, a missing bucket).
    Missing,
    /// No answer in time.
    Timeout,
    /// An answer that refused for another reason.
    Refused,
}

/// A [`ProblemKind`] with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct Problem {
    /// The class.
    pub kind: ProblemKind,
    /// A sentence that continues "the backend at LABEL ...": what it did and what to do about it.
    pub what: String,
}

impl Problem {
    /// A problem of `kind`.
    pub fn new(kind: ProblemKind, what: impl Into<String>) -> Problem {
        Problem { kind, what: what.into() }
    }
}

/// An output that did not pass its probe.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the backend at {output} {problem}")]
pub(crate) struct ProbeError {
    /// The output's label (for logs, `/ready` and `--check`; never for client-facing bodies).
    pub output: String,
    /// What is wrong.
    pub problem: Problem,
}

/// Why an output could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL is not a valid endpoint.
    #[error("backend {url}: {reason}")]
    Endpoint {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file the output needs could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No output kind takes this URL (the configuration checks it first; an embedder may not).
    #[error("backend {0}: no output kind takes this URL")]
    UnknownKind(String),
    /// Another output kind's reason.
    #[error("output {output}: {source}")]
    Other {
        /// The output's label.
        output: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An output kind's settings, read from its section of `--config` (and for outputs given by `--backend`, from
/// nothing: the kind then reads the global flags). Each kind downcasts its own.
pub(crate) trait OutputSettings: Any + Debug + Send + Sync {
    /// For the kind's `build` to downcast.
    fn as_any(&self) -> &dyn Any;
}

/// One kind of output. Registering a kind is one line in [`super::KINDS`].
#[derive(Debug)]
pub(crate) struct OutputKind {
    /// The kind's name, for messages.
    pub name: &'static str,
    /// Its URLs, for the message that lists what `--backend` takes (`http:// or https://`).
    pub usage: &'static str,
    /// Whether `url` (a `--backend` value or an output section's `url`) is one of this kind's: a scheme, or a word
    /// like `debug`. The first kind in [`super::KINDS`] that claims a URL takes it.
    pub claims: fn(url: &str) -> bool,
    /// Checks a claimed URL: its normal form (what labels and compares), or what is wrong with it.
    pub check_url: fn(url: &str) -> Result<String, String>,
    /// Reads this kind's keys of a named output's section (`url` and `signals` are read already) and ends with
    /// [`Section::finish`], which reports any key it did not take as unknown, with its line.
    pub settings: fn(section: Section) -> Result<Arc<dyn OutputSettings>, ConfigError>,
    /// Why it needs `--queue-dir`, when it does: refused at start without it, with this reason.
    pub needs_queue: Option<&'static str>,
    /// Builds it: `target.settings()` holds what `settings` returned (`None` for a `--backend` output).
    pub build: BuildFn,
}

/// How a kind builds an output.
pub(crate) type BuildFn = fn(target: &BackendTarget, build: &Build<'_>) -> Result<Arc<dyn Output>, SetupError>;

/// The kind that claims `url`.
pub(crate) fn kind_for(url: &str) -> Option<&'static OutputKind> {
    super::KINDS.iter().copied().find(|k| (k.claims)(url.trim()))
}

/// Settings of a kind without any of its own: its section takes no keys beyond `url` and `signals`.
#[derive(Debug)]
pub(crate) struct NoSettings;

impl OutputSettings for NoSettings {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// For [`OutputKind::settings`] of such a kind.
pub(crate) fn no_settings(section: Section) -> Result<Arc<dyn OutputSettings>, ConfigError> {
    section.finish(&["url", "signals"])?;
    Ok(Arc::new(NoSettings))
}

/// What every output kind's `build` is given.
#[derive(Debug)]
pub(crate) struct Build<'a> {
    /// The whole configuration (the global settings an output falls back to).
    pub config: &'a Config,
    /// Metrics.
    pub telemetry: &'a Arc<Telemetry>,
    /// The cap on copies of batches that outputs make (gRPC frames, compressed objects), shared by all outputs.
    pub copies: &'a Arc<super::ExportBuffers>,
    /// The memory limit, for what an output holds beside its batches (an archive's open objects).
    pub budget: &'a Arc<crate::limit::MemoryBudget>,
}

/// Every message of an error and of its sources, outermost first, without repeats (tonic nests "transport error"
/// in "transport error").
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        // tonic wraps the cause in a bare "transport error", which says nothing the cause does not.
        if text.is_empty() || text == "transport error" || parts.iter().any(|p| p.contains(&text)) {
            // Nothing new.
        } else if parts.last().is_some_and(|last| text.starts_with(last.as_str())) {
            // A cause that repeats its wrapper's words and adds its own ("tcp connect error" over "tcp connect
            // error: Connection refused"): said once.
            if let Some(last) = parts.last_mut() {
                *last = text;
            }
        } else {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A message and the chain of its causes, each said once: tonic often words a status with its cause's own first
/// message ("tcp connect error", whose cause reads "tcp connect error: Connection refused"), so plain joining would
/// print "tcp connect error: tcp connect error: ...".
pub(crate) fn with_cause(message: &str, cause: &str) -> String {
    if message.is_empty() || cause.starts_with(message) || cause.contains(&format!(": {message}")) {
        cause.to_string()
    } else if cause.is_empty() || message.contains(cause) {
        message.to_string()
    } else {
        format!("{message}: {cause}")
    }
}

impl SendError {
    /// The message with its causes, each said once, for the log and (addresses taken out) the client.
    pub(crate) fn full_message(&self) -> String {
        let chain = self.source.as_deref().map(|s| error_chain(s)).unwrap_or_default();
        with_cause(&self.message, &chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_and_its_cause_are_each_said_once() {
        let refused = "tcp connect error: Connection refused (os error 111)";
        assert_eq!(with_cause("tcp connect error", refused), refused);
        assert_eq!(with_cause("", refused), refused);
        assert_eq!(with_cause(refused, "Connection refused (os error 111)"), refused);
        assert_eq!(with_cause("transport error", "h2 protocol error"), "transport error: h2 protocol error");
        assert_eq!(with_cause("deadline", ""), "deadline");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, refused);
        let e = SendError::retryable(Code::Unavailable, "tcp connect error").source(io);
        assert_eq!(e.full_message(), refused);
        let wrapped = std::io::Error::other(Wrapped("tcp connect error", std::io::Error::other(refused)));
        assert_eq!(error_chain(&Wrapped("tcp connect error", wrapped)), refused);
    }

    /// An error whose message is a fixed phrase and whose source is `.1`, as hyper-util's connect error is.
    #[derive(Debug)]
    struct Wrapped(&'static str, std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }
}
