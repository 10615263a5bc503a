// One EC2 Query API request from form fields to outcome, in the order AWS applies its checks:
// action → caller identity (SigV4) → injected fault → parameters → IAM → DryRun → execute.
// The outcome says what the HTTP layer must do: answer, never answer (hang) or cut the connection.
import { randomUUID } from 'node:crypto';
import type { IamPrincipal } from './config.js';
import type { CredentialStore } from './credentials.js';
import { dryRunSucceeded, Ec2ApiError } from './errors.js';
import type { FaultInjector, FaultKind } from './faults.js';
import { authorize, unauthorizedMessage } from './iam.js';
import type { Ec2Operation } from './operation.js';
import { operations } from './operations.js';
import { QueryParams } from './query-params.js';
import type { RequestLog } from './request-log.js';
import { credentialScopeOf, expectedSignature, headerValues, parseAuthorization, requestDate, signaturesEqual, type ReceivedRequest } from './sigv4.js';
import type { Ec2Store } from './store.js';
import { errorDocument, successDocument, type XmlElement } from './xml.js';

export interface QueryApiDeps {
  readonly store: Ec2Store;
  readonly faults: FaultInjector;
  /** Access keys and instance-role credentials; undefined when IAM is not enforced. */
  readonly credentials: CredentialStore | undefined;
  readonly log: RequestLog;
  /** Wall clock (ms), for the request date and credential expiry. */
  readonly now?: () => number;
}

/** The request as it arrived; the signature covers these bytes. */
export type QueryRequest = ReceivedRequest;

export type QueryOutcome =
  | { readonly kind: 'answer'; readonly httpStatus: number; readonly requestId: string; readonly xml: string }
  | { readonly kind: 'hang'; readonly requestId: string }
  | { readonly kind: 'lost-response'; readonly requestId: string };

const faultErrors: Partial<Record<FaultKind, () => Ec2ApiError>> = {
  throttle: () => new Ec2ApiError('RequestLimitExceeded', 'Request limit exceeded.'),
  'internal-error': () => new Ec2ApiError('InternalError', 'An internal error has occurred'),
  unavailable: () => new Ec2ApiError('Unavailable', 'The service is unavailable. Please try again shortly.'),
};

/** How far a request's date may be from the server's clock (EC2: 15 minutes either way). */
export const clockSkewMaxMs = 15 * 60_000;

// EC2 answers every credential or signature problem with this one code and message (a wrong
// secret, an unknown key, a bad session token, a body changed in transit): it never says which.
const authFailure = () => new Ec2ApiError('AuthFailure', 'AWS was not able to validate the provided access credentials');
const requestExpired = () => new Ec2ApiError('RequestExpired', 'Request has expired.');

interface Identity {
  readonly accessKeyId: string | undefined;
  readonly principal: IamPrincipal | undefined;
}

/**
 * Finds and authenticates the caller. Without IAM nothing is checked but the scope's region and
 * service; with IAM the request must carry a SigV4 signature that verifies with the key's secret,
 * a date within the allowed skew and, for temporary credentials, their live session token.
 */
function identify(deps: QueryApiDeps, request: QueryRequest): Identity {
  const headers = headerValues(request.rawHeaders);
  const authorization = headers.get('authorization');
  const scope = credentialScopeOf(authorization);
  const region = deps.store.control.region;
  // A signature scoped to another region or service would fail verification in AWS; catching it
  // here exposes a client configured for the wrong region, which is an easy mistake to ship.
  if (scope && scope.region !== region) throw new Ec2ApiError('AuthFailure', `Credential should be scoped to a valid region, not '${scope.region}'.`);
  if (scope && scope.service !== 'ec2') throw new Ec2ApiError('AuthFailure', `Credential should be scoped to correct service: 'ec2'.`);
  if (!deps.credentials) return { accessKeyId: scope?.accessKeyId, principal: undefined };
  const auth = authorization === undefined ? undefined : parseAuthorization(authorization);
  const caller = auth && deps.credentials.caller(auth.scope.accessKeyId);
  if (!auth || !caller) throw authFailure();
  const date = requestDate(request.rawHeaders);
  const signed = new Set(auth.signedHeaders);
  // The host and the date must be under the signature, and the scope's day must be the request's.
  if (!date || !signed.has('host') || !(signed.has('x-amz-date') || signed.has('date')) || auth.scope.date !== date.amzDate.slice(0, 8)) throw authFailure();
  const now = (deps.now ?? Date.now)();
  if (Math.abs(now - date.epochMs) > clockSkewMaxMs) throw requestExpired();
  const expected = expectedSignature(request, auth, date.amzDate, caller.secretAccessKey);
  if (expected === undefined || !signaturesEqual(expected, auth.signature)) throw authFailure();
  // Temporary credentials sign only with their own token; a long-term key takes none.
  const token = headers.get('x-amz-security-token');
  if (token !== caller.sessionToken) throw authFailure();
  if (caller.expiresAtMs !== undefined && caller.expiresAtMs <= now) throw requestExpired();
  return { accessKeyId: caller.accessKeyId, principal: caller.principal };
}

/** What follows the front door for every operation: parameters → IAM → DryRun → execute. */
function runOperation(
  store: Ec2Store,
  action: string,
  operation: Ec2Operation,
  params: QueryParams,
  principal: IamPrincipal | undefined,
): XmlElement[] {
  params.rejectUnknown(operation.parameters);
  const dryRun = operation.supportsDryRun ? (params.boolean('DryRun') ?? false) : false;
  const resources = operation.resources(params, store.control);
  if (principal) {
    const authRequest = { action: `ec2:${action}`, region: store.control.region, resources };
    const decision = authorize(principal.policies, authRequest);
    if (!decision.allowed) throw new Ec2ApiError('UnauthorizedOperation', unauthorizedMessage(principal.arn, authRequest, decision));
  }
  // A DryRun answers only after the permission check: that is what makes it a permission probe.
  if (dryRun) throw dryRunSucceeded();
  return operation.execute(params, store);
}

export function handleQuery(deps: QueryApiDeps, request: QueryRequest): QueryOutcome {
  const requestId = randomUUID();
  let params: QueryParams | undefined;
  let action = '';
  let accessKeyId: string | undefined;
  let principal: string | undefined;
  let fault: FaultKind | undefined;
  const record = (outcome: 'ok' | 'error' | 'hang' | 'lost-response', error?: Ec2ApiError) =>
    deps.log.add({
      atMs: Date.now(),
      requestId,
      action,
      accessKeyId,
      principal,
      params: params?.toRecord() ?? {},
      outcome,
      ...(error ? { code: error.code, httpStatus: error.httpStatus } : {}),
    });
  let answer: QueryOutcome & { kind: 'answer' };
  try {
    params = QueryParams.parse(request.body.toString('utf8'), new URL(request.target, 'http://emulator').search);
    action = params.action ?? '';
    if (action === '') throw new Ec2ApiError('MissingAction', 'The request must contain the parameter Action');
    const operation = operations[action];
    if (!operation) throw new Ec2ApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
    const caller = identify(deps, request);
    accessKeyId = caller.accessKeyId;
    principal = caller.principal?.arn;
    fault = deps.faults.pick(action);
    const injected = fault && faultErrors[fault];
    if (injected) throw injected();
    if (fault === 'hang') {
      record('hang');
      return { kind: 'hang', requestId };
    }
    const body = runOperation(deps.store, action, operation, params, caller.principal);
    answer = { kind: 'answer', httpStatus: 200, requestId, xml: successDocument(action, requestId, body) };
    if (fault !== 'lost-response') record('ok');
  } catch (err) {
    const error = err instanceof Ec2ApiError ? err : new Ec2ApiError('InternalError', 'An internal error has occurred');
    // An emulator bug must not pass for an AWS server error: make it loud in the test output.
    if (!(err instanceof Ec2ApiError)) console.error(`ec2-emulator: internal error in ${action || 'request'}:`, err);
    answer = { kind: 'answer', httpStatus: error.httpStatus, requestId, xml: errorDocument(error.code, error.message, requestId) };
    if (fault !== 'lost-response') record('error', error);
  }
  if (fault === 'lost-response') {
    record('lost-response');
    return { kind: 'lost-response', requestId };
  }
  return answer;
}
