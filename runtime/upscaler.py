"""The Python API behind ``python -m runtime.infer``: ``Upscaler(artifact).upscale(pil_image)``.

An :class:`Upscaler` opens an artifact folder (engine chosen by its manifest, or the variant you
name) or a bare engine file, keeps the engine loaded across images, and upscales images of any
size: padded to what the network needs and cropped back to exactly ``scale`` x the input, and
tiled with whole-image attention statistics (:mod:`runtime.tiling`) above the tile budget, so
memory is bounded by the tile size while the result equals an untiled run.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from .catalogue import seam_tolerance
from .engine_choice import resolve_engine
from .errors import UserError
from .fixed_tiling import edge_region, run_fixed_tiles
from .images import Picture, luma, picture_from_pil, picture_to_pil
from .manifest import verify_used
from .runners import Runner, RunnerConfig, backend_for, make_runner
from .runners.openvino import hinted_precision, with_openvino_hint
from .runners.plan_origin import PlanOrigin
from .tiling import (
    PooledHook,
    Tile,
    TileReader,
    TileWriter,
    check_upscaled,
    pad_to_align,
    plan_tiles,
    probe_seams,
    run_tiles,
)

# LR pixels per tile side. About 200 MB of activations for DyConvSR x2 at 512; 0 disables tiling.
DEFAULT_TILE = 512
# For video frames when --tile is not given: 960x540 (-> 1080p at x2) runs whole on the chosen engine;
# larger frames are tiled seamlessly.
VIDEO_TILE = 1024


def tile_for(requested: int | None, video: bool) -> int:
    """The tile budget of a run: ``requested`` (--tile), else the default for images or video frames."""
    return requested if requested is not None else VIDEO_TILE if video else DEFAULT_TILE


class Upscaler:
    """Upscale PIL images or arrays with one engine; use as a context manager or call ``close()``.

    ``tile``: largest LR tile side (0 = never tile); ``batch``: tiles per engine call;
    ``min_size``: refuse images with a side below this (the networks accept 1x1 and up);
    ``verify``: first compare the sha256 of every file the engine may read (engine, weights, tiling
    graphs) with the artifact's manifest, raising :class:`UserError` on any difference.
    Every output is checked to be finite and exactly ``scale`` x its input, or that image fails.
    """

    def __init__(
        self,
        artifact: str | Path,
        *,
        variant: str | None = None,
        config: RunnerConfig = RunnerConfig(),
        tile: int = DEFAULT_TILE,
        batch: int = 1,
        min_size: int = 1,
        progress: bool = False,
        verify: bool = False,
    ) -> None:
        if tile < 0 or batch < 1 or min_size < 1:
            raise UserError(f"need tile >= 0, batch >= 1, min_size >= 1; "
                            f"got tile={tile}, batch={batch}, min_size={min_size}")
        self.choice = resolve_engine(artifact, variant)
        if verify:
            if self.choice.manifest is None or self.choice.folder is None:
                raise UserError(f"{artifact}: verify needs an artifact folder; "
                                "a bare engine has no manifest to verify against")
            verify_used(self.choice.folder, self.choice.manifest, self.choice.used_files())
        self.config = config
        self.tile, self.batch, self.min_size, self.progress = tile, batch, min_size, progress
        self.backend = backend_for(self.choice.engine, config)
        manifest = self.choice.manifest
        self.tiling = self.choice.tiling
        self.fixed_tiling = self.tiling is not None and self.tiling.valid_input is not None
        self.align = self.tiling.align if self.tiling else 1
        self.border = self.tiling.border if self.tiling else "edge"  # how overhanging fixed tiles are filled
        self._engine: Runner | None = None
        self._tiling_runners: tuple[list[Runner], Runner] | None = None
        self._tiling_error: UserError | None = None  # a failed seam probe: every tiled image fails alike
        self._scale = manifest.scale if manifest else None

    # ---- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> Upscaler:
        _ = self.engine  # load now so configuration errors surface at once
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release every engine loaded (idempotent)."""
        runners = [self._engine] if self._engine else []
        if self._tiling_runners:
            runners += [*self._tiling_runners[0], self._tiling_runners[1]]
        self._engine, self._tiling_runners = None, None
        with contextlib.ExitStack() as stack:  # every runner is closed even if one close raises
            for runner in runners:
                stack.callback(runner.close)

    @property
    def engine(self) -> Runner:
        if self._engine is None:
            variant = self.choice.variant
            origin = PlanOrigin.from_notes(variant.notes) if variant else None
            # An artifact's variant on OpenVINO gets the catalogue's precision hint (f32 for fp32/int8).
            config = with_openvino_hint(self.config, variant.precision, self.backend) if variant else self.config
            with contextlib.ExitStack() as stack:
                runner = stack.enter_context(make_runner(self.choice.engine, config, origin))
                if len(runner.inputs) != 1 or len(runner.outputs) != 1:
                    raise UserError(f"{self.choice.engine}: an upscaling engine has one input and one output")
                stack.pop_all()
            self._engine = runner
        return self._engine

    @property
    def scale(self) -> int:
        if self._scale is None:  # bare engine: measure it
            probe = self._fixed_shape() or (16, 16)
            out = self.engine.infer(np.zeros((1, 3, *probe), dtype=self.engine.inputs[0].dtype))
            scale = out.shape[-1] // probe[1]
            if out.shape[-2:] != (probe[0] * scale, probe[1] * scale) or scale < 1:
                raise UserError(f"{self.choice.engine}: output {out.shape} is not an integer upscale of {probe}")
            self._scale = scale
        return self._scale

    @property
    def description(self) -> str:
        return f"{self.choice.engine.name} on {self.engine.description}"

    @property
    def tiling_description(self) -> str:
        """Where the tiling graphs run (they load on first use)."""
        if self.tiling is None:
            return "no tiling graphs"
        return f"{self.tiling.main} on {self._tiling()[1].description}"

    # ---- images -------------------------------------------------------------------------
    def upscale(self, image: Image.Image) -> Image.Image:
        """Any PIL image -> the upscaled PIL image (alpha upscaled and kept, grayscale kept)."""
        return picture_to_pil(self.upscale_picture(picture_from_pil(image)))

    def upscale_picture(self, picture: Picture) -> Picture:
        rgb = self.upscale_array(picture.rgb, gray=picture.gray)
        alpha = None
        if picture.alpha is not None:
            # Alpha is a mask, not a photo: a bicubic resize keeps edges without hallucinating detail.
            height, width = rgb.shape[:2]
            alpha = np.asarray(Image.fromarray(picture.alpha).resize((width, height), Image.Resampling.BICUBIC))
        return Picture(rgb, alpha, picture.gray, picture.source_mode, picture.icc_profile)

    def upscale_array(self, array: np.ndarray, *, gray: bool = False) -> np.ndarray:
        """HxWx3 uint8/uint16 (full range) or float32 in [0, 1] -> (s*H)x(s*W)x3 of the same dtype.

        Float output is the engine's, unclipped; integer output is clipped and rounded.
        ``gray`` returns one channel (ITU-R 601 luma of the output), HxWx1.
        """
        if array.ndim != 3 or array.shape[2] != 3:
            raise UserError(f"image array must be HxWx3 RGB; got shape {array.shape}")
        if array.dtype not in (np.uint8, np.uint16, np.float32):
            raise UserError(f"image array must be uint8, uint16 or float32 in [0, 1]; got {array.dtype}")
        height, width = array.shape[:2]
        self._check_min_size(height, width, "image")
        scale = self.scale
        peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
        source = pad_to_align(array, self.align)
        out = np.zeros((height * scale, width * scale, 1 if gray else 3), dtype=array.dtype)

        def read(tiles: list[Tile]) -> np.ndarray:
            regions = np.stack([edge_region(source, t, border=self.border) for t in tiles]).astype(np.float32)
            if peak != 1.0:
                regions *= np.float32(1.0 / peak)
            return np.ascontiguousarray(regions.transpose(0, 3, 1, 2))

        def write(tile: Tile, core: np.ndarray) -> None:
            y, x = tile.cy0 * scale, tile.cx0 * scale
            core = core[:, : out.shape[0] - y, : out.shape[1] - x].transpose(1, 2, 0).astype(np.float32)
            if gray:
                core = luma(core)[..., None]
            if peak != 1.0:
                core = np.clip(core, 0.0, 1.0) * np.float32(peak) + np.float32(0.5)
            out[y : y + core.shape[0], x : x + core.shape[1]] = core

        self._run_regions(read, write, source.shape[0], source.shape[1], (height, width))
        return out

    def upscale_planar(self, planes: np.ndarray, *, adjust_pooled: PooledHook | None = None) -> np.ndarray:
        """float32 3xHxW RGB planes in [0, 1] -> float32 3x(s*H)x(s*W), the engine's output unclipped.

        The video path's layout (runtime/video/decode.py's frames): no HWC copies, and an untiled
        frame's output is the engine's own array; tiled and fixed-shape tiled as images are.
        ``adjust_pooled(i, pooled)`` replaces dynamic layer i's whole-image statistics (temporal
        smoothing); it needs the artifact's tiling graphs, which then run the frame (as one tile
        when it fits --tile).
        """
        if planes.ndim != 3 or planes.shape[0] != 3 or planes.dtype != np.float32:
            raise UserError(f"planes must be float32 3xHxW; got {planes.dtype} {planes.shape}")
        _, height, width = planes.shape
        self._check_min_size(height, width, "frame")
        scale = self.scale
        source = pad_to_align(planes, self.align, channels_first=True)
        padded_h, padded_w = source.shape[1:]
        if adjust_pooled is None and self.plan(padded_h, padded_w) is None:
            # Whole on the engine: the output is the engine's own array, cropped (no copy).
            return self.run_whole(source[None])[0, :, : height * scale, : width * scale]
        out = np.zeros((3, height * scale, width * scale), dtype=np.float32)

        def read(group: list[Tile]) -> np.ndarray:
            regions = [edge_region(source, t, channels_first=True, border=self.border) for t in group]
            return np.ascontiguousarray(np.stack(regions))

        def write(tile: Tile, core: np.ndarray) -> None:
            y, x = tile.cy0 * scale, tile.cx0 * scale
            core = core[:, : out.shape[1] - y, : out.shape[2] - x]
            out[:, y : y + core.shape[1], x : x + core.shape[2]] = core

        self._run_regions(read, write, padded_h, padded_w, (height, width), adjust_pooled, "frame")
        return out

    # ---- internals ----------------------------------------------------------------------
    def _check_min_size(self, height: int, width: int, what: str) -> None:
        if height < self.min_size or width < self.min_size:
            raise UserError(f"{what} is {width}x{height}; this model needs at least {self.min_size}x{self.min_size}")

    def _run_regions(self, read: TileReader, write: TileWriter, height: int, width: int, covered: tuple[int, int],
                     adjust: PooledHook | None = None, what: str = "picture") -> None:
        """The one run of an image, whatever its layout (HxWxC images, the video path's 3xHxW frames), given as
        a tile reader and writer: whole on the engine, tiled through the tiling graphs with whole-image
        attention statistics (runtime/tiling.py), or tiled through fixed-shape graphs with a ``valid`` mask
        (runtime/fixed_tiling.py, the LiteRT files). The image is align-padded ``height`` x ``width``; each
        core ``write`` gets is CHW, up to ``scale`` x its tile's core; every LR pixel of the ``covered``
        (H, W) top-left region must get output, or UserError. ``adjust`` (temporal smoothing) replaces the
        statistics on either tiled path; with it, an image that would run whole runs as one tile."""
        if adjust is not None and self.tiling is None:
            raise UserError("smoothing the attention statistics needs the artifact's tiling graphs "
                            "(pass the artifact folder, not a bare engine)")
        scale = self.scale
        seen = np.zeros(covered, dtype=bool)  # LR pixels whose output has been written

        def tracked(tile: Tile, core: np.ndarray) -> None:
            write(tile, core)
            rows, cols = core.shape[1] // scale, core.shape[2] // scale
            seen[tile.cy0 : tile.cy0 + rows, tile.cx0 : tile.cx0 + cols] = True

        tiles = self.plan(height, width)
        whole = Tile(0, height, 0, width, 0, height, 0, width)
        if tiles is None and adjust is None:
            tracked(whole, self.run_whole(read([whole]))[0])
        else:
            self.run_tiled(read, tracked, tiles or [whole], height, width, adjust)
        if not seen.all():
            raise UserError(f"{np.count_nonzero(~seen)} of {seen.size} pixels got no engine output: "
                            f"refusing a partial {what}")

    def _fixed_shape(self) -> tuple[int, int] | None:
        dims = self.engine.inputs[0].shape[-2:]
        return (dims[0], dims[1]) if None not in dims else None

    def _largest_input(self) -> tuple[int, int] | None:
        """(H, W) bound of one engine call: a fixed shape or a TensorRT profile's max."""
        return self._fixed_shape() or self.engine.max_spatial

    def plan(self, height: int, width: int) -> list[Tile] | None:
        """None when the engine takes the image whole; else the tiles to run."""
        largest = self._largest_input()
        fits_budget = self.tile == 0 or (height <= self.tile and width <= self.tile)
        fits_engine = largest is None or (height <= largest[0] and width <= largest[1])
        # Padding an image up to a fixed-shape engine would let the padding into the attention's
        # global pool; with tiling graphs at hand the exact answer is one tiled run instead.
        fixed = self._fixed_shape()
        exact_fit = fixed is None or (height, width) == fixed
        if fits_budget and fits_engine and (exact_fit or self.tiling is None):
            return None
        if self.fixed_tiling:  # any size: fixed-shape tiles with whole-image attention (runtime/fixed_tiling.py)
            return [] if (height, width) != fixed else None
        if self.tiling is None:
            limit = (f"the engine's largest input {largest[1]}x{largest[0]}" if largest and not fits_engine
                     else f"--tile {self.tile}")
            raise UserError(
                f"image {width}x{height} exceeds {limit}, and seamless tiling needs the artifact's tiling graphs "
                f"(pass the artifact folder{'' if not fits_engine else ', or --tile 0 to run it whole'})"
            )
        return plan_tiles(height, width, self.tile or max(height, width), self.tiling.halo, self.tiling.align)

    def run_whole(self, batch: np.ndarray) -> np.ndarray:
        fixed = self._fixed_shape()
        height, width = batch.shape[-2:]
        if fixed and (height, width) != fixed:
            # A bare fixed-shape engine: replicate-pad up to its shape and crop the output back
            # (approximate for dynamic convs: the padding takes part in the global pool).
            batch = np.pad(batch, ((0, 0), (0, 0), (0, fixed[0] - height), (0, fixed[1] - width)), mode="edge")
        out = self.engine.infer(batch.astype(self.engine.inputs[0].dtype, copy=False))
        check_upscaled(out, batch.shape, self.scale, self.choice.engine.name)
        return out[..., : height * self.scale, : width * self.scale]

    def run_tiled(self, read: TileReader, write: TileWriter, tiles: list[Tile], height: int, width: int,
                  adjust: PooledHook | None = None) -> None:
        """The tiled run of an align-padded ``height`` x ``width`` image: ``tiles`` through the tiling
        graphs, or the fixed-shape tiling (which plans its own tiles)."""
        assert self.tiling is not None
        stats, main = self._tiling()
        batch = self.batch if main.inputs[0].shape[0] is None else 1
        bar = None
        if self.progress and len(tiles) >= 16:
            from .progress import progress_bar

            bar = progress_bar(total=len(tiles) * (len(stats) + 1), unit="tile", leave=False, desc="tiles")
        step = bar.update if bar else (lambda n: None)
        try:
            if self.fixed_tiling:
                run_fixed_tiles(read, write, height, width, self.tiling, stats, main, self.scale, step, adjust)
            else:
                run_tiles(read, write, tiles, self.tiling, stats, main, self.scale, batch, step, adjust)
        finally:
            if bar:
                bar.close()

    def _tiling(self) -> tuple[list[Runner], Runner]:
        if self._tiling_error is not None:
            raise self._tiling_error
        if self._tiling_runners is None:
            assert self.tiling is not None and self.choice.folder is not None
            # Tiling graphs are ONNX: a TensorRT user runs them through ONNX Runtime (TensorRT/CUDA EPs).
            config = (replace(self.config, backend="onnxruntime") if self.backend == "tensorrt"
                      else with_openvino_hint(self.config, "fp32", self.backend))  # the tiling graphs are fp32
            folder = self.choice.folder
            # Whichever graph fails to load or probe, the ones already open are closed on the way out.
            with contextlib.ExitStack() as stack:
                stats = [stack.enter_context(make_runner(folder / name, config)) for name in self.tiling.stats]
                main = stack.enter_context(make_runner(folder / self.tiling.main, config))
                try:
                    if not self.fixed_tiling:  # fixed-shape graphs were certified at export (tiling.parity)
                        probe_seams(self.tiling, stats, main, self.scale, self._seam_tolerance(main))
                except UserError as exc:
                    self._tiling_error = exc
                    raise
                stack.pop_all()
            self._tiling_runners = (stats, main)
        return self._tiling_runners

    def _seam_tolerance(self, main: Runner) -> float:
        return seam_tolerance(main.computed_in or hinted_precision(self.config))
