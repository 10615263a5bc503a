#!/usr/bin/python3
# pg_auto_failover's VIP hook for AWS: pg_autoctl has no role-change callback, but its monitor
# announces every state change with NOTIFY on the channel "state" (the JSON that `pg_autoctl show
# events` and `pg_autoctl watch` read). This hook runs beside the keeper on each database host (a
# systemd unit of its own), LISTENs on the monitor, and for its own node:
#   - reported AND assigned state a primary one (single, wait_primary, primary, join_primary,
#     apply_settings: PostgreSQL is promoted and writable): take the VIP — reassign the secondary
#     address to this instance's ENI with the AWS CLI (`--allow-reassignment`), then add it to eth0;
#   - assigned any other state (draining, demote_timeout, demoted, secondary, ...): drop it from eth0
#     (EC2 moves it on the next takeover).
# It also polls pgautofailover.current_state() every 2 s, so it acts on the state it finds after a
# (re)connection, and reconnects when the monitor is unreachable.
#
# Environment (set by test/lab/anchors/pg-auto-failover/pg-auto-failover.ts, as a unit's Environment=):
#   PGAF_NODE (this node's --name), PGAF_MONITOR (the monitor's URI, `pg_autoctl show uri --monitor`),
#   PGAF_FORMATION, VIP, VIP_PREFIX, EC2_ENDPOINT, IMDS_ENDPOINT, and AWS_DEFAULT_REGION plus
#   AWS_EC2_METADATA_SERVICE_ENDPOINT for the AWS CLI, which takes the instance role's credentials
#   from IMDS like on EC2.
import json
import os
import select
import subprocess
import time
import urllib.request

import psycopg2

NODE = os.environ["PGAF_NODE"]
MONITOR = os.environ["PGAF_MONITOR"]
FORMATION = os.environ.get("PGAF_FORMATION", "default")
VIP = os.environ["VIP"]
VIP_PREFIX = os.environ["VIP_PREFIX"]
EC2_ENDPOINT = os.environ["EC2_ENDPOINT"]
IMDS = os.environ["IMDS_ENDPOINT"]

# The states in which pg_auto_failover's node is the writable primary (docs: "Failover state machine").
PRIMARY_STATES = {"single", "wait_primary", "primary", "join_primary", "apply_settings"}


def log(msg):
    print(f"{int(time.time() * 1000)} vip-hook: {msg}", flush=True)


def imds(path, token=None, method="GET"):
    if token is None:
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
    else:
        headers = {"X-aws-ec2-metadata-token": token}
    req = urllib.request.Request(f"{IMDS}/latest/{path}", method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def my_eni():
    token = imds("api/token", method="PUT")
    mac = imds("meta-data/mac", token)
    return imds(f"meta-data/network/interfaces/macs/{mac}/interface-id", token)


held = None  # True: we put the VIP on eth0; False: we took it off; None: not yet decided


def take(why):
    global held
    eni = my_eni()
    log(f"{why}: taking the VIP {VIP} to {eni}")
    r = subprocess.run(["aws", "ec2", "assign-private-ip-addresses", "--network-interface-id", eni,
                        "--private-ip-addresses", VIP, "--allow-reassignment", "--endpoint-url", EC2_ENDPOINT])
    log("VIP assigned to " + eni if r.returncode == 0 else f"assign-private-ip-addresses failed ({r.returncode})")
    subprocess.run(["ip", "addr", "replace", f"{VIP}/{VIP_PREFIX}", "dev", "eth0"])
    log("VIP on eth0")
    held = r.returncode == 0


def drop(why):
    global held
    log(f"{why}: dropping the VIP from eth0")
    subprocess.run(["ip", "addr", "del", f"{VIP}/{VIP_PREFIX}", "dev", "eth0"], stderr=subprocess.DEVNULL)
    held = False


def on_state(name, reported, assigned):
    if name != NODE:
        return
    if reported in PRIMARY_STATES and assigned in PRIMARY_STATES:
        if held is not True:
            take(f"{reported} -> {assigned}")
    elif assigned not in PRIMARY_STATES and held is not False:
        drop(f"{reported} -> {assigned}")


def poll(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT nodename, current_group_state, assigned_group_state"
                    " FROM pgautofailover.current_state(%s)", (FORMATION,))
        for name, reported, assigned in cur.fetchall():
            on_state(name, reported, assigned)


def watch():
    conn = psycopg2.connect(MONITOR, connect_timeout=3, keepalives=1, keepalives_idle=2,
                            keepalives_interval=1, keepalives_count=2, application_name=f"vip-hook {NODE}")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = '3s'")
        cur.execute("LISTEN state")
    log(f"listening on the monitor for {NODE}")
    poll(conn)
    while True:
        if select.select([conn], [], [], 2) != ([], [], []):
            conn.poll()
            while conn.notifies:
                e = json.loads(conn.notifies.pop(0).payload)
                if e.get("formation") == FORMATION:
                    on_state(e.get("name"), e.get("reportedState"), e.get("goalState"))
        else:
            poll(conn)


while True:
    try:
        watch()
    except Exception as err:  # the monitor is unreachable or restarting: try again
        log(f"monitor: {str(err).strip()}; retrying")
        time.sleep(1)
