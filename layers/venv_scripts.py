"""Console scripts of a flytekit the venv sees but does not hold.

Run by the pip step, after pip, with the venv's python (/root/.venv/bin/python).
A base whose system python has flytekit (ghcr.io/flyteorg/flytekit) is seen
by the venv through --system-site-packages, so pip installs nothing for it,
and the task command's pyflyte-execute / pyflyte-fast-execute resolve to the
base's scripts, whose interpreter does not see the venv: the task's imports
of the image's packages fail. flytekit's default builder installs flytekit
and the packages into one environment instead. Here the distribution's
console_scripts are written into the venv's bin (first on PATH), in pip's
script form with the venv's python as interpreter. A script the venv already
has is never overwritten; a flytekit installed in the venv needs nothing.

Standard library only; prints one line per script written, to stderr.
"""

import os
import re
import sys

SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {import_name}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({func}())
"""

# module:attr [extras], as importlib.metadata's EntryPoint.pattern
ENTRY_RE = re.compile(r"^(?P<module>[\w.]+)\s*:\s*(?P<attr>[\w.]+)\s*(\[[^\]]*\])?\s*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def inside(path, root):
    path = os.path.realpath(path)
    root = os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


def main():
    try:
        import importlib.metadata as md
    except ImportError:  # python < 3.8: no metadata to read
        return 0
    try:
        dist = md.distribution("flytekit")
    except md.PackageNotFoundError:
        return 0
    if inside(str(dist.locate_file("")), sys.prefix):
        return 0
    python = os.path.join(sys.prefix, "bin", "python")
    bindir = os.path.join(sys.prefix, "bin")
    for ep in sorted(dist.entry_points, key=lambda e: e.name):
        if ep.group != "console_scripts" or not NAME_RE.match(ep.name):
            continue
        m = ENTRY_RE.match(ep.value)
        if not m:
            continue
        path = os.path.join(bindir, ep.name)
        if os.path.lexists(path):
            continue
        attr = m.group("attr")
        text = SCRIPT.format(python=python, module=m.group("module"),
                             import_name=attr.split(".")[0], func=attr)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            os.fchmod(f.fileno(), 0o755)
        sys.stderr.write("kiln: %s: flytekit %s of the base (%s) now runs with %s\n"
                         % (path, dist.version, dist.locate_file(""), python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
