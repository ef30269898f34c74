//! The one load generator of the suite: clients posting trace requests in a loop, each span id unique, every answer
//! kept as an [`Outcome`], so a test can say afterwards what was answered 200 and check that it arrived.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::time::Instant;

use super::process::{client, try_request_within};

/// One request of a [`Load`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The first span id (see [`super::span_number`]); the request holds `first..first + n`.
    pub first: u64,
    pub n: u64,
    /// The status, or why there was none (connection refused, reset, no answer in 60 s).
    pub status: Result<u16, String>,
    /// The error body of a non-200 answer.
    pub message: String,
    pub retry_after: Option<String>,
    pub took: Duration,
    pub answered_at: Instant,
}

/// How the clients of a [`Load`] post.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Concurrent clients.
    pub clients: u64,
    /// Spans per request.
    pub spans: u64,
    /// Bytes of padding per span (see [`super::padded_spans`]).
    pub pad: usize,
    /// At most one request per client per `pace` (zero: back to back).
    pub pace: Duration,
}

/// One load at a time in the test binary: a load saturates the machine's two cores by design, and two at once would
/// make each other's "eventually" bounds (and the memory bounds measured under them) depend on the other test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Clients posting until stopped; a client pauses 50 ms after a refusal (a real one backs off).
pub struct Load {
    _alone: tokio::sync::MutexGuard<'static, ()>,
    stop: Arc<AtomicBool>,
    outcomes: tokio::sync::mpsc::UnboundedReceiver<Outcome>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    /// Every answer collected so far.
    pub all: Vec<Outcome>,
}

impl Load {
    /// Starts `shape.clients` clients posting to `url` (an OTLP/HTTP `/v1/traces` URL), once no other load runs.
    pub async fn start(url: String, shape: Shape) -> Load {
        let alone = ONE_AT_A_TIME.lock().await;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, outcomes) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
        let clients = (0..shape.clients)
            .map(|c| {
                let (stop, tx, url) = (Arc::clone(&stop), tx.clone(), url.clone());
                tokio::spawn(async move {
                    let client = client();
                    let mut tick = tokio::time::interval(shape.pace.max(Duration::from_nanos(1)));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    for i in 0.. {
                        if !shape.pace.is_zero() {
                            tick.tick().await;
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // Ids never collide across clients, nor with the small ids tests send themselves.
                        let first = (c + 1) << 40 | (i * shape.spans);
                        let body = Bytes::from(super::padded_spans(first, shape.spans, shape.pad).encode_to_vec());
                        let headers = [("content-type", "application/x-protobuf")];
                        let started = Instant::now();
                        let limit = Duration::from_secs(60);
                        let result = try_request_within(&client, "POST", &url, &headers, body, limit).await;
                        let took = started.elapsed();
                        let message = match &result {
                            Ok(a) if a.status != 200 => a.text(),
                            _ => String::new(),
                        };
                        let retry_after = result.as_ref().ok().and_then(|a| a.header("retry-after")).map(String::from);
                        let status = result.map(|a| a.status);
                        let refused = status != Ok(200);
                        let answered_at = Instant::now();
                        let n = shape.spans;
                        let outcome = Outcome { first, n, status, message, retry_after, took, answered_at };
                        if tx.send(outcome).is_err() {
                            break;
                        }
                        if refused {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        Load { _alone: alone, stop, outcomes, clients, all: Vec::new() }
    }

    /// Collects the answers that arrive during `d`.
    pub async fn run_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(Some(o)) = tokio::time::timeout_at(deadline, self.outcomes.recv()).await {
            self.all.push(o);
        }
    }

    /// The answers so far that satisfy `pred` (collecting what has arrived first).
    pub fn count(&mut self, pred: impl Fn(&Outcome) -> bool) -> usize {
        while let Ok(o) = self.outcomes.try_recv() {
            self.all.push(o);
        }
        self.all.iter().filter(|o| pred(o)).count()
    }

    /// Collects answers until `n` of them in all are 200; fails after `limit`.
    pub async fn until_ok(&mut self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.count(|o| o.status == Ok(200)) < n {
            match tokio::time::timeout_at(deadline, self.outcomes.recv()).await {
                Ok(Some(o)) => self.all.push(o),
                _ => panic!("only {} answers 200 within {limit:?}", self.count(|o| o.status == Ok(200))),
            }
        }
    }

    /// Stops the clients and waits for the answers to their last requests.
    pub async fn finish(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let drain = async {
            while let Some(o) = self.outcomes.recv().await {
                self.all.push(o);
            }
        };
        tokio::time::timeout(Duration::from_secs(60), drain).await.expect("every client finished");
        for client in self.clients {
            client.await.unwrap();
        }
        self.all
    }
}

/// The span ids of the requests that satisfy `pred`.
pub fn ids(outcomes: &[Outcome], pred: impl Fn(&Outcome) -> bool) -> std::collections::HashSet<u64> {
    outcomes.iter().filter(|o| pred(o)).flat_map(|o| o.first..o.first + o.n).collect()
}
