/** Overview: ingest and delivery rates, queues, circuits and dead letters, polled every few seconds. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import type { ApiError, Stats } from './api.js';
import { ErrorNotice, fmtNumber, fmtTime, toApiError } from './util.js';

export const POLL_MS = 3000;
/** Samples kept for the chart: five minutes at one every three seconds. */
const KEEP = 100;

interface Sample {
  at: number;
  enqueued: number;
  delivered: number;
  failed: number;
}

function rate(samples: Sample[], key: 'enqueued' | 'delivered' | 'failed'): number | undefined {
  if (samples.length < 2) return undefined;
  const [a, b] = [samples[samples.length - 2]!, samples[samples.length - 1]!];
  const seconds = (b.at - a.at) / 1000;
  return seconds > 0 ? Math.max(0, (b[key] - a[key]) / seconds) : undefined;
}

/** Per-second rates between consecutive samples. */
function series(samples: Sample[], key: 'enqueued' | 'delivered' | 'failed'): number[] {
  const out: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const s = (samples[i]!.at - samples[i - 1]!.at) / 1000;
    out.push(s > 0 ? Math.max(0, (samples[i]![key] - samples[i - 1]![key]) / s) : 0);
  }
  return out;
}

function Chart({ samples }: { samples: Sample[] }) {
  const w = 600;
  const h = 140;
  const lines = [
    { key: 'enqueued' as const, label: 'Enqueued/s', cls: 'line-enqueued' },
    { key: 'delivered' as const, label: 'Delivered/s', cls: 'line-delivered' },
    { key: 'failed' as const, label: 'Failed attempts/s', cls: 'line-failed' },
  ];
  const data = lines.map((l) => ({ ...l, values: series(samples, l.key) }));
  const max = Math.max(1, ...data.flatMap((d) => d.values));
  // The x axis grows with the samples (at least a minute) up to the five minutes kept.
  const n = Math.max(20, ...data.map((d) => d.values.length));
  const points = (values: number[]) =>
    values.map((v, i) => `${((n - values.length + i) / (n - 1)) * w},${h - 4 - (v / max) * (h - 12)}`).join(' ');
  const summary = data.map((d) => `${d.label} now ${fmtNumber(d.values[d.values.length - 1] ?? 0, 1)}`).join(', ');
  return html`<figure class="chart">
    <svg
      viewBox=${`0 0 ${w} ${h}`}
      preserveAspectRatio="none"
      role="img"
      aria-label=${`Rates over the last minutes (peak ${fmtNumber(max, 1)}/s). ${summary}`}
    >
      ${[0.25, 0.5, 0.75].map((f) => html`<line class="grid" x1="0" x2=${w} y1=${h * f} y2=${h * f} />`)}
      ${data.map((d) => d.values.length > 1 && html`<polyline class=${d.cls} points=${points(d.values)} />`)}
    </svg>
    <figcaption>
      ${data.map((d) => html`<span class="legend"><span class=${`swatch ${d.cls}`} aria-hidden="true"></span>${d.label}</span>`)}
      <span class="muted">peak ${fmtNumber(max, 1)}/s · last ${Math.max(1, Math.round((n * POLL_MS) / 60000))} min</span>
    </figcaption>
  </figure>`;
}

export function Overview() {
  const [stats, setStats] = useState<Stats>();
  const [samples, setSamples] = useState<Sample[]>([]);
  const [error, setError] = useState<ApiError>();
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      try {
        const s = await api<Stats>('GET', '/api/v1/stats');
        if (!live) return;
        setStats(s);
        setError(undefined);
        setSamples((prev) =>
          [
            ...prev,
            { at: Date.parse(s.at), enqueued: s.totals.enqueued, delivered: s.totals.succeeded, failed: s.totals.failed_attempts },
          ].slice(-KEEP),
        );
      } catch (err) {
        if (live) setError(toApiError(err));
      }
      if (live) timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, []);
  const pending = stats?.queues.reduce((n, q) => n + q.pending, 0) ?? 0;
  const inflight = stats?.queues.reduce((n, q) => n + q.inflight, 0) ?? 0;
  const dead = stats?.queues.reduce((n, q) => n + q.dead, 0) ?? 0;
  const r = (key: 'enqueued' | 'delivered' | 'failed') => {
    const v = rate(samples, key);
    return v === undefined ? '…' : fmtNumber(v, 1);
  };
  const open = stats?.circuits.filter((c) => c.state !== 'closed') ?? [];
  return html`<div class="page-head">
      <h1>Overview</h1>
      <p class="muted" aria-live="polite">${stats ? `Live · updated ${fmtTime(stats.at)}` : 'Loading…'}</p>
    </div>
    <${ErrorNotice} error=${error} />
    <section class="kpis" aria-label="Key figures">
      <div class="kpi">
        <span class="kpi-label">Ingest</span><span class="kpi-value">${r('enqueued')}</span
        ><span class="kpi-unit">deliveries enqueued/s</span>
      </div>
      <div class="kpi">
        <span class="kpi-label">Delivered</span><span class="kpi-value">${r('delivered')}</span><span class="kpi-unit">per second</span>
      </div>
      <div class="kpi">
        <span class="kpi-label">Queue</span><span class="kpi-value">${fmtNumber(pending + inflight)}</span
        ><span class="kpi-unit">${fmtNumber(pending)} pending · ${fmtNumber(inflight)} in flight</span>
      </div>
      <a class=${dead > 0 ? 'kpi kpi-alert' : 'kpi'} href="#/deliveries?status=dead"
        ><span class="kpi-label">Dead letters</span><span class="kpi-value">${fmtNumber(dead)}</span
        ><span class="kpi-unit">open the dead-letter queue</span></a
      >
      <div class=${open.length > 0 ? 'kpi kpi-alert' : 'kpi'}>
        <span class="kpi-label">Circuits open</span><span class="kpi-value">${open.length}</span
        ><span class="kpi-unit">of ${stats?.circuits.length ?? 0} seen</span>
      </div>
    </section>
    <section class="card">
      <h2>Rates</h2>
      <${Chart} samples=${samples} />
    </section>
    <div class="two-col">
      <section class="card">
        <h2>Deliveries by status and target</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Target</th>
                <th scope="col" class="num">Pending</th>
                <th scope="col" class="num">In flight</th>
                <th scope="col" class="num">Dead</th>
              </tr>
            </thead>
            <tbody>
              ${stats?.queues.map(
                (q) =>
                  html`<tr>
                    <th scope="row"><a href=${`#/deliveries?target=${encodeURIComponent(q.target)}`}>${q.target}</a></th>
                    <td class="num">${fmtNumber(q.pending)}</td>
                    <td class="num">${fmtNumber(q.inflight)}</td>
                    <td class="num">
                      ${q.dead > 0
                        ? html`<a href=${`#/deliveries?status=dead&target=${encodeURIComponent(q.target)}`}>${fmtNumber(q.dead)}</a>`
                        : '0'}
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
        <p class="muted small">
          ${`Since this process started: ${fmtNumber(stats?.totals.succeeded ?? 0)} succeeded, ${fmtNumber(stats?.totals.failed_attempts ?? 0)} failed attempts, ${fmtNumber(stats?.totals.dead ?? 0)} dead.`}
        </p>
      </section>
      <section class="card">
        <h2>Circuits</h2>
        ${stats &&
        stats.circuits.length === 0 &&
        html`<p class="muted">No circuit has changed state since this process started: every target is healthy.</p>`}
        <ul class="circuits">
          ${stats?.circuits.map(
            (c) =>
              html`<li>
                <span class=${`dot dot-${c.state}`} aria-hidden="true"></span><code>${c.key}</code>
                <span class=${`badge badge-circuit-${c.state}`}>${c.state}</span>
              </li>`,
          )}
        </ul>
      </section>
    </div>`;
}
