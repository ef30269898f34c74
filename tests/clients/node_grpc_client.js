#!/usr/bin/env node
// The npm OTLP/gRPC trace exporter (@opentelemetry/exporter-trace-otlp-grpc, on @grpc/grpc-js) into the bridge's
// --grpc-listen, under BasicTracerProvider + BatchSpanProcessor as an application wires them: 200 spans plain and
// 100 gzip. Writes the span ids it ended and whether every export reported success; python_grpc.py compares them
// with what the backend received.
// Usage: node node_grpc_client.js --endpoint http://127.0.0.1:4317 --service NAME --out sent.json
'use strict';

const fs = require('fs');
const { ExportResultCode } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');

function arg(k) {
  const a = process.argv.slice(2);
  const i = a.indexOf(k);
  if (i < 0 || i + 1 >= a.length) throw new Error(`missing ${k}`);
  return a[i + 1];
}

async function main() {
  const endpoint = arg('--endpoint');
  const service = arg('--service');
  const sent = [];
  let exports_ = 0;
  let failed = 0;
  for (const [compression, n] of [['none', 200], ['gzip', 100]]) {
    const inner = new OTLPTraceExporter({ url: endpoint, compression, timeoutMillis: 15000 });
    const exporter = {
      export(batch, done) {
        inner.export(batch, (result) => {
          exports_ += 1;
          if (result.code !== ExportResultCode.SUCCESS) failed += 1;
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush(),
    };
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': service }),
      spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 50, scheduledDelayMillis: 100 })],
    });
    const tracer = provider.getTracer('suite.node.grpc');
    for (let i = 0; i < n; i++) {
      const span = tracer.startSpan(`grpc-${compression}-${i}`);
      sent.push(span.spanContext().spanId);
      span.end();
    }
    await provider.forceFlush();
    await provider.shutdown();
  }
  fs.writeFileSync(arg('--out'), JSON.stringify({ sent, exports: exports_, failed }));
  console.log(`node grpc exporter: ${sent.length} spans ended, ${exports_} exports, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
