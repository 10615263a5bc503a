// Goal: any single-byte change to anything the MAC covers — body, path, method or auth header of a
// request; body, status or auth header of a reply — makes verification fail with an auth error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AUTH_HEADER } from '../src/auth/header.js';
import { isPgvipError } from '../src/errors.js';
import { pair } from './auth-helpers.js';

/** `text` with the character at `index` moved by `delta` (1–255) within 0–255, so it always differs. */
function changeChar(text: string, index: number, delta: number): string {
  const i = index % text.length;
  return text.slice(0, i) + String.fromCharCode((text.charCodeAt(i) + delta) % 256) + text.slice(i + 1);
}

function changeByte(bytes: Uint8Array, index: number, delta: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  const i = index % copy.length;
  copy[i] = ((copy[i] ?? 0) + delta) % 256;
  return copy;
}

function failsAuth(verify: () => unknown): boolean {
  try {
    verify();
    return false;
  } catch (e) {
    return isPgvipError(e) && e.category === 'auth';
  }
}

const requestParts = fc.record({
  method: fc.constantFrom('GET', 'POST'),
  path: fc.string({ minLength: 1, maxLength: 60 }).map((s) => `/v1/${s}`),
  body: fc.uint8Array({ minLength: 1, maxLength: 300 }),
});
const mutation = fc.record({
  target: fc.constantFrom('body', 'path', 'method', 'header'),
  index: fc.nat(),
  delta: fc.integer({ min: 1, max: 255 }),
});

describe('auth: tamper evidence (property)', () => {
  it('any single-byte change to a signed request breaks verification', () => {
    fc.assert(
      fc.property(requestParts, mutation, (request, { target, index, delta }) => {
        // A fresh, introduced pair per run. The tampered copy goes first, so replay memory cannot be
        // what refuses it, and the original must still pass afterwards: only the change fails it.
        const { signer, verifier } = pair();
        const signed = signer.signRequest({ to: 'witness', ...request });
        const incoming = { ...request, headers: { ...signed.headers } };
        const tampered =
          target === 'body' ? { ...incoming, body: changeByte(request.body, index, delta) }
          : target === 'path' ? { ...incoming, path: changeChar(request.path, index, delta) }
          : target === 'method' ? { ...incoming, method: changeChar(request.method, index, delta) }
          : { ...incoming, headers: { [AUTH_HEADER]: changeChar(signed.headers[AUTH_HEADER], index, delta) } };
        const refused = failsAuth(() => verifier.verifyRequest(tampered));
        assert.equal(verifier.verifyRequest(incoming).sender, 'db-a', 'the original still verifies');
        return refused;
      }),
      { numRuns: 500 },
    );
  });

  it('any single-byte change to a signed reply breaks verification', () => {
    const replyMutation = fc.record({
      target: fc.constantFrom('body', 'status', 'header'),
      index: fc.nat(),
      delta: fc.integer({ min: 1, max: 255 }),
    });
    const bodies = fc.uint8Array({ minLength: 1, maxLength: 300 });
    const statuses = fc.integer({ min: 100, max: 599 });
    fc.assert(
      fc.property(bodies, statuses, replyMutation, (body, status, { target, index, delta }) => {
        const { signer, verifier } = pair();
        const request = signer.signRequest({ to: 'witness', method: 'POST', path: '/v1/lease', body: '{}' });
        const verified = verifier.verifyRequest({ method: 'POST', path: '/v1/lease', headers: request.headers, body: '{}' });
        const headers = verifier.signReply(verified, { status, body });
        const reply = { request, status, headers, body };
        assert.deepEqual(signer.verifyReply(reply), { authenticated: true, resend: false });
        const tampered =
          target === 'body' ? { ...reply, body: changeByte(body, index, delta) }
          : target === 'status' ? { ...reply, status: status ^ (1 << (index % 10)) }
          : { ...reply, headers: { [AUTH_HEADER]: changeChar(headers[AUTH_HEADER], index, delta) } };
        return failsAuth(() => signer.verifyReply(tampered));
      }),
      { numRuns: 500 },
    );
  });
});
