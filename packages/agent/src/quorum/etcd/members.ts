// Which etcd member a call goes to, and when it tries the next (docs/design.md, Quorum on etcd, "Which
// member a call goes to"). One rule for the agent's etcd client (client.ts) and the simulator's port
// (test/sim/etcd-port.ts), so the simulator measures what ships. Pure: the caller supplies the clock,
// the timers, the random draws and the call itself.
//
// Why not etcd3's own choice (a random member for every call): a host that is lost drops packets, it
// does not refuse connections, so every call that picks its member waits out its whole deadline. A
// standby's campaign makes several calls in a row and then fails if any of them drew the dead member.
// Here a call goes first to the member that answered last, a member that left a try unanswered is
// tried last for `avoidMs`, and a try that has no answer after its share of the deadline is joined by a
// try on the next member, within the same deadline: a retry never adds time, and a dead member costs a
// share of one call, once, instead of a third of all calls.

/** How long a member that left a try unanswered (or refused) goes to the back of the order. */
export const MEMBER_AVOID_MS = 10_000;

/**
 * The txns (by their TxnQuorum name) that a try on a second member may repeat while the first may still
 * commit: each one's outcome reads its own earlier commit as done (a campaign or same-term take that
 * finds its key, a handover that finds its successor named, a position's delete whose term record
 * still holds) or writes what is already there (the sync record, a position). Others (taking the
 * switchover key, the operator's txns) would report a commit of their first try as a refusal: they
 * move to the next member only when a member refused, as etcd3 did.
 */
export const REPEATABLE_TXNS: ReadonlySet<string> = new Set([
  'campaign', 'leader key', 'sync record', 'handover', 'position', 'position clear',
]);

/** Where a call's members stand: the one that answered last, and those to try last until when. */
export class MemberChoice {
  readonly count: number;
  readonly #avoidMs: number;
  #preferred: number | null = null;
  readonly #avoidUntil: number[];

  constructor(count: number, avoidMs: number = MEMBER_AVOID_MS) {
    if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`member count ${count} must be a positive integer`);
    this.count = count;
    this.#avoidMs = avoidMs;
    this.#avoidUntil = new Array<number>(count).fill(-Infinity);
  }

  /**
   * The order to try the members in: the member that answered last (unless it failed since), then the
   * others in a random order (`draw(n)`: a uniform integer in [0, n)), then those avoided, the one
   * whose avoidance ends first before the others. No member is ever left out: avoidance only reorders,
   * so a wrong suspicion costs nothing once the others fail too.
   */
  order(nowMs: number, draw: (n: number) => number): number[] {
    const fresh: number[] = [];
    const avoided: number[] = [];
    for (let m = 0; m < this.count; m++) {
      if (m === this.#preferred) continue;
      (this.#avoidUntil[m]! > nowMs ? avoided : fresh).push(m);
    }
    for (let i = fresh.length - 1; i > 0; i--) {
      const j = draw(i + 1);
      [fresh[i], fresh[j]] = [fresh[j]!, fresh[i]!];
    }
    avoided.sort((a, b) => this.#avoidUntil[a]! - this.#avoidUntil[b]! || a - b);
    return [...(this.#preferred === null ? [] : [this.#preferred]), ...fresh, ...avoided];
  }

  /** `member` answered (any answer: an error etcd sent is an answer): calls go to it first. */
  answered(member: number): void {
    this.#preferred = member;
    this.#avoidUntil[member] = -Infinity;
  }

  /** `member` refused, or left a try unanswered past its share: tried last for a while. */
  failed(member: number, nowMs: number): void {
    if (this.#preferred === member) this.#preferred = null;
    this.#avoidUntil[member] = nowMs + this.#avoidMs;
  }

  /** The member calls go to first, if any (for tests and logs). */
  get preferred(): number | null {
    return this.#preferred;
  }
}

/** One try's end: an answer (the call's outcome), or no way through this member (try the next at once). */
export type TryEnd<T> = { readonly kind: 'answer'; readonly value: T } | { readonly kind: 'unavailable'; readonly why: string };

export interface OnMembersCall<T> {
  readonly what: string;
  readonly choice: MemberChoice;
  /** The caller's monotonic clock, and the call's deadline on it. */
  readonly now: () => number;
  readonly deadlineAt: number;
  readonly timeoutMs: number;
  /** A uniform integer in [0, n). */
  readonly draw: (n: number) => number;
  /** Runs fn after ms on the caller's clock; may return a cancel, called once the call settled. */
  readonly after: (ms: number, fn: () => void) => (() => void) | void;
  /** Starts one try on `member`; `end` may be called once, any time (later calls are ignored). */
  readonly attempt: (member: number, end: (e: TryEnd<T>) => void) => void;
  /** The call settled: tries still running may stop (their answers are ignored anyway). */
  readonly settled?: () => void;
  /**
   * false: no second try beside one unanswered (only after a refusal), for a call that may not be
   * repeated while its first try may still take effect. Default true.
   */
  readonly beside?: boolean;
}

export type OnMembersOutcome<T> =
  | { readonly ok: true; readonly value: T; readonly member: number }
  | { readonly ok: false; readonly why: string };

/**
 * One call under one deadline: a try on the first member of the order; whenever a try is refused, or
 * has no answer after its share (the deadline over the number of members), a try on the next member
 * starts while the earlier ones may still answer. The first answer wins. No answer by the deadline:
 * failed, naming the last refusal or "no answer". Every try shares the deadline, so retries never add
 * time. A call repeated on a second member while the first may still act: a keepalive or a read
 * says nothing new twice, a second lease grant only leaves a lease that nothing is put on (etcd ends
 * it at its TTL), a revoke or a member's status put is idempotent, and the txns of REPEATABLE_TXNS
 * read their own commit as done; other txns pass `beside: false`.
 */
export function onMembers<T>(c: OnMembersCall<T>): Promise<OnMembersOutcome<T>> {
  return new Promise((resolve) => callOnMembers(c, resolve));
}

/** onMembers with a callback, called in the very event (timer or answer) that settles the call. */
export function callOnMembers<T>(c: OnMembersCall<T>, resolve: (r: OnMembersOutcome<T>) => void): void {
  const leftMs = c.deadlineAt - c.now();
  if (leftMs <= 0) return resolve({ ok: false, why: `${c.what}: no time left of ${c.timeoutMs} ms` });
  const order = c.choice.order(c.now(), c.draw);
  const shareMs = c.timeoutMs / c.choice.count;
  let done = false;
  let next = 0;
  let lastRefusal: string | null = null;
  const open = new Set<number>();
  const timers: (() => void)[] = [];
  const after = (ms: number, fn: () => void): void => {
    const cancel = c.after(ms, fn);
    if (cancel !== undefined) timers.push(cancel);
  };
  const finish = (r: OnMembersOutcome<T>): void => {
    if (done) return;
    done = true;
    for (const cancel of timers) cancel();
    c.settled?.();
    resolve(r);
  };
  const start = (): void => {
    if (done || next >= order.length || c.now() >= c.deadlineAt) return;
    const member = order[next++]!;
    const tryNo = next;
    open.add(member);
    let ended = false;
    c.attempt(member, (e) => {
      if (ended) return;
      ended = true;
      open.delete(member);
      if (done) return;
      if (e.kind === 'answer') {
        c.choice.answered(member);
        return finish({ ok: true, value: e.value, member });
      }
      c.choice.failed(member, c.now());
      lastRefusal = e.why;
      if (next < order.length) start();
      else if (open.size === 0) finish({ ok: false, why: `${c.what}: ${e.why}` });
    });
    // Its share passed without an answer: suspect it, and bring in the next member beside it.
    if (c.beside !== false) after(shareMs, () => {
      if (done || ended || next !== tryNo) return;
      c.choice.failed(member, c.now());
      start();
    });
  };
  after(leftMs, () => {
    for (const m of open) c.choice.failed(m, c.now());
    const why = lastRefusal ?? `etcd did not answer within ${c.timeoutMs} ms`;
    finish({ ok: false, why: `${c.what}: ${why}` });
  });
  start();
}
