#!/usr/bin/env python3
"""preload_workloads.py - end-to-end tests of the preload backend beyond
the conformance suite: real programs that reach the kernel in ways a libc
interposer must follow (Python's io, bash's stdio, cp -r, 16 threads, 1,000
forked children, POSIX shared memory opened inside libc), its blind spots
said aloud (raw-syscall renames, also among 3,000 outputs of one process,
set-ID programs, a broken channel), that reads and writes are aggregated,
that ptrace and preload record the same files for the same workloads, and
(as a second, unprivileged user) that an inherited output the user cannot
look at is not said to have moved.

    preload_workloads.py --weft PATH --progs DIR CASE
    preload_workloads.py --list

Built on conformance.py (its Case, run and expect, and its main: exit 0
pass, 1 fail, 77 skip). Standard library only.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
import conformance as cf  # noqa: E402

Skip, Fail, ANY = cf.Skip, cf.Fail, cf.ANY
CASES, case = caselib.registry()


PY_IO = r"""
import os, shutil, tempfile
with open("in.txt", "rb") as f:
    data = f.read()
with open("out.txt", "w") as f:
    f.write(data.decode().upper())
shutil.copy("in.txt", "copy.txt")
fd, tmp = tempfile.mkstemp(dir=".", prefix="save-")
with os.fdopen(fd, "w") as f:
    f.write("saved atomically\n")
os.replace(tmp, "saved.txt")
print(os.path.basename(tmp))
"""


@case
def python_io(c):
    """/usr/bin/python3: open() read and write, shutil.copy, tempfile plus
    os.replace: inputs read, outputs written with their hashes, the temp
    file renamed to its final name."""
    py = "/usr/bin/python3"
    if not os.access(py, os.X_OK):
        raise Skip("%s is not installed" % py)
    data = b"read by python\n"
    c.write("in.txt", data)
    c.write("prog.py", PY_IO.encode())
    rep = c.run([py, "prog.py"])
    tmp = c.last_stdout.decode().strip()
    c.expect(rep, "in.txt", data, read=True, written=False, created=False)
    c.expect(rep, "prog.py", ANY, read=True, written=False)
    c.expect(rep, "out.txt", data.upper(), read=False, written=True,
             created=True)
    c.expect(rep, "copy.txt", data, read=False, written=True, created=True)
    c.expect(rep, "saved.txt", b"saved atomically\n", read=False,
             written=True, created=True, renamed_to=None)
    c.expect(rep, tmp, None, written=True, created=True,
             renamed_to="saved.txt")


@case
def bash_redirect(c):
    """bash -c 'echo x > f; echo y >> g': bash's builtin echo writes through
    stdio inside libc; f created and written, g (existing) written."""
    bash = cf.which("bash")
    c.write("g", b"old\n")
    rep = c.run([bash, "-c", "echo x > f; echo y >> g"])
    c.expect(rep, "f", b"x\n", read=False, written=True, created=True)
    c.expect(rep, "g", b"old\ny\n", read=False, written=True, created=False)


@case
def cp_recursive(c):
    """cp -r of a directory tree: every source file read, every copy
    created and written with the same content."""
    files = {"src/a": b"a\n", "src/sub/b": b"bb\n",
             "src/sub/deeper/c": b"ccc\n", "src/empty": b""}
    for rel, data in files.items():
        c.write(rel, data)
    rep = c.run(["cp", "-r", "src", "dst"])
    for rel, data in files.items():
        copy = "dst" + rel[3:]
        if data:
            c.expect(rep, rel, data, read=True, written=False)
        c.expect(rep, copy, data, read=False, written=True, created=True)


@case
def threads16(c):
    """16 threads opening, reading and writing files at once: every input
    read, every output written, one process."""
    for i in range(16):
        c.write("d/in%d" % i, b"thread %d\n" % i * 100)
    rep = c.run([c.prog("threads16"), "d"])
    for i in range(16):
        data = b"thread %d\n" % i * 100
        c.expect(rep, "d/in%d" % i, data, read=True, written=False)
        c.expect(rep, "d/out%d" % i, data, read=False, written=True,
                 created=True)
    c.check_eq("number of processes", len(rep.processes), 1)


@case
def fork_1000(c):
    """a program forking 1,000 children (32 alive at a time): 1,001
    process records, each child with its exit status, every output."""
    c.write("in", b"shared input\n")
    os.mkdir(c.p("out"))
    rep = c.run([c.prog("fork_many"), "1000", "in", "out"])
    root = rep.root()
    kids = [p for p in rep.processes if p.get("ppid") == root.get("pid")]
    c.check_eq("children recorded", len(kids), 1000)
    codes = sorted(p.get("exit_code") for p in kids)
    c.check(codes == sorted(i % 100 for i in range(1000)),
            "children's exit codes are not 0..99 ten times each: %s"
            % codes[:20])
    c.expect(rep, "in", b"shared input\n", read=True, written=False)
    outs = [p for p in rep.files if p.startswith(c.p("out") + "/")]
    c.check_eq("outputs recorded", len(outs), 1000)
    c.check(not rep.data["warnings"], "unexpected warnings: %s"
            % cf.jdump(rep.data["warnings"]))


@case
def raw_rename(c):
    """an output moved by a raw renameat2 syscall is found by inode (FINAL
    written with its hash, TMP renamed to it); one removed by a raw unlink
    is named in the warnings."""
    rep = c.run([c.prog("raw_rename"), "tmp", "final", "gone"])
    c.expect(rep, "final", b"moved behind the tracer's back\n",
             written=True, created=True)
    c.expect(rep, "tmp", None, written=True, renamed_to="final")
    warned = [w for w in rep.data["warnings"] if c.p("gone") in w]
    c.check(len(warned) == 1, "expected one warning naming %s, found %s"
            % (c.p("gone"), cf.jdump(rep.data["warnings"])))


UNLINKED_WHILE_OPEN = r"""
import os, tempfile
with tempfile.TemporaryFile(dir=".") as t:  # O_TMPFILE: never named
    t.write(b"scratch\n")
f = open("gone.txt", "w")
# Held open to the end: the unlinked inode stays allocated, so the files
# made after it cannot take its number (ext4 gives a freed one again).
keep = os.dup(f.fileno())
os.unlink("gone.txt")
f.write("written after its unlink\n")
f.close()
g = open("before.txt", "w")
g.write("renamed ")
os.rename("before.txt", "after.txt")
g.write("while open\n")
g.close()
os.close(keep)
"""


@case
def unlinked_while_open(c):
    """a file written after its unlink (the scratch-file idiom), and one
    renamed while open, by calls the library sees: no warning says a call
    it cannot see moved or removed them; the renamed one is recorded at
    its new name."""
    py = "/usr/bin/python3"
    if not os.access(py, os.X_OK):
        raise Skip("%s is not installed" % py)
    c.write("prog.py", UNLINKED_WHILE_OPEN.encode())
    rep = c.run([py, "prog.py"])
    c.expect(rep, "after.txt", b"renamed while open\n", written=True,
             created=True)
    moved = [w for w in rep.data["warnings"] if "cannot see" in w]
    c.check(not moved, "a warning claims a move nobody made: %s"
            % cf.jdump(moved))


OTHER_NAMES = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)

def raw_rename(old, new):  # renameat2(AT_FDCWD, ...): no wrapper sees it
    if libc.syscall(316, -100, old.encode(), -100, new.encode(), 0) != 0:
        sys.exit("renameat2: %s" % os.strerror(ctypes.get_errno()))

def write(path, text, **kw):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, **kw)
    os.write(fd, text.encode())
    os.close(fd)

os.mkdir("sub")
os.symlink("target.txt", "link.txt")
write("link.txt", "through a symlink\n")        # target.txt, in place
write("./sub/../dots.txt", "by a name with dots\n")
raw_rename("dots.txt", "dots-moved.txt")
d = os.open("sub", os.O_RDONLY | os.O_DIRECTORY)
write("at.txt", "by a directory fd\n", dir_fd=d)
os.close(d)
raw_rename("sub/at.txt", "sub/at-moved.txt")
fd = os.open("open.txt", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"renamed while open, ")
os.rename("open.txt", "renamed.txt")
os.write(fd, b"then moved unseen\n")
os.close(fd)
raw_rename("renamed.txt", "renamed-moved.txt")
write("a.txt", "two names, one unlinked\n")
os.link("a.txt", "b.txt")
os.unlink("a.txt")
write("x.txt", "x\n")
write("y.txt", "y\n")
exchange = libc.renameat2(-100, b"x.txt", -100, b"y.txt", 2)
if exchange != 0:
    sys.exit("renameat2 RENAME_EXCHANGE: %s"
             % os.strerror(ctypes.get_errno()))
raw_rename("y.txt", "y-moved.txt")  # x's content, now at y.txt
"""


@case
def moves_by_the_names_opened(c):
    """the moves check follows each output by the name it was opened by
    (no system call at its close): written through a symlink (in place,
    no move), by a name with "..", under a directory fd, renamed while
    open (seen) and then moved unseen, hard-linked and unlinked by one
    name, exchanged by renameat2 (seen) and then moved: every unseen move
    is found, nothing else is said to have moved."""
    py = "/usr/bin/python3"
    if not os.access(py, os.X_OK):
        raise Skip("%s is not installed" % py)
    if os.uname().machine != "x86_64":
        raise Skip("the raw renameat2 here is x86_64's syscall 316")
    c.write("prog.py", OTHER_NAMES.encode())
    rep = c.run([py, "prog.py"])
    # Recorded by the name it was written by; in place, so not moved.
    c.expect(rep, "link.txt", b"through a symlink\n", written=True,
             renamed_to=None)
    c.expect(rep, "dots-moved.txt", b"by a name with dots\n",
             written=True, created=True)
    c.expect(rep, "sub/at-moved.txt", b"by a directory fd\n",
             written=True, created=True)
    c.expect(rep, "open.txt", None, written=True, renamed_to="renamed.txt")
    c.expect(rep, "renamed.txt", None, written=True,
             renamed_to="renamed-moved.txt")
    c.expect(rep, "renamed-moved.txt",
             b"renamed while open, then moved unseen\n", written=True,
             created=True)
    c.expect(rep, "b.txt", b"two names, one unlinked\n", written=True)
    c.expect(rep, "x.txt", b"y\n", written=True, renamed_to=None)
    c.expect(rep, "y-moved.txt", b"x\n", written=True, created=True)
    c.check(not rep.data["warnings"], "unexpected warnings: %s"
            % cf.jdump(rep.data["warnings"]))


MANY_OUTPUTS = r"""
import ctypes, os, sys
n = int(sys.argv[1])
for i in range(n):
    with open("out/f%d" % i, "w") as f:
        f.write("file %d\n" % i)
libc = ctypes.CDLL(None, use_errno=True)
# renameat2(AT_FDCWD, ...) as a raw syscall: no wrapper sees it.
if libc.syscall(316, -100, b"out/f%d" % (n - 7), -100, b"out/moved",
                0) != 0:
    sys.exit("renameat2: %s" % os.strerror(ctypes.get_errno()))
"""


@case
def many_outputs_raw_rename(c):
    """one process writes 3,000 files, then moves one of the last within
    their directory by a raw renameat2: the library still follows it
    (found by inode: the new name written with its hash, the old one
    renamed to it) and says nothing of outputs it could not follow."""
    py = "/usr/bin/python3"
    if not os.access(py, os.X_OK):
        raise Skip("%s is not installed" % py)
    n = 3000
    os.mkdir(c.p("out"))
    c.write("prog.py", MANY_OUTPUTS.encode())
    rep = c.run([py, "prog.py", str(n)])
    moved = n - 7
    c.expect(rep, "out/moved", b"file %d\n" % moved, written=True,
             created=True)
    c.expect(rep, "out/f%d" % moved, None, written=True,
             renamed_to=c.p("out/moved"))
    c.expect(rep, "out/f%d" % (n - 1), b"file %d\n" % (n - 1),
             written=True, created=True)
    c.check(not rep.data["warnings"], "unexpected warnings: %s"
            % cf.jdump(rep.data["warnings"]))


@case
def inherited_output_out_of_sight(c):
    """as a second, unprivileged user, a workload whose stdout is a file
    in a directory the user cannot search (opened by root, as a root
    shell's redirection is): no warning claims the file was moved or
    removed, since nothing says it was."""
    import unprivileged
    try:
        uid, gid = unprivileged.user()
    except unprivileged.Unavailable as e:
        raise Skip(str(e))
    # A tree the user can work in, with weft's binaries in it.
    top = os.path.join(c.root, "u")
    proj, tmp = os.path.join(top, "proj"), os.path.join(top, "tmp")
    os.chmod(c.root, 0o755)
    for d in (top, proj, tmp):
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
    weft = os.path.join(top, "weft")
    shutil.copy2(c.weft, weft)
    lib = os.path.join(os.path.dirname(c.weft), "libweft_preload.so")
    if os.path.exists(lib):
        shutil.copy2(lib, os.path.join(top, "libweft_preload.so"))
    hidden = os.path.join(c.root, "root-only")
    os.mkdir(hidden, 0o700)
    env = dict(c.env, TMPDIR=tmp, HOME=top)
    with open(os.path.join(hidden, "out"), "wb") as out:
        r = subprocess.run(unprivileged.argv(
            [weft, "run", "--tracer", "preload", "--", "sh", "-c",
             "echo written"]), cwd=proj, env=env, stdout=out,
            stderr=subprocess.PIPE)
    if r.returncode == 3:
        raise Skip("the preload tracer cannot trace here: %s"
                   % r.stderr.decode(errors="replace"))
    c.check(r.returncode == 0, "weft run as uid %d exited %d: %s"
            % (uid, r.returncode, r.stderr.decode(errors="replace")))
    with open(os.path.join(hidden, "out"), "rb") as f:
        c.check(f.read() == b"written\n", "the workload's stdout is "
                "not in the file opened for it")
    r = subprocess.run(unprivileged.argv([weft, "show", "--json"]),
                       cwd=proj, env=env, capture_output=True, text=True)
    c.check(r.returncode == 0, "weft show exited %d: %s"
            % (r.returncode, r.stderr))
    if r.returncode == 0:
        warnings = json.loads(r.stdout)["warnings"]
        moved = [w for w in warnings if "moved or removed" in w]
        c.check(not moved, "a warning claims a move nobody saw: %s"
                % moved)


def secure_exec_target(c):
    """A program the kernel runs in secure-exec mode for this user."""
    if os.geteuid() != 0:
        for cand in ("/usr/bin/passwd", "/usr/bin/chfn", "/bin/su"):
            st = os.stat(cand) if os.path.exists(cand) else None
            if st and st.st_mode & stat.S_ISUID and st.st_uid != os.getuid():
                return cand, ["--help"]
        raise Skip("no set-user-ID program found to run")
    # root: a set-user-ID copy of true owned by nobody changes the euid.
    if os.statvfs(c.root).f_flag & os.ST_NOSUID:
        raise Skip("%s is mounted nosuid" % c.root)
    target = c.p("suid-true")
    shutil.copy("/bin/true", target)
    os.chown(target, 65534, 65534)
    os.chmod(target, 0o4755)
    return target, []


@case
def secure_exec_warning(c):
    """a set-user-ID program (secure-exec: ld.so ignores LD_PRELOAD) run by
    the workload is named in the warnings."""
    target, args = secure_exec_target(c)
    cmd = " ".join([target] + args) + " >/dev/null 2>&1; true"
    rep = c.run(["sh", "-c", cmd])
    warned = [w for w in rep.data["warnings"]
              if target in w and "secure-exec" in w]
    c.check(len(warned) == 1, "expected one warning naming %s as "
            "secure-exec, warnings: %s"
            % (target, cf.jdump(rep.data["warnings"])))


@case
def channel_broken(c):
    """the workload removes weft's socket mid-run: it runs on to its end
    once (its output is there, its exit status is weft's) and the report
    says what happened: a fallback to ptrace, or, with fallback disabled,
    that tracing was incomplete."""
    c.write("in", b"data\n")
    script = 'rm -f "$WEFT_PRELOAD_SOCK"; sleep 0.3; cat in > out; exit 3'
    for extra, word in (([], "preload"),
                        (["--no-tracer-fallback"], "incomplete")):
        if os.path.exists(c.p("out")):
            os.unlink(c.p("out"))
        r = c.weft_cmd(["run", "--tracer", "preload"] + extra +
                       ["--report", c.p("../r.json"), "--", "sh", "-c",
                        script])
        c.check(r.returncode == 3, "weft run %s exited %d, expected 3:\n%s"
                % (extra, r.returncode, r.stderr.decode()))
        with open(c.p("out"), "rb") as f:
            c.check_eq("out content", f.read().decode(), "data\n")
        with open(c.p("../r.json")) as f:
            warnings = cf.json.load(f)["warnings"]
        c.check(any(word in w and ("incomplete" in w or "fallback" in w)
                    for w in warnings),
                "run %s: expected a warning about the lost channel, "
                "warnings: %s" % (extra, cf.jdump(warnings)))


@case
def aggregation(c):
    """20,000 open/read/close of one file: one input record, and far fewer
    records on the wire than syscalls (no message per read; `weft -v`
    prints the collector's counts)."""
    loop = os.path.join(os.path.dirname(c.progs), "..", "bench",
                        "openreadclose")
    if not os.access(loop, os.X_OK):
        raise Skip("bench/openreadclose is not built")
    c.write("small", b"x" * 64)
    # The loop is built with the tree's sanitizers; a dynamic ASan
    # runtime (gcc) insists on coming first in LD_PRELOAD's list.
    r = c.weft_cmd(["run", "-v", "--tracer", "preload", "--",
                    os.path.realpath(loop), "20000", "small"],
                   env={"ASAN_OPTIONS": "verify_asan_link_order=0"})
    err = r.stderr.decode("utf-8", "replace")
    m = re.search(r"weft preload: (\d+) batches, (\d+) records", err)
    if r.returncode != 0 or not m:
        raise Fail("weft run -v exited %d without the collector's counts:"
                   "\n%s" % (r.returncode, err))
    records = int(m.group(2))
    c.check(records < 200, "%d records for 20,000 open/read/close "
            "(60,000 syscalls): reads are not aggregated" % records)


@case
def library_missing(c):
    """a weft whose libweft_preload.so cannot be found (copied away from
    it): preload's preflight fails on the named check `library`, `weft run
    --tracer preload` does not start the workload (exit 3), auto picks
    another backend; WEFT_PRELOAD_LIBRARY points it back."""
    lib = os.path.join(os.path.dirname(os.path.realpath(c.weft)),
                       "libweft_preload.so")
    if not os.path.exists(lib):
        raise Skip("%s is not where the test expects it" % lib)
    os.mkdir(os.path.join(c.root, "bin"))
    lone = os.path.join(c.root, "bin", "weft")
    shutil.copy(c.weft, lone)
    c.weft = lone
    r = c.weft_cmd(["tracer", "check", "preload", "--json"])
    doc = cf.json.loads(r.stdout.decode())
    failed = [k["name"] for k in doc["checks"] if not k["ok"]]
    c.check(r.returncode != 0 and not doc["ok"] and "library" in failed,
            "tracer check preload without the library: exit %d, failed "
            "checks %s" % (r.returncode, failed))
    r = c.weft_cmd(["run", "--tracer", "preload", "--", "touch", "marker"])
    c.check(r.returncode == 3 and not os.path.exists(c.p("marker")),
            "weft run --tracer preload without the library exited %d "
            "(expected 3), marker %s" % (r.returncode, "created" if
                                        os.path.exists(c.p("marker"))
                                        else "absent"))
    rep = c.p("../auto.json")
    r = c.weft_cmd(["run", "--report", rep, "--", "touch", "marker2"])
    if r.returncode == 0:
        with open(rep) as f:
            backend = cf.json.load(f)["backend"]
        c.check(backend != "preload", "auto picked preload without its "
                "library")
    env = {"WEFT_PRELOAD_LIBRARY": lib}
    r = c.weft_cmd(["run", "--tracer", "preload", "--", "touch", "marker3"],
                   env=env)
    c.check(r.returncode == 0 and os.path.exists(c.p("marker3")),
            "with WEFT_PRELOAD_LIBRARY=%s: exit %d\n%s"
            % (lib, r.returncode, r.stderr.decode()))


# Workloads both backends must record identically (files under the
# project, every field the report has).
SHM = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def shm(name, flags):
    fd = libc.shm_open(name.encode(), flags, 0o600)
    if fd < 0:
        sys.exit("shm_open %s: %s" % (name, os.strerror(ctypes.get_errno())))
    return fd
fd = shm(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR)
os.write(fd, b"kept in shared memory\n")
os.close(fd)
fd = shm(sys.argv[2], os.O_CREAT | os.O_EXCL | os.O_RDWR)
os.write(fd, b"gone\n")
os.close(fd)
fd = shm(sys.argv[1], os.O_RDONLY)
open("copy.txt", "wb").write(os.read(fd, 100))
os.close(fd)
if libc.shm_unlink(sys.argv[2].encode()) != 0:
    sys.exit("shm_unlink: %s" % os.strerror(ctypes.get_errno()))
"""


@case
def shm_objects(c):
    """POSIX shared memory objects are files under /dev/shm that glibc's
    shm_open and shm_unlink open and unlink inside libc: under preload as
    under ptrace, an object kept after the run is an output with its
    content's hash, one unlinked is deleted."""
    py = "/usr/bin/python3"
    if not os.access(py, os.X_OK):
        raise Skip("%s is not installed" % py)
    if not os.path.isdir("/dev/shm"):
        raise Skip("/dev/shm is not there")
    tracers = ["preload"]
    if c.weft_cmd(["tracer", "check", "ptrace"]).returncode == 0:
        tracers.append("ptrace")
    else:
        print("ptrace is not usable here: the preload run alone is checked")
    data = b"kept in shared memory\n"
    c.write("prog.py", SHM.encode())
    for tracer in tracers:
        keep = "weft-test-keep-%d-%s" % (os.getpid(), tracer)
        gone = "weft-test-gone-%d-%s" % (os.getpid(), tracer)
        c.tracer = tracer
        if os.path.exists(c.p("copy.txt")):
            os.unlink(c.p("copy.txt"))
        try:
            rep = c.run([py, "prog.py", "/" + keep, gone])
        finally:
            for n in (keep, gone):
                if os.path.exists("/dev/shm/" + n):
                    os.unlink("/dev/shm/" + n)
        c.expect(rep, "/dev/shm/" + keep, data, written=True, created=True,
                 deleted=False)
        c.expect(rep, "/dev/shm/" + gone, None, written=True, created=True,
                 deleted=True)
        c.expect(rep, "copy.txt", data, written=True, created=True)
    c.tracer = "preload"


CROSS = [
    ("cp", lambda c: ["cp", "a", "b"]),
    ("redirect", lambda c: ["sh", "-c", "cat a > r; echo more >> r"]),
    ("atomic_save", lambda c: [c.prog("atomic_save"), "a", "new text"]),
    ("sendfile", lambda c: [c.prog("sendfile_copy"), "a", "s"]),
    ("mmap", lambda c: [c.prog("mmap_read"), "a"]),
    ("fork", lambda c: [c.prog("fork_io"), "a", "f"]),
    ("spawn", lambda c: [c.prog("spawn_cat"), "a", "sp"]),
    ("tree", lambda c: ["sh", "-c", "mkdir -p t/u && cp a t/u/x && "
                        "mv t/u/x t/y && rm -f t/u/x && ln t/y t/z"]),
    ("find", lambda c: ["sh", "-c", "mkdir -p d/e && cp a d/e/a && "
                        "find . -name a -exec cat {} + > found"]),
    ("python", lambda c: ["/usr/bin/python3", "-c",
                          "import shutil; shutil.copy('a', 'p'); "
                          "open('q', 'w').write(open('p').read())"]),
]
FIELDS = ("read", "written", "created", "deleted", "renamed_to", "size",
          "hash")


@case
def cross_backend(c):
    """the same workloads under ptrace and under preload: the file records
    under the project are equal field by field."""
    r = c.weft_cmd(["tracer", "check", "ptrace"])
    if r.returncode != 0:
        raise Skip("ptrace is not usable here:\n%s" % r.stdout.decode())
    for name, cmd in CROSS:
        reps = {}
        for tracer in ("ptrace", "preload"):
            shutil.rmtree(c.proj)
            os.mkdir(c.proj)
            c.write("a", b"cross-backend input\n" * 20)
            c.tracer = tracer
            reps[tracer] = c.run(cmd(c))
        mine = {t: {p: rec for p, rec in rep.files.items()
                    if p.startswith(c.proj + "/")}
                for t, rep in reps.items()}
        for path in sorted(set(mine["ptrace"]) | set(mine["preload"])):
            a, b = mine["ptrace"].get(path), mine["preload"].get(path)
            if a is None or b is None:
                c.error("%s: %s recorded only under %s"
                        % (name, c.rel(path), "ptrace" if b is None
                           else "preload"))
                continue
            diff = ["%s: ptrace %s, preload %s" % (k, cf.jdump(a.get(k)),
                                                   cf.jdump(b.get(k)))
                    for k in FIELDS if a.get(k) != b.get(k)]
            c.check(not diff, "%s: %s differs: %s"
                    % (name, c.rel(path), "; ".join(diff)))
    c.tracer = "preload"


if __name__ == "__main__":
    cf.CASES.clear()
    cf.CASES.update(CASES)
    if "--list" not in sys.argv and "--tracer" not in sys.argv:
        sys.argv[1:1] = ["--tracer", "preload"]
    sys.exit(cf.main())
