// The EC2 half of the VIP, one implementation per mode (secondary-ip.ts, route-table.ts).
import type { CallContext } from './ec2-call.js';
import type { VipTarget } from './discovery.js';

/** What EC2 says about where the VIP goes. */
export interface CloudView {
  /** EC2 routes the VIP to the target ENI now (as far as it can tell). */
  readonly routedHere: boolean;
  /** One phrase for the log: who holds it, what lags. */
  readonly detail: string;
}

export interface CloudRouting {
  /**
   * Points the VIP at `target` in EC2; idempotent. Returns the request ids of the calls that changed (or
   * confirmed) it.
   */
  pointAt(target: VipTarget, context: CallContext): Promise<string[]>;
  /** Asks EC2 (and, where it helps, IMDS) whether the VIP is routed to `target`. */
  inspect(target: VipTarget, context: CallContext): Promise<CloudView>;
}
