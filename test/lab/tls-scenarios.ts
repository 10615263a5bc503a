// Goal: pgvip with TLS on every listener behaves as without it in the scenarios that exercise every
// connection: the agents and the witness speak only HTTPS with mutual TLS (certificates from
// `pgvip init --tls`'s code), and a planned switchover, a kill -9 of the primary's PostgreSQL and the
// loss of the primary host each fail over once, lose no acknowledged write and leave one primary.
//
// A suite of scenarios.test.ts (one lab at a time per machine): run alone with
//   node --conditions=pgvip-source --import tsx --test --test-name-pattern='with TLS' test/lab/scenarios.test.ts
// About four minutes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLab, type Lab } from './lab.js';
import type { DbNode } from './topology.js';

export interface TlsSuiteOptions {
  readonly skip: string | false;
  readonly compiled: boolean;
  readonly note: (line: string) => void;
}

export function tlsScenariosSuite(opts: TlsSuiteOptions): void {
  describe('lab: the scenarios with TLS on every listener (mutual between the daemons)', { skip: opts.skip, timeout: 20 * 60_000 }, () => {
    let lab: Lab;

    before(async () => {
      lab = await startLab({ compiled: opts.compiled, tls: true, progress: opts.note });
    }, { timeout: 5 * 60_000 });

    after(async () => {
      await lab?.down();
    }, { timeout: 2 * 60_000 });

    /** One scenario from a healthy cluster: `fault` acts and returns when it began; then the standby must take over. */
    function failover(title: string, fault: (primary: DbNode) => Promise<number>): void {
      it(title, { timeout: 5 * 60_000 }, async () => {
        try {
          await lab.restoreAll();
          const h = await lab.waitHealthy(180_000);
          const primary = h.primary as DbNode;
          const standby = h.standby as DbNode;
          const faultAt = await fault(primary);
          await lab.writer!.waitForAcks(faultAt, 3, 40_000, standby);
          // Ends the fault (a frozen host thaws, the network heals), then the old primary must rejoin.
          await lab.restoreAll();
          const report = await lab.checkSince(faultAt, 180_000);
          opts.note(`${title}: ${report.writes.ok} writes ok, longest gap ${report.gap.gapMs} ms, primary ${report.final.primary}`);
          assert.deepEqual(report.lost.map((w) => w.id), [], 'acknowledged writes lost');
          assert.equal(report.overlap.writes, 0, `overlapping writers: ${report.overlap.details.join('; ')}`);
          assert.equal(report.final.primary, standby, 'the standby took over');
          assert.ok(report.final.term > h.term, 'under a newer term');
          assert.equal(lab.promotionsSince(faultAt).length, 1, 'exactly one promotion');
        } catch (err) {
          lab.markFailed();
          throw err;
        }
      });
    }

    it('every pgvip listener speaks only TLS: plain HTTP gets no answer, the lab\'s client certificate does', { timeout: 3 * 60_000 }, async () => {
      const { primary } = await lab.waitHealthy(180_000);
      const t = lab.topology;
      const agent = `${t.hosts[primary as DbNode].address}:${t.ports.agent}`;
      const witness = `${t.hosts.witness.address}:${t.ports.witness}`;
      const operator = `${t.hosts.witness.address}:${t.ports.operator}`;
      for (const target of [agent, witness, operator]) {
        await assert.rejects(lab.emulator.http(`http://${target}/health`, { timeoutMs: 2_000 }), `plain HTTP to ${target} is not answered`);
      }
      const tls = lab.configs!.tls;
      assert.equal(tls.peer, true);
      // The agents and the witness want a client certificate of the cluster's CA (mutual TLS).
      await assert.rejects(lab.emulator.http(`https://${agent}/health`, { timeoutMs: 2_000, tls: { ca: tls.ca } }), 'no client certificate');
      assert.equal((await lab.emulator.http(`https://${agent}/health`, { timeoutMs: 2_000, tls: { ca: tls.ca, cert: tls.cert, key: tls.key } })).status, 200);
      assert.equal((await lab.emulator.http(`https://${operator}/health`, { timeoutMs: 2_000, tls: { ca: tls.ca } })).status, 200);
      // And the daemons said so when they started.
      assert.ok(lab.logOf(primary as DbNode).some((l) => l.msg === 'agent listening' && l.fields.tls === 'mutual'), 'the agent listens with mutual TLS');
    });

    it('planned switchover over TLS — the standby becomes primary, nothing is lost', { timeout: 5 * 60_000 }, async () => {
      try {
        await lab.restoreAll();
        const h = await lab.waitHealthy(180_000);
        const startedAt = Date.now();
        // The lab judges health from the agents' own statuses; the witness judges readiness from its
        // last poll of the primary, up to a heartbeat older. Right after the cluster turned healthy
        // it may still answer "not ready"; an operator asks again, and so does this test (briefly).
        let res = await lab.switchover(h.standby as DbNode);
        for (let i = 0; i < 20 && res.status === 409 && /is not ready/.test(JSON.stringify(res.json)); i++) {
          await new Promise((r) => setTimeout(r, 500));
          res = await lab.switchover(h.standby as DbNode);
        }
        assert.equal(res.status, 200, `switchover refused: ${JSON.stringify(res.json)}`);
        await lab.writer!.waitForAcks(startedAt, 3, 30_000, h.standby as DbNode);
        await lab.restoreAll();
        const report = await lab.checkSince(startedAt, 180_000);
        assert.deepEqual(report.lost.map((w) => w.id), [], 'acknowledged writes lost');
        assert.equal(report.overlap.writes, 0, 'overlapping writers');
        assert.equal(report.final.primary, h.standby);
        assert.equal(report.final.standby, h.primary, 'the old primary rejoined');
      } catch (err) {
        lab.markFailed();
        throw err;
      }
    });

    failover('kill -9 of PostgreSQL on the primary over TLS — failover, nothing lost', async (primary) => lab.faults.killPostgres(lab.pg[primary]));

    failover('primary host lost over TLS (frozen, traffic dropped) — failover after the lease, it returns and rejoins', async (primary) => {
      const faultAt = await lab.faults.isolate(primary);
      await lab.faults.freeze(primary);
      return faultAt;
    });
  });
}
