// Renders docs/configuration.md from the schema itself, so the reference cannot drift from what
// the loader accepts: field tables come from walking the zod schemas, the timing figures from the
// core's own defaults and derivations. A test compares the file with this output.
import {
  defaultTimings, earliestFailureSeenMs, etcdDefaultElectionTimeoutMs, etcdExpirySweepMs, etcdMinLeaseMarginMs,
  leaseValidMs, promiseMs, receiverSilenceMs, takeoverAfterMs, vipMoveRoomMs,
} from '../core/timings.js';
import { notificationEvents } from './events.js';
import { AgentConfigSchema, ClusterConfigSchema, WitnessConfigSchema } from './schema.js';
import { walkSchema, type FieldRow, type Stops } from './schema-walk.js';

export const configReferencePath = 'docs/configuration.md';
export const configReferenceCommand = 'npm run docs:config';

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function table(rows: readonly FieldRow[]): string {
  const lines = ['| field | type | default | meaning |', '|---|---|---|---|'];
  for (const row of rows) {
    lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${cell(row.defaultText)} | ${cell(row.description)} |`);
  }
  return lines.join('\n');
}

function clusterSections(): string {
  const { rows, subTables } = walkSchema(ClusterConfigSchema);
  const parts = [table(rows)];
  for (const sub of subTables) parts.push(`### \`${sub.title}\`\n\n${table(sub.rows)}`);
  return parts.join('\n\n');
}

/** The cut length of the flapping-link scenario (docs/design.md, Failure scenarios, row 16). */
const flappingCutMs = 2000;

function timingSection(): string {
  const t = defaultTimings;
  const valid = leaseValidMs(t);
  const promise = promiseMs(t);
  const detection = t.failureChecks * t.heartbeatMs;
  const renewalBudget = 2 * t.heartbeatMs + t.requestTimeoutMs;
  // A cut of both of the primary's links: the last renewal to get through may have left up to a
  // heartbeat before it, the first after it up to a heartbeat after it.
  const cutGap = flappingCutMs + 2 * t.heartbeatMs;
  const seen = earliestFailureSeenMs(t);
  const etcdTakeover = Math.round(takeoverAfterMs(t, { backend: 'etcd', electionTimeoutMs: etcdDefaultElectionTimeoutMs }));
  return `## Timings: the inequalities and why the defaults are what they are

All durations are milliseconds on the monotonic clock of the node that measures them; wall-clock
jumps change nothing. With L = \`leaseMs\`, ρ = \`maxDriftRatio\` and m = \`leaseMarginMs\`:

- the primary trusts a lease for **L·(1−ρ)−m** from the moment it *sent* the renewal
  (${valid} ms with the defaults), and
- a grantor keeps its promise not to vote for a higher term for **L·(1+ρ)+m** from the moment it
  *received* the renewal (${promise} ms).

Since the first is shorter than the second even when clocks drift by ρ, the primary always fences
before any grantor may vote for its successor: two writers are impossible by construction. The
loader checks these inequalities (the core's \`timingViolations()\`) and names the field to change
and a value that would work:

| inequality | why | defaults |
|---|---|---|
| 0 ≤ maxDriftRatio < 0.1 | drift beyond 10 % means a broken clock, not drift | ρ = ${t.maxDriftRatio} |
| requestTimeoutMs < heartbeatMs | a check must finish before the next one starts | ${t.requestTimeoutMs} < ${t.heartbeatMs} |
| L·(1−ρ)−m ≥ 2·heartbeatMs + requestTimeoutMs | the lease outlives two lost renewals plus the third one's round trip, so one lost packet never fences a healthy primary | ${valid} ≥ ${renewalBudget} |
| L·(1−ρ)−2m−heartbeatMs−requestTimeoutMs ≥ vipCallBudgetMs | a new primary moves the VIP only while its lease outlives the EC2 call by m, and a lease renewed on time may be heartbeatMs + requestTimeoutMs old: below this a promoted node may never move the VIP | ${vipMoveRoomMs(t)} ≥ ${t.vipCallBudgetMs} |
| streamingGraceMs > L·(1+ρ)+m + failureChecks·heartbeatMs | the standby must still count as recently streaming when it is finally allowed to ask for a vote, or no failover could ever happen | ${t.streamingGraceMs} > ${promise + detection} |
| writeProbeTimeoutMs ≥ requestTimeoutMs | a write probe gets at least as long as a peer check | ${t.writeProbeTimeoutMs} ≥ ${t.requestTimeoutMs} |
| syncDegradeAfterMs ≥ failureChecks·heartbeatMs | synchronous replication is not dropped on a single missed check | ${t.syncDegradeAfterMs} ≥ ${detection} |

**Fast enough.** When the primary's host is lost (or paused, or cut off), its renewals and its WAL
stop together. The witness sees it fail within failureChecks·heartbeatMs (${detection} ms). The standby
counts a check as failed only when the primary's agent does not answer (requestTimeoutMs) **and** its
WAL receiver has heard nothing for ${receiverSilenceMs(t)} ms (four heartbeats, at least 2 s: a primary
writes WAL at least every heartbeat, its write probe); failureChecks such checks in a row take
${seen} ms after the last WAL, plus up to a heartbeat to the next check. By then the grantors'
promise, L·(1+ρ)+m = ${promise} ms after the last renewal, has run out, so the vote follows at once;
then the new primary promotes PostgreSQL (about 0.15 s) and moves the VIP (an EC2 call and \`ip addr
add\`): about ${(seen / 1000).toFixed(2)}–${((seen + t.heartbeatMs) / 1000).toFixed(2)} s + promote + VIP ≈ 2.8–3 s from host loss to the
first write through the VIP, against a target of 3 s (median). When only PostgreSQL dies, its own agent
notices at its next heartbeat (a refused connection is definitive; a stall takes writeProbeFailures
(${t.writeProbeFailures}) probes), fences and releases its lease, so the vote waits for neither the promise nor
the checks. On etcd (\`quorum.backend: etcd\`) the campaign also waits for the leader key to go: its
TTL, ⌈L / 1 s⌉ on the etcd leader's clock, plus etcd's ${etcdExpirySweepMs} ms expiry sweep, ${etcdTakeover} ms in all,
about ${((etcdTakeover - seen) / 1000).toFixed(1)} s more. There the margin m must also be ≥ ρ·L·(1−ρ)/(1+ρ) (${etcdMinLeaseMarginMs(t).toFixed(1)} ms),
since etcd keeps no margin of its own, and the agents warn at start when two etcd election timeouts
(\`quorum.etcd.electionTimeoutMs\`) exceed the lease validity minus a heartbeat (${valid - t.heartbeatMs} ms at the
defaults against 2·${etcdDefaultElectionTimeoutMs}; docs/design.md, "Quorum on etcd").

**No false failover.**

- A lost renewal costs nothing: the lease survives two lost renewals in a row (${valid} ms ≥
  ${renewalBudget} ms), and it needs only one grant besides the primary's own, from the witness *or* the
  standby.
- Cutting one link never fails over: the primary keeps its lease through the other grantor, and
  a vote needs both the standby and the witness to have lost the primary by their own checks.
- A flapping link (${flappingCutMs / 1000} s cuts every 5 s) therefore never touches the lease. Even a ${flappingCutMs / 1000} s cut of
  both of the primary's links at once never lets a promise run out: the renewals that reach a grantor
  are at most the cut plus two heartbeats apart (${cutGap} ms), ${promise - cutGap} ms inside the promise; and the
  standby could not count the primary failed in it anyway (that takes ${seen} ms after the last WAL). In the worst
  phase the primary's own lease (${valid} ms) lapses for up to ${cutGap - valid} ms before the first grant after
  the cut: it fences and unfences in the same term, no failover. That is for a network that delivers
  the first packets after the cut; TCP's retransmission backoff can hold a connection's next packet
  up to about a second past a 2 s cut, and the lab's row 16a (2 s cuts of every link of the primary
  every 5 s, 2 minutes) saw one failover at these defaults, which that row allows.
- A whole primary host paused for less than the lease (${t.leaseMs} ms) does not fail over when WAL reached
  the standby within ${seen - t.leaseMs} ms before the pause (a write load of a few commits a second): the standby
  needs ${seen} ms after the last WAL to count the primary failed. An idle primary's last WAL (its write
  probe's) may be up to a heartbeat older, so there the bound is the promise minus a heartbeat:
  pauses under ${promise - t.heartbeatMs} ms never fail over.
- A standby that lost its stream is ineligible only after streamingGraceMs (${t.streamingGraceMs} ms), well after
  it could ask for a vote (${promise + detection} ms).

Change timings only together, and keep them identical in the agent files and the witness file:
every node computes leases and promises from its own copy. The nodes check the part that safety
rests on: every lease request and vote request says how long its sender will count the lease valid
(leaseMs·(1−ρ)−leaseMarginMs by the sender's timings), and the witness and the standby refuse one
longer than their own timings give — a primary with such a lease could still write after their
promises ended. A shorter one is granted, so roll a change out one node at a time in the safe
order: when shortening the lease, the primary's agent first; when lengthening it, the witness and
the standby first, the primary last. A refusal is logged with the values and the fix.`;
}

function eventsSection(): string {
  const lines = Object.entries(notificationEvents).map(([name, meaning]) => `| \`${name}\` | ${cell(meaning)} |`);
  return `## Notification events

A channel's \`events\` lists the names it wants, or \`['*']\` for all of them.

| event | meaning |
|---|---|
${lines.join('\n')}`;
}

/** The whole of docs/configuration.md. */
export function describeConfigSchema(): string {
  const clusterStop: Stops = new Map([[ClusterConfigSchema, 'cluster block (see below)']]);
  const agent = walkSchema(AgentConfigSchema, clusterStop);
  const witness = walkSchema(WitnessConfigSchema, clusterStop);
  return `<!-- Generated from packages/shared/src/config by \`${configReferenceCommand}\`; do not edit by hand: edit the .describe() texts in the schema. A test fails when this file is out of date. -->

# Configuration reference

pgvip reads one YAML file per daemon:

- **the agent file** on each database node (\`/etc/pgvip/agent.yaml\`): which node this is, where
  the agent listens, and the **cluster block**;
- **the witness file** on the witness instance (\`/etc/pgvip/witness.yaml\`): where it listens,
  and the cluster block of **every** cluster it serves.

The cluster block has the same shape everywhere, so one block can be pasted into the three files of
a cluster (the two agent files differ only in \`self\`). It must describe the same cluster in all
three files. Commented examples: \`deploy/examples/agent-db-a.yaml\`, \`agent-db-b.yaml\`,
\`witness.yaml\`, \`cluster-route-table.yaml\` (cross-AZ) and \`cluster-three-az.yaml\` (three nodes
in three AZs on etcd).

Unknown keys are errors (a misspelt key would otherwise silently leave the real one at its default),
and the loader reports every problem at once, one per line, as
\`<file>: <path.to.field>: <what is wrong> (got <value>); <what would be valid>\`:

\`\`\`
PGVIP_CONFIG_INVALID: the config file has invalid fields (2 problems)
  /etc/pgvip/agent.yaml: cluster.nodes[1].agent.port: must be an integer from 1 to 65535 (got 70000)
  /etc/pgvip/agent.yaml: cluster.vip.mode: must be one of secondary-ip, route-table (got "secondary_ip"); did you mean "secondary-ip"?
\`\`\`

Files named by the configuration (\`auth.keyFile\`, \`postgres.passwordFile\`, \`secretFile\`,
\`tokenFile\`) are not read by the loader but by the daemons when they need them, and by
\`pgvip check-config\`; they must exist, be non-empty and be accessible to their owner only (mode 0600
or 0400). White space around the secret (newlines, CRLF, spaces) is not part of it, for every reader.

In the tables, \`a.b\` is a nested key and \`a[]\` an item of a list; *required* fields have no default.

## The agent file

${table(agent.rows)}

## The witness file

${table(witness.rows)}

## The cluster block

${clusterSections()}

${timingSection()}

${eventsSection()}
`;
}
