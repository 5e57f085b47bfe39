"""An ImageSpec as the YAML kiln reads, losslessly.

kiln computes flytekit's name, tag and id from the YAML itself (str() of
the dataclass dict, hashed), so every value must read back as the Python
value it was: enums by member name, tuples as lists (kiln knows which
fields hold tuples), a nested base ImageSpec as a nested mapping, and
scalars of the type they had. PyYAML writes the YAML (flytekit depends
on it) and the text is checked to read back as the values written.
"""
import dataclasses
import enum

import yaml

# Fields kiln reads as flytekit's ImageSpec defines them; one kiln does
# not know would change flytekit's hash without kiln seeing it, so it is
# refused (SpecError) rather than dropped.
KNOWN_FIELDS = (
    "name", "python_version", "builder", "source_root", "env", "registry", "packages",
    "conda_packages", "conda_channels", "requirements", "apt_packages", "cuda", "cudnn",
    "base_image", "platform", "pip_index", "pip_extra_index_url", "pip_secret_mounts",
    "pip_extra_args", "registry_config", "entrypoint", "commands", "tag_format",
    "source_copy_mode", "copy", "python_exec", "runtime_packages", "builder_options",
    "builder_config",
)


class SpecError(ValueError):
    """An ImageSpec value kiln cannot take as flytekit hashes it."""


def _value(field, v):
    if isinstance(v, enum.Enum):
        return v.name.lower()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return to_dict(v)
    if isinstance(v, (list, tuple)):
        return [_value(field, x) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise SpecError(f"{field}: key {k!r} is not a string")
            out[k] = _value(f"{field}.{k}", x)
        return out
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    raise SpecError(f"{field}: a {type(v).__name__} ({v!r}) has no YAML form that kiln "
                    f"hashes as flytekit hashes it; use a str, number, bool, list or dict")


def to_dict(spec):
    """The spec's fields in flytekit's order; None left out (flytekit
    leaves None out of the hash), a nested ImageSpec as a mapping."""
    out = {}
    names = [f.name for f in dataclasses.fields(spec)]
    unknown = [n for n in names if n not in KNOWN_FIELDS and getattr(spec, n) is not None]
    if unknown:
        raise SpecError(f"ImageSpec field(s) {', '.join(unknown)} are not known to this kiln "
                        f"plugin; it cannot compute flytekit's name for them")
    for n in names:
        v = getattr(spec, n)
        if v is None:
            continue
        out[n] = _value(n, v)
    return out


def to_yaml(spec):
    d = to_dict(spec)
    text = yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=1 << 20)
    back = yaml.safe_load(text)
    if back != d or repr(back) != repr(d):
        raise SpecError(f"the spec does not read back as written in YAML: {d!r}")
    return text


def source_roots(spec):
    """(source_root, mode name) of the spec and every nested base."""
    out = []
    while spec is not None and dataclasses.is_dataclass(spec):
        mode = spec.source_copy_mode
        if spec.source_root is not None and mode is not None:
            out.append((str(spec.source_root), mode.name.lower()))
        spec = spec.base_image
    return out
