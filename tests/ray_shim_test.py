#!/usr/bin/env python3
"""ray_shim_test.py - the Python shim for Ray (python-shim/weft), checked
against Ray's documented contract: what RAY_RUNTIME_ENV_HOOK returns (user
fields kept, a user py_executable wrapped, a user setup hook chained and
still called, a conflicting setting refused with a clear message, no Ray
needed), and what the worker setup hook tells a wrapper when Ray's
executor runs tasks (a stand-in of Ray's executor in tests/fake_ray).

    ray_shim_test.py --shim DIR [unittest args]

Standard library only.
"""

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = None  # set in main


def in_child(code, env=None, fake_ray=False, block_ray=False):
    """Run python code with the shim importable; returns stdout (JSON)."""
    paths = [SHIM] + ([os.path.join(HERE, "fake_ray")] if fake_ray else [])
    prelude = "import sys\n"
    if block_ray:
        prelude += "sys.modules['ray'] = None\n"  # import ray fails
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("WEFT_") or k == "RAY_RUNTIME_ENV_HOOK":
            del e[k]
    e["PYTHONPATH"] = os.pathsep.join(paths)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-c", prelude + code], env=e,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("child failed (%d):\n%s" % (
            r.returncode, r.stderr.decode()))
    return r.stdout.decode(), r.stderr.decode()


def hook(runtime_env, env=None, block_ray=True):
    out, _ = in_child(
        "import json, weft.ray as w\n"
        "print(json.dumps(w.runtime_env_hook(json.loads(%r))))"
        % json.dumps(runtime_env), env=env, block_ray=block_ray)
    return json.loads(out)


CONTRACT = {"WEFT_COORDINATOR": "tcp://10.0.0.1:7700",
            "WEFT_JOB": "6f1c1a52-7d3e-4a0e-9d3a-0c1b2d3e4f50",
            "WEFT_JOB_TOKEN": "secret", "WEFT_TRACER": "auto"}
WEFT = {"WEFT_BIN": "/opt/weft/bin/weft"}


class RuntimeEnvHook(unittest.TestCase):
    def test_no_ray_needed_and_fields_kept(self):
        user = {"pip": ["numpy"], "working_dir": "s3://b/x.zip",
                "env_vars": {"OMP_NUM_THREADS": "4"},
                "config": {"setup_timeout_seconds": 60}}
        got = hook(user, env=dict(CONTRACT, **WEFT))
        for k in ("pip", "working_dir", "config"):
            self.assertEqual(got[k], user[k])
        self.assertEqual(got["env_vars"]["OMP_NUM_THREADS"], "4")
        for k, v in CONTRACT.items():
            self.assertEqual(got["env_vars"][k], v)
        words = shlex.split(got["py_executable"])
        self.assertEqual(words[:4], ["/opt/weft/bin/weft", "wrap", "--ray",
                                     "--"])
        self.assertEqual(got["worker_process_setup_hook"],
                         "weft.ray.worker_setup")
        self.assertIn(SHIM, got["env_vars"]["PYTHONPATH"].split(os.pathsep))

    def test_user_py_executable_wrapped_with_args(self):
        got = hook({"py_executable": "/venv/bin/python -X importtime"},
                   env=WEFT)
        self.assertEqual(got["py_executable"],
                         "/opt/weft/bin/weft wrap --ray -- "
                         "/venv/bin/python -X importtime")
        again = hook(got, env=WEFT)  # applied twice: unchanged
        self.assertEqual(again["py_executable"], got["py_executable"])

    def test_user_setup_hook_chained_and_called(self):
        got = hook({"worker_process_setup_hook": "mysetup.go",
                    "env_vars": {"PYTHONPATH": "/user/lib"}}, env=WEFT)
        self.assertEqual(got["worker_process_setup_hook"],
                         "weft.ray.worker_setup")
        self.assertEqual(got["env_vars"]["WEFT_RAY_USER_SETUP_HOOK"],
                         "mysetup.go")
        self.assertEqual(got["env_vars"]["PYTHONPATH"],
                         SHIM + os.pathsep + "/user/lib")
        # In the worker: weft's hook runs, then the user's.
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "mysetup.py"), "w") as f:
                f.write("def go():\n    print('user hook ran')\n")
            out, _ = in_child(
                "sys.path.insert(0, %r)\nimport weft.ray as w\n"
                "w.worker_setup()\n" % d,
                env={"WEFT_RAY_USER_SETUP_HOOK": "mysetup.go"})
        self.assertEqual(out.strip(), "user hook ran")

    def test_callable_setup_hook_chained(self):
        out, _ = in_child(
            "import weft.ray as w, pickle\n"
            "def mine():\n    print('mine')\n"
            "env = w.runtime_env_hook({'worker_process_setup_hook': mine})\n"
            "h = env['worker_process_setup_hook']\n"
            "assert isinstance(h, w._Chained)\n"
            "pickle.dumps(h)\n"
            "h()\n", block_ray=True)
        self.assertEqual(out.strip(), "mine")

    def test_conflict_refused(self):
        with self.assertRaises(AssertionError) as cm:
            hook({"env_vars": {"WEFT_JOB": "another-job"}},
                 env=dict(CONTRACT, **WEFT))
        msg = str(cm.exception)
        self.assertIn("WeftConfigError", msg)
        self.assertIn("WEFT_JOB", msg)
        self.assertIn("another-job", msg)

    def test_wrapper_settings_passed_on(self):
        got = hook({}, env=dict(WEFT, WEFT_RAY_ACTOR_GRANULARITY="actor"))
        self.assertEqual(got["env_vars"]["WEFT_RAY_ACTOR_GRANULARITY"],
                         "actor")
        self.assertNotIn("WEFT_RAY_ACTOR_GRANULARITY",
                         hook({}, env=WEFT)["env_vars"])

    def test_bad_env_vars_refused(self):
        with self.assertRaises(AssertionError) as cm:
            hook({"env_vars": {"N": 3}}, env=WEFT)
        self.assertIn("must map strings to strings", str(cm.exception))

    def test_user_runtime_env_hook_runs_first(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "userhook.py"), "w") as f:
                f.write("def h(env):\n    env['env_vars'] = "
                        "{'FROM_USER': '1'}\n    return env\n")
            out, _ = in_child(
                "sys.path.insert(0, %r)\nimport json, weft.ray as w\n"
                "print(json.dumps(w.runtime_env_hook({})))" % d,
                env=dict(WEFT, WEFT_RAY_USER_ENV_HOOK="userhook.h"),
                block_ray=True)
        got = json.loads(out)
        self.assertEqual(got["env_vars"]["FROM_USER"], "1")
        self.assertTrue(got["py_executable"].startswith("/opt/weft/bin/weft"))


class FakeWrapper:
    """The wrapper's side of the control socket: records each message and
    answers 'ok'."""

    def __init__(self, path):
        self.path = path
        self.messages = []
        # The marker files the shim opens after each answer.
        for i in range(8):
            open(os.path.join(os.path.dirname(path), "mark.%d" % i),
                 "w").close()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.srv.bind(path)
        self.srv.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(conn,),
                             daemon=True).start()

    def conn(self, c):
        while True:
            m = c.recv(65536)
            if not m:
                return
            self.messages.append(json.loads(m))
            c.send(b"ok")

    def close(self):
        self.srv.close()


# The start of a Ray worker's code: the shim and the (fake) executor.
WORKER = ("import ray, weft.ray as w\n"
          "from ray._private.worker import global_worker as g\n")


def in_wrapped_worker(code):
    """Run WORKER + code in a child with a stand-in wrapper listening on
    its control socket: (stdout, stderr, the messages the wrapper got)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ctl")
        w = FakeWrapper(path)
        try:
            out, err = in_child(WORKER + code,
                                env={"WEFT_RAY_CONTROL": path},
                                fake_ray=True)
        finally:
            w.close()
    return out, err, w.messages


class WorkerSetup(unittest.TestCase):
    def test_tasks_reported_with_ray_ids(self):
        out, err, msgs = in_wrapped_worker(
            "g.function_actor_manager.functions['stage1'] = "
            "lambda x: x + 1\n"
            "w.worker_setup()\n"
            "print(g.execute_task('t-1', 'stage1', 41))\n"
            "print(g.execute_task('t-2', 'stage1', 1, actor_id='a-9'))\n")
        self.assertEqual(out.split(), ["42", "2"])
        ev = [(m["event"], m.get("task_id"), m.get("actor_id"), m["kind"],
               m.get("name")) for m in msgs]
        self.assertEqual(ev, [
            ("begin", "t-1", None, "task", "stage1"),
            ("end", "t-1", None, "task", "stage1"),
            ("begin", "t-2", "a-9", "actor_task", "stage1"),
            ("end", "t-2", "a-9", "actor_task", "stage1")])
        self.assertTrue(all(m["node_id"] == "node-1" and m["v"] == 1
                            for m in msgs))

    def test_seq_and_failure_reported(self):
        out, err, msgs = in_wrapped_worker(
            "def boom():\n    raise KeyError('x')\n"
            "g.function_actor_manager.functions['boom'] = boom\n"
            "g.function_actor_manager.functions['ok'] = lambda: 1\n"
            "w.worker_setup()\n"
            "try:\n    g.execute_task('t-1', 'boom')\n"
            "except KeyError:\n    print('raised')\n"
            "print(g.execute_task('t-2', 'ok'))\n")
        self.assertEqual(out.split(), ["raised", "1"])
        self.assertEqual([m["seq"] for m in msgs], [1, 2, 3, 4])
        self.assertEqual([m.get("failed") for m in msgs],
                         [None, True, None, None])
        self.assertNotIn("no longer sent", err)

    def test_wrapper_gone_never_fails_tasks(self):
        out, err = in_child(
            WORKER +
            "g.function_actor_manager.functions['f'] = lambda: 'done'\n"
            "w.worker_setup()\n"
            "print(g.execute_task('t-1', 'f'))\n"
            "print(g.execute_task('t-2', 'f'))\n",
            env={"WEFT_RAY_CONTROL": "/nonexistent/ctl"}, fake_ray=True)
        self.assertEqual(out.split(), ["done", "done"])
        self.assertEqual(err.count("no longer sent"), 1)

    def test_no_wrapper_no_hooks(self):
        out, _ = in_child(
            WORKER +
            "orig = g.function_actor_manager.get_execution_info\n"
            "w.worker_setup()\n"
            "print(g.function_actor_manager.get_execution_info == orig)\n",
            fake_ray=True)
        self.assertEqual(out.strip(), "True")


class Plugin(unittest.TestCase):
    def test_modify_context(self):
        out, _ = in_child(
            "import json, weft.ray as w\n"
            "class Ctx: pass\n"
            "c = Ctx(); c.py_executable = '/usr/bin/python3'; "
            "c.env_vars = {}\n"
            "p = w.WeftPlugin()\n"
            "p.validate({})\n"
            "p.modify_context([], {}, c)\n"
            "off = Ctx(); off.py_executable = 'py'; off.env_vars = {}\n"
            "p.modify_context([], {'weft': False}, off)\n"
            "print(json.dumps([c.py_executable, c.env_vars, "
            "off.py_executable]))\n",
            env=dict(CONTRACT, **WEFT), block_ray=True)
        py, env_vars, off = json.loads(out)
        self.assertEqual(py, "/opt/weft/bin/weft wrap --ray -- "
                             "/usr/bin/python3")
        self.assertEqual(env_vars["WEFT_JOB"], CONTRACT["WEFT_JOB"])
        self.assertEqual(off, "py")


def main():
    global SHIM
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--shim":
        SHIM = os.path.abspath(args[1])
        args = args[2:]
    else:
        SHIM = os.path.join(os.path.dirname(HERE), "python-shim")
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)


if __name__ == "__main__":
    main()
