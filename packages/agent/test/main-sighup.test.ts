// Goal: a SIGHUP (systemctl reload) that reaches the agent while it is still starting does not end
// it: SIGHUP's default action is to terminate, and the agent used to install its handler only once
// it was up, so a certificate renewal's reload right after a restart killed it. The real agent
// (main.ts, from source) is held in its start by a PostgreSQL port that accepts and never answers.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { agentConfigFile, freePort, runDaemon } from '../../../test/limits/attack.js';

test('Given an agent still starting, When it gets SIGHUP, Then it keeps running', async (t) => {
  const sockets: Socket[] = [];
  let connected: () => void = () => undefined;
  const firstConnection = new Promise<void>((r) => (connected = r));
  const silentPg = createServer((s) => {
    sockets.push(s);
    connected();
  });
  await new Promise<void>((r) => silentPg.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silentPg.close();
  });
  const pg = (silentPg.address() as { port: number }).port;
  const [agent, peer, witness] = await Promise.all([freePort(), freePort(), freePort()]);
  const { file } = agentConfigFile({ agent, peer, witness, pg });
  const daemon = runDaemon('packages/agent/src/main.ts', file);
  t.after(() => daemon.stop());

  // The agent is asking its PostgreSQL for the managed settings: not listening yet.
  await firstConnection;
  daemon.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal(daemon.child.signalCode, null, `the agent was ended by ${daemon.child.signalCode}:\n${daemon.output()}`);
  assert.equal(daemon.child.exitCode, null, `the agent exited:\n${daemon.output()}`);
});
