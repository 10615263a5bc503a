// What the real-daemon integration tests share: free loopback ports, a stand-in PostgreSQL port for
// the witness's direct check, and polling until a condition holds.
import { createServer, type Server } from 'node:net';

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TCP listener standing in for a PostgreSQL port, for the witness's direct check. */
export async function pgPort(port: number): Promise<Server> {
  const s = createServer((c) => c.destroy()).listen(port, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  return s;
}

/** Polls `fn` every 100 ms until it gives a value other than undefined or false; fails naming `what`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The loopback ports of a two-node cluster: agents, witness, operator API, and PostgreSQL stand-ins. */
export interface ClusterPorts {
  readonly pa: number;
  readonly pb: number;
  readonly pw: number;
  readonly po: number;
  readonly qa: number;
  readonly qb: number;
}

export async function clusterPorts(): Promise<ClusterPorts> {
  const [pa, pb, pw, po, qa, qb] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  return { pa: pa!, pb: pb!, pw: pw!, po: po!, qa: qa!, qb: qb! };
}

/**
 * The `cluster:` block (YAML, indented to follow `cluster:`) of the two-node loopback cluster the
 * daemon tests run: `auth` is the block's auth value, e.g. `{ keyFile: /path }` or `{ disabled: true }`.
 */
export function clusterYaml(p: ClusterPorts, auth: string): string {
  return `
  name: orders
  nodes:
    - id: db-a
      agent: { host: 127.0.0.1, port: ${p.pa} }
      postgres: { host: 127.0.0.1, port: ${p.qa}, dataDir: /srv/a }
    - id: db-b
      agent: { host: 127.0.0.1, port: ${p.pb} }
      postgres: { host: 127.0.0.1, port: ${p.qb}, dataDir: /srv/b }
  witness: { host: 127.0.0.1, port: ${p.pw} }
  vip: { mode: secondary-ip, address: 198.18.1.100, discovery: imds }
  auth: ${auth}`;
}
