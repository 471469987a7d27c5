"""Engine runners behind one interface; :func:`make_runner` picks the backend for a file.

Which backend runs which file comes from the records in :mod:`runtime.backends`; a runner's module is
imported only when an engine of its kind is opened.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import BY_NAME, RUNNABLE, for_suffix
from ..errors import UserError
from .base import BACKENDS, Runner, RunnerConfig, TensorInfo, check_feed

if TYPE_CHECKING:
    from .plan_origin import PlanOrigin

ENGINE_SUFFIXES = tuple(suffix for backend in RUNNABLE for suffix in backend.suffixes)


def backend_for(path: str | Path, config: RunnerConfig) -> str:
    """The backend that will run ``path``: the configured one, else chosen by file suffix."""
    suffix = Path(path).suffix.lower()
    default = for_suffix(suffix)
    if default is None:
        raise UserError(
            f"{path}: unknown engine type {suffix or '(no suffix)'!r}; runtime runs "
            f"{', '.join(ENGINE_SUFFIXES)} files or an artifact folder"
        )
    if config.backend == "auto":
        return default.name
    if not BY_NAME[config.backend].runs(suffix):
        raise UserError(f"backend {config.backend!r} cannot run {Path(path).name}; pass --backend auto")
    return config.backend


def make_runner(path: str | Path, config: RunnerConfig = RunnerConfig(), origin: PlanOrigin | None = None) -> Runner:
    """A not-yet-opened runner for one engine file: ``with make_runner(...) as runner:``, or ``open()``/``close()``.
    ``origin``: where a TensorRT plan was built (export's notes), checked against this GPU before loading."""
    if not Path(path).is_file():
        raise UserError(f"engine file {path} not found")
    backend = BY_NAME[backend_for(path, config)]
    options: dict[str, Any] = {"origin": origin} if origin is not None and backend.name == "tensorrt" else {}
    return backend.make_runner(str(path), config, **options)


__all__ = ["BACKENDS", "ENGINE_SUFFIXES", "Runner", "RunnerConfig", "TensorInfo", "backend_for", "check_feed",
           "make_runner"]
