//! The tree decoder: OTLP/JSON into prost messages, through the same tables ([`Msg`]) and scalar visitors as the
//! transcoder. Compiled only for tests and the `json-tree` feature (benchmarks, fuzz targets, integration tests):
//! the receiver never builds a message tree.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::de_common::{duplicate_field, KeySeed, Msg, Obj, Opt, Rep};
use super::de_scalar::{Bytes, BytesV, Hex, HexV, IdName, Kind, Str, StrV};
use super::error::{Ctx, Seg};

/// serde entry point for a [`Kind`], carrying the shared decoder state down the tree.
pub(super) struct Seed<'c, K>(&'c mut Ctx, PhantomData<fn() -> K>);

impl<'c, K> Seed<'c, K> {
    #[inline]
    pub(super) fn new(ctx: &'c mut Ctx) -> Self {
        Seed(ctx, PhantomData)
    }
}

impl<'de, K: Kind> DeserializeSeed<'de> for Seed<'_, K> {
    type Value = K::Out;
    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Out, D::Error> {
        K::decode(d, self.0)
    }
}

// The kinds the transcoder writes straight from the JSON text (it shares their visitors, not these impls).
impl Kind for Str {
    type Out = String;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, _: &mut Ctx) -> Result<String, D::Error> {
        d.deserialize_any(StrV)
    }
}
impl Kind for Bytes {
    type Out = Vec<u8>;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, _: &mut Ctx) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(BytesV)
    }
}
impl<const N: usize, W: IdName> Kind for Hex<N, W> {
    type Out = Vec<u8>;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, _: &mut Ctx) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(HexV::<N, W>::new())
    }
}

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
