//! Static, table-driven descriptions of the OTLP 1.x request messages.
//!
//! Field numbers, names and types mirror the prost code generated for opentelemetry-proto 0.33
//! (`opentelemetry.proto.{common,resource,trace,metrics,logs}.v1`). Each table is indexed by
//! field number (`fields[n - 1]` describes field `n`), so a lookup is one bounds check; numbers
//! that the .proto files reserve are filled with [`Kind::Reserved`] and treated as unknown.

use std::fmt;

pub use super::schema_metrics::METRICS;

/// A static description of one protobuf message type: its name and its fields by number.
///
/// The three request schemas are [`TRACES`], [`METRICS`] and [`LOGS`]; the others are reachable
/// through them and private to the module.
pub struct Schema {
    pub(super) name: &'static str,
    pub(super) fields: &'static [Field],
}

impl Schema {
    /// The protobuf message name, e.g. `ExportTraceServiceRequest`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The field that holds one entry of this message's repeated top-level field 1,
    /// e.g. `resource_spans` for [`TRACES`].
    pub fn entry_name(&self) -> &'static str {
        self.fields.first().map_or("", |f| f.name)
    }

    /// Looks a field up by number; `None` for unknown or reserved numbers.
    #[inline]
    pub(super) fn field(&self, num: u32) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        match fields.get((num as usize).wrapping_sub(1)) {
            Some(f) if f.num == num && !matches!(f.kind, Kind::Reserved) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Debug for Schema {
    // Schemas are cyclic (AnyValue -> ArrayValue -> AnyValue), so print only the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schema({})", self.name)
    }
}

/// How a field's value is encoded and checked.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// int32/int64/uint32/uint64/sint32/bool/enum: wire type 0, any in-range varint.
    Varint,
    /// fixed64/sfixed64/double: wire type 1.
    Fixed64,
    /// fixed32: wire type 5.
    Fixed32,
    /// string: wire type 2, must be valid UTF-8.
    Str,
    /// bytes: wire type 2, anything.
    Bytes,
    /// trace or span id: wire type 2, empty or exactly this many bytes (Collector rule).
    Id(usize),
    /// Embedded message.
    Msg(&'static Schema),
    /// repeated varint scalar: unpacked (wire type 0) or packed (wire type 2).
    PackedVarint,
    /// repeated fixed64/double: unpacked (wire type 1) or packed (wire type 2, length % 8 == 0).
    PackedFixed64,
    /// A number the .proto reserves; handled as an unknown field.
    Reserved,
}

impl Kind {
    /// The wire type a singular value of this kind uses (what an error message should expect).
    pub(super) fn wire_type(self) -> u8 {
        match self {
            Kind::Varint | Kind::PackedVarint => 0,
            Kind::Fixed64 | Kind::PackedFixed64 => 1,
            Kind::Fixed32 => 5,
            Kind::Str | Kind::Bytes | Kind::Id(_) | Kind::Msg(_) | Kind::Reserved => 2,
        }
    }
}

/// One field of a [`Schema`].
pub(super) struct Field {
    pub(super) num: u32,
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    /// Repeated fields get an index in error paths (`spans[7]`).
    pub(super) repeated: bool,
    /// Each occurrence of this field is one counted item (span, data point, log record).
    pub(super) item: bool,
    /// `split` cuts an oversized message along occurrences of this field.
    pub(super) split: bool,
    /// Member of the message's oneof: only the last variant survives a decode, so only its
    /// items count (matches prost, which replaces a oneof on a different variant).
    pub(super) oneof: bool,
}

pub(super) const fn f(num: u32, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind, repeated: false, item: false, split: false, oneof: false }
}

pub(super) const fn rep(num: u32, name: &'static str, kind: Kind) -> Field {
    Field { repeated: true, ..f(num, name, kind) }
}

pub(super) const fn gap(num: u32) -> Field {
    f(num, "", Kind::Reserved)
}

impl Field {
    pub(super) const fn split(self) -> Field {
        Field { split: true, ..self }
    }
    pub(super) const fn item(self) -> Field {
        Field { item: true, split: true, ..self }
    }
    pub(super) const fn oneof(self) -> Field {
        Field { oneof: true, ..self }
    }
}

use Kind::{Bytes, Fixed32, Fixed64, Id, Msg, Str, Varint};

pub(super) const TRACE_ID: Kind = Id(16);
pub(super) const SPAN_ID: Kind = Id(8);

// ---- common.v1 / resource.v1 ----

static ANY_VALUE: Schema = Schema {
    name: "AnyValue",
    fields: &[
        f(1, "string_value", Str),
        f(2, "bool_value", Varint),
        f(3, "int_value", Varint),
        f(4, "double_value", Fixed64),
        f(5, "array_value", Msg(&ARRAY_VALUE)),
        f(6, "kvlist_value", Msg(&KEY_VALUE_LIST)),
        f(7, "bytes_value", Bytes),
        f(8, "string_value_strindex", Varint),
    ],
};
static ARRAY_VALUE: Schema = Schema { name: "ArrayValue", fields: &[rep(1, "values", Msg(&ANY_VALUE))] };
static KEY_VALUE_LIST: Schema = Schema { name: "KeyValueList", fields: &[rep(1, "values", Msg(&KEY_VALUE))] };
static KEY_VALUE: Schema = Schema {
    name: "KeyValue",
    fields: &[f(1, "key", Str), f(2, "value", Msg(&ANY_VALUE)), f(3, "key_strindex", Varint)],
};
pub(super) const ATTRS: Kind = Msg(&KEY_VALUE);
pub(super) static SCOPE: Schema = Schema {
    name: "InstrumentationScope",
    fields: &[
        f(1, "name", Str),
        f(2, "version", Str),
        rep(3, "attributes", ATTRS),
        f(4, "dropped_attributes_count", Varint),
    ],
};
static ENTITY_REF: Schema = Schema {
    name: "EntityRef",
    fields: &[f(1, "schema_url", Str), f(2, "type", Str), rep(3, "id_keys", Str), rep(4, "description_keys", Str)],
};
pub(super) static RESOURCE: Schema = Schema {
    name: "Resource",
    fields: &[
        rep(1, "attributes", ATTRS),
        f(2, "dropped_attributes_count", Varint),
        rep(3, "entity_refs", Msg(&ENTITY_REF)),
    ],
};

// ---- trace.v1 ----

/// `ExportTraceServiceRequest`; items are spans.
pub static TRACES: Schema =
    Schema { name: "ExportTraceServiceRequest", fields: &[rep(1, "resource_spans", Msg(&RESOURCE_SPANS)).split()] };
static RESOURCE_SPANS: Schema = Schema {
    name: "ResourceSpans",
    fields: &[
        f(1, "resource", Msg(&RESOURCE)),
        rep(2, "scope_spans", Msg(&SCOPE_SPANS)).split(),
        f(3, "schema_url", Str),
    ],
};
static SCOPE_SPANS: Schema = Schema {
    name: "ScopeSpans",
    fields: &[f(1, "scope", Msg(&SCOPE)), rep(2, "spans", Msg(&SPAN)).item(), f(3, "schema_url", Str)],
};
static SPAN: Schema = Schema {
    name: "Span",
    fields: &[
        f(1, "trace_id", TRACE_ID),
        f(2, "span_id", SPAN_ID),
        f(3, "trace_state", Str),
        f(4, "parent_span_id", SPAN_ID),
        f(5, "name", Str),
        f(6, "kind", Varint),
        f(7, "start_time_unix_nano", Fixed64),
        f(8, "end_time_unix_nano", Fixed64),
        rep(9, "attributes", ATTRS),
        f(10, "dropped_attributes_count", Varint),
        rep(11, "events", Msg(&SPAN_EVENT)),
        f(12, "dropped_events_count", Varint),
        rep(13, "links", Msg(&SPAN_LINK)),
        f(14, "dropped_links_count", Varint),
        f(15, "status", Msg(&STATUS)),
        f(16, "flags", Fixed32),
    ],
};
static SPAN_EVENT: Schema = Schema {
    name: "Span.Event",
    fields: &[
        f(1, "time_unix_nano", Fixed64),
        f(2, "name", Str),
        rep(3, "attributes", ATTRS),
        f(4, "dropped_attributes_count", Varint),
    ],
};
static SPAN_LINK: Schema = Schema {
    name: "Span.Link",
    fields: &[
        f(1, "trace_id", TRACE_ID),
        f(2, "span_id", SPAN_ID),
        f(3, "trace_state", Str),
        rep(4, "attributes", ATTRS),
        f(5, "dropped_attributes_count", Varint),
        f(6, "flags", Fixed32),
    ],
};
static STATUS: Schema = Schema { name: "Status", fields: &[gap(1), f(2, "message", Str), f(3, "code", Varint)] };

// ---- logs.v1 ----

/// `ExportLogsServiceRequest`; items are log records.
pub static LOGS: Schema =
    Schema { name: "ExportLogsServiceRequest", fields: &[rep(1, "resource_logs", Msg(&RESOURCE_LOGS)).split()] };
static RESOURCE_LOGS: Schema = Schema {
    name: "ResourceLogs",
    fields: &[
        f(1, "resource", Msg(&RESOURCE)),
        rep(2, "scope_logs", Msg(&SCOPE_LOGS)).split(),
        f(3, "schema_url", Str),
    ],
};
static SCOPE_LOGS: Schema = Schema {
    name: "ScopeLogs",
    fields: &[f(1, "scope", Msg(&SCOPE)), rep(2, "log_records", Msg(&LOG_RECORD)).item(), f(3, "schema_url", Str)],
};
static LOG_RECORD: Schema = Schema {
    name: "LogRecord",
    fields: &[
        f(1, "time_unix_nano", Fixed64),
        f(2, "severity_number", Varint),
        f(3, "severity_text", Str),
        gap(4),
        f(5, "body", Msg(&ANY_VALUE)),
        rep(6, "attributes", ATTRS),
        f(7, "dropped_attributes_count", Varint),
        f(8, "flags", Fixed32),
        f(9, "trace_id", TRACE_ID),
        f(10, "span_id", SPAN_ID),
        f(11, "observed_time_unix_nano", Fixed64),
        f(12, "event_name", Str),
    ],
};
