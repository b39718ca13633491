#!/usr/bin/env python3
"""slurm_spank.py - the test cluster and the SPANK plugin (weft_spank.so)
on it, end to end: nodes in their own namespaces, srun across them, and
per task the LD_PRELOAD, collector socket, env contract and identity the
plugin sets (a stand-in preload library marks each task it is loaded
into; this build's weft is the collector), the plugstack.conf default,
--weft=off, no weft job, a broken library path and a bad --weft that never
fail a task, sbatch with parent links, and the contract through
--export=NONE. What the collectors record and ship (the DAG) is
slurm_wrap.py's spank_* cases.

    slurm_spank.py --build DIR CASE
    slurm_spank.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed).
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_cluster import (BASE, NODES, Fail, Skip, run_cases,  # noqa: E402
                           up)

CASES = {}
JOB_ID = "0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c"
TOKEN = "job-token-for-slurm-tests-0123456789"
# Nothing listens there (the bridge address, an unused port): the tasks'
# collectors keep their fragments in the spool.
COORDINATOR = "tcp://10.77.0.1:7700"


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def ok(r, what):
    if r.returncode != 0:
        raise Fail("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                   % (what, r.returncode, r.out, r.err))
    return r


def stub(c):
    p = c.path("slurm/weft_spank_test_preload.so")
    if not os.path.exists(p):
        raise Skip("%s not built" % p)
    return p


def contract(c, **more):
    """The env contract of a weft job (as weft submit gives it), with the
    spool in the test's directory: only a weft job's tasks are traced."""
    env = {"WEFT_COORDINATOR": COORDINATOR, "WEFT_JOB": JOB_ID,
           "WEFT_JOB_TOKEN": TOKEN, "ASAN_OPTIONS": "detect_leaks=0",
           "WEFT_SPOOL": os.path.join(c.dir, "spool"),
           "WEFT_HASH_CACHE": os.path.join(c.dir, "hashes.db")}
    env.update(more)
    return env


def conf(c, *args):
    """plugstack.conf with the stand-in library, this build's weft as the
    collector, and no waiting for the (absent) coordinator."""
    c.plugstack("preload=" + stub(c), "weft=" + c.path("weft"),
                "ship_timeout=0", *args)


def no_collectors(c, wait_s=10):
    """Every task's collector is gone once its step ended: given a while
    to exit (a loaded machine schedules them late), never left behind."""
    deadline = time.monotonic() + wait_s
    for i in range(1, NODES + 1):
        left = c.pids_on("n%d" % i, "weft")
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = c.pids_on("n%d" % i, "weft")
        if left:
            raise Fail("collectors still running on n%d %d s after the "
                       "step: %r" % (i, wait_s, left))


def task_envs(out):
    """`srun -l env` output -> {task id: its environment}: -l labels every
    line with its task ("1: KEY=VALUE"), so tasks printing at the same time
    do not mix."""
    tasks = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+): ([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            tasks.setdefault(int(m.group(1)), {})[m.group(2)] = m.group(3)
    return tasks


# Each task prints its environment, every line labelled with the task.
DUMP = ["-l", "env"]


def two_tasks(c, weft, env, what):
    """srun WEFT -N2 -n2 DUMP, which must succeed: (its result, {task id:
    its environment}) with tasks 0 and 1 both there."""
    r = ok(c.srun([weft, "-N2", "-n2"] + DUMP, env=env), what)
    tasks = task_envs(r.out)
    if sorted(tasks) != [0, 1]:
        raise Fail("expected tasks 0 and 1, got %r:\n%s" % (sorted(tasks),
                                                           r.out))
    return r, tasks


def expect_identity(d, what):
    want = "%s.%s.%s@%s" % (d.get("SLURM_JOB_ID"), d.get("SLURM_STEP_ID"),
                            d.get("SLURM_PROCID"), d.get("SLURMD_NODENAME"))
    if d.get("WEFT_TASK") != want:
        raise Fail("%s: WEFT_TASK=%r, expected %r (from SLURM_* of the "
                   "same task)" % (what, d.get("WEFT_TASK"), want))
    if d.get("WEFT_NODE") != d.get("SLURMD_NODENAME"):
        raise Fail("%s: WEFT_NODE=%r, SLURMD_NODENAME=%r"
                   % (what, d.get("WEFT_NODE"), d.get("SLURMD_NODENAME")))


def netns_of(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def cluster(build):
    """NODES slurmd, each in its own network and UTS namespace with its own
    address, and all idle in sinfo."""
    conf = up(strict=True)
    seen_net, seen_uts = set(), set()
    for i in range(1, NODES + 1):
        pidfile = os.path.join(BASE, "run", "slurmd-n%d.pid" % i)
        try:
            pid = int(open(pidfile).read())
        except (OSError, ValueError) as e:
            raise Fail("slurmd n%d: no pid file %s (%s)" % (i, pidfile, e))
        net, uts = netns_of(pid, "net"), netns_of(pid, "uts")
        if net == netns_of(os.getpid(), "net") or net in seen_net:
            raise Fail("slurmd n%d is not in a network namespace of its "
                       "own (%s)" % (i, net))
        if uts in seen_uts or uts == netns_of(os.getpid(), "uts"):
            raise Fail("slurmd n%d has no UTS namespace of its own" % i)
        seen_net.add(net)
        seen_uts.add(uts)
        addr = subprocess.run(["ip", "-n", "weft-slurm-n%d" % i, "-4", "-o",
                               "addr", "show", "eth0"],
                              capture_output=True, text=True).stdout
        if "10.77.0.1%d/" % i not in addr:
            raise Fail("node n%d: eth0 lacks 10.77.0.1%d: %r" % (i, i, addr))
    r = subprocess.run(["sinfo", "-h", "-N", "-t", "idle", "-o", "%N"],
                       env=dict(os.environ, SLURM_CONF=conf),
                       capture_output=True, text=True, timeout=30)
    nodes = set(r.stdout.split())
    if nodes != {"n%d" % i for i in range(1, NODES + 1)}:
        raise Fail("sinfo idle nodes: %r\n%s" % (nodes, r.stderr))


cluster.no_cluster = True
CASES["cluster"] = cluster


@case
def srun_hostname(c):
    """srun -N2 -n4 hostname: four tasks, two on each node, each node's
    own hostname."""
    r = ok(c.srun(["-N2", "-n4", "hostname"]), "srun -N2 -n4 hostname")
    names = sorted(r.out.split())
    if names != ["n1", "n1", "n2", "n2"]:
        raise Fail("hostnames %r, expected n1 n1 n2 n2" % names)


@case
def exit_status(c):
    """A task's exit 3 is srun's exit status, with and without --weft."""
    conf(c)
    for extra in ([], ["--weft=preload"]):
        r = c.srun(extra + ["-N1", "-n1", "sh", "-c", "exit 3"],
                   env=contract(c))
        if r.returncode != 3:
            raise Fail("srun %s exit 3: got %d\n%s"
                       % (" ".join(extra), r.returncode, r.err))


@case
def preload_env(c):
    """srun --weft=preload -N2 -n2: every task has LD_PRELOAD, the env
    contract and its own identity, and the library was loaded in it."""
    lib = stub(c)
    marks = os.path.join(c.dir, "marks")
    os.mkdir(marks)
    spool = os.path.join(c.dir, "site-spool")
    conf(c, "spool=" + spool)
    env = contract(c, WEFT_SPANK_TEST_MARKS=marks)
    del env["WEFT_SPOOL"]
    r, tasks = two_tasks(c, "--weft=preload", env, "srun --weft=preload")
    nodes = set()
    for tid, d in tasks.items():
        what = "task %d" % tid
        if d.get("LD_PRELOAD", "").split(":")[0] != lib:
            raise Fail("%s: LD_PRELOAD=%r, expected %s first"
                       % (what, d.get("LD_PRELOAD"), lib))
        for k, v in (("WEFT_TRACER", "preload"),
                     ("WEFT_COORDINATOR", env["WEFT_COORDINATOR"]),
                     ("WEFT_JOB", JOB_ID), ("WEFT_JOB_TOKEN", TOKEN),
                     ("WEFT_SPOOL", spool)):
            if d.get(k) != v:
                raise Fail("%s: %s=%r, expected %r" % (what, k, d.get(k), v))
        expect_identity(d, what)
        if "WEFT_UNTRACED" in d:
            raise Fail("%s: WEFT_UNTRACED set" % what)
        if not d.get("WEFT_PRELOAD_SOCK", "").startswith("/"):
            raise Fail("%s: WEFT_PRELOAD_SOCK=%r: no collector's socket"
                       % (what, d.get("WEFT_PRELOAD_SOCK")))
        if not os.path.exists(os.path.join(marks, d["WEFT_TASK"])):
            raise Fail("%s: the preload library was not loaded in it (no "
                       "mark %s)" % (what, d["WEFT_TASK"]))
        nodes.add(d["SLURMD_NODENAME"])
    if nodes != {"n1", "n2"}:
        raise Fail("tasks ran on %r, expected n1 and n2" % nodes)
    no_collectors(c)


@case
def default_and_off(c):
    """plugstack.conf default=preload traces a step without --weft;
    --weft=off opts out of it."""
    lib = stub(c)
    conf(c, "default=preload")
    d = task_envs(ok(c.srun(["-N1", "-n1"] + DUMP, env=contract(c)),
                     "srun (default)").out)[0]
    if d.get("LD_PRELOAD") != lib or d.get("WEFT_TRACER") != "preload":
        raise Fail("default=preload: LD_PRELOAD=%r WEFT_TRACER=%r"
                   % (d.get("LD_PRELOAD"), d.get("WEFT_TRACER")))
    expect_identity(d, "default")
    d = task_envs(ok(c.srun(["--weft=off", "-N1", "-n1"] + DUMP),
                     "srun --weft=off").out)[0]
    leaked = [k for k in d if k.startswith("WEFT_") or k == "LD_PRELOAD"]
    if leaked:
        raise Fail("--weft=off: the task still got %r" % leaked)


@case
def bad_library(c):
    """A preload= path that does not exist: every task still runs and
    exits 0 with its output, untraced, and the error names the path."""
    bad = "/nonexistent/weft/libweft_preload.so"
    c.plugstack("preload=" + bad, "weft=" + c.path("weft"))
    r, tasks = two_tasks(c, "--weft=preload", contract(c),
                         "srun --weft=preload with a missing library")
    for tid, d in tasks.items():
        if "LD_PRELOAD" in d or d.get("WEFT_UNTRACED") != "1":
            raise Fail("task %d: LD_PRELOAD=%r WEFT_UNTRACED=%r" % (
                tid, d.get("LD_PRELOAD"), d.get("WEFT_UNTRACED")))
    if bad not in r.err:
        raise Fail("stderr does not name %s:\n%s" % (bad, r.err))


@case
def bad_arguments(c):
    """Unknown plugstack.conf arguments are reported and ignored; a
    WEFT_TASK that is no task name gives no parent; a bad --weft is refused
    by srun before anything runs, naming the value."""
    lib = stub(c)
    c.plugstack("preload=" + lib, "colour=red")
    r = ok(c.srun(["--weft=preload", "-n1", "true"]), "srun with colour=red")
    if "colour" not in r.err:
        raise Fail("unknown argument not reported:\n%s" % r.err)
    # A launching environment whose WEFT_TASK is no task name: the task
    # runs traced, with no WEFT_PARENT that weft wrap would refuse.
    r = ok(c.srun(["--weft=preload", "-n1"] + DUMP,
                  env={"WEFT_TASK": "my task"}), "srun with a bad WEFT_TASK")
    d = task_envs(r.out)[0]
    if "WEFT_PARENT" in d or "my task" not in r.err:
        raise Fail("bad WEFT_TASK: WEFT_PARENT=%r, stderr:\n%s"
                   % (d.get("WEFT_PARENT"), r.err))
    expect_identity(d, "task under a bad WEFT_TASK")
    marker = os.path.join(c.dir, "ran")
    r = c.srun(["--weft=fast", "-n1", "touch", marker])
    if r.returncode == 0 or os.path.exists(marker):
        raise Fail("--weft=fast was accepted (exit %d)" % r.returncode)
    if "--weft=fast" not in r.err or "preload" not in r.err:
        raise Fail("--weft=fast: no clear error:\n%s" % r.err)


@case
def agent_modes(c):
    """No agent on the node: --weft=ebpf runs the task untraced, naming the
    socket; a bare --weft (auto) falls back to preload."""
    lib = stub(c)
    sock = os.path.join(c.dir, "no-agent.sock")
    conf(c, "agent=" + sock)
    r, tasks = two_tasks(c, "--weft=ebpf", contract(c), "srun --weft=ebpf")
    for tid, d in tasks.items():
        if d.get("WEFT_UNTRACED") != "1" or "LD_PRELOAD" in d:
            raise Fail("ebpf task %d: WEFT_UNTRACED=%r LD_PRELOAD=%r"
                       % (tid, d.get("WEFT_UNTRACED"), d.get("LD_PRELOAD")))
        expect_identity(d, "ebpf task %d" % tid)
    if sock not in r.err:
        raise Fail("stderr does not name the agent socket %s:\n%s"
                   % (sock, r.err))
    d = task_envs(ok(c.srun(["--weft", "-n1"] + DUMP, env=contract(c)),
                     "srun --weft").out)[0]
    if d.get("WEFT_TRACER") != "preload" or d.get("LD_PRELOAD") != lib:
        raise Fail("auto without an agent: WEFT_TRACER=%r LD_PRELOAD=%r"
                   % (d.get("WEFT_TRACER"), d.get("LD_PRELOAD")))


@case
def weft_in_argv(c):
    """srun --weft weft ...: the task gets its identity but no preload
    underneath (weft wrap traces it itself)."""
    conf(c)
    fake = os.path.join(c.dir, "weft")  # "weft" printing its environment
    os.symlink("/usr/bin/env", fake)
    r = ok(c.srun(["--weft=preload", "-l", "-n1", fake], env=contract(c)),
           "srun weft")
    d = task_envs(r.out)[0]
    if "LD_PRELOAD" in d:
        raise Fail("weft in argv got LD_PRELOAD=%r" % d["LD_PRELOAD"])
    expect_identity(d, "weft task")


@case
def no_job(c):
    """Outside a weft job (no WEFT_JOB: not under weft submit) a task is
    not traced: --weft says why on stderr, a plugstack default= says
    nothing and leaves the task's environment alone; the task runs
    either way."""
    conf(c)
    r = ok(c.srun(["--weft=preload", "-n1"] + DUMP), "srun --weft")
    d = task_envs(r.out)[0]
    if d.get("WEFT_UNTRACED") != "1" or "LD_PRELOAD" in d:
        raise Fail("no job: WEFT_UNTRACED=%r LD_PRELOAD=%r"
                   % (d.get("WEFT_UNTRACED"), d.get("LD_PRELOAD")))
    if "weft submit" not in r.err or "WEFT_JOB" not in r.err:
        raise Fail("--weft outside a weft job: no clear error:\n%s" % r.err)
    conf(c, "default=preload")
    r = ok(c.srun(["-n1"] + DUMP), "srun (default=preload)")
    if "weft" in r.err:
        raise Fail("default=preload outside a weft job is not silent:\n%s"
                   % r.err)
    d = task_envs(r.out)[0]
    left = sorted(k for k in d if k.startswith("WEFT_"))
    if left:
        raise Fail("default=preload outside a weft job changed the task's "
                   "environment: %s" % left)


BATCH = """#!/bin/sh
env | sed 's/^/batch: /'
srun -l -N2 -n2 env
"""


@case
def sbatch_parent(c):
    """sbatch --weft=preload: the batch script is task J.batch.0, each step
    task names it as WEFT_PARENT; the contract reaches every step."""
    lib = stub(c)
    conf(c)
    env = contract(c)
    r = c.sbatch(["--weft=preload", "-N2"], BATCH, env=env)
    check_batch(r, lib)


@case
def export_none(c):
    """sbatch --export=NONE (and srun --export=NONE inside): the plugin
    carries the env contract through, as SLURM_WEFT_*, which Slurm always
    exports; the steps still link to the batch task."""
    lib = stub(c)
    conf(c)
    env = contract(c)
    # No PATH under --export=NONE: every command by its full path.
    script = """#!/bin/sh
/usr/bin/env | /usr/bin/sed 's/^/batch: /'
/usr/bin/srun --export=NONE -l -N2 -n2 /usr/bin/env
"""
    r = c.sbatch(["--weft=preload", "--export=NONE", "-N2"], script,
                 env=env)
    check_batch(r, lib)


def check_batch(r, lib):
    if r.returncode != 0:
        raise Fail("sbatch --wait exited %d\n%s\n%s" % (r.returncode, r.err,
                                                         r.log))
    batch = dict(l[len("batch: "):].split("=", 1)
                 for l in r.log.splitlines()
                 if l.startswith("batch: ") and "=" in l)
    steps = list(task_envs(r.log).values())
    if not batch or len(steps) != 2:
        raise Fail("expected the batch task and 2 step tasks:\n%s" % r.log)
    want = "%s.batch.0@%s" % (batch.get("SLURM_JOB_ID"),
                              batch.get("SLURMD_NODENAME"))
    if batch.get("WEFT_TASK") != want or batch.get("LD_PRELOAD") != lib:
        raise Fail("batch task: WEFT_TASK=%r (expected %r), LD_PRELOAD=%r"
                   % (batch.get("WEFT_TASK"), want, batch.get("LD_PRELOAD")))
    socks = {batch.get("WEFT_PRELOAD_SOCK")} | {
        d.get("WEFT_PRELOAD_SOCK") for d in steps}
    if len(socks) != 3 or not all(s and s.startswith("/") for s in socks):
        raise Fail("expected a collector's socket of its own for the batch "
                   "task and each step task, got %r" % socks)
    nodes = set()
    for d in steps:
        what = "step task %s" % d.get("SLURM_PROCID")
        expect_identity(d, what)
        if d.get("WEFT_PARENT") != want:
            raise Fail("%s: WEFT_PARENT=%r, expected %r"
                       % (what, d.get("WEFT_PARENT"), want))
        for k, v in (("WEFT_JOB", JOB_ID), ("WEFT_JOB_TOKEN", TOKEN),
                     ("WEFT_COORDINATOR", "tcp://10.77.0.1:7700")):
            if d.get(k) != v:
                raise Fail("%s: %s=%r, expected %r" % (what, k, d.get(k), v))
        if d.get("LD_PRELOAD", "").split(":")[0] != lib:
            raise Fail("%s: LD_PRELOAD=%r" % (what, d.get("LD_PRELOAD")))
        nodes.add(d.get("SLURMD_NODENAME"))
    if nodes != {"n1", "n2"}:
        raise Fail("steps ran on %r, expected n1 and n2" % nodes)


if __name__ == "__main__":
    sys.exit(run_cases("slurm", CASES, __doc__))
