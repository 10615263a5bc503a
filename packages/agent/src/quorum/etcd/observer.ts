// EtcdObserver: the EtcdObserverPort on a real etcd, for the witness daemon in etcd mode (operator.ts
// says what each operation does). It is the agent's EtcdQuorum (same client, deadlines, reads and
// watch) plus the observer's own calls: the operator txns, a lease's TTL, and each member's status,
// asked of that member alone over a client of its own (opened on first use).
import { Etcd3 } from 'etcd3';
import { EtcdQuorum, etcd3Options, type EtcdQuorumOptions } from './client.js';
import {
  forceFailover, requestSwitchover, seedTerm, setMaintenance, type EndpointHealth, type EtcdObserverPort,
  type ForcedFailover, type RunTxn, type SeedRequest, type SwitchoverRequest,
} from './operator.js';
import type { Conditional, LeaseId, Result } from './port.js';
import type { MaintenanceRecord } from './records.js';

export class EtcdObserver extends EtcdQuorum implements EtcdObserverPort {
  readonly #opts: EtcdQuorumOptions;
  /** One client per endpoint, so each member answers for itself. */
  readonly #perEndpoint = new Map<string, Etcd3>();
  readonly #txn: RunTxn = (what, compares, success) => this.txnBy(what, compares, success, this.deadline());

  constructor(opts: EtcdQuorumOptions) {
    super(opts);
    this.#opts = opts;
  }

  requestSwitchover(req: SwitchoverRequest): Promise<Conditional<object>> {
    return requestSwitchover(this.keys, this.#txn, req);
  }

  setMaintenance(record: MaintenanceRecord | null): Promise<Result<object>> {
    return setMaintenance(this.keys, this.#txn, record);
  }

  forceFailover(req: ForcedFailover): Promise<Conditional<{ readonly term: number }>> {
    return forceFailover(this.keys, this.#txn, req);
  }

  seedTerm(req: SeedRequest): Promise<Conditional<object>> {
    return seedTerm(this.keys, this.#txn, req);
  }

  async leaseTtl(lease: LeaseId): Promise<Result<{ readonly ttlS: number }>> {
    const r = await this.bounded('lease TTL', this.deadline(), (deadline) =>
      this.etcd.leaseClient.leaseTimeToLive({ ID: lease, keys: false }, { deadline }));
    if (!r.ok) return /lease not found/i.test(r.why) ? { ok: true, ttlS: -1 } : r;
    return { ok: true, ttlS: Number(r.value.TTL) };
  }

  endpointsHealth(): Promise<readonly EndpointHealth[]> {
    return Promise.all(this.#opts.endpoints.map((endpoint) => this.#health(endpoint)));
  }

  override async close(): Promise<void> {
    for (const c of this.#perEndpoint.values()) c.close();
    this.#perEndpoint.clear();
    await super.close();
  }

  async #health(endpoint: string): Promise<EndpointHealth> {
    let client = this.#perEndpoint.get(endpoint);
    if (client === undefined) {
      client = new Etcd3(etcd3Options(this.#opts, [endpoint]));
      this.#perEndpoint.set(endpoint, client);
    }
    const member = client;
    const started = performance.now();
    const r = await this.bounded('status', this.deadline(), (deadline) => member.maintenance.status({ deadline }));
    if (!r.ok) return { endpoint, ok: false, leader: false, raftTerm: null, version: null, rttMs: null, why: r.why };
    const s = r.value;
    return {
      endpoint,
      ok: true,
      leader: s.leader === s.header.member_id,
      raftTerm: s.header.raft_term,
      version: s.version.slice(0, 40),
      rttMs: Math.round((performance.now() - started) * 10) / 10,
      why: null,
    };
  }
}
