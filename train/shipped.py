"""The shipped checkpoints, found from the installed package, never from the working directory.

The repository's ``weights/*.json`` + ``*.safetensors`` are installed as the package data of
``dyconvsr_weights`` (pyproject.toml maps the folder to that name; ``weights/runs/`` stays out),
so the import system finds them in an editable install (the folder itself) and in a wheel (a
copy in site-packages) alike, wherever the command runs.
"""
from __future__ import annotations

from pathlib import Path

from runtime.package_data import package_folders

PACKAGE = "dyconvsr_weights"


def shipped_checkpoints() -> list[Path]:
    """Every shipped checkpoint's ``<name>.json`` (beside its ``<name>.safetensors``), by name."""
    entries: dict[str, Path] = {}
    for folder in package_folders(PACKAGE, "weights"):
        for path in folder.iterdir():
            entries.setdefault(path.name, path)
    return [entries[name] for name in sorted(entries)
            if name.endswith(".json") and f"{name[:-5]}.safetensors" in entries and entries[name].is_file()]


def shipped_checkpoint(name: str) -> Path | None:
    """The shipped checkpoint called ``name`` (e.g. ``dyconvsr_x2``), or None."""
    return next((p for p in shipped_checkpoints() if p.stem == name), None)
