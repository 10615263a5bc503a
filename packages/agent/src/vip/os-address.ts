// The VIP on the OS interface, through iproute2: `ip addr add VIP/prefix dev IFACE`, `ip addr del`,
// and `ip -j addr show` to read what is there. Both changes are idempotent: "already there" on add
// and "not there" on delete count as done, so a fence can drop the VIP without knowing whether it
// was ever added. Needs CAP_NET_ADMIN (the agent's systemd unit grants it).
//
// The command runner is injectable, so unit tests run without root; with `netns` every command runs
// in that network namespace (`ip -n NS`, the lab's way of giving each "host" its own interfaces).
//
// Reading is the frequent part (every VIP check, every few seconds on the primary) and changing is
// rare, so in the agent's own namespace the addresses are read in-process (getifaddrs, through
// os.networkInterfaces) instead of spawning `ip -j addr show`: a fork of the agent costs far more CPU
// than the check itself.
import { execFile } from 'node:child_process';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { PgvipError } from '@pgvip/shared';

export interface CommandOutcome {
  /** null when the command did not exit normally (killed, or could not start). */
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file args`; resolves with the outcome and never rejects for a failing command. */
export type RunCommand = (
  file: string,
  args: readonly string[],
  options: { timeoutMs: number },
) => Promise<CommandOutcome>;

/** execFile with a timeout (SIGKILL) and the C locale, so the kernel's messages read as matched below. */
export const runCommand: RunCommand = (file, args, { timeoutMs }) =>
  new Promise((resolve) => {
    execFile(
      file,
      [...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' }, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        const failure = err as (Error & { code?: number | string; killed?: boolean }) | null;
        resolve({
          exitCode: failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null,
          timedOut: failure?.killed === true,
          stdout,
          // A command that cannot start (ENOENT) leaves stderr empty: say why instead.
          stderr: failure !== null && typeof failure.code === 'string' ? `${stderr}${failure.message}` : stderr,
        });
      },
    );
  });

// iproute2 ≥ 5.x with extended netlink acks words these "Error: ipv4: Address already assigned." and
// "Error: ipv4: Address not found."; older ones print strerror: "RTNETLINK answers: File exists" and
// "RTNETLINK answers: Cannot assign requested address".
const alreadyPresent = /File exists|Address already assigned/i;
const alreadyAbsent = /Cannot assign requested address|Address not found/i;

export interface OsAddressOptions {
  /** The VIP, without prefix. */
  readonly address: string;
  /** The interface name, e.g. eth0. */
  readonly device: string;
  /** Run every command inside this network namespace (the lab). */
  readonly netns?: string;
  readonly run?: RunCommand;
  /** Bound on each `ip` invocation (default 5000 ms). */
  readonly timeoutMs?: number;
  /**
   * Reads this namespace's addresses (default os.networkInterfaces). Only used when neither `netns`
   * nor `run` is given: both mean the addresses live somewhere `ip` must look.
   */
  readonly readInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export class OsAddress {
  readonly address: string;
  readonly device: string;
  readonly #netns: string | undefined;
  readonly #run: RunCommand;
  readonly #timeoutMs: number;
  readonly #readInterfaces: (() => NodeJS.Dict<NetworkInterfaceInfo[]>) | null;

  constructor(options: OsAddressOptions) {
    this.address = options.address;
    this.device = options.device;
    this.#netns = options.netns;
    this.#run = options.run ?? runCommand;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#readInterfaces = options.netns === undefined && options.run === undefined
      ? (options.readInterfaces ?? networkInterfaces)
      : null;
  }

  /** `ip addr add VIP/prefix dev DEVICE`; done when the address is already there with that prefix. */
  async add(prefixLength: number): Promise<void> {
    const cidr = `${this.address}/${prefixLength}`;
    const out = await this.#ip(['addr', 'add', cidr, 'dev', this.device]);
    if (out.exitCode === 0 || (!out.timedOut && alreadyPresent.test(out.stderr))) return;
    throw this.#failure(`ip addr add ${cidr} dev ${this.device}`, out);
  }

  /**
   * Removes the VIP from the device whatever prefix it carries (a prefix changed in the config must
   * not leave the old entry behind); done when it is not there.
   */
  async drop(): Promise<void> {
    for (const prefixLength of await this.prefixesPresent()) {
      const cidr = `${this.address}/${prefixLength}`;
      const out = await this.#ip(['addr', 'del', cidr, 'dev', this.device]);
      if (out.exitCode === 0 || (!out.timedOut && alreadyAbsent.test(out.stderr))) continue;
      throw this.#failure(`ip addr del ${cidr} dev ${this.device}`, out);
    }
  }

  /** Whether the VIP is configured on the device (with any prefix). */
  async isPresent(): Promise<boolean> {
    return (await this.prefixesPresent()).length > 0;
  }

  /** The prefix lengths with which the VIP is configured on the device (usually zero or one). */
  async prefixesPresent(): Promise<number[]> {
    // A device with no address at all is not listed; `ip` below then says whether it exists.
    const device = this.#readInterfaces?.()[this.device];
    if (device !== undefined) return device.filter((a) => a.family === 'IPv4' && a.address === this.address).map((a) => prefixLengthOf(a));
    const out = await this.#ip(['-j', '-4', 'addr', 'show', 'dev', this.device]);
    if (out.exitCode !== 0) throw this.#failure(`ip addr show dev ${this.device}`, out);
    let links: unknown;
    try {
      links = JSON.parse(out.stdout);
    } catch {
      throw new PgvipError('PGVIP_VIP_OS_ADDRESS', `ip -j addr show dev ${this.device} printed no JSON: ${out.stdout.slice(0, 200)}`);
    }
    const entries = Array.isArray(links)
      ? links.flatMap((link: { addr_info?: unknown }) => (Array.isArray(link.addr_info) ? link.addr_info : []))
      : [];
    return entries
      .filter((a: { family?: unknown; local?: unknown }) => a.family === 'inet' && a.local === this.address)
      .map((a: { prefixlen?: unknown }) => Number(a.prefixlen));
  }

  #ip(args: readonly string[]): Promise<CommandOutcome> {
    return this.#run('ip', this.#netns === undefined ? args : ['-n', this.#netns, ...args], { timeoutMs: this.#timeoutMs });
  }

  #failure(command: string, out: CommandOutcome): PgvipError {
    const where = this.#netns === undefined ? '' : ` (netns ${this.#netns})`;
    const why = out.timedOut ? `timed out after ${this.#timeoutMs} ms` : `exit ${out.exitCode ?? 'abnormal'}: ${out.stderr.trim() || out.stdout.trim() || 'no output'}`;
    return new PgvipError('PGVIP_VIP_OS_ADDRESS', `${command}${where} failed, ${why}`);
  }
}

/** The prefix length of an address from os.networkInterfaces (its cidr, else counted from the netmask). */
function prefixLengthOf(a: NetworkInterfaceInfo): number {
  const fromCidr = a.cidr === null ? NaN : Number(a.cidr.slice(a.cidr.indexOf('/') + 1));
  if (Number.isInteger(fromCidr)) return fromCidr;
  return a.netmask.split('.').reduce((bits, octet) => bits + (Number(octet) >>> 0).toString(2).replace(/0/g, '').length, 0);
}
