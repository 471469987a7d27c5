"""``python -m export.packaged ARTIFACT... -o engines/``: the device files of exported artifacts, small enough to ship
inside the wheel (package ``dyconvsr_engines``), so a torch-free install upscales and checks a model by name.

Each packaged artifact is an ordinary artifact folder with a subset of its source: the default fp32 ONNX file and the
variants :data:`PACKAGED` names (the INT8 ONNX file and the LiteRT files with their fixed-shape tiling graphs), the
artifact's tiling graphs, and the references of at most :data:`MAX_REFERENCE_PIXELS` input pixels (the fixed-shape
360x640 reference, 14-48 MB, stays in the exported artifact: there the whole LiteRT files are proven at their own
shape, here through their tiling graphs). The manifest keeps every parity record export measured; the files list is
hashed again. A variant converted from a file left out keeps that name under ``notes["packaged_without"]``.
Torch-free: it reads artifacts, it does not export.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

import click

from runtime.cli_options import NamedPath
from runtime.errors import UserError, cli_errors, writing
from runtime.manifest import Manifest, Variant, hash_files, read_manifest, verify_files
from runtime.packaged import SUFFIX

# Besides the default variant, what a device runs, as (kind, precision): the INT8 ONNX file (VNNI/AMX CPUs) and every
# LiteRT file (phones); None = any precision.
PACKAGED = (("onnx", "int8"), ("litert", None))


def is_packaged(variant: Variant, default: str) -> bool:
    return variant.file == default or any(variant.kind == kind and precision in (None, variant.precision)
                                          for kind, precision in PACKAGED)
MAX_REFERENCE_PIXELS = 64 * 64  # per image of a reference batch: the small references, not the 360x640 one


def packaged_manifest(manifest: Manifest) -> Manifest:
    """``manifest`` cut down to the packaged variants and the small references."""
    keep = [v for v in manifest.variants if is_packaged(v, manifest.default_variant)]
    kept = {v.file for v in keep}
    variants = []
    for variant in keep:
        if variant.source is not None and variant.source not in kept:
            notes = {**variant.notes, "packaged_without": variant.source}
            variant = dataclasses.replace(variant, source=None, notes=notes)
        variants.append(variant)
    references = [r for r in manifest.references if r.input_shape[2] * r.input_shape[3] <= MAX_REFERENCE_PIXELS]
    if not references:
        raise UserError(f"no reference of at most {MAX_REFERENCE_PIXELS} input pixels to package "
                        f"(has {', '.join('x'.join(map(str, r.input_shape)) for r in manifest.references)})")
    notes = {**manifest.notes, "packaged": {"variants_left_out": [v.file for v in manifest.variants
                                                                  if v.file not in kept],
                                            "references_left_out": len(manifest.references) - len(references)}}
    return dataclasses.replace(manifest, variants=variants, references=references, notes=notes,
                               checkpoint=Path(manifest.checkpoint).name, files={})


def package_artifact(source: Path, target: Path) -> Manifest:
    """Write the packaged subset of the artifact ``source`` as ``target`` (replaced whole, never half-written)."""
    manifest = read_manifest(source)
    problems = verify_files(source, manifest)
    if problems:
        raise UserError(f"{source}: {problems[0]} (re-export it before packaging)")
    packaged = packaged_manifest(manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as scratch:
        staging = Path(scratch) / target.name
        for _, rel in packaged.paths():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, staging / rel)
        for variant in packaged.variants:
            for rel in variant.engine_files()[1:]:
                shutil.copy2(source / rel, staging / rel)
        packaged.files = hash_files(staging)
        packaged.write(staging)
        read_manifest(staging)  # what was written is a valid artifact
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return packaged


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("artifacts", nargs=-1, required=True, type=NamedPath(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "out_dir", type=NamedPath(file_okay=False, path_type=Path), default=Path("engines"),
              show_default=True, help="Folder of the packaged artifacts (the checkout's engines/ is what the wheel "
                                      "installs as dyconvsr_engines): OUT/<name>.artifact per ARTIFACT folder <name>.")
@cli_errors
def main(artifacts: tuple[Path, ...], out_dir: Path) -> None:
    """Package the device files of each exported ARTIFACT (e.g. artifacts/dyconvsr_x2) for the wheel: the default
    ONNX file, the INT8 ONNX and LiteRT files, the tiling graphs and the small references (`make engines`)."""
    for source in artifacts:
        target = out_dir / f"{source.name}{SUFFIX}"
        with writing(target, "packaged artifact"):
            packaged = package_artifact(source, target)
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        print(f"{target}: {len(packaged.variants)} variants, {len(packaged.references)} references, "
              f"{size / 1e6:.2f} MB", file=sys.stdout)


if __name__ == "__main__":
    main(prog_name="python -m export.packaged")
