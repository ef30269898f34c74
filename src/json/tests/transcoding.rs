//! The transcoder (JSON -> protobuf bytes, no message tree) against prost and against `decode`.
//!
//! Every other test of this folder also runs its bodies through both `decode` and `transcode` (see `dec`);
//! here: random messages, random damage to valid bodies, and the wire details prost is the reference for.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest as Req;
use proptest::prelude::*;

use super::super::encode;
use super::*;
use crate::test_gen::{logs, metrics, traces};

/// Random message -> our JSON encoder -> transcode -> prost decode: the original message, and its items.
fn transcodes_back<T: Both>(msg: &T) -> Result<(), TestCaseError> {
    let json = encode(msg);
    let mut out = Vec::new();
    let items = transcode::<T>(json.as_bytes(), &mut out).map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
    let back = T::decode(out.as_slice()).map_err(|e| TestCaseError::fail(format!("bad protobuf: {e}\n{json}")))?;
    // Compared as prost encodings, which compare doubles bit for bit (NaN included).
    prop_assert!(back.encode_to_vec() == msg.encode_to_vec(), "{json}\n{back:?}");
    prop_assert_eq!(items, msg.items());
    // Same size as prost's own encoding: same defaults omitted, minimal varints.
    prop_assert_eq!(out.len(), msg.encoded_len());
    Ok(())
}

/// camelCase keys to their snake_case aliases (`"traceId":` -> `"trace_id":`).
fn snake_keys(json: &str) -> String {
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len() + json.len() / 8);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j > i + 1 && b.get(j) == Some(&b'"') && b.get(j + 1) == Some(&b':') {
                out.push('"');
                for c in json[i + 1..j].chars() {
                    if c.is_ascii_uppercase() {
                        out.push('_');
                    }
                    out.push(c.to_ascii_lowercase());
                }
                i = j;
                continue;
            }
        }
        let c = json[i..].chars().next().unwrap_or('?');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Damage done to a valid body: a cut, a byte replaced, or a snippet inserted, at a random place.
#[derive(Debug, Clone)]
enum Damage {
    Cut(f64),
    Byte(f64, u8),
    Insert(f64, &'static str),
}

fn damage() -> impl Strategy<Value = Damage> {
    let at = 0.0..1.0f64;
    let bytes = proptest::sample::select(b"\"0-n{}[],:x 1.e\\\xff\x01tN".to_vec());
    let snippets = proptest::sample::select(vec![
        "null",
        "\"x\":1,",
        ",",
        "\"",
        "{}",
        "[]",
        "1e400",
        "\"NaN\"",
        "-1",
        "\"\\ud800\"",
        "\"a\":null,",
        "0.5",
        "\"intValue\":\"1\",",
        "\"asInt\":2,",
        "\"gauge\":{},",
        "\"name\":\"n\",",
        "[null]",
        "\"\\u0041\"",
    ]);
    prop_oneof![
        at.clone().prop_map(Damage::Cut),
        (at.clone(), bytes).prop_map(|(a, b)| Damage::Byte(a, b)),
        (at, snippets).prop_map(|(a, s)| Damage::Insert(a, s)),
    ]
}

fn apply(json: &str, d: &Damage) -> Vec<u8> {
    let mut b = json.as_bytes().to_vec();
    let pos = |f: f64| ((b.len() as f64 * f) as usize).min(b.len());
    match *d {
        Damage::Cut(f) => b.truncate(pos(f)),
        Damage::Byte(f, c) => {
            let i = pos(f).min(b.len().saturating_sub(1));
            if let Some(x) = b.get_mut(i) {
                *x = c;
            }
        }
        Damage::Insert(f, s) => {
            let i = pos(f);
            b.splice(i..i, s.bytes());
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_traces_transcode_to_the_original(req in traces()) {
        transcodes_back(&req)?;
    }

    #[test]
    fn random_metrics_transcode_to_the_original(req in metrics()) {
        transcodes_back(&req)?;
    }

    #[test]
    fn random_logs_transcode_to_the_original(req in logs()) {
        transcodes_back(&req)?;
    }

    #[test]
    fn snake_case_bodies_transcode_to_the_original(t in traces(), m in metrics(), l in logs()) {
        prop_assert!(dec::<Req>(snake_keys(&encode(&t)).as_bytes()).is_ok());
        prop_assert!(dec::<ExportMetricsServiceRequest>(snake_keys(&encode(&m)).as_bytes()).is_ok());
        prop_assert!(dec::<ExportLogsServiceRequest>(snake_keys(&encode(&l)).as_bytes()).is_ok());
    }

    /// Whatever the damage, `decode` and `transcode` accept alike or fail with the same error.
    #[test]
    fn damaged_bodies_are_accepted_or_rejected_alike(
        t in traces(), m in metrics(), l in logs(), d in proptest::collection::vec(damage(), 1..3)
    ) {
        let mut t = encode(&t).into_bytes();
        let mut m = encode(&m).into_bytes();
        let mut l = encode(&l).into_bytes();
        for d in &d {
            t = apply(&String::from_utf8_lossy(&t), d);
            m = apply(&String::from_utf8_lossy(&m), d);
            l = apply(&String::from_utf8_lossy(&l), d);
        }
        let _ = dec::<Req>(&t);
        let _ = dec::<ExportMetricsServiceRequest>(&m);
        let _ = dec::<ExportLogsServiceRequest>(&l);
    }
}

/// Transcodes `json`, written in field-number order, and checks the bytes are exactly prost's.
#[track_caller]
fn same_bytes_as_prost<T: Both>(json: &str) -> Vec<u8> {
    let want = ok::<T>(json).encode_to_vec();
    let mut out = Vec::new();
    transcode::<T>(json.as_bytes(), &mut out).unwrap();
    assert_eq!(out, want, "for {json}");
    out
}

#[test]
fn defaults_are_omitted_and_set_oneof_members_kept() {
    let out = same_bytes_as_prost::<Req>(&span_json(
        r#""traceId":"","name":"","kind":0,"startTimeUnixNano":"0","attributes":[{"key":"","value":{"intValue":"0"}},{"value":{"doubleValue":0}},{"value":{"boolValue":false}},{"value":{"stringValue":""}},{"value":{"bytesValue":""}},{"value":{}},{}],"flags":0"#,
    ));
    // intValue 0 is written (key 0x18, value 0) even though it is the default.
    assert!(out.windows(2).any(|w| w == [0x18, 0]), "{out:x?}");
    same_bytes_as_prost::<Req>(&span_json(r#""events":[null,{}],"links":[{"traceId":null}],"status":{}"#));
}

#[test]
fn optional_and_oneof_doubles_are_written_when_zero_and_negative_zero_is_dropped_like_prost() {
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""histogram":{"dataPoints":[{"sum":0,"min":-0.0,"max":0}]}"#,
    ));
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""exponentialHistogram":{"dataPoints":[{"scale":-3,"zeroThreshold":-0.0,"positive":{"offset":-1},"negative":{}}]}"#,
    ));
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""gauge":{"dataPoints":[{"asDouble":0},{"asDouble":-0.0},{"asInt":"0"},{}]}"#,
    ));
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""summary":{"dataPoints":[{"sum":-0.0,"quantileValues":[{"quantile":0,"value":"NaN"},{}]}]}"#,
    ));
}

#[test]
fn repeated_scalars_are_packed_and_empty_arrays_omitted() {
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""histogram":{"dataPoints":[{"bucketCounts":["1",null,3],"explicitBounds":[null,"NaN",2.5]},{"bucketCounts":[],"explicitBounds":null}]}"#,
    ));
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""exponentialHistogram":{"dataPoints":[{"positive":{"offset":2,"bucketCounts":["300",0,"18446744073709551615"]},"negative":{"bucketCounts":[]}}]}"#,
    ));
    // Repeated strings are not packed; null elements are empty strings.
    same_bytes_as_prost::<Req>(
        r#"{"resourceSpans":[{"resource":{"entityRefs":[{"schemaUrl":"s","type":"t","idKeys":["a",null,""],"descriptionKeys":[]}]}}]}"#,
    );
}

#[test]
fn negative_enums_and_int32_take_ten_bytes_and_sint32_zigzags() {
    let out = same_bytes_as_prost::<Req>(&span_json(r#""kind":-1,"status":{"code":"-2"}"#));
    assert!(out.windows(11).any(|w| w == [0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    same_bytes_as_prost::<Req>(&span_json(
        r#""attributes":[{"key":"k","value":{"stringValueStrindex":-5},"keyStrindex":-2147483648}]"#,
    ));
    same_bytes_as_prost::<ExportMetricsServiceRequest>(&metric_json(
        r#""exponentialHistogram":{"dataPoints":[{"scale":-2147483648,"positive":{"offset":2147483647}}]}"#,
    ));
}

#[test]
fn field_numbers_above_15_take_two_byte_keys() {
    // Span.flags is field 16, fixed32: key 0x85 0x01.
    let out = same_bytes_as_prost::<Req>(&span_json(r#""status":{"code":1},"flags":257"#));
    assert!(out.ends_with(&[0x85, 0x01, 1, 1, 0, 0]), "{out:x?}");
}

#[test]
fn long_messages_get_multi_byte_lengths_at_every_depth() {
    for n in [100, 127, 128, 300, 16_383, 16_384, 70_000, 2_100_000] {
        let name = "x".repeat(n);
        let inner = format!(r#"{{"key":"{name}","value":{{"stringValue":"{name}"}}}}"#);
        let json =
            span_json(&format!(r#""name":"{name}","attributes":[{inner},{inner}],"status":{{"message":"{name}"}}"#));
        let msg: Req = ok(&json);
        let mut out = vec![1, 2, 3];
        assert_eq!(transcode::<Req>(json.as_bytes(), &mut out), Ok(1));
        assert_eq!(&out[..3], [1, 2, 3]);
        assert_eq!(Req::decode(&out[3..]).unwrap(), msg, "n = {n}");
        assert_eq!(out.len() - 3, msg.encoded_len());
    }
}

#[test]
fn items_are_counted_as_the_collector_counts_them() {
    let count = |json: &str| {
        let mut out = Vec::new();
        transcode::<ExportMetricsServiceRequest>(json.as_bytes(), &mut out).unwrap()
    };
    let metrics = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"gauge":{"dataPoints":[{},null,{"exemplars":[{}]}]}},
        {"gauge":null,"sum":{"dataPoints":[{}]}},
        {"histogram":{"dataPoints":[{},{}]}},
        {"exponentialHistogram":{"dataPoints":[{}]}},
        {"summary":{"dataPoints":[{"quantileValues":[{},{}]}]}},
        {"name":"no data"}, {"gauge":{}}, null]}]},{"scopeMetrics":null}]}"#;
    assert_eq!(count(metrics), 8);
    let _: ExportMetricsServiceRequest = ok(metrics); // and decode agrees
    let traces =
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[null,{},{"events":[{}],"links":[{}]}]},{"spans":[{}]}]}]}"#;
    let mut out = Vec::new();
    assert_eq!(transcode::<Req>(traces.as_bytes(), &mut out), Ok(4));
    let logs =
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},null]}]},{"scopeLogs":[{"logRecords":[{"body":{}}]}]}]}"#;
    assert_eq!(transcode::<ExportLogsServiceRequest>(logs.as_bytes(), &mut out), Ok(3));
    assert_eq!(
        transcode::<ExportTraceServiceResponse>(br#"{"partialSuccess":{"rejectedSpans":"2"}}"#, &mut out),
        Ok(0)
    );
}

#[test]
fn errors_leave_the_buffer_as_it_was() {
    let mut out = b"keep".to_vec();
    let e = transcode::<Req>(span_json(r#""name":"n","kind":"NOPE""#).as_bytes(), &mut out).unwrap_err();
    assert_eq!(e.path, format!("{SPAN_PATH}.kind"));
    assert_eq!(out, b"keep");
}

#[test]
fn decimal_strings_read_alike_on_the_fast_path_and_off_it() {
    let s = span(r#""startTimeUnixNano":"007","endTimeUnixNano":"+5""#);
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (7, 5));
    let s = span(r#""startTimeUnixNano":"9999999999999999999","endTimeUnixNano":"18446744073709551615""#);
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (9_999_999_999_999_999_999, u64::MAX));
    let e = span_err(r#""droppedAttributesCount":"4294967296""#);
    assert_err(&e, &format!("{SPAN_PATH}.droppedAttributesCount"), r#"invalid uint32 "4294967296""#);
    assert_eq!(attr(r#"{"intValue":"9223372036854775807"}"#), Some(Value::IntValue(i64::MAX)));
    assert_eq!(attr(r#"{"intValue":"-9223372036854775808"}"#), Some(Value::IntValue(i64::MIN)));
    let e = attr_err(r#"{"intValue":"9223372036854775808"}"#);
    assert_err(&e, &format!("{SPAN_PATH}.attributes[0].value.intValue"), r#"invalid int64 "9223372036854775808""#);
}

#[test]
fn a_capped_transcode_reports_overflow_and_leaves_the_buffer_as_it_was() {
    use crate::json::transcode_within;
    use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest as Req;
    // 40 zero bucket counts: 2 characters each in JSON, 8 bytes each in protobuf.
    let zeros = vec!["0"; 40].join(",");
    let body = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"h","histogram":{{"dataPoints":[{{"count":"0","bucketCounts":[{zeros}]}}]}}}}]}}]}}]}}"#
    );
    let mut out = b"kept".to_vec();
    assert_eq!(transcode_within::<Req>(body.as_bytes(), &mut out, body.len()).unwrap(), None);
    assert_eq!(out, b"kept");
    let items = transcode_within::<Req>(body.as_bytes(), &mut out, body.len() * 4).unwrap();
    assert_eq!(items, Some(1));
    assert!(out.len() - 4 > body.len(), "the protobuf really is longer than the text");
}
