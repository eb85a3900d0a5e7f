/**
 * The delivery console (devices host): the page and its assets under `/console`, the session routes that
 * exchange the admin token or a portal link for an HttpOnly cookie, and `POST /webhooks/{id}/portal-link`
 * (a management API extension). Everything the page shows comes from the public management API.
 */
import express from 'express';
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import type { ManagementExtension } from '../../lib/http/management.js';
import { jsonObject, noStore, optionalJson } from '../../lib/http/management/common.js';
import { checkCsrf, sessionOf } from '../../lib/http/principal.js';
import { HttpProblem, notFound, parseOr422, requireJson } from '../../lib/http/problem.js';
import type { RouteDoc } from '../../lib/http/openapi.js';
import { PORTAL_MAX_TTL_SECONDS, SESSION_COOKIE } from '../../lib/http/session.js';
import type { ConsoleSession, ConsoleSessions } from '../../lib/http/session.js';
import { safeString } from '../../lib/http/strings.js';
import type { Logger } from '../../lib/logger.js';
import type { WebhooksPlugin } from '../../plugins/webhooks/index.js';
import { withCsp } from '../shared/app.js';
import { consoleAssets } from './assets.js';

/** The page loads its own script and style and talks to its own origin; nothing inline, nothing else. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>raqeem-relay console</title>
<link rel="stylesheet" href="/console/assets/app.css">
<script type="module" src="/console/assets/app.js"></script>
</head>
<body>
<div id="app"><noscript>The console needs JavaScript.</noscript></div>
</body>
</html>
`;

export const sessionBody = jsonObject({
  token: safeString(512).min(1).optional(),
  portal_token: safeString(2048).min(1).optional(),
}).refine((b) => (b.token === undefined) !== (b.portal_token === undefined), {
  message: 'send exactly one of token (the admin token) or portal_token (from a portal link)',
  path: ['token'],
});

export const portalLinkBody = jsonObject({
  ttl_seconds: z
    .number({ error: `must be a whole number of seconds from 60 to ${PORTAL_MAX_TTL_SECONDS}` })
    .int(`must be a whole number of seconds from 60 to ${PORTAL_MAX_TTL_SECONDS}`)
    .min(60, `must be a whole number of seconds from 60 to ${PORTAL_MAX_TTL_SECONDS}`)
    .max(PORTAL_MAX_TTL_SECONDS, `must be a whole number of seconds from 60 to ${PORTAL_MAX_TTL_SECONDS}`)
    .optional(),
});

export const sessionSchema = z.object({
  kind: z.enum(['admin', 'portal']),
  endpoint_id: z.string().nullable().describe('The one endpoint a portal session may see'),
  csrf_token: z.string().describe('Send it as X-CSRF-Token on every change made with this session'),
  expires_at: z.string(),
});

function describeSession(s: ConsoleSession): z.infer<typeof sessionSchema> {
  return {
    kind: s.principal.kind,
    endpoint_id: s.principal.kind === 'portal' ? s.principal.endpointId : null,
    csrf_token: s.csrf,
    expires_at: new Date(s.expiresAt).toISOString(),
  };
}

function setCookie(req: Request, res: Response, value: string, maxAgeSeconds: number): void {
  // Secure whenever the request came over TLS (directly, or through a proxy the app trusts).
  const parts = [`${SESSION_COOKIE}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (req.secure) parts.push('Secure');
  res.append('Set-Cookie', parts.join('; '));
}

export interface ConsoleOptions {
  sessions: ConsoleSessions;
  webhooks: WebhooksPlugin;
  logger: Logger;
}

/** `/console` (page, assets, session): mount at the app's root, before the 404. */
export function consoleRouter({ sessions, webhooks, logger }: ConsoleOptions): Router {
  const router = express.Router();
  const disabled = () => new HttpProblem(503, 'The console is disabled: set RELAY_ADMIN_TOKEN to enable it');

  const page = (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(INDEX_HTML);
  };
  router.get(['/console', '/console/', '/console/portal'], withCsp(CONSOLE_CSP), page);

  router.get('/console/assets/:file', async (req, res) => {
    const file = req.params.file;
    if (file !== 'app.js' && file !== 'app.css') throw notFound(`No console asset ${JSON.stringify(file.slice(0, 80))}`);
    const assets = await consoleAssets();
    res.setHeader('Cache-Control', 'no-cache');
    res.type(file === 'app.js' ? 'text/javascript' : 'text/css').send(assets[file]);
  });

  router.post('/console/session', requireJson, async (req, res) => {
    if (!sessions.enabled) throw disabled();
    const body = parseOr422(sessionBody, req.body);
    let session: ConsoleSession;
    if (body.token !== undefined) {
      if (!sessions.adminTokenMatches(body.token))
        throw new HttpProblem(401, 'That is not the admin token (RELAY_ADMIN_TOKEN)', [
          { path: 'token', message: 'is not the admin token' },
        ]);
      session = sessions.create({ kind: 'admin' });
      logger.info({ kind: 'admin' }, 'console session started');
    } else {
      const check = sessions.checkPortalToken(body.portal_token!);
      if (!check.ok) {
        const detail =
          check.reason === 'expired'
            ? `This portal link expired at ${new Date(check.expiresAt!).toISOString()}; ask for a new one`
            : 'This portal link is not valid: it was changed, cut short, or signed with another admin token';
        throw new HttpProblem(401, detail, [
          { path: 'portal_token', message: check.reason === 'expired' ? 'has expired' : 'is not valid' },
        ]);
      }
      if (!(await webhooks.get(check.endpointId)))
        throw new HttpProblem(401, `This portal link's webhook endpoint ${check.endpointId} no longer exists`, [
          { path: 'portal_token', message: 'names an endpoint that no longer exists' },
        ]);
      session = sessions.create({ kind: 'portal', endpointId: check.endpointId }, check.expiresAt);
      logger.info({ kind: 'portal', webhookId: check.endpointId }, `portal session started for webhook endpoint ${check.endpointId}`);
    }
    setCookie(req, res, session.id, Math.max(1, Math.floor((session.expiresAt - Date.now()) / 1000)));
    noStore(res).json(describeSession(session));
  });

  router.get('/console/session', (req, res) => {
    const session = sessionOf(req, sessions);
    if (!session) throw new HttpProblem(401, 'No console session: sign in with the admin token or open a portal link');
    noStore(res).json(describeSession(session));
  });

  router.delete('/console/session', (req, res) => {
    const session = sessionOf(req, sessions);
    if (session) {
      checkCsrf(req, session.csrf);
      sessions.end(session.id);
    }
    setCookie(req, res, '', 0);
    res.status(204).end();
  });

  return router;
}

/** `POST /webhooks/{id}/portal-link` (admin only: a portal session is refused by the management API's scope). */
export function portalLinkExtension({ sessions, webhooks, logger }: ConsoleOptions): ManagementExtension {
  const router = express.Router();
  router.post('/webhooks/:id/portal-link', optionalJson, async (req, res) => {
    const id = String(req.params.id);
    const body = parseOr422(portalLinkBody, req.body ?? {});
    if (!/^wh_[0-9A-Za-z]{1,64}$/.test(id) || !(await webhooks.get(id)))
      throw notFound(`No webhook endpoint ${JSON.stringify(id.slice(0, 80))}`);
    const { token, expiresAt } = sessions.portalToken(id, body.ttl_seconds ?? 3600);
    logger.info({ webhookId: id, expiresAt: new Date(expiresAt).toISOString() }, `portal link issued for webhook endpoint ${id}`);
    // The token travels in the fragment: browsers never send it to a server, so it stays out of access logs.
    noStore(res).json({
      url: `${req.protocol}://${req.get('host')}/console/portal#token=${token}`,
      expires_at: new Date(expiresAt).toISOString(),
    });
  });
  return {
    paths: ['/webhooks/:id/portal-link'],
    router,
    docs: [
      {
        method: 'post',
        path: '/webhooks/:id/portal-link',
        summary: 'A link that opens the console limited to this one endpoint (admin only)',
        params: { id: 'Webhook endpoint id (`wh_...`)' },
        body: portalLinkBody,
        responses: {
          '200': { description: 'The link', schema: z.object({ url: z.string(), expires_at: z.string() }) },
          '404': { description: 'Unknown id' },
          '422': { description: 'ttl_seconds out of range' },
        },
      },
    ],
  };
}

/** Descriptors of the session routes (mounted at the root, not under `/api/v1`). */
export const CONSOLE_ROUTES: RouteDoc[] = [
  {
    method: 'get',
    path: '/console/',
    summary: 'The delivery console (HTML page)',
    tags: ['console'],
    responses: { '200': { description: 'The page', contentType: 'text/html' } },
  },
  {
    method: 'post',
    path: '/console/session',
    summary: 'Exchange the admin token or a portal link token for a session cookie',
    tags: ['console'],
    body: sessionBody,
    responses: {
      '200': { description: 'Signed in; Set-Cookie carries the HttpOnly session', schema: sessionSchema },
      '401': { description: 'Wrong token, or an expired or altered portal link' },
      '503': { description: 'RELAY_ADMIN_TOKEN not configured' },
    },
  },
  {
    method: 'get',
    path: '/console/session',
    summary: 'The current session (and its CSRF token)',
    tags: ['console'],
    responses: { '200': { description: 'Session', schema: sessionSchema }, '401': { description: 'No live session' } },
  },
  {
    method: 'delete',
    path: '/console/session',
    summary: 'Sign out (needs X-CSRF-Token)',
    tags: ['console'],
    responses: { '204': { description: 'Signed out; the cookie is cleared' }, '403': { description: 'Missing or wrong X-CSRF-Token' } },
  },
];
