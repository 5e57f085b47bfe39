#!/usr/bin/env python3
"""Tests of layers/lock_requirements.py, the lock -> pip requirements converter.

Fixtures: testdata/python/lock/ (hand-written locks in uv's and Poetry's
formats; a hash there is sha256 of the file name it stands for) and the test
bed's project templates (testdata/python/projects/, testdata/python/lock/
testbed/) rendered against wheels built here, whose requirements are then
installed offline with --require-hashes. Standard library only.
"""

import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the script and tools/pyindex.py
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "layers", "lock_requirements.py")
FIX = os.path.join(ROOT, "testdata", "python", "lock")
PYINDEX = os.path.join(ROOT, "tools", "pyindex.py")
DEBIAN_PY = "/usr/bin/python3"
EPOCH = "1704067200"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


lr = load("lock_requirements", SCRIPT)


def h(filename):
    return "sha256:" + hashlib.sha256(filename.encode()).hexdigest()


def pin(req, files, marker=None, hashes=h):
    """An expected requirement line: hashes sorted, as the script writes them."""
    line = req + (" ; " + marker if marker else "")
    return " ".join([line] + ["--hash=" + x for x in sorted(hashes(f) for f in files)])


def convert(src, *opts, **kw):
    """Run the script: (exit status, output text or None, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "requirements.txt")
        cmd = kw.get("argv", [kw.get("python", sys.executable), SCRIPT]) + [src, out] + list(opts)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        text = None
        if os.path.exists(out):
            with open(out) as f:
                text = f.read()
        return p.returncode, text, p.stderr


def read(path):
    with open(path) as f:
        return f.read()


def lines(*ls):
    return "\n".join(ls) + "\n"


def fixture_source(d):
    """What a fixture directory is converted from: its lock, else its pyproject."""
    for name in ("uv.lock", "poetry.lock", "pyproject.toml"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(os.path.basename(d), name)


# fixture -> the requirements it gives: the expected.txt beside it, checked
# by hand (which packages, markers, hashes and index lines each lock yields)
EXPECTED = dict((fixture_source(os.path.dirname(e)), read(e))
                for e in sorted(glob.glob(os.path.join(FIX, "*", "expected.txt"))))
PRIVATE = "https://user:s3cret@pkgs.example.com/simple"


def without_index_lines(text):
    return "".join(l for l in text.splitlines(True) if not l.startswith("--"))


class Conversions(unittest.TestCase):
    def test_fixtures(self):
        for rel, want in sorted(EXPECTED.items()):
            for opts in ([], ["--no-index-lines"]):
                with self.subTest(fixture=rel, opts=opts):
                    rc, text, err = convert(os.path.join(FIX, rel), *opts)
                    self.assertEqual((rc, err), (0, ""))
                    self.assertEqual(text, without_index_lines(want) if opts else want)

    def test_poetry_21_lock_without_groups_is_walked(self):
        # no per-package groups: follow [project] and the groups' dependencies
        with tempfile.TemporaryDirectory() as tmp:
            d = make_variant(tmp, "poetry-v2", {})
            lock = os.path.join(d, "poetry.lock")
            text = re.sub(r"^(groups|markers) = .*\n", "", read(lock), flags=re.M)
            with open(lock, "w") as f:
                f.write(text)
            want = EXPECTED["poetry-v2/poetry.lock"].replace(
                'python_full_version <= "3.10.0" or python_version < "3.11"', 'python_version < "3.11"')
            self.assertEqual(convert(lock), (0, want, ""))

    def test_output_is_deterministic_and_replaced_atomically(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "reqs.txt")
            with open(out, "w") as f:
                f.write("old\n")
            for _ in range(2):
                p = subprocess.run([sys.executable, SCRIPT, os.path.join(FIX, "uv-fork/uv.lock"), out])
                self.assertEqual(p.returncode, 0)
                with open(out) as f:
                    self.assertEqual(f.read(), EXPECTED["uv-fork/uv.lock"])
            self.assertEqual(os.listdir(d), ["reqs.txt"])
            self.assertEqual(os.stat(out).st_mode & 0o777, 0o644)
            # a failed run leaves the old file alone and no temporary behind
            p = subprocess.run([sys.executable, SCRIPT, os.path.join(FIX, "uv-stale/uv.lock"), out],
                               stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 2)
            with open(out) as f:
                self.assertEqual(f.read(), EXPECTED["uv-fork/uv.lock"])
            self.assertEqual(os.listdir(d), ["reqs.txt"])


# (fixture dir, {file: [(old, new)] | new text | None (delete)}, file named in
# the message, reason). Every `old` must occur in the fixture.
ONLY = "kiln installs locked packages from indexes only"
REV = "0123456789abcdef0123456789abcdef01234567"
GIT_SRC = 'source = { git = "https://deploy:tok3n@github.com/acme/mylib?branch=main#%s" }' % REV
NUMPY_124 = '{ name = "numpy", version = "1.24.4", source = { registry = "https://pypi.org/simple" }, '
UV_ROOT_NAME = 'name = "Demo_App"'
TYPING_HASH = h("typing_extensions-4.9.0-py3-none-any.whl")
STALE_HASH = "08158bf076b3aaf885942a61a005184ef55d9604dae484043b29cb8fade19731"
LOCKED_HASH = re.search(r'content-hash = "(\w+)"', read(os.path.join(FIX, "poetry-stale/poetry.lock"))).group(1)
ERRORS = [
    ("uv-git", {}, "uv.lock",
     'package mylib comes from git "https://****@github.com/acme/mylib?branch=main#%s": %s' % (REV, ONLY)),
    ("uv-git", {"uv.lock": [(GIT_SRC, 'source = { path = "../mylib" }')]}, "uv.lock",
     'package mylib comes from path "../mylib": ' + ONLY),
    ("uv-git", {"uv.lock": [(GIT_SRC, 'source = { directory = "libs/mylib" }')]}, "uv.lock",
     'package mylib comes from directory "libs/mylib": ' + ONLY),
    ("uv-git", {"uv.lock": [(GIT_SRC, 'source = { editable = "libs/mylib" }')]}, "uv.lock",
     'package mylib comes from editable "libs/mylib": ' + ONLY),
    ("uv-git", {"uv.lock": [(GIT_SRC, 'source = { url = "https://deploy:tok3n@example.com/mylib-0.4.tar.gz" }')]},
     "uv.lock", 'package mylib comes from url "https://****@example.com/mylib-0.4.tar.gz": ' + ONLY),
    ("uv-stale", {}, "uv.lock",
     "uv.lock is out of date with pyproject.toml: pyproject.toml requires kiln-data, kiln-hello==1.2.0, not in "
     "uv.lock; uv.lock has kiln-hello==1.1.0, not in pyproject.toml (run `uv lock`)"),
    ("uv-basic", {"pyproject.toml": [('"requests >= 2.31"', '"requests >= 2.32"')]}, "uv.lock",
     "uv.lock is out of date with pyproject.toml: pyproject.toml requires requests>=2.32, not in uv.lock; "
     "uv.lock has requests>=2.31, not in pyproject.toml (run `uv lock`)"),
    ("uv-basic", {"pyproject.toml": [('plot = ["matplotlib>=3"]', 'plot = ["matplotlib>=3.8"]')]}, "uv.lock",
     "uv.lock is out of date with pyproject.toml: pyproject.toml requires matplotlib>=3.8 (extra plot), not in "
     "uv.lock; uv.lock has matplotlib>=3; extra == 'plot', not in pyproject.toml (run `uv lock`)"),
    ("uv-basic", {"pyproject.toml": [(UV_ROOT_NAME, 'name = "other-app"')]}, "uv.lock",
     'no package for the project "other-app" of pyproject.toml (source virtual or editable ".")'),
    ("uv-basic", {"uv.lock": [("version = 1\n", "version = 2\n")]}, "uv.lock",
     "unsupported uv.lock version 2 (kiln reads version 1)"),
    ("uv-basic", {"uv.lock": [("version = 1\n", "")]}, "uv.lock",
     "unsupported uv.lock version null (kiln reads version 1)"),
    ("uv-basic", {"pyproject.toml": None}, "pyproject.toml",
     "not found (uv.lock needs the pyproject.toml beside it)"),
    ("uv-basic", {"pyproject.toml": "[project\nname = 'x'\n"}, "pyproject.toml",
     "invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 9)"),
    ("uv-basic", {"uv.lock": [(TYPING_HASH, "md5:0123")]}, "uv.lock",
     "package typing-extensions 4.9.0 has no sha256 hashes in the lock (pip --require-hashes needs them)"),
    ("uv-basic", {"uv.lock": [('[\n    { name = "tiny" },', '[\n    { name = "tinier" },')]}, "uv.lock",
     "colorama depends on tinier, which the lock does not contain"),
    ("uv-basic", {"uv.lock": [('source = { registry = "%s" }\nsdist' % PRIVATE, 'source = "private"\nsdist')]},
     "uv.lock", "[[package]] 1: source must be a table"),
    ("uv-fork", {"uv.lock": [(NUMPY_124, '{ name = "numpy", ')]}, "uv.lock",
     "forky depends on numpy, which the lock holds more than once"),
    ("malformed", {}, "uv.lock", "invalid TOML: Invalid value (at line 5, column 8)"),
    ("poetry-git", {}, "poetry.lock",
     'package mylib comes from git "https://****@github.com/acme/mylib.git": ' + ONLY),
    ("poetry-git", {"poetry.lock": [('type = "git"', 'type = "directory"')]}, "poetry.lock",
     'package mylib comes from directory "https://****@github.com/acme/mylib.git": ' + ONLY),
    ("poetry-stale", {}, "poetry.lock",
     'poetry.lock is out of date with pyproject.toml (content-hash "%s" in poetry.lock, "%s" from '
     "pyproject.toml; run `poetry lock`)" % (LOCKED_HASH, STALE_HASH)),
    ("poetry-basic", {"poetry.lock": [('lock-version = "2.0"', 'lock-version = "3.0"')]}, "poetry.lock",
     'unsupported poetry.lock lock-version "3.0" (kiln reads 1.x and 2.x)'),
    ("poetry-basic", {"poetry.lock": [('iniconfig = "*"', 'iniconfig-gone = "*"')]}, "poetry.lock",
     "pytest depends on iniconfig-gone *, which poetry.lock does not contain"),
    ("poetry-basic", {"poetry.lock": None}, "poetry.lock", "not found"),
    ("pyproject-poetry", {"pyproject.toml": [('star = "*"', 'star = "^1.0 || ^2.0"')]}, "pyproject.toml",
     "dependency star: constraint '^1.0 || ^2.0' (an OR) has no pip equivalent"),
    ("pyproject-poetry", {"pyproject.toml": [('star = "*"', 'star = {git = "https://u:tok3n@h.example/a/star"}')]},
     "pyproject.toml",
     'dependency star comes from git "https://****@h.example/a/star": kiln installs packages from indexes only'),
    ("pyproject-project", {"pyproject.toml": [('"attrs"', '"-e ./attrs"')]}, "pyproject.toml",
     "[project] not a PEP 508 requirement: '-e ./attrs'"),
    ("pyproject-project", {"requirements.in": "attrs\n"}, "requirements.in",
     "expected a file named uv.lock, poetry.lock or pyproject.toml"),
]


def make_variant(tmp, fixture, changes):
    d = os.path.join(tmp, fixture)
    shutil.copytree(os.path.join(FIX, fixture), d)
    for name, change in changes.items():
        p = os.path.join(d, name)
        if change is None:
            os.unlink(p)
            continue
        text = change
        if isinstance(change, list):
            text = read(p)
            for old, new in change:
                assert old in text, (fixture, name, old)
                text = text.replace(old, new, 1)
        with open(p, "w") as f:
            f.write(text)
    return d


def source_of(d, named):
    """The file the script is given: the lock, for a complaint about the pyproject beside it."""
    if named == "pyproject.toml":
        for lock in ("uv.lock", "poetry.lock"):
            if os.path.exists(os.path.join(d, lock)):
                return os.path.join(d, lock)
    return os.path.join(d, named)


class Errors(unittest.TestCase):
    def test_errors(self):
        for i, (fixture, changes, named, reason) in enumerate(ERRORS):
            with self.subTest(case=i, fixture=fixture, reason=reason[:40]), tempfile.TemporaryDirectory() as tmp:
                d = make_variant(tmp, fixture, changes)
                rc, text, err = convert(source_of(d, named))
                self.assertEqual((rc, text), (2, None))
                self.assertEqual(err, "kiln-lock: %s: %s\n" % (os.path.join(d, named), reason))
                self.assertNotIn("s3cret", err)
                self.assertNotIn("tok3n", err)

    def test_usage(self):
        for argv, rc, want in [([], 2, "kiln-lock: " + lr.USAGE + "\n"),
                               (["a", "b", "--frobnicate"], 2,
                                "kiln-lock: unknown option --frobnicate; " + lr.USAGE + "\n")]:
            p = subprocess.run([sys.executable, SCRIPT] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (rc, "", want))
        p = subprocess.run([sys.executable, SCRIPT, "--help"], stdout=subprocess.PIPE, universal_newlines=True)
        self.assertEqual((p.returncode, p.stdout), (0, lr.USAGE + "\n"))

    def test_unwritable_output(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "missing", "reqs.txt")
            p = subprocess.run([sys.executable, SCRIPT, os.path.join(FIX, "uv-fork/uv.lock"), out],
                               stderr=subprocess.PIPE, universal_newlines=True)
            self.assertEqual((p.returncode, p.stderr),
                             (2, "kiln-lock: %s: cannot write: No such file or directory\n" % out))


class Pieces(unittest.TestCase):
    def test_poetry_constraints(self):
        for given, want in [("^1.2.3", ">=1.2.3,<2.0.0"), ("^1.2", ">=1.2,<2.0"), ("^1", ">=1,<2"),
                            ("^0.2.3", ">=0.2.3,<0.3.0"), ("^0.0.3", ">=0.0.3,<0.0.4"), ("^0.0", ">=0.0,<0.1"),
                            ("^0", ">=0,<1"), ("~1.2.3", ">=1.2.3,<1.3.0"), ("~1.2", ">=1.2,<1.3"),
                            ("~1", ">=1,<2"), ("~=1.2", "~=1.2"), ("*", ""), ("1.2.*", "==1.2.*"),
                            ("1.4", "==1.4"), ("=1.4", "==1.4"), (">= 1.2 < 2", ">=1.2,<2"),
                            ("^2.0b1", ">=2.0b1,<3.0"), ("!=1.5.7", "!=1.5.7")]:
            self.assertEqual(lr.poetry_to_pep440(given), want, given)

    def test_python_markers(self):
        for given, want in [("^3.8", 'python_version >= "3.8" and python_version < "4.0"'),
                            ("~3.8.1", 'python_full_version >= "3.8.1" and python_full_version < "3.9.0"'),
                            ("3.9.*", 'python_version == "3.9"'), ("*", None),
                            ("<3.8 || >=3.10", 'python_version < "3.8" or python_version >= "3.10"')]:
            self.assertEqual(lr.python_marker(given), want, given)

    def test_uv_marker_equivalence(self):
        same = [('python_version < "3.11"', "python_full_version < '3.11'"),
                ("python_version <= '3.10'", "python_full_version < '3.11'"),
                ("python_version > '3.8'", "python_full_version >= '3.9'"),
                ("python_version == '3.8'", "python_full_version == '3.8.*'"),
                ("sys_platform == 'linux' and os_name == 'posix'", "os_name == 'posix' and sys_platform == 'linux'"),
                ("(a == 'x' or b == 'y') and c == 'z'", "a == 'x' and c == 'z' or c == 'z' and b == 'y'"),
                ("extra == 'Dev_Tools'", "extra == 'dev-tools'"), ("'win32' == sys_platform", "sys_platform == 'win32'")]
        for a, b in same:
            self.assertEqual(lr.marker_dnf(a), lr.marker_dnf(b), (a, b))
        for a, b in [("sys_platform == 'linux'", "sys_platform == 'win32'"),
                     ("python_version < '3.11'", "python_full_version < '3.11.1'")]:
            self.assertNotEqual(lr.marker_dnf(a), lr.marker_dnf(b), (a, b))

    def test_redact(self):
        self.assertEqual(lr.redact('git "https://u:p@h/x" and http://tok@h2:8080/y, file:///a@b'),
                         'git "https://****@h/x" and http://****@h2:8080/y, file:///a@b')

    def test_content_hash_agrees_with_pyindex(self):
        # tools/pyindex.py renders the test bed's poetry.lock: an independent
        # implementation of Poetry's hash for [tool.poetry] projects.
        pyindex = load("pyindex", PYINDEX)
        for pp in glob.glob(os.path.join(FIX, "*", "pyproject.toml")):
            with open(pp, "rb") as f:
                data = lr.toml_module().load(f)
            if "project" not in data and "tool" in data:
                self.assertEqual(lr.poetry_content_hashes(data)[0], pyindex.poetry_content_hash(pp), pp)


def interpreters():
    """One python per minor version 3.8 .. 3.13 found on this machine."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = {}
    for minor in range(8, 14):
        cands = sorted(glob.glob(os.path.join(root, "versions", "3.%d.*" % minor, "bin", "python3")))
        cands += [p for p in [shutil.which("python3.%d" % minor)] if p]
        for c in cands:
            r = subprocess.run([c, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
            if r.returncode == 0 and r.stdout.strip() == "3.%d" % minor:
                found[minor] = c
                break
    return found


class Interpreters(unittest.TestCase):
    """The same output on every python the script must run on (3.8 .. 3.10
    read TOML with pip's vendored tomli)."""

    def test_every_python(self):
        found = interpreters()
        if not found:
            self.skipTest("no python 3.8 .. 3.13 found")
        for minor, py in sorted(found.items()):
            for rel, want in sorted(EXPECTED.items()):
                with self.subTest(python=py, fixture=rel):
                    self.assertEqual(convert(os.path.join(FIX, rel), python=py), (0, want, ""))
            with self.subTest(python=py, fixture="malformed"):
                src = os.path.join(FIX, "malformed", "uv.lock")
                self.assertEqual(convert(src, python=py),
                                 (2, None, "kiln-lock: %s: invalid TOML: Invalid value (at line 5, column 8)\n" % src))


# Runs the script with modules made unimportable (sys.modules[name] = None)
# and reports which TOML reader it ended up with.
BLOCKER = r"""
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    used = [m for m in ("tomllib", "pip._vendor.tomli", "tomli") if sys.modules.get(m) is not None]
    sys.stderr.write("toml: %s\n" % ",".join(used))
"""


@unittest.skipUnless(os.access(DEBIAN_PY, os.X_OK), "needs Debian's /usr/bin/python3")
class TomlFallback(unittest.TestCase):
    def blocked(self, modules, rel):
        return convert(os.path.join(FIX, rel), argv=[DEBIAN_PY, "-c", BLOCKER, modules, SCRIPT])

    def test_vendored_tomli(self):
        for rel in ("uv-basic/uv.lock", "poetry-basic/poetry.lock", "pyproject-poetry/pyproject.toml"):
            self.assertEqual(self.blocked("tomllib", rel), (0, EXPECTED[rel], "toml: pip._vendor.tomli\n"))
        src = os.path.join(FIX, "malformed", "uv.lock")
        self.assertEqual(self.blocked("tomllib", "malformed/uv.lock"),
                         (2, None, "kiln-lock: %s: invalid TOML: Invalid value (at line 5, column 8)\n"
                          "toml: pip._vendor.tomli\n" % src))

    def test_no_toml_reader(self):
        src = os.path.join(FIX, "uv-basic", "uv.lock")
        ver = subprocess.run([DEBIAN_PY, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        self.assertEqual(self.blocked("tomllib,pip,tomli", "uv-basic/uv.lock"),
                         (2, None, "kiln-lock: %s: cannot read TOML: python %s has no tomllib, and neither pip >= "
                          "21.2 (pip._vendor.tomli) nor tomli is installed\ntoml: \n" % (src, ver)))


def pip_env():
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PIP_"))
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def debian_can_build():
    if not os.access(DEBIAN_PY, os.X_OK):
        return False
    r = subprocess.run([DEBIAN_PY, "-c", "import setuptools, wheel, venv, ensurepip, pip"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p.stdout


INDEX = "http://127.0.0.1:5999/simple"
# what each installed test package says about itself
PROBE = {"kiln_hello": "kiln_hello.greet()", "kiln_dep": "kiln_dep.VERSION", "kiln_data": "kiln_data.rows()"}


@unittest.skipUnless(debian_can_build(), "needs Debian's /usr/bin/python3 with setuptools, wheel and venv")
class TestBed(unittest.TestCase):
    """The test bed's lock templates, rendered against wheels built here, give
    requirements that install offline with --require-hashes."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-lock-test.")
        cls.wheels = run([DEBIAN_PY, PYINDEX, "wheels", "--src", os.path.join(ROOT, "testdata", "python"),
                          "--cache", os.path.join(cls.tmp, "cache"), "--epoch", EPOCH]).strip().splitlines()[-1]
        cls.projects = os.path.join(cls.tmp, "projects")
        for templates in (os.path.join(ROOT, "testdata", "python", "projects"), os.path.join(FIX, "testbed")):
            run([DEBIAN_PY, PYINDEX, "projects", "--wheels", cls.wheels, "--templates", templates,
                 "--out", cls.projects, "--index-url", INDEX])
        sums = {}
        for line in read(os.path.join(cls.wheels, "SHA256SUMS")).splitlines():
            digest, name = line.split()
            sums[name] = "sha256:" + digest
        cls.sums = sums

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def wheel_pin(self, name, version, marker=None):
        f = "%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version)
        return pin("%s==%s" % (name, version), [f], marker, hashes=self.sums.get)

    def expected(self, project):
        w = self.wheel_pin
        return {
            "uv": ["# kiln: hashed", "--index-url " + INDEX, w("kiln-dep", "0.1.0"), w("kiln-hello", "1.1.0")],
            "poetry": ["# kiln: hashed", "--index-url " + INDEX, w("kiln-data", "2.0.0"), w("kiln-dep", "0.1.0"),
                       w("kiln-hello", "1.1.0")],
            "uv-fork": ["# kiln: hashed", "--index-url " + INDEX,
                        w("kiln-data", "2.0.0", 'sys_platform == "win32"'),
                        w("kiln-dep", "0.1.0", 'python_full_version >= "3.9"'),
                        w("kiln-hello", "1.0.0", 'python_full_version < "3.9"'),
                        w("kiln-hello", "1.1.0", 'python_full_version >= "3.9"')],
        }[project]

    def test_locks(self):
        for project, lock in (("uv", "uv.lock"), ("poetry", "poetry.lock"), ("uv-fork", "uv.lock")):
            with self.subTest(project=project):
                rc, text, err = convert(os.path.join(self.projects, project, lock))
                self.assertEqual((rc, err), (0, ""))
                self.assertEqual(text, lines(*self.expected(project)))

    def test_bare_pyprojects(self):
        for project, want in (("uv", ["kiln-hello==1.1.0"]), ("poetry", ["kiln-data==2.0.0", "kiln-hello==1.1.0"])):
            rc, text, err = convert(os.path.join(self.projects, project, "pyproject.toml"))
            self.assertEqual((rc, text, err), (0, lines("# kiln: unhashed", *want), ""))

    def install(self, python, project, lock, opts, own_pip):
        venv = tempfile.mkdtemp(prefix="venv.", dir=self.tmp)
        out = os.path.join(venv, "requirements.txt")
        run([sys.executable, SCRIPT, os.path.join(self.projects, project, lock), out] + opts)
        # The venv's own pip, or (quicker: no ensurepip) the interpreter's pip
        # aimed at the venv, as kiln's pip step does for a venv without pip.
        run([python, "-m", "venv", venv] + ([] if own_pip else ["--without-pip"]))
        vpy = os.path.join(venv, "bin", "python")
        pip = [os.path.join(venv, "bin", "pip")] if own_pip else [python, "-m", "pip", "--python", vpy]
        # --no-index wins over a file's --index-url: the index lines are read, not used
        run(pip + ["install", "--no-index", "--find-links", self.wheels, "--require-hashes", "--no-deps",
                   "-r", out], env=pip_env())
        probe = ("import importlib.util\n"
                 "for m, expr in %r:\n"
                 "    print(m, eval(expr, {m: __import__(m)}) if importlib.util.find_spec(m) else None)\n"
                 % (sorted(PROBE.items()),))
        return run([vpy, "-c", probe], env=pip_env())

    def test_install(self):
        hello11 = "hello from kiln-hello 1.1.0"
        cases = [(DEBIAN_PY, "poetry", "poetry.lock", [], True, ("[[1, 2], [3, 4]]", "0.1.0", hello11)),
                 (DEBIAN_PY, "uv", "uv.lock", ["--no-index-lines"], False, (None, "0.1.0", hello11)),
                 (DEBIAN_PY, "uv-fork", "uv.lock", [], False, (None, "0.1.0", hello11))]
        py38 = interpreters().get(8)
        if py38:  # the other side of the fork
            cases.append((py38, "uv-fork", "uv.lock", [], False, (None, None, "hello from kiln-hello 1.0.0")))
        for python, project, lock, opts, own_pip, (data, dep, hello) in cases:
            with self.subTest(python=python, project=project):
                self.assertEqual(self.install(python, project, lock, opts, own_pip),
                                 "kiln_data %s\nkiln_dep %s\nkiln_hello %s\n" % (data, dep, hello))


if __name__ == "__main__":
    unittest.main(verbosity=2)
