//! Round trip property: random message -> encode -> decode -> the same message, for three requests; the encoded
//! text also goes through the independent oracle (`oracle.rs`). The messages come from `crate::test_gen`.
//!
//! Equality is checked on the protobuf encoding, which compares doubles bit for bit (NaN included).

use crate::test_gen::{logs, metrics, traces};
use proptest::prelude::*;

use super::super::{decode, encode};
use super::oracle::{agrees, Named};

fn round_trip<T: Named>(msg: &T) -> Result<(), TestCaseError> {
    let json = encode(msg);
    prop_assert!(!json.contains('\n'), "not one line: {json}");
    // Our encoder's text is inside what the independent oracle reads: the transcoder must read it the same way.
    agrees::<T>(json.as_bytes()).map_err(TestCaseError::fail)?;
    let back: T = decode(json.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
    prop_assert!(
        back.encode_to_vec() == msg.encode_to_vec(),
        "round trip changed the message:\n{json}\n{}",
        encode(&back)
    );
    // Encoding is stable: the decoded message encodes to the same text.
    prop_assert_eq!(encode(&back), json);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn traces_round_trip_through_json(req in traces()) {
        round_trip(&req)?;
    }

    #[test]
    fn metrics_round_trip_through_json(req in metrics()) {
        round_trip(&req)?;
    }

    #[test]
    fn logs_round_trip_through_json(req in logs()) {
        round_trip(&req)?;
    }
}
