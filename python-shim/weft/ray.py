"""weft for Ray: every worker process traced from its first instruction,
its I/O attributed to the Ray task that did it.

Three hook points, all of Ray's own (docs/ray.md):

- ``runtime_env_hook`` for ``RAY_RUNTIME_ENV_HOOK="weft.ray.runtime_env_hook"``
  (``weft run`` sets it for a driver): Ray calls it inside ``ray.init()``
  with the job's runtime env and uses what it returns. It wraps the worker
  interpreter in ``weft wrap --ray`` (Ray starts a worker as
  ``bash -c "exec <py_executable> <args>"`` after applying ``env_vars``),
  adds the env contract to ``env_vars``, and installs ``worker_setup`` as
  the worker setup hook, chaining the user's own. Every other field is left
  alone.
- ``worker_setup`` (``worker_process_setup_hook``): runs in each worker
  after it connects, before its first task; it tells the wrapper, over its
  control socket, when each task or actor method begins and ends.
- ``WeftPlugin``: a runtime-env plugin an administrator lists in
  ``RAY_RUNTIME_ENV_PLUGINS`` to wrap every worker of the cluster.

Standard library only; importable without Ray. A failure here never fails
a task: the wrapper then records the worker as a whole.
"""

import copy
import functools
import importlib
import inspect
import json
import os
import shlex
import socket
import sys
import threading

from weft.contract import (ACTOR_GRANULARITY, CONTROL, MARKS, NMARKS,
                           USER_ENV_HOOK, USER_SETUP_HOOK, WeftConfigError,
                           contract_from, weft_binary)

__all__ = ["runtime_env_hook", "worker_setup", "task_scope", "WeftPlugin",
           "WeftConfigError", "SETUP_HOOK", "wrap_py_executable"]

SETUP_HOOK = "weft.ray.worker_setup"
# The folder holding the weft package, for workers to import it.
_SHIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_attr(path):
    """'pkg.mod.fn' -> the object."""
    mod, _, attr = path.rpartition(".")
    if not mod:
        raise WeftConfigError("%r is not of the form module.attribute" % path)
    return getattr(importlib.import_module(mod), attr)


def _is_wrapped(py_executable):
    words = shlex.split(py_executable)
    return len(words) >= 2 and os.path.basename(words[0]) == "weft" \
        and words[1] == "wrap"


def wrap_py_executable(py_executable, weft=None):
    """The py_executable that runs the user's (or this interpreter) under
    ``weft wrap --ray``. A py_executable may carry arguments; it is kept
    whole as the wrapped command. Already wrapped: returned unchanged."""
    if py_executable and _is_wrapped(py_executable):
        return py_executable
    inner = py_executable or shlex.quote(sys.executable)
    return "%s wrap --ray -- %s" % (shlex.quote(weft or weft_binary()), inner)


class _Chained:
    """A user's callable setup hook run after weft's (picklable, as Ray
    exports callable hooks to the workers)."""

    def __init__(self, user_hook):
        self.user_hook = user_hook

    def __call__(self):
        worker_setup()
        return self.user_hook()


def _merge_env_vars(env_vars, additions):
    for key, value in additions.items():
        have = env_vars.get(key)
        if have is not None and have != value:
            raise WeftConfigError(
                "runtime_env env_vars sets %s=%r, but this job is traced by "
                "weft with %s=%r; remove it from env_vars (weft sets it)"
                % (key, have, key, value))
        env_vars[key] = value


def _for_workers(contract=None):
    """What every worker gets in env_vars: the env contract, and the
    wrapper's settings from this (the driver's) environment."""
    out = dict(contract_from() if contract is None else contract)
    granularity = os.environ.get(ACTOR_GRANULARITY)
    if granularity:
        out[ACTOR_GRANULARITY] = granularity
    return out


def runtime_env_hook(runtime_env):
    """RAY_RUNTIME_ENV_HOOK: the job's runtime env, wrapped for weft.

    Raises WeftConfigError (a ValueError) when the user's runtime env sets
    something weft must set differently; Ray then reports it at
    ``ray.init()``, before anything runs.
    """
    env = copy.deepcopy(dict(runtime_env)) if runtime_env else {}
    user_hook = os.environ.get(USER_ENV_HOOK)
    if user_hook:
        # weft run kept the user's own RAY_RUNTIME_ENV_HOOK: it goes first.
        env = copy.deepcopy(dict(_import_attr(user_hook)(env) or env))

    env["py_executable"] = wrap_py_executable(env.get("py_executable"))

    env_vars = dict(env.get("env_vars") or {})
    for key, value in env_vars.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise WeftConfigError("runtime_env env_vars must map strings to "
                                  "strings; got %r: %r" % (key, value))
    _merge_env_vars(env_vars, _for_workers())
    # Workers import weft.ray.worker_setup from here.
    path = env_vars.get("PYTHONPATH", "")
    if _SHIM_DIR not in path.split(os.pathsep):
        env_vars["PYTHONPATH"] = _SHIM_DIR + (os.pathsep + path if path
                                              else "")

    hook = env.get("worker_process_setup_hook")
    if hook is None or hook == SETUP_HOOK or isinstance(hook, _Chained):
        env["worker_process_setup_hook"] = hook or SETUP_HOOK
    elif isinstance(hook, str):
        _merge_env_vars(env_vars, {USER_SETUP_HOOK: hook})
        env["worker_process_setup_hook"] = SETUP_HOOK
    elif callable(hook):
        env["worker_process_setup_hook"] = _Chained(hook)
    else:
        raise WeftConfigError("runtime_env worker_process_setup_hook must be "
                              "a 'module.function' string or a callable; "
                              "got %r" % (hook,))
    env["env_vars"] = env_vars
    return env


# ------------------------------------------------------------- the worker

class _Control:
    """The wrapper's control socket: one JSON message per packet, each
    answered 'ok' (the wrapper has it) or 'err REASON'. After the answer
    the calling thread opens marker file mark.(SEQ % 8): the tracer sees
    that open in this thread's own stream of system calls, and the wrapper
    cuts its record exactly there. Broken once, it stays off: the wrapper
    then records the worker whole from there."""

    TIMEOUT = 5.0

    def __init__(self, path, marks=None):
        self.path = path
        self.marks = marks or os.path.dirname(path)
        self.lock = threading.Lock()
        self.sock = None
        self.broken = None
        self.seq = 0
        self.pid = os.getpid()

    def _mark(self, seq):
        fd = os.open(os.path.join(self.marks, "mark.%d" % (seq % NMARKS)),
                     os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
        os.close(fd)

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(self.TIMEOUT)
        s.connect(self.path)
        return s

    def send(self, message):
        with self.lock:
            if self.broken:
                return False
            try:
                if self.pid != os.getpid():  # a fork of the worker
                    return False
                if self.sock is None:
                    self.sock = self._connect()
                self.seq += 1
                message = dict(message, seq=self.seq)
                self.sock.send(json.dumps(message).encode())
                reply = self.sock.recv(512)
                if reply != b"ok":
                    raise OSError("the wrapper answered %r" % reply)
                self._mark(self.seq)
                return True
            except OSError as e:
                self.broken = str(e)
                print("weft: task boundaries are no longer sent to the "
                      "wrapper (%s): this worker's I/O is recorded as one "
                      "unit from here" % e, file=sys.stderr)
                try:
                    if self.sock:
                        self.sock.close()
                except OSError:
                    pass
                self.sock = None
                return False


_control = None


def _ray_ids():
    """Ray's ids of the current task, when Ray is there."""
    try:
        import ray  # noqa: F401 (only when the worker has it)
        ctx = ray.get_runtime_context()
    except Exception:
        return {}
    ids = {}
    for key, getter in (("task_id", "get_task_id"),
                        ("actor_id", "get_actor_id"),
                        ("job_id", "get_job_id"),
                        ("node_id", "get_node_id"),
                        ("worker_id", "get_worker_id")):
        try:
            value = getattr(ctx, getter)()
        except Exception:
            value = None
        if value is not None:
            ids[key] = value if isinstance(value, str) else str(value)
    return ids


class task_scope:
    """Marks a task's extent for the wrapper: a context manager and a
    decorator. Ids come from Ray when not given. Without a wrapper
    (WEFT_RAY_CONTROL unset) it does nothing."""

    def __init__(self, name=None, task_id=None, kind="task"):
        self.name = name
        self.task_id = task_id
        self.kind = kind
        self.ids = None

    def _message(self, event):
        msg = {"v": 1, "event": event, "pid": os.getpid(),
               "tid": threading.get_native_id(), "kind": self.kind}
        msg.update(self.ids)
        if self.task_id:
            msg["task_id"] = self.task_id
        if self.name:
            msg["name"] = self.name
        return msg

    def __enter__(self):
        if _control:
            self.ids = _ray_ids()
            _control.send(self._message("begin"))
        return self

    def __exit__(self, exc_type, exc, tb):
        if _control and self.ids is not None:
            msg = self._message("end")
            if exc_type is not None:
                msg["failed"] = True
            _control.send(msg)
        return False

    def __call__(self, fn):
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args, **kwargs):
                with task_scope(self.name, self.task_id, self.kind):
                    return await fn(*args, **kwargs)
            return run_async

        @functools.wraps(fn)
        def run(*args, **kwargs):
            with task_scope(self.name, self.task_id, self.kind):
                return fn(*args, **kwargs)
        return run


def _install_task_hooks():
    """Wrap every function Ray executes in this worker in a task_scope, at
    the one place Ray's executor looks functions up
    (FunctionActorManager.get_execution_info)."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return False
    manager = ray_worker.global_worker.function_actor_manager
    original = manager.get_execution_info
    if getattr(original, "_weft", False):
        return True

    def get_execution_info(job_id, function_descriptor):
        info = original(job_id, function_descriptor)
        name = getattr(info, "function_name", None)
        kind = "actor_task" if _ray_ids().get("actor_id") else "task"
        return info._replace(function=task_scope(name, kind=kind)(
            info.function))

    get_execution_info._weft = True
    manager.get_execution_info = get_execution_info
    return True


def worker_setup():
    """worker_process_setup_hook: connect to the wrapper, hook task
    execution, then run the user's own setup hook (chained by
    runtime_env_hook)."""
    global _control
    path = os.environ.get(CONTROL)
    if path and _control is None:
        _control = _Control(path, os.environ.get(MARKS))
        try:
            _install_task_hooks()
        except Exception as e:  # never fail the worker
            print("weft: cannot hook Ray's task execution (%s): this "
                  "worker's I/O is recorded as one unit" % e,
                  file=sys.stderr)
    user = os.environ.get(USER_SETUP_HOOK)
    if user and user != SETUP_HOOK:
        _import_attr(user)()


# ------------------------------------------------- the cluster-wide route

try:  # Ray's plugin base class when Ray is there; the same shape without.
    from ray._private.runtime_env.plugin import RuntimeEnvPlugin as _Base
except Exception:
    _Base = object


class WeftPlugin(_Base):
    """A runtime-env plugin that wraps every worker of the cluster.

    An administrator starts Ray with
    RAY_RUNTIME_ENV_PLUGINS='[{"class": "weft.ray.WeftPlugin"}]' and the env
    contract (WEFT_COORDINATOR, ...) in the environment of the Ray nodes. A
    job opts out with runtime_env {"weft": false}; it may give its own
    contract values as runtime_env {"weft": {"WEFT_JOB": ..., ...}}.
    """

    name = "weft"
    priority = 90  # late: after py_executable, conda, pip set the interpreter

    @staticmethod
    def validate(runtime_env_dict):
        value = runtime_env_dict.get("weft", True)
        if not isinstance(value, (bool, dict)):
            raise WeftConfigError("runtime_env 'weft' must be true, false or "
                                  "a mapping of env contract variables")

    def get_uris(self, runtime_env):
        return []

    async def create(self, uri, runtime_env, context, logger=None):
        return 0

    def delete_uri(self, uri, logger=None):
        return 0

    def modify_context(self, uris, runtime_env, context, logger=None):
        value = runtime_env.get("weft", True)
        if value is False:
            return
        contract = contract_from()
        if isinstance(value, dict):
            contract.update({k: str(v) for k, v in value.items()})
        contract = _for_workers(contract)
        context.py_executable = wrap_py_executable(
            getattr(context, "py_executable", None))
        env_vars = context.env_vars
        _merge_env_vars(env_vars, contract)
        path = env_vars.get("PYTHONPATH", "")
        if _SHIM_DIR not in path.split(os.pathsep):
            env_vars["PYTHONPATH"] = _SHIM_DIR + (os.pathsep + path if path
                                                  else "")
