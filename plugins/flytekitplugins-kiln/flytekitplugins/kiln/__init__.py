"""flytekitplugins-kiln: ImageSpec(builder="kiln") builds with kiln, a
daemonless OCI image builder. flytekit imports this module through the
`flytekit.plugins` entry point, which registers the builder."""
from flytekit.image_spec.image_spec import ImageBuildEngine

from .builder import KilnBuildError, KilnImageSpecBuilder, KilnNameMismatch

__all__ = ["KilnBuildError", "KilnImageSpecBuilder", "KilnNameMismatch"]

# Below flytekit's default builder (priority 1, flytekit/image_spec/
# __init__.py): installing the plugin changes no ImageSpec that names no
# builder; builder="kiln" picks this one.
ImageBuildEngine.register(KilnImageSpecBuilder.builder_type, KilnImageSpecBuilder(), priority=0)
