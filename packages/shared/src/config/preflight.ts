// What a daemon checks on its host before it starts, beyond the config file itself: the key, token,
// password and webhook secret files and the TLS files the config names, the state directory, and
// the state files in it. The daemons run these checks first and refuse to start on the first
// problem; `pgvip check-config` runs the very same checks and prints every problem, so a config it
// calls valid is one the daemon starts with.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { loadKey } from '../auth/key.js';
import { PgvipError, isPgvipError } from '../errors.js';
import { findSetpriv, setprivCandidates } from '../host/setpriv.js';
import { createDurableFile } from '../state/durable-file.js';
import { loadCaFile, loadTlsMaterial, type TlsFilesConfig } from '../transport/tls.js';
import { agentDurableSchema, bootCountSchema, witnessStateFileSchema } from '../state/schemas.js';
import { agentStateFileNames, checkStateDir, checkStateDirFor, witnessStateFileName, type ServiceUser } from '../state/state-dir.js';
import type { QuorumConfig } from './quorum-schema.js';
import type { AgentConfig, WitnessConfig } from './schema.js';
import { readSecretFile } from './secret-file.js';

export interface PreflightOptions {
  /**
   * Judge files for this user instead of this process (check-config run as root for a daemon that
   * runs as postgres or pgvip): secret files must be owned by it, since mode 0600 lets only the
   * owner read them, and the state directory must be writable by it. Without it the checks act as
   * this process, exactly as the daemon does (and create the state directory when missing).
   */
  readonly asUser?: ServiceUser;
  /** Where setpriv may be (tests; default the fixed paths of host/setpriv.ts). */
  readonly setprivCandidates?: readonly string[];
}

type Check = () => unknown;

/** Runs every check; returns the coded problems (anything else is a bug and is thrown). */
async function collect(checks: readonly Check[]): Promise<PgvipError[]> {
  const problems: PgvipError[] = [];
  for (const check of checks) {
    try {
      await check();
    } catch (e) {
      if (!isPgvipError(e)) throw e;
      problems.push(e);
    }
  }
  return problems;
}

function checkOwner(file: string, field: string, user: ServiceUser | undefined): void {
  if (user === undefined || user.uid === 0) return;
  const { uid } = statSync(file);
  if (uid !== user.uid) {
    throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${file} is owned by uid ${uid}, but the daemon runs as ${user.name} and mode 0600 lets only the owner read it; run: chown ${user.name} ${file}`);
  }
}

function secretCheck(
  file: string,
  field: string,
  user: ServiceUser | undefined,
  read: (file: string, field: string) => Promise<unknown>,
): Check {
  return async () => {
    await read(file, field);
    checkOwner(file, field, user);
  };
}

/** A tls block's files, read and checked as the daemon reads them at start (PGVIP_TLS_FILE). */
function tlsCheck(files: TlsFilesConfig, field: string, user: ServiceUser | undefined): Check {
  return async () => {
    await loadTlsMaterial(files, field);
    checkOwner(files.keyFile, `${field}.keyFile`, user);
  };
}

function stateDirCheck(dir: string, user: ServiceUser | undefined): Check {
  return () => (user === undefined ? checkStateDir(dir) : checkStateDirFor(dir, user));
}

/**
 * The cluster's quorum block: on etcd, the files the etcd block names, which the daemons read at
 * start (with the witness backend they ignore the block, and its files are not checked).
 */
function quorumChecks(quorum: QuorumConfig, field: string, user: ServiceUser | undefined): Check[] {
  if (quorum.backend !== 'etcd' || quorum.etcd === undefined) return [];
  const etcd = quorum.etcd;
  const checks: Check[] = [];
  const tls = etcd.tls;
  if (tls?.certFile !== undefined && tls.keyFile !== undefined) {
    const ca = tls.caFile === undefined ? {} : { caFile: tls.caFile };
    const files = { certFile: tls.certFile, keyFile: tls.keyFile, ...ca };
    checks.push(tlsCheck(files, `${field}.etcd.tls`, user));
  } else if (tls?.caFile !== undefined) {
    const caFile = tls.caFile;
    checks.push(() => loadCaFile(caFile, `${field}.etcd.tls.caFile`));
  }
  if (etcd.passwordFile !== undefined) checks.push(secretCheck(etcd.passwordFile, `${field}.etcd.passwordFile`, user, readSecretFile));
  return checks;
}

/** Checks that depend on each other: the first problem ends them (an unwritable directory is one problem). */
function inOrder(...checks: Check[]): Check {
  return async () => {
    for (const check of checks) await check();
  };
}

/** Reads a state file without changing it (PGVIP_STATE_CORRUPT when it does not parse). */
function stateFileCheck<T>(file: string, schema: Parameters<typeof createDurableFile<T>>[1], initial: T): Check {
  return () => createDurableFile(file, schema, initial).load();
}

/**
 * A hook program must be there when the agent starts, not discovered missing in the middle of a
 * failover (a missing before-promote program would veto every promotion). Also refused: a program
 * anyone may rewrite, since the agent would run what they put there.
 */
function hookCheck(file: string, field: string, user: ServiceUser | undefined): Check {
  return () => {
    let st;
    try {
      st = statSync(file);
    } catch (e) {
      throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); install the hook program there or remove the hook`);
    }
    if (!st.isFile()) throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${file} is not a regular file; point it at the hook program itself`);
    if ((st.mode & 0o002) !== 0) throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${file} is writable by every user, who could make the agent run anything; run: chmod o-w ${file}`);
    const executable = user === undefined
      ? canExecute(file)
      : user.uid === 0
        ? (st.mode & 0o111) !== 0
        : (st.mode & (st.uid === user.uid ? 0o100 : user.gids.includes(st.gid) ? 0o010 : 0o001)) !== 0;
    if (!executable) throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${file} is not executable${user === undefined ? '' : ` by ${user.name}`}; run: chmod +x ${file}`);
  };
}

/**
 * The agent starts hooks and the re-seed command through setpriv, so that they do not inherit its
 * ambient CAP_NET_ADMIN, and refuses to start them without it: a host without setpriv would find
 * out in the middle of a failover (a before-promote hook that cannot start vetoes every promotion).
 */
function setprivCheck(fields: readonly string[], candidates: readonly string[]): Check {
  return () => {
    if (findSetpriv(candidates) !== null) return;
    throw new PgvipError(
      'PGVIP_CONFIG_INVALID',
      `${fields.join(', ')}: setpriv was not found (looked in ${candidates.join(', ')}); the agent runs these ` +
        'programs through it so that they do not hold its CAP_NET_ADMIN; install util-linux, or remove them',
    );
  };
}

function canExecute(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The problems that would stop `pgvip-agent` with this config on this host (empty: none). */
export function agentPreflight(config: AgentConfig, options: PreflightOptions = {}): Promise<PgvipError[]> {
  const { asUser } = options;
  const cluster = config.cluster;
  const me = cluster.nodes.find((n) => n.id === config.self);
  const checks: Check[] = [...quorumChecks(cluster.quorum, 'cluster.quorum', asUser)];
  if (!cluster.auth.disabled && cluster.auth.keyFile !== undefined) checks.push(secretCheck(cluster.auth.keyFile, 'cluster.auth.keyFile', asUser, loadKey));
  if (me?.postgres.passwordFile !== undefined) checks.push(secretCheck(me.postgres.passwordFile, `nodes[${me.id}].postgres.passwordFile`, asUser, readSecretFile));
  if (config.tls !== undefined) checks.push(tlsCheck(config.tls, 'tls', asUser));
  for (const [name, hook] of Object.entries(config.hooks)) if (hook !== undefined) checks.push(hookCheck(hook.path, `hooks.${name}.path`, asUser));
  const reseedCommand = config.rejoin.reseed.command;
  const programs = Object.entries(config.hooks).flatMap(([name, hook]) => (hook === undefined ? [] : [`hooks.${name}`]));
  if (reseedCommand !== undefined && config.rejoin.reseed.methods.includes('command')) {
    checks.push(hookCheck(reseedCommand.path, 'rejoin.reseed.command.path', asUser));
    programs.push('rejoin.reseed.command');
  }
  if (programs.length > 0) checks.push(setprivCheck(programs, options.setprivCandidates ?? setprivCandidates));
  const files = agentStateFileNames(cluster.name);
  checks.push(
    inOrder(
      stateDirCheck(config.stateDir, asUser),
      stateFileCheck(path.join(config.stateDir, files.state), agentDurableSchema, { term: 0, primaryOfTerm: null }),
      stateFileCheck(path.join(config.stateDir, files.boots), bootCountSchema, 0),
    ),
  );
  return collect(checks);
}

/** The problems that would stop `pgvip-witness` with this config on this host (empty: none). */
export function witnessPreflight(config: WitnessConfig, options: PreflightOptions = {}): Promise<PgvipError[]> {
  const { asUser } = options;
  const checks: Check[] = [];
  for (const [i, c] of config.clusters.entries()) {
    checks.push(...quorumChecks(c.quorum, `clusters[${i}].quorum`, asUser));
    if (!c.auth.disabled && c.auth.keyFile !== undefined) checks.push(secretCheck(c.auth.keyFile, `clusters[${i}].auth.keyFile`, asUser, loadKey));
    for (const [j, hook] of c.notifications.webhooks.entries()) {
      if (hook.secretFile !== undefined) checks.push(secretCheck(hook.secretFile, `clusters[${i}].notifications.webhooks[${j}].secretFile`, asUser, readSecretFile));
    }
  }
  if (config.operatorApi.tokenFile !== undefined) checks.push(secretCheck(config.operatorApi.tokenFile, 'operatorApi.tokenFile', asUser, readSecretFile));
  if (config.tls !== undefined) checks.push(tlsCheck(config.tls, 'tls', asUser));
  if (config.operatorApi.tls !== undefined) checks.push(tlsCheck(config.operatorApi.tls, 'operatorApi.tls', asUser));
  checks.push(
    inOrder(
      stateDirCheck(config.stateDir, asUser),
      stateDirCheck(path.join(config.stateDir, 'history'), asUser),
      stateFileCheck(path.join(config.stateDir, witnessStateFileName), witnessStateFileSchema, {}),
    ),
  );
  return collect(checks);
}
