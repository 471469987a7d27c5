"""Folders of data the wheel installs as packages without code (the shipped checkpoints, the packaged engines).

Such a folder has no ``__init__.py``, so its package is a namespace package and its folders are the spec's search
locations: the import system finds them in an editable install (the repository's folder itself) and in a wheel (a
copy in site-packages) alike, wherever the command runs. (``importlib.resources.files()`` refuses namespace
packages in Python 3.11 editable installs, whose search path also holds a placeholder entry that is no folder.)
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def package_folders(package: str, folder: str) -> list[Path]:
    """The folders of data package ``package``; where it is not installed (a checkout run with PYTHONPATH=.),
    the repository's ``folder`` when it exists."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        source = REPOSITORY / folder
        return [source] if source.is_dir() else []
    return [Path(entry) for entry in spec.submodule_search_locations if Path(entry).is_dir()]
