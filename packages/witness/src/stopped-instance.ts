// The `stoppedInstance` of a forced failover request: the EC2 stop the operator's CLI made before
// asking (`pgvip failover --stop-old-primary`). The witness does not call EC2 itself; it records what
// the CLI reports with the failover, so the history says the old primary was stopped and how.
import { PgvipError } from '@pgvip/shared';
import { cleanText } from '@pgvip/shared/text';

export interface StoppedInstance {
  readonly instanceId: string;
  readonly node: string | null;
  readonly previousState: string;
  readonly currentState: string;
}

const states = new Set(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped', 'unknown']);
const fields = ['instanceId', 'node', 'previousState', 'currentState'];

function bad(detail: string): PgvipError {
  return new PgvipError('PGVIP_OPERATOR_BAD_REQUEST', `stoppedInstance: ${detail}`);
}

/** Parses the field (absent: undefined); `nodes` are the cluster's node ids. */
export function parseStoppedInstance(value: unknown, nodes: readonly string[]): StoppedInstance | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw bad('must be an object');
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).filter((k) => !fields.includes(k));
  if (unknown.length > 0) throw bad(`unknown field ${unknown.join(', ')} (expected ${fields.join(', ')})`);
  if (typeof v.instanceId !== 'string' || !/^i-[0-9a-f]{1,17}$/.test(v.instanceId)) {
    throw bad(`instanceId ${JSON.stringify(v.instanceId)} is not an EC2 instance id`);
  }
  if (v.node !== null && (typeof v.node !== 'string' || !nodes.includes(v.node))) {
    throw bad(`node ${JSON.stringify(v.node)} is not a node of the cluster (${nodes.join(', ')}) or null`);
  }
  for (const key of ['previousState', 'currentState'] as const) {
    if (typeof v[key] !== 'string' || !states.has(v[key])) throw bad(`${key} ${JSON.stringify(v[key])} is not an EC2 instance state`);
  }
  return {
    instanceId: v.instanceId,
    node: (v.node as string | null) ?? null,
    previousState: v.previousState as string,
    currentState: v.currentState as string,
  };
}

/** The words the history gets. */
export function describeStoppedInstance(s: StoppedInstance): string {
  const of = s.node === null ? '' : ` of ${s.node}`;
  return cleanText(`instance ${s.instanceId}${of} stopped through EC2 with Force (${s.previousState} → ${s.currentState})`);
}
