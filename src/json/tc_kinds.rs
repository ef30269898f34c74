//! Transcoding of the field kinds of [`de_scalar`](super::de_scalar) and of `Opt` / `Rep`: the same JSON
//! rules (the scalar visitors are shared, so values and error texts are identical), protobuf bytes out.
//!
//! Defaults are omitted as prost omits them (zero numbers, `false`, empty strings and bytes), except where
//! `keep` says the field is present anyway: a set oneof member, an `optional double`, a repeated element.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use super::de_common::{Opt, Rep};
use super::de_scalar::{
    decode_base64, parse_hex, Bool, Bytes, BytesV, Enum, EnumName, Fixed32, Fixed64, Hex, HexV, IdName, Kind, SFixed64,
    SInt32, Str, StrV, F64, I32, I64, U32, U64,
};
use super::error::Seg;
use super::tc_out::{Out, Tc, I32 as W32, I64 as W64, VARINT};

/// A field kind that can be transcoded: [`Kind`]'s JSON rules, protobuf out.
pub trait Wire {
    /// Whether a repeated field of this kind is packed (numeric scalars).
    const PACKED: bool = false;
    /// Reads one JSON value and writes it as field `num`, unless it is the default and `keep` is false.
    /// Returns false when the field is absent because the value was `null` (only [`Opt`] says so).
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, keep: bool) -> Result<bool, D::Error>;
    /// Reads one element of a packed array and writes its value alone. Only called when `PACKED`, so the
    /// kinds that are not packed keep this default, which is never used.
    fn packed<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>) -> Result<(), D::Error> {
        let _ = tc;
        d.deserialize_ignored_any(de::IgnoredAny).map(|_| ())
    }
}

/// serde entry point for field `num` of kind `K`.
pub struct FieldSeed<'t, 'o, K> {
    tc: &'t mut Tc<'o>,
    num: u32,
    keep: bool,
    kind: PhantomData<fn() -> K>,
}

impl<'t, 'o, K> FieldSeed<'t, 'o, K> {
    #[inline]
    pub fn new(tc: &'t mut Tc<'o>, num: u32, keep: bool) -> Self {
        FieldSeed { tc, num, keep, kind: PhantomData }
    }
}

impl<'de, K: Wire> DeserializeSeed<'de> for FieldSeed<'_, '_, K> {
    type Value = bool;
    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        K::field(d, self.tc, self.num, self.keep)
    }
}

/// A numeric scalar kind: its wire type, default and encoding.
trait Num: Kind<Out: Copy> {
    const WIRE: u32;
    fn is_default(v: Self::Out) -> bool;
    fn put(out: &mut Out<'_>, v: Self::Out);
}

impl<K: Num> Wire for K {
    const PACKED: bool = true;
    #[inline]
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, keep: bool) -> Result<bool, D::Error> {
        let v = K::decode(d, &mut tc.ctx)?;
        if keep || !K::is_default(v) {
            tc.out.key(num, K::WIRE);
            K::put(&mut tc.out, v);
        }
        Ok(true)
    }
    #[inline]
    fn packed<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>) -> Result<(), D::Error> {
        let v = K::decode(d, &mut tc.ctx)?;
        K::put(&mut tc.out, v);
        Ok(())
    }
}

macro_rules! num {
    ($kind:ty, $wire:expr, |$out:ident, $v:ident| $put:expr) => {
        impl Num for $kind {
            const WIRE: u32 = $wire;
            #[inline]
            fn is_default(v: Self::Out) -> bool {
                v == Self::Out::default()
            }
            #[inline]
            fn put($out: &mut Out<'_>, $v: Self::Out) {
                $put
            }
        }
    };
}

num!(Bool, VARINT, |out, v| out.varint(u64::from(v)));
num!(U64, VARINT, |out, v| out.varint(v));
num!(I64, VARINT, |out, v| out.varint(v as u64));
num!(U32, VARINT, |out, v| out.varint(u64::from(v)));
// Negative int32 values are sign-extended to 10 bytes, as the protobuf spec (and prost) do.
num!(I32, VARINT, |out, v| out.varint(i64::from(v) as u64));
num!(SInt32, VARINT, |out, v| out.varint(u64::from(((v << 1) ^ (v >> 31)) as u32)));
num!(Fixed64, W64, |out, v| out.fixed64(v));
num!(SFixed64, W64, |out, v| out.fixed64(v as u64));
num!(Fixed32, W32, |out, v| out.fixed32(v));
// `-0.0 == 0.0`: prost omits negative zero too, so both decode to the same message.
num!(F64, W64, |out, v| out.fixed64(v.to_bits()));

impl<E: EnumName> Num for Enum<E> {
    const WIRE: u32 = VARINT;
    #[inline]
    fn is_default(v: i32) -> bool {
        v == 0
    }
    #[inline]
    fn put(out: &mut Out<'_>, v: i32) {
        out.varint(i64::from(v) as u64);
    }
}

/// A visitor writing field `num` straight from the JSON text.
struct Direct<'t, 'o, V> {
    out: &'t mut Out<'o>,
    num: u32,
    keep: bool,
    rules: V,
}

impl Wire for Str {
    #[inline]
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, keep: bool) -> Result<bool, D::Error> {
        d.deserialize_any(Direct { out: &mut tc.out, num, keep, rules: StrV }).map(|()| true)
    }
}
impl<'de> Visitor<'de> for Direct<'_, '_, StrV> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rules.expecting(f)
    }
    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.keep || !v.is_empty() {
            self.out.bytes(self.num, v.as_bytes());
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_str("")
    }
}

impl<const N: usize, W: IdName> Wire for Hex<N, W> {
    #[inline]
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, keep: bool) -> Result<bool, D::Error> {
        d.deserialize_any(Direct { out: &mut tc.out, num, keep, rules: HexV::<N, W>::new() }).map(|()| true)
    }
}
impl<'de, const N: usize, W: IdName> Visitor<'de> for Direct<'_, '_, HexV<N, W>> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rules.expecting(f)
    }
    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match parse_hex::<N, W, E>(v)? {
            Some(id) => self.out.bytes(self.num, &id),
            None if self.keep => self.out.bytes(self.num, &[]),
            None => {}
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_str("")
    }
}

impl Wire for Bytes {
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, keep: bool) -> Result<bool, D::Error> {
        d.deserialize_any(Direct { out: &mut tc.out, num, keep, rules: BytesV }).map(|()| true)
    }
}
impl<'de> Visitor<'de> for Direct<'_, '_, BytesV> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rules.expecting(f)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let start = self.out.len();
        let open = self.out.open(self.num);
        decode_base64(v, self.out.buf())?;
        if !self.keep && self.out.is_empty_since(&open) {
            self.out.cancel(start, open);
        } else {
            self.out.close(open);
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_str("")
    }
}

/// `null` -> absent (returns false), anything else written as `K` even when it is the default.
impl<K: Wire> Wire for Opt<K> {
    #[inline]
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, _: bool) -> Result<bool, D::Error> {
        d.deserialize_option(OptW::<K> { tc, num, kind: PhantomData })
    }
}
struct OptW<'t, 'o, K> {
    tc: &'t mut Tc<'o>,
    num: u32,
    kind: PhantomData<K>,
}
impl<'de, K: Wire> Visitor<'de> for OptW<'_, '_, K> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        K::field(d, self.tc, self.num, true).map(|_| true)
    }
}

/// A JSON array (`null` -> empty): one field per element, or one packed field for numeric scalars.
impl<K: Wire> Wire for Rep<K> {
    #[inline]
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, _: bool) -> Result<bool, D::Error> {
        d.deserialize_any(RepW::<K> { tc, num, kind: PhantomData }).map(|()| true)
    }
}
struct RepW<'t, 'o, K> {
    tc: &'t mut Tc<'o>,
    num: u32,
    kind: PhantomData<K>,
}
impl<'de, K: Wire> Visitor<'de> for RepW<'_, '_, K> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (tc, num) = (self.tc, self.num);
        let mut n = 0;
        if K::PACKED {
            let start = tc.out.len();
            let open = tc.out.open(num);
            loop {
                match seq.next_element_seed(PackedSeed::<K>(tc, PhantomData)) {
                    Ok(Some(())) => n += 1,
                    Ok(None) => break,
                    Err(e) => {
                        tc.ctx.push(Seg::Index(n));
                        return Err(e);
                    }
                }
            }
            if n == 0 {
                tc.out.cancel(start, open);
            } else {
                tc.out.close(open);
            }
        } else {
            loop {
                match seq.next_element_seed(FieldSeed::<K>::new(tc, num, true)) {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => break,
                    Err(e) => {
                        tc.ctx.push(Seg::Index(n));
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

struct PackedSeed<'t, 'o, K>(&'t mut Tc<'o>, PhantomData<K>);
impl<'de, K: Wire> DeserializeSeed<'de> for PackedSeed<'_, '_, K> {
    type Value = ();
    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        K::packed(d, self.0)
    }
}
