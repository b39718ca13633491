#!/usr/bin/env python3
"""lineage_e2e.py - end-to-end tests of `weft lineage`: three real runs under
the ptrace tracer in a temporary project (A writes x, B reads x and writes y,
C reads y and writes z), then the lineage of z up and of x down as JSON and
as text, a path the store never saw refused, and a missing --store
refused without creating it.

    lineage_e2e.py --weft PATH CASE
    lineage_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Standard
library only; skips when ptrace cannot trace here (weft run's preflight
refuses with exit 3).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from wraplib import Fail, Skip, main  # noqa: E402

PREFLIGHT_EXIT = 3


class Project:
    """A temporary project with the three runs recorded."""

    def __init__(self, weft):
        self.weft = weft
        self.dir = tempfile.mkdtemp(prefix="weft-lineage-")
        self.tasks = {}
        try:
            self.record()
        except BaseException:
            self.cleanup()
            raise

    def record(self):
        steps = [("A", "printf 'first\\n' > x"),
                 ("B", "cat x > y; printf 'second\\n' >> y"),
                 ("C", "cat y > z; printf 'third\\n' >> z")]
        for name, script in steps:
            r = self.weft_cmd("run", "--tracer", "ptrace", "--",
                              "sh", "-c", script)
            if r.returncode == PREFLIGHT_EXIT:
                raise Skip("ptrace cannot trace here:\n" + r.stderr)
            if r.returncode != 0:
                raise Fail("weft run for %s exited %d:\n%s"
                           % (name, r.returncode, r.stderr))
            self.tasks[script] = name

    def weft_cmd(self, *args):
        return subprocess.run([self.weft] + list(args), cwd=self.dir,
                              capture_output=True, text=True, timeout=120)

    def lineage(self, *args):
        r = self.weft_cmd("lineage", "--json", *args)
        if r.returncode != 0:
            raise Fail("weft lineage %s exited %d:\n%s"
                       % (" ".join(args), r.returncode, r.stderr))
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise Fail("weft lineage printed bad JSON (%s):\n%s"
                       % (e, r.stdout))

    def task_names(self, doc):
        """The lineage's tasks as A/B/C, in the order given."""
        return [self.tasks.get(t["name"].replace("sh -c ", "", 1), "?")
                for t in doc["tasks"]]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# A case runs on a fresh project with the three runs.
CASES, case = caselib.registry(Project)


def path_of(doc, artifact_id):
    for a in doc["artifacts"]:
        if a["id"] == artifact_id:
            return a["path"]
    raise Fail("edge names an unknown artifact %s" % artifact_id)


def project_edges(p, doc):
    """Edges between the project's files and A/B/C as (from, to, kind)."""
    names = {t["id"]: n for t, n in zip(doc["tasks"], p.task_names(doc))}
    out = set()
    for e in doc["edges"]:
        if e["weak"]:
            continue
        ends = []
        for end in (e["from"], e["to"]):
            if end in names:
                ends.append(names[end])
            else:
                ends.append(os.path.relpath(path_of(doc, end), p.dir))
        if not any(x.startswith("/") or x.startswith("..") for x in ends):
            out.add((ends[0], ends[1], e["kind"]))
    return out


def check_head(p, doc, rel, direction):
    want = {"weft": 1, "path": os.path.join(p.dir, rel),
            "direction": direction}
    for k, v in want.items():
        if doc.get(k) != v:
            raise Fail("%s is %r, expected %r" % (k, doc.get(k), v))
    if doc["root"] != doc["artifacts"][0]["id"] or \
            not (doc["artifacts"][0]["hash"] or "").startswith(
                "blake2b-256:"):
        raise Fail("root %r is not the first, hashed artifact"
                   % doc["root"])


@case
def up(p):
    doc = p.lineage("z")
    check_head(p, doc, "z", "up")
    if p.task_names(doc) != ["C", "B", "A"]:
        raise Fail("tasks up from z: %r, expected C, B, A"
                   % p.task_names(doc))
    want = {("C", "z", "write"), ("y", "C", "read"), ("B", "y", "write"),
            ("x", "B", "read"), ("A", "x", "write")}
    got = project_edges(p, doc)
    if got != want:
        raise Fail("edges up from z: %r, expected %r"
                   % (sorted(got), sorted(want)))
    r = p.weft_cmd("lineage", "z")
    for line in ("written by task", os.path.join(p.dir, "x")):
        if line not in r.stdout:
            raise Fail("text lineage lacks %r:\n%s" % (line, r.stdout))


@case
def down(p):
    doc = p.lineage("--down", os.path.join(p.dir, "x"))
    check_head(p, doc, "x", "down")
    if p.task_names(doc) != ["B", "C"]:
        raise Fail("tasks down from x: %r, expected B, C"
                   % p.task_names(doc))
    want = {("x", "B", "read"), ("B", "y", "write"), ("y", "C", "read"),
            ("C", "z", "write")}
    got = project_edges(p, doc)
    if got != want:
        raise Fail("edges down from x: %r, expected %r"
                   % (sorted(got), sorted(want)))


@case
def unknown_path(p):
    r = p.weft_cmd("lineage", "./sub/../never-seen")
    want = os.path.join(p.dir, "never-seen")
    if r.returncode != 1 or want not in r.stderr:
        raise Fail("unknown path: exit %d, stderr %r (expected 1 naming %s)"
                   % (r.returncode, r.stderr, want))


@case
def missing_store(p):
    """A reading command pointed at a store that does not exist says so
    and leaves no empty store behind."""
    db = os.path.join(p.dir, "no-such.db")
    for argv in (["lineage", "--store", db, "x"], ["dag", "--store", db],
                 ["verify", "--store", db], ["status", "--store", db]):
        r = p.weft_cmd(*argv)
        if r.returncode == 0 or db not in r.stderr:
            raise Fail("weft %s: exit %d, stderr %r (expected an error "
                       "naming %s)" % (argv[0], r.returncode, r.stderr, db))
        if os.path.exists(db):
            raise Fail("weft %s created %s" % (argv[0], db))


if __name__ == "__main__":
    sys.exit(main(CASES))
