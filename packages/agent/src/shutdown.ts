// The order the daemon stops its decision loops in. On etcd the quorum runs loops of its own beside
// the runner's (docs/design.md, Quorum on etcd): the switchover key's, which hands the operator's
// request to the runner. They end first, so that no request goes to a runner that has stopped
// acting (the key would be taken and the switchover lost); the quorum's client closes last, after
// the runner, whose last tick or handover may still be talking to etcd.

interface Stoppable {
  stop(): Promise<void>;
}

/** What the daemon needs of the quorum on etcd (EtcdAgentQuorum). */
export interface QuorumLoops {
  stopLoops(): Promise<void>;
  close(): Promise<void>;
}

export async function stopDecisionLoops(runner: Stoppable, quorum: QuorumLoops | null): Promise<void> {
  await quorum?.stopLoops();
  await runner.stop();
  await quorum?.close();
}
