// What a test page does, the same for every OpenTelemetry JS line (each lines/*/entry.js hands in its SDK).
//
// window.runCase(c) builds a tracer provider exactly as a web app wires one (resource, BatchSpanProcessor, the
// OTLP/HTTP exporter of c.encoding), makes c.batches.length traces, flushes after each (one export each), and
// returns what it made and what the exporter answered. The exporter is wrapped only to observe its result; a
// second span processor records every span that ended, so the test knows exactly which spans the page made.
//   c = { id, encoding: 'json' | 'proto', headers: bool, url, timeoutMillis, batches: [children per trace, ...] }
// headers: false leaves the exporter's `headers` option unset (OpenTelemetry JS 2.0 then sends with
// navigator.sendBeacon); true sets one custom header (2.0: XMLHttpRequest; later lines always use fetch).

export function install(sdk) {
  window.otelLine = sdk.line;
  window.runCase = (c) => runCase(sdk, c);
}

async function runCase(sdk, c) {
  const { api } = sdk;
  const complaints = [];
  const say = (level) => (...args) => complaints.push(`${level} ${args.map(show).join(' ')}`);
  api.diag.setLogger(
    { error: say('ERROR'), warn: say('WARN'), info: () => {}, debug: () => {}, verbose: () => {} },
    api.DiagLogLevel.WARN,
  );

  const config = { url: c.url, timeoutMillis: c.timeoutMillis };
  if (c.headers) config.headers = { 'x-browser-case': c.id };
  const inner = new sdk.exporters[c.encoding](config);
  const exports = [];
  const exporter = {
    export(spans, done) {
      inner.export(spans, (result) => {
        exports.push({
          items: spans.length,
          ok: result.code === sdk.ExportResultCode.SUCCESS,
          error: result.error ? show(result.error) : undefined,
        });
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
  };

  const made = [];
  const flushErrors = [];
  const recorder = {
    onStart() {},
    onEnd(span) {
      const ctx = span.spanContext();
      made.push({
        trace_id: ctx.traceId,
        span_id: ctx.spanId,
        parent_span_id: (span.parentSpanContext && span.parentSpanContext.spanId) || span.parentSpanId || '',
        name: span.name,
      });
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };

  const provider = sdk.newProvider({
    resource: sdk.resourceFromAttributes({ 'service.name': `browser-${c.id}` }),
    // The processor's own timer never fires within a case: each trace goes out with the flush that follows it.
    spanProcessors: [recorder, sdk.newBatchProcessor(exporter, { scheduledDelayMillis: 600000 })],
  });
  const tracer = provider.getTracer('otlp-bridge-browser-suite', '1.0.0');
  for (let b = 0; b < c.batches.length; b++) {
    const root = tracer.startSpan(`${c.id}/trace-${b}/root`, { attributes: { 'browser.case': c.id } });
    const parent = api.trace.setSpan(api.ROOT_CONTEXT, root);
    for (let i = 0; i < c.batches[b]; i++) {
      tracer.startSpan(`${c.id}/trace-${b}/child-${i}`, {}, parent).end();
    }
    root.end();
    // A refused export rejects the flush (the denied cases); the exporter's own answer is in `exports`.
    try {
      await provider.forceFlush();
    } catch (e) {
      flushErrors.push(show(e));
    }
  }
  return { line: sdk.line, made, exports, complaints, flush_errors: flushErrors };
}

function show(v) {
  if (Array.isArray(v)) return v.map(show).join('; ');
  if (v instanceof Error) return v.cause ? `${v.message} (${show(v.cause)})` : v.message;
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v);
  } catch (_) {
    return String(v);
  }
}
