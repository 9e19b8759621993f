import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'bench-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // the README's examples: plain Node programs, run by test/integration/examples.test.ts
    files: ['examples/**/*.{mjs,cjs}'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // the /debug page's script runs in the browser as a classic script (and so do the page checks
    // the Chromium test evaluates there)
    files: ['src/observe/views/assets/**/*.js', 'test/support/browser/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', fetch: 'readonly', setTimeout: 'readonly' },
    },
    rules: { 'no-var': 'error', 'prefer-const': 'error', strict: ['error', 'global'] },
  },
);
