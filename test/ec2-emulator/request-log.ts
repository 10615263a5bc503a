// A bounded record of the API calls the emulator answered, so tests and the lab can assert on what
// a client actually sent (e.g. how many attempts the SDK made through a throttle).

export type RequestOutcome = 'ok' | 'error' | 'hang' | 'lost-response';

export interface LoggedRequest {
  readonly atMs: number;
  readonly requestId: string;
  readonly action: string;
  readonly accessKeyId: string | undefined;
  /** The authenticated caller's ARN (a user, or an instance role's session); undefined when IAM is not enforced. */
  readonly principal?: string | undefined;
  readonly params: Readonly<Record<string, string>>;
  readonly outcome: RequestOutcome;
  /** The EC2 error code, for outcome "error". */
  readonly code?: string;
  readonly httpStatus?: number;
}

export class RequestLog {
  readonly #limit: number;
  #entries: LoggedRequest[] = [];

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  add(entry: LoggedRequest): void {
    this.#entries.push(entry);
    if (this.#entries.length > this.#limit) this.#entries.splice(0, this.#entries.length - this.#limit);
  }

  entries(filter: { action?: string } = {}): LoggedRequest[] {
    return this.#entries.filter((e) => filter.action === undefined || e.action === filter.action);
  }

  clear(): void {
    this.#entries = [];
  }
}
