// Reading and validating config files. Every failure is a PgvipError whose detail lists every
// problem found, one per line, in the form `<file>: <path.to.field>: <what is wrong> (got <value>);
// <what would be valid>`, so an operator fixes the whole file in one pass.
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { errorCatalogue, PgvipError, type ErrorCode } from '../errors.js';
import { fallbackIssueSentence, issueToProblem } from './issues.js';
import { AgentConfigSchema, WitnessConfigSchema, type AgentConfig, type WitnessConfig } from './schema.js';

export type ConfigKind = 'agent' | 'witness';

export interface ConfigOf {
  agent: AgentConfig;
  witness: WitnessConfig;
}

const schemaOf: { [K in ConfigKind]: z.ZodType<ConfigOf[K]> } = {
  agent: AgentConfigSchema,
  witness: WitnessConfigSchema,
};

function readFailure(sourceName: string, err: unknown): PgvipError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === 'ENOENT'
      ? 'no such file (ENOENT); check the path, or start from the examples in deploy/examples/'
      : code === 'EACCES'
        ? "permission denied (EACCES); make the file readable by the daemon's user, e.g. chmod 640 and chgrp to its group"
        : code === 'EISDIR'
          ? 'is a directory (EISDIR); name the YAML file itself'
          : `${code ?? 'error'}: ${err instanceof Error ? err.message : String(err)}`;
  return new PgvipError('PGVIP_CONFIG_UNREADABLE', `${sourceName}: ${reason}`, { cause: err });
}

/** YAML text → plain data; every syntax error reported with its line:column. */
function parseYaml(text: string, sourceName: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((error) => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return `${sourceName}:${line}:${col}: ${error.message.split('\n')[0]}`;
    });
    throw new PgvipError('PGVIP_CONFIG_SYNTAX', lines.join('\n'));
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // e.g. an alias chain that would expand into a huge document
    throw new PgvipError('PGVIP_CONFIG_SYNTAX', `${sourceName}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function validate<K extends ConfigKind>(data: unknown, kind: K, sourceName: string): ConfigOf[K] {
  const result = schemaOf[kind].safeParse(data, { reportInput: true, error: fallbackIssueSentence });
  if (result.success) return result.data;
  const problems = result.error.issues.map(issueToProblem);
  // Only broken inequalities between otherwise well-formed timings get the dedicated code.
  const code: ErrorCode = problems.every((p) => p.timing) ? 'PGVIP_CONFIG_TIMING' : 'PGVIP_CONFIG_INVALID';
  throw new PgvipError(code, problems.map((p) => `${sourceName}: ${p.path}: ${p.message}`).join('\n'));
}

/**
 * Parses and validates config text without touching the file system (`sourceName` only labels the
 * problems). Throws PgvipError PGVIP_CONFIG_SYNTAX, PGVIP_CONFIG_INVALID or PGVIP_CONFIG_TIMING.
 */
export function parseConfigText<K extends ConfigKind>(text: string, kind: K, sourceName: string): ConfigOf[K] {
  return validate(parseYaml(text, sourceName), kind, sourceName);
}

async function loadConfig<K extends ConfigKind>(path: string, kind: K): Promise<ConfigOf[K]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw readFailure(path, err);
  }
  return parseConfigText(text, kind, path);
}

/** Reads the agent file of a database node (files it names, such as auth.keyFile, are not read). */
export function loadAgentConfig(path: string): Promise<AgentConfig> {
  return loadConfig(path, 'agent');
}

/** Reads the witness file (files it names, such as auth.keyFile, are not read). */
export function loadWitnessConfig(path: string): Promise<WitnessConfig> {
  return loadConfig(path, 'witness');
}

/**
 * What a CLI prints when loading failed: the code, what it means, and every problem indented
 * beneath it. Never a stack trace: an unexpected error shows only its message.
 */
export function formatConfigError(err: unknown): string {
  if (err instanceof PgvipError) {
    const lines = err.detail.split('\n');
    const count = lines.length > 1 ? ` (${lines.length} problems)` : '';
    return `${err.code}: ${errorCatalogue[err.code].message}${count}\n${lines.map((line) => `  ${line}`).join('\n')}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `unexpected error while loading the configuration: ${message}`;
}
