"""Engines that need torch or Pillow: PyTorch eager (per dynamic-conv formulation), torch.compile,
and the bicubic baseline. Artifact engines (ONNX Runtime, OpenVINO, GPU) come from runtime.bench."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from runtime.bench.engines import Engine, EngineInfo
from runtime.images import to_uint8
from train.models import dynamic_convs, set_formulation

EAGER = "pytorch"
COMPILED = "torch.compile"
PILLOW = "pillow"


def formulations_of(model: nn.Module) -> list[str]:
    """The training formulation first (the model 'as trained'), then the others; [] for static nets."""
    layers = dynamic_convs(model)
    if not layers:
        return []
    trained = layers[0].formulation
    from train.models import FORMULATIONS

    return [trained, *(f for f in FORMULATIONS if f != trained)]


def eager_label(formulation: str | None) -> str:
    return f"{EAGER} eager {formulation}" if formulation else f"{EAGER} eager"


class TorchEngine(Engine):
    """A module run on CPU tensors under ``torch.inference_mode``; optionally torch.compile'd."""

    def __init__(self, model: nn.Module, formulation: str | None, threads: int, compiled: bool = False) -> None:
        label = eager_label(formulation) if not compiled else f"{COMPILED} {formulation or 'static'}"
        super().__init__(EngineInfo(label, COMPILED if compiled else EAGER, formulation or "static",
                                    "fp32", formulation, "cpu"))
        self.source, self.formulation, self.threads, self.compiled = model, formulation, threads, compiled
        self.module: Any = None

    def load(self) -> None:
        module = copy.deepcopy(self.source).eval()
        if self.formulation:
            set_formulation(module, self.formulation)
        if self.threads:
            torch.set_num_threads(self.threads)
        # Compiled once per input shape (dynamic=False): the first run pays the compilation,
        # which the report shows as first_run_ms.
        self.module = torch.compile(module, dynamic=False) if self.compiled else module

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))

    def run(self, feed: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(feed)

    def to_array(self, output: torch.Tensor) -> np.ndarray:
        return output.numpy()

    def close(self) -> None:
        self.module = None

    @property
    def description(self) -> str:
        return f"torch {torch.__version__} CPU, {torch.get_num_threads()} threads"


class PillowBicubic(Engine):
    """Pillow's bicubic resize of the uint8 RGB image, the baseline every SR network must beat.

    Conversion to and from PIL images is untimed; only ``Image.resize`` is.
    """

    def __init__(self, scale: int) -> None:
        super().__init__(EngineInfo("pillow bicubic", PILLOW, "bicubic", "uint8", None, "cpu"))
        self.scale = scale

    def load(self) -> None:
        return None

    def prepare(self, batch: np.ndarray) -> list[Image.Image]:
        images = to_uint8(batch.transpose(0, 2, 3, 1))
        return [Image.fromarray(image) for image in images]

    def run(self, feed: list[Image.Image]) -> list[Image.Image]:
        return [image.resize((image.width * self.scale, image.height * self.scale), Image.Resampling.BICUBIC)
                for image in feed]

    def to_array(self, output: list[Image.Image]) -> np.ndarray:
        return np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image in output]).transpose(0, 3, 1, 2)

    @property
    def description(self) -> str:
        import PIL

        return f"Pillow {PIL.__version__} (single thread)"


def bicubic_macs(batch: int, height: int, width: int, scale: int) -> int:
    """Separable 4-tap bicubic: a horizontal pass over (H, sW) then a vertical one over (sH, sW)."""
    return batch * 3 * 4 * (height * width * scale + height * width * scale * scale)
