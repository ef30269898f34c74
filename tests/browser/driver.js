#!/usr/bin/env node
// Drives headless Chromium through every browser case and writes what each page made and what the network did.
//
// 1. bundles lines/<line>/entry.js + page.js with esbuild (in memory, one bundle per OpenTelemetry JS line);
// 2. serves the pages from two loopback origins: --allowed-origin (listed in the bridge's --cors-allowed-origins)
//    and --denied-origin (not listed);
// 3. launches Debian's Chromium through playwright-core (never a downloaded browser) with a fresh profile and the
//    flags a closed network needs, opens one fresh page per case and runs window.runCase in it;
// 4. waits until every POST the page sent to the bridge has finished or failed (browser network events, bounded),
//    so that once this exits, everything the bridge accepted is already in the backend's record.
// Cases: every line x encoding (json, proto) x headers (unset, set), once from each origin. The allowed ones run
// one after another; the denied ones together, as each waits out its exporter's short timeout.
// Usage: node driver.js --bridge http://127.0.0.2:P --allowed-origin http://127.0.0.1:A
//                       --denied-origin http://127.0.0.3:D --profile DIR --out sent.json [--lines 2.0,2.12,3]
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { createRequire } = require('module');
const esbuild = require('esbuild');
const { chromium } = require('playwright-core');

const HERE = __dirname;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Headless on a closed network: no sandbox (root), no GPU, no QUIC, and none of the background fetches
// (component updates, sync, safe browsing lists) that would otherwise hammer blocked hosts.
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-proxy-server',
];
const ALLOWED_TIMEOUT_MS = 10000; // the exporters' default
const DENIED_TIMEOUT_MS = 2500; // a refused fetch is retried until this; keeps the denied cases short
const NETWORK_WAIT_MS = 15000;

function args() {
  const a = process.argv.slice(2);
  const get = (k, dflt) => {
    const i = a.indexOf(k);
    if (i < 0 || i + 1 >= a.length) {
      if (dflt !== undefined) return dflt;
      throw new Error(`missing ${k}`);
    }
    return a[i + 1];
  };
  return {
    bridge: get('--bridge').replace(/\/+$/, ''),
    allowed: get('--allowed-origin').replace(/\/+$/, ''),
    denied: get('--denied-origin').replace(/\/+$/, ''),
    profile: get('--profile'),
    out: get('--out'),
    lines: get('--lines', '2.0,2.12,3').split(','),
  };
}

const log = (msg) => process.stdout.write(`${msg}\n`);

// The version npm installed for `name` as the bundle of `line` resolves it.
function installedVersion(line, name) {
  const req = createRequire(path.join(HERE, 'lines', `otel-${line}`, 'package.json'));
  let dir = path.dirname(req.resolve(name));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      const p = JSON.parse(fs.readFileSync(pj, 'utf8'));
      if (p.name === name) return p.version;
    }
    const up = path.dirname(dir);
    if (up === dir) return '?';
    dir = up;
  }
}

async function bundle(line) {
  const r = await esbuild.build({
    entryPoints: [path.join(HERE, 'lines', `otel-${line}`, 'entry.js')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    minify: false,
    logLevel: 'silent',
  });
  return r.outputFiles[0].text;
}

function serve(origin, bundles) {
  const u = new URL(origin);
  const server = http.createServer((req, res) => {
    const m = /^\/otel-([0-9.]+)\.(html|js)$/.exec(req.url);
    if (!m || !bundles[m[1]]) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (m[2] === 'js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' }).end(bundles[m[1]]);
    } else {
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(`<!doctype html><html><head><link rel="icon" href="data:,"><title>otel ${m[1]}</title>` +
          `<script src="/otel-${m[1]}.js"></script></head><body>OpenTelemetry JS ${m[1]}</body></html>\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(u.port), u.hostname, () => resolve(server));
  });
}

// Which browser API carries the export, from the exporter source of each line (otlp-exporter-base):
// 0.200.x uses sendBeacon unless `headers` is set, then XMLHttpRequest; later lines always use fetch (keepalive).
function expectedPath(line, headers) {
  if (line === '2.0') return headers ? 'xhr' : 'beacon';
  return 'fetch';
}

async function runCase(context, c) {
  const page = await context.newPage();
  const network = [];
  const byRequest = new Map();
  const consoleLines = [];
  let wake = () => {};
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (r.method() !== 'POST' || !r.url().startsWith(c.url)) return;
    const rec = { type: r.resourceType(), state: 'pending' };
    byRequest.set(r, rec);
    network.push(rec);
    wake();
  });
  // The status is taken when the response arrives: an exporter may cancel reading the body afterwards, and the
  // browser then reports the request failed (net::ERR_ABORTED) although the bridge answered it.
  page.on('response', (resp) => {
    const rec = byRequest.get(resp.request());
    if (rec) rec.status = resp.status();
  });
  page.on('requestfinished', (r) => {
    const rec = byRequest.get(r);
    if (!rec) return;
    rec.state = 'finished';
    wake();
  });
  page.on('requestfailed', (r) => {
    const rec = byRequest.get(r);
    if (!rec) return;
    rec.state = 'failed';
    rec.failure = (r.failure() || {}).errorText;
    wake();
  });

  const record = { ...c, result: null, network, console: consoleLines };
  try {
    await page.goto(`${c.origin}/otel-${c.line}.html`, { waitUntil: 'load', timeout: 20000 });
    record.result = await page.evaluate((cc) => window.runCase(cc), {
      id: c.id,
      encoding: c.encoding,
      headers: c.headers,
      url: c.url,
      timeoutMillis: c.timeoutMillis,
      batches: c.batches,
    });
    // Every export is at least one POST; a beacon's goes out after sendBeacon has returned, so wait for the
    // browser to report each one done (answered, or refused by CORS) before the verdict reads the backend.
    const wanted = record.result.exports.length;
    const settled = () => network.length >= wanted && network.every((n) => n.state !== 'pending');
    if (!settled()) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, NETWORK_WAIT_MS);
        wake = () => {
          if (settled()) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
    }
    record.network_settled = settled();
  } catch (e) {
    record.error = String(e && e.message ? e.message : e);
  } finally {
    await page.close().catch(() => {});
  }
  return record;
}

function summary(r) {
  if (r.error) return `ran ${r.id}: ERROR ${r.error}`;
  const net = r.network.map((n) => `${n.type} ${n.status || '-'}${n.state === 'failed' ? ` ${n.failure}` : ''}`);
  const exp = r.result.exports.map((e) => (e.ok ? 'ok' : `failed (${e.error})`));
  return `ran ${r.id}: made ${r.result.made.length} spans; exports: ${exp.join(', ')}; POSTs: ${net.join(', ')}`;
}

async function main() {
  const a = args();
  const bundles = {};
  const versions = {};
  for (const line of a.lines) {
    bundles[line] = await bundle(line);
    versions[line] = Object.fromEntries(
      [
        '@opentelemetry/api',
        line === '3' ? '@opentelemetry/sdk-trace' : '@opentelemetry/sdk-trace-web',
        '@opentelemetry/exporter-trace-otlp-http',
        '@opentelemetry/exporter-trace-otlp-proto',
      ].map((n) => [n, installedVersion(line, n)]),
    );
    log(`bundled OpenTelemetry JS ${line}: ${JSON.stringify(versions[line])} (${bundles[line].length} bytes)`);
  }
  const servers = [await serve(a.allowed, bundles), await serve(a.denied, bundles)];

  const context = await chromium.launchPersistentContext(a.profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  const browserVersion = context.browser() ? context.browser().version() : '?';
  log(`chromium ${browserVersion} (${CHROMIUM})`);

  const cases = [];
  for (const allowed of [true, false]) {
    for (const line of a.lines) {
      for (const encoding of ['json', 'proto']) {
        for (const headers of [false, true]) {
          const via = expectedPath(line, headers);
          const id = `${allowed ? 'allowed' : 'denied'}-${line}-${encoding}-${headers ? 'headers' : 'noheaders'}`;
          cases.push({
            id,
            line,
            encoding,
            headers,
            allowed,
            expected_path: via,
            origin: allowed ? a.allowed : a.denied,
            url: `${a.bridge}/v1/traces`,
            timeoutMillis: allowed ? ALLOWED_TIMEOUT_MS : DENIED_TIMEOUT_MS,
            batches: [3, 1], // two traces (root + 3 children, root + 1 child), one export each
          });
        }
      }
    }
  }

  const results = [];
  for (const c of cases.filter((x) => x.allowed)) {
    const r = await runCase(context, c);
    log(summary(r));
    results.push(r);
  }
  const denied = await Promise.all(cases.filter((x) => !x.allowed).map((c) => runCase(context, c)));
  for (const r of denied) {
    log(summary(r));
    results.push(r);
  }

  await context.close();
  for (const s of servers) s.close();
  fs.writeFileSync(a.out, JSON.stringify({ chromium: browserVersion, versions, cases: results }, null, 1));
}

main().catch((e) => {
  process.stderr.write(`driver: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
