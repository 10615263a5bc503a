// The events an operator can subscribe a notification channel to, with what each one means.
// Names are wire values (they appear in config files and webhook bodies): never rename one.

export const notificationEvents = {
  failover: 'the standby promoted itself after the primary failed',
  'failover-blocked': 'the primary failed but no automatic failover will follow: the standby is ineligible (the reason is quoted), unreachable too, the cluster is in maintenance, or `failover.minIntervalMs` holds it (with how long: `until 540 s from now`); once per term',
  switchover: 'a planned switchover completed',
  fenced: 'a primary stopped accepting writes (lease lost, its PostgreSQL failed, or a newer term was seen)',
  rejoined: 'an old primary came back as a streaming standby',
  'rejoin-failed': 'an old primary\'s rejoin (pg_rewind, then the re-seed methods) ended without a streaming standby; the agent retries with growing waits (1 s doubling to 1 min); once per term and node as the witness sees it, and once more with the precise error from the agent (protocol v2)',
  'vip-moved': 'the VIP was moved to a new node and verified; raised by that node\'s agent, which the witness reads with its polls (protocol v2); once per term and node',
  'vip-error': 'three VIP steps in a row (EC2 call, OS address, verification) failed; raised by the agent, read by the witness (protocol v2); once per term and node',
  'promotion-vetoed': 'the before-promote hook refused a promotion (its exit status or output is quoted); raised by the agent, read by the witness (protocol v2); once per term and node',
  'reseed-fallback': 'a rejoin could not use pg_rewind, or a re-seed method failed and the next one ran (each reason quoted); raised by the agent, read by the witness (protocol v2); once per term and node',
  'sync-degraded': 'the primary dropped to async replication with the witness\'s agreement; the standby is ineligible until it catches up',
  'sync-restored': 'the caught-up standby is synchronous, and eligible, again',
  'node-unreachable': 'a node failed the configured number of consecutive checks: the primary (recorded as failure-detected), or a standby whose agent stopped answering; held back while the node flaps (notifications.nodeHoldDownMs)',
  'node-recovered': 'a node reported unreachable or failed answers again as a running primary or standby; held back while the node flaps (notifications.nodeHoldDownMs)',
  'agent-down': 'an agent is down while its PostgreSQL still runs (systemd should restart it)',
  maintenance: 'automatic failover was paused or resumed for the cluster',
  'planned-restart': 'a planned restart of a node\'s PostgreSQL (`pgvip restart`) began, was refused, finished, or ran past its deadline (then it is handled as a failure); raised by the witness, and by the agent in its log',
  'manual-override': 'an operator forced a failover, accepting possible data loss',
} as const;

export type NotificationEventName = keyof typeof notificationEvents;

export const notificationEventNames = Object.keys(notificationEvents) as [
  NotificationEventName,
  ...NotificationEventName[],
];
