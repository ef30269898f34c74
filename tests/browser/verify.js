#!/usr/bin/env node
// The verdict: what each page made (driver.js's sent.json) against what the backend received (backend.py's
// record, read after the bridge has exited, so a late duplicate would be in it).
//
// A case from the allowed origin passes when the backend received exactly the spans the page made (same trace
// id, span id, parent and name; none missing, none twice), every export reported success, and each of its POSTs
// went through the browser API the case is meant to exercise (beacon, xhr or fetch) and was answered 200.
// A case from the denied origin passes when the page tried (at least one POST) and not one of its spans reached
// the backend. Spans of no known case fail the run too.
// Prints one line per case and, last, "N passed, M failed"; exits 1 on any failure.
// --extra NAME:1|0:WHY adds a check decided by run.sh (the bridge's exit on SIGTERM).
// Usage: node verify.js --sent sent.json --record backend.jsonl [--extra NAME:1|0:WHY ...]
'use strict';

const fs = require('fs');

function args() {
  const a = process.argv.slice(2);
  const get = (k) => {
    const i = a.indexOf(k);
    if (i < 0 || i + 1 >= a.length) throw new Error(`missing ${k}`);
    return a[i + 1];
  };
  const extras = [];
  a.forEach((v, i) => {
    if (v === '--extra' && i + 1 < a.length) extras.push(a[i + 1]);
  });
  return { sent: get('--sent'), record: get('--record'), extras };
}

// Chromium's resource type for each transport (sendBeacon shows as "ping").
const RESOURCE_TYPE = { beacon: 'ping', xhr: 'xhr', fetch: 'fetch' };
const key = (s) => `${s.trace_id}/${s.span_id}/${s.parent_span_id}/${s.name}`;
const short = (xs, n = 3) => (xs.length > n ? `${xs.slice(0, n).join(', ')} (+${xs.length - n} more)` : xs.join(', '));

function counts(spans) {
  const m = new Map();
  for (const s of spans) m.set(key(s), (m.get(key(s)) || 0) + 1);
  return m;
}

function checkAllowed(c, got) {
  const problems = [];
  const r = c.result;
  const made = counts(r.made);
  const recv = counts(got);
  const missing = [...made.keys()].filter((k) => !recv.has(k));
  const twice = [...recv.entries()].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  const foreign = [...recv.keys()].filter((k) => !made.has(k));
  const want = c.batches.reduce((n, children) => n + children + 1, 0);
  if (r.made.length !== want) problems.push(`the page made ${r.made.length} spans, not ${want}`);
  if (missing.length) {
    // The beacon exporter cannot see a CORS refusal: it reports success while the browser drops the POST.
    const blind = r.exports.length && r.exports.every((e) => e.ok) ? ' although the exporter reported success' : '';
    problems.push(`${missing.length} of ${r.made.length} spans never reached the backend${blind}: ${short(missing, 2)}`);
  }
  if (twice.length) problems.push(`delivered more than once: ${short(twice)}`);
  if (foreign.length) problems.push(`spans the page did not make: ${short(foreign)}`);
  if (r.exports.length !== c.batches.length) problems.push(`${r.exports.length} exports, not ${c.batches.length}`);
  const failed = r.exports.filter((e) => !e.ok);
  if (failed.length) problems.push(`exporter reported failure: ${short(failed.map((e) => e.error || '?'))}`);
  const wrongType = c.network.filter((n) => n.type !== RESOURCE_TYPE[c.expected_path]);
  if (wrongType.length) {
    problems.push(`sent via ${[...new Set(wrongType.map((n) => n.type))].join('/')}, not ${c.expected_path}`);
  }
  const notOk = c.network.filter((n) => n.status !== 200);
  if (notOk.length) problems.push(`POSTs not answered 200: ${short(notOk.map((n) => n.failure || n.status || n.state))}`);
  if (!c.network_settled) problems.push(`the browser did not report every POST done within the wait`);
  if (r.complaints.length) problems.push(`SDK said: ${short(r.complaints, 2)}`);
  return problems;
}

function checkDenied(c, got) {
  const problems = [];
  if (got.length) problems.push(`${got.length} spans reached the backend from an origin that is not allowed`);
  if (!c.network.length) problems.push('the page sent no POST at all, so the case proves nothing');
  const answered = c.network.filter((n) => n.status != null);
  if (answered.length) problems.push(`${answered.length} POSTs were answered (${short(answered.map((n) => n.status))}) instead of refused`);
  return problems;
}

function main() {
  const a = args();
  const sent = JSON.parse(fs.readFileSync(a.sent, 'utf8'));
  const byService = new Map();
  if (fs.existsSync(a.record)) {
    for (const line of fs.readFileSync(a.record, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line);
      for (const s of rec.spans || []) {
        if (!byService.has(s.service)) byService.set(s.service, []);
        byService.get(s.service).push(s);
      }
    }
  }
  let passed = 0;
  let failed = 0;
  const known = new Set();
  for (const c of sent.cases) {
    const service = `browser-${c.id}`;
    known.add(service);
    const got = byService.get(service) || [];
    let problems;
    if (c.error || !c.result) problems = [`the page did not run: ${c.error || 'no result'}`];
    else problems = c.allowed ? checkAllowed(c, got) : checkDenied(c, got);
    const what = `${c.id} (OpenTelemetry JS ${c.line}, ${c.encoding}, ${c.expected_path}, from ${c.origin})`;
    if (problems.length) {
      failed++;
      console.log(`FAIL ${what}: ${problems.join('; ')}`);
      for (const l of c.console.slice(0, 4)) console.log(`       console ${l.slice(0, 300)}`);
    } else {
      passed++;
      const detail = c.allowed ? `${got.length} spans delivered exactly once` : 'nothing delivered';
      console.log(`ok   ${what}: ${detail}`);
    }
  }
  const strangers = [...byService.keys()].filter((s) => !known.has(s));
  if (strangers.length) {
    failed++;
    console.log(`FAIL backend record: spans of unknown services ${short(strangers)}`);
  }
  for (const e of a.extras) {
    const [name, good, ...why] = e.split(':');
    if (good === '1') passed++;
    else failed++;
    console.log(`${good === '1' ? 'ok  ' : 'FAIL'} ${name}: ${why.join(':')}`);
  }
  if (!sent.cases.length) {
    failed++;
    console.log('FAIL no cases ran');
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
