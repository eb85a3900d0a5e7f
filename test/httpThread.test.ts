/**
 * The HTTP thread's agents (`ThreadAgent`) beyond what `send()` sees (transport.test.ts runs every `send()`
 * case through one as well): agents share the thread and close on their own, `close()` waits for the
 * requests in flight, a closed agent refuses new ones, and an idle thread never keeps a process alive.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killHttpThread, ThreadAgent } from '../lib/httpThread.js';
import { send } from '../lib/transport.js';

const held: http.ServerResponse[] = [];
let hold = false;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (hold) held.push(res);
    else res.end(`ok ${req.url}`);
  });
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const post = (p: string) => ({ url: `${url}${p}`, headers: { 'content-type': 'text/plain' }, body: 'x' });

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

describe('ThreadAgent', () => {
  it('close() waits for the requests in flight; the closed agent refuses new ones while another agent goes on', async () => {
    const a = new ThreadAgent();
    const b = new ThreadAgent();
    hold = true;
    const inFlight = send(a, post('/a'), 10_000);
    await until(() => held.length === 1);
    hold = false;
    let closed = false;
    const closing = a.close().then(() => (closed = true));
    // The answer has not come: close() is still waiting for it.
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    held.shift()!.end('late answer');
    expect((await inFlight).body).toBe('late answer');
    await closing;
    await expect(send(a, post('/a'), 2000)).rejects.toMatchObject({ name: 'ClientClosedError' });
    // The thread is shared: the other agent still sends through it.
    expect((await send(b, post('/b'), 2000)).body).toBe('ok /b');
    await b.close();
  });

  it('destroy() fails the requests in flight at once', async () => {
    const a = new ThreadAgent();
    hold = true;
    const inFlight = send(a, post('/d'), 10_000);
    await until(() => held.length === 1);
    hold = false;
    const failed = expect(inFlight).rejects.toMatchObject({ name: 'ClientDestroyedError' });
    await a.destroy();
    await failed;
    held.shift()!.destroy();
  });

  it('starts a new thread for requests after the last agent closed', async () => {
    const first = new ThreadAgent();
    expect((await send(first, post('/1'), 2000)).body).toBe('ok /1');
    await first.close();
    const second = new ThreadAgent();
    expect((await send(second, post('/2'), 2000)).body).toBe('ok /2');
    await second.close();
  });

  it('a thread that dies fails the requests in flight, and the next request starts a new one', async () => {
    const a = new ThreadAgent();
    hold = true;
    const inFlight = send(a, post('/k'), 10_000);
    await until(() => held.length === 1);
    hold = false;
    const failed = expect(inFlight).rejects.toThrow(/the HTTP thread exited/);
    await killHttpThread();
    await failed;
    held.shift()!.destroy();
    expect((await send(a, post('/after'), 2000)).body).toBe('ok /after');
    await a.close();
  });

  it('refuses a body or headers that cannot cross to the thread, and sends nothing', async () => {
    const a = new ThreadAgent();
    const stream = new (await import('node:stream')).PassThrough();
    const req = { url: `${url}/s`, headers: {}, body: stream as unknown as string };
    await expect(send(a, req, 2000)).rejects.toMatchObject({ name: 'InvalidArgumentError' });
    await a.close();
  });

  it('an idle thread does not keep the process alive', async () => {
    // A child process sends one request and never closes its agent: it must still exit by itself.
    const script = `
      import http from 'node:http';
      import { ThreadAgent } from './lib/httpThread.ts';
      import { send } from './lib/transport.ts';
      const server = http.createServer((req, res) => { req.resume(); res.end('hi'); });
      server.listen(0, '127.0.0.1', async () => {
        const r = await send(new ThreadAgent(), { url: 'http://127.0.0.1:' + server.address().port + '/', headers: {}, body: '' }, 2000);
        console.log(r.statusCode, r.body);
        server.close();
        server.closeAllConnections();
      });`;
    const root = path.resolve(import.meta.dirname, '..');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('200 hi');
  });
});
