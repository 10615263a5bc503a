// The witness's word around `pgvip failover --stop-old-primary` (docs/runbook.md, "Manual
// failover"). The order: the witness checks the forced failover (`check: true`: decided as it would
// decide it, nothing changed), then the CLI stops the old primary's instance, then asks for the
// failover. Stopping first keeps two nodes from being writable at once; checking first keeps a
// refusal (etcd unreachable from the witness, a term at its bound, a witness shutting down) from
// leaving the old primary stopped with no failover. Only what changes between the check and the ask
// can still refuse then, and the operator is told the instance is stopped and what to run.
import type { CommandReply, OperatorClient } from '../api.js';
import { CliError, exitCodes } from '../errors.js';
import type { InstanceStop } from './stop-instance.js';

/** Throws, with nothing stopped, unless the witness would accept the forced failover now. */
export async function checkFailoverBeforeStop(
  client: OperatorClient, cluster: string, to: { to?: string }, instanceId: string,
): Promise<void> {
  const nothingDone = `nothing was stopped and no failover was asked for`;
  let reply: CommandReply;
  try {
    reply = await client.command(cluster, 'failover', { ...to, acceptDataLoss: true, check: true });
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    // A witness older than this CLI refuses the unknown field: it cannot check first.
    if (/unknown field.* check\b/.test(err.message)) {
      throw new CliError(
        exitCodes.failed,
        `--stop-old-primary ${instanceId}: the witness cannot check a forced failover before the stop (it is older than this ` +
          `pgvip); ${nothingDone}. Upgrade the witness, or stop the instance another way and run the failover without --stop-old-primary`,
        err.code,
      );
    }
    throw new CliError(err.exitCode, `${err.message}; the failover would be refused, so ${nothingDone}`, err.code);
  }
  if (!reply.ok) {
    throw new CliError(exitCodes.failed, `the witness would refuse the failover: ${reply.message}; ${nothingDone}`, 'refused');
  }
}

/** The failover's answer; a refusal now says the instance is stopped and how to go on. */
export async function refusedAfterStop(
  ask: Promise<CommandReply>, stop: InstanceStop, to: string | undefined,
): Promise<CommandReply> {
  const next = (why: string) =>
    `${why}. Instance ${stop.instanceId}${stop.node === null ? '' : ` of ${stop.node}`} IS STOPPED (it keeps its EBS volumes) and ` +
    `no failover happened: once the cause is fixed, run pgvip failover${to === undefined ? '' : ` --to ${to}`} --force ` +
    '--accept-data-loss without --stop-old-primary';
  try {
    const reply = await ask;
    return reply.ok ? reply : { ok: false, message: next(reply.message) };
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    throw new CliError(err.exitCode, next(err.message), err.code);
  }
}
