"""Device runtime: runs exported engines without torch (numpy, pillow, click, onnxruntime).

``runtime.Upscaler(artifact).upscale(pil_image)`` is the Python API; ``python -m runtime.infer``
and ``python -m runtime.check`` are the commands. Heavy imports (onnxruntime, ...) happen on
first use, so ``import runtime.errors`` and friends stay cheap for train/ and export/.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Redundant aliases: explicit re-exports (``__all__`` is built from _LAZY at run time).
    from .check import CheckReport as CheckReport
    from .check import check_artifact as check_artifact
    from .runners import Runner as Runner
    from .runners import RunnerConfig as RunnerConfig
    from .runners import make_runner as make_runner
    from .upscaler import Upscaler as Upscaler

_LAZY = {
    "Upscaler": "upscaler",
    "RunnerConfig": "runners",
    "Runner": "runners",
    "make_runner": "runners",
    "check_artifact": "check",
    "CheckReport": "check",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
