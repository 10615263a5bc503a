// Which events a channel receives: its configured `events` list, or '*' for all of them.
// Names are matched literally against the event's type (the names of config/events.ts).
import type { PgvipEvent } from '../events.js';

export type EventFilter = (e: PgvipEvent) => boolean;

export function eventFilter(events: readonly string[]): EventFilter {
  if (events.includes('*')) return () => true;
  const wanted = new Set(events);
  return (e) => wanted.has(e.type);
}
