// Goal: systemd's watchdog sees a hung agent. Keep-alives (WATCHDOG=1, sent with the real
// systemd-notify to a notify socket) go out while the decision loop's heartbeats finish, and stop
// when a heartbeat hangs in an await — while the event loop, its timers and the HTTP server still
// run, which is why no timer may send them — and resume once it finishes. The agent's unit asks for
// the watchdog (WatchdogSec=, NotifyAccess=all); systemd-analyze verify of the unit is in
// test/deploy/systemd.test.ts. (systemd is not PID 1 here, so systemd itself cannot kill the agent.)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { FakePgNetwork, FakePostgres } from '../src/postgres/fake.js';
import type { PgObservation } from '../src/postgres/port.js';
import { FakeVipCloud, FakeVipPort } from '../src/vip/fake.js';
import { startAgentDaemon } from '../src/daemon.js';
import { SystemdWatchdog } from '../src/watchdog.js';
import { daemonTestConfig } from './daemon-config.js';
import { list, parseUnit, unitDir, value } from '../../../test/deploy/systemd-unit.js';
import { waitUntil } from '../../../test/fixtures/wait-until.js';

const haveTools = spawnSync('python3', ['--version']).status === 0 && spawnSync('systemd-notify', ['--version']).status === 0;
const skip = haveTools ? false : 'needs python3 (the notify socket) and systemd-notify';

/** A notify socket like systemd's: a unix datagram socket; each message read is noted with its time. */
function notifySocket(file: string): { child: ChildProcess; messages: Array<{ atMs: number; text: string }> } {
  const messages: Array<{ atMs: number; text: string }> = [];
  // recv() without room for ancillary data closes the barrier's file descriptor, as systemd does
  // once it has read the message, so systemd-notify returns.
  const program = `import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('ready', flush=True)
while True:
    print(s.recv(4096).decode().replace('\\n', ' '), flush=True)`;
  const child = spawn('python3', ['-c', program, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const text of lines) messages.push({ atMs: performance.now(), text });
  });
  return { child, messages };
}

class HangingPostgres extends FakePostgres {
  #gate: { promise: Promise<void>; open: () => void } | null = null;

  /** The next observe() waits until release(): a heartbeat stuck in an await. */
  hang(): void {
    let open = (): void => undefined;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { promise, open };
  }

  release(): void {
    this.#gate?.open();
    this.#gate = null;
  }

  override async observe(): Promise<PgObservation> {
    if (this.#gate !== null) await this.#gate.promise;
    return super.observe();
  }
}

test('Given the agent under a watchdog, When a heartbeat hangs in an await, Then keep-alives stop while the process still serves, and resume after it', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-watchdog-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socketFile = path.join(dir, 'notify.sock');
  const socket = notifySocket(socketFile);
  t.after(() => void socket.child.kill());
  await waitUntil('the notify socket', 10_000, async () => socket.messages.some((m) => m.text === 'ready'));

  const pg = new HangingPostgres({ network: new FakePgNetwork(), nodeName: 'db-a', endpoint: { host: '127.0.0.1', port: 5432, user: 'pgvip', database: 'postgres' } });
  const vip = new FakeVipPort(new FakeVipCloud({ holder: 'db-a' }), 'db-a');
  const logger = pino({ level: 'silent' });
  // WatchdogSec of 800 ms: a keep-alive at most every 200 ms, i.e. one per finished heartbeat (500 ms).
  const clock = (): number => performance.now();
  const keepAlive = new SystemdWatchdog({ socket: socketFile, watchdogMs: 800, logger, clock });
  const onFatal = (e: Error): never => assert.fail(e);
  const d = await startAgentDaemon(daemonTestConfig(dir, null), { logger, vip, pg, listen: false, keepAlive, onFatal });
  t.after(() => d.close());
  const keepAlives = (sinceMs: number): number => socket.messages.filter((m) => m.atMs >= sinceMs && m.text.includes('WATCHDOG=1')).length;

  const runningSince = performance.now();
  await waitUntil('keep-alives while the loop runs', 10_000, async () => keepAlives(runningSince) >= 3);

  pg.hang();
  await new Promise((r) => setTimeout(r, 700)); // the heartbeat under way finishes, the next one hangs
  const hungSince = performance.now();
  await new Promise((r) => setTimeout(r, 2_500)); // three WatchdogSec: systemd would have killed it
  const status = await d.app.inject({ method: 'GET', url: '/status' });
  assert.equal(status.statusCode < 500 || status.statusCode === 503, true, 'the HTTP server still answers');
  assert.equal(keepAlives(hungSince), 0, 'no keep-alive while a heartbeat hangs');

  pg.release();
  const releasedAt = performance.now();
  await waitUntil('keep-alives once the heartbeat finished', 5_000, async () => keepAlives(releasedAt) >= 2);
});

test('SystemdWatchdog.fromEnv: on only with NOTIFY_SOCKET and WATCHDOG_USEC meant for this process', () => {
  const logger = pino({ level: 'silent' });
  const clock = (): number => 0;
  assert.equal(SystemdWatchdog.fromEnv({}, logger, clock), null);
  assert.equal(SystemdWatchdog.fromEnv({ NOTIFY_SOCKET: '/run/systemd/notify' }, logger, clock), null, 'no WatchdogSec=');
  assert.equal(SystemdWatchdog.fromEnv({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, logger, clock), null, 'inherited');
  const on = SystemdWatchdog.fromEnv({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }, logger, clock);
  assert.equal(on?.watchdogMs, 30_000);
});

test("The agent's unit asks for the watchdog and lets systemd-notify's keep-alives in", () => {
  const unit = parseUnit(readFileSync(path.join(unitDir, 'pgvip-agent.service'), 'utf8'));
  assert.equal(value(unit, 'Service', 'WatchdogSec'), '30s');
  assert.equal(value(unit, 'Service', 'NotifyAccess'), 'all');
  assert.equal(value(unit, 'Service', 'KillMode'), 'process', 'a watchdog kill must not take PostgreSQL with it');
  assert.ok(list(unit, 'Service', 'RestrictAddressFamilies').includes('AF_UNIX'), 'systemd-notify needs AF_UNIX');
});
