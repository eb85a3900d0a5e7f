/**
 * Outbound HTTP through undici: one keep-alive Agent, a hard per-request timeout, redirects never followed
 * (undici's `request` does not follow them unless told to), and only the first 4 KiB of a response kept.
 */
import { Agent, request } from 'undici';
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
 * One AbortController and one timer per request, instead of `AbortSignal.any([signal,
 * AbortSignal.timeout()])`: `any` registers weakly-held dependants on the long-lived dispatcher signal
 * that are only swept by the collector, and showed up in profiles of a forwarding host. The abort reasons
 * are the same as before (a TimeoutError DOMException, or the dispatcher signal's own reason).
 */
export async function send(agent: Dispatcher, req: OutboundRequest, timeoutMs: number, signal?: AbortSignal): Promise<OutboundResponse> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
  timer.unref();
  const onAbort = () => controller.abort(signal!.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await request(req.url, {
      method: req.method ?? 'POST',
      headers: req.headers,
      body: req.body,
      dispatcher: req.dispatcher ?? agent,
      signal: controller.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const body = await readCapped(res.body, RESPONSE_BODY_LIMIT);
    return { statusCode: res.statusCode, headers: res.headers, body };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (size < limit) chunks.push(buf.subarray(0, limit - size));
      size += buf.length;
      // Past the cap we keep reading (and discarding) a little so the connection can be reused; a huge body
      // is cut off instead.
      if (size > 64 * 1024) {
        body.destroy();
        break;
      }
    }
  } catch {
    // A body that fails mid-stream still leaves us a status code; the prefix read so far is enough.
  }
  return Buffer.concat(chunks).toString('utf8');
}
