//! Names: prost's Rust paths and identifiers, JSON names, id fields.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::FieldDescriptorProto;

use super::IDS;

pub(super) fn id_len(f: &FieldDescriptorProto) -> Option<usize> {
    id(f).map(|(n, _)| n)
}

/// An id field's length in bytes and the kind of id it holds (`"trace id"`).
pub(super) fn id(f: &FieldDescriptorProto) -> Option<(usize, &'static str)> {
    if f.r#type() != Type::Bytes || f.label() == Label::Repeated {
        return None;
    }
    IDS.iter().find(|(name, _, _)| *name == f.name()).map(|(_, n, what)| (*n, *what))
}

/// The marker type naming a kind of id in JSON errors: `"trace id"` -> `TraceId`.
pub(super) fn id_marker(what: &str) -> String {
    upper_camel(&what.replace(' ', "_"))
}

/// `json_name` as protoc and protox record it; computed the way protoc does when a descriptor lacks it.
pub(super) fn json_name(f: &FieldDescriptorProto) -> String {
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

pub(super) fn wire_static(full: &str) -> String {
    full.trim_start_matches("opentelemetry.proto.").replace('.', "_").to_uppercase()
}

/// The Rust module of a message's nested types (prost: the snake_case message name).
pub(super) fn module_path(package: &str, parents: &[String], name: &str) -> String {
    format!("{}::{}", scope_path(package, parents), snake(name))
}

/// The path of a prost type: package modules, then one snake_case module per enclosing message.
pub(super) fn rust_path(package: &str, parents: &[String], name: &str) -> String {
    format!("{}::{name}", scope_path(package, parents))
}

/// The Rust module a type declared in `package` inside the messages `parents` lives in.
pub(super) fn scope_path(package: &str, parents: &[String]) -> String {
    let mut p = format!("crate::proto::{}", package.trim_start_matches("opentelemetry.proto.").replace('.', "::"));
    for parent in parents {
        p.push_str("::");
        p.push_str(&snake(parent));
    }
    p
}

/// prost's field identifier: the proto name, raw when it is a Rust keyword.
pub(super) fn rust_field(name: &str) -> String {
    match name {
        "type" | "match" | "ref" | "move" | "loop" | "fn" | "impl" | "use" | "mod" | "in" | "as" => format!("r#{name}"),
        _ => name.to_string(),
    }
}

/// `exponential_histogram` -> `ExponentialHistogram`, as prost names variants and oneof enums.
pub(super) fn upper_camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |first| first.to_uppercase().chain(c).collect())
        })
        .collect()
}

/// `ExponentialHistogramDataPoint` -> `exponential_histogram_data_point`, as prost names modules.
pub(super) fn snake(s: &str) -> String {
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
