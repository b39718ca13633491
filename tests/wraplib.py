"""wraplib.py - what the distributed end-to-end tests (tests/wrap_*.py,
pull_e2e.py, dist_coordinator.py) share: a scratch directory, a
coordinator process on a free port, the env contract of a job, a test
certificate, a store's rows, network namespaces as stand-in cluster nodes,
and the usual checks. Standard library only.

Network namespaces: `Cluster(n)` makes n namespaces joined by a bridge in
the caller's namespace (10.77.X.0/24; the caller is .1, node i is .(10+i)),
so a coordinator listening on the bridge address is reachable from every
node, and each node's traffic is really routed. Without root or without
`ip netns`, `Cluster` falls back to loopback (every "node" is the local
machine) and says why on stderr.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import caselib
from caselib import SKIP, Fail, Skip, check  # noqa: F401 (shared)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=20.0, proc=None):
    """Until something accepts TCP connections on host:port."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise Fail("the coordinator exited with %d before listening"
                       % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise Fail("nothing listens on %s:%d after %.0fs" % (host, port, timeout))


class Scratch:
    """A temporary directory, removed afterwards unless WEFT_E2E_KEEP=1."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="weft-%s-" % name)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def close(self):
        if os.environ.get("WEFT_E2E_KEEP") == "1":
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Coordinator:
    """`weft coordinator --listen tcp://HOST:PORT --store DB` as a child
    process; start() again after kill() to restart on the same port."""

    def __init__(self, weft, project, host="127.0.0.1", port=None,
                 logpath=None):
        """Its store is PROJECT/.weft/weft.db, so that `weft dag` and
        `weft job` run in PROJECT read it."""
        os.makedirs(os.path.join(project, ".weft"), exist_ok=True)
        store = os.path.join(project, ".weft", "weft.db")
        self.weft, self.store, self.host = weft, store, host
        # The key whose holders may create jobs there, made by the
        # coordinator when it starts (Job passes it to weft submit).
        self.submit_key = os.path.join(project, ".weft", "coordinator.key")
        self.port = port or free_port()
        self.url = "tcp://%s:%d" % (host, self.port)
        self.logpath = logpath or store + ".coordinator.log"
        self.proc = None

    def start(self):
        out = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [self.weft, "coordinator", "--listen", self.url,
             "--store", self.store], stdout=out, stderr=out)
        out.close()
        wait_port(self.host, self.port, proc=self.proc)
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def run(cmd, env=None, timeout=120, cwd=None, check_rc=None):
    """Run cmd; returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    if check_rc is not None and p.returncode != check_rc:
        raise Fail("%s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                   % (" ".join(cmd), p.returncode, check_rc, p.out, p.err))
    return p


def run_tty(cmd, env=None, timeout=120, cwd=None):
    """Run cmd with its stderr on a pseudo-terminal (stdout a pipe), as a
    person at a terminal would see it; returns CompletedProcess with text
    stdout and err (what the terminal got, escapes and all)."""
    import pty
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=slave, stdin=subprocess.DEVNULL)
    finally:
        os.close(slave)
    import threading
    got = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.read()))
    reader.start()
    chunks = []
    try:
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(master)
    reader.join(timeout)
    out = got[0] if got else b""
    proc.stdout.close()
    proc.wait(timeout=timeout)
    p = subprocess.CompletedProcess(cmd, proc.returncode, out)
    p.out = out.decode(errors="replace")
    p.err = b"".join(chunks).decode(errors="replace")
    return p


class Job:
    """A job open for the length of a test: `weft submit --coordinator URL
    --submit-key FILE -- sh -c '...'` whose command writes the env
    contract it got to a file and waits until end() (then the job ends
    with the given status). coordinator: a Coordinator (its URL and
    submit key)."""

    def __init__(self, weft, coordinator, cwd, status=0):
        self.contract_file = os.path.join(cwd, ".job-contract-%d" % id(self))
        self.done_file = self.contract_file + ".done"
        script = ("env -0 > %s.tmp && mv %s.tmp %s; "
                  "while [ ! -e %s ]; do sleep 0.05; done; exit %d"
                  % (self.contract_file, self.contract_file,
                     self.contract_file, self.done_file, status))
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("WEFT_"):
                del env[k]
        self.proc = subprocess.Popen(
            [weft, "submit", "--coordinator", coordinator.url,
             "--submit-key", coordinator.submit_key, "--", "sh",
             "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        end = time.monotonic() + 60
        while not os.path.exists(self.contract_file):
            if self.proc.poll() is not None or time.monotonic() > end:
                out, err = self.proc.communicate()
                raise Fail("weft submit did not start its command (exit "
                           "%s): %s" % (self.proc.returncode,
                                        err.decode(errors="replace")))
            time.sleep(0.02)
        with open(self.contract_file, "rb") as f:
            items = f.read().split(b"\0")
        self.contract = {}
        for item in items:
            k, _, v = item.decode(errors="replace").partition("=")
            if k.startswith("WEFT_"):
                self.contract[k] = v
        check("WEFT_JOB" in self.contract and
              "WEFT_JOB_TOKEN" in self.contract,
              "weft submit exported no job: %r" % self.contract)
        self.id = self.contract["WEFT_JOB"]

    def end(self, timeout=60):
        """End the job; returns weft submit's exit status and stderr."""
        if self.proc is None:
            return None, ""
        open(self.done_file, "w").close()
        out, err = self.proc.communicate(timeout=timeout)
        rc, self.proc = self.proc.returncode, None
        return rc, err.decode(errors="replace")


def wrap_env(contract, spool, **extra):
    """The environment of a `weft wrap` in a job: the caller's without any
    WEFT_* or SLURM* variable, then the job's contract, the spool (and a
    hash cache beside it), the ptrace tracer and extra."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("WEFT_") or k.startswith("SLURM"):
            del env[k]
    env.update(contract)
    env["WEFT_SPOOL"] = spool
    env["WEFT_HASH_CACHE"] = spool.rstrip("/") + "-hashes.db"
    env["WEFT_TRACER"] = "ptrace"
    env.update(extra)
    return env


def store_rows(con):
    """Every row of a fragment store's tables (an open sqlite3
    connection), sorted: what a refused request must not change."""
    out = {}
    for t in ("jobs", "writers", "envelopes", "runs", "tasks", "processes",
              "file_io", "paths", "artifacts"):
        out[t] = sorted(map(repr, con.execute(
            "SELECT * FROM %s" % t).fetchall()))
    return out


def make_cert(directory, name):
    """A self-signed certificate for localhost: (DIR/NAME.pem,
    DIR/NAME.key). Skip when openssl cannot make one."""
    if not shutil.which("openssl"):
        raise Skip("openssl not installed: cannot make a test certificate")
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip("openssl could not make a certificate: " + p.stderr)
    return cert, key


def dag(weft, store_dir, job):
    """`weft dag --job ID --format json` in the project holding the store."""
    p = run([weft, "dag", "--job", job, "--format", "json"], cwd=store_dir,
            check_rc=0)
    return json.loads(p.out)


class Cluster:
    """n network namespaces on one bridge (see the module comment)."""

    SUBNET = "10.77.%d" % (os.getpid() % 200 + 20)

    def __init__(self, n):
        self.n = n
        self.tag = "w%d" % (os.getpid() % 100000)
        self.bridge = "wb" + self.tag
        self.names = []
        self.real = False
        self.host_ip = "127.0.0.1"
        why = self._why_not()
        if why:
            log("wraplib: no network namespaces (%s): every node runs on "
                "loopback" % why)
            return
        try:
            self._build()
            self.real = True
            self.host_ip = self.SUBNET + ".1"
        except Fail as e:
            self.close()
            log("wraplib: could not build network namespaces (%s): every "
                "node runs on loopback" % e)

    @staticmethod
    def _why_not():
        if os.geteuid() != 0:
            return "not root"
        if not shutil.which("ip"):
            return "no 'ip' command (iproute2)"
        return None

    def _ip(self, *args):
        p = subprocess.run(("ip",) + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise Fail("ip %s: %s" % (" ".join(args),
                                      p.stderr.decode(errors="replace")))

    def _build(self):
        self._ip("link", "add", self.bridge, "type", "bridge")
        self._ip("addr", "add", self.SUBNET + ".1/24", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        for i in range(self.n):
            ns = "%sn%d" % (self.tag, i)
            self._ip("netns", "add", ns)
            self.names.append(ns)
            host_end, ns_end = "%sh%d" % (self.tag, i), "%sc%d" % (self.tag, i)
            self._ip("link", "add", host_end, "type", "veth", "peer", "name",
                     ns_end)
            self._ip("link", "set", host_end, "master", self.bridge)
            self._ip("link", "set", host_end, "up")
            self._ip("link", "set", ns_end, "netns", ns)
            self._ip("-n", ns, "addr", "add",
                     "%s.%d/24" % (self.SUBNET, 10 + i), "dev", ns_end)
            self._ip("-n", ns, "link", "set", ns_end, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")

    def node_ip(self, i):
        return "%s.%d" % (self.SUBNET, 10 + i) if self.real else "127.0.0.1"

    def prefix(self, i):
        """argv prefix running a command on node i."""
        return ["ip", "netns", "exec", self.names[i]] if self.real else []

    def close(self):
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)
        self.names = []
        subprocess.run(["ip", "link", "del", self.bridge],
                       stderr=subprocess.DEVNULL)


def main(cases, argv=None):
    """Run the case named on the command line:
    SCRIPT --weft PATH CASE, or SCRIPT --list."""
    label = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    return caselib.main(cases, label, lambda a: os.path.abspath(a.weft),
                        out=sys.stderr, argv=argv)
