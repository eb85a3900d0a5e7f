/**
 * Regenerates the screenshots in docs/console/ that docs/console.md shows: a real devices host on a temporary
 * SQLite file, three webhook receivers (healthy, refusing, down), a trickle of metrics from a few devices,
 * and headless Chromium at 1440 and 375 px. Run with `npm run console:screenshots` (about a minute).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser } from './helpers/browser.js';
import { CONSOLE_ADMIN_TOKEN, startConsoleHost } from './helpers/console.js';
import { eventually, startSink } from './helpers/sink.js';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'console');
mkdirSync(OUT, { recursive: true });
const shot = (name: string) => path.join(OUT, name);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/alerts`, events: ['metric.submitted'], description: 'Pager bridge' });
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
  await page.screenshot({ path: shot('endpoint.png'), fullPage: true });

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
  console.log(`screenshots written to ${path.relative(process.cwd(), OUT)}/`);
} finally {
  await browser.close();
  await sink.close();
  await c.cleanup();
}
