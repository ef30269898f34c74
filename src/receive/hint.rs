//! Hints for the two mistakes people make most with curl and OTLP/HTTP: data of one signal posted to another
//! signal's path (OTLP/JSON ignores unknown keys, so the request is empty and "succeeds"), and `-d` instead of
//! `--data-binary` (curl's `-d @file` strips carriage returns and newlines, which corrupts binary bodies).

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::signal::SignalKind;

/// The top-level key of each signal's request, and where it goes.
const TOP_KEYS: [(&str, &str, &str); 4] = [
    ("resourceSpans", "traces", "/v1/traces"),
    ("resourceMetrics", "metrics", "/v1/metrics"),
    ("resourceLogs", "logs", "/v1/logs"),
    ("resourceProfiles", "profiles", "/v1development/profiles"),
];

/// At most this many keys are named, each cut to this many characters: the message quotes the client's input.
const MAX_KEYS: usize = 8;
const MAX_KEY_CHARS: usize = 64;

/// For an OTLP/JSON request of `kind` that decoded to no items: a warning naming the top-level keys it ignored
/// and the path those keys belong to, or `None` when it had none (a truly empty request, which is fine).
pub(crate) fn ignored_top_level_keys(kind: SignalKind, body: &[u8]) -> Option<String> {
    let own = TOP_KEYS.iter().find(|(_, signal, _)| *signal == kind.name()).map_or("", |(key, _, _)| *key);
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
    let elsewhere = unknown.iter().find_map(|k| TOP_KEYS.iter().find(|(key, _, _)| is_key(k, key)));
    match elsewhere {
        Some((key, signal, path)) => {
            message.push_str(&format!("; {key:?} is the top-level key of {signal}: did you mean {path}?"))
        }
        None => message.push_str(&format!("; a {} request is {{\"{own}\": [...]}}", kind.name())),
    }
    Some(message)
}

/// `resourceSpans` or its proto name `resource_spans`.
fn is_key(key: &str, camel: &str) -> bool {
    if key == camel {
        return true;
    }
    let snake: String = camel
        .chars()
        .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
        .collect();
    key == snake
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
