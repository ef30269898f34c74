#!/usr/bin/env node
// The npm OTLP/HTTP JSON trace exporter, exporting through the bridge.
//
// @opentelemetry/exporter-trace-otlp-http (JSON) under @opentelemetry/sdk-trace-base's
// BasicTracerProvider + BatchSpanProcessor, exactly as an application wires them. The
// exporter is wrapped only to *observe* what it was handed and what it answered.
//   phase "plain": 20 traces x 10 spans, uncompressed JSON
//   phase "gzip" : 10 traces x 10 spans, gzip JSON
// Usage: node node_client.js --endpoint http://127.0.0.1:4318 --out sent.json
'use strict';

const fs = require('fs');
const { diag, DiagLogLevel, context, trace } = require('@opentelemetry/api');
const { ExportResultCode } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

const SERVICE = 'otlp-bridge-suite-node';

function args() {
  const a = process.argv.slice(2);
  const get = (k) => {
    const i = a.indexOf(k);
    if (i < 0 || i + 1 >= a.length) throw new Error(`missing ${k}`);
    return a[i + 1];
  };
  return { endpoint: get('--endpoint').replace(/\/+$/, ''), out: get('--out') };
}

// Whatever the SDK says at warn/error, plus its retry notices, is kept for the report.
const complaints = [];
const keep = (level) => (msg, ...rest) => {
  const line = `${level} ${msg} ${rest.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join(' ')}`.trim();
  // 'Scheduling export retry' (verbose) is how a retried export shows; 'Export succeeded after 0 retry attempts' is not one.
  if (level === 'WARN' || level === 'ERROR' || /Scheduling export retry|not retrying|failed/i.test(line)) {
    complaints.push(line);
  }
  if (level === 'WARN' || level === 'ERROR') process.stderr.write(`[otel ${line}]\n`);
};
diag.setLogger(
  { error: keep('ERROR'), warn: keep('WARN'), info: keep('INFO'), debug: () => {}, verbose: keep('VERBOSE') },
  DiagLogLevel.VERBOSE,
);

const spans = [];
const exports_ = [];

function recording(inner) {
  return {
    export(batch, done) {
      const t = process.hrtime.bigint();
      inner.export(batch, (result) => {
        const ok = result.code === ExportResultCode.SUCCESS;
        exports_.push({
          signal: 'traces',
          items: batch.length,
          ok,
          error: result.error ? String(result.error.message || result.error) : undefined,
          seconds: Number(process.hrtime.bigint() - t) / 1e9,
        });
        for (const s of batch) {
          const sc = s.spanContext();
          spans.push({
            service: s.resource.attributes['service.name'],
            scope: s.instrumentationScope.name,
            trace_id: sc.traceId,
            span_id: sc.spanId,
            parent_span_id: s.parentSpanContext ? s.parentSpanContext.spanId : '',
            name: s.name,
            kind: s.kind + 1, // API enum is 0-based; OTLP's SPAN_KIND_INTERNAL is 1
            attributes: { ...s.attributes },
            ok,
          });
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
  };
}

async function phase(endpoint, name, traces, compression) {
  const exporter = new OTLPTraceExporter({
    url: `${endpoint}/v1/traces`,
    timeoutMillis: 15000,
    ...(compression ? { compression } : {}),
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': SERVICE, 'suite.client': 'node' }),
    spanProcessors: [
      new BatchSpanProcessor(recording(exporter), {
        maxQueueSize: 4096,
        maxExportBatchSize: 64,
        scheduledDelayMillis: 200,
      }),
    ],
  });
  const tracer = provider.getTracer('suite.node.traces', '1.0.0');
  let seq = 0;
  for (let t = 0; t < traces; t++) {
    const root = tracer.startSpan(`${name}-root-${t}`, { attributes: { 'suite.phase': name, 'suite.seq': seq++ } });
    const ctx = trace.setSpan(context.active(), root);
    for (let c = 0; c < 9; c++) {
      const child = tracer.startSpan(
        `${name}-child-${t}-${c}`,
        {
          attributes: {
            'suite.phase': name,
            'suite.seq': seq++,
            'suite.ratio': c / 8,
            'suite.even': c % 2 === 0,
            'suite.tags': ['a', `t${t}`, 'ünïcødé ✓'],
          },
        },
        ctx,
      );
      child.end();
    }
    root.end();
  }
  // A failed export rejects forceFlush; it is already recorded, and the record must still be written.
  let flushed = true;
  try {
    await provider.forceFlush();
  } catch (e) {
    flushed = false;
    complaints.push(`forceFlush rejected: ${e && e.message ? e.message : e}`);
  }
  try {
    await provider.shutdown();
  } catch (e) {
    flushed = false;
    complaints.push(`shutdown rejected: ${e && e.message ? e.message : e}`);
  }
  return flushed;
}

async function main() {
  const { endpoint, out } = args();
  const started = Date.now();
  const flushed = {
    traces_plain: await phase(endpoint, 'plain', 20, undefined),
    traces_gzip: await phase(endpoint, 'gzip', 10, 'gzip'),
  };
  const failed = exports_.filter((e) => !e.ok);
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        client: 'node',
        service: SERVICE,
        flushed,
        spans,
        logs: [],
        expected_points: [],
        exports: exports_,
        sdk_complaints: complaints,
        seconds: (Date.now() - started) / 1000,
      },
      null,
      1,
    ),
  );
  console.log(
    `node client: ${spans.length} spans in ${exports_.length} exports; ${failed.length} failed exports; ` +
      `${complaints.length} SDK warnings`,
  );
  process.exitCode = failed.length === 0 && Object.values(flushed).every(Boolean) ? 0 : 1;
}

main().catch((e) => {
  console.error(`node client: ${e && e.stack ? e.stack : e}`);
  process.exitCode = 1;
});
