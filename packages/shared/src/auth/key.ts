// The per-cluster shared key. Every member of a cluster (both agents and the witness) holds the same
// key in a file only the service user can read; whoever holds it can speak for any member, so the
// file is treated like an SSH private key: generated from the OS's CSPRNG, never logged, mode 0600.
//
// File format: the key as hex text on one line (what `openssl rand -hex 32` prints), so it survives
// copy-paste, config management and editors that add a trailing newline.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { readSecretFile } from '../config/secret-file.js';
import { PgvipError } from '../errors.js';

/** A cluster key: raw bytes, at least KEY_BYTES of them. */
export type ClusterKey = Buffer;

/** 256 bits, the full strength of HMAC-SHA256; shorter keys are refused. */
export const KEY_BYTES = 32;

/** A new random key (KEY_BYTES bytes from the OS's CSPRNG). */
export function generateKey(): ClusterKey {
  return randomBytes(KEY_BYTES);
}

/** The text to store in a key file. */
export function formatKeyFile(key: ClusterKey): string {
  return `${key.toString('hex')}\n`;
}

/** Parses key-file text; `source` names the file in errors. Never echoes the key material. */
export function parseKeyFile(text: string, source: string): ClusterKey {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
    throw keyFileError(source, 'it must hold the key as one line of hex digits (generate one with `openssl rand -hex 32`)');
  }
  const bytes = hex.length / 2;
  if (bytes < KEY_BYTES) {
    throw keyFileError(source, `the key is ${bytes} bytes; at least ${KEY_BYTES} are required (generate one with \`openssl rand -hex 32\`)`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * Reads a cluster key file. Missing, empty or group/other-accessible files are refused by the one
 * secret-file reader every daemon uses (PGVIP_CONFIG_UNREADABLE / PGVIP_CONFIG_INVALID, with the
 * fix); content that is not a long-enough hex key is PGVIP_AUTH_KEY_FILE. `field` is the config
 * field that named the file, for the error message.
 */
export async function loadKey(path: string, field = 'auth.keyFile'): Promise<ClusterKey> {
  return parseKeyFile(await readSecretFile(path, field), `${field} (${path})`);
}

/** Writes a new key file with mode 0600; never overwrites an existing one (that would split the cluster). */
export async function writeKeyFile(path: string, key: ClusterKey): Promise<void> {
  try {
    await writeFile(path, formatKeyFile(key), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    throw keyFileError(path, `cannot create it (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
}

function keyFileError(source: string, why: string, cause?: unknown): PgvipError {
  return new PgvipError('PGVIP_AUTH_KEY_FILE', `key file ${source}: ${why}`, cause === undefined ? undefined : { cause });
}
