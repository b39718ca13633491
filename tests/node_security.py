#!/usr/bin/env python3
"""node_security.py - what one user on a node can see of, or slip into,
another user's weft (docs/security.md "On a node"), checked as a second,
unprivileged user that the test creates (tests/unprivileged.py):

  store_private     a store made under umask 022 is its owner's alone
                    (.weft 0700; weft.db, -wal, -shm 0600); one an older
                    weft left readable by others is tightened when its
                    owner opens it again
  fallback_foreign  with no home or cache directory, `weft wrap` refuses
                    a /tmp/weft-spool-UID that another user owns, that is
                    a symbolic link, or that others may write to, naming
                    it and what is wrong; it skips a foreign
                    /tmp/weft-hashes-UID with a warning
  fallback_created  a missing fallback spool and hash cache directory is
                    created 0700 under umask 0 and used

    node_security.py --weft PATH CASE
    node_security.py --list

Exit status: 0 pass, 1 fail, 77 skip (reason printed: not root, no
useradd or setpriv). Standard library only.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
import unprivileged  # noqa: E402
from caselib import Fail, Skip  # noqa: E402

CASES, case = caselib.registry()
JOB = "7d4c8a52-3e61-4f0b-9a57-2c1b0e8f6d93"
TOKEN = "node-security-test-token-0123456789"


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class Env:
    def __init__(self, weft):
        self.weft = os.path.abspath(weft)
        self.uid, self.gid = unprivileged.user()
        self.root = tempfile.mkdtemp(prefix="weft-nodesec-")
        os.chmod(self.root, 0o755)
        self.home = self.mkdir("home")
        self.proj = self.mkdir("proj")
        self.fallbacks = ["/tmp/weft-%s-%d" % (w, self.uid)
                          for w in ("spool", "hashes")]
        self.remove_fallbacks()

    def mkdir(self, name):
        d = os.path.join(self.root, name)
        os.mkdir(d)
        os.chown(d, self.uid, self.gid)
        return d

    def remove_fallbacks(self):
        for d in self.fallbacks:
            if os.path.islink(d) or os.path.isfile(d):
                os.unlink(d)
            else:
                shutil.rmtree(d, ignore_errors=True)

    def weft_as_user(self, args, umask="022", env=None, home=True):
        """`weft ARGS` as the test user under umask, in the project."""
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             "ASAN_OPTIONS": "detect_leaks=0"}
        if home:
            e["HOME"] = self.home
        e.update(env or {})
        cmd = ["sh", "-c", 'umask %s; exec "$@"' % umask, "sh",
               self.weft] + args
        return subprocess.run(unprivileged.argv(["env", "-i"] + [
            "%s=%s" % kv for kv in e.items()] + cmd), cwd=self.proj,
            capture_output=True, text=True, timeout=120)

    def cleanup(self):
        self.remove_fallbacks()
        shutil.rmtree(self.root, ignore_errors=True)


def expect_private(path, want):
    m = mode(path)
    if m & 0o077:
        raise Fail("%s is mode %o: others may read it (expected %o)"
                   % (path, m, want))


def store_files(env):
    db = os.path.join(env.proj, ".weft", "weft.db")
    return [p for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)]


@case
def store_private(env):
    """a store made under umask 022 is for its owner only; one an older
    weft left world-readable is tightened when its owner opens it."""
    run = ["run", "--tracer", "ptrace", "--", "sh", "-c", "echo x > out"]
    r = env.weft_as_user(run)
    if r.returncode != 0:
        raise Fail("weft run as the test user exited %d:\n%s"
                   % (r.returncode, r.stderr))
    expect_private(os.path.join(env.proj, ".weft"), 0o700)
    files = store_files(env)
    if not files:
        raise Fail("no store in %s/.weft" % env.proj)
    for p in files:
        expect_private(p, 0o600)
    for p in files:  # as an older weft made them
        os.chmod(p, 0o644)
    r = env.weft_as_user(run)
    if r.returncode != 0:
        raise Fail("weft run again exited %d:\n%s" % (r.returncode,
                                                      r.stderr))
    for p in store_files(env):
        expect_private(p, 0o600)


def wrap(env, umask="022"):
    """`weft wrap` as the test user with no home or cache directory, the
    coordinator unreachable (what it spools stays)."""
    return env.weft_as_user(
        ["wrap", "--ship-timeout", "0.2", "--tracer", "ptrace", "--", "sh",
         "-c", "cat /etc/hostname > /dev/null"],
        umask=umask, home=False,
        env={"HOME": "/", "WEFT_COORDINATOR": "tcp://127.0.0.1:9",
             "WEFT_JOB": JOB, "WEFT_JOB_TOKEN": TOKEN})


@case
def fallback_foreign(env):
    """a fallback spool directory in /tmp that another user owns, that is
    a symbolic link, or that others may write to is refused with its name
    and what is wrong; a foreign hash cache directory is not used."""
    spool, hashes = env.fallbacks
    elsewhere = env.mkdir("elsewhere")
    setups = [
        ("another user owns it", lambda: os.mkdir(spool, 0o777)),
        ("symbolic link", lambda: os.symlink(elsewhere, spool)),
        ("others may write", lambda: (os.mkdir(spool),
                                      os.chown(spool, env.uid, env.gid),
                                      os.chmod(spool, 0o777))),
    ]
    for reason, setup in setups:
        env.remove_fallbacks()
        setup()
        os.chmod(spool, 0o777) if not os.path.islink(spool) else None
        r = wrap(env)
        if r.returncode == 0 or spool not in r.stderr or \
                reason not in r.stderr:
            raise Fail("weft wrap with %s (%s): exit %d, expected a "
                       "refusal naming it and saying %r:\n%s"
                       % (spool, reason, r.returncode, reason, r.stderr))
    if os.listdir(elsewhere):
        raise Fail("the spool went through the symbolic link: %s"
                   % os.listdir(elsewhere))
    env.remove_fallbacks()
    os.mkdir(hashes, 0o777)
    os.chmod(hashes, 0o777)
    r = wrap(env)
    if r.returncode != 0:
        raise Fail("weft wrap beside a foreign hash cache directory exited "
                   "%d:\n%s" % (r.returncode, r.stderr))
    if os.listdir(hashes):
        raise Fail("a hash cache was made in %s, which another user owns: "
                   "%s" % (hashes, os.listdir(hashes)))


@case
def fallback_created(env):
    """with no home or cache directory, the fallback spool and hash cache
    directories are created 0700 even under umask 0, and used."""
    spool, hashes = env.fallbacks
    r = wrap(env, umask="000")
    if r.returncode != 0:
        raise Fail("weft wrap exited %d:\n%s" % (r.returncode, r.stderr))
    for d in (spool, hashes):
        if not os.path.isdir(d):
            raise Fail("%s was not created:\n%s" % (d, r.stderr))
        st = os.lstat(d)
        if st.st_uid != env.uid or mode(d) != 0o700:
            raise Fail("%s: owner %d mode %o, expected %d and 700"
                       % (d, st.st_uid, mode(d), env.uid))
    for top, dirs, names in os.walk(hashes):
        for n in names:
            expect_private(os.path.join(top, n), 0o600)


def make_env(args):
    try:
        return Env(args.weft)
    except unprivileged.Unavailable as e:
        raise Skip(e)


def main():
    return caselib.main(CASES, "node", make_env, doc=__doc__,
                        failures=(Fail, subprocess.TimeoutExpired),
                        explain=True)


if __name__ == "__main__":
    sys.exit(main())
