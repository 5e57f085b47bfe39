"""A PEP 517 backend with nothing but the standard library.

It builds the one pure-Python wheel this package is (the package files
under flytekitplugins/, the metadata from pyproject.toml), so that pip
installs the plugin with no index at all. Wheels are reproducible: fixed
timestamps and sorted entries.
"""
import base64
import hashlib
import os
import tarfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = "flytekitplugins"
# 1980-01-01, the earliest time a zip entry can hold
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _project():
    path = os.path.join(ROOT, "pyproject.toml")
    if tomllib is not None:
        with open(path, "rb") as f:
            return tomllib.load(f)["project"]
    return _project_fallback(path)


def _project_fallback(path):
    """The few keys this backend reads, for Pythons without tomllib: the
    [project] table's simple strings, its dependencies, and the entry
    points table."""
    import ast

    project, section, deps = {}, None, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                continue
            key, _, value = (x.strip() for x in line.partition("="))
            if section == "project" and key in ("name", "version", "description",
                                                "requires-python"):
                project[key] = ast.literal_eval(value)
            elif section == "project" and key == "dependencies":
                deps = ast.literal_eval(value)
            elif section and section.startswith("project.entry-points."):
                group = ast.literal_eval(section[len("project.entry-points."):])
                project.setdefault("entry-points", {}).setdefault(group, {})[key] = \
                    ast.literal_eval(value)
    project["dependencies"] = deps or []
    return project


def _dist_name(project):
    return project["name"].replace("-", "_")


def _metadata(project):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
    ]
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _entry_points(project):
    out = []
    for group, entries in sorted(project.get("entry-points", {}).items()):
        out.append(f"[{group}]")
        out += [f"{k} = {v}" for k, v in sorted(entries.items())]
        out.append("")
    return "\n".join(out)


def _package_files():
    files = []
    for top, dirs, names in os.walk(os.path.join(ROOT, PACKAGE_DIR)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in sorted(names):
            if n.endswith((".py", ".typed")):
                full = os.path.join(top, n)
                files.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return files


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _dist_info_files(project):
    return {
        "METADATA": _metadata(project).encode(),
        "WHEEL": b"Wheel-Version: 1.0\nGenerator: kiln_build_backend\n"
                 b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        "entry_points.txt": _entry_points(project).encode(),
        "top_level.txt": (PACKAGE_DIR + "\n").encode(),
    }


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project = _project()
    name = f"{_dist_name(project)}-{project['version']}.dist-info"
    d = os.path.join(metadata_directory, name)
    os.makedirs(d, exist_ok=True)
    for fname, data in _dist_info_files(project).items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    dist = _dist_name(project)
    wheel_name = f"{dist}-{project['version']}-py3-none-any.whl"
    dist_info = f"{dist}-{project['version']}.dist-info"
    record = []
    path = os.path.join(wheel_directory, wheel_name)
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        def add(arcname, data):
            info = zipfile.ZipInfo(arcname, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            record.append(_record_line(arcname, data))

        for arcname, full in _package_files():
            with open(full, "rb") as f:
                add(arcname, f.read())
        for fname, data in _dist_info_files(project).items():
            add(f"{dist_info}/{fname}", data)
        record.append(f"{dist_info}/RECORD,,")
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", ZIP_TIME)
        info.external_attr = 0o644 << 16
        z.writestr(info, "\n".join(record) + "\n")
    os.replace(path + ".tmp", path)
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    name = f"{base}.tar.gz"
    members = ["pyproject.toml", "README.md", "_build/kiln_build_backend.py"]
    members += [rel for rel, _ in _package_files()]

    def reset(ti):
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.mtime = 315532800
        return ti

    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in members:
            full = os.path.join(ROOT, rel)
            if os.path.exists(full):
                t.add(full, arcname=f"{base}/{rel}", filter=reset)
    return name
