// Goal: what deploy/prometheus and deploy/grafana ship works in a real Prometheus toolchain — promtool
// accepts the rules and the example scrape config, the rules' unit tests pass (every alert with a case
// where it fires and one where it stays silent, and a broken alert is caught), and the rules and the
// Grafana dashboard's queries parse and name only metrics the agent and the witness export.
//
// Needs promtool (Debian's `prometheus`; `npm test` installs it when run as root); skipped otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { exportedMetricNames, metricNamesIn } from './promql-names.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const promDir = path.join(repoRoot, 'deploy/prometheus');
const rulesFile = path.join(promDir, 'pgvip-rules.yml');
const unitTests = path.join(promDir, 'tests/pgvip-rules.test.yml');
const dashboardFile = path.join(repoRoot, 'deploy/grafana/pgvip.json');
const promtool = '/usr/bin/promtool';
const skip = existsSync(promtool) ? false : 'promtool is not installed: apt-get install prometheus (npm test does it when run as root)';

/** Prometheus's own series about each target, which the rules may use beside pgvip's. */
const prometheusOwn = ['up'];

interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
}

function promtoolRun(args: readonly string[], cwd = repoRoot): { status: number | null; out: string } {
  const r = spawnSync(promtool, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function rulesOf(file: string): Rule[] {
  const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** Every PromQL expression of the dashboard, with Grafana's variables replaced by what they stand for. */
function dashboardExpressions(): { where: string; expr: string }[] {
  const d = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[]; panels?: unknown[] }[];
    annotations: { list: { name: string; expr?: string }[] };
  };
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  for (const a of d.annotations.list) if (a.expr !== undefined) out.push({ where: `annotation "${a.name}"`, expr: a.expr });
  return out.map(({ where, expr }) => ({ where, expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replaceAll('$__range', '6h') }));
}

/** Writes the expressions as recording rules of a throwaway file and runs `promtool check rules` on it. */
function checkExpressions(dir: string, exprs: readonly string[]): { status: number | null; out: string } {
  const file = path.join(dir, `exprs-${Date.now()}.yml`);
  writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr })) }] }));
  return promtoolRun(['check', 'rules', file]);
}

describe('deploy/prometheus: alert and recording rules', { skip }, () => {
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-prom-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('promtool check rules accepts them', () => {
    const r = promtoolRun(['check', 'rules', rulesFile]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS: \d+ rules found/);
  });

  it('the rules pass their unit tests (promtool test rules)', () => {
    const r = promtoolRun(['test', 'rules', unitTests]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });

  it('every alert has a unit test case where it fires and one where it stays silent', () => {
    const alerts = rulesOf(rulesFile).flatMap((r) => (r.alert === undefined ? [] : [r.alert]));
    const doc = parse(readFileSync(unitTests, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    const fires = new Set(cases.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
    const silent = new Set(cases.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
    for (const name of ['PgvipNoPrimary', 'PgvipFailover', 'PgvipFailoverBlocked', 'PgvipSyncDegraded', 'PgvipVipError', 'PgvipLeaseRenewalsFailing', 'PgvipWitnessUnreachable', 'PgvipReplicationLag', 'PgvipStateWriteErrors']) {
      assert.ok(alerts.includes(name), `docs/monitoring.md promises ${name}`);
    }
    assert.deepEqual(alerts.filter((a) => !fires.has(a)), [], 'alerts without a firing case');
    assert.deepEqual(alerts.filter((a) => !silent.has(a)), [], 'alerts without a silent case');
  });

  it('a broken alert fails its unit test (the tests can fail)', () => {
    // The failover alert made to need two failovers: the "failover" case must now fail.
    cpSync(promDir, path.join(work, 'prometheus'), { recursive: true });
    const copy = path.join(work, 'prometheus/pgvip-rules.yml');
    const text = readFileSync(copy, 'utf8');
    const broken = text.replace('(increase(pgvip_witness_failovers_total[10m])) > 0', '(increase(pgvip_witness_failovers_total[10m])) > 1');
    assert.notEqual(broken, text, 'the mutation applies');
    writeFileSync(copy, broken);
    const r = promtoolRun(['test', 'rules', path.join(work, 'prometheus/tests/pgvip-rules.test.yml')]);
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /name: failover,\s*alertname: PgvipFailover/);
  });

  it('the rules name only metrics pgvip exports, their own records, and up', async () => {
    const exported = await exportedMetricNames();
    const rules = rulesOf(rulesFile);
    const records = new Set(rules.flatMap((r) => (r.record === undefined ? [] : [r.record])));
    const unknown = rules.flatMap((r) => metricNamesIn(r.expr).filter((n) => !exported.has(n) && !records.has(n) && !prometheusOwn.includes(n)).map((n) => `${r.alert ?? r.record}: ${n}`));
    assert.deepEqual(unknown, []);
    // Each recorded name is pgvip's: "pgvip:" + what + operation.
    for (const r of records) assert.match(r, /^pgvip:[a-z0-9_]+:[a-z0-9_]+$/);
  });

  it('docs/monitoring.md explains every alert, and each alert links to its section', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs/monitoring.md'), 'utf8');
    const doc2 = parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: (Rule & { annotations?: { description?: string } })[] }[] };
    for (const r of doc2.groups.flatMap((g) => g.rules)) {
      if (r.alert === undefined) continue;
      assert.ok(doc.includes(`\n### ${r.alert}\n`), `docs/monitoring.md has no section for ${r.alert}`);
      assert.ok(r.annotations?.description?.includes(`docs/monitoring.md#${r.alert.toLowerCase()}`), `${r.alert} links to its section`);
    }
  });

  it('the example scrape config passes promtool check config', () => {
    const token = path.join(work, 'operator.token');
    writeFileSync(token, 'example\n', { mode: 0o600 });
    const cfg = readFileSync(path.join(promDir, 'prometheus.yml'), 'utf8')
      .replace('/etc/prometheus/pgvip-rules.yml', rulesFile)
      .replace('/etc/prometheus/pgvip-operator.token', token);
    writeFileSync(path.join(work, 'prometheus.yml'), cfg);
    const r = promtoolRun(['check', 'config', path.join(work, 'prometheus.yml')]);
    assert.equal(r.status, 0, r.out);
    const jobs = (parse(cfg) as { scrape_configs: { job_name: string }[] }).scrape_configs.map((s) => s.job_name);
    assert.deepEqual(jobs, ['pgvip-agent', 'pgvip-witness'], 'the job names the alerts on up{} expect');
  });
});

describe('deploy/grafana/pgvip.json: the dashboard', { skip }, () => {
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'pgvip-grafana-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('every query of the dashboard parses with promtool', () => {
    const exprs = dashboardExpressions();
    assert.ok(exprs.length >= 15, `only ${exprs.length} queries found`);
    const r = checkExpressions(work, exprs.map((e) => e.expr));
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  });

  it('a query that does not parse is caught (the check can fail)', () => {
    const r = checkExpressions(work, ['sum by (node) (rate(pgvip_agent_checks_failed_total[1m])']);
    assert.notEqual(r.status, 0, r.out);
  });

  it('every query and the cluster variable name only metrics pgvip exports', async () => {
    const exported = await exportedMetricNames();
    const d = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { templating: { list: { name: string; definition: string }[] } };
    const uses = dashboardExpressions().map(({ where, expr }) => ({ where, names: metricNamesIn(expr) }));
    for (const v of d.templating.list) uses.push({ where: `variable $${v.name}`, names: [/^label_values\((\w+),/.exec(v.definition)?.[1] ?? v.definition] });
    const unknown = uses.flatMap((u) => u.names.filter((n) => !exported.has(n)).map((n) => `${u.where}: ${n}`));
    assert.deepEqual(unknown, []);
    // And the names check itself would notice a misspelt metric.
    assert.deepEqual(metricNamesIn('sum by (node) (rate(pgvip_agent_check_failed_total{cluster=~"$cluster"}[1m])) > 0').filter((n) => !exported.has(n)), ['pgvip_agent_check_failed_total']);
    // It shows what the alerts page on: every pgvip metric an alert or recording rule uses. (Not every
    // exported metric: a new one need not wait for a panel.)
    const shown = new Set(uses.flatMap((u) => u.names));
    const alerted = new Set(rulesOf(rulesFile).flatMap((r) => metricNamesIn(r.expr)).filter((n) => n.startsWith('pgvip_')));
    assert.deepEqual([...alerted].filter((n) => !shown.has(n)), [], 'metrics the alerts use that the dashboard does not show');
  });
});
