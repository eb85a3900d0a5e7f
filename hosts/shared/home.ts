/**
 * `GET /` on both hosts: in a browser (Accept prefers text/html) a small page linking the console (devices
 * host), the API reference and the OpenAPI document; otherwise a JSON index of the same links.
 * `GET /docs/api.md` serves the package's API reference as plain text, so the link works offline.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import { z } from 'zod';
import { HttpProblem } from '../../lib/http/problem.js';
import type { RouteDoc } from '../../lib/http/openapi.js';
import { withCsp } from './app.js';

export interface HomeLink {
  rel: string;
  href: string;
  title: string;
}

const STYLE = `body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;background:#f5f7fb}
main{max-width:40rem;margin:0 auto;padding:2.5rem 1.25rem}h1{font-size:1.5rem;margin:0 0 .25rem}p{color:#4a5468;margin:0 0 1.5rem}
ul{list-style:none;padding:0;margin:0;display:grid;gap:.75rem}a{display:block;padding:1rem 1.25rem;border-radius:.6rem;background:#fff;
border:1px solid #d8deea;color:#1a56db;text-decoration:none;font-weight:600}a:hover,a:focus-visible{border-color:#1a56db;outline:none;box-shadow:0 0 0 3px #c7d7fb}
small{display:block;color:#4a5468;font-weight:400}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');
/** The page loads nothing; its one inline style is allowed by hash, never with `unsafe-inline`. */
export const HOME_CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(service: string, links: readonly HomeLink[]): string {
  const items = links.map((l) => `<li><a href="${escape(l.href)}">${escape(l.title)}<small>${escape(l.href)}</small></a></li>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>raqeem-relay ${escape(service)} host</title><style>${STYLE}</style></head>
<body><main><h1>raqeem-relay ${escape(service)} host</h1><p>Durable forwarding of device telemetry and signed webhooks.</p><ul>${items}</ul></main></body></html>`;
}

/** The package's docs folder (beside `dist/` when installed, the repository's when run from source). */
function docsDir(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'docs', 'api.md'))) return path.join(dir, 'docs');
    dir = path.dirname(dir);
  }
  return undefined;
}

export function mountHome(app: Express, o: { service: string; console: boolean }): void {
  const links: HomeLink[] = [
    ...(o.console ? [{ rel: 'console', href: '/console/', title: 'Delivery console' }] : []),
    { rel: 'docs', href: '/docs/api.md', title: 'API reference' },
    { rel: 'openapi', href: '/openapi.json', title: 'OpenAPI document' },
    { rel: 'health', href: '/health', title: 'Health' },
    { rel: 'metrics', href: '/metrics', title: 'Prometheus metrics' },
  ];
  app.get('/', withCsp(HOME_CSP), (req, res) => {
    res.vary('Accept');
    if (req.accepts(['application/json', 'text/html']) === 'text/html') {
      res.type('html').send(page(o.service, links));
      return;
    }
    res.json({ service: o.service, links: Object.fromEntries(links.map((l) => [l.rel, l.href])) });
  });
  let doc: string | undefined;
  app.get('/docs/api.md', (_req, res) => {
    if (doc === undefined) {
      const dir = docsDir();
      if (!dir) throw new HttpProblem(404, 'The API reference (docs/api.md) is not installed with this build');
      doc = readFileSync(path.join(dir, 'api.md'), 'utf8');
    }
    res.type('text/plain; charset=utf-8').send(doc);
  });
}

/** Descriptors of `GET /` and `GET /docs/api.md`, for both hosts' OpenAPI documents. */
export const HOME_ROUTES: RouteDoc[] = [
  {
    method: 'get',
    path: '/',
    summary: 'Links to the console, the API reference and the OpenAPI document (HTML for browsers, else JSON)',
    tags: ['ops'],
    responses: {
      '200': {
        description: 'The index',
        schema: z.object({ service: z.string(), links: z.record(z.string(), z.string()) }),
      },
    },
  },
  {
    method: 'get',
    path: '/docs/api.md',
    summary: 'The API reference (Markdown, served as plain text)',
    tags: ['ops'],
    responses: { '200': { description: 'docs/api.md', contentType: 'text/plain' } },
  },
];
