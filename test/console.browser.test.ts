/**
 * The operator's console in headless Chromium against a real devices host, both dialects: sign-in (a wrong
 * token refused), the delivery log after ingesting metrics with a webhook registered, the status filter, a
 * delivery's attempts with the receiver's status code and body (a `<script>` in it shown as text), a
 * receiver that fails until fixed -> dead -> retried from the page -> succeeded, registering an endpoint
 * with a filter (fields from the catalogue, a 422 shown beside the condition), a header and a rate limit from
 * the page and checking the stored filter holds back a non-matching event, replaying a window to an endpoint
 * registered after the events, and the catalogue page. Screenshots go to test/artifacts/.
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
  it('signs in, lists, filters and shows deliveries, retries a dead one, registers a filtered endpoint, replays, shows the catalogue', async () => {
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

      // Register an endpoint with a filter, a header and a rate limit from the page; the filter's fields are
      // the catalogue schema's of the chosen type.
      await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
      await page.getByRole('heading', { name: 'Register an endpoint' }).waitFor();
      await page.getByLabel('URL').fill(`${sink.url}/hot`);
      await page.getByRole('checkbox', { name: /Every device event/ }).uncheck();
      await page.getByRole('checkbox', { name: 'metric.submitted', exact: true }).check();
      await page.getByLabel(/^Description/).fill('CPU alarms <b>only</b>');
      await page.getByRole('button', { name: 'Add condition' }).click();
      const fieldOptions = await page.getByLabel('Field of condition 1').locator('option').allTextContents();
      expect(fieldOptions).toEqual(expect.arrayContaining(['type', 'deviceid', 'data.cpu_usage', 'data.memory_used']));
      expect(fieldOptions.filter((o) => !/^(type|deviceid|data\.)/.test(o))).toEqual([]);
      await page.getByLabel('Field of condition 1').selectOption('data.cpu_usage');
      await page.getByLabel('Operator of condition 1').selectOption('gte');
      // A value of the wrong type: the relay's 422 is shown under the filter, naming the condition.
      await page.getByLabel('Value of condition 1').fill('ninety');
      await page.getByRole('button', { name: 'Add header' }).click();
      await page.getByLabel('Header name 1').fill('X-Api-Key');
      await page.getByLabel('Header value 1').fill('hot-key-31337');
      await page.getByLabel(/^Rate limit/).fill('5');
      await page.getByRole('button', { name: 'Register endpoint' }).click();
      const filterErrors = page.locator('fieldset.filter-editor .field-error');
      await expect.poll(() => filterErrors.textContent()).toContain('filter.data.cpu_usage.gte');
      expect(await page.locator('.filter-row.invalid').count()).toBe(1);
      await page.screenshot({ path: artifact(`console-endpoint-422-${dialect}.png`), fullPage: true });
      await page.getByLabel('Value of condition 1').fill('90');
      const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/v1/webhooks'));
      await page.getByRole('button', { name: 'Register endpoint' }).click();
      const request = await sent;
      expect(request.postDataJSON()).toEqual({
        url: `${sink.url}/hot`,
        events: ['metric.submitted'],
        description: 'CPU alarms <b>only</b>',
        filter: { 'data.cpu_usage': { gte: 90 } },
        headers: { 'X-Api-Key': 'hot-key-31337' },
        rate_limit: 5,
      });
      await expect
        .poll(() => page.locator('.notice-success').textContent())
        .toMatch(/Registered wh_\w+\. Its signing secret is shown once here: whsec_/);
      expect(await filterErrors.count()).toBe(0);
      const created = (await c.call('GET', '/api/v1/webhooks')).body.data.find((e: { url: string }) => e.url === `${sink.url}/hot`);
      expect(created).toMatchObject({
        events: ['metric.submitted'],
        description: 'CPU alarms <b>only</b>',
        filter: { 'data.cpu_usage': { gte: 90 } },
        headers: ['X-Api-Key'],
        rate_limit: 5,
      });
      // The description is shown as text, not markup.
      expect(await page.locator('table.endpoints b').count()).toBe(0);
      await expect.poll(() => page.locator('table.endpoints').textContent()).toContain('CPU alarms <b>only</b>');
      await page.screenshot({ path: artifact(`console-endpoints-${dialect}.png`), fullPage: true });

      // The stored filter works: a cool sample gets no delivery to it, a hot one does (with its header).
      await c.ingest('laptop-8', 1, { cpu_usage: 42.5, memory_used: 1 });
      await c.ingest('laptop-8', 1, { cpu_usage: 97, memory_used: 2 });
      await eventually(() => sink.requests.some((r) => r.path === '/hot'));
      const toHot = (await c.call('GET', `/api/v1/deliveries?webhook_id=${created.id}&limit=100`)).body.data;
      expect(toHot).toHaveLength(1);
      const hot = sink.requests.filter((r) => r.path === '/hot');
      expect(hot).toHaveLength(1);
      expect(JSON.parse(hot[0]!.body).data.cpu_usage).toBe(97);
      expect(hot[0]!.headers['x-api-key']).toBe('hot-key-31337');

      // Its page shows the filter, the header's name (never its value) and the rate limit.
      await page.getByRole('link', { name: `${sink.url}/hot` }).click();
      await page.getByRole('heading', { name: 'Replay a window' }).waitFor();
      expect(JSON.parse((await page.locator('.endpoint-filter .filter-json').textContent())!)).toEqual({ 'data.cpu_usage': { gte: 90 } });
      expect((await page.locator('.endpoint-filter li').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim())).toEqual([
        'data.cpu_usage ≥ 90',
      ]);
      expect(await page.locator('.endpoint-headers').textContent()).toContain('X-Api-Key');
      expect(await page.locator('.endpoint-rate').textContent()).toBe('5 requests per second');
      expect(await page.content()).not.toContain('hot-key-31337');
      expect(await page.getByLabel('Value of condition 1').inputValue()).toBe('90');

      // Replay: an endpoint registered after the events were ingested gets the missed ones from the page,
      // with their original event ids; a second replay of the same window queues none.
      const late = (await c.call('POST', '/api/v1/webhooks', { url: `${sink.url}/late`, events: ['metric.submitted'] })).body;
      const published = (await c.call('GET', '/api/v1/deliveries?target=webhooks&event_type=metric.submitted&limit=100')).body
        .data as Array<{
        event_id: string;
      }>;
      const eventIds = [...new Set(published.map((d) => d.event_id))].sort();
      expect(eventIds).toHaveLength(4);
      await page.goto(`${c.url}/console/#/endpoints/${late.id}`);
      await page.getByRole('button', { name: 'Replay', exact: true }).click();
      const replayed = page.locator('form[aria-labelledby="replay-title"] .notice-success');
      await expect.poll(() => replayed.textContent()).toBe('4 events queued for replay.');
      await eventually(() => sink.requests.filter((r) => r.path === '/late').length === 4);
      expect(
        sink.requests
          .filter((r) => r.path === '/late')
          .map((r) => String(r.headers['webhook-id']))
          .sort(),
      ).toEqual(eventIds);
      await page.screenshot({ path: artifact(`console-endpoint-replay-${dialect}.png`), fullPage: true });
      await page.getByRole('button', { name: 'Replay', exact: true }).click();
      await expect.poll(() => replayed.textContent()).toBe('0 events queued for replay.');

      // Secret rotation keeps up to two previous secrets, each for 24 h; a third rotation within that is refused.
      page.on('dialog', (d) => void d.accept());
      const rotate = page.getByRole('button', { name: 'Rotate secret' });
      const notice = page.locator('.notice-success').first();
      await rotate.click();
      await expect.poll(() => notice.textContent()).toMatch(/^New secret: whsec_\S+\. The previous secret still signs until .+\.$/);
      await rotate.click();
      await expect.poll(() => notice.textContent()).toMatch(/The previous secrets still sign until .+ and .+\.$/);
      await rotate.click();
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/^Error 409:/);

      // The catalogue page lists every type with its schema and example; operational ones are marked.
      const catalogue = (await c.call('GET', '/api/v1/event-types')).body.data as Array<{ name: string; operational: boolean }>;
      await page.getByRole('link', { name: 'Event catalogue' }).click();
      await page.getByRole('heading', { name: 'Event catalogue' }).waitFor();
      await expect.poll(() => page.locator('section.event-type h2 code').allTextContents()).toEqual(catalogue.map((t) => t.name));
      expect(await page.locator('section.event-type h2 .badge-operational').count()).toBe(catalogue.filter((t) => t.operational).length);
      const metric = page.locator('section.event-type', { has: page.locator('h2 code', { hasText: /^metric\.submitted$/ }) });
      expect(JSON.parse((await metric.getByLabel('metric.submitted schema').textContent())!).properties).toHaveProperty('cpu_usage');
      expect(JSON.parse((await metric.getByLabel('metric.submitted example').textContent())!).type).toBe('metric.submitted');
      await page.screenshot({ path: artifact(`console-catalogue-${dialect}.png`) });

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
