//! The transcoder's independent oracle: prost-reflect's proto3 JSON mapping, driven by `opentelemetry_proto`'s own
//! descriptors (not by `proto/`, src/codegen or our tables), plus the one rule in which OTLP/JSON departs from proto3
//! JSON, applied here by a separate `serde_json::Value` walk: `bytes` fields named `*_id` are hex, not base64.
//!
//! Checked: for the official OTLP examples, and for random messages of all four requests built from the
//! descriptors and written by prost-reflect's serializer (keys lowerCamelCase or proto names, 64-bit integers as
//! strings or numbers, enums as names or numbers, defaults written or not, at random), the transcoder's bytes
//! decode (prost) to the message the oracle reads; for the random ones, also to the message that was written. The
//! messages of `prop.rs`, written by our encoder, are checked the same way there.
//!
//! Known differences, so generated inputs stay out of them (each is covered by the codec's own tests instead):
//! - `null` array elements: prost-reflect drops them; OTLP/JSON (and we) keep a default element;
//! - an unknown enum name: prost-reflect ignores the field; we reject it (it would be data loss). Numeric strings
//!   for enums (`"2"`): prost-reflect refuses them; we accept them, as the Collector does;
//! - a key given twice: prost-reflect (and serde_json's `Value`) keep the last; we reject it;
//! - ids: the oracle's walk does not check their length (we require 32 / 16 hex characters or none);
//! - doubles: Rust's parser behind prost-reflect also takes `"inf"` and `"nan"`; we take only `"Infinity"`,
//!   `"-Infinity"`, `"NaN"` and number syntax. Integers written as fractions or exponents (`5.0`, `1e3`): we take
//!   them only up to 2^53, where the f64 is still exact;
//! - nesting deeper than serde_json's limit (128) fails in both, at different depths.

use std::sync::LazyLock;

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::profiles::v1development::ExportProfilesServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use base64::Engine as _;
use proptest::prelude::*;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
    Value,
};
use serde_json::Value as Json;

use super::super::{transcode, JsonMessage};
use super::shown;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(opentelemetry_proto::DESCRIPTORS).expect("opentelemetry_proto's descriptors decode")
});

/// A request the oracle knows by its full proto name.
pub(super) trait Named: JsonMessage + Message + Default + std::fmt::Debug {
    const FULL: &'static str;
}
impl Named for ExportTraceServiceRequest {
    const FULL: &'static str = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest";
}
impl Named for ExportMetricsServiceRequest {
    const FULL: &'static str = "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest";
}
impl Named for ExportLogsServiceRequest {
    const FULL: &'static str = "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest";
}
impl Named for ExportProfilesServiceRequest {
    const FULL: &'static str = "opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest";
}

fn descriptor<T: Named>() -> MessageDescriptor {
    POOL.get_message_by_name(T::FULL)
        .unwrap_or_else(|| panic!("{} is not in opentelemetry_proto's descriptors", T::FULL))
}

/// OTLP's ids: hex in OTLP/JSON (spec, "JSON Protobuf Encoding"), base64 like any `bytes` in proto3 JSON.
fn is_id(f: &FieldDescriptor) -> bool {
    matches!(f.kind(), Kind::Bytes) && !f.is_list() && f.name().ends_with("_id")
}

/// Rewrites each id of the JSON message `v` (of type `desc`) with `f`, found by walking the text alongside the
/// descriptor (keys in either spelling).
fn map_ids(desc: &MessageDescriptor, v: &mut Json, f: &dyn Fn(&str) -> Result<String, String>) -> Result<(), String> {
    let Json::Object(map) = v else { return Ok(()) };
    for (key, value) in map.iter_mut() {
        let Some(field) = desc.get_field_by_json_name(key).or_else(|| desc.get_field_by_name(key)) else { continue };
        match field.kind() {
            Kind::Message(m) if field.is_list() => {
                if let Json::Array(items) = value {
                    for item in items {
                        map_ids(&m, item, f)?;
                    }
                }
            }
            Kind::Message(m) => map_ids(&m, value, f)?,
            _ if is_id(&field) => {
                if let Json::String(s) = value {
                    *s = f(s)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn hex_to_base64(s: &str) -> Result<String, String> {
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()).ok_or_else(|| format!("bad hex {s:?}")))
        .collect::<Result<Vec<u8>, String>>()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn base64_to_hex(s: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The oracle: OTLP/JSON `body` read as a `T` by prost-reflect, as protobuf.
fn oracle<T: Named>(body: &[u8]) -> Result<Vec<u8>, String> {
    let desc = descriptor::<T>();
    let mut v: Json = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    map_ids(&desc, &mut v, &hex_to_base64)?;
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let msg = DynamicMessage::deserialize_with_options(desc, v, &options).map_err(|e| e.to_string())?;
    Ok(msg.encode_to_vec())
}

/// Protobuf normalised through prost's `T` (field order, defaults), so two encodings of one message compare equal.
fn normal<T: Named>(pb: &[u8], what: &str) -> Result<Vec<u8>, String> {
    T::decode(pb).map(|m| m.encode_to_vec()).map_err(|e| format!("{what}: prost refuses it: {e}"))
}

/// Checks that the transcoder accepts `body` and that its protobuf is the message the oracle reads.
pub(super) fn agrees<T: Named>(body: &[u8]) -> Result<(), String> {
    let want = normal::<T>(&oracle::<T>(body)?, "the oracle's protobuf")?;
    let mut out = Vec::new();
    transcode::<T>(body, &mut out).map_err(|e| format!("the transcoder refuses what the oracle reads: {e}"))?;
    let got = normal::<T>(&out, "the transcoder's protobuf")?;
    if got != want {
        let (got, want) = (T::decode(&got[..]), T::decode(&want[..]));
        return Err(format!(
            "transcoder and oracle differ on {}:\n  oracle:     {want:?}\n  transcoder: {got:?}",
            shown(body)
        ));
    }
    Ok(())
}

/// The example's bytes; the files are in the repository, so a missing one fails the test.
fn example(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/otlp-examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("official example {path}: {e}"))
}

#[test]
fn the_official_examples_transcode_to_what_the_oracle_reads() {
    type Check = fn(&[u8]) -> Result<(), String>;
    let checks: [(&str, Check); 4] = [
        ("trace.json", agrees::<ExportTraceServiceRequest>),
        ("metrics.json", agrees::<ExportMetricsServiceRequest>),
        ("logs.json", agrees::<ExportLogsServiceRequest>),
        ("events.json", agrees::<ExportLogsServiceRequest>),
    ];
    for (name, check) in checks {
        let body = example(name);
        // The oracle must see something: an example it read as empty would agree with anything empty.
        assert!(body.len() > 100, "{name} is suspiciously small");
        if let Err(e) = check(&body) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn the_oracle_reads_hex_ids_and_refuses_bad_hex() {
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_SERVER","startTimeUnixNano":"1"}]}]}]}"#;
    let pb = oracle::<ExportTraceServiceRequest>(body).unwrap();
    let span = &ExportTraceServiceRequest::decode(&pb[..]).unwrap().resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, super::hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!((span.kind, span.start_time_unix_nano), (2, 1));
    agrees::<ExportTraceServiceRequest>(body).unwrap();
    assert!(oracle::<ExportTraceServiceRequest>(
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz"}]}]}]}"#
    )
    .is_err());
}

// ---- random messages from the descriptors ----

/// Finite doubles of every magnitude, and the special values now and then.
fn double(rng: &mut fastrand::Rng) -> f64 {
    match rng.u8(..16) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => -0.0,
        4 => f64::from(rng.i32(..)),
        _ => {
            let v = f64::from_bits(rng.u64(..));
            if v.is_finite() {
                v
            } else {
                0.5
            }
        }
    }
}

fn string(rng: &mut fastrand::Rng) -> String {
    let n = rng.usize(..6);
    (0..n)
        .map(|_| match rng.u8(..4) {
            0 => rng.char(..),
            1 => ['"', '\\', '\n', '\u{0}', 'é', '😀'][rng.usize(..6)],
            _ => rng.alphanumeric(),
        })
        .collect()
}

fn value(field: &FieldDescriptor, rng: &mut fastrand::Rng, depth: u32, dense: u8) -> Value {
    match field.kind() {
        Kind::Double => Value::F64(double(rng)),
        Kind::Float => Value::F32(double(rng) as f32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(if rng.bool() { rng.i64(..) } else { rng.i64(-9..9) })
        }
        Kind::Uint64 | Kind::Fixed64 => Value::U64(if rng.bool() { rng.u64(..) } else { rng.u64(..9) }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(if rng.bool() { rng.i32(..) } else { rng.i32(-9..9) })
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(if rng.bool() { rng.u32(..) } else { rng.u32(..9) }),
        Kind::Bool => Value::Bool(rng.bool()),
        Kind::String => Value::String(string(rng)),
        // Ids are empty or of their length: trace and profile ids 16 bytes, span ids 8 (the spec's lengths).
        Kind::Bytes if is_id(field) => {
            let n = if field.name().ends_with("span_id") { 8 } else { 16 };
            let n = if rng.u8(..4) == 0 { 0 } else { n };
            Value::Bytes((0..n).map(|_| rng.u8(..)).collect::<Vec<u8>>().into())
        }
        Kind::Bytes => Value::Bytes((0..rng.usize(..9)).map(|_| rng.u8(..)).collect::<Vec<u8>>().into()),
        // Mostly a defined value, sometimes a number the enum does not define (kept as a number).
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            Value::EnumNumber(if rng.u8(..5) == 0 { rng.i32(-3..100) } else { values[rng.usize(..values.len())] })
        }
        Kind::Message(m) => Value::Message(message(&m, rng, depth.saturating_sub(1), dense)),
    }
}

/// A random message: each field set with probability `dense` / 4 (lists of 0 to 3), at most one member per oneof;
/// below `depth`, messages stay empty. The outer levels (where the resource, scope and item lists are) are filled
/// more often, so that most requests hold items.
fn message(desc: &MessageDescriptor, rng: &mut fastrand::Rng, depth: u32, dense: u8) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    if depth == 0 {
        return msg;
    }
    let outer = depth >= 3;
    for field in desc.fields() {
        if rng.u8(..4) >= if outer { 3 } else { dense } {
            continue;
        }
        if let Some(oneof) = field.containing_oneof() {
            if oneof.fields().any(|other| msg.has_field(&other)) {
                continue;
            }
        }
        let v = if field.is_list() {
            let n = if outer { rng.usize(1..4) } else { rng.usize(..4) };
            Value::List((0..n).map(|_| value(&field, rng, depth, dense)).collect())
        } else {
            value(&field, rng, depth, dense)
        };
        msg.set_field(&field, v);
    }
    msg
}

/// A random `T` (its protobuf) and its OTLP/JSON text, written by prost-reflect with random options.
fn random_request<T: Named>(seed: u64) -> (Vec<u8>, String) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let desc = descriptor::<T>();
    // Sparse or dense, so that both small requests and ones with many items (and every field) come up.
    let dense = 1 + rng.u8(..3);
    let msg = message(&desc, &mut rng, 6, dense);
    let options = SerializeOptions::new()
        .use_proto_field_name(rng.bool())
        .stringify_64_bit_integers(rng.bool())
        .use_enum_numbers(rng.bool())
        .skip_default_fields(rng.bool());
    let mut ser = serde_json::Serializer::new(Vec::new());
    msg.serialize_with_options(&mut ser, &options).expect("prost-reflect serializes its own message");
    let mut v: Json = serde_json::from_slice(&ser.into_inner()).expect("prost-reflect writes JSON");
    map_ids(&desc, &mut v, &base64_to_hex).expect("prost-reflect writes base64 ids");
    (msg.encode_to_vec(), v.to_string())
}

fn random_agrees<T: Named>(seed: u64) -> Result<(), TestCaseError> {
    let (pb, json) = random_request::<T>(seed);
    agrees::<T>(json.as_bytes()).map_err(TestCaseError::fail)?;
    let mut out = Vec::new();
    transcode::<T>(json.as_bytes(), &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let written = normal::<T>(&pb, "the written message").map_err(TestCaseError::fail)?;
    prop_assert!(
        normal::<T>(&out, "the transcoder's protobuf").map_err(TestCaseError::fail)? == written,
        "the transcoder reads another message than the one written as {}",
        shown(json.as_bytes())
    );
    Ok(())
}

/// The generator is no use if it makes only near-empty requests: most must hold items.
#[test]
fn random_requests_mostly_hold_items() {
    fn share<T: Named + super::Both>() -> usize {
        (0..100u64).filter(|seed| T::decode(&random_request::<T>(*seed).0[..]).map_or(0, |m| m.items()) > 0).count()
    }
    for (name, n) in [
        ("traces", share::<ExportTraceServiceRequest>()),
        ("metrics", share::<ExportMetricsServiceRequest>()),
        ("logs", share::<ExportLogsServiceRequest>()),
        ("profiles", share::<ExportProfilesServiceRequest>()),
    ] {
        assert!(n >= 30, "only {n} of 100 random {name} requests hold an item");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_traces_transcode_to_what_the_oracle_reads(seed in any::<u64>()) {
        random_agrees::<ExportTraceServiceRequest>(seed)?;
    }

    #[test]
    fn random_metrics_transcode_to_what_the_oracle_reads(seed in any::<u64>()) {
        random_agrees::<ExportMetricsServiceRequest>(seed)?;
    }

    #[test]
    fn random_logs_transcode_to_what_the_oracle_reads(seed in any::<u64>()) {
        random_agrees::<ExportLogsServiceRequest>(seed)?;
    }

    #[test]
    fn random_profiles_transcode_to_what_the_oracle_reads(seed in any::<u64>()) {
        random_agrees::<ExportProfilesServiceRequest>(seed)?;
    }
}
