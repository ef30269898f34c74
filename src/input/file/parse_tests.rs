use crate::proto::common::v1::any_value::Value;

use super::*;

fn json(line: &str) -> (LogRecord, bool) {
    let mut record = LogRecord::default();
    let parsed = parse(&LineParser::Json, None, line, &mut record);
    (record, parsed.failed)
}

fn body(record: &LogRecord) -> Option<&Value> {
    record.body.as_ref().and_then(|b| b.value.as_ref())
}

fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Value> {
    record.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn s(text: &str) -> Value {
    Value::StringValue(text.to_string())
}

#[test]
fn json_fields_of_a_python_json_formatter_line() {
    // python-json-logger's shape: asctime-free, "message", "levelname" renamed to "level", extra fields.
    let line = r#"{"time":"2024-05-01T12:00:00.123456Z","level":"WARNING","message":"disk almost full","trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","user":{"id":7,"roles":["a","b"]},"free":0.5,"ok":false,"none":null}"#;
    let (r, failed) = json(line);
    assert!(!failed);
    assert_eq!(body(&r), Some(&s("disk almost full")));
    assert_eq!(r.time_unix_nano, 1_714_564_800_123_456_000);
    assert_eq!((r.severity_text.as_str(), r.severity_number), ("WARNING", 13));
    assert_eq!(hex(&r.trace_id), "5b8efff798038103d269b633813fc60c");
    assert_eq!(hex(&r.span_id), "eee19b7ec3c1b174");
    let Some(Value::KvlistValue(user)) = attr(&r, "user") else { panic!("user is a kvlist: {r:?}") };
    assert_eq!(user.values[0].key, "id");
    assert_eq!(user.values[0].value.as_ref().unwrap().value, Some(Value::IntValue(7)));
    assert!(matches!(&user.values[1].value.as_ref().unwrap().value, Some(Value::ArrayValue(a)) if a.values.len() == 2));
    assert_eq!(attr(&r, "free"), Some(&Value::DoubleValue(0.5)));
    assert_eq!(attr(&r, "ok"), Some(&Value::BoolValue(false)));
    assert!(r.attributes.iter().any(|kv| kv.key == "none" && kv.value.as_ref().unwrap().value.is_none()));
    for taken in ["time", "level", "message", "trace_id", "span_id"] {
        assert!(attr(&r, taken).is_none(), "{taken} is a field of the record, not an attribute");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn json_body_keys_in_order_and_the_others_stay_attributes() {
    let (r, _) = json(r#"{"body":"b","msg":"m","message":"x"}"#);
    assert_eq!(body(&r), Some(&s("x")), "message first");
    assert_eq!((attr(&r, "msg"), attr(&r, "body")), (Some(&s("m")), Some(&s("b"))));
    let (r, _) = json(r#"{"msg":"m","body":"b"}"#);
    assert_eq!(body(&r), Some(&s("m")), "then msg");
    let (r, _) = json(r#"{"body":{"k":1}}"#);
    assert!(matches!(body(&r), Some(Value::KvlistValue(_))), "a structured body stays structured");
    let line = r#"{"level":"info","n":1}"#;
    let (r, failed) = json(line);
    assert_eq!((body(&r), failed), (Some(&s(line)), false), "no body key: the original line");
}

#[test]
fn json_time_keys_and_epoch_by_digits() {
    let cases = [
        (r#"{"time":"2024-05-01T12:00:00Z"}"#, Some(1_714_564_800_000_000_000)),
        (r#"{"timestamp":"2024-05-01T14:00:00+02:00"}"#, Some(1_714_564_800_000_000_000)),
        (r#"{"ts":1714564800}"#, Some(1_714_564_800_000_000_000)),
        (r#"{"ts":1714564800.5}"#, Some(1_714_564_800_500_000_000)),
        (r#"{"ts":"1714564800123"}"#, Some(1_714_564_800_123_000_000)),
        (r#"{"@timestamp":1714564800123456}"#, Some(1_714_564_800_123_456_000)),
        (r#"{"time":1714564800123456789}"#, Some(1_714_564_800_123_456_789)),
    ];
    for (line, want) in cases {
        let (r, failed) = json(line);
        assert_eq!((Some(r.time_unix_nano), failed), (want, false), "{line}");
    }
    // 12 digits is no known epoch unit: the field stays, the line counts as a failure, nothing is lost.
    let (r, failed) = json(r#"{"time":171456480012,"message":"m"}"#);
    assert_eq!((r.time_unix_nano, failed), (0, true));
    assert_eq!(attr(&r, "time"), Some(&Value::IntValue(171_456_480_012)));
    let (r, failed) = json(r#"{"time":"yesterday"}"#);
    assert_eq!((r.time_unix_nano, failed, attr(&r, "time")), (0, true, Some(&s("yesterday"))));
}

#[test]
fn severity_names_aliases_numbers_and_case() {
    let table = [
        ("TRACE", 1),
        ("trace", 1),
        ("finest", 1),
        ("DEBUG", 5),
        ("dbg", 5),
        ("fine", 5),
        ("Info", 9),
        ("information", 9),
        ("notice", 10),
        ("INFO2", 10),
        ("WARN", 13),
        ("warning", 13),
        ("ERROR", 17),
        ("err", 17),
        ("severe", 17),
        ("ERROR3", 19),
        ("FATAL", 21),
        ("critical", 21),
        ("CRIT", 21),
        ("panic", 21),
        ("emerg", 21),
        ("loud", 0),
        ("", 0),
    ];
    for (text, number) in table {
        assert_eq!(severity_number(text), number, "{text:?}");
    }
    // pino / Bunyan numbers.
    for (n, want) in [(10, 1), (20, 5), (30, 9), (40, 13), (50, 17), (60, 21), (35, 0)] {
        let (r, _) = json(&format!(r#"{{"level":{n}}}"#));
        assert_eq!((r.severity_text, r.severity_number), (n.to_string(), want));
    }
    let (r, _) = json(r#"{"lvl":"E","severity":"error"}"#);
    assert_eq!((r.severity_text.as_str(), r.severity_number), ("error", 17), "severity before lvl");
}

#[test]
fn json_ids_that_are_not_hex_of_the_right_length_stay_attributes() {
    let (r, failed) = json(r#"{"trace_id":"xyz","span_id":"eee19b7ec3c1b174"}"#);
    assert!(failed);
    assert!(r.trace_id.is_empty());
    assert_eq!(attr(&r, "trace_id"), Some(&s("xyz")));
    assert_eq!(r.span_id.len(), 8);
}

#[test]
fn a_line_that_is_not_a_json_object_is_kept_whole_and_counted() {
    for line in ["plain text", "[1,2]", "{\"unterminated\": ", "\"string\""] {
        let (r, failed) = json(line);
        assert_eq!((body(&r), failed), (Some(&s(line)), true), "{line}");
    }
}

#[test]
fn regex_groups_time_level_message() {
    let re = Regex::new(r"^(?P<timestamp>\S+ \S+) (?P<severity>[A-Z]+) \[(?P<thread>[^\]]+)\] (?P<body>.*)$").unwrap();
    let parser = LineParser::Regex(re);
    let mut r = LogRecord::default();
    let line = "2024-05-01 12:00:00,250 ERROR [main] connection refused";
    let parsed = parse(&parser, Some("%Y-%m-%d %H:%M:%S,%3f"), line, &mut r);
    assert!(!parsed.failed);
    assert_eq!(body(&r), Some(&s("connection refused")));
    assert_eq!((r.severity_text.as_str(), r.severity_number), ("ERROR", 17));
    assert_eq!(r.time_unix_nano, 1_714_564_800_250_000_000, "no offset in the layout: UTC");
    assert_eq!(attr(&r, "thread"), Some(&s("main")));

    let mut r = LogRecord::default();
    assert!(parse(&parser, None, "garbage", &mut r).failed);
    assert_eq!(body(&r), Some(&s("garbage")));

    // Without --file-time-format that layout is no known time: counted, and kept as an attribute.
    let mut r = LogRecord::default();
    assert!(parse(&parser, None, line, &mut r).failed);
    assert_eq!(attr(&r, "timestamp"), Some(&s("2024-05-01 12:00:00,250")));
}

#[test]
fn time_layouts_with_an_offset_and_rfc3339_variants() {
    let nginx = parse_time("01/May/2024:14:00:00 +0200", Some("%d/%b/%Y:%H:%M:%S %z"));
    assert_eq!(nginx, Some(1_714_564_800_000_000_000));
    assert_eq!(parse_time("2024-05-01T12:00:00.5Z", None), Some(1_714_564_800_500_000_000));
    assert_eq!(parse_time("1714564800.123456789", None), Some(1_714_564_800_123_456_789));
    assert_eq!(parse_time("1714564800123456789.5", None), None, "no fraction of nanoseconds");
    assert_eq!(parse_time("-1714564800", None), None);
    assert_eq!(parse_time("1969-12-31T23:59:59Z", None), None, "before the epoch");
}

#[test]
fn plain_keeps_the_line() {
    let mut r = LogRecord::default();
    assert!(!parse(&LineParser::Plain, None, "{\"a\":1}", &mut r).failed);
    assert_eq!(body(&r), Some(&s("{\"a\":1}")));
}
