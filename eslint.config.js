import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers import downwards only: hosts/ -> plugins/ -> lib/. A module in lib/ (the engine) that reached
 * into plugins/ or hosts/, or a plugin that reached into hosts/, would make the published entries load code
 * they do not own (docs/architecture.md, "The import rule").
 */
const layer = (message, ...dirs) => ({
  'no-restricted-imports': ['error', { patterns: dirs.map((dir) => ({ regex: `(^|/)${dir}(/|$)`, message })) }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'docs/reference/**', 'bench/results/**', 'bench/tmp-*', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: layer('lib/ is the engine: it imports nothing from plugins/ or hosts/ (pass what it needs in instead).', 'plugins', 'hosts'),
  },
  {
    files: ['plugins/**/*.ts'],
    rules: layer('plugins/ import lib/ only, never hosts/.', 'hosts'),
  },
);
