// Which events a channel receives: its configured `events` list, or '*' for all of them. A name
// of config/events.ts matches events of that type and the core events it covers (event-names.ts).
import type { PgvipEvent } from '../events.js';
import { subscriptionName } from './event-names.js';

export type EventFilter = (e: PgvipEvent) => boolean;

export function eventFilter(events: readonly string[]): EventFilter {
  if (events.includes('*')) return () => true;
  const wanted = new Set(events);
  return (e) => {
    const name = subscriptionName(e.type);
    return name !== undefined && wanted.has(name);
  };
}
