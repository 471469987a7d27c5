"""Where each input's output goes and how it is written: shared by ``runtime.infer`` (one process) and
``runtime.batch`` (a Ray cluster), so both put the same pixels at the same path under the same rules.

:class:`OutputPlan` decides a target before any engine runs (no two inputs onto one output, never onto an
input, no existing file replaced without --overwrite); :func:`write_output` upscales one input and
publishes its output atomically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError, display, output_exists, writing
from .files import remove_stale_temps
from .images import check_savable, read_picture, save_picture
from .inputs import InputFile
from .naming import Naming, output_size, rescale
from .upscaler import Upscaler
from .video.cli import VideoSettings
from .video.formats import is_video_path


class OwnInputs:
    """A run's input files, to refuse writing an output onto one of them (which would also make a later
    input read the clobbered file)."""

    def __init__(self, files: list[InputFile]) -> None:
        self.paths = {os.path.realpath(f.path) for f in files} | {os.path.abspath(f.path) for f in files}
        self.ids: set[tuple[int, int]] = set()
        for f in files:
            try:
                stat = os.stat(f.path)
            except OSError:
                continue
            self.ids.add((stat.st_dev, stat.st_ino))

    def __contains__(self, target: Path) -> bool:
        if os.path.realpath(target) in self.paths or os.path.abspath(target) in self.paths:
            return True
        try:
            stat = os.stat(target)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) in self.ids


@dataclass
class OutputPlan:
    """The output of every input of one run; each method raises UserError (naming the reason) for an
    input it refuses."""

    out_dir: Path
    naming: Naming
    own_inputs: OwnInputs
    video: VideoSettings = field(default_factory=VideoSettings)
    claimed: dict[Path, Path] = field(default_factory=dict)
    swept: set[Path] = field(default_factory=set)

    def target(self, item: InputFile, scale: int) -> Path:
        """Where ``item``'s output goes: a file, or for a video written as frames a folder."""
        is_video = is_video_path(item.path)
        if is_video and self.naming.outscale is not None:
            raise UserError(f"-s/--outscale applies to images; a video is written at the network's scale x{scale}")
        image_suffix, _ = self.naming.format_for(item.path)
        suffix = (self.video.suffix or "frames") if is_video else image_suffix
        target = self.naming.output_path(self.out_dir, item, scale, suffix)
        target = target.with_suffix("") if is_video and not self.video.suffix else target  # a frames folder
        if target in self.claimed:
            raise UserError(f"output {display(target)} would also be written from "
                            f"{display(self.claimed[target])}; rename one input")
        self.claimed[target] = item.path
        if target in self.own_inputs:
            raise UserError(f"output {display(target)} is one of this run's inputs, and inputs are never "
                            "written over; choose another -o folder")
        return target

    def check_replaceable(self, item: InputFile, target: Path, overwrite: bool) -> None:
        """Refuse an existing ``target`` without ``overwrite``, and with it a frames folder holding anything this
        tool did not write there."""
        if os.path.lexists(target) and not overwrite:
            raise output_exists(target)
        if is_video_path(item.path) and not self.video.suffix and os.path.lexists(target):
            from .video.encode import foreign_entries

            foreign = foreign_entries(target)
            foreign += [n for n in os.listdir(target) if target / n in self.own_inputs] if not foreign else []
            if foreign:  # --overwrite replaces a frames folder this tool wrote, never one holding anything else
                raise UserError(f"{display(target)} holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} "
                                f"that are not frames this tool wrote, or are inputs (e.g. {display(foreign[0])}); "
                                "it is not replaced: move them away or choose another -o folder")

    def sweep(self, target: Path) -> None:
        """Remove the temp files that runs killed mid-write left beside ``target`` (once per folder)."""
        if target.parent not in self.swept:
            remove_stale_temps(target.parent)
            self.swept.add(target.parent)


def write_output(upscaler: Upscaler, item: InputFile, target: Path, naming: Naming, video: VideoSettings,
                 replace: bool, max_pixels: int | None, progress: bool = False) -> None:
    """Upscale ``item`` and publish its output as ``target`` atomically; with ``replace=False`` a file another
    process created meanwhile is never replaced (UserError)."""
    image_suffix, pil_format = naming.format_for(item.path)
    if is_video_path(item.path):
        video.write(upscaler, item.path, target, replace, image_suffix, pil_format, progress, max_pixels)
        return
    picture = read_picture(item.path, max_pixels)
    check_savable(picture, pil_format)
    upscaled = upscaler.upscale_picture(picture)
    if naming.outscale is not None:
        upscaled = rescale(upscaled, *output_size(*picture.rgb.shape[:2], naming.outscale))
    try:
        with writing(display(target), "output"):
            save_picture(upscaled, target, pil_format, replace=replace)
    except FileExistsError:
        raise output_exists(target, meanwhile=True) from None


def failure_reason(exc: Exception) -> str:
    """One line saying why an input failed: a UserError's message, else the exception's type and first line."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller --tile"
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
