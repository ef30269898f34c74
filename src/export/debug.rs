//! The `debug` backend: prints each export as one OTLP/JSON line on stdout and acknowledges it.

use std::io::Write;

use prost::Message;

use super::codec::Payload;
use crate::signal::{Logs, Metrics, PartialSuccess, Signal, SignalKind, Traces};

/// Prints exports; see the module docs.
#[derive(Debug, Default)]
pub struct DebugBackend;

impl DebugBackend {
    /// Decodes `payload` as `kind`'s request and prints it as one JSON line.
    pub fn export(&self, kind: SignalKind, payload: &Payload) -> Result<PartialSuccess, tonic::Status> {
        let bytes = payload.to_contiguous();
        let line = match kind {
            SignalKind::Traces => to_json_line::<Traces>(&bytes),
            SignalKind::Metrics => to_json_line::<Metrics>(&bytes),
            SignalKind::Logs => to_json_line::<Logs>(&bytes),
        }?;
        // One locked write per export keeps lines whole when several signals print at once.
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| tonic::Status::unavailable(format!("debug backend: stdout: {e}")))?;
        Ok(PartialSuccess::default())
    }
}

fn to_json_line<S: Signal>(bytes: &[u8]) -> Result<String, tonic::Status> {
    let request = S::Request::decode(bytes).map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut line = crate::json::encode(&request);
    line.push('\n');
    Ok(line)
}
