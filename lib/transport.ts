/**
 * Outbound HTTP through undici: one keep-alive Agent, a hard per-request timeout, redirects never followed
 * (undici's `request` does not follow them unless told to), and only the first 4 KiB of a response kept.
 */
import { Agent, errors } from 'undici';
import type { Dispatcher } from 'undici';

/** Bytes of a response body kept for classification and the attempt log. */
export const RESPONSE_BODY_LIMIT = 4096;

/** A request a plugin's `prepare` builds. */
export interface OutboundRequest {
  url: string;
  method?: 'POST' | 'PUT' | 'PATCH';
  headers: Record<string, string>;
  body: string;
  /** A dispatcher of the plugin's own (the webhook plugin pins resolved addresses with one). */
  dispatcher?: Dispatcher;
}

/** A response as `classify` sees it. */
export interface OutboundResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** First 4 KiB, as text. */
  body: string;
}

/** A keep-alive undici Agent for outbound requests (the relay creates one unless given `agent`). */
export function createAgent(o: { connections?: number; connectTimeoutMs?: number } = {}): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: o.connections ?? 32,
    connect: { timeout: o.connectTimeoutMs ?? 10_000 },
  });
}

/**
 * Send one request; throws on connection errors and timeouts, returns any HTTP status.
 *
 * Through undici's `dispatch()` with a handler that keeps the capped body itself, rather than `request()`:
 * `request()` builds an AsyncResource, a Readable body and (for our hard timeout) an AbortController per
 * request, and reading that body takes an async iterator; on a forwarding host these were most of what
 * undici cost per record (CPU profile at 300 records/s: undici 494 ms of 3,420 ms per 4,500 records).
 * What a caller sees is what `request()` gave: the same status, headers (`parseHeaders`), capped body and
 * rejections: a TimeoutError DOMException after `timeoutMs` (a hard deadline, connect and queueing
 * included: the lease of the rows being sent relies on it), the signal's own reason when it aborts. A
 * failure once the headers are in still returns the status and the prefix read so far.
 */
export function send(agent: Dispatcher, req: OutboundRequest, timeoutMs: number, signal?: AbortSignal): Promise<OutboundResponse> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let url: URL;
    try {
      url = parseUrl(req.url);
    } catch (err) {
      reject(err);
      return;
    }
    const call = new Call(resolve, reject, timeoutMs, signal);
    (req.dispatcher ?? agent).dispatch(
      {
        origin: url.origin,
        path: url.search ? `${url.pathname}${url.search}` : url.pathname,
        method: req.method ?? 'POST',
        headers: req.headers,
        body: req.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      call,
    );
  });
}

/** Past the cap we keep reading (and discarding) a little so the connection can be reused; a huge body is cut off instead. */
const CUT_OFF_BYTES = 64 * 1024;

/** As `request()` parses a URL string (same checks, same messages). */
function parseUrl(s: string): URL {
  const url = new URL(s);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new errors.InvalidArgumentError('Invalid URL protocol: the URL must start with `http:` or `https:`.');
  }
  return url;
}

/**
 * One request in flight: an undici dispatch handler that settles the caller's promise once. Settled on the
 * end of the body, on the cut-off, or on an error (before the headers: a rejection; after: the response so far).
 */
class Call implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private readonly timer: NodeJS.Timeout;
  private response: { statusCode: number; headers: OutboundResponse['headers'] } | null = null;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  /** Why the call was aborted before undici started it. */
  private reason: unknown = undefined;

  constructor(
    private readonly resolve: (r: OutboundResponse) => void,
    private readonly reject: (err: unknown) => void,
    timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(() => this.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
    this.timer.unref();
    if (signal) watch(signal, this);
  }

  /**
   * End the call with `reason`. Before undici has started it (it may wait in the pool's queue) the caller
   * is answered now and undici aborts it when it starts, before anything is written.
   */
  abort(reason: unknown): void {
    if (this.controller) {
      this.controller.abort(reason as Error);
      return;
    }
    this.reason ??= reason;
    this.settle(() => this.reject(reason));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.reason !== undefined) controller.abort(this.reason as Error);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: OutboundResponse['headers']): void {
    // 1xx answers are interim; the final one follows.
    if (statusCode >= 200) this.response = { statusCode, headers };
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.size < RESPONSE_BODY_LIMIT) this.chunks.push(chunk.subarray(0, RESPONSE_BODY_LIMIT - this.size));
    this.size += chunk.length;
    if (this.size > CUT_OFF_BYTES) {
      this.finish();
      controller.abort(new Error('response body cut off'));
    }
  }

  onResponseEnd(): void {
    this.finish();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    // A body that fails mid-stream still leaves us a status code; the prefix read so far is enough.
    if (this.response) this.finish();
    else this.settle(() => this.reject(err));
  }

  private finish(): void {
    const { statusCode, headers } = this.response!;
    this.settle(() => this.resolve({ statusCode, headers, body: Buffer.concat(this.chunks).toString('utf8') }));
  }

  private settle(fn: () => void): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.signal) unwatch(this.signal, this);
    fn();
  }
}

/**
 * The calls in flight per caller signal. A dispatcher passes the same long-lived signal to every request;
 * one listener on it aborts them all, instead of an EventTarget listener added and removed per request.
 */
const watched = new WeakMap<AbortSignal, Set<Call>>();

function watch(signal: AbortSignal, call: Call): void {
  let calls = watched.get(signal);
  if (!calls) {
    const set = new Set<Call>();
    calls = set;
    watched.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        for (const c of [...set]) c.abort(signal.reason);
      },
      { once: true },
    );
  }
  calls.add(call);
}

function unwatch(signal: AbortSignal, call: Call): void {
  watched.get(signal)?.delete(call);
}
