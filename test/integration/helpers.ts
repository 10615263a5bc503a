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
