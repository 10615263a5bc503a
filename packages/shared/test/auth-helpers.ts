// A small cluster for the auth tests: one key, three members, a signer per member, a verifier per node.
import { createSigner } from '../src/auth/signer.js';
import type { Signer } from '../src/auth/signer.js';
import { createVerifier } from '../src/auth/verifier.js';
import type { Verifier, VerifierOptions } from '../src/auth/verifier.js';
import { generateKey } from '../src/auth/key.js';

export const cluster = 'prod';
export const members = ['db-a', 'db-b', 'witness'] as const;
export const key = generateKey();

export function signerFor(sender: string, options: { key?: Buffer; cluster?: string } = {}): Signer {
  return createSigner({ cluster: options.cluster ?? cluster, sender, key: options.key ?? key });
}

export function verifierFor(self: string, extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ self, clusters: { [cluster]: { key, members } }, ...extra });
}

export const leaseBody = JSON.stringify({ v: 1, cluster, term: 7, from: 'db-a', kind: 'lease-request', seq: 1, lsn: '0/0', timeline: 1, syncStandby: null });

/** db-a's lease request to the witness, signed and ready to verify. */
export function leaseRequest(signer: Signer, body: string = leaseBody) {
  const signed = signer.signRequest({ to: 'witness', method: 'POST', path: '/v1/lease', body });
  return { signed, incoming: { method: 'POST', path: '/v1/lease', headers: { ...signed.headers }, body } };
}
