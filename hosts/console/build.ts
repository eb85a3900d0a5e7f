/** `npm run build` step: write the console bundle to `dist/console/` (served by the installed package). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleConsole } from './assets.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = path.join(root, 'dist', 'console');
mkdirSync(out, { recursive: true });
const assets = await bundleConsole();
for (const [name, bytes] of Object.entries(assets)) writeFileSync(path.join(out, name), bytes);
console.log(
  `console written to ${path.relative(root, out)}/ (${Object.entries(assets)
    .map(([n, b]) => `${n} ${b.length} B`)
    .join(', ')})`,
);
