"""Engines that need torch or Pillow: PyTorch eager (per dynamic-conv formulation), torch.compile,
and the bicubic baseline. Artifact engines (ONNX Runtime, OpenVINO, GPU) come from runtime.bench."""
from __future__ import annotations

import copy
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from runtime.bench.engines import Engine, EngineInfo, RunnerEngine
from runtime.runners import RunnerConfig
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
        images = np.clip(batch.transpose(0, 2, 3, 1) * 255 + 0.5, 0, 255).astype(np.uint8)
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


def nncf_available() -> bool:
    return importlib.util.find_spec("nncf") is not None and importlib.util.find_spec("openvino") is not None


class OpenVinoNncfEngine(RunnerEngine):
    """An fp32 ONNX variant quantised to INT8 by NNCF at load time (export/openvino_int8.py's recipe),
    run by the runtime's OpenVINO runner from a temporary IR. Its fp32 partner is
    ``openvino f32 <same file>``, so the reduced-precision target pairs them."""

    def __init__(self, source: Path, strategy: str | None, threads: int) -> None:
        info = EngineInfo(f"openvino int8 (NNCF) {source.name}", "openvino", source.name, "int8", strategy, "cpu",
                          notes={"quantised_by": "nncf (export/openvino_int8.py)"})
        config = RunnerConfig(backend="openvino", provider="CPU", threads=threads, strict=True, precision="f32")
        super().__init__(info, source, config)
        self.source = source
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def load(self) -> None:
        from export.openvino_int8 import to_openvino_int8

        self._folder = tempfile.TemporaryDirectory(prefix="nncf-int8-")
        self.path = Path(self._folder.name) / "model.int8.xml"
        to_openvino_int8(self.source, self.path)
        super().load()

    def close(self) -> None:
        super().close()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
