// Field builders for the config schema. Each builder carries ONE sentence that says what a valid
// value looks like; zod reports it for every way the value can be wrong (wrong type, out of range,
// bad format), and the loader adds the offending value and the field path. Each builder also
// records a short type label for the generated configuration reference (docs/configuration.md).
import { z } from 'zod';
import { closestMatch } from './suggest.js';

/** Metadata the reference generator reads (besides zod's own `description`). */
export interface FieldMeta {
  /** How the type reads in the reference table, e.g. "integer 1–65535". */
  typeLabel?: string;
  /** For defaults computed from other fields or from IMDS, the words that describe them. */
  defaultLabel?: string;
}

function labelled<T extends z.ZodType>(schema: T, typeLabel: string): T {
  return schema.meta({ typeLabel } satisfies FieldMeta);
}

const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// RFC 1123 host names; the last label may not be all digits, so "10.0.1.300" is a bad address,
// not a host name.
const hostNamePattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*(?![0-9]+$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const dnsLabelPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isIPv4(value: string): boolean {
  return ipv4Pattern.test(value);
}

export function integer(min: number, max?: number): z.ZodInt {
  const sentence = max === undefined ? `must be an integer ≥ ${min}` : `must be an integer from ${min} to ${max}`;
  const base = z.int({ error: sentence }).min(min, { error: sentence });
  const bounded = max === undefined ? base : base.max(max, { error: sentence });
  return labelled(bounded, max === undefined ? `integer ≥ ${min}` : `integer ${min}–${max}`);
}

export function port(): z.ZodInt {
  return integer(1, 65535);
}

/** A duration in milliseconds; the upper bound only catches a unit mistake (seconds typed as ms). */
export function durationMs(min = 1, max = 3_600_000): z.ZodInt {
  return labelled(integer(min, max), `milliseconds ${min}–${max}`);
}

export function decimal(): z.ZodNumber {
  return labelled(z.number({ error: 'must be a number' }), 'number');
}

export function flag(): z.ZodBoolean {
  return labelled(z.boolean({ error: 'must be true or false' }), 'boolean');
}

function patternString(pattern: RegExp, sentence: string, typeLabel: string): z.ZodString {
  return labelled(z.string({ error: sentence }).regex(pattern, { error: sentence }), typeLabel);
}

export function ipv4Address(example = '10.0.1.100'): z.ZodString {
  return patternString(ipv4Pattern, `must be an IPv4 address, e.g. ${example}`, 'IPv4 address');
}

/** Where a peer is reached or a socket is bound: an IPv4 address or a DNS name. */
export function host(example = '10.0.1.11'): z.ZodString {
  const sentence = `must be an IPv4 address or a host name, e.g. ${example}`;
  const schema = z
    .string({ error: sentence })
    .refine((v) => isIPv4(v) || hostNamePattern.test(v), { error: sentence });
  return labelled(schema, 'IPv4 address or host name');
}

/** Names that end up in DNS-like places (application_name, log fields, metric labels). */
export function dnsLabel(example: string): z.ZodString {
  return patternString(
    dnsLabelPattern,
    `must be 1–63 lowercase letters, digits or '-', starting and ending with a letter or digit, e.g. ${example}`,
    'name ([a-z0-9-], ≤ 63)',
  );
}

/** A PostgreSQL replication slot name: PostgreSQL allows [a-z0-9_] only. */
export function slotName(example: string): z.ZodString {
  return patternString(/^[a-z0-9_]{1,63}$/, `must be a replication slot name: 1–63 lowercase letters, digits or '_', e.g. ${example}`, 'slot name');
}

export function absolutePath(example: string): z.ZodString {
  return patternString(/^\/\S*$/, `must be an absolute path without spaces, e.g. ${example}`, 'absolute path');
}

// pg_ctl (start, stop, status) and pg_rewind start postgres with system()/popen(), i.e. through
// /bin/sh, with the data directory, the binaries' directory and the log file written into the
// command line inside double quotes. There `$(...)`, backticks, `"` and `\` are still shell syntax:
// dataDir `/x/pg$(touch${IFS}/tmp/x)` would run `touch` as the PostgreSQL user. Such paths are
// refused outright, with room only for the characters paths are made of.
const shellSafePathPattern = /^\/[A-Za-z0-9._+,:=@/-]*$/;
const shellSafePathRule = 'pg_ctl and pg_rewind run postgres through /bin/sh with this path in the command line, where characters such as $ ` " \\ ; & | ( ) < > * ? \' ! or white space would be run as shell code';

/** Why `value` must not reach a shell command line, or undefined when it is safe there. */
export function shellUnsafePathProblem(value: string): string | undefined {
  return shellSafePathPattern.test(value) ? undefined : `may hold only letters, digits and / . _ - + , : = @ (${shellSafePathRule})`;
}

/** An absolute path that PostgreSQL's tools pass through /bin/sh (dataDir, binDir). */
export function shellSafePath(example: string): z.ZodString {
  const sentence = `must be an absolute path of letters, digits and / . _ - + , : = @ only, e.g. ${example}: ${shellSafePathRule}`;
  return patternString(shellSafePathPattern, sentence, 'absolute path (no shell metacharacters)');
}

export function nonEmptyText(example: string): z.ZodString {
  const sentence = `must be a non-empty string, e.g. ${example}`;
  return labelled(z.string({ error: sentence }).min(1, { error: sentence }), 'string');
}

/** EC2 resource ids: the prefix catches pasting the wrong kind of id (an instance id for an ENI). */
export function ec2Id(prefix: 'eni' | 'i' | 'rtb', example: string): z.ZodString {
  return patternString(new RegExp(`^${prefix}-[0-9a-f]+$`), `must be an EC2 id of the form ${prefix}-<hex>, e.g. ${example}`, `${prefix}-… id`);
}

export function awsRegion(): z.ZodString {
  return patternString(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region name, e.g. eu-west-1', 'AWS region');
}

export function emailAddress(example: string): z.ZodEmail {
  const sentence = `must be an email address, e.g. ${example}`;
  return labelled(z.email({ error: sentence }), 'email address');
}

export function httpUrl(): z.ZodURL {
  const sentence = 'must be an http:// or https:// URL, e.g. https://hooks.example.com/pgvip';
  return labelled(z.url({ protocol: /^https?$/, error: sentence }), 'http(s) URL');
}

function enumSentence(values: readonly string[], input: unknown): string {
  const list = `must be one of ${values.join(', ')}`;
  const guess = typeof input === 'string' ? closestMatch(input, values) : undefined;
  return guess === undefined ? list : `${list}; did you mean "${guess}"?`;
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const schema = z.enum(values, { error: (issue) => enumSentence(values, issue.input) });
  return labelled(schema, values.map((v) => `"${v}"`).join(' | '));
}

/**
 * The error option for a discriminated union: names the valid discriminator values (and a close
 * one), since zod's own "no matching discriminator" does not say what would match.
 */
export function discriminatorError(discriminator: string, values: readonly string[]) {
  return {
    error: (issue: z.core.$ZodRawIssue): string | undefined => {
      if (issue.code !== 'invalid_union') return undefined;
      const input: unknown = issue.input;
      const chosen = input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[discriminator] : undefined;
      return enumSentence(values, chosen);
    },
  };
}

export function listOf<T extends z.ZodType>(element: T, what: string, min = 0): z.ZodArray<T> {
  const sentence = min === 0 ? `must be a list of ${what}` : min === 1 ? `must be a non-empty list of ${what}` : `must be a list of at least ${min} ${what}`;
  const schema = z.array(element, { error: sentence }).min(min, { error: sentence });
  return schema;
}

/**
 * A mapping that rejects keys it does not know: in a config file an unknown key is almost always a
 * typo of a real one, and silently ignoring it would leave the real field at its default.
 */
export function closedObject<Shape extends z.core.$ZodLooseShape>(shape: Shape): z.ZodObject<Shape, z.core.$strict> {
  const validKeys = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return unknownKeysSentence(issue.keys, validKeys);
      if (issue.code === 'invalid_type') return `must be a mapping with the keys ${validKeys.join(', ')}`;
      return undefined;
    },
  });
}

function unknownKeysSentence(keys: readonly string[], validKeys: readonly string[]): string {
  const guesses = keys.flatMap((key) => {
    const guess = closestMatch(key, validKeys);
    return guess === undefined ? [] : [keys.length === 1 ? `"${guess}"` : `"${guess}" for "${key}"`];
  });
  const head = keys.length === 1 ? 'unknown key' : `unknown keys ${keys.map((k) => `"${k}"`).join(', ')}`;
  const suggestion = guesses.length > 0 ? `did you mean ${guesses.join(', ')}? ` : '';
  return `${head}; ${suggestion}valid keys here: ${validKeys.join(', ')}`;
}
