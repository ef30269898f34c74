//! Recovery and deletion ordering of the queue, on real files.

use super::*;
use std::io::Write;

fn config(dir: &Path) -> QueueConfig {
    QueueConfig { dir: dir.to_path_buf(), max_bytes: 8 << 20, max_age: Duration::from_secs(60) }
}

fn backends(n: usize) -> Vec<QueueBackend> {
    (0..n).map(|i| QueueBackend { label: format!("b{i}"), signals: [true; SignalKind::COUNT] }).collect()
}

async fn append_n(appender: &Appender, n: u64) {
    for i in 0..n {
        appender.append(SignalKind::Traces, vec![(Bytes::from(vec![i as u8; 64]), 1)], &[]).await.unwrap();
    }
}

async fn open_close(dir: &Path, readers: usize, n: u64) -> Arc<Telemetry> {
    let telemetry = Telemetry::new();
    let (queue, appender) = Queue::open(&config(dir), &backends(readers), Arc::clone(&telemetry)).unwrap();
    append_n(&appender, n).await;
    drop(appender);
    queue.close().await;
    telemetry
}

fn metric(telemetry: &Telemetry, name: &str) -> f64 {
    telemetry
        .render()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    segment::list(&dir.join("segments")).unwrap()
}

#[tokio::test]
async fn data_without_a_cursor_is_replayed_from_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    open_close(dir.path(), 1, 7).await;
    let telemetry = Telemetry::new();
    let (queue, _appender) = Queue::open(&config(dir.path()), &backends(1), Arc::clone(&telemetry)).unwrap();
    assert_eq!(metric(&telemetry, "otlp_bridge_queue_replayed_records_total"), 7.0);
    assert_eq!(queue.shared.readers[0].backlog_items.load(Ordering::Relaxed), 7);
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_the_records_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    open_close(dir.path(), 1, 3).await;
    let (_, path) = segment_files(dir.path()).into_iter().find(|(_, p)| p.metadata().unwrap().len() > 0).unwrap();
    let clean_len = path.metadata().unwrap().len();
    // Half a record, as a crash during an append leaves it.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(
        &record::encode(&Record {
            kind: SignalKind::Logs,
            enqueued_ms: 1,
            items: 1,
            headers: Vec::new(),
            payload: Bytes::from(vec![1; 100]),
        })[..50],
    )
    .unwrap();
    let telemetry = Telemetry::new();
    let (_queue, _appender) = Queue::open(&config(dir.path()), &backends(1), Arc::clone(&telemetry)).unwrap();
    assert_eq!(path.metadata().unwrap().len(), clean_len, "cut back to the last whole record");
    assert_eq!(metric(&telemetry, "otlp_bridge_queue_replayed_records_total"), 3.0);
    assert_eq!(metric(&telemetry, "otlp_bridge_queue_quarantined_records_total"), 0.0);
}

#[tokio::test]
async fn a_flipped_bit_quarantines_its_segment_and_start_up_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    open_close(dir.path(), 1, 3).await;
    let (_, path) = segment_files(dir.path()).into_iter().find(|(_, p)| p.metadata().unwrap().len() > 0).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x10; // inside the first of three records
    std::fs::write(&path, &bytes).unwrap();
    let telemetry = Telemetry::new();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Arc::clone(&telemetry)).unwrap();
    assert!(!segment_files(dir.path()).iter().any(|(_, p)| p == &path), "moved out of the log");
    assert_eq!(std::fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1, "kept for inspection");
    assert_eq!(metric(&telemetry, "otlp_bridge_queue_quarantined_records_total"), 1.0);
    append_n(&appender, 1).await;
    assert!(queue.accepting().is_ok(), "and the queue works");
}

#[tokio::test]
async fn a_second_queue_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_queue, _appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    let second = Queue::open(&config(dir.path()), &backends(1), Telemetry::new());
    assert!(matches!(second, Err(OpenError::Locked(_))));
}

#[tokio::test]
async fn readers_collecting_at_once_free_a_segment_once() {
    // Each reader collects after storing its cursor, on the blocking pool: two may collect the same segment at
    // once. Subtracted twice, `used` wrapped and every append was refused as full (seen with an archive beside a
    // gRPC backend under load).
    let dir = tempfile::tempdir().unwrap();
    let (queue, _appender) = Queue::open(&config(dir.path()), &backends(2), Telemetry::new()).unwrap();
    let shared = &queue.shared;
    let active = shared.committed.borrow().segment;
    let past = Pos { segment: active + 1, offset: 0 };
    for reader in &shared.readers {
        *lock(&reader.durable) = past;
    }
    // The active segment stands in for a delivered one: the log's end moves past it (nothing is appended here).
    shared.publish(past);
    for round in 0..200u64 {
        let id = active;
        std::fs::write(shared.segments_dir.join(segment::file_name(id)), [0u8; 100]).unwrap();
        shared.segment_created(id);
        shared.grown(id, 100);
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    start.wait();
                    shared.collect_garbage();
                });
            }
        });
        let live: u64 = lock(&shared.segments).values().sum();
        assert_eq!(shared.used.load(Ordering::Acquire), live, "round {round}: used is the live segments' bytes");
    }
    assert!(queue.accepting().is_ok(), "{:?}", queue.accepting());
}

#[tokio::test]
async fn a_segment_is_deleted_only_once_every_durable_cursor_has_passed_it() {
    let dir = tempfile::tempdir().unwrap();
    open_close(dir.path(), 2, 4).await;
    let telemetry = Telemetry::new();
    let (queue, _appender) = Queue::open(&config(dir.path()), &backends(2), telemetry).unwrap();
    let full: Vec<u64> = segment_files(dir.path())
        .into_iter()
        .filter(|(_, p)| p.metadata().unwrap().len() > 0)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(full.len(), 1);
    let past = Pos { segment: full[0] + 1, offset: 0 };
    // One backend past it: the other still needs it.
    cursor::store(&queue.shared.readers[0].cursor_path, past).unwrap();
    *lock(&queue.shared.readers[0].durable) = past;
    queue.shared.collect_garbage();
    assert!(segment_files(dir.path()).iter().any(|(id, _)| *id == full[0]), "kept for the slower backend");
    // The other one has passed it in memory only: still kept until its cursor is durable.
    assert!(segment_files(dir.path()).iter().any(|(id, _)| *id == full[0]));
    cursor::store(&queue.shared.readers[1].cursor_path, past).unwrap();
    *lock(&queue.shared.readers[1].durable) = past;
    queue.shared.collect_garbage();
    assert!(!segment_files(dir.path()).iter().any(|(id, _)| *id == full[0]), "deleted once both are durable");
    assert!(
        segment_files(dir.path()).iter().any(|(id, _)| *id == queue.shared.committed.borrow().segment),
        "the active segment is never deleted"
    );
}

#[tokio::test]
async fn appends_beyond_the_limit_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = config(dir.path());
    small.max_bytes = 1 << 20;
    let (queue, appender) = Queue::open(&small, &backends(1), Telemetry::new()).unwrap();
    let big = Bytes::from(vec![0u8; 300 << 10]);
    let mut refused = None;
    for _ in 0..10 {
        if let Err(e) = appender.append(SignalKind::Logs, vec![(big.clone(), 1)], &[]).await {
            refused = Some(e);
            break;
        }
    }
    assert!(matches!(refused, Some(QueueError::Full { .. })), "{refused:?}");
    assert!(queue.shared.used.load(Ordering::Relaxed) <= 1 << 20);
    assert!(queue.accepting().is_err() || queue.shared.used.load(Ordering::Relaxed) < 1 << 20);
}

/// An exporter that takes everything and counts the items.
#[derive(Default)]
struct Counting(AtomicU64);

impl crate::export::Export for Counting {
    fn export(
        &self,
        _: crate::export::Payload,
        items: u64,
        _: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        self.0.fetch_add(items, Ordering::Relaxed);
        Box::pin(async { Ok(crate::signal::PartialSuccess::default()) })
    }
}

/// `--queue-max-age` against the queue's wall clock, moved by the test: data that was queued before a stop and is
/// older than the limit by the next start is dropped, counted by reason and never exported; data queued after the
/// start is delivered. (The end-to-end test used to wait out the age with a sleep across a restart.)
#[tokio::test]
async fn data_older_than_max_age_by_the_next_start_is_dropped_and_counted_never_exported() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let now = Arc::new(AtomicU64::new(1_700_000_000_000));
    let clock = {
        let now = Arc::clone(&now);
        WallClock::from_fn(move || now.load(Ordering::Relaxed))
    };
    let (queue, appender) = Queue::open_with_clock(&config, &backends(1), Telemetry::new(), clock.clone()).unwrap();
    append_n(&appender, 5).await;
    drop(appender);
    queue.close().await;
    drop(queue);

    // The next start comes a millisecond past the age of the data.
    now.fetch_add(config.max_age.as_millis() as u64 + 1, Ordering::Relaxed);
    let telemetry = Telemetry::new();
    let (queue, appender) = Queue::open_with_clock(&config, &backends(1), Arc::clone(&telemetry), clock).unwrap();
    append_n(&appender, 3).await;
    let exporter = Arc::new(Counting::default());
    let export: Arc<dyn crate::export::Export> = exporter.clone();
    let delivery = DeliveryConfig {
        limits: crate::batch::Limits { max_items: 100, max_bytes: 1 << 20, timeout: Duration::ZERO },
        concurrency: 1,
        max_age: config.max_age,
        hold_bytes: 1 << 20,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let readers = queue.start_readers(
        vec![(SignalKind::ALL.map(|_| Some(Arc::clone(&export))), None)],
        delivery,
        crate::limit::MemoryBudget::new(1 << 20),
        stopped,
    );
    let delivered = async {
        while exporter.0.load(Ordering::Relaxed) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), delivered).await.expect("the fresh data is delivered");
    let text = telemetry.render();
    let dropped = text
        .lines()
        .find(|l| {
            l.starts_with("otlp_bridge_queue_dropped_items_total")
                && l.contains(r#"reason="queue_max_age""#)
                && l.contains(r#"signal="traces""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(dropped, Some(5.0), "{text}");
    assert_eq!(exporter.0.load(Ordering::Relaxed), 3, "nothing too old was exported");
    drop(appender);
    let _ = stop.send(true);
    queue.close().await;
    for r in readers {
        r.await.unwrap();
    }
}

/// Records the items of every export it is handed.
struct Recorder {
    calls: std::sync::Mutex<Vec<(u64, tokio::time::Instant)>>,
}

impl crate::export::Export for Recorder {
    fn export(
        &self,
        _payload: crate::export::Payload,
        items: u64,
        _deadline: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        self.calls.lock().unwrap().push((items, tokio::time::Instant::now()));
        Box::pin(std::future::ready(Ok(crate::signal::PartialSuccess::default())))
    }
}

#[tokio::test]
async fn an_output_with_its_own_batching_waits_its_linger_even_when_the_reader_has_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    let recorder = Arc::new(Recorder { calls: std::sync::Mutex::new(Vec::new()) });
    let export: Arc<dyn crate::export::Export> = recorder.clone();
    let exporters: ReaderExport = [Some(export), None, None, None];
    let delivery = DeliveryConfig {
        limits: crate::batch::Limits { max_items: 8192, max_bytes: 1 << 20, timeout: Duration::from_millis(200) },
        concurrency: 2,
        max_age: Duration::from_secs(60),
        hold_bytes: 1 << 20,
    };
    let linger = Duration::from_millis(1500);
    let own = crate::export::BatchLimits { max_items: 1000, max_bytes: 1 << 20, linger, units: false };
    let (stop, stopped) = watch::channel(false);
    let started = tokio::time::Instant::now();
    let readers =
        queue.start_readers(vec![(exporters, Some(own))], delivery, crate::limit::MemoryBudget::new(64 << 20), stopped);
    append_n(&appender, 1).await;
    append_n(&appender, 2).await;
    // Eventually, within a generous bound: one batch of all three, not before the linger.
    let deadline = started + Duration::from_secs(30);
    while recorder.calls.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|(items, _)| *items).collect::<Vec<_>>(), [3], "one batch of all three");
    assert!(calls[0].1 - started >= linger, "sent after {:?}, before the linger", calls[0].1 - started);
    let _ = stop.send(true);
    for reader in readers {
        reader.await.unwrap();
    }
}

/// One export's metadata, items and time left until its deadline.
type SeenCall = (Vec<(String, String)>, u64, Option<Duration>);

/// Records each export's metadata, items, and the time left until the deadline it was given; answers with
/// `answer`.
struct Seen {
    calls: std::sync::Mutex<Vec<SeenCall>>,
    answer: fn() -> Result<crate::signal::PartialSuccess, crate::export::ExportError>,
}

impl Seen {
    fn new(answer: fn() -> Result<crate::signal::PartialSuccess, crate::export::ExportError>) -> Arc<Seen> {
        Arc::new(Seen { calls: std::sync::Mutex::new(Vec::new()), answer })
    }

    fn calls(&self) -> Vec<SeenCall> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        calls
    }
}

impl crate::export::Export for Seen {
    fn export(
        &self,
        payload: crate::export::Payload,
        items: u64,
        deadline: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        self.calls.lock().unwrap().push((payload.metadata.to_vec(), items, left));
        Box::pin(std::future::ready((self.answer)()))
    }
}

fn delivery(max_age: Duration) -> DeliveryConfig {
    DeliveryConfig {
        limits: crate::batch::Limits { max_items: 100, max_bytes: 1 << 20, timeout: Duration::from_millis(200) },
        concurrency: 4,
        max_age,
        hold_bytes: 1 << 20,
    }
}

fn tenant(t: &str) -> Vec<(String, String)> {
    vec![("x-scope-orgid".to_string(), t.to_string())]
}

#[tokio::test(start_paused = true)]
async fn a_reader_never_mixes_signals_or_forwarded_headers_in_one_export() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    let one = |n: u8| vec![(Bytes::from(vec![n; 32]), 1)];
    appender.append(SignalKind::Traces, one(1), &tenant("a")).await.unwrap();
    appender.append(SignalKind::Traces, one(2), &tenant("b")).await.unwrap();
    appender.append(SignalKind::Traces, one(3), &tenant("a")).await.unwrap();
    appender.append(SignalKind::Logs, one(4), &[]).await.unwrap();
    let (traces, logs) = (Seen::new(|| Ok(Default::default())), Seen::new(|| Ok(Default::default())));
    let export = |s: &Arc<Seen>| -> Option<Arc<dyn crate::export::Export>> { Some(s.clone()) };
    let exporters: ReaderExport = [export(&traces), None, export(&logs), None];
    let (stop, stopped) = watch::channel(false);
    let budget = crate::limit::MemoryBudget::new(64 << 20);
    let readers = queue.start_readers(vec![(exporters, None)], delivery(Duration::from_secs(60)), budget, stopped);
    while traces.calls().len() + logs.calls().len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let items = |s: &Seen| s.calls().into_iter().map(|(m, i, _)| (m, i)).collect::<Vec<_>>();
    assert_eq!(items(&traces), [(tenant("a"), 2), (tenant("b"), 1)], "one export per tenant, both of a's together");
    assert_eq!(items(&logs), [(vec![], 1)], "logs never share an export with traces");
    let _ = stop.send(true);
    for reader in readers {
        reader.await.unwrap();
    }
}

/// The retry budget of a queued batch ends when its oldest record reaches `--queue-max-age` by the queue's wall
/// clock (injected here): the export is told so, and what still fails then is dropped and counted.
#[tokio::test(start_paused = true)]
async fn a_batch_still_failing_when_its_oldest_record_reaches_max_age_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let now = Arc::new(AtomicU64::new(1_700_000_000_000));
    let clock = {
        let now = Arc::clone(&now);
        WallClock::from_fn(move || now.load(Ordering::Relaxed))
    };
    let telemetry = Telemetry::new();
    let (queue, appender) = Queue::open_with_clock(&config, &backends(1), Arc::clone(&telemetry), clock).unwrap();
    append_n(&appender, 2).await;
    // The reader starts when the data has 250 ms of its age left.
    now.fetch_add(config.max_age.as_millis() as u64 - 250, Ordering::Relaxed);
    let failing = Seen::new(|| Err(crate::export::ExportError::ShuttingDown));
    let export: Arc<dyn crate::export::Export> = failing.clone();
    let (stop, stopped) = watch::channel(false);
    let budget = crate::limit::MemoryBudget::new(64 << 20);
    let readers = queue.start_readers(
        vec![(SignalKind::ALL.map(|_| Some(Arc::clone(&export))), None)],
        delivery(config.max_age),
        budget,
        stopped,
    );
    let dropped = || {
        let text = telemetry.render();
        text.lines()
            .filter(|l| l.starts_with("otlp_bridge_queue_dropped_items_total{"))
            .filter(|l| l.contains(r#"reason="queue_max_age""#) && l.contains(r#"signal="traces""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    while dropped() < 2.0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(failing.calls(), [(vec![], 2, Some(Duration::from_millis(250)))], "one batch, told its budget");
    let _ = stop.send(true);
    for reader in readers {
        reader.await.unwrap();
    }
}

/// An output batching by its own limits (an archive object) at the reader's whole memory share: each batch fills
/// to the limit. The record that did not fit opens the next batch; while the full one is on its way out, the
/// reader used to count both against its share and seal the new one at once, so every object was followed by a
/// tiny one holding a single record (objects of half the size on average, twice as many PUTs).
#[tokio::test(start_paused = true)]
async fn a_batch_at_the_readers_share_is_not_followed_by_a_one_record_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    for i in 0..10u8 {
        appender.append(SignalKind::Traces, vec![(Bytes::from(vec![i; 300]), 1)], &[]).await.unwrap();
    }
    let recorder = Arc::new(Recorder { calls: std::sync::Mutex::new(Vec::new()) });
    let export: Arc<dyn crate::export::Export> = recorder.clone();
    let exporters: ReaderExport = [Some(export), None, None, None];
    let delivery = DeliveryConfig {
        limits: crate::batch::Limits { max_items: 8192, max_bytes: 1 << 20, timeout: Duration::from_millis(200) },
        concurrency: 2,
        max_age: Duration::from_secs(60),
        hold_bytes: 1000,
    };
    let own = crate::export::BatchLimits {
        max_items: u64::MAX,
        max_bytes: 1000,
        linger: Duration::from_secs(1),
        units: false,
    };
    let (stop, stopped) = watch::channel(false);
    let readers =
        queue.start_readers(vec![(exporters, Some(own))], delivery, crate::limit::MemoryBudget::new(64 << 20), stopped);
    let exported = || recorder.calls.lock().unwrap().iter().map(|(items, _)| *items).collect::<Vec<_>>();
    while exported().iter().sum::<u64>() < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(exported(), [3, 3, 3, 1], "three records of 300 bytes fill 1000; the last one waits its linger");
    let _ = stop.send(true);
    for reader in readers {
        reader.await.unwrap();
    }
}

/// What a unit-taking output saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UnitEvent {
    /// A piece added to unit `.0`: the first byte of each record (the test's record ids).
    Add(u64, Vec<u8>),
    /// Unit `.0` completed.
    Complete(u64),
    /// Unit `.0` given up.
    Abort(u64),
    /// A batch exported on its own (no unit).
    Batch(Vec<u8>),
}

/// An output that takes units (as the archive does), recording what it is handed; the completions whose number
/// is in `fail` fail for good. `held` samples the memory budget at each add.
struct UnitOutput {
    events: std::sync::Mutex<Vec<(UnitEvent, tokio::time::Instant)>>,
    units: AtomicU64,
    completions: AtomicU64,
    fail: Vec<u64>,
    budget: Arc<crate::limit::MemoryBudget>,
    most_held: AtomicU64,
    /// Units open now, and the most at once.
    open: AtomicU64,
    most_open: AtomicU64,
    /// Completions never end (a store that does not answer).
    hang: std::sync::atomic::AtomicBool,
}

impl UnitOutput {
    fn new(fail: Vec<u64>, budget: &Arc<crate::limit::MemoryBudget>) -> Arc<UnitOutput> {
        Arc::new(UnitOutput {
            events: std::sync::Mutex::new(Vec::new()),
            units: AtomicU64::new(0),
            completions: AtomicU64::new(0),
            fail,
            budget: Arc::clone(budget),
            most_held: AtomicU64::new(0),
            open: AtomicU64::new(0),
            most_open: AtomicU64::new(0),
            hang: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn events(&self) -> Vec<UnitEvent> {
        self.events.lock().unwrap().iter().map(|(e, _)| e.clone()).collect()
    }

    fn push(&self, event: UnitEvent) {
        self.events.lock().unwrap().push((event, tokio::time::Instant::now()));
    }

    /// Each unit's events in order (a piece's record ids; `None`: completed).
    fn by_unit(&self) -> std::collections::BTreeMap<u64, Vec<Option<Vec<u8>>>> {
        let mut units = std::collections::BTreeMap::<u64, Vec<Option<Vec<u8>>>>::new();
        for e in self.events() {
            match e {
                UnitEvent::Add(u, ids) => units.entry(u).or_default().push(Some(ids)),
                UnitEvent::Complete(u) => units.entry(u).or_default().push(None),
                UnitEvent::Abort(_) | UnitEvent::Batch(_) => {}
            }
        }
        units
    }

    /// The record ids in units that completed.
    fn delivered(&self) -> Vec<u8> {
        let events = self.events();
        let complete: Vec<u64> =
            events.iter().filter_map(|e| if let UnitEvent::Complete(u) = e { Some(*u) } else { None }).collect();
        let mut ids: Vec<u8> = events
            .iter()
            .filter_map(|e| match e {
                UnitEvent::Add(u, ids) if complete.contains(u) => Some(ids.clone()),
                UnitEvent::Batch(ids) => Some(ids.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        ids.sort_unstable();
        ids
    }
}

struct FakeUnit {
    id: u64,
    output: Arc<UnitOutput>,
}

impl crate::export::Export for UnitOutput {
    fn export(
        &self,
        payload: crate::export::Payload,
        _: u64,
        _: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        self.push(UnitEvent::Batch(payload.parts.iter().map(|p| p[0]).collect()));
        Box::pin(std::future::ready(Ok(crate::signal::PartialSuccess::default())))
    }
}

/// `Export` is implemented for `Arc<UnitOutput>` through the blanket impl; units need the `Arc` itself.
struct UnitExport(Arc<UnitOutput>);

impl crate::export::Export for UnitExport {
    fn export(
        &self,
        payload: crate::export::Payload,
        items: u64,
        deadline: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        self.0.export(payload, items, deadline)
    }

    fn open_unit(&self, _: &Arc<Vec<(String, String)>>, _: Option<u64>) -> Option<Box<dyn crate::export::ExportUnit>> {
        let id = self.0.units.fetch_add(1, Ordering::Relaxed);
        let open = self.0.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.0.most_open.fetch_max(open, Ordering::Relaxed);
        Some(Box::new(FakeUnit { id, output: Arc::clone(&self.0) }))
    }
}

impl crate::export::ExportUnit for FakeUnit {
    fn add(
        &mut self,
        _seq: u64,
        payload: crate::export::Payload,
        _items: u64,
        _deadline: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        let held = self.output.budget.held() as u64;
        self.output.most_held.fetch_max(held, Ordering::Relaxed);
        self.output.push(UnitEvent::Add(self.id, payload.parts.iter().map(|p| p[0]).collect()));
        Box::pin(std::future::ready(Ok(crate::signal::PartialSuccess::default())))
    }

    fn complete(&mut self, _items: u64, _deadline: Option<tokio::time::Instant>) -> crate::export::ExportFuture<'_> {
        if self.output.hang.load(Ordering::Relaxed) {
            return Box::pin(std::future::pending());
        }
        let n = self.output.completions.fetch_add(1, Ordering::Relaxed);
        if self.output.fail.contains(&n) {
            return Box::pin(std::future::ready(Err(crate::export::ExportError::ShuttingDown)));
        }
        self.output.push(UnitEvent::Complete(self.id));
        self.output.open.fetch_sub(1, Ordering::Relaxed);
        Box::pin(std::future::ready(Ok(crate::signal::PartialSuccess::default())))
    }

    fn abort(self: Box<Self>) -> crate::export::AbortFuture {
        self.output.push(UnitEvent::Abort(self.id));
        self.output.open.fetch_sub(1, Ordering::Relaxed);
        Box::pin(std::future::ready(()))
    }
}

/// Appends records `ids` of `size` bytes (each filled with its id) as traces.
async fn append_ids(appender: &Appender, ids: std::ops::Range<u8>, size: usize) {
    for i in ids {
        appender.append(SignalKind::Traces, vec![(Bytes::from(vec![i; size]), 1)], &[]).await.unwrap();
    }
}

/// A queue in its own directory holding records `ids` of `size` bytes, and a unit-taking output (completions whose
/// number is in `fail` fail for good) on a budget of 64 MiB.
struct UnitRig {
    dir: tempfile::TempDir,
    queue: Queue,
    appender: Appender,
    budget: Arc<crate::limit::MemoryBudget>,
    output: Arc<UnitOutput>,
}

impl UnitRig {
    /// The same queue directory after a stop (the appender dropped, the writer closed) and a start, with a new
    /// output.
    async fn restart(self) -> UnitRig {
        let UnitRig { dir, queue, appender, budget, .. } = self;
        drop(appender);
        queue.close().await;
        drop(queue);
        let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
        let output = UnitOutput::new(Vec::new(), &budget);
        UnitRig { dir, queue, appender, budget, output }
    }

    fn start(&self) -> (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
        start_unit_reader(&self.queue, &self.output, &self.budget, 3000)
    }
}

async fn unit_rig(ids: std::ops::Range<u8>, size: usize, fail: Vec<u64>) -> UnitRig {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    append_ids(&appender, ids, size).await;
    let budget = crate::limit::MemoryBudget::new(64 << 20);
    let output = UnitOutput::new(fail, &budget);
    UnitRig { dir, queue, appender, budget, output }
}

/// Starts one reader for a unit-taking output: memory share 2000 bytes, units of `unit` bytes or 10 s.
fn start_unit_reader(
    queue: &Queue,
    output: &Arc<UnitOutput>,
    budget: &Arc<crate::limit::MemoryBudget>,
    unit: usize,
) -> (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let export: Arc<dyn crate::export::Export> = Arc::new(UnitExport(Arc::clone(output)));
    let exporters: ReaderExport = [Some(export), None, None, None];
    let delivery = DeliveryConfig {
        limits: crate::batch::Limits { max_items: 8192, max_bytes: 1 << 20, timeout: Duration::from_millis(200) },
        concurrency: 4,
        max_age: Duration::from_secs(3600),
        hold_bytes: 2000,
    };
    let own = crate::export::BatchLimits {
        max_items: u64::MAX,
        max_bytes: unit,
        linger: Duration::from_secs(10),
        units: true,
    };
    let (stop, stopped) = watch::channel(false);
    let readers = queue.start_readers(vec![(exporters, Some(own))], delivery, Arc::clone(budget), stopped);
    (stop, readers)
}

async fn stop_readers(stop: watch::Sender<bool>, readers: Vec<tokio::task::JoinHandle<()>>) {
    let _ = stop.send(true);
    for reader in readers {
        reader.await.unwrap();
    }
}

/// A unit of 3000 bytes through a reader that may hold 2000: it goes in even pieces of 1000 (three records of
/// 300), each freed once added, and the unit completes after its third piece; memory never exceeds the share.
#[tokio::test(start_paused = true)]
async fn a_batch_larger_than_the_share_goes_in_pieces_of_one_unit() {
    let UnitRig { dir: _dir, queue, appender: _appender, budget, output } = unit_rig(0..20, 300, Vec::new()).await;
    let started = tokio::time::Instant::now();
    let (stop, readers) = start_unit_reader(&queue, &output, &budget, 3000);
    while output.delivered().len() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ids = |r: std::ops::Range<u8>| Some(r.collect::<Vec<u8>>());
    let want = std::collections::BTreeMap::from([
        (0, vec![ids(0..3), ids(3..6), ids(6..9), None]),
        (1, vec![ids(9..12), ids(12..15), ids(15..18), None]),
        (2, vec![ids(18..20), None]),
    ]);
    assert_eq!(output.by_unit(), want, "three pieces of three records fill a unit; the rest waits for its age");
    // The third unit's only piece waited for its age.
    let completed = output.events.lock().unwrap().iter().rev().find(|(e, _)| *e == UnitEvent::Complete(2)).unwrap().1;
    assert!(completed - started >= Duration::from_secs(10), "completed after {:?}", completed - started);
    stop_readers(stop, readers).await;
}

/// Pieces that each filled by size leave nothing open when the unit reaches its age: an empty last piece
/// completes it then.
#[tokio::test(start_paused = true)]
async fn a_unit_whose_pieces_have_all_gone_completes_at_its_age() {
    let UnitRig { dir: _dir, queue, appender: _appender, budget, output } = unit_rig(0..4, 500, Vec::new()).await;
    let started = tokio::time::Instant::now();
    let (stop, readers) = start_unit_reader(&queue, &output, &budget, 3000);
    while output.delivered().len() < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    use UnitEvent::{Add, Complete};
    assert_eq!(output.events(), [Add(0, vec![0, 1]), Add(0, vec![2, 3]), Complete(0)]);
    let completed = output.events.lock().unwrap()[2].1;
    assert!(completed - started >= Duration::from_secs(10), "completed after {:?}", completed - started);
    stop_readers(stop, readers).await;
}

/// A unit whose completion fails for good is given up (aborted) and every record after the cursor is read again,
/// in whole batches for a while (a store that keeps losing uploads must not loop the reader): nothing is lost,
/// and the cursor never passed the failed unit's records.
#[tokio::test(start_paused = true)]
async fn a_unit_that_fails_for_good_is_given_up_and_its_records_read_again() {
    let UnitRig { dir: _dir, queue, appender: _appender, budget, output } = unit_rig(0..12, 300, vec![0]).await;
    let (stop, readers) = start_unit_reader(&queue, &output, &budget, 3000);
    while output.delivered().len() < 12 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = output.events();
    assert!(events.contains(&UnitEvent::Abort(0)), "{events:?}");
    assert!(!events.contains(&UnitEvent::Complete(0)), "{events:?}");
    let aborted = events.iter().position(|e| *e == UnitEvent::Abort(0)).unwrap();
    assert!(
        events[aborted..].iter().all(|e| !matches!(e, UnitEvent::Add(u, _) if *u > 1)),
        "no new unit for a while after one failed for good; the data goes in whole batches: {events:?}"
    );
    let delivered = output.delivered();
    let mut distinct = delivered.clone();
    distinct.dedup();
    assert_eq!(distinct, (0..12).collect::<Vec<u8>>(), "every record in a completed unit: {events:?}");
    stop_readers(stop, readers).await;
}

/// Units 15 times the reader's share: the memory the reader holds stays about its share (the records of one read
/// share one reservation, so up to two reads' worth), not the unit's size.
#[tokio::test(start_paused = true)]
async fn memory_stays_within_the_share_whatever_the_unit_size() {
    let UnitRig { dir: _dir, queue, appender: _appender, budget, output } = unit_rig(0..200, 300, Vec::new()).await;
    let (stop, readers) = start_unit_reader(&queue, &output, &budget, 30_000);
    while output.delivered().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let units = output.by_unit();
    assert_eq!(units.len(), 3, "two full units of 99 records and the rest: {:?}", units.keys());
    assert_eq!(units[&0].len(), 34, "33 pieces of 3 records, then the completion");
    let most = output.most_held.load(Ordering::Relaxed);
    assert!(most <= 2 * 2000 + 300, "the reader held {most} bytes with a share of 2000 and units of 30000");
    stop_readers(stop, readers).await;
}

/// More partitions than export slots (four here): no more units are open at once than slots (each holds an
/// output's state outside the share); the other partitions' pieces go as batches of their own, and every record
/// is delivered once.
#[tokio::test(start_paused = true)]
async fn no_more_units_are_open_than_export_slots() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    for t in 0..6u8 {
        for i in 0..4u8 {
            let id = t * 4 + i;
            let record = vec![(Bytes::from(vec![id; 300]), 1)];
            appender.append(SignalKind::Traces, record, &tenant(&t.to_string())).await.unwrap();
        }
    }
    let budget = crate::limit::MemoryBudget::new(64 << 20);
    let output = UnitOutput::new(Vec::new(), &budget);
    let (stop, readers) = start_unit_reader(&queue, &output, &budget, 3000);
    while output.delivered().len() < 24 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let most = output.most_open.load(Ordering::Relaxed);
    assert!(most <= 4, "{most} units open at once with 4 export slots: {:?}", output.events());
    let events = output.events();
    assert!(events.iter().any(|e| matches!(e, UnitEvent::Batch(_))), "some pieces went on their own: {events:?}");
    assert_eq!(output.delivered(), (0..24).collect::<Vec<u8>>(), "every record once: {events:?}");
    stop_readers(stop, readers).await;
}

/// A unit whose completion is still in flight when the reader stops is given up (an archive object's upload
/// aborted, not left in the store), and its records stay behind the cursor: the next start delivers them.
#[tokio::test(start_paused = true)]
async fn a_unit_completing_when_the_reader_stops_is_given_up_and_delivered_after_the_next_start() {
    let rig = unit_rig(0..9, 300, Vec::new()).await;
    rig.output.hang.store(true, Ordering::Relaxed);
    let (stop, readers) = rig.start();
    while !rig.output.events().contains(&UnitEvent::Add(0, vec![6, 7, 8])) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_readers(stop, readers).await;
    assert_eq!(rig.output.events().last(), Some(&UnitEvent::Abort(0)), "{:?}", rig.output.events());

    let rig = rig.restart().await;
    let (stop, readers) = rig.start();
    while rig.output.delivered().len() < 9 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rig.output.delivered(), (0..9).collect::<Vec<u8>>());
    stop_readers(stop, readers).await;
}

/// Told to stop with time to drain, a reader exports what it has read: the open unit's last piece goes and the unit
/// completes (an archive's open object is written at shutdown), and the cursor passes it, so the next start
/// delivers nothing twice.
#[tokio::test(start_paused = true)]
async fn a_reader_stopping_with_time_to_drain_completes_its_open_unit_and_passes_it() {
    let rig = unit_rig(0..5, 300, Vec::new()).await;
    let (stop, readers) = rig.start();
    // Units of 3000 bytes or 10 s: five records fill one piece and start the next, and the unit stays open.
    while !rig.output.events().iter().any(|e| matches!(e, UnitEvent::Add(0, _))) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = rig.output.events();
    assert!(!events.contains(&UnitEvent::Complete(0)), "open before the stop: {events:?}");
    rig.queue.drain_until(tokio::time::Instant::now() + Duration::from_secs(5));
    let stopped = tokio::time::Instant::now();
    stop_readers(stop, readers).await;
    assert!(stopped.elapsed() < Duration::from_secs(5), "ends once the drain is done, not at its deadline");
    assert_eq!(rig.output.events().last(), Some(&UnitEvent::Complete(0)), "{:?}", rig.output.events());
    assert_eq!(rig.output.delivered(), (0..5).collect::<Vec<u8>>());

    let rig = rig.restart().await;
    let (stop, readers) = rig.start();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(rig.output.events().is_empty(), "nothing again after the start: {:?}", rig.output.events());
    stop_readers(stop, readers).await;
}

/// An output with batches of its own (an archive's objects) has its cursor stored as soon as one is delivered, not
/// at the reader's store interval: a crash right after an object was stored does not write it again.
#[tokio::test(start_paused = true)]
async fn a_delivered_unit_moves_the_durable_cursor_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    // Two units of nine records, each complete by size at once (the record after each fills no piece of it);
    // the nineteenth waits in a third unit.
    append_ids(&appender, 0..19, 300).await;
    let budget = crate::limit::MemoryBudget::new(64 << 20);
    let output = UnitOutput::new(Vec::new(), &budget);
    let started = tokio::time::Instant::now();
    let (stop, readers) = start_unit_reader(&queue, &output, &budget, 3000);
    while !output.events().contains(&UnitEvent::Complete(1)) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(started.elapsed() < Duration::from_millis(50), "both units completed at once");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let soon = *lock(&queue.shared.readers[0].durable);
    stop_readers(stop, readers).await;
    // Stopping stores the cursor too: before the third unit, as it was already.
    assert_eq!(soon, *lock(&queue.shared.readers[0].durable), "stored within 5 ms of the second unit's completion");
}

/// An output that never answers (a backend that is down).
struct Hanging;

impl crate::export::Export for Hanging {
    fn export(
        &self,
        _: crate::export::Payload,
        _: u64,
        _: Option<tokio::time::Instant>,
    ) -> crate::export::ExportFuture<'_> {
        Box::pin(std::future::pending())
    }
}

/// The drain at shutdown is for outputs with batches of their own: a reader of any other output stops at once even
/// with time left to drain (its batches are milliseconds old, the queue keeps them, and a backend that is down must
/// not hold the stop), and its data stays queued.
#[tokio::test(start_paused = true)]
async fn a_reader_without_batches_of_its_own_stops_at_once_whatever_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, appender) = Queue::open(&config(dir.path()), &backends(1), Telemetry::new()).unwrap();
    append_n(&appender, 5).await;
    let export: Arc<dyn crate::export::Export> = Arc::new(Hanging);
    let delivery = DeliveryConfig {
        limits: crate::batch::Limits { max_items: 100, max_bytes: 1 << 20, timeout: Duration::ZERO },
        concurrency: 1,
        max_age: Duration::from_secs(60),
        hold_bytes: 1 << 20,
    };
    let (stop, stopped) = watch::channel(false);
    let budget = crate::limit::MemoryBudget::new(1 << 20);
    let readers = queue.start_readers(
        vec![(SignalKind::ALL.map(|_| Some(Arc::clone(&export))), None)],
        delivery,
        budget,
        stopped,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    queue.drain_until(tokio::time::Instant::now() + Duration::from_secs(60));
    let before = *lock(&queue.shared.readers[0].durable);
    let stopping = tokio::time::Instant::now();
    stop_readers(stop, readers).await;
    assert!(stopping.elapsed() < Duration::from_secs(1), "stopped after {:?}", stopping.elapsed());
    assert_eq!(*lock(&queue.shared.readers[0].durable), before, "its data stays queued");
}
