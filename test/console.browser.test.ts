/**
 * The operator's console in headless Chromium against a real devices host, both dialects: sign-in (a wrong
 * token refused), the delivery log after ingesting metrics with a webhook registered, the status filter, a
 * delivery's attempts with the receiver's status code and body (a `<script>` in it shown as text), a
 * receiver that fails until fixed -> dead -> retried from the page -> succeeded, and registering an
 * endpoint with a filter from the page. Screenshots go to test/artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { DIALECTS } from './helpers/db.js';
import { artifact, launchBrowser } from './helpers/browser.js';
import { CONSOLE_ADMIN_TOKEN, startConsoleHost } from './helpers/console.js';
import { eventually, startSink } from './helpers/sink.js';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

const HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">receiver is down';

describe.each(DIALECTS)('console in a browser (%s)', (dialect) => {
  it('signs in, lists, filters and shows deliveries, retries a dead one to success, and registers an endpoint with a filter', async () => {
    const c = await startConsoleHost(dialect, { schedule: [50, 50] });
    const sink = await startSink();
    let fixed = false;
    // `/ok` always answers 200; `/hook` refuses with a hostile body until it is fixed (a 4xx: retried, but it
    // does not open the circuit, which would hold the deliveries back without spending their attempts).
    sink.respond((r) =>
      fixed || r.path === '/ok'
        ? { status: 200, body: '{"received":true}' }
        : { status: 400, body: HOSTILE, headers: { 'content-type': 'text/html' } },
    );
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/hook`, events: ['metric.*'], description: 'Ops' });
      await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/ok`, events: ['metric.*'] });

      // Sign-in: a wrong token is refused, the right one opens the overview; the token is kept nowhere.
      await page.goto(`${c.url}/console/`);
      await page.getByLabel('Admin token').fill('wrong-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/not the admin token/);
      await page.screenshot({ path: artifact(`console-signin-refused-${dialect}.png`) });
      // With the keyboard only: Tab reaches the labelled field, Enter submits.
      await page.goto(`${c.url}/console/`);
      await page.getByLabel('Admin token').waitFor();
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.id')).toBe('token');
      await page.keyboard.type(CONSOLE_ADMIN_TOKEN);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Overview' }).waitFor();
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
      expect(page.url()).not.toContain(CONSOLE_ADMIN_TOKEN);
      const stored = await page.evaluate<string>(
        'JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie',
      );
      expect(stored).not.toContain(CONSOLE_ADMIN_TOKEN);
      expect(stored).not.toContain('relay_console'); // HttpOnly: invisible to scripts

      // Ingest with one receiver failing: its two deliveries die after their three attempts, the others succeed.
      await c.ingest('laptop-7', 2);
      await eventually(async () => (await c.call('GET', '/api/v1/deliveries?status=dead')).body.data.length === 2);
      await eventually(async () => (await c.call('GET', '/api/v1/deliveries?status=succeeded')).body.data.length === 2);

      await page.getByRole('link', { name: 'Deliveries' }).click();
      const rows = page.locator('table.deliveries tbody tr');
      await expect.poll(() => rows.count()).toBe(4);
      await page.screenshot({ path: artifact(`console-deliveries-${dialect}.png`), fullPage: true });

      // Filter by status through the form; the filter lands in the address.
      await page.getByLabel('Status').selectOption('dead');
      await page.getByRole('button', { name: 'Apply' }).click();
      await expect.poll(() => page.url()).toContain('status=dead');
      await expect.poll(() => rows.count()).toBe(2);
      expect(await page.locator('table.deliveries tbody .badge').allTextContents()).toEqual(['dead', 'dead']);

      // One delivery: every attempt's status code and response body, the body as text.
      await rows
        .first()
        .getByRole('link', { name: /^#\d+$/ })
        .click();
      await page.getByRole('heading', { name: /Delivery #\d+/ }).waitFor();
      const attempts = page.locator('.attempt');
      await expect.poll(() => attempts.count()).toBe(3);
      expect(await page.locator('.status-code').allTextContents()).toEqual(['400', '400', '400']);
      expect(await page.locator('.response-body').last().textContent()).toBe(HOSTILE);
      expect(await page.locator('.response-body script, .response-body img').count()).toBe(0);
      expect(await page.evaluate('window.__pwned')).toBeUndefined();
      await page.screenshot({ path: artifact(`console-delivery-dead-${dialect}.png`), fullPage: true });

      // The receiver is fixed; retry from the page; the page follows the delivery to success.
      fixed = true;
      await page.getByRole('button', { name: 'Retry now' }).click();
      await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 20_000 }).toBe('succeeded');
      await expect.poll(() => page.locator('.status-code').allTextContents()).toEqual(['400', '400', '400', '200']);
      expect(await page.locator('.response-body').last().textContent()).toBe('{"received":true}');
      await page.screenshot({ path: artifact(`console-delivery-retried-${dialect}.png`), fullPage: true });

      // The other dead delivery comes back with "recover dead deliveries in a window".
      await page.getByRole('link', { name: 'Delivery log' }).click();
      await page.getByText('Recover dead deliveries in a window').click();
      await page.getByRole('button', { name: 'Re-queue dead deliveries' }).click();
      await expect.poll(() => page.locator('.notice-success').textContent()).toBe('1 dead deliveries re-queued.');
      await eventually(async () => (await c.call('GET', '/api/v1/deliveries?status=succeeded')).body.data.length === 4);

      // Register an endpoint with a filter from the page.
      await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
      await page.getByRole('heading', { name: 'Register an endpoint' }).waitFor();
      await page.getByLabel('URL').fill(`${sink.url}/hot`);
      // Event types are typed in, or picked from the catalogue on a relay that serves one.
      const typed = page.getByRole('textbox', { name: /^Event types/ });
      if ((await typed.count()) > 0) await typed.fill('metric.submitted');
      else {
        await page.getByRole('checkbox', { name: /Every event/ }).uncheck();
        await page.getByRole('checkbox', { name: 'metric.submitted', exact: true }).check();
      }
      await page.getByLabel(/^Description/).fill('CPU alarms <b>only</b>');
      await page.getByLabel(/^Filter/).fill('{"data.cpu_usage": {"gte": 90}}');
      const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/v1/webhooks'));
      await page.getByRole('button', { name: 'Register endpoint' }).click();
      const request = await sent;
      expect(request.postDataJSON()).toEqual({
        url: `${sink.url}/hot`,
        events: ['metric.submitted'],
        description: 'CPU alarms <b>only</b>',
        filter: { 'data.cpu_usage': { gte: 90 } },
      });
      await expect
        .poll(() => page.locator('.notice-success').textContent())
        .toMatch(/Registered wh_\w+\. Its signing secret is shown once here: whsec_/);
      const created = (await c.call('GET', '/api/v1/webhooks')).body.data.find((e: { url: string }) => e.url === `${sink.url}/hot`);
      expect(created).toMatchObject({ events: ['metric.submitted'], description: 'CPU alarms <b>only</b>' });
      // A relay with endpoint filters stores it; one without ignores the field.
      if ('filter' in created) expect(created.filter).toEqual({ 'data.cpu_usage': { gte: 90 } });
      // The description is shown as text, not markup.
      expect(await page.locator('table.endpoints b').count()).toBe(0);
      await expect.poll(() => page.locator('table.endpoints').textContent()).toContain('CPU alarms <b>only</b>');
      await page.screenshot({ path: artifact(`console-endpoints-${dialect}.png`), fullPage: true });

      // Sign out ends the session: the page is back at sign-in and the API refuses the old cookie.
      const cookies = await context.cookies();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Admin token').waitFor();
      const old = cookies.find((k) => k.name === 'relay_console')!;
      expect(old.httpOnly).toBe(true);
      expect(old.sameSite).toBe('Strict');
      expect((await c.call('GET', '/api/v1/webhooks', undefined, { cookie: `relay_console=${old.value}` })).status).toBe(401);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await sink.close();
      await c.cleanup();
    }
  });
});
