//! `otlp-bridge replay`: reads an archive back into a backend (or prints it), the archive's read side.
//!
//! Objects are selected by their key's hour partition (`--start`/`--end`, inclusive of partial hours; items are not
//! filtered by their own timestamps), listed hour by hour and signal by signal, downloaded as streams, decompressed
//! and cut into requests at top-level entries on a blocking thread (`read`), optionally filtered to one trace, and
//! exported through the bridge's own exporter with its retry. An object's forwarded-header metadata
//! (`x-amz-meta-x-scope-orgid`, ...) goes with its exports as gRPC metadata, as it came in.

mod read;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{Attribute, ObjectStore, ObjectStoreExt};
use tokio::time::Instant;

use crate::config::{Cli, Config};
use crate::export::s3::{build_store, error_chain, hour_floor, ArchiveFormat, Failure, Location, StoreSettings};
use crate::export::{build_outputs, ExportBuffers, Exporter, Payload};
use crate::signal::SignalKind;
use crate::telemetry::Telemetry;
use read::{read_object, Filter, Request};

/// Flags of `otlp-bridge replay`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "otlp-bridge replay",
    about = "Reads an archive written by --backend s3://BUCKET/PREFIX back into a backend, or prints it \
             (--backend debug: one OTLP/JSON request per line on stdout). The store's endpoint, region and \
             credentials come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
             AWS_SESSION_TOKEN. Exit status: 0 when every matched item was acknowledged (or nothing matched), 1 when \
             an export failed for good or the store could not be read, 2 for invalid flags."
)]
pub struct ReplayCli {
    /// The archive: s3://BUCKET/PREFIX, as given to --backend.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub from: String,

    /// Only this signal (traces, metrics, logs, profiles); default: all (with --trace-id: traces and logs).
    #[arg(long, value_parser = parse_signal)]
    pub signal: Option<SignalKind>,

    /// Objects from the hour holding this time (RFC 3339, e.g. 2026-12-06T21:30:00Z).
    #[arg(long, value_parser = parse_time)]
    pub start: SystemTime,

    /// Objects up to the hour holding this time (RFC 3339); default: now.
    #[arg(long, value_parser = parse_time)]
    pub end: Option<SystemTime>,

    /// Keep only the spans and log records of this trace (32 hex digits).
    #[arg(long, value_parser = parse_trace_id)]
    pub trace_id: Option<[u8; 16]>,

    /// Where the items go: http(s)://host:port (OTLP/gRPC, with the bridge's retry and its OTLP_BRIDGE_BACKEND_* and
    /// OTEL_EXPORTER_OTLP_* settings), or `debug`. Repeatable.
    #[arg(long = "backend", value_name = "URL|debug", default_value = "debug")]
    pub backends: Vec<String>,
}

fn parse_signal(s: &str) -> Result<SignalKind, String> {
    SignalKind::ALL
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("unknown signal {s:?}: expected traces, metrics, logs or profiles"))
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-06T21:30:00Z: {e}"))?;
    let nanos = t.timestamp_nanos_opt().ok_or_else(|| format!("{s:?} is out of range"))?;
    let nanos = u64::try_from(nanos).map_err(|_| format!("{s:?} is before 1970"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}

fn parse_trace_id(s: &str) -> Result<[u8; 16], String> {
    let bad = || format!("{s:?} is not a trace id: expected 32 hex digits");
    if s.len() != 32 {
        return Err(bad());
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    if id == [0; 16] {
        return Err(format!("{s:?} is the invalid all-zero trace id"));
    }
    Ok(id)
}

/// What a replay did: the summary line and the exit status.
#[derive(Debug)]
pub struct ReplayReport {
    /// One line for stderr.
    pub summary: String,
    /// 0, 1 or 2 (see the command's help).
    pub exit_code: u8,
}

/// How long one replayed batch is retried: replay is a batch job, so a backend restarting is waited for.
const REPLAY_RETRY_BUDGET: Duration = Duration::from_secs(300);

/// Runs a replay; `env` is the process environment (AWS_* and the exporter's variables).
pub async fn replay(cli: ReplayCli, env: &HashMap<String, String>) -> ReplayReport {
    let fail = |code: u8, summary: String| ReplayReport { summary: format!("replay: {summary}"), exit_code: code };
    let location = match Location::parse(&cli.from) {
        Ok(l) => l,
        Err(e) => return fail(2, e.to_string()),
    };
    let end = cli.end.unwrap_or_else(SystemTime::now);
    if end < cli.start {
        return fail(2, "--end is before --start".into());
    }
    let signals: Vec<SignalKind> = match (cli.signal, cli.trace_id) {
        (Some(SignalKind::Metrics | SignalKind::Profiles), Some(_)) => {
            return fail(2, "--trace-id selects spans and log records: use it with --signal traces or logs".into())
        }
        (Some(kind), _) => vec![kind],
        (None, Some(_)) => vec![SignalKind::Traces, SignalKind::Logs],
        (None, None) => SignalKind::ALL.to_vec(),
    };
    if let Some(url) = cli.backends.iter().find(|b| Location::is_s3(b)) {
        return fail(2, format!("--backend {url}: replay exports to OTLP/gRPC backends or debug, not to an archive"));
    }
    let mut args = vec!["otlp-bridge".to_string()];
    for b in &cli.backends {
        args.extend(["--backend".to_string(), b.clone()]);
    }
    let config = match <Cli as clap::Parser>::try_parse_from(&args)
        .map_err(|e| e.to_string())
        .and_then(|c| Config::from_cli_and_env(c, env).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    let settings = StoreSettings::default().with_env(env);
    let store = match build_store(&location, &settings, env) {
        Ok(s) => s,
        Err(e) => return fail(1, e.to_string()),
    };
    let telemetry = Telemetry::new();
    let buffers = ExportBuffers::new(config.memory_limit_bytes / 4);
    let budget = crate::limit::MemoryBudget::new(config.memory_limit_bytes);
    let backends = match build_outputs(&config, &telemetry, &buffers, &budget) {
        Ok(b) => b,
        Err(e) => return fail(1, e.to_string()),
    };
    let mut run = Run { totals: Totals::default(), started: Instant::now(), config: &config };
    for kind in signals.iter().copied() {
        let targets: Vec<Arc<dyn crate::export::Output>> = backends
            .iter()
            .filter(|(t, _)| config.backends[kind.index()].contains(t))
            .map(|(_, b)| Arc::clone(b))
            .collect();
        let exporter = Exporter::new(kind, targets, &config, Arc::clone(&telemetry));
        let filter = Filter { trace_id: cli.trace_id };
        if let Err(e) = run.signal(store.as_ref(), &location, &settings, kind, cli.start, end, &exporter, filter).await
        {
            return fail(1, format!("{e}; {}", run.totals.describe(run.started.elapsed())));
        }
    }
    let t = &run.totals;
    let took = run.started.elapsed();
    if t.objects == 0 || t.items == 0 && t.failed == 0 {
        let names: Vec<&str> = signals.iter().map(|k| k.name()).collect();
        let what = if cli.trace_id.is_some() { "items of that trace" } else { "objects" };
        return ReplayReport {
            summary: format!(
                "replay: nothing matched: no {what} in {} for {} between {} and {} ({} objects read, {:.2} s)",
                location.url(),
                names.join(", "),
                humantime::format_rfc3339_seconds(hour_floor(cli.start)),
                humantime::format_rfc3339_seconds(end),
                t.objects,
                took.as_secs_f64()
            ),
            exit_code: 0,
        };
    }
    let code = if t.failed == 0 { 0 } else { 1 };
    ReplayReport { summary: format!("replay: {}", t.describe(took)), exit_code: code }
}

#[derive(Debug, Default)]
struct Totals {
    objects: u64,
    items: u64,
    acknowledged: u64,
    failed: u64,
    stored_bytes: u64,
    bytes: u64,
    last_error: Option<String>,
}

impl Totals {
    fn describe(&self, took: Duration) -> String {
        let mut s = format!(
            "{} objects, {} items, {} bytes ({} stored), {:.2} s; ",
            self.objects,
            self.items,
            self.bytes,
            self.stored_bytes,
            took.as_secs_f64()
        );
        if self.failed == 0 {
            s.push_str(&format!("all {} acknowledged", self.acknowledged));
        } else {
            s.push_str(&format!(
                "{} acknowledged, {} NOT acknowledged (last error: {})",
                self.acknowledged,
                self.failed,
                self.last_error.as_deref().unwrap_or("-")
            ));
        }
        s
    }
}

struct Run<'a> {
    totals: Totals,
    started: Instant,
    config: &'a Config,
}

impl Run<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn signal(
        &mut self,
        store: &dyn ObjectStore,
        location: &Location,
        settings: &StoreSettings,
        kind: SignalKind,
        start: SystemTime,
        end: SystemTime,
        exporter: &Exporter,
        filter: Filter,
    ) -> Result<(), String> {
        let mut hour = hour_floor(start);
        while hour <= end {
            let prefix = location.hour_prefix(kind, hour);
            let mut keys: Vec<(Path, u64)> = store
                .list(Some(&Path::from(prefix.as_str())))
                .map_ok(|m| (m.location, m.size))
                .try_collect()
                .await
                .map_err(|e| {
                    format!("listing {prefix}: {} ({})", Failure::of(&e).fix(location, settings), error_chain(&e))
                })?;
            // Names begin with the time: key order is arrival order.
            keys.sort();
            for (path, size) in keys {
                let Some((format, compression)) = ArchiveFormat::of_key(path.as_ref()) else { continue };
                self.object(store, &path, kind, format, compression, exporter, filter).await?;
                self.totals.objects += 1;
                self.totals.stored_bytes += size;
            }
            hour += Duration::from_secs(3600);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn object(
        &mut self,
        store: &dyn ObjectStore,
        path: &Path,
        kind: SignalKind,
        format: ArchiveFormat,
        compression: crate::export::s3::ArchiveCompression,
        exporter: &Exporter,
        filter: Filter,
    ) -> Result<(), String> {
        let got = store.get(path).await.map_err(|e| format!("reading {path}: {}", error_chain(&e)))?;
        let metadata: Vec<(String, String)> = got
            .attributes
            .iter()
            .filter_map(|(k, v)| match k {
                Attribute::Metadata(name) => Some((name.to_ascii_lowercase(), v.to_string())),
                _ => None,
            })
            .collect();
        let metadata = Arc::new(metadata);
        let mut download = got.into_stream();
        let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let (request_tx, mut request_rx) = tokio::sync::mpsc::channel::<Request>(2);
        let max = self.config.batch_max_bytes;
        let reader = tokio::task::spawn_blocking(move || {
            let input = ChannelReader { rx: &mut chunk_rx, current: Bytes::new() };
            read_object(input, kind, format, compression, max, filter, &mut |r| request_tx.blocking_send(r).is_ok())
        });
        let pump = async move {
            while let Some(chunk) = download.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(error_chain(&e)));
                let stop = chunk.is_err();
                if chunk_tx.send(chunk).await.is_err() || stop {
                    break;
                }
            }
        };
        let exports = async {
            while let Some(request) = request_rx.recv().await {
                let items = request.items;
                self.totals.items += items;
                self.totals.bytes += request.bytes.len() as u64;
                let payload = Payload {
                    parts: vec![Bytes::from(request.bytes)],
                    metadata: Arc::clone(&metadata),
                    arrived_ms: None,
                };
                let deadline = Instant::now() + REPLAY_RETRY_BUDGET;
                match exporter.export(payload, items, Some(deadline)).await {
                    Ok(partial) => {
                        let rejected = u64::try_from(partial.rejected).unwrap_or(0).min(items);
                        self.totals.acknowledged += items - rejected;
                        self.totals.failed += rejected;
                        if rejected > 0 {
                            self.totals.last_error = Some(format!("partial success: {}", partial.message));
                        }
                    }
                    Err(e) => {
                        self.totals.failed += items;
                        self.totals.last_error = Some(e.detail());
                    }
                }
            }
        };
        let ((), ()) = tokio::join!(pump, exports);
        match reader.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("{path}: {e}")),
            Err(e) => Err(format!("{path}: the reader failed: {e}")),
        }
    }
}

/// A blocking `Read` over the download's chunks.
struct ChannelReader<'a> {
    rx: &'a mut tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_times_signals_and_trace_ids() {
        use clap::Parser;
        let cli = ReplayCli::try_parse_from([
            "replay",
            "--from",
            "s3://b/p",
            "--start",
            "2026-12-06T21:30:00+02:00",
            "--trace-id",
            "0102030405060708090a0b0c0d0e0f10",
            "--signal",
            "Logs",
        ])
        .unwrap();
        assert_eq!(cli.start, humantime::parse_rfc3339("2026-12-06T19:30:00Z").unwrap());
        assert_eq!(cli.trace_id.unwrap()[15], 0x10);
        assert_eq!(cli.signal, Some(SignalKind::Logs));
        assert_eq!(cli.backends, ["debug"]);
        for bad in [
            ["--start", "yesterday"],
            ["--trace-id", "xyz"],
            ["--trace-id", "00000000000000000000000000000000"],
            ["--signal", "spans"],
        ] {
            let mut args = vec!["replay", "--from", "s3://b/p", "--start", "2026-12-06T00:00:00Z"];
            args.extend(bad);
            assert!(ReplayCli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
