#!/usr/bin/python3
"""kiln's image names against the real flytekit's, on a table of specs.

Each spec below is written twice: as the keyword arguments a Python user
gives flytekit's ImageSpec (enums, tuples, a nested ImageSpec as base, env
values of every scalar type), and as the YAML kiln reads. The expected
name, tag and id of every row come from flytekit itself
(ImageSpec.image_name(), .tag, .id) and are kept in name_table.tsv beside
this file, so that kiln is checked against them on every machine:

    name_table.py generate > tests/flytekit/name_table.tsv   (needs flytekit)
    KILN=build/kiln name_table.py check-kiln      (kiln vs the table; python3 + PyYAML)
    KILN=build/kiln name_table.py check-flytekit  (table vs flytekit now, then kiln,
                                                   plus rows with absolute paths, live)

flytekit is imported from an installed flytekit, else from the runtime
in $KILN_FLYTEKIT_RUNTIME, else from the shared one beside the checkout
(../shared/flytekit-runtime; its README: the Debian packages it lists
must be installed, which tools/install-deps does when it finds it).
check-flytekit skips (exit 77, saying so) when none is there — a clone
on its own has no ../shared — and fails instead with
KILN_REQUIRE_FLYTEKIT=1.

The specs' files (copy entries, requirements, a source tree with ignore
files) are written into a fresh git work tree in a temporary directory:
flytekit's GitIgnore asks `git ls-files`, so .gitignore counts only inside
a work tree, while kiln always honours it. flytekit's default platform
depends on the host (linux/arm64 for a localhost registry on arm64); the
table is made with platform.machine() reporting x86_64, and check-kiln
leaves those rows out, saying so, on an arm64 host.
"""
import copy as copymod
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "name_table.tsv")
SRC = os.path.dirname(os.path.dirname(HERE))


class Mode:
    """flytekit.constants.CopyFileDetection.<member>; YAML: the lowercased name."""

    def __init__(self, member):
        self.member = member


class Base:
    """A nested ImageSpec as base_image; YAML: the nested mapping."""

    def __init__(self, **kw):
        self.kw = kw


# The files the specs refer to (relative to the spec's directory).
TREE = {
    "requirements.txt": "numpy==1.26.4\npandas>=2.0\n\n",
    "requirements-dev.txt": "  pytest\n",
    "data/table.csv": "a,b\n1,2\n",
    "data/nested/x.txt": "deep\n",
    "src/pkg/main.py": 'print("hello")\n',
    "conf.ini": "[x]\ny = 1\n",
    "proj/.gitignore": "*.log\nbuild/\n",
    "proj/.dockerignore": "secret.env\n",
    "proj/app/__init__.py": "",
    "proj/app/core.py": "X = 1\n",
    "proj/app/__pycache__/core.cpython-311.pyc": "bytecode",
    "proj/run.log": "ignored by .gitignore\n",
    "proj/build/out.txt": "ignored dir\n",
    "proj/secret.env": "ignored by .dockerignore\n",
    "proj/README.md": "# proj\n",
    "proj/.cache/x": "ignored by flytekit's standard ignores\n",
    "proj/app/stale.pyc": "bytecode",
    "lib/mod/__init__.py": "",
    "lib/mod/a.py": "A = 1\n",
    "lib/mod/__pycache__/a.cpython-311.pyc": "bytecode",
    "lib/stale.pyc": "bytecode",
    "lib/data.json": "{}\n",
    "small/only.py": "Y = 2\n",
}

BASE_SPEC = Base(name="base", registry="ghcr.io/acme", python_version="3.11", packages=["numpy"])

# (row name, ImageSpec keyword arguments). Every field, each of its shapes.
SPECS = [
    ("defaults", {}),
    ("name-upper", {"name": "My-Image"}),
    ("registry-upper", {"name": "x", "registry": "GHCR.io/Acme"}),
    ("basic", {"name": "my-image", "registry": "ghcr.io/flyteorg", "python_version": "3.11",
               "packages": ["pandas==2.2.2", "scikit-learn"], "apt_packages": ["git", "curl"]}),
    ("python-float", {"python_version": 3.1}),
    ("python-int", {"python_version": 3}),
    ("builder-default", {"name": "b", "builder": "default"}),
    ("builder-kiln", {"name": "b", "builder": "kiln"}),
    ("env-strings", {"env": {"HF_HOME": "/tmp/hf", "DEBUG": "1", "Q": "it's \"quoted\""}}),
    ("env-int", {"env": {"WORKERS": 8, "NEG": -3, "BIG": 123456789012345678901234567890}}),
    ("env-float", {"env": {"RATE": 1e-05, "SCALE": 2.5, "ONE": 1.0, "BIGF": 1e16, "THIRD": 1 / 3}}),
    ("env-bool", {"env": {"ON": True, "OFF": False}}),
    ("env-none", {"env": {"EMPTY": None}}),
    ("env-mixed", {"env": {"A": "x", "B": 1, "C": None, "D": True, "E": 0.1}}),
    ("env-order", {"env": {"Z": "1", "A": "2", "M": "3"}}),
    ("conda", {"conda_packages": ["cuda-toolkit"], "conda_channels": ["nvidia", "conda-forge"]}),
    ("requirements", {"name": "req", "registry": "docker.io/acme", "python_version": "3.10",
                      "requirements": "requirements.txt"}),
    ("requirements-strip", {"requirements": "requirements-dev.txt"}),
    ("cuda", {"cuda": "12.1", "cudnn": "8"}),
    ("cuda-float", {"cuda": 11.8}),
    ("base-string", {"base_image": "ghcr.io/flyteorg/flytekit:py3.11-latest"}),
    ("base-nested", {"name": "top", "base_image": BASE_SPEC, "packages": ["pandas"]}),
    ("base-nested-twice", {"name": "top2", "registry": "ghcr.io/acme",
                           "base_image": Base(name="mid", base_image=BASE_SPEC,
                                              env={"MID": 1})}),
    ("base-nested-copy", {"name": "top3", "base_image": Base(name="b3", copy=["conf.ini"],
                                                             registry_config="reg.json")}),
    ("platform-arm", {"platform": "linux/arm64"}),
    ("platform-multi", {"platform": "linux/amd64,linux/arm64"}),
    # the order of the platforms is part of the name; a build for both
    ("platform-multi-reversed", {"platform": "linux/arm64,linux/amd64"}),
    ("platform-multi-build", {"name": "multi", "registry": "127.0.0.1:5000/e2e",
                              "apt_packages": ["jq"], "packages": ["kiln-hello==1.1.0"],
                              "commands": ["uname -m > /root/arch"],
                              "platform": "linux/amd64,linux/arm64"}),
    ("localhost-default-platform", {"name": "lh", "registry": "localhost:30000"}),
    ("localhost-platform-set", {"name": "lh", "registry": "localhost:30000",
                                "platform": "linux/amd64"}),
    ("pip-index", {"pip_index": "https://pypi.example.com/simple",
                   "pip_extra_index_url": ["https://extra.example.com/simple", "https://b/simple"]}),
    ("pip-secret-mounts", {"pip_secret_mounts": [(".netrc", "/root/.netrc"),
                                                 ("token", "/run/secrets/token")]}),
    ("pip-extra-args", {"pip_extra_args": "--no-cache-dir --prefer-binary"}),
    ("registry-config", {"name": "rc", "registry_config": "/home/me/.docker/config.json"}),
    ("registry-config-rel", {"name": "rc", "registry": "ghcr.io/x", "registry_config": "reg.json"}),
    ("entrypoint-empty", {"entrypoint": []}),
    ("entrypoint-set", {"entrypoint": ["/bin/bash", "-c"]}),
    ("commands", {"commands": ["echo hi", "apt-get update && apt-get install -y jq"]}),
    ("tag-format", {"name": "t", "tag_format": "{spec_hash}-dev"}),
    ("copy-files", {"name": "copyimg", "registry": "ghcr.io/acme",
                    "copy": ["data", "src/pkg/main.py"]}),
    ("copy-one", {"copy": ["conf.ini"]}),
    # (flytekit 1.16 applies .gitignore, .dockerignore and the .cache
    # pattern only to an absolute source_root: it matches the walked paths,
    # relative to the working directory, against patterns relative to
    # source_root; kiln always applies them, so a relative source_root
    # holding files they exclude names differently. Not in the table.)
    ("source-all", {"name": "src", "source_root": "lib", "source_copy_mode": Mode("ALL")}),
    ("source-all-small", {"source_root": "small", "source_copy_mode": Mode("ALL")}),
    ("source-no-copy", {"name": "src", "source_root": "proj", "source_copy_mode": Mode("NO_COPY")}),
    ("mode-no-copy-alone", {"source_copy_mode": Mode("NO_COPY")}),
    ("source-default-mode", {"name": "src", "source_root": "proj"}),
    ("source-loaded-modules", {"name": "src", "source_root": "proj",
                               "source_copy_mode": Mode("LOADED_MODULES")}),
    ("python-exec", {"python_exec": "/usr/bin/python3"}),
    ("runtime-packages", {"runtime_packages": ["flytekitplugins-x", "numpy"]}),
    ("builder-options", {"builder_options": {"cpu": 4, "mem": "8Gi", "flags": [1, "a", None],
                                             "nested": {"b": True, "a": 0.5}}}),
    ("builder-config", {"builder_config": {"uv_image": "ghcr.io/astral-sh/uv:0.5.1",
                                           "micromamba_image": "mambaorg/micromamba:2.0.3-debian12-slim"}}),
    ("unicode", {"name": "u", "commands": ["echo 'héllo' \u200b tab\there"], "env": {"É": "ü"}}),
    ("everything", {
        "name": "Trainer", "python_version": "3.12", "builder": "kiln", "source_root": "small",
        "env": {"HF_HOME": "/tmp/hf", "N": 2, "F": 1.5, "B": False, "Z": None},
        "registry": "localhost:30000", "packages": ["torch", "numpy<2"],
        "conda_packages": ["cuda-toolkit"], "conda_channels": ["nvidia"],
        "requirements": "requirements.txt", "apt_packages": ["git"], "cuda": "12.1",
        "cudnn": "8", "base_image": BASE_SPEC, "platform": "linux/amd64",
        "pip_index": "https://pypi.example.com/simple",
        "pip_extra_index_url": ["https://extra.example.com/simple"],
        "pip_secret_mounts": [(".netrc", "/root/.netrc")], "pip_extra_args": "--pre",
        "registry_config": "reg.json", "entrypoint": ["/bin/bash"], "commands": ["echo hi"],
        "tag_format": "{spec_hash}-dev", "source_copy_mode": Mode("ALL"),
        "copy": ["data", "conf.ini"], "python_exec": "/usr/bin/python3",
        "runtime_packages": ["x"], "builder_options": {"cpu": 4},
        "builder_config": {"uv_image": "u"},
    }),
]



def live_specs(top):
    """Rows whose YAML holds the temporary directory's path, so they are
    checked against flytekit live (check-flytekit), not kept in the table:
    an absolute source_root, where flytekit applies the ignore files, and
    loaded_modules, whose digest covers the modules this process imported
    (kiln is given them with --loaded-modules, as the plugin gives them)."""
    proj = os.path.join(top, "proj")
    lib = os.path.join(top, "lib")
    return [
        ("live-source-all-absolute", {"name": "src", "source_root": proj,
                                      "source_copy_mode": Mode("ALL")}),
        ("live-everything-absolute", dict(SPECS[-1][1], source_root=proj)),
        ("live-loaded-default", {"name": "src", "source_root": proj}),
        ("live-loaded-explicit", {"name": "src", "source_root": lib,
                                  "source_copy_mode": Mode("LOADED_MODULES")}),
        # flytekit compares source_root as written: with a trailing '/' no
        # module file is inside it
        ("live-loaded-slash", {"source_root": proj + "/"}),
        ("live-loaded-relative", {"source_root": "proj"}),
        ("live-loaded-nested", {"name": "top", "source_root": proj,
                                "base_image": Base(name="b", source_root=lib)}),
    ]


def import_tree_modules(top):
    """Imports modules of the tree (proj/app, lib/mod) into this process,
    as pyflyte imports a project's, and writes the module files flytekit
    sees (every root: kiln keeps those inside each spec's source_root) to
    top/loaded-modules.txt."""
    from flytekit.tools.script_mode import list_imported_modules_as_files

    for d in ("proj", "lib"):
        sys.path.insert(0, os.path.join(top, d))
    import importlib
    importlib.import_module("app.core")
    importlib.import_module("mod.a")
    files = list_imported_modules_as_files("/", list(sys.modules.values()))
    path = os.path.join(top, "loaded-modules.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in files))
    return path


# (row, ImageSpec) of every spec flytekit_rows made, for check_plugin_yaml.
SPEC_OBJECTS = []

# Rows whose name depends on the machine flytekit runs on.
MACHINE_ROWS = {"localhost-default-platform"}


def to_yaml_value(v):
    if isinstance(v, Mode):
        return v.member.lower()
    if isinstance(v, Base):
        return {k: to_yaml_value(x) for k, x in v.kw.items()}
    if isinstance(v, tuple):
        return [to_yaml_value(x) for x in v]
    if isinstance(v, list):
        return [to_yaml_value(x) for x in v]
    if isinstance(v, dict):
        return {k: to_yaml_value(x) for k, x in v.items()}
    return v


def spec_yaml(kw):
    d = to_yaml_value(kw)
    text = yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=1 << 20) if d else "{}\n"
    # the YAML must read back as exactly the values given (types included)
    back = yaml.safe_load(text)
    assert back == d and repr(back) == repr(d), (d, back)
    return text


def write_tree(top):
    """The specs' files and YAMLs in top, made a git work tree."""
    for rel, content in TREE.items():
        p = os.path.join(top, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(content)
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q", top], check=True, env=env)
    for row, kw in SPECS + live_specs(top):
        with open(os.path.join(top, row + ".yaml"), "w", encoding="utf-8") as f:
            f.write(spec_yaml(kw))


def import_flytekit():
    try:
        import flytekit  # noqa: F401
        return "installed flytekit"
    except ImportError:
        pass
    for runtime in (os.environ.get("KILN_FLYTEKIT_RUNTIME"),
                    os.path.join(os.path.dirname(SRC), "shared", "flytekit-runtime")):
        site = os.path.join(runtime or "", "site")
        if runtime and os.path.isdir(os.path.join(site, "flytekit")):
            sys.path.insert(0, site)
            try:
                import flytekit  # noqa: F401
            except ImportError as e:
                sys.exit(f"FAIL: {site}: flytekit does not import ({e}): install the Debian "
                         f"packages of {runtime}/debian-packages.txt (tools/install-deps does)")
            return site
    return None


def flytekit_rows(top, specs, live=False):
    """(row, name, tag, id) from the real ImageSpec, or 'refused' rows."""
    import platform

    from flytekit.constants import CopyFileDetection
    from flytekit.image_spec.image_spec import ImageSpec

    platform.machine = lambda: "x86_64"  # the table is amd64's view

    def to_py(v):
        if isinstance(v, Mode):
            return CopyFileDetection[v.member]
        if isinstance(v, Base):
            return ImageSpec(**{k: to_py(x) for k, x in v.kw.items()})
        if isinstance(v, list):
            return [to_py(x) for x in v]
        if isinstance(v, tuple):
            return tuple(to_py(x) for x in v)
        if isinstance(v, dict):
            return {k: to_py(x) for k, x in v.items()}
        return v

    old = os.getcwd()
    os.chdir(top)
    try:
        out = []
        for row, kw in specs:
            spec = ImageSpec(**to_py(copymod.deepcopy(kw)))
            SPEC_OBJECTS.append((row, spec))
            name, tag, ident = spec.image_name(), spec.tag, spec.id
            # loaded_modules without a module list (the table's rows):
            # the digest covers the modules this process imported from
            # source_root, which kiln cannot know
            if spec.source_copy_mode == CopyFileDetection.LOADED_MODULES and not live:
                name = tag = "refused"
            out.append((row, name, tag, ident))
        return out
    finally:
        os.chdir(old)


def check_plugin_yaml(top, specs, loaded):
    """The plugin's ImageSpec -> YAML (plugins/flytekitplugins-kiln), fed
    to kiln on stdin from the tree as the plugin feeds it: kiln's name and
    id must be flytekit's for every spec object."""
    sys.path.insert(0, os.path.join(SRC, "plugins", "flytekitplugins-kiln"))
    from flytekitplugins.kiln import spec as plugin_spec

    kiln = os.environ["KILN"]
    bad = 0
    for row, spec in specs:
        p = subprocess.run([kiln, "name", "--json", "-f", "-", "--loaded-modules", loaded],
                           input=plugin_spec.to_yaml(spec), capture_output=True, text=True,
                           cwd=top)
        if p.returncode != 0:
            print(f"FAIL: plugin YAML of {row}: kiln name exited {p.returncode}: {p.stderr}")
            bad += 1
            continue
        got = json.loads(p.stdout)
        for key, want in (("name", spec.image_name()), ("id", spec.id)):
            if got[key] != want:
                print(f"FAIL: plugin YAML of {row}: {key} {got[key]}, flytekit {want}")
                bad += 1
    if bad:
        return 1
    print(f"ok: the plugin's YAML names {len(specs)} ImageSpec objects as flytekit does")
    return 0


def read_table():
    rows = []
    with open(TABLE, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            rows.append(tuple(line.rstrip("\n").split("\t")))
    return rows


def check_kiln(top, rows, extra=()):
    kiln = os.environ["KILN"]
    arm = os.uname().machine in ("arm64", "aarch64")
    bad = 0
    checked = 0
    for row, name, tag, ident in rows:
        if arm and row in MACHINE_ROWS:
            print(f"NOTE: {row} left out: the table is amd64's and this host is arm64")
            continue
        p = subprocess.run([kiln, "name", "--json", os.path.join(top, row + ".yaml"), *extra],
                           capture_output=True, text=True)
        checked += 1
        if name == "refused":
            if p.returncode != 8 or "loaded_modules" not in p.stderr:
                print(f"FAIL: {row}: kiln should refuse loaded_modules (exit 8), got exit "
                      f"{p.returncode}: {p.stdout.strip()} {p.stderr.strip()}")
                bad += 1
            continue
        if p.returncode != 0:
            print(f"FAIL: {row}: kiln name exited {p.returncode}: {p.stderr.strip()}")
            bad += 1
            continue
        got = json.loads(p.stdout)
        for key, want in (("name", name), ("tag", tag), ("id", ident)):
            if got[key] != want:
                print(f"FAIL: {row}: {key} {got[key]}, flytekit {want}")
                bad += 1
    if bad:
        print(f"FAIL: {bad} differences in {checked} rows")
        return 1
    print(f"ok: kiln name agrees with flytekit on {checked} specs")
    return 0


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd not in ("generate", "check-kiln", "check-flytekit"):
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kiln-name-table.") as top:
        write_tree(top)
        if cmd == "check-kiln":
            return check_kiln(top, read_table())
        where = import_flytekit()
        if where is None:
            msg = ("flytekit is not importable: no installed flytekit, no $KILN_FLYTEKIT_RUNTIME, "
                   f"no {os.path.join(os.path.dirname(SRC), 'shared', 'flytekit-runtime')}; "
                   "kiln's names were NOT checked against the real ImageSpec")
            if os.environ.get("KILN_REQUIRE_FLYTEKIT") != "1" and cmd == "check-flytekit":
                print("SKIP: " + msg + " (KILN_REQUIRE_FLYTEKIT=1 makes this a failure)")
                return 77
            print("FAIL: " + msg)
            return 1
        import flytekit

        rows = flytekit_rows(top, SPECS)
        if cmd == "generate":
            print(f"# made by tests/flytekit/name_table.py generate with flytekit "
                  f"{flytekit.__version__}; row, name, tag, id ('refused': kiln must refuse)")
            for r in rows:
                print("\t".join(r))
            return 0
        table = read_table()
        if rows != table:
            for a, b in zip(rows, table):
                if a != b:
                    print(f"FAIL: flytekit {where} now says {a}, the table {b}")
            if len(rows) != len(table):
                print(f"FAIL: {len(rows)} specs, {len(table)} table rows")
            print("FAIL: name_table.tsv is not what flytekit computes: regenerate it")
            return 1
        print(f"ok: name_table.tsv is what flytekit {flytekit.__version__} ({where}) computes "
              f"for {len(rows)} specs")
        if check_kiln(top, rows):
            return 1
        loaded = import_tree_modules(top)
        if check_kiln(top, flytekit_rows(top, live_specs(top), live=True),
                      ["--loaded-modules", loaded]):
            return 1
        return check_plugin_yaml(top, SPEC_OBJECTS, loaded)


if __name__ == "__main__":
    sys.exit(main())
