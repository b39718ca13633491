"""pipeline.py - the user's code of the Ray end-to-end test
(tests/ray_cluster_e2e.py): a worker setup hook of the user's own, a
two-stage pipeline (stage-one tasks write shards, a stage-two task reads
them) and a small actor, plus the driver that submits them to raylets
(raylet.py) after ray.init().

    python pipeline.py --raylets SOCK0,SOCK1 --dir DIR

Standard library only (ray is tests/fake_ray's).
"""

import argparse
import glob
import json
import os
import socket
import sys


def user_setup():
    """The user's worker_process_setup_hook: still called under weft."""
    d = os.environ["PIPELINE_DIR"]
    with open(os.path.join(d, "setup-%d.txt" % os.getpid()), "w") as f:
        f.write("setup on %s\n" % socket.gethostname())


def stage1(i, d):
    with open(os.path.join(d, "shards", "part-%02d.txt" % i), "w") as f:
        f.write("part %d from %s\n" % (i, socket.gethostname()))
    return i


def stage2(d):
    parts = sorted(glob.glob(os.path.join(d, "shards", "part-*.txt")))
    text = ""
    for p in parts:
        with open(p) as f:
            text += f.read()
    with open(os.path.join(d, "result.txt"), "w") as f:
        f.write(text)
    return len(parts)


def fails(d):
    with open(os.path.join(d, "half-done.txt"), "w") as f:
        f.write("started\n")
    raise RuntimeError("this task fails on purpose")


# A file the worker opened before its tasks (set by the test's worker
# script): each task reads on from the same open fd.
SHARED = None


def read_shared(n):
    return len(SHARED.read(n))


# The same for writes: a log the worker keeps open for appending.
LOG = None


def log_line(text):
    return LOG.write(text.encode())


def read_path(p):
    with open(p) as f:
        return len(f.read())


def sleepy(d, seconds):
    """A long task: the raylet stops its worker while it runs."""
    import time
    with open(os.path.join(d, "sleepy-started.txt"), "w") as f:
        f.write("started\n")
    time.sleep(seconds)
    return seconds


class Counter:
    def __init__(self, path):
        self.path = path
        with open(path, "w") as f:
            f.write("0")

    def add(self, n):
        with open(self.path) as f:
            v = int(f.read()) + n
        with open(self.path, "w") as f:
            f.write(str(v))
        return v


class Raylet:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.f = self.sock.makefile("rwb")

    def call(self, **req):
        self.f.write((json.dumps(req) + "\n").encode())
        self.f.flush()
        return json.loads(self.f.readline())


def driver():
    import ray
    ap = argparse.ArgumentParser()
    ap.add_argument("--raylets", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    env = ray.init(runtime_env={
        "env_vars": {"PYTHONPATH": here, "PIPELINE_DIR": a.dir},
        "worker_process_setup_hook": "pipeline.user_setup",
        "config": {"setup_timeout_seconds": 60}})
    print("runtime_env " + json.dumps(env), file=sys.stderr)
    os.makedirs(os.path.join(a.dir, "shards"), exist_ok=True)
    nodes = [Raylet(p) for p in a.raylets.split(",")]
    for n in nodes:
        n.call(op="job", job_id="02000000", runtime_env=env)
    out = {"stage1": [], "actor": []}
    for i in range(4):
        r = nodes[i % len(nodes)].call(
            op="task", task_id="%048x" % (0x100 + i), fn="pipeline.stage1",
            args=[i, a.dir])
        out["stage1"].append(r)
    last = nodes[-1]
    out["stage2"] = last.call(op="task", task_id="%048x" % 0x200,
                              fn="pipeline.stage2", args=[a.dir])
    actor = "%032x" % 0xac7
    counter = os.path.join(a.dir, "counter.txt")
    out["actor"].append(nodes[0].call(
        op="task", task_id="%048x" % 0x300, actor_id=actor,
        fn="pipeline.Counter.__init__", args=[counter]))
    for k in range(2):
        out["actor"].append(nodes[0].call(
            op="task", task_id="%048x" % (0x301 + k), actor_id=actor,
            fn="pipeline.Counter.add", args=[k + 1]))
    out["fails"] = nodes[0].call(op="task", task_id="%048x" % 0x400,
                                 fn="pipeline.fails", args=[a.dir])
    out["exits"] = [n.call(op="shutdown")["exits"] for n in nodes]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(driver())
