/**
 * docs/api.md cannot rot: every `METHOD /path` route it names (outside code blocks) must be served by the
 * host it belongs to, as that host's own `/openapi.json` describes it, and every served operation must be
 * named in the doc; every example request (`$ curl ...` / `$ signed ...`) must target a served route. The
 * hosts are the demo's (both on SQLite, wired together, with the management API), started in-process on
 * ephemeral ports. Each documented route is also sent one request to prove it is really mounted (an
 * unmatched route answers "Route not found: ..."). No timing assertions.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../hosts/demo.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');

type Host = 'devices' | 'mentor';
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const OPS = ['/', '/docs/api.md', '/health', '/health/live', '/health/ready', '/metrics', '/openapi.json'];
/** Ports the examples in docs/api.md were captured on (see its "How the examples were captured"). */
const EXAMPLE_PORTS: Record<string, Host> = { '30080': 'devices', '30092': 'devices', '30081': 'mentor', '30091': 'mentor' };

/** `/devices/{id}/{metrics,alerts}` -> both paths. */
function expandBraces(p: string): string[] {
  const m = /\{([^{}]*,[^{}]*)\}/.exec(p);
  if (!m) return [p];
  return m[1]!.split(',').flatMap((alt) => expandBraces(p.slice(0, m.index) + alt.trim() + p.slice(m.index + m[0].length)));
}

/** Parameter names do not matter: `/webhooks/{id}` and `/webhooks/{webhookid}` are one route. */
const normalize = (p: string) => p.replace(/\{[^}/]*\}/g, '{}').replace(/\/+$/, '') || '/';

const hostOf = (p: string): Host[] =>
  OPS.includes(p) ? ['devices', 'mentor'] : p.startsWith('/api/v1/') || p.startsWith('/console/') ? ['devices'] : ['mentor'];

interface DocRoute {
  method: string;
  path: string;
  host: Host;
}

/** Every `METHOD /path` in the prose and tables of the doc (fenced code blocks are examples, not claims). */
function documentedRoutes(): DocRoute[] {
  const prose = DOC.replace(/^```[\s\S]*?^```/gm, '');
  const found = new Map<string, DocRoute>();
  const re = new RegExp(`\\b(${METHODS.join('|')})\\s+(/[^\\s\`'"|)]*)`, 'g');
  for (const m of prose.matchAll(re)) {
    const raw = m[2]!.replace(/[?#].*$/, '').replace(/[.,:;]+$/, '');
    for (const p of expandBraces(raw)) {
      for (const host of hostOf(p)) found.set(`${host} ${m[1]} ${normalize(p)}`, { method: m[1]!, path: p, host });
    }
  }
  return [...found.values()];
}

interface Example {
  line: string;
  method: string;
  path: string;
  host: Host | undefined;
  /** The documented answer says no route matched (the 404 examples of unmatched routes). */
  unrouted: boolean;
}

/** The request line of every console example: its method, URL path and (by port) host. */
function exampleRequests(): Example[] {
  const out: Example[] = [];
  for (const block of DOC.matchAll(/^```console\n([\s\S]*?)^```/gm)) {
    const lines = block[1]!.split('\n');
    lines.forEach((line, i) => {
      const cmd = /^\$ (curl|signed)\s/.exec(line);
      if (!cmd) return;
      const next = lines.findIndex((l, j) => j > i && l.startsWith('$ '));
      const answer = lines.slice(i + 1, next === -1 ? undefined : next).join('\n');
      const url = /(?:https?:\/\/)?(?:localhost|127\.0\.0\.1):(\d+)(\/[^\s'"]*)/.exec(line);
      if (!url) throw new Error(`docs/api.md example without a localhost URL: ${line}`);
      const explicit = /\s-X\s+([A-Z]+)/.exec(line)?.[1];
      const method = explicit ?? (cmd[1] === 'signed' || /\s(-d|--data\S*|-F)\s/.test(line) ? 'POST' : 'GET');
      out.push({
        line,
        method,
        path: url[2]!.replace(/[?#].*$/, ''),
        host: EXAMPLE_PORTS[url[1]!],
        unrouted: answer.includes('Route not found:'),
      });
    });
  }
  return out;
}

interface Served {
  url: string;
  /** `METHOD /normalized/path` of every operation in the host's OpenAPI document. */
  operations: Set<string>;
  /** Templates as regexes, to match concrete example URLs. */
  templates: Array<{ method: string; re: RegExp; key: string }>;
}

const served: Partial<Record<Host, Served>> = {};
let adminToken = '';
let close: (() => Promise<void>) | undefined;
let dataDir = '';

async function describeHost(url: string): Promise<Served> {
  const res = await fetch(`${url}/openapi.json`);
  expect(res.status).toBe(200);
  const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
  const operations = new Set<string>();
  const templates: Served['templates'] = [];
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const key = `${method.toUpperCase()} ${normalize(p)}`;
      operations.add(key);
      const re = new RegExp(
        `^${normalize(p)
          .replace(/[.*+?^$()|[\]\\]/g, '\\$&')
          .replace(/\{\}/g, '[^/]+')}$`,
      );
      templates.push({ method: method.toUpperCase(), re, key });
    }
  }
  return { url, operations, templates };
}

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'relay-docs-api-'));
  const running = await runDemo({
    devicesPort: 0,
    mentorPort: 0,
    host: '127.0.0.1',
    env: { DATA_DIR: dataDir, LOG_LEVEL: 'silent' },
    out: new Writable({ write: (_chunk, _enc, done) => done() }),
  });
  close = running.close;
  adminToken = running.adminToken;
  const loopback = (u: string) => u.replace('//localhost:', '//127.0.0.1:');
  served.devices = await describeHost(loopback(running.devicesUrl));
  served.mentor = await describeHost(loopback(running.mentorUrl));
});

afterAll(async () => {
  await close?.();
  rmSync(dataDir, { recursive: true, force: true });
});

const routes = documentedRoutes();
const examples = exampleRequests();

describe('docs/api.md routes', () => {
  it('names routes of both hosts', () => {
    expect(routes.filter((r) => r.host === 'devices').length).toBeGreaterThan(20);
    expect(routes.filter((r) => r.host === 'mentor').length).toBeGreaterThan(10);
  });

  it.each(routes)('$host: $method $path is in the served OpenAPI document', ({ host, method, path: p }) => {
    expect([...served[host]!.operations], `${method} ${p} is documented but ${host} does not serve it`).toContain(
      `${method} ${normalize(p)}`,
    );
  });

  it.each(routes)('$host: $method $path is mounted', async ({ host, method, path: p }) => {
    // Dummy values for path parameters; the management API needs the token to get past authentication.
    const concrete = p.replace(/\{[^}/]*\}/g, 'doc-check-1');
    const res = await fetch(served[host]!.url + concrete, {
      method,
      headers: p.startsWith('/api/v1/') ? { authorization: `Bearer ${adminToken}` } : {},
    });
    const body = await res.text();
    // Only a problem answer can say "Route not found:" (GET /docs/api.md serves this page, which quotes it).
    const problem = /problem\+json/.test(res.headers.get('content-type') ?? '');
    expect(problem ? body : '', `${host} answered ${res.status} ${body}`).not.toMatch(/Route not found:/);
  });

  it.each(['devices', 'mentor'] as const)('every operation the %s host serves is documented', (host) => {
    const documented = new Set(routes.filter((r) => r.host === host).map((r) => `${r.method} ${normalize(r.path)}`));
    const missing = [...served[host]!.operations].filter((op) => !documented.has(op));
    expect(missing, `served by ${host} but not in docs/api.md`).toEqual([]);
  });
});

describe('docs/api.md examples', () => {
  it('has examples', () => {
    expect(examples.length).toBeGreaterThan(50);
  });

  it.each(examples)('$method $path targets a served route', ({ line, method, path: p, host, unrouted }) => {
    expect(host, `unknown example port in: ${line}`).toBeDefined();
    const match = served[host!]!.templates.find((t) => t.method === method && t.re.test(p));
    // The 404 examples of unmatched routes say so in their documented answer; they must really be unmatched.
    if (unrouted) expect(match, `${method} ${p} is documented as unmatched but ${host} serves ${match?.key}`).toBeUndefined();
    else expect(match, `${method} ${p} (${host}) matches no served route: ${line}`).toBeDefined();
  });
});
