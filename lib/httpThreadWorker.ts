/**
 * The HTTP thread's own code (see `httpThread.ts`): keep-alive undici Agents that send what the main thread
 * posts and post back what comes in. It holds no policy of its own: a new connection asks the main thread
 * whether its destination is allowed and to resolve its name, so guards such as the webhooks' SSRF check
 * stay where they were written.
 *
 * The worker is started from this function's source (`new Worker(source, { eval: true })`), so that the
 * same code runs from TypeScript sources, the package's bundles and the bench's build alike: it may use
 * only its parameters and what it requires, never anything imported by this module.
 * @internal
 */

// Types only: the worker requires its modules itself (see above).
import type * as WorkerThreads from 'node:worker_threads';
import type * as Undici from 'undici';
import type { Agent, Dispatcher } from 'undici';

/** A message to the thread. */
export type ToThread =
  | { t: 'agent'; agent: number; connections: number; connectTimeoutMs: number; guarded: boolean }
  | { t: 'drop'; agent: number }
  | {
      t: 'req';
      agent: number;
      id: number;
      origin: string;
      path: string;
      method: string;
      headers: Record<string, string>;
      body: string | Uint8Array | null;
      headersTimeout: number | undefined;
      bodyTimeout: number | undefined;
    }
  | { t: 'abort'; id: number }
  | { t: 'answer'; ask: number; error: PackedError | null; result: unknown[] };

/** A message from the thread. */
export type FromThread =
  | { t: 'head'; id: number; status: number; headers: Record<string, string | string[] | undefined>; statusText: string | undefined }
  | { t: 'data'; id: number; chunk: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'error'; id: number; error: PackedError }
  /** Ask the agent's guard: `refuse` (may this literal host be connected to?) or `lookup` (resolve a name). */
  | { t: 'ask'; ask: number; agent: number; what: 'refuse' | 'lookup'; hostname: string; options: unknown };

/** An error as it crosses threads: structured clone keeps neither its class nor its `code`. */
export interface PackedError {
  name: string;
  message: string;
  code: string | undefined;
}

export function httpThreadMain(require: NodeJS.Require, undiciPath: string): void {
  const { parentPort } = require('node:worker_threads') as typeof WorkerThreads;
  const undici = require(undiciPath) as typeof Undici;
  type Controller = Dispatcher.DispatchController;
  type Callback = (err: Error | null, ...result: unknown[]) => void;

  const port = parentPort!;
  const agents = new Map<number, Agent>();
  /** Requests in flight, with their controller once undici has started them. */
  const live = new Map<number, Controller | null>();
  /** Requests the main thread aborted before undici started them. */
  const aborted = new Set<number>();
  const asks = new Map<number, Callback>();
  let nextAsk = 0;

  // What the thread posts in one turn of its loop goes as one message.
  let out: FromThread[] = [];
  const post = (m: FromThread): void => {
    if (out.length === 0) setImmediate(flush);
    out.push(m);
  };
  const flush = (): void => {
    const batch = out;
    out = [];
    port.postMessage(batch);
  };

  const pack = (err: unknown): PackedError => {
    const e = err instanceof Error ? err : new Error(String(err));
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, code: typeof code === 'string' ? code : undefined };
  };
  const unpack = (p: PackedError): Error => Object.assign(new Error(p.message), { name: p.name, code: p.code });

  const ask = (agent: number, what: 'refuse' | 'lookup', hostname: string, options: unknown, callback: Callback): void => {
    const n = ++nextAsk;
    asks.set(n, callback);
    post({ t: 'ask', ask: n, agent, what, hostname, options });
  };

  const createAgent = (m: Extract<ToThread, { t: 'agent' }>): Agent => {
    const keepAlive = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: m.connections };
    if (!m.guarded) return new undici.Agent({ ...keepAlive, connect: { timeout: m.connectTimeoutMs } });
    // Every new connection: the main thread checks a literal address, and resolves (and checks) a name;
    // the socket connects to the address it answered with.
    const connector = undici.buildConnector({
      timeout: m.connectTimeoutMs,
      lookup: ((hostname: string, options: unknown, callback: Callback) =>
        ask(m.agent, 'lookup', hostname, options, callback)) as unknown as undefined,
    });
    return new undici.Agent({
      ...keepAlive,
      connect: (opts, callback) => {
        ask(m.agent, 'refuse', opts.hostname, null, (err) => {
          if (err) callback(err, null);
          else connector(opts, callback);
        });
      },
    });
  };

  const request = (m: Extract<ToThread, { t: 'req' }>): void => {
    const agent = agents.get(m.agent);
    if (!agent) {
      post({
        t: 'error',
        id: m.id,
        error: { name: 'ClientDestroyedError', message: 'The client is destroyed', code: 'UND_ERR_DESTROYED' },
      });
      return;
    }
    const { id } = m;
    live.set(id, null);
    const done = (): void => {
      live.delete(id);
      aborted.delete(id);
    };
    agent.dispatch(
      {
        origin: m.origin,
        path: m.path,
        method: m.method as 'POST',
        headers: m.headers,
        body: m.body,
        headersTimeout: m.headersTimeout,
        bodyTimeout: m.bodyTimeout,
      },
      {
        onRequestStart(controller) {
          live.set(id, controller);
          if (aborted.delete(id)) controller.abort(new Error('aborted'));
        },
        onResponseStart(_c, status, headers, statusText) {
          post({ t: 'head', id, status, headers: headers as Record<string, string | string[] | undefined>, statusText });
        },
        onResponseData(_c, chunk) {
          post({ t: 'data', id, chunk });
        },
        onResponseEnd() {
          done();
          post({ t: 'end', id });
        },
        onResponseError(_c, err) {
          done();
          post({ t: 'error', id, error: pack(err) });
        },
      },
    );
  };

  port.on('message', (batch: ToThread[]) => {
    for (const m of batch) {
      switch (m.t) {
        case 'req':
          request(m);
          break;
        case 'abort': {
          // A request that already ended is gone; its answer is on its way and the main thread ignores it.
          if (!live.has(m.id)) break;
          const controller = live.get(m.id);
          if (controller) controller.abort(new Error('aborted'));
          else aborted.add(m.id);
          break;
        }
        case 'answer': {
          const callback = asks.get(m.ask);
          asks.delete(m.ask);
          callback?.(m.error ? unpack(m.error) : null, ...m.result);
          break;
        }
        case 'agent':
          agents.set(m.agent, createAgent(m));
          break;
        case 'drop': {
          const agent = agents.get(m.agent);
          agents.delete(m.agent);
          void agent?.close();
          break;
        }
      }
    }
  });
}
