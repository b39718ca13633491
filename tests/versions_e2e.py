#!/usr/bin/env python3
"""versions_e2e.py - the lineage suite: small pipelines whose true
task-to-task dependencies are written down first, traced for real, and
compared with what `weft dag` says (DESIGN.md "Store and DAG: lineage by
file version").

Every scenario runs in every mode: locally (`weft run --tracer T`, one
store) and distributed (`weft wrap` in a job of a real coordinator over
TCP), each on ptrace, preload and ebpf. Steps run on one of two nodes:
UTS namespaces with their own host names (nsenter into a holder process),
each with a private tmpfs at the same path, so that "the same path on two
machines' local disks" is real. A dependency is (reader, writer) by step
label; strong and weak ones are checked apart, and so are the weak
"same content" links, which are never dependencies.

    versions_e2e.py --weft PATH MODE.SCENARIO
    versions_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Standard
library only.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wraplib import (Coordinator, Fail, Job, Scratch, Skip, main,  # noqa
                     run, wrap_env)

PREFLIGHT_EXIT = 3
SCENARIOS = {}


def scenario(strong=(), weak=(), same=(), setup="", extra=None):
    """steps(ctx) -> list of Step; the truth is given here, up front.
    extra(dag, labels): a further check of the DAG."""
    def deco(fn):
        SCENARIOS[fn.__name__] = dict(steps=fn, strong=set(strong),
                                      weak=set(weak), same=set(same),
                                      setup=setup, extra=extra)
        return fn
    return deco


class Step:
    """One traced task: `: LABEL; SCRIPT` run on node `node`; bg: started
    and left running; a step that is not bg first waits for the bg steps
    before it, unless concurrent."""

    def __init__(self, label, script, node=0, bg=False, pre=None,
                 concurrent=False):
        self.label, self.script, self.node, self.bg = (label, script, node,
                                                       bg)
        self.concurrent = concurrent
        self.pre = pre  # run untraced on the node just before the step


# ---- The scenarios: each with its true dependencies ----

@scenario(setup="printf '1\\n' > y")
def identical_unrelated(c):
    # A writes 1\n to x; B reads an unrelated y holding the same bytes.
    return [Step("A", "printf '1\\n' > x"), Step("B", "cat y")]


@scenario(strong={("F", "P%d" % i) for i in range(1, 6)},
          setup="printf 'same bytes in every file\\n' > in")
def parallel_identical(c):
    # Five writers of identical content at once, then one reader of all.
    steps = [Step("P%d" % i, "cat in > out%d" % i, bg=True)
             for i in range(1, 6)]
    return steps + [Step("F", "cat out1 out2 out3 out4 out5 > final")]


@scenario(strong={("B", "A"), ("D", "C")})
def versions(c):
    return [Step("A", "printf 'one\\n' > x"), Step("B", "cat x > b"),
            Step("C", "printf 'two\\n' > x"), Step("D", "cat x > d")]


@scenario(setup="printf '1\\n' > x")
def reader_before_writer(c):
    # B reads x; later A rewrites x with the very same bytes.
    return [Step("B", "cat x"), Step("A", "printf '1\\n' > x")]


@scenario(strong={("B", "A")})
def atomic_rename(c):
    return [Step("A", "printf 'saved\\n' > x.tmp && mv x.tmp x"),
            Step("B", "cat x")]


@scenario(strong={("B", "A"), ("C", "B")})
def append(c):
    # B appends: the version it updated (A's) is an input of B.
    return [Step("A", "printf 'first\\n' > log"),
            Step("B", "printf 'second\\n' >> log"), Step("C", "cat log")]


@scenario(strong={("B", "A")})
def mmap_read(c):
    return [Step("A", "printf 'mapped content\\n' > x"),
            Step("B", "python3 -c \"import mmap; f = open('x', 'rb'); "
                 "m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); "
                 "m[:4]\"")]


@scenario(strong={("B", "A"), ("C", "B")})
def copy(c):
    # dst holds src's bytes: C read B's copy, not A's original.
    return [Step("A", "printf 'copied bytes\\n' > src"),
            Step("B", "cp src dst"), Step("C", "cat dst")]


@scenario(strong={("C", "A")}, setup=": > e2; printf 1 > o2")
def empty_and_one_byte(c):
    return [Step("A", ": > e; printf 1 > o"), Step("B", "cat e2 o2"),
            Step("C", "cat e o")]


@scenario(strong={("C", "A"), ("D", "B")})
def one_content_many_files(c):
    body = "printf 'one content, many files\\n'"
    return [Step("A", "%s > f1; %s > f2" % (body, body)),
            Step("B", "%s > f3; %s > f4" % (body, body)),
            Step("C", "cat f1"), Step("D", "cat f4")]


@scenario(strong={("RA", "WA"), ("RB", "WB")})
def same_path_two_nodes(c):
    # The same path on both nodes' private tmpfs, the same bytes.
    p = os.path.join(c.local, "x")
    return [Step("WA", "printf 'node bytes\\n' > %s" % p, node=0),
            Step("WB", "printf 'node bytes\\n' > %s" % p, node=1),
            Step("RA", "cat %s" % p, node=0),
            Step("RB", "cat %s" % p, node=1)]


@scenario(strong={("B", "A")},
          same={("local", "local"), ("local", "shared")})
def shared_copy_other_node(c):
    # A writes on node 0's private disk and copies to the shared disk;
    # B on node 1 reads the shared copy: a dependency on A through the
    # shared location. C on node 1 gets the same bytes into its own
    # private disk by a channel weft did not see (the setup): same
    # content as A's file, never a dependency.
    lp = os.path.join(c.local, "model")
    content = "x" * 100
    return [Step("A", "printf '%s' > %s; cp %s shared" % (content, lp, lp),
                 node=0),
            Step("B", "cat shared", node=1),
            Step("C", "cat %s" % os.path.join(c.local, "untraced"), node=1,
                 pre="printf '%s' > %s" % (content,
                                            os.path.join(c.local,
                                                         "untraced")))]


@scenario(strong={("B", "A"), ("C", "B")})
def read_then_delete(c):
    return [Step("A", "printf 'temporary\\n' > x"),
            Step("B", "cat x > y; rm x"), Step("C", "cat y")]


@scenario(strong={("R1", "A1"), ("R2", "A2")})
def rerun_identical(c):
    return [Step("A1", "printf 'same output\\n' > out"),
            Step("R1", "cat out"),
            Step("A2", "printf 'same output\\n' > out"),
            Step("R2", "cat out")]


@scenario(strong={("B", "A"), ("C", "B")})
def sed_in_place(c):
    return [Step("A", "printf 'hello\\n' > x"),
            Step("B", "sed -i s/hello/bye/ x"), Step("C", "cat x")]


@scenario(strong={("B", "A"), ("C", "B")})
def rewrite_in_place(c):
    return [Step("A", "printf 'lower case\\n' > x"),
            Step("B", "python3 -c \"f = open('x', 'r+'); d = f.read(); "
                 "f.seek(0); f.write(d.upper())\""),
            Step("C", "cat x")]


@scenario(strong={("B", "A")})
def partial_read(c):
    return [Step("A", "head -c 200000 /dev/zero | tr '\\0' a > x"),
            Step("B", "head -c 10 x > y")]


@scenario(strong={("B", "A")})
def overwritten_while_read(c):
    # B reads x and runs on; C overwrites x meanwhile. B read A's version.
    return [Step("A", "printf 'old\\n' > x"),
            Step("B", "cat x > bout; touch opened; "
                 "while [ ! -e over ]; do sleep 0.01; done", bg=True),
            Step("C", "while [ ! -e opened ]; do sleep 0.01; done; "
                 "printf 'new\\n' > x; touch over", concurrent=True)]


def read_as_link(dag, lab):
    """B's read of the file shows the name B used, the link."""
    arts = {a["id"]: a for a in dag["artifacts"]}
    for e in dag["edges"]:
        if e["kind"] == "read" and lab.get(e["to"]) == "B" and \
                arts[e["from"]]["path"].endswith("/real"):
            if not (e.get("path") or "").endswith("/link"):
                raise Fail("B's read of real does not show the name B "
                           "used: %r" % e)
            return
    raise Fail("no read of real by B")


@scenario(strong={("B", "A")}, setup="ln -s real link", extra=read_as_link)
def symlink(c):
    # B reads through a symlink: the version is the target's, the name
    # B used is kept beside it.
    return [Step("A", "printf 'target\\n' > real"), Step("B", "cat link")]


# ---- Nodes: UTS + mount namespaces held open by a sleeping process ----

class Nodes:
    def __init__(self, scratch, n=2):
        self.holders = []
        if os.geteuid() != 0:
            raise Skip("not root: two node namespaces need unshare")
        for tool in ("unshare", "nsenter"):
            if not shutil.which(tool):
                raise Skip("%s not installed (util-linux)" % tool)
        self.local = scratch.path("local")
        os.makedirs(self.local, exist_ok=True)
        for i in range(n):
            ready = scratch.path("node%d.ready" % i)
            script = ("hostname vnode%d && mount -t tmpfs weft-node%d %s "
                      "&& touch %s && exec sleep 3600"
                      % (i, i, self.local, ready))
            p = subprocess.Popen(["unshare", "-m", "-u",
                                  "--propagation", "private", "sh", "-c",
                                  script])
            self.holders.append(p)
            end = time.monotonic() + 20
            while not os.path.exists(ready):
                if p.poll() is not None or time.monotonic() > end:
                    self.close()
                    raise Skip("could not make node namespace %d (exit "
                               "%s)" % (i, p.poll()))
                time.sleep(0.02)

    def prefix(self, i, cwd):
        # Entering a mount namespace moves to its root: --wd brings the
        # step back to its directory.
        return ["nsenter", "-t", str(self.holders[i].pid), "-m", "-u",
                "--wd=" + cwd, "--"]

    def close(self):
        for p in self.holders:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        self.holders = []


# ---- Modes: where a step runs ----

class Local:
    """`weft run --tracer T` in the project, on a node."""

    def __init__(self, weft, tracer, scratch, nodes):
        self.weft, self.tracer, self.dir, self.nodes = (weft, tracer,
                                                        scratch.dir, nodes)
        os.makedirs(scratch.path(".weft"))  # the project's own store

    def start(self, step):
        argv = self.nodes.prefix(step.node, self.dir) + [
            self.weft, "run", "--tracer", self.tracer, "--no-tracer-fallback",
            "--", "sh", "-c", ": %s; %s" % (step.label, step.script)]
        return subprocess.Popen(argv, cwd=self.dir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def dag(self):
        return json.loads(run([self.weft, "dag", "--format", "json",
                               "--all"], cwd=self.dir, check_rc=0).out)

    def close(self):
        pass


class Distributed:
    """`weft wrap` in a job of a coordinator over TCP, on a node."""

    def __init__(self, weft, tracer, scratch, nodes):
        self.weft, self.tracer, self.dir, self.nodes = (weft, tracer,
                                                        scratch.dir, nodes)
        self.project = scratch.path("project")
        os.makedirs(self.project)
        self.coord = Coordinator(weft, self.project).start()
        self.job = Job(weft, self.coord, self.project)
        self.spool = scratch.path("spool")

    def start(self, step):
        env = wrap_env(self.job.contract, self.spool,
                       WEFT_TRACER=self.tracer)
        if "WEFT_AGENT_SOCKET" in os.environ:  # kept: which node agent
            env["WEFT_AGENT_SOCKET"] = os.environ["WEFT_AGENT_SOCKET"]
        argv = self.nodes.prefix(step.node, self.dir) + [
            self.weft, "wrap", "--ship-timeout", "60", "--", "sh", "-c",
            ": %s; %s" % (step.label, step.script)]
        return subprocess.Popen(argv, cwd=self.dir, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def dag(self):
        rc, err = self.job.end()
        if rc != 0:
            raise Fail("weft submit exited %s: %s" % (rc, err))
        return json.loads(run([self.weft, "dag", "--job", self.job.id,
                               "--format", "json", "--all"],
                              cwd=self.project, check_rc=0).out)

    def close(self):
        self.job.end()
        self.coord.kill()


MODES = {"local": Local, "dist": Distributed}
TRACERS = ("ptrace", "preload", "ebpf")


def finish(p, step):
    out, err = p.communicate(timeout=120)
    err = err.decode(errors="replace")
    if p.returncode == PREFLIGHT_EXIT and "preflight" in err:
        raise Skip("tracer not usable here: %s" % err.strip()[-300:])
    if p.returncode != 0:
        raise Fail("step %s exited %d:\n%s" % (step.label, p.returncode,
                                                err))


def labels(dag):
    """Task id -> step label (from the `: LABEL;` every command starts
    with)."""
    out = {}
    for t in dag["tasks"]:
        m = re.search(r": (\w+); ", t.get("name") or "")
        if m:
            out[t["id"]] = m.group(1)
    return out


def dependencies(dag, names=None):
    """(strong, weak): sets of (reader, writer) task names: by step label,
    or by names (task id -> name) when given."""
    lab = names if names is not None else labels(dag)
    writer = {e["to"]: e["from"] for e in dag["edges"]
              if e["kind"] == "write"}
    strong, weak = set(), set()
    for e in dag["edges"]:
        if e["kind"] != "read" or e["from"] not in writer:
            continue
        r, w = lab.get(e["to"]), lab.get(writer[e["from"]])
        if r is None or w is None or r == w:
            continue
        (weak if e["weak"] else strong).add((r, w))
    return strong, weak - strong


def same_links(dag, scratch_dir):
    """Same-content links as (kind of the read copy's place, kind of the
    written one's): 'local' for the node-private disk, 'shared' else."""
    arts = {a["id"]: a for a in dag["artifacts"]}

    def where(a):
        return "local" if "/local/" in a["path"] else "shared"
    return {(where(arts[s["artifact"]]), where(arts[s["same_as"]]))
            for s in dag.get("same_content", [])}


def check_paths(dag, steps_by_label, top):
    """No task is shown reading or writing a path below the scenario's
    directory that its command does not name (every file a step touches
    there appears in its script, or is a temporary of sed)."""
    lab = labels(dag)
    arts = {a["id"]: a for a in dag["artifacts"]}
    for e in dag["edges"]:
        task = e["from"] if e["kind"] == "write" else e["to"]
        art = arts[e["to"] if e["kind"] == "write" else e["from"]]
        path = e.get("path") or art["path"]
        step = steps_by_label.get(lab.get(task))
        if not step or not path.startswith(top + "/"):
            continue
        name = os.path.basename(path)
        if name not in step.script + (step.pre or "") \
                and not name.startswith("sed"):
            raise Fail("task %s is shown at %s, which its command does not "
                       "name: %r" % (step.label, path, step.script))


def run_case(weft, mode, tracer, name):
    sc = SCENARIOS[name]
    scratch = Scratch("versions")
    nodes = mode_obj = None
    try:
        nodes = Nodes(scratch)
        mode_obj = MODES[mode](weft, tracer, scratch, nodes)

        class Ctx:
            local = nodes.local
        steps = sc["steps"](Ctx)
        if sc["setup"]:
            subprocess.run(["sh", "-c", sc["setup"]], cwd=scratch.dir,
                           check=True)
        bg = []
        for st in steps:
            if getattr(st, "pre", None):
                subprocess.run(nodes.prefix(st.node, scratch.dir) +
                               ["sh", "-c", st.pre],
                               cwd=scratch.dir, check=True)
            if not st.bg and not st.concurrent:
                for q, bst in bg:
                    finish(q, bst)
                bg = []
            p = mode_obj.start(st)
            if st.bg:
                bg.append((p, st))
            else:
                finish(p, st)
        for p, st in bg:
            finish(p, st)
        dag = mode_obj.dag()
        strong, weak = dependencies(dag)
        want_s, want_w = sc["strong"], sc["weak"]
        if strong != want_s or weak != want_w:
            raise Fail("%s (%s, %s): dependencies differ from the truth\n"
                       "  strong: got %s, want %s\n  weak:   got %s, want "
                       "%s\n  false: %s  missing: %s"
                       % (name, mode, tracer, sorted(strong),
                          sorted(want_s), sorted(weak), sorted(want_w),
                          sorted((strong | weak) - (want_s | want_w)),
                          sorted((want_s | want_w) - (strong | weak))))
        got_same = same_links(dag, scratch.dir)
        if got_same != sc["same"]:
            raise Fail("%s: same-content links %s, want %s"
                       % (name, sorted(got_same), sorted(sc["same"])))
        check_paths(dag, {s.label: s for s in steps},
                    os.path.realpath(scratch.dir))
        if sc["extra"]:
            sc["extra"](dag, labels(dag))
    finally:
        if mode_obj:
            mode_obj.close()
        if nodes:
            nodes.close()
        scratch.close()


def migrate_old_store(weft):
    """A store an older weft wrote (tests/data/store-schema2.db: A wrote
    /tmp/mkfix/x, B read x and wrote y, C read y2, which holds x's bytes;
    that weft showed C depending on A). Opened now, it is migrated, and
    its reads, whose versions were never recorded, are weak: B likely
    depends on A, C on nobody, and no read is strong."""
    scratch = Scratch("migrate")
    try:
        os.makedirs(scratch.path(".weft"))
        db = scratch.path(".weft", "weft.db")
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(
            __file__)), "data", "store-schema2.db"), db)
        dag = json.loads(run([weft, "dag", "--format", "json", "--all"],
                             cwd=scratch.dir, check_rc=0).out)
        strong, weak = dependencies_by_name(dag)
        if strong or weak != {("cat x > y", "printf \"one\\n\" > x")}:
            raise Fail("old store: strong %s, weak %s" % (strong, weak))
        if any(e["kind"] == "read" and not e["weak"]
               for e in dag["edges"]):
            raise Fail("a read of an old record is strong")
        hashes = {a["path"]: a["hash"] for a in dag["artifacts"]
                  if a["version"] == "written"}
        if not hashes.get("/tmp/mkfix/x") or not hashes.get("/tmp/mkfix/y"):
            raise Fail("old writes lost their hashes: %s" % hashes)
        import sqlite3
        con = sqlite3.connect(db)
        cols = [r[1] for r in con.execute("PRAGMA table_info(file_io)")]
        con.close()
        if "loc_fs" not in cols:
            raise Fail("the store was not migrated: %s" % cols)
    finally:
        scratch.close()


def dependencies_by_name(dag):
    """dependencies() by task name without the "sh -c " prefix."""
    return dependencies(dag, {t["id"]: (t["name"] or "").replace(
        "sh -c ", "") for t in dag["tasks"]})


def cases():
    out = {"store.migrate_old": migrate_old_store}
    for mode in MODES:
        for tracer in TRACERS:
            for name in SCENARIOS:
                out["%s_%s.%s" % (mode, tracer, name)] = (
                    lambda weft, m=mode, t=tracer, n=name:
                    run_case(weft, m, t, n))
    return out


if __name__ == "__main__":
    sys.exit(main(cases()))
