// The replication model of a FakePostgres (fake.ts): one server's state, and how standbys stream
// from their primary. A primary's WAL position grows with each write; a standby whose receiver runs,
// and whose primary is up and reachable, has received and replayed everything at once. Promotion
// starts a new timeline and remembers where the old one ended, so a former primary that wrote past
// that point cannot stream until it rejoins (as in PostgreSQL).
import { PgvipError, type ErrorCode } from '@pgvip/shared';
import { endpointKey } from './fake-network.js';
import { FakeSlots } from './fake-slots.js';
import type { Lsn } from './lsn.js';
import type { PgEndpoint, ReplicaView } from './port.js';
import { parseSynchronousStandbyNames, standbyPriority } from './sync-names.js';

export const firstLsn: Lsn = 0x3000000n;

/** How a server finds the others on its network. */
export interface FakeServerDirectory {
  nodes(): FakeServer[];
  resolve(endpoint: PgEndpoint): FakeServer | undefined;
}

export class FakeServer {
  readonly nodeName: string;
  readonly endpoint: PgEndpoint;
  /** Server settings as current_setting() shows them (FakePostgres.settings). */
  readonly settings: Map<string, string>;
  readonly #servers: FakeServerDirectory;
  running = true;
  stalled = false;
  inRecovery = false;
  timelineId = 1;
  /** Primary: current WAL position. Standby: replay position. */
  walLsn: Lsn = firstLsn;
  receiveLsn: Lsn | null = null;
  /** Where each earlier timeline of this node's history ended (the promotion points). */
  timelineEnds = new Map<number, Lsn>();
  /** primary_conninfo; null when the WAL receiver is switched off (or on a primary). */
  upstream: PgEndpoint | null = null;
  linkToUpstreamUp = true;
  hasSchema = false;
  /** Physical slots on this server: the oldest WAL each keeps, and whether PostgreSQL invalidated it. */
  readonly slots = new FakeSlots();
  /** primary_slot_name: the slot on the upstream this standby streams through. */
  slotName: string | null = null;

  constructor(nodeName: string, endpoint: PgEndpoint, settings: Map<string, string>, servers: FakeServerDirectory) {
    this.nodeName = nodeName;
    this.endpoint = endpoint;
    this.settings = settings;
    this.#servers = servers;
  }

    createSlot(name: string): boolean {
    return this.slots.create(name, this.walLsn);
  }

  setting(name: string): string {
    return this.settings.get(name) ?? '';
  }

  sqlFailure(): { code: ErrorCode; detail: string } | null {
    const where = endpointKey(this.endpoint);
    if (!this.running) return { code: 'PGVIP_PG_UNREACHABLE', detail: `${where}: connect ECONNREFUSED` };
    if (this.stalled) return { code: 'PGVIP_PG_TIMEOUT', detail: `${where} accepted no session within the bound` };
    return null;
  }

  requireSql(): void {
    const failure = this.sqlFailure();
    if (failure) throw new PgvipError(failure.code, failure.detail);
  }

  requireStandby(what: string): void {
    if (!this.inRecovery) throw new PgvipError('PGVIP_PG_NOT_STANDBY', `${what} needs a standby; this server is a primary`);
  }

  /** This node's data becomes a copy of `primary` (base backup, or rewind + catch-up): same history and position. */
  becomeCopyOf(primary: FakeServer): void {
    this.inRecovery = true;
    this.timelineId = primary.timelineId;
    this.timelineEnds = new Map(primary.timelineEnds);
    this.walLsn = primary.walLsn;
    this.receiveLsn = primary.walLsn;
    this.hasSchema = primary.hasSchema;
    // pg_basebackup and pg_rewind copy postgresql.auto.conf, synchronous_standby_names included.
    this.settings.set('synchronous_standby_names', primary.setting('synchronous_standby_names'));
  }

  upstreamNode(): FakeServer | undefined {
    return this.upstream === null ? undefined : this.#servers.resolve(this.upstream);
  }

  /**
   * Whether this standby can stream from its upstream now: both up, link up, upstream a primary, and
   * this node's history a prefix of the upstream's (on its timeline, or not past the point where the
   * upstream left this node's timeline).
   */
  isStreaming(): boolean {
    const upstream = this.upstreamNode();
    if (!this.inRecovery || !this.running || this.stalled || !this.linkToUpstreamUp || !upstream) return false;
    if (!upstream.running || upstream.stalled || upstream.inRecovery) return false;
    // A slot named in primary_slot_name must exist on the upstream and still hold WAL.
    if (this.slotName !== null) {
      const slot = upstream.slots.get(this.slotName);
      if (slot === undefined || slot.lost) return false;
    }
    if (upstream.timelineId === this.timelineId) return this.walLsn <= upstream.walLsn;
    const end = upstream.timelineEnds.get(this.timelineId);
    return upstream.timelineId > this.timelineId && end !== undefined && this.walLsn <= end;
  }

  /** Standbys streaming from each primary catch up with it. */
  settle(): void {
    for (const node of this.#servers.nodes()) {
      const upstream = node.upstreamNode();
      if (!upstream || !node.isStreaming()) continue;
      node.timelineId = upstream.timelineId;
      node.timelineEnds = new Map(upstream.timelineEnds);
      node.walLsn = upstream.walLsn;
      node.receiveLsn = upstream.walLsn;
      node.hasSchema = upstream.hasSchema;
      // The standby confirms everything at once, so its slot keeps nothing.
      const slot = node.slotName === null ? undefined : upstream.slots.get(node.slotName);
      if (slot) slot.restartLsn = upstream.walLsn;
    }
  }

  replies = 0;

  replicas(): ReplicaView[] {
    const syncNames = this.setting('synchronous_standby_names');
    return this.#servers
      .nodes()
      .filter((n) => n !== this && n.upstreamNode() === this && n.isStreaming())
      .map((n) => ({
        applicationName: n.nodeName,
        clientAddress: n.endpoint.host,
        state: 'streaming',
        syncState: syncStateOf(syncNames, n.nodeName),
        flushLsn: n.receiveLsn,
        replayLsn: n.walLsn,
        // A streaming standby replies all the time: a new reply at every look.
        replyTime: String(++this.replies),
      }))
      .sort((x, y) => x.applicationName.localeCompare(y.applicationName));
  }
}

/**
 * pg_stat_replication.sync_state for a streaming standby: 'quorum' for a listed one under ANY k,
 * 'sync' for one of the first k listed under FIRST k, 'potential' for the rest listed, else 'async'
 * (the fake has every listed standby connected).
 */
function syncStateOf(synchronousStandbyNames: string, name: string): string {
  const setting = parseSynchronousStandbyNames(synchronousStandbyNames);
  const priority = standbyPriority(setting, name);
  if (setting === null || priority === 0) return 'async';
  if (setting.method === 'any') return 'quorum';
  return priority <= setting.count ? 'sync' : 'potential';
}
