// The per-cluster shared key. Every member of a cluster (both agents and the witness) holds the same
// key in a file only the service user can read; whoever holds it can speak for any member, so the
// file is treated like an SSH private key: generated from the OS's CSPRNG, never logged, mode 0600.
//
// File format: the key as hex text on one line (what `openssl rand -hex 32` prints), so it survives
// copy-paste, config management and editors that add a trailing newline.
import { randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { PgvipError } from '../errors.js';

/** A cluster key: raw bytes, at least KEY_BYTES of them. */
export type ClusterKey = Buffer;

/** 256 bits: the HMAC-SHA256 block of security; shorter keys are refused. */
export const KEY_BYTES = 32;

// A key file is a line of hex; anything much larger is the wrong file (a config, a certificate).
const MAX_KEY_FILE_BYTES = 4096;

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
 * Reads a key file and refuses one that others could read or that belongs to someone else: a key
 * readable by any local user lets that user forge votes, so a lax mode is an error, not a warning.
 */
export async function loadKey(path: string): Promise<ClusterKey> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (e) {
    throw keyFileError(path, `cannot open it (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
  try {
    // stat the opened descriptor, not the path, so the checks apply to the bytes we read.
    const info = await file.stat();
    if (!info.isFile()) throw keyFileError(path, 'it is not a regular file');
    if ((info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
      throw keyFileError(path, `its mode ${mode} lets other users read or change it; run: chmod 600 ${path}`);
    }
    const uid = process.getuid?.();
    if (uid !== undefined && info.uid !== uid && info.uid !== 0) {
      throw keyFileError(path, `it is owned by uid ${info.uid}, but pgvip runs as uid ${uid}; chown it to the service user`);
    }
    if (info.size > MAX_KEY_FILE_BYTES) throw keyFileError(path, `it is ${info.size} bytes, far larger than a key file`);
    return parseKeyFile(await file.readFile('utf8'), path);
  } finally {
    await file.close();
  }
}

/** Writes a new key file with mode 0600; never overwrites an existing one (that would split the cluster). */
export async function writeKeyFile(path: string, key: ClusterKey): Promise<void> {
  try {
    await writeFile(path, formatKeyFile(key), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    throw keyFileError(path, `cannot create it (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
  }
}

function keyFileError(path: string, why: string, cause?: unknown): PgvipError {
  return new PgvipError('PGVIP_AUTH_KEY_FILE', `key file ${path}: ${why}`, cause === undefined ? undefined : { cause });
}
