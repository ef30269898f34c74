//! The ingest steps against a recording sink: what reaches the sink, what is counted under which transport, and
//! how a sink's refusal comes back.

use std::sync::Mutex;

use prost::Message;

use super::*;
use crate::sink::{SinkError, SinkFuture};

/// What the recording sink was given: signal, chunks, forwarded headers and the bytes reserved for them.
type Submitted = (SignalKind, Vec<(Bytes, u64)>, Vec<(String, String)>, usize);

/// A sink that keeps what it is given and answers with `answer` (a fake: the real sinks have their own tests).
struct Recording {
    submitted: Mutex<Vec<Submitted>>,
    answer: fn() -> Result<PartialSuccess, SinkError>,
}

impl Sink for Recording {
    fn submit(&self, s: Submission) -> SinkFuture<'_> {
        let held = s.reservation.bytes();
        self.submitted.lock().unwrap().push((s.kind, s.chunks, s.headers, held));
        let answer = (self.answer)();
        Box::pin(async move { answer })
    }
}

fn ingest(answer: fn() -> Result<PartialSuccess, SinkError>, max_export: usize) -> (Ingest, Arc<Recording>) {
    let sink = Arc::new(Recording { submitted: Mutex::new(Vec::new()), answer });
    let ingest =
        Ingest::new(Arc::clone(&sink) as Arc<dyn Sink>, MemoryBudget::new(1 << 20), Telemetry::new(), max_export);
    (ingest, sink)
}

fn logs_request(records: usize) -> Vec<u8> {
    use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
    use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let scope = ScopeLogs { log_records: vec![LogRecord::default(); records], ..Default::default() };
    let resource = ResourceLogs { scope_logs: vec![scope], ..Default::default() };
    ExportLogsServiceRequest { resource_logs: vec![resource; 2] }.encode_to_vec()
}

fn metric(text: &str, name: &str) -> Option<String> {
    text.lines().find(|l| l.starts_with(name)).map(str::to_string)
}

#[tokio::test]
async fn protobuf_bytes_reach_the_sink_as_they_came_and_are_counted_under_their_transport() {
    let (ingest, sink) = ingest(|| Ok(PartialSuccess::default()), 1 << 20);
    let body = Bytes::from(logs_request(3));
    let reservation = ingest.admit(body.len()).unwrap();
    let headers = vec![("x-scope-orgid".to_string(), "a".to_string())];
    let outcome = ingest
        .ingest(Transport::File, SignalKind::Logs, Format::Protobuf, body.clone(), headers.clone(), reservation)
        .await;
    assert_eq!(outcome.unwrap(), PartialSuccess::default());
    let submitted = sink.submitted.lock().unwrap();
    assert_eq!(submitted.len(), 1);
    let (kind, chunks, forwarded, _) = &submitted[0];
    assert_eq!((*kind, forwarded), (SignalKind::Logs, &headers));
    assert_eq!(chunks, &vec![(body, 6)], "byte for byte, with its item count");
    let text = ingest.telemetry.render();
    let accepted = metric(&text, "otelcol_receiver_accepted_log_records_total{transport=\"file\"").unwrap();
    assert!(accepted.contains("encoding=\"protobuf\"") && accepted.ends_with(" 6"), "{accepted}");
}

#[tokio::test]
async fn json_is_transcoded_and_large_requests_are_split_within_the_export_size() {
    let (ingest, sink) = ingest(|| Ok(PartialSuccess::default()), 16);
    let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"one"}}]}]},
        {"scopeLogs":[{"logRecords":[{"body":{"stringValue":"two"}}]}]}]}"#;
    let mut reservation = ingest.admit(json.len()).unwrap();
    let decoded = ingest.decode(SignalKind::Logs, Format::Json, Bytes::from_static(json), &mut reservation).unwrap();
    assert_eq!((decoded.items, decoded.format), (2, Format::Json));
    ingest.submit(Transport::Http, SignalKind::Logs, decoded, Vec::new(), reservation).await.unwrap();
    let submitted = sink.submitted.lock().unwrap();
    let chunks = &submitted[0].1;
    assert!(chunks.len() >= 2 && chunks.iter().all(|(c, _)| c.len() <= 16), "{chunks:?}");
    assert_eq!(chunks.iter().map(|(_, n)| n).sum::<u64>(), 2);
}

#[tokio::test]
async fn malformed_data_never_reaches_the_sink_and_names_the_field() {
    let (ingest, sink) = ingest(|| Ok(PartialSuccess::default()), 1 << 20);
    let mut reservation = ingest.admit(3).unwrap();
    // Field 1 (resource_logs) declared 5 bytes long with 1 present.
    let broken = Bytes::from_static(&[0x0a, 0x05, 0x00]);
    let error = ingest.decode(SignalKind::Logs, Format::Protobuf, broken, &mut reservation).unwrap_err();
    assert!(matches!(error, IngestError::Protobuf(_)), "{error:?}");
    assert!(error.to_string().contains("resource_logs"), "{error}");
    assert!(sink.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_sink_refusal_is_one_delivery_error_and_counted_as_refused() {
    let (ingest, _sink) = ingest(|| Err(SinkError::Queue(crate::queue::QueueError::Full { used: 9, max: 9 })), 1 << 20);
    let body = Bytes::from(logs_request(2));
    let reservation = ingest.admit(body.len()).unwrap();
    let error = ingest
        .ingest(Transport::Grpc, SignalKind::Logs, Format::Protobuf, body, Vec::new(), reservation)
        .await
        .unwrap_err();
    let IngestError::Delivery(delivery) = error else { panic!("{error:?}") };
    assert_eq!(delivery.code(), tonic::Code::Unavailable);
    assert!(matches!(delivery.retry(), Retry::After(_)));
    let text = ingest.telemetry.render();
    let refused = metric(&text, "otelcol_receiver_refused_log_records_total{transport=\"grpc\"").unwrap();
    assert!(refused.ends_with(" 4"), "{refused}");
}

#[tokio::test]
async fn an_empty_request_succeeds_without_reaching_the_sink() {
    let (ingest, sink) = ingest(|| Ok(PartialSuccess::default()), 1 << 20);
    let reservation = ingest.admit(0).unwrap();
    let outcome =
        ingest.ingest(Transport::Grpc, SignalKind::Traces, Format::Protobuf, Bytes::new(), Vec::new(), reservation);
    assert_eq!(outcome.await.unwrap(), PartialSuccess::default());
    assert!(sink.submitted.lock().unwrap().is_empty());
}

#[test]
fn admission_refuses_what_does_not_fit_before_anything_is_buffered() {
    let (ingest, _sink) = ingest(|| Ok(PartialSuccess::default()), 1 << 20);
    let _held = ingest.admit(1 << 20).unwrap();
    let _more = ingest.budget().reserve((1 << 20) - crate::limit::UPFRONT_RESERVATION).unwrap();
    assert!(matches!(ingest.admit(1), Err(MemoryError::Exhausted { .. })));
    assert!(matches!(ingest.admit((1 << 20) + 1), Err(MemoryError::TooLarge { .. })));
}
