//! Compiles the pinned OTLP `.proto` files in `proto/` (no system `protoc`: `protox`) and generates the schema
//! tables the bridge runs on, so the OTLP schema is written once, by its owners:
//!
//! - `wire_schema.rs`: the wire scan's and splitter's `Schema` statics (`src/wire/schema.rs`);
//! - `json_schema.rs`: the JSON decoder's and transcoder's `message!` tables and enum names (`src/json/schema.rs`);
//! - `json_encode.rs`: the JSON encoder's `Encode` impls (`src/json/encode.rs`);
//! - `otlp_descriptors.bin`: the compiled `FileDescriptorSet`, checked in a test against `opentelemetry_proto`'s.
//!
//! JSON keys are each field's `json_name` plus its proto (snake_case) name, the alias the Collector accepts. What
//! a `.proto` cannot say is the overlay below ([`SIGNALS`], [`ITEMS`], [`IDS`]); where to split follows from it (a
//! field is split along when it leads to items).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

/// The collector services; everything else is reached through their imports.
const FILES: &[&str] = &[
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
    "opentelemetry/proto/collector/logs/v1/logs_service.proto",
    "opentelemetry/proto/collector/profiles/v1development/profiles_service.proto",
];

// ---- the overlay: what the .proto cannot say ----

/// The signals this build serves: request message, its response, and the wire schema static's name.
const SIGNALS: &[(&str, &str, &str)] = &[
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
const SELF_CONTAINED: &[&str] = &["opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest"];

/// The messages counted as items, as the Collector counts them (spans, metric data points, log records).
const ITEMS: &[&str] = &[
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
const IDS: &[(&str, usize, &str)] = &[
    ("trace_id", 16, "trace id"),
    ("span_id", 8, "span id"),
    ("parent_span_id", 8, "span id"),
    ("profile_id", 16, "profile id"),
];

// ---- the schema, as read from the descriptors ----

/// One message reachable from a signal's request or response.
struct Msg {
    /// Without the leading dot: `opentelemetry.proto.trace.v1.Span.Event`.
    full: String,
    /// Package, for the Rust path.
    package: String,
    /// Enclosing messages' names, outermost first (`["Span"]` for `Span.Event`).
    parents: Vec<String>,
    desc: DescriptorProto,
}

impl Msg {
    fn name(&self) -> &str {
        self.desc.name()
    }
    /// Name inside its package (`Span.Event`), as the wire scan's errors print it.
    fn local(&self) -> String {
        let mut s: Vec<&str> = self.parents.iter().map(String::as_str).collect();
        s.push(self.name());
        s.join(".")
    }
    /// The prost type's path.
    fn rust(&self) -> String {
        rust_path(&self.package, &self.parents, self.name())
    }
    /// A unique Rust identifier for generated items.
    fn ident(&self) -> String {
        let short = self.full.trim_start_matches("opentelemetry.proto.");
        short.split('.').map(upper_camel).collect()
    }
    /// The real (not synthetic `optional`) oneofs: index -> name.
    fn real_oneofs(&self) -> BTreeMap<i32, String> {
        let mut out = BTreeMap::new();
        for f in &self.desc.field {
            if let Some(i) = f.oneof_index {
                if !f.proto3_optional() {
                    out.insert(i, self.desc.oneof_decl[i as usize].name().to_string());
                }
            }
        }
        out
    }
}

struct Enum {
    package: String,
    parents: Vec<String>,
    desc: EnumDescriptorProto,
}

struct Schema {
    msgs: BTreeMap<String, Msg>,
    enums: BTreeMap<String, Enum>,
}

fn main() {
    let root = PathBuf::from(env("CARGO_MANIFEST_DIR")).join("proto");
    let out = PathBuf::from(env("OUT_DIR"));
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");

    let set = match protox::compile(FILES, [&root]) {
        Ok(set) => set,
        Err(e) => fail(&format!("compiling proto/: {e:?}")),
    };
    write(&out.join("otlp_descriptors.bin"), &set.encode_to_vec());

    let schema = Schema::read(&set);
    let requests: Vec<&str> = SIGNALS.iter().map(|s| s.0).collect();
    let mut messages: Vec<String> = requests.iter().map(|s| s.to_string()).collect();
    for (req, resp, _) in SIGNALS {
        let package = req.rsplit_once('.').map_or("", |p| p.0);
        messages.push(format!("{package}.{resp}"));
    }
    let wire = schema.reachable(&requests);
    let json = schema.reachable(&messages.iter().map(String::as_str).collect::<Vec<_>>());
    let items = schema.item_carriers();

    write(&out.join("wire_schema.rs"), schema.wire(&wire, &items).as_bytes());
    write(&out.join("json_schema.rs"), schema.json(&json).as_bytes());
    write(&out.join("json_encode.rs"), schema.encoder(&json).as_bytes());
}

impl Schema {
    fn read(set: &FileDescriptorSet) -> Schema {
        let mut schema = Schema { msgs: BTreeMap::new(), enums: BTreeMap::new() };
        for file in &set.file {
            let package = file.package().to_string();
            for m in &file.message_type {
                schema.add(&package, &[], m);
            }
            for e in &file.enum_type {
                let full = format!("{package}.{}", e.name());
                schema.enums.insert(full, Enum { package: package.clone(), parents: Vec::new(), desc: e.clone() });
            }
        }
        schema
    }

    fn add(&mut self, package: &str, parents: &[String], m: &DescriptorProto) {
        let mut path: Vec<&str> = vec![package];
        path.extend(parents.iter().map(String::as_str));
        path.push(m.name());
        let full = path.join(".");
        let mut inner: Vec<String> = parents.to_vec();
        inner.push(m.name().to_string());
        for n in &m.nested_type {
            self.add(package, &inner, n);
        }
        for e in &m.enum_type {
            let ename = format!("{full}.{}", e.name());
            self.enums.insert(ename, Enum { package: package.into(), parents: inner.clone(), desc: e.clone() });
        }
        let msg = Msg { full: full.clone(), package: package.into(), parents: parents.to_vec(), desc: m.clone() };
        self.msgs.insert(full, msg);
    }

    fn msg(&self, full: &str) -> &Msg {
        match self.msgs.get(full.trim_start_matches('.')) {
            Some(m) => m,
            None => fail(&format!("unknown message {full}")),
        }
    }

    /// The messages reachable from `roots`, roots first, then in the order they are met.
    fn reachable(&self, roots: &[&str]) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut order = Vec::new();
        let mut stack: Vec<String> = roots.iter().rev().map(|s| s.to_string()).collect();
        while let Some(m) = stack.pop() {
            if !seen.insert(m.clone()) {
                continue;
            }
            let msg = self.msg(&m);
            for f in msg.desc.field.iter().rev() {
                if f.r#type() == Type::Message {
                    stack.push(f.type_name().trim_start_matches('.').to_string());
                }
            }
            order.push(m);
        }
        order
    }

    /// Messages that are items or contain items (through any depth): the fields leading to them are split along.
    fn item_carriers(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = ITEMS.iter().map(|s| s.to_string()).collect();
        loop {
            let before = out.len();
            for m in self.msgs.values() {
                let leads = m
                    .desc
                    .field
                    .iter()
                    .any(|f| f.r#type() == Type::Message && out.contains(f.type_name().trim_start_matches('.')));
                if leads {
                    out.insert(m.full.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    // ---- wire scan tables ----

    fn wire(&self, order: &[String], carriers: &BTreeSet<String>) -> String {
        let mut s = String::from("// @generated by build.rs from proto/: the wire scan's tables.\n\n");
        let public: BTreeMap<&str, &str> = SIGNALS.iter().map(|(req, _, name)| (*req, *name)).collect();
        for full in order {
            let m = self.msg(full);
            let (vis, name) = match public.get(full.as_str()) {
                Some(name) => ("pub ", name.to_string()),
                None => ("", wire_static(full)),
            };
            if !vis.is_empty() {
                let _ = writeln!(s, "/// `{}`; items are counted as the Collector counts them.", m.name());
            }
            let _ = writeln!(s, "{vis}static {name}: Schema = Schema {{\n    name: {:?},\n    fields: &[", m.local());
            let mut by_num: BTreeMap<i32, &FieldDescriptorProto> = BTreeMap::new();
            for f in &m.desc.field {
                by_num.insert(f.number(), f);
            }
            let max = by_num.keys().next_back().copied().unwrap_or(0);
            let real_oneofs = m.real_oneofs();
            for num in 1..=max {
                let Some(f) = by_num.get(&num) else {
                    let _ = writeln!(s, "        gap({num}),");
                    continue;
                };
                let repeated = f.label() == Label::Repeated;
                let kind = wire_kind(f, repeated, &public);
                let ctor = if repeated { "rep" } else { "f" };
                let _ = write!(s, "        {ctor}({num}, {:?}, {kind})", f.name());
                let target = f.type_name().trim_start_matches('.');
                let is_item = f.r#type() == Type::Message && ITEMS.contains(&target);
                let leads = f.r#type() == Type::Message && carriers.contains(target);
                if is_item && repeated {
                    s.push_str(".item()");
                } else if leads && !SELF_CONTAINED.contains(&full.as_str()) {
                    s.push_str(".split()");
                }
                if leads && f.oneof_index.is_some_and(|i| real_oneofs.contains_key(&i)) {
                    s.push_str(".oneof()");
                }
                s.push_str(",\n");
            }
            s.push_str("    ],\n};\n");
        }
        s
    }

    // ---- JSON decode / transcode tables ----

    fn json(&self, order: &[String]) -> String {
        let mut s =
            String::from("// @generated by build.rs from proto/: the OTLP/JSON decoder's and transcoder's tables.\n\n");
        let mut enums = BTreeSet::new();
        for full in order {
            let m = self.msg(full);
            let items = if ITEMS.contains(&full.as_str()) { ", items" } else { "" };
            let real_oneofs = m.real_oneofs();
            // `message!` names the oneof enum by an identifier (its variants are matched as `Enum::Variant`); only the
            // tree decoder builds them, so the import is compiled where it is.
            for oneof in real_oneofs.values() {
                let enum_path = format!("{}::{}", module_path(&m.package, &m.parents, m.name()), upper_camel(oneof));
                let _ = writeln!(
                    s,
                    "#[cfg(any(test, feature = \"json-tree\"))]\nuse {enum_path} as {}{}Oneof;",
                    m.ident(),
                    upper_camel(oneof)
                );
            }
            let _ = writeln!(s, "message! {{\n    {} as {}Field, {:?}{items} {{", m.rust(), m.ident(), m.name());
            for f in m.desc.field.iter().filter(|f| !f.oneof_index.is_some_and(|i| real_oneofs.contains_key(&i))) {
                let kind = self.json_kind(f, &mut enums, f.proto3_optional());
                let _ = writeln!(
                    s,
                    "        {}: {kind} = {:?} | {:?} @ {},",
                    rust_field(f.name()),
                    json_name(f),
                    f.name(),
                    f.number()
                );
            }
            s.push_str("    }\n");
            if real_oneofs.len() > 1 {
                fail(&format!("{full}: the message! table supports one oneof per message"));
            }
            for (idx, oneof) in &real_oneofs {
                let _ = writeln!(s, "    oneof {}: {}{}Oneof {{", rust_field(oneof), m.ident(), upper_camel(oneof));
                for f in m.desc.field.iter().filter(|f| f.oneof_index == Some(*idx)) {
                    let kind = self.json_kind(f, &mut enums, false);
                    let _ = writeln!(
                        s,
                        "        {}: {kind} = {:?} | {:?} @ {},",
                        upper_camel(f.name()),
                        json_name(f),
                        f.name(),
                        f.number()
                    );
                }
                s.push_str("    }\n");
            }
            s.push_str("}\n\n");
        }
        for (req, resp, _) in SIGNALS {
            let package = req.rsplit_once('.').map_or("", |p| p.0);
            for full in [req.to_string(), format!("{package}.{resp}")] {
                let _ = writeln!(s, "impl JsonMessage for {} {{}}", self.msg(&full).rust());
            }
        }
        s.push('\n');
        let kinds: BTreeSet<&str> = IDS.iter().map(|(_, _, what)| *what).collect();
        for what in kinds {
            let marker = id_marker(what);
            let _ = writeln!(
                s,
                "/// Names {what}s in errors.\npub struct {marker};\nimpl IdName for {marker} {{\n    const WHAT: &'static \
                 str = {what:?};\n}}\n"
            );
        }
        for full in enums {
            let e = &self.enums[&full];
            let path = rust_path(&e.package, &e.parents, e.desc.name());
            let what = snake(e.desc.name()).replace('_', " ");
            let prefix = format!("{}_", snake(e.desc.name()).to_uppercase());
            let _ = writeln!(
                s,
                "impl EnumName for {path} {{\n    const WHAT: &'static str = {what:?};\n    const PREFIX: &'static str = \
                 {prefix:?};\n    fn from_name(name: &str) -> Option<i32> {{\n        {path}::from_str_name(name).map(|v| v \
                 as i32)\n    }}\n}}\n"
            );
        }
        s
    }

    /// The `message!` kind of a field; `opt` wraps a singular value in `Opt` (`null` = absent).
    fn json_kind(&self, f: &FieldDescriptorProto, enums: &mut BTreeSet<String>, opt: bool) -> String {
        let repeated = f.label() == Label::Repeated;
        let base = match f.r#type() {
            Type::String => "Str".to_string(),
            Type::Bool => "Bool".into(),
            Type::Int64 => "I64".into(),
            Type::Uint64 => "U64".into(),
            Type::Int32 => "I32".into(),
            Type::Uint32 => "U32".into(),
            Type::Sint32 => "SInt32".into(),
            Type::Fixed64 => "Fixed64".into(),
            Type::Sfixed64 => "SFixed64".into(),
            Type::Fixed32 => "Fixed32".into(),
            Type::Double => "F64".into(),
            Type::Bytes => match id(f) {
                Some((n, what)) => format!("Hex<{n}, {}>", id_marker(what)),
                None => "Bytes".into(),
            },
            Type::Enum => {
                let full = f.type_name().trim_start_matches('.').to_string();
                let Some(e) = self.enums.get(&full) else { fail(&format!("unknown enum {full}")) };
                let path = rust_path(&e.package, &e.parents, e.desc.name());
                enums.insert(full);
                format!("Enum<{path}>")
            }
            Type::Message => {
                let m = self.msg(f.type_name());
                if repeated {
                    return format!("Rep<Obj<{}>>", m.rust());
                }
                // Singular messages are `Option<M>` in prost, `null` = absent. Oneof members get their `Opt`
                // from the macro.
                let obj = format!("Obj<{}>", m.rust());
                return if f.oneof_index.is_some() && !f.proto3_optional() { obj } else { format!("Opt<{obj}>") };
            }
            other => fail(&format!("{}: no JSON kind for {other:?} yet", f.name())),
        };
        if repeated {
            format!("Rep<{base}>")
        } else if opt {
            format!("Opt<{base}>")
        } else {
            base
        }
    }

    // ---- JSON encoder ----

    fn encoder(&self, order: &[String]) -> String {
        let mut s = String::from("// @generated by build.rs from proto/: the OTLP/JSON encoder.\n\n");
        for full in order {
            let m = self.msg(full);
            let _ = writeln!(
                s,
                "impl Encode for {} {{\n    fn encode(&self, out: &mut String) {{\n        let mut o = Out::new(out);",
                m.rust()
            );
            let real_oneofs = m.real_oneofs();
            let mut done = BTreeSet::new();
            // Declaration order, a oneof where its first member is declared: the order clients and the Collector use.
            for f in &m.desc.field {
                let key = json_name(f);
                let field = rust_field(f.name());
                match f.oneof_index.filter(|i| real_oneofs.contains_key(i)) {
                    Some(idx) => {
                        if !done.insert(idx) {
                            continue;
                        }
                        let oneof = &real_oneofs[&idx];
                        let enum_path =
                            format!("{}::{}", module_path(&m.package, &m.parents, m.name()), upper_camel(oneof));
                        let _ = writeln!(s, "        match &self.{} {{\n            None => {{}}", rust_field(oneof));
                        for v in m.desc.field.iter().filter(|v| v.oneof_index == Some(idx)) {
                            // A set member is written even when it is the default, so "set to 0" survives.
                            let write = match v.r#type() {
                                Type::Message => "o.msg(KEY, v)".to_string(),
                                Type::String => "write_str(o.key(KEY), v)".into(),
                                Type::Bool => "write_bool(o.key(KEY), *v)".into(),
                                Type::Int64 | Type::Sfixed64 => "write_i64_quoted(o.key(KEY), *v)".into(),
                                Type::Uint64 | Type::Fixed64 => "write_u64_quoted(o.key(KEY), *v)".into(),
                                Type::Int32 | Type::Sint32 | Type::Enum => "write_i32(o.key(KEY), *v)".into(),
                                Type::Uint32 | Type::Fixed32 => "write_u32(o.key(KEY), *v)".into(),
                                Type::Double => "write_f64(o.key(KEY), *v)".into(),
                                Type::Bytes => "write_base64(o.key(KEY), v)".into(),
                                other => fail(&format!("{}: no JSON encoding for {other:?} yet", v.name())),
                            };
                            let _ = writeln!(
                                s,
                                "            Some({enum_path}::{}(v)) => {},",
                                upper_camel(v.name()),
                                write.replace("KEY", &format!("{:?}", json_name(v)))
                            );
                        }
                        s.push_str("        }\n");
                    }
                    None => {
                        let repeated = f.label() == Label::Repeated;
                        let (method, by_ref) = match (f.r#type(), repeated) {
                            (Type::Message, true) => ("msgs", true),
                            (Type::Message, false) => ("opt_msg", true),
                            (Type::String, false) => ("str", true),
                            (Type::String, true) => ("strs", true),
                            (Type::Bool, false) => ("bool", false),
                            (Type::Uint64 | Type::Fixed64, false) => ("u64", false),
                            (Type::Uint64 | Type::Fixed64, true) => ("u64s", true),
                            (Type::Int64 | Type::Sfixed64, false) => ("i64", false),
                            (Type::Int64 | Type::Sfixed64, true) => ("i64s", true),
                            (Type::Uint32 | Type::Fixed32, false) => ("u32", false),
                            (Type::Int32 | Type::Sint32 | Type::Enum, false) => ("i32", false),
                            (Type::Int32 | Type::Sint32 | Type::Enum, true) => ("i32s", true),
                            (Type::Double, false) if f.proto3_optional() => ("opt_f64", false),
                            (Type::Double, false) => ("f64", false),
                            (Type::Double, true) => ("f64s", true),
                            (Type::Bytes, false) if id_len(f).is_some() => ("id", true),
                            (Type::Bytes, false) => ("bytes", true),
                            (other, _) => fail(&format!("{}: no JSON encoding for {other:?} yet", f.name())),
                        };
                        let amp = if by_ref { "&" } else { "" };
                        let _ = writeln!(s, "        o.{method}({key:?}, {amp}self.{field});");
                    }
                }
            }
            s.push_str("        o.end();\n    }\n}\n\n");
        }
        s
    }
}

/// The wire scan kind of a field (`rep`/`f` says whether it repeats).
fn wire_kind(f: &FieldDescriptorProto, repeated: bool, public: &BTreeMap<&str, &str>) -> String {
    let scalar = |single: &str, packed: &str| if repeated { packed.to_string() } else { single.to_string() };
    match f.r#type() {
        Type::String => "Str".into(),
        Type::Bytes => match id_len(f) {
            Some(n) => format!("Id({n})"),
            None => "Bytes".into(),
        },
        Type::Message => {
            let target = f.type_name().trim_start_matches('.');
            let name = public.get(target).map_or_else(|| wire_static(target), |n| n.to_string());
            format!("Msg(&{name})")
        }
        Type::Int32
        | Type::Int64
        | Type::Uint32
        | Type::Uint64
        | Type::Sint32
        | Type::Sint64
        | Type::Bool
        | Type::Enum => scalar("Varint", "PackedVarint"),
        Type::Fixed64 | Type::Sfixed64 | Type::Double => scalar("Fixed64", "PackedFixed64"),
        Type::Fixed32 if !repeated => "Fixed32".into(),
        other => fail(&format!("{}: no wire kind for {other:?} (repeated: {repeated}) yet", f.name())),
    }
}

fn id_len(f: &FieldDescriptorProto) -> Option<usize> {
    id(f).map(|(n, _)| n)
}

/// An id field's length in bytes and the kind of id it holds (`"trace id"`).
fn id(f: &FieldDescriptorProto) -> Option<(usize, &'static str)> {
    if f.r#type() != Type::Bytes || f.label() == Label::Repeated {
        return None;
    }
    IDS.iter().find(|(name, _, _)| *name == f.name()).map(|(_, n, what)| (*n, *what))
}

/// The marker type naming a kind of id in JSON errors: `"trace id"` -> `TraceId`.
fn id_marker(what: &str) -> String {
    upper_camel(&what.replace(' ', "_"))
}

/// `json_name` as protoc and protox record it; computed the way protoc does when a descriptor lacks it.
fn json_name(f: &FieldDescriptorProto) -> String {
    match &f.json_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => {
            let mut out = String::new();
            let mut upper = false;
            for c in f.name().chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

fn wire_static(full: &str) -> String {
    full.trim_start_matches("opentelemetry.proto.").replace('.', "_").to_uppercase()
}

/// The Rust module of a message's nested types (prost: the snake_case message name).
fn module_path(package: &str, parents: &[String], name: &str) -> String {
    format!("{}::{}", scope_path(package, parents), snake(name))
}

/// The path of a prost type: package modules, then one snake_case module per enclosing message.
fn rust_path(package: &str, parents: &[String], name: &str) -> String {
    format!("{}::{name}", scope_path(package, parents))
}

/// The Rust module a type declared in `package` inside the messages `parents` lives in.
fn scope_path(package: &str, parents: &[String]) -> String {
    let mut p = format!(
        "opentelemetry_proto::tonic::{}",
        package.trim_start_matches("opentelemetry.proto.").replace('.', "::")
    );
    for parent in parents {
        p.push_str("::");
        p.push_str(&snake(parent));
    }
    p
}

/// prost's field identifier: the proto name, raw when it is a Rust keyword.
fn rust_field(name: &str) -> String {
    match name {
        "type" | "match" | "ref" | "move" | "loop" | "fn" | "impl" | "use" | "mod" | "in" | "as" => format!("r#{name}"),
        _ => name.to_string(),
    }
}

/// `exponential_histogram` -> `ExponentialHistogram`, as prost names variants and oneof enums.
fn upper_camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |first| first.to_uppercase().chain(c).collect())
        })
        .collect()
}

/// `ExponentialHistogramDataPoint` -> `exponential_histogram_data_point`, as prost names modules.
fn snake(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set")))
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        fail(&format!("writing {}: {e}", path.display()));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("build.rs: {msg}");
    std::process::exit(1)
}
