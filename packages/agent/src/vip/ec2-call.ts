// One EC2 API call with the VIP's retry rules: attempts until a deadline, exponential backoff with
// full jitter between them, a retry only for failures that another attempt can cure (throttling,
// 5xx, timeouts, broken connections), and a log line for every attempt with the AWS request id.
//
// The SDK's own retries are off (maxAttempts 1 on the client): they cannot honour a deadline, and
// the core's promise is that no attempt to move the VIP STARTS after the budget of its term.
import { PgvipError, type ErrorCode } from '@pgvip/shared';
import type { Logger } from 'pino';

export interface RetryPolicy {
  /** First backoff cap; doubles with every attempt. */
  readonly baseDelayMs: number;
  /** Upper bound on the backoff cap. */
  readonly maxDelayMs: number;
}

/** AWS's recommendation for latency-critical callers, scaled down: 50, 100, 200, ... up to 1 s. */
export const defaultRetryPolicy: RetryPolicy = { baseDelayMs: 50, maxDelayMs: 1_000 };

/** How one failed attempt is judged. */
export type FailureKind = 'throttled' | 'server' | 'timeout' | 'network' | 'clock-skew' | 'unauthorized' | 'not-found' | 'client';

/** A failed attempt, reduced to what decides a retry and what may be logged (never the request). */
export interface Ec2Failure {
  readonly kind: FailureKind;
  /** The EC2 error code (`RequestLimitExceeded`) or the error's name/code for transport failures. */
  readonly code: string;
  readonly message: string;
  readonly httpStatus: number | undefined;
  readonly requestId: string | undefined;
}

const retryable: ReadonlySet<FailureKind> = new Set(['throttled', 'server', 'timeout', 'network', 'clock-skew']);
const throttlingCodes = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'RequestThrottledException', 'TooManyRequestsException']);
const notFoundCodes = /^Invalid(NetworkInterfaceID|RouteTableID|InstanceID)\.NotFound$/;
const networkCodes = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string; clockSkewCorrected?: boolean };
}

/** Classifies whatever the SDK threw. */
export function classifyEc2Error(err: unknown): Ec2Failure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const transportCode = typeof e.code === 'string' ? e.code : undefined;
  const httpStatus = e.$metadata?.httpStatusCode;
  const requestId = e.$metadata?.requestId;
  const message = typeof e.message === 'string' ? e.message : String(err);
  const failure = (kind: FailureKind, code = name): Ec2Failure => ({ kind, code, message, httpStatus, requestId });
  // EC2 refused the request's date (more than 15 minutes from its clock: RequestExpired, or
  // AuthFailure) and the SDK has just corrected its clock offset from the answer's Date header: the
  // next attempt is signed with EC2's time. A host whose wall clock jumped must not lose a failover to it.
  if (e.$metadata?.clockSkewCorrected === true) return failure('clock-skew');
  if (name === 'UnauthorizedOperation' || name === 'AuthFailure' || name === 'Blocked' || name === 'OptInRequired') return failure('unauthorized');
  if (throttlingCodes.has(name) || httpStatus === 429) return failure('throttled');
  if (notFoundCodes.test(name)) return failure('not-found');
  // The SDK names a reset connection "TimeoutError" too; its code tells the two apart.
  if (transportCode !== undefined && networkCodes.has(transportCode)) return failure('network', transportCode);
  if (name === 'TimeoutError' || transportCode === 'ETIMEDOUT') return failure('timeout', 'TimeoutError');
  if (httpStatus !== undefined && httpStatus >= 500) return failure('server');
  if (httpStatus !== undefined && httpStatus >= 400) return failure('client');
  if (/socket hang up|ECONNRESET/i.test(message)) return failure('network', 'ECONNRESET');
  // Anything else (a parse error, a bug) would fail the same way again: do not spin on it.
  return failure('client');
}

/**
 * A failed EC2 call; `failure` keeps the last attempt's failure for callers that branch on the EC2 code
 * (RouteAlreadyExists, ...).
 */
export class Ec2CallError extends PgvipError {
  readonly failure: Ec2Failure;
  readonly operation: string;
  constructor(code: ErrorCode, detail: string, operation: string, failure: Ec2Failure) {
    super(code, detail);
    this.failure = failure;
    this.operation = operation;
  }
}

/** The EC2 code behind an error from `Ec2Caller.call` (undefined for anything else). */
export function ec2CodeOf(err: unknown): string | undefined {
  return err instanceof Ec2CallError ? err.failure.code : undefined;
}

function withoutEncodedMessage(message: string): string {
  // AWS appends an encrypted blob for `sts decode-authorization-message`; it only clutters a log line.
  return message.replace(/\s*Encoded authorization failure message:.*$/s, '');
}

function refusal(operation: string, failure: Ec2Failure, what: string): Ec2CallError {
  const id = failure.requestId === undefined ? '' : ` (request id ${failure.requestId})`;
  if (failure.kind === 'unauthorized') {
    const detail = failure.code === 'UnauthorizedOperation'
      ? `the IAM policy of this node's role must allow ec2:${operation} (${what}): ${withoutEncodedMessage(failure.message)}${id}`
      : `EC2 did not accept this node's credentials for ec2:${operation} (${failure.code}): ${failure.message}${id}`;
    return new Ec2CallError('PGVIP_VIP_UNAUTHORIZED', detail, operation, failure);
  }
  const code: ErrorCode = failure.kind === 'not-found' ? 'PGVIP_VIP_NOT_FOUND' : 'PGVIP_VIP_EC2_FAILED';
  return new Ec2CallError(code, `${operation} (${what}) failed: ${failure.code}: ${failure.message}${id}`, operation, failure);
}

export interface CallContext {
  /** Monotonic time (performance.now) after which no attempt may start. */
  readonly deadlineMs: number;
  /** Extra log fields: term, ENI, route table, ... */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface Ec2CallerOptions {
  readonly logger: Logger;
  readonly retry?: RetryPolicy;
  /** [0, 1) uniform (default Math.random); tests make the jitter deterministic. */
  readonly random?: () => number;
  readonly clock?: () => number;
}

/** Output of any SDK command: the metadata carries the request id. */
interface WithMetadata {
  readonly $metadata: { readonly requestId?: string; readonly attempts?: number };
}

export class Ec2Caller {
  readonly #log: Logger;
  readonly #retry: RetryPolicy;
  readonly #random: () => number;
  readonly #clock: () => number;

  constructor(options: Ec2CallerOptions) {
    this.#log = options.logger;
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /**
   * Runs `send` (one SDK command) until it succeeds, fails for good, or the deadline leaves no room
   * for another attempt. `what` names the call's target in messages ("VIP 10.0.1.100 to eni-0aaa").
   * Throws Ec2CallError: PGVIP_VIP_TIMEOUT when the deadline ended the retries, else the failure's code.
   */
  async call<T extends WithMetadata>(
    operation: string,
    what: string,
    send: () => Promise<T>,
    context: CallContext,
  ): Promise<T> {
    const level = operation.startsWith('Describe') ? 'debug' : 'info';
    for (let attempt = 1; ; attempt++) {
      const startedAt = this.#clock();
      if (startedAt >= context.deadlineMs) {
        throw new Ec2CallError('PGVIP_VIP_TIMEOUT', `${operation} (${what}) not attempted: its time budget was already spent`, operation, {
          kind: 'timeout', code: 'BudgetSpent', message: 'no time left', httpStatus: undefined, requestId: undefined,
        });
      }
      try {
        const output = await send();
        const durationMs = Math.round(this.#clock() - startedAt);
        this.#log[level]({ ...context.fields, action: operation, attempt, requestId: output.$metadata.requestId, durationMs }, `${operation} succeeded (${what})`);
        return output;
      } catch (err) {
        const failure = classifyEc2Error(err);
        const durationMs = Math.round(this.#clock() - startedAt);
        const logFields = {
          ...context.fields,
          action: operation,
          attempt,
          requestId: failure.requestId,
          durationMs,
          awsCode: failure.code,
          httpStatus: failure.httpStatus,
          failure: failure.kind,
        };
        if (!retryable.has(failure.kind)) {
          // Expected answers (RouteAlreadyExists, a missing route) are handled by the caller; log quietly.
          this.#log[failure.kind === 'client' ? 'info' : 'warn'](logFields, `${operation} refused (${what}): ${failure.code}: ${withoutEncodedMessage(failure.message)}`);
          throw refusal(operation, failure, what);
        }
        const delayMs = this.#backoffMs(attempt);
        const remainingMs = context.deadlineMs - this.#clock();
        if (delayMs >= remainingMs) {
          this.#log.warn(logFields, `${operation} failed (${what}): ${failure.code}; giving up, ${Math.max(0, Math.round(remainingMs))} ms of budget left`);
          throw new Ec2CallError(
            'PGVIP_VIP_TIMEOUT',
            `${operation} (${what}) did not succeed within its budget: ${attempt} attempt${attempt === 1 ? '' : 's'}, the last failed with ${failure.code}: ${failure.message}`,
            operation,
            failure,
          );
        }
        this.#log.warn({ ...logFields, retryInMs: Math.round(delayMs) }, `${operation} failed (${what}): ${failure.code}; retrying`);
        await sleep(delayMs);
      }
    }
  }

  /** Full jitter: uniform in [0, min(max, base·2^(attempt-1))]. */
  #backoffMs(attempt: number): number {
    const capMs = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1));
    return this.#random() * capMs;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
