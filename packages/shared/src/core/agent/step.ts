// The agent's step under construction (core/step-builder.ts): what it adds are the effect slots,
// one pipeline effect at a time plus the fence, which preempts it, and the VIP's beside both.

import type { Effect } from '../actions.js';
import { StepBuilder } from '../step-builder.js';
import type { AgentDurable, AgentOutput, AgentState, InFlight } from './state.js';

export class Step extends StepBuilder<AgentState, AgentDurable> {
  /** Start an effect in the pipeline slot (one at a time), the fence slot or the VIP slot. */
  effect(effect: Effect, slot: 'pipeline' | 'fence' | 'vip' = 'pipeline'): void {
    const id = this.s.nextEffectId;
    const inFlight: InFlight = { id, kind: effect.kind, effect, startedAtMs: this.s.nowMs };
    if (slot === 'fence') this.set({ nextEffectId: id + 1, fenceInFlight: inFlight });
    else if (slot === 'vip') this.set({ nextEffectId: id + 1, vipInFlight: inFlight });
    else this.set({ nextEffectId: id + 1, inFlight });
    if (slot === 'fence') this.out.fence = { id, effect };
    else this.out.effects.push({ id, effect });
  }
  /** The step's output; `significant` marks an input that is news by itself (a wake after a pause). */
  output(fallback: string, significant = false): AgentOutput {
    return this.built(fallback, significant);
  }
}
