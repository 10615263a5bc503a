// IAM identity-policy evaluation, enough to prove that deploy/'s policies are sufficient and no more:
// an explicit Deny wins, otherwise some Allow must match, otherwise the request is implicitly denied.
// Supported: Action/NotAction with wildcards (case-insensitive), Resource/NotResource ARNs with
// wildcards, and String{Equals,NotEquals,Like,NotLike} conditions on aws:ResourceTag/<key>
// (alias ec2:ResourceTag/<key>) and aws:RequestedRegion. Anything else is refused when the policy is
// loaded: silently ignoring a condition would let an over-broad policy pass its tests.
import { z } from 'zod';

const stringOrList = z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (typeof v === 'string' ? [v] : v));

const conditionOperators = ['StringEquals', 'StringNotEquals', 'StringLike', 'StringNotLike'] as const;
type ConditionOperator = (typeof conditionOperators)[number];

const conditionKeyPattern = /^(?:aws|ec2):ResourceTag\/.+$|^aws:RequestedRegion$/;

const condition = z.record(z.string(), z.record(z.string(), stringOrList)).superRefine((operators, ctx) => {
  for (const [operator, keys] of Object.entries(operators)) {
    if (!(conditionOperators as readonly string[]).includes(operator)) {
      ctx.addIssue({ code: 'custom', path: [operator], message: `the emulator supports only the condition operators ${conditionOperators.join(', ')}` });
    }
    for (const key of Object.keys(keys)) {
      if (!conditionKeyPattern.test(key)) {
        ctx.addIssue({ code: 'custom', path: [operator, key], message: 'the emulator supports only the condition keys aws:ResourceTag/<key>, ec2:ResourceTag/<key> and aws:RequestedRegion' });
      }
    }
  }
});

const statement = z
  .strictObject({
    Sid: z.string().optional(),
    Effect: z.enum(['Allow', 'Deny']),
    Action: stringOrList.optional(),
    NotAction: stringOrList.optional(),
    Resource: stringOrList.optional(),
    NotResource: stringOrList.optional(),
    Condition: condition.optional(),
  })
  .refine((s) => (s.Action === undefined) !== (s.NotAction === undefined), { message: 'a statement needs exactly one of Action and NotAction' })
  .refine((s) => (s.Resource === undefined) !== (s.NotResource === undefined), { message: 'a statement needs exactly one of Resource and NotResource' });

type OneOrMore<T> = T | T[];

/** A policy statement as written in a policy file (before normalisation to lists). */
export interface IamStatementInput {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: OneOrMore<string>;
  NotAction?: OneOrMore<string>;
  Resource?: OneOrMore<string>;
  NotResource?: OneOrMore<string>;
  Condition?: Record<string, Record<string, OneOrMore<string>>>;
}

export const iamPolicySchema = z.strictObject({
  Version: z.literal(['2012-10-17', '2008-10-17']).optional(),
  Id: z.string().optional(),
  // One statement or a list of them, normalised to a list (a union would blur the error messages).
  // The parameter's type keeps the schema's input type precise, so configs and tests are type-checked.
  Statement: z.preprocess((s: OneOrMore<IamStatementInput>) => (Array.isArray(s) ? s : [s]), z.array(statement)),
});

export type IamPolicy = z.output<typeof iamPolicySchema>;
export type IamPolicyInput = z.input<typeof iamPolicySchema>;
type Statement = IamPolicy['Statement'][number];

/** One resource a request touches, with the tags IAM conditions can test. */
export interface RequestResource {
  readonly arn: string;
  readonly tags: Readonly<Record<string, string>>;
}

export interface AuthorizationRequest {
  /** e.g. `ec2:AssignPrivateIpAddresses` */
  readonly action: string;
  readonly region: string;
  /** Describe* calls have no resource-level permissions: their one resource is `*`. */
  readonly resources: readonly RequestResource[];
}

export type AuthorizationDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly resource: string;
      readonly explicitDeny: boolean;
      readonly denyingStatement: string | undefined;
    };

/** IAM wildcards: `*` any run of characters, `?` one character. */
function globMatches(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, caseInsensitive ? 'is' : 's').test(value);
}

function contextValue(key: string, request: AuthorizationRequest, resource: RequestResource): string | undefined {
  if (key === 'aws:RequestedRegion') return request.region;
  const tag = /^(?:aws|ec2):ResourceTag\/(.+)$/.exec(key);
  return tag ? resource.tags[tag[1]!] : undefined;
}

function operatorHolds(operator: ConditionOperator, actual: string | undefined, wanted: readonly string[]): boolean {
  switch (operator) {
    // A positive operator on an absent key is false; a negated one is true (as in AWS).
    case 'StringEquals':
      return actual !== undefined && wanted.includes(actual);
    case 'StringNotEquals':
      return actual === undefined || !wanted.includes(actual);
    case 'StringLike':
      return actual !== undefined && wanted.some((w) => globMatches(w, actual, false));
    case 'StringNotLike':
      return actual === undefined || !wanted.some((w) => globMatches(w, actual, false));
  }
}

function statementApplies(s: Statement, request: AuthorizationRequest, resource: RequestResource): boolean {
  const actionListed = (list: readonly string[]) => list.some((p) => globMatches(p, request.action, true));
  if (s.Action ? !actionListed(s.Action) : actionListed(s.NotAction!)) return false;
  const resourceListed = (list: readonly string[]) => list.some((p) => globMatches(p, resource.arn, false));
  if (s.Resource ? !resourceListed(s.Resource) : resourceListed(s.NotResource!)) return false;
  const conditions = Object.entries(s.Condition ?? {}) as Array<[ConditionOperator, Record<string, string[]>]>;
  for (const [operator, keys] of conditions) {
    for (const [key, wanted] of Object.entries(keys)) {
      if (!operatorHolds(operator, contextValue(key, request, resource), wanted)) return false;
    }
  }
  return true;
}

function describeStatement(s: Statement, index: number): string {
  return s.Sid ?? `Statement[${index}]`;
}

/** Every resource of the request must be allowed by some statement and denied by none. */
export function authorize(policies: readonly IamPolicy[], request: AuthorizationRequest): AuthorizationDecision {
  const statements = policies.flatMap((p) => p.Statement);
  for (const resource of request.resources) {
    const deny = statements.findIndex((s) => s.Effect === 'Deny' && statementApplies(s, request, resource));
    if (deny >= 0) {
      const denyingStatement = describeStatement(statements[deny]!, deny);
      return { allowed: false, resource: resource.arn, explicitDeny: true, denyingStatement };
    }
    if (!statements.some((s) => s.Effect === 'Allow' && statementApplies(s, request, resource))) {
      return { allowed: false, resource: resource.arn, explicitDeny: false, denyingStatement: undefined };
    }
  }
  return { allowed: true };
}

/**
 * The UnauthorizedOperation message, worded as AWS words it, so that an operator (or pgvip's
 * `doctor`) can read the missing action from it. AWS encrypts the trailing "encoded authorization
 * failure message" (sts:DecodeAuthorizationMessage reveals it); the emulator base64url-encodes the
 * same kind of JSON in the clear, so a test can decode it.
 */
export function unauthorizedMessage(
  principalArn: string,
  request: AuthorizationRequest,
  decision: Extract<AuthorizationDecision, { allowed: false }>,
): string {
  const why = decision.explicitDeny
    ? `with an explicit deny in an identity-based policy`
    : `because no identity-based policy allows the ${request.action} action`;
  const encoded = Buffer.from(
    JSON.stringify({
      allowed: false,
      explicitDeny: decision.explicitDeny,
      matchedStatements: decision.denyingStatement ? [decision.denyingStatement] : [],
      context: { principal: principalArn, action: request.action, resource: decision.resource, region: request.region },
    }),
  ).toString('base64url');
  return (
    `You are not authorized to perform this operation. User: ${principalArn} is not authorized to perform: ` +
    `${request.action} on resource: ${decision.resource} ${why}. Encoded authorization failure message: ${encoded}`
  );
}

export function decodeAuthorizationFailure(message: string): unknown {
  const encoded = /Encoded authorization failure message: (\S+)$/.exec(message)?.[1];
  return encoded === undefined ? undefined : JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
}
