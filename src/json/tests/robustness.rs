//! Hostile input: deep nesting, invalid UTF-8, huge numbers, garbage. Always an error, never a panic.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest as Req;

use super::*;

fn nested_array_values(depth: usize) -> String {
    let open = r#"{"arrayValue":{"values":["#;
    let close = "]}}";
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + 100);
    s.push_str(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":"#);
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str("{}");
    for _ in 0..depth {
        s.push_str(close);
    }
    s.push_str("}]}}]}");
    s
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [100_000, 1_000_000] {
        let e = err::<Req>(&nested_array_values(depth));
        assert!(e.message.contains("recursion limit exceeded"), "{e}");
        assert!(e.path.starts_with("resourceSpans[0].resource.attributes[0].value.arrayValue.values[0]"), "{e}");
    }
    // Same nesting inside metrics and logs bodies.
    // Inside an unknown field: serde_json skips it iteratively (no stack per level), so it is simply ignored.
    let (open, close) = ("[".repeat(1_000_000), "]".repeat(1_000_000));
    let r = dec::<ExportMetricsServiceRequest>(format!(r#"{{"resourceMetrics":[{{"x":{open}{close}}}]}}"#).as_bytes());
    assert_eq!(r.map(|m| m.resource_metrics.len()), Ok(1));
    let body = r#"{"kvlistValue":{"values":[{"key":"k","value":"#.repeat(50_000);
    let e = err::<ExportLogsServiceRequest>(&format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{body}"#
    ));
    assert!(e.message.contains("recursion limit"), "{e}");
}

#[test]
fn moderate_nesting_within_the_limit_decodes() {
    let req: Req = ok(&nested_array_values(35));
    let kv = &req.resource_spans[0].resource.as_ref().unwrap().attributes[0];
    assert!(kv.value.as_ref().unwrap().value.is_some());
}

#[test]
fn invalid_utf8_in_a_string_is_an_error() {
    let mut body = span_json(r#""name":"ab""#).into_bytes();
    let at = body.windows(2).position(|w| w == b"ab").unwrap();
    body[at] = 0xff;
    let e = dec::<Req>(&body).unwrap_err();
    assert_eq!(e.path, format!("{SPAN_PATH}.name"));
    assert!(e.message.contains("invalid unicode") || e.message.contains("UTF-8"), "{e}");
    // In a key, too.
    let e = dec::<Req>(b"{\"\xc3\x28\":1}").unwrap_err();
    assert!(e.line == 1, "{e}");
}

#[test]
fn huge_numbers_are_rejected_with_the_field_named() {
    let big = "9".repeat(400);
    let e = span_err(&format!(r#""startTimeUnixNano":{big}"#));
    assert_eq!(e.path, format!("{SPAN_PATH}.startTimeUnixNano"), "{e}");
    let e = span_err(&format!(r#""startTimeUnixNano":"{big}""#));
    assert!(e.message.contains("... (400 bytes)"), "long values are cut in messages: {e}");
    let e = attr_err(&format!(r#"{{"doubleValue":{big}}}"#));
    assert!(e.message.contains("number out of range"), "{e}");
    let e = attr_err(r#"{"doubleValue":1e400}"#);
    assert!(e.message.contains("number out of range"), "{e}");
}

#[test]
fn garbage_and_truncated_bodies_are_errors() {
    for body in [
        &b"{"[..],
        b"{\"resourceSpans\":[",
        b"{\"resourceSpans\":[{]}",
        b"\xff\xfe",
        b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"",
        b"   ",
        b"{\"a\" 1}",
        b"{'a':1}",
    ] {
        let e = dec::<Req>(body).unwrap_err();
        assert!(!e.message.is_empty() && e.line >= 1, "{e}");
    }
}

#[test]
fn every_prefix_of_a_valid_body_fails_cleanly() {
    let json = span_json(
        r#""traceId":"5b8efff798038103d269b633813fc60c","name":"n","attributes":[{"key":"k","value":{"doubleValue":"NaN"}}],"status":{"code":2}"#,
    );
    for i in 0..json.len() {
        assert!(dec::<Req>(&json.as_bytes()[..i]).is_err(), "prefix {i} accepted");
    }
    assert!(dec::<Req>(json.as_bytes()).is_ok());
}

#[test]
fn wrong_json_types_are_rejected_with_what_was_expected() {
    let e = span_err(r#""attributes":{}"#);
    assert_err(&e, &format!("{SPAN_PATH}.attributes"), "invalid type: map, expected an array");
    let e = span_err(r#""status":[]"#);
    assert_err(&e, &format!("{SPAN_PATH}.status"), "expected Status JSON object");
    let e = span_err(r#""name":5"#);
    assert_err(&e, &format!("{SPAN_PATH}.name"), "expected a string");
    let e = span_err(r#""attributes":[{"key":"k","value":{"boolValue":"true"}}]"#);
    assert_err(&e, &format!("{SPAN_PATH}.attributes[0].value.boolValue"), "expected true or false");
}

#[test]
fn multi_line_bodies_report_line_and_column() {
    let json = "{\n  \"resourceSpans\": [\n    {\"scopeSpans\": [{\"spans\": [{\"kind\": \"NOPE\"}]}]}\n  ]\n}";
    let e = err::<Req>(json);
    assert_eq!((e.line, e.path.as_str()), (3, "resourceSpans[0].scopeSpans[0].spans[0].kind"));
    assert_eq!(e.column, "    {\"scopeSpans\": [{\"spans\": [{\"kind\": \"NOPE\"".len());
}
