/**
 * The published shape: tsup builds ESM, CJS and type declarations for every subpath of the exports map,
 * both module systems load them, and the bin starts. Built into a temporary directory so the test never
 * touches dist/.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, existsSync, mkdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, { import: { types: string; default: string }; require: { types: string; default: string } } | string>;
  bin: Record<string, string>;
};

describe('published package', () => {
  let dir: string;
  beforeAll(() => {
    // A fake install: <dir>/node_modules/raqeem-relay with package.json and a fresh build, and the repo's
    // node_modules beside it for the runtime dependencies.
    dir = mkdtempSync(path.join(tmpdir(), 'relay-pkg-'));
    const installed = path.join(dir, 'node_modules', pkg.name);
    mkdirSync(installed, { recursive: true });
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', path.join(installed, 'dist'), '--no-dts'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
    cpSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
    for (const dep of ['express', 'undici', 'sequelize', 'pg', 'sqlite3', 'umzug', 'zod', 'pino', 'pino-http', 'prom-client', 'multer']) {
      const target = path.join(dir, 'node_modules', dep);
      if (!existsSync(target)) symlinkSync(path.join(ROOT, 'node_modules', dep), target);
    }
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');

  it.each(subpaths)('%s loads with import and require', (sub) => {
    const spec = sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`;
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(spec)}); console.log(Object.keys(m).length)`], { cwd: dir }).toString();
    const cjs = execFileSync(process.execPath, ['-e', `console.log(Object.keys(require(${JSON.stringify(spec)})).length)`], { cwd: dir }).toString();
    expect(Number(esm)).toBeGreaterThan(0);
    expect(Number(cjs)).toBe(Number(esm));
  });

  it('exports the documented entry points', () => {
    const keys = execFileSync(process.execPath, ['-e', `console.log(Object.keys(require('${pkg.name}')).join(','))`], { cwd: dir }).toString().trim().split(',');
    for (const name of ['createRelay', 'openDatabase', 'createEvent', 'DEVICE_EVENTS', 'generateSecret', 'sign', 'verify', 'managementRouter']) expect(keys).toContain(name);
    // Host configuration and logging live with the hosts (hosts/shared), not in the library entry.
    for (const name of ['loadConfig', 'ConfigError', 'FORWARD_TOGGLES', 'createLogger']) expect(keys).not.toContain(name);
    const signing = execFileSync(process.execPath, ['-e', `console.log(Object.keys(require('${pkg.name}/signing')).join(','))`], { cwd: dir }).toString();
    expect(signing).toContain('verify');
  });

  it('the bin prints its usage', () => {
    const bin = path.join(dir, 'node_modules', pkg.name, pkg.bin['raqeem-relay']!);
    const out = execFileSync(process.execPath, [bin, '--help'], { cwd: dir }).toString();
    expect(out).toContain('Usage: raqeem-relay');
  });
});
