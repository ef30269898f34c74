//! Issue 21: log files tailed into OTLP logs, against real writers and rotators.
//! - in process: the record's fields for each parser and encoding (JSON, `TIME LEVEL message` regex, a Java stack
//!   trace as multiline, UTF-16, invalid UTF-8, a 2 MiB line, a symlinked file);
//! - the binary: Python's `RotatingFileHandler` (rename + create) at a few thousand lines a second; SIGKILL rounds
//!   while lines are written and files rotate, restarted on the same state; a backend down then up, direct and
//!   queued; SIGTERM saves positions (nothing twice); Debian's `logrotate` with copytruncate and with create
//!   (`#[ignore]`: `.ci/run` installs logrotate and runs it); two named inputs of the configuration file; a second
//!   bridge on the same positions refused.
//!
//! Every figure (lines sent, received, lost, duplicated, truncation counted) is printed; `-- --nocapture` shows it.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::process::BridgeProcess;
use crate::common::{config_for, eventually, get, run_binary, sum_metric, Bridge, MockBackend};
use otlp_bridge::proto::common::v1::any_value::Value;
use otlp_bridge::proto::logs::v1::LogRecord;
use otlp_bridge::{FileEncoding, FileInputConfig, FileParser, StartAt};

fn records(backend: &MockBackend) -> Vec<LogRecord> {
    backend
        .logs()
        .into_iter()
        .flat_map(|r| r.resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

fn body(r: &LogRecord) -> String {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn attr(r: &LogRecord, key: &str) -> Option<String> {
    r.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    })
}

/// Waits (bounded by `limit`) until `done` holds for the backend's records; fails with how many there were.
async fn wait_records(backend: &MockBackend, limit: Duration, what: &str, done: impl Fn(&[LogRecord]) -> bool) {
    eventually(what, limit, || {
        let got = records(backend);
        let result = if done(&got) { Ok(()) } else { Err(format!("{} records arrived", got.len())) };
        async move { result }
    })
    .await
}

fn input(name: &str, dir: &Path, include: &str) -> FileInputConfig {
    FileInputConfig {
        name: name.into(),
        include: vec![dir.join(include).display().to_string()],
        exclude: vec![],
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

#[tokio::test]
async fn each_parser_and_encoding_makes_the_records_8_5_describes() {
    let backend = MockBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    for sub in ["plain", "target", "utf16", "java", "regex"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    // plain: a symlinked file, a 2 MiB line, invalid UTF-8.
    let two_mib = "y".repeat(2 << 20);
    std::fs::write(d.join("target/real.log"), format!("{two_mib}\nbad \u{FF}\n").replace('\u{FF}', "\u{1}")).unwrap();
    let mut bytes = std::fs::read(d.join("target/real.log")).unwrap();
    let at = bytes.iter().position(|&b| b == 1).unwrap();
    bytes[at] = 0xFF;
    std::fs::write(d.join("target/real.log"), bytes).unwrap();
    std::os::unix::fs::symlink(d.join("target/real.log"), d.join("plain/app.log")).unwrap();
    // UTF-16LE with a byte-order mark and CRLF.
    let utf16: Vec<u8> = "\u{FEFF}grüße aus UTF-16\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(d.join("utf16/app.log"), utf16).unwrap();
    // A Java stack trace between two ordinary lines.
    let java = "2024-05-01 12:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.Service.handle(Service.java:42)\n\tat com.example.Main.main(Main.java:7)\nCaused by: java.io.IOException: disk\n\t... 2 more\n2024-05-01 12:00:01 INFO next\n";
    std::fs::write(d.join("java/app.log"), java).unwrap();
    // TIME LEVEL message.
    std::fs::write(d.join("regex/app.log"), "2024-05-01 12:00:00,250 WARN cache miss ratio high\nnot matching\n")
        .unwrap();

    let mut config = config_for(&[&backend]);
    let mut plain = input("plain", &d, "plain/*.log");
    plain.max_line_bytes = 1 << 20;
    let mut utf16 = input("utf16", &d, "utf16/*.log");
    utf16.encoding = FileEncoding::Utf16Le;
    let mut javac = input("java", &d, "java/*.log");
    javac.multiline_start = Some(regex::Regex::new(r"^\d{4}-\d{2}-\d{2} ").unwrap());
    let mut re = input("regex", &d, "regex/*.log");
    re.parser = FileParser::Regex;
    re.regex = Some(regex::Regex::new(r"^(?P<timestamp>\S+ \S+) (?P<severity>[A-Z]+) (?P<body>.*)$").unwrap());
    re.time_format = Some("%Y-%m-%d %H:%M:%S,%3f".into());
    config.files = vec![plain, utf16, javac, re];
    let bridge = Bridge::start(config).await;
    // 2 MiB in 1 MiB pieces: 2 (+ nothing left), invalid UTF-8 1, UTF-16 1, Java 2, regex 2.
    wait_records(&backend, Duration::from_secs(30), "every line", |r| r.len() >= 8).await;
    let got = records(&backend);
    let by_path = |p: &str| -> Vec<&LogRecord> {
        got.iter().filter(|r| attr(r, "log.file.path").as_deref() == Some(&*d.join(p).display().to_string())).collect()
    };

    let plain = by_path("plain/app.log");
    assert_eq!(plain.len(), 3, "2 MiB in two 1 MiB pieces, and the invalid UTF-8 line");
    assert_eq!(format!("{}{}", body(plain[0]), body(plain[1])), two_mib, "every byte of the long line, in order");
    assert_eq!(body(plain[2]), "bad \u{FFFD}", "invalid bytes become U+FFFD, the line is kept");
    assert_eq!(attr(plain[0], "log.file.name").as_deref(), Some("app.log"));
    assert_eq!(attr(plain[0], "log.file.path_resolved"), Some(d.join("target/real.log").display().to_string()));
    assert!(plain[0].observed_time_unix_nano > 0);

    let utf16 = by_path("utf16/app.log");
    assert_eq!(utf16.iter().map(|r| body(r)).collect::<Vec<_>>(), ["grüße aus UTF-16"]);
    assert_eq!(attr(utf16[0], "log.file.path_resolved"), None, "not a symlink");

    let java = by_path("java/app.log");
    wait_records(&backend, Duration::from_secs(10), "the last multiline record", |r| r.len() >= 8).await;
    let bodies: Vec<String> = java.iter().map(|r| body(r)).collect();
    assert_eq!(bodies[0], java_first_record(), "the stack trace is one record");
    let regex = by_path("regex/app.log");
    assert_eq!(body(regex[0]), "cache miss ratio high");
    assert_eq!((regex[0].severity_text.as_str(), regex[0].severity_number), ("WARN", 13));
    assert_eq!(regex[0].time_unix_nano, 1_714_564_800_250_000_000);
    assert_eq!(body(regex[1]), "not matching", "kept whole, counted");

    let metrics = bridge.metrics().await;
    assert_eq!(sum_metric(&metrics, "otlp_bridge_file_long_lines_total", &["input=\"plain\""]), 1.0);
    assert_eq!(sum_metric(&metrics, "otlp_bridge_file_parse_failures_total", &["input=\"regex\""]), 1.0);
    assert_eq!(sum_metric(&metrics, "otlp_bridge_files_watched", &["input=\"plain\""]), 1.0);
    assert!(sum_metric(&metrics, "otelcol_receiver_accepted_log_records_total", &["transport=\"file\""]) >= 8.0);
    bridge.shutdown().await;
}

fn java_first_record() -> &'static str {
    "2024-05-01 12:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.Service.handle(Service.java:42)\n\tat com.example.Main.main(Main.java:7)\nCaused by: java.io.IOException: disk\n\t... 2 more"
}

// ---------------------------------------------------------------- the binary against real writers

fn writer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/files_writer.py")
}

/// Python's logging writing `count` numbered lines (from `start`) at `rate` lines/s, rotating at `max_bytes`.
fn python_writer(path: &Path, count: u64, rate: u64, max_bytes: u64, format: &str, start: u64) -> Child {
    Command::new("python3")
        .arg(writer_script())
        .args([path.display().to_string(), count.to_string(), rate.to_string(), max_bytes.to_string()])
        .args([format.to_string(), start.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the writer")
}

fn wait_child(child: &mut Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "the writer failed: {status}");
}

/// The line numbers the backend received: (distinct, duplicates).
fn numbers(backend: &MockBackend) -> (HashMap<u64, u32>, u64) {
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for r in records(backend) {
        let text = body(&r);
        let Some(n) = text.strip_prefix("line ").and_then(|t| t.get(..8)).and_then(|t| t.parse().ok()) else {
            panic!("an unexpected record: {text:?}");
        };
        *seen.entry(n).or_default() += 1;
    }
    let duplicates = seen.values().map(|c| u64::from(c - 1)).sum();
    (seen, duplicates)
}

async fn wait_all(backend: &MockBackend, count: u64, limit: Duration) -> u64 {
    eventually(&format!("all {count} lines"), limit, || {
        let (seen, duplicates) = numbers(backend);
        let missing: Vec<u64> = (0..count).filter(|n| !seen.contains_key(n)).take(20).collect();
        let result = if missing.is_empty() {
            Ok(duplicates)
        } else {
            Err(format!("{} arrived; first missing: {missing:?}", seen.len()))
        };
        async move { result }
    })
    .await
}

fn file_args<'a>(backend: &'a str, include: &'a str, state: &'a str) -> Vec<&'a str> {
    vec!["--backend", backend, "--file-include", include, "--file-state-dir", state]
}

#[tokio::test]
async fn python_rotating_file_handler_json_lines_all_arrive_once_with_their_fields() {
    let backend = MockBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let include = format!("{}*", log.display());
    let state = dir.path().join("state").display().to_string();
    let url = backend.url();
    let mut args = file_args(&url, &include, &state);
    args.extend(["--file-parser", "json"]);
    let mut bridge = BridgeProcess::start(&args).await;
    let count = 12_000;
    let mut writer = python_writer(&log, count, 4000, 100_000, "json", 0);
    wait_child(&mut writer);
    let rotated = std::fs::read_dir(dir.path()).unwrap().count() - 2;
    let seen = eventually(&format!("all {count} lines"), Duration::from_secs(60), || {
        let mut seen = HashMap::new();
        for r in records(&backend) {
            *seen.entry(attr(&r, "seq").unwrap()).or_insert(0u32) += 1;
        }
        let result = if seen.len() == count as usize { Ok(seen) } else { Err(format!("{} arrived", seen.len())) };
        async move { result }
    })
    .await;
    let duplicates: u32 = seen.values().map(|c| c - 1).sum();
    println!("RotatingFileHandler (rename + create, {rotated} rotations, 4000 lines/s): sent {count}, received {}, lost 0, duplicated {duplicates}", seen.len());
    // Without a crash a line comes twice only when an export was retried (a slow backend answered after the
    // export timeout): at-least-once delivery, not the file input reading twice.
    let metrics = get(&format!("http://{}/metrics", bridge.admin)).await.text();
    let retries = sum_metric(&metrics, "otlp_bridge_export_retries_total", &[]);
    assert!(duplicates == 0 || retries > 0.0, "{duplicates} duplicates without a retried export");
    let one = records(&backend).into_iter().find(|r| attr(r, "seq").as_deref() == Some("7")).unwrap();
    assert_eq!(body(&one), format!("line 00000007 {}", "x".repeat(40)));
    assert_eq!((one.severity_text.as_str(), one.severity_number), ("INFO", 9));
    assert_eq!(one.trace_id, [vec![0; 15], vec![8]].concat());
    assert_eq!(one.span_id, [vec![0; 7], vec![8]].concat());
    assert!(one.time_unix_nano > 1_700_000_000_000_000_000, "epoch seconds with a fraction");
    assert_eq!(attr(&one, "logger").as_deref(), Some("writer"));
    // SIGTERM: positions of everything acknowledged are saved; a restart sends nothing again.
    let before = records(&backend).len();
    assert!(bridge.terminate(Duration::from_secs(20)).await.success());
    bridge.respawn();
    bridge.wait_healthy(Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // nothing to wait for: the claim is that nothing comes
    assert_eq!(records(&backend).len(), before, "after SIGTERM nothing comes twice");
}

/// `rounds` SIGKILLs at random moments while the writer writes and rotates; restarted on the same state each time.
async fn crash_rounds(rounds: u32, count: u64) {
    let backend = MockBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let include = format!("{}*", log.display());
    let state = dir.path().join("state").display().to_string();
    let url = backend.url();
    let mut bridge = BridgeProcess::start(&file_args(&url, &include, &state)).await;
    let rate = 3000;
    let mut writer = python_writer(&log, count, rate, 60_000, "plain", 0);
    let writing = Duration::from_millis(count * 1000 / rate);
    let per_round = writing / rounds.max(1);
    for _ in 0..rounds {
        tokio::time::sleep(per_round.mul_f64(0.3 + fastrand::f64() * 0.7)).await;
        bridge.kill();
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..300))).await;
        bridge.respawn();
        bridge.wait_healthy(Duration::from_secs(30)).await.unwrap();
    }
    wait_child(&mut writer);
    let duplicates = wait_all(&backend, count, Duration::from_secs(120)).await;
    let received = records(&backend).len();
    let metrics = get(&format!("http://{}/metrics", bridge.admin)).await.text();
    let truncated = sum_metric(&metrics, "otlp_bridge_file_truncated_bytes_total", &[]);
    println!("crash rounds: {rounds} SIGKILLs while writing {rate} lines/s and rotating every ~1000 lines: sent {count}, received {received}, lost 0, duplicated {duplicates}, truncated bytes counted {truncated}");
}

#[tokio::test]
async fn sigkill_rounds_while_writing_and_rotating_lose_no_line() {
    crash_rounds(3, 9000).await;
}

/// The issue's 20 rounds (`.ci/run` runs it against the release binary).
#[tokio::test]
#[ignore]
async fn twenty_sigkill_rounds_while_writing_and_rotating_lose_no_line() {
    crash_rounds(20, 60_000).await;
}

/// Backend down while lines are written, then up: everything arrives, in `mode` (direct or queued).
async fn backend_down_then_up(queued: bool) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let include = format!("{}*", log.display());
    let state = dir.path().join("state").display().to_string();
    let queue = dir.path().join("queue").display().to_string();
    let url = format!("http://{addr}");
    let mut args = file_args(&url, &include, &state);
    if queued {
        args.extend(["--queue-dir", &queue]);
    }
    let bridge = BridgeProcess::start(&args).await;
    let count = 5000;
    let mut writer = python_writer(&log, count, 2500, 50_000, "plain", 0);
    wait_child(&mut writer);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = get(&format!("http://{}/metrics", bridge.admin)).await.text();
    let lag = sum_metric(&metrics, "otlp_bridge_file_lag_bytes", &[]);
    let refused = sum_metric(&metrics, "otelcol_receiver_refused_log_records_total", &["transport=\"file\""]);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let backend = MockBackend::start_on(listener).await;
    let duplicates = wait_all(&backend, count, Duration::from_secs(90)).await;
    let mode = if queued { "queued" } else { "direct" };
    println!("backend down then up ({mode}): sent {count}, received {}, lost 0, duplicated {duplicates}; while down: lag {lag} bytes, refused {refused} records (retried)", records(&backend).len());
    if !queued {
        assert!(lag > 0.0, "direct mode: the lines wait in the file, not in memory");
    }
    drop(bridge);
}

#[tokio::test]
async fn a_backend_down_then_up_loses_nothing_in_direct_mode() {
    backend_down_then_up(false).await;
}

#[tokio::test]
async fn a_backend_down_then_up_loses_nothing_in_queued_mode() {
    backend_down_then_up(true).await;
}

#[tokio::test]
async fn a_missing_state_dir_without_a_queue_is_a_start_up_error_naming_it() {
    let out = run_binary(&["--file-include", "/nonexistent/*.log"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--file-state-dir") && err.contains("OTLP_BRIDGE_FILE_STATE_DIR"), "{err}");
}

#[tokio::test]
async fn an_empty_glob_is_ready_and_warns_and_a_file_appearing_later_is_read_from_its_start() {
    let backend = MockBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let include = format!("{}/later/*.log", dir.path().display());
    let state = dir.path().join("state").display().to_string();
    let url = backend.url();
    let bridge = BridgeProcess::start(&file_args(&url, &include, &state)).await;
    bridge.until("no file matches the include globs yet").await;
    let ready = get(&format!("http://{}/ready", bridge.admin)).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    std::fs::create_dir(dir.path().join("later")).unwrap();
    std::fs::write(dir.path().join("later/app.log"), "line 00000000 first\nline 00000001 second\n").unwrap();
    wait_all(&backend, 2, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn two_named_inputs_of_the_config_file_tail_two_applications_with_their_own_parsers() {
    let backend = MockBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("api")).unwrap();
    std::fs::create_dir_all(d.join("web")).unwrap();
    std::fs::write(d.join("api/app.log"), "{\"msg\":\"api up\",\"level\":\"warn\",\"port\":8080}\n").unwrap();
    std::fs::write(d.join("web/access.log"), "2024-05-01T12:00:00Z ERROR upstream timed out\n").unwrap();
    let config = d.join("bridge.yaml");
    std::fs::write(
        &config,
        format!(
            "backend: {url}\nfile_state_dir: {state}\ninputs:\n  api:\n    type: file\n    include: [{api}]\n    parser: json\n  web:\n    type: file\n    include: {web}\n    parser: regex\n    regex: '^(?P<timestamp>\\S+) (?P<severity>[A-Z]+) (?P<body>.*)$'\n",
            url = backend.url(),
            state = d.join("state").display(),
            api = d.join("api/*.log").display(),
            web = d.join("web/*.log").display(),
        ),
    )
    .unwrap();
    let config_path = config.display().to_string();
    let bridge = BridgeProcess::start(&["--config", &config_path]).await;
    wait_records(&backend, Duration::from_secs(20), "a record from each input", |r| r.len() >= 2).await;
    let got = records(&backend);
    let api = got.iter().find(|r| body(r) == "api up").expect("the json input's record");
    assert_eq!((api.severity_number, api.severity_text.as_str()), (13, "warn"), "json: level");
    assert_eq!(attr(api, "port").as_deref(), Some("8080"), "json: other fields are attributes");
    let web = got.iter().find(|r| body(r) == "upstream timed out").expect("the regex input's record");
    assert_eq!(web.severity_number, 17, "regex: severity group");
    assert_eq!(web.time_unix_nano, 1_714_564_800_000_000_000, "regex: timestamp group");
    // Each input has its own positions file and metrics label.
    for name in ["api", "web"] {
        assert!(d.join(format!("state/{name}.positions.json")).exists(), "{name}'s positions");
    }
    let metrics = get(&format!("http://{}/metrics", bridge.admin)).await.text();
    for name in ["api", "web"] {
        let records = sum_metric(&metrics, "otlp_bridge_file_read_records_total", &[&format!("input=\"{name}\"")]);
        assert_eq!(records, 1.0, "input={name}: {metrics}");
    }
}

#[tokio::test]
async fn a_file_section_with_an_unknown_key_or_no_include_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.yaml");
    let path = config.display().to_string();
    let state = dir.path().join("state").display().to_string();
    std::fs::write(
        &config,
        format!("file_state_dir: {state}\ninputs:\n  api:\n    type: file\n    include: /x/*.log\n    parsr: json\n"),
    )
    .unwrap();
    let out = run_binary(&["--config", &path], &[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("inputs.api.parsr") && err.contains("line 6") && err.contains("include"), "{err}");
    std::fs::write(&config, format!("file_state_dir: {state}\ninputs:\n  api:\n    type: file\n    parser: json\n"))
        .unwrap();
    let out = run_binary(&["--config", &path], &[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("inputs.api.include") && err.contains("missing"), "{err}");
}

#[tokio::test]
async fn a_second_bridge_on_the_same_state_dir_refuses_to_start_naming_the_dir() {
    let backend = MockBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let include = format!("{}/*.log", dir.path().display());
    let state = dir.path().join("state").display().to_string();
    let url = backend.url();
    let _first = BridgeProcess::start(&file_args(&url, &include, &state)).await;
    let mut args = file_args(&url, &include, &state);
    args.extend(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
    let out = run_binary(&args, &[("RUST_LOG", "info")]).await;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&state) && text.contains("in use by another process"), "{text}");
}

// ---------------------------------------------------------------- Debian's logrotate

/// logrotate with `copytruncate` and with `create`, forced every ~300 ms while Python appends 20 lines every 10 ms
/// (reopening the file for each, O_APPEND, so after a `create` rotation it writes to the new file).
///
/// Lines still held by a file at the end (the live one or a copy) must all have arrived, few twice, and the
/// truncation counter must never exceed what was truly lost. Lines found nowhere were written between logrotate's
/// copy and its truncation (it fsyncs the copy in between): gone before anyone could read them; the bridge must
/// count them (it sees the file's size grow, woken by inotify) and the figures print any it could not.
/// `#[ignore]`: it needs Debian's logrotate; `.ci/run` installs it and runs this against the fast binary.
#[tokio::test]
#[ignore = "needs Debian's logrotate: .ci/run installs it and runs this (docs/files.md)"]
async fn logrotate_copytruncate_and_create_deliver_what_a_file_holds_and_count_what_copytruncate_loses() {
    for mode in ["copytruncate", "create"] {
        let backend = MockBackend::start().await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "").unwrap();
        let conf = dir.path().join("logrotate.conf");
        std::fs::write(
            &conf,
            format!("{} {{\n  rotate 1000\n  {mode}\n  missingok\n  nocompress\n}}\n", log.display()),
        )
        .unwrap();
        let include = format!("{}*", log.display());
        let state = dir.path().join("state").display().to_string();
        let url = backend.url();
        let bridge = BridgeProcess::start(&file_args(&url, &include, &state)).await;
        let count = 6000u64;
        // Reopens the file for every 20 lines (O_APPEND), so after a `create` rotation it writes to the new file.
        let script = format!(
            "import time\nfor i in range({count}):\n    with open({:?}, 'a') as f:\n        f.write('line %08d %s\\n' % (i, 'x' * 40))\n    if i % 20 == 19: time.sleep(0.01)\n",
            log.display().to_string()
        );
        let mut writer = Command::new("python3").args(["-c", &script]).spawn().unwrap();
        let status_file = dir.path().join("status");
        let mut rotations = 0;
        while writer.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let out = Command::new("logrotate")
                .args(["-f", "-s", &status_file.display().to_string(), &conf.display().to_string()])
                .output()
                .expect("logrotate is installed (apt-get install logrotate)");
            assert!(out.status.success(), "logrotate: {}", String::from_utf8_lossy(&out.stderr));
            rotations += 1;
        }
        wait_child(&mut writer);
        // Until nothing is behind (lag 0) and every line arrived, or no new one came for 2 s.
        let metrics_url = format!("http://{}/metrics", bridge.admin);
        let last = std::cell::Cell::new((0usize, tokio::time::Instant::now()));
        let what = format!("{mode}: nothing left to read, and every line arrived or none came for 2 s");
        let (seen, duplicates, truncated) = eventually(&what, Duration::from_secs(60), || async {
            let (seen, duplicates) = numbers(&backend);
            let metrics = get(&metrics_url).await.text();
            let truncated = sum_metric(&metrics, "otlp_bridge_file_truncated_bytes_total", &[]);
            let lag = sum_metric(&metrics, "otlp_bridge_file_lag_bytes", &[]);
            if seen.len() != last.get().0 || lag > 0.0 {
                last.set((seen.len(), tokio::time::Instant::now()));
            }
            let quiet = last.get().1.elapsed() > Duration::from_secs(2);
            if lag == 0.0 && (seen.len() as u64 == count || quiet) {
                Ok((seen, duplicates, truncated))
            } else {
                Err(format!("lag {lag} bytes, {} of {count} lines arrived", seen.len()))
            }
        })
        .await;
        // What is still on disk (the live file and every copy) could be read; what is nowhere was lost by
        // copytruncate itself: written after logrotate copied the file and before it truncated it (it fsyncs the
        // copy in between).
        let mut on_disk = std::collections::HashSet::new();
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("app.log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                on_disk.extend(text.lines().filter_map(|l| l.get(5..13)?.parse::<u64>().ok()));
            }
        }
        let lost: Vec<u64> = (0..count).filter(|n| !seen.contains_key(n)).collect();
        let dropped: Vec<u64> = lost.iter().copied().filter(|n| on_disk.contains(n)).collect();
        let nowhere = lost.len() - dropped.len();
        let line = 55.0;
        let uncounted = ((nowhere as f64) * line - truncated).max(0.0) / line;
        println!(
            "logrotate {mode} ({rotations} rotations): sent {count}, received {}, lost {} (found nowhere on disk: \
             {nowhere}; still on disk: {}), duplicated {duplicates}, truncated bytes counted {truncated} (lines: {}), \
             lost uncounted (lines): {uncounted}",
            seen.len(),
            lost.len(),
            dropped.len(),
            truncated / line
        );
        // The bridge loses nothing that a file still holds: the rest of a truncated file is read from its copy.
        assert!(dropped.is_empty(), "{mode}: lines still on disk never arrived: {dropped:?}");
        // It never reports a loss that did not happen (it may miss one it never saw: see docs/files.md).
        assert!(
            truncated <= (nowhere as f64) * line + line * 0.5,
            "{mode}: {truncated} bytes counted, {nowhere} lines lost"
        );
        assert!(duplicates * 50 <= count, "{mode}: {duplicates} duplicates");
        // And it counts what it lost: it watches the file's size on every change inotify reports, even while a
        // batch is out. A loaded machine may keep it off the CPU for a whole copy-to-truncation window: one burst
        // (20 lines) is tolerated; before that watch it missed 7 to 14 bursts a run.
        assert!(uncounted <= 20.0, "{mode}: {uncounted} lost lines not counted");
        let lost = lost.len();
        if mode == "create" {
            assert_eq!(lost, 0);
        }
    }
}
