import type { Workspace } from '../lib/hosts.js';
import type { Check, Dialect } from '../lib/report.js';

export interface ScenarioContext {
  dialect: Dialect;
  quick: boolean;
  ws: Workspace;
  log(message: string): void;
}

export interface ScenarioOutput {
  checks: Check[];
  measured: Record<string, number | string | boolean | null>;
  notes: string[];
}

export interface Scenario {
  name: string;
  title: string;
  /** The dialects it applies to (all by default). */
  dialects?: Dialect[];
  run(ctx: ScenarioContext): Promise<ScenarioOutput>;
}
