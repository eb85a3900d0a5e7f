/**
 * `npm run bench [-- --scenario NAME[,NAME]] [--dialect sqlite|postgres] [--quick] [--no-docs | --docs-only]`
 *
 * Runs each scenario on SQLite and on PostgreSQL (a fresh database per scenario), prints the table,
 * merges the results into bench/results/latest.json and regenerates the tables in docs/performance.md.
 * Every process it starts listens on 127.0.0.1 and every load loop is bounded.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PG_ADMIN_URL } from '../test/helpers/db.js';
import { buildHosts, Workspace } from './lib/hosts.js';
import { loadResults, machine, printTable, saveResults, updateDoc } from './lib/report.js';
import type { Dialect, ScenarioResult } from './lib/report.js';
import { baseline } from './scenarios/baseline.js';
import { delivery } from './scenarios/delivery.js';
import { filters } from './scenarios/filters.js';
import { ingest, ingestMentor } from './scenarios/ingest.js';
import { isolation } from './scenarios/isolation.js';
import { latency } from './scenarios/latency.js';
import { memory } from './scenarios/memory.js';
import { sqliteSync } from './scenarios/sqliteSync.js';
import type { Scenario } from './scenarios/types.js';

const SCENARIOS: Scenario[] = [ingest, ingestMentor, delivery, isolation, memory, latency, baseline, filters, sqliteSync];

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', multiple: true },
    dialect: { type: 'string', multiple: true },
    quick: { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    'docs-only': { type: 'boolean', default: false },
  },
  strict: true,
});

const wanted = (values.scenario ?? [])
  .flatMap((s) => s.split(','))
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w));
if (unknown.length) {
  console.error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const scenarios = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
const dialects = (values.dialect ?? ['sqlite', 'postgres']).flatMap((d) => d.split(',')) as Dialect[];
if (dialects.some((d) => d !== 'sqlite' && d !== 'postgres')) {
  console.error('--dialect takes sqlite or postgres');
  process.exit(2);
}
const quick = values.quick ?? false;
if (values['docs-only']) {
  // Re-render docs/performance.md from bench/results/latest.json without running anything.
  const stored = loadResults();
  if (!stored) throw new Error('no bench/results/latest.json yet: run the benchmarks first');
  updateDoc(stored);
  printTable(stored.results);
  process.exit(0);
}
const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');

async function postgresVersion(): Promise<string> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await c.connect();
    const r = await c.query<{ server_version: string }>('SHOW server_version');
    return r.rows[0]?.server_version ?? 'unknown';
  } catch {
    return 'unreachable';
  } finally {
    await c.end().catch(() => undefined);
  }
}

// tsx source-maps every stack trace, and sequelize's SQLite driver reads one per query: the relay that runs
// in this process (delivery scenario) must not pay that, as no deployment does.
process.setSourceMapsEnabled(false);
console.log('building the hosts (tsup) ...');
buildHosts();

const results: ScenarioResult[] = [];
for (const scenario of scenarios) {
  for (const dialect of dialects) {
    if (scenario.dialects && !scenario.dialects.includes(dialect)) continue;
    const ws = new Workspace(dialect);
    const started = Date.now();
    const log = (m: string) => console.log(`[${scenario.name}/${dialect}] ${m}`);
    log(`starting${quick ? ' (quick)' : ''}`);
    let out;
    try {
      out = await scenario.run({ dialect, quick, ws, log });
    } catch (err) {
      log(`FAILED: ${(err as Error).stack ?? String(err)}`);
      out = {
        checks: [{ label: 'scenario ran', value: 0, goal: 'completes', met: false }],
        measured: { error: (err as Error).message.slice(0, 300) },
        notes: [],
      };
    } finally {
      await ws.cleanup().catch((e: unknown) => log(`cleanup failed: ${String(e)}`));
    }
    const r: ScenarioResult = {
      scenario: scenario.name,
      title: scenario.title,
      dialect,
      ...out,
      quick,
      at: new Date().toISOString(),
      command,
      durationSec: Math.round((Date.now() - started) / 1000),
    };
    results.push(r);
    printTable([r]);
  }
}

const file = saveResults(results, machine({ postgres: await postgresVersion() }));
console.log('All results in bench/results/latest.json:');
printTable(file.results);
if (!values['no-docs']) {
  updateDoc(file);
  console.log('docs/performance.md updated.');
}
