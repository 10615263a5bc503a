// Goal: a SIGHUP (systemctl reload) that reaches the witness while it is still starting does not end
// it: SIGHUP's default action is to terminate, and the witness installed its handler only once it
// served, so a certificate renewal's reload right after a restart killed it. Once it serves, the
// reload it missed runs. The real witness (main.ts, from source) is held in its start by a config
// file that is a FIFO: its read waits until the test writes the config.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../test/limits/attack.js';
import { eventually, tempDir, witnessDocument } from './witness-helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const mainTs = path.join(repoRoot, 'packages/witness/src/main.ts');

test('Given a witness still starting, When it gets SIGHUP, Then it keeps running and reloads once it serves', async (t) => {
  const dir = tempDir(t);
  const fifo = path.join(dir, 'witness.yaml');
  execFileSync('mkfifo', [fifo]);
  const child = spawn(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', mainTs, '--config', fifo], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => void (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => void (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });

  // Opening the FIFO for writing returns once the witness opened it to read its config: it is starting.
  const writer = await open(fifo, 'w');
  child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(child.signalCode, null, `the witness was ended by ${child.signalCode}:\n${out}`);
  assert.equal(child.exitCode, null, `the witness exited:\n${out}`);

  const [listenPort, operatorPort] = [await freePort(), await freePort()];
  await writer.writeFile(JSON.stringify(witnessDocument({ stateDir: dir, listenPort, operatorPort, clusters: [{ name: 'c1' }] })));
  await writer.close();
  await eventually('the missed reload ran once the witness served', () => out.includes('SIGHUP: no tls block'), 20_000)
    .catch((e: unknown) => assert.fail(`${String(e)}\n${out}`));
  assert.match(out, /serving 1 cluster\(s\)/);
});
