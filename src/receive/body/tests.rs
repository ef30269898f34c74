//! Tests of reading and inflating bodies under their limits.

use super::*;
use crate::limit::MemoryBudget;
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_encoding_inflates_to_the_original() {
    let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    let budget = MemoryBudget::new(1 << 30);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&data).unwrap();
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    raw.write_all(&data).unwrap();
    for (enc, wire) in [
        (ContentEncoding::Gzip, gzip(&data)),
        (ContentEncoding::Deflate, zlib.finish().unwrap()),
        (ContentEncoding::Deflate, raw.finish().unwrap()),
        (ContentEncoding::Zstd, zstd::bulk::compress(&data, 3).unwrap()),
        (ContentEncoding::Identity, data.clone()),
    ] {
        let mut r = budget.reserve(0).unwrap();
        let out = inflate(enc, Bytes::from(wire), 10 << 20, &mut r).unwrap();
        assert_eq!(&out[..], &data[..], "{enc:?}");
        if enc != ContentEncoding::Identity {
            assert_eq!(r.bytes(), out.len(), "only the inflated bytes stay reserved");
        }
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_inflated_limit() {
    let bomb = gzip(&vec![0u8; 50 << 20]);
    assert!(bomb.len() < 100 * 1024);
    let budget = MemoryBudget::new(1 << 30);
    let mut r = budget.reserve(0).unwrap();
    let err = inflate(ContentEncoding::Gzip, Bytes::from(bomb), 1 << 20, &mut r).unwrap_err();
    assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: true, .. }), "{err:?}");
    assert!(r.bytes() < 3 << 20, "never held much more than the limit: {}", r.bytes());
}

#[test]
fn a_zstd_bomb_stops_at_the_inflated_limit() {
    let bomb = zstd::bulk::compress(&vec![7u8; 64 << 20], 3).unwrap();
    let budget = MemoryBudget::new(1 << 30);
    let mut r = budget.reserve(0).unwrap();
    let err = inflate(ContentEncoding::Zstd, Bytes::from(bomb), 1 << 20, &mut r).unwrap_err();
    assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: true, .. }), "{err:?}");
}

#[test]
fn inflating_past_the_memory_budget_is_a_memory_error_not_a_crash() {
    let budget = MemoryBudget::new(2 << 20);
    let mut r = budget.reserve(0).unwrap();
    let err = inflate(ContentEncoding::Gzip, Bytes::from(gzip(&vec![1u8; 8 << 20])), 64 << 20, &mut r).unwrap_err();
    assert!(matches!(err, ReceiveError::Memory(_)), "{err:?}");
}

#[test]
fn a_limit_smaller_than_the_read_step_still_inflates_and_caps() {
    let budget = MemoryBudget::new(1 << 30);
    let mut r = budget.reserve(0).unwrap();
    let small = inflate(ContentEncoding::Gzip, Bytes::from(gzip(b"hello")), 5000, &mut r).unwrap();
    assert_eq!(&small[..], b"hello");
    let err = inflate(ContentEncoding::Gzip, Bytes::from(gzip(&[1u8; 6000])), 5000, &mut r).unwrap_err();
    assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: true, .. }), "{err:?}");
}

#[test]
fn corrupt_compressed_data_is_a_clear_error() {
    let budget = MemoryBudget::new(1 << 30);
    let mut r = budget.reserve(0).unwrap();
    let err = inflate(ContentEncoding::Gzip, Bytes::from_static(b"not gzip at all"), 1 << 20, &mut r).unwrap_err();
    assert!(err.to_string().contains("gzip"), "{err}");
    let err = inflate(ContentEncoding::Zstd, Bytes::from_static(b"nope"), 1 << 20, &mut r).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

type Compress = fn(&[u8]) -> Vec<u8>;

/// Every compressed encoding, as (encoding, name, compress).
fn encoders() -> Vec<(ContentEncoding, &'static str, Compress)> {
    vec![
        (ContentEncoding::Gzip, "gzip", gzip),
        (ContentEncoding::Deflate, "zlib", zlib),
        (ContentEncoding::Deflate, "raw deflate", raw_deflate),
        (ContentEncoding::Zstd, "zstd", |d| zstd::bulk::compress(d, 3).unwrap()),
    ]
}

fn inflate_all(enc: ContentEncoding, wire: Vec<u8>) -> Result<Bytes, ReceiveError> {
    let budget = MemoryBudget::new(1 << 30);
    let mut r = budget.reserve(0).unwrap();
    inflate(enc, Bytes::from(wire), 10 << 20, &mut r)
}

#[test]
fn concatenated_members_are_all_inflated_for_every_framed_encoding() {
    for (enc, name, compress) in encoders() {
        if name == "raw deflate" {
            continue; // no framing: see the next test
        }
        let mut wire = compress(b"first member, ");
        wire.extend(compress(b"second member"));
        let out = inflate_all(enc, wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&out[..], b"first member, second member", "{name}");
    }
}

#[test]
fn bytes_after_the_compressed_data_are_a_400_that_names_them_for_every_encoding() {
    for (enc, name, compress) in encoders() {
        for trailer in [&b"garbage"[..], &[0u8][..], &b"\x1f"[..]] {
            let mut wire = compress(b"the data");
            wire.extend_from_slice(trailer);
            let err = inflate_all(enc, wire).expect_err(name);
            assert!(matches!(err, ReceiveError::Decompress { .. }), "{name}: {err:?}");
            assert_eq!(err.class().status, 400, "{name}");
        }
        // Raw deflate followed by what would be another stream is still trailing data.
        let mut wire = compress(b"the data");
        wire.extend(compress(b"more"));
        if name == "raw deflate" {
            let err = inflate_all(enc, wire).expect_err(name);
            assert!(err.to_string().contains("trailing byte"), "{name}: {err}");
        }
    }
    let mut wire = zlib(b"the data");
    wire.extend_from_slice(b"tail");
    let err = inflate_all(ContentEncoding::Deflate, wire).unwrap_err();
    assert!(err.to_string().contains("4 trailing byte(s)"), "{err}");
}

#[test]
fn a_compressed_stream_cut_short_is_a_400_not_a_shorter_body() {
    let data: Vec<u8> = (0..50_000u32).flat_map(|i| (i % 7919).to_le_bytes()).collect();
    for (enc, name, compress) in encoders() {
        let wire = compress(&data);
        for cut in [wire.len() - 1, wire.len() / 2, 3] {
            let err = inflate_all(enc, wire[..cut].to_vec()).expect_err(name);
            assert_eq!(err.class().status, 400, "{name} cut at {cut}: {err}");
        }
    }
}

#[test]
fn unknown_encodings_are_refused() {
    assert!(matches!(ContentEncoding::parse(Some("br")), Err(ReceiveError::UnsupportedEncoding(_))));
    assert_eq!(ContentEncoding::parse(Some("GZIP")).unwrap(), ContentEncoding::Gzip);
    assert_eq!(ContentEncoding::parse(None).unwrap(), ContentEncoding::Identity);
}

#[tokio::test]
async fn reading_stops_at_the_wire_limit() {
    let budget = MemoryBudget::new(1 << 30);
    let mut r = budget.reserve(0).unwrap();
    let body = http_body_util::Full::new(Bytes::from(vec![0u8; 2000]));
    let err = read_limited(body, None, 1000, std::time::Duration::from_secs(5), &mut r).await.unwrap_err();
    assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: false, .. }));
    let body = http_body_util::Full::new(Bytes::from(vec![0u8; 10]));
    let err = read_limited(body, Some(5000), 1000, std::time::Duration::from_secs(5), &mut r).await.unwrap_err();
    assert!(matches!(err, ReceiveError::BodyTooLarge { seen: Some(5000), .. }), "declared length is checked first");
}
