// The commands that act on a running cluster through its witness's operator API: status, history,
// switchover, failover, maintenance. Each reads or asks; the witness decides and answers.
import { cleanText } from '@pgvip/shared/text';
import { Argument, type Command, InvalidArgumentError } from 'commander';
import type { ClusterView } from '../api.js';
import { confirm } from '../confirm.js';
import { CliError, exitCodes, usageError } from '../errors.js';
import { renderCluster, renderHistory } from '../render.js';
import type { RunAction, Session } from '../session.js';
import { checkInstanceId, describeStop, stopInstanceForced } from './stop-instance.js';
import { checkFailoverBeforeStop, refusedAfterStop } from './failover-check.js';
import { parseAt } from '../when.js';
import { noFailoverRefusal } from '../../cluster-service.js';
import { bestStandby, describeCandidate } from '../../switchover-target.js';

interface FailoverOptions {
  to?: string;
  force?: boolean;
  acceptDataLoss?: boolean;
  stopOldPrimary?: string;
  region?: string;
  ec2Endpoint?: string;
}

export function addOperateCommands(program: Command, run: RunAction): void {
  program
    .command('status')
    .description('one row per node: role, term, lease, lag, timeline, eligibility, VIP holder; maintenance shown loudly')
    .action((_opts, cmd: Command) =>
      run(async (s) => {
        const views = await s.allClusters();
        if (s.json) s.printJson({ clusters: views });
        else s.print(views.map((v) => renderCluster(v, s.style)).join('\n\n'));
      }, cmd),
    );

  program
    .command('history')
    .description('the cluster\'s events, newest first')
    .option('--limit <n>', 'how many events (1-1000)', positiveInteger('--limit', 1000), 20)
    .option(
      '--before <id>',
      'only events older than this event id (to page back)',
      positiveInteger('--before', Number.MAX_SAFE_INTEGER),
    )
    .action((opts: { limit: number; before?: number }, cmd: Command) =>
      run(async (s) => {
        const view = await s.cluster();
        const events = await (await s.client()).history(view.cluster, opts.limit, opts.before);
        if (s.json) s.printJson({ cluster: view.cluster, events });
        else s.print(renderHistory(view.cluster, events, s.style));
      }, cmd),
    );

  program
    .command('switchover')
    .description('planned, lossless change of primary: fence, wait for the standby to catch up, hand over')
    .option('--to <node>', 'the node to promote (default: the standby; with more nodes, the best live standby)')
    .option('--at <time>', 'when: HH:MM (next occurrence, local time) or an ISO 8601 date-time (default: now)')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .action((opts: { to?: string; at?: string; yes?: boolean }, cmd: Command) =>
      run(async (s) => {
        const at = opts.at === undefined ? undefined : parseAt(opts.at);
        const view = await s.cluster();
        checkNode(view, opts.to);
        if (opts.to !== undefined && opts.to === view.primary) {
          const message = `${opts.to} is already the primary of ${view.cluster}; nothing to switch over`;
          throw new CliError(exitCodes.failed, message, 'refused');
        }
        checkPromotable(view, opts.to);
        const { target, why } = switchoverTarget(view, opts.to);
        if (!opts.yes) {
          const when = at === undefined ? 'now' : `at ${at.toString()}`;
          await confirm(
            `Switch over cluster ${view.cluster} from ${view.primary ?? '(no primary)'} to ` +
              `${target === undefined ? '(the witness chooses)' : cleanText(target)}${why} ${when}? Writes pause briefly; no acknowledged write is lost.`,
            'switchover',
          );
        }
        const reply = await (await s.client()).command(view.cluster, 'switchover', {
          ...(target === undefined ? {} : { to: target }),
          ...(at === undefined ? {} : { at: at.toISOString() }),
        });
        report(s, view.cluster, 'switchover', reply);
      }, cmd),
    );

  program
    .command('failover')
    .description('MANUAL failover that may lose acknowledged writes: only when automatic failover cannot happen')
    .option('--to <node>', 'the node to promote (default: the standby)')
    .option('--force', 'required: promote without the safety checks of an automatic failover')
    .option('--accept-data-loss', 'required: acknowledge that writes the promoted node has not received are lost')
    .option(
      '--stop-old-primary <instance-id>',
      'first stop this EC2 instance (the old primary\'s, checked against its address) with StopInstances --force; ' +
        'needs ec2:DescribeNetworkInterfaces and ec2:StopInstances',
      checkInstanceId,
    )
    .option('--region <region>', 'AWS region of --stop-old-primary (default: AWS_REGION)')
    .option('--ec2-endpoint <url>', 'EC2 API endpoint of --stop-old-primary (default: the region\'s, or AWS_ENDPOINT_URL_EC2)')
    .action((opts: FailoverOptions, cmd: Command) =>
      run(async (s) => {
        if (!opts.force || !opts.acceptDataLoss) {
          const missing = [!opts.force && '--force', !opts.acceptDataLoss && '--accept-data-loss']
            .filter(Boolean)
            .join(' and ');
          throw usageError(
            `refusing a manual failover without ${missing}. It promotes a node without the checks of an automatic ` +
              'failover, and writes that node has not received are LOST. Use it only when automatic failover ' +
              'cannot happen (witness lost, standby ineligible); for a planned change of primary without loss, ' +
              'use: pgvip switchover',
          );
        }
        const view = await s.cluster();
        checkNode(view, opts.to);
        checkPromotable(view, opts.to);
        if (opts.to === undefined && view.nodes.length > 2) {
          const best = bestStandby(view.nodes, view.primary);
          const hint = best.ok ? ` (the best live standby now: --to ${best.node}, ${describeCandidate(best.view)})` : '';
          throw usageError(`cluster ${view.cluster} has ${view.nodes.length} nodes: name the node to promote with --to${cleanText(hint)}`);
        }
        if (opts.to !== undefined && opts.to === view.primary && opts.stopOldPrimary !== undefined) {
          throw usageError(`--to ${opts.to} is the primary: --stop-old-primary would stop the node being promoted`);
        }
        const client = await s.client();
        const to = opts.to === undefined ? {} : { to: opts.to };
        // The stop before the failover: a node that only seemed dead must not come back as a second
        // writer. And the witness's check before the stop: a failover it would refuse must be refused
        // while the old primary still runs, not after it was stopped for nothing.
        if (opts.stopOldPrimary !== undefined) {
          await checkFailoverBeforeStop(client, view.cluster, to, opts.stopOldPrimary);
        }
        const stop =
          opts.stopOldPrimary === undefined
            ? undefined
            : await stopInstanceForced({
                instanceId: opts.stopOldPrimary,
                node: view.primary,
                nodes: view.nodes,
                promoted: opts.to ?? view.nodes.find((n) => n.node !== view.primary)?.node ?? null,
                region: opts.region,
                endpoint: opts.ec2Endpoint,
                timeoutMs: 10_000,
              });
        if (stop !== undefined && !s.json) s.print(`✔ ${describeStop(stop)}`);
        const ask = client.command(view.cluster, 'failover', {
          ...to,
          acceptDataLoss: true,
          ...(stop === undefined ? {} : { stoppedInstance: stop }),
        });
        const reply = stop === undefined ? await ask : await refusedAfterStop(ask, stop, opts.to);
        report(s, view.cluster, 'failover', reply);
      }, cmd),
    );

  program
    .command('maintenance')
    .description('pause (on) or resume (off) automatic failover for the cluster')
    .addArgument(new Argument('<state>', 'on or off').choices(['on', 'off']))
    .action((state: 'on' | 'off', _opts, cmd: Command) =>
      run(async (s) => {
        const view = await s.cluster();
        const reply = await (await s.client()).command(view.cluster, 'maintenance', { on: state === 'on' });
        report(s, view.cluster, 'maintenance', reply);
      }, cmd),
    );
}

export function positiveInteger(name: string, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
    }
    return Number(text);
  };
}

/** --to NODE must name a node of the cluster; a typo must not reach the witness. */
export function checkNode(view: ClusterView, node: string | undefined): void {
  if (node !== undefined && !view.nodes.some((n) => n.node === node)) {
    const nodes = view.nodes.map((n) => n.node).join(', ');
    throw usageError(`--to ${node}: no such node in cluster ${view.cluster}; its nodes are ${nodes}`);
  }
}

/** A node the cluster config marks noFailover is never promoted: refused before anything is asked. */
export function checkPromotable(view: ClusterView, node: string | undefined): void {
  if (node !== undefined && view.nodes.some((n) => n.node === node && n.noFailover === true)) {
    throw new CliError(exitCodes.usage, `PGVIP_OPERATOR_NO_FAILOVER: ${cleanText(noFailoverRefusal(node))}`, 'PGVIP_OPERATOR_NO_FAILOVER');
  }
}

/**
 * The node a switchover goes to, and why it, shown before the confirmation: `--to`; with two nodes
 * the standby; with more, the best live standby by the failover's ranking (switchover-target.ts),
 * sent as `to` so that the witness switches to the node the operator confirmed.
 */
export function switchoverTarget(view: ClusterView, to: string | undefined): { target?: string; why: string } {
  if (to !== undefined) return { target: to, why: '' };
  const others = view.nodes.filter((n) => n.node !== view.primary);
  if (view.nodes.length <= 2) return others.length === 1 ? { target: others[0]!.node, why: '' } : { why: '' };
  const best = bestStandby(view.nodes, view.primary);
  if (!best.ok) throw new CliError(exitCodes.failed, `switchover ${view.cluster}: ${cleanText(best.why)}`, 'refused');
  return { target: best.node, why: ` (the best live standby: ${cleanText(describeCandidate(best.view))})` };
}

/** Prints the witness's answer to a command; a refusal exits 1 after it is printed. */
export function report(s: Session, cluster: string, command: string, reply: { ok: boolean; message: string }): void {
  if (s.json) s.printJson({ cluster, command, ...reply });
  else s.print(`${reply.ok ? '✔' : '✘'} ${command} ${cluster}: ${cleanText(reply.message, { multiline: true })}`);
  if (!reply.ok) throw new CliError(exitCodes.failed, '', 'refused');
}
