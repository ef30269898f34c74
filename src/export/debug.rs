//! The `debug` output: prints each request as one OTLP/JSON line on stdout and acknowledges it.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::output::{no_settings, Attempt, Memo, Output, OutputKind, ProbeFuture, SendError, SendFuture};
use super::Payload;
use crate::signal::{Logs, Metrics, PartialSuccess, Profiles, Signal, SignalKind, Traces};

/// The kind: the word `debug`.
pub(crate) static KIND: OutputKind = OutputKind {
    name: "debug",
    usage: "`debug`",
    claims: |url| url.eq_ignore_ascii_case("debug"),
    check_url: |_| Ok("debug".to_string()),
    settings: no_settings,
    needs_queue: None,
    build: |target, _| Ok(Arc::new(DebugOutput { label: target.label().to_string() })),
};

/// Prints exports; see the module docs.
#[derive(Debug)]
pub(crate) struct DebugOutput {
    label: String,
}

impl DebugOutput {
    /// Prints each part of `payload` (one client request each, as batched) as one OTLP/JSON line of `kind`.
    fn print(&self, kind: SignalKind, payload: &Payload) -> Result<PartialSuccess, SendError> {
        let mut lines = String::new();
        for part in &payload.parts {
            match kind {
                SignalKind::Traces => push_json_line::<Traces>(part, &mut lines),
                SignalKind::Metrics => push_json_line::<Metrics>(part, &mut lines),
                SignalKind::Logs => push_json_line::<Logs>(part, &mut lines),
                SignalKind::Profiles => push_json_line::<Profiles>(part, &mut lines),
            }?;
        }
        // One locked write per batch keeps lines whole when several signals print at once.
        let mut out = std::io::stdout().lock();
        out.write_all(lines.as_bytes()).and_then(|()| out.flush()).map_err(|e| {
            // A full pipe or a closed terminal may recover; the retry path decides how long to wait.
            SendError::retryable(super::Code::Unavailable, "debug output: cannot write to stdout").source(e)
        })?;
        Ok(PartialSuccess::default())
    }
}

impl Output for DebugOutput {
    fn label(&self) -> &str {
        &self.label
    }

    fn send<'a>(&'a self, attempt: Attempt<'a>, _memo: &'a mut Memo) -> SendFuture<'a> {
        let result = self.print(attempt.kind, attempt.payload);
        Box::pin(std::future::ready(result))
    }

    fn probe(&self, _kind: SignalKind, _timeout: Duration) -> ProbeFuture<'_> {
        Box::pin(std::future::ready(Ok("prints each request on stdout".to_string())))
    }

    fn describe(&self) -> String {
        "prints each request as one OTLP/JSON line on stdout".to_string()
    }
}

fn push_json_line<S: Signal>(bytes: &[u8], out: &mut String) -> Result<(), SendError> {
    let request = S::Request::decode(bytes).map_err(|e| {
        // The receiver validated every byte: a batch that does not decode will not decode on a retry either.
        SendError::rejected(super::Code::InvalidArgument, "debug output: the batch does not decode").source(e)
    })?;
    crate::json::encode_into(&request, out);
    out.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn an_empty_batch_is_delivered_and_garbage_is_rejected_for_good() {
        let out = DebugOutput { label: "debug".into() };
        let empty = Payload::default();
        let mut memo = None;
        let attempt = |payload| Attempt { kind: SignalKind::Logs, payload, items: 1, timeout: Duration::from_secs(1) };
        assert_eq!(out.send(attempt(&empty), &mut memo).await.unwrap(), PartialSuccess::default());
        let garbage = Payload { parts: vec![Bytes::from_static(&[0x0a, 0x05, 0x01])], ..Payload::default() };
        let e = out.send(attempt(&garbage), &mut memo).await.unwrap_err();
        assert!(!e.is_retryable() && e.code == super::super::Code::InvalidArgument, "{e:?}");
        assert!(std::error::Error::source(&e).is_some(), "the decode error is kept");
        assert!(out.probe(SignalKind::Logs, Duration::from_secs(1)).await.is_ok());
    }
}
