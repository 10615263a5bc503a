// What every command's action gets: where output goes, the global options, and the operator API
// client and cluster it acts on, each made on first use so that local commands never dial.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { terminalSafeJson } from '@pgvip/shared/text';
import type { Command } from 'commander';
import { OperatorClient, parseWitnessUrl, type ClusterView } from './api.js';
import { CliError, exitCodes, usageError } from './errors.js';
import { styleFor, type Style } from './format.js';

export const defaultWitnessUrl = 'http://127.0.0.1:8010';

/**
 * The token goes with every request, so it is never sent over plain HTTP beyond loopback. The witness
 * serves no such API (operatorApi.tls is required off loopback), but whatever answers at that
 * address, and anyone on the path, would read the token.
 */
function refuseTokenInClear(baseUrl: string): void {
  const url = new URL(baseUrl);
  // Literal loopback addresses, or localhost: a name such as 127.example.com resolves anywhere.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
  if (url.protocol !== 'http:' || loopback) return;
  throw usageError(
    `--witness ${baseUrl}: the operator token would cross the network in clear; use https:// (the witness's ` +
      'operatorApi.tls, with --ca-file), or reach its loopback API through an SSH tunnel (ssh -L 8010:127.0.0.1:8010)',
  );
}

/** Where deploy/install.sh and the .deb's examples put the operator token on the witness host. */
export const defaultTokenFile = '/etc/pgvip/operator.token';

/**
 * The token file the CLI reads, and how to name it in messages: --token-file or PGVIP_TOKEN_FILE
 * when given; else the installed default when it exists, so `sudo pgvip status` on the witness host
 * needs no flag; else none (the witness then answers 401 and the CLI says how to pass one).
 */
export function pickTokenFile(
  given: string | undefined,
  fromEnv: boolean,
  defaultExists: boolean,
): { file: string; source: string; option: string } | undefined {
  if (given !== undefined) {
    return fromEnv
      ? { file: given, source: `PGVIP_TOKEN_FILE (${given})`, option: 'PGVIP_TOKEN_FILE' }
      : { file: given, source: given, option: '--token-file' };
  }
  if (defaultExists) {
    return {
      file: defaultTokenFile,
      source: `${defaultTokenFile} (the default; --token-file to use another)`,
      option: 'the default token file (pass --token-file to use another)',
    };
  }
  return undefined;
}

/**
 * The shared package (config loader, secret files) is loaded only by the commands that read a
 * file: it brings zod, yaml and the peer transport, and `pgvip status` should not wait for them.
 */
export const loadShared = () => import('@pgvip/shared');

export interface GlobalOptions {
  witness: string;
  tokenFile?: string;
  /** PEM file of the CA an https:// witness's certificate must chain to. */
  caFile?: string;
  cluster?: string;
  json?: boolean;
}

/** Where the output goes; tests and main.ts pass process streams. */
export interface CliIo {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

/** Runs one command's action with a Session made from the command's global options. */
export type RunAction = (action: (session: Session) => Promise<void>, command: Command) => Promise<void>;

export class Session {
  readonly json: boolean;
  readonly style: Style;
  readonly #io: CliIo;
  readonly #global: GlobalOptions;
  readonly #tokenFromEnv: boolean;
  #client: OperatorClient | undefined;

  constructor(io: CliIo, global: GlobalOptions, tokenFromEnv: boolean) {
    this.#io = io;
    this.#global = global;
    this.#tokenFromEnv = tokenFromEnv;
    this.json = global.json === true;
    this.style = styleFor(io.stdout);
  }

  print(text: string): void {
    this.#io.stdout.write(`${text}\n`);
  }

  printJson(value: unknown): void {
    this.#io.stdout.write(`${terminalSafeJson(value)}\n`);
  }

  /** The operator API client, made on first use: check-config and doctor never need one. */
  async client(): Promise<OperatorClient> {
    if (this.#client) return this.#client;
    const baseUrl = parseWitnessUrl(this.#global.witness);
    let token: string | undefined;
    const picked = pickTokenFile(this.#global.tokenFile, this.#tokenFromEnv, existsSync(defaultTokenFile));
    if (picked !== undefined) {
      const { isPgvipError, readSecretFile } = await loadShared();
      try {
        token = await readSecretFile(picked.file, picked.option);
      } catch (err) {
        throw usageError(isPgvipError(err) ? err.detail : String(err));
      }
    }
    if (token !== undefined) refuseTokenInClear(baseUrl);
    let ca: string | undefined;
    const caFile = this.#global.caFile;
    if (caFile !== undefined) {
      if (!baseUrl.startsWith('https:')) throw usageError(`--ca-file is for an https:// --witness (got ${baseUrl}); the operator API serves HTTPS when operatorApi.tls is set`);
      try {
        ca = await readFile(caFile, 'utf8');
      } catch (err) {
        throw usageError(`--ca-file ${caFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw usageError(`--ca-file ${caFile}: holds no PEM certificate; give the cluster's ca.crt`);
    }
    this.#client = new OperatorClient({ baseUrl, token, tokenSource: picked?.source, ...(ca === undefined ? {} : { ca, caSource: `--ca-file ${caFile}` }) });
    return this.#client;
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }

  /** The cluster a command acts on: --cluster, or the witness's only one. */
  async cluster(): Promise<ClusterView> {
    const client = await this.client();
    const name = this.#global.cluster;
    if (name !== undefined) {
      const view = await client.cluster(name);
      if (view !== undefined) return view;
      const names = (await client.clusters()).map((c) => c.cluster);
      throw usageError(
        `no cluster "${name}" on the witness at ${client.baseUrl}; it serves: ${names.join(', ') || 'none'}`,
      );
    }
    const all = await client.clusters();
    if (all.length === 1) return all[0]!;
    if (all.length === 0) throw new CliError(exitCodes.failed, `the witness at ${client.baseUrl} serves no cluster`);
    const names = all.map((c) => c.cluster).join(', ');
    throw usageError(`the witness serves ${all.length} clusters (${names}): choose one with --cluster NAME`);
  }

  async allClusters(): Promise<ClusterView[]> {
    return this.#global.cluster === undefined ? (await this.client()).clusters() : [await this.cluster()];
  }
}
