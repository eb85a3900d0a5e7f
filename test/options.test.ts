/** resolveRelayOptions: every default in one place, every wrong option refused up front with its name. */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { Database } from '../lib/db.js';
import * as entry from '../lib/index.js';
import { defaultFailureThreshold, resolveDispatcherOptions, resolveRelayOptions } from '../lib/options.js';
import type { RelayOptions } from '../lib/options.js';
import { exponentialBackoff } from '../lib/retry.js';
import type { TargetPlugin } from '../lib/target.js';

// Resolving never touches the database: a stand-in with the one field the check looks at is enough.
const db = { sequelize: {}, dialect: 'sqlite' } as unknown as Database;
const target = (over: Partial<TargetPlugin> = {}): TargetPlugin => ({
  name: 'mentor',
  retry: exponentialBackoff({ retries: 3, baseMs: 1000 }),
  route: () => [{ endpointId: null }],
  prepare: () => ({ url: 'http://127.0.0.1:1/', headers: {}, body: '' }),
  ...over,
});
const resolve = (over: Partial<RelayOptions> = {}) => resolveRelayOptions({ db, targets: [target()], ...over });
const dispatcher = (o: RelayOptions['dispatcher']) => () => resolve({ dispatcher: o });

describe('resolveRelayOptions defaults', () => {
  it('fills in every library default', () => {
    const o = resolve();
    expect(o.dispatcher).toMatchObject({
      batchSize: 100,
      pollIntervalMs: 1000,
      claimIntervalMs: 10,
      flushIntervalMs: 10,
      requestTimeoutMs: 10_000,
      leaseMs: 50_000,
      concurrency: 8,
      queueDepth: 16,
    });
    expect(o.dispatcher.workerId).toMatch(/^dispatcher-[0-9a-f]{8}$/);
    expect(o).toMatchObject({
      migrate: true,
      listen: true,
      redriveOnRecovery: true,
      redriveWindowMs: 3_600_000,
      retentionDays: undefined,
      pruneIntervalMs: 3_600_000,
      stopTimeoutMs: 10_000,
      agent: undefined,
    });
    expect(o.registry).toBeInstanceOf(Registry);
    expect(o.circuitFor(target())).toEqual({ failureThreshold: 3, cooldownMs: 5_000, maxCooldownMs: 60_000 });
    expect(o.groupCommit).toEqual({ lanes: 4, openLaneAt: 32, maxCallers: 256, maxRows: 5_000 });
    // A key given as undefined keeps its default.
    expect(resolve({ groupCommit: { lanes: 2, openLaneAt: undefined } }).groupCommit).toEqual({
      lanes: 2,
      openLaneAt: 32,
      maxCallers: 256,
      maxRows: 5_000,
    });
  });

  it('derives the lease from the request timeout', () => {
    expect(resolveDispatcherOptions({ requestTimeoutMs: 2000 }).leaseMs).toBe(34_000);
  });

  it('opens a circuit before a total outage can exhaust attempts: min(5, attempts - 1), at least 1', () => {
    expect([1, 2, 4, 6, 9, 30].map(defaultFailureThreshold)).toEqual([1, 1, 3, 5, 5, 5]);
  });

  it('prefers a plugin circuit option over the relay-wide one, and that over the default', () => {
    const o = resolve({ circuit: { cooldownMs: 100 } });
    expect(o.circuitFor(target({ circuit: { maxCooldownMs: 900 } }))).toEqual({ failureThreshold: 3, cooldownMs: 100, maxCooldownMs: 900 });
    expect(o.circuitFor(undefined)).toEqual({ failureThreshold: 3, cooldownMs: 100, maxCooldownMs: 60_000 });
  });

  it('is exported from the raqeem-relay entry', () => {
    expect(entry.resolveRelayOptions).toBe(resolveRelayOptions);
  });

  it('resolves once: a resolved object passes through unchanged', () => {
    const o = resolve();
    expect(resolveRelayOptions(o)).toBe(o);
  });
});

describe('resolveRelayOptions refusals', () => {
  it('refuses a batch size that is not a whole number >= 1', () => {
    expect(dispatcher({ batchSize: 0 })).toThrow('batchSize must be a whole number >= 1 (got 0)');
    expect(dispatcher({ batchSize: 2.5 })).toThrow('batchSize must be a whole number >= 1 (got 2.5)');
  });

  it('refuses negative or non-finite intervals', () => {
    expect(dispatcher({ pollIntervalMs: 0 })).toThrow('pollIntervalMs must be a finite number of milliseconds > 0 (got 0)');
    expect(dispatcher({ claimIntervalMs: -1 })).toThrow('claimIntervalMs must be a finite number of milliseconds >= 0 (got -1)');
    expect(dispatcher({ flushIntervalMs: Infinity })).toThrow(
      'flushIntervalMs must be a finite number of milliseconds >= 0 (got Infinity)',
    );
    expect(dispatcher({ requestTimeoutMs: Number.NaN })).toThrow('requestTimeoutMs must be a finite number of milliseconds > 0 (got NaN)');
  });

  it('refuses a lease no longer than the request timeout', () => {
    expect(dispatcher({ requestTimeoutMs: 1000, leaseMs: 1000 })).toThrow('leaseMs (1000) must be longer than requestTimeoutMs (1000)');
  });

  it('refuses a queue depth or concurrency below 1, and an empty worker id', () => {
    expect(dispatcher({ queueDepth: 0 })).toThrow('queueDepth must be a whole number >= 1 (got 0)');
    expect(dispatcher({ concurrency: -2 })).toThrow('concurrency must be a whole number >= 1 (got -2)');
    expect(dispatcher({ workerId: '' })).toThrow('workerId must be a non-empty string (got "")');
  });

  it('refuses bad target names, duplicates and bad plugin limits', () => {
    expect(() => resolve({ targets: [target({ name: 'Mentor' })] })).toThrow('target plugin name "Mentor" must match');
    expect(() => resolve({ targets: [target(), target()] })).toThrow('two target plugins are named "mentor"');
    expect(() => resolve({ targets: [target({ concurrency: 0 })] })).toThrow(
      'target mentor: concurrency must be a whole number >= 1 (got 0)',
    );
    expect(() => resolve({ targets: [target({ batch: { maxSize: 0, key: () => null } })] })).toThrow(
      'target mentor: batch.maxSize must be',
    );
    expect(() => resolve({ targets: [target({ circuit: { failureThreshold: 0 } })] })).toThrow(
      'target mentor: circuit failureThreshold must be',
    );
    expect(() => resolve({ targets: undefined as unknown as TargetPlugin[] })).toThrow('targets must be an array');
  });

  it('refuses relay-level durations and a missing database', () => {
    expect(() => resolve({ retentionDays: 0 })).toThrow('retentionDays must be a finite number of days > 0 (got 0)');
    expect(() => resolve({ redriveWindowMs: -5 })).toThrow('redriveWindowMs must be');
    expect(() => resolve({ pruneIntervalMs: 0 })).toThrow('pruneIntervalMs must be');
    expect(() => resolve({ stopTimeoutMs: Number.NaN })).toThrow('stopTimeoutMs must be');
    expect(() => resolve({ circuit: { cooldownMs: -1 } })).toThrow('circuit cooldownMs must be');
    expect(() => resolve({ groupCommit: { openLaneAt: 0 } })).toThrow('groupCommit openLaneAt must be a whole number >= 1 (got 0)');
    expect(() => resolveRelayOptions({ targets: [] } as unknown as RelayOptions)).toThrow('db must be a database from openDatabase()');
  });
});
