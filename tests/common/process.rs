//! The `otlp-bridge` binary as a child process that a test can SIGKILL and start again on the same ports and
//! flags, with its memory read from `/proc/PID/status`.
//!
//! The binary is the one cargo builds for the test (debug under `cargo test`); `BRIDGE_BIN` points at another
//! build, e.g. `target/release/otlp-bridge` (what `.ci/run` does for the long tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::Answer;

/// The binary under test.
pub fn bridge_binary() -> PathBuf {
    std::env::var_os("BRIDGE_BIN").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_otlp-bridge").into())
}

/// Whether the binary under test is a debug build (which keeps about 10 MiB more resident than a release one).
pub fn is_debug_build() -> bool {
    bridge_binary().components().any(|c| c.as_os_str() == "debug")
}

/// A free 127.0.0.1 port, by binding port 0 and letting it go.
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
    log: PathBuf,
    /// Logs of earlier runs (before a kill), kept for the failure report.
    earlier_logs: Vec<PathBuf>,
}

impl BridgeProcess {
    /// Starts the binary with `args` (plus `--listen` and `--metrics-listen` on free ports) and waits until it
    /// answers `/health`.
    pub async fn start(args: &[&str]) -> BridgeProcess {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let (addr, admin) = (free_addr(), free_addr());
            match Self::spawn(addr, admin, &args) {
                Ok((child, log)) => {
                    let mut bridge =
                        BridgeProcess { child, addr, admin, args: args.clone(), log, earlier_logs: vec![] };
                    match bridge.wait_healthy(Duration::from_secs(30)).await {
                        Ok(()) => return bridge,
                        // Most likely a port taken between `free_addr` and the bind: try others.
                        Err(e) => last_error = e,
                    }
                }
                Err(e) => last_error = e,
            }
        }
        panic!("the bridge did not start: {last_error}");
    }

    fn spawn(addr: SocketAddr, admin: SocketAddr, args: &[String]) -> Result<(Child, PathBuf), String> {
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bridge-{}-{n}.log", std::process::id()));
        let mut command = Command::new(bridge_binary());
        for (key, _) in std::env::vars_os() {
            let text = key.to_string_lossy();
            if text.starts_with("OTLP_BRIDGE_") || text.starts_with("OTEL_") {
                command.env_remove(&key);
            }
        }
        command
            .args(["--listen", &addr.to_string(), "--metrics-listen", &admin.to_string()])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
        let child = command.spawn().map_err(|e| format!("spawn {}: {e}", bridge_binary().display()))?;
        Ok((child, log))
    }

    /// Starts the binary again, after [`BridgeProcess::kill`], with the same flags on the same ports, without
    /// waiting for it: clients see it come up as they would in production.
    pub fn respawn(&mut self) {
        assert!(self.child.try_wait().unwrap().is_some(), "respawn a bridge that has ended");
        let (child, log) = Self::spawn(self.addr, self.admin, &self.args).unwrap();
        self.earlier_logs.push(std::mem::replace(&mut self.log, log));
        self.child = child;
    }

    /// Polls `/health` (a child process gives no other sign of readiness) for up to `limit`; fails if the process
    /// exits.
    pub async fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}: {}", self.log_tail(30)));
            }
            let (client, url) = (client(), format!("http://{}/health", self.admin));
            let health =
                tokio::time::timeout(Duration::from_secs(2), try_request(&client, "GET", &url, &[], Bytes::new()));
            if let Ok(Ok(200)) = health.await.map(|a| a.map(|a| a.status)) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("no /health answer within {limit:?}: {}", self.log_tail(30)))
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

    /// SIGTERM, and waits (up to `limit`) for the exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the bridge did not exit within {limit:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
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
    tokio::time::timeout(Duration::from_secs(30), exchange).await.map_err(|_| "no answer within 30 s".to_string())?
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

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("bridge log ({}), last lines:\n{}", self.log.display(), self.log_tail(40));
        }
        for log in self.earlier_logs.iter().chain(std::iter::once(&self.log)) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_file(log);
            }
        }
    }
}
