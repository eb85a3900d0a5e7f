import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'lib/index.ts',
    signing: 'lib/signing.ts',
    'plugins/http': 'plugins/http.ts',
    'plugins/mentor': 'plugins/mentor.ts',
    'plugins/webhooks': 'plugins/webhooks/index.ts',
    cli: 'hosts/cli.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: true,
  shims: true,
});
