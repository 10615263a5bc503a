#!/bin/sh
# repmgr's promote_command wrapper for AWS: repmgrd runs it on the standby it elected, as
#   promote.sh <repmgr.conf>
# It promotes with `repmgr standby promote`, then, since the one synchronous standby is the node that
# was lost, turns synchronous replication off (writes would wait for it forever; the operator names
# the standby again once the old primary has rejoined), and takes the VIP: reassigns the secondary
# address to this instance's ENI with the AWS CLI (`--allow-reassignment`) and adds it to eth0.
#
# Environment (set by test/lab/anchors/repmgr/repmgr.ts, as repmgrd's systemd unit's Environment=):
#   VIP, VIP_PREFIX, EC2_ENDPOINT, IMDS_ENDPOINT, plus AWS_DEFAULT_REGION and
#   AWS_EC2_METADATA_SERVICE_ENDPOINT for the AWS CLI, which takes the instance role's credentials
#   from IMDS like on EC2.
#   PROMOTE_LOG (optional): a file that gets each line too (repmgrd keeps the command's output to itself).
conf=$1

log() {
  line="$(date +%s%3N) promote.sh: $*"
  echo "$line"
  if [ -n "$PROMOTE_LOG" ]; then echo "$line" >>"$PROMOTE_LOG"; fi
}

log "promoting with repmgr standby promote"
/usr/lib/postgresql/15/bin/repmgr standby promote -f "$conf" || { log "promote failed"; exit 1; }
log "promoted"

/usr/lib/postgresql/15/bin/psql -X -q -h 127.0.0.1 -U postgres -d postgres \
  -c "ALTER SYSTEM SET synchronous_standby_names = ''" -c "SELECT pg_reload_conf()"
log "synchronous replication off until the old primary rejoins"

TOKEN=$(curl -s -X PUT "$IMDS_ENDPOINT/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
MAC=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS_ENDPOINT/latest/meta-data/mac")
ENI=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" \
  "$IMDS_ENDPOINT/latest/meta-data/network/interfaces/macs/$MAC/interface-id")
log "taking the VIP $VIP to $ENI"
if aws ec2 assign-private-ip-addresses --network-interface-id "$ENI" --private-ip-addresses "$VIP" \
  --allow-reassignment --endpoint-url "$EC2_ENDPOINT"; then
  log "VIP assigned to $ENI"
else
  log "assign-private-ip-addresses failed"
fi
ip addr replace "$VIP/$VIP_PREFIX" dev eth0
log "VIP on eth0"
exit 0
