use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::profiles::v1development::ExportProfilesServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::profiles::v1development::{Profile, ProfilesDictionary, ResourceProfiles, ScopeProfiles};
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::export::s3::ObjectEncoder;

fn spans(trace: u8, names: &[&str]) -> Vec<u8> {
    let spans = names
        .iter()
        .map(|n| Span { trace_id: vec![trace; 16], span_id: vec![1; 8], name: (*n).into(), ..Default::default() })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn object(kind: SignalKind, format: ArchiveFormat, compression: ArchiveCompression, requests: &[Vec<u8>]) -> Vec<u8> {
    let mut e = ObjectEncoder::new(kind, format, compression).unwrap();
    let mut out = Vec::new();
    for r in requests {
        e.append(r).unwrap();
        e.drain(|b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    }
    out.extend(e.finish().unwrap());
    out
}

fn read_all(
    bytes: &[u8],
    kind: SignalKind,
    format: ArchiveFormat,
    compression: ArchiveCompression,
    max: usize,
    trace_id: Option<[u8; 16]>,
) -> Result<Vec<Request>, ReadError> {
    let mut got = Vec::new();
    read_object(bytes, kind, format, compression, max, Filter { trace_id }, &mut |r| {
        got.push(r);
        true
    })?;
    Ok(got)
}

fn names(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .flat_map(|r| ExportTraceServiceRequest::decode(r.bytes.as_slice()).unwrap().resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|s| s.name)
        .collect()
}

#[test]
fn a_proto_object_comes_back_as_requests_under_the_size_holding_every_span_in_order() {
    let requests = [spans(1, &["a", "b"]), spans(2, &["c"]), spans(1, &["d", "e", "f"])];
    for compression in [ArchiveCompression::Zstd, ArchiveCompression::Gzip, ArchiveCompression::None] {
        let bytes = object(SignalKind::Traces, ArchiveFormat::OtlpProto, compression, &requests);
        let got = read_all(&bytes, SignalKind::Traces, ArchiveFormat::OtlpProto, compression, 60, None).unwrap();
        assert!(got.len() > 1, "cut at the size");
        assert_eq!(got.iter().map(|r| r.items).sum::<u64>(), 6);
        assert_eq!(names(&got), ["a", "b", "c", "d", "e", "f"]);
        // Cut at entries: the requests concatenated are the object's bytes.
        assert_eq!(got.iter().flat_map(|r| r.bytes.clone()).collect::<Vec<u8>>(), requests.concat());
        let whole = read_all(&bytes, SignalKind::Traces, ArchiveFormat::OtlpProto, compression, 1 << 20, None).unwrap();
        assert_eq!(whole.len(), 1);
    }
}

#[test]
fn a_json_lines_object_comes_back_as_the_same_requests() {
    let requests = [spans(1, &["a"]), spans(2, &["b", "c"])];
    let bytes = object(SignalKind::Traces, ArchiveFormat::OtlpJson, ArchiveCompression::Zstd, &requests);
    let got =
        read_all(&bytes, SignalKind::Traces, ArchiveFormat::OtlpJson, ArchiveCompression::Zstd, 1 << 20, None).unwrap();
    assert_eq!(names(&got), ["a", "b", "c"]);
    assert_eq!(got.iter().map(|r| r.items).sum::<u64>(), 3);
}

#[test]
fn a_trace_id_keeps_only_that_traces_spans_and_log_records() {
    let requests = [spans(1, &["a", "b"]), spans(2, &["c"]), spans(1, &["d"])];
    let bytes = object(SignalKind::Traces, ArchiveFormat::OtlpProto, ArchiveCompression::None, &requests);
    let got = read_all(
        &bytes,
        SignalKind::Traces,
        ArchiveFormat::OtlpProto,
        ArchiveCompression::None,
        1 << 20,
        Some([2; 16]),
    )
    .unwrap();
    assert_eq!(names(&got), ["c"]);
    assert_eq!(got[0].items, 1);
    let none = read_all(
        &bytes,
        SignalKind::Traces,
        ArchiveFormat::OtlpProto,
        ArchiveCompression::None,
        1 << 20,
        Some([9; 16]),
    )
    .unwrap();
    assert!(none.is_empty());

    let record = |trace: u8, body: &str| LogRecord {
        trace_id: vec![trace; 16],
        body: Some(crate::proto::common::v1::AnyValue {
            value: Some(crate::proto::common::v1::any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record(1, "x"), record(3, "y")], ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let bytes = object(SignalKind::Logs, ArchiveFormat::OtlpJson, ArchiveCompression::Gzip, &[logs]);
    let got =
        read_all(&bytes, SignalKind::Logs, ArchiveFormat::OtlpJson, ArchiveCompression::Gzip, 1 << 20, Some([3; 16]))
            .unwrap();
    assert_eq!(got.len(), 1);
    let back = ExportLogsServiceRequest::decode(got[0].bytes.as_slice()).unwrap();
    assert_eq!(back.resource_logs[0].scope_logs[0].log_records, vec![record(3, "y")]);
}

#[test]
fn a_profiles_object_stays_one_request_with_its_dictionary() {
    let request = ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles {
            scope_profiles: vec![ScopeProfiles { profiles: vec![Profile::default(); 3], ..Default::default() }],
            ..Default::default()
        }],
        dictionary: Some(ProfilesDictionary { string_table: vec!["".into(), "main".into()], ..Default::default() }),
    }
    .encode_to_vec();
    for format in [ArchiveFormat::OtlpProto, ArchiveFormat::OtlpJson] {
        let bytes = object(SignalKind::Profiles, format, ArchiveCompression::Zstd, std::slice::from_ref(&request));
        let got = read_all(&bytes, SignalKind::Profiles, format, ArchiveCompression::Zstd, 4, None).unwrap();
        assert_eq!(got.len(), 1, "{format:?}");
        assert_eq!(got[0].items, 3);
        assert_eq!(
            ExportProfilesServiceRequest::decode(got[0].bytes.as_slice()).unwrap(),
            ExportProfilesServiceRequest::decode(request.as_slice()).unwrap()
        );
    }
}

#[test]
fn a_truncated_or_foreign_object_is_an_error_not_a_short_read() {
    let bytes = object(SignalKind::Traces, ArchiveFormat::OtlpProto, ArchiveCompression::None, &[spans(1, &["a"])]);
    let cut = &bytes[..bytes.len() - 3];
    let e = read_all(cut, SignalKind::Traces, ArchiveFormat::OtlpProto, ArchiveCompression::None, 1 << 20, None)
        .unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    let zst = object(SignalKind::Traces, ArchiveFormat::OtlpProto, ArchiveCompression::Zstd, &[spans(1, &["a"])]);
    assert!(read_all(
        &zst[..zst.len() - 4],
        SignalKind::Traces,
        ArchiveFormat::OtlpProto,
        ArchiveCompression::Zstd,
        1 << 20,
        None
    )
    .is_err());
    assert!(read_all(
        b"{not json}\n",
        SignalKind::Logs,
        ArchiveFormat::OtlpJson,
        ArchiveCompression::None,
        1 << 20,
        None
    )
    .is_err());
}
