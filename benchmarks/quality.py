"""Quality beside speed: Y-PSNR/SSIM of every model and engine variant on held-out images.

The protocol is runtime/quality.py's (modcrop, MATLAB bicubic LR, uint8 SR, border = scale); the
engines are the benchmark's own, so "openvino bf16 model.onnx" here is the engine timed there.
Each engine's float output is also compared with the PyTorch output (PSNR, [0, 1] range).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.bench.engines import Engine, RunnerEngine
from runtime.bench.rows import bicubic_info, quality_row
from runtime.bench.schema import QualityRow
from runtime.images import to_uint8
from runtime.metrics import psnr
from runtime.progress import progress_bar
from runtime.quality import (
    MATLAB_BICUBIC,
    STANDARD,
    Protocol,
    bicubic_sr,
    network_input,
    protocol_images,
    score_set,
)
from runtime.upscaler import Upscaler
from train.evaluate import Benchmark

from .engines import PillowBicubic
from .models import BenchModel


@dataclass
class QualityResult:
    rows: list[QualityRow] = field(default_factory=list)
    # label -> image name -> uint8 SR image, kept for the visual comparison figure
    images: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    hr: dict[str, np.ndarray] = field(default_factory=dict)
    trained: bool = True  # False: the model was freshly initialised (no checkpoint in weights/)


def _to_batch(lr: np.ndarray) -> np.ndarray:
    return network_input(lr).transpose(2, 0, 1)[None]


def _to_image(batch: np.ndarray) -> np.ndarray:
    return to_uint8(batch[0].transpose(1, 2, 0))


def evaluate_engines(
    model: BenchModel,
    engines: Sequence[Engine],
    reference_label: str,
    bench: Benchmark,
    keep_images: int = 3,
    quiet: bool = False,
    protocol: Protocol = STANDARD,
) -> QualityResult:
    """Score each engine (the reference among them) and the two bicubic baselines on ``bench`` by ``protocol``."""
    scale = model.scale
    result = QualityResult(trained=model.trained)
    images = protocol_images(bench.images, scale, protocol)
    result.hr = {image.name: image.hr for image in images[:keep_images]}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    everything = [*engines, PillowBicubic(scale)]
    for engine in progress_bar(everything, quiet=quiet, desc=f"quality {model.key}", unit="engine", leave=False):
        if any(engine.supports(1, *image.lr.shape[:2]) for image in images):
            if isinstance(engine, RunnerEngine) and engine.variant is not None and engine.variant.tiling is not None:
                # A fixed-shape file with its own tiling graphs: whole images through its fixed-size tiles.
                with Upscaler(engine.path, config=engine.config) as upscaler:
                    outputs[engine.info.label] = {
                        image.name: upscaler.upscale_array(network_input(image.lr)).transpose(2, 0, 1)[None]
                        for image in images}
            continue  # other fixed-shape engines cannot take whole images
        engine.load()
        try:
            outputs[engine.info.label] = {image.name: engine.to_array(engine.run(engine.prepare(_to_batch(image.lr))))
                                          for image in images}
        finally:
            engine.close()
    reference = outputs.get(reference_label)
    params = sum(p.numel() for p in model.model.parameters())
    for engine in everything:
        label = engine.info.label
        if label not in outputs:
            continue
        sr = {name: _to_image(out) for name, out in outputs[label].items()}
        network = engine.info.backend != "pillow"
        vs_ref = None
        if reference is not None and network:
            vs_ref = min(psnr(outputs[label][image.name], reference[image.name], data_range=1.0) for image in images)
        scores = score_set(bench.name, images, scale, lambda image, sr=sr: sr[image.name], protocol=protocol)
        result.rows.append(quality_row(model.name, engine.info, scores, params if network else 0, vs_ref))
        result.images[label] = {name: sr[name] for name in result.hr}
    matlab = {image.name: bicubic_sr(image.lr, scale) for image in images}
    scores = score_set(bench.name, images, scale, lambda image: matlab[image.name], protocol=protocol)
    result.rows.append(quality_row(model.name, bicubic_info(), scores, 0))
    result.images[MATLAB_BICUBIC] = {name: matlab[name] for name in result.hr}
    return result
