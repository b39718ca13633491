#!/usr/bin/env python3
"""preflight.py - end-to-end tests of tracer selection: preflight JSON for
every backend and for auto, deterministic verdicts, failing conditions made
for real (capabilities dropped with capsh, an unprivileged user namespace,
tracefs hidden in a private mount namespace, the preload library missing, a
preflight that cannot finish in time) each refusing to start the workload
(a marker file it would have written proves it), auto picking the right
backend in each (and, for a user without eBPF, not printing the rejected
backend's checks unless asked), and `weft tracer enable`.

    preflight.py --weft PATH CASE
    preflight.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Standard
library only; conditions needing root, a backend not built into this weft,
or a missing tool skip.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from caselib import Fail, Skip  # noqa: E402

CASES, case = caselib.registry()


class Env:
    def __init__(self, weft):
        self.weft = os.path.abspath(weft)
        self.root = tempfile.mkdtemp(prefix="weft-preflight-")
        self.proj = os.path.join(self.root, "proj")
        self.home = os.path.join(self.root, "home")
        os.mkdir(self.proj)
        os.mkdir(self.home)
        # Kept verdicts (weft_preflight_reuse) go to this test's own
        # directory: $TMPDIR/weft-preflight-UID.
        self.env = dict(os.environ, HOME=self.home, TMPDIR=self.root)
        self.env.pop("WEFT_TRACER", None)
        self.env.pop("XDG_RUNTIME_DIR", None)
        # A sanitized weft must not stop on leaks of a process that is
        # killed on purpose, nor fight over ptrace with a traced child.
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0")

    def run(self, argv, prefix=(), env=None, timeout=120):
        e = dict(self.env)
        if env:
            e.update(env)
        return subprocess.run(list(prefix) + [self.weft] + argv,
                              cwd=self.proj, env=e, capture_output=True,
                              timeout=timeout)

    def marker(self):
        return os.path.join(self.proj, "marker")

    def workload(self):
        return ["--", "sh", "-c", "echo ran > marker"]

    def backends(self):
        r = self.run(["tracer", "check", "auto", "--json"])
        d = json.loads(r.stdout.decode())
        return [p["backend"] for p in d["results"]]

    def need_backend(self, name):
        if name not in self.backends():
            raise Skip("the %s backend is not built into this weft" % name)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root")


def need_tool(name):
    if not shutil.which(name):
        raise Skip("%s is not installed" % name)


def text(b):
    return b.decode("utf-8", "replace")


def refused(env, r, mode, what):
    """The run exited 3 naming the failed backend, and did not start."""
    err = text(r.stderr)
    if r.returncode != 3:
        raise Fail("%s: `weft run --tracer %s` exited %d, expected 3 "
                   "(preflight failed, not started); stderr:\n%s"
                   % (what, mode, r.returncode, err))
    if "weft tracer check" not in err:
        raise Fail("%s: the refusal does not point to `weft tracer check`;"
                   " stderr:\n%s" % (what, err))
    if os.path.exists(env.marker()):
        raise Fail("%s: the workload ran although preflight failed" % what)


def picked(env, r, what):
    """Which backend `weft run -v --tracer auto` says it picked."""
    err = text(r.stderr)
    m = re.search(r"tracer auto: picked (\w+)", err)
    if r.returncode != 0 or not m:
        raise Fail("%s: `weft run -v --tracer auto` exited %d without "
                   "saying what it picked; stderr:\n%s"
                   % (what, r.returncode, err))
    if not os.path.exists(env.marker()):
        raise Fail("%s: auto picked %s but the workload did not run"
                   % (what, m.group(1)))
    os.unlink(env.marker())
    return m.group(1)


def masked(doc):
    """A preflight document with numbers in texts masked (timings)."""
    return json.loads(re.sub(r"\d+(\.\d+)?", "N", json.dumps(doc)))


# ------------------------------------------------------------ cases

@case
def json_every_backend(env):
    """Each backend's `tracer check MODE --json` has exactly the documented
    keys, checks are named, exit 0 only when ok, and two runs give the same
    document apart from timings."""
    for b in env.backends():
        docs = []
        for _ in range(2):
            r = env.run(["tracer", "check", b, "--json"])
            d = json.loads(r.stdout.decode())
            keys = ["backend", "ok", "summary", "command_checked", "checks",
                    "warnings"]
            if sorted(d) != sorted(keys):
                raise Fail("%s: keys %s, expected %s" % (b, sorted(d), keys))
            if d["backend"] != b or not isinstance(d["ok"], bool):
                raise Fail("%s: backend/ok wrong: %s" % (b, d))
            if not d["checks"]:
                raise Fail("%s: no checks" % b)
            for chk in d["checks"]:
                if sorted(chk) != ["detail", "name", "ok"] or not chk["name"]:
                    raise Fail("%s: bad check %s" % (b, chk))
            if d["ok"] != all(chk["ok"] for chk in d["checks"]):
                raise Fail("%s: ok is not the AND of its checks" % b)
            if r.returncode != (0 if d["ok"] else 1):
                raise Fail("%s: exit %d with ok=%s" % (b, r.returncode,
                                                         d["ok"]))
            docs.append(masked(d))
        if docs[0] != docs[1]:
            raise Fail("%s: two preflights on the same machine differ:\n"
                       "%s\n%s" % (b, docs[0], docs[1]))


@case
def command_checked(env):
    """--command names the command in command_checked and a missing one
    fails the check of every backend."""
    for b in env.backends():
        r = env.run(["tracer", "check", b, "--json", "--command",
                     "/nonexistent/prog"])
        d = json.loads(r.stdout.decode())
        if d["command_checked"] != "/nonexistent/prog" or d["ok"]:
            raise Fail("%s: --command of a missing program: %s" % (b, d))


@case
def timeout_refuses(env):
    """tracer.preflight_timeout_ms = 1: every preflight times out (a probe
    run cannot finish in 1 ms); the workload is not started, exit 3; the
    probes killed at the deadline leave nothing behind in TMPDIR."""
    os.makedirs(os.path.join(env.proj, ".weft"), exist_ok=True)
    with open(os.path.join(env.proj, ".weft", "config.toml"), "w") as f:
        f.write("[tracer]\npreflight_timeout_ms = 1\n")
    r = env.run(["run", "--tracer", "ptrace"] + env.workload())
    refused(env, r, "ptrace", "1 ms preflight timeout")
    if "timeout" not in text(r.stderr):
        raise Fail("the refusal does not say timeout:\n%s" % text(r.stderr))
    tmp = os.path.join(env.root, "tmp")
    os.mkdir(tmp)
    r = env.run(["run"] + env.workload(), env={"TMPDIR": tmp})
    if r.returncode != 3 or os.path.exists(env.marker()):
        raise Fail("auto with a 1 ms timeout exited %d (expected 3, not "
                   "started); stderr:\n%s" % (r.returncode, text(r.stderr)))
    # Probes killed at the deadline leave nothing in TMPDIR: weft removes
    # each preflight's scratch directory itself.
    if os.listdir(tmp):
        raise Fail("preflights left %s in TMPDIR" % sorted(os.listdir(tmp)))


@case
def ebpf_caps_dropped(env):
    """Root without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (capsh): ebpf
    refuses, auto picks the next backend."""
    need_root()
    need_tool("capsh")
    env.need_backend("ebpf")
    drop = ["capsh", "--drop=cap_bpf,cap_perfmon,cap_sys_admin", "--"]
    cmd = " ".join("'%s'" % a for a in
                   [env.weft, "run", "--tracer", "ebpf"] + env.workload())
    r = subprocess.run(drop + ["-c", cmd], cwd=env.proj, env=env.env,
                       capture_output=True, timeout=120)
    refused(env, r, "ebpf", "capabilities dropped")
    cmd = " ".join("'%s'" % a for a in
                   [env.weft, "run", "-v", "--tracer", "auto"] +
                   env.workload())
    r = subprocess.run(drop + ["-c", cmd], cwd=env.proj, env=env.env,
                       capture_output=True, timeout=120)
    got = picked(env, r, "capabilities dropped")
    if got == "ebpf":
        raise Fail("auto picked ebpf without its capabilities")


@case
def ebpf_user_namespace(env):
    """In an unprivileged user namespace (unshare -U -r: root there, no
    privilege over the kernel) ebpf refuses, auto picks another."""
    need_tool("unshare")
    env.need_backend("ebpf")
    probe = subprocess.run(["unshare", "-U", "-r", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        raise Skip("user namespaces are not permitted here: %s"
                   % text(probe.stderr).strip())
    r = env.run(["run", "--tracer", "ebpf"] + env.workload(),
                prefix=["unshare", "-U", "-r"])
    refused(env, r, "ebpf", "user namespace")
    r = env.run(["run", "-v"] + env.workload(),
                prefix=["unshare", "-U", "-r"])
    if picked(env, r, "user namespace") == "ebpf":
        raise Fail("auto picked ebpf inside a user namespace")


@case
def ebpf_tracefs_hidden(env):
    """tracefs and debugfs hidden under empty tmpfs in a private mount
    namespace, without CAP_SYS_ADMIN to mount them back: ebpf refuses."""
    need_root()
    need_tool("unshare")
    need_tool("capsh")
    env.need_backend("ebpf")
    cmd = " ".join("'%s'" % a for a in
                   [env.weft, "run", "--tracer", "ebpf"] + env.workload())
    script = ("mount --make-rprivate / && "
              "for d in /sys/kernel/tracing /sys/kernel/debug; do "
              "[ -d $d ] && mount -t tmpfs none $d; done; "
              "exec capsh --drop=cap_sys_admin -- -c \"%s\"" % cmd)
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=env.proj,
                       env=env.env, capture_output=True, timeout=120)
    refused(env, r, "ebpf", "tracefs hidden")


@case
def preload_library_missing(env):
    """A weft binary whose preload library is not where it looks: preload
    refuses, auto picks another backend that works."""
    env.need_backend("preload")
    lone = os.path.join(env.root, "bin")
    os.mkdir(lone)
    shutil.copy2(env.weft, os.path.join(lone, "weft"))
    env.weft = os.path.join(lone, "weft")
    env.env.pop("WEFT_PRELOAD_LIBRARY", None)  # no override either
    r = env.run(["run", "--tracer", "preload"] + env.workload())
    refused(env, r, "preload", "library missing")
    r = env.run(["run", "-v"] + env.workload())
    if picked(env, r, "library missing") == "preload":
        raise Fail("auto picked preload without its library")


@case
def enable_ebpf(env):
    """`weft tracer enable ebpf` on a copy of weft: sets cap_bpf and
    cap_perfmon, says changed; a second run says unchanged; as an
    unprivileged user it fails with a clear error."""
    need_root()
    need_tool("getcap")
    need_tool("setpriv")
    env.need_backend("ebpf")
    bindir = os.path.join(env.root, "bin")
    os.mkdir(bindir)
    os.chmod(env.root, 0o755)
    os.chmod(bindir, 0o755)
    copy = os.path.join(bindir, "weft")
    shutil.copy2(env.weft, copy)
    r = env.run(["tracer", "enable", "ebpf", "--binary", copy])
    out = text(r.stdout) + text(r.stderr)
    if r.returncode != 0 or not re.search(r"^changed:", out, re.M):
        raise Fail("enable exited %d:\n%s" % (r.returncode, out))
    caps = text(subprocess.run(["getcap", copy], capture_output=True).stdout)
    if "cap_bpf" not in caps or "cap_perfmon" not in caps:
        raise Fail("getcap after enable: %r" % caps)
    r = env.run(["tracer", "enable", "ebpf", "--binary", copy])
    out = text(r.stdout)
    if r.returncode != 0 or re.search(r"^changed:", out, re.M):
        raise Fail("second enable was not a no-op (exit %d):\n%s"
                   % (r.returncode, out))
    os.chmod(copy, 0o755)
    # With the capabilities already set there is nothing to refuse: remove
    # them, then ask again as nobody.
    subprocess.run(["setcap", "-r", copy], capture_output=True)
    r = env.run(["tracer", "enable", "ebpf", "--binary", copy],
                prefix=["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", "--inh-caps=-all",
                        "--bounding-set=-all"])
    out = text(r.stdout) + text(r.stderr)
    if r.returncode == 0 or "root" not in out:
        raise Fail("enable as nobody exited %d without a clear error:\n%s"
                   % (r.returncode, out))


# ------------------------------------------------ verdicts reused

REUSED = "preflight ptrace: reused ok"


def run_vv(env, prefix=(), extra=None, cwd=None):
    """`weft run -vv --tracer ptrace` of the marker workload: whether its
    verdict was reused; the workload must have run."""
    e = dict(env.env)
    e.update(extra or {})
    r = subprocess.run(list(prefix) + [env.weft, "run", "-vv", "--tracer",
                                       "ptrace"] + env.workload(),
                       cwd=cwd or env.proj, env=e, capture_output=True,
                       timeout=120)
    err = text(r.stderr)
    if r.returncode == 3:
        raise Skip("ptrace cannot trace here: %s" % err.strip()[-300:])
    marker = os.path.join(cwd or env.proj, "marker")
    if r.returncode != 0 or not os.path.exists(marker):
        raise Fail("weft run exited %d, the workload %s; stderr:\n%s"
                   % (r.returncode, "ran" if os.path.exists(marker)
                      else "did not run", err))
    os.unlink(marker)
    return REUSED in err


def kept_verdicts(directory, backend):
    """The files of backend's kept verdicts in directory."""
    return glob.glob(os.path.join(directory, "preflight-%s-*" % backend))


def mounts():
    """This process's mount table: part of the state a verdict is kept
    for (other tests running beside this one mount and unmount)."""
    with open("/proc/self/mountinfo", "rb") as f:
        return f.read()


@case
def reuse_same_state(env):
    """A passed verdict is reused by the next run on the same machine
    state, and not after a WEFT_ variable changed; `weft tracer check`
    always probes. (A second run that probes again fails the case only
    when the mount table stayed the same from before the first run to
    after the second: tests running beside this one mount things, and a
    verdict is rightly not reused across a change of the mounts.)"""
    before = mounts()
    if run_vv(env):
        raise Fail("the first run reused a verdict nobody kept")
    kept = kept_verdicts(os.path.join(env.root, "weft-preflight-%d"
                                      % os.geteuid()), "ptrace")
    if len(kept) != 1:
        raise Fail("expected one kept ptrace verdict, found %s" % kept)
    st = os.stat(kept[0])
    if st.st_mode & 0o777 != 0o600 or st.st_uid != os.geteuid():
        raise Fail("the kept verdict is mode %o, owner %d"
                   % (st.st_mode & 0o777, st.st_uid))
    for attempt in range(5):
        if run_vv(env):
            break
        after = mounts()
        if after == before:
            raise Fail("the second run on the same state probed again")
        before = after  # the mounts changed: the next run may reuse
    else:
        raise Fail("the mount table changed during each of 5 runs; no "
                   "verdict could be reused")
    if run_vv(env, extra={"WEFT_TEST_STATE": "changed"}):
        raise Fail("a verdict was reused after a WEFT_ variable changed")
    r = env.run(["tracer", "check", "ptrace", "--json"])
    names = [c["name"] for c in json.loads(r.stdout.decode())["checks"]]
    if "reused" in names:
        raise Fail("weft tracer check reused a verdict: %s" % names)


@case
def reuse_per_executable(env):
    """Two weft executables (two installs, or two builds compared) run
    in turn on the same state each reuse their own verdict: neither
    replaces the other's."""
    copies = []
    for name in ("a", "b"):
        os.mkdir(os.path.join(env.root, name))
        copies.append(os.path.join(env.root, name, "weft"))
        shutil.copy2(env.weft, copies[-1])
    for c in copies:  # each keeps one
        env.weft = c
        run_vv(env)
    for attempt in range(5):
        before = mounts()
        reused = []
        for c in copies:
            env.weft = c
            reused.append(run_vv(env))
        if all(reused):
            break
        if mounts() == before:
            raise Fail("runs alternating between %s probed again "
                       "(reused: %s)" % (copies, reused))
    else:
        raise Fail("the mount table changed during each of 5 rounds; no "
                   "verdict could be reused")
    kept = kept_verdicts(os.path.join(env.root, "weft-preflight-%d"
                                      % os.geteuid()), "ptrace")
    if len(kept) != 2:
        raise Fail("expected a kept verdict for each executable, found %s"
                   % kept)


@case
def reuse_failed_probes_again(env):
    """A failed verdict is never kept: the same failing state refuses
    again, each time after a probe."""
    env.need_backend("preload")
    bad = {"WEFT_PRELOAD_LIBRARY": os.path.join(env.root, "nothing.so")}
    for i in range(2):
        r = env.run(["run", "-vv", "--tracer", "preload"] + env.workload(),
                    env=bad)
        refused(env, r, "preload", "library missing, run %d" % (i + 1))
        if "reused" in text(r.stderr):
            raise Fail("run %d reused a verdict: %s" % (i + 1,
                                                       text(r.stderr)))
    if kept_verdicts(os.path.join(env.root, "weft-preflight-%d"
                                  % os.geteuid()), "preload"):
        raise Fail("a failed preload verdict was kept")


def user_tree(env):
    """A tree the second, unprivileged user can work in: a project, its
    TMPDIR and HOME, and weft's binaries (env.weft now names the copy);
    (its uid, the project, TMPDIR, the prefix that runs a command as it).
    Skips when there can be no such user here."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import unprivileged
    try:
        uid, gid = unprivileged.user()
    except unprivileged.Unavailable as e:
        raise Skip(str(e))
    top = os.path.join(env.root, "u")
    os.mkdir(top)
    os.chmod(env.root, 0o755)
    proj, tmp = os.path.join(top, "proj"), os.path.join(top, "tmp")
    for d in (top, proj, tmp):
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
    env.env.update(TMPDIR=tmp, HOME=top)
    shutil.copy2(env.weft, os.path.join(top, "weft"))
    lib = os.path.join(os.path.dirname(env.weft), "libweft_preload.so")
    if os.path.exists(lib):
        shutil.copy2(lib, os.path.join(top, "libweft_preload.so"))
    env.weft = os.path.join(top, "weft")
    return uid, proj, tmp, unprivileged.argv([])


@case
def auto_rejected_said_once(env):
    """As a second, unprivileged user (no eBPF for it), `weft run`
    with auto picks a later backend and starts the command without
    printing the rejected backend's failed checks; with -v one line names
    what it picked and what it rejected, with -vv every check."""
    uid, proj, _, prefix = user_tree(env)
    errs = []
    for flags in ([], ["-v"], ["-vv"]):
        r = subprocess.run(prefix + [env.weft, "run", "--tracer", "auto"]
                           + flags + env.workload(), cwd=proj, env=env.env,
                           capture_output=True, timeout=120)
        err = text(r.stderr)
        if r.returncode == 3:
            raise Skip("no backend passed for uid %d: %s" % (uid, err))
        marker = os.path.join(proj, "marker")
        if r.returncode != 0 or not os.path.exists(marker):
            raise Fail("weft run %s as uid %d exited %d; stderr:\n%s"
                       % (flags, uid, r.returncode, err))
        os.unlink(marker)
        errs.append(err)
    quiet, one, every = errs
    m = re.search(r"tracer auto: picked (\w+).*rejected: (.*)", one)
    if not m or not m.group(2):
        raise Skip("nothing was rejected before the backend picked for "
                   "uid %d (stderr with -v:\n%s)" % (uid, one))
    if "FAILED" in quiet:
        raise Fail("without -v, the rejected backends' checks were "
                   "printed:\n%s" % quiet)
    if "FAILED" not in every:
        raise Fail("with -vv, the rejected backends' failed checks were "
                   "not printed:\n%s" % every)


@case
def reuse_refuses_foreign_verdicts(env):
    """As a second, unprivileged user: a verdict file that is not the
    user's alone (owned by another user, writable by others, in a
    directory others can write) is never reused."""
    uid, proj, tmp, prefix = user_tree(env)
    if run_vv(env, prefix, cwd=proj):
        raise Fail("the user's first run reused a verdict")
    if not run_vv(env, prefix, cwd=proj):
        raise Fail("the user's own kept verdict was not reused")
    d = os.path.join(tmp, "weft-preflight-%d" % uid)
    kept = kept_verdicts(d, "ptrace")
    if len(kept) != 1:
        raise Fail("expected one kept ptrace verdict, found %s" % kept)
    kept = kept[0]
    os.chown(kept, 0, 0)  # another user's file, however it got there
    if run_vv(env, prefix, cwd=proj):
        raise Fail("a verdict owned by root was reused by uid %d" % uid)
    os.unlink(kept)
    run_vv(env, prefix, cwd=proj)  # keeps a fresh one
    os.chmod(kept, 0o666)
    if run_vv(env, prefix, cwd=proj):
        raise Fail("a verdict others can write was reused")
    os.unlink(kept)
    run_vv(env, prefix, cwd=proj)
    os.chmod(d, 0o777)
    if run_vv(env, prefix, cwd=proj):
        raise Fail("a verdict in a directory others can write was reused")


def main():
    return caselib.main(CASES, "preflight", lambda a: Env(a.weft),
                        doc=__doc__, ok="ok")


if __name__ == "__main__":
    sys.exit(main())
