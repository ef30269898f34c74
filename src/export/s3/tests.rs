//! The archive against `object_store`'s in-memory store (a complete implementation of the same traits): what an
//! object holds, its key, its metadata, multipart uploads. The real S3 server's checks (signatures, metadata
//! headers, outages) are in the end-to-end suite (`tests/archive/`).

use std::sync::Arc;

use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use prost::Message;

use super::archive::{Archive, ObjectFormat, ObjectMemory, ObjectWriter, Refused, PART_BYTES};
use super::key::Namer;
use super::*;
use crate::export::ExportBuffers;
use crate::limit::MemoryBudget;
use crate::signal::SignalKind;
use crate::telemetry::Telemetry;

fn request(n: usize, name: &str) -> Bytes {
    let spans = (0..n)
        .map(|i| Span {
            name: format!("{name}-{i}-{}", fastrand::u64(..)),
            trace_id: vec![7; 16],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
    .into()
}

/// The spool directory of the tests' archives: the test binary's temp dir (spool files have no name).
fn memory(budget: Arc<MemoryBudget>, uploads: usize) -> ObjectMemory {
    ObjectMemory { budget, uploads: ExportBuffers::new(uploads), spool_dir: std::env::temp_dir() }
}

fn archive(store: Arc<InMemory>, format: ArchiveFormat, compression: ArchiveCompression) -> Archive {
    archive_with(store, format, compression, memory(MemoryBudget::new(64 << 20), 16 << 20))
}

fn archive_with(
    store: Arc<InMemory>,
    format: ArchiveFormat,
    compression: ArchiveCompression,
    memory: ObjectMemory,
) -> Archive {
    Archive::new(
        Location::parse("s3://bkt/p").unwrap(),
        store,
        Namer::with_instance("inst".into()),
        ObjectFormat { format, compression },
        memory,
        "s3://bkt/p".into(),
        Telemetry::new(),
    )
}

async fn keys(store: &InMemory) -> Vec<String> {
    let mut keys: Vec<String> = store.list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    keys.sort();
    keys
}

async fn bytes(store: &InMemory, key: &str) -> Bytes {
    store.get(&Path::from(key)).await.unwrap().bytes().await.unwrap()
}

// The test's own object, of known size: no cap needed.
#[allow(clippy::disallowed_methods)]
#[tokio::test]
async fn a_batch_is_one_object_holding_one_request_with_every_span() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpProto, ArchiveCompression::Zstd);
    let parts = [request(2, "a"), request(3, "b")];
    let key = a.next_key(SignalKind::Traces, humantime::parse_rfc3339("2026-12-06T21:30:05Z").unwrap());
    let stored = a.store_batch(SignalKind::Traces, &key, &parts, &[]).await.unwrap().0.unwrap();
    assert_eq!(keys(&store).await, std::slice::from_ref(&key));
    assert_eq!(key, "p/traces/dt=2026-12-06/hour=21/20261206T213005Z-inst-000000.binpb.zst");
    let got = bytes(&store, &key).await;
    assert_eq!(stored.bytes, got.len() as u64);
    let plain = zstd::decode_all(got.as_ref()).unwrap();
    assert_eq!(stored.uncompressed, plain.len() as u64);
    assert_eq!(plain, parts.concat());
    let merged = ExportTraceServiceRequest::decode(plain.as_slice()).unwrap();
    assert_eq!(merged.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>(), 5);
}

#[tokio::test]
async fn a_retry_writes_the_same_key_and_empty_batches_write_nothing() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpJson, ArchiveCompression::Gzip);
    let key = a.next_key(SignalKind::Logs, std::time::SystemTime::now());
    assert!(key.ends_with(".jsonl.gz"));
    assert_eq!(a.store_batch(SignalKind::Logs, &key, &[Bytes::new()], &[]).await.unwrap(), (None, Refused::default()));
    assert!(keys(&store).await.is_empty(), "no empty objects");
    let parts = [request(1, "x")];
    a.store_batch(SignalKind::Traces, &key, &parts, &[]).await.unwrap().0.unwrap();
    a.store_batch(SignalKind::Traces, &key, &parts, &[]).await.unwrap().0.unwrap();
    assert_eq!(keys(&store).await.len(), 1);
}

#[tokio::test]
async fn forwarded_header_values_are_the_objects_metadata() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpJson, ArchiveCompression::None);
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let tenant = [("x-scope-orgid".to_string(), "tenant-a".to_string())];
    a.store_batch(SignalKind::Traces, &key, &[request(1, "t")], &tenant).await.unwrap().0.unwrap();
    let got = store.get(&Path::from(key.as_str())).await.unwrap();
    let value = got.attributes.get(&object_store::Attribute::Metadata("x-scope-orgid".into())).unwrap();
    assert_eq!(value.as_ref(), "tenant-a");
    let text = String::from_utf8(got.bytes().await.unwrap().to_vec()).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with(r#"{"resourceSpans":"#), "{text}");
}

#[tokio::test]
async fn a_large_object_goes_up_in_parts_and_reads_back_whole() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpProto, ArchiveCompression::None);
    let mut parts = Vec::new();
    while parts.iter().map(Bytes::len).sum::<usize>() < 2 * PART_BYTES + 100 {
        parts.push(request(5_000, "part"));
    }
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let stored = a.store_batch(SignalKind::Traces, &key, &parts, &[]).await.unwrap().0.unwrap();
    let got = bytes(&store, &key).await;
    assert_eq!(got.as_ref(), parts.concat().as_slice());
    assert_eq!(stored.bytes, got.len() as u64);
}

/// A JSON batch archives the requests that decode and leaves out, counted, those that do not: their items are all
/// the batch's but those written. A batch of which none decodes writes no object.
#[allow(clippy::disallowed_methods)]
#[tokio::test]
async fn a_batch_archives_the_requests_that_decode_and_counts_the_items_left_out() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpJson, ArchiveCompression::Zstd);
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let bad = Bytes::from_static(&[0xff, 0xff]);
    let parts = [request(2, "good"), bad.clone(), request(3, "also")];
    let (stored, refused) = a.store_batch(SignalKind::Traces, &key, &parts, &[]).await.unwrap();
    assert!(stored.is_some());
    assert_eq!((refused.requests, refused.kept_items), (1, 5));
    assert!(refused.why.contains("does not decode"), "{}", refused.why);
    // The queue counted 9 items in the batch: the 4 of the request that does not decode are left out.
    assert_eq!(refused.rejected(9), 4);
    let text = String::from_utf8(zstd::decode_all(bytes(&store, &key).await.as_ref()).unwrap()).unwrap();
    assert_eq!(text.lines().count(), 2);

    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let (stored, refused) = a.store_batch(SignalKind::Traces, &key, &[bad], &[]).await.unwrap();
    assert_eq!((stored, refused.requests, refused.rejected(4)), (None, 1, 4));
    assert_eq!(keys(&store).await.len(), 1, "no object of nothing");
    assert_eq!(Refused::default().rejected(9), 0, "nothing left out, nothing rejected");
}

/// An object larger than a queue reader's memory share is written piece by piece: parts leave as they fill (a
/// repeated add of the same piece uploads nothing twice), nothing is visible before the completion, and the
/// object reads back as every piece in order.
#[tokio::test]
async fn an_object_written_in_pieces_reads_back_whole_and_appears_only_when_complete() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpProto, ArchiveCompression::None);
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let mut writer = ObjectWriter::new(&a, SignalKind::Traces, key.clone(), &[]);
    let mut all = Vec::new();
    let mut seq = 0;
    while all.len() < 2 * PART_BYTES + 100 {
        let piece = [request(3_000, "piece"), request(10, "small")];
        assert_eq!(writer.add(&a, seq, &piece).await.unwrap(), Refused::default());
        // A retry of the same piece (its answer lost) adds nothing.
        assert_eq!(writer.add(&a, seq, &piece).await.unwrap(), Refused::default());
        all.extend_from_slice(&piece.concat());
        seq += 1;
    }
    assert!(keys(&store).await.is_empty(), "no object before the completion");
    let stored = writer.complete(&a).await.unwrap().unwrap();
    let got = bytes(&store, &key).await;
    assert_eq!(got.len(), all.len());
    assert!(got.as_ref() == all.as_slice(), "the pieces in order");
    assert_eq!((stored.bytes, stored.uncompressed), (all.len() as u64, all.len() as u64));
    let merged = ExportTraceServiceRequest::decode(got.as_ref()).unwrap();
    assert_eq!(merged.resource_spans.len(), 2 * seq as usize, "one valid request holding every piece's");
}

/// A unit's requests that do not decode (JSON objects only) are left out and counted; the rest is written.
// The test's own object, of known size: no cap needed.
#[allow(clippy::disallowed_methods)]
#[tokio::test]
async fn a_piece_with_a_request_that_does_not_decode_keeps_the_others() {
    let store = Arc::new(InMemory::new());
    let a = archive(Arc::clone(&store), ArchiveFormat::OtlpJson, ArchiveCompression::Zstd);
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let mut writer = ObjectWriter::new(&a, SignalKind::Traces, key.clone(), &[]);
    let piece = [request(2, "good"), Bytes::from_static(&[0xff, 0xff]), request(1, "also")];
    let refused = writer.add(&a, 0, &piece).await.unwrap();
    assert_eq!((refused.requests, refused.kept_items), (1, 3), "one request left out, the others' items known");
    writer.complete(&a).await.unwrap().unwrap();
    let text = String::from_utf8(zstd::decode_all(bytes(&store, &key).await.as_ref()).unwrap()).unwrap();
    assert_eq!(text.lines().count(), 2);
}

/// What an open object holds against the memory limit is its compressor, whatever the object's size: its compressed
/// bytes wait in its spool file. Nothing before its first request, nothing once complete.
// The test's own objects, of known size: no cap needed.
#[allow(clippy::disallowed_methods)]
#[tokio::test]
async fn an_open_object_holds_its_compressor_against_the_limit_whatever_its_size() {
    for compression in [ArchiveCompression::Zstd, ArchiveCompression::Gzip, ArchiveCompression::None] {
        let store = Arc::new(InMemory::new());
        let budget = MemoryBudget::new(64 << 20);
        let a = archive_with(
            Arc::clone(&store),
            ArchiveFormat::OtlpProto,
            compression,
            memory(Arc::clone(&budget), 1 << 20),
        );
        let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
        let mut writer = ObjectWriter::new(&a, SignalKind::Traces, key.clone(), &[]);
        assert_eq!(budget.held(), 0, "nothing before the first request");
        let mut all = Vec::new();
        let mut seq = 0;
        while all.len() < 3 * PART_BYTES {
            let piece = [request(3_000, "piece")];
            writer.add(&a, seq, &piece).await.unwrap();
            assert_eq!(budget.held(), super::encode::compressor_bytes(compression), "{compression:?}");
            all.extend_from_slice(&piece.concat());
            seq += 1;
        }
        writer.complete(&a).await.unwrap().unwrap();
        assert_eq!(budget.held(), 0, "given back once complete");
        let got = bytes(&store, &key).await;
        let plain = match compression {
            ArchiveCompression::Zstd => zstd::decode_all(got.as_ref()).unwrap(),
            ArchiveCompression::Gzip => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(got.as_ref()), &mut out).unwrap();
                out
            }
            ArchiveCompression::None => got.to_vec(),
        };
        assert!(plain == all, "{compression:?}: the object reads back whole");
    }
}

/// With the memory limit full, an object waits to open (holding nothing) and opens once request data drains.
#[tokio::test(start_paused = true)]
async fn an_object_waits_for_memory_to_open_and_opens_once_it_drains() {
    let store = Arc::new(InMemory::new());
    let budget = MemoryBudget::new(4 << 20);
    let a = archive_with(
        Arc::clone(&store),
        ArchiveFormat::OtlpProto,
        ArchiveCompression::Zstd,
        memory(Arc::clone(&budget), 1 << 20),
    );
    let clients = budget.reserve(3 << 20).unwrap();
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let mut writer = ObjectWriter::new(&a, SignalKind::Traces, key.clone(), &[]);
    let piece = [request(10, "w")];
    {
        let add = writer.add(&a, 0, &piece);
        tokio::pin!(add);
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), &mut add).await.is_err(), "waits while full");
        assert_eq!(budget.held(), 3 << 20, "holding nothing meanwhile");
        drop(clients);
        add.await.unwrap();
    }
    writer.complete(&a).await.unwrap().unwrap();
    assert_eq!(keys(&store).await, [key]);
}

/// An attempt cancelled while its part waits for room under the copies cap (or while it goes up) is taken up again
/// by the next attempt at the same piece: from the part it cut, then the requests not yet written, none twice.
#[tokio::test(start_paused = true)]
async fn an_attempt_cancelled_part_way_goes_on_where_it_stopped() {
    let store = Arc::new(InMemory::new());
    let uploads = ExportBuffers::new(1 << 20);
    let m = ObjectMemory {
        budget: MemoryBudget::new(64 << 20),
        uploads: Arc::clone(&uploads),
        spool_dir: std::env::temp_dir(),
    };
    let a = archive_with(Arc::clone(&store), ArchiveFormat::OtlpProto, ArchiveCompression::None, m);
    let key = a.next_key(SignalKind::Traces, std::time::SystemTime::now());
    let mut writer = ObjectWriter::new(&a, SignalKind::Traces, key.clone(), &[]);
    let piece: Vec<Bytes> = (0..60).map(|i| request(5_000, &format!("r{i}"))).collect();
    assert!(piece.iter().map(Bytes::len).sum::<usize>() > 2 * PART_BYTES);
    let busy = uploads.hold(1 << 20).await;
    let attempt = tokio::time::timeout(std::time::Duration::from_secs(1), writer.add(&a, 0, &piece)).await;
    assert!(attempt.is_err(), "the first part waits for the cap");
    drop(busy);
    assert_eq!(writer.add(&a, 0, &piece).await.unwrap(), Refused::default());
    writer.complete(&a).await.unwrap().unwrap();
    let got = bytes(&store, &key).await;
    assert!(got.as_ref() == piece.concat().as_slice(), "every request once, in order");
}
