"""unprivileged.py - a second, unprivileged user for the tests that check
what weft lets one user on a node do to another (tests/ebpf_e2e.py agent
cases, tests/node_security.py): created on first use with useradd (no
home, no login shell), commands run as it through setpriv with no
supplementary groups and no capabilities, and set-ID copies of a program
for the cases that need one. Standard library only.

The tests that use it skip (exit 77, the reason printed) when not run as
root or when useradd or setpriv is missing.
"""

import os
import pwd
import shutil
import subprocess

USER = "weft-test-other"


class Unavailable(Exception):
    """No second user here; the message says why (the test skips)."""


def user():
    """(uid, gid) of the test user, created when missing."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (creates a second user)")
    for tool in ("useradd", "setpriv"):
        if not shutil.which(tool):
            raise Unavailable("%s is not installed" % tool)
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--no-create-home",
                            "--user-group", "--shell", "/usr/sbin/nologin",
                            USER], capture_output=True, text=True)
        try:  # another test may have created it at the same time
            pw = pwd.getpwnam(USER)
        except KeyError:
            raise Unavailable("useradd %s failed: %s"
                              % (USER, r.stderr.strip()))
    return pw.pw_uid, pw.pw_gid


def argv(cmd):
    """cmd run as the test user: its uid and gid, no other groups, no
    capabilities; the bounding set is a normal user's (all), so that a
    set-user-ID-root program it runs gets root's capabilities."""
    uid, gid = user()
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
            "--clear-groups", "--inh-caps=-all"] + cmd


def set_id_copy(program, directory, setuid=False, setgid=None):
    """A copy of program in directory, owned by root, set-user-ID root
    when setuid, set-group-ID to group id setgid when given; its path."""
    path = os.path.join(directory, os.path.basename(program) + "-setid")
    shutil.copy(program, path)
    os.chown(path, 0, setgid if setgid is not None else 0)
    mode = 0o755 | (0o4000 if setuid else 0) | \
        (0o2000 if setgid is not None else 0)
    os.chmod(path, mode)
    return path
