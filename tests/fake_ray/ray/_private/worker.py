"""Ray's worker module, reduced to what the executor uses to run a task:
look the function up through the function manager, call it."""

import collections
import os

FunctionExecutionInfo = collections.namedtuple(
    "FunctionExecutionInfo", ["function", "function_name", "max_calls"])

current = {"task_id": None, "actor_id": None,
           "node_id": os.environ.get("FAKE_RAY_NODE_ID", "node-1")}


class FunctionActorManager:
    def __init__(self):
        self.functions = {}

    def get_execution_info(self, job_id, function_descriptor):
        fn = self.functions[function_descriptor]
        return FunctionExecutionInfo(fn, function_descriptor, 0)


class Worker:
    def __init__(self):
        self.function_actor_manager = FunctionActorManager()

    def execute_task(self, task_id, function_descriptor, *args,
                     actor_id=None):
        """What _raylet.execute_task does around the user's function."""
        current["task_id"], current["actor_id"] = task_id, actor_id
        try:
            info = self.function_actor_manager.get_execution_info(
                "01000000", function_descriptor)
            return info.function(*args)
        finally:
            current["task_id"] = current["actor_id"] = None


global_worker = Worker()
