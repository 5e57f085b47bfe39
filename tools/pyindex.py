#!/usr/bin/python3
"""Wheels and lock-file projects for the kiln test bed's python index.

  pyindex.py wheels   --src DIR --cache DIR --epoch N
      Build every package under DIR (a directory holding pyproject.toml or
      setup.py) into a wheel, offline, with this interpreter's pip,
      setuptools and wheel (run it with Debian's /usr/bin/python3). The
      wheels land in CACHE/<key>, key = hash of the sources, this script and
      the build tools' versions; a cached directory is reused. Prints it.

  pyindex.py projects --wheels DIR --templates DIR --out DIR --index-url URL
      Copy TEMPLATES/<project>/ to OUT/<project>/, rendering *.in files:
        @INDEX_URL@            the simple index URL (no trailing slash)
        @FILES_URL@            where the index serves wheel files
        @SHA256:<wheel>@       sha256 hex of a built wheel
        @SIZE:<wheel>@         its size in bytes
        @POETRY_CONTENT_HASH@  poetry's content-hash of the rendered
                               pyproject.toml beside the file
      A file is rewritten only when its content changes.

Only the standard library; wheel builds are reproducible (SOURCE_DATE_EPOCH
fixes zip timestamps, bdist_wheel writes entries sorted).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

PLACEHOLDER_RE = re.compile(r"@([A-Z][A-Z0-9_]*)(?::([^@\s]+))?@")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def package_dirs(src):
    out = []
    for name in sorted(os.listdir(src)):
        d = os.path.join(src, name)
        if os.path.isdir(d) and (os.path.isfile(os.path.join(d, "pyproject.toml")) or
                                 os.path.isfile(os.path.join(d, "setup.py"))):
            out.append(d)
    return out


def project_name(d):
    p = os.path.join(d, "pyproject.toml")
    if os.path.isfile(p):
        with open(p, "rb") as f:
            name = tomllib.load(f).get("project", {}).get("name")
        if name:
            return re.sub(r"[-_.]+", "-", name).lower()
    return os.path.basename(d)


def tree_files(d):
    """Relative paths of the files a build reads (skips build leftovers)."""
    out = []
    for root, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if x not in ("build", "dist", "__pycache__")
                         and not x.endswith(".egg-info"))
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(root, f), d))
    return out


def tools_versions():
    # importlib.metadata: importing setuptools would warn about distutils
    from importlib.metadata import version
    return "pip %s setuptools %s wheel %s python %s" % (
        version("pip"), version("setuptools"), version("wheel"),
        sys.version.split()[0])


def sources_key(pkgs, epoch):
    h = hashlib.sha256()
    h.update(("%s epoch %d\n" % (tools_versions(), epoch)).encode())
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    for d in pkgs:
        h.update(b"\0pkg " + os.path.basename(d).encode() + b"\n")
        for rel in tree_files(d):
            p = os.path.join(d, rel)
            h.update(b"\0file " + rel.encode() + b" %o\n" % (os.stat(p).st_mode & 0o111))
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:12]


def cmd_wheels(args):
    pkgs = package_dirs(args.src)
    if not pkgs:
        sys.exit("pyindex: no packages under %s" % args.src)
    out = os.path.join(args.cache, sources_key(pkgs, args.epoch))
    if os.path.isfile(os.path.join(out, ".complete")):
        print(out)
        return 0
    os.makedirs(args.cache, exist_ok=True)
    os.umask(0o022)
    tmp = tempfile.mkdtemp(prefix=".build.", dir=args.cache)
    try:
        # Build from copies: pip builds in the source tree (build/,
        # *.egg-info) and must not litter the checkout.
        srcs = []
        for d in pkgs:
            dst = os.path.join(tmp, "src", os.path.basename(d))
            os.makedirs(dst)
            for rel in tree_files(d):
                os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                shutil.copy(os.path.join(d, rel), os.path.join(dst, rel))
            srcs.append((project_name(d), dst))
        # pip refuses two versions of one project in one run: build in
        # rounds in which every project appears once.
        rounds = []
        for name, dst in srcs:
            for r in rounds:
                if name not in r:
                    r[name] = dst
                    break
            else:
                rounds.append({name: dst})
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(args.epoch),
                   PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1",
                   PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PIP_INDEX_URL", None)
        env.pop("PIP_EXTRA_INDEX_URL", None)
        whl = os.path.join(tmp, "wheels")
        for r in rounds:
            cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-index",
                   "--no-build-isolation", "--no-deps", "--wheel-dir", whl]
            cmd += list(r.values())
            res = subprocess.run(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            if res.returncode != 0:
                sys.stderr.write(res.stdout)
                sys.exit("pyindex: building wheels failed: %s" % " ".join(cmd))
        built = sorted(f for f in os.listdir(whl) if f.endswith(".whl"))
        if len(built) != len(pkgs):
            sys.exit("pyindex: expected %d wheels, got %s" % (len(pkgs), built))
        with open(os.path.join(whl, "SHA256SUMS"), "w") as f:
            for b in built:
                f.write("%s  %s\n" % (sha256_file(os.path.join(whl, b)), b))
        open(os.path.join(whl, ".complete"), "w").close()
        if os.path.isdir(out):  # an interrupted earlier run
            shutil.rmtree(out)
        os.rename(whl, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(out)
    return 0


def poetry_content_hash(pyproject):
    """poetry's Locker._get_content_hash (1.x/2.x for [tool.poetry] projects)."""
    with open(pyproject, "rb") as f:
        content = tomllib.load(f).get("tool", {}).get("poetry", {})
    legacy = ["dependencies", "source", "extras", "dev-dependencies"]
    relevant = {}
    for key in legacy + ["group"]:
        data = content.get(key)
        if data is None and key not in legacy:
            continue
        relevant[key] = data
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def render(text, values, wheels, dirpath, tmpl):
    def sub(m):
        key, arg = m.group(1), m.group(2)
        if key in ("SHA256", "SIZE") and arg:
            p = os.path.join(wheels, arg)
            if not os.path.isfile(p):
                sys.exit("pyindex: %s names %s, which was not built" % (tmpl, arg))
            return sha256_file(p) if key == "SHA256" else str(os.path.getsize(p))
        if key == "POETRY_CONTENT_HASH" and not arg:
            return poetry_content_hash(os.path.join(dirpath, "pyproject.toml"))
        if key in values and not arg:
            return values[key]
        sys.exit("pyindex: %s: unknown placeholder %s" % (tmpl, m.group(0)))
    return PLACEHOLDER_RE.sub(sub, text)


def cmd_projects(args):
    index = args.index_url.rstrip("/")
    values = {"INDEX_URL": index,
              "FILES_URL": index.rsplit("/", 1)[0] + "/files"}
    for proj in sorted(os.listdir(args.templates)):
        src = os.path.join(args.templates, proj)
        if not os.path.isdir(src):
            continue
        dst = os.path.join(args.out, proj)
        os.makedirs(dst, exist_ok=True)
        names = sorted(os.listdir(src))
        # pyproject.toml first: poetry.lock's content hash reads it
        names.sort(key=lambda n: not n.startswith("pyproject.toml"))
        for name in names:
            p = os.path.join(src, name)
            if not os.path.isfile(p):
                continue
            with open(p) as f:
                text = f.read()
            if name.endswith(".in"):
                name = name[:-3]
                text = render(text, values, args.wheels, dst, p)
            write_if_changed(os.path.join(dst, name), text)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    w = sub.add_parser("wheels")
    w.add_argument("--src", required=True)
    w.add_argument("--cache", required=True)
    w.add_argument("--epoch", type=int, required=True)
    w.set_defaults(func=cmd_wheels)
    p = sub.add_parser("projects")
    p.add_argument("--wheels", required=True)
    p.add_argument("--templates", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--index-url", required=True)
    p.set_defaults(func=cmd_projects)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
