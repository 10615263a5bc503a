// Goal: what issue 13 ("the day after failover") added works end to end on the lab's real hosts,
// real PostgreSQL 15 and real daemons, not only in the simulator and the loopback integration tests:
//
// - a failover with the agents' hooks installed (docs/hooks.md): each hook fires, in order, with the
//   same event on stdin and in PGVIP_* variables, without the agent's capability or environment;
//   and the new primary holds the old primary's replication slot before the old primary rejoins,
//   which then streams through it (docs/design.md, "Replication slots");
// - a before-promote veto keeps the standby from promoting (no primary, never two) until the hook
//   allows it, as docs/hooks.md says;
// - a standby whose PostgreSQL is down while the primary writes more WAL than it would keep without
//   a slot (PostgreSQL's default wal_keep_size 0, checkpoints) streams again without a re-seed;
// - a rejoin that pg_rewind cannot do is re-seeded by the `command` method (rejoin.reseed.methods),
//   a script restoring a local base backup directory, and streams from the new primary;
// - a hung primary agent (SIGSTOP) under a real systemd manager with the shipped unit's WatchdogSec=
//   stops sending keep-alives and is killed and restarted; meanwhile its lease runs out, so its
//   PostgreSQL commits nothing (the commit guard), and the standby, which still streams from that
//   PostgreSQL, is not promoted (docs/design.md, row 5); the restarted agent carries on as primary
//   (systemd-user.ts: systemd's own binary as a user manager, PID 1 here is not systemd).
//
// A suite of scenarios.test.ts (one lab at a time per machine): run alone with
//   node --conditions=pgvip-source --import tsx --test --test-name-pattern='day after' test/lab/scenarios.test.ts
// About five minutes. PGVIP_LAB_SLOT_CONTROL=drop runs the slot row with the standby's slot dropped
// while it is down (the agent makes a fresh one): the row then fails, which shows it can.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acknowledged, firstAckAfter, type HealthyCluster } from './checkers.js';
import { mustRunOnHost, onHost, osUser } from './exec.js';
import { repoRoot } from './ipc.js';
import { startLab, type CheckReport, type Lab } from './lab.js';
import { pgBinDir, psql, startServer, stopServer } from './postgres.js';
import { agentUnitWatchdogProperties, LabSystemd, systemdUnavailable } from './systemd-user.js';
import { dbNodes, otherNode, type DbNode } from './topology.js';
import { hold, waitFor } from './wait.js';

export interface LifecycleSuiteOptions {
  readonly skip: string | false;
  readonly compiled: boolean;
  readonly note: (line: string) => void;
}

/** One run of the lab's hook (hook.py): what it got and as whom it ran. */
interface HookRun {
  readonly stdin: Record<string, unknown> & { event: string; role: string; previousRole?: string; term: number };
  readonly env: Record<string, string>;
  readonly capEff: string;
  readonly capAmb: string;
  readonly uid: number;
  readonly atMs: number;
}

// The hook every event runs (root-owned, 0755, as docs/hooks.md asks): it appends what it got to a
// file of its node, and before-promote vetoes while the node's veto file exists.
const hookScript = `#!/usr/bin/python3
import json, os, sys, time
event = json.loads(sys.stdin.read())
status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)
# The environment as the agent passed it (os.environ may gain LC_CTYPE: Python's C-locale coercion).
env = dict(v.split('=', 1) for v in open('/proc/self/environ').read().split('\\0') if '=' in v)
run = {'stdin': event, 'env': env, 'capEff': status['CapEff'].strip(), 'capAmb': status['CapAmb'].strip(),
       'uid': os.getuid(), 'atMs': time.time() * 1000}
with open(sys.argv[1], 'a') as f:
    f.write(json.dumps(run) + '\\n')
if event['event'] == 'before-promote' and os.path.exists(sys.argv[2]):
    print('lab veto: ' + sys.argv[2] + ' exists', file=sys.stderr)
    sys.exit(1)
`;

/** Files of the suite outside the lab directory (the agents' files name them before the lab exists). */
class Kit {
  readonly dir = mkdtempSync('/tmp/pgvip-lifecycle-');
  readonly hook = path.join(this.dir, 'hook.py');
  readonly reseed = path.join(this.dir, 'reseed-from-backup.sh');

  constructor() {
    const pg = osUser('postgres');
    writeFileSync(this.hook, hookScript, { mode: 0o755 });
    // The fixture the loopback integration test uses (a restore as pgBackRest or WAL-G would do),
    // copied: the checkout may be closed to the postgres user.
    copyFileSync(path.join(repoRoot, 'test/fixtures/reseed-from-backup.sh'), this.reseed);
    for (const f of [this.dir, this.hook, this.reseed]) chownSync(f, 0, 0);
    chmodSync(this.dir, 0o755); // mkdtemp's 0700 would keep the agents' user out
    for (const n of dbNodes) {
      for (const d of [this.pgDir(n), this.archive(n)]) {
        mkdirSync(d, { mode: 0o700 });
        chownSync(d, pg.uid, pg.gid);
      }
      writeFileSync(this.hookLog(n), '', { mode: 0o644 });
      chownSync(this.hookLog(n), pg.uid, pg.gid);
    }
  }

  pgDir(n: DbNode): string {
    return path.join(this.dir, `pg-${n}`);
  }
  backup(n: DbNode): string {
    return path.join(this.pgDir(n), 'backup');
  }
  archive(n: DbNode): string {
    return path.join(this.pgDir(n), 'archive');
  }
  hookLog(n: DbNode): string {
    return path.join(this.dir, `hooks-${n}.jsonl`);
  }
  veto(n: DbNode): string {
    return path.join(this.dir, `veto-${n}`);
  }

  hookRuns(n: DbNode, sinceMs = 0): HookRun[] {
    return readFileSync(this.hookLog(n), 'utf8').split('\n').filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as HookRun).filter((r) => r.atMs >= sinceMs);
  }

  /** The agent file's hooks and rejoin blocks, as an operator writes them. */
  agentConfig(n: DbNode): Record<string, unknown> {
    const hook = (timeoutMs: number) => ({ path: this.hook, args: [this.hookLog(n), this.veto(n)], timeoutMs });
    return {
      hooks: {
        beforePromote: hook(5_000),
        afterPromote: hook(10_000),
        onFence: hook(10_000),
        onRejoin: hook(10_000),
        onRoleChange: hook(10_000),
      },
      rejoin: {
        reseed: {
          methods: ['command', 'basebackup'],
          command: { path: this.reseed, args: ['{dataDir}', this.backup(n), this.archive(n)], timeoutMs: 120_000 },
        },
      },
    };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** "db-b" → "pgvip_db_b": the slot the primary keeps for a standby (replication.slots). */
const slotOf = (n: DbNode): string => `pgvip_${n.replace(/-/g, '_')}`;

/** A hook run as "event" or, for on-role-change, "from→to". */
const label = (r: HookRun): string => (r.stdin.event === 'on-role-change' ? `${r.stdin.previousRole ?? ''}→${r.stdin.role}` : r.stdin.event);

export function lifecycleSuite(opts: LifecycleSuiteOptions): void {
  describe('lab: the day after failover — hooks, slots, re-seed by command, the watchdog', { skip: opts.skip, timeout: 20 * 60_000 }, () => {
    let lab: Lab;
    let kit: Kit;
    let failed = false;
    let systemd: LabSystemd | null = null;
    const watchdogUnit = 'pgvip-agent-lab';

    before(async () => {
      kit = new Kit();
      lab = await startLab({ compiled: opts.compiled, progress: opts.note, agentConfig: (n) => kit.agentConfig(n) });
    }, { timeout: 5 * 60_000 });

    after(async () => {
      // The next lab removes a dead owner's lab directory: keep the daemons' logs with the suite's files.
      if (failed && lab !== undefined) cpSync(path.join(lab.dir, 'logs'), path.join(kit.dir, 'lab-logs'), { recursive: true });
      if (systemd !== null) {
        await systemd.stop(watchdogUnit);
        await systemd.close();
      }
      await lab?.down();
      if (failed) opts.note(`lifecycle files kept: ${kit.dir}`);
      else kit?.remove();
    }, { timeout: 2 * 60_000 });

    interface Row {
      readonly primary: DbNode;
      readonly standby: DbNode;
      readonly term: number;
      readonly startedAt: number;
    }

    const rowOf = (h: HealthyCluster): Row => ({
      primary: h.primary as DbNode,
      standby: h.standby as DbNode,
      term: h.term,
      startedAt: Date.now(),
    });

    function row(title: string, body: (r: Row) => Promise<void>, timeoutMs = 5 * 60_000): void {
      it(title, { timeout: timeoutMs }, async () => {
        try {
          await lab.restoreAll();
          const h = await lab.waitHealthy(180_000);
          opts.note(`${title}: primary ${h.primary}, standby ${h.standby}, term ${h.term}`);
          await body(rowOf(h));
        } catch (err) {
          failed = true;
          lab.markFailed();
          throw err;
        }
      });
    }

    /** No acknowledged write lost, never two writers, one settled primary (the lab's cross-cutting checks). */
    async function checks(fromMs: number): Promise<CheckReport> {
      await lab.faults.healAll();
      const report = await lab.checkSince(fromMs, 180_000);
      opts.note(`writes ${report.writes.ok} ok / ${report.writes.failed} failed / ${report.writes.unknown} unknown; longest gap ${report.gap.gapMs} ms; primary ${report.final.primary} term ${report.final.term}`);
      assert.deepEqual(report.lost.map((w) => w.id), [], 'acknowledged writes lost');
      assert.equal(report.overlap.writes, 0, `overlapping writers: ${report.overlap.details.join('; ')}`);
      return report;
    }

    /** The standby took over: its writes through the VIP, one promotion, a newer term. */
    function assertFailedOver(r: Row, report: CheckReport): void {
      assert.equal(report.final.primary, r.standby, 'the standby took over');
      assert.ok(report.final.term > r.term, 'under a newer term');
      assert.equal(lab.promotionsSince(r.startedAt).length, 1, 'exactly one promotion');
    }

    /** `node` streams from `primary` through its slot there, and names that slot itself. */
    async function assertStreamsThroughSlot(primary: DbNode, node: DbNode): Promise<void> {
      let seen = '';
      await waitFor(`${node} to stream from ${primary} through ${slotOf(node)}`, 60_000, async () => {
        seen = [
          await psql(primary, `SELECT coalesce(string_agg(r.state || ':' || s.slot_name, ','), 'none') FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE r.application_name = '${node}'`),
          await psql(node, 'SHOW primary_slot_name'),
        ].join(' / ');
        return seen === `streaming:${slotOf(node)} / ${slotOf(node)}` || undefined;
      }, 500, () => seen);
    }

    // docs/hooks.md ("The hooks", "What a hook gets") and docs/design.md ("Replication slots").
    row('a failover with hooks: each fires in order with the event on stdin and in PGVIP_*; the new primary holds the old one\'s slot before it rejoins, which streams through it', async (r) => {
      const faultAt = await lab.faults.isolate(r.primary);
      await lab.writer!.waitForAcks(faultAt, 3, 60_000, r.standby);
      // The old primary is still cut off, so it has not rejoined: its slot is already on the new primary.
      const slot = await psql(r.standby, `SELECT slot_type || ':' || active FROM pg_replication_slots WHERE slot_name = '${slotOf(r.primary)}'`);
      assert.equal(slot, 'physical:false', `${r.standby} keeps ${slotOf(r.primary)} for ${r.primary} while ${r.primary} is away`);
      assert.ok(!lab.logOf(r.primary).some((l) => l.atMs >= faultAt && l.event === 'rejoined'), `${r.primary} has not rejoined yet`);
      const report = await checks(faultAt);
      assertFailedOver(r, report);
      await assertStreamsThroughSlot(r.standby, r.primary);

      // The hooks: the new primary's and the old primary's, in the order they ran.
      await waitFor(`${r.primary}'s on-rejoin hook`, 30_000, async () => kit.hookRuns(r.primary, faultAt).some((h) => h.stdin.event === 'on-rejoin'));
      await waitFor(`${r.standby}'s after-promote hook`, 30_000, async () => kit.hookRuns(r.standby, faultAt).some((h) => h.stdin.event === 'after-promote'));
      const promoted = kit.hookRuns(r.standby, faultAt);
      const fenced = kit.hookRuns(r.primary, faultAt);
      opts.note(`hooks on ${r.standby}: ${promoted.map(label).join(', ')}`);
      opts.note(`hooks on ${r.primary}: ${fenced.map(label).join(', ')}`);
      // docs/hooks.md's order for the promoted node, each hook once. (Before the runner looked again
      // after an effect on PostgreSQL, 3 runs of 3 went primary → promoting → primary right after
      // this — a look taken before the promotion and read after it — and ran before-promote and
      // after-promote ("already primary") a second time.)
      // before-promote runs at once, not behind the asynchronous hooks' queue: its place among them is
      // by time only (it ran as promoting, before PostgreSQL promoted, below).
      const seq = promoted.map(label);
      assert.equal(seq.filter((e) => e === 'before-promote').length, 1, seq.join(', '));
      assert.equal(seq.filter((e) => e === 'after-promote').length, 1, seq.join(', '));
      assert.ok(!seq.includes('primary→promoting'), seq.join(', '));
      const queued = seq.filter((e) => e !== 'before-promote');
      assert.deepEqual(queued.slice(0, 4), ['standby→candidate', 'candidate→promoting', 'promoting→primary', 'after-promote'], seq.join(', '));
      assert.ok(seq.indexOf('before-promote') >= 0 && seq.indexOf('before-promote') < seq.indexOf('promoting→primary'), seq.join(', '));
      const promotedAt = lab.promotionsSince(faultAt)[0]!.atMs;
      const asked = promoted.find((h) => h.stdin.event === 'before-promote')!;
      assert.ok(asked.atMs <= promotedAt + 5, `before-promote ran before PostgreSQL promoted (${asked.atMs} vs ${promotedAt})`);
      assert.equal(asked.stdin.role, 'promoting');
      assert.equal(asked.stdin.term, report.final.term);
      const old = fenced.map(label);
      const fence = old.indexOf('on-fence');
      const rejoin = old.indexOf('on-rejoin');
      assert.ok(fence >= 0 && old.indexOf('primary→fenced') >= 0 && old.indexOf('primary→fenced') < fence, `${r.primary}: primary→fenced, then on-fence: ${old.join(', ')}`);
      assert.ok(rejoin > fence && old.slice(fence, rejoin).some((e) => e.endsWith('→standby')), `${r.primary}: …→standby, then on-rejoin, after the fence: ${old.join(', ')}`);
      // The same event twice, and nothing of the agent: no capability, no other variable.
      for (const [node, runs] of [[r.standby, promoted], [r.primary, fenced]] as const) {
        for (const h of runs) {
          const e = h.stdin;
          assert.deepEqual(
            {
              event: h.env.PGVIP_EVENT, node: h.env.PGVIP_NODE, peer: h.env.PGVIP_PEER, role: h.env.PGVIP_ROLE,
              term: h.env.PGVIP_TERM, primary: h.env.PGVIP_PRIMARY, previousRole: h.env.PGVIP_PREVIOUS_ROLE,
              cluster: h.env.PGVIP_CLUSTER, detail: h.env.PGVIP_DETAIL, at: h.env.PGVIP_AT,
            },
            { event: e.event, node, peer: otherNode(node), role: e.role, term: String(e.term), primary: (e.primary as string | null) ?? '', previousRole: e.previousRole ?? '', cluster: e.cluster, detail: e.detail, at: e.at },
            `${node} ${label(h)}: stdin and environment agree`,
          );
          assert.equal(e.version, 1);
          assert.deepEqual(Object.keys(h.env).filter((k) => !k.startsWith('PGVIP_')).sort().filter((k) => !['HOME', 'LANG', 'LC_ALL', 'PATH', 'TZ'].includes(k)), [], `${node} ${label(h)}: only PATH, HOME, LANG, LC_ALL, TZ of the agent's environment`);
          assert.equal(h.uid, osUser('postgres').uid, 'as the agent\'s user');
          assert.equal(`${h.capEff}/${h.capAmb}`, '0000000000000000/0000000000000000', `${node} ${label(h)}: without the agent's CAP_NET_ADMIN`);
        }
      }
    });

    // docs/hooks.md, "before-promote and its veto".
    row('a before-promote veto: the standby stays in recovery without the VIP (no primary, never two) and retries; it promotes once the hook allows it', async (r) => {
      writeFileSync(kit.veto(r.standby), 'no\n');
      const faultAt = await lab.faults.isolate(r.primary);
      try {
        await waitFor(`${r.standby}'s before-promote to veto twice`, 60_000, async () => kit.hookRuns(r.standby, faultAt).filter((h) => h.stdin.event === 'before-promote').length >= 2);
        await hold(3_000);
        assert.deepEqual(lab.promotionsSince(faultAt), [], 'no promotion while the hook vetoes');
        assert.equal(await psql(r.standby, 'SELECT pg_is_in_recovery()'), 't', `${r.standby} is still in recovery`);
        assert.equal((await lab.agentStatus(r.standby))?.role, 'promoting', `${r.standby} holds the term as promoting`);
        assert.equal(firstAckAfter(lab.writer!.records, faultAt, { server: r.standby }), undefined, `${r.standby} acknowledged no write`);
        assert.notEqual(lab.emulator.vipMovesSince(faultAt).at(-1)?.node, r.standby, 'the VIP did not move to the vetoing node');
        assert.ok(lab.logOf(r.standby).some((l) => l.atMs >= faultAt && /vetoed by the before-promote hook \(exited 1 after \d+ ms: lab veto/.test(JSON.stringify(l.fields) + l.msg)), 'the veto is logged with the hook\'s words');
        await waitFor('promotion-vetoed in the operator\'s events', 30_000, async () => lab.operatorEvents(faultAt).some((e) => e.type === 'promotion-vetoed' && e.node === r.standby), 500,
          () => lab.operatorEvents(faultAt).map((e) => e.type).join(', '));
      } finally {
        rmSync(kit.veto(r.standby), { force: true });
      }
      const allowedAt = Date.now();
      await lab.writer!.waitForAcks(allowedAt, 3, 30_000, r.standby);
      const first = firstAckAfter(lab.writer!.records, faultAt, { server: r.standby })!;
      opts.note(`vetoed ${kit.hookRuns(r.standby, faultAt).filter((h) => h.stdin.event === 'before-promote').length - 1} times; writes on ${r.standby} ${first.doneAt - allowedAt} ms after the veto was lifted`);
      assertFailedOver(r, await checks(faultAt));
    });

    // docs/design.md, "Replication slots": the WAL a standby needs stays on the primary while it is
    // down, beyond what the primary keeps without a slot. The lab's servers keep 256 MB
    // (wal_keep_size, for the other rows); this row sets PostgreSQL's default, 0, on the primary, so
    // that only the slot and the last checkpoint hold WAL.
    row('a standby down while the primary writes past its WAL retention catches up through its slot, without a re-seed', async (r) => {
      const control = process.env.PGVIP_LAB_SLOT_CONTROL === 'drop';
      // (A freshly built lab's standby gets its slot within a slot-keeper round or two.)
      await assertStreamsThroughSlot(r.primary, r.standby);
      const marker = path.join(lab.pg[r.standby].dataDir, 'lab-not-reseeded');
      writeFileSync(marker, `${r.startedAt}\n`);
      await lab.agents[r.standby].stop();
      await stopServer(lab.pg[r.standby]);
      const downAt = Date.now();
      await psql(r.primary, 'ALTER SYSTEM SET wal_keep_size = 0');
      await psql(r.primary, 'SELECT pg_reload_conf()');
      try {
        const restart = await psql(r.primary, `SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '${slotOf(r.standby)}'`);
        assert.match(restart, /^[0-9A-F]+\/[0-9A-F]+$/, `${r.primary} keeps ${slotOf(r.standby)} with a restart_lsn`);
        const needed = await psql(r.primary, `SELECT pg_walfile_name('${restart}')`);
        // More WAL than the primary keeps without a slot: segment switches, then checkpoints.
        await psql(r.primary, 'CREATE TABLE IF NOT EXISTS lab.while_down (n int, at timestamptz DEFAULT now())');
        for (let i = 0; i < 6; i++) await psql(r.primary, `INSERT INTO lab.while_down (n) SELECT g FROM generate_series(1, 2000) g; SELECT pg_switch_wal()`);
        await psql(r.primary, 'CHECKPOINT');
        if (control) {
          // Dropped after a checkpoint past the segment the standby needs: a new physical slot
          // reserves WAL from the last checkpoint's redo point, so the keeper's fresh one holds
          // only later segments.
          await psql(r.primary, `SELECT pg_drop_replication_slot('${slotOf(r.standby)}')`);
          const again = await waitFor(`${r.primary}'s slot keeper to make ${slotOf(r.standby)} again`, 20_000, async () =>
            (await psql(r.primary, `SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '${slotOf(r.standby)}'`)) || null, 500).catch(() => 'no slot');
          opts.note(`control: dropped ${slotOf(r.standby)} on ${r.primary}; made again at ${again}`);
        }
        await psql(r.primary, 'INSERT INTO lab.while_down (n) VALUES (-1); SELECT pg_switch_wal()');
        await psql(r.primary, 'CHECKPOINT');
        const redo = await psql(r.primary, 'SELECT pg_walfile_name(redo_lsn) FROM pg_control_checkpoint()');
        const kept = await psql(r.primary, `SELECT count(*) FROM pg_ls_waldir() WHERE name = '${needed}'`);
        const status = await psql(r.primary, `SELECT coalesce(max(wal_status), 'none') FROM pg_replication_slots WHERE slot_name = '${slotOf(r.standby)}'`);
        opts.note(`${r.standby} needs ${needed}; ${r.primary}'s last checkpoint starts in ${redo}; ${needed} ${kept === '1' ? 'is still there' : 'is gone'}; slot ${status}`);
        // Without the slot the checkpoint would have removed every segment before its redo point
        // (wal_keep_size 0): the one the standby needs is older than that.
        assert.ok(needed < redo, `${needed} is older than the checkpoint's ${redo}: only a slot can keep it`);
        if (!control) {
          assert.equal(kept, '1', `${r.primary} still has ${needed}`);
          assert.ok(['reserved', 'extended'].includes(status), `the slot holds the WAL (wal_status ${status})`);
        }
        const rows = await psql(r.primary, 'SELECT count(*) FROM lab.while_down');

        await startServer(lab.pg[r.standby], lab.reaper);
        lab.agents[r.standby].start();
        await assertStreamsThroughSlot(r.primary, r.standby);
        await waitFor(`${r.standby} to replay what was written while it was down`, 60_000, async () => (await psql(r.standby, 'SELECT count(*) FROM lab.while_down').catch(() => '')) === rows);
        opts.note(`${r.standby} streams again ${Date.now() - downAt} ms after it went down`);
      } finally {
        await psql(r.primary, 'ALTER SYSTEM RESET wal_keep_size');
        await psql(r.primary, 'SELECT pg_reload_conf()');
      }
      assert.ok(existsSync(marker), `${r.standby}'s data directory is the same one: no re-seed`);
      assert.ok(!lab.logOf(r.standby).some((l) => l.atMs >= downAt && (l.event === 'rejoined' || l.event === 'reseed-fallback')), `${r.standby} did not rejoin or re-seed`);
      assert.doesNotMatch(readFileSync(lab.pg[r.standby].logFile, 'utf8').split('\n').filter((l) => Date.parse(l.slice(0, 23).replace(' ', 'T') + 'Z') >= downAt).join('\n'), /has already been removed/);
      const report = await checks(r.startedAt);
      assert.equal(report.final.primary, r.primary, 'no failover');
      rmSync(marker, { force: true });
    });

    // docs/runbook.md, "Re-seeding a standby": methods [command, basebackup], the command first.
    row('a rejoin pg_rewind cannot do (pg_control gone) is re-seeded by the command method from a local base backup, and streams through its slot', async (r) => {
      // The backup the command restores, taken from the standby (the primary-to-be) onto the primary's
      // host, as a backup tool's repository would hold one; the WAL archive stays empty, the restored
      // node follows the new primary's timeline by streaming.
      rmSync(kit.backup(r.primary), { recursive: true, force: true });
      await mustRunOnHost(r.primary, [path.join(pgBinDir, 'pg_basebackup'), '-D', kit.backup(r.primary), '-d', `host=${lab.topology.hosts[r.standby].address} port=5432 user=postgres`, '-X', 'stream', '-c', 'fast', '--no-sync'], { user: 'postgres', cgroup: false, timeoutMs: 120_000 });
      rmSync(path.join(lab.pg[r.primary].dataDir, 'global', 'pg_control'));
      const faultAt = lab.faults.killPostgres(lab.pg[r.primary]);
      await lab.writer!.waitForAcks(faultAt, 3, 60_000, r.standby);
      await psql(r.standby, "CREATE TABLE IF NOT EXISTS lab.after_reseed (v text); INSERT INTO lab.after_reseed VALUES ('written on the new primary')");
      const report = await checks(faultAt);
      assertFailedOver(r, report);
      const rejoined = lab.logOf(r.primary).find((l) => l.atMs >= faultAt && l.event === 'rejoined');
      assert.ok(rejoined, `${r.primary} rejoined`);
      assert.match(JSON.stringify(rejoined.fields), /command \(pg_rewind failed: .*\) in \d+ ms/, `${r.primary} was re-seeded by the command after pg_rewind failed`);
      assert.match(readFileSync(path.join(lab.pg[r.primary].dataDir, 'postgresql.auto.conf'), 'utf8'), new RegExp(`restore_command = 'cp ${kit.archive(r.primary)}/%f %p'`), 'the command restored the directory');
      await waitFor('reseed-fallback in the operator\'s events', 30_000, async () => lab.operatorEvents(faultAt).some((e) => e.type === 'reseed-fallback' && e.node === r.primary), 500);
      await waitFor(`${r.primary} to have the row written after the failover`, 30_000, async () => (await psql(r.primary, 'SELECT count(*) FROM lab.after_reseed').catch(() => '')) === '1');
      await assertStreamsThroughSlot(r.standby, r.primary);
    });

    // docs/runbook.md, "A hung agent: the watchdog". Last: it moves the primary's agent out of the
    // lab's supervisor into a real systemd manager for the row, and back.
    const noSystemd = systemdUnavailable();
    it('a hung primary agent (SIGSTOP) under systemd with the unit\'s WatchdogSec: the keep-alives stop, systemd kills and restarts it; meanwhile its PostgreSQL commits nothing after the lease and the standby is not promoted', { skip: noSystemd ?? false, timeout: 5 * 60_000 }, async () => {
      try {
        await lab.restoreAll();
        const h = await lab.waitHealthy(180_000);
        const r = rowOf(h);
        const props = agentUnitWatchdogProperties();
        const watchdogMs = Number(/^(\d+)s$/.exec(props.WatchdogSec!)?.[1]) * 1_000;
        assert.ok(watchdogMs > 0, `WatchdogSec=${props.WatchdogSec}`);
        systemd = await LabSystemd.start(path.join(kit.dir, 'systemd'));
        // The same agent, same argv, user, capability and environment, now a unit of systemd.
        const spec = lab.agents[r.primary].spec;
        await lab.agents[r.primary].stop();
        // Not in the host's freezer cgroup (moving a unit's process there fails with EIO; this row
        // hangs the agent alone, it freezes no host).
        const argv = onHost(spec.host, spec.argv, { ...spec.run, cgroup: false });
        await systemd.run(watchdogUnit, { argv, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...spec.env }, cwd: spec.cwd ?? repoRoot, logFile: spec.logFile, properties: props });
        let lastShow: Record<string, string> = {};
        const show = async () => {
          lastShow = await systemd!.show(watchdogUnit, ['MainPID', 'NRestarts', 'WatchdogTimestampMonotonic', 'ActiveState', 'Result']);
          return lastShow;
        };
        await waitFor(`${r.primary}'s agent under systemd to report primary`, 60_000, async () => (await show()) && (await lab.agentStatus(r.primary))?.role === 'primary', 500,
          () => `${JSON.stringify(lastShow)}; ${lab.logOf(r.primary).slice(-8).map((l) => l.msg).join(' | ')}`);
        assert.ok(lab.logOf(r.primary).some((l) => l.atMs >= r.startedAt && l.msg.startsWith('systemd watchdog on') && l.fields.watchdogMs === watchdogMs), 'the agent found the watchdog systemd asked for');
        const first = await show();
        const kept = await waitFor('a keep-alive (WATCHDOG=1) to reach systemd', 30_000, async () => {
          const s = await show();
          return s.WatchdogTimestampMonotonic !== first.WatchdogTimestampMonotonic && s.WatchdogTimestampMonotonic !== '0' ? s : null;
        }, 500);
        const pid = Number(kept.MainPID);
        assert.ok(pid > 0 && kept.NRestarts === '0', JSON.stringify(kept));

        // The agent hangs: every thread stopped, its HTTP server and its heartbeat with it.
        const guard = (await psql(r.primary, "SELECT count(*) FROM pg_settings WHERE name = 'pgvip_commit_guard.enabled'")) === '1';
        process.kill(pid, 'SIGSTOP');
        const hungAt = Date.now();
        await hold(2_000);
        const lastKeepAlive = (await show()).WatchdogTimestampMonotonic;
        // systemd kills it (WatchdogSignal, SIGABRT by default) and starts it again RestartSec later.
        const restarted = await waitFor('systemd to restart the hung agent', watchdogMs + 30_000, async () => {
          const s = await show();
          if (s.MainPID === String(pid)) assert.equal(s.WatchdogTimestampMonotonic, lastKeepAlive, 'no keep-alive from the hung agent');
          return s.MainPID !== String(pid) && s.MainPID !== '0' && s.NRestarts === '1' ? s : null;
        }, 250);
        const restartedAt = Date.now();
        const restartedAfterMs = restartedAt - hungAt;
        assert.ok(!existsSync(`/proc/${pid}`), 'the hung process is gone');
        assert.ok(restartedAfterMs >= watchdogMs - 5_000, `restarted ${restartedAfterMs} ms after the hang, not before WatchdogSec (${watchdogMs} ms) since the last keep-alive`);
        // Meanwhile (docs/design.md, row 5: an agent gone, its PostgreSQL streaming): the standby is
        // refused the term while the primary's PostgreSQL streams to it, and that PostgreSQL stops
        // committing when the lease its hung agent last renewed runs out (the commit guard). Nobody
        // acknowledged a write in the last 10 s of the hang.
        assert.deepEqual(lab.promotionsSince(hungAt), [], 'no promotion while the agent hung');
        const quiet = acknowledged(lab.writer!.since(hungAt + 10_000, restartedAt - 1_000));
        if (guard) assert.deepEqual(quiet.map((a) => `${a.id}@${a.server}`), [], 'no write acknowledged after the hung agent\'s lease');
        assert.ok(lab.logOf(r.standby).some((l) => l.atMs >= hungAt && /failed \d+ consecutive checks/.test(l.msg)), `${r.standby} noticed the hung agent`);
        opts.note(`agent hung: ${quiet.length} writes acknowledged from 10 s after the hang until the restart; systemd restarted the agent after ${restartedAfterMs} ms (WatchdogSec ${props.WatchdogSec}), pid ${pid} → ${restarted.MainPID}`);
        // The restarted agent takes its lease back: writes go on, on the same primary and term.
        await lab.writer!.waitForAcks(restartedAt, 3, 60_000, r.primary);
        const resumed = firstAckAfter(lab.writer!.records, restartedAt, { server: r.primary })!;
        opts.note(`writes on ${r.primary} again ${resumed.doneAt - restartedAt} ms after the restart`);
        const report = await checks(r.startedAt);
        assert.equal(report.final.primary, r.primary, 'the primary stays');
        assert.equal(report.final.term, r.term, 'the term stays');
        assert.deepEqual(lab.promotionsSince(r.startedAt), [], 'no promotion');
        await systemd.stop(watchdogUnit);
        lab.agents[r.primary].start();
        await lab.waitHealthy(120_000);
      } catch (err) {
        failed = true;
        lab.markFailed();
        throw err;
      }
    });
  });
}
