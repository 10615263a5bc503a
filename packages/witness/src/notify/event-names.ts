// Operators subscribe channels by the names of config/events.ts ('failover', 'node-unreachable',
// ...). The witness records what its decision core reports, under the core's names (NotifyEvent in
// core/actions.ts: 'vote-granted', 'failure-detected', ...), so that history, API and
// notifications show one and the same event. This table says which subscription name covers which
// core name; a type that is already a subscription name covers itself.
import type { NotificationEventName, NotifyEvent } from '@pgvip/shared';
import { notificationEvents } from '@pgvip/shared';

/** Core event → the subscription name that receives it; absent = only channels with '*'. */
export const subscriptionNameOf: Readonly<Partial<Record<NotifyEvent, NotificationEventName>>> = {
  // The witness voted for the standby of a failed primary: the failover decision itself.
  'vote-granted': 'failover',
  // A primary that found its PostgreSQL failed fenced itself, then released its lease.
  'lease-released': 'fenced',
  fenced: 'fenced',
  // The primary failed the configured number of consecutive checks.
  'failure-detected': 'node-unreachable',
  'agent-unreachable': 'agent-down',
  'manual-failover': 'manual-override',
  'vip-moved': 'vip-moved',
  rejoined: 'rejoined',
  switchover: 'switchover',
  'sync-degraded': 'sync-degraded',
  'sync-restored': 'sync-restored',
  maintenance: 'maintenance',
};

const subscriptionNames: ReadonlySet<string> = new Set(Object.keys(notificationEvents));

/** The subscription name an event type is filtered and described under, if any. */
export function subscriptionName(type: string): NotificationEventName | undefined {
  if (subscriptionNames.has(type)) return type as NotificationEventName;
  return (subscriptionNameOf as Record<string, NotificationEventName | undefined>)[type];
}
