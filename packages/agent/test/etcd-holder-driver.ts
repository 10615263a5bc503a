// A leader-key holder in a process of its own, for etcd-quorum-faults.test.ts to kill with SIGKILL:
// it takes term 1 and renews every heartbeat. Before each renewal it prints the time it is about to
// send, and after each one whether it renewed. Times are the host's CLOCK_MONOTONIC in ms, which the
// test process reads too.
//   node --conditions=pgvip-source --import tsx etcd-holder-driver.ts \
//     <endpoints, comma-separated> <prefix> <cluster> <leaseMs>
import { EtcdQuorum } from '../src/quorum/etcd/index.js';

const [endpoints = '', prefix = '', cluster = '', leaseText = ''] = process.argv.slice(2);
const hostMonotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const q = new EtcdQuorum({ endpoints: endpoints.split(','), prefix, cluster, timeoutMs: 400, clock: hostMonotonicMs });
const say = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

const g = await q.grantLease(Number(leaseText));
if (!g.ok) throw new Error(g.why);
const won = await q.campaign({ node: 'db-a', after: null, lease: g.lease, sync: 'async' });
if (!won.ok) throw new Error(won.why);
for (;;) {
  say({ sending: hostMonotonicMs() });
  const r = await q.renew({ node: 'db-a', term: 1, lease: g.lease });
  say({ renewed: r.renewed, sentAtMs: r.sentAtMs });
  await new Promise((resolve) => setTimeout(resolve, 500));
}
