// ESLint for the web client (`npm run lint`, run by `go tool task web:test`):
// JavaScript's and typescript-eslint's recommended rules everywhere, and the
// rules of React hooks on the app, with exhaustive-deps an error like the rest.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores([
    'node_modules/',
    'dist/',
    // Generated from api/openapi.json by npm run gen:types.
    'src/api/schema.gen.ts',
    'e2e/screenshots/',
  ]),
  {
    files: ['**/*.{js,mjs,ts,tsx}'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    extends: [reactHooks.configs.flat.recommended],
    languageOptions: { globals: globals.browser },
    rules: {
      'react-hooks/exhaustive-deps': 'error',
    },
  },
  {
    // Node: the end-to-end test, the scripts and the build's configuration.
    files: ['e2e/**/*.mjs', 'scripts/**/*.mjs', '*.config.{js,ts}', 'vitest.summary.ts'],
    languageOptions: { globals: globals.node },
  },
  {
    // What the end-to-end test hands to page.evaluate runs in the page.
    files: ['e2e/run.mjs'],
    languageOptions: { globals: globals.browser },
  },
]);
