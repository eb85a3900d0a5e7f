import { defineConfig } from 'vitest/config';

/**
 * The fault suites (`npm run test:faults`, run by .ci/run after `npm test`): mentor outage, devices host
 * crashes, a PostgreSQL restart, scale-out with workers. One file at a time: they start several processes
 * each, and one of them restarts the PostgreSQL cluster that every other test would be using.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
