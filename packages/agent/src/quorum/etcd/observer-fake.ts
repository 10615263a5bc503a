// The EtcdObserverPort on the in-memory FakeEtcd (fake.ts), for unit tests of the witness in etcd
// mode: the same operator txns (operator.ts) on the fake's compares, lease TTLs on the test's clock,
// and endpoints that are all healthy, or all down when the fake has no quorum.
import type { MonotonicClock } from '../../clock.js';
import { FakeEtcdQuorum, type FakeEtcd } from './fake.js';
import {
  forceFailover, requestSwitchover, seedTerm, setMaintenance, type EndpointHealth, type EtcdObserverPort,
  type ForcedFailover, type RunTxn, type SeedRequest, type SwitchoverRequest,
} from './operator.js';
import type { Conditional, LeaseId, Result } from './port.js';
import type { MaintenanceRecord } from './records.js';

export class FakeEtcdObserver extends FakeEtcdQuorum implements EtcdObserverPort {
  readonly #etcd: FakeEtcd;
  readonly #endpoints: readonly string[];
  readonly #txn: RunTxn = (what, compares, success) => this.txnBy(what, compares, success);

  constructor(
    etcd: FakeEtcd,
    opts: { prefix: string; cluster: string; timeoutMs: number; clock: MonotonicClock; endpoints?: readonly string[] },
  ) {
    super(etcd, opts);
    this.#etcd = etcd;
    this.#endpoints = opts.endpoints ?? ['http://127.0.0.1:2379'];
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

  leaseTtl(lease: LeaseId): Promise<Result<{ readonly ttlS: number }>> {
    if (!this.#etcd.available) return Promise.resolve({ ok: false, why: 'lease TTL: etcd has no quorum (fake)' });
    return Promise.resolve({ ok: true, ttlS: this.#etcd.leaseTtlS(lease) });
  }

  endpointsHealth(): Promise<readonly EndpointHealth[]> {
    const up = this.#etcd.available;
    return Promise.resolve(this.#endpoints.map((endpoint, i): EndpointHealth => ({
      endpoint,
      ok: up,
      leader: up && i === 0,
      raftTerm: up ? String(this.#etcd.raftTerm) : null,
      version: up ? 'fake' : null,
      rttMs: up ? 0 : null,
      why: up ? null : 'status: etcd has no quorum (fake)',
    })));
  }
}
