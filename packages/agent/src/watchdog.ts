// systemd's watchdog for the agent (WatchdogSec= in deploy/systemd/pgvip-agent.service): a hung agent
// is killed and restarted, and meanwhile its lease runs out, so a primary whose agent hangs stops
// being trusted even though nothing fences it from inside.
//
// The keep-alive (WATCHDOG=1) is sent when a heartbeat of the decision loop has finished, never from
// a timer of its own: a loop stuck in an await (a port call that never returns) leaves the event loop
// and its timers running, and a timer would keep a hung agent alive for ever.
//
// How it is sent: systemd listens on a unix datagram socket (NOTIFY_SOCKET), and Node.js has no unix
// datagram sockets. The choices were a native addon (sd-notify, unix-dgram: a compiler at install,
// and a .node file the single-file release and the esbuild bundle cannot carry) or systemd's own
// `systemd-notify` program, spawned without a shell. The program it is: it ships with systemd
// wherever WatchdogSec= exists, it waits until systemd has read the message (BARRIER=1, so the
// message is not dropped when the short-lived sender has already exited), and a spawn every few
// seconds costs nothing next to the agent's other work. As the sender is not the main process, the
// unit sets NotifyAccess=all.
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

/** What the decision loop calls when one of its heartbeats has finished. */
export interface LoopKeepAlive {
  alive(): void;
}

export interface SystemdWatchdogOptions {
  /** The notify socket ($NOTIFY_SOCKET). */
  readonly socket: string;
  /** WatchdogSec in ms ($WATCHDOG_USEC / 1000): keep-alives go out at a quarter of it at most. */
  readonly watchdogMs: number;
  readonly logger: Logger;
  /** Monotonic ms. */
  readonly clock: () => number;
  /** The program (default systemd-notify, found through PATH). */
  readonly program?: string;
}

export class SystemdWatchdog implements LoopKeepAlive {
  readonly #o: SystemdWatchdogOptions;
  readonly #everyMs: number;
  #lastSentMs = -Infinity;
  #inFlight = false;
  #failing = false;

  constructor(options: SystemdWatchdogOptions) {
    this.#o = options;
    this.#everyMs = options.watchdogMs / 4;
  }

  /**
   * The watchdog systemd asked this process for, or null: no NOTIFY_SOCKET or WATCHDOG_USEC (not
   * under systemd, or no WatchdogSec=), or a WATCHDOG_PID naming another process (inherited).
   */
  static fromEnv(env: NodeJS.ProcessEnv, logger: Logger, clock: () => number): SystemdWatchdog | null {
    const socket = env.NOTIFY_SOCKET;
    const usec = Number(env.WATCHDOG_USEC);
    if (socket === undefined || socket === '' || !Number.isFinite(usec) || usec <= 0) return null;
    if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== process.pid) return null;
    return new SystemdWatchdog({ socket, watchdogMs: usec / 1000, logger, clock });
  }

  get watchdogMs(): number {
    return this.#o.watchdogMs;
  }

  alive(): void {
    const now = this.#o.clock();
    if (this.#inFlight || now - this.#lastSentMs < this.#everyMs) return;
    this.#inFlight = true;
    this.#lastSentMs = now;
    // The agent's environment but for NOTIFY_SOCKET is not needed; PATH finds the program.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: this.#o.socket };
    const options = { env, timeout: Math.max(1_000, this.#everyMs) };
    execFile(this.#o.program ?? 'systemd-notify', ['WATCHDOG=1'], options, (err) => {
      this.#inFlight = false;
      if (err !== null) {
        // Once per run of failures: a keep-alive that cannot be sent gets the agent restarted, which
        // its log should explain.
        if (!this.#failing) {
          this.#o.logger.error({ err }, 'systemd-notify WATCHDOG=1 failed: systemd will restart the agent at WatchdogSec');
        }
        this.#failing = true;
        this.#lastSentMs = -Infinity;
      } else if (this.#failing) {
        this.#failing = false;
        this.#o.logger.info('systemd-notify WATCHDOG=1 works again');
      }
    });
  }
}
