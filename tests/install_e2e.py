#!/usr/bin/env python3
"""install_e2e.py - what `cmake --install` and the .deb deliver, used from
where they put it (packaging/CMakeLists.txt).

Each case installs the build into a scratch prefix (`cmake --install
BUILD --prefix TMP`, never the system) and uses only the installed files:

  layout       every file in its place (GNUInstallDirs), one man page per
               command `weft --help` lists, nothing of the build tree
               (tests, static libraries) installed
  pipeline     two runs of the installed weft (`cat a > b`, then
               `tr < b > c`) under preload and ptrace; preload's library is
               the installed one; `weft lineage c` goes c <- b <- a
  spank        the installed weft_spank.so loads as Slurm loads it
               (dlopen, RTLD_LAZY: spank_* come from slurmstepd) and has
               the symbols Slurm looks up; its built-in paths are the
               install's. No Slurm cluster is started.
  python       the installed Python package imports from the install, and
               the installed weft puts the installed package on a Ray
               driver's PYTHONPATH (`weft run --ray`)
  man          the installed man pages render (man -l) without warnings
  deb_package  `cpack -G DEB` makes the .deb; `dpkg-deb -I` shows the
               runtime library Depends, and Recommends the libraries weft
               loads only when used (libcurl4, libzip4, libgvc6), which
               weft does not link; `dpkg-deb -c` the files above
               (only registered in builds without the sanitizers)

    install_e2e.py --build DIR --libdir LIBDIR --prefix PREFIX CASE
    install_e2e.py --list

Exit status: 0 pass, 1 fail, 77 skip (the reason is printed). Every weft
runs with HOME, XDG dirs and WEFT_AGENT_SOCKET in the scratch directory:
no user config, no running eBPF agent is touched.
"""

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caselib  # noqa: E402
from caselib import Fail, Skip, check  # noqa: E402

CASES, case = caselib.registry()


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("errors", "replace")
    kw.setdefault("timeout", 240)
    return subprocess.run(cmd, **kw)


class Install:
    """The build installed into a scratch prefix, and an environment that
    keeps every weft run away from the user's files and agent."""

    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="weft-install-")
        self.prefix = os.path.join(self.tmp, "prefix")
        r = run(["cmake", "--install", a.build, "--prefix", self.prefix])
        if r.returncode != 0:
            raise Fail("cmake --install exited %d:\n%s%s"
                       % (r.returncode, r.stdout, r.stderr))
        self.bin = os.path.join(self.prefix, "bin", "weft")
        self.libweft = os.path.join(self.prefix, a.libdir, "weft")
        self.share = os.path.join(self.prefix, "share")
        home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(home, "run"), mode=0o700)
        self.env = dict(os.environ, HOME=home,
                        XDG_RUNTIME_DIR=os.path.join(home, "run"),
                        XDG_CACHE_HOME=os.path.join(home, "cache"),
                        XDG_CONFIG_HOME=os.path.join(home, "config"),
                        WEFT_AGENT_SOCKET=os.path.join(
                            self.tmp, "none", "agent.sock"),
                        ASAN_OPTIONS="detect_leaks=0")
        for k in ("WEFT_TRACER", "WEFT_PRELOAD_LIBRARY", "PYTHONPATH",
                  "RAY_ADDRESS", "WEFT_JOB", "WEFT_COORDINATOR",
                  "WEFT_JOB_TOKEN", "LD_PRELOAD"):
            self.env.pop(k, None)

    def weft(self, *args, cwd=None, timeout=120):
        return run([self.bin, *args], cwd=cwd, env=self.env,
                   timeout=timeout)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def listed_commands(inst):
    r = inst.weft("--help")
    check(r.returncode == 0, "weft --help exited %d" % r.returncode)
    body = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in body.splitlines() if l.strip()]


@case
def layout(inst):
    p, libweft = inst.prefix, inst.libweft
    want = [inst.bin,
            os.path.join(libweft, "libweft_preload.so"),
            os.path.join(inst.share, "weft", "python", "weft", "__init__.py"),
            os.path.join(inst.share, "weft", "python", "weft", "ray.py"),
            os.path.join(inst.share, "bash-completion", "completions",
                         "weft"),
            os.path.join(inst.share, "man", "man1", "weft.1.gz"),
            os.path.join(inst.share, "doc", "weft", "README.md")]
    if os.path.exists(os.path.join(inst.a.build, "weft_spank.so")):
        want += [os.path.join(libweft, "weft_spank.so"),
                 os.path.join(inst.share, "weft", "plugstack.conf")]
    for cmd in listed_commands(inst):
        want.append(os.path.join(inst.share, "man", "man1",
                                 "weft-%s.1.gz" % cmd))
    missing = [f for f in want if not os.path.isfile(f)]
    check(not missing, "not installed: " + ", ".join(missing))
    check(os.access(inst.bin, os.X_OK), "bin/weft is not executable")
    # Nothing of the build tree: no tests, static libraries, stand-ins.
    extra = []
    for root, _, files in os.walk(p):
        for f in files:
            if f.endswith((".a", ".o", "_test")) or "test_preload" in f \
                    or f.endswith(".pyc"):
                extra.append(os.path.join(root, f))
    check(not extra, "installed but not meant to be: " + ", ".join(extra))
    # The bash completion lists the commands, asking the installed weft.
    if shutil.which("bash"):
        comp = os.path.join(inst.share, "bash-completion", "completions",
                            "weft")
        script = ('source "%s"; COMP_WORDS=("%s" "li"); COMP_CWORD=1; '
                  '_weft; echo "${COMPREPLY[@]}"; '
                  'COMP_WORDS=("%s" "run" "--no-t"); COMP_CWORD=2; '
                  '_weft; echo "${COMPREPLY[@]}"'
                  % (comp, inst.bin, inst.bin))
        r = run(["bash", "-c", script], env=inst.env)
        check(r.stdout.split("\n")[:2] == ["lineage",
                                           "--no-tracer-fallback"],
              "bash completion gave %r (%s)" % (r.stdout, r.stderr))


def lineage_up(inst, proj, path):
    r = inst.weft("lineage", path, "--up", "--json", cwd=proj)
    check(r.returncode == 0, "weft lineage %s exited %d:\n%s"
          % (path, r.returncode, r.stderr))
    return json.loads(r.stdout)


@case
def pipeline(inst):
    for tracer in ("preload", "ptrace"):
        proj = os.path.join(inst.tmp, "proj-" + tracer)
        os.makedirs(proj)
        with open(os.path.join(proj, "a"), "w") as f:
            f.write("lineage from an installed weft\n")
        steps = ["cat a > b", "tr a-z A-Z < b > c"]
        if tracer == "preload":
            # what the workload was given: the installed library
            steps[0] += '; printf %s "$LD_PRELOAD" > ../ld.' + tracer
        for script in steps:
            r = inst.weft("run", "--tracer", tracer, "--",
                          "sh", "-c", script, cwd=proj)
            if r.returncode == 3:
                if tracer == "ptrace":
                    print("ptrace cannot trace here (preflight): only "
                          "preload checked\n" + r.stderr, file=sys.stderr)
                    break
                raise Fail("the installed weft's preload backend failed "
                           "its preflight:\n" + r.stderr)
            check(r.returncode == 0, "weft run --tracer %s -- %s exited "
                  "%d:\n%s" % (tracer, script, r.returncode, r.stderr))
        else:
            doc = lineage_up(inst, proj, "c")
            paths = {a["id"]: a["path"] for a in doc["artifacts"]}
            tasks = {t["id"]: t["name"] for t in doc["tasks"]}
            # the project's files; system inputs (libc, locales) aside
            reads = {(paths[e["from"]], tasks[e["to"]])
                     for e in doc["edges"] if e["kind"] == "read" and
                     paths[e["from"]].startswith(proj + "/")}
            writes = {(tasks[e["from"]], paths[e["to"]])
                      for e in doc["edges"] if e["kind"] == "write"}
            a, b, c = (os.path.join(proj, n) for n in "abc")
            want_r = {(a, "sh -c " + steps[0]), (b, "sh -c " + steps[1])}
            want_w = {("sh -c " + steps[0], b), ("sh -c " + steps[1], c)}
            check(reads == want_r and writes == want_w,
                  "%s: lineage of c: reads %s, writes %s; expected %s, %s"
                  % (tracer, sorted(reads), sorted(writes),
                     sorted(want_r), sorted(want_w)))
            check(all(not e["weak"] for e in doc["edges"]),
                  "%s: weak edges in %s" % (tracer, doc["edges"]))
            if tracer == "preload":
                with open(os.path.join(inst.tmp, "ld.preload")) as f:
                    ld = f.read()
                want = os.path.join(inst.libweft, "libweft_preload.so")
                check(os.path.realpath(ld.split(":")[0]) ==
                      os.path.realpath(want),
                      "LD_PRELOAD was %r, not the installed %s"
                      % (ld, want))


@case
def spank(inst):
    so = os.path.join(inst.libweft, "weft_spank.so")
    if not os.path.exists(os.path.join(inst.a.build, "weft_spank.so")):
        raise Skip("weft_spank.so not built (no libslurm-dev at configure "
                   "time)")
    check(os.path.isfile(so), "%s not installed" % so)
    # Slurm's plugin loader: dlopen(RTLD_LAZY), then these symbols. In a
    # child process, so a crash on load is a failure with a message.
    probe = r"""
import ctypes, json, os, sys
lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_LAZY | os.RTLD_LOCAL)
syms = [s for s in ("plugin_name", "plugin_type", "plugin_version",
                    "slurm_spank_init", "slurm_spank_task_init",
                    "slurm_spank_exit") if hasattr(lib, s)]
text = lambda s: ctypes.string_at(ctypes.addressof(
    ctypes.c_char.in_dll(lib, s))).decode()
print(json.dumps({"symbols": syms, "type": text("plugin_type"),
                  "name": text("plugin_name"),
                  "version": ctypes.c_uint32.in_dll(lib,
                                                    "plugin_version").value}))
"""
    r = run([sys.executable, "-c", probe, so], env=inst.env)
    check(r.returncode == 0, "dlopen(%s) in a child exited %d:\n%s"
          % (so, r.returncode, r.stderr))
    got = json.loads(r.stdout)
    check(len(got["symbols"]) == 6, "%s has only %s" % (so, got["symbols"]))
    check(got["type"] == "spank" and got["name"] == "weft",
          "plugin_type %r, plugin_name %r" % (got["type"], got["name"]))
    # Slurm loads it only when built for its major.minor.
    srun = shutil.which("srun")
    if srun:
        m = re.search(r"(\d+)\.(\d+)", run([srun, "--version"]).stdout)
        if m:
            v = got["version"]
            check((v >> 16, (v >> 8) & 0xff) ==
                  (int(m.group(1)), int(m.group(2))),
                  "plugin_version %#x is not this machine's Slurm %s.%s"
                  % (v, m.group(1), m.group(2)))
    else:
        print("srun not installed: plugin_version not compared",
              file=sys.stderr)
    # Its built-in defaults are the configured install's, not the build
    # tree's (it cannot look next to an executable: it runs in Slurm's).
    # (Its constant strings: debug info may name the build tree.)
    r = run(["readelf", "-p", ".rodata", so])
    check(r.returncode == 0, "readelf -p .rodata %s: %s" % (so, r.stderr))
    prefix = inst.a.prefix.rstrip("/")
    check(prefix + "/bin/weft" in r.stdout,
          "%s does not default to %s/bin/weft" % (so, prefix))
    check(inst.a.build not in r.stdout,
          "%s names the build tree %s" % (so, inst.a.build))
    with open(os.path.join(inst.share, "weft", "plugstack.conf")) as f:
        line = [l for l in f if l.startswith("optional ")]
    check(len(line) == 1 and "weft_spank.so" in line[0],
          "plugstack.conf has no plugin line: %r" % line)


@case
def python(inst):
    shim = os.path.join(inst.share, "weft", "python")
    env = dict(inst.env, PYTHONPATH=shim)
    r = run([sys.executable, "-c",
             "import weft, weft.ray; print(weft.ray.__file__); "
             "print(callable(weft.ray.runtime_env_hook))"],
            env=env, cwd=inst.tmp)
    check(r.returncode == 0, "import weft.ray from %s:\n%s"
          % (shim, r.stderr))
    where, hook = r.stdout.split()
    check(where.startswith(shim + "/") and hook == "True",
          "imported %s (hook callable: %s), not from %s"
          % (where, hook, shim))
    # The installed weft hands a Ray driver the installed package.
    proj = os.path.join(inst.tmp, "proj-ray")
    os.makedirs(proj)
    r = inst.weft("run", "--ray", "--listen", "tcp://127.0.0.1:0",
                  "--tracer", "ptrace", "--", sys.executable, "-c",
                  "import os, weft.ray; print(weft.ray.__file__); "
                  "print(os.environ['RAY_RUNTIME_ENV_HOOK'])",
                  cwd=proj, timeout=180)
    if r.returncode == 3:
        raise Skip("ptrace cannot trace here:\n" + r.stderr)
    check(r.returncode == 0, "weft run --ray exited %d:\n%s%s"
          % (r.returncode, r.stdout, r.stderr))
    out = r.stdout.split()
    check(len(out) >= 2 and
          os.path.realpath(out[-2]).startswith(os.path.realpath(shim) + "/")
          and out[-1] == "weft.ray.runtime_env_hook",
          "the driver under the installed weft imported %r, not from %s"
          % (out, shim))


@case
def man(inst):
    if not shutil.which("man"):
        raise Skip("man (man-db) is not installed")
    d = os.path.join(inst.share, "man", "man1")
    pages = sorted(f for f in os.listdir(d) if f.endswith(".1.gz"))
    check(len(pages) > 1, "no man pages in %s" % d)
    env = dict(inst.env, MANWIDTH="80", LC_ALL="C.UTF-8",
               MANROFFOPT="-ww")
    for page in pages:
        r = run(["man", "-l", os.path.join(d, page)], env=env)
        check(r.returncode == 0 and "SYNOPSIS" in r.stdout,
              "man -l %s exited %d:\n%s" % (page, r.returncode, r.stderr))
        check(not r.stderr.strip(), "man -l %s warned:\n%s"
              % (page, r.stderr))
    # MANPATH from the prefix finds them by name, as `man weft-run` would.
    r = run(["man", "-M", os.path.join(inst.share, "man"), "-w",
             "weft-run"], env=env)
    check(r.returncode == 0, "man -w weft-run: %s" % r.stderr)


def deb_fields(info):
    fields, key = {}, None
    for line in info.splitlines():
        m = re.match(r"^ ([A-Za-z-]+): ?(.*)$", line)
        if m:
            key = m.group(1)
            fields[key] = m.group(2)
        elif key and line.startswith("  "):
            fields[key] += "\n" + line.strip()
    return fields


@case
def deb_package(inst):
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
        if not shutil.which(tool):
            raise Skip("%s is not installed (dpkg-dev)" % tool)
    out = os.path.join(inst.tmp, "deb")
    os.makedirs(out)
    r = run(["cpack", "-G", "DEB", "-B", out,
             "--config", os.path.join(inst.a.build, "CPackConfig.cmake")],
            cwd=inst.a.build, timeout=600)
    check(r.returncode == 0, "cpack exited %d:\n%s%s"
          % (r.returncode, r.stdout, r.stderr))
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    check(len(debs) == 1, "cpack made %s" % debs)
    deb = os.path.join(out, debs[0])
    info = run(["dpkg-deb", "-I", deb]).stdout
    f = deb_fields(info)
    check(f.get("Package") == "weft", "Package: %r" % f.get("Package"))
    check(f.get("Architecture") == run(
        ["dpkg", "--print-architecture"]).stdout.strip(),
        "Architecture: %r" % f.get("Architecture"))
    deps = {d.strip().split()[0] for d in f.get("Depends", "").split(",")
            if d.strip()}
    # Every library the programs need (NEEDED) comes with a package the
    # .deb depends on (what dpkg-shlibdeps is for).
    need = set()
    for prog in (inst.bin, os.path.join(inst.libweft,
                                        "libweft_preload.so")):
        dyn = run(["objdump", "-p", prog]).stdout
        for lib in re.findall(r"^\s+NEEDED\s+(\S+)$", dyn, re.M):
            if lib.startswith("ld-linux"):
                need.add("libc6")  # the dynamic loader is libc6's
                continue
            path = [l.split("=>")[1].split()[0]
                    for l in run(["ldd", prog]).stdout.splitlines()
                    if l.strip().startswith(lib + " ") and "=>" in l]
            check(path, "ldd %s does not resolve %s" % (prog, lib))
            # dpkg knows a file under the name its package ships it
            # (/lib or /usr/lib: merged /usr makes both one directory)
            real = os.path.realpath(path[0])
            names = {path[0], real, re.sub(r"^/usr/lib/", "/lib/", real),
                     re.sub(r"^/lib/", "/usr/lib/", real)}
            owner = run(["dpkg", "-S", *sorted(names)])
            check(owner.stdout.strip(), "no package owns %s" % path[0])
            need.add(owner.stdout.split(":")[0])
    check(need <= deps, "Depends (%s) lacks %s, whose libraries weft "
          "needs" % (f.get("Depends"), sorted(need - deps)))
    for pkg in ("libc6", "libsqlite3-0", "libsodium23", "libnng1"):
        check(pkg in deps, "Depends lacks %s: %s" % (pkg, f.get("Depends")))
    if os.path.exists(os.path.join(inst.a.build, "backends", "ebpf",
                                   "weft.skel.h")):
        check("libbpf1" in deps, "Depends lacks libbpf1 (the eBPF backend "
              "is built): %s" % f.get("Depends"))
    # libcurl, libzip and Graphviz's library are loaded only by the
    # commands that use them: no NEEDED entry names them, so the package
    # must say them another way.
    recommends = {d.strip().split()[0]
                  for d in f.get("Recommends", "").split(",") if d.strip()}
    for pkg, what in (("libcurl4", "OpenLineage over HTTP"),
                      ("libzip4", "RO-Crate zips"),
                      ("libgvc6", "dag --format svg|html")):
        check(pkg in recommends | deps, "neither Depends nor Recommends "
              "names %s (%s): %s / %s"
              % (pkg, what, f.get("Depends"), f.get("Recommends")))
    # ... and weft itself does not link them: every weft process would
    # load them (and libcrypto, libltdl, ...) at its start.
    dyn = run(["objdump", "-p", inst.bin]).stdout
    linked = [l for l in re.findall(r"^\s+NEEDED\s+(\S+)$", dyn, re.M)
              if l.startswith(("libcurl.", "libzip.", "libgvc.",
                               "libcgraph."))]
    check(not linked, "weft links %s, which it loads when needed" % linked)
    check(not any(d.startswith(("libasan", "libubsan", "libcmocka"))
                  for d in deps), "Depends has test libraries: %s"
          % f.get("Depends"))
    listing = run(["dpkg-deb", "-c", deb]).stdout
    files = {l.split()[-1].lstrip(".") for l in listing.splitlines()
             if l and not l.startswith("d")}
    prefix = inst.a.prefix.rstrip("/")
    libweft = "%s/%s/weft" % (prefix, inst.a.libdir)
    want = ["%s/bin/weft" % prefix, libweft + "/libweft_preload.so",
            "%s/share/weft/python/weft/ray.py" % prefix,
            "%s/share/man/man1/weft.1.gz" % prefix,
            "%s/share/man/man1/weft-run.1.gz" % prefix,
            "%s/share/bash-completion/completions/weft" % prefix]
    if os.path.exists(os.path.join(inst.a.build, "weft_spank.so")):
        want.append(libweft + "/weft_spank.so")
    missing = [w for w in want if w not in files]
    check(not missing, "the .deb lacks %s; it has:\n%s"
          % (missing, listing))
    # Unpacked anywhere, its weft runs and finds its preload library.
    root = os.path.join(inst.tmp, "unpacked")
    check(run(["dpkg-deb", "-x", deb, root]).returncode == 0,
          "dpkg-deb -x failed")
    env = dict(inst.env)
    r = run([root + prefix + "/bin/weft", "tracer", "check", "preload",
             "--json"], env=env)
    check(r.returncode == 0, "the unpacked weft's preload check exited "
          "%d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    lib = json.loads(r.stdout)["checks"]
    lib = [c["detail"] for c in lib if c["name"] == "library"][0]
    check(os.path.realpath(lib) == os.path.realpath(
        root + libweft + "/libweft_preload.so"),
        "the unpacked weft uses %s" % lib)
    print(info, file=sys.stderr)


def make_install(a):
    if not shutil.which("cmake"):
        raise Skip("cmake is not installed")
    a.build = os.path.abspath(a.build)
    return Install(a)


def main():
    return caselib.main(CASES, "install", make_install, needs=("build",),
                        optional={"libdir": "lib", "prefix": "/usr/local"},
                        out=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
