// `pgvip restart`: a planned restart of PostgreSQL on one node, or on every node whose PostgreSQL
// waits for one (`--pending-restart`), without a failover. The witness asks the node's agent and
// holds failure handling for at most --timeout; this command then waits until the node is back.
import { type Command, InvalidArgumentError } from 'commander';
import type { ClusterView, NodeView } from '../api.js';
import { confirm } from '../confirm.js';
import { CliError, exitCodes, usageError } from '../errors.js';
import type { RunAction, Session } from '../session.js';
import { report } from './operate.js';
import { cleanText } from '@pgvip/shared/text';
import { bestStandby, describeCandidate } from '../../switchover-target.js';

interface RestartOptions {
  pendingRestart?: boolean;
  switchover?: boolean;
  timeout: number;
  wait: boolean;
  yes?: boolean;
}

/** How often the command reads the cluster while it waits. */
const POLL_MS = 500;
/** After the hold's deadline, how long the command still waits for the node before it gives up. */
const WAIT_GRACE_MS = 15_000;

export function addRestartCommand(program: Command, run: RunAction): void {
  program
    .command('restart')
    .description('restart PostgreSQL on a node without a failover (planned; failure handling held for --timeout)')
    .argument('[node]', 'the node whose PostgreSQL to restart (primary or standby)')
    .option('--pending-restart', 'restart every node whose PostgreSQL reports pending_restart: standbys first, then the primary')
    .option('--switchover', 'with --pending-restart: switch over away from the primary instead of restarting it in place, then restart it as a standby')
    .option('--timeout <seconds>', 'hold failure handling at most this long; a restart not finished by then is handled as a failure (1-600)', seconds, 60)
    .option('--no-wait', 'return once the node accepted the restart, without waiting for it to be back')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .action((node: string | undefined, opts: RestartOptions, cmd: Command) =>
      run(async (s) => {
        if (opts.pendingRestart === true) {
          if (node !== undefined) throw usageError('give either a node or --pending-restart, not both');
          return restartPending(s, opts);
        }
        if (opts.switchover === true) throw usageError('--switchover goes with --pending-restart');
        if (node === undefined) throw usageError('name the node to restart (see pgvip status), or use --pending-restart');
        const view = await s.cluster();
        nodeOf(view, node);
        if (!opts.yes) {
          const what = node === view.primary ? 'the PRIMARY: writes pause until it is back' : 'a standby';
          await confirm(`Restart PostgreSQL on ${node} (${what}) in cluster ${view.cluster}? No failover happens unless it is not back within ${opts.timeout} s.`, 'restart');
        }
        await restartOne(s, view, node, opts);
      }, cmd),
    );
}

function seconds(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 600) {
    throw new InvalidArgumentError('--timeout must be a whole number of seconds from 1 to 600.');
  }
  return Number(text);
}

function nodeOf(view: ClusterView, node: string): NodeView {
  const n = view.nodes.find((x) => x.node === node);
  if (n === undefined) {
    throw usageError(`${node}: no such node in cluster ${view.cluster}; its nodes are ${view.nodes.map((x) => x.node).join(', ')}`);
  }
  return n;
}

/** Asks the witness for the restart, then (unless --no-wait) waits until the node is back in its role. */
async function restartOne(s: Session, view: ClusterView, node: string, opts: RestartOptions): Promise<void> {
  const role = node === view.primary ? 'primary' : 'standby';
  const reply = await (await s.client()).command(view.cluster, 'restart', { node, timeoutMs: opts.timeout * 1000 });
  if (!opts.wait || !reply.ok) return report(s, view.cluster, 'restart', reply);
  if (!s.json) s.print(`… ${reply.message}`);
  const back = await waitFor(s, opts.timeout * 1000 + WAIT_GRACE_MS, (v) => isBack(v, node, role, view.term));
  if (back === null) {
    throw new CliError(exitCodes.failed, `${node} is not back as ${role} ${opts.timeout} s after its restart; see pgvip status and pgvip history`, 'restart-timeout');
  }
  report(s, view.cluster, 'restart', { ok: true, message: `${node} is back as ${role} (term ${back.term})` });
}

/** The node is back: the witness's hold is over, and the node runs in its role, in the same term. */
function isBack(v: ClusterView, node: string, role: 'primary' | 'standby', term: number): boolean {
  const n = v.nodes.find((x) => x.node === node);
  if (n === undefined || v.restart !== null || v.term !== term || !n.reachable || n.restarting) return false;
  return role === 'primary' ? v.primary === node && n.role === 'primary' : n.role === 'standby' && n.streaming === true;
}

/** How long one switchover request is given to move the term before it is asked again. */
const SWITCHOVER_ASK_MS = 5_000;

/** Reads the cluster until `done` holds (returns that view) or `withinMs` passed (returns null). */
async function waitFor(s: Session, withinMs: number, done: (v: ClusterView) => boolean): Promise<ClusterView | null> {
  const until = performance.now() + withinMs;
  while (performance.now() < until) {
    const v = await s.cluster();
    if (done(v)) return v;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return null;
}

/**
 * --pending-restart: the standbys first (a failed restart then costs no write), then the primary,
 * in place (writes pause while it restarts) or, with --switchover, after a switchover to the
 * standby (writes pause for the switchover only) as a standby.
 */
async function restartPending(s: Session, opts: RestartOptions): Promise<void> {
  const view = await s.cluster();
  const unknown = view.nodes.filter((n) => n.pendingRestart === null).map((n) => n.node);
  if (unknown.length > 0 && !s.json) s.print(`! ${unknown.join(', ')}: pending restart unknown (an agent that predates protocol v2, or unreachable); left alone`);
  const pending = view.nodes.filter((n) => n.pendingRestart === true);
  if (pending.length === 0) {
    return report(s, view.cluster, 'restart', { ok: true, message: 'no node has a pending restart; nothing to do' });
  }
  const standbys = pending.filter((n) => n.node !== view.primary).map((n) => n.node);
  const primary = pending.some((n) => n.node === view.primary) ? view.primary : null;
  if (!opts.yes) {
    const plan = [
      ...standbys.map((n) => `restart standby ${n}`),
      ...(primary === null ? [] : [opts.switchover ? `switch over away from ${primary}, then restart it as a standby` : `restart the primary ${primary} in place (writes pause until it is back)`]),
    ];
    await confirm(`Cluster ${view.cluster}: ${plan.join('; then ')}?`, 'restart');
  }
  for (const node of standbys) await restartOne(s, await s.cluster(), node, { ...opts, wait: true });
  if (primary === null) return;
  if (!opts.switchover) return restartOne(s, await s.cluster(), primary, { ...opts, wait: true });
  const before = await s.cluster();
  const to = before.nodes.length > 2
    ? await bestAfterRestarts(s, primary)
    : before.nodes.find((n) => n.node !== primary)?.node;
  if (to === undefined) throw new CliError(exitCodes.failed, 'no standby to switch over to', 'refused');
  // Right after its restart the standby is back by its own report, but the primary may still judge it
  // by an older look ("standby not ready: not streaming") and refuse: ask again until the term moves.
  const askUntil = performance.now() + 60_000;
  let handedOver: ClusterView | null = null;
  while (handedOver === null && performance.now() < askUntil) {
    const reply = await (await s.client()).command(before.cluster, 'switchover', { to });
    if (!reply.ok) return report(s, before.cluster, 'switchover', reply);
    if (!s.json) s.print(`… ${reply.message}`);
    handedOver = await waitFor(s, SWITCHOVER_ASK_MS, (v) => v.primary === to && v.term > before.term);
  }
  const switched = handedOver === null ? null : await waitFor(s, 60_000, (v) => v.primary === to && v.term > before.term
    && v.nodes.some((n) => n.node === primary && n.role === 'standby' && n.streaming === true));
  if (switched === null) {
    throw new CliError(exitCodes.failed, `the switchover to ${to} did not finish within 60 s; ${primary} was not restarted`, 'restart-timeout');
  }
  await restartOne(s, switched, primary, { ...opts, wait: true });
}

/**
 * More than two nodes: the standby a switchover goes to is the best live one (as `pgvip switchover`
 * without --to picks it), once one is ready again after the standbys' restarts (60 s at most).
 */
async function bestAfterRestarts(s: Session, primary: string): Promise<string> {
  const ready = await waitFor(s, 60_000, (v) => bestStandby(v.nodes, primary).ok);
  const best = ready === null ? bestStandby((await s.cluster()).nodes, primary) : bestStandby(ready.nodes, primary);
  if (!best.ok) throw new CliError(exitCodes.failed, `${cleanText(best.why)}; ${primary} was not restarted`, 'refused');
  if (!s.json) s.print(`… switching over to ${best.node}, the best live standby (${cleanText(describeCandidate(best.view))})`);
  return best.node;
}
