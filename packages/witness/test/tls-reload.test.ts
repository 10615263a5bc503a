// Goal: SIGHUP's TLS reload on the witness says exactly what each listener serves. The peer listener
// (tls) and the operator API (operatorApi.tls) have files of their own: each is reloaded on its own,
// one whose files fail their checks keeps its old certificate, and the log names that listener alone,
// not "the old ones stay in use" while the other already took its new files. Real certificates from
// pgvip init --tls's code, the real daemon (in-process).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '@pgvip/shared';
import { issueCertificates, type IssuedSet } from '../src/cli/tls-certs.js';
import { startDaemon, tempDir, witnessDocument } from './witness-helpers.js';

const hosts = [{ name: 'witness', addresses: ['127.0.0.1'] }, { name: 'operator', addresses: ['127.0.0.1'] }];

function install(set: IssuedSet, dir: string): void {
  writeFileSync(path.join(dir, 'ca.crt'), set.caCert);
  for (const h of set.hosts) {
    writeFileSync(path.join(dir, `${h.name}.crt`), h.cert);
    writeFileSync(path.join(dir, `${h.name}.key`), h.key, { mode: 0o600 });
  }
}

test('a listener whose files fail on reload keeps its certificate; the other takes its new one; the log says which', async (t) => {
  const dir = tempDir(t);
  const [first, renewed] = await Promise.all([issueCertificates(hosts, { cluster: 'c1' }), issueCertificates(hosts, { cluster: 'c1' })]);
  install(first, dir);
  const doc = witnessDocument({ stateDir: dir, clusters: [{ name: 'c1' }] }) as {
    operatorApi: Record<string, unknown>;
  };
  const file = (name: string) => path.join(dir, name);
  const config = parseConfigText(JSON.stringify({
    ...doc,
    tls: { certFile: file('witness.crt'), keyFile: file('witness.key'), caFile: file('ca.crt') },
    operatorApi: { ...doc.operatorApi, tls: { certFile: file('operator.crt'), keyFile: file('operator.key') } },
  }), 'witness', 'witness.yaml');
  const daemon = await startDaemon(t, config);
  const errors = () => daemon.lines.filter((l) => l.level === 50).map((l) => l.msg);

  // The peers' renewal is good; the operator's certificate file was left half written.
  install(renewed, dir);
  writeFileSync(file('operator.crt'), '-----BEGIN CERTIFICATE-----\ntruncated');
  const [peer, operator] = await daemon.reloadTls();
  assert.ok(peer?.ok && peer.field === 'tls', JSON.stringify(peer));
  const renewedPeer = new X509Certificate(renewed.hosts.find((h) => h.name === 'witness')!.cert);
  assert.equal(peer.material.fingerprint256, renewedPeer.fingerprint256, 'the peer listener serves its renewed certificate');
  assert.ok(operator !== undefined && !operator.ok && operator.field === 'operatorApi.tls');
  assert.ok(daemon.lines.some((l) => l.msg === 'TLS files of tls reloaded'));
  const [said, ...more] = errors();
  assert.deepEqual(more, []);
  assert.match(said ?? '', /^SIGHUP: TLS files of operatorApi\.tls not reloaded, its listener keeps serving the certificate it had: /);

  // The other way round: a bad peer key does not hold back the operator's renewal.
  install(renewed, dir);
  writeFileSync(file('witness.key'), 'not a key', { mode: 0o600 });
  const again = await daemon.reloadTls();
  assert.deepEqual(again.map((o) => [o.field, o.ok]), [['tls', false], ['operatorApi.tls', true]]);
  assert.match(errors().at(-1) ?? '', /^SIGHUP: TLS files of tls not reloaded, its listener keeps serving the certificate it had: /);
  assert.ok(!daemon.lines.some((l) => /old ones stay in use/.test(String(l.msg))));
});
