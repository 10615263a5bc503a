// A small cluster for the auth tests: one key, three members, signers and verifiers, and the
// first-contact exchange through which a signer learns a verifier's epoch.
import assert from 'node:assert/strict';
import { createSigner } from '../src/auth/signer.js';
import type { Signer } from '../src/auth/signer.js';
import { AuthenticatedRejection, createVerifier } from '../src/auth/verifier.js';
import type { IncomingRequest, Verifier, VerifierOptions } from '../src/auth/verifier.js';
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

/** A lease request from `signer` to `to`, signed and in the form the verifier receives it. */
export function leaseRequest(signer: Signer, to = 'witness', body: string = leaseBody) {
  const signed = signer.signRequest({ to, method: 'POST', path: '/v1/lease', body });
  const incoming: IncomingRequest = { method: 'POST', path: '/v1/lease', headers: { ...signed.headers }, body };
  return { signed, incoming };
}

/** Verifies a request the server is expected to refuse with a signed refusal, and returns the refusal. */
export function refusal(verifier: Verifier, request: IncomingRequest): AuthenticatedRejection {
  try {
    verifier.verifyRequest(request);
  } catch (e) {
    if (e instanceof AuthenticatedRejection) return e;
    throw e;
  }
  assert.fail('the request was accepted');
}

/**
 * First contact: the signer's first request is refused as signed for an unknown epoch, in a signed
 * reply from which the signer learns the verifier's epoch. Afterwards the signer's requests pass.
 */
export function introduce(signer: Signer, verifier: Verifier): void {
  const { signed, incoming } = leaseRequest(signer, verifier.self);
  const rejection = refusal(verifier, incoming);
  assert.equal(rejection.code, 'PGVIP_AUTH_STALE_EPOCH');
  const body = JSON.stringify({ code: rejection.code });
  const headers = verifier.signReply(rejection.request, { status: 401, body });
  assert.deepEqual(
    signer.verifyReply({ request: signed, status: 401, headers, body }),
    { authenticated: true, resend: true },
  );
}

/** A signer and a verifier that have already been introduced. */
export function pair(sender = 'db-a', self = 'witness', extra: Partial<VerifierOptions> = {}): { signer: Signer; verifier: Verifier } {
  const signer = signerFor(sender);
  const verifier = verifierFor(self, extra);
  introduce(signer, verifier);
  return { signer, verifier };
}
