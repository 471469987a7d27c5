"""What an ``ARTIFACT_OR_ENGINE`` argument names: an artifact folder (its default or a named variant),
a variant file inside one, or a bare engine file; every file the choice may read is confined to
the artifact folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .manifest import MANIFEST_NAME, Manifest, Tiling, Variant, artifact_file, read_manifest


@dataclass(frozen=True)
class EngineChoice:
    """What an ``ARTIFACT_OR_ENGINE`` argument resolved to."""

    engine: Path
    folder: Path | None
    manifest: Manifest | None
    variant: Variant | None

    def used_files(self) -> list[str]:
        """The artifact files this engine choice may read: the engine, OpenVINO weights, tiling graphs."""
        if self.manifest is None or self.variant is None:
            return []
        used = self.variant.engine_files()
        tiling = self.tiling
        if tiling is not None:
            used += [*tiling.stats, tiling.main]
        return used

    @property
    def tiling(self) -> Tiling | None:
        """The tiling graphs for this engine: a fixed-shape variant's own, else the artifact's."""
        if self.variant is not None and self.variant.tiling is not None:
            return self.variant.tiling
        return self.manifest.tiling if self.manifest else None


def resolve_engine(artifact: str | Path, variant: str | None = None) -> EngineChoice:
    """An artifact folder (default or named variant), a variant file inside one, or a bare engine.

    Every artifact file the choice may read is confined to the folder (:func:`artifact_file`)."""
    path = Path(artifact)
    if path.is_dir():
        manifest = read_manifest(path)
        chosen = manifest.variant(variant) if variant else manifest.default
        return _confined(EngineChoice(path / chosen.file, path, manifest, chosen))
    if not path.is_file():
        raise UserError(f"{artifact}: no such artifact folder or engine file")
    if variant:
        raise UserError("--variant selects a file inside an artifact folder; give the folder, not a file")
    for folder in (path.parent, path.parent.parent):
        if (folder / MANIFEST_NAME).is_file():
            manifest = read_manifest(folder)
            # Lexical: a variant symlinked out of its folder is refused by _confined, not taken for a bare engine.
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(folder)).as_posix()
            listed = next((v for v in manifest.variants if v.file == rel), None)
            if listed is not None:
                return _confined(EngineChoice(path, folder, manifest, listed))
    return EngineChoice(path, None, None, None)


def _confined(choice: EngineChoice) -> EngineChoice:
    assert choice.folder is not None
    for rel in choice.used_files():
        artifact_file(choice.folder, rel)
    return choice
