#!/usr/bin/env node
// Chromium interop driver: opens N Debian Chromium pages (page.html) that join one room of a running
// videoroom-server and waits until every page decodes every other page's video and receives its
// audio. Prints exactly one JSON line on stdout: {ok, reason?, pages: [state...], elapsedMs}.
// Exit code 0 when ok, 1 otherwise (2 for bad usage).
//
//   node run.mjs --server ws://127.0.0.1:PORT/ws --room NAME --pages 2 --expect-remote-peers 1 \
//                [--min-frames 30] [--timeout-ms 60000] [--screenshot PATH] [--chromium PATH] [--verbose]
//                [--simulcast] [--min-layers N] [--hold-ms N] [--stdin-ends-hold]
//
// --simulcast: the pages capture 1280x720 and send their camera as simulcast (rids q, h, f at 1/4,
//   1/2 and full size, lowest first; page.html's SIMULCAST_ENCODINGS).
// --min-layers N: a page is done only once N of its outgoing video layers (outbound-rtp reports)
//   have encoded frames.
// --hold-ms N: once every page is done, print {"ready": true, pages, elapsedMs} as a line of its own,
//   keep the pages (and their media) going for N ms more, then print the final line as usual (its
//   pages are the states at the end of the hold). The hold does not count against --timeout-ms.
// --stdin-ends-hold: the hold also ends when standard input closes (give it a pipe: /dev/null
//   closes at once).

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];
const POLL_INTERVAL_MS = 250;
const EVALUATE_TIMEOUT_MS = 5000;

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node run.mjs --server ws://HOST:PORT/ws --room NAME --pages N ` +
    `--expect-remote-peers N [--min-frames 30] [--timeout-ms 60000] [--screenshot PATH] ` +
    `[--chromium /usr/bin/chromium] [--verbose] [--simulcast] [--min-layers N] [--hold-ms N] ` +
    `[--stdin-ends-hold]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    server: null, room: null, pages: 2, expectRemotePeers: null, minFrames: 30,
    timeoutMs: 60000, screenshot: null, chromium: '/usr/bin/chromium', verbose: false,
    simulcast: false, minLayers: 0, holdMs: 0, stdinEndsHold: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    const int = () => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 0) usage(`${a} needs a non-negative integer`);
      return v;
    };
    switch (a) {
      case '--server': opts.server = val(); break;
      case '--room': opts.room = val(); break;
      case '--pages': opts.pages = int(); break;
      case '--expect-remote-peers': opts.expectRemotePeers = int(); break;
      case '--min-frames': opts.minFrames = int(); break;
      case '--timeout-ms': opts.timeoutMs = int(); break;
      case '--screenshot': opts.screenshot = val(); break;
      case '--chromium': opts.chromium = val(); break;
      case '--verbose': opts.verbose = true; break;
      case '--simulcast': opts.simulcast = true; break;
      case '--min-layers': opts.minLayers = int(); break;
      case '--hold-ms': opts.holdMs = int(); break;
      case '--stdin-ends-hold': opts.stdinEndsHold = true; break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!opts.server) usage('--server is required');
  if (!opts.room) usage('--room is required');
  if (opts.pages < 1) usage('--pages must be at least 1');
  if (opts.expectRemotePeers === null) opts.expectRemotePeers = opts.pages - 1;
  return opts;
}

const log = (opts, ...a) => { if (opts.verbose) process.stderr.write(a.join(' ') + '\n'); };

// Serve page.html (only) on 127.0.0.1:0 so the pages have a secure-context http origin.
async function servePage() {
  const html = await fs.readFile(path.join(HERE, 'page.html'));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/' || url.pathname === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

// Why a page is not done yet, or null when it is.
function pageShortfall(state, opts) {
  if (!state) return 'no state yet';
  if (!state.joined) return 'not joined';
  const peers = state.remotePeers || [];
  if (peers.length < opts.expectRemotePeers) {
    return `${peers.length}/${opts.expectRemotePeers} remote peers`;
  }
  for (const peer of peers) {
    const mine = (state.stats || []).filter((s) => s.peerId === peer);
    const video = mine.filter((s) => s.kind === 'video');
    const audio = mine.filter((s) => s.kind === 'audio');
    if (!video.some((s) => s.framesDecoded > opts.minFrames)) {
      const best = Math.max(0, ...video.map((s) => s.framesDecoded));
      return `peer ${peer}: video framesDecoded ${best} (need > ${opts.minFrames})`;
    }
    if (!audio.some((s) => s.packetsReceived > 0)) return `peer ${peer}: no audio packets`;
  }
  const layers = (state.outbound || []).filter((o) => o.framesEncoded > 0);
  if (layers.length < opts.minLayers) {
    const sizes = (state.outbound || []).map((o) =>
      `${o.rid}:${o.frameWidth}x${o.frameHeight}/${o.framesEncoded}`).join(' ');
    return `${layers.length}/${opts.minLayers} video layers encoding (${sizes})`;
  }
  return null;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const contexts = [];
  const tmpDirs = [];
  let httpServer = null;
  let states = [];
  let result = null;

  const cleanup = async () => {
    await Promise.allSettled(contexts.map((c) => c.close()));
    contexts.length = 0;
    if (httpServer) {
      httpServer.closeAllConnections?.();
      await new Promise((resolve) => httpServer.close(() => resolve()));
      httpServer = null;
    }
    await Promise.allSettled(tmpDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
    tmpDirs.length = 0;
  };
  let interrupted = false;
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    cleanup().finally(() => {
      process.stdout.write(JSON.stringify({ ok: false, reason: `interrupted by ${sig}`, pages: states,
        elapsedMs: Date.now() - started }) + '\n');
      process.exit(1);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    httpServer = await servePage();
    const { port } = httpServer.address();
    log(opts, `serving page.html on http://127.0.0.1:${port}/`);

    const pages = [];
    for (let i = 1; i <= opts.pages; i++) {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'videoroom-chromium-'));
      tmpDirs.push(dir);
      const ctx = await chromium.launchPersistentContext(dir, {
        executablePath: opts.chromium,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 800, height: 900 },
        timeout: remaining(),
      });
      contexts.push(ctx);
      const name = `chrome-${i}`;
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.on('console', (m) => log(opts, `[${name}] console.${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => log(opts, `[${name}] pageerror: ${e.message}`));
      const query = { server: opts.server, room: opts.room, name };
      if (opts.simulcast) query.simulcast = '1';
      const url = `http://127.0.0.1:${port}/page.html?` + new URLSearchParams(query);
      await page.goto(url, { timeout: remaining() });
      pages.push({ name, page });
    }

    // Each evaluate is bounded on its own (so the last poll at the deadline still reports).
    const poll = () => Promise.all(pages.map(({ page }) => {
      let timer;
      return Promise.race([
        page.evaluate(() => window.videoroomState()),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('videoroomState timed out')), EVALUATE_TIMEOUT_MS);
        }),
      ]).catch((e) => ({ evaluateError: String(e && e.message || e) }))
        .finally(() => clearTimeout(timer));
    }));
    let shortfalls = [];
    for (;;) {
      const polled = await poll();
      // Keep a page's last good state when one poll fails, with the failure attached.
      states = polled.map((s, i) => (s.evaluateError && states[i] && !states[i].evaluateError
        ? { ...states[i], evaluateError: s.evaluateError } : s));
      shortfalls = states.map((s, i) => {
        const why = polled[i].evaluateError ? `evaluate failed: ${polled[i].evaluateError}`
          : pageShortfall(s, opts);
        return why && `${pages[i].name}: ${why}`;
      }).filter(Boolean);
      log(opts, `${Date.now() - started} ms: ${shortfalls.length ? shortfalls.join('; ') : 'all done'}`);
      if (!shortfalls.length) {
        result = { ok: true };
        break;
      }
      if (Date.now() >= deadline) {
        result = { ok: false, reason: `timeout after ${opts.timeoutMs} ms: ${shortfalls.join('; ')}` };
        break;
      }
      await new Promise((r) => setTimeout(r, Math.min(POLL_INTERVAL_MS, remaining())));
    }

    if (result.ok && opts.holdMs > 0) {
      process.stdout.write(JSON.stringify({ ready: true, pages: states,
        elapsedMs: Date.now() - started }) + '\n');
      const holdEnd = Date.now() + opts.holdMs;
      let stdinClosed = false;
      if (opts.stdinEndsHold) {
        process.stdin.on('data', () => {});
        process.stdin.on('end', () => { stdinClosed = true; });
        process.stdin.on('close', () => { stdinClosed = true; });
        process.stdin.on('error', () => { stdinClosed = true; });
      }
      while (!stdinClosed && Date.now() < holdEnd) {
        await new Promise((r) => setTimeout(r, Math.min(POLL_INTERVAL_MS, holdEnd - Date.now())));
      }
      log(opts, `hold ended (${stdinClosed ? 'stdin closed' : 'hold-ms elapsed'})`);
      const polled = await poll();
      states = polled.map((s, i) => (s.evaluateError ? { ...states[i], evaluateError: s.evaluateError } : s));
      if (opts.stdinEndsHold) process.stdin.destroy();
    }

    if (opts.screenshot) {
      // One file per page: PATH as given for a single page, else PATH with -chrome-N before the extension.
      const ext = path.extname(opts.screenshot) || '.png';
      const base = opts.screenshot.slice(0, opts.screenshot.length - path.extname(opts.screenshot).length);
      for (const { name, page } of pages) {
        const file = pages.length === 1 ? opts.screenshot : `${base}-${name}${ext}`;
        try {
          await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
        } catch (e) {
          log(opts, `screenshot ${file} failed: ${e.message}`);
        }
      }
    }
  } catch (e) {
    result = { ok: false, reason: `driver error: ${e && e.stack || e}` };
  } finally {
    await cleanup();
  }
  if (interrupted) return;
  process.stdout.write(JSON.stringify({ ...result, pages: states, elapsedMs: Date.now() - started }) + '\n');
  process.exitCode = result.ok ? 0 : 1;
}

main();
