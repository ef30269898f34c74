//! The `debug` backend: prints each request as one OTLP/JSON line on stdout and acknowledges it.

use std::io::Write;

use prost::Message;

use super::codec::Payload;
use crate::signal::{Logs, Metrics, PartialSuccess, Profiles, Signal, SignalKind, Traces};

/// Prints exports; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct DebugBackend;

impl DebugBackend {
    /// Prints each part of `payload` (one client request each, as batched) as one OTLP/JSON line of `kind`.
    pub(crate) fn export(&self, kind: SignalKind, payload: &Payload) -> Result<PartialSuccess, tonic::Status> {
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
        out.write_all(lines.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| tonic::Status::unavailable(format!("debug backend: stdout: {e}")))?;
        Ok(PartialSuccess::default())
    }
}

fn push_json_line<S: Signal>(bytes: &[u8], out: &mut String) -> Result<(), tonic::Status> {
    let request = S::Request::decode(bytes).map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    crate::json::encode_into(&request, out);
    out.push('\n');
    Ok(())
}
