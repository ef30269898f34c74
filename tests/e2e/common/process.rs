//! The `otlp-bridge` binary as a child process that a test can SIGKILL and start again on the same ports and
//! flags, with its memory read from `/proc/PID/status`.
//!
//! The one launcher of the binary for every test file that needs a process (see tests/README.md): free ports, a
//! clean environment (no `OTLP_BRIDGE_*`, `OTEL_*` or `RUST_*` of the developer's), stderr and stdout kept in files
//! under the target dir (removed unless the test failed), ready once `/health` answers.
//!
//! The binary is the one cargo builds for the test (debug under `cargo test`); `BRIDGE_BIN` points at another
//! build, e.g. `target/release/otlp-bridge` (what `.ci/run` does for the long tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::Answer;

/// The binary under test (`ADVERSARIAL_BRIDGE_BIN`, the older name, is still honoured).
pub fn bridge_binary() -> PathBuf {
    std::env::var_os("BRIDGE_BIN")
        .or_else(|| std::env::var_os("ADVERSARIAL_BRIDGE_BIN"))
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_otlp-bridge").into())
}

/// Where the bridge listens.
#[derive(Debug, Clone, Copy)]
pub enum Ports {
    /// `--listen` and `--metrics-listen` on free 127.0.0.1 ports, added to the arguments.
    Free,
    /// The arguments say where; these are the addresses to reach it at.
    Given {
        /// The OTLP/HTTP address.
        addr: SocketAddr,
        /// The admin address.
        admin: SocketAddr,
    },
}

/// Whether the binary under test is a debug build (which keeps about 10 MiB more resident than a release one).
pub fn is_debug_build() -> bool {
    bridge_binary().components().any(|c| c.as_os_str() == "debug")
}

/// The `listen` and `admin` addresses of a start-up line, in text (`listen=127.0.0.1:4318`) or JSON
/// (`"listen":"127.0.0.1:4318"`) logs.
pub fn bound_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let field = |name: &str| -> Option<SocketAddr> {
        let at = line.find(&format!("{name}=")).map(|i| i + name.len() + 1).or_else(|| {
            let quoted = format!("\"{name}\":\"");
            line.find(&quoted).map(|i| i + quoted.len())
        })?;
        let value: String = line[at..].chars().take_while(|c| !matches!(c, ' ' | '"' | ',' | '}')).collect();
        value.parse().ok()
    };
    Some((field("listen")?, field("admin")?))
}

/// A 127.0.0.1 port nobody listens on now (bound and let go): for a backend that refuses connections, or a flag
/// value a test never binds.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A running `otlp-bridge` binary; killed when dropped (its log is printed if the test failed).
pub struct BridgeProcess {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    args: Vec<String>,
    env: Vec<(String, String)>,
    own_ports: bool,
    log: PathBuf,
    stdout: PathBuf,
    /// Logs of earlier runs (before a kill), kept for the failure report.
    earlier_logs: Vec<PathBuf>,
}

impl BridgeProcess {
    /// Starts the binary with `args` (plus `--listen` and `--metrics-listen` on port 0: the tests read the bound
    /// addresses from the start-up line) and waits until it answers `/health`.
    pub async fn start(args: &[&str]) -> BridgeProcess {
        Self::start_with(args, &[], Ports::Free).await
    }

    /// [`BridgeProcess::start`] with environment variables `env` (set after the clean-up, so `RUST_LOG` may be
    /// given; the start-up line is logged whatever it says) and the ports `ports`.
    pub async fn start_with(args: &[&str], env: &[(&str, &str)], ports: Ports) -> BridgeProcess {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let own_ports = matches!(ports, Ports::Given { .. });
        // Port 0 for a free port: the binary binds it and says which in its start-up line, so no port is chosen by
        // the test and released for a child to bind (another process could take it in between).
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let (addr, admin) = match ports {
            Ports::Free => (any, any),
            Ports::Given { addr, admin } => (addr, admin),
        };
        let (child, log, stdout) = Self::spawn(addr, admin, &args, &env, own_ports).unwrap_or_else(|e| panic!("{e}"));
        let mut bridge = BridgeProcess { child, addr, admin, args, env, own_ports, log, stdout, earlier_logs: vec![] };
        if !own_ports {
            let line = bridge.until_started().await;
            (bridge.addr, bridge.admin) = bound_addresses(&line)
                .unwrap_or_else(|| panic!("no listen= and admin= addresses in the start-up line: {line}"));
        }
        if let Err(e) = bridge.wait_healthy(Duration::from_secs(30)).await {
            panic!("the bridge did not start: {e}");
        }
        bridge
    }

    /// The start-up line ("otlp-bridge ready", or "otlp-bridge listening; backend not reachable yet"); fails if the
    /// process exits first.
    async fn until_started(&mut self) -> String {
        let mut exited = None;
        super::eventually("the start-up line", Duration::from_secs(30), || {
            if exited.is_none() {
                exited = self.child.try_wait().ok().flatten();
            }
            let log = self.log();
            let found = log.lines().find(|l| l.contains("otlp-bridge ready") || l.contains("otlp-bridge listening"));
            let result = match (found, exited) {
                (Some(line), _) => Ok(line.to_string()),
                (None, Some(status)) => panic!("the bridge exited with {status}: {log}"),
                (None, None) => Err(log.clone()),
            };
            async move { result }
        })
        .await
    }

    fn spawn(
        addr: SocketAddr,
        admin: SocketAddr,
        args: &[String],
        env: &[(String, String)],
        own_ports: bool,
    ) -> Result<(Child, PathBuf, PathBuf), String> {
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let file = |ext: &str| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bridge-{}-{n}.{ext}", std::process::id()))
        };
        let (log, stdout) = (file("log"), file("out"));
        let mut command = Command::new(bridge_binary());
        for (key, _) in std::env::vars_os() {
            let text = key.to_string_lossy();
            if text.starts_with("OTLP_BRIDGE_") || text.starts_with("OTEL_") || text.starts_with("RUST_") {
                command.env_remove(&key);
            }
        }
        if !own_ports {
            command.args(["--listen", &addr.to_string(), "--metrics-listen", &admin.to_string()]);
        }
        command.args(args).env("RUST_LOG", "info").envs(env.iter().map(|(k, v)| (k, v)));
        // Whatever level a test asks for, the start-up line (which names the bound addresses) is logged.
        if let Some((_, level)) = env.iter().find(|(k, _)| k == "RUST_LOG") {
            command.env("RUST_LOG", format!("{level},otlp_bridge::app=info"));
        }
        command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).map_err(|e| e.to_string())?)
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
        let child = command.spawn().map_err(|e| format!("spawn {}: {e}", bridge_binary().display()))?;
        Ok((child, log, stdout))
    }

    /// Starts the binary again, after [`BridgeProcess::kill`], with the same flags on the same ports, without
    /// waiting for it: clients see it come up as they would in production.
    pub fn respawn(&mut self) {
        assert!(self.child.try_wait().unwrap().is_some(), "respawn a bridge that has ended");
        let (child, log, stdout) = Self::spawn(self.addr, self.admin, &self.args, &self.env, self.own_ports).unwrap();
        self.earlier_logs.push(std::mem::replace(&mut self.log, log));
        self.earlier_logs.push(std::mem::replace(&mut self.stdout, stdout));
        self.child = child;
    }

    /// Polls `/health` (a child process gives no other sign of readiness) until it answers 200; `Err` if the process
    /// exits first, a failure after `limit`.
    pub async fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let (client, url) = (client(), format!("http://{}/health", self.admin));
        super::eventually("a /health answer", limit, || {
            let exited =
                self.child.try_wait().unwrap().map(|status| format!("exited with {status}: {}", self.log_tail(30)));
            let health =
                tokio::time::timeout(Duration::from_secs(2), try_request(&client, "GET", &url, &[], Bytes::new()));
            async move {
                if let Some(exited) = exited {
                    return Ok(Err(exited));
                }
                match health.await {
                    Ok(Ok(answer)) if answer.status == 200 => Ok(Ok(())),
                    Ok(Ok(answer)) => Err(format!("status {}", answer.status)),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("no answer within 2 s".to_string()),
                }
            }
        })
        .await
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Panics (with the log) if the process has ended.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the bridge died ({status}); its log ends with:\n{}", self.log_tail(30));
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// This run's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// This run's stdout so far (the debug backend writes there).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The log lines from the first one on, up to and including the first containing `needle`; polls the log
    /// (bounded: 30 s), failing with what it saw.
    pub async fn until(&self, needle: &str) -> Vec<String> {
        super::eventually(&format!("a log line with {needle:?}"), Duration::from_secs(30), || async {
            let text = self.log();
            let lines: Vec<&str> = text.lines().collect();
            match lines.iter().position(|l| l.contains(needle)) {
                Some(at) => Ok(lines[..=at].iter().map(|l| l.to_string()).collect()),
                None => Err(text.clone()),
            }
        })
        .await
    }

    /// SIGTERM, as a container runtime stops the bridge, and waits (bounded) for the exit without blocking the
    /// runtime.
    pub async fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM");
        super::eventually("the exit after SIGTERM", limit, || {
            let status = self.child.try_wait().unwrap().ok_or("still running");
            async move { status }
        })
        .await
    }

    /// Waits (bounded by `limit`) until the metric's value satisfies `pred`; polls, as a metric is only seen by
    /// asking.
    pub async fn wait_metric(
        &self,
        name: &str,
        label_parts: &[&str],
        what: &str,
        limit: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        super::wait_metric_at(self.admin, name, label_parts, what, limit, pred).await
    }

    /// Every log line of this run and the earlier ones.
    pub fn all_logs(&self) -> String {
        self.earlier_logs
            .iter()
            .chain(std::iter::once(&self.log))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("")
    }

    /// `VmRSS` and `VmHWM` (peak) in KiB.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        read_memory_kib(self.pid())
    }

    pub async fn metrics(&self) -> String {
        let answer = super::get(&format!("http://{}/metrics", self.admin)).await;
        assert_eq!(answer.status, 200);
        String::from_utf8(answer.body.to_vec()).unwrap()
    }

    /// Sum of a metric's samples whose line contains every one of `label_parts`.
    pub async fn metric(&self, name: &str, label_parts: &[&str]) -> f64 {
        super::sum_metric(&self.metrics().await, name, label_parts)
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// An HTTP/1.1 client with a connection pool.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One request that may fail (unlike [`super::request`]): `Err` for a transport error or no answer within 30 s.
pub async fn try_request(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer, String> {
    try_request_within(client, method, url, headers, body, Duration::from_secs(30)).await
}

/// [`try_request`] with an answer expected within `limit`.
pub async fn try_request_within(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    limit: Duration,
) -> Result<Answer, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer { status, headers, body })
    };
    tokio::time::timeout(limit, exchange).await.map_err(|_| format!("no answer within {limit:?}"))?
}

/// `VmRSS` and `VmHWM` of process `pid`, in KiB; `None` once it is gone.
pub fn read_memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Samples a process's VmRSS every 100 ms until it is gone or this is dropped (VmHWM alone says the peak, not
/// when it happened).
pub struct RssSampler {
    samples: Arc<Mutex<Vec<(Duration, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let task = tokio::spawn({
            let samples = Arc::clone(&samples);
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    let Some((rss, _)) = read_memory_kib(pid) else { return };
                    samples.lock().unwrap().push((started.elapsed(), rss));
                }
            }
        });
        RssSampler { samples, task }
    }

    /// The highest sample, in KiB, and how many samples there were.
    pub fn peak_kib(&self) -> (u64, usize) {
        let samples = self.samples.lock().unwrap();
        (samples.iter().map(|s| s.1).max().unwrap_or(0), samples.len())
    }

    /// The highest VmRSS of each `window` since the start, in MiB.
    pub fn max_mib_per(&self, window: Duration) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for (at, kib) in self.samples.lock().unwrap().iter() {
            let slot = (at.as_millis() / window.as_millis().max(1)) as usize;
            if out.len() <= slot {
                out.resize(slot + 1, 0);
            }
            out[slot] = out[slot].max(kib / 1024);
        }
        out
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("bridge log ({}), last lines:\n{}", self.log.display(), self.log_tail(40));
        }
        for log in self.earlier_logs.iter().chain([&self.log, &self.stdout]) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_file(log);
            }
        }
    }
}
