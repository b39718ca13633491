#!/usr/bin/env python3
"""default_worker.py - a stand-in for Ray's worker main
(ray/_private/workers/default_worker.py): connect, run the job's
worker_process_setup_hook (imported by its "module.function" name), then
execute the tasks the raylet sends, through Ray's executor path
(ray._private.worker.global_worker.execute_task, which looks each function
up with FunctionActorManager.get_execution_info).

Tasks come on stdin, one JSON object per line; each result goes to the
raylet as one line on the original stdout. The user's code prints to
stderr (as Ray's workers print to their log files). SIGTERM ends the
worker with SystemExit(1), as Ray's worker main loop does.
"""

import argparse
import importlib
import json
import os
import signal
import sys
import traceback


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--setup-hook")
    a = ap.parse_args()
    to_raylet = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from ray._private import worker as ray_worker
    ray_worker.current["node_id"] = a.node_id
    if a.setup_hook:  # after connecting, before the first task
        mod, _, fn = a.setup_hook.rpartition(".")
        getattr(importlib.import_module(mod), fn)()
    g = ray_worker.global_worker
    # As Ray's worker main loop (ray/_private/worker.py, main_loop): the
    # raylet stops a worker with SIGTERM (then SIGKILL after
    # kill_worker_timeout_milliseconds); the worker leaves through
    # SystemExit(1), running what is in its way (finally, atexit).
    def sigterm_handler(signum, frame):
        print("The process receives a SIGTERM.", file=sys.stderr)
        raise SystemExit(1)
    signal.signal(signal.SIGTERM, sigterm_handler)
    for line in sys.stdin:
        task = json.loads(line)
        try:
            result = g.execute_task(task["task_id"], task["fn"],
                                    *task.get("args", []),
                                    actor_id=task.get("actor_id"))
            reply = {"ok": True, "result": result}
        except Exception as e:  # a failed task, as Ray reports it
            traceback.print_exc()
            reply = {"ok": False, "error": repr(e)}
        to_raylet.write(json.dumps(reply) + "\n")
        to_raylet.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
