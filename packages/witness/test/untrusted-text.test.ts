// Goal: text from outside pgvip never reaches an operator's terminal as control sequences. A
// webhook that answers with ESC]0;pwned BEL (set the window title) and ESC[2J (clear the screen),
// and a command hook that writes them to stderr, leave plain text in the history; `pgvip history`
// and `pgvip status` print none of it, even for records an older witness stored raw.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { WitnessConfig } from '@pgvip/shared';
import { createWitnessDaemon } from '../src/daemon.js';
import { createNotifier } from '../src/notify/index.js';
import { runPgvip } from './cli-helpers.js';
import { mainCluster, startFakeOperatorApi } from './fake-operator-api.js';
import { eventually, memoryLog, tempDir, witnessConfig } from './witness-helpers.js';

const hostile = '\u001b]0;pwned\u0007\u001b[2J\u001b[H';
// ESC, BEL, CSI (8-bit) and every other C0/C1 control except line feed.
// eslint-disable-next-line no-control-regex
const terminalControl = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('untrusted text in the history', { timeout: 120_000 }, () => {
  it('a webhook answer and a hook\'s stderr with escape sequences are recorded and printed as plain text', async (t) => {
    const dir = tempDir(t);
    // Given a webhook receiver that refuses every event with a hostile body
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400, { 'content-type': 'text/plain' }).end(`${hostile}rejected by receiver`));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const webhookPort = (receiver.address() as AddressInfo).port;
    // And a command hook that fails, writing the same sequences to stderr
    const hook = path.join(dir, 'hook.sh');
    writeFileSync(hook, `#!/bin/sh\nprintf '\\033]0;pwned\\007\\033[2J\\033[H' >&2\necho 'hook broke' >&2\nexit 1\n`);
    chmodSync(hook, 0o755);
    const base = witnessConfig({ stateDir: dir, clusters: [{ name: 'c1', key: null }] });
    const config: WitnessConfig = {
      ...base,
      clusters: base.clusters.map((c) => ({
        ...c,
        notifications: {
          nodeHoldDownMs: 60_000,
          webhooks: [{ url: `http://127.0.0.1:${webhookPort}/hook`, events: ['*'], timeoutMs: 5_000 }],
          command: { path: hook, args: [], events: ['*'], timeoutMs: 5_000 },
        },
      })),
    };

    // When the witness starts (its witness-started event goes to both channels, and both fail)
    const { log } = memoryLog();
    const daemon = await createWitnessDaemon(config, {
      log,
      notifierFor: (cluster, onFailure, clusterLog) =>
        createNotifier(cluster.notifications, { logger: clusterLog, onFailure }),
    });
    t.after(() => daemon.close());
    await daemon.operator.listen({ host: '127.0.0.1', port: 0 });
    const operatorUrl = `http://127.0.0.1:${(daemon.operator.server.address() as AddressInfo).port}`;
    await eventually('both failures recorded', () => daemon.history.recent('c1', 10).filter((e) => e.type === 'notification-failed').length === 2, 15_000);
    await daemon.history.flush();

    // Then the history on disk holds the receivers' words but no control character
    const stored = readFileSync(path.join(dir, 'history', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; detail: string });
    const failures = stored.filter((e) => e.type === 'notification-failed').map((e) => e.detail);
    assert.equal(failures.length, 2);
    assert.ok(failures.some((d) => d.includes('answered HTTP 400: rejected by receiver')), failures.join('\n'));
    assert.ok(failures.some((d) => d.includes('stderr: hook broke')), failures.join('\n'));
    for (const e of stored) assert.doesNotMatch(JSON.stringify(Object.values(e)).replace(/\\u[0-9a-f]{4}/g, (m) => String.fromCharCode(parseInt(m.slice(2), 16))), terminalControl);

    // And `pgvip history` and `pgvip status` print it without them
    const tokenArgs = base.operatorApi.tokenFile === undefined ? [] : ['--token-file', base.operatorApi.tokenFile];
    for (const args of [['history'], ['status'], ['--json', 'history']]) {
      const r = await runPgvip(['--witness', operatorUrl, ...tokenArgs, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /rejected by receiver/);
      assert.doesNotMatch(r.stdout, terminalControl, `pgvip ${args.join(' ')}`);
    }
  });

  it('a refusal or error whose words carry escape sequences is printed without them', async (t) => {
    const api = await startFakeOperatorApi();
    t.after(() => api.close());
    // An error in pgvip's own shape, with a hostile message
    api.override = { status: 409, body: { error: { code: 'PGVIP_OPERATOR_BAD_REQUEST', message: `${hostile}bad\u009b2J request` } } };
    for (const args of [['status'], ['--json', 'status']]) {
      const failed = await runPgvip(['--witness', api.url, ...args]);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stdout + failed.stderr, /bad/);
      assert.doesNotMatch(failed.stdout + failed.stderr, terminalControl, `pgvip ${args.join(' ')}`);
    }
  });

  it('records stored raw (by an older witness) are printed without their escape sequences', async (t) => {
    const cluster = mainCluster();
    const raw = { ...cluster.events[0]!, detail: `${hostile}webhook[0] answered HTTP 400: \u009b2Jnope\r\u202eoverwritten` };
    const api = await startFakeOperatorApi({ clusters: [{ ...cluster, events: [raw, ...cluster.events], nodes: cluster.nodes.map((n) => ({ ...n, promotionBlocker: n.promotionBlocker === null ? null : `${hostile}${n.promotionBlocker}` })) }] });
    t.after(() => api.close());
    api.history.set('main', [raw]);
    for (const args of [['history'], ['status'], ['--json', 'history'], ['--json', 'status']]) {
      const r = await runPgvip(['--witness', api.url, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /answered HTTP 400: /);
      assert.doesNotMatch(r.stdout, terminalControl, `pgvip ${args.join(' ')}`);
      assert.doesNotMatch(r.stdout, /\u202e/);
    }
  });
});
