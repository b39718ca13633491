"""caselib.py - what every end-to-end test script shares with ctest: the
exit code of a skipped case (SKIP = 77, the SKIP_RETURN_CODE of
tests/CMakeLists.txt), the Fail and Skip a case raises, and main(): the
command line SCRIPT --OPTION VALUE ... CASE (or SCRIPT --list, what the
build reads to register one test a case), the case's environment made,
the case run, one verdict line printed and the environment cleaned up
whatever happened. Standard library only.
"""

import argparse
import sys

SKIP = 77


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def registry(fixture=None):
    """CASES, case = registry(): a script's table of cases by name and the
    decorator that adds a function to it. With fixture, the case fn(obj)
    is run on a fresh fixture(weft), whose cleanup() (or close()) is
    called after it whatever happened. A case_ prefix is not part of the
    case's name (case_store is the case "store")."""
    cases = {}

    def case(fn):
        run = fn
        if fixture:
            def run(weft):
                obj = fixture(weft)
                try:
                    fn(obj)
                finally:
                    (getattr(obj, "cleanup", None) or obj.close)()
        name = fn.__name__
        cases[name[5:] if name.startswith("case_") else name] = run
        return fn
    return cases, case


def case_args(cases, needs, doc=None, optional=None, argv=None):
    """The parsed command line, or None once --list has printed the cases.
    needs: the options every case needs (argparse exits naming them when
    one is missing); optional: {option: default} for the others."""
    ap = argparse.ArgumentParser(
        description=doc.split("\n")[0] if doc else None)
    for o in needs:
        ap.add_argument("--" + o)
    for o, default in (optional or {}).items():
        ap.add_argument("--" + o, default=default)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(cases))
        return None
    if a.case not in cases or not all(getattr(a, o) for o in needs):
        ap.error("need %s and one of: %s" % (
            ", ".join("--" + o for o in needs), ", ".join(cases)))
    return a


def main(cases, label, make_env, needs=("weft",), doc=None, optional=None,
         ready=None, failures=(Fail,), explain=False, on_fail=None,
         ok="PASS", out=None, argv=None):
    """Run the case named on the command line and return its exit code
    (0, 1 or SKIP), having printed "PASS [label.case]" (ok says which
    word), "SKIP [...]: why" or "FAIL [...]: why" on out (stdout when
    None).

    make_env(args) makes what the case is called with (it may raise Skip);
    its cleanup(), where it has one, is called whatever happens; ready(env) runs before the case
    (a check that may skip it). failures: the exceptions that fail the
    case; explain: a failure also prints the case's docstring, the reason
    indented below it; on_fail(env) prints what helps find the cause."""
    out = out or sys.stdout
    a = case_args(cases, needs, doc, optional, argv)
    if a is None:
        return 0
    name = "%s.%s" % (label, a.case)
    fn = cases[a.case]
    env = None
    try:
        env = make_env(a)
        if ready:
            ready(env)
        fn(env)
    except Skip as e:
        print("SKIP [%s]: %s" % (name, e), file=out)
        return SKIP
    except failures as e:
        if explain:
            print("FAIL [%s]: %s\n  %s" % (name, fn.__doc__.strip(),
                                           str(e).replace("\n", "\n  ")),
                  file=out)
        else:
            print("FAIL [%s]: %s" % (name, e), file=out)
        if on_fail and env is not None:
            on_fail(env)
        return 1
    finally:
        if hasattr(env, "cleanup"):
            env.cleanup()
    print("%s [%s]" % (ok, name), file=out)
    return 0
