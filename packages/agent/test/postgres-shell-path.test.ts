// Goal: a data directory whose name is shell code never reaches pg_ctl. pg_ctl starts postgres
// through /bin/sh with the path inside double quotes, where $(...) still runs: the config schema
// refuses such a path, and so does the agent's PostgreSQL port when it is built by other code.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isPgvipError, parseConfigText } from '@pgvip/shared';
import { LocalPostgres } from '@pgvip/agent';
import { lookUpOsUser, runAsOsUser } from '../src/postgres/os-command.js';

const binDir = '/usr/lib/postgresql/15/bin';

test('Given a data directory named /…/pg$(touch${IFS}/…/owned), When pgvip is asked to manage it, Then it refuses and the payload never runs', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-shell-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o777); // the postgres user must be able to enter it (and, for the control below, to write the marker)
  const marker = path.join(dir, 'owned');
  const dataDir = `${dir}/pg$(touch\${IFS}${marker})`;
  mkdirSync(dataDir, { recursive: true, mode: 0o777 });
  writeFileSync(path.join(dataDir, 'PG_VERSION'), '15\n'); // what pg_ctl start looks for before running postgres

  // The config file is refused, naming the field and why.
  const yaml = `self: db-a
cluster:
  name: main
  nodes:
    - { id: db-a, agent: { host: 10.0.1.11 }, postgres: { host: 10.0.1.11, dataDir: '${dataDir}' } }
    - { id: db-b, agent: { host: 10.0.1.12 }, postgres: { host: 10.0.1.12, dataDir: /var/lib/postgresql/15/main } }
  witness: { host: 10.0.2.20 }
  vip: { mode: secondary-ip, address: 10.0.1.100 }
  auth: { keyFile: /etc/pgvip/cluster.key }
`;
  assert.throws(
    () => parseConfigText(yaml, 'agent', 'agent.yaml'),
    (err: unknown) => isPgvipError(err, 'PGVIP_CONFIG_INVALID') && /cluster\.nodes\[0\]\.postgres\.dataDir: .*through \/bin\/sh/.test(err.detail),
  );
  // The PostgreSQL port refuses it before running any tool.
  assert.throws(
    () => new LocalPostgres({ nodeName: 'db-a', host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres', dataDir, binDir }),
    (err: unknown) => isPgvipError(err, 'PGVIP_CONFIG_INVALID') && /dataDir .*\/bin\/sh/.test(err.detail),
  );
  assert.equal(existsSync(marker), false);

  // Control: the payload is real. Given to pg_ctl itself, the same path runs `touch` as postgres
  // (and postgres then fails on the cut-off path).
  const postgres = await lookUpOsUser('postgres');
  await runAsOsUser(postgres, path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-l', path.join(dir, 'log'), 'start', '-w', '-t', '5'], { timeoutMs: 15_000, cwd: dir });
  assert.equal(existsSync(marker), true, 'pg_ctl ran the payload through /bin/sh');
});
