#!/bin/sh
# Patroni's callback for the VIP on AWS (vip-manager cannot move an EC2 address): Patroni calls it as
#   vip-callback.sh <action> <role> <scope>
# on_start / on_role_change with role master (or primary): take the VIP — reassign the secondary
# address to this instance's ENI with the AWS CLI, then add it to the interface;
# any other role, or on_stop: drop the address from the interface (EC2 moves it on the next takeover).
#
# Environment (set by test/lab/anchors/patroni/patroni.ts, as a systemd unit's Environment= would):
#   VIP, VIP_PREFIX, EC2_ENDPOINT, IMDS_ENDPOINT, plus AWS_DEFAULT_REGION and
#   AWS_EC2_METADATA_SERVICE_ENDPOINT for the AWS CLI, which takes the instance role's credentials
#   from IMDS like on EC2.
action=$1
role=$2

log() { echo "$(date +%s%3N) vip-callback: $*"; }

case "$action:$role" in
  on_start:master | on_start:primary | on_role_change:master | on_role_change:primary)
    TOKEN=$(curl -s -X PUT "$IMDS_ENDPOINT/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
    MAC=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS_ENDPOINT/latest/meta-data/mac")
    ENI=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" \
      "$IMDS_ENDPOINT/latest/meta-data/network/interfaces/macs/$MAC/interface-id")
    log "$action $role: taking the VIP $VIP to $ENI"
    if aws ec2 assign-private-ip-addresses --network-interface-id "$ENI" --private-ip-addresses "$VIP" \
      --allow-reassignment --endpoint-url "$EC2_ENDPOINT"; then
      log "VIP assigned to $ENI"
    else
      log "assign-private-ip-addresses failed"
    fi
    ip addr replace "$VIP/$VIP_PREFIX" dev eth0
    log "VIP on eth0"
    ;;
  *)
    log "$action $role: dropping the VIP from eth0"
    ip addr del "$VIP/$VIP_PREFIX" dev eth0 2>/dev/null
    ;;
esac
exit 0
