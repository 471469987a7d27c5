"""Which image and video files a command line names: files, folders (recursively) and glob patterns."""
from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path

from .files import walk_tree
from .images import IMAGE_SUFFIXES, find_images
from .video.formats import VIDEO_SUFFIXES

# Folders and globs pick these images and videos; a file named explicitly is always tried (and
# refused if it is neither: by its suffix a video, else an image).
INPUT_SUFFIXES = (*IMAGE_SUFFIXES, ".gif", ".tga", ".ico", ".jp2", *VIDEO_SUFFIXES)


@dataclass(frozen=True)
class InputFile:
    path: Path
    # Where its output goes below the output folder (a folder input keeps its sub-folders).
    relative: Path


def expand_inputs(arguments: list[str]) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """(files in command-line order without duplicates, (argument as shown, why) per argument matching nothing)."""
    found: list[InputFile] = []
    problems: list[tuple[str, str]] = []
    for argument in arguments:
        path = Path(argument)
        if not argument.strip():  # Path("") is the current folder: never what an empty argument meant
            problems.append((repr(argument), "an empty argument is not a file, folder or pattern"))
        elif path.is_dir():
            images = find_images(path, INPUT_SUFFIXES)
            found += [InputFile(p, p.relative_to(path)) for p in images]
            if not images:
                problems.append((argument, f"folder holds no image or video files ({', '.join(INPUT_SUFFIXES)})"))
        elif path.exists():
            found.append(InputFile(path, Path(path.name)))
        elif glob.has_magic(argument):
            matches = expand_glob(argument)
            files = [m for m in matches if m.is_file()]
            for folder in (m for m in matches if m.is_dir()):
                files += find_images(folder, INPUT_SUFFIXES)
            found += [InputFile(p, Path(p.name)) for p in files]
            if not files:
                problems.append((argument, "pattern matches no files"))
        else:
            problems.append((argument, "no such file or folder"))
    unique: dict[str, InputFile] = {}
    for item in found:
        unique.setdefault(os.path.realpath(item.path), item)
    return list(unique.values()), problems


def expand_glob(pattern: str) -> list[Path]:
    """What ``glob.glob(pattern, recursive=True)`` matches, sorted, except that ``**`` never
    enters a symlinked folder (glob.glob does, and a link to a parent folder makes it run
    forever) nor the same real folder twice."""
    path = Path(pattern)
    current = [Path(path.anchor)] if path.anchor else [Path()]
    parts = path.parts[1:] if path.anchor else path.parts
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            walked = [(here, names) for folder in current if folder.is_dir()
                      for here, _, names in walk_tree(folder, hidden=False)]
            current = [here for here, _ in walked]
            if last:  # a trailing ** matches files too
                current += [here / name for here, names in walked for name in names]
        elif glob.has_magic(part):
            hidden = part.startswith(".")
            current = [folder / name for folder in current for name in _names(folder)
                       if fnmatch.fnmatch(name, part) and (hidden or not name.startswith("."))]
        else:
            current = [folder / part for folder in current]
    return sorted({p for p in current if os.path.lexists(p) and p != Path()})


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []
