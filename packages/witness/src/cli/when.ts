// Parsing `switchover --at TIME`: an ISO 8601 date-time (with or without a zone; without one it is
// local time), or HH:MM[:SS] meaning the next such moment in local time.
import { usageError } from './errors.js';

export function parseAt(text: string, now: Date = new Date()): Date {
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(text.trim());
  if (clock) {
    const [hours, minutes, seconds] = [Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0)];
    if (hours > 23 || minutes > 59 || seconds > 59) throw usageError(`--at ${text}: not a time of day; use HH:MM, e.g. 03:30`);
    const at = new Date(now);
    at.setHours(hours, minutes, seconds, 0);
    if (at.getTime() <= now.getTime()) at.setDate(at.getDate() + 1);
    return at;
  }
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(text.trim())) {
    throw usageError(`--at ${text}: not a time; use HH:MM (next occurrence, local time) or an ISO 8601 date-time such as 2025-06-01T03:30:00Z`);
  }
  const at = new Date(text.trim().replace(' ', 'T'));
  if (Number.isNaN(at.getTime())) throw usageError(`--at ${text}: not a valid date-time`);
  if (at.getTime() <= now.getTime()) throw usageError(`--at ${text}: is in the past (now is ${now.toISOString()})`);
  return at;
}
