// A small certificate authority for one cluster, for `pgvip init --tls` (and the tests and the lab,
// which use the same certificates an operator would get): a CA, and one certificate per daemon whose
// subjectAltName names the addresses the others dial, good for both ends of a connection (serverAuth
// and clientAuth), so mutual TLS works with the same files.
//
// Made with the openssl command-line tool, not node:crypto: node:crypto makes key pairs but has no
// API that issues an X.509 certificate, and writing the DER by hand (or adding a dependency for it)
// is more code to trust than the openssl binary every Linux host already has. Keys are EC P-256:
// small, and the cheapest handshakes of the widely supported key types.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertHost {
  /** File stem and common name, e.g. db-a or witness. */
  readonly name: string;
  /** Addresses or DNS names clients dial this host by (each becomes a subjectAltName). */
  readonly addresses: readonly string[];
}

export interface IssuedSet {
  readonly caCert: string;
  readonly caKey: string;
  readonly hosts: readonly { name: string; cert: string; key: string }[];
}

export interface IssueOptions {
  /** Named in the CA's common name, so two clusters' CAs tell apart. */
  readonly cluster: string;
  readonly caDays?: number;
  readonly hostDays?: number;
  /** The openssl binary (tests may point elsewhere); default `openssl` on PATH. */
  readonly openssl?: string;
}

/** subjectAltName entries of a host: IP: for addresses, DNS: for names, without repeats. */
export function subjectAltNames(host: CertHost): string {
  const names = [...new Set([...host.addresses, host.name])];
  return names.map((a) => (isIP(a) !== 0 ? `IP:${a}` : `DNS:${a}`)).join(',');
}

/**
 * Issues a fresh CA and one certificate per host. Everything is made in a private temporary
 * directory that is removed afterwards; the caller writes the files (keys with mode 0600).
 * Throws an Error naming the openssl step and its output when openssl fails or is missing.
 */
export async function issueCertificates(hosts: readonly CertHost[], opts: IssueOptions): Promise<IssuedSet> {
  const openssl = opts.openssl ?? 'openssl';
  const dir = await mkdtemp(path.join(tmpdir(), 'pgvip-tls-'));
  const ssl = async (step: string, args: string[]) => {
    try {
      await run(openssl, args, { cwd: dir });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const why = e.code === 'ENOENT' ? `${openssl} is not installed (apt install openssl, dnf install openssl)` : (e.stderr ?? e.message).trim();
      throw new Error(`openssl could not ${step}: ${why}`, { cause: err });
    }
  };
  const newKey = (file: string) => ssl(`make the key ${file}`, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  try {
    await newKey('ca.key');
    await ssl('make the CA certificate', [
      'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', String(opts.caDays ?? 3650),
      '-subj', `/CN=pgvip CA ${opts.cluster}`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', 'ca.crt',
    ]);
    const issued = [];
    for (const h of hosts) {
      await newKey(`${h.name}.key`);
      await ssl(`make the signing request of ${h.name}`, ['req', '-new', '-key', `${h.name}.key`, '-subj', `/CN=${h.name}`, '-out', `${h.name}.csr`]);
      await writeFile(
        path.join(dir, `${h.name}.ext`),
        [
          `subjectAltName=${subjectAltNames(h)}`,
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          'extendedKeyUsage=serverAuth,clientAuth',
          '',
        ].join('\n'),
      );
      await ssl(`issue the certificate of ${h.name}`, [
        'x509', '-req', '-in', `${h.name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-sha256',
        '-days', String(opts.hostDays ?? 825), '-set_serial', `0x${randomBytes(16).toString('hex')}`,
        '-extfile', `${h.name}.ext`, '-out', `${h.name}.crt`,
      ]);
      issued.push({
        name: h.name,
        cert: await readFile(path.join(dir, `${h.name}.crt`), 'utf8'),
        key: await readFile(path.join(dir, `${h.name}.key`), 'utf8'),
      });
    }
    return {
      caCert: await readFile(path.join(dir, 'ca.crt'), 'utf8'),
      caKey: await readFile(path.join(dir, 'ca.key'), 'utf8'),
      hosts: issued,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
