// Lint rules. The one that matters most: the decision core (packages/shared/src/core) is pure —
// it may not import anything that does IO, so it can run unchanged in the simulator.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = ['node:*', 'fs', 'fs/*', 'net', 'http', 'https', 'http2', 'dgram', 'dns', 'child_process', 'os', 'worker_threads', 'pg', 'pg-*', 'undici', 'fastify', '@fastify/*', '@aws-sdk/*', 'pino'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/results/**', '.lab/**', '.tools/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', Buffer: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', setImmediate: 'readonly', performance: 'readonly', structuredClone: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // Lines stay readable side by side and in review; messages, URLs and patterns are exempt, so
      // wrapping never splits a string that is searched for in logs.
      'max-len': ['error', {
        code: 120,
        ignoreUrls: true,
        ignoreStrings: true,
        ignoreTemplateLiterals: true,
        ignoreRegExpLiterals: true,
      }],
    },
  },
  {
    files: ['packages/shared/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ioModules, message: 'The decision core is pure: no IO imports. Pass data in as inputs and return actions.' }],
      }],
      'no-restricted-globals': ['error',
        { name: 'Date', message: 'The core never reads a clock: time is an input (nowMs).' },
        { name: 'setTimeout', message: 'The core never schedules: timers are inputs.' },
        { name: 'setInterval', message: 'The core never schedules: timers are inputs.' },
        { name: 'process', message: 'The core has no process access.' },
        { name: 'fetch', message: 'The core does no IO.' },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'The core is deterministic: randomness is an input.' }],
    },
  },
  {
    // The agent reaches the EC2 SDK through vip/ec2-sdk.ts only: that list of operations is what
    // lets the agent's bundle leave the rest of the SDK out (see its header).
    files: ['packages/agent/src/**/*.ts'],
    ignores: ['packages/agent/src/vip/ec2-sdk.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['@aws-sdk/*', '@smithy/*'], allowTypeImports: true, message: 'Import the EC2 SDK through ./vip/ec2-sdk.js (the bundle keeps only what it lists).' }],
      }],
    },
  },
);
