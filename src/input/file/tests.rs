//! The input's loop on real files against a sink that records what it takes and can refuse: positions only after
//! the answer, refusals, rotation by rename and by copytruncate, restarts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::common::v1::any_value::Value;
use prost::Message;
use tokio::sync::watch;

use super::*;
use crate::config::{FileEncoding, StartAt};
use crate::limit::MemoryBudget;
use crate::queue::QueueError;
use crate::signal::PartialSuccess;
use crate::sink::{Sink, SinkError, SinkFuture, Submission};

/// Takes every submission (decoding it) unless told to refuse, as a full queue does.
#[derive(Default)]
struct Recording {
    bodies: Mutex<Vec<String>>,
    refuse: AtomicBool,
}

impl Sink for Recording {
    fn submit(&self, submission: Submission) -> SinkFuture<'_> {
        Box::pin(async move {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(SinkError::Queue(QueueError::Full { used: 1, max: 1 }));
            }
            for (chunk, items) in submission.chunks {
                let request = ExportLogsServiceRequest::decode(chunk)
                    .map_err(|e| SinkError::Queue(QueueError::Io(e.to_string())))?;
                let records: Vec<_> =
                    request.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records).collect();
                assert_eq!(records.len() as u64, items);
                let mut bodies = self.bodies.lock().unwrap();
                for r in records {
                    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                        Some(Value::StringValue(s)) => bodies.push(s.clone()),
                        other => bodies.push(format!("{other:?}")),
                    }
                }
            }
            Ok(PartialSuccess::default())
        })
    }
}

struct Harness {
    dir: tempfile::TempDir,
    sink: Arc<Recording>,
    telemetry: Arc<Telemetry>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn config(dir: &Path, include: &str) -> FileInputConfig {
    FileInputConfig {
        name: "app".into(),
        include: vec![dir.join(include).display().to_string()],
        exclude: Vec::new(),
        parser: FileParser::Plain,
        regex: None,
        multiline_start: None,
        start_at: StartAt::Beginning,
        encoding: FileEncoding::Utf8,
        max_line_bytes: 1 << 20,
        time_format: None,
        state_dir: dir.join("state"),
    }
}

impl Harness {
    fn new() -> Harness {
        let (stop, _) = watch::channel(false);
        Harness {
            dir: tempfile::tempdir().unwrap(),
            sink: Arc::default(),
            telemetry: Telemetry::new(),
            stop,
            task: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&mut self, config: FileInputConfig) {
        let input = FileInput::open(&config, 20 << 20, 4_000_000, &self.telemetry).unwrap();
        let (stop, stopped) = watch::channel(false);
        self.stop = stop;
        let sink: Arc<dyn Sink> = self.sink.clone();
        let ingest = Arc::new(Ingest::new(sink, MemoryBudget::new(20 << 20), Arc::clone(&self.telemetry), 4_000_000));
        let mut stopped = stopped;
        let stopping = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        self.task = Some(tokio::spawn(input.run(ingest, stopping, Duration::from_secs(5))));
    }

    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.sink.bodies.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` records arrived; fails with what did.
    async fn wait_for(&self, n: usize) {
        for _ in 0..500 {
            if self.bodies().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("waited for {n} records, got {:?}", self.bodies());
    }

    /// Waits (bounded) until `done`.
    async fn wait_until(&self, done: impl Fn(&Harness) -> bool) {
        for _ in 0..500 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("condition not reached; records {:?}", self.bodies());
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self.telemetry.render();
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains("input=\"app\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn saved_offsets(&self) -> Vec<u64> {
        let positions = Positions::open(&self.path("state"), "app").unwrap();
        positions.load().unwrap().unwrap_or_default().iter().map(|s| s.identity.offset).collect()
    }
}

fn append(path: &Path, lines: &[&str]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn lines_are_read_once_and_a_restart_resumes_after_the_acknowledged_ones() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &["one", "two", "three"]);
    h.start(config(h.dir.path(), "*.log"));
    h.wait_for(3).await;
    h.stop().await;
    assert_eq!(h.saved_offsets(), vec![14]);
    append(&log, &["four"]);
    h.start(config(h.dir.path(), "*.log"));
    h.wait_for(4).await;
    h.stop().await;
    assert_eq!(h.bodies(), ["one", "two", "three", "four"]);
    assert_eq!(h.metric("otlp_bridge_file_read_bytes_total"), 14.0 + 5.0, "the second run read only the new line");
}

#[tokio::test]
async fn a_refusing_sink_pauses_reading_saves_nothing_and_loses_nothing() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    h.sink.refuse.store(true, Ordering::SeqCst);
    append(&log, &refs(&numbered("a", 100)));
    h.start(config(h.dir.path(), "*.log"));
    for _ in 0..500 {
        if h.telemetry
            .render()
            .contains("otelcol_receiver_refused_log_records_total{transport=\"file\",signal=\"logs\"} 2")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.saved_offsets(), vec![0], "nothing acknowledged, nothing saved");
    append(&log, &refs(&numbered("b", 100)));
    h.sink.refuse.store(false, Ordering::SeqCst);
    h.wait_for(200).await;
    h.stop().await;
    let want: Vec<String> = numbered("a", 100).into_iter().chain(numbered("b", 100)).collect();
    assert_eq!(h.bodies(), want, "every line once, in file order");
    assert_eq!(h.saved_offsets(), vec![std::fs::metadata(&log).unwrap().len()]);
}

#[tokio::test]
async fn a_stop_while_the_sink_refuses_saves_nothing_and_the_next_start_sends_all() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &["first"]);
    h.start(config(h.dir.path(), "*.log"));
    h.wait_for(1).await;
    h.sink.refuse.store(true, Ordering::SeqCst);
    append(&log, &["second"]);
    for _ in 0..500 {
        if h.metric("otlp_bridge_file_read_bytes_total") >= 13.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
    assert_eq!(h.saved_offsets(), vec![6], "only the acknowledged line");
    h.sink.refuse.store(false, Ordering::SeqCst);
    h.start(config(h.dir.path(), "*.log"));
    h.wait_for(2).await;
    h.stop().await;
    assert_eq!(h.bodies(), ["first", "second"]);
}

#[tokio::test]
async fn rename_and_create_rotation_reads_the_old_file_to_its_end() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &["old 1"]);
    h.start(config(h.dir.path(), "app.log"));
    h.wait_for(1).await;
    append(&log, &["old 2"]);
    std::fs::rename(&log, h.path("app.log.1")).unwrap();
    append(&h.path("app.log.1"), &["old 3 (written before the application reopened)"]);
    append(&log, &["new 1"]);
    h.wait_for(4).await;
    h.stop().await;
    let mut got = h.bodies();
    got.sort();
    let want = ["new 1", "old 1", "old 2", "old 3 (written before the application reopened)"];
    assert_eq!(got, want, "every line once (the two files are read side by side)");
}

#[tokio::test]
async fn copytruncate_reads_the_unread_rest_from_the_copy_and_never_the_copy_from_its_start() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &refs(&numbered("a", 10)));
    h.start(config(h.dir.path(), "app.log*"));
    h.wait_for(10).await;
    // The sink refuses: the next batch is held, and lines after it stay unread.
    h.sink.refuse.store(true, Ordering::SeqCst);
    append(&log, &["b0"]);
    for _ in 0..500 {
        if h.metric("otlp_bridge_file_read_bytes_total") >= 33.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    append(&log, &refs(&numbered("c", 5)));
    std::fs::copy(&log, h.path("app.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
    append(&log, &["d0"]);
    h.sink.refuse.store(false, Ordering::SeqCst);
    h.wait_for(17).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.stop().await;
    let got = h.bodies();
    let mut want: Vec<String> = numbered("a", 10);
    want.push("b0".into());
    want.extend(numbered("c", 5));
    want.push("d0".into());
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want, "every line exactly once");
    assert_eq!(h.metric("otlp_bridge_file_truncated_bytes_total"), 0.0);
}

#[tokio::test]
async fn a_truncation_hidden_by_a_same_head_file_grown_back_past_the_position_is_noticed_by_the_next_read() {
    // Generations that begin with the same kilobyte (a header: contrib#43693), and the file refilled past the
    // position before the next scan: only the bytes before the position tell the generations apart.
    let mut h = Harness::new();
    let log = h.path("app.log");
    let header = "#".repeat(1100);
    append(&log, &[&header]);
    append(&log, &refs(&numbered("a", 10)));
    h.start(config(h.dir.path(), "app.log*"));
    h.wait_for(11).await;
    append(&log, &refs(&numbered("c", 5)));
    std::fs::copy(&log, h.path("app.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
    append(&log, &[&header]);
    append(&log, &refs(&numbered("d", 60)));
    h.wait_for(11 + 5 + 61).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.stop().await;
    let mut got = h.bodies();
    got.sort();
    let mut want = [numbered("a", 10), numbered("c", 5), numbered("d", 60), vec![header.clone(), header]].concat();
    want.sort();
    assert_eq!(got, want, "every line exactly once: the copy's rest from the position, the new generation from 0");
    assert_eq!(h.metric("otlp_bridge_file_truncated_bytes_total"), 0.0);
}

#[tokio::test]
async fn a_copy_that_ends_before_the_position_read_is_not_read_again() {
    // logrotate copies, then truncates: a line written in between is read from the file but is in no copy.
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &refs(&numbered("a", 10)));
    h.start(config(h.dir.path(), "app.log*"));
    h.wait_for(10).await;
    std::fs::copy(&log, h.path("app.log.1")).unwrap();
    append(&log, &["e0 written between the copy and the truncation"]);
    h.wait_for(11).await;
    std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
    append(&log, &["f0"]);
    h.wait_for(12).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.stop().await;
    let mut want = numbered("a", 10);
    want.extend(["e0 written between the copy and the truncation".to_string(), "f0".to_string()]);
    assert_eq!(h.bodies(), want, "the copy holds nothing unread");
    assert_eq!(h.metric("otlp_bridge_file_truncated_bytes_total"), 0.0);
    assert_eq!(h.metric("otlp_bridge_file_lag_bytes"), 0.0, "the copy counts as read to its end");
}

#[tokio::test]
async fn copytruncate_without_a_copy_counts_what_was_lost() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &["a0"]);
    h.start(config(h.dir.path(), "app.log"));
    h.wait_for(1).await;
    h.sink.refuse.store(true, Ordering::SeqCst);
    append(&log, &["b0"]);
    for _ in 0..500 {
        if h.metric("otlp_bridge_file_read_bytes_total") >= 6.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Not read: the batch with b0 is in hand. The copy is not named by the glob.
    append(&log, &["lost1", "lost2"]);
    h.wait_until(|h| h.metric("otlp_bridge_file_lag_bytes") >= 15.0).await;
    std::fs::copy(&log, h.path("app.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
    append(&log, &["d0"]);
    h.sink.refuse.store(false, Ordering::SeqCst);
    h.wait_for(3).await;
    for _ in 0..500 {
        if h.metric("otlp_bridge_file_truncated_bytes_total") > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
    assert_eq!(h.bodies(), ["a0", "b0", "d0"]);
    assert_eq!(h.metric("otlp_bridge_file_truncated_bytes_total"), 12.0, "lost1\\n lost2\\n");
}

#[tokio::test]
async fn start_at_end_skips_what_was_there_at_the_first_start_only() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &["backlog"]);
    let mut c = config(h.dir.path(), "*.log");
    c.start_at = StartAt::End;
    h.start(c.clone());
    h.wait_until(|h| !h.saved_offsets().is_empty()).await;
    append(&log, &["new"]);
    h.wait_for(1).await;
    h.stop().await;
    // While the bridge is down a new file appears: it is read from its beginning at the next start.
    append(&h.path("other.log"), &["while down"]);
    h.start(c);
    h.wait_for(2).await;
    h.stop().await;
    assert_eq!(h.bodies(), ["new", "while down"]);
}

#[tokio::test]
async fn a_deleted_and_recreated_file_is_read_from_its_start_even_on_a_reused_inode() {
    let mut h = Harness::new();
    let log = h.path("app.log");
    append(&log, &["first generation, a long line"]);
    h.start(config(h.dir.path(), "*.log"));
    h.wait_for(1).await;
    h.stop().await;
    std::fs::remove_file(&log).unwrap();
    // Likely the same inode on most file systems: the saved position must not be trusted.
    append(&log, &["second", "generation"]);
    h.start(config(h.dir.path(), "*.log"));
    h.wait_for(3).await;
    h.stop().await;
    assert_eq!(h.bodies(), ["first generation, a long line", "second", "generation"]);
}

#[tokio::test]
async fn a_utf16_java_stack_trace_is_one_record() {
    let mut h = Harness::new();
    let text = "\u{FEFF}2024-01-01 E boom\r\n\tat a\r\n\tat b\r\n2024-01-01 I ok\r\n";
    std::fs::write(h.path("app.log"), text.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()).unwrap();
    let mut c = config(h.dir.path(), "*.log");
    c.encoding = FileEncoding::Utf16Le;
    c.multiline_start = Some(regex::Regex::new(r"^\d{4}-").unwrap());
    h.start(c);
    h.wait_for(2).await;
    h.stop().await;
    assert_eq!(
        h.bodies(),
        ["2024-01-01 E boom\n\tat a\n\tat b", "2024-01-01 I ok"],
        "the last one after the flush timeout"
    );
}

#[tokio::test]
async fn a_long_line_comes_in_pieces_counted_once() {
    let mut h = Harness::new();
    append(&h.path("app.log"), &[&"x".repeat(150), "short"]);
    let mut c = config(h.dir.path(), "*.log");
    c.max_line_bytes = 64;
    h.start(c);
    h.wait_for(4).await;
    h.stop().await;
    let got = h.bodies();
    assert_eq!(got.iter().map(String::len).collect::<Vec<_>>(), [64, 64, 22, 5]);
    assert_eq!(got[..3].concat(), "x".repeat(150));
    assert_eq!(h.metric("otlp_bridge_file_long_lines_total"), 1.0);
}
