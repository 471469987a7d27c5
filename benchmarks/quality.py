"""Quality beside speed: Y-PSNR/SSIM of every model and engine variant on held-out images.

The protocol is train/evaluate.py's (modcrop, MATLAB bicubic LR, uint8 SR, border = scale); the
engines are the benchmark's own, so "openvino bf16 model.onnx" here is the engine timed there.
Each engine's float output is also compared with the PyTorch output (PSNR, [0, 1] range).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from runtime.bench.engines import Engine
from runtime.bench.schema import QualityRow
from runtime.metrics import psnr, score_pair
from train.evaluate import Benchmark, bicubic_sr, make_lr, modcrop

from .engines import PillowBicubic
from .models import BenchModel

MATLAB_BICUBIC = "bicubic (MATLAB imresize)"


@dataclass
class QualityResult:
    rows: list[QualityRow] = field(default_factory=list)
    # label -> image name -> uint8 SR image, kept for the visual comparison figure
    images: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    hr: dict[str, np.ndarray] = field(default_factory=dict)
    trained: bool = True  # False: the model was freshly initialised (no checkpoint in weights/)


def _to_float(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def _to_uint8(batch: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(batch[0].transpose(1, 2, 0).astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)


def evaluate_engines(
    model: BenchModel,
    engines: Sequence[Engine],
    reference_label: str,
    bench: Benchmark,
    keep_images: int = 3,
    quiet: bool = False,
) -> QualityResult:
    """Score each engine (the reference among them) and the two bicubic baselines on ``bench``."""
    scale = model.scale
    result = QualityResult(trained=model.trained)
    pairs = [(name, modcrop(hr, scale)) for name, hr in bench.images]
    lrs = {name: make_lr(hr, scale) for name, hr in pairs}
    result.hr = {name: hr for name, hr in pairs[:keep_images]}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    everything = [*engines, PillowBicubic(scale)]
    for engine in tqdm(everything, desc=f"quality {model.key}", unit="engine", leave=False, disable=quiet):
        if any(engine.supports(1, *lrs[name].shape[:2]) for name, _ in pairs):
            continue  # fixed-shape engines cannot take whole images
        engine.load()
        try:
            outputs[engine.info.label] = {name: engine.to_array(engine.run(engine.prepare(_to_float(lrs[name]))))
                                          for name, _ in pairs}
        finally:
            engine.close()
    reference = outputs.get(reference_label)
    for engine in everything:
        label = engine.info.label
        if label not in outputs:
            continue
        sr = {name: _to_uint8(out) for name, out in outputs[label].items()}
        vs_ref = None
        if reference is not None and engine.info.backend != "pillow":
            vs_ref = min(psnr(outputs[label][n], reference[n], data_range=1.0) for n, _ in pairs)
        result.rows.append(_row(model, label, engine.info.backend, engine.info.variant, engine.info.precision,
                                bench.name, pairs, sr, vs_ref, engine.info.backend != "pillow"))
        result.images[label] = {name: sr[name] for name in result.hr}
    matlab = {name: bicubic_sr(lrs[name], scale) for name, _ in pairs}
    result.rows.append(_row(model, MATLAB_BICUBIC, "numpy", "imresize", "float64", bench.name, pairs, matlab, None,
                            False))
    result.images[MATLAB_BICUBIC] = {name: matlab[name] for name in result.hr}
    return result


def _row(model: BenchModel, label: str, backend: str, variant: str, precision: str, dataset: str,
         pairs: list[tuple[str, np.ndarray]], sr: dict[str, np.ndarray], vs_ref: float | None,
         network: bool) -> QualityRow:
    scores = {name: score_pair(sr[name], hr, border=model.scale) for name, hr in pairs}
    finite = vs_ref if vs_ref is None or np.isfinite(vs_ref) else None
    return QualityRow(
        model=model.name, scale=model.scale, label=label, backend=backend, variant=variant, precision=precision,
        dataset=dataset, images=len(pairs),
        psnr_y=float(np.mean([s.psnr_y for s in scores.values()])),
        ssim_y=float(np.mean([s.ssim_y for s in scores.values()])),
        psnr_rgb=float(np.mean([s.psnr_rgb for s in scores.values()])),
        params=sum(p.numel() for p in model.model.parameters()) if network else 0,
        psnr_vs_reference_db=finite,
        per_image={name: {"psnr_y": s.psnr_y, "ssim_y": s.ssim_y} for name, s in scores.items()},
    )
