#!/usr/bin/python3
"""The lab's process spawner and zombie reaper (started by test/lab/reaper.ts; stdin/stdout JSON lines).

Why it exists: PostgreSQL's postmaster is a daemon (pg_ctl forks it and exits), so it is re-parented to
the nearest "child subreaper" ancestor, or to PID 1. On a real host PID 1 is systemd, which reaps a
killed postmaster at once; in containers and sandboxes PID 1 may reap late or never, and until then
`pg_ctl status` still sees the dead postmaster as running. This process marks itself a subreaper
(prctl(PR_SET_CHILD_SUBREAPER), which Node cannot call: hence Python, which awscli already needs) and
spawns the lab's long-lived processes, so every orphan on any lab host is reaped immediately, as on a
systemd host.

Requests:  {"id": 1, "argv": [...], "env": {...}, "cwd": "/", "log": "/path/to/log"}
Replies:   {"id": 1, "pid": 1234}  or  {"id": 1, "error": "..."}
Events:    {"exit": 1234, "code": 0, "signal": null}  for each process it spawned (not for orphans)
It exits when its stdin closes (the lab is gone).
"""
import ctypes
import json
import os
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.stderr.write("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed\n")
    sys.exit(1)

spawned = set()
lock = threading.Lock()
out = threading.Lock()


def send(message):
    with out:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def reap_forever():
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.05)  # no children at the moment
            continue
        # The lock makes sure a child that exits at once is already registered as ours.
        with lock:
            ours = pid in spawned
            spawned.discard(pid)
        if ours:
            code = os.waitstatus_to_exitcode(status)
            send({"exit": pid, "code": code if code >= 0 else None, "signal": -code if code < 0 else None})


def spawn(request):
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with lock:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()  # its own process group: a Ctrl-C in the lab's terminal does not reach it
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.chdir(request.get("cwd") or "/")
                os.execvpe(request["argv"][0], request["argv"], request.get("env") or {})
            except BaseException as err:  # noqa: BLE001 - report and leave, never return into the parent's code
                os.write(2, f"reaper: cannot start {request['argv'][0]}: {err}\n".encode())
                os._exit(127)
        spawned.add(pid)
    os.close(log)
    return pid


threading.Thread(target=reap_forever, daemon=True).start()
send({"ready": os.getpid()})
for line in sys.stdin:
    if not line.strip():
        continue
    request = json.loads(line)
    try:
        send({"id": request["id"], "pid": spawn(request)})
    except Exception as err:  # noqa: BLE001 - the reply carries the reason
        send({"id": request["id"], "error": str(err)})
