// `npm run package:deb`: turns a release tarball (scripts/release.mjs) into a Debian package built
// with dpkg-deb, for Debian and Ubuntu database and witness hosts:
//
//   /usr/lib/pgvip/                      the release: packages/*/dist, node_modules, the commit guard
//                                        source, release.json; node/ when the release bundles Node.js
//   /usr/lib/pgvip/bin/run               picks the Node.js runtime (below) and runs an entry point
//   /usr/bin/pgvip, pgvip-agent, pgvip-witness   wrappers around bin/run
//   /lib/systemd/system/pgvip-{agent,witness}.service   deploy/systemd's units, run through the wrappers
//   /usr/share/doc/pgvip/                README, docs/*.md, examples/ (deploy/examples, iam, ...),
//                                        copyright, changelog.Debian.gz
//   maintainer scripts                   postinst: system user pgvip, /etc/pgvip, /var/lib/pgvip;
//                                        never enables or starts a unit. prerm: stops and disables
//                                        the units on remove. postrm: removes /var/lib/pgvip on purge.
//
// Why /usr/lib/pgvip and not /opt: Debian policy keeps packages out of /opt (FHS leaves it to the
// local administrator and to software installed outside the package manager), and architecture-
// dependent private files of a package belong in /usr/lib/<package>. It also means the package and
// a manual deploy/install.sh install (/opt/pgvip, /usr/local) never write the same path.
//
// Which Node.js runs pgvip (bin/run): $PGVIP_NODE when set; else the release's bundled runtime
// (<release>/node/bin/node) when it has one; else `node` on PATH, refused with a clear message when
// it is older than package.json's engines floor. The control file follows: Depends on nodejs only
// when no runtime is bundled.
//
// Usage: node scripts/package-deb.mjs [--release FILE] [--out DIR] [--revision N] [--arch ARCH]
//                                     [--maintainer TEXT] [--compress xz|gzip]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, closeSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync,
  readdirSync, rmSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { parseCommandLine } from './cli-args.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const libDir = '/usr/lib/pgvip';
const units = ['pgvip-agent.service', 'pgvip-witness.service'];

function fail(message) {
  console.error(`package-deb: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr ?? ''}`);
  return r.stdout ?? '';
}

const usage = `usage: npm run package:deb [-- --release FILE] [--out DIR] [--revision N] [--arch amd64|arm64] [--maintainer "NAME <EMAIL>"] [--compress xz|gzip]
  builds pgvip_<version>-<revision>_<arch>.deb from a release tarball with dpkg-deb
  --release     the tarball (default: release/pgvip-<version>.tar.gz; make it with: npm run release)
  --out         where the .deb goes (default: the tarball's directory)
  --revision    the Debian revision, raised for a new package of the same release (default 1)
  --arch        the Debian architecture (default: the bundled Node.js's, else dpkg --print-architecture)
  --maintainer  the control file's Maintainer (default: $DEBFULLNAME <$DEBEMAIL>, else git's user)
  --compress    xz (default, Debian's: smaller) or gzip (several times faster to build)`;

function parseDebArgs(argv) {
  const { values } = parseCommandLine({
    argv,
    usage,
    options: { release: { type: 'string' }, out: { type: 'string' }, revision: { type: 'string' }, arch: { type: 'string' }, maintainer: { type: 'string' }, compress: { type: 'string' } },
  });
  const revision = values.revision ?? '1';
  // Debian revisions may hold more, but a plain number (or 1.2) is all a rebuild needs.
  if (!/^\d+(\.\d+)*$/.test(revision)) fail(`--revision ${JSON.stringify(revision)}: give a number such as 2`);
  if (values.arch !== undefined && !['amd64', 'arm64'].includes(values.arch)) fail(`--arch ${values.arch}: pgvip is packaged for amd64 and arm64`);
  if (values.compress !== undefined && !['xz', 'gzip'].includes(values.compress)) fail(`--compress ${values.compress}: give xz or gzip`);
  return { release: values.release, out: values.out, revision, arch: values.arch, maintainer: values.maintainer, compress: values.compress ?? 'xz' };
}

/** The Node.js floor from an engines range such as ">=20.18" or ">=24": [major, minor]. */
export function engineFloor(range) {
  const m = /^\s*>=\s*v?(\d+)(?:\.(\d+))?(?:\.\d+)?\s*$/.exec(range ?? '');
  if (!m) fail(`package.json engines.node ${JSON.stringify(range)} is not of the form ">=MAJOR[.MINOR]", which bin/run and the control file understand`);
  return [Number(m[1]), Number(m[2] ?? 0)];
}

/** The Debian architecture of an ELF executable, from its e_machine field. */
export function elfArch(file) {
  const head = readFileSync(file).subarray(0, 20);
  if (head.readUInt32BE(0) !== 0x7f454c46) fail(`${file} is not an ELF executable`);
  const machine = head.readUInt16LE(18);
  if (machine === 0x3e) return 'amd64';
  if (machine === 0xb7) return 'arm64';
  return fail(`${file}: unsupported ELF machine 0x${machine.toString(16)}`);
}

/** Semantic version to Debian: a pre-release sorts before its release (1.0.0-rc.1 -> 1.0.0~rc.1). */
export const debianUpstreamVersion = (version) => version.replace('-', '~');

function maintainerFrom(given) {
  if (given !== undefined) return given;
  if (process.env.DEBFULLNAME && process.env.DEBEMAIL) return `${process.env.DEBFULLNAME} <${process.env.DEBEMAIL}>`;
  const r = spawnSync('git', ['log', '-1', '--format=%an <%ae>'], { cwd: repoRoot, encoding: 'utf8' });
  const who = r.status === 0 ? r.stdout.trim() : '';
  if (!/^.+ <[^<>\s]+@[^<>\s]+>$/.test(who)) fail('no maintainer: pass --maintainer "NAME <EMAIL>" or set DEBFULLNAME and DEBEMAIL');
  return who;
}

export function runScript([major, minor], { packageKind = '.deb', installHint = 'apt install nodejs' } = {}) {
  return `#!/bin/sh
# Runs a pgvip entry point (a path under ${libDir}) with a Node.js that pgvip supports:
# $PGVIP_NODE when set, else the runtime bundled in this package, else \`node\` on PATH if it is at
# least ${major}.${minor} (package.json's engines floor). Installed by the pgvip ${packageKind}.
set -e
lib=${libDir}
entry="$1"
shift
if [ -n "\${PGVIP_NODE:-}" ]; then
  node="$PGVIP_NODE"
elif [ -x "$lib/node/bin/node" ]; then
  node="$lib/node/bin/node"
else
  node="$(command -v node || true)"
  if [ -z "$node" ]; then
    echo "pgvip: no Node.js found: this package bundles none, so install Node.js >= ${major}.${minor} (${installHint}) or set PGVIP_NODE to one" >&2
    exit 1
  fi
fi
if [ "$node" != "$lib/node/bin/node" ]; then
  version="$("$node" --version 2>/dev/null | head -n 1 | cut -c1-40 || true)"
  have_major="$(echo "$version" | sed -n 's/^v\\([0-9]*\\)\\..*/\\1/p')"
  have_minor="$(echo "$version" | sed -n 's/^v[0-9]*\\.\\([0-9]*\\)\\..*/\\1/p')"
  if [ -z "$have_major" ] || [ "$have_major" -lt ${major} ] || { [ "$have_major" -eq ${major} ] && [ "$have_minor" -lt ${minor} ]; }; then
    echo "pgvip: $node reports version '\${version:-none}'; pgvip needs Node.js >= ${major}.${minor}: install a newer nodejs or set PGVIP_NODE" >&2
    exit 1
  fi
fi
exec "$node" "$lib/$entry" "$@"
`;
}

export const wrapper = (name, entry, packageKind = '.deb') => `#!/bin/sh
# ${name}: installed by the pgvip ${packageKind}; ${libDir}/bin/run picks the Node.js runtime.
exec ${libDir}/bin/run ${entry} "$@"
`;

/** deploy/systemd's unit with its ExecStart running the wrapper; each rewrite must match once. */
export function packagedUnit(text, name, packageKind = '.deb') {
  const daemon = name.replace(/\.service$/, '');
  const rewrites = [
    [/^ExecStart=(?:\/usr\/bin\/node|\/opt\/pgvip\/current\/node\/bin\/node) \/opt\/pgvip\/current\/packages\/(agent|witness)\/dist\/main\.js /m, `ExecStart=/usr/bin/${daemon} `],
    [/^Documentation=file:\/opt\/pgvip\/current\/docs\//m, 'Documentation=file:/usr/share/doc/pgvip/'],
  ];
  let out = text;
  for (const [pattern, replacement] of rewrites) {
    if (!pattern.test(out)) fail(`deploy/systemd/${name} no longer has a line matching ${pattern}: update scripts/package-deb.mjs`);
    out = out.replace(pattern, replacement);
  }
  return out.replace(/^# Installed by deploy\/install\.sh;/m, `# Installed by the pgvip ${packageKind} (deploy/install.sh installs it elsewhere);`);
}

const postinst = `#!/bin/sh
# pgvip postinst: the system user the witness runs as, the config and state directories. It never
# enables or starts a unit: a host becomes an agent or a witness when its operator says so.
set -e
case "$1" in
  configure)
    if ! getent passwd pgvip >/dev/null; then
      adduser --quiet --system --group --home /var/lib/pgvip --no-create-home --shell /usr/sbin/nologin pgvip
    fi
    # Created when missing only: an operator's owners and modes survive upgrades.
    # /etc/pgvip: configs readable by the daemon's user (pgvip or postgres); secrets are 0600 files.
    [ -d /etc/pgvip ] || install -d -m 0755 -o root -g root /etc/pgvip
    # /var/lib/pgvip: terms, votes, promises. systemd's StateDirectory= hands it to the unit's User=
    # (postgres for an agent) when the unit starts.
    [ -d /var/lib/pgvip ] || install -d -m 0700 -o pgvip -g pgvip /var/lib/pgvip
    if [ -d /run/systemd/system ]; then
      systemctl daemon-reload >/dev/null || true
      # An upgrade restarts a daemon that was running, as pgvip-upgrade does: an old process must
      # not load modules of the new release. Restarting an agent causes no failover.
      if [ -n "$2" ]; then
        systemctl try-restart ${units.join(' ')} || true
      fi
    fi
    ;;
esac
exit 0
`;

const prerm = `#!/bin/sh
# pgvip prerm: on removal, stop and disable the units (an upgrade leaves them to postinst).
set -e
case "$1" in
  remove|deconfigure)
    if [ -d /run/systemd/system ]; then
      systemctl stop ${units.join(' ')} || true
    fi
    if command -v systemctl >/dev/null; then
      systemctl --no-reload disable ${units.join(' ')} >/dev/null 2>&1 || true
    fi
    ;;
esac
exit 0
`;

const postrm = `#!/bin/sh
# pgvip postrm: purge removes the durable state (/var/lib/pgvip) and /etc/pgvip if it is empty.
# The pgvip user stays, as Debian does for system users: files it owns may remain elsewhere, and a
# reused uid would hand them to another account.
set -e
case "$1" in
  remove)
    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
    ;;
  purge)
    rm -rf /var/lib/pgvip
    rmdir /etc/pgvip 2>/dev/null || true
    ;;
esac
exit 0
`;

/** Every regular file under `dir`, relative, sorted; symbolic links are neither listed nor followed. */
function filesUnder(dir, prefix = '') {
  const out = [];
  for (const name of readdirSync(path.join(dir, prefix)).sort()) {
    const rel = path.join(prefix, name);
    const s = lstatSync(path.join(dir, rel));
    if (s.isDirectory()) out.push(...filesUnder(dir, rel));
    else if (s.isFile()) out.push(rel);
  }
  return out;
}

/** Files of the npm packages' own development (lint, VCS and publish settings): no use on a host. */
const devClutter = /^(\.npmignore|\.gitattributes|\.eslintrc(\..+)?)$/;

/**
 * The release's files as Debian wants them: 0755 for scripts (#!) and executables, 0644 for the
 * rest, whatever modes their npm tarballs carried (some ship LICENSE or index.js executable).
 */
export function normalizeModes(dir) {
  for (const rel of filesUnder(dir)) {
    const file = path.join(dir, rel);
    if (devClutter.test(path.basename(rel))) {
      rmSync(file);
      continue;
    }
    const head = Buffer.alloc(4);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    const executable = head.subarray(0, 2).toString('latin1') === '#!' || head.readUInt32BE(0) === 0x7f454c46;
    chmodSync(file, executable ? 0o755 : 0o644);
  }
}

function duKiB(dir) {
  return Number(run('du', ['-s', '-k', '--apparent-size', dir]).split('\t')[0]);
}

export function buildDeb(options) {
  const rootManifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const tarball = path.resolve(options.release ?? path.join(repoRoot, 'release', `pgvip-${rootManifest.version}.tar.gz`));
  if (!existsSync(tarball)) fail(`${tarball}: no such release tarball; build one with: npm run release`);
  const out = path.resolve(options.out ?? path.dirname(tarball));
  mkdirSync(out, { recursive: true });
  const work = mkdtempSync(path.join(out, '.package-deb-'));
  try {
    run('tar', ['-xzf', tarball, '-C', work]);
    const [top, ...more] = readdirSync(work);
    if (top === undefined || more.length > 0) fail(`${tarball}: expected one pgvip-<version>/ directory`);
    const release = path.join(work, top);
    const marker = JSON.parse(readFileSync(path.join(release, 'release.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(path.join(release, 'package.json'), 'utf8'));
    if (marker.name !== 'pgvip') fail(`${tarball}: release.json is not a pgvip release`);
    const floor = engineFloor(manifest.engines?.node);
    const bundledNode = path.join(release, 'node/bin/node');
    const bundled = existsSync(bundledNode);
    const arch = options.arch ?? (bundled ? elfArch(bundledNode) : run('dpkg', ['--print-architecture']).trim());
    if (bundled && elfArch(bundledNode) !== arch) fail(`--arch ${arch}, but the release bundles a Node.js for ${elfArch(bundledNode)}`);
    const version = `${debianUpstreamVersion(marker.version)}-${options.revision}`;
    const maintainer = maintainerFrom(options.maintainer);
    const cliEntry = JSON.parse(readFileSync(path.join(release, 'packages/witness/package.json'), 'utf8')).bin?.pgvip;
    if (typeof cliEntry !== 'string') fail('packages/witness/package.json declares no pgvip bin');

    const pkg = path.join(work, 'pkg');
    const lib = path.join(pkg, libDir);
    const doc = path.join(pkg, 'usr/share/doc/pgvip');
    mkdirSync(path.dirname(lib), { recursive: true });
    mkdirSync(path.join(doc, 'examples'), { recursive: true });
    // The code; docs and deploy/ go to /usr/share/doc (install.sh and pgvip-upgrade manage /opt
    // installs and have no place in a package dpkg manages).
    cpSync(release, lib, { recursive: true, verbatimSymlinks: true, filter: (src) => !['docs', 'deploy', 'README.md'].includes(path.relative(release, src)) });
    normalizeModes(lib);
    mkdirSync(path.join(lib, 'bin'));
    writeFileSync(path.join(lib, 'bin/run'), runScript(floor), { mode: 0o755 });
    if (bundled) {
      // The release's own Node.js is the official upstream build (from the npm registry, checked
      // against tools/node-runtime's lockfile): its zlib, symbols and linkage are upstream's, and
      // libc6 is essential. Scripts with a `node` shebang run on it through bin/run, never through
      // /usr/bin/node, so the package needs no nodejs.
      mkdirSync(path.join(pkg, 'usr/share/lintian/overrides'), { recursive: true });
      writeFileSync(
        path.join(pkg, 'usr/share/lintian/overrides/pgvip'),
        [
          'pgvip: embedded-library zlib [usr/lib/pgvip/node/bin/node]',
          'pgvip: unstripped-binary-or-object [usr/lib/pgvip/node/bin/node]',
          'pgvip: hardening-no-pie [usr/lib/pgvip/node/bin/node]',
          'pgvip: missing-dependency-on-libc needed by usr/lib/pgvip/node/bin/node',
          'pgvip: missing-dep-for-interpreter node (does not satisfy nodejs:any) [usr/lib/pgvip/*]',
          '',
        ].join('\n'),
        { mode: 0o644 },
      );
    }
    mkdirSync(path.join(pkg, 'usr/bin'), { recursive: true });
    const entries = { pgvip: `packages/witness/${cliEntry.replace(/^\.\//, '')}`, 'pgvip-agent': 'packages/agent/dist/main.js', 'pgvip-witness': 'packages/witness/dist/main.js' };
    for (const [name, entry] of Object.entries(entries)) {
      if (!existsSync(path.join(lib, entry))) fail(`the release lacks ${entry}`);
      writeFileSync(path.join(pkg, 'usr/bin', name), wrapper(name, entry), { mode: 0o755 });
    }
    mkdirSync(path.join(pkg, 'lib/systemd/system'), { recursive: true });
    for (const unit of units) {
      writeFileSync(path.join(pkg, 'lib/systemd/system', unit), packagedUnit(readFileSync(path.join(release, 'deploy/systemd', unit), 'utf8'), unit));
    }
    cpSync(path.join(release, 'docs'), doc, { recursive: true });
    cpSync(path.join(release, 'README.md'), path.join(doc, 'README.md'));
    // Examples: the config files, IAM policies and whatever else deploy/ ships for operators to
    // read; not the units (installed above), the /opt installer, or the CDK app (a workstation tool).
    for (const entry of readdirSync(path.join(release, 'deploy'))) {
      const from = path.join(release, 'deploy', entry);
      if (entry === 'examples') cpSync(from, path.join(doc, 'examples'), { recursive: true });
      else if (!['systemd', 'rpm', 'cdk', 'install.sh', 'pgvip-upgrade.sh'].includes(entry)) cpSync(from, path.join(doc, 'examples', entry), { recursive: true });
    }
    writeFileSync(path.join(doc, 'copyright'), `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pgvip
Comment: pgvip declares no license in its package.json yet; ask its authors before redistributing.
 The bundled dependencies under ${libDir}/node_modules carry their own licenses there.

Files: *
Copyright: the pgvip authors
License: none-declared
`);
    const date = run('date', ['-R']).trim();
    const changelog = `pgvip (${version}) unstable; urgency=medium\n\n  * Release ${marker.version}${marker.commit ? ` (commit ${marker.commit})` : ''}.\n\n -- ${maintainer}  ${date}\n`;
    writeFileSync(path.join(doc, 'changelog.Debian.gz'), gzipSync(changelog, { level: 9 }));
    // Root's code, readable by all, writable by none but root, whatever umask built it.
    run('chmod', ['-R', 'u+rwX,go+rX,go-w', pkg]);

    const control = path.join(pkg, 'DEBIAN');
    mkdirSync(control);
    const depends = ['adduser', ...(bundled ? [] : [`nodejs (>= ${floor[0]}.${floor[1]})`])];
    writeFileSync(path.join(control, 'control'), `Package: pgvip
Version: ${version}
Architecture: ${arch}
Maintainer: ${maintainer}
Installed-Size: ${duKiB(pkg)}
Depends: ${depends.join(', ')}
Recommends: iproute2
Suggests: postgresql
Section: database
Priority: optional
Description: quorum-safe failover of PostgreSQL and its VIP on AWS
 pgvip keeps a PostgreSQL primary and its virtual IP (an EC2 secondary IP or a
 route-table entry) on exactly one of two nodes, with a witness as the third
 voter. This package installs the agent (pgvip-agent), the witness
 (pgvip-witness), the operator CLI (pgvip) and their systemd units, which it
 neither enables nor starts.
`);
    for (const [name, text] of [['postinst', postinst], ['prerm', prerm], ['postrm', postrm]]) {
      writeFileSync(path.join(control, name), text);
      chmodSync(path.join(control, name), 0o755);
    }
    const md5sums = filesUnder(pkg).filter((f) => !f.startsWith('DEBIAN/'))
      .map((f) => `${createHash('md5').update(readFileSync(path.join(pkg, f))).digest('hex')}  ${f}\n`).join('');
    writeFileSync(path.join(control, 'md5sums'), md5sums, { mode: 0o644 });

    const deb = path.join(out, `pgvip_${version}_${arch}.deb`);
    // --root-owner-group: every file root:root in the archive, whoever builds it.
    run('dpkg-deb', ['--root-owner-group', `-Z${options.compress ?? 'xz'}`, '--build', pkg, deb]);
    return { deb, version, arch, bundledNode: bundled };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { deb, bundledNode } = buildDeb(parseDebArgs(process.argv.slice(2)));
  console.log(`package-deb: ${path.relative(process.cwd(), deb)}${bundledNode ? ' (with the release\'s Node.js)' : ' (Depends on the system nodejs)'}`);
}
