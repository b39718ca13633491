#!/usr/bin/env python3
"""stale_e2e.py - weft stale, weft diff and weft rerun on a small pipeline
(clean.sh: raw.csv -> clean.csv; train.sh: clean.csv -> model.txt; a
non-deterministic step), traced with ptrace, with the truth written down
before each command is asked: which outputs are out of date and why, the
order of the re-runs, what differs between two runs and two versions,
and whether a re-run reproduced.

    stale_e2e.py --weft PATH CASE
    stale_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Standard
library only.
"""

import contextlib
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from wraplib import Fail, Skip, check, main, run  # noqa

CASES, case = caselib.registry()


class Project:
    """A pipeline in a scratch directory with its own .weft."""

    def __init__(self, weft):
        self.weft = weft
        self.dir = tempfile.mkdtemp(prefix="weft-stale-")
        os.mkdir(os.path.join(self.dir, ".weft"))
        with open(os.path.join(self.dir, ".weft", "config.toml"), "w") as f:
            f.write('[record]\nenv_values = ["MODE"]\n')
        os.mkdir(os.path.join(self.dir, "data"))
        self.write("data/raw.csv", "a,b\n1,2\n")
        self.write("clean.sh", "tr a-z A-Z < data/raw.csv > data/clean.csv\n")
        # (wc -c < FILE would only fstat it: not a read.)
        self.write("train.sh", "sort data/clean.csv > model.txt\n"
                   "echo \"$MODE\" >> model.txt\n")
        self.write("noise.sh", "head -c 16 /dev/urandom | od -x > noise.txt\n")
        # No eBPF agent of another test or user is reached.
        self.env = dict(os.environ, WEFT_AGENT_SOCKET="/tmp/none/agent.sock",
                        MODE="fast", SECRET_TOKEN="hunter2")

    def path(self, rel):
        return os.path.join(self.dir, rel)

    def write(self, rel, text):
        with open(self.path(rel), "w") as f:
            f.write(text)

    def weft_cmd(self, *args, rc=None, env=None):
        return run([self.weft] + list(args), env=env or self.env,
                   cwd=self.dir, check_rc=rc)

    def step(self, script, env=None):
        self.weft_cmd("run", "--tracer", "ptrace", "--", "sh", script,
                      rc=0, env=env)
        return self.last_run()

    def last_run(self):
        return json.loads(self.weft_cmd("show", "--json", rc=0).out)["run"]

    def stale(self, *paths, rc=None):
        p = self.weft_cmd("stale", "--json", *paths, rc=rc)
        return json.loads(p.out)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def pipeline(weft):
    """A Project with clean.sh and train.sh run once, as (project, clean's
    run, train's run); removed at the end of the with block."""
    ptrace = run([weft, "tracer", "check", "ptrace"])
    if ptrace.returncode != 0:
        raise Skip("ptrace is not permitted here: " + ptrace.out[-300:])
    p = Project(weft)
    try:
        yield p, p.step("clean.sh"), p.step("train.sh")
    finally:
        p.cleanup()


def stale_map(doc):
    return {os.path.basename(s["path"]): s for s in doc["stale"]}


def causes(item):
    return {(c["why"], os.path.basename(c["path"])) for c in item["causes"]}


@case
def stale_fresh_then_changed_input(weft):
    with pipeline(weft) as (p, clean, train):
        doc = p.stale(rc=0)
        check(doc["stale"] == [], "fresh pipeline reported stale: %s" % doc)
        check(doc["checked"] == 2, "2 outputs expected: %s" % doc)
        check(doc["hashed"] == 0, "nothing changed, nothing to hash: %s"
              % doc)
        p.write("data/raw.csv", "a,b\n1,3\n")
        doc = p.stale(rc=1)
        m = stale_map(doc)
        # The truth: clean.csv because raw.csv changed (re-run clean);
        # model.txt because clean's run is out of date (clean, then train).
        check(set(m) == {"clean.csv", "model.txt"}, "stale: %s" % doc)
        check(causes(m["clean.csv"]) == {("input_changed", "raw.csv")},
              "clean.csv causes: %s" % m["clean.csv"])
        check(causes(m["model.txt"]) == {("upstream", "clean.csv")},
              "model.txt causes: %s" % m["model.txt"])
        check(m["model.txt"]["rerun"] == [clean, train],
              "re-run order: %s" % m["model.txt"]["rerun"])
        # Only what model.txt depends on, when asked by path.
        only = p.stale("data/clean.csv", rc=1)
        check([os.path.basename(s["path"]) for s in only["stale"]] ==
              ["clean.csv"], "stale clean.csv: %s" % only)
        # Same bytes again (a new identity): fresh, vouched by hash.
        p.write("data/raw.csv", "a,b\n1,2\n")
        doc = p.stale(rc=0)
        check(doc["stale"] == [] and doc["hashed"] >= 1,
              "same content, new identity: %s" % doc)


@case
def stale_changed_script_removed_input_output(weft):
    with pipeline(weft) as (p, clean, train):
        p.write("train.sh", "sort -r data/clean.csv > model.txt\n")
        m = stale_map(p.stale(rc=1))
        check(set(m) == {"model.txt"}, "only model.txt: %s" % m)
        check(causes(m["model.txt"]) == {("input_changed", "train.sh")},
              "causes: %s" % m["model.txt"])
        check(m["model.txt"]["rerun"] == [train], "re-run: %s" % m)
        p.step("train.sh")
        p.stale(rc=0)
        os.unlink(p.path("data/raw.csv"))
        m = stale_map(p.stale(rc=1))
        check(causes(m["clean.csv"]) == {("input_removed", "raw.csv")},
              "removed input: %s" % m)
        # The re-run is refused, naming the input.
        r = p.weft_cmd("rerun", clean, rc=3)
        check("raw.csv" in r.err and "gone" in r.err, "refusal: %s" % r.err)
        p.write("data/raw.csv", "a,b\n1,2\n")
        os.unlink(p.path("model.txt"))
        m = stale_map(p.stale(rc=1))
        check(set(m) == {"model.txt"} and
              causes(m["model.txt"]) == {("output_removed", "model.txt")},
              "removed output: %s" % m)
        bad = p.stale("nowhere.txt", rc=1)
        check(bad["not_recorded"] == [p.path("nowhere.txt")],
              "not recorded: %s" % bad)


@case
def diff_runs_and_file_env(weft):
    with pipeline(weft) as (p, clean, train):
        train2 = p.step("train.sh", env=dict(p.env, MODE="slow"))
        d = json.loads(p.weft_cmd("diff", "--json", train, train2,
                                  rc=1).out)
        items = {(i["section"], i["name"]): i for i in d["items"]}
        # The truth: MODE differs (in clear: listed); model.txt changed;
        # SECRET_TOKEN is the same and never shown in clear.
        check(items.get(("env", "MODE"), {}).get("a") == '"fast"' and
              items[("env", "MODE")]["b"] == '"slow"',
              "MODE: %s" % d["items"])
        check(("output", p.path("model.txt")) in items, "model.txt: %s" % d)
        check(("env", "SECRET_TOKEN") not in items, "secret: %s" % d)
        check("hunter2" not in p.weft_cmd("show", "--json", rc=0).out,
              "a value not listed was stored in clear")
        check(not any(k[0] == "input" for k in items),
              "no input changed: %s" % d["items"])
        # Two versions of model.txt: nearest first, the run that made it.
        text = p.weft_cmd("diff", "--file", "model.txt", rc=1).out
        check("`MODE` differs" in text, "file diff text: %s" % text)
        check("train.sh` is the same" in text, "same script: %s" % text)
        # A change upstream: clean.csv changed because raw.csv changed.
        p.write("data/raw.csv", "a,b\n7,8\n")
        p.step("clean.sh")
        p.step("train.sh", env=dict(p.env, MODE="slow"))
        f = json.loads(p.weft_cmd("diff", "--json", "--file", "model.txt",
                                  rc=1).out)
        chain = [(i["depth"], os.path.basename(i["name"]))
                 for i in f["items"]
                 if i["section"] == "input" and i["change"] == "changed"]
        check(chain == [(0, "clean.csv"), (1, "raw.csv")],
              "nearest first: %s" % chain)
        same = p.weft_cmd("diff", train2, train2, rc=0).out
        check("no differences" in same, "self diff: %s" % same)


@case
def rerun_check(weft):
    with pipeline(weft) as (p, clean, train):
        r = p.weft_cmd("rerun", "--tracer", "ptrace", "--check", "--json",
                       clean, rc=0)
        doc = json.loads(r.out)
        check(doc["reproduced"] is True and doc["outputs"] == [],
              "deterministic step: %s" % doc)
        noise = p.step("noise.sh")
        r = p.weft_cmd("rerun", "--tracer", "ptrace", "--check", "--json",
                       noise, rc=1)
        doc = json.loads(r.out)
        check(doc["reproduced"] is False and
              [os.path.basename(o["name"]) for o in doc["outputs"]] ==
              ["noise.txt"], "non-deterministic step: %s" % doc)
        check(not [u for u in doc["upstream"] if u["section"] == "input"],
              "nothing upstream changed: %s" % doc)
        # A changed environment is named upstream.
        r = p.weft_cmd("rerun", "--tracer", "ptrace", "--check", "--json",
                       train, rc=1, env=dict(p.env, MODE="other"))
        doc = json.loads(r.out)
        check(any(u["section"] == "env" and u["name"] == "MODE"
                  for u in doc["upstream"]), "env upstream: %s" % doc)
        # A working directory that is gone is refused.
        sub = p.path("sub")
        os.mkdir(sub)
        run([weft, "run", "--tracer", "ptrace", "--", "sh", "-c",
             "echo x > out.txt"], env=p.env, cwd=sub, check_rc=0)
        gone = p.last_run()
        shutil.rmtree(sub)
        r = p.weft_cmd("rerun", gone, rc=3)
        check("working directory" in r.err, "refusal: %s" % r.err)


if __name__ == "__main__":
    sys.exit(main(CASES))
