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

/** Source files (relative to the repository) bundled into an ESM entry and every chunk it imports, from the chunks' source maps. */
function bundledSources(distDir: string, entry: string): string[] {
  const seen = new Set<string>();
  const sources = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const map = `${file}.map`;
    if (existsSync(map))
      for (const s of (JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }).sources)
        sources.add(path.relative(ROOT, path.resolve(path.dirname(map), s)));
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.\.?\/[^"']+)["']/g))
      visit(path.resolve(path.dirname(file), m[1]!));
  };
  visit(path.join(distDir, entry));
  return [...sources];
}

describe('published package', () => {
  let dir: string;
  beforeAll(() => {
    // A fake install: <dir>/node_modules/raqeem-relay with package.json and a fresh build, and the repo's
    // node_modules beside it for the runtime dependencies.
    dir = mkdtempSync(path.join(tmpdir(), 'relay-pkg-'));
    const installed = path.join(dir, 'node_modules', pkg.name);
    mkdirSync(installed, { recursive: true });
    execFileSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', path.join(installed, 'dist'), '--no-dts'],
      {
        cwd: ROOT,
        stdio: 'pipe',
      },
    );
    cpSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
    // Every runtime dependency package.json declares (a hand-kept list missed helmet).
    for (const dep of Object.keys((pkg as { dependencies?: Record<string, string> }).dependencies ?? {})) {
      const target = path.join(dir, 'node_modules', dep);
      if (!existsSync(target)) symlinkSync(path.join(ROOT, 'node_modules', dep), target);
    }
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const exportsOf = (spec: string) =>
    execFileSync(process.execPath, ['-e', `console.log(Object.keys(require('${spec}')).join(','))`], { cwd: dir })
      .toString()
      .trim()
      .split(',');

  const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');

  it.each(subpaths)('%s loads with import and require', (sub) => {
    const spec = sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`;
    const esm = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(spec)}); console.log(Object.keys(m).length)`],
      { cwd: dir },
    ).toString();
    const cjs = execFileSync(process.execPath, ['-e', `console.log(Object.keys(require(${JSON.stringify(spec)})).length)`], {
      cwd: dir,
    }).toString();
    expect(Number(esm)).toBeGreaterThan(0);
    expect(Number(cjs)).toBe(Number(esm));
  });

  it('exports the documented entry points', () => {
    const keys = execFileSync(process.execPath, ['-e', `console.log(Object.keys(require('${pkg.name}')).join(','))`], { cwd: dir })
      .toString()
      .trim()
      .split(',');
    for (const name of [
      'createRelay',
      'openDatabase',
      'createEvent',
      'DEVICE_EVENTS',
      'generateSecret',
      'sign',
      'verify',
      'managementRouter',
    ])
      expect(keys).toContain(name);
    // Host configuration and logging live with the hosts (hosts/shared), not in the library entry.
    for (const name of ['loadConfig', 'ConfigError', 'FORWARD_TOGGLES', 'createLogger']) expect(keys).not.toContain(name);
    for (const name of ['managementRouter', 'managementDocs', 'requireAdminToken']) expect(keys).toContain(name);
    // The webhooks plugin's own pieces are published from its subpath only.
    const webhookOnly = [
      'webhooksTarget',
      'webhooksManagement',
      'checkWebhookUrl',
      'isPrivateAddress',
      'classifyAddress',
      'createGuardedLookup',
      'encryptSecret',
      'decryptSecret',
      'parseEncryptionKey',
      'WEBHOOK_SCHEDULE_MS',
    ];
    for (const name of webhookOnly) expect(keys).not.toContain(name);
    const webhooks = exportsOf(`${pkg.name}/plugins/webhooks`);
    for (const name of webhookOnly) expect(webhooks).toContain(name);
    // What a receiver imports to verify: sign/verify only, no encryption at rest.
    expect(exportsOf(`${pkg.name}/signing`).sort()).toEqual([
      'WebhookVerificationError',
      'generateSecret',
      'sign',
      'signHeaders',
      'verify',
    ]);
  });

  it.each([
    ['index.js', /^(plugins|hosts)\//],
    ['signing.js', /^(?!lib\/signing\.ts$)/],
  ])("the built %s loads no module it should not (its chunks' source maps name what they contain)", (entry, forbidden) => {
    const sources = bundledSources(path.join(dir, 'node_modules', pkg.name, 'dist'), entry);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((s) => forbidden.test(s))).toEqual([]);
  });

  it('the bin prints its usage', () => {
    const bin = path.join(dir, 'node_modules', pkg.name, pkg.bin['raqeem-relay']!);
    const out = execFileSync(process.execPath, [bin, '--help'], { cwd: dir }).toString();
    expect(out).toContain('Usage: raqeem-relay');
  });
});
