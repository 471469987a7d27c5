"""The trace-based counter counts what each lowering executes: branches = K x the dynamic layer."""
from __future__ import annotations

from benchmarks.complexity import ComplexityCounter
from runtime.bench.engines import EngineInfo
from train.complexity import count_macs
from train.models import create_model, dynamic_convs


def _info(strategy: str | None, backend: str = "onnxruntime") -> EngineInfo:
    return EngineInfo("x", backend, "v", "fp32", strategy)


def test_branches_counts_the_dynamic_conv_k_times() -> None:
    model = create_model("dyconvsr_tiny", scale=2).eval()
    (layer,) = dynamic_convs(model)
    n, h, w = 1, 24, 32
    # The dynamic conv runs on PixelUnshuffle(2) features: (H/2) x (W/2).
    one_conv = layer.out_channels * layer.in_channels * layer.kernel_size**2 * (h // 2) * (w // 2)
    # grouped/aggregate mix the kernel bank and the biases with the attention: (N, K) @ (K, ...).
    mixing = n * layer.num_kernels * layer.out_channels * (layer.in_channels * layer.kernel_size**2 + 1)
    hidden = layer.attention.fc1.out_channels
    attention_mlp = n * (layer.in_channels * hidden + hidden * layer.num_kernels)
    counter = ComplexityCounter(model, (n, 3, h, w), 2)
    _, grouped = counter(_info("grouped", "pytorch"))
    _, branches = counter(_info("branches"))
    _, aggregate = counter(_info("aggregate"))
    static = count_macs(create_model("dyconvsr_tiny", scale=2, dynamic=False).eval(), (n, 3, h, w))
    static_conv = one_conv  # the twin's plain conv has the same shape
    assert branches - (static - static_conv) == layer.num_kernels * one_conv + attention_mlp
    assert grouped == aggregate
    assert grouped - branches == mixing - (layer.num_kernels - 1) * one_conv


def test_static_network_counts_the_same_under_every_lowering() -> None:
    model = create_model("srcnn_tiny", scale=2).eval()
    counter = ComplexityCounter(model, (1, 3, 12, 16), 2)
    counts = {counter(_info(s))[1] for s in (None, "branches", "aggregate")}
    assert len(counts) == 1 and counts.pop() > 0


def test_unknown_lowering_leaves_macs_out_rather_than_guessing() -> None:
    counter = ComplexityCounter(create_model("dyconvsr_tiny", scale=2).eval(), (1, 3, 12, 16), 2)
    params, macs = counter(_info("some_future_lowering"))
    assert params > 0 and macs is None
