// Goal: a person looking at the dashboard sees every cluster — nodes, roles, lag, term, lease, the
// VIP holder, the latest events — kept up to date without reloading; maintenance as a banner that
// cannot be missed; a clear "witness unreachable / stale since" when the API stops answering; and
// a token field when the API needs one. Driven through a real browser (Debian's chromium).
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { dashboardPage, defaultDashboardPollMs, registerDashboard } from '../src/dashboard/index.js';
import { billingCluster, buildFakeOperatorApi, fourNodes, mainCluster, type FakeApiOptions, type FakeOperatorApi } from './fake-operator-api.js';
import { repoRoot } from './cli-helpers.js';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Faster than the default 2 s, so the test sees several polls in a few seconds. */
const pollMs = 250;
/** How long a change may take to show: a poll interval plus slack for a loaded machine. */
const visibleWithinMs = 5_000;

async function serve(options: FakeApiOptions = {}): Promise<FakeOperatorApi & { url: string }> {
  const api = buildFakeOperatorApi(options);
  registerDashboard(api.app, { pollMs });
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = api.app.server.address() as { port: number };
  return Object.assign(api, { url: `http://127.0.0.1:${port}` });
}

describe('witness dashboard in a browser', { timeout: 120_000 }, () => {
  let context: BrowserContext;
  let profile: string;
  const servers: FakeOperatorApi[] = [];

  before(async () => {
    profile = mkdtempSync(path.join(tmpdir(), 'pgvip-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      args: chromiumArgs,
      headless: true,
      timezoneId: 'UTC',
      viewport: { width: 1280, height: 860 },
    });
  });
  after(async () => {
    await context?.close();
    await Promise.all(servers.map((s) => s.app.close()));
    rmSync(profile, { recursive: true, force: true });
  });

  async function open(api: FakeOperatorApi & { url: string }, pathAndQuery = '/'): Promise<{ page: Page; requests: string[] }> {
    servers.push(api);
    const page = await context.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.setDefaultTimeout(visibleWithinMs);
    const res = await page.goto(`${api.url}${pathAndQuery}`);
    assert.equal(res?.status(), 200);
    return { page, requests };
  }

  const row = (page: Page, cluster: string, node: string) => page.locator(`section[data-cluster="${cluster}"] tr[data-node="${node}"]`);
  const cells = async (page: Page, cluster: string, node: string) => (await row(page, cluster, node).locator('td').allInnerTexts()).map((t) => t.trim());

  it('shows every cluster, updates itself, shouts maintenance, and says when the witness is unreachable', async () => {
    const api = await serve({ clusters: [mainCluster(), billingCluster()] });
    const { page, requests } = await open(api);

    // What a person sees first: each cluster by name, its primary and VIP holder, node by node.
    await page.getByRole('heading', { name: 'main', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'billing', exact: true }).waitFor();
    assert.deepEqual(await cells(page, 'main', 'db-a'), ['◆ VIP', 'db-a', 'primary', '7', '2.4 s', '-', '3', 'running', '-', '0.2 s ago']);
    assert.deepEqual(await cells(page, 'main', 'db-b'), ['', 'db-b', 'standby', '7', '-', '1.5 MiB', '3', 'streaming', 'eligible', '0.2 s ago']);
    assert.deepEqual(await cells(page, 'billing', 'billing-a'), ['', 'billing-a', 'unknown', '2', '-', '-', '-', 'agent down, pg up', 'blocked: agent unreachable from the witness', '42 s ago']);
    const facts = await page.locator('section[data-cluster="main"] .facts').innerText();
    assert.match(facts, /term 7/);
    assert.match(facts, /VIP 198\.18\.1\.100 \(secondary-ip\) on db-a/);
    assert.match(await page.locator('#status').innerText(), /^Live · updated \d\d:\d\d:\d\d$/);
    // Events, newest first.
    const events = page.locator('section[data-cluster="main"] ol.events li');
    assert.equal(await events.nth(0).innerText(), '2025-06-01 11:58:00 vip-moved db-a · term 7 — VIP 198.18.1.100 moved to db-a and verified');
    assert.equal(await events.nth(1).innerText(), '2025-06-01 11:57:00 switchover db-a · term 7 — switchover to db-a completed in 640 ms');
    assert.equal(await page.getByText('Maintenance mode', { exact: false }).count(), 0);

    // The witness changes its mind; the page follows without a reload.
    api.clusters[0] = { ...api.clusters[0]!, maintenance: true, events: [{ id: 14, at: new Date().toISOString(), cluster: 'main', type: 'maintenance', node: null, term: 7, detail: 'maintenance on for main by alice' }, ...api.clusters[0]!.events] };
    const banner = page.locator('section[data-cluster="main"] .banner-maintenance');
    await banner.waitFor();
    assert.match(await banner.innerText(), /^MAINTENANCE MODE: AUTOMATIC FAILOVER IS PAUSED FOR MAIN\nA failed primary will not be replaced\. Resume with: pgvip maintenance off --cluster main$/);
    assert.equal(await banner.getAttribute('role'), 'alert');
    await page.getByText('maintenance on for main by alice').waitFor();
    assert.equal(await page.locator('section[data-cluster="billing"] .banner-maintenance').count(), 0);
    // A cluster without a primary gets its own alarm.
    api.clusters[1] = { ...api.clusters[1]!, primary: null };
    await page.locator('section[data-cluster="billing"] .banner-alarm').getByText('No primary: no node holds write authority (term 3)').waitFor();
    assert.match(await page.locator('section[data-cluster="billing"] .facts').innerText(), /VIP 198\.19\.0\.10 \(route-table\) on nobody/);
    api.clusters[1] = billingCluster();
    await page.locator('section[data-cluster="billing"] .banner-alarm').waitFor({ state: 'detached' });
    // A cluster on etcd: its facts say what the observing witness sees there, and when etcd is gone.
    const members = [true, true, false].map((ok, i) => ({ endpoint: `https://10.0.${i}.21:2379`, ok, leader: i === 0, version: ok ? '3.5.17' : null, rttMs: ok ? 1.2 : null, why: ok ? null : 'status: etcd did not answer within 400 ms' }));
    const quorum = { backend: 'etcd' as const, reachable: true, why: null, lastReadMsAgo: 120, leaderKey: { node: 'billing-b', term: 3, leaseTtlS: 2 }, members, badKeys: [] };
    api.clusters[1] = { ...billingCluster(), quorum };
    const billingFacts = page.locator('section[data-cluster="billing"] .facts');
    await billingFacts.getByText('billing-b, term 3, TTL 2 s').waitFor();
    assert.match(await billingFacts.innerText(), /quorum etcd.*leader key billing-b, term 3, TTL 2 s.*etcd members 2\/3 answering/s);
    api.clusters[1] = { ...billingCluster(), quorum: { ...quorum, reachable: false, why: 'read: etcd did not answer within 400 ms' } };
    await billingFacts.getByText('etcd UNREACHABLE (read: etcd did not answer within 400 ms)').waitFor();
    api.clusters[1] = billingCluster();

    // The picture for docs/witness-dashboard.md: written to docs/ when PGVIP_UPDATE_DOCS is set.
    const shot = path.join(profile, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 20_000, 'a real screenshot');
    assert.deepEqual([...readFileSync(shot).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    if (process.env.PGVIP_UPDATE_DOCS === '1') copyFileSync(shot, path.join(repoRoot, 'docs/dashboard.png'));

    // An event's detail comes from the cluster: it is shown as text, never run as markup.
    const hostile = { id: 15, at: '2025-06-01T12:01:00.000Z', cluster: 'main', type: 'operator-command', node: null, term: 7, detail: '<img src=x onerror="document.title=1"> by mallory' };
    api.clusters[0] = { ...api.clusters[0]!, events: [hostile, ...api.clusters[0]!.events] };
    await page.getByText('by mallory').waitFor();
    assert.equal(await events.nth(0).innerText(), '2025-06-01 12:01:00 operator-command term 7 — <img src=x onerror="document.title=1"> by mallory');
    assert.equal(await page.locator('section img').count(), 0);
    assert.equal(await page.title(), 'pgvip witness');

    // The witness stops answering: the page says so, and since when its data is stale.
    const lastLive = (await page.locator('#status').innerText()).replace(/^Live · updated /, '');
    api.override = { status: 503, body: { error: { code: 'PGVIP_INTERNAL', message: 'closing' } } };
    await page.locator('#status.stale').waitFor();
    const stale = await page.locator('#status').innerText();
    assert.match(stale, /^Witness unreachable — stale since \d\d:\d\d:\d\d \(HTTP 503\)$/);
    // Since the last good answer: the one shown before, or a poll that was already under way.
    const since = /stale since (\d\d:\d\d:\d\d)/.exec(stale)![1]!;
    assert.ok(since >= lastLive, `stale since ${since}, last update shown ${lastLive}`);
    assert.equal(await page.evaluate('document.body.classList.contains("stale")'), true);
    // The last known state stays on screen, marked stale, rather than vanishing.
    assert.equal(await row(page, 'main', 'db-a').count(), 1);
    api.override = 'hang';
    await page.getByText(/stale since \d\d:\d\d:\d\d \(no answer within \d+ ms\)/).waitFor();
    api.override = undefined;
    await page.locator('#status.live').waitFor();
    assert.equal(await page.evaluate('document.body.classList.contains("stale")'), false);

    // Everything the page fetched came from its own origin: no CDN, no fonts, no beacons.
    assert.ok(requests.length > 3);
    for (const url of requests) assert.ok(url.startsWith(`${api.url}/`), `external request: ${url}`);
    assert.ok(requests.some((u) => u === `${api.url}/api/v1/clusters`));
    await page.close();
  });

  it('with more than two nodes shows each node\'s LSN, sync membership and priority, the record as ANY k, and an election', async () => {
    const api = await serve({ clusters: [fourNodes()] });
    const { page } = await open(api);
    await page.getByRole('heading', { name: 'main', exact: true }).waitFor();
    // (the style sheet shows the headers in capitals)
    const head = (await page.locator('section[data-cluster="main"] th').allTextContents()).map((t) => t.trim());
    assert.deepEqual(head, ['VIP', 'Node', 'Role', 'Term', 'Lease', 'LSN', 'Lag', 'Timeline', 'Sync', 'Priority', 'State', 'Promotion', 'Last seen']);
    assert.deepEqual(await cells(page, 'main', 'db-c'), ['', 'db-c', 'standby', '7', '-', '0/3000100', '256 B', '3', 'member', '5', 'streaming', 'eligible', '0.2 s ago']);
    assert.deepEqual((await cells(page, 'main', 'db-r')).slice(8, 12), ['async', '0', 'streaming', 'never (noFailover)']);
    const facts = page.locator('section[data-cluster="main"] .facts');
    assert.match(await facts.innerText(), /sync record ANY 1 \(db-b, db-c\)/);
    // An election: the positions, and the standbys that withdrew.
    const base = fourNodes();
    api.clusters[0] = fourNodes({
      nodes: base.nodes.map((n) => (n.node === 'db-b' ? { ...n, withdrawn: true } : n)),
      quorum: { ...base.quorum!, positions: [{ node: 'db-b', term: 7, timeline: 3, flushLsn: '0/3000100', eligible: true }] },
    });
    await facts.getByText('db-b 0/3000100 (timeline 3)').waitFor();
    assert.match(await facts.innerText(), /election under way: final positions db-b 0\/3000100 \(timeline 3\)/);
    assert.equal((await cells(page, 'main', 'db-b'))[10], 'withdrawn (election)');
    await page.close();
  });

  it('asks for the operator token when the API answers 401, and takes it once from ?token=', async () => {
    const token = 'dashboard-token-42';
    const api = await serve({ token });
    const { page } = await open(api);
    const field = page.getByLabel('Operator token');
    await field.waitFor();
    assert.equal(await page.locator('#status').innerText(), 'Token required');
    await field.fill('wrong');
    await page.getByRole('button', { name: 'Show clusters' }).click();
    await page.getByText('That token was not accepted.').waitFor();
    await field.fill(token);
    await page.getByRole('button', { name: 'Show clusters' }).click();
    await page.getByRole('heading', { name: 'main', exact: true }).waitFor();
    assert.equal(await page.locator('#login').isHidden(), true);
    assert.ok(api.requests.some((r) => r.authorization === `Bearer ${token}`));
    await page.close();

    // A link with the token: used, then gone from the address bar (and so from history).
    const linked = await open(api, `/?token=${token}`);
    await linked.page.getByRole('heading', { name: 'main', exact: true }).waitFor();
    assert.equal(linked.page.url(), `${api.url}/`);
    await linked.page.close();
  });

  it('serves a self-contained page locked down by its Content-Security-Policy, polling every 2 s by default', async () => {
    const { html, headers } = dashboardPage();
    assert.equal(defaultDashboardPollMs, 2_000);
    assert.match(html, /<body data-poll-ms="2000">/);
    assert.doesNotMatch(html, /<(script|link)[^>]+(src|href)="(https?:)?\/\//, 'no external script or stylesheet');
    assert.doesNotMatch(html, /https?:\/\//, 'no absolute URL at all');
    assert.match(headers['content-security-policy']!, /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'; connect-src 'self'; img-src data:; /);
    assert.equal(headers['referrer-policy'], 'no-referrer');
    const api = buildFakeOperatorApi({ token: 'secret' });
    registerDashboard(api.app);
    try {
      // The page itself is served without a token: it holds no data.
      const res = await api.app.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(res.body, html);
    } finally {
      await api.app.close();
    }
  });
});
