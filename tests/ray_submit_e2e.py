#!/usr/bin/env python3
"""ray_submit_e2e.py - `weft submit -- ray job submit ...` (Ray
host-submit) with a stand-in `ray` on PATH that records its argv and
environment: the runtime env and entrypoint it receives are exactly as
docs/ray.md specifies, they agree field by field with what the Python hook
(python-shim/weft/ray.py) makes of the same runtime env, the stand-in's
exit status passes through, and a malformed or conflicting runtime env is
refused with a clear error before anything is submitted.

    ray_submit_e2e.py --weft PATH --shim DIR CASE
    ray_submit_e2e.py --list

Exit 0 pass, 1 fail, 77 skip. Standard library only.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from caselib import check  # noqa: E402

FAKE_RAY = """#!/bin/sh
# A stand-in for Ray's CLI: record argv, the weft part of the
# environment and the --runtime-env file (its text, mode and owner, while
# it exists), exit with $FAKE_RAY_EXIT.
python3 - "$@" <<'PY'
import json, os, sys
rec = {"argv": ["ray"] + sys.argv[1:],
       "env": {k: v for k, v in os.environ.items() if k.startswith("WEFT_")}}
if "--runtime-env" in sys.argv:
    p = sys.argv[sys.argv.index("--runtime-env") + 1]
    st = os.lstat(p)
    with open(p) as f:
        rec["runtime_env_file"] = {"path": p, "mode": st.st_mode & 0o7777,
                                   "uid": st.st_uid, "text": f.read()}
with open(os.environ["FAKE_RAY_RECORD"], "w") as f:
    json.dump(rec, f)
PY
exit ${FAKE_RAY_EXIT:-0}
"""


class Env:
    def __init__(self, weft, shim):
        self.weft = os.path.abspath(weft)
        self.shim = os.path.abspath(shim)
        self.root = tempfile.mkdtemp(prefix="weft-ray-submit-")
        self.proj = os.path.join(self.root, "proj")
        self.bin = os.path.join(self.root, "bin")
        for d in (self.proj, self.bin, os.path.join(self.root, "home")):
            os.mkdir(d)
        ray = os.path.join(self.bin, "ray")
        with open(ray, "w") as f:
            f.write(FAKE_RAY)
        os.chmod(ray, 0o755)
        self.record = os.path.join(self.root, "record.json")
        # Config for the cluster side: where weft and the shim are there.
        os.mkdir(os.path.join(self.proj, ".weft"))
        with open(os.path.join(self.proj, ".weft", "config.toml"), "w") as f:
            f.write('[ray]\nweft_binary = "/opt/weft/bin/weft"\n'
                    'python_path = "%s"\n' % self.shim)
        self.env = dict(os.environ, HOME=os.path.join(self.root, "home"),
                        PATH=self.bin + os.pathsep + os.environ["PATH"],
                        FAKE_RAY_RECORD=self.record)
        for k in list(self.env):
            if k.startswith("WEFT_"):
                del self.env[k]
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0")

    def submit(self, ray_args, exit_code=0):
        env = dict(self.env, FAKE_RAY_EXIT=str(exit_code))
        return subprocess.run(
            [self.weft, "submit", "--listen", "tcp://127.0.0.1:0", "--",
             "ray", "job", "submit"] + ray_args, cwd=self.proj, env=env,
            capture_output=True, timeout=120)

    def recorded(self):
        with open(self.record) as f:
            return json.load(f)

    def hook(self, runtime_env, contract):
        """What the Python hook makes of runtime_env, with that contract."""
        env = dict(os.environ, PYTHONPATH=self.shim,
                   WEFT_BIN="/opt/weft/bin/weft", **contract)
        code = ("import json, sys, weft.ray as w\n"
                "print(json.dumps(w.runtime_env_hook(json.load(sys.stdin))))")
        r = subprocess.run([sys.executable, "-c", code],
                           input=json.dumps(runtime_env).encode(), env=env,
                           capture_output=True, timeout=60)
        check(r.returncode == 0, "the Python hook failed: %s" % r.stderr)
        return json.loads(r.stdout)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def case_rewrite(e):
    """The runtime env and the entrypoint Ray receives."""
    user = {"pip": ["numpy"], "working_dir": ".",
            "env_vars": {"OMP_NUM_THREADS": "4"},
            "worker_process_setup_hook": "mine.setup",
            "py_executable": "/venv/bin/python -X dev"}
    r = e.submit(["--address", "http://head:8265", "--no-wait",
                  "--runtime-env-json", json.dumps(user), "--",
                  "python", "driver.py", "--lr", "0.1"], exit_code=5)
    check(r.returncode == 5, "weft submit exited %d, expected the "
          "launcher's 5; stderr:\n%s" % (r.returncode, r.stderr.decode()))
    rec = e.recorded()
    argv = rec["argv"]
    i = argv.index("--runtime-env")
    check(argv[:i] == ["ray", "job", "submit", "--address",
                       "http://head:8265", "--no-wait"],
          "options before the runtime env: %s" % argv[:i])
    check(argv[i + 2:] == ["--", "/opt/weft/bin/weft", "wrap", "--", "sh",
                           "-c", "'python driver.py --lr 0.1'"],
          "entrypoint: %s" % argv[i + 2:])
    got = json.loads(rec["runtime_env_file"]["text"])
    contract = rec["env"]
    for k in ("WEFT_COORDINATOR", "WEFT_JOB", "WEFT_JOB_TOKEN"):
        check(contract.get(k), "%s not exported to the launcher" % k)
        check(got["env_vars"].get(k) == contract[k],
              "runtime env %s=%r, launcher has %r"
              % (k, got["env_vars"].get(k), contract[k]))
    check(got["pip"] == ["numpy"] and got["working_dir"] == ".",
          "user fields changed: %s" % got)
    check(got["env_vars"]["OMP_NUM_THREADS"] == "4", "user env var lost")
    check(got["py_executable"] ==
          "/opt/weft/bin/weft wrap --ray -- /venv/bin/python -X dev",
          "py_executable: %r" % got["py_executable"])
    check(got["worker_process_setup_hook"] == "weft.ray.worker_setup" and
          got["env_vars"]["WEFT_RAY_USER_SETUP_HOOK"] == "mine.setup",
          "setup hook not chained: %s" % got)
    check(got["env_vars"]["PYTHONPATH"].split(":")[0] == e.shim,
          "PYTHONPATH: %r" % got["env_vars"]["PYTHONPATH"])
    check(got["env_vars"]["RAY_RUNTIME_ENV_HOOK"] ==
          "weft.ray.runtime_env_hook", "no RAY_RUNTIME_ENV_HOOK for the "
          "driver")
    # Field by field the same as the Python hook's, but for what only the
    # submit side adds (the driver's RAY_RUNTIME_ENV_HOOK).
    want = e.hook(user, {k: contract[k] for k in
                         ("WEFT_COORDINATOR", "WEFT_JOB", "WEFT_JOB_TOKEN")})
    got_vars = dict(got["env_vars"])
    del got_vars["RAY_RUNTIME_ENV_HOOK"]
    check(dict(got, env_vars=got_vars) == want,
          "submit and the Python hook disagree:\nsubmit %s\nhook   %s"
          % (json.dumps(dict(got, env_vars=got_vars), sort_keys=True),
             json.dumps(want, sort_keys=True)))


def case_no_runtime_env(e):
    """No runtime env given: one is made; shell text survives."""
    r = e.submit(["--", "echo 'a b' && python x.py"])
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    argv = e.recorded()["argv"]
    got = json.loads(e.recorded()["runtime_env_file"]["text"])
    check("py_executable" not in got, "py_executable set without the "
          "user's: the driver's hook picks the interpreter: %s" % got)
    check(argv[-1] == "'echo '\\''a b'\\'' && python x.py'",
          "entrypoint text: %r" % argv[-1])


def case_malformed(e):
    """Malformed JSON: exit 2, line and column named, nothing submitted."""
    r = e.submit(["--runtime-env-json", '{"pip": [}', "--", "python",
                  "d.py"])
    err = r.stderr.decode()
    check(r.returncode == 2, "exit %d, expected 2: %s" % (r.returncode, err))
    check("line 1, column 10" in err and "nothing was submitted" in err,
          "unclear error: %s" % err)
    check(not os.path.exists(e.record), "ray ran although the runtime env "
          "is malformed")


def case_conflict(e):
    """A user env_vars value for a contract variable: refused, named."""
    r = e.submit(["--runtime-env-json",
                  '{"env_vars": {"WEFT_JOB": "mine"}}', "--", "true"])
    err = r.stderr.decode()
    check(r.returncode == 2 and "WEFT_JOB" in err and "mine" in err,
          "exit %d: %s" % (r.returncode, err))
    check(not os.path.exists(e.record), "ray ran despite the conflict")


def case_token_private(e):
    """The job token is on no command line (every user reads those in ps):
    the runtime env reaches Ray in a file only the user can read, which is
    gone when the job has ended."""
    r = e.submit(["--runtime-env-json", '{"env_vars": {"A": "1"}}', "--",
                  "python", "x.py"])
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    rec = e.recorded()
    token = rec["env"].get("WEFT_JOB_TOKEN")
    check(token, "no token exported to the launcher")
    check(not any(token in a for a in rec["argv"]),
          "the token is on Ray's command line: %s" % rec["argv"])
    f = rec.get("runtime_env_file")
    check(f and f["mode"] == 0o600 and f["uid"] == os.geteuid(),
          "runtime env file: %r (expected mode 600, owned by the user)" % f)
    d = os.path.dirname(f["path"])
    check(not os.path.exists(f["path"]) and not os.path.exists(d),
          "%s is left behind after the job" % f["path"])
    check(json.loads(f["text"])["env_vars"]["WEFT_JOB_TOKEN"] == token,
          "the file does not carry the job's token")


CASES = {"rewrite": case_rewrite, "no_runtime_env": case_no_runtime_env,
         "token_private": case_token_private,
         "malformed": case_malformed, "conflict": case_conflict}


def main():
    return caselib.main(CASES, "ray.submit", lambda a: Env(a.weft, a.shim),
                        needs=("weft", "shim"), ok="ok")


if __name__ == "__main__":
    sys.exit(main())
