//! Depth limits, unknown fields, packed encodings, oneof counting and split specifics.

use std::collections::HashSet;

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use bytes::Bytes;
use prost::Message;

use super::super::schema::{Kind, Schema};
use super::super::{scan, split, ErrorKind, LOGS, METRICS, TRACES};
use super::{in_span, key, ld, varint, vi, SIGS};

/// A logs body whose deepest message sits `depth` levels below the request:
/// resource_logs(1) > scope_logs(2) > log_records(3) > body AnyValue(4) > array_value(5) >
/// values AnyValue(6) > ... Built back to front so a million levels cost O(n).
fn deep_logs(depth: usize, innermost: &[u8]) -> Vec<u8> {
    assert!(depth >= 4);
    let mut rev: Vec<u8> = innermost.iter().rev().copied().collect();
    let wrap = |rev: &mut Vec<u8>, field: u32| {
        let len = varint(rev.len() as u64);
        rev.extend(len.iter().rev());
        rev.extend(key(field, 2).iter().rev());
    };
    for d in (4..depth).rev() {
        // The message at depth d holds the one at d + 1.
        wrap(&mut rev, if d % 2 == 0 { 5 } else { 1 });
    }
    for field in [5, 2, 2, 1] {
        wrap(&mut rev, field);
    }
    rev.reverse();
    rev
}

#[test]
fn nesting_up_to_prosts_limit_is_accepted_and_one_deeper_is_rejected() {
    let ok = deep_logs(100, &[]);
    assert_eq!(scan(&LOGS, &ok).unwrap().items, 1);
    assert!(ExportLogsServiceRequest::decode(&ok[..]).is_ok());
    let bad = deep_logs(101, &[]);
    let err = scan(&LOGS, &bad).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooDeep(100));
    assert!(ExportLogsServiceRequest::decode(&bad[..]).is_err());
    // The path is abbreviated rather than 100 segments long.
    let msg = err.to_string();
    assert_eq!(
        msg,
        "resource_logs[0].scope_logs[0].log_records[0].body.array_value.values[0].(… 89 more …)\
         .values[0].array_value.values[0].array_value.values[0].array_value: \
         messages nested deeper than 100 levels at byte offset 239"
    );
    // prost also refuses to skip an unknown field in a message at the limit (but reads
    // scalars there), and so does the scan.
    for (depth, inner, ok) in [(100, vi(99, 1), false), (99, vi(99, 1), true), (100, vi(2, 1), true)] {
        let body = deep_logs(depth, &inner);
        assert_eq!(ExportLogsServiceRequest::decode(&body[..]).is_ok(), ok);
        assert_eq!(scan(&LOGS, &body).is_ok(), ok);
    }
}

#[test]
fn a_plain_attribute_at_the_depth_limit_is_judged_as_prost_judges_it() {
    // AnyValue (at `depth`) > kvlist_value: KeyValueList > values: KeyValue > value: AnyValue, holding a string or
    // nothing: the shape the scan takes a short cut for. The KeyValue sits at depth + 2.
    for value in [&[0x0A, 1, b'v'][..], &[]] {
        let mut kv = vec![0x0A, 1, b'k', 0x12, value.len() as u8];
        kv.extend_from_slice(value);
        let mut list = vec![0x0A, kv.len() as u8];
        list.extend(kv);
        let mut inner = vec![0x32, list.len() as u8];
        inner.extend(list);
        for (depth, ok) in [(96, true), (98, false)] {
            let body = deep_logs(depth, &inner);
            assert_eq!(ExportLogsServiceRequest::decode(&body[..]).is_ok(), ok, "prost at {depth}");
            assert_eq!(scan(&LOGS, &body).is_ok(), ok, "scan at {depth}, value {value:?}");
        }
    }
}

#[test]
fn a_million_deep_body_is_rejected_without_overflowing_the_stack() {
    let bomb = deep_logs(1_000_000, &[]);
    assert!(bomb.len() > 3_000_000);
    let err = scan(&LOGS, &bomb).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooDeep(100));
    assert!(ExportLogsServiceRequest::decode(&bomb[..]).is_err());
}

fn two_span_entries() -> (Vec<u8>, Vec<u8>) {
    let entry = |name: &str| {
        let span = Span { name: name.into(), ..Default::default() };
        let ss = ScopeSpans { spans: vec![span.clone(), span], ..Default::default() };
        let rs = ResourceSpans { scope_spans: vec![ss], ..Default::default() };
        ExportTraceServiceRequest { resource_spans: vec![rs] }.encode_to_vec()
    };
    (entry("first"), entry("second"))
}

#[test]
fn unknown_top_level_fields_are_accepted_and_forwarded_exactly_once() {
    let (a, b) = two_span_entries();
    let unknown1 = [vi(99, 7), ld(100, b"future")].concat();
    let unknown2 = [key(101, 5), vec![1, 2, 3, 4]].concat();
    let body = [unknown1.clone(), a.clone(), unknown2.clone(), b.clone(), vi(102, 1)].concat();
    let s = scan(&TRACES, &body).unwrap();
    assert_eq!(s.items, 4);
    let r0 = unknown1.len()..unknown1.len() + a.len();
    let r1 = r0.end + unknown2.len()..r0.end + unknown2.len() + b.len();
    assert_eq!(s.entries.iter().map(|e| e.range.clone()).collect::<Vec<_>>(), vec![r0, r1]);
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_ok());
    let bytes = Bytes::from(body.clone());
    for max in [0, 10, a.len(), a.len() + 20, body.len() - 1, body.len()] {
        let chunks = split(&TRACES, &bytes, &s, max);
        // Entries fit whole (or are split only at <= a.len()); either way each unknown byte
        // range appears once, so with whole entries the chunks tile the body.
        if max >= b.len() {
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.body.to_vec()).collect();
            assert_eq!(joined, body, "max {max}");
        }
        assert_eq!(chunks.iter().map(|c| c.items).sum::<u64>(), 4);
        for c in &chunks {
            assert!(ExportTraceServiceRequest::decode(&c.body[..]).is_ok());
        }
    }
}

#[test]
fn unknown_nested_fields_survive_and_resource_level_ones_are_repeated_in_each_piece() {
    let span_unknown = ld(99, b"span-extension");
    let scope_unknown = vi(77, 12345);
    let span = [vi(6, 1), span_unknown.clone()].concat();
    let spans: Vec<u8> = (0..4).flat_map(|_| ld(2, &span)).collect();
    // Status field 1 is reserved: also just unknown.
    let reserved = in_span(&ld(15, &vi(1, 5)));
    let body = [ld(1, &[ld(2, &[spans, scope_unknown.clone()].concat()), ld(3, b"url")].concat()), reserved].concat();
    let s = scan(&TRACES, &body).unwrap();
    assert_eq!(s.items, 5);
    let bytes = Bytes::from(body.clone());
    let chunks = split(&TRACES, &bytes, &s, 40);
    assert_eq!(chunks.iter().map(|c| c.items).collect::<Vec<_>>(), vec![1, 1, 1, 1, 1]);
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for c in &chunks[..4] {
        assert!(has(&c.body, &span_unknown));
        assert!(has(&c.body, &scope_unknown), "scope-level unknown field re-emitted");
        assert!(has(&c.body, b"url"), "schema_url re-emitted");
        assert_eq!(scan(&TRACES, &c.body).unwrap().items, 1);
        assert!(ExportTraceServiceRequest::decode(&c.body[..]).is_ok());
    }
}

#[test]
fn packed_and_unpacked_repeated_scalars_are_both_accepted() {
    // resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    let in_point = |field: u32, point: &[u8]| ld(1, &ld(2, &ld(2, &ld(field, &ld(1, point)))));
    let eight = |v: u8| vec![v; 8];
    let cases: Vec<(Vec<u8>, bool)> = vec![
        (in_point(9, &ld(6, &[eight(1), eight(2)].concat())), true),
        (in_point(9, &[key(6, 1), eight(1), key(6, 1), eight(2)].concat()), true),
        (in_point(9, &[key(7, 1), eight(0x40)].concat()), true),
        (in_point(9, &ld(7, &eight(0x40)[..7])), false),
        (in_point(9, &ld(6, &[])), true),
        // exponential histogram point.positive.bucket_counts (uint64)
        (in_point(10, &ld(8, &ld(2, &[1, 0x80, 0x01, 3]))), true),
        (in_point(10, &ld(8, &[vi(2, 1), vi(2, 300)].concat())), true),
        (in_point(10, &ld(8, &ld(2, &[1, 0x80]))), false),
        (in_point(10, &ld(8, &[key(2, 1), eight(1)].concat())), false),
    ];
    for (body, ok) in cases {
        let decoded = ExportMetricsServiceRequest::decode(&body[..]);
        assert_eq!(decoded.is_ok(), ok);
        match scan(&METRICS, &body) {
            Ok(s) => {
                assert!(ok);
                assert_eq!(s.items, 1);
            }
            Err(e) => assert!(!ok, "{e}"),
        }
    }
    let err = scan(&METRICS, &in_point(9, &ld(7, &[0; 7]))).unwrap_err();
    assert!(err.to_string().ends_with(".histogram.data_points[0].explicit_bounds[0] (field 7): packed 64-bit values: length 7 is not a multiple of 8 (offset 12)"), "{err}");
}

#[test]
fn metric_items_count_only_the_oneof_variant_prost_keeps() {
    let points = |n: usize| -> Vec<u8> { (0..n).flat_map(|_| ld(1, &[])).collect() };
    let body_of = |metric: Vec<u8>| ld(1, &ld(2, &ld(2, &metric)));
    // gauge (2 points) then sum (3): prost keeps the sum.
    let mixed = body_of([ld(5, &points(2)), ld(7, &points(3))].concat());
    // gauge twice: prost merges, 5 points.
    let merged = body_of([ld(5, &points(2)), ld(5, &points(3))].concat());
    for (body, want) in [(mixed, 3), (merged, 5)] {
        let flat = (SIGS[1].flat)(&body).unwrap();
        assert_eq!(flat.items, want);
        let s = scan(&METRICS, &body).unwrap();
        assert_eq!(s.items, want);
        for max in [0, 5, 12] {
            let chunks = split(&METRICS, &Bytes::from(body.clone()), &s, max);
            assert_eq!(chunks.iter().map(|c| c.items).sum::<u64>(), want);
            let decoded: u64 = chunks.iter().map(|c| (SIGS[1].flat)(&c.body).unwrap().items).sum();
            assert_eq!(decoded, want);
        }
    }
}

#[test]
fn one_metric_with_many_points_is_split_across_copies_of_its_envelope() {
    use crate::proto::common::v1::InstrumentationScope;
    use crate::proto::metrics::v1::{
        metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    let points = (0..40)
        .map(|i| NumberDataPoint {
            time_unix_nano: i,
            value: Some(number_data_point::Value::AsInt(i as i64)),
            ..Default::default()
        })
        .collect();
    let metric = Metric {
        name: "http.server.requests".into(),
        description: "requests served".into(),
        unit: "{request}".into(),
        data: Some(metric::Data::Sum(Sum { data_points: points, aggregation_temporality: 1, is_monotonic: true })),
        ..Default::default()
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "s".into(), ..Default::default() }),
                metrics: vec![metric],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = Bytes::from(request.encode_to_vec());
    let s = scan(&METRICS, &body).unwrap();
    let chunks = split(&METRICS, &body, &s, 200);
    assert!(chunks.len() > 3, "{} chunks", chunks.len());
    let mut seen = Vec::new();
    for c in &chunks {
        assert!(c.body.len() <= 200, "a chunk of {} bytes", c.body.len());
        let decoded = ExportMetricsServiceRequest::decode(&c.body[..]).unwrap();
        let m = &decoded.resource_metrics[0].scope_metrics[0].metrics[0];
        assert_eq!(
            (m.name.as_str(), m.description.as_str(), m.unit.as_str()),
            ("http.server.requests", "requests served", "{request}")
        );
        let Some(metric::Data::Sum(sum)) = &m.data else { panic!("{m:?}") };
        assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (1, true));
        assert_eq!(c.items, sum.data_points.len() as u64);
        seen.extend(sum.data_points.iter().map(|p| p.time_unix_nano));
    }
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
}

#[test]
fn a_metric_with_two_oneof_variants_is_split_as_the_variant_a_decode_keeps() {
    // The fuzz find (issue 19 item 8): a summary, then a gauge of 6 points, in 167 bytes with a 64-byte limit.
    let empty_points: Vec<u8> = (0..6).flat_map(|_| ld(1, &[])).collect();
    let metric = [ld(1, b"m"), ld(11, &[vi(6, 94), ld(1, &[])].concat()), ld(5, &empty_points)].concat();
    let body = Bytes::from(ld(1, &ld(2, &ld(2, &metric))));
    let s = scan(&METRICS, &body).unwrap();
    assert_eq!(s.items, 6);
    let chunks = split(&METRICS, &body, &s, 16);
    assert!(chunks.len() > 1);
    for c in &chunks {
        assert!(c.body.len() <= 16 || c.items <= 1, "{} bytes, {} items", c.body.len(), c.items);
        let decoded = (SIGS[1].flat)(&c.body).unwrap();
        assert_eq!(decoded.items, c.items);
    }
    assert_eq!(chunks.iter().map(|c| c.items).sum::<u64>(), 6);
    let all: Vec<_> = chunks.iter().flat_map(|c| (SIGS[1].flat)(&c.body).unwrap().rows).collect();
    assert_eq!(all, (SIGS[1].flat)(&body).unwrap().rows);
}

#[test]
fn whole_entry_chunks_are_zero_copy_slices_of_the_input() {
    let (a, b) = two_span_entries();
    let body = Bytes::from([a.clone(), b.clone(), a.clone()].concat());
    let s = scan(&TRACES, &body).unwrap();
    let chunks = split(&TRACES, &body, &s, a.len() + b.len());
    assert_eq!(chunks.len(), 2);
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    for c in &chunks {
        assert!(range.contains(&(c.body.as_ptr() as usize)), "chunk was copied");
    }
    assert_eq!(chunks[0].body.len(), a.len() + b.len());
    assert_eq!(chunks.iter().map(|c| c.items).collect::<Vec<_>>(), vec![4, 2]);
}

#[test]
fn small_or_empty_bodies_come_back_whole_and_mismatched_scans_do_not_panic() {
    let empty = Bytes::new();
    let s = scan(&TRACES, &empty).unwrap();
    assert_eq!(s.items, 0);
    assert!(s.entries.is_empty());
    assert_eq!(split(&TRACES, &empty, &s, 0).len(), 1);
    let (a, b) = two_span_entries();
    let body = Bytes::from([a, b].concat());
    let s = scan(&TRACES, &body).unwrap();
    let chunks = split(&TRACES, &body, &s, body.len());
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].body, body);
    // A scan of another, longer body must not make split slice out of bounds.
    let other = Bytes::from(body[..10].to_vec());
    let chunks = split(&TRACES, &other, &s, 5);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].body, other);
}

#[test]
fn schema_tables_are_indexed_by_field_number() {
    fn walk(s: &'static Schema, seen: &mut HashSet<usize>) {
        if !seen.insert(s as *const Schema as usize) {
            return;
        }
        for (i, f) in s.fields.iter().enumerate() {
            assert_eq!(f.num as usize, i + 1, "{} field {}", s.name, f.name);
            assert!(matches!(f.kind, Kind::Reserved) == f.name.is_empty());
            if let Kind::Msg(c) = f.kind {
                walk(c, seen);
            }
        }
    }
    let mut seen = HashSet::new();
    for s in [&TRACES, &METRICS, &LOGS] {
        walk(s, &mut seen);
    }
    // 3 requests, 3 resource, 3 scope entries, common (7), trace (4), metrics (13), logs (1).
    assert_eq!(seen.len(), 34);
    assert_eq!(TRACES.fields.first().map(|f| f.name), Some("resource_spans"));
    assert_eq!(METRICS.name, "ExportMetricsServiceRequest");
}
