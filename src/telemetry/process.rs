//! The standard `process_*` metrics (names, types and HELP as Prometheus' client libraries expose them), read from
//! `/proc/self` at each scrape.
//!
//! Written by hand rather than through the `metrics` crate because its counters are integers and CPU seconds are
//! not; and rather than with a crate because it is five small files to read. Off Linux nothing is rendered.

use std::fmt::Write;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux reports them in USER_HZ, which is 100 on every
/// architecture it supports (Prometheus' own procfs library makes the same assumption: `userHZ = 100`).
const USER_HZ: f64 = 100.0;

/// What one scrape reads.
#[derive(Debug, Default, PartialEq)]
struct Process {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: Option<f64>,
    threads: f64,
}

/// Appends the process metrics to a Prometheus text exposition; nothing when `/proc` cannot be read.
pub(super) fn render(out: &mut String) {
    if let Some(p) = read() {
        write_families(out, &p);
    }
}

fn write_families(out: &mut String, p: &Process) {
    let mut family = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = write!(out, "\n# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    };
    family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpu_seconds);
    family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes);
    family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes);
    family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds,
    );
    family("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
    if let Some(max) = p.max_fds {
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.", max);
    }
    family("process_threads", "gauge", "Number of OS threads in the process.", p.threads);
}

fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| parse_boot_time(&s))?;
    let mut p = parse_stat(&stat, boot_time)?;
    p.resident_bytes = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| parse_resident_bytes(&s))?;
    p.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    p.max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|s| parse_max_fds(&s));
    Some(p)
}

/// `/proc/self/stat`: the command name (field 2) is in parentheses and may hold spaces, so fields are counted
/// from the last `)`. See proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23 (bytes).
fn parse_stat(stat: &str, boot_time: f64) -> Option<Process> {
    let after = &stat[stat.rfind(')')? + 1..];
    // `after` starts at field 3 (state).
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    Some(Process {
        cpu_seconds: (field(14)? + field(15)?) / USER_HZ,
        threads: field(20)?,
        start_time_seconds: boot_time + field(22)? / USER_HZ,
        virtual_bytes: field(23)?,
        ..Process::default()
    })
}

/// `VmRSS` of `/proc/self/status`, in bytes (the kernel states it in kB, which spares us the page size).
fn parse_resident_bytes(status: &str) -> Option<f64> {
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok())?;
    Some(kib * 1024.0)
}

fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name_even_with_spaces_and_parentheses() {
        let stat = "4242 (otlp (bri) ge) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 7 0 12345 \
                    104857600 2560 18446744073709551615";
        let p = parse_stat(stat, 1_700_000_000.0).unwrap();
        assert_eq!(p.cpu_seconds, 2.0);
        assert_eq!(p.threads, 7.0);
        assert_eq!(p.start_time_seconds, 1_700_000_123.45);
        assert_eq!(p.virtual_bytes, 104_857_600.0);
    }

    #[test]
    fn resident_memory_is_read_in_kib() {
        assert_eq!(parse_resident_bytes("VmPeak:\t  20000 kB\nVmRSS:\t    1500 kB\n"), Some(1_536_000.0));
    }

    #[test]
    fn boot_time_and_fd_limit_are_found() {
        assert_eq!(parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"), Some(1_700_000_000.0));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read_and_rendered_with_help_and_type() {
        let mut text = String::new();
        render(&mut text);
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
            assert!(text.contains(&format!("# HELP {name} ")), "{text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{text}");
        }
        let p = read().unwrap();
        assert!(p.resident_bytes > 0.0 && p.open_fds > 0.0 && p.start_time_seconds > 1e9, "{p:?}");
    }
}
