// Shared fixtures for the config tests: a minimal valid agent/witness document (only required
// fields) and assertions that a config error is human: path, bad value, fix, and no zod internals.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { isPgvipError, type ErrorCode } from '../src/errors.js';

// Tests edit documents into arbitrary (often deliberately wrong) shapes, so the editor gets `any`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EditableDoc = any;

export function minimalCluster(name = 'main'): Record<string, unknown> {
  return {
    name,
    nodes: [
      { id: 'db-a', agent: { host: '10.0.1.11' }, postgres: { host: '10.0.1.11', dataDir: '/var/lib/postgresql/15/main' } },
      { id: 'db-b', agent: { host: '10.0.1.12' }, postgres: { host: '10.0.1.12', dataDir: '/var/lib/postgresql/15/main' } },
    ],
    witness: { host: '10.0.2.20' },
    vip: { mode: 'secondary-ip', address: '10.0.1.100' },
    auth: { keyFile: '/etc/pgvip/cluster.key' },
  };
}

/** A minimal agent document, changed by `edit` (which may mutate it freely). */
export function agentYaml(edit: (doc: EditableDoc) => void = () => {}): string {
  const doc = { self: 'db-a', cluster: minimalCluster() };
  edit(doc);
  return stringify(doc);
}

export function witnessYaml(edit: (doc: EditableDoc) => void = () => {}): string {
  // The operator API's token file is the one field a witness file cannot leave out.
  const doc = { operatorApi: { tokenFile: '/etc/pgvip/operator.token' } as Record<string, unknown>, clusters: [minimalCluster('main')] };
  edit(doc);
  return stringify(doc);
}

/** Runs `load`, expects a PgvipError with `code`, checks it reads like a person wrote it, returns its lines. */
export async function problemsOf(load: () => unknown, code: ErrorCode): Promise<string[]> {
  let thrown: unknown;
  try {
    await load();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `expected ${code}, but the config was accepted`);
  assert.ok(isPgvipError(thrown), `expected a PgvipError, got ${String(thrown)}`);
  assert.equal(thrown.code, code, `wrong code; detail:\n${thrown.detail}`);
  assertHuman(thrown.detail);
  return thrown.detail.split('\n');
}

/** No zod class names, no stack frames, no raw JSON issue dumps. */
export function assertHuman(text: string): void {
  for (const forbidden of ['ZodError', 'at Object.', '    at ', '"code":', 'Invalid input', 'expected string, received']) {
    assert.ok(!text.includes(forbidden), `message contains ${JSON.stringify(forbidden)}:\n${text}`);
  }
}

/** The one line about `path` (exactly `<source>: <path>: …`), asserting it mentions every fragment. */
export function lineAbout(lines: readonly string[], source: string, path: string, ...fragments: string[]): string {
  const line = lines.find((l) => l.startsWith(`${source}: ${path}: `));
  assert.ok(line !== undefined, `no problem reported at ${path}; got:\n${lines.join('\n')}`);
  for (const fragment of fragments) assert.ok(line.includes(fragment), `expected ${JSON.stringify(fragment)} in:\n${line}`);
  return line;
}
