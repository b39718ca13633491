#!/usr/bin/env python3
"""pull_e2e.py - `weft pull` end to end: a real job (weft submit, a real
coordinator, real wrappers tracing real commands) stored in store A, then
relayed into store B, where every fragment must verify again and the job's
DAG must be A's.

    pull_e2e.py --weft PATH CASE
    pull_e2e.py --list

Cases:
  store        `weft pull A --store B` from A's store file (while A's
               coordinator still serves it): `weft verify` on B passes
               with A's counts, `weft dag --job` and `weft status --job`
               on B equal A's; a second pull is all duplicates; A's file
               is never written; a tampered envelope in a copy of A is
               refused (bad signature) into a fresh store and into B,
               which stays exactly as it was.
  coordinator  `weft pull tcp://...` from A's running coordinator: an open
               job is not handed out (its key would let anyone enrol);
               after it ended, the same checks as above; an unknown job
               and an unreachable coordinator are named.
  progress     `weft verify` and `weft pull` on a terminal draw a progress
               line on stderr (counts of the whole, bytes, rate) and take
               it away at the end; on a pipe and with --json they print
               exactly what they print without one.
  tls          the same over tls+tcp://, the server's certificate checked
               with --tls-ca; a client trusting another CA gets nothing.

Exit status: 0 pass, 1 fail (with what differed), 77 skip (with why).
Standard library only.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wraplib import (Coordinator, Fail, Job, Scratch, Skip, check,  # noqa
                     dag, free_port, log, main, make_cert, run, run_tty,
                     store_rows, wait_port, wrap_env)
import caselib  # noqa: E402

CASES, case = caselib.registry()


def run_job_tasks(weft, job, shared, spool):
    """Stage one: two tasks write files (one cut into many small parts);
    stage two reads them and writes a result."""
    os.makedirs(shared, exist_ok=True)
    for i in (1, 2):
        extra = {"WEFT_WRAP_PART_BYTES": "1024"} if i == 2 else {}
        script = ("for k in $(seq 1 40); do echo part-%d-$k > "
                  "%s/s%d-$k.txt; done; echo stage-%d > %s/x%d.txt"
                  % (i, shared, i, i, shared, i))
        run([weft, "wrap", "--task", "stage1-%d" % i, "--ship-timeout",
             "60", "--", "sh", "-c", script],
            env=wrap_env(job.contract, spool, **extra), check_rc=0)
    run([weft, "wrap", "--task", "stage2", "--ship-timeout", "60", "--",
         "sh", "-c", "cat %s/x1.txt %s/x2.txt > %s/result.txt"
         % (shared, shared, shared)],
        env=wrap_env(job.contract, spool), check_rc=0)


def pull(weft, source, store, *extra, rc=0):
    p = run([weft, "pull", source, "--store", store, "--json", *extra],
            timeout=180)
    check(p.returncode == rc, "weft pull %s --store %s exited %d, expected "
          "%d\nstdout: %s\nstderr: %s" % (source, store, p.returncode, rc,
                                          p.out, p.err))
    try:
        p.counts = json.loads(p.out)
    except ValueError:
        raise Fail("weft pull --json printed no JSON: %r" % p.out)
    return p


def verify(weft, store, rc=0):
    p = run([weft, "verify", "--store", store, "--json"])
    check(p.returncode == rc, "weft verify --store %s exited %d, expected "
          "%d: %s%s" % (store, p.returncode, rc, p.out, p.err))
    return json.loads(p.out)


def job_status(weft, store, job):
    p = run([weft, "status", "--store", store, "--job", job, "--json"],
            check_rc=0)
    return json.loads(p.out)["jobs"]


def envelopes(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute("SELECT count(*) FROM envelopes").fetchone()[0]
    finally:
        con.close()


def snapshot(db):
    """Every stored row of the fragment store's tables."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return store_rows(con)
    finally:
        con.close()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def project(scratch, name):
    d = scratch.path(name)
    os.makedirs(os.path.join(d, ".weft"), exist_ok=True)
    return d, os.path.join(d, ".weft", "weft.db")


def check_same(weft, a_dir, a_db, b_dir, b_db, job, n):
    """B holds A's job: verify passes with the same counts, same DAG,
    same status."""
    va, vb = verify(weft, a_db), verify(weft, b_db)
    check(vb["fragments"] == n and vb["ok"] == n,
          "weft verify on B: %s, expected %d fragments verified" % (vb, n))
    check(va == vb, "weft verify differs: A %s, B %s" % (va, vb))
    da, db = dag(weft, a_dir, job), dag(weft, b_dir, job)
    check(len(da["tasks"]) == 3, "A's DAG has %d tasks, expected 3"
          % len(da["tasks"]))
    check(da == db, "weft dag --job differs:\nA %s\nB %s"
          % (json.dumps(da)[:2000], json.dumps(db)[:2000]))
    sa, sb = job_status(weft, a_db, job), job_status(weft, b_db, job)
    for j in sa + sb:
        j.pop("rejects", None)
    check(sa == sb, "weft status --job differs:\nA %s\nB %s" % (sa, sb))


class Stores:
    """A scratch directory with project A, its store served by a
    coordinator, and project B, empty; close() ends the job made in A,
    stops the coordinator and removes the directory."""

    def __init__(self, weft, name):
        self.weft = weft
        self.scratch = Scratch(name)
        self.a_dir, self.a_db = project(self.scratch, "a")
        self.b_dir, self.b_db = project(self.scratch, "b")
        self.coord = Coordinator(weft, self.a_dir).start()
        self.job = None

    def make_job(self):
        """A job of three traced tasks in A, still open."""
        self.job = Job(self.weft, self.coord, self.a_dir, status=4)
        run_job_tasks(self.weft, self.job, self.scratch.path("shared"),
                      self.scratch.path("spool"))
        return self.job

    def close(self):
        if self.job:
            self.job.end()
        self.coord.kill()
        self.scratch.close()


@case
def case_store(weft):
    st = Stores(weft, "pull-store")
    s, c = st.scratch, st.coord
    a_dir, a_db, b_dir, b_db = st.a_dir, st.a_db, st.b_dir, st.b_db
    try:
        job = st.make_job()
        rc, err = job.end()
        check(rc == 4, "weft submit exited %s: %s" % (rc, err))
        n = envelopes(a_db)
        check(n >= 5, "only %d fragments stored in A (one wrapper was cut "
              "into parts)" % n)
        log("store A: %d fragments of 3 tasks" % n)

        # From the store file of a coordinator that is still serving.
        p = pull(weft, a_dir, b_db)
        k = p.counts
        check(k["jobs"]["stored"] == 1 and k["writers"]["stored"] == 3 and
              k["fragments"]["stored"] == n and
              k["fragments"]["rejected"] == 0,
              "first pull: %s (A has %d fragments)" % (k, n))
        check_same(weft, a_dir, a_db, b_dir, b_db, job.id, n)

        # Again: nothing new, nothing refused.
        k = pull(weft, a_db, b_db, "--job", job.id[:8]).counts
        check(k["fragments"]["duplicate"] == n and
              k["fragments"]["stored"] == 0 and k["jobs"]["present"] == 1,
              "second pull: %s" % k)

        # The source file is never written.
        c.kill(signal.SIGTERM)
        before = sha256(a_db)
        pull(weft, a_db, b_db)
        check(sha256(a_db) == before, "weft pull wrote to its source")

        # A tampered envelope (one payload byte) in a copy of A.
        t_db = s.path("tampered.db")
        shutil.copy(a_db, t_db)
        con = sqlite3.connect(t_db)
        num, raw = con.execute("SELECT num, raw FROM envelopes ORDER BY num "
                               "DESC LIMIT 1").fetchone()
        raw = bytearray(raw)
        at = raw.find(b"stage")
        check(at > 0, "no task name in the last envelope")
        raw[at] ^= 0x20
        con.execute("UPDATE envelopes SET raw = ? WHERE num = ?",
                    (bytes(raw), num))
        con.commit()
        con.close()
        c_dir, c_db = project(s, "c")
        p = pull(weft, t_db, c_db, rc=1)
        k = p.counts
        check(k["fragments"]["rejected"] == 1 and
              k["rejects"]["bad_signature"] == 1 and
              k["fragments"]["stored"] == n - 1,
              "pull of a tampered store: %s" % k)
        check("bad signature" in p.err, "the refusal is not named: %s"
              % p.err)
        vc = verify(weft, c_db)
        check(vc["ok"] == n - 1, "verify after a refused fragment: %s" % vc)
        b_before = snapshot(b_db)
        k = pull(weft, t_db, b_db, rc=1).counts
        check(k["fragments"]["rejected"] == 1 and
              k["fragments"]["duplicate"] == n - 1,
              "tampered pull into B: %s" % k)
        check(snapshot(b_db) == b_before, "a refused pull changed B")

        # Usage: pulling a store into itself, no such source.
        p = run([weft, "pull", a_db, "--store", a_db])
        check(p.returncode == 1 and "being pulled into" in p.err,
              "pull into itself: exit %d: %s" % (p.returncode, p.err))
        p = run([weft, "pull", s.path("nothing"), "--store", b_db])
        check(p.returncode == 1 and "nothing" in p.err,
              "pull of a missing source: exit %d: %s" % (p.returncode,
                                                          p.err))
        p = run([weft, "pull", s.dir, "--store", b_db])
        check(p.returncode == 1 and "no weft store" in p.err,
              "pull of a directory without a store: exit %d: %s"
              % (p.returncode, p.err))
    finally:
        st.close()


@case
def case_coordinator(weft):
    st = Stores(weft, "pull-coord")
    c = st.coord
    a_dir, a_db, b_dir, b_db = st.a_dir, st.a_db, st.b_dir, st.b_db
    try:
        job = st.make_job()
        n = envelopes(a_db)
        log("store A: %d fragments of 3 tasks" % n)
        # Open: not handed out.
        p = pull(weft, c.url, b_db)
        k = p.counts
        check(k["jobs"]["open"] == 1 and k["jobs"]["pulled"] == 0 and
              k["fragments"]["pulled"] == 0,
              "pull of an open job: %s" % k)
        check("still open" in p.err, "the open job is not named: %s"
              % p.err)
        check(envelopes(b_db) == 0, "an open job's fragments were pulled")

        rc, err = job.end()
        check(rc == 4, "weft submit exited %s: %s" % (rc, err))
        k = pull(weft, c.url, b_db).counts
        check(k["jobs"]["stored"] == 1 and k["writers"]["stored"] == 3 and
              k["fragments"]["stored"] == n and
              k["fragments"]["rejected"] == 0,
              "pull from the coordinator: %s (A has %d)" % (k, n))
        check_same(weft, a_dir, a_db, b_dir, b_db, job.id, n)
        k = pull(weft, c.url, b_db, "--job", job.id).counts
        check(k["fragments"]["duplicate"] == n and
              k["fragments"]["stored"] == 0, "second pull: %s" % k)

        # An unknown job is named, a job prefix is refused, and the
        # coordinator goes on serving.
        p = run([weft, "pull", c.url, "--store", b_db, "--job",
                 "00000000-0000-4000-8000-000000000000"])
        check(p.returncode == 1 and "unknown job" in p.err,
              "unknown job: exit %d: %s" % (p.returncode, p.err))
        p = run([weft, "pull", c.url, "--store", b_db, "--job",
                 job.id[:8]])
        check(p.returncode == 1 and "full job id" in p.err,
              "job prefix at a coordinator: exit %d: %s" % (p.returncode,
                                                           p.err))
        run([weft, "status", "--coordinator", c.url, "--json"], check_rc=0)

        # Nobody listening: named, not hung.
        url = "tcp://127.0.0.1:%d" % free_port()
        p = run([weft, "pull", url, "--store", b_db], timeout=120)
        check(p.returncode == 1 and url in p.err,
              "unreachable coordinator: exit %d: %s" % (p.returncode, p.err))
    finally:
        st.close()


@case
def case_tls(weft):
    if not shutil.which("openssl"):
        raise Skip("openssl not installed: cannot make a test certificate")
    st = Stores(weft, "pull-tls")
    s, c = st.scratch, st.coord
    a_dir, a_db, b_dir, b_db = st.a_dir, st.a_db, st.b_dir, st.b_db
    tls = None
    try:
        cert, key = make_cert(s.dir, "server")
        other, _ = make_cert(s.dir, "other")
        job = st.make_job()
        rc, err = job.end()
        check(rc == 4, "weft submit exited %s: %s" % (rc, err))
        job_id = job.id
        c.kill(signal.SIGTERM)
        n = envelopes(a_db)
        # The same store, served over TLS.
        port = free_port()
        log_f = open(s.path("tls.log"), "ab")
        tls = subprocess.Popen(
            [weft, "coordinator", "--listen", "tls+tcp://127.0.0.1:%d" % port,
             "--store", a_db, "--tls-cert", cert, "--tls-key", key],
            stdout=log_f, stderr=log_f)
        log_f.close()
        wait_port("127.0.0.1", port, proc=tls)
        url = "tls+tcp://localhost:%d" % port
        p = run([weft, "pull", url, "--tls-ca", other, "--store", b_db])
        check(p.returncode == 1 and envelopes(b_db) == 0,
              "a coordinator whose certificate the CA did not sign: exit "
              "%d, %d fragments: %s" % (p.returncode, envelopes(b_db), p.err))
        k = pull(weft, url, b_db, "--tls-ca", cert).counts
        check(k["fragments"]["stored"] == n and k["jobs"]["stored"] == 1,
              "pull over TLS: %s (A has %d)" % (k, n))
        check_same(weft, a_dir, a_db, b_dir, b_db, job_id, n)
        p = run([weft, "pull", a_db, "--tls-ca", cert, "--store", b_db])
        check(p.returncode == 2, "--tls-ca with a store file: exit %d"
              % p.returncode)
    finally:
        if tls and tls.poll() is None:
            tls.kill()
            tls.wait()
        st.close()


@case
def case_progress(weft):
    st = Stores(weft, "pull-progress")
    try:
        job = st.make_job()
        rc, err = job.end()
        check(rc == 4, "weft submit exited %s: %s" % (rc, err))
        n = envelopes(st.a_db)
        # At once instead of after a second: these runs are short.
        env = dict(os.environ, WEFT_PROGRESS_DELAY_MS="0")
        line = re.compile(r"\rweft: verifying: [0-9,]+ of %d fragments, "
                          r"[0-9.]+ (B|KiB|MiB)" % n)
        cmd = [weft, "verify", "--store", st.a_db]
        quiet = run(cmd, env=env, check_rc=0)
        tty = run_tty(cmd, env=env)
        check(tty.returncode == 0 and line.search(tty.err),
              "weft verify on a terminal drew no progress line for %d "
              "fragments: exit %d, %r" % (n, tty.returncode, tty.err))
        check(tty.err.endswith("\r\x1b[K"),
              "the progress line stays on the terminal: %r" % tty.err)
        check(tty.out == quiet.out and quiet.err == "",
              "progress changed what verify prints: %r / %r, on a pipe "
              "stderr %r" % (tty.out, quiet.out, quiet.err))
        js = run_tty(cmd + ["--json"], env=env)
        check(js.returncode == 0 and js.err == "",
              "weft verify --json on a terminal wrote %r" % js.err)
        check(json.loads(js.out)["fragments"] == n, js.out)

        pull_cmd = [weft, "pull", st.a_dir, "--store", st.b_db]
        tty = run_tty(pull_cmd, env=env)
        check(tty.returncode == 0 and re.search(
            r"\rweft: pulling: [0-9,]+ of %d fragments" % n, tty.err),
            "weft pull on a terminal drew no progress line: exit %d, %r"
            % (tty.returncode, tty.err))
        want = "  fragments: %d (%d stored, 0 already here, 0 refused)" % (
            n, n)
        check(want in tty.out.splitlines(), "weft pull printed %r, "
              "expected the line %r" % (tty.out, want))
        check(envelopes(st.b_db) == n, "B holds %d of %d fragments"
              % (envelopes(st.b_db), n))
        again = run_tty(pull_cmd + ["--json"], env=env)
        check(again.err == "" and
              json.loads(again.out)["fragments"]["duplicate"] == n,
              "weft pull --json on a terminal: %r / %r"
              % (again.err, again.out))
    finally:
        st.close()


if __name__ == "__main__":
    sys.exit(main(CASES))
