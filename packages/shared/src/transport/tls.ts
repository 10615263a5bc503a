// TLS for pgvip's listeners and clients: certificates and keys read from the files the config names,
// checked before use (a key that does not belong to its certificate, or a file that is not PEM, stops
// the daemon with the field and the fix, never a bare OpenSSL error at the first handshake), and
// reloaded in place on SIGHUP (tls.Server#setSecureContext), so a renewed certificate needs no restart.
//
// HMAC authentication of the protocol stays as it is inside TLS: TLS adds confidentiality and the
// server's identity, the MAC still says which cluster member sent a message (docs/security.md).
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server as NetServer } from 'node:net';
import type { Server as TlsServer, SecureContextOptions } from 'node:tls';
import { PgvipError } from '../errors.js';
import { readSecretFile } from '../config/secret-file.js';

/** The TLS block of a listener as the config gives it (the file names and what the listener asks of clients). */
export interface TlsFilesConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA(s) peers' certificates must chain to; absent for the operator API (clients there use a token). */
  readonly caFile?: string | undefined;
  /** The listener requires a client certificate issued by caFile. */
  readonly mutual?: boolean | undefined;
}

/** What the files held, checked. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  /** The certificate's SHA-256 fingerprint (as openssl prints it), for logs and tests. */
  readonly fingerprint256: string;
  readonly notAfter: Date;
}

/** Oldest protocol accepted on either side: TLS 1.0 and 1.1 are deprecated (RFC 8996). */
export const tlsMinVersion = 'TLSv1.2';

const pemBlocks = (text: string, label: string): string[] =>
  text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, 'g')) ?? [];

function tlsError(field: string, what: string, fix: string, cause?: unknown): PgvipError {
  return new PgvipError('PGVIP_TLS_FILE', `${field}: ${what}; ${fix}`, cause === undefined ? undefined : { cause });
}

async function readPublicFile(file: string, field: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`;
    throw tlsError(field, `${file} ${why}`, 'point it at a PEM file readable by the user the daemon runs as (pgvip init --tls writes one)', err);
  }
}

function certificates(text: string, file: string, field: string): X509Certificate[] {
  const blocks = pemBlocks(text, 'CERTIFICATE');
  if (blocks.length === 0) {
    throw tlsError(field, `${file} holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)`, 'point it at a PEM certificate file');
  }
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw tlsError(field, `${file} holds a certificate that cannot be parsed (${(err as Error).message})`, 'replace it with a valid PEM certificate', err);
    }
  });
}

/**
 * Reads and checks the files of one TLS block. `field` is the config path of the block, e.g. `tls`
 * or `operatorApi.tls`, so every error names the exact field. The key file must be mode 0600 like
 * every other secret pgvip reads. Throws PgvipError (config category).
 */
export async function loadTlsMaterial(files: TlsFilesConfig, field: string): Promise<TlsMaterial> {
  const certText = await readPublicFile(files.certFile, `${field}.certFile`);
  const [leaf] = certificates(certText, files.certFile, `${field}.certFile`);
  const keyText = await readSecretFile(files.keyFile, `${field}.keyFile`).catch((err: unknown) => {
    // The secret-file checks (exists, mode 0600, not empty) under this error's code.
    if (err instanceof PgvipError) throw new PgvipError('PGVIP_TLS_FILE', err.detail, { cause: err });
    throw err;
  });
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    throw tlsError(
      `${field}.keyFile`,
      `${files.keyFile} holds no usable private key (${(err as Error).message})`,
      'point it at the unencrypted PEM private key of certFile (pgvip cannot ask for a passphrase)',
      err,
    );
  }
  if (!leaf!.checkPrivateKey(key)) {
    throw tlsError(
      `${field}.keyFile`,
      `${files.keyFile} is not the private key of the certificate in ${files.certFile}`,
      `install the key that was generated with that certificate, or a certificate issued for this key (check: openssl x509 -noout -pubkey -in ${files.certFile} and openssl pkey -pubout -in ${files.keyFile} must print the same)`,
    );
  }
  let ca: string | undefined;
  if (files.caFile !== undefined) {
    ca = await readPublicFile(files.caFile, `${field}.caFile`);
    certificates(ca, files.caFile, `${field}.caFile`);
  }
  return { cert: certText, key: keyText, ca, fingerprint256: leaf!.fingerprint256, notAfter: new Date(leaf!.validTo) };
}

/**
 * Reads a CA file alone (a client that verifies a server but presents no certificate of its own, as
 * towards etcd without client certificates): its PEM text, checked to hold parseable certificates.
 */
export async function loadCaFile(file: string, field: string): Promise<string> {
  const text = await readPublicFile(file, field);
  certificates(text, file, field);
  return text;
}

/** Days until the certificate expires (negative once expired), for warnings at start and in `pgvip doctor`. */
export function daysLeft(material: Pick<TlsMaterial, 'notAfter'>, nowMs = Date.now()): number {
  return (material.notAfter.getTime() - nowMs) / 86_400_000;
}

/** What the certificate's remaining validity calls for: a warning line, or null when fine. */
export function expiryWarning(material: Pick<TlsMaterial, 'notAfter'>, what: string, nowMs = Date.now()): string | null {
  const days = daysLeft(material, nowMs);
  if (days < 0) return `${what} expired on ${material.notAfter.toISOString()}: peers refuse it; install a renewed certificate and send SIGHUP`;
  if (days < 30) return `${what} expires on ${material.notAfter.toISOString()} (in ${Math.floor(days)} days): renew it and send SIGHUP`;
  return null;
}

/** The secure-context part of a server's options (what SIGHUP replaces). */
export function secureContextOf(m: TlsMaterial): SecureContextOptions {
  return { cert: m.cert, key: m.key, ...(m.ca === undefined ? {} : { ca: m.ca }), minVersion: tlsMinVersion };
}

/**
 * The https server options of a listener. With `mutual`, the handshake fails for a client that
 * presents no certificate, or one not issued by caFile, before any HTTP is read.
 */
export function tlsServerOptions(m: TlsMaterial, mutual: boolean, handshakeTimeoutMs: number) {
  return {
    ...secureContextOf(m),
    requestCert: mutual,
    rejectUnauthorized: mutual,
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/**
 * The options of a client connection (undici's `connect`): the peer's certificate is always verified
 * against caFile (there is no switch to turn that off) and its name against the address dialled, and
 * this daemon presents its own certificate, which a peer with `mutual` requires.
 */
export function tlsClientOptions(m: TlsMaterial) {
  return {
    ...(m.ca === undefined ? {} : { ca: m.ca }),
    cert: m.cert,
    key: m.key,
    minVersion: tlsMinVersion,
    rejectUnauthorized: true,
  } as const;
}

/** A peer tls block as the config gives it, for the log lines that say how a daemon speaks. */
export interface PeerTlsMode {
  readonly mutual: boolean;
  readonly transition?: 'listen' | 'dial' | undefined;
}

/** How a daemon's peer listener speaks, for its "listening" log line. */
export function tlsMode(tls: PeerTlsMode | undefined): string {
  if (tls === undefined) return 'off';
  const on = tls.mutual ? 'mutual' : 'on';
  return tls.transition === undefined ? on : `${on}, plain HTTP too (transition: ${tls.transition})`;
}

/** The warning a daemon logs at start while tls.transition is set: the procedure is not finished. */
export function transitionWarning(transition: 'listen' | 'dial'): string {
  const next = transition === 'listen'
    ? 'once every daemon runs with transition: listen, set transition: dial on each in turn'
    : 'once every daemon runs with transition: dial, remove transition on each in turn';
  return `tls.transition is ${transition}: this listener also accepts plain HTTP (signed, but readable on the network); ${next} (docs/deploy.md, "Turning TLS on without a maintenance window")`;
}

/**
 * A listener's TLS, reloadable: `material` is what is in use now; `reload()` reads the files again
 * and, when every check passes, swaps them into the servers registered with `serve`. A file that
 * fails a check leaves the old certificate serving (a bad renewal must not take the daemon down).
 */
export interface TlsSource {
  readonly field: string;
  readonly material: TlsMaterial;
  /** Bumped by every successful reload; clients re-dial when it changes. */
  readonly version: number;
  /** Registers a listener made with these files (typed as fastify's http server; it is an https one). */
  serve(server: NetServer): void;
  reload(): Promise<TlsMaterial>;
}

export async function createTlsSource(files: TlsFilesConfig, field: string): Promise<TlsSource> {
  let material = await loadTlsMaterial(files, field);
  let version = 1;
  const servers: TlsServer[] = [];
  return {
    field,
    get material() {
      return material;
    },
    get version() {
      return version;
    },
    serve(server) {
      servers.push(server as TlsServer);
    },
    async reload() {
      const next = await loadTlsMaterial(files, field);
      for (const s of servers) s.setSecureContext(secureContextOf(next));
      material = next;
      version += 1;
      return next;
    },
  };
}
