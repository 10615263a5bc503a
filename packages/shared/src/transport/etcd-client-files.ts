// The files a quorum.etcd block names for its etcd client (TLS and the password), read and checked
// as the daemons' start checks them: the agent (open.ts) and the witness (etcd-connect.ts) both
// build an etcd client from them. A bad file is a PgvipError naming its field under `field`.
import type { EtcdConfig } from '../config/quorum-schema.js';
import { readSecretFile } from '../config/secret-file.js';
import { loadCaFile, loadTlsMaterial } from './tls.js';

export interface EtcdClientFiles {
  /** Only for https:// endpoints. Without ca: the system's CAs (gRPC's default). */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  readonly auth?: { readonly user: string; readonly password: string };
}

/** `field` is the block's config path, e.g. cluster.quorum.etcd or clusters[0].quorum.etcd. */
export async function loadEtcdClientFiles(etcd: EtcdConfig, field: string): Promise<EtcdClientFiles> {
  const out: { tls?: EtcdClientFiles['tls']; auth?: EtcdClientFiles['auth'] } = {};
  const tls = etcd.tls;
  if (etcd.endpoints.some((e) => e.startsWith('https://'))) {
    const ca = tls?.caFile === undefined ? undefined : Buffer.from(await loadCaFile(tls.caFile, `${field}.tls.caFile`));
    const pair = tls?.certFile === undefined || tls.keyFile === undefined
      ? undefined
      : await loadTlsMaterial({ certFile: tls.certFile, keyFile: tls.keyFile }, `${field}.tls`);
    out.tls = {
      ...(ca === undefined ? {} : { ca }),
      ...(pair === undefined ? {} : { cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) }),
    };
  }
  if (etcd.user !== undefined && etcd.passwordFile !== undefined) {
    out.auth = { user: etcd.user, password: await readSecretFile(etcd.passwordFile, `${field}.passwordFile`) };
  }
  return out;
}
