//! Adversarial clients against the running `otlp-bridge` binary (issue 6, item 5) and the stalled-backend memory
//! test of issue 4.
//!
//! Every test starts the real binary as a child process on free 127.0.0.1 ports ([`BridgeProcess`], killed on drop),
//! attacks it over raw TCP, HTTP/1.1 or h2c, and checks that
//! - the attack gets the answer it deserves (a status code, or a cut connection),
//! - the bridge keeps serving a normal client ([`serves`]),
//! - its resident memory stays under a stated bound: `VmHWM` from `/proc/PID/status` is the peak since the process
//!   started, so one reading at the end covers the whole attack,
//! - and the metrics count the refusal where the bridge has a counter for it.
//!
//! The binary is the one cargo builds for this test (debug under `cargo test`); `ADVERSARIAL_BRIDGE_BIN` points the
//! tests at another build, e.g. `target/release/otlp-bridge`. `-- --nocapture` prints the memory figures.
//!
//! Bad input whose only check is its answer (truncated protobuf, invalid UTF-8) is tested in process, in `robustness`.
#![allow(clippy::disallowed_methods)] // test clients read whole (small, trusted) answers

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::common::load::{Load, Outcome, Shape};
use crate::common::process::{self, bridge_binary, is_debug_build, try_request_within, HttpClient, Ports, RssSampler};
use crate::common::raw::{self, read_response, RawResponse};
use crate::common::{eventually, padded_spans, span_number, spans, sum_metric, Action, Answer, MockBackend};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------- memory bounds (VmHWM, MiB)

/// Idle binary after one request: the release build measures about 7 MiB (6 at start). Issue 6's 8 MiB target is the
/// benchmark harness's to judge; this bound only catches a gross regression.
const IDLE_MIB: u64 = 12;
/// What issue 4 allows on top of the request data the bridge may hold (`--memory-limit-mib`): runtime, code, per-
/// connection buffers, allocator slack. Every bound below is "data the bridge may legitimately hold + this".
const OVERHEAD_MIB: u64 = 48;
/// Attacks that make the bridge hold no request data to speak of (slowloris, idle connections, floods of small
/// requests, bodies rejected by a scan of a few bytes): a quarter of a 128 MiB sidecar container. The release build
/// peaks at 7-14 MiB under each of them.
const NO_DATA_MIB: u64 = 32;
/// Bodies up to the default `--max-body-bytes` (64 MiB) that are read or inflated before being refused (bombs,
/// deep JSON, a million attributes): the body limit, which is also the default memory limit, + the overhead.
const ONE_FULL_BODY_MIB: u64 = 64 + OVERHEAD_MIB;
/// Issue 4: `--memory-limit-mib 32` with a backend that never answers must stay under 32 + 48 MiB.
const STALLED_MIB: u64 = 32 + OVERHEAD_MIB;
/// After the stalled backend recovers, the bridge exports at full speed: up to 4 export attempts per signal are in
/// flight, each with a copy of its batch (up to 4 MB) in tonic's encode buffer that the memory budget does not
/// count (reported as a bug): the stall bound + those 16 MiB.
const RECOVERY_MIB: u64 = STALLED_MIB + 16;
/// The bounds above are for the release build. A debug build (what `cargo test` runs) keeps about 10 MiB more
/// resident at every load (idle: 14-15 MiB against 6-7): its code is bigger and nothing is optimised away.
const DEBUG_BUILD_EXTRA_MIB: u64 = 16;

/// The allowance for the build under test: [`DEBUG_BUILD_EXTRA_MIB`] for a binary under a `debug` directory.
fn build_extra_mib() -> u64 {
    if is_debug_build() {
        DEBUG_BUILD_EXTRA_MIB
    } else {
        0
    }
}

// ---------------------------------------------------------------- the bridge as a child process

/// `VmRSS` now and `VmHWM` (the peak since start) of the bridge, in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VmRSS {:.1} MiB, VmHWM (peak) {:.1} MiB", self.rss_kib as f64 / 1024.0, self.hwm_kib as f64 / 1024.0)
    }
}

/// The bridge under attack: the shared child-process launcher ([`process::BridgeProcess`], killed on drop, its log
/// printed if the test failed), with the memory and metric checks these tests make.
struct BridgeProcess(process::BridgeProcess);

impl std::ops::Deref for BridgeProcess {
    type Target = process::BridgeProcess;
    fn deref(&self) -> &process::BridgeProcess {
        &self.0
    }
}

impl std::ops::DerefMut for BridgeProcess {
    fn deref_mut(&mut self) -> &mut process::BridgeProcess {
        &mut self.0
    }
}

impl BridgeProcess {
    /// Starts the binary sending to `backend` with extra `flags`, and waits until `/health` answers. Logs at warn:
    /// an attack's failure report needs the warnings, not every start-up line.
    async fn start(backend: &str, flags: &[&str]) -> BridgeProcess {
        let mut args = vec!["--backend", backend];
        args.extend_from_slice(flags);
        BridgeProcess(process::BridgeProcess::start_with(&args, &[("RUST_LOG", "warn")], Ports::Free).await)
    }

    fn memory(&self) -> Memory {
        let (rss_kib, hwm_kib) = self.memory_kib().expect("/proc/PID/status of the running bridge");
        Memory { rss_kib, hwm_kib }
    }

    /// Prints the memory figures and checks the peak against `bound_mib` (plus the debug build's allowance).
    fn assert_peak_under(&mut self, case: &str, bound_mib: u64) -> Memory {
        self.assert_alive();
        let bound_mib = bound_mib + build_extra_mib();
        let m = self.memory();
        println!("adversarial [{case}]: {m} (bound {bound_mib} MiB) [{}]", bridge_binary().display());
        assert!(m.hwm_kib < bound_mib * 1024, "{case}: peak RSS {m} over the bound of {bound_mib} MiB");
        m
    }

    /// `/metrics` on a fresh connection (a pooled one may be among those an attack keeps busy).
    async fn metrics(&self) -> String {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), raw::get(self.admin, "/metrics"))
            .await
            .expect("/metrics within 10 s")
            .expect("/metrics");
        assert_eq!(status, 200);
        String::from_utf8(body.to_vec()).unwrap()
    }

    async fn metric(&self, name: &str, label_parts: &[&str]) -> f64 {
        sum_metric(&self.metrics().await, name, label_parts)
    }

    /// Waits (bounded: 30 s) until `metric` satisfies `pred`.
    async fn wait_metric(&self, name: &str, label_parts: &[&str], what: &str, pred: impl Fn(f64) -> bool) -> f64 {
        self.0.wait_metric(name, label_parts, what, Duration::from_secs(30), pred).await
    }
}

// ---------------------------------------------------------------- clients

/// One request that may fail (unlike `crate::common::request`): `Err` for a transport error or no answer in `limit`.
async fn send(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    limit: Duration,
) -> Result<Answer, String> {
    try_request_within(client, "POST", url, headers, body.into(), limit).await
}

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

async fn post_pb(bridge: &BridgeProcess, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
    let mut all = vec![PROTOBUF];
    all.extend_from_slice(headers);
    send(&process::client(), &bridge.url(path), &all, body, Duration::from_secs(60)).await.expect("an answer")
}

async fn post_json(bridge: &BridgeProcess, body: impl Into<Bytes>) -> Answer {
    send(&process::client(), &bridge.url("/v1/traces"), &[JSON], body, Duration::from_secs(60))
        .await
        .expect("an answer")
}

/// A normal client still gets 200 for one span (whose id is `id`) and the backend acknowledged it.
async fn serves(bridge: &mut BridgeProcess, backend: &MockBackend, id: u64) {
    bridge.assert_alive();
    let a = post_pb(bridge, "/v1/traces", &[], spans(id, 1).encode_to_vec()).await;
    assert_eq!(a.status, 200, "a normal request during/after the attack: {}", a.text());
    assert!(backend.span_ids().contains(&id.to_be_bytes().to_vec()), "span {id} acknowledged");
}

/// What happened to a connection a client kept writing to.
#[derive(Debug)]
enum Fate {
    /// The bridge answered with this status.
    Answered(u16),
    /// The bridge closed (or reset) the connection without an answer.
    Cut,
    /// Still open when the client gave up.
    StillOpen,
}

/// Writes `head` at once, then `dribble` one byte per `every`, while watching for an answer or a close; gives up
/// after `limit`.
async fn dribble(addr: SocketAddr, head: &[u8], dribble: &[u8], every: Duration, limit: Duration) -> (Fate, Duration) {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let write = async {
        // A failed write means the bridge closed the connection; the read side tells whether it answered first.
        if writer.write_all(head).await.is_ok() {
            for byte in dribble {
                if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                    break;
                }
                tokio::time::sleep(every).await;
            }
        }
        std::future::pending::<()>().await
    };
    let read = async {
        match read_response(&mut reader, &mut BytesMut::new()).await {
            Ok(Some(answer)) => Fate::Answered(answer.status),
            Ok(None) | Err(_) => Fate::Cut,
        }
    };
    let fate = tokio::select! {
        fate = read => fate,
        () = write => unreachable!("the writer never ends"),
        () = tokio::time::sleep(limit) => Fate::StillOpen,
    };
    (fate, started.elapsed())
}

// ---------------------------------------------------------------- payloads

/// A trace request of `n` spans with ids `first..first+n`, each padded with a `pad`-byte attribute.
/// Length-delimited field `number` holding `payload`, as protobuf encodes it.
fn field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 11);
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

async fn held_bytes_back_to_zero(bridge: &BridgeProcess) {
    crate::common::held_bytes_back_to_zero(bridge.admin).await;
}

async fn count(bridge: &BridgeProcess, code: u16) -> f64 {
    bridge.metric("otlp_bridge_http_requests_total", &[&format!("code=\"{code}\"")]).await
}

// ================================================================ slowloris

#[tokio::test]
async fn slowloris_headers_are_cut_after_the_header_timeout() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--read-timeout", "1s"]).await;
    // Headers that never end: at one byte per 100 ms they would take a minute.
    let mut head = b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\n".to_vec();
    while head.len() < 600 {
        head.extend_from_slice(b"X-Slow: loris\r\n");
    }
    let head = Arc::new(head);
    let addr = bridge.addr;
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let head = Arc::clone(&head);
            tokio::spawn(
                async move { dribble(addr, &[], &head, Duration::from_millis(100), Duration::from_secs(30)).await },
            )
        })
        .collect();
    serves(&mut bridge, &backend, 1).await;
    let mut slowest = Duration::ZERO;
    for client in clients {
        let (fate, took) = client.await.unwrap();
        // hyper's header timeout closes without an answer; a 408 would be as good.
        assert!(matches!(fate, Fate::Cut | Fate::Answered(408)), "{fate:?} after {took:?}");
        slowest = slowest.max(took);
    }
    println!("adversarial [slowloris headers]: 20 dribbling clients cut, the last after {slowest:?}");
    serves(&mut bridge, &backend, 2).await;
    bridge.assert_peak_under("slowloris headers", NO_DATA_MIB);
}

#[tokio::test]
async fn slowloris_body_is_answered_408_after_the_read_timeout() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--read-timeout", "1s"]).await;
    let head = b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n";
    let addr = bridge.addr;
    let clients: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                // A body that would take 100 s.
                dribble(addr, head, &[0u8; 1000], Duration::from_millis(100), Duration::from_secs(30)).await
            })
        })
        .collect();
    serves(&mut bridge, &backend, 1).await;
    for client in clients {
        let (fate, took) = client.await.unwrap();
        assert!(matches!(fate, Fate::Answered(408)), "{fate:?} after {took:?}");
    }
    assert_eq!(count(&bridge, 408).await, 20.0, "every 408 is counted");
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 2).await;
    bridge.assert_peak_under("slowloris body", NO_DATA_MIB);
}

#[tokio::test]
async fn a_partial_request_line_is_cut_after_the_header_timeout() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--read-timeout", "1s", "--max-connections", "16"]).await;
    let addr = bridge.addr;
    // Sent at once, then nothing: the start of an HTTP/1.1 request line.
    let clients: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(async move {
                dribble(addr, b"POST /v1/traces HT", &[], Duration::ZERO, Duration::from_secs(20)).await
            })
        })
        .collect();
    for client in clients {
        let (fate, took) = client.await.unwrap();
        assert!(matches!(fate, Fate::Cut | Fate::Answered(408)), "{fate:?} after {took:?}");
    }
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("partial request lines", NO_DATA_MIB);
}

#[tokio::test]
async fn connections_that_send_nothing_are_cut_after_the_header_timeout() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--read-timeout", "1s", "--max-connections", "16"]).await;
    let addr = bridge.addr;
    // Half send nothing at all, half the first 16 of the 24 bytes of the HTTP/2 preface.
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let head: &'static [u8] = if i % 2 == 0 { b"" } else { b"PRI * HTTP/2.0\r\n" };
            tokio::spawn(async move { dribble(addr, head, &[], Duration::ZERO, Duration::from_secs(20)).await })
        })
        .collect();
    let mut open = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (fate, took) = client.await.unwrap();
        if !matches!(fate, Fate::Cut | Fate::Answered(408)) {
            open.push(format!("connection {i}: {fate:?} after {took:?}"));
        }
    }
    assert!(open.is_empty(), "{} of 16 silent connections not cut:\n{}", open.len(), open.join("\n"));
    // Had they stayed, these 16 would hold every slot of --max-connections for good.
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("silent connections", NO_DATA_MIB);
}

// ================================================================ connection cap

/// The soft limit on open files of this process (the bridge inherits it).
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).unwrap_or(1024)
}

/// How many connections the bridge closed for sending nothing within its header timeout (10 s).
async fn timed_out(bridge: &BridgeProcess) -> f64 {
    bridge.metric("otlp_bridge_connections_timed_out_total", &[r#"listener="otlp""#]).await
}

/// A bridge with `--max-connections` `cap`, `total` idle connections made to it, and those past the cap seen closed
/// and counted: the bridge and the connections it holds. `Err` (saying why) when the round proves nothing because
/// a held connection timed out before the end (a loaded machine took longer than the bridge's 10 s header timeout:
/// a freed slot lets a later connection in, or closes a held one among the refused).
async fn fill_past_the_cap(
    backend: &MockBackend,
    total: usize,
    cap: usize,
) -> Result<(BridgeProcess, Vec<TcpStream>), String> {
    let cap_flag = cap.to_string();
    let mut bridge = BridgeProcess::start(&backend.url(), &["--max-connections", &cap_flag]).await;
    let idle = bridge.memory();
    let mut sockets = Vec::with_capacity(total);
    for _ in 0..total {
        sockets.push(TcpStream::connect(bridge.addr).await.unwrap());
    }
    let refused = (total - cap) as f64;
    let seen = eventually("every connection past the cap counted", Duration::from_secs(60), || async {
        let metrics = bridge.metrics().await;
        let label = [r#"listener="otlp""#];
        let counted = sum_metric(&metrics, "otlp_bridge_connections_refused_total", &label);
        let timed_out = sum_metric(&metrics, "otlp_bridge_connections_timed_out_total", &label);
        if counted >= refused || timed_out > 0.0 {
            Ok(counted)
        } else {
            Err(format!("{counted} of {refused} refused"))
        }
    })
    .await;
    if timed_out(&bridge).await > 0.0 {
        return Err(format!("{seen} of {refused} refused when held connections began to time out"));
    }

    // Exactly the connections past the cap see their end, and at once (before any held one could time out).
    let closed: HashSet<usize> = {
        let mut ends: FuturesUnordered<_> = sockets
            .iter()
            .enumerate()
            .map(|(i, s)| async move {
                loop {
                    s.readable().await.unwrap();
                    match s.try_read(&mut [0u8; 16]) {
                        Ok(0) => return i,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return i,
                        other => panic!("connection {i}: unexpected {other:?}"),
                    }
                }
            })
            .collect();
        let mut closed = HashSet::new();
        let wait = async {
            while closed.len() < total - cap {
                closed.insert(ends.next().await.unwrap());
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait).await.expect("refused connections closed");
        closed
    };
    let open = bridge.metric("otlp_bridge_connections_open", &[]).await;
    let counted = bridge.metric("otlp_bridge_connections_refused_total", &[r#"listener="otlp""#]).await;
    let full = bridge.assert_peak_under("idle connections at the cap", NO_DATA_MIB);
    // While full, a new client is turned away.
    let url = bridge.url("/v1/traces");
    let turned_away =
        send(&process::client(), &url, &[PROTOBUF], spans(1, 1).encode_to_vec(), Duration::from_secs(10)).await;
    if timed_out(&bridge).await > 0.0 {
        return Err(format!("held connections timed out before the cap was checked ({open} open)"));
    }
    assert_eq!(closed.len(), total - cap);
    assert!(closed.iter().all(|i| *i >= cap), "only connections past the cap are closed");
    assert_eq!(counted, refused, "counted once each");
    assert_eq!(open, cap as f64);
    assert!(turned_away.is_err(), "full: {:?}", turned_away.map(|a| a.status));
    println!(
        "adversarial [idle connections]: {total} opened, {cap} held, {} closed at once; idle before: {idle}; \
         {:.1} KiB per held connection",
        total - cap,
        full.rss_kib.saturating_sub(idle.rss_kib) as f64 / cap as f64
    );
    let held = sockets.into_iter().enumerate().filter(|(i, _)| !closed.contains(i)).map(|(_, s)| s).collect();
    Ok((bridge, held))
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_counted() {
    // Each idle connection costs a descriptor here and one in the bridge; keep 256 spare for everything else.
    let total = 1500.min(open_files_limit().saturating_sub(256) as usize);
    let cap = total / 3;
    assert!(cap >= 50, "open files limit {} is too low for this test", open_files_limit());
    let backend = MockBackend::start().await;
    // The held connections are silent, so the bridge closes each 10 s after taking it: a round on a machine too
    // loaded to finish in that time proves nothing about the cap and is run again on a fresh bridge. A cap that
    // does not refuse fails every round (its extra connections are only ever closed by the timeout).
    let mut inconclusive = Vec::new();
    let (mut bridge, mut held) = loop {
        match fill_past_the_cap(&backend, total, cap).await {
            Ok(filled) => break filled,
            Err(why) if inconclusive.len() < 2 => inconclusive.push(why),
            Err(why) => panic!("no round finished before the held connections timed out: {inconclusive:?}, {why}"),
        }
    };
    if !inconclusive.is_empty() {
        println!("adversarial [idle connections]: rounds run again: {inconclusive:?}");
    }

    // Once some idle connections go, normal requests get through.
    let url = bridge.url("/v1/traces");
    let body = spans(1, 1).encode_to_vec();
    held.truncate(held.len() - 10);
    let client = process::client();
    let a = eventually("a slot freed", Duration::from_secs(30), || {
        send(&client, &url, &[PROTOBUF], body.clone(), Duration::from_secs(10))
    })
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(backend.span_ids().contains(&1u64.to_be_bytes().to_vec()));
    drop(held);
    serves(&mut bridge, &backend, 2).await;
    bridge.assert_peak_under("idle connections", NO_DATA_MIB);
}

// ================================================================ floods

#[tokio::test]
async fn pipelined_http1_flood_is_answered_in_order() {
    const N: u64 = 400;
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // Every tenth request goes to a wrong path (404, body unread): the ones behind it must still be answered.
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let body = spans(1000 + i, 1).encode_to_vec();
        let path = if i % 10 == 9 { "/v1/nope" } else { "/v1/traces" };
        expected.push(if i % 10 == 9 { 404 } else { 200 });
        wire.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        wire.extend_from_slice(&body);
    }
    let stream = TcpStream::connect(bridge.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Written back to back, read at the same time (else both sides' buffers fill and neither moves).
    let write = tokio::spawn(async move {
        writer.write_all(&wire).await.unwrap();
        writer
    });
    let read = async {
        let mut buf = BytesMut::new();
        let mut statuses = Vec::new();
        for _ in 0..N {
            match read_response(&mut reader, &mut buf).await {
                Ok(Some(answer)) => statuses.push(answer.status),
                other => panic!("after {} answers: {other:?}", statuses.len()),
            }
        }
        statuses
    };
    let statuses = tokio::time::timeout(Duration::from_secs(120), read).await.expect("all answered within 120 s");
    let _writer = write.await.unwrap();
    assert_eq!(statuses, expected, "every pipelined request answered, in order");
    let acked: HashSet<u64> = backend.span_ids().iter().map(|id| span_number(id)).collect();
    let sent: HashSet<u64> = (0..N).filter(|i| i % 10 != 9).map(|i| 1000 + i).collect();
    assert!(sent.is_subset(&acked), "every span answered 200 was acknowledged");
    assert_eq!(count(&bridge, 200).await, sent.len() as f64);
    assert_eq!(count(&bridge, 404).await, (N / 10) as f64);
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("pipelined flood", NO_DATA_MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_multiplexed_flood_is_answered() {
    const STREAMS: u64 = 2000;
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    let stream = TcpStream::connect(bridge.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let url = bridge.url("/v1/traces");
    let mut streams: FuturesUnordered<_> = (0..STREAMS)
        .map(|i| {
            let mut sender = sender.clone();
            let request = http::Request::post(&url)
                .header(PROTOBUF.0, PROTOBUF.1)
                .body(Full::new(Bytes::from(spans(10_000 + i, 1).encode_to_vec())))
                .unwrap();
            async move {
                sender.ready().await.map_err(|e| e.to_string())?;
                let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(response.status().as_u16())
            }
        })
        .collect();
    let all = async {
        let mut statuses = Vec::new();
        while let Some(result) = streams.next().await {
            statuses.push(result.expect("stream answered"));
        }
        statuses
    };
    let statuses = tokio::time::timeout(Duration::from_secs(120), all).await.expect("all streams within 120 s");
    assert_eq!(statuses.len() as u64, STREAMS);
    assert!(
        statuses.iter().all(|&s| s == 200),
        "{:?}",
        statuses.iter().filter(|&&s| s != 200).take(5).collect::<Vec<_>>()
    );
    let acked: HashSet<u64> = backend.span_ids().iter().map(|id| span_number(id)).collect();
    assert!((10_000..10_000 + STREAMS).all(|i| acked.contains(&i)), "every span acknowledged");
    assert_eq!(count(&bridge, 200).await, STREAMS as f64);
    println!("adversarial [h2c flood]: {STREAMS} streams in {} backend calls", backend.calls());
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("h2c flood", NO_DATA_MIB);
}

// ================================================================ bombs

#[tokio::test]
async fn gzip_bomb_is_413() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // 1 GiB of zeros in about 1 MiB: 1024 gzip members (multi-member gzip is valid and inflated as one stream).
    let member = crate::common::gzip(&vec![0u8; 1 << 20]);
    let bomb = member.repeat(1024);
    let a = post_pb(&bridge, "/v1/traces", &[("content-encoding", "gzip")], bomb).await;
    assert_eq!(a.status, 413, "{}", a.text());
    // Either limit may stop it first: the inflated body limit, or the memory budget (equal to it by default).
    println!("adversarial [gzip bomb]: {}", a.status_message().1);
    assert_eq!(count(&bridge, 413).await, 1.0);
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("gzip bomb", ONE_FULL_BODY_MIB);
}

#[tokio::test]
async fn zstd_bomb_is_413() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // 1 GiB of zeros in a few KiB: 64 frames of 16 MiB each (a zstd stream may hold many frames).
    let frame = zstd::bulk::compress(&vec![0u8; 16 << 20], 3).unwrap();
    let bomb = frame.repeat(64);
    let a = post_pb(&bridge, "/v1/logs", &[("content-encoding", "zstd")], bomb).await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(count(&bridge, 413).await, 1.0);
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("zstd bomb", ONE_FULL_BODY_MIB);
}

#[tokio::test]
async fn zstd_frame_asking_for_a_2_gib_window_is_400() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // Magic, a descriptor without content size, Window_Descriptor 2^(10+21) = 2 GiB, one raw last block of 5 bytes.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
    frame.extend_from_slice(&[(5 << 3) | 1, 0, 0]);
    frame.extend_from_slice(b"hello");
    let a = post_pb(&bridge, "/v1/traces", &[("content-encoding", "zstd")], frame).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.status_message().1.contains("zstd"), "{}", a.status_message().1);
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("zstd 2 GiB window", NO_DATA_MIB);
}

// ================================================================ hostile JSON

#[tokio::test]
async fn json_nested_a_million_deep_in_an_unknown_field_is_answered_with_bounded_memory() {
    const DEPTH: usize = 1_000_000;
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // Arrays in an unknown field (2 MB). OTLP/JSON says unknown fields are ignored, and serde_json skips a value
    // without recursion (an explicit one-byte-per-level stack), so accepting the (empty) request is as right as a
    // 400 for a depth limit. A crash, a hang or a memory blow-up is not.
    let body = format!("{{\"resourceSpans\":[],\"x\":{}{}}}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let a = post_json(&bridge, body).await;
    assert!(a.status == 200 || a.status == 400, "{} {}", a.status, a.text());
    println!("adversarial [json 1M deep, unknown field]: {} {}", a.status, a.text());
    assert_eq!(backend.calls(), 0, "nothing to forward");
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("json 1M deep, unknown field", NO_DATA_MIB);
}

#[tokio::test]
async fn json_nested_a_million_deep_in_attribute_values_is_400() {
    const DEPTH: usize = 1_000_000;
    let backend = MockBackend::start().await;
    // The 28 MB body needs 3x its size in the memory budget while it is decoded (the default budget is 64 MiB).
    let mut bridge = BridgeProcess::start(&backend.url(), &["--memory-limit-mib", "96"]).await;
    // AnyValue arrays inside an attribute: the deepest structure OTLP has.
    let mut body = String::with_capacity(DEPTH * 28 + 200);
    body.push_str("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":");
    for _ in 0..DEPTH {
        body.push_str("{\"arrayValue\":{\"values\":[");
    }
    for _ in 0..DEPTH {
        body.push_str("]}}");
    }
    body.push_str("}]}}]}");
    let a = post_json(&bridge, body).await;
    assert_eq!(a.status, 400, "{}", a.text());
    println!("adversarial [json 1M deep, arrayValue]: {}", a.status_message().1);
    assert_eq!(count(&bridge, 400).await, 1.0);
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("json 1M deep, arrayValue", ONE_FULL_BODY_MIB);
}

/// One span with `n` attributes `{"key":""}` in OTLP/JSON.
fn json_with_empty_attributes(n: usize) -> String {
    let mut body = String::with_capacity(n * 11 + 300);
    body.push_str(
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\
         \"spanId\":\"0000000000000001\",\"name\":\"many\",\"attributes\":[",
    );
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"key\":\"\"}");
    }
    body.push_str("]}]}]}]}");
    body
}

#[tokio::test]
async fn a_million_empty_named_json_attributes_are_accepted_with_bounded_memory() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--memory-limit-mib", "64"]).await;
    let body = json_with_empty_attributes(1_000_000); // 11 MB
    let a = post_json(&bridge, body).await;
    // OTLP does not forbid an empty key (the Collector accepts it too), so this is valid data: 200.
    assert_eq!(a.status, 200, "{}", a.text());
    let spans = backend.traces();
    assert_eq!(spans[0].resource_spans[0].scope_spans[0].spans[0].attributes.len(), 1_000_000);
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("1M empty JSON attributes", ONE_FULL_BODY_MIB);
}

#[tokio::test]
async fn json_decoding_stays_within_the_memory_limit() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // 21 MB: the largest body of this shape whose 3x reservation still fits the default 64 MiB budget.
    let body = json_with_empty_attributes(1_900_000);
    let a = post_json(&bridge, body).await;
    assert!(a.status == 200 || a.status == 503 || a.status == 413, "{} {}", a.status, a.text());
    held_bytes_back_to_zero(&bridge).await;
    bridge.assert_peak_under("1.9M empty JSON attributes", ONE_FULL_BODY_MIB);
}

#[tokio::test]
async fn a_million_empty_named_protobuf_attributes_are_accepted_with_bounded_memory() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    // Span { name: "many", attributes (field 9): 1M empty KeyValues, 2 bytes each }.
    let mut span = field(5, b"many");
    for _ in 0..1_000_000 {
        span.extend_from_slice(&field(9, b""));
    }
    let body = field(1, &field(2, &field(2, &span)));
    let a = post_pb(&bridge, "/v1/traces", &[], body).await;
    assert_eq!(a.status, 200, "{}", a.text());
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("1M empty protobuf attributes", NO_DATA_MIB);
}

// ================================================================ hostile protobuf

#[tokio::test]
async fn protobuf_lengths_claiming_2_gib_are_400() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    let two_gib = |tag: u8| {
        let mut out = vec![tag];
        prost::encoding::encode_varint(1 << 31, &mut out);
        out.extend_from_slice(b"abc");
        out
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("resource_spans claims 2 GiB", two_gib(0x0a)),
        // A valid frame around a span whose name (field 5) claims 2 GiB.
        ("span name claims 2 GiB", field(1, &field(2, &field(2, &two_gib(0x2a))))),
        ("a length of 2^64-1", vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]),
    ];
    for (what, body) in &cases {
        let a = post_pb(&bridge, "/v1/traces", &[], body.clone()).await;
        assert_eq!(a.status, 400, "{what}: {}", a.text());
        println!("adversarial [{what}]: {}", a.status_message().1);
    }
    assert_eq!(count(&bridge, 400).await, cases.len() as f64);
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("2 GiB length fields", NO_DATA_MIB);
}

#[tokio::test]
async fn content_length_claiming_2_gib_is_413_at_once() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    let mut stream = TcpStream::connect(bridge.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\nContent-Length: 2147483648\r\n\r\nabc")
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream, &mut BytesMut::new()))
        .await
        .expect("answered without waiting for the body");
    assert!(matches!(answer, Ok(Some(RawResponse { status: 413, .. }))), "{answer:?}");
    assert_eq!(count(&bridge, 413).await, 1.0);
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("Content-Length 2 GiB", NO_DATA_MIB);
}

// ================================================================ clients that go away

#[tokio::test]
async fn a_client_gone_mid_body_releases_its_memory() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--memory-limit-mib", "64"]).await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(bridge.addr).await.unwrap();
        stream
            .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\nContent-Length: 8388608\r\n\r\n")
            .await
            .unwrap();
        stream.write_all(&vec![0x0a; 1 << 20]).await.unwrap();
        streams.push(stream);
    }
    // The 1 MiB each has sent so far is reserved (not the declared 8 MiB)...
    let held =
        bridge.wait_metric("otlp_bridge_memory_held_bytes", &[], "4 x 1 MiB reserved", |v| v >= (4 * MIB) as f64).await;
    assert!(held <= (8 * MIB) as f64, "reserved as bytes arrive, about what was sent: {held}");
    // ...and released when their clients vanish mid-body.
    drop(streams);
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_peak_under("client gone mid-body", NO_DATA_MIB);
}

#[tokio::test]
async fn a_client_gone_while_its_export_hangs_releases_its_memory_when_the_export_ends() {
    let backend = MockBackend::start().await;
    backend.script([Action::Hang]);
    let mut bridge =
        BridgeProcess::start(&backend.url(), &["--export-timeout", "2s", "--retry-max-elapsed", "3s"]).await;
    let body = padded_spans(1, 1000, 1000).encode_to_vec(); // ~1 MiB
    let mut stream = TcpStream::connect(bridge.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    backend.wait_calls(1).await;
    assert!(bridge.metric("otlp_bridge_memory_held_bytes", &[]).await >= body.len() as f64, "held while exporting");
    drop(stream);
    // The data stays accounted for until the export is over (the retry delivers it), then it is released.
    held_bytes_back_to_zero(&bridge).await;
    let acked: HashSet<u64> = backend.span_ids().iter().map(|id| span_number(id)).collect();
    assert!((1..1001).all(|i| acked.contains(&i)), "the retry delivered the data of the client that left");
    serves(&mut bridge, &backend, 5000).await;
    bridge.assert_peak_under("client gone during export", NO_DATA_MIB);
}

// ================================================================ issue 4: a stalled backend under load

/// A TCP relay in front of a backend that can be killed: its listener and every relayed connection close at once,
/// as when a backend process dies.
struct KillableProxy {
    addr: SocketAddr,
    kill: tokio::sync::watch::Sender<bool>,
}

impl KillableProxy {
    async fn start(target: SocketAddr) -> KillableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (kill, killed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let mut stop = killed.clone();
                let (mut inbound, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    _ = stop.wait_for(|k| *k) => return,
                };
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = stop.wait_for(|k| *k) => {}
                    }
                });
            }
        });
        KillableProxy { addr, kill }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn kill(&self) {
        self.kill.send_replace(true);
    }
}

/// Span ids the backend acknowledged.
fn acked(backend: &MockBackend) -> HashSet<u64> {
    backend.span_ids().iter().map(|id| span_number(id)).collect()
}

/// Panics if any request answered 200 has a span the backend did not acknowledge.
fn assert_nothing_answered_200_is_lost(outcomes: &[Outcome], acked: &HashSet<u64>) -> usize {
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == Ok(200)).collect();
    for o in &ok {
        assert!((o.first..o.first + o.n).all(|id| acked.contains(&id)), "request {:#x} answered 200 but lost", o.first);
    }
    ok.len()
}

/// Issue 4's stalled backend: `--memory-limit-mib 32`, a backend that never answers, 32 clients posting ~1.1 MiB
/// requests for `stall`. Checks the memory bound and the answers so far, and returns everything still running.
struct Stalled {
    backend: MockBackend,
    bridge: BridgeProcess,
    load: Load,
    sampler: RssSampler,
    idle: Memory,
    stalled: Memory,
    refused_by_memory: f64,
}

const STALL_CLIENTS: u64 = 32;
/// Retry budget 2 s + one 1 s attempt + queueing behind the 4 export slots: 15 s is a generous "not hung".
const STALL_ANSWER_WITHIN: Duration = Duration::from_secs(15);

async fn stall_under_load(stall: Duration) -> Stalled {
    const SPANS: u64 = 1000; // with a 1000-byte attribute each: ~1.1 MiB per request
    let backend = MockBackend::start().await;
    backend.always(Action::Hang);
    let flags = ["--memory-limit-mib", "32", "--retry-max-elapsed", "2s", "--export-timeout", "1s"];
    let mut bridge = BridgeProcess::start(&backend.url(), &flags).await;
    let idle = bridge.memory();
    let sampler = RssSampler::start(bridge.pid());
    let mut load = Load::start(
        bridge.url("/v1/traces"),
        Shape { clients: STALL_CLIENTS, spans: SPANS, pad: 1000, pace: Duration::ZERO },
    )
    .await;
    load.run_for(stall).await;
    println!(
        "adversarial [stalled backend]: VmRSS MiB, highest per second: {:?}",
        sampler.max_mib_per(Duration::from_secs(1))
    );
    let stalled = bridge.assert_peak_under("stalled backend", STALLED_MIB);
    let refused_by_memory = bridge.metric("otlp_bridge_memory_refused_requests_total", &[]).await;
    let held = bridge.metric("otlp_bridge_memory_held_bytes", &[]).await;
    assert!(held <= (32 * MIB) as f64, "held {held} within the limit");
    assert!(refused_by_memory > 0.0, "the memory limit refused requests");
    assert_eq!(load.count(|o| o.status == Ok(200)), 0, "nothing answered 200 while the backend acknowledges nothing");
    // So far, every request was answered in time with a retryable refusal. A refused HTTP/1.1 client still writing
    // its body may see the connection close instead of its 503 (`a_refusal_reaches_a_client_still_sending_its_body`):
    // allowed here, as it is no hang.
    for o in &load.all {
        match &o.status {
            Ok(429 | 503) => assert!(o.retry_after.is_some(), "request {:#x}: 503 without Retry-After", o.first),
            Err(e) if !e.contains("no answer within") => {}
            other => panic!("request {:#x}: {other:?} {} after {:?}", o.first, o.message, o.took),
        }
        assert!(o.took < STALL_ANSWER_WITHIN, "request {:#x} took {:?}", o.first, o.took);
    }
    Stalled { backend, bridge, load, sampler, idle, stalled, refused_by_memory }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_backend_under_load_keeps_memory_bounded_and_answers_503() {
    let Stalled { backend, mut bridge, mut load, sampler, idle, stalled, refused_by_memory } =
        stall_under_load(Duration::from_secs(10)).await;

    // The backend recovers: a round of requests succeeds again, and everything answered 200 arrived.
    backend.always(Action::Ok(None));
    load.until_ok(STALL_CLIENTS as usize, Duration::from_secs(60)).await;
    let all = load.finish().await;
    let mut cut = 0;
    for o in &all {
        match &o.status {
            Ok(200 | 429 | 503) => {}
            Err(e) if !e.contains("no answer within") => cut += 1,
            other => panic!("request {:#x}: {other:?} {} after {:?}", o.first, o.message, o.took),
        }
        assert!(o.took < STALL_ANSWER_WITHIN, "request {:#x} took {:?}", o.first, o.took);
    }
    let ok = assert_nothing_answered_200_is_lost(&all, &acked(&backend));
    held_bytes_back_to_zero(&bridge).await;
    let end = bridge.assert_peak_under("stalled backend, then recovery", RECOVERY_MIB);
    let slowest = all.iter().map(|o| o.took).max().unwrap_or_default();
    let status_count = |code: u16| all.iter().filter(|o| o.status == Ok(code)).count();
    println!(
        "adversarial [stalled backend]: {} requests of ~1.1 MiB from {STALL_CLIENTS} clients: {ok} x 200 (after the \
         recovery), {} x 503, {} x 429, {cut} x connection cut while sending; slowest answer {slowest:?}; \
         {refused_by_memory} refused by the memory limit while stalled\n  idle: {idle}\n  after the 10 s stall: \
         {stalled}\n  after the recovery: {end}\n  VmRSS MiB, highest per second, whole run: {:?}",
        all.len(),
        status_count(503),
        status_count(429),
        sampler.max_mib_per(Duration::from_secs(1)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes 60 s; .ci/run runs it against the release binary (ADVERSARIAL_BRIDGE_BIN)"]
async fn a_sustained_stall_stays_under_the_issue_4_bound() {
    let Stalled { bridge, load, .. } = stall_under_load(Duration::from_secs(60)).await;
    let _ = load.finish().await;
    drop(bridge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_backend_mid_stream_loses_nothing_answered_200() {
    const CLIENTS: u64 = 16;
    const SPANS: u64 = 100; // ~110 KiB per request
    let backend = MockBackend::start().await;
    // Slow acknowledgements keep exports in flight when the backend dies.
    backend.always(Action::Delay(Duration::from_millis(200), Box::new(Action::Ok(None))));
    let proxy = KillableProxy::start(backend.addr).await;
    let flags = ["--retry-max-elapsed", "2s", "--export-timeout", "1s"];
    let mut bridge = BridgeProcess::start(&proxy.url(), &flags).await;

    let mut load = Load::start(
        bridge.url("/v1/traces"),
        Shape { clients: CLIENTS, spans: SPANS, pad: 1000, pace: Duration::ZERO },
    )
    .await;
    load.until_ok(2 * CLIENTS as usize, Duration::from_secs(60)).await;
    proxy.kill();
    let killed_at = Instant::now();
    // Past the retry budget (2 s) plus an attempt (1 s), every request in flight at the kill has been answered.
    load.run_for(Duration::from_secs(5)).await;
    let all = load.finish().await;

    let acked = acked(&backend);
    let ok = assert_nothing_answered_200_is_lost(&all, &acked);
    let after_kill: Vec<&Outcome> = all.iter().filter(|o| o.answered_at > killed_at + Duration::from_secs(1)).collect();
    assert!(after_kill.iter().any(|o| o.status == Ok(503)), "the dead backend shows as 503");
    assert!(all.iter().all(|o| o.took < Duration::from_secs(15)), "every request answered within 15 s");
    let mut statuses: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &all {
        *statuses.entry(format!("{:?}", o.status)).or_default() += 1;
    }
    println!(
        "adversarial [backend killed mid-stream]: {} requests, {ok} answered 200, every one of them acknowledged \
         ({} spans acknowledged in all); answers: {statuses:?}",
        all.len(),
        acked.len()
    );
    held_bytes_back_to_zero(&bridge).await;
    bridge.assert_peak_under("backend killed mid-stream", NO_DATA_MIB);
}

#[tokio::test]
async fn a_backend_dying_mid_export_is_retried_and_answered_503() {
    let backend = MockBackend::start().await;
    backend.always(Action::Delay(Duration::from_secs(30), Box::new(Action::Ok(None))));
    let proxy = KillableProxy::start(backend.addr).await;
    let flags = ["--retry-max-elapsed", "2s", "--export-timeout", "5s"];
    let mut bridge = BridgeProcess::start(&proxy.url(), &flags).await;
    let url = bridge.url("/v1/traces");
    let client = tokio::spawn(async move {
        send(&process::client(), &url, &[PROTOBUF], spans(1, 10).encode_to_vec(), Duration::from_secs(30)).await
    });
    backend.wait_calls(1).await;
    proxy.kill();
    let a = client.await.unwrap().expect("an answer");
    // UNAVAILABLE is what a gRPC client reports for a lost connection; OTLP clients retry 503, never 500.
    assert_eq!(a.status, 503, "{}", a.text());
    assert!(a.header("retry-after").is_some());
    bridge.assert_alive();
}

#[tokio::test]
async fn a_refusal_reaches_a_client_still_sending_its_body() {
    let backend = MockBackend::start().await;
    backend.always(Action::Hang);
    let flags = ["--memory-limit-mib", "16", "--export-timeout", "30s", "--retry-max-elapsed", "30s"];
    let mut bridge = BridgeProcess::start(&backend.url(), &flags).await;
    let url = bridge.url("/v1/traces");
    // Hold most of the 16 MiB budget with a ~10 MiB request the backend never answers.
    let holder = {
        let url = url.clone();
        let body = padded_spans(1, 9000, 1000).encode_to_vec();
        tokio::spawn(async move { send(&process::client(), &url, &[PROTOBUF], body, Duration::from_secs(60)).await })
    };
    backend.wait_calls(1).await;
    // ~8 MiB: over what is left of the budget, and more than the socket buffers take at once, so the client is
    // still writing when the refusal comes.
    let body = Bytes::from(padded_spans(100_000, 7500, 1000).encode_to_vec());
    let mut cut = Vec::new();
    for i in 0..10 {
        match send(&process::client(), &url, &[PROTOBUF], body.clone(), Duration::from_secs(30)).await {
            Ok(a) => assert_eq!(a.status, 503, "{}", a.text()),
            Err(e) => cut.push(format!("request {i}: {e}")),
        }
    }
    holder.abort();
    bridge.assert_alive();
    assert!(cut.is_empty(), "{} of 10 refused clients never saw their 503:\n{}", cut.len(), cut.join("\n"));
}

#[tokio::test]
async fn an_idle_bridge_stays_small() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    serves(&mut bridge, &backend, 1).await;
    bridge.assert_alive();
    let m = bridge.memory();
    println!("adversarial [idle, after one request]: {m} [{}]", bridge_binary().display());
    let bound = IDLE_MIB + build_extra_mib();
    assert!(m.rss_kib < bound * 1024, "idle RSS {m} over {bound} MiB");
}

// ================================================================ issue 9: reservations follow what was sent

#[tokio::test]
async fn idle_bodies_declaring_the_whole_budget_do_not_starve_other_clients() {
    let backend = MockBackend::start().await;
    // The default 20 MiB budget; --read-timeout 3s makes the body idle timeout 3 s.
    let mut bridge = BridgeProcess::start(&backend.url(), &["--read-timeout", "3s"]).await;
    let head = b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\nContent-Length: 10485760\r\n\r\n";
    // Two were enough to shut everyone out; forty show the bound is per request, not luck.
    let addr = bridge.addr;
    let idle: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(async move { dribble(addr, head, b"", Duration::from_secs(1), Duration::from_secs(20)).await })
        })
        .collect();
    bridge.wait_metric("otlp_bridge_connections_open", &[], "40 idle uploads open", |v| v >= 40.0).await;
    let held = bridge.metric("otlp_bridge_memory_held_bytes", &[]).await;
    assert!(held <= (40 * 64 * 1024) as f64, "idle uploads hold at most 64 KiB each: {held}");
    for id in 1..=5 {
        serves(&mut bridge, &backend, id).await;
    }
    // A slow sender that keeps sending holds only what it sent, and is not cut while it makes progress.
    let slow = tokio::spawn(async move {
        dribble(addr, head, &[0x0a; 20], Duration::from_millis(100), Duration::from_secs(20)).await
    });
    serves(&mut bridge, &backend, 6).await;
    for client in idle {
        let (fate, took) = client.await.unwrap();
        assert!(matches!(fate, Fate::Answered(408)), "an upload that sends nothing is answered 408: {fate:?}");
        assert!(took < Duration::from_secs(15), "within about the idle timeout: {took:?}");
    }
    let (fate, _) = slow.await.unwrap();
    assert!(matches!(fate, Fate::Answered(408)), "the dribbler stops sending after 20 bytes, then 408: {fate:?}");
    held_bytes_back_to_zero(&bridge).await;
    serves(&mut bridge, &backend, 7).await;
}

// ================================================================ issue 9: both ports bounded

/// Opens `n` connections to `addr` that each send half a request line and then nothing.
async fn half_requests(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        // Past a cap the server closes at once: connecting still succeeds (the kernel accepts), writing may not.
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            let _ = stream.write_all(b"GET /metr").await;
            held.push(stream);
        }
    }
    held
}

#[tokio::test]
async fn a_flood_of_the_admin_port_leaves_otlp_usable_and_ends_at_the_header_timeout() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &[]).await;
    let flood = half_requests(bridge.admin, 600).await;
    // OTLP clients are untouched while the admin port is flooded.
    for id in 1..=3 {
        serves(&mut bridge, &backend, id).await;
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", bridge.pid())).unwrap().count();
    assert!(fds < 300, "the admin port holds a bounded number of connections, not 600: {fds} open files");
    // The half requests are cut at the admin header timeout, after which /health answers again.
    eventually("/health recovered after the flood", Duration::from_secs(20), || async {
        match tokio::time::timeout(Duration::from_secs(2), raw::get(bridge.admin, "/health")).await {
            Ok(Ok((200, _))) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The flood is counted against the admin port, not as OTLP clients turned away.
    let metrics = bridge.metrics().await;
    let admin_refused = sum_metric(&metrics, "otlp_bridge_connections_refused_total", &[r#"listener="admin""#]);
    let otlp_refused = sum_metric(&metrics, "otlp_bridge_connections_refused_total", &[r#"listener="otlp""#]);
    assert!(admin_refused >= 1.0 && otlp_refused == 0.0, "admin {admin_refused}, otlp {otlp_refused}");
    drop(flood);
}

#[tokio::test]
async fn a_flood_of_the_otlp_port_leaves_the_admin_port_usable() {
    let backend = MockBackend::start().await;
    let mut bridge = BridgeProcess::start(&backend.url(), &["--max-connections", "100"]).await;
    let flood = half_requests(bridge.addr, 600).await;
    for _ in 0..3 {
        let health = tokio::time::timeout(Duration::from_secs(5), raw::get(bridge.admin, "/health")).await;
        assert!(matches!(health, Ok(Ok((200, _)))), "/health during an OTLP flood: {health:?}");
        let metrics = bridge.metrics().await;
        assert!(metrics.contains("otlp_bridge_connections_open"));
    }
    drop(flood);
    bridge.assert_alive();
}
