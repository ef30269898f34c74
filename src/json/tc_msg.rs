//! Transcoding of messages: the JSON object loop of the decoder, writing protobuf instead of filling a struct.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::de_common::{duplicate_field, KeySeed, Msg, Obj};
use super::error::Seg;
use super::tc_kinds::Wire;
use super::tc_out::{Tc, LEN};

/// A nested message: always written when present (`{}` too); `null` as an array element is a default message.
impl<M: Msg> Wire for Obj<M> {
    #[inline]
    fn field<'de, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>, num: u32, _: bool) -> Result<bool, D::Error> {
        d.deserialize_any(MsgW::<M> { tc, num: Some(num), msg: PhantomData }).map(|()| true)
    }
}

/// Transcodes the top-level message, which must be a JSON object (`null`, arrays... are errors).
pub fn transcode_top<'de, M: Msg, D: Deserializer<'de>>(d: D, tc: &mut Tc<'_>) -> Result<(), D::Error> {
    d.deserialize_map(MsgW::<M> { tc, num: None, msg: PhantomData })
}

/// Message `M` as field `num` (`None` at the top level: no key, no length).
struct MsgW<'t, 'o, M> {
    tc: &'t mut Tc<'o>,
    num: Option<u32>,
    msg: PhantomData<M>,
}

impl<'de, M: Msg> Visitor<'de> for MsgW<'_, '_, M> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} JSON object", M::NAME)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if let Some(num) = self.num {
            self.tc.out.key(num, LEN);
            self.tc.out.varint(0);
        }
        self.tc.items += u64::from(M::ITEMS);
        Ok(())
    }
    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let tc = self.tc;
        let open = self.num.map(|num| tc.out.open(num));
        let mut seen = 0u32;
        let mut set = None;
        while let Some(key) = map.next_key_seed(KeySeed::<M>(PhantomData))? {
            let Some(f) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let bit = M::bit(f);
            if seen & bit != 0 {
                tc.ctx.push(Seg::Field(M::name(f)));
                return Err(duplicate_field());
            }
            seen |= bit;
            if let Err(e) = M::transcode_field(f, &mut map, tc, &mut set) {
                tc.ctx.push(Seg::Field(M::name(f)));
                return Err(e);
            }
        }
        if let Some(open) = open {
            tc.out.close(open);
        }
        tc.items += u64::from(M::ITEMS);
        Ok(())
    }
}
