// Talking to the lab's helper processes inside namespaces (the VPC fabric, the writer probe).
//
// A Node process cannot enter a network namespace, so every process that must listen or connect
// inside one is started with `ip netns exec NS node ...`. `ip` execs the command, so Node's IPC
// channel (an inherited socketpair, fd-based, not network-based) reaches through unchanged: the
// controller and its helpers exchange JSON messages with process.send().
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onHost } from './exec.js';
import type { HostName } from './topology.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * node with tsx and the pgvip-source condition: runs a TypeScript entry point from source, from the
 * checkout or from a copy of it (`root`; `--import tsx` resolves from the cwd, so start it there),
 * with this process's node or `node` (the lab runtime's, runtime.ts).
 */
export function nodeArgv(
  entry: string,
  args: readonly string[] = [],
  root: string = repoRoot,
  node: string = process.execPath,
): string[] {
  return [node, '--conditions=pgvip-source', '--import', 'tsx', path.resolve(root, entry), ...args];
}

export interface RpcRequest {
  readonly rpc: number;
  readonly op: string;
  readonly [key: string]: unknown;
}

export type RpcReply =
  | { readonly rpc: number; readonly ok: true; readonly value: unknown }
  | { readonly rpc: number; readonly ok: false; readonly error: string };

/** A helper process with request/response RPC and pushed events over the IPC channel. */
export class Helper {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #listeners = new Set<(event: Record<string, unknown>) => void>();
  #next = 1;
  #exited = false;
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess, readonly name: string) {
    this.#child = child;
    child.on('message', (m: unknown) => {
      const msg = m as Record<string, unknown>;
      if (typeof msg.rpc === 'number') {
        const waiter = this.#pending.get(msg.rpc);
        this.#pending.delete(msg.rpc);
        const reply = msg as unknown as RpcReply;
        if (reply.ok) waiter?.resolve(reply.value);
        else waiter?.reject(new Error(`${name}: ${reply.error}`));
      } else {
        for (const listener of this.#listeners) listener(msg);
      }
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.#exited = true;
        for (const waiter of this.#pending.values()) waiter.reject(new Error(`${name} exited (code ${code})`));
        this.#pending.clear();
        resolve(code);
      });
    });
  }

  /**
   * Starts `entry` on `host` (or in the router namespace) with its output appended to `logFile`; resolves
   * once it sent {type:'ready'}.
   */
  static async start(
    name: string,
    where: { host: HostName } | { ns: string },
    entry: string,
    args: readonly string[],
    logFile: string,
    readyTimeoutMs = 60_000,
  ): Promise<Helper> {
    const argv = 'host' in where ? onHost(where.host, nodeArgv(entry, args), { cgroup: false }) : ['ip', 'netns', 'exec', where.ns, ...nodeArgv(entry, args)];
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd, 'ipc'], detached: true, cwd: repoRoot, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    } finally {
      closeSync(fd);
    }
    const helper = new Helper(child, name);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${readyTimeoutMs} ms (log: ${logFile})`)), readyTimeoutMs);
      const off = helper.onEvent((e) => {
        if (e.type === 'ready') {
          clearTimeout(timer);
          off();
          resolve();
        } else if (e.type === 'fatal') {
          clearTimeout(timer);
          off();
          reject(new Error(`${name} failed to start: ${String(e.error)}`));
        }
      });
      void helper.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited during start (code ${code}); see ${logFile}`));
      });
    });
    return helper;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  onEvent(listener: (event: Record<string, unknown>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  call<T>(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} is not running`));
    const rpc = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rpc);
        reject(new Error(`${this.name}: ${op} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(rpc, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#child.send({ rpc, op, ...args } satisfies RpcRequest);
    });
  }

  /** Asks the helper to finish (op "close"), then kills it if it does not exit in time. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.#exited) return;
    await this.call('close', {}, timeoutMs).catch(() => undefined);
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    try {
      if (this.#child.pid !== undefined) process.kill(this.#child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** The helper side: answer RPCs with `handlers`, push events, exit when the parent goes away. */
export function serveRpc(
  handlers: Record<string, (req: RpcRequest) => Promise<unknown> | unknown>,
  onClose: () => Promise<void>,
): { emit: (event: Record<string, unknown>) => void } {
  const send = (m: unknown): void => {
    if (process.connected) process.send?.(m);
  };
  process.on('message', (m: unknown) => {
    const req = m as RpcRequest;
    if (req.op === 'close') {
      void onClose().finally(() => {
        send({ rpc: req.rpc, ok: true, value: null } satisfies RpcReply);
        process.disconnect?.();
        process.exit(0);
      });
      return;
    }
    const handler = handlers[req.op];
    if (handler === undefined) {
      send({ rpc: req.rpc, ok: false, error: `unknown op ${req.op}` } satisfies RpcReply);
      return;
    }
    Promise.resolve()
      .then(() => handler(req))
      .then(
        (value) => send({ rpc: req.rpc, ok: true, value } satisfies RpcReply),
        (err: unknown) => send({
          rpc: req.rpc,
          ok: false,
          error: err instanceof Error ? err.message : String(err),
        } satisfies RpcReply),
      );
  });
  // The controller died (or closed the channel): a helper must never outlive its lab.
  process.on('disconnect', () => {
    void onClose().finally(() => process.exit(0));
  });
  return { emit: send };
}
