"""The shipped checkpoints, found from the installed package, never from the working directory.

The repository's ``weights/*.json`` + ``*.safetensors`` are installed as the package data of
``dyconvsr_weights`` (pyproject.toml maps the folder to that name; ``weights/runs/`` stays out),
so the import system finds them in an editable install (the folder itself) and in a wheel (a
copy in site-packages) alike, wherever the command runs.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "dyconvsr_weights"
# A checkout run without `pip install` (PYTHONPATH=.): the folder beside this package.
SOURCE_TREE = Path(__file__).resolve().parents[1] / "weights"


def shipped_checkpoints() -> list[Path]:
    """Every shipped checkpoint's ``<name>.json`` (beside its ``<name>.safetensors``), by name."""
    entries: dict[str, Path] = {}
    for folder in _package_folders():
        for path in folder.iterdir():
            entries.setdefault(path.name, path)
    return [entries[name] for name in sorted(entries)
            if name.endswith(".json") and f"{name[:-5]}.safetensors" in entries and entries[name].is_file()]


def _package_folders() -> list[Path]:
    # weights/ has no __init__.py, so the package is a namespace package: its folders are the spec's
    # search locations. (importlib.resources.files() refuses it in Python 3.11 editable installs,
    # whose search path also holds a placeholder entry that is no folder.)
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return [SOURCE_TREE] if SOURCE_TREE.is_dir() else []
    return [Path(entry) for entry in spec.submodule_search_locations if Path(entry).is_dir()]


def shipped_checkpoint(name: str) -> Path | None:
    """The shipped checkpoint called ``name`` (e.g. ``dyconvsr_x2``), or None."""
    return next((p for p in shipped_checkpoints() if p.stem == name), None)
