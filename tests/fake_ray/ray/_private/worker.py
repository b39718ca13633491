"""Ray's worker module, reduced to what the executor uses to run a task:
look the function up through the function manager, call it."""

import collections
import importlib
import os

FunctionExecutionInfo = collections.namedtuple(
    "FunctionExecutionInfo", ["function", "function_name", "max_calls"])

current = {"task_id": None, "actor_id": None,
           "job_id": os.environ.get("RAY_JOB_ID", "01000000"),
           "node_id": os.environ.get("FAKE_RAY_NODE_ID", "node-1")}


class FunctionActorManager:
    def __init__(self):
        self.functions = {}
        self.names = {}

    def get_execution_info(self, job_id, function_descriptor):
        """The function of a descriptor: registered, or "module.fn" (an
        actor method: "module.Class.method", name "Class.method")."""
        fn = self.functions.get(function_descriptor)
        name = self.names.get(function_descriptor, function_descriptor)
        if fn is None:
            parts = function_descriptor.split(".")
            for cut in range(len(parts) - 1, 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
                fn, name = obj, ".".join(parts[cut:])
                break
            self.functions[function_descriptor] = fn
            self.names[function_descriptor] = name
        return FunctionExecutionInfo(fn, name, 0)


class Worker:
    def __init__(self):
        self.function_actor_manager = FunctionActorManager()
        self.actors = {}  # actor id -> the instance this worker holds

    def execute_task(self, task_id, function_descriptor, *args,
                     actor_id=None):
        """What _raylet.execute_task does around the user's function. An
        actor's creation task ("module.Class.__init__") makes the instance
        its later method calls get as self."""
        current["task_id"], current["actor_id"] = task_id, actor_id
        try:
            info = self.function_actor_manager.get_execution_info(
                current["job_id"], function_descriptor)
            if actor_id is None:
                return info.function(*args)
            if function_descriptor.endswith(".__init__"):
                cls = function_descriptor.rsplit(".", 1)[0]
                mod, _, name = cls.rpartition(".")
                klass = getattr(importlib.import_module(mod), name)
                self.actors[actor_id] = klass.__new__(klass)
            if actor_id not in self.actors:  # a bare function (tests)
                return info.function(*args)
            return info.function(self.actors[actor_id], *args)
        finally:
            current["task_id"] = current["actor_id"] = None


global_worker = Worker()
