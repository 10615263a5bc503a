// Installs the Debian packages a test run needs, when running as root; otherwise says what is missing.
// Each entry maps a test-file path fragment to the commands it needs and the package providing them.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ensureCommitGuard, pgServerHeader } from './commit-guard.mjs';

const needs = [
  { match: 'test/ec2-emulator', check: '/usr/bin/aws', pkg: 'awscli' },
  { match: 'postgres', check: '/usr/lib/postgresql/15/bin/pg_ctl', pkg: 'postgresql-15' },
  { match: 'vip', check: '/usr/sbin/ip', pkg: 'iproute2' },
  { match: 'test/deploy', check: '/usr/bin/systemd-analyze', pkg: 'systemd' },
  { match: 'test/deploy', check: '/usr/bin/shellcheck', pkg: 'shellcheck' },
  // rpmbuild and rpm for the Amazon Linux package (scripts/package-rpm.mjs); rootOnly: without it the test
  // skips itself.
  { match: 'test/deploy/rpm', check: '/usr/bin/rpmbuild', pkg: 'rpm', rootOnly: true },
  // promtool checks and unit-tests deploy/prometheus and the Grafana dashboard's queries; the lab runs
  // a real Prometheus server. rootOnly: without it those tests skip themselves with a message.
  { match: 'test/deploy/prometheus', check: '/usr/bin/promtool', pkg: 'prometheus', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/prometheus', pkg: 'prometheus', rootOnly: true },
  // The witness dashboard and operator API tests drive a real browser; the CLI test answers a prompt on a pty.
  { match: 'dashboard', check: '/usr/bin/chromium', pkg: 'chromium' },
  { match: 'operator-api-browser', check: '/usr/bin/chromium', pkg: 'chromium' },
  { match: 'cli-commands', check: '/usr/bin/script', pkg: 'bsdutils' },
  // The network-namespace lab (test/lab): real PostgreSQL, nftables faults, libfaketime clock jumps,
  // ping and curl for the baseline shell loop, the AWS CLI the baseline calls. rootOnly: the lab
  // needs root and skips itself without it, so a non-root run does not need these.
  { match: 'test/lab', check: '/usr/sbin/ip', pkg: 'iproute2', rootOnly: true },
  { match: 'test/lab', check: '/usr/lib/postgresql/15/bin/postgres', pkg: 'postgresql-15', rootOnly: true },
  { match: 'test/lab', check: '/usr/sbin/nft', pkg: 'nftables', rootOnly: true },
  { match: 'test/lab', check: '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', pkg: 'libfaketime', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/ping', pkg: 'iputils-ping', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/curl', pkg: 'curl', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/aws', pkg: 'awscli', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/setpriv', pkg: 'util-linux', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/python3', pkg: 'python3', rootOnly: true },
  // etcd (Debian's etcd-server and etcd-client, 3.4): the lab runs a three-member etcd on db-a, db-b and the
  // witness host (test/lab/etcd.ts: the Patroni anchor's DCS and pgvip's etcd backend), and tests whose
  // file name says etcd (pgvip doctor's etcd checks, the etcd adapter) start their own members on
  // loopback. rootOnly: without root those tests skip themselves and say how to install it.
  { match: 'test/lab', check: '/usr/bin/etcd', pkg: 'etcd-server', rootOnly: true },
  { match: 'test/lab', check: '/usr/bin/etcdctl', pkg: 'etcd-client', rootOnly: true },
  { match: 'etcd', check: '/usr/bin/etcd', pkg: 'etcd-server', rootOnly: true },
  { match: 'etcd', check: '/usr/bin/etcdctl', pkg: 'etcd-client', rootOnly: true },
  // The anchors (test/lab/anchors): other HA tools measured in the same lab, from Debian's packages.
  // Each is installed only when a bench asks for it (its directory is in the list of files).
  { match: 'test/lab/anchors/patroni', check: '/usr/bin/patroni', pkg: 'patroni', rootOnly: true },
  // pg_auto_failover: pg_autoctl, the monitor's extension, and psycopg2 for the VIP hook (it LISTENs).
  { match: 'test/lab/anchors/pg-auto-failover', check: '/usr/bin/pg_autoctl', pkg: 'pg-auto-failover-cli', rootOnly: true },
  {
    match: 'test/lab/anchors/pg-auto-failover',
    check: '/usr/lib/postgresql/15/lib/pgautofailover.so',
    pkg: 'postgresql-15-auto-failover',
    rootOnly: true,
  },
  {
    match: 'test/lab/anchors/pg-auto-failover',
    check: '/usr/lib/python3/dist-packages/psycopg2',
    pkg: 'python3-psycopg2',
    rootOnly: true,
  },
  // repmgr: the repmgr and repmgrd binaries and the repmgr extension for PostgreSQL 15.
  { match: 'test/lab/anchors/repmgr', check: '/usr/lib/postgresql/15/bin/repmgrd', pkg: 'postgresql-15-repmgr', rootOnly: true },
  { match: 'test/lab/anchors/repmgr', check: '/usr/share/doc/repmgr', pkg: 'repmgr', rootOnly: true },
  // pgvip_commit_guard, the PostgreSQL extension the agent arms with its lease, is built from source
  // with PGXS (scripts/commit-guard.mjs) and installed into PostgreSQL's directories, so only root
  // builds it; the PostgreSQL tests and the lab load it.
  { match: 'postgres', check: pgServerHeader, pkg: 'postgresql-server-dev-15', rootOnly: true, commitGuard: true },
  { match: 'commit-guard', check: pgServerHeader, pkg: 'postgresql-server-dev-15', rootOnly: true, commitGuard: true },
  { match: 'test/lab', check: pgServerHeader, pkg: 'postgresql-server-dev-15', rootOnly: true, commitGuard: true },
];

export function ensureSystemDeps(files) {
  installPackages(files);
  const root = process.getuid?.() === 0;
  if (root && needs.some((n) => n.commitGuard && files.some((f) => f.includes(n.match)))) ensureCommitGuard();
}

function installPackages(files) {
  const missing = new Set();
  const root = process.getuid?.() === 0;
  for (const n of needs) {
    if (n.rootOnly && !root) continue;
    if (files.some((f) => f.includes(n.match)) && !existsSync(n.check)) missing.add(n.pkg);
  }
  if (missing.size === 0) return;
  const pkgs = [...missing];
  if (process.getuid?.() !== 0) {
    console.error(`tests need Debian packages: ${pkgs.join(' ')}. Run as root, or: sudo apt-get install -y ${pkgs.join(' ')}`);
    process.exit(1);
  }
  console.error(`bootstrap: apt-get install ${pkgs.join(' ')} ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`apt-get install ${pkgs.join(' ')} failed`);
    process.exit(1);
  }
}
