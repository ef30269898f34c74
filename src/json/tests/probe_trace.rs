//! Probe rows about ids, integers, enums, keys, AnyValue, nulls and the top level (trace requests).

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest as Req;
use crate::proto::common::v1::any_value::Value;

use super::*;

const TID: &str = "5b8efff798038103d269b633813fc60c";

#[test]
fn ids_in_any_case_decode_to_16_and_8_bytes() {
    for t in [TID, &TID.to_uppercase(), "5B8efFF798038103d269B633813FC60c"] {
        let s = span(&format!(r#""traceId":"{t}","spanId":"EEE19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173""#));
        assert_eq!(s.trace_id, hex(TID));
        assert_eq!(s.span_id, hex("eee19b7ec3c1b174"));
        assert_eq!(s.parent_span_id, hex("eee19b7ec3c1b173"));
    }
}

#[test]
fn empty_and_null_ids_are_absent() {
    let s = span(r#""traceId":"","spanId":"","parentSpanId":null"#);
    assert!(s.trace_id.is_empty() && s.span_id.is_empty() && s.parent_span_id.is_empty());
    assert!(span(r#""traceId":null"#).trace_id.is_empty());
}

#[test]
fn malformed_ids_are_rejected_naming_the_field() {
    let p = format!("{SPAN_PATH}.traceId");
    let e = span_err(&format!(r#""traceId":"{}""#, &TID[..31]));
    assert_err(&e, &p, "expected 32 hex characters, got 31");
    let e = span_err(r#""traceId":"zz8efff798038103d269b633813fc60c""#);
    assert_err(&e, &p, "'z' at position 0 is not a hex digit");
    let e = span_err(r#""traceId":"W47/95gDgQPSabYzgT/GDA==""#);
    assert_err(&e, &p, "expected 32 hex characters, got 24");
    let e = span_err(r#""traceId":"W47/95gDgQPSabYzgT/GDA==AAAAAAAA""#);
    assert_err(&e, &p, "'W' at position 0 is not a hex digit");
    let e = span_err(&format!(r#""traceId":"{}""#, &TID[..30]));
    assert_err(&e, &p, "invalid trace id");
    let e = span_err(&format!(r#""spanId":"{TID}""#));
    assert_err(&e, &format!("{SPAN_PATH}.spanId"), "expected 16 hex characters, got 32");
    let e = span_err(&format!(r#""traceId":"0x{}""#, &TID[..30]));
    assert_err(&e, &p, "'x' at position 1");
    let e = span_err(&format!(r#""traceId":"0x{TID}""#));
    assert_err(&e, &p, "expected 32 hex characters, got 34");
    let e = span_err(r#""traceId":12"#);
    assert_err(&e, &p, "expected a trace id (32 hex characters)");
    let e = log_err(r#""traceId":"5b8efff798""#);
    assert_err(&e, &format!("{LOG_PATH}.traceId"), "got 10");
    let e = span_err(r#""parentSpanId":"eee19b7e""#);
    assert_err(&e, &format!("{SPAN_PATH}.parentSpanId"), "invalid span id \"eee19b7e\": expected 16 hex characters");
}

#[test]
fn a_malformed_profile_id_is_named_a_profile_id() {
    let profile =
        |fields: &str| format!(r#"{{"resourceProfiles":[{{"scopeProfiles":[{{"profiles":[{{{fields}}}]}}]}}]}}"#);
    let p = "resourceProfiles[0].scopeProfiles[0].profiles[0].profileId";
    let e = err::<ExportProfilesServiceRequest>(&profile(&format!(r#""profileId":"{}""#, &TID[..31])));
    assert_err(&e, p, "invalid profile id \"5b8efff798038103d269b633813fc60\": expected 32 hex characters, got 31");
    let e = err::<ExportProfilesServiceRequest>(&profile(r#""profileId":7"#));
    assert_err(&e, p, "expected a profile id (32 hex characters)");
    let req: ExportProfilesServiceRequest = ok(&profile(&format!(r#""profileId":"{TID}""#)));
    assert_eq!(req.resource_profiles[0].scope_profiles[0].profiles[0].profile_id, hex(TID));
}

#[test]
fn uint64_accepts_strings_and_numbers_over_the_full_range() {
    let s = span(r#""startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000"#);
    assert_eq!(s.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(s.end_time_unix_nano, 1_544_712_661_000_000_000);
    let s = span(r#""startTimeUnixNano":"18446744073709551615","endTimeUnixNano":18446744073709551615"#);
    assert_eq!(s.start_time_unix_nano, u64::MAX);
    assert_eq!(s.end_time_unix_nano, u64::MAX);
}

#[test]
fn uint64_out_of_range_or_negative_is_rejected() {
    let p = format!("{SPAN_PATH}.startTimeUnixNano");
    assert_err(
        &span_err(r#""startTimeUnixNano":"18446744073709551616""#),
        &p,
        r#"invalid uint64 "18446744073709551616""#,
    );
    assert_err(&span_err(r#""startTimeUnixNano":18446744073709551616"#), &p, "invalid uint64");
    assert_err(&span_err(r#""startTimeUnixNano":-1"#), &p, "invalid uint64 -1: out of range");
    assert_err(&span_err(r#""startTimeUnixNano":"-1""#), &p, r#"invalid uint64 "-1""#);
    assert_err(&span_err(r#""startTimeUnixNano":"""#), &p, r#"invalid uint64 """#);
    assert_err(&span_err(r#""startTimeUnixNano":1.5"#), &p, "not an integer");
    assert_err(&span_err(r#""startTimeUnixNano":true"#), &p, "invalid type: boolean");
}

#[test]
fn int64_accepts_strings_numbers_and_the_minimum() {
    assert_eq!(attr(r#"{"intValue":"10"}"#), Some(Value::IntValue(10)));
    assert_eq!(attr(r#"{"intValue":10}"#), Some(Value::IntValue(10)));
    assert_eq!(attr(r#"{"intValue":"-9223372036854775808"}"#), Some(Value::IntValue(i64::MIN)));
    assert_eq!(attr(r#"{"intValue":-9223372036854775808}"#), Some(Value::IntValue(i64::MIN)));
}

#[test]
fn int64_out_of_range_or_not_a_number_is_rejected() {
    let p = format!("{SPAN_PATH}.attributes[0].value.intValue");
    assert_err(&attr_err(r#"{"intValue":9223372036854775808}"#), &p, "out of range");
    assert_err(&attr_err(r#"{"intValue":"9223372036854775808"}"#), &p, "invalid int64");
    assert_err(&attr_err(r#"{"intValue":"abc"}"#), &p, r#"invalid int64 "abc""#);
}

/// Decision: exponent/fraction notation is accepted for exact integers up to 2^53, rejected above.
#[test]
fn exponent_notation_is_exact_below_2_pow_53_and_rejected_above() {
    assert_eq!(attr(r#"{"intValue":1e3}"#), Some(Value::IntValue(1000)));
    assert_eq!(span(r#""flags":2.0"#).flags, 2);
    let e = span_err(r#""startTimeUnixNano":1.5e18"#);
    assert_err(&e, &format!("{SPAN_PATH}.startTimeUnixNano"), "send it as a decimal string");
}

#[test]
fn uint32_fields_accept_decimal_strings() {
    let s = span(r#""droppedAttributesCount":"3","droppedEventsCount":4,"flags":"257""#);
    assert_eq!((s.dropped_attributes_count, s.dropped_events_count, s.flags), (3, 4, 257));
    assert_eq!(log(r#""flags":"1""#).flags, 1);
    let e = span_err(r#""droppedLinksCount":4294967296"#);
    assert_err(&e, &format!("{SPAN_PATH}.droppedLinksCount"), "invalid uint32 4294967296: out of range");
}

#[test]
fn enums_accept_integers_including_unknown_ones() {
    let s = span(r#""kind":2,"status":{"code":2}"#);
    assert_eq!((s.kind, s.status.unwrap().code), (2, 2));
    assert_eq!(span(r#""kind":42"#).kind, 42);
    assert_eq!(log(r#""severityNumber":9"#).severity_number, 9);
}

#[test]
fn enums_accept_proto_names_and_reject_unknown_names() {
    let s = span(r#""kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR"}"#);
    assert_eq!((s.kind, s.status.unwrap().code), (2, 2));
    assert_eq!(log(r#""severityNumber":"SEVERITY_NUMBER_INFO""#).severity_number, 9);
    assert_eq!(span(r#""kind":"3""#).kind, 3);
    let e = span_err(r#""kind":"SERVER""#);
    assert_err(
        &e,
        &format!("{SPAN_PATH}.kind"),
        r#"invalid span kind "SERVER": expected an integer or a SPAN_KIND_* name"#,
    );
    let e = span_err(r#""status":{"code":"ERROR"}"#);
    assert_err(&e, &format!("{SPAN_PATH}.status.code"), "STATUS_CODE_*");
}

#[test]
fn snake_case_keys_are_accepted_as_aliases() {
    let json = format!(
        r#"{{"resource_spans":[{{"scope_spans":[{{"spans":[{{"trace_id":"{TID}","span_id":"eee19b7ec3c1b174","parent_span_id":"","start_time_unix_nano":"5","dropped_attributes_count":1}}]}}]}}]}}"#
    );
    let req: Req = ok(&json);
    let s = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(s.trace_id, hex(TID));
    assert_eq!((s.start_time_unix_nano, s.dropped_attributes_count), (5, 1));
}

#[test]
fn the_same_field_twice_is_rejected_even_via_its_alias() {
    let e = span_err(r#""name":"a","name":"b""#);
    assert_err(&e, &format!("{SPAN_PATH}.name"), "duplicate field");
    let e = span_err(r#""startTimeUnixNano":"1","start_time_unix_nano":"2""#);
    assert_err(&e, &format!("{SPAN_PATH}.startTimeUnixNano"), "duplicate field");
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let json = format!(
        r#"{{"x":1,"resourceSpans":[{{"x":[1,{{"y":2}}],"resource":{{"x":null,"attributes":[{{"key":"a","x":"y","value":{{"x":1,"stringValue":"v"}}}}]}},
        "scopeSpans":[{{"x":{{}},"scope":{{"name":"s","x":true}},"spans":[{{"traceId":"{TID}","x":"y","name":"n",
        "events":[{{"x":1,"name":"e"}}],"links":[{{"x":1,"spanId":"eee19b7ec3c1b174"}}],"status":{{"x":1,"code":1}}}}]}}]}}]}}"#
    );
    let req: Req = ok(&json);
    let rs = &req.resource_spans[0];
    let kv = &rs.resource.as_ref().unwrap().attributes[0];
    assert_eq!(kv.value.as_ref().unwrap().value, Some(Value::StringValue("v".into())));
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "s");
    let s = &ss.spans[0];
    assert_eq!((s.name.as_str(), s.trace_id.clone()), ("n", hex(TID)));
    assert_eq!(s.events[0].name, "e");
    assert_eq!(s.links[0].span_id, hex("eee19b7ec3c1b174"));
    assert_eq!(s.status.as_ref().unwrap().code, 1);
}

#[test]
fn any_value_scalar_members_decode() {
    assert_eq!(attr(r#"{"doubleValue":637.704}"#), Some(Value::DoubleValue(637.704)));
    assert_eq!(attr(r#"{"doubleValue":10}"#), Some(Value::DoubleValue(10.0)));
    assert_eq!(attr(r#"{"doubleValue":"1.5"}"#), Some(Value::DoubleValue(1.5)));
    assert_eq!(attr(r#"{"bytesValue":"aGVsbG8="}"#), Some(Value::BytesValue(b"hello".to_vec())));
    assert_eq!(attr(r#"{"bytesValue":"aGVsbG8"}"#), Some(Value::BytesValue(b"hello".to_vec())));
    assert_eq!(attr(r#"{"bytesValue":"-_8="}"#), Some(Value::BytesValue(vec![0xfb, 0xff])));
    assert_eq!(attr(r#"{"bytesValue":"-_8"}"#), Some(Value::BytesValue(vec![0xfb, 0xff])));
    assert_eq!(attr(r#"{"boolValue":true}"#), Some(Value::BoolValue(true)));
    assert_eq!(attr(r#"{"stringValue":"\u00e9\n"}"#), Some(Value::StringValue("é\n".into())));
}

#[test]
fn special_doubles_decode_from_strings() {
    let d = |v: &str| match attr(&format!(r#"{{"doubleValue":{v}}}"#)) {
        Some(Value::DoubleValue(d)) => d,
        other => panic!("{other:?}"),
    };
    assert!(d(r#""NaN""#).is_nan());
    assert_eq!(d(r#""Infinity""#), f64::INFINITY);
    assert_eq!(d(r#""-Infinity""#), f64::NEG_INFINITY);
    let p = format!("{SPAN_PATH}.attributes[0].value.doubleValue");
    assert_err(&attr_err(r#"{"doubleValue":"inf"}"#), &p, r#"invalid double "inf""#);
    assert_err(&attr_err(r#"{"doubleValue":"1e999"}"#), &p, "out of range");
}

#[test]
fn malformed_bytes_are_rejected() {
    let e = attr_err(r#"{"bytesValue":"a*b"}"#);
    assert_err(&e, &format!("{SPAN_PATH}.attributes[0].value.bytesValue"), "invalid base64");
}

#[test]
fn nested_arrays_and_kvlists_decode() {
    let v = attr(
        r#"{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"b","value":{"intValue":"1"}}]}}]}}}]}}]}}"#,
    );
    let Some(Value::ArrayValue(a)) = v else { panic!("{v:?}") };
    let Some(Value::KvlistValue(kv)) = &a.values[0].value else { panic!() };
    let Some(Value::ArrayValue(a2)) = &kv.values[0].value.as_ref().unwrap().value else { panic!() };
    let Some(Value::KvlistValue(kv2)) = &a2.values[0].value else { panic!() };
    assert_eq!(kv2.values[0].key, "b");
    assert_eq!(kv2.values[0].value.as_ref().unwrap().value, Some(Value::IntValue(1)));
}

#[test]
fn empty_any_values_and_keys_are_valid() {
    assert_eq!(attr("{}"), None);
    assert_eq!(attr(r#"{"stringValue":null}"#), None);
    assert_eq!(attr(r#"{"stringValue":null,"intValue":"1"}"#), Some(Value::IntValue(1)));
    let s = span(r#""attributes":[{"key":"k"},{"value":{"stringValue":"v"}}]"#);
    assert_eq!(s.attributes[0].value, None);
    assert_eq!(s.attributes[1].key, "");
    let Some(Value::ArrayValue(a)) = attr(r#"{"arrayValue":{}}"#) else { panic!() };
    assert!(a.values.is_empty());
    let Some(Value::KvlistValue(kv)) = attr(r#"{"kvlistValue":{}}"#) else { panic!() };
    assert!(kv.values.is_empty());
}

#[test]
fn two_oneof_members_are_rejected() {
    let e = attr_err(r#"{"stringValue":"a","intValue":"1"}"#);
    assert_err(&e, &format!("{SPAN_PATH}.attributes[0].value.intValue"), "AnyValue has both stringValue and intValue");
    let e = attr_err(r#"{"stringValue":"a","stringValue":"b"}"#);
    assert_err(&e, &format!("{SPAN_PATH}.attributes[0].value.stringValue"), "duplicate field");
}

#[test]
fn null_means_default_everywhere() {
    let s = span(
        r#""name":null,"attributes":null,"kind":null,"startTimeUnixNano":null,"status":null,"events":[null],"flags":null"#,
    );
    assert_eq!((s.name.as_str(), s.kind, s.start_time_unix_nano, s.flags), ("", 0, 0, 0));
    assert!(s.attributes.is_empty() && s.status.is_none());
    assert_eq!(s.events.len(), 1);
    let req: Req = ok(r#"{"resourceSpans":null}"#);
    assert!(req.resource_spans.is_empty());
    let req: Req = ok(r#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"scope":null}]}]}"#);
    assert!(req.resource_spans[0].resource.is_none());
    assert!(req.resource_spans[0].scope_spans[0].scope.is_none());
}

#[test]
fn empty_requests_and_empty_objects_at_every_level_are_accepted() {
    let _: Req = ok("{}");
    let _: ExportMetricsServiceRequest = ok("{}");
    let _: ExportLogsServiceRequest = ok(" {} \n");
    let req: Req = ok(r#"{"resourceSpans":[]}"#);
    assert!(req.resource_spans.is_empty());
    let req: Req = ok(
        r#"{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{"events":[{}],"links":[{}],"status":{}}]}]}]}"#,
    );
    assert_eq!(req.resource_spans[0].scope_spans[0].spans[0].events.len(), 1);
}

#[test]
fn top_level_must_be_exactly_one_json_object() {
    assert_err(&err::<Req>("null"), "", "invalid type: null, expected ExportTraceServiceRequest JSON object");
    assert_err(&err::<Req>("[]"), "", "invalid type: sequence");
    assert_err(&err::<Req>(r#"[[{"schemaUrl":"x"}]]"#), "", "invalid type: sequence");
    assert_err(&err::<Req>(r#""x""#), "", "invalid type: string");
    assert_err(&err::<Req>("{}x"), "", "trailing characters");
    let e = err::<Req>("");
    assert_eq!(e.message, "empty body: expected a JSON object");
    let e = err::<Req>(r#"{"resourceSpans":[],"resourceSpans":[]}"#);
    assert_err(&e, "resourceSpans", "duplicate field");
}
