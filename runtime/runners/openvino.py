"""OpenVINO runner (optional ``openvino`` extra): runs the ONNX graphs on Intel CPUs, GPUs, NPUs.

On CPUs with AVX512-BF16/AMX, ``precision="bf16"`` runs the fp32 ONNX graph in bfloat16.
Strict mode checks that the device exists and that the compiled model kept the precision asked.
A missing openvino, device or device precision raises :class:`BackendUnavailable`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import cpu
from ..backends import BY_NAME
from ..catalogue import OPENVINO_HINTS, canonical_precision
from ..errors import BackendUnavailable, UserError, first_line
from ..native_output import library_output_hidden
from .base import Runner, RunnerConfig, TensorInfo


def import_openvino():  # returns the openvino module (its type is only known once imported)
    try:
        import openvino
    except ImportError:
        raise BackendUnavailable(BY_NAME["openvino"].install_hint()) from None
    return openvino


# ---- what OpenVINO is told, per variant (the policy every caller shares) ----------------------------
def openvino_hint(precision: str) -> str | None:
    """The inference precision OpenVINO is told for a variant of ``precision``: f32 for fp32 and for int8
    (its float parts are fp32), so OpenVINO never picks bf16 by itself on CPUs that have it; None
    (as stored in the file) for bf16 IR and fp16 graphs."""
    return "f32" if precision in ("fp32", "int8") else None


def with_openvino_hint(config: RunnerConfig, precision: str, backend: str) -> RunnerConfig:
    """``config`` with :func:`openvino_hint` filled in when OpenVINO runs the engine and none was asked."""
    if backend != "openvino" or config.precision:
        return config
    return replace(config, precision=openvino_hint(precision))


def hinted_precision(config: RunnerConfig) -> str | None:
    """The precision OpenVINO is told by ``config`` (as the catalogue spells it); None on other backends."""
    return canonical_precision(config.precision) if config.backend == "openvino" and config.precision else None


def openvino_device(config: RunnerConfig) -> str:
    """The OpenVINO device ``config`` names: --provider (CPU by default), or ``GPU.<n>`` for --gpu n."""
    device = "CPU" if config.provider == "auto" else config.provider.upper()
    if config.gpu is None:
        return device
    if device not in ("CPU", "GPU", f"GPU.{config.gpu}") or (device == "CPU" and config.provider != "auto"):
        raise UserError(f"--gpu {config.gpu} names OpenVINO device GPU.{config.gpu}; --provider {config.provider} "
                        "names another: pass one of them")
    return f"GPU.{config.gpu}"


class OpenVinoRunner(Runner):
    def __init__(self, path: str, config: RunnerConfig = RunnerConfig()) -> None:
        super().__init__(path, config)
        self.compiled = None
        self.request = None
        self.device = openvino_device(config)
        self.precision: str | None = None

    def _load(self) -> None:
        ov = import_openvino()
        core = ov.Core()
        listed = core.available_devices  # "GPU" alone where there is one GPU, "GPU.0", "GPU.1", ... where several
        if self.device == "GPU.0" and "GPU" in listed:
            self.device = "GPU"
        if self.device not in listed and self.device.split(".")[0] not in ("AUTO", "MULTI", "HETERO"):
            raise BackendUnavailable(
                f"OpenVINO device {self.device!r} not available; this machine has {', '.join(core.available_devices)}"
            )
        properties: dict[str, object] = {}
        if self.config.threads:
            properties["INFERENCE_NUM_THREADS"] = self.config.threads
        wanted = None
        if self.config.precision:
            wanted = OPENVINO_HINTS.get(canonical_precision(self.config.precision))
            if wanted is None:
                allowed = sorted({*OPENVINO_HINTS, *OPENVINO_HINTS.values()})
                raise UserError(f"OpenVINO precision must be one of {', '.join(allowed)}; "
                                f"got {self.config.precision!r}")
            properties["INFERENCE_PRECISION_HINT"] = wanted
        failure = None
        # Reading a file that is no IR tries every frontend; the TensorFlow one writes absl lines to fd 2.
        # They are hidden (shown with -v) and the reason is the one line below, not a replay of them.
        with library_output_hidden():
            try:
                model = core.read_model(self.path)
            except RuntimeError as exc:
                failure = exc
        if failure is not None:
            raise UserError(f"{self.path}: OpenVINO cannot read it ({first_line(failure)})")
        if self.device == "CPU" and (wanted or _stored_hint(model)) == "bf16" and not cpu.at_least(
                cpu.onednn_isa(), cpu.BF16_LEVEL):
            # oneDNN cannot build bf16 kernels below AVX512-BF16 (compiling fails outright under the cap);
            # --precision f32 runs the bf16 IR's graph in f32 instead.
            raise BackendUnavailable(
                f"bf16 needs AVX512-BF16 or AMX; this CPU runs oneDNN at {cpu.onednn_isa() or 'below AVX2'}"
                f"{' (' + cpu.CAP_VARIABLE + ')' if cpu.onednn_cap() else ''}: no bf16 here")
        try:
            self.compiled = core.compile_model(model, self.device, properties)
        except RuntimeError as exc:
            raise UserError(f"{self.path}: OpenVINO cannot compile it for {self.device} "
                            f"({first_line(exc)})") from None
        try:
            self.precision = _short_type(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        except RuntimeError:  # some devices do not report it
            self.precision = None
        if self.config.is_strict and wanted and self.precision not in (None, wanted):
            raise BackendUnavailable(
                f"OpenVINO on {self.device} runs {self.precision}, not the requested {wanted} "
                "(the device lacks support); drop --precision or pass --no-strict"
            )
        self.request = self.compiled.create_infer_request()
        self.inputs = [_info(port) for port in self.compiled.inputs]
        self.outputs = [_info(port) for port in self.compiled.outputs]

    def _unload(self) -> None:
        self.request = None
        self.compiled = None

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert self.request is not None and self.compiled is not None
        results = self.request.infer(feeds)
        # Copies: the request reuses its output buffers on the next call.
        return [np.array(results[port]) for port in self.compiled.outputs]

    @property
    def computed_in(self) -> str | None:
        """What the compiled model reports (f32, bf16, f16), else the hint asked, as the catalogue spells it."""
        hint = self.precision or self.config.precision
        return canonical_precision(hint) if hint else None

    @property
    def description(self) -> str:
        threads = f", {self.config.threads} threads" if self.config.threads else ""
        return f"openvino {self.device} {self.precision or ''}{threads}".replace("  ", " ")


def _stored_hint(model) -> str | None:  # model: an openvino.Model
    """The inference precision stored in the IR (export writes bf16 into the bf16 IR's rt_info), short form."""
    try:
        return _short_type(model.get_rt_info(["runtime_options", "INFERENCE_PRECISION_HINT"]).astype(str))
    except RuntimeError:  # no such entry
        return None


def _short_type(value: object) -> str:
    text = str(value).lower()
    for name, short in (("bfloat16", "bf16"), ("bf16", "bf16"), ("float16", "f16"), ("f16", "f16"),
                        ("float32", "f32"), ("f32", "f32")):
        if name in text:
            return short
    return text


def _info(port) -> TensorInfo:  # port: an openvino port
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    return TensorInfo(port.get_any_name(), shape, np.dtype(port.get_element_type().to_dtype()))
