// Goal: a request is accepted only when signed with the cluster key by a member, addressed to this
// node, unchanged in transit, for this node's current epoch, and newer than anything accepted from
// the sender; a reply is accepted only when it answers this very request. Each refusal has its code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTH_HEADER } from '../src/auth/header.js';
import { createSigner } from '../src/auth/signer.js';
import { checkTerm } from '../src/auth/term.js';
import { checkEnvelopeIdentity, createVerifier } from '../src/auth/verifier.js';
import { generateKey } from '../src/auth/key.js';
import { cluster, introduce, key, leaseBody, leaseRequest, members, pair, refusal, signerFor, verifierFor } from './auth-helpers.js';

/** Replaces one `name=value` field of an auth header. */
function withField(header: string, name: string, value: string | number): string {
  return header.replace(new RegExp(`\\b${name}=\\S+`), `${name}=${value}`);
}

describe('auth: requests', () => {
  it('accepts a request signed by a member and says who sent it', () => {
    const { signer, verifier } = pair();
    const { signed, incoming } = leaseRequest(signer);
    const verified = verifier.verifyRequest(incoming);
    assert.deepEqual(verified, { authenticated: true, cluster, sender: 'db-a', epoch: verifier.epoch, boot: signer.boot, seq: signed.seq, mac: signed.mac });
    assert.match(signed.headers[AUTH_HEADER], new RegExp(`^v1 cluster=prod sender=db-a to=witness epoch=${verifier.epoch} boot=${signer.boot} seq=2 mac=[0-9a-f]{64}$`));
  });

  it('accepts a GET without a body', () => {
    const { signer, verifier } = pair('witness', 'db-a');
    const signed = signer.signRequest({ to: 'db-a', method: 'GET', path: '/v1/status', body: '' });
    const verified = verifier.verifyRequest({ method: 'GET', path: '/v1/status', headers: signed.headers, body: new Uint8Array() });
    assert.equal(verified.sender, 'witness');
  });

  it('refuses a request without the header', () => {
    const { signer, verifier } = pair();
    assert.throws(() => verifier.verifyRequest({ ...leaseRequest(signer).incoming, headers: {} }), { code: 'PGVIP_AUTH_MISSING' });
  });

  it('refuses a malformed header', () => {
    const { signer, verifier } = pair();
    const { incoming } = leaseRequest(signer);
    const header = incoming.headers[AUTH_HEADER] as string;
    for (const broken of ['', 'v1', header.replace('v1 ', 'v2 '), header.replace(' to=', '  to='), header.toUpperCase(), withField(header, 'seq', '01'), withField(header, 'epoch', 'x'), `${header} extra=1`]) {
      assert.throws(() => verifier.verifyRequest({ ...incoming, headers: { [AUTH_HEADER]: broken } }), { code: 'PGVIP_AUTH_BAD_MAC', detail: /malformed/ });
    }
    assert.throws(() => verifier.verifyRequest({ ...incoming, headers: { [AUTH_HEADER]: [header, header] } }), { code: 'PGVIP_AUTH_BAD_MAC', detail: /2 times/ });
  });

  it('refuses a MAC made with another key (forgery)', () => {
    const forger = signerFor('db-a', { key: generateKey() });
    assert.throws(() => verifierFor('witness').verifyRequest(leaseRequest(forger).incoming), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses a request whose body, path, method or epoch changed in transit', () => {
    const { signer, verifier } = pair();
    const { incoming } = leaseRequest(signer);
    const header = incoming.headers[AUTH_HEADER] as string;
    const tampered = [
      { ...incoming, body: leaseBody.replace('"term":7', '"term":8') },
      { ...incoming, path: '/v1/vote' },
      { ...incoming, path: '/v1/lease?x=1' },
      { ...incoming, method: 'PUT' },
      { ...incoming, method: 'post' },
      { ...incoming, headers: { [AUTH_HEADER]: withField(header, 'epoch', 'f'.repeat(32)) } },
    ];
    for (const request of tampered) assert.throws(() => verifier.verifyRequest(request), { code: 'PGVIP_AUTH_BAD_MAC' });
    assert.equal(verifier.verifyRequest(incoming).sender, 'db-a', 'the untouched request still passes');
  });

  it('refuses a request whose header claims another sender (spoofing)', () => {
    const { signer, verifier } = pair();
    const { incoming } = leaseRequest(signer);
    const spoofed = withField(incoming.headers[AUTH_HEADER] as string, 'sender', 'db-b');
    assert.throws(() => verifier.verifyRequest({ ...incoming, headers: { [AUTH_HEADER]: spoofed } }), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses a request for a cluster this node does not serve', () => {
    const { incoming } = leaseRequest(signerFor('db-a', { cluster: 'staging' }));
    assert.throws(() => verifierFor('witness').verifyRequest(incoming), { code: 'PGVIP_AUTH_WRONG_CLUSTER', detail: /cluster staging; witness serves prod/ });
  });

  it('refuses a sender that is not a member of the cluster', () => {
    const { incoming } = leaseRequest(signerFor('db-c'));
    assert.throws(() => verifierFor('witness').verifyRequest(incoming), { code: 'PGVIP_AUTH_UNKNOWN_SENDER', detail: /db-c is not a member of cluster prod/ });
  });

  it('refuses a request addressed to another member (redirected or reflected)', () => {
    const { incoming } = leaseRequest(signerFor('db-a'), 'witness');
    assert.throws(() => verifierFor('db-b').verifyRequest(incoming), { code: 'PGVIP_AUTH_WRONG_RECIPIENT', detail: /addressed to witness, but this node is db-b/ });
    assert.throws(() => verifierFor('db-a').verifyRequest(incoming), { code: 'PGVIP_AUTH_WRONG_RECIPIENT' });
  });

  it('refuses an unsigned request when the cluster requires signatures', () => {
    const unsigned = createSigner({ cluster, sender: 'db-a', authDisabled: true });
    assert.throws(() => verifierFor('witness').verifyRequest(leaseRequest(unsigned).incoming), { code: 'PGVIP_AUTH_MISSING', detail: /unsigned/ });
  });
});

describe('auth: replay and epochs', () => {
  it('refuses first contact with a signed refusal that teaches the epoch, then accepts the resent request', () => {
    const signer = signerFor('db-a');
    const verifier = verifierFor('witness');
    introduce(signer, verifier);
    assert.equal(verifier.verifyRequest(leaseRequest(signer).incoming).sender, 'db-a');
  });

  it('accepts a request once and refuses it the second time', () => {
    const { signer, verifier } = pair();
    const { incoming } = leaseRequest(signer);
    verifier.verifyRequest(incoming);
    assert.throws(() => verifier.verifyRequest(incoming), { code: 'PGVIP_AUTH_REPLAY', detail: /seq 2 is not above 2/ });
  });

  it('refuses a lower sequence number, even one never seen (requests are taken in send order)', () => {
    const { signer, verifier } = pair();
    const earlier = leaseRequest(signer).incoming;
    const later = leaseRequest(signer).incoming;
    verifier.verifyRequest(later);
    assert.throws(() => verifier.verifyRequest(earlier), { code: 'PGVIP_AUTH_REPLAY', detail: /seq 2 is not above 3/ });
  });

  it('voids every request signed before the verifier restarted', () => {
    const { signer, verifier } = pair();
    const captured = leaseRequest(signer).incoming;
    verifier.verifyRequest(captured);
    const restarted = verifierFor('witness');
    assert.notEqual(restarted.epoch, verifier.epoch);
    const rejection = refusal(restarted, captured);
    assert.equal(rejection.code, 'PGVIP_AUTH_STALE_EPOCH');
    // The sender recovers by learning the new epoch from the signed refusal and resending.
    introduce(signer, restarted);
    assert.equal(restarted.verifyRequest(leaseRequest(signer).incoming).sender, 'db-a');
    assert.equal(refusal(restarted, captured).code, 'PGVIP_AUTH_STALE_EPOCH');
  });

  it("accepts a restarted sender's new boot once, and still refuses the old boot's requests", () => {
    const verifier = verifierFor('witness');
    const before = signerFor('db-a');
    introduce(before, verifier);
    const fromBefore = leaseRequest(before).incoming;
    verifier.verifyRequest(fromBefore);
    const restarted = signerFor('db-a');
    introduce(restarted, verifier);
    const fromAfter = leaseRequest(restarted).incoming;
    assert.equal(verifier.verifyRequest(fromAfter).sender, 'db-a');
    assert.equal(refusal(verifier, fromAfter).code, 'PGVIP_AUTH_REPLAY');
    assert.equal(refusal(verifier, fromBefore).code, 'PGVIP_AUTH_REPLAY');
  });

  it('keeps refusing boots of replaced processes after their sequence numbers are dropped', () => {
    const verifier = verifierFor('witness', { replayLimits: { recentBoots: 2, retiredBoots: 8 } });
    const firstBoot = signerFor('db-a');
    introduce(firstBoot, verifier);
    verifier.verifyRequest(leaseRequest(firstBoot).incoming);
    const unsentFromFirstBoot = leaseRequest(firstBoot).incoming;
    for (let restart = 0; restart < 3; restart++) {
      const restarted = signerFor('db-a');
      introduce(restarted, verifier);
      verifier.verifyRequest(leaseRequest(restarted).incoming);
    }
    assert.throws(() => verifier.verifyRequest(unsentFromFirstBoot), { code: 'PGVIP_AUTH_REPLAY', detail: /has since been replaced/ });
  });

  it('starts a new epoch rather than forget a boot when its replay memory is full', () => {
    const verifier = verifierFor('witness', { replayLimits: { recentBoots: 1, retiredBoots: 1 } });
    const first = signerFor('db-a');
    const second = signerFor('db-a');
    for (const s of [first, second]) {
      introduce(s, verifier);
      verifier.verifyRequest(leaseRequest(s).incoming);
    }
    const epochBefore = verifier.epoch;
    const third = signerFor('db-a');
    introduce(third, verifier);
    const overflowing = refusal(verifier, leaseRequest(third).incoming);
    assert.equal(overflowing.code, 'PGVIP_AUTH_STALE_EPOCH');
    assert.match(overflowing.detail, /replay memory is full/);
    assert.notEqual(verifier.epoch, epochBefore);
    // Everything signed in the old epoch is void now, including the boots the memory no longer holds.
    assert.equal(refusal(verifier, leaseRequest(first).incoming).code, 'PGVIP_AUTH_STALE_EPOCH');
  });

  it('keeps replay memory per sender: equal numbers from different members do not collide', () => {
    const verifier = verifierFor('witness');
    const a = signerFor('db-a');
    const b = signerFor('db-b');
    introduce(a, verifier);
    introduce(b, verifier);
    verifier.verifyRequest(leaseRequest(a).incoming);
    assert.equal(verifier.verifyRequest(leaseRequest(b).incoming).sender, 'db-b');
  });

  it('spends no replay memory on requests that fail their MAC', () => {
    const { signer, verifier } = pair();
    const { incoming } = leaseRequest(signer);
    assert.throws(() => verifier.verifyRequest({ ...incoming, body: '{}' }), { code: 'PGVIP_AUTH_BAD_MAC' });
    assert.equal(verifier.verifyRequest(incoming).sender, 'db-a');
  });
});

describe('auth: replies', () => {
  function exchange() {
    const { signer, verifier } = pair();
    const { signed, incoming } = leaseRequest(signer);
    const verified = verifier.verifyRequest(incoming);
    const body = '{"granted":true}';
    const headers = verifier.signReply(verified, { status: 200, body });
    return { signer, verifier, verified, reply: { request: signed, status: 200, headers, body } };
  }

  it('accepts the reply to its own request', () => {
    const { signer, verifier, reply } = exchange();
    assert.deepEqual(signer.verifyReply(reply), { authenticated: true, resend: false });
    assert.match(reply.headers[AUTH_HEADER], new RegExp(`^v1 cluster=prod sender=witness epoch=${verifier.epoch} boot=${signer.boot} seq=2 mac=[0-9a-f]{64}$`));
  });

  it('refuses a reply whose body, status or epoch changed, or that was forged with another key', () => {
    const { signer, reply, verified } = exchange();
    assert.throws(() => signer.verifyReply({ ...reply, body: '{"granted":false}' }), { code: 'PGVIP_AUTH_BAD_MAC' });
    assert.throws(() => signer.verifyReply({ ...reply, status: 409 }), { code: 'PGVIP_AUTH_BAD_MAC' });
    const otherEpoch = withField(reply.headers[AUTH_HEADER], 'epoch', 'e'.repeat(32));
    assert.throws(() => signer.verifyReply({ ...reply, headers: { [AUTH_HEADER]: otherEpoch } }), { code: 'PGVIP_AUTH_BAD_MAC' });
    const forger = createVerifier({ self: 'witness', clusters: { [cluster]: { key: generateKey(), members } } });
    const forged = forger.signReply(verified, { status: 200, body: reply.body });
    assert.throws(() => signer.verifyReply({ ...reply, headers: forged }), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses an old reply replayed as the answer to a new request', () => {
    const { signer, reply } = exchange();
    const next = leaseRequest(signer).signed;
    assert.throws(() => signer.verifyReply({ ...reply, request: next }), { code: 'PGVIP_AUTH_REPLAY', detail: /answers request .*\/2, not .*\/3/ });
    // Rewriting the sequence number in the old reply's header does not help: the MAC binds it.
    const rewritten = withField(reply.headers[AUTH_HEADER], 'seq', next.seq);
    assert.throws(() => signer.verifyReply({ ...reply, request: next, headers: { [AUTH_HEADER]: rewritten } }), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses a reply signed by a node other than the one asked', () => {
    const { signer, reply, verified } = exchange();
    const other = createVerifier({ self: 'db-b', clusters: { [cluster]: { key, members } } });
    const foreignHeaders = other.signReply(verified, { status: 200, body: reply.body });
    assert.throws(() => signer.verifyReply({ ...reply, headers: foreignHeaders }), {
      code: 'PGVIP_AUTH_UNKNOWN_SENDER',
      detail: /signed by db-b, but the request went to witness/,
    });
  });

  it('refuses an unsigned reply, saying the peer may have refused the request', () => {
    const { signer, reply } = exchange();
    assert.throws(() => signer.verifyReply({ ...reply, status: 401, headers: {} }), { code: 'PGVIP_AUTH_MISSING', detail: /HTTP 401/ });
  });

  it('asks for a resend only when the request was refused for its epoch', () => {
    const { signer, verifier } = pair();
    const early = leaseRequest(signer);
    const earlyVerified = verifier.verifyRequest(early.incoming);
    const restarted = verifierFor('witness');
    const { signed, incoming } = leaseRequest(signer);
    const rejection = refusal(restarted, incoming);
    const body = '{}';
    const headers = restarted.signReply(rejection.request, { status: 401, body });
    const verdict = signer.verifyReply({ request: signed, status: 401, headers, body });
    assert.deepEqual(verdict, { authenticated: true, resend: true });
    // A reply to an earlier request, arriving late from before the restart, does not teach the old epoch back.
    const lateHeaders = verifier.signReply(earlyVerified, { status: 200, body });
    assert.deepEqual(
      signer.verifyReply({ request: early.signed, status: 200, headers: lateHeaders, body }),
      { authenticated: true, resend: false },
    );
    assert.match(leaseRequest(signer).signed.headers[AUTH_HEADER], new RegExp(`epoch=${restarted.epoch} `));
  });
});

describe('auth: disabled mode', () => {
  it('is explicit and visible as a flag on both sides, and still checks membership and recipient', () => {
    const signer = createSigner({ cluster, sender: 'db-a', authDisabled: true });
    const verifier = createVerifier({ self: 'witness', clusters: { [cluster]: { members, authDisabled: true } } });
    assert.equal(signer.authenticated, false);
    assert.deepEqual(verifier.unauthenticatedClusters, [cluster]);
    assert.equal(verifierFor('witness').unauthenticatedClusters.length, 0);

    const { signed, incoming } = leaseRequest(signer);
    assert.equal(signed.headers[AUTH_HEADER], 'none cluster=prod sender=db-a to=witness');
    const verified = verifier.verifyRequest(incoming);
    assert.deepEqual(verified, { authenticated: false, cluster, sender: 'db-a' });
    const headers = verifier.signReply(verified, { status: 200, body: '{}' });
    assert.equal(headers[AUTH_HEADER], 'none cluster=prod sender=witness');
    assert.deepEqual(signer.verifyReply({ request: signed, status: 200, headers, body: '{}' }), { authenticated: false, resend: false });

    const stranger = leaseRequest(createSigner({ cluster, sender: 'db-c', authDisabled: true })).incoming;
    assert.throws(() => verifier.verifyRequest(stranger), { code: 'PGVIP_AUTH_UNKNOWN_SENDER' });
    assert.throws(() => verifier.verifyRequest(leaseRequest(signer, 'db-b').incoming), { code: 'PGVIP_AUTH_WRONG_RECIPIENT' });
  });

  it('a signing client refuses the unsigned replies of a node with authentication off', () => {
    const { signed } = leaseRequest(signerFor('db-a'));
    const headers = { [AUTH_HEADER]: 'none cluster=prod sender=witness' };
    assert.throws(() => signerFor('db-a').verifyReply({ request: signed, status: 200, headers, body: '{}' }), { code: 'PGVIP_AUTH_MISSING', detail: /unsigned/ });
  });
});

describe('auth: message identity and terms', () => {
  it('refuses a message whose envelope names another sender or cluster than its signature', () => {
    const verified = { authenticated: true, cluster, sender: 'db-a', epoch: '1'.repeat(32), boot: '0'.repeat(32), seq: 1, mac: '0'.repeat(64) } as const;
    const envelope = { v: 1, cluster, term: 7, from: 'db-a' } as const;
    assert.doesNotThrow(() => checkEnvelopeIdentity(envelope, verified));
    assert.throws(() => checkEnvelopeIdentity({ ...envelope, from: 'db-b' }, verified), { code: 'PGVIP_AUTH_SENDER_MISMATCH', detail: /claims to be from db-b/ });
    assert.throws(() => checkEnvelopeIdentity({ ...envelope, cluster: 'staging' }, verified), { code: 'PGVIP_AUTH_SENDER_MISMATCH' });
  });

  it('refuses a message from an older term, naming both terms', () => {
    assert.throws(() => checkTerm(4, 7), { code: 'PGVIP_STALE_TERM', detail: /term 4.*term 7/ });
    assert.doesNotThrow(() => checkTerm(7, 7));
    assert.doesNotThrow(() => checkTerm(8, 7));
  });
});
