// Types for cli-args.mjs, so TypeScript entry points (sim, demo, benches, docs writers) share its rule.
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function usageError(usage: string, message: string): never;

export function parseCommandLine<const O extends Options = Record<never, never>>(spec: {
  readonly usage: string;
  readonly options?: O;
  readonly allowPositionals?: boolean;
  readonly argv?: readonly string[];
}): {
  values: { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string };
  positionals: string[];
};
