"""A stand-in for the parts of Ray that weft's shim touches, shaped as in
Ray 2.43+: ray.init() (which calls RAY_RUNTIME_ENV_HOOK with the job's
runtime env and uses what it returns), ray.get_runtime_context() and
ray._private.worker.global_worker.function_actor_manager.get_execution_info,
which Ray's task executor calls to find the function of each task it runs.
Ray itself cannot be installed on these machines (no PyPI); tests use this
to drive the shim the way Ray's worker does. tests/fake_ray/raylet.py and
default_worker.py start and run workers the way Ray's raylet does.
"""

import importlib
import os

from ray._private import worker as _worker

# What ray.init() settled on for this job (the driver's).
runtime_env = None


def init(address=None, runtime_env=None, **_ignored):
    """As Ray's: RAY_RUNTIME_ENV_HOOK="module.fn" is imported and called
    with the job's runtime env; its return value is the runtime env."""
    env = dict(runtime_env or {})
    hook = os.environ.get("RAY_RUNTIME_ENV_HOOK")
    if hook:
        mod, _, fn = hook.rpartition(".")
        env = getattr(importlib.import_module(mod), fn)(env)
    globals()["runtime_env"] = env
    return env


class _Context:
    def get_task_id(self):
        return _worker.current["task_id"]

    def get_actor_id(self):
        return _worker.current["actor_id"]

    def get_job_id(self):
        return _worker.current["job_id"]

    def get_node_id(self):
        return _worker.current["node_id"]

    def get_worker_id(self):
        return "w-%d" % __import__("os").getpid()


def get_runtime_context():
    return _Context()
