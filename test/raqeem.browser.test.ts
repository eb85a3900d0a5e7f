/**
 * Issue 15's "Done when", in headless Chromium: a small page of its own on another loopback origin does
 * what Raqeem's device simulator and mentor dashboard do, with fetch — registers a device, posts metrics,
 * alerts and a screenshot (a real PNG) to the devices host; loads the mentor's device list (with the read
 * token, as a protected dashboard would), shows the screenshot with an <img> from the record's url and
 * checks it decodes; creates a command with POST /devices/commands, then, acting as the device, polls for
 * it and completes it, and sees the mentor report it completed. The same page against a devices host
 * without CORS_ORIGINS fails the preflight. Both hosts are real CLI processes (test/helpers/e2e.ts).
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { solidPng } from './helpers/png.js';
import { killAll, startHost } from './helpers/processes.js';
import type { HostProcess } from './helpers/processes.js';

/** What the page's script defines: `simulator.*` and `dashboard.*`, each taking strings. */
type PageGlobals = Record<string, Record<string, (...args: string[]) => Promise<unknown>>>;

/** Run one of the page's functions in the page (the callback is serialised: it may use only its argument). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the page answers arbitrary JSON
function call(tab: Page, app: 'simulator' | 'dashboard', fn: string, ...args: string[]): Promise<any> {
  return tab.evaluate(({ app, fn, args }) => (globalThis as unknown as PageGlobals)[app]![fn]!(...args), { app, fn, args });
}

const READ_TOKEN = 'dashboard-read-token-for-the-browser-test';
const PNG = solidPng(7, 5, [30, 160, 90]);

/**
 * The page's own code: plain fetch calls as the simulator and the dashboard make them. Each step runs
 * through `page.evaluate`, so a failure names the step; waits for forwarding poll inside the page.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>raqeem browser apps</title></head>
<body><div id="shots"></div>
<script>
const json = async (res) => {
  const text = await res.text();
  if (!res.ok) throw new Error(res.status + ' ' + text);
  return text ? JSON.parse(text) : null;
};
const post = (url, body, headers = {}) =>
  fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) }).then(json);
async function until(fn, what) {
  for (let i = 0; i < 400; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('gave up waiting for ' + what);
}
window.simulator = {
  register: (api, deviceid) => post(api + '/devices/register', { deviceid, device_name: 'Browser simulator', os: 'web' }),
  metrics: (api, deviceid) => post(api + '/devices/' + deviceid + '/metrics', { cpu_usage: 37.5, memory_used: 1024 }),
  alerts: (api, deviceid) => post(api + '/devices/' + deviceid + '/alerts', [{ level: 'warning', alert_type: 'cpu_high', message: 'CPU high', value: 91, threshold: 90 }]),
  async screenshot(api, deviceid, base64) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'image/png' }), 'screen.png');
    form.append('resolution', '7x5');
    return fetch(api + '/devices/' + deviceid + '/screenshots', { method: 'POST', body: form }).then(json);
  },
  async completeNextCommand(api, deviceid) {
    const [cmd] = await until(async () => {
      const pending = await fetch(api + '/devices/' + deviceid + '/commands/pending').then(json);
      return pending.length > 0 ? pending : null;
    }, 'the command to reach the devices host');
    await post(api + '/devices/commands/' + cmd.commandid + '/result', { status: 'completed', result: 'uptime 3 days', exit_code: 0 });
    return cmd;
  },
};
window.dashboard = {
  async devices(mentor, token) {
    return fetch(mentor + '/devices', { headers: { Authorization: 'Bearer ' + token } }).then(json);
  },
  async showScreenshot(mentor, token, deviceid) {
    const shots = await until(async () => {
      const list = await fetch(mentor + '/devices/' + deviceid + '/screenshots', { headers: { Authorization: 'Bearer ' + token } }).then(json);
      return list.length > 0 ? list : null;
    }, 'the screenshot to reach the mentor');
    const img = document.createElement('img');
    const loaded = new Promise((resolve, reject) => { img.onload = resolve; img.onerror = () => reject(new Error('the image did not load')); });
    img.src = shots[0].screenshot_url || shots[0].url;
    document.getElementById('shots').append(img);
    await loaded;
    await img.decode();
    return { url: shots[0].url, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight };
  },
  sendCommand: (mentor, deviceid, command_text) => post(mentor + '/devices/commands', { deviceid, command_text }),
  async commandStatus(mentor, token, deviceid, commandid, status) {
    return until(async () => {
      const list = await fetch(mentor + '/devices/' + deviceid + '/commands', { headers: { Authorization: 'Bearer ' + token } }).then(json);
      const c = list.find((x) => x.commandid === commandid);
      return c && c.status === status ? c : null;
    }, 'the command to be ' + status + ' at the mentor');
  },
};
</script></body></html>`;

/** The page's own origin: localhost, while the hosts listen on 127.0.0.1, so every call is cross-origin. */
async function servePage(): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://localhost:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(DIALECTS)("Raqeem's browser apps against the hosts (%s)", (dialect) => {
  let browser: Browser;
  let page: { origin: string; close(): Promise<void> };
  let pair: Pair | undefined;
  let bare: HostProcess | undefined;
  let bareDir: string | undefined;

  beforeAll(async () => {
    page = await servePage();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await page?.close();
  });
  afterEach(async () => {
    await pair?.close();
    await bare?.stop();
    if (bareDir) rmSync(bareDir, { recursive: true, force: true });
    await killAll();
    pair = undefined;
    bare = undefined;
    bareDir = undefined;
  });

  it('register, telemetry and a screenshot from the page; the dashboard shows it and round-trips a command', async () => {
    const cors = { CORS_ORIGINS: page.origin };
    pair = await startPair(dialect, { devicesEnv: cors, mentorEnv: { ...cors, MENTOR_READ_TOKEN: READ_TOKEN } });
    const api = `${pair.devicesUrl}/api/v1`;
    const mentor = pair.mentorUrl;
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      await tab.goto(page.origin);
      const deviceid = 'browser-sim-1';

      expect(await call(tab, 'simulator', 'register', api, deviceid)).toMatchObject({ deviceid, created: true });
      expect(await call(tab, 'simulator', 'metrics', api, deviceid)).toEqual({ status: 'ok' });
      expect(await call(tab, 'simulator', 'alerts', api, deviceid)).toEqual({ inserted: 1 });
      const shot = await call(tab, 'simulator', 'screenshot', api, deviceid, PNG.toString('base64'));
      expect(shot).toMatchObject({ deviceid, resolution: '7x5', size: PNG.length });

      const shown = await call(tab, 'dashboard', 'showScreenshot', mentor, READ_TOKEN, deviceid);
      expect(shown.naturalWidth).toBeGreaterThan(0);
      expect([shown.naturalWidth, shown.naturalHeight]).toEqual([7, 5]);
      expect(shown.url).toContain(`${mentor}/screenshots/${shot.screenshotid}?expires=`);

      const devices = await call(tab, 'dashboard', 'devices', mentor, READ_TOKEN);
      expect(devices).toEqual([expect.objectContaining({ id: deviceid, deviceid, device_name: 'Browser simulator' })]);

      const command = await call(tab, 'dashboard', 'sendCommand', mentor, deviceid, 'get_info');
      expect(command).toMatchObject({ deviceid, command_text: 'get_info', status: 'pending' });
      const polled = await call(tab, 'simulator', 'completeNextCommand', api, deviceid);
      expect(polled.commandid).toBe(command.commandid);
      const done = await call(tab, 'dashboard', 'commandStatus', mentor, READ_TOKEN, deviceid, command.commandid, 'completed');
      expect(done).toMatchObject({ status: 'completed', result: 'uptime 3 days', exit_code: 0 });
    } finally {
      await context.close();
    }
  });

  it('the same page against a devices host without CORS_ORIGINS fails the preflight and stores nothing', async () => {
    bareDir = mkdtempSync(path.join(tmpdir(), 'relay-browser-'));
    bare = await startHost('devices', { DATA_DIR: bareDir, DATABASE_URL: `sqlite:${path.join(bareDir, 'devices.sqlite')}` });
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      const failed: string[] = [];
      tab.on('requestfailed', (r) => failed.push(`${r.method()} ${new URL(r.url()).pathname} ${r.failure()?.errorText ?? ''}`));
      await tab.goto(page.origin);
      const outcome = await call(tab, 'simulator', 'register', `${bare.url}/api/v1`, 'browser-sim-2').then(
        () => 'answered',
        (err: Error) => err.message,
      );
      expect(outcome).toMatch(/TypeError: Failed to fetch/);
      expect(failed).toEqual([expect.stringMatching(/^POST \/api\/v1\/devices\/register net::ERR_FAILED/)]);
      // The browser never sent the POST: the device is not there.
      expect((await fetch(`${bare.url}/api/v1/devices/browser-sim-2`)).status).toBe(404);
    } finally {
      await context.close();
    }
  });
});
