#!/usr/bin/env python3
"""ray_cluster_e2e.py - weft on Ray, end to end, against Ray's documented
worker-launch contract (Ray itself cannot be installed here; tests/fake_ray
stands in for it and follows the contract exactly: raylet.py applies the
runtime env's env_vars and starts each worker as
`bash -c "exec <py_executable> <args>"`, default_worker.py imports and
calls the worker setup hook, then runs tasks through Ray's executor path).

    ray_cluster_e2e.py --weft PATH CASE      (--list for the cases)

Cases:
  wrap_ptrace, wrap_preload, wrap_ebpf
              `weft wrap --ray` on one worker, with that backend: one task
              per Ray task (actor calls per call), named from Ray's ids,
              children of the worker; I/O outside every task stays with
              the worker; a failing task exits 1.
  shared_fd_ptrace, shared_fd_preload
              a file the worker opened before two tasks, read by each
              through the same fd: both tasks read it; a log kept open
              and appended to by two tasks: both wrote it; a file the
              worker read, then a task: the task read it.
  actor_granularity
              WEFT_RAY_ACTOR_GRANULARITY=actor: an actor's calls are one
              task.
  pipeline    `weft run --ray -- python pipeline.py` (in-cluster): two
              raylets in two network namespaces (loopback, with a printed
              reason, where namespaces cannot be made), each starting its
              workers as Ray does; stage-one tasks write shards on both
              nodes, a stage-two task reads them: one job, one merged DAG
              with a node per Ray task and cross-node edges by hash; the
              user's own setup hook still ran.
  kill_worker a raylet stand-in stops a wrapped worker as Ray's KillWorker
              does (SIGTERM, SIGKILL after kill_worker_timeout_milliseconds)
              while a task runs: the tasks that ended earlier are in the
              store before that (shipped while the worker runs); the
              wrapper passes SIGTERM on, Python's handler runs, the worker
              exits 1, and its record and the interrupted task (exit 1)
              reach the store too.
  run_env     `weft run` for a Ray driver: RAY_RUNTIME_ENV_HOOK and
              PYTHONPATH set (RAY_ADDRESS detected; --no-ray leaves them
              alone); a user's hook chained; two user hooks refused with a
              clear message, nothing started; `weft submit --mode
              in-cluster` sets the same (and refuses the same).

Standard library only.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from wraplib import (Cluster, Coordinator, Fail, Job, Scratch, Skip,  # noqa
                     check, dag, log, main, run)

SHIM = os.path.join(os.path.dirname(HERE), "python-shim")
FAKE_RAY = os.path.join(HERE, "fake_ray")


def clean_env(**extra):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("WEFT_", "RAY_")):
            del env[k]
    env.update(extra)
    return env


def preflight_ok(weft, mode):
    p = run([weft, "tracer", "check", mode])
    return p.returncode == 0, (p.out + p.err).strip().splitlines()[-1:]


# A worker process driven directly through Ray's executor path, as
# default_worker.py does, without a raylet.
WORKER = r"""
import os, sys
from ray._private import worker as rw
import weft.ray
weft.ray.worker_setup()
g = rw.global_worker
d = os.environ["OUT"]
os.makedirs(os.path.join(d, "shards"), exist_ok=True)
open(os.path.join(d, "before.txt"), "w").write("before the first task\n")
g.execute_task("%048x" % 0x100, "pipeline.stage1", 0, d)
g.execute_task("%048x" % 0x101, "pipeline.stage1", 1, d)
g.execute_task("%048x" % 0x200, "pipeline.stage2", d)
actor = "%032x" % 0xac7
g.execute_task("%048x" % 0x300, "pipeline.Counter.__init__",
               os.path.join(d, "counter.txt"), actor_id=actor)
for k in range(2):
    g.execute_task("%048x" % (0x301 + k), "pipeline.Counter.add", k + 1,
                   actor_id=actor)
try:
    g.execute_task("%048x" % 0x400, "pipeline.fails", d)
except RuntimeError:
    pass
open(os.path.join(d, "after.txt"), "w").write("after the last task\n")
"""


# A file opened before two tasks and read by both through the same fd
# (unbuffered: each read is a read(2)), then closed after them; the same
# for a log appended to by two tasks; a file the worker read before a
# task reads it again.
SHARED_FD_WORKER = r"""
import os
from ray._private import worker as rw
import pipeline
import weft.ray
weft.ray.worker_setup()
g = rw.global_worker
d = os.environ["OUT"]
p = os.path.join(d, "shared.txt")
with open(p, "w") as f:
    f.write("x" * 64)
pipeline.SHARED = open(p, "rb", buffering=0)
pipeline.LOG = open(os.path.join(d, "log.txt"), "ab", buffering=0)
again = os.path.join(d, "again.txt")
with open(again, "w") as f:
    f.write("read by the worker, then by a task\n")
pipeline.read_path(again)
g.execute_task("%048x" % 0x500, "pipeline.read_shared", 8)
g.execute_task("%048x" % 0x501, "pipeline.read_shared", 8)
g.execute_task("%048x" % 0x502, "pipeline.log_line", "one\n")
g.execute_task("%048x" % 0x503, "pipeline.log_line", "two\n")
g.execute_task("%048x" % 0x504, "pipeline.read_path", again)
pipeline.SHARED.close()
pipeline.LOG.close()
"""


def index(d):
    """(tasks by id, artifact paths by id, edges as (from, to, kind))."""
    tasks = {t["id"]: t for t in d["tasks"]}
    arts = {a["id"]: a["path"] for a in d["artifacts"]}
    edges = [(e["from"], e["to"], e["kind"]) for e in d["edges"]]
    return tasks, arts, edges


def tasks_by_name(tasks):
    """Task name -> the tasks of that name."""
    out = {}
    for t in tasks.values():
        out.setdefault(t["name"], []).append(t)
    return out


def writers_of(tasks, arts, edges, path):
    return [tasks[f]["name"] for f, t, k in edges
            if k == "write" and arts.get(t) == path and f in tasks]


def readers_of(tasks, arts, edges, path):
    return [tasks[t]["name"] for f, t, k in edges
            if k == "read" and arts.get(f) == path and t in tasks]


def wrap_worker(weft, mode, granularity=None, script=WORKER):
    """One worker under `weft wrap --ray`; returns (dag, scratch dir)."""
    if mode:
        ok, why = preflight_ok(weft, mode)
        if not ok:
            raise Skip("tracer %s unavailable here: %s" % (mode, why))
    s = Scratch("ray-wrap")
    coord = Coordinator(weft, s.path("proj")).start()
    job = None
    try:
        job = Job(weft, coord, s.path("proj"))
        out = s.path("out")
        os.makedirs(out)
        env = clean_env(**job.contract)
        env.update(PYTHONPATH=os.pathsep.join([SHIM, FAKE_RAY]), OUT=out,
                   PIPELINE_DIR=out, RAY_JOB_ID="03000000",
                   WEFT_SPOOL=s.path("spool"),
                   WEFT_HASH_CACHE=s.path("hashes.db"))
        if granularity:
            env["WEFT_RAY_ACTOR_GRANULARITY"] = granularity
        cmd = [weft, "wrap", "-v", "--ship-timeout", "60", "--ray"]
        if mode:
            cmd += ["--tracer", mode]
        p = run(cmd + ["--", sys.executable, "-c", script], env=env,
                timeout=300)
        check(p.returncode == 0, "weft wrap --ray exited %d: %s"
              % (p.returncode, p.err))
        check("not yet acknowledged" not in p.err, p.err)
        rc, err = job.end()
        check(rc == 0, "the job ended with %s: %s" % (rc, err))
        return dag(weft, s.path("proj"), job.id), out, p.err
    finally:
        if job:
            job.end()
        coord.kill()
        s.close()


def check_worker_dag(d, out, per_actor):
    tasks, arts, edges = index(d)
    names = sorted(t["name"] for t in tasks.values())
    workers = [t for t in tasks.values() if t["parent"] is None]
    check(len(workers) == 1, "one worker record expected: %s" % names)
    worker = workers[0]
    want = ["Counter.__init__", "Counter.add", "Counter.add"]
    if per_actor:
        want = ["Counter"]
    want = sorted(want + ["fails", "stage1", "stage1", "stage2",
                          worker["name"]])
    check(names == want, "tasks %s, expected %s" % (names, want))
    for t in tasks.values():
        if t is not worker:
            check(t["parent"] == worker["id"],
                  "task %s is not the worker's child" % t)
    shard = lambda i: os.path.join(out, "shards", "part-%02d.txt" % i)
    for i in range(2):
        check(writers_of(tasks, arts, edges, shard(i)) == ["stage1"],
              "part %d written by %s" % (
                  i, writers_of(tasks, arts, edges, shard(i))))
        check(readers_of(tasks, arts, edges, shard(i)) == ["stage2"],
              "part %d read by %s" % (
                  i, readers_of(tasks, arts, edges, shard(i))))
    result = os.path.join(out, "result.txt")
    check(writers_of(tasks, arts, edges, result) == ["stage2"],
          "result written by %s" % writers_of(tasks, arts, edges, result))
    for f in ("before.txt", "after.txt"):
        w = writers_of(tasks, arts, edges, os.path.join(out, f))
        check(w == [worker["name"]], "%s written by %s (the worker, outside "
              "every task)" % (f, w))
    counter = os.path.join(out, "counter.txt")
    w = sorted(writers_of(tasks, arts, edges, counter))
    check(w == (["Counter"] if per_actor else
                ["Counter.__init__", "Counter.add", "Counter.add"]),
          "counter written by %s" % w)
    failed = [t for t in tasks.values() if t["name"] == "fails"][0]
    check(failed["exit_code"] == 1, "the failing task: %s" % failed)
    half = os.path.join(out, "half-done.txt")
    check(writers_of(tasks, arts, edges, half) == ["fails"],
          "half-done written by %s" % writers_of(tasks, arts, edges, half))
    check(all(t["exit_code"] == 0 for t in tasks.values()
              if t["name"] != "fails"), "exit codes: %s" % tasks)


def wrap_case(mode):
    def case(weft):
        d, out, err = wrap_worker(weft, mode)
        check_worker_dag(d, out, per_actor=False)
    return case


def shared_fd_case(mode):
    """A file kept open across tasks is read by each task that reads it."""
    def case(weft):
        d, out, err = wrap_worker(weft, mode, script=SHARED_FD_WORKER)
        tasks, arts, edges = index(d)
        shared = os.path.join(out, "shared.txt")
        r = sorted(readers_of(tasks, arts, edges, shared))
        check(r == ["read_shared", "read_shared"],
              "%s: shared.txt read by %s, expected both tasks (%s)"
              % (mode, r, sorted(t["name"] for t in tasks.values())))
        w = writers_of(tasks, arts, edges, shared)
        check(len(w) == 1 and w[0] not in ("read_shared",),
              "shared.txt written by %s (the worker)" % w)
        w = sorted(writers_of(tasks, arts, edges,
                              os.path.join(out, "log.txt")))
        # (and by the worker, which created it)
        check(w.count("log_line") == 2,
              "%s: log.txt written by %s, expected both tasks" % (mode, w))
        r = readers_of(tasks, arts, edges, os.path.join(out, "again.txt"))
        check("read_path" in r,
              "%s: again.txt read by %s, expected read_path too" % (mode, r))
    return case


def actor_granularity(weft):
    d, out, err = wrap_worker(weft, None, granularity="actor")
    check_worker_dag(d, out, per_actor=True)
    # A bad value is refused before anything runs.
    p = run([weft, "wrap", "--ray", "--ray-actor-granularity", "method",
             "--", "true"], env=clean_env())
    check(p.returncode == 2 and "expected call or actor" in p.err,
          "bad granularity: %d %s" % (p.returncode, p.err))


# ---------------------------------------------------------------- pipeline

def start_raylet(cl, i, sock, env, logf):
    """Node i's raylet: in its namespace and with its own host name when
    namespaces are real."""
    cmd = [sys.executable, os.path.join(FAKE_RAY, "raylet.py"),
           "--socket", sock, "--node-id", "%056x" % (0xa0 + i)]
    if cl.real:
        cmd = cl.prefix(i) + [
            "unshare", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', "raynode%d" % i] + cmd
    p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf)
    end = time.monotonic() + 30
    while not os.path.exists(sock):
        if p.poll() is not None or time.monotonic() > end:
            raise Fail("raylet %d did not start (exit %s)" % (i, p.poll()))
        time.sleep(0.05)
    return p


def pipeline(weft):
    s = Scratch("ray-pipeline")
    cl = Cluster(2)
    raylets = []
    try:
        proj, work = s.path("proj"), s.path("work")
        os.makedirs(proj)
        os.makedirs(work)
        logf = open(s.path("raylets.log"), "ab")
        # Raylets belong to the cluster, not to the traced driver.
        renv = clean_env(PATH=os.environ.get("PATH", ""))
        socks = [s.path("raylet%d.sock" % i) for i in range(2)]
        for i in range(2):
            raylets.append(start_raylet(cl, i, socks[i], renv, logf))
        env = clean_env(PYTHONPATH=FAKE_RAY, WEFT_BIN=weft,
                        WEFT_SPOOL=s.path("spool"),
                        WEFT_HASH_CACHE=s.path("hashes.db"))
        p = run([weft, "run", "--ray", "--listen",
                 "tcp://%s:0" % cl.host_ip, "--",
                 sys.executable, os.path.join(FAKE_RAY, "pipeline.py"),
                 "--raylets", ",".join(socks), "--dir", work],
                env=env, cwd=proj, timeout=600)
        check(p.returncode == 0, "weft run --ray exited %d:\n%s\n%s"
              % (p.returncode, p.out, p.err))
        out = json.loads(p.out.strip().splitlines()[-1])
        check(out["exits"] == [[0], [0]], "workers exited %s" % out["exits"])
        check(all(r["ok"] for r in out["stage1"]) and out["stage2"]["ok"]
              and out["stage2"]["result"] == 4, "tasks: %s" % out)
        check(not out["fails"]["ok"], "the failing task: %s" % out["fails"])
        job = [l for l in p.err.splitlines() if l.startswith("weft: job ")]
        check(job, "no job line: %s" % p.err)
        job = job[0].split()[2].rstrip(":")
        # The runtime env the driver's ray.init() got from weft's hook.
        renv_line = [l for l in p.err.splitlines()
                     if l.startswith("runtime_env ")][0]
        got = json.loads(renv_line[len("runtime_env "):])
        check(got["py_executable"].startswith(weft + " wrap --ray -- "),
              "py_executable %r" % got["py_executable"])
        check(got["worker_process_setup_hook"] == "weft.ray.worker_setup"
              and got["env_vars"]["WEFT_RAY_USER_SETUP_HOOK"]
              == "pipeline.user_setup", "setup hook: %s" % got)
        check(got["env_vars"]["WEFT_JOB"] == job, "contract: %s" % got)
        check(got["config"] == {"setup_timeout_seconds": 60},
              "user fields kept: %s" % got)

        d = dag(weft, proj, job)
        tasks, arts, edges = index(d)
        by_name = tasks_by_name(tasks)
        check(len(by_name.get("stage1", [])) == 4 and
              len(by_name.get("stage2", [])) == 1,
              "per-task nodes: %s" % sorted(by_name))
        check(len(by_name.get("Counter.add", [])) == 2,
              "actor calls: %s" % sorted(by_name))
        drivers = [t for t in tasks.values() if t["parent"] is None]
        check(len(drivers) == 1, "one root (the driver): %s" % drivers)
        workers = [t for t in tasks.values()
                   if t["parent"] == drivers[0]["id"]]
        check(len(workers) == 2, "two workers under the driver: %s"
              % [t["name"] for t in workers])
        worker_ids = {t["id"] for t in workers}
        for name in ("stage1", "stage2", "Counter.add", "fails"):
            for t in by_name[name]:
                check(t["parent"] in worker_ids,
                      "%s is not a worker's child: %s" % (name, t))
        nodes = {t["node"] for t in workers}
        if cl.real:
            check(nodes == {"raynode0", "raynode1"}, "nodes %s" % nodes)
            s1nodes = sorted(t["node"] for t in by_name["stage1"])
            check(s1nodes == ["raynode0", "raynode0", "raynode1",
                              "raynode1"], "stage1 on %s" % s1nodes)
            check(by_name["stage2"][0]["node"] == "raynode1",
                  "stage2 on %s" % by_name["stage2"][0]["node"])
        # Every shard: written by a stage-one task, read by stage two, by
        # hash; those on the other node are cross-node edges.
        s2 = by_name["stage2"][0]["id"]
        cross = 0
        for i in range(4):
            path = os.path.join(work, "shards", "part-%02d.txt" % i)
            aid = [a for a, pth in arts.items() if pth == path]
            check(aid, "no artifact for %s" % path)
            w = [f for f, t, k in edges if t == aid[0] and k == "write"]
            r = [t for f, t, k in edges if f == aid[0] and k == "read"]
            check(len(w) == 1 and tasks[w[0]]["name"] == "stage1",
                  "%s written by %s" % (path, w))
            check(r == [s2], "%s read by %s" % (path, r))
            cross += tasks[w[0]]["node"] != tasks[s2]["node"]
        if cl.real:
            check(cross == 2, "cross-node edges: %d" % cross)
        # The user's own setup hook ran in each worker, outside any task.
        setups = [f for f in os.listdir(work) if f.startswith("setup-")]
        check(len(setups) == 2, "user setup hook ran %d times" % len(setups))
        for f in setups:
            w = writers_of(tasks, arts, edges, os.path.join(work, f))
            check(len(w) == 1 and w[0] in {t["name"] for t in workers},
                  "%s written by %s (a worker)" % (f, w))
        log("pipeline: %d tasks, %d cross-node edges, namespaces %s"
            % (len(tasks), cross, "real" if cl.real else "loopback"))
    finally:
        for r in raylets:
            if r.poll() is None:
                r.kill()
                r.wait()
        cl.close()
        s.close()


# ------------------------------------------------------------ kill_worker

# A driver that runs two tasks on one worker, waits for the test's "go",
# then has the raylet stop the worker (as Ray's KillWorker does) while a
# long task runs.
KILL_DRIVER = r"""
import json, os, sys, time
import ray
from pipeline import Raylet
d = os.environ["OUT"]
env = ray.init(runtime_env={"env_vars": {"PIPELINE_DIR": d}})
r = Raylet(sys.argv[1])
r.call(op="job", job_id="04000000", runtime_env=env)
os.makedirs(os.path.join(d, "shards"))
out = {"stage1": [r.call(op="task", task_id="%048x" % (0x100 + i),
                         fn="pipeline.stage1", args=[i, d])
                  for i in range(2)]}
print(json.dumps(out), flush=True)
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.05)
out["kill"] = r.call(op="kill", after_ms=500)
out["sleepy"] = r.call(op="task", task_id="%048x" % 0x500,
                       fn="pipeline.sleepy", args=[d, 60])
out["exits"] = r.call(op="shutdown")["exits"]
print(json.dumps(out), flush=True)
"""


def kill_worker(weft):
    s = Scratch("ray-kill")
    coord = Coordinator(weft, s.path("proj")).start()
    job = raylet = drv = None
    try:
        job = Job(weft, coord, s.path("proj"))
        out = s.path("out")
        os.makedirs(out)
        sock = s.path("raylet.sock")
        logf = open(s.path("raylet.log"), "ab")
        raylet = subprocess.Popen(
            [sys.executable, os.path.join(FAKE_RAY, "raylet.py"), "--socket",
             sock, "--node-id", "%056x" % 0xb0],
            env=clean_env(PATH=os.environ.get("PATH", ""),
                          PYTHONPATH=FAKE_RAY),
            stdout=logf, stderr=logf)
        end = time.monotonic() + 30
        while not os.path.exists(sock):
            check(raylet.poll() is None and time.monotonic() < end,
                  "the raylet did not start")
            time.sleep(0.05)
        env = clean_env(**job.contract)
        env.update(PYTHONPATH=os.pathsep.join([SHIM, FAKE_RAY]), OUT=out,
                   WEFT_BIN=weft, WEFT_SPOOL=s.path("spool"),
                   WEFT_HASH_CACHE=s.path("hashes.db"),
                   RAY_RUNTIME_ENV_HOOK="weft.ray.runtime_env_hook")
        drv = subprocess.Popen([sys.executable, "-c", KILL_DRIVER, sock],
                               env=env, stdout=subprocess.PIPE, text=True)
        first = json.loads(drv.stdout.readline())
        check(all(r["ok"] for r in first["stage1"]), "stage1: %s" % first)
        # Shipped while the worker runs: both tasks reach the store before
        # the worker exits (it waits for "go").
        t0 = time.monotonic()
        names = []
        while time.monotonic() - t0 < 30:
            d = dag(weft, s.path("proj"), job.id)
            names = sorted(t["name"] for t in d["tasks"])
            if names.count("stage1") == 2:
                break
            time.sleep(0.2)
        check(names.count("stage1") == 2, "tasks in the store while the "
              "worker runs: %s" % names)
        log("kill_worker: both tasks in the store %.2f s after they ended, "
            "the worker still running" % (time.monotonic() - t0))
        open(os.path.join(out, "go"), "w").close()
        second = json.loads(drv.stdout.readline())
        drv.wait(timeout=60)
        check(not second["sleepy"]["ok"], "sleepy: %s" % second)
        # SIGTERM went on to the worker: Python's handler ran and the
        # worker left with SystemExit(1), before the SIGKILL (-9).
        check(second["exits"] == [1], "the worker exited %s (log: %s)"
              % (second["exits"], open(s.path("raylet.log")).read()))
        check("The process receives a SIGTERM." in
              open(s.path("raylet.log")).read(), "no SIGTERM handler ran")
        rc, err = job.end()
        check(rc == 0, "the job ended with %s: %s" % (rc, err))
        d = dag(weft, s.path("proj"), job.id)
        tasks, arts, edges = index(d)
        workers = [t for t in tasks.values() if t["parent"] is None]
        check(len(workers) == 1, "one worker record: %s" % tasks)
        by_name = tasks_by_name(tasks)
        check(len(by_name.get("stage1", [])) == 2 and
              len(by_name.get("sleepy", [])) == 1,
              "tasks: %s" % sorted(by_name))
        sleepy = by_name["sleepy"][0]
        check(sleepy["exit_code"] == 1 and
              sleepy["parent"] == workers[0]["id"], "sleepy: %s" % sleepy)
        started = os.path.join(out, "sleepy-started.txt")
        check(writers_of(tasks, arts, edges, started) == ["sleepy"],
              "sleepy-started written by %s"
              % writers_of(tasks, arts, edges, started))
        check(not os.listdir(s.path("spool")) or
              all(not n.startswith("w-") for n in os.listdir(s.path("spool"))),
              "left in the spool: %s" % os.listdir(s.path("spool")))
    finally:
        for p in (drv, raylet):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if job:
            job.end()
        coord.kill()
        s.close()


# ------------------------------------------------------------- weft run env

PRINT_ENV = ("import os, json; print(json.dumps({k: os.environ.get(k) for k "
             "in ('RAY_RUNTIME_ENV_HOOK', 'WEFT_RAY_USER_ENV_HOOK', "
             "'PYTHONPATH', 'WEFT_JOB', 'WEFT_COORDINATOR')}))")


def run_env(weft):
    s = Scratch("ray-run-env")
    try:
        proj = s.path("proj")
        os.makedirs(proj)
        base = clean_env(WEFT_SPOOL=s.path("spool"),
                         WEFT_HASH_CACHE=s.path("hashes.db"),
                         PYTHONPATH="/user/lib")
        # RAY_ADDRESS: a Ray driver, detected.
        p = run([weft, "run", "--listen", "tcp://127.0.0.1:0", "--",
                 sys.executable, "-c", PRINT_ENV],
                env=dict(base, RAY_ADDRESS="auto"), cwd=proj, timeout=120)
        check(p.returncode == 0, "weft run: %d %s" % (p.returncode, p.err))
        got = json.loads(p.out.strip().splitlines()[-1])
        check(got["RAY_RUNTIME_ENV_HOOK"] == "weft.ray.runtime_env_hook",
              "hook: %s" % got)
        paths = got["PYTHONPATH"].split(os.pathsep)
        check(paths[-1] == "/user/lib" and len(paths) == 2 and
              os.path.isfile(os.path.join(paths[0], "weft", "ray.py")),
              "PYTHONPATH %r" % got["PYTHONPATH"])
        check(got["WEFT_JOB"] and
              got["WEFT_COORDINATOR"].startswith("tcp://127.0.0.1:"),
              "contract: %s" % got)
        check("RAY_ADDRESS is set" in p.err, p.err)
        # A hook of the user's own: chained (it runs first, in the shim).
        p = run([weft, "run", "--ray", "--listen", "tcp://127.0.0.1:0",
                 "--", sys.executable, "-c", PRINT_ENV],
                env=dict(base, RAY_RUNTIME_ENV_HOOK="mine.hook"), cwd=proj,
                timeout=120)
        got = json.loads(p.out.strip().splitlines()[-1])
        check(p.returncode == 0 and got["WEFT_RAY_USER_ENV_HOOK"] ==
              "mine.hook" and got["RAY_RUNTIME_ENV_HOOK"] ==
              "weft.ray.runtime_env_hook", "chained: %s %s" % (got, p.err))
        # Two of the user's own: refused, nothing started.
        marker = s.path("started")
        p = run([weft, "run", "--ray", "--", "touch", marker],
                env=dict(base, RAY_RUNTIME_ENV_HOOK="mine.hook",
                         WEFT_RAY_USER_ENV_HOOK="other.hook"), cwd=proj)
        check(p.returncode == 2 and "mine.hook" in p.err and
              "other.hook" in p.err and not os.path.exists(marker),
              "conflict: %d %s" % (p.returncode, p.err))
        # --no-ray: a plain local run, nothing set.
        p = run([weft, "run", "--no-ray", "--", sys.executable, "-c",
                 PRINT_ENV], env=dict(base, RAY_ADDRESS="auto"), cwd=proj,
                timeout=120)
        got = json.loads(p.out.strip().splitlines()[-1])
        check(p.returncode == 0 and got["RAY_RUNTIME_ENV_HOOK"] is None and
              got["PYTHONPATH"] == "/user/lib", "--no-ray: %s" % got)
        p = run([weft, "run", "--no-ray", "--listen", "tcp://127.0.0.1:0",
                 "--", "true"], env=base, cwd=proj)
        check(p.returncode == 2, "--listen without --ray: %s" % p.err)
        # weft submit --mode in-cluster: the same driver environment.
        p = run([weft, "submit", "--mode", "in-cluster", "--listen",
                 "tcp://127.0.0.1:0", "--", sys.executable, "-c", PRINT_ENV],
                env=dict(base, RAY_RUNTIME_ENV_HOOK="mine.hook"), cwd=proj,
                timeout=120)
        check(p.returncode == 0, "submit in-cluster: %d %s"
              % (p.returncode, p.err))
        got = json.loads(p.out.strip().splitlines()[-1])
        paths = got["PYTHONPATH"].split(os.pathsep)
        check(got["RAY_RUNTIME_ENV_HOOK"] == "weft.ray.runtime_env_hook" and
              got["WEFT_RAY_USER_ENV_HOOK"] == "mine.hook" and
              paths[-1] == "/user/lib" and len(paths) == 2 and
              os.path.isfile(os.path.join(paths[0], "weft", "ray.py")) and
              got["WEFT_JOB"], "submit in-cluster env: %s" % got)
        p = run([weft, "submit", "--mode", "in-cluster", "--listen",
                 "tcp://127.0.0.1:0", "--", "touch", marker],
                env=dict(base, RAY_RUNTIME_ENV_HOOK="mine.hook",
                         WEFT_RAY_USER_ENV_HOOK="other.hook"), cwd=proj)
        check(p.returncode == 2 and "other.hook" in p.err and
              "weft: job " not in p.err and not os.path.exists(marker),
              "submit in-cluster conflict: %d %s" % (p.returncode, p.err))
    finally:
        s.close()


CASES = {
    "wrap_ptrace": wrap_case("ptrace"),
    "wrap_preload": wrap_case("preload"),
    "wrap_ebpf": wrap_case("ebpf"),
    "shared_fd_ptrace": shared_fd_case("ptrace"),
    "shared_fd_preload": shared_fd_case("preload"),
    "actor_granularity": actor_granularity,
    "pipeline": pipeline,
    "run_env": run_env,
    "kill_worker": kill_worker,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
