#!/usr/bin/env python3
"""ebpf_e2e.py - end-to-end tests of the eBPF backend and the node agent
beyond the conformance suite (which runs under ebpf as e2e.ebpf.*):

  unregistered      a process outside the run is never reported
  repeat_200        200 runs of sh -c 'echo x > f': the write every time
  long_path         a path of 4,095 bytes (4,096 with its NUL) recorded whole
  agent_concurrent  two runs at once under one agent: separate records
  agent_refuses     the agent refuses to register a process the caller
                    could not ptrace (caller run as a second user)
  agent_setuid_caller  a caller whose connecting process exec'd a
                    set-user-ID program since it connected is refused
  agent_setuid_exec a registered process that execs a set-user-ID program
                    is traced no further (and the run says so)
  agent_caller_gone a caller whose connecting process is gone is refused
  agent_nondumpable the caller's own set-group-ID or non-dumpable
                    processes are refused, as ptrace would refuse them
  agent_stalled_client  a run whose wrapper stops reading loses only its
                    own records (counted and named in its warnings);
                    another run at the same time loses nothing, and
                    preflight still passes
  agent_killed      the agent killed mid-run: the run reports the loss and
                    ends (fallback to ptrace), it does not hang
  agent_idle_detach the agent's syscall programs are attached while a run
                    is registered and detached once nobody is (the
                    process tracepoints stay)

    ebpf_e2e.py --weft PATH CASE
    ebpf_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (reason printed: not root, or
`weft tracer check ebpf` fails here). Each case uses an agent of its own
(WEFT_AGENT_SOCKET in its temporary directory) so that cases never share
or kill each other's agent. Standard library only.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
import unprivileged  # noqa: E402
from caselib import Fail, Skip  # noqa: E402

CASES, case = caselib.registry()
# wb_msg (backends/ebpf/ebpf_internal.h): type, pid, status, version,
# dropped, text[64].
MSG = struct.Struct("=IiiIQ64s")
MSG_REGISTER, MSG_DEREGISTER, MSG_REPLY = 1, 2, 4


def _proto_version():
    """WB_PROTO_VERSION, read from the header, so this client speaks the
    agent's protocol of the same tree."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                          "backends", "ebpf", "ebpf_internal.h")
    with open(header) as f:
        m = re.search(r"#define WB_PROTO_VERSION (\d+)", f.read())
    if not m:
        raise SystemExit("WB_PROTO_VERSION not found in " + header)
    return int(m.group(1))


PROTO_VERSION = _proto_version()


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


class Env:
    def __init__(self, weft):
        self.weft = os.path.abspath(weft)
        self.root = tempfile.mkdtemp(prefix="weft-ebpf-")
        os.chmod(self.root, 0o755)
        self.proj = os.path.join(self.root, "proj")
        self.home = os.path.join(self.root, "home")
        os.mkdir(self.proj)
        os.mkdir(self.home)
        self.sock = os.path.join(self.root, "agent", "agent.sock")
        self.env = dict(os.environ, HOME=self.home,
                        WEFT_AGENT_SOCKET=self.sock,
                        WEFT_AGENT_IDLE_MS="3000")
        self.env.pop("WEFT_TRACER", None)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.nreports = 0

    def p(self, rel):
        return os.path.join(self.proj, rel)

    def run(self, cmd, timeout=60, env=None, wait=True):
        self.nreports += 1
        report = os.path.join(self.root, "report%d.json" % self.nreports)
        argv = [self.weft, "run", "--tracer", "ebpf", "--report", report,
                "--"] + cmd
        e = dict(self.env, **(env or {}))
        if not wait:
            return subprocess.Popen(argv, cwd=self.proj, env=e,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE), report
        r = subprocess.run(argv, cwd=self.proj, env=e, capture_output=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise Fail("`weft run -- %s` exited %d:\n%s"
                       % (" ".join(cmd), r.returncode, text(r.stderr)))
        return load(report)

    def agent_pids(self):
        """Agents serving this case's socket (found by their lock)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [self.weft.encode(), b"agent"] or \
                    (len(argv) > 1 and argv[1] == b"agent"):
                if ("WEFT_AGENT_SOCKET=" + self.sock).encode() in env:
                    pids.append(int(d))
        return pids

    def cleanup(self):
        for pid in self.agent_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def load(report):
    with open(report, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def files(rep):
    return {f["path"]: f for f in rep["files"]}


def need_ebpf(env):
    if os.geteuid() != 0:
        raise Skip("needs root (BPF programs and other users' processes)")
    r = subprocess.run([env.weft, "tracer", "check", "ebpf"],
                       capture_output=True, env=env.env, timeout=60)
    if r.returncode != 0:
        raise Skip("the ebpf backend does not work here:\n%s"
                   % text(r.stdout + r.stderr))


def expect_written(rep, path, what):
    rec = files(rep).get(path)
    if not rec or not rec["written"]:
        raise Fail("%s: %s is not recorded as written; record %s, "
                   "warnings %s, dropped %s"
                   % (what, path, rec, rep["warnings"],
                      rep["dropped_events"]))


@case
def unregistered(env):
    """a process outside the run (started before it, writing all along)
    never appears in the run's records."""
    outside = env.p("outside.txt")
    stop = env.p("stop")
    bg = subprocess.Popen(["sh", "-c", "while [ ! -e %s ]; do echo o >> %s;"
                           " cat %s > /dev/null; sleep 0.01; done"
                           % (stop, outside, outside)])
    try:
        rep = env.run(["sh", "-c", "echo in > inside.txt; sleep 0.3; "
                       "cat inside.txt"])
    finally:
        open(stop, "w").close()
        bg.wait(10)
    expect_written(rep, env.p("inside.txt"), "the run")
    if outside in files(rep):
        raise Fail("%s, written only by a process outside the run, is in "
                   "its records: %s" % (outside, files(rep)[outside]))
    pids = {p["pid"] for p in rep["processes"]}
    if bg.pid in pids:
        raise Fail("the outside process %d is among the run's processes"
                   % bg.pid)


@case
def repeat_200(env):
    """200 runs of sh -c 'echo x > f': every report has f written (the end
    of the run drains the ring buffer), none drops records."""
    f = env.p("f")
    for i in range(200):
        rep = env.run(["sh", "-c", "echo x > f"])
        expect_written(rep, f, "run %d of 200" % (i + 1))
        if rep["dropped_events"] != 0:
            raise Fail("run %d dropped %d records"
                       % (i + 1, rep["dropped_events"]))


@case
def long_path(env):
    """a file whose absolute path is 4,095 bytes (4,096 with the NUL, the
    longest a syscall accepts) is recorded with its whole path."""
    path = env.proj
    while True:
        room = 4095 - len(path) - 1
        if room <= 255:  # NAME_MAX
            path += "/" + "f" * room
            break
        path += "/" + "d" * 200
    if len(path) != 4095:
        raise Fail("test bug: built a path of %d bytes" % len(path))
    os.makedirs(os.path.dirname(path))
    # Absolute, so the syscall itself carries all 4,095 bytes.
    rep = env.run(["sh", "-c", "echo long > '%s'" % path])
    rec = files(rep).get(path)
    if not rec or not rec["written"] or not rec["created"]:
        longest = max((p for p in files(rep)), key=len, default="")
        raise Fail("no written+created record for the 4,095-byte path "
                   "(longest recorded path: %d bytes; dropped %s; "
                   "warnings %s)" % (len(longest), rep["dropped_events"],
                                     rep["warnings"]))


@case
def agent_concurrent(env):
    """two runs at the same time under one agent: each report has its own
    files and processes, none of the other's."""
    os.mkfifo(env.p("gate"))
    a, ra = env.run(["sh", "-c", "cat gate > /dev/null; echo a > a.txt; "
                     "cat in_a > /dev/null"], wait=False)
    time.sleep(0.5)
    b, rb = env.run(["sh", "-c", "echo b > b.txt; cat in_b > /dev/null; "
                     "echo open > gate"], wait=False)
    with open(env.p("in_a"), "w") as f:
        f.write("A\n")
    with open(env.p("in_b"), "w") as f:
        f.write("B\n")
    outs = [p.communicate(timeout=60) for p in (a, b)]
    for p, (o, e), name in ((a, outs[0], "a"), (b, outs[1], "b")):
        if p.returncode != 0:
            raise Fail("run %s exited %d:\n%s" % (name, p.returncode,
                                                  text(e)))
    agents = env.agent_pids()
    rep_a, rep_b = load(ra), load(rb)
    fa, fb = files(rep_a), files(rep_b)
    expect_written(rep_a, env.p("a.txt"), "run a")
    expect_written(rep_b, env.p("b.txt"), "run b")
    for rep, mine, theirs, name in ((fa, "a", "b", "a"), (fb, "b", "a", "b")):
        for t in ("%s.txt" % theirs, "in_%s" % theirs):
            if env.p(t) in rep:
                raise Fail("run %s has the other run's %s: %s"
                           % (name, t, rep[env.p(t)]))
        if not rep.get(env.p("in_%s" % mine), {}).get("read"):
            raise Fail("run %s did not record reading in_%s" % (name, mine))
    pa = {p["pid"] for p in rep_a["processes"]}
    pb = {p["pid"] for p in rep_b["processes"]}
    if pa & pb:
        raise Fail("the runs share processes %s" % sorted(pa & pb))
    if len(agents) > 1:
        raise Fail("%d agents serve one socket: %s" % (len(agents), agents))


# A registering client, run as the test user: connects to argv[1]; with
# argv[3] ("gone" or a set-user-ID program) it first proves the agent
# accepted it (a DEREGISTER answered), then forks a helper that keeps the
# socket while the connecting process exits or execs the program; the
# helper (or the connecting process itself) registers pid argv[2] and
# prints the reply: type, status, text.
CLIENT = r"""
import os, socket, struct, sys, time
M = struct.Struct('=IiiIQ64s')
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
how = sys.argv[3] if len(sys.argv) > 3 else ''
def register():
    s.send(M.pack(%d, int(sys.argv[2]), 0, %d, 0, b''))
    t, p, st, _, _, txt = M.unpack(s.recv(M.size))
    print(t, st, txt.split(b'\0')[0].decode(), flush=True)
def euid(pid):
    with open('/proc/%%d/status' %% pid) as f:
        for line in f:
            if line.startswith('Uid:'):
                return int(line.split()[2])
if how:
    s.send(M.pack(%d, 0, 0, 0, 0, b''))
    s.recv(M.size)
    parent = os.getpid()
    if os.fork() == 0:
        for _ in range(3000):
            if os.getppid() != parent if how == 'gone' else euid(parent) == 0:
                break
            time.sleep(0.01)
        register()
        if how != 'gone':
            os.kill(parent, 9)
        os._exit(0)
    if how != 'gone':
        os.set_inheritable(s.fileno(), False)
        os.execv(how, [how, '60'])
    os._exit(0)
register()
""" % (MSG_REGISTER, PROTO_VERSION, MSG_DEREGISTER)


def agent_register(sock_path, pid, how=None):
    """Register pid with the agent from a client run as the test user
    (how: see CLIENT); returns (status, text) of the reply."""
    cmd = [sys.executable, "-c", CLIENT, sock_path, str(pid)]
    if how:
        cmd.append(how)
    r = subprocess.run(unprivileged.argv(cmd), capture_output=True,
                       timeout=60)
    out = text(r.stdout).strip().split(" ", 2) + [""]
    if not out[0]:
        raise Fail("the registering client printed nothing (%d):\n%s"
                   % (r.returncode, text(r.stderr)))
    t, st, why = out[0], out[1], out[2]
    if int(t) != MSG_REPLY:
        raise Fail("the agent answered with message type %s" % t)
    return int(st), why


class Agent:
    """`weft agent` of this case, its socket reachable by the test user;
    stopped on exit."""

    def __init__(self, env):
        self.env = env

    def __enter__(self):
        try:
            unprivileged.user()
        except unprivileged.Unavailable as e:
            raise Skip(str(e))
        self.p = subprocess.Popen([self.env.weft, "agent", "--idle-timeout",
                                   "0"], env=self.env.env,
                                  stderr=subprocess.PIPE)
        for _ in range(500):
            if os.path.exists(self.env.sock):
                break
            time.sleep(0.01)
        else:
            self.__exit__()
            raise Fail("the agent did not create %s" % self.env.sock)
        os.chmod(os.path.dirname(self.env.sock), 0o755)
        return self

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait(10)


class Procs:
    """Processes a case starts (killed on exit)."""

    def __init__(self):
        self.v = []

    def start(self, cmd, ready=None):
        """Start cmd; with ready, wait until it runs that program (its
        exec done), or until it prints a line when ready is True."""
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE
                             if ready is True else None)
        self.v.append(p)
        if ready is True:
            p.stdout.readline()
        elif ready:
            for _ in range(3000):
                try:
                    if os.readlink("/proc/%d/exe" % p.pid) == ready:
                        break
                except OSError:
                    pass
                time.sleep(0.01)
        return p.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.v:
            p.kill()
            p.wait()


def expect_refused(st, why, what, reason):
    if st != -1:  # -EPERM
        raise Fail("%s: status %d (%s), expected -1 (EPERM)" % (what, st,
                                                                 why))
    if reason not in why:
        raise Fail("%s: the refusal does not say %r: %r" % (what, reason,
                                                             why))


@case
def agent_refuses(env):
    """a caller running as a second user may not register pid 1 (root's)
    with the agent: refused with EPERM and a reason; registering a
    process of its own is accepted."""
    with Agent(env), Procs() as procs:
        st, why = agent_register(env.sock, 1)
        expect_refused(st, why, "registering pid 1", "may not trace")
        own = procs.start(unprivileged.argv(["sleep", "60"]))
        st, why = agent_register(env.sock, own)
        if st != 0:
            raise Fail("registering its own process was refused: %d (%s)"
                       % (st, why))


@case
def agent_setuid_caller(env):
    """a client connects as the test user, keeps the socket in a forked
    helper and the connecting process execs a set-user-ID-root program:
    the helper may not register a root process (nor its own)."""
    setuid_sleep = unprivileged.set_id_copy(shutil.which("sleep"), env.root,
                                            setuid=True)
    with Agent(env), Procs() as procs:
        root_pid = procs.start(["sleep", "60"])
        st, why = agent_register(env.sock, root_pid, how=setuid_sleep)
        expect_refused(st, why, "registering root's process after the "
                       "connecting process exec'd a set-user-ID program",
                       "changed")


@case
def agent_setuid_exec(env):
    """a process the test user registered (its own run) executes a
    set-user-ID-root program: the kernel would not let the user ptrace it
    any more, so nothing it does reaches the user (its read of
    /etc/shadow is not recorded), the run's warnings say so, and the
    rest of the run is still traced."""
    uid, gid = unprivileged.user()
    setuid_cat = unprivileged.set_id_copy(shutil.which("cat"), env.root,
                                          setuid=True)
    os.chown(env.proj, uid, gid)
    os.chown(env.home, uid, gid)
    report = os.path.join(env.proj, "report.json")
    # The user's weft may use eBPF as docs/tracing.md says: a copy with
    # the capabilities `weft tracer enable ebpf` gives it.
    weft = os.path.join(env.root, "weft-user")
    shutil.copy(env.weft, weft)
    r = subprocess.run([env.weft, "tracer", "enable", "ebpf", "--binary",
                        weft], capture_output=True, env=env.env)
    if r.returncode != 0:
        raise Skip("cannot give weft its eBPF capabilities here: %s"
                   % text(r.stderr))
    with Agent(env):
        r = subprocess.run(unprivileged.argv(
            [weft, "run", "--tracer", "ebpf", "--report", report,
             "--", "sh", "-c", "%s /etc/shadow > /dev/null; "
             "cat /etc/hostname > /dev/null" % setuid_cat]),
            cwd=env.proj, env=env.env, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise Fail("weft run as the test user exited %d:\n%s"
                       % (r.returncode, text(r.stderr)))
        rep = load(report)
    paths = {f["path"] for f in rep["files"]}
    if "/etc/shadow" in paths:
        raise Fail("the set-user-ID program's read of /etc/shadow was "
                   "recorded for the test user")
    if "/etc/hostname" not in paths:
        raise Fail("the run was not traced after the set-user-ID program "
                   "ended: %s" % sorted(paths))
    if not any("gained privileges" in w and setuid_cat in w
               for w in rep["warnings"]):
        raise Fail("no warning names the untraced program: %r"
                   % rep["warnings"])


@case
def agent_caller_gone(env):
    """a client connects as the test user, forks a helper and the
    connecting process exits: the helper may not register even a process
    of the test user's (its pid may be reused by anyone)."""
    with Agent(env), Procs() as procs:
        own = procs.start(unprivileged.argv(["sleep", "60"]))
        st, why = agent_register(env.sock, own, how="gone")
        expect_refused(st, why, "registering after the connecting "
                       "process ended", "connected")


@case
def agent_nondumpable(env):
    """processes of the caller's own uid that the kernel would not let it
    ptrace are refused: a set-group-ID program (like ssh-agent) and one
    that made itself non-dumpable; a plain process of its own is taken."""
    uid, gid = unprivileged.user()
    other_gid = 65534 if gid != 65534 else 0
    setgid_sleep = unprivileged.set_id_copy(shutil.which("sleep"), env.root,
                                            setgid=other_gid)
    nondumpable = ("import ctypes, time\n"
                   "ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
                   "print('ready', flush=True)\n"
                   "time.sleep(60)\n")
    with Agent(env), Procs() as procs:
        sg = procs.start(unprivileged.argv([setgid_sleep, "60"]),
                         ready=setgid_sleep)
        nd = procs.start(unprivileged.argv([sys.executable, "-c",
                                            nondumpable]), ready=True)
        plain = procs.start(unprivileged.argv(["sleep", "60"]))
        st, why = agent_register(env.sock, sg)
        expect_refused(st, why, "registering its own set-group-ID "
                       "process", "may not trace")
        st, why = agent_register(env.sock, nd)
        expect_refused(st, why, "registering its own non-dumpable "
                       "process", "dumpable")
        st, why = agent_register(env.sock, plain)
        if st != 0:
            raise Fail("registering its own plain process was refused: "
                       "%d (%s)" % (st, why))


def drop_warnings(rep):
    return [w for w in rep["warnings"] if "lost" in w or "dropped" in w]


@case
def agent_stalled_client(env):
    """a run whose wrapper is stopped (SIGSTOP: it never reads) while its
    workload writes on: another run at the same time records all of its
    300 files and no drops, `weft tracer check ebpf` passes, and the
    stalled run, once continued, counts its lost records and names them
    in its warnings."""
    loop = ("i=0; while [ ! -e stop ]; do echo $i > junk; i=$((i+1)); "
            "[ $i = 50000 ] && touch many; done; true")
    a, ra = env.run(["sh", "-c", loop], wait=False)
    try:
        for _ in range(6000):
            if os.path.exists(env.p("junk")) or a.poll() is not None:
                break
            time.sleep(0.01)
        os.kill(a.pid, signal.SIGSTOP)
        # Far more records than the agent may hold for it by now.
        while not os.path.exists(env.p("many")) and a.poll() is None:
            time.sleep(0.05)
        rb = env.run(["sh", "-c", "for i in $(seq 300); do "
                      "echo $i > out$i; done"], timeout=120)
        written = [p for p, f in files(rb).items()
                   if os.path.basename(p).startswith("out") and f["written"]]
        if len(written) != 300 or rb["dropped_events"] or drop_warnings(rb):
            raise Fail("beside a stalled run, another run recorded %d of "
                       "300 files, %d dropped, warnings %s"
                       % (len(written), rb["dropped_events"],
                          rb["warnings"]))
        r = subprocess.run([env.weft, "tracer", "check", "ebpf"],
                           capture_output=True, env=env.env, timeout=120)
        if r.returncode != 0:
            raise Fail("preflight fails beside a stalled run:\n%s"
                       % text(r.stdout + r.stderr))
    finally:
        with open(env.p("stop"), "w"):
            pass
        os.kill(a.pid, signal.SIGCONT)
    out, err = a.communicate(timeout=120)
    if a.returncode != 0:
        raise Fail("the stalled run exited %d:\n%s" % (a.returncode,
                                                       text(err)))
    rep = load(ra)
    if not rep["dropped_events"] or not drop_warnings(rep):
        raise Fail("the stalled run does not say it lost records: "
                   "dropped %d, warnings %s" % (rep["dropped_events"],
                                                rep["warnings"]))


def traced_child(parent):
    """Whether a child of parent is ptraced by it."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                st = dict(l.split(":\t", 1) for l in f.read().splitlines()
                          if ":\t" in l)
        except OSError:
            continue
        if (st.get("PPid", "").strip() == str(parent) and
                st.get("TracerPid", "").strip() == str(parent)):
            return True
    return False


@case
def agent_killed(env):
    """the agent killed while a run is in the middle of its workload: the
    run does not hang; it says the agent went away and (fallback on)
    ptrace took over, recording what the workload did after."""
    os.mkfifo(env.p("gate"))
    p, report = env.run(["sh", "-c", "echo before > before.txt; "
                         "cat gate > /dev/null; echo after > after.txt"],
                        wait=False)
    for _ in range(500):
        if os.path.exists(env.p("before.txt")) and env.agent_pids():
            break
        time.sleep(0.01)
    agents = env.agent_pids()
    if not agents:
        p.kill()
        raise Fail("no agent serves %s while the run is going" % env.sock)
    time.sleep(0.2)
    for pid in agents:
        os.kill(pid, signal.SIGKILL)
    # Let the workload go on only once the fallback traces it (its
    # TracerPid is weft), so "after" is the fallback's to record.
    deadline = time.monotonic() + 60
    while not traced_child(p.pid):
        if time.monotonic() > deadline or p.poll() is not None:
            break
        time.sleep(0.02)
    with open(env.p("gate"), "w") as f:
        f.write("go\n")
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Fail("the run hung after its agent was killed")
    if p.returncode != 0:
        raise Fail("the run exited %d:\n%s" % (p.returncode, text(err)))
    rep = load(report)
    warned = [w for w in rep["warnings"] if "agent went away" in w]
    if not warned:
        raise Fail("no warning says the agent went away: %s"
                   % rep["warnings"])
    if not any("tracer fallback" in w and "ptrace attached" in w
               for w in rep["warnings"]):
        raise Fail("no warning names the switch to ptrace: %s"
                   % rep["warnings"])
    expect_written(rep, env.p("before.txt"), "before the kill")
    expect_written(rep, env.p("after.txt"), "after the kill (fallback)")


def agent_links(pid):
    """The tracepoints the agent's BPF links are attached to (its fds'
    fdinfo), as a sorted list of names."""
    names = []
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                info = dict(line.rstrip("\n").split(":\t", 1)
                            for line in f if ":\t" in line)
        except OSError:
            continue
        if "link_type" in info:
            names.append(info.get("tp_name", info["link_type"]))
    return sorted(names)


def syscall_links(pid):
    return [n for n in agent_links(pid) if not n.startswith("sched_")]


@case
def agent_idle_detach(env):
    """the agent's syscall programs run only while a run is registered (and
    a short while after): attached during a run, detached once the agent
    is idle, its process tracepoints still attached."""
    if os.environ.get("WEFT_EBPF_SYSCALLS"):
        raise Skip("WEFT_EBPF_SYSCALLS is set: its programs stay attached")
    idle = {"WEFT_AGENT_IDLE_MS": "600000"}
    os.mkfifo(env.p("gate"))
    p, report = env.run(["sh", "-c", "echo in > in.txt; cat gate"],
                        env=idle, wait=False)
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(env.p("in.txt")) and env.agent_pids()):
            if time.monotonic() > deadline or p.poll() is not None:
                raise Fail("the run never reached its workload")
            time.sleep(0.02)
        agent = env.agent_pids()[0]
        during = syscall_links(agent)
        if not during:
            raise Fail("no syscall program is attached during the run: "
                       "the agent's links are %s" % agent_links(agent))
    finally:
        with open(env.p("gate"), "w") as f:
            f.write("go\n")
        out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        raise Fail("the run exited %d:\n%s" % (p.returncode, text(err)))
    expect_written(load(report), env.p("in.txt"), "the run")
    deadline = time.monotonic() + 30
    while syscall_links(agent):
        if time.monotonic() > deadline:
            raise Fail("30 s after the run, the idle agent still has "
                       "syscall programs attached: %s" % agent_links(agent))
        time.sleep(0.1)
    left = agent_links(agent)
    if not any(n.startswith("sched_process") for n in left):
        raise Fail("the idle agent kept no process tracepoint: %s" % left)


def main():
    return caselib.main(CASES, "ebpf", lambda a: Env(a.weft), doc=__doc__,
                        ready=need_ebpf,
                        failures=(Fail, subprocess.TimeoutExpired),
                        explain=True)


if __name__ == "__main__":
    sys.exit(main())
