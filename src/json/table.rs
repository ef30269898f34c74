//! The schema of each OTLP message, generated once (src/codegen, from proto/): [`message!`] turns a field table into both the decoder
//! (JSON -> prost, `Msg::decode_field`, tests and `json-tree` only) and the transcoder
//! (JSON -> protobuf bytes, [`Msg::transcode_field`](super::de_common::Msg::transcode_field)), so the two
//! cannot disagree about names, JSON rules or nesting.

/// Implements [`Msg`](super::de_common::Msg) for a prost message from its field table.
///
/// Header: `Type as FieldEnum, "Name"`, then `, items` when the transcoder counts the message as an item.
/// Each field: `rust_field: Kind = "jsonName" | "proto_name" @ number` (the proto name is the snake_case alias the
/// Collector accepts).
/// The kind gives both the JSON rules and the protobuf wire form (`U64` = uint64, `Fixed64` = fixed64, ...).
/// A oneof: `oneof rust_field: OneofEnum { Variant: Kind = "camel" | "snake" @ number, ... }`; `null`
/// members count as absent, a second non-null member is an error.
macro_rules! message {
    (@items) => { false };
    (@items $items:ident) => { true };
    (
        $ty:ty as $F:ident, $name:literal $(, $items:ident)? {
            $( $field:ident : $kind:ty = $camel:literal | $snake:literal @ $num:literal ),* $(,)?
        }
        $( oneof $target:ident : $Enum:ident {
            $( $var:ident : $vkind:ty = $vcamel:literal | $vsnake:literal @ $vnum:literal ),* $(,)?
        } )?
    ) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        pub enum $F { $( $field, )* $( $( $var, )* )? }

        impl super::de_common::Msg for $ty {
            const NAME: &'static str = $name;
            const ITEMS: bool = message!(@items $($items)?);
            type Field = $F;
            #[inline]
            fn field(key: &str) -> Option<$F> {
                #[allow(unreachable_patterns)]
                match key {
                    $( $camel | $snake => Some($F::$field), )*
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
            const KEYS: &'static [(&'static str, &'static str)] =
                &[ $( ($camel, $snake), )* $( $( ($vcamel, $vsnake), )* )? ];
            #[inline]
            #[cfg(any(test, feature = "json-tree"))]
            fn decode_field<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                f: $F,
                map: &mut A,
                ctx: &mut super::error::Ctx,
            ) -> Result<(), A::Error> {
                use super::de_tree::Seed;
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
            #[inline]
            #[allow(unused_variables)]
            fn transcode_field<'de, A: serde::de::MapAccess<'de>>(
                f: $F,
                map: &mut A,
                tc: &mut super::tc_out::Tc<'_>,
                set: &mut Option<$F>,
            ) -> Result<(), A::Error> {
                use super::tc_kinds::FieldSeed;
                match f {
                    $( $F::$field => {
                        map.next_value_seed(FieldSeed::<$kind>::new(tc, $num, false))?;
                    } )*
                    $( $(
                        $F::$var => {
                            let present = map.next_value_seed(
                                FieldSeed::<super::de_common::Opt<$vkind>>::new(tc, $vnum, true),
                            )?;
                            if present {
                                if let Some(prev) = *set {
                                    return Err(super::de_common::both_members($name, Self::name(prev), $vcamel));
                                }
                                *set = Some($F::$var);
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
