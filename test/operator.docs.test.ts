/**
 * The runbook and the CLI page cannot rot (issue 17): every command they show parses (a known command, flags
 * that command takes, arguments it accepts), every environment variable they name is one the code reads, and
 * every metric they name is exported. Commands are checked against the CLI's own help texts, in process;
 * test/operator.cli.test.ts proves `--help` prints those texts. Error examples (a command whose output is
 * `raqeem-relay: ...`) are meant to fail and are skipped.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { HELP } from '../hosts/cliHelp.js';
import { RECONCILE_TYPES } from '../hosts/devices/reconcile.js';
import { CONFIG_VARIABLES } from '../hosts/shared/config.js';
import { createRelay } from '../lib/relay.js';
import { mentorTarget } from '../plugins/mentor.js';
import { createTestDatabase } from './helpers/db.js';
import type { TestDatabase } from './helpers/db.js';
import { REPO_ROOT } from './helpers/processes.js';

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const RUNBOOKS = ['docs/operations.md', 'docs/cli.md', 'README.md'];
const DOCS = [...RUNBOOKS, 'docs/configuration.md', 'docs/api.md'];

/** Lines inside fenced code blocks, each with the line after it (a console example's first output line). */
function codeLines(text: string): Array<{ line: string; next: string }> {
  const out: Array<{ line: string; next: string }> = [];
  let inCode = false;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    if (/^\s*```/.test(raw)) inCode = !inCode;
    else if (inCode) out.push({ line: raw.trim(), next: (lines[i + 1] ?? '').trim() });
  });
  return out;
}

interface DocCommand {
  file: string;
  text: string;
  command: string;
  args: string[];
}

/** `npx raqeem-relay X ...`, `npx tsx hosts/cli.ts X ...` and `npm start` in code blocks, with continuations joined. */
function cliCommands(file: string): DocCommand[] {
  const found: DocCommand[] = [];
  const entries = codeLines(read(file));
  for (let i = 0; i < entries.length; i++) {
    let { line } = entries[i]!;
    let next = entries[i]!.next;
    while (line.endsWith('\\') && i + 1 < entries.length) {
      i++;
      line = `${line.slice(0, -1)} ${entries[i]!.line}`;
      next = entries[i]!.next;
    }
    // `npm start` is `tsx hosts/cli.ts demo`.
    const shell = line.replace(/^\$\s+/, '').replace(/(^|\s)npm start(?=\s|$)/, '$1npm start demo');
    const m = /(?:^|[\s;(])(?:npx raqeem-relay|npx tsx hosts\/cli\.ts|npm start)((?:\s+[^\s|;)#]+)*)/.exec(shell);
    if (!m || line.startsWith('#') || line.startsWith('{') || line.startsWith('raqeem-relay:')) continue;
    // An error example: its output is the CLI's one-line complaint.
    if (next.startsWith('raqeem-relay:') && !next.includes('received, shutting down')) continue;
    const [command = '', ...args] = m[1]!.trim().split(/\s+/).filter(Boolean);
    if (!command) continue; // named in prose inside a block, e.g. the usage text's "(npm start)"
    found.push({ file, text: line, command, args });
  }
  return found;
}

const commands = RUNBOOKS.flatMap(cliCommands);

describe('commands in the runbook, the CLI page and the README', () => {
  it('are found (the docs show each command at least once)', () => {
    const shown = new Set(commands.map((c) => c.command));
    for (const command of Object.keys(HELP)) expect(shown, command).toContain(command);
  });

  it.each(commands.map((c) => [`${c.file}: ${c.text}`, c] as const))('%s parses', (_label, c) => {
    if (c.command === '--help') return;
    expect(Object.keys(HELP), c.text).toContain(c.command);
    const help = HELP[c.command]!;
    for (let i = 0; i < c.args.length; i++) {
      const arg = c.args[i]!;
      if (arg.startsWith('--')) {
        const flag = arg.split('=')[0]!;
        expect(help, `${c.text}: ${flag}`).toMatch(new RegExp(`${flag}\\b`));
        if (flag === '--types') {
          const value = arg.includes('=') ? arg.split('=')[1]! : c.args[++i]!;
          for (const t of value.split(',')) expect(RECONCILE_TYPES, c.text).toContain(t);
        } else if (flag === '--since') {
          expect(Number.isFinite(Date.parse(c.args[++i]!)), c.text).toBe(true);
        } else if (flag !== '--help' && !arg.includes('=')) i++;
      } else if (c.command === 'migrate') {
        expect(['devices', 'mentor'], c.text).toContain(arg);
      } else {
        throw new Error(`${c.text}: unexpected argument ${arg}`);
      }
    }
  });

  it('never use a bare `raqeem-relay` in a shell block of the runbook (it is not on PATH in a project)', () => {
    const bare = codeLines(read('docs/operations.md'))
      .map((e) => e.line)
      .filter((l) => !l.startsWith('#') && !l.startsWith('{') && /(^|[\s;])raqeem-relay\s+[a-z]/.test(l.replace(/npx raqeem-relay/g, '')));
    expect(bare).toEqual([]);
  });
});

/** Read by the CLI itself, by node, or by the test suite: real, but not `loadConfig`'s. */
const OTHER_VARIABLES = ['HOST', 'RELAY_HEAP_GROWING_PERCENT', 'TEST_DATABASE_URL', 'NODE_OPTIONS', 'MALLOC_ARENA_MAX'];
/** Upper-case words in the docs that are not variables: shell placeholders and a command name as Raqeem spells it. */
const NOT_VARIABLES = ['NEW_KEY', 'OLD_KEY', 'GET_INFO'];

describe('environment variables in the docs', () => {
  it.each(DOCS)('%s names only variables the code reads', (file) => {
    const named = new Set(read(file).match(/\b(?:[A-Z][A-Z0-9]*_)+[A-Z0-9]+\b/g) ?? []);
    const unknown = [...named].filter(
      (v) => !CONFIG_VARIABLES.includes(v) && !OTHER_VARIABLES.includes(v) && !NOT_VARIABLES.includes(v) && v !== 'DEVICE_EVENTS',
    );
    expect(unknown).toEqual([]);
  });

  it('configuration.md documents every variable loadConfig reads', () => {
    const doc = read('docs/configuration.md');
    const missing = CONFIG_VARIABLES.filter((v) => !doc.includes(`\`${v}\``));
    expect(missing).toEqual([]);
  });
});

describe('metrics in the docs', () => {
  let tdb: TestDatabase | undefined;
  afterAll(async () => {
    await tdb?.drop();
  });

  it('every forward_* metric named exists in the relay registry', async () => {
    tdb = await createTestDatabase('sqlite');
    const registry = new Registry();
    const relay = await createRelay({ db: tdb.db, targets: [mentorTarget({ url: 'http://127.0.0.1:9' })], registry, listen: false });
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    await relay.stop();
    const named = new Set(DOCS.flatMap((f) => read(f).match(/\bforward_[a-z_]+[a-z]\b/g) ?? []));
    expect(named.size).toBeGreaterThan(3);
    const unknown = [...named].filter((n) => !exported.has(n.replace(/_(bucket|sum|count)$/, '')));
    expect(unknown).toEqual([]);
  });
});
