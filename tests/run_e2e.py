#!/usr/bin/env python3
"""run_e2e.py - what `weft run` records about where it ran, and what it
says about its own cost.

The job of a `weft run` names the git commit of the repository around
the working directory. weft reads it from .git itself (no git process
per run); each git case builds a real repository with git, asks git for
the truth (`git rev-parse --verify -q HEAD`, nothing when that fails)
and compares it with the job weft recorded: a plain repository, refs
packed by `git pack-refs`, a linked worktree (a .git file), a detached
HEAD, a branch with no commit yet, a directory in no repository, and
GIT_DIR naming a repository elsewhere. `prehash` checks the hashes of
a run whose inputs and outputs are hashed while it runs against
hashlib's, with and without it; `hash_cache_written` that the hash
cache has each output's hash when `weft run` exits; `ptrace_pin_apart`
that the ptrace tracer and the hashing thread keep to different CPUs;
`job_user` that a run's job names its user. `timings` checks that
`weft run --timings` names its four phases on stderr; `env_bad` that a
setting in the environment weft does not understand stops the run before
the command (exit 2, the variable named); `progress` that on
a terminal the hashing and storing after the workload show a progress
line; `store_synced` that a run is on disk (its write-ahead log synced
after the last write) when `weft run` exits; `dag_output_whole`
that `weft dag -o FILE` replaces FILE only with a whole document;
`killed_run_stored_later` that a run killed after its record was
spooled, before it was stored, is stored by the next `weft run` in the
project (its output with its content's hash), and that `weft flush`
says so instead of waiting for a coordinator gone with that run;
`local_run_leaves_others` that a local run leaves a network writer in its
spool for `weft flush`; `no_network_threads` that a local run's
coordinator, running beside the workload, is called directly: weft's
process has its store writer's thread and none of nng's;
`killed_run_interrupted` that `weft status` marks the job of a killed
`weft run` as interrupted, and no other; `project_in_dev_shm` that a
project under /dev/shm records its files and their lineage;
`show_folds_temporaries` that `weft show` counts the files a run created
and deleted instead of listing them; `stored_behind` that `weft run`
exits once its run is spooled, a process of its own storing it after,
and that a reader (`weft show`) waits for it; `stored_behind_killed`
that a run whose storing process is killed is stored by the project's
next reading command (or `weft run`).

    run_e2e.py --weft PATH CASE
    run_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Standard
library only; skips without git, or when ptrace cannot trace here
(and `killed_run_stored_later` without gdb, which stops weft where a
kill leaves its record spooled).
"""

import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wraplib import Fail, Skip, main, run_tty  # noqa: E402

PREFLIGHT_EXIT = 3
CASES = {}
ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x",
           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x",
           GIT_CONFIG_NOSYSTEM="1", HOME="/nonexistent",
           WEFT_AGENT_SOCKET="/nonexistent/agent.sock")
for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR",
          "GIT_CEILING_DIRECTORIES"):
    ENV.pop(k, None)


def case(fn):
    def run(weft):
        if not shutil.which("git"):
            raise Skip("git is not installed")
        d = tempfile.mkdtemp(prefix="weft-run-")
        try:
            fn(weft, d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    CASES[fn.__name__] = run
    return fn


def git(cwd, *args, env=None):
    r = subprocess.run(["git"] + list(args), cwd=cwd, env=env or ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    return r


def repo(path, commits=1):
    os.makedirs(path, exist_ok=True)
    if git(path, "init", "-q", "-b", "main").returncode:
        raise Fail("git init failed in %s" % path)
    for i in range(commits):
        with open(os.path.join(path, "f"), "a") as f:
            f.write("%d\n" % i)
        git(path, "add", "f")
        if git(path, "commit", "-qm", "c%d" % i).returncode:
            raise Fail("git commit failed in %s" % path)


def traced(weft, cwd, script, tracer="ptrace", args=(), env=None):
    """`weft run --tracer TRACER ARGS -- sh -c SCRIPT` in cwd: skips when
    the tracer cannot trace here, fails when weft exits non-zero; the
    finished process (text output)."""
    r = subprocess.run([weft, "run", "--tracer", tracer] + list(args) +
                       ["--", "sh", "-c", script], cwd=cwd, env=env or ENV,
                       capture_output=True, text=True, timeout=300)
    if r.returncode == PREFLIGHT_EXIT:
        raise Skip("the %s tracer cannot trace here" % tracer)
    if r.returncode:
        raise Fail("weft run -- sh -c %r exited %d: %s"
                   % (script, r.returncode, r.stderr))
    return r


def truth(cwd, env=None):
    """git's own answer: the commit, or None."""
    r = git(cwd, "rev-parse", "--verify", "-q", "HEAD", env=env)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() \
        else None


def recorded(weft, cwd, project, env=None):
    """Run `weft run -- true` in cwd (the store in project) and return
    the git commit its job names."""
    e = env or ENV
    os.makedirs(os.path.join(project, ".weft"), mode=0o700, exist_ok=True)
    r = subprocess.run([weft, "run", "--tracer", "ptrace", "--", "true"],
                       cwd=cwd, env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode == PREFLIGHT_EXIT:
        raise Skip("the ptrace tracer cannot trace here: %s"
                   % r.stderr.strip())
    if r.returncode:
        raise Fail("weft run exited %d: %s" % (r.returncode, r.stderr))
    r = subprocess.run([weft, "job", "list", "--json"], cwd=cwd, env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode:
        raise Fail("weft job list exited %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)[-1]["git"]


def check(weft, cwd, project, env=None, want="commit"):
    t = truth(cwd, env)
    if (t is None) != (want is None):
        raise Fail("test setup: git says %r in %s" % (t, cwd))
    got = recorded(weft, cwd, project, env)
    if got != t:
        raise Fail("job names git commit %r, git says %r" % (got, t))


@case
def git_plain(weft, d):
    repo(d, commits=2)
    sub = os.path.join(d, "a", "b")
    os.makedirs(sub)
    check(weft, sub, d)


@case
def git_packed(weft, d):
    repo(d, commits=2)
    git(d, "pack-refs", "--all")
    if os.path.exists(os.path.join(d, ".git", "refs", "heads", "main")):
        raise Fail("test setup: git pack-refs left refs/heads/main loose")
    check(weft, d, d)


@case
def git_worktree(weft, d):
    main_repo = os.path.join(d, "main")
    repo(main_repo, commits=1)
    wt = os.path.join(d, "wt")
    if git(main_repo, "worktree", "add", "-q", "-b", "side",
           wt).returncode:
        raise Fail("git worktree add failed")
    with open(os.path.join(wt, "g"), "w") as f:
        f.write("side\n")
    git(wt, "add", "g")
    git(wt, "commit", "-qm", "side")
    if truth(wt) == truth(main_repo):
        raise Fail("test setup: the worktree's HEAD is main's")
    check(weft, wt, d)


@case
def git_detached(weft, d):
    repo(d, commits=3)
    git(d, "checkout", "-q", "--detach", "HEAD~1")
    check(weft, d, d)


@case
def git_unborn(weft, d):
    os.makedirs(d, exist_ok=True)
    git(d, "init", "-q", "-b", "main")
    check(weft, d, d, want=None)


@case
def git_none(weft, d):
    # A directory in no repository: the ceiling keeps git (and the
    # truth) from finding one above the temporary directory.
    if truth(d) is not None:
        raise Skip("%s is inside a git repository" % d)
    check(weft, d, d, want=None)


@case
def git_dir_env(weft, d):
    elsewhere = os.path.join(d, "elsewhere")
    repo(elsewhere, commits=2)
    here = os.path.join(d, "here")
    repo(here, commits=1)
    env = dict(ENV, GIT_DIR=os.path.join(elsewhere, ".git"))
    if truth(here, env) == truth(here):
        raise Fail("test setup: GIT_DIR changes nothing")
    check(weft, here, d, env=env)


@case
def timings(weft, d):
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    # The store phase is the record (spooled) and the store is written
    # after weft exits; with --wait-stored, before.
    for args, after in ((["--timings"], True),
                        (["--timings", "--wait-stored"], False)):
        r = traced(weft, d, "echo x > out", args=args)
        if not re.search(r"^weft: timings: preflight [\d.]+ ms, trace "
                         r"[\d.]+ ms, hash [\d.]+ ms, store [\d.]+ ms%s$"
                         % (r" \(spooled; stored after weft exits\)"
                            if after else ""), r.stderr, re.M):
            raise Fail("no timings line on stderr (%s): %r"
                       % (" ".join(args), r.stderr))
    r = subprocess.run([weft, "run", "--tracer", "ptrace", "--", "true"],
                       cwd=d, env=ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if "timings" in r.stderr:
        raise Fail("timings printed without --timings: %r" % r.stderr)


@case
def env_bad(weft, d):
    """A setting read from the environment with a value weft does not
    understand stops `weft run` with exit 2 before the command runs,
    naming the variable; the values it knows (and an empty one) run."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    marker = os.path.join(d, "ran")

    def run(name, value):
        return subprocess.run(
            [weft, "run", "--tracer", "ptrace", "--", "touch", marker],
            cwd=d, env=dict(ENV, **{name: value}), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=120)

    for name, value in (("WEFT_PREHASH", "offf"), ("WEFT_PREHASH", "yes"),
                        ("WEFT_PROGRESS_DELAY_MS", "1s"),
                        ("WEFT_PROGRESS_DELAY_MS", "-5"),
                        ("WEFT_PROGRESS_DELAY_MS", "99999999999")):
        r = run(name, value)
        if r.returncode != 2 or os.path.exists(marker):
            raise Fail("%s=%s: exit %d, the command %s: %r"
                       % (name, value, r.returncode,
                          "ran" if os.path.exists(marker) else "did not run",
                          r.stderr))
        if name not in r.stderr or "expected" not in r.stderr:
            raise Fail("%s=%s: stderr does not name it: %r"
                       % (name, value, r.stderr))
    for name, value in (("WEFT_PREHASH", "off"), ("WEFT_PREHASH", "1"),
                        ("WEFT_PREHASH", ""),
                        ("WEFT_PROGRESS_DELAY_MS", "0"),
                        ("WEFT_PROGRESS_DELAY_MS", "")):
        r = run(name, value)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("the ptrace tracer cannot trace here")
        if r.returncode or not os.path.exists(marker):
            raise Fail("%s=%r: exit %d: %r"
                       % (name, value, r.returncode, r.stderr))
        os.unlink(marker)


@case
def progress(weft, d):
    """On a terminal, what is left to wait for after the workload
    (hashing, storing: --wait-stored stores before weft exits) is a
    progress line on stderr, taken away before the run's summary; on a
    pipe stderr is as it was."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    n = 40
    cmd = [weft, "run", "--wait-stored", "--tracer", "ptrace", "--", "sh",
           "-c",
           "for i in $(seq 1 %d); do echo $i > f$i; done" % n]
    # At once instead of after a second: this run is short. Nothing
    # hashed while it runs: every file is left to the hashing after it.
    env = dict(ENV, WEFT_PROGRESS_DELAY_MS="0", WEFT_PREHASH="off")
    r = run_tty(cmd, cwd=d, env=env)
    if r.returncode == PREFLIGHT_EXIT:
        raise Skip("the ptrace tracer cannot trace here")
    if r.returncode:
        raise Fail("weft run exited %d: %r" % (r.returncode, r.err))
    # The shell's own reads and the outputs: at least n files hashed.
    m = re.search(r"\rweft: hashing: [0-9,]+ of ([0-9,]+) files", r.err)
    if not m or int(m.group(1).replace(",", "")) < n:
        raise Fail("no hashing progress of at least %d files: %r"
                   % (n, r.err))
    if not re.search(r"\rweft: storing: 1 of 1 fragments, [0-9.]+ (B|KiB)",
                     r.err):
        raise Fail("no storing progress: %r" % r.err)
    if not re.search(r"\r\x1b\[Kweft: run [0-9a-f]{8} recorded \(ptrace\): "
                     r"0 inputs \(\+[0-9]+ system\), %d outputs" % n, r.err):
        raise Fail("the progress line was not taken away before the "
                   "summary: %r" % r.err)
    r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True)
    if r.returncode or "\r" in r.stderr or "hashing" in r.stderr:
        raise Fail("progress on a pipe: exit %d, %r"
                   % (r.returncode, r.stderr))


def blake(data):
    import hashlib
    return "blake2b-256:" + hashlib.blake2b(data, digest_size=32).hexdigest()


@case
def prehash(weft, d):
    """Inputs hashed while the run runs, outputs as they are closed: every
    hash recorded is the content's (hashlib's), with and without it
    (WEFT_PREHASH=off); an input the run changed after reading it has
    as its read version the content it read, or none, never another.
    With the preload and the ptrace backends."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    ind = os.path.join(os.path.realpath(d), "in")
    os.mkdir(ind)
    first = {}
    for i in range(30):
        data = os.urandom(1000 + 4096 * i)
        first["f%02d" % i] = data
        with open(os.path.join(ind, "f%02d" % i), "wb") as f:
            f.write(data)
    script = ("cat in/* > out; sleep 0.2; printf x >> in/f00; "
              "cp in/f01 copy")
    traced = []
    for tracer, env in itertools.product(
            ("preload", "ptrace"), (ENV, dict(ENV, WEFT_PREHASH="off"))):
        report = os.path.join(d, "report.json")
        # New identities (ctime): not in the hash cache from the runs
        # before, so each run hashes its inputs.
        for n in first:
            os.utime(os.path.join(ind, n))
        r = subprocess.run([weft, "run", "-v", "--tracer", tracer,
                            "--report", report, "--", "sh", "-c", script],
                           cwd=d, env=env, capture_output=True, text=True)
        if r.returncode == PREFLIGHT_EXIT:
            print("# the %s tracer cannot trace here: not checked with it"
                  % tracer)
            continue
        traced.append(tracer)
        if r.returncode:
            raise Fail("weft run exited %d: %s" % (r.returncode, r.stderr))
        said = re.search(r"^weft: while the run ran: (\d+) files hashed",
                         r.stderr, re.M)
        if bool(said) != (env is ENV):
            raise Fail("%s: the prehash line %s with WEFT_PREHASH=%s: %r"
                       % (tracer, "missing" if not said else "printed",
                          env.get("WEFT_PREHASH"), r.stderr))
        with open(report) as f:
            files = {x["path"]: x for x in json.load(f)["files"]}
        with open(os.path.join(ind, "f00"), "rb") as f:
            now_f00 = f.read()
        truth = {os.path.join(ind, n): blake(v) for n, v in first.items()}
        truth[os.path.join(ind, "f00")] = blake(now_f00)
        truth[os.path.join(os.path.realpath(d), "out")] = blake(
            b"".join(first[n] for n in sorted(first)))
        truth[os.path.join(os.path.realpath(d), "copy")] = blake(
            first["f01"])
        for path, want in truth.items():
            got = files.get(path, {}).get("hash")
            if got != want:
                raise Fail("%s: %s: recorded %s, its content is %s"
                           % (tracer, path, got, want))
        rec = files[os.path.join(ind, "f00")]
        read = rec.get("read_hash")
        if read is not None and read != blake(first["f00"]):
            raise Fail("%s: in/f00 read as %s: what the run read was %s"
                       % (tracer, read, blake(first["f00"])))
        # Put f00 back for the next run.
        with open(os.path.join(ind, "f00"), "wb") as f:
            f.write(first["f00"])
        for n in ("out", "copy"):
            os.unlink(os.path.join(d, n))
    if not traced:
        raise Skip("neither the preload nor the ptrace tracer can trace "
                   "here")


@case
def job_user(weft, d):
    """The job of a `weft run` names the user who ran it (looked up
    beside the workload), also when the run's OpenLineage events are
    stored as it starts (openlineage.file)."""
    import pwd
    want = pwd.getpwuid(os.getuid()).pw_name
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    events = os.path.join(os.path.realpath(d), "events.jsonl")
    for config in ("", '[openlineage]\nfile = "%s"\n' % events):
        with open(os.path.join(d, ".weft", "config.toml"), "w") as f:
            f.write(config)
        r = subprocess.run([weft, "run", "--tracer", "preload", "--",
                            "true"], cwd=d, env=ENV, capture_output=True,
                           text=True)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("the preload tracer cannot trace here")
        if r.returncode:
            raise Fail("weft run exited %d: %s" % (r.returncode, r.stderr))
        r = subprocess.run([weft, "job", "list", "--json"], cwd=d, env=ENV,
                           capture_output=True, text=True)
        jobs = json.loads(r.stdout) if r.returncode == 0 else None
        if not jobs or jobs[-1].get("user") != want:
            raise Fail("config %r: the job's user is %r, not %r"
                       % (config, jobs and jobs[-1].get("user"), want))


def thread_cpus(pid):
    """{tid: (nice, allowed CPUs as a string)} of pid's threads now."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                nice = int(f.read().rsplit(")", 1)[1].split()[16])
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                cpus = [x.split()[1] for x in f
                        if x.startswith("Cpus_allowed_list:")][0]
        except (OSError, IndexError, ValueError):
            continue
        out[int(tid)] = (nice, cpus)
    return out


@case
def ptrace_pin_apart(weft, d):
    """Under ptrace the tracer pins itself to the CPU WEFT_PTRACE_PIN
    names, and the thread that hashes while the run runs (weft's one at
    nice 19) keeps off that CPU; with WEFT_PTRACE_PIN=off neither is
    pinned."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        raise Skip("one CPU: nothing to keep apart")
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    for pin in (str(allowed[-1]), str(allowed[0]), "off"):
        env = dict(ENV, WEFT_PTRACE_PIN=pin)
        p = subprocess.Popen([weft, "run", "--tracer", "ptrace", "--",
                              "sleep", "1.5"], cwd=d, env=env,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        seen = {}
        try:
            # Until the tracer has pinned itself (it does as the run
            # starts, after the hashing thread began), or a second.
            for _ in range(100):
                seen = thread_cpus(p.pid)
                hashing = [v for v in seen.values() if v[0] == 19]
                if hashing and p.pid in seen and (
                        pin == "off" or seen[p.pid][1] == pin):
                    break
                time.sleep(0.01)
        finally:
            _, err = p.communicate(timeout=60)
        if p.returncode == PREFLIGHT_EXIT:
            raise Skip("the ptrace tracer cannot trace here")
        if p.returncode:
            raise Fail("weft run exited %d: %s" % (p.returncode, err))
        hashing = [v[1] for v in seen.values() if v[0] == 19]
        if len(hashing) != 1 or p.pid not in seen:
            raise Fail("WEFT_PTRACE_PIN=%s: no tracer and hashing thread "
                       "seen: %r" % (pin, seen))
        tracer = seen[p.pid][1]
        if pin == "off":
            if tracer != hashing[0] or "-" not in tracer:
                raise Fail("WEFT_PTRACE_PIN=off: tracer on %s, hashing "
                           "on %s" % (tracer, hashing[0]))
            continue
        cpus = set()
        for part in hashing[0].split(","):
            a, _, b = part.partition("-")
            cpus.update(range(int(a), int(b or a) + 1))
        if tracer != pin or int(pin) in cpus:
            raise Fail("WEFT_PTRACE_PIN=%s: tracer on %s, hashing on %s"
                       % (pin, tracer, hashing[0]))


@case
def hash_cache_written(weft, d):
    """The hash cache entries of a run's outputs are in the store when
    `weft run` exits (written while the run is recorded): one for each
    output, under its identity, with its content's hash; hashed while
    the run ran and after it (WEFT_PREHASH=off)."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    for env in (ENV, dict(ENV, WEFT_PREHASH="off")):
        outd = os.path.join(os.path.realpath(d), "out")
        shutil.rmtree(outd, ignore_errors=True)
        os.mkdir(outd)
        # The sleep ages the last ctimes past the clock's tick: a file
        # changed within the tick its hash was taken in is not cached.
        script = ("for i in $(seq 1 40); do seq 1 $((i * 50)) > out/f$i; "
                  "done; sleep 0.1")
        r = subprocess.run([weft, "run", "--tracer", "preload", "--", "sh",
                            "-c", script], cwd=d, env=env,
                           capture_output=True, text=True)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("the preload tracer cannot trace here")
        if r.returncode:
            raise Fail("weft run exited %d: %s" % (r.returncode, r.stderr))
        truth = {}
        for n in os.listdir(outd):
            st = os.stat(os.path.join(outd, n))
            with open(os.path.join(outd, n), "rb") as f:
                truth[(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                       st.st_ctime_ns)] = blake(f.read())
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(
            d, ".weft", "weft.db"), uri=True, timeout=10)
        try:
            rows = {tuple(x[:5]): "blake2b-256:" + x[5].hex()
                    for x in con.execute(
                        "SELECT dev, ino, size, mtime_ns, ctime_ns, hash "
                        "FROM hash_cache")}
        finally:
            con.close()
        for ident, want in truth.items():
            if rows.get(ident) != want:
                raise Fail("WEFT_PREHASH=%s: output %r: the hash cache "
                           "has %s, its content is %s"
                           % (env.get("WEFT_PREHASH"), ident,
                              rows.get(ident), want))


def stores_leftover(weft, d, argv):
    """`weft ARGV` in the project d stores the one fragment an earlier run
    left in the spool, and says so; the finished process."""
    r = subprocess.run([weft] + argv, cwd=d, env=ENV, capture_output=True,
                       text=True, timeout=300)
    if r.returncode:
        raise Fail("weft %s exited %d: %s"
                   % (" ".join(argv), r.returncode, r.stderr))
    if not re.search(r"1 fragment that earlier runs of this project left "
                     r"in .* is now stored", r.stderr):
        raise Fail("weft %s does not say it stored what the earlier run "
                   "left: %r" % (" ".join(argv), r.stderr))
    return r


@case
def killed_run_stored_later(weft, d):
    """A `weft run` killed once its record is spooled but before it is
    stored (gdb stops it where it starts to deliver the spool, then
    kills it): `weft flush` says the next run stores it, the next
    `weft run` in the project does, and the lineage of the killed run's
    output is then its task, with the hash of what it wrote."""
    if not shutil.which("gdb"):
        raise Skip("gdb is not installed: it stops weft where a kill "
                   "leaves its record spooled")
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    spool = os.path.join(os.path.realpath(d), ".weft", "spool")
    out = os.path.join(os.path.realpath(d), "out.txt")
    content = b"left behind\n"
    script = "printf 'left behind\\n' > out.txt"
    gdb = ["gdb", "-q", "-batch", "-ex", "set breakpoint pending on",
           "-ex", "set detach-on-fork on", "-ex",
           "set follow-fork-mode parent", "-ex",
           "break weft_wrap_ship_writer", "-ex", "run", "-ex", "kill",
           "--args", weft, "run", "--wait-stored", "--tracer", "preload",
           "--", "sh", "-c", script]
    r = subprocess.run(gdb, cwd=d, env=ENV, capture_output=True, text=True,
                       timeout=300)
    if "weft_wrap_ship_writer (" not in r.stdout:
        if "preflight" in r.stdout + r.stderr:
            raise Skip("the preload tracer cannot trace here")
        raise Fail("gdb did not stop weft where it delivers: %s\n%s"
                   % (r.stdout[-2000:], r.stderr[-2000:]))
    left = [n for n in os.listdir(spool) if n.startswith("w-")]
    frags = [f for n in left for f in os.listdir(os.path.join(spool, n))
             if f.startswith("f-")]
    if len(left) != 1 or not frags:
        raise Fail("after the kill the spool holds %s, fragments %s: "
                   "expected the killed run's writer and its fragment"
                   % (left, frags))
    r = subprocess.run([weft, "flush", "--spool", spool, "--timeout", "60"],
                       cwd=d, env=ENV, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 1 or \
            "that project's next weft command" not in r.stderr:
        raise Fail("weft flush of the killed run's spool: exit %d, %r"
                   % (r.returncode, r.stderr))
    stores_leftover(weft, d, ["run", "--tracer", "preload", "--", "true"])
    if [n for n in os.listdir(spool) if n.startswith("w-")]:
        raise Fail("the spool still holds %s" % os.listdir(spool))
    r = subprocess.run([weft, "lineage", "--json", out], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise Fail("weft lineage out.txt exited %d: %s"
                   % (r.returncode, r.stderr))
    lin = json.loads(r.stdout)
    writers = [t["name"] for t in lin["tasks"]
               if any(e["from"] == t["id"] and e["to"] == lin["root"]
                      and e["kind"] == "write" for e in lin["edges"])]
    root = [a for a in lin["artifacts"] if a["id"] == lin["root"]]
    if writers != ["sh -c " + script] or not root or \
            root[0]["hash"] != blake(content):
        raise Fail("out.txt's lineage: written by %s, hash %s; expected "
                   "the killed run's task and %s"
                   % (writers, root and root[0]["hash"], blake(content)))


@case
def local_run_leaves_others(weft, d):
    """A writer for a network coordinator in the project's spool (a `weft
    wrap` pointed at it, its coordinator down) is not a local run's to
    deliver: `weft run` leaves it, naming nothing of it, and `weft flush`
    delivers it once its coordinator is back."""
    from wraplib import Coordinator, Job, wrap_env
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    spool = os.path.join(os.path.realpath(d), ".weft", "spool")
    cproj = os.path.join(d, "coordinated")
    c = Coordinator(weft, cproj).start()
    j = None
    try:
        j = Job(weft, c, cproj)
        c.kill()
        r = subprocess.run([weft, "wrap", "--ship-timeout", "1", "--",
                            "true"], env=wrap_env(j.contract, spool),
                           cwd=d, capture_output=True, text=True,
                           timeout=300)
        left = sorted(n for n in os.listdir(spool) if n.startswith("w-"))
        if r.returncode or len(left) != 1:
            raise Fail("weft wrap with its coordinator down: exit %d, "
                       "spool %s: %s" % (r.returncode, left, r.stderr))
        r = subprocess.run([weft, "run", "--tracer", "ptrace", "--",
                            "true"], cwd=d, env=ENV, capture_output=True,
                           text=True, timeout=300)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("the ptrace tracer cannot trace here")
        if r.returncode or c.url in r.stderr or "left in" in r.stderr:
            raise Fail("weft run beside a network writer: exit %d, %r"
                       % (r.returncode, r.stderr))
        now = sorted(n for n in os.listdir(spool) if n.startswith("w-"))
        if now != left:
            raise Fail("weft run took the network writer: spool %s, "
                       "was %s" % (now, left))
        c.start()
        r = subprocess.run([weft, "flush", "--spool", spool], cwd=d,
                           env=ENV, capture_output=True, text=True,
                           timeout=300)
        now = [n for n in os.listdir(spool) if n.startswith("w-")]
        if r.returncode or now:
            raise Fail("weft flush with the coordinator back: exit %d, "
                       "spool %s: %s" % (r.returncode, now, r.stderr))
        j.end()
    finally:
        if j and j.proc:
            j.proc.kill()
            j.proc.wait()
        c.kill()


@case
def store_synced(weft, d):
    """What a run stored is on disk when `weft run` exits: the store's
    write-ahead log is synced after the last write to it (strace sees
    every write and sync of weft.db-wal). Reading the store then (weft
    show) writes neither weft.db nor its -wal."""
    if not shutil.which("strace"):
        raise Skip("strace is not installed")
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    log = os.path.join(d, "strace.log")
    # LeakSanitizer (the ASan build) cannot run under ptrace.
    env = dict(ENV, ASAN_OPTIONS=(ENV.get("ASAN_OPTIONS", "") +
                                  ":detect_leaks=0").lstrip(":"))
    for i in range(2):  # the first run makes the store
        r = subprocess.run(["strace", "-f", "-y", "-qq", "-s", "0", "-o",
                            log, "-e", "trace=write,pwrite64,fdatasync,fsync",
                            weft, "run", "--tracer", "preload", "--", "sh",
                            "-c", "echo %d > out" % i],
                           cwd=d, env=env, capture_output=True, text=True)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("the preload tracer cannot trace here")
        if r.returncode:
            raise Fail("weft run under strace exited %d: %s"
                       % (r.returncode, r.stderr))
    wal = re.compile(r"\b(write|pwrite64|fdatasync|fsync)\(\d+<[^>]*"
                     r"/\.weft/weft\.db-wal>")
    last_write = last_sync = -1
    with open(log) as f:
        for n, line in enumerate(f):
            m = wal.search(line)
            if not m:
                continue
            if m.group(1) in ("write", "pwrite64"):
                last_write = n
            else:
                last_sync = n
    if last_write < 0:
        raise Fail("strace saw no write to .weft/weft.db-wal: %s" % log)
    if last_sync < last_write:
        raise Fail("the store's write-ahead log was written (line %d of "
                   "strace's log) and not synced after" % (last_write + 1))
    files = [os.path.join(d, ".weft", n) for n in ("weft.db", "weft.db-wal")]

    def contents():
        out = []
        for p in files:
            with open(p, "rb") as f:
                out.append(f.read())
        return out
    before = contents()
    show = subprocess.run([weft, "show", "--json"], cwd=d, env=ENV,
                          capture_output=True, text=True)
    if show.returncode or '"out"' not in show.stdout and "/out" not in \
            show.stdout:
        raise Fail("weft show (exit %d) does not show the run: %s"
                   % (show.returncode, show.stdout[:300] + show.stderr))
    if contents() != before:
        raise Fail("weft show changed weft.db or its -wal")


@case
def store_whole_after_run(weft, d):
    """After `weft run` exits, the store's checkpoint (its write-ahead log
    copied into weft.db) is done by a process of its own that weft does
    not wait for: shortly after, weft.db alone holds the run, and the log
    is cut to nothing. Neither output stream of weft is held open by it."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    p = subprocess.Popen([weft, "run", "--tracer", "preload", "--", "sh",
                          "-c", "echo x > out"], cwd=d, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # EOF on both pipes: no process kept weft's end of them.
    out, err = p.communicate(timeout=60)
    if p.returncode == PREFLIGHT_EXIT:
        raise Skip("the preload tracer cannot trace here")
    if p.returncode:
        raise Fail("weft run exited %d: %s" % (p.returncode, err))
    db = os.path.join(d, ".weft", "weft.db")
    # A reader waits until the run is stored (after weft run exited).
    subprocess.run([weft, "show"], cwd=d, env=ENV, capture_output=True,
                   timeout=300)
    deadline = time.time() + 60
    while os.path.getsize(db + "-wal") and time.time() < deadline:
        time.sleep(0.05)
    if os.path.getsize(db + "-wal"):
        raise Fail("the store's write-ahead log still holds %d bytes a "
                   "minute after weft run" % os.path.getsize(db + "-wal"))
    alone = os.path.join(d, "alone.db")
    shutil.copy(db, alone)
    con = sqlite3.connect("file:%s?mode=ro" % alone, uri=True)
    try:
        paths = [bytes(r[0]) if isinstance(r[0], bytes) else
                 r[0].encode() for r in con.execute(
                     "SELECT p.path FROM file_io f JOIN paths p ON "
                     "p.id = f.path WHERE f.written")]
    finally:
        con.close()
    if not any(x.endswith(b"/out") for x in paths):
        raise Fail("weft.db alone does not hold the run's output: %r"
                   % paths)


@case
def ptrace_pins_one_runnable_task(weft, d):
    """Under ptrace (WEFT_PTRACE_PIN unset: auto) the workload shares the
    tracer's CPU while one of its tasks can run: a shell waiting for its
    command does not count, so the command runs on one CPU. While two can
    run and they mostly compute or sleep (a background sleep beside it),
    every CPU is the workload's again; while two can and they stop all
    the time (both ends of a pipe, a byte at a time), one CPU still. The
    tasks say it themselves (their affinity). A value weft
    does not know, or a CPU it may not use, is named on stderr."""
    if len(os.sched_getaffinity(0)) < 2:
        raise Skip("one CPU here: nothing to pin to")
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    env = {k: v for k, v in ENV.items() if k != "WEFT_PTRACE_PIN"}
    # After a pause, so that the shell is in its wait by then.
    probe = ("/usr/bin/python3 -c 'import os, time; time.sleep(0.5); "
             "print(len(os.sched_getaffinity(0)))'")
    # Two tasks that stop at every byte through a pipe between them.
    writer = ("/usr/bin/python3 -c 'import os\nfor i in range(20000): "
              "os.write(1, b\"x\")\nopen(\"piped\", \"w\").write("
              "str(len(os.sched_getaffinity(0))))'")
    reader = ("/usr/bin/python3 -c 'import os\n"
              "while os.read(0, 1): pass'")
    cpus = {}
    for name, script in (("alone", "%s > alone" % probe),
                         ("beside", "sleep 2 & %s > beside; wait" % probe),
                         ("piped", "%s | %s" % (writer, reader))):
        traced(weft, d, script, env=env)
        with open(os.path.join(d, name)) as f:
            cpus[name] = int(f.read())
    if cpus["alone"] != 1:
        raise Fail("a command its shell waits for ran on %d CPUs, not the "
                   "tracer's one" % cpus["alone"])
    if cpus["beside"] != len(os.sched_getaffinity(0)):
        raise Fail("a command beside a running task ran on %d CPUs of %d"
                   % (cpus["beside"], len(os.sched_getaffinity(0))))
    if cpus["piped"] != 1:
        raise Fail("a pipeline stopping at every byte ran on %d CPUs, not "
                   "the tracer's one" % cpus["piped"])
    # A value it does not know is named, and the run goes on.
    r = subprocess.run([weft, "run", "--tracer", "ptrace", "--", "true"],
                       cwd=d, env=dict(env, WEFT_PTRACE_PIN="atuo"),
                       capture_output=True, text=True)
    if r.returncode or "WEFT_PTRACE_PIN=atuo" not in r.stderr:
        raise Fail("WEFT_PTRACE_PIN=atuo: exit %d, %r"
                   % (r.returncode, r.stderr))
    # So is a CPU it may not use.
    cpu = str(max(os.sched_getaffinity(0)) + 1)
    r = subprocess.run([weft, "run", "--tracer", "ptrace", "--", "true"],
                       cwd=d, env=dict(env, WEFT_PTRACE_PIN=cpu),
                       capture_output=True, text=True)
    if r.returncode or "cannot run on CPU " + cpu not in r.stderr:
        raise Fail("WEFT_PTRACE_PIN=%s: exit %d, %r"
                   % (cpu, r.returncode, r.stderr))


@case
def dag_output_whole(weft, d):
    """`weft dag -o FILE` replaces FILE only with a whole document: a
    failed dag leaves the old file as it was and no temporary beside it."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    traced(weft, d, "echo x > out")
    target = os.path.join(d, "dag.txt")
    with open(target, "w") as f:
        f.write("the old picture\n")
    r = subprocess.run([weft, "dag", "--job", "no-such-job", "-o", target],
                       cwd=d, env=ENV, capture_output=True, text=True)
    if r.returncode != 1:
        raise Fail("weft dag --job no-such-job exited %d, expected 1: %s"
                   % (r.returncode, r.stderr))
    with open(target) as f:
        if f.read() != "the old picture\n":
            raise Fail("a failed weft dag -o changed %s" % target)
    left = [n for n in os.listdir(d) if n.startswith("dag.txt.")]
    if left:
        raise Fail("a failed weft dag -o left %s behind" % left)
    r = subprocess.run([weft, "dag", "--format", "json", "-o", target],
                       cwd=d, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("weft dag -o exited %d: %s" % (r.returncode, r.stderr))
    with open(target) as f:
        doc = json.load(f)
    if not any(a["path"] == os.path.join(os.path.realpath(d), "out")
               for a in doc["artifacts"]):
        raise Fail("the DAG written to %s has no %s/out" % (target, d))


@case
def no_network_threads(weft, d):
    """While the workload runs, the run's coordinator is up (its store
    writer's thread is there) and nng, which a coordinator in the same
    process does not need, has started none of its threads."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    # The coordinator starts beside the workload: by half a second it has
    # long been up (as its writer's thread shows), nng's threads with it
    # if it used nng.
    # --wait-stored: the coordinator stays up until the run is stored
    # (without it, it stops once the job is made: the store is written
    # after weft exits, by a fork that may have no other thread).
    traced(weft, d, "sleep 0.5; cat /proc/$PPID/task/*/comm > threads",
           args=("--wait-stored",))
    with open(os.path.join(d, "threads")) as f:
        names = f.read().split()
    if "weft-store" not in names:
        raise Fail("no store writer's thread in weft while the workload "
                   "ran (threads: %s)" % names)
    nng = [n for n in names if n.startswith("nng")]
    if nng:
        raise Fail("a local run started nng's threads %s" % nng)
    r = subprocess.run([weft, "show", "--json"], cwd=d, env=ENV,
                       capture_output=True, text=True)
    if r.returncode or not any(
            f["path"].endswith("/threads") and f["written"]
            and f["hash"] for f in json.loads(r.stdout)["files"]):
        raise Fail("the run is not stored with its output: %s %s"
                   % (r.stdout[:400], r.stderr))


@case
def project_in_dev_shm(weft, d):
    """A project under /dev/shm (a tmpfs clusters use as scratch): a run
    there records its input and output, and `weft lineage` of the output
    names the run's task and the input with their hashes."""
    del d
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        raise Skip("/dev/shm is not there or not writable")
    p = tempfile.mkdtemp(prefix="weft-run-", dir="/dev/shm")
    try:
        with open(os.path.join(p, "in.txt"), "wb") as f:
            f.write(b"scratch input\n")
        script = "tr a-z A-Z < in.txt > out.txt"
        r = traced(weft, p, script)
        if "1 input " not in r.stderr or "1 output," not in r.stderr:
            raise Fail("weft run in %s: %r" % (p, r.stderr))
        r = subprocess.run([weft, "lineage", "--json", "out.txt"], cwd=p,
                           env=ENV, capture_output=True, text=True,
                           timeout=120)
        if r.returncode:
            raise Fail("weft lineage out.txt exited %d: %s"
                       % (r.returncode, r.stderr))
        lin = json.loads(r.stdout)
        arts = {a["id"]: a for a in lin["artifacts"]}
        root = arts.get(lin["root"], {})
        writers = [t["name"] for t in lin["tasks"]
                   if any(e["from"] == t["id"] and e["to"] == lin["root"]
                          and e["kind"] == "write" for e in lin["edges"])]
        inputs = [arts[e["from"]] for e in lin["edges"]
                  if e["kind"] == "read" and e["from"] in arts]
        want_in = os.path.join(os.path.realpath(p), "in.txt")
        if writers != ["sh -c " + script] or \
                root.get("hash") != blake(b"SCRATCH INPUT\n") or \
                [(a.get("path"), a.get("hash")) for a in inputs
                 if not a.get("path", "").startswith(("/usr", "/lib",
                                                      "/etc"))] != \
                [(want_in, blake(b"scratch input\n"))]:
            raise Fail("lineage of out.txt under /dev/shm: %s"
                       % json.dumps(lin)[:1500])
    finally:
        shutil.rmtree(p, ignore_errors=True)


@case
def show_folds_temporaries(weft, d):
    """`weft show` lists a file the run deleted that was there before it,
    and counts, not lists, a file the run created and deleted (`--all`
    and `--json` have both)."""
    d = os.path.realpath(d)
    with open(os.path.join(d, "old.txt"), "w") as f:
        f.write("there before\n")
    traced(weft, d, "echo t > tmp.txt; cat tmp.txt > out.txt; "
           "rm tmp.txt old.txt")
    old, tmp = os.path.join(d, "old.txt"), os.path.join(d, "tmp.txt")
    want = {False: ["removed or moved:", "  %s  deleted" % old,
                    "  (+1 temporary file, created and deleted by the run; "
                    "--all lists them)"],
            True: ["removed or moved:", "  %s  deleted" % old,
                   "  %s  deleted" % tmp]}
    for all_ in (False, True):
        r = subprocess.run([weft, "show"] + (["--all"] if all_ else []),
                           cwd=d, env=ENV, capture_output=True, text=True)
        lines = r.stdout.splitlines()
        at = lines.index("removed or moved:") \
            if "removed or moved:" in lines else len(lines)
        got = [ln for ln in lines[at:at + 3]]
        if r.returncode or got != want[all_]:
            raise Fail("weft show%s: %r, expected %r\n%s"
                       % (" --all" if all_ else "", got, want[all_],
                          r.stdout))
    r = subprocess.run([weft, "show", "--json"], cwd=d, env=ENV,
                       capture_output=True, text=True)
    gone = sorted(f["path"] for f in json.loads(r.stdout)["files"]
                  if f["deleted"])
    if gone != [old, tmp]:
        raise Fail("weft show --json: deleted %s, expected %s"
                   % (gone, [old, tmp]))


def status_jobs(weft, d):
    r = subprocess.run([weft, "status", "--json"], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise Fail("weft status --json exited %d: %s"
                   % (r.returncode, r.stderr))
    return {j["id"]: j for j in json.loads(r.stdout)["jobs"]}


@case
def killed_run_interrupted(weft, d):
    """`weft status` tells a local run's job whose `weft run` was killed
    (it stays open in the store: nobody else holds its token to end it)
    from one whose run is still running: "interrupted" true in --json,
    INTERRUPTED on its line, and so does `weft job list --json`; a run
    that ends leaves no mark."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    pidfile = os.path.join(d, "pid")
    p = subprocess.Popen([weft, "run", "--tracer", "ptrace", "--", "sh",
                          "-c", "echo $$ > pid.tmp && mv pid.tmp pid && "
                          "exec sleep 60"],
                         cwd=d, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    sleeper = None
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(pidfile):
            if p.poll() is not None:
                err = p.stderr.read().decode(errors="replace")
                if p.returncode == PREFLIGHT_EXIT:
                    raise Skip("the ptrace tracer cannot trace here")
                raise Fail("weft run exited %d: %s" % (p.returncode, err))
            if time.monotonic() > deadline:
                raise Fail("the workload did not start within 60 s")
            time.sleep(0.05)
        with open(pidfile) as f:
            sleeper = int(f.read())
        jobs = status_jobs(weft, d)
        if len(jobs) != 1:
            raise Fail("while the run runs, status shows %d jobs, expected "
                       "its one: %s" % (len(jobs), jobs))
        (killed,) = jobs
        if jobs[killed]["state"] != "open" or \
                jobs[killed].get("interrupted") is not False:
            raise Fail("the running run's job: %s" % jobs[killed])
        p.kill()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
        if sleeper:
            try:
                os.kill(sleeper, signal.SIGKILL)
            except ProcessLookupError:
                pass
    jobs = status_jobs(weft, d)
    if jobs.get(killed, {}).get("state") != "open" or \
            jobs[killed].get("interrupted") is not True:
        raise Fail("after weft run was killed, its job: %s" % jobs.get(killed))
    r = subprocess.run([weft, "run", "--tracer", "ptrace", "--", "true"],
                       cwd=d, env=ENV, capture_output=True, text=True,
                       timeout=300)
    if r.returncode:
        raise Fail("the next weft run exited %d: %s" % (r.returncode, r.stderr))
    jobs = status_jobs(weft, d)
    ended = [j for j in jobs.values() if j["id"] != killed]
    if len(ended) != 1 or ended[0]["state"] != "ended" or \
            ended[0].get("interrupted") is not False:
        raise Fail("the run after: %s" % ended)
    if jobs[killed].get("interrupted") is not True:
        raise Fail("the killed run's job after another run: %s"
                   % jobs[killed])
    marks = os.listdir(os.path.join(d, ".weft", "live"))
    if marks != [killed]:
        raise Fail("marks left in .weft/live: %s, expected only the killed "
                   "run's job %s" % (marks, killed))
    r = subprocess.run([weft, "job", "list", "--json"], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=60)
    listed = {j["id"]: j.get("interrupted") for j in json.loads(r.stdout)}
    if listed != {killed: True, ended[0]["id"]: False}:
        raise Fail("weft job list --json: interrupted %s" % listed)
    r = subprocess.run([weft, "status"], cwd=d, env=ENV, capture_output=True,
                       text=True, timeout=60)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("job ")]
    if not any(killed in ln and "INTERRUPTED" in ln for ln in lines) or \
            any("INTERRUPTED" in ln for ln in lines if killed not in ln):
        raise Fail("weft status does not mark the killed run's job alone "
                   "as interrupted:\n%s" % r.stdout)


def spool_fragments(spool):
    """{writer directory: [fragment files]} of the spool."""
    if not os.path.isdir(spool):
        return {}
    return {n: sorted(f for f in os.listdir(os.path.join(spool, n))
                      if f.startswith("f-"))
            for n in os.listdir(spool) if n.startswith("w-")}


def storing_pids(d):
    """The processes that hold the project's .weft/storing open."""
    lock = os.path.realpath(os.path.join(d, ".weft", "storing"))
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == lock:
                    pids.append(int(pid))
                    break
            except OSError:
                pass
    return pids


def stored_output(weft, d, name, content):
    """`weft show --json` lists name as written with content's hash."""
    r = subprocess.run([weft, "show", "--json"], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise Fail("weft show exited %d: %s" % (r.returncode, r.stderr))
    return any(f["path"].endswith("/" + name) and f["written"] and
               f["hash"] == blake(content)
               for f in json.loads(r.stdout)["files"])


def shows_out(show_json, content):
    """Whether `weft show --json` output names the file out as written,
    with the hash of content."""
    return any(f["path"].endswith("/out") and f["written"] and
               f["hash"] == blake(content)
               for f in json.loads(show_json)["files"])


def held_project(d):
    """A project in d whose runs' storing waits for the file hold (the
    test hook WEFT_STORE_BEHIND_HOLD): (its spool, hold, the env)."""
    os.makedirs(os.path.join(d, ".weft"), mode=0o700)
    hold = os.path.join(d, "hold")
    return (os.path.join(d, ".weft", "spool"), hold,
            dict(ENV, WEFT_STORE_BEHIND_HOLD=hold))


@case
def stored_behind(weft, d):
    """`weft run` exits once the run is spooled (synced); a process of its
    own stores it after (held here by WEFT_STORE_BEHIND_HOLD until the
    test lets it go). Meanwhile the spool holds the run and the store
    does not; weft's output pipes are closed; `weft show` waits for the
    store and then shows the run, its output with its hash; the spool is
    empty and the job ended."""
    spool, hold, env = held_project(d)
    p = subprocess.Popen([weft, "run", "--tracer", "preload", "--", "sh",
                          "-c", "echo behind > out"], cwd=d, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    show = None
    try:
        # EOF on both pipes: the storing process kept neither.
        out, err = p.communicate(timeout=60)
        if p.returncode == PREFLIGHT_EXIT:
            raise Skip("the preload tracer cannot trace here")
        if p.returncode:
            raise Fail("weft run exited %d: %s" % (p.returncode, err))
        frags = spool_fragments(spool)
        if len(frags) != 1 or not list(frags.values())[0]:
            raise Fail("while the store is held, the spool holds %s: "
                       "expected the run's writer and its fragment" % frags)
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(
            d, ".weft", "weft.db"), uri=True)
        try:
            n = con.execute("SELECT count(*) FROM file_io").fetchone()[0]
        finally:
            con.close()
        if n:
            raise Fail("the store holds %d file records before the run "
                       "was let go to be stored" % n)
        if not storing_pids(d):
            raise Fail("no process holds .weft/storing while the run "
                       "is being stored")
        show = subprocess.Popen([weft, "show", "--json"], cwd=d, env=ENV,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        if show.poll() is not None:
            raise Fail("weft show did not wait for the run being stored: "
                       "exit %d, %s" % (show.returncode,
                                        show.stdout.read()[:300]))
    finally:
        with open(hold, "w"):
            pass
        if p.poll() is None:
            p.kill()
            p.wait()
    sout, serr = show.communicate(timeout=120)
    if show.returncode or not shows_out(sout, b"behind\n"):
        raise Fail("weft show after the wait (exit %d) does not show the "
                   "run's output: %s %s" % (show.returncode, sout[:400],
                                            serr))
    if any(spool_fragments(spool).values()):
        raise Fail("the spool still holds %s" % spool_fragments(spool))
    jobs = status_jobs(weft, d)
    if [j["state"] for j in jobs.values()] != ["ended"]:
        raise Fail("the run's job: %s" % jobs)


def left_in_spool(weft, d, text):
    """A run of `echo TEXT > out` in the project d whose storing process
    is killed before it stored anything: its fragment stays in the
    spool. The spool."""
    spool, hold, env = held_project(d)
    r = subprocess.run([weft, "run", "--tracer", "preload", "--", "sh",
                        "-c", "echo %s > out" % text], cwd=d, env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode == PREFLIGHT_EXIT:
        raise Skip("the preload tracer cannot trace here")
    if r.returncode:
        raise Fail("weft run exited %d: %s" % (r.returncode, r.stderr))
    pids = storing_pids(d)
    if len(pids) != 1:
        with open(hold, "w"):
            pass
        raise Fail("processes holding .weft/storing: %s, expected one"
                   % pids)
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while storing_pids(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not any(spool_fragments(spool).values()):
        raise Fail("the killed storing process left nothing in the spool")
    return spool


def storing_held(d):
    """Whether some process holds the project's .weft/storing locked."""
    fd = os.open(os.path.join(d, ".weft", "storing"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@case
def readers_wait_for_one_storing(weft, d):
    """Two readers at once in a project whose spool holds a run that was
    never stored: the first stores it (held by WEFT_STORE_BEHIND_HOLD
    while it does, the storing lock taken), the second waits for it
    instead of reading without the run; both show the run's output with
    its hash, and only the first says it stored the leftover."""
    spool = left_in_spool(weft, d, "two")
    hold = os.path.join(d, "hold-reader")
    first = subprocess.Popen([weft, "show", "--json"], cwd=d,
                             env=dict(ENV, WEFT_STORE_BEHIND_HOLD=hold),
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    second = None
    try:
        # Held for three looks in a row: past the first reader's moment
        # of exclusive lock, in its storing.
        deadline, seen = time.monotonic() + 60, 0
        while seen < 3 and time.monotonic() < deadline:
            seen = seen + 1 if storing_held(d) else 0
            time.sleep(0.05)
        if seen < 3:
            raise Fail("the first reader never held .weft/storing while "
                       "storing what the run left")
        second = subprocess.Popen([weft, "show", "--json"], cwd=d,
                                  env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        if second.poll() is not None:
            raise Fail("the second reader did not wait for the first to "
                       "store what the run left: exit %d, %s"
                       % (second.returncode, second.stderr.read()[:300]))
    finally:
        with open(hold, "w"):
            pass
    outs = {}
    for name, p in (("first", first), ("second", second)):
        out, err = p.communicate(timeout=120)
        if p.returncode or not shows_out(out, b"two\n"):
            raise Fail("the %s reader (exit %d) does not show the run's "
                       "output: %s %s" % (name, p.returncode, out[:400],
                                          err))
        outs[name] = err
    if "is now stored" not in outs["first"] or \
            "is now stored" in outs["second"]:
        raise Fail("who says it stored the leftover: first %r, second %r"
                   % (outs["first"], outs["second"]))
    if any(spool_fragments(spool).values()):
        raise Fail("the spool still holds %s" % spool_fragments(spool))


@case
def removable_once_stored(weft, d):
    """What a script does to remove a project's .weft right after a run:
    wait for .weft/storing (as `flock .weft/storing true` does), then
    remove .weft. Once the lock is free nothing of weft's writes there
    any more (the store's checkpoint after the run holds it too), so the
    removal never meets a file made behind it ("Directory not empty").
    Runs stored after weft exits and with --wait-stored, many times: the
    checkpoint that outlived the lock lost this race about one run in
    six."""
    weft_dir = os.path.join(d, ".weft")
    for i in range(24):
        args = ["--wait-stored"] if i % 4 == 3 else []
        r = subprocess.run([weft, "run", "--tracer", "preload"] + args +
                           ["--", "sh", "-c", "echo %d > out" % i], cwd=d,
                           env=ENV, capture_output=True, text=True,
                           timeout=300)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("the preload tracer cannot trace here")
        if r.returncode:
            raise Fail("weft run exited %d: %s" % (r.returncode, r.stderr))
        try:
            fd = os.open(os.path.join(weft_dir, "storing"), os.O_RDONLY)
        except FileNotFoundError:
            raise Fail("run %d%s: no .weft/storing to wait for"
                       % (i, " " + args[0] if args else ""))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)
        try:
            shutil.rmtree(weft_dir)
        except OSError as e:
            raise Fail("run %d%s: .weft cannot be removed once "
                       ".weft/storing is free: %s"
                       % (i, " " + args[0] if args else "", e))


@case
def stored_behind_killed(weft, d):
    """The process storing a run after `weft run` exited is killed before
    it stored anything: the run stays in the spool, and the next weft
    command in the project that reads the store (`weft lineage`) stores
    it first, saying so: its output with its hash."""
    spool = left_in_spool(weft, d, "killed")
    # A reader stores it before it reads, and says so.
    r = stores_leftover(weft, d, ["lineage", "--json", "out"])
    lin = json.loads(r.stdout)
    root = [a for a in lin["artifacts"] if a["id"] == lin["root"]]
    if not root or root[0]["hash"] != blake(b"killed\n"):
        raise Fail("out's lineage after the next run: %s" % lin)
    if any(spool_fragments(spool).values()):
        raise Fail("the spool still holds %s" % spool_fragments(spool))


if __name__ == "__main__":
    sys.exit(main(CASES))
