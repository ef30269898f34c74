//! The generator of `src/generated/`: the prost types of the pinned OTLP `.proto` files in `proto/` and the schema
//! tables the bridge runs on, so the OTLP schema is written once, by its owners, and every generated line is in the
//! repository for a reviewer to read. Test-only code: `cargo test` regenerates everything in memory and fails when a
//! checked-in file differs (`tests::generated_files_are_up_to_date`, which rewrites them with
//! `OTLP_BRIDGE_REGENERATE=1`). No build script: the bridge's own build compiles no `.proto` and needs no `protoc`.
//!
//! - `opentelemetry.proto.*.rs`: the prost messages and enums (prost-build, from the descriptors protox compiles);
//! - `wire_schema.rs`: the wire scan's and splitter's `Schema` statics (`src/wire/schema.rs`);
//! - `json_schema.rs`: the JSON decoder's and transcoder's `message!` tables and enum names (`src/json/schema.rs`);
//! - `json_encode.rs`: the JSON encoder's `Encode` impls (`src/json/encode.rs`).
//!
//! JSON keys are each field's `json_name` plus its proto (snake_case) name, the alias the Collector accepts. What
//! a `.proto` cannot say is the overlay below ([`SIGNALS`], [`ITEMS`], [`IDS`]); where to split follows from it (a
//! field is split along when it leads to items). A schema the tables cannot express (a field type without a wire
//! kind, two oneofs in one message, more fields than the JSON decoder's bitmask holds) fails the generation with the
//! reason, never a silently wrong table.

mod encode;
mod json;
mod names;
mod schema;
#[cfg(test)]
mod tests;
mod wire;

use std::path::Path;

use prost_build::Module;
use prost_types::FileDescriptorSet;

use schema::Schema;

/// The collector services; everything else is reached through their imports.
pub(super) const FILES: &[&str] = &[
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
    "opentelemetry/proto/collector/logs/v1/logs_service.proto",
    "opentelemetry/proto/collector/profiles/v1development/profiles_service.proto",
];

// ---- the overlay: what the .proto cannot say ----

/// The signals this build serves: request message, its response, and the wire schema static's name.
pub(super) const SIGNALS: &[(&str, &str, &str)] = &[
    ("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest", "ExportTraceServiceResponse", "TRACES"),
    ("opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest", "ExportMetricsServiceResponse", "METRICS"),
    ("opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest", "ExportLogsServiceResponse", "LOGS"),
    (
        "opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest",
        "ExportProfilesServiceResponse",
        "PROFILES",
    ),
];

/// Requests whose entries refer into a request-wide table (the profiles `dictionary`): a body is never cut into
/// several, since every piece would need the whole table (`wire::split` sends it whole).
pub(super) const SELF_CONTAINED: &[&str] =
    &["opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest"];

/// The messages counted as items, as the Collector counts them (spans, metric data points, log records).
pub(super) const ITEMS: &[&str] = &[
    "opentelemetry.proto.trace.v1.Span",
    "opentelemetry.proto.metrics.v1.NumberDataPoint",
    "opentelemetry.proto.metrics.v1.HistogramDataPoint",
    "opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint",
    "opentelemetry.proto.metrics.v1.SummaryDataPoint",
    "opentelemetry.proto.logs.v1.LogRecord",
    // As the partial success counts them (`rejected_profiles`).
    "opentelemetry.proto.profiles.v1development.Profile",
];

/// `bytes` fields that are ids: hex in OTLP/JSON (spec, "JSON Protobuf Encoding"), and empty or exactly this many
/// bytes on the wire (the Collector's pdata rejects other lengths); last, the kind of id as JSON errors name it.
pub(super) const IDS: &[(&str, usize, &str)] = &[
    ("trace_id", 16, "trace id"),
    ("span_id", 8, "span id"),
    ("parent_span_id", 8, "span id"),
    ("profile_id", 16, "profile id"),
];

/// One generated file: its name in `src/generated/` and its text.
pub(super) struct Generated {
    pub name: String,
    pub text: String,
}

/// Compiles `proto_root` (the files of [`FILES`] and their imports).
pub(super) fn compile(proto_root: &Path) -> FileDescriptorSet {
    match protox::compile(FILES, [proto_root]) {
        Ok(set) => set,
        Err(e) => fail(&format!("compiling {}: {e:?}", proto_root.display())),
    }
}

/// Every file of `src/generated/`, from the descriptors of `set`.
pub(super) fn generate(set: &FileDescriptorSet) -> Vec<Generated> {
    let mut out = prost_types(set);
    let schema = Schema::read(set);
    let requests: Vec<&str> = SIGNALS.iter().map(|s| s.0).collect();
    let mut messages: Vec<String> = requests.iter().map(|s| s.to_string()).collect();
    for (req, resp, _) in SIGNALS {
        let package = req.rsplit_once('.').map_or("", |p| p.0);
        messages.push(format!("{package}.{resp}"));
    }
    let wire = schema.reachable(&requests);
    let json = schema.reachable(&messages.iter().map(String::as_str).collect::<Vec<_>>());
    schema.check_json_limits(&json);
    let items = schema.item_carriers();
    out.push(Generated { name: "wire_schema.rs".into(), text: schema.wire(&wire, &items) });
    out.push(Generated { name: "json_schema.rs".into(), text: schema.json(&json) });
    out.push(Generated { name: "json_encode.rs".into(), text: schema.encoder(&json) });
    out
}

/// The prost types of every package, one file each (`opentelemetry.proto.trace.v1.rs`), as prost-build writes them
/// for a build script, minus its comments: the `.proto` files in `proto/` carry them, and rustdoc would read their
/// indented examples as doctests.
fn prost_types(set: &FileDescriptorSet) -> Vec<Generated> {
    let requests: Vec<(Module, prost_types::FileDescriptorProto)> =
        set.file.iter().map(|f| (Module::from_protobuf_package_name(f.package()), f.clone())).collect();
    let mut config = prost_build::Config::new();
    config.disable_comments(["."]);
    let modules = match config.generate(requests) {
        Ok(m) => m,
        Err(e) => fail(&format!("prost-build: {e}")),
    };
    let mut files: Vec<Generated> = modules
        .into_iter()
        .map(|(module, text)| Generated {
            name: module.to_file_name_or("_"),
            text: format!("// @generated by src/codegen from proto/ (prost-build): do not edit.\n\n{text}"),
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// Test-only code: a schema the generator cannot express fails the generating test with its reason.
fn fail(msg: &str) -> ! {
    panic!("codegen: {msg}")
}
