"""ImageSpec(builder="kiln"): flytekit's image builder interface over the
kiln binary.

flytekit's ImageBuildEngine asks should_build(), then build_image(); both
run kiln as a subprocess in the caller's working directory (relative
requirements, copy and source_root resolve as flytekit resolves them),
with the spec on stdin as YAML. kiln computes the name and _F_IMG_ID
itself; before building, they are checked against flytekit's own.
"""
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import click
from flytekit.exceptions.user import FlyteAssertion, FlyteUserException
from flytekit.image_spec.image_spec import ImageSpec, ImageSpecBuilder

from . import spec as specmod

# kiln's exit codes (kiln help)
EXIT_NAMES = {
    1: "system or internal error",
    2: "usage: bad option, argument or reference",
    3: "not found",
    4: "authentication failed or access denied",
    5: "network or registry error",
    6: "content does not match its digest",
    7: "malformed manifest, config, index or archive",
    8: "invalid ImageSpec",
    9: "a build step failed",
}
EXIT_NOT_FOUND = 3

# builder_options the plugin understands: key -> (kiln flag, kind)
BUILDER_OPTIONS = {
    "cache_repo": ("--cache-repo", str),
    "jobs": ("--jobs", int),
    "parallel": ("--parallel", int),
    "network": ("--network", str),
    "allow_host": ("--allow-host", list),
    "outputs": ("-o", list),
    "compression": ("--compression", str),
    "timeout": ("--timeout", str),
    "insecure_registry": ("--insecure-registry", list),
    "flytekit_requirement": ("--flytekit-requirement", str),
    "extra_args": (None, list),
}


class KilnBuildError(FlyteUserException):
    """kiln exited non-zero: its message and exit code."""

    def __init__(self, message, exit_code):
        self.exit_code = exit_code
        what = EXIT_NAMES.get(exit_code, "failed")
        super().__init__(f"kiln exited {exit_code} ({what}): {message}")


class KilnNameMismatch(FlyteAssertion):
    """kiln would build under another name or id than flytekit computes."""


def kiln_binary():
    """$KILN, else kiln on PATH."""
    path = os.environ.get("KILN") or shutil.which("kiln")
    if not path:
        raise FlyteAssertion("kiln is not installed: no kiln on PATH and $KILN is not set "
                             "(see https://github.com/ for kiln's README, 'Using kiln from "
                             "flytekit')")
    return path


def _pump(src, dst, tail):
    """Copies kiln's stderr to ours as it comes (its progress), keeping
    the last lines for an error."""
    buf = b""
    while True:
        try:
            chunk = os.read(src, 4096)
        except OSError:  # a pty reads EIO once kiln has exited
            break
        if not chunk:
            break
        dst.write(chunk.decode("utf-8", "replace"))
        dst.flush()
        buf = (buf + chunk)[-16384:]
    tail.extend(buf.decode("utf-8", "replace").splitlines())


def run_kiln(args, stdin_text, capture_stdout=False, progress=True):
    """Runs kiln with the spec on stdin in the working directory. Its
    stderr reaches the user's terminal (through a pty when stderr is one,
    so kiln keeps its live view); returns (exit code, stdout, last
    error line)."""
    cmd = [kiln_binary(), *args]
    tail = []
    use_pty = progress and sys.stderr.isatty()
    if use_pty:
        import pty

        master, slave = pty.openpty()
    else:
        master, slave = os.pipe()
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE if capture_stdout else None,
                             stderr=slave, cwd=os.getcwd())
    except OSError as e:
        os.close(master)
        os.close(slave)
        raise FlyteAssertion(f"cannot run {cmd[0]}: {e}") from e
    os.close(slave)
    sink = sys.stderr if progress else open(os.devnull, "w")
    t = threading.Thread(target=_pump, args=(master, sink, tail), daemon=True)
    t.start()
    out, _ = p.communicate(stdin_text.encode("utf-8"))
    t.join()
    os.close(master)
    if not progress:
        sink.close()
    errors = [ln[len("kiln: error: "):] for ln in tail if ln.startswith("kiln: error: ")]
    message = errors[-1] if errors else (tail[-1] if tail else "no message")
    return p.returncode, (out or b"").decode("utf-8"), message


def _original(spec):
    """The ImageSpec the user wrote, when flytekit's ImageBuildEngine.build
    handed us its copy: it replaces a nested base ImageSpec by the base's
    name before calling the builder, but the image's _F_IMG_ID (what
    is_container() compares in the pod) is the id of the spec with the
    nested base. Found in the caller's frame; else the spec as given."""
    frame = inspect.currentframe()
    try:
        f = frame.f_back
        while f is not None:
            if f.f_code.co_name == "build" and f.f_locals.get("spec") is spec:
                orig = f.f_locals.get("image_spec")
                if isinstance(orig, ImageSpec):
                    return orig
            f = f.f_back
    finally:
        del frame
    return spec


def _loaded_modules_file(spec, tmp):
    """The module files pyflyte imported, for each source_root that copies
    loaded_modules (flytekit's own list_imported_modules_as_files), in a
    file for kiln --loaded-modules; None when no root needs it."""
    roots = [r for r, mode in specmod.source_roots(spec) if mode == "loaded_modules"]
    if not roots:
        return None
    from flytekit.tools.script_mode import list_imported_modules_as_files

    files = set()
    modules = list(sys.modules.values())
    for r in roots:
        files.update(list_imported_modules_as_files(r, modules))
    bad = [f for f in files if "\n" in f or not os.path.isabs(f)]
    if bad:
        raise specmod.SpecError(f"module file path(s) kiln cannot take: {bad!r}")
    path = os.path.join(tmp, "loaded-modules.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in sorted(files)))
    return path


def _flytekit_requirement():
    from flytekit.image_spec.default_builder import get_flytekit_for_pypi

    return get_flytekit_for_pypi()


def _as_list(v):
    if v is None:
        return []
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        return [v]
    return list(v)


def _option_args(spec):
    """kiln flags for builder_options (keys in BUILDER_OPTIONS; others are
    another builder's and left alone)."""
    args = []
    opts = spec.builder_options or {}
    for key, (flag, kind) in BUILDER_OPTIONS.items():
        if key not in opts or opts[key] is None:
            continue
        v = opts[key]
        if kind is list:
            for x in _as_list(v):
                args += [str(x)] if flag is None else [flag, str(x)]
        elif kind is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise FlyteAssertion(f"builder_options[{key!r}] must be an integer, not {v!r}")
            args += [flag, str(v)]
        else:
            args += [flag, str(v)]
    if "flytekit_requirement" not in opts:
        args += ["--flytekit-requirement", _flytekit_requirement()]
    return args


def _push_wanted():
    # flytekit's DefaultImageBuilder reads it this way (not str2bool)
    return os.getenv("FLYTE_PUSH_IMAGE_SPEC", "True").lower() in ("true", "1")


def default_output(image_name):
    """Where an image that is not pushed goes: an OCI layout in the user's
    cache, tagged with the image's tag."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = image_name.rsplit(":", 1)[1]
    return f"oci:{os.path.join(base, 'flytekitplugins-kiln', 'images')}:{tag}"


class KilnImageSpecBuilder(ImageSpecBuilder):
    """Builds ImageSpecs with kiln: no Docker daemon."""

    builder_type = "kiln"

    def should_build(self, image_spec: ImageSpec) -> bool:
        name = image_spec.image_name()
        if image_spec._is_force_push:
            click.secho(f"Overwriting existing image {name} (FLYTE_FORCE_PUSH_IMAGE_SPEC).",
                        fg="blue")
            return True
        if not image_spec.registry:
            return True
        opts = image_spec.builder_options or {}
        reach = []
        for h in _as_list(opts.get("insecure_registry")):
            reach += ["--insecure-registry", str(h)]
        if opts.get("timeout") is not None:
            reach += ["--timeout", str(opts["timeout"])]
        code, _, message = run_kiln(["inspect", "--json", "-q", *reach, f"docker://{name}"], "",
                                    capture_stdout=True, progress=False)
        if code == 0:
            click.secho(f"Image {name} found. Skip building.", fg="blue")
            return False
        if code == EXIT_NOT_FOUND:
            click.secho(f"Image {name} not found. building...", fg="blue")
            return True
        if image_spec._fast_fail:
            raise RuntimeError(f"kiln could not check whether {name} exists (exit {code}: "
                               f"{message}); FLYTE_IMG_FAST_FAIL is set")
        # Not "assume it exists" (flytekit's default when docker is not
        # there): the build's own check and push then report the cause.
        click.secho(f"kiln could not check whether {name} exists ({message}); building.",
                    fg="yellow")
        return True

    def build_image(self, image_spec: ImageSpec) -> str:
        original = _original(image_spec)
        name = image_spec.image_name()
        want_id = original.id
        try:
            text = specmod.to_yaml(original)
        except specmod.SpecError as e:
            raise KilnNameMismatch(f"ImageSpec {image_spec.name}: {e}") from e
        with tempfile.TemporaryDirectory(prefix="flytekitplugins-kiln.") as tmp:
            common = ["-f", "-"]
            loaded = _loaded_modules_file(original, tmp)
            if loaded:
                common += ["--loaded-modules", loaded]
            code, out, message = run_kiln(["name", "--json", *common], text,
                                          capture_stdout=True, progress=False)
            if code != 0:
                raise KilnBuildError(message, code)
            got = json.loads(out)
            if got["name"] != name or got["id"] != want_id:
                raise KilnNameMismatch(
                    f"kiln would build ImageSpec {image_spec.name} as {got['name']} with "
                    f"_F_IMG_ID {got['id']}, but flytekit names it {name} with id {want_id}; "
                    f"refusing to build an image flytekit would not find")
            args = ["build", *common, *_option_args(original)]
            push = _push_wanted() and bool(image_spec.registry)
            if push:
                args.append("--push")
            if image_spec._is_force_push:
                args.append("--force")
            opts = original.builder_options or {}
            if not push and not opts.get("outputs"):
                args += ["-o", default_output(name)]
            code, _, message = run_kiln(args, text)
            if code != 0:
                raise KilnBuildError(message, code)
        # the name, not name@digest: flytekit would hash a returned
        # name@digest into the tags of specs built on this one in this run
        # only, so the next run (which skips the build) names them apart
        return name
