#!/usr/bin/env python3
"""raylet.py - a stand-in for Ray's raylet on one node: it starts worker
processes exactly as Ray does and runs the tasks a driver sends it.

    raylet.py --socket PATH --node-id ID

How Ray starts a worker (the contract weft builds on, docs/ray.md): the
job's runtime_env["env_vars"] are applied to the worker's environment,
then the worker runs as

    bash -c "exec <py_executable> <worker args>"

(py_executable defaults to this interpreter; it may carry arguments), and
the worker imports and calls runtime_env["worker_process_setup_hook"]
after it connected, before its first task (default_worker.py).

The driver talks to it over a Unix stream socket at PATH, one JSON object
per line, each answered by one line:

    {"op": "job", "job_id": "01000000", "runtime_env": {...}}
    {"op": "task", "worker": 0, "task_id": "...", "fn": "module.fn",
     "args": [...], "actor_id": null}        -> {"ok": true, "result": ...}
    {"op": "kill", "worker": 0, "after_ms": 300}   -> {"ok": true}
        (in the background: SIGTERM, then SIGKILL after
        kill_worker_timeout_milliseconds, as Ray's KillWorker)
    {"op": "shutdown"}                       -> {"ok": true, "exits": [...]}

Workers start on their first task; shutdown closes their stdin and waits
for them (and so for their wrappers to deliver what they recorded).
Standard library only.
"""

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Ray's kill_worker_timeout_milliseconds (src/ray/common/ray_config_def.h;
# RAY_kill_worker_timeout_milliseconds overrides it, as in Ray).
KILL_WORKER_TIMEOUT_MS = int(os.environ.get(
    "RAY_kill_worker_timeout_milliseconds", "5000"))


class Raylet:
    def __init__(self, node_id):
        self.node_id = node_id
        self.job = None
        self.workers = {}

    def worker(self, index):
        if index in self.workers:
            return self.workers[index]
        runtime_env = self.job["runtime_env"]
        env = dict(os.environ)
        env.update(runtime_env.get("env_vars") or {})
        env["RAY_JOB_ID"] = self.job["job_id"]
        env["FAKE_RAY_NODE_ID"] = self.node_id
        py = runtime_env.get("py_executable") or shlex.quote(sys.executable)
        args = [os.path.join(HERE, "default_worker.py"),
                "--node-id", self.node_id]
        hook = runtime_env.get("worker_process_setup_hook")
        if hook:
            args += ["--setup-hook", hook]
        cmd = "exec %s %s" % (py, " ".join(shlex.quote(a) for a in args))
        p = subprocess.Popen(["bash", "-c", cmd], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.workers[index] = p
        return p

    def handle(self, req):
        op = req.get("op")
        if op == "job":
            self.job = req
            return {"ok": True}
        if op == "task":
            w = self.worker(req.get("worker", 0))
            try:
                w.stdin.write((json.dumps(req) + "\n").encode())
                w.stdin.flush()
            except BrokenPipeError:
                return {"ok": False, "error": "the worker exited (%s)"
                        % w.wait()}
            line = w.stdout.readline()
            if not line:
                return {"ok": False, "error": "the worker exited (%s)"
                        % w.wait()}
            return json.loads(line)
        if op == "kill":
            # NodeManager::KillWorker: SIGTERM to the worker process (the
            # pid Ray started: bash exec'ed py_executable, i.e. weft's
            # wrapper), SIGKILL after kill_worker_timeout_milliseconds if
            # it is still there. In the background, after after_ms: the
            # next task finds its worker gone.
            w = self.workers.get(req.get("worker", 0))
            if w is None:
                return {"ok": False, "error": "no such worker"}
            grace = int(req.get("grace_ms", KILL_WORKER_TIMEOUT_MS)) / 1000
            after = int(req.get("after_ms", 0)) / 1000

            def kill():
                time.sleep(after)
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    w.kill()
            threading.Thread(target=kill, daemon=True).start()
            return {"ok": True}
        if op == "shutdown":
            exits = []
            for _, w in sorted(self.workers.items()):
                try:
                    w.stdin.close()
                except BrokenPipeError:
                    pass
                exits.append(w.wait())
            self.workers = {}
            return {"ok": True, "exits": exits}
        return {"ok": False, "error": "unknown op %r" % op}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--node-id", required=True)
    a = ap.parse_args()
    raylet = Raylet(a.node_id)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.socket + ".tmp")
    srv.listen(1)
    os.rename(a.socket + ".tmp", a.socket)  # ready
    while True:
        conn, _ = srv.accept()
        f = conn.makefile("rwb")
        for line in f:
            reply = raylet.handle(json.loads(line))
            f.write((json.dumps(reply) + "\n").encode())
            f.flush()
            if reply.get("exits") is not None:
                conn.close()
                srv.close()
                os.unlink(a.socket)
                return 0
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
