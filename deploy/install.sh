#!/usr/bin/env bash
# Installs the pgvip release this script belongs to (the directory above deploy/) on this host.
#
#   sudo ./pgvip-<version>/deploy/install.sh --role agent     # on db-a and db-b
#   sudo ./pgvip-<version>/deploy/install.sh --role witness   # on the witness
#
# What it does, each step only when needed, so running it again changes nothing:
#   - service user: the witness runs as a new system user `pgvip`; the agent runs as the PostgreSQL
#     OS user (default postgres, which must exist already) -- see deploy/systemd/pgvip-agent.service
#   - /opt/pgvip/<version>   the release, root-owned and read-only to the daemons
#   - /opt/pgvip/current     symlink to the release in use, created on the first install only
#   - /etc/pgvip             config directory (root:<service group> 0750) with a skeleton config
#                            copied from deploy/examples, never overwritten; on the witness also
#                            operator.token, the operator API's token (pgvip 0600, random, made once)
#   - /var/lib/pgvip         durable state (<service user> 0700)
#   - the systemd unit, enabled but NOT started or restarted: install.sh never restarts a running
#     daemon. Switching a running host to another release is pgvip-upgrade's job (docs/runbook.md).
#   - /usr/local/sbin/pgvip-upgrade, and the operator CLI /usr/local/bin/pgvip (doctor, status, ...)
#
# Options:
#   --role agent|witness   required
#   --pg-user NAME         agent: the OS user that owns PGDATA and runs PostgreSQL (default postgres)
#   --node PATH            a Node.js (>= 24) of the host's for the units to run instead of the one
#                          inside the release (default: bundled, the release's node/bin/node)
#   --switch               also point /opt/pgvip/current at this release (used by pgvip-upgrade)
#   --no-enable            do not enable the unit
# Environment:
#   PGVIP_ROOT             prefix for every path written (default /). With another prefix nothing
#                          outside it is touched: users go into $PGVIP_ROOT/etc/passwd
#                          (useradd --prefix), the unit is enabled offline (systemctl --root), and no
#                          daemon is reloaded. Used by the tests and for building machine images.
set -euo pipefail

die() {
  echo "install.sh: $*" >&2
  exit 1
}
note() { echo "install.sh: $*"; }

role=""
pg_user="postgres"
node_bin="bundled"
switch_current=0
enable_unit=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --role) role="${2:-}"; shift 2 ;;
    --pg-user) pg_user="${2:-}"; shift 2 ;;
    --node) node_bin="${2:-}"; shift 2 ;;
    --switch) switch_current=1; shift ;;
    --no-enable) enable_unit=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$role" == agent || "$role" == witness ]] || die "--role agent|witness is required"
[[ "$pg_user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--pg-user '$pg_user' is not a user name"
[[ "$(id -u)" -eq 0 ]] || die "run as root (it creates users and root-owned directories)"

root="${PGVIP_ROOT:-/}"
[[ "$root" == /* ]] || die "PGVIP_ROOT must be an absolute path, got '$root'"
root="${root%/}"            # "" for the real system, so "$root/etc" is always right
release="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# ---- the release and Node.js ----
for f in release.json package.json packages/agent/dist packages/witness/dist node_modules deploy/systemd; do
  [[ -e "$release/$f" ]] || die "$release is not a pgvip release (no $f); build one with: npm run release"
done
# The units run the Node.js inside the current release (node/bin/node, the build the release was
# tested with), so the host needs none of its own and each release brings the runtime it was built
# for; --node PATH names the host's own instead. $node_run is what this script runs itself.
if [[ -z "$node_bin" || "$node_bin" == bundled ]]; then
  node_bin=bundled
  node_run="$release/node/bin/node"
  node_unit="/opt/pgvip/current/node/bin/node"
  [[ -x "$node_run" ]] || die "this release carries no Node.js ($node_run is missing): pass --node PATH to a Node.js >= 24"
else
  node_run="$node_bin"
  node_unit="$node_bin"
  [[ -x "$node_bin" ]] || die "Node.js not found at $node_bin; install Node.js >= 24, pass another --node PATH, or leave --node out to use the release's own"
fi
# shellcheck disable=SC2016 # JavaScript, not shell: ${...} is a template literal
"$node_run" -e '
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) { console.error(`Node.js ${process.version} is too old: pgvip needs >= 24`); process.exit(1); }
' || die "$node_run is not a usable Node.js (leave --node out to use the release's own)"
version="$("$node_run" -p 'require(process.argv[1]).version' "$release/release.json")"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "release version '$version' is not a semantic version"

# ---- users (looked up in $root's passwd, so a prefix never consults the real system) ----
passwd_entry() {
  if [[ -z "$root" ]]; then getent passwd "$1" || true; else grep -E "^$1:" "$root/etc/passwd" 2>/dev/null || true; fi
}
if [[ "$role" == witness ]]; then
  service_user=pgvip
  if [[ -z "$(passwd_entry pgvip)" ]]; then
    prefix_args=()
    if [[ -n "$root" ]]; then prefix_args=(--prefix "$root"); fi
    useradd "${prefix_args[@]}" --system --user-group --home-dir /var/lib/pgvip --no-create-home \
      --shell /usr/sbin/nologin --comment "pgvip witness" pgvip
    note "created system user pgvip"
  fi
else
  service_user="$pg_user"
  [[ -n "$(passwd_entry "$pg_user")" ]] || die "user $pg_user does not exist: install PostgreSQL first, or pass --pg-user with the OS user that owns PGDATA"
fi
entry="$(passwd_entry "$service_user")"
uid="$(cut -d: -f3 <<<"$entry")"
gid="$(cut -d: -f4 <<<"$entry")"

# ---- directories ----
install -d -m 0755 -o 0 -g 0 "$root/opt/pgvip"
install -d -m 0750 -o 0 -g "$gid" "$root/etc/pgvip"
install -d -m 0700 -o "$uid" -g "$gid" "$root/var/lib/pgvip"

# ---- the release: copied whole into a temporary name, then renamed, so a version directory is
# either complete or absent; versions are immutable once installed ----
target="$root/opt/pgvip/$version"
if [[ "$(cd "$target" 2>/dev/null && pwd -P)" == "$release" ]]; then
  : # running the installed copy's own install.sh
elif [[ -e "$target" ]]; then
  note "release $version is already in $target"
else
  staging="$(mktemp -d "$root/opt/pgvip/.install-$version.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  # Code is root's (cp without preserving ownership makes it the copier's): the daemons may read
  # and run it, never change it, whatever umask the release was unpacked with.
  cp -R -P --preserve=mode,timestamps,links "$release/." "$staging/"
  chmod -R u+rwX,go+rX,go-w "$staging"
  mv -T "$staging" "$target"
  trap - EXIT
  note "installed release $version in $target"
fi

current="$root/opt/pgvip/current"
if [[ ! -L "$current" ]]; then
  if [[ -e "$current" ]]; then die "$current exists and is not a symlink; move it away"; fi
  ln -s "$version" "$current"
  note "current release: $version"
elif [[ "$(readlink "$current")" != "$version" ]]; then
  if [[ $switch_current -eq 1 ]]; then
    # Atomic: a new link under a temporary name renamed over the old one, never a moment without it.
    ln -sfn "$version" "$current.new"
    mv -T "$current.new" "$current"
    note "current release: $version"
  else
    note "current release stays $(readlink "$current"); switch with: pgvip-upgrade $version"
  fi
fi

# ---- config skeleton: copied once, never overwritten ----
config="$root/etc/pgvip/$role.yaml"
if [[ ! -e "$config" ]]; then
  example="$release/deploy/examples/$([[ $role == agent ]] && echo agent-db-a.yaml || echo witness.yaml)"
  install -m 0640 -o 0 -g "$gid" "$example" "$config"
  note "wrote $config from $(basename "$example"): edit it before the first start"
fi

# ---- the operator API token (witness): made once, never overwritten, never printed ----
# The witness refuses to start without it (operatorApi.tokenFile); the example config names it.
if [[ "$role" == witness ]]; then
  token_file="$root/etc/pgvip/operator.token"
  if [[ ! -e "$token_file" ]]; then
    token_new="$(mktemp "$root/etc/pgvip/.operator.token.XXXXXX")" # mode 0600 from the start
    "$node_run" -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex") + "\n")' >"$token_new"
    chown "$uid:$gid" "$token_new"
    mv -T "$token_new" "$token_file"
    note "created the operator API token $token_file (0600, owned by $service_user): the CLI reads it with --token-file"
  fi
fi

# Remember the install-time choices, so pgvip-upgrade installs the next release the same way.
install_env="$root/etc/pgvip/install.env"
printf 'PGVIP_ROLE=%s\nPGVIP_PG_USER=%s\nPGVIP_NODE=%s\n' "$role" "$pg_user" "$node_bin" >"$install_env.new"
chmod 0644 "$install_env.new"
mv -f "$install_env.new" "$install_env"

# ---- systemd unit ----
unit="pgvip-$role.service"
unit_path="$root/etc/systemd/system/$unit"
install -d -m 0755 "$root/etc/systemd/system"
# The shipped units name the release's Node.js and User=postgres; only those two lines are adapted.
substitutions=(-e "s#^ExecStart=/opt/pgvip/current/node/bin/node #ExecStart=$node_unit #")
if [[ "$role" == agent ]]; then substitutions+=(-e "s#^User=postgres\$#User=$pg_user#"); fi
rendered="$(sed "${substitutions[@]}" "$release/deploy/systemd/$unit")"
unit_changed=0
if [[ ! -f "$unit_path" ]] || [[ "$(cat "$unit_path")" != "$rendered" ]]; then
  printf '%s\n' "$rendered" >"$unit_path.new"
  chmod 0644 "$unit_path.new"
  mv -f "$unit_path.new" "$unit_path"
  unit_changed=1
  note "installed $unit_path"
fi

# ---- helper commands ----
install -d -m 0755 "$root/usr/local/sbin" "$root/usr/local/bin"
install -m 0755 -o 0 -g 0 "$release/deploy/pgvip-upgrade.sh" "$root/usr/local/sbin/pgvip-upgrade"
# The CLI on every host: operators use it on the witness (status, switchover), and `pgvip doctor`
# checks a database node's IMDS, ENI and IAM permissions where it runs.
# The entry point is the witness package's declared `pgvip` bin, under the current release.
cli_entry="$("$node_run" -p 'require(process.argv[1]).bin.pgvip' "$release/packages/witness/package.json")"
[[ -f "$release/packages/witness/$cli_entry" ]] || die "the release lacks the CLI packages/witness/$cli_entry"
cli="$root/usr/local/bin/pgvip"
printf '#!/bin/sh\n# pgvip operator CLI (installed by deploy/install.sh)\nexec %s /opt/pgvip/current/packages/witness/%s "$@"\n' "$node_unit" "${cli_entry#./}" >"$cli.new"
chmod 0755 "$cli.new"
mv -f "$cli.new" "$cli"

# ---- enable, never (re)start ----
systemd_running=0
if [[ -z "$root" && -d /run/systemd/system ]]; then systemd_running=1; fi
if [[ $systemd_running -eq 1 && $unit_changed -eq 1 ]]; then
  systemctl daemon-reload
fi
if [[ $enable_unit -eq 1 ]] && command -v systemctl >/dev/null; then
  if [[ -n "$root" ]]; then
    systemctl --root="$root" --quiet enable "$unit"
  else
    systemctl --quiet enable "$unit"
  fi
fi
if [[ $systemd_running -eq 1 ]] && systemctl --quiet is-active "$unit"; then
  if [[ $unit_changed -eq 1 ]]; then
    note "$unit is running: the new unit file takes effect at its next restart (pgvip-upgrade)"
  fi
else
  note "next: edit $config (docs/deploy.md), then: systemctl start $unit"
fi
