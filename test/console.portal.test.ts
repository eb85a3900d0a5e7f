/**
 * Portal links in headless Chromium against a real devices host, both dialects: an operator creates a link
 * from the endpoint's page; opening it in a fresh browser shows that endpoint and its deliveries only, takes
 * the token out of the address bar, and neither edited URLs nor the API called from the page reach another
 * endpoint or a relay-wide route; an expired or altered link says so.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { DIALECTS } from './helpers/db.js';
import { artifact, launchBrowser } from './helpers/browser.js';
import { CONSOLE_ADMIN_TOKEN, startConsoleHost } from './helpers/console.js';
import { startSink } from './helpers/sink.js';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** What `fetch` from inside the page gets (the session cookie rides along, as it would for any script there). */
const fetchFromPage = (page: Page, method: string, path: string) =>
  page.evaluate(
    async ([m, p]) => {
      const r = await fetch(p!, { method: m, headers: { 'x-csrf-token': 'whatever' } });
      return r.status;
    },
    [method, path],
  );

describe.each(DIALECTS)('portal links in a browser (%s)', (dialect) => {
  it('shows one endpoint only, and refuses expired and altered links', async () => {
    const c = await startConsoleHost(dialect);
    const sink = await startSink();
    const operator = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const consumer = await browser.newContext({ viewport: { width: 375, height: 812 } });
    try {
      const a = (await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/consumer-a`, events: ['metric.*'] })).body.id as string;
      const b = (await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/consumer-b`, events: ['metric.*'] })).body.id as string;
      await c.ingest('tablet-3', 2);
      await sink.waitFor(4);
      const all = (await c.call('GET', '/api/v1/deliveries')).body.data as Array<{ id: number; webhook_id: string }>;
      const ofB = all.filter((d) => d.webhook_id === b).map((d) => d.id);

      // The operator creates the link on the endpoint's page.
      const op = await operator.newPage();
      await op.goto(`${c.url}/console/`);
      await op.getByLabel('Admin token').fill(CONSOLE_ADMIN_TOKEN);
      await op.getByRole('button', { name: 'Sign in' }).click();
      await op.getByRole('heading', { name: 'Overview' }).waitFor();
      await op.goto(`${c.url}/console/#/endpoints/${a}`);
      await op.getByRole('button', { name: 'Create portal link' }).click();
      const link = await op.getByLabel('Portal link').inputValue();
      expect(link).toMatch(new RegExp(`^${c.url}/console/portal#token=v1\\.`));
      await op.screenshot({ path: artifact(`portal-link-created-${dialect}.png`) });

      // The consumer opens it: the token leaves the address bar, the page is limited to endpoint A.
      const page = await consumer.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(link);
      await page.getByRole('heading', { name: `${sink.url}/consumer-a` }).waitFor();
      expect(page.url()).not.toContain('token');
      expect(await page.locator('.pill-portal').textContent()).toContain(a);
      const nav = await page.getByRole('navigation', { name: 'Console' }).getByRole('link').allTextContents();
      expect(nav).toEqual(['Endpoint', 'Deliveries']);
      expect(await page.getByText(`${sink.url}/consumer-b`).count()).toBe(0);
      await page.screenshot({ path: artifact(`portal-endpoint-${dialect}.png`), fullPage: true });

      // Its own filter, with the catalogue's fields; no replay, headers or rate limit for the consumer.
      expect(await page.getByRole('heading', { name: 'Replay a window' }).count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Add header' }).count()).toBe(0);
      expect(await page.getByLabel(/^Rate limit/).count()).toBe(0);
      await page.getByRole('button', { name: 'Add condition' }).click();
      await page.getByLabel('Field of condition 1').selectOption('deviceid');
      await page.getByLabel('Operator of condition 1').selectOption('prefix');
      await page.getByLabel('Value of condition 1').fill('tablet-');
      await page.getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => page.locator('.endpoint-filter li').textContent()).toMatch(/deviceid\s+starts with\s+tablet-/);
      expect((await c.call('GET', `/api/v1/webhooks/${a}`)).body.filter).toEqual({ deviceid: { prefix: 'tablet-' } });

      await page.getByRole('link', { name: 'Deliveries' }).click();
      const rows = page.locator('table.deliveries tbody tr');
      await expect.poll(() => rows.count()).toBe(2);
      const shown = await page.locator('table.deliveries tbody a').allTextContents();
      for (const id of ofB) expect(shown).not.toContain(`#${id}`);
      await page.screenshot({ path: artifact(`portal-deliveries-${dialect}.png`), fullPage: true });

      // Editing the address to reach B or its deliveries finds nothing.
      await page.goto(`${c.url}/console/#/deliveries?webhook_id=${b}`);
      await expect.poll(() => page.locator('table.deliveries tbody a').allTextContents()).not.toContain(`#${ofB[0]}`);
      await page.goto(`${c.url}/console/#/deliveries/${ofB[0]}`);
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/Error 404/);
      await page.goto(`${c.url}/console/#/endpoints/${b}`);
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/Error 404/);
      expect(await page.getByText(`${sink.url}/consumer-b`).count()).toBe(0);

      // Nor does the API, called with the session from the page.
      expect(await fetchFromPage(page, 'GET', `/api/v1/webhooks/${b}`)).toBe(404);
      expect(await fetchFromPage(page, 'GET', `/api/v1/deliveries/${ofB[0]}`)).toBe(404);
      expect(await fetchFromPage(page, 'GET', '/api/v1/webhooks')).toBe(403);
      expect(await fetchFromPage(page, 'GET', '/api/v1/stats')).toBe(403);
      expect(await fetchFromPage(page, 'GET', `/api/v1/webhooks/${a}/secret`)).toBe(403);
      expect(await fetchFromPage(page, 'DELETE', `/api/v1/webhooks/${a}`)).toBe(403);
      expect(await fetchFromPage(page, 'GET', `/api/v1/webhooks/${a}`)).toBe(200);
      expect(errors).toEqual([]);

      // An expired link and an altered one each say so, and open nothing.
      const key = createHmac('sha256', CONSOLE_ADMIN_TOKEN).update('raqeem-relay portal links v1').digest();
      const payload = Buffer.from(JSON.stringify({ e: a, x: Math.floor(Date.now() / 1000) - 60 })).toString('base64url');
      const expired = `v1.${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
      const fresh = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      try {
        const p = await fresh.newPage();
        await p.goto(`${c.url}/console/portal#token=${expired}`);
        await p.getByRole('heading', { name: 'This portal link has expired' }).waitFor();
        expect(p.url()).not.toContain('token');
        await p.screenshot({ path: artifact(`portal-expired-${dialect}.png`) });
        const tampered = link.replace(/#token=v1\.(.)/, (_m, ch: string) => `#token=v1.${ch === 'e' ? 'f' : 'e'}`);
        await p.goto(tampered);
        await p.getByRole('heading', { name: 'This portal link cannot be used' }).waitFor();
        expect(await p.getByRole('alert').textContent()).toMatch(/not valid/);
        expect(await fetchFromPage(p, 'GET', `/api/v1/webhooks/${a}`)).toBe(401);
      } finally {
        await fresh.close();
      }
    } finally {
      await operator.close();
      await consumer.close();
      await sink.close();
      await c.cleanup();
    }
  });
});
