// One EC2 Query API request from form fields to outcome, in the order AWS applies its checks:
// action → caller identity → injected fault → parameters → IAM → DryRun → execute.
// The outcome says what the HTTP layer must do: answer, never answer (hang) or cut the connection.
import { randomUUID } from 'node:crypto';
import type { IamPrincipal } from './config.js';
import { dryRunSucceeded, Ec2ApiError } from './errors.js';
import type { FaultInjector, FaultKind } from './faults.js';
import { authorize, unauthorizedMessage } from './iam.js';
import type { Ec2Operation } from './operation.js';
import { operations } from './operations.js';
import { QueryParams } from './query-params.js';
import type { RequestLog } from './request-log.js';
import { credentialScopeOf } from './sigv4.js';
import type { Ec2Store } from './store.js';
import { errorDocument, successDocument, type XmlElement } from './xml.js';

export interface QueryApiDeps {
  readonly store: Ec2Store;
  readonly faults: FaultInjector;
  /** Access key id → principal; undefined when IAM is not enforced. */
  readonly iam: ReadonlyMap<string, IamPrincipal> | undefined;
  readonly log: RequestLog;
}

export interface QueryRequest {
  readonly body: string;
  readonly urlQuery: string;
  readonly authorization: string | undefined;
}

export type QueryOutcome =
  | { readonly kind: 'answer'; readonly httpStatus: number; readonly requestId: string; readonly xml: string }
  | { readonly kind: 'hang'; readonly requestId: string }
  | { readonly kind: 'lost-response'; readonly requestId: string };

const faultErrors: Partial<Record<FaultKind, () => Ec2ApiError>> = {
  throttle: () => new Ec2ApiError('RequestLimitExceeded', 'Request limit exceeded.'),
  'internal-error': () => new Ec2ApiError('InternalError', 'An internal error has occurred'),
  unavailable: () => new Ec2ApiError('Unavailable', 'The service is unavailable. Please try again shortly.'),
};

/** Finds the caller's principal; with IAM enforced, an unsigned or unknown key is an AuthFailure. */
function identify(deps: QueryApiDeps, request: QueryRequest, params: QueryParams): { accessKeyId: string | undefined; principal: IamPrincipal | undefined } {
  const scope = credentialScopeOf(request.authorization, params.string('X-Amz-Credential'));
  const region = deps.store.control.region;
  // A signature scoped to another region or service would fail verification in AWS; catching it
  // here exposes a client configured for the wrong region, which is an easy mistake to ship.
  if (scope && scope.region !== region) throw new Ec2ApiError('AuthFailure', `Credential should be scoped to a valid region, not '${scope.region}'.`);
  if (scope && scope.service !== 'ec2') throw new Ec2ApiError('AuthFailure', `Credential should be scoped to correct service: 'ec2'.`);
  if (!deps.iam) return { accessKeyId: scope?.accessKeyId, principal: undefined };
  const principal = scope && deps.iam.get(scope.accessKeyId);
  if (!principal) throw new Ec2ApiError('AuthFailure', 'AWS was not able to validate the provided access credentials');
  return { accessKeyId: scope.accessKeyId, principal };
}

/** What follows the front door for every operation: parameters → IAM → DryRun → execute. */
function runOperation(store: Ec2Store, action: string, operation: Ec2Operation, params: QueryParams, principal: IamPrincipal | undefined): XmlElement[] {
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
  let fault: FaultKind | undefined;
  const record = (outcome: 'ok' | 'error' | 'hang' | 'lost-response', error?: Ec2ApiError) =>
    deps.log.add({
      atMs: Date.now(),
      requestId,
      action,
      accessKeyId,
      params: params?.toRecord() ?? {},
      outcome,
      ...(error ? { code: error.code, httpStatus: error.httpStatus } : {}),
    });
  let answer: QueryOutcome & { kind: 'answer' };
  try {
    params = QueryParams.parse(request.body, request.urlQuery);
    action = params.action ?? '';
    if (action === '') throw new Ec2ApiError('MissingAction', 'The request must contain the parameter Action');
    const operation = operations[action];
    if (!operation) throw new Ec2ApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
    const caller = identify(deps, request, params);
    accessKeyId = caller.accessKeyId;
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
