//! The fourth signal through the one generic path: `POST /v1development/profiles` in protobuf and OTLP/JSON,
//! forwarded to `ProfilesService/Export` (the path the OTLP specification gives profiles while they are in development), each request as one export with its own dictionary.

use crate::common::*;
use otlp_bridge::proto::collector::profiles::v1development::{
    ExportProfilesServiceRequest, ExportProfilesServiceResponse,
};
use otlp_bridge::proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use otlp_bridge::proto::profiles::v1development::{
    Function, Line, Link, Location, Profile, ProfilesDictionary, ResourceProfiles, Sample, ScopeProfiles, Stack,
    ValueType,
};
use otlp_bridge::proto::resource::v1::Resource;
use otlp_bridge::SignalKind;
use prost::Message;

/// A request of `n` CPU profiles whose samples index into its own dictionary (`tag` makes each request's strings,
/// and so its indices' meaning, its own).
fn profiles(tag: &str, n: usize) -> ExportProfilesServiceRequest {
    let strings = ["", "samples", "count", "cpu", "nanoseconds", "main", tag].map(String::from).to_vec();
    let dictionary = ProfilesDictionary {
        string_table: strings,
        function_table: vec![
            Function::default(),
            Function { name_strindex: 5, filename_strindex: 6, ..Default::default() },
        ],
        location_table: vec![
            Location::default(),
            Location {
                address: 0x4000,
                lines: vec![Line { function_index: 1, line: 42, column: 7 }],
                ..Default::default()
            },
        ],
        stack_table: vec![Stack::default(), Stack { location_indices: vec![1] }],
        link_table: vec![Link::default(), Link { trace_id: vec![7; 16], span_id: vec![8; 8] }],
        ..Default::default()
    };
    let profile = |i: usize| Profile {
        sample_type: Some(ValueType { type_strindex: 1, unit_strindex: 2 }),
        period_type: Some(ValueType { type_strindex: 3, unit_strindex: 4 }),
        period: 10_000_000,
        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
        duration_nano: 1_000_000_000,
        profile_id: vec![i as u8 + 1; 16],
        samples: vec![Sample {
            stack_index: 1,
            link_index: 1,
            values: vec![3, -1],
            timestamps_unix_nano: vec![1_700_000_000_000_000_001],
            ..Default::default()
        }],
        original_payload_format: "pprof".into(),
        original_payload: vec![0, 1, 2, 0xff],
        ..Default::default()
    };
    let service = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(tag.into())) }),
        ..Default::default()
    };
    ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles {
            resource: Some(Resource { attributes: vec![service], ..Default::default() }),
            scope_profiles: vec![ScopeProfiles {
                scope: Some(InstrumentationScope { name: "profiler".into(), ..Default::default() }),
                profiles: (0..n).map(profile).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
        dictionary: Some(dictionary),
    }
}

fn received(backend: &MockBackend) -> Vec<ExportProfilesServiceRequest> {
    let acked = backend.acked();
    assert!(acked.iter().all(|r| r.kind == SignalKind::Profiles), "only ProfilesService/Export was called");
    acked.into_iter().map(|r| ExportProfilesServiceRequest::decode(r.raw).unwrap()).collect()
}

#[tokio::test]
async fn protobuf_profiles_are_forwarded_byte_for_byte_to_the_profiles_service() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let sent = profiles("checkout", 3);
    let a = post_pb(&bridge, "/v1development/profiles", &sent).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(
        ExportProfilesServiceResponse::decode(a.body.clone()).unwrap(),
        ExportProfilesServiceResponse::default()
    );
    assert_eq!(backend.acked().iter().map(|r| r.raw.clone()).collect::<Vec<_>>(), vec![sent.encode_to_vec()]);
    assert_eq!(bridge.metric("otelcol_receiver_accepted_profiles_total", &[]).await, 3.0);
}

#[tokio::test]
async fn json_profiles_are_transcoded_to_the_same_message() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let sent = profiles("checkout", 2);
    // Written by hand, not by our encoder, so the decoder is checked against OTLP/JSON as clients write it: hex ids,
    // base64 bytes, 64-bit integers as strings, camelCase keys with a snake_case one mixed in.
    let json = r#"{"resourceProfiles":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
      "scopeProfiles":[{"scope":{"name":"profiler"},"profiles":[
        {"sampleType":{"typeStrindex":1,"unitStrindex":2},"periodType":{"typeStrindex":3,"unitStrindex":4},
         "period":"10000000","timeUnixNano":"1700000000000000000","durationNano":"1000000000",
         "profileId":"01010101010101010101010101010101",
         "samples":[{"stackIndex":1,"linkIndex":1,"values":["3","-1"],"timestampsUnixNano":["1700000000000000001"]}],
         "originalPayloadFormat":"pprof","originalPayload":"AAEC/w=="},
        {"sampleType":{"typeStrindex":1,"unitStrindex":2},"periodType":{"typeStrindex":3,"unitStrindex":4},
         "period":10000000,"timeUnixNano":"1700000000000000001","duration_nano":"1000000000",
         "profileId":"02020202020202020202020202020202",
         "samples":[{"stackIndex":1,"linkIndex":1,"values":[3,-1],"timestampsUnixNano":["1700000000000000001"]}],
         "originalPayloadFormat":"pprof","originalPayload":"AAEC_w"}]}]}],
      "dictionary":{"stringTable":["","samples","count","cpu","nanoseconds","main","checkout"],
        "functionTable":[{},{"nameStrindex":5,"filenameStrindex":6}],
        "locationTable":[{},{"address":"16384","lines":[{"functionIndex":1,"line":"42","column":"7"}]}],
        "stackTable":[{},{"locationIndices":[1]}],
        "linkTable":[{},{"traceId":"07070707070707070707070707070707","spanId":"0808080808080808"}]}}"#;
    let a = post(&bridge.url("/v1development/profiles"), "application/json", json).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(received(&backend), vec![sent]);
    assert_eq!(bridge.metric("otelcol_receiver_accepted_profiles_total", &["json"]).await, 2.0);
}

#[tokio::test]
async fn profiles_requests_are_never_merged_so_each_keeps_its_dictionary() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let requests: Vec<_> = (0..6).map(|i| profiles(&format!("service-{i}"), 1 + i % 3)).collect();
    let answers =
        futures_util::future::join_all(requests.iter().map(|r| post_pb(&bridge, "/v1development/profiles", r))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    let mut got = received(&backend);
    got.sort_by_key(|r| r.encode_to_vec());
    let mut want = requests;
    want.sort_by_key(|r| r.encode_to_vec());
    assert_eq!(got, want, "one export per request, each whole");
}

#[tokio::test]
async fn a_profile_id_of_the_wrong_length_is_a_400_naming_the_field() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let mut bad = profiles("checkout", 1);
    bad.resource_profiles[0].scope_profiles[0].profiles[0].profile_id = vec![1; 5];
    let a = post_pb(&bridge, "/v1development/profiles", &bad).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.status_message().1.contains("profile_id"), "{}", a.status_message().1);
    assert_eq!(backend.calls(), 0);
}
