//! Decoding of OTLP/JSON objects into prost messages, and the messages shared by all signals.

use std::fmt;
use std::marker::PhantomData;

use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueOneof;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::de_scalar::{Bool, Bytes, Kind, Seed, Str, F64, I32, I64, U32};
use super::error::{Ctx, Seg};
use super::table::message;
use super::tc_out::Tc;

/// A prost message decodable from a JSON object. Implemented through [`message!`].
pub trait Msg: Default {
    /// Message name for error messages.
    const NAME: &'static str;
    /// The message's known fields (at most 32, for the duplicate-key bitmask).
    type Field: Copy;
    /// Looks a key up, lowerCamelCase or snake_case; `None` = unknown, to be skipped.
    fn field(key: &str) -> Option<Self::Field>;
    fn bit(f: Self::Field) -> u32;
    /// The lowerCamelCase name, for error paths.
    fn name(f: Self::Field) -> &'static str;
    fn decode_field<'de, A: MapAccess<'de>>(
        &mut self,
        f: Self::Field,
        map: &mut A,
        ctx: &mut Ctx,
    ) -> Result<(), A::Error>;
    /// Whether [`transcode`](super::transcode) counts this message as an item (span, log record, data point).
    const ITEMS: bool;
    /// Transcodes the value of field `f` to protobuf. `set` is the oneof member seen so far, if any.
    fn transcode_field<'de, A: MapAccess<'de>>(
        f: Self::Field,
        map: &mut A,
        tc: &mut Tc<'_>,
        set: &mut Option<Self::Field>,
    ) -> Result<(), A::Error>;
}

/// Marker: decode a message `M` (`null` -> default message).
pub struct Obj<M>(PhantomData<M>);

impl<M: Msg> Kind for Obj<M> {
    type Out = M;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, ctx: &mut Ctx) -> Result<M, D::Error> {
        d.deserialize_any(MsgV::<M>(ctx, PhantomData))
    }
}

/// Decodes the top-level message, which must be a JSON object (`null`, arrays... are errors).
pub fn decode_top<'de, M: Msg, D: Deserializer<'de>>(d: D, ctx: &mut Ctx) -> Result<M, D::Error> {
    d.deserialize_map(MsgV::<M>(ctx, PhantomData))
}

/// A key of message `M`: `Some(field)`, or `None` for an unknown key.
pub(super) struct KeySeed<M>(pub(super) PhantomData<M>);
impl<'de, M: Msg> DeserializeSeed<'de> for KeySeed<M> {
    type Value = Option<M::Field>;
    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}
impl<'de, M: Msg> Visitor<'de> for KeySeed<M> {
    type Value = Option<M::Field>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    // Borrowed or scratch-buffer str from serde_json: matching it allocates nothing.
    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(M::field(v))
    }
}

struct MsgV<'c, M>(&'c mut Ctx, PhantomData<M>);
impl<'de, M: Msg> Visitor<'de> for MsgV<'_, M> {
    type Value = M;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} JSON object", M::NAME)
    }
    fn visit_unit<E: de::Error>(self) -> Result<M, E> {
        Ok(M::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let ctx = self.0;
        let mut out = M::default();
        let mut seen = 0u32;
        while let Some(key) = map.next_key_seed(KeySeed::<M>(PhantomData))? {
            let Some(f) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let bit = M::bit(f);
            if seen & bit != 0 {
                ctx.push(Seg::Field(M::name(f)));
                return Err(duplicate_field());
            }
            seen |= bit;
            if let Err(e) = out.decode_field(f, &mut map, ctx) {
                ctx.push(Seg::Field(M::name(f)));
                return Err(e);
            }
        }
        Ok(out)
    }
}

/// `null` -> `None`, anything else decoded as `K`: optional messages and `optional double`.
pub struct Opt<K>(PhantomData<K>);
struct OptV<'c, K>(&'c mut Ctx, PhantomData<K>);
impl<'de, K: Kind> Visitor<'de> for OptV<'_, K> {
    type Value = Option<K::Out>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        K::decode(d, self.0).map(Some)
    }
}
impl<K: Kind> Kind for Opt<K> {
    type Out = Option<K::Out>;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, ctx: &mut Ctx) -> Result<Self::Out, D::Error> {
        d.deserialize_option(OptV::<K>(ctx, PhantomData))
    }
}

/// A repeated field: a JSON array of `K` (`null` -> empty). Element errors get their index in the path.
pub struct Rep<K>(PhantomData<K>);
struct RepV<'c, K>(&'c mut Ctx, PhantomData<K>);
impl<'de, K: Kind> Visitor<'de> for RepV<'_, K> {
    type Value = Vec<K::Out>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ctx = self.0;
        let mut out = Vec::new();
        loop {
            match seq.next_element_seed(Seed::<K>::new(&mut *ctx)) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => return Ok(out),
                Err(e) => {
                    ctx.push(Seg::Index(out.len()));
                    return Err(e);
                }
            }
        }
    }
}
impl<K: Kind> Kind for Rep<K> {
    type Out = Vec<K::Out>;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, ctx: &mut Ctx) -> Result<Self::Out, D::Error> {
        d.deserialize_any(RepV::<K>(ctx, PhantomData))
    }
}

/// Error for a known field given twice.
pub fn duplicate_field<E: de::Error>() -> E {
    E::custom("duplicate field (given twice, perhaps once in camelCase and once in snake_case)")
}

/// Error for a second member of a oneof.
pub fn both_members<E: de::Error>(message: &str, first: &str, second: &str) -> E {
    E::custom(format_args!("{message} has both {first} and {second}"))
}

message! {
    AnyValue as AnyValueField, "AnyValue" {}
    oneof value: AnyValueOneof {
        StringValue: Str = "stringValue" | "string_value" @ 1,
        BoolValue: Bool = "boolValue" | "bool_value" @ 2,
        IntValue: I64 = "intValue" | "int_value" @ 3,
        DoubleValue: F64 = "doubleValue" | "double_value" @ 4,
        ArrayValue: Obj<ArrayValue> = "arrayValue" | "array_value" @ 5,
        KvlistValue: Obj<KeyValueList> = "kvlistValue" | "kvlist_value" @ 6,
        BytesValue: Bytes = "bytesValue" | "bytes_value" @ 7,
        StringValueStrindex: I32 = "stringValueStrindex" | "string_value_strindex" @ 8,
    }
}

message! {
    ArrayValue as ArrayValueField, "ArrayValue" {
        values: Rep<Obj<AnyValue>> = "values" @ 1,
    }
}

message! {
    KeyValueList as KeyValueListField, "KeyValueList" {
        values: Rep<Obj<KeyValue>> = "values" @ 1,
    }
}

message! {
    KeyValue as KeyValueField, "KeyValue" {
        key: Str = "key" @ 1,
        value: Opt<Obj<AnyValue>> = "value" @ 2,
        key_strindex: I32 = "keyStrindex" @ 3,
    }
}

message! {
    InstrumentationScope as InstrumentationScopeField, "InstrumentationScope" {
        name: Str = "name" @ 1,
        version: Str = "version" @ 2,
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 3,
        dropped_attributes_count: U32 = "droppedAttributesCount" @ 4,
    }
}

message! {
    EntityRef as EntityRefField, "EntityRef" {
        schema_url: Str = "schemaUrl" @ 1,
        r#type: Str = "type" @ 2,
        id_keys: Rep<Str> = "idKeys" @ 3,
        description_keys: Rep<Str> = "descriptionKeys" @ 4,
    }
}

message! {
    Resource as ResourceField, "Resource" {
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 1,
        dropped_attributes_count: U32 = "droppedAttributesCount" @ 2,
        entity_refs: Rep<Obj<EntityRef>> = "entityRefs" @ 3,
    }
}
