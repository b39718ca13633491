"""The env contract (DESIGN.md, "Env contract") and how to find weft.

Every worker of a job gets these variables; `weft wrap` reads them.
"""

import os
import shutil

# The variables of the env contract, in the order DESIGN.md lists them.
CONTRACT = (
    "WEFT_COORDINATOR",
    "WEFT_JOB",
    "WEFT_JOB_TOKEN",
    "WEFT_TRACER",
    "WEFT_SPOOL",
    "WEFT_PARENT",
)

# Where the shim keeps what it chained, for the worker to find.
USER_SETUP_HOOK = "WEFT_RAY_USER_SETUP_HOOK"
USER_ENV_HOOK = "WEFT_RAY_USER_ENV_HOOK"
# Set by `weft wrap --ray` for its child: the wrapper's control socket,
# and the directory of the marker files (mark.0 ... mark.7) whose opening
# shows the tracer where, in the worker's own stream of system calls, a
# task began or ended.
CONTROL = "WEFT_RAY_CONTROL"
MARKS = "WEFT_RAY_MARKS"
NMARKS = 8
# Passed on from the driver's environment to every worker (the wrapper
# reads it): one record per actor call ("call", the default) or one per
# actor ("actor").
ACTOR_GRANULARITY = "WEFT_RAY_ACTOR_GRANULARITY"


class WeftConfigError(ValueError):
    """A setting weft needs conflicts with one the user made."""


def contract_from(environ=None):
    """The contract variables present in environ (default os.environ)."""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in CONTRACT if env.get(k)}


def weft_binary(environ=None):
    """The weft executable: $WEFT_BIN, else weft on PATH, else 'weft'."""
    env = os.environ if environ is None else environ
    explicit = env.get("WEFT_BIN")
    if explicit:
        return explicit
    return shutil.which("weft", path=env.get("PATH")) or "weft"
