// The agent's own events for the witness (protocol v2, wire/agent-events.ts): a bounded ring the
// witness reads with its polls. Recording never waits and never fails; when the witness does not
// read (down, or a release that predates v2), the oldest events are overwritten and the agent's log
// and pgvip_agent_events_total still have them.
import { randomBytes } from 'node:crypto';
import {
  AGENT_EVENTS_VERSION,
  agentEventsPerReply,
  type AgentEvent,
  type AgentEventName,
  type AgentEventsCursor,
  type AgentEventsReply,
} from '@pgvip/shared';

/** Events kept for the witness (a few minutes of a bad day; each is at most ~1 KB). */
export const agentEventLogCapacity = 128;

/**
 * Bytes of events one reply carries at most, well under the 64 KiB the witness reads (replyLimitBytes):
 * 32 details of 1000 characters are 96 KB of UTF-8 when they are CJK, 192 KB when JSON escapes them
 * (control characters), and a reply past the cap was refused at every pull without the cursor ever
 * moving. One event (at most ~6 KB) always goes, so every pull makes progress.
 */
export const agentEventsReplyBytesMax = 48 * 1024;

interface Stored {
  readonly seq: number;
  readonly event: AgentEventName;
  readonly term: number;
  readonly atMs: number;
  readonly detail: string;
}

export class AgentEventLog {
  /** Random per process: a restarted agent's seq 1 is a new event, not one the witness has seen. */
  readonly id = randomBytes(16).toString('hex');
  readonly #clock: () => number;
  readonly #capacity: number;
  readonly #ring: Stored[] = [];
  #last = 0;

  constructor(clock: () => number, capacity = agentEventLogCapacity) {
    this.#clock = clock;
    this.#capacity = capacity;
  }

  record(event: AgentEventName, term: number, detail: string): void {
    this.#ring.push({ seq: ++this.#last, event, term, atMs: this.#clock(), detail: detail.slice(0, 1000) });
    if (this.#ring.length > this.#capacity) this.#ring.shift();
  }

  /** The reply to a pull: the events after the cursor (all held for null or another log's cursor), oldest first. */
  reply(envelope: { cluster: string; term: number; from: string }, cursor: AgentEventsCursor | null): AgentEventsReply {
    const after = cursor !== null && cursor.log === this.id ? cursor.after : 0;
    const nowMs = this.#clock();
    const events: AgentEvent[] = [];
    let bytes = 0;
    for (const e of this.#ring) {
      if (e.seq <= after) continue;
      const ageMs = Math.max(0, Math.round(nowMs - e.atMs));
      const event = { seq: e.seq, event: e.event, term: e.term, ageMs, detail: e.detail };
      bytes += Buffer.byteLength(JSON.stringify(event)) + 1;
      if (events.length > 0 && bytes > agentEventsReplyBytesMax) break;
      events.push(event);
      if (events.length === agentEventsPerReply) break;
    }
    return { v: AGENT_EVENTS_VERSION, kind: 'agent-events', ...envelope, log: this.id, last: this.#last, events };
  }
}
