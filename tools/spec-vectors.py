#!/usr/bin/python3
"""Expected image names for testdata/spec/vectors/*.yaml, computed in Python.

An independent implementation of flytekit's ImageSpec name/tag/id (see
/work/shared/imagespec-reference.md) in the language flytekit uses: PyYAML's
safe_load types the values and Python's own str(dict) renders them, so the C
code is checked against the real repr, float formatting and YAML typing.

    tools/spec-vectors.py > testdata/spec/vectors.tsv

Output columns (tab-separated): spec file (relative to testdata/spec),
image name, id, the str(dict) hashed for the tag, the one hashed for the id.
repr() never emits raw tabs or newlines, so the TSV needs no quoting.
"""
import base64
import enum
import glob
import hashlib
import os
import sys

import yaml

FIELDS = [
    "name", "python_version", "builder", "source_root", "env", "registry",
    "packages", "conda_packages", "conda_channels", "requirements",
    "apt_packages", "cuda", "cudnn", "base_image", "platform", "pip_index",
    "pip_extra_index_url", "pip_secret_mounts", "pip_extra_args",
    "registry_config", "entrypoint", "commands", "tag_format",
    "source_copy_mode", "copy", "python_exec", "runtime_packages",
    "builder_options", "builder_config",
]


class CopyFileDetection(enum.Enum):
    """flytekit.constants.CopyFileDetection: its repr is what hashes."""
    LOADED_MODULES = 1
    ALL = 2
    NO_COPY = 3


EXCLUDED = {"pip_secret_mounts", "builder", "runtime_packages"}


def copy_digest(paths, base):
    # flytekit's compute_digest(list): files then their relative path with
    # separators removed; os.walk with subdirectories sorted (kiln's
    # deterministic choice where os.walk uses the file system's order).
    h = hashlib.md5()

    def one(path, rel):
        if not os.path.exists(path):
            return
        with open(path, "rb") as f:
            h.update(f.read())
        h.update("".join(rel.split(os.sep)).encode("utf-8"))

    for p in paths:
        full = os.path.join(base, p)
        if os.path.isdir(full):
            for root, dirs, files in os.walk(full, topdown=True):
                dirs.sort()
                files.sort()
                for fn in files:
                    a = os.path.join(root, fn)
                    one(a, os.path.relpath(a, full))
        else:
            one(full, os.path.basename(full))
    return h.hexdigest()


def source_digest(root):
    # flytekit's ls_files digest for CopyFileDetection.ALL: the files in
    # sorted path order, each its bytes then its relative path without
    # separators. Ignore files are not modelled here: refuse them.
    files = []
    for top, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".git"]
        for n in names:
            assert n not in (".gitignore", ".dockerignore") and not n.endswith(".pyc"), root
            files.append(os.path.join(top, n))
    h = hashlib.md5()
    for path in sorted(files):
        with open(path, "rb") as f:
            h.update(f.read())
        h.update("".join(os.path.relpath(path, root).split(os.sep)).encode("utf-8"))
    return h.hexdigest()


def spec_dict(d, base, for_tag):
    out = {}
    for f in FIELDS:
        if f in EXCLUDED:
            continue
        if f == "name":
            out[f] = d.get("name", "flytekit").lower()
            continue
        if f == "platform":
            out[f] = d.get("platform", "linux/amd64")
            continue
        v = d.get(f)
        if f == "source_copy_mode":
            # the member by its lowercased name; source_root alone means
            # LOADED_MODULES (ImageSpec.__post_init__)
            if v is None and d.get("source_root") is not None:
                v = "loaded_modules"
            if v is not None:
                v = CopyFileDetection[v.upper()]
        if v is None or (f == "registry_config" and for_tag):
            continue
        if f == "registry":
            v = v.lower()
        elif f == "source_root" and for_tag and d.get("source_copy_mode") == "all":
            v = source_digest(os.path.join(base, v))
        elif f == "copy" and for_tag and v:
            v = copy_digest(v, base)
        elif f == "requirements" and for_tag and v:
            with open(os.path.join(base, v), "rb") as fh:
                v = hashlib.sha1(fh.read().strip()).hexdigest()
        elif f == "base_image" and isinstance(v, dict):
            v = image_name(v, base)[0] if for_tag else spec_dict(v, base, False)
        out[f] = v
    return out


def h(text):
    return base64.urlsafe_b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode("ascii").rstrip("=")


def image_name(d, base):
    tag_dict = str(spec_dict(d, base, True))
    id_dict = str(spec_dict(d, base, False))
    tag = h(tag_dict).replace("-", "_")
    if d.get("tag_format"):
        tag = d["tag_format"].format(spec_hash=tag)
    name = d.get("name", "flytekit").lower()
    reg = d.get("registry")
    repo = f"{reg.lower()}/{name}" if reg else name
    return f"{repo}:{tag}", h(id_dict), tag_dict, id_dict


def main():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "spec")
    for path in sorted(glob.glob(os.path.join(top, "vectors", "**", "*.yaml"), recursive=True)):
        with open(path, "rb") as f:
            d = yaml.safe_load(f)
        full, ident, tag_dict, id_dict = image_name(d, os.path.dirname(path))
        rel = os.path.relpath(path, top)
        for col in (full, ident, tag_dict, id_dict):
            assert "\t" not in col and "\n" not in col, rel
        sys.stdout.write("\t".join([rel, full, ident, tag_dict, id_dict]) + "\n")


if __name__ == "__main__":
    main()
