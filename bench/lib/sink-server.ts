/**
 * The benchmark sink: a minimal node:http receiver that answers 200 at once and counts what it got. It
 * runs in a process of its own (see `sink.ts`) so its CPU is not charged to the process under test.
 *
 * It understands the mentor's bodies (one record or an array of records) and keeps, per route, the count of
 * records and the set of marker values (`memory_total` of a metric, used by the loss scenarios to tell
 * which acknowledged records arrived). `GET /__stats` returns the counters; `POST /__reset` clears them;
 * `POST /__mode` switches between `ok` (answer 200), `hang` (accept, never answer) and `down` (refuse:
 * destroy the socket).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type SinkMode = 'ok' | 'hang' | 'down';

export interface SinkStats {
  requests: number;
  records: number;
  /** Records by path. */
  byPath: Record<string, number>;
  /** Distinct marker values seen (metrics' `memory_total`). */
  markers: number;
  /** Marker values seen more than once. */
  duplicateMarkers: number;
  /** First and last arrival (ms since epoch). */
  firstAt: number | null;
  lastAt: number | null;
}

export function createSinkServer(): http.Server {
  let mode: SinkMode = 'ok';
  let stats = fresh();
  let markers = new Set<number>();
  const hanging = new Set<http.ServerResponse>();

  function fresh() {
    return {
      requests: 0,
      records: 0,
      byPath: {} as Record<string, number>,
      duplicateMarkers: 0,
      firstAt: null as number | null,
      lastAt: null as number | null,
    };
  }

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/__')) return control(req, res, url);
    if (mode === 'down') {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'hang') {
        hanging.add(res);
        return;
      }
      count(url, Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
      res.end('{"ok":true}');
    });
  });

  function count(url: string, body: Buffer): void {
    const now = Date.now();
    stats.requests += 1;
    stats.firstAt ??= now;
    stats.lastAt = now;
    let records: unknown[] = [];
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      records = Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      records = [];
    }
    stats.records += records.length;
    const path = url.split('?')[0]!;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + records.length;
    for (const r of records) {
      const raw = (r as { memory_total?: unknown } | null)?.memory_total;
      // BIGINT columns come back from PostgreSQL as strings: the seed's ORM forwards them that way.
      const m = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof m === 'number') {
        if (markers.has(m)) stats.duplicateMarkers += 1;
        else markers.add(m);
      }
    }
  }

  function control(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url === '/__stats') return reply({ ...stats, markers: markers.size } satisfies SinkStats);
      if (url === '/__markers') return reply([...markers]);
      if (url === '/__reset') {
        stats = fresh();
        markers = new Set();
        return reply({ ok: true });
      }
      if (url.startsWith('/__mode/')) {
        mode = url.slice('/__mode/'.length) as SinkMode;
        if (mode !== 'hang') for (const r of hanging) r.socket?.destroy();
        if (mode !== 'hang') hanging.clear();
        return reply({ mode });
      }
      res.writeHead(404).end();
    });
  }

  return server;
}

// Run as a process: print the port on stdout, then serve until killed.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const server = createSinkServer();
  server.keepAliveTimeout = 60_000;
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}
