#!/usr/bin/env bash
# pgvip-upgrade: switches this host to another pgvip release and restarts its daemon.
# Installed as /usr/local/sbin/pgvip-upgrade by deploy/install.sh.
#
#   pgvip-upgrade /tmp/pgvip-0.2.0.tar.gz   # a release tarball (checked against its .sha256 when beside it)
#   pgvip-upgrade /tmp/pgvip-0.2.0          # an extracted release
#   pgvip-upgrade 0.1.0                     # a release already in /opt/pgvip (a rollback)
#
# Steps: install the release with its own deploy/install.sh (same role, PostgreSQL user and Node.js
# as recorded in /etc/pgvip/install.env at the first install), atomically repoint
# /opt/pgvip/current, then `systemctl restart` the unit. Restarting an agent does not cause a
# failover (docs/runbook.md, "Upgrade"), but upgrade one host at a time and check `pgvip status`
# between hosts.
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

previous="$(readlink "$root/opt/pgvip/current" || echo none)"
"$release/deploy/install.sh" --role "$role" --pg-user "$pg_user" --node "$node_bin" --switch
now="$(readlink "$root/opt/pgvip/current")"

unit="pgvip-$role.service"
if [[ -z "$root" && -d /run/systemd/system ]]; then
  systemctl restart "$unit"
  note "restarted $unit on release $now (was $previous); roll back with: pgvip-upgrade $previous"
else
  note "release $now is current (was $previous); no running systemd here, so nothing was restarted"
fi
