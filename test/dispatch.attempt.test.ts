/**
 * The dispatcher's parts on their own, without a relay: one attempt (prepare -> call -> classify) against
 * a real loopback receiver, and the result buffer's write-and-retry against a real SQLite outbox whose
 * transactions are made to fail or wait.
 */
import { QueryTypes } from 'sequelize';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { attempt, targetHealth } from '../lib/dispatch/attempt.js';
import type { AttemptContext } from '../lib/dispatch/attempt.js';
import type { Claimed } from '../lib/dispatch/keyQueues.js';
import { ResultBuffer } from '../lib/dispatch/results.js';
import type { Database } from '../lib/db.js';
import { runMigrations } from '../lib/migrate.js';
import { relayMigrations } from '../lib/migrations/index.js';
import { exponentialBackoff } from '../lib/retry.js';
import type { TargetPlugin } from '../lib/target.js';
import { insertOutbox } from '../lib/sql/insertOutbox.js';
import type { StatusUpdate } from '../lib/sql/finishDeliveries.js';
import { createAgent } from '../lib/transport.js';
import { createTestDatabase } from './helpers/db.js';
import type { TestDatabase } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

let sink: Sink;
const agent = createAgent();
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink.close();
  await agent.close();
});

const rows = [
  { id: 1, endpoint_id: null, event: { id: 'e1', type: 'metric.submitted', deviceid: 'd', timestamp: 't', data: {} } },
] as unknown as Claimed[];
const plugin = (over: Partial<TargetPlugin> = {}): TargetPlugin => ({
  name: 'mentor',
  retry: exponentialBackoff({ retries: 3, baseMs: 1000 }),
  route: () => [{ endpointId: null }],
  prepare: () => ({ url: sink.url, headers: { 'content-type': 'application/json' }, body: '{}' }),
  ...over,
});
const ctx = (signal = new AbortController().signal): AttemptContext => ({ agent, requestTimeoutMs: 2000, signal });

describe('attempt', () => {
  it('a 2xx answer is a success that says the target is up', async () => {
    sink.respond(() => ({ status: 200, body: 'ok' }));
    const r = await attempt(plugin(), rows, false, ctx());
    expect(r).toMatchObject({ stage: 'response', statusCode: 200, verdict: 'success', error: null, released: false });
    expect(targetHealth(r)).toBe('up');
  });

  it('a 503 is a retry with its Retry-After, and releases the rows when it answered a probe', async () => {
    sink.respond(() => ({ status: 503, headers: { 'retry-after': '7' } }));
    const r = await attempt(plugin(), rows, true, ctx());
    expect(r).toMatchObject({ stage: 'response', verdict: 'retry', error: 'HTTP 503', retryAfterMs: 7000, released: true });
    expect(targetHealth(r)).toBe('down');
  });

  it('a refused prepare with permanent: true is permanent and sends nothing', async () => {
    const before = sink.requests.length;
    const refuse = () => {
      throw Object.assign(new Error('endpoint deleted'), { permanent: true });
    };
    const r = await attempt(plugin({ prepare: refuse }), rows, false, ctx());
    expect(r).toMatchObject({ stage: 'prepare', verdict: 'permanent', error: 'endpoint deleted', released: false });
    expect(targetHealth(r)).toBeNull();
    expect(sink.requests.length).toBe(before);
  });

  it('a connection error is a retry that says the target is down', async () => {
    const r = await attempt(plugin({ prepare: () => ({ url: 'http://127.0.0.1:1/', headers: {}, body: '' }) }), rows, false, ctx());
    expect(r).toMatchObject({ stage: 'call', verdict: 'retry', aborted: false, released: false });
    expect(targetHealth(r)).toBe('down');
  });

  it('our own abort releases the rows and says nothing of the target', async () => {
    sink.respond(() => 'hang');
    const ac = new AbortController();
    const p = attempt(plugin(), rows, false, ctx(ac.signal));
    await sink.waitFor(sink.requests.length + 1);
    ac.abort(new Error('dispatcher stopping'));
    const r = await p;
    expect(r).toMatchObject({ stage: 'call', aborted: true, released: true, error: 'aborted: dispatcher stopping' });
    expect(targetHealth(r)).toBeNull();
  });
});

describe('ResultBuffer', () => {
  // A real outbox; only `transaction` is wrapped, to fail or hold a write.
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
    await runMigrations(tdb.db, relayMigrations, 'relay_migrations');
    const deliveries = [1, 2, 3].map((n) => ({
      event: metricEvent(),
      target: 'mentor',
      endpointId: null,
      circuitKey: 'mentor',
      maxAttempts: 4,
      nextAttemptAt: n,
      lease: { owner: 'w', until: Date.now() + 60_000 },
    }));
    await tdb.db.transaction((t) =>
      insertOutbox(
        tdb.db.sequelize,
        deliveries.map((d) => d.event),
        deliveries,
        t,
      ),
    );
  });
  afterEach(() => tdb.drop());

  const withTransaction = (transaction: Database['transaction']): Database => ({ ...tdb.db, transaction });
  /** Each delivery's status and attempt count, by id. */
  const stored = async () =>
    (
      await tdb.db.sequelize.query<{ id: number; status: string; attempts: number }>(
        'SELECT id, status, attempts FROM relay_deliveries ORDER BY id',
        { type: QueryTypes.SELECT },
      )
    ).map((r) => `${r.id} ${r.status} ${r.attempts}`);
  const success = (id: number): StatusUpdate[] => [
    { ids: [id], status: 'succeeded', spent: 1, nextAttemptAt: null, statusCode: 200, error: null },
  ];

  it('writes buffered results once per interval and keeps them for another try when a write fails', async () => {
    let calls = 0;
    const db = withTransaction(async (fn) => {
      calls += 1;
      if (calls === 1) throw new Error('database is locked');
      return tdb.db.transaction(fn);
    });
    const reported: string[] = [];
    const buffer = new ResultBuffer({
      db,
      workerId: 'w',
      flushIntervalMs: 5,
      pollIntervalMs: 10,
      active: () => true,
      report: (_e, during) => reported.push(during),
    });
    buffer.add([], success(1));
    buffer.add([], success(2));
    expect(buffer.pending).toBe(2);
    // The first write fails; the buffer tries again on its own.
    await vi.waitFor(() => expect(calls).toBe(2), { timeout: 10_000 });
    await buffer.flush();
    expect(reported).toEqual(['flush']);
    expect(calls).toBe(2);
    expect(buffer.pending).toBe(0);
    // Each success counted once: the failed write left nothing, the retry wrote both.
    expect(await stored()).toEqual(['1 succeeded 1', '2 succeeded 1', '3 inflight 0']);
  });

  it('a flush resolves only when every buffered result is written, even while another flush is writing', async () => {
    let release: () => void = () => undefined;
    const first = new Promise<void>((r) => (release = r));
    let calls = 0;
    const db = withTransaction(async (fn) => {
      calls += 1;
      // The first write waits to be released; the second takes a while: stop() must not return before it ends.
      await (calls === 1 ? first : new Promise((r) => setTimeout(r, 20)));
      return tdb.db.transaction(fn);
    });
    const buffer = new ResultBuffer({
      db,
      workerId: 'w',
      flushIntervalMs: 5,
      pollIntervalMs: 10,
      active: () => true,
      report: () => undefined,
    });
    buffer.add([], success(1));
    const a = buffer.flush();
    buffer.add([], success(2));
    const b = buffer.flush();
    release();
    await b;
    expect(await stored()).toEqual(['1 succeeded 1', '2 succeeded 1', '3 inflight 0']);
    expect(buffer.pending).toBe(0);
    await a;
    // After close (the dispatcher stopped), nothing more is written: the database may be closing.
    buffer.close();
    buffer.add([], success(3));
    await buffer.flush();
    expect(await stored()).toEqual(['1 succeeded 1', '2 succeeded 1', '3 inflight 0']);
  });
});
