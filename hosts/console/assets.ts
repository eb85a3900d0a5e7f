/**
 * The console's static files: `app.js` (the Preact + htm page, bundled by esbuild) and `app.css`.
 * A build (`npm run build`) writes them to `dist/console/` and the installed package serves those. Run from
 * source (tests, `npm start` through tsx) the bundle is built in memory from `hosts/console/ui/` on first
 * use instead, so it can never be a stale copy of the sources.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Esbuild from 'esbuild';

export interface ConsoleAssets {
  'app.js': Buffer;
  'app.css': Buffer;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The UI sources, next to this file in the repository. */
export const UI_DIR = path.join(HERE, 'ui');
const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** Bundle the UI with esbuild (a build-time tool: only the repository and `npm run build` need it). */
export async function bundleConsole(): Promise<ConsoleAssets> {
  // A computed specifier, so the host's own bundle (tsup) leaves esbuild out rather than trying to inline it.
  const esbuild = 'esbuild';
  const { build } = (await import(esbuild)) as typeof Esbuild;
  const out = await build({
    entryPoints: [path.join(UI_DIR, 'main.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return { 'app.js': Buffer.from(out.outputFiles[0]!.contents), 'app.css': readFileSync(path.join(UI_DIR, 'app.css')) };
}

/** The built files of an installed package (`dist/console/`), next to the bundled host code. */
function builtAssets(): ConsoleAssets | undefined {
  for (const dir of [path.join(HERE, 'console'), path.join(HERE, '..', 'console')]) {
    if (existsSync(path.join(dir, 'app.js')))
      return { 'app.js': readFileSync(path.join(dir, 'app.js')), 'app.css': readFileSync(path.join(dir, 'app.css')) };
  }
  return undefined;
}

let loading: Promise<ConsoleAssets> | undefined;

/** The assets, loaded (or built) once per process. */
export function consoleAssets(): Promise<ConsoleAssets> {
  loading ??= (async () => {
    const built = FROM_SOURCE ? undefined : builtAssets();
    if (built) return built;
    if (!existsSync(path.join(UI_DIR, 'main.ts')))
      throw new Error('the console is not built: run `npm run build` (it writes dist/console/)');
    return bundleConsole();
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}
