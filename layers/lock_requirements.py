#!/usr/bin/env python3
"""Turn a uv.lock, a poetry.lock or a pyproject.toml into a pip requirements file.

    python3 lock_requirements.py LOCK_OR_PYPROJECT OUT_REQUIREMENTS [--no-index-lines]

kiln builds Flyte ImageSpecs whose `requirements` may name a uv.lock or a
poetry.lock (with the pyproject.toml beside it) or a bare pyproject.toml.
flytekit's builder runs `uv sync --locked --no-dev --no-install-project` or
`poetry install --no-root` for those, but the base images kiln builds on
seldom have uv or poetry, and fetching them would need PyPI. So kiln runs
this script with the image's own python inside the build sandbox and feeds
what it writes to `pip install --require-hashes --no-deps`: the locked set
of packages, exact pins, the lock's hashes, nothing resolved again.

What it writes (sorted by normalized name, written atomically):

    # kiln: hashed                         (or "# kiln: unhashed", see below)
    --index-url URL                        (not with --no-index-lines)
    --extra-index-url URL
    name==version ; MARKER --hash=sha256:HEX --hash=sha256:HEX

* uv.lock: the packages `uv sync --locked --no-dev --no-install-project`
  installs: from the root project (source `virtual`/`editable` "."), its
  `dependencies` and the dependency groups in `[tool.uv] default-groups`
  other than `dev`, transitively (extras on edges included), each edge's
  marker ANDed along the path and ORed over paths. The lock must be fresh:
  the root's `requires-dist` equals the pyproject's dependencies.
* poetry.lock: what `poetry install --no-root` installs (all groups but
  optional ones; no extras). lock-version 2.1 (Poetry 2) says so itself per
  package (`groups`, `markers`); older locks are walked from the pyproject's
  dependencies through `[package.dependencies]`. The `content-hash` must
  match the pyproject.
* pyproject.toml alone: `[project].dependencies` verbatim, or
  `[tool.poetry.dependencies]` turned into PEP 508 (`^1.2` -> `>=1.2,<2.0`),
  with no hashes: the first line is then `# kiln: unhashed` (and no index
  lines: pip's own settings apply).

The index lines name the sources of the packages written, in the lock's
order, the first as --index-url; for poetry, a package without a source is
from PyPI, which then comes first.

Only packages from an index can be pinned with hashes: git, path, url and
editable sources are refused. Errors are one line on stderr,
`kiln-lock: FILE: reason`, exit status 2; URL credentials are written to the
output (pip needs them) but never printed. Standard library only; TOML via
tomllib (3.11+), pip's vendored tomli, or tomli. Runs on python 3.8+.
"""

import hashlib
import json
import os
import re
import sys
import tempfile

PROG = "kiln-lock"
USAGE = "usage: lock_requirements.py LOCK_OR_PYPROJECT OUT_REQUIREMENTS [--no-index-lines]"
PYPI = "https://pypi.org/simple"
HASH_ALGOS = ("sha256", "sha384", "sha512")  # what pip's --hash accepts
MAX_TERMS = 256  # a marker grown past this many OR terms is dropped (over-install)
ONLY_INDEXES = "kiln installs locked packages from indexes only"


class LockError(Exception):
    def __init__(self, path, msg):
        Exception.__init__(self, msg)
        self.path = path
        self.msg = msg


def redact(text):
    """Credentials out of every URL in a message."""
    return re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]*@", r"\1****@", text)


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- TOML

def toml_module():
    try:
        import tomllib
        return tomllib
    except ImportError:
        pass
    try:
        from pip._vendor import tomli
        return tomli
    except Exception:
        pass
    try:
        import tomli
        return tomli
    except ImportError:
        return None


def load_toml(path, needed_by=None):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if needed_by:
            raise LockError(path, "not found (%s needs the pyproject.toml beside it)" % needed_by)
        raise LockError(path, "not found")
    except OSError as e:
        raise LockError(path, "cannot read: %s" % (e.strerror or e))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LockError(path, "not UTF-8 text (byte %d)" % e.start)
    mod = toml_module()
    if mod is None:
        raise LockError(path, "cannot read TOML: python %d.%d has no tomllib, and neither pip >= 21.2 "
                        "(pip._vendor.tomli) nor tomli is installed" % sys.version_info[:2])
    try:
        return mod.loads(text)
    except ValueError as e:  # TOMLDecodeError; its text ends in "(at line L, column C)"
        raise LockError(path, "invalid TOML: %s" % e)


def table(d, key, path, where):
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise LockError(path, "%s%s must be a table" % (where, key))
    return v


def array(d, key, path, where):
    v = d.get(key, [])
    if not isinstance(v, list):
        raise LockError(path, "%s%s must be an array" % (where, key))
    return v


def string(d, key, path, where):
    v = d.get(key)
    if not isinstance(v, str):
        raise LockError(path, "%s%s must be a string" % (where, key))
    return v


def lock_packages(lock, lock_path, kind, key):
    """The [[package]] tables (each with a name and a `key` of `kind`) and
    their positions by normalized name."""
    pkgs = array(lock, "package", lock_path, "")
    by_name = {}
    for i, p in enumerate(pkgs):
        where = "[[package]] %d: " % (i + 1)
        if not isinstance(p, dict):
            raise LockError(lock_path, where + "not a table")
        string(p, "name", lock_path, where)
        kind(p, key, lock_path, where)
        by_name.setdefault(normalize(p["name"]), []).append(i)
    return pkgs, by_name


def sibling_pyproject(lock_path):
    return os.path.join(os.path.dirname(lock_path), "pyproject.toml")


# ---------------------------------------------------------------- versions

_VERSION_RE = re.compile(r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""", re.VERBOSE | re.IGNORECASE)
_PRE = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "pre": "rc", "preview": "rc", "rc": "rc"}


def parse_version(v):
    m = _VERSION_RE.match(v)
    if not m:
        return None
    pre = None
    if m.group("pre_l"):
        pre = (_PRE[m.group("pre_l").lower()], int(m.group("pre_n") or 0))
    post = None
    if m.group("post_n1") or m.group("post_l"):
        post = int(m.group("post_n1") or m.group("post_n2") or 0)
    dev = int(m.group("dev_n") or 0) if m.group("dev_l") else None
    local = m.group("local")
    return {"epoch": int(m.group("epoch") or 0),
            "release": tuple(int(x) for x in m.group("release").split(".")),
            "pre": pre, "post": post, "dev": dev,
            "local": re.sub(r"[-_]", ".", local.lower()) if local else None}


def canonical_version(v):
    p = parse_version(v)
    if p is None:
        return v.strip().lower()
    s = "%d!" % p["epoch"] if p["epoch"] else ""
    s += ".".join(str(x) for x in p["release"])
    if p["pre"]:
        s += "%s%d" % p["pre"]
    if p["post"] is not None:
        s += ".post%d" % p["post"]
    if p["dev"] is not None:
        s += ".dev%d" % p["dev"]
    if p["local"]:
        s += "+" + p["local"]
    return s


def version_key(v):
    p = parse_version(v)
    if p is None:
        return ((1,), v)
    rel = list(p["release"])
    while len(rel) > 1 and rel[-1] == 0:
        rel.pop()
    big = sys.maxsize
    if p["pre"] is None and p["post"] is None and p["dev"] is not None:
        pre = (-1, 0)
    elif p["pre"] is None:
        pre = (big, 0)
    else:
        pre = ({"a": 0, "b": 1, "rc": 2}[p["pre"][0]], p["pre"][1])
    post = -1 if p["post"] is None else p["post"]
    dev = big if p["dev"] is None else p["dev"]
    return ((0,), (p["epoch"], tuple(rel), pre, post, dev))


def version_matches(version, op, want):
    """One PEP 440 clause (no pre-release subtleties); unknown forms match."""
    if op == "===":
        return version.strip() == want.strip()
    v = parse_version(version)
    if want.endswith(".*") and op in ("==", "!="):
        w = parse_version(want[:-2])
        if v is None or w is None:
            return True
        n = len(w["release"])
        rel = tuple(v["release"][:n]) + (0,) * max(0, n - len(v["release"]))
        same = v["epoch"] == w["epoch"] and rel == w["release"]
        return same if op == "==" else not same
    if v is None or parse_version(want) is None:
        return True
    if op == "~=":
        w = parse_version(want)["release"]
        prefix = ".".join(str(x) for x in w[:-1]) + ".*" if len(w) > 1 else want
        return version_matches(version, ">=", want) and version_matches(version, "==", prefix)
    a, b = version_key(version), version_key(want)
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}.get(op, True)


# ---------------------------------------------------------------- poetry constraints

_OP_SPACE = re.compile(r"(===|==|!=|~=|<=|>=|<|>|=|\^|~)\s+")
_CLAUSE = re.compile(r"^(===|==|!=|~=|<=|>=|<|>|=|\^|~)?([A-Za-z0-9.+!*_-]+)$")


def _bump(release, idx):
    return list(release[:idx]) + [release[idx] + 1] + [0] * (len(release) - idx - 1)


def _clauses(part):
    """One poetry constraint word -> [(op, version)] in PEP 440."""
    if part in ("*", ""):
        return []
    m = _CLAUSE.match(part)
    if not m:
        raise ValueError("cannot read constraint %r" % part)
    op, v = m.group(1) or "==", m.group(2)
    if op in ("^", "~"):
        r = re.match(r"^v?([0-9]+(?:\.[0-9]+)*)", v)
        if not r:
            raise ValueError("cannot read constraint %r" % part)
        rel = [int(x) for x in r.group(1).split(".")]
        if op == "^":  # poetry-core Version.next_breaking
            idx = 0 if rel[0] or len(rel) == 1 else 1 if rel[1] or len(rel) == 2 else 2
        else:
            idx = 0 if len(rel) == 1 else 1
        return [(">=", v), ("<", ".".join(str(x) for x in _bump(rel, idx)))]
    if op == "=":
        op = "=="
    if v == "*":
        return []
    return [(op, v)]


def poetry_alternatives(constraint):
    """A poetry (or PEP 440) constraint -> OR of ANDs of (op, version)."""
    out = []
    for alt in re.split(r"\s*\|\|?\s*", constraint.strip()):
        alt = _OP_SPACE.sub(r"\1", alt.strip())
        clauses = []
        for part in re.split(r"[\s,]+", alt):
            clauses.extend(_clauses(part))
        out.append(clauses)
    return out


def poetry_to_pep440(constraint):
    alts = poetry_alternatives(constraint)
    if len(alts) > 1:
        raise ValueError("constraint %r (an OR) has no pip equivalent" % constraint)
    return ",".join(op + v for op, v in alts[0])


def constraint_matches(constraint, version):
    try:
        alts = poetry_alternatives(constraint)
    except ValueError:
        return True
    return any(all(version_matches(version, op, v) for op, v in alt) for alt in alts)


def python_marker(constraint):
    """poetry's `python = "^3.8"` -> a PEP 508 marker (None: any python)."""
    ors = []
    for alt in poetry_alternatives(constraint):
        ands = []
        for op, v in alt:
            if v.endswith(".*") and op in ("==", "!="):
                base = v[:-2]
                var = "python_version" if base.count(".") == 1 else "python_full_version"
                ands.append('%s %s "%s"' % (var, op, base if var == "python_version" else v))
                continue
            var = "python_version" if v.count(".") <= 1 else "python_full_version"
            ands.append('%s %s "%s"' % (var, op, v))
        if not ands:
            return None
        ors.append(" and ".join(ands))
    if len(ors) == 1:
        return ors[0]
    return " or ".join("(%s)" % o if " and " in o else o for o in ors)


# ---------------------------------------------------------------- PEP 508

_NAME_RE = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?\s*")
_SPEC_CLAUSE = re.compile(r"^(~=|===|==|!=|<=|>=|<|>)\s*([A-Za-z0-9.*+!_-]+)$")


def parse_requirement(s):
    """PEP 508 -> dict(name, extras, specs, url, marker); ValueError if not one."""
    m = _NAME_RE.match(s)
    if not m:
        raise ValueError("not a PEP 508 requirement: %r" % s)
    extras = [normalize(x.strip()) for x in (m.group(2) or "").split(",") if x.strip()]
    rest = s[m.end():].strip()
    url, specs, marker = None, [], None
    if rest.startswith("@"):
        parts = rest[1:].strip().split(None, 1)
        if not parts:
            raise ValueError("not a PEP 508 requirement: %r" % s)
        url = parts[0]
        tail = parts[1].strip() if len(parts) > 1 else ""
        if tail:
            if not tail.startswith(";"):
                raise ValueError("not a PEP 508 requirement: %r" % s)
            marker = tail[1:].strip()
    else:
        spec, sep, mk = rest.partition(";")
        if sep:
            marker = mk.strip()
        spec = spec.strip()
        if spec.startswith("(") and spec.endswith(")"):
            spec = spec[1:-1].strip()
        for clause in [c.strip() for c in spec.split(",")] if spec else []:
            cm = _SPEC_CLAUSE.match(clause)
            if not cm:
                raise ValueError("not a PEP 508 requirement: %r" % s)
            specs.append(cm.group(1) + cm.group(2))
    if marker == "":
        raise ValueError("not a PEP 508 requirement: %r" % s)
    return {"name": m.group(1), "extras": extras, "specs": specs, "url": url, "marker": marker}


_MARKER_TOKEN = re.compile(r"""\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<str>'[^']*'|"[^"]*")
    |(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)|(?P<kw>and\b|or\b)
    |(?P<var>[A-Za-z_][A-Za-z0-9_.]*))""", re.VERBOSE)
_MARKER_ALIASES = {"os.name": "os_name", "sys.platform": "sys_platform",
                   "platform.version": "platform_version", "platform.machine": "platform_machine",
                   "platform.python_implementation": "platform_python_implementation",
                   "python_implementation": "platform_python_implementation"}
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!=", "~=": "~=", "===": "==="}


def _marker_atom(lhs, op, rhs):
    op = re.sub(r"\s+", " ", op)
    if lhs[0] == "str" and rhs[0] == "var" and op not in ("in", "not in"):
        lhs, rhs, op = rhs, lhs, _FLIP[op]
    if lhs == ("var", "extra") and rhs[0] == "str":
        rhs = ("str", normalize(rhs[1]))
    if lhs == ("var", "python_version") and rhs[0] == "str":
        # uv writes python_version bounds as python_full_version ones
        m = re.match(r"^([0-9]+)\.([0-9]+)$", rhs[1])
        if m:
            x, y = int(m.group(1)), int(m.group(2))
            full = {"<": ("<", "%d.%d" % (x, y)), ">=": (">=", "%d.%d" % (x, y)),
                    "<=": ("<", "%d.%d" % (x, y + 1)), ">": (">=", "%d.%d" % (x, y + 1)),
                    "==": ("==", "%d.%d.*" % (x, y)), "!=": ("!=", "%d.%d.*" % (x, y))}.get(op)
            if full:
                return (("var", "python_full_version"), full[0], ("str", full[1]))
    return (lhs, op, rhs)


def marker_dnf(text):
    """A PEP 508 marker -> frozenset of frozensets of atoms (OR of ANDs)."""
    toks = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _MARKER_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError("bad marker %r" % text)
        pos = m.end()
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            toks.append(("str", val[1:-1]))
        elif kind == "var":
            toks.append(("var", _MARKER_ALIASES.get(val, val)))
        else:
            toks.append((kind, re.sub(r"\s+", " ", val)))
    i = [0]

    def peek():
        return toks[i[0]] if i[0] < len(toks) else (None, None)

    def take():
        t = peek()
        i[0] += 1
        return t

    def chain(word, combine, operand):
        def parse():
            d = operand()
            while peek() == ("kw", word):
                take()
                d = combine(d, operand())
            return d
        return parse

    def atom():
        t = take()
        if t[0] == "lp":
            d = expr()
            if take()[0] != "rp":
                raise ValueError("bad marker %r" % text)
            return d
        op, rhs = take(), take()
        if t[0] not in ("var", "str") or op[0] != "op" or rhs[0] not in ("var", "str"):
            raise ValueError("bad marker %r" % text)
        return frozenset([frozenset([_marker_atom(t, op[1], rhs)])])

    expr = chain("or", dnf_or, chain("and", dnf_and, atom))
    d = expr()
    if i[0] != len(toks):
        raise ValueError("bad marker %r" % text)
    return d


# ---------------------------------------------------------------- marker sets

TRUE = frozenset([frozenset()])
FALSE = frozenset()


def absorb(terms):
    kept = []
    for t in sorted(terms, key=len):
        if not any(k <= t for k in kept):
            kept.append(t)
    if len(kept) > MAX_TERMS:
        return TRUE
    return frozenset(kept)


def dnf_or(a, b):
    return absorb(a | b)


def dnf_and(a, b):
    return absorb(frozenset(x | y for x in a for y in b))


def canon_marker(text):
    """One spelling for a marker: stripped, 'literals' double-quoted (as
    Poetry writes them), so that the same marker from two places is one."""
    return re.sub(r"'([^'\"]*)'", r'"\1"', text.strip())


def dnf_atoms(atoms):
    """AND of marker strings as one term."""
    return frozenset([frozenset(canon_marker(a) for a in atoms if a)])


def render_and(atoms):
    parts = sorted(atoms)
    if len(parts) == 1:
        return parts[0]
    return " and ".join("(%s)" % p if " or " in p else p for p in parts)


def render_marker(dnf):
    """None when unconditional."""
    if frozenset() in dnf or not dnf:
        return None
    terms = sorted(render_and(t) for t in dnf)
    if len(terms) == 1:
        return terms[0]
    return " or ".join("(%s)" % t if " and " in t else t for t in terms)


class Edge(object):
    __slots__ = ("target", "atoms", "extras")

    def __init__(self, target, atoms=(), extras=()):
        self.target, self.atoms, self.extras = target, tuple(a for a in atoms if a), tuple(extras)


def walk(start, deps_of, extras_of):
    """Markers under which each node is reached: edges AND, paths OR.

    start: [Edge]; deps_of(node) -> [Edge]; extras_of(node, extra) -> [Edge].
    Returns {node: dnf}."""
    demand = {}
    work = []

    def push(edge, cond):
        d = dnf_and(cond, dnf_atoms(edge.atoms))
        for key in [(edge.target, None)] + [(edge.target, x) for x in edge.extras]:
            old = demand.get(key, FALSE)
            new = dnf_or(old, d)
            if new != old:
                demand[key] = new
                work.append(key)

    for e in start:
        push(e, TRUE)
    while work:
        node, extra = key = work.pop()
        cond = demand[key]
        edges = deps_of(node) if extra is None else extras_of(node, extra)
        for e in edges:
            push(e, cond)
    return dict((n, d) for (n, x), d in demand.items() if x is None)


# ---------------------------------------------------------------- output

def clean_hashes(entries, path, what):
    out = set()
    for h in entries:
        if not isinstance(h, str):
            continue
        algo, sep, hexd = h.partition(":")
        if not sep and re.match(r"^[0-9a-fA-F]{64}$", h):  # poetry 1.0: bare sha256
            algo, hexd = "sha256", h
        if algo in HASH_ALGOS and re.match(r"^[0-9a-fA-F]+$", hexd):
            out.add("%s:%s" % (algo, hexd.lower()))
    if not out:
        raise LockError(path, "%s has no sha256 hashes in the lock (pip --require-hashes needs them)"
                        % what)
    return sorted(out)


def render(header, pins, indexes):
    """pins: [(name, version, marker or None, [hash])]; indexes: [url] in order."""
    lines = [header]
    for i, url in enumerate(indexes):
        lines.append("%s %s" % ("--index-url" if i == 0 else "--extra-index-url", url))
    body = set()
    for name, version, marker, hashes in pins:
        req = "%s==%s" % (normalize(name), version)
        if marker:
            req += " ; " + marker
        body.add((normalize(name), version_key(version), marker or "",
                  " ".join([req] + ["--hash=" + h for h in hashes])))
    lines.extend(b[3] for b in sorted(body))
    return "\n".join(lines) + "\n"


def first_seen(urls):
    out = []
    for u in urls:
        if u not in out:
            out.append(u)
    return out


# ---------------------------------------------------------------- uv.lock

def _uv_source_text(src):
    kind = sorted(src)[0] if src else "unknown"
    for k in ("git", "url", "path", "directory", "editable", "virtual"):
        if k in src:
            kind = k
            break
    return '%s "%s"' % (kind, src.get(kind, ""))


def _canon_clause(c):
    m = re.match(r"^(==|!=|~=|<=|>=|<|>)(.*)$", c)
    if not m:
        return c
    op, v = m.groups()
    if v.endswith(".*"):
        return op + canonical_version(v[:-2]) + ".*"
    return op + canonical_version(v)


def _req_key(name, extras, specs, marker):
    """What uv compares: name, extras, specifiers and marker, normalized."""
    try:
        mk = marker_dnf(marker) if marker else TRUE
    except ValueError:
        mk = frozenset([frozenset([("raw", re.sub(r"\s+", "", marker.replace('"', "'")))])])
    return (normalize(name), tuple(sorted(set(extras))), tuple(sorted(_canon_clause(c) for c in specs)), mk)


def _spec_clauses(spec):
    return [re.sub(r"\s+", "", c) for c in spec.split(",") if c.strip()]


def _show_req(name, extras, specs, marker):
    s = normalize(name)
    if extras:
        s += "[%s]" % ",".join(sorted(extras))
    s += ",".join(specs)
    if marker:
        s += "; " + marker
    return s


def uv_check_fresh(lock_path, root, project, pp_path):
    """`uv --locked`: the root's requires-dist is what the pyproject asks for
    (its optional dependencies carry `extra == '…'` there)."""
    dynamic = project.get("dynamic", [])
    if isinstance(dynamic, list) and ("dependencies" in dynamic or "optional-dependencies" in dynamic):
        return  # only a build of the project would tell
    want = {}
    deps = project.get("dependencies", [])
    opt = project.get("optional-dependencies", {})
    if not isinstance(deps, list) or not isinstance(opt, dict):
        raise LockError(pp_path, "[project] dependencies must be an array, optional-dependencies a table")
    items = [(d, None) for d in deps]
    for extra, ds in sorted(opt.items()):
        if not isinstance(ds, list):
            raise LockError(pp_path, "[project.optional-dependencies] %s must be an array" % extra)
        items.extend((d, extra) for d in ds)
    for d, extra in items:
        if not isinstance(d, str):
            raise LockError(pp_path, "[project] dependency %r is not a string" % (d,))
        try:
            r = parse_requirement(d)
        except ValueError as e:
            raise LockError(pp_path, str(e))
        marker = r["marker"]
        if extra is not None:
            marker = "(%s) and extra == '%s'" % (marker, extra) if marker else "extra == '%s'" % extra
        key = _req_key(r["name"], r["extras"], r["specs"], marker)
        shown = re.sub(r"\s+", "", d) if extra is None else "%s (extra %s)" % (d, extra)
        want.setdefault(key, []).append(shown)
    have = {}
    meta = table(root, "metadata", lock_path, "[package.]")
    for i, e in enumerate(array(meta, "requires-dist", lock_path, "[package.metadata] ")):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise LockError(lock_path, "[package.metadata] requires-dist entry %d has no name" % (i + 1))
        specs = _spec_clauses(e.get("specifier", "") if isinstance(e.get("specifier", ""), str) else "")
        extras = [normalize(x) for x in e.get("extras", []) if isinstance(x, str)]
        marker = e.get("marker") if isinstance(e.get("marker"), str) else None
        have.setdefault(_req_key(e["name"], extras, specs, marker), []).append(
            _show_req(e["name"], extras, specs, marker))
    missing, extra = [], []
    for k in sorted(set(want) | set(have), key=repr):
        n = len(want.get(k, [])) - len(have.get(k, []))
        if n > 0:
            missing.extend(want[k][:n])
        elif n < 0:
            extra.extend(have[k][:-n])
    if missing or extra:
        why = []
        if missing:
            why.append("pyproject.toml requires %s, not in uv.lock" % ", ".join(sorted(missing)))
        if extra:
            why.append("uv.lock has %s, not in pyproject.toml" % ", ".join(sorted(extra)))
        raise LockError(lock_path, "uv.lock is out of date with pyproject.toml: %s (run `uv lock`)"
                        % "; ".join(why))


def convert_uv(lock_path, index_lines):
    lock = load_toml(lock_path)
    version = lock.get("version")
    if version != 1 or isinstance(version, bool):
        raise LockError(lock_path, "unsupported uv.lock version %s (kiln reads version 1)"
                        % json.dumps(version))
    pp_path = sibling_pyproject(lock_path)
    pp = load_toml(pp_path, "uv.lock")
    project = pp.get("project")
    if not isinstance(project, dict):
        raise LockError(pp_path, "no [project] table (kiln reads uv projects, not virtual workspace roots)")
    pkgs, by_name = lock_packages(lock, lock_path, table, "source")

    roots = [i for i, p in enumerate(pkgs) if p.get("source") in ({"virtual": "."}, {"editable": "."})]
    if isinstance(project.get("name"), str):
        roots = [i for i in roots if normalize(pkgs[i]["name"]) == normalize(project["name"])]
    if not roots:
        raise LockError(lock_path, "no package for the project %s of pyproject.toml (source virtual or "
                        "editable \".\")" % json.dumps(project.get("name")))
    if len(roots) > 1:
        raise LockError(lock_path, "several packages claim to be the project (source \".\")")
    root = roots[0]
    uv_check_fresh(lock_path, pkgs[root], project, pp_path)

    def edges(owner, entries, what):
        out = []
        for e in entries:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise LockError(lock_path, "%s of %s: a dependency without a name"
                                % (what, pkgs[owner]["name"]))
            cands = by_name.get(normalize(e["name"]), [])
            if "version" in e:
                cands = [c for c in cands if pkgs[c].get("version") == e["version"]]
            if "source" in e:
                cands = [c for c in cands if pkgs[c].get("source") == e["source"]]
            if len(cands) != 1:
                raise LockError(lock_path, "%s depends on %s%s, which the lock %s" % (
                    pkgs[owner]["name"], e["name"], " %s" % e["version"] if "version" in e else "",
                    "does not contain" if not cands else "holds more than once"))
            marker = e.get("marker")
            out.append(Edge(cands[0], [marker] if isinstance(marker, str) else [],
                            [normalize(x) for x in e.get("extra", []) if isinstance(x, str)]))
        return out

    memo = {}

    def deps_of(n):
        if n not in memo:
            memo[n] = edges(n, array(pkgs[n], "dependencies", lock_path, "[package] "), "dependencies")
        return memo[n]

    def extras_of(n, extra):
        opt = table(pkgs[n], "optional-dependencies", lock_path, "[package.]")
        for k, v in opt.items():
            if normalize(k) == extra and isinstance(v, list):
                return edges(n, v, "optional-dependencies")
        return []

    # --no-dev drops the dev group only; other default groups stay
    tool_uv = table(table(pp, "tool", pp_path, ""), "uv", pp_path, "[tool.]")
    dev = table(pkgs[root], "dev-dependencies", lock_path, "[package.]")
    defaults = tool_uv.get("default-groups", ["dev"])
    if defaults == "all":
        defaults = list(dev)
    if not isinstance(defaults, list):
        raise LockError(pp_path, '[tool.uv] default-groups must be an array or "all"')
    groups = set(normalize(g) for g in defaults if isinstance(g, str)) - {"dev"}
    start = list(deps_of(root))
    for g, entries in sorted(dev.items()):
        if normalize(g) in groups and isinstance(entries, list):
            start += edges(root, entries, "group " + g)

    reached = walk(start, deps_of, extras_of)
    pins, urls = [], []
    for n in sorted(reached):
        p = pkgs[n]
        if n == root:
            continue  # --no-install-project; its extras' packages still count
        src = p.get("source", {})
        if not isinstance(src.get("registry"), str):
            raise LockError(lock_path, "package %s comes from %s: %s"
                            % (p["name"], _uv_source_text(src), ONLY_INDEXES))
        if not isinstance(p.get("version"), str):
            raise LockError(lock_path, "package %s has no version" % p["name"])
        files = [table(p, "sdist", lock_path, "[package.]")] + array(p, "wheels", lock_path, "[package] ")
        hashes = clean_hashes([f.get("hash") for f in files if isinstance(f, dict)], lock_path,
                              "package %s %s" % (p["name"], p["version"]))
        pins.append((p["name"], p["version"], render_marker(reached[n]), hashes))
        urls.append((n, src["registry"]))
    indexes = first_seen(u for _, u in sorted(urls)) if index_lines else []
    return render("# kiln: hashed", pins, indexes)


# ---------------------------------------------------------------- poetry.lock

def poetry_content_hashes(pp):
    """Locker._get_content_hash as Poetry 2.2+, 2.0-2.1 and 1.x compute it
    (newest first; they differ only for [project] and [dependency-groups])."""
    project = pp.get("project", {}) if isinstance(pp.get("project"), dict) else {}
    tool = pp.get("tool", {}) if isinstance(pp.get("tool"), dict) else {}
    poetry = tool.get("poetry", {}) if isinstance(tool.get("poetry"), dict) else {}
    groups = pp.get("dependency-groups") or {}
    legacy = ["dependencies", "source", "extras", "dev-dependencies"]

    def relevant(skip_legacy_none):
        out = {}
        for key in legacy + ["group"]:
            if poetry.get(key) is None and (key not in legacy or skip_legacy_none):
                continue
            out[key] = poetry.get(key)
        return out

    def digest(obj):
        return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()

    rel_project = dict((k, project[k]) for k in ("requires-python", "dependencies", "optional-dependencies")
                       if project.get(k) is not None)
    out = []
    if rel_project or groups:  # Poetry 2.2+
        content = {"tool": {"poetry": relevant(True)}}
        if rel_project:
            content["project"] = rel_project
        if groups:
            content["dependency-groups"] = groups
        out.append(digest(content))
    if rel_project:  # Poetry 2.0, 2.1
        out.append(digest({"project": rel_project, "tool": {"poetry": relevant(True)}}))
    out.append(digest(relevant(False)))  # Poetry 1.x, and 2.x without [project]
    return out


class Dep(object):
    """One poetry dependency constraint (a list form gives several)."""
    __slots__ = ("name", "constraint", "atoms", "extras", "optional", "vcs")

    def __init__(self, name, constraint="*", atoms=(), extras=(), optional=False, vcs=None):
        self.name, self.constraint, self.atoms = name, constraint, tuple(atoms)
        self.extras, self.optional, self.vcs = tuple(extras), optional, vcs


def poetry_deps(name, raw, path, where):
    if isinstance(raw, str):
        return [Dep(name, raw)]
    if isinstance(raw, list):
        out = []
        for r in raw:
            out.extend(poetry_deps(name, r, path, where))
        return out
    if not isinstance(raw, dict):
        raise LockError(path, "%sdependency %s: not a string or table" % (where, name))
    vcs = None
    for k in ("git", "path", "url", "file", "directory"):
        if k in raw:
            vcs = '%s "%s"' % (k, raw[k])
            break
    atoms = []
    if isinstance(raw.get("markers"), str):
        atoms.append(raw["markers"])
    if isinstance(raw.get("python"), str):
        try:
            atoms.append(python_marker(raw["python"]))
        except ValueError as e:
            raise LockError(path, "%sdependency %s: python %s" % (where, name, e))
    if isinstance(raw.get("platform"), str):
        atoms.append('sys_platform == "%s"' % raw["platform"])
    constraint = raw.get("version", "*")
    if not isinstance(constraint, str):
        raise LockError(path, "%sdependency %s: version must be a string" % (where, name))
    extras = [normalize(x) for x in raw.get("extras", []) if isinstance(x, str)]
    return [Dep(name, constraint, [a for a in atoms if a], extras, raw.get("optional") is True, vcs)]


def pep508_dep(s, path, where):
    if not isinstance(s, str):
        raise LockError(path, "%sdependency %r is not a string" % (where, s))
    try:
        r = parse_requirement(s)
    except ValueError as e:
        raise LockError(path, where + str(e))
    return Dep(r["name"], ",".join(r["specs"]) or "*", [r["marker"]] if r["marker"] else [],
               r["extras"], False, 'url "%s"' % r["url"] if r["url"] else None)


def poetry_groups(pp, pp_path):
    """Groups `poetry install` installs without --only/--with: all but optional ones."""
    poetry = table(table(pp, "tool", pp_path, ""), "poetry", pp_path, "[tool.]")
    conf = table(poetry, "group", pp_path, "[tool.poetry.]")
    names = {"main"}
    if poetry.get("dev-dependencies"):
        names.add("dev")
    for g in list(conf) + list(table(pp, "dependency-groups", pp_path, "")):
        gconf = conf.get(g, {})
        if not (isinstance(gconf, dict) and gconf.get("optional") is True):
            names.add(normalize(g))
    return names


def poetry_root_deps(pp, pp_path, groups, with_project):
    poetry = table(table(pp, "tool", pp_path, ""), "poetry", pp_path, "[tool.]")
    out = []
    tables = [("[tool.poetry.dependencies] ", table(poetry, "dependencies", pp_path, "[tool.poetry.]"))]
    if "dev" in groups:
        tables.append(("[tool.poetry.dev-dependencies] ",
                       table(poetry, "dev-dependencies", pp_path, "[tool.poetry.]")))
    for g, conf in sorted(table(poetry, "group", pp_path, "[tool.poetry.]").items()):
        if normalize(g) in groups and isinstance(conf, dict):
            tables.append(("[tool.poetry.group.%s.dependencies] " % g,
                           table(conf, "dependencies", pp_path, "[tool.poetry.group.%s.]" % g)))
    for where, deps in tables:
        for name, raw in deps.items():
            if normalize(name) != "python":
                out.extend(poetry_deps(name, raw, pp_path, where))
    project = pp.get("project")
    if with_project and isinstance(project, dict):  # Poetry 2; Poetry 1 ignores [project]
        out.extend(pep508_dep(s, pp_path, "[project] ")
                   for s in array(project, "dependencies", pp_path, "[project] "))
    pep735 = table(pp, "dependency-groups", pp_path, "")

    def group_items(g, seen):
        if g in seen:
            return []
        seen.add(g)
        items = []
        for k, v in pep735.items():
            if normalize(k) == g and isinstance(v, list):
                for s in v:
                    if isinstance(s, dict) and isinstance(s.get("include-group"), str):
                        items.extend(group_items(normalize(s["include-group"]), seen))
                    else:
                        items.append(pep508_dep(s, pp_path, "[dependency-groups] %s: " % k))
        return items

    for g in sorted(pep735):
        if normalize(g) in groups:
            out.extend(group_items(normalize(g), set()))
    return [d for d in out if not d.optional]


def _poetry_source(p):
    src = p.get("source")
    if not isinstance(src, dict) or src.get("type") in (None, "pypi"):
        return None, PYPI
    kind = src.get("type")
    url = src.get("url", "")
    if kind == "legacy" and isinstance(url, str) and url:
        return None, url
    return '%s "%s"' % (kind, url), None


def convert_poetry(lock_path, index_lines):
    lock = load_toml(lock_path)
    meta = table(lock, "metadata", lock_path, "")
    lv = meta.get("lock-version")
    m = re.match(r"^([0-9]+)(?:\.([0-9]+))?", lv) if isinstance(lv, str) else None
    if not m or m.group(1) not in ("1", "2"):
        raise LockError(lock_path, "unsupported poetry.lock lock-version %s (kiln reads 1.x and 2.x)"
                        % json.dumps(lv))
    lock_version = (int(m.group(1)), int(m.group(2) or 0))
    pp_path = sibling_pyproject(lock_path)
    pp = load_toml(pp_path, "poetry.lock")
    have = meta.get("content-hash")
    hashes = poetry_content_hashes(pp)
    if have not in hashes:
        raise LockError(lock_path, "poetry.lock is out of date with pyproject.toml (content-hash %s in "
                        "poetry.lock, %s from pyproject.toml; run `poetry lock`)"
                        % (json.dumps(have), json.dumps(hashes[0])))
    pkgs, by_name = lock_packages(lock, lock_path, string, "version")
    groups = poetry_groups(pp, pp_path)

    if lock_version >= (2, 1) and pkgs and all("groups" in p for p in pkgs):
        reached = poetry_by_groups(pkgs, groups, lock_path)
    else:
        roots = poetry_root_deps(pp, pp_path, groups, lock_version >= (2, 1))
        reached = poetry_walk(pkgs, by_name, roots, lock_path)

    files_meta = table(meta, "files", lock_path, "[metadata.]")
    hashes_meta = table(meta, "hashes", lock_path, "[metadata.]")
    pins, urls = [], []
    for n in sorted(reached):
        p = pkgs[n]
        bad, url = _poetry_source(p)
        if bad:
            raise LockError(lock_path, "package %s comes from %s: %s" % (p["name"], bad, ONLY_INDEXES))
        if "files" in p:
            files = array(p, "files", lock_path, "[package] ")
            entries = [f.get("hash") for f in files if isinstance(f, dict)]
        else:
            old = files_meta.get(p["name"], files_meta.get(normalize(p["name"]), []))
            entries = [f.get("hash") for f in old if isinstance(f, dict)] if isinstance(old, list) else []
            old = hashes_meta.get(p["name"], [])
            entries += old if isinstance(old, list) else []
        pins.append((p["name"], p["version"], render_marker(reached[n]),
                     clean_hashes(entries, lock_path, "package %s %s" % (p["name"], p["version"]))))
        urls.append(url)
    indexes = []
    if index_lines:
        indexes = first_seen(urls)
        if PYPI in indexes:
            indexes.remove(PYPI)
            indexes.insert(0, PYPI)
    return render("# kiln: hashed", pins, indexes)


def poetry_by_groups(pkgs, groups, lock_path):
    """lock-version 2.1: each package names its groups and markers (Poetry 2
    installs from these without resolving again)."""
    reached = {}
    for i, p in enumerate(pkgs):
        if p.get("optional") is True:
            continue  # only for extras, and none are asked for
        mine = [g for g in array(p, "groups", lock_path, "[package] ")
                if isinstance(g, str) and normalize(g) in groups]
        if not mine:
            continue
        markers = p.get("markers")
        d = FALSE
        for g in mine:
            m = markers.get(g) if isinstance(markers, dict) else markers
            d = dnf_or(d, dnf_atoms([m] if isinstance(m, str) and m.strip() not in ("", "*") else []))
        reached[i] = d
    return reached


def poetry_walk(pkgs, by_name, root_deps, lock_path):
    """Older locks: follow the pyproject's dependencies through the lock."""

    def resolve(dep, owner):
        who = "pyproject.toml requires" if owner is None else "%s depends on" % pkgs[owner]["name"]
        cands = by_name.get(normalize(dep.name), [])
        if len(cands) > 1:
            cands = [c for c in cands if constraint_matches(dep.constraint, pkgs[c]["version"])]
        if len(cands) == 1:
            return Edge(cands[0], dep.atoms, dep.extras)
        if not cands and dep.atoms:
            return None  # for environments the lock was not made for
        raise LockError(lock_path, "%s %s %s, which poetry.lock %s" % (
            who, dep.name, dep.constraint,
            "does not contain" if not cands else "holds in several matching versions"))

    def lock_deps(n):
        out = []
        deps = table(pkgs[n], "dependencies", lock_path, "[package.]")
        for name, raw in sorted(deps.items()):
            where = "[package.dependencies] of %s: " % pkgs[n]["name"]
            out.extend(poetry_deps(name, raw, lock_path, where))
        return out

    def usable(edges):
        return [e for e in edges if e is not None and pkgs[e.target].get("optional") is not True]

    memo = {}

    def deps_of(n):
        if n not in memo:
            memo[n] = usable([resolve(d, n) for d in lock_deps(n) if not d.optional])
        return memo[n]

    def extras_of(n, extra):
        wanted = []
        for k, v in table(pkgs[n], "extras", lock_path, "[package.]").items():
            if normalize(k) == extra and isinstance(v, list):
                wanted = [s for s in v if isinstance(s, str)]
        all_deps = lock_deps(n)
        out = []
        for s in wanted:
            m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", s)
            if not m:
                continue
            more = [normalize(x.strip()) for x in (m.group(2) or "").split(",") if x.strip()]
            named = [d for d in all_deps if normalize(d.name) == normalize(m.group(1))] or [Dep(m.group(1))]
            for d in named:
                out.append(resolve(Dep(d.name, d.constraint, d.atoms, tuple(d.extras) + tuple(more)), n))
        return usable(out)

    start = usable([resolve(d, None) for d in root_deps])
    return walk(start, deps_of, extras_of)


# ---------------------------------------------------------------- pyproject.toml

def convert_pyproject(path):
    pp = load_toml(path)
    project = pp.get("project")
    lines = []
    if project is not None and not isinstance(project, dict):
        raise LockError(path, "[project] must be a table")
    dynamic = project.get("dynamic", []) if project else []
    poetry = table(table(pp, "tool", path, ""), "poetry", path, "[tool.]")
    if project is not None and "dependencies" not in dynamic:
        for d in array(project, "dependencies", path, "[project] "):
            if not isinstance(d, str) or "\n" in d or "\r" in d:
                raise LockError(path, "[project] dependency %s is not a one-line string" % json.dumps(d))
            try:
                name = parse_requirement(d)["name"]
            except ValueError as e:
                raise LockError(path, "[project] " + str(e))
            lines.append((normalize(name), d.strip()))
    elif project is not None and "dependencies" not in poetry:
        raise LockError(path, "[project] dependencies are dynamic and [tool.poetry.dependencies] "
                        "is missing")
    else:
        deps = table(poetry, "dependencies", path, "[tool.poetry.]")
        for name, raw in deps.items():
            if normalize(name) == "python":
                continue
            for d in poetry_deps(name, raw, path, "[tool.poetry.dependencies] "):
                if d.optional:
                    continue
                if d.vcs:
                    raise LockError(path, "dependency %s comes from %s: kiln installs packages from "
                                    "indexes only" % (name, d.vcs))
                try:
                    spec = poetry_to_pep440(d.constraint)
                except ValueError as e:
                    raise LockError(path, "dependency %s: %s" % (name, e))
                line = name + ("[%s]" % ",".join(d.extras) if d.extras else "") + spec
                if d.atoms:
                    line += " ; " + render_and(canon_marker(a) for a in d.atoms)
                lines.append((normalize(name), line))
    return "\n".join(["# kiln: unhashed"] + [l for _, l in sorted(lines)]) + "\n"


# ---------------------------------------------------------------- main

def convert(src, index_lines):
    base = os.path.basename(src)
    if base == "uv.lock":
        return convert_uv(src, index_lines)
    if base == "poetry.lock":
        return convert_poetry(src, index_lines)
    if base == "pyproject.toml":
        return convert_pyproject(src)
    raise LockError(src, "expected a file named uv.lock, poetry.lock or pyproject.toml")


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    except OSError as e:
        raise LockError(path, "cannot write: %s" % (e.strerror or e))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise LockError(path, "cannot write: %s" % (e.strerror or e))


def fail(path, msg):
    line = "%s: %s: %s" % (PROG, path, msg) if path else "%s: %s" % (PROG, msg)
    sys.stderr.write(redact(" ".join(line.split())) + "\n")
    return 2


def main(argv):
    pos, index_lines = [], True
    for a in argv[1:]:
        if a == "--no-index-lines":
            index_lines = False
        elif a in ("-h", "--help"):
            sys.stdout.write(USAGE + "\n")
            return 0
        elif a.startswith("-") and a != "-":
            return fail(None, "unknown option %s; %s" % (a, USAGE))
        else:
            pos.append(a)
    if len(pos) != 2:
        return fail(None, USAGE)
    src, out = pos
    try:
        write_atomic(out, convert(src, index_lines))
    except LockError as e:
        return fail(e.path, e.msg)
    except RecursionError:
        return fail(src, "nested too deeply")
    except Exception as e:  # input of a shape not checked above: still one line
        return fail(src, "cannot convert: %s: %s" % (type(e).__name__, e))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
