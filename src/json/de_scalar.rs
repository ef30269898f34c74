//! Decoding of OTLP/JSON leaf values: the lenient-where-the-Collector-is, strict-where-data-would-be-lost rules.
//!
//! Every kind here maps JSON `null` to the field's default, as proto3 JSON does.

use std::fmt;
use std::marker::PhantomData;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};

use super::error::{Ctx, Quoted};

/// A way to decode one JSON value into a Rust value. Marker types pick the JSON rules (hex id, base64
/// bytes, enum, ...), since the prost field type alone (`Vec<u8>`, `i32`) does not say which applies.
pub trait Kind {
    type Out;
    fn decode<'de, D: Deserializer<'de>>(d: D, ctx: &mut Ctx) -> Result<Self::Out, D::Error>;
}

/// Kinds whose visitor needs no decoder state.
macro_rules! stateless_kind {
    ($kind:ident, $out:ty, $visitor:expr) => {
        impl Kind for $kind {
            type Out = $out;
            #[inline]
            fn decode<'de, D: Deserializer<'de>>(d: D, _: &mut Ctx) -> Result<$out, D::Error> {
                d.deserialize_any($visitor)
            }
        }
    };
}

/// A UTF-8 string (`null` -> "").
pub struct Str;
pub(super) struct StrV;
impl<'de> Visitor<'de> for StrV {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// `true` / `false` (`null` -> false). Strings are not booleans, as in proto3 JSON.
pub struct Bool;
struct BoolV;
impl<'de> Visitor<'de> for BoolV {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}
stateless_kind!(Bool, bool, BoolV);

/// Integer types as proto3 JSON carries them: a JSON number or a decimal string.
pub trait Int: Copy + Default + TryFrom<i128> + std::str::FromStr {
    const NAME: &'static str;
}
impl Int for u64 {
    const NAME: &'static str = "uint64";
}
impl Int for i64 {
    const NAME: &'static str = "int64";
}
impl Int for u32 {
    const NAME: &'static str = "uint32";
}
impl Int for i32 {
    const NAME: &'static str = "int32";
}

/// Largest magnitude below which every integer is exactly representable as an f64.
const MAX_EXACT_F64: f64 = 9_007_199_254_740_992.0; // 2^53

/// Integer from a JSON number written with a fraction or exponent (`1e3`, `2.0`).
///
/// Accepted only when it is an exact integer of magnitude at most 2^53: above that, the f64 that serde_json
/// parsed may already differ from the digits the client sent, and we never forward a silently altered value.
/// Plain integer literals (the usual case) never come here and are exact over the whole 64-bit range.
fn int_from_f64<T: Int, E: de::Error>(v: f64) -> Result<T, E> {
    if v.fract() != 0.0 || !v.is_finite() {
        return Err(E::custom(format_args!("invalid {} {v}: not an integer", T::NAME)));
    }
    if v.abs() > MAX_EXACT_F64 {
        return Err(E::custom(format_args!(
            "invalid {} {v:e}: too large for exponent or fraction notation, send it as a decimal string",
            T::NAME
        )));
    }
    // In range of i64 by the check above, so the cast is exact.
    int_from_i128(v as i64 as i128)
}

fn int_from_i128<T: Int, E: de::Error>(v: i128) -> Result<T, E> {
    T::try_from(v).map_err(|_| E::custom(format_args!("invalid {} {v}: out of range", T::NAME)))
}

fn int_from_str<T: Int, E: de::Error>(s: &str) -> Result<T, E> {
    // Fast path for the usual case, 1 to 19 plain digits (timestamps): cannot overflow a u64.
    // One pass, no branch per digit: the value is only used if every byte was a digit.
    if (1..=19).contains(&s.len()) {
        let (v, digits) = s.bytes().fold((0u64, true), |(v, digits), b| {
            let d = b.wrapping_sub(b'0');
            (v.wrapping_mul(10).wrapping_add(u64::from(d)), digits & (d < 10))
        });
        if digits {
            if let Ok(v) = T::try_from(i128::from(v)) {
                return Ok(v);
            }
        }
    }
    s.parse::<T>().map_err(|_| E::custom(format_args!("invalid {} {}", T::NAME, Quoted(s))))
}

struct IntV<T>(PhantomData<T>);
impl<'de, T: Int> Visitor<'de> for IntV<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an {} (number or decimal string)", T::NAME)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        int_from_i128(v.into())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        int_from_i128(v.into())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        int_from_f64(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        int_from_str(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

/// uint64.
pub struct U64;
stateless_kind!(U64, u64, IntV::<u64>(PhantomData));
/// int64.
pub struct I64;
stateless_kind!(I64, i64, IntV::<i64>(PhantomData));
/// uint32.
pub struct U32;
stateless_kind!(U32, u32, IntV::<u32>(PhantomData));
/// int32.
pub struct I32;
stateless_kind!(I32, i32, IntV::<i32>(PhantomData));
/// fixed64: the uint64 JSON rules; only the protobuf wire form differs.
pub struct Fixed64;
stateless_kind!(Fixed64, u64, IntV::<u64>(PhantomData));
/// sfixed64: the int64 JSON rules.
pub struct SFixed64;
stateless_kind!(SFixed64, i64, IntV::<i64>(PhantomData));
/// fixed32: the uint32 JSON rules.
pub struct Fixed32;
stateless_kind!(Fixed32, u32, IntV::<u32>(PhantomData));
/// sint32: the int32 JSON rules.
pub struct SInt32;
stateless_kind!(SInt32, i32, IntV::<i32>(PhantomData));

/// double: a number, a numeric string, or "NaN" / "Infinity" / "-Infinity".
pub struct F64;
struct F64V;
impl<'de> Visitor<'de> for F64V {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a double (number, numeric string, \"NaN\", \"Infinity\" or \"-Infinity\")")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            // Rust's parser also takes "inf", "nan", "infinity" in any case: only let number syntax through.
            _ if v.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                Ok(_) => Err(E::custom(format_args!("invalid double {}: out of range", Quoted(v)))),
                Err(_) => Err(E::custom(format_args!("invalid double {}", Quoted(v)))),
            },
            _ => Err(E::custom(format_args!(
                "invalid double {}: expected a number, \"NaN\", \"Infinity\" or \"-Infinity\"",
                Quoted(v)
            ))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(0.0)
    }
}
stateless_kind!(F64, f64, F64V);

/// An id of `N` bytes (trace id 16, span id 8, profile id 16): case-insensitive hex of exactly `2 * N` characters;
/// "" or null = absent. `W` names the kind of id in error messages; both come from the generator's `IDS` overlay (src/codegen).
pub struct Hex<const N: usize, W>(PhantomData<W>);

/// The kind of id a [`Hex`] field holds, as error messages name it (`"trace id"`); generated from the `IDS` overlay of src/codegen.
pub trait IdName {
    /// E.g. `"trace id"`.
    const WHAT: &'static str;
}

pub(super) struct HexV<const N: usize, W>(PhantomData<W>);
impl<const N: usize, W: IdName> HexV<N, W> {
    pub(super) const fn new() -> Self {
        HexV(PhantomData)
    }
}

/// Value of each hex digit, 0xFF for other bytes.
const HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// A hex id of exactly `2 * N` characters; `None` for "" (absent).
pub(super) fn parse_hex<const N: usize, W: IdName, E: de::Error>(v: &str) -> Result<Option<[u8; N]>, E> {
    if v.is_empty() {
        return Ok(None);
    }
    let b = v.as_bytes();
    if b.len() != 2 * N {
        return Err(E::custom(format_args!(
            "invalid {} {}: expected {} hex characters, got {}",
            W::WHAT,
            Quoted(v),
            2 * N,
            v.chars().count()
        )));
    }
    let mut out = [0u8; N];
    // Fast pass: every digit looked up, one check at the end.
    let mut bad = 0;
    for (pair, o) in b.chunks_exact(2).zip(&mut out) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = hi << 4 | lo;
    }
    if bad & 0xF0 == 0 {
        return Ok(Some(out));
    }
    // All of `v` before `pos` is ASCII hex digits, so `pos` is a char boundary.
    let pos = b.iter().position(|&c| HEX[usize::from(c)] == 0xFF).unwrap_or(0);
    let c = v.get(pos..).and_then(|s| s.chars().next()).unwrap_or('?');
    Err(E::custom(format_args!("invalid {} {}: {c:?} at position {pos} is not a hex digit", W::WHAT, Quoted(v))))
}

impl<'de, const N: usize, W: IdName> Visitor<'de> for HexV<N, W> {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} ({} hex characters)", W::WHAT, 2 * N)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(parse_hex::<N, W, E>(v)?.map_or_else(Vec::new, |id| id.to_vec()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
        Ok(Vec::new())
    }
}

/// bytes: base64, standard or URL-safe alphabet, padded or not.
pub struct Bytes;
const B64_CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const B64_STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, B64_CONFIG);
const B64_URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, B64_CONFIG);

pub(super) struct BytesV;

/// Appends the bytes that base64 text `v` stands for to `out`.
pub(super) fn decode_base64<E: de::Error>(v: &str, out: &mut Vec<u8>) -> Result<(), E> {
    let engine = if v.bytes().any(|b| b == b'-' || b == b'_') { &B64_URL } else { &B64_STD };
    engine.decode_vec(v, out).map_err(|e| E::custom(format_args!("invalid base64 {}: {e}", Quoted(v))))
}

impl<'de> Visitor<'de> for BytesV {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64-encoded bytes")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        let mut out = Vec::new();
        decode_base64(v, &mut out)?;
        Ok(out)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
        Ok(Vec::new())
    }
}

/// A proto enum: accepted as any int32 (unknown values are kept) or as its proto name.
pub trait EnumName {
    /// Human name for messages, e.g. "span kind".
    const WHAT: &'static str;
    /// Common prefix of the value names, e.g. "SPAN_KIND_".
    const PREFIX: &'static str;
    fn from_name(name: &str) -> Option<i32>;
}

/// Marker for an enum field of type `E`.
pub struct Enum<E>(PhantomData<E>);
struct EnumV<E>(PhantomData<E>);
impl<'de, E: EnumName> Visitor<'de> for EnumV<E> {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} (integer or {}* name)", E::WHAT, E::PREFIX)
    }
    fn visit_u64<Er: de::Error>(self, v: u64) -> Result<i32, Er> {
        IntV::<i32>(PhantomData).visit_u64(v)
    }
    fn visit_i64<Er: de::Error>(self, v: i64) -> Result<i32, Er> {
        IntV::<i32>(PhantomData).visit_i64(v)
    }
    fn visit_f64<Er: de::Error>(self, v: f64) -> Result<i32, Er> {
        IntV::<i32>(PhantomData).visit_f64(v)
    }
    fn visit_str<Er: de::Error>(self, v: &str) -> Result<i32, Er> {
        if let Some(n) = E::from_name(v) {
            return Ok(n);
        }
        v.parse::<i32>().map_err(|_| {
            Er::custom(format_args!("invalid {} {}: expected an integer or a {}* name", E::WHAT, Quoted(v), E::PREFIX))
        })
    }
    fn visit_unit<Er: de::Error>(self) -> Result<i32, Er> {
        Ok(0)
    }
}
impl<E: EnumName> Kind for Enum<E> {
    type Out = i32;
    #[inline]
    fn decode<'de, D: Deserializer<'de>>(d: D, _: &mut Ctx) -> Result<i32, D::Error> {
        d.deserialize_any(EnumV::<E>(PhantomData))
    }
}
