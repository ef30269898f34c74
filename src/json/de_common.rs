//! The [`Msg`] trait the generated tables (`schema.rs`) implement, and the `Obj` / `Opt` / `Rep` kinds they are
//! written in: shared by the transcoder (`tc_*`) and the tree decoder (`de_tree`, tests and `json-tree` only).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

#[cfg(any(test, feature = "json-tree"))]
use super::error::Ctx;
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
    /// Every key of the message, lowerCamelCase with its snake_case alias, in declaration order (oneof members
    /// last).
    const KEYS: &'static [(&'static str, &'static str)];
    /// Decodes the value of field `f` into `self`.
    #[cfg(any(test, feature = "json-tree"))]
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

/// Marker: a message `M` (`null` -> default message).
pub struct Obj<M>(PhantomData<M>);

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

/// `null` -> `None`, anything else as `K`: optional messages and `optional double`.
pub struct Opt<K>(PhantomData<K>);
/// A repeated field: a JSON array of `K` (`null` -> empty). Element errors get their index in the path.
pub struct Rep<K>(PhantomData<K>);
/// Error for a known field given twice.
pub fn duplicate_field<E: de::Error>() -> E {
    E::custom("duplicate field (given twice, perhaps once in camelCase and once in snake_case)")
}

/// Error for a second member of a oneof.
pub fn both_members<E: de::Error>(message: &str, first: &str, second: &str) -> E {
    E::custom(format_args!("{message} has both {first} and {second}"))
}
