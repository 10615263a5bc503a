// Goal: the operator documents of the deploy path stay true to the code: every error code they name
// exists, the runbook says what to do about every code in the catalogue, and every repository path
// they point at exists.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { errorCatalogue } from '@pgvip/shared';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const documents = ['docs/runbook.md', 'docs/deploy.md', 'docs/security.md', 'docs/monitoring.md', 'deploy/iam/README.md'];
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');
const codes = new Set(Object.keys(errorCatalogue));
/** Environment variables share the PGVIP_ prefix with error codes; each is read where named. */
const environmentVariables = {
  PGVIP_ROOT: 'deploy/install.sh',
  PGVIP_NODE: 'scripts/package-deb.mjs',
  PGVIP_TOKEN_FILE: 'packages/witness/src/cli/program.ts',
  PGVIP_WITNESS_URL: 'packages/witness/src/cli/program.ts',
  PGVIP_CA_FILE: 'packages/witness/src/cli/program.ts',
  // Set for rejoin.reseed.command by the agent (docs/runbook.md, "Re-seeding a standby").
  PGVIP_DATA_DIR: 'packages/agent/src/postgres/reseed.ts',
  PGVIP_NODE_NAME: 'packages/agent/src/postgres/reseed.ts',
  PGVIP_PRIMARY_HOST: 'packages/agent/src/postgres/reseed.ts',
  PGVIP_PRIMARY_PORT: 'packages/agent/src/postgres/reseed.ts',
  PGVIP_PRIMARY_CONNINFO: 'packages/agent/src/postgres/reseed.ts',
  // The lab's control run of the slot row (docs/runbook.md, "Replication slots").
  PGVIP_LAB_SLOT_CONTROL: 'test/lab/lifecycle-scenarios.ts',
} as const;

describe('deploy documentation', () => {
  for (const doc of documents) {
    it(`${doc}: names only error codes that exist`, () => {
      const named = [...read(doc).matchAll(/\bPGVIP_[A-Z0-9_]+\b/g)].map((m) => m[0]);
      assert.deepEqual(named.filter((code) => !codes.has(code) && !(code in environmentVariables)), [], `unknown codes in ${doc}`);
    });

    it(`${doc}: every repository path it names exists`, () => {
      const paths = [...read(doc).matchAll(/`((?:deploy|docs|test|packages|scripts)\/[^`\s<>*]+)`/g)].map((m) => m[1]!);
      assert.deepEqual(paths.filter((p) => !existsSync(path.join(repoRoot, p))), [], `missing paths in ${doc}`);
    });
  }

  it('the environment variables the documents name are read by the code', () => {
    for (const [name, file] of Object.entries(environmentVariables)) assert.ok(read(file).includes(name), `${name} in ${file}`);
  });

  it('the runbook says what to do about every code in the catalogue', () => {
    const troubleshooting = read('docs/runbook.md').split('## Troubleshooting by error code')[1] ?? '';
    const missing = [...codes].filter((code) => !troubleshooting.includes(`\`${code}\``));
    assert.deepEqual(missing, [], 'add a row to the troubleshooting table of docs/runbook.md for each');
  });
});
