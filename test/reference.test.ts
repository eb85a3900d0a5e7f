/**
 * The API reference (`npm run docs:api`, TypeDoc over the published entry points, written to
 * docs/reference/) builds without a warning, and every exported name has a doc comment: typedoc.json sets
 * `validation.notDocumented` with `requiredToBeDocumented` and `treatWarningsAsErrors`, so an export
 * without one fails this test (as does a broken `{@link}` or an exported type referring to one that is not
 * exported). Validation only (`--emit none`): nothing is written.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT as ROOT } from './helpers/processes.js';

const run = promisify(execFile);
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('API reference', () => {
  it('covers every published entry point (the exports map and tsup agree with typedoc.json)', () => {
    const typedoc = JSON.parse(read('typedoc.json')) as { entryPoints: string[]; treatWarningsAsErrors: boolean };
    const tsupEntries = [...read('tsup.config.ts').matchAll(/^\s*'?([\w/]+)'?: '([\w/.]+\.ts)',$/gm)]
      .filter(([, name]) => name !== 'cli')
      .map(([, , source]) => source);
    expect(tsupEntries.length).toBeGreaterThanOrEqual(5);
    expect([...typedoc.entryPoints].sort()).toEqual(tsupEntries.sort());
    const pkg = JSON.parse(read('package.json')) as { exports: Record<string, unknown>; scripts: Record<string, string> };
    expect(Object.keys(pkg.exports).filter((k) => k !== './package.json')).toHaveLength(typedoc.entryPoints.length);
    expect(typedoc.treatWarningsAsErrors).toBe(true);
    expect(pkg.scripts['docs:api']).toBe('typedoc');
  });

  it('builds without warnings, with a doc comment on every exported name', async () => {
    const r = await run(process.execPath, [path.join(ROOT, 'node_modules/typedoc/bin/typedoc'), '--emit', 'none'], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((e: { stdout: string; stderr: string; code: number }) => e);
    const output = `${r.stdout}${r.stderr}`;
    expect(output.split('\n').filter((l) => /warning|error/i.test(l))).toEqual([]);
    expect('code' in r ? r.code : 0).toBe(0);
  }, 120_000);
});
