//! What became of an export: the error the client and the log hear (without the backend's address for the client),
//! the sanity check of a backend's `partial_success`, and how the outcomes of several exports combine into one answer.

use std::time::Duration;

use tonic::Code;

use super::output::{ProblemKind, SendError};
use crate::signal::PartialSuccess;

/// Why data did not reach an output.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ExportError {
    /// The output's last attempt failed, for good or with the retry budget spent; the failure keeps its cause.
    ///
    /// Its `Display` is what the client hears: what happened and what to do, without the output's address (an
    /// internal host name is nobody's business outside); [`ExportError::detail`] is the log's version.
    #[error("{}", client_message(error, backend, *attempts))]
    Backend {
        /// The output's label.
        backend: String,
        /// The last attempt's failure.
        #[source]
        error: Box<SendError>,
        /// When to retry, for retryable failures (what the output asked for, or the backoff).
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
    },
    /// Data of more distinct `--forward-header` values than the bridge keeps open batches for.
    #[error("too many distinct --forward-header values have data waiting to be batched (at most {limit} per signal); retry shortly")]
    TooManyPartitions {
        /// The bound.
        limit: usize,
    },
    /// The bridge stopped before the data could be exported.
    #[error("the bridge is shutting down; the data was not exported, retry against another instance")]
    ShuttingDown,
}

impl ExportError {
    /// The status code (`google.rpc.Code`) that decides the client's answer.
    pub(crate) fn code(&self) -> Code {
        match self {
            ExportError::Backend { error, .. } => error.code,
            ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => Code::Unavailable,
        }
    }

    /// The full story for the log: the output's label (never with credentials: the configuration refuses them),
    /// its message and causes.
    pub(crate) fn detail(&self) -> String {
        match self {
            ExportError::Backend { backend, error, attempts, .. } => format!(
                "backend {backend} did not accept the data after {attempts} attempt(s): {:?}: {}",
                error.code,
                error.full_message()
            ),
            other => other.to_string(),
        }
    }

    /// The `Retry-After` hint.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Backend { retry_after, .. } => *retry_after,
            ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => Some(crate::retry::RETRY_AFTER_MIN),
        }
    }

    /// Whether a client retry may succeed: the output said the failure was retryable (a rejection for good stays
    /// one, however many attempts the budget allowed).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ExportError::Backend { error, .. } => error.is_retryable(),
            ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => true,
        }
    }
}

/// How the rejection counts of combined outcomes add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejections {
    /// The outcomes are of the same items (fan-out to backends): the largest count.
    Overlap,
    /// The outcomes are of different items (the chunks of a split request): the sum.
    Disjoint,
}

/// Combines the outcomes of several exports that together answer one request.
///
/// All succeeded: the rejection counts combined as `rejections` says, and every distinct message. Any failed: a
/// retryable failure wins over a permanent one, so that no backend loses data for want of a client retry; among
/// retryable ones, the longest `Retry-After`.
pub(crate) fn combine(
    results: impl IntoIterator<Item = Result<PartialSuccess, ExportError>>,
    rejections: Rejections,
) -> Result<PartialSuccess, ExportError> {
    let mut merged = PartialSuccess::default();
    let mut failure: Option<ExportError> = None;
    for result in results {
        match result {
            Ok(p) => {
                merged.rejected = match rejections {
                    Rejections::Overlap => merged.rejected.max(p.rejected),
                    Rejections::Disjoint => merged.rejected.saturating_add(p.rejected),
                };
                if !p.message.is_empty() && !merged.message.contains(&p.message) {
                    if !merged.message.is_empty() {
                        merged.message.push_str("; ");
                    }
                    merged.message.push_str(&p.message);
                }
            }
            Err(e) => {
                let replace = match &failure {
                    None => true,
                    Some(f) => match (e.is_retryable(), f.is_retryable()) {
                        (true, false) => true,
                        (true, true) => e.retry_after() > f.retry_after(),
                        _ => false,
                    },
                };
                if replace {
                    failure = Some(e);
                }
            }
        }
    }
    failure.map_or(Ok(merged), Err)
}
/// The client's version of an output's failure: the code, the message with every address of the output taken out,
/// and what to do about it.
pub(super) fn client_message(error: &SendError, backend: &str, attempts: u32) -> String {
    let what_to_do = if error.is_retryable() {
        "the data was not delivered; retry later"
    } else {
        "the data was not delivered; the bridge's log has the detail"
    };
    format!(
        "the backend did not accept the data after {attempts} attempt(s): {:?}: {}; {what_to_do}",
        error.code,
        redact_addresses(&error.full_message(), backend)
    )
}

/// `message` without the backend's URL, its host name, and any IPv4 address (with its port) or bracketed IPv6
/// address that a transport error may name.
fn redact_addresses(message: &str, backend: &str) -> String {
    let mut text = message.replace(backend, "the backend");
    let host = backend.split("://").nth(1).unwrap_or(backend);
    let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
    for name in [host, host_only] {
        if !name.is_empty() {
            text = text.replace(name, "the backend");
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        // "10.1.2.3:4317:" ends a sentence part: the trailing punctuation is not part of the address.
        let core = token.trim_end_matches([':', '.']);
        let is_v4 = core.matches('.').count() == 3
            && core.split(['.', ':']).all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let is_v6 = core.starts_with('[') && core.contains(']') && core.matches(':').count() >= 2;
        if is_v4 || is_v6 {
            let rest = token[core.len()..].to_string();
            out.push_str("(address)");
            out.push_str(&rest);
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']') {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// A backend's `partial_success` after a sanity check: the rejected count is clamped to `0..=sent`, so that neither
/// the client nor the metrics hear of more rejected items than the batch held; a clamp is said in the message.
pub(super) fn sane_partial_success(mut partial: PartialSuccess, sent: u64, backend: &str) -> PartialSuccess {
    let most = i64::try_from(sent).unwrap_or(i64::MAX);
    let claimed = partial.rejected;
    if !(0..=most).contains(&claimed) {
        partial.rejected = claimed.clamp(0, most);
        tracing::warn!(backend, claimed, sent, "the backend's partial_success claims an impossible rejected count");
        let note = format!(
            "the backend claimed {claimed} rejected items of the {sent} it was sent; counted as {}",
            partial.rejected
        );
        partial.message = if partial.message.is_empty() { note } else { format!("{} ({note})", partial.message) };
    }
    partial
}
/// For the log: what a failure says about the output's configuration and how to fix it (nothing for an answer the
/// receiver chose to send, which speaks for itself).
pub(super) fn hint(e: &ExportError) -> String {
    match e {
        ExportError::Backend { backend, error, .. } => match &error.problem {
            Some(problem) if problem.kind != ProblemKind::Refused => format!(" (the backend at {backend} {problem})"),
            _ => String::new(),
        },
        ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => String::new(),
    }
}

#[cfg(test)]
mod tests;
