#!/usr/bin/env bash
# pgvip-upgrade: switches this host to another pgvip release and restarts its daemon.
# Installed as /usr/local/sbin/pgvip-upgrade by deploy/install.sh.
#
#   pgvip-upgrade /tmp/pgvip-0.2.0.tar.gz   # a release tarball (checked against its .sha256 when beside it)
#   pgvip-upgrade /tmp/pgvip-0.2.0          # an extracted release
#   pgvip-upgrade 0.1.0                     # a release already in /opt/pgvip (a rollback)
#
# Steps: check this host's config file with the new release's `pgvip check-config` (a config it
# refuses stops the upgrade before anything changes), install the release with its own
# deploy/install.sh (same role, PostgreSQL user and Node.js as recorded in /etc/pgvip/install.env at
# the first install), atomically repoint /opt/pgvip/current, check the host as the daemon will
# (a failure leaves the running daemon alone), then `systemctl restart` the unit. Restarting
# an agent does not cause a failover (docs/runbook.md, "Upgrade"), but upgrade one host at a time
# and check `pgvip status` between hosts.
#
# Environment: PGVIP_ROOT as for install.sh (with a prefix nothing is restarted).
set -euo pipefail

die() {
  echo "pgvip-upgrade: $*" >&2
  exit 1
}
note() { echo "pgvip-upgrade: $*"; }

usage="usage: pgvip-upgrade RELEASE (a pgvip-<version>.tar.gz, an extracted release directory, or an installed version)"
if [[ $# -eq 1 && ( "$1" == -h || "$1" == --help ) ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi
if [[ $# -ne 1 || "$1" == -* ]]; then
  [[ "${1:-}" == -* ]] && echo "pgvip-upgrade: unknown option '$1'" >&2
  echo "pgvip-upgrade: $usage" >&2
  exit 2
fi
[[ "$(id -u)" -eq 0 ]] || die "run as root"
root="${PGVIP_ROOT:-/}"
[[ "$root" == /* ]] || die "PGVIP_ROOT must be an absolute path, got '$root'"
root="${root%/}"

install_env="$root/etc/pgvip/install.env"
[[ -f "$install_env" ]] || die "$install_env is missing: install pgvip with deploy/install.sh first"
# Read the recorded choices without sourcing the file as shell code.
recorded() { sed -n "s/^$1=//p" "$install_env" | tail -n 1; }
role="$(recorded PGVIP_ROLE)"
pg_user="$(recorded PGVIP_PG_USER)"
node_bin="$(recorded PGVIP_NODE)"
[[ "$role" == agent || "$role" == witness ]] || die "$install_env names no role (PGVIP_ROLE=agent|witness)"

work=""
cleanup() { if [[ -n "$work" ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

source_release="$1"
if [[ -f "$source_release" && "$source_release" == *.tar.gz ]]; then
  if [[ -f "$source_release.sha256" ]]; then
    (cd "$(dirname "$source_release")" && sha256sum --check --quiet "$(basename "$source_release").sha256") ||
      die "$source_release does not match its .sha256: refusing to install it"
  fi
  work="$(mktemp -d)"
  tar -xzf "$source_release" -C "$work"
  shopt -s nullglob
  extracted=("$work"/pgvip-*/)
  shopt -u nullglob
  [[ ${#extracted[@]} -eq 1 ]] || die "$source_release does not hold exactly one pgvip-<version>/ directory"
  release="${extracted[0]%/}"
elif [[ -d "$source_release" ]]; then
  release="$(cd "$source_release" && pwd -P)"
elif [[ "$source_release" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ && -d "$root/opt/pgvip/$source_release" ]]; then
  release="$root/opt/pgvip/$source_release"
else
  die "$source_release is neither a release tarball, a release directory nor a version in $root/opt/pgvip"
fi
[[ -x "$release/deploy/install.sh" ]] || die "$release is not a pgvip release (no deploy/install.sh)"

# The new release must accept this host's config before anything changes: a release that adds a
# required setting (the operator token did) would otherwise be switched to and restarted into a
# daemon that refuses to start, leaving the host without its agent or witness.
config="$root/etc/pgvip/$role.yaml"
if [[ -f "$config" ]]; then
  if [[ "$node_bin" == bundled || -z "$node_bin" ]]; then check_node="$release/node/bin/node"; else check_node="$node_bin"; fi
  [[ -x "$check_node" ]] || die "Node.js $check_node (recorded in $install_env) is missing: set PGVIP_NODE=bundled there to use the release's own, or install Node.js >= 24 at that path"
  # shellcheck disable=SC2016 # JavaScript, not shell
  "$check_node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' ||
    die "$check_node is Node.js $("$check_node" --version 2>/dev/null || echo '?'), the new release needs >= 24: set PGVIP_NODE=bundled in $install_env to use the release's own Node.js; nothing was changed"
  cli_entry="$("$check_node" -p 'require(process.argv[1]).bin.pgvip' "$release/packages/witness/package.json")"
  # The file only: files it names may be made by the new release's install.sh (the operator token),
  # so the host itself is checked after the install, before the restart.
  if ! checked="$("$check_node" "$release/packages/witness/$cli_entry" check-config --kind "$role" --no-host-checks "$config" 2>&1)"; then
    printf '%s\n' "$checked" >&2
    die "release $(basename "$release") refuses $config (above): fix the config as its docs say, check it with: $check_node $release/packages/witness/$cli_entry check-config $config — then run pgvip-upgrade again; nothing was changed"
  fi
fi

previous="$(readlink "$root/opt/pgvip/current" || echo none)"
"$release/deploy/install.sh" --role "$role" --pg-user "$pg_user" --node "$node_bin" --switch
now="$(readlink "$root/opt/pgvip/current")"

unit="pgvip-$role.service"
if [[ -z "$root" && -d /run/systemd/system ]]; then
  # What the daemon checks before it starts, checked now: a refusal leaves the running daemon alone.
  # The agent runs as the PostgreSQL user install.sh recorded (--pg-user), not always "postgres":
  # its files are checked for that user, or a custom install is refused (or checked as root).
  check_as=()
  [[ "$role" == agent ]] && check_as=(--user "$pg_user")
  if ! checked="$(/usr/local/bin/pgvip check-config --kind "$role" "${check_as[@]}" "$config" 2>&1)"; then
    printf '%s\n' "$checked" >&2
    die "release $now is current but this host fails its checks (above), so $unit was NOT restarted and keeps running the old code: fix it and run systemctl restart $unit, or roll back with: pgvip-upgrade $previous"
  fi
  systemctl restart "$unit"
  note "restarted $unit on release $now (was $previous); roll back with: pgvip-upgrade $previous"
else
  note "release $now is current (was $previous); no running systemd here, so nothing was restarted"
fi
