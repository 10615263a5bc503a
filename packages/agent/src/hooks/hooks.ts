// The agent-side hooks (docs/hooks.md). before-promote runs in the promotion's path and answers
// yes or no; the others are told what happened, one at a time in the order it happened, on a queue
// the agent's loop never waits for. A hook's failure is logged and counted, never fatal.
import type { Logger } from 'pino';
import type { AgentHooksConfig } from '@pgvip/shared';
import type { AgentMetrics } from '../metrics.js';
import { runHookProcess, type HookResult } from './process.js';

/** Wire names of the hooks (PGVIP_EVENT, the payload's "event", metric labels). */
export const hookEvents = ['before-promote', 'after-promote', 'on-fence', 'on-rejoin', 'on-role-change'] as const;
export type HookEvent = (typeof hookEvents)[number];
export type AsyncHookEvent = Exclude<HookEvent, 'before-promote'>;

const configKey = {
  'before-promote': 'beforePromote',
  'after-promote': 'afterPromote',
  'on-fence': 'onFence',
  'on-rejoin': 'onRejoin',
  'on-role-change': 'onRoleChange',
} as const satisfies Record<HookEvent, keyof AgentHooksConfig>;

/** What the agent knows when an event happens; the payload adds the event name and the time. */
export interface HookContext {
  readonly cluster: string;
  readonly node: string;
  readonly peer: string;
  /** This node's role now (agentRole), after the event. */
  readonly role: string;
  /** on-role-change only: the role before. */
  readonly previousRole?: string;
  readonly term: number;
  /** The node that is primary of `term` (durable), or null. */
  readonly primary: string | null;
  /** What happened, in words (the effect's result, a role change). */
  readonly detail: string;
}

export interface HookPayload extends HookContext {
  /** Payload format version; fields are only ever added. */
  readonly version: 1;
  readonly event: HookEvent;
  /** Wall-clock time of the event, ISO 8601. */
  readonly at: string;
}

export interface Verdict {
  readonly allowed: boolean;
  readonly detail: string;
}

/** Variables passed through from the agent's environment; nothing else of it reaches a hook. */
const passThrough = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'HOME'] as const;

export function hookEnv(p: HookPayload, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of passThrough) {
    const v = base[name];
    if (v !== undefined) env[name] = v;
  }
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  Object.assign(env, {
    PGVIP_EVENT: p.event,
    PGVIP_CLUSTER: p.cluster,
    PGVIP_NODE: p.node,
    PGVIP_PEER: p.peer,
    PGVIP_ROLE: p.role,
    PGVIP_PREVIOUS_ROLE: p.previousRole ?? '',
    PGVIP_TERM: String(p.term),
    PGVIP_PRIMARY: p.primary ?? '',
    PGVIP_DETAIL: p.detail,
    PGVIP_AT: p.at,
  });
  return env;
}

/** What the runner needs of the hooks: a small port, so a fake can stand in. */
export interface HookPort {
  has(event: HookEvent): boolean;
  beforePromote(ctx: HookContext): Promise<Verdict>;
  notify(event: AsyncHookEvent, ctx: HookContext): void;
}

export interface AgentHooksDeps {
  readonly config: AgentHooksConfig;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  /** Wall clock for the payload's "at" (tests may fix it). */
  readonly now?: () => Date;
}

export class AgentHooks implements HookPort {
  readonly #d: AgentHooksDeps;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;

  constructor(deps: AgentHooksDeps) {
    this.#d = deps;
  }

  /** Whether a hook is configured for this event (the runner skips building payloads otherwise). */
  has(event: HookEvent): boolean {
    return this.#d.config[configKey[event]] !== undefined;
  }

  /**
   * Runs before-promote and waits for it (bounded by its timeout). Exit 0 allows the promotion;
   * any other exit, a signal, a timeout or a program that cannot start vetoes it: a promotion
   * nobody agreed to is the unsafe side (docs/hooks.md). No hook configured: allowed.
   */
  async beforePromote(ctx: HookContext): Promise<Verdict> {
    const result = await this.#run('before-promote', ctx);
    if (result === null) return { allowed: true, detail: 'no before-promote hook' };
    if (result.outcome === 'ok') return { allowed: true, detail: `before-promote ${result.summary}` };
    this.#d.metrics.hookVetoes.inc();
    return { allowed: false, detail: `vetoed by the before-promote hook (${result.summary})` };
  }

  /** Queues an asynchronous hook behind the ones before it; returns at once. */
  notify(event: AsyncHookEvent, ctx: HookContext): void {
    if (!this.has(event)) return;
    this.#queued += 1;
    this.#queue = this.#queue.then(async () => {
      this.#queued -= 1;
      await this.#run(event, ctx);
    }).catch((e: unknown) => this.#d.logger.error({ err: e, hook: event }, 'hook queue error'));
  }

  /** Resolves when every queued hook has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.#queue;
  }

  get queued(): number {
    return this.#queued;
  }

  async #run(event: HookEvent, ctx: HookContext): Promise<HookResult | null> {
    const hook = this.#d.config[configKey[event]];
    if (hook === undefined) return null;
    const payload: HookPayload = { version: 1, event, at: (this.#d.now?.() ?? new Date()).toISOString(), ...ctx };
    const log = this.#d.logger.child({ component: 'hook', hook: event });
    log.debug({ path: hook.path, args: hook.args }, 'hook started');
    let result: HookResult;
    try {
      result = await runHookProcess({ command: [hook.path, ...hook.args], stdin: `${JSON.stringify(payload)}\n`, env: hookEnv(payload), timeoutMs: hook.timeoutMs });
    } catch (e) {
      // runHookProcess reports failures as values; this only keeps a bug from stopping the queue.
      result = { outcome: 'error', exitCode: null, signal: null, stdout: '', stderr: '', durationMs: 0, summary: `could not run: ${(e as Error).message}` };
    }
    this.#d.metrics.hookRuns.inc({ hook: event, result: result.outcome });
    const fields = {
      outcome: result.outcome,
      exitCode: result.exitCode,
      signal: result.signal,
      durationMs: result.durationMs,
      stdout: result.stdout || undefined,
      stderr: result.stderr || undefined,
    };
    if (result.outcome === 'ok') log.info(fields, `hook ${event} ${result.summary}`);
    else log.warn(fields, `hook ${event} failed: ${result.summary}`);
    return result;
  }
}
