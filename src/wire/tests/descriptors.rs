//! The schema build.rs generated from `proto/` is the one `opentelemetry_proto` (whose prost types the bridge
//! decodes into and encodes from) was generated from: same files, messages, fields, numbers, types, JSON names,
//! oneofs, enums and services. So the tables and the prost types cannot drift apart on an upgrade of either.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet, MethodOptions};

/// What protox compiled from `proto/` in build.rs.
const OURS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/otlp_descriptors.bin"));

/// Files by name, without what depends on the compiler rather than on the .proto: source locations, and the empty
/// `MethodOptions` protoc records for `rpc Export(...) returns (...) {}` where protox records none.
fn files(bytes: &[u8]) -> BTreeMap<String, FileDescriptorProto> {
    let set = FileDescriptorSet::decode(bytes).unwrap();
    set.file
        .into_iter()
        .map(|mut f| {
            f.source_code_info = None;
            for method in f.service.iter_mut().flat_map(|s| &mut s.method) {
                if method.options == Some(MethodOptions::default()) {
                    method.options = None;
                }
            }
            (f.name().to_string(), f)
        })
        .collect()
}

#[test]
fn generated_descriptors_match_opentelemetry_protos_own() {
    let ours = files(OURS);
    let theirs = files(opentelemetry_proto::DESCRIPTORS);
    let names: Vec<&String> = ours.keys().collect();
    for expected in ["common/v1/common", "resource/v1/resource", "trace/v1/trace", "metrics/v1/metrics", "logs/v1/logs"]
        .iter()
        .chain(&["profiles/v1development/profiles", "collector/trace/v1/trace_service"])
        .chain(&["collector/metrics/v1/metrics_service", "collector/logs/v1/logs_service"])
        .chain(&["collector/profiles/v1development/profiles_service"])
    {
        let name = format!("opentelemetry/proto/{expected}.proto");
        assert!(ours.contains_key(&name), "proto/ lacks {name}: {names:?}");
    }
    for (name, file) in &ours {
        let Some(other) = theirs.get(name) else { panic!("opentelemetry_proto has no {name}") };
        assert_eq!(file, other, "{name} differs from opentelemetry_proto's");
    }
}

#[test]
fn descriptors_carry_json_names() {
    // The JSON tables take their keys from json_name; a compiler that left it out would fall back to build.rs's own
    // conversion, so check that it is there and what the spec says (lowerCamelCase).
    let ours = files(OURS);
    let trace = &ours["opentelemetry/proto/trace/v1/trace.proto"];
    let span = trace.message_type.iter().find(|m| m.name() == "Span").unwrap();
    let start = span.field.iter().find(|f| f.name() == "start_time_unix_nano").unwrap();
    assert_eq!(start.json_name(), "startTimeUnixNano");
}
