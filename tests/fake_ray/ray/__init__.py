"""A stand-in for the parts of Ray that weft's shim touches, shaped as in
Ray 2.43+: ray.get_runtime_context() and
ray._private.worker.global_worker.function_actor_manager.get_execution_info,
which Ray's task executor calls to find the function of each task it runs.
Ray itself cannot be installed on these machines (no PyPI); tests use this
to drive the shim the way Ray's worker does.
"""

from ray._private import worker as _worker


class _Context:
    def get_task_id(self):
        return _worker.current["task_id"]

    def get_actor_id(self):
        return _worker.current["actor_id"]

    def get_job_id(self):
        return "01000000"

    def get_node_id(self):
        return _worker.current["node_id"]

    def get_worker_id(self):
        return "w-%d" % __import__("os").getpid()


def get_runtime_context():
    return _Context()
