#!/usr/bin/env python3
"""dist_coordinator.py - end-to-end tests of `weft coordinator`, `weft
status`, `weft verify` and `weft dag --job` with real processes, real
sockets and real SQLite files. Requests come from tests/dist_client (a
small C client of the public wire API): good fragments from two writers on
two "nodes", each kind of bad input, a coordinator killed with SIGKILL in
the middle of ingest and restarted, SIGTERM, TLS.

    dist_coordinator.py --weft PATH --client PATH CASE
    dist_coordinator.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from wraplib import (Fail, Skip, check, free_port,  # noqa: E402
                     make_cert, store_rows)

CASES, case = caselib.registry()
TOKEN = "0123456789abcdef0123456789abcdef"


class Env:
    def __init__(self, weft, client):
        self.weft = os.path.abspath(weft)
        self.client = os.path.abspath(client)
        self.root = tempfile.mkdtemp(prefix="weft-dist-")
        self.db = os.path.join(self.root, "store.db")
        self.env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        self.coord = None
        self.url = None
        self.n = 0

    def cleanup(self):
        if self.coord and self.coord.poll() is None:
            self.coord.kill()
            self.coord.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self, listen="tcp://127.0.0.1:0", extra=()):
        """Start `weft coordinator` and wait until it listens."""
        r, w = os.pipe()
        log = open(os.path.join(self.root, "coord.log"), "ab")
        self.coord = subprocess.Popen(
            [self.weft, "coordinator", "--listen", listen, "--store",
             self.db, "--ready-fd", str(w), *extra],
            pass_fds=(w,), stdout=log, stderr=log, env=self.env)
        os.close(w)
        with os.fdopen(r) as f:
            line = f.readline().strip()
        log.close()
        if not line:
            raise Fail("the coordinator did not start: " + self.log())
        self.url = line
        # dist_client create proves the key the coordinator made.
        self.env["WEFT_SUBMIT_KEY"] = self.submit_key()
        return line

    def submit_key(self):
        return os.path.join(os.path.dirname(self.db), "coordinator.key")

    def log(self):
        with open(os.path.join(self.root, "coord.log"), errors="replace") as f:
            return f.read()

    def weft_run(self, *args, ok=True):
        p = subprocess.run([self.weft, *args], capture_output=True,
                           text=True, env=self.env, timeout=60)
        if ok and p.returncode != 0:
            raise Fail("weft %s: exit %d: %s" % (" ".join(args),
                                                p.returncode, p.stderr))
        return p

    def call(self, *args, url=None):
        p = subprocess.run([self.client, url or self.url, *args],
                           capture_output=True, text=True, env=self.env,
                           timeout=120)
        if p.returncode != 0:
            raise Fail("dist_client %s: exit %d: %s%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr))
        return p.stdout.strip()

    def key(self):
        self.n += 1
        path = os.path.join(self.root, "key%d" % self.n)
        self.call("keygen", path)
        return path

    def new_job(self):
        job = subprocess.run(
            [sys.executable, "-c", "import uuid; print(uuid.uuid4())"],
            capture_output=True, text=True).stdout.strip()
        check(self.call("create", job, TOKEN, "sbatch job.sh") == "stored",
              "job create")
        return job

    def project_job(self):
        """A coordinator over the store of a project directory (where
        `weft show` and `weft job` find it), a job and an enrolled key:
        (project dir, job, key file)."""
        proj = os.path.join(self.root, "proj")
        os.makedirs(os.path.join(proj, ".weft"))
        self.db = os.path.join(proj, ".weft", "weft.db")
        self.start()
        job = self.new_job()
        k = self.key()
        check(self.call("enrol", job, TOKEN, k) == "stored", "enrol")
        return proj, job, k

    def status(self, *extra):
        return json.loads(self.weft_run("status", "--coordinator", self.url,
                                        "--json", *extra).stdout)

    def snapshot(self):
        """What a bad request must not change: every stored row."""
        con = sqlite3.connect(self.db)
        try:
            return store_rows(con)
        finally:
            con.close()

    def query(self, sql):
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


@case
def status_dag_verify(e):
    """Two writers on two nodes: status, the job DAG by hash, verify."""
    e.start()
    job = e.new_job()
    k1, k2 = e.key(), e.key()
    check(e.call("enrol", job, TOKEN, k1) == "stored", "enrol 1")
    check(e.call("enrol", job, TOKEN, k2) == "stored", "enrol 2")
    check(e.call("enrol", job, TOKEN, k1) == "duplicate", "enrol again")
    # Stage one on node1 writes content 0x11; stage two on node2 reads the
    # version on the shared filesystem, and a file whose version is not
    # known (no hash): a weak edge.
    check(e.call("frag", job, k1, "1", "run-a", "stage1", "node1",
                 "w:/shared/a.bin:11", "w:/shared/log.txt:-") == "stored",
          "fragment A")
    check(e.call("frag", job, k2, "1", "run-b", "stage2", "node2",
                 "--parent", "stage1", "r:/shared/a.bin:11",
                 "r:/shared/log.txt:-") == "stored", "fragment B")
    check(e.call("frag", job, k2, "1", "run-b", "stage2", "node2",
                 "--parent", "stage1", "r:/shared/a.bin:11",
                 "r:/shared/log.txt:-") == "duplicate", "fragment B again")
    # Writer 1 skips seq 2: a gap.
    check(e.call("frag", job, k1, "3", "run-c", "stage1b", "node1",
                 "w:/shared/c.bin:33") == "stored", "fragment C")

    st = e.status()
    check(st["source"] == "coordinator" and len(st["jobs"]) == 1, str(st))
    j = st["jobs"][0]
    check(j["id"] == job and j["state"] == "open", str(j))
    check(j["fragments"] == 3 and j["gaps"] == 1, str(j))
    check(len(j["writers"]) == 2, str(j))
    gaps = sorted(w["missing"] for w in j["writers"])
    check(gaps == [0, 1], "gaps per writer: %s" % gaps)
    check(j["command"] == "sbatch job.sh", str(j))
    # The same from the store, while the coordinator runs.
    sst = json.loads(e.weft_run("status", "--store", e.db, "--json").stdout)
    check(sst["jobs"][0]["fragments"] == 3 and
          sst["jobs"][0]["gaps"] == 1 and sst["rejects"] is None, str(sst))

    dag = json.loads(e.weft_run("dag", "--job", job, "--store", e.db,
                                "--format", "json").stdout)
    check(dag["job"] == job and len(dag["tasks"]) == 3, str(dag))
    tasks = {t["name"]: t for t in dag["tasks"]}
    a, b = tasks["stage1"], tasks["stage2"]
    check(a["node"] == "node1" and b["node"] == "node2", str(tasks))
    check(b["parent"] == a["id"] and a["parent"] is None, str(tasks))
    art = [x for x in dag["artifacts"]
           if x["hash"] == "blake2b-256:" + "11" * 32]
    check(len(art) == 1 and art[0]["path"] == "/shared/a.bin", str(art))
    h = art[0]["id"]
    edges = {(x["from"], x["to"], x["kind"], x["weak"])
             for x in dag["edges"]}
    check((a["id"], h, "write", False) in edges, "A writes by hash")
    check((h, b["id"], "read", False) in edges,
          "B reads A's version on another node: %s" % edges)
    weak = [x for x in dag["edges"] if x["weak"]]
    check(any(x["to"] == b["id"] for x in weak) and
          any(x["from"] == a["id"] for x in weak),
          "the hashless log is a weak edge: %s" % weak)
    # A prefix of the id works too; text and dot render.
    e.weft_run("dag", "--job", job[:8], "--store", e.db)
    dot = e.weft_run("dag", "--job", job, "--store", e.db,
                     "--format", "dot").stdout
    check("style=dashed" in dot, "weak edge dashed in dot")

    v = e.weft_run("verify", "--store", e.db, "--job", job, "--json")
    counts = json.loads(v.stdout)
    check(counts["fragments"] == 3 and counts["ok"] == 3 and
          counts["writers"] == 2, str(counts))
    check(e.call("end", job, TOKEN, "0") == "stored", "job end")
    st = e.status("--job", job)
    check(st["jobs"][0]["state"] == "ended" and
          st["jobs"][0]["exit_code"] == 0, str(st))


@case
def incomplete_tasks(e):
    """A task with parts missing (its wrapper died while spooling) is
    named as incomplete, with parts stored / expected, by status (from
    the coordinator and from the store), dag, job show and show, in text
    and JSON (issue 14 item 8)."""
    proj, job, k = e.project_job()
    check(e.call("frag", job, k, "1", "run-w", "whole", "node1",
                 "w:/shared/w.bin:11") == "stored", "whole task")
    for seq, part in (("2", "0/3"), ("3", "1/3")):
        check(e.call("frag", job, k, seq, "run-p", "partial", "node1",
                     "--part", part, "w:/shared/p%s.bin:2%s" % (seq, seq))
              == "stored", "part %s" % part)

    def one_incomplete(j, where):
        check(j["incomplete"] == 1 and len(j["incomplete_tasks"]) == 1,
              "%s: %s" % (where, j))
        t = j["incomplete_tasks"][0]
        check(t["name"] == "partial" and t["node"] == "node1" and
              t["parts_stored"] == 2 and t["parts_expected"] == 3,
              "%s: %s" % (where, t))

    one_incomplete(e.status()["jobs"][0], "status --coordinator")
    sst = json.loads(e.weft_run("status", "--store", e.db, "--json").stdout)
    one_incomplete(sst["jobs"][0], "status --store")
    text = e.weft_run("status", "--coordinator", e.url).stdout
    check("INCOMPLETE" in text and "2 of 3 parts" in text, text)

    dag = json.loads(e.weft_run("dag", "--job", job, "--store", e.db,
                                "--format", "json").stdout)
    tasks = {t["name"]: t for t in dag["tasks"]}
    p, w = tasks["partial"], tasks["whole"]
    check(not p["complete"] and p["parts_stored"] == 2 and
          p["parts_expected"] == 3, str(p))
    check(w["complete"] and w["parts_expected"] == 1, str(w))
    text = e.weft_run("dag", "--job", job, "--store", e.db).stdout
    check("INCOMPLETE: 2 of 3 parts stored" in text, text)

    def in_proj(*args):
        p = subprocess.run([e.weft, *args], capture_output=True, text=True,
                           env=e.env, cwd=proj, timeout=60)
        check(p.returncode == 0, "%s: %s" % (args, p.stderr))
        return p.stdout

    js = json.loads(in_proj("job", "show", job, "--json"))
    check(js["tasks_incomplete"] == 1 and
          js["incomplete_tasks"][0]["parts_stored"] == 2, str(js))
    text = in_proj("job", "show", job)
    check("INCOMPLETE: 2 of 3 parts stored" in text, text)
    js = json.loads(in_proj("show", "run-p", "--json"))
    check(js["parts_stored"] == 2 and js["parts_expected"] == 3 and
          js["complete"] is False, str(js))
    text = in_proj("show", "run-p")
    check("incomplete: 2 of 3 parts" in text, text)


@case
def refused_tasks(e):
    """Every refused task is named, with its reason, by status (of the
    coordinator and of the store), job show and dag, in text and JSON;
    only fragments an enrolled writer signed are kept for it, junk is
    only counted (issue 14 items 4 and 7)."""
    proj, job, k = e.project_job()
    check(e.call("frag", job, k, "1", "run-1", "first", "node1",
                 "w:/shared/a.bin:11") == "stored", "first task")
    out = e.call("frag", job, k, "1", "run-1", "first", "node1",
                 "w:/shared/a.bin:12")
    check(out.startswith("rejected replay"), out)
    out = e.call("frag", job, k, "2", "run-2", "second", "node2",
                 "--seq-in-payload", "9", "w:/shared/b.bin:13")
    check(out.startswith("rejected fragment does not match"), out)
    # Not an enrolled writer's, or not signed: counted, never stored.
    k2 = e.key()
    out = e.call("frag", job, k2, "1", "run-3", "junk", "node3",
                 "w:/shared/c.bin:14")
    check(out.startswith("rejected unenrolled writer"), out)
    out = e.call("frag", job, k, "3", "run-4", "forged", "node3",
                 "--tamper", "w:/shared/d.bin:15")
    check(out.startswith("rejected bad signature"), out)
    check(e.query("SELECT count(*) FROM refusals") == [(2,)],
          str(e.query("SELECT task_id, reason FROM refusals")))

    def named(j, where):
        check(j["refused"] == 2 and len(j["refused_tasks"]) == 2,
              "%s: %s" % (where, j))
        by = {t["id"]: t for t in j["refused_tasks"]}
        check(set(by) == {"first", "second"}, "%s: %s" % (where, by))
        check(by["first"]["reason"] == "replay" and
              by["first"]["seq"] == 1 and by["first"]["node"] == "node1",
              "%s: %s" % (where, by["first"]))
        check(by["second"]["reason"] == "mismatch" and
              by["second"]["node"] == "node2", "%s: %s" % (where, by))

    named(e.status()["jobs"][0], "status --coordinator")
    sst = json.loads(e.weft_run("status", "--store", e.db, "--json").stdout)
    named(sst["jobs"][0], "status --store")
    for text in (e.weft_run("status", "--coordinator", e.url).stdout,
                 e.weft_run("dag", "--job", job, "--store", e.db).stdout):
        check("REFUSED: 2 fragments" in text and
              "refused task first" in text and
              "replay with different content" in text and
              "refused task second" in text, text)
    named(json.loads(e.weft_run("dag", "--job", job, "--store", e.db,
                                "--format", "json").stdout), "dag json")
    p = e.weft_run("dag", "--job", job, "--store", e.db, "--format", "dot")
    check(p.stdout.startswith("digraph") and "refused task first" in
          p.stderr, p.stderr)

    def in_proj(*args):
        p = subprocess.run([e.weft, *args], capture_output=True, text=True,
                           env=e.env, cwd=proj, timeout=60)
        check(p.returncode == 0, "%s: %s" % (args, p.stderr))
        return p.stdout

    named(json.loads(in_proj("job", "show", job, "--json")), "job show")
    text = in_proj("job", "show", job)
    check("REFUSED: 2 fragments" in text and "refused task second" in text,
          text)


@case
def escaping(e):
    """Names a writer sets (node, task name) and a job's user and host
    reach people escaped: no control byte or invalid UTF-8 from them in
    status, dag --job or job show text, nor raw in dag's dot (issue 14
    item 9)."""
    proj, job, k = e.project_job()
    evil = "n\x1b]0;owned\x07\x1b[2J"
    check(e.call("frag", job, k, "1", "run-e", "task\x1b[31m", evil,
                 "--part", "0/2", "w:/shared/e.bin:11") == "stored", "frag")

    def clean(text, where):
        bad = [c for c in text if ord(c) < 0x20 and c not in "\n"]
        check(not bad and "\\x1b" in text,
              "%s: raw control bytes %r in:\n%r" % (where, bad, text))

    def out(*args, cwd=None):
        p = subprocess.run([e.weft, *args], capture_output=True, env=e.env,
                           cwd=cwd, timeout=60)
        check(p.returncode == 0, "%s: %s" % (args, p.stderr))
        return p.stdout.decode("utf-8")

    clean(out("status", "--coordinator", e.url), "status")
    clean(out("status", "--store", e.db), "status --store")
    clean(out("dag", "--job", job, "--store", e.db), "dag --job")
    clean(out("dag", "--job", job, "--store", e.db, "--format", "dot"),
          "dag --format dot")
    clean(out("job", "show", job, cwd=proj), "job show")
    # A path given on the command line is echoed escaped in an error.
    p = subprocess.run([e.weft, "lineage", "--store", e.db,
                        "/nope/\x1b[2J\x1b]0;owned\x07"],
                       capture_output=True, env=e.env, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 1 and "\x1b" not in err and "\\x1b" in err,
          "lineage error: exit %d, %r" % (p.returncode, err))


def sp_connect(url):
    """A raw TCP connection to a tcp:// coordinator that has done the SP
    handshake as a REQ peer (so nng counts it as a connection)."""
    import socket
    host, port = url[len("tcp://"):].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    got = b""
    while len(got) < 8:
        chunk = s.recv(8 - len(got))
        if not chunk:
            break
        got += chunk
    return s, got


def closed_by_peer(s, deadline):
    """Whether the coordinator closes s before the deadline (monotonic)."""
    import socket
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if s.recv(1) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


@case
def connection_limits(e):
    """At most --max-connections at once (more are closed as they come),
    and idle or half-sent connections are closed after --idle-timeout, so
    a flood of them cannot keep `weft status` out (issue 14 item 7)."""
    e.start(extra=("--max-connections", "3", "--idle-timeout", "1"))
    held = [sp_connect(e.url) for _ in range(3)]
    for s, got in held:
        check(len(got) == 8, "handshake within the limit: %r" % got)
    extra, _ = sp_connect(e.url)
    check(closed_by_peer(extra, time.monotonic() + 30),
          "a connection past the limit was kept")
    # A half-sent request: its length says 1 MiB, 10 bytes follow.
    half = held[0][0]
    half.sendall((1 << 20).to_bytes(8, "big") + b"x" * 10)
    deadline = time.monotonic() + 60
    for s, _ in held:
        check(closed_by_peer(s, deadline),
              "an idle or half-sent connection was never closed")
    check(e.status()["requests"] >= 0, "status after the flood")
    check("connection refused" in e.log(), e.log())


@case
def bad_inputs(e):
    """Each bad input, sent for real: refused with its reason, the store
    unchanged, the coordinator still serving."""
    e.start()
    job = e.new_job()
    k1, k2 = e.key(), e.key()
    e.call("enrol", job, TOKEN, k1)
    check(e.call("frag", job, k1, "1", "run-1", "t1", "node1",
                 "w:/out:01") == "stored", "good fragment")
    other = e.new_job()  # a second job, for the unknown-job case below
    garbage = os.path.join(e.root, "garbage")
    with open(garbage, "wb") as f:
        f.write(b"\x93\x01\x02\xc1 not a request")
    unknown = "00000000-0000-4000-8000-000000000000"

    bad = [
        ("malformed", ["raw", garbage]),
        ("oversize", ["oversize", job, k1, "2"]),
        ("unknown job", ["frag", unknown, k1, "2", "run-2", "t", "n",
                         "w:/x:02"]),
        ("unenrolled writer", ["frag", job, k2, "1", "run-3", "t", "n",
                               "w:/x:02"]),
        ("bad token", ["enrol", job, "wrong-token-0123456789", k2]),
        ("bad signature", ["frag", job, k1, "2", "run-4", "t", "n",
                           "--tamper", "w:/x:02"]),
        ("replay with different content",
         ["frag", job, k1, "1", "run-1", "t1", "node1", "w:/out:02"]),
        ("fragment does not match its envelope",
         ["frag", job, k1, "2", "run-5", "t", "n", "--seq-in-payload",
          "9", "w:/x:02"]),
        ("job exists", ["create", other, "another-token-0123456789"]),
    ]
    for reason, args in bad:
        before = e.snapshot()
        out = e.call(*args)
        check(out.startswith("rejected " + reason + ":"),
              "%s: got %r" % (reason, out))
        check(e.snapshot() == before, "%s changed the store" % reason)
        check(e.coord.poll() is None, "coordinator died after " + reason)
        e.status()  # still serving

    # Ended job: nothing from writers never enrolled, and no late
    # enrolment without the token's proof (with it: late_delivery).
    check(e.call("end", job, TOKEN, "1") == "stored", "end")
    before = e.snapshot()
    out = e.call("enrol", job, "wrong-token-0123456789", k2)
    check(out.startswith("rejected bad token:"), out)
    out = e.call("frag", job, k2, "1", "run-6", "t", "n", "w:/x:03")
    check(out.startswith("rejected job ended:"), out)
    check(e.snapshot() == before, "ended job changed the store")

    st = e.status()
    r = st["rejects"]
    for key in ("malformed", "oversize", "unknown_job", "unenrolled_writer",
                "bad_signature", "replay", "mismatch", "job_exists",
                "job_ended"):
        check(r[key] == 1, "reject count %s: %s" % (key, r))
    check(r["bad_token"] == 2, str(r))
    j = [x for x in st["jobs"] if x["id"] == job][0]
    check(j["fragments"] == 1 and j["rejects"] >= 6, str(j))
    log = e.log()
    check("rejected fragment of job %s: bad signature" % job in log, log)
    # And it still takes good work.
    k3 = e.key()
    check(e.call("enrol", other, TOKEN, k3) == "stored", "enrol after")
    check(e.call("frag", other, k3, "1", "run-7", "t", "n",
                 "w:/y:04") == "stored", "fragment after")


@case
def job_create_needs_key(e):
    """Only holders of the coordinator's submit key create jobs (issue 14
    item 7): a creation without its proof, or with another key's, is
    refused as "not allowed" and stores nothing; the key file is made
    0600 beside the store and kept across restarts; weft submit
    --coordinator needs it and says so."""
    e.start()
    key = e.submit_key()
    check(os.stat(key).st_mode & 0o777 == 0o600,
          "key file mode %o" % os.stat(key).st_mode)
    with open(key) as f:
        first = f.read()
    job = "11111111-2222-4333-8444-555555555555"
    env = dict(e.env)
    del env["WEFT_SUBMIT_KEY"]
    before = e.snapshot()
    p = subprocess.run([e.client, e.url, "create", job, TOKEN, "x" * 100000],
                       capture_output=True, text=True, env=env, timeout=60)
    check(p.stdout.startswith("rejected not allowed:"), p.stdout + p.stderr)
    other = os.path.join(e.root, "other.key")
    with open(other, "w") as f:
        f.write("ab" * 32 + "\n")
    os.chmod(other, 0o600)
    env["WEFT_SUBMIT_KEY"] = other
    p = subprocess.run([e.client, e.url, "create", job, TOKEN],
                       capture_output=True, text=True, env=env, timeout=60)
    check(p.stdout.startswith("rejected not allowed:"), p.stdout + p.stderr)
    check(e.snapshot() == before, "a refused job creation changed the store")
    check(e.status()["rejects"]["not_allowed"] == 2, str(e.status()))
    # With the key: stored, and the same request again a duplicate.
    check(e.call("create", job, TOKEN) == "stored", "create with the key")
    check(e.call("create", job, TOKEN) == "duplicate", "create again")

    # weft submit --coordinator: the key from --submit-key or
    # WEFT_SUBMIT_KEY, else a clear error and CMD not run.
    ran = os.path.join(e.root, "ran")
    env = dict(e.env)
    del env["WEFT_SUBMIT_KEY"]
    p = subprocess.run([e.weft, "submit", "--coordinator", e.url, "--",
                        "touch", ran], capture_output=True, text=True,
                       env=env, cwd=e.root, timeout=60)
    check(p.returncode == 125 and "--submit-key" in p.stderr and
          "WEFT_SUBMIT_KEY" in p.stderr and not os.path.exists(ran),
          "submit without a key: %d %s" % (p.returncode, p.stderr))
    p = subprocess.run([e.weft, "submit", "--coordinator", e.url,
                        "--submit-key", other, "--", "touch", ran],
                       capture_output=True, text=True, env=env, cwd=e.root,
                       timeout=60)
    check(p.returncode == 125 and "not allowed" in p.stderr and
          not os.path.exists(ran),
          "submit with another key: %d %s" % (p.returncode, p.stderr))
    p = subprocess.run([e.weft, "submit", "--coordinator", e.url,
                        "--submit-key", key, "--", "touch", ran],
                       capture_output=True, text=True, env=env, cwd=e.root,
                       timeout=60)
    check(p.returncode == 0 and os.path.exists(ran), p.stderr)
    env["WEFT_SUBMIT_KEY"] = key
    p = subprocess.run([e.weft, "submit", "--coordinator", e.url, "--",
                        "true"], capture_output=True, text=True, env=env,
                       cwd=e.root, timeout=60)
    check(p.returncode == 0, p.stderr)
    # A key file others can read is refused, naming it.
    os.chmod(other, 0o644)
    p = subprocess.run([e.weft, "submit", "--coordinator", e.url,
                        "--submit-key", other, "--", "true"],
                       capture_output=True, text=True, env=env, cwd=e.root,
                       timeout=60)
    check(p.returncode == 125 and other in p.stderr and
          "chmod 600" in p.stderr, p.stderr)
    # Restarted, the coordinator keeps its key.
    e.coord.terminate()
    e.coord.wait()
    e.start()
    with open(key) as f:
        check(f.read() == first, "the key changed across a restart")


@case
def submit_key_other_user(e):
    """Another local user cannot read the coordinator's submit key, and
    so cannot create jobs; given a copy of their own (how the key is
    handed out), they can."""
    if os.geteuid() != 0:
        raise Skip("needs root to create a second, unprivileged user")
    user = "weftsk%d" % (os.getpid() % 100000)
    p = subprocess.run(["useradd", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", user], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise Skip("useradd %s failed: %s" % (user, p.stderr.strip()))
    try:
        os.chmod(e.root, 0o755)  # only the key file's own mode protects it
        e.start()
        key = e.submit_key()

        def as_user(*args):
            return subprocess.run(["runuser", "-u", user, "--", *args],
                                  capture_output=True, text=True,
                                  env=e.env, cwd=e.root, timeout=60)
        p = as_user("cat", key)
        check(p.returncode != 0 and not p.stdout,
              "another user read the submit key: %r" % p.stdout)
        p = as_user(e.weft, "submit", "--coordinator", e.url,
                    "--submit-key", key, "--", "true")
        check(p.returncode == 125 and key in p.stderr and
              "ermission denied" in p.stderr, p.stderr)
        env = dict(e.env)
        del env["WEFT_SUBMIT_KEY"]
        p = subprocess.run(["runuser", "-u", user, "--", e.client, e.url,
                            "create", "11111111-2222-4333-8444-555555555556",
                            TOKEN], capture_output=True, text=True, env=env,
                           timeout=60)
        check(p.stdout.startswith("rejected not allowed:"), p.stdout)
        # Handed a copy of their own (0600, theirs): they submit.
        mine = os.path.join(e.root, "user.key")
        subprocess.run(["install", "-m", "600", "-o", user, key, mine],
                       check=True)
        p = as_user(e.weft, "submit", "--coordinator", e.url,
                    "--submit-key", mine, "--", "true")
        check(p.returncode == 0, "submit with a handed-out key: %s"
              % p.stderr)
    finally:
        subprocess.run(["userdel", user], capture_output=True)


@case
def kill9_restart(e):
    """SIGKILL in the middle of ingest, restart, the client resends:
    every fragment stored exactly once."""
    port = free_port()
    listen = "tcp://127.0.0.1:%d" % port
    e.start(listen)
    job = e.new_job()
    k = e.key()
    e.call("enrol", job, TOKEN, k)
    total = 400
    client = subprocess.Popen(
        [e.client, e.url, "many", job, k, "1", str(total), "r"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=e.env)
    deadline = time.time() + 60
    while time.time() < deadline:
        n = e.query("SELECT count(*) FROM envelopes")[0][0]
        if n >= 50:
            break
        time.sleep(0.02)
    check(n < total, "the client finished before the kill (%d)" % n)
    e.coord.send_signal(signal.SIGKILL)
    e.coord.wait()
    killed_at = e.query("SELECT count(*) FROM envelopes")[0][0]
    time.sleep(0.3)
    e.start(listen)
    out, err = client.communicate(timeout=120)
    check(client.returncode == 0, "client: %s %s" % (out, err))
    check("rejected 0" in out, out)
    # A second pass resends everything: all duplicates.
    again = e.call("many", job, k, "1", str(total), "r")
    check(again == "stored 0 duplicate %d rejected 0" % total, again)
    rows = e.query("SELECT count(*), count(DISTINCT seq), min(seq), "
                   "max(seq) FROM envelopes")[0]
    check(rows == (total, total, 1, total), "envelopes %s" % (rows,))
    check(e.query("SELECT count(*) FROM runs")[0][0] == total, "runs")
    check(e.query("SELECT count(*) FROM processes")[0][0] == total,
          "processes")
    st = e.status("--job", job)
    check(st["jobs"][0]["fragments"] == total and
          st["jobs"][0]["gaps"] == 0, str(st["jobs"][0]))
    print("killed with %d stored; %d after restart" % (killed_at, total))
    # SIGTERM: a clean stop, exit 0, and the store verifies.
    e.coord.send_signal(signal.SIGTERM)
    check(e.coord.wait(timeout=30) == 0, "exit after SIGTERM: " + e.log())
    check("stopped" in e.log(), e.log())
    v = json.loads(e.weft_run("verify", "--store", e.db, "--json").stdout)
    check(v["ok"] == total and v["fragments"] == total, str(v))


@case
def concurrent_writers(e):
    """Eight writer processes at once, each resending its whole range a
    second time: every fragment once, no gaps, all verified."""
    e.start()
    job = e.new_job()
    keys = [e.key() for _ in range(8)]
    for k in keys:
        check(e.call("enrol", job, TOKEN, k) == "stored", "enrol")
    n = 60
    for rnd in ("stored %d duplicate 0" % n, "stored 0 duplicate %d" % n):
        procs = [subprocess.Popen(
            [e.client, e.url, "many", job, k, "1", str(n), "w%d" % i],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=e.env) for i, k in enumerate(keys)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            check(p.returncode == 0 and out.strip() == rnd + " rejected 0",
                  "writer: %r %r" % (out, err))
    st = e.status("--job", job)["jobs"][0]
    check(st["fragments"] == 8 * n and st["gaps"] == 0, str(st))
    check(all(w["fragments"] == n and w["max_seq"] == n
              for w in st["writers"]), str(st["writers"]))
    check(e.query("SELECT count(*) FROM runs WHERE job = '%s'" % job)
          == [(8 * n,)], "runs")
    v = json.loads(e.weft_run("verify", "--store", e.db, "--json").stdout)
    check(v["ok"] == 8 * n and v["writers"] == 8, str(v))


@case
def sigterm_in_flight(e):
    """SIGTERM while a client sends: exit 0, and everything acknowledged
    is in the store."""
    e.start()
    job = e.new_job()
    k = e.key()
    e.call("enrol", job, TOKEN, k)
    client = subprocess.Popen(
        [e.client, e.url, "many", job, k, "1", "100000", "s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=e.env)
    deadline = time.time() + 60
    while time.time() < deadline:
        if e.query("SELECT count(*) FROM envelopes")[0][0] >= 30:
            break
        time.sleep(0.02)
    e.coord.send_signal(signal.SIGTERM)
    check(e.coord.wait(timeout=30) == 0, "exit after SIGTERM: " + e.log())
    client.kill()
    client.wait()
    n, distinct, top = e.query(
        "SELECT count(*), count(DISTINCT seq), max(seq) FROM envelopes")[0]
    check(n == distinct == top and n >= 30, "stored %d/%d up to %s" % (
        n, distinct, top))
    v = json.loads(e.weft_run("verify", "--store", e.db, "--json").stdout)
    check(v["ok"] == n, str(v))


@case
def tls(e):
    """tls+tcp:// with --tls-cert/--tls-key; status checks the server's
    certificate against a CA file."""
    cert, key = make_cert(e.root, "server")
    port = free_port()
    e.start("tls+tcp://127.0.0.1:%d" % port,
            ["--tls-cert", cert, "--tls-key", key])
    url = "tls+tcp://localhost:%d" % port
    p = e.weft_run("status", "--coordinator", url, "--tls-ca", cert,
                   "--json")
    check(json.loads(p.stdout)["jobs"] == [], p.stdout)
    job = e.new_job()
    k = e.key()
    check(e.call("enrol", job, TOKEN, k) == "stored", "enrol over TLS")
    check(e.call("frag", job, k, "1", "run-t", "t", "n",
                 "w:/tls:05") == "stored", "fragment over TLS")
    # A client trusting another CA is refused by the handshake.
    other, _ = make_cert(e.root, "other")
    p = e.weft_run("status", "--coordinator", url, "--tls-ca", other,
                   ok=False)
    check(p.returncode == 1 and p.stderr, "wrong CA accepted: " + p.stdout)
    # Plain TCP to the TLS port gets nowhere, and plain options are
    # refused where they make no sense.
    p = e.weft_run("coordinator", "--listen", "tcp://127.0.0.1:0",
                   "--store", e.db, "--tls-cert", cert, "--tls-key", key,
                   ok=False)
    check(p.returncode == 1 and "tls+tcp" in p.stderr, p.stderr)


@case
def usage_errors(e):
    """Bad command lines and unreachable coordinators: clear errors."""
    p = e.weft_run("coordinator", ok=False)
    check(p.returncode == 2 and "--listen" in p.stderr, p.stderr)
    p = e.weft_run("coordinator", "--listen", "nonsense://x", "--store",
                   e.db, ok=False)
    check(p.returncode == 1 and "nonsense://x" in p.stderr, p.stderr)
    p = e.weft_run("coordinator", "--listen", "tcp://127.0.0.1:0",
                   "--store", "/nonexistent/dir/s.db", ok=False)
    check(p.returncode == 1 and "/nonexistent/dir/s.db" in p.stderr,
          p.stderr)
    port = free_port()
    p = e.weft_run("status", "--coordinator",
                   "tcp://127.0.0.1:%d" % port, ok=False)
    check(p.returncode == 1 and "127.0.0.1:%d" % port in p.stderr, p.stderr)
    p = e.weft_run("status", "--coordinator", "tcp://127.0.0.1:1",
                   "--store", e.db, ok=False)
    check(p.returncode == 2, p.stderr)
    p = e.weft_run("dag", "--job", "nope", "--store", e.db, ok=False)
    check(p.returncode == 1 and "nope" in p.stderr, p.stderr)
    p = e.weft_run("verify", "--store", e.db)
    check("0 fragments" in p.stdout, p.stdout)


def print_log(e):
    print("coordinator log:\n" + (e.log() if os.path.exists(
        os.path.join(e.root, "coord.log")) else "(none)"))


def main():
    return caselib.main(CASES, "dist", lambda a: Env(a.weft, a.client),
                        needs=("weft", "client"), on_fail=print_log)


if __name__ == "__main__":
    sys.exit(main())
