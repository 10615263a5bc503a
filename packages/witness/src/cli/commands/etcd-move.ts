// `pgvip etcd seed` and `pgvip etcd hand-back`: the two steps that carry a cluster's term between the
// witness and etcd when its quorum moves (docs/etcd.md, "Moving a cluster between the witness and
// etcd"; the witness's side is quorum-move.ts). Each is one request to the witness, which checks that
// the cluster is at rest and refuses with why otherwise.
import type { Command } from 'commander';
import type { RunAction } from '../session.js';
import { report } from './operate.js';

export function addEtcdMoveCommands(program: Command, run: RunAction): void {
  const etcd = program
    .command('etcd')
    .description('move a cluster\'s quorum between the witness and etcd without a failover (docs/etcd.md)');
  const moves = [
    {
      name: 'seed',
      to: 'etcd',
      description: 'witness → etcd: write the witness\'s current term and primary into etcd (only if etcd holds no later term and no leader key), with the maintenance key; needs maintenance on and both agents agreeing on the term',
    },
    {
      name: 'hand-back',
      to: 'witness',
      description: 'etcd → witness: write etcd\'s current term and primary into the witness\'s state file, with maintenance on, before the witness is restarted with quorum.backend: witness; needs maintenance on, the leader key held and both agents agreeing',
    },
  ] as const;
  for (const { name, to, description } of moves) {
    etcd
      .command(name)
      .description(description)
      .action((_opts, cmd: Command) =>
        run(async (s) => {
          const view = await s.cluster();
          const reply = await (await s.client()).command(view.cluster, 'quorum-move', { to });
          report(s, view.cluster, `etcd ${name}`, reply);
        }, cmd),
      );
  }
}
