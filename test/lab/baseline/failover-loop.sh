#!/bin/sh
# The failover loop pgvip replaces, written the way it is usually written: it runs on the standby,
# pings the primary's host every second, and after three missed pings promotes the local
# PostgreSQL and takes the VIP with `aws ec2 assign-private-ip-addresses --allow-reassignment`.
#
# Faithful to its faults on purpose (this is the lab's baseline, not a fix):
#   - no quorum: the standby alone decides, so any partition between the two nodes splits the brain;
#   - no fencing: the old primary is never told to stop and keeps accepting writes;
#   - it checks the host (ICMP), not PostgreSQL: a dead PostgreSQL on a live host is never noticed;
#   - it ignores errors of pg_ctl, the AWS CLI and ip.
#
# Environment (set by test/lab/baseline/baseline.ts):
#   PRIMARY_ADDR  the primary's host address      VIP, VIP_PREFIX  the VIP and its prefix length
#   PGDATA, PGBIN the local data directory / bin  EC2_ENDPOINT, IMDS_ENDPOINT  the emulator
#   plus AWS_DEFAULT_REGION and AWS_EC2_METADATA_SERVICE_ENDPOINT for the AWS CLI, which takes the
#   instance role's credentials from IMDS like on EC2.

log() { echo "$(date +%s%3N) baseline: $*"; }

# Which ENI is ours: IMDSv2, as the AWS documentation shows it with curl.
TOKEN=$(curl -s -X PUT "$IMDS_ENDPOINT/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
MAC=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS_ENDPOINT/latest/meta-data/mac")
ENI=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS_ENDPOINT/latest/meta-data/network/interfaces/macs/$MAC/interface-id")
log "watching $PRIMARY_ADDR from $ENI"

misses=0
while true; do
  if ping -c 1 -W 1 "$PRIMARY_ADDR" >/dev/null 2>&1; then
    misses=0
  else
    misses=$((misses + 1))
    log "ping $PRIMARY_ADDR missed ($misses)"
  fi
  if [ "$misses" -ge 3 ]; then
    log "primary down: promoting"
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$PGBIN/pg_ctl" promote -w -D "$PGDATA"
    log "promoted; taking the VIP"
    aws ec2 assign-private-ip-addresses --network-interface-id "$ENI" --private-ip-addresses "$VIP" \
      --allow-reassignment --endpoint-url "$EC2_ENDPOINT"
    ip addr add "$VIP/$VIP_PREFIX" dev eth0
    log "VIP taken; done"
    exit 0
  fi
  sleep 1
done
