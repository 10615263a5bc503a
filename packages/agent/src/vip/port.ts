// The agent's view of the VIP: the four effects the decision core asks for (move-vip-cloud,
// add-vip-local, drop-vip-local, verify-vip). Two implementations: Ec2VipPort (EC2 API + IMDSv2 +
// `ip addr`) and FakeVipPort (in memory, two nodes sharing one FakeVipCloud).
//
// Rules every method follows:
// - Idempotent: calling again after success (or after a crash half-way, or after a lost answer)
//   ends in the same state, so a restarted agent can replay its last effect.
// - Bounded: every call ends within its budget plus one attempt's timeout.
// - Commands throw a PgvipError (PGVIP_VIP_*); verify() returns a placement, and throws only when it
//   cannot find out (EC2 or the OS interface did not answer).

/**
 * Where the VIP is, seen from this node:
 * - here:       EC2 routes it to this node and it is configured on the OS interface;
 * - cloud-only: EC2 routes it to this node, the OS interface lacks it (add it locally);
 * - elsewhere:  EC2 does not (yet) route it to this node (move it, or wait for the remap).
 */
export type VipPlacement = 'here' | 'cloud-only' | 'elsewhere';

export interface VipPort {
  /**
   * Point the VIP at this node in EC2. Idempotent; "already done" is success. No attempt starts after
   * budgetMs from the call, so a move decided for a term can never land long after that term's lease
   * ran out. Throws PgvipError. Returns the AWS request ids of the calls that succeeded.
   */
  moveInCloud(opts: { term: number; budgetMs: number }): Promise<{ requestIds: string[] }>;
  /** Configure the VIP on the OS interface (ip addr add); idempotent. */
  addLocal(): Promise<void>;
  /** Remove it from the OS interface (ip addr del); idempotent, harmless when absent. */
  dropLocal(): Promise<void>;
  /** Where EC2 routes the VIP: here (EC2 and the OS interface), cloud-only (EC2 here, OS not), elsewhere. */
  verify(): Promise<VipPlacement>;
}

/** The placement from its two halves: does EC2 route the VIP here, is it on the OS interface. */
export function placementOf(routedHere: boolean, onInterface: boolean): VipPlacement {
  if (!routedHere) return 'elsewhere';
  return onInterface ? 'here' : 'cloud-only';
}
