//! The worker against a fake exporter that records each call, in paused time: linger, export slots and the
//! shutdown flush are checked to the millisecond, with no sleeping and no real backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;
use crate::config::MAX_PARTITIONS;
use crate::export::ExportFuture;
use crate::limit::MemoryBudget;

/// How long every fake export takes.
const EXPORT_TAKES: Duration = Duration::from_millis(100);

/// One export the fake saw.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    /// When it started, from the test's start.
    at: Duration,
    /// The request chunks it carried, by their payload text.
    parts: Vec<String>,
    items: u64,
    metadata: Vec<(String, String)>,
}

/// Records every call, takes `takes` ([`EXPORT_TAKES`] unless a test says) to answer, and tracks how many calls
/// overlap.
struct Fake {
    start: Instant,
    takes: Duration,
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Fake::taking(EXPORT_TAKES)
    }

    fn taking(takes: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            start: Instant::now(),
            takes,
            calls: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            most_running: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Export for Fake {
    fn export(&self, payload: Payload, items: u64, _deadline: Option<Instant>) -> ExportFuture<'_> {
        Box::pin(async move {
            let parts = payload.parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            let call = Call { at: self.start.elapsed(), parts, items, metadata: payload.metadata.to_vec() };
            self.calls.lock().unwrap().push(call);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.takes).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(PartialSuccess::default())
        })
    }
}

fn limits(max_items: u64) -> Limits {
    Limits { max_items, max_bytes: 1 << 20, timeout: Duration::from_secs(10) }
}

struct Bed {
    pipeline: Pipeline,
    worker: Vec<tokio::task::JoinHandle<()>>,
    fake: Arc<Fake>,
    budget: Arc<MemoryBudget>,
    telemetry: Arc<Telemetry>,
}

fn bed(limits: Limits, slots: usize) -> Bed {
    let fake = Fake::new();
    let telemetry = Telemetry::new();
    let budget = MemoryBudget::new(1 << 20);
    let (pipeline, worker) = Pipeline::start(
        SignalKind::Traces,
        vec![Arc::clone(&fake)],
        limits,
        slots,
        MAX_PARTITIONS,
        None,
        Arc::clone(&telemetry),
    );
    Bed { pipeline, worker, fake, budget, telemetry }
}

impl Bed {
    /// Submits one chunk (`name`, one item) from its own task, as a client request would, after `after`.
    fn submit(
        &self,
        name: &'static str,
        after: Duration,
    ) -> tokio::task::JoinHandle<Result<PartialSuccess, ExportError>> {
        let pipeline = self.pipeline.clone();
        let reservation = self.budget.reserve(name.len()).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            pipeline.submit(vec![(Bytes::from_static(name.as_bytes()), 1)], Vec::new(), reservation).await
        })
    }

    fn flushes(&self, reason: &str) -> f64 {
        flushes(&self.telemetry, reason)
    }
}

/// `otlp_bridge_batch_flushes_total` of traces for `reason`.
fn flushes(telemetry: &Telemetry, reason: &str) -> f64 {
    let reason = format!("reason=\"{reason}\"");
    let text = telemetry.render();
    text.lines()
        .filter(|l| l.starts_with("otlp_bridge_batch_flushes_total{"))
        .filter(|l| l.contains(&reason) && l.contains("signal=\"traces\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_lone_request_is_exported_at_once_and_answered_when_the_export_is() {
    let bed = bed(limits(100), 4);
    let started = Instant::now();
    bed.submit("a", Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(started.elapsed(), EXPORT_TAKES, "no lingering when nothing is in flight");
    assert_eq!(bed.fake.calls(), [Call { at: ms(0), parts: vec!["a".into()], items: 1, metadata: vec![] }]);
    assert_eq!(bed.flushes("idle"), 1.0);
}

#[tokio::test(start_paused = true)]
async fn data_arriving_during_an_export_lingers_for_half_the_export_latency_and_leaves_as_one_batch() {
    let bed = bed(limits(100), 4);
    // The first export teaches the worker the backend's latency (100 ms): linger becomes 50 ms.
    bed.submit("first", Duration::ZERO).await.unwrap().unwrap();
    // Virtual time: lets the worker see the first export end before "b" arrives, at no cost in real time.
    tokio::time::sleep(ms(1)).await;
    let t = bed.fake.start.elapsed();
    // "b" finds no export in flight: it goes at once. "c" and "d" arrive while it is in flight: they wait 50 ms
    // from "c"'s arrival for more data, then leave together on a free slot.
    let b = bed.submit("b", Duration::ZERO);
    let c = bed.submit("c", ms(10));
    let d = bed.submit("d", ms(30));
    for answer in [b, c, d] {
        answer.await.unwrap().unwrap();
    }
    let calls = bed.fake.calls();
    let seen: Vec<(Duration, Vec<String>)> = calls[1..].iter().map(|c| (c.at - t, c.parts.clone())).collect();
    assert_eq!(seen, [(ms(0), vec!["b".to_string()]), (ms(60), vec!["c".to_string(), "d".to_string()])]);
    assert_eq!(calls[2].items, 2);
    assert_eq!((bed.flushes("idle"), bed.flushes("linger")), (2.0, 1.0));
}

#[tokio::test(start_paused = true)]
async fn no_more_exports_run_at_once_than_there_are_slots_and_every_request_is_answered() {
    // One item per batch: five batches for two slots.
    let bed = bed(limits(1), 2);
    let answers: Vec<_> = ["a", "b", "c", "d", "e"].into_iter().map(|n| bed.submit(n, Duration::ZERO)).collect();
    for answer in answers {
        answer.await.unwrap().unwrap();
    }
    assert_eq!(bed.fake.most_running.load(Ordering::SeqCst), 2);
    let starts: Vec<Duration> = bed.fake.calls().iter().map(|c| c.at).collect();
    assert_eq!(starts, [ms(0), ms(0), ms(100), ms(100), ms(200)]);
    assert_eq!(bed.flushes("size"), 5.0);
}

#[tokio::test(start_paused = true)]
async fn at_shutdown_held_data_of_clients_gone_is_still_exported_and_its_memory_released_after() {
    let bed = bed(limits(100), 1);
    let a = bed.submit("a", Duration::ZERO);
    let b = bed.submit("b", ms(10));
    let c = bed.submit("c", ms(20));
    tokio::time::sleep(ms(30)).await;
    // "a" is in flight on the only slot; "b" and "c" wait in the open batch. Every client goes away and the last
    // pipeline handle is dropped: the worker must still export what it holds, then end.
    for client in [&a, &b, &c] {
        client.abort();
    }
    let Bed { pipeline, worker, fake, budget, telemetry } = bed;
    drop(pipeline);
    tokio::time::sleep(ms(120)).await;
    assert!(budget.held() > 0, "the memory of data being exported is held until its export ends");
    for lane in worker {
        lane.await.unwrap();
    }
    let calls: Vec<(Duration, Vec<String>)> = fake.calls().into_iter().map(|c| (c.at, c.parts)).collect();
    assert_eq!(calls, [(ms(0), vec!["a".to_string()]), (ms(100), vec!["b".to_string(), "c".to_string()])]);
    assert_eq!(fake.start.elapsed(), ms(200), "the worker ended as soon as its last export did");
    assert_eq!(budget.held(), 0);
    assert_eq!((flushes(&telemetry, "idle"), flushes(&telemetry, "shutdown")), (1.0, 1.0));
}

#[tokio::test(start_paused = true)]
async fn forwarded_header_values_become_the_exports_metadata() {
    let bed = bed(limits(100), 4);
    let reservation = bed.budget.reserve(1).unwrap();
    let headers = vec![("x-scope-orgid".to_string(), "tenant-a".to_string())];
    bed.pipeline.submit(vec![(Bytes::from_static(b"t"), 1)], headers.clone(), reservation).await.unwrap();
    assert_eq!(bed.fake.calls()[0].metadata, headers);
}

#[tokio::test(start_paused = true)]
async fn a_slow_output_holds_the_answers_but_not_the_batches_of_a_fast_one() {
    // One item per batch, one slot per output: the fast output (100 ms) sends each request as its slot frees, the
    // slow one (1 s) at its own pace; each client is answered once both have acknowledged its data.
    let (fast, slow) = (Fake::new(), Fake::taking(ms(1000)));
    let telemetry = Telemetry::new();
    let budget = MemoryBudget::new(1 << 20);
    let (pipeline, lanes) = Pipeline::start(
        SignalKind::Traces,
        vec![Arc::clone(&fast), Arc::clone(&slow)],
        limits(1),
        1,
        MAX_PARTITIONS,
        None,
        Arc::clone(&telemetry),
    );
    let answers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let pipeline = pipeline.clone();
            let reservation = budget.reserve(1).unwrap();
            tokio::spawn(async move {
                let chunks = vec![(Bytes::from_static(name.as_bytes()), 1)];
                pipeline.submit(chunks, Vec::new(), reservation).await.map(|_| Instant::now())
            })
        })
        .collect();
    let start = fast.start;
    let mut answered = Vec::new();
    for answer in answers {
        answered.push(answer.await.unwrap().unwrap() - start);
    }
    let starts = |fake: &Fake| fake.calls().iter().map(|c| c.at).collect::<Vec<_>>();
    assert_eq!(starts(&fast), [ms(0), ms(100), ms(200)], "the fast output never waits for the slow one");
    assert_eq!(starts(&slow), [ms(0), ms(1000), ms(2000)]);
    assert_eq!(answered, [ms(1000), ms(2000), ms(3000)], "a client hears only once every output acknowledged");
    assert_eq!(budget.held(), 0, "the memory is released once the last output is done");
    drop(pipeline);
    for lane in lanes {
        lane.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_of_one_output_fails_the_request_even_when_the_other_delivered() {
    struct Refusing;
    impl Export for Refusing {
        fn export(&self, _: Payload, _: u64, _: Option<Instant>) -> ExportFuture<'_> {
            Box::pin(async { Err(ExportError::ShuttingDown) })
        }
    }
    let fake = Fake::new();
    let (pipeline, _lanes) = Pipeline::start(
        SignalKind::Traces,
        vec![Arc::clone(&fake) as Arc<dyn Export>, Arc::new(Refusing)],
        limits(100),
        4,
        MAX_PARTITIONS,
        None,
        Telemetry::new(),
    );
    let budget = MemoryBudget::new(1 << 20);
    let answer = pipeline.submit(vec![(Bytes::from_static(b"x"), 1)], Vec::new(), budget.reserve(1).unwrap()).await;
    assert!(matches!(answer, Err(ExportError::ShuttingDown)), "{answer:?}");
    assert_eq!(fake.calls().len(), 1, "the other output still got the data");
}

#[tokio::test(start_paused = true)]
async fn requests_of_two_tenants_arriving_together_leave_in_separate_exports_with_their_own_headers() {
    let bed = bed(limits(100), 4);
    // An export in flight makes the next requests linger together.
    let first = bed.submit("first", Duration::ZERO);
    tokio::time::sleep(ms(1)).await;
    let tenant = |t: &str| vec![("x-scope-orgid".to_string(), t.to_string())];
    let send = |name: &'static str, t: &str| {
        let pipeline = bed.pipeline.clone();
        let reservation = bed.budget.reserve(1).unwrap();
        let headers = tenant(t);
        tokio::spawn(async move {
            pipeline.submit(vec![(Bytes::from_static(name.as_bytes()), 1)], headers, reservation).await
        })
    };
    let answers = [send("a1", "a"), send("b1", "b"), send("a2", "a"), send("b2", "b")];
    first.await.unwrap().unwrap();
    for answer in answers {
        answer.await.unwrap().unwrap();
    }
    let mut later: Vec<_> = bed.fake.calls()[1..].iter().map(|c| (c.metadata.clone(), c.parts.clone())).collect();
    later.sort();
    assert_eq!(
        later,
        [
            (tenant("a"), vec!["a1".to_string(), "a2".to_string()]),
            (tenant("b"), vec!["b1".to_string(), "b2".to_string()])
        ]
    );
}
