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

  pyindex.py flytekit-wheels --runtime DIR --cache DIR --epoch N
      Wheels of the flytekit runtime (DIR/site: flytekit 1.16.24 and the
      pure-Python packages Debian lacks), one per distribution, with
      Requires-Dist between them and on what Debian packages, and
      flytekit's console scripts. Written directly with zipfile (the runtime
      has no build metadata), into CACHE/<key>, key = hash of the runtime's
      files, this script and the epoch. Prints the directory.

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
import zipfile

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


def cache_entry(cache, key, build):
    """CACHE/KEY, a directory of wheels with SHA256SUMS, made when it is not
    complete yet: build(tmp) writes the wheels into a new directory below the
    scratch directory tmp and returns it; it is then moved into place
    (replacing what an interrupted earlier run left)."""
    out = os.path.join(cache, key)
    if os.path.isfile(os.path.join(out, ".complete")):
        return out
    os.makedirs(cache, exist_ok=True)
    os.umask(0o022)
    tmp = tempfile.mkdtemp(prefix=".build.", dir=cache)
    try:
        whl = build(tmp)
        built = sorted(f for f in os.listdir(whl) if f.endswith(".whl"))
        with open(os.path.join(whl, "SHA256SUMS"), "w") as f:
            for b in built:
                f.write("%s  %s\n" % (sha256_file(os.path.join(whl, b)), b))
        open(os.path.join(whl, ".complete"), "w").close()
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.rename(whl, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_test_wheels(pkgs, epoch, tmp):
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
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch),
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
    return whl


def cmd_wheels(args):
    pkgs = package_dirs(args.src)
    if not pkgs:
        sys.exit("pyindex: no packages under %s" % args.src)
    print(cache_entry(args.cache, sources_key(pkgs, args.epoch),
                      lambda tmp: build_test_wheels(pkgs, args.epoch, tmp)))
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


# ------------------------------------------------------- flytekit runtime

# The distributions the flytekit runtime's site/ holds, as PyPI ships them:
# (name, version, top-level entries of site/ it owns, license file in
# licenses/, Requires-Dist). Versions are the runtime README's. Requires-Dist
# names only what these wheels or the runtime's Debian packages provide:
# pip offline must resolve every one. flytekit's own list is its
# pyproject.toml at e96c720 minus what neither has (adlfs, gcsfs, s3fs,
# grpcio-status, joblib, jsonpickle, marshmallow-jsonschema), with the bounds
# dropped where Debian 12's version is below them (cachetools, fsspec,
# msgpack, pytimeparse, pyyaml: PyYAML 6.0 is 6.0.0, which flytekit excludes).
FLYTEKIT_VERSION = "1.16.24"
RUNTIME_DISTS = [
    ("flytekit", FLYTEKIT_VERSION, ["flytekit"], "flytekit.LICENSE", [
        "cachetools", "click>=6.6", "cloudpickle>=2.0.0", "croniter>=0.3.20",
        "dataclasses-json<0.5.12,>=0.5.2", "diskcache>=5.2.1", "docker>=4.0.0",
        "docstring-parser>=0.9.0", "flyteidl<2.0.0a0,>=1.16.7", "fsspec",
        "googleapis-common-protos>=1.57", "grpcio", "importlib-metadata", "jsonlines",
        "keyring>=18.0.1", "markdown-it-py", "marshmallow<4,>=3", "marshmallow-enum",
        "setuptools<82", "mashumaro>=3.15", "msgpack", "protobuf!=4.25.0", "pygments",
        "python-json-logger>=2.0.0", "pytimeparse", "pyyaml", "requests>=2.18.4", "rich",
        "rich_click", "statsd>=3.0.0", "typing_extensions", "urllib3>=1.22"]),
    ("flyteidl", "1.16.8", ["flyteidl"], "flyteidl.LICENSE", [
        "googleapis-common-protos", "protoc-gen-openapiv2", "protobuf>=4.21.1"]),
    ("mashumaro", "3.16", ["mashumaro"], "mashumaro.LICENSE", ["typing_extensions>=4.1.0"]),
    ("docstring_parser", "0.18", ["docstring_parser"], "docstring_parser.LICENSE", []),
    ("jsonlines", "4.0.0", ["jsonlines"], "jsonlines.LICENSE", ["attrs>=19.2.0"]),
    # google/ has no __init__.py in the runtime, in Debian's python3-protobuf
    # or here: an implicit namespace package, so google.api (this wheel) and
    # google.protobuf (Debian) import side by side.
    ("googleapis-common-protos", "1.61.0", ["google"], "googleapis-common-protos.LICENSE",
     ["protobuf<5.0.0.dev0,>=3.19.5"]),
    ("protoc-gen-openapiv2", "0.0.1", ["protoc_gen_openapiv2"], "protoc_gen_openapiv2.LICENSE",
     ["googleapis-common-protos", "protobuf>=4.21.0"]),
]
# flytekit's [project.scripts] at e96c720.
FLYTEKIT_SCRIPTS = [
    ("flyte-cli", "flytekit.clis.flyte_cli.main:_flyte_cli"),
    ("pyflyte", "flytekit.clis.sdk_in_container.pyflyte:main"),
    ("pyflyte-execute", "flytekit.bin.entrypoint:execute_task_cmd"),
    ("pyflyte-fast-execute", "flytekit.bin.entrypoint:fast_execute_task_cmd"),
    ("pyflyte-map-execute", "flytekit.bin.entrypoint:map_execute_task_cmd"),
]


def runtime_files(site, top):
    """(archive path, file path) of one top-level entry of site/, sorted;
    byte code is left out (pip compiles at install)."""
    out = []
    base = os.path.join(site, top)
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if not f.endswith((".pyc", ".pyo")):
                p = os.path.join(root, f)
                out.append((os.path.relpath(p, site), p))
    return out


def runtime_key(runtime, epoch):
    h = hashlib.sha256(b"epoch %d\n" % epoch)
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    for sub in ("site", "licenses"):
        for rel in tree_files(os.path.join(runtime, sub)):
            h.update(b"\0file " + os.path.join(sub, rel).encode() + b"\n")
            with open(os.path.join(runtime, sub, rel), "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:12]


def record_hash(data):
    import base64
    d = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def write_wheel(out_dir, name, version, members, epoch):
    """members: [(archive path, bytes, mode)]; dist-info last, RECORD at the
    very end, as bdist_wheel writes them. Fixed timestamps: reproducible."""
    dist = re.sub(r"[-_.]+", "_", name)
    path = os.path.join(out_dir, "%s-%s-py3-none-any.whl" % (dist, version))
    stamp = max(epoch, 315532800)  # zip cannot say earlier than 1980
    date_time = tuple(__import__("time").gmtime(stamp))[:6]
    record = "%s-%s.dist-info/RECORD" % (dist, version)
    lines = []
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data, mode in members:
            zi = zipfile.ZipInfo(arc, date_time)
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
            lines.append("%s,%s,%d" % (arc, record_hash(data), len(data)))
        lines.append("%s,," % record)
        zi = zipfile.ZipInfo(record, date_time)
        zi.external_attr = 0o100644 << 16
        zi.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(zi, "\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    return os.path.basename(path)


def runtime_wheel_members(runtime, site, dist):
    name, version, tops, lic, requires = dist
    members = []
    for top in tops:
        for arc, p in runtime_files(site, top):
            with open(p, "rb") as f:
                members.append((arc, f.read(), 0o644))
    di = "%s-%s.dist-info/" % (re.sub(r"[-_.]+", "_", name), version)
    if name == "flytekit":
        # [tool.setuptools] script-files that the runtime has: pip puts
        # them in bin/ as they are (no "#!python" line to rewrite)
        with open(os.path.join(site, "flytekit", "bin", "entrypoint.py"), "rb") as f:
            members.append(("flytekit-%s.data/scripts/entrypoint.py" % version,
                            f.read(), 0o755))
    meta = ["Metadata-Version: 2.1", "Name: " + name, "Version: " + version,
            "Summary: %s, from kiln's flytekit runtime (see its README.md)" % name,
            "Requires-Python: >=3.9"]
    meta += ["Requires-Dist: " + r for r in requires]
    with open(os.path.join(runtime, "licenses", lic), "rb") as f:
        members.append((di + "LICENSE", f.read(), 0o644))
    members.append((di + "METADATA", ("\n".join(meta) + "\n\n").encode(), 0o644))
    members.append((di + "WHEEL", b"Wheel-Version: 1.0\nGenerator: kiln tools/pyindex.py\n"
                    b"Root-Is-Purelib: true\nTag: py3-none-any\n\n", 0o644))
    if name == "flytekit":
        ep = "[console_scripts]\n" + "".join("%s = %s\n" % s for s in FLYTEKIT_SCRIPTS)
        members.append((di + "entry_points.txt", ep.encode(), 0o644))
    members.append((di + "top_level.txt", "".join(t + "\n" for t in tops).encode(), 0o644))
    return members


def cmd_flytekit_wheels(args):
    runtime = os.path.abspath(args.runtime)
    site = os.path.join(runtime, "site")
    owned = {t for d in RUNTIME_DISTS for t in d[2]}
    present = set(os.listdir(site))
    if present != owned:
        sys.exit("pyindex: %s holds %s, the wheels expect %s: update RUNTIME_DISTS"
                 % (site, sorted(present), sorted(owned)))

    def build(tmp):
        whl = os.path.join(tmp, "wheels")
        os.mkdir(whl)
        for d in RUNTIME_DISTS:
            write_wheel(whl, d[0], d[1], runtime_wheel_members(runtime, site, d), args.epoch)
        return whl
    print(cache_entry(args.cache, runtime_key(runtime, args.epoch), build))
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
    f = sub.add_parser("flytekit-wheels")
    f.add_argument("--runtime", required=True)
    f.add_argument("--cache", required=True)
    f.add_argument("--epoch", type=int, required=True)
    f.set_defaults(func=cmd_flytekit_wheels)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
