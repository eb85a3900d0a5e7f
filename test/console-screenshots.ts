/**
 * Regenerates the screenshots in docs/console/ that docs/console.md shows: a real devices host on a temporary
 * SQLite file, three webhook receivers (healthy, refusing, down), a trickle of metrics from a few devices,
 * and headless Chromium at 1440 and 375 px. Run with `npm run console:screenshots` (about a minute). The
 * operator's endpoint and catalogue pages are also shot at 375 px into test/artifacts/ (docs-*.png) to be
 * looked at.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchBrowser } from './helpers/browser.js';
import { CONSOLE_ADMIN_TOKEN, startConsoleHost } from './helpers/console.js';
import { eventually, startSink } from './helpers/sink.js';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'console');
mkdirSync(OUT, { recursive: true });
const shot = (name: string) => path.join(OUT, name);
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });
/** Narrow views not shown in the docs, written to test/artifacts/ to be looked at. */
const extra = (name: string) => path.join(ARTIFACTS, name);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Scrolled to the top, so a full-page shot shows the sticky top bar where it belongs. */
const top = (p: Page) => p.evaluate('window.scrollTo(0, 0)');

const c = await startConsoleHost('sqlite', { schedule: [200, 400] });
const sink = await startSink();
sink.respond((r) => {
  if (r.path === '/alerts') return { status: 400, body: '{"error":"unknown field cpu_temp"}' };
  if (r.path === '/warehouse') return { status: 503, body: '<html><body><h1>503 Service Unavailable</h1></body></html>' };
  return { status: 200, body: '{"received":true}' };
});
const browser = await launchBrowser();
try {
  const dashboard = (
    await c.call('POST', '/api/v1/webhooks', {
      url: `${sink.url}/dashboard`,
      events: ['metric.*', 'alert.*'],
      description: 'Ops dashboard',
    })
  ).body.id as string;
  const alerts = (
    await c.call('POST', '/api/v1/webhooks', {
      url: `${sink.url}/alerts`,
      events: ['metric.submitted'],
      description: 'Pager bridge',
      filter: { 'data.cpu_usage': { gte: 80 }, deviceid: { prefix: 'laptop-' } },
      headers: { Authorization: 'Bearer pager-demo-key', 'X-Team': 'ops' },
      rate_limit: 20,
    })
  ).body.id as string;
  await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/warehouse`, events: ['*'], description: 'Data warehouse' });
  const devices = ['laptop-ahmed', 'kiosk-lobby', 'tablet-07'];
  for (const d of devices) await c.ingest(d, 1);

  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(`${c.url}/console/`);
  await page.getByLabel('Admin token').fill(CONSOLE_ADMIN_TOKEN);
  await page.screenshot({ path: shot('signin.png') });
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();

  // A steady trickle while the overview polls, so the chart has something to draw; the shot is taken mid-stream.
  let n = 0;
  let stop = false;
  const trickle = (async () => {
    while (!stop) {
      const d = devices[n++ % devices.length]!;
      await c.call('POST', `/api/v1/devices/${d}/metrics`, { cpu_usage: 20 + ((n * 17) % 75), memory_used: 2048 + n }, { bearer: null });
      await sleep(120 + ((n * 37) % 200) + (n % 40 < 20 ? 0 : 150));
    }
  })();
  await sleep(45_000);
  await page.screenshot({ path: shot('overview.png'), fullPage: true });
  stop = true;
  await trickle;
  await eventually(async () => (await c.call('GET', '/api/v1/deliveries?status=dead')).body.data.length > 0);

  await page.goto(`${c.url}/console/#/deliveries`);
  await page.locator('table.deliveries tbody tr').first().waitFor();
  await page.screenshot({ path: shot('deliveries.png') });

  const dead = (await c.call('GET', '/api/v1/deliveries?status=dead&limit=1')).body.data[0].id as number;
  await page.goto(`${c.url}/console/#/deliveries/${dead}`);
  await page.locator('.attempt').first().waitFor();
  await page.screenshot({ path: shot('delivery.png'), fullPage: true });

  await page.goto(`${c.url}/console/#/endpoints`);
  await page.locator('table.endpoints tbody tr').first().waitFor();
  await page.screenshot({ path: shot('endpoints.png') });

  await page.goto(`${c.url}/console/#/endpoints/${dashboard}`);
  await page.getByRole('button', { name: 'Create portal link' }).click();
  const link = await page.getByLabel('Portal link').inputValue();
  await top(page);
  await page.screenshot({ path: shot('endpoint.png'), fullPage: true });

  // An endpoint with a filter, headers (names only) and a rate limit; its settings open the filter editor.
  await page.goto(`${c.url}/console/#/endpoints/${alerts}`);
  await page.getByRole('heading', { name: 'Replay a window' }).waitFor();
  await page.getByLabel('Value of condition 1').waitFor();
  await top(page);
  await page.screenshot({ path: shot('endpoint-filter.png'), fullPage: true });

  await page.goto(`${c.url}/console/#/catalogue`);
  await page.locator('section.event-type').first().waitFor();
  await page.screenshot({ path: shot('catalogue.png') });

  const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2 });
  const portal = await phone.newPage();
  await portal.goto(link);
  await portal.getByText('Recent success rate').waitFor();
  await sleep(500);
  await portal.screenshot({ path: shot('portal-375.png') });
  await portal.getByRole('link', { name: 'Deliveries' }).click();
  await portal.locator('table.deliveries tbody tr').first().waitFor();
  await portal.screenshot({ path: shot('portal-deliveries-375.png') });
  await phone.close();
  // The operator's pages at 375 px, to look at (not in the docs).
  const narrow = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2 });
  const small = await narrow.newPage();
  await small.goto(`${c.url}/console/`);
  await small.getByLabel('Admin token').fill(CONSOLE_ADMIN_TOKEN);
  await small.getByRole('button', { name: 'Sign in' }).click();
  await small.getByRole('heading', { name: 'Overview' }).waitFor();
  for (const [name, hash, ready] of [
    ['endpoints-375.png', '#/endpoints', 'Register an endpoint'],
    ['endpoint-filter-375.png', `#/endpoints/${alerts}`, 'Replay a window'],
    ['catalogue-375.png', '#/catalogue', 'Event catalogue'],
  ] as const) {
    await small.goto(`${c.url}/console/${hash}`);
    await small.getByRole('heading', { name: ready }).waitFor();
    await sleep(300);
    await small.screenshot({ path: extra(`docs-${name}`), fullPage: name !== 'catalogue-375.png' });
  }
  await small.locator('#type-metric\\.submitted').scrollIntoViewIfNeeded();
  await small.screenshot({ path: extra('docs-catalogue-metric-375.png') });
  await narrow.close();
  console.log(`screenshots written to ${path.relative(process.cwd(), OUT)}/`);
} finally {
  await browser.close();
  await sink.close();
  await c.cleanup();
}
