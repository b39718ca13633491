#!/usr/bin/env python3
"""openlineage_e2e.py - OpenLineage export and live emission end to end: a
real job (weft submit, a real coordinator, wrappers tracing real commands
under two node names, a Ray-style worker running tasks, failing tasks),
its events checked against the OpenLineage 2-0-2 schemas (offline: every
$ref resolved from the copies in ../shared/data/openlineage, or
$WEFT_OPENLINEAGE_SCHEMAS) and against the truth written down before the
job runs; and a test HTTP endpoint that must receive every event of the
job exactly once, although it answers 503 for the first half of the job
and the coordinator is stopped and started again in between.

    openlineage_e2e.py --weft PATH CASE
    openlineage_e2e.py --list

Cases:
  job        the distributed job above: export validates, says what the
             truth says (tasks, parents, inputs, outputs, versions,
             lifecycle, failures); exporting twice gives the same bytes;
             the endpoint got each exported event once, with the API key.
  run_file   `weft run` with openlineage.file: the file gets the events
             `weft export` prints, byte for byte; a bad API key file is
             refused before the workload runs.

Exit status: 0 pass, 1 fail (with what differed), 77 skip (with why).
"""

import glob
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from wraplib import (Coordinator, Fail, Job, Scratch, Skip, check,  # noqa
                     log, main, run, wrap_env)

SCHEMAS = os.environ.get("WEFT_OPENLINEAGE_SCHEMAS") or os.path.join(
    os.path.dirname(os.path.dirname(HERE)), "shared", "data", "openlineage")
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FACETS = {  # facet key -> its schema file and definition
    "parent": "ParentRunFacet",
    "processing_engine": "ProcessingEngineRunFacet",
    "errorMessage": "ErrorMessageRunFacet",
    "jobType": "JobTypeJobFacet",
    "version": "DatasetVersionDatasetFacet",
    "lifecycleStateChange": "LifecycleStateChangeDatasetFacet",
    "outputStatistics": "OutputStatisticsOutputDatasetFacet",
}


class Validator:
    """The spec and its facets, every $ref served from the local files."""

    def __init__(self):
        try:
            import jsonschema
        except ImportError:
            raise Skip("python3-jsonschema is not installed "
                       "(scripts/install-deps)")
        spec = os.path.join(SCHEMAS, "OpenLineage.json")
        if not os.path.exists(spec):
            raise Skip("the OpenLineage schemas are not at %s (set "
                       "WEFT_OPENLINEAGE_SCHEMAS)" % SCHEMAS)
        docs = {}
        for f in [spec] + glob.glob(os.path.join(SCHEMAS, "facets", "*")):
            with open(f) as fh:
                d = json.load(fh)
            docs[d["$id"]] = d
        self.docs = docs
        self.js = jsonschema
        cls = jsonschema.validators.validator_for(docs[SPEC])
        self.event = self._validator(cls, docs[SPEC], "#/$defs/RunEvent")
        self.facets = {}
        for key, name in FACETS.items():
            doc = [d for i, d in docs.items() if i.endswith("/%s.json" % name)]
            check(doc, "no schema for facet %s in %s" % (name, SCHEMAS))
            self.facets[key] = self._validator(cls, doc[0],
                                               "#/$defs/%s" % name)

    def _validator(self, cls, doc, pointer):
        schema = {"$ref": doc["$id"] + pointer}
        try:  # jsonschema >= 4.18: the referencing library
            from referencing import Registry, Resource
            reg = Registry().with_resources(
                (i, Resource.from_contents(d)) for i, d in self.docs.items())
            return cls(schema, registry=reg)
        except ImportError:  # Debian 12's 4.10: a resolver with a store
            res = self.js.RefResolver(base_uri=doc["$id"], referrer=doc,
                                      store=dict(self.docs))
            return cls(schema, resolver=res)

    def check(self, ev, where):
        errs = sorted(self.event.iter_errors(ev), key=str)
        check(not errs, "%s: not a RunEvent: %s" % (where, errs[:3]))
        facets = [ev["run"].get("facets", {}), ev["job"].get("facets", {})]
        for ds in ev.get("inputs", []) + ev.get("outputs", []):
            facets += [ds.get("facets", {}), ds.get("outputFacets", {})]
        for group in facets:
            for key, facet in group.items():
                check(key in self.facets, "%s: facet %s has no schema here"
                      % (where, key))
                errs = list(self.facets[key].iter_errors(facet))
                check(not errs, "%s: facet %s: %s" % (where, key, errs[:3]))
        uuid.UUID(ev["run"]["runId"])
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",
                           ev["eventTime"]), "%s: eventTime %r"
              % (where, ev["eventTime"]))


def blake(data):
    return "blake2b-256:" + hashlib.blake2b(data, digest_size=32).hexdigest()


def export(weft, project, *args):
    p = run([weft, "export", "--format", "openlineage", *args], cwd=project,
            check_rc=0)
    return p.stdout


class Endpoint:
    """An OpenLineage HTTP endpoint on a free port: 503 while down, else
    202; keeps each accepted body and the Authorization headers seen."""

    def __init__(self):
        self.down = True
        self.bodies, self.auth, self.refused = [], set(), 0
        ep = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ok = self.path == "/api/v1/lineage" and not ep.down
                if ok:
                    ep.bodies.append(body)
                    ep.auth.add(self.headers.get("Authorization"))
                else:
                    ep.refused += 1
                self.send_response(202 if ok else 503)
                self.end_headers()
                self.wfile.write(b"" if ok else b"down for a while")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()


def status(weft, project):
    p = run([weft, "status", "--json"], cwd=project, check_rc=0)
    return json.loads(p.out)["openlineage"]


class ConfiguredCoordinator(Coordinator):
    """A coordinator started in its project, so that it reads the
    project's .weft/config.toml."""

    def start(self):
        out = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [self.weft, "coordinator", "--listen", self.url, "--store",
             self.store], stdout=out, stderr=out,
            cwd=os.path.dirname(os.path.dirname(self.store)))
        out.close()
        from wraplib import wait_port
        wait_port(self.host, self.port, proc=self.proc)
        return self


def node_env(job, spool, node, proc):
    """A wrapper's environment as Slurm would give it on node."""
    return wrap_env(job.contract, spool, SLURM_JOB_ID="77",
                    SLURM_STEP_ID="0", SLURM_PROCID=str(proc),
                    SLURM_NODEID=str(proc), SLURMD_NODENAME=node)


def ray_worker(weft, job, s, out):
    """The Ray-style worker of ray_cluster_e2e.py: tasks stage1 (twice),
    stage2, Counter calls, and "fails" (exit 1), each its own task whose
    parent is the worker's record."""
    try:
        import ray_cluster_e2e as rc
    except ImportError as e:
        raise Skip("tests/ray_cluster_e2e.py cannot be imported: %s" % e)
    env = rc.clean_env(**job.contract)
    env.update(PYTHONPATH=os.pathsep.join([rc.SHIM, rc.FAKE_RAY]), OUT=out,
               PIPELINE_DIR=out, RAY_JOB_ID="03000000",
               WEFT_SPOOL=s.path("spool-ray"),
               WEFT_HASH_CACHE=s.path("hashes-ray.db"), WEFT_TRACER="ptrace")
    os.makedirs(out, exist_ok=True)
    p = run([weft, "wrap", "--ship-timeout", "60", "--ray", "--",
             sys.executable, "-c", rc.WORKER], env=env, timeout=300)
    check(p.returncode == 0, "weft wrap --ray exited %d: %s"
          % (p.returncode, p.err))


def by_run(events):
    runs = {}
    for ev in events:
        runs.setdefault(ev["run"]["runId"], []).append(ev)
    return runs


def datasets(ev, side):
    return {(d["namespace"], d["name"]): d for d in ev[side]}


def job(weft):
    v = Validator()
    s = Scratch("ol-job")
    ep = Endpoint()
    project = s.path("proj")
    os.makedirs(os.path.join(project, ".weft"))
    key = s.path("ol.key")
    with open(key, "w") as f:
        f.write("s3cret-token\n")
    os.chmod(key, 0o600)
    with open(os.path.join(project, ".weft", "config.toml"), "w") as f:
        f.write('[openlineage]\nurl = "%s/"\napi_key_file = "%s"\n'
                'namespace = "lab"\n' % (ep.url, key))
    coord = ConfiguredCoordinator(weft, project).start()
    j = None
    try:
        j = Job(weft, coord, project, status=0)
        d = s.path("data")
        os.makedirs(d)
        spool = s.path("spool")
        # The truth, written down first: task -> (node, exit, inputs,
        # outputs with their content and lifecycle).
        raw, cooked = b"raw numbers\n", b"cooked: raw numbers\n"
        with open(os.path.join(d, "old.txt"), "w") as f:
            f.write("to be replaced\n")
        with open(os.path.join(d, "gone.txt"), "w") as f:
            f.write("to be deleted\n")
        with open(os.path.join(d, "before.txt"), "w") as f:
            f.write("to be renamed\n")
        tasks = [
            ("ingest", "nodea", 0,
             "printf 'raw numbers\\n' > raw.txt; echo new > old.txt; "
             "rm gone.txt; mv before.txt after.txt"),
            ("cook", "nodeb", 0, "sed 's/^/cooked: /' raw.txt > cooked.txt"),
            ("judge", "nodeb", 4, "cat cooked.txt > /dev/null; exit 4"),
        ]
        for i, (name, node, rc, script) in enumerate(tasks[:2]):
            p = run([weft, "wrap", "--ship-timeout", "60",
                     "--", "sh", "-c", script], cwd=d,
                    env=node_env(j, spool, node, i))
            check(p.returncode == rc, "%s exited %d: %s"
                  % (name, p.returncode, p.err))
        # Half the job stored, nothing delivered: the events wait in the
        # store, and a restart of the coordinator loses none of them.
        end = time.monotonic() + 30
        while time.monotonic() < end and not ep.refused:
            time.sleep(0.05)
        check(ep.refused, "the coordinator never tried the endpoint")
        check(coord.kill(15) == 0, "the coordinator did not stop cleanly")
        st = status(weft, project)
        check(len(st) == 1 and st[0]["waiting"] >= 5 and st[0]["sent"] == 0
              and "503" in (st[0]["last_error"] or ""),
              "while the endpoint is down: %s" % st)
        coord.start()
        ep.down = False
        name, node, rc, script = tasks[2]
        p = run([weft, "wrap", "--ship-timeout", "60", "--",
                 "sh", "-c", script], cwd=d, env=node_env(j, spool, node, 2))
        check(p.returncode == rc, "judge exited %d: %s" % (p.returncode,
                                                           p.err))
        ray_worker(weft, j, s, s.path("ray"))
        rc_, err = j.end()
        check(rc_ == 0, "the job ended with %s: %s" % (rc_, err))

        text = export(weft, project, "--job", j.id)
        check(text == export(weft, project, "--job", j.id[:8]),
              "two exports differ")
        outf = s.path("events.ndjson")
        run([weft, "export", "--format", "openlineage", "--job", j.id,
             "-o", outf], cwd=project, check_rc=0)
        with open(outf, "rb") as f:
            check(f.read() == text, "-o FILE differs from stdout")
        lines = text.splitlines()
        events = [json.loads(line) for line in lines]
        for i, ev in enumerate(events):
            v.check(ev, "event %d" % i)
        check(all(ev["job"]["namespace"] == "lab" for ev in events),
              "namespace: %s" % {ev["job"]["namespace"] for ev in events})

        runs = by_run(events)
        for rid, evs in runs.items():
            kinds = sorted(e["eventType"] for e in evs)
            check(len(kinds) == 2 and kinds[1] == "START" and
                  kinds[0] in ("COMPLETE", "FAIL"),
                  "run %s has events %s" % (rid, kinds))
        ends = {r: [e for e in evs if e["eventType"] != "START"][0]
                for r, evs in runs.items()}
        jobrun = [r for r, e in ends.items()
                  if e["job"]["facets"]["jobType"]["jobType"] == "JOB"]
        check(len(jobrun) == 1, "one run for the job: %s" % jobrun)
        jobrun = jobrun[0]
        short = {}
        for r, e in ends.items():
            short[e["job"]["name"].rsplit(".", 1)[-1]] = short.get(
                e["job"]["name"].rsplit(".", 1)[-1], []) + [e]
        dag = json.loads(run([weft, "dag", "--job", j.id, "--format",
                              "json"], cwd=project, check_rc=0).out)
        check(len(runs) == len(dag["tasks"]) + 1,
              "%d runs for %d tasks" % (len(runs), len(dag["tasks"])))

        def one(name):
            check(len(short.get(name, [])) == 1, "task %s: %s"
                  % (name, sorted(short)))
            return short[name][0]

        def slurm(i):
            # Slurm's task name: job.step.proc@node
            got = [e for e in ends.values() if e["job"]["name"].endswith(
                ".77.0.%d@%s" % (i, tasks[i][1]))]
            check(len(got) == 1, "task %d: %s" % (i, sorted(
                e["job"]["name"][-40:] for e in ends.values())))
            return got[0]

        ingest, cook, judge = slurm(0), slurm(1), slurm(2)
        fails = one("fails")
        for e in (ingest, cook, judge):
            par = e["run"]["facets"]["parent"]
            check(par["run"]["runId"] == jobrun and
                  par["root"]["run"]["runId"] == jobrun,
                  "%s's parent: %s" % (e["job"]["name"], par))
        check(judge["eventType"] == "FAIL" and "status 4" in
              judge["run"]["facets"]["errorMessage"]["message"],
              "judge: %s" % judge["run"])
        check(fails["eventType"] == "FAIL" and
              "errorMessage" in fails["run"]["facets"], "fails: %s"
              % fails["run"])
        check(ingest["eventType"] == "COMPLETE" and
              "errorMessage" not in ingest["run"]["facets"], "ingest")
        # Ray tasks: their parent is the worker's run, under the job.
        worker = [t for t in dag["tasks"] if t["parent"] is None and
                  t["name"].startswith("ray.")]
        check(len(worker) == 1, "one Ray worker: %s" % dag["tasks"])
        wid = worker[0]["id"]
        wrun = [r for r, e in ends.items()
                if e["job"]["name"].endswith("." + worker[0]["name"])]
        check(len(wrun) == 1, "the worker's run")
        for name in ("stage1", "stage2", "fails"):
            for e in short[name]:
                par = e["run"]["facets"]["parent"]
                check(par["run"]["runId"] == wrun[0] and
                      par["root"]["run"]["runId"] == jobrun,
                      "%s's parent %s, expected the worker %s (%s)"
                      % (name, par, wrun[0], wid))

        # Datasets: node-local files are named by the node's host.
        p = lambda n: os.path.join(d, n)  # noqa: E731
        a, b = "file://nodea", "file://nodeb"
        out = datasets(ingest, "outputs")
        want = {(a, p("raw.txt")): ("CREATE", blake(raw)),
                (a, p("old.txt")): ("OVERWRITE", blake(b"new\n")),
                (a, p("gone.txt")): ("DROP", None),
                (a, p("after.txt")): ("RENAME", blake(b"to be renamed\n"))}
        check(set(out) == set(want), "ingest writes %s, expected %s"
              % (sorted(out), sorted(want)))
        for k, (change, version) in want.items():
            f = out[k]["facets"]
            check(f["lifecycleStateChange"]["lifecycleStateChange"] ==
                  change, "%s: %s, expected %s" % (k, f, change))
            check(f.get("version", {}).get("datasetVersion") == version,
                  "%s: version %s, expected %s" % (k, f, version))
        prev = out[(a, p("after.txt"))]["facets"]["lifecycleStateChange"]
        check(prev["previousIdentifier"] == {"namespace": a,
                                             "name": p("before.txt")},
              "rename: %s" % prev)
        check(datasets(cook, "inputs") == {} or set(datasets(
            cook, "inputs")) == {(b, p("raw.txt"))},
              "cook reads %s" % sorted(datasets(cook, "inputs")))
        cin = datasets(cook, "inputs")[(b, p("raw.txt"))]
        check(cin["facets"]["version"]["datasetVersion"] == blake(raw),
              "cook read raw.txt at %s" % cin)
        cout = datasets(cook, "outputs")
        check(set(cout) == {(b, p("cooked.txt"))} and
              cout[(b, p("cooked.txt"))]["facets"]["version"]
              ["datasetVersion"] == blake(cooked),
              "cook writes %s" % cout)
        check(set(datasets(judge, "inputs")) == {(b, p("cooked.txt"))} and
              datasets(judge, "outputs") == {}, "judge: %s %s"
              % (judge["inputs"], judge["outputs"]))
        check(not any(ds["name"].startswith(("/usr/", "/lib/", "/etc/"))
                      for ev in events for ds in ev["inputs"]),
              "system inputs without --all")

        # The endpoint: every exported event once, with the API key.
        end = time.monotonic() + 60
        while time.monotonic() < end and status(weft, project)[0]["waiting"]:
            time.sleep(0.1)
        st = status(weft, project)[0]
        check(st["waiting"] == 0 and st["refused"] == 0, "status %s" % st)
        got = sorted(ep.bodies)
        check(got == sorted(lines),
              "the endpoint got %d events (%d distinct), the export has %d"
              "; missing %s; extra %s"
              % (len(got), len(set(got)), len(lines),
                 [json.loads(x)["eventType"] for x in set(lines) - set(got)],
                 [json.loads(x)["eventType"] for x in set(got) - set(lines)]))
        check(st["sent"] == len(lines), "status says %d sent" % st["sent"])
        check(ep.auth == {"Bearer s3cret-token"}, "auth %s" % ep.auth)
    finally:
        if j:
            j.end()
        coord.kill()
        ep.close()
        s.close()


def run_file(weft):
    s = Scratch("ol-run")
    try:
        project = s.path("proj")
        os.makedirs(os.path.join(project, ".weft"))
        events = s.path("events.ndjson")
        cfg = os.path.join(project, ".weft", "config.toml")
        with open(cfg, "w") as f:
            f.write('[openlineage]\nfile = "%s"\n' % events)
        env = dict(os.environ, WEFT_TRACER="ptrace")
        for script in ("echo one > a.txt", "cat a.txt > b.txt; exit 2"):
            run([weft, "run", "--", "sh", "-c", script], cwd=project,
                env=env)
        with open(events, "rb") as f:
            got = f.read()
        text = export(weft, project)
        check(got == text, "the file differs from the export:\n%s\n---\n%s"
              % (got.decode(errors="replace"), text.decode(errors="replace")))
        check(len(text.splitlines()) == 8, "8 events for 2 runs: %s" % text)
        # A key file others may read: refused before anything runs.
        key = s.path("key")
        with open(key, "w") as f:
            f.write("k\n")
        os.chmod(key, 0o644)
        with open(cfg, "w") as f:
            f.write('[openlineage]\nurl = "http://127.0.0.1:9"\n'
                    'api_key_file = "%s"\n' % key)
        marker = s.path("ran")
        p = run([weft, "run", "--", "touch", marker], cwd=project, env=env)
        check(p.returncode == 2 and not os.path.exists(marker) and
              key in p.err and "others" in p.err,
              "a world-readable key file: exit %d, %s" % (p.returncode,
                                                          p.err))
    finally:
        s.close()


CASES = {"job": job, "run_file": run_file}

if __name__ == "__main__":
    sys.exit(main(CASES))
