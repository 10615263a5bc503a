// An in-memory VipPort with the behaviour of Ec2VipPort, for unit tests of the agent: two (or more)
// FakeVipPorts share one FakeVipCloud, so a test can move the VIP from db-a to db-b and watch both.
//
// The model mirrors EC2's two planes: a move changes the control plane (who the VIP is assigned to)
// at once, and the data plane (where packets go, what verify() reports) either at once or, with
// `manualRemap`, only when the test calls completeRemap() — EC2's asynchronous remap.
// The fake never sleeps: a move with no budget left fails as the real one would, without effect.
//
// Test controls: injectFault() (an error for the next calls of one operation, optionally with the
// move applied anyway, as when EC2's answer is lost), assignTo() (someone else takes the VIP),
// completeRemap(), and the `calls` log.
import { PgvipError, type ErrorCode } from '@pgvip/shared';
import { placementOf, type VipPlacement, type VipPort } from './port.js';

export type FakeVipOperation = 'move' | 'verify' | 'add-local' | 'drop-local';

export interface FakeVipFault {
  readonly operation: FakeVipOperation;
  /** Default: PGVIP_VIP_EC2_FAILED for move/verify, PGVIP_VIP_OS_ADDRESS for the local operations. */
  readonly code?: ErrorCode;
  /** Only calls from this node (default: any node). */
  readonly node?: string;
  /** How many calls fail (default 1). */
  readonly count?: number;
  /** move only: the VIP moves although the call fails (EC2 applied it, the answer was lost). */
  readonly applied?: boolean;
}

export interface FakeVipCall {
  readonly node: string;
  readonly operation: FakeVipOperation;
  readonly term?: number;
  /** 'ok', or the code of the error the call threw. */
  readonly outcome: 'ok' | ErrorCode;
}

interface ArmedFault {
  readonly fault: FakeVipFault;
  remaining: number;
}

const defaultCodes: Record<FakeVipOperation, ErrorCode> = {
  move: 'PGVIP_VIP_EC2_FAILED',
  verify: 'PGVIP_VIP_EC2_FAILED',
  'add-local': 'PGVIP_VIP_OS_ADDRESS',
  'drop-local': 'PGVIP_VIP_OS_ADDRESS',
};

/** EC2 as the fakes see it: who the VIP is assigned to, and where it is routed now. */
export class FakeVipCloud {
  /** When true, a move reaches the data plane only at completeRemap(). */
  manualRemap: boolean;
  readonly calls: FakeVipCall[] = [];
  #assignedTo: string | undefined;
  #routedTo: string | undefined;
  #faults: ArmedFault[] = [];
  #requestCount = 0;

  constructor(options: { holder?: string; manualRemap?: boolean } = {}) {
    this.#assignedTo = options.holder;
    this.#routedTo = options.holder;
    this.manualRemap = options.manualRemap ?? false;
  }

  /** The node EC2 has assigned the VIP to (control plane). */
  get assignedTo(): string | undefined {
    return this.#assignedTo;
  }

  /** The node packets for the VIP reach now (data plane). */
  get routedTo(): string | undefined {
    return this.#routedTo;
  }

  /** Assigns the VIP to `node` (or to nobody), as another node or an operator would. */
  assignTo(node: string | undefined): void {
    this.#assignedTo = node;
    if (!this.manualRemap) this.#routedTo = node;
  }

  /** Lets a pending move reach the data plane. */
  completeRemap(): void {
    this.#routedTo = this.#assignedTo;
  }

  injectFault(fault: FakeVipFault): void {
    this.#faults.push({ fault, remaining: fault.count ?? 1 });
  }

  /** @internal The fault for this call, if one is armed (consumes one of its count). */
  takeFault(node: string, operation: FakeVipOperation): FakeVipFault | undefined {
    const armed = this.#faults.find(
      (f) =>
        f.remaining > 0 &&
        f.fault.operation === operation &&
        (f.fault.node === undefined || f.fault.node === node),
    );
    if (!armed) return undefined;
    armed.remaining -= 1;
    return armed.fault;
  }

  /** @internal */
  nextRequestId(): string {
    this.#requestCount += 1;
    return `fake-request-${this.#requestCount}`;
  }
}

export class FakeVipPort implements VipPort {
  readonly cloud: FakeVipCloud;
  readonly node: string;
  #onInterface: boolean;

  constructor(cloud: FakeVipCloud, node: string, options: { onInterface?: boolean } = {}) {
    this.cloud = cloud;
    this.node = node;
    this.#onInterface = options.onInterface ?? false;
  }

  /** Whether the VIP is configured on this node's OS interface. */
  get onInterface(): boolean {
    return this.#onInterface;
  }

  async moveInCloud(opts: { term: number; budgetMs: number }): Promise<{ requestIds: string[] }> {
    const fault = this.#fault('move');
    if (fault) {
      if (fault.applied) this.cloud.assignTo(this.node);
      throw this.#failure(fault, 'move', opts.term);
    }
    if (opts.budgetMs <= 0) {
      this.#record('move', 'PGVIP_VIP_TIMEOUT', opts.term);
      throw new PgvipError('PGVIP_VIP_TIMEOUT', `no budget left to move the VIP to ${this.node} for term ${opts.term}`);
    }
    this.cloud.assignTo(this.node);
    this.#record('move', 'ok', opts.term);
    return { requestIds: [this.cloud.nextRequestId()] };
  }

  async addLocal(): Promise<void> {
    const fault = this.#fault('add-local');
    if (fault) throw this.#failure(fault, 'add-local');
    this.#onInterface = true;
    this.#record('add-local', 'ok');
  }

  async dropLocal(): Promise<void> {
    const fault = this.#fault('drop-local');
    if (fault) throw this.#failure(fault, 'drop-local');
    this.#onInterface = false;
    this.#record('drop-local', 'ok');
  }

  async verify(): Promise<VipPlacement> {
    const fault = this.#fault('verify');
    if (fault) throw this.#failure(fault, 'verify');
    this.#record('verify', 'ok');
    return placementOf(this.cloud.routedTo === this.node, this.#onInterface);
  }

  #fault(operation: FakeVipOperation): FakeVipFault | undefined {
    return this.cloud.takeFault(this.node, operation);
  }

  #failure(fault: FakeVipFault, operation: FakeVipOperation, term?: number): PgvipError {
    const code = fault.code ?? defaultCodes[operation];
    this.#record(operation, code, term);
    return new PgvipError(code, `injected fault: ${operation} on ${this.node}${fault.applied ? ' (applied, answer lost)' : ''}`);
  }

  #record(operation: FakeVipOperation, outcome: 'ok' | ErrorCode, term?: number): void {
    this.cloud.calls.push({ node: this.node, operation, outcome, ...(term === undefined ? {} : { term }) });
  }
}
