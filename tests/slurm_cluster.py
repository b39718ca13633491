#!/usr/bin/env python3
"""slurm_cluster.py - the test Slurm cluster for weft's Slurm tests
(scripts/slurm-test-cluster: munged, slurmctld and two slurmd, each node in
its own network and UTS namespace), and the case runner the slurm_*.py
tests share.

    slurm_cluster.py up      start the cluster, or reuse the one running
    slurm_cluster.py down    stop it (only what the script started)

ctest runs `up` once before the Slurm tests (FIXTURES_SETUP) and `down`
after them (FIXTURES_CLEANUP); each test also calls up(), which reuses a
running cluster, so one test runs alone too. Exit 77 (skip, the reason
printed) where the cluster cannot exist: not root, Slurm not installed.
Standard library only.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from caselib import SKIP, Fail, Skip  # noqa: E402,F401 (shared)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "slurm-test-cluster")
BASE = os.environ.get("WEFT_SLURM_BASE", "/tmp/weft-slurm")
NODES = 2
# A job, a step or the cluster's start: long enough for a loaded 2-core
# machine, short enough that a hang fails the test rather than CI.
TIMEOUT = 120


def text(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else b


def why_not():
    """Why no cluster can run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, slurmd as root)"
    for tool in ("slurmctld", "slurmd", "srun", "sbatch", "munged"):
        if not (shutil.which(tool) or os.path.exists("/usr/sbin/" + tool)):
            return ("%s not found: Slurm is not installed (scripts/"
                    "install-deps installs slurm-wlm munge libslurm-dev)"
                    % tool)
    if not shutil.which("ip") or not shutil.which("nsenter"):
        return "ip or nsenter not found (iproute2, util-linux)"
    return None


def script(cmd, timeout=TIMEOUT):
    env = dict(os.environ, BASE=BASE, NODES=str(NODES))
    return subprocess.run([SCRIPT, cmd], env=env, capture_output=True,
                          timeout=timeout)


def up(strict=False):
    """Start the cluster or reuse it; the SLURM_CONF path. Skip (or, with
    strict, fail) when it does not come up."""
    reason = why_not()
    if reason:
        raise Skip(reason)
    r = script("up")
    if r.returncode != 0:
        msg = "the test cluster did not start:\n%s%s" % (
            text(r.stdout), text(r.stderr)[-3000:])
        raise Fail(msg) if strict else Skip(msg)
    return os.path.join(BASE, "etc", "slurm.conf")


class Cluster:
    """The running cluster, as a test uses it: srun/sbatch with its
    SLURM_CONF, plugstack.conf lines, a scratch directory every node sees
    (one machine: one file system)."""

    def __init__(self, build):
        self.build = os.path.abspath(build) if build else None
        self.conf = up()
        self.plugstack_path = os.path.join(BASE, "etc", "plugstack.conf")
        self.dir = tempfile.mkdtemp(prefix="weft-slurm-test-")
        os.chmod(self.dir, 0o755)
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for k in list(self.env):
            if k.startswith(("WEFT_", "SLURM_SPANK", "SLURM_WEFT_")) or \
                    (k.startswith("SLURM_") and k != "SLURM_CONF"):
                del self.env[k]
        self.env.pop("LD_PRELOAD", None)
        self.plugstack()

    def path(self, name):
        return os.path.join(self.build, name)

    def plugin(self):
        p = self.path("weft_spank.so")
        if not os.path.exists(p):
            raise Skip("%s not built (libslurm-dev's slurm/spank.h missing "
                       "at configure time)" % p)
        return p

    def plugstack(self, *args):
        """plugstack.conf: weft_spank.so with args, or empty (no args and
        None). Read again at every step launch."""
        line = ""
        if args and args[0] is not None:
            line = "optional %s %s\n" % (self.plugin(), " ".join(args))
        tmp = self.plugstack_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(line)
        os.rename(tmp, self.plugstack_path)  # never read half-written

    def run(self, argv, env=None, timeout=TIMEOUT, cwd=None):
        e = dict(self.env)
        if env:
            e.update(env)
        try:
            r = subprocess.run(argv, cwd=cwd or self.dir, env=e,
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fail("%s did not finish in %d s" % (" ".join(argv),
                                                      timeout))
        r.out, r.err = text(r.stdout), text(r.stderr)
        return r

    def srun(self, args, **kw):
        return self.run(["srun"] + list(args), **kw)

    def sbatch(self, args, script_text, timeout=TIMEOUT, **kw):
        """Submit a script and wait for the job to end (polling: sbatch
        --wait sleeps up to 10 s between looks); r.returncode is the job's
        exit code, r.log its output file's text."""
        job = os.path.join(self.dir, "job-%d.sh" % len(os.listdir(self.dir)))
        with open(job, "w") as f:
            f.write(script_text)
        os.chmod(job, 0o755)
        log = job + ".out"
        r = self.run(["sbatch", "--parsable", "-o", log] + list(args) +
                     [job], **kw)
        if r.returncode != 0:
            raise Fail("sbatch exited %d: %s" % (r.returncode, r.err))
        jobid = r.out.strip().split(";")[0]
        deadline = time.monotonic() + timeout
        while True:
            s = self.run(["scontrol", "-o", "show", "job", jobid]).out
            state = re.search(r"JobState=(\S+)", s)
            if state and state.group(1) not in ("PENDING", "RUNNING",
                                                 "CONFIGURING",
                                                 "COMPLETING"):
                break
            if time.monotonic() > deadline:
                raise Fail("job %s not done in %d s: %s" % (jobid, timeout,
                                                           s))
            time.sleep(0.2)
        code = re.search(r"ExitCode=(\d+):(\d+)", s)
        r.returncode = int(code.group(1)) if code else -1
        r.log = open(log).read() if os.path.exists(log) else ""
        return r

    def link(self, node, up):
        """Cut (or restore) node nI's link: its veth's host end on the
        bridge (scripts/slurm-test-cluster names it vwslurm-nI)."""
        veth = "vwslurm-" + node
        r = subprocess.run(["ip", "link", "set", veth, "up" if up else
                            "down"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail("ip link set %s: %s" % (veth, r.stderr))

    def pids_on(self, node, comm):
        """Processes named comm inside node's network namespace."""
        r = subprocess.run(["ip", "netns", "pids", "weft-slurm-" + node],
                           capture_output=True, text=True)
        found = []
        for pid in r.stdout.split():
            try:
                with open("/proc/%s/comm" % pid) as f:
                    if f.read().strip() == comm:
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def cleanup(self):
        for i in range(1, NODES + 1):  # a test that failed mid-cut
            subprocess.run(["ip", "link", "set", "vwslurm-n%d" % i, "up"],
                           capture_output=True)
        self.plugstack()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_cases(prefix, cases, doc):
    """The shared main(): CASE --build DIR, or --list. A case marked
    no_cluster is given the build directory, any other a Cluster."""
    def make_env(args):
        if getattr(cases[args.case], "no_cluster", False):
            return args.build
        return Cluster(args.build)
    return caselib.main(cases, prefix, make_env, needs=("build",), doc=doc,
                        ok="ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["up", "down"])
    args = ap.parse_args()
    reason = why_not()
    if reason:
        print("SKIP [slurm.cluster_%s]: %s" % (args.cmd, reason))
        return SKIP
    if args.cmd == "up":
        try:
            print("SLURM_CONF=%s" % up())
        except Skip as e:
            print("SKIP [slurm.cluster_up]: %s" % e)
            return SKIP
        return 0
    r = script("down")
    sys.stdout.write(text(r.stdout) + text(r.stderr))
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
