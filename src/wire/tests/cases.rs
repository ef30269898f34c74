//! Hand-picked rejections: ids, wire types, lengths, groups, varints.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    metric::Data, Exemplar, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use crate::proto::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::super::{scan, ErrorKind, LOGS, METRICS, TRACES};
use super::{in_span, key, ld, varint, vi, SIGS};

#[test]
fn ids_of_wrong_length_are_rejected_everywhere_but_empty_ids_pass() {
    let id = |n: usize| vec![7u8; n];
    let span = |f: &dyn Fn(&mut Span)| {
        let mut s = Span::default();
        f(&mut s);
        (
            0,
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans { spans: vec![s], ..Default::default() }],
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        )
    };
    let log = |f: &dyn Fn(&mut LogRecord)| {
        let mut r = LogRecord::default();
        f(&mut r);
        (
            2,
            ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs { log_records: vec![r], ..Default::default() }],
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        )
    };
    let exemplar = |f: &dyn Fn(&mut Exemplar)| {
        let mut e = Exemplar::default();
        f(&mut e);
        let p = NumberDataPoint { exemplars: vec![e], ..Default::default() };
        let m = Metric { data: Some(Data::Gauge(Gauge { data_points: vec![p] })), ..Default::default() };
        (
            1,
            ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics { metrics: vec![m], ..Default::default() }],
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        )
    };
    let link = |tid: Vec<u8>, sid: Vec<u8>| {
        span(&|s| s.links = vec![span::Link { trace_id: tid.clone(), span_id: sid.clone(), ..Default::default() }])
    };
    let cases = [
        (span(&|s| s.trace_id = id(15)), "spans[0].trace_id (field 1)", 15, 16),
        (span(&|s| s.trace_id = id(32)), "spans[0].trace_id (field 1)", 32, 16),
        (span(&|s| s.span_id = id(16)), "spans[0].span_id (field 2)", 16, 8),
        (span(&|s| s.parent_span_id = id(7)), "spans[0].parent_span_id (field 4)", 7, 8),
        (link(id(8), vec![]), "links[0].trace_id (field 1)", 8, 16),
        (link(vec![], id(9)), "links[0].span_id (field 2)", 9, 8),
        (log(&|r| r.trace_id = id(1)), "log_records[0].trace_id (field 9)", 1, 16),
        (log(&|r| r.span_id = id(4)), "log_records[0].span_id (field 10)", 4, 8),
        (exemplar(&|e| e.trace_id = id(17)), "exemplars[0].trace_id (field 5)", 17, 16),
        (exemplar(&|e| e.span_id = id(16)), "exemplars[0].span_id (field 4)", 16, 8),
    ];
    for ((sig, body), path, len, expected) in cases {
        let err = scan(SIGS[sig].schema, &body).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::IdLength { len, expected });
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{path}: invalid length for ID: {len} bytes, expected {expected} or empty")),
            "{msg}"
        );
        // The one rule prost does not have: it decodes these.
        assert!((SIGS[sig].flat)(&body).is_ok());
    }
    let (_, ok) = span(&|s| {
        s.trace_id = id(16);
        s.span_id = id(8);
    });
    assert_eq!(scan(&TRACES, &ok).unwrap().items, 1);
    let (_, ok) = exemplar(&|e| e.trace_id = vec![]);
    assert_eq!(scan(&METRICS, &ok).unwrap().items, 1);
    let (_, ok) = log(&|r| r.span_id = id(8));
    assert_eq!(scan(&LOGS, &ok).unwrap().items, 1);
}

#[test]
fn known_fields_with_the_wrong_wire_type_are_rejected_like_prost() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vi(1, 1), "resource_spans[0]: wrong wire type 0 (varint), expected 2 (length-delimited) at byte offset 1"),
        (in_span(&vi(5, 1)), "resource_spans[0].scope_spans[0].spans[0].name (field 5): wrong wire type 0 (varint), expected 2 (length-delimited) at byte offset 7"),
        (in_span(&vi(7, 5)), "resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano (field 7): wrong wire type 0 (varint), expected 1 (64-bit) at byte offset 7"),
        (in_span(&[key(16, 1), vec![0; 8]].concat()), "resource_spans[0].scope_spans[0].spans[0].flags (field 16): wrong wire type 1 (64-bit), expected 5 (32-bit) at byte offset 8"),
        (in_span(&vi(9, 3)), "resource_spans[0].scope_spans[0].spans[0].attributes[0]: wrong wire type 0 (varint), expected 2 (length-delimited) at byte offset 7"),
        (in_span(&ld(6, b"")), "resource_spans[0].scope_spans[0].spans[0].kind (field 6): wrong wire type 2 (length-delimited), expected 0 (varint) at byte offset 7"),
    ];
    for (body, want) in cases {
        let err = scan(&TRACES, &body).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert!(matches!(err.kind(), ErrorKind::WrongWireType { .. }));
        assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
    }
    // And the right wire type is fine.
    let good = in_span(&[key(7, 1), vec![0; 8]].concat());
    assert_eq!(scan(&TRACES, &good).unwrap().items, 1);
}

#[test]
fn a_length_claiming_2_gib_is_reported_precisely() {
    let mut body = key(1, 2);
    body.extend(varint(1 << 31));
    body.extend([0u8; 10]);
    let err = scan(&TRACES, &body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0]: length 2147483648 runs past the end of the body (offset 6, 10 bytes left)"
    );
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
    // Nested: the span's name claims more than the span holds.
    let mut span = key(5, 2);
    span.extend(varint(100));
    span.extend(b"abc");
    let body = [in_span(&span), ld(1, b"")].concat();
    let err = scan(&TRACES, &body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0].scope_spans[0].spans[0].name (field 5): length 100 runs past the end of the enclosing message (offset 8, 3 bytes left)"
    );
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
}

#[test]
fn groups_are_rejected_known_or_unknown() {
    // Known field as a group: prost rejects too.
    let body = [key(1, 3), key(1, 4)].concat();
    let err = scan(&TRACES, &body).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Group(3));
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
    // Unknown nested group (prost would skip it; OTLP never uses groups, so refuse).
    let body = in_span(&[key(99, 3), key(99, 4)].concat());
    let err = scan(&TRACES, &body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0].scope_spans[0].spans[0]: wire type 3 (start group) is not supported (groups are not used by OTLP) at byte offset 6"
    );
    let body = in_span(&key(99, 4));
    assert_eq!(scan(&TRACES, &body).unwrap_err().kind(), &ErrorKind::Group(4));
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
}

#[test]
fn malformed_keys_varints_and_fixed_values_are_rejected_like_prost() {
    let cases: Vec<(Vec<u8>, ErrorKind)> = vec![
        (vec![0x00, 0x00], ErrorKind::FieldNumberZero),
        (key(3, 6), ErrorKind::InvalidWireType(6)),
        (in_span(&key(3, 7)), ErrorKind::InvalidWireType(7)),
        (vec![0x80; 11], ErrorKind::OverlongVarint),
        ([key(50, 0), vec![0xff; 9], vec![0x02]].concat(), ErrorKind::OverlongVarint),
        (vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01], ErrorKind::InvalidKey(1 << 35)),
        (vec![0x0a, 0x80], ErrorKind::TruncatedVarint),
        (in_span(&[key(7, 1), vec![0; 5]].concat()), ErrorKind::TruncatedFixed { need: 8, left: 5 }),
        (in_span(&[key(16, 5), vec![0; 3]].concat()), ErrorKind::TruncatedFixed { need: 4, left: 3 }),
    ];
    for (body, kind) in cases {
        let err = scan(&TRACES, &body).unwrap_err();
        assert_eq!(err.kind(), &kind, "{err}");
        assert!(ExportTraceServiceRequest::decode(&body[..]).is_err(), "{err}");
    }
    // The largest valid varint (10th byte 1) is fine in an unknown field.
    let body = [key(50, 0), vec![0xff; 9], vec![0x01]].concat();
    assert!(scan(&TRACES, &body).is_ok());
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_ok());
}
