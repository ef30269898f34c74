//! Decoding of OTLP/JSON objects into prost messages: the object loop and the `Opt` / `Rep` wrappers the generated
//! tables (`schema.rs`) use.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::de_scalar::{Kind, Seed};
use super::error::{Ctx, Seg};
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
