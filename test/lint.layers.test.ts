/**
 * The import rule (docs/architecture.md): lib/ imports nothing from plugins/ or hosts/, plugins/ nothing from
 * hosts/. `npm run lint` enforces it; this checks that the rule really fires, so it cannot be dropped quietly.
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: path.resolve(import.meta.dirname, '..') });

async function restricted(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.resolve(import.meta.dirname, '..', file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer imports', () => {
  it('refuses lib/ importing from plugins/ or hosts/, values and types alike', async () => {
    expect(
      await restricted('lib/example.ts', "import { webhooksPlugin } from '../plugins/webhooks/index.js';\nvoid webhooksPlugin;\n"),
    ).toEqual([expect.stringContaining('lib/ is the engine')]);
    expect(
      await restricted(
        'lib/dispatch/example.ts',
        "import type { ResolvedConfig } from '../../hosts/shared/config.js';\nexport type X = ResolvedConfig;\n",
      ),
    ).toHaveLength(1);
  });

  it('refuses plugins/ importing from hosts/', async () => {
    expect(await restricted('plugins/example.ts', "import { loadConfig } from '../hosts/shared/config.js';\nvoid loadConfig;\n")).toEqual([
      expect.stringContaining('plugins/ import lib/ only'),
    ]);
  });

  it('allows the downward imports', async () => {
    expect(await restricted('plugins/example.ts', "import { createEvent } from '../lib/events.js';\nvoid createEvent;\n")).toEqual([]);
    expect(
      await restricted(
        'hosts/example.ts',
        "import { createEvent } from '../lib/events.js';\nimport { mentorTarget } from '../plugins/mentor.js';\nvoid createEvent;\nvoid mentorTarget;\n",
      ),
    ).toEqual([]);
  });
});
