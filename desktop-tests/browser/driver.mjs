#!/usr/bin/env node
// Drives headless Debian Chromium through the real Videoroom web UI (ui/dist, served by
// videoroom-server) for desktop-tests/tests/e2e_browser.rs. A small command loop: one JSON
// command per line on stdin, one JSON answer per line on stdout ({ok: true, ...} or
// {ok: false, error}); page console output and diagnostics go to stderr.
//
//   node driver.mjs [--chromium /usr/bin/chromium] [--fake-audio FILE.wav] [--chromium-arg ARG]...
//
// Commands ({"cmd": ..., "id": N}; the answer repeats "id"):
//   open      {tab, url}              a fresh browser (own profile directory) on url
//   type      {tab, testid, text}     replaces an input's text as a person types
//   click     {tab, testid}           clicks the first element with that data-testid
//   wait      {tab, css, timeoutMs}   until css matches
//   snapshot  {tab}                   what the page shows: view, tiles (+ their <video>), fields
//   probe     {tab, person}           window.__vrTest.probe(person)
//   stats     {tab}                   window.__vrTest.stats() (per received track)
//   close     {tab}                   closes the tab (as a person closing it)
//   quit                              closes everything and exits

import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

function parseArgs(argv) {
  const opts = { chromium: '/usr/bin/chromium', fakeAudio: null, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--chromium') opts.chromium = val();
    else if (a === '--fake-audio') opts.fakeAudio = val();
    else if (a === '--chromium-arg') opts.extra.push(val());
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...a) => process.stderr.write(`[driver] ${a.join(' ')}\n`);

// The flags of the scenario; the profile directory is Playwright's
// `launchPersistentContext` argument (it passes --user-data-dir itself).
function chromiumArgs() {
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required',
  ];
  // A known tone instead of Chromium's beeps, so the others can check what they hear.
  if (opts.fakeAudio) args.push(`--use-file-for-fake-audio-capture=${opts.fakeAudio}`);
  // The test's own (e.g. which certificate to accept).
  args.push(...opts.extra);
  return args;
}

/** tab name → {context, page, dir} */
const tabs = new Map();

function tab(name) {
  const t = tabs.get(name);
  if (!t) throw new Error(`no tab "${name}"`);
  return t;
}

const byTestId = (id) => `[data-testid="${id}"]`;

async function open({ tab: name, url }) {
  if (tabs.has(name)) throw new Error(`tab "${name}" is open already`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'videoroom-browser-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: opts.chromium,
    headless: true,
    args: chromiumArgs(),
    viewport: { width: 1280, height: 800 },
    timeout: 60000,
  });
  // The UI's test hooks (window.__vrTest), before any of its scripts run.
  await context.addInitScript(() => {
    try {
      window.localStorage.setItem('videoroom.testHooks', '1');
    } catch {
      // No storage: no hooks; the test says so.
    }
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => log(`[${name}] console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(`[${name}] pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log(`[${name}] request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  tabs.set(name, { context, page, dir });
  const response = await page.goto(url, { timeout: 30000 });
  return { status: response?.status() ?? null, url: page.url() };
}

async function type({ tab: name, testid, text }) {
  const el = tab(name).page.locator(byTestId(testid)).first();
  await el.fill('', { timeout: 10000 });
  await el.pressSequentially(text, { timeout: 10000 });
  return { value: await el.inputValue() };
}

async function click({ tab: name, testid }) {
  await tab(name).page.locator(byTestId(testid)).first().click({ timeout: 10000 });
  return {};
}

async function wait({ tab: name, css, timeoutMs }) {
  await tab(name).page.waitForSelector(css, { timeout: timeoutMs ?? 10000, state: 'attached' });
  return {};
}

async function snapshot({ tab: name }) {
  const { page } = tab(name);
  const shot = await page.evaluate(() => {
    const attr = (el, a) => el.getAttribute(a);
    const q = (id) => document.querySelector(`[data-testid="${id}"]`);
    const tiles = [...document.querySelectorAll('[data-testid="tile"]')].map((t) => {
      const v = t.querySelector('video');
      const quality = v && typeof v.getVideoPlaybackQuality === 'function' ? v.getVideoPlaybackQuality() : null;
      return {
        name: attr(t, 'data-name'),
        peer: attr(t, 'data-peer'),
        self: attr(t, 'data-self') === 'true',
        speaking: attr(t, 'data-speaking') === 'true',
        micMuted: attr(t, 'data-mic-muted') === 'true',
        cameraOff: attr(t, 'data-camera-off') === 'true',
        placeholder: t.querySelector('.placeholder') !== null,
        video: v
          ? {
              videoWidth: v.videoWidth,
              videoHeight: v.videoHeight,
              totalVideoFrames: quality ? quality.totalVideoFrames : null,
              paused: v.paused,
            }
          : null,
      };
    });
    const err = q('lobby-error');
    return {
      url: location.href,
      view: q('room') ? 'room' : q('lobby') ? 'lobby' : 'other',
      roomField: q('room-name')?.value ?? null,
      serverField: q('server-url') !== null,
      lobbyError: err ? { kind: attr(err, 'data-kind'), text: err.textContent } : null,
      banner: q('banner') ? attr(q('banner'), 'data-state') : null,
      mic: q('mic-toggle') ? attr(q('mic-toggle'), 'data-on') : null,
      camera: q('camera-toggle') ? attr(q('camera-toggle'), 'data-on') : null,
      tiles,
      hooks: typeof window.__vrTest === 'object',
    };
  });
  return { snapshot: shot };
}

async function hook({ tab: name }, fn, arg) {
  const { page } = tab(name);
  return page.evaluate(
    async ([fn, arg]) => {
      if (!window.__vrTest) throw new Error('window.__vrTest is missing (test hooks off?)');
      return fn === 'probe' ? window.__vrTest.probe(arg) : window.__vrTest.stats();
    },
    [fn, arg],
  );
}

async function probe(cmd) {
  return { probe: await hook(cmd, 'probe', cmd.person) };
}

async function stats(cmd) {
  return { stats: await hook(cmd, 'stats') };
}

async function close({ tab: name }) {
  const t = tab(name);
  tabs.delete(name);
  const started = Date.now();
  // As a person closing the tab: no beforeunload prompt, the page's sockets go with it.
  await t.page.close({ runBeforeUnload: false });
  const closedMs = Date.now() - started;
  await t.context.close().catch(() => {});
  await fs.rm(t.dir, { recursive: true, force: true }).catch(() => {});
  return { closedMs };
}

async function quit() {
  for (const name of [...tabs.keys()]) await close({ tab: name }).catch((e) => log(`closing ${name}: ${e}`));
  return {};
}

const COMMANDS = { open, type, click, wait, snapshot, probe, stats, close, quit };

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
const answer = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

lines.on('line', (line) => {
  queue = queue.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      answer({ ok: false, error: `not JSON: ${e.message}` });
      return;
    }
    const run = COMMANDS[cmd.cmd];
    if (!run) {
      answer({ id: cmd.id, ok: false, error: `unknown command ${cmd.cmd}` });
      return;
    }
    try {
      answer({ id: cmd.id, ok: true, ...(await run(cmd)) });
    } catch (e) {
      answer({ id: cmd.id, ok: false, error: String((e && e.message) || e) });
    }
    if (cmd.cmd === 'quit') process.exit(0);
  });
});

// stdin closed (the test ended or died): close the browsers, then go.
lines.on('close', () => {
  queue.then(quit).finally(() => process.exit(0));
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    quit().finally(() => process.exit(1));
  });
}
