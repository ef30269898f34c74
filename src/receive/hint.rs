//! Hints for the mistakes people make most with curl and OTLP/HTTP: data of one signal posted to another
//! signal's path (OTLP/JSON ignores unknown keys, so the request is empty and "succeeds"); a body whose headers
//! misname it (JSON sent as protobuf, protobuf as JSON, gzip without `Content-Encoding`), told apart by its first
//! bytes; and `-d` instead of `--data-binary` (curl's `-d @file` strips carriage returns and newlines, which corrupts
//! binary bodies), assumed only when the bytes say nothing clearer.

use std::fmt;
use std::net::SocketAddr;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{ContentEncoding, Format};
use crate::signal::{Logs, Metrics, Profiles, Signal, SignalKind, Traces};

/// The top-level keys of `kind`'s request (lowerCamelCase, snake_case), from the generated JSON tables, so they
/// follow `proto/`: `resourceSpans`, and for profiles `resourceProfiles` and `dictionary`. The first is the one
/// that carries the items.
fn request_keys(kind: SignalKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        SignalKind::Traces => crate::json::keys::<<Traces as Signal>::Request>(),
        SignalKind::Metrics => crate::json::keys::<<Metrics as Signal>::Request>(),
        SignalKind::Logs => crate::json::keys::<<Logs as Signal>::Request>(),
        SignalKind::Profiles => crate::json::keys::<<Profiles as Signal>::Request>(),
    }
}

/// At most this many keys are named, each cut to this many characters: the message quotes the client's input.
const MAX_KEYS: usize = 8;
const MAX_KEY_CHARS: usize = 64;

/// For an OTLP/JSON request of `kind` that decoded to no items: a warning naming the top-level keys it ignored
/// and the path those keys belong to, or `None` when it had none (a truly empty request, which is fine).
pub(crate) fn ignored_top_level_keys(kind: SignalKind, body: &[u8]) -> Option<String> {
    let own = request_keys(kind);
    let keys = top_level_keys(body)?;
    let unknown: Vec<&String> = keys.iter().filter(|k| !is_key(k, own)).collect();
    if unknown.is_empty() {
        return None;
    }
    let names = unknown.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
    let mut message = format!(
        "no {} in this request: its top-level key(s) {names} are not part of a {} request and were ignored, as \
         OTLP/JSON requires",
        kind.item_name().replace('_', " "),
        kind.name()
    );
    // Another signal's own key (the first of its request), named as the tables spell it.
    let elsewhere = unknown.iter().find_map(|k| {
        SignalKind::ALL.into_iter().filter(|other| *other != kind).find_map(|other| {
            let key = request_keys(other).first()?;
            is_key(k, std::slice::from_ref(key)).then_some((key.0, other))
        })
    });
    match elsewhere {
        Some((key, other)) => message.push_str(&format!(
            "; {key:?} is the top-level key of {}: did you mean {}?",
            other.name(),
            other.http_path()
        )),
        None => {
            let first = own.first().map_or("", |k| k.0);
            message.push_str(&format!("; a {} request is {{\"{first}\": [...]}}", kind.name()))
        }
    }
    Some(message)
}

/// Whether `key` is one of `keys`, in lowerCamelCase or as its proto name.
fn is_key(key: &str, keys: &[(&str, &str)]) -> bool {
    keys.iter().any(|(camel, snake)| key == *camel || key == *snake)
}

/// The keys of a JSON object, values skipped (no tree is built: the body may be large).
fn top_level_keys(body: &[u8]) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                map.next_value::<IgnoredAny>()?;
                if keys.len() < MAX_KEYS {
                    keys.push(key.chars().take(MAX_KEY_CHARS).collect());
                }
            }
            Ok(keys)
        }
    }
    serde_json::Deserializer::from_slice(body).deserialize_map(Keys).ok()
}

/// Whether a decoding failure may be curl's `-d` at work: a curl client, and a body that newlines matter in
/// (protobuf, or compressed of any kind).
pub(crate) fn looks_like_curl_d(user_agent: Option<&[u8]>) -> bool {
    user_agent.is_some_and(|ua| ua.starts_with(b"curl/"))
}

/// Appended to a decoding error for curl clients.
pub(crate) const CURL_DATA_BINARY: &str = "with curl, send the file with --data-binary @FILE: -d strips newlines and \
                                           carriage returns, which corrupts protobuf and compressed bodies";

/// What the first bytes of a body look like, whatever its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Looks {
    /// A JSON object (after optional whitespace or a UTF-8 byte order mark).
    Json,
    /// The gzip magic number, 1f 8b.
    Gzip,
    /// The zstd frame magic number, 28 b5 2f fd.
    Zstd,
    /// A protobuf OTLP request: field 1 or 2 (the resource list, or the profiles dictionary), length-delimited.
    Protobuf,
}

impl Looks {
    /// What `first` (a body's first bytes) looks like, if it is one of the formats OTLP/HTTP clients send.
    pub(crate) fn of(first: &[u8]) -> Option<Looks> {
        let text = first.strip_prefix(b"\xef\xbb\xbf").unwrap_or(first);
        match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => return Some(Looks::Json),
            None if !first.is_empty() => return None,
            _ => {}
        }
        match first {
            [0x1f, 0x8b, ..] => Some(Looks::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Looks::Zstd),
            [0x0a | 0x12, ..] => Some(Looks::Protobuf),
            _ => None,
        }
    }
}

/// Bytes enough for [`Looks::of`] (whitespace before a JSON object included).
pub(crate) const SNIFF_BYTES: usize = 64;

/// For a body that did not inflate or decode as its headers say: which header to change, when its first bytes
/// (`first`, before inflating) say clearly what it is. `None` when they do not (then it is corrupt data of the
/// declared kind, or curl's `-d` at work).
pub(crate) fn wrong_headers(format: Format, encoding: ContentEncoding, first: &[u8]) -> Option<&'static str> {
    use ContentEncoding as E;
    let looks = Looks::of(first)?;
    Some(match (looks, encoding, format) {
        (Looks::Gzip, E::Identity, _) => {
            "the body starts with the gzip magic bytes (1f 8b): add -H 'Content-Encoding: gzip' (or send it \
             uncompressed)"
        }
        (Looks::Zstd, E::Identity, _) => {
            "the body starts with the zstd magic bytes (28 b5 2f fd): add -H 'Content-Encoding: zstd'"
        }
        (Looks::Json, E::Identity, Format::Protobuf) => {
            "the body looks like JSON, not protobuf: send it with -H 'Content-Type: application/json'"
        }
        (Looks::Protobuf, E::Identity, Format::Json) => {
            "the body looks like binary protobuf, not JSON: send it with -H 'Content-Type: application/x-protobuf'"
        }
        (Looks::Json, E::Gzip | E::Deflate | E::Zstd, _) => {
            "the body is not compressed (it looks like JSON): drop the Content-Encoding header, or compress it"
        }
        (Looks::Protobuf, E::Gzip | E::Deflate | E::Zstd, _) => {
            "the body is not compressed (it looks like protobuf): drop the Content-Encoding header, or compress it"
        }
        (Looks::Gzip, E::Zstd, _) => "the body is gzip, not zstd: send -H 'Content-Encoding: gzip'",
        (Looks::Zstd, E::Gzip | E::Deflate, _) => "the body is zstd: send -H 'Content-Encoding: zstd'",
        _ => return None,
    })
}

/// The answer to an `application/grpc` request on the OTLP/HTTP port (a gRPC exporter pointed at the wrong port):
/// where gRPC goes on this bridge. `grpc_listen` is the address the gRPC input is bound to, when it is on: the
/// exporter is told that port (the address itself when it is a specific one; an unspecified address such as
/// 0.0.0.0 is no address a client can dial); when it is off, how to turn it on.
pub(crate) fn grpc_on_http_port(grpc_listen: Option<SocketAddr>) -> String {
    const HTTP: &str = "this port speaks OTLP/HTTP (POST /v1/traces, /v1/metrics, /v1/logs, /v1development/profiles), \
                        not OTLP/gRPC";
    const OR_HTTP: &str = "or switch the exporter to OTLP/HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)";
    match grpc_listen {
        Some(addr) if addr.ip().is_unspecified() => format!(
            "{HTTP}: this bridge serves OTLP/gRPC on port {} (--grpc-listen {addr}): point the gRPC exporter at that \
             port, {OR_HTTP}",
            addr.port()
        ),
        Some(addr) => format!(
            "{HTTP}: this bridge serves OTLP/gRPC at {addr} (--grpc-listen): point the gRPC exporter there, {OR_HTTP}"
        ),
        None => format!(
            "{HTTP}: point a gRPC exporter at the bridge's --grpc-listen port (off by default; start the bridge with \
             e.g. --grpc-listen 0.0.0.0:4317), {OR_HTTP}"
        ),
    }
}

/// Whether a request's `Content-Type` is gRPC's (`application/grpc`, `application/grpc+proto`, ...).
pub(crate) fn is_grpc(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        let media = t.split(';').next().unwrap_or("").trim();
        let lower = media.to_ascii_lowercase();
        lower == "application/grpc" || lower.starts_with("application/grpc+")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_say_json_gzip_zstd_or_protobuf() {
        assert_eq!(Looks::of(b"  \n{\"resourceSpans\""), Some(Looks::Json));
        assert_eq!(Looks::of(b"\xef\xbb\xbf{}"), Some(Looks::Json));
        assert_eq!(Looks::of(&[0x1f, 0x8b, 8, 0]), Some(Looks::Gzip));
        assert_eq!(Looks::of(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Looks::Zstd));
        assert_eq!(Looks::of(&[0x0a, 0x80, 0x01]), Some(Looks::Protobuf));
        assert_eq!(Looks::of(b"hello"), None);
        assert_eq!(Looks::of(b"   "), None);
        assert_eq!(Looks::of(b""), None);
    }

    #[test]
    fn a_misnamed_body_is_told_which_header_to_change() {
        use ContentEncoding as E;
        let json = br#"{"resourceSpans":[]}"#;
        let m = wrong_headers(Format::Protobuf, E::Identity, json).unwrap_or_default();
        assert!(m.ends_with("-H 'Content-Type: application/json'"), "{m}");
        let m = wrong_headers(Format::Json, E::Identity, &[0x0a, 0x02, 0x0a, 0x00]).unwrap_or_default();
        assert!(m.ends_with("-H 'Content-Type: application/x-protobuf'"), "{m}");
        let m = wrong_headers(Format::Json, E::Identity, &[0x1f, 0x8b, 8]).unwrap_or_default();
        assert!(m.contains("add -H 'Content-Encoding: gzip'"), "{m}");
        let m = wrong_headers(Format::Protobuf, E::Gzip, json).unwrap_or_default();
        assert!(m.contains("drop the Content-Encoding header"), "{m}");
        // Data of the declared kind that is merely corrupt gets no guess.
        assert_eq!(wrong_headers(Format::Protobuf, E::Identity, &[0x0a, 0xff]), None);
        assert_eq!(wrong_headers(Format::Json, E::Identity, json), None);
        assert_eq!(wrong_headers(Format::Json, E::Gzip, &[0x1f, 0x8b]), None);
    }

    #[test]
    fn grpc_content_types_are_recognised() {
        assert!(is_grpc(Some("application/grpc")));
        assert!(is_grpc(Some("Application/gRPC+proto; charset=x")));
        // gRPC-Web frames its trailers in the body: a trailers-only answer would not reach it.
        assert!(!is_grpc(Some("application/grpc-web")));
        assert!(!is_grpc(Some("application/json")));
        assert!(!is_grpc(None));
    }

    #[test]
    fn a_grpc_call_on_the_http_port_is_told_the_grpc_address_when_there_is_one() {
        let off = grpc_on_http_port(None);
        assert!(off.starts_with("this port speaks OTLP/HTTP (POST /v1/traces"), "{off}");
        assert!(off.contains("(off by default; start the bridge with e.g. --grpc-listen 0.0.0.0:4317)"), "{off}");
        let any = grpc_on_http_port(Some("0.0.0.0:14317".parse().unwrap()));
        assert!(any.starts_with("this port speaks OTLP/HTTP (POST /v1/traces"), "{any}");
        assert!(any.contains("serves OTLP/gRPC on port 14317 (--grpc-listen 0.0.0.0:14317)"), "{any}");
        assert!(!any.contains("off by default"), "{any}");
        let one = grpc_on_http_port(Some("[::1]:4317".parse().unwrap()));
        assert!(one.contains("serves OTLP/gRPC at [::1]:4317 (--grpc-listen): point the gRPC exporter there"), "{one}");
        for m in [off, any, one] {
            assert!(m.ends_with("switch the exporter to OTLP/HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)"), "{m}");
        }
    }

    #[test]
    fn metrics_posted_to_traces_point_at_v1_metrics() {
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[]}]}"#;
        let m = ignored_top_level_keys(SignalKind::Traces, body).unwrap_or_default();
        assert!(
            m.starts_with(
                r#"no spans in this request: its top-level key(s) "resourceMetrics" are not part of a traces request"#
            ),
            "{m}"
        );
        assert!(m.ends_with(r#""resourceMetrics" is the top-level key of metrics: did you mean /v1/metrics?"#), "{m}");
        let snake = ignored_top_level_keys(SignalKind::Logs, br#"{"resource_spans":[]}"#).unwrap_or_default();
        assert!(snake.ends_with("did you mean /v1/traces?"), "{snake}");
    }

    #[test]
    fn an_unknown_key_gets_the_right_shape_and_a_truly_empty_request_gets_nothing() {
        let m = ignored_top_level_keys(SignalKind::Logs, br#"{"logs":[1,2]}"#).unwrap_or_default();
        assert!(m.ends_with(r#"a logs request is {"resourceLogs": [...]}"#), "{m}");
        assert_eq!(ignored_top_level_keys(SignalKind::Logs, b"{}"), None);
        assert_eq!(ignored_top_level_keys(SignalKind::Logs, br#"{"resourceLogs":[]}"#), None);
        assert_eq!(ignored_top_level_keys(SignalKind::Metrics, br#"{"resource_metrics":[]}"#), None);
    }

    #[test]
    fn every_key_of_a_request_is_its_own_and_the_first_carries_the_items() {
        // The profiles request has two keys: its dictionary alone is no mistake to warn about.
        assert_eq!(ignored_top_level_keys(SignalKind::Profiles, br#"{"dictionary":{}}"#), None);
        let m = ignored_top_level_keys(SignalKind::Profiles, br#"{"resourceLogs":[]}"#).unwrap_or_default();
        assert!(m.starts_with("no profiles in this request"), "{m}");
        assert!(m.ends_with(r#""resourceLogs" is the top-level key of logs: did you mean /v1/logs?"#), "{m}");
        let m = ignored_top_level_keys(SignalKind::Traces, br#"{"resource_profiles":[]}"#).unwrap_or_default();
        assert!(
            m.ends_with(
                r#""resourceProfiles" is the top-level key of profiles: did you mean /v1development/profiles?"#
            ),
            "{m}"
        );
        let firsts: Vec<_> = SignalKind::ALL.iter().map(|k| request_keys(*k)[0]).collect();
        assert_eq!(
            firsts,
            [
                ("resourceSpans", "resource_spans"),
                ("resourceMetrics", "resource_metrics"),
                ("resourceLogs", "resource_logs"),
                ("resourceProfiles", "resource_profiles"),
            ]
        );
    }
}
