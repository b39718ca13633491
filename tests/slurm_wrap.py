#!/usr/bin/env python3
"""slurm_wrap.py - issue 7's scenarios on the test cluster, through
`weft submit` (a coordinator on the cluster's bridge) and `srun weft wrap`:
a two-stage pipeline (four stage-one tasks on two nodes read a shared input
and write one shard each, one stage-two task reads every shard) gives one
merged DAG of five tasks on both nodes with edges by hash; the same through
`sbatch`; a task's exit 3 is srun's and the DAG's; with the coordinator
unreachable, wrapped tasks still finish with their exit status and leave
their fragments in the spool; a node's link cut during a job and restored
after loses nothing once `weft flush` ran there; and the pipeline, exit
statuses and unreachable coordinator again through `srun --weft` and
`sbatch --weft` (weft_spank.so: no wrapper in argv; each task's collector,
`weft task-collect`, records and ships it) with preload, ptrace, eBPF (a
`weft agent` of the build) and auto.

    slurm_wrap.py --build DIR CASE
    slurm_wrap.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed): the cluster
cannot run here, or this weft has no `weft wrap`/`weft submit` yet
("needs weft wrap ...").
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_cluster import Fail, Skip, run_cases  # noqa: E402

CASES = {}
# The coordinator listens on the cluster's bridge, where every node's
# namespace reaches it.
LISTEN = "tcp://10.77.0.1:0"
TASK_RE = re.compile(r"^(\d+)\.(\w+)\.(\d+)@(n\d)$")

STAGE1 = """#!/bin/sh
# stage one: the shared input and this task's number into its own shard
{ cat input.txt; echo "task $SLURM_PROCID on $SLURMD_NODENAME"; } \\
    > shard.$SLURM_PROCID
"""
STAGE2 = """#!/bin/sh
# stage two: every shard into the result
cat shard.0 shard.1 shard.2 shard.3 > result.txt
"""


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Project:
    """A project directory every node sees, with the two stages."""

    def __init__(self, c, needs=("wrap", "submit")):
        self.c = c
        self.weft = c.path("weft")
        self.need(needs)
        self.dir = os.path.join(c.dir, "proj")
        # Its own store (.weft/weft.db), whatever lies above it.
        os.makedirs(os.path.join(self.dir, ".weft"))
        self.write("input.txt", "the shared input\n")
        self.write("stage1", STAGE1, 0o755)
        self.write("stage2", STAGE2, 0o755)
        # A sanitized weft must not fail a task over a leak report. The
        # backend is pinned: these tests are about Slurm and the merged
        # DAG, and ptrace works wherever the cluster does (root).
        self.env = {"ASAN_OPTIONS": "detect_leaks=0", "WEFT_TRACER": "ptrace",
                    "HOME": c.dir, "WEFT_SPOOL": os.path.join(c.dir, "spool"),
                    "WEFT_HASH_CACHE": os.path.join(c.dir, "hashes.db")}

    def need(self, subcommands):
        what = " and ".join("weft " + sub for sub in subcommands)
        for sub in subcommands:
            try:
                r = subprocess.run([self.weft, sub, "--help"],
                                   capture_output=True, timeout=30)
            except OSError:
                raise Skip("needs %s (%s not built)" % (what, self.weft))
            if r.returncode != 0:
                raise Skip("needs %s (`weft %s --help` exited %d: not in "
                           "this build yet)" % (what, sub, r.returncode))

    def write(self, name, body, mode=0o644):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(body)
        os.chmod(p, mode)
        return p

    def submit(self, launcher, timeout=240):
        """weft submit (its own coordinator on the bridge, over the
        project's store) of a launcher script."""
        self.write("launch.sh", "#!/bin/sh\n" + launcher, 0o755)
        return self.c.run([self.weft, "submit", "--listen", LISTEN, "--",
                           "./launch.sh"], env=self.env, cwd=self.dir,
                          timeout=timeout)

    def dag(self):
        """The project's DAG (a fresh project: this test's job only)."""
        argv = [self.weft, "dag", "--format", "json"]
        r = self.c.run(argv, env=self.env, cwd=self.dir)
        if r.returncode != 0:
            raise Fail("%s exited %d:\n%s" % (" ".join(argv), r.returncode,
                                               r.err))
        try:
            return json.loads(r.out)
        except ValueError as e:
            raise Fail("weft dag --format json: %s:\n%s" % (e, r.out[:2000]))


def slurm_tasks(dag, batch=False):
    """The DAG's tasks named job.step.task@node, by name; batch scripts
    (job.batch.0@node) only when asked."""
    tasks = {}
    for t in dag.get("tasks", []):
        m = TASK_RE.match(t.get("name") or "")
        if m and (batch or m.group(2) != "batch"):
            tasks[t["name"]] = t
    return tasks


def batch_tasks(dag):
    """The DAG's batch scripts (job.batch.0@node)."""
    return [t for name, t in slurm_tasks(dag, batch=True).items()
            if TASK_RE.match(name).group(2) == "batch"]


def check_pipeline(dag, r):
    tasks = slurm_tasks(dag)
    steps = {}
    for name in tasks:
        # Each srun outside an allocation is a Slurm job of its own.
        job, step, _, node = TASK_RE.match(name).groups()
        steps.setdefault((job, step), []).append(node)
    counts = sorted(len(v) for v in steps.values())
    if counts != [1, 4]:
        raise Fail("expected a step of 4 tasks and one of 1, got %r\n"
                   "submit stderr:\n%s" % (steps, r.err))
    nodes = {n for v in steps.values() for n in v}
    if nodes != {"n1", "n2"}:
        raise Fail("tasks ran on %r, expected both nodes" % nodes)
    arts = {a["id"]: a for a in dag["artifacts"]}
    ids = {t["id"]: name for name, t in tasks.items()}
    stage2 = [t["id"] for name, t in tasks.items()
              if len(steps[TASK_RE.match(name).group(1, 2)]) == 1][0]
    for i in range(4):
        shard = [a for a in arts.values()
                 if a["path"].endswith("/proj/shard.%d" % i)]
        if len(shard) != 1 or not (shard[0].get("hash") or "").startswith(
                "blake2b-256:"):
            raise Fail("shard.%d: expected one hashed artifact, got %r; "
                       "the DAG:\n%s" % (i, shard, json.dumps(dag, indent=1)))
        a = shard[0]["id"]
        writers = [e["from"] for e in dag["edges"]
                   if e["kind"] == "write" and e["to"] == a]
        readers = [e["to"] for e in dag["edges"]
                   if e["kind"] == "read" and e["from"] == a
                   and not e.get("weak")]
        if len(writers) != 1 or writers[0] not in ids:
            raise Fail("shard.%d: written by %r, expected one stage-one "
                       "task" % (i, writers))
        if stage2 not in readers:
            raise Fail("shard.%d: no edge by hash to the stage-two task "
                       "(readers %r)" % (i, readers))


@case
def wrap_pipeline(c):
    """srun -N2 -n4 weft wrap -- ./stage1, then srun -N1 -n1 weft wrap --
    ./stage2: one DAG, 5 tasks on both nodes, shard edges by hash."""
    p = Project(c)
    r = p.submit("set -e\n"
                 "srun -N2 -n4 %s wrap -- ./stage1\n"
                 "srun -N1 -n1 %s wrap -- ./stage2\n" % (p.weft, p.weft))
    if r.returncode != 0:
        raise Fail("weft submit exited %d:\n%s\n%s" % (r.returncode, r.out,
                                                        r.err))
    check_pipeline(p.dag(), r)


@case
def sbatch_pipeline(c):
    """weft submit -- sbatch --wait of a two-step script whose batch script
    is itself wrapped: the batch task and both steps' tasks in one job, and
    (with weft_spank.so loaded) each step task names the batch task as its
    parent."""
    p = Project(c)
    p.write("steps.sh", "#!/bin/sh\nset -e\n"
            "srun -N2 -n4 %s wrap -- ./stage1\n"
            "srun -N1 -n1 %s wrap -- ./stage2\n" % (p.weft, p.weft), 0o755)
    p.write("job.sh", "#!/bin/sh\nexec %s wrap -- ./steps.sh\n" % p.weft,
            0o755)
    plugin = os.path.exists(c.path("weft_spank.so"))
    if plugin:
        # Loaded, tracing nothing itself: it names the batch task
        # (WEFT_TASK) and gives the steps WEFT_PARENT.
        c.plugstack("default=off")
    r = p.submit("exec sbatch --wait -N2 -n4 -o job.out ./job.sh\n")
    if r.returncode != 0:
        log = open(os.path.join(p.dir, "job.out")).read() \
            if os.path.exists(os.path.join(p.dir, "job.out")) else ""
        raise Fail("weft submit -- sbatch exited %d:\n%s\n%s\n%s"
                   % (r.returncode, r.out, r.err, log))
    dag = p.dag()
    check_pipeline(dag, r)
    batch = batch_tasks(dag)
    if len(batch) != 1:
        raise Fail("expected the batch script as one task, got %r"
                   % [t["name"] for t in dag["tasks"]])
    if not plugin:
        return
    for name, t in slurm_tasks(dag).items():
        if t.get("parent") != batch[0]["id"]:
            raise Fail("%s: parent %r, expected the batch task %s (%s)"
                       % (name, t.get("parent"), batch[0]["id"],
                          batch[0]["name"]))


@case
def wrap_exit_status(c):
    """A wrapped task exiting 3: srun (and weft submit) exit 3, and the DAG
    records exit 3 for it."""
    p = Project(c)
    r = p.submit("exec srun -N1 -n1 %s wrap -- sh -c 'exit 3'\n" % p.weft)
    if r.returncode != 3:
        raise Fail("weft submit -- srun ... exit 3: exited %d\n%s"
                   % (r.returncode, r.err))
    tasks = slurm_tasks(p.dag())
    codes = [t.get("exit_code") for t in tasks.values()]
    if codes != [3]:
        raise Fail("expected one task with exit_code 3, got %r" % codes)


@case
def wrap_unreachable(c):
    """srun -N2 -n2 weft wrap with its coordinator unreachable: each task
    runs on its node, its exit 3 is srun's, and its fragment waits in the
    spool for `weft flush`."""
    p = Project(c, needs=("wrap",))
    spool = os.path.join(c.dir, "spool")
    env = dict(p.env, WEFT_SPOOL=spool,
               # Nothing listens there: the bridge address, an unused port.
               WEFT_COORDINATOR="tcp://10.77.0.1:7799",
               WEFT_JOB="0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c",
               WEFT_JOB_TOKEN="job-token-for-slurm-tests-0123456789")
    r = c.srun(["-N2", "-n2", p.weft, "wrap", "--ship-timeout", "1", "--",
                "sh", "-c", "cat input.txt > out.$SLURM_PROCID; exit 3"],
               env=env, cwd=p.dir)
    if r.returncode != 3:
        raise Fail("srun weft wrap ... exit 3: exited %d\n%s"
                   % (r.returncode, r.err))
    for i in range(2):
        if not os.path.exists(os.path.join(p.dir, "out.%d" % i)):
            raise Fail("task %d did not run (no out.%d)" % (i, i))
    writers = [w for w in os.listdir(spool) if w.startswith("w-")] \
        if os.path.isdir(spool) else []
    names = set()
    for w in writers:
        for f in os.listdir(os.path.join(spool, w)):
            if f.startswith("f-"):
                with open(os.path.join(spool, w, f), "rb") as fh:
                    # msgpack keeps strings as they are: the task's name
                    # is in its fragment's header.
                    names.update(m.decode() for m in re.findall(
                        rb"\d+\.0\.[01]@n[12]", fh.read()))
    want = {"0@n1", "1@n2"}
    got = {n.split(".")[-1] for n in names}
    if len(writers) != 2 or got != want:
        raise Fail("expected the fragments of tasks 0@n1 and 1@n2 in 2 "
                   "writers' spools under %s, got %r in %r"
                   % (spool, sorted(names), writers))


SLOW = """#!/bin/sh
# waits for the test's go (at most 60 s), then writes its shard
touch started.$SLURM_PROCID
i=0
while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
{ cat input.txt; echo "task $SLURM_PROCID"; } > shard.$SLURM_PROCID
"""


def wait_for(what, cond, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise Fail("%s: not within %d s" % (what, timeout))
        time.sleep(0.1)


def spooled(spool):
    return [os.path.join(d, f) for d, _, files in os.walk(spool)
            for f in files if f.startswith("f-")]


@case
def link_cut(c):
    """Node n2's link cut while its task runs and its wrapper ships, and
    restored after: the fragment waits in the spool, `weft flush` on n2
    delivers it, and the DAG has both tasks and both shards."""
    p = Project(c, needs=("wrap", "submit", "flush"))
    p.write("slow", SLOW, 0o755)
    spool = p.env["WEFT_SPOOL"]
    launcher = ("set -e\n"
                "srun -N2 -n2 %s wrap --ship-timeout 1 -- ./slow\n"
                "srun -N1 -n1 -w n2 %s flush\n" % (p.weft, p.weft))
    p.write("launch.sh", "#!/bin/sh\n" + launcher, 0o755)
    env = dict(c.env, **p.env)
    out = open(os.path.join(c.dir, "submit.log"), "w+")
    proc = subprocess.Popen([p.weft, "submit", "--listen", LISTEN, "--",
                             "./launch.sh"], cwd=p.dir, env=env,
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("both tasks started", lambda: all(
            os.path.exists(os.path.join(p.dir, "started.%d" % i))
            for i in range(2)))
        c.link("n2", False)
        try:
            open(os.path.join(p.dir, "go"), "w").close()
            # n2's task is done and its wrapper gave up shipping.
            wait_for("n2's wrapper to exit", lambda: os.path.exists(
                os.path.join(p.dir, "shard.1")) and not c.pids_on(
                    "n2", "weft"))
            left = spooled(spool)
        finally:
            c.link("n2", True)
        if not left:
            raise Fail("n2's wrapper exited with its link down and left "
                       "nothing in the spool %s" % spool)
        rc = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.seek(0)
    log = out.read()
    if rc != 0:
        raise Fail("weft submit exited %d:\n%s" % (rc, log))
    if spooled(spool):
        raise Fail("still spooled after weft flush: %r\n%s"
                   % (spooled(spool), log))
    dag = p.dag()
    tasks = slurm_tasks(dag)
    if sorted(t["node"] for t in tasks.values()) != ["n1", "n2"]:
        raise Fail("expected a task on n1 and one on n2, got %r\n%s"
                   % (sorted(tasks), log))
    for i in range(2):
        arts = [a["id"] for a in dag["artifacts"]
                if a["path"].endswith("/proj/shard.%d" % i)]
        if not any(e["kind"] == "write" and e["to"] in arts
                   for e in dag["edges"]):
            raise Fail("shard.%d: no task wrote it in the DAG\n%s"
                       % (i, log))


def spank(c, p, *args):
    """weft_spank.so of this build in plugstack.conf, with this build's
    preload library and weft (the collector); None when not built."""
    plugin = c.path("weft_spank.so")
    if not os.path.exists(plugin):
        raise Skip("%s not built (libslurm-dev's slurm/spank.h missing at "
                   "configure time)" % plugin)
    c.plugstack("preload=" + c.path("libweft_preload.so"),
                "weft=" + p.weft, *args)


def spank_backends(dag):
    return sorted({t.get("backend") for t in slurm_tasks(dag).values()})


def spank_mode_pipeline(c, mode, p=None, option=None):
    if p is None:
        p = Project(c, needs=("submit", "task-collect"))
        spank(c, p)
    option = option or "--weft=" + mode
    r = p.submit("set -e\n"
                 "srun %s -N2 -n4 ./stage1\n"
                 "srun %s -N1 -n1 ./stage2\n" % (option, option))
    if r.returncode != 0:
        raise Fail("weft submit exited %d:\n%s\n%s" % (r.returncode, r.out,
                                                        r.err))
    if "untraced" in r.err:
        raise Fail("a task ran untraced:\n%s" % r.err)
    dag = p.dag()
    check_pipeline(dag, r)
    if spank_backends(dag) != [mode]:
        raise Fail("backends %r, expected %s for every task"
                   % (spank_backends(dag), mode))


@case
def spank_pipeline(c):
    """The pipeline with `srun --weft=preload` (no wrapper in argv): each
    task's collector (weft task-collect, started by the plugin) ships it;
    one DAG, 5 tasks job.step.task@node on both nodes, edges by hash."""
    spank_mode_pipeline(c, "preload")


class Agent:
    """A `weft agent` of this build for the test (one kernel: every node of
    the test cluster shares it), on a socket in the test's directory;
    stopped by its pid."""

    def __init__(self, c, weft):
        r = subprocess.run([weft, "tracer", "check", "ebpf"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Skip("eBPF not usable here: %s" % (r.stdout.strip()
                                                     .splitlines() or
                                                     [r.stderr])[0])
        self.sock = os.path.join(c.dir, "agent.sock")
        self.log = open(os.path.join(c.dir, "agent.log"), "w+")
        self.proc = subprocess.Popen([weft, "agent", "--socket", self.sock,
                                      "--idle-timeout", "0", "-v"],
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_for("the agent to listen on %s" % self.sock,
                 lambda: os.path.exists(self.sock) or
                 self.proc.poll() is not None, timeout=30)
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise Fail("weft agent exited %d: %s" % (self.proc.returncode,
                                                      self.log.read()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@case
def spank_ebpf_pipeline(c):
    """The same with `srun --weft=ebpf`: each task's collector registers
    it with the node's agent before it execs; and a bare `--weft` (auto)
    picks eBPF when the agent is up."""
    p = Project(c, needs=("submit", "task-collect", "agent"))
    agent = Agent(c, p.weft)
    try:
        spank(c, p, "agent=" + agent.sock)
        spank_mode_pipeline(c, "ebpf", p)
        shutil.rmtree(p.dir)  # a fresh project, a DAG of its own
        q = Project(c, needs=("submit", "task-collect"))
        spank_mode_pipeline(c, "ebpf", q, option="--weft")
    finally:
        agent.stop()


@case
def spank_ptrace_pipeline(c):
    """The same with `srun --weft=ptrace`: each task's collector seizes it
    before it execs."""
    spank_mode_pipeline(c, "ptrace")


@case
def spank_auto_pipeline(c):
    """The same with a bare `srun --weft` (auto) and no agent on the
    nodes: every task falls back to preload and is recorded."""
    p = Project(c, needs=("submit", "task-collect"))
    spank(c, p, "agent=" + os.path.join(c.dir, "no-agent.sock"))
    r = p.submit("set -e\n"
                 "srun --weft -N2 -n4 ./stage1\n"
                 "srun --weft -N1 -n1 ./stage2\n")
    if r.returncode != 0:
        raise Fail("weft submit exited %d:\n%s\n%s" % (r.returncode, r.out,
                                                        r.err))
    dag = p.dag()
    check_pipeline(dag, r)
    if spank_backends(dag) != ["preload"]:
        raise Fail("backends %r, expected preload" % spank_backends(dag))


def spank_exit_checks(c, mode, *plugstack):
    p = Project(c, needs=("submit", "task-collect"))
    spank(c, p, *plugstack)
    plain = c.srun(["-N1", "-n1", "sh", "-c", "exit 3"], cwd=p.dir)
    r = p.submit("exec srun --weft=%s -N1 -n1 sh -c 'exit 3'\n" % mode)
    if r.returncode != 3 or plain.returncode != 3:
        raise Fail("%s: srun ... exit 3: %d with --weft (under weft "
                   "submit), %d without\n%s"
                   % (mode, r.returncode, plain.returncode, r.err))
    tasks = slurm_tasks(p.dag())
    codes = [(t.get("exit_code"), t.get("backend")) for t in tasks.values()]
    if codes != [(3, mode)]:
        raise Fail("expected one %s task with exit_code 3, got %r"
                   % (mode, codes))
    # A task that a signal ends (the preload library sees no exit): the
    # status comes from slurmstepd.
    kill = ["sh", "-c", "kill -TERM $$"]
    plain = c.srun(["-N1", "-n1"] + kill, cwd=p.dir)
    r = p.submit("exec srun --weft=%s -N1 -n1 sh -c 'kill -TERM $$'\n"
                 % mode)
    if r.returncode != plain.returncode:
        raise Fail("%s: srun of a task killed by SIGTERM: %d with --weft, "
                   "%d without\n%s"
                   % (mode, r.returncode, plain.returncode, r.err))
    codes = sorted(t.get("exit_code") for t in slurm_tasks(p.dag()).values())
    if codes != [3, 128 + 15]:
        raise Fail("%s: expected exit codes [3, 143], got %r"
                   % (mode, codes))
    shutil.rmtree(p.dir)


@case
def spank_exit_status(c):
    """`srun --weft` (preload, then ptrace) of a task exiting 3 and of one
    killed by SIGTERM: srun exits as it does without weft, and the DAG
    records each task's status."""
    for mode in ("preload", "ptrace"):
        spank_exit_checks(c, mode)


@case
def spank_ebpf_exit_status(c):
    """The same with `srun --weft=ebpf` and the node's agent."""
    agent = Agent(c, c.path("weft"))
    try:
        spank_exit_checks(c, "ebpf", "agent=" + agent.sock)
    finally:
        agent.stop()


@case
def spank_sbatch_pipeline(c):
    """weft submit -- sbatch --weft=preload of a two-step script (plain
    srun inside; the steps inherit --weft): the batch script and the 5
    step tasks recorded in one job, each step task with the batch task as
    its parent."""
    p = Project(c, needs=("submit", "task-collect"))
    spank(c, p)
    p.write("job.sh", "#!/bin/sh\nset -e\n"
            "srun -N2 -n4 ./stage1\n"
            "srun -N1 -n1 ./stage2\n", 0o755)
    r = p.submit("exec sbatch --wait --weft=preload -N2 -n4 -o job.out "
                 "./job.sh\n")
    log = os.path.join(p.dir, "job.out")
    log = open(log).read() if os.path.exists(log) else ""
    if r.returncode != 0 or "untraced" in log + r.err:
        raise Fail("weft submit -- sbatch --weft exited %d:\n%s\n%s\n%s"
                   % (r.returncode, r.out, r.err, log))
    dag = p.dag()
    check_pipeline(dag, r)
    batch = batch_tasks(dag)
    if len(batch) != 1 or batch[0].get("backend") != "preload":
        raise Fail("expected the batch script as one preload task, got %r"
                   % [(t["name"], t.get("backend")) for t in dag["tasks"]])
    for name, t in slurm_tasks(dag).items():
        if t.get("parent") != batch[0]["id"]:
            raise Fail("%s: parent %r, expected the batch task %s"
                       % (name, t.get("parent"), batch[0]["name"]))


@case
def spank_unreachable(c):
    """`srun --weft` with the coordinator unreachable: the tasks run and
    exit with their status, and their collectors leave the fragments in
    the spool."""
    p = Project(c, needs=("task-collect",))
    spank(c, p, "ship_timeout=1")
    spool = os.path.join(c.dir, "spool")
    env = dict(p.env, WEFT_SPOOL=spool,
               WEFT_COORDINATOR="tcp://10.77.0.1:7799",
               WEFT_JOB="0b5e3c9a-1d2f-4e6a-8b7c-9d0e1f2a3b4c",
               WEFT_JOB_TOKEN="job-token-for-slurm-tests-0123456789")
    r = c.srun(["--weft=preload", "-N2", "-n2", "sh", "-c",
                "cat input.txt > out.$SLURM_PROCID; exit 3"],
               env=env, cwd=p.dir)
    if r.returncode != 3:
        raise Fail("srun --weft ... exit 3: exited %d\n%s"
                   % (r.returncode, r.err))
    names = set()
    for f in spooled(spool):
        with open(f, "rb") as fh:
            names.update(m.decode() for m in re.findall(
                rb"\d+\.0\.[01]@n[12]", fh.read()))
    got = {n.split(".")[-1] for n in names}
    if got != {"0@n1", "1@n2"}:
        raise Fail("expected the fragments of tasks 0@n1 and 1@n2 in the "
                   "spool %s, got %r\n%s" % (spool, sorted(names), r.err))


if __name__ == "__main__":
    sys.exit(run_cases("slurm", CASES, __doc__))
