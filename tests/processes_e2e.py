#!/usr/bin/env python3
"""processes_e2e.py - lineage down to the process: real workloads traced by
`weft run --tracer T` in a temporary project, then `weft lineage
--processes --json` and `weft dag --processes --json` compared with what is
true of them, written down first:

- make: `make -j2` of a small C project (three .c files, a static library
  of two of them, a link). The link step wrote app and read main.o and the
  library; the archiver wrote the library and read exactly a.o and b.o;
  each object file was written by a process whose input chain reaches its
  own .c file and no other.
- tar: `tar cf a.tar d && tar xf a.tar -C out` in one run: the extracting
  tar read the archive the creating tar wrote (an edge between two
  processes of one run), which read d's files.
- pipeline: `cat in | tr a-z A-Z > out`: tr wrote out; cat read in. Data
  through the pipe is not seen at process level, so out's process lineage
  must not claim cat or in (no false edge), while the run-level lineage
  has in.

    processes_e2e.py --weft PATH CASE      (CASE: BACKEND.WORKLOAD)
    processes_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Standard
library only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wraplib import Fail, Skip, main  # noqa: E402

PREFLIGHT_EXIT = 3
BACKENDS = ("ptrace", "preload", "ebpf")
WORKLOADS = {}


def workload(fn):
    WORKLOADS[fn.__name__] = fn
    return fn


class Project:
    def __init__(self, weft, backend):
        self.weft, self.backend = weft, backend
        self.dir = tempfile.mkdtemp(prefix="weft-proc-")

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
        with open(self.path(name), "w") as f:
            f.write(text)

    def cmd(self, *args, check=True):
        r = subprocess.run([self.weft] + list(args), cwd=self.dir,
                           capture_output=True, text=True, timeout=300)
        if check and r.returncode != 0:
            raise Fail("weft %s exited %d:\n%s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def run(self, *argv):
        r = self.cmd("run", "--tracer", self.backend, "--", *argv,
                     check=False)
        if r.returncode == PREFLIGHT_EXIT:
            raise Skip("%s cannot trace here:\n%s" % (self.backend,
                                                      r.stderr))
        if r.returncode != 0:
            raise Fail("weft run %s exited %d:\n%s" % (
                " ".join(argv), r.returncode, r.stderr))

    def json(self, *args):
        r = self.cmd(*args)
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise Fail("weft %s printed bad JSON (%s):\n%s"
                       % (" ".join(args), e, r.stdout))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Graph:
    """A DAG document, indexed: who wrote each artifact, what each task
    read."""

    def __init__(self, doc):
        self.doc = doc
        self.tasks = {t["id"]: t for t in doc["tasks"]}
        self.arts = {a["id"]: a for a in doc["artifacts"]}
        self.writers, self.reads = {}, {}
        for e in doc["edges"]:
            if e["kind"] == "write":
                self.writers.setdefault(e["to"], []).append(e["from"])
            else:
                self.reads.setdefault(e["to"], []).append(e["from"])

    def versions(self, path):
        return [a for a in self.doc["artifacts"] if a["path"] == path]

    def writer_of(self, path):
        """The one process that wrote path's final version."""
        ws = {w for a in self.versions(path) if a["version"] == "written"
              for w in self.writers.get(a["id"], [])}
        if len(ws) != 1:
            raise Fail("expected one writer of %s, found %s" % (
                path, [self.tasks[w]["argv"] for w in ws]))
        w = self.tasks[ws.pop()]
        check_process(w)
        return w

    def inputs(self, task_id, under):
        """Paths task read, below directory under."""
        return {self.arts[a]["path"] for a in self.reads.get(task_id, [])
                if self.arts[a]["path"].startswith(under + "/")}

    def upstream_sources(self, path, under):
        """Every path below under that the chain of processes ending in
        path's writers read, walking writer -> inputs -> their writers."""
        seen, out, pending = set(), set(), [path]
        while pending:
            p = pending.pop()
            for a in self.versions(p):
                for w in self.writers.get(a["id"], []):
                    if w in seen:
                        continue
                    seen.add(w)
                    for src in self.reads.get(w, []):
                        sp = self.arts[src]["path"]
                        if sp.startswith(under + "/"):
                            out.add(sp)
                        pending.append(sp)
        return out


def check_process(t):
    want = {"kind": "process"}
    if t.get("kind") != "process" or not isinstance(t.get("pid"), int) or \
            not isinstance(t.get("argv"), list) or "parent" not in t or \
            "exe" not in t or "exit_code" not in t:
        raise Fail("not a process task with kind, pid, argv, exe, "
                   "exit_code, parent (%s): %s" % (want, json.dumps(t)))


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


@workload
def make(p):
    p.write("a.c", "int a(void) { return 1; }\n")
    p.write("b.c", "int b(void) { return 2; }\n")
    p.write("main.c", "int a(void); int b(void);\n"
            "int main(void) { return a() + b() - 3; }\n")
    p.write("Makefile", "app: main.o libab.a\n\tcc -o app main.o libab.a\n"
            "libab.a: a.o b.o\n\tar rcs libab.a a.o b.o\n"
            "%.o: %.c\n\tcc -c $< -o $@\n")
    if not shutil.which("make") or not shutil.which("cc"):
        raise Skip("make or cc is not installed")
    p.run("make", "-j2")
    d = p.dir
    g = Graph(p.json("lineage", "--processes", "--json", "app"))
    link = g.writer_of(p.path("app"))
    expect("app" in link["argv"] and "-o" in link["argv"],
           "app's writer is not the link step: %s" % link["argv"])
    expect(g.inputs(link["id"], d) == {p.path("main.o"), p.path("libab.a")},
           "the link step read %s, expected main.o and libab.a"
           % sorted(g.inputs(link["id"], d)))
    ar = g.writer_of(p.path("libab.a"))
    expect(os.path.basename(ar["argv"][0]) == "ar",
           "libab.a's writer is not ar: %s" % ar["argv"])
    expect(g.inputs(ar["id"], d) == {p.path("a.o"), p.path("b.o")},
           "ar read %s, expected exactly a.o and b.o"
           % sorted(g.inputs(ar["id"], d)))
    for stem in ("a", "b", "main"):
        obj = p.path(stem + ".o")
        w = g.writer_of(obj)
        expect(stem + ".o" in " ".join(w["argv"]),
               "%s.o was written by %s" % (stem, w["argv"]))
        srcs = {s for s in g.upstream_sources(obj, d) if s.endswith(".c")}
        expect(srcs == {p.path(stem + ".c")},
               "%s.o comes from %s, expected exactly %s.c"
               % (stem, sorted(srcs), stem))
    run_ids = {t["id"] for t in g.doc["tasks"] if t["kind"] == "run"}
    for t in g.doc["tasks"]:
        if t["kind"] == "process":
            expect(t["parent"] in run_ids or not run_ids,
                   "process %s has parent %s, not its run" % (t["id"],
                                                              t["parent"]))
    # Run level stays as it was: one task, the object files internal.
    whole = Graph(p.json("dag", "--format", "json"))
    expect([t["kind"] for t in whole.doc["tasks"]] == ["run"],
           "without --processes the DAG has %s" % whole.doc["tasks"])
    expect(not whole.inputs(whole.doc["tasks"][0]["id"], d)
           & {p.path("a.o"), p.path("libab.a")},
           "at run level the run's own object files became inputs")
    text = p.cmd("lineage", "--processes", "app").stdout
    expect("ar rcs libab.a a.o b.o" in text and "-o app" in text,
           "the text lineage does not name the link and ar steps:\n" + text)


@workload
def tar(p):
    p.write("d/f1", "one\n")
    p.write("d/f2", "two\n")
    os.makedirs(p.path("out"))
    p.run("sh", "-c", "tar cf a.tar d && tar xf a.tar -C out")
    g = Graph(p.json("lineage", "--processes", "--json", "out/d/f1"))
    x = g.writer_of(p.path("out/d/f1"))
    expect(x["argv"][:2] == ["tar", "xf"],
           "out/d/f1's writer is %s, not tar xf" % x["argv"])
    expect(g.inputs(x["id"], p.dir) == {p.path("a.tar")},
           "tar xf read %s" % sorted(g.inputs(x["id"], p.dir)))
    c = g.writer_of(p.path("a.tar"))
    expect(c["argv"][:2] == ["tar", "cf"],
           "a.tar's writer is %s, not tar cf" % c["argv"])
    expect(g.inputs(c["id"], p.dir) == {p.path("d/f1"), p.path("d/f2")},
           "tar cf read %s" % sorted(g.inputs(c["id"], p.dir)))
    expect(x["parent"] == c["parent"],
           "the two tars are not processes of one run")


@workload
def pipeline(p):
    p.write("in", "hello\n")
    p.run("sh", "-c", "cat in | tr a-z A-Z > out")
    with open(p.path("out")) as f:
        expect(f.read() == "HELLO\n", "the pipeline did not run")
    g = Graph(p.json("lineage", "--processes", "--json", "out"))
    t = g.writer_of(p.path("out"))
    expect(t["argv"][:1] == ["tr"], "out's writer is %s, not tr"
           % t["argv"])
    expect(p.path("in") not in {a["path"] for a in g.doc["artifacts"]},
           "the process lineage of out claims in, which reached tr "
           "through a pipe weft does not see")
    cat = [x for x in Graph(p.json("dag", "--processes", "--format", "json"))
           .doc["tasks"] if x.get("argv") == ["cat", "in"]]
    expect(len(cat) == 1, "no process task for cat in")
    run = Graph(p.json("lineage", "--json", "out"))
    expect(p.path("in") in {a["path"] for a in run.doc["artifacts"]},
           "the run-level lineage of out lacks in")


def make_case(backend, name):
    def case(weft):
        if os.geteuid() != 0 and backend == "ebpf":
            raise Skip("ebpf needs root")
        p = Project(weft, backend)
        try:
            WORKLOADS[name](p)
        finally:
            p.cleanup()
    return case


CASES = {"%s.%s" % (b, w): make_case(b, w) for b in BACKENDS
         for w in WORKLOADS}

if __name__ == "__main__":
    sys.exit(main(CASES))
