// What the agent's and the witness's step builders share: the state so far, the output groups
// (core/actions.ts fixes the order they run in), the reasons, and when a step counts as routine.
// Each role adds what is its own (the agent's effect slots, the witness's operator verdict).

import { OutputGroups, type NotifyEvent, type StepOutput } from './actions.js';
import { PROTOCOL_VERSION, type Envelope, type NodeId, type PeerReply, type PeerRequest } from './messages.js';

interface BuiltState<Durable> {
  readonly durable: Durable & { readonly term: number };
  readonly settings: { readonly cluster: string; readonly self: NodeId };
}

export class StepBuilder<State extends BuiltState<Durable>, Durable> {
  s: State;
  readonly out = new OutputGroups<Durable>();
  readonly reasons: string[] = [];
  #persisted = false;
  #notified = false;
  constructor(s: State) {
    this.s = s;
  }
  set(patch: Partial<State>): void {
    this.s = { ...this.s, ...patch };
  }
  because(reason: string): void {
    this.reasons.push(reason);
  }
  /** Record the durable state to persist: one persist per step, carrying the newest durable state. */
  persist(durable: Durable & { readonly term: number }): void {
    this.s = { ...this.s, durable };
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
  envelope(): Envelope {
    const s = this.s;
    return { v: PROTOCOL_VERSION, cluster: s.settings.cluster, term: s.durable.term, from: s.settings.self };
  }
  /**
   * The step's output. Routine (logged at debug): no reason of its own, nothing persisted or
   * notified, and not `significant` (an input that is news by itself, such as a wake after a pause).
   */
  protected built(fallback: string, significant = false): StepOutput<State, Durable> {
    const reason = this.reasons.length > 0 ? this.reasons.join('; ') : fallback;
    const routine = !significant && this.reasons.length === 0 && !this.#persisted && !this.#notified;
    const { persist, fence, replies, sends, effects, notifications } = this.out;
    return { state: this.s, persist, fence, replies, sends, effects, notifications, reason, routine };
  }
}
