//! Multiline records: a line that matches the start pattern begins a record, other lines continue it (a Java stack
//! trace's `\tat ...` and `Caused by:` lines join their exception line).
//!
//! The last record of a file cannot know it is complete until the next start line comes, so it is flushed after
//! [`FLUSH_TIMEOUT`] without a new line, and at once when it has grown to the longest line allowed. Every record
//! carries the file offsets of its first and last line, so positions are saved only up to records that were sent.

use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

/// How long the last record of a file waits for a continuation line. Writers emit a stack trace in one write or a
/// few in quick succession, so a second is plenty and keeps the last record's latency low; also the wait of an
/// unterminated last line (a writer between two writes of one line).
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// One record's text and where its bytes end in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Joined {
    /// The lines, joined by `\n`.
    pub text: String,
    /// File offset after the record's last byte.
    pub end: u64,
}

/// The record being assembled for one file.
#[derive(Debug)]
pub(crate) struct Multiline {
    start: Regex,
    max_bytes: usize,
    pending: Option<(Joined, Instant)>,
}

impl Multiline {
    /// Records start at lines matching `start`; one grows to at most `max_bytes` of text.
    pub(crate) fn new(start: Regex, max_bytes: usize) -> Multiline {
        Multiline { start, max_bytes, pending: None }
    }

    /// Takes a line that ends at file offset `end`; returns the record it completes, if any.
    pub(crate) fn push(&mut self, line: String, end: u64, now: Instant) -> Option<Joined> {
        let starts = self.start.is_match(&line);
        match self.pending.as_mut() {
            Some((joined, last)) if !starts && joined.text.len() + 1 + line.len() <= self.max_bytes => {
                joined.text.push('\n');
                joined.text.push_str(&line);
                joined.end = end;
                *last = now;
                None
            }
            _ => self.pending.replace((Joined { text: line, end }, now)).map(|(j, _)| j),
        }
    }

    /// The pending record, if it has waited [`FLUSH_TIMEOUT`] (or at once when `force`).
    pub(crate) fn flush(&mut self, now: Instant, force: bool) -> Option<Joined> {
        let due = self.pending.as_ref().is_some_and(|(_, last)| force || now.duration_since(*last) >= FLUSH_TIMEOUT);
        if due {
            self.pending.take().map(|(j, _)| j)
        } else {
            None
        }
    }

    /// When the pending record becomes due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|(_, last)| *last + FLUSH_TIMEOUT)
    }

    /// Whether a record is being assembled.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "2024-05-01 12:00:00 ERROR request failed
java.lang.IllegalStateException: boom
\tat com.example.Service.handle(Service.java:42)
\tat com.example.Main.main(Main.java:7)
Caused by: java.io.IOException: disk
\t... 2 more
2024-05-01 12:00:01 INFO next";

    #[tokio::test(start_paused = true)]
    async fn a_java_stack_trace_joins_its_exception_line_and_the_last_record_waits_for_the_timeout() {
        let mut m = Multiline::new(Regex::new(r"^\d{4}-\d{2}-\d{2} ").unwrap(), 1 << 20);
        let mut out = Vec::new();
        let mut end = 0;
        for line in TRACE.lines() {
            end += line.len() as u64 + 1;
            out.extend(m.push(line.to_string(), end, Instant::now()));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, TRACE.rsplit_once('\n').unwrap().0, "six lines, one record");
        assert_eq!(out[0].end, TRACE.rsplit_once('\n').unwrap().0.len() as u64 + 1);
        tokio::time::advance(FLUSH_TIMEOUT - Duration::from_millis(1)).await;
        assert_eq!(m.flush(Instant::now(), false), None, "not yet due");
        assert_eq!(m.deadline(), Some(Instant::now() + Duration::from_millis(1)));
        tokio::time::advance(Duration::from_millis(1)).await;
        let last = m.flush(Instant::now(), false).unwrap();
        assert_eq!((last.text.as_str(), last.end), ("2024-05-01 12:00:01 INFO next", end));
        assert!(!m.is_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn a_continuation_resets_the_timeout_and_a_record_never_outgrows_the_maximum() {
        let mut m = Multiline::new(Regex::new("^S").unwrap(), 10);
        assert_eq!(m.push("S1".into(), 3, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(m.push(" c".into(), 6, Instant::now()), None);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(m.flush(Instant::now(), false), None, "the continuation restarted the wait");
        // "S1\n c" is 5 bytes; 5 + 1 + 6 > 10: the long continuation starts a record of its own.
        let first = m.push(" 12345".into(), 13, Instant::now()).unwrap();
        assert_eq!(first, Joined { text: "S1\n c".into(), end: 6 });
        assert_eq!(m.flush(Instant::now(), true).unwrap(), Joined { text: " 12345".into(), end: 13 });
    }
}
