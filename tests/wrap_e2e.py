#!/usr/bin/env python3
"""wrap_e2e.py - `weft wrap`, `weft submit`, `weft flush` and the
coordinator end to end, with real processes and real sockets.

    wrap_e2e.py --weft PATH CASE
    wrap_e2e.py --list

Cases:
  exit_status   a wrapped command's exit status passes through: 0, 3, and
                128+signal; with the coordinator up and with it down.
  cluster       a coordinator and 20 concurrent wrappers on three "nodes"
                (network namespaces; loopback where not permitted): stage
                one on two nodes writes files into a shared directory, a
                stage-two task on the third reads them; `weft dag --job`
                has the cross-node edges, by hash.
  outage        the coordinator unreachable for 10 s: workloads finish
                within --ship-timeout, their fragments stay spooled and
                arrive later through `weft flush` and through the next
                wrapper on that node.
  late_delivery a wrapper that could not reach the coordinator before the
                job ended: `weft flush` enrols it late with the proof it
                spooled and delivers its task (issue 14 item 4); a spool
                the coordinator refuses (a wrong token) makes flush exit
                non-zero.
  crash         `kill -9` of the coordinator in the middle of ingest, then
                a restart: every fragment stored exactly once.
  submit        `weft submit` records the job (command, user, host, cwd,
                times, exit status); `weft job list/show` print it; with
                no --coordinator it starts one and the job's wrappers
                ship to it.
  in_cluster_preload  `weft submit --mode in-cluster` traced with preload
                returns when the driver ends (its coordinator is weft's
                child too).
  submit_killed `weft submit` killed with SIGKILL: the coordinator it
                started stops too; the job stays recorded.
  hash_cache    two wrappers in a row read the same 8 MiB file with one
                WEFT_HASH_CACHE: the second does not read it to hash it
                (wrap -v's counts), both record the same hash; a rewrite
                that keeps size and mtime gets a new one; a corrupt cache
                file and WEFT_HASH_CACHE=off hash without it, exit 0.
  progress      on a terminal a wrapper shows the hashing and shipping
                after its task as a progress line, taken away at the
                end; on a pipe, nothing.
  prehash       a wrapper traced with preload hashes its files while the
                task runs (wrap -v says how many), with WEFT_PREHASH=off
                it does not; the DAG has the contents' hashes either way
                (an input read, the output it wrote).

Exit status: 0 pass, 1 fail (with what differed), 77 skip (with why).
Standard library only.
"""

import contextlib
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wraplib import (Cluster, Coordinator, Fail, Job, Scratch, Skip, check,  # noqa
                     dag, log, main, run, run_tty, wrap_env)
import caselib  # noqa: E402

CASES, case = caselib.registry()


def blake(content):
    return "blake2b-256:" + hashlib.blake2b(content,
                                            digest_size=32).hexdigest()


def spooled(spool):
    """Fragment files left in a spool (f-* under w-*)."""
    n = 0
    if os.path.isdir(spool):
        for w in os.listdir(spool):
            if w.startswith("w-"):
                n += sum(1 for f in os.listdir(os.path.join(spool, w))
                         if f.startswith("f-"))
    return n


def cleanup(job, coordinator, scratch):
    """End the job (while its coordinator runs), stop the coordinator,
    remove the scratch directory."""
    if job:
        job.end()
    if coordinator:
        coordinator.kill()
    scratch.close()


@contextlib.contextmanager
def started_job(weft, name):
    """A scratch directory, a coordinator started on it and a job open
    there, as (scratch, coordinator, job); all cleaned up at the end of the
    with block, or as soon as a step here fails."""
    s = Scratch(name)
    c = Coordinator(weft, s.dir)
    j = None
    try:
        c.start()
        j = Job(weft, c, s.dir)
        yield s, c, j
    finally:
        cleanup(j, c, s)


def wait_started(proc, path, what):
    """Wait up to a minute for proc to make path; fail with what when it
    ends first or the minute passes."""
    end = time.monotonic() + 60
    while not os.path.exists(path):
        check(proc.poll() is None and time.monotonic() < end, what)
        time.sleep(0.02)


def tasks_by_name(d):
    return {t["name"]: t for t in d["tasks"]}


@case
def case_exit_status(weft):
    with started_job(weft, "exit") as (s, c, j):
        contract, job, spool = j.contract, j.id, s.path("spool")
        for script, want in (("exit 0", 0), ("exit 3", 3),
                             ("kill -TERM $$", 128 + signal.SIGTERM),
                             ("kill -KILL $$", 128 + signal.SIGKILL)):
            p = run([weft, "wrap", "--task", "t-%d" % want, "--", "sh", "-c",
                     script], env=wrap_env(contract, spool), cwd=s.dir)
            check(p.returncode == want,
                  "wrap -- sh -c '%s' exited %d, expected %d\n%s"
                  % (script, p.returncode, want, p.err))
        check(spooled(spool) == 0, "acknowledged fragments left in the spool")
        names = tasks_by_name(dag(weft, s.dir, job))
        for want in (0, 3, 143, 137):
            t = names.get("t-%d" % want)
            check(t is not None, "task t-%d missing from the DAG: %s"
                  % (want, sorted(names)))
            check(t["exit_code"] == want, "task t-%d: exit_code %r"
                  % (want, t["exit_code"]))
        rc, err = j.end()
        check(rc == 0, "weft submit exited %s: %s" % (rc, err))
        # Coordinator down: the status still passes, within the timeout.
        c.kill()
        t0 = time.monotonic()
        p = run([weft, "wrap", "--ship-timeout", "1", "--", "sh", "-c",
                 "exit 5"], env=wrap_env(contract, spool), cwd=s.dir)
        took = time.monotonic() - t0
        check(p.returncode == 5, "with the coordinator down: exit %d, "
              "expected 5\n%s" % (p.returncode, p.err))
        check(spooled(spool) > 0, "nothing spooled while the coordinator "
              "was down")
        log("coordinator down: wrap took %.2fs with --ship-timeout 1" % took)
        # A bad env contract: named, the command not started.
        bad = wrap_env(contract, spool, WEFT_JOB="not-a-uuid")
        p = run([weft, "wrap", "--", "sh", "-c", "touch started"], env=bad,
                cwd=s.dir)
        check(p.returncode == 2 and "WEFT_JOB" in p.err,
              "bad WEFT_JOB: exit %d, stderr %s" % (p.returncode, p.err))
        check(not os.path.exists(s.path("started")),
              "the command ran despite a bad env contract")


HASHED = re.compile(r"weft: task (\S+): hashed (\d+) files, read (\d+), "
                    r"(\d+) from the hash cache (.*)")


def hash_counts(p):
    """(hashed, read, cached, cache) from wrap -v's hashing line."""
    for line in p.err.splitlines():
        m = HASHED.match(line)
        if m:
            return (int(m.group(2)), int(m.group(3)), int(m.group(4)),
                    m.group(5))
    raise Fail("no hashing line in wrap -v's stderr:\n%s" % p.err)


def read_hash(d, task, path):
    """The hash of path's version as the task named task read it."""
    t = tasks_by_name(d).get(task)
    check(t is not None, "task %s missing from the DAG" % task)
    ids = {e["from"] for e in d["edges"]
           if e["kind"] == "read" and e["to"] == t["id"]}
    got = [a["hash"] for a in d["artifacts"]
           if a["id"] in ids and a["path"] == path]
    check(len(got) == 1, "task %s: read of %s: %r" % (task, path, got))
    return got[0]


def random_file(path, size):
    """A file of size random bytes at path; its content."""
    content = os.urandom(size)
    with open(path, "wb") as f:
        f.write(content)
    return content


@case
def case_hash_cache(weft):
    with started_job(weft, "hcache") as (s, c, j):
        contract, job, spool = j.contract, j.id, s.path("spool")
        big = s.path("big.bin")
        content = random_file(big, 8 << 20)
        time.sleep(0.1)  # past the clock tick of its ctime: cacheable
        cache = s.path("cache", "weft", "hashes.db")  # directories made

        def wrap(task, **extra):
            # No hashing while the task runs: what that thread reads
            # counts as from the cache in -v's line (case_prehash).
            env = wrap_env(contract, spool, WEFT_HASH_CACHE=cache,
                           WEFT_PREHASH="off")
            env.update(extra)
            p = run([weft, "wrap", "-v", "--task", task, "--", "sh", "-c",
                     "cat big.bin > /dev/null"], env=env, cwd=s.dir)
            check(p.returncode == 0, "wrap %s exited %d:\n%s"
                  % (task, p.returncode, p.err))
            return hash_counts(p)

        h1, r1, c1, at1 = wrap("h-1")
        check(at1 == cache and r1 >= 1 and h1 == r1 + c1,
              "first wrapper: hashed %d, read %d, cached %d, cache %s"
              % (h1, r1, c1, at1))
        check(os.path.isfile(cache), "no cache file at %s" % cache)
        h2, r2, c2, at2 = wrap("h-2")
        check(at2 == cache and r2 == 0 and c2 == h2 and h2 >= 1,
              "second wrapper read %d of %d files (first: %d of %d)"
              % (r2, h2, r1, h1))
        # Same size, same mtime, new content: ctime differs, a miss.
        st = os.stat(big)
        new = bytes([content[0] ^ 1]) + content[1:]
        with open(big, "r+b") as f:
            f.write(new[:1])
        os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
        time.sleep(0.1)
        h3, r3, c3, _ = wrap("h-3")
        check(r3 == 1, "after a rewrite: read %d of %d files, expected 1"
              % (r3, h3))
        # A corrupt cache: ignored, every file read, the task unharmed.
        for suffix in ("-wal", "-shm"):
            if os.path.exists(cache + suffix):
                os.unlink(cache + suffix)
        with open(cache, "wb") as f:
            f.write(b"not a database " * 1000)
        h4, r4, c4, at4 = wrap("h-4")
        check(at4 == "(none)" and c4 == 0 and r4 == h4,
              "corrupt cache: read %d of %d, cache %s" % (r4, h4, at4))
        h5, r5, c5, at5 = wrap("h-5", WEFT_HASH_CACHE="off")
        check(at5 == "(none)" and c5 == 0,
              "WEFT_HASH_CACHE=off: cached %d, cache %s" % (c5, at5))
        d = dag(weft, s.dir, job)
        want_old, want_new = blake(content), blake(new)
        for task, want in (("h-1", want_old), ("h-2", want_old),
                           ("h-3", want_new), ("h-4", want_new),
                           ("h-5", want_new)):
            got = read_hash(d, task, big)
            check(got == want, "task %s read %s as %s, expected %s"
                  % (task, big, got, want))
        con = sqlite3.connect(s.path(".weft", "weft.db"))
        try:
            warned = [r[0] for r in con.execute(
                "SELECT text FROM warnings") if b"hash cache" in r[0]]
        finally:
            con.close()
        check(len(warned) == 1 and b"not used" in warned[0],
              "hash cache warnings (one expected, h-4's): %r" % warned)
        log("hash_cache: first wrapper read %d of %d files, the second "
            "%d of %d" % (r1, h1, r2, h2))


@case
def case_prehash(weft):
    with started_job(weft, "prehash") as (s, c, j):
        inp, cache = s.path("in.bin"), s.path("pcache", "hashes.db")
        content = random_file(inp, 4 << 20)
        contract, job, spool = j.contract, j.id, s.path("spool")
        for task, extra in (("p-on", {}), ("p-off", {"WEFT_PREHASH": "off"})):
            env = wrap_env(contract, spool, WEFT_HASH_CACHE=cache,
                           WEFT_TRACER="preload", **extra)
            # The sleep leaves the hashing thread time to get there.
            p = run([weft, "wrap", "-v", "--task", task, "--", "sh", "-c",
                     "cat in.bin > out-%s.bin; sleep 0.5" % task], env=env,
                    cwd=s.dir)
            if p.returncode == 3:
                raise Skip("preload cannot trace here:\n%s" % p.err)
            check(p.returncode == 0, "wrap %s exited %d:\n%s"
                  % (task, p.returncode, p.err))
            said = re.search(r"^weft: while the run ran: (\d+) files hashed",
                             p.err, re.M)
            if task == "p-on":
                check(said is not None and int(said.group(1)) >= 1,
                      "wrap -v (prehash on) says: %r" % p.err)
            else:
                check(said is None, "wrap -v with WEFT_PREHASH=off says it "
                      "hashed while the task ran: %r" % p.err)
        d = dag(weft, s.dir, job)
        names = tasks_by_name(d)
        arts = {a["id"]: a for a in d["artifacts"]}
        want = blake(content)
        for task in ("p-on", "p-off"):
            check(read_hash(d, task, inp) == want,
                  "task %s read %s as %s, expected %s"
                  % (task, inp, read_hash(d, task, inp), want))
            out = s.path("out-%s.bin" % task)
            got = [arts[e["to"]]["hash"] for e in d["edges"]
                   if e["kind"] == "write" and
                   e["from"] == names[task]["id"] and
                   arts[e["to"]]["path"] == out]
            check(got == [want], "task %s wrote %s as %r, expected %s"
                  % (task, out, got, want))


@case
def case_progress(weft):
    """On a terminal, what a wrapper has left to do after its task (the
    files hashed, the fragments shipped) is a progress line on stderr,
    taken away before it exits; on a pipe stderr has none of it."""
    with started_job(weft, "progress") as (s, c, j):
        n = 40
        # Nothing hashed while the task runs: every file is left to the
        # hashing after it; progress at once (the task is short).
        env = wrap_env(j.contract, s.path("spool"), WEFT_PREHASH="off",
                       WEFT_PROGRESS_DELAY_MS="0")
        cmd = [weft, "wrap", "--task", "shown", "--", "sh", "-c",
               "for i in $(seq 1 %d); do echo $i > f$i; done" % n]
        p = run_tty(cmd, env=env, cwd=s.dir)
        check(p.returncode == 0, "wrap on a terminal exited %d:\n%s"
              % (p.returncode, p.err))
        m = re.search(r"\rweft: hashing: [0-9,]+ of ([0-9,]+) files", p.err)
        check(m is not None and int(m.group(1).replace(",", "")) >= n,
              "no hashing progress of at least %d files: %r" % (n, p.err))
        check(re.search(r"\rweft: shipping: 1 of 1 fragments", p.err)
              is not None, "no shipping progress: %r" % p.err)
        check(p.err.endswith("\r\x1b[K"),
              "the progress line was not taken away at the end: %r" % p.err)
        q = run(cmd[:3] + ["piped"] + cmd[4:], env=env, cwd=s.dir)
        check(q.returncode == 0 and "\r" not in q.err
              and "hashing" not in q.err,
              "progress on a pipe: exit %d, %r" % (q.returncode, q.err))


def stage_script(out_dir, i):
    return ("printf 'part %d from %%s\\n' \"$(hostname)\" > %s/part-%02d.txt"
            % (i, out_dir, i))


@case
def case_cluster(weft):
    s = Scratch("cluster")
    cl = Cluster(3)
    c = j = None
    try:
        c = Coordinator(weft, s.dir, host=cl.host_ip).start()
        j = Job(weft, c, s.dir)
        contract, job = j.contract, j.id
        shared = s.path("shared")
        os.mkdir(shared)
        procs = []
        # Stage one: 19 tasks, on nodes 0 and 1, all at once.
        for i in range(19):
            node = i % 2
            env = wrap_env(contract, s.path("spool%d" % node),
                           SLURM_JOB_ID="77", SLURM_STEP_ID="0",
                           SLURM_PROCID=str(i), SLURM_NODEID=str(node),
                           SLURMD_NODENAME="node%d" % node)
            procs.append(subprocess.Popen(
                cl.prefix(node) + [weft, "wrap", "--ship-timeout", "60",
                                   "--", "sh", "-c", stage_script(shared, i)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for p in procs:
            out, err = p.communicate(timeout=180)
            check(p.returncode == 0, "a stage-one wrapper exited %d: %s"
                  % (p.returncode, err.decode(errors="replace")))
        # Stage two on node 2 reads every part.
        env = wrap_env(contract, s.path("spool2"), SLURM_JOB_ID="77",
                       SLURM_STEP_ID="1", SLURM_PROCID="0",
                       SLURM_NODEID="2", SLURMD_NODENAME="node2")
        p = run(cl.prefix(2) + [weft, "wrap", "--ship-timeout", "60", "--",
                                "sh", "-c", "cat %s/part-*.txt > %s/all.txt"
                                % (shared, shared)], env=env, timeout=180)
        check(p.returncode == 0, "stage two exited %d: %s"
              % (p.returncode, p.err))
        for n in range(3):
            check(spooled(s.path("spool%d" % n)) == 0,
                  "fragments left in node%d's spool" % n)

        d = dag(weft, s.dir, job)
        names = tasks_by_name(d)
        check(len(d["tasks"]) == 20, "%d tasks in the DAG, expected 20: %s"
              % (len(d["tasks"]), sorted(names)))
        reader = names.get("77.1.0@node2")
        check(reader is not None and reader["node"] == "node2",
              "stage-two task missing or on the wrong node: %s" % reader)
        arts = {a["id"]: a for a in d["artifacts"]}
        writes = {(e["from"], e["to"]) for e in d["edges"]
                  if e["kind"] == "write"}
        reads = {(e["from"], e["to"]) for e in d["edges"]
                 if e["kind"] == "read" and not e["weak"]}
        for i in range(19):
            path = os.path.join(shared, "part-%02d.txt" % i)
            with open(path, "rb") as f:
                h = blake(f.read())
            writer = names.get("77.0.%d@node%d" % (i, i % 2))
            check(writer is not None, "task 77.0.%d@node%d missing" % (i, i % 2))
            check(writer["node"] == "node%d" % (i % 2),
                  "task %s on node %r" % (writer["name"], writer["node"]))
            art = [a for a in arts.values() if a["hash"] == h]
            check(art, "no artifact with the hash of %s (%s)" % (path, h))
            aid = art[0]["id"]
            check((writer["id"], aid) in writes,
                  "no write edge %s -> %s" % (writer["name"], path))
            check((aid, reader["id"]) in reads,
                  "no strong read edge %s -> stage two" % path)
        log("cluster: %s; 20 tasks, %d artifacts, %d edges"
            % ("3 network namespaces" if cl.real else "loopback",
               len(d["artifacts"]), len(d["edges"])))
    finally:
        cleanup(j, c, s)
        cl.close()


@contextlib.contextmanager
def job_then_outage(weft, name):
    """started_job, then the coordinator killed (unreachable until started
    again)."""
    with started_job(weft, name) as (s, c, j):
        c.kill()
        yield s, c, j


@case
def case_outage(weft):
    with job_then_outage(weft, "outage") as (s, c, j):
        contract, job = j.contract, j.id
        down_at = time.monotonic()
        spool = s.path("spool")
        ship_timeout = 2.0
        for i in range(3):
            t0 = time.monotonic()
            p = run([weft, "wrap", "--task", "down-%d" % i, "--ship-timeout",
                     str(ship_timeout), "--", "sh", "-c",
                     "sleep 0.2; echo %d > out-%d" % (i, i)],
                    env=wrap_env(contract, spool), cwd=s.dir)
            took = time.monotonic() - t0
            check(p.returncode == 0, "wrap exited %d: %s"
                  % (p.returncode, p.err))
            # The workload itself takes 0.2 s; what weft adds after it is
            # bounded by --ship-timeout (plus tracing and process start).
            check(took < ship_timeout + 8,
                  "wrap took %.1fs with the coordinator down and "
                  "--ship-timeout %.0f" % (took, ship_timeout))
        left = spooled(spool)
        check(left >= 3, "only %d fragments spooled for 3 runs" % left)
        # `weft flush` with the coordinator still down: nothing lost.
        p = run([weft, "flush", "--spool", spool, "--timeout", "1"])
        check(p.returncode == 1 and spooled(spool) == left,
              "flush with the coordinator down: exit %d, %d left of %d\n%s"
              % (p.returncode, spooled(spool), left, p.err))
        time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        c.start()
        # The next wrapper on this node delivers what is left.
        p = run([weft, "wrap", "--task", "up", "--ship-timeout", "30", "--",
                 "true"], env=wrap_env(contract, spool), cwd=s.dir)
        check(p.returncode == 0, "wrap after restart exited %d: %s"
              % (p.returncode, p.err))
        check(spooled(spool) == 0, "the next wrapper left %d fragments"
              % spooled(spool))
        names = tasks_by_name(dag(weft, s.dir, job))
        for n in ("down-0", "down-1", "down-2", "up"):
            check(n in names, "task %s missing after delivery: %s"
                  % (n, sorted(names)))
        # And through `weft flush`: another outage, then a flush.
        c.kill()
        p = run([weft, "wrap", "--task", "later", "--ship-timeout", "0.5",
                 "--", "true"], env=wrap_env(contract, spool), cwd=s.dir)
        check(p.returncode == 0 and spooled(spool) > 0,
              "second outage: exit %d, %d spooled" % (p.returncode,
                                                     spooled(spool)))
        c.start()
        # On a terminal (at once instead of after a second): a progress
        # line, taken away before the summary.
        n = spooled(spool)
        p = run_tty([weft, "flush", "--spool", spool, "--timeout", "30"],
                    env=dict(os.environ, WEFT_PROGRESS_DELAY_MS="0"))
        check(p.returncode == 0 and spooled(spool) == 0,
              "flush exited %d, %d left\n%s" % (p.returncode, spooled(spool),
                                               p.err))
        summary = "\r\x1b[Kweft: flush %s: %d fragment%s stored" % (
            spool, n, "" if n == 1 else "s")
        check(re.search(r"\rweft: flushing: [0-9,]+ fragments?, [0-9.]+ "
                        r"(B|KiB|MiB)", p.err) and summary in p.err,
              "weft flush on a terminal: no progress line, or it was not "
              "taken away before %r:\n%r" % (summary, p.err))
        check("later" in tasks_by_name(dag(weft, s.dir, job)),
              "the flushed task is not in the DAG")


@case
def case_late_delivery(weft):
    with job_then_outage(weft, "late") as (s, c, j):
        contract, job, spool = j.contract, j.id, s.path("spool")
        p = run([weft, "wrap", "--task", "late", "--ship-timeout", "0.5",
                 "--", "sh", "-c", "echo x > late-out"],
                env=wrap_env(contract, spool), cwd=s.dir)
        check(p.returncode == 0 and spooled(spool) > 0,
              "wrap with the coordinator down: exit %d, %d spooled"
              % (p.returncode, spooled(spool)))
        # A second spool, made with a token that is not the job's.
        bad_spool = s.path("bad-spool")
        bad = dict(contract, WEFT_JOB_TOKEN="f" * 64)
        p = run([weft, "wrap", "--task", "forged", "--ship-timeout", "0.5",
                 "--", "true"], env=wrap_env(bad, bad_spool), cwd=s.dir)
        check(p.returncode == 0 and spooled(bad_spool) > 0,
              "wrap with a wrong token: exit %d" % p.returncode)
        c.start()
        rc, err = j.end()
        check(rc == 0, "weft submit exited %s: %s" % (rc, err))
        p = run([weft, "flush", "--spool", spool, "--timeout", "30"])
        check(p.returncode == 0 and spooled(spool) == 0,
              "late flush exited %d, %d left\n%s"
              % (p.returncode, spooled(spool), p.err))
        names = tasks_by_name(dag(weft, s.dir, job))
        check("late" in names, "the late task is not in the DAG: %s\n%s"
              % (sorted(names), p.err))
        p = run([weft, "flush", "--spool", bad_spool, "--timeout", "30"])
        check(p.returncode != 0,
              "flush of a refused spool exited 0:\n%s" % p.err)
        check("refused" in p.err or "rejected" in p.err, p.err)
        check("forged" not in tasks_by_name(dag(weft, s.dir, job)),
              "a task with a wrong token was stored")
        # A spool named on the command line that is not there (a typo)
        # is an error naming it, not an empty spool flushed.
        missing = s.path("no-such-spool")
        p = run([weft, "flush", "--spool", missing, "--timeout", "1"])
        check(p.returncode == 2 and missing in p.err
              and "no such directory" in p.err,
              "flush of a missing spool: exit %d\n%s"
              % (p.returncode, p.err))
        p = run([weft, "flush", "--spool", "/etc/hostname"])
        check(p.returncode == 2 and "Not a directory" in p.err,
              "flush of a file as the spool: exit %d\n%s"
              % (p.returncode, p.err))


def status(weft, url):
    p = run([weft, "status", "--coordinator", url, "--json"], check_rc=0)
    return json.loads(p.out)


@case
def case_crash(weft):
    with started_job(weft, "crash") as (s, c, j):
        contract, job, spool = j.contract, j.id, s.path("spool")
        # Many fragments: every wrapper's run is cut into small parts.
        files = s.path("files")
        os.mkdir(files)
        for i in range(300):
            with open(os.path.join(files, "in-%03d-%s" % (i, "x" * 200)),
                      "w") as f:
                f.write("%d\n" % i)
        env = wrap_env(contract, spool, WEFT_WRAP_PART_BYTES="8192")
        procs = [subprocess.Popen(
            [weft, "wrap", "--task", "w%d" % i, "--ship-timeout", "90", "--",
             "sh", "-c", "cat %s/* > /dev/null" % files], env=env,
            cwd=s.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(8)]
        # Kill it once fragments are arriving, then bring it back.
        end = time.monotonic() + 60
        while time.monotonic() < end and spooled(spool) == 0:
            time.sleep(0.01)
        time.sleep(0.2)
        c.kill(signal.SIGKILL)
        before = run([weft, "status", "--store", c.store, "--job", job,
                      "--json"])
        try:
            had = json.loads(before.out)["jobs"][0]["fragments"]
        except (ValueError, KeyError, IndexError):
            had = "?"
        log("coordinator killed with %d fragments spooled, %s stored"
            % (spooled(spool), had))
        time.sleep(1)
        c.start()
        for p in procs:
            out, err = p.communicate(timeout=180)
            check(p.returncode == 0, "a wrapper exited %d: %s"
                  % (p.returncode, err.decode(errors="replace")))
        if spooled(spool):
            run([weft, "flush", "--spool", spool, "--timeout", "60"],
                check_rc=0)
        st = status(weft, c.url)
        jobs = [x for x in st.get("jobs", []) if x.get("id") == job]
        check(jobs, "job %s not in weft status: %s" % (job, st))
        # Exactly once: per writer, seqs 1..n all there, no gaps; the
        # job's fragment count is the sum, and every one verifies.
        writers = jobs[0]["writers"]
        check(len(writers) == 8, "%d writers, expected 8" % len(writers))
        check(jobs[0]["gaps"] == 0, "gaps: %s" % jobs[0])
        total = 0
        for w in writers:
            check(w["missing"] == 0 and w["fragments"] == w["max_seq"],
                  "writer %s: %d fragments, highest seq %d, %d missing"
                  % (w["id"], w["fragments"], w["max_seq"], w["missing"]))
            check(w["fragments"] > 1, "runs were not split into parts")
            total += w["fragments"]
        check(jobs[0]["fragments"] == total,
              "the job holds %d fragments, its writers %d"
              % (jobs[0]["fragments"], total))
        p = run([weft, "verify", "--job", job, "--json"], cwd=s.dir,
                check_rc=0)
        v = json.loads(p.out)
        check(v.get("fragments") == total and v.get("ok") == total,
              "weft verify: %s, expected %d fragments, all ok"
              % (p.out, total))
        names = tasks_by_name(dag(weft, s.dir, job))
        check(all("w%d" % i in names for i in range(8)), "tasks missing")


@case
def case_submit(weft):
    s = Scratch("submit")
    try:
        # No --coordinator: weft submit starts one for the job's length.
        script = ("weft_bin=%s; $weft_bin wrap --task inner -- sh -c "
                  "'echo hi > made.txt' && exit 4" % weft)
        p = run([weft, "submit", "--", "sh", "-c", script], cwd=s.dir,
                env=wrap_env({}, s.path("spool")))
        check(p.returncode == 4, "submit exited %d, expected CMD's 4\n%s"
              % (p.returncode, p.err))
        check("tcp://" in p.err, "submit did not print where its "
              "coordinator listens: %s" % p.err)
        p = run([weft, "job", "list", "--json"], cwd=s.dir, check_rc=0)
        jobs = json.loads(p.out)
        check(len(jobs) == 1, "job list: %s" % p.out)
        j = jobs[0]
        check(j["exit_code"] == 4 and j["ended"] and j["user"]
              and j["host"] and j["cwd"] == os.path.realpath(s.dir),
              "job record: %s" % j)
        p = run([weft, "job", "show", j["id"][:8]], cwd=s.dir, check_rc=0)
        check(j["id"] in p.out and "sh -c" in p.out,
              "job show: %s" % p.out)
        names = tasks_by_name(dag(weft, s.dir, j["id"]))
        check("inner" in names, "the wrapped task is not in the job's "
              "DAG: %s" % sorted(names))
        # in-cluster: CMD is the driver task, traced; a task started with
        # the contract it exports (on another node: outside its process
        # tree) hangs under it (WEFT_PARENT).
        script = ("echo plan > plan.txt && env -0 > c.tmp && mv c.tmp "
                  "contract && while [ ! -e done ]; do sleep 0.05; done")
        drv = subprocess.Popen(
            [weft, "submit", "--mode", "in-cluster", "--task", "drv",
             "--tracer", "ptrace", "--", "sh", "-c", script], cwd=s.dir,
            env=wrap_env({}, s.path("spool")), stderr=subprocess.PIPE)
        wait_started(drv, s.path("contract"),
                     "the in-cluster driver did not start")
        with open(s.path("contract"), "rb") as f:
            contract = dict(i.decode().partition("=")[::2]
                            for i in f.read().split(b"\0")
                            if i.startswith(b"WEFT_"))
        check(contract.get("WEFT_PARENT") == "drv",
              "WEFT_PARENT is %r" % contract.get("WEFT_PARENT"))
        p = run([weft, "wrap", "--task", "child", "--", "cat", "plan.txt"],
                cwd=s.dir, env=wrap_env(contract, s.path("spool")))
        check(p.returncode == 0, "child wrap: %d %s" % (p.returncode, p.err))
        open(s.path("done"), "w").close()
        _, err = drv.communicate(timeout=120)
        check(drv.returncode == 0, "in-cluster submit exited %d: %s"
              % (drv.returncode, err.decode(errors="replace")))
        jobs = json.loads(run([weft, "job", "list", "--json"], cwd=s.dir,
                              check_rc=0).out)
        d = dag(weft, s.dir, jobs[-1]["id"])
        names = tasks_by_name(d)
        check("drv" in names and "child" in names,
              "in-cluster DAG tasks: %s" % sorted(names))
        check(names["child"]["parent"] == names["drv"]["id"],
              "child's parent is %r, not the driver %r"
              % (names["child"]["parent"], names["drv"]["id"]))
        p = run([weft, "job", "show", "00000000-0000-4000-8000-000000000000"],
                cwd=s.dir)
        check(p.returncode != 0 and "no job" in p.err,
              "job show of an unknown id: %d %s" % (p.returncode, p.err))
    finally:
        s.close()


@case
def case_in_cluster_preload(weft):
    """`weft submit --mode in-cluster` traced with preload: the coordinator
    weft submit started is weft's child too, and the run must not wait for
    it (it would never end)."""
    s = Scratch("in-cluster-preload")
    try:
        try:
            p = run([weft, "submit", "--mode", "in-cluster", "--task", "drv",
                     "--tracer", "preload", "--", "sh", "-c",
                     "echo hi > made.txt"], cwd=s.dir,
                    env=wrap_env({}, s.path("spool")), timeout=120)
        except subprocess.TimeoutExpired:
            raise Fail("in-cluster submit with preload did not return "
                       "within 120 s")
        if p.returncode == 3:
            raise Skip("preload cannot trace here:\n%s" % p.err)
        check(p.returncode == 0, "in-cluster submit exited %d: %s"
              % (p.returncode, p.err))
        jobs = json.loads(run([weft, "job", "list", "--json"], cwd=s.dir,
                              check_rc=0).out)
        names = tasks_by_name(dag(weft, s.dir, jobs[-1]["id"]))
        check("drv" in names, "in-cluster DAG tasks: %s" % sorted(names))
    finally:
        s.close()


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@case
def case_submit_killed(weft):
    s = Scratch("submit-killed")
    procs, cmd = [], None
    try:
        # weft submit killed with SIGKILL: the coordinator it started must
        # not outlive it (it gets SIGTERM, commits and exits).
        sub = subprocess.Popen(
            [weft, "submit", "--", "sh", "-c",
             "echo $$ > cmd.pid; exec sleep 120"], cwd=s.dir,
            env=wrap_env({}, s.path("spool")), stderr=subprocess.PIPE)
        wait_started(sub, s.path("cmd.pid"),
                     "weft submit did not start its command")
        time.sleep(0.1)
        with open(s.path("cmd.pid")) as f:
            cmd = int(f.read())
        procs = [p for p in children(sub.pid) if p != cmd]
        check(len(procs) == 1, "expected one coordinator child of weft "
              "submit besides the command, found %s" % procs)
        coord = procs[0]
        with open("/proc/%d/cmdline" % coord, "rb") as f:
            check(b"coordinator" in f.read(), "child %d is not a "
                  "coordinator" % coord)
        sub.kill()
        sub.wait()
        end = time.monotonic() + 60
        while alive(coord) and time.monotonic() < end:
            time.sleep(0.05)
        check(not alive(coord), "the coordinator (pid %d) outlived the "
              "weft submit that started it" % coord)
        # The job stays recorded, not ended.
        jobs = json.loads(run([weft, "job", "list", "--json"], cwd=s.dir,
                              check_rc=0).out)
        check(len(jobs) == 1 and not jobs[0]["ended"],
              "job list after the kill: %s" % jobs)
    finally:
        for p in procs + ([cmd] if cmd else []):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        s.close()


if __name__ == "__main__":
    sys.exit(main(CASES))
