/**
 * The delivery console: signs in (admin token, or a portal link's token from the address bar's fragment,
 * removed at once), then routes by the hash to the overview, endpoints, delivery log and event catalogue.
 * A portal session sees its one endpoint and its deliveries only. Everything comes from the management API.
 */
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, bindSession } from './api.js';
import type { Session } from './api.js';
import { Catalogue } from './catalogue.js';
import { DeliveryLog, DeliveryPage } from './deliveries.js';
import { EndpointPage, Endpoints } from './endpoints.js';
import { Overview } from './overview.js';
import { ErrorNotice, Notice, toApiError, useRoute } from './util.js';

type Boot =
  | { state: 'loading' }
  | { state: 'signed-out'; notice?: string }
  | { state: 'portal-refused'; error: ApiError }
  | { state: 'in'; session: Session };

/** A portal link's token, taken out of the address bar before anything else happens. */
function takePortalToken(): string | undefined {
  const m = /^#token=([A-Za-z0-9._-]+)$/.exec(location.hash);
  if (!m) return undefined;
  history.replaceState(null, '', '/console/#/');
  return m[1];
}

function SignIn({ onSignedIn, notice }: { onSignedIn(s: Session): void; notice?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await api<Session>('POST', '/console/session', { token }));
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="card signin-card" onSubmit=${submit} aria-labelledby="signin-title">
      <div class="brand brand-large"><span class="brand-mark" aria-hidden="true"></span> raqeem-relay</div>
      <h1 id="signin-title">Sign in to the delivery console</h1>
      <p class="muted">
        Paste the admin token (<code>RELAY_ADMIN_TOKEN</code>). It is exchanged once for a session cookie and is not kept by this page.
      </p>
      ${notice && html`<${Notice}>${notice}<//>`}
      <label for="token">Admin token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="current-password"
        required
        value=${token}
        onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)}
        aria-describedby=${error ? 'signin-error' : undefined}
      />
      ${error &&
      html`<div id="signin-error">
        <${ErrorNotice}
          error=${error.status === 401
            ? new ApiError(401, 'That token is not the admin token. Check RELAY_ADMIN_TOKEN and try again.')
            : error}
        />
      </div>`}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}

function PortalRefused({ error }: { error: ApiError }) {
  const expired = /expired/.test(error.detail);
  return html`<main class="signin" id="main">
    <div class="card signin-card">
      <div class="brand brand-large"><span class="brand-mark" aria-hidden="true"></span> raqeem-relay</div>
      <h1>${expired ? 'This portal link has expired' : 'This portal link cannot be used'}</h1>
      <${Notice} kind="error">${error.detail}<//>
      <p class="muted">Ask the relay's operator for a new link.</p>
    </div>
  </main>`;
}

function Shell({ session, onSignOut }: { session: Session; onSignOut(): void }) {
  const route = useRoute();
  const portal = session.kind === 'portal';
  const [section = portal ? 'endpoints' : 'overview', id] = route.path;
  const nav = portal
    ? [
        { key: 'endpoints', label: 'Endpoint', href: `#/endpoints/${session.endpoint_id}` },
        { key: 'deliveries', label: 'Deliveries', href: '#/deliveries' },
      ]
    : [
        { key: 'overview', label: 'Overview', href: '#/' },
        { key: 'endpoints', label: 'Endpoints', href: '#/endpoints' },
        { key: 'deliveries', label: 'Deliveries', href: '#/deliveries' },
        { key: 'catalogue', label: 'Event catalogue', href: '#/catalogue' },
      ];
  useEffect(() => {
    const label = nav.find((n) => n.key === section)?.label ?? 'Console';
    document.title = `${label} · raqeem-relay`;
  }, [section]);
  const signOut = async () => {
    await api('DELETE', '/console/session').catch(() => undefined);
    onSignOut();
  };
  let page;
  if (section === 'overview' && !portal) page = html`<${Overview} />`;
  // Keyed by id: another endpoint's page starts with its own form state and no notices of the last one.
  else if (section === 'endpoints' && id) page = html`<${EndpointPage} key=${id} id=${id} session=${session} />`;
  else if (section === 'endpoints' && !portal) page = html`<${Endpoints} />`;
  else if (section === 'endpoints') page = html`<${EndpointPage} id=${session.endpoint_id!} session=${session} />`;
  else if (section === 'deliveries' && id) page = html`<${DeliveryPage} id=${id} session=${session} />`;
  else if (section === 'deliveries') page = html`<${DeliveryLog} params=${route.params} session=${session} />`;
  else if (section === 'catalogue' && !portal) page = html`<${Catalogue} />`;
  else page = html`<${Notice}>There is no such page. <a href="#/">Go to the start</a>.<//>`;
  return html`<a class="skip" href="#main" onClick=${(e: Event) => (e.preventDefault(), document.getElementById('main')?.focus())}
      >Skip to content</a
    >
    <header class="topbar">
      <div class="brand"><span class="brand-mark" aria-hidden="true"></span> raqeem-relay</div>
      <nav aria-label="Console">
        <ul>
          ${nav.map((n) => html`<li><a href=${n.href} aria-current=${n.key === section ? 'page' : undefined}>${n.label}</a></li>`)}
        </ul>
      </nav>
      <div class="who">
        <span class=${portal ? 'pill pill-portal' : 'pill'}>${portal ? `Portal · ${session.endpoint_id}` : 'Operator'}</span>
        <button type="button" class="ghost" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main" tabindex="-1">${page}</main>`;
}

function App() {
  const [boot, setBoot] = useState<Boot>({ state: 'loading' });
  const signedOut = (notice?: string) => setBoot({ state: 'signed-out', notice });
  useEffect(() => {
    const portalToken = takePortalToken();
    (async () => {
      if (portalToken) {
        try {
          setBoot({ state: 'in', session: await api<Session>('POST', '/console/session', { portal_token: portalToken }) });
        } catch (err) {
          setBoot({ state: 'portal-refused', error: toApiError(err) });
        }
        return;
      }
      try {
        setBoot({ state: 'in', session: await api<Session>('GET', '/console/session') });
      } catch {
        signedOut();
      }
    })();
  }, []);
  const session = boot.state === 'in' ? boot.session : null;
  bindSession(session, () => signedOut('Your session has ended; sign in again.'));
  if (boot.state === 'loading') return html`<p class="loading" role="status">Loading…</p>`;
  if (boot.state === 'portal-refused') return html`<${PortalRefused} error=${boot.error} />`;
  if (boot.state === 'signed-out')
    return html`<${SignIn}
      notice=${boot.notice}
      onSignedIn=${(s: Session) => (history.replaceState(null, '', '/console/#/'), setBoot({ state: 'in', session: s }))}
    />`;
  return html`<${Shell} session=${boot.session} onSignOut=${() => signedOut('You are signed out.')} />`;
}

render(html`<${App} />`, document.getElementById('app')!);
