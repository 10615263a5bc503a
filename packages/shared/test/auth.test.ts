// Goal: a request is accepted only when signed with the cluster key by a member, addressed to this
// node, unchanged in transit and never seen before; a reply is accepted only when it answers this
// very request. Each rejection carries its own code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTH_HEADER } from '../src/auth/header.js';
import { createSigner } from '../src/auth/signer.js';
import { checkTerm } from '../src/auth/term.js';
import { checkEnvelopeIdentity, createVerifier } from '../src/auth/verifier.js';
import { generateKey } from '../src/auth/key.js';
import { WINDOW_SIZE } from '../src/auth/replay.js';
import { cluster, key, leaseBody, leaseRequest, members, signerFor, verifierFor } from './auth-helpers.js';

/** Replaces one `name=value` field of an auth header. */
function withField(header: string, name: string, value: string | number): string {
  return header.replace(new RegExp(`\\b${name}=\\S+`), `${name}=${value}`);
}

describe('auth: requests', () => {
  it('accepts a request signed by a member and says who sent it', () => {
    const signer = signerFor('db-a');
    const { signed, incoming } = leaseRequest(signer);
    const verified = verifierFor('witness').verifyRequest(incoming);
    assert.deepEqual(verified, { authenticated: true, cluster, sender: 'db-a', boot: signer.boot, seq: 1, mac: signed.mac });
    assert.match(signed.headers[AUTH_HEADER], /^v1 cluster=prod sender=db-a to=witness boot=[0-9a-f]{32} seq=1 mac=[0-9a-f]{64}$/);
  });

  it('accepts a GET without a body', () => {
    const signed = signerFor('witness').signRequest({ to: 'db-a', method: 'GET', path: '/v1/status', body: '' });
    const verified = verifierFor('db-a').verifyRequest({ method: 'GET', path: '/v1/status', headers: signed.headers, body: new Uint8Array() });
    assert.equal(verified.sender, 'witness');
  });

  it('refuses a request without the header', () => {
    const { incoming } = leaseRequest(signerFor('db-a'));
    assert.throws(() => verifierFor('witness').verifyRequest({ ...incoming, headers: {} }), { code: 'PGVIP_AUTH_MISSING' });
  });

  it('refuses a malformed header', () => {
    const { incoming } = leaseRequest(signerFor('db-a'));
    const header = incoming.headers[AUTH_HEADER];
    for (const broken of ['', 'v1', header.replace('v1 ', 'v2 '), header.replace(' to=', '  to='), header.toUpperCase(), withField(header, 'seq', '01'), `${header} extra=1`]) {
      assert.throws(() => verifierFor('witness').verifyRequest({ ...incoming, headers: { [AUTH_HEADER]: broken } }), { code: 'PGVIP_AUTH_BAD_MAC', detail: /malformed/ });
    }
    assert.throws(() => verifierFor('witness').verifyRequest({ ...incoming, headers: { [AUTH_HEADER]: [header, header] } }), { code: 'PGVIP_AUTH_BAD_MAC', detail: /2 times/ });
  });

  it('refuses a MAC made with another key (forgery)', () => {
    const { incoming } = leaseRequest(signerFor('db-a', { key: generateKey() }));
    assert.throws(() => verifierFor('witness').verifyRequest(incoming), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses a request whose body, path or method changed in transit', () => {
    const { incoming } = leaseRequest(signerFor('db-a'));
    const tampered = [
      { ...incoming, body: leaseBody.replace('"term":7', '"term":8') },
      { ...incoming, path: '/v1/vote' },
      { ...incoming, path: '/v1/lease?x=1' },
      { ...incoming, method: 'PUT' },
      { ...incoming, method: 'post' },
    ];
    for (const request of tampered) assert.throws(() => verifierFor('witness').verifyRequest(request), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses a request whose header claims another sender (spoofing)', () => {
    const { incoming } = leaseRequest(signerFor('db-a'));
    const spoofed = withField(incoming.headers[AUTH_HEADER], 'sender', 'db-b');
    assert.throws(() => verifierFor('witness').verifyRequest({ ...incoming, headers: { [AUTH_HEADER]: spoofed } }), { code: 'PGVIP_AUTH_BAD_MAC' });
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
    const { incoming } = leaseRequest(signerFor('db-a'));
    assert.throws(() => verifierFor('db-b').verifyRequest(incoming), { code: 'PGVIP_AUTH_WRONG_RECIPIENT', detail: /addressed to witness, but this node is db-b/ });
    assert.throws(() => verifierFor('db-a').verifyRequest(incoming), { code: 'PGVIP_AUTH_WRONG_RECIPIENT' });
  });

  it('refuses an unsigned request when the cluster requires signatures', () => {
    const unsigned = createSigner({ cluster, sender: 'db-a', authDisabled: true });
    const { incoming } = leaseRequest(unsigned);
    assert.throws(() => verifierFor('witness').verifyRequest(incoming), { code: 'PGVIP_AUTH_MISSING', detail: /unsigned/ });
  });
});

describe('auth: replay', () => {
  it('accepts a request once and refuses it the second time', () => {
    const verifier = verifierFor('witness');
    const { incoming } = leaseRequest(signerFor('db-a'));
    verifier.verifyRequest(incoming);
    assert.throws(() => verifier.verifyRequest(incoming), { code: 'PGVIP_AUTH_REPLAY', detail: /seq 1 was already accepted/ });
  });

  it('accepts requests overtaking each other once each, and refuses lower numbers seen before', () => {
    const verifier = verifierFor('witness');
    const signer = signerFor('db-a');
    const [first, second, third] = [1, 2, 3].map(() => leaseRequest(signer).incoming);
    assert.ok(first && second && third);
    verifier.verifyRequest(third);
    verifier.verifyRequest(second);
    assert.throws(() => verifier.verifyRequest(second), { code: 'PGVIP_AUTH_REPLAY' });
    verifier.verifyRequest(first);
    assert.throws(() => verifier.verifyRequest(third), { code: 'PGVIP_AUTH_REPLAY' });
  });

  it('refuses a request that fell behind the replay window', () => {
    const verifier = verifierFor('witness');
    const signer = signerFor('db-a');
    const old = leaseRequest(signer).incoming;
    let latest = old;
    for (let i = 0; i < WINDOW_SIZE; i++) latest = leaseRequest(signer).incoming;
    verifier.verifyRequest(latest);
    assert.throws(() => verifier.verifyRequest(old), { code: 'PGVIP_AUTH_REPLAY', detail: /beyond the replay window/ });
  });

  it("accepts a restarted sender's new boot once, and still refuses the old boot's requests", () => {
    const verifier = verifierFor('witness');
    const before = leaseRequest(signerFor('db-a')).incoming;
    verifier.verifyRequest(before);
    const restarted = signerFor('db-a');
    const after = leaseRequest(restarted).incoming;
    const verified = verifier.verifyRequest(after);
    assert.equal(verified.authenticated && verified.boot, restarted.boot);
    assert.throws(() => verifier.verifyRequest(after), { code: 'PGVIP_AUTH_REPLAY' });
    assert.throws(() => verifier.verifyRequest(before), { code: 'PGVIP_AUTH_REPLAY' });
  });

  it('keeps refusing boots of replaced processes after their windows are dropped', () => {
    const verifier = verifierFor('witness', { replayLimits: { recentBoots: 2, retiredBoots: 8 } });
    const firstBoot = signerFor('db-a');
    verifier.verifyRequest(leaseRequest(firstBoot).incoming);
    const unsentFromFirstBoot = leaseRequest(firstBoot).incoming;
    for (let restart = 0; restart < 3; restart++) verifier.verifyRequest(leaseRequest(signerFor('db-a')).incoming);
    assert.throws(() => verifier.verifyRequest(unsentFromFirstBoot), { code: 'PGVIP_AUTH_REPLAY', detail: /has since been replaced/ });
  });

  it('keeps replay memory per sender: equal numbers from different members do not collide', () => {
    const verifier = verifierFor('witness');
    verifier.verifyRequest(leaseRequest(signerFor('db-a')).incoming);
    const fromB = signerFor('db-b').signRequest({ to: 'witness', method: 'POST', path: '/v1/lease', body: leaseBody });
    assert.equal(verifier.verifyRequest({ method: 'POST', path: '/v1/lease', headers: fromB.headers, body: leaseBody }).sender, 'db-b');
  });

  it('spends no replay memory on requests that fail their MAC', () => {
    const verifier = verifierFor('witness');
    const { incoming } = leaseRequest(signerFor('db-a'));
    assert.throws(() => verifier.verifyRequest({ ...incoming, body: '{}' }), { code: 'PGVIP_AUTH_BAD_MAC' });
    assert.equal(verifier.verifyRequest(incoming).sender, 'db-a');
  });
});

describe('auth: replies', () => {
  function exchange() {
    const signer = signerFor('db-a');
    const verifier = verifierFor('witness');
    const { signed, incoming } = leaseRequest(signer);
    const verified = verifier.verifyRequest(incoming);
    const body = '{"granted":true}';
    const headers = verifier.signReply(verified, { status: 200, body });
    return { signer, verifier, signed, verified, reply: { request: signed, status: 200, headers, body } };
  }

  it('accepts the reply to its own request', () => {
    const { signer, reply } = exchange();
    assert.deepEqual(signer.verifyReply(reply), { authenticated: true });
    assert.match(reply.headers[AUTH_HEADER], /^v1 cluster=prod sender=witness boot=[0-9a-f]{32} seq=1 mac=[0-9a-f]{64}$/);
  });

  it('refuses a reply whose body or status changed, or that was forged with another key', () => {
    const { signer, reply, verified } = exchange();
    assert.throws(() => signer.verifyReply({ ...reply, body: '{"granted":false}' }), { code: 'PGVIP_AUTH_BAD_MAC' });
    assert.throws(() => signer.verifyReply({ ...reply, status: 409 }), { code: 'PGVIP_AUTH_BAD_MAC' });
    const forger = createVerifier({ self: 'witness', clusters: { [cluster]: { key: generateKey(), members } } });
    const forged = forger.signReply(verified, { status: 200, body: reply.body });
    assert.throws(() => signer.verifyReply({ ...reply, headers: forged }), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses an old reply replayed as the answer to a new request', () => {
    const { signer, reply } = exchange();
    const next = leaseRequest(signer).signed;
    assert.throws(() => signer.verifyReply({ ...reply, request: next }), { code: 'PGVIP_AUTH_REPLAY', detail: /answers request .*\/1, not .*\/2/ });
    // Rewriting the sequence number in the old reply's header does not help: the MAC binds it.
    const rewritten = withField(reply.headers[AUTH_HEADER], 'seq', next.seq);
    assert.throws(() => signer.verifyReply({ ...reply, request: next, headers: { [AUTH_HEADER]: rewritten } }), { code: 'PGVIP_AUTH_BAD_MAC' });
  });

  it('refuses a reply signed by a node other than the one asked', () => {
    const { signer, reply, verified } = exchange();
    const other = createVerifier({ self: 'db-b', clusters: { [cluster]: { key, members } } });
    assert.throws(() => signer.verifyReply({ ...reply, headers: other.signReply(verified, { status: 200, body: reply.body }) }), {
      code: 'PGVIP_AUTH_UNKNOWN_SENDER',
      detail: /signed by db-b, but the request went to witness/,
    });
  });

  it('refuses an unsigned reply, saying the peer may have refused the request', () => {
    const { signer, reply } = exchange();
    assert.throws(() => signer.verifyReply({ ...reply, status: 401, headers: {} }), { code: 'PGVIP_AUTH_MISSING', detail: /HTTP 401/ });
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
    assert.deepEqual(signer.verifyReply({ request: signed, status: 200, headers, body: '{}' }), { authenticated: false });

    const stranger = leaseRequest(createSigner({ cluster, sender: 'db-c', authDisabled: true })).incoming;
    assert.throws(() => verifier.verifyRequest(stranger), { code: 'PGVIP_AUTH_UNKNOWN_SENDER' });
  });

  it('a signing client refuses the unsigned replies of a node with authentication off', () => {
    const signer = signerFor('db-a');
    const { signed } = leaseRequest(signer);
    const headers = { [AUTH_HEADER]: 'none cluster=prod sender=witness' };
    assert.throws(() => signer.verifyReply({ request: signed, status: 200, headers, body: '{}' }), { code: 'PGVIP_AUTH_MISSING', detail: /unsigned/ });
  });
});

describe('auth: message identity and terms', () => {
  it('refuses a message whose envelope names another sender or cluster than its signature', () => {
    const verified = { authenticated: true, cluster, sender: 'db-a', boot: '0'.repeat(32), seq: 1, mac: '0'.repeat(64) } as const;
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
