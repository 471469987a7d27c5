"""The engines that ship inside the wheel (package ``dyconvsr_engines``, the repository's ``engines/``, written by
``make engines``): artifact folders found by model name, so ``dyconvsr-upscale dyconvsr_x2 photo.jpg`` and
``dyconvsr-check dyconvsr_x2`` work from any folder of a torch-free install."""
from __future__ import annotations

from pathlib import Path

from .manifest import MANIFEST_NAME
from .package_data import package_folders

PACKAGE = "dyconvsr_engines"
SUFFIX = ".artifact"  # engines/<model>.artifact/: a folder name setuptools does not mistake for a Python package


def packaged_models() -> dict[str, Path]:
    """Every packaged artifact folder by its model name (``engines/dyconvsr_x2.artifact`` as ``dyconvsr_x2``)."""
    models: dict[str, Path] = {}
    for folder in package_folders(PACKAGE, "engines"):
        for entry in sorted(folder.iterdir()):
            if entry.name.endswith(SUFFIX) and not entry.name.startswith(".") and (entry / MANIFEST_NAME).is_file():
                models.setdefault(entry.name.removesuffix(SUFFIX), entry)
    return models


def is_model_name(value: str) -> bool:
    """Whether ``value`` reads as a model name rather than a path: one component, no suffix."""
    one_part = "/" not in value and "\\" not in value and value not in ("", ".", "..")
    return one_part and not Path(value).suffix
