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
  live_wrap  `weft wrap` to a `weft coordinator` with openlineage.url: the
             endpoint gets a task's START while the task still runs (its
             workload waits for a file the test makes only then), then
             its COMPLETE; a task run while the endpoint is down, and one
             started while the coordinator is down, lose nothing: every
             event of the job arrives once, as `weft export` prints it.
  live_run   the same for `weft run`: START while the workload runs, a run
             while the endpoint is down, the next run delivering what
             waited; every event once.

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


def close_job(j, coord, ep, s):
    """What a job case started, stopped (whatever it got to)."""
    if j:
        j.end()
    coord.kill()
    ep.close()
    s.close()


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
        check_delivered(weft, project, ep, lines)
        check(ep.auth == {"Bearer s3cret-token"}, "auth %s" % ep.auth)
    finally:
        close_job(j, coord, ep, s)


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


# A workload that waits (at most a minute) for the file GO, made by the
# test once the endpoint got the task's START: then that START came while
# the task ran. Exit 0 only when GO came.
WAIT_FOR_GO = ("i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.05; "
               "i=$((i+1)); done; test -e %s && echo ran > %s")


def task_starts(ep):
    return [json.loads(b) for b in list(ep.bodies)
            if json.loads(b)["eventType"] == "START" and
            json.loads(b)["job"]["facets"]["jobType"]["jobType"] == "TASK"]


def wait_for(cond, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.05)
    return cond()


def start_seen_while_running(ep, proc, go, before, what):
    """Wait until the endpoint has a task START more than before, while
    proc (whose workload waits for go) still runs; then let it finish.
    Returns (proc's exit status, that START)."""
    got = wait_for(lambda: len(task_starts(ep)) > before)
    running = proc.poll() is None
    open(go, "w").close()
    out, err = proc.communicate(timeout=120)
    check(got, "%s: no START reached the endpoint while the task ran: "
          "%s" % (what, err.decode(errors="replace")))
    check(running, "%s ended before its START arrived" % what)
    return proc.returncode, task_starts(ep)[before]


def check_delivered(weft, project, ep, lines):
    """Nothing waits, and the endpoint got each of lines (the exported
    events) once."""
    check(wait_for(lambda: status(weft, project)[0]["waiting"] == 0),
          "events still waiting: %s" % status(weft, project))
    got = sorted(ep.bodies)
    check(got == sorted(lines),
          "the endpoint got %d events (%d distinct), the export has %d; "
          "missing %s; extra %s"
          % (len(got), len(set(got)), len(lines),
             [json.loads(x)["eventType"] for x in set(lines) - set(got)],
             [json.loads(x)["eventType"] for x in set(got) - set(lines)]))
    st = status(weft, project)[0]
    check(st["sent"] == len(lines) and st["refused"] == 0, "status %s" % st)


def check_once(v, weft, project, ep, job_id=None):
    """Everything delivered; the endpoint got each exported event once;
    every run a START then one end. Returns the events."""
    check(wait_for(lambda: status(weft, project)[0]["waiting"] == 0),
          "events still waiting: %s" % status(weft, project))
    text = export(weft, project, *(["--job", job_id] if job_id else []))
    lines = text.splitlines()
    events = [json.loads(x) for x in lines]
    for i, ev in enumerate(events):
        v.check(ev, "event %d" % i)
    check_delivered(weft, project, ep, lines)
    for rid, evs in by_run(events).items():
        kinds = [e["eventType"] for e in evs]
        check(len(kinds) == 2 and kinds[0] == "START" and
              kinds[1] in ("COMPLETE", "FAIL") and
              evs[0]["eventTime"] <= evs[1]["eventTime"],
              "run %s: %s" % (rid, [(e["eventType"], e["eventTime"])
                                    for e in evs]))
    return events


def live_wrap(weft):
    v = Validator()
    s = Scratch("ol-live-wrap")
    ep = Endpoint()
    ep.down = False
    project = s.path("proj")
    os.makedirs(os.path.join(project, ".weft"))
    with open(os.path.join(project, ".weft", "config.toml"), "w") as f:
        f.write('[openlineage]\nurl = "%s"\n' % ep.url)
    coord = ConfiguredCoordinator(weft, project).start()
    j = None
    try:
        j = Job(weft, coord, project, status=0)
        d, spool = s.path("data"), s.path("spool")
        os.makedirs(d)

        def wrap(i, script):
            return subprocess.Popen(
                [weft, "wrap", "--ship-timeout", "60", "--", "sh", "-c",
                 script], cwd=d, env=node_env(j, spool, "node%d" % i, i),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        # 1: its START while it runs.
        go = s.path("go1")
        rc, start = start_seen_while_running(
            ep, wrap(0, WAIT_FOR_GO % (go, go, "one.txt")), go, 0, "task 1")
        check(rc == 0, "task 1 exited %d" % rc)
        check(start["job"]["name"].endswith(".77.0.0@node0"),
              "task 1's START: %s" % start["job"])
        check(start["inputs"] == [] and start["outputs"] == [],
              "a START knows no datasets yet: %s" % start)
        # 2: the endpoint is down for all of it; its events wait.
        ep.down = True
        p = wrap(1, "echo two > two.txt")
        p.communicate(timeout=120)
        check(p.returncode == 0, "task 2 exited %d" % p.returncode)
        check(wait_for(lambda: status(weft, project)[0]["waiting"] >= 2),
              "task 2's events are not waiting: %s"
              % status(weft, project))
        # 3: started while the coordinator is down (its start goes with
        # its fragments, or when the coordinator is back), ended once it
        # is back and the endpoint too.
        check(coord.kill(15) == 0, "the coordinator did not stop cleanly")
        go = s.path("go3")
        p = wrap(2, WAIT_FOR_GO % (go, go, "three.txt"))
        time.sleep(0.5)  # not a timing assertion: only lets it start
        coord.start()
        ep.down = False
        open(go, "w").close()
        p.communicate(timeout=120)
        check(p.returncode == 0, "task 3 exited %d" % p.returncode)
        rc_, err = j.end()
        check(rc_ == 0, "the job ended with %s: %s" % (rc_, err))
        events = check_once(v, weft, project, ep, j.id)
        check(len(events) == 2 + 3 * 2, "%d events for a job of 3 tasks"
              % len(events))
        check(start in events, "task 1's live START is not the exported "
              "one")
    finally:
        close_job(j, coord, ep, s)


def live_run(weft):
    v = Validator()
    s = Scratch("ol-live-run")
    ep = Endpoint()
    ep.down = False
    try:
        project = s.path("proj")
        os.makedirs(os.path.join(project, ".weft"))
        with open(os.path.join(project, ".weft", "config.toml"), "w") as f:
            f.write('[openlineage]\nurl = "%s"\n' % ep.url)
        env = dict(os.environ, WEFT_TRACER="ptrace")

        def weft_run(script):
            return subprocess.Popen(
                [weft, "run", "--", "sh", "-c", script], cwd=project,
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        go = s.path("go1")
        rc, start = start_seen_while_running(
            ep, weft_run(WAIT_FOR_GO % (go, go, "one.txt")), go, 0, "run 1")
        check(rc == 0, "run 1 exited %d" % rc)
        check(start["inputs"] == [] and start["outputs"] == [],
              "a START knows no datasets yet: %s" % start)
        # The endpoint down for a whole run: its events wait...
        ep.down = True
        p = weft_run("echo two > two.txt")
        p.communicate(timeout=120)
        check(p.returncode == 0, "run 2 exited %d" % p.returncode)
        st = status(weft, project)
        check(st[0]["waiting"] == 4 and "503" in (st[0]["last_error"] or ""),
              "run 2's events are not waiting: %s" % st)
        # ...and the next run sends them, then its own START while it
        # runs.
        ep.down = False
        go = s.path("go3")
        rc, start3 = start_seen_while_running(
            ep, weft_run(WAIT_FOR_GO % (go, go, "three.txt")), go, 2,
            "run 3")
        check(rc == 0, "run 3 exited %d" % rc)
        events = check_once(v, weft, project, ep)
        check(len(events) == 3 * 4, "%d events for 3 runs" % len(events))
        check(start in events and start3 in events,
              "a live START is not the exported one")
    finally:
        ep.close()
        s.close()


CASES = {"job": job, "run_file": run_file, "live_wrap": live_wrap,
         "live_run": live_run}

if __name__ == "__main__":
    sys.exit(main(CASES))
