// Fault injection for the EC2 API, per action, by count or probability (with a seeded RNG so a
// failing run can be replayed). The kinds are the failures a VIP mover must survive in AWS:
//   throttle       RequestLimitExceeded 503 — the SDK retries it with backoff
//   internal-error InternalError 500 / unavailable Unavailable 503 — server side, retried
//   hang           the request is never answered; only the client's timeout ends it
//   lost-response  the mutation IS applied, then the connection is cut before the answer:
//                  the client sees a network error for a call that succeeded
import { z } from 'zod';

export const faultKinds = ['throttle', 'internal-error', 'unavailable', 'hang', 'lost-response'] as const;
export type FaultKind = (typeof faultKinds)[number];

export const faultRuleSchema = z.strictObject({
  /** An action name (`AssignPrivateIpAddresses`) or `*` for every action. */
  action: z.string().min(1),
  kind: z.enum(faultKinds),
  /** Fire at most this many times (default: without limit). */
  count: z.number().int().positive().optional(),
  /** Fire on each eligible call with this probability (default 1). */
  probability: z.number().min(0).max(1).optional(),
  /** Let this many matching calls through before the rule may fire. */
  skip: z.number().int().nonnegative().optional(),
});
export type FaultRule = z.infer<typeof faultRuleSchema>;

export const faultPlanSchema = z.strictObject({
  rules: z.array(faultRuleSchema),
  /** RNG seed for probabilistic rules; the same seed and calls give the same faults. */
  seed: z.number().int().optional(),
});
export type FaultPlan = z.infer<typeof faultPlanSchema>;

export interface FaultRuleStatus extends FaultRule {
  readonly fired: number;
  readonly seen: number;
}

/** mulberry32: a tiny, good-enough seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RuleState {
  readonly rule: FaultRule;
  seen: number;
  fired: number;
}

export class FaultInjector {
  #rules: RuleState[] = [];
  #random: () => number = seededRandom(1);
  #seed = 1;

  constructor(plan: FaultPlan = { rules: [] }) {
    this.set(plan);
  }

  /** Replaces every rule (and resets their counters and the RNG). */
  set(plan: FaultPlan): void {
    this.#seed = plan.seed ?? 1;
    this.#random = seededRandom(this.#seed);
    this.#rules = plan.rules.map((rule) => ({ rule, seen: 0, fired: 0 }));
  }

  /** Decides the fault for one call of `action`, if any; the first rule that fires wins. */
  pick(action: string): FaultKind | undefined {
    for (const state of this.#rules) {
      const { rule } = state;
      if (rule.action !== '*' && rule.action !== action) continue;
      state.seen += 1;
      if (state.seen <= (rule.skip ?? 0)) continue;
      if (rule.count !== undefined && state.fired >= rule.count) continue;
      if (rule.probability !== undefined && this.#random() >= rule.probability) continue;
      state.fired += 1;
      return rule.kind;
    }
    return undefined;
  }

  status(): { seed: number; rules: FaultRuleStatus[] } {
    return { seed: this.#seed, rules: this.#rules.map(({ rule, seen, fired }) => ({ ...rule, seen, fired })) };
  }
}
