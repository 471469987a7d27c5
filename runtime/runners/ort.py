"""ONNX Runtime runner with an explicit execution-provider list and a strict mode.

ONNX Runtime falls back to the CPU when a requested provider is missing or fails to initialise,
logging a warning at most. In strict mode this runner compares the providers the session really
uses with the ones requested and refuses to run on anything else (:class:`BackendUnavailable`).
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from ..errors import BackendUnavailable, UserError, first_line
from ..host import install_command
from .base import Runner, RunnerConfig, TensorInfo
from .gpu import gpu_at

SHORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}
# "auto" tries these in order, keeping only the ones this onnxruntime build has.
AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")  # the ones --gpu N selects a device of

_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int64)": np.dtype(np.int64),
}


def resolve_providers(spec: str, available: list[str]) -> list[str]:
    """``"auto"`` or a comma list of short/full provider names -> full names in priority order."""
    if spec == "auto":
        return [name for name in AUTO_ORDER if name in available] or list(available)
    names = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        full = SHORT_NAMES.get(part.lower(), part)
        if not full.endswith("ExecutionProvider"):
            known = ", ".join(sorted(set(SHORT_NAMES) - {"trt"}))
            raise UserError(f"unknown ONNX Runtime provider {part!r}; use one of {known} or a full provider name")
        names.append(full)
    if not names:
        raise UserError("--provider is empty; give e.g. 'cpu' or 'cuda,cpu' or 'auto'")
    return names


def _dims(shape: list) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in shape)


def session_options(threads: int = 0, spin: bool = True):
    """The ONNX Runtime session options every caller uses: ``threads`` intra-op threads
    (0 = library default), one inter-op thread, all graph optimisations, quiet logging."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Errors reach the user as one UserError line; ONNX Runtime's own log would repeat them.
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OrtRunner(Runner):
    def __init__(self, path: str, config: RunnerConfig = RunnerConfig()) -> None:
        super().__init__(path, config)
        self.session = None
        self.requested: list[str] = []
        self.active_providers: list[str] = []

    def _load(self) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        self.requested = resolve_providers(self.config.provider, available)
        providers: list = list(self.requested)
        if self.config.gpu is not None:
            self.requested = [p for p in self.requested if p in GPU_PROVIDERS]
            if not self.requested and self.config.provider != "auto":
                raise UserError(f"--gpu {self.config.gpu} runs on ONNX Runtime's CUDA or TensorRT provider; "
                                f"--provider {self.config.provider} names neither")
            if not self.requested:
                raise BackendUnavailable(
                    f"--gpu {self.config.gpu}: this onnxruntime build has no CUDA or TensorRT execution provider "
                    f"({', '.join(available)}); {install_command('gpu')}, or drop --gpu")
            gpu_at(self.config.gpu, "--gpu")
            providers = [(p, {"device_id": str(self.config.gpu)}) for p in self.requested]
        options = session_options(self.config.threads, self.config.spin)
        ort.set_default_logger_severity(3)
        try:
            # "provider not available" warnings and the multi-line "EP Error ... Falling back" banner
            # ONNX Runtime print()s: strict mode says it in one line, and the fallback is reported
            # by ``description`` (the providers that actually run).
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", UserWarning)
                session = ort.InferenceSession(self.path, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types, not importable by name
            raise UserError(f"{self.path}: ONNX Runtime cannot load it ({first_line(exc)})") from None
        self.active_providers = session.get_providers()
        missing = [p for p in self.requested if p not in self.active_providers]
        if self.config.is_strict and missing:
            raise BackendUnavailable(
                f"requested ONNX Runtime provider(s) {', '.join(missing)} not running "
                f"(session runs {', '.join(self.active_providers)}; build has {', '.join(available)}); "
                "use --provider auto or --no-strict to allow the fallback"
            )
        self.session = session
        self.inputs = [
            TensorInfo(i.name, _dims(i.shape), _ORT_DTYPES.get(i.type, np.dtype(np.float32)))
            for i in session.get_inputs()
        ]
        self.outputs = [
            TensorInfo(o.name, _dims(o.shape), _ORT_DTYPES.get(o.type, np.dtype(np.float32)))
            for o in session.get_outputs()
        ]

    def _unload(self) -> None:
        self.session = None

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert self.session is not None
        return self.session.run(None, feeds)

    @property
    def description(self) -> str:
        threads = f", {self.config.threads} threads" if self.config.threads else ""
        gpu = f" GPU {self.config.gpu}" if self.config.gpu is not None else ""
        return f"onnxruntime {self.active_providers[0] if self.active_providers else '?'}{gpu}{threads}"
