"""Which image files a command line names: files, folders (recursively) and glob patterns."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from .images import IMAGE_SUFFIXES, find_images

# Folders and globs pick these; a file named explicitly is always tried (and refused if no image).
INPUT_SUFFIXES = (*IMAGE_SUFFIXES, ".gif", ".tga", ".ico", ".jp2")


@dataclass(frozen=True)
class InputFile:
    path: Path
    # Where its output goes below the output folder (a folder input keeps its sub-folders).
    relative: Path


def expand_inputs(arguments: list[str]) -> tuple[list[InputFile], list[str]]:
    """(files in command-line order without duplicates, one problem line per argument matching nothing)."""
    found: list[InputFile] = []
    problems: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            images = find_images(path, INPUT_SUFFIXES)
            found += [InputFile(p, p.relative_to(path)) for p in images]
            if not images:
                problems.append(f"{argument}: folder holds no image files ({', '.join(INPUT_SUFFIXES)})")
        elif path.exists():
            found.append(InputFile(path, Path(path.name)))
        elif glob.has_magic(argument):
            matches = sorted(Path(m) for m in glob.glob(argument, recursive=True))
            files = [m for m in matches if m.is_file()]
            for folder in (m for m in matches if m.is_dir()):
                files += find_images(folder, INPUT_SUFFIXES)
            found += [InputFile(p, Path(p.name)) for p in files]
            if not files:
                problems.append(f"{argument}: pattern matches no files")
        else:
            problems.append(f"{argument}: no such file or folder")
    unique: dict[Path, InputFile] = {}
    for item in found:
        unique.setdefault(item.path.resolve(), item)
    return list(unique.values()), problems


def output_path(out_dir: Path, item: InputFile, scale: int, suffix: str) -> Path:
    """``photo.jpg`` -> ``OUT_DIR/photo_x2.png`` (sub-folders of a folder input kept)."""
    return out_dir / item.relative.parent / f"{item.relative.stem}_x{scale}.{suffix}"
