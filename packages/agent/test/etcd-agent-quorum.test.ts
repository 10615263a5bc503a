// Goal: the agent's shell on etcd (quorum/etcd/agent-quorum.ts) does what docs/design.md, Quorum on
// etcd, gives it beside the bridge: the switchover's handover txn (the `quorum-handover` effect),
// the member status under members/<node> on a lease of its own, the switchover key taken by the
// primary alone and handed to the core as the switchover request, and lease requests that do not
// queue up behind a slow etcd. On the fake etcd, which runs the same protocol code as the client.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import { PROTOCOL_VERSION, defaultTimings, type AgentStatus, type PeerReply, type PeerRequest } from '@pgvip/shared';
import { EtcdAgentQuorum, type RunnerView } from '../src/quorum/etcd/agent-quorum.js';
import { clusterKeys, FakeEtcd, FakeEtcdQuorum, type EtcdQuorumPort } from '../src/quorum/etcd/index.js';
import { stopDecisionLoops } from '../src/shutdown.js';

const prefix = '/pgvip';
const cluster = 'main';
const keys = clusterKeys(prefix, cluster);
const envelope = (from: string, term: number) => ({ v: PROTOCOL_VERSION, cluster, term, from });

function world(t: TestContext) {
  let nowMs = 1000;
  const clock = (): number => nowMs;
  const etcd = new FakeEtcd(clock);
  const node = (self: string) => {
    const q = new EtcdAgentQuorum(new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock }), {
      cluster, self, quorumId: 'etcd', timings: defaultTimings, replication: 'async', logger: pino({ level: 'silent' }), clock,
    });
    t.after(() => q.close());
    return q;
  };
  return { etcd, node, advance: (ms: number) => (nowMs += ms) };
}

const json = (b: Buffer | null): unknown => (b === null ? null : JSON.parse(b.toString('utf8')));

async function vote(q: EtcdAgentQuorum, from: string, term: number): Promise<PeerReply | null> {
  return q.ask({ ...envelope(from, term), kind: 'vote-request', lastTerm: term - 1, lsn: 0n, timeline: 1 });
}

const lease = (from: string, term: number, seq: number): PeerRequest => ({
  ...envelope(from, term), kind: 'lease-request', seq, lsn: 0n, timeline: 1, syncStandby: null,
});

/** What a runner serves on /status, as the shell's loops read it. */
function statusOf(self: string, role: AgentStatus['role'], primaryOfTerm: string, term: number): AgentStatus {
  return {
    ...envelope(self, term),
    primaryOfTerm,
    role,
    pg: {
      running: true, inRecovery: role !== 'primary', writable: role === 'primary', timeline: 1, lsn: 0x3000060n, replayLsn: 0x3000060n,
      streaming: role !== 'primary', syncStandby: null, standbyInSync: false,
    },
    leaseRemainingMs: 0,
    promotionBlocker: role === 'primary' ? 'this node is the primary' : null,
    maintenance: false,
  };
}

/** A runner view that records the requests the shell hands the core, and answers as the core would. */
function runner(status: AgentStatus): RunnerView & { requests: PeerRequest[] } {
  const requests: PeerRequest[] = [];
  return {
    requests,
    status: () => status,
    handleRequest(msg) {
      requests.push(msg);
      return { ...envelope(status.from, status.term), kind: 'ack', accepted: true, reason: 'switchover started' };
    },
  };
}

describe('the agent\'s shell on etcd', () => {
  it('the handover txn names the successor for the next term; the successor takes the key; a stale holder is refused', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    const b = w.node('db-b');
    assert.equal((await vote(a, 'db-a', 1))?.kind, 'vote-reply');
    const done = await a.handover(1, 'db-b');
    assert.deepEqual(done, { ok: true, detail: 'etcd\'s term record names db-b for term 2' });
    assert.deepEqual(json(w.etcd.get(keys.term)), { term: 2, primary: 'db-b' });
    assert.equal(w.etcd.get(keys.leader), null, 'the holder\'s key went in the same txn');
    // The successor, told by the handover message, asks for its lease in term 2 and takes the key.
    const r = await b.ask(lease('db-b', 2, 1));
    assert.ok(r?.kind === 'lease-reply' && r.granted, JSON.stringify(r));
    assert.deepEqual(json(w.etcd.get(keys.leader)), { node: 'db-b', term: 2 });
    // The old holder cannot hand over again: the effect reports the failure, and the switchover aborts.
    const again = await a.handover(1, 'db-b');
    assert.equal(again.ok, false);
    assert.match(again.detail, /no leader key of db-a for term 1|leader key names db-b/);
  });

  it('a handover whose txn cannot reach etcd is reported failed, and nothing moved', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    await vote(a, 'db-a', 1);
    w.etcd.available = false;
    const r = await a.handover(1, 'db-b');
    assert.equal(r.ok, false);
    w.etcd.available = true;
    assert.deepEqual(json(w.etcd.get(keys.term)), { term: 1, primary: 'db-a' });
  });

  it('publishes the member status on its own lease, and takes it away when the agent stops', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    a.start(runner(statusOf('db-a', 'standby', 'db-b', 3)));
    const published = await waitFor(() => w.etcd.get(keys.member('db-a')));
    assert.deepEqual(json(published), {
      node: 'db-a', role: 'standby', term: 3, timeline: 1, lsn: '0/3000060', replayLsn: '0/3000060', streaming: true,
      writable: false, promotionBlocker: null,
    });
    const [kv] = w.etcd.read([keys.member('db-a')]);
    assert.notEqual(kv?.lease, '0', 'on a lease, so a member that dies goes away');
    await a.close();
    assert.equal(w.etcd.get(keys.member('db-a')), null);
  });

  it('an agent stopped while a status round runs leaves no member status behind', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    a.start(runner(statusOf('db-a', 'standby', 'db-b', 3)));
    await a.close(); // the first round is still on its way to etcd
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(w.etcd.get(keys.member('db-a')), null, 'a stopped member must not look alive for its status lease\'s TTL');
  });

  it('the primary takes the switchover key and gives the core the switchover request; a standby leaves it', async (t) => {
    const w = world(t);
    const request = { to: 'db-b', term: 4, requestedBy: 'ops' };
    w.etcd.putRaw(keys.switchover, Buffer.from(JSON.stringify(request)));
    const standby = runner(statusOf('db-b', 'standby', 'db-a', 4));
    w.node('db-b').start(standby);
    const primary = runner(statusOf('db-a', 'primary', 'db-a', 4));
    // The standby's rounds run first and find the key; only the primary may take it.
    await new Promise((r) => setTimeout(r, 20));
    assert.notEqual(w.etcd.get(keys.switchover), null);
    assert.deepEqual(standby.requests, []);
    w.node('db-a').start(primary);
    await waitFor(() => (w.etcd.get(keys.switchover) === null ? true : null));
    await waitFor(() => primary.requests[0] ?? null);
    assert.deepEqual(primary.requests, [{ ...envelope('etcd', 4), kind: 'switchover-request', to: 'db-b' }]);
    // Written again later (the watch tells the primary at once): one more request, one more take.
    w.etcd.putRaw(keys.switchover, Buffer.from(JSON.stringify({ ...request, requestedBy: 'ops-again' })));
    await waitFor(() => primary.requests[1] ?? null);
    assert.equal(w.etcd.get(keys.switchover), null);
  });

  it('a switchover request the runner throws on, told by the watch, is logged: the agent lives on', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    const status = statusOf('db-a', 'primary', 'db-a', 4);
    let asked = 0;
    a.start({
      status: () => status,
      handleRequest() {
        asked += 1;
        throw new Error('the core produced no reply to switchover-request');
      },
    });
    await new Promise((r) => setTimeout(r, 20)); // the first round ran, the watch is open
    w.etcd.putRaw(keys.switchover, Buffer.from(JSON.stringify({ to: 'db-b', term: 4, requestedBy: 'ops' })));
    await waitFor(() => (asked > 0 ? true : null));
    // An unhandled rejection would fail this test (and end an agent's process) by now.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(w.etcd.get(keys.switchover), null, 'the key was taken once');
  });

  it('on shutdown the loops end before the runner stops: a switchover key written meanwhile stays in etcd', async (t) => {
    // The daemon's order (shutdown.ts). A runner that stopped acts on nothing: a key taken then is a
    // switchover lost, and the operator's request must wait for the primary that runs next.
    const w = world(t);
    const a = w.node('db-a');
    const primary = runner(statusOf('db-a', 'primary', 'db-a', 4));
    let stopped = false;
    const afterStop: PeerRequest[] = [];
    a.start({
      status: () => primary.status(),
      handleRequest(msg) {
        if (stopped) afterStop.push(msg);
        return primary.handleRequest(msg);
      },
    });
    await new Promise((r) => setTimeout(r, 20)); // the first round ran, the watch is open
    const stopping = {
      async stop() {
        stopped = true;
        // The runner waits for its last probe and commit guard: the operator writes the key meanwhile.
        w.etcd.putRaw(keys.switchover, Buffer.from(JSON.stringify({ to: 'db-b', term: 4, requestedBy: 'ops' })));
        await new Promise((r) => setTimeout(r, 200));
      },
    };
    await stopDecisionLoops(stopping, a);
    assert.deepEqual(afterStop, [], 'a stopped runner was handed the switchover request');
    assert.notEqual(w.etcd.get(keys.switchover), null, 'the key stays for the next primary');
  });

  it('a lease request asked while one is still with etcd is dropped, not queued behind it', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    await vote(a, 'db-a', 1);
    const [first, second] = await Promise.all([a.ask(lease('db-a', 1, 1)), a.ask(lease('db-a', 1, 2))]);
    assert.ok(first?.kind === 'lease-reply' && first.granted);
    assert.equal(second, null);
    const third = await a.ask(lease('db-a', 1, 3));
    assert.ok(third?.kind === 'lease-reply' && third.granted && third.seq === 3);
  });

  it('a campaign in maintenance is refused: nobody takes the leader key', async (t) => {
    const w = world(t);
    const a = w.node('db-a');
    await vote(a, 'db-a', 1);
    w.etcd.putRaw(keys.maintenance, Buffer.from(JSON.stringify({ requestedBy: 'ops', reason: 'patching' })));
    await a.ask({ ...envelope('db-a', 1), kind: 'lease-release', reason: 'fenced', leaseSeq: 1 });
    assert.equal(w.etcd.get(keys.leader), null);
    const r = await vote(w.node('db-b'), 'db-b', 2);
    assert.ok(r?.kind === 'vote-reply' && !r.granted, JSON.stringify(r));
    assert.match(r.reason, /maintenance/);
    assert.equal(w.etcd.get(keys.leader), null);
    assert.deepEqual(json(w.etcd.get(keys.term)), { term: 1, primary: 'db-a' });
  });
});

/** The fake etcd behind a network that takes `delay.ms` for every call (a slow or distant etcd). */
function slowPort(inner: EtcdQuorumPort, delay: { ms: number }): EtcdQuorumPort {
  const later = async <T>(call: () => Promise<T>): Promise<T> => {
    await new Promise((r) => setTimeout(r, delay.ms));
    return call();
  };
  return {
    grantLease: (ms) => later(() => inner.grantLease(ms)),
    keepAlive: (l) => later(() => inner.keepAlive(l)),
    revokeLease: (l) => later(() => inner.revokeLease(l)),
    read: () => later(() => inner.read()),
    renew: (h) => later(() => inner.renew(h)),
    campaign: (req) => later(() => inner.campaign(req)),
    takeLeaderKey: (h) => later(() => inner.takeLeaderKey(h)),
    setSync: (h, s) => later(() => inner.setSync(h, s)),
    handover: (h, to, g) => later(() => inner.handover(h, to, g)),
    publishPosition: (n, p) => later(() => inner.publishPosition(n, p)),
    clearPosition: (n, a) => later(() => inner.clearPosition(n, a)),
    takeSwitchover: (req) => later(() => inner.takeSwitchover(req)),
    publishMember: (st, l) => later(() => inner.publishMember(st, l)),
    readMembers: () => later(() => inner.readMembers()),
    watch: (fn) => later(() => inner.watch(fn)),
    close: () => inner.close(),
  };
}

describe('the agent\'s shell on a slow etcd', () => {
  it('an answer later than requestTimeoutMs is lost, and a call whose time ran out waiting is not made', async (t) => {
    // The core counts a won vote from its latest vote request of that term; it asks again
    // requestTimeoutMs + heartbeatMs after the last. A reply that came later than that would be counted
    // from the new request, while etcd's lease began before it: validity longer than etcd's key.
    const clock = (): number => performance.now();
    const etcd = new FakeEtcd(clock);
    const timings = { ...defaultTimings, requestTimeoutMs: 400 };
    const delay = { ms: 250 };
    const port = slowPort(new FakeEtcdQuorum(etcd, { prefix, cluster, timeoutMs: 400, clock }), delay);
    const q = new EtcdAgentQuorum(port, {
      cluster, self: 'db-a', quorumId: 'etcd', timings, replication: 'async', logger: pino({ level: 'silent' }), clock,
    });
    t.after(() => q.close());
    // A vote is at least two round trips (the read and the lease, then the campaign txn): 500 ms and
    // more, past the 400 the core waits.
    const askedAt = clock();
    const [first, release] = await Promise.all([
      vote(q, 'db-a', 1),
      // Asked meanwhile, it waits behind the vote past its own time: dropped, not run late.
      q.ask({ ...envelope('db-a', 1), kind: 'lease-release', reason: 'fenced', leaseSeq: 1 }),
    ]);
    assert.equal(first, null, `a vote reply ${Math.round(clock() - askedAt)} ms after the ask must not reach the core`);
    assert.equal(release, null);
    // The vote's calls end by about 1000 ms; the release's turn comes then and goes without a call.
    await new Promise((r) => setTimeout(r, 900));
    // The txn committed all the same (a lost reply): asked again, the shell finds its own key, in time.
    assert.deepEqual(json(etcd.get(keys.leader)), { node: 'db-a', term: 1 }, 'the release that came too late was not run');
    delay.ms = 50;
    const again = await vote(q, 'db-a', 1);
    assert.ok(again?.kind === 'vote-reply' && again.granted, JSON.stringify(again));
  });
});

async function waitFor<T>(fn: () => T | null, ms = 2000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
