// Turns zod issues into the lines a person reads: `<path.to.field>: <what is wrong> (got <value>);
// <what would be valid>`. The schema's field builders supply the "what would be valid" sentence;
// this module adds the path and the offending value, so no raw zod text ever reaches a person.
import type { z } from 'zod';
import { showValue } from './problem.js';
import { timingIssueKind } from './timings-schema.js';

export interface ConfigProblem {
  /** Dotted path with [index] for list items, e.g. `cluster.nodes[1].agent.port`. */
  readonly path: string;
  /** `<what is wrong> (got <value>); <what would be valid>`. */
  readonly message: string;
  /** A broken timing inequality rather than a malformed field. */
  readonly timing: boolean;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : i === 0 ? String(segment) : `.${String(segment)}`))
    .join('');
}

/** Puts "(got <value>)" after the first clause: "must be X; did you mean Y?" → "must be X (got Z); did you mean Y?". */
function withGot(message: string, value: unknown): string {
  const cut = message.indexOf('; ');
  return cut < 0 ? `${message} (got ${showValue(value)})` : `${message.slice(0, cut)} (got ${showValue(value)})${message.slice(cut)}`;
}

function memberOf(value: unknown, key: PropertyKey): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
}

function paramOf(issue: z.core.$ZodIssue, name: string): unknown {
  return issue.code === 'custom' ? issue.params?.[name] : undefined;
}

function isComposed(issue: z.core.$ZodIssue): boolean {
  return paramOf(issue, 'composed') === true;
}

export function issueToProblem(issue: z.core.$ZodIssue): ConfigProblem {
  const input: unknown = issue.input;
  let path = issue.path;
  let message: string;
  switch (issue.code) {
    case 'custom':
      // Cross-field checks compose their whole sentence (they know which value to show); other
      // custom checks (refinements inside a field builder) are worded like any field check.
      message = isComposed(issue) ? issue.message : withGot(issue.message, input);
      break;
    case 'unrecognized_keys': {
      const only = issue.keys.length === 1 ? issue.keys[0] : undefined;
      if (only === undefined) {
        message = issue.message;
      } else {
        path = [...path, only];
        message = withGot(issue.message, memberOf(input, only));
      }
      break;
    }
    case 'invalid_union': {
      const chosen = issue.discriminator === undefined ? input : memberOf(input, issue.discriminator);
      message = chosen === undefined ? `is required (got nothing); ${issue.message}` : withGot(issue.message, chosen);
      break;
    }
    case 'too_small':
    case 'too_big':
      message = withGot(issue.message, Array.isArray(input) ? input.length : input);
      break;
    default:
      message = input === undefined ? `is required (got nothing); ${issue.message}` : withGot(issue.message, input);
  }
  const timing = isComposed(issue) && paramOf(issue, 'kind') === timingIssueKind;
  return { path: formatPath(path), message, timing };
}

/**
 * Last-resort wording for an issue no field builder worded (a schema change that forgot one):
 * still a sentence about the value, never zod's internals.
 */
export function fallbackIssueSentence(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `must be of type ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => showValue(v)).join(', ')}`;
    default:
      return 'is not valid here';
  }
}
