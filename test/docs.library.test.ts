/**
 * Every TypeScript block in docs/library.md and the README is cut from a program in examples/ (which
 * test/examples.test.ts runs from the packed tarball), so the docs can only show code that runs. A block is
 * preceded by `<!-- example: examples/<file>.ts#<region> -->` (or no `#region` for the whole file) and
 * must equal the lines between `// #region <name>` and `// #endregion <name>`, dedented, with region
 * markers left out. After changing an example, paste the region back into the doc.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT as ROOT } from './helpers/processes.js';

const MARKER = /^\s*\/\/ #(end)?region\b/;

function dedent(lines: string[]): string[] {
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(Number.isFinite(indent) ? indent : 0));
}

/** The lines of `file` in region `name` (or the whole file), as the docs show them. */
function region(file: string, name: string | undefined): string {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  let picked: string[];
  if (name === undefined) picked = lines.filter((l) => !MARKER.test(l));
  else {
    const start = lines.findIndex((l) => l.trim() === `// #region ${name}`);
    const end = lines.findIndex((l) => l.trim() === `// #endregion ${name}`);
    if (start < 0 || end < start) throw new Error(`${file} has no region ${name}`);
    picked = dedent(lines.slice(start + 1, end).filter((l) => !MARKER.test(l)));
  }
  while (picked.length && picked[picked.length - 1]!.trim() === '') picked.pop();
  return picked.join('\n') + '\n';
}

interface Block {
  line: number;
  lang: string;
  code: string;
  source: { file: string; region: string | undefined } | null;
}

function blocks(doc: string): Block[] {
  const text = readFileSync(path.join(ROOT, doc), 'utf8');
  const out: Block[] = [];
  const re = /(?:<!-- example: ([^#\s]+)(?:#([\w-]+))? -->\n)?^```(\w*)\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(re)) {
    out.push({
      line: text.slice(0, m.index).split('\n').length,
      lang: m[3]!,
      code: m[4]!,
      source: m[1] ? { file: m[1], region: m[2] } : null,
    });
  }
  return out;
}

describe.each(['docs/library.md', 'README.md'])('%s shows only code from examples/', (doc) => {
  const all = blocks(doc);
  const ts = all.filter((b) => b.lang === 'ts' || b.lang === 'js' || b.source);

  it('has TypeScript blocks, each cut from an example', () => {
    expect(ts.length).toBeGreaterThan(0);
    expect(ts.filter((b) => !b.source).map((b) => `${doc}:${b.line}`)).toEqual([]);
  });

  it.each(ts.filter((b) => b.source).map((b) => [`${b.source!.file}#${b.source!.region ?? '(whole file)'} at line ${b.line}`, b] as const))(
    '%s equals the example',
    (_name, b) => {
      expect(b.code).toBe(region(b.source!.file, b.source!.region));
    },
  );
});

describe('the guide covers the issue-16 outline', () => {
  it('has every section a new user needs, in order', () => {
    const headings = readFileSync(path.join(ROOT, 'docs/library.md'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('## '))
      .map((l) => l.slice(3));
    const wanted = [
      'Install',
      'The outbox idea in five lines',
      'A first relay on SQLite',
      'Publishing inside your own transaction',
      'Custom event types',
      'httpTarget',
      'Writing your own target plugin',
      'The delivery log and dead letters',
      'Events and metrics',
      'Running workers (PostgreSQL)',
      'Graceful shutdown',
      'Group commit',
      'Guarantees',
    ];
    expect(headings.filter((h) => wanted.includes(h))).toEqual(wanted);
  });
});
