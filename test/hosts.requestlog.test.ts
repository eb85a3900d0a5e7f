/**
 * The hosts' access log (hosts/shared/requestLog.ts). With info off (LOG_LEVEL warn and up) the hosts use
 * a lighter middleware than pino-http; it must write exactly the 4xx/5xx lines pino-http writes (same
 * fields, same redaction) and keep `req.id`, `X-Request-ID` and `req.log`. Each test runs the same requests through the
 * shared base app at two levels and compares what was logged.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createBaseApp, finishApp } from '../hosts/shared/app.js';
import { createLogger } from '../hosts/shared/logging.js';
import { HttpProblem } from '../lib/http/problem.js';

type Line = Record<string, unknown> & { level: number; msg: string };
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A base app with a few routes, logging at `level` into the returned array. */
async function start(level: string) {
  const lines: Line[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)) as Line);
      cb();
    },
  });
  const logger = createLogger({ service: 'test', level, destination });
  const app = createBaseApp({ service: 'test', logger, bodyLimit: 1024 });
  app.get('/ok', (req, res) => {
    res.json({ id: req.id });
  });
  app.get('/items/:item', (req, _res, next) => {
    req.log.warn({ item: req.params.item }, 'refused an item');
    next(new HttpProblem(403, 'not yours'));
  });
  app.post('/json', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/boom', () => {
    throw new Error('kaput');
  });
  finishApp(app, logger);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, lines };
}

/** The same requests, each with its own request id, one after the other. */
async function exercise(url: string) {
  const answers: Array<{ status: number; id: string | null }> = [];
  const go = async (n: number, path: string, init: RequestInit = {}) => {
    const r = await fetch(`${url}${path}`, { ...init, headers: { 'x-request-id': `r-${n}`, ...(init.headers as object) } });
    await r.text();
    answers.push({ status: r.status, id: r.headers.get('x-request-id') });
  };
  await go(1, '/ok');
  await go(2, '/items/abc?token=t0p-secret&page=2', { headers: { authorization: 'Bearer s3cret-bearer', 'x-api-key': 'k3y' } });
  await go(3, '/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"broken' });
  await go(4, '/boom');
  await go(5, '/no/such/route?access_token=a9c-tok');
  await go(6, '/health/anything');
  return answers;
}

/** Drop what differs between two servers and two runs: times, ports, and the frames of whoever built the error. */
const comparable = (l: Line) => {
  const { time: _t, responseTime: _rt, ...rest } = l;
  const err = rest.err as { stack?: string } | undefined;
  if (err?.stack) rest.err = { ...err, stack: err.stack.split('\n')[0] };
  const req = rest.req as { headers?: Record<string, unknown>; remotePort?: unknown } | undefined;
  if (req) {
    const { remotePort: _p, headers, ...r } = req;
    const { host: _h, ...h } = headers ?? {};
    rest.req = { ...r, headers: h };
  }
  return rest;
};

describe('access log', () => {
  it('writes the same 4xx and 5xx lines at warn as at info, redacted the same way', async () => {
    const info = await start('info');
    const warn = await start('warn');
    const infoAnswers = await exercise(info.url);
    const warnAnswers = await exercise(warn.url);
    expect(warnAnswers).toEqual(infoAnswers);
    expect(warnAnswers.map((a) => a.status)).toEqual([200, 403, 400, 500, 404, 404]);
    expect(warnAnswers.map((a) => a.id)).toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6']);

    // At info the 200 is logged too; everything from warn up is the same in both.
    expect(info.lines.filter((l) => l.level === 30).map((l) => [l.msg, (l.req as { id: string }).id])).toEqual([
      ['request completed', 'r-1'],
    ]);
    const infoWarnUp = info.lines.filter((l) => l.level >= 40).map(comparable);
    expect(warn.lines.map(comparable)).toEqual(infoWarnUp);
    expect(warn.lines.map((l) => [l.level, l.msg, (l.req as { id?: string } | undefined)?.id])).toEqual([
      [40, 'refused an item', 'r-2'],
      [40, 'request completed', 'r-2'],
      [40, 'request completed', 'r-3'],
      [50, 'unhandled error', undefined],
      [50, 'request errored', 'r-4'],
      [40, 'request completed', 'r-5'],
    ]);
    // The request as it came in (not the route's params), with credentials redacted by name.
    const refused = warn.lines[1]!;
    expect(refused.req).toMatchObject({
      method: 'GET',
      url: '/items/abc?token=[redacted]&page=2',
      query: { token: '[redacted]', page: '2' },
      params: {},
      headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', 'x-request-id': 'r-2' },
      remoteAddress: '127.0.0.1',
    });
    expect(refused.res).toMatchObject({ statusCode: 403 });
    expect(warn.lines[4]).toMatchObject({ err: { message: 'failed with status code 500' }, res: { statusCode: 500 } });
    const all = JSON.stringify(warn.lines);
    for (const leaked of ['t0p-secret', 's3cret-bearer', 'k3y', 'a9c-tok']) expect(all).not.toContain(leaked);
  });

  it('at error writes only the 5xx lines, and when silent nothing, still answering with request ids', async () => {
    const error = await start('error');
    const silent = await start('silent');
    const errorAnswers = await exercise(error.url);
    expect(await exercise(silent.url)).toEqual(errorAnswers);
    expect(errorAnswers.map((a) => a.id)).toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6']);
    expect(error.lines.map((l) => [l.level, l.msg])).toEqual([
      [50, 'unhandled error'],
      [50, 'request errored'],
    ]);
    expect(silent.lines).toEqual([]);
  });

  it('assigns an id to a request without a plausible one, and the handler sees it as req.id', async () => {
    const warn = await start('warn');
    const r = await fetch(`${warn.url}/ok`, { headers: { 'x-request-id': 'not a plausible id!' } });
    const id = r.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await r.json()).toEqual({ id });
  });
});
