// What every emulated EC2 operation declares, so the server can run the common pipeline
// (unknown parameters → IAM → DryRun → execute) the same way for all of them.
import { Ec2ApiError } from './errors.js';
import type { RequestResource } from './iam.js';
import type { Ec2Snapshot } from './model.js';
import type { QueryParams } from './query-params.js';
import type { Ec2Store } from './store.js';
import type { XmlElement } from './xml.js';

export interface Ec2Operation {
  /** The request parameters the operation defines (top-level names; DryRun only where AWS has it). */
  readonly parameters: ReadonlySet<string>;
  readonly supportsDryRun: boolean;
  /**
   * The resources IAM evaluates this call against, read from the control plane. Throws the
   * operation's parameter errors (missing or malformed ids) first, as AWS validates before authorizing.
   */
  resources(params: QueryParams, control: Ec2Snapshot): RequestResource[];
  /** Validates against the control plane, commits any mutation to the store, returns the response body. */
  execute(params: QueryParams, store: Ec2Store): XmlElement[];
}

/** Describe* calls have no resource-level permissions in IAM: they are authorized on `*`. */
export const anyResource: RequestResource[] = [{ arn: '*', tags: {} }];

export function ec2Arn(s: Ec2Snapshot, type: 'network-interface' | 'route-table', id: string): string {
  return `arn:aws:ec2:${s.region}:${s.accountId}:${type}/${id}`;
}

export function checkIdFormat(id: string, pattern: RegExp, code: 'InvalidNetworkInterfaceID.Malformed' | 'InvalidRouteTableID.Malformed' | 'InvalidInstanceID.Malformed', prefix: string): void {
  if (!pattern.test(id)) throw new Ec2ApiError(code, `Invalid id: "${id}" (expecting "${prefix}-...")`);
}

/**
 * MaxResults/NextToken paging over a result list. The token is opaque to clients; here it is the
 * offset of the next item, bound to the request's filters so a token cannot be reused elsewhere.
 */
export function paginate<T>(
  items: readonly T[],
  params: QueryParams,
  maxResultsRange: { min: number; max: number },
  boundTo: string,
): { page: readonly T[]; nextToken: string | undefined } {
  const maxResults = params.integer('MaxResults', maxResultsRange);
  const token = params.string('NextToken');
  let offset = 0;
  if (token !== undefined) {
    const decoded = /^(\d+):(.*)$/s.exec(Buffer.from(token, 'base64url').toString('utf8'));
    if (!decoded || decoded[2] !== boundTo || Number(decoded[1]) > items.length) {
      throw new Ec2ApiError('InvalidPaginationToken', 'The specified pagination token is not valid or is expired.');
    }
    offset = Number(decoded[1]);
  }
  if (maxResults === undefined) return { page: items.slice(offset), nextToken: undefined };
  const end = offset + maxResults;
  return {
    page: items.slice(offset, end),
    nextToken: end < items.length ? Buffer.from(`${end}:${boundTo}`).toString('base64url') : undefined,
  };
}
