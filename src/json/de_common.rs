//! Decoding of OTLP/JSON objects into prost messages, and the messages shared by all signals.

use std::fmt;
use std::marker::PhantomData;

use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueOneof;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::de::{self, DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::de_scalar::{Bool, Bytes, Kind, Seed, Str, F64, I32, I64, U32};
use super::error::{Ctx, Seg};

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

struct KeySeed<M>(PhantomData<M>);
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
                return Err(A::Error::custom(
                    "duplicate field (given twice, perhaps once in camelCase and once in snake_case)",
                ));
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

/// Error for a second member of a oneof.
pub fn both_members<E: de::Error>(message: &str, first: &str, second: &str) -> E {
    E::custom(format_args!("{message} has both {first} and {second}"))
}

/// Implements [`Msg`] for a prost message from its field table.
///
/// Each field: `rust_field: Kind = "lowerCamelCase"`; the snake_case alias is the Rust field name.
/// A oneof: `oneof rust_field: OneofEnum { Variant: Kind = "camel" | "snake", ... }`; `null` members
/// count as absent, a second non-null member is an error.
macro_rules! message {
    (
        $ty:ty as $F:ident, $name:literal {
            $( $field:ident : $kind:ty = $camel:literal ),* $(,)?
        }
        $( oneof $target:ident : $Enum:ident {
            $( $var:ident : $vkind:ty = $vcamel:literal | $vsnake:literal ),* $(,)?
        } )?
    ) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        pub enum $F { $( $field, )* $( $( $var, )* )? }

        impl super::de_common::Msg for $ty {
            const NAME: &'static str = $name;
            type Field = $F;
            #[inline]
            fn field(key: &str) -> Option<$F> {
                #[allow(unreachable_patterns)]
                match key {
                    $( $camel | stringify!($field) => Some($F::$field), )*
                    $( $( $vcamel | $vsnake => Some($F::$var), )* )?
                    _ => None,
                }
            }
            #[inline]
            fn bit(f: $F) -> u32 {
                1u32 << (f as u32)
            }
            fn name(f: $F) -> &'static str {
                match f {
                    $( $F::$field => $camel, )*
                    $( $( $F::$var => $vcamel, )* )?
                }
            }
            #[inline]
            fn decode_field<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                f: $F,
                map: &mut A,
                ctx: &mut super::error::Ctx,
            ) -> Result<(), A::Error> {
                use super::de_scalar::Seed;
                $(
                    fn member_name(v: &$Enum) -> &'static str {
                        match v { $( $Enum::$var(_) => $vcamel, )* }
                    }
                )?
                match f {
                    $( $F::$field => self.$field = map.next_value_seed(Seed::<$kind>::new(ctx))?, )*
                    $( $(
                        $F::$var => {
                            if let Some(v) = map.next_value_seed(Seed::<super::de_common::Opt<$vkind>>::new(ctx))? {
                                if let Some(prev) = &self.$target {
                                    return Err(super::de_common::both_members(
                                        $name,
                                        member_name(prev),
                                        $vcamel,
                                    ));
                                }
                                self.$target = Some($Enum::$var(v));
                            }
                        }
                    )* )?
                }
                Ok(())
            }
        }
    };
}
pub(super) use message;

message! {
    AnyValue as AnyValueField, "AnyValue" {}
    oneof value: AnyValueOneof {
        StringValue: Str = "stringValue" | "string_value",
        BoolValue: Bool = "boolValue" | "bool_value",
        IntValue: I64 = "intValue" | "int_value",
        DoubleValue: F64 = "doubleValue" | "double_value",
        ArrayValue: Obj<ArrayValue> = "arrayValue" | "array_value",
        KvlistValue: Obj<KeyValueList> = "kvlistValue" | "kvlist_value",
        BytesValue: Bytes = "bytesValue" | "bytes_value",
        StringValueStrindex: I32 = "stringValueStrindex" | "string_value_strindex",
    }
}

message! {
    ArrayValue as ArrayValueField, "ArrayValue" {
        values: Rep<Obj<AnyValue>> = "values",
    }
}

message! {
    KeyValueList as KeyValueListField, "KeyValueList" {
        values: Rep<Obj<KeyValue>> = "values",
    }
}

message! {
    KeyValue as KeyValueField, "KeyValue" {
        key: Str = "key",
        value: Opt<Obj<AnyValue>> = "value",
        key_strindex: I32 = "keyStrindex",
    }
}

message! {
    InstrumentationScope as InstrumentationScopeField, "InstrumentationScope" {
        name: Str = "name",
        version: Str = "version",
        attributes: Rep<Obj<KeyValue>> = "attributes",
        dropped_attributes_count: U32 = "droppedAttributesCount",
    }
}

message! {
    EntityRef as EntityRefField, "EntityRef" {
        schema_url: Str = "schemaUrl",
        r#type: Str = "type",
        id_keys: Rep<Str> = "idKeys",
        description_keys: Rep<Str> = "descriptionKeys",
    }
}

message! {
    Resource as ResourceField, "Resource" {
        attributes: Rep<Obj<KeyValue>> = "attributes",
        dropped_attributes_count: U32 = "droppedAttributesCount",
        entity_refs: Rep<Obj<EntityRef>> = "entityRefs",
    }
}
