// The one executor of a step's output, for both daemons and the simulator: it runs the output's
// groups in the order core/actions.ts fixes, through the ports its caller gives it, and holds the
// one policy for a persist that fails. (The simulator adds only when the rest of a persisting step
// runs: after its modelled fsync, and not at all if the process crashed meanwhile.)
//
// A failed persist: the step never happened. Persist comes first and must be durable before
// anything of the step acts, so when it throws, the new state is not adopted and no fence, reply,
// send, effect or notification of the step goes out; the error goes to the caller. What the caller
// does next is its own: the agent stops (a node whose disk refuses its term can keep no promise),
// the witness refuses the input (the request fails; the next poll asks again).

import type { Effect, NotifyEvent, StepOutput } from './actions.js';
import type { NodeId, PeerReply, PeerRequest } from './messages.js';

export interface OutputPorts<Durable> {
  /** Make `state` durable (written and fsynced) or throw. */
  persist(state: Durable): void;
  /** Answer the request that this step was the input of. */
  reply(msg: PeerReply): void;
  send(to: NodeId, msg: PeerRequest): void;
  /** Start an effect; its result comes back later as an `effect-done` input. */
  effect(id: number, effect: Effect): void;
  /** Fire and forget: must not block what follows. */
  notify(event: NotifyEvent, detail: string): void;
}

export interface ExecuteOptions {
  /**
   * How the rest of a step that persisted runs once the persist returned; at once by default. The
   * simulator delays it by the fsync's duration and drops it if the process crashed meanwhile (the
   * persisted state survives; the sends and effects are lost).
   */
  readonly afterPersist?: (rest: () => void) => void;
}

/**
 * Persist (if the step asks to), then adopt the new state, then run the groups in their fixed order:
 * the fence, replies, sends, effects, notifications (core/actions.ts). Throws the persist's error
 * having done nothing else (see the policy above).
 */
export function executeStep<State, Durable>(
  out: StepOutput<State, Durable>, adopt: (state: State) => void, ports: OutputPorts<Durable>,
  options: ExecuteOptions = {},
): void {
  if (out.persist !== null) ports.persist(out.persist);
  adopt(out.state);
  if (out.persist !== null && options.afterPersist !== undefined) options.afterPersist(() => perform(out, ports));
  else perform(out, ports);
}

function perform<Durable>(out: StepOutput<unknown, Durable>, ports: OutputPorts<Durable>): void {
  if (out.fence !== null) ports.effect(out.fence.id, out.fence.effect);
  for (const r of out.replies) ports.reply(r.msg);
  for (const m of out.sends) ports.send(m.to, m.msg);
  for (const e of out.effects) ports.effect(e.id, e.effect);
  for (const n of out.notifications) ports.notify(n.event, n.detail);
}
