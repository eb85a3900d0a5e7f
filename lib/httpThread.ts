/**
 * Outbound HTTP on a thread of its own. A devices host that forwards is bound by its main thread: ingest,
 * the outbox and the dispatcher's bookkeeping all run there, and a CPU profile of a forwarding host (issue
 * 10, SQLite, 400 records/s) put a third of what forwarding adds into undici and the socket writes of its
 * requests (`writev` alone 91 us per record). `ThreadAgent` is an undici `Dispatcher` whose requests run in
 * one worker thread shared by every ThreadAgent of the process: the main thread hands over the request
 * (method, path, headers, body) and gets back the status, headers and body; what crosses is batched per turn
 * of each thread's loop, so a burst of requests costs one message each way.
 *
 * What stays on the main thread: the caller's handler, timeouts and aborts (`send()` is unchanged), and the
 * connection guard. A guarded agent (the webhooks' SSRF check) asks the main thread, for every new
 * connection, whether a literal address is allowed (`refuse`) and to resolve a name (`lookup`); the socket
 * connects to the address that was checked, as with an in-thread guarded Agent.
 *
 * Only handlers of undici 7's dispatch API are taken (`onRequestStart`, `onResponseStart`, ...; what
 * `send()` uses); `pause()` does nothing (bodies are small and capped by their reader). If the thread dies,
 * every request in flight fails with an error and the next request starts a new thread.
 */
import { createRequire } from 'node:module';
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Dispatcher, errors } from 'undici';
import { httpThreadMain } from './httpThreadWorker.js';
import type { FromThread, PackedError, ToThread } from './httpThreadWorker.js';

/** Options of {@link ThreadAgent}. */
export interface ThreadAgentOptions {
  /** Sockets per origin (32). */
  connections?: number;
  /** Connect timeout (10 s). */
  connectTimeoutMs?: number;
  /**
   * A guard, run on the main thread before each new connection to a literal IP address: an error refuses
   * the connection. Giving `refuse` or `lookup` makes the agent guarded.
   */
  refuse?: (hostname: string) => Error | null;
  /** Resolves names for new connections, on the main thread (`dns.lookup`'s signature; default `dns.lookup`). */
  lookup?: LookupFunction;
}

/**
 * Whether outbound HTTP should run on its own thread by default: only where there is a core for it. On one
 * core the thread would take its turns from the main thread and add its messages on top.
 */
export const httpThreadByDefault = (): boolean => availableParallelism() > 1;

const UNDICI = createRequire(import.meta.url).resolve('undici');
/**
 * The worker's script. It runs as CommonJS or as a module (a worker inherits `--input-type`), so it makes
 * its own `require` next to undici. esbuild's keepNames (tsx, vitest) wraps named functions in
 * `__name(...)`, a helper the worker does not have.
 */
const SOURCE = [
  'var __name = (f) => f;',
  `const undiciPath = ${JSON.stringify(UNDICI)};`,
  `(${httpThreadMain.toString()})(process.getBuiltinModule('node:module').createRequire(undiciPath), undiciPath);`,
].join('\n');

type Handler = Dispatcher.DispatchHandler;

/** One request in flight, and its controller as the caller's handler sees it. */
class ThreadCall implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  done = false;

  constructor(
    readonly id: number,
    readonly handler: Handler,
    readonly owner: ThreadAgent,
  ) {}

  abort(reason: Error): void {
    if (this.done) return;
    this.aborted = true;
    this.reason = reason;
    thread.end(this);
    thread.cancel(this.id);
    this.handler.onResponseError?.(this, reason);
  }

  pause(): void {}

  resume(): void {}
}

/** The one worker thread of the process, started on the first request and stopped with the last agent. */
class HttpThread {
  private worker: Worker | null = null;
  private out: ToThread[] = [];
  private nextId = 0;
  private readonly calls = new Map<number, ThreadCall>();
  readonly agents = new Map<number, ThreadAgent>();

  newId(): number {
    return ++this.nextId;
  }

  send(m: ToThread): void {
    if (!this.worker) this.start();
    if (this.out.length === 0) queueMicrotask(() => this.flush());
    this.out.push(m);
  }

  /** A new agent: the running thread learns of it now, a thread started later at its start. */
  register(agent: ThreadAgent): void {
    this.agents.set(agent.id, agent);
    if (this.worker) this.send(agent.registration);
  }

  /** Tell the thread to abort a request (a thread that is gone has nothing to abort). */
  cancel(id: number): void {
    if (this.worker) this.send({ t: 'abort', id });
  }

  begin(call: ThreadCall): void {
    if (this.calls.size === 0) this.worker?.ref();
    this.calls.set(call.id, call);
  }

  end(call: ThreadCall): void {
    call.done = true;
    call.owner.inflight.delete(call);
    this.calls.delete(call.id);
    if (this.calls.size === 0) this.worker?.unref();
    call.owner.settled();
  }

  /** End the thread as a crash would: what is in flight fails, the next request starts a new one. */
  async kill(): Promise<void> {
    await this.worker?.terminate();
  }

  /** The last agent is gone: stop the thread (its sockets go with it). */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.out = [];
    if (w) await w.terminate();
  }

  private start(): void {
    const w = new Worker(SOURCE, { eval: true, name: 'raqeem-relay http' });
    w.on('message', (batch: FromThread[]) => this.receive(batch));
    w.on('error', (err) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`the HTTP thread exited (code ${code})`)));
    if (this.calls.size === 0) w.unref();
    this.worker = w;
    this.out = [...this.agents.values()].map((a) => a.registration);
    if (this.out.length > 0) queueMicrotask(() => this.flush());
  }

  private flush(): void {
    const batch = this.out;
    this.out = [];
    if (batch.length > 0) this.worker?.postMessage(batch);
  }

  private lost(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = null;
    this.out = [];
    for (const call of [...this.calls.values()]) {
      this.end(call);
      call.handler.onResponseError?.(call, err);
    }
  }

  private receive(batch: FromThread[]): void {
    for (const m of batch) {
      if (m.t === 'ask') {
        this.answer(m);
        continue;
      }
      const call = this.calls.get(m.id);
      if (!call) continue; // aborted here already
      try {
        switch (m.t) {
          case 'head':
            call.handler.onResponseStart?.(call, m.status, m.headers, m.statusText);
            break;
          case 'data':
            call.handler.onResponseData?.(call, Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
            break;
          case 'end':
            this.end(call);
            call.handler.onResponseEnd?.(call, {});
            break;
          case 'error':
            this.end(call);
            call.handler.onResponseError?.(call, unpack(m.error));
            break;
        }
      } catch (err) {
        // As undici does with a handler that throws: the request ends with that error.
        call.abort(err as Error);
      }
    }
  }

  private answer(m: Extract<FromThread, { t: 'ask' }>): void {
    const reply = (error: unknown, result: unknown[]) =>
      this.send({ t: 'answer', ask: m.ask, error: error ? pack(error) : null, result: error ? [] : result });
    const agent = this.agents.get(m.agent);
    if (!agent) return reply(new errors.ClientDestroyedError(), []);
    try {
      if (m.what === 'refuse') return reply(agent.options.refuse?.(m.hostname) ?? null, []);
      const lookup = agent.options.lookup ?? (dnsLookup as unknown as LookupFunction);
      lookup(m.hostname, m.options as never, (err: unknown, ...result: unknown[]) => reply(err, result));
    } catch (err) {
      reply(err, []);
    }
  }
}

const thread = new HttpThread();

/**
 * Terminate the HTTP thread as if it had crashed (tests): every request in flight fails with an error and
 * the next request starts a new thread.
 * @internal
 */
export const killHttpThread = (): Promise<void> => thread.kill();

function pack(err: unknown): PackedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, code: typeof code === 'string' ? code : undefined };
}

function unpack(p: PackedError): Error {
  return Object.assign(new Error(p.message), { name: p.name, code: p.code });
}

/** Why a request cannot cross to the thread: its body and headers must be plain data. */
function unsendable(opts: Dispatcher.DispatchOptions): Error | null {
  const { body, headers } = opts;
  if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    return new errors.InvalidArgumentError('ThreadAgent sends a string or Buffer body only');
  }
  if (headers != null && (typeof headers !== 'object' || Array.isArray(headers) || Symbol.iterator in headers)) {
    return new errors.InvalidArgumentError('ThreadAgent takes headers as an object of strings');
  }
  return null;
}

/** A keep-alive agent whose connections and requests live on the HTTP thread (see the module's comment). */
export class ThreadAgent extends Dispatcher {
  readonly id = thread.newId();
  readonly inflight = new Set<ThreadCall>();
  readonly registration: Extract<ToThread, { t: 'agent' }>;
  private closing: Promise<void> | null = null;
  private idle: (() => void) | null = null;

  constructor(readonly options: ThreadAgentOptions = {}) {
    super();
    this.registration = {
      t: 'agent',
      agent: this.id,
      connections: options.connections ?? 32,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      guarded: Boolean(options.refuse ?? options.lookup),
    };
    thread.register(this);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    if (typeof handler.onRequestStart !== 'function') {
      throw new errors.InvalidArgumentError('ThreadAgent takes undici 7 dispatch handlers (onRequestStart, onResponseStart, ...)');
    }
    const call = new ThreadCall(thread.newId(), handler, this);
    const refused = this.closing ? new errors.ClientClosedError() : unsendable(opts);
    if (refused) {
      call.done = true;
      handler.onResponseError?.(call, refused);
      return false;
    }
    this.inflight.add(call);
    thread.begin(call);
    handler.onRequestStart(call, {});
    if (call.done) return true; // aborted at once
    thread.send({
      t: 'req',
      agent: this.id,
      id: call.id,
      origin: String(opts.origin),
      path: opts.path,
      method: opts.method,
      headers: opts.headers as Record<string, string>,
      body: (opts.body ?? null) as string | Uint8Array | null,
      headersTimeout: opts.headersTimeout ?? undefined,
      bodyTimeout: opts.bodyTimeout ?? undefined,
    });
    return true;
  }

  /** Wait for the requests in flight, then drop the agent (and the thread with the last one). */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.closing ??= (this.inflight.size === 0 ? Promise.resolve() : new Promise<void>((r) => (this.idle = r))).then(() => this.drop());
    if (callback) void this.closing.then(callback);
    else return this.closing;
  }

  /** Fail the requests in flight now, then drop the agent. */
  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(err?: Error | null | (() => void)): Promise<void> {
    const reason = err instanceof Error ? err : new errors.ClientDestroyedError();
    for (const call of [...this.inflight]) call.abort(reason);
    return this.close();
  }

  /** @internal */
  settled(): void {
    if (this.inflight.size === 0) this.idle?.();
  }

  private async drop(): Promise<void> {
    if (!thread.agents.delete(this.id)) return;
    if (thread.agents.size === 0) await thread.stop();
    else thread.send({ t: 'drop', agent: this.id });
  }
}
