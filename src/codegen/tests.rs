//! The generator against the checked-in files, against `opentelemetry_proto`'s descriptors (an independent
//! compilation of the same `.proto` files), and at its limits.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message;
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodOptions};

use super::names::{json_name, snake, upper_camel};
use super::schema::{Schema, MAX_JSON_FIELDS};
use super::{compile, generate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file the generator writes is in `src/generated/`, byte for byte, and nothing else is there. With
/// `OTLP_BRIDGE_REGENERATE=1` the files are written instead (after a change to `proto/` or to the generator).
#[test]
fn generated_files_are_up_to_date() {
    let dir = root().join("src/generated");
    let files = generate(&compile(&root().join("proto")));
    if std::env::var_os("OTLP_BRIDGE_REGENERATE").is_some() {
        for old in std::fs::read_dir(&dir).unwrap() {
            let old = old.unwrap().path();
            if old.extension().is_some_and(|e| e == "rs") {
                std::fs::remove_file(old).unwrap();
            }
        }
        for f in &files {
            std::fs::write(dir.join(&f.name), &f.text).unwrap();
        }
    }
    let mut stale = Vec::new();
    for f in &files {
        if std::fs::read_to_string(dir.join(&f.name)).ok().as_deref() != Some(f.text.as_str()) {
            stale.push(f.name.clone());
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    on_disk.retain(|n| !files.iter().any(|f| &f.name == n));
    assert!(
        stale.is_empty() && on_disk.is_empty(),
        "src/generated/ is not what src/codegen generates from proto/ (differs: {stale:?}; not generated: \
         {on_disk:?}); run `OTLP_BRIDGE_REGENERATE=1 cargo test --lib codegen` and review the diff"
    );
}

/// Files by name, without what depends on the compiler rather than on the .proto: source locations, and the empty
/// `MethodOptions` protoc records for `rpc Export(...) returns (...) {}` where protox records none.
fn files(set: FileDescriptorSet) -> BTreeMap<String, FileDescriptorProto> {
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

/// `proto/` is the schema `opentelemetry_proto` was generated from: same files, messages, fields, numbers, types,
/// JSON names, oneofs, enums and services, so a version bump of `proto/` is checked against the crate's own.
#[test]
fn compiled_descriptors_match_opentelemetry_protos_own() {
    let ours = files(compile(&root().join("proto")));
    let theirs = files(FileDescriptorSet::decode(opentelemetry_proto::DESCRIPTORS).unwrap());
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
    // The JSON tables take their keys from json_name; a compiler that left it out would fall back to the generator's
    // own conversion, so check that it is there and what the spec says (lowerCamelCase).
    let ours = files(compile(&root().join("proto")));
    let trace = &ours["opentelemetry/proto/trace/v1/trace.proto"];
    let span = trace.message_type.iter().find(|m| m.name() == "Span").unwrap();
    let start = span.field.iter().find(|f| f.name() == "start_time_unix_nano").unwrap();
    assert_eq!(start.json_name(), "startTimeUnixNano");
}

fn field(name: &str, number: i32) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        r#type: Some(prost_types::field_descriptor_proto::Type::String as i32),
        ..Default::default()
    }
}

fn one_message(fields: usize) -> FileDescriptorSet {
    let msg = DescriptorProto {
        name: Some("Wide".into()),
        field: (1..=fields).map(|n| field(&format!("f{n}"), n as i32)).collect(),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("wide.proto".into()),
        package: Some("opentelemetry.proto.test.v1".into()),
        message_type: vec![msg],
        ..Default::default()
    };
    FileDescriptorSet { file: vec![file] }
}

#[test]
fn a_message_fits_the_json_field_mask_up_to_its_width() {
    let schema = Schema::read(&one_message(MAX_JSON_FIELDS));
    // Returns (no panic): 32 fields take bits 0..=31 of the decoder's `u32`.
    schema.check_json_limits(&["opentelemetry.proto.test.v1.Wide".to_string()]);
}

#[test]
#[should_panic(expected = "33 fields, more than the JSON decoder's 32-bit field mask")]
fn a_message_wider_than_the_json_field_mask_is_refused() {
    let schema = Schema::read(&one_message(MAX_JSON_FIELDS + 1));
    schema.check_json_limits(&["opentelemetry.proto.test.v1.Wide".to_string()]);
}

#[test]
fn names_follow_prost_and_protoc() {
    assert_eq!(snake("ExponentialHistogramDataPoint"), "exponential_histogram_data_point");
    assert_eq!(snake("KeyValueList"), "key_value_list");
    assert_eq!(snake("HTTPRequest"), "http_request");
    assert_eq!(upper_camel("exponential_histogram"), "ExponentialHistogram");
    let mut f = field("start_time_unix_nano", 1);
    assert_eq!(json_name(&f), "startTimeUnixNano", "computed as protoc does when the descriptor lacks it");
    f.json_name = Some("given".into());
    assert_eq!(json_name(&f), "given");
}
