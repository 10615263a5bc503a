// The events an operator can subscribe a notification channel to, with what each one means.
// Names are wire values (they appear in config files and webhook bodies): never rename one.

export const notificationEvents = {
  failover: 'the standby promoted itself after the primary failed',
  'failover-blocked': 'the primary failed but automatic promotion is not allowed (no quorum, or the standby is ineligible)',
  switchover: 'a planned switchover completed',
  fenced: 'a primary stopped accepting writes (lease lost, its PostgreSQL failed, or a newer term was seen)',
  rejoined: 'an old primary came back as a streaming standby',
  'rejoin-failed': 'pg_rewind and the base-backup fallback both failed; the node needs an operator',
  'vip-moved': 'the VIP was moved to a new node and verified',
  'vip-error': 'EC2 or OS calls to move the VIP keep failing',
  'sync-degraded': 'the primary dropped to async replication with the witness\'s agreement; the standby is ineligible until it catches up',
  'sync-restored': 'the caught-up standby is synchronous, and eligible, again',
  'node-unreachable': 'a node failed the configured number of consecutive checks',
  'node-recovered': 'an unreachable node answers again',
  'agent-down': 'an agent is down while its PostgreSQL still runs (systemd should restart it)',
  maintenance: 'automatic failover was paused or resumed for the cluster',
  'manual-override': 'an operator forced a failover, accepting possible data loss',
} as const;

export type NotificationEventName = keyof typeof notificationEvents;

export const notificationEventNames = Object.keys(notificationEvents) as [NotificationEventName, ...NotificationEventName[]];
