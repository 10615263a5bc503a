// Goal: a web page cannot steer the witness through a browser on the witness host
// (docs/security.md, The operator API: a no-body POST from a page on another origin switched a
// cluster over, term 2→3, and a DNS-rebinding page could send JSON). In a real Chromium, a page on
// another loopback port tries a no-body POST, a text/plain POST, an HTML form and a JSON fetch; a
// page whose own name resolves to the witness (rebinding) sends JSON as its own origin. The witness
// runs with operatorApi.auth: disabled, the weakest setting, so the browser defences alone are
// tested: every request reaches the witness (it records them) and is refused with its code, and the
// term and maintenance stay as they were. The dashboard, served by the same witness, still works
// with the token.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { PROTOCOL_VERSION, type LeaseRequest } from '@pgvip/shared';
import { registerDashboard } from '../src/dashboard/index.js';
import { agentStatus, eventually, manualClock, startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

const chromiumPath = '/usr/bin/chromium';
/** rebind.test resolves to loopback, as an attacker's DNS name does after it re-pointed it. */
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP rebind.test 127.0.0.1'];
const TOKEN = 'browser-test-token-0123456789abcdef';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly code: string | undefined;
  readonly origin: string | undefined;
  readonly host: string | undefined;
}

/**
 * A witness (c1: db-a primary of term 1, db-b an eligible standby: a switchover would go ahead)
 * with its dashboard, recording every request it answers.
 */
async function witness(t: TestContext, mode: 'disabled' | 'token') {
  const stateDir = tempDir(t);
  const seen: Seen[] = [];
  const extendOperator = (app: FastifyInstance) => {
    registerDashboard(app, { pollMs: 250 });
    app.addHook('onSend', async (req, reply, payload) => {
      let code: string | undefined;
      try {
        code = (JSON.parse(String(payload)) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      seen.push({
        method: req.method,
        url: req.url,
        status: reply.statusCode,
        code,
        origin: req.headers.origin,
        host: req.headers.host,
      });
      return payload;
    });
  };
  const config = witnessConfig({ stateDir, clusters: [{ name: 'c1' }], ...(mode === 'disabled' ? { operatorAuth: 'disabled' as const } : { token: TOKEN }) });
  const daemon = await startDaemon(t, config, { clock: manualClock(), extendOperator });
  const c1 = daemon.runners.get('c1');
  assert.ok(c1);
  c1.poll('db-a', agentStatus('c1', 'db-a'), true);
  c1.poll('db-b', agentStatus('c1', 'db-b'), true);
  const lease: LeaseRequest = { v: PROTOCOL_VERSION, cluster: 'c1', term: 1, from: 'db-a', kind: 'lease-request', seq: 1, lsn: 0x3000060n, timeline: 1, syncStandby: 'db-b' };
  const granted = c1.request(lease);
  assert.ok(granted.kind === 'lease-reply' && granted.granted, JSON.stringify(granted));
  await daemon.operator.listen({ host: '127.0.0.1', port: 0 });
  const port = (daemon.operator.server.address() as { port: number }).port;
  return { daemon, c1, seen, port, url: `http://127.0.0.1:${port}` };
}

/** The attacker's page: a server on another loopback port that serves `html` at /. */
async function attackerSite(t: TestContext, html: string): Promise<string> {
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
}

describe('the operator API in a browser', { timeout: 120_000 }, () => {
  let browser: Browser;
  let profile: string;

  before(async () => {
    profile = mkdtempSync(path.join(tmpdir(), 'pgvip-chromium-'));
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  });
  after(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('a page on another origin cannot switch over or pause failover: no-body POST, text/plain, form, JSON', async (t) => {
    const w = await witness(t, 'disabled');
    const api = `${w.url}/api/v1/clusters/c1`;
    // Given an attacker's page on another loopback port, which tries every way a page can send a POST
    const page = await browser.newPage();
    t.after(() => page.close());
    const site = await attackerSite(
      t,
      `<!doctype html><title>cat pictures</title>
<iframe name="sink" src="about:blank"></iframe>
<form id="f" method="post" action="${api}/switchover" target="sink" enctype="text/plain"><input name='{"to":"db-b","x":"' value='"}'></form>
<script>
  window.results = {};
  const attempt = (name, p) => p.then((r) => (window.results[name] = 'sent (' + r.type + ')'), (e) => (window.results[name] = 'blocked: ' + e.message));
  window.attack = () => Promise.all([
    attempt('no-body', fetch('${api}/switchover', { method: 'POST', mode: 'no-cors' })),
    attempt('text/plain', fetch('${api}/switchover', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"to":"db-b"}' })),
    attempt('form-urlencoded', fetch('${api}/maintenance', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'on=true' })),
    attempt('json', fetch('${api}/maintenance', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"on":true}' })),
  ]).then(() => document.getElementById('f').submit());
</script>`,
    );
    await page.goto(site);
    // When it runs
    await page.evaluate(() => (globalThis as unknown as { attack: () => Promise<void> }).attack());
    const results = await page.evaluate(() => (globalThis as unknown as { results: Record<string, string> }).results);
    // Then the simple requests reached the witness (the browser sent them) and were refused with their codes
    await eventually('the form post reached the witness', () => w.seen.filter((s) => s.method === 'POST').length >= 4);
    const posts = w.seen.filter((s) => s.method === 'POST').map((s) => `${s.url.replace('/api/v1/clusters/c1/', '')} ${s.status} ${s.code}`);
    assert.deepEqual(posts.sort(), ['maintenance 403 PGVIP_OPERATOR_ORIGIN', 'switchover 403 PGVIP_OPERATOR_ORIGIN', 'switchover 403 PGVIP_OPERATOR_ORIGIN', 'switchover 403 PGVIP_OPERATOR_ORIGIN'].sort(), JSON.stringify(w.seen));
    assert.ok(w.seen.filter((s) => s.method === 'POST').every((s) => s.origin === site.replace(/\/$/, '')));
    // And the JSON request never left the browser: its preflight got no CORS grant
    assert.match(results.json ?? '', /^blocked: /);
    assert.deepEqual(w.seen.filter((s) => s.method === 'OPTIONS').map((s) => `${s.status} ${s.code}`), ['403 PGVIP_OPERATOR_ORIGIN']);
    // And the cluster is as it was: term 1, db-a primary, no switchover pending, no maintenance
    assert.deepEqual([w.c1.durable.term, w.c1.durable.primaryOfTerm, w.c1.state.switchover, w.c1.durable.maintenance], [1, 'db-a', null, false]);
    assert.equal((await w.daemon.history.read({ limit: 100 })).filter((e) => e.type === 'operator-command').length, 0);
  });

  it('a DNS-rebinding page, same-origin in the eyes of the browser, is refused by the Host check', async (t) => {
    const w = await witness(t, 'disabled');
    // Given a page at http://rebind.test:<witness port>/, whose name now resolves to 127.0.0.1
    const page = await browser.newPage();
    t.after(() => page.close());
    // (After the rebinding, whatever the page's document came from, its origin is rebind.test and
    // its requests go to the witness: here the document is the witness's own answer.)
    await page.goto(`http://rebind.test:${w.port}/attack`);
    w.seen.length = 0;
    // When it sends JSON to its "own" origin, and tries to read the clusters
    const answers = await page.evaluate(async () => {
      const post = await fetch('/api/v1/clusters/c1/maintenance', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"on":true}' });
      const sw = await fetch('/api/v1/clusters/c1/switchover', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      const read = await fetch('/api/v1/clusters');
      return [post.status, sw.status, read.status, (await read.json()) as { error?: { code?: string } }] as const;
    });
    // Then the witness saw its name in Host and refused all three, answering no data
    assert.deepEqual(answers.slice(0, 3), [421, 421, 421]);
    assert.equal(answers[3].error?.code, 'PGVIP_OPERATOR_HOST');
    // (Chromium retries a request once on 421 Misdirected Request, on a fresh connection: the retry is refused too.)
    assert.deepEqual([...new Set(w.seen.map((s) => `${s.method} ${s.url} ${s.host} ${s.code}`))].filter((s) => s.includes(' /api/')).sort(), [
      `GET /api/v1/clusters rebind.test:${w.port} PGVIP_OPERATOR_HOST`,
      `POST /api/v1/clusters/c1/maintenance rebind.test:${w.port} PGVIP_OPERATOR_HOST`,
      `POST /api/v1/clusters/c1/switchover rebind.test:${w.port} PGVIP_OPERATOR_HOST`,
    ]);
    assert.ok(w.seen.every((s) => s.code === 'PGVIP_OPERATOR_HOST'), JSON.stringify(w.seen));
    assert.deepEqual([w.c1.durable.term, w.c1.state.switchover, w.c1.durable.maintenance], [1, null, false]);
  });

  it('the dashboard served by the witness still works, with the token, by address and by localhost', async (t) => {
    const w = await witness(t, 'token');
    for (const base of [w.url, `http://localhost:${w.port}`]) {
      const page = await browser.newPage();
      t.after(() => page.close());
      page.setDefaultTimeout(10_000);
      // When an operator opens it with the token once in the URL
      await page.goto(`${base}/?token=${TOKEN}`);
      // Then it shows the cluster, read through the guarded API
      await page.getByRole('heading', { name: 'c1', exact: true }).waitFor();
      assert.match(await page.locator('#status').innerText(), /^Live · updated/);
    }
    assert.ok(w.seen.some((s) => s.url === '/api/v1/clusters' && s.status === 200));
  });
});
