//! Property tests: random valid requests of every signal, their prefixes and mutations.

use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;

use super::super::{scan, split};
use super::{Sig, SIGS};
use crate::test_gen as gen;

fn bodies() -> impl Strategy<Value = (usize, Vec<u8>)> {
    prop_oneof![
        gen::traces().prop_map(|r| (0, r.encode_to_vec())),
        gen::metrics().prop_map(|r| (1, r.encode_to_vec())),
        gen::logs().prop_map(|r| (2, r.encode_to_vec())),
    ]
}

/// Scan accepts a valid body, counts what prost decodes, and lists every entry.
fn check_valid(sig: &Sig, body: &[u8]) {
    let s = scan(sig.schema, body).unwrap_or_else(|e| panic!("rejected valid body: {e}"));
    let flat = (sig.flat)(body).unwrap();
    assert_eq!(s.items, flat.items);
    // prost writes nothing but entries at the top level, so entries tile the body.
    let mut at = 0;
    for e in &s.entries {
        assert_eq!(e.range.start, at);
        at = e.range.end;
        let one = scan(sig.schema, &body[e.range.clone()]).unwrap();
        assert_eq!(one.items, e.items);
        assert_eq!(one.entries.len(), 1);
    }
    assert_eq!(at, body.len());
}

/// Every chunk decodes, chunks hold exactly the original items in order with their context,
/// counts are right and chunks respect the limit unless they hold a single item.
fn check_split(sig: &Sig, body: &[u8], max: usize) {
    let bytes = Bytes::copy_from_slice(body);
    let s = scan(sig.schema, body).unwrap();
    let chunks = split(sig.schema, &bytes, &s, max);
    let want = (sig.flat)(body).unwrap();
    let mut rows = Vec::new();
    let mut items = 0;
    for c in &chunks {
        let f = (sig.flat)(&c.body).unwrap_or_else(|e| panic!("chunk does not decode: {e}"));
        assert_eq!(f.items, c.items);
        assert_eq!(scan(sig.schema, &c.body).unwrap().items, c.items);
        assert!(
            c.body.len() <= max || c.items <= 1,
            "chunk of {} bytes with {} items over limit {max}",
            c.body.len(),
            c.items
        );
        items += c.items;
        rows.extend(f.rows);
    }
    assert_eq!(items, want.items);
    assert_eq!(rows, want.rows);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn scan_accepts_valid_requests_and_counts_like_prost((sig, body) in bodies()) {
        check_valid(&SIGS[sig], &body);
    }

    #[test]
    fn split_chunks_decode_keep_items_in_order_and_fit(
        (sig, body) in bodies(),
        frac in 0.0f64..1.2,
    ) {
        let max = (body.len() as f64 * frac) as usize;
        check_split(&SIGS[sig], &body, max);
    }

    #[test]
    fn split_with_tiny_limits_isolates_items((sig, body) in bodies(), max in 0usize..200) {
        check_split(&SIGS[sig], &body, max);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_prefix_is_rejected_or_ends_at_an_entry_boundary((sig, body) in bodies()) {
        let sig = &SIGS[sig];
        let full = scan(sig.schema, &body).unwrap();
        for n in 0..body.len() {
            let prefix = &body[..n];
            if let Ok(s) = scan(sig.schema, prefix) {
                prop_assert!(n == 0 || full.entries.iter().any(|e| e.range.end == n));
                prop_assert_eq!(s.entries.len(), full.entries.iter().filter(|e| e.range.end <= n).count());
                prop_assert!((sig.flat)(prefix).is_ok());
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let byte =
        prop_oneof![any::<u8>(), prop::sample::select(vec![0u8, 1, 2, 5, 0x08, 0x0a, 0x0d, 0x12, 0x7f, 0x80, 0xff]),];
    let m = prop_oneof![
        4 => (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Remove),
    ];
    proptest::collection::vec(m, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// If the scan accepts a mutated body, prost accepts it too, counts the same items, and the
    /// body still splits into decodable chunks.
    #[test]
    fn mutated_bodies_accepted_by_scan_are_accepted_by_prost(
        (sig, mut body) in bodies(),
        muts in mutations(),
        max in 0usize..400,
    ) {
        let sig = &SIGS[sig];
        for m in muts {
            let len = body.len();
            match m {
                Mutation::Set(i, b) if len > 0 => body[i % len] = b,
                Mutation::Insert(i, b) => body.insert(i % (len + 1), b),
                Mutation::Remove(i) if len > 0 => {
                    body.remove(i % len);
                }
                _ => {}
            }
        }
        if let Ok(s) = scan(sig.schema, &body) {
            let flat = (sig.flat)(&body);
            prop_assert!(flat.is_ok(), "scan accepted, prost rejected: {:?}", flat.err());
            prop_assert_eq!(s.items, flat.unwrap().items);
            check_split(sig, &body, max);
        }
    }
}
