#!/usr/bin/env python3
"""export_e2e.py - the exports of issue 16 end to end, on one real
distributed job: W3C PROV-JSON (`weft export --format prov`), RO-Crate
(`weft export --format rocrate`, to stdout, a directory and a zip) and
the picture (`weft dag --format svg|html`).

The job: a real coordinator, `weft submit`, and real wrappers under
ptrace, each named as a Slurm task on one of two nodes (node0, node1),
sharing a data directory, plus a Ray-style worker (`weft wrap --ray`,
tests/fake_ray) that runs three Ray tasks:

    prep    77.0.0@node0  writes raw.txt (version 1)
    clean   77.0.1@node1  reads raw.txt v1, writes clean.txt
    fail    77.1.0@node1  reads clean.txt, writes partial.txt, exits 5
    append  77.1.1@node0  reads clean.txt, appends to raw.txt: updates
                          v1 into raw.txt v2
    worker  (Ray)         starts stage1 (x2: shards/part-00, part-01)
                          and stage2 (reads both, writes result.txt)

TRUTH below writes down what each export must say about it (what every
task used and generated, which version derives from which, which task
informed which, who started whom, which task failed); every case
compares the export with it, then checks the format's own rules.

    export_e2e.py --weft PATH CASE
    export_e2e.py --list

Cases:
  prov         PROV-JSON loads with python3-prov and converts to PROV-N;
               entities, activities, agent, used, wasGeneratedBy,
               wasDerivedFrom, wasInformedBy, wasStartedBy,
               wasAssociatedWith and every weft attribute as TRUTH says.
  rocrate      ro-crate-metadata.json parses as JSON-LD with
               python3-rdflib against the RO-Crate 1.1 context in
               tests/data (nothing fetched); the MUST rules of RO-Crate
               1.1 and Process Run Crate 0.5 (written out in
               check_crate_rules); actions, files, hashes, sizes and
               statuses as TRUTH says.
  rocrate_out  -o DIR and -o FILE.zip hold the same metadata as stdout;
               one run's export (RUN) holds that task only; a bad run id
               and an unwritable target are refused, naming them.
  picture      `dag --format svg` is an SVG with every node; the HTML page
               in headless Chromium: a screenshot that is not blank and
               shows the node colours, #select=<clean.txt> and a clicked
               task mark exactly their lineage up and down (dump-dom).
  missing_libs with libzip and Graphviz's library unloadable (empty
               files found first on LD_LIBRARY_PATH), `-o crate.zip` and
               `dag --format svg|html -o FILE` exit 1 naming the package
               to install (libzip4, libgvc6), leave FILE as it was and
               no file behind; a crate directory and the DAG still work.

Exit status: 0 pass, 1 fail, 77 skip (reason printed). python3-prov,
python3-rdflib and chromium come from Debian (scripts/install-deps); when
this interpreter lacks the Python ones and Debian's /usr/bin/python3 has
them, the script runs again under it.
"""

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import caselib  # noqa: E402
from wraplib import (Coordinator, Fail, Job, Scratch, Skip, check,  # noqa
                     log, main, run, wrap_env)

SHIM = os.path.join(os.path.dirname(HERE), "python-shim")
FAKE_RAY = os.path.join(HERE, "fake_ray")
CONTEXT = os.path.join(HERE, "data", "ro-crate-1.1-context.jsonld")
PREFLIGHT_EXIT = 3
PROFILE = "https://w3id.org/ro/wfrun/process/0.5"

# The truth, written before anything runs: per task, the files of the
# data directory it used and generated ("raw.txt@1" is raw.txt's first
# version, "raw.txt@2" the one the append made), its node and exit code.
TRUTH = {
    "prep": {"node": "node0", "exit": 0, "used": set(),
             "generated": {"raw.txt@1"}},
    "clean": {"node": "node1", "exit": 0, "used": {"raw.txt@1"},
              "generated": {"clean.txt"}},
    "fail": {"node": "node1", "exit": 5, "used": {"clean.txt"},
             "generated": {"partial.txt"}},
    "append": {"node": "node0", "exit": 0,
               "used": {"clean.txt", "raw.txt@1"},
               "generated": {"raw.txt@2"}},
    "stage1a": {"exit": 0, "used": set(),
                "generated": {"shards/part-00.txt"}},
    "stage1b": {"exit": 0, "used": set(),
                "generated": {"shards/part-01.txt"}},
    "stage2": {"exit": 0,
               "used": {"shards/part-00.txt", "shards/part-01.txt"},
               "generated": {"result.txt"}},
}
# Which task read what another wrote (informed, informant).
INFORMED = {("clean", "prep"), ("fail", "clean"), ("append", "clean"),
            ("append", "prep"), ("stage2", "stage1a"),
            ("stage2", "stage1b")}
# The update: raw.txt@2 derives from raw.txt@1, made by append.
DERIVED = {("raw.txt@2", "raw.txt@1", "append")}
# A worker starts its Ray tasks.
STARTED = {("stage1a", "worker"), ("stage1b", "worker"),
           ("stage2", "worker")}
# The final contents, for hashes and sizes.
RAW1 = b"raw data for the pipeline\n"
CLEAN = RAW1.upper()
RAW2 = RAW1 + CLEAN

WORKER = r"""
import os
from ray._private import worker as rw
import weft.ray
weft.ray.worker_setup()
g = rw.global_worker
d = os.environ["OUT"]
g.execute_task("%048x" % 0x100, "pipeline.stage1", 0, d)
g.execute_task("%048x" % 0x101, "pipeline.stage1", 1, d)
g.execute_task("%048x" % 0x200, "pipeline.stage2", d)
"""


def need_debian_python(*modules):
    """Import modules, or run this script again under Debian's python3
    (where python3-prov and python3-rdflib install), or skip."""
    try:
        for m in modules:
            __import__(m)
        return
    except ImportError as e:
        missing = str(e)
    deb = "/usr/bin/python3"
    if (os.path.exists(deb) and
            os.path.realpath(sys.executable) != os.path.realpath(deb) and
            not os.environ.get("WEFT_EXPORT_REEXEC")):
        os.environ["WEFT_EXPORT_REEXEC"] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(deb, [deb] + sys.argv)
    raise Skip("%s (install python3-prov and python3-rdflib: "
               "scripts/install-deps)" % missing)


def blake(data):
    return "blake2b-256:" + hashlib.blake2b(data, digest_size=32).hexdigest()


class Recorded:
    """The job above, recorded in a scratch project; its DAG (JSON)."""

    def __init__(self, weft):
        self.weft = weft
        self.s = Scratch("export")
        self.proj = self.s.path("proj")
        self.data = self.s.path("data")
        os.makedirs(os.path.join(self.data, "shards"))
        coord = Coordinator(weft, self.proj).start()
        job = None
        try:
            job = Job(weft, coord, self.proj)
            self.job = job.id
            self.record(job)
            rc, err = job.end()
            check(rc == 0, "the job ended with %s: %s" % (rc, err))
        except BaseException:
            if job:
                job.end()
            coord.kill()
            self.s.close()
            raise
        coord.kill()
        p = self.weft_cmd("dag", "--job", self.job, "--format", "json")
        check(p.returncode == 0, "weft dag: %s" % p.err)
        self.dag = json.loads(p.out)
        self.name_things()

    def wrap(self, job, step, proc, node, script, rc=0):
        env = wrap_env(job.contract, self.s.path("spool-%s" % node),
                       SLURM_JOB_ID="77", SLURM_STEP_ID=str(step),
                       SLURM_PROCID=str(proc), SLURMD_NODENAME=node)
        p = run([self.weft, "wrap", "--ship-timeout", "60", "--", "sh",
                 "-c", script], env=env, cwd=self.data)
        # (No task of the job exits with weft's own preflight status.)
        if p.returncode == PREFLIGHT_EXIT:
            raise Skip("ptrace cannot trace here: " + p.err)
        check(p.returncode == rc, "weft wrap %s exited %d, expected %d: %s"
              % (script, p.returncode, rc, p.err))

    def record(self, job):
        self.wrap(job, 0, 0, "node0",
                  "printf 'raw data for the pipeline\\n' > raw.txt")
        self.wrap(job, 0, 1, "node1", "tr a-z A-Z < raw.txt > clean.txt")
        self.wrap(job, 1, 0, "node1",
                  "cat clean.txt > partial.txt; exit 5", rc=5)
        self.wrap(job, 1, 1, "node0", "cat clean.txt >> raw.txt")
        env = wrap_env(job.contract, self.s.path("spool-ray"))
        for k in list(env):
            if k.startswith("RAY_"):
                del env[k]
        env.update(PYTHONPATH=os.pathsep.join([SHIM, FAKE_RAY]),
                   OUT=self.data, PIPELINE_DIR=self.data,
                   RAY_JOB_ID="03000000")
        p = run([self.weft, "wrap", "--ship-timeout", "60", "--ray", "--",
                 sys.executable, "-c", WORKER], env=env, timeout=300)
        check(p.returncode == 0, "weft wrap --ray exited %d: %s"
              % (p.returncode, p.err))

    def name_things(self):
        """TRUTH's names for the DAG's task and artifact ids."""
        self.task = {}   # truth name -> task id
        by_name = {}
        for t in self.dag["tasks"]:
            by_name.setdefault(t["name"], []).append(t)
        fixed = {"prep": "77.0.0@node0", "clean": "77.0.1@node1",
                 "fail": "77.1.0@node1", "append": "77.1.1@node0"}
        for k, name in fixed.items():
            check(len(by_name.get(name, [])) == 1, "task %s: %s"
                  % (name, sorted(by_name)))
            self.task[k] = by_name[name][0]["id"]
        ray = [t for t in self.dag["tasks"] if t["parent"]]
        workers = {t["parent"] for t in ray}
        check(len(workers) == 1, "one Ray worker expected: %s" % ray)
        self.task["worker"] = workers.pop()
        s1 = sorted((t for t in ray if t["name"].endswith("stage1")),
                    key=lambda t: t["id"])
        s2 = [t for t in ray if t["name"].endswith("stage2")]
        check(len(s1) == 2 and len(s2) == 1, "Ray tasks: %s"
              % [t["name"] for t in ray])
        # Which stage1 wrote part-00 is read from the edges below.
        self.art = {}    # truth name -> artifact id
        writer = {}
        for e in self.dag["edges"]:
            if e["kind"] == "write":
                writer[e["to"]] = e["from"]
        for a in self.dag["artifacts"]:
            rel = os.path.relpath(a["path"], self.data)
            if rel.startswith(".."):
                continue
            if rel == "raw.txt":
                w = writer.get(a["id"])
                rel += "@1" if w == self.task["prep"] else "@2"
            check(rel not in self.art, "two versions of %s" % rel)
            self.art[rel] = a["id"]
        for t in s1:
            part = [n for n, i in self.art.items()
                    if writer.get(i) == t["id"]]
            check(len(part) == 1, "stage1 %s wrote %s" % (t["id"], part))
            self.task["stage1a" if part[0].endswith("00.txt")
                      else "stage1b"] = t["id"]
        self.task["stage2"] = s2[0]["id"]
        want = set().union(*(v["used"] | v["generated"]
                             for v in TRUTH.values()))
        check(set(self.art) == want, "data files in the DAG: %s, expected "
              "%s" % (sorted(self.art), sorted(want)))
        self.task_name = {v: k for k, v in self.task.items()}
        self.art_name = {v: k for k, v in self.art.items()}

    def weft_cmd(self, *args, env=None):
        return run([self.weft] + list(args), cwd=self.proj, env=env)

    def export(self, fmt, *args):
        p = self.weft_cmd("export", "--format", fmt, "--job", self.job,
                          *args)
        check(p.returncode == 0, "weft export --format %s %s exited %d: %s"
              % (fmt, " ".join(args), p.returncode, p.err))
        return p.out

    def close(self):
        self.s.close()


CASES, case = caselib.registry(Recorded)


def compare(what, got, want):
    check(got == want, "%s: got %s, expected %s (missing %s, extra %s)"
          % (what, sorted(got), sorted(want), sorted(want - got),
             sorted(got - want)))


# ---- PROV ----

@case
def prov(r):
    need_debian_python("prov", "rdflib")
    from prov.model import (ProvDocument, ProvUsage, ProvGeneration,
                            ProvDerivation, ProvCommunication, ProvStart,
                            ProvAssociation, ProvActivity, ProvEntity,
                            ProvAgent)
    text = r.export("prov")
    doc = ProvDocument.deserialize(content=text, format="json")
    provn = doc.get_provn()
    check(provn.startswith("document") and "wasInformedBy(" in provn,
          "PROV-N conversion: %s" % provn[:300])
    raw = json.loads(text)
    local = lambda q: str(q.localpart) if q is not None else None  # noqa

    def tname(q):
        return r.task_name.get(local(q).split("/", 1)[1])

    def aname(q):
        return r.art_name.get("v:" + local(q).split("/", 1)[1])

    used, gen, derived, informed, started, assoc = (set() for _ in range(6))
    weak_attr = 0
    for rec in doc.get_records():
        a = dict(rec.formal_attributes)
        attrs = {str(k): v for k, v in rec.extra_attributes}
        if isinstance(rec, (ProvUsage, ProvGeneration)):
            check("weft:weak" in attrs, "no weft:weak on %s" % rec)
            weak_attr += 1
        if isinstance(rec, ProvUsage):
            t, e = tname(a[rec.FORMAL_ATTRIBUTES[0]]), aname(
                a[rec.FORMAL_ATTRIBUTES[1]])
            if t and e:
                used.add((t, e))
        elif isinstance(rec, ProvGeneration):
            e, t = aname(a[rec.FORMAL_ATTRIBUTES[0]]), tname(
                a[rec.FORMAL_ATTRIBUTES[1]])
            if t and e:
                gen.add((t, e))
        elif isinstance(rec, ProvDerivation):
            vals = [a[k] for k in rec.FORMAL_ATTRIBUTES[:3]]
            derived.add((aname(vals[0]), aname(vals[1]), tname(vals[2])))
            check("prov:Revision" in str(attrs.get("prov:type")),
                  "derivation not a Revision: %s" % rec)
        elif isinstance(rec, ProvCommunication):
            informed.add((tname(a[rec.FORMAL_ATTRIBUTES[0]]),
                          tname(a[rec.FORMAL_ATTRIBUTES[1]])))
        elif isinstance(rec, ProvStart):
            started.add((tname(a[rec.FORMAL_ATTRIBUTES[0]]),
                         tname(a[rec.FORMAL_ATTRIBUTES[2]])))
        elif isinstance(rec, ProvAssociation):
            assoc.add((tname(a[rec.FORMAL_ATTRIBUTES[0]]),
                       local(a[rec.FORMAL_ATTRIBUTES[1]])))
    compare("used", used, {(t, f) for t, v in TRUTH.items()
                           for f in v["used"]})
    compare("wasGeneratedBy", gen, {(t, f) for t, v in TRUTH.items()
                                    for f in v["generated"]})
    compare("wasDerivedFrom", derived, DERIVED)
    compare("wasInformedBy", informed, INFORMED)
    compare("wasStartedBy", started, STARTED)
    import getpass
    user = getpass.getuser()
    compare("wasAssociatedWith", assoc,
            {(t, "user/" + user) for t in r.task})
    # Activities: node, exit code, command, times; the failed one says so.
    acts = {tname(rec.identifier): rec for rec in doc.get_records()
            if isinstance(rec, ProvActivity)}
    check(set(acts) == set(r.task), "activities: %s" % sorted(acts))
    for name, v in TRUTH.items():
        act = raw["activity"]["weft:task/" + r.task[name]]
        check(act["weft:exitCode"] == v["exit"], "%s exit: %s"
              % (name, act))
        if "node" in v:
            check(act["weft:node"] == v["node"], "%s node: %s"
                  % (name, act))
        check(acts[name].get_startTime() and acts[name].get_endTime() and
              acts[name].get_startTime() <= acts[name].get_endTime(),
              "%s times: %s" % (name, act))
    check("raw.txt" in raw["activity"]["weft:task/" + r.task["append"]]
          ["weft:command"], "append's command")
    # Entities: path, hash, size of the versions whose bytes are known.
    ents = raw["entity"]
    for name, data in (("raw.txt@1", RAW1), ("clean.txt", CLEAN),
                       ("raw.txt@2", RAW2)):
        e = ents["weft:version/" + r.art[name][2:]]
        check(e["weft:hash"] == blake(data) and e["weft:size"] == len(data)
              and e["weft:path"] == os.path.join(r.data, "raw.txt"
                                                 if "raw" in name else name),
              "entity %s: %s" % (name, e))
    agents = [rec for rec in doc.get_records() if isinstance(rec, ProvAgent)]
    check(len(agents) == 1 and local(agents[0].identifier) ==
          "user/" + user, "agents: %s" % agents)
    check(len([x for x in doc.get_records() if isinstance(x, ProvEntity)])
          == len(r.dag["artifacts"]), "one entity per version")
    # Two exports of the same records are the same document.
    check(r.export("prov") == text, "a second export differs")


# ---- RO-Crate ----

def crate_graph(meta):
    """rdflib graph of the crate, the RO-Crate 1.1 context taken from
    tests/data instead of the network."""
    import rdflib
    with open(CONTEXT) as f:
        ctx = json.load(f)["@context"]
    doc = json.loads(meta)
    check(doc["@context"][0] == "https://w3id.org/ro/crate/1.1/context",
          "context: %s" % doc["@context"])
    doc["@context"] = [ctx] + doc["@context"][1:]
    # A key the context does not define would be dropped by JSON-LD.
    for n in doc["@graph"]:
        for k in n:
            check(k.startswith(("@", "weft:")) or k in ctx,
                  "%s is not in the RO-Crate 1.1 context (%s)" % (k, CONTEXT))
    g = rdflib.Graph()
    g.parse(data=json.dumps(doc), format="json-ld",
            base="http://crate.invalid/")
    return g, doc


def check_crate_rules(g):
    """The MUST rules, as the specifications state them:
    RO-Crate 1.1 (Metadata Descriptor, Root Data Entity, Data Entities):
      M1 the metadata descriptor ro-crate-metadata.json is a CreativeWork,
         conformsTo https://w3id.org/ro/crate/1.1, about the root;
      M2 the root data entity is a Dataset and has datePublished in
         ISO 8601 (name and description are SHOULD, checked as well);
      M3 every File data entity is linked from the root by hasPart, and
         its @id is an absolute URI or a path relative to the root.
    Process Run Crate 0.5 (Requirements table):
      P1 the root dataset's conformsTo references a CreativeWork whose
         @id is the profile's permalink;
      P2 a SoftwareApplication has @type (SoftwareApplication,
         SoftwareSourceCode or ComputationalWorkflow) and @id;
      P3 a CreateAction has @type, @id and instrument (the executed
         tool); its actionStatus, when given, is CompletedActionStatus or
         FailedActionStatus, and error appears only with the latter
         (SHOULD NOT otherwise)."""
    from rdflib import RDF, URIRef, Namespace
    S = Namespace("http://schema.org/")
    DCT = Namespace("http://purl.org/dc/terms/")
    base = "http://crate.invalid/"
    meta = URIRef(base + "ro-crate-metadata.json")
    root = URIRef(base)
    check((meta, RDF.type, S.CreativeWork) in g, "M1: descriptor type")
    check((meta, DCT.conformsTo, URIRef("https://w3id.org/ro/crate/1.1"))
          in g, "M1: descriptor conformsTo")
    check((meta, S.about, root) in g, "M1: descriptor about the root")
    check((root, RDF.type, S.Dataset) in g, "M2: root is a Dataset")
    date = g.value(root, S.datePublished)
    check(date is not None and re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", str(date)),
        "M2: datePublished %r" % date)
    check(g.value(root, S.name) and g.value(root, S.description),
          "M2: root name and description")
    parts = set(g.objects(root, S.hasPart))
    files = set(g.subjects(RDF.type, S.MediaObject))
    check(files and files <= parts, "M3: files not in hasPart: %s"
          % (files - parts))
    for f in files:
        check(str(f).startswith("file://"), "M3: file @id %s" % f)
    prof = URIRef(PROFILE)
    check((root, DCT.conformsTo, prof) in g, "P1: root conformsTo")
    check((prof, RDF.type, S.CreativeWork) in g, "P1: profile entity")
    tools = {S.SoftwareApplication, S.SoftwareSourceCode,
             URIRef("https://bioschemas.org/ComputationalWorkflow")}
    actions = set(g.subjects(RDF.type, S.CreateAction))
    check(actions, "P3: no CreateAction")
    for a in actions:
        inst = list(g.objects(a, S.instrument))
        check(len(inst) == 1, "P3: %s instrument %s" % (a, inst))
        check(set(g.objects(inst[0], RDF.type)) & tools,
              "P2: %s has no tool type" % inst[0])
        status = g.value(a, S.actionStatus)
        check(status in (S.CompletedActionStatus, S.FailedActionStatus),
              "P3: %s status %s" % (a, status))
        check((g.value(a, S.error) is None) ==
              (status == S.CompletedActionStatus),
              "P3: %s error with status %s" % (a, status))
        for p in (S.object, S.result):
            for o in g.objects(a, p):
                check(o in files, "%s of %s is no File: %s" % (p, a, o))
    return S, actions


@case
def rocrate(r):
    need_debian_python("rdflib")
    meta = r.export("rocrate")
    g, doc = crate_graph(meta)
    S, actions = check_crate_rules(g)
    from rdflib import URIRef
    W = "urn:weft:"
    nodes = {n["@id"]: n for n in doc["@graph"]}

    def file_name(uri):
        vid = g.value(URIRef(uri), URIRef(W + "versionId"))
        return r.art_name.get(str(vid))

    seen = set()
    import getpass
    for a in actions:
        run_id = str(g.value(a, URIRef(W + "runId")))
        name = r.task_name.get(run_id)
        if name not in TRUTH:
            continue
        seen.add(name)
        want = TRUTH[name]
        used = {file_name(o) for o in g.objects(a, S.object)} - {None}
        made = {file_name(o) for o in g.objects(a, S.result)} - {None}
        compare("%s object" % name, used, want["used"])
        compare("%s result" % name, made, want["generated"])
        status = g.value(a, S.actionStatus)
        check((status == S.FailedActionStatus) == (want["exit"] != 0),
              "%s status %s" % (name, status))
        if want["exit"]:
            check("status %d" % want["exit"] in str(g.value(a, S.error)),
                  "%s error: %s" % (name, g.value(a, S.error)))
        agent = g.value(a, S.agent)
        check(str(g.value(agent, S.name)) == getpass.getuser() and
              (agent, None, S.Person), "%s agent %s" % (name, agent))
        check(g.value(a, S.startTime) and g.value(a, S.endTime),
              "%s times" % name)
        if "node" in want:
            check(str(g.value(a, URIRef(W + "node"))) == want["node"],
                  "%s node" % name)
    compare("actions", seen, set(TRUTH))
    check(len(actions) == len(r.dag["tasks"]), "one action per task")
    # Hashes and sizes; the update's isBasedOn.
    for name, data in (("raw.txt@1", RAW1), ("clean.txt", CLEAN),
                       ("raw.txt@2", RAW2)):
        f = [n for n in doc["@graph"]
             if n.get("weft:versionId") == r.art[name]]
        check(len(f) == 1 and f[0]["@type"] == "File" and
              f[0]["weft:hash"] == blake(data) and
              f[0]["contentSize"] == str(len(data)) and
              f[0]["@id"].startswith("file://"), "file %s: %s"
              % (name, f))
        if name == "raw.txt@2":
            prev = nodes[f[0]["isBasedOn"]["@id"]]
            check(prev["weft:versionId"] == r.art["raw.txt@1"],
                  "raw.txt@2 isBasedOn %s" % prev)
    check(r.export("rocrate") == meta, "a second export differs")


@case
def rocrate_out(r):
    meta = r.export("rocrate")
    d = os.path.join(r.s.dir, "crate")
    r.export("rocrate", "-o", d)
    with open(os.path.join(d, "ro-crate-metadata.json")) as f:
        check(f.read() == meta, "the directory's metadata differs")
    z = os.path.join(r.s.dir, "crate.zip")
    p = r.weft_cmd("export", "--format", "rocrate", "--job", r.job, "-o", z)
    if p.returncode and "built without libzip" in p.err:
        raise Skip("this weft has no libzip: " + p.err.strip())
    check(p.returncode == 0, "-o %s: %s" % (z, p.err))
    with zipfile.ZipFile(z) as zf:
        check(zf.namelist() == ["ro-crate-metadata.json"],
              "zip holds %s" % zf.namelist())
        check(zf.read("ro-crate-metadata.json").decode() == meta,
              "the zip's metadata differs")
    # One run: that task, the files on its edges.
    one = json.loads(r.export("rocrate", r.task["fail"][:12]))
    acts = [n for n in one["@graph"] if n["@type"] == "CreateAction"]
    check(len(acts) == 1 and acts[0]["weft:runId"] == r.task["fail"],
          "one run's crate: %s" % acts)
    p = r.weft_cmd("export", "--format", "prov", "--job", r.job,
                   "no-such-run")
    check(p.returncode == 1 and "no-such-run" in p.err,
          "a bad run id: %d %s" % (p.returncode, p.err))
    blocker = os.path.join(r.s.dir, "file")
    open(blocker, "w").close()
    p = r.weft_cmd("export", "--format", "rocrate", "--job", r.job, "-o",
                   blocker)
    check(p.returncode == 1 and blocker in p.err and
          "not a directory" in p.err, "a file as the crate directory: %s"
          % p.err)
    p = r.weft_cmd("export", "--format", "rocrate", "-o",
                   os.path.join(blocker, "x.zip"))
    check(p.returncode == 1 and "x.zip" in p.err, "an unwritable zip: %s"
          % p.err)
    p = r.weft_cmd("export", "--format", "nope")
    check(p.returncode == 2 and "nope" in p.err, "an unknown format: %s"
          % p.err)


# ---- The picture ----

def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB(A) PNG, the
    way Chromium writes screenshots: zlib and the five row filters."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "%s is no PNG" % path)
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    check(depth == 8 and ctype in (2, 6), "PNG type %d/%d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def chromium(args, timeout=60):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise Skip("chromium not installed (scripts/install-deps)")
    home = tempfile.mkdtemp(prefix="weft-chromium-")
    try:
        p = subprocess.run([exe, "--headless", "--no-sandbox",
                            "--disable-gpu", "--user-data-dir=" + home,
                            "--no-first-run"] + args, capture_output=True,
                           timeout=timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    check(p.returncode == 0, "chromium %s exited %d: %s"
          % (args, p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    return p.stdout.decode(errors="replace")


def classes_in(dom):
    """SVG node key -> its classes, from Chromium's dump of the DOM."""
    out = {}
    for m in re.finditer(r'<g id="([ta]\d+)" class="([^"]*)"', dom):
        out[m.group(1)] = set(m.group(2).split())
    return out


def page_keys(page):
    """DAG id -> the page's node key, from the page's own data."""
    m = re.search(r'<script type="application/json" id="weft-data">(.*?)'
                  r'</script>', page, re.S)
    check(m, "no data in the page")
    data = json.loads(m.group(1))
    return {n["id"]: k for k, n in data["nodes"].items()}


def check_marks(dom, keys, r, selected, up, down, what):
    """Exactly selected, up and down are marked; every other drawn node
    is dimmed. up and down: TRUTH names of tasks and files."""
    got = classes_in(dom)
    ids = dict(r.task)
    ids.update(r.art)
    want = {keys[ids[selected]]: "weft-selected"}
    want.update({keys[ids[n]]: "weft-up" for n in up})
    want.update({keys[ids[n]]: "weft-down" for n in down})
    marks = {"weft-selected", "weft-up", "weft-down", "weft-dim"}
    for key in keys.values():
        have = got.get(key, set()) & marks
        check(have == {want.get(key, "weft-dim")},
              "%s: node %s has %s, expected %s" % (what, key, have,
                                                    want.get(key, "dim")))


@case
def picture(r):
    svg = r.weft_cmd("dag", "--job", r.job, "--format", "svg")
    if svg.returncode and "built without Graphviz" in svg.err:
        raise Skip("this weft has no Graphviz: " + svg.err.strip())
    check(svg.returncode == 0 and "<svg" in svg.out, "svg: %s" % svg.err)
    ntask = len(re.findall(r'class="node task', svg.out))
    check(ntask == len(r.dag["tasks"]), "%d task nodes in the SVG for %d "
          "tasks" % (ntask, len(r.dag["tasks"])))
    for name in ("77.0.0@node0", "77.1.0@node1", "clean.txt", "result.txt"):
        check(name in svg.out, "%s not in the SVG" % name)
    check(len(re.findall(r'class="node task failed', svg.out)) == 1,
          "the failed task is not marked failed in the SVG")
    page = os.path.join(r.s.dir, "dag.html")
    p = r.weft_cmd("dag", "--job", r.job, "--format", "html", "-o", page)
    check(p.returncode == 0, "dag --format html: %s" % p.err)
    with open(page) as f:
        html = f.read()
    check(not re.search(r'(src|href)="(https?:)?//', html),
          "the page loads something from the network")
    keys = page_keys(html)
    url = "file://" + page
    # Select clean.txt: up is what made it, down what it fed.
    dom = chromium(["--dump-dom", url + "#select=" + r.art["clean.txt"]])
    check_marks(dom, keys, r, "clean.txt", {"clean", "raw.txt@1", "prep"},
                {"fail", "partial.txt", "append", "raw.txt@2"},
                "#select=clean.txt")
    # A real click on the append task, from a script added to a copy.
    clicked = os.path.join(r.s.dir, "clicked.html")
    with open(clicked, "w") as f:
        f.write(html.replace(
            "</body>", "<script>document.getElementById('%s').dispatchEvent("
            "new MouseEvent('click', {bubbles: true}));</script></body>"
            % keys[r.task["append"]]))
    dom = chromium(["--dump-dom", "file://" + clicked])
    check_marks(dom, keys, r, "append",
                {"clean.txt", "raw.txt@1", "clean", "prep"}, {"raw.txt@2"},
                "click on append")
    check(r.task["append"] in dom and "77.1.1@node0" in dom,
          "the details panel does not show the task")
    # A screenshot: nodes drawn (not blank), highlighted in colour.
    shot = os.path.join(r.s.dir, "shot.png")
    chromium(["--screenshot=" + shot, "--window-size=1400,900",
              url + "#select=" + r.art["clean.txt"]])
    w, h, rows = png_pixels(shot)
    colours = {}
    for row in rows:
        for px in row:
            colours[px] = colours.get(px, 0) + 1
    ink = sum(n for px, n in colours.items() if min(px) < 200)
    check(ink > 500, "the screenshot is blank (%d dark pixels)" % ink)
    yellow = colours.get((0xff, 0xe0, 0x8a), 0)
    green = colours.get((0xa8, 0xe6, 0xa8), 0)
    check(yellow > 200 and green > 200, "no highlighted nodes in the "
          "screenshot (yellow %d, green %d pixels)" % (yellow, green))


# ---- Without the libraries two outputs load ----

@case
def missing_libs(r):
    # weft loads libzip and Graphviz's libraries by soname when those
    # outputs are asked for; an empty file of that name first on the
    # loader's path is a library that cannot be loaded, as a missing one.
    nolibs = r.s.path("nolibs")
    os.makedirs(nolibs)
    for soname in ("libzip.so.4", "libgvc.so.6"):
        open(os.path.join(nolibs, soname), "w").close()
    env = dict(os.environ, LD_LIBRARY_PATH=nolibs)
    out = r.s.path("out")
    os.makedirs(out)
    z = os.path.join(out, "crate.zip")
    p = r.weft_cmd("export", "--format", "rocrate", "--job", r.job, "-o", z,
                   env=env)
    if p.returncode and "built without" in p.err:
        raise Skip("this weft has no libzip: " + p.err.strip())
    check(p.returncode == 1 and "install libzip4" in p.err and z in p.err,
          "-o crate.zip without libzip: %d %s" % (p.returncode, p.err))
    page = os.path.join(out, "dag.html")
    with open(page, "w") as f:
        f.write("the old page\n")
    for fmt in ("svg", "html"):
        p = r.weft_cmd("dag", "--job", r.job, "--format", fmt, "-o", page,
                       env=env)
        if p.returncode and "built without" in p.err:
            raise Skip("this weft has no Graphviz: " + p.err.strip())
        check(p.returncode == 1 and "install libgvc6" in p.err,
              "dag --format %s without libgvc: %d %s"
              % (fmt, p.returncode, p.err))
        with open(page) as f:
            check(f.read() == "the old page\n",
                  "a failed dag --format %s changed %s" % (fmt, page))
    check(os.listdir(out) == ["dag.html"], "failed outputs left %s"
          % os.listdir(out))
    # Everything else works without them, on the same store.
    crate = os.path.join(out, "crate")
    p = r.weft_cmd("export", "--format", "rocrate", "--job", r.job, "-o",
                   crate, env=env)
    check(p.returncode == 0 and os.path.exists(
        os.path.join(crate, "ro-crate-metadata.json")),
        "a crate directory without libzip: %s" % p.err)
    p = r.weft_cmd("dag", "--job", r.job, "--format", "json", env=env)
    check(p.returncode == 0 and json.loads(p.out) == r.dag,
          "the DAG without the libraries: %s" % p.err)


if __name__ == "__main__":
    sys.exit(main(CASES))
