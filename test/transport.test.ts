/**
 * `send()` against a real loopback server whose answers are scripted per test: what comes back (status,
 * headers, the capped body), what is cut off, and how a request ends when it takes too long or the caller
 * aborts it.
 */
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent, RESPONSE_BODY_LIMIT, send } from '../lib/transport.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
let handler: Handler = (_req, res) => res.end();
let received = 0;
const open = new Set<http.ServerResponse>();
const server = http.createServer((req, res) => {
  open.add(res);
  res.on('close', () => open.delete(res));
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received += 1;
    handler(req, res, Buffer.concat(chunks).toString('utf8'));
  });
});
let url = '';
const agent = createAgent();
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const res of open) res.destroy();
  await agent.close();
  await new Promise((r) => server.close(r));
});

const post = (path = '/hook', body = '{"a":1}') => ({
  url: `${url}${path}`,
  headers: { 'content-type': 'application/json', 'x-test': 't' },
  body,
});

describe('send', () => {
  it('sends the method, path, headers and body, and returns the status, headers and body', async () => {
    let seen: { method?: string; url?: string; headers?: http.IncomingHttpHeaders; body?: string } = {};
    handler = (req, res, body) => {
      seen = { method: req.method, url: req.url, headers: req.headers, body };
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, { 'x-answer': 'yes' });
      res.end('created');
    };
    const r = await send(agent, { ...post('/hook?x=1&y=2'), method: 'PUT' }, 2000);
    expect(seen).toMatchObject({ method: 'PUT', url: '/hook?x=1&y=2', body: '{"a":1}' });
    expect(seen.headers).toMatchObject({ 'content-type': 'application/json', 'x-test': 't', 'content-length': '7' });
    expect(r.statusCode).toBe(201);
    expect(r.headers['x-answer']).toBe('yes');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.body).toBe('created');
  });

  it('POSTs by default and returns a redirect as it is, without following it', async () => {
    const methods: string[] = [];
    handler = (req, res) => {
      methods.push(`${req.method} ${req.url}`);
      res.writeHead(302, { location: '/elsewhere' }).end();
    };
    const r = await send(agent, post(), 2000);
    expect(r).toMatchObject({ statusCode: 302, body: '' });
    expect(r.headers.location).toBe('/elsewhere');
    expect(methods).toEqual(['POST /hook']);
  });

  it('keeps the first RESPONSE_BODY_LIMIT bytes of a longer body, as text', async () => {
    const long = 'é'.repeat(RESPONSE_BODY_LIMIT);
    handler = (_req, res) => res.writeHead(500).end(long);
    const r = await send(agent, post(), 2000);
    expect(r.statusCode).toBe(500);
    expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(RESPONSE_BODY_LIMIT);
    expect(r.body.startsWith('é'.repeat(RESPONSE_BODY_LIMIT / 2 - 1))).toBe(true);
  });

  it('cuts off a body past 64 KiB and still returns the status and the prefix', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      // Far more than 64 KiB, and never ended: only the cut-off can finish this request.
      const chunk = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 16; i++) res.write(chunk);
    };
    const r = await send(agent, post(), 60_000);
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('x'.repeat(RESPONSE_BODY_LIMIT));
  });

  it('rejects with a TimeoutError when no answer comes within the timeout', async () => {
    handler = () => undefined;
    const err = await send(agent, post(), 150).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError' });
    expect(String((err as Error).message)).toMatch(/timeout/i);
  });

  it('returns the status and what was read when the timeout ends a body that is still coming', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write('partial');
    };
    const r = await send(agent, post(), 300);
    expect(r).toMatchObject({ statusCode: 200, body: 'partial' });
  });

  it("rejects with the signal's reason when the caller aborts a request in flight", async () => {
    handler = () => undefined;
    const ac = new AbortController();
    const before = received;
    const p = send(agent, post(), 60_000, ac.signal);
    while (received === before) await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('dispatcher stopping');
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const before = received;
    const reason = new Error('stopped');
    await expect(send(agent, post(), 2000, AbortSignal.abort(reason))).rejects.toBe(reason);
    // A request that went out would have arrived well within this.
    handler = (_req, res) => res.end();
    await send(agent, post(), 2000);
    expect(received).toBe(before + 1);
  });

  it('one signal serves many requests: aborting it ends every one, and a finished request leaves no listener', async () => {
    handler = (_req, res) => res.end('ok');
    const ac = new AbortController();
    for (let i = 0; i < 20; i++) expect((await send(agent, post(), 2000, ac.signal)).body).toBe('ok');
    // At most one listener for all of them (a long-lived dispatcher signal must not collect one per request).
    expect(getEventListeners(ac.signal, 'abort').length).toBeLessThanOrEqual(1);
    handler = () => undefined;
    const before = received;
    const pending = [1, 2, 3].map(() => send(agent, post(), 60_000, ac.signal));
    while (received < before + 3) await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('stop');
    ac.abort(reason);
    for (const p of pending) await expect(p).rejects.toBe(reason);
  });

  it('times out a request still queued for a connection, and never sends it', async () => {
    let held: http.ServerResponse | undefined;
    handler = (_req, res) => (held = res);
    const one = createAgent({ connections: 1 });
    try {
      const before = received;
      const first = send(one, post(), 60_000);
      while (received === before) await new Promise((r) => setTimeout(r, 5));
      // The only connection is busy with `first`, which is never answered while this one waits in the
      // pool's queue: the deadline covers the wait.
      await expect(send(one, post(), 150)).rejects.toMatchObject({ name: 'TimeoutError' });
      handler = (_req, res) => res.end('ok');
      held!.end('first');
      expect((await first).body).toBe('first');
      // Once the connection is free the queued request is dropped, not sent late.
      expect((await send(one, post(), 2000)).body).toBe('ok');
      expect(received).toBe(before + 2);
    } finally {
      await one.destroy();
    }
  });

  it('rejects a connection error with the error', async () => {
    await expect(send(agent, { url: 'http://127.0.0.1:1/', headers: {}, body: '' }, 2000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
