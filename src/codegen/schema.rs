//! The OTLP schema as read from the compiled descriptors: messages and enums by full name, what is reachable from a
//! signal's request, and which messages lead to items.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

use super::names::{rust_path, upper_camel};
use super::{fail, ITEMS};

/// The JSON decoder keeps the fields it has seen in a `u32` bitmask (`json::table`'s `bit`), so a message of the
/// JSON tables may have at most this many fields (oneof members included).
pub(super) const MAX_JSON_FIELDS: usize = 32;

// ---- the schema, as read from the descriptors ----

/// One message reachable from a signal's request or response.
pub(super) struct Msg {
    /// Without the leading dot: `opentelemetry.proto.trace.v1.Span.Event`.
    pub full: String,
    /// Package, for the Rust path.
    pub package: String,
    /// Enclosing messages' names, outermost first (`["Span"]` for `Span.Event`).
    pub parents: Vec<String>,
    pub desc: DescriptorProto,
}

impl Msg {
    pub(super) fn name(&self) -> &str {
        self.desc.name()
    }
    /// Name inside its package (`Span.Event`), as the wire scan's errors print it.
    pub(super) fn local(&self) -> String {
        let mut s: Vec<&str> = self.parents.iter().map(String::as_str).collect();
        s.push(self.name());
        s.join(".")
    }
    /// The prost type's path.
    pub(super) fn rust(&self) -> String {
        rust_path(&self.package, &self.parents, self.name())
    }
    /// A unique Rust identifier for generated items.
    pub(super) fn ident(&self) -> String {
        let short = self.full.trim_start_matches("opentelemetry.proto.");
        short.split('.').map(upper_camel).collect()
    }
    /// The real (not synthetic `optional`) oneofs: index -> name.
    pub(super) fn real_oneofs(&self) -> BTreeMap<i32, String> {
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

pub(super) struct Enum {
    pub package: String,
    pub parents: Vec<String>,
    pub desc: EnumDescriptorProto,
}

pub(super) struct Schema {
    pub msgs: BTreeMap<String, Msg>,
    pub enums: BTreeMap<String, Enum>,
}

impl Schema {
    pub(super) fn read(set: &FileDescriptorSet) -> Schema {
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

    pub(super) fn msg(&self, full: &str) -> &Msg {
        match self.msgs.get(full.trim_start_matches('.')) {
            Some(m) => m,
            None => fail(&format!("unknown message {full}")),
        }
    }

    /// The messages reachable from `roots`, roots first, then in the order they are met.
    pub(super) fn reachable(&self, roots: &[&str]) -> Vec<String> {
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
    pub(super) fn item_carriers(&self) -> BTreeSet<String> {
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

    /// Refuses a schema the JSON tables cannot hold: more fields in one message than the decoder's bitmask has bits.
    pub(super) fn check_json_limits(&self, order: &[String]) {
        for full in order {
            let n = self.msg(full).desc.field.len();
            if n > MAX_JSON_FIELDS {
                fail(&format!("{full} has {n} fields, more than the JSON decoder's {MAX_JSON_FIELDS}-bit field mask"));
            }
        }
    }
}
