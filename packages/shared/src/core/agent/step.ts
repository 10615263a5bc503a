// A step under construction: the state so far, what the shell is to do (in groups: one persist,
// replies, sends, effects, notifications; core/actions.ts fixes the order they run in), and the reasons.

import { OutputGroups, type Effect, type NotifyEvent } from '../actions.js';
import { PROTOCOL_VERSION, type Envelope, type NodeId, type PeerReply, type PeerRequest } from '../messages.js';
import type { AgentDurable, AgentOutput, AgentState, InFlight } from './state.js';

export class Step {
  s: AgentState;
  readonly out = new OutputGroups<AgentDurable>();
  readonly reasons: string[] = [];
  #persisted = false;
  #notified = false;
  constructor(s: AgentState) {
    this.s = s;
  }
  set(patch: Partial<AgentState>): void {
    this.s = { ...this.s, ...patch };
  }
  because(reason: string): void {
    this.reasons.push(reason);
  }
  /** Record the durable state to persist; only enterTerm calls it, so every new term resets alike. */
  persist(durable: AgentDurable): void {
    this.s = { ...this.s, durable };
    // One persist per step, carrying the newest durable state.
    this.out.persist = durable;
    this.#persisted = true;
  }
  send(to: NodeId, msg: PeerRequest): void {
    this.out.sends.push({ to, msg });
  }
  reply(to: NodeId, msg: PeerReply): void {
    this.out.replies.push({ to, msg });
  }
  notify(event: NotifyEvent, detail: string): void {
    this.out.notifications.push({ event, detail });
    this.#notified = true;
  }
  /** Start an effect in the pipeline slot (one at a time) or the fence slot. */
  effect(effect: Effect, slot: 'pipeline' | 'fence' = 'pipeline'): void {
    const id = this.s.nextEffectId;
    const inFlight: InFlight = { id, kind: effect.kind, effect, startedAtMs: this.s.nowMs };
    this.set(slot === 'fence' ? { nextEffectId: id + 1, fenceInFlight: inFlight } : { nextEffectId: id + 1, inFlight });
    if (slot === 'fence') this.out.fence = { id, effect };
    else this.out.effects.push({ id, effect });
  }
  envelope(): Envelope {
    const s = this.s;
    return { v: PROTOCOL_VERSION, cluster: s.settings.cluster, term: s.durable.term, from: s.settings.self };
  }
  /** The step's output; `significant` marks an input that is news by itself (a wake after a pause). */
  output(fallback: string, significant = false): AgentOutput {
    const reason = this.reasons.length > 0 ? this.reasons.join('; ') : fallback;
    const routine = !significant && this.reasons.length === 0 && !this.#persisted && !this.#notified;
    const { persist, fence, replies, sends, effects, notifications } = this.out;
    return { state: this.s, persist, fence, replies, sends, effects, notifications, reason, routine };
  }
}
