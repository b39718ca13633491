#!/usr/bin/env python3
"""slurm_collect.py - `weft task-collect` (the collector weft_spank.so
starts for each `srun --weft` task) without Slurm: this script plays the
plugin's part. Under `weft submit` (a coordinator of its own), a driver
forks a task that waits, starts the collector for it exactly as the
plugin does (detached, the answer pipe on fd 3, the task's environment),
reads its "ok", lets the task exec (preload: with the library and the
socket; ptrace: seized), reaps it and sends its wait status over the
control socket as slurmstepd does, then waits for "done". The DAG must
hold the task under the given name, with its exit status, what it read and
what it wrote. The Slurm cluster tests (slurm_wrap.py spank_*) do the same
through the real plugin.

    slurm_collect.py --build DIR CASE
    slurm_collect.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_cluster import Fail, Skip, run_cases  # noqa: E402

CASES = {}
TASK = "77.0.1@testnode"

# The plugin's part, run by weft submit (which gives it the env contract):
# argv: weft mode lib control workdir
DRIVER = r'''
import os, socket, sys
weft, mode, lib, control, work = sys.argv[1:6]
agent = ["--agent", sys.argv[7]] if len(sys.argv) > 7 else []
cmd = ["/bin/sh", "-c", "{ cat input.txt; echo out; } > output.txt; exit 3"]
go_r, go_w = os.pipe()
task = os.fork()
if task == 0:
    os.close(go_w)
    env = dict(os.environ)
    extra = os.read(go_r, 4096).decode()
    if not extra.startswith("go"):
        os._exit(99)
    if extra.startswith("go preload "):
        env["LD_PRELOAD"] = lib
        env["WEFT_PRELOAD_SOCK"] = extra[len("go preload "):]
    os.chdir(work)
    os.execve(cmd[0], cmd, env)
os.close(go_r)
ready_r, ready_w = os.pipe()
argv = [weft, "task-collect", "--pid", str(task), "--ready-fd", "3",
        "--control", control, "--task", sys.argv[6], "--ship-timeout", "10",
        "--tracer", mode] + agent + ["--"] + cmd
collector = os.fork()
if collector == 0:
    os.setsid()
    os.close(ready_r)
    os.dup2(ready_w, 3)
    os.execv(weft, argv)
os.close(ready_w)
line = b""
while not line.endswith(b"\n"):
    b = os.read(ready_r, 1024)
    if not b:
        break
    line += b
line = line.decode().strip()
print("collector said:", line, flush=True)
if not line.startswith("ok " + mode):
    os.write(go_w, b"no")
    sys.exit(90)
os.write(go_w, ("go " + line[3:]).encode())
_, status = os.waitpid(task, 0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("\0" + control)
s.send(b"exit %d" % status)
s.settimeout(60)
reply = s.recv(16)
print("collector replied:", reply, flush=True)
os.waitpid(collector, 0)
sys.exit(0 if reply == b"done" else 91)
'''


def case(fn):
    fn.no_cluster = True
    CASES[fn.__name__] = fn
    return fn


def start_agent(weft, work, env):
    """A node agent of this test's own at work/agent.sock (never another
    test's or the machine's), or Skip when this machine cannot load the
    eBPF programs."""
    sock = os.path.join(work, "agent.sock")
    agent = subprocess.Popen([weft, "agent", "--socket", sock,
                              "--idle-timeout", "0"], env=env,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        if os.path.exists(sock) or agent.poll() is not None:
            break
        time.sleep(0.1)
    if not os.path.exists(sock):
        agent.kill()
        _, err = agent.communicate()
        raise Skip("no weft agent on this machine: %s" % err.strip())
    return agent, sock


def collect(build, mode):
    weft = os.path.join(os.path.abspath(build), "weft")
    lib = os.path.join(os.path.abspath(build), "libweft_preload.so")
    if not os.path.exists(weft):
        raise Skip("%s not built" % weft)
    r = subprocess.run([weft, "task-collect", "--help"], capture_output=True)
    if r.returncode != 0:
        raise Skip("this weft has no task-collect")
    work = tempfile.mkdtemp(prefix="weft-collect-")
    agent = None
    try:
        os.mkdir(os.path.join(work, ".weft"))
        with open(os.path.join(work, "input.txt"), "w") as f:
            f.write("the input\n")
        with open(os.path.join(work, "driver.py"), "w") as f:
            f.write(DRIVER)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WEFT_", "SLURM_")) and k != "LD_PRELOAD"}
        env.update(ASAN_OPTIONS="detect_leaks=0", HOME=work,
                   WEFT_SPOOL=os.path.join(work, "spool"))
        control = "weft-task-test/%d/%s" % (os.getpid(), mode)
        extra = []
        if mode == "ebpf":
            agent, sock = start_agent(weft, work, env)
            extra = [sock]
        r = subprocess.run([weft, "submit", "--listen", "tcp://127.0.0.1:0",
                            "--", sys.executable, "driver.py", weft, mode,
                            lib, control, work, TASK] + extra,
                           cwd=work, env=env, capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            if mode == "ptrace" and "PTRACE_SEIZE" in r.stdout + r.stderr:
                raise Skip("ptrace not permitted here:\n%s" % r.stdout)
            raise Fail("weft submit of the driver exited %d\n%s\n%s"
                       % (r.returncode, r.stdout, r.stderr))
        d = subprocess.run([weft, "dag", "--format", "json"], cwd=work,
                           env=env, capture_output=True, text=True,
                           timeout=60)
        dag = json.loads(d.stdout)
        tasks = [t for t in dag["tasks"] if t["name"] == TASK]
        if len(tasks) != 1:
            raise Fail("expected task %s in the DAG, got %r\n%s"
                       % (TASK, [t["name"] for t in dag["tasks"]], r.stderr))
        t = tasks[0]
        if t["exit_code"] != 3 or t["backend"] != mode:
            raise Fail("task %s: exit_code %r backend %r, expected 3 %s"
                       % (TASK, t["exit_code"], t["backend"], mode))
        arts = {a["id"]: a["path"] for a in dag["artifacts"]}
        edges = {(e["kind"], arts.get(e["from"], e["from"]),
                  arts.get(e["to"], e["to"])) for e in dag["edges"]}
        want = {("read", os.path.join(work, "input.txt"), t["id"]),
                ("write", t["id"], os.path.join(work, "output.txt"))}
        if not want <= edges:
            raise Fail("expected edges %r, got %r" % (want, edges))
    finally:
        if agent:
            agent.terminate()
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)


@case
def collect_preload(build):
    """A task preloaded by the plugin's way is recorded and shipped by its
    collector: exit 3, its input read, its output written."""
    collect(build, "preload")


@case
def collect_ptrace(build):
    """The same with the collector seizing the task before it execs."""
    collect(build, "ptrace")


@case
def collect_ebpf(build):
    """The same with the collector registering the task with the node's
    agent (one of this test's own)."""
    collect(build, "ebpf")


def refusal(build, extra, env):
    """The collector's answer and exit status for a task-collect with
    extra arguments in env."""
    weft = os.path.join(os.path.abspath(build), "weft")
    if not os.path.exists(weft):
        raise Skip("%s not built" % weft)
    env = dict(env, ASAN_OPTIONS="detect_leaks=0")
    r_fd, w_fd = os.pipe()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        p = subprocess.Popen([weft, "task-collect", "--pid",
                              str(sleeper.pid), "--ready-fd", str(w_fd),
                              "--control", "weft-task-test/refuse/%d"
                              % os.getpid()] + extra +
                             ["--", "sleep", "30"],
                             env=env, pass_fds=(w_fd,),
                             stderr=subprocess.PIPE)
        os.close(w_fd)
        line = os.read(r_fd, 4096).decode()
        rc = p.wait(timeout=60)
    finally:
        sleeper.kill()
        sleeper.wait()
    return line, rc


@case
def collect_refuses(build):
    """Without the env contract the collector answers "error" naming what
    is missing, and leaves (the plugin then runs the task untraced)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
    line, rc = refusal(build, [], env)
    if not line.startswith("error ") or "WEFT_" not in line or rc == 0:
        raise Fail("expected an error naming the contract and a failure "
                   "exit, got %r (exit %d)" % (line, rc))


@case
def collect_tracer_choices(build):
    """A --tracer that cannot collect a task is refused with the backends
    that can (from the backend table: every built-in one), and eBPF
    without --agent with what it needs; the task is not traced."""
    # A full env contract: only the tracer can be refused.
    env = dict(os.environ, WEFT_COORDINATOR="tcp://127.0.0.1:9",
               WEFT_JOB="00000000-0000-4000-8000-000000000000",
               WEFT_JOB_TOKEN="x" * 32)
    line, rc = refusal(build, ["--tracer", "strace"], env)
    want = ("error weft task-collect: tracer strace: expected ebpf, "
            "preload or ptrace\n")
    if line != want or rc != 2:
        raise Fail("expected %r and exit 2, got %r (exit %d)"
                   % (want, line, rc))
    line, rc = refusal(build, ["--tracer", "ebpf"], env)
    want = "error weft task-collect: --tracer ebpf needs --agent SOCKET\n"
    if line != want or rc != 2:
        raise Fail("expected %r and exit 2, got %r (exit %d)"
                   % (want, line, rc))


if __name__ == "__main__":
    sys.exit(run_cases("collect", CASES, __doc__))
