//! Where an archive object lives: `s3://BUCKET/PREFIX` and the key layout
//! `PREFIX/SIGNAL/dt=YYYY-MM-DD/hour=HH/NAME.EXT`.
//!
//! The partitions are the UTC hour of the object's first item's arrival, in the Hive style (`dt=`, `hour=`) that
//! Athena, DuckDB, Spark and Trino read as columns, so a query (or `otlp-bridge replay`) over a time range lists
//! only the hours it needs. NAME begins with the same arrival time to the second, so a listing sorts by time, then
//! carries the bridge instance (random per process start) and a sequence number: two bridges, or one bridge
//! restarted, never write the same key, and nothing is ever overwritten.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::signal::SignalKind;

/// An `s3://BUCKET/PREFIX` location; the prefix has no leading or trailing `/` (it may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// The bucket, which must exist (the bridge creates none).
    pub bucket: String,
    /// Key prefix, without a trailing `/`.
    pub prefix: String,
}

/// Why an `s3://` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid archive location {url:?}: {reason} (expected s3://BUCKET/PREFIX)")]
pub(crate) struct LocationError {
    url: String,
    reason: &'static str,
}

impl Location {
    /// Whether `url` names an archive (`s3://...`) rather than a gRPC backend.
    pub(crate) fn is_s3(url: &str) -> bool {
        url.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
    }

    /// Parses `s3://BUCKET/PREFIX` (the prefix is optional; slashes around it are dropped).
    pub(crate) fn parse(url: &str) -> Result<Location, LocationError> {
        let fail = |reason| LocationError { url: url.to_string(), reason };
        if !Location::is_s3(url) {
            return Err(fail("not an s3:// URL"));
        }
        let rest = &url[5..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: 3-63 of lowercase letters, digits, dots and hyphens (MinIO and Ceph agree).
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if bucket.is_empty() {
            return Err(fail("no bucket"));
        }
        if !bucket_ok {
            return Err(fail("a bucket name is 3-63 lowercase letters, digits, dots and hyphens"));
        }
        if prefix.contains('?') || prefix.contains('#') {
            return Err(fail("a prefix cannot hold '?' or '#'"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..")
            && !prefix.is_empty()
        {
            return Err(fail("empty, '.' or '..' path segments in the prefix"));
        }
        Ok(Location { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }

    /// `s3://BUCKET/PREFIX` again (the output's label in logs and metrics).
    pub(crate) fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The key prefix of `kind`'s objects in the hour beginning at `hour_start` (`PREFIX/SIGNAL/dt=.../hour=HH/`).
    pub(crate) fn hour_prefix(&self, kind: SignalKind, hour_start: SystemTime) -> String {
        let civil = Civil::from(hour_start);
        let mut key = self.signal_prefix(kind);
        let _ = write!(key, "dt={:04}-{:02}-{:02}/hour={:02}/", civil.year, civil.month, civil.day, civil.hour);
        key
    }

    /// `PREFIX/SIGNAL/`.
    pub(crate) fn signal_prefix(&self, kind: SignalKind) -> String {
        if self.prefix.is_empty() {
            format!("{}/", kind.name())
        } else {
            format!("{}/{}/", self.prefix, kind.name())
        }
    }
}

/// What an object holds: its format and compression give the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// The protobuf `Export<Signal>ServiceRequest` (`.binpb`).
    OtlpProto,
    /// JSON lines, one OTLP/JSON `Export<Signal>ServiceRequest` per line (`.jsonl`).
    OtlpJson,
}

/// How an object's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchiveCompression {
    /// zstd (`.zst`).
    Zstd,
    /// gzip (`.gz`).
    Gzip,
    /// None.
    None,
}

impl ArchiveFormat {
    /// The extension before any compression's.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::OtlpProto => "binpb",
            ArchiveFormat::OtlpJson => "jsonl",
        }
    }

    /// The format an object's key names, with its compression; `None` for a key that is not an archive object.
    pub(crate) fn of_key(key: &str) -> Option<(ArchiveFormat, ArchiveCompression)> {
        let name = key.rsplit('/').next().unwrap_or(key);
        let (rest, compression) = if let Some(rest) = name.strip_suffix(".zst") {
            (rest, ArchiveCompression::Zstd)
        } else if let Some(rest) = name.strip_suffix(".gz") {
            (rest, ArchiveCompression::Gzip)
        } else {
            (name, ArchiveCompression::None)
        };
        if rest.ends_with(".binpb") {
            Some((ArchiveFormat::OtlpProto, compression))
        } else if rest.ends_with(".jsonl") {
            Some((ArchiveFormat::OtlpJson, compression))
        } else {
            None
        }
    }
}

impl ArchiveCompression {
    /// `.zst`, `.gz` or nothing.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            ArchiveCompression::Zstd => ".zst",
            ArchiveCompression::Gzip => ".gz",
            ArchiveCompression::None => "",
        }
    }
}

/// Names this bridge's objects: `YYYYMMDDTHHMMSSZ-INSTANCE-SEQUENCE`.
#[derive(Debug)]
pub(crate) struct Namer {
    instance: String,
    sequence: std::sync::atomic::AtomicU64,
}

impl Namer {
    /// A namer for this process: the instance is 64 random bits, so bridges sharing a prefix (replicas, restarts)
    /// never collide without any coordination.
    pub(crate) fn new() -> Namer {
        Namer::with_instance(format!("{:016x}", fastrand::u64(..)))
    }

    /// A namer with a given instance id (tests).
    pub(crate) fn with_instance(instance: String) -> Namer {
        Namer { instance, sequence: std::sync::atomic::AtomicU64::new(0) }
    }

    /// The full key of the next object of `kind` whose first item arrived at `first_arrival`.
    pub(crate) fn next_key(
        &self,
        location: &Location,
        kind: SignalKind,
        first_arrival: SystemTime,
        format: ArchiveFormat,
        compression: ArchiveCompression,
    ) -> String {
        let sequence = self.sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let civil = Civil::from(first_arrival);
        let mut key = location.hour_prefix(kind, first_arrival);
        let _ = write!(
            key,
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}-{:06}.{}{}",
            civil.year,
            civil.month,
            civil.day,
            civil.hour,
            civil.minute,
            civil.second,
            self.instance,
            sequence,
            format.extension(),
            compression.extension()
        );
        key
    }
}

/// A UTC calendar time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl From<SystemTime> for Civil {
    fn from(t: SystemTime) -> Civil {
        // Before 1970 only with a broken clock: such objects land in 1970-01-01, still found by a listing.
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's days-from-civil inverse (proleptic Gregorian), exact for every u64 second count here.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// The start of the UTC hour holding `t`.
pub(crate) fn hour_floor(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs - secs % 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn locations_parse_with_and_without_a_prefix() {
        let l = Location::parse("s3://telemetry/otlp/prod/").unwrap();
        assert_eq!(l, Location { bucket: "telemetry".into(), prefix: "otlp/prod".into() });
        assert_eq!(l.url(), "s3://telemetry/otlp/prod");
        let l = Location::parse("s3://telemetry").unwrap();
        assert_eq!(l.prefix, "");
        assert_eq!(l.signal_prefix(SignalKind::Logs), "logs/");
        assert!(Location::parse("S3://telemetry/x").is_ok());
        for bad in ["s3://", "s3:///x", "s3://UPPER/x", "s3://ab/x", "s3://b_ucket/x", "http://b/x", "s3://bkt/a//b"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        let e = Location::parse("s3://Bad/x").unwrap_err().to_string();
        assert!(e.contains("lowercase") && e.contains("s3://BUCKET/PREFIX"), "{e}");
    }

    #[test]
    fn keys_follow_the_layout_and_never_repeat() {
        let l = Location::parse("s3://telemetry/otlp").unwrap();
        let namer = Namer::with_instance("00000000000000ab".into());
        let t = at("2026-12-06T21:30:05.750Z");
        let k = namer.next_key(&l, SignalKind::Traces, t, ArchiveFormat::OtlpProto, ArchiveCompression::Zstd);
        assert_eq!(k, "otlp/traces/dt=2026-12-06/hour=21/20261206T213005Z-00000000000000ab-000000.binpb.zst");
        let k2 = namer.next_key(&l, SignalKind::Logs, t, ArchiveFormat::OtlpJson, ArchiveCompression::None);
        assert_eq!(k2, "otlp/logs/dt=2026-12-06/hour=21/20261206T213005Z-00000000000000ab-000001.jsonl");
        let k3 = namer.next_key(&l, SignalKind::Profiles, t, ArchiveFormat::OtlpJson, ArchiveCompression::Gzip);
        assert!(k3.starts_with("otlp/profiles/") && k3.ends_with("-000002.jsonl.gz"), "{k3}");
        assert_ne!(Namer::new().instance, Namer::new().instance);
    }

    #[test]
    fn civil_dates_match_rfc3339_across_leap_years_and_month_ends() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2024-12-31T23:00:00Z",
            "2025-01-01T00:00:00Z",
            "2100-03-01T12:34:56Z",
            "2026-12-06T21:30:05Z",
        ] {
            let c = Civil::from(at(s));
            let back =
                format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second);
            assert_eq!(back, s);
        }
        assert_eq!(hour_floor(at("2026-12-06T21:59:59.9Z")), at("2026-12-06T21:00:00Z"));
    }

    #[test]
    fn extensions_name_format_and_compression() {
        use ArchiveCompression as C;
        use ArchiveFormat as F;
        assert_eq!(F::of_key("p/traces/dt=x/hour=1/n.binpb.zst"), Some((F::OtlpProto, C::Zstd)));
        assert_eq!(F::of_key("n.jsonl.gz"), Some((F::OtlpJson, C::Gzip)));
        assert_eq!(F::of_key("n.jsonl"), Some((F::OtlpJson, C::None)));
        assert_eq!(F::of_key("n.parquet"), None);
        assert_eq!(F::of_key("n.zst"), None);
    }
}
