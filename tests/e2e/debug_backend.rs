//! The `debug` backend prints each request as one OTLP/JSON line on stdout, even when requests share a batch.

use std::time::Duration;

use crate::common::process::BridgeProcess;
use crate::common::*;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_json_line_even_when_batched() {
    let mut bridge = BridgeProcess::start(&["--backend", "debug"]).await;
    let url = bridge.url("/v1/traces");
    let posts: Vec<_> = (0..20u64)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(
                async move { post(&url, "application/x-protobuf", spans(i * 10, 2).encode_to_vec()).await.status },
            )
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.unwrap(), 200);
    }
    // Exiting flushes stdout: every line is there once the process is gone.
    assert!(bridge.terminate(Duration::from_secs(20)).await.success());
    let text = bridge.stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "one line per request:\n{text}");
    for line in lines {
        let request: otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest =
            otlp_bridge::internals::json::decode(line.as_bytes()).unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 2);
    }
}
