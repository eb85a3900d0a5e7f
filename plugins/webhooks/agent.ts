/**
 * The outbound HTTP agent for webhooks: keep-alive like the shared one, but every new connection goes
 * through the SSRF guard. Hostnames are resolved by the guarded lookup and the socket connects to the
 * address that was checked (nothing re-resolves in between); literal IPs, which `net.connect` never looks
 * up, are checked before connecting. Redirects are never followed: nothing here adds a redirect handler.
 */
import { Agent, buildConnector } from 'undici';
import type { Dispatcher } from 'undici';
import { checkLiteralDestination, createGuardedLookup } from './ssrf.js';
import type { SsrfPolicy } from './ssrf.js';

export interface GuardedAgentOptions {
  connectTimeoutMs?: number;
  /** Lower bound on the dispatcher's own timeout for headers and for body gaps. */
  requestTimeoutMs?: number;
  /** Sockets per origin. */
  connections?: number;
}

export interface GuardedAgent {
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

export function createGuardedAgent(policy: SsrfPolicy, o: GuardedAgentOptions = {}): GuardedAgent {
  const connectTimeoutMs = Math.min(o.connectTimeoutMs ?? 10_000, o.requestTimeoutMs ?? Infinity);
  const connector = buildConnector({ timeout: connectTimeoutMs, lookup: createGuardedLookup(policy) });
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: o.connections ?? 16,
    connect: (opts, callback) => {
      const refused = checkLiteralDestination(opts.hostname, policy);
      if (refused) {
        callback(refused, null);
        return;
      }
      connector(opts, callback);
    },
  });
  const timeout = o.requestTimeoutMs;
  const dispatcher =
    timeout === undefined
      ? agent
      : agent.compose(
          (dispatch) => (opts, handler) =>
            dispatch(
              {
                ...opts,
                headersTimeout: Math.min(opts.headersTimeout ?? timeout, timeout),
                bodyTimeout: Math.min(opts.bodyTimeout ?? timeout, timeout),
              },
              handler,
            ),
        );
  return { dispatcher, close: () => agent.close() };
}
